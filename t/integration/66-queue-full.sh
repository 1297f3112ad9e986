#!/usr/bin/env bash
# 66-queue-full: waiting is bounded (SPEC section 2). With
# defaults.max_queued 3 and 2 req/s, 10 concurrent requests of one queue:
# those beyond the bound get 503 at once, with Retry-After and a JSON body
# {"error": "queue_full", ...}, and never reach the origin; the others get
# 200; /queues counts queue_full. The daemon-wide max_queued bounds the
# sum over queues the same way. The daemon keeps serving.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

# check_full OUT: every 503 that fire wrote to $TMP/OUT is a proper
# queue_full answer (JSON error, Retry-After in whole seconds); sets OK
# and FULL (how many 200, how many 503).
check_full() {
	local i n code
	OK=0
	FULL=0
	n=$(wc -l < "$TMP/$1")
	for i in $(seq "$n"); do
		code=$(fired "$1" "str(rs[$i - 1][\"status\"])")
		case $code in
		200) OK=$((OK + 1)) ;;
		503)
			FULL=$((FULL + 1))
			fired "$1" "rs[$i - 1][\"body\"]" > "$TMP/body"
			fired "$1" "'\\n'.join('%s: %s' % kv
				for kv in rs[$i - 1]['headers'].items())" > "$TMP/headers"
			assert_error 503 queue_full "$code" "$1 request $i"
			assert_match '^[1-9][0-9]*$' "$(header Retry-After)" \
				"$1 request $i: Retry-After" ;;
		*)	fail "$1 request $i: status '$code'" ;;
		esac
	done
}

start_origin
write_config - <<EOF
defaults:
  rps: 2
  concurrency: 10
  max_queued: 3
EOF
start_sluiced
O=http://127.0.0.1:$ORIGIN_PORT

say "10 concurrent requests, max_queued 3 per queue, 2 req/s"
fire q 10 "$O/echo/q"
check_full q
ok=$OK full=$FULL
say "200: $ok, 503 queue_full: $full"
# At least the 3 that may wait; at most those plus the one dispatched at
# once, plus some slack for a machine so busy that the 10 arrivals spread
# over more than a slot. (When all 10 reach the daemon together, the
# first counts as waiting too, and only 3 are admitted.)
if [ "$ok" -lt 3 ] || [ "$ok" -gt 6 ]; then
	fail "$ok requests answered 200 (3 to 6)"
fi
assert_eq 10 "$((ok + full))" "200s and 503s"
assert_eq "$ok" "$(origin_count '^/echo/q/')" "arrivals at the origin"
dcurl -o "$TMP/queues" "http://127.0.0.1:$ADMIN_PORT/queues"
assert_eq "$full 0" "$(json "$TMP/queues" '"%d %d" % (d["queue_full"],
	d["waiting"])')" "/queues queue_full and waiting"

say "another queue of the destination is not full"
s=$(http_status -H 'Authorization: Bearer other' "$O/echo/other")
assert_eq 200 "$s" "a request of another queue"

say "daemon-wide max_queued 3 over two queues"
stop_sluiced
write_config - <<EOF
max_queued: 3
defaults:
  rps: 2
  concurrency: 10
EOF
start_sluiced
fire ga 5 "$O/echo/ga" 'Authorization: Bearer ga' &
A=$!
fire gb 5 "$O/echo/gb" 'Authorization: Bearer gb' &
B=$!
wait "$A" || true
wait "$B" || true
check_full ga
oka=$OK fulla=$FULL
check_full gb
okb=$OK fullb=$FULL
say "200: $oka + $okb, 503 queue_full: $fulla + $fullb"
# At most 3 waiting in all, plus at most 1 dispatched at once per queue;
# at least the 3 that may wait.
if [ "$((oka + okb))" -lt 3 ] || [ "$((oka + okb))" -gt 7 ]; then
	fail "$((oka + okb)) requests answered 200 (3 to 7)"
fi
[ "$((fulla + fullb))" -ge 3 ] || fail "only $((fulla + fullb)) queue_full answers"

assert_serving "full queues"
say "ok"
