#!/usr/bin/env bash
# 62-learning: limits learned from responses (SPEC section 3).
# X-EZTHROTTLE-RPS on a response paces the next requests of that queue (at
# the origin: 2 req/s); X-EZTHROTTLE-MAX-CONCURRENT caps their overlap;
# unparsable values are ignored and counted (learn_bad_values); values out
# of bounds are clamped to learn.min_rps / max_rps / max_concurrency, and
# a rate to the destination's max_rps; /queues shows learned_rps /
# learned_concurrency, the rate in force and its source; a newer value replaces
# an older one; learn.scope: destination applies a value to every queue of
# the destination; learn.ezthrottle_headers: false switches it off; a
# queue idle for learn.idle_reset forgets what it learned.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

# stats W: reads times (one a line) and prints "N SPAN MIN_GAP MAX_IN_W".
stats() {
	"$PYTHON" -c '
import sys
w = float(sys.argv[1])
t = sorted(float(x) for x in sys.stdin.read().split())
gaps = [b - a for a, b in zip(t, t[1:])] or [0.0]
win = max([sum(1 for u in t if s <= u <= s + w) for s in t] or [0])
print(len(t), "%.4f" % (t[-1] - t[0] if t else 0), "%.4f" % min(gaps), win)
' "$1"
}

# group G: the origin's count for group G: "NOW MAX COUNT".
group() {
	dcurl -o "$TMP/group" "http://127.0.0.1:$ORIGIN_PORT/groups/$1"
	json "$TMP/group" '"%d %d %d" % (d["now"], d["max"], d["count"])'
}

# keys: the key hashes of the origin's queues in a fresh /queues, sorted,
# "null" for the anonymous queue.
keys() {
	dcurl -o "$TMP/queues" "http://127.0.0.1:$ADMIN_PORT/queues"
	json "$TMP/queues" '"\n".join(sorted(str(q["key"]) for q in d["list"]
		if q["destination"] == "http://127.0.0.1:'"$ORIGIN_PORT"'"))'
}

# learn_req CRED QUERY: one request with "Authorization: Bearer CRED" to
# /reply/200?QUERY, which must answer 200; sets K to the key hash of the
# queue it made (empty when it made none).
learn_req() {
	local before s
	before=$(keys)
	s=$(http_status -H "Authorization: Bearer $1" "$O/reply/200?$2")
	assert_eq 200 "$s" "/reply/200?$2 status"
	K=$(LC_ALL=C comm -13 <(printf '%s\n' "$before") <(keys))
}

# queue KEY EXPR: EXPR evaluated with q = the origin's queue KEY ("None"
# for the anonymous one) in a fresh /queues.
queue() {
	dcurl -o "$TMP/queues" "http://127.0.0.1:$ADMIN_PORT/queues"
	json "$TMP/queues" '(lambda q: '"$2"')([q for q in d["list"]
		if q["destination"] == "http://127.0.0.1:'"$ORIGIN_PORT"'"
		and str(q["key"]) == "'"$1"'"][0])'
}

# stat NAME: a counter from a fresh /queues.
stat() {
	dcurl -o "$TMP/queues" "http://127.0.0.1:$ADMIN_PORT/queues"
	json "$TMP/queues" "d['$1']"
}

start_origin
write_config - <<EOF
learn:
  min_rps: 0.1
  max_rps: 50
  max_concurrency: 7
destinations:
  "127.0.0.1:$ORIGIN_PORT":
    max_rps: 45
EOF
start_sluiced
O=http://127.0.0.1:$ORIGIN_PORT

say "X-EZTHROTTLE-RPS: 2 paces the queue's next requests at 2 req/s"
s=$(http_status "$O/reply/200?X-EZTHROTTLE-RPS=2")
assert_eq 200 "$s" "learning response status"
assert_eq 2.0 "$(queue None 'q["learned_rps"]')" "learned_rps after RPS: 2"
fire learned 5 "$O/echo/learned"
assert_eq 5 "$(fired learned 'sum(r["status"] == 200 for r in rs)')" \
	"paced requests answered 200"
read -r n span gap win < <(arrivals '^/echo/learned' | stats 1.0)
say "arrivals=$n span=${span}s min_gap=${gap}s most_in_1s=$win"
assert_eq 5 "$n" "paced arrivals"
# rps * W + burst = 2 * 1 + 1; 4 intervals of 0.5 s. (10 ms of latency
# jitter allowed: learning, not pacing, is what this test is about.)
ge 3 "$win" || fail "$win arrivals within 1 s after learning 2 req/s (<= 3)"
ge "$gap" 0.48 || fail "arrivals ${gap}s apart after learning 2 req/s"
ge "$span" 1.95 || fail "5 arrivals after learning 2 req/s took ${span}s"

say "a newer value replaces the learned one"
s=$(http_status "$O/reply/200?X-EZTHROTTLE-RPS=20")
assert_eq 200 "$s" "second learning response status"
assert_eq 20.0 "$(queue None 'q["learned_rps"]')" "learned_rps after RPS: 20"
assert_eq "20.0 ezthrottle" "$(queue None '"%s %s" % (q["rate"], q["rate_source"])')" \
	"rate in force and its source"

