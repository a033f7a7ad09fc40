/* test_printer_source.c - unit tests for the printer data path: the [printer], [moonraker]
 * and [bambu_virtual] configuration (config.c), value extraction from MQTT payloads, the
 * Bambu <-> Klipper state mapping, merging of incremental Bambu reports
 * (printer_source.c), and the printer's own Home Assistant device (its table,
 * src/drivers/printer.c). The virtual Moonraker's answers: test_moonraker_rpc.c. */
#include "panda2mqtt/config.h"
#include "panda2mqtt/entity.h"
#include "panda2mqtt/ha.h"
#include "panda2mqtt/log.h"
#include "panda2mqtt/printer_source.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define MQTT "[mqtt]\n[discovery]\nmdns = false\n"

static void assert_contains(const char *s, const char *part)
{
	if (!strstr(s, part))
		fail_msg("'%s' does not contain '%s'", s, part);
}

static void load_ok(struct p2m_config *cfg, const char *text)
{
	char err[512] = "";

	if (p2m_config_load_string(cfg, text, "t.ini", err, sizeof(err)) != 0)
		fail_msg("unexpected error: %s", err);
}

static void load_err(const char *text, const char *want)
{
	struct p2m_config cfg;
	char err[512] = "";

	assert_int_equal(p2m_config_load_string(&cfg, text, "t.ini", err, sizeof(err)), -1);
	assert_contains(err, want);
}

/* ---- configuration ------------------------------------------------------------------ */

static void test_config_defaults_and_full(void **state)
{
	struct p2m_config c;

	(void)state;
	load_ok(&c, MQTT);
	assert_false(c.printer.enabled);
	assert_int_equal(c.moonraker.port, 0);
	assert_null(c.bambu_virtual.topic);
	p2m_config_free(&c);

	load_ok(&c, MQTT "[printer]\nbambu_report_topic = device/01S00A/report\n"
			 "bed_temperature_topic = ha/bed/state\nbed_temperature_path = a.b\n"
			 "print_state_topic = ha/state\n"
			 "[moonraker]\nport = 7125\n"
			 "[bambu_virtual]\nserial = 01P00VIRT\n");
	assert_true(c.printer.enabled);
	assert_string_equal(c.printer.id, "printer");
	assert_string_equal(c.printer.name, "Printer");
	assert_true(c.printer.ha_device);
	assert_string_equal(c.printer.src[P2M_SRC_BED].path, "a.b");
	assert_null(c.printer.src[P2M_SRC_STATE].path);
	assert_int_equal(c.moonraker.port, 7125);
	assert_string_equal(c.moonraker.listen, "0.0.0.0");
	assert_string_equal(c.bambu_virtual.topic, "device/01P00VIRT/report");
	assert_int_equal(c.bambu_virtual.interval, 2);
	assert_int_equal(c.printer.stale_timeout, 0);
	p2m_config_free(&c);
}

static void test_config_errors(void **state)
{
	(void)state;
	load_err(MQTT "[printer]\nname = x\n",
		 "t.ini:4: [printer]: needs bambu_report_topic or bed_temperature_topic");
	load_err(MQTT "[printer]\nbed_temperature_topic = a\nbed_target_path = x\n",
		 "t.ini:6: [printer] bed_target_path: needs bed_target_topic");
	load_err(MQTT "[printer]\nbed_temperature_topic = a\nbed_temperature_path = a..b\n",
		 "t.ini:6: [printer] bed_temperature_path: 'a..b' must be member names");
	load_err(MQTT "[printer]\nbed_temperature_topic = a/#\n",
		 "t.ini:5: [printer] bed_temperature_topic: 'a/#' must not contain");
	load_err(MQTT "[printer]\nbed_temperature_topic = a\nid = Bad Id\n",
		 "t.ini:6: [printer] id: 'Bad Id' is not valid");
	load_err(MQTT "[device printer]\nhost = 1.2.3.4\n[printer]\nbed_temperature_topic = a\n",
		 "[printer] id: 'printer' is also a [device] id");
	load_err(MQTT "[moonraker]\nport = 7125\n",
		 "t.ini:5: [moonraker] port: needs a [printer] section");
	load_err(MQTT "[moonraker]\nport = 70000\n", "[moonraker] port: 70000 is out of range");
	load_err(MQTT "[printer]\nbed_temperature_topic = a\n[moonraker]\nport = 1\n"
		      "listen = gateway.lan\n",
		 "t.ini:8: [moonraker] listen: 'gateway.lan' is not an IPv4 or IPv6 address");
	load_err(MQTT "[printer]\nbed_temperature_topic = a\n[bambu_virtual]\ninterval = 2\n",
		 "t.ini:6: [bambu_virtual]: missing required key 'serial'");
	load_err(MQTT "[printer]\nbed_temperature_topic = a\n[bambu_virtual]\nserial = a/b\n",
		 "[bambu_virtual] serial: 'a/b' must be 1..32 letters and digits");
	load_err(MQTT "[bambu_virtual]\nserial = AB\n", "needs a [printer] section");
	load_err(MQTT "[printer]\nbambu_report_topic = device/AB/report\n"
		      "[bambu_virtual]\nserial = AB\n",
		 "the gateway would read its own reports");
	load_err(MQTT "[printer]\nbed_temperature_topic = a\nstale_timeout = 5\n",
		 "t.ini:6: [printer] stale_timeout: 5 is out of range 0 or 10..86400");
	load_err(MQTT "[printer]\nbed_temperature_topic = a\nfoo = 1\n",
		 "[printer] foo: unknown key");
}

