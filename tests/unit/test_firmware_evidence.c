/* test_firmware_evidence.c - the Panda Breath driver and the virtual Moonraker against
 * what the official firmware does: the files in tests/fixtures/panda_breath (their
 * provenance is in that folder's README), replayed through the same functions the
 * daemon runs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "panda2mqtt/families.h"
#include "panda2mqtt/entity.h"
#include "panda2mqtt/events.h"
#include "panda2mqtt/ha.h"
#include "panda2mqtt/json_util.h"
#include "panda2mqtt/log.h"
#include "panda2mqtt/moonraker_rpc.h"
#include "panda2mqtt/safety.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct p2m_driver *drv = &p2m_driver_panda_breath;

static char *fixture_text(const char *name)
{
	char path[512];
	FILE *f;
	long n;
	char *buf;

	snprintf(path, sizeof(path), "%s/panda_breath/%s", P2M_FIXTURES, name);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static cJSON *fixture(const char *name)
{
	char *text = fixture_text(name);
	cJSON *v = cJSON_Parse(text);

	if (!v)
		fail_msg("%s is not JSON", name);
	free(text);
	return v;
}

/* A device that sent these fixtures in order, the first as its snapshot. */
static cJSON *device_after(const char *const *names, bool *seen)
{
	cJSON *dev = cJSON_CreateObject();

	for (size_t i = 0; names[i]; i++) {
		cJSON *f = fixture(names[i]);
		if (p2m_entity_merge_frame(drv, "t", dev, f, i == 0) != 0)
			fail_msg("%s merged with problems", names[i]);
		if (seen)
			p2m_entity_note_seen(drv, dev, seen);
		cJSON_Delete(f);
	}
	return dev;
}

static cJSON *state_of(const cJSON *dev, const bool *seen)
{
	struct p2m_view v = {.dev = dev, .now = 1000000, .read_at = 999000, .seen = seen};

	return p2m_entity_state(drv, &v);
}

static const char *str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : "(not a string)";
}

static double num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* The V1.0.3 first frame: recognised, named, its secrets nowhere, no entity that only
 * fields it never sends could feed. */
static void test_first_frame(void **st)
{
	static const char *const frames[] = {"first-frame-v1.0.3.json", NULL};
	bool seen[64] = {false};
	cJSON *snap = fixture("first-frame-v1.0.3.json");
	cJSON *dev = device_after(frames, seen);
	cJSON *state = state_of(dev, seen);
	char *text = cJSON_PrintUnformatted(state), id[40], mac[20];
	struct p2m_heat_status h = {0};

	(void)st;
	assert_true(drv->n_entities <= sizeof(seen) / sizeof(seen[0]));
	assert_ptr_equal(p2m_family_for_snapshot(snap, false), drv);
	assert_true(drv->device_id(dev, id, sizeof(id)));
	assert_string_equal(id, "panda_breath_3c84279a1b2c");
	assert_true(drv->mac_address(dev, mac, sizeof(mac)));
	assert_string_equal(mac, "3c:84:27:9a:1b:2c");
	assert_string_equal(drv->display_name(dev), "PandaBreath");
	assert_null(strstr(text, "FIXTURE-"));
	assert_string_equal(str(state, "mode"), "heat");
	assert_true(num(state, "target_temperature") == 45);
	assert_true(num(state, "chamber_temperature") == 24);
	assert_string_equal(str(state, "heater_fault"), "OFF");
	assert_string_equal(str(state, "printer_state"), "connected");
	assert_string_equal(str(state, "bound_printer"), "X1C (192.0.2.10)");
	assert_true(num(state, "klipper_port") == 80);
	assert_null(cJSON_GetObjectItem(state, "heater_temperature"));
	assert_null(cJSON_GetObjectItem(state, "chamber_temperature_raw"));
	assert_null(cJSON_GetObjectItem(state, "heater_active"));
	drv->heat_status(dev, &h);
	assert_true(h.heating && h.has_chamber && h.chamber == 24);
	assert_false(h.heater_fault || h.sensor_fault);
	cJSON_free(text);
	cJSON_Delete(state);
	cJSON_Delete(dev);
	cJSON_Delete(snap);
}

/* A heater fault: the problem sensor, the [safety] rule, the event; gone with the next
 * snapshot that leaves it out. */
