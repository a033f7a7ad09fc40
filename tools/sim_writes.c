/* sim_writes.c - what a client's frame does to the simulated device.
 *
 * Owns: applying {"ROOT":{"FIELD":VALUE,...}} frames field by field, in order, as the
 * firmware does (docs/protocol-panda-breath.md): types and ranges per dialect, read-only
 * and unknown fields, the {"response":{"type":T,"ok":0|1}} replies and the control
 * channel's refuse / noreply / ignore lists that bend them, Wi-Fi and printer scans,
 * Bambu and Klipper binds (the pause after printer_type 2), restarts a frame asks for; the
 * log line of every field applied or ignored, secrets redacted. Does not own: the state's
 * helpers, drying and reboots (sim_device.c), receiving and sending frames
 * (sim_server.c), the Klipper connection itself (sim_klipper.c). */
#include "sim.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* The Klipper bind's printer frame must come this long after printer_type 2 (the device
 * needs about 5 s [RE]; a little slack for the test machine). */
#define KLIPPER_BIND_GAP_S 4.0
#define TEMP_MAX	   60 /* UI clamp for set_temp / temp / filament_temp */

enum restart { RESTART_NONE, RESTART_REBOOT, RESTART_FACTORY };

static double printer_type_at; /* monotonic s of the last printer_type 2 write; 0: none */
static bool klipper_bind;      /* the message being applied bound a Klipper printer */

static bool is_secret_key(const char *key)
{
	return strstr(key, "password") || strstr(key, "access_code") || strstr(key, "passwd");
}

/* A short printable form of a value for the log; secrets are never printed. */
static void describe(const char *key, const cJSON *v, char *out, size_t size)
{
	char *txt;

	if (is_secret_key(key)) {
		snprintf(out, size, "<redacted>");
		return;
	}
	txt = cJSON_PrintUnformatted(v);
	snprintf(out, size, "%s", txt ? txt : "?");
	if (txt && strlen(txt) >= size && size > 4)
		memcpy(out + size - 4, "...", 4);
	cJSON_free(txt);
}

static void noted(unsigned id, const char *root, const char *key, const cJSON *v, const char *why)
{
	char val[96];

	describe(key, v, val, sizeof(val));
	if (why)
		sim_say("client %u: %s.%s=%s ignored: %s", id, root, key, val, why);
	else
		sim_say("client %u: %s.%s=%s applied", id, root, key, val);
}

struct int_field {
	const char *key;
	long min, max;
};

/* The ranges the device's page clamps to [RE] (what the device itself does with other
 * values is not known: this one ignores them), and the base document's. */
static const struct int_field int_fields[] = {
    {"work_mode", 1, 3},       {"hotbedtemp", 40, 120},
    {"filtertemp", 0, 120},    {"filament_temp", 40, TEMP_MAX},
    {"filament_timer", 0, 99},
};
static const struct int_field doc_int_fields[] = {
    {"work_mode", 1, 3},       {"hotbedtemp", 0, 120},
    {"filtertemp", 0, 120},    {"filament_temp", 0, TEMP_MAX},
    {"filament_timer", 1, 12},
};

static const char *const settings_read_only[] = {
    "fw_version",	 "custom_temp",	      "custom_timer",
    "remaining_seconds", "warehouse_temper",  "cal_warehouse_temp",
    "cal_ptc_temp",	 "ptc_sensor_status", "warehouse_sensor_status",
    "ptc_heater_status",
};

static bool in_list(const char *key, const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(key, list[i]))
			return true;
	return false;
}

/* Reads an integer in [min, max] or explains why not. */
static const char *want_int(const cJSON *v, long min, long max, long *out)
{
	if (!cJSON_IsNumber(v))
		return "wrong type (expects an integer)";
	if (!sim_json_int(v, out))
		return "not an integer";
	if (*out < min || *out > max)
		return "out of range";
	return NULL;
}

/* Is a reply of this type due, and is it a refusal (control: refuse, noreply)? */
static bool listed_type(const cJSON *list, const char *type)
{
	const cJSON *i;

	cJSON_ArrayForEach(i, list)
	{
		if (!strcmp(i->valuestring, type))
			return true;
	}
	return false;
}

/* {"response":{"type":T,"ok":0|1}} to every client [RE, live]; not on --dialect doc
 * (except set_hostname, as before), not for a type told to stay silent. */
