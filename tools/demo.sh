#!/bin/sh
# The first thing to try: a simulated Panda Breath, a local mosquitto and the gateway,
# all on loopback, and everything the gateway publishes printed as it happens. The
# simulator announces itself over DNS-SD (avahi-daemon, started by tools/avahi-up.sh
# if needed) and the gateway finds it the way it finds a real one, with no address in
# its configuration; where avahi-daemon cannot run, the demo gives the address instead.
# After a few seconds the demo sends the command "heat to 45 °C" the way Home Assistant
# would, so you also see the device's frames and the state it then reports.
#
# Usage: tools/demo.sh [SECONDS]    (default 30; 0 = until Ctrl-C)
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-30}

tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" >/dev/null

work=$(mktemp -d /tmp/panda2mqtt-demo.XXXXXX)
port=18830
simport=18080
mac=3C84279A1B2C
id=panda_breath_3c84279a1b2c
if tools/avahi-up.sh; then
	mdns=true
	announce="--mdns Demo-Panda-Breath"
	where="" # found by DNS-SD: the section only names it
else
	echo "== demo: no avahi-daemon; giving the gateway the simulator's address instead"
	mdns=false
	announce=""
	where="host = 127.0.0.1
port = $simport"
fi
cleanup() {
	trap - EXIT INT TERM
	kill "$gw" 2>/dev/null && wait "$gw" 2>/dev/null || true
	kill "$sub" "$sim" "$broker" 2>/dev/null || true
	wait 2>/dev/null || true
	echo "demo stopped; logs in $work"
}
trap cleanup EXIT INT TERM

printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$port" >"$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
broker=$!

# no control channel needed: at the end of its input the simulator just keeps running
# shellcheck disable=SC2086 # $announce is two words or none
build/panda2mqtt-sim --port "$simport" --mac "$mac" $announce --frames-log "$work/frames.log" \
	</dev/null >"$work/sim.out" 2>"$work/sim.log" &
sim=$!
sleep 1

cat >"$work/panda2mqtt.ini" <<INI
[mqtt]
host = 127.0.0.1
port = $port

[discovery]
mdns = $mdns

[device $id]
$where
name = Demo Panda Breath
refresh_interval = 10
INI

mosquitto_sub -h 127.0.0.1 -p "$port" -v -t 'panda2mqtt/#' -t 'homeassistant/#' &
sub=$!
build/panda2mqtt -c "$work/panda2mqtt.ini" 2>"$work/panda2mqtt.log" &
gw=$!

sleep 5
echo "== demo: publishing panda2mqtt/$id/set {\"mode\":\"heat\",\"target_temperature\":45}"
mosquitto_pub -h 127.0.0.1 -p "$port" -t "panda2mqtt/$id/set" -m '{"mode":"heat","target_temperature":45}'
sleep 2
echo "== demo: frames the simulated device received:"
cat "$work/frames.log"
echo "== demo: gateway log so far:"
cat "$work/panda2mqtt.log"

if [ "$seconds" = 0 ]; then
	wait "$gw"
else
	sleep "$seconds"
fi
