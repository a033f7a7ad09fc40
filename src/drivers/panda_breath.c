/* panda_breath.c - the BIQU Panda Breath chamber heater / filament dryer.
 *
 * Owns: the Panda Breath's entity table, how its fields map to Home Assistant, and
 * its write discipline (see ../shared/docs/panda-breath-field-notes.md):
 *  - one field per frame, in the proven order: isrunning:0, work_mode, target, work_on;
 *  - work_on always a JSON boolean (V1.0.3 ignores integers);
 *  - the target is "set_temp" from V1.0.1 on and "temp" on the v0.0.0/"V1.0.0" build;
 *  - drying temperature: filament_temp then filament_drying_mode:3; isrunning:1 starts.
 * Does not own: transport, reconnects or MQTT. */
#include "panda2mqtt/command.h"
#include "panda2mqtt/drivers.h"
#include "panda2mqtt/entity.h"
#include "panda2mqtt/json_util.h"

#include <stdio.h>
#include <string.h>

enum { PB_WORK_AUTO = 1, PB_WORK_ALWAYS_ON = 2, PB_WORK_DRYING = 3 };
enum { PB_MODE_NONE = -1, PB_MODE_OFF, PB_MODE_HEAT, PB_MODE_AUTO, PB_MODE_DRY };

static const char *const pb_modes[] = {"off", "heat", "auto", "dry", NULL};
static const char *const pb_work_modes[] = {"auto", "always_on", "drying", NULL};
static const int pb_work_mode_values[] = {PB_WORK_AUTO, PB_WORK_ALWAYS_ON, PB_WORK_DRYING};

/* What one command asks for; plan() turns it into frames. */
struct pb_intent {
	int mode; /* PB_MODE_* */
	bool has_target;
	double target;
	int power;     /* -1 unset, 0 off, 1 on */
	int work_mode; /* 0 unset, else PB_WORK_* */
};

static bool get_int(const cJSON *dev, const char *field, int *out)
{
	const cJSON *v = p2m_json_field(dev, "settings", field);

	if (cJSON_IsBool(v)) {
		*out = cJSON_IsTrue(v);
		return true;
	}
	if (cJSON_IsNumber(v)) {
		*out = v->valueint;
		return true;
	}
	return false;
}

/* The climate mode the device is in, from work_on, work_mode and isrunning. */
static int pb_current_mode(const cJSON *dev)
{
	int on, work, running = 0;

	if (!get_int(dev, "work_on", &on))
		return PB_MODE_NONE;
	get_int(dev, "isrunning", &running);
	if (running == 1)
		return PB_MODE_DRY;
	if (!on)
		return PB_MODE_OFF;
	if (!get_int(dev, "work_mode", &work))
		return PB_MODE_NONE;
	switch (work) {
	case PB_WORK_AUTO:
		return PB_MODE_AUTO;
	case PB_WORK_ALWAYS_ON:
		return PB_MODE_HEAT;
	case PB_WORK_DRYING:
		return PB_MODE_DRY;
	default:
		return PB_MODE_NONE;
	}
}

static cJSON *pb_read_mode(const struct p2m_entity *e, const cJSON *dev)
{
	int m = pb_current_mode(dev);

	(void)e;
	return m == PB_MODE_NONE ? NULL : cJSON_CreateString(pb_modes[m]);
}

/* In drying the climate target is the drying temperature; otherwise the heating target. */
static cJSON *pb_read_target(const struct p2m_entity *e, const cJSON *dev)
{
	const char *const fields[] = {"set_temp", "temp"};
	const cJSON *v;

	(void)e;
	if (pb_current_mode(dev) == PB_MODE_DRY) {
		v = p2m_json_field(dev, "settings", "custom_temp");
		return cJSON_IsNumber(v) ? cJSON_CreateNumber(v->valuedouble) : NULL;
	}
	for (size_t i = 0; i < 2; i++) {
		v = p2m_json_field(dev, "settings", fields[i]);
		if (cJSON_IsNumber(v))
			return cJSON_CreateNumber(v->valuedouble);
	}
	return NULL;
}

