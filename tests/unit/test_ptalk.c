/* test_ptalk.c - the PTalk table: messages in, state and events out, commands to requests.
 * Table-driven like test_panda_breath.c: each case is one input and the exact output due. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "panda2mqtt/command.h"
#include "panda2mqtt/families.h"
#include "panda2mqtt/entity.h"
#include "panda2mqtt/json_util.h"
#include "panda2mqtt/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct p2m_driver *drv = &p2m_driver_ptalk;

#define HANDSHAKE                                                                                  \
	"{\"cmd\":\"device_handshake\",\"device_id\":\"A1:B2:C3:D4:E5:F6\","                       \
	"\"firmware_version\":\"1.0.1\",\"device_name\":\"PTalk\",\"battery_percent\":85,"         \
	"\"connectivity_state\":\"ONLINE\"}"

static cJSON *events;

static void collect(void *ud, cJSON *event)
{
	(void)ud;
	cJSON_AddItemToArray(events, event);
}

/* The message as the device sends it, merged into dev; returns what message() said. */
static enum p2m_reply take(cJSON *dev, const char *text, const char *request)
{
	cJSON *msg = cJSON_Parse(text), *frame = NULL;
	enum p2m_reply r;

	assert_non_null(msg);
	r = drv->message(msg, request, &frame, collect, NULL);
	if (frame)
		assert_int_equal(p2m_entity_merge_frame(drv, "t", dev, frame, false), 0);
	cJSON_Delete(frame);
	cJSON_Delete(msg);
	return r;
}

static char *state_json(const cJSON *dev, const struct p2m_update_view *u)
{
	struct p2m_view v = {.dev = dev, .now = 1e9, .update = u};
	cJSON *s = p2m_entity_state(drv, &v);
	cJSON *d = cJSON_DetachItemFromObject(s, "device");
	char *out = cJSON_PrintUnformatted(s);

	cJSON_Delete(d);
	cJSON_Delete(s);
	return out;
}

static void setup_events(void)
{
	cJSON_Delete(events);
	events = cJSON_CreateArray();
}

static void test_handshake_is_recognised_and_named(void **state)
{
	cJSON *dev = cJSON_CreateObject();
	cJSON *hs = cJSON_Parse(HANDSHAKE), *reply = cJSON_Parse("{\"status\":\"ok\"}");
	char id[P2M_ID_MAX + 1];

	(void)state;
	setup_events();
	assert_true(drv->is_snapshot(hs));
	assert_false(drv->is_snapshot(reply));
	assert_ptr_equal(p2m_family_for_snapshot(hs, true), drv);
	assert_null(p2m_family_for_snapshot(hs, false)); /* mdns never probes a PTalk */
	assert_int_equal(take(dev, HANDSHAKE, NULL), P2M_NOT_A_REPLY);
	assert_true(drv->device_id(dev, id, sizeof(id)));
	assert_string_equal(id, "ptalk_a1b2c3d4e5f6");
	assert_string_equal(drv->fw_version(dev), "1.0.1");
	assert_int_equal(cJSON_GetArraySize(events), 0);
	cJSON_Delete(hs);
	cJSON_Delete(reply);
	cJSON_Delete(dev);
}

static void test_bad_device_ids_are_refused(void **state)
{
	static const char *const bad[] = {
	    "{\"ptalk\":{\"device_id\":\"\"}}",
	    "{\"ptalk\":{\"device_id\":\"../etc\"}}",
	    "{\"ptalk\":{\"device_id\":\"a b\"}}",
	    "{\"ptalk\":{\"device_id\":42}}",
	    "{\"ptalk\":{}}",
	};
	char id[P2M_ID_MAX + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cJSON *dev = cJSON_Parse(bad[i]);
		assert_false(drv->device_id(dev, id, sizeof(id)));
		cJSON_Delete(dev);
	}
}

