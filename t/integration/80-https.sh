#!/usr/bin/env bash
# 80-https: CONNECT (SPEC section 7). With a local CA made by sluicectl,
# HTTPS requests through the proxy are intercepted: real clients (curl,
# Python requests and urllib, Node's undici) trust the CA and their
# requests are queued, paced, retried, learned from, delivered by
# webhook and streamed like plain ones, with keep-alive inside a tunnel.
# Plain HTTP inside CONNECT (what undici sends for http:// URLs) is
# served the same way. A host under tls.tunnel gets an opaque tunnel and
# the client sees the origin's own certificate. An upstream whose
# certificate does not verify gets 502, a denied destination 403, and
# clients that fail or abort the handshake never disturb the others.
# Tunnels are bounded (tls.max_tunnels: 503), opaque ones close when idle,
# and a CA that cannot sign stops the daemon at start.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

command -v openssl > /dev/null || skip "openssl is needed"

make_test_ca "$TMP/pki"
start_origin_tls "$TMP/pki/origin.pem" "$TMP/pki/origin.key" good
GOOD=$TLS_ORIGIN_PORT
start_origin_tls "$TMP/pki/untrusted.pem" "$TMP/pki/untrusted.key" bad
BAD=$TLS_ORIGIN_PORT
start_origin_tls "$TMP/pki/origin.pem" "$TMP/pki/origin.key" opaque
OPAQUE=$TLS_ORIGIN_PORT
start_origin
start_receiver

"$SLUICECTL" ca init -s "$TMP/state" > "$TMP/ca-init.out" ||
	fail "sluicectl ca init failed"
CA=$TMP/state/ca.pem

write_config - <<EOF
deny_destinations: [127.0.0.2/32]
retry:
  max_retries: 3
  backoff_base: 50ms
tls:
  upstream_ca_file: $TMP/pki/testca.pem
  tunnel: ["127.0.0.1:$OPAQUE"]
destinations:
  "localhost:$GOOD":
    rps: 5
EOF
start_sluiced
G=https://127.0.0.1:$GOOD

# tls_stat NAME: a counter of /queues' "tls" object.
tls_stat() {
	dcurl "http://127.0.0.1:$ADMIN_PORT/queues" > "$TMP/queues.json"
	json "$TMP/queues.json" "d['tls']['$1']"
}

# seen FIELD TARGET_ERE [ORIGIN]: the header FIELD (lower case) as the
# origin saw it on the last arrival matching TARGET_ERE; empty if absent.
seen() {
	"$PYTHON" -c '
import json, re, sys
last = None
for line in open(sys.argv[1]):
    r = json.loads(line)
    if re.search(sys.argv[2], r["target"]):
        last = r
for k, v in (last or {}).get("headers", []):
    if k.lower() == sys.argv[3]:
        print(v)
' "$TMP/${3:-good}.requests" "$2" "$1"
}

say "curl --cacert: intercepted, headers stripped, answered by the front"
s=$(http_status --cacert "$CA" -H 'X-EZTHROTTLE-TIMEOUT: 30' \
	-H 'Proxy-Connection: keep-alive' "$G/echo/a?q=1&r=%41")
assert_eq 200 "$s" "an intercepted GET"
assert_eq 1 "$(origin_count '^/echo/a\?q=1&r=%41$' good)" "the exact target upstream"
assert_eq "" "$(seen x-ezthrottle-timeout '^/echo/a')" "X-EZTHROTTLE-TIMEOUT upstream"
assert_eq "" "$(seen proxy-connection '^/echo/a')" "Proxy-Connection upstream"
assert_eq 1 "$(header X-EZTHROTTLE-Attempts)" "X-EZTHROTTLE-Attempts"
# The certificate the client got: for the host, from the local CA.
timeout 20 openssl s_client -proxy "127.0.0.1:$PROXY_PORT" \
	-connect "127.0.0.1:$GOOD" -CAfile "$CA" -verify_return_error \
	-verify_ip 127.0.0.1 -alpn h2,http/1.1 < /dev/null \
	> "$TMP/s_client.out" 2>&1 || true
assert_grep 'Verify return code: 0 \(ok\)' "$TMP/s_client.out" "the leaf verifies against the local CA"
assert_grep 'ALPN protocol: http/1.1' "$TMP/s_client.out" "ALPN picks http/1.1, never h2"
assert_grep 'sluice local CA' "$TMP/s_client.out" "the issuer is the local CA"

