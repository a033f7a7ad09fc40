#!/bin/bash
# The Home Assistant add-on image, built for real and run (CI, as root on Debian bookworm):
#  1. debootstrap a Debian bookworm root (minbase) from this machine's own apt mirror
#     (the sources apt uses here: bookworm, bookworm-updates, bookworm-security);
#  2. make it a base image with buildah (vfs storage in build-addon/, chroot isolation,
#     no daemon): it stands in for Home Assistant's ghcr.io/home-assistant/*-base-debian,
#     which cannot be fetched here;
#  3. build addon/panda2mqtt/Dockerfile from the repository root, as its header says
#     (buildah bud, BUILD_FROM = that base);
#  4. run the add-on in that image against the native simulator and a native mosquitto
#     with a password: tests/image/test_addon_image.py writes the add-on's options
#     (/data/options.json) and the Supervisor's MQTT answer, and starts the add-on's own
#     s6 run script (rootfs/etc/services.d/panda2mqtt/run, which calls
#     panda2mqtt-addon-config) under tests/image/bashio-stub.sh, a test stand-in for the
#     few bashio functions the script calls (Home Assistant's base image has bashio).
# Each step's duration is printed, and each has a time bound (debootstrap 20 min, the
# image build 30 min, the run 10 min); the last lines are "test-addon-image: PASS" (or FAIL)
# and a count line. The base root is kept in build-addon/ and reused while the mirror's
# bookworm Release is unchanged; the images are rebuilt every time.
#
# Usage: tools/test-addon-image.sh [--install-deps]
#   --install-deps  apt-get install debootstrap buildah (waits for another apt's lock)
# Env: P2M_NATIVE_BUILD (default build/): the native build whose simulator plays the device
#      (configured and built here when missing); P2M_ADDON_KEEP=1 keeps the images.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$root/build-addon
native_build=${P2M_NATIVE_BUILD:-$root/build}
base_image=localhost/p2m-test-bookworm-base
addon_image=localhost/p2m-test-addon
passed=0
t_all=$(date +%s)
# buildah with its own storage, so nothing is shared with other users of buildah here
store=(--root "$work/storage" --runroot "$work/runroot" --storage-driver vfs)
export BUILDAH_ISOLATION=chroot