/* "temp" on builds before V1.0.1 (they report "V1.0.0" or "v0.0.0"); "set_temp" after,
 * and when the version cannot be read, since every current firmware reads set_temp. */
static const char *pb_target_field(const cJSON *dev)
{
	const cJSON *v = p2m_json_field(dev, "settings", "fw_version");
	int major, minor, patch;

	if (cJSON_IsString(v) &&
	    sscanf(v->valuestring, "%*1[vV]%d.%d.%d", &major, &minor, &patch) == 3 &&
	    (major == 0 || (major == 1 && minor == 0 && patch == 0)))
		return "temp";
	return "set_temp";
}

static int pb_write_mode(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v)
{
	struct pb_intent *in = cmd->intent;
	int i;

	if (p2m_cmd_option(cmd, e, pb_modes, v, &i) != 0)
		return -1;
	in->mode = i;
	return 0;
}

static int pb_write_target(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v)
{
	struct pb_intent *in = cmd->intent;

	if (p2m_cmd_number(cmd, e, v, &in->target) != 0)
		return -1;
	in->has_target = true;
	return 0;
}

static int pb_write_power(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v)
{
	struct pb_intent *in = cmd->intent;
	bool on;

	if (p2m_cmd_bool(cmd, e, v, &on) != 0)
		return -1;
	in->power = on;
	return 0;
}

static int pb_write_work_mode(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v)
{
	struct pb_intent *in = cmd->intent;
	int i;

	if (p2m_cmd_option(cmd, e, e->options, v, &i) != 0)
		return -1;
	in->work_mode = e->values[i];
	return 0;
}

static void pb_intent_init(void *intent)
{
	struct pb_intent *in = intent;

	in->mode = PB_MODE_NONE;
	in->power = -1;
}

static void settings_int(struct p2m_cmd *cmd, const char *field, double v)
{
	p2m_cmd_frame(cmd, "settings", field, cJSON_CreateNumber(v));
}

static void settings_bool(struct p2m_cmd *cmd, const char *field, bool v)
{
	p2m_cmd_frame(cmd, "settings", field, cJSON_CreateBool(v));
}

static void pb_plan_target(struct p2m_cmd *cmd, const struct pb_intent *in, int mode)
{
	if (mode == PB_MODE_DRY) {
		settings_int(cmd, "filament_temp", in->target);
		settings_int(cmd, "filament_drying_mode", 3);
	} else {
		settings_int(cmd, pb_target_field(cmd->dev), in->target);
	}
}

static int pb_plan(struct p2m_cmd *cmd)
{
	const struct pb_intent *in = cmd->intent;
	int current = pb_current_mode(cmd->dev);

	if (in->mode != PB_MODE_NONE && (in->power >= 0 || in->work_mode))
		return p2m_cmd_reject(cmd, "mode", "mode cannot be combined with %s",
				      in->power >= 0 ? "power" : "work_mode");
	if (in->power >= 0 && in->work_mode)
		return p2m_cmd_reject(cmd, "power", "power cannot be combined with work_mode");

	switch (in->mode) {
	case PB_MODE_OFF:
		if (current == PB_MODE_DRY)
			settings_int(cmd, "isrunning", 0);
		if (in->has_target)
			pb_plan_target(cmd, in, current);
		settings_bool(cmd, "work_on", false);
		return 0;
	case PB_MODE_HEAT:
	case PB_MODE_AUTO:
		settings_int(cmd, "isrunning", 0);
		settings_int(cmd, "work_mode",
			     in->mode == PB_MODE_HEAT ? PB_WORK_ALWAYS_ON : PB_WORK_AUTO);
		if (in->has_target)
			pb_plan_target(cmd, in, in->mode);
		settings_bool(cmd, "work_on", true);
		return 0;
	case PB_MODE_DRY:
		settings_int(cmd, "work_mode", PB_WORK_DRYING);
		if (in->has_target)
			pb_plan_target(cmd, in, PB_MODE_DRY);
		settings_int(cmd, "isrunning", 1);
		return 0;
	default:
		break;
	}
	if (in->work_mode)
		settings_int(cmd, "work_mode", in->work_mode);
	if (in->has_target)
		pb_plan_target(cmd, in, current);
	if (in->power >= 0)
		settings_bool(cmd, "work_on", in->power);
	return 0;
}

