#!/usr/bin/env bash
# 75-sluicectl: the control tool (SPEC section 11), against a real daemon
# and against a stand-in admin listener that answers what the test says.
# status shows the health, the totals and a queue table (mode, rate and
# its source) whose waiting and in-flight counts match /queues; --json is
# /queues as is; the admin address comes from -a or SLUICE_ADMIN, and
# proxy variables are ignored. job refuses a malformed id without asking
# the daemon and says "no job ID" when the daemon answers 404. reload
# POSTs /reload and says in one line what the answer means (the stand-in
# plays the answers the daemon does not give at will: 503
# reload_in_progress, 401, an older daemon's 404, ...). Exit status: 0
# done, 1 the daemon said no, 2 usage error (with a usage message), 3
# the admin listener cannot be reached (and the message says what to
# try). The credential of a queue and the admin token are never printed.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

SECRET=sekrit-CTL-5d1e0a77
GOOD_ID=job_0193a5b2c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5
[ -x "$SLUICECTL" ] || error "SLUICECTL='$SLUICECTL' is not an executable"

# ctl NAME ARGS...: runs sluicectl; stdout in $TMP/NAME.out, stderr in
# $TMP/NAME.err, the exit status in RC.
ctl() {
	local name=$1
	shift
	RC=0
	timeout 30 "$SLUICECTL" "$@" > "$TMP/$name.out" 2> "$TMP/$name.err" ||
		RC=$?
}

# assert_rc STATUS NAME WHAT: the last ctl run exited STATUS.
assert_rc() {
	[ "$RC" = "$1" ] || fail "$3: exit status: expected $1, got $RC;" \
		"stdout: $(head -c 500 "$TMP/$2.out");" \
		"stderr: $(head -c 500 "$TMP/$2.err")"
}

# usage_error NAME ERE ARGS...: exit 2, ERE and a usage message on stderr.
usage_error() {
	local name=$1 ere=$2
	shift 2
	ctl "$name" "$@"
	assert_rc 2 "$name" "sluicectl $*"
	assert_grep "$ere" "$TMP/$name.err" "sluicectl $*: message"
	assert_grep '^usage: sluicectl' "$TMP/$name.err" "sluicectl $*: usage"
}

say "usage, help, version (no daemon needed)"
ctl help -h
assert_rc 0 help "-h"
assert_grep '^usage: sluicectl' "$TMP/help.out" "-h"
assert_grep '^  status ' "$TMP/help.out" "-h lists status"
assert_grep '^  job ID ' "$TMP/help.out" "-h lists job"
assert_grep '^  reload ' "$TMP/help.out" "-h lists reload"
assert_grep '2 usage error; 3 the admin listener cannot be reached' \
	"$TMP/help.out" "-h: exit status"
ctl version --version
assert_rc 0 version "--version"
assert_eq "$("$SLUICED" -V | sed 's/^sluiced /sluicectl /')" \
	"$(cat "$TMP/version.out")" "version, the same as sluiced's"
usage_error none 'missing command'
usage_error unknown "^sluicectl: unknown command 'frobnicate'$" frobnicate
usage_error reload "^sluicectl: reload: unexpected argument 'now'$" \
	reload now
usage_error ca "^sluicectl: ca: unknown command 'reload'$" ca reload
usage_error flag 'unrecognized option|invalid option' --frobnicate status
usage_error extra "unexpected argument 'now'" status now
usage_error noid 'missing job id' job
usage_error twoids "unexpected argument" job "$GOOD_ID" "$GOOD_ID"
ctl badaddr -a nope status
assert_rc 2 badaddr "-a nope"
assert_grep "^sluicectl: -a must be ADDR:PORT, got 'nope'" \
	"$TMP/badaddr.err" "-a nope"
RC=0
SLUICE_ADMIN='u@h:1' timeout 30 "$SLUICECTL" status \
	> "$TMP/badenv.out" 2> "$TMP/badenv.err" || RC=$?
assert_rc 2 badenv "SLUICE_ADMIN=u@h:1"
assert_grep '^sluicectl: SLUICE_ADMIN must be ADDR:PORT' "$TMP/badenv.err" \
	"SLUICE_ADMIN=u@h:1"

