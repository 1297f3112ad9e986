#!/usr/bin/env bash
# 57-workers: the engine's workers (the `workers` key, --workers). Each
# runs its share of the client connections and their transfers, and all
# share one scheduler: a queue's rate and in-flight cap hold across them.
# With 3 workers, 24 connections (spread in turn over the workers) send
# to one queue limited to 10 req/s: the origin sees at most 11 arrivals
# in any second; 24 more to a queue of 3 in flight: never more than 3 at
# once at its origin, and 3 at some point; deadlines of requests
# dispatched on another worker than their own are kept. Also:
# the workers' threads and the log line, 0 = one per core the daemon may
# run on (its affinity), and bad values refused.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

# most_in W: the most times (stdin) in any window [t, t + W - 30 ms] (the
# origin notes an arrival when its thread gets to it: see 60-pacing), and
# the span, last - first.
most_in() {
	"$PYTHON" -c '
import sys
w = float(sys.argv[1]) - 0.03
t = sorted(float(x) for x in sys.stdin.read().split())
print(max([sum(1 for u in t if s <= u <= s + w) for s in t] or [0]),
      "%.4f" % (t[-1] - t[0] if t else 0))
' "$1"
}

say "bad values are refused"
mkdir -p "$TMP/state"
printf 'workers: 2\n' > "$TMP/good.yaml"
for v in 65 two -1; do
	RC=0
	"$SLUICED" -t -c "$TMP/good.yaml" -s "$TMP/state" --workers "$v" \
		> "$TMP/bad.out" 2>&1 || RC=$?
	[ "$RC" -ne 0 ] || fail "--workers $v accepted"
	assert_grep "sluiced: --workers must be an integer from 0 to 64, got '$v'" \
		"$TMP/bad.out"
done
printf 'workers: 65\n' > "$TMP/bad.yaml"
RC=0
"$SLUICED" -t -c "$TMP/bad.yaml" -s "$TMP/state" > "$TMP/bad.out" 2>&1 ||
	RC=$?
[ "$RC" -ne 0 ] || fail "workers: 65 accepted"
assert_grep "bad.yaml:1:10: .*workers" "$TMP/bad.out"

start_origin capped
CAPPED_PORT=$ORIGIN_PORT
start_origin slowly
SLOW_PORT=$ORIGIN_PORT
start_origin
write_config - <<EOF
workers: 3
destinations:
  "127.0.0.1:$ORIGIN_PORT":
    rps: 10
    concurrency: 100
  "127.0.0.1:$CAPPED_PORT":
    rps: 1000
    concurrency: 3
  "127.0.0.1:$SLOW_PORT":
    rps: 2
    concurrency: 100
EOF
start_sluiced
O=http://127.0.0.1:$ORIGIN_PORT

say "3 workers: their threads and the log line"
assert_grep "info: engine: workers=3" "$TMP/sluiced.log"
names=$(cat /proc/"$SLUICED_PID"/task/*/comm | sort | tr '\n' ' ')
for n in sluice-engine sluice-engine1 sluice-engine2; do
	case " $names" in
	*" $n "*) ;;
	*) fail "no thread $n among: $names" ;;
	esac
done

say "24 connections, one queue at 10 req/s"
fire w 24 "$O/reply/200?_ms=150"
assert_eq 24 "$(fired w 'sum(r["status"] == 200 for r in rs)')" \
	"requests answered 200"
read -r win span < <(arrivals '^/reply/200\?' | most_in 1.0)
say "most in 1 s: $win, span ${span}s"
# rps * W + burst = 10 * 1 + 1
ge 11 "$win" || fail "$win arrivals within 1 s at 10 req/s (at most 11)"
# 23 intervals of 0.1 s after the first dispatch, less the first one's
# lateness (see 60-pacing).
ge "$span" 2.2 || fail "24 arrivals at 10 req/s took only ${span}s (2.3 s)"
say "24 connections, one queue of 3 in flight"
fire c 24 "http://127.0.0.1:$CAPPED_PORT/reply/200?_ms=300&_group=c"
assert_eq 24 "$(fired c 'sum(r["status"] == 200 for r in rs)')" \
	"requests answered 200"
dcurl -o "$TMP/group" "http://127.0.0.1:$CAPPED_PORT/groups/c"
read -r max count < <(json "$TMP/group" '"%d %d" % (d["max"], d["count"])')
say "at most $max at once at the origin, $count in all"
assert_eq 24 "$count" "requests of the group at the origin"
ge 3 "$max" || fail "$max requests at once at the origin, concurrency 3"
ge "$max" 3 || fail "at most $max at once: the slots were not used"

say "deadlines across workers: 6 requests of 1 s to a queue at 2 req/s"
# The origin takes 3 s. The first two are dispatched (on the worker that
# woke for their slot) and answered 504 at their deadline with their
# transfers stopped; the others are answered 503 (their predicted wait
# passes the deadline) or 504 in their queue. None is left behind.
fire d 6 "http://127.0.0.1:$SLOW_PORT/reply/200?_ms=3000" \
	"X-EZTHROTTLE-TIMEOUT: 1"
assert_eq "0 6 2" "$(fired d '"%d %d %d" % (
	sum(r["status"] not in (503, 504) for r in rs),
	sum(r["secs"] < 2.5 for r in rs), min(2, sum(r["status"] == 504
	for r in rs)))')" "answers not 503/504, answered within 2.5 s, 504s (2+)"

say "/queues adds up across workers"
dcurl -o "$TMP/queues" "http://127.0.0.1:$ADMIN_PORT/queues"
assert_eq "54 0 0" "$(json "$TMP/queues" '"%d %d %d" % (d["requests"],
	d["waiting"], d["in_flight"])')" \
	"/queues requests, waiting, in flight"
stop_sluiced

say "workers: 0 is one per core the daemon may run on"
write_config - <<EOF
workers: 0
EOF
command -v taskset > /dev/null || skip "taskset (util-linux) is needed"
SLUICED_REAL=$SLUICED
SLUICED=$TMP/pinned
printf '#!/bin/sh\nexec taskset -c 0 "%s" "$@"\n' "$SLUICED_REAL" > "$SLUICED"
chmod +x "$SLUICED"
start_sluiced
assert_grep "info: engine: workers=1" "$TMP/sluiced.log"
assert_eq 200 "$(http_status "$O/echo/pinned")" "a request through 1 worker"
stop_sluiced
SLUICED=$SLUICED_REAL

say "ok"