/* ---- extraction and states ---------------------------------------------------------- */

static cJSON *extract(const char *payload, const char *path, char *err)
{
	return p2m_printer_extract(payload, strlen(payload), path, err, 160);
}

static void test_extract(void **state)
{
	char err[160];
	cJSON *v;

	(void)state;
	v = extract(" 61.5\n", NULL, err);
	assert_true(cJSON_IsNumber(v));
	assert_true(v->valuedouble == 61.5);
	cJSON_Delete(v);
	v = extract("printing", NULL, err);
	assert_string_equal(v->valuestring, "printing");
	cJSON_Delete(v);
	v = extract("{\"print\":{\"bed_temper\":60}}", "print.bed_temper", err);
	assert_true(v->valuedouble == 60);
	cJSON_Delete(v);
	v = extract("{\"a\":{\"b\":\"42.5\"}}", "a.b", err); /* numbers sent as strings */
	assert_true(cJSON_IsNumber(v) && v->valuedouble == 42.5);
	cJSON_Delete(v);
	assert_null(extract("", NULL, err));
	assert_contains(err, "empty");
	assert_null(extract("not json", "a", err));
	assert_contains(err, "not JSON");
	assert_null(extract("{\"a\":1}", "a.b", err));
	assert_contains(err, "no member at a.b");
	assert_null(extract("{\"a\":[1]}", "a", err));
	assert_contains(err, "neither a number nor a string");
	assert_null(extract("[[[[[[[[[[[[1]]]]]]]]]]]]", "a", err));
	assert_contains(err, "nested deeper");
	assert_null(p2m_printer_extract("1\0002", 3, NULL, err, sizeof(err)));
	v = extract("1e999", NULL, err); /* not a finite number: kept as text */
	assert_true(cJSON_IsString(v));
	cJSON_Delete(v);
}

