#!/bin/bash
# Measures what operating sluiced costs the traffic it carries, through the
# real daemon on 127.0.0.1 ephemeral ports:
#
#   1. reload under load: one destination on a fast local origin
#      (bench/origin.c) at rps 500, concurrency 100, and 100 closed-loop
#      connections sharing one key (bench/loadgen.c), so about 100
#      requests wait in one queue, about 200 ms each. Two runs of S
#      seconds against fresh daemons: (a) no reload; (b) POST /reload
#      every 250 ms, each one flipping the rps of a second destination that
#      no request uses (127.0.0.1:9) between 10 and 20, so every reload
#      changes the configuration and walks every queue while the loaded
#      queue's limits stay the same. Per run, from loadgen's per-request
#      records: requests completed, achieved rate, latency p50 / p99 / max,
#      non-200 answers and connection errors, and the gaps between
#      consecutive completions (a stall of the engine shows there); then
#      p99 (b) - p99 (a), the latency reloads add, and the reloads sent,
#      answered 200, and how long each took to answer.
#   2. cost of GET /metrics with many queues: a destination at rps 0.001
#      where each of Q distinct credentials (Authorization: Bearer k<i>)
#      has one request waiting (a python client holds one keep-alive
#      connection per credential: its first request is answered, its
#      second waits). At 0 queues and at each count of OPS_QUEUES:
#      OPS_SCRAPES scrapes of GET /metrics one after the other (curl
#      time_total p50 / p99 / max, size), with the default metrics
#      settings and again after a POST /reload that adds
#
#          metrics:
#            per_key: true
#            max_keys: 10000     (or the largest count, if larger)
#
#      and one GET /queues?limit=10000 page for comparison; sluiced's CPU
#      time per scrape (utime + stime of /proc/PID/stat, clock ticks, and
#      the threads' schedstat run time, nanoseconds, less what the daemon
#      spends idle in as long), and its VmRSS.
#
# The report is printed and appended to bench/results/ops-<date>.txt, with
# the load average before and after and the sluiced commit. Every server
# runs under timeout(1) and is killed by PID when the script exits; proxy
# variables are unset.
#
#   bench/ops.sh [-h]
#
# Environment:
#   SLUICED          the daemon (default: _build/bench/src/sluiced, else
#                    _build/dev/src/sluiced, else src/sluiced; built with
#                    CFLAGS=-O2 into _build/bench when none exists)
#   OPS_SECONDS      S, seconds of each run of part 1 (default 10)
#   OPS_CONNS        connections of part 1 (default 100)
#   OPS_RPS          rps of part 1's loaded destination (default 500)
#   OPS_RELOAD_MS    period of part 1's reloads, ms (default 250)
#   OPS_QUEUES       queue counts of part 2, cumulative (default
#                    "1000 10000"); counts the open files cannot hold are
#                    lowered, with a warning
#   OPS_SCRAPES      scrapes of GET /metrics per measurement (default 20)
#   OPS_PARTS        parts to run (default "1 2")
#   OPS_PIN          1 (default): sluiced and origin on CPU 0, load
#                    generator, python clients and curl on CPU 1; 0: no
#                    pinning
#   OPS_OUT          the report file (default bench/results/ops-<date>.txt)
#   OPS_KEEP         1: keep the raw logs (printed path)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)

usage() {
	sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'
}
case ${1:-} in
-h | --help) usage; exit 0 ;;
'') ;;
*) echo "ops: unknown argument '$1'" >&2; usage >&2; exit 1 ;;
esac

secs=${OPS_SECONDS:-10}
conns=${OPS_CONNS:-100}
rps=${OPS_RPS:-500}
period=${OPS_RELOAD_MS:-250}
qcounts=${OPS_QUEUES:-1000 10000}
scrapes=${OPS_SCRAPES:-20}
parts=${OPS_PARTS:-1 2}
pin=${OPS_PIN:-1}
keep=${OPS_KEEP:-0}
# shellcheck disable=SC2086 # words of $qcounts
for v in "$secs" "$conns" "$rps" "$period" "$scrapes" $qcounts; do
	case $v in
	'' | *[!0-9]* | 0) echo "ops: '$v' is not a whole number > 0" >&2; exit 1 ;;
	esac
done

fail() {
	echo "ops: $*" >&2
	exit 1
}
say() {
	echo "== $*" >&2
}
has_part() {
	case " $parts " in *" $1 "*) return 0 ;; esac
	return 1
}

unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY \
	no_proxy NO_PROXY ftp_proxy FTP_PROXY 2>/dev/null || true
for t in curl python3 cc pkg-config timeout; do
	command -v "$t" >/dev/null 2>&1 || fail "'$t' not found"
done

if [ -n "${SLUICED:-}" ]; then
	sluiced=$SLUICED
elif [ -x "$top/_build/bench/src/sluiced" ]; then
	sluiced=$top/_build/bench/src/sluiced
elif [ -x "$top/_build/dev/src/sluiced" ]; then
	sluiced=$top/_build/dev/src/sluiced
elif [ -x "$top/src/sluiced" ]; then
	sluiced=$top/src/sluiced
else
	say "building sluiced (-O2) in _build/bench"
	if [ ! -x "$top/configure" ] || [ "$top/configure.ac" -nt "$top/configure" ]; then
		(cd "$top" && autoreconf -fi) >&2 || fail "autoreconf failed"
	fi
	mkdir -p "$top/_build/bench"
	if [ ! -f "$top/_build/bench/Makefile" ]; then
		(cd "$top/_build/bench" && ../../configure -q CFLAGS=-O2) >&2 ||
			fail "configure failed"
	fi
	make -C "$top/_build/bench" -j"$(nproc)" src/sluiced >&2 ||
		fail "sluiced does not build"
	sluiced=$top/_build/bench/src/sluiced
fi
[ -x "$sluiced" ] || fail "'$sluiced' is not executable"

. "$top/bench/lib.sh"
bench_tmp ops

say "building bench/loadgen.c and bench/origin.c"
cc -O2 -Wall "$top/bench/loadgen.c" -o "$tmp/loadgen" ||
	fail "bench/loadgen.c does not build"
# shellcheck disable=SC2046
cc -O2 -Wall "$top/bench/origin.c" $(pkg-config --cflags --libs libmicrohttpd) \
	-o "$tmp/origin" || fail "bench/origin.c does not build"

# Part 2 holds one socket per queue in the client and one in sluiced:
# raise the soft limit of open files to the hard one.
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -ge 65536 ]; then
	ulimit -n 65536
else
	ulimit -n "$hard"
fi
nofile=$(ulimit -n)
# sluiced keeps max_in_flight (512) + 64 files for upstream work and two
# per shard of 256 connections (bench/throttle.sh, part 1d): leave 1000.
qmax=$((nofile - 1000))
qlist=""
for q in $qcounts; do
	if [ "$q" -gt "$qmax" ]; then
		echo "ops: warning: open files limited to $nofile: part 2 holds" \
			"$qmax queues, not $q" >&2
		q=$qmax
	fi
	qlist="$qlist $q"
