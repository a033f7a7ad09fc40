"""Strict, stdlib-only checker for Home Assistant MQTT *device-based* discovery payloads.

Written from a reading of Home Assistant's own sources (no code copied), mainly the
``home-assistant/core`` ``dev`` branch as of about 2026.9 (the "probatio" schemas that
replaced voluptuous):

  homeassistant/components/mqtt/discovery.py   topic regex, abbreviation expansion, "~",
                                               device payload parsing, shared-option merge
  homeassistant/components/mqtt/schemas.py     DEVICE_DISCOVERY_SCHEMA, SHARED_OPTIONS,
                                               MQTT_ENTITY_COMMON_SCHEMA, device/origin,
                                               availability, check_unique_id
  homeassistant/components/mqtt/config.py      MQTT_BASE/RO/RW_SCHEMA
  homeassistant/components/mqtt/const.py       SUPPORTED_COMPONENTS, ENTITY_PLATFORMS
  homeassistant/components/mqtt/abbreviations.py (and the docs' abbreviation tables)
  homeassistant/components/mqtt/climate.py     (probatio version)
  homeassistant/components/mqtt/util.py        valid_subscribe_topic / valid_publish_topic
  homeassistant/helpers/config_validation.py   string/boolean/url/configuration_url/icon/
                                               temperature_unit/template
Platform files for which only the 2025.x voluptuous versions were available
(sensor.py, binary_sensor.py, switch.py, select.py, number.py, button.py, text.py,
event.py, update.py) plus the 2025.7+ sensor unit checks (DEVICE_CLASS_UNITS, STATE_CLASS_UNITS,
AMBIGUOUS_UNITS from components/sensor/const.py).  Entity-level rejections that happen
after the schema (sensor/binary_sensor refusing entity_category "config", non-numeric
sensor device classes refusing a unit or state class) are reported as errors too.

Home Assistant itself *drops* unknown keys of a component (extra=REMOVE_EXTRA) but
*rejects* unknown keys at the root of a device payload.  This module is strict
everywhere: unknown keys, wrong JSON types (no "1" for 1, no "true" for true) and
missing required keys are all errors.

Public API:
  validate_device_discovery(payload, profile="latest") -> list[str]   errors, [] if valid
  lint_device_discovery(payload) -> list[str]                          advisory warnings
  validate_topic(topic, prefix="homeassistant", component="device") -> list[str]
  expand_abbreviations(payload) -> (dict, list[str])

profile="latest":   HA 2026.4+ (object_id removed; default_entity_id and the newest keys
                    group / visible_by_default / message_expiry_interval accepted).
profile="portable": only keys every HA release from 2025.1 to dev accepts, so object_id,
                    default_entity_id, group, visible_by_default and
                    message_expiry_interval are all errors.
"""

from __future__ import annotations

import copy
import re
from urllib.parse import urlparse

__all__ = [
    "validate_device_discovery",
    "lint_device_discovery",
    "validate_topic",
    "expand_abbreviations",
    "SUPPORTED_COMPONENTS",
    "ENTITY_PLATFORMS",
    "CHECKED_PLATFORMS",
]

# --------------------------------------------------------------------------------------
# Abbreviations (discovery.py expands these before any validation)
# --------------------------------------------------------------------------------------

