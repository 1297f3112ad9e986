#!/usr/bin/env bash
# 84-ca-reload: a reload reads the local CA again (SPEC section 9: "CA
# ... take effect"). With interception on CA 1, curl trusting CA 1 gets
# its answer; `sluicectl ca init --force` makes CA 2 and POST /reload
# answers 200: from then on, new connections get leaves signed by CA 2
# (curl trusting CA 2 gets its answer, curl trusting CA 1 fails to
# verify), the cache of CA 1's leaves dropped. An unusable CA (its key
# readable by others) fails the reload with the reason, the CA in force
# stays. A daemon that started without a CA names the new one as needing
# a restart.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

command -v openssl > /dev/null || skip "openssl is needed"
[ -x "$SLUICECTL" ] || error "SLUICECTL='$SLUICECTL' is not an executable"

start_origin
make_test_ca "$TMP/pki"
start_origin_tls "$TMP/pki/origin.pem" "$TMP/pki/origin.key" good
U=https://127.0.0.1:$TLS_ORIGIN_PORT

timeout 30 "$SLUICECTL" ca init -s "$TMP/state" > /dev/null ||
	fail "sluicectl ca init"
cp "$TMP/state/ca.pem" "$TMP/ca1.pem"
write_config - <<EOF
tls:
  upstream_ca_file: $TMP/pki/testca.pem
EOF
start_sluiced

# get CA NAME: an HTTPS request through the proxy, trusting CA; prints
# curl's status code (000 when the handshake fails).
get() {
	timeout 30 curl -sS -o /dev/null -w '%{http_code}' --max-time 20 \
		-x "$PROXY" --cacert "$1" "$U/echo/$2" 2> "$TMP/curl.err" || true
}

# reload: POST /reload; the body to $TMP/reload.json, the status printed.
reload() {
	dcurl -o "$TMP/reload.json" -w '%{http_code}' -X POST \
		"http://127.0.0.1:$ADMIN_PORT/reload"
}

say "CA 1 signs the leaves"
assert_eq 200 "$(get "$TMP/ca1.pem" one)" "through the proxy, trusting CA 1"

say "a new CA and a reload: CA 2 signs the leaves"
timeout 30 "$SLUICECTL" ca init --force -s "$TMP/state" > /dev/null ||
	fail "sluicectl ca init --force"
cp "$TMP/state/ca.pem" "$TMP/ca2.pem"
cmp -s "$TMP/ca1.pem" "$TMP/ca2.pem" && fail "ca init --force made the same CA"
assert_eq 200 "$(reload)" "POST /reload"
assert_eq '[]' "$(json "$TMP/reload.json" 'd["restart_needed"]')" \
	"restart_needed"
assert_eq 200 "$(get "$TMP/ca2.pem" two)" "trusting CA 2 after the reload"
assert_eq 000 "$(get "$TMP/ca1.pem" three)" "trusting CA 1 after the reload"
assert_grep 'certificate|verify|issuer' "$TMP/curl.err" \
	"curl says why CA 1 fails"
assert_grep 'info: tls: reload: a new local CA' "$TMP/sluiced.log" \
	"the new CA logged"

say "an unusable CA fails the reload; the one in force stays"
chmod 0644 "$TMP/state/ca-key.pem"
assert_eq 400 "$(reload)" "POST /reload with a key others can read"
assert_match 'tls: .*ca-key\.pem' "$(json "$TMP/reload.json" 'd["message"]')" \
	"the reason names the key file"
assert_eq 200 "$(get "$TMP/ca2.pem" four)" "CA 2 still signs"
chmod 0600 "$TMP/state/ca-key.pem"

say "started without a CA: a new one needs a restart"
stop_sluiced
rm -f "$TMP/state/ca.pem" "$TMP/state/ca-key.pem"
start_sluiced
timeout 30 "$SLUICECTL" ca init -s "$TMP/state" > /dev/null ||
	fail "sluicectl ca init"
assert_eq 200 "$(reload)" "POST /reload"
assert_eq '["local CA"]' "$(json "$TMP/reload.json" 'd["restart_needed"]')" \
	"restart_needed"

assert_serving "ca-reload"
say "ok"
