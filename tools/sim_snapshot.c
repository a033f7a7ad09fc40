/* sim_snapshot.c - the Panda Breath's snapshot and temperature push, for the simulators.
 *
 * Owns: the fields of a simulated Panda Breath's state and their order, the snapshot and
 * push texts (see sim_snapshot.h). Shared by panda2mqtt-sim and panda2mqtt-load. Does not
 * own: the state's later changes, the readings' values, sockets, logs. */
#include "sim_snapshot.h"

#include <stdio.h>
#include <string.h>

const char *const sim_fw_names[SIM_FW_COUNT] = {"V1.0.0", "V1.0.1", "V1.0.2", "V1.0.3", "V1.0.4"};

cJSON *sim_snapshot_state(const struct sim_identity *id)
{
	cJSON *st = cJSON_CreateObject();
	cJSON *s = cJSON_AddObjectToObject(st, "settings");
	cJSON *o;
	char ssid[64];

	cJSON_AddStringToObject(s, "fw_version", sim_fw_names[id->fw]);
	cJSON_AddNumberToObject(s, "printer_type", 1);
	cJSON_AddBoolToObject(s, "work_on", 0);
	cJSON_AddNumberToObject(s, "work_mode", 2);
	if (id->fw != SIM_FW_V100)
		cJSON_AddNumberToObject(s, "set_temp", 40);
	cJSON_AddNumberToObject(s, "temp", 40);
	cJSON_AddNumberToObject(s, "hotbedtemp", 80);
	cJSON_AddNumberToObject(s, "filtertemp", 30);
	cJSON_AddNumberToObject(s, "custom_temp", 60);
	cJSON_AddNumberToObject(s, "custom_timer", 12);
	cJSON_AddNumberToObject(s, "filament_temp", 60);
	cJSON_AddNumberToObject(s, "filament_timer", 12);
	cJSON_AddNumberToObject(s, "filament_drying_mode", 3);
	cJSON_AddNumberToObject(s, "isrunning", 0);
	cJSON_AddNumberToObject(s, "remaining_seconds", 0);
	/* placeholders keeping the key order; the snapshot fills in the readings */
	cJSON_AddNumberToObject(s, "warehouse_temper", 0);
	if (id->doc) {
		/* the base document's fields: function names in the real binaries */
		cJSON_AddNumberToObject(s, "cal_warehouse_temp", 0);
		cJSON_AddNumberToObject(s, "cal_ptc_temp", 0);
	}
	cJSON_AddNumberToObject(s, "ptc_sensor_status", 0);
	cJSON_AddNumberToObject(s, "warehouse_sensor_status", 0);
	if (id->doc) /* the document's "heater status"; the firmware's is a fault flag */
		cJSON_AddNumberToObject(s, "ptc_heater_status", 0);
	cJSON_AddStringToObject(s, "language", "en");

	o = cJSON_AddObjectToObject(st, "printer");
	cJSON_AddNumberToObject(o, "state", 3);
	cJSON_AddStringToObject(o, "name", id->printer_name);
	cJSON_AddStringToObject(o, "ip", "127.0.0.2");
	cJSON_AddNumberToObject(o, "port", 8883);
	cJSON_AddStringToObject(o, "host", "");
	cJSON_AddStringToObject(o, "sn", id->printer_sn);
	cJSON_AddStringToObject(o, "access_code", id->access_code);

	o = cJSON_AddObjectToObject(st, "sta");
	cJSON_AddStringToObject(o, "ip", id->sta_ip);
	cJSON_AddStringToObject(o, "hostname", id->hostname);
	cJSON_AddNumberToObject(o, "state", 3);

	o = cJSON_AddObjectToObject(st, "ap");
	snprintf(ssid, sizeof(ssid), "Panda_Breath_%s", id->mac);
	cJSON_AddStringToObject(o, "ssid", ssid);
	cJSON_AddStringToObject(o, "password", id->ap_password);
	cJSON_AddStringToObject(o, "ip", "192.168.254.1");
	cJSON_AddNumberToObject(o, "on", 0);

	o = cJSON_AddObjectToObject(st, "wifi");
	cJSON_AddStringToObject(o, "ssid", id->wifi_ssid);
	cJSON_AddStringToObject(o, "password", id->wifi_password);

	if (id->fw == SIM_FW_V104) {
		o = cJSON_AddObjectToObject(st, "ha");
		cJSON_AddStringToObject(o, "ip", "");
		cJSON_AddNumberToObject(o, "port", 1883);
		cJSON_AddStringToObject(o, "user", "");
		cJSON_AddNumberToObject(o, "state", 0);
	}
	return st;
}

/* A reading as the device prints it: a bare number with a fixed count of decimals (cJSON
 * would print 20.0 as 20), so it goes in as a raw value. Only where state has the field. */
static void set_reading(cJSON *s, const char *key, double t, int decimals)
{
	char num[32];

	if (!cJSON_GetObjectItemCaseSensitive(s, key))
		return;
	snprintf(num, sizeof(num), "%.*f", decimals, t);
	cJSON_ReplaceItemInObjectCaseSensitive(s, key, cJSON_CreateRaw(num));
}

char *sim_snapshot_text(const cJSON *state, enum sim_fw fw, const struct sim_readings *r)
{
	cJSON *snap = cJSON_Duplicate(state, 1);
	cJSON *s = cJSON_GetObjectItemCaseSensitive(snap, "settings");
	cJSON *v;
	char *txt;

	v = cJSON_GetObjectItemCaseSensitive(s, "work_on");
	if (fw == SIM_FW_V100 && cJSON_IsBool(v))
		cJSON_ReplaceItemInObjectCaseSensitive(s, "work_on",
						       cJSON_CreateNumber(cJSON_IsTrue(v)));
	v = cJSON_GetObjectItemCaseSensitive(s, "set_temp");
	if (fw != SIM_FW_V100 && v) {
		v = cJSON_Duplicate(v, 1);
		if (cJSON_GetObjectItemCaseSensitive(s, "temp"))
			cJSON_ReplaceItemInObjectCaseSensitive(s, "temp", v);
		else
			cJSON_AddItemToObject(s, "temp", v);
	}
	set_reading(s, "warehouse_temper", r->warehouse, r->decimals);
	set_reading(s, "cal_warehouse_temp", r->cal_warehouse, 1);
	set_reading(s, "cal_ptc_temp", r->cal_ptc, 1);
	txt = cJSON_PrintUnformatted(snap);
	cJSON_Delete(snap);
	return txt;
}

int sim_snapshot_push(char *buf, size_t size, const struct sim_readings *r)
{
	char raw[32];

	snprintf(raw, sizeof(raw), "%.*f", r->decimals, r->warehouse);
	if (r->cal)
		return snprintf(
		    buf, size,
		    "{\"settings\":{\"warehouse_temper\":%s,\"cal_warehouse_temp\":%.1f,"
		    "\"cal_ptc_temp\":%.1f}}",
		    raw, r->cal_warehouse, r->cal_ptc);
	return snprintf(buf, size, "{\"settings\":{\"warehouse_temper\":%s}}", raw);
}
