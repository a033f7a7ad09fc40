#!/bin/bash
# Cross-built packages proven under emulation (CI, as root on Debian bookworm amd64):
#  1. packaging/build-deb.sh --arch ARCH: the Debian packages for ARCH, cross-built with
#     Debian's multiarch (crossbuild-essential-ARCH, the :ARCH -dev packages);
#  2. lintian on them (errors fail, as for the native package);
#  3. a cross CMake build of the unit tests, run under qemu-user (ctest, through
#     CMAKE_CROSSCOMPILING_EMULATOR);
#  4. the package's own daemon (extracted from the .deb) under qemu-user against the
#     native simulator, a native mosquitto and the machine's avahi-daemon:
#     tests/cross/test_emulated.py (found by DNS-SD, valid discovery, state, a command,
#     clean stop) and tests/integration/test_gateway.py.
# Each step's duration is printed; each is bounded (the package build 30 min, as apt may
# wait for another apt's lock; every ctest test has its TIMEOUT). The last lines are
# "test-cross ARCH: PASS" (or FAIL) and a count line.
#
# Usage: tools/test-cross.sh [--install-deps] [ARCH]     ARCH: arm64 (default), armhf
#   --install-deps  dpkg --add-architecture ARCH, the cross toolchain and :ARCH libraries,
#                   qemu-user-static, lintian (apt-get waits for a lock another apt holds)
# Env: P2M_NATIVE_BUILD (default build/): the native build with the simulator; configured
#      and built here when missing.
# Build directories: build-ARCH/ (cross CMake build), build-ARCH/deb (packages).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
deps=0
[ "${1:-}" = --install-deps ] && { deps=1; shift; }
arch=${1:-arm64}
native=$(dpkg --print-architecture)
[ "$arch" != "$native" ] || { echo "test-cross: $arch is this machine's own architecture" >&2; exit 2; }
triplet=$(dpkg-architecture -a"$arch" -qDEB_HOST_GNU_TYPE 2>/dev/null)
cpu=$(dpkg-architecture -a"$arch" -qDEB_HOST_GNU_CPU 2>/dev/null)
case $cpu in
arm) qemu="qemu-arm-static" ;;
*) qemu="qemu-$cpu-static" ;;
esac
out=$root/build-$arch
native_build=${P2M_NATIVE_BUILD:-$root/build}
jobs=$(nproc 2>/dev/null || echo 2)
passed=0
t_all=$(date +%s)

step_start() { t_step=$(date +%s); echo "== test-cross $arch: $*"; }
ok() {
	passed=$((passed + 1))
	echo "ok $passed - $* ($(($(date +%s) - t_step)) s)"
}
fail() {
	echo "not ok - $*"
	echo "test-cross $arch: FAIL: $*"
	echo "cross-$arch: $passed passed, 1 failed"
	exit 1
}
apt_get() { # another apt may hold the lock: wait for it, and try three times
	local n=0
	until DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 "$@"; do
		n=$((n + 1))
		[ "$n" -lt 3 ] || return 1
		sleep 15
	done
}

mkdir -p "$out"
if [ "$deps" = 1 ]; then
	step_start "dependencies (multiarch $arch, $triplet toolchain, $qemu)"
	[ "$(id -u)" -eq 0 ] || fail "--install-deps needs root"
	dpkg --print-foreign-architectures | grep -qx "$arch" || dpkg --add-architecture "$arch"
	apt_get update -qq >"$out/apt.log" 2>&1 ||
		echo "test-cross: apt-get update reported errors (see $out/apt.log); going on" >&2
	apt_get install -y -qq --no-install-recommends qemu-user-static lintian dpkg-dev \
		debhelper "crossbuild-essential-$arch" "libcmocka-dev:$arch" >>"$out/apt.log" 2>&1 ||
		fail "apt-get install (see $out/apt.log)"
	ok "dependencies"
fi

step_start "packaging/build-deb.sh $([ "$deps" = 1 ] && echo --install-deps) --arch $arch"
rm -rf "$out/deb"
# shellcheck disable=SC2046
timeout 1800 packaging/build-deb.sh $([ "$deps" = 1 ] && echo --install-deps) --arch "$arch" "$out/deb" \
	>"$out/build-deb.log" 2>&1 || { tail -n 30 "$out/build-deb.log"; fail "package build (see $out/build-deb.log)"; }
deb=$(ls "$out"/deb/panda2mqtt_*_"$arch".deb)
ok "built $(cd "$out/deb" && ls ./*_"$arch".deb | tr '\n' ' ')"

step_start "lintian"
lintian --fail-on error --display-info "$out"/deb/*.changes >"$out/lintian.log" 2>&1 ||
	{ cat "$out/lintian.log"; fail "lintian reports errors"; }
cat "$out/lintian.log"
ok "lintian: no errors ($(grep -c '^W:' "$out/lintian.log" || true) warnings)"

rm -rf "$out/root"
dpkg-deb -x "$deb" "$out/root"
gateway=$out/root/usr/sbin/panda2mqtt
"$qemu" "$gateway" --version | grep -q "^panda2mqtt " || fail "$qemu $gateway --version"
"$qemu" "$gateway" --check-config -c etc/panda2mqtt.ini >/dev/null ||
	fail "the packaged daemon under $qemu rejects etc/panda2mqtt.ini"

if [ ! -x "$native_build/panda2mqtt-sim" ]; then
	step_start "native build for the simulator ($native_build)"
	cmake -S . -B "$native_build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build "$native_build" -j "$jobs" >/dev/null || fail "native build"
	ok "native build"
fi

step_start "cross CMake build ($triplet-gcc) and unit tests under $qemu"
cmake -S . -B "$out/cmake" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR="$cpu" \
	-DCMAKE_C_COMPILER="$triplet-gcc" -DPKG_CONFIG_EXECUTABLE="/usr/bin/$triplet-pkg-config" \
	-DCMAKE_CROSSCOMPILING_EMULATOR="$(command -v "$qemu")" \
	-DP2M_NATIVE_BUILD_DIR="$native_build" -DP2M_CROSS_GATEWAY="$gateway" \
	>"$out/cmake.log" 2>&1 || { tail -n 30 "$out/cmake.log"; fail "cmake (see $out/cmake.log)"; }
cmake --build "$out/cmake" -j "$jobs" >>"$out/cmake.log" 2>&1 ||
	{ tail -n 30 "$out/cmake.log"; fail "cross build (see $out/cmake.log)"; }
file -b "$out/cmake/tests/test_config" 2>/dev/null | cut -d, -f1-2 || true
ctest --test-dir "$out/cmake" --output-on-failure -R '^unit\.' || fail "unit tests under $qemu"
ok "unit tests under $qemu"

step_start "the package's daemon under $qemu: tests/cross/test_emulated.py, test_gateway.py"
ctest --test-dir "$out/cmake" --output-on-failure -V -R '^emulated\.' >"$out/emulated.log" 2>&1 ||
	{ tail -n 80 "$out/emulated.log"; fail "the emulated daemon's tests (see $out/emulated.log)"; }
grep -E '^[0-9]+: (Ran|OK|FAILED)|daemon .*: |found and online' "$out/emulated.log" || true
grep -E 'Test +#|tests passed' "$out/emulated.log" || true
ok "the $arch package's daemon under $qemu"

echo "test-cross $arch: PASS in $(($(date +%s) - t_all)) s"
echo "cross-$arch: $passed passed, 0 failed"
