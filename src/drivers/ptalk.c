/* ptalk.c - PTalk speakers with a display, which dial in to the gateway.
 *
 * Owns: the PTalk entity table and its conversation (docs/protocol-ptalk.md): the device opens a
 * WebSocket to [dialin], introduces itself with a device_handshake, and answers every {"cmd": ...}
 * it is sent, in order, with {"status": "ok" | "error" | "not_supported" | "invalid_command" |
 * "invalid_param", ...}. Both the handshake and the answers are flat objects; they are
 * merged as the one root "ptalk" so that the generic engine (entity.c) reads them like
 * any family's state. A refusal becomes a "command_failed" event naming the request.
 *  - set_wifi is never sent: Wi-Fi is provisioned over BLE, no row writes it;
 *  - reboot goes last in a command; a firmware install is request_ota, then (once the
 *    device said ok) the image as one binary message, then the device reboots.
 * Does not own: the listener, sessions or the request queue (dialin.c, device.c),
 * firmware files (firmware.c). */
#include "panda2mqtt/command.h"
#include "panda2mqtt/families.h"
#include "panda2mqtt/entity.h"
#include "panda2mqtt/events.h"
#include "panda2mqtt/json_util.h"
#include "panda2mqtt/update.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define PT_ROOT "ptalk"
/* The longest "message" of a refusal kept in its event. */
#define PT_MESSAGE_MAX 200

/* The events of this family's own hooks; the core adds command_rejected, ... (events.h). */
static const char *const pt_event_types[] = {"command_failed", NULL};

/* What one command asks for; pt_plan() turns it into requests in a safe order. */
struct pt_intent {
	int volume;	/* -1: unchanged */
	int brightness; /* -1: unchanged */
	const char *name;
	bool reboot;
	bool install;
};

static void pt_intent_init(void *intent)
{
	struct pt_intent *in = intent;

	in->volume = in->brightness = -1;
}

/* ---- reading ---- */

static const char *pt_fw_version(const cJSON *dev)
{
	const cJSON *v = p2m_json_field(dev, PT_ROOT, "firmware_version");

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Home Assistant's update entity takes one JSON object (update.h). */
static cJSON *pt_read_update(const struct p2m_entity *e, const struct p2m_view *v)
{
	(void)e;
	return p2m_update_state("PTalk firmware", pt_fw_version(v->dev), v->update);
}

/* ---- writing ---- */

static int pt_write_level(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v)
{
	struct pt_intent *in = cmd->intent;
	double x;

	if (p2m_cmd_number(cmd, e, v, &x) != 0)
		return -1;
	if (strcmp(e->key, "volume") == 0)
		in->volume = (int)x;
	else
		in->brightness = (int)x;
	return 0;
}

static int pt_write_name(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v)
{
	return p2m_cmd_text(cmd, e, v, &((struct pt_intent *)cmd->intent)->name);
}

static int pt_write_reboot(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v)
{
	if (p2m_cmd_press(cmd, e, v) != 0)
		return -1;
	((struct pt_intent *)cmd->intent)->reboot = true;
	return 0;
}

static int pt_write_install(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v)
{
	const struct p2m_update_view *u = cmd->view ? cmd->view->update : NULL;
	const char *fw = pt_fw_version(cmd->dev);

	if (!cJSON_IsString(v) || strcmp(v->valuestring, "install") != 0)
		return p2m_cmd_reject(cmd, e->key, "the payload must be \"install\"");
	if (!u || !u->latest || !u->path)
		return p2m_cmd_reject(cmd, e->key,
				      "no firmware image for this device ([firmware] dir)");
	if (u->in_progress)
		return p2m_cmd_reject(cmd, e->key, "an update is already in progress");
	if (fw && strcmp(fw, u->latest) == 0)
		return p2m_cmd_reject(cmd, e->key, "firmware %s is already installed", fw);
	((struct pt_intent *)cmd->intent)->install = true;
	return 0;
}

static cJSON *request(const char *name)
{
	cJSON *f = cJSON_CreateObject();

	cJSON_AddStringToObject(f, "cmd", name);
	return f;
}

static int pt_plan(struct p2m_cmd *cmd)
{
	const struct pt_intent *in = cmd->intent;
	cJSON *f;

	if (in->reboot && in->install)
		return p2m_cmd_reject(cmd, "reboot",
				      "a firmware install reboots the device by itself");
	if (in->volume >= 0) {
		f = request("set_volume");
		cJSON_AddNumberToObject(f, "volume", in->volume);
		p2m_cmd_frame_object(cmd, f);
	}
	if (in->brightness >= 0) {
		f = request("set_brightness");
		cJSON_AddNumberToObject(f, "brightness", in->brightness);
		p2m_cmd_frame_object(cmd, f);
	}
	if (in->name) {
		f = request("set_device_name");
		cJSON_AddStringToObject(f, "device_name", in->name);
		p2m_cmd_frame_object(cmd, f);
	}
	if (in->install) {
		f = request("request_ota");
		cJSON_AddStringToObject(f, "version", cmd->view->update->latest);
		p2m_cmd_frame_object(cmd, f);
		/* The image goes only to a device that said it is ready for it. */
		p2m_cmd_await_reply(cmd);
		p2m_cmd_send_file(cmd, cmd->view->update->path);
	}
	if (in->reboot)
		p2m_cmd_frame_object(cmd, request("reboot"));
	return 0;
}

static bool pt_restarts(const cJSON *frame)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(frame, "cmd");

	return cJSON_IsString(c) && strcmp(c->valuestring, "reboot") == 0;
}

