/* json_sensor.c - JSON sensors: any small device that serves a WebSocket and pushes its
 * readings as one JSON object (a hygrometer in a filament dry box, a thermometer in
 * the printer's enclosure). The protocol is this project's own, short enough to
 * implement in a few lines on an ESP32 or in a script: docs/protocol-json-sensor.md.
 *
 * It is also the smallest complete family, and the one docs/ADDING-A-FAMILY.md tells
 * a contributor to copy: an entity table, the REQUIRED members of struct p2m_driver
 * (driver.h), and one command (the report interval) to show writing.
 *
 * Owns: the table and what the frames mean. Does not own: the link, the state, Home
 * Assistant or the MQTT topics (the core does all of that from the table). */
#include "panda2mqtt/command.h"
#include "panda2mqtt/entity.h"
#include "panda2mqtt/families.h"
#include "panda2mqtt/json_util.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* Every frame, both ways, is {"sensor": {...}}. */
#define JS_ROOT "sensor"

/* What one command asks for: js_plan() turns it into frames. */
struct js_intent {
	int interval; /* seconds; 0: unchanged */
};

/* ---- reading ---- */

static const char *js_string(const cJSON *dev, const char *field)
{
	const cJSON *v = p2m_json_field(dev, JS_ROOT, field);

	return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

static const char *js_fw_version(const cJSON *dev)
{
	return js_string(dev, "fw");
}

static const char *js_display_name(const cJSON *dev)
{
	return js_string(dev, "name");
}

/* The first frame of a connection: a "sensor" object with its id. */
static bool js_is_snapshot(const cJSON *frame)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(frame, JS_ROOT);

	return cJSON_IsObject(s) && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(s, "id"));
}

/* "sensor_<id>": the device's own id, lower-cased, anything but [a-z0-9_-] dropped. */
static bool js_device_id(const cJSON *dev, char *buf, size_t len)
{
	const char *id = js_string(dev, "id");
	size_t o;

	if (!id || len < sizeof("sensor_") + 1)
		return false;
	o = (size_t)snprintf(buf, len, "sensor_");
	for (const char *p = id; *p && o + 1 < len && o < P2M_ID_MAX; p++) {
		char c = (char)tolower((unsigned char)*p);

		if (isalnum((unsigned char)c) || c == '_' || c == '-')
			buf[o++] = c;
	}
	buf[o] = '\0';
	return o > sizeof("sensor_") - 1;
}

/* ---- writing ---- */

static int js_write_interval(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v)
{
	double x;

	if (p2m_cmd_number(cmd, e, v, &x) != 0)
		return -1;
	((struct js_intent *)cmd->intent)->interval = (int)x;
	return 0;
}

static int js_plan(struct p2m_cmd *cmd)
{
	const struct js_intent *in = cmd->intent;

	if (in->interval)
		p2m_cmd_frame(cmd, JS_ROOT, "interval", cJSON_CreateNumber(in->interval));
	return 0;
}

/* ---- the table ---- */

/* A reading: a sensor row that exists only once the device has reported it (a
 * thermometer gets no humidity entity). */
#define READING(k, n, f, dc, u)                                                                    \
	.key = (k), .name = (n), .platform = P2M_SENSOR, .vtype = P2M_V_NUMBER,                    \
	.device_class = (dc), .unit = (u), .state_class = "measurement", .root = JS_ROOT,          \
	.field = (f), .optional = true

/* clang-format off */
static const struct p2m_entity js_entities[] = {
	{READING("temperature", "Temperature", "temperature", "temperature", "°C"),
	 .report_min = -60, .report_max = 200},
	{READING("humidity", "Humidity", "humidity", "humidity", "%"),
	 .report_min = 0, .report_max = 100},
	{READING("pressure", "Pressure", "pressure", "atmospheric_pressure", "hPa"),
	 .report_min = 300, .report_max = 1200},
	{READING("battery", "Battery", "battery", "battery", "%"),
	 .report_min = 0, .report_max = 100},
	{READING("signal_strength", "Signal strength", "rssi", "signal_strength", "dBm"),
	 .category = "diagnostic", .disabled = true, .report_min = -120, .report_max = 0},
	{.key = "interval", .name = "Report interval", .platform = P2M_NUMBER,
	 .vtype = P2M_V_INT, .category = "config", .icon = "mdi:timer-outline", .unit = "s",
	 .root = JS_ROOT, .field = "interval", .optional = true, .min = 1, .max = 3600,
	 .step = 1, .write = js_write_interval},
	{.key = "firmware_version", .name = "Firmware version", .platform = P2M_SENSOR,
	 .vtype = P2M_V_STRING, .category = "diagnostic", .root = JS_ROOT, .field = "fw"},
	/* the core's events (a refused command, a restart): every family has this row */
	{.key = "event", .name = "Events", .platform = P2M_EVENT},
};
/* clang-format on */

static const char *const js_roots[] = {JS_ROOT, NULL};

/* Besides the fields rows read: who the device says it is. */
static const char *const js_report_fields[] = {JS_ROOT ".id", JS_ROOT ".name", JS_ROOT ".model",
					       NULL};

const struct p2m_driver p2m_driver_json_sensor = {
    .name = "json_sensor",
    .manufacturer = "panda2mqtt",
    .model = "JSON sensor",
    .ws_path = "/sensor",
    .dnssd_type = "_json-sensor._tcp",
    .entities = js_entities,
    .n_entities = sizeof(js_entities) / sizeof(js_entities[0]),
    .roots = js_roots,
    .is_snapshot = js_is_snapshot,
    .fw_version = js_fw_version,
    .device_id = js_device_id,
    .report_fields = js_report_fields,
    .snapshot_is_whole = true,
    .intent_size = sizeof(struct js_intent),
    .plan = js_plan,
    .display_name = js_display_name,
    .discovery_inputs = JS_ROOT ".fw " JS_ROOT ".name",
};
