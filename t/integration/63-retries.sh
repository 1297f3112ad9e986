#!/usr/bin/env bash
# 63-retries: transparent retries (SPEC section 4), against the origin's
# /seq/NAME?codes=... script, which answers the i-th arrival for NAME with
# the i-th code. 429 and 502/503/504 are retried; 500 only for idempotent
# methods or with an idempotency key; connection failures too; the
# per-request X-EZTHROTTLE-MAX-RETRIES / X-EZTHROTTLE-RETRY-ON override the
# policy; when retries run out the last upstream response comes back
# unchanged. X-EZTHROTTLE-Attempts counts the attempts; the origin's log
# counts the arrivals; a retried POST sends its body again.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

# check WHAT STATUS ATTEMPTS ARRIVALS NAME: the last response had STATUS
# and X-EZTHROTTLE-Attempts: ATTEMPTS, an integer X-EZTHROTTLE-Queue-Ms,
# and the origin saw ARRIVALS requests for /seq/NAME.
check() {
	assert_eq "$2" "$s" "$1: status"
	assert_eq "$3" "$(header X-EZTHROTTLE-Attempts)" \
		"$1: X-EZTHROTTLE-Attempts"
	assert_match '^[0-9]+$' "$(header X-EZTHROTTLE-Queue-Ms)" \
		"$1: X-EZTHROTTLE-Queue-Ms"
	assert_eq "$4" "$(origin_count "^/seq/$5([?]|\$)")" \
		"$1: arrivals at the origin"
}

start_origin
write_config - <<EOF
retry:
  max_retries: 2
  backoff_base: 50ms
  backoff_cap: 200ms
EOF
start_sluiced
O=http://127.0.0.1:$ORIGIN_PORT

say "429, 429, 200: the client gets the 200 after 3 attempts"
s=$(http_status "$O/seq/a?codes=429,429,200")
check "429,429,200" 200 3 3 a
assert_eq 3 "$(json "$TMP/body" 'd["n"]')" "429,429,200: answer of arrival"

say "X-EZTHROTTLE-MAX-RETRIES: 0: the first 429 comes back"
s=$(http_status -H 'X-EZTHROTTLE-MAX-RETRIES: 0' "$O/seq/b?codes=429,200")
check "MAX-RETRIES: 0" 429 1 1 b

say "X-EZTHROTTLE-MAX-RETRIES: 4 allows more than retry.max_retries"
s=$(http_status -H 'X-EZTHROTTLE-MAX-RETRIES: 4' \
	"$O/seq/b4?codes=503,503,503,503,200")
check "MAX-RETRIES: 4" 200 5 5 b4

say "500: not retried for POST, retried for GET and for POST with a key"
s=$(http_status -X POST --data-binary x "$O/seq/c?codes=500,200")
check "POST 500" 500 1 1 c
s=$(http_status "$O/seq/d?codes=500,200")
check "GET 500" 200 2 2 d
s=$(http_status -X POST --data-binary x -H 'Idempotency-Key: k-1' \
	"$O/seq/d2?codes=500,200")
check "POST 500 with Idempotency-Key" 200 2 2 d2

say "X-EZTHROTTLE-RETRY-ON: 418 retries a 418; without it, no retry"
s=$(http_status -H 'X-EZTHROTTLE-RETRY-ON: 418' "$O/seq/e?codes=418,200")
check "RETRY-ON: 418" 200 2 2 e
s=$(http_status "$O/seq/e2?codes=418,200")
check "418 without RETRY-ON" 418 1 1 e2

say "bad per-request controls: 400, nothing sent"
for h in 'X-EZTHROTTLE-MAX-RETRIES: abc' 'X-EZTHROTTLE-MAX-RETRIES: -1' \
	'X-EZTHROTTLE-RETRY-ON: teapot'; do
	s=$(http_status -H "$h" "$O/seq/bad?codes=200")
	assert_error 400 'bad_request' "$s" "'$h'"
done
assert_eq 0 "$(origin_count '^/seq/bad')" "arrivals of requests with bad controls"

say "retries exhausted: the last 503, unchanged, after 3 attempts"
s=$(http_status "$O/seq/f?codes=503")
check "always 503" 503 3 3 f
assert_eq '{"name": "f", "n": 3, "status": 503}' "$(cat "$TMP/body")" \
	"always 503: body of the last attempt"

say "a retried POST sends the same body again"
s=$(http_status -X POST --data-binary 'the body, twice' \
	-H 'Content-Type: text/plain' "$O/seq/h?codes=503,200")
check "POST 503,200" 200 2 2 h
assert_eq "15 15" "$(grep '"/seq/h?' "$TMP/origin.requests" |
	"$PYTHON" -c 'import json, sys
print(" ".join(str(json.loads(l)["body_length"]) for l in sys.stdin))')" \
	"POST 503,200: body lengths at the origin"
assert_eq 1 "$(grep '"/seq/h?' "$TMP/origin.requests" |
	"$PYTHON" -c 'import json, sys
print(len(set(json.loads(l)["body_sha256"] for l in sys.stdin)))')" \
	"POST 503,200: distinct bodies at the origin"

say "Retry-After: 1 on a 429 delays the retry by 1 s"
s=$(http_status "$O/seq/r?codes=429,200&retry_after=1")
check "429 Retry-After: 1, 200" 200 2 2 r
gap=$(arrivals '^/seq/r[?]' | awk 'NR == 1 { a = $1 } END { print $1 - a }')
ge "$gap" 0.95 || fail "retry after 'Retry-After: 1' came ${gap}s later"

say "connection refused: retried, then a proxy-made 502"
port=$(closed_port)
s=$(http_status "http://127.0.0.1:$port/x")
assert_error 502 '.+' "$s" "closed port"
assert_eq 3 "$(header X-EZTHROTTLE-Attempts)" \
	"closed port: X-EZTHROTTLE-Attempts (1 + max_retries 2)"

say "the counters in /queues"
dcurl -o "$TMP/queues" "http://127.0.0.1:$ADMIN_PORT/queues"
# 12 requests got past the checks: a 3 attempts, b 1, b4 5, c 1, d 2,
# d2 2, e 2, e2 1, f 3, h 2, r 2, the closed port 3.
assert_eq "12 27 15" "$(json "$TMP/queues" \
	'"%d %d %d" % (d["requests"], d["attempts"], d["retries"])')" \
	"/queues requests, attempts, retries"

assert_serving "retries"
say "ok"
