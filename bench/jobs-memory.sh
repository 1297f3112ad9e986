#!/usr/bin/env bash
# jobs-memory.sh - the daemon's memory with a backlog of webhook jobs:
# N jobs of SIZE bytes are submitted to a destination paced at 0.01 req/s
# (so they all stay pending), then the daemon's RSS (VmRSS, and its peak
# VmHWM) is read; then it is killed (-9) and started again on the same
# store, and its RSS read once recovery is done.
#
#     bench/jobs-memory.sh [N [SIZE]]             (default 400, 1000000)
#
# CAPS, if set, is added to the jobs: block of the configuration, e.g.
#     CAPS='max_pending_bytes: 64MiB' bench/jobs-memory.sh
# RESTART_CAPS, if set, replaces CAPS for the restart: a store holding
# more than the caps allow.
# SLUICED chooses the daemon (default: the build tree's). Uses the test
# origin and receiver (t/integration/*.py) on loopback ports chosen by the
# kernel; every process started is stopped by its PID.
set -e -u
top=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-400}
SIZE=${2:-1000000}
SLUICED=${SLUICED:-$top/src/sluiced}
PYTHON=${PYTHON:-python3}
[ -x "$SLUICED" ] || { echo "no sluiced at $SLUICED: build first" >&2; exit 1; }
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy

W=$(mktemp -d "${TMPDIR:-/tmp}/jobs-memory.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	sleep 0.2
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$W"
}
trap cleanup EXIT

wait_file() {
	for _ in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.05; done
	echo "timeout waiting for $1" >&2
	exit 1
}

"$PYTHON" "$top/t/integration/origin.py" --port-file "$W/origin.port" \
	--log "$W/origin.log" 2> /dev/null &
pids+=($!)
"$PYTHON" "$top/t/integration/receiver.py" --port-file "$W/recv.port" \
	--pid-file "$W/recv.pid" --log "$W/recv.log" 2> /dev/null &
pids+=($!)
wait_file "$W/origin.port"
wait_file "$W/recv.port"
OP=$(cat "$W/origin.port")
RP=$(cat "$W/recv.port")
config() { # CAPS
	printf 'max_body: 16MiB\ndestinations:\n  "127.0.0.1:%s":\n' "$OP"
	printf '    rps: 0.01\n    concurrency: 1\n'
	if [ -n "$1" ]; then printf 'jobs:\n  %s\n' "$1"; fi
}
config "${CAPS:-}" > "$W/sluice.yaml"

sluiced_pid=
start() {
	: > "$W/sluiced.log"
	"$SLUICED" -c "$W/sluice.yaml" -l 127.0.0.1:0 -a 127.0.0.1:0 \
		-s "$W/state" 2> "$W/sluiced.log" &
	sluiced_pid=$!
	pids+=("$sluiced_pid")
	for _ in $(seq 600); do
		grep -q 'listening proxy=' "$W/sluiced.log" && break
		sleep 0.05
	done
	PROXY=$(sed -n 's/.*listening proxy=\([^ ]*\).*/\1/p' "$W/sluiced.log")
	[ -n "$PROXY" ] || { cat "$W/sluiced.log" >&2; exit 1; }
}
rss() { # the daemon's VmRSS and VmHWM in MiB
	awk '/^VmRSS|^VmHWM/ { printf "%s %.0f MiB  ", $1, $2 / 1024 }' \
		"/proc/$sluiced_pid/status"
}

head -c "$SIZE" /dev/urandom > "$W/body"
start
echo "# sluiced: $SLUICED"
echo "# $N jobs of $SIZE bytes; jobs: ${CAPS:-defaults}"
echo "after start:    $(rss)"
seq "$N" | xargs -P 4 -I{} curl -s -o /dev/null -w '%{http_code}\n' \
	-x "http://$PROXY" --data-binary @"$W/body" \
	-H "X-EZTHROTTLE-WEBHOOK: http://127.0.0.1:$RP/hook" \
	"http://127.0.0.1:$OP/upload?n={}" > "$W/codes"
echo "answers:        $(sort "$W/codes" | uniq -c | tr -s ' ' | tr '\n' ' ')"
sleep 1
echo "after intake:   $(rss)"
kill -9 "$sluiced_pid"
wait "$sluiced_pid" 2>/dev/null || true
if [ -n "${RESTART_CAPS:-}" ]; then
	config "$RESTART_CAPS" > "$W/sluice.yaml"
	echo "# restart with jobs: $RESTART_CAPS"
fi
start
if [ -n "${TRACE:-}" ]; then
	for _ in $(seq 40); do echo "  trace $(rss)"; sleep 0.05; done
fi
sleep 2
echo "after restart:  $(rss)"
grep -E 'jobs resumed|wait in the store' "$W/sluiced.log" | sed 's/^/# /'
