# shellcheck shell=bash
# TEST FIXTURE ONLY, never part of the add-on image: a stand-in for the few bashio
# functions that rootfs/etc/services.d/panda2mqtt/run calls. Home Assistant's base
# images ship the real bashio; the debootstrapped base that tools/test-addon-image.sh
# builds the add-on on does not. tests/image/test_addon_image.py mounts this file and
# sources it before the run script:
#   bash -c '. /stub/bashio-stub.sh; . /etc/services.d/panda2mqtt/run'
# The add-on's options are /data/options.json (as under the Supervisor); what the
# Supervisor would answer for the MQTT service is /data/stub-mqtt-service.json (its
# "data" object), absent when the test has no MQTT service.
P2M_STUB_SERVICE=/data/stub-mqtt-service.json
bashio::services.available() { [ "$1" = mqtt ] && [ -s "$P2M_STUB_SERVICE" ]; }
bashio::services() {
	jq -r --arg k "$2" '.[$k] | if . == null then "" else tostring end' "$P2M_STUB_SERVICE"
}
bashio::config() {
	jq -r --arg k "$1" '.[$k] | if . == null then "" else tostring end' /data/options.json
}
bashio::config.true() { [ "$(bashio::config "$1")" = true ]; }
bashio::log.info() { echo "[stub bashio] INFO: $*" >&2; }
bashio::exit.nok() { echo "[stub bashio] FATAL: $*" >&2; exit 1; }