static void test_status_reply_fills_the_state(void **state)
{
	cJSON *dev = cJSON_CreateObject();
	char *s;

	(void)state;
	setup_events();
	take(dev, HANDSHAKE, NULL);
	assert_int_equal(take(dev,
			      "{\"status\":\"ok\",\"device_id\":\"A1B2C3D4E5F6\",\"volume\":60,"
			      "\"brightness\":100,\"uptime_sec\":3600,\"battery_percent\":80,"
			      "\"message\":\"fine\"}",
			      "request_status"),
			 P2M_REPLY_OK);
	s = state_json(dev, NULL);
	assert_string_equal(
	    s, "{\"volume\":60,\"brightness\":100,\"device_name\":\"PTalk\",\"battery\":80,"
	       "\"connectivity\":\"ONLINE\",\"firmware_version\":\"1.0.1\",\"uptime\":3600,"
	       "\"mac_address\":\"A1B2C3D4E5F6\",\"firmware_update\":{\"installed_version\":"
	       "\"1.0.1\",\"latest_version\":\"1.0.1\",\"title\":\"PTalk "
	       "firmware\",\"release_summary\":null,"
	       "\"in_progress\":false,\"update_percentage\":null}}");
	free(s);
	/* "status" and "message" belong to the exchange, not the state */
	assert_null(p2m_json_field(dev, "ptalk", "status"));
	assert_null(p2m_json_field(dev, "ptalk", "message"));
	cJSON_Delete(dev);
}