static bool pb_is_snapshot(const cJSON *frame)
{
	return cJSON_IsString(p2m_json_field(frame, "settings", "fw_version")) &&
	       p2m_json_field(frame, "settings", "work_on") != NULL;
}

static const char *pb_fw_version(const cJSON *dev)
{
	const cJSON *v = p2m_json_field(dev, "settings", "fw_version");

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const struct p2m_climate_keys pb_climate = {
	.mode = "mode",
	.target = "target_temperature",
	.current = "chamber_temperature",
	.modes = pb_modes,
};

#define TEMP_SENSOR .platform = P2M_SENSOR, .vtype = P2M_V_NUMBER, .device_class = "temperature", \
		    .unit = "°C", .state_class = "measurement"

static const struct p2m_entity pb_entities[] = {
	{.key = "climate", .name = NULL, .platform = P2M_CLIMATE, .climate = &pb_climate,
	 .min = 0, .max = 60, .step = 1, .capped = true},
	{.key = "mode", .platform = P2M_NONE, .vtype = P2M_V_STRING, .read = pb_read_mode,
	 .write = pb_write_mode, .options = pb_modes},
	{.key = "target_temperature", .platform = P2M_NONE, .vtype = P2M_V_INT,
	 .read = pb_read_target, .write = pb_write_target, .min = 0, .max = 60, .step = 1,
	 .capped = true},
	{.key = "chamber_temperature", .name = "Chamber temperature", TEMP_SENSOR,
	 .root = "settings", .field = "cal_warehouse_temp", .fallback = "warehouse_temper"},
	{.key = "chamber_temperature_raw", .name = "Chamber temperature (raw)", TEMP_SENSOR,
	 .category = "diagnostic", .disabled = true, .root = "settings",
	 .field = "warehouse_temper"},
	{.key = "heater_temperature", .name = "Heater temperature", TEMP_SENSOR,
	 .root = "settings", .field = "cal_ptc_temp"},
	{.key = "work_mode", .name = "Work mode", .platform = P2M_SELECT, .vtype = P2M_V_ENUM,
	 .icon = "mdi:cog", .root = "settings", .field = "work_mode", .options = pb_work_modes,
	 .values = pb_work_mode_values, .write = pb_write_work_mode},
	{.key = "power", .name = "Heater", .platform = P2M_SWITCH, .vtype = P2M_V_BOOL,
	 .icon = "mdi:heat-wave", .root = "settings", .field = "work_on",
	 .write = pb_write_power},
	{.key = "firmware_version", .name = "Firmware version", .platform = P2M_SENSOR,
	 .vtype = P2M_V_STRING, .category = "diagnostic", .root = "settings",
	 .field = "fw_version"},
};

static const char *const pb_roots[] = {"settings", "printer", "sta", "ap",
				       "wifi",     "ha",      "response", NULL};

const struct p2m_driver p2m_driver_panda_breath = {
	.name = "panda_breath",
	.manufacturer = "BIQU",
	.model = "Panda Breath",
	.entities = pb_entities,
	.n_entities = sizeof(pb_entities) / sizeof(pb_entities[0]),
	.intent_size = sizeof(struct pb_intent),
	.intent_init = pb_intent_init,
	.plan = pb_plan,
	.is_snapshot = pb_is_snapshot,
	.fw_version = pb_fw_version,
	.roots = pb_roots,
};
