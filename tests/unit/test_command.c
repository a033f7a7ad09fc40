/* test_command.c - the generic command machinery (command.c), whatever the family:
 * payloads parsed (JSON objects on <base>/<id>/set, plain values on set/<field>), the
 * value checks rows use, and all-or-nothing planning. The families' own command tables
 * (which frames each command becomes) are in test_<family>.c. */
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

/* ---- a family of the test's own: one row per kind of check ---- */

struct t_intent {
	bool has_level, has_on, has_colour, has_go, has_label;
	double level;
	bool on;
	int colour;
	const char *label;
};

static const char *const t_colours[] = {"red", "green", NULL};

static int t_write(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v)
{
	struct t_intent *in = cmd->intent;

	if (!strcmp(e->key, "level")) {
		in->has_level = true;
		return p2m_cmd_number(cmd, e, v, &in->level);
	}
	if (!strcmp(e->key, "ratio") || !strcmp(e->key, "hours")) {
		double checked;
		return p2m_cmd_number(cmd, e, v, &checked);
	}
	if (!strcmp(e->key, "on")) {
		in->has_on = true;
		return p2m_cmd_bool(cmd, e, v, &in->on);
	}
	if (!strcmp(e->key, "colour")) {
		in->has_colour = true;
		return p2m_cmd_option(cmd, e, e->options, v, &in->colour);
	}
	if (!strcmp(e->key, "go")) {
		in->has_go = true;
		return p2m_cmd_press(cmd, e, v);
	}
	if (!strcmp(e->key, "label") || !strcmp(e->key, "secret")) {
		in->has_label = true;
		return p2m_cmd_text(cmd, e, v, &in->label);
	}
	if (!strcmp(e->key, "hold")) {
		p2m_cmd_set_local(cmd, "held", cJSON_Duplicate(v, true));
		return 0;
	}
	return p2m_cmd_reject(cmd, e->key, "no writer");
}

/* Frames in a fixed order whatever the order of the fields in the command. */
static int t_plan(struct p2m_cmd *cmd)
{
	const struct t_intent *in = cmd->intent;

	if (in->has_on)
		p2m_cmd_frame(cmd, "t", "on", cJSON_CreateBool(in->on));
	if (in->has_level)
		p2m_cmd_frame(cmd, "t", "level", cJSON_CreateNumber(in->level));
	if (in->has_colour)
		p2m_cmd_frame(cmd, "t", "colour", cJSON_CreateNumber(in->colour));
	if (in->has_label)
		p2m_cmd_frame(cmd, "t", "label", cJSON_CreateString(in->label));
	if (in->has_go) {
		p2m_cmd_delay(cmd, 100);
		p2m_cmd_frame(cmd, "t", "go", cJSON_CreateNumber(1));
	}
	return 0;
}

static const struct p2m_entity t_rows[] = {
    {.key = "level",
     .platform = P2M_NUMBER,
     .vtype = P2M_V_INT,
     .root = "t",
     .field = "level",
     .min = 2,
     .max = 40,
     .cap = P2M_CAP_TARGET,
     .write = t_write},
    {.key = "ratio",
     .platform = P2M_NUMBER,
     .vtype = P2M_V_NUMBER,
     .root = "t",
     .field = "ratio",
     .min = 0,
     .max = 1,
     .write = t_write},
    {.key = "hours",
     .platform = P2M_NUMBER,
     .vtype = P2M_V_INT,
     .root = "t",
     .field = "hours",
     .min = 1,
     .max = 99,
     .cap = P2M_CAP_DRY_HOURS,
     .write = t_write},
    {.key = "on",
     .platform = P2M_SWITCH,
     .vtype = P2M_V_BOOL,
     .root = "t",
     .field = "on",
     .write = t_write},
    {.key = "colour",
     .platform = P2M_SELECT,
     .vtype = P2M_V_ENUM,
     .root = "t",
     .field = "colour",
     .options = t_colours,
     .write = t_write},
    {.key = "go", .platform = P2M_BUTTON, .vtype = P2M_V_PRESS, .write = t_write},
    {.key = "label",
     .platform = P2M_TEXT,
     .vtype = P2M_V_STRING,
     .root = "t",
     .field = "label",
     .max = 8,
     .write = t_write},
    {.key = "secret",
     .platform = P2M_TEXT,
     .vtype = P2M_V_SECRET,
     .password = true,
     .write = t_write},
    {.key = "hold", .platform = P2M_NONE, .vtype = P2M_V_NUMBER, .write = t_write},
    {.key = "reading",
     .platform = P2M_SENSOR,
     .vtype = P2M_V_NUMBER,
     .root = "t",
     .field = "reading"},
};

static const char *const t_roots[] = {"t", NULL};