static void test_states(void **state)
{
	static const struct {
		const char *in, *klipper, *bambu;
	} cases[] = {
	    {"IDLE", "standby", "IDLE"},	 {"PREPARE", "printing", "RUNNING"},
	    {"RUNNING", "printing", "RUNNING"},	 {"PAUSE", "paused", "PAUSE"},
	    {"FINISH", "complete", "FINISH"},	 {"FAILED", "error", "FAILED"},
	    {"standby", "standby", "IDLE"},	 {"printing", "printing", "RUNNING"},
	    {"paused", "paused", "PAUSE"},	 {"complete", "complete", "FINISH"},
	    {"error", "error", "FAILED"},	 {"cancelled", "cancelled", "FAILED"},
	    {"Printing", "printing", "RUNNING"}, {"nonsense", "standby", "IDLE"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum p2m_print_state s = p2m_print_state_parse(cases[i].in);

		assert_string_equal(p2m_print_state_klipper(s), cases[i].klipper);
		assert_string_equal(p2m_print_state_bambu(s), cases[i].bambu);
	}
	assert_int_equal(p2m_print_state_parse("nonsense"), P2M_PRINT_UNKNOWN);
	assert_int_equal(p2m_print_state_parse(NULL), P2M_PRINT_UNKNOWN);
}

/* ---- the source --------------------------------------------------------------------- */

static bool feed(struct p2m_printer_source *s, const char *topic, const char *payload)
{
	return p2m_printer_source_feed(s, topic, payload, strlen(payload));
}

static void test_source_plain(void **state)
{
	struct p2m_config c;
	struct p2m_printer_source *s;
	struct p2m_printer_status st;

	(void)state;
	load_ok(&c, MQTT "[printer]\nbed_temperature_topic = bed\nprint_state_topic = st\n"
			 "nozzle_temperature_topic = n\nnozzle_temperature_path = e.t\n");
	s = p2m_printer_source_new(&c.printer);
	assert_false(p2m_printer_source_known(s));
	assert_true(p2m_printer_source_wants(s, "bed"));
	assert_false(p2m_printer_source_wants(s, "other"));
	assert_true(feed(s, "bed", "55.5"));
	assert_false(feed(s, "bed", "55.5")); /* no change */
	assert_true(feed(s, "st", "printing"));
	assert_true(feed(s, "n", "{\"e\":{\"t\":210}}"));
	assert_false(feed(s, "bed", "warm"));	/* refused, logged */
	assert_false(feed(s, "bed", "5000"));	/* not plausible */
	assert_false(feed(s, "st", "dancing")); /* not a state */
	p2m_printer_source_status(s, &st);
	assert_true(st.has_bed && st.bed == 55.5);
	assert_int_equal(st.state, P2M_PRINT_PRINTING);
	assert_true(st.has_nozzle && st.nozzle == 210);
	assert_false(st.has_bed_target);
	assert_true(feed(s, "bed", "unavailable")); /* statestream: the sensor is gone */
	p2m_printer_source_status(s, &st);
	assert_false(st.has_bed);
	assert_true(p2m_printer_source_forget(s)); /* stale_timeout */
	assert_false(p2m_printer_source_known(s));
	assert_false(p2m_printer_source_forget(s));
	p2m_printer_source_status(s, &st);
	assert_int_equal(st.state, P2M_PRINT_UNKNOWN);
	p2m_printer_source_free(s);
	p2m_config_free(&c);
}

static void test_source_bambu_merge(void **state)
{
	struct p2m_config c;
	struct p2m_printer_source *s;
	struct p2m_printer_status st;
	const cJSON *print;

	(void)state;
	load_ok(&c, MQTT "[printer]\nbambu_report_topic = device/SN/report\n");
	s = p2m_printer_source_new(&c.printer);
	assert_true(feed(s, "device/SN/report",
			 "{\"print\":{\"bed_temper\":60.5,\"bed_target_temper\":60,"
			 "\"gcode_state\":\"RUNNING\",\"mc_percent\":50,\"ams\":{\"x\":1},"
			 "\"command\":\"push_status\"}}"));
	assert_true(feed(s, "device/SN/report", "{\"print\":{\"bed_temper\":61}}"));
	assert_false(feed(s, "device/SN/report", "{\"info\":{\"command\":\"get_version\"}}"));
	assert_false(feed(s, "device/SN/report", "{\"print\":{\"bed_temper\":\"hot\"}}"));
	assert_false(feed(s, "device/SN/report", "garbage"));
	assert_false(feed(s, "device/SN/report", "{\"print\":5}"));
	p2m_printer_source_status(s, &st);
	assert_true(st.bed == 61 && st.bed_target == 60);
	assert_int_equal(st.state, P2M_PRINT_PRINTING);
	assert_true(st.progress == 0.5);
	print = cJSON_GetObjectItem(p2m_printer_source_report(s), "print");
	assert_null(cJSON_GetObjectItem(print, "ams")); /* only what the table reads */
	assert_null(cJSON_GetObjectItem(print, "command"));
	/* a bed at 6e23 °C (found by fuzz_printer) is no reading: the device's Auto mode
	 * must not heat on it, and the virtual Moonraker reports no bed */
	assert_true(feed(s, "device/SN/report", "{\"print\":{\"bed_temper\":6.11e23}}"));
	p2m_printer_source_status(s, &st);
	assert_false(st.has_bed);
	assert_true(st.has_bed_target && st.bed_target == 60);
	assert_true(feed(s, "device/SN/report", "{\"print\":{\"bed_temper\":55}}"));
	p2m_printer_source_status(s, &st);
	assert_true(st.has_bed && st.bed == 55);
	assert_true(feed(s, "device/SN/report", "{\"print\":{\"bed_temper\":-273}}"));
	p2m_printer_source_status(s, &st);
	assert_false(st.has_bed);
	p2m_printer_source_free(s);
	p2m_config_free(&c);
}

static void test_printer_discovery(void **state)
{
	struct p2m_safety safety = {.max_target_temp = 60};
	cJSON *dev = cJSON_Parse("{\"print\":{\"bed_temper\":20}}");
	struct p2m_view v = {.dev = dev};
	struct p2m_ha_device hd = {
	    .id = "printer", .name = "P", .base_topic = "b", .safety = &safety, .view = &v};
	cJSON *d = p2m_ha_discovery(&p2m_printer_driver, &hd);
	cJSON *s = p2m_entity_state(&p2m_printer_driver, &v);
	const cJSON *comps = cJSON_GetObjectItem(d, "components");

	(void)state;
	assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "device"), "configuration_url"));
	assert_non_null(cJSON_GetObjectItem(comps, "bed_temperature"));
	assert_non_null(cJSON_GetObjectItem(comps, "print_state"));
	assert_true(cJSON_GetObjectItem(s, "bed_temperature")->valuedouble == 20);
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(s, "print_state")));
	cJSON_Delete(s);
	cJSON_Delete(d);
	cJSON_Delete(dev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_defaults_and_full),
	    cmocka_unit_test(test_config_errors),
	    cmocka_unit_test(test_extract),
	    cmocka_unit_test(test_states),
	    cmocka_unit_test(test_source_plain),
	    cmocka_unit_test(test_source_bambu_merge),
	    cmocka_unit_test(test_printer_discovery),
	};

	p2m_log_set_level(P2M_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
