# lib.sh - harness for sluice's integration tests; sourced, bash only.
# shellcheck shell=bash
#
# Shaped like varnish/hitch src/tests/hitch_test.sh: set -e -u, one
# mktemp -d per test ($TMP), a trap that stops every process whose PID is
# in $TMP/*.pid (by PID, never by name) and removes $TMP, and fail / skip /
# error that exit with automake's codes (1, 77, 99).
#
# Environment (set by `make check`; defaults allow a run by hand, e.g.
# `SLUICED=src/sluiced T_SRC=t sh t/integration/20-forward.sh`):
#   SLUICED   the sluiced binary
#   SLUICECTL the sluicectl binary
#   T_SRC     the source t/ directory (origin.py is in $T_SRC/integration)
#   T_BUILD   the build t/ directory (node_undici's cache: t/node)
#   PYTHON    python3 to run origin.py and socket helpers (default
#             /usr/bin/python3, else python3 from PATH)
#   KEEP_TMP  if set, $TMP is kept for inspection
#   SOFT_FAIL if set, a failed assertion is reported and the test goes on
#             (to see every failure at once); the test still fails
#   SLUICE_NODE_DIR  where node_undici installs undici (default
#             $T_BUILD/node; when T_BUILD is the source t/, as in a run
#             by hand, ${XDG_CACHE_HOME:-~/.cache}/sluice-tests/node)
#
# Every server binds loopback on an ephemeral port; ports are read back
# from files and log lines, never hard-coded.
#
# Functions with optional arguments are often called without any:
# shellcheck disable=SC2119,SC2120

set -e -u

# A stray proxy in the environment would route the tests' own direct
# requests (to the origin, to the admin listener) through it. npm
# (node_undici) may need it to reach its registry: it gets a copy.
NPM_PROXY_ENV=()
for _v in http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy NO_PROXY; do
	[ -z "${!_v:-}" ] || NPM_PROXY_ENV+=("$_v=${!_v}")
done
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy \
	no_proxy NO_PROXY ftp_proxy FTP_PROXY

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T_SRC=${T_SRC:-$(cd "$LIB_DIR/.." && pwd)}
T_BUILD=${T_BUILD:-$T_SRC}
SLUICED=${SLUICED:-$LIB_DIR/../../src/sluiced}
SLUICECTL=${SLUICECTL:-$LIB_DIR/../../src/sluicectl}
ORIGIN_PY=$LIB_DIR/origin.py
# shellcheck disable=SC2034 # for the tests (see "HTTPS clients")
HTTPS_CLIENT_JS=$LIB_DIR/https_client.js
# shellcheck disable=SC2034
HTTPS_CLIENT_PY=$LIB_DIR/https_client.py
if [ -z "${PYTHON:-}" ]; then
	if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3
	else PYTHON=python3; fi
fi
TEST_NAME=$(basename "$0" .sh)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sluice-$TEST_NAME.XXXXXX")
LOGS_DUMPED=
SOFT_FAILED=
ORIGIN_PORT=
TLS_ORIGIN_PORT=
PROXY_PORT=
ADMIN_PORT=
SLUICED_PID=

# --- exit paths ---------------------------------------------------------

