#!/bin/bash
# Measures sluiced's throttling itself, in one run, through the real daemon
# on 127.0.0.1 ephemeral ports (see bench/THROTTLE.md):
#
#   1. 10,000 clients waiting at once (rps 1): memory per waiting request
#      (fresh and reused keep-alive connections), CPU while they wait,
#      that they leave the queue when they disconnect; CPU per dispatch
#      with 50, 10,000 (and 20,000, open files permitting) waiting;
#   2. pacing accuracy at 1, 10, 100, 1000 req/s (burst 1, or each burst
#      of THROTTLE_BURST): achieved rate, deviation of each arrival at the
#      origin from t0 + k/rps, lateness of each arrival against the limit,
#      windows holding more than rps*W + burst;
#   3. fairness under a flood (aggregate_rps 100): per-key throughput,
#      latency of light keys while one key floods, Jain's index;
#   4. bench/sched_bench.c, the scheduler alone (if present).
#
# Prints a report and saves it to bench/out/throttle-<date>.txt.
#
#   bench/throttle.sh [--quick] [-h]
#
# Environment:
#   SLUICED            a sluiced binary to measure (default: build one with
#                      CFLAGS=-O2 into _build/throttle, or into a copy of
#                      the tree when it is configured in place)
#   THROTTLE_CLIENTS   waiting clients of part 1 (default 10000)
#   THROTTLE_SECONDS   length of each pacing and fairness run and of the
#                      CPU measurement (default 10; --quick: 5)
#   THROTTLE_RATES     pacing rates (default "1 10 100 1000")
#   THROTTLE_BURST     burst of the pacing runs (default 1); a list
#                      ("1 2") runs part 2 once per burst
#   THROTTLE_PARTS     parts to run (default "1 2 3 4"; "1d": only part
#                      1's CPU per dispatch)
#   THROTTLE_COST      waiting requests of part 1d's runs (default: 50,
#                      THROTTLE_CLIENTS, and 20000 when the open files
#                      allow it)
#   THROTTLE_COST_WARM seconds between all queued and part 1d's CPU window
#                      (default 1; N/500 or more: every connection has
#                      been answered once, its pool pages are resident)
#   THROTTLE_PIN       1 (default): sluiced and origin on CPU 0, the load
#                      generator on CPU 1; 0: no pinning
#   THROTTLE_KEEP      1: keep the raw logs (printed path) instead of
#                      deleting them
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/deps.sh disable=SC1091
. "$top/scripts/deps.sh"

usage() {
	sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

quick=0
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "throttle: unknown argument '$1'" >&2; usage >&2; exit 1 ;;
	esac
	shift
done
clients=${THROTTLE_CLIENTS:-10000}
if [ "$quick" = 1 ]; then secs=${THROTTLE_SECONDS:-5}; else secs=${THROTTLE_SECONDS:-10}; fi
rates=${THROTTLE_RATES:-1 10 100 1000}
bursts=${THROTTLE_BURST:-1}
parts=${THROTTLE_PARTS:-1 2 3 4}
pin=${THROTTLE_PIN:-1}
keep=${THROTTLE_KEEP:-0}
# shellcheck disable=SC2086 # words of $bursts, THROTTLE_COST
for v in "$clients" "$secs" $bursts ${THROTTLE_COST:-} ${THROTTLE_COST_WARM:-1}; do
	case $v in
	'' | *[!0-9]*) echo "throttle: '$v' is not a number" >&2; exit 1 ;;
	esac
done

unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY \
	no_proxy NO_PROXY ftp_proxy FTP_PROXY 2>/dev/null || true

fail() {
	echo "throttle: $*" >&2
	exit 1
}
say() {
	echo "== $*" >&2
}
has_part() {
	case " $parts " in *" $1 "*) return 0 ;; esac
	return 1
}

# --- dependencies and builds ------------------------------------------------

# shellcheck disable=SC2086
deps_install $SLUICE_BUILD_DEPS curl python3 procps util-linux rsync ||
	fail "cannot install the dependencies"
