/* test_ha.c - discovery built from the Panda Breath table: topics, device and origin
 * blocks, availability, one component per entity row, safety caps, no secrets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "panda2mqtt/families.h"
#include "panda2mqtt/ha.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct p2m_safety safety = {.max_target_temp = 50, .max_drying_hours = 99};
static const struct p2m_view view = {.dev = NULL};
static const struct p2m_ha_device dev = {
    .id = "garage",
    .name = "Garage heater",
    .mac = "3c:84:27:9a:1b:2c",
    .base_topic = "p2m",
    .fw_version = "V1.0.3",
    .host = "192.0.2.7",
    .port = 80,
    .safety = &safety,
    .view = &view,
};

static const char *str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void test_topic(void **st)
{
	char *t = p2m_ha_discovery_topic("homeassistant", "garage");

	(void)st;
	assert_string_equal(t, "homeassistant/device/garage/config");
	free(t);
}

static void test_device_origin_availability(void **st)
{
	cJSON *d = p2m_ha_discovery(&p2m_driver_panda_breath, &dev);
	const cJSON *device = cJSON_GetObjectItem(d, "device");
	const cJSON *avail = cJSON_GetObjectItem(d, "availability");

	(void)st;
	assert_string_equal(str(device, "name"), "Garage heater");
	assert_string_equal(str(device, "manufacturer"), "BIQU");
	assert_string_equal(str(device, "model"), "Panda Breath");
	assert_string_equal(str(device, "sw_version"), "V1.0.3");
	assert_string_equal(str(device, "configuration_url"), "http://192.0.2.7:80/");
	assert_string_equal(
	    cJSON_GetArrayItem(cJSON_GetObjectItem(device, "identifiers"), 0)->valuestring,
	    "panda2mqtt_garage");
	/* the MAC ties the device to Home Assistant's other integrations */
	char *conns = cJSON_PrintUnformatted(cJSON_GetObjectItem(device, "connections"));
	assert_string_equal(conns, "[[\"mac\",\"3c:84:27:9a:1b:2c\"]]");
	cJSON_free(conns);
	assert_string_equal(str(cJSON_GetObjectItem(d, "origin"), "name"), "panda2mqtt");
	assert_int_equal(cJSON_GetArraySize(avail), 2);
	assert_string_equal(str(cJSON_GetArrayItem(avail, 0), "topic"), "p2m/bridge/state");
	assert_string_equal(str(cJSON_GetArrayItem(avail, 1), "topic"), "p2m/garage/availability");
	assert_string_equal(str(d, "availability_mode"), "all");
	cJSON_Delete(d);
}

static void test_components_from_rows(void **st)
{
	const struct p2m_driver *drv = &p2m_driver_panda_breath;
	cJSON *d = p2m_ha_discovery(drv, &dev);
	const cJSON *cmps = cJSON_GetObjectItem(d, "components");
	const cJSON *c;
	size_t rows = 0;

	(void)st;
	for (size_t i = 0; i < drv->n_entities; i++) {
		c = cJSON_GetObjectItem(cmps, drv->entities[i].key);
		/* an optional row the device never fed is left out (the heater temperature) */
		if (drv->entities[i].platform == P2M_NONE || drv->entities[i].optional) {
			assert_null(c);
			continue;
		}
		rows++;
		assert_non_null(c);
		assert_non_null(str(c, "platform"));
	}
	assert_int_equal(cJSON_GetArraySize(cmps), rows);
	assert_null(cJSON_GetObjectItem(cmps, "heater_temperature"));
	/* unique ids are unique */
	cJSON_ArrayForEach(c, cmps)
	{
		const cJSON *o;
		cJSON_ArrayForEach(o, cmps)
		{
			if (o != c)
				assert_string_not_equal(str(c, "unique_id"), str(o, "unique_id"));
		}
	}
	cJSON_Delete(d);
}