static void respond(const char *type, bool ok)
{
	cJSON *r;

	if ((sim.doc && strcmp(type, "set_hostname")) || listed_type(sim.silent, type))
		return;
	r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "type", type);
	cJSON_AddNumberToObject(r, "ok", ok ? 1 : 0);
	sim_push_root("response", r);
}

/* A write whose reply type is refused: answered ok:0 and not applied. */
static bool refused(const char *type)
{
	if (!listed_type(sim.refused, type))
		return false;
	respond(type, false);
	return true;
}

static enum restart write_setting(unsigned id, const char *key, const cJSON *v)
{
	const struct int_field *fields = sim.doc ? doc_int_fields : int_fields;
	const char *why = NULL;
	long n = 0;
	size_t i;

	for (i = 0; i < sizeof(int_fields) / sizeof(int_fields[0]); i++)
		if (!strcmp(key, fields[i].key)) {
			why = want_int(v, fields[i].min, fields[i].max, &n);
			if (!why)
				sim_put_num(key, (double)n);
			noted(id, "settings", key, v, why);
			return RESTART_NONE;
		}

	if (!strcmp(key, "work_on")) {
		if (cJSON_IsBool(v))
			sim_put(sim_settings(), key, cJSON_CreateBool(cJSON_IsTrue(v)));
		else if (!cJSON_IsNumber(v))
			why = "wrong type (expects a boolean)";
		else if (sim.fw != SIM_FW_V100)
			why = "an integer work_on is ignored by this firmware (send a boolean)";
		else if (!sim_json_int(v, &n) || (n != 0 && n != 1))
			why = "out of range (expects true/false/0/1)";
		else
			sim_put(sim_settings(), key, cJSON_CreateBool(n));
	} else if (!strcmp(key, "set_temp") || !strcmp(key, "temp")) {
		if (strcmp(key, sim_target_key()))
			why = sim.fw == SIM_FW_V100
				  ? "V1.0.0 reads the target from temp"
				  : "this firmware reads the target from set_temp";
		else if (!(why = want_int(v, 0, TEMP_MAX, &n)))
			sim_put_num(key, (double)n);
	} else if (!strcmp(key, "filament_drying_mode")) {
		if (!(why = want_int(v, 1, 3, &n)))
			sim_drying_mode(n);
	} else if (!strcmp(key, "isrunning")) {
		if ((why = want_int(v, 0, 1, &n)))
			;
		else if (n == 0)
			sim_drying_stop("isrunning 0");
		else if (sim_drying())
			why = "drying already running";
		else
			sim_drying_start();
	} else if (!strcmp(key, "reset") || !strcmp(key, "factory_reset")) {
		if (!(why = want_int(v, 1, 1, &n))) {
			if (key[0] == 'f' && refused("factory_reset")) {
				noted(id, "settings", key, v, "refused (control: refuse)");
				return RESTART_NONE;
			}
			noted(id, "settings", key, v, NULL);
			if (key[0] == 'f')
				respond("factory_reset", true);
			return key[0] == 'r' ? RESTART_REBOOT : RESTART_FACTORY;
		}
	} else if (!strcmp(key, "language")) {
		if (!cJSON_IsString(v))
			why = "wrong type (expects a string)";
		else if (!v->valuestring[0] || strlen(v->valuestring) > 15)
			why = "out of range (1-15 characters)";
		else
			sim_put(sim_settings(), key, cJSON_CreateString(v->valuestring));
	} else if (!strcmp(key, "printer_type")) {
		if (sim.doc && !sim.printer_link)
			why = "printer binding is not simulated (see --printer-link)";
		else if ((why = want_int(v, 1, 2, &n)))
			;
		else if (refused("printer_type"))
			why = "refused (control: refuse)";
		else {
			sim_put_num(key, (double)n);
			printer_type_at = n == 2 ? sim_now() : 0;
			respond("printer_type", true);
		}
	} else if (in_list(key, settings_read_only,
			   sizeof(settings_read_only) / sizeof(settings_read_only[0]))) {
		why = "read-only";
	} else {
		why = "unknown field";
	}
	noted(id, "settings", key, v, why);
	return RESTART_NONE;
}

bool sim_valid_hostname(const char *h)
{
	size_t n = strlen(h), i;

	if (n < 1 || n > 32 || h[0] == '-')
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)h[i]) && h[i] != '-')
			return false;
	return true;
}

