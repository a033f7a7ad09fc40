/* Unit tests: the [safety] rules that watch reports (safety.c) over the Panda Breath's
 * heat status (what "heating", the chamber reading and a sensor fault mean for it). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "panda2mqtt/command.h"
#include "panda2mqtt/families.h"
#include "panda2mqtt/safety.h"

#include <stdio.h>
#include <string.h>

static const struct p2m_safety defaults = {
    .max_target_temp = 60,
    .max_chamber_temp = 65,
    .sensor_fault_cutoff = true,
    .heater_fault_cutoff = true,
    .max_drying_hours = 99,
};

static struct p2m_heat_status status_of(const char *settings)
{
	char text[512];
	struct p2m_heat_status h = {0};
	cJSON *dev;

	snprintf(text, sizeof(text), "{\"settings\":%s}", settings);
	dev = cJSON_Parse(text);
	assert_non_null(dev);
	p2m_driver_panda_breath.heat_status(dev, &h);
	cJSON_Delete(dev);
	return h;
}

static enum p2m_trip trip_for(const struct p2m_safety *s, const char *settings)
{
	struct p2m_heat_status h = status_of(settings);

	return p2m_safety_check(s, &h);
}

static enum p2m_trip hold_for(const struct p2m_safety *s, const char *settings)
{
	struct p2m_heat_status h = status_of(settings);

	return p2m_safety_hold(s, &h);
}

static void test_rules(void **st)
{
	static const struct {
		const char *settings;
		enum p2m_trip want;
	} cases[] = {
	    /* heating (work_on, either type) above the limit: off */
	    {"{\"work_on\":true,\"warehouse_temper\":65.5}", P2M_TRIP_CHAMBER},
	    {"{\"work_on\":1,\"warehouse_temper\":70}", P2M_TRIP_CHAMBER},
	    /* at the limit, or below: fine */
	    {"{\"work_on\":true,\"warehouse_temper\":65}", P2M_TRIP_NONE},
	    {"{\"work_on\":true,\"warehouse_temper\":40}", P2M_TRIP_NONE},
	    /* the calibrated reading of the base document when it is all there is */
	    {"{\"work_on\":true,\"cal_warehouse_temp\":66}", P2M_TRIP_CHAMBER},
	    /* the firmware's reading wins over it */
	    {"{\"work_on\":true,\"cal_warehouse_temp\":50,\"warehouse_temper\":66}",
	     P2M_TRIP_CHAMBER},
	    {"{\"work_on\":true,\"cal_warehouse_temp\":66,\"warehouse_temper\":50}", P2M_TRIP_NONE},
	    /* a drying run heats too */
	    {"{\"work_on\":false,\"isrunning\":1,\"warehouse_temper\":80}", P2M_TRIP_CHAMBER},
	    /* not heating: nothing to switch off */
	    {"{\"work_on\":false,\"isrunning\":0,\"warehouse_temper\":80}", P2M_TRIP_NONE},
	    {"{\"work_on\":false,\"ptc_sensor_status\":1}", P2M_TRIP_NONE},
	    {"{\"work_on\":false,\"ptc_heater_status\":1}", P2M_TRIP_NONE},
	    {"{\"warehouse_temper\":80}", P2M_TRIP_NONE},
	    /* sensor faults while heating, before the temperature rule */
	    {"{\"work_on\":true,\"ptc_sensor_status\":1,\"warehouse_temper\":30}", P2M_TRIP_SENSOR},
	    {"{\"work_on\":true,\"warehouse_sensor_status\":2,\"warehouse_temper\":99}",
	     P2M_TRIP_SENSOR},
	    {"{\"work_on\":true,\"warehouse_sensor_status\":0,\"ptc_sensor_status\":0}",
	     P2M_TRIP_NONE},
	    /* the heater's fault flag while heating or drying: any non-zero value */
	    {"{\"work_on\":true,\"ptc_heater_status\":1,\"warehouse_temper\":30}", P2M_TRIP_HEATER},
	    {"{\"isrunning\":1,\"ptc_heater_status\":3}", P2M_TRIP_HEATER},
	    {"{\"work_on\":true,\"ptc_heater_status\":0}", P2M_TRIP_NONE},
	    /* no reading at all while heating: no rule can say anything */
	    {"{\"work_on\":true}", P2M_TRIP_NONE},
	    {"{\"work_on\":true,\"warehouse_temper\":\"hot\"}", P2M_TRIP_NONE},
	};
	(void)st;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum p2m_trip got = trip_for(&defaults, cases[i].settings);
		if (got != cases[i].want)
			fail_msg("%s: got %s, want %s", cases[i].settings, p2m_trip_rule(got),
				 p2m_trip_rule(cases[i].want));
	}
}

