/* test_entity.c - the generic engine (entity.c) and what rests on it: what a merge says
 * changed, which rows depend on it, which topic a row is published on, and that every
 * driver's declared inputs (rows' .inputs, discovery_inputs) are complete: a field left
 * out of a list would leave a published value stale (docs/BENCHMARKS.md). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "panda2mqtt/families.h"
#include "panda2mqtt/entity.h"
#include "panda2mqtt/ha.h"
#include "panda2mqtt/json_util.h"
#include "panda2mqtt/log.h"
#include "panda2mqtt/printer_source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cJSON *fixture(const char *name)
{
	char path[512];
	FILE *f;
	long n;
	char *buf;
	cJSON *v;

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
	v = cJSON_Parse(buf);
	free(buf);
	assert_non_null(v);
	return v;
}

static cJSON *device_of(const struct p2m_driver *d, const char *text)
{
	cJSON *dev = cJSON_CreateObject(), *f = cJSON_Parse(text);

	assert_non_null(f);
	assert_int_equal(p2m_entity_merge_frame(d, "t", dev, f, true), 0);
	cJSON_Delete(f);
	return dev;
}

static void test_merge_says_what_changed(void **st)
{
	const struct p2m_driver *d = &p2m_driver_panda_breath;
	cJSON *dev = cJSON_CreateObject(), *snap = fixture("first-frame-v1.0.3.json");
	cJSON *push = fixture("push-temperature.json"), *other;
	struct p2m_changes c;

	(void)st;
	assert_int_equal(p2m_entity_merge(d, "t", dev, snap, true, &c), 0);
	assert_true(c.all); /* a whole snapshot */
	/* the same reading again (24, as in the snapshot): nothing changed */
	assert_int_equal(p2m_entity_merge(d, "t", dev, push, false, &c), 0);
	assert_false(p2m_changed(&c));
	other = cJSON_Parse("{\"settings\":{\"warehouse_temper\":25,\"work_on\":true}}");
	assert_int_equal(p2m_entity_merge(d, "t", dev, other, false, &c), 0);
	assert_false(c.all);
	assert_int_equal(c.n, 1); /* work_on was true already */
	assert_string_equal(c.root[0], "settings");
	assert_string_equal(c.field[0], "warehouse_temper");
	/* the chamber, the action (derived from it), not the hostname */
	assert_true(p2m_entity_depends(p2m_entity_find(d, "chamber_temperature"), &c));
	assert_true(p2m_entity_depends(p2m_entity_find(d, "action"), &c));
	assert_false(p2m_entity_depends(p2m_entity_find(d, "hostname"), &c));
	assert_false(p2m_entity_depends(p2m_entity_find(d, "mode"), &c));
	assert_false(p2m_ha_discovery_depends(d, &c));
	cJSON_Delete(other);
	other = cJSON_Parse("{\"settings\":{\"fw_version\":\"V1.0.4\"}}");
	assert_int_equal(p2m_entity_merge(d, "t", dev, other, false, &c), 0);
	assert_true(p2m_ha_discovery_depends(d, &c));
	cJSON_Delete(other);
	cJSON_Delete(push);
	cJSON_Delete(snap);
	cJSON_Delete(dev);
}

/* A copy of dev with root.field given another value of the same type. */
static cJSON *mutated(const cJSON *dev, const char *root, const cJSON *field)
{
	cJSON *copy = cJSON_Duplicate(dev, true);
	cJSON *r = cJSON_GetObjectItemCaseSensitive(copy, root), *v;

	if (cJSON_IsNumber(field))
		v = cJSON_CreateNumber(field->valuedouble + 1);
	else if (cJSON_IsBool(field))
		v = cJSON_CreateBool(!cJSON_IsTrue(field));
	else
		v = cJSON_CreateString(
		    cJSON_IsString(field) && !strcmp(field->valuestring, "x") ? "y" : "x");
	cJSON_ReplaceItemInObjectCaseSensitive(r, field->string, v);
	return copy;
}

static char *value_of(const struct p2m_entity *e, const cJSON *dev)
{
	cJSON *local = cJSON_CreateObject();
	struct p2m_view v = {.dev = dev, .local = local, .now = 1000000, .read_at = 999000};
	cJSON *val = p2m_entity_read(e, &v);
	char *s = val ? cJSON_PrintUnformatted(val) : strdup("null");

	cJSON_Delete(val);
	cJSON_Delete(local);
	return s;
}

static char *discovery_of(const struct p2m_driver *d, const cJSON *dev)
{
	struct p2m_view v = {.dev = dev};
	struct p2m_safety safety = {.max_target_temp = 60, .max_drying_hours = 99};
	char mac[32];
	struct p2m_ha_device info = {
	    .id = "x",
	    .name = d->display_name ? d->display_name(dev) : NULL,
	    .mac = d->mac_address && d->mac_address(dev, mac, sizeof(mac)) ? mac : NULL,
	    .base_topic = "b",
	    .fw_version = d->fw_version ? d->fw_version(dev) : NULL,
	    .safety = &safety,
	    .view = &v};
	char *in = p2m_ha_discovery_inputs(d, &info);

	/* has_own_ha_link is read too (device_publish.c withdraws discovery with it) */
	if (d->has_own_ha_link && d->has_own_ha_link(dev)) {
		char *s = malloc(strlen(in) + 8);
		sprintf(s, "%s\x1fown", in);
		free(in);
		in = s;
	}
	return in;
}

/* Every scalar of every root of dev, changed one at a time: a row (or discovery) whose
 * value changes must have declared that field among its inputs. */
