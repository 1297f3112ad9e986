#!/usr/bin/env bash
# 69-queue-limits: queues are bounded (SPEC section 8). With max_queues 3,
# requests with credentials that have no queue yet join their
# destination's overflow queue (key "overflow" in /queues, counted in
# "overflow", one log line, no credential in it) and are answered as
# usual. An idle queue that holds nothing is freed within about a second,
# not after learn.idle_reset. /queues comes in pages (limit, after, next),
# each within bounds; bad parameters get 400 and a JSON body.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

# q PATH: GET the admin PATH into $TMP/queues.
q() {
	dcurl -o "$TMP/queues" "http://127.0.0.1:$ADMIN_PORT$1"
}

start_origin
write_config - <<EOF
max_queues: 3
learn:
  idle_reset: 300s
EOF
start_sluiced
O=http://127.0.0.1:$ORIGIN_PORT

say "3 credentials hold the 3 queues; 3 more overflow"
pids=()
for i in 1 2 3 4 5 6; do
	pcurl -o "$TMP/r.$i" -w '%{http_code}\n' \
		-H "Authorization: Bearer cred-secret-$i-x9q" "$O/slow/1500" \
		> "$TMP/s.$i" &
	pids+=($!)
	# the first three make their queues first
	[ "$i" -ne 3 ] || sleep 0.5
done
sleep 0.5
q /queues
say "$(json "$TMP/queues" '[(x["key"], x["waiting"] + x["in_flight"]) for x in d["list"]]')"
assert_eq 4 "$(json "$TMP/queues" 'd["queues"]')" "queues: 3 and the overflow queue"
assert_eq 1 "$(json "$TMP/queues" 'sum(x["key"] == "overflow" for x in d["list"])')" \
	"overflow queues in /queues"
assert_eq 3 "$(json "$TMP/queues" 'd["overflow"]')" "overflow counter"
assert_eq 3 "$(json "$TMP/queues" 'd["max_queues"]')" "max_queues in /queues"
for p in "${pids[@]}"; do wait "$p" || true; done
for i in 1 2 3 4 5 6; do
	assert_eq 200 "$(cat "$TMP/s.$i")" "request $i"
done
assert_eq 1 "$(grep -c 'overflow queue' "$TMP/sluiced.log")" \
	"overflow warnings in the log"
assert_no_grep 'cred-secret' "$TMP/sluiced.log" "credentials in the log"

say "idle queues that hold nothing are freed within a few seconds"
n=
for _ in $(seq 100); do
	q /queues
	n=$(json "$TMP/queues" 'd["queues"]')
	[ "$n" -eq 0 ] && break
	sleep 0.05
done
assert_eq 0 "$n" "queues 3 s after the last request (idle_reset 300 s)"

say "a queue with a learned value is kept"
s=$(http_status -H 'Authorization: Bearer learner' \
	"$O/reply/200?X-EZTHROTTLE-RPS=500")
assert_eq 200 "$s" "a request that teaches a rate"
sleep 2.5
q /queues
assert_eq 1 "$(json "$TMP/queues" 'd["queues"]')" "queues 2.5 s later"

say "pages"
stop_sluiced
write_config - <<EOF
learn:
  idle_reset: 300s
EOF
start_sluiced
pids=()
for i in 1 2 3 4 5; do
	pcurl -o /dev/null -H "X-Api-Key: page-$i" "$O/slow/2000" &
	pids+=($!)
done
sleep 0.7
q '/queues?limit=2'
assert_eq 5 "$(json "$TMP/queues" 'd["queues"]')" "queues"
keys=$(json "$TMP/queues" '" ".join(x["key"] for x in d["list"])')
n=1
next=$(json "$TMP/queues" 'd.get("next", "")')
while [ -n "$next" ]; do
	n=$((n + 1))
	[ "$n" -le 5 ] || fail "more than 5 pages of 2 for 5 queues"
	q "/queues?limit=2&after=$next"
	keys="$keys $(json "$TMP/queues" '" ".join(x["key"] for x in d["list"])')"
	next=$(json "$TMP/queues" 'd.get("next", "")')
