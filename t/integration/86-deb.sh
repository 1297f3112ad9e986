#!/usr/bin/env bash
# 86-deb: the Debian package. "make distdir" copies the distributed files
# to $TMP (so debian/ must be in the tarball) and "dpkg-buildpackage -us
# -uc -b" builds there (it writes the .deb to the parent directory, in
# $TMP too). The .deb holds /usr/sbin/sluiced, /usr/bin/sluicectl, the man
# pages, sluiced.service in systemd's unit directory (naming /usr/sbin and
# /etc) and /etc/sluice/sluice.yaml, a conffile; its Depends are resolved.
# Its maintainer scripts, run against stand-ins for deb-systemd-helper and
# systemctl, neither enable nor start the unit on a fresh install, restart
# it on upgrade when the administrator enabled it, and stop it on remove.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

BUILD=$(cd "$T_BUILD/.." && pwd)
SRC=$(cd "$T_SRC/.." && pwd)
[ -f "$BUILD/Makefile" ] ||
	skip "no Makefile in $BUILD: run under make check, or set T_BUILD"
for tool in dpkg-buildpackage dpkg-deb dh deb-systemd-invoke; do
	command -v "$tool" > /dev/null ||
		skip "$tool is not installed (Debian: dpkg-dev, debhelper)"
done
NOMAKE=(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES)

say "make distdir"
W=$TMP/src/sluice
mkdir "$TMP/src"
"${NOMAKE[@]}" make -s -C "$BUILD" distdir distdir="$W" top_distdir="$W" \
	> "$TMP/distdir.log" 2>&1 ||
	fail "make distdir: $(tail -n 30 "$TMP/distdir.log")"
[ -x "$W/debian/rules" ] || fail "debian/rules is not in the distribution"
chmod -R u+w "$W"
RC=0
(cd "$W" && dpkg-checkbuilddeps) > "$TMP/builddeps.log" 2>&1 || RC=$?
[ "$RC" -eq 0 ] || skip "$(cat "$TMP/builddeps.log")"

say "dpkg-buildpackage -us -uc -b"
RC=0
(cd "$W" && DEB_BUILD_OPTIONS=nocheck timeout 600 nice -n 10 \
	"${NOMAKE[@]}" dpkg-buildpackage -us -uc -b) > "$TMP/build.log" 2>&1 ||
	RC=$?
[ "$RC" -eq 0 ] || fail "dpkg-buildpackage: exit $RC: $(tail -n 40 "$TMP/build.log")"
DEB=$(find "$TMP/src" -maxdepth 1 -name 'sluice_*.deb')
[ -f "$DEB" ] || fail "no sluice_*.deb in $TMP/src: $(ls "$TMP/src")"
say "built $(basename "$DEB")"

dpkg-deb -c "$DEB" | awk '{ print $1, $6 }' | sed 's| \./| /|' > "$TMP/contents"
dpkg-deb -x "$DEB" "$TMP/x"
dpkg-deb -e "$DEB" "$TMP/ctl"

# assert_in_deb PATH MODE: the package holds the file PATH, mode MODE
# (ls -l form, as dpkg-deb -c prints it).
assert_in_deb() {
	assert_grep "^$2 ${1//./\\.}\$" "$TMP/contents" "$1 in the package"
}
assert_in_deb /usr/sbin/sluiced -rwxr-xr-x
assert_in_deb /usr/bin/sluicectl -rwxr-xr-x
assert_in_deb /usr/share/man/man8/sluiced.8.gz -rw-r--r--
assert_in_deb /usr/share/man/man5/sluice.yaml.5.gz -rw-r--r--
assert_in_deb /usr/share/man/man1/sluicectl.1.gz -rw-r--r--
assert_in_deb /etc/sluice/sluice.yaml -rw-r--r--
cmp -s "$SRC/etc/sluice.yaml" "$TMP/x/etc/sluice/sluice.yaml" ||
	fail "/etc/sluice/sluice.yaml in the package is not etc/sluice.yaml"
assert_grep '^/etc/sluice/sluice\.yaml$' "$TMP/ctl/conffiles" "conffiles"

# systemd.pc's directory: /lib/systemd/system (bookworm) or
# /usr/lib/systemd/system (later releases).
UNIT=$(grep -E -o ' (/usr)?/lib/systemd/system/sluiced\.service$' \
	"$TMP/contents" | tr -d ' ') ||
	fail "no sluiced.service in the package: $(cat "$TMP/contents")"
say "unit $UNIT"
assert_grep '^ExecStart=/usr/sbin/sluiced -c /etc/sluice/sluice\.yaml$' \
	"$TMP/x$UNIT" "the unit's ExecStart"

