"""Self-test for ha_schema: a valid device payload passes, and each rule catches its mutation.

Run: cd tests/integration && /usr/bin/python3 -m unittest -v test_ha_schema_selftest
"""

import copy
import json
import unittest

import ha_schema as hs

BASE = "panda2mqtt/pb1"


def valid_payload():
    """A device payload touching every platform the validator covers."""
    return {
        "device": {
            "identifiers": ["panda2mqtt_pb1"],
            "name": "Panda Breath",
            "manufacturer": "BIQU",
            "model": "Panda Breath",
            "model_id": "PB-1",
            "sw_version": "1.2.3",
            "hw_version": "rev2",
            "serial_number": "SN123",
            "configuration_url": "http://192.168.1.50/",
            "suggested_area": "Workshop",
        },
        "origin": {
            "name": "panda2mqtt",
            "sw_version": "0.1.0",
            "support_url": "https://example.com/panda2mqtt",
        },
        "availability": [
            {"topic": "panda2mqtt/bridge/state"},
            {"topic": f"{BASE}/availability", "payload_available": "online",
             "payload_not_available": "offline"},
        ],
        "availability_mode": "all",
        "qos": 1,
        "components": {
            "heater": {
                "platform": "climate",
                "unique_id": "panda2mqtt_pb1_heater",
                "name": None,
                "modes": ["off", "heat", "auto", "dry"],
                "mode_state_topic": BASE,
                "mode_state_template": "{{ value_json.mode }}",
                "mode_command_topic": f"{BASE}/set/mode",
                "temperature_state_topic": BASE,
                "temperature_state_template": "{{ value_json.target }}",
                "temperature_command_topic": f"{BASE}/set/target",
                "current_temperature_topic": BASE,
                "current_temperature_template": "{{ value_json.chamber }}",
                "action_topic": BASE,
                "action_template": "{{ value_json.action }}",
                "min_temp": 20,
                "max_temp": 60,
                "temp_step": 1,
                "precision": 0.1,
                "temperature_unit": "C",
                "optimistic": False,
            },
            "chamber_temp": {
                "platform": "sensor",
                "unique_id": "panda2mqtt_pb1_chamber_temp",
                "name": "Chamber temperature",
                "state_topic": BASE,
                "value_template": "{{ value_json.chamber }}",
                "device_class": "temperature",
                "unit_of_measurement": "°C",
                "state_class": "measurement",
                "suggested_display_precision": 1,
            },
            "heater_temp": {
                "platform": "sensor",
                "unique_id": "panda2mqtt_pb1_heater_temp",
                "name": "Heater temperature",
                "state_topic": BASE,
                "value_template": "{{ value_json.heater }}",
                "device_class": "temperature",
                "unit_of_measurement": "°C",
                "state_class": "measurement",
                "entity_category": "diagnostic",
            },
            "phase": {
                "platform": "sensor",
                "unique_id": "panda2mqtt_pb1_phase",
                "name": "Phase",
                "state_topic": BASE,
                "value_template": "{{ value_json.phase }}",
                "device_class": "enum",
                "options": ["idle", "heating", "drying", "cooling"],
            },
            "last_seen": {
                "platform": "sensor",
                "unique_id": "panda2mqtt_pb1_last_seen",
                "name": "Last seen",
                "state_topic": BASE,
                "value_template": "{{ value_json.ts }}",
                "device_class": "timestamp",
                "entity_category": "diagnostic",
                "enabled_by_default": False,
            },
            "uptime": {
                "platform": "sensor",
                "unique_id": "panda2mqtt_pb1_uptime",
                "name": "Uptime",
                "state_topic": BASE,
                "value_template": "{{ value_json.uptime }}",
                "device_class": "duration",
                "unit_of_measurement": "s",
                "state_class": "total_increasing",
                "entity_category": "diagnostic",
            },
            "fault": {
                "platform": "binary_sensor",
                "unique_id": "panda2mqtt_pb1_fault",
                "name": "Fault",
                "state_topic": BASE,
                "value_template": "{{ 'ON' if value_json.fault else 'OFF' }}",
                "device_class": "problem",
                "payload_on": "ON",
                "payload_off": "OFF",
                "entity_category": "diagnostic",
                "json_attributes_topic": BASE,
                "json_attributes_template": "{{ {'code': value_json.fault_code} | tojson }}",
            },
            "work_mode": {
                "platform": "select",
                "unique_id": "panda2mqtt_pb1_work_mode",
                "name": "Work mode",
                "state_topic": BASE,
                "value_template": "{{ value_json.work_mode }}",
                "command_topic": f"{BASE}/set/work_mode",
                "options": ["auto", "always_on", "filament_dry"],
                "entity_category": "config",
            },
            "power": {
                "platform": "switch",
                "unique_id": "panda2mqtt_pb1_power",
                "name": "Power",
                "state_topic": BASE,
                "value_template": "{{ value_json.power }}",
                "command_topic": f"{BASE}/set/power",
                "payload_on": "ON",
                "payload_off": "OFF",
                "device_class": "switch",
                "icon": "mdi:power",
            },
            "dry_hours": {
                "platform": "number",
                "unique_id": "panda2mqtt_pb1_dry_hours",
                "name": "Drying time",
                "state_topic": BASE,
                "value_template": "{{ value_json.dry_hours }}",
                "command_topic": f"{BASE}/set/dry_hours",
                "min": 1,
                "max": 24,
                "step": 1,
                "mode": "box",
                "device_class": "duration",
                "unit_of_measurement": "h",
                "entity_category": "config",
            },
            "restart": {
                "platform": "button",
                "unique_id": "panda2mqtt_pb1_restart",
                "name": "Restart",
                "command_topic": f"{BASE}/set/restart",
                "payload_press": "PRESS",
                "device_class": "restart",
                "entity_category": "config",
            },
            "wifi_password": {
                "platform": "text",
                "unique_id": "panda2mqtt_pb1_wifi_password",
                "name": "Wi-Fi password",
                "command_topic": f"{BASE}/set/wifi_password",
                "mode": "password",
                "min": 8,
                "max": 63,
                "entity_category": "config",
                "enabled_by_default": False,
            },
            "firmware": {
                "platform": "update",
                "unique_id": "panda2mqtt_pb1_firmware",
                "name": "Firmware",
                "device_class": "firmware",
                "entity_category": "config",
                "state_topic": BASE,
                "value_template": "{{ value_json.firmware | tojson }}",
                "command_topic": f"{BASE}/set/firmware",
                "payload_install": "install",
            },
            "alarm": {
                "platform": "event",
                "unique_id": "panda2mqtt_pb1_alarm",
                "name": "Alarm",
                "state_topic": f"{BASE}/event",
                "value_template": "{{ value_json | tojson }}",
                "event_types": ["overheat", "door_open"],
            },
        },
    }