for t in curl python3 taskset cc pkg-config; do
	command -v "$t" >/dev/null 2>&1 || fail "'$t' not found"
done

. "$top/bench/lib.sh"
bench_tmp throttle

if [ -n "${SLUICED:-}" ]; then
	sluiced=$SLUICED
	[ -x "$sluiced" ] || fail "SLUICED='$sluiced' is not executable"
elif [ -f "$top/config.status" ]; then
	# Configured in place: a VPATH build is refused; build a copy.
	say "building sluiced (-O2) in a copy of the tree (it is configured in place)"
	rsync -a --exclude _build --exclude '*.o' --exclude '*.a' \
		--exclude .deps --exclude bench/out "$top/" "$tmp/tree/" ||
		fail "cannot copy the tree"
	(
		cd "$tmp/tree" &&
			if [ ! -x configure ] || [ configure.ac -nt configure ]; then
				autoreconf -fi
			fi &&
			./configure -q CFLAGS=-O2 &&
			make -j"$(nproc)" src/sluiced
	) >&2 || fail "sluiced does not build"
	sluiced=$tmp/tree/src/sluiced
else
	say "building sluiced (-O2) in _build/throttle"
	if [ ! -x "$top/configure" ] || [ "$top/configure.ac" -nt "$top/configure" ]; then
		(cd "$top" && autoreconf -fi) >&2 || fail "autoreconf failed"
	fi
	bdir=$top/_build/throttle
	mkdir -p "$bdir"
	if [ ! -f "$bdir/Makefile" ] || [ "$top/configure" -nt "$bdir/Makefile" ]; then
		(cd "$bdir" && "$top/configure" -q CFLAGS=-O2) >&2 ||
			fail "configure failed"
	fi
	make -C "$bdir" -j"$(nproc)" src/sluiced >&2 || fail "sluiced does not build"
	sluiced=$bdir/src/sluiced
fi

say "building bench/loadgen.c and bench/arrivals_origin.c"
cc -O2 -Wall "$top/bench/loadgen.c" -o "$tmp/loadgen" ||
	fail "bench/loadgen.c does not build"
# shellcheck disable=SC2046
cc -O2 -Wall "$top/bench/arrivals_origin.c" \
	$(pkg-config --cflags --libs libmicrohttpd) -o "$tmp/origin" ||
	fail "bench/arrivals_origin.c does not build"
analyze="python3 $top/bench/throttle_analyze.py"

# --- limits, pinning ------------------------------------------------------------

# Part 1 needs CLIENTS sockets in the load generator and as many in
# sluiced: raise the soft limit as far as the hard one allows.
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -ge 65536 ]; then
	ulimit -n 65536
else
	ulimit -n "$hard"
fi
nofile=$(ulimit -n)
if { has_part 1 || has_part 1d; } && [ "$clients" -gt $((nofile - 200)) ]; then
	echo "throttle: warning: open files limited to $nofile: part 1" \
		"holds $((nofile - 200)) clients, not $clients" >&2
	clients=$((nofile - 200))
fi

if [ "$pin" = 1 ] && [ "$(nproc)" -ge 2 ]; then
	on_srv="taskset -c 0"
	on_load="taskset -c 1"
	pinning="sluiced and origin on CPU 0, load generator on CPU 1"
else
	on_srv=""
	on_load=""
	pinning="none"
fi
# Daemons die on their own if this script is killed hard.
life=$((secs * 20 + 900))
hz=$(getconf CLK_TCK)

# --- helpers ----------------------------------------------------------------------

# wait_until, alive, child_of, start_sluiced, queues_field, rss_kib,
# cpu_ticks, out, mono_us: bench/lib.sh, sourced above.

# start_origin NAME: sets opid (timeout's pid), oport.
start_origin() {
	rm -f "$tmp/$1.port"
	# shellcheck disable=SC2086
	timeout "$life" $on_srv "$tmp/origin" -o "$tmp/$1.arrivals" \
		-p "$tmp/$1.port" -c 20000 >"$tmp/$1.origin.out" \
		2>"$tmp/$1.origin.err" &
	opid=$!
	pids="$pids $opid"
	wait_until 5 test -s "$tmp/$1.port" ||
		fail "the origin did not start: $(cat "$tmp/$1.origin.err")"
	oport=$(cat "$tmp/$1.port")
}