ctl notoken -T "$TMP/no-such-token" status
assert_rc 2 notoken "-T with a missing file"
assert_grep "^sluicectl: cannot read token file '$TMP/no-such-token'" \
	"$TMP/notoken.err" "-T with a missing file: message"

say "a malformed job id never reaches the daemon"
# Pointed at a closed port: asking it would exit 3, not 2.
nobody=127.0.0.1:$(closed_port)
for id in 'job_../queues' "${GOOD_ID}0" "${GOOD_ID%?}" \
	"$(printf '%s' "$GOOD_ID" | tr a-f A-F)" \
	'job_%2e%2e/../../healthz?0000000000000000000000000000000' ''; do
	ctl badid -a "$nobody" job "$id"
	assert_rc 2 badid "job '$id'"
	assert_grep '^sluicectl: malformed job id' "$TMP/badid.err" \
		"job '$id': message"
done

start_origin
O=127.0.0.1:$ORIGIN_PORT
write_config - <<EOF
drain_timeout: 1s
defaults:
  rps: 0.1
  concurrency: 1
EOF
start_sluiced
ADMIN=127.0.0.1:$ADMIN_PORT

say "a throttled queue: one request in flight, three waiting"
# rps 0.1, concurrency 1 and 20 s answers: the state holds for 20 s.
for i in 1 2 3 4; do
	timeout 60 curl -s -o /dev/null --max-time 50 -x "$PROXY" \
		-H "Authorization: Bearer $SECRET" \
		"http://$O/slow/20000?n=$i" &
	echo $! > "$TMP/client$i.pid"
done
state=
for _ in $(seq 100); do
	dcurl -o "$TMP/queues" "http://$ADMIN/queues"
	state=$(json "$TMP/queues" '" ".join("%s %d %d" % (q["key"],
		q["waiting"], q["in_flight"]) for q in d["list"]
		if q["destination"] == "http://'"$O"'")')
	case "$state" in *' 3 1') break ;; esac
	sleep 0.1
done
assert_match '^[0-9a-f]{12} 3 1$' "$state" "/queues: key, waiting, in flight"
key=${state%% *}

say "status: health, totals, the queue's row"
ctl status -a "$ADMIN" status
assert_rc 0 status "status"
assert_grep "^admin $ADMIN: ok$" "$TMP/status.out" "status: health"
assert_grep '^queues 1, waiting 3, in flight 1$' "$TMP/status.out" \
	"status: totals"
assert_grep '^requests [0-9]+, attempts [0-9]+, retries 0' \
	"$TMP/status.out" "status: counters"
assert_grep '^DESTINATION +KEY +MODE +RATE +CONCURRENCY +WAITING +IN FLIGHT +PAUSED +IDLE$' \
	"$TMP/status.out" "status: table header"
row=$(grep -F "http://$O " "$TMP/status.out" || true)
assert_match "^http://$O +$key +paced +0\\.1 configured +1 +3 +1 +- +[0-9.]+(ms|s)$" \
	"$row" "status: the queue's row"
# The columns line up: the key starts under KEY, the in-flight count
# ends under the end of IN FLIGHT (8 more characters).
hdr=$(grep '^DESTINATION' "$TMP/status.out")
h=${hdr%%KEY*}
r=${row%%"$key"*}
assert_eq "${#h}" "${#r}" "status: column of KEY"
h=${hdr%%IN FLIGHT*}
r=$(printf '%s\n' "$row" | sed -E 's/^(.* 3 +)1 .*/\1/')
assert_eq "${#h}" "$((${#r} - 8))" "status: IN FLIGHT count right-aligned"

say "SLUICE_ADMIN, and proxy variables are ignored"
RC=0
SLUICE_ADMIN=$ADMIN http_proxy=http://$nobody HTTP_PROXY=http://$nobody \
	ALL_PROXY=http://$nobody timeout 30 "$SLUICECTL" status \
	> "$TMP/env.out" 2> "$TMP/env.err" || RC=$?
assert_rc 0 env "SLUICE_ADMIN with http_proxy set"
assert_grep '^queues 1, waiting 3, in flight 1$' "$TMP/env.out" \
	"SLUICE_ADMIN: totals"

