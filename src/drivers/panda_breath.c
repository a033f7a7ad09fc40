/* panda_breath.c - the BIQU Panda Breath chamber heater / filament dryer.
 *
 * Owns: the Panda Breath's entity table, how its fields map to Home Assistant, and
 * its write discipline (docs/protocol-panda-breath.md, whose provenance tags [live],
 * [RE] and [guess] the comments here repeat where a choice rests on one):
 *  - one field per frame, in the proven order: isrunning:0, work_mode, target, work_on;
 *  - work_on always a JSON boolean (V1.0.3 ignores integers);
 *  - the target is "set_temp" from V1.0.1 on and "temp" on the v0.0.0/"V1.0.0" build;
 *  - drying: filament_temp then filament_drying_mode:3; filament_timer then
 *    filament_drying_mode:3; isrunning:1 starts, isrunning:0 stops;
 *  - a printer bind only on an explicit command (the bind button), never on our own; a
 *    Klipper bind waits for the printer_type reply, then 5 s, before the printer frame;
 *  - actions that restart the device (restart, factory reset, hostname) go last;
 *  - ranges as the device's own page clamps them [RE]: set_temp 0-60, hotbedtemp
 *    40-120, filtertemp 0-120, drying 40-60 °C for 1-99 h;
 *  - ptc_heater_status is the heater's FAULT flag, present only on a fault [RE]; nothing
 *    on the WebSocket says whether the heating element is on at a given moment;
 *  - the chamber reading is warehouse_temper; cal_warehouse_temp / cal_ptc_temp are
 *    function names in the binaries, not fields [RE], so a row they alone feed is
 *    optional (published once seen);
 *  - firmware goes as the device's own page sends it, POST /ota [RE]: this file has the
 *    update row and the facts (pb_http_update); the core checks, sends and confirms
 *    (device_ota.c).
 * Secrets typed in Home Assistant (printer access code, Wi-Fi password) are held by the
 * gateway (P2M_V_SECRET rows) and only ever leave it inside the frame that uses them.
 * Does not own: transport, reconnects or MQTT. */
#include "panda2mqtt/command.h"
#include "panda2mqtt/config.h"
#include "panda2mqtt/families.h"
#include "panda2mqtt/entity.h"
#include "panda2mqtt/esp_image.h"
#include "panda2mqtt/events.h"
#include "panda2mqtt/json_util.h"
#include "panda2mqtt/update.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum { PB_WORK_AUTO = 1, PB_WORK_ALWAYS_ON = 2, PB_WORK_DRYING = 3 };
enum { PB_MODE_NONE = -1, PB_MODE_OFF, PB_MODE_HEAT, PB_MODE_AUTO, PB_MODE_DRY };
enum { PB_PRESET_CUSTOM = 3 };
/* Klipper binding: the device needs about 5 s after printer_type:2 [RE], counted from its
 * printer_type reply [live]; without a reply within 10 s the pause counts from then. */
#define PB_KLIPPER_BIND_DELAY_MS 5000
#define PB_KLIPPER_REPLY_WAIT_MS 10000
/* The Klipper scan/bind port when the user has chosen none: the device's page pre-fills
 * 80, Moonraker behind nginx [RE]. */
#define PB_KLIPPER_PORT 80
/* A run that ends with at most this much left at the previous reading has finished. */
#define PB_FINISH_WINDOW_S 900
/* The longest drying run the device's timer takes (hours) [RE]: the drying_hours row's
 * max (lowered by [safety] max_drying_hours) and the longest believable countdown. */
#define PB_DRY_HOURS_MAX 99
/* Chamber readings outside this cannot be real (°C). */
#define PB_TEMP_MIN (-40)
#define PB_TEMP_MAX 200

/* Buttons, in the order their frames are sent (restarts last). */
enum pb_action {
	PB_SCAN_BAMBU = 1 << 0,
	PB_SCAN_KLIPPER = 1 << 1,
	PB_SCAN_WIFI = 1 << 2,
	PB_UNBIND = 1 << 3,
	PB_BIND = 1 << 4,
	PB_WIFI_JOIN = 1 << 5,
	PB_RESTART = 1 << 6,
	PB_FACTORY_RESET = 1 << 7,
};

static const char *const pb_modes[] = {"off", "heat", "auto", "dry", NULL};
static const char *const pb_work_modes[] = {"auto", "always_on", "drying", NULL};
static const int pb_work_mode_values[] = {PB_WORK_AUTO, PB_WORK_ALWAYS_ON, PB_WORK_DRYING};
static const char *const pb_presets[] = {"pla", "petg", "custom", NULL};
static const int pb_preset_values[] = {1, 2, PB_PRESET_CUSTOM};
static const char *const pb_sensor_status[] = {"ok", "short", "open", NULL};
/* A sensor or heater code the page does not name. Not "unknown": Home Assistant reads that
 * as its own unknown state. */
#define PB_UNNAMED_CODE "unrecognised"
static const char *const pb_wifi_states[] = {"no_ssid",	     "connecting",     "connected",
					     "reconnecting", "wrong_password", NULL};
static const int pb_wifi_state_values[] = {1, 2, 3, 4, 5};
/* printer.state differs by printer type [RE]; both maps share one option list, and every
 * code has an option. Bambu: 0 after an unbind, 1 invalid, 2 connecting, 3 connected,
 * 4 IP error, 5 serial error, 6 access code error, 7 "unknown". Klipper (V1.0.3's KLP_*
 * constants): 0 invalid (a live client reads it as disconnected), 1 invalid info,
 * 2 connecting, 3 connected, 4 failed, 5 ready, 6 shutdown, 7 error, 8 startup,
 * 9 "unknown". The devices' "unknown" is "undetermined" here: Home Assistant reads
 * "unknown" as its own unknown state. */
static const char *const pb_printer_states[] = {
    "unbound",	    "invalid",		 "connecting",	 "connected",	 "ip_error",
    "serial_error", "access_code_error", "undetermined", "invalid_info", "failed",
    "ready",	    "shutdown",		 "error",	 "startup",	 NULL};
static const char *const pb_bambu_states[] = {"unbound",	   "invalid",	  "connecting",
					      "connected",	   "ip_error",	  "serial_error",
					      "access_code_error", "undetermined"};
static const char *const pb_klipper_states[] = {
    "unbound", "invalid_info", "connecting", "connected", "failed",
    "ready",   "shutdown",     "error",	     "startup",	  "undetermined"};
/* The events of this family's own; the core adds command_*, safety_cutoff, ... */
static const char *const pb_event_types[] = {"drying_finished", "drying_stopped", "sensor_fault",
					     "heater_fault", NULL};

/* What one command asks for; plan() turns it into frames in a safe order. */
struct pb_intent {
	int mode; /* PB_MODE_* */
	bool has_target;
	double target;
	int power;     /* -1 unset, 0 off, 1 on */
	int work_mode; /* 0 unset, else PB_WORK_* */
	int drying;    /* -1 unset, 0 stop, 1 start */
	int preset;    /* 0 unset, else 1..3 */
	bool has_dry_temp, has_dry_hours, has_hotbed, has_filter;
	double dry_temp, dry_hours, hotbed, filter;
	int hotspot; /* -1 unset, 0, 1 */
	const char *hostname, *ap_ssid, *ap_password;
	unsigned actions; /* enum pb_action */
	bool install, reinstall;
};

/* ---- reading ---- */

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

	/* A drying run first, whatever else is (not) reported: "off" must stop it. */
	if (get_int(dev, "isrunning", &running) && running == 1)
		return PB_MODE_DRY;
	if (!get_int(dev, "work_on", &on))
		return PB_MODE_NONE;
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