# stop_origin: TERM, and wait for it to write its arrivals.
stop_origin() {
	kill -TERM "$(child_of "$opid")" 2>/dev/null || true
	wait "$opid" 2>/dev/null || true
}

stop_sluiced() {
	kill -TERM "$spid" 2>/dev/null || true
	wait "$stpid" 2>/dev/null || true
}

# Minor page faults of the whole process.
minflt() {
	awk '{ print $10 }' "/proc/$1/stat"
}

# "tid name ticks" (utime + stime) per thread of process $1.
thread_ticks() {
	for t in /proc/"$1"/task/*; do
		# The name is in parentheses and may hold spaces.
		awk -v tid="${t##*/}" '{
			o = index($0, "("); c = index($0, ") ")
			name = substr($0, o + 1, c - o - 1); gsub(/ /, "_", name)
			split(substr($0, c + 2), f, " ")
			print tid, name, f[12] + f[13]
		}' "$t/stat" 2>/dev/null || true
	done
}

# Voluntary + involuntary context switches of all threads of $1.
ctx_switches() {
	cat /proc/"$1"/task/*/status 2>/dev/null |
		awk '/^(non)?voluntary_ctxt_switches:/ { s += $2 } END { print s + 0 }'
}

fds_of() {
	find /proc/"$1"/fd -mindepth 1 -maxdepth 1 2>/dev/null | wc -l
}

report=$tmp/report.txt
: >"$report"

# --- before the runs --------------------------------------------------------------

busy() {
	a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
	sleep 1
	b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
	echo "$a $b" | awk '{ d = $4 - $2; printf "%d\n", d ? 100 * ($3 - $1) / d : 0 }'
}
busy0=$(busy)
load0="$(cut -d' ' -f1-3 /proc/loadavg); both cores $busy0% busy over 1 s"
# The load just before a part (the machine may be shared): one line.
load_now() {
	b=$(busy)
	echo "load average $(cut -d' ' -f1-3 /proc/loadavg); both cores $b% busy over 1 s"
}
[ "$busy0" -lt 20 ] || echo "throttle: warning: the machine is busy" \
	"($busy0%): other processes will skew the timings" >&2

now=$(date -u '+%Y-%m-%d %H:%M UTC')
stamp=$(date -u '+%Y%m%d-%H%M%S')
cpu=$(sed -n 's/^model name[^:]*: *//p' /proc/cpuinfo | head -1)
rev=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo none)
dirty=$(git -C "$top" status --porcelain -- src 2>/dev/null | head -1)
[ -n "$dirty" ] && rev="$rev+uncommitted"
out "sluice throttling benchmark, $now$([ "$quick" = 1 ] && echo ' (--quick)')"
out "machine: $(nproc) cores ($cpu), $(uname -sr)"
out "sluiced: $sluiced (tree: $rev)"
out "libmicrohttpd $(pkg-config --modversion libmicrohttpd), libcurl $(pkg-config --modversion libcurl)"
out "pinning: $pinning"
out "before the runs: load average $load0"
out "clocks: CLOCK_MONOTONIC in the origin (arrival = request header block parsed) and the load generator"

# --- 1. many waiting clients ---------------------------------------------------------

