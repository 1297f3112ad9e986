#!/bin/bash
# Measures how much of a stated limit clients get, and how many 429s they
# cause, in the shared-key scenario of SPEC section 3a: N clients (default
# 50) sharing one key call an origin that allows L req/s (default 10) and
# answers 429 beyond. For each dialect the origin may state its limit in
# (t/integration/limit_origin.py: xratelimit, ietf, openai, anthropic)
# and for bare 429s with Retry-After, two ways, one after the other, each
# for S seconds (default 20) against a fresh origin:
#
#   direct   polite clients, no proxy: each sends its next call as soon as
#            it has an answer, and after a 429 waits its Retry-After (or
#            1 s) and sends the call again (t/integration/limit_client.py)
#   sluiced  the same clients through sluiced with its defaults (paced
#            mode: rps 2, concurrency 2, retries on), learning from the
#            answers
#   adaptive, frugal
#            the same through sluiced with that mode (for bare 429s:
#            the API says nothing but 429; SPEC 3a's goal for them is
#            >= 0.85 x L with <= 5 % of the attempts answered 429)
#
# and reports, as a Markdown table: achieved / L (calls answered 200 per
# second from the end of the origin's first window to the end of the
# run, over L), 429s per success (every 429 over every 200 the origin
# answered, the drain after the run included), the 429s after the first
# window, and whether the run meets the issue's goals: a quota dialect in
# the default mode >= 0.95 x L with no 429 after the first window,
# X-EZTHROTTLE-RPS >= 0.98 x L, bare 429s in adaptive or frugal mode
# >= 0.85 x L with <= 5 % of the attempts answered 429. Saved,
# with the parameters and the machine's load, to
# bench/results/limits-<date>.txt (appended).
#
#   bench/limits.sh [-h]
#
# Environment:
#   SLUICED          the daemon (default: the build tree's,
#                    _build/dev/src/sluiced, else src/sluiced)
#   LIMITS_CLIENTS   N, clients sharing the key (default 50)
#   LIMITS_RATE      L, calls a second the origin allows (default 10): a
#                    fixed window of 1 s for xratelimit, ietf and bare; a
#                    limit of 60 L a minute enforced as a bucket of L
#                    refilled at L a second for openai and anthropic
#   LIMITS_SECONDS   S, seconds of each run (default 20)
#   LIMITS_DIALECTS  default "xratelimit ietf openai anthropic bare";
#                    also ezthrottle (X-EZTHROTTLE-RPS on every answer)
#   LIMITS_PATHS     default "direct sluiced"; also adaptive, frugal
#   LIMITS_YAML      YAML added to sluiced's configuration (default none:
#                    the daemon's defaults)
#   LIMITS_QUIET     wait up to this many seconds for the 1-minute load
#                    average to fall below 0.5 before starting (default
#                    0: warn only)
#   LIMITS_OUT       the report file (default
#                    bench/results/limits-<date>.txt)
#   LIMITS_KEEP      1: keep the raw logs (printed path)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
LIMIT_ORIGIN=$top/t/integration/limit_origin.py
LIMIT_CLIENT=$top/t/integration/limit_client.py

usage() {
	sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'
}
case ${1:-} in
-h | --help) usage; exit 0 ;;
'') ;;
*) echo "limits: unknown argument '$1'" >&2; usage >&2; exit 1 ;;
esac

clients=${LIMITS_CLIENTS:-50}
rate=${LIMITS_RATE:-10}
secs=${LIMITS_SECONDS:-20}
dialects=${LIMITS_DIALECTS:-xratelimit ietf openai anthropic bare}
paths=${LIMITS_PATHS:-direct sluiced}
quiet=${LIMITS_QUIET:-0}
keep=${LIMITS_KEEP:-0}
for v in "$clients" "$rate" "$secs" "$quiet"; do
	case $v in
	'' | *[!0-9]*) echo "limits: '$v' is not a whole number" >&2; exit 1 ;;
	esac
done

fail() {
	echo "limits: $*" >&2
	exit 1
}
say() {
	echo "== $*" >&2
}

unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY \
	no_proxy NO_PROXY ftp_proxy FTP_PROXY 2>/dev/null || true