done
qlist=${qlist# }
qtop=0
for q in $qlist; do [ "$q" -le "$qtop" ] || qtop=$q; done
max_keys=10000
[ "$qtop" -le "$max_keys" ] || max_keys=$qtop

if [ "$pin" = 1 ] && [ "$(nproc)" -ge 2 ]; then
	on_srv="taskset -c 0"
	on_load="taskset -c 1"
	pinning="sluiced and origin on CPU 0; loadgen, python clients and curl on CPU 1"
else
	on_srv=""
	on_load=""
	pinning="none"
fi
life=$((secs * 4 + 900))
hz=$(getconf CLK_TCK)

# --- helpers --------------------------------------------------------------------

# wait_until, alive, child_of, start_sluiced, queues_field, rss_kib,
# cpu_ticks, out, mono_us: bench/lib.sh, sourced above.

# start_origin NAME: sets opid (timeout's pid), oport.
start_origin() {
	rm -f "$tmp/$1.port"
	# shellcheck disable=SC2086
	timeout "$life" $on_srv "$tmp/origin" -p "$tmp/$1.port" -c 20000 \
		>"$tmp/$1.origin.out" 2>"$tmp/$1.origin.err" &
	opid=$!
	pids="$pids $opid"
	wait_until 5 test -s "$tmp/$1.port" ||
		fail "the origin did not start: $(cat "$tmp/$1.origin.err")"
	oport=$(cat "$tmp/$1.port")
}

stop_pid() {
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# Run time of all threads of $1, nanoseconds (schedstat).
run_ns() {
	cat /proc/"$1"/task/*/schedstat 2>/dev/null |
		awk '{ s += $1 } END { printf "%.0f\n", s }'
}

report=$tmp/report.txt
: >"$report"

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
awk -v l="${load_before%% *}" 'BEGIN { exit !(l >= 0.5) }' &&
	echo "ops: warning: load average $load_before: the machine is not" \
		"quiet, figures may be off" >&2

rev=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo none)
dirty=$(git -C "$top" status --porcelain -- src 2>/dev/null | head -1)
[ -z "$dirty" ] || rev="$rev+uncommitted"
[ -z "${SLUICED:-}" ] || rev="SLUICED set; tree $rev"
out "bench/ops.sh, $(date -u '+%Y-%m-%d %H:%M UTC')"
out "sluiced: $sluiced (commit $rev)"
out "machine: $(nproc) cores ($(sed -n 's/^model name[^:]*: *//p' /proc/cpuinfo | head -1)), $(uname -sr); open files $nofile"
out "pinning: $pinning"
out "load average before: $load_before"

# --- 1. reload under load ---------------------------------------------------------

cat >"$tmp/reloader.py" <<'EOF'
# Rewrites the configuration (atomically) and POSTs /reload every PERIOD ms
# for SECS seconds; one line per reload:
#   T_POST_US T_ANSWER_US STATUS BODY     (CLOCK_MONOTONIC, as loadgen's)
import http.client, os, sys, time
admin, cfg, period_ms, secs, out = sys.argv[1:6]
values = sys.argv[6:]
host, port = admin.rsplit(":", 1)
template = open(cfg + ".in").read()
period = int(period_ms) / 1000.0
t0 = time.monotonic()
k = 0
with open(out, "w") as f:
    while True:
        k += 1
        nxt = t0 + k * period
        time.sleep(max(0.0, nxt - time.monotonic()))
        if time.monotonic() - t0 >= float(secs):
            break
        with open(cfg + ".new", "w") as c:
            c.write(template.replace("@UNUSED_RPS@", values[k % len(values)]))
        os.replace(cfg + ".new", cfg)
        ts = time.monotonic()
        try:
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
            conn.request("POST", "/reload")
            r = conn.getresponse()
            body = r.read().decode(errors="replace").replace("\n", " ")
            status = r.status
            conn.close()
        except Exception as e:  # a failed reload is a result, not a crash
            status, body = 0, "error: %s" % e
        te = time.monotonic()
        f.write("%d %d %d %s\n" % (ts * 1e6, te * 1e6, status, body))
        f.flush()
EOF

cat >"$tmp/analyze1.py" <<'EOF'
# One run of part 1: loadgen's records and stdout, the reloads (if any).
import math, sys
rec, lgout, reloads = sys.argv[1:4]

def pct(v, p):
    if not v:
        return float("nan")
    return v[max(0, math.ceil(p * len(v)) - 1)]

lines = [l.split() for l in open(lgout)]
start = next(int(l[1]) for l in lines if l[0] == "start")
stop = next(int(l[1]) for l in lines if l[0] == "stop")
group = next(l for l in lines if l[0] == "group")
g = dict(x.split("=") for x in group[2:])
recs = [l.split() for l in open(rec)]
lat = sorted((int(r[2]) - int(r[1])) / 1000.0 for r in recs)
non200 = sum(1 for r in recs if r[3] != "200")
dur = (stop - start) / 1e6
done = sorted(int(r[2]) for r in recs)
# Gaps between consecutive completions, after the first 0.5 s (the
# connections are opened then).
gaps = []
for a, b in zip(done, done[1:]):
    if a >= start + 500000:
        gaps.append((b - a, a))
gs = sorted(x[0] / 1000.0 for x in gaps)
rl = []
if reloads != "-":
    for l in open(reloads):
        f = l.split(" ", 3)
        rl.append((int(f[0]), int(f[1]), int(f[2]), f[3].strip() if len(f) > 3 else ""))
near = []
far = []
for gap, a in gaps:
    if any(ts - 1000 <= a <= te + 20000 for ts, te, _, _ in rl):
        near.append(gap / 1000.0)
    else:
        far.append(gap / 1000.0)
print("ROW %d %.1f %.2f %.2f %.2f %d %s %.2f %.2f" % (
    len(recs), len(recs) / dur, pct(lat, 0.5), pct(lat, 0.99), lat[-1] if lat else float("nan"),
    non200, g.get("errors", "?"), pct(gs, 0.99), gs[-1] if gs else float("nan")))
print("P99 %.3f" % pct(lat, 0.99))
if rl:
    ok = sum(1 for r in rl if r[2] == 200)
    took = sorted((te - ts) / 1000.0 for ts, te, _, _ in rl)
    other = {}
    for r in rl:
        if r[2] != 200:
            other[r[2]] = other.get(r[2], 0) + 1
    restart = sum(1 for r in rl if r[2] == 200 and '"restart_needed":[]' not in r[3])
    print("RELOADS %d %d %.2f %.2f %.2f %s %d" % (
        len(rl), ok, pct(took, 0.5), pct(took, 0.99), took[-1],
        ",".join("%s:%d" % kv for kv in sorted(other.items())) or "-", restart))
    print("GAPS %d %.2f %.2f %d %.2f %.2f" % (
        len(near), max(near) if near else 0, pct(sorted(near), 0.99) if near else 0,
        len(far), max(far) if far else 0, pct(sorted(far), 0.99) if far else 0))
EOF

# run1 NAME RELOAD(0|1): one run against a fresh daemon; appends the
# analysis to $tmp/NAME.an.
run1() {
	local name=$1 reload=$2 lgpid rlpid=""
	cat >"$tmp/$name.yaml.in" <<-EOF
	# written by bench/ops.sh: part 1, reload under load
	log_level: info
	access_log: false
	sync_timeout: 60s
	drain_timeout: 1s
	destinations:
	  "127.0.0.1:$oport":
	    rps: $rps
	    concurrency: $conns
	  "127.0.0.1:9":
	    rps: @UNUSED_RPS@
	EOF
	sed 's/@UNUSED_RPS@/10/' "$tmp/$name.yaml.in" >"$tmp/$name.yaml"
	start_sluiced "$name"
	r=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 \
		-x "http://$paddr" "http://127.0.0.1:$oport/warm" || true)
	[ "$r" = 200 ] || fail "a request through sluiced answered '$r'"
	# shellcheck disable=SC2086
	timeout $((secs + 60)) $on_load "$tmp/loadgen" -x "$paddr" \
		-u "http://127.0.0.1:$oport/o" -g "k:$conns" -d "$secs" \
		-o "$tmp/$name.rec" >"$tmp/$name.lg" 2>"$tmp/$name.lg.err" &
	lgpid=$!
	pids="$pids $lgpid"
	if [ "$reload" = 1 ]; then
		# shellcheck disable=SC2086
		timeout $((secs + 60)) $on_load python3 "$tmp/reloader.py" \
			"$aaddr" "$tmp/$name.yaml" "$period" "$secs" \
			"$tmp/$name.reloads" 20 10 2>"$tmp/$name.reloader.err" &
		rlpid=$!
		pids="$pids $rlpid"
	fi
	wait "$lgpid" || fail "the load generator failed: $(cat "$tmp/$name.lg.err")"
	if [ -n "$rlpid" ]; then
		wait "$rlpid" || fail "the reloader failed: $(cat "$tmp/$name.reloader.err")"
	fi
	alive "$spid" || fail "sluiced died in run $name: $(tail -20 "$tmp/$name.sluiced.err")"
	metric_ok=$(curl -sS --max-time 10 "http://$aaddr/metrics" |
		sed -n 's/^sluice_reloads_total{result="ok"} //p')
	metric_failed=$(curl -sS --max-time 10 "http://$aaddr/metrics" |
		sed -n 's/^sluice_reloads_total{result="failed"} //p')
	stop_pid "$stpid"
	python3 "$tmp/analyze1.py" "$tmp/$name.rec" "$tmp/$name.lg" \
		"$([ "$reload" = 1 ] && echo "$tmp/$name.reloads" || echo -)" \
		>"$tmp/$name.an" || fail "cannot analyse run $name"
	{
		echo "METRIC ${metric_ok:-?} ${metric_failed:-?}"
		echo "LOG $(grep -c 'in force' "$tmp/$name.sluiced.err" || true)" \
			"$(grep -c -E '^(error|warn)' "$tmp/$name.sluiced.err" || true)" \
			"$(sed -n 's/.*limits changed for \(destinations=[0-9]* queues=[0-9]*\).*/\1/p' \
				"$tmp/$name.sluiced.err" | sort | uniq -c |
				awk '{ printf "%s%s_%s_x%s", (NR > 1 ? "," : ""), $2, $3, $1 }')"
	} >>"$tmp/$name.an"
}

part1() {
	say "part 1: reload under load ($conns connections, rps $rps, ${secs} s a run)"
	local lb
	lb=$(cut -d' ' -f1-3 /proc/loadavg)
	start_origin p1
	run1 p1a 0
	say "part 1b: POST /reload every $period ms"
	run1 p1b 1
	stop_pid "$opid"

	out ""
	out "1. reload under load: $conns closed-loop connections sharing one key (Authorization: Bearer k) through sluiced to bench/origin.c, destination rps $rps, concurrency $conns, burst 1; a second destination (127.0.0.1:9) never requested; ${secs} s a run, fresh daemon each"
	out "   (b) POST /reload every $period ms, each rewriting the file with the unused destination's rps flipped 10 <-> 20"
	out "   before this part: load average $lb"
	out ""
	out "   run              done   req/s   p50 ms   p99 ms   max ms  non200 conn_err  gap p99 ms  gap max ms"
	for r in a b; do
		# shellcheck disable=SC2046
		set -- $(sed -n 's/^ROW //p' "$tmp/p1$r.an")
		case $r in a) t="a. no reload" ;; b) t="b. reloads" ;; esac
		printf '   %-14s %6s %7s %8s %8s %8s %7s %8s %11s %11s\n' \
			"$t" "$@" >>"$report"
	done
	pa=$(sed -n 's/^P99 //p' "$tmp/p1a.an")
	pb=$(sed -n 's/^P99 //p' "$tmp/p1b.an")
	out ""
	out "   added latency across reloads, p99 (b) - p99 (a): $(awk -v a="$pa" -v b="$pb" 'BEGIN { printf "%+.2f ms", b - a }')"
	# shellcheck disable=SC2046
	set -- $(sed -n 's/^RELOADS //p' "$tmp/p1b.an")
	out "   reloads: $1 sent, $2 answered 200 (others by status: $6; 200s naming a restart-only setting: $7); answered in p50 $3 ms, p99 $4 ms, max $5 ms"
	# shellcheck disable=SC2046
	set -- $(sed -n 's/^METRIC //p' "$tmp/p1b.an")
	out "   sluice_reloads_total after (b): ok $1, failed $2"
	# shellcheck disable=SC2046
	set -- $(sed -n 's/^LOG //p' "$tmp/p1b.an") "" ""
	out "   daemon log (b): $1 'configuration ... in force' lines, $2 warn/error lines; 'reload: limits changed for' lines: $(echo "${3:-none}" | sed 's/_x\([0-9]*\)/ (\1 times)/g; s/_/ /g; s/,/, /g')"
	# shellcheck disable=SC2046
	set -- $(sed -n 's/^GAPS //p' "$tmp/p1b.an")
	out "   completion gaps (b): $1 starting within a reload (POST to answer + 20 ms): max $2 ms, p99 $3 ms; $4 elsewhere: max $5 ms, p99 $6 ms"
	a_err=$(grep -c -E '^(error|warn)' "$tmp/p1a.sluiced.err" || true)
	out "   daemon log (a): $a_err warn/error lines"
	sed -n 's/^group /   loadgen (a): /p' "$tmp/p1a.lg" >>"$report"
	sed -n 's/^group /   loadgen (b): /p' "$tmp/p1b.lg" >>"$report"
}

