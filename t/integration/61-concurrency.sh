#!/usr/bin/env bash
# 61-concurrency: in-flight caps (SPEC section 2). With concurrency 2 and a
# high rate, 8 concurrent requests to a script that takes 0.5 s are never
# more than 2 at a time in progress at the origin (the origin counts them
# itself: /groups/G), yet do use both slots; all succeed. A destination's
# aggregate_concurrency caps its queues together, and the daemon-wide
# max_in_flight caps everything.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

# fire OUT N URL [FIELD...]: N concurrent GETs through the proxy from one
# process: the N connections are opened first, then the N requests go
# out together (a barrier), so the clients add little load or skew to
# what the origin sees. Request i goes to URL/i, or URL&i=i when URL has
# a query; each FIELD is "Name: value". $TMP/OUT gets one JSON line per
# request, in order: {"i", "status" (0: no answer), "secs", "headers"
# (names lower-cased), "body"}.
fire() {
	timeout 60 "$PYTHON" - "$PROXY_PORT" "$TMP/$1" "${@:2}" <<'EOF'
import http.client, json, sys, threading, time
port, out, n, url = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
fields = dict(f.split(": ", 1) for f in sys.argv[5:])
res = [None] * n
conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=50)
         for _ in range(n)]
for c in conns:
    c.connect()
gate = threading.Barrier(n)

def run(i):
    u = url + ("&i=%d" if "?" in url else "/%d") % (i + 1)
    r = {"i": i + 1, "status": 0, "headers": {}, "body": ""}
    gate.wait()
    t = time.monotonic()
    try:
        conns[i].request("GET", u, headers=fields)
        resp = conns[i].getresponse()
        r["status"] = resp.status
        r["headers"] = {k.lower(): v for k, v in resp.getheaders()}
        r["body"] = resp.read().decode("utf-8", "replace")[:2000]
    except (OSError, http.client.HTTPException) as e:
        r["error"] = repr(e)
    r["secs"] = round(time.monotonic() - t, 4)
    res[i] = r

threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
with open(out, "w") as f:
    for r in res:
        f.write(json.dumps(r) + "\n")
EOF
}

# fired OUT EXPR: EXPR evaluated with rs = the records fire wrote to
# $TMP/OUT (strings print bare, others as JSON).
fired() {
	"$PYTHON" -c '
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
v = eval(sys.argv[2], {"rs": rs})
print(v if isinstance(v, str) else json.dumps(v))
' "$TMP/$1" "$2"
}

# group G: the origin's count for group G: "NOW MAX COUNT".
group() {
	dcurl -o "$TMP/group" "http://127.0.0.1:$ORIGIN_PORT/groups/$1"
	json "$TMP/group" '"%d %d %d" % (d["now"], d["max"], d["count"])'
}

start_origin
write_config - <<EOF
destinations:
  "127.0.0.1:$ORIGIN_PORT":
    rps: 1000
    concurrency: 2
EOF
start_sluiced
O=http://127.0.0.1:$ORIGIN_PORT

say "8 concurrent requests of 0.5 s, concurrency 2"
fire c2 8 "$O/reply/200?_ms=500&_group=c2" &
FIRE=$!
# While they run, /queues shows at most 2 in flight and the rest waiting.
seen_waiting=0
for _ in $(seq 100); do
	dcurl -o "$TMP/queues" "http://127.0.0.1:$ADMIN_PORT/queues"
	read -r inflight waiting < <(json "$TMP/queues" \
		'"%d %d" % (d["in_flight"], d["waiting"])')
	[ "$inflight" -le 2 ] ||
		fail "/queues: in_flight $inflight > concurrency 2"
	[ "$waiting" -eq 0 ] || seen_waiting=$waiting
	[ "$seen_waiting" -eq 0 ] || break
	sleep 0.02
done
say "/queues during the burst: in_flight=$inflight waiting=$waiting"
[ "$seen_waiting" -ge 1 ] ||
	fail "/queues: nothing waiting with 8 requests of 0.5 s at concurrency 2"
wait "$FIRE" || true
assert_eq 8 "$(fired c2 'sum(r["status"] == 200 for r in rs)')" \
	"requests answered 200"
assert_eq "0 2 8" "$(group c2)" \
	"origin: requests in progress now, most at once, count"

say "aggregate_concurrency 1 over two queues of concurrency 2"
stop_sluiced
write_config - <<EOF
destinations:
  "127.0.0.1:$ORIGIN_PORT":
    rps: 1000
    concurrency: 2
    aggregate_concurrency: 1
EOF
start_sluiced
fire agg1 3 "$O/reply/200?_ms=300&_group=agg" 'Authorization: Bearer one' &
A=$!
fire agg2 3 "$O/reply/200?_ms=300&_group=agg" 'Authorization: Bearer two' &
B=$!
wait "$A" || true
wait "$B" || true
assert_eq "3 3" "$(fired agg1 'sum(r["status"] == 200 for r in rs)') $(fired agg2 \
	'sum(r["status"] == 200 for r in rs)')" "aggregate: requests answered 200"
assert_eq "0 1 6" "$(group agg)" \
	"aggregate: requests in progress now, most at once, count"

say "max_in_flight 1 over two queues"
stop_sluiced
write_config - <<EOF
max_in_flight: 1
EOF
start_sluiced
fire glob1 3 "$O/reply/200?_ms=300&_group=glob" 'Authorization: Bearer one' &
A=$!
fire glob2 3 "$O/reply/200?_ms=300&_group=glob" &
B=$!
wait "$A" || true
wait "$B" || true
assert_eq "3 3" "$(fired glob1 'sum(r["status"] == 200 for r in rs)') $(fired glob2 \
	'sum(r["status"] == 200 for r in rs)')" "max_in_flight: requests answered 200"
assert_eq "0 1 6" "$(group glob)" \
	"max_in_flight: requests in progress now, most at once, count"

assert_serving "concurrency limits"
say "ok"