static cJSON *scan_results(const char *root, long klipper_port)
{
	cJSON *list = cJSON_CreateArray(), *e;

	if (!strcmp(root, "wifi")) {
		static const char *const ssids[] = {"SimNet", "Neighbour"};
		for (size_t i = 0; i < 2; i++) {
			e = cJSON_CreateObject();
			cJSON_AddStringToObject(e, "ssid", ssids[i]);
			cJSON_AddNumberToObject(e, "rssi", -40 - 30 * (double)i);
			cJSON_AddItemToArray(list, e);
		}
	} else if (klipper_port) {
		char ip[64] = "127.0.0.3";
		const char *colon = sim.klipper_found ? strrchr(sim.klipper_found, ':') : NULL;

		if (colon) { /* --klipper-found: that host and port, whatever port was scanned */
			snprintf(ip, sizeof(ip), "%.*s", (int)(colon - sim.klipper_found),
				 sim.klipper_found);
			klipper_port = atol(colon + 1);
		}
		e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "name", "Sim Voron");
		cJSON_AddStringToObject(e, "ip", ip);
		cJSON_AddNumberToObject(e, "port", (double)klipper_port);
		cJSON_AddItemToArray(list, e);
	} else {
		e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "name", "Sim X1C");
		cJSON_AddStringToObject(e, "sn", "01S00SIM0000002");
		cJSON_AddStringToObject(e, "ip", "127.0.0.2");
		cJSON_AddStringToObject(e, "access_code", "");
		cJSON_AddItemToArray(list, e);
	}
	return list;
}

/* A scan: progress 1 then 2 and the list, stored (new snapshots show it) and pushed. */
static void scan(const char *root, long klipper_port)
{
	cJSON *o = cJSON_CreateObject();

	sim_put(sim_root(root), "scan", cJSON_CreateNumber(2));
	sim_put(sim_root(root), "list", scan_results(root, klipper_port));
	cJSON_AddNumberToObject(o, "scan", 2);
	cJSON_AddItemToObject(o, "list", scan_results(root, klipper_port));
	sim_push_root(root, o);
}

static bool ignored(const char *root, const char *key)
{
	char name[128];
	const cJSON *i;

	snprintf(name, sizeof(name), "%s.%s", root, key);
	cJSON_ArrayForEach(i, sim.ignored)
	{
		if (!strcmp(i->valuestring, name))
			return true;
	}
	return false;
}

static enum restart write_field(unsigned id, const char *root, const char *key, const cJSON *v)
{
	const char *why = NULL;
	long n;

