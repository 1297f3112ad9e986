#!/usr/bin/env bash
# 70-jobs: webhook jobs end to end (SPEC section 6): 202 with Location and
# the job id once durable; the result POSTed to the webhook, signed (the
# receiver computes the HMAC itself), metadata echoed, a binary body in
# base64; idempotent keys (200 duplicate, one upstream request); a failed
# job; 400 for bad metadata, URLs, denied URLs, quorum; GET /jobs/<id>
# (and no credential in it or in the log).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

start_origin
O=http://127.0.0.1:$ORIGIN_PORT
secret_file "$TMP/secret"
start_receiver receiver "$TMP/secret"
R=http://127.0.0.1:$RECEIVER_PORT
write_config - <<'EOF'
deny_destinations: [127.0.0.2/32, 169.254.169.254/32]
EOF
start_sluiced --webhook-secret-file "$TMP/secret"

# job ARGS...: submits a job through the proxy; status on stdout, answer
# in $TMP/body and $TMP/headers.
job() {
	http_status "$@"
}

say "a job: 202, job id, Location on the admin listener"
s=$(job -X POST --data-binary '{"amount": 42}' \
	-H 'Content-Type: application/json' \
	-H 'Authorization: Bearer sekrit-token-70' \
	-H "X-EZTHROTTLE-WEBHOOK: $R/hook" \
	-H 'X-EZTHROTTLE-METADATA: {"order": 7, "tag": "süß"}' \
	-H 'X-EZTHROTTLE-IDEMPOTENT-KEY: order-7' \
	"$O/reply/201?X-Result=made")
assert_eq 202 "$s" "job submission"
id=$(json "$TMP/body" 'd["job_id"]')
assert_match '^job_[0-9a-f]{44}$' "$id" "job id"
assert_eq queued "$(json "$TMP/body" 'd["status"]')" "status"
assert_eq order-7 "$(json "$TMP/body" 'd["idempotent_key"]')" "idempotent_key"
assert_eq "http://127.0.0.1:$ADMIN_PORT/jobs/$id" "$(header Location)" \
	"Location: absolute, on the admin listener"
header Content-Type | grep -qi application/json ||
	fail "202 Content-Type: $(header Content-Type)"

say "the webhook gets the result, signed"
wait_for "any(d['json'] and d['json']['job_id'] == '$id' for d in ds)" 10 ||
	fail "no delivery of $id in 10 s"
d="[d for d in ds if d['json']['job_id'] == '$id'][0]"
assert_eq true "$(deliveries "$d['sig_ok']")" "signature verifies"
assert_match '^t=[0-9]+,v1=[0-9a-f]{64}$' "$(deliveries "$d['signature']")" \
	"signature format"
assert_eq application/json "$(deliveries "$d['headers']['content-type']")" \
	"delivery Content-Type"
assert_eq success "$(deliveries "$d['json']['status']")" "payload status"
assert_eq order-7 "$(deliveries "$d['json']['idempotent_key']")" \
	"payload idempotent_key"
assert_eq 201 "$(deliveries "$d['json']['response']['status_code']")" \
	"payload response.status_code"
assert_eq made "$(deliveries "$d['json']['response']['headers']['x-result']")" \
	"payload response header (lower-cased name)"
assert_eq '{"status": 201}' "$(deliveries "$d['json']['response']['body']")" \
	"payload response.body"
assert_eq true "$(deliveries "$d['json']['metadata'] == {'order': 7, 'tag': 'süß'}")" \
	"metadata echoed: $(deliveries "$d['json']['metadata']")"
assert_eq false "$(deliveries "'body_encoding' in $d['json']['response']")" \
	"a UTF-8 body is not base64"
# The origin got the request as sent, Authorization included.
assert_eq 1 "$(origin_count '^/reply/201')" "upstream requests"
assert_grep 'sekrit-token-70' "$TMP/origin.requests" \
	"Authorization replayed upstream"
