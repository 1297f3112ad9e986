# shellcheck shell=sh
# Sourced by scripts/run and scripts/test: install what is missing.
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
SLUICE_BENCH_DEPS="wrk tinyproxy"

deps_install() {
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
