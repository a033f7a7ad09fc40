#!/bin/sh
# Make sure a system D-Bus and an avahi-daemon are running, for the demo and the tests.
# A missing avahi-daemon is started with tools/avahi-loopback.conf (loopback only), after
# a system D-Bus if there is none: starting either needs root. Waits until the daemon
# answers on D-Bus.
#   tools/avahi-up.sh             start if needed; a running avahi-daemon is used as is
#   tools/avahi-up.sh --loopback  also restart a running avahi-daemon that was not
#                                 started with avahi-loopback.conf (the tests: their
#                                 announcements must not leave this machine)
#   tools/avahi-up.sh --restart   stop a running avahi-daemon, start it with ours
set -eu
here=$(cd "$(dirname "$0")" && pwd)

# Is $1 on the system bus? (The bus itself refuses Peer.Ping: ask it for its id.)
on_bus() {
	if [ "$1" = org.freedesktop.DBus ]; then
		dbus-send --system --print-reply --dest="$1" /org/freedesktop/DBus \
			org.freedesktop.DBus.GetId >/dev/null 2>&1
	else
		dbus-send --system --print-reply --dest="$1" / org.freedesktop.DBus.Peer.Ping \
			>/dev/null 2>&1
	fi
}

wait_for() { # name what
	i=0
	while ! on_bus "$1"; do
		i=$((i + 1))
		if [ "$i" -gt 100 ]; then
			echo "avahi-up: $2 did not come up within 10 s" >&2
			exit 1
		fi
		sleep 0.1
	done
}

# The daemon rewrites its process title, so whether it runs with our configuration is
# remembered in a marker holding its pid.
marker=/run/panda2mqtt-avahi-loopback.pid
ours() {
	[ -f "$marker" ] && [ "$(cat "$marker")" = "$(cat /run/avahi-daemon/pid 2>/dev/null)" ]
}

mode=${1:-}
if avahi-daemon -c 2>/dev/null &&
	{ [ "$mode" = --restart ] || { [ "$mode" = --loopback ] && ! ours; }; }; then
	if [ "$(id -u)" != 0 ]; then
		echo "avahi-up: restarting avahi-daemon loopback-only needs root" >&2
		exit 1
	fi
	avahi-daemon -k
	i=0
	while avahi-daemon -c 2>/dev/null && [ "$i" -lt 100 ]; do i=$((i + 1)); sleep 0.1; done
fi
if avahi-daemon -c 2>/dev/null && on_bus org.freedesktop.Avahi; then
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "avahi-up: avahi-daemon is not running, and starting it needs root" >&2
	exit 1
fi
if ! on_bus org.freedesktop.DBus; then
	mkdir -p /run/dbus
	rm -f /run/dbus/pid
	dbus-daemon --system --fork
	wait_for org.freedesktop.DBus "the system D-Bus"
fi
if ! avahi-daemon -c 2>/dev/null; then
	avahi-daemon -f "$here/avahi-loopback.conf" -D
	cat /run/avahi-daemon/pid >"$marker"
fi
wait_for org.freedesktop.Avahi "avahi-daemon"