static void test_heater_fault(void **st)
{
	static const char *const frames[] = {"first-frame-v1.0.3.json", "push-temperature.json",
					     "push-heater-fault.json", NULL};
	const struct p2m_safety safety = {.max_target_temp = 60,
					  .max_chamber_temp = 65,
					  .sensor_fault_cutoff = true,
					  .heater_fault_cutoff = true,
					  .max_drying_hours = 99};
	struct p2m_safety off = safety;
	cJSON *dev = device_after(frames, NULL), *state, *snap;
	struct p2m_heat_status h = {0};

	(void)st;
	state = state_of(dev, NULL);
	assert_string_equal(str(state, "heater_fault"), "ON");
	/* no action claims heating the element cannot do */
	assert_string_equal(str(state, "action"), "idle");
	cJSON_Delete(state);
	drv->heat_status(dev, &h);
	assert_true(h.heater_fault);
	assert_int_equal(p2m_safety_check(&safety, &h), P2M_TRIP_HEATER);
	assert_string_equal(p2m_trip_rule(P2M_TRIP_HEATER), "heater_fault");
	off.heater_fault_cutoff = false;
	assert_int_equal(p2m_safety_check(&off, &h), P2M_TRIP_NONE);
	/* the next whole snapshot is the truth: a field it leaves out is gone */
	snap = fixture("first-frame-v1.0.3.json");
	assert_int_equal(p2m_entity_merge_frame(drv, "t", dev, snap, true), 0);
	state = state_of(dev, NULL);
	assert_string_equal(str(state, "heater_fault"), "OFF");
	cJSON_Delete(state);
	/* but a push is not: what it leaves out stays */
	cJSON_Delete(snap);
	snap = fixture("push-heater-fault.json");
	assert_int_equal(p2m_entity_merge_frame(drv, "t", dev, snap, false), 0);
	cJSON_Delete(snap);
	snap = fixture("push-temperature.json");
	assert_int_equal(p2m_entity_merge_frame(drv, "t", dev, snap, false), 0);
	state = state_of(dev, NULL);
	assert_string_equal(str(state, "heater_fault"), "ON");
	cJSON_Delete(state);
	cJSON_Delete(snap);
	cJSON_Delete(dev);
}

/* Replies as the firmware sends them, to every client. */
static void test_replies(void **st)
{
	static const struct {
		const char *file, *type;
		bool ok;
	} cases[] = {
	    {"response-set-hostname-ok.json", "set_hostname", true},
	    {"response-printer-type-ok.json", "printer_type", true},
	    {"response-set-hostname-refused.json", "set_hostname", false},
	};

	(void)st;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cJSON *f = fixture(cases[i].file);
		const char *type = NULL;
		bool ok = !cases[i].ok;

		assert_true(drv->reply_of(f, &type, &ok));
		assert_string_equal(type, cases[i].type);
		assert_int_equal(ok, cases[i].ok);
		cJSON_Delete(f);
	}
	/* a temperature push is no reply */
	cJSON *push = fixture("push-temperature.json");
	const char *type = NULL;
	bool ok;
	assert_false(drv->reply_of(push, &type, &ok));
	cJSON_Delete(push);
	/* each write that gets a reply is listed with its type */
	assert_non_null(drv->replies);
	bool hostname = false, printer_type = false;
	for (const char *const(*r)[3] = drv->replies; (*r)[0]; r++) {
		hostname |= !strcmp((*r)[1], "hostname") && !strcmp((*r)[2], "set_hostname");
		printer_type |=
		    !strcmp((*r)[1], "printer_type") && !strcmp((*r)[2], "printer_type");
	}
	assert_true(hostname && printer_type);
}

/* The same device seen through V1.0.4's own Home Assistant link (a live capture): the
 * values our entities take from the WebSocket mean what that link says they mean. In
 * particular its "heater_temp" is the Auto mode bed threshold, not a heater reading. */