# hold_wave NAME URL [WARM_URL]: the load generator opens $clients
# connections, one request each to URL (the first to WARM_URL, when
# given); returns once they all wait. Sets lgpid, t_queue (s).
hold_wave() {
	lgout=$tmp/$1.lg
	if [ -n "${3:-}" ]; then
		set -- "$1" "$2" -U "$3"
	else
		set -- "$1" "$2"
	fi
	t_a=$(date +%s.%N)
	# shellcheck disable=SC2086
	$on_load "$tmp/loadgen" -x "$paddr" -u "$2" "${@:3}" -g "-:$clients" \
		-d 0 >"$lgout" 2>"$lgout.err" &
	lgpid=$!
	pids="$pids $lgpid"
	queued() {
		alive "$lgpid" || return 0
		w=$(queues_field waiting)
		[ -n "$w" ] && [ "$w" -ge $((clients - 2)) ]
	}
	wait_until 120 queued || true
	alive "$lgpid" || fail "the load generator died: $(cat "$lgout.err")"
	w=$(queues_field waiting)
	if [ -z "$w" ] || [ "$w" -lt $((clients - 2)) ]; then
		fail "only '${w:-?}' of $clients requests wait after 120 s"
	fi
	t_queue=$(awk -v a="$t_a" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
}

# hold_leave: the clients close their connections; waits until no
# request waits. Sets t_drain (s, or "NOT within 60 s").
hold_leave() {
	kill -TERM "$lgpid"
	wait "$lgpid" 2>/dev/null || true
	t_a=$(date +%s.%N)
	drained() {
		w=$(queues_field waiting)
		[ "$w" = 0 ]
	}
	if wait_until 60 drained; then
		t_drain=$(awk -v a="$t_a" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f s", b - a }')
	else
		t_drain="NOT within 60 s (waiting $(queues_field waiting))"
	fi
}

# hold_daemon NAME: origins (slow: rps 1; fast: no limit to speak of)
# and sluiced; one request to each, so the queues, curl handles and
# upstream connections exist before the baseline. Sets rss0, fd0.
hold_daemon() {
	cat >"$tmp/$1.yaml" <<-EOF
	# written by bench/throttle.sh: part 1, many waiting clients
	log_level: info
	access_log: false
	max_in_flight: 512
	max_queued: $((clients * 4 + 1000))
	sync_timeout: 2h
	drain_timeout: 1s
	defaults:
	  rps: 100000
	  concurrency: 1000
	  burst: 1000
	  max_queued: $((clients * 2 + 1000))
	destinations:
	  "127.0.0.1:$slow_port":
	    rps: 1
	    concurrency: 4
	    burst: 1
	EOF
	start_sluiced "$1"
	for u in "$slow_url" "$fast_url"; do
		r=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 \
			-x "http://$paddr" "$u" || true)
		[ "$r" = 200 ] || fail "a request through sluiced answered '$r'"
	done
	sleep 1.5
	rss0=$(rss_kib "$spid")
	fd0=$(fds_of "$spid")
}

mib() {
	awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'
}

# per_req KIB_BEFORE KIB_AFTER N: KiB per request.
per_req() {
	awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.2f KiB", (b - a) / n }'
}

part1() {
	say "part 1: $clients clients waiting at once (rps 1)"
	load1=$(load_now)
	start_origin hold
	slow_port=$oport
	slow_url=http://127.0.0.1:$oport/hold
	hold_opid=$opid
	start_origin holdfast
	fast_url=http://127.0.0.1:$oport/warm
	fast_opid=$opid

	# 1a: fresh connections.
	hold_daemon hold
	hold_wave hold1 "$slow_url"
	sleep 2
	w1=$(queues_field waiting)
	rss1=$(rss_kib "$spid")
	fd1=$(fds_of "$spid")
	thread_ticks "$spid" | sort >"$tmp/threads0"
	c0=$(cpu_ticks "$spid")
	x0=$(ctx_switches "$spid")
	sleep "$secs"
	c1=$(cpu_ticks "$spid")
	x1=$(ctx_switches "$spid")
	thread_ticks "$spid" | sort >"$tmp/threads1"
	w2=$(queues_field waiting)
	rss2=$(rss_kib "$spid")
	hold_leave
	drain1=$t_drain
	q1=$t_queue
	sleep 2
	w3=$(queues_field waiting)
	reqs=$(queues_field requests)
	attempts=$(queues_field attempts)
	rss3=$(rss_kib "$spid")
	fd3=$(fds_of "$spid")
	# 1b: the same again, in the same daemon: memory must be reused.
	hold_wave hold2 "$slow_url"
	sleep 2
	w5=$(queues_field waiting)
	rss5=$(rss_kib "$spid")
	hold_leave
	drain2=$t_drain
	q2=$t_queue
	sleep 1
	rss6=$(rss_kib "$spid")
	fd6=$(fds_of "$spid")
	alive "$spid" || fail "sluiced died in part 1: $(tail -20 "$tmp/hold.sluiced.err")"
	errs1=$(grep -c -E '^(error|warn)' "$tmp/hold.sluiced.err" || true)
	stop_sluiced

	# 1c: reused keep-alive connections, in a new daemon.
	hold_daemon hold3
	rss0c=$rss0
	hold_wave hold3 "$slow_url" "$fast_url"
	sleep 2
	w7=$(queues_field waiting)
	rss7=$(rss_kib "$spid")
	hold_leave
	drain3=$t_drain
	q3=$t_queue
	errs3=$(grep -c -E '^(error|warn)' "$tmp/hold3.sluiced.err" || true)
	alive "$spid" || fail "sluiced died in part 1c: $(tail -20 "$tmp/hold3.sluiced.err")"
	stop_sluiced
	opid=$hold_opid
	stop_origin
	opid=$fast_opid
	stop_origin

	out ""
	out "1. $clients clients waiting at once: one destination at rps 1, burst 1; each client one keep-alive connection with one request in flight, sending another on each response"
	out "   before this part: $load1"
	out "1a. fresh connections"
	out "   all queued after          $q1 s"
	out "   waiting (GET /queues)     $w1 (2 s later), $w2 (after the CPU window)"
	out "   VmRSS of sluiced          $(mib "$rss0") before, $(mib "$rss1") with them waiting, $(mib "$rss2") after the CPU window"
	out "   memory per waiting request $(per_req "$rss0" "$rss1" "$w1")  (goal <= 16 KiB; VmRSS, user memory: the kernel's socket memory is not in it)"
	out "   file descriptors          $fd0 before, $fd1 while waiting, $fd3 after they left"
	awk -v c="$((c1 - c0))" -v hz="$hz" -v s="$secs" -v x="$((x1 - x0))" 'BEGIN {
		printf "   CPU while waiting         %d ms in %d s = %.2f %% of one core; %.1f context switches/s (all threads)\n", c * 1000 / hz, s, 100 * c / hz / s, x / s
	}' >>"$report"
	out "   (the queue dispatches 1 req/s meanwhile: each completes a request and its client sends another)"
	out "   CPU by thread over that window, ticks of 1/$hz s:"
	awk 'NR == FNR { t0[$1] = $3; next }
		{ printf "     tid %-8s %-16s %d\n", $1, $2, $3 - t0[$1] }' \
		"$tmp/threads0" "$tmp/threads1" >>"$report"
	out "   after the clients closed   no request waiting after $drain1; $w3 two seconds later"
	out "   requests $reqs, attempts (sent upstream) $attempts: the abandoned ones were never sent"
	out "   VmRSS after they left      $(mib "$rss3")"
	sed -n 's/^group - /   load generator: /p' "$tmp/hold1.lg" >>"$report"
	out "1b. the same again in the same daemon (memory reused, nothing leaked?)"
	out "   all queued after $q2 s; waiting $w5; VmRSS $(mib "$rss5") with them waiting, $(mib "$rss6") after they left ($(per_req "$rss3" "$rss6" "$clients") per client more than after 1a); no request waiting after $drain2; $fd6 fds"
	out "1c. reused keep-alive connections: each connection first gets one response (from a second, unthrottled origin), then its request to the rps-1 destination waits; new daemon"
	out "   all queued after $q3 s; waiting $w7; VmRSS $(mib "$rss0c") before, $(mib "$rss7") with them waiting"
	out "   memory per waiting request $(per_req "$rss0c" "$rss7" "$w7")  (goal <= 16 KiB)"
	out "   no request waiting after $drain3 once they closed"
	sed -n 's/^group - /   load generator: /p' "$tmp/hold3.lg" >>"$report"
	out "   sluiced log: $errs1 error/warn lines (1a, 1b), $errs3 (1c)"
}

