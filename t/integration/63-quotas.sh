#!/usr/bin/env bash
# 63-quotas: a quota an API states is used fully and never overrun (SPEC
# sections 3 and 3a). Against origins that enforce 10 req/s and say so in
# one dialect each (limit_origin.py: X-RateLimit-* over fixed 1 s
# windows, IETF RateLimit-Policy "q=10;w=1" with RateLimit, OpenAI and
# Anthropic per-minute limits of 600 enforced as a token bucket of 10),
# 20 clients sharing one key send calls through the daemon with its
# defaults (rps 2, concurrency 2, retries on) for 6 s, all dialects at
# once: the queue's rate_source becomes "quota" and, sampled from /queues
# after the first window, its median rate is 0.5 to 1.1 x the limit; at
# the origin the calls after the first window reach at least
# QUOTA_MIN_RATIO (0.9; SPEC 3a asks 0.95, measured 0.99 to 1.0) x the
# limit, and none of them is answered 429;
# /queues shows the request quota (limit, remaining, window) and, for
# OpenAI and Anthropic, the token quota. A destination's max_rps: 4 caps
# a stated quota of 10/s (rate 4, source quota; at most 5 calls in any
# window of 1 s at the origin); with learn.ratelimit_headers: false the
# same answers leave the queue at its configured rate.
#
# IETF's t is whole seconds: at the end of each 1 s window "r=0;t=1"
# would pause the queue up to a second where the window turns a little
# later. The pause ends at the window's end as the answers show it (one
# window after the answer that left q - 1), so IETF is held to the same
# ratio (0.6 x the limit without that, 0.998 with it).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

LIMIT_CLIENT_PY=$LIB_DIR/limit_client.py
SECS=6              # seconds the clients send for
CLIENTS=20
MIN_RATIO=${QUOTA_MIN_RATIO:-0.9}
KEY='Authorization: Bearer shared-quota-key'

# clients NAME PORT: CLIENTS clients call origin NAME on PORT through the
# proxy for SECS seconds, in the background; their summary goes to
# $TMP/NAME.clients; its PID is added to WAIT_PIDS.
WAIT_PIDS=()
clients() {
	timeout 60 "$PYTHON" "$LIMIT_CLIENT_PY" --proxy "127.0.0.1:$PROXY_PORT" \
		--url "http://127.0.0.1:$2/v1/$1" --clients "$CLIENTS" \
		--seconds "$SECS" --header "$KEY" --out "$TMP/$1.clients" \
		2> "$TMP/$1-clients.stderr" &
	WAIT_PIDS+=($!)
}

# sampler SECS: polls /queues every 0.2 s for SECS seconds, in the
# background; one JSON line per queue per poll in $TMP/samples:
# {"t", "dest", "rate", "source", "req", "tok"}.
sampler() {
	timeout 60 "$PYTHON" - "$ADMIN_PORT" "$1" "$TMP/samples" <<'EOF' &
import json, sys, time, urllib.request
port, secs, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
end = time.monotonic() + secs
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
with open(out, "a") as f:
    while time.monotonic() < end:
        try:
            d = json.load(opener.open("http://127.0.0.1:%d/queues" % port,
                                      timeout=5))
        except OSError:
            d = {"list": []}
        t = time.time()
        for q in d["list"]:
            f.write(json.dumps({"t": t, "dest": q["destination"],
                                "rate": q["rate"],
                                "source": q["rate_source"],
                                "req": q["quota_requests"],
                                "tok": q["quota_tokens"]}) + "\n")
        f.flush()
        time.sleep(0.2)
EOF
	WAIT_PIDS+=($!)
}

# measure NAME: reads origin NAME's log and /count, the clients' summary
# and the samples, and prints "RATIO N429_AFTER MEDIAN_RATE SOURCES
# OK LIMITED": the calls answered 200 per second after the origin's first
# window (the one the first call fell in) until the clients stopped, over
# the origin's limit per second; 429s after that window; the median of
# the queue's rates sampled after it; the rate sources seen then; all
# 200s and 429s.
measure() {
	dcurl -o "$TMP/$1.count" "http://127.0.0.1:$(cat "$TMP/$1.port")/count"
	"$PYTHON" - "$TMP/$1" "$TMP/samples" \
		"http://127.0.0.1:$(cat "$TMP/$1.port")" <<'EOF'
import json, statistics, sys
base, samples, dest = sys.argv[1], sys.argv[2], sys.argv[3]
count = json.load(open(base + ".count"))
cl = json.load(open(base + ".clients"))
calls = [json.loads(l) for l in open(base + ".requests")]
first_w = calls[0]["window"]
t1 = count["start"] + (first_w + 1) * count["window_s"]
t2 = cl["t0"] + cl["seconds"]
ok = sum(1 for c in calls if c["status"] == 200 and t1 <= c["time"] < t2)
ratio = ok / (t2 - t1) / count["per_second"] if t2 > t1 else 0
late429 = sum(1 for c in calls if c["status"] == 429
              and c["window"] > first_w)
rates, sources = [], set()
for line in open(samples):
    s = json.loads(line)
    if s["dest"] == dest and t1 <= s["t"] < t2:
        rates.append(s["rate"])
        sources.add(s["source"])
med = statistics.median(rates) if rates else 0
print("%.3f %d %.3f %s %d %d" % (ratio, late429, med,
      ",".join(sorted(sources)) or "-", count["ok"], count["limited"]))
EOF
}

# queue NAME EXPR: EXPR evaluated with q = the queue of origin NAME in a
# fresh /queues (one queue per origin: one key).
queue() {
	dcurl -o "$TMP/queues" "http://127.0.0.1:$ADMIN_PORT/queues"
	json "$TMP/queues" '(lambda q: '"$2"')([q for q in d["list"]
		if q["destination"] == "http://127.0.0.1:'"$(cat "$TMP/$1.port")"'"
		][0])'
}

