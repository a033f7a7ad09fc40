#!/bin/sh
# Install what building, testing and the demo need, from Debian's packages.
# Usage: tools/install-deps.sh   (as root, or with sudo available)
set -eu

PACKAGES="build-essential cmake pkg-config
libwebsockets-dev libwebsockets-evlib-uv libuv1-dev libmosquitto-dev libcjson-dev
libavahi-client-dev libavahi-glib-dev libinih-dev libglib2.0-dev libssl-dev libc-ares-dev
libcmocka-dev mosquitto mosquitto-clients python3 python3-paho-mqtt python3-websockets jq python3-yaml
openssl
dbus avahi-daemon avahi-utils
clang libclang-rt-14-dev llvm-14"

missing=""
for p in $PACKAGES; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing:$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