say "--json: /queues as is"
ctl json -a "$ADMIN" --json status
assert_rc 0 json "--json status"
"$PYTHON" -m json.tool "$TMP/json.out" > /dev/null ||
	fail "--json status is not JSON: $(head -c 500 "$TMP/json.out")"
assert_eq "3 1 $key" "$(json "$TMP/json.out" \
	'"%d %d %s" % (d["waiting"], d["in_flight"], d["list"][0]["key"])')" \
	"--json: waiting, in flight, key"
ctl json2 status -j --admin-listen "$ADMIN"
assert_rc 0 json2 "status -j --admin-listen (flags after the command)"
"$PYTHON" -m json.tool "$TMP/json2.out" > /dev/null ||
	fail "status -j is not JSON: $(head -c 500 "$TMP/json2.out")"

say "job: a well-formed id the daemon does not know"
ctl job -a "$ADMIN" job "$GOOD_ID"
assert_rc 1 job "job $GOOD_ID (daemon: 404)"
assert_grep "^sluicectl: no job $GOOD_ID at $ADMIN \\(no such job" \
	"$TMP/job.err" "job: message"
ctl jobj -a "$ADMIN" --json job "$GOOD_ID"
assert_rc 1 jobj "--json job $GOOD_ID (daemon: 404)"
assert_grep "^sluicectl: no job $GOOD_ID" "$TMP/jobj.err" "--json job: message"
[ ! -s "$TMP/jobj.out" ] ||
	fail "--json job, no such job: stdout: $(head -c 200 "$TMP/jobj.out")"
ctl badid2 -a "$ADMIN" job 'job_../queues'
assert_rc 2 badid2 "job with a malformed id, daemon up"

say "reload: the real daemon"
# Its contract (SPEC section 11; 81-reload tests what a reload changes):
# 200 {"reloaded": true, "restart_needed": [...]}, or 400 {"error":
# "invalid_configuration", "message": "FILE:LINE:COL: ..."} with the
# running configuration kept.
ctl e2e -a "$ADMIN" reload
assert_rc 0 e2e "reload, the same configuration"
assert_grep "^sluiced at $ADMIN: configuration reloaded\$" \
	"$TMP/e2e.out" "reload: message"
[ ! -s "$TMP/e2e.err" ] || fail "reload, the same configuration: stderr:" \
	"$(head -c 500 "$TMP/e2e.err")"
cp "$TMP/sluice.yaml" "$TMP/good.yaml"
line=$(($(wc -l < "$TMP/sluice.yaml") + 1))
echo 'no_such_key: 1' >> "$TMP/sluice.yaml"
ctl e2ebad -a "$ADMIN" reload
assert_rc 1 e2ebad "reload, an invalid configuration"
assert_grep "^sluicectl: configuration not reloaded, sluiced goes on with the one it has: $TMP/sluice.yaml:$line:1: .*no_such_key" \
	"$TMP/e2ebad.err" "reload, an invalid configuration: message"
[ ! -s "$TMP/e2ebad.out" ] || fail "reload, invalid: stdout:" \
	"$(head -c 200 "$TMP/e2ebad.out")"
cp "$TMP/good.yaml" "$TMP/sluice.yaml"
ctl e2eafter -a "$ADMIN" status
assert_rc 0 e2eafter "status after a refused reload"
assert_grep '^queues 1, waiting 3, in flight 1$' "$TMP/e2eafter.out" \
	"status after a refused reload: nothing dropped"
# A key that only a restart applies: a warning, exit status 0.
sed -i 's/^max_in_flight: .*/max_in_flight: 4095/' "$TMP/sluice.yaml"
ctl e2ejson -a "$ADMIN" --json reload
assert_rc 0 e2ejson "--json reload"
assert_eq "True ['max_in_flight']" "$(json "$TMP/e2ejson.out" \
	'"%s %s" % (d["reloaded"], d["restart_needed"])' 2>&1)" \
	"--json reload: the daemon's answer"
assert_eq "sluicectl: warning: changes to max_in_flight take effect only when sluiced restarts" \
	"$(cat "$TMP/e2ejson.err")" "reload, max_in_flight: the warning"
cp "$TMP/good.yaml" "$TMP/sluice.yaml"

