#!/usr/bin/env bash
# 68-hopeless: a request whose predicted wait already passes its deadline
# is answered at once (SPEC section 3a, reject_hopeless): 503 with
# Retry-After and {"error": "queue_wait_exceeds_deadline",
# "predicted_wait_ms": N}, counted in /queues (hopeless), never sent
# upstream; the requests that can make it wait and go. A webhook job is
# never refused this way. With reject_hopeless: false the same request
# waits for its deadline and gets 504.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

start_origin
start_receiver
write_config - <<EOF
destinations:
  "127.0.0.1:$ORIGIN_PORT":
    rps: 0.5
    concurrency: 10
EOF
start_sluiced
O=http://127.0.0.1:$ORIGIN_PORT

say "4 requests with a 3 s deadline in a 0.5 req/s queue"
# The first goes now, the second in 2 s; the third would go in 4 s and the
# fourth in 6 s: past the deadline, answered at once.
fire hope 4 "$O/echo/hope" "X-EZTHROTTLE-TIMEOUT: 3"
assert_eq "[200, 200, 503, 503]" \
	"$(fired hope 'sorted(r["status"] for r in rs)')" "statuses"
assert_eq 2 "$(origin_count '^/echo/hope/')" "requests sent upstream"
fast=$(fired hope 'max(r["secs"] for r in rs if r["status"] == 503)')
ge 1 "$fast" || fail "a hopeless request was answered after ${fast}s, not at once"
body=$(fired hope '[r["body"] for r in rs if r["status"] == 503][0]')
assert_eq queue_wait_exceeds_deadline "$(json - 'd["error"]' <<< "$body")" "error code"
wait_ms=$(json - 'd["predicted_wait_ms"]' <<< "$body")
ge "$wait_ms" 3000 || fail "predicted_wait_ms $wait_ms is not past the 3 s deadline"
ge 8000 "$wait_ms" || fail "predicted_wait_ms $wait_ms is more than 4 intervals"
after=$(fired hope '[r["headers"].get("retry-after") for r in rs if r["status"] == 503][0]')
assert_match '^[0-9]+$' "$after" "Retry-After"
ge "$after" 3 || fail "Retry-After $after is shorter than the predicted wait"
dcurl -o "$TMP/queues" "http://127.0.0.1:$ADMIN_PORT/queues"
assert_eq 2 "$(json "$TMP/queues" 'd["hopeless"]')" "/queues hopeless"

say "a webhook job is never refused as hopeless"
# Three requests fill the queue for 6 s; a job behind them with a 1 s
# deadline is accepted and runs when its turn comes.
fire busy 3 "$O/echo/busy" &
busy=$!
sleep 0.5
s=$(http_status -H "X-EZTHROTTLE-WEBHOOK: http://127.0.0.1:$RECEIVER_PORT/hook" \
	-H "X-EZTHROTTLE-TIMEOUT: 1" "$O/echo/job")
assert_eq 202 "$s" "a job behind a busy queue"
wait "$busy" || true
assert_eq "[200, 200, 200]" "$(fired busy 'sorted(r["status"] for r in rs)')" \
	"the requests ahead of the job"
wait_for 'len(ds) >= 1' 20 || fail "the job was not delivered"
assert_eq 1 "$(origin_count '^/echo/job$')" "the job reached the origin"

say "reject_hopeless: false: the deadline passes, 504"
stop_sluiced
write_config - <<EOF
reject_hopeless: false
destinations:
  "127.0.0.1:$ORIGIN_PORT":
    rps: 0.5
    concurrency: 10
EOF
start_sluiced
fire late 3 "$O/echo/late" "X-EZTHROTTLE-TIMEOUT: 2.5"
assert_eq "[200, 200, 504]" \
	"$(fired late 'sorted(r["status"] for r in rs)')" "statuses"
slow=$(fired late 'max(r["secs"] for r in rs if r["status"] == 504)')
ge "$slow" 2.3 || fail "the 504 came after ${slow}s, before the deadline"
assert_serving "hopeless requests"
say "ok"
