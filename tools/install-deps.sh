#!/bin/sh
# Install what building, testing and the demo need, from Debian's packages (and aedes, a
# broker for tests/brokers, from npm into tools/brokers/node_modules).
# Usage: tools/install-deps.sh   (as root, or with sudo available)
set -eu

PACKAGES="build-essential cmake pkg-config
libwebsockets-dev libwebsockets-evlib-uv libuv1-dev libmosquitto-dev libcjson-dev
libavahi-client-dev libavahi-glib-dev libinih-dev libglib2.0-dev libssl-dev libc-ares-dev
libsystemd-dev
libcmocka-dev mosquitto mosquitto-clients python3 python3-paho-mqtt python3-websockets jq python3-yaml
openssl
dbus avahi-daemon avahi-utils
clang libclang-rt-14-dev llvm-14
rabbitmq-server"

here=$(cd "$(dirname "$0")" && pwd)
# aedes, the second broker of tests/brokers, from npm (tools/brokers/package-lock.json)
aedes() {
	[ -d "$here/brokers/node_modules/aedes" ] && return 0
	command -v npm >/dev/null || { echo "install-deps: npm is needed for aedes" >&2; return 1; }
	(cd "$here/brokers" && npm ci --no-audit --no-fund --loglevel=error)
}

# "dpkg -s NAME" fails for a library installed for two architectures (multiarch, as
# tools/test-cross.sh sets up): then ask for the native one.
native=$(dpkg --print-architecture)
missing=""
for p in $PACKAGES; do
	dpkg -s "$p" >/dev/null 2>&1 || dpkg -s "$p:$native" >/dev/null 2>&1 ||
		missing="$missing $p"
done
[ -z "$missing" ] && { aedes; exit 0; }

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing:$missing"
# another apt may hold the lock: wait for it (DPkg::Lock::Timeout), and try three times
apt_get() {
	n=0
	until DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=900 "$@"; do
		n=$((n + 1))
		[ "$n" -lt 3 ] || return 1
		sleep 15
	done
}
apt_get update -qq || echo "$0: apt-get update reported errors; going on with the lists there are" >&2
# shellcheck disable=SC2086
apt_get install -y -qq --no-install-recommends $missing
aedes
