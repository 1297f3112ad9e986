#!/usr/bin/env bash
# 81-reload: a reload changes limits without dropping or reordering a
# waiting request (SPEC section 9). 50 requests to a destination at 4 req/s
# are sent one after the other (each on its own connection, 20 ms apart,
# so the order they join the queue is known); once about 8 have gone,
# POST /reload with the destination at 50 req/s: every one is answered
# 200, the origin sees them in the order they were sent, and the rate at
# the origin after the reload is far above 4 req/s (at least 15). /queues
# shows the new rate. An invalid file: POST /reload answers 400 with its
# file:line:column, the log says the configuration in force stays, and
# the queue keeps its rate. SIGHUP reloads too (a rate of 7 shows in
# /queues). A changed max_in_flight is kept and named in
# restart_needed. With admin_token_file, POST /reload wants the token,
# and a reload can change the token itself.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

N=50

# config RPS [EXTRA]: the configuration with the origin's destination at
# RPS req/s, and EXTRA lines at the top level.
config() {
	write_config - <<EOF
sync_timeout: 100s
${2:-max_in_flight: 4096}
destinations:
  "127.0.0.1:$ORIGIN_PORT":
    rps: $1
    concurrency: 100
EOF
}

# reload_post [CURL ARGS...]: POST /reload; the body to $TMP/reload.json,
# the status printed.
reload_post() {
	dcurl -o "$TMP/reload.json" -w '%{http_code}' -X POST "$@" \
		"http://127.0.0.1:$ADMIN_PORT/reload"
}

# queue_rps: the configured rps /queues shows for the origin's queue.
queue_rps() {
	dcurl -o "$TMP/queues" "$@" "http://127.0.0.1:$ADMIN_PORT/queues"
	json "$TMP/queues" '" ".join("%g" % q["rps"] for q in d["list"]
		if q["destination"] == "http://127.0.0.1:'"$ORIGIN_PORT"'")'
}

start_origin
config 4
start_sluiced

say "$N requests wait at 4 req/s; a reload to 50 req/s after about 2 s"
timeout 90 "$PYTHON" - "$PROXY_PORT" "$ORIGIN_PORT" "$N" "$TMP/sent" <<'EOF' &
import http.client, json, sys, time
port, oport, n, out = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
                       sys.argv[4])
res = [{"i": i, "status": 0} for i in range(n)]
conns = []
# Sent from this one thread, in order, 20 ms apart: the order the requests
# reach the proxy is known. The answers are read after, in the same order.
for i in range(n):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=80)
    c.connect()
    c.request("GET", "http://127.0.0.1:%d/echo/order?i=%d" % (oport, i))
    conns.append(c)
    time.sleep(0.02)
for i, c in enumerate(conns):
    try:
        resp = c.getresponse()
        resp.read()
        res[i]["status"] = resp.status
    except (OSError, http.client.HTTPException) as e:
        res[i]["error"] = repr(e)
with open(out, "w") as f:
    json.dump(res, f)
EOF
CLIENTS=$!
echo "$CLIENTS" > "$TMP/clients.pid"
sleep 2.2
sed -i 's/rps: 4$/rps: 50/' "$TMP/sluice.yaml"
t_reload=$("$PYTHON" -c 'import time; print("%.6f" % time.time())')
s=$(reload_post)
assert_eq 200 "$s" "POST /reload: status"
assert_eq '{"reloaded": true, "restart_needed": []}' \
	"$(json "$TMP/reload.json" d)" "POST /reload: body"
wait "$CLIENTS" || fail "the clients did not finish"
rm -f "$TMP/clients.pid"