ABBREVIATIONS = {
    "act_t": "action_topic", "act_tpl": "action_template",
    "atype": "automation_type",
    "aux_cmd_t": "aux_command_topic", "aux_stat_t": "aux_state_topic",
    "aux_stat_tpl": "aux_state_template",
    "av_tones": "available_tones",
    "avty": "availability", "avty_mode": "availability_mode",
    "avty_t": "availability_topic", "avty_tpl": "availability_template",
    "away_mode_cmd_t": "away_mode_command_topic", "away_mode_stat_t": "away_mode_state_topic",
    "away_mode_stat_tpl": "away_mode_state_template",
    "b_tpl": "blue_template",
    "bri_cmd_t": "brightness_command_topic", "bri_cmd_tpl": "brightness_command_template",
    "bri_scl": "brightness_scale", "bri_stat_t": "brightness_state_topic",
    "bri_tpl": "brightness_template", "bri_val_tpl": "brightness_value_template",
    "clr_temp_cmd_tpl": "color_temp_command_template",
    "clr_temp_cmd_t": "color_temp_command_topic", "clr_temp_k": "color_temp_kelvin",
    "clr_temp_stat_t": "color_temp_state_topic", "clr_temp_tpl": "color_temp_template",
    "clr_temp_val_tpl": "color_temp_value_template",
    "clrm": "color_mode", "clrm_stat_t": "color_mode_state_topic",
    "clrm_val_tpl": "color_mode_value_template",
    "cmd_off_tpl": "command_off_template", "cmd_on_tpl": "command_on_template",
    "cmd_t": "command_topic", "cmd_tpl": "command_template",
    "cmps": "components",
    "cod_arm_req": "code_arm_required", "cod_dis_req": "code_disarm_required",
    "cod_trig_req": "code_trigger_required",
    "cont_type": "content_type",
    "curr_temp_t": "current_temperature_topic", "curr_temp_tpl": "current_temperature_template",
    "def_ent_id": "default_entity_id",
    "dev": "device", "dev_cla": "device_class",
    "dir_cmd_t": "direction_command_topic", "dir_cmd_tpl": "direction_command_template",
    "dir_stat_t": "direction_state_topic", "dir_val_tpl": "direction_value_template",
    "dsp_prc": "display_precision",
    "e": "encoding", "en": "enabled_by_default",
    "ent_cat": "entity_category", "ent_pic": "entity_picture",
    "evt_typ": "event_types", "exp_aft": "expire_after",
    "fanspd_lst": "fan_speed_list",
    "flsh": "flash", "flsh_tlng": "flash_time_long", "flsh_tsht": "flash_time_short",
    "fx_cmd_t": "effect_command_topic", "fx_cmd_tpl": "effect_command_template",
    "fx_list": "effect_list", "fx_stat_t": "effect_state_topic", "fx_tpl": "effect_template",
    "fx_val_tpl": "effect_value_template",
    "fan_mode_cmd_t": "fan_mode_command_topic", "fan_mode_cmd_tpl": "fan_mode_command_template",
    "fan_mode_stat_t": "fan_mode_state_topic", "fan_mode_stat_tpl": "fan_mode_state_template",
    "frc_upd": "force_update",
    "g_tpl": "green_template",
    "hs_cmd_t": "hs_command_topic", "hs_cmd_tpl": "hs_command_template",
    "hs_stat_t": "hs_state_topic", "hs_val_tpl": "hs_value_template",
    "ic": "icon",
    "img_e": "image_encoding", "img_t": "image_topic",
    "init": "initial",
    "hum_cmd_t": "target_humidity_command_topic", "hum_cmd_tpl": "target_humidity_command_template",
    "hum_stat_t": "target_humidity_state_topic", "hum_state_tpl": "target_humidity_state_template",
    "json_attr": "json_attributes", "json_attr_t": "json_attributes_topic",
    "json_attr_tpl": "json_attributes_template",
    "l_ver_t": "latest_version_topic", "l_ver_tpl": "latest_version_template",
    "lrst_t": "last_reset_topic", "lrst_val_tpl": "last_reset_value_template",
    "max": "max", "max_hum": "max_humidity", "max_k": "max_kelvin", "max_mirs": "max_mireds",
    "max_temp": "max_temp",
    "migr_discvry": "migrate_discovery",
    "min": "min", "min_hum": "min_humidity", "min_k": "min_kelvin", "min_mirs": "min_mireds",
    "min_temp": "min_temp",
    "mode": "mode",
    "mode_cmd_t": "mode_command_topic", "mode_cmd_tpl": "mode_command_template",
    "mode_stat_t": "mode_state_topic", "mode_stat_tpl": "mode_state_template",
    "modes": "modes", "name": "name",
    "o": "origin", "obj_id": "object_id",
    "off_dly": "off_delay", "on_cmd_type": "on_command_type",
    "ops": "options", "opt": "optimistic",
    "osc_cmd_t": "oscillation_command_topic", "osc_cmd_tpl": "oscillation_command_template",
    "osc_stat_t": "oscillation_state_topic", "osc_val_tpl": "oscillation_value_template",
    "p": "platform",
    "pct_cmd_t": "percentage_command_topic", "pct_cmd_tpl": "percentage_command_template",
    "pct_stat_t": "percentage_state_topic", "pct_val_tpl": "percentage_value_template",
    "pl": "payload",
    "pl_arm_away": "payload_arm_away", "pl_arm_custom_b": "payload_arm_custom_bypass",
    "pl_arm_home": "payload_arm_home", "pl_arm_nite": "payload_arm_night",
    "pl_arm_vacation": "payload_arm_vacation",
    "pl_avail": "payload_available", "pl_not_avail": "payload_not_available",
    "pl_cln_sp": "payload_clean_spot", "pl_cls": "payload_close",
    "pl_dir_fwd": "payload_direction_forward", "pl_dir_rev": "payload_direction_reverse",
    "pl_disarm": "payload_disarm", "pl_home": "payload_home", "pl_inst": "payload_install",
    "pl_loc": "payload_locate", "pl_lock": "payload_lock", "pl_not_home": "payload_not_home",
    "pl_off": "payload_off", "pl_on": "payload_on", "pl_open": "payload_open",
    "pl_osc_off": "payload_oscillation_off", "pl_osc_on": "payload_oscillation_on",
    "pl_paus": "payload_pause", "pl_prs": "payload_press", "pl_ret": "payload_return_to_base",
    "pl_rst": "payload_reset", "pl_rst_hum": "payload_reset_humidity",
    "pl_rst_mode": "payload_reset_mode", "pl_rst_pct": "payload_reset_percentage",
    "pl_rst_pr_mode": "payload_reset_preset_mode",
    "pl_stop": "payload_stop", "pl_stop_tilt": "payload_stop_tilt",
    "pl_stpa": "payload_start_pause", "pl_strt": "payload_start",
    "pl_toff": "payload_turn_off", "pl_ton": "payload_turn_on", "pl_trig": "payload_trigger",
    "pl_unlk": "payload_unlock",
    "pos": "reports_position", "pos_clsd": "position_closed", "pos_open": "position_open",
    "pos_t": "position_topic", "pos_tpl": "position_template",
    "pow_cmd_t": "power_command_topic", "pow_cmd_tpl": "power_command_template",
    "pr_mode_cmd_t": "preset_mode_command_topic", "pr_mode_cmd_tpl": "preset_mode_command_template",
    "pr_mode_stat_t": "preset_mode_state_topic", "pr_mode_val_tpl": "preset_mode_value_template",
    "pr_modes": "preset_modes",
    "ptrn": "pattern",
    "r_tpl": "red_template",
    "rel_s": "release_summary", "rel_u": "release_url",
    "ret": "retain",
    "rgb_cmd_t": "rgb_command_topic", "rgb_cmd_tpl": "rgb_command_template",
    "rgb_stat_t": "rgb_state_topic", "rgb_val_tpl": "rgb_value_template",
    "rgbw_cmd_t": "rgbw_command_topic", "rgbw_cmd_tpl": "rgbw_command_template",
    "rgbw_stat_t": "rgbw_state_topic", "rgbw_val_tpl": "rgbw_value_template",
    "rgbww_cmd_t": "rgbww_command_topic", "rgbww_cmd_tpl": "rgbww_command_template",
    "rgbww_stat_t": "rgbww_state_topic", "rgbww_val_tpl": "rgbww_value_template",
    "send_cmd_t": "send_command_topic", "send_if_off": "send_if_off",
    "set_fan_spd_t": "set_fan_speed_topic",
    "set_pos_t": "set_position_topic", "set_pos_tpl": "set_position_template",
    "spd_rng_min": "speed_range_min", "spd_rng_max": "speed_range_max",
    "src_type": "source_type",
    "stat_cla": "state_class",
    "stat_closing": "state_closing", "stat_clsd": "state_closed", "stat_jam": "state_jammed",
    "stat_locked": "state_locked", "stat_locking": "state_locking",
    "stat_off": "state_off", "stat_on": "state_on",
    "stat_open": "state_open", "stat_opening": "state_opening", "stat_stopped": "state_stopped",
    "stat_unlocked": "state_unlocked", "stat_unlocking": "state_unlocking",
    "stat_t": "state_topic", "stat_tpl": "state_template", "stat_val_tpl": "state_value_template",
    "step": "step", "stype": "subtype",
    "sug_dsp_prc": "suggested_display_precision",
    "sup_clrm": "supported_color_modes", "sup_dur": "support_duration",
    "sup_vol": "support_volume_set", "sup_feat": "supported_features",
    "swing_mode_cmd_t": "swing_mode_command_topic", "swing_mode_cmd_tpl": "swing_mode_command_template",
    "swing_mode_stat_t": "swing_mode_state_topic", "swing_mode_stat_tpl": "swing_mode_state_template",
    "t": "topic",
    "temp_cmd_t": "temperature_command_topic", "temp_cmd_tpl": "temperature_command_template",
    "temp_hi_cmd_t": "temperature_high_command_topic",
    "temp_hi_cmd_tpl": "temperature_high_command_template",
    "temp_hi_stat_t": "temperature_high_state_topic",
    "temp_hi_stat_tpl": "temperature_high_state_template",
    "temp_lo_cmd_t": "temperature_low_command_topic",
    "temp_lo_cmd_tpl": "temperature_low_command_template",
    "temp_lo_stat_t": "temperature_low_state_topic",
    "temp_lo_stat_tpl": "temperature_low_state_template",
    "temp_stat_t": "temperature_state_topic", "temp_stat_tpl": "temperature_state_template",
    "temp_unit": "temperature_unit",
    "tilt_clsd_val": "tilt_closed_value", "tilt_cmd_t": "tilt_command_topic",
    "tilt_cmd_tpl": "tilt_command_template", "tilt_max": "tilt_max", "tilt_min": "tilt_min",
    "tilt_opnd_val": "tilt_opened_value", "tilt_opt": "tilt_optimistic",
    "tilt_status_t": "tilt_status_topic", "tilt_status_tpl": "tilt_status_template",
    "tit": "title", "trns": "transition",
    "uniq_id": "unique_id", "unit_of_meas": "unit_of_measurement",
    "url_t": "url_topic", "url_tpl": "url_template",
    "val_tpl": "value_template",
    "whit_cmd_t": "white_command_topic", "whit_scl": "white_scale",
    "xy_cmd_t": "xy_command_topic", "xy_cmd_tpl": "xy_command_template",
    "xy_stat_t": "xy_state_topic", "xy_val_tpl": "xy_value_template",
}

