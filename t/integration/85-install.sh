#!/usr/bin/env bash
# 85-install: "make install DESTDIR=..." from the build tree puts sluiced
# (sbin), sluicectl (bin), the three man pages, the example configuration
# and the systemd unit where configure said, with modes 0755 and 0644. The
# unit names the configured sbindir and sysconfdir, passes
# "systemd-analyze verify" (its man pages found where they were
# installed) and stays below exposure 2.0 in "systemd-analyze security".
# The installed sluiced accepts the installed configuration (-t). A
# reinstall keeps an edited configuration; uninstall removes everything
# but an edited configuration.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

BUILD=$(cd "$T_BUILD/.." && pwd)
SRC=$(cd "$T_SRC/.." && pwd)
[ -f "$BUILD/Makefile" ] ||
	skip "no Makefile in $BUILD: run under make check, or set T_BUILD"
DEST=$TMP/root

# bmake ARGS...: make in the build tree, on its own: not a part of the
# make that runs the tests (its jobserver is not ours to use).
bmake() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES \
		make -s -C "$BUILD" "$@"
}

# The installation directories, as make expands them.
bmake -f Makefile -f - sluice-print-dirs > "$TMP/dirs" <<'EOF'
sluice-print-dirs:
	@echo 'bindir=$(bindir)'
	@echo 'sbindir=$(sbindir)'
	@echo 'sysconfdir=$(sysconfdir)'
	@echo 'mandir=$(mandir)'
	@echo 'systemdsystemunitdir=$(systemdsystemunitdir)'
