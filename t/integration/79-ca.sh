#!/usr/bin/env bash
# 79-ca: the local CA for HTTPS interception, made and shown by sluicectl
# without a daemon. ca init creates the state directory (0700), the key
# (0600) and the certificate (0644: a P-256 CA, pathlen 0), names the
# certificate and says how to trust it; it refuses to replace a CA unless
# --force. ca show prints the SHA-256 fingerprint openssl computes; with
# no CA it exits 1 and says to run ca init. Misplaced arguments and flags
# are usage errors (exit 2).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

[ -x "$SLUICECTL" ] || error "SLUICECTL='$SLUICECTL' is not an executable"
command -v openssl > /dev/null || skip "openssl is not installed"

D=$TMP/state

# ctl NAME ARGS...: runs sluicectl; stdout in $TMP/NAME.out, stderr in
# $TMP/NAME.err, the exit status in RC.
ctl() {
	local name=$1
	shift
	RC=0
	timeout 30 "$SLUICECTL" "$@" > "$TMP/$name.out" 2> "$TMP/$name.err" ||
		RC=$?
	# A sanitizer build reports on stderr.
	! grep -q -E 'ERROR: [A-Za-z]+Sanitizer|runtime error:' \
		"$TMP/$name.err" ||
		fail "sluicectl $*: sanitizer report: $(head -c 2000 "$TMP/$name.err")"
}

# assert_rc STATUS NAME WHAT: the last ctl run exited STATUS.
assert_rc() {
	[ "$RC" = "$1" ] || fail "$3: exit status: expected $1, got $RC;" \
		"stdout: $(head -c 500 "$TMP/$2.out");" \
		"stderr: $(head -c 500 "$TMP/$2.err")"
}

# assert_has FILE STRING WHAT: FILE contains STRING (fixed string).
assert_has() {
	grep -q -F -e "$2" "$1" ||
		fail "$3: '$2' not in $(basename "$1"): $(head -c 1500 "$1")"
}

# The SHA-256 fingerprint of the certificate, as openssl prints it.
fingerprint() {
	openssl x509 -in "$D/ca.pem" -noout -fingerprint -sha256 |
		sed 's/^[^=]*=//'
}

say "ca init: a new state directory, the files and their modes"
ctl init ca init -s "$D"
assert_rc 0 init "ca init -s DIR"
assert_grep "^created a CA in $D\$" "$TMP/init.out" "ca init: directory"
assert_grep "^path: $D/ca.pem\$" "$TMP/init.out" "ca init: certificate"
assert_has "$TMP/init.out" "$D/ca-key.pem (mode 0600" "ca init: key"
assert_has "$TMP/init.out" \
	"cp $D/ca.pem /usr/local/share/ca-certificates/sluice.crt && update-ca-certificates" \
	"ca init: system store"
assert_has "$TMP/init.out" "curl --cacert $D/ca.pem" "ca init: curl"
assert_has "$TMP/init.out" "REQUESTS_CA_BUNDLE=$D/ca.pem" \
	"ca init: Python requests"
assert_has "$TMP/init.out" "SSL_CERT_FILE=$D/ca.pem" "ca init: OpenSSL"
assert_has "$TMP/init.out" "NODE_EXTRA_CA_CERTS=$D/ca.pem" "ca init: Node"
assert_grep 'restart' "$TMP/init.out" "ca init: a restart loads it"
assert_eq 700 "$(stat -c %a "$D")" "mode of the state directory"
assert_eq 600 "$(stat -c %a "$D/ca-key.pem")" "mode of ca-key.pem"
assert_eq 644 "$(stat -c %a "$D/ca.pem")" "mode of ca.pem"
assert_eq "ca-key.pem ca.pem" "$(cd "$D" && echo *)" \
	"the state directory holds the two files only"

say "the certificate: a P-256 CA, pathlen 0, with the key beside it"
openssl x509 -in "$D/ca.pem" -noout -text > "$TMP/text" ||
	fail "openssl cannot read ca.pem"
assert_grep 'CA:TRUE, pathlen:0' "$TMP/text" "basicConstraints"
assert_grep 'X509v3 Basic Constraints: critical' "$TMP/text" \
	"basicConstraints critical"