step_start() { t_step=$(date +%s); echo "== test-addon-image: $*"; }
ok() {
	passed=$((passed + 1))
	echo "ok $passed - $* ($(($(date +%s) - t_step)) s)"
}
fail() {
	echo "not ok - $*"
	echo "test-addon-image: FAIL: $*"
	echo "addon-image: $passed passed, 1 failed"
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
[ "$(id -u)" -eq 0 ] || fail "needs root (debootstrap, buildah's chroot isolation)"
mkdir -p "$work"

if [ "${1:-}" = --install-deps ]; then
	step_start "dependencies"
	missing=""
	for p in debootstrap buildah; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
	if [ -n "$missing" ]; then
		apt_get update -qq >"$work/apt.log" 2>&1 ||
			echo "test-addon-image: apt-get update reported errors; going on" >&2
		# shellcheck disable=SC2086
		apt_get install -y -qq --no-install-recommends $missing >>"$work/apt.log" 2>&1 ||
			fail "apt-get install$missing (see $work/apt.log)"
	fi
	ok "dependencies"
fi

# This machine's mirror, as apt uses it: "URI SUITE" for the bookworm suites.
sources=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Created-By: Packages' \
	2>/dev/null | sort -u | grep -E ' bookworm(-updates|-security)?$' || true)
mirror=$(echo "$sources" | awk '$2 == "bookworm" {print $1; exit}')
[ -n "$mirror" ] || fail "no bookworm source in this machine's apt configuration"

step_start "debootstrap bookworm from $mirror"
rootfs=$work/rootfs
stamp=$work/rootfs.release
# the mirror's bookworm Release date: the root is made again when it changes
release=$(sed -n 's/^Date: //p' /var/lib/apt/lists/*_dists_bookworm_InRelease 2>/dev/null |
	head -n 1)
if [ -f "$rootfs/etc/debian_version" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$release" ]; then
	ok "debootstrap: reusing $rootfs (mirror release $release)"
else
	rm -rf "$rootfs" "$stamp"
	timeout 1200 debootstrap --variant=minbase bookworm "$rootfs" "$mirror" \
		>"$work/debootstrap.log" 2>&1 ||
		{ tail -n 20 "$work/debootstrap.log"; fail "debootstrap (see $work/debootstrap.log)"; }
	echo "$sources" | awk '{printf "deb %s %s main\n", $1, $2}' >"$rootfs/etc/apt/sources.list"
	rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
	echo "$release" >"$stamp"
	ok "debootstrap: $(du -sh "$rootfs" | cut -f1) in $rootfs"
fi

step_start "buildah: base image $base_image from that root"
buildah "${store[@]}" rmi -f "$addon_image" "$base_image" >/dev/null 2>&1 || true
ctr=$(buildah "${store[@]}" from scratch)
mnt=$(buildah "${store[@]}" mount "$ctr")
tar -C "$rootfs" --numeric-owner -cf - . | tar -C "$mnt" --numeric-owner -xpf -
buildah "${store[@]}" umount "$ctr" >/dev/null
buildah "${store[@]}" config --cmd /bin/bash --env LANG=C.UTF-8 "$ctr"
buildah "${store[@]}" commit -q "$ctr" "$base_image" >/dev/null
buildah "${store[@]}" rm "$ctr" >/dev/null
ok "base image $base_image"

step_start "buildah bud -f addon/panda2mqtt/Dockerfile . (BUILD_FROM=$base_image)"
timeout 1800 buildah "${store[@]}" bud --isolation chroot --pull=never --layers=false \
	-f addon/panda2mqtt/Dockerfile --build-arg "BUILD_FROM=$base_image" -t "$addon_image" . \
	>"$work/bud.log" 2>&1 || { tail -n 40 "$work/bud.log"; fail "image build (see $work/bud.log)"; }
tail -n 1 "$work/bud.log"
size=$(buildah "${store[@]}" images --format '{{.Size}}' "$addon_image" 2>/dev/null | head -n 1)
ok "add-on image $addon_image built ($size)"

step_start "what the image holds: the daemon and its run-time packages, no build tools"
ctr=$(buildah "${store[@]}" from --pull=never "$addon_image")
buildah "${store[@]}" run --isolation chroot "$ctr" -- sh -c '
	set -e
	panda2mqtt --version
	for p in panda2mqtt libwebsockets-evlib-uv avahi-daemon dbus jq ca-certificates; do
		dpkg -s "$p" >/dev/null 2>&1 || { echo "missing: $p"; exit 1; }
	done
	for p in gcc cmake dpkg-dev debhelper libwebsockets-dev; do
		if dpkg -s "$p" >/dev/null 2>&1; then echo "build package left: $p"; exit 1; fi
	done
	test -x /usr/bin/panda2mqtt-addon-config -a -x /etc/services.d/panda2mqtt/run
	echo "$(dpkg -l | grep -c "^ii") packages, /usr $(du -sh /usr | cut -f1), /var $(du -sh /var | cut -f1)"
' >"$work/contents.log" 2>&1 || { buildah "${store[@]}" rm "$ctr" >/dev/null; cat "$work/contents.log"; fail "image contents"; }
buildah "${store[@]}" rm "$ctr" >/dev/null
cat "$work/contents.log"
ok "image contents"

if [ ! -x "$native_build/panda2mqtt-sim" ]; then
	step_start "native build for the simulator ($native_build)"
	cmake -S . -B "$native_build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build "$native_build" -j "$(nproc 2>/dev/null || echo 2)" >/dev/null ||
		fail "native build"
	ok "native build"
fi

step_start "the add-on in its image: tests/image/test_addon_image.py"
P2M_BUILD_DIR=$native_build P2M_ADDON_IMAGE=$addon_image P2M_BUILDAH_ROOT=$work/storage \
	P2M_BUILDAH_RUNROOT=$work/runroot \
	timeout 600 /usr/bin/python3 -m unittest -v tests/image/test_addon_image.py 2>&1 |
	tee "$work/test.log"
[ "${PIPESTATUS[0]}" = 0 ] || fail "the add-on in its image (see $work/test.log)"
ok "the add-on's run script, INI and daemon in the image"

if [ "${P2M_ADDON_KEEP:-0}" != 1 ]; then
	buildah "${store[@]}" rmi -f "$addon_image" "$base_image" >/dev/null 2>&1 || true
fi
echo "test-addon-image: PASS in $(($(date +%s) - t_all)) s"
echo "addon-image: $passed passed, 0 failed"