ABBREVIATED = {
    "dev": {"ids": "panda2mqtt_pb2", "name": "Panda Breath 2", "mf": "BIQU", "mdl": "PB",
            "mdl_id": "PB-1", "sw": "1.0", "hw": "r2", "sn": "X1",
            "cu": "http://10.0.0.2/"},
    "o": {"name": "panda2mqtt", "sw": "0.1.0", "url": "https://example.com/"},
    "avty": [{"t": "panda2mqtt/bridge/state", "pl_avail": "online"}],
    "cmps": {
        "t": {"p": "sensor", "uniq_id": "pb2_t", "~": "panda2mqtt/pb2", "stat_t": "~/state",
              "val_tpl": "{{ value_json.t }}", "dev_cla": "temperature",
              "unit_of_meas": "°C", "stat_cla": "measurement", "name": "Temperature"},
        "sw": {"p": "switch", "uniq_id": "pb2_sw", "~": "panda2mqtt/pb2",
               "cmd_t": "~/set/power", "stat_t": "~/state", "pl_on": "ON", "pl_off": "OFF",
               "name": "Power", "ent_cat": "config"},
        "btn": {"p": "button", "uniq_id": "pb2_btn", "cmd_t": "panda2mqtt/pb2/set/restart",
                "pl_prs": "GO", "name": "Restart", "en": False},
    },
}