static void test_climate(void **st)
{
	cJSON *d = p2m_ha_discovery(&p2m_driver_panda_breath, &dev);
	const cJSON *c = cJSON_GetObjectItem(cJSON_GetObjectItem(d, "components"), "climate");
	char *modes = cJSON_PrintUnformatted(cJSON_GetObjectItem(c, "modes"));

	(void)st;
	assert_string_equal(str(c, "platform"), "climate");
	assert_string_equal(modes, "[\"off\",\"heat\",\"auto\",\"dry\"]");
	assert_string_equal(str(c, "mode_command_topic"), "p2m/garage/set/mode");
	assert_string_equal(str(c, "temperature_command_topic"),
			    "p2m/garage/set/target_temperature");
	assert_string_equal(str(c, "current_temperature_template"),
			    "{{ value_json.chamber_temperature }}");
	/* the [safety] cap lowers the device's 60 */
	assert_int_equal(cJSON_GetObjectItem(c, "max_temp")->valuedouble, 50);
	assert_int_equal(cJSON_GetObjectItem(c, "min_temp")->valuedouble, 0);
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(c, "name")));
	cJSON_free(modes);
	cJSON_Delete(d);
}

static void test_switch_select_sensor(void **st)
{
	cJSON *d = p2m_ha_discovery(&p2m_driver_panda_breath, &dev);
	const cJSON *cmps = cJSON_GetObjectItem(d, "components");
	const cJSON *sw = cJSON_GetObjectItem(cmps, "power");
	const cJSON *sel = cJSON_GetObjectItem(cmps, "work_mode");
	const cJSON *fault = cJSON_GetObjectItem(cmps, "heater_fault");
	const cJSON *pw = cJSON_GetObjectItem(cmps, "wifi_password");
	const cJSON *t = cJSON_GetObjectItem(cmps, "chamber_temperature");
	const cJSON *printer = cJSON_GetObjectItem(cmps, "printer");
	const cJSON *hours = cJSON_GetObjectItem(cmps, "drying_hours");

	(void)st;
	assert_string_equal(str(sw, "command_topic"), "p2m/garage/set/power");
	assert_string_equal(str(sw, "payload_on"), "ON");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(sel, "options")), 3);
	assert_string_equal(str(t, "device_class"), "temperature");
	assert_string_equal(str(t, "unit_of_measurement"), "°C");
	assert_string_equal(str(t, "state_topic"), "p2m/garage");
	/* configuration and diagnostic entities have a topic of their own (entity.h) */
	assert_string_equal(str(cJSON_GetObjectItem(cmps, "hostname"), "state_topic"),
			    "p2m/garage/details");
	assert_string_equal(
	    str(cJSON_GetObjectItem(cmps, "chamber_sensor_fault"), "json_attributes_topic"),
	    "p2m/garage/details");
	/* the heater's fault flag is a problem, not "heating" */
	assert_string_equal(str(fault, "platform"), "binary_sensor");
	assert_string_equal(str(fault, "device_class"), "problem");
	assert_null(cJSON_GetObjectItem(cmps, "heater_active"));
	assert_null(cJSON_GetObjectItem(cmps, "chamber_temperature_raw"));
	/* a password has a state that is never the secret, or HA keeps what was typed */
	assert_string_equal(str(pw, "mode"), "password");
	assert_string_equal(str(pw, "state_topic"), "p2m/garage/details");
	assert_int_equal(cJSON_GetObjectItem(pw, "min")->valueint, 0);
	/* nothing to choose yet: a placeholder HA does not read as its own unknown */
	assert_string_equal(
	    cJSON_GetArrayItem(cJSON_GetObjectItem(printer, "options"), 0)->valuestring,
	    P2M_HA_NO_OPTIONS);
	/* the device's timer takes 1..99 h */
	assert_int_equal(cJSON_GetObjectItem(hours, "max")->valueint, 99);
	cJSON_Delete(d);
}

/* A device found on the network or dialled in gets a "Forget" button that asks the
 * bridge to withdraw it; it stays pressable while the device is offline. */
