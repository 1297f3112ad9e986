#!/usr/bin/env bash
# 11-admin: who may use the admin listener (SPEC section 8). admin_allow
# (default loopback) answers others 403 with JSON; with admin_token_file,
# /queues and /jobs/... want "Authorization: Bearer TOKEN" (401 with
# WWW-Authenticate otherwise), /healthz stays open, sluicectl sends the
# token with --token-file, and the token is in no log. An unreadable or
# empty token file stops the start (exit 1). Idle connections cannot lock
# the admin listener out: it has its own budget and closes idle
# connections after admin_timeout.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

TOKEN=adm-t0ken-5ecr3t-Q7
ADMIN() { echo "http://127.0.0.1:$ADMIN_PORT$1"; }

start_origin

say "admin_allow: loopback by default"
write_config
start_sluiced
s=$(direct_status "$(ADMIN /healthz)")
assert_eq 200 "$s" "/healthz from loopback"
s=$(direct_status "$(ADMIN /queues)")
assert_eq 200 "$s" "/queues from loopback, no token file"

say "admin_allow without loopback: closed at accept, the proxy still serves"
stop_sluiced
write_config - <<EOF
admin_allow: [10.0.0.0/8]
EOF
start_sluiced
for p in /healthz /queues /jobs/x; do
	s=$(direct_status "$(ADMIN $p)")
	assert_eq 000 "$s" "$p from outside admin_allow: no answer"
done
printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' |
	raw_http "$ADMIN_PORT" 3 > "$TMP/raw" 2> "$TMP/raw.err"
assert_eq 0 "$(wc -c < "$TMP/raw")" "no byte answered outside admin_allow"
assert_grep 'raw: (eof|reset)' "$TMP/raw.err" "the connection is closed at once"
assert_serving "admin_allow"

say "admin_token_file"
stop_sluiced
printf '%s\n' "$TOKEN" > "$TMP/admin-token"
write_config - <<EOF
admin_token_file: $TMP/admin-token
EOF
start_sluiced --log-level debug --access-log
s=$(direct_status "$(ADMIN /healthz)")
assert_eq 200 "$s" "/healthz without a token"
J=/jobs/job_00000000000000000000000000000000000000000000
for p in /queues "/queues?limit=5" "$J"; do
	s=$(direct_status "$(ADMIN "$p")")
	assert_error 401 unauthorized "$s" "$p without a token"
	assert_eq Bearer "$(header WWW-Authenticate)" "$p: WWW-Authenticate"
	for bad in "Bearer wrong" "Bearer ${TOKEN}x" "Bearer ${TOKEN%?}" \
		"Basic $TOKEN" "$TOKEN" "Bearer"; do
		s=$(direct_status -H "Authorization: $bad" "$(ADMIN "$p")")
		assert_error 401 unauthorized "$s" "$p with '$bad'"
	done
done
s=$(direct_status -H "Authorization: Bearer $TOKEN" "$(ADMIN /queues)")
assert_eq 200 "$s" "/queues with the token"
s=$(direct_status -H "Authorization: bearer $TOKEN" "$(ADMIN "$J")")
assert_error 404 job_not_found "$s" "a job with the token"
"$SLUICECTL" -a "127.0.0.1:$ADMIN_PORT" status > "$TMP/ctl.out" 2>&1 &&
	fail "sluicectl status without the token succeeded"
assert_grep '401' "$TMP/ctl.out" "sluicectl without the token"
"$SLUICECTL" -a "127.0.0.1:$ADMIN_PORT" -T "$TMP/admin-token" status \
	> "$TMP/ctl.out" 2>&1 || fail "sluicectl -T: $(cat "$TMP/ctl.out")"
assert_grep '^queues ' "$TMP/ctl.out" "sluicectl -T status"
"$SLUICECTL" -a "127.0.0.1:$ADMIN_PORT" --token-file "$TMP/admin-token" \
	job "${J#/jobs/}" > "$TMP/ctl.out" 2>&1 || true
assert_grep 'no such job' "$TMP/ctl.out" "sluicectl --token-file job"
stop_sluiced
assert_no_grep "$TOKEN" "$TMP/sluiced.log" "the token in the log"
assert_no_grep "${TOKEN#adm-}" "$TMP/ctl.out" "the token in sluicectl's output"