static void test_settings_change_the_rules(void **st)
{
	struct p2m_safety s = defaults;

	(void)st;
	s.max_chamber_temp = 50;
	assert_int_equal(trip_for(&s, "{\"work_on\":true,\"warehouse_temper\":50.5}"),
			 P2M_TRIP_CHAMBER);
	s.sensor_fault_cutoff = false;
	assert_int_equal(trip_for(&s, "{\"work_on\":true,\"ptc_sensor_status\":1,"
				      "\"warehouse_temper\":30}"),
			 P2M_TRIP_NONE);
	/* with the fault rule off, the temperature rule still holds */
	assert_int_equal(trip_for(&s, "{\"work_on\":true,\"ptc_sensor_status\":1,"
				      "\"warehouse_temper\":51}"),
			 P2M_TRIP_CHAMBER);
	s.heater_fault_cutoff = false;
	assert_int_equal(trip_for(&s, "{\"work_on\":true,\"ptc_heater_status\":1}"), P2M_TRIP_NONE);
}

/* While a rule's condition holds, whether heating or not, commands that heat are refused
 * (device_safety.c): the chamber still too hot after the cut-off, a fault not gone. */
static void test_holds(void **st)
{
	(void)st;
	assert_int_equal(hold_for(&defaults, "{\"work_on\":false,\"warehouse_temper\":70}"),
			 P2M_TRIP_CHAMBER);
	assert_int_equal(hold_for(&defaults, "{\"work_on\":false,\"warehouse_temper\":60}"),
			 P2M_TRIP_NONE);
	assert_int_equal(hold_for(&defaults, "{\"work_on\":false,\"ptc_heater_status\":1}"),
			 P2M_TRIP_HEATER);
	assert_int_equal(hold_for(&defaults, "{\"work_on\":false,\"ptc_sensor_status\":2}"),
			 P2M_TRIP_SENSOR);
	assert_string_equal(p2m_trip_condition(P2M_TRIP_CHAMBER),
			    "the chamber is above max_chamber_temp");
}

static void test_rule_names(void **st)
{
	(void)st;
	assert_string_equal(p2m_trip_rule(P2M_TRIP_CHAMBER), "max_chamber_temp");
	assert_string_equal(p2m_trip_rule(P2M_TRIP_SENSOR), "sensor_fault");
	assert_string_equal(p2m_trip_rule(P2M_TRIP_HEATER), "heater_fault");
	assert_string_equal(p2m_trip_rule(P2M_TRIP_CONTROLLER_LOST), "controller_lost");
	assert_string_equal(p2m_trip_reason(P2M_TRIP_CHAMBER),
			    "chamber above max_chamber_temp while heating");
	assert_string_equal(p2m_trip_reason(P2M_TRIP_SENSOR),
			    "a temperature sensor reports a fault while heating");
}

/* The driver's off command planned against a device state: the frames it becomes. */
static void assert_off_frames(const char *state, const char *want)
{
	cJSON *dev = cJSON_Parse(state);
	cJSON *local = cJSON_CreateObject();
	struct p2m_view v = {.dev = dev, .local = local};
	struct p2m_cmd cmd = {
	    .driver = &p2m_driver_panda_breath, .dev = dev, .view = &v, .safety = &defaults};
	cJSON *off = cJSON_Parse(p2m_driver_panda_breath.off_command);
	char *frames;

	assert_non_null(dev);
	assert_non_null(off);
	assert_int_equal(p2m_command_plan(&cmd, off), 0);
	frames = cJSON_PrintUnformatted(cmd.frames);
	assert_string_equal(frames, want);
	cJSON_free(frames);
	p2m_command_clear(&cmd);
	cJSON_Delete(local);
	cJSON_Delete(off);
	cJSON_Delete(dev);
}

/* The off command is a valid command for the driver and switches off whatever heats. */
static void test_off_command_plans(void **st)
{
	(void)st;
	assert_off_frames("{\"settings\":{\"fw_version\":\"V1.0.3\",\"work_on\":true,"
			  "\"work_mode\":3,\"isrunning\":1}}",
			  "[{\"settings\":{\"isrunning\":0}},{\"settings\":{\"work_on\":false}}]");
	assert_off_frames("{\"settings\":{\"fw_version\":\"V1.0.3\",\"work_on\":true,"
			  "\"work_mode\":2,\"isrunning\":0}}",
			  "[{\"settings\":{\"work_on\":false}}]");
}

/* A drying run with no work_on reported is still stopped (found by fuzzing: the mode
 * derivation needed work_on before it looked at isrunning). */
static void test_off_stops_drying_without_work_on(void **st)
{
	(void)st;
	assert_off_frames(
	    "{\"settings\":{\"isrunning\":1,\"remaining_seconds\":1800,\"work_mode\":3}}",
	    "[{\"settings\":{\"isrunning\":0}},{\"settings\":{\"work_on\":false}}]");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rules),
	    cmocka_unit_test(test_settings_change_the_rules),
	    cmocka_unit_test(test_holds),
	    cmocka_unit_test(test_rule_names),
	    cmocka_unit_test(test_off_command_plans),
	    cmocka_unit_test(test_off_stops_drying_without_work_on),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