dump_logs() {
	[ -z "$LOGS_DUMPED" ] || return 0
	LOGS_DUMPED=1
	local f
	for f in "$TMP"/sluiced*.log "$TMP"/*.stderr; do
		[ -s "$f" ] || continue
		echo "--- $(basename "$f") (last 60 lines)"
		tail -n 60 "$f"
	done >&2
	for f in "$TMP"/*.requests; do
		[ -s "$f" ] || continue
		echo "--- $(basename "$f") (last 5 arrivals)"
		tail -n 5 "$f" | cut -c 1-600
	done >&2
	for f in "$TMP/headers" "$TMP/body"; do
		[ -s "$f" ] || continue
		echo "--- last response: $(basename "$f") (first 2000 bytes)"
		head -c 2000 "$f" | cat -v
		echo
	done >&2
}

cleanup() {
	local rc=$? f pid pids=
	trap - EXIT
	set +e
	if [ "$rc" -eq 0 ] && [ -n "$SOFT_FAILED" ]; then
		rc=1
		echo "FAIL: $TEST_NAME: $SOFT_FAILED failed assertion(s)" >&2
	fi
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
		[ -n "$LOGS_DUMPED" ] || echo "FAIL: exit status $rc" >&2
		dump_logs
	fi
	for f in "$TMP"/*.pid; do
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		case "$pid" in ''|*[!0-9]*) continue ;; esac
		pids="$pids $pid"
		kill "$pid" 2>/dev/null
	done
	# Give them 5 s to go, then SIGKILL whatever is left.
	for _ in $(seq 50); do
		local alive=
		for pid in $pids; do
			if kill -0 "$pid" 2>/dev/null; then alive=1; fi
		done
		[ -n "$alive" ] || break
		sleep 0.1
	done
	for pid in $pids; do kill -9 "$pid" 2>/dev/null; done
	# A sanitizer build (--enable-sanitizers) reports on stderr, often
	# only at exit: any report fails the test.
	if grep -q -E 'ERROR: [A-Za-z]+Sanitizer|runtime error:' \
		"$TMP"/sluiced*.log 2>/dev/null; then
		echo "FAIL: $TEST_NAME: sanitizer report in the daemon's log:" >&2
		grep -h -A 30 -E 'ERROR: [A-Za-z]+Sanitizer|runtime error:' \
			"$TMP"/sluiced*.log | head -n 120 >&2
		[ "$rc" -ne 0 ] || rc=1
	fi
	if [ -n "${KEEP_TMP:-}" ]; then
		echo "# kept $TMP" >&2
	else
		rm -rf "$TMP"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 99' INT TERM HUP PIPE
# set -e stops at the first failing command; say which one.
trap 'echo "error: line $LINENO: command failed: $BASH_COMMAND" >&2' ERR

fail() {
	echo "FAIL: $TEST_NAME: $*" >&2
	if [ -n "${SOFT_FAIL:-}" ]; then
		SOFT_FAILED=$((${SOFT_FAILED:-0} + 1))
		return 0
	fi
	dump_logs
	exit 1
}

skip() {
	echo "SKIP: $TEST_NAME: $*" >&2
	exit 77
}

error() {
	echo "ERROR: $TEST_NAME: $*" >&2
	dump_logs
	exit 99
}

# Progress on stdout, which automake keeps in the .log file.
say() {
	echo "# [${SECONDS}s] $*"
}

# --- assertions ---------------------------------------------------------

# assert_eq EXPECTED ACTUAL WHAT
assert_eq() {
	[ "$1" = "$2" ] || fail "$3: expected '$1', got '$2'"
}

# assert_ne UNEXPECTED ACTUAL WHAT
assert_ne() {
	[ "$1" != "$2" ] || fail "$3: got '$2'"
}

# assert_match ERE STRING WHAT
assert_match() {
	printf '%s' "$2" | grep -Eq -e "$1" ||
		fail "$3: '$(printf '%s' "$2" | head -c 500)' does not match /$1/"
}

# assert_grep ERE FILE WHAT (case-sensitive, extended regex)
assert_grep() {
	grep -Eq -e "$1" "$2" ||
		fail "$3: /$1/ not found in $(basename "$2"): $(head -c 800 "$2")"
}

# assert_no_grep ERE FILE WHAT
assert_no_grep() {
	! grep -Eq -e "$1" "$2" ||
		fail "$3: /$1/ found in $(basename "$2"): $(grep -E -e "$1" "$2" | head -c 800)"
}

# --- processes ----------------------------------------------------------

# wait_file FILE [TENTHS]: waits until FILE is non-empty (default 10 s).
wait_file() {
	for _ in $(seq "$((${2:-100} * 2))"); do
		[ -s "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

# origin_up NAME BIND [ARG...]: starts origin.py with ARGs and waits for
# its port; sets ORIGIN_UP_PORT (for start_origin, start_origin_tls).
origin_up() {
	local name=$1 bind=$2
	shift 2
	"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 9)' 2>/dev/null ||
		skip "python >= 3.9 is needed for origin.py"
	rm -f "$TMP/$name.port"
	timeout -k 5 300 "$PYTHON" "$ORIGIN_PY" --bind "$bind" \
		--port-file "$TMP/$name.port" --pid-file "$TMP/$name.pid" \
		--log "$TMP/$name.requests" "$@" 2> "$TMP/$name.stderr" &
	echo $! > "$TMP/$name-timeout.pid"
	wait_file "$TMP/$name.port" ||
		error "origin '$name' did not start: $(cat "$TMP/$name.stderr")"
	ORIGIN_UP_PORT=$(cat "$TMP/$name.port")
}

# start_origin [NAME [BIND_ADDR]]: starts origin.py; sets ORIGIN_PORT.
# Files: $TMP/NAME.port, NAME.pid, NAME.requests (one JSON line per
# arrival), NAME.stderr.  NAME defaults to "origin".
start_origin() {
	local name=${1:-origin} bind=${2:-127.0.0.1}
	origin_up "$name" "$bind"
	ORIGIN_PORT=$ORIGIN_UP_PORT
	say "origin $name on $bind:$ORIGIN_PORT"
}

# start_origin_tls CERT KEY [NAME [BIND_ADDR]]: starts origin.py serving
# HTTPS (HTTP/1.1 only) with the PEM certificate CERT and its KEY: the
# same scripts as start_origin. Sets TLS_ORIGIN_PORT (ORIGIN_PORT is left
# alone). NAME defaults to "tls-origin"; files as for start_origin, so
# origin_count ERE NAME works. A failed handshake is a line "origin: tls:
# ..." in $TMP/NAME.stderr. Two at once, one trusted and one not:
#     make_test_ca "$TMP/pki"
#     start_origin_tls "$TMP/pki/origin.pem" "$TMP/pki/origin.key" good
#     GOOD=https://127.0.0.1:$TLS_ORIGIN_PORT
#     start_origin_tls "$TMP/pki/untrusted.pem" "$TMP/pki/untrusted.key" bad
#     BAD=https://127.0.0.1:$TLS_ORIGIN_PORT
start_origin_tls() {
	local cert=$1 key=$2 name=${3:-tls-origin} bind=${4:-127.0.0.1}
	if [ ! -r "$cert" ] || [ ! -r "$key" ]; then
		error "start_origin_tls: cannot read '$cert' or '$key'"
	fi
	origin_up "$name" "$bind" --cert "$cert" --key "$key"
	TLS_ORIGIN_PORT=$ORIGIN_UP_PORT
	say "TLS origin $name on $bind:$TLS_ORIGIN_PORT ($(basename "$cert"))"
}

# limit_origin NAME ARG...: starts limit_origin.py (an origin that enforces
# a limit and states it in one dialect) with ARGs; sets LPORT.
# Files as for start_origin: $TMP/NAME.port, .pid, .requests, .stderr.
limit_origin() {
	local name=$1
	shift
	rm -f "$TMP/$name.port"
	timeout -k 5 120 "$PYTHON" "$LIB_DIR/limit_origin.py" \
		--port-file "$TMP/$name.port" --pid-file "$TMP/$name.pid" \
		--log "$TMP/$name.requests" "$@" 2> "$TMP/$name.stderr" &
	echo $! > "$TMP/$name-timeout.pid"
	wait_file "$TMP/$name.port" ||
		error "origin '$name' did not start: $(cat "$TMP/$name.stderr")"
	LPORT=$(cat "$TMP/$name.port")
	say "origin $name ($*) on 127.0.0.1:$LPORT"
}

# make_test_ca DIR: a throwaway PKI in DIR, made with the openssl CLI (EC
# P-256 keys, valid 30 days, keys mode 0600):
#   testca.pem, testca.key        a CA, "sluice test CA" (CA:TRUE
#                                 critical, keyCertSign, SKI)
#   origin.pem, origin.key        a server certificate (the leaf only)
#                                 signed by that CA, SAN IP:127.0.0.1 and
#                                 DNS:localhost (serverAuth, AKI and SKI,
#                                 so strict verifiers take it too)
#   untrusted.pem, untrusted.key  a self-signed server certificate with
#                                 the same names, which nothing trusts
# testca.pem is what a client (or the daemon, for its upstream side) is
# given to trust origin.pem. Call it twice with two DIRs for two CAs.
make_test_ca() {
	local dir=$1
	command -v openssl > /dev/null || skip "openssl is needed"
	mkdir -p "$dir"
	cat > "$dir/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
authorityKeyIdentifier = keyid:always
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[selfsigned]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
EOF
	# (set -e does not hold in a subshell followed by ||: hence the &&.)
	(
		umask 077
		cd "$dir" || exit 1
		ec() {
			openssl req -config openssl.cnf -noenc -newkey ec \
				-pkeyopt ec_paramgen_curve:P-256 "$@" 2>> openssl.log
		}
		ec -x509 -days 30 -subj '/CN=sluice test CA' -extensions ca \
			-keyout testca.key -out testca.pem &&
		ec -subj '/CN=localhost' -keyout origin.key -out origin.csr &&
		openssl x509 -req -in origin.csr -CA testca.pem \
			-CAkey testca.key -days 30 -set_serial \
			"0x$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" \
			-extfile openssl.cnf -extensions server \
			-out origin.pem 2>> openssl.log &&
		ec -x509 -days 30 -subj '/CN=localhost' -extensions selfsigned \
			-keyout untrusted.key -out untrusted.pem &&
		chmod 644 testca.pem origin.pem untrusted.pem
	) || error "make_test_ca: openssl failed: $(cat "$dir/openssl.log")"
}

# start_receiver [NAME [SECRET_FILE...]]: starts receiver.py (webhook
# receiver); sets RECEIVER_PORT. Files: $TMP/NAME.port, NAME.pid,
# NAME.deliveries (one JSON line per POST), NAME.stderr. NAME defaults to
# "receiver"; with SECRET_FILEs it checks signatures (sig_ok). With
# RECEIVER_BIND_PORT set, it listens on that port instead of an
# ephemeral one.
start_receiver() {
	local name=${1:-receiver} f args=()
	shift || true
	for f in "$@"; do args+=(--secret-file "$f"); done
	[ -z "${RECEIVER_BIND_PORT:-}" ] ||
		args+=(--port "$RECEIVER_BIND_PORT")
	rm -f "$TMP/$name.port"
	timeout -k 5 300 "$PYTHON" "$LIB_DIR/receiver.py" \
		--port-file "$TMP/$name.port" --pid-file "$TMP/$name.pid" \
		--log "$TMP/$name.deliveries" "${args[@]}" \
		2> "$TMP/$name.stderr" &
	echo $! > "$TMP/$name-timeout.pid"
	wait_file "$TMP/$name.port" ||
		error "receiver '$name' did not start: $(cat "$TMP/$name.stderr")"
	RECEIVER_PORT=$(cat "$TMP/$name.port")
	say "receiver $name on 127.0.0.1:$RECEIVER_PORT"
}

# deliveries EXPR [NAME]: EXPR evaluated with ds = the deliveries receiver
# NAME recorded so far (strings print bare, others as JSON).
deliveries() {
	"$PYTHON" -c '
import json, sys
try:
    ds = [json.loads(l) for l in open(sys.argv[1])]
except FileNotFoundError:
    ds = []
v = eval(sys.argv[2], {"ds": ds})
print(v if isinstance(v, str) else json.dumps(v))
' "$TMP/${2:-receiver}.deliveries" "$1"
}

# wait_for EXPR SECS [NAME]: waits until deliveries EXPR is true.
wait_for() {
	local i
	for i in $(seq "$(($2 * 20))"); do
		[ "$(deliveries "bool($1)" "${3:-receiver}")" = true ] && return 0
		sleep 0.05
	done
	return 1
}

# secret_file PATH [TEXT]: writes a webhook secret, mode 0600.
secret_file() {
	(umask 077; printf '%s\n' "${2:-sluice-test-secret-0123456789}" > "$1")
}

# write_config [-]: writes $TMP/sluice.yaml, a minimal configuration with
# high limits (throttling and retries are tested elsewhere, not here),
# and T_WORKERS engine workers (default 2, so that every test crosses
# workers whatever the machine's cores; 0: the daemon's own default).
# With "-", YAML read from stdin (a heredoc) is added; a top-level key it
# gives replaces the default block of that key:
#     write_config - <<EOF
#     max_body: 1MiB
#     defaults:
#       rps: 5
#     EOF
write_config() {
	local extra='' keys='' k
	if [ "${1:-}" = - ]; then extra=$(cat); fi
	keys=" $(printf '%s\n' "$extra" |
		sed -n 's/^\([A-Za-z0-9_]*\):.*/\1/p' | tr '\n' ' ')"
	{
		echo "# written by $TEST_NAME"
		for k in max_in_flight defaults retry workers; do
			case "$keys" in *" $k "*) continue ;; esac
			case $k in
			max_in_flight) echo "max_in_flight: 4096" ;;
			defaults) printf 'defaults:\n  rps: 10000\n  concurrency: 1000\n' ;;
			retry) printf 'retry:\n  max_retries: 0\n' ;;
			workers) echo "workers: ${T_WORKERS:-2}" ;;
			esac
		done
		[ -z "$extra" ] || printf '%s\n' "$extra"
	} > "$TMP/sluice.yaml"
}