# --- 2. /metrics with many queues ---------------------------------------------------

cat >"$tmp/hold.py" <<'EOF'
# Holds COUNT keep-alive connections to the proxy, credential k<FIRST+i>
# each: sends one request, reads its answer, sends a second one that
# waits. Writes its counters to STATUS (JSON) every half second and at
# SIGTERM. Anything answered to a waiting request is counted.
import errno, json, os, selectors, signal, socket, sys, time
proxy, url, first, count, status_path = sys.argv[1:6]
first, count = int(first), int(count)
ph, pp = proxy.rsplit(":", 1)
host = url.split("/")[2]
MAX_OPENING = 256
sel = selectors.DefaultSelector()
st = {"connected": 0, "first_200": 0, "first_other": {}, "waiting": 0,
      "answered_while_waiting": {}, "closed": 0, "errors": 0}
conns = {}
nxt = 0
opening = 0
stop = False

def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)

def req(i):
    return ("GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer k%d\r\n\r\n"
            % (url, host, i)).encode()

def bump(d, k):
    d[str(k)] = d.get(str(k), 0) + 1

def drop(s, c):
    global opening
    sel.unregister(s)
    s.close()
    del conns[c["fd"]]
    if c["phase"] < 3:
        opening -= 1

def open_one():
    global nxt, opening
    i = first + nxt
    nxt += 1
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect((ph, int(pp)))
    except BlockingIOError:
        pass
    c = {"i": i, "phase": 0, "buf": b"", "fd": s.fileno(), "sock": s}
    conns[s.fileno()] = c
    sel.register(s, selectors.EVENT_WRITE, c)
    opening += 1