/* ---- the conversation ---- */

static bool pt_is_snapshot(const cJSON *frame)
{
	const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(frame, "cmd");

	return cJSON_IsString(cmd) && strcmp(cmd->valuestring, "device_handshake") == 0 &&
	       cJSON_IsString(cJSON_GetObjectItemCaseSensitive(frame, "device_id"));
}

/* "ptalk_<mac>": the device_id is the MAC ("A1B2C3D4E5F6", separators dropped). */
static bool pt_device_id(const cJSON *dev, char *buf, size_t len)
{
	const cJSON *mac = p2m_json_field(dev, PT_ROOT, "device_id");
	size_t o;

	if (!cJSON_IsString(mac) || len < sizeof("ptalk_") + 1)
		return false;
	o = (size_t)snprintf(buf, len, "ptalk_");
	for (const char *p = mac->valuestring; *p && o + 1 < len && o < P2M_ID_MAX; p++) {
		if (*p == ':' || *p == '-')
			continue;
		if (!isalnum((unsigned char)*p))
			return false;
		buf[o++] = (char)tolower((unsigned char)*p);
	}
	buf[o] = '\0';
	return o > sizeof("ptalk_") - 1;
}

/* "a1:b2:c3:d4:e5:f6": the device_id is the MAC. */
static bool pt_mac_address(const cJSON *dev, char *buf, size_t len)
{
	const cJSON *mac = p2m_json_field(dev, PT_ROOT, "device_id");
	char hex[13];
	size_t n = 0;

	if (!cJSON_IsString(mac) || len < 18)
		return false;
	for (const char *p = mac->valuestring; *p; p++) {
		if (*p == ':' || *p == '-')
			continue;
		if (!isxdigit((unsigned char)*p) || n == 12)
			return false;
		hex[n++] = (char)tolower((unsigned char)*p);
	}
	if (n != 12)
		return false;
	for (size_t i = 0, o = 0; i < 12; i++) {
		buf[o++] = hex[i];
		if (i % 2 == 1 && i < 11)
			buf[o++] = ':';
		buf[o] = '\0';
	}
	return true;
}

/* The name the device gives itself (device_name). */
static const char *pt_display_name(const cJSON *dev)
{
	const cJSON *n = p2m_json_field(dev, PT_ROOT, "device_name");

	return cJSON_IsString(n) && n->valuestring[0] ? n->valuestring : NULL;
}

/* Everything of msg but the members that belong to the exchange, not to the state. */
static cJSON *state_of(const cJSON *msg, const char *const *skip)
{
	cJSON *frame = cJSON_CreateObject();
	cJSON *root = cJSON_AddObjectToObject(frame, PT_ROOT);
	const cJSON *m;

	cJSON_ArrayForEach(m, msg)
	{
		bool skipped = false;

		for (size_t i = 0; skip[i] && !skipped; i++)
			skipped = strcmp(m->string, skip[i]) == 0;
		if (!skipped)
			cJSON_AddItemToObject(root, m->string, cJSON_Duplicate(m, true));
	}
	return frame;
}

static enum p2m_reply pt_message(const cJSON *msg, const char *req, cJSON **frame,
				 void (*emit)(void *ud, cJSON *event), void *ud)
{
	static const char *const handshake_skip[] = {"cmd", NULL};
	/* "version" in request_ota's answer is the version asked for, not the one running */
	static const char *const reply_skip[] = {"status", "message", "version", NULL};
	const cJSON *status = cJSON_GetObjectItemCaseSensitive(msg, "status");
	const cJSON *text;
	cJSON *e;

	*frame = NULL;
	if (pt_is_snapshot(msg)) {
		*frame = state_of(msg, handshake_skip);
		return P2M_NOT_A_REPLY;
	}
	if (!cJSON_IsString(status))
		return P2M_NOT_A_REPLY;
	if (strcmp(status->valuestring, "ok") == 0) {
		*frame = state_of(msg, reply_skip);
		return P2M_REPLY_OK;
	}
	e = p2m_event_new("command_failed");
	cJSON_AddStringToObject(e, "command", req ? req : "unrecognised");
	cJSON_AddStringToObject(e, "status", status->valuestring);
	text = cJSON_GetObjectItemCaseSensitive(msg, "message");
	if (cJSON_IsString(text)) {
		char m[PT_MESSAGE_MAX + 1];

		snprintf(m, sizeof(m), "%s", text->valuestring);
		cJSON_AddStringToObject(e, "message", m);
	}
	emit(ud, e);
	return P2M_REPLY_FAILED;
}

