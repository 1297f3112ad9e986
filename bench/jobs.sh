#!/usr/bin/env bash
# jobs.sh - webhook job benchmark: durable jobs accepted per second
# (SQLite WAL, synchronous=FULL, group commit) with many concurrent
# clients, time to the 202 (p50, p99), and webhook deliveries per second.
#
#     bench/jobs.sh [SECONDS [CONNECTIONS]]     (default 10 s, 256)
#
# Uses the sluiced of the build tree (SLUICED=... to choose another),
# compiles bench/origin.c (the upstream, and the webhook receiver: it
# answers any request 200) and bench/loadgen.c into a temporary directory.
# The state directory is on the disk of the working directory (not a
# tmpfs), so every commit is a real fsync. Each loadgen connection sends
# job after job on one keep-alive connection ("GET URL" with
# X-EZTHROTTLE-WEBHOOK), so CONNECTIONS jobs are always waiting for their
# 202. Limits are set out of the way (rps 100000, concurrency 1000).
# Deliveries are counted in the store (delivered rows) while the jobs
# drain after the load stops. Results: bench/results/jobs-<date>.txt.
#
# With INTAKE_ONLY=1 the origin's destination is paced at 0.01 req/s, so
# the accepted jobs wait in their queue: the figures are the intake alone
# (validation, the durable write, the 202), without the jobs running and
# delivering on the same two cores.
set -e -u
top=$(cd "$(dirname "$0")/.." && pwd)
SECS=${1:-10}
CONNS=${2:-256}
SLUICED=${SLUICED:-$top/src/sluiced}
[ -x "$SLUICED" ] || { echo "no sluiced at $SLUICED: build first" >&2; exit 1; }
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy

W=$(mktemp -d "$top/bench/.jobs-bench.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	sleep 0.2
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$W"
}
trap cleanup EXIT

cc -O2 -o "$W/loadgen" "$top/bench/loadgen.c"
cc -O2 -o "$W/origin" "$top/bench/origin.c" \
	$(pkg-config --cflags --libs libmicrohttpd)

timeout 600 "$W/origin" -p "$W/origin.port" > /dev/null &
pids+=($!)
for _ in $(seq 100); do [ -s "$W/origin.port" ] && break; sleep 0.05; done
OPORT=$(cat "$W/origin.port")

cat > "$W/sluice.yaml" <<EOF
max_in_flight: 4096
defaults:
  rps: 100000
  concurrency: 1000
  max_queued: 100000
retry:
  max_retries: 0
EOF
if [ -n "${INTAKE_ONLY:-}" ]; then
	cat >> "$W/sluice.yaml" <<EOF
destinations:
  "127.0.0.1:$OPORT":
    rps: 0.01
EOF
fi
timeout 600 "$SLUICED" -c "$W/sluice.yaml" -l 127.0.0.1:0 -a 127.0.0.1:0 \
	-s "$W/state" 2> "$W/sluiced.log" &
pids+=($!)
for _ in $(seq 100); do
	grep -q 'listening proxy=' "$W/sluiced.log" 2>/dev/null && break
	sleep 0.05
done
PPORT=$(sed -n 's/.*listening proxy=[^ ]*:\([0-9]*\) .*/\1/p' "$W/sluiced.log")
[ -n "$PPORT" ] || { echo "sluiced did not start" >&2; exit 1; }

count_delivered() {
	sqlite3 -readonly "$W/state/jobs.db" \
		"SELECT count(*) FROM deliveries WHERE state = 'delivered'" \
		2>/dev/null || echo 0
}

MODE=${INTAKE_ONLY:+intake only (jobs wait in their queue)}
MODE=${MODE:-jobs run and deliver during the load}
echo "# jobs benchmark: $SECS s, $CONNS connections, $(nproc) cores, $MODE"
t0=$(date +%s.%N)
"$W/loadgen" -x "127.0.0.1:$PPORT" -u "http://127.0.0.1:$OPORT/job" \
	-g "bench:$CONNS" -d "$SECS" -o "$W/records" \
	-H "X-EZTHROTTLE-WEBHOOK: http://127.0.0.1:$OPORT/hook" \
	> "$W/loadgen.out"
t1=$(date +%s.%N)
d0=$(count_delivered)
# Let the accepted jobs run and deliver; measure the delivery rate.
accepted=$(awk '$4 == 202' "$W/records" | wc -l)
last=$d0
start=$(date +%s.%N)
[ -z "${INTAKE_ONLY:-}" ] || accepted=0
for _ in $(seq 600); do
	sleep 0.5
	n=$(count_delivered)
	[ "$n" -ge "$accepted" ] && break
	last=$n
done
end=$(date +%s.%N)
n=$(count_delivered)

python3 - "$W/records" "$SECS" "$d0" "$n" "$start" "$end" "$t0" "$t1" \
	<<'EOF' | tee "$W/result"
import sys
recs = [l.split() for l in open(sys.argv[1])]
secs = float(sys.argv[2])
d0, dn = int(sys.argv[3]), int(sys.argv[4])
start, end, t0, t1 = map(float, sys.argv[5:9])
ok = [r for r in recs if r[3] == "202"]
lat = sorted((int(r[2]) - int(r[1])) / 1000.0 for r in ok)
def pct(p):
    return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")
other = len(recs) - len(ok)
print("jobs accepted (202): %d in %.1f s = %.0f jobs/s; other answers: %d"
      % (len(ok), secs, len(ok) / secs, other))
print("time to 202: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms"
      % (pct(0.5), pct(0.9), pct(0.99), lat[-1] if lat else 0))
print("deliveries: %d during the load (%.0f/s, with intake running), "
      "%d in all" % (d0, d0 / (t1 - t0), dn))
if end > start and dn > d0:
    print("deliveries after the load: %d in %.1f s = %.0f deliveries/s "
          "(each: upstream request, jobs_finish, POST, result commit)"
          % (dn - d0, end - start, (dn - d0) / (end - start)))
EOF
grep -E 'transactions|error' "$W/sluiced.log" | head -5 || true
mkdir -p "$top/bench/results"
out="$top/bench/results/jobs-$(date +%Y%m%d).txt"
{
	echo
	echo "# bench/jobs.sh $SECS s, $CONNS connections, $(nproc) cores, $MODE,"
	echo "# $(date -u +%Y-%m-%dT%H:%MZ), state on $(df -T "$W" | awk 'NR==2 {print $2}'),"
	echo "# synchronous=FULL, WAL, group commit; origin = bench/origin.c"
	cat "$W/result"
} >> "$out"
echo "# written to $out"