def answer_done(buf):
    # Status and whether the whole answer is in buf (Content-Length or
    # chunked); None when the head is not complete.
    h = buf.find(b"\r\n\r\n")
    if h < 0:
        return None
    head = buf[:h].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    body = buf[h + 4:]
    for l in head[1:]:
        k, _, v = l.partition(":")
        k = k.strip().lower()
        if k == "content-length":
            return status, len(body) >= int(v)
        if k == "transfer-encoding" and "chunked" in v.lower():
            return status, body.endswith(b"0\r\n\r\n")
    return status, True

last = 0.0
def write_status(force=False):
    global last
    now = time.monotonic()
    if not force and now - last < 0.5:
        return
    last = now
    with open(status_path + ".new", "w") as f:
        json.dump(st, f)
    os.replace(status_path + ".new", status_path)

while not stop:
    while nxt < count and opening < MAX_OPENING:
        open_one()
    for key, ev in sel.select(timeout=0.2):
        c = key.data
        s = c["sock"]
        try:
            if c["phase"] == 0:
                e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if e:
                    st["errors"] += 1
                    drop(s, c)
                    continue
                st["connected"] += 1
                s.send(req(c["i"]))
                c["phase"] = 1
                sel.modify(s, selectors.EVENT_READ, c)
                continue
            data = s.recv(65536)
        except OSError:
            st["errors"] += 1
            drop(s, c)
            continue
        if not data:
            st["closed"] += 1
            drop(s, c)
            continue
        c["buf"] += data
        a = answer_done(c["buf"])
        if a is None or not a[1]:
            continue
        c["buf"] = b""
        if c["phase"] == 1:
            if a[0] == 200:
                st["first_200"] += 1
            else:
                bump(st["first_other"], a[0])
            s.send(req(c["i"]))
            c["phase"] = 3
            st["waiting"] += 1
            opening -= 1
        else:
            bump(st["answered_while_waiting"], a[0])
    write_status()
