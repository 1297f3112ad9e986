#!/usr/bin/env bash
# 10-startup: command line, --check-config, configuration errors in
# file:line:column form, ephemeral ports and the "listening" line,
# /healthz, flags overriding the file, exit statuses (SPEC section 11).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

# run_sluiced ARGS...: runs the daemon in the foreground (it must exit by
# itself, at once), stdout in $TMP/out, stderr in $TMP/err, status in $RC
# (124: still running after 5 s).
run_sluiced() {
	RC=0
	timeout -k 2 5 "$SLUICED" "$@" > "$TMP/out" 2> "$TMP/err" || RC=$?
	# Kept for lib.sh's check for sanitizer reports at exit.
	cat "$TMP/err" >> "$TMP/sluiced-runs.log"
}

# Listeners and state for runs that should exit at once: were a run to
# start serving anyway, it would not take the default ports 8080/8081.
mkdir -p "$TMP/state"
SAFE=(-l 127.0.0.1:0 -a 127.0.0.1:0 -s "$TMP/state")

say "--help lists every flag"
run_sluiced --help
assert_eq 0 "$RC" "--help exit status"
cat "$TMP/out" "$TMP/err" > "$TMP/help"
for flag in -c --config -l --listen -a --admin-listen -s --state-dir \
	--rps --concurrency --allow --webhook-secret-file --log-level \
	--access-log -t --check-config -h --help -V --version; do
	grep -q -e "$flag\\b" "$TMP/help" || fail "--help does not mention $flag"
done
run_sluiced -h
assert_eq 0 "$RC" "-h exit status"

say "-V and --version print the version"
for v in -V --version; do
	run_sluiced "$v"
	assert_eq 0 "$RC" "$v exit status"
	assert_grep '[0-9]+\.[0-9]+\.[0-9]+' "$TMP/out" "$v output"
done

say "bad usage exits 1"
for args in "--no-such-flag" "-Z" "-c" "--log-level bogus" "--rps abc" \
	"--concurrency 0" "--allow not-a-cidr" "-l no-port" "extra-argument"; do
	# shellcheck disable=SC2086 # split on purpose
	run_sluiced -t "${SAFE[@]}" $args
	assert_eq 1 "$RC" "'sluiced $args' exit status"
	[ -s "$TMP/err" ] || fail "'sluiced $args' says nothing on stderr"
done

say "--check-config: a good file"
cat > "$TMP/good.yaml" <<'EOF'
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
max_body: 10MiB
sync_timeout: 30s
defaults:
  rps: 2.5
  concurrency: 4
destinations:
  "api.example.com":
    rps: 10
  "*.stripe.com":
    rps: 25
EOF
run_sluiced -c "$TMP/good.yaml" --check-config "${SAFE[@]}"
assert_eq 0 "$RC" "--check-config on a good file: exit status ($(cat "$TMP/err"))"
run_sluiced -t -c "$TMP/good.yaml" "${SAFE[@]}"
assert_eq 0 "$RC" "-t on a good file: exit status ($(cat "$TMP/err"))"

say "--check-config: an unknown key, reported as FILE:LINE:COL"
printf 'defaults:\n  rpss: 3\n' > "$TMP/bad.yaml"
run_sluiced -c "$TMP/bad.yaml" --check-config "${SAFE[@]}"
assert_eq 1 "$RC" "unknown key: exit status"
assert_grep "^$TMP/bad.yaml:2:3: .*unknown key 'rpss'" "$TMP/err" \
	"unknown key message"

say "every error in the file is reported"
cat > "$TMP/bad2.yaml" <<'EOF'
listen: 127.0.0.1:0
bogus_top: 1
defaults:
  rps: 10
  rpss: 3
EOF
run_sluiced -c "$TMP/bad2.yaml" -t "${SAFE[@]}"
assert_eq 1 "$RC" "two unknown keys: exit status"
assert_grep "$TMP/bad2.yaml:2:1: .*unknown key 'bogus_top'" "$TMP/err" \
	"first of two errors"
assert_grep "$TMP/bad2.yaml:5:3: .*unknown key 'rpss'" "$TMP/err" \
	"second of two errors"

say "a bad value points at the value"
printf 'defaults:\n  concurrency: 0\n' > "$TMP/bad3.yaml"
run_sluiced -c "$TMP/bad3.yaml" -t "${SAFE[@]}"
assert_eq 1 "$RC" "concurrency 0: exit status"
assert_grep "$TMP/bad3.yaml:2:16: .*concurrency" "$TMP/err" \
	"bad value message"