DEVICE_ABBREVIATIONS = {
    "cns": "connections", "cu": "configuration_url", "ids": "identifiers", "name": "name",
    "mf": "manufacturer", "mdl": "model", "mdl_id": "model_id", "hw": "hw_version",
    "sw": "sw_version", "sa": "suggested_area", "sn": "serial_number",
}

ORIGIN_ABBREVIATIONS = {"name": "name", "sw": "sw_version", "url": "support_url"}

# --------------------------------------------------------------------------------------
# Constants (mqtt/const.py, entity platform enums)
# --------------------------------------------------------------------------------------

SUPPORTED_COMPONENTS = frozenset({
    "alarm_control_panel", "binary_sensor", "button", "camera", "climate", "cover", "date",
    "datetime", "device_automation", "device_tracker", "event", "fan", "humidifier", "image",
    "infrared", "lawn_mower", "light", "lock", "notify", "number", "scene", "siren", "select",
    "sensor", "switch", "tag", "text", "time", "update", "vacuum", "valve", "water_heater",
})
ENTITY_PLATFORMS = SUPPORTED_COMPONENTS - {"device_automation", "tag"}

# discovery.py: <component>/[<node_id>/]<object_id>/config
_ID_RE = re.compile(r"[a-zA-Z0-9_-]+")
_COMPONENT_RE = re.compile(r"\w+")

# schemas.py SHARED_OPTIONS: root options copied into each component that lacks them
SHARED_OPTIONS = (
    "availability", "availability_mode", "availability_template", "availability_topic",
    "command_topic", "encoding", "message_expiry_interval", "payload_available",
    "payload_not_available", "state_topic", "qos",
)

HVAC_MODES = ("off", "heat", "cool", "heat_cool", "auto", "dry", "fan_only")
ENTITY_CATEGORIES = ("config", "diagnostic")
AVAILABILITY_MODES = ("all", "any", "latest")
NUMBER_MODES = ("auto", "box", "slider")
TEXT_MODES = ("text", "password")
CLIMATE_PRECISIONS = (0.1, 0.5, 1.0)
TEXT_MAX_LENGTH = 255  # MAX_LENGTH_STATE_STATE

SENSOR_NON_NUMERIC_DEVICE_CLASSES = frozenset({"date", "enum", "timestamp"})
SENSOR_NUMERIC_DEVICE_CLASSES = frozenset({
    "absolute_humidity", "apparent_power", "aqi", "area", "atmospheric_pressure", "battery",
    "blood_glucose_concentration", "carbon_monoxide", "carbon_dioxide", "conductivity",
    "current", "data_rate", "data_size", "distance", "duration", "energy", "energy_distance",
    "energy_storage", "frequency", "gas", "humidity", "illuminance", "irradiance", "moisture",
    "monetary", "nitrogen_dioxide", "nitrogen_monoxide", "nitrous_oxide", "ozone", "ph", "pm1",
    "pm10", "pm25", "pm4", "power_factor", "power", "precipitation", "precipitation_intensity",
    "pressure", "reactive_energy", "reactive_power", "signal_strength", "sound_pressure",
    "speed", "sulphur_dioxide", "temperature", "temperature_delta",
    "volatile_organic_compounds", "volatile_organic_compounds_parts", "voltage", "volume",
    "volume_flow_rate", "volume_storage", "water", "weight", "wind_direction", "wind_speed",
})
SENSOR_DEVICE_CLASSES = SENSOR_NUMERIC_DEVICE_CLASSES | SENSOR_NON_NUMERIC_DEVICE_CLASSES
NUMBER_DEVICE_CLASSES = SENSOR_NUMERIC_DEVICE_CLASSES
SENSOR_STATE_CLASSES = ("measurement", "measurement_angle", "total", "total_increasing")
BINARY_SENSOR_DEVICE_CLASSES = frozenset({
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
    "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving", "occupancy",
    "opening", "plug", "power", "presence", "problem", "running", "safety", "smoke", "sound",
    "tamper", "update", "vibration", "window",
})
BUTTON_DEVICE_CLASSES = frozenset({"identify", "restart", "update"})
SWITCH_DEVICE_CLASSES = frozenset({"outlet", "switch"})
EVENT_DEVICE_CLASSES = frozenset({"button", "doorbell", "motion"})
UPDATE_DEVICE_CLASSES = frozenset({"firmware"})

_MICRO = "\u03bc"  # HA's canonical micro sign; legacy U+00B5 is mapped onto it
_ENERGY_UNITS = {"J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh",
                 "cal", "kcal", "Mcal", "Gcal"}
_TEMPERATURE_UNITS = {"°C", "°F", "K"}
_PRESSURE_UNITS = {"mPa", "Pa", "hPa", "kPa", "bar", "cbar", "mbar", "mmHg", "inHg",
                   "inH₂O", "psi"}
# Subset of sensor/const.py DEVICE_CLASS_UNITS; classes not listed are not unit-checked.
# None inside a set means "no unit" is the only/an allowed choice.
DEVICE_CLASS_UNITS = {
    "apparent_power": {"mVA", "VA", "kVA"},
    "aqi": {None},
    "atmospheric_pressure": _PRESSURE_UNITS,
    "battery": {"%"},
    "carbon_dioxide": {"ppm"},
    "current": {"mA", "A"},
    "duration": {"d", "h", "min", "s", "ms", _MICRO + "s"},
    "energy": _ENERGY_UNITS,
    "energy_storage": _ENERGY_UNITS,
    "frequency": {"Hz", "kHz", "MHz", "GHz"},
    "humidity": {"%"},
    "illuminance": {"lx"},
    "moisture": {"%"},
    "ph": {None},
    "pm1": {_MICRO + "g/m³"}, "pm10": {_MICRO + "g/m³"}, "pm25": {_MICRO + "g/m³"},
    "pm4": {_MICRO + "g/m³"},
    "power": {"mW", "W", "kW", "MW", "GW", "TW"},
    "power_factor": {"%", None},
    "pressure": _PRESSURE_UNITS,
    "signal_strength": {"dB", "dBm"},
    "temperature": _TEMPERATURE_UNITS,
    "temperature_delta": _TEMPERATURE_UNITS,
    "voltage": {_MICRO + "V", "mV", "V", "kV", "MV"},
    "wind_direction": {"°"},
}
STATE_CLASS_UNITS = {"measurement_angle": {"°"}}
# AMBIGUOUS_UNITS: legacy micro sign U+00B5 is accepted and normalised
_AMBIGUOUS_UNITS = {"\u00b5s": _MICRO + "s", "\u00b5V": _MICRO + "V",
                    "\u00b5g/m³": _MICRO + "g/m³", "\u00b5g": _MICRO + "g",
                    "\u00b5S/cm": _MICRO + "S/cm", "\u00b5g/ft³": _MICRO + "g/ft³"}
# Partial DEVICE_CLASS_STATE_CLASSES (HA only logs a warning): used by the linter only.
_DEVICE_CLASS_STATE_CLASSES = {
    "temperature": {"measurement"}, "humidity": {"measurement"}, "battery": {"measurement"},
    "power": {"measurement"}, "voltage": {"measurement"}, "current": {"measurement"},
    "energy": {"total", "total_increasing"}, "duration": {"measurement", "total",
                                                          "total_increasing"},
}

