/* test_panda_breath.c - the Panda Breath table: frames in, state out, commands to frames.
 * Table-driven: each case is one row of input and the exact frames (or rejection) due. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "panda2mqtt/command.h"
#include "panda2mqtt/drivers.h"
#include "panda2mqtt/entity.h"
#include "panda2mqtt/json_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct p2m_driver *drv = &p2m_driver_panda_breath;

#define SNAPSHOT(fw, work_on, work_mode, isrunning)                                                \
	"{\"settings\":{\"fw_version\":\"" fw "\",\"work_on\":" work_on                            \
	",\"work_mode\":" work_mode ",\"isrunning\":" isrunning                                    \
	",\"set_temp\":40,\"temp\":40,\"custom_temp\":60,"                                         \
	"\"warehouse_temper\":30.4,\"cal_warehouse_temp\":30.0,\"cal_ptc_temp\":52.5},"            \
	"\"printer\":{\"state\":3,\"sn\":\"01S\",\"access_code\":\"SECRET-AC\","                   \
	"\"list\":[{\"name\":\"p\",\"access_code\":\"SECRET-LIST\"}]},"                            \
	"\"wifi\":{\"ssid\":\"Net\",\"password\":\"SECRET-WIFI\"},"                                \
	"\"ap\":{\"ssid\":\"Panda_Breath_3C84\",\"password\":\"SECRET-AP\",\"on\":0},"             \
	"\"sta\":{\"ip\":\"10.0.0.5\",\"hostname\":\"PandaBreath\",\"state\":3}}"

static cJSON *device_from(const char *snapshot)
{
	cJSON *dev = cJSON_CreateObject();
	cJSON *frame = cJSON_Parse(snapshot);

	assert_non_null(frame);
	assert_int_equal(p2m_entity_merge_frame(drv, "t", dev, frame), 0);
	cJSON_Delete(frame);
	return dev;
}

static struct p2m_view view_of(const cJSON *dev)
{
	return (struct p2m_view){.dev = dev, .now = 1000000, .read_at = 999000};
}

static char *state_of(const cJSON *dev)
{
	struct p2m_view v = view_of(dev);
	cJSON *s = p2m_entity_state(drv, &v);
	char *out = cJSON_PrintUnformatted(s);

	cJSON_Delete(s);
	return out;
}

static void assert_state_has(const cJSON *dev, const char *key, const char *json)
{
	struct p2m_view view = view_of(dev);
	cJSON *s = p2m_entity_state(drv, &view);
	char *v = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(s, key));

	if (strcmp(v, json) != 0)
		fail_msg("state.%s is %s, expected %s", key, v, json);
	cJSON_free(v);
	cJSON_Delete(s);
}

static void test_snapshot_state(void **st)
{
	cJSON *dev = device_from(SNAPSHOT("V1.0.3", "true", "2", "0"));

	(void)st;
	assert_state_has(dev, "mode", "\"heat\"");
	assert_state_has(dev, "target_temperature", "40");
	assert_state_has(dev, "chamber_temperature", "30");
	assert_state_has(dev, "chamber_temperature_raw", "30.4");
	assert_state_has(dev, "heater_temperature", "52.5");
	assert_state_has(dev, "power", "\"ON\"");
	assert_state_has(dev, "work_mode", "\"always_on\"");
	assert_state_has(dev, "firmware_version", "\"V1.0.3\"");
	cJSON_Delete(dev);
}

static void test_mode_derivation(void **st)
{
	static const struct {
		const char *snap;
		const char *mode;
	} cases[] = {
	    {SNAPSHOT("V1.0.3", "false", "2", "0"), "\"off\""},
	    {SNAPSHOT("V1.0.3", "true", "1", "0"), "\"auto\""},
	    {SNAPSHOT("V1.0.3", "true", "2", "0"), "\"heat\""},
	    {SNAPSHOT("V1.0.3", "true", "3", "0"), "\"dry\""},
	    {SNAPSHOT("V1.0.3", "false", "3", "1"), "\"dry\""},
	    {SNAPSHOT("V1.0.0", "1", "2", "0"), "\"heat\""}, /* integer work_on reported */
	    {SNAPSHOT("V1.0.0", "0", "2", "0"), "\"off\""},
	    {SNAPSHOT("V1.0.3", "true", "9", "0"), "null"},
	};

	(void)st;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cJSON *dev = device_from(cases[i].snap);
		assert_state_has(dev, "mode", cases[i].mode);
		cJSON_Delete(dev);
	}
}

static void test_drying_target_is_drying_temperature(void **st)
{
	cJSON *dev = device_from(SNAPSHOT("V1.0.3", "true", "3", "1"));

	(void)st;
	assert_state_has(dev, "target_temperature", "60");
	cJSON_Delete(dev);
}