done
assert_eq 3 "$n" "pages of 2 for 5 queues"
assert_eq 5 "$(printf '%s\n' $keys | sort -u | wc -l)" "distinct queues over the pages"
q '/queues'
assert_eq 5 "$(json "$TMP/queues" 'len(d["list"])')" "default page"
assert_eq absent "$(json "$TMP/queues" 'd.get("next", "absent")')" "next on the last page"
q '/queues?limit=5'
assert_eq absent "$(json "$TMP/queues" 'd.get("next", "absent")')" "next with limit = queues"
"$SLUICECTL" -a "127.0.0.1:$ADMIN_PORT" status > "$TMP/status.out" ||
	fail "sluicectl status: $(cat "$TMP/status.out")"
assert_eq 5 "$(grep -c 'page-\|[0-9a-f]\{12\}' "$TMP/status.out")" \
	"queues in sluicectl status"
for p in "${pids[@]}"; do wait "$p" || true; done

say "bad page parameters: 400 with JSON"
for qs in limit=0 limit=10001 limit=abc limit=-1 'limit=1%200' after=x \
	after=-1 after=99999999999999999999999 'limit='; do
	s=$(direct_status "http://127.0.0.1:$ADMIN_PORT/queues?$qs")
	assert_error 400 'invalid_limit|invalid_cursor' "$s" "/queues?$qs"
done
s=$(direct_status "http://127.0.0.1:$ADMIN_PORT/queues?limit=10000&after=18446744073709551615")
assert_eq 200 "$s" "the largest limit and cursor"
assert_serving "bad page parameters"

say "sluicectl status follows the pages"
"$PYTHON" - "$TMP/fake.port" <<'EOF' > "$TMP/fake.log" 2>&1 &
import http.server, json, os, sys, urllib.parse
def q(k):
    return {"destination": "http://x:80", "key": k, "rps": 1, "concurrency": 1,
            "burst": 1, "weight": 1, "learned_rps": None,
            "learned_concurrency": None, "waiting": 0, "in_flight": 0,
            "paused_ms": 0, "paused_until": None, "idle_ms": 5}
PAGES = {None: (["aaaaaaaaaaa1"], "7"), "7": (["aaaaaaaaaaa2"], "9"),
         "9": (["overflow"], None)}
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        sys.stderr.write(self.path + "\n")
    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        if u.path == "/healthz":
            b = b"ok\n"
        else:
            a = dict(urllib.parse.parse_qsl(u.query))
            keys, nxt = PAGES[a.get("after")]
            d = {"queues": 3, "waiting": 0, "in_flight": 0, "requests": 9,
                 "list": [q(k) for k in keys]}
            if nxt:
                d["next"] = nxt
            b = json.dumps(d).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1] + ".tmp", "w").write(str(s.server_address[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
EOF
echo $! > "$TMP/fake.pid"
wait_file "$TMP/fake.port" || error "fake admin listener did not start"
FP=$(cat "$TMP/fake.port")
"$SLUICECTL" -a "127.0.0.1:$FP" status > "$TMP/status.out" 2>&1 ||
	fail "sluicectl status on pages: $(cat "$TMP/status.out")"
for k in aaaaaaaaaaa1 aaaaaaaaaaa2 overflow; do
	assert_grep "$k" "$TMP/status.out" "queue $k in sluicectl status"
done
"$SLUICECTL" -a "127.0.0.1:$FP" -j status > "$TMP/status.json" ||
	fail "sluicectl -j status on pages"
assert_eq "3 absent" "$(json "$TMP/status.json" \
	'"%d %s" % (len(d["list"]), d.get("next", "absent"))')" \
	"sluicectl -j status: queues, next"
assert_grep 'after=9' "$TMP/fake.log" "the last page asked for"
say "ok"