static const struct p2m_driver t_driver = {
    .name = "t",
    .entities = t_rows,
    .n_entities = sizeof(t_rows) / sizeof(t_rows[0]),
    .roots = t_roots,
    .intent_size = sizeof(struct t_intent),
    .plan = t_plan,
};

/* The command text -> the frames planned as JSON, or "rejected FIELD: REASON". */
static char *plan_with(const struct p2m_driver *d, const struct p2m_safety *safety,
		       const char *command)
{
	cJSON *dev = cJSON_CreateObject(), *c = cJSON_Parse(command);
	struct p2m_view v = {.dev = dev};
	struct p2m_cmd cmd = {.driver = d, .dev = dev, .view = &v, .safety = safety};
	char *out;

	assert_non_null(c);
	if (p2m_command_plan(&cmd, c) == 0) {
		char *frames = cJSON_PrintUnformatted(cmd.frames);
		char *local = cmd.local ? cJSON_PrintUnformatted(cmd.local) : NULL;

		out = malloc(strlen(frames) + (local ? strlen(local) : 0) + 16);
		sprintf(out, "%s%s%s", frames, local ? " local " : "", local ? local : "");
		cJSON_free(frames);
		cJSON_free(local);
	} else {
		/* a rejection leaves nothing behind to send or to hold */
		assert_null(cmd.frames);
		assert_null(cmd.local);
		assert_true(strlen(cmd.reason) > 0);
		out = malloc(strlen(cmd.field) + strlen(cmd.reason) + 16);
		sprintf(out, "rejected %s: %s", cmd.field, cmd.reason);
	}
	p2m_command_clear(&cmd);
	cJSON_Delete(c);
	cJSON_Delete(dev);
	return out;
}

static void test_checks_and_plan(void **st)
{
	static const struct p2m_safety safety = {.max_target_temp = 30, .max_drying_hours = 12};
	static const struct {
		const char *command, *want;
	} cases[] = {
	    /* numbers: the row's range, capped by [safety]; whole for P2M_V_INT; text from HA */
	    {"{\"level\":2}", "[{\"t\":{\"level\":2}}]"},
	    {"{\"level\":30}", "[{\"t\":{\"level\":30}}]"},
	    {"{\"level\":\"12.0\"}", "[{\"t\":{\"level\":12}}]"},
	    {"{\"level\":31}", "rejected level: 31 is out of range 2..30"},
	    {"{\"level\":1}", "rejected level: 1 is out of range 2..30"},
	    {"{\"level\":2.5}", "rejected level: 2.5 is not a whole number"},
	    {"{\"level\":\"warm\"}", "rejected level: expected a number"},
	    {"{\"level\":\"12x\"}", "rejected level: expected a number"},
	    {"{\"level\":\"inf\"}", "rejected level: expected a finite number"},
	    {"{\"level\":true}", "rejected level: expected a number"},
	    {"{\"level\":null}", "rejected level: expected a number"},
	    /* checked, though the plan sends nothing for them; fractions where not whole */
	    {"{\"on\":true,\"ratio\":0.25}", "[{\"t\":{\"on\":true}}]"},
	    {"{\"on\":true,\"ratio\":1.5}", "rejected ratio: 1.5 is out of range 0..1"},
	    {"{\"on\":true,\"hours\":12}", "[{\"t\":{\"on\":true}}]"},
	    {"{\"on\":true,\"hours\":13}", "rejected hours: 13 is out of range 1..12"},
	    /* booleans */
	    {"{\"on\":\"on\"}", "[{\"t\":{\"on\":true}}]"},
	    {"{\"on\":\"OFF\"}", "[{\"t\":{\"on\":false}}]"},
	    {"{\"on\":1}", "[{\"t\":{\"on\":true}}]"},
	    {"{\"on\":false}", "[{\"t\":{\"on\":false}}]"},
	    {"{\"on\":2}", "rejected on: expected ON, OFF, true or false"},
	    {"{\"on\":\"yes\"}", "rejected on: expected ON, OFF, true or false"},
	    /* options: exact labels */
	    {"{\"colour\":\"green\"}", "[{\"t\":{\"colour\":1}}]"},
	    {"{\"colour\":\"Green\"}", "rejected colour: expected one of: red, green"},
	    {"{\"colour\":0}", "rejected colour: expected one of: red, green"},
	    /* buttons */
	    {"{\"go\":\"PRESS\"}", "[{\"@delay_ms\":100},{\"t\":{\"go\":1}}]"},
	    {"{\"go\":\"press\"}", "rejected go: expected PRESS"},
	    /* text: 1..max characters, no control characters */
	    {"{\"label\":\"abcdefgh\"}", "[{\"t\":{\"label\":\"abcdefgh\"}}]"},
	    {"{\"label\":\"abcdefghi\"}", "rejected label: expected text of 1 to 8 characters"},
	    {"{\"label\":\"\"}", "rejected label: expected text of 1 to 8 characters"},
	    {"{\"label\":\"a\\tb\"}", "rejected label: control characters are not allowed"},
	    {"{\"label\":7}", "rejected label: expected text"},
	    /* a value the gateway holds, with nothing sent, is a command */
	    {"{\"hold\":5}", "[] local {\"held\":5}"},
	    /* the whole command or nothing: one bad field spoils every other */
	    {"{\"on\":true,\"level\":20,\"go\":\"PRESS\"}",
	     "[{\"t\":{\"on\":true}},{\"t\":{\"level\":20}},{\"@delay_ms\":100},"
	     "{\"t\":{\"go\":1}}]"},
	    {"{\"on\":true,\"level\":99,\"go\":\"PRESS\"}",
	     "rejected level: 99 is out of range 2..30"},
	    {"{\"on\":true,\"bogus\":1}", "rejected bogus: unknown field"},
	    {"{\"reading\":3}", "rejected reading: read-only field"},
	    {"{}", "rejected : the command names no field"},
	    /* checked values that plan no frame and hold nothing: refused, not sent empty */
	    {"{\"ratio\":0.5,\"hours\":3}", "rejected : nothing to send"},
	};

	(void)st;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = plan_with(&t_driver, &safety, cases[i].command);

		if (strcmp(got, cases[i].want) != 0)
			fail_msg("case %zu: %s\n  got:  %s\n  want: %s", i, cases[i].command, got,
				 cases[i].want);
		free(got);
	}
}