assert_grep '^Package: sluice$' "$TMP/ctl/control" "control: Package"
assert_grep '^Depends: .*libc6' "$TMP/ctl/control" "control: Depends"
assert_no_grep '\$\{' "$TMP/ctl/control" "control: substitutions"

say "the packaged sluiced accepts the packaged configuration"
RC=0
timeout 30 "$TMP/x/usr/sbin/sluiced" -t -c "$TMP/x/etc/sluice/sluice.yaml" \
	> "$TMP/check.out" 2> "$TMP/check.err" || RC=$?
assert_eq 0 "$RC" "packaged sluiced -t: $(head -c 800 "$TMP/check.err")"

# --- maintainer scripts --------------------------------------------------
#
# Run with stand-ins first in PATH: deb-systemd-helper and systemctl log
# their arguments and answer as told by FAKE_* (nothing on this machine
# is enabled, started or stopped); the real deb-systemd-invoke decides
# what reaches systemctl, with no policy-rc.d (one that says "never", as
# in containers, would hide what the scripts ask for). The scripts'
# "is systemd running" test looks at $TMP/run/systemd/system instead.
FAKE=$TMP/fakebin
mkdir -p "$FAKE" "$TMP/run/systemd/system" "$TMP/dpkgroot"
cat > "$FAKE/deb-systemd-helper" <<EOF
#!/bin/sh
echo "\$*" >> "$TMP/helper.log"
for a; do
	case \$a in
	debian-installed) exit "\$FAKE_INSTALLED" ;;
	was-enabled) exit "\$FAKE_WAS_ENABLED" ;;
	esac
done
exit 0
EOF
cat > "$FAKE/systemctl" <<EOF
#!/bin/sh
echo "\$*" >> "$TMP/systemctl.log"
for a; do
	case \$a in
	is-enabled) echo "\$FAKE_ENABLED"; [ "\$FAKE_ENABLED" = enabled ]; exit ;;
	is-active) [ "\$FAKE_ACTIVE" = 1 ] && exit 0; exit 3 ;;
	esac
done
exit 0
EOF
cat > "$FAKE/deb-systemd-invoke" <<EOF
#!/bin/sh
DPKG_ROOT=$TMP/dpkgroot exec "$(command -v deb-systemd-invoke)" "\$@"
EOF
chmod +x "$FAKE"/*

# maint SCRIPT ARGS...: runs the package's maintainer script SCRIPT (if it
# has one) with the stand-ins; their logs start empty.
maint() {
	local script=$1
	shift
	: > "$TMP/helper.log"
	: > "$TMP/systemctl.log"
	[ -f "$TMP/ctl/$script" ] || return 0
	grep -q '/usr/bin/deb-systemd-\|/bin/systemctl' "$TMP/ctl/$script" &&
		grep -v 'if \[ -x "/usr/bin/deb-systemd-helper" \]' \
			"$TMP/ctl/$script" | grep -q '/usr/bin/deb-systemd-\|/bin/systemctl' &&
		fail "$script calls a helper by its path: the stand-ins would not be used"
	sed "s|/run/systemd/system|$TMP/run/systemd/system|g" \
		"$TMP/ctl/$script" > "$TMP/$script"
	RC=0
	PATH=$FAKE:$PATH sh -e "$TMP/$script" "$@" > "$TMP/$script.out" 2>&1 ||
		RC=$?
	assert_eq 0 "$RC" "$script $*: $(cat "$TMP/$script.out")"
}

say "fresh install: the unit is neither enabled nor started"
FAKE_INSTALLED=1 FAKE_WAS_ENABLED=0 FAKE_ENABLED=disabled FAKE_ACTIVE=0
export FAKE_INSTALLED FAKE_WAS_ENABLED FAKE_ENABLED FAKE_ACTIVE
maint preinst install
maint postinst configure
assert_no_grep '(^| )enable( |$)' "$TMP/helper.log" "deb-systemd-helper on install"
assert_no_grep '(^| )(enable|start|restart|reload)( |$)' "$TMP/systemctl.log" \
	"systemctl on install"

say "upgrade of an enabled, running unit: restarted"
FAKE_INSTALLED=0 FAKE_WAS_ENABLED=0 FAKE_ENABLED=enabled FAKE_ACTIVE=1
maint preinst upgrade 0.0.1
assert_no_grep '(^| )stop( |$)' "$TMP/systemctl.log" "systemctl in preinst upgrade"
maint postinst configure 0.0.1
assert_grep '(^| )restart .*sluiced\.service' "$TMP/systemctl.log" \
	"systemctl on upgrade"

say "remove: stopped"
maint prerm remove
assert_grep '(^| )stop .*sluiced\.service' "$TMP/systemctl.log" \
	"systemctl on remove"
say "ok"