class ValidPayloads(unittest.TestCase):
    def test_valid_sample_passes(self):
        self.assertEqual(hs.validate_device_discovery(valid_payload()), [])

    def test_valid_sample_passes_portable(self):
        self.assertEqual(hs.validate_device_discovery(valid_payload(), profile="portable"), [])

    def test_valid_sample_survives_json_round_trip(self):
        text = json.dumps(valid_payload(), ensure_ascii=False)
        self.assertEqual(hs.validate_device_discovery(json.loads(text)), [])

    def test_abbreviated_payload_passes(self):
        self.assertEqual(hs.validate_device_discovery(copy.deepcopy(ABBREVIATED)), [])

    def test_abbreviation_expansion_and_topic_base(self):
        expanded, errs = hs.expand_abbreviations(ABBREVIATED)
        self.assertEqual(errs, [])
        self.assertIn("components", expanded)
        self.assertEqual(expanded["device"]["identifiers"], "panda2mqtt_pb2")
        self.assertEqual(expanded["origin"]["support_url"], "https://example.com/")
        self.assertEqual(expanded["components"]["t"]["state_topic"], "~/state")
        self.assertEqual(expanded["availability"][0]["topic"], "panda2mqtt/bridge/state")

    def test_removal_marker_component_is_valid(self):
        p = valid_payload()
        p["components"]["old"] = {"platform": "sensor"}
        self.assertEqual(hs.validate_device_discovery(p), [])

    def test_migrate_discovery(self):
        self.assertEqual(hs.validate_device_discovery({"migrate_discovery": True}), [])
        self.assertEqual(hs.validate_device_discovery({"migr_discvry": True}), [])
        self.assertTrue(hs.validate_device_discovery({"migrate_discovery": "yes"}))

    def test_name_null_allowed(self):
        p = valid_payload()
        p["components"]["power"]["name"] = None
        self.assertEqual(hs.validate_device_discovery(p), [])

    def test_default_entity_id_latest_ok(self):
        p = valid_payload()
        p["components"]["power"]["default_entity_id"] = "switch.panda_breath_power"
        self.assertEqual(hs.validate_device_discovery(p), [])

    def test_homeassistant_configuration_url_ok(self):
        p = valid_payload()
        p["device"]["configuration_url"] = "homeassistant://config/integrations"
        self.assertEqual(hs.validate_device_discovery(p), [])

    def test_connections_instead_of_identifiers_ok(self):
        p = valid_payload()
        del p["device"]["identifiers"]
        p["device"]["connections"] = [["mac", "aa:bb:cc:dd:ee:ff"]]
        self.assertEqual(hs.validate_device_discovery(p), [])

    def test_legacy_micro_sign_normalised(self):
        p = valid_payload()
        p["components"]["uptime"]["unit_of_measurement"] = "\u00b5s"
        self.assertEqual(hs.validate_device_discovery(p), [])

    def test_lint_clean_sample(self):
        self.assertEqual(hs.lint_device_discovery(valid_payload()), [])


