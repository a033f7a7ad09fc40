/* moonraker_rpc.c - see moonraker_rpc.h.
 *
 * Shapes follow Moonraker's API documentation (printer.objects.query answers
 * {"eventtime": t, "status": {object: {attribute: value}}}; "objects": {name: null} asks
 * for every attribute, {name: ["a", "b"]} for those) and Klipper's status reference
 * (webhooks.state ready/startup/shutdown/error; print_stats.state standby, printing,
 * paused, complete, error, cancelled). Objects that do not exist are left out of the
 * answer, as Klipper does. The Panda Breath (V1.0.3+) polls printer.objects.query every
 * second with one fixed request (docs/protocol-panda-breath.md, "Klipper" [RE]: id 1001,
 * attribute lists for webhooks, virtual_sdcard, print_stats, extruder and heater_bed, and
 * "gcode_macro _KNOMI_STATUS": null, which is left out of the answer as Klipper leaves
 * out an object it does not have) and heats in Auto mode once heater_bed.temperature
 * reaches its threshold. */
#include "panda2mqtt/moonraker_rpc.h"

#include "panda2mqtt/json_util.h"

#include <string.h>

enum { E_PARSE = -32700, E_REQUEST = -32600, E_METHOD = -32601, E_PARAMS = -32602 };

static const char *const objects[] = {"webhooks", "print_stats", "virtual_sdcard", "extruder",
				      "heater_bed"};
#define N_OBJECTS (sizeof(objects) / sizeof(objects[0]))

static cJSON *printer_info(const struct p2m_moonraker_view *v)
{
	cJSON *r = cJSON_CreateObject();

	cJSON_AddStringToObject(r, "state", v->known ? "ready" : "startup");
	cJSON_AddStringToObject(r, "state_message",
				v->known ? "Printer is ready"
					 : "panda2mqtt: waiting for the printer's data on MQTT");
	cJSON_AddStringToObject(r, "hostname", v->hostname ? v->hostname : "panda2mqtt");
	cJSON_AddStringToObject(r, "software_version", "panda2mqtt-" P2M_VERSION);
	cJSON_AddStringToObject(r, "cpu_info", "panda2mqtt virtual Moonraker");
	cJSON_AddStringToObject(r, "klipper_path", "");
	cJSON_AddStringToObject(r, "python_path", "");
	cJSON_AddStringToObject(r, "log_file", "");
	cJSON_AddStringToObject(r, "config_file", "");
	return r;
}

/* print_stats.state as the firmware knows it [RE]: standby, printing, paused, complete,
 * cancelled. Klipper's "error" (a print that ended without completing) is "cancelled",
 * the nearest state the firmware has a branch for. */
static const char *firmware_print_state(enum p2m_print_state s)
{
	return s == P2M_PRINT_ERROR ? "cancelled" : p2m_print_state_klipper(s);
}

static cJSON *heater(double temp, bool has_target, double target)
{
	cJSON *h = cJSON_CreateObject();

	cJSON_AddNumberToObject(h, "temperature", temp);
	cJSON_AddNumberToObject(h, "target", has_target ? target : 0);
	cJSON_AddNumberToObject(h, "power", 0);
	return h;
}