# 1d: what one dispatch costs sluiced while few or many requests wait.
part1d() {
	cost_rps=500
	cost_warm=${THROTTLE_COST_WARM:-1}
	# 20,000 waiting too, when the open files allow it. sluiced keeps
	# max_in_flight (512) + 64 files for upstream work and two per shard
	# of 256 connections, and refuses clients beyond the rest (front.c);
	# the load generator needs one per client.
	cost_fits() {
		[ "$1" -le $((nofile - 576 - 2 * ($1 / 256 + 2))) ]
	}
	cost_n=${THROTTLE_COST:-50 $clients}
	cost_skip=""
	if [ -z "${THROTTLE_COST:-}" ] && [ "$clients" -lt 20000 ]; then
		if cost_fits 20000; then
			cost_n="$cost_n 20000"
		else
			cost_skip="20000 waiting: skipped, open files limited to $nofile (sluiced would refuse some: it needs about 20,740)"
		fi
	fi
	n_ok=""
	for nc in $cost_n; do
		if cost_fits "$nc"; then
			n_ok="$n_ok $nc"
		else
			cost_skip="${cost_skip:+$cost_skip; }$nc waiting: skipped, open files limited to $nofile (sluiced would refuse some)"
		fi
	done
	cost_n=${n_ok# }
	cmax=$clients
	for nc in $cost_n; do
		[ "$nc" -le "$cmax" ] || cmax=$nc
	done
	say "part 1d: CPU per dispatch at $cost_rps req/s, $cost_n waiting"
	load1d=$(load_now)
	start_origin cost
	cat >"$tmp/cost.yaml" <<-EOF
	# written by bench/throttle.sh: part 1d, cost of a dispatch
	log_level: info
	access_log: false
	max_in_flight: 512
	max_queued: $((cmax * 4 + 1000))
	sync_timeout: 2h
	drain_timeout: 1s
	defaults:
	  rps: $cost_rps
	  concurrency: 1000
	  burst: 1
	  max_queued: $((cmax * 2 + 1000))
	EOF
	start_sluiced cost
	origin_real=$(child_of "$opid")
	: >"$tmp/cost.windows"
	# shellcheck disable=SC2086 # words of $cost_n
	for nc in $cost_n; do
		# shellcheck disable=SC2086
		$on_load "$tmp/loadgen" -x "$paddr" -u "http://127.0.0.1:$oport/c" \
			-g "-:$nc" -d 0 >"$tmp/cost$nc.lg" 2>"$tmp/cost$nc.lg.err" &
		lgpid=$!
		pids="$pids $lgpid"
		queued() {
			alive "$lgpid" || return 0
			w=$(queues_field waiting)
			[ -n "$w" ] && [ "$w" -ge $((nc - 5)) ]
		}
		wait_until 120 queued || true
		alive "$lgpid" || fail "the load generator died: $(cat "$tmp/cost$nc.lg.err")"
		sleep "$cost_warm"
		m0=$(mono_us)
		c0=$(cpu_ticks "$spid")
		f0=$(minflt "$spid")
		o0=$(cpu_ticks "$origin_real")
		sleep "$secs"
		c1=$(cpu_ticks "$spid")
		f1=$(minflt "$spid")
		o1=$(cpu_ticks "$origin_real")
		m1=$(mono_us)
		w=$(queues_field waiting)
		echo "$nc $w $m0 $m1 $((c1 - c0)) $((o1 - o0)) $((f1 - f0))" >>"$tmp/cost.windows"
		kill -TERM "$lgpid"
		wait "$lgpid" 2>/dev/null || true
		drained() {
			w=$(queues_field waiting)
			[ "$w" = 0 ]
		}
		wait_until 60 drained || true
		sleep 1
	done
	alive "$spid" || fail "sluiced died in part 1d"
	stop_sluiced
	stop_origin
	out "1d. CPU per dispatch while few or many requests wait: one queue at $cost_rps req/s, burst 1, closed-loop clients; ${secs} s each, starting ${cost_warm} s after all are queued"
	out "   before this part: $load1d"
	while read -r n w m0 m1 c o f; do
		d=$(awk -v a="$m0" -v b="$m1" '$1 >= a && $1 < b { k++ } END { print k + 0 }' \
			"$tmp/cost.arrivals")
		awk -v n="$n" -v w="$w" -v d="$d" -v c="$c" -v o="$o" -v f="$f" -v hz="$hz" \
		    -v s="$(awk -v a="$m0" -v b="$m1" 'BEGIN { print (b - a) / 1e6 }')" 'BEGIN {
			printf "   %6d clients (%s waiting at the end): %d dispatches in %.1f s, sluiced %.0f %% of one core = %.0f us of CPU per dispatch (origin %.0f us); %d page faults in sluiced\n",
			    n, w, d, s, 100 * c / hz / s, d ? c * 1e6 / hz / d : 0, d ? o * 1e6 / hz / d : 0, f
		}' >>"$report"
	done <"$tmp/cost.windows"
	[ -z "$cost_skip" ] || out "   $cost_skip"
}