class Mutations(unittest.TestCase):
    """Each case mutates the valid payload and expects an error mentioning `needle`."""

    def assertFails(self, mutate, needle, profile="latest"):
        p = valid_payload()
        mutate(p)
        errors = hs.validate_device_discovery(p, profile=profile)
        self.assertTrue(errors, "mutation was not detected")
        self.assertTrue(any(needle in e for e in errors),
                        f"no error mentions {needle!r}: {errors}")
        return errors

    C = staticmethod(lambda p, cid: p["components"][cid])

    # --- root -------------------------------------------------------------------------
    def test_unknown_root_key(self):
        self.assertFails(lambda p: p.update(foo=1), "extra key 'foo'")

    def test_missing_device(self):
        self.assertFails(lambda p: p.pop("device"), "'device' is missing")

    def test_missing_origin(self):
        self.assertFails(lambda p: p.pop("origin"), "'origin' is missing")

    def test_missing_components(self):
        self.assertFails(lambda p: p.pop("components"), "'components' is missing")

    def test_components_not_object(self):
        self.assertFails(lambda p: p.update(components=[]), "expected an object")

    def test_topic_base_at_root(self):
        self.assertFails(lambda p: p.update({"~": BASE}), "'~'")

    def test_root_qos_string(self):
        self.assertFails(lambda p: p.update(qos="1"), "payload.qos")

    def test_root_qos_out_of_range(self):
        self.assertFails(lambda p: p.update(qos=3), "qos must be 0, 1 or 2")

    def test_bad_availability_mode(self):
        self.assertFails(lambda p: p.update(availability_mode="some"), "availability_mode")

    def test_availability_item_without_topic(self):
        self.assertFails(lambda p: p["availability"].append({"payload_available": "up"}),
                         "'topic' is missing")

    def test_availability_item_unknown_key(self):
        self.assertFails(lambda p: p["availability"][0].update(qos=1), "extra key 'qos'")

    def test_availability_exclusive_at_root(self):
        self.assertFails(lambda p: p.update(availability_topic="x/y"), "mutually exclusive")

    def test_availability_exclusive_through_inheritance(self):
        self.assertFails(lambda p: self.C(p, "power").update(availability_topic="x/y"),
                         "mutually exclusive")

    def test_root_state_topic_inherited_into_button(self):
        self.assertFails(lambda p: p.update(state_topic=BASE),
                         "extra key 'state_topic' not allowed (inherited")

    def test_root_command_topic_inherited_into_sensor(self):
        self.assertFails(lambda p: p.update(command_topic=f"{BASE}/set"),
                         "extra key 'command_topic' not allowed (inherited")

    def test_message_expiry_interval_portable(self):
        self.assertFails(lambda p: p.update(message_expiry_interval=60),
                         "message_expiry_interval", profile="portable")

    # --- device / origin --------------------------------------------------------------
    def test_device_without_identifiers(self):
        self.assertFails(lambda p: p["device"].pop("identifiers"), "at least one identifying")

    def test_device_unknown_key(self):
        self.assertFails(lambda p: p["device"].update(firmware="1"), "extra key 'firmware'")

    def test_device_bad_configuration_url_scheme(self):
        self.assertFails(lambda p: p["device"].update(configuration_url="ftp://x/"),
                         "configuration_url")

    def test_device_configuration_url_without_host(self):
        self.assertFails(lambda p: p["device"].update(configuration_url="192.168.1.5"),
                         "configuration_url")

    def test_device_via_hub(self):
        self.assertFails(lambda p: p["device"].update(via_hub="x"), "via_hub")

    def test_device_connection_not_pair(self):
        self.assertFails(lambda p: p["device"].update(connections=[["mac"]]), "connections[0]")

    def test_device_name_not_string(self):
        self.assertFails(lambda p: p["device"].update(name=5), "device.name")

    def test_origin_without_name(self):
        self.assertFails(lambda p: p["origin"].pop("name"), "'name' is missing")

    def test_origin_unknown_key(self):
        self.assertFails(lambda p: p["origin"].update(url2="x"), "extra key 'url2'")

    def test_origin_bad_support_url(self):
        self.assertFails(lambda p: p["origin"].update(support_url="example.com"), "support_url")

    # --- component generic ------------------------------------------------------------
    def test_missing_platform(self):
        self.assertFails(lambda p: self.C(p, "power").pop("platform"), "'platform' is missing")

    def test_unknown_platform(self):
        self.assertFails(lambda p: self.C(p, "power").update(platform="relay"),
                         "not a supported MQTT platform")

    def test_uncovered_platform(self):
        self.assertFails(lambda p: self.C(p, "power").update(platform="light"),
                         "not covered by this strict validator")

    def test_unknown_component_key(self):
        self.assertFails(lambda p: self.C(p, "chamber_temp").update(foo="bar"),
                         "extra key 'foo'")

    def test_unknown_abbreviation(self):
        self.assertFails(lambda p: self.C(p, "chamber_temp").update(uniq="x"), "extra key 'uniq'")

    def test_abbreviation_duplicates_full_key(self):
        self.assertFails(lambda p: self.C(p, "chamber_temp").update(stat_t=BASE), "duplicates")

    def test_missing_unique_id(self):
        self.assertFails(lambda p: self.C(p, "power").pop("unique_id"), "'unique_id' is missing")

    def test_duplicate_unique_id(self):
        self.assertFails(
            lambda p: self.C(p, "heater_temp").update(unique_id="panda2mqtt_pb1_chamber_temp"),
            "already used")

    def test_component_level_device(self):
        self.assertFails(lambda p: self.C(p, "power").update(device={"identifiers": ["x"]}),
                         "belongs at the root")

    def test_object_id_rejected_latest(self):
        self.assertFails(lambda p: self.C(p, "power").update(object_id="pb_power"), "object_id")

    def test_default_entity_id_rejected_portable(self):
        self.assertFails(
            lambda p: self.C(p, "power").update(default_entity_id="switch.pb_power"),
            "default_entity_id", profile="portable")

    def test_default_entity_id_wrong_domain(self):
        self.assertFails(
            lambda p: self.C(p, "power").update(default_entity_id="light.pb_power"),
            "does not match platform")

    def test_default_entity_id_without_domain(self):
        self.assertFails(lambda p: self.C(p, "power").update(default_entity_id="pb_power"),
                         "must be a full entity id")

    def test_bad_entity_category(self):
        self.assertFails(lambda p: self.C(p, "power").update(entity_category="system"),
                         "entity_category")

    def test_enabled_by_default_string(self):
        self.assertFails(lambda p: self.C(p, "power").update(enabled_by_default="false"),
                         "expected a boolean")

    def test_name_number(self):
        self.assertFails(lambda p: self.C(p, "power").update(name=1), ".name")

    def test_icon_without_prefix(self):
        self.assertFails(lambda p: self.C(p, "power").update(icon="power"), "prefix:name")

    def test_entity_picture_bad_url(self):
        self.assertFails(lambda p: self.C(p, "power").update(entity_picture="img.png"),
                         "entity_picture")

    def test_unbalanced_template(self):
        self.assertFails(lambda p: self.C(p, "power").update(value_template="{{ value_json.x"),
                         "never closed")

    def test_template_not_string(self):
        self.assertFails(lambda p: self.C(p, "power").update(value_template=5),
                         "template must be a string")

    def test_wildcard_in_command_topic(self):
        self.assertFails(lambda p: self.C(p, "power").update(command_topic=f"{BASE}/+/set"),
                         "wildcards are not allowed")

    def test_bad_multilevel_wildcard(self):
        self.assertFails(lambda p: self.C(p, "power").update(state_topic="a/#/b"),
                         "multi-level wildcard")

    def test_empty_topic(self):
        self.assertFails(lambda p: self.C(p, "chamber_temp").update(state_topic=""),
                         "must not be empty")

    def test_retain_string(self):
        self.assertFails(lambda p: self.C(p, "power").update(retain="true"), "retain")

    def test_json_attributes_topic_wildcard_ok_but_template_int(self):
        self.assertFails(lambda p: self.C(p, "fault").update(json_attributes_template=1),
                         "json_attributes_template")

    # --- climate ----------------------------------------------------------------------
    def test_climate_bad_mode(self):
        self.assertFails(lambda p: self.C(p, "heater").update(modes=["off", "heating"]),
                         "invalid HVAC mode 'heating'")

    def test_climate_temperature_unit_symbol(self):
        self.assertFails(lambda p: self.C(p, "heater").update(temperature_unit="°C"),
                         "temperature unit")

    def test_climate_state_topic_not_allowed(self):
        self.assertFails(lambda p: self.C(p, "heater").update(state_topic=BASE),
                         "extra key 'state_topic'")

    def test_climate_precision(self):
        self.assertFails(lambda p: self.C(p, "heater").update(precision=0.01), "precision")

    def test_climate_min_above_max(self):
        self.assertFails(lambda p: self.C(p, "heater").update(min_temp=70), "min_temp")

    def test_climate_preset_modes_need_command_topic(self):
        self.assertFails(lambda p: self.C(p, "heater").update(preset_modes=["eco"]),
                         "must be used together")

    def test_climate_preset_none(self):
        def m(p):
            self.C(p, "heater").update(preset_modes=["eco", "none"],
                                       preset_mode_command_topic=f"{BASE}/set/preset")
        self.assertFails(m, "must not include preset mode 'none'")

    def test_climate_humidity_state_without_command(self):
        self.assertFails(
            lambda p: self.C(p, "heater").update(target_humidity_state_topic=BASE),
            "target_humidity_command_topic")

    def test_climate_optimistic_string(self):
        self.assertFails(lambda p: self.C(p, "heater").update(optimistic="no"), "optimistic")

    def test_climate_temp_step_misnamed(self):
        self.assertFails(lambda p: self.C(p, "heater").update(temperature_step=1),
                         "extra key 'temperature_step'")

    # --- sensor -----------------------------------------------------------------------
    def test_enum_sensor_with_unit(self):
        self.assertFails(lambda p: self.C(p, "phase").update(unit_of_measurement="x"),
                         "unit_of_measurement")

    def test_enum_sensor_with_state_class(self):
        self.assertFails(lambda p: self.C(p, "phase").update(state_class="measurement"),
                         "state_class")

    def test_enum_sensor_without_options(self):
        self.assertFails(lambda p: self.C(p, "phase").pop("options"), "needs an 'options' list")

    def test_enum_sensor_empty_options(self):
        self.assertFails(lambda p: self.C(p, "phase").update(options=[]), "empty options")

    def test_options_without_enum_device_class(self):
        self.assertFails(lambda p: self.C(p, "phase").pop("device_class"),
                         "require device_class 'enum'")

    def test_timestamp_with_state_class(self):
        self.assertFails(lambda p: self.C(p, "last_seen").update(state_class="measurement"),
                         "non-numeric")

    def test_timestamp_with_unit(self):
        self.assertFails(lambda p: self.C(p, "last_seen").update(unit_of_measurement="s"),
                         "non-numeric")

    def test_duration_bad_unit(self):
        self.assertFails(lambda p: self.C(p, "uptime").update(unit_of_measurement="sec"),
                         "not valid with device_class 'duration'")

    def test_temperature_bad_unit(self):
        self.assertFails(lambda p: self.C(p, "chamber_temp").update(unit_of_measurement="C"),
                         "not valid with device_class 'temperature'")

    def test_unknown_sensor_device_class(self):
        self.assertFails(lambda p: self.C(p, "chamber_temp").update(device_class="heat"),
                         "invalid value 'heat'")

    def test_uppercase_state_class(self):
        self.assertFails(lambda p: self.C(p, "chamber_temp").update(state_class="Measurement"),
                         "lower case")

    def test_bad_state_class(self):
        self.assertFails(lambda p: self.C(p, "chamber_temp").update(state_class="average"),
                         "state_class")

    def test_last_reset_without_total(self):
        self.assertFails(
            lambda p: self.C(p, "chamber_temp").update(last_reset_value_template="{{ 1 }}"),
            "last_reset_value_template requires state_class 'total'")

    def test_sensor_config_category(self):
        self.assertFails(lambda p: self.C(p, "heater_temp").update(entity_category="config"),
                         "cannot use 'config'")

    def test_sensor_missing_state_topic(self):
        self.assertFails(lambda p: self.C(p, "chamber_temp").pop("state_topic"),
                         "'state_topic' is missing")

    def test_sensor_expire_after_negative(self):
        self.assertFails(lambda p: self.C(p, "chamber_temp").update(expire_after=-1),
                         "expire_after")

    def test_sensor_precision_float(self):
        self.assertFails(
            lambda p: self.C(p, "chamber_temp").update(suggested_display_precision=1.5),
            "suggested_display_precision")

    # --- binary_sensor ----------------------------------------------------------------
    def test_binary_sensor_bad_device_class(self):
        self.assertFails(lambda p: self.C(p, "fault").update(device_class="fault"),
                         "invalid value 'fault'")

    def test_binary_sensor_config_category(self):
        self.assertFails(lambda p: self.C(p, "fault").update(entity_category="config"),
                         "cannot use 'config'")

    def test_binary_sensor_unit(self):
        self.assertFails(lambda p: self.C(p, "fault").update(unit_of_measurement="x"),
                         "extra key 'unit_of_measurement'")

    # --- select -----------------------------------------------------------------------
    def test_select_missing_options(self):
        self.assertFails(lambda p: self.C(p, "work_mode").pop("options"),
                         "'options' is missing")

    def test_select_empty_options(self):
        self.assertFails(lambda p: self.C(p, "work_mode").update(options=[]), "empty list")

    def test_select_non_string_option(self):
        self.assertFails(lambda p: self.C(p, "work_mode").update(options=["a", 2]), "item 1")

    def test_select_missing_command_topic(self):
        self.assertFails(lambda p: self.C(p, "work_mode").pop("command_topic"),
                         "'command_topic' is missing")

    # --- switch -----------------------------------------------------------------------
    def test_switch_bad_device_class(self):
        self.assertFails(lambda p: self.C(p, "power").update(device_class="relay"),
                         "invalid value 'relay'")

    def test_switch_payload_on_bool(self):
        self.assertFails(lambda p: self.C(p, "power").update(payload_on=True), "payload_on")

    # --- number -----------------------------------------------------------------------
    def test_number_bad_mode(self):
        self.assertFails(lambda p: self.C(p, "dry_hours").update(mode="dial"), "mode")

    def test_number_min_above_max(self):
        self.assertFails(lambda p: self.C(p, "dry_hours").update(min=30), "min (30)")

    def test_number_step_too_small(self):
        self.assertFails(lambda p: self.C(p, "dry_hours").update(step=0), "step")

    def test_number_min_string(self):
        self.assertFails(lambda p: self.C(p, "dry_hours").update(min="1"), "expected a number")

    def test_number_unit_vs_device_class(self):
        self.assertFails(lambda p: self.C(p, "dry_hours").update(unit_of_measurement="hours"),
                         "not valid with device_class 'duration'")

    # --- button -----------------------------------------------------------------------
    def test_button_missing_command_topic(self):
        self.assertFails(lambda p: self.C(p, "restart").pop("command_topic"),
                         "'command_topic' is missing")

    def test_button_state_topic(self):
        self.assertFails(lambda p: self.C(p, "restart").update(state_topic=BASE),
                         "extra key 'state_topic'")

    def test_button_bad_device_class(self):
        self.assertFails(lambda p: self.C(p, "restart").update(device_class="reboot"),
                         "invalid value 'reboot'")

    def test_button_payload_press_abbrev_dup(self):
        self.assertFails(lambda p: self.C(p, "restart").update(pl_prs="X"), "duplicates")

    # --- text -------------------------------------------------------------------------
    def test_text_bad_mode(self):
        self.assertFails(lambda p: self.C(p, "wifi_password").update(mode="secret"), "mode")

    def test_text_min_above_max(self):
        self.assertFails(lambda p: self.C(p, "wifi_password").update(min=70), "must be <= max")

    def test_text_max_too_large(self):
        self.assertFails(lambda p: self.C(p, "wifi_password").update(max=300), "<= 255")

    def test_text_bad_pattern(self):
        self.assertFails(lambda p: self.C(p, "wifi_password").update(pattern="(["),
                         "regular expression")

    # --- event ------------------------------------------------------------------------
    def test_update_bad_device_class(self):
        self.assertFails(lambda p: self.C(p, "firmware").update(device_class="software"),
                         "invalid value 'software'")

    def test_update_unknown_key(self):
        self.assertFails(lambda p: self.C(p, "firmware").update(payload_press="PRESS"),
                         "extra key 'payload_press'")

    def test_event_missing_event_types(self):
        self.assertFails(lambda p: self.C(p, "alarm").pop("event_types"),
                         "'event_types' is missing")

    def test_event_empty_event_types(self):
        self.assertFails(lambda p: self.C(p, "alarm").update(event_types=[]), "empty list")

    def test_event_bad_device_class(self):
        self.assertFails(lambda p: self.C(p, "alarm").update(device_class="alarm"),
                         "invalid value 'alarm'")

    def test_event_missing_state_topic(self):
        self.assertFails(lambda p: self.C(p, "alarm").pop("state_topic"),
                         "'state_topic' is missing")

    # --- topic base -------------------------------------------------------------------
    def test_topic_base_empty(self):
        self.assertFails(lambda p: self.C(p, "power").update({"~": ""}), "topic base")


