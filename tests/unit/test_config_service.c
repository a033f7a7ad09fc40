/* test_config_service.c - unit tests for the configuration keys and comparisons a
 * reloadable service needs (config.c): [log] level, [discovery] forget_after, the bridge
 * device's id and the [device] ids it forbids, and p2m_config_section_differs /
 * p2m_config_device_differs, which decide what a reload applies. */
#include "panda2mqtt/config.h"
#include "panda2mqtt/log.h"

#include <glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void load_ok(struct p2m_config *cfg, const char *text)
{
	char err[512] = "";

	if (p2m_config_load_string(cfg, text, "t.ini", err, sizeof(err)) != 0)
		fail_msg("unexpected error: %s\n--- input ---\n%s", err, text);
}

static void load_err(const char *text, const char *want_prefix)
{
	struct p2m_config cfg;
	char err[512] = "";

	assert_int_equal(p2m_config_load_string(&cfg, text, "t.ini", err, sizeof(err)), -1);
	if (strncmp(err, want_prefix, strlen(want_prefix)) != 0)
		fail_msg("'%s' does not start with '%s'", err, want_prefix);
}

static void test_log_level(void **state)
{
	static const struct {
		const char *value;
		enum p2m_log_level level;
	} ok[] = {{"error", P2M_LOG_ERR},
		  {"warning", P2M_LOG_WARN},
		  {"info", P2M_LOG_INFO},
		  {"debug", P2M_LOG_DEBUG}};
	struct p2m_config cfg;
	char text[64];

	(void)state;
	load_ok(&cfg, "");
	assert_int_equal(cfg.log.level, P2M_LOG_INFO); /* the default */
	p2m_config_free(&cfg);
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		snprintf(text, sizeof(text), "[log]\nlevel = %s\n", ok[i].value);
		load_ok(&cfg, text);
		assert_int_equal(cfg.log.level, ok[i].level);
		p2m_config_free(&cfg);
	}
	load_err("[log]\nlevel = verbose\n",
		 "t.ini:2: [log] level: 'verbose' is not a log level; use error, warning, info or "
		 "debug");
	load_err("[log]\nlevel = INFO\n", "t.ini:2: [log] level: 'INFO' is not a log level");
	load_err("[log]\nlevel =\n", "t.ini:2: [log] level: '' is not a log level");
	load_err("[log]\nformat = json\n",
		 "t.ini:2: [log] format: unknown key; valid keys are level");
}

static void test_forget_after(void **state)
{
	struct p2m_config cfg;

	(void)state;
	load_ok(&cfg, "");
	assert_true(cfg.discovery.forget_after == 0); /* never, by default */
	p2m_config_free(&cfg);
	load_ok(&cfg, "[discovery]\nforget_after = 30\n");
	assert_true(cfg.discovery.forget_after == 30);
	p2m_config_free(&cfg);
	/* a fraction of a day: 0.0001 days is 8.64 s (what the integration test waits) */
	load_ok(&cfg, "[discovery]\nforget_after = 0.0001\n");
	assert_true(cfg.discovery.forget_after > 0.00009 && cfg.discovery.forget_after < 0.00011);
	p2m_config_free(&cfg);
	load_err("[discovery]\nforget_after = -1\n",
		 "t.ini:2: [discovery] forget_after: -1 is out of range 0..36500");
	load_err("[discovery]\nforget_after = soon\n",
		 "t.ini:2: [discovery] forget_after: 'soon' is not a number");
	load_err("[discovery]\nforget_after = nan\n", "t.ini:2: [discovery] forget_after:");
}

static void test_bridge_id(void **state)
{
	struct p2m_config cfg;
	char *id;

	(void)state;
	load_ok(&cfg, "");
	id = p2m_config_bridge_id(&cfg);
	assert_string_equal(id, "panda2mqtt_bridge");
	g_free(id);
	p2m_config_free(&cfg);
	/* a base topic of several levels: one discovery node id, still one per base */
	load_ok(&cfg, "[mqtt]\nbase_topic = home/Pan da:2\n");
	id = p2m_config_bridge_id(&cfg);
	assert_string_equal(id, "home_Pan_da_2_bridge");
	g_free(id);
	p2m_config_free(&cfg);
	/* a device may not take the bridge's id (its topics would be the bridge's) */
	load_err("[device panda2mqtt_bridge]\nhost = 10.0.0.2\n",
		 "t.ini:1: [device panda2mqtt_bridge]: 'panda2mqtt_bridge' is the gateway's own "
		 "Home Assistant device id");
	load_err("[mqtt]\nbase_topic = p2\n[device p2_bridge]\nhost = 10.0.0.2\n",
		 "t.ini:3: [device p2_bridge]:");
	load_ok(&cfg, "[mqtt]\nbase_topic = p2\n[device panda2mqtt_bridge]\nhost = 10.0.0.2\n");
	p2m_config_free(&cfg);
}

static const char base_text[] = "[mqtt]\nhost = 10.0.0.1\npassword = pw-one-1\n"
				"[discovery]\nmdns = false\n"
				"[safety]\nmax_target_temp = 50\n"
				"[dialin]\nport = 8765\nallow = aa, bb\n"
				"[log]\nlevel = info\n"
				"[device a]\nhost = 10.0.0.2\nname = A\n"
				"[device b]\nhost = 10.0.0.3\n";

