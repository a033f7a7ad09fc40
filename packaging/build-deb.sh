#!/bin/sh
# Build the Debian packages (panda2mqtt, panda2mqtt-sim) from this source tree.
#
# The packaging lives in packaging/debian. This script copies the sources (no
# .git, no build directories) to a temporary tree, copies packaging/debian there
# as ./debian, runs "dpkg-buildpackage -us -uc -b" in it and puts the .deb,
# .changes and .buildinfo files in OUTDIR (default: build-deb/).
#
# Usage: packaging/build-deb.sh [--install-deps] [--arch ARCH] [OUTDIR]
#   --install-deps   first install the build dependencies (apt-get build-dep, as root)
#   --arch ARCH      build for the Debian architecture ARCH (arm64, armhf, ...) with
#                    Debian's multiarch cross toolchain (dpkg-buildpackage -a ARCH);
#                    with --install-deps: dpkg --add-architecture ARCH,
#                    crossbuild-essential-ARCH and the :ARCH build dependencies.
#                    Default: the machine's own architecture (a native build).
# Needs: dpkg-dev, debhelper (and the Build-Depends of packaging/debian/control).
# apt waits for a lock held by another apt (DPkg::Lock::Timeout) and is retried.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
deps=0
arch=""
while [ $# -gt 0 ]; do
	case $1 in
	--install-deps) deps=1 ;;
	--arch) [ $# -ge 2 ] || { echo "build-deb: --arch needs a value" >&2; exit 2; }
		arch=$2; shift ;;
	--arch=*) arch=${1#--arch=} ;;
	-h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "build-deb: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
	shift
done
out=${1:-$src/build-deb}
build_arch=$(dpkg --print-architecture)
[ -n "$arch" ] || arch=$build_arch
cross=0
[ "$arch" = "$build_arch" ] || cross=1

# The Debian upstream version must be the project's version.
ver=$(sed -n 's/^panda2mqtt (\([^-)]*\).*/\1/p;q' "$src/packaging/debian/changelog")
grep -q "project(panda2mqtt VERSION $ver " "$src/CMakeLists.txt" || {
	echo "build-deb: packaging/debian/changelog says $ver, CMakeLists.txt disagrees" >&2
	exit 1
}

tmp=$(mktemp -d /tmp/panda2mqtt-deb.XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM
tree="$tmp/panda2mqtt-$ver"
mkdir "$tree"
tar -C "$src" --exclude=./.git --exclude='./build*' --exclude=./debian \
	--exclude=__pycache__ -cf - . | tar -C "$tree" -xf -
cp -a "$src/packaging/debian" "$tree/debian"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
apt_get() { # another apt may hold the lock: wait for it, and try three times
	n=0
	until DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=900 "$@"; do
		n=$((n + 1))
		[ "$n" -lt 3 ] || return 1
		echo "build-deb: apt-get $1 failed, again in 15 s" >&2
		sleep 15
	done
}

if [ "$deps" = 1 ]; then
	if [ "$cross" = 1 ] && ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
		$SUDO dpkg --add-architecture "$arch"
	fi
	apt_get update -qq || echo "$0: apt-get update reported errors; going on with the lists there are" >&2
	if [ "$cross" = 1 ]; then
		apt_get install -y -qq --no-install-recommends dpkg-dev debhelper \
			"crossbuild-essential-$arch"
		# bookworm's libwebsockets-dev is Multi-Arch: same but its lws_config.h differs
		# between architectures in one line, LWS_INSTALL_LIBDIR (where the library
		# itself looks for its event-loop plugins; nothing that includes it reads it), so
		# dpkg refuses the :ARCH one next to the native one. The native header is kept.
		keep=""
		[ -e /usr/include/lws_config.h ] &&
			keep="-o DPkg::Options::=--path-exclude=/usr/include/lws_config.h"
		# shellcheck disable=SC2086
		apt_get $keep build-dep -y -qq -a "$arch" "$tree"
	else
		apt_get install -y -qq --no-install-recommends dpkg-dev debhelper
		apt_get build-dep -y -qq "$tree"
	fi
fi

if [ "$cross" = 1 ]; then
	# The build's own smoke test runs the binary: left to tools/test-cross.sh (qemu).
	host=$(dpkg-architecture -a"$arch" -qDEB_HOST_GNU_TYPE 2>/dev/null)
	(cd "$tree" && CC="$host-gcc" DEB_BUILD_OPTIONS="nocheck ${DEB_BUILD_OPTIONS:-}" \
		dpkg-buildpackage -us -uc -b -a "$arch" -Pcross,nocheck)
else
	(cd "$tree" && dpkg-buildpackage -us -uc -b)
fi
mkdir -p "$out"
cp "$tmp"/*.deb "$tmp"/*.changes "$tmp"/*.buildinfo "$out"/
echo "build-deb: packages in $out:"
ls -1 "$out"/*_"$arch".deb