static cJSON *pb_read_mode(const struct p2m_entity *e, const struct p2m_view *v)
{
	int m = pb_current_mode(v->dev);

	(void)e;
	return m == PB_MODE_NONE ? NULL : cJSON_CreateString(pb_modes[m]);
}

static cJSON *number_of(const cJSON *dev, const char *a, const char *b)
{
	const cJSON *v = p2m_json_field(dev, "settings", a);

	if (!cJSON_IsNumber(v) && b)
		v = p2m_json_field(dev, "settings", b);
	return cJSON_IsNumber(v) ? cJSON_CreateNumber(v->valuedouble) : NULL;
}

/* In drying the climate target is the drying temperature; otherwise the heating target. */
static cJSON *pb_read_target(const struct p2m_entity *e, const struct p2m_view *v)
{
	(void)e;
	if (pb_current_mode(v->dev) == PB_MODE_DRY)
		return number_of(v->dev, "custom_temp", "filament_temp");
	return number_of(v->dev, "set_temp", "temp");
}

static bool drying_running(const cJSON *dev)
{
	int running = 0;

	return get_int(dev, "isrunning", &running) && running == 1;
}

/* remaining_seconds of a running drying run, when it is a believable one (a run lasts
 * at most 99 h; the merge already refused anything else, this keeps time arithmetic safe
 * whatever reaches it); NULL otherwise. */
static const cJSON *remaining_reported(const cJSON *dev)
{
	const cJSON *r = p2m_json_field(dev, "settings", "remaining_seconds");

	if (!cJSON_IsNumber(r) || !drying_running(dev) || !(r->valuedouble >= 0) ||
	    r->valuedouble > PB_DRY_HOURS_MAX * 3600.0)
		return NULL;
	return r;
}

/* remaining_seconds is only as fresh as the last snapshot: count down from then. */
static double remaining_now(const struct p2m_view *v)
{
	const cJSON *r = remaining_reported(v->dev);
	double left;

	if (!r)
		return -1;
	left = r->valuedouble - (v->read_at > 0 ? v->now - v->read_at : 0);
	return left > 0 ? floor(left) : 0;
}

static cJSON *pb_read_remaining(const struct p2m_entity *e, const struct p2m_view *v)
{
	double left = remaining_now(v);

	(void)e;
	if (left < 0)
		return drying_running(v->dev) ? NULL : cJSON_CreateNumber(0);
	return cJSON_CreateNumber(left);
}

static cJSON *pb_read_ends_at(const struct p2m_entity *e, const struct p2m_view *v)
{
	const cJSON *r = remaining_reported(v->dev);
	char buf[40];
	time_t end;
	struct tm tm;

	(void)e;
	if (!r || v->read_at <= 0)
		return NULL;
	/* From the snapshot's own time, rounded to the minute: stable between re-reads. */
	end = (time_t)(v->read_at + r->valuedouble);
	end = (end + 30) / 60 * 60;
	gmtime_r(&end, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S+00:00", &tm);
	return cJSON_CreateString(buf);
}

/* printer_type 2: the device is bound (or binding) to a Klipper printer. */
static bool klipper_bound(const cJSON *dev)
{
	int type = 0;

	return get_int(dev, "printer_type", &type) && type == 2;
}

static cJSON *pb_read_printer_state(const struct p2m_entity *e, const struct p2m_view *v)
{
	const cJSON *st = p2m_json_field(v->dev, "printer", "state");
	int s;

	(void)e;
	if (!cJSON_IsNumber(st) || st->valuedouble != (double)st->valueint)
		return NULL;
	s = st->valueint;
	if (klipper_bound(v->dev))
		return s >= 0 && s <= 9 ? cJSON_CreateString(pb_klipper_states[s]) : NULL;
	return s >= 0 && s <= 7 ? cJSON_CreateString(pb_bambu_states[s]) : NULL;
}

/* The printer the device is bound to: a Klipper printer's host:port [RE: printer.host /
 * printer.port], a Bambu printer's name (ip); NULL when none. */
static cJSON *pb_read_bound_printer(const struct p2m_entity *e, const struct p2m_view *v)
{
	const cJSON *host = p2m_json_field(v->dev, "printer", "host");
	const cJSON *port = p2m_json_field(v->dev, "printer", "port");
	const cJSON *name = p2m_json_field(v->dev, "printer", "name");
	const cJSON *ip = p2m_json_field(v->dev, "printer", "ip");
	char buf[2 * P2M_MAX_STRING_BYTES + 16];

	(void)e;
	if (klipper_bound(v->dev) && cJSON_IsString(host) && host->valuestring[0]) {
		if (cJSON_IsNumber(port))
			snprintf(buf, sizeof(buf), "%s:%d", host->valuestring, port->valueint);
		else
			snprintf(buf, sizeof(buf), "%s", host->valuestring);
		return cJSON_CreateString(buf);
	}
	if (!klipper_bound(v->dev) && cJSON_IsString(name) && name->valuestring[0]) {
		if (cJSON_IsString(ip) && ip->valuestring[0])
			snprintf(buf, sizeof(buf), "%s (%s)", name->valuestring, ip->valuestring);
		else
			snprintf(buf, sizeof(buf), "%s", name->valuestring);
		return cJSON_CreateString(buf);
	}
	return NULL;
}

/* The heater's fault flag: the device's page shows "PTC Heater Abnormal" whenever a
 * message carries ptc_heater_status at all [RE], so its presence is the problem (what
 * [safety] acts on is a non-zero value: heat_status). Absent: no fault, once the device
 * has reported its settings. */
static cJSON *pb_read_heater_fault(const struct p2m_entity *e, const struct p2m_view *v)
{
	(void)e;
	if (p2m_json_field(v->dev, "settings", "ptc_heater_status"))
		return cJSON_CreateString("ON");
	return p2m_json_field(v->dev, "settings", "work_on") ? cJSON_CreateString("OFF") : NULL;
}

/* Home Assistant's climate action, derived (nothing on the WebSocket says whether the
 * heating element is on): off -> off; drying -> drying; heat -> heating while the chamber
 * is below the target, else idle; Auto -> idle (the device heats only while the bound
 * printer's bed is hot, which it does not report); a heater fault -> idle. Never unknown:
 * Home Assistant keeps the last action when told "None". */
static cJSON *pb_read_action(const struct p2m_entity *e, const struct p2m_view *v)
{
	const cJSON *chamber = p2m_json_field(v->dev, "settings", "warehouse_temper");
	const char *action = "idle";
	int mode = pb_current_mode(v->dev);

	(void)e;
	if (!cJSON_IsNumber(chamber))
		chamber = p2m_json_field(v->dev, "settings", "cal_warehouse_temp");
	if (mode == PB_MODE_NONE)
		return NULL;
	if (mode == PB_MODE_OFF)
		return cJSON_CreateString("off");
	if (mode == PB_MODE_DRY)
		return cJSON_CreateString("drying");
	if (mode == PB_MODE_HEAT && !p2m_json_field(v->dev, "settings", "ptc_heater_status")) {
		cJSON *target = number_of(v->dev, "set_temp", "temp");

		if (target && cJSON_IsNumber(chamber) && chamber->valuedouble < target->valuedouble)
			action = "heating";
		cJSON_Delete(target);
	}
	return cJSON_CreateString(action);
}

/* The port a Klipper scan and bind use: the one the user set, else the bound Klipper
 * printer's, else the page's default. */
static int klipper_port(const struct p2m_view *v)
{
	const cJSON *set = cJSON_GetObjectItemCaseSensitive(v->local, "klipper_port");
	const cJSON *bound = p2m_json_field(v->dev, "printer", "port");

	if (cJSON_IsNumber(set))
		return set->valueint;
	if (klipper_bound(v->dev) && cJSON_IsNumber(bound) && bound->valuedouble >= 1 &&
	    bound->valuedouble <= 65535)
		return bound->valueint;
	return PB_KLIPPER_PORT;
}

static cJSON *pb_read_klipper_port(const struct p2m_entity *e, const struct p2m_view *v)
{
	(void)e;
	return cJSON_CreateNumber(klipper_port(v));
}

/* "name (ip)" labels of a scan result list, for a select. */
static const char *const *list_names(const struct p2m_view *v, const char *root, const char *field,
				     const char **buf, size_t n)
{
	const cJSON *list = p2m_json_field(v->dev, root, "list");
	const cJSON *item;
	size_t i = 0;

	cJSON_ArrayForEach(item, list)
	{
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(item, field);
		if (i + 1 < n && cJSON_IsString(name) && name->valuestring[0])
			buf[i++] = name->valuestring;
	}
	buf[i] = NULL;
	return buf;
}

static const char *const *pb_printer_options(const struct p2m_view *v, const char **buf, size_t n)
{
	return list_names(v, "printer", "name", buf, n);
}

static const char *const *pb_wifi_options(const struct p2m_view *v, const char **buf, size_t n)
{
	return list_names(v, "wifi", "ssid", buf, n);
}

/* Fault details for the binary sensors' attributes. */
static cJSON *sensor_detail(const cJSON *dev, const char *field)
{
	const cJSON *st = p2m_json_field(dev, "settings", field);
	cJSON *o;

	if (!cJSON_IsNumber(st))
		return NULL;
	o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "code", st->valuedouble);
	cJSON_AddStringToObject(o, "status",
				st->valueint >= 0 && st->valueint <= 2
				    ? pb_sensor_status[st->valueint]
				    : PB_UNNAMED_CODE);
	return o;
}