"$PYTHON" - "$TMP/origin.requests" <<'EOF' || fail "body not replayed"
import hashlib, json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if "/reply/201" in l][0]
assert r["body_sha256"] == hashlib.sha256(b'{"amount": 42}').hexdigest(), r
EOF

say "GET /jobs/<id> on the admin listener"
s=$(direct_status "http://127.0.0.1:$ADMIN_PORT/jobs/$id")
assert_eq 200 "$s" "GET /jobs/<id>"
assert_eq done "$(json "$TMP/body" 'd["state"]')" "state"
assert_eq success "$(json "$TMP/body" 'd["status"]')" "status"
assert_eq 1 "$(json "$TMP/body" 'd["attempts"]')" "attempts"
assert_eq 201 "$(json "$TMP/body" 'd["response"]["status_code"]')" \
	"response.status_code"
assert_eq delivered "$(json "$TMP/body" 'd["deliveries"][0]["state"]')" \
	"delivery state"
assert_eq 200 "$(json "$TMP/body" 'd["deliveries"][0]["last_status"]')" \
	"delivery last_status"
assert_eq "$R/hook" "$(json "$TMP/body" 'd["deliveries"][0]["url"]')" \
	"delivery url"
assert_eq true "$(json "$TMP/body" 'd["delivered"]')" "delivered"
assert_match '^[0-9]{13}$' "$(json "$TMP/body" 'd["created_at"]')" "created_at"
assert_match '^[0-9]{13}$' "$(json "$TMP/body" 'd["finished_at"]')" "finished_at"
assert_no_grep 'sekrit' "$TMP/body" "credential in GET /jobs/<id>"
s=$(direct_status "http://127.0.0.1:$ADMIN_PORT/jobs/job_$(printf '%044d' 0)")
assert_error 404 job_not_found "$s" "unknown job id"
s=$(direct_status "http://127.0.0.1:$ADMIN_PORT/jobs/nonsense")
assert_error 400 invalid_job_id "$s" "malformed job id"

say "sluicectl job ID shows the same job"
"$SLUICECTL" -a "127.0.0.1:$ADMIN_PORT" job "$id" > "$TMP/ctl.out" 2>&1 ||
	fail "sluicectl job exited $?: $(cat "$TMP/ctl.out")"
assert_grep "^state  *done \\(success\\)" "$TMP/ctl.out" "sluicectl job: state"
assert_grep "^status  *201" "$TMP/ctl.out" "sluicectl job: final status"
assert_grep "1 of 1 delivered" "$TMP/ctl.out" "sluicectl job: deliveries"
assert_grep "^  delivered " "$TMP/ctl.out" "sluicectl job: delivery line"
assert_no_grep 'sekrit' "$TMP/ctl.out" "credential in sluicectl job"
"$SLUICECTL" -a "127.0.0.1:$ADMIN_PORT" job "job_$(printf '%044d' 0)" \
	> "$TMP/ctl.out" 2>&1 && fail "sluicectl job: unknown id exited 0"
assert_grep "no such job" "$TMP/ctl.out" "sluicectl job: unknown id"

say "the same idempotent key and credential: 200 duplicate, no second request"
s=$(job -X POST --data-binary '{"amount": 42}' \
	-H 'Authorization: Bearer sekrit-token-70' \
	-H "X-EZTHROTTLE-WEBHOOK: $R/hook" \
	-H 'X-EZTHROTTLE-IDEMPOTENT-KEY: order-7' \
	"$O/reply/201?X-Result=made")
assert_eq 200 "$s" "duplicate submission"
assert_eq "$id" "$(json "$TMP/body" 'd["job_id"]')" "duplicate: first job's id"
assert_eq true "$(json "$TMP/body" 'd["duplicate"]')" "duplicate: true"
assert_eq "http://127.0.0.1:$ADMIN_PORT/jobs/$id" "$(header Location)" \
	"duplicate: Location"
say "... another credential, same key: a new job"
s=$(job -X POST --data-binary x -H 'Authorization: Bearer other-70' \
	-H "X-EZTHROTTLE-WEBHOOK: $R/hook" \
	-H 'X-EZTHROTTLE-IDEMPOTENT-KEY: order-7' "$O/reply/201?k=other")