write_status(True)
EOF

# hold_start FIRST COUNT: a holder for credentials k<FIRST>.. ; waits until
# the daemon shows TOTAL queues and TOTAL waiting. Sets t_hold (s).
hold_start() {
	local first=$1 count=$2 total=$(($1 + $2)) hp t_a
	t_a=$SECONDS
	# shellcheck disable=SC2086
	timeout "$life" $on_load python3 "$tmp/hold.py" "$paddr" \
		"http://127.0.0.1:$oport/q" "$first" "$count" \
		"$tmp/hold$first.status" 2>"$tmp/hold$first.err" &
	hp=$!
	pids="$pids $hp"
	holders="$holders $hp"
	all_waiting() {
		alive "$hp" || return 0
		local q w
		q=$(queues_field queues)
		w=$(queues_field waiting)
		[ -n "$q" ] && [ -n "$w" ] && [ "$q" -ge "$total" ] &&
			[ "$w" -ge "$total" ]
	}
	wait_until 300 all_waiting || true
	alive "$hp" || fail "the python client died: $(tail -5 "$tmp/hold$first.err")"
	q=$(queues_field queues)
	w=$(queues_field waiting)
	if [ -z "$q" ] || [ "$q" -lt "$total" ] || [ "$w" -lt "$total" ]; then
		fail "after 300 s the daemon shows queues=${q:-?} waiting=${w:-?}, not $total; client: $(cat "$tmp/hold$first.status" 2>/dev/null)"
	fi
	t_hold=$((SECONDS - t_a))
}

