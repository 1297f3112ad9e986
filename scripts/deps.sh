# shellcheck shell=sh
# Sourced by scripts/run, scripts/test and scripts/bench: install what is
# missing.
# Debian package names; apt-get runs only when something is missing.

SLUICE_BUILD_DEPS="autoconf automake pkg-config make gcc libc6-dev \
libmicrohttpd-dev libcurl4-openssl-dev libssl-dev libyaml-dev \
libsqlite3-dev libjansson-dev libsystemd-dev uthash-dev"
# nodejs and npm: undici for the HTTPS tests (t/integration/lib.sh
# node_undici installs it); python3-requests for https_client.py; systemd
# for systemd-analyze (85-install checks the unit; it works without
# systemd running); build-essential, dpkg-dev and debhelper for 86-deb
# (dpkg-buildpackage; systemd is also a Build-Depends).
SLUICE_TEST_DEPS="check mandoc python3 curl wget openssl nodejs npm \
python3-prometheus-client \
python3-requests systemd build-essential dpkg-dev debhelper"
# scripts/bench: the load generator and the peers it measures sluiced
# against (bench/peers/run.sh); nginx is the origin too. Installed by
# deps_install_no_start with SLUICE_BENCH_SERVICES.
SLUICE_BENCH_DEPS="wrk curl python3 procps iproute2 tinyproxy squid \
nginx haproxy"
SLUICE_BENCH_SERVICES="tinyproxy squid nginx haproxy"

# deps_missing PACKAGE...: sets missing to those not installed.
deps_missing() {
	missing=""
	# What installed packages provide counts as installed: NodeSource's
	# nodejs provides (and conflicts with) npm.
	provided=$(dpkg-query -W -f='${db:Status-Abbrev}|${Provides}\n' \
		2>/dev/null | sed -n 's/^ii *|//p' | tr ',' '\n' |
		sed 's/^ *//; s/ .*//' | sort -u)
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'install ok installed' ||
			printf '%s\n' "$provided" | grep -qx -e "$p" ||
			missing="$missing $p"
	done
}

# deps_install PACKAGE...: installs those missing (apt-get, as root or
# through sudo).
deps_install() {
	deps_missing "$@"
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" != 0 ]; then
		if command -v sudo >/dev/null 2>&1; then
			SUDO=sudo
		else
			echo "missing packages:$missing (run as root to install)" >&2
			return 1
		fi
	else
		SUDO=
	fi
	echo "installing:$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq >&2 || true
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -qq --no-install-recommends $missing >&2
}

# deps_install_no_start "SERVICES" PACKAGE...: deps_install for packages
# that ship a daemon the caller starts itself (the bench peers, on
# 127.0.0.1 with their own configuration): apt-get runs under a
# policy-rc.d that forbids every service start (exit 101), and afterwards
# each of SERVICES whose package (same name) was just installed is
# stopped and disabled. Services installed before are left alone.
deps_install_no_start() {
	services=$1
	shift
	deps_missing "$@"
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" != 0 ]; then
		echo "missing packages:$missing (run as root to install them" \
			"without starting their services)" >&2
		return 1
	fi
	new=$missing
	policy=/usr/sbin/policy-rc.d
	saved=""
	if [ -e "$policy" ]; then
		saved=$(mktemp) || return 1
		cp -p "$policy" "$saved"
	fi
	printf '#!/bin/sh\n# scripts/deps.sh: no service starts\nexit 101\n' \
		>"$policy"
	chmod 755 "$policy"
	rc=0
	deps_install "$@" || rc=$?
	if [ -n "$saved" ]; then
		cp -p "$saved" "$policy"
		rm -f "$saved"
	else
		rm -f "$policy"
	fi
	for s in $services; do
		case " $new " in
		*" $s "*) ;;
		*) continue ;;
		esac
		if [ -d /run/systemd/system ]; then
			systemctl stop "$s" >/dev/null 2>&1 || true
		elif [ -x "/etc/init.d/$s" ]; then
			"/etc/init.d/$s" stop >/dev/null 2>&1 || true
		fi
		if command -v systemctl >/dev/null 2>&1; then
			systemctl disable "$s" >/dev/null 2>&1 || true
		fi
		update-rc.d "$s" disable >/dev/null 2>&1 || true
	done
	return "$rc"
}

# Configures and builds into $1 with the configure arguments that follow.
build_tree() {
	dir=$1
	shift
	top=$(cd "$(dirname "$0")/.." && pwd)
	if [ ! -x "$top/configure" ] || [ "$top/configure.ac" -nt "$top/configure" ]; then
		(cd "$top" && autoreconf -fi) >&2
	fi
	mkdir -p "$dir"
	if [ ! -f "$dir/Makefile" ] || [ "$top/configure" -nt "$dir/Makefile" ]; then
		(cd "$dir" && "$top/configure" -q "$@") >&2
	fi
	make -C "$dir" -j"$(nproc)" >&2
}