assert_eq 202 "$s" "same key, other credential"
id2=$(json "$TMP/body" 'd["job_id"]')
assert_ne "$id" "$id2" "other credential's job id"
wait_for "any(d['json']['job_id'] == '$id2' for d in ds)" 10 ||
	fail "no delivery of $id2"
sleep 0.3
assert_eq 1 "$(origin_count '^/reply/201[?]X-Result')" \
	"upstream requests for the duplicated job"

say "a binary response body: base64 with body_encoding"
s=$(job -H "X-EZTHROTTLE-WEBHOOK: $R/bin" "$O/bytes/300?seed=5")
assert_eq 202 "$s" "binary job"
id3=$(json "$TMP/body" 'd["job_id"]')
assert_eq null "$(json "$TMP/body" 'd["idempotent_key"]')" "no key: null"
wait_for "any(d['json']['job_id'] == '$id3' for d in ds)" 10 ||
	fail "no delivery of $id3"
d="[d for d in ds if d['json']['job_id'] == '$id3'][0]['json']"
assert_eq base64 "$(deliveries "$d['response']['body_encoding']")" \
	"body_encoding"
direct_status "$O/bytes/300?seed=5" > /dev/null
want=$(sha "$TMP/body")
got=$(deliveries "__import__('hashlib').sha256(__import__('base64').b64decode($d['response']['body'])).hexdigest()")
assert_eq "$want" "$got" "base64 body decodes to the upstream bytes"
assert_eq '{}' "$(deliveries "$d['metadata']")" "no metadata: {}"

say "a job whose upstream cannot be reached: failed, with the proxy's answer"
cport=$(closed_port)
s=$(job -H "X-EZTHROTTLE-WEBHOOK: $R/failed" "http://127.0.0.1:$cport/x")
assert_eq 202 "$s" "job to a closed port"
id4=$(json "$TMP/body" 'd["job_id"]')
wait_for "any(d['json']['job_id'] == '$id4' for d in ds)" 10 ||
	fail "no delivery of $id4"
d="[d for d in ds if d['json']['job_id'] == '$id4'][0]['json']"
assert_eq failed "$(deliveries "$d['status']")" "failed job: status"
assert_eq upstream_connect "$(deliveries "$d['error']['code']")" \
	"failed job: error.code"
assert_eq 502 "$(deliveries "$d['response']['status_code']")" \
	"failed job: response.status_code"
s=$(direct_status "http://127.0.0.1:$ADMIN_PORT/jobs/$id4")
assert_eq failed "$(json "$TMP/body" 'd["status"]')" "GET: failed"
assert_eq upstream_connect "$(json "$TMP/body" 'd["error"]["code"]')" \
	"GET: error.code"

say "bad job fields: 400 with a JSON error, nothing sent"
bad() { # CODE WHAT ARGS...
	local code=$1 what=$2
	shift 2
	s=$(job "$@" "$O/echo/bad-job")
	assert_error 400 "$code" "$s" "$what"
}
bad invalid_metadata "metadata not JSON" -H "X-EZTHROTTLE-WEBHOOK: $R/h" \
	-H 'X-EZTHROTTLE-METADATA: {nope'
bad invalid_metadata "metadata an array" -H "X-EZTHROTTLE-WEBHOOK: $R/h" \
	-H 'X-EZTHROTTLE-METADATA: [1, 2]'
assert_match 'object' "$(json "$TMP/body" 'd["message"]')" \
	"metadata message says object"
bad invalid_webhook "ftp webhook" -H "X-EZTHROTTLE-WEBHOOK: ftp://127.0.0.1/h"
bad invalid_webhook "relative webhook" -H "X-EZTHROTTLE-WEBHOOK: /hook"
bad invalid_webhook "webhook with user info" \
	-H "X-EZTHROTTLE-WEBHOOK: http://u:p@127.0.0.1:$RECEIVER_PORT/h"