# write_cfg2 PER_KEY(0|1)
write_cfg2() {
	{
		echo "# written by bench/ops.sh: part 2, /metrics with many queues"
		echo "log_level: info"
		echo "access_log: false"
		echo "max_queued: $((qtop * 2 + 1000))"
		echo "max_queues: $((qtop * 2 + 1000))"
		echo "sync_timeout: 2h"
		echo "drain_timeout: 1s"
		echo "destinations:"
		echo "  \"127.0.0.1:$oport\":"
		echo "    rps: 0.001"
		echo "    max_queued: 10"
		if [ "$1" = 1 ]; then
			echo "metrics:"
			echo "  per_key: true"
			echo "  max_keys: $max_keys"
		fi
	} >"$tmp/p2.yaml.new"
	mv "$tmp/p2.yaml.new" "$tmp/p2.yaml"
}

reload2() {
	local r
	r=$(curl -sS --max-time 30 -X POST -w ' %{http_code}' "http://$aaddr/reload" || true)
	case $r in
	*' 200') ;;
	*) fail "POST /reload answered '$r'" ;;
	esac
}

# Idle CPU of the daemon, ns of run time per s, over 1 s.
idle_rate() {
	local n0 n1 m0 m1
	m0=$(mono_us)
	n0=$(run_ns "$spid")
	sleep 1
	n1=$(run_ns "$spid")
	m1=$(mono_us)
	awk -v n="$((n1 - n0))" -v m="$((m1 - m0))" 'BEGIN { printf "%.0f\n", n / (m / 1e6) }'
}

# measure LABEL QUEUES: OPS_SCRAPES scrapes of /metrics, one row.
measure() {
	local label=$1 nq=$2 c0 c1 n0 n1 m0 m1 idle rss_a rss_b
	idle=$(idle_rate)
	rss_a=$(rss_kib "$spid")
	: >"$tmp/$label.times"
	m0=$(mono_us)
	c0=$(cpu_ticks "$spid")
	n0=$(run_ns "$spid")
	for _ in $(seq "$scrapes"); do
		# shellcheck disable=SC2086
		$on_load curl -sS --max-time 60 -o "$tmp/$label.body" \
			-w '%{http_code} %{size_download} %{time_total}\n' \
			"http://$aaddr/metrics" >>"$tmp/$label.times" ||
			echo "000 0 0" >>"$tmp/$label.times"
	done
	n1=$(run_ns "$spid")
	c1=$(cpu_ticks "$spid")
	m1=$(mono_us)
	rss_b=$(rss_kib "$spid")
	series=$(grep -c '^sluice_key_waiting{' "$tmp/$label.body" || true)
	cut=$(sed -n 's/^sluice_key_series_cut //p' "$tmp/$label.body")
	mq=$(sed -n 's/^sluice_queues //p' "$tmp/$label.body")
	awk -v label="$label" -v nq="$nq" -v c="$((c1 - c0))" -v hz="$hz" \
	    -v rn="$((n1 - n0))" -v idle="$idle" -v m="$((m1 - m0))" \
	    -v k="$scrapes" -v rss_a="$rss_a" -v rss_b="$rss_b" \
	    -v series="$series" -v cut="${cut:--}" -v mq="${mq:-?}" '
		{ t[NR] = $3 * 1000; if ($1 != 200) bad++; size = $2 }
		END {
			n = NR
			p50 = t[int(0.5 * n + 0.999999)]; p99 = t[int(0.99 * n + 0.999999)]
			printf "   %-8s %6d %6s %9d %7.2f %7.2f %7.2f %5d %8.2f %8.2f %9.2f %8.1f %7s %4s\n",
			    label, nq, mq, size, p50, p99, t[n], bad + 0,
			    c * 1000 / hz / k, rn / 1e6 / k,
			    (rn - idle * m / 1e6) / 1e6 / k, rss_b / 1024, series, cut
		}' <(sort -k3,3g "$tmp/$label.times") >>"$tmp/p2.rows"
}