static void test_state_has_no_secrets(void **st)
{
	cJSON *dev = device_from(SNAPSHOT("V1.0.3", "true", "2", "0"));
	char *s = state_of(dev);

	(void)st;
	assert_null(strstr(s, "SECRET"));
	assert_null(strstr(s, "password"));
	assert_null(strstr(s, "access_code"));
	/* but the rest of the device is there */
	assert_non_null(strstr(s, "\"ssid\":\"Net\""));
	assert_non_null(strstr(s, "\"sn\":\"01S\""));
	cJSON_free(s);
	cJSON_Delete(dev);
}

static void test_fallback_to_raw_chamber(void **st)
{
	cJSON *dev = device_from("{\"settings\":{\"warehouse_temper\":25.5}}");

	(void)st;
	assert_state_has(dev, "chamber_temperature", "25.5");
	cJSON_Delete(dev);
}

static void test_pushes_merge(void **st)
{
	cJSON *dev = device_from(SNAPSHOT("V1.0.3", "true", "2", "0"));
	cJSON *push = cJSON_Parse("{\"settings\":{\"cal_warehouse_temp\":31.5}}");

	(void)st;
	assert_int_equal(p2m_entity_merge_frame(drv, "t", dev, push), 0);
	assert_state_has(dev, "chamber_temperature", "31.5");
	assert_state_has(dev, "target_temperature", "40"); /* untouched */
	cJSON_Delete(push);
	cJSON_Delete(dev);
}

static void test_bad_frames(void **st)
{
	static const struct {
		const char *frame;
		int problems;
	} cases[] = {
	    {"[1,2]", -1},
	    {"\"settings\"", -1},
	    {"{\"settings\":{\"cal_warehouse_temp\":\"hot\"}}", 1},
	    {"{\"settings\":{\"work_on\":\"yes\"}}", 1},
	    {"{\"settings\":{\"work_on\":7}}", 1},
	    {"{\"settings\":{\"fw_version\":12}}", 1},
	    {"{\"settings\":5}", 1},
	    {"{\"bogus\":{\"a\":1}}", 1},
	    {"{\"settings\":{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":1}}}}}}}}}",
	     -1},
	};

	(void)st;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cJSON *dev = device_from(SNAPSHOT("V1.0.3", "true", "2", "0"));
		cJSON *f = cJSON_Parse(cases[i].frame);
		assert_non_null(f);
		if (p2m_entity_merge_frame(drv, "t", dev, f) != cases[i].problems)
			fail_msg("case %zu: %s", i, cases[i].frame);
		/* the good state is unchanged by the bad parts */
		assert_state_has(dev, "chamber_temperature", "30");
		assert_state_has(dev, "power", "\"ON\"");
		assert_state_has(dev, "firmware_version", "\"V1.0.3\"");
		cJSON_Delete(f);
		cJSON_Delete(dev);
	}
}

static void test_long_string_refused(void **st)
{
	cJSON *dev = device_from(SNAPSHOT("V1.0.3", "true", "2", "0"));
	char *big = malloc(400);
	char frame[600];

	(void)st;
	memset(big, 'x', 399);
	big[399] = '\0';
	snprintf(frame, sizeof(frame), "{\"sta\":{\"hostname\":\"%s\"}}", big);
	cJSON *f = cJSON_Parse(frame);
	assert_int_equal(p2m_entity_merge_frame(drv, "t", dev, f), 1);
	assert_string_equal(p2m_json_field(dev, "sta", "hostname")->valuestring, "PandaBreath");
	cJSON_Delete(f);
	free(big);
	cJSON_Delete(dev);
}

/* ---- commands ---- */

struct cmd_case {
	const char *name;
	const char *snap;
	const char *command;
	double max_target;
	const char *frames;	  /* exact JSON array of frames, or NULL when rejected */
	const char *reject_field; /* when rejected */
};

#define HEAT_103 SNAPSHOT("V1.0.3", "true", "2", "0")
#define OFF_103	 SNAPSHOT("V1.0.3", "false", "2", "0")
#define DRY_103	 SNAPSHOT("V1.0.3", "true", "3", "1")
#define OFF_100	 SNAPSHOT("V1.0.0", "0", "2", "0")

