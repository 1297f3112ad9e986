#!/usr/bin/env bash
# 68-timeout: a deadline bounds the whole wait (SPEC section 5).
# "X-EZTHROTTLE-TIMEOUT: 0.5" on a request the origin answers in 1.5 s:
# 504 with a JSON body {"error": "timeout", ...} after about 0.5 s. The
# same header on a request that waits in a 0.4 req/s queue: 504, and it never
# reaches the origin (a later request of the queue gets its slot). A bad
# value is a 400 and nothing is sent. A retry that would come after the
# deadline is not made. sync_timeout in the configuration
# does the same for requests without the header.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

# timed_status ARGS...: like http_status, but prints "STATUS SECONDS".
timed_status() {
	rm -f "$TMP/body" "$TMP/headers"
	timeout 60 curl -s --max-time 50 -x "$PROXY" -o "$TMP/body" \
		-D "$TMP/headers" -w '%{http_code} %{time_total}\n' "$@" || true
	touch "$TMP/body" "$TMP/headers"
}

# between A X B: true when A <= X <= B (decimals).
between() {
	awk -v a="$1" -v x="$2" -v b="$3" 'BEGIN { exit !(a <= x && x <= b) }'
}

start_origin paced
PACED=http://127.0.0.1:$ORIGIN_PORT
start_origin
# The deadline itself is tested here: a request predicted to wait past it
# would be answered at once (68-hopeless.sh), so that is switched off.
write_config - <<EOF
reject_hopeless: false
retry:
  max_retries: 3
destinations:
  "127.0.0.1:${PACED##*:}":
    rps: 0.4
    concurrency: 10
EOF
start_sluiced
O=http://127.0.0.1:$ORIGIN_PORT

say "X-EZTHROTTLE-TIMEOUT: 0.5 while the origin takes 1.5 s"
read -r s secs < <(timed_status -H 'X-EZTHROTTLE-TIMEOUT: 0.5' "$O/slow/1500")
say "answer $s after ${secs}s"
assert_error 504 timeout "$s" "TIMEOUT 0.5, /slow/1500"
between 0.45 "$secs" 1.0 || fail "TIMEOUT 0.5, /slow/1500: answered after ${secs}s"

say "X-EZTHROTTLE-TIMEOUT: 0.5 while waiting in a 0.4 req/s queue"
s=$(http_status "$PACED/echo/t/1")
assert_eq 200 "$s" "first request of the paced queue"
read -r s secs < <(timed_status -H 'X-EZTHROTTLE-TIMEOUT: 0.5' "$PACED/echo/t/2")
say "answer $s after ${secs}s"
assert_error 504 timeout "$s" "TIMEOUT 0.5 in a paced queue"
between 0.45 "$secs" 1.0 || fail "TIMEOUT 0.5 in a paced queue: answered after ${secs}s"
# The next slot (2.5 s after the first) goes to request 3; request 2, if it
# were still queued, would have gone out before it.
s=$(http_status "$PACED/echo/t/3")
assert_eq 200 "$s" "third request of the paced queue"
assert_eq 0 "$(origin_count '^/echo/t/2$' paced)" "arrivals of the timed-out request"
assert_eq 1 "$(origin_count '^/echo/t/3$' paced)" "arrivals of request 3"

say "a timeout long enough changes nothing"
s=$(http_status -H 'X-EZTHROTTLE-TIMEOUT: 10' "$O/slow/200")
assert_eq 200 "$s" "TIMEOUT 10, /slow/200"
s=$(http_status -H 'X-EZTHROTTLE-TIMEOUT: 0.5' "$O/echo/fraction")
assert_eq 200 "$s" "TIMEOUT 0.5, /echo"

say "bad X-EZTHROTTLE-TIMEOUT: 400, nothing sent"
for v in abc 0 -1 1s; do
	s=$(http_status -H "X-EZTHROTTLE-TIMEOUT: $v" "$O/echo/bad-timeout")
	assert_error 400 bad_request "$s" "X-EZTHROTTLE-TIMEOUT: '$v'"
done
# (curl sends a field with an empty value for "Name;".)
s=$(http_status -H "X-EZTHROTTLE-TIMEOUT;" "$O/echo/bad-timeout")
assert_error 400 bad_request "$s" "X-EZTHROTTLE-TIMEOUT with an empty value"
assert_eq 0 "$(origin_count '^/echo/bad-timeout')" \
	"arrivals of requests with a bad timeout"

say "X-EZTHROTTLE-TIMEOUT: 0.5 and a retry due in 2 s"
# Waiting for the retry would pass the deadline: the answer comes at once
# (the last upstream response, or a 504), and the retry never goes out.
read -r s secs < <(timed_status -H 'X-EZTHROTTLE-TIMEOUT: 0.5' \
	"$O/seq/tr?codes=503,200&retry_after=2")
say "answer $s after ${secs}s"
assert_match '^(503|504)$' "$s" "TIMEOUT 0.5, 503 with Retry-After: 2: status"
between 0 "$secs" 0.75 || fail "TIMEOUT 0.5, 503 with Retry-After: 2: answered after ${secs}s"
# The queue is paused for 2 s; the next request comes after the pause, so
# after the retry, had there been one.
s=$(http_status "$O/echo/after-pause")
assert_eq 200 "$s" "request after the pause"
assert_eq 1 "$(origin_count '^/seq/tr[?]')" "arrivals of /seq/tr"

say "sync_timeout: 500ms"
stop_sluiced
write_config - <<EOF
reject_hopeless: false
sync_timeout: 500ms
EOF
start_sluiced
read -r s secs < <(timed_status "$O/slow/1500")
say "answer $s after ${secs}s"
assert_error 504 timeout "$s" "sync_timeout 500ms, /slow/1500"
between 0.45 "$secs" 1.0 || fail "sync_timeout 500ms, /slow/1500: answered after ${secs}s"
s=$(http_status -H 'X-EZTHROTTLE-TIMEOUT: 2.5' "$O/slow/1000")
assert_eq 200 "$s" "sync_timeout 500ms, X-EZTHROTTLE-TIMEOUT: 2.5, /slow/1000"

assert_serving "timeouts"
say "ok"
