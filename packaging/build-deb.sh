#!/bin/sh
# Build the Debian packages (panda2mqtt, panda2mqtt-sim) from this source tree.
#
# The packaging lives in packaging/debian. This script copies the sources (no
# .git, no build directories) to a temporary tree, copies packaging/debian there
# as ./debian, runs "dpkg-buildpackage -us -uc -b" in it and puts the .deb,
# .changes and .buildinfo files in OUTDIR (default: build-deb/).
#
# Usage: packaging/build-deb.sh [--install-deps] [OUTDIR]
#   --install-deps   first install the build dependencies (apt-get build-dep, as root)
# Needs: dpkg-dev, debhelper (and the Build-Depends of packaging/debian/control).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
deps=0
[ "${1:-}" = --install-deps ] && { deps=1; shift; }
out=${1:-$src/build-deb}

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

if [ "$deps" = 1 ]; then
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
		dpkg-dev debhelper
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get build-dep -y -qq "$tree"
fi

(cd "$tree" && dpkg-buildpackage -us -uc -b)
mkdir -p "$out"
cp "$tmp"/*.deb "$tmp"/*.changes "$tmp"/*.buildinfo "$out"/
echo "build-deb: packages in $out:"
ls -1 "$out"/*.deb