static const struct cmd_case cmd_cases[] = {
    {"heat to 45 (proven order)", OFF_103, "{\"mode\":\"heat\",\"target_temperature\":45}", 60,
     "[{\"settings\":{\"isrunning\":0}},{\"settings\":{\"work_mode\":2}},"
     "{\"settings\":{\"set_temp\":45}},{\"settings\":{\"work_on\":true}}]",
     NULL},
    {"heat on V1.0.0 writes temp", OFF_100, "{\"target_temperature\":45,\"mode\":\"heat\"}", 60,
     "[{\"settings\":{\"isrunning\":0}},{\"settings\":{\"work_mode\":2}},"
     "{\"settings\":{\"temp\":45}},{\"settings\":{\"work_on\":true}}]",
     NULL},
    {"auto", OFF_103, "{\"mode\":\"auto\"}", 60,
     "[{\"settings\":{\"isrunning\":0}},{\"settings\":{\"work_mode\":1}},"
     "{\"settings\":{\"work_on\":true}}]",
     NULL},
    {"off while heating", HEAT_103, "{\"mode\":\"off\"}", 60,
     "[{\"settings\":{\"work_on\":false}}]", NULL},
    {"off while drying stops the run", DRY_103, "{\"mode\":\"off\"}", 60,
     "[{\"settings\":{\"isrunning\":0}},{\"settings\":{\"work_on\":false}}]", NULL},
    {"dry at 55", HEAT_103, "{\"mode\":\"dry\",\"target_temperature\":55}", 60,
     "[{\"settings\":{\"work_mode\":3}},{\"settings\":{\"filament_temp\":55}},"
     "{\"settings\":{\"filament_drying_mode\":3}},{\"settings\":{\"isrunning\":1}}]",
     NULL},
    {"target alone while heating", HEAT_103, "{\"target_temperature\":50}", 60,
     "[{\"settings\":{\"set_temp\":50}}]", NULL},
    {"target as text from HA", HEAT_103, "{\"target_temperature\":\"50.0\"}", 60,
     "[{\"settings\":{\"set_temp\":50}}]", NULL},
    {"target while drying is the drying temperature", DRY_103, "{\"target_temperature\":50}", 60,
     "[{\"settings\":{\"filament_temp\":50}},{\"settings\":{\"filament_drying_mode\":3}}]", NULL},
    {"power ON", OFF_103, "{\"power\":\"ON\"}", 60, "[{\"settings\":{\"work_on\":true}}]", NULL},
    {"power 1 is sent as a boolean", OFF_103, "{\"power\":1}", 60,
     "[{\"settings\":{\"work_on\":true}}]", NULL},
    {"power false", HEAT_103, "{\"power\":false}", 60, "[{\"settings\":{\"work_on\":false}}]",
     NULL},
    {"work mode select", HEAT_103, "{\"work_mode\":\"auto\"}", 60,
     "[{\"settings\":{\"work_mode\":1}}]", NULL},
    {"target at the safety cap", HEAT_103, "{\"target_temperature\":50}", 50,
     "[{\"settings\":{\"set_temp\":50}}]", NULL},
    /* rejections: nothing at all is sent */
    {"target above 60", HEAT_103, "{\"target_temperature\":75}", 60, NULL, "target_temperature"},
    {"target above the safety cap", HEAT_103, "{\"target_temperature\":51}", 50, NULL,
     "target_temperature"},
    {"negative target", HEAT_103, "{\"target_temperature\":-5}", 60, NULL, "target_temperature"},
    {"fractional target", HEAT_103, "{\"target_temperature\":45.5}", 60, NULL,
     "target_temperature"},
    {"target text", HEAT_103, "{\"target_temperature\":\"warm\"}", 60, NULL, "target_temperature"},
    {"target bool", HEAT_103, "{\"target_temperature\":true}", 60, NULL, "target_temperature"},
    {"target null", HEAT_103, "{\"target_temperature\":null}", 60, NULL, "target_temperature"},
    {"unknown mode", HEAT_103, "{\"mode\":\"cool\"}", 60, NULL, "mode"},
    {"mode as number", HEAT_103, "{\"mode\":2}", 60, NULL, "mode"},
    {"unknown field", HEAT_103, "{\"bogus\":1}", 60, NULL, "bogus"},
    {"read-only field", HEAT_103, "{\"chamber_temperature\":20}", 60, NULL, "chamber_temperature"},
    {"empty command", HEAT_103, "{}", 60, NULL, ""},
    {"mode with power", HEAT_103, "{\"mode\":\"heat\",\"power\":\"ON\"}", 60, NULL, "mode"},
    {"power maybe", HEAT_103, "{\"power\":\"maybe\"}", 60, NULL, "power"},
    {"power 2", HEAT_103, "{\"power\":2}", 60, NULL, "power"},
    {"bad work mode", HEAT_103, "{\"work_mode\":\"turbo\"}", 60, NULL, "work_mode"},
    {"one bad field spoils all", OFF_103,
     "{\"mode\":\"heat\",\"target_temperature\":45,\"bogus\":1}", 60, NULL, "bogus"},
};

