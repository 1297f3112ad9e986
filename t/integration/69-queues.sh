#!/usr/bin/env bash
# 69-queues: classification (SPEC section 1) as /queues shows it. One queue
# per (destination, credential): two Authorization values make two queues
# with different 12-hex keys; X-Api-Key and Api-Key are credentials too;
# the first present key header (Authorization, X-Api-Key, Api-Key) decides;
# no key header is the anonymous queue (key null). Keys are salted per
# install: the same after a restart with the same state directory,
# different with another one, and not the plain SHA-256 of the value. A
# credential never appears in /queues, in the log (debug level, access
# log on) or in what the client gets back. queue_by: destination merges the
# keys into one queue; key_headers chooses the fields.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

SECRET_A=sekrit-AAA-7f3b9c1e
SECRET_B=sekrit-BBB-0d2a6f44
SECRET_C=sekrit-CCC-91e5b7aa
SECRET_D=sekrit-DDD-c3f08e12

# keys: the key hashes of the origin's queues in a fresh /queues, sorted,
# "None" for the anonymous queue.
keys() {
	dcurl -o "$TMP/queues" "http://127.0.0.1:$ADMIN_PORT/queues"
	cat "$TMP/queues" >> "$TMP/all-queues"
	json "$TMP/queues" '"\n".join(sorted(str(q["key"]) for q in d["list"]
		if q["destination"] == "http://127.0.0.1:'"$ORIGIN_PORT"'"))'
}

# recent: the key of the origin's most recently active queue.
recent() {
	dcurl -o "$TMP/queues" "http://127.0.0.1:$ADMIN_PORT/queues"
	json "$TMP/queues" 'str(min((q for q in d["list"]
		if q["destination"] == "http://127.0.0.1:'"$ORIGIN_PORT"'"),
		key=lambda q: q["idle_ms"])["key"])'
}

# req N HEADER...: request N to /reply/200 with the given header fields;
# its response is kept in $TMP/resp.N (headers, then body).
req() {
	local n=$1 h=() s
	shift
	for x in "$@"; do h+=(-H "$x"); done
	s=$(http_status "${h[@]}" "$O/reply/200?n=$n")
	assert_eq 200 "$s" "request $n"
	cat "$TMP/headers" "$TMP/body" > "$TMP/resp.$n"
	sleep 0.05 # so that idle_ms tells this queue from the others
}

# new_key N HEADER...: req, then sets K to the key of the queue it made
# (empty when it made none).
new_key() {
	local before
	before=$(keys)
	req "$@"
	K=$(LC_ALL=C comm -13 <(printf '%s\n' "$before") <(keys))
}

start_origin
write_config
start_sluiced --log-level debug --access-log
O=http://127.0.0.1:$ORIGIN_PORT

say "one queue per credential"
new_key 1 "Authorization: Bearer $SECRET_A"
kA=$K
new_key 2 "Authorization: Bearer $SECRET_B"
kB=$K
new_key 3
k0=$K
new_key 4 "X-Api-Key: $SECRET_C"
kC=$K
new_key 5 "Api-Key: $SECRET_D"
kD=$K
say "keys: A=$kA B=$kB none=$k0 X-Api-Key=$kC Api-Key=$kD"
for k in "$kA" "$kB" "$kC" "$kD"; do
	assert_match '^[0-9a-f]{12}$' "$k" "a credential's key"
done
assert_eq None "$k0" "key of the request without a key header"
assert_eq 4 "$(printf '%s\n' "$kA" "$kB" "$kC" "$kD" | sort -u | wc -l)" \
	"distinct keys of 4 credentials"
plain=$(printf 'Bearer %s' "$SECRET_A" | sha256sum | cut -c 1-12)
assert_ne "$plain" "$kA" "key of A (the unsalted SHA-256 of the value)"