static void test_forget_button(void **st)
{
	struct p2m_ha_device found = dev;
	cJSON *d = p2m_ha_discovery(&p2m_driver_panda_breath, &dev), *c, *avail;
	char *a, *b;

	(void)st;
	assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "components"), "forget"));
	cJSON_Delete(d);
	found.forget = true;
	d = p2m_ha_discovery(&p2m_driver_panda_breath, &found);
	c = cJSON_GetObjectItem(cJSON_GetObjectItem(d, "components"), "forget");
	assert_non_null(c);
	assert_string_equal(str(c, "platform"), "button");
	assert_string_equal(str(c, "unique_id"), "panda2mqtt_garage_forget");
	assert_string_equal(str(c, "entity_category"), "config");
	assert_string_equal(str(c, "command_topic"), "p2m/bridge/request/device/remove");
	assert_string_equal(str(c, "payload_press"), "{\"id\":\"garage\"}");
	avail = cJSON_GetObjectItem(c, "availability");
	assert_int_equal(cJSON_GetArraySize(avail), 1);
	assert_string_equal(str(cJSON_GetArrayItem(avail, 0), "topic"), "p2m/bridge/state");
	cJSON_Delete(d);
	/* the button is part of what decides whether discovery is sent again */
	a = p2m_ha_discovery_inputs(&p2m_driver_panda_breath, &dev);
	b = p2m_ha_discovery_inputs(&p2m_driver_panda_breath, &found);
	assert_string_not_equal(a, b);
	free(a);
	free(b);
}

static void test_bridge_device(void **st)
{
	const struct p2m_ha_bridge br = {.id = "p2m_bridge", .base_topic = "p2m", .browse = true};
	cJSON *d = p2m_ha_bridge_discovery(&br), *comps = cJSON_GetObjectItem(d, "components");
	const cJSON *c;
	static const char *const keys[] = {"connection_state", "version",   "devices_online",
					   "devices_total",    "log_level", "reload",
					   "mdns_browse"};

	(void)st;
	assert_string_equal(
	    cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "device"), "identifiers"),
			       0)
		->valuestring,
	    "panda2mqtt_p2m_bridge");
	assert_null(cJSON_GetObjectItem(d, "availability")); /* per component */
	assert_int_equal(cJSON_GetArraySize(comps), 7);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char want[64];

		c = cJSON_GetObjectItem(comps, keys[i]);
		assert_non_null(c);
		snprintf(want, sizeof(want), "panda2mqtt_p2m_bridge_%s", keys[i]);
		assert_string_equal(str(c, "unique_id"), want);
		/* offline is what the connection state shows; the rest is unavailable then */
		assert_int_equal(cJSON_GetObjectItem(c, "availability") != NULL,
				 strcmp(keys[i], "connection_state") != 0);
	}
	c = cJSON_GetObjectItem(comps, "connection_state");
	assert_string_equal(str(c, "state_topic"), "p2m/bridge/state");
	assert_string_equal(str(c, "payload_on"), "online");
	c = cJSON_GetObjectItem(comps, "log_level");
	assert_string_equal(str(c, "command_topic"), "p2m/bridge/request/log_level");
	assert_string_equal(str(c, "command_template"), "{\"value\": \"{{ value }}\"}");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(c, "options")), 4);
	c = cJSON_GetObjectItem(comps, "mdns_browse");
	assert_string_equal(str(c, "command_topic"), "p2m/bridge/request/mdns/browse");
	assert_string_equal(str(c, "payload_press"), "{}");
	cJSON_Delete(d);

	/* mdns off: the button is removed (a component with its platform only) */
	d = p2m_ha_bridge_discovery(&(const struct p2m_ha_bridge){
	    .id = "p2m_bridge", .base_topic = "p2m", .browse = false});
	c = cJSON_GetObjectItem(cJSON_GetObjectItem(d, "components"), "mdns_browse");
	assert_int_equal(cJSON_GetArraySize(c), 1);
	assert_string_equal(str(c, "platform"), "button");
	cJSON_Delete(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_forget_button),
	    cmocka_unit_test(test_bridge_device),
	    cmocka_unit_test(test_topic),
	    cmocka_unit_test(test_device_origin_availability),
	    cmocka_unit_test(test_components_from_rows),
	    cmocka_unit_test(test_climate),
	    cmocka_unit_test(test_switch_select_sensor),
	};
	return cmocka_run_group_tests_name("ha_discovery", tests, NULL, NULL);
}