assert_grep 'Certificate Sign, CRL Sign' "$TMP/text" "keyUsage"
assert_grep 'prime256v1' "$TMP/text" "curve"
assert_grep 'Signature Algorithm: ecdsa-with-SHA256' "$TMP/text" "signature"
assert_grep 'Subject: O = sluice, CN = sluice local CA [0-9a-f]{8}$' \
	"$TMP/text" "subject"
assert_eq "$(openssl x509 -in "$D/ca.pem" -noout -pubkey)" \
	"$(openssl pkey -in "$D/ca-key.pem" -pubout)" \
	"the key is the certificate's"
openssl verify -x509_strict -CAfile "$D/ca.pem" "$D/ca.pem" > /dev/null ||
	fail "openssl verify of the self-signed CA"
first=$(fingerprint)

say "a second ca init refuses; --force replaces the CA"
ctl again ca init -s "$D"
assert_rc 1 again "ca init over a CA"
assert_grep "$D/ca(-key)?\\.pem" "$TMP/again.err" "ca init again: the file"
assert_grep '--force' "$TMP/again.err" "ca init again: --force"
[ ! -s "$TMP/again.out" ] ||
	fail "ca init again: stdout: $(head -c 300 "$TMP/again.out")"
assert_eq "$first" "$(fingerprint)" "ca init again: the CA is unchanged"
ctl force ca init --force -s "$D"
assert_rc 0 force "ca init --force"
assert_ne "$first" "$(fingerprint)" "ca init --force: a new CA"
assert_eq 600 "$(stat -c %a "$D/ca-key.pem")" "--force: mode of ca-key.pem"
assert_eq 644 "$(stat -c %a "$D/ca.pem")" "--force: mode of ca.pem"

say "ca show: the fingerprint openssl computes"
ctl show ca show -s "$D"
assert_rc 0 show "ca show -s DIR"
assert_eq "sha256: $(fingerprint)" "$(grep '^sha256: ' "$TMP/show.out")" \
	"ca show: sha256"
assert_grep '^subject: CN=sluice local CA [0-9a-f]{8}, O=sluice$' \
	"$TMP/show.out" "ca show: subject"
assert_grep '^not after: 2[0-9]{3}-[0-9]{2}-[0-9]{2} [0-9:]{8} UTC$' \
	"$TMP/show.out" "ca show: not after"
assert_grep "^path: $D/ca.pem\$" "$TMP/show.out" "ca show: path"
RC=0
SLUICE_STATE_DIR=$D timeout 30 "$SLUICECTL" ca show > "$TMP/env.out" \
	2> "$TMP/env.err" || RC=$?
assert_rc 0 env "SLUICE_STATE_DIR=DIR ca show"
assert_eq "$(cat "$TMP/show.out")" "$(cat "$TMP/env.out")" \
	"ca show: SLUICE_STATE_DIR is the default of -s"

say "ca show without a CA: exit 1"
mkdir "$TMP/empty"
ctl empty ca show -s "$TMP/empty"
assert_rc 1 empty "ca show on an empty directory"
assert_grep "^sluicectl: no CA in $TMP/empty; run 'sluicectl ca init'\$" \
	"$TMP/empty.err" "ca show on an empty directory: message"
ctl missing ca show -s "$TMP/nowhere"
assert_rc 1 missing "ca show on a missing directory"
[ ! -e "$TMP/nowhere" ] || fail "ca show created the directory"

say "usage errors"
for args in "ca" "ca frobnicate" "ca show extra" "ca init extra" \
	"ca show --force" "-s $D status" "--force status"; do
	# shellcheck disable=SC2086
	ctl usage $args
	assert_rc 2 usage "sluicectl $args"
	assert_grep '^usage: sluicectl' "$TMP/usage.err" "sluicectl $args: usage"
done
ctl help --help
assert_rc 0 help "--help"
assert_grep '^  ca init ' "$TMP/help.out" "--help lists ca init"
assert_grep '^  ca show ' "$TMP/help.out" "--help lists ca show"
assert_grep '--state-dir DIR' "$TMP/help.out" "--help lists -s"
assert_grep '--force' "$TMP/help.out" "--help lists --force"