static void check_inputs(const struct p2m_driver *d, const cJSON *dev, const char *what)
{
	const cJSON *root, *f;

	cJSON_ArrayForEach(root, dev)
	{
		cJSON_ArrayForEach(f, root)
		{
			struct p2m_changes c = {
			    .n = 1, .root = {root->string}, .field = {f->string}};
			cJSON *other;
			char *a, *b;

			if (cJSON_IsObject(f) || cJSON_IsArray(f))
				continue;
			other = mutated(dev, root->string, f);
			for (size_t i = 0; i < d->n_entities; i++) {
				const struct p2m_entity *e = &d->entities[i];

				if (!p2m_entity_has_state(e) || p2m_entity_depends(e, &c))
					continue;
				a = value_of(e, dev);
				b = value_of(e, other);
				if (strcmp(a, b) != 0)
					fail_msg("%s: %s: row %s changes with %s.%s (%s -> %s) but "
						 "does not list it among its inputs",
						 d->name, what, e->key, root->string, f->string, a,
						 b);
				free(a);
				free(b);
			}
			if (!p2m_ha_discovery_depends(d, &c)) {
				a = discovery_of(d, dev);
				b = discovery_of(d, other);
				if (strcmp(a, b) != 0)
					fail_msg("%s: %s: discovery changes with %s.%s, which its "
						 "inputs do not list",
						 d->name, what, root->string, f->string);
				free(a);
				free(b);
			}
			cJSON_Delete(other);
		}
	}
}

static void test_declared_inputs_are_complete(void **st)
{
	static const char *const pb_states[] = {
	    /* the firmware's first frame, heating */
	    NULL,
	    /* drying, with a countdown */
	    "{\"settings\":{\"fw_version\":\"V1.0.3\",\"work_on\":true,\"work_mode\":3,"
	    "\"isrunning\":1,\"remaining_seconds\":3600,\"custom_temp\":55,\"filament_temp\":55,"
	    "\"set_temp\":40,\"temp\":40,\"warehouse_temper\":50,\"ptc_heater_status\":1}}",
	    /* a Klipper printer bound, the doc's calibrated fields, a V1.0.0 target */
	    "{\"settings\":{\"fw_version\":\"V1.0.0\",\"work_on\":1,\"work_mode\":2,"
	    "\"temp\":45,\"printer_type\":2,\"cal_warehouse_temp\":30,\"cal_ptc_temp\":50,"
	    "\"warehouse_sensor_status\":1,\"ptc_sensor_status\":2},"
	    "\"printer\":{\"state\":5,\"host\":\"10.0.0.7\",\"port\":7125,\"name\":\"Klipper\"},"
	    "\"ha\":{\"ip\":\"\",\"port\":1883,\"state\":0}}",
	};

	(void)st;
	for (size_t i = 0; i < sizeof(pb_states) / sizeof(pb_states[0]); i++) {
		cJSON *dev;

		if (pb_states[i]) {
			dev = device_of(&p2m_driver_panda_breath, pb_states[i]);
		} else {
			cJSON *snap = fixture("first-frame-v1.0.3.json");
			dev = cJSON_CreateObject();
			assert_int_equal(
			    p2m_entity_merge_frame(&p2m_driver_panda_breath, "t", dev, snap, true),
			    0);
			cJSON_Delete(snap);
		}
		check_inputs(&p2m_driver_panda_breath, dev,
			     pb_states[i] ? pb_states[i] : "fixture");
		cJSON_Delete(dev);
	}
	cJSON *pt = device_of(&p2m_driver_ptalk,
			      "{\"ptalk\":{\"device_id\":\"A1B2C3D4E5F6\",\"firmware_version\":"
			      "\"1.0.1\",\"device_name\":\"PTalk\",\"battery_percent\":85,"
			      "\"connectivity_state\":\"ONLINE\",\"volume\":60,\"brightness\":100,"
			      "\"uptime_sec\":3600}}");
	check_inputs(&p2m_driver_ptalk, pt, "status");
	cJSON_Delete(pt);
}

/* Rows reach Home Assistant on the topic their category says; a family whose state is
 * published on one topic only (the printer) must have no row on the other. */
static void test_topics(void **st)
{
	const struct p2m_driver *pb = &p2m_driver_panda_breath;

	(void)st;
	assert_int_equal(p2m_entity_topic(p2m_entity_find(pb, "chamber_temperature")),
			 P2M_TOPIC_STATE);
	assert_int_equal(p2m_entity_topic(p2m_entity_find(pb, "mode")), P2M_TOPIC_STATE);
	assert_int_equal(p2m_entity_topic(p2m_entity_find(pb, "hostname")), P2M_TOPIC_DETAILS);
	assert_string_equal(p2m_topic_suffix(P2M_TOPIC_DETAILS), "/details");
	assert_string_equal(p2m_topic_suffix(P2M_TOPIC_STATE), "");
	/* an attributes row sits on its entity's topic */
	for (const struct p2m_driver *const *d = p2m_families; *d; d++)
		for (size_t i = 0; i < (*d)->n_entities; i++) {
			const struct p2m_entity *e = &(*d)->entities[i];

			if (e->attributes)
				assert_int_equal(
				    p2m_entity_topic(e),
				    p2m_entity_topic(p2m_entity_find(*d, e->attributes)));
		}
	for (size_t i = 0; i < p2m_printer_driver.n_entities; i++)
		assert_int_equal(p2m_entity_topic(&p2m_printer_driver.entities[i]),
				 P2M_TOPIC_STATE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_merge_says_what_changed),
	    cmocka_unit_test(test_declared_inputs_are_complete),
	    cmocka_unit_test(test_topics),
	};
	p2m_log_set_level(P2M_LOG_ERR);
	return cmocka_run_group_tests_name("entity", tests, NULL, NULL);
}
