#!/usr/bin/env bash
# 72-jobs-crash: jobs survive kill -9 (SPEC section 6). 200 jobs are
# accepted against a rate-limited origin, the daemon is killed with
# SIGKILL while most wait in their queue, and restarted on the same state
# directory: every accepted job runs and is delivered. Delivery is at
# least once: duplicates (upstream requests and deliveries) are counted
# and reported, losses fail the test.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

N=200
start_origin
O=http://127.0.0.1:$ORIGIN_PORT
start_receiver
R=http://127.0.0.1:$RECEIVER_PORT
write_config - <<EOF
destinations:
  "127.0.0.1:$ORIGIN_PORT":
    rps: 80
    concurrency: 4
webhooks:
  retry_schedule: [0s, 100ms]
EOF
start_sluiced

say "submitting $N jobs at once"
fire submit "$N" "$O/echo/crash" "X-EZTHROTTLE-WEBHOOK: $R/hook"
ok=$(fired submit "len([r for r in rs if r['status'] == 202])")
assert_eq "$N" "$ok" "jobs accepted (202)"
fired submit "'\n'.join(__import__('json').loads(r['body'])['job_id'] for r in rs)" \
	> "$TMP/accepted"
assert_eq "$N" "$(sort -u "$TMP/accepted" | wc -l | tr -d ' ')" \
	"distinct job ids"

# A quarter of a second: 20 slots at 80 req/s, a tenth of the jobs.
sleep 0.25
before=$(origin_count '^/echo/crash/')
say "kill -9 after $before upstream requests"
[ "$before" -lt "$N" ] || skip "all $N jobs ran before the kill; origin too fast"
kill -9 "$SLUICED_PID"
wait "$SLUICED_TIMEOUT_PID" 2>/dev/null || true
rm -f "$TMP/sluiced.pid" "$TMP/sluiced-child.pid"

say "restart on the same state directory"
start_sluiced
assert_grep 'jobs resumed run=[0-9]+' "$TMP/sluiced.log" "resume logged"
wait_for "len({d['json']['job_id'] for d in ds if d['json']}) >= $N" 60 ||
	true
"$PYTHON" - "$TMP/accepted" "$TMP/receiver.deliveries" \
	"$TMP/origin.requests" > "$TMP/report" <<'EOF'
import collections, json, sys
accepted = [l.strip() for l in open(sys.argv[1]) if l.strip()]
ds = [json.loads(l) for l in open(sys.argv[2])]
per_job = collections.Counter(d["json"]["job_id"] for d in ds if d["json"])
ok = {d["json"]["job_id"] for d in ds
      if d["json"] and d["json"]["status"] == "success"}
arr = [json.loads(l)["target"] for l in open(sys.argv[3])
       if "/echo/crash/" in l]
per_path = collections.Counter(arr)
lost = [i for i in accepted if i not in ok]
print("accepted=%d delivered=%d lost=%d delivery_duplicates=%d "
      "upstream_requests=%d upstream_duplicates=%d" % (
          len(accepted), len(ok & set(accepted)), len(lost),
          sum(n - 1 for n in per_job.values()), len(arr),
          sum(n - 1 for n in per_path.values())))
for i in lost[:5]:
    print("lost " + i)
EOF
say "$(head -n 1 "$TMP/report")"
assert_match ' lost=0 ' "$(head -n 1 "$TMP/report")" \
	"every accepted job delivered after kill -9: $(cat "$TMP/report")"
assert_eq "$N" "$(deliveries "len({d['json']['job_id'] for d in ds})")" \
	"distinct jobs delivered"
assert_serving "restart after kill -9"
stop_sluiced
say "ok"