# Keys whose acceptance depends on the Home Assistant version
VERSIONED_KEYS = {
    "object_id": "was removed in HA 2026.4 (deprecated 2025.10): use default_entity_id",
    "default_entity_id": "only exists since HA 2025.10",
    "group": "only exists in recent HA (dev)",
    "visible_by_default": "only exists in recent HA (dev)",
    "message_expiry_interval": "only exists in recent HA (dev)",
}

PROFILES = ("latest", "portable")

# --------------------------------------------------------------------------------------
# Leaf validators: fn(value) -> error string or None
# --------------------------------------------------------------------------------------


def _tname(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def v_str(v):
    return None if isinstance(v, str) else f"expected a string, got {_tname(v)}"


def v_str_nonempty(v):
    if not isinstance(v, str):
        return f"expected a string, got {_tname(v)}"
    return None if v.strip() else "must not be empty"


def v_str_or_none(v):
    return None if v is None or isinstance(v, str) else f"expected a string or null, got {_tname(v)}"


def v_bool(v):
    return None if isinstance(v, bool) else f"expected a boolean (true/false), got {_tname(v)}"


def v_int_ge0(v):
    if isinstance(v, bool) or not isinstance(v, int):
        if isinstance(v, float) and v.is_integer() and v >= 0:
            return None
        return f"expected a non-negative integer, got {_tname(v)} {v!r}"
    return None if v >= 0 else f"must be >= 0, got {v}"


def v_num(v):
    return None if _is_num(v) else f"expected a number, got {_tname(v)}"


def v_num_ge0(v):
    if not _is_num(v):
        return f"expected a number, got {_tname(v)}"
    return None if v >= 0 else f"must be >= 0, got {v}"


def v_qos(v):
    if isinstance(v, bool) or not isinstance(v, int):
        return f"expected an integer 0, 1 or 2, got {_tname(v)} {v!r}"
    return None if v in (0, 1, 2) else f"qos must be 0, 1 or 2, got {v}"


def v_in(values):
    def check(v):
        if not isinstance(v, str):
            return f"expected one of {list(values)}, got {_tname(v)}"
        return None if v in values else f"invalid value {v!r}, expected one of {list(values)}"
    return check


def v_enum_lower(values, allow_none):
    """DEVICE_CLASSES_SCHEMA style: lower-cased then coerced to the enum."""
    def check(v):
        if v is None:
            return None if allow_none else "must not be null"
        if not isinstance(v, str):
            return f"expected a string, got {_tname(v)}"
        if v != v.lower():
            return f"{v!r} must be lower case"
        return None if v in values else f"invalid value {v!r}, expected one of {sorted(values)}"
    return check


_TPL_PAIRS = (("{{", "}}"), ("{%", "%}"), ("{#", "#}"))


def v_template(v):
    if not isinstance(v, str):
        return f"template must be a string, got {_tname(v)}"
    i = 0
    while i < len(v):
        opened = next((p for p in _TPL_PAIRS if v.startswith(p[0], i)), None)
        if opened is None:
            if v.startswith(("}}", "%}", "#}"), i):
                return f"invalid template: stray {v[i:i + 2]!r} at {i}"
            i += 1
            continue
        end = v.find(opened[1], i + 2)
        if end < 0:
            return f"invalid template: {opened[0]!r} at {i} is never closed"
        inner = v[i + 2:end]
        if any(p[0] in inner for p in _TPL_PAIRS):
            return f"invalid template: nested delimiter inside {opened[0]!r} at {i}"
        i = end + 2
    return None


def _topic_common(v):
    if not isinstance(v, str):
        return f"topic must be a string, got {_tname(v)}"
    raw = v.encode("utf-8", "surrogatepass")
    if not raw:
        return "topic must not be empty"
    if len(raw) > 65535:
        return "topic is longer than 65535 bytes"
    for ch in v:
        o = ord(ch)
        if o == 0:
            return "topic must not contain a null character"
        if o <= 0x1F or 0x7F <= o <= 0x9F:
            return "topic must not contain control characters"
        if 0xFDD0 <= o <= 0xFDEF or (o & 0xFFFF) in (0xFFFE, 0xFFFF):
            return "topic must not contain non-characters"
        if 0xD800 <= o <= 0xDFFF:
            return "topic must be valid UTF-8"
    return None


def v_pub_topic(v):
    err = _topic_common(v)
    if err:
        return err
    if "+" in v or "#" in v:
        return f"wildcards are not allowed in a publish topic: {v!r}"
    return None


def v_sub_topic(v):
    err = _topic_common(v)
    if err:
        return err
    for i, c in enumerate(v):
        if c == "+" and ((i > 0 and v[i - 1] != "/") or (i < len(v) - 1 and v[i + 1] != "/")):
            return f"single-level wildcard must occupy an entire level: {v!r}"
    idx = v.find("#")
    if idx != -1:
        if idx != len(v) - 1:
            return f"multi-level wildcard must be the last character: {v!r}"
        if len(v) > 1 and v[idx - 1] != "/":
            return f"multi-level wildcard must follow a '/': {v!r}"
    return None


def _url(v, schemes):
    if not isinstance(v, str):
        return f"expected a URL string, got {_tname(v)}"
    p = urlparse(v)
    if p.scheme not in schemes:
        return f"invalid url {v!r}: scheme must be one of {sorted(schemes)}"
    if not p.netloc:
        return f"invalid url {v!r}: must have a host"
    return None


def v_url(v):  # cv.url: entity_picture
    return _url(v, {"http", "https"})


def v_configuration_url(v):  # cv.configuration_url: device and origin URLs
    return _url(v, {"http", "https", "homeassistant"})


def v_icon(v):
    if not isinstance(v, str):
        return f"expected a string, got {_tname(v)}"
    return None if ":" in v else f'icon {v!r} must be of the form "prefix:name" (e.g. mdi:fan)'


def v_temperature_unit(v):
    if not isinstance(v, str):
        return f"expected \"C\" or \"F\", got {_tname(v)}"
    return None if v.upper() in ("C", "F") else (
        f"invalid temperature unit {v!r} (expected C or F, not a symbol like °C)")


def v_regex(v):
    if not isinstance(v, str):
        return f"expected a regular expression string, got {_tname(v)}"
    try:
        re.compile(v)
    except re.error as exc:
        return f"invalid regular expression: {exc}"
    return None


def v_str_list(allow_scalar=True, nonempty=False):
    """cv.ensure_list + [cv.string]: a list of strings (a lone string is wrapped)."""
    def check(v):
        items = [v] if allow_scalar and isinstance(v, str) else v
        if not isinstance(items, list):
            return f"expected a list of strings, got {_tname(v)}"
        for i, it in enumerate(items):
            if not isinstance(it, str):
                return f"item {i} must be a string, got {_tname(it)}"
        if nonempty and not items:
            return "must not be an empty list"
        return None
    return check


def v_num_list_member(values):
    def check(v):
        if not _is_num(v):
            return f"expected a number, got {_tname(v)}"
        return None if float(v) in values else f"invalid value {v}, expected one of {list(values)}"
    return check


def v_message_expiry(v):
    return v_int_ge0(v)


# --------------------------------------------------------------------------------------
# Composite checks (device, origin, availability)
# --------------------------------------------------------------------------------------

DEVICE_KEYS = {
    "identifiers": v_str_list(), "connections": None, "manufacturer": v_str, "model": v_str,
    "model_id": v_str, "name": v_str, "hw_version": v_str, "serial_number": v_str,
    "sw_version": v_str, "via_device": v_str, "suggested_area": v_str,
    "configuration_url": v_configuration_url,
}
ORIGIN_KEYS = {"name": v_str, "sw_version": v_str, "support_url": v_configuration_url}


def _check_device(dev, path, errors):
    if not isinstance(dev, dict):
        errors.append(f"{path}: expected an object, got {_tname(dev)}")
        return
    for key, val in dev.items():
        if key == "via_hub":
            errors.append(f"{path}.via_hub: deprecated alias, use via_device")
            continue
        if key not in DEVICE_KEYS:
            errors.append(f"{path}: extra key {key!r} not allowed")
            continue
        if key == "connections":
            items = val if isinstance(val, list) else None
            if items is None:
                errors.append(f"{path}.connections: expected a list of [type, id] pairs")
                continue
            for i, pair in enumerate(items):
                if (not isinstance(pair, list) or len(pair) != 2
                        or not all(isinstance(x, str) for x in pair)):
                    errors.append(f"{path}.connections[{i}]: expected [\"type\", \"id\"] strings")
            continue
        err = DEVICE_KEYS[key](val)
        if err:
            errors.append(f"{path}.{key}: {err}")
    ids = dev.get("identifiers")
    cns = dev.get("connections")
    if not ids and not cns:
        errors.append(f"{path}: device must have at least one identifying value in "
                      "'identifiers' and/or 'connections'")


def _check_origin(org, path, errors):
    if not isinstance(org, dict):
        errors.append(f"{path}: expected an object, got {_tname(org)}")
        return
    if "name" not in org:
        errors.append(f"{path}: required key 'name' is missing")
    for key, val in org.items():
        if key not in ORIGIN_KEYS:
            errors.append(f"{path}: extra key {key!r} not allowed (name, sw_version, support_url)")
            continue
        err = ORIGIN_KEYS[key](val)
        if err:
            errors.append(f"{path}.{key}: {err}")


_AVAIL_ITEM_KEYS = {"topic": v_sub_topic, "payload_available": v_str,
                    "payload_not_available": v_str, "value_template": v_template}


def v_availability(v, path, errors):
    items = v if isinstance(v, list) else [v]
    if not isinstance(v, (list, dict)):
        errors.append(f"{path}: expected a list of objects, got {_tname(v)}")
        return
    for i, item in enumerate(items):
        ipath = f"{path}[{i}]"
        if not isinstance(item, dict):
            errors.append(f"{ipath}: expected an object, got {_tname(item)}")
            continue
        if "topic" not in item:
            errors.append(f"{ipath}: required key 'topic' is missing")
        for key, val in item.items():
            if key not in _AVAIL_ITEM_KEYS:
                errors.append(f"{ipath}: extra key {key!r} not allowed")
                continue
            err = _AVAIL_ITEM_KEYS[key](val)
            if err:
                errors.append(f"{ipath}.{key}: {err}")


# --------------------------------------------------------------------------------------
# Schemas: key -> (validator, required).  A validator taking (value, path, errors) is
# marked with the _COMPLEX set.
# --------------------------------------------------------------------------------------

_COMPLEX = {"availability", "device", "origin"}


def _opt(fn):
    return (fn, False)


def _req(fn):
    return (fn, True)


AVAILABILITY_SCHEMA = {
    "availability_topic": _opt(v_sub_topic),
    "availability_template": _opt(v_template),
    "payload_available": _opt(v_str),
    "payload_not_available": _opt(v_str),
    "availability_mode": _opt(v_in(AVAILABILITY_MODES)),
    "availability": _opt(v_availability),
}

BASE_SCHEMA = {"qos": _opt(v_qos), "encoding": _opt(v_str), "group": _opt(v_str_list())}

COMMON_SCHEMA = {
    **AVAILABILITY_SCHEMA,
    "device": _opt(_check_device),
    "entity_picture": _opt(v_url),
    "origin": _opt(_check_origin),
    "enabled_by_default": _opt(v_bool),
    "entity_category": _opt(v_in(ENTITY_CATEGORIES)),
    "icon": _opt(v_icon),
    "json_attributes_topic": _opt(v_sub_topic),
    "json_attributes_template": _opt(v_template),
    "default_entity_id": _opt(v_str_nonempty),
    "message_expiry_interval": _opt(v_message_expiry),
    "unique_id": _opt(v_str_nonempty),
    "visible_by_default": _opt(v_bool),
    "object_id": _opt(v_str_nonempty),  # only accepted by HA < 2026.4; see VERSIONED_KEYS
}

RO_SCHEMA = {**BASE_SCHEMA, "state_topic": _req(v_sub_topic), "value_template": _opt(v_template)}
RW_SCHEMA = {**BASE_SCHEMA, "command_topic": _req(v_pub_topic), "optimistic": _opt(v_bool),
             "retain": _opt(v_bool), "state_topic": _opt(v_sub_topic)}

NAME = {"name": _opt(v_str_or_none)}

_T, _TP, _ST = _opt(v_template), _opt(v_pub_topic), _opt(v_sub_topic)

CLIMATE_SCHEMA = {
    **BASE_SCHEMA, **COMMON_SCHEMA, **NAME,
    "current_humidity_template": _T, "current_humidity_topic": _ST,
    "current_temperature_template": _T, "current_temperature_topic": _ST,
    "fan_mode_command_template": _T, "fan_mode_command_topic": _TP,
    "fan_modes": _opt(v_str_list()), "fan_mode_state_template": _T, "fan_mode_state_topic": _ST,
    "target_humidity_command_template": _T, "target_humidity_command_topic": _TP,
    "min_humidity": _opt(v_num_ge0), "max_humidity": _opt(v_num_ge0),
    "target_humidity_state_template": _T, "target_humidity_state_topic": _ST,
    "mode_command_template": _T, "mode_command_topic": _TP,
    "modes": _opt(v_str_list()), "mode_state_template": _T, "mode_state_topic": _ST,
    "optimistic": _opt(v_bool), "payload_on": _opt(v_str), "payload_off": _opt(v_str),
    "power_command_topic": _TP, "power_command_template": _T,
    "precision": _opt(v_num_list_member(CLIMATE_PRECISIONS)),
    "retain": _opt(v_bool),
    "action_template": _T, "action_topic": _ST,
    "preset_mode_command_topic": _TP, "preset_modes": _opt(v_str_list()),
    "preset_mode_command_template": _T, "preset_mode_state_topic": _ST,
    "preset_mode_value_template": _T,
    "swing_horizontal_mode_command_template": _T, "swing_horizontal_mode_command_topic": _TP,
    "swing_horizontal_modes": _opt(v_str_list()),
    "swing_horizontal_mode_state_template": _T, "swing_horizontal_mode_state_topic": _ST,
    "swing_mode_command_template": _T, "swing_mode_command_topic": _TP,
    "swing_modes": _opt(v_str_list()), "swing_mode_state_template": _T,
    "swing_mode_state_topic": _ST,
    "initial": _opt(v_num), "min_temp": _opt(v_num), "max_temp": _opt(v_num),
    "temp_step": _opt(v_num),
    "temperature_command_template": _T, "temperature_command_topic": _TP,
    "temperature_high_command_template": _T, "temperature_high_command_topic": _TP,
    "temperature_high_state_template": _T, "temperature_high_state_topic": _ST,
    "temperature_low_command_template": _T, "temperature_low_command_topic": _TP,
    "temperature_low_state_template": _T, "temperature_low_state_topic": _ST,
    "temperature_state_template": _T, "temperature_state_topic": _ST,
    "temperature_unit": _opt(v_temperature_unit),
    "value_template": _T,
}

SENSOR_SCHEMA = {
    **RO_SCHEMA, **COMMON_SCHEMA, **NAME,
    "device_class": _opt(v_enum_lower(SENSOR_DEVICE_CLASSES, allow_none=True)),
    "expire_after": _opt(v_int_ge0),
    "force_update": _opt(v_bool),
    "last_reset_value_template": _T,
    "options": _opt(v_str_list()),
    "suggested_display_precision": _opt(v_int_ge0),
    "state_class": _opt(v_enum_lower(SENSOR_STATE_CLASSES, allow_none=True)),
    "unit_of_measurement": _opt(v_str_or_none),
}

BINARY_SENSOR_SCHEMA = {
    **RO_SCHEMA, **COMMON_SCHEMA, **NAME,
    "device_class": _opt(v_enum_lower(BINARY_SENSOR_DEVICE_CLASSES, allow_none=True)),
    "expire_after": _opt(v_int_ge0),
    "force_update": _opt(v_bool),
    "off_delay": _opt(v_int_ge0),
    "payload_off": _opt(v_str),
    "payload_on": _opt(v_str),
}

SWITCH_SCHEMA = {
    **RW_SCHEMA, **COMMON_SCHEMA, **NAME,
    "command_template": _T,
    "payload_off": _opt(v_str), "payload_on": _opt(v_str),
    "state_off": _opt(v_str), "state_on": _opt(v_str),
    "value_template": _T,
    "device_class": _opt(v_enum_lower(SWITCH_DEVICE_CLASSES, allow_none=True)),
}

SELECT_SCHEMA = {
    **RW_SCHEMA, **COMMON_SCHEMA, **NAME,
    "command_template": _T,
    "options": _req(v_str_list(nonempty=True)),
    "value_template": _T,
}

NUMBER_SCHEMA = {
    **RW_SCHEMA, **COMMON_SCHEMA, **NAME,
    "command_template": _T,
    "device_class": _opt(v_enum_lower(NUMBER_DEVICE_CLASSES, allow_none=True)),
    "max": _opt(v_num), "min": _opt(v_num),
    "mode": _opt(v_in(NUMBER_MODES)),
    "payload_reset": _opt(v_str),
    "step": _opt(v_num),
    "unit_of_measurement": _opt(v_str_or_none),
    "value_template": _T,
}

BUTTON_SCHEMA = {
    **BASE_SCHEMA, **COMMON_SCHEMA, **NAME,
    "command_template": _T,
    "command_topic": _req(v_pub_topic),
    "device_class": _opt(v_enum_lower(BUTTON_DEVICE_CLASSES, allow_none=True)),
    "payload_press": _opt(v_str),
    "retain": _opt(v_bool),
}

TEXT_SCHEMA = {
    **RW_SCHEMA, **COMMON_SCHEMA, **NAME,
    "command_template": _T,
    "max": _opt(v_int_ge0), "min": _opt(v_int_ge0),
    "mode": _opt(v_in(TEXT_MODES)),
    "pattern": _opt(v_regex),
    "value_template": _T,
}

EVENT_SCHEMA = {
    **RO_SCHEMA, **COMMON_SCHEMA, **NAME,
    "device_class": _opt(v_enum_lower(EVENT_DEVICE_CLASSES, allow_none=False)),
    "event_types": _req(v_str_list(nonempty=True)),
}

# update.py: an RO schema (state_topic with installed_version, or a JSON object with
# installed_version, latest_version, in_progress, update_percentage, ...) plus the install
# command.
UPDATE_SCHEMA = {
    **RO_SCHEMA, **COMMON_SCHEMA, **NAME,
    "state_topic": _opt(v_sub_topic),
    "command_topic": _opt(v_pub_topic),
    "device_class": _opt(v_enum_lower(UPDATE_DEVICE_CLASSES, allow_none=True)),
    "display_precision": _opt(v_int_ge0),
    "latest_version_template": _T,
    "latest_version_topic": _ST,
    "payload_install": _opt(v_str),
    "release_summary": _opt(v_str),
    "release_url": _opt(v_str),
    "retain": _opt(v_bool),
    "title": _opt(v_str),
}

PLATFORM_SCHEMAS = {
    "climate": CLIMATE_SCHEMA, "sensor": SENSOR_SCHEMA, "binary_sensor": BINARY_SENSOR_SCHEMA,
    "switch": SWITCH_SCHEMA, "select": SELECT_SCHEMA, "number": NUMBER_SCHEMA,
    "button": BUTTON_SCHEMA, "text": TEXT_SCHEMA, "event": EVENT_SCHEMA,
    "update": UPDATE_SCHEMA,
}
CHECKED_PLATFORMS = frozenset(PLATFORM_SCHEMAS)

ROOT_SCHEMA = {
    **AVAILABILITY_SCHEMA,
    "device": _req(_check_device),
    "components": _req(None),  # checked separately
    "origin": _req(_check_origin),
    "state_topic": _opt(v_sub_topic),
    "command_topic": _opt(v_pub_topic),
    "message_expiry_interval": _opt(v_message_expiry),
    "qos": _opt(v_qos),
    "encoding": _opt(v_str),
}


def _run_schema(schema, data, path, errors, profile, inherited=frozenset()):
    for key, (fn, required) in schema.items():
        if required and key not in data:
            errors.append(f"{path}: required key {key!r} is missing")
    for key, val in data.items():
        where = " (inherited from the root of the payload)" if key in inherited else ""
        if key not in schema:
            errors.append(f"{path}: extra key {key!r} not allowed{where}")
            continue
        if key in VERSIONED_KEYS and (profile == "portable" or key == "object_id"):
            errors.append(f"{path}.{key}: {VERSIONED_KEYS[key]}{where}")
            continue
        fn = schema[key][0]
        if fn is None:
            continue
        if key in _COMPLEX:
            fn(val, f"{path}.{key}", errors)
        else:
            err = fn(val)
            if err:
                errors.append(f"{path}.{key}: {err}{where}")
    if "availability" in data and "availability_topic" in data:
        errors.append(f"{path}: 'availability' and 'availability_topic' are mutually exclusive"
                      + (" (one of them is inherited from the root)"
                         if {"availability", "availability_topic"} & set(inherited) else ""))


# --------------------------------------------------------------------------------------
# Abbreviation expansion and "~"
# --------------------------------------------------------------------------------------


def _expand(obj, table, path, errors):
    if not isinstance(obj, dict):
        return obj
    out = {}
    for key, val in obj.items():
        full = table.get(key, key)
        if full in out:
            errors.append(f"{path}: key {key!r} duplicates {full!r} after abbreviation expansion")
        out[full] = val
    return out


def _expand_component(comp, path, errors):
    comp = _expand(comp, ABBREVIATIONS, path, errors)
    if isinstance(comp, dict) and isinstance(comp.get("availability"), list):
        comp["availability"] = [_expand(a, ABBREVIATIONS, f"{path}.availability[{i}]", errors)
                                for i, a in enumerate(comp["availability"])]
    return comp


def expand_abbreviations(payload):
    """Return (expanded deep copy, errors) the way discovery.py expands a device payload."""
    errors = []
    if not isinstance(payload, dict):
        return payload, ["payload: expected a JSON object"]
    root = _expand_component(copy.deepcopy(payload), "payload", errors)
    if isinstance(root.get("origin"), dict):
        root["origin"] = _expand(root["origin"], ORIGIN_ABBREVIATIONS, "payload.origin", errors)
    if isinstance(root.get("device"), dict):
        root["device"] = _expand(root["device"], DEVICE_ABBREVIATIONS, "payload.device", errors)
    if isinstance(root.get("components"), dict):
        root["components"] = {
            cid: _expand_component(c, f"payload.components.{cid}", errors)
            for cid, c in root["components"].items()
        }
    return root, errors


def _replace_topic_base(comp, path, errors):
    base = comp.pop("~")
    if not isinstance(base, str) or not base:
        errors.append(f"{path}.~: topic base must be a non-empty string")
        return
    for key, val in list(comp.items()):
        if key.endswith("topic") and isinstance(val, str) and val:
            if val[0] == "~":
                val = base + val[1:]
            if val[-1] == "~":
                val = val[:-1] + base
            comp[key] = val
    avail = comp.get("availability")
    for item in avail if isinstance(avail, list) else []:
        if isinstance(item, dict) and isinstance(item.get("topic"), str) and item["topic"]:
            t = item["topic"]
            if t[0] == "~":
                t = base + t[1:]
            if t[-1] == "~":
                t = t[:-1] + base
            item["topic"] = t


# --------------------------------------------------------------------------------------
# Cross-field rules per platform
# --------------------------------------------------------------------------------------


def _norm_unit(u):
    return _AMBIGUOUS_UNITS.get(u, u)


def _cross_sensor(c, path, errors, platform):
    dc = c.get("device_class")
    sc = c.get("state_class")
    unit = c.get("unit_of_measurement")
    if isinstance(unit, str) and not unit.strip():
        unit = None
    options = c.get("options")
    if "last_reset_value_template" in c and sc != "total":
        errors.append(f"{path}: last_reset_value_template requires state_class 'total' "
                      f"(got {sc!r})")
    if options is not None:
        opts = [options] if isinstance(options, str) else options
        if isinstance(opts, list) and not opts:
            errors.append(f"{path}.options: an empty options list is not allowed")
        if sc or unit:
            errors.append(f"{path}: options cannot be combined with state_class or "
                          "unit_of_measurement")
        if dc != "enum":
            errors.append(f"{path}: options require device_class 'enum' (got {dc!r})")
    if dc == "enum" and options is None:
        errors.append(f"{path}: device_class 'enum' needs an 'options' list")
    if dc in SENSOR_NON_NUMERIC_DEVICE_CLASSES:
        if unit is not None:
            errors.append(f"{path}: device_class {dc!r} is non-numeric and must not have a "
                          "unit_of_measurement")
        if sc is not None:
            errors.append(f"{path}: device_class {dc!r} is non-numeric and must not have a "
                          "state_class")
        if "suggested_display_precision" in c:
            errors.append(f"{path}: device_class {dc!r} is non-numeric and must not have "
                          "suggested_display_precision")
    if isinstance(sc, str) and sc in STATE_CLASS_UNITS and _norm_unit(unit) not in STATE_CLASS_UNITS[sc]:
        errors.append(f"{path}: unit {unit!r} is not valid with state_class {sc!r}")
    _check_unit(c, path, errors, dc, unit)
    if c.get("entity_category") == "config":
        errors.append(f"{path}.entity_category: {platform} entities cannot use 'config' "
                      "(Home Assistant refuses to add them); use 'diagnostic' or omit it")


def _check_unit(c, path, errors, dc, unit):
    if unit is None or not isinstance(dc, str) or dc not in DEVICE_CLASS_UNITS:
        return
    if not isinstance(unit, str):
        return
    allowed = DEVICE_CLASS_UNITS[dc]
    if _norm_unit(unit) not in allowed:
        shown = sorted("null" if u is None else u for u in allowed)
        errors.append(f"{path}: unit_of_measurement {unit!r} is not valid with device_class "
                      f"{dc!r} (allowed: {shown})")


def _cross_binary_sensor(c, path, errors, platform):
    if c.get("entity_category") == "config":
        errors.append(f"{path}.entity_category: {platform} entities cannot use 'config' "
                      "(Home Assistant refuses to add them); use 'diagnostic' or omit it")


def _cross_number(c, path, errors, platform):
    lo, hi = c.get("min", 0.0), c.get("max", 100.0)  # number DEFAULT_MIN/MAX_VALUE
    if _is_num(lo) and _is_num(hi) and lo > hi:
        errors.append(f"{path}: min ({lo}) must be <= max ({hi})")
    step = c.get("step")
    if _is_num(step) and step < 1e-3:
        errors.append(f"{path}.step: must be >= 0.001, got {step}")
    dc = c.get("device_class")
    _check_unit(c, path, errors, dc, c.get("unit_of_measurement"))


def _cross_text(c, path, errors, platform):
    lo, hi = c.get("min", 0), c.get("max", TEXT_MAX_LENGTH)
    if _is_num(lo) and _is_num(hi):
        if lo > hi:
            errors.append(f"{path}: text length min ({lo}) must be <= max ({hi})")
        if hi > TEXT_MAX_LENGTH:
            errors.append(f"{path}.max: max text length must be <= {TEXT_MAX_LENGTH}")


def _cross_climate(c, path, errors, platform):
    modes = c.get("modes")
    if isinstance(modes, str):
        modes = [modes]
    if isinstance(modes, list):
        for m in modes:
            if isinstance(m, str) and m not in HVAC_MODES:
                errors.append(f"{path}.modes: invalid HVAC mode {m!r}, expected any of "
                              f"{list(HVAC_MODES)}")
        if len(set(map(str, modes))) != len(modes):
            errors.append(f"{path}.modes: duplicate modes")
    presets = c.get("preset_modes")
    if ("preset_mode_command_topic" in c) != ("preset_modes" in c):
        errors.append(f"{path}: preset_mode_command_topic and preset_modes must be used together")
    if isinstance(presets, list) and "none" in presets:
        errors.append(f"{path}.preset_modes: must not include preset mode 'none'")
    hmin, hmax = c.get("min_humidity", 30), c.get("max_humidity", 99)
    if _is_num(hmin) and _is_num(hmax):
        if hmin >= hmax:
            errors.append(f"{path}: max_humidity must be > min_humidity")
        if hmax > 100:
            errors.append(f"{path}.max_humidity: must be <= 100")
    if "target_humidity_state_topic" in c and "target_humidity_command_topic" not in c:
        errors.append(f"{path}: target_humidity_state_topic cannot be used without "
                      "target_humidity_command_topic")
    tmin, tmax = c.get("min_temp"), c.get("max_temp")
    if _is_num(tmin) and _is_num(tmax) and tmin > tmax:
        errors.append(f"{path}: min_temp ({tmin}) must be <= max_temp ({tmax})")
    step = c.get("temp_step")
    if _is_num(step) and step <= 0:
        errors.append(f"{path}.temp_step: must be > 0")


CROSS_CHECKS = {
    "sensor": _cross_sensor, "binary_sensor": _cross_binary_sensor, "number": _cross_number,
    "text": _cross_text, "climate": _cross_climate,
}


def _check_default_entity_id(c, path, errors, platform):
    deid = c.get("default_entity_id")
    if not isinstance(deid, str):
        return
    m = re.fullmatch(r"([a-z0-9_]+)\.([a-z0-9_]+)", deid)
    if not m or m.group(2).startswith("_") or m.group(2).endswith("_") or "__" in deid:
        errors.append(f"{path}.default_entity_id: {deid!r} must be a full entity id "
                      f"'{platform}.<lower_case_slug>'")
    elif m.group(1) != platform:
        errors.append(f"{path}.default_entity_id: domain {m.group(1)!r} does not match "
                      f"platform {platform!r}")


# --------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------


def validate_device_discovery(payload, profile="latest"):
    """Validate a device-based discovery payload; return a list of error strings."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}")
    if not isinstance(payload, dict):
        return [f"payload: expected a JSON object, got {_tname(payload)}"]

    root, errors = expand_abbreviations(payload)

    if "migrate_discovery" in root:
        if root["migrate_discovery"] is not True:
            errors.append("payload.migrate_discovery: the only allowed value is true")
        return errors

    if "~" in root:
        errors.append("payload: extra key '~' not allowed at the root of a device payload "
                      "(put the topic base inside each component)")
        root = {k: v for k, v in root.items() if k != "~"}

    _run_schema(ROOT_SCHEMA, root, "payload", errors, profile)

    comps = root.get("components")
    if "components" in root and not isinstance(comps, dict):
        errors.append(f"payload.components: expected an object, got {_tname(comps)}")
        return errors
    if not isinstance(comps, dict):
        return errors

    seen_uids = {}
    for cid, comp in comps.items():
        path = f"payload.components.{cid}"
        if not isinstance(comp, dict):
            errors.append(f"{path}: expected an object, got {_tname(comp)}")
            continue
        if "platform" not in comp:
            errors.append(f"{path}: required key 'platform' is missing")
            continue
        platform = comp["platform"]
        if not isinstance(platform, str) or platform not in SUPPORTED_COMPONENTS:
            errors.append(f"{path}.platform: {platform!r} is not a supported MQTT platform")
            continue
        body = {k: v for k, v in comp.items() if k != "platform"}
        if not body:
            continue  # removal marker: {"platform": "..."} deletes the component
        if platform in ENTITY_PLATFORMS and "unique_id" not in body:
            errors.append(f"{path}: required key 'unique_id' is missing (entity components "
                          "of a device payload need one)")
        if platform not in PLATFORM_SCHEMAS:
            errors.append(f"{path}.platform: {platform!r} is not covered by this strict "
                          f"validator (checked: {sorted(PLATFORM_SCHEMAS)})")
            continue
        for key in ("device", "origin"):
            if key in body:
                errors.append(f"{path}: {key!r} belongs at the root of a device payload; "
                              "Home Assistant overwrites it per component")
                body.pop(key)

        inherited = set()
        for opt in SHARED_OPTIONS:
            if opt in root and opt not in body:
                body[opt] = copy.deepcopy(root[opt])
                inherited.add(opt)
        if "~" in body:
            _replace_topic_base(body, path, errors)

        _run_schema(PLATFORM_SCHEMAS[platform], body, f"{path} ({platform})", errors, profile,
                    frozenset(inherited))
        cpath = f"{path} ({platform})"
        if platform in CROSS_CHECKS:
            CROSS_CHECKS[platform](body, cpath, errors, platform)
        _check_default_entity_id(body, cpath, errors, platform)

        uid = body.get("unique_id")
        if isinstance(uid, str):
            if uid in seen_uids:
                errors.append(f"{path}.unique_id: {uid!r} is already used by component "
                              f"{seen_uids[uid]!r}")
            else:
                seen_uids[uid] = cid
    return errors


def lint_device_discovery(payload):
    """Advisory warnings: things HA accepts but logs about, or that surprise users."""
    warnings = []
    root, _ = expand_abbreviations(payload)
    if not isinstance(root, dict):
        return warnings
    dev = root.get("device") if isinstance(root.get("device"), dict) else {}
    dev_name = dev.get("name") if isinstance(dev.get("name"), str) else None
    if dev and dev_name is None:
        warnings.append("payload.device: no 'name' (HA logs that device info should always "
                        "include a name)")
    for key in ("state_topic", "command_topic"):
        if key in root:
            warnings.append(f"payload.{key}: inherited by every component, including platforms "
                            "that do not accept it (e.g. button, climate)")
    comps = root.get("components") if isinstance(root.get("components"), dict) else {}
    if not comps:
        warnings.append("payload.components: no components")
    for cid, c in comps.items():
        path = f"payload.components.{cid}"
        if not _ID_RE.fullmatch(str(cid)):
            warnings.append(f"{path}: component id should only use [a-zA-Z0-9_-]")
        if not isinstance(c, dict):
            continue
        name = c.get("name", "<absent>")
        if name == "<absent>" and len(c) > 1:
            warnings.append(f"{path}: no 'name'; HA uses the device class or a generic "
                            "default ('MQTT ...'); set a string or null")
        if dev_name and isinstance(name, str) and name.lower().startswith(dev_name.lower()):
            warnings.append(f"{path}.name: {name!r} starts with the device name; HA strips "
                            "the prefix and raises a repair issue")
        if "json_attributes_template" in c and "json_attributes_topic" not in c:
            warnings.append(f"{path}: json_attributes_template without json_attributes_topic "
                            "does nothing")
        if c.get("platform") == "sensor":
            dc, sc = c.get("device_class"), c.get("state_class")
            if dc in _DEVICE_CLASS_STATE_CLASSES and sc and sc not in _DEVICE_CLASS_STATE_CLASSES[dc]:
                warnings.append(f"{path}: state_class {sc!r} is unusual for device_class {dc!r} "
                                "(HA logs a warning)")
    return warnings


def validate_topic(topic, prefix="homeassistant", component="device"):
    """Check a discovery topic <prefix>/<component>/[<node_id>/]<object_id>/config.

    component: the expected component ("device" for device-based discovery) or None to
    accept any supported component.
    """
    errors = []
    err = v_pub_topic(topic)
    if err:
        return [f"topic: {err}"]
    if not topic.startswith(prefix + "/"):
        return [f"topic: {topic!r} does not start with the discovery prefix {prefix!r}/"]
    parts = topic[len(prefix) + 1:].split("/")
    if len(parts) not in (3, 4) or parts[-1] != "config":
        return [f"topic: {topic!r} must be {prefix}/<component>/[<node_id>/]<object_id>/config"]
    comp = parts[0]
    if not _COMPONENT_RE.fullmatch(comp):
        errors.append(f"topic: invalid component {comp!r}")
    elif component is not None and comp != component:
        errors.append(f"topic: component is {comp!r}, expected {component!r}")
    elif comp != "device" and comp not in SUPPORTED_COMPONENTS:
        errors.append(f"topic: {comp!r} is not a supported MQTT discovery component")
    for label, val in zip(("node_id", "object_id") if len(parts) == 4 else ("object_id",),
                          parts[1:-1]):
        if not _ID_RE.fullmatch(val):
            errors.append(f"topic: {label} {val!r} may only contain [a-zA-Z0-9_-]")
    return errors


if __name__ == "__main__":  # pragma: no cover - convenience CLI
    import json
    import sys

    data = json.load(sys.stdin if len(sys.argv) < 2 else open(sys.argv[1], encoding="utf-8"))
    problems = validate_device_discovery(data)
    for line in problems:
        print("ERROR", line)
    for line in lint_device_discovery(data):
        print("WARN ", line)
    sys.exit(1 if problems else 0)
