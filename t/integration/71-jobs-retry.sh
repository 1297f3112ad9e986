#!/usr/bin/env bash
# 71-jobs-retry: webhook delivery retries (SPEC section 6). A receiver
# failing twice then answering 200 gets three tries, spaced by
# webhooks.retry_schedule; with three webhooks and quorum 2, one always
# failing, the job counts as delivered once the other two answered, and
# the failing one keeps being tried until webhooks.give_up_after, then
# gives up. Every try is in GET /jobs/<id>. A job whose upstream never
# answers fails when its attempt reaches sync_timeout.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

start_origin
O=http://127.0.0.1:$ORIGIN_PORT
start_receiver
R=http://127.0.0.1:$RECEIVER_PORT
write_config - <<'EOF'
webhooks:
  timeout: 2s
  retry_schedule: [0s, 200ms, 200ms]
  give_up_after: 2s
EOF
start_sluiced

# job_get ID: GET /jobs/ID into $TMP/body.
job_get() {
	s=$(direct_status "http://127.0.0.1:$ADMIN_PORT/jobs/$1")
	assert_eq 200 "$s" "GET /jobs/$1"
}

say "a receiver failing twice: three tries, 200 ms apart, then delivered"
s=$(http_status -H "X-EZTHROTTLE-WEBHOOK: $R/fail-2" "$O/reply/200?j=1")
assert_eq 202 "$s" "job"
id=$(json "$TMP/body" 'd["job_id"]')
wait_for "any(d['path'] == '/fail-2' and d['answer'] == 200 for d in ds)" 10 ||
	fail "no successful delivery to /fail-2 in 10 s"
assert_eq '[500, 500, 200]' \
	"$(deliveries "[d['answer'] for d in ds if d['path'] == '/fail-2']")" \
	"answers to the tries"
gaps=$(deliveries "[round(b['time'] - a['time'], 3) for a, b in zip([d for d in ds if d['path'] == '/fail-2'], [d for d in ds if d['path'] == '/fail-2'][1:])]")
say "gaps between tries: $gaps s"
"$PYTHON" -c "import sys; g = $gaps; sys.exit(not all(0.18 <= x <= 1.5 for x in g))" ||
	fail "tries not spaced by the 200 ms schedule: $gaps"
assert_eq "[\"$id\"]" \
	"$(deliveries "sorted(set(d['json']['job_id'] for d in ds if d['path'] == '/fail-2'))")" \
	"every try carries the job id"
sleep 0.3
job_get "$id"
assert_eq delivered "$(json "$TMP/body" 'd["deliveries"][0]["state"]')" "state"
assert_eq 3 "$(json "$TMP/body" 'd["deliveries"][0]["attempts"]')" "attempts"
assert_eq 200 "$(json "$TMP/body" 'd["deliveries"][0]["last_status"]')" \
	"last_status"
assert_eq 1 "$(origin_count '^/reply/200[?]j=1')" \
	"upstream requests: delivery retries do not repeat the job"

say "quorum 2 of 3, one webhook always failing"
s=$(http_status -H "X-EZTHROTTLE-WEBHOOK: $R/ok-a, $R/always-500, $R/ok-b" \
	-H 'X-EZTHROTTLE-WEBHOOK-QUORUM: 2' "$O/reply/200?j=2")
assert_eq 202 "$s" "quorum job"
id=$(json "$TMP/body" 'd["job_id"]')
wait_for "{d['path'] for d in ds if d['answer'] == 200} >= {'/ok-a', '/ok-b'}" 10 ||
	fail "the two good webhooks were not delivered"
sleep 0.3
job_get "$id"
assert_eq true "$(json "$TMP/body" 'd["delivered"]')" \
	"delivered once the quorum answered"
assert_eq pending "$(json "$TMP/body" 'd["deliveries"][1]["state"]')" \
	"the failing webhook is still being tried"
assert_match '^[0-9]{13}$' "$(json "$TMP/body" 'd["deliveries"][1]["next_at"]')" \
	"next_at of the failing webhook"
assert_eq 'HTTP 500' "$(json "$TMP/body" 'd["deliveries"][1]["last_error"]')" \
	"last_error of the failing webhook"

say "... until give_up_after (2 s)"
for _ in $(seq 100); do
	job_get "$id"
	[ "$(json "$TMP/body" 'd["deliveries"][1]["state"]')" = pending ] ||
		break
	sleep 0.1
done
assert_eq gave_up "$(json "$TMP/body" 'd["deliveries"][1]["state"]')" \
	"the failing webhook gave up"
assert_eq 500 "$(json "$TMP/body" 'd["deliveries"][1]["last_status"]')" \
	"last_status"
n=$(json "$TMP/body" 'd["deliveries"][1]["attempts"]')
got=$(deliveries "len([d for d in ds if d['path'] == '/always-500'])")
say "the failing webhook was tried $n times (receiver saw $got)"
assert_eq "$n" "$got" "tries recorded = tries received"
ge "$n" 5 || fail "only $n tries in 2 s at 200 ms steps"
[ "$n" -le 14 ] || fail "$n tries in 2 s at 200 ms steps: too many"
sleep 0.6
assert_eq "$got" "$(deliveries "len([d for d in ds if d['path'] == '/always-500'])")" \
	"no try after giving up"
assert_grep 'webhook delivery gave up job=job_' "$TMP/sluiced.log" \
	"give-up logged"
assert_no_grep 'always-500' "$TMP/sluiced.log" "webhook URL in the log"
assert_serving "webhook retries"

say "an upstream that never answers: the job's attempt times out"
# A job has no client deadline, but each attempt is limited to
# sync_timeout; the job then fails (no retries here) and is delivered,
# and the queue's only slot is free for the next job.
stop_sluiced
write_config - <<'EOF'
sync_timeout: 1s
defaults:
  rps: 10000
  concurrency: 1
webhooks:
  timeout: 2s
  retry_schedule: [0s, 200ms]
  give_up_after: 5s
EOF
start_sluiced
s=$(http_status -H "X-EZTHROTTLE-WEBHOOK: $R/hang-hook" "$O/slow/30000")
assert_eq 202 "$s" "job to a hanging upstream"
idh=$(json "$TMP/body" 'd["job_id"]')
s=$(http_status -H "X-EZTHROTTLE-WEBHOOK: $R/after-hook" "$O/echo/after-hang")
assert_eq 202 "$s" "job behind it, same queue"
ida=$(json "$TMP/body" 'd["job_id"]')
wait_for "len([d for d in ds if d['json']['job_id'] in ('$idh', '$ida')]) == 2" 10 ||
	fail "the hanging job and the one behind it were not both delivered"
job_get "$idh"
assert_eq failed "$(json "$TMP/body" 'd["status"]')" "hanging job: failed"
assert_eq upstream_timeout "$(json "$TMP/body" 'd["error"]["code"]')" \
	"hanging job: error.code"
job_get "$ida"
assert_eq success "$(json "$TMP/body" 'd["status"]')" "job behind it: success"
say "ok"