bad webhook_denied "denied webhook" \
	-H "X-EZTHROTTLE-WEBHOOK: http://127.0.0.2:$RECEIVER_PORT/h"
bad webhook_denied "metadata address webhook" \
	-H "X-EZTHROTTLE-WEBHOOK: $R/a, http://169.254.169.254/latest"
bad invalid_quorum "quorum 0" -H "X-EZTHROTTLE-WEBHOOK: $R/a" \
	-H 'X-EZTHROTTLE-WEBHOOK-QUORUM: 0'
bad invalid_quorum "quorum 3 of 2" -H "X-EZTHROTTLE-WEBHOOK: $R/a, $R/b" \
	-H 'X-EZTHROTTLE-WEBHOOK-QUORUM: 3'
bad invalid_quorum "quorum abc" -H "X-EZTHROTTLE-WEBHOOK: $R/a" \
	-H 'X-EZTHROTTLE-WEBHOOK-QUORUM: abc'
bad invalid_idempotent_key "key not ASCII" -H "X-EZTHROTTLE-WEBHOOK: $R/a" \
	-H "X-EZTHROTTLE-IDEMPOTENT-KEY: caf$(printf '\351')"
bad invalid_header "a field that is not UTF-8" \
	-H "X-EZTHROTTLE-WEBHOOK: $R/a" -H "X-Test: caf$(printf '\351')"
# The job's fields are fine; a later control field is not: its own code.
bad bad_request "max retries -1 on a job" -H "X-EZTHROTTLE-WEBHOOK: $R/a" \
	-H 'X-EZTHROTTLE-MAX-RETRIES: -1'
assert_eq 0 "$(origin_count 'bad-job')" "refused jobs reached the origin"
assert_serving "refused jobs"

say "repeated and comma-listed webhooks, quorum 2 of 3"
s=$(job -H "X-EZTHROTTLE-WEBHOOK: $R/q1, $R/q2" \
	-H "X-EZTHROTTLE-WEBHOOK: $R/q3" -H 'X-EZTHROTTLE-WEBHOOK-QUORUM: 2' \
	"$O/reply/200?q=1")
assert_eq 202 "$s" "three webhooks"
id5=$(json "$TMP/body" 'd["job_id"]')
wait_for "len([d for d in ds if d['json']['job_id'] == '$id5']) == 3" 10 ||
	fail "not three deliveries of $id5"
assert_eq '["/q1", "/q2", "/q3"]' \
	"$(deliveries "sorted(d['path'] for d in ds if d['json']['job_id'] == '$id5')")" \
	"each webhook got the result"

say "a response field that is not UTF-8 reaches the webhook as ISO-8859-1"
s=$(job -H "X-EZTHROTTLE-WEBHOOK: $R/latin" "$O/headers?X-Latin=caf%E9")
assert_eq 202 "$s" "job with a latin-1 response field"
idl=$(json "$TMP/body" 'd["job_id"]')
wait_for "any(d['json']['job_id'] == '$idl' for d in ds)" 10 ||
	fail "no delivery of $idl"
assert_eq "café" "$(deliveries "[d['json']['response']['headers'].get('x-latin', 'missing') for d in ds if d['json']['job_id'] == '$idl'][0]")" \
	"latin-1 field in the payload"

say "a second daemon on the same state directory refuses to start"
s=0
timeout 20 "$SLUICED" -c "$TMP/sluice.yaml" -l 127.0.0.1:0 -a 127.0.0.1:0 \
	-s "$TMP/state" 2> "$TMP/second.log" || s=$?
assert_ne 0 "$s" "second daemon's exit status"
[ "$s" != 124 ] || fail "the second daemon ran instead of refusing"
assert_grep "another sluiced is using the job store" "$TMP/second.log" \
	"second daemon's message"
assert_serving "a second daemon refused"

say "no credential in the daemon's log"
assert_no_grep 'sekrit|other-70' "$TMP/sluiced.log" "credential in the log"
assert_serving "jobs"
stop_sluiced
assert_eq 0 "$SLUICED_STATUS" "exit status after SIGTERM"
say "ok"