say "a YAML syntax error is reported as FILE:LINE:COL"
printf 'defaults:\n  rps: [1, 2\nlisten: x\n' > "$TMP/bad4.yaml"
run_sluiced -c "$TMP/bad4.yaml" -t "${SAFE[@]}"
assert_eq 1 "$RC" "syntax error: exit status"
assert_grep "$TMP/bad4.yaml:[0-9]+:[0-9]+: " "$TMP/err" "syntax error message"

say "a missing named config file is an error"
run_sluiced -c "$TMP/no-such.yaml" -t "${SAFE[@]}"
assert_eq 1 "$RC" "missing -c file with -t: exit status"
assert_grep "no-such.yaml" "$TMP/err" "missing file message names the file"
run_sluiced -c "$TMP/no-such.yaml" "${SAFE[@]}"
assert_eq 1 "$RC" "missing -c file: exit status"

say "a bad file stops the daemon from starting (exit 1)"
run_sluiced -c "$TMP/bad.yaml" "${SAFE[@]}"
assert_eq 1 "$RC" "start with a bad file: exit status"

say "cannot bind: exit 2"
# A port in use (the origin's) cannot be bound.
start_origin
BUSY=127.0.0.1:$ORIGIN_PORT
printf 'listen: %s\n' "$BUSY" > "$TMP/busy.yaml"
run_sluiced -c "$TMP/busy.yaml" -a 127.0.0.1:0 -s "$TMP/state"
assert_eq 2 "$RC" "listen on a port in use: exit status"
run_sluiced -c "$TMP/good.yaml" -l 127.0.0.1:0 -a "$BUSY" -s "$TMP/state"
assert_eq 2 "$RC" "admin listener on a port in use: exit status"

say "port 0: the listening line, /healthz"
write_config
start_sluiced
assert_ne "$PROXY_PORT" "$ADMIN_PORT" "proxy and admin ports"
s=$(direct_status "http://127.0.0.1:$ADMIN_PORT/healthz")
assert_eq 200 "$s" "GET /healthz status"
assert_eq ok "$(tr -d '\r\n' < "$TMP/body")" "GET /healthz body"

say "SIGTERM: clean stop, exit 0"
stop_sluiced TERM
assert_eq 0 "$SLUICED_STATUS" "exit status after SIGTERM"

say "flags override the file"
# Unusable listeners and state directory in the file; -l/-a 127.0.0.1:0
# and -s from start_sluiced must win.
write_config - <<EOF
listen: $BUSY
admin_listen: $BUSY
state_dir: /nonexistent/sluice-state
log_level: error
EOF
run_sluiced -c "$TMP/sluice.yaml" -t "${SAFE[@]}"
assert_eq 0 "$RC" "config with unusable addresses is still valid"
# --log-level info must override log_level: error, else no listening line.
start_sluiced --log-level info
s=$(direct_status "http://127.0.0.1:$ADMIN_PORT/healthz")
assert_eq 200 "$s" "GET /healthz with overridden listeners"
stop_sluiced
assert_eq 0 "$SLUICED_STATUS" "exit status after SIGTERM"

say "--access-log: one line per completed request, no credentials"
write_config
start_sluiced
pcurl -o /dev/null "http://127.0.0.1:$ORIGIN_PORT/echo/quiet-probe"
stop_sluiced
start_sluiced --access-log
pcurl -o /dev/null -H 'Authorization: Bearer SECRET-TOKEN-1' \
	-H 'X-Api-Key: SECRET-KEY-2' \
	"http://127.0.0.1:$ORIGIN_PORT/echo/access-probe?token=SECRET-QUERY-3"
stop_sluiced
cat "$TMP"/sluiced*.log > "$TMP/all.log"
assert_no_grep 'quiet-probe' "$TMP/all.log" "request logged without --access-log"
assert_eq 1 "$(grep -c 'access-probe' "$TMP/sluiced.log")" \
	"access log lines for one request"
assert_grep 'access-probe.*200|200.*access-probe' "$TMP/sluiced.log" \
	"access log line has the status"
# logfmt, every field: the path without its query, the key's hash.
assert_grep '^info: access time=20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z client=127\.0\.0\.1:[0-9]+ method=GET dest=http://127\.0\.0\.1:'"$ORIGIN_PORT"' path="/echo/access-probe" status=200 attempts=1 queue_ms=[0-9]+ upstream_ms=[0-9]+ bytes=[0-9]+ ms=[0-9]+ key=[0-9a-f]{12}$' \
	"$TMP/sluiced.log" "access log line, field by field"
assert_no_grep 'SECRET' "$TMP/all.log" "credential in the log"

say "ok"
