#!/usr/bin/env bash
# 77-jobs-pending: jobs accepted and not finished are capped (SPEC
# section 8): beyond jobs.max_pending or jobs.max_pending_bytes, intake
# answers 503 with Retry-After and a JSON error, sends nothing upstream
# and drops nothing accepted; room comes back as jobs finish. After a
# restart with more unfinished jobs in the store than the caps, the
# excess waits in the store (not in memory) and every job still runs.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

start_origin
O=http://127.0.0.1:$ORIGIN_PORT
start_receiver
R=http://127.0.0.1:$RECEIVER_PORT

# job URL [ARGS...]: a job through the proxy; status on stdout.
job() {
	local url=$1
	shift
	http_status -H "X-EZTHROTTLE-WEBHOOK: $R/hook" "$@" "$url"
}

# jobs_config [YAML]: one job at a time to the origin, plus YAML.
jobs_config() {
	write_config - <<EOF
destinations:
  "127.0.0.1:$ORIGIN_PORT":
    concurrency: 1
$1
EOF
}

say "jobs.max_pending: 3; the origin holds each job 0.75 s, one at a time"
jobs_config "$(printf 'jobs:\n  max_pending: 3')"
start_sluiced
for i in 1 2 3; do
	s=$(job "$O/reply/200?_ms=750&n=$i")
	assert_eq 202 "$s" "job $i of 3"
done
s=$(job "$O/reply/200?n=4")
assert_error 503 jobs_pending_full "$s" "job 4 of 3"
assert_match '^[0-9]+$' "$(header Retry-After)" "Retry-After"
assert_match 'max_pending' "$(json "$TMP/body" 'd["message"]')" \
	"the message names the limit"
say "... as jobs finish, room comes back"
wait_for "len(ds) >= 1" 10 || fail "no job finished in 10 s"
s=$(job "$O/reply/200?n=5")
assert_eq 202 "$s" "a job once one finished"
wait_for "len(set(d['json']['job_id'] for d in ds)) >= 4" 20 ||
	fail "the four accepted jobs were not all delivered"
assert_eq 0 "$(origin_count 'n=4')" "the refused job was not sent"
assert_serving "the pending cap"
stop_sluiced

say "jobs.max_pending_bytes: 256KiB; 100 KB bodies"
jobs_config "$(printf 'jobs:\n  max_pending_bytes: 256KiB')"
start_sluiced
head -c 100000 /dev/zero > "$TMP/100k"
head -c 300000 /dev/zero > "$TMP/300k"
for i in 1 2; do
	s=$(job "$O/reply/200?_ms=750&b=$i" --data-binary @"$TMP/100k")
	assert_eq 202 "$s" "100 KB job $i"
done
s=$(job "$O/reply/200?b=3" --data-binary @"$TMP/100k")
assert_error 503 jobs_pending_bytes_full "$s" "a third 100 KB job"
assert_match '^[0-9]+$' "$(header Retry-After)" "Retry-After"
s=$(job "$O/reply/200?b=big" --data-binary @"$TMP/300k")
assert_error 413 job_too_large "$s" "a body over the cap alone"
s=$(job "$O/reply/200?b=small" --data-binary 'tiny')
assert_eq 202 "$s" "a small job still fits"
assert_eq 0 "$(origin_count 'b=(3|big)')" "the refused jobs were not sent"
stop_sluiced

say "a restart with 12 unfinished jobs, max_pending 3: all of them run"
jobs_config "$(printf 'jobs:\n  max_pending: 100')"
start_sluiced
: > "$TMP/ids"
for i in $(seq 12); do
	s=$(job "$O/reply/200?_ms=150&r=$i" --data-binary "body-$i")
	assert_eq 202 "$s" "restart job $i"
	json "$TMP/body" 'd["job_id"]' >> "$TMP/ids"
done
stop_sluiced KILL
jobs_config "$(printf 'jobs:\n  max_pending: 3')"
start_sluiced
assert_grep 'wait in the store count=' "$TMP/sluiced.log" \
	"the excess stays in the store"
s=$(job "$O/reply/200?r=new")
assert_error 503 jobs_pending_full "$s" \
	"a new job while the store is over the cap"
expr=$("$PYTHON" -c 'import sys
print("set(%r) <= set(d[\"json\"][\"job_id\"] for d in ds)"
      % open(sys.argv[1]).read().split())' "$TMP/ids")
wait_for "$expr" 30 ||
	fail "not every stored job was delivered after the restart"
for i in $(seq 12); do
	[ "$(origin_count "r=$i\$")" -ge 1 ] || fail "stored job $i never ran"
done
assert_grep 'every stored job is loaded again' "$TMP/sluiced.log" \
	"the pager finished"
assert_eq 0 "$(origin_count 'r=new')" "the refused job was not sent"
say "... and new jobs are accepted again"
s=$(job "$O/reply/200?r=after")
assert_eq 202 "$s" "a new job once the store drained"
stop_sluiced
assert_eq 0 "$SLUICED_STATUS" "exit status after SIGTERM"
say "ok"