command -v python3 >/dev/null || fail "python3 is needed"
command -v curl >/dev/null || fail "curl is needed"
if [ -n "${SLUICED:-}" ]; then
	sluiced=$SLUICED
elif [ -x "$top/_build/dev/src/sluiced" ]; then
	sluiced=$top/_build/dev/src/sluiced
else
	sluiced=$top/src/sluiced
fi
case " $paths " in
*" sluiced "*)
	[ -x "$sluiced" ] || fail "no sluiced at '$sluiced': build it" \
		"(see README.md) or set SLUICED" ;;
esac

. "$top/bench/lib.sh"
bench_tmp limits

# Every server dies on its own if this script is killed hard.
life=$((secs * 4 + 120))

load1() {
	cut -d' ' -f1 /proc/loadavg
}
if [ "$quiet" -gt 0 ]; then
	end=$((SECONDS + quiet))
	while awk -v l="$(load1)" 'BEGIN { exit !(l >= 0.5) }' &&
		[ "$SECONDS" -lt "$end" ]; do
		sleep 5
	done
fi
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
awk -v l="$(load1)" 'BEGIN { exit !(l >= 1) }' &&
	echo "limits: warning: load average $load_before: the machine is" \
		"busy, figures may be off" >&2

# stop PID: ends a process this script started, and waits for it.
stop() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# origin RUN DIALECT: starts limit_origin.py for run RUN; sets OPORT, OPID.
origin() {
	local args
	case $2 in
	openai | anthropic)
		args="--limit $((rate * 60)) --window 60 --burst $rate" ;;
	*)
		args="--limit $rate --window 1" ;;
	esac
	# shellcheck disable=SC2086 # words of $args
	timeout -k 5 "$life" python3 "$LIMIT_ORIGIN" --dialect "$2" $args \
		--port-file "$tmp/$1.port" --log "$tmp/$1.requests" \
		2> "$tmp/$1.origin.stderr" &
	OPID=$!
	pids="$pids $OPID"
	for _ in $(seq 200); do
		[ -s "$tmp/$1.port" ] && break
		sleep 0.05
	done
	[ -s "$tmp/$1.port" ] ||
		fail "origin $2 did not start: $(cat "$tmp/$1.origin.stderr")"
	OPORT=$(cat "$tmp/$1.port")
}

# daemon RUN [MODE]: starts sluiced with its defaults (and LIMITS_YAML,
# and defaults.mode: MODE when given); sets PPORT, SPID.
daemon() {
	local line=
	{
		echo "# bench/limits.sh: the daemon's defaults"
		echo "log_level: info"
		[ -z "${2:-}" ] || printf 'defaults:\n  mode: %s\n' "$2"
		[ -z "${LIMITS_YAML:-}" ] || printf '%s\n' "$LIMITS_YAML"
	} > "$tmp/$1.yaml"
	mkdir -p "$tmp/$1.state"
	timeout -k 5 "$life" "$sluiced" -c "$tmp/$1.yaml" -l 127.0.0.1:0 \
		-a 127.0.0.1:0 -s "$tmp/$1.state" 2> "$tmp/$1.sluiced.log" &
	SPID=$!
	pids="$pids $SPID"
	for _ in $(seq 200); do
		line=$(grep -m 1 'info: listening proxy=' "$tmp/$1.sluiced.log" \
			2>/dev/null || true)
		[ -z "$line" ] || break
		kill -0 "$SPID" 2>/dev/null ||
			fail "sluiced exited: $(tail -n 5 "$tmp/$1.sluiced.log")"
		sleep 0.05
	done
	[ -n "$line" ] || fail "sluiced did not say it was listening"
	PPORT=$(printf '%s\n' "$line" | sed 's/.*proxy=[^ ]*:\([0-9]*\) .*/\1/')
}