static void test_commands(void **st)
{
	(void)st;
	for (size_t i = 0; i < sizeof(cmd_cases) / sizeof(cmd_cases[0]); i++) {
		const struct cmd_case *c = &cmd_cases[i];
		cJSON *dev = device_from(c->snap);
		struct p2m_safety safety = {.max_target_temp = c->max_target};
		struct p2m_view v = view_of(dev);
		struct p2m_cmd cmd = {.driver = drv, .dev = dev, .view = &v, .safety = &safety};
		cJSON *command = cJSON_Parse(c->command);
		int rc;

		assert_non_null(command);
		rc = p2m_command_plan(&cmd, command);
		if (c->frames) {
			char *got;
			if (rc != 0)
				fail_msg("%s: rejected (%s: %s)", c->name, cmd.field, cmd.reason);
			got = cJSON_PrintUnformatted(cmd.frames);
			if (strcmp(got, c->frames) != 0)
				fail_msg("%s:\n got      %s\n expected %s", c->name, got,
					 c->frames);
			cJSON_free(got);
		} else {
			if (rc == 0)
				fail_msg("%s: accepted but should be rejected", c->name);
			assert_null(cmd.frames);
			if (strcmp(cmd.field, c->reject_field) != 0)
				fail_msg("%s: rejected field '%s', expected '%s'", c->name,
					 cmd.field, c->reject_field);
			assert_true(strlen(cmd.reason) > 0);
		}
		p2m_command_clear(&cmd);
		cJSON_Delete(command);
		cJSON_Delete(dev);
	}
}

static void test_parse_field(void **st)
{
	static const struct {
		const char *payload;
		const char *json; /* resulting {field: value}, or NULL = error */
	} cases[] = {
	    {"heat", "{\"f\":\"heat\"}"},
	    {"45", "{\"f\":45}"},
	    {"45.0", "{\"f\":45}"},
	    {"ON", "{\"f\":\"ON\"}"},
	    {"true", "{\"f\":true}"},
	    {"\"x y\"", "{\"f\":\"x y\"}"},
	    {"", NULL},
	    {"{}", NULL},
	    {"[1]", NULL},
	    {"null", NULL},
	};
	char err[128];

	(void)st;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cJSON *v = p2m_command_parse_field("f", cases[i].payload, strlen(cases[i].payload),
						   err, sizeof(err));
		if (!cases[i].json) {
			if (v)
				fail_msg("payload '%s' accepted", cases[i].payload);
			assert_true(strlen(err) > 0);
			continue;
		}
		assert_non_null(v);
		char *s = cJSON_PrintUnformatted(v);
		assert_string_equal(s, cases[i].json);
		cJSON_free(s);
		cJSON_Delete(v);
	}
	/* an embedded NUL is refused rather than cut short */
	assert_null(p2m_command_parse_field("f", "he\0at", 5, err, sizeof(err)));
}

static void test_parse_object(void **st)
{
	static const char *const bad[] = {
	    "", "{", "[]", "42", "\"s\"", "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":1}}}}}"};
	char err[128];
	char *huge = malloc(P2M_MAX_COMMAND_BYTES + 16);

	(void)st;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cJSON *v = p2m_command_parse_object(bad[i], strlen(bad[i]), err, sizeof(err));
		if (v)
			fail_msg("'%s' accepted", bad[i]);
		assert_true(strlen(err) > 0);
	}
	memset(huge, ' ', P2M_MAX_COMMAND_BYTES + 15);
	huge[0] = '{';
	huge[P2M_MAX_COMMAND_BYTES + 14] = '}';
	huge[P2M_MAX_COMMAND_BYTES + 15] = '\0';
	assert_null(p2m_command_parse_object(huge, strlen(huge), err, sizeof(err)));
	free(huge);
	cJSON *ok = p2m_command_parse_object("{\"mode\":\"heat\"}", 15, err, sizeof(err));
	assert_non_null(ok);
	cJSON_Delete(ok);
}

static void test_snapshot_recognised(void **st)
{
	cJSON *yes = cJSON_Parse(SNAPSHOT("V1.0.3", "true", "2", "0"));
	cJSON *no = cJSON_Parse("{\"settings\":{\"warehouse_temper\":25}}");

	(void)st;
	assert_ptr_equal(p2m_driver_for_snapshot(yes), drv);
	assert_null(p2m_driver_for_snapshot(no));
	cJSON_Delete(yes);
	cJSON_Delete(no);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_snapshot_state),
	    cmocka_unit_test(test_mode_derivation),
	    cmocka_unit_test(test_drying_target_is_drying_temperature),
	    cmocka_unit_test(test_state_has_no_secrets),
	    cmocka_unit_test(test_fallback_to_raw_chamber),
	    cmocka_unit_test(test_pushes_merge),
	    cmocka_unit_test(test_bad_frames),
	    cmocka_unit_test(test_long_string_refused),
	    cmocka_unit_test(test_commands),
	    cmocka_unit_test(test_parse_field),
	    cmocka_unit_test(test_parse_object),
	    cmocka_unit_test(test_snapshot_recognised),
	};
	return cmocka_run_group_tests_name("panda_breath", tests, NULL, NULL);
}