# --- 2. pacing accuracy ------------------------------------------------------------------

# part2 BURST
part2() {
	pb=$1
	out ""
	out "2. pacing accuracy: one queue, burst $pb, concurrency 1000; 50 closed-loop clients keep a backlog for ${secs} s per rate"
	out "   before this part: $(load_now)"
	out "   arrival = the origin parsed the request's header block (so loopback and curl latency are included)"
	out "   dev: arrival k minus (t0 + k/rps), t0 = first arrival; gap: time between consecutive arrivals"
	out "   late vs the limit: arrival k minus max(arrival k-1 + T, when request k was sent), k > 0: how long after the limit allowed it each dispatch arrived"
	$analyze pacing-header | sed 's/^/   /' >>"$report"
	for rps in $rates; do
		say "part 2: pacing at $rps req/s, burst $pb, for ${secs} s"
		name=pace$rps-b$pb
		start_origin "$name"
		cat >"$tmp/$name.yaml" <<-EOF
		# written by bench/throttle.sh: part 2, pacing at $rps req/s, burst $pb
		log_level: info
		access_log: false
		max_in_flight: 1000
		sync_timeout: 2h
		drain_timeout: 1s
		defaults:
		  rps: $rps
		  concurrency: 1000
		  burst: $pb
		  max_queued: 100000
		destinations:
		  "127.0.0.1:$oport":
		    rps: $rps
		    concurrency: 1000
		    burst: $pb
		EOF
		start_sluiced "$name"
		# shellcheck disable=SC2086
		$on_load "$tmp/loadgen" -x "$paddr" -u "http://127.0.0.1:$oport/p" \
			-g "-:50" -d "$secs" -o "$tmp/$name.rec" >"$tmp/$name.lg" \
			2>"$tmp/$name.lg.err" ||
			fail "the load generator failed: $(cat "$tmp/$name.lg.err")"
		alive "$spid" || fail "sluiced died at $rps req/s"
		stop_sluiced
		stop_origin
		$analyze pacing "$tmp/$name.arrivals" "$tmp/$name.lg" "$rps" "$pb" \
			"$tmp/$name.rec" | sed 's/^/   /' >>"$report"
	done
	out "   goals: achieved = configured, dev p99 < 5 ms, late p99 < 5 ms, no window over rps*W + burst"
}