static void test_v104_vocabulary(void **st)
{
	cJSON *own = fixture("v1.0.4-own-mqtt-state.json");
	char text[512];
	cJSON *dev, *state;

	(void)st;
	snprintf(text, sizeof(text),
		 "{\"settings\":{\"fw_version\":\"V1.0.4\",\"work_on\":%s,\"work_mode\":2,"
		 "\"set_temp\":%g,\"hotbedtemp\":%g,\"filtertemp\":%g,\"custom_timer\":%g,"
		 "\"isrunning\":%d,\"warehouse_temper\":%g}}",
		 !strcmp(str(own, "work_on"), "ON") ? "true" : "false", num(own, "target_temp"),
		 num(own, "heater_temp"), num(own, "filter_temp"),
		 num(own, "drying_remaining_min") / 60, !strcmp(str(own, "drying_running"), "ON"),
		 num(own, "chamber_temp"));
	dev = cJSON_CreateObject();
	cJSON *f = cJSON_Parse(text);
	assert_int_equal(p2m_entity_merge_frame(drv, "t", dev, f, true), 0);
	state = state_of(dev, NULL);
	assert_string_equal(str(own, "mode"), "power on");
	assert_string_equal(str(state, "mode"), "heat");
	assert_true(num(state, "target_temperature") == num(own, "target_temp"));
	assert_true(num(state, "auto_bed_threshold") == num(own, "heater_temp"));
	assert_true(num(state, "filter_bed_threshold") == num(own, "filter_temp"));
	assert_true(num(state, "drying_hours") * 60 == num(own, "drying_remaining_min"));
	assert_true(num(state, "chamber_temperature") == num(own, "chamber_temp"));
	assert_string_equal(str(state, "drying"), "OFF");
	cJSON_Delete(state);
	cJSON_Delete(f);
	cJSON_Delete(dev);
	cJSON_Delete(own);
}

/* Numbers that cannot be right read as unknown and are logged once, not silently. */
static void test_impossible_numbers(void **st)
{
	static const char *const frames[] = {
	    "{\"settings\":{\"warehouse_temper\":1e999}}",
	    "{\"settings\":{\"work_mode\":1e30}}",
	    "{\"settings\":{\"isrunning\":1,\"remaining_seconds\":-5}}",
	    "{\"sta\":{\"state\":77}}",
	};
	static const char *const keys[] = {"chamber_temperature", "work_mode", "drying_remaining",
					   "wifi_state"};
	char log[4096];

	(void)st;
	for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
		cJSON *dev = cJSON_CreateObject(), *f = cJSON_Parse(frames[i]), *state;
		FILE *tmp = tmpfile();
		int saved = dup(STDERR_FILENO);
		size_t n;

		assert_non_null(f);
		p2m_log_ratelimit_reset();
		fflush(stderr);
		dup2(fileno(tmp), STDERR_FILENO);
		/* sent twice: logged once */
		assert_int_equal(p2m_entity_merge_frame(drv, "t", dev, f, false), 1);
		assert_int_equal(p2m_entity_merge_frame(drv, "t", dev, f, false), 1);
		fflush(stderr);
		dup2(saved, STDERR_FILENO);
		close(saved);
		rewind(tmp);
		n = fread(log, 1, sizeof(log) - 1, tmp);
		log[n] = '\0';
		fclose(tmp);
		if (!strstr(log, "shown as unknown") ||
		    strstr(strstr(log, "shown as unknown") + 1, "shown as unknown"))
			fail_msg("%s: expected one line, got:\n%s", frames[i], log);
		state = state_of(dev, NULL);
		if (!cJSON_IsNull(cJSON_GetObjectItem(state, keys[i])))
			fail_msg("%s: %s is not unknown", frames[i], keys[i]);
		cJSON_Delete(state);
		cJSON_Delete(f);
		cJSON_Delete(dev);
	}
}

/* Every printer.state code has an option of its own, and none is spelled like Home
 * Assistant's own unknown state. */
