# shellcheck shell=bash
# bench/lib.sh - helpers the benchmarks share (bench/throttle.sh,
# bench/ops.sh, bench/limits.sh); sourced. bench_tmp makes $tmp (the run's
# directory) and $pids (what the exit kills). The others expect $sluiced
# (the binary), $on_srv (a taskset prefix, or empty), $life (seconds a
# server may live under timeout(1)), $report (the report file) and a
# fail() of the caller's.

# bench_tmp NAME: makes $tmp; at exit, every pid in $pids is killed and
# waited for, and $tmp removed (kept, and said so, when $keep is 1).
bench_tmp() {
	bench_name=$1
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/sluice-$1.XXXXXX")
	pids=""
	trap bench_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

bench_cleanup() {
	local p
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	if [ "${keep:-0}" = 1 ]; then
		echo "$bench_name: raw logs kept in $tmp" >&2
	else
		rm -rf "$tmp"
	fi
}

# Waits up to $1 seconds for command $2... to succeed; 1 on time-out.
wait_until() {
	local end=$((SECONDS + $1))
	shift
	while ! "$@" 2>/dev/null; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.05
	done
}

alive() {
	kill -0 "$1" 2>/dev/null
}

# The real pid of a command started under timeout(1).
child_of() {
	local c
	c=$(pgrep -P "$1" 2>/dev/null | head -1)
	echo "${c:-$1}"
}

# start_sluiced NAME: config in $tmp/NAME.yaml; sets spid (the daemon),
# stpid (timeout's pid), paddr, aaddr.
start_sluiced() {
	rm -rf "$tmp/$1.state"
	mkdir -p "$tmp/$1.state"
	: >"$tmp/$1.sluiced.err"
	# shellcheck disable=SC2086
	timeout "$life" $on_srv "$sluiced" -c "$tmp/$1.yaml" \
		-l 127.0.0.1:0 -a 127.0.0.1:0 -s "$tmp/$1.state" \
		>"$tmp/$1.sluiced.out" 2>"$tmp/$1.sluiced.err" &
	stpid=$!
	pids="$pids $stpid"
	listening() {
		grep -q 'listening proxy=' "$tmp/$1.sluiced.err" || {
			alive "$stpid" || return 0
			return 1
		}
	}
	wait_until 10 listening "$1" || true
	grep -q 'listening proxy=' "$tmp/$1.sluiced.err" ||
		fail "sluiced did not start; its log:
$(cat "$tmp/$1.sluiced.err")"
	paddr=$(sed -n 's/.*listening proxy=\([^ ]*\) admin=.*/\1/p' \
		"$tmp/$1.sluiced.err" | head -1)
	aaddr=$(sed -n 's/.*listening proxy=[^ ]* admin=\([^ ]*\).*/\1/p' \
		"$tmp/$1.sluiced.err" | head -1)
	spid=$(child_of "$stpid")
}

# A number at the top level of GET /queues ("" when it does not answer).
# The daemon indents its JSON by 2: the top level's keys are the only
# ones 2 spaces in. One queue a page: the poll costs little.
queues_field() {
	curl -sS --max-time 5 "http://$aaddr/queues?limit=1" 2>/dev/null |
		sed -n "s/^  \"$1\": \([0-9]*\),\{0,1\}\$/\1/p" | head -1
}

# VmRSS of pid $1 in KiB.
rss_kib() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# CPU time of pid $1 (utime + stime) in clock ticks.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

out() {
	printf '%s\n' "$*" >>"$report"
}

mono_us() {
	python3 -c 'import time; print(int(time.monotonic() * 1e6))'
}
