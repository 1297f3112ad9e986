#!/usr/bin/env bash
# 78-jobs-deliveries-memory: finished jobs waiting for their webhook
# deliveries do not hold their payloads in memory (SPEC section 6, 8).
# N jobs with S-byte responses finish while their receiver is down (a
# closed port): the daemon's RSS stays well under N x S, and again after
# kill -9 and a restart on the same state directory (recovery reads no
# response). Then the receiver comes up on that port and every job is
# delivered once, signed, its response body byte for byte.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

N=${N:-50}
SIZE=${SIZE:-2000000}
# The growth allowed over the idle daemon: half of N x S (the payloads,
# base64, are a third larger). Payloads in memory are bounded by
# DELIVERY_PAYLOAD_BYTES (16 MiB) plus one.
ROOM_KB=${ROOM_KB:-$((N * SIZE / 2 / 1024))}

start_origin
O=http://127.0.0.1:$ORIGIN_PORT
RP=$(closed_port)
R=http://127.0.0.1:$RP
secret_file "$TMP/secret"
write_config - <<EOF
destinations:
  "127.0.0.1:$ORIGIN_PORT":
    concurrency: 4
webhooks:
  secret_file: $TMP/secret
  retry_schedule: [500ms, 1s]
EOF

# A sanitizer build keeps freed memory in quarantine: its RSS says
# nothing about what the daemon holds.
sanitized=
if grep -q -a __asan_init "$SLUICED"; then
	sanitized=1
fi

rss_kb() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$SLUICED_PID/status"
}

hwm_mib() {
	awk '/^VmHWM:/ { print int($2 / 1024) }' "/proc/$SLUICED_PID/status"
}

# check_rss WHAT BASE_KB: RSS now, against BASE_KB + ROOM_KB.
check_rss() {
	local now
	now=$(rss_kb)
	say "RSS $1: $((now / 1024)) MiB, peak $(hwm_mib) MiB" \
		"(idle $(($2 / 1024)) MiB;" \
		"$N pending deliveries of $SIZE bytes," \
		"$((N * SIZE / 1048576)) MiB of responses)"
	if [ -n "$sanitized" ]; then
		say "sanitizer build: RSS not checked"
		return 0
	fi
	[ "$now" -le $(($2 + ROOM_KB)) ] ||
		fail "RSS $1 is $now kB, over $2 + $ROOM_KB kB:" \
			"pending deliveries hold their payloads"
}

# tried_all N: every job failed N tries or more since the daemon started
# (each try built its payload from the store), from its debug log.
tried_all() {
	local i
	while read -r i; do
		[ "$(grep -c -E "webhook delivery failed job=$i " \
			"$TMP/sluiced.log")" -ge "$1" ] || return 1
	done < "$TMP/ids"
}

wait_tried_all() {
	for _ in $(seq 240); do
		tried_all "$1" && return 0
		sleep 0.25
	done
	fail "the $N jobs did not all try their delivery $1 times"
}

start_sluiced --log-level debug
sleep 0.5
idle=$(rss_kb)

say "$N jobs of $SIZE-byte responses, the receiver down"
: > "$TMP/ids"
for i in $(seq "$N"); do
	s=$(http_status -H "X-EZTHROTTLE-WEBHOOK: $R/hook" \
		-H "X-EZTHROTTLE-METADATA: {\"seed\": $i}" \
		"$O/bytes/$SIZE?seed=$i")
	assert_eq 202 "$s" "job $i accepted"
	json "$TMP/body" 'd["job_id"]' >> "$TMP/ids"
done
wait_tried_all 2
check_rss "with $N deliveries pending" "$idle"
assert_no_grep 'payload built .* from=memory' "$TMP/sluiced.log" \
	"a payload built from a copy, not from the store"

say "kill -9 and restart on the same state directory"
kill -9 "$SLUICED_PID"
wait "$SLUICED_TIMEOUT_PID" 2>/dev/null || true
rm -f "$TMP/sluiced.pid" "$TMP/sluiced-child.pid"
start_sluiced --log-level debug
assert_grep "jobs resumed run=0 deliver=$N" "$TMP/sluiced.log" \
	"every pending delivery resumed"
wait_tried_all 2
check_rss "after a restart with $N deliveries pending" "$idle"

say "the receiver comes up: every job is delivered once"
RECEIVER_BIND_PORT=$RP start_receiver receiver "$TMP/secret"
wait_for "len({d['json']['job_id'] for d in ds if d['json']}) >= $N" 60 ||
	fail "not every job was delivered in 60 s"
"$PYTHON" - "$TMP/ids" "$TMP/receiver.deliveries" "$SIZE" <<'PYEOF' ||
import base64, collections, json, random, sys
ids = [l.strip() for l in open(sys.argv[1]) if l.strip()]
ds = [json.loads(l) for l in open(sys.argv[2])]
size = int(sys.argv[3])
per_job = collections.Counter(d["json"]["job_id"] for d in ds)
bad = []
for d in ds:
    j = d["json"]
    seed = j["metadata"]["seed"]
    want = random.Random("sluice-origin-%s" % seed).randbytes(size)
    resp = j["response"]
    got = base64.b64decode(resp["body"])
    if not d["sig_ok"] or j["status"] != "success" or \
            resp["status_code"] != 200 or \
            resp.get("body_encoding") != "base64" or got != want or \
            j["job_id"] != ids[seed - 1] or d["path"] != "/hook":
        bad.append(j["job_id"])
if sorted(per_job) != sorted(ids) or any(n != 1 for n in per_job.values()):
    sys.exit("deliveries per job: %s" % dict(per_job))
if bad:
    sys.exit("wrong deliveries: %s" % bad[:5])
PYEOF
	fail "the deliveries differ from the jobs' responses"
"$PYTHON" - "$TMP"/sluiced.*log > "$TMP/build-ms" <<'PYEOF'
import re, sys
rx = re.compile(r"payload built .* ms=([0-9]+) read_ms=([0-9]+) ")
ms = [m.groups() for f in sys.argv[1:] for l in open(f)
      for m in [rx.search(l)] if m]
if not ms:
    sys.exit(print("no payload build logged"))
def q(i):
    v = sorted(int(x[i]) for x in ms)
    return "median %d ms, p90 %d ms, max %d ms" % (
        v[len(v) // 2], v[len(v) * 9 // 10], v[-1])
print("%d payloads built: store read %s; read and build %s" % (
    len(ms), q(1), q(0)))
PYEOF
say "$(cat "$TMP/build-ms")"
for i in $(head -n 3 "$TMP/ids"); do
	dcurl -o "$TMP/job" "http://127.0.0.1:$ADMIN_PORT/jobs/$i"
	assert_eq true "$(json "$TMP/job" 'd["delivered"]')" \
		"GET /jobs shows $i delivered"
done
assert_serving "deliveries of large responses"
stop_sluiced
say "ok"