static void test_printer_states(void **st)
{
	const struct p2m_entity *e = p2m_entity_find(drv, "printer_state");

	(void)st;
	for (int type = 1; type <= 2; type++) {
		int last = type == 2 ? 9 : 7;
		char *names[10] = {NULL};

		for (int code = 0; code <= last; code++) {
			char text[128];
			cJSON *dev, *f, *state;
			const char *name;
			bool listed = false;

			snprintf(text, sizeof(text),
				 "{\"settings\":{\"printer_type\":%d},\"printer\":{\"state\":%d}}",
				 type, code);
			dev = cJSON_CreateObject();
			f = cJSON_Parse(text);
			assert_int_equal(p2m_entity_merge_frame(drv, "t", dev, f, false), 0);
			state = state_of(dev, NULL);
			name = str(state, "printer_state");
			for (size_t i = 0; e->options[i]; i++)
				listed |= !strcmp(e->options[i], name);
			if (!listed)
				fail_msg("type %d code %d: %s is not an option", type, code, name);
			for (int j = 0; j < code; j++)
				if (!strcmp(names[j], name))
					fail_msg("type %d: codes %d and %d both read %s", type, j,
						 code, name);
			names[code] = strdup(name);
			cJSON_Delete(state);
			cJSON_Delete(f);
			cJSON_Delete(dev);
		}
		for (int code = 0; code <= last; code++)
			free(names[code]);
	}
	for (size_t i = 0; e->options[i]; i++)
		assert_true(strcmp(e->options[i], "unknown") && strcmp(e->options[i], "none"));
}

/* The virtual Moonraker answers the firmware's exact request. */
static void test_moonraker_answers_the_literal(void **st)
{
	char *req = fixture_text("moonraker-request-v1.0.3.json");
	struct p2m_printer_status s = {.state = P2M_PRINT_ERROR,
				       .has_bed = true,
				       .bed = 61,
				       .has_bed_target = true,
				       .bed_target = 65,
				       .has_nozzle = true,
				       .nozzle = 210};
	struct p2m_moonraker_view v = {.status = &s, .known = true, .eventtime = 12.5};
	char *out = p2m_moonraker_rpc(req, strlen(req), &v);
	cJSON *r = cJSON_Parse(out), *status;

	(void)st;
	assert_non_null(r);
	assert_true(num(r, "id") == 1001);
	assert_string_equal(str(r, "jsonrpc"), "2.0");
	status = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "result"), "status");
	assert_non_null(status);
	/* the objects asked for, only the attributes asked for; the macro left out */
	assert_int_equal(cJSON_GetArraySize(status), 5);
	assert_null(cJSON_GetObjectItem(status, "gcode_macro _KNOMI_STATUS"));
	assert_string_equal(str(cJSON_GetObjectItem(status, "webhooks"), "state"), "ready");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(status, "webhooks")), 1);
	assert_true(num(cJSON_GetObjectItem(status, "heater_bed"), "temperature") == 61);
	assert_true(num(cJSON_GetObjectItem(status, "heater_bed"), "target") == 65);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(status, "heater_bed")), 2);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(status, "virtual_sdcard")), 1);
	/* only print states the firmware knows: an error is "cancelled" */
	assert_string_equal(str(cJSON_GetObjectItem(status, "print_stats"), "state"), "cancelled");
	cJSON_Delete(r);
	cJSON_free(out);
	free(req);
}

static void collect(void *ud, cJSON *event)
{
	cJSON_AddItemToArray(ud, event);
}

/* Every event the firmware's frames make the driver emit is one the event entity lists. */
static void test_fixture_events_declared(void **st)
{
	static const char *const pairs[][2] = {
	    {"first-frame-v1.0.3.json", "push-heater-fault.json"},
	    {"first-frame-v1.0.3.json", "push-temperature.json"},
	};

	(void)st;
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		cJSON *before = fixture(pairs[i][0]), *f = fixture(pairs[i][1]);
		cJSON *after = cJSON_Duplicate(before, true);
		cJSON *events = cJSON_CreateArray();

		p2m_json_merge(after, f);
		drv->events(before, after, collect, events);
		for (const cJSON *e = events->child; e; e = e->next)
			if (!p2m_event_declared(drv, str(e, "event_type")))
				fail_msg("%s is not declared", str(e, "event_type"));
		cJSON_Delete(events);
		cJSON_Delete(after);
		cJSON_Delete(before);
		cJSON_Delete(f);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_first_frame),
	    cmocka_unit_test(test_heater_fault),
	    cmocka_unit_test(test_replies),
	    cmocka_unit_test(test_v104_vocabulary),
	    cmocka_unit_test(test_impossible_numbers),
	    cmocka_unit_test(test_printer_states),
	    cmocka_unit_test(test_moonraker_answers_the_literal),
	    cmocka_unit_test(test_fixture_events_declared),
	};
	return cmocka_run_group_tests_name("firmware_evidence", tests, NULL, NULL);
}