# --- 3. fairness --------------------------------------------------------------------------

part3() {
	say "part 3: fairness under a flood (aggregate_rps 100)"
	load3=$(load_now)
	start_origin fair
	cat >"$tmp/fair.yaml" <<-EOF
	# written by bench/throttle.sh: part 3, fairness
	log_level: info
	access_log: false
	max_in_flight: 1000
	sync_timeout: 2h
	drain_timeout: 1s
	defaults:
	  rps: 100
	  concurrency: 1000
	  burst: 1
	  max_queued: 100000
	destinations:
	  "127.0.0.1:$oport":
	    rps: 100
	    concurrency: 1000
	    aggregate_rps: 100
	EOF
	start_sluiced fair
	url=http://127.0.0.1:$oport/f
	out ""
	out "3. fairness: one destination, aggregate_rps 100, each key's queue rps 100, burst 1, weights 1; keys = Authorization: Bearer A|B|C; ${secs} s per run"
	out "   before this part: $load3"
	for run in "a A:400 B:2 C:2" "b A:200 B:200 C:200" "c A:400 B:1:100 C:1:100"; do
		# shellcheck disable=SC2086 # words of $run
		set -- $run
		tag=$1
		shift
		say "part 3$tag: $*"
		gargs=""
		for g in "$@"; do gargs="$gargs -g $g"; done
		# shellcheck disable=SC2086
		$on_load "$tmp/loadgen" -x "$paddr" -u "$url" $gargs -d "$secs" \
			-o "$tmp/fair$tag.rec" >"$tmp/fair$tag.lg" \
			2>"$tmp/fair$tag.lg.err" ||
			fail "the load generator failed: $(cat "$tmp/fair$tag.lg.err")"
		alive "$spid" || fail "sluiced died in part 3$tag"
		# The abandoned requests leave the queues; the next run starts
		# from empty queues.
		drained() {
			w=$(queues_field waiting)
			[ "$w" = 0 ]
		}
		wait_until 30 drained || echo "throttle: warning: requests" \
			"still waiting after run 3$tag" >&2
		sleep 1
	done
	stop_sluiced
	stop_origin
	for tag in a b c; do
		case $tag in
		a) title="3a. A floods (400 connections in a closed loop), B and C keep 2 requests outstanding each" ;;
		b) title="3b. A, B and C flood equally (200 connections each)" ;;
		c) title="3c. A floods (400 connections), B and C light: 1 request at a time, 100 ms pause after each response" ;;
		esac
		jain=jain
		[ "$tag" = c ] && jain=nojain
		out ""
		out "$title"
		$analyze fairness "$tmp/fair.arrivals" "$tmp/fair$tag.lg" \
			"$tmp/fair$tag.rec" 100 "$jain" A B C >>"$report"
	done
	out ""
	out "   goals: a light key waits at most about one DRR round (one quantum of each other backlogged key: 10 ms per key at 100 req/s aggregate); equal floods share equally (Jain's index 1.0)"
}