/* base_text with one line replaced (or, from NULL, one line added at the end). */
static void load_changed(struct p2m_config *cfg, const char *from, const char *to)
{
	GString *s = g_string_new(base_text);

	if (from) {
		char *at = strstr(s->str, from);

		assert_non_null(at);
		g_string_erase(s, at - s->str, (gssize)strlen(from));
		g_string_insert(s, at - s->str, to);
	} else {
		g_string_append(s, to);
	}
	load_ok(cfg, s->str);
	g_string_free(s, TRUE);
}

static void test_section_differs(void **state)
{
	static const struct {
		const char *from, *to, *section;
	} cases[] = {
	    {"host = 10.0.0.1", "host = 10.0.0.9", "mqtt"},
	    {"password = pw-one-1", "password = pw-two-2", "mqtt"},
	    {"[mqtt]\n", "[mqtt]\nkeepalive = 31\n", "mqtt"},
	    {"mdns = false", "mdns = true", "discovery"},
	    {"[discovery]\n", "[discovery]\nforget_after = 2\n", "discovery"},
	    {"max_target_temp = 50", "max_target_temp = 45", "safety"},
	    {"port = 8765", "port = 8766", "dialin"},
	    {"allow = aa, bb", "allow = aa", "dialin"},
	    {"allow = aa, bb", "allow = aa, cc", "dialin"},
	    {"level = info", "level = debug", "log"},
	    {NULL, "[printer]\nbed_temperature_topic = x/bed\n", "printer"},
	    {NULL, "[printer]\nbed_temperature_topic = x/bed\n[moonraker]\nport = 7125\n",
	     "moonraker"},
	};
	static const char *const sections[] = {"mqtt", "discovery", "safety",	 "dialin",
					       "log",  "printer",   "moonraker", "bambu_virtual"};
	struct p2m_config a, b;

	(void)state;
	load_ok(&a, base_text);
	/* the same text: nothing differs; the lines may move (comments, order) */
	load_changed(&b, "[discovery]\n", "; a comment moves the lines below\n[discovery]\n");
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		assert_false(p2m_config_section_differs(&a, &b, sections[i]));
	assert_true(p2m_config_section_differs(&a, &b, "nonsense"));
	p2m_config_free(&b);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		load_changed(&b, cases[i].from, cases[i].to);
		for (size_t k = 0; k < sizeof(sections) / sizeof(sections[0]); k++) {
			bool want = strcmp(sections[k], cases[i].section) == 0;

			/* [moonraker] needs [printer]: both differ in that case */
			if (strcmp(cases[i].section, "moonraker") == 0 &&
			    strcmp(sections[k], "printer") == 0)
				want = true;
			if (p2m_config_section_differs(&a, &b, sections[k]) != want)
				fail_msg("case %zu (%s -> %s): [%s] %s", i,
					 cases[i].from ? cases[i].from : "(added)", cases[i].to,
					 sections[k], want ? "should differ" : "should not differ");
		}
		p2m_config_free(&b);
	}
	p2m_config_free(&a);
}

/* A password from password_file or the environment compares as the password. */
static void test_password_source_is_not_a_change(void **state)
{
	struct p2m_config a, b;

	(void)state;
	setenv(P2M_ENV_MQTT_PASSWORD, "from-env-7", 1);
	load_ok(&a, "[mqtt]\npassword = written-1\n");
	load_ok(&b, "[mqtt]\npassword = written-2\n");
	assert_false(p2m_config_section_differs(&a, &b, "mqtt")); /* both from the env */
	p2m_config_free(&a);
	p2m_config_free(&b);
	unsetenv(P2M_ENV_MQTT_PASSWORD);
}

static void test_device_differs(void **state)
{
	struct p2m_config a, b;

	(void)state;
	load_ok(&a, base_text);
	load_changed(&b, "[device a]\n", "; a section moved down a line\n[device a]\n");
	assert_false(p2m_config_device_differs(&a.devices[0], &b.devices[0]));
	assert_false(p2m_config_device_differs(&a.devices[1], &b.devices[1]));
	assert_true(p2m_config_device_differs(&a.devices[0], &b.devices[1])); /* another id */
	p2m_config_free(&b);
	load_changed(&b, "name = A", "name = A2");
	assert_true(p2m_config_device_differs(&a.devices[0], &b.devices[0]));
	assert_false(p2m_config_device_differs(&a.devices[1], &b.devices[1]));
	p2m_config_free(&b);
	load_changed(&b, "host = 10.0.0.3\n", "host = 10.0.0.3\nrefresh_interval = 0\n");
	assert_true(p2m_config_device_differs(&a.devices[1], &b.devices[1]));
	p2m_config_free(&b);
	load_changed(&b, "host = 10.0.0.3\n", "host = 10.0.0.3\ntype = panda_breath\n");
	assert_true(p2m_config_device_differs(&a.devices[1], &b.devices[1]));
	p2m_config_free(&b);
	p2m_config_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_log_level),
	    cmocka_unit_test(test_forget_after),
	    cmocka_unit_test(test_bridge_id),
	    cmocka_unit_test(test_section_differs),
	    cmocka_unit_test(test_password_source_is_not_a_change),
	    cmocka_unit_test(test_device_differs),
	};

	unsetenv(P2M_ENV_MQTT_PASSWORD);
	unsetenv(P2M_ENV_DIALIN_TOKEN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
