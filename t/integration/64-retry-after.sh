#!/usr/bin/env bash
# 64-retry-after: a 429 with "Retry-After: 2" pauses the whole queue, not
# only the one request (SPEC section 3): the next request of the same
# queue reaches the origin no earlier than ~2 s after the 429, while a
# request of another queue (another Authorization) is not held; /queues
# shows paused_ms > 0 meanwhile. The same for Retry-After as an HTTP-date,
# for "X-RateLimit-Remaining: 0" with "X-RateLimit-Reset: 2", and for the
# IETF RateLimit field with remaining 0. With learn.retry_after: false a
# Retry-After pauses nothing.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

# arrival ERE: the arrival time (s) at the origin of the first target
# matching ERE.
arrival() {
	"$PYTHON" -c '
import json, re, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    if re.search(sys.argv[2], d["target"]):
        print("%.6f" % d["time"])
        break
' "$TMP/origin.requests" "$1"
}

# since A B: B - A, in seconds.
since() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'
}

# keys [FILE]: the key hashes of the origin's queues, sorted, in the
# /queues snapshot FILE (default: a fresh one).
keys() {
	local f=${1:-$TMP/queues}
	[ -n "${1:-}" ] ||
		dcurl -o "$TMP/queues" "http://127.0.0.1:$ADMIN_PORT/queues"
	json "$f" '"\n".join(sorted(str(q["key"]) for q in d["list"]
		if q["destination"] == "http://127.0.0.1:'"$ORIGIN_PORT"'"))'
}

# paused FILE KEY: paused_ms of the origin's queue KEY in the /queues
# snapshot FILE.
paused() {
	json "$1" '[q["paused_ms"] for q in d["list"]
		if q["destination"] == "http://127.0.0.1:'"$ORIGIN_PORT"'"
		and str(q["key"]) == "'"$2"'"][0]'
}

# pause_case NAME HOLD_S QUERY [UNTIL]: "Authorization: Bearer NAME" asks
# /reply/QUERY, which must pause the queue for HOLD_S seconds and comes
# back to the client (max_retries is 0). Right after, one more request of
# that queue and one of "Bearer NAME-other" are sent. Checks: /queues,
# read at once, shows paused_ms > 0 for the queue and 0 for the other;
# at the origin the same-queue request comes no earlier than 0.1 s before
# the pause ends (HOLD_S after the pausing response, or at the Unix time
# UNTIL), and the other queue's request before it, at least 0.3 s before
# the end of the pause (a held request would come after it; how much
# sooner it comes depends on the machine's load).
pause_case() {
	local name=$1 hold=$2 query=$3 until=${4:-} s pid t0 t1 t2 p k ko before
	before=$(keys)
	s=$(http_status -H "Authorization: Bearer $name" \
		"$O/reply/$query&case=$name")
	dcurl -o "$TMP/$name.queues" "http://127.0.0.1:$ADMIN_PORT/queues"
	assert_eq "${query%%\?*}" "$s" "$name: the pausing response comes back"
	pcurl -o "$TMP/$name.same" -w '%{http_code}\n' \
		-H "Authorization: Bearer $name" "$O/echo/$name/same" \
		> "$TMP/$name.code" 2>&1 &
	pid=$!
	s=$(http_status -H "Authorization: Bearer $name-other" \
		"$O/echo/$name/other")
	dcurl -o "$TMP/$name.queues2" "http://127.0.0.1:$ADMIN_PORT/queues"
	assert_eq 200 "$s" "$name: request of another queue"
	k=$(LC_ALL=C comm -13 <(printf '%s\n' "$before") \
		<(keys "$TMP/$name.queues"))
	ko=$(LC_ALL=C comm -13 <(printf '%s\n%s\n' "$before" "$k" |
		LC_ALL=C sort) <(keys "$TMP/$name.queues2"))
	p=$(paused "$TMP/$name.queues" "$k")
	[ "$p" -gt 0 ] || fail "$name: paused_ms of the queue is $p after the pausing response"
	assert_eq 0 "$(paused "$TMP/$name.queues2" "$ko")" \
		"$name: paused_ms of the other queue"
	wait "$pid" || true
	assert_eq 200 "$(cat "$TMP/$name.code")" "$name: request of the paused queue"
	t0=$(arrival "case=$name\$")
	t1=$(arrival "^/echo/$name/same\$")
	t2=$(arrival "^/echo/$name/other\$")
	[ -n "$until" ] || until=$(awk -v t="$t0" -v h="$hold" \
		'BEGIN { printf "%.6f", t + h }')
	say "$name: same queue +$(since "$t0" "$t1")s, other queue +$(since "$t0" "$t2")s, pause until +$(since "$t0" "$until")s, paused_ms was $p"
	ge "$(since "$until" "$t1")" -0.1 ||
		fail "$name: same-queue request reached the origin $(since "$t1" "$until")s before the pause ended"
	ge "$(since "$t2" "$until")" 0.3 ||
		fail "$name: another queue's request came only $(since "$t2" "$until")s before the pause ended (held?)"
	ge "$(since "$t2" "$t1")" 0 ||
		fail "$name: another queue's request came after the paused one"
}

start_origin
write_config
start_sluiced
O=http://127.0.0.1:$ORIGIN_PORT

say "429 with Retry-After: 2 pauses the queue"
pause_case ra 2 '429?Retry-After=2'

say "503 with Retry-After as an HTTP-date pauses the queue"
# Whole seconds: "now + 4 s", truncated, is at least 3 s ahead; the pause
# ends at that time.
date=$(LC_ALL=C date -u -d '+4 seconds' '+%a, %d %b %Y %H:%M:%S GMT')
pause_case date 2 "503?Retry-After=$(printf '%s' "$date" |
	sed 's/ /%20/g; s/,/%2C/g; s/:/%3A/g')" "$(date -d "$date" +%s)"

say "X-RateLimit-Remaining: 0 with X-RateLimit-Reset: 2 pauses the queue"
pause_case xrl 2 '200?X-RateLimit-Limit=10&X-RateLimit-Remaining=0&X-RateLimit-Reset=2'

say "IETF RateLimit with remaining 0 pauses the queue"
pause_case ietf 2 '200?RateLimit-Policy=%22default%22%3Bq%3D10%3Bw%3D60&RateLimit=%22default%22%3Br%3D0%3Bt%3D2'

say "learn.retry_after: false: Retry-After pauses nothing"
stop_sluiced
write_config - <<EOF
learn:
  retry_after: false
EOF
start_sluiced
s=$(http_status -H 'Authorization: Bearer off' "$O/reply/429?Retry-After=5&case=off")
assert_eq 429 "$s" "retry_after off: the 429"
s=$(http_status -H 'Authorization: Bearer off' "$O/echo/off/same")
assert_eq 200 "$s" "retry_after off: the next request"
gap=$(since "$(arrival 'case=off$')" "$(arrival '^/echo/off/same$')")
# (A pause would hold it 5 s.)
ge 3 "$gap" || fail "retry_after off: next request held ${gap}s"

assert_serving "pauses"
say "ok"