assert_eq "$N" "$("$PYTHON" -c '
import json, sys
print(sum(1 for r in json.load(open(sys.argv[1])) if r and r["status"] == 200))
' "$TMP/sent")" "requests answered 200 across the reload"
read -r n ordered before after rate < <("$PYTHON" -c '
import json, sys
t0 = float(sys.argv[2])
rows = [json.loads(l) for l in open(sys.argv[1])]
rows = [(r["time"], int(r["target"].split("i=")[1]))
        for r in rows if r["target"].startswith("/echo/order")]
rows.sort()
order = [i for _, i in rows]
after = [t for t, _ in rows if t > t0 + 0.05]
rate = (len(after) - 1) / (after[-1] - after[0]) if len(after) > 2 else 0
print(len(rows), int(order == sorted(order)), len(rows) - len(after),
      len(after), "%.1f" % rate)
' "$TMP/origin.requests" "$t_reload")
say "arrivals=$n in_order=$ordered before_reload=$before after=$after rate_after=${rate}/s"
assert_eq "$N" "$n" "arrivals at the origin"
assert_eq 1 "$ordered" "arrivals in the order the requests were sent"
ge 14 "$before" || fail "$before arrivals in the first 2.2 s at 4 req/s (about 9)"
ge "$rate" 15 || fail "rate after the reload ${rate}/s (50 configured; 4 before)"
assert_eq 50 "$(queue_rps)" "/queues: rps after the reload"
assert_grep "info: reload: configuration from '.*sluice.yaml' in force" \
	"$TMP/sluiced.log" "reload logged"

say "an invalid file: 400 with file:line:column, the old configuration stays"
cp "$TMP/sluice.yaml" "$TMP/good.yaml"
printf 'destinations: [\n' >> "$TMP/sluice.yaml"
s=$(reload_post)
assert_eq 400 "$s" "invalid reload: status"
assert_eq invalid_configuration "$(json "$TMP/reload.json" 'd["error"]')" \
	"invalid reload: error code"
assert_match "sluice\\.yaml:[0-9]+:[0-9]+: " \
	"$(json "$TMP/reload.json" 'd["message"]')" "invalid reload: message"
assert_grep "error: reload: .*sluice\\.yaml:[0-9]+:[0-9]+: .*the configuration in force stays" \
	"$TMP/sluiced.log" "invalid reload logged"
assert_eq 50 "$(queue_rps)" "/queues: rps after an invalid reload"
assert_eq 200 "$(http_status "http://127.0.0.1:$ORIGIN_PORT/echo/still")" \
	"a request after an invalid reload"

say "SIGHUP reloads"
cp "$TMP/good.yaml" "$TMP/sluice.yaml"
sed -i 's/rps: 50$/rps: 7/' "$TMP/sluice.yaml"
kill -HUP "$SLUICED_PID"
for _ in $(seq 100); do
	[ "$(queue_rps)" != 7 ] || break
	sleep 0.05
done
assert_eq 7 "$(queue_rps)" "/queues: rps after SIGHUP"

say "a changed max_in_flight needs a restart"
config 7 "max_in_flight: 100"
s=$(reload_post)
assert_eq 200 "$s" "reload with a new listen address: status"
assert_eq '["max_in_flight"]' "$(json "$TMP/reload.json" 'd["restart_needed"]')" \
	"restart_needed"
assert_grep "warn: reload: .*only a restart applies.*: max_in_flight" \
	"$TMP/sluiced.log" "restart needed logged"

say "admin_token_file: POST /reload wants the token; a reload changes it"
printf 'first-token\n' > "$TMP/token"
printf 'second-token\n' > "$TMP/token2"
config 7 "admin_token_file: $TMP/token"
stop_sluiced
start_sluiced
s=$(reload_post)
assert_eq 401 "$s" "POST /reload without the token"
config 7 "admin_token_file: $TMP/token2"
s=$(reload_post -H 'Authorization: Bearer first-token')
assert_eq 200 "$s" "POST /reload with the token"
s=$(reload_post -H 'Authorization: Bearer first-token')
assert_eq 401 "$s" "the old token after the reload changed it"
s=$(reload_post -H 'Authorization: Bearer second-token')
assert_eq 200 "$s" "the new token"
assert_no_grep "first-token\|second-token" "$TMP/sluiced.log" \
	"tokens in the log"

assert_serving "reload"
say "ok"
