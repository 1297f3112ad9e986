#!/usr/bin/env bash
# 60-pacing: a queue's rate is strict (SPEC section 2): in any window of
# length W a queue dispatches at most rps * W + burst requests. Measured at
# the origin, from its arrival log: 12 concurrent requests to a destination
# limited to 5 req/s arrive about 0.2 s apart, never more than 6 in one
# second; a fractional rate (0.5 req/s) spaces arrivals 2 s apart and
# X-EZTHROTTLE-Queue-Ms tells the wait; burst 3 lets no more than
# rps * W + 3 through in any window; retries are paced like any dispatch.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

# stats W: reads times (one a line) and prints "N SPAN MIN_GAP MAX_IN_W
# GAP1": how many, last - first, the smallest gap between neighbours but
# for the first gap, the most times in any window [t, t + W - JITTER],
# and the first gap. (The
# first request opens the upstream connection, and the origin starts a
# thread for it: its arrival is noted late, and the first gap looks short
# by up to tens of milliseconds on a busy machine. The window and the
# span still count it.)
#
# JITTER (30 ms): what the origin's clock sees is when its thread got to
# the request, not when the daemon sent it; on a busy machine one arrival
# can be noted some milliseconds late, which makes its gap to the next one
# look short (a few ms on an idle machine, up to about 20 ms seen with ten
# tests running at once; a real second dispatch in the same slot shows as
# a gap of about 0).
JITTER=0.03
# SPAN_SLACK (100 ms): the same for a span, which starts at the first
# arrival, the one noted latest (see above).
SPAN_SLACK=0.1
stats() {
	"$PYTHON" -c '
import sys
w = float(sys.argv[1]) - float(sys.argv[2])
t = sorted(float(x) for x in sys.stdin.read().split())
gaps = [b - a for a, b in zip(t, t[1:])] or [0.0]
win = max([sum(1 for u in t if s <= u <= s + w) for s in t] or [0])
print(len(t), "%.4f" % (t[-1] - t[0] if t else 0),
      "%.4f" % min(gaps[1:] or gaps), win, "%.4f" % gaps[0])
' "$1" "$JITTER"
}

start_origin slow
SLOW_PORT=$ORIGIN_PORT
start_origin burst
BURST_PORT=$ORIGIN_PORT
start_origin
write_config - <<EOF
retry:
  max_retries: 3
  backoff_base: 10ms
  backoff_cap: 20ms
destinations:
  "127.0.0.1:$ORIGIN_PORT":
    rps: 5
    concurrency: 10
  "127.0.0.1:$SLOW_PORT":
    rps: 0.5
    concurrency: 10
  "127.0.0.1:$BURST_PORT":
    rps: 2
    burst: 3
    concurrency: 10
EOF
start_sluiced
O=http://127.0.0.1:$ORIGIN_PORT

say "12 concurrent requests at 5 req/s (burst 1)"
fire pace 12 "$O/echo/pace"
assert_eq 12 "$(fired pace 'sum(r["status"] == 200 for r in rs)')" \
	"requests answered 200"
read -r n span gap win _ < <(arrivals '^/echo/pace/' | stats 1.0)
say "arrivals=$n span=${span}s min_gap=${gap}s most_in_1s=$win"
assert_eq 12 "$n" "arrivals at the origin"
# rps * W + burst = 5 * 1 + 1
ge 6 "$win" || fail "$win arrivals within 1 s at 5 req/s, burst 1 (at most 6)"
# 11 intervals of 0.2 s after the first dispatch: 2.2 s.
ge "$span" "$(awk -v j="$SPAN_SLACK" 'BEGIN { print 2.2 - j }')" ||
	fail "12 arrivals at 5 req/s took only ${span}s (2.2 s)"
ge "$gap" "$(awk -v j="$JITTER" 'BEGIN { print 0.2 - j }')" ||
	fail "two arrivals ${gap}s apart at 5 req/s (0.2 s)"

