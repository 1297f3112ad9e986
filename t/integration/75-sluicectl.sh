#!/usr/bin/env bash
# 75-sluicectl: the control tool against a real daemon (SPEC section 11).
# status shows the health, the totals and a queue table whose waiting and
# in-flight counts match /queues; --json is /queues as is; the admin
# address comes from -a or SLUICE_ADMIN, and proxy variables are ignored.
# job refuses a malformed id without asking the daemon and says "no such
# job" when the daemon answers 404. Usage errors exit 1 with a usage
# message, unknown commands (reload: not implemented) too; a daemon
# that is down means exit 2 and "cannot reach admin listener". The
# credential of a queue is never printed.
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

# usage_error NAME ERE ARGS...: exit 1, ERE and a usage message on stderr.
usage_error() {
	local name=$1 ere=$2
	shift 2
	ctl "$name" "$@"
	assert_rc 1 "$name" "sluicectl $*"
	assert_grep "$ere" "$TMP/$name.err" "sluicectl $*: message"
	assert_grep '^usage: sluicectl' "$TMP/$name.err" "sluicectl $*: usage"
}

say "usage, help, version (no daemon needed)"
ctl help -h
assert_rc 0 help "-h"
assert_grep '^usage: sluicectl' "$TMP/help.out" "-h"
assert_grep '^  status ' "$TMP/help.out" "-h lists status"
assert_grep '^  job ID ' "$TMP/help.out" "-h lists job"
ctl version --version
assert_rc 0 version "--version"
assert_eq "$("$SLUICED" -V | sed 's/^sluiced /sluicectl /')" \
	"$(cat "$TMP/version.out")" "version, the same as sluiced's"
usage_error none 'missing command'
usage_error unknown "^sluicectl: unknown command 'frobnicate'$" frobnicate
usage_error reload "^sluicectl: unknown command 'reload'$" reload
usage_error ca "^sluicectl: ca: unknown command 'reload'$" ca reload
usage_error flag 'unrecognized option|invalid option' --frobnicate status
usage_error extra "unexpected argument 'now'" status now
usage_error noid 'missing job id' job
usage_error twoids "unexpected argument" job "$GOOD_ID" "$GOOD_ID"
ctl badaddr -a nope status
assert_rc 1 badaddr "-a nope"
assert_grep "^sluicectl: -a must be ADDR:PORT, got 'nope'" \
	"$TMP/badaddr.err" "-a nope"
RC=0
SLUICE_ADMIN='u@h:1' timeout 30 "$SLUICECTL" status \
	> "$TMP/badenv.out" 2> "$TMP/badenv.err" || RC=$?
assert_rc 1 badenv "SLUICE_ADMIN=u@h:1"
assert_grep '^sluicectl: SLUICE_ADMIN must be ADDR:PORT' "$TMP/badenv.err" \
	"SLUICE_ADMIN=u@h:1"

say "a malformed job id never reaches the daemon"
# Pointed at a closed port: asking it would exit 2, not 1.
nobody=127.0.0.1:$(closed_port)
for id in 'job_../queues' "${GOOD_ID}0" "${GOOD_ID%?}" \
	"$(printf '%s' "$GOOD_ID" | tr a-f A-F)" \
	'job_%2e%2e/../../healthz?0000000000000000000000000000000' ''; do
	ctl badid -a "$nobody" job "$id"
	assert_rc 1 badid "job '$id'"
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
assert_grep '^DESTINATION +KEY +RPS +CONCURRENCY +WAITING +IN FLIGHT +PAUSED +IDLE$' \
	"$TMP/status.out" "status: table header"
row=$(grep -F "http://$O " "$TMP/status.out" || true)
assert_match "^http://$O +$key +0\\.1 +1 +3 +1 +- +[0-9.]+(ms|s)$" "$row" \
	"status: the queue's row"
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
# Today every unknown admin path is a 404; later /jobs/<id> answers 404
# for an unknown job. Both mean "no such job".
s=$(direct_status "http://$ADMIN/jobs/$GOOD_ID")
ctl job -a "$ADMIN" job "$GOOD_ID"
if [ "$s" = 404 ]; then
	assert_rc 1 job "job $GOOD_ID (daemon: 404)"
	assert_grep "^sluicectl: no such job: $GOOD_ID" "$TMP/job.err" \
		"job: message"
	ctl jobj -a "$ADMIN" --json job "$GOOD_ID"
	assert_rc 1 jobj "--json job $GOOD_ID (daemon: 404)"
	assert_grep "^sluicectl: no such job: $GOOD_ID" "$TMP/jobj.err" \
		"--json job: message"
else
	say "GET /jobs/$GOOD_ID answered $s, not 404: 'no such job' not checked"
fi
ctl badid2 -a "$ADMIN" job 'job_../queues'
assert_rc 1 badid2 "job with a malformed id, daemon up"

say "the credential is never printed"
hits=$(cd "$TMP" && grep -l -F -e "${SECRET#sekrit-}" ./*.out ./*.err || true)
[ -z "$hits" ] || fail "credential found in: $hits"

say "daemon down: exit 2"
stop_sluiced
ctl down -a "$ADMIN" status
assert_rc 2 down "status, daemon down"
assert_grep "^sluicectl: cannot reach admin listener at $ADMIN: .+" \
	"$TMP/down.err" "status, daemon down: message"
ctl downjson -a "$ADMIN" --json status
assert_rc 2 downjson "--json status, daemon down"
[ ! -s "$TMP/downjson.out" ] ||
	fail "--json status, daemon down: stdout: $(head -c 200 "$TMP/downjson.out")"
ctl downjob -a "$ADMIN" job "$GOOD_ID"
assert_rc 2 downjob "job, daemon down"
assert_grep "^sluicectl: cannot reach admin listener at $ADMIN: " \
	"$TMP/downjob.err" "job, daemon down: message"

say "ok"