static void test_refusals_become_events(void **state)
{
	static const struct {
		const char *status, *request;
	} cases[] = {
	    {"error", "request_ota"},	       {"not_supported", "set_wifi"},
	    {"invalid_command", "frobnicate"}, {"invalid_param", "set_volume"},
	    {"invalid_param", NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cJSON *dev = cJSON_CreateObject();
		char msg[256], *e;
		char want[512];

		setup_events();
		snprintf(msg, sizeof(msg),
			 "{\"status\":\"%s\",\"message\":\"no\",\"volume\":7,\"device_id\":\"X\"}",
			 cases[i].status);
		assert_int_equal(take(dev, msg, cases[i].request), P2M_REPLY_FAILED);
		assert_null(dev->child); /* nothing of a refusal is taken as state */
		e = cJSON_PrintUnformatted(events);
		snprintf(want, sizeof(want),
			 "[{\"event_type\":\"command_failed\",\"command\":\"%s\",\"status\":\"%s\","
			 "\"message\":\"no\"}]",
			 cases[i].request ? cases[i].request : "unrecognised", cases[i].status);
		assert_string_equal(e, want);
		free(e);
		cJSON_Delete(dev);
	}
}

static void test_ota_reply_is_not_the_running_version(void **state)
{
	cJSON *dev = cJSON_CreateObject();

	(void)state;
	setup_events();
	take(dev, HANDSHAKE, NULL);
	assert_int_equal(take(dev, "{\"status\":\"ok\",\"version\":\"2.0.0\"}", "request_ota"),
			 P2M_REPLY_OK);
	assert_string_equal(drv->fw_version(dev), "1.0.1");
	cJSON_Delete(dev);
}

static void test_not_replies(void **state)
{
	cJSON *dev = cJSON_CreateObject();

	(void)state;
	setup_events();
	assert_int_equal(take(dev, "{\"hello\":1}", "set_volume"), P2M_NOT_A_REPLY);
	assert_int_equal(take(dev, "{\"status\":1}", "set_volume"), P2M_NOT_A_REPLY);
	assert_int_equal(take(dev, "[1,2]", NULL), P2M_NOT_A_REPLY);
	assert_null(dev->child);
	cJSON_Delete(dev);
}

/* A command object -> the frames sent (markers included), or the rejection. */
static char *plan(const cJSON *dev, const struct p2m_update_view *u, const char *command)
{
	const struct p2m_safety safety = {.max_target_temp = 60, .max_chamber_temp = 65};
	struct p2m_view v = {.dev = dev, .now = 1e9, .update = u};
	struct p2m_cmd cmd = {.driver = drv, .dev = dev, .view = &v, .safety = &safety};
	cJSON *c = cJSON_Parse(command);
	char *out;

	assert_non_null(c);
	if (p2m_command_plan(&cmd, c) == 0) {
		out = cJSON_PrintUnformatted(cmd.frames);
	} else {
		out = malloc(400);
		snprintf(out, 400, "rejected %s: %s", cmd.field, cmd.reason);
	}
	p2m_command_clear(&cmd);
	cJSON_Delete(c);
	return out;
}

static void test_commands(void **state)
{
	static const struct p2m_update_view none = {.percent = -1};
	static const struct p2m_update_view newer = {
	    .latest = "1.0.2", .path = "/fw/ptalk-1.0.2.bin", .percent = -1};
	static const struct p2m_update_view same = {
	    .latest = "1.0.1", .path = "/fw/ptalk-1.0.1.bin", .percent = -1};
	static const struct p2m_update_view busy = {
	    .latest = "1.0.2", .path = "/fw/ptalk-1.0.2.bin", .in_progress = true, .percent = 40};
	static const struct {
		const struct p2m_update_view *u;
		const char *command, *want;
	} cases[] = {
	    {&none, "{\"volume\":75}", "[{\"cmd\":\"set_volume\",\"volume\":75}]"},
	    {&none, "{\"volume\":\"40.0\"}", "[{\"cmd\":\"set_volume\",\"volume\":40}]"},
	    {&none, "{\"volume\":101}", "rejected volume: 101 is out of range 0..100"},
	    {&none, "{\"brightness\":-1}", "rejected brightness: -1 is out of range 0..100"},
	    {&none, "{\"brightness\":2.5}", "rejected brightness: 2.5 is not a whole number"},
	    {&none, "{\"reboot\":\"PRESS\",\"device_name\":\"Den\",\"volume\":1}",
	     "[{\"cmd\":\"set_volume\",\"volume\":1},{\"cmd\":\"set_device_name\","
	     "\"device_name\":\"Den\"},{\"cmd\":\"reboot\"}]"},
	    {&none, "{\"device_name\":\"\"}",
	     "rejected device_name: expected text of 1 to 32 characters"},
	    {&none, "{\"set_wifi\":1}", "rejected set_wifi: unknown field"},
	    {&none, "{\"uptime\":5}", "rejected uptime: read-only field"},
	    {&none, "{\"firmware_update\":\"install\"}",
	     "rejected firmware_update: no firmware image for this device ([firmware] "
	     "dir)"},
	    {&newer, "{\"firmware_update\":\"yes\"}",
	     "rejected firmware_update: the payload must be \"install\""},
	    {&same, "{\"firmware_update\":\"install\"}",
	     "rejected firmware_update: firmware 1.0.1 is already installed"},
	    {&busy, "{\"firmware_update\":\"install\"}",
	     "rejected firmware_update: an update is already in progress"},
	    {&newer, "{\"firmware_update\":\"install\",\"reboot\":\"PRESS\"}",
	     "rejected reboot: a firmware install reboots the device by itself"},
	    {&newer, "{\"firmware_update\":\"install\",\"volume\":3}",
	     "[{\"cmd\":\"set_volume\",\"volume\":3},{\"cmd\":\"request_ota\",\"version\":"
	     "\"1.0.2\"},{\"@await_reply\":true},{\"@send_file\":\"/fw/ptalk-1.0.2.bin\"}]"},
	};
	cJSON *dev = cJSON_CreateObject();

	(void)state;
	setup_events();
	take(dev, HANDSHAKE, NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = plan(dev, cases[i].u, cases[i].command);
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("case %zu: %s\n  got:  %s\n  want: %s", i, cases[i].command, got,
				 cases[i].want);
		free(got);
	}
	cJSON_Delete(dev);
}

static void test_restarts(void **state)
{
	cJSON *a = cJSON_Parse("{\"cmd\":\"reboot\"}"),
	      *b = cJSON_Parse("{\"cmd\":\"set_volume\"}");

	(void)state;
	assert_true(drv->restarts(a));
	assert_false(drv->restarts(b));
	cJSON_Delete(a);
	cJSON_Delete(b);
}

static void test_update_progress_state(void **state)
{
	static const struct p2m_update_view u = {
	    .latest = "1.0.2", .path = "/x", .in_progress = true, .percent = 42};
	cJSON *dev = cJSON_CreateObject();
	char *s;

	(void)state;
	setup_events();
	take(dev, HANDSHAKE, NULL);
	s = state_json(dev, &u);
	assert_non_null(strstr(
	    s, "\"firmware_update\":{\"installed_version\":\"1.0.1\","
	       "\"latest_version\":\"1.0.2\",\"title\":\"PTalk firmware\",\"release_summary\":null,"
	       "\"in_progress\":true,\"update_percentage\":42}"));
	free(s);
	cJSON_Delete(dev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_handshake_is_recognised_and_named),
	    cmocka_unit_test(test_bad_device_ids_are_refused),
	    cmocka_unit_test(test_status_reply_fills_the_state),
	    cmocka_unit_test(test_refusals_become_events),
	    cmocka_unit_test(test_ota_reply_is_not_the_running_version),
	    cmocka_unit_test(test_not_replies),
	    cmocka_unit_test(test_commands),
	    cmocka_unit_test(test_restarts),
	    cmocka_unit_test(test_update_progress_state),
	};
	int rc;

	p2m_log_set_level(P2M_LOG_ERR);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	cJSON_Delete(events);
	return rc;
}