# start_sluiced [ARGS...]: starts the daemon on ephemeral ports with
# $TMP/sluice.yaml (write_config first), waits for its "listening" line
# and sets PROXY_PORT, ADMIN_PORT, PROXY (the proxy URL for curl -x) and
# SLUICED_PID (the daemon's own PID, for signals). The timeout(1) wrapper's
# PID is in $TMP/sluiced.pid. A previous log is kept as sluiced.N.log.
start_sluiced() {
	local line proxy admin n=1
	[ -x "$SLUICED" ] || error "SLUICED='$SLUICED' is not an executable"
	[ -f "$TMP/sluice.yaml" ] || write_config
	mkdir -p "$TMP/state"
	if [ -e "$TMP/sluiced.log" ]; then
		while [ -e "$TMP/sluiced.$n.log" ]; do n=$((n + 1)); done
		mv "$TMP/sluiced.log" "$TMP/sluiced.$n.log"
	fi
	timeout -k 5 120 "$SLUICED" -c "$TMP/sluice.yaml" -l 127.0.0.1:0 \
		-a 127.0.0.1:0 -s "$TMP/state" "$@" \
		> "$TMP/sluiced.stdout" 2> "$TMP/sluiced.log" &
	SLUICED_TIMEOUT_PID=$!
	echo "$SLUICED_TIMEOUT_PID" > "$TMP/sluiced.pid"
	line=
	for _ in $(seq 200); do
		line=$(grep -m 1 -E 'info: listening proxy=[^ ]+ admin=[^ ]+' \
			"$TMP/sluiced.log" 2>/dev/null || true)
		[ -z "$line" ] || break
		kill -0 "$SLUICED_TIMEOUT_PID" 2>/dev/null ||
			fail "sluiced exited before listening (args: $*)"
		sleep 0.05
	done
	[ -n "$line" ] || fail "no 'info: listening proxy=... admin=...' line in 10 s"
	proxy=$(printf '%s\n' "$line" | sed 's/.*listening proxy=\([^ ]*\).*/\1/')
	admin=$(printf '%s\n' "$line" | sed 's/.* admin=\([^ ]*\).*/\1/')
	PROXY_PORT=${proxy##*:}
	ADMIN_PORT=${admin##*:}
	case "$PROXY_PORT$ADMIN_PORT" in
	*[!0-9]*|'') fail "cannot parse ports from: $line" ;;
	esac
	if [ "$PROXY_PORT" -eq 0 ] || [ "$ADMIN_PORT" -eq 0 ]; then
		fail "port 0 in the listening line: $line"
	fi
	PROXY=http://127.0.0.1:$PROXY_PORT
	# The daemon itself is timeout's only child.
	SLUICED_PID=$(awk '{print $1}' \
		"/proc/$SLUICED_TIMEOUT_PID/task/$SLUICED_TIMEOUT_PID/children" \
		2>/dev/null || true)
	[ -z "$SLUICED_PID" ] || echo "$SLUICED_PID" > "$TMP/sluiced-child.pid"
	say "sluiced proxy=$proxy admin=$admin pid=${SLUICED_PID:-?}"
}

# stop_sluiced [SIGNAL]: signals the daemon (default TERM), waits up to
# 10 s and sets SLUICED_STATUS to its exit status (timeout(1) passes it on).
stop_sluiced() {
	local sig=${1:-TERM}
	SLUICED_STATUS=
	kill "-$sig" "${SLUICED_PID:-$SLUICED_TIMEOUT_PID}" 2>/dev/null || true
	for _ in $(seq 200); do
		kill -0 "$SLUICED_TIMEOUT_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$SLUICED_TIMEOUT_PID" 2>/dev/null &&
		fail "sluiced still running 10 s after SIG$sig"
	SLUICED_STATUS=0
	# shellcheck disable=SC2034 # read by the tests
	wait "$SLUICED_TIMEOUT_PID" || SLUICED_STATUS=$?
	rm -f "$TMP/sluiced.pid" "$TMP/sluiced-child.pid"
	SLUICED_PID=
}

# sluiced_alive: true while the daemon runs.
sluiced_alive() {
	kill -0 "$SLUICED_TIMEOUT_PID" 2>/dev/null
}

# --- HTTP helpers -------------------------------------------------------

# pcurl ARGS...: curl through the proxy, bounded in time.
pcurl() {
	timeout 60 curl -sS --max-time 50 -x "$PROXY" "$@"
}

# dcurl ARGS...: curl without a proxy (origin, admin, origin-form).
dcurl() {
	timeout 60 curl -sS --max-time 50 "$@"
}

# http_status ARGS...: through the proxy; prints the status code (000 when
# curl fails), leaves the body in $TMP/body and the header block(s) in
# $TMP/headers. Never fails, so it is safe in $(...) under set -e.
http_status() {
	rm -f "$TMP/body" "$TMP/headers"
	timeout 60 curl -s --max-time 50 -x "$PROXY" -o "$TMP/body" \
		-D "$TMP/headers" -w '%{http_code}' "$@" || true
	touch "$TMP/body" "$TMP/headers"
}

# direct_status ARGS...: the same without a proxy.
direct_status() {
	rm -f "$TMP/body" "$TMP/headers"
	timeout 60 curl -s --max-time 50 -o "$TMP/body" -D "$TMP/headers" \
		-w '%{http_code}' "$@" || true
	touch "$TMP/body" "$TMP/headers"
}

# header NAME [FILE]: the values of response header NAME in FILE
# ($TMP/headers), one a line, CR stripped; empty when absent.
header() {
	tr -d '\r' < "${2:-$TMP/headers}" |
		awk -v n="$1" 'BEGIN { n = tolower(n) }
			{ i = index($0, ":"); if (i < 2) next
			  if (tolower(substr($0, 1, i - 1)) == n) {
				v = substr($0, i + 1); sub(/^[ \t]+/, "", v)
				sub(/[ \t]+$/, "", v); print v } }'
}

# json FILE EXPR: prints the Python expression EXPR evaluated with d = the
# JSON document in FILE ("-" = stdin). Strings print bare, others as JSON.
json() {
	"$PYTHON" -c '
import json, sys
f = sys.stdin if sys.argv[1] == "-" else open(sys.argv[1], "rb")
d = json.load(f)
v = eval(sys.argv[2], {"d": d})
print(v if isinstance(v, str) else json.dumps(v))
' "$1" "$2"
}

# assert_error STATUS CODE ACTUAL_STATUS WHAT: the proxy answered STATUS
# with a JSON body {"error": CODE, "message": ...} ($TMP/body). CODE may
# be an ERE such as 'timeout|upstream_timeout'.
assert_error() {
	local code
	assert_eq "$1" "$3" "$4: status"
	code=$(json "$TMP/body" 'd["error"]' 2>/dev/null) ||
		fail "$4: body is not JSON with an \"error\" member: $(head -c 500 "$TMP/body")"
	json "$TMP/body" 'd["message"]' > /dev/null 2>&1 ||
		fail "$4: JSON body has no \"message\": $(head -c 500 "$TMP/body")"
	printf '%s' "$code" | grep -Eqx -e "$2" ||
		fail "$4: error code: expected '$2', got '$code'"
	header Content-Type | grep -qi 'application/json' ||
		fail "$4: Content-Type is '$(header Content-Type)', not application/json"
}

# assert_serving WHAT: a normal request through the proxy still works.
assert_serving() {
	local s
	s=$(http_status "http://127.0.0.1:$ORIGIN_PORT/echo/still-serving")
	assert_eq 200 "$s" "after $1, a normal request"
	sluiced_alive || fail "sluiced died after $1"
}

# origin_count ERE [NAME]: how many arrivals at origin NAME had a target
# matching ERE.
origin_count() {
	"$PYTHON" -c '
import json, re, sys
n = 0
try:
    for line in open(sys.argv[1]):
        if re.search(sys.argv[2], json.loads(line)["target"]):
            n += 1
except FileNotFoundError:
    pass
print(n)
' "$TMP/${2:-origin}.requests" "$1"
}

# closed_port: a loopback TCP port nothing listens on (bound, then closed).
closed_port() {
	"$PYTHON" -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# raw_http PORT [READ_TIMEOUT_S]: sends stdin as-is to 127.0.0.1:PORT,
# then copies everything received to stdout until EOF or READ_TIMEOUT_S
# (default 10) seconds of silence. The write side stays open (send
# "Connection: close" to get EOF after the answer) unless RAW_SHUT_WR is
# set. On stderr: "raw: eof after S.SS s" (or timeout, reset), S counted
# from the end of sending.
raw_http() {
	timeout 60 "$PYTHON" -c '
import os, socket, sys, time
port, tmo = int(sys.argv[1]), float(sys.argv[2])
data = sys.stdin.buffer.read()
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(data)
if os.environ.get("RAW_SHUT_WR"):
    s.shutdown(socket.SHUT_WR)
s.settimeout(tmo)
t0 = time.monotonic()
how = "eof"
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        sys.stdout.buffer.write(b)
        sys.stdout.buffer.flush()
except socket.timeout:
    how = "timeout"
except ConnectionResetError:
    how = "reset"
sys.stderr.write("raw: %s after %.2f s\n" % (how, time.monotonic() - t0))
' "$1" "${2:-10}"
}

# raw_status FILE: the status code on the first line of a raw response.
raw_status() {
	head -n 1 "$1" | sed -n 's/^HTTP\/1\.[01] \([0-9][0-9][0-9]\).*/\1/p'
}

# raw_body FILE: what follows the first blank line of a raw response.
raw_body() {
	"$PYTHON" -c '
import sys
d = open(sys.argv[1], "rb").read()
i = d.find(b"\r\n\r\n")
sys.stdout.buffer.write(d[i + 4:] if i >= 0 else b"")' "$1"
}

# big_file PATH BYTES [SEED]: a deterministic binary file.
big_file() {
	"$PYTHON" -c '
import random, sys
open(sys.argv[1], "wb").write(
    random.Random("file-" + sys.argv[3]).randbytes(int(sys.argv[2])))
' "$1" "$2" "${3:-0}"
}

sha() {
	sha256sum "$1" | awk '{print $1}'
}

command -v curl > /dev/null || skip "curl is needed"

# ge A B: true when the decimal A >= B.
ge() {
	awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'
}

# arrivals ERE [NAME]: arrival times (s) at origin NAME (start_origin's
# name; default "origin") of the targets matching ERE, one a line, in
# order.
arrivals() {
	"$PYTHON" -c '
import json, re, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    if re.search(sys.argv[2], d["target"]):
        print("%.6f" % d["time"])
' "$TMP/${2:-origin}.requests" "$1"
}

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

# --- HTTPS clients ------------------------------------------------------
#
# $HTTPS_CLIENT_JS (Node, undici's ProxyAgent; node_undici below) and
# $HTTPS_CLIENT_PY (Python requests, or --urllib) take the same arguments
# and print the same thing (their headers have the details):
#     [-X METHOD] [-d DATA|@FILE] [-H 'Name: value']... [--ca FILE]
#     [--timeout MS] [--requests JSON] PROXY|env|- URL...
# one JSON line per response, {"url", "status", "headers", "body",
# "body_length", "body_sha256"}; at the first failure a line {"url",
# "error", "code"} and exit status 1. The URLs share one client, so those
# of one origin go down one tunnel (not with --urllib). --ca defaults to
# $SLUICE_CA; Node also honours NODE_EXTRA_CA_CERTS inside the tunnel:
#     make_test_ca "$TMP/pki"
#     np=$(node_undici) || skip "node with undici is needed"
#     SLUICE_CA=$TMP/pki/testca.pem NODE_PATH=$np timeout 60 \
#         node "$HTTPS_CLIENT_JS" "$PROXY" "$U/echo/1" "$U/echo/2" > "$TMP/out"
#     SLUICE_CA=$TMP/pki/testca.pem timeout 60 \
#         "$PYTHON" "$HTTPS_CLIENT_PY" "$PROXY" "$U/echo/1" > "$TMP/out"

# Pinned: undici 6 runs on Node >= 18.17 (Debian bookworm's nodejs is
# 18.20) and has ProxyAgent and EnvHttpProxyAgent; undici 7 needs Node 20.
NODE_UNDICI_VERSION=6.29.1

# node_undici: makes sure npm's undici@$NODE_UNDICI_VERSION is installed in
# a cache outside the source tree ($SLUICE_NODE_DIR, default $T_BUILD/node;
# kept between tests and runs) and prints the directory to put in
# NODE_PATH. Installs with npm only when missing, one test at a time (a
# flock on DIR/.lock). Returns non-zero, with the reason on stderr, when
# node or npm is missing, node is too old or the install fails (npm's log
# is $TMP/npm.log). Usage:
#     np=$(node_undici) || skip "node with undici is needed"
#     NODE_PATH=$np timeout 60 node "$HTTPS_CLIENT_JS" "$PROXY" URL...
node_undici() {
	local dir=${SLUICE_NODE_DIR:-} v
	if [ -z "$dir" ]; then
		if [ "$(cd "$T_BUILD" 2>/dev/null && pwd -P)" = \
			"$(cd "$T_SRC" && pwd -P)" ]; then
			dir=${XDG_CACHE_HOME:-$HOME/.cache}/sluice-tests/node
		else
			dir=$T_BUILD/node
		fi
	fi
	command -v node > /dev/null || { echo "node_undici: no node" >&2; return 1; }
	v=$(node -p 'process.versions.node' 2>/dev/null) || v=0
	printf '%s\n' "$v" | awk -F. '{ exit !($1 > 18 || ($1 == 18 && $2 >= 17)) }' || {
		echo "node_undici: node $v is older than 18.17" >&2
		return 1
	}
	mkdir -p "$dir" || return 1
	(
		if command -v flock > /dev/null; then
			flock -w 600 9 || { echo "node_undici: lock timeout" >&2; exit 1; }
		fi
		stamp=$dir/.undici-$NODE_UNDICI_VERSION.ok
		[ -f "$stamp" ] && [ -f "$dir/node_modules/undici/package.json" ] &&
			exit 0
		command -v npm > /dev/null || { echo "node_undici: no npm" >&2; exit 1; }
		rm -f "$dir"/.undici-*.ok
		echo "# node_undici: npm install undici@$NODE_UNDICI_VERSION in $dir" >&2
		env ${NPM_PROXY_ENV[@]+"${NPM_PROXY_ENV[@]}"} timeout 600 npm install \
			--prefix "$dir" --no-audit --no-fund --no-save --prefer-offline \
			--loglevel=error "undici@$NODE_UNDICI_VERSION" \
			> "$TMP/npm.log" 2>&1 || {
			echo "node_undici: npm install failed:" >&2
			tail -n 20 "$TMP/npm.log" >&2
			exit 1
		}
		NODE_PATH=$dir/node_modules node -e '
const u = require("undici");
if (typeof u.ProxyAgent !== "function") throw new Error("no ProxyAgent");
if (require("undici/package.json").version !== process.argv[1])
	throw new Error("version " + require("undici/package.json").version);
' "$NODE_UNDICI_VERSION" >> "$TMP/npm.log" 2>&1 || {
			echo "node_undici: undici does not load:" >&2
			tail -n 20 "$TMP/npm.log" >&2
			exit 1
		}
		touch "$stamp"
	) 9> "$dir/.lock" || return 1
	printf '%s\n' "$dir/node_modules"
}