say "keep-alive inside one tunnel"
pcurl --cacert "$CA" -o /dev/null -o /dev/null -w '%{num_connects}\n' \
	"$G/echo/ka1" "$G/echo/ka2" > "$TMP/ka.out"
assert_eq "1 0" "$(tr '\n' ' ' < "$TMP/ka.out" | sed 's/ $//')" "connections made for two requests"
assert_eq 1 "$(origin_count '^/echo/ka2$' good)" "the second request of the tunnel"

say "pacing: 8 parallel HTTPS requests to a 5 rps destination"
pids=()
for i in 1 2 3 4 5 6 7 8; do
	pcurl --cacert "$CA" -o /dev/null "https://localhost:$GOOD/echo/paced/$i" &
	pids+=($!)
done
wait "${pids[@]}"
spread=$("$PYTHON" -c '
import json, sys
t = [json.loads(l)["time"] for l in open(sys.argv[1])
     if json.loads(l)["target"].startswith("/echo/paced/")]
print("%d %.2f" % (len(t), max(t) - min(t)))' "$TMP/good.requests")
assert_eq 8 "${spread% *}" "paced requests that arrived"
ge "${spread#* }" 1.2 || fail "8 requests at 5 rps arrived within ${spread#* } s, not >= 1.2 s"

say "429 retried inside the tunnel"
s=$(http_status --cacert "$CA" "$G/seq/r1?codes=429,200&retry_after=1")
assert_eq 200 "$s" "429 then 200"
assert_eq 2 "$(header X-EZTHROTTLE-Attempts)" "attempts after a 429"
assert_eq 2 "$(origin_count '^/seq/r1' good)" "arrivals for the retried request"

say "learning from X-EZTHROTTLE-RPS over HTTPS"
s=$(http_status --cacert "$CA" "$G/reply/200?X-EZTHROTTLE-RPS=7")
assert_eq 200 "$s" "an answer with X-EZTHROTTLE-RPS"
dcurl "http://127.0.0.1:$ADMIN_PORT/queues" > "$TMP/queues.json"
learned=$(json "$TMP/queues.json" \
	"[q['learned_rps'] for q in d['list'] if q['destination'] == 'https://127.0.0.1:$GOOD'][0]")
assert_eq 7.0 "$learned" "learned rps of https://127.0.0.1:$GOOD"

say "a webhook job over HTTPS"
s=$(http_status --cacert "$CA" \
	-H "X-EZTHROTTLE-WEBHOOK: http://127.0.0.1:$RECEIVER_PORT/hook" \
	"$G/echo/job")
assert_eq 202 "$s" "the job is accepted"
wait_for 'len(ds) >= 1' 20 || fail "no webhook delivery in 20 s"
assert_eq 200 "$(deliveries 'ds[0]["json"]["response"]["status_code"]')" "the job's upstream status"
assert_match '/echo/job' "$(deliveries 'ds[0]["json"]["response"]["body"]')" "the job's upstream body"

say "a streamed (SSE) answer"
out=$(pcurl --cacert "$CA" -N -o "$TMP/sse" \
	-w '%{time_starttransfer} %{time_total}' "$G/drip/5?interval=200")
assert_eq 5 "$(grep -c '^data: ' "$TMP/sse")" "events received"
ge "$(awk '{print $2 - $1}' <<< "$out")" 0.5 ||
	fail "the stream was not streamed: first byte and end at $out s"

say "Python requests and urllib"
# statuses FILE: the status of each JSON line a client printed.
statuses() {
	"$PYTHON" -c '
import json, sys
print(" ".join(str(json.loads(l).get("status")) for l in open(sys.argv[1])))' "$1"
}
SLUICE_CA=$CA "$PYTHON" "$HTTPS_CLIENT_PY" "$PROXY" "$G/echo/py1" \
	"$G/echo/py2" > "$TMP/py.out" || fail "requests: $(cat "$TMP/py.out")"
assert_eq "200 200" "$(statuses "$TMP/py.out")" "requests: statuses"
https_proxy=$PROXY REQUESTS_CA_BUNDLE=$CA "$PYTHON" "$HTTPS_CLIENT_PY" env \
	"$G/echo/py-env" > "$TMP/py-env.out" ||
	fail "requests with https_proxy and REQUESTS_CA_BUNDLE: $(cat "$TMP/py-env.out")"
assert_eq 200 "$(statuses "$TMP/py-env.out")" "requests from the environment: status"
SLUICE_CA=$CA "$PYTHON" "$HTTPS_CLIENT_PY" --urllib "$PROXY" \
	"$G/echo/urllib" > "$TMP/urllib.out" || fail "urllib: $(cat "$TMP/urllib.out")"
assert_eq 200 "$(json "$TMP/urllib.out" 'str(d["status"])')" "urllib: status"
assert_eq 1 "$(origin_count '^/echo/urllib$' good)" "urllib's request upstream"

say "plain HTTP inside CONNECT (curl --proxytunnel)"
s=$(http_status -p "http://127.0.0.1:$ORIGIN_PORT/echo/tunnelled-plain")
assert_eq 200 "$s" "plain HTTP through CONNECT"
assert_eq 1 "$(origin_count '^/echo/tunnelled-plain$')" "the plain request upstream"
assert_eq 1 "$(header X-EZTHROTTLE-Attempts)" "queued by the front"

if np=$(node_undici); then
	say "Node undici ProxyAgent: HTTPS and plain HTTP, both through CONNECT"
	NODE_PATH=$np NODE_EXTRA_CA_CERTS=$CA timeout 60 node "$HTTPS_CLIENT_JS" \
		"$PROXY" "$G/echo/node1" "$G/echo/node2" \
		"http://127.0.0.1:$ORIGIN_PORT/echo/node-plain" \
		> "$TMP/node.out" 2> "$TMP/node.err" ||
		fail "node: $(cat "$TMP/node.out" "$TMP/node.err")"
	assert_eq "200 200 200" "$(statuses "$TMP/node.out")" "node: statuses"
	assert_eq 1 "$(origin_count '^/echo/node2$' good)" "node's second request"
	assert_eq 1 "$(origin_count '^/echo/node-plain$')" "node's plain request"
else
	say "(no Node undici here: the Node client is not run)"
fi

say "upstream certificate that does not verify: 502"
s=$(http_status --cacert "$CA" "https://127.0.0.1:$BAD/echo/untrusted")
assert_error 502 upstream_tls_verify_failed "$s" "an untrusted upstream"
assert_eq 0 "$(origin_count '^/echo/untrusted' bad)" "requests that reached the untrusted origin"

say "tls.tunnel: an opaque tunnel, the origin's own certificate"
s=$(http_status --cacert "$TMP/pki/testca.pem" "https://127.0.0.1:$OPAQUE/echo/opaque")
assert_eq 200 "$s" "through an opaque tunnel, trusting the origin's CA"
assert_eq "" "$(header X-EZTHROTTLE-Attempts)" "no proxy headers in an opaque tunnel"
ge "$(tls_stat opaque)" 1 || fail "opaque tunnels counted: $(tls_stat opaque)"

say "CONNECT to a denied destination: 403"
s=$(timeout 20 curl -s -x "$PROXY" -o /dev/null -w '%{http_connect}' \
	"https://127.0.0.2:$GOOD/" || true)
assert_eq 403 "$s" "CONNECT to 127.0.0.2"

say "failed handshakes never disturb other clients"
failed0=$(tls_stat handshake_failed)
# A client in the middle of a request (an answer that takes 1.5 s) while
# the bad ones come and go.
pcurl --cacert "$CA" -o "$TMP/during.body" -w '%{http_code}' \
	"$G/slow/1500" > "$TMP/during.status" &
during=$!
sleep 0.3
# A client that does not trust the CA, one that sends garbage after the
# 200, one that aborts in the middle of its ClientHello.
timeout 20 curl -s -x "$PROXY" -o /dev/null "$G/echo/distrust" && fail "a client without the CA was not refused"
timeout 20 "$PYTHON" - "$PROXY_PORT" "$GOOD" <<'EOF' || fail "raw clients"
import socket, sys
proxy, port = int(sys.argv[1]), sys.argv[2]
def tunnel():
    s = socket.create_connection(("127.0.0.1", proxy), timeout=10)
    s.sendall(("CONNECT 127.0.0.1:%s HTTP/1.1\r\nHost: x\r\n\r\n" % port).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 200"), head
    return s
s = tunnel()
s.sendall(b"\x16\x03\x01\x00\x10" + b"\xff" * 16)   # a record of junk
s.settimeout(5)
try:
    s.recv(100)
except OSError:
    pass
s.close()
s = tunnel()
s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # cut short
s.close()
EOF
wait "$during" || true
assert_eq 200 "$(cat "$TMP/during.status")" "a request served while the bad handshakes came and went"
assert_match '/slow/1500' "$(cat "$TMP/during.body")" "its answer"
s=$(http_status --cacert "$CA" "$G/echo/after-bad-clients")
assert_eq 200 "$s" "a normal client after the bad handshakes"
for _ in $(seq 40); do
	[ "$(tls_stat handshake_failed)" -ge $((failed0 + 3)) ] && break
	sleep 0.05
done
ge "$(tls_stat handshake_failed)" $((failed0 + 3)) ||
	fail "failed handshakes counted: $(tls_stat handshake_failed), before $failed0"
assert_grep 'tls: handshake failed client=.* host=127.0.0.1' "$TMP/sluiced.log" "a failed handshake is logged with its host"
sluiced_alive || fail "sluiced died"
assert_no_grep 'PRIVATE KEY|BEGIN' "$TMP/sluiced.log" "key material in the log"

stop_sluiced
assert_eq 0 "$SLUICED_STATUS" "exit status after SIGTERM"

say "bounds: tls.max_tunnels, tls.tunnel_idle_timeout"
write_config - <<EOF
tls:
  upstream_ca_file: $TMP/pki/testca.pem
  tunnel: ["127.0.0.1:$OPAQUE"]
  max_tunnels: 2
  tunnel_idle_timeout: 1s
EOF
start_sluiced
cat > "$TMP/bounds.py" <<'PY'
import socket, sys, time
proxy, good, opaque = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def connect(port):
    s = socket.create_connection(("127.0.0.1", proxy), timeout=10)
    s.sendall(("CONNECT 127.0.0.1:%s HTTP/1.1\r\n\r\n" % port).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        b = s.recv(1)
        if not b:
            break
        head += b
    return s, head.split(b"\r\n")[0].decode()
# An opaque tunnel left idle, and an intercepted one waiting for its
# first byte: two tunnels, the bound.
idle, st1 = connect(opaque)
held, st2 = connect(good)
third, st3 = connect(good)
print(st1, "|", st2, "|", st3)
t0 = time.monotonic()
idle.settimeout(5)
print("idle closed" if idle.recv(1) == b"" else "idle got data",
      time.monotonic() - t0 >= 0.5)
PY
timeout 30 "$PYTHON" "$TMP/bounds.py" "$PROXY_PORT" "$GOOD" "$OPAQUE" \
	> "$TMP/bounds.out" 2>&1 || fail "bounds client: $(cat "$TMP/bounds.out")"
assert_eq "HTTP/1.1 200 Connection established | HTTP/1.1 200 Connection established | HTTP/1.1 503 Service Unavailable" \
	"$(head -1 "$TMP/bounds.out")" "the third CONNECT over tls.max_tunnels: 2"
assert_eq "idle closed True" "$(sed -n 2p "$TMP/bounds.out")" \
	"an idle opaque tunnel is closed after tunnel_idle_timeout"
assert_serving "the bounds"
stop_sluiced

say "a CA that cannot sign stops the daemon at start"
openssl req -x509 -newkey ed25519 -noenc -days 30 -subj '/CN=ed CA' \
	-addext 'basicConstraints=critical,CA:TRUE' \
	-keyout "$TMP/state/ca-key.pem" -out "$TMP/state/ca.pem" 2> /dev/null ||
	fail "openssl cannot make an Ed25519 CA"
chmod 600 "$TMP/state/ca-key.pem"
rc=0
timeout 20 "$SLUICED" -c "$TMP/sluice.yaml" -l 127.0.0.1:0 -a 127.0.0.1:0 \
	-s "$TMP/state" > /dev/null 2> "$TMP/ed.log" || rc=$?
assert_eq 2 "$rc" "exit status with an Ed25519 CA"
assert_grep 'cannot sign certificates' "$TMP/ed.log" "the reason"
say "ok"
