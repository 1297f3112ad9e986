#!/usr/bin/env bash
# 30-bodies: binary bodies both ways, byte for byte: 1 MiB download and
# upload (Content-Length, Expect: 100-continue, chunked), chunked
# responses, a 20 MiB download streamed without being held in memory,
# bodies over max_body refused with 413 (SPEC sections 5 and 8).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

start_origin
write_config - <<'EOF'
max_body: 1MiB
EOF
start_sluiced
O=http://127.0.0.1:$ORIGIN_PORT
MiB=1048576

say "1 MiB binary response, same bytes as direct"
dcurl -o "$TMP/direct" "$O/bytes/$MiB?seed=7"
s=$(http_status "$O/bytes/$MiB?seed=7")
assert_eq 200 "$s" "1 MiB download status"
assert_eq "$MiB" "$(wc -c < "$TMP/body")" "1 MiB download size"
assert_eq "$(sha "$TMP/direct")" "$(sha "$TMP/body")" "1 MiB download sha256"
assert_eq "$MiB" "$(header Content-Length)" "1 MiB download Content-Length"

say "chunked responses"
for n in 0 1 1011 300000; do
	dcurl -o "$TMP/direct" "$O/bytes/$n?seed=3"
	s=$(http_status "$O/chunked/$n?seed=3")
	assert_eq 200 "$s" "/chunked/$n status"
	assert_eq "$(sha "$TMP/direct")" "$(sha "$TMP/body")" "/chunked/$n sha256"
done

say "1 MiB binary uploads"
big_file "$TMP/up" "$MiB" 1
want=$(sha "$TMP/up")
# curl adds "Expect: 100-continue" above 1 MiB of body, but not at 1 MiB:
# ask for it, and for none, explicitly.
for expect in 'Expect: 100-continue' 'Expect:'; do
	for m in POST PUT; do
		s=$(http_status -X "$m" -H "$expect" -H 'Content-Type: application/octet-stream' \
			--data-binary @"$TMP/up" "$O/upload")
		assert_eq 200 "$s" "$m 1 MiB ($expect) status"
		assert_eq "$MiB" "$(json "$TMP/body" 'd["body_length"]')" \
			"$m 1 MiB ($expect) length at origin"
		assert_eq "$want" "$(json "$TMP/body" 'd["body_sha256"]')" \
			"$m 1 MiB ($expect) sha256 at origin"
	done
done

say "chunked upload"
s=$(http_status -H 'Transfer-Encoding: chunked' --data-binary @"$TMP/up" \
	"$O/upload")
assert_eq 200 "$s" "chunked 1 MiB upload status"
assert_eq "$want" "$(json "$TMP/body" 'd["body_sha256"]')" \
	"chunked 1 MiB upload sha256 at origin"
printf 'POST %s/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n1;ext=1\r\nd\r\n0\r\nX-Trailer: t\r\n\r\n' \
	"$O" | raw_http "$PROXY_PORT" 5 > "$TMP/raw" 2>/dev/null
assert_eq 200 "$(raw_status "$TMP/raw")" "raw chunked upload with extension and trailer"
raw_body "$TMP/raw" > "$TMP/body"
assert_eq "$(printf abcd | sha256sum | awk '{print $1}')" \
	"$(json "$TMP/body" 'd["body_sha256"]')" "raw chunked upload sha256"

say "empty bodies"
s=$(http_status -X POST --data-binary '' "$O/echo/empty")
assert_eq 200 "$s" "empty POST status"
assert_eq 0 "$(json "$TMP/body" 'd["body_length"]')" "empty POST length"
s=$(http_status "$O/bytes/0")
assert_eq 200 "$s" "/bytes/0 status"
assert_eq 0 "$(wc -c < "$TMP/body")" "/bytes/0 body"

say "20 MiB response streams through, not held in memory"
dcurl -o "$TMP/direct" "$O/bytes/$((20 * MiB))?seed=9"
[ -n "$SLUICED_PID" ] || error "no daemon PID to watch its memory"
# Read the headers, stop reading for a second (the daemon should stop
# reading upstream too), note the daemon's resident memory, read the rest.
timeout 60 "$PYTHON" - "$PROXY_PORT" "$O/bytes/$((20 * MiB))?seed=9" \
	"$SLUICED_PID" "$TMP/body" > "$TMP/stream" <<'EOF'
import http.client, sys, time

