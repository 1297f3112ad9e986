#!/usr/bin/env bash
# 67-disconnect: a client that disconnects while its request waits takes
# it out of the queue: it is never sent (SPEC section 5). At 0.4 req/s,
# one request goes out at once; four more wait and their clients go away
# (curl stopped by SIGTERM, twice; a socket closed with RST; a client
# killed with SIGKILL). /queues shows nothing waiting soon after, long before the
# next slot; none of the four reaches the origin; a later request still
# gets the very next slot (the abandoned ones used none). A client that
# leaves while its request waits for a retry cancels the retry.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

# arrival ERE: the arrival time (s) at the origin of the first target
# matching ERE.
arrival() {
	"$PYTHON" -c '
import json, re, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    if re.search(sys.argv[2], d["target"]):
        print("%.6f" % d["time"])
        break
' "$TMP/origin.requests" "$1"
}

# waiting: requests waiting in the whole daemon, from a fresh /queues.
waiting() {
	dcurl -o "$TMP/queues" "http://127.0.0.1:$ADMIN_PORT/queues"
	json "$TMP/queues" 'd["waiting"]'
}

# raw_client PATH MODE: sends a GET for PATH through the proxy and waits
# (up to 60 s) to be told to go: with MODE "rst" SIGTERM makes it close
# the socket with an RST (SO_LINGER 0); with "kill" it is meant to be
# killed (SIGKILL: the kernel closes the socket). It must get no answer
# meanwhile. Run it in the background: it execs python, so $! is the
# client itself.
raw_client() {
	exec "$PYTHON" -c '
import signal, socket, struct, sys
port, target, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port), timeout=60)
def rst(*_):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    sys.exit(0)
if mode == "rst":
    signal.signal(signal.SIGTERM, rst)
s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target).encode())
if s.recv(1):
    sys.exit("answered while it should wait")
' "$PROXY_PORT" "$1" "$2"
}

start_origin rt
RT=http://127.0.0.1:$ORIGIN_PORT
start_origin
write_config - <<EOF
retry:
  max_retries: 2
destinations:
  "127.0.0.1:$ORIGIN_PORT":
    rps: 0.4
    concurrency: 10
EOF
start_sluiced
O=http://127.0.0.1:$ORIGIN_PORT

say "request 1 takes the slot; 2..5 wait, then their clients go away"
s=$(http_status "$O/echo/d/1")
assert_eq 200 "$s" "request 1"
# Clients 2 and 3: curl, stopped with SIGTERM; 4: RST; 5: SIGKILL.
for i in 2 3; do
	timeout 60 curl -s -x "$PROXY" -o /dev/null -w '%{http_code}\n' \
		"$O/echo/d/$i" > "$TMP/d.$i" 2>&1 &
	echo $! > "$TMP/client$i.pid"
done
raw_client "$O/echo/d/4" rst > "$TMP/d.4" 2>&1 &
echo $! > "$TMP/client4.pid"
raw_client "$O/echo/d/5" kill > "$TMP/d.5" 2>&1 &
echo $! > "$TMP/client5.pid"
for _ in $(seq 200); do
	[ "$(waiting)" -ge 4 ] && break
	sleep 0.05
done
assert_eq 4 "$(waiting)" "requests waiting before the clients leave"
{
	kill -TERM "$(cat "$TMP/client2.pid")" "$(cat "$TMP/client3.pid")" \
		"$(cat "$TMP/client4.pid")"
	kill -KILL "$(cat "$TMP/client5.pid")"
	for i in 2 3 4 5; do wait "$(cat "$TMP/client$i.pid")"; done
} 2>/dev/null || true
rm -f "$TMP"/client*.pid
[ ! -s "$TMP/d.4" ] || fail "RST client: $(cat "$TMP/d.4")"
[ ! -s "$TMP/d.5" ] || fail "killed client: $(cat "$TMP/d.5")"

say "nothing waits once they are gone (the next slot is seconds away)"
# Until 1 s after the last client left; the next slot is 2.5 s after
# request 1.
end=$(($(date +%s%N) + 1000000000))
n=
while :; do
	n=$(waiting)
	[ "$n" -eq 0 ] && break
	[ "$(date +%s%N)" -lt "$end" ] || break
	sleep 0.05
done
assert_eq 0 "$n" "/queues waiting 1 s after the clients left"

say "a new request gets the next slot; the abandoned ones never went out"
s=$(http_status "$O/echo/d/6")
assert_eq 200 "$s" "request 6"
assert_eq 0 "$(origin_count '^/echo/d/[2-5]$')" \
	"arrivals of abandoned requests 2..5"
assert_eq 1 "$(origin_count '^/echo/d/6$')" "arrivals of request 6"
gap=$(awk -v a="$(arrival '^/echo/d/1$')" -v b="$(arrival '^/echo/d/6$')" \
	'BEGIN { printf "%.3f", b - a }')
say "request 6 arrived ${gap}s after request 1 (one slot: 2.5 s)"
awk -v g="$gap" 'BEGIN { exit !(g < 3.75) }' ||
	fail "request 6 came ${gap}s after request 1: abandoned requests used slots"
dcurl -o "$TMP/queues" "http://127.0.0.1:$ADMIN_PORT/queues"
assert_eq "0 0" "$(json "$TMP/queues" '"%d %d" % (d["waiting"],
	d["in_flight"])')" "/queues waiting and in_flight at the end"

say "a client that leaves while its request waits for a retry"
# 503 with Retry-After: 1; once the origin has sent it, the client goes
# away; the retry must not go out. A later request of the same queue
# waits out the pause and would come after the retry, which goes back to
# the head of the queue.
timeout 60 curl -s -x "$PROXY" -o /dev/null \
	"$RT/seq/rd?codes=503,200&retry_after=1" &
echo $! > "$TMP/client-rd.pid"
for _ in $(seq 200); do
	[ "$(origin_count '^/seq/rd[?]' rt)" -ge 1 ] && break
	sleep 0.05
done
{
	kill -TERM "$(cat "$TMP/client-rd.pid")"
	wait "$(cat "$TMP/client-rd.pid")"
} 2>/dev/null || true
rm -f "$TMP/client-rd.pid"
s=$(http_status "$RT/echo/rd-next")
assert_eq 200 "$s" "the next request of the queue"
assert_eq 1 "$(origin_count '^/seq/rd[?]' rt)" \
	"arrivals of the request whose client left during the retry wait"

say "ok"