# The daemon's own defaults, not lib.sh's limits out of the way.
DEFAULTS='defaults:
  rps: 2
  concurrency: 2
retry:
  max_retries: 5'

limit_origin xratelimit --dialect xratelimit --limit 10 --window 1
limit_origin ietf --dialect ietf --limit 10 --window 1
limit_origin openai --dialect openai --limit 600 --window 60 --burst 10
limit_origin anthropic --dialect anthropic --limit 600 --window 60 --burst 10
limit_origin capped --dialect openai --limit 600 --window 60 --burst 10
CAPPED_PORT=$LPORT
write_config - <<EOF
$DEFAULTS
destinations:
  "127.0.0.1:$CAPPED_PORT":
    max_rps: 4
EOF
start_sluiced

say "$CLIENTS clients sharing a key, ${SECS}s, against each dialect at once"
for name in xratelimit ietf openai anthropic capped; do
	clients "$name" "$(cat "$TMP/$name.port")"
done
sampler "$SECS"
for pid in "${WAIT_PIDS[@]}"; do
	wait "$pid" || error "a client or the sampler failed (pid $pid): $(
		cat "$TMP"/*-clients.stderr)"
done

for name in xratelimit ietf openai anthropic; do
	read -r ratio late med sources ok limited < <(measure "$name")
	say "$name: achieved ${ratio} x L after the first window, 429s after" \
		"it $late (in all: $ok ok, $limited limited), median rate" \
		"$med, sources $sources; clients: $(cat "$TMP/$name.clients")"
	assert_eq 0 "$late" "$name: 429s at the origin after the first window"
	assert_eq quota "$sources" "$name: rate sources after the first window"
	ge "$ratio" "$MIN_RATIO" ||
		fail "$name: achieved $ratio x the limit (at least $MIN_RATIO)"
	if ! ge "$med" 5 || ! ge 11 "$med"; then
		fail "$name: median rate $med (5 to 11 for a limit of 10/s)"
	fi
	assert_eq 0 "$(json "$TMP/$name.clients" \
		'sum(v for k, v in d["status"].items() if k != "200") + d["errors"]')" \
		"$name: calls the clients saw fail"
done

say "/queues shows the stated quotas"
for name in xratelimit ietf; do
	assert_eq "10 True None" "$(queue "$name" '"%s %s %s" % (
		q["quota_requests"]["limit"],
		0 <= q["quota_requests"]["remaining"] <= 9,
		q["quota_tokens"])')" "$name: quota_requests limit, remaining, quota_tokens"
done
assert_eq null "$(queue xratelimit 'q["quota_requests"]["window_ms"]')" \
	"xratelimit: window of the request quota (not stated)"
assert_eq 1000 "$(queue ietf 'q["quota_requests"]["window_ms"]')" \
	"ietf: window of the request quota (w=1)"
for name in openai anthropic; do
	assert_eq "600 60000 True" "$(queue "$name" '"%s %s %s" % (
		q["quota_requests"]["limit"], q["quota_requests"]["window_ms"],
		0 <= q["quota_requests"]["remaining"] <= 10)')" \
		"$name: quota_requests limit, window, remaining"
	assert_eq "True 60000 True" "$(queue "$name" '"%s %s %s" % (
		q["quota_tokens"]["limit"] >= 48000,
		q["quota_tokens"]["window_ms"],
		0 <= q["quota_tokens"]["remaining"] <= q["quota_tokens"]["limit"])')" \
		"$name: quota_tokens limit, window, remaining"
done

say "a destination's max_rps: 4 caps a stated 10/s"
assert_eq "4.0 quota" "$(queue capped '"%s %s" % (q["rate"], q["rate_source"])')" \
	"capped: rate and source"
read -r ratio late med sources ok limited < <(measure capped)
most=$("$PYTHON" -c '
import json, sys
t = [json.loads(l)["time"] for l in open(sys.argv[1])][1:]
print(max([sum(1 for u in t if s <= u < s + 0.97) for s in t] or [0]))
' "$TMP/capped.requests")
say "capped: ${ratio} x 10/s, most in 1 s $most, 429s $limited, median rate $med"
assert_eq 0 "$limited" "capped: 429s at the origin"
# rps * W + burst = 4 * 1 + 1 (the first call, dispatched before the
# quota was known, is left out; 30 ms of arrival jitter allowed).
ge 5 "$most" || fail "capped: $most calls within 1 s at max_rps 4"
ge "$ratio" 0.3 || fail "capped: achieved $ratio x 10/s (about 0.4)"

say "learn.ratelimit_headers: false leaves the configured rate"
stop_sluiced
write_config - <<EOF
$DEFAULTS
learn:
  ratelimit_headers: false
EOF
start_sluiced
fire off 4 "http://127.0.0.1:$(cat "$TMP/openai.port")/v1/off" "$KEY"
assert_eq 4 "$(fired off 'sum(r["status"] == 200 for r in rs)')" \
	"ratelimit_headers off: calls answered 200"
assert_eq "2.0 configured None" "$(queue openai '"%s %s %s" % (q["rate"],
	q["rate_source"], q["learned_rps"])')" \
	"ratelimit_headers off: rate, source, learned_rps"
fire off2 4 "http://127.0.0.1:$(cat "$TMP/xratelimit.port")/v1/off" "$KEY"
assert_eq "2.0 configured" "$(queue xratelimit '"%s %s" % (q["rate"],
	q["rate_source"])')" "ratelimit_headers off: xratelimit rate, source"

sluiced_alive || fail "sluiced died"
say "ok"