def rss_kib(pid):
    for line in open("/proc/%s/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

port, url, pid, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
before = rss_kib(pid)
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
c.request("GET", url)
r = c.getresponse()
time.sleep(1.5)
during = rss_kib(pid)
t0 = time.monotonic()
data = r.read()
open(out, "wb").write(data)
print(r.status, len(data), during - before, "%.2f" % (time.monotonic() - t0))
EOF
read -r st len grow secs < "$TMP/stream"
say "20 MiB: status $st, $len bytes, daemon RSS grew ${grow} KiB while the client paused, read in ${secs} s"
assert_eq 200 "$st" "20 MiB status"
assert_eq "$((20 * MiB))" "$len" "20 MiB length"
assert_eq "$(sha "$TMP/direct")" "$(sha "$TMP/body")" "20 MiB sha256"
[ "$grow" -lt 10240 ] ||
	fail "daemon RSS grew by $grow KiB while a client paused on a 20 MiB body (buffered, not streamed?)"

say "a dripping response reaches the client piece by piece"
# 5 events, one every 200 ms: the first must arrive long before the last.
timeout 30 "$PYTHON" - "$PROXY_PORT" "$O/drip/5?interval=200" \
	> "$TMP/drip" <<'EOF'
import http.client, sys, time
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=20)
t0 = time.monotonic()
c.request("GET", sys.argv[2])
r = c.getresponse()
times, events = [], []
while True:
    line = r.readline()
    if not line:
        break
    if line.startswith(b"data: "):
        times.append(time.monotonic() - t0)
        events.append(line.strip().decode())
print(r.status, len(events), "%.2f" % times[0], "%.2f" % times[-1])
print(" ".join(events))
EOF
read -r st n first last < "$TMP/drip"
say "drip: status $st, $n events, first after $first s, last after $last s"
assert_eq 200 "$st" "/drip status"
assert_eq 5 "$n" "/drip events"
assert_eq "data: 0 data: 1 data: 2 data: 3 data: 4" \
	"$(sed -n 2p "$TMP/drip")" "/drip events in order"
"$PYTHON" -c 'import sys; sys.exit(not (float(sys.argv[2]) - float(sys.argv[1]) >= 0.5))' \
	"$first" "$last" ||
	fail "first event after $first s, last after $last s: the response was buffered, not streamed"

say "request bodies over max_body (1 MiB) get 413"
big_file "$TMP/up2" "$((2 * MiB))" 2
# Most clients (curl without Expect, Python requests) send the whole body
# before they read the answer, and give up if sending fails. The 413 must
# reach them: the daemon has to read (and drop) the rest of the body, or
# close gently, not close with unread data, which resets the connection.
# The pause makes the daemon answer while the client is still sending.
timeout 30 "$PYTHON" - "$PROXY_PORT" "$O/upload?too-big=paused" \
	"$TMP/up2" > "$TMP/paused" <<'EOF'
import socket, sys, time
port, url, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
body = open(path, "rb").read()
s = socket.create_connection(("127.0.0.1", port), timeout=10)
head = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
        "Content-Type: application/octet-stream\r\n\r\n" % (url, len(body)))
try:
    s.sendall(head.encode() + body[:262144])
    time.sleep(0.5)
    s.sendall(body[262144:])
except OSError as e:
    print("send failed: %s" % e)
    sys.exit(0)
resp = b""
try:
    while b"\r\n\r\n" not in resp:
        b = s.recv(65536)
        if not b:
            break
        resp += b
except OSError as e:
    print("recv failed: %s" % e)
    sys.exit(0)
print(resp.split(b"\r\n", 1)[0].decode("latin-1"))
EOF
assert_match '^HTTP/1\.[01] 413' "$(cat "$TMP/paused")" \
	"2 MiB POST, no Expect, client still sending when the 413 is ready"
assert_serving "413 (client still sending)"
s=$(http_status --data-binary @"$TMP/up2" "$O/upload?too-big=cl")
assert_error 413 body_too_large "$s" "2 MiB POST (Content-Length)"
assert_serving "413 (Content-Length)"
s=$(http_status -H 'Expect:' --data-binary @"$TMP/up2" "$O/upload?too-big=noexpect")
assert_error 413 body_too_large "$s" "2 MiB POST (Content-Length, no Expect)"
assert_serving "413 (no Expect)"
s=$(http_status -H 'Transfer-Encoding: chunked' --data-binary @"$TMP/up2" \
	"$O/upload?too-big=chunked")
assert_error 413 body_too_large "$s" "2 MiB POST (chunked)"
assert_serving "413 (chunked)"
assert_eq 0 "$(origin_count 'too-big')" "bodies over max_body reached the origin"

say "exactly max_body is allowed"
big_file "$TMP/up3" "$MiB" 3
s=$(http_status -H 'Transfer-Encoding: chunked' --data-binary @"$TMP/up3" \
	"$O/upload")
assert_eq 200 "$s" "chunked upload of exactly max_body"
assert_eq "$(sha "$TMP/up3")" "$(json "$TMP/body" 'd["body_sha256"]')" \
	"exactly max_body sha256"

say "ok"