say "an unreadable or empty token file: exit 1"
for f in "$TMP/no-such-token" "$TMP/empty-token" "$TMP/spaced-token"; do
	: > "$TMP/empty-token"
	printf 'a b\n' > "$TMP/spaced-token"
	write_config - <<EOF
admin_token_file: $f
EOF
	st=0
	timeout 10 "$SLUICED" -c "$TMP/sluice.yaml" -l 127.0.0.1:0 \
		-a 127.0.0.1:0 -s "$TMP/state" > /dev/null 2> "$TMP/bad.log" || st=$?
	assert_eq 1 "$st" "exit status with admin_token_file $f"
	assert_grep 'admin token file' "$TMP/bad.log" "message for $f"
done

say "idle connections do not lock the admin listener out"
write_config - <<EOF
admin_timeout: 1s
EOF
start_sluiced
"$PYTHON" - "$ADMIN_PORT" "$TMP/held" <<'EOF' &
import socket, sys, time
port, out = int(sys.argv[1]), sys.argv[2]
socks = []
for _ in range(300):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        socks.append(s)
    except OSError:
        pass
open(out, "w").write("%d\n" % len(socks))
time.sleep(6)
EOF
HOLDER=$!
echo "$HOLDER" > "$TMP/holder.pid"
wait_file "$TMP/held"
t0=$(date +%s.%N)
ok=
for _ in $(seq 40); do
	s=$(direct_status --max-time 2 "$(ADMIN /healthz)")
	if [ "$s" = 200 ]; then ok=1; break; fi
	sleep 0.1
done
t1=$(date +%s.%N)
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
say "with $(cat "$TMP/held") idle connections opened: /healthz answered after ${secs}s"
[ -n "$ok" ] || fail "/healthz never answered while idle connections were held"
ge 4 "$secs" || fail "/healthz took ${secs}s (admin_timeout 1s)"
kill "$HOLDER" 2>/dev/null || true
wait "$HOLDER" 2>/dev/null || true

say "the admin listener checks request bytes like the proxy"
printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n' |
	raw_http "$ADMIN_PORT" 3 > "$TMP/raw" 2> /dev/null
assert_eq 400 "$(raw_status "$TMP/raw")" "a field name with a space"
assert_grep '"error":"bad_request"' "$TMP/raw" "JSON error"

say "a head trickled to the admin listener is cut at admin_timeout"
"$PYTHON" - "$ADMIN_PORT" > "$TMP/trickle" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
t0 = time.monotonic()
how = "sent-all"
try:
    for c in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: abcdefgh":
        s.sendall(bytes([c]))
        time.sleep(0.2)
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                how = "closed"
                break
        except BlockingIOError:
            pass
        s.setblocking(True)
except OSError:
    how = "closed"
print(how, round(time.monotonic() - t0, 1))
EOF
read -r how secs < "$TMP/trickle"
assert_eq closed "$how" "a head a byte every 0.2 s (admin_timeout 1s)"
ge 4 "$secs" || fail "the trickled head lived ${secs}s"

say "admin: stray empty lines do not hold a connection, nor a slow body"
"$PYTHON" - "$ADMIN_PORT" > "$TMP/trickle2" <<'PY'
import socket, sys, time
def hold(data, step, head=b""):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    t0 = time.monotonic()
    got = b""
    s.sendall(head)
    try:
        for c in data:
            s.sendall(bytes([c]))
            time.sleep(step)
            s.setblocking(False)
            try:
                b = s.recv(4096)
                got += b
                if b == b"":
                    return "closed", time.monotonic() - t0, got
            except BlockingIOError:
                pass
            s.setblocking(True)
    except OSError:
        return "closed", time.monotonic() - t0, got
    return "sent-all", time.monotonic() - t0, got
how, secs, _ = hold(b"\n" * 30, 0.2)
print(how, round(secs, 1))
how, secs, got = hold(b"x" * 40, 0.2, b"POST /healthz HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 100000\r\n\r\n")
print(how, round(secs, 1), got.split(b" ")[1].decode() if got else "-")
PY
{ read -r how1 secs1; read -r how2 secs2 st2; } < "$TMP/trickle2"
assert_eq closed "$how1" "a stray empty line every 0.2 s (admin_timeout 1s)"
ge 4 "$secs1" || fail "the stray lines held the connection ${secs1}s"
assert_eq "closed 408" "$how2 $st2" "a body at 5 bytes/s (min_body_rate 1KiB)"
ge 6 "$secs2" || fail "the slow body held the connection ${secs2}s"
say "ok"
