/* test_json_sensor.c - the json_sensor table (docs/protocol-json-sensor.md): frames in,
 * state out, commands to frames. Each case is one input and the exact output due. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "panda2mqtt/command.h"
#include "panda2mqtt/entity.h"
#include "panda2mqtt/families.h"
#include "panda2mqtt/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct p2m_driver *drv = &p2m_driver_json_sensor;

/* The protocol document's example, first frame. */
#define FIRST                                                                                      \
	"{\"sensor\":{\"id\":\"drybox-1\",\"name\":\"Dry box\",\"fw\":\"1.2.0\","                  \
	"\"temperature\":24.5,\"humidity\":38.0,\"interval\":10}}"

static cJSON *device_after(const char *const *frames, size_t n)
{
	cJSON *dev = cJSON_CreateObject();

	for (size_t i = 0; i < n; i++) {
		cJSON *f = cJSON_Parse(frames[i]);

		assert_non_null(f);
		p2m_entity_merge_frame(drv, "t", dev, f, i == 0);
		cJSON_Delete(f);
	}
	return dev;
}

static char *state_of(const cJSON *dev)
{
	struct p2m_view v = {.dev = dev, .now = 1e9};
	cJSON *s = p2m_entity_state(drv, &v);
	char *out = cJSON_PrintUnformatted(s);

	cJSON_Delete(s);
	return out;
}

static void test_first_frame_names_the_device(void **st)
{
	static const char *const first[] = {FIRST};
	cJSON *frame = cJSON_Parse(FIRST);
	cJSON *no_id = cJSON_Parse("{\"sensor\":{\"temperature\":20}}");
	cJSON *pb = cJSON_Parse("{\"settings\":{\"fw_version\":\"V1.0.3\"}}");
	cJSON *dev = device_after(first, 1);
	char id[P2M_ID_MAX + 1];

	(void)st;
	assert_true(drv->is_snapshot(frame));
	assert_false(drv->is_snapshot(no_id));
	assert_false(drv->is_snapshot(pb));
	assert_ptr_equal(p2m_family_for_snapshot(frame, false), drv);
	assert_true(drv->device_id(dev, id, sizeof(id)));
	assert_string_equal(id, "sensor_drybox-1");
	assert_string_equal(drv->fw_version(dev), "1.2.0");
	assert_string_equal(drv->display_name(dev), "Dry box");
	cJSON_Delete(dev);
	cJSON_Delete(frame);
	cJSON_Delete(no_id);
	cJSON_Delete(pb);
}

static void test_ids_are_made_safe(void **st)
{
	static const struct {
		const char *frame, *id; /* NULL: no id */
	} cases[] = {
	    {"{\"sensor\":{\"id\":\"Dry Box #2\"}}", "sensor_drybox2"},
	    {"{\"sensor\":{\"id\":\"a_b-c\"}}", "sensor_a_b-c"},
	    {"{\"sensor\":{\"id\":\"!!!\"}}", NULL},
	    {"{\"sensor\":{\"id\":\"\"}}", NULL},
	    {"{\"sensor\":{\"id\":7}}", NULL},
	};

	(void)st;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cJSON *dev = device_after(&cases[i].frame, 1);
		char id[P2M_ID_MAX + 1] = "";
		bool ok = drv->device_id(dev, id, sizeof(id));

		if (cases[i].id) {
			assert_true(ok);
			assert_string_equal(id, cases[i].id);
		} else {
			assert_false(ok);
		}
		cJSON_Delete(dev);
	}
}

static void test_state(void **st)
{
	static const struct {
		const char *frames[3];
		const char *state;
	} cases[] = {
	    {{FIRST},
	     "{\"temperature\":24.5,\"humidity\":38,\"interval\":10,"
	     "\"firmware_version\":\"1.2.0\"}"},
	    /* a change; a battery appears */
	    {{FIRST, "{\"sensor\":{\"humidity\":12.5,\"battery\":80}}"},
	     "{\"temperature\":24.5,\"humidity\":12.5,\"battery\":80,\"interval\":10,"
	     "\"firmware_version\":\"1.2.0\"}"},
	    /* no hygrometer reads 250 %: unknown, not kept */
	    {{FIRST, "{\"sensor\":{\"humidity\":250}}"},
	     "{\"temperature\":24.5,\"interval\":10,\"firmware_version\":\"1.2.0\"}"},
	    /* a whole snapshot without humidity: it is no longer known */
	    {{"{\"sensor\":{\"id\":\"x\",\"temperature\":20}}"},
	     "{\"temperature\":20,\"firmware_version\":null}"},
	};

	(void)st;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = 0;
		cJSON *dev;
		char *got;

		while (n < 3 && cases[i].frames[n])
			n++;
		dev = device_after(cases[i].frames, n);
		got = state_of(dev);
		if (strcmp(got, cases[i].state) != 0)
			fail_msg("case %zu:\n got  %s\n want %s", i, got, cases[i].state);
		free(got);
		cJSON_Delete(dev);
	}
}

static char *plan(const char *command)
{
	static const char *const first[] = {FIRST};
	const struct p2m_safety safety = {.max_target_temp = 60, .max_chamber_temp = 65};
	cJSON *dev = device_after(first, 1);
	struct p2m_view v = {.dev = dev, .now = 1e9};
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
	cJSON_Delete(dev);
	return out;
}

static void test_commands(void **st)
{
	static const struct {
		const char *command, *frames;
	} cases[] = {
	    {"{\"interval\":30}", "[{\"sensor\":{\"interval\":30}}]"},
	    {"{\"interval\":3600}", "[{\"sensor\":{\"interval\":3600}}]"},
	    {"{\"interval\":0}", "rejected interval: "},
	    {"{\"interval\":2.5}", "rejected interval: "},
	    {"{\"interval\":\"soon\"}", "rejected interval: "},
	    {"{\"temperature\":20}", "rejected temperature: read-only field"},
	    {"{\"fan\":1}", "rejected fan: unknown field"},
	};

	(void)st;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = plan(cases[i].command);

		if (strncmp(got, cases[i].frames, strlen(cases[i].frames)) != 0)
			fail_msg("%s:\n got  %s\n want %s", cases[i].command, got, cases[i].frames);
		free(got);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_first_frame_names_the_device),
	    cmocka_unit_test(test_ids_are_made_safe),
	    cmocka_unit_test(test_state),
	    cmocka_unit_test(test_commands),
	};

	p2m_log_set_level(P2M_LOG_ERR); /* the refused values are logged as warnings */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