# --- 4. the scheduler alone ------------------------------------------------------------

part4() {
	out ""
	if [ ! -f "$top/bench/sched_bench.c" ]; then
		out "4. bench/sched_bench.c: not present, skipped"
		return 0
	fi
	say "part 4: bench/sched_bench.c"
	if ! (cd "$top" && cc -O2 -D_GNU_SOURCE -iquote src src/sched.c \
		src/sched_limits.c src/sched_table.c src/heap.c \
		src/rate_ctl.c src/log.c \
		bench/sched_bench.c -lm -o "$tmp/sched_bench") \
		>"$tmp/sched_bench.err" 2>&1; then
		out "4. bench/sched_bench.c: does not build:"
		sed 's/^/   /' "$tmp/sched_bench.err" >>"$report"
		return 0
	fi
	cycles=4000000
	[ "$quick" = 1 ] && cycles=1000000
	out "4. bench/sched_bench.c (the scheduler alone, simulated time; $cycles cycles per row)"
	# shellcheck disable=SC2086
	$on_load "$tmp/sched_bench" "$cycles" 2>&1 | sed 's/^/   /' >>"$report" ||
		out "   sched_bench failed"
}

has_part 1 && part1
if has_part 1 || has_part 1d; then
	part1d
fi
if has_part 2; then
	for b in $bursts; do
		part2 "$b"
	done
fi
has_part 3 && part3
has_part 4 && part4

out ""
out "after the runs: load average $(cut -d' ' -f1-3 /proc/loadavg)"

mkdir -p "$top/bench/out"
cp "$report" "$top/bench/out/throttle-$stamp.txt"
cat "$report"
echo "report: bench/out/throttle-$stamp.txt" >&2
