#!/usr/bin/env bash
# 74-jobs-scrub: a finished job keeps no request credential or body at
# rest (SPEC section 8). A secret in Authorization, in the URL's query and
# in the body (small, and large enough for SQLite overflow pages), of a
# job that succeeds and of one that fails, must be gone from every file
# of the state directory (jobs.db, -wal, -shm, ...) shortly after the job
# is done and delivered, while the daemon runs. A stored job whose
# request cannot be rebuilt at a restart ends failed (not_replayable),
# its webhook told, and scrubbed the same way.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

start_origin
O=http://127.0.0.1:$ORIGIN_PORT
start_receiver
R=http://127.0.0.1:$RECEIVER_PORT
write_config
start_sluiced

# state_has TEXT: the files of the state directory holding TEXT.
state_has() {
	grep -rlaF -e "$1" "$TMP/state" 2>/dev/null || true
}

# assert_at_rest_none SECRET...: no file of the state directory holds any
# of them, within 5 s (the WAL is truncated at most once a second).
assert_at_rest_none() {
	local secret files
	for secret in "$@"; do
		for _ in $(seq 100); do
			[ -n "$(state_has "$secret")" ] || break
			sleep 0.05
		done
		files=$(state_has "$secret")
		[ -z "$files" ] || fail "$secret at rest in: $files"
	done
}

say "jobs with secrets in Authorization, the query and the body"
s=$(http_status -X POST --data-binary '{"card": "SECRET-BODY-74a"}' \
	-H 'Authorization: Bearer SECRET-AUTH-74a' \
	-H "X-EZTHROTTLE-WEBHOOK: $R/hook" "$O/status/200?api_key=SECRET-QUERY-74a")
assert_eq 202 "$s" "small job"
id1=$(json "$TMP/body" 'd["job_id"]')
"$PYTHON" -c 'import sys; sys.stdout.write(("SECRET-BIG-74b " * 4000))' \
	> "$TMP/big"
s=$(http_status -X POST --data-binary @"$TMP/big" \
	-H 'Authorization: Bearer SECRET-AUTH-74b' \
	-H "X-EZTHROTTLE-WEBHOOK: $R/hook" "$O/status/200?big=1")
assert_eq 202 "$s" "large job"
id2=$(json "$TMP/body" 'd["job_id"]')
cport=$(closed_port)
s=$(http_status -X POST --data-binary 'SECRET-BODY-74c' \
	-H 'Authorization: Bearer SECRET-AUTH-74c' \
	-H "X-EZTHROTTLE-WEBHOOK: $R/hook" "http://127.0.0.1:$cport/x")
assert_eq 202 "$s" "a job that fails"
id3=$(json "$TMP/body" 'd["job_id"]')
wait_for "{'$id1', '$id2', '$id3'} <= set(d['json']['job_id'] for d in ds)" 10 ||
	fail "no delivery of the three jobs in 10 s"
assert_grep 'SECRET-AUTH-74a' "$TMP/origin.requests" \
	"the credential went upstream"
for id in "$id1" "$id2" "$id3"; do
	s=$(direct_status "http://127.0.0.1:$ADMIN_PORT/jobs/$id")
	assert_eq done "$(json "$TMP/body" 'd["state"]')" "state of $id"
	assert_eq true "$(json "$TMP/body" 'd["delivered"]')" "$id delivered"
done

say "no secret in any file of the state directory"
ls -la "$TMP/state" | sed 's/^/# /'
assert_at_rest_none SECRET-AUTH-74a SECRET-BODY-74a SECRET-QUERY-74a \
	SECRET-AUTH-74b SECRET-BIG-74b SECRET-AUTH-74c SECRET-BODY-74c

say "the finished job still shows its response"
s=$(direct_status "http://127.0.0.1:$ADMIN_PORT/jobs/$id1")
assert_eq 200 "$(json "$TMP/body" 'd["response"]["status_code"]')" \
	"response kept"
assert_eq /status/200 "$(json "$TMP/body" 'd["path"]')" "path kept, no query"
assert_no_grep 'SECRET' "$TMP/sluiced.log" "secret in the log"

say "after a restart nothing runs again"
stop_sluiced
start_sluiced
sleep 0.5
assert_eq 1 "$(origin_count 'api_key=')" "the small job ran once"
assert_eq 1 "$(origin_count 'big=1')" "the large job ran once"

say "a stored job that cannot be replayed ends failed, scrubbed"
s=$(http_status -X POST --data-binary 'SECRET-BODY-74d' \
	-H 'Authorization: Bearer SECRET-AUTH-74d' \
	-H "X-EZTHROTTLE-WEBHOOK: $R/hook" \
	"$O/slow/20000?api_key=SECRET-QUERY-74d")
assert_eq 202 "$s" "a job the origin holds"
id4=$(json "$TMP/body" 'd["job_id"]')
stop_sluiced KILL
# Its stored header list no longer parses (the secret still in it).
"$PYTHON" -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("PRAGMA secure_delete = ON")
n = db.execute("UPDATE jobs SET headers = \"{\" || headers WHERE id = ?",
               (sys.argv[2],)).rowcount
db.commit()
db.close()
sys.exit(n != 1)' "$TMP/state/jobs.db" "$id4" || error "cannot edit jobs.db"
[ -n "$(state_has SECRET-AUTH-74d)" ] || error "the stored job has no secret"
start_sluiced
wait_for "any(d['json']['job_id'] == '$id4' for d in ds)" 10 ||
	fail "the unreplayable job was not delivered in 10 s"
assert_eq not_replayable "$(deliveries "[d['json']['error']['code'] for d in \
	ds if d['json']['job_id'] == '$id4'][0]")" "the webhook's error code"
s=$(direct_status "http://127.0.0.1:$ADMIN_PORT/jobs/$id4")
assert_eq done "$(json "$TMP/body" 'd["state"]')" "state of $id4"
assert_eq failed "$(json "$TMP/body" 'd["status"]')" "status of $id4"
assert_eq not_replayable "$(json "$TMP/body" 'd["error"]["code"]')" \
	"error code of $id4"
assert_grep "cannot be replayed job=$id4" "$TMP/sluiced.log" "logged"
assert_at_rest_none SECRET-AUTH-74d SECRET-BODY-74d SECRET-QUERY-74d
assert_no_grep 'SECRET' "$TMP/sluiced.log" "secret in the log"
stop_sluiced
assert_eq 0 "$SLUICED_STATUS" "exit status after SIGTERM"
say "ok"