static cJSON *pb_read_chamber_detail(const struct p2m_entity *e, const struct p2m_view *v)
{
	(void)e;
	return sensor_detail(v->dev, "warehouse_sensor_status");
}

static cJSON *pb_read_heater_detail(const struct p2m_entity *e, const struct p2m_view *v)
{
	(void)e;
	return sensor_detail(v->dev, "ptc_sensor_status");
}

/* ---- commands: each write checks its value and records it in the intent ---- */

#define INTENT(cmd) ((struct pb_intent *)(cmd)->intent)

static int pb_write_mode(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v)
{
	int i;

	if (p2m_cmd_option(cmd, e, pb_modes, v, &i) != 0)
		return -1;
	INTENT(cmd)->mode = i;
	return 0;
}

static int pb_write_target(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v)
{
	if (p2m_cmd_number(cmd, e, v, &INTENT(cmd)->target) != 0)
		return -1;
	INTENT(cmd)->has_target = true;
	return 0;
}

static int pb_write_power(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v)
{
	bool on;

	if (p2m_cmd_bool(cmd, e, v, &on) != 0)
		return -1;
	INTENT(cmd)->power = on;
	return 0;
}

static int pb_write_enum(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v, int *out)
{
	int i;

	if (p2m_cmd_option(cmd, e, e->options, v, &i) != 0)
		return -1;
	*out = e->values[i];
	return 0;
}

static int pb_write_work_mode(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v)
{
	return pb_write_enum(cmd, e, v, &INTENT(cmd)->work_mode);
}

static int pb_write_preset(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v)
{
	return pb_write_enum(cmd, e, v, &INTENT(cmd)->preset);
}

#define NUMBER_WRITER(fn, flag, value)                                                             \
	static int fn(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v)             \
	{                                                                                          \
		if (p2m_cmd_number(cmd, e, v, &INTENT(cmd)->value) != 0)                           \
			return -1;                                                                 \
		INTENT(cmd)->flag = true;                                                          \
		return 0;                                                                          \
	}
NUMBER_WRITER(pb_write_hotbed, has_hotbed, hotbed)
NUMBER_WRITER(pb_write_filter, has_filter, filter)
NUMBER_WRITER(pb_write_dry_temp, has_dry_temp, dry_temp)
NUMBER_WRITER(pb_write_dry_hours, has_dry_hours, dry_hours)

static const struct p2m_entity *row(const char *key);

/* "drying": ON/OFF, or {"temperature":T,"hours":H} / {"preset":"pla"} to start a run. */
static int pb_write_drying(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v)
{
	struct pb_intent *in = INTENT(cmd);
	const cJSON *f;
	bool on;

	if (!cJSON_IsObject(v)) {
		if (p2m_cmd_bool(cmd, e, v, &on) != 0)
			return p2m_cmd_reject(
			    cmd, e->key, "expected ON, OFF or {\"temperature\":T,\"hours\":H}");
		in->drying = on;
		return 0;
	}
	cJSON_ArrayForEach(f, v)
	{
		int rc;
		if (strcmp(f->string, "temperature") == 0)
			rc = pb_write_dry_temp(cmd, row("drying_temperature"), f);
		else if (strcmp(f->string, "hours") == 0)
			rc = pb_write_dry_hours(cmd, row("drying_hours"), f);
		else if (strcmp(f->string, "preset") == 0)
			rc = pb_write_preset(cmd, row("drying_preset"), f);
		else
			rc = p2m_cmd_reject(cmd, "drying",
					    "unknown drying field (temperature, hours, preset)");
		if (rc != 0)
			return -1;
	}
	if (in->preset && in->preset != PB_PRESET_CUSTOM && (in->has_dry_temp || in->has_dry_hours))
		return p2m_cmd_reject(cmd, "drying",
				      "a preset cannot be combined with a "
				      "temperature or hours");
	in->drying = 1;
	return 0;
}

static int pb_write_hotspot(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v)
{
	bool on;

	if (p2m_cmd_bool(cmd, e, v, &on) != 0)
		return -1;
	INTENT(cmd)->hotspot = on;
	return 0;
}

static int pb_write_hostname(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v)
{
	const char *h;

	if (p2m_cmd_text(cmd, e, v, &h) != 0)
		return -1;
	for (const char *c = h; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || (*c == '-' && c != h)))
			return p2m_cmd_reject(cmd, e->key,
					      "a hostname is letters, digits and '-' (not first)");
	INTENT(cmd)->hostname = h;
	return 0;
}

static int pb_write_ap_ssid(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v)
{
	return p2m_cmd_text(cmd, e, v, &INTENT(cmd)->ap_ssid);
}

static int pb_write_ap_password(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v)
{
	const char *p;

	if (p2m_cmd_text(cmd, e, v, &p) != 0)
		return -1;
	if (strlen(p) < 8)
		return p2m_cmd_reject(cmd, e->key, "a hotspot password has 8 to 63 characters");
	INTENT(cmd)->ap_password = p;
	return 0;
}

/* A selection or a secret the gateway holds until a button uses it. */
static int pb_write_local_text(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v)
{
	const char *t;

	if (p2m_cmd_text(cmd, e, v, &t) != 0)
		return -1;
	p2m_cmd_set_local(cmd, e->field, cJSON_CreateString(t));
	return 0;
}

/* A number the gateway holds (the Klipper port), checked against the row's range. */
static int pb_write_local_number(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v)
{
	double x;

	if (p2m_cmd_number(cmd, e, v, &x) != 0)
		return -1;
	p2m_cmd_set_local(cmd, e->field, cJSON_CreateNumber(x));
	return 0;
}