say "/queues shows the destination's limits"
dcurl -o "$TMP/queues" "http://127.0.0.1:$ADMIN_PORT/queues"
assert_eq "5.0 10 1" "$(json "$TMP/queues" '" ".join("%.1f %d %d" % (q["rps"],
	q["concurrency"], q["burst"]) for q in d["list"]
	if q["destination"] == "http://127.0.0.1:'"$ORIGIN_PORT"'")')" \
	"rps, concurrency, burst of the 5 req/s queue"

say "fractional rate: 4 concurrent requests at 0.5 req/s"
fire half 4 "http://127.0.0.1:$SLOW_PORT/echo/half"
assert_eq "200 200 200 200" "$(fired half '" ".join(str(r["status"])
	for r in rs)')" "statuses at 0.5 req/s"
read -r n span gap win _ < <(arrivals '^/echo/half/' slow | stats 1.0)
say "arrivals=$n span=${span}s min_gap=${gap}s"
assert_eq 4 "$n" "arrivals at 0.5 req/s"
# Strict: one every 2 s. (The daemon's own spacing is exact; what the
# origin notes was seen up to 80 ms off with ten tests running at once,
# hence SPAN_SLACK here too. A second dispatch in a slot, or a rate of
# 0.5 handled as 1 or as 0, is far outside it.)
ge "$gap" "$(awk -v j="$SPAN_SLACK" 'BEGIN { print 2 - j }')" ||
	fail "two arrivals ${gap}s apart at 0.5 req/s (2 s)"
ge "$span" "$(awk -v j="$SPAN_SLACK" 'BEGIN { print 6 - j }')" ||
	fail "4 arrivals at 0.5 req/s took only ${span}s (6 s)"
# The last one waited about 6 s, and says so.
qms=$(fired half 'max(int(r["headers"]["x-ezthrottle-queue-ms"]) for r in rs)')
say "longest X-EZTHROTTLE-Queue-Ms: $qms"
ge "$qms" 5800 ||
	fail "X-EZTHROTTLE-Queue-Ms of the last of 4 at 0.5 req/s: $qms (about 6000)"

say "burst 3 at 2 req/s: 8 concurrent requests"
fire burst 8 "http://127.0.0.1:$BURST_PORT/echo/burst"
assert_eq 8 "$(fired burst 'sum(r["status"] == 200 for r in rs)')" \
	"burst: requests answered 200"
read -r n span gap win _ < <(arrivals '^/echo/burst/' burst | stats 1.0)
read -r _ _ _ win2 _ < <(arrivals '^/echo/burst/' burst | stats 2.0)
say "arrivals=$n span=${span}s most_in_1s=$win most_in_2s=$win2"
assert_eq 8 "$n" "burst: arrivals"
# rps * W + burst: 2 + 3 in 1 s, 4 + 3 in 2 s.
ge 5 "$win" || fail "burst: $win arrivals within 1 s (at most 5)"
ge 7 "$win2" || fail "burst: $win2 arrivals within 2 s (at most 7)"
# 8 - 3 = 5 paced intervals of 0.5 s after the burst.
ge "$span" "$(awk -v j="$SPAN_SLACK" 'BEGIN { print 2.5 - j }')" ||
	fail "burst: 8 arrivals in ${span}s (2.5 s)"

say "retries are paced: 503, 503, 503, 200 at 5 req/s"
s=$(http_status "$O/seq/retry?codes=503,503,503,200")
assert_eq 200 "$s" "paced retries: status"
assert_eq 4 "$(header X-EZTHROTTLE-Attempts)" "paced retries: attempts"
read -r n span gap win gap1 < <(arrivals '^/seq/retry' | stats 1.0)
say "arrivals=$n span=${span}s first_gap=${gap1}s min_gap=${gap}s"
assert_eq 4 "$n" "paced retries: arrivals"
# Backoff is 10-20 ms; the rate makes it 0.2 s. (The upstream connection
# is open already: the first gap counts too.)
for g in "$gap1" "$gap"; do
	ge "$g" "$(awk -v j="$JITTER" 'BEGIN { print 0.2 - j }')" ||
		fail "retries ${g}s apart at 5 req/s (0.2 s)"
done

assert_serving "pacing"
say "ok"