/* A [safety] cap below a row's lowest value refuses every value, and says which key. */
static void test_safety_cap_below_the_range(void **st)
{
	static const struct p2m_safety low = {.max_target_temp = 1, .max_drying_hours = 99};
	char *got;

	(void)st;
	got = plan_with(&t_driver, &low, "{\"level\":2}");
	assert_string_equal(got, "rejected level: [safety] max_target_temp (1) is below the "
				 "lowest value 2");
	free(got);
	assert_true(p2m_entity_max(&t_rows[0], &low) == 1);
	assert_true(p2m_entity_max(&t_rows[0], NULL) == 40);
	assert_true(p2m_entity_max(&t_rows[2], &low) == 99);
}

/* A text a row refuses may be a password: its value is never in the reason. */
static void test_secret_never_in_a_reason(void **st)
{
	static const struct p2m_safety safety = {.max_target_temp = 60, .max_drying_hours = 99};
	char *got;

	(void)st;
	got = plan_with(&t_driver, &safety, "{\"secret\":\"Pass\\u0001Word-XYZ\"}");
	assert_non_null(strstr(got, "rejected secret: "));
	assert_null(strstr(got, "Word-XYZ"));
	free(got);
	/* the same through a real family's password row */
	got = plan_with(&p2m_driver_panda_breath, &safety,
			"{\"wifi_password\":\"Pass\\u0001Word-XYZ\"}");
	assert_non_null(strstr(got, "rejected wifi_password: "));
	assert_null(strstr(got, "Word-XYZ"));
	free(got);
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
	const struct p2m_driver *drv = &p2m_driver_panda_breath;
	char err[128];

	(void)st;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cJSON *v = p2m_command_parse_field(drv, "f", cases[i].payload,
						   strlen(cases[i].payload), err, sizeof(err));
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
	assert_null(p2m_command_parse_field(drv, "f", "he\0at", 5, err, sizeof(err)));
	/* a text field keeps its payload as typed: no number, no lost leading zero */
	cJSON *code =
	    p2m_command_parse_field(drv, "printer_access_code", "00123456", 8, err, sizeof(err));
	assert_string_equal(cJSON_GetObjectItem(code, "printer_access_code")->valuestring,
			    "00123456");
	cJSON_Delete(code);
	/* so does any text row, whatever the family */
	code = p2m_command_parse_field(&t_driver, "label", "007", 3, err, sizeof(err));
	assert_string_equal(cJSON_GetObjectItem(code, "label")->valuestring, "007");
	cJSON_Delete(code);
	code = p2m_command_parse_field(&t_driver, "level", "007", 3, err, sizeof(err));
	assert_int_equal(cJSON_GetObjectItem(code, "level")->valuedouble, 7);
	cJSON_Delete(code);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_checks_and_plan),
	    cmocka_unit_test(test_safety_cap_below_the_range),
	    cmocka_unit_test(test_secret_never_in_a_reason),
	    cmocka_unit_test(test_parse_field),
	    cmocka_unit_test(test_parse_object),
	};
	p2m_log_set_level(P2M_LOG_ERR);
	return cmocka_run_group_tests_name("command", tests, NULL, NULL);
}