EOF
dir() {
	sed -n "s/^$1=//p" "$TMP/dirs"
}
BINDIR=$(dir bindir)
SBINDIR=$(dir sbindir)
SYSCONFDIR=$(dir sysconfdir)
MANDIR=$(dir mandir)
UNITDIR=$(dir systemdsystemunitdir)
for d in "$BINDIR" "$SBINDIR" "$SYSCONFDIR" "$MANDIR"; do
	case "$d" in /*) ;; *) error "installation directory '$d' in $TMP/dirs" ;; esac
done
say "bindir=$BINDIR sbindir=$SBINDIR sysconfdir=$SYSCONFDIR unitdir=${UNITDIR:-none}"

# install_tree WHAT: make install into $DEST.
install_tree() {
	bmake install DESTDIR="$DEST" > "$TMP/install.log" 2>&1 ||
		fail "$1: make install: $(tail -n 30 "$TMP/install.log")"
}

# assert_file PATH MODE: $DEST/PATH is a regular file of mode MODE.
assert_file() {
	[ -f "$DEST$1" ] || fail "not installed: $1 (under $DEST)"
	assert_eq "$2" "$(stat -c %a "$DEST$1")" "mode of $1"
}

say "make install DESTDIR"
install_tree "first install"
CONF=$SYSCONFDIR/sluice/sluice.yaml
assert_file "$SBINDIR/sluiced" 755
assert_file "$BINDIR/sluicectl" 755
assert_file "$MANDIR/man8/sluiced.8" 644
assert_file "$MANDIR/man5/sluice.yaml.5" 644
assert_file "$MANDIR/man1/sluicectl.1" 644
assert_file "$CONF" 644
cmp -s "$SRC/etc/sluice.yaml" "$DEST$CONF" ||
	fail "$CONF is not etc/sluice.yaml"
version=$("$DEST$SBINDIR/sluiced" -V) || fail "installed sluiced -V failed"
assert_match '^sluiced [0-9]' "$version" "installed sluiced -V"
version=$("$DEST$BINDIR/sluicectl" -V) || fail "installed sluicectl -V failed"
assert_match '^sluicectl [0-9]' "$version" "installed sluicectl -V"

say "the installed sluiced accepts the installed configuration"
RC=0
timeout 30 "$DEST$SBINDIR/sluiced" -t -c "$DEST$CONF" > "$TMP/check.out" \
	2> "$TMP/check.err" || RC=$?
cat "$TMP/check.err" >> "$TMP/sluiced-check.log"
assert_eq 0 "$RC" "sluiced -t -c $CONF: $(head -c 800 "$TMP/check.err")"
assert_grep 'configuration ok' "$TMP/check.out" "sluiced -t message"

if [ -z "$UNITDIR" ]; then
	say "configured --with-systemdsystemunitdir=no: no unit to check"
else
	UNIT=$UNITDIR/sluiced.service
	say "the unit: $UNIT"
	assert_file "$UNIT" 644
	assert_grep "^ExecStart=$SBINDIR/sluiced -c $CONF\$" "$DEST$UNIT" \
		"ExecStart names sbindir and sysconfdir"
	assert_no_grep '@[a-z_]+@' "$DEST$UNIT" "substituted unit"
	assert_grep '^Type=notify$' "$DEST$UNIT" "Type"
	assert_grep '^StateDirectory=sluice$' "$DEST$UNIT" "StateDirectory"
	# shellcheck disable=SC2016 # a literal $MAINPID
	assert_grep '^ExecReload=/bin/kill -HUP \$MAINPID$' "$DEST$UNIT" \
		"ExecReload"
	if ! command -v systemd-analyze > /dev/null; then
		say "SKIP: systemd-analyze is not installed (Debian: systemd):" \
			"not verifying the unit"
	else
		# verify checks that ExecStart's program exists: a copy of the
		# unit names the one under $DEST. It finds the Documentation=
		# man pages through MANPATH: the installed ones.
		mkdir "$TMP/verify"
		sed "s|^ExecStart=$SBINDIR/|ExecStart=$DEST$SBINDIR/|" \
			"$DEST$UNIT" > "$TMP/verify/sluiced.service"
		RC=0
		MANPATH=$DEST$MANDIR timeout 60 systemd-analyze verify \
			"$TMP/verify/sluiced.service" > "$TMP/verify.log" 2>&1 || RC=$?
		assert_eq 0 "$RC" "systemd-analyze verify: $(cat "$TMP/verify.log")"
		assert_no_grep 'sluiced' "$TMP/verify.log" "systemd-analyze verify"
		RC=0
		timeout 60 systemd-analyze security --offline=yes \
			"$TMP/verify/sluiced.service" > "$TMP/security.log" 2>&1 ||
			RC=$?
		exposure=$(sed -n 's/.*Overall exposure level for sluiced.service: \([0-9.]*\).*/\1/p' \
			"$TMP/security.log")
		if [ -z "$exposure" ]; then
			say "systemd-analyze security --offline is not supported here"
		else
			say "systemd-analyze security: exposure $exposure"
			ge 2.0 "$exposure" ||
				fail "exposure $exposure, above 2.0: $(grep '✗' "$TMP/security.log")"
		fi
	fi
fi

say "a reinstall keeps an edited configuration"
echo "# edited" >> "$DEST$CONF"
install_tree "reinstall"
assert_grep '^# edited$' "$DEST$CONF" "configuration after a reinstall"
assert_file "$SBINDIR/sluiced" 755

say "uninstall removes everything but the edited configuration"
bmake uninstall DESTDIR="$DEST" > "$TMP/uninstall.log" 2>&1 ||
	fail "make uninstall: $(tail -n 30 "$TMP/uninstall.log")"
(cd "$DEST" && find . -type f -o -type l) | sed 's|^\.||' | sort > "$TMP/left"
assert_eq "$CONF" "$(cat "$TMP/left")" "files left after uninstall"
cp "$SRC/etc/sluice.yaml" "$DEST$CONF"
bmake uninstall DESTDIR="$DEST" > "$TMP/uninstall.log" 2>&1 ||
	fail "make uninstall: $(tail -n 30 "$TMP/uninstall.log")"
assert_eq "" "$(cd "$DEST" && find . -type f -o -type l)" \
	"files left after uninstall of the example configuration"
say "ok"
