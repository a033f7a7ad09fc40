#!/bin/bash
# Package test (CI, as root on Debian bookworm): build the .deb from this tree with
# packaging/build-deb.sh (dpkg-buildpackage -us -uc -b in a temporary copy), run lintian
# (errors fail), install it with apt, check user/conffile/unit, then run the installed
# daemon the way its systemd unit does (as user panda2mqtt, -c /etc/panda2mqtt/...)
# against a local mosquitto (with a password) and the installed simulator, wait for
# its Home Assistant discovery, stop everything and purge the package.
#
# Usage: tools/test-package.sh      env: KEEP=1 keeps the package installed;
#        P2M_TEST_FORCE=1 runs even if panda2mqtt is already installed (it gets purged).
# Last lines: "test-package: PASS" or "test-package: FAIL: why", then a count line.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null && exec sudo -E bash "$0" "$@"
	echo "test-package: FAIL: needs root (apt, dpkg, runuser)"
	exit 1
fi

work=$(mktemp -d /tmp/panda2mqtt-pkgtest.XXXXXX)
chmod 0755 "$work" # mosquitto reads its files after dropping to its own user
passed=0
installed=0
broker="" sim="" daemon=""
pw=PkgTest-6d1e0f

log() { echo "== test-package: $*"; }
ok() { passed=$((passed + 1)); echo "ok $passed - $*"; }
fail() {
	echo "not ok - $*"
	for f in "$work"/*.log; do
		[ -f "$f" ] && { echo "--- $f"; tail -n 30 "$f"; }
	done
	echo "test-package: FAIL: $*"
	echo "package: $passed passed, 1 failed"
	exit 1
}
stop() { # stop one of our own processes by its pid, politely then firmly
	local pid=$1
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null || return 0
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop "$daemon"
	exec 3>&- 2>/dev/null || true # EOF on the simulator's control channel
	stop "$sim"
	stop "$broker"
	if [ "$installed" = 1 ] && [ "${KEEP:-0}" != 1 ]; then
		rm -f /etc/panda2mqtt/mqtt-password
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 purge -y -qq panda2mqtt panda2mqtt-sim \
			>"$work/purge.log" 2>&1 || echo "test-package: warning: purge failed"
	fi
	[ "$rc" = 0 ] && rm -rf "$work" || echo "test-package: files kept in $work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if dpkg -s panda2mqtt >/dev/null 2>&1 && [ "${P2M_TEST_FORCE:-0}" != 1 ]; then
	fail "panda2mqtt is already installed here; purge it or set P2M_TEST_FORCE=1"
fi

log "(a) build dependencies"
export DEBIAN_FRONTEND=noninteractive
# another apt may hold the lock (DPkg::Lock::Timeout); a failed index (a mirror in sync)
# leaves the lists there are
apt-get -o DPkg::Lock::Timeout=900 update -qq || echo "test-package: apt-get update reported errors"
apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends dpkg-dev debhelper lintian mosquitto \
	mosquitto-clients python3 procps >"$work/apt.log" 2>&1 || fail "apt-get install (see apt.log)"

log "(b) dpkg-buildpackage -us -uc -b (packaging/build-deb.sh)"
packaging/build-deb.sh --install-deps "$work/debs" >"$work/build.log" 2>&1 ||
	fail "package build (see build.log)"
deb=$(ls "$work"/debs/panda2mqtt_*.deb)
simdeb=$(ls "$work"/debs/panda2mqtt-sim_*.deb)
ok "built $(basename "$deb") and $(basename "$simdeb")"

log "(c) lintian"
lintian --fail-on error --display-info "$work"/debs/*.changes >"$work/lintian.log" 2>&1 ||
	fail "lintian reports errors (see lintian.log)"
cat "$work/lintian.log"
ok "lintian: no errors ($(grep -c '^W:' "$work/lintian.log" || true) warnings)"

log "(d) apt-get install"
installed=1
apt-get -o DPkg::Lock::Timeout=900 install -y -qq "$deb" "$simdeb" >"$work/install.log" 2>&1 ||
	fail "apt-get install of the packages (see install.log)"
# lws loads its libuv event library at run time (dlopen): nothing links it, so only the
# package's Depends brings it (named with the architecture: a cross build's :arm64 copy may
# be installed too)
dpkg -s "libwebsockets-evlib-uv:$(dpkg --print-architecture)" >/dev/null 2>&1 || fail "libwebsockets-evlib-uv not pulled in"
getent passwd panda2mqtt >/dev/null || fail "no system user panda2mqtt"
perm=$(stat -c '%a %U:%G' /etc/panda2mqtt/panda2mqtt.ini)
[ "$perm" = "640 root:panda2mqtt" ] || fail "conffile is $perm, not 640 root:panda2mqtt"
grep -qx /etc/panda2mqtt/panda2mqtt.ini /var/lib/dpkg/info/panda2mqtt.conffiles ||
	fail "panda2mqtt.ini is not a conffile"
unit=/lib/systemd/system/panda2mqtt.service
[ -f "$unit" ] || fail "no $unit"
grep -qx 'ExecStart=/usr/sbin/panda2mqtt -c /etc/panda2mqtt/panda2mqtt.ini' "$unit" ||
	fail "unit ExecStart differs"
# a service that says when it is ready, reloads on systemctl reload, and is watched
grep -qx 'Type=notify' "$unit" || fail "unit is not Type=notify"
grep -qx 'ExecReload=/bin/kill -HUP $MAINPID' "$unit" || fail "unit has no ExecReload"
grep -q '^WatchdogSec=' "$unit" || fail "unit has no WatchdogSec"
# sd_notify comes from libsystemd: built with it, or Type=notify would never start
objdump -p /usr/sbin/panda2mqtt 2>/dev/null | grep -q 'NEEDED *libsystemd\.so' ||
	ldd /usr/sbin/panda2mqtt | grep -q libsystemd ||
	fail "the daemon is not linked with libsystemd (Type=notify needs sd_notify)"
for m in man8/panda2mqtt.8 man8/panda2mqtt-bambu-setup.8 man5/panda2mqtt.ini.5 man1/panda2mqtt-sim.1; do
	[ -f "/usr/share/man/$m.gz" ] || fail "no man page $m"
done
/usr/sbin/panda2mqtt --version | grep -q "^panda2mqtt 0.1.0" || fail "--version"
/usr/sbin/panda2mqtt-bambu-setup --help | grep -q "virtual-printer" ||
	fail "panda2mqtt-bambu-setup --help"
runuser -u panda2mqtt -- /usr/sbin/panda2mqtt --check-config >/dev/null ||
	fail "the shipped configuration does not pass --check-config as panda2mqtt"
if runuser -u nobody -- cat /etc/panda2mqtt/panda2mqtt.ini >/dev/null 2>&1; then
	fail "other users can read the configuration"
fi
ok "installed: user, 0640 conffile, unit, man pages, --check-config"

if command -v systemd-analyze >/dev/null; then
	systemd-analyze verify --man=no "$unit" >"$work/verify.log" 2>&1 ||
		fail "systemd-analyze verify (see verify.log)"
	ok "systemd-analyze verify"
	systemd-analyze security --offline=yes "$unit" 2>/dev/null | tail -n 1 || true
fi

log "(e) mosquitto + a simulator announced over DNS-SD + the daemon as the unit runs it"
"$(dirname "$0")/avahi-up.sh" --loopback || fail "no avahi-daemon"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mosquitto_passwd -b -c "$work/passwd" p2mtest "$pw"
chmod 0644 "$work/passwd"
printf 'listener %s 127.0.0.1\nallow_anonymous false\npassword_file %s\npersistence false\n' \
	"$port" "$work/passwd" >"$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
broker=$!

mkfifo "$work/sim.in"
 # found by DNS-SD through avahi-daemon, as the user panda2mqtt: no address configured
panda2mqtt-sim --port 0 --mac 0D0E0F101112 --mdns "Package test $$" <"$work/sim.in" >"$work/sim.out" 2>"$work/sim.log" &
sim=$!
exec 3>"$work/sim.in" # keeps the simulator's stdin open
simport=""
for _ in $(seq 100); do
	simport=$(sed -n 's/^ready port=\([0-9]*\)$/\1/p' "$work/sim.out")
	[ -n "$simport" ] && break
	sleep 0.1
done
[ -n "$simport" ] || fail "the simulator did not print ready port=N"

dev=panda_breath_0d0e0f101112
install -m 0640 -o root -g panda2mqtt /dev/null /etc/panda2mqtt/mqtt-password
printf '%s\n' "$pw" >/etc/panda2mqtt/mqtt-password
cat >/etc/panda2mqtt/panda2mqtt.ini <<INI
; written by tools/test-package.sh
[mqtt]
host = 127.0.0.1
port = $port
username = p2mtest
password_file = /etc/panda2mqtt/mqtt-password

[discovery]
mdns = true

[device $dev]
name = Package test
INI
runuser -u panda2mqtt -- /usr/sbin/panda2mqtt -c /etc/panda2mqtt/panda2mqtt.ini \
	2>"$work/daemon.log" &
daemon=$!

sub() { mosquitto_sub -h 127.0.0.1 -p "$port" -u p2mtest -P "$pw" "$@"; }
timeout 20 mosquitto_sub -h 127.0.0.1 -p "$port" -u p2mtest -P "$pw" -C 1 \
	-t "homeassistant/device/$dev/config" >"$work/discovery.json" 2>"$work/sub.log" ||
	fail "no homeassistant/device/$dev/config within 20 s"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d.get("device") or d.get("dev")' \
	"$work/discovery.json" || fail "discovery payload is not device discovery JSON"
ok "found by DNS-SD; discovery published: homeassistant/device/$dev/config"

online=""
for _ in $(seq 20); do
	online=$(sub -C 1 -W 1 -t "panda2mqtt/$dev/availability" 2>/dev/null || true)
	[ "$online" = online ] && break
	sleep 0.5
done
[ "$online" = online ] || fail "device $dev never became available (got '$online')"
ok "device available over the simulator's WebSocket"
kill -0 "$daemon" 2>/dev/null || fail "the daemon died"
if grep -q "$pw" "$work/daemon.log"; then fail "the daemon logged the MQTT password"; fi

# what systemctl reload does (ExecReload): SIGHUP to the daemon (runuser's child)
child=$(pgrep -P "$daemon" || true)
[ -n "$child" ] || fail "no daemon process under runuser $daemon"
kill -HUP "$child"
for _ in $(seq 100); do
	grep -q "reload: done" "$work/daemon.log" && break
	sleep 0.1
done
grep -q "reload: done" "$work/daemon.log" || fail "SIGHUP did not reload the configuration"
kill -0 "$child" 2>/dev/null || fail "the daemon stopped on SIGHUP"
ok "SIGHUP (systemctl reload) reloads the configuration; the daemon keeps running"

log "stopping"
# SIGTERM to the daemon itself (runuser's child): runuser then passes on its status.
child=$(pgrep -P "$daemon" || true)
[ -n "$child" ] || fail "no daemon process under runuser $daemon"
kill "$child"
rc=0
wait "$daemon" || rc=$?
daemon=""
[ "$rc" = 0 ] || fail "the daemon exited with $rc on SIGTERM (want 0)"
ok "clean stop on SIGTERM"

log "(f) purge"
[ "${KEEP:-0}" = 1 ] && { echo "test-package: PASS"; echo "package: $passed passed, 0 failed"; exit 0; }
rm -f /etc/panda2mqtt/mqtt-password
apt-get -o DPkg::Lock::Timeout=900 purge -y -qq panda2mqtt panda2mqtt-sim >"$work/purge.log" 2>&1 || fail "purge"
installed=0
[ ! -e /etc/panda2mqtt ] || fail "/etc/panda2mqtt left after purge"
dpkg-statoverride --list /etc/panda2mqtt/panda2mqtt.ini >/dev/null && fail "statoverride left"
ok "purged"

echo "test-package: PASS"
echo "package: $passed passed, 0 failed"