say "the credential is never printed"
hits=$(cd "$TMP" && grep -l -F -e "${SECRET#sekrit-}" ./*.out ./*.err || true)
[ -z "$hits" ] || fail "credential found in: $hits"

say "daemon down: exit 3, and what to try"
stop_sluiced
DOWN="^sluicectl: cannot reach sluiced's admin listener at $ADMIN \(connection refused\): is sluiced running\? \(-a ADDR:PORT to use another\)\$"
ctl down -a "$ADMIN" status
assert_rc 3 down "status, daemon down"
assert_grep "$DOWN" "$TMP/down.err" "status, daemon down: message"
ctl downjson -a "$ADMIN" --json status
assert_rc 3 downjson "--json status, daemon down"
[ ! -s "$TMP/downjson.out" ] ||
	fail "--json status, daemon down: stdout: $(head -c 200 "$TMP/downjson.out")"
ctl downjob -a "$ADMIN" job "$GOOD_ID"
assert_rc 3 downjob "job, daemon down"
assert_grep "$DOWN" "$TMP/downjob.err" "job, daemon down: message"
ctl downreload -a "$ADMIN" reload
assert_rc 3 downreload "reload, daemon down"
assert_grep "$DOWN" "$TMP/downreload.err" "reload, daemon down: message"
[ ! -s "$TMP/downreload.out" ] ||
	fail "reload, daemon down: stdout: $(head -c 200 "$TMP/downreload.out")"

say "a stand-in admin listener: reload's answers, 401, odd servers"
# It answers every request with $TMP/answer: "STATUS" on the first line,
# the body after it; "CLOSE" closes without answering (as sluiced does
# to a client outside admin_allow), "GARBAGE" answers something that is
# not HTTP. Each request is logged as "METHOD PATH AUTHORIZATION".
"$PYTHON" - "$TMP/standin.port" "$TMP/answer" "$TMP/standin.requests" \
	<<'EOF' 2> "$TMP/standin.stderr" &
import http.server, os, sys
port_file, answer_file, log_file = sys.argv[1:4]
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        with open(log_file, "a") as f:
            f.write("%s %s %s\n" % (self.command, self.path,
                    self.headers.get("Authorization", "-")))
        status, _, body = open(answer_file).read().partition("\n")
        if status == "CLOSE":
            self.close_connection = True
            return
        if status == "GARBAGE":
            self.wfile.write(b"SSH-2.0-OpenSSH_9.2\r\n")
            self.close_connection = True
            return
        b = body.encode()
        self.send_response(int(status))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    do_GET = do_POST = answer
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(port_file + ".tmp", "w").write(str(s.server_address[1]))
os.rename(port_file + ".tmp", port_file)
s.serve_forever()
EOF
echo $! > "$TMP/standin.pid"
wait_file "$TMP/standin.port" ||
	error "stand-in admin listener did not start: $(cat "$TMP/standin.stderr")"
SI=127.0.0.1:$(cat "$TMP/standin.port")

# answer STATUS [BODY]: what the stand-in answers from now on.
answer() {
	printf '%s\n%s' "$1" "${2:-}" > "$TMP/answer"
}

answer 200 '{"reloaded":true,"restart_needed":[]}'
ctl rl -a "$SI" reload
assert_rc 0 rl "reload, 200"
assert_eq "sluiced at $SI: configuration reloaded" "$(cat "$TMP/rl.out")" \
	"reload, 200: stdout"
[ ! -s "$TMP/rl.err" ] || fail "reload, 200: stderr: $(cat "$TMP/rl.err")"
assert_eq "POST /reload -" "$(tail -n 1 "$TMP/standin.requests")" \
	"reload: the request"

answer 200 '{"reloaded":true,"restart_needed":["listen","admin_listen"]}'
ctl rlr -a "$SI" reload
assert_rc 0 rlr "reload, 200 with restart_needed"
assert_grep '^sluiced at .*: configuration reloaded$' "$TMP/rlr.out" \
	"reload, restart_needed: stdout"
assert_eq "sluicectl: warning: changes to listen, admin_listen take effect only when sluiced restarts" \
	"$(cat "$TMP/rlr.err")" "reload, restart_needed: the warning"
ctl rlj -a "$SI" --json reload
assert_rc 0 rlj "--json reload"
assert_eq '["listen", "admin_listen"]' \
	"$(json "$TMP/rlj.out" 'd["restart_needed"]')" "--json reload: as is"

answer 400 '{"error":"invalid_configuration","message":"/etc/sluice/sluice.yaml:12:7: unknown key '"'rpss'"' in '"'defaults'"'"}'
ctl rlbad -a "$SI" reload
assert_rc 1 rlbad "reload, 400"
assert_eq "sluicectl: configuration not reloaded, sluiced goes on with the one it has: /etc/sluice/sluice.yaml:12:7: unknown key 'rpss' in 'defaults'" \
	"$(cat "$TMP/rlbad.err")" "reload, 400: message"
[ ! -s "$TMP/rlbad.out" ] || fail "reload, 400: stdout: $(cat "$TMP/rlbad.out")"

answer 503 '{"error":"reload_in_progress"}'
ctl rlbusy -a "$SI" reload
assert_rc 1 rlbusy "reload, 503"
assert_grep "^sluicectl: sluiced at $SI is already reloading; try again" \
	"$TMP/rlbusy.err" "reload, 503: message"

answer 404 '{"error":"not_found","message":"no such admin endpoint"}'
ctl rlold -a "$SI" reload
assert_rc 1 rlold "reload, an older daemon"
assert_grep "^sluicectl: sluiced at $SI does not serve POST /reload" \
	"$TMP/rlold.err" "reload, an older daemon: message"

answer 500 '{"error":"internal_error","message":"something broke"}'
ctl rl500 -a "$SI" reload
assert_rc 1 rl500 "reload, 500"
assert_grep "^sluicectl: sluiced's admin listener at $SI answered 500 to POST /reload: something broke$" \
	"$TMP/rl500.err" "reload, 500: message"

answer 200 'ok'
ctl rlodd -a "$SI" reload
assert_rc 1 rlodd "reload, a 200 that is not the contract"

say "401: the message names the admin token"
printf 'adm-%s\n' 5ecret-T0KEN > "$TMP/admin-token"
answer 401 '{"error":"unauthorized","message":"this endpoint wants the admin bearer token"}'
for cmd in status "job $GOOD_ID" reload; do
	# shellcheck disable=SC2086 # split on purpose
	ctl unauth -a "$SI" $cmd
	assert_rc 1 unauth "$cmd, 401"
	assert_grep "answered 401 to .*: it wants the admin token of its admin_token_file; give that file with -T FILE\$" \
		"$TMP/unauth.err" "$cmd, 401: message"
	# shellcheck disable=SC2086
	ctl unauthT -a "$SI" -T "$TMP/admin-token" $cmd
	assert_rc 1 unauthT "$cmd -T, 401"
	assert_grep "answered 401 to .*: it refused the token in '$TMP/admin-token'" \
		"$TMP/unauthT.err" "$cmd -T, 401: message"
done
assert_eq "POST /reload Bearer adm-5ecret-T0KEN" \
	"$(tail -n 1 "$TMP/standin.requests")" "reload -T: the bearer token sent"

answer 404 'Not Found'
ctl other -a "$SI" status
assert_rc 1 other "status, another HTTP server"
assert_grep "^sluicectl: $SI answered 404 to /healthz: is it sluiced's admin listener\\?" \
	"$TMP/other.err" "status, another HTTP server: message"

say "a server that closes at once, or does not speak HTTP: exit 3"
answer CLOSE
ctl closed -a "$SI" status
assert_rc 3 closed "status, connection closed"
assert_grep "^sluicectl: cannot reach sluiced's admin listener at $SI \(closed without an answer\): is this host in sluiced's admin_allow\?\$" \
	"$TMP/closed.err" "status, connection closed: message"
answer GARBAGE
ctl garbage -a "$SI" reload
assert_rc 3 garbage "reload, not HTTP"
assert_grep "^sluicectl: cannot reach sluiced's admin listener at $SI \(the answer is not HTTP\): is it sluiced's admin listener\?" \
	"$TMP/garbage.err" "reload, not HTTP: message"

hits=$(cd "$TMP" && grep -l -F -e "5ecret-T0KEN" ./*.out ./*.err || true)
[ -z "$hits" ] || fail "admin token found in: $hits"

say "ok"