say "X-EZTHROTTLE-MAX-CONCURRENT: 1 stops the queue's requests overlapping"
learn_req conc "x=0"
k=$K
assert_match '^[0-9a-f]{12}$' "$k" "key of the new queue"
fire before 4 "$O/reply/200?_ms=300&_group=before" 'Authorization: Bearer conc'
assert_eq 4 "$(fired before 'sum(r["status"] == 200 for r in rs)')" \
	"overlapping requests answered 200"
read -r _ most _ < <(group before)
[ "$most" -ge 2 ] ||
	fail "before learning, 4 concurrent requests never overlapped (max $most)"
learn_req conc "X-EZTHROTTLE-MAX-CONCURRENT=1"
assert_eq 1 "$(queue "$k" 'q["learned_concurrency"]')" \
	"learned_concurrency after MAX-CONCURRENT: 1"
fire after 4 "$O/reply/200?_ms=300&_group=after" 'Authorization: Bearer conc'
assert_eq 4 "$(fired after 'sum(r["status"] == 200 for r in rs)')" \
	"serialised requests answered 200"
assert_eq "0 1 4" "$(group after)" \
	"after MAX-CONCURRENT: 1: in progress now, most at once, count"

say "unparsable values are ignored and counted"
bad0=$(stat learn_bad_values)
learn_req bad "X-EZTHROTTLE-RPS=abc"
k=$K
bad1=$(stat learn_bad_values)
[ "$bad1" -gt "$bad0" ] ||
	fail "learn_bad_values $bad0 -> $bad1 after X-EZTHROTTLE-RPS: abc"
assert_eq null "$(queue "$k" 'q["learned_rps"]')" "learned_rps after RPS: abc"
assert_eq 10000.0 "$(queue "$k" 'q["rps"]')" "rps after RPS: abc"
learn_req bad "X-EZTHROTTLE-MAX-CONCURRENT=-3"
bad2=$(stat learn_bad_values)
[ "$bad2" -gt "$bad1" ] ||
	fail "learn_bad_values $bad1 -> $bad2 after X-EZTHROTTLE-MAX-CONCURRENT: -3"
assert_eq null "$(queue "$k" 'q["learned_concurrency"]')" \
	"learned_concurrency after MAX-CONCURRENT: -3"

say "values out of bounds are clamped"
learn_req big "X-EZTHROTTLE-RPS=1000000"
k=$K
assert_eq 45.0 "$(queue "$k" 'q["learned_rps"]')" \
	"learned_rps after RPS: 1000000 (learn.max_rps 50, the destination's max_rps 45)"
learn_req under "X-EZTHROTTLE-RPS=47"
k=$K
assert_eq 45.0 "$(queue "$k" 'q["learned_rps"]')" \
	"learned_rps after RPS: 47 (the destination's max_rps 45)"
learn_req small "X-EZTHROTTLE-RPS=0.001"
k=$K
assert_eq 0.1 "$(queue "$k" 'q["learned_rps"]')" \
	"learned_rps after RPS: 0.001 (learn.min_rps 0.1)"
learn_req wide "X-EZTHROTTLE-MAX-CONCURRENT=100000"
k=$K
assert_eq 7 "$(queue "$k" 'q["learned_concurrency"]')" \
	"learned_concurrency after MAX-CONCURRENT: 100000 (learn.max_concurrency 7)"

say "learn.scope: destination applies a value to every queue"
stop_sluiced
write_config - <<EOF
learn:
  scope: destination
EOF
start_sluiced
learn_req y "x=0"
ky=$K
learn_req x "X-EZTHROTTLE-RPS=3"
kx=$K
assert_eq 3.0 "$(queue "$kx" 'q["learned_rps"]')" \
	"scope destination: learned_rps of the queue that got RPS: 3"
assert_eq 3.0 "$(queue "$ky" 'q["learned_rps"]')" \
	"scope destination: learned_rps of another queue"

say "learn.ezthrottle_headers: false ignores the fields"
stop_sluiced
write_config - <<EOF
learn:
  ezthrottle_headers: false
EOF
start_sluiced
learn_req off "X-EZTHROTTLE-RPS=2&X-EZTHROTTLE-MAX-CONCURRENT=1"
k=$K
assert_eq "None None" "$(queue "$k" '"%s %s" % (q["learned_rps"],
	q["learned_concurrency"])')" "learned values with ezthrottle_headers off"

say "learn.idle_reset: 1s: an idle queue forgets what it learned"
stop_sluiced
write_config - <<EOF
learn:
  idle_reset: 1s
EOF
start_sluiced
learn_req idle "X-EZTHROTTLE-RPS=2"
k=$K
assert_eq 2.0 "$(queue "$k" 'q["learned_rps"]')" "learned_rps before idling"
# Until the queue has been idle for 1.5 s (or is gone from /queues).
for _ in $(seq 100); do
	dcurl -o "$TMP/queues" "http://127.0.0.1:$ADMIN_PORT/queues"
	[ "$(json "$TMP/queues" 'min([q["idle_ms"] for q in d["list"]
		if q["key"] == "'"$k"'"] or [99999])')" -ge 1500 ] && break
	sleep 0.1
done
s=$(http_status -H 'Authorization: Bearer idle' "$O/reply/200?after=idle")
assert_eq 200 "$s" "request after idling"
assert_eq null "$(queue "$k" 'q["learned_rps"]')" "learned_rps after 1.5 s idle"

assert_serving "learning"
say "ok"
