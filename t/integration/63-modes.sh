#!/usr/bin/env bash
# 63-modes: APIs that say nothing of their limit but 429 (SPEC section
# 3a). Against an origin that allows 10 req/s and answers 429 with
# Retry-After beyond, 20 clients sharing one key call through the daemon
# for 12 s: in adaptive mode (probe_interval 1s) the queue's rate rises
# from the configured 2 req/s while requests wait (source probe) and the
# calls in the last 4 s reach at least half the limit, with few 429s; in
# frugal mode the queue starts unpaced, is paced after the first pushback
# (source backoff) and few calls are answered 429 after the first
# second. X-EZTHROTTLE-MODE puts a request's queue in a mode (/queues
# shows it); a bad value is a 400 and nothing is sent.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

SECS=12
KEY='Authorization: Bearer shared-modes-key'

# run NAME: 20 clients for SECS seconds against origin NAME (LPORT),
# through the proxy; /queues sampled every 0.5 s into $TMP/NAME.samples.
run() {
	local name=$1 port=$LPORT cl
	timeout 60 "$PYTHON" "$LIB_DIR/limit_client.py" \
		--proxy "127.0.0.1:$PROXY_PORT" \
		--url "http://127.0.0.1:$port/v1/$name" --clients 20 \
		--seconds "$SECS" --header "$KEY" --out "$TMP/$name.clients" \
		2> "$TMP/$name-clients.stderr" &
	cl=$!
	for _ in $(seq $((SECS * 2))); do
		dcurl "http://127.0.0.1:$ADMIN_PORT/queues" |
			json - "[[q['rate'], q['rate_source'], q['mode']]
			         for q in d['list'] if q['destination'] ==
			         'http://127.0.0.1:$port'][:1]" \
			>> "$TMP/$name.samples"
		sleep 0.5
	done
	wait "$cl" || fail "$name: clients failed: $(cat "$TMP/$name-clients.stderr")"
}

# figures NAME: "OK_LAST4_PER_S LIMITED_AFTER_1S LIMITED_ALL OK_ALL"
# from origin NAME's log: 200s per second in the clients' last 4 s, 429s
# after their first second, all 429s and 200s.
figures() {
	"$PYTHON" - "$TMP/$1.requests" "$TMP/$1.clients" <<'EOF'
import json, sys
calls = [json.loads(l) for l in open(sys.argv[1])]
cl = json.load(open(sys.argv[2]))
t0, t2 = cl["t0"], cl["t0"] + cl["seconds"]
last = sum(1 for c in calls if c["status"] == 200 and t2 - 4 <= c["time"] < t2)
late = sum(1 for c in calls if c["status"] == 429 and c["time"] >= t0 + 1)
print("%.2f %d %d %d" % (last / 4.0, late,
      sum(1 for c in calls if c["status"] == 429),
      sum(1 for c in calls if c["status"] == 200)))
EOF
}

limit_origin adaptive --dialect bare --limit 10 --window 1
write_config - <<EOF
defaults:
  rps: 2
  concurrency: 20
learn:
  probe_interval: 1s
destinations:
  "127.0.0.1:$LPORT":
    mode: adaptive
    concurrency: 20
EOF
start_sluiced

say "adaptive: the rate is found"
run adaptive
read -r last late all ok < <(figures adaptive)
say "adaptive: last 4 s $last/s, 429s after the first second $late (all $all, 200s $ok)"
assert_grep '"probe"' "$TMP/adaptive.samples" "rate_source probe while rising"
assert_grep '"adaptive"' "$TMP/adaptive.samples" "mode adaptive in /queues"
ge "$last" 5 || fail "adaptive: $last calls/s in the last 4 s (limit 10, at least 5)"
ge 60 "$late" || fail "adaptive: $late 429s after the first second"
stop_sluiced

say "frugal: unpaced, then the rate it sustained"
limit_origin frugal --dialect bare --limit 10 --window 1
write_config - <<EOF
defaults:
  rps: 2
  concurrency: 20
destinations:
  "127.0.0.1:$LPORT":
    mode: frugal
    concurrency: 20
EOF
start_sluiced
run frugal
read -r last late all ok < <(figures frugal)
say "frugal: last 4 s $last/s, 429s after the first second $late (all $all, 200s $ok)"
assert_grep '"backoff"' "$TMP/frugal.samples" "rate_source backoff after a pushback"
ge "$last" 5 || fail "frugal: $last calls/s in the last 4 s (limit 10, at least 5)"
ge 60 "$late" || fail "frugal: $late 429s after the first second"

say "X-EZTHROTTLE-MODE per request"
start_origin
s=$(http_status -H "X-EZTHROTTLE-MODE: adaptive" -H "$KEY" \
	"http://127.0.0.1:$ORIGIN_PORT/echo/mode")
assert_eq 200 "$s" "a request with X-EZTHROTTLE-MODE: adaptive"
assert_eq "" "$(json "$TMP/body" '[v for k, v in d["headers"] if k.lower() == "x-ezthrottle-mode"] and "sent" or ""')" \
	"X-EZTHROTTLE-MODE upstream"
dcurl -o "$TMP/queues" "http://127.0.0.1:$ADMIN_PORT/queues"
assert_eq adaptive "$(json "$TMP/queues" "[q['mode'] for q in d['list'] if q['destination'] == 'http://127.0.0.1:$ORIGIN_PORT'][0]")" \
	"the queue's mode"
s=$(http_status -H "X-EZTHROTTLE-MODE: turbo" "http://127.0.0.1:$ORIGIN_PORT/echo/turbo")
assert_error 400 bad_request "$s" "X-EZTHROTTLE-MODE: turbo"
assert_eq 0 "$(origin_count '^/echo/turbo')" "a refused request upstream"
say "ok"