static int pb_write_local_option(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v)
{
	const char *buf[P2M_MAX_OPTIONS];
	const char *const *options = p2m_entity_options(e, cmd->view, buf, P2M_MAX_OPTIONS);
	int i;

	if (!options || !options[0])
		return p2m_cmd_reject(cmd, e->key, "nothing to choose yet: scan first");
	if (p2m_cmd_option(cmd, e, options, v, &i) != 0)
		return -1;
	p2m_cmd_set_local(cmd, e->field, cJSON_CreateString(options[i]));
	return 0;
}

static int pb_write_button(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v)
{
	static const struct {
		const char *key;
		enum pb_action action;
	} buttons[] = {
	    {"scan_printers", PB_SCAN_BAMBU}, {"scan_klipper", PB_SCAN_KLIPPER},
	    {"scan_wifi", PB_SCAN_WIFI},      {"printer_unbind", PB_UNBIND},
	    {"printer_bind", PB_BIND},	      {"wifi_join", PB_WIFI_JOIN},
	    {"restart", PB_RESTART},	      {"factory_reset", PB_FACTORY_RESET},
	};

	if (p2m_cmd_press(cmd, e, v) != 0)
		return -1;
	for (size_t i = 0; i < sizeof(buttons) / sizeof(buttons[0]); i++)
		if (strcmp(buttons[i].key, e->key) == 0)
			INTENT(cmd)->actions |= buttons[i].action;
	return 0;
}

/* "install" (the update entity's payload) or "reinstall": the core checks the rest. */
static int pb_write_install(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v)
{
	if (p2m_cmd_install(cmd, e, v, &INTENT(cmd)->reinstall) != 0)
		return -1;
	INTENT(cmd)->install = true;
	return 0;
}

static void pb_intent_init(void *intent)
{
	struct pb_intent *in = intent;

	in->mode = PB_MODE_NONE;
	in->power = in->drying = in->hotspot = -1;
}

/* ---- planning ---- */

static void settings_num(struct p2m_cmd *cmd, const char *field, double v)
{
	p2m_cmd_frame(cmd, "settings", field, cJSON_CreateNumber(v));
}