# analyze RUN DIALECT PATH: one table row from the run's files.
analyze() {
	python3 - "$tmp/$1" "$2" "$3" <<'EOF'
import json, sys
base, dialect, path = sys.argv[1:4]
count = json.load(open(base + ".count"))
cl = json.load(open(base + ".clients"))
calls = [json.loads(l) for l in open(base + ".requests")]
first_w = calls[0]["window"] if calls else 0
t1 = count["start"] + (first_w + 1) * count["window_s"]
t2 = cl["t0"] + cl["seconds"]
ok = sum(1 for c in calls if c["status"] == 200 and t1 <= c["time"] < t2)
ratio = ok / (t2 - t1) / count["per_second"] if t2 > t1 else 0.0
late = sum(1 for c in calls if c["status"] == 429 and c["window"] > first_w)
per = count["limited"] / count["ok"] if count["ok"] else float("inf")
goal = "-"
if path == "sluiced" and dialect not in ("bare", "ezthrottle"):
    goal = "yes" if ratio >= 0.95 and late == 0 else "no"
if path == "sluiced" and dialect == "ezthrottle":
    goal = "yes" if ratio >= 0.98 else "no"
if path in ("adaptive", "frugal") and dialect == "bare":
    share = count["limited"] / (count["ok"] + count["limited"]) \
        if count["ok"] + count["limited"] else 1.0
    goal = "yes" if ratio >= 0.85 and share <= 0.05 else "no"
bad = sum(v for k, v in cl["status"].items() if k not in ("200", "429"))
print("| %s | %s | %.3f | %.3f | %d | %d | %d | %d | %s | %s |" % (
    dialect, path, ratio, per, late, count["ok"], count["limited"],
    cl["calls"], cl["latency_p50"], goal) + ("" if not bad and
    not cl["errors"] else " (client: %d other statuses, %d errors)"
    % (bad, cl["errors"])))
EOF
}

rows=$tmp/rows
: > "$rows"
n=0
for d in $dialects; do
	case $d in
	xratelimit | ietf | openai | anthropic | bare | ezthrottle) ;;
	*) fail "unknown dialect '$d'" ;;
	esac
	for p in $paths; do
		n=$((n + 1))
		run=$n-$d-$p
		say "$d, $p: $clients clients, $rate req/s allowed, ${secs}s"
		origin "$run" "$d"
		proxy=()
		SPID=
		case $p in
		sluiced)
			daemon "$run"
			proxy=(--proxy "127.0.0.1:$PPORT") ;;
		adaptive | frugal)
			daemon "$run" "$p"
			proxy=(--proxy "127.0.0.1:$PPORT") ;;
		direct) ;;
		*) fail "unknown path '$p'" ;;
		esac
		timeout $((secs * 3 + 120)) python3 "$LIMIT_CLIENT" \
			--url "http://127.0.0.1:$OPORT/v1/$d" "${proxy[@]}" \
			--clients "$clients" --seconds "$secs" \
			--header 'Authorization: Bearer bench-shared-key' \
			--out "$tmp/$run.clients" 2> "$tmp/$run.client.stderr" ||
			fail "clients failed: $(tail -n 5 "$tmp/$run.client.stderr")"
		curl -sS --max-time 10 -o "$tmp/$run.count" \
			"http://127.0.0.1:$OPORT/count" ||
			fail "cannot read the origin's /count"
		[ -z "$SPID" ] || stop "$SPID"
		stop "$OPID"
		analyze "$run" "$d" "$p" | tee -a "$rows" >&2
	done
done

out=${LIMITS_OUT:-$top/bench/results/limits-$(date -u +%Y-%m-%d).txt}
mkdir -p "$(dirname "$out")"
{
	echo "bench/limits.sh, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "sluiced: $sluiced ($(cd "$top" && git describe --always --dirty \
		2>/dev/null || echo '?'))"
	[ -z "${LIMITS_YAML:-}" ] || echo "sluiced configuration added: $LIMITS_YAML"
	echo "clients $clients sharing one key, limit $rate req/s, ${secs}s a run"
	echo "machine: $(nproc) cores, load average before $load_before," \
		"after $(cut -d' ' -f1-3 /proc/loadavg)"
	echo
	echo "| dialect | path | achieved / L | 429s per success |" \
		"429s after 1st window | 200s | 429s | calls done | client p50 s |" \
		"SPEC 3a goal |"
	echo "| --- | --- | --: | --: | --: | --: | --: | --: | --: | --- |"
	cat "$rows"
	echo
} | tee -a "$out"
say "saved to $out"