/* ---- the table ---- */

#define DIAGNOSTIC .category = "diagnostic"
#define CONFIG	   .category = "config"

/* One row per field. */
/* clang-format off */
static const struct p2m_entity pt_entities[] = {
	{.key = "volume", .name = "Volume", .platform = P2M_NUMBER, .vtype = P2M_V_INT,
	 .icon = "mdi:volume-high", .unit = "%", .root = PT_ROOT, .field = "volume", .min = 0,
	 .max = 100, .step = 1, .write = pt_write_level},
	{.key = "brightness", .name = "Display brightness", .platform = P2M_NUMBER,
	 .vtype = P2M_V_INT, .icon = "mdi:brightness-6", .unit = "%", .root = PT_ROOT,
	 .field = "brightness", .min = 0, .max = 100, .step = 1, .write = pt_write_level},
	{.key = "device_name", .name = "Device name", .platform = P2M_TEXT, .vtype = P2M_V_STRING,
	 CONFIG, .root = PT_ROOT, .field = "device_name", .max = 32, .write = pt_write_name},
	{.key = "battery", .name = "Battery", .platform = P2M_SENSOR, .vtype = P2M_V_NUMBER,
	 .device_class = "battery", .unit = "%", .state_class = "measurement", .root = PT_ROOT,
	 .field = "battery_percent"},
	{.key = "connectivity", .name = "Connectivity", .platform = P2M_SENSOR,
	 .vtype = P2M_V_STRING, DIAGNOSTIC, .icon = "mdi:wifi", .root = PT_ROOT,
	 .field = "connectivity_state"},
	{.key = "firmware_version", .name = "Firmware version", .platform = P2M_SENSOR,
	 .vtype = P2M_V_STRING, DIAGNOSTIC, .root = PT_ROOT, .field = "firmware_version"},
	{.key = "uptime", .name = "Uptime", .platform = P2M_SENSOR, .vtype = P2M_V_NUMBER,
	 .device_class = "duration", .unit = "s", .state_class = "measurement", DIAGNOSTIC,
	 .root = PT_ROOT, .field = "uptime_sec"},
	{.key = "mac_address", .name = "MAC address", .platform = P2M_SENSOR,
	 .vtype = P2M_V_STRING, DIAGNOSTIC, .disabled = true, .icon = "mdi:identifier",
	 .root = PT_ROOT, .field = "device_id"},
	{.key = "reboot", .name = "Reboot", .platform = P2M_BUTTON, .vtype = P2M_V_PRESS, CONFIG,
	 .device_class = "restart", .write = pt_write_reboot},
	{.key = "firmware_update", .name = "Firmware", .platform = P2M_UPDATE,
	 .vtype = P2M_V_STRING, CONFIG, .device_class = "firmware", .read = pt_read_update,
	 .inputs = PT_ROOT ".firmware_version",
	 .write = pt_write_install},
	{.key = "event", .name = "Events", .platform = P2M_EVENT},
};
/* clang-format on */

static const char *const pt_roots[] = {PT_ROOT, NULL};

const struct p2m_driver p2m_driver_ptalk = {
    .name = "ptalk",
    .manufacturer = "PTalk",
    .model = "PTalk speaker",
    .entities = pt_entities,
    .n_entities = sizeof(pt_entities) / sizeof(pt_entities[0]),
    .intent_size = sizeof(struct pt_intent),
    .intent_init = pt_intent_init,
    .plan = pt_plan,
    .is_snapshot = pt_is_snapshot,
    .device_id = pt_device_id,
    .fw_version = pt_fw_version,
    .roots = pt_roots,
    .restarts = pt_restarts,
    .dials_in = true,
    .request_key = "cmd",
    .message = pt_message,
    .status_request = "{\"cmd\":\"request_status\"}",
    .event_types = pt_event_types,
    .mac_address = pt_mac_address,
    .discovery_inputs = PT_ROOT ".firmware_version " PT_ROOT ".device_name " PT_ROOT ".device_id",
    .display_name = pt_display_name,
};