say "the first present key header decides; the same credential, the same queue"
req 6 "Authorization: Bearer $SECRET_A" "X-Api-Key: $SECRET_C"
assert_eq "$kA" "$(recent)" "Authorization + X-Api-Key: queue"
req 7 "Api-Key: $SECRET_D" "X-Api-Key: $SECRET_C"
assert_eq "$kC" "$(recent)" "X-Api-Key + Api-Key: queue"
req 8 "Authorization: Bearer $SECRET_B"
assert_eq "$kB" "$(recent)" "B again: queue"
req 9
assert_eq None "$(recent)" "no key again: queue"
dcurl -o "$TMP/queues" "http://127.0.0.1:$ADMIN_PORT/queues"
assert_eq "5 5" "$(json "$TMP/queues" '"%d %d" % (d["queues"], len(d["list"]))')" \
	"/queues: queues, entries in list"

say "error paths with credentials (for the log check at the end)"
s=$(http_status -H "Authorization: Bearer $SECRET_A" \
	"http://127.0.0.1:$(closed_port)/x")
assert_error 502 '.+' "$s" "closed port, with a credential"
cat "$TMP/headers" "$TMP/body" > "$TMP/resp.e1"
s=$(http_status -H "Authorization: Bearer $SECRET_B" \
	"$O/reply/429?Retry-After=1&X-EZTHROTTLE-RPS=abc")
assert_eq 429 "$s" "429 with a bad learned value, with a credential"
cat "$TMP/headers" "$TMP/body" > "$TMP/resp.e2"
s=$(http_status -H "X-Api-Key: $SECRET_C" -H 'X-EZTHROTTLE-TIMEOUT: abc' \
	"$O/reply/200")
assert_error 400 bad_request "$s" "bad control, with a credential"
cat "$TMP/headers" "$TMP/body" > "$TMP/resp.e3"

say "the salt stays with the state directory"
stop_sluiced
start_sluiced --log-level debug --access-log
new_key 10 "Authorization: Bearer $SECRET_A"
kA2=$K
assert_eq "$kA" "$kA2" "key of A after a restart"
stop_sluiced
start_sluiced --log-level debug --access-log -s "$TMP/state2"
new_key 11 "Authorization: Bearer $SECRET_A"
kA3=$K
assert_match '^[0-9a-f]{12}$' "$kA3" "key of A with another state directory"
assert_ne "$kA" "$kA3" "key of A with another state directory"

say "queue_by: destination: one queue"
stop_sluiced
write_config - <<EOF
defaults:
  rps: 10000
  concurrency: 1000
  queue_by: destination
EOF
start_sluiced --log-level debug --access-log
req 12 "Authorization: Bearer $SECRET_A"
req 13 "Authorization: Bearer $SECRET_B"
req 14 "X-Api-Key: $SECRET_C"
req 15
assert_eq None "$(keys)" "queue_by destination: the queues' keys"

say "key_headers: [X-Tenant]"
stop_sluiced
write_config - <<EOF
defaults:
  rps: 10000
  concurrency: 1000
  key_headers: [X-Tenant]
EOF
start_sluiced --log-level debug --access-log
req 16 "Authorization: Bearer $SECRET_A"
req 17 "X-Api-Key: $SECRET_C"
assert_eq None "$(keys)" "key_headers [X-Tenant]: Authorization, X-Api-Key"
new_key 18 "X-Tenant: $SECRET_D"
kT=$K
assert_match '^[0-9a-f]{12}$' "$kT" "key_headers [X-Tenant]: key of X-Tenant"

say "no credential in /queues, the log or the responses"
dcurl -o "$TMP/metrics" "http://127.0.0.1:$ADMIN_PORT/metrics" || true
assert_grep 'access|GET' "$TMP/sluiced.1.log" "an access log line"
for sec in "$SECRET_A" "$SECRET_B" "$SECRET_C" "$SECRET_D"; do
	# The unique part of the value is enough to be a leak.
	hits=$(cd "$TMP" || exit 99
		grep -l -F -e "${sec#sekrit-}" sluiced*.log sluiced.stdout \
			all-queues metrics resp.* 2>/dev/null | tr '\n' ' ' || true)
	[ -z "$hits" ] || fail "credential '$sec' found in: $hits"
done
# The origin did get them: a credential is forwarded, only not shown.
assert_grep "Bearer $SECRET_A" "$TMP/origin.requests" \
	"Authorization forwarded upstream"

say "ok"