	if (ignored(root, key)) {
		noted(id, root, key, v, "ignored on purpose (control: ignore)");
		return RESTART_NONE;
	}
	if (!strcmp(root, "settings"))
		return write_setting(id, key, v);
	if (!strcmp(root, "sta") && !strcmp(key, "hostname")) {
		if (!cJSON_IsString(v))
			why = "wrong type (expects a string)";
		else if (!sim_valid_hostname(v->valuestring))
			why = "not a valid hostname (1-32 letters, digits, '-')";
		else if (refused("set_hostname"))
			why = "refused (control: refuse): no restart";
		noted(id, root, key, v, why);
		if (why)
			return RESTART_NONE;
		sim_put(sim_root("sta"), key, cJSON_CreateString(v->valuestring));
		respond("set_hostname", true);
		return RESTART_REBOOT;
	}
	if (!strcmp(root, "ap") && !strcmp(key, "on")) {
		if (!(why = want_int(v, 0, 1, &n)))
			sim_put(sim_root("ap"), key, cJSON_CreateNumber((double)n));
	} else if ((!strcmp(root, "wifi") || !strcmp(root, "printer")) && !strcmp(key, "scan")) {
		if (!(why = want_int(v, 1, 1, &n)))
			scan(root, 0);
	} else if (!strcmp(root, "printer") && !strcmp(key, "scan_port")) {
		if (!(why = want_int(v, 1, 65535, &n)))
			scan(root, n);
	} else if (!strcmp(root, "printer") && !strcmp(key, "disconnect")) {
		if (!(why = want_int(v, 1, 1, &n))) {
			cJSON *o = cJSON_CreateObject();
			sim_klipper_stop("unbound");
			sim_put(sim_root("printer"), "state", cJSON_CreateNumber(0));
			cJSON_AddNumberToObject(o, "state", 0);
			sim_push_root("printer", o);
		}
	} else if (!strcmp(root, "printer") && !sim.doc && sim_get_int("printer_type", 1) == 2 &&
		   (!strcmp(key, "name") || !strcmp(key, "ip") || !strcmp(key, "port"))) {
		/* a Klipper bind: the device needs its pause after printer_type 2, and keeps
		 * the printer as host/port [RE] */
		if (printer_type_at > 0 && sim_now() - printer_type_at < KLIPPER_BIND_GAP_S)
			why = "too soon after printer_type 2 (the device needs about 5 s)";
		else if (!strcmp(key, "name"))
			sim_put(sim_root("printer"), key, cJSON_Duplicate(v, true));
		else {
			sim_put(sim_root("printer"), !strcmp(key, "ip") ? "host" : "port",
				cJSON_Duplicate(v, true));
			cJSON_DeleteItemFromObjectCaseSensitive(sim_root("printer"), "ip");
			if (sim.printer_link)
				klipper_bind = true;
			else
				sim_printer_state(2); /* connecting, and no link to connect with */
		}
	} else if (!strcmp(root, "printer") &&
		   (!strcmp(key, "name") || !strcmp(key, "sn") || !strcmp(key, "ip") ||
		    !strcmp(key, "access_code") || !strcmp(key, "port"))) {
		/* a bind: stored field by field; the device then reports itself connected */
		sim_put(sim_root("printer"), key, cJSON_Duplicate(v, true));
		sim_put(sim_root("printer"), "state", cJSON_CreateNumber(3));
		if (sim.printer_link && sim_get_int("printer_type", 1) == 2 &&
		    (!strcmp(key, "ip") || !strcmp(key, "port")))
			klipper_bind = true;
	} else if ((!strcmp(root, "wifi") || !strcmp(root, "ap")) &&
		   (!strcmp(key, "ssid") || !strcmp(key, "password") ||
		    (!strcmp(root, "ap") && !strcmp(key, "ip")))) {
		const char *type = !strcmp(root, "wifi") ? NULL
				   : !strcmp(key, "ip")	 ? "set_hotspot_ip"
							 : "set_ap";
		if (!cJSON_IsString(v))
			why = "wrong type (expects a string)";
		else if (type && refused(type))
			why = "refused (control: refuse)";
		else {
			sim_put(sim_root(root), key, cJSON_CreateString(v->valuestring));
			if (type)
				respond(type, true);
		}
	} else if (!strcmp(root, "wifi") || !strcmp(root, "sta") || !strcmp(root, "ap") ||
		   !strcmp(root, "printer") || !strcmp(root, "ha")) {
		why = "not simulated";
	} else {
		why = "unknown root";
	}
	noted(id, root, key, v, why);
	return RESTART_NONE;
}

void sim_writes_apply(unsigned id, const char *txt, size_t len)
{
	enum restart restart = RESTART_NONE;
	const char *end = NULL;
	cJSON *doc, *root, *field;

	doc = cJSON_ParseWithLengthOpts(txt, len, &end, 0);
	if (!doc) {
		sim_say("client %u: malformed JSON (%zu bytes) ignored", id, len);
		return;
	}
	while (end && end < txt + len && isspace((unsigned char)*end))
		end++;
	if (end && end < txt + len)
		sim_say("client %u: %zu bytes after the JSON value ignored", id,
			(size_t)(txt + len - end));
	if (!cJSON_IsObject(doc)) {
		sim_say("client %u: frame is not a JSON object, ignored", id);
		cJSON_Delete(doc);
		return;
	}
	cJSON_ArrayForEach(root, doc)
	{
		if (!cJSON_IsObject(root)) {
			sim_say("client %u: root %s is not an object, ignored", id, root->string);
			continue;
		}
		cJSON_ArrayForEach(field, root)
		{
			if (restart != RESTART_NONE) {
				sim_say("client %u: %s.%s ignored: device restarting", id,
					root->string, field->string);
				continue;
			}
			restart = write_field(id, root->string, field->string, field);
		}
	}
	cJSON_Delete(doc);
	if (klipper_bind) {
		klipper_bind = false;
		sim_klipper_start();
	}
	if (restart == RESTART_FACTORY)
		sim_factory_reset();
	else if (restart == RESTART_REBOOT)
		sim_reboot("client request");
}