class Topics(unittest.TestCase):
    def test_good_topics(self):
        self.assertEqual(hs.validate_topic("homeassistant/device/panda_pb1/config"), [])
        self.assertEqual(hs.validate_topic("homeassistant/device/node-1/pb1/config"), [])
        self.assertEqual(hs.validate_topic("ha/device/pb1/config", prefix="ha"), [])
        self.assertEqual(
            hs.validate_topic("homeassistant/sensor/pb1/config", component=None), [])

    def test_bad_object_id_charset(self):
        self.assertTrue(hs.validate_topic("homeassistant/device/pb.1/config"))
        self.assertTrue(hs.validate_topic("homeassistant/device/pb 1/config"))

    def test_bad_node_id_charset(self):
        self.assertTrue(hs.validate_topic("homeassistant/device/nö/pb1/config"))

    def test_wrong_suffix_or_depth(self):
        self.assertTrue(hs.validate_topic("homeassistant/device/pb1/cfg"))
        self.assertTrue(hs.validate_topic("homeassistant/device/a/b/c/config"))
        self.assertTrue(hs.validate_topic("homeassistant/device/config"))

    def test_wrong_prefix_component_or_wildcard(self):
        self.assertTrue(hs.validate_topic("hass/device/pb1/config"))
        self.assertTrue(hs.validate_topic("homeassistant/sensor/pb1/config"))
        self.assertTrue(hs.validate_topic("homeassistant/foo/pb1/config", component=None))
        self.assertTrue(hs.validate_topic("homeassistant/device/+/config"))


class Lint(unittest.TestCase):
    def test_lint_catches_name_prefix_and_root_topics(self):
        p = valid_payload()
        p["state_topic"] = BASE
        p["components"]["chamber_temp"]["name"] = "Panda Breath temperature"
        p["components"]["uptime"]["state_class"] = "measurement"
        p["components"]["uptime"]["device_class"] = "temperature"
        warnings = hs.lint_device_discovery(p)
        self.assertTrue(any("starts with the device name" in w for w in warnings))
        self.assertTrue(any("payload.state_topic" in w for w in warnings))

    def test_lint_device_without_name(self):
        p = valid_payload()
        del p["device"]["name"]
        self.assertTrue(any("no 'name'" in w for w in hs.lint_device_discovery(p)))
        self.assertEqual(hs.validate_device_discovery(p), [])


if __name__ == "__main__":
    unittest.main()
