#!/usr/bin/env bash
# 83-notify: what systemd hears (sd_notify, SPEC section 9), read from a
# datagram socket the test binds as NOTIFY_SOCKET: READY=1 once serving;
# STATUS= with live counts (queues, waiting, in flight, requests); with
# WATCHDOG_USEC set (as WatchdogSec= does), WATCHDOG=1 at least every
# half of it, each only after the engine thread answered; a reload is
# RELOADING=1 (with MONOTONIC_USEC) then READY=1; SIGTERM sends
# STOPPING=1.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

"$SLUICED" --version >/dev/null
timeout -k 5 120 "$PYTHON" - "$TMP/notify.sock" "$TMP/notify.log" <<'EOF' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        msg = s.recv(4096).decode()
        for line in msg.split("\n"):
            log.write("%.3f %s\n" % (time.monotonic(), line))
EOF
echo $! > "$TMP/listener.pid"
for _ in $(seq 100); do [ -S "$TMP/notify.sock" ] && break; sleep 0.05; done
[ -S "$TMP/notify.sock" ] || error "the notify socket did not appear"

start_origin
write_config
export NOTIFY_SOCKET=$TMP/notify.sock WATCHDOG_USEC=600000
start_sluiced
unset NOTIFY_SOCKET WATCHDOG_USEC
assert_eq 200 "$(http_status "http://127.0.0.1:$ORIGIN_PORT/echo/1")" \
	"a request"
sleep 2.2

say "READY=1, STATUS= with counts, WATCHDOG=1 every 300 ms"
assert_grep ' READY=1$' "$TMP/notify.log" "READY=1"
assert_grep ' STATUS=queues=[0-9]+ waiting=[0-9]+ in_flight=[0-9]+ requests=[0-9]+ ' \
	"$TMP/notify.log" "STATUS= line"
assert_grep ' STATUS=.* requests=1 ' "$TMP/notify.log" \
	"STATUS= counts the request"
read -r n gap < <("$PYTHON" -c '
import sys
t = [float(l.split()[0]) for l in open(sys.argv[1]) if l.split()[1:] == ["WATCHDOG=1"]]
gaps = [b - a for a, b in zip(t, t[1:])]
print(len(t), "%.3f" % max(gaps or [0]))
' "$TMP/notify.log")
say "watchdog pings=$n longest gap=${gap}s"
ge "$n" 5 || fail "$n WATCHDOG=1 in about 2.2 s with WATCHDOG_USEC=600000"
ge 0.55 "$gap" || fail "WATCHDOG=1 ${gap}s apart (WatchdogSec 0.6 s)"

say "a reload: RELOADING=1 with MONOTONIC_USEC, then READY=1"
before=$(grep -c ' READY=1$' "$TMP/notify.log")
kill -HUP "$SLUICED_PID"
for _ in $(seq 100); do
	[ "$(grep -c ' READY=1$' "$TMP/notify.log")" -gt "$before" ] && break
	sleep 0.05
done
assert_grep ' RELOADING=1$' "$TMP/notify.log" "RELOADING=1"
assert_grep ' MONOTONIC_USEC=[0-9]+$' "$TMP/notify.log" "MONOTONIC_USEC"
assert_eq $((before + 1)) "$(grep -c ' READY=1$' "$TMP/notify.log")" \
	"READY=1 after the reload"

say "SIGTERM: STOPPING=1"
stop_sluiced
assert_eq 0 "$SLUICED_STATUS" "exit status"
assert_grep ' STOPPING=1$' "$TMP/notify.log" "STOPPING=1"
say "ok"