/* Every attribute of one object. */
static cJSON *object_status(const char *name, const struct p2m_moonraker_view *v)
{
	const struct p2m_printer_status *s = v->status;
	cJSON *o;

	if (strcmp(name, "webhooks") == 0) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "state", v->known ? "ready" : "startup");
		cJSON_AddStringToObject(o, "state_message",
					v->known ? "Printer is ready" : "waiting for data");
		return o;
	}
	if (strcmp(name, "print_stats") == 0) {
		cJSON *info;

		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "filename", "");
		cJSON_AddNumberToObject(o, "total_duration", 0);
		cJSON_AddNumberToObject(o, "print_duration", 0);
		cJSON_AddNumberToObject(o, "filament_used", 0);
		cJSON_AddStringToObject(o, "state", firmware_print_state(s->state));
		cJSON_AddStringToObject(o, "message", "");
		info = cJSON_AddObjectToObject(o, "info");
		cJSON_AddNullToObject(info, "total_layer");
		cJSON_AddNullToObject(info, "current_layer");
		return o;
	}
	if (strcmp(name, "virtual_sdcard") == 0) {
		o = cJSON_CreateObject();
		cJSON_AddNullToObject(o, "file_path");
		cJSON_AddNumberToObject(o, "progress", s->progress);
		cJSON_AddBoolToObject(o, "is_active", s->state == P2M_PRINT_PRINTING);
		cJSON_AddNumberToObject(o, "file_position", 0);
		cJSON_AddNumberToObject(o, "file_size", 0);
		return o;
	}
	if (strcmp(name, "extruder") == 0) {
		o = heater(s->has_nozzle ? s->nozzle : 0, s->has_nozzle_target, s->nozzle_target);
		cJSON_AddBoolToObject(o, "can_extrude", s->has_nozzle && s->nozzle >= 170);
		return o;
	}
	if (strcmp(name, "heater_bed") == 0)
		/* Unknown reads as 0 °C: below any Auto threshold, so nothing heats on a guess. */
		return heater(s->has_bed ? s->bed : 0, s->has_bed_target, s->bed_target);
	return NULL;
}

static cJSON *rpc_error(int code, const char *message, const cJSON *id)
{
	cJSON *r = cJSON_CreateObject(), *e;

	cJSON_AddStringToObject(r, "jsonrpc", "2.0");
	e = cJSON_AddObjectToObject(r, "error");
	cJSON_AddNumberToObject(e, "code", code);
	cJSON_AddStringToObject(e, "message", message);
	cJSON_AddItemToObject(r, "id", id ? cJSON_Duplicate(id, true) : cJSON_CreateNull());
	return r;
}

/* The result of printer.objects.query, or NULL with *err set for bad params. */
static cJSON *query(const cJSON *params, const struct p2m_moonraker_view *v, const char **err)
{
	const cJSON *want = cJSON_GetObjectItemCaseSensitive(params, "objects");
	const cJSON *o;
	cJSON *r, *status;

	if (!cJSON_IsObject(want)) {
		*err = "params.objects must be an object of object names";
		return NULL;
	}
	r = cJSON_CreateObject();
	cJSON_AddNumberToObject(r, "eventtime", v->eventtime);
	status = cJSON_AddObjectToObject(r, "status");
	cJSON_ArrayForEach(o, want)
	{
		cJSON *all = object_status(o->string, v), *picked;
		const cJSON *attr;

		if (!all || cJSON_GetObjectItemCaseSensitive(status, o->string)) {
			cJSON_Delete(all);
			continue;
		}
		if (!cJSON_IsArray(o)) { /* null (or anything else): every attribute */
			cJSON_AddItemToObject(status, o->string, all);
			continue;
		}
		picked = cJSON_CreateObject();
		cJSON_ArrayForEach(attr, o)
		{
			cJSON *a;

			if (!cJSON_IsString(attr) ||
			    cJSON_GetObjectItemCaseSensitive(picked, attr->valuestring))
				continue;
			a = cJSON_DetachItemFromObjectCaseSensitive(all, attr->valuestring);
			if (a)
				cJSON_AddItemToObject(picked, attr->valuestring, a);
		}
		cJSON_Delete(all);
		cJSON_AddItemToObject(status, o->string, picked);
	}
	return r;
}

static cJSON *server_info(const struct p2m_moonraker_view *v)
{
	cJSON *r = cJSON_CreateObject(), *api;

	cJSON_AddBoolToObject(r, "klippy_connected", true);
	cJSON_AddStringToObject(r, "klippy_state", v->known ? "ready" : "startup");
	cJSON_AddArrayToObject(r, "components");
	cJSON_AddArrayToObject(r, "failed_components");
	cJSON_AddArrayToObject(r, "registered_directories");
	cJSON_AddArrayToObject(r, "warnings");
	cJSON_AddNumberToObject(r, "websocket_count", v->websocket_count);
	cJSON_AddStringToObject(r, "moonraker_version", "panda2mqtt-" P2M_VERSION);
	api = cJSON_AddArrayToObject(r, "api_version");
	cJSON_AddItemToArray(api, cJSON_CreateNumber(1));
	cJSON_AddItemToArray(api, cJSON_CreateNumber(0));
	cJSON_AddItemToArray(api, cJSON_CreateNumber(0));
	cJSON_AddStringToObject(r, "api_version_string", "1.0.0");
	return r;
}