# queues_page LABEL QUEUES: one GET /queues?limit=10000, one row.
queues_page() {
	local n0 n1 r
	n0=$(run_ns "$spid")
	# shellcheck disable=SC2086
	r=$($on_load curl -sS --max-time 60 -o "$tmp/$1.queues" \
		-w '%{http_code} %{size_download} %{time_total}' \
		"http://$aaddr/queues?limit=10000" || echo "000 0 0")
	n1=$(run_ns "$spid")
	rss_p=$(rss_kib "$spid")
	hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$spid/status")
	eu=$(sed -n 's/^  "engine_us": \([0-9]*\),\{0,1\}$/\1/p' "$tmp/$1.queues" | head -1)
	nl=$(grep -c '"destination"' "$tmp/$1.queues" || true)
	# shellcheck disable=SC2086
	set -- "$1" "$2" $r
	awk -v nq="$2" -v st="$3" -v size="$4" -v t="$5" -v n="$((n1 - n0))" \
	    -v eu="${eu:-?}" -v nl="$nl" -v rss="$rss_p" -v hwm="$hwm" 'BEGIN {
		printf "   %6d queues: status %s, %d bytes, %d queues listed, %.2f ms (curl), sluiced CPU %.2f ms, engine_us %s; VmRSS after %.1f MiB (peak so far %.1f)\n",
		    nq, st, size, nl, t * 1000, n / 1e6, eu, rss / 1024, hwm / 1024
	}' >>"$tmp/p2.pages"
}

part2() {
	local lb prev=0 q
	say "part 2: GET /metrics with $qlist queues"
	lb=$(cut -d' ' -f1-3 /proc/loadavg)
	start_origin p2
	write_cfg2 0
	start_sluiced p2
	holders=""
	: >"$tmp/p2.rows"
	: >"$tmp/p2.pages"
	: >"$tmp/p2.holds"
	rss0=$(rss_kib "$spid")
	for q in 0 $qlist; do
		if [ "$q" -gt "$prev" ]; then
			say "part 2: $q queues"
			hold_start "$prev" $((q - prev))
			echo "   $q queues with one request waiting each after $t_hold s more" >>"$tmp/p2.holds"
			prev=$q
			sleep 1
		fi
		write_cfg2 0
		reload2
		measure default "$q"
		write_cfg2 1
		reload2
		measure per_key "$q"
		queues_page "p$q" "$q"
	done
	w_end=$(queues_field waiting)
	alive "$spid" || fail "sluiced died in part 2: $(tail -20 "$tmp/p2.sluiced.err")"
	for h in $holders; do stop_pid "$h"; done
	stop_pid "$stpid"
	stop_pid "$opid"
	errs=$(grep -c -E '^(error|warn)' "$tmp/p2.sluiced.err" || true)

	out ""
	out "2. GET /metrics with many queues: destination rps 0.001 (max_queued 10), each credential Authorization: Bearer k<i> has one keep-alive connection whose first request was answered and whose second waits; sync_timeout 2h; $scrapes scrapes one after the other per row (curl, new connection each)"
	out "   before this part: load average $lb"
	out "   per_key rows: after POST /reload with 'metrics: {per_key: true, max_keys: $max_keys}' added; default rows: after a reload without it"
	out "   VmRSS with no queue: $(awk -v k="$rss0" 'BEGIN { printf "%.1f MiB", k / 1024 }')"
	cat "$tmp/p2.holds" >>"$report"
	out ""
	out "   metrics   queues  shown     bytes  p50 ms  p99 ms  max ms  !200 ticks ms  run ms  -idle ms  RSS MiB key_ser cut"
	cat "$tmp/p2.rows" >>"$report"
	out "   (shown: sluice_queues in the last scrape; ticks ms: utime+stime of /proc/PID/stat per scrape, 1/$hz s resolution;"
	out "    run ms: threads' schedstat run time per scrape; -idle ms: the same less the daemon's idle run time over as long;"
	out "    RSS: VmRSS after the scrapes; key_ser: sluice_key_waiting series; cut: sluice_key_series_cut)"
	out ""
	out "   GET /queues?limit=10000, one page:"
	cat "$tmp/p2.pages" >>"$report"
	out ""
	out "   waiting at the end: ${w_end:-?}; answers to waiting requests and errors seen by the clients:"
	for f in "$tmp"/hold*.status; do
		[ -f "$f" ] && out "     $(cat "$f")"
	done
	out "   daemon log: $errs warn/error lines"
	grep -E '^(error|warn)' "$tmp/p2.sluiced.err" | sort | uniq -c | sort -rn |
		head -5 | sed 's/^/     /' >>"$report" || true
}

has_part 1 && part1
has_part 2 && part2

out ""
out "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
out ""

dest=${OPS_OUT:-$top/bench/results/ops-$(date -u +%Y-%m-%d).txt}
mkdir -p "$(dirname "$dest")"
cat "$report" >>"$dest"
cat "$report"
say "appended to $dest"
