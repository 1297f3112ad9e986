#!/usr/bin/env bash
# 76-jobs-scope: idempotent keys are scoped by (credential, destination)
# (SPEC section 8). The same key and credential for another destination
# is a new job, sent upstream; anonymous clients with the same key are
# never deduplicated against each other (each is sent) unless
# jobs.dedupe_anonymous is true.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

start_origin origin2
ORIGIN2_PORT=$ORIGIN_PORT
start_origin
O=http://127.0.0.1:$ORIGIN_PORT
start_receiver
R=http://127.0.0.1:$RECEIVER_PORT
write_config
start_sluiced

# job KEY URL [ARGS...]: a job with idempotent key KEY; status on stdout.
job() {
	local key=$1 url=$2
	shift 2
	http_status -H "X-EZTHROTTLE-WEBHOOK: $R/hook" \
		-H "X-EZTHROTTLE-IDEMPOTENT-KEY: $key" "$@" "$url"
}
delivered() { # ID
	wait_for "any(d['json']['job_id'] == '$1' for d in ds)" 10 ||
		fail "no delivery of $1 in 10 s"
}

say "same credential and key, two destinations: two jobs, both sent"
s=$(job k-dest "$O/reply/200?to=one" -H 'Authorization: Bearer alice-76')
assert_eq 202 "$s" "first destination"
a=$(json "$TMP/body" 'd["job_id"]')
s=$(job k-dest "http://127.0.0.1:$ORIGIN2_PORT/reply/200?to=two" \
	-H 'Authorization: Bearer alice-76')
assert_eq 202 "$s" "same key, other destination: a new job"
b=$(json "$TMP/body" 'd["job_id"]')
assert_ne "$a" "$b" "the second job's id"
delivered "$a"
delivered "$b"
assert_eq 1 "$(origin_count 'to=one')" "first destination reached"
assert_eq 1 "$(origin_count 'to=two' origin2)" "second destination reached"
say "... same destination again: 200 duplicate"
s=$(job k-dest "$O/reply/200?to=one-again" -H 'Authorization: Bearer alice-76')
assert_eq 200 "$s" "same credential, key and destination"
assert_eq "$a" "$(json "$TMP/body" 'd["job_id"]')" "the first job's id"

say "anonymous clients, same key and destination: never deduplicated"
s=$(job k-anon "$O/reply/200?anon=1")
assert_eq 202 "$s" "first anonymous job"
c=$(json "$TMP/body" 'd["job_id"]')
s=$(job k-anon "$O/reply/200?anon=2")
assert_eq 202 "$s" "second anonymous job, same key: a new job"
d=$(json "$TMP/body" 'd["job_id"]')
assert_ne "$c" "$d" "second anonymous job's id"
assert_eq k-anon "$(json "$TMP/body" 'd["idempotent_key"]')" "key echoed"
delivered "$c"
delivered "$d"
assert_eq 1 "$(origin_count 'anon=1')" "first anonymous request sent"
assert_eq 1 "$(origin_count 'anon=2')" "second anonymous request sent"
s=$(direct_status "http://127.0.0.1:$ADMIN_PORT/jobs/$d")
assert_eq 200 "$s" "GET the second anonymous job"
assert_eq "/reply/200" "$(json "$TMP/body" 'd["path"]')" "its own path"

say "jobs.dedupe_anonymous: true: anonymous keys dedupe per destination"
stop_sluiced
write_config - <<'EOF2'
jobs:
  dedupe_anonymous: true
EOF2
start_sluiced
s=$(job k-opt "$O/reply/200?opt=1")
assert_eq 202 "$s" "first opted-in anonymous job"
e=$(json "$TMP/body" 'd["job_id"]')
s=$(job k-opt "$O/reply/200?opt=2")
assert_eq 200 "$s" "second: duplicate"
assert_eq "$e" "$(json "$TMP/body" 'd["job_id"]')" "the first job's id"
s=$(job k-opt "http://127.0.0.1:$ORIGIN2_PORT/reply/200?opt=3")
assert_eq 202 "$s" "same key, other destination: a new job"
delivered "$e"
delivered "$(json "$TMP/body" 'd["job_id"]')"
assert_eq 0 "$(origin_count 'opt=2')" "the duplicate was not sent"
assert_eq 1 "$(origin_count 'opt=3' origin2)" "other destination sent"
stop_sluiced
assert_eq 0 "$SLUICED_STATUS" "exit status after SIGTERM"
say "ok"
