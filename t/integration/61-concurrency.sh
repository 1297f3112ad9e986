#!/usr/bin/env bash
# 61-concurrency: in-flight caps (SPEC section 2). With concurrency 2 and a
# high rate, 8 concurrent requests to a script that takes 0.25 s are never
# more than 2 at a time in progress at the origin (the origin counts them
# itself: /groups/G), yet do use both slots; all succeed. A destination's
# aggregate_concurrency caps its queues together, and the daemon-wide
# max_in_flight caps everything.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

# group G: the origin's count for group G: "NOW MAX COUNT".
group() {
	dcurl -o "$TMP/group" "http://127.0.0.1:$ORIGIN_PORT/groups/$1"
	json "$TMP/group" '"%d %d %d" % (d["now"], d["max"], d["count"])'
}

start_origin
write_config - <<EOF
destinations:
  "127.0.0.1:$ORIGIN_PORT":
    rps: 1000
    concurrency: 2
EOF
start_sluiced
O=http://127.0.0.1:$ORIGIN_PORT

say "8 concurrent requests of 0.25 s, concurrency 2"
fire c2 8 "$O/reply/200?_ms=250&_group=c2" &
FIRE=$!
# While they run, /queues shows at most 2 in flight and the rest waiting.
seen_waiting=0
for _ in $(seq 100); do
	dcurl -o "$TMP/queues" "http://127.0.0.1:$ADMIN_PORT/queues"
	read -r inflight waiting < <(json "$TMP/queues" \
		'"%d %d" % (d["in_flight"], d["waiting"])')
	[ "$inflight" -le 2 ] ||
		fail "/queues: in_flight $inflight > concurrency 2"
	[ "$waiting" -eq 0 ] || seen_waiting=$waiting
	[ "$seen_waiting" -eq 0 ] || break
	sleep 0.02
done
say "/queues during the burst: in_flight=$inflight waiting=$waiting"
[ "$seen_waiting" -ge 1 ] ||
	fail "/queues: nothing waiting with 8 requests of 0.25 s at concurrency 2"
wait "$FIRE" || true
assert_eq 8 "$(fired c2 'sum(r["status"] == 200 for r in rs)')" \
	"requests answered 200"
assert_eq "0 2 8" "$(group c2)" \
	"origin: requests in progress now, most at once, count"

say "aggregate_concurrency 1 over two queues of concurrency 2"
stop_sluiced
write_config - <<EOF
destinations:
  "127.0.0.1:$ORIGIN_PORT":
    rps: 1000
    concurrency: 2
    aggregate_concurrency: 1
EOF
start_sluiced
fire agg1 3 "$O/reply/200?_ms=150&_group=agg" 'Authorization: Bearer one' &
A=$!
fire agg2 3 "$O/reply/200?_ms=150&_group=agg" 'Authorization: Bearer two' &
B=$!
wait "$A" || true
wait "$B" || true
assert_eq "3 3" "$(fired agg1 'sum(r["status"] == 200 for r in rs)') $(fired agg2 \
	'sum(r["status"] == 200 for r in rs)')" "aggregate: requests answered 200"
assert_eq "0 1 6" "$(group agg)" \
	"aggregate: requests in progress now, most at once, count"

say "max_in_flight 1 over two queues"
stop_sluiced
write_config - <<EOF
max_in_flight: 1
EOF
start_sluiced
fire glob1 3 "$O/reply/200?_ms=150&_group=glob" 'Authorization: Bearer one' &
A=$!
fire glob2 3 "$O/reply/200?_ms=150&_group=glob" &
B=$!
wait "$A" || true
wait "$B" || true
assert_eq "3 3" "$(fired glob1 'sum(r["status"] == 200 for r in rs)') $(fired glob2 \
	'sum(r["status"] == 200 for r in rs)')" "max_in_flight: requests answered 200"
assert_eq "0 1 6" "$(group glob)" \
	"max_in_flight: requests in progress now, most at once, count"

assert_serving "concurrency limits"
say "ok"