static void settings_bool(struct p2m_cmd *cmd, const char *field, bool v)
{
	p2m_cmd_frame(cmd, "settings", field, cJSON_CreateBool(v));
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

/* Drying parameters: temperature, then hours, each confirmed with mode 3; or a preset. */
static void plan_drying_params(struct p2m_cmd *cmd, const struct pb_intent *in)
{
	if (in->has_dry_temp) {
		settings_num(cmd, "filament_temp", in->dry_temp);
		settings_num(cmd, "filament_drying_mode", PB_PRESET_CUSTOM);
	}
	if (in->has_dry_hours) {
		settings_num(cmd, "filament_timer", in->dry_hours);
		settings_num(cmd, "filament_drying_mode", PB_PRESET_CUSTOM);
	}
	if (in->preset && !in->has_dry_temp && !in->has_dry_hours)
		settings_num(cmd, "filament_drying_mode", in->preset);
}

static int plan_target(struct p2m_cmd *cmd, struct pb_intent *in, int mode)
{
	const struct p2m_entity *dry = row("drying_temperature");
	double max = p2m_entity_max(dry, cmd->safety);

	if (!in->has_target)
		return 0;
	if (mode == PB_MODE_DRY) {
		/* the climate target while drying is the drying temperature, in its range */
		if (in->target < dry->min || in->target > max)
			return p2m_cmd_reject(cmd, "target_temperature",
					      "%g is out of range %g..%g for drying", in->target,
					      dry->min, max);
		if (!in->has_dry_temp) {
			in->has_dry_temp = true;
			in->dry_temp = in->target;
		}
	} else {
		settings_num(cmd, pb_target_field(cmd->dev), in->target);
	}
	return 0;
}

static void plan_start_drying(struct p2m_cmd *cmd, struct pb_intent *in)
{
	settings_num(cmd, "work_mode", PB_WORK_DRYING);
	plan_drying_params(cmd, in);
	settings_num(cmd, "isrunning", 1);
}

/* The climate group, in the proven order [live]. */
static int plan_climate(struct p2m_cmd *cmd, struct pb_intent *in)
{
	int current = pb_current_mode(cmd->dev);

	switch (in->mode) {
	case PB_MODE_OFF:
		if (current == PB_MODE_DRY)
			settings_num(cmd, "isrunning", 0);
		if (plan_target(cmd, in, current) != 0)
			return -1;
		plan_drying_params(cmd, in);
		settings_bool(cmd, "work_on", false);
		return 0;
	case PB_MODE_HEAT:
	case PB_MODE_AUTO:
		settings_num(cmd, "isrunning", 0);
		settings_num(cmd, "work_mode",
			     in->mode == PB_MODE_HEAT ? PB_WORK_ALWAYS_ON : PB_WORK_AUTO);
		if (plan_target(cmd, in, in->mode) != 0)
			return -1;
		settings_bool(cmd, "work_on", true);
		return 0;
	case PB_MODE_DRY:
		if (plan_target(cmd, in, PB_MODE_DRY) != 0)
			return -1;
		plan_start_drying(cmd, in);
		return 0;
	default:
		break;
	}
	if (in->drying == 1) {
		if (plan_target(cmd, in, PB_MODE_DRY) != 0)
			return -1;
		plan_start_drying(cmd, in);
		return 0;
	}
	if (in->drying == 0)
		settings_num(cmd, "isrunning", 0);
	if (in->work_mode)
		settings_num(cmd, "work_mode", in->work_mode);
	if (plan_target(cmd, in, in->drying == 0 ? PB_MODE_OFF : current) != 0)
		return -1;
	plan_drying_params(cmd, in);
	if (in->power >= 0)
		settings_bool(cmd, "work_on", in->power);
	return 0;
}

/* A held value: set in this command, or earlier. */
static const char *local_str(const struct p2m_cmd *cmd, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cmd->local, key);

	if (!cJSON_IsString(v))
		v = cJSON_GetObjectItemCaseSensitive(cmd->view ? cmd->view->local : NULL, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *list_entry(const cJSON *dev, const char *root, const char *field,
			       const char *value)
{
	const cJSON *item;

	cJSON_ArrayForEach(item, p2m_json_field(dev, root, "list"))
	{
		const cJSON *f = cJSON_GetObjectItemCaseSensitive(item, field);
		if (cJSON_IsString(f) && value && strcmp(f->valuestring, value) == 0)
			return item;
	}
	return NULL;
}

static void copy_str(cJSON *to, const cJSON *from, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, key);

	if (cJSON_IsString(v))
		cJSON_AddStringToObject(to, key, v->valuestring);
}

/* The Klipper port for this command: set in it, or held (klipper_port). */
static int cmd_klipper_port(const struct p2m_cmd *cmd)
{
	const cJSON *set = cJSON_GetObjectItemCaseSensitive(cmd->local, "klipper_port");

	return cJSON_IsNumber(set) ? set->valueint : klipper_port(cmd->view);
}

static int plan_bind(struct p2m_cmd *cmd)
{
	const char *name = local_str(cmd, "printer_selected");
	const cJSON *p = list_entry(cmd->dev, "printer", "name", name);
	const cJSON *port = cJSON_GetObjectItemCaseSensitive(p, "port");
	cJSON *bind;

	if (!p)
		return p2m_cmd_reject(cmd, "printer_bind",
				      "choose a printer from the scan results first");
	bind = cJSON_CreateObject();
	if (cJSON_IsNumber(port) && !cJSON_GetObjectItemCaseSensitive(p, "sn")) {
		/* Klipper/Moonraker: printer type first; the device answers it and then needs
		 * a pause before the printer frame [RE/live]. The port is the user's setting,
		 * the one the scan used too. */
		settings_num(cmd, "printer_type", 2);
		p2m_cmd_await_reply_named(cmd, "printer_type", PB_KLIPPER_REPLY_WAIT_MS);
		p2m_cmd_delay(cmd, PB_KLIPPER_BIND_DELAY_MS);
		cJSON_AddStringToObject(bind, "name", "Klipper");
		copy_str(bind, p, "ip");
		cJSON_AddNumberToObject(bind, "port", cmd_klipper_port(cmd));
	} else {
		const char *code = local_str(cmd, "printer_access_code");
		if (!code) {
			cJSON_Delete(bind);
			return p2m_cmd_reject(cmd, "printer_bind",
					      "type the printer's access code first");
		}
		copy_str(bind, p, "name");
		copy_str(bind, p, "sn");
		cJSON_AddStringToObject(bind, "access_code", code);
		copy_str(bind, p, "ip");
	}
	cJSON *frame = cJSON_CreateObject();
	cJSON_AddItemToObject(frame, "printer", bind);
	cJSON_AddItemToArray(cmd->frames, frame);
	return 0;
}

static int plan_wifi_join(struct p2m_cmd *cmd)
{
	const char *ssid = local_str(cmd, "wifi_selected");
	const char *password = local_str(cmd, "wifi_password");
	cJSON *frame, *w;

	if (!ssid)
		return p2m_cmd_reject(cmd, "wifi_join", "choose a network first");
	if (!password)
		return p2m_cmd_reject(cmd, "wifi_join", "type the network's password first");
	frame = cJSON_CreateObject();
	w = cJSON_AddObjectToObject(frame, "wifi");
	cJSON_AddStringToObject(w, "ssid", ssid);
	cJSON_AddStringToObject(w, "password", password);
	cJSON_AddItemToArray(cmd->frames, frame);
	return 0;
}

static int pb_plan(struct p2m_cmd *cmd)
{
	struct pb_intent *in = cmd->intent;
	unsigned a = in->actions;

	if (in->mode != PB_MODE_NONE && (in->power >= 0 || in->work_mode || in->drying >= 0))
		return p2m_cmd_reject(cmd, "mode", "mode cannot be combined with %s",
				      in->power >= 0  ? "power"
				      : in->work_mode ? "work_mode"
						      : "drying");
	if (in->drying >= 0 && (in->power >= 0 || in->work_mode))
		return p2m_cmd_reject(cmd, "drying", "drying cannot be combined with %s",
				      in->power >= 0 ? "power" : "work_mode");
	if (in->power >= 0 && in->work_mode)
		return p2m_cmd_reject(cmd, "power", "power cannot be combined with work_mode");
	if ((a & PB_RESTART) && (a & PB_FACTORY_RESET))
		return p2m_cmd_reject(cmd, "restart", "restart and factory reset together");

	if (in->has_hotbed)
		settings_num(cmd, "hotbedtemp", in->hotbed);
	if (in->has_filter)
		settings_num(cmd, "filtertemp", in->filter);
	if (plan_climate(cmd, in) != 0)
		return -1;
	if (in->hotspot >= 0)
		p2m_cmd_frame(cmd, "ap", "on", cJSON_CreateNumber(in->hotspot));
	if (in->ap_ssid)
		p2m_cmd_frame(cmd, "ap", "ssid", cJSON_CreateString(in->ap_ssid));
	if (in->ap_password)
		p2m_cmd_frame(cmd, "ap", "password", cJSON_CreateString(in->ap_password));
	if (a & PB_SCAN_BAMBU)
		p2m_cmd_frame(cmd, "printer", "scan", cJSON_CreateNumber(1));
	if (a & PB_SCAN_KLIPPER)
		p2m_cmd_frame(cmd, "printer", "scan_port",
			      cJSON_CreateNumber(cmd_klipper_port(cmd)));
	if (a & PB_SCAN_WIFI)
		p2m_cmd_frame(cmd, "wifi", "scan", cJSON_CreateNumber(1));
	if (a & PB_UNBIND)
		p2m_cmd_frame(cmd, "printer", "disconnect", cJSON_CreateNumber(1));
	if ((a & PB_BIND) && plan_bind(cmd) != 0)
		return -1;
	if ((a & PB_WIFI_JOIN) && plan_wifi_join(cmd) != 0)
		return -1;
	/* these restart the device: last */
	if (in->hostname)
		p2m_cmd_frame(cmd, "sta", "hostname", cJSON_CreateString(in->hostname));
	if (a & PB_RESTART)
		settings_num(cmd, "reset", 1);
	if (a & PB_FACTORY_RESET)
		settings_num(cmd, "factory_reset", 1);
	/* the device restarts into the new firmware: nothing may be half done around it */
	if (in->install) {
		if (cmd->frames->child || cmd->local)
			return p2m_cmd_reject(
			    cmd, "firmware_update",
			    "a firmware install goes alone, in a command of its own");
		p2m_cmd_install_image(cmd, in->reinstall);
	}
	return 0;
}

/* ---- recognising, events ---- */

static bool pb_is_snapshot(const cJSON *frame)
{
	return cJSON_IsString(p2m_json_field(frame, "settings", "fw_version")) &&
	       p2m_json_field(frame, "settings", "work_on") != NULL;
}

/* "panda_breath_<mac>" from the hotspot name the firmware derives from the MAC
 * ("Panda_Breath_3C84279A1B2C"); else "panda_breath_<hostname>". The MAC survives
 * address and hostname changes; the hotspot name can be renamed by the user, which is
 * why the hostname is only the fallback. */
static bool pb_device_id(const cJSON *dev, char *buf, size_t len)
{
	static const char prefix[] = "Panda_Breath_";
	const cJSON *ssid = p2m_json_field(dev, "ap", "ssid");
	const cJSON *host = p2m_json_field(dev, "sta", "hostname");
	const char *src = NULL;
	size_t n = 0;

	if (cJSON_IsString(ssid) && strncmp(ssid->valuestring, prefix, sizeof(prefix) - 1) == 0) {
		src = ssid->valuestring + sizeof(prefix) - 1;
		n = strlen(src);
		if (n != 12 || strspn(src, "0123456789abcdefABCDEF") != n)
			src = NULL;
	}
	if (!src && cJSON_IsString(host) && host->valuestring[0]) {
		src = host->valuestring;
		n = strlen(src);
	}
	if (!src || len < sizeof("panda_breath_") + 1)
		return false;
	snprintf(buf, len, "panda_breath_");
	for (size_t i = 0, o = strlen(buf); i < n && o + 1 < len && o < P2M_ID_MAX; i++) {
		char c = (char)tolower((unsigned char)src[i]);
		buf[o++] = isalnum((unsigned char)c) || c == '-' ? c : '_';
		buf[o] = '\0';
	}
	return true;
}

/* Heating is on while work_on is (heat or Auto) or a drying run is: either one runs the
 * PTC element. The chamber is warehouse_temper [RE] (cal_warehouse_temp if a device
 * ever sends only that). A heater fault is a non-zero ptc_heater_status [RE]. */
static void pb_heat_status(const cJSON *dev, struct p2m_heat_status *out)
{
	const cJSON *t = p2m_json_field(dev, "settings", "warehouse_temper");
	const cJSON *heater = p2m_json_field(dev, "settings", "ptc_heater_status");
	int on = 0, running = 0, fault = 0;

	get_int(dev, "work_on", &on);
	get_int(dev, "isrunning", &running);
	out->heating = on || running == 1;
	if (!cJSON_IsNumber(t))
		t = p2m_json_field(dev, "settings", "cal_warehouse_temp");
	out->has_chamber = cJSON_IsNumber(t) && isfinite(t->valuedouble);
	out->chamber = out->has_chamber ? t->valuedouble : 0;
	out->sensor_fault = (get_int(dev, "warehouse_sensor_status", &fault) && fault != 0) ||
			    (get_int(dev, "ptc_sensor_status", &fault) && fault != 0);
	/* any value but a plain 0: what the page calls abnormal, and then some */
	out->heater_fault = heater && !(cJSON_IsNumber(heater) && heater->valuedouble == 0) &&
			    !cJSON_IsFalse(heater);
}

/* "3c:84:27:9a:1b:2c" from the hotspot name the firmware derives from the MAC. */
static bool pb_mac_address(const cJSON *dev, char *buf, size_t len)
{
	static const char prefix[] = "Panda_Breath_";
	const cJSON *ssid = p2m_json_field(dev, "ap", "ssid");
	const char *m;

	if (!cJSON_IsString(ssid) || strncmp(ssid->valuestring, prefix, sizeof(prefix) - 1) != 0)
		return false;
	m = ssid->valuestring + sizeof(prefix) - 1;
	if (strlen(m) != 12 || strspn(m, "0123456789abcdefABCDEF") != 12 || len < 18)
		return false;
	for (size_t i = 0, o = 0; i < 12; i++) {
		buf[o++] = (char)tolower((unsigned char)m[i]);
		if (i % 2 == 1 && i < 11)
			buf[o++] = ':';
		buf[o] = '\0';
	}
	return true;
}

/* The device's hostname (its mDNS name too [RE]), for a device configured without a
 * name; voice assistants match on names, "panda_breath_3c84..." is no name. */
static const char *pb_display_name(const cJSON *dev)
{
	const cJSON *h = p2m_json_field(dev, "sta", "hostname");

	return cJSON_IsString(h) && h->valuestring[0] ? h->valuestring : NULL;
}

/* {"response":{"type":T,"ok":0|1}} [RE, live]: replies reach every connected client. */
static bool pb_reply_of(const cJSON *frame, const char **type, bool *ok)
{
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(frame, "response");
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(r, "type");
	const cJSON *k = cJSON_GetObjectItemCaseSensitive(r, "ok");

	if (!cJSON_IsString(t) || !(cJSON_IsNumber(k) || cJSON_IsBool(k)))
		return false;
	*type = t->valuestring;
	*ok = cJSON_IsBool(k) ? cJSON_IsTrue(k) : k->valuedouble != 0;
	return true;
}

static const char *pb_fw_version(const cJSON *dev)
{
	const cJSON *v = p2m_json_field(dev, "settings", "fw_version");

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static cJSON *pb_read_update(const struct p2m_entity *e, const struct p2m_view *v)
{
	(void)e;
	return p2m_update_state("Panda Breath firmware", pb_fw_version(v->dev), v->update);
}

/* As the device's own page updates it [RE: the V1.0.3 page]: the raw image as the body,
 * no more than 0x480000 bytes, the result on the WebSocket; official images are ESP32-C3
 * application images [RE]. */
static const struct p2m_http_update pb_http_update = {
    .path = "/ota",
    .content_type = "application/octet-stream;charset=UTF-8",
    .header = "OTA-Type",
    .header_value = "ota_fw",
    .reply_type = "ota_fw",
    .max_bytes = 0x480000,
    .esp_chip = P2M_ESP_CHIP_ESP32C3,
};

static bool pb_has_own_ha_link(const cJSON *dev)
{
	return cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(dev, "ha"));
}

static int int_or(const cJSON *dev, const char *field, int dflt)
{
	int v;

	return get_int(dev, field, &v) ? v : dflt;
}

static void pb_events(const cJSON *before, const cJSON *after, void (*emit)(void *ud, cJSON *event),
		      void *ud)
{
	static const struct {
		const char *field, *sensor;
	} sensors[] = {{"warehouse_sensor_status", "chamber"}, {"ptc_sensor_status", "heater"}};
	const cJSON *heater_now, *heater_was;

	if (int_or(before, "isrunning", 0) == 1 && int_or(after, "isrunning", 1) == 0) {
		/* Finished on its own if little was left at the last reading before (the
		 * device zeroes remaining_seconds either way); else someone stopped it. */
		bool done = int_or(before, "remaining_seconds", 0) <= PB_FINISH_WINDOW_S;
		emit(ud, done ? p2m_event_new("drying_finished") : p2m_event_new("drying_stopped"));
	}
	for (size_t i = 0; i < 2; i++) {
		int was = int_or(before, sensors[i].field, 0);
		int now = int_or(after, sensors[i].field, 0);
		if (now != 0 && now != was) {
			cJSON *e = p2m_event_new("sensor_fault");
			cJSON_AddStringToObject(e, "sensor", sensors[i].sensor);
			cJSON_AddStringToObject(e, "status",
						now >= 0 && now <= 2 ? pb_sensor_status[now]
								     : PB_UNNAMED_CODE);
			emit(ud, e);
		}
	}
	heater_now = p2m_json_field(after, "settings", "ptc_heater_status");
	heater_was = p2m_json_field(before, "settings", "ptc_heater_status");
	if (heater_now && (!heater_was || !cJSON_Compare(heater_now, heater_was, true))) {
		cJSON *e = p2m_event_new("heater_fault");
		if (cJSON_IsNumber(heater_now))
			cJSON_AddNumberToObject(e, "code", heater_now->valuedouble);
		emit(ud, e);
	}
}

/* What pb_events() compares. */
static const char *const pb_event_fields[][2] = {
    {"settings", "isrunning"},	       {"settings", "remaining_seconds"},
    {"settings", "ptc_sensor_status"}, {"settings", "warehouse_sensor_status"},
    {"settings", "ptc_heater_status"}, {NULL, NULL},
};

/* Written fields and the field the device reports them back in. */
static const char *const pb_verify[][3] = {
    {"settings", "work_on", "work_on"},
    {"settings", "work_mode", "work_mode"},
    {"settings", "set_temp", "set_temp"},
    {"settings", "temp", "temp"},
    {"settings", "hotbedtemp", "hotbedtemp"},
    {"settings", "filtertemp", "filtertemp"},
    {"settings", "filament_temp", "custom_temp"},
    {"settings", "filament_timer", "custom_timer"},
    {"settings", "isrunning", "isrunning"},
    {"ap", "on", "on"},
    {NULL, NULL, NULL},
};

/* Writes the device answers with {"response":{"type":T,...}} [RE: the reply types in
 * V1.0.1-V1.0.3's strings; which write gets which is read from their names, and
 * set_hostname / printer_type were seen live]. The firmware upload's ota_fw answers no
 * WebSocket write: pb_http_update. */
static const char *const pb_replies[][3] = {
    {"sta", "hostname", "set_hostname"},
    {"ap", "ssid", "set_ap"},
    {"ap", "password", "set_ap"},
    {"ap", "ip", "set_hotspot_ip"},
    {"settings", "factory_reset", "factory_reset"},
    {"settings", "printer_type", "printer_type"},
    {NULL, NULL, NULL},
};

/* Writes after which the device restarts [RE]. */
static const char *const pb_restarts[][2] = {
    {"settings", "reset"},
    {"settings", "factory_reset"},
    {"sta", "hostname"},
    {NULL, NULL},
};

static bool pb_restarts_device(const cJSON *frame)
{
	for (size_t i = 0; pb_restarts[i][0]; i++)
		if (p2m_json_field(frame, pb_restarts[i][0], pb_restarts[i][1]))
			return true;
	return false;
}

/* ---- the table ---- */

static const struct p2m_climate_keys pb_climate = {
    .mode = "mode",
    .target = "target_temperature",
    .current = "chamber_temperature",
    .action = "action",
    .modes = pb_modes,
};

#define TEMP_SENSOR                                                                                \
	.platform = P2M_SENSOR, .vtype = P2M_V_NUMBER, .device_class = "temperature",              \
	.unit = "°C", .state_class = "measurement", .report_min = PB_TEMP_MIN,                     \
	.report_max = PB_TEMP_MAX
#define DIAGNOSTIC .category = "diagnostic"
#define CONFIG	   .category = "config"
#define BUTTON	   .platform = P2M_BUTTON, .vtype = P2M_V_PRESS, .write = pb_write_button
/* What the mode (and so the rows derived from it) is read from; the drying countdown. */
#define MODE_INPUTS	 "settings.isrunning settings.work_on settings.work_mode"
#define REMAINING_INPUTS "settings.remaining_seconds settings.isrunning @time"

/* One row per field. */
/* clang-format off */
static const struct p2m_entity pb_entities[] = {
	/* heating */
	{.key = "climate", .platform = P2M_CLIMATE, .climate = &pb_climate, .min = 0, .max = 60,
	 .step = 1, .cap = P2M_CAP_TARGET},
	{.key = "mode", .platform = P2M_NONE, .vtype = P2M_V_STRING, .read = pb_read_mode,
	 .inputs = MODE_INPUTS, .write = pb_write_mode, .options = pb_modes},
	{.key = "action", .platform = P2M_NONE, .vtype = P2M_V_STRING, .read = pb_read_action,
	 .inputs = MODE_INPUTS " settings.set_temp settings.temp settings.warehouse_temper "
			       "settings.cal_warehouse_temp settings.ptc_heater_status"},
	{.key = "target_temperature", .platform = P2M_NONE, .vtype = P2M_V_INT,
	 .read = pb_read_target, .inputs = MODE_INPUTS " settings.custom_temp "
			"settings.filament_temp settings.set_temp settings.temp",
	 .write = pb_write_target, .min = 0, .max = 60, .step = 1, .cap = P2M_CAP_TARGET},
	{.key = "power", .name = "Heater", .platform = P2M_SWITCH, .vtype = P2M_V_BOOL,
	 .icon = "mdi:heat-wave", .root = "settings", .field = "work_on", .write = pb_write_power},
	{.key = "work_mode", .name = "Work mode", .platform = P2M_SELECT, .vtype = P2M_V_ENUM,
	 .icon = "mdi:cog", .root = "settings", .field = "work_mode", .options = pb_work_modes,
	 .values = pb_work_mode_values, .write = pb_write_work_mode},
	{.key = "auto_bed_threshold", .name = "Auto mode bed temperature", .platform = P2M_NUMBER,
	 .vtype = P2M_V_INT, .device_class = "temperature", .unit = "°C", CONFIG,
	 .root = "settings", .field = "hotbedtemp", .min = 40, .max = 120, .step = 1,
	 .write = pb_write_hotbed},
	{.key = "filter_bed_threshold", .name = "Filter fan bed temperature",
	 .platform = P2M_NUMBER, .vtype = P2M_V_INT, .device_class = "temperature", .unit = "°C",
	 CONFIG, .root = "settings", .field = "filtertemp", .min = 0, .max = 120, .step = 1,
	 .write = pb_write_filter},
	/* drying */
	{.key = "drying", .name = "Drying", .platform = P2M_SWITCH, .vtype = P2M_V_BOOL,
	 .icon = "mdi:printer-3d-nozzle-heat", .root = "settings", .field = "isrunning",
	 .write = pb_write_drying},
	{.key = "drying_preset", .name = "Drying preset", .platform = P2M_SELECT,
	 .vtype = P2M_V_ENUM, .icon = "mdi:tune", .root = "settings",
	 .field = "filament_drying_mode", .options = pb_presets, .values = pb_preset_values,
	 .write = pb_write_preset},
	{.key = "drying_temperature", .name = "Drying temperature", .platform = P2M_NUMBER,
	 .vtype = P2M_V_INT, .device_class = "temperature", .unit = "°C", .root = "settings",
	 .field = "custom_temp", .fallback = "filament_temp", .min = 40, .max = 60, .step = 1,
	 .cap = P2M_CAP_TARGET, .write = pb_write_dry_temp},
	{.key = "drying_hours", .name = "Drying time", .platform = P2M_NUMBER, .vtype = P2M_V_INT,
	 .device_class = "duration", .unit = "h", .root = "settings", .field = "custom_timer",
	 .fallback = "filament_timer", .min = 1, .max = PB_DRY_HOURS_MAX, .step = 1,
	 .cap = P2M_CAP_DRY_HOURS, .write = pb_write_dry_hours},
	{.key = "drying_remaining", .name = "Drying time remaining", .platform = P2M_SENSOR,
	 .vtype = P2M_V_NUMBER, .device_class = "duration", .unit = "s", .root = "settings",
	 .field = "remaining_seconds", .report_min = 0, .report_max = PB_DRY_HOURS_MAX * 3600,
	 .read = pb_read_remaining, .inputs = REMAINING_INPUTS},
	{.key = "drying_ends_at", .name = "Drying finishes at", .platform = P2M_SENSOR,
	 .vtype = P2M_V_STRING, .device_class = "timestamp", .read = pb_read_ends_at,
	 .inputs = REMAINING_INPUTS},
	/* temperatures and health */
	{.key = "chamber_temperature", .name = "Chamber temperature", TEMP_SENSOR,
	 .root = "settings", .field = "warehouse_temper", .fallback = "cal_warehouse_temp"},
	{.key = "heater_temperature", .name = "Heater temperature", TEMP_SENSOR,
	 .root = "settings", .field = "cal_ptc_temp", .optional = true},
	{.key = "heater_fault", .name = "Heater", .platform = P2M_BINARY_SENSOR,
	 .vtype = P2M_V_FLAG, .device_class = "problem", .root = "settings",
	 .field = "ptc_heater_status", .read = pb_read_heater_fault,
	 .inputs = "settings.ptc_heater_status settings.work_on"},
	{.key = "chamber_sensor_fault", .name = "Chamber sensor", .platform = P2M_BINARY_SENSOR,
	 .vtype = P2M_V_FLAG, .device_class = "problem", DIAGNOSTIC, .root = "settings",
	 .field = "warehouse_sensor_status", .attributes = "chamber_sensor"},
	{.key = "chamber_sensor", .platform = P2M_NONE, .vtype = P2M_V_STRING, DIAGNOSTIC,
	 .read = pb_read_chamber_detail, .inputs = "settings.warehouse_sensor_status"},
	{.key = "heater_sensor_fault", .name = "Heater sensor", .platform = P2M_BINARY_SENSOR,
	 .vtype = P2M_V_FLAG, .device_class = "problem", DIAGNOSTIC, .root = "settings",
	 .field = "ptc_sensor_status", .attributes = "heater_sensor"},
	{.key = "heater_sensor", .platform = P2M_NONE, .vtype = P2M_V_STRING, DIAGNOSTIC,
	 .read = pb_read_heater_detail, .inputs = "settings.ptc_sensor_status"},
	{.key = "firmware_version", .name = "Firmware version", .platform = P2M_SENSOR,
	 .vtype = P2M_V_STRING, DIAGNOSTIC, .root = "settings", .field = "fw_version"},
	/* network */
	{.key = "wifi_state", .name = "Wi-Fi", .platform = P2M_SENSOR, .vtype = P2M_V_ENUM,
	 .device_class = "enum", DIAGNOSTIC, .root = "sta", .field = "state",
	 .options = pb_wifi_states, .values = pb_wifi_state_values},
	{.key = "ip_address", .name = "IP address", .platform = P2M_SENSOR, .vtype = P2M_V_STRING,
	 DIAGNOSTIC, .icon = "mdi:ip-network", .root = "sta", .field = "ip"},
	{.key = "hostname", .name = "Hostname", .platform = P2M_TEXT, .vtype = P2M_V_STRING,
	 CONFIG, .root = "sta", .field = "hostname", .max = 32, .write = pb_write_hostname},
	{.key = "scan_wifi", .name = "Scan for Wi-Fi networks", BUTTON, CONFIG,
	 .icon = "mdi:wifi-refresh"},
	{.key = "wifi_network", .name = "Wi-Fi network", .platform = P2M_SELECT,
	 .vtype = P2M_V_STRING, CONFIG, .root = P2M_ROOT_LOCAL, .field = "wifi_selected",
	 .options_fn = pb_wifi_options, .inputs = "wifi.list", .write = pb_write_local_option},
	{.key = "wifi_password", .name = "Wi-Fi password", .platform = P2M_TEXT,
	 .vtype = P2M_V_SECRET, CONFIG, .password = true, .field = "wifi_password", .max = 63,
	 .write = pb_write_local_text},
	{.key = "wifi_join", .name = "Join Wi-Fi network", BUTTON, CONFIG, .icon = "mdi:wifi"},
	{.key = "hotspot", .name = "Hotspot", .platform = P2M_SWITCH, .vtype = P2M_V_BOOL, CONFIG,
	 .icon = "mdi:access-point", .root = "ap", .field = "on", .write = pb_write_hotspot},
	{.key = "hotspot_ssid", .name = "Hotspot name", .platform = P2M_TEXT,
	 .vtype = P2M_V_STRING, CONFIG, .root = "ap", .field = "ssid", .max = 32,
	 .write = pb_write_ap_ssid},
	{.key = "hotspot_password", .name = "Hotspot password", .platform = P2M_TEXT,
	 .vtype = P2M_V_SECRET, CONFIG, .password = true, .root = "ap", .field = "password",
	 .max = 63, .write = pb_write_ap_password},
	/* printer */
	{.key = "printer_state", .name = "Printer link", .platform = P2M_SENSOR,
	 .vtype = P2M_V_ENUM, .device_class = "enum", DIAGNOSTIC, .root = "printer",
	 .field = "state", .options = pb_printer_states, .read = pb_read_printer_state,
	 .inputs = "printer.state settings.printer_type"},
	{.key = "bound_printer", .name = "Bound printer", .platform = P2M_SENSOR,
	 .vtype = P2M_V_STRING, DIAGNOSTIC, .icon = "mdi:printer-3d", .read = pb_read_bound_printer,
	 .inputs = "printer.host printer.port printer.name printer.ip settings.printer_type"},
	{.key = "scan_printers", .name = "Scan for Bambu printers", BUTTON, CONFIG,
	 .icon = "mdi:printer-search"},
	{.key = "klipper_port", .name = "Klipper port", .platform = P2M_NUMBER, .vtype = P2M_V_INT,
	 CONFIG, .icon = "mdi:ethernet", .root = P2M_ROOT_LOCAL, .field = "klipper_port",
	 .min = 1, .max = 65535, .step = 1, .read = pb_read_klipper_port,
	 .inputs = "printer.port settings.printer_type",
	 .write = pb_write_local_number},
	{.key = "scan_klipper", .name = "Scan for Klipper printers", BUTTON, CONFIG,
	 .icon = "mdi:printer-search"},
	{.key = "printer", .name = "Printer to bind", .platform = P2M_SELECT,
	 .vtype = P2M_V_STRING, CONFIG, .root = P2M_ROOT_LOCAL, .field = "printer_selected",
	 .options_fn = pb_printer_options, .inputs = "printer.list",
	 .write = pb_write_local_option},
	{.key = "printer_access_code", .name = "Printer access code", .platform = P2M_TEXT,
	 .vtype = P2M_V_SECRET, CONFIG, .password = true, .field = "printer_access_code",
	 .max = 32, .write = pb_write_local_text},
	{.key = "printer_bind", .name = "Bind printer", BUTTON, CONFIG, .icon = "mdi:link"},
	{.key = "printer_unbind", .name = "Unbind printer", BUTTON, CONFIG,
	 .icon = "mdi:link-off"},
	/* device */
	{.key = "restart", .name = "Restart", BUTTON, CONFIG, .device_class = "restart"},
	{.key = "factory_reset", .name = "Factory reset", BUTTON, CONFIG, .disabled = true,
	 .icon = "mdi:restore-alert"},
	{.key = "firmware_update", .name = "Firmware", .platform = P2M_UPDATE,
	 .vtype = P2M_V_STRING, CONFIG, .device_class = "firmware", .read = pb_read_update,
	 .inputs = "settings.fw_version", .write = pb_write_install},
	{.key = "event", .name = "Events", .platform = P2M_EVENT},
};
/* clang-format on */

static const struct p2m_entity *row(const char *key)
{
	return p2m_entity_find(&p2m_driver_panda_breath, key);
}

static const char *const pb_roots[] = {"settings", "printer", "sta",	  "ap",
				       "wifi",	   "ha",      "response", NULL};

/* Published as reported (docs/protocol-panda-breath.md), besides the fields rows read;
 * never wifi.password, ap.password, printer.access_code, nor anything not listed. */
static const char *const pb_report_fields[] = {"settings.set_temp",
					       "settings.temp",
					       "settings.printer_type",
					       "settings.language",
					       "printer.name",
					       "printer.ip",
					       "printer.port",
					       "printer.host",
					       "printer.sn",
					       "printer.scan",
					       "printer.list[].name",
					       "printer.list[].ip",
					       "printer.list[].port",
					       "printer.list[].sn",
					       "ap.ip",
					       "wifi.ssid",
					       "wifi.scan",
					       "wifi.list[].ssid",
					       "wifi.list[].rssi",
					       "ha.ip",
					       "ha.port",
					       "ha.state",
					       NULL};

const struct p2m_driver p2m_driver_panda_breath = {
    .name = "panda_breath",
    .manufacturer = "BIQU",
    .model = "Panda Breath",
    /* docs/protocol-panda-breath.md: the web server on port 80 announces _http._tcp */
    .ws_path = "/ws",
    .dnssd_type = "_http._tcp",
    .entities = pb_entities,
    .n_entities = sizeof(pb_entities) / sizeof(pb_entities[0]),
    .intent_size = sizeof(struct pb_intent),
    .intent_init = pb_intent_init,
    .plan = pb_plan,
    .is_snapshot = pb_is_snapshot,
    .device_id = pb_device_id,
    .fw_version = pb_fw_version,
    .roots = pb_roots,
    .report_fields = pb_report_fields,
    .verify = pb_verify,
    .restarts = pb_restarts_device,
    .events = pb_events,
    .event_fields = pb_event_fields,
    .has_own_ha_link = pb_has_own_ha_link,
    .heat_status = pb_heat_status,
    /* mode off stops a drying run too (isrunning:0, then work_on:false) */
    .off_command = "{\"mode\":\"off\"}",
    .event_types = pb_event_types,
    .mac_address = pb_mac_address,
    .discovery_inputs = "settings.fw_version sta.hostname ap.ssid ha.*",
    .display_name = pb_display_name,
    .snapshot_is_whole = true,
    .replies = pb_replies,
    .reply_of = pb_reply_of,
    .http_update = &pb_http_update,
};