static cJSON *answer(const cJSON *req, const struct p2m_moonraker_view *v, bool *reply)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(req, "id");
	const cJSON *method = cJSON_GetObjectItemCaseSensitive(req, "method");
	const cJSON *params = cJSON_GetObjectItemCaseSensitive(req, "params");
	const char *m, *err = NULL;
	cJSON *result = NULL, *r;

	*reply = true;
	if (!cJSON_IsObject(req))
		return rpc_error(E_REQUEST, "Invalid Request", NULL);
	if (id && !cJSON_IsNumber(id) && !cJSON_IsString(id) && !cJSON_IsNull(id))
		return rpc_error(E_REQUEST, "Invalid Request: bad id", NULL);
	if (!cJSON_IsString(method))
		return rpc_error(E_REQUEST, "Invalid Request: no method", id);
	if (params && !cJSON_IsObject(params) && !cJSON_IsArray(params))
		return rpc_error(E_REQUEST, "Invalid Request: bad params", id);
	m = method->valuestring;
	if (strcmp(m, "printer.info") == 0) {
		result = printer_info(v);
	} else if (strcmp(m, "printer.objects.list") == 0) {
		cJSON *list;

		result = cJSON_CreateObject();
		list = cJSON_AddArrayToObject(result, "objects");
		for (size_t i = 0; i < N_OBJECTS; i++)
			cJSON_AddItemToArray(list, cJSON_CreateString(objects[i]));
	} else if (strcmp(m, "printer.objects.query") == 0 ||
		   strcmp(m, "printer.objects.subscribe") == 0) {
		/* subscribe answers like query; no notify_status_update follows (the Panda
		 * Breath polls) */
		result = query(params, v, &err);
		if (!result)
			return rpc_error(E_PARAMS, err, id);
	} else if (strcmp(m, "server.info") == 0) {
		result = server_info(v);
	} else if (strcmp(m, "server.connection.identify") == 0) {
		result = cJSON_CreateObject();
		cJSON_AddNumberToObject(result, "connection_id", v->connection_id);
	} else {
		if (!id)
			*reply = false;
		return rpc_error(E_METHOD, "Method not found", id);
	}
	if (!id) { /* a notification: JSON-RPC sends no reply */
		*reply = false;
		cJSON_Delete(result);
		return NULL;
	}
	r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "jsonrpc", "2.0");
	cJSON_AddItemToObject(r, "result", result);
	cJSON_AddItemToObject(r, "id", cJSON_Duplicate(id, true));
	return r;
}

char *p2m_moonraker_rpc(const char *msg, size_t len, const struct p2m_moonraker_view *v)
{
	cJSON *req, *r;
	bool reply = true;
	char *out;

	if (len > P2M_MOONRAKER_MAX_REQUEST)
		r = rpc_error(E_REQUEST, "Invalid Request: too large", NULL);
	else if (!(req = cJSON_ParseWithLength(msg, len)))
		r = rpc_error(E_PARSE, "Parse error", NULL);
	else if (p2m_json_depth(req, 8) > 8) {
		r = rpc_error(E_REQUEST, "Invalid Request: nested too deep", NULL);
		cJSON_Delete(req);
	} else {
		r = answer(req, v, &reply);
		cJSON_Delete(req);
	}
	if (!reply) {
		cJSON_Delete(r);
		return NULL;
	}
	out = p2m_json_print(r);
	cJSON_Delete(r);
	return out;
}

char *p2m_moonraker_http_printer_info(const struct p2m_moonraker_view *v)
{
	cJSON *r = cJSON_CreateObject();
	char *out;

	cJSON_AddItemToObject(r, "result", printer_info(v));
	out = p2m_json_print(r);
	cJSON_Delete(r);
	return out;
}
