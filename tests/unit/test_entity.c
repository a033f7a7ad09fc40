/* test_entity.c - the generic engine (entity.c) and what rests on it: what a merge says
 * changed, which rows depend on it, which topic a row is published on, that every
 * driver's declared inputs (rows' .inputs, discovery_inputs) are complete (a field left
 * out of a list would leave a published value stale: docs/BENCHMARKS.md), and merging
 * itself: frames refused whole or in part, and the caps on what is kept of a device. */
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
#include <unistd.h>

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

/* ---- merging: type checks, limits and what is kept across frames ----
 * The Panda Breath's table serves as the example; nothing here depends on its rows
 * beyond the fields named. */

static const struct p2m_driver *const drv = &p2m_driver_panda_breath;

/* A snapshot as the official firmware sends it (tests/fixtures/panda_breath: no cal_*
 * fields, no ptc_heater_status unless faulty, whole degrees). */
#define SNAPSHOT(fw, work_on, work_mode, isrunning)                                                \
	"{\"settings\":{\"fw_version\":\"" fw "\",\"work_on\":" work_on                            \
	",\"work_mode\":" work_mode ",\"isrunning\":" isrunning                                    \
	",\"set_temp\":40,\"temp\":40,\"custom_temp\":60,"                                         \
	"\"warehouse_temper\":30},"                                                                \
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
	assert_int_equal(p2m_entity_merge_frame(drv, "t", dev, frame, false), 0);
	cJSON_Delete(frame);
	return dev;
}

static void assert_state_has(const cJSON *dev, const char *key, const char *json)
{
	struct p2m_view view = {.dev = dev, .now = 1000000, .read_at = 999000};
	cJSON *s = p2m_entity_state(drv, &view);
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(s, key);
	char *v = item ? cJSON_PrintUnformatted(item) : strdup("absent");

	if (strcmp(v, json) != 0)
		fail_msg("state.%s is %s, expected %s", key, v, json);
	cJSON_free(v);
	cJSON_Delete(s);
}

static void test_pushes_merge(void **st)
{
	cJSON *dev = device_from(SNAPSHOT("V1.0.3", "true", "2", "0"));
	cJSON *push = cJSON_Parse("{\"settings\":{\"warehouse_temper\":31}}");

	(void)st;
	assert_int_equal(p2m_entity_merge_frame(drv, "t", dev, push, false), 0);
	assert_state_has(dev, "chamber_temperature", "31");
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
		if (p2m_entity_merge_frame(drv, "t", dev, f, false) != cases[i].problems)
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
	assert_int_equal(p2m_entity_merge_frame(drv, "t", dev, f, false), 1);
	assert_string_equal(p2m_json_field(dev, "sta", "hostname")->valuestring, "PandaBreath");
	cJSON_Delete(f);
	free(big);
	cJSON_Delete(dev);
}

/* ---- what is kept of a device across frames ---- */

/* Merge one frame given as text; returns the problem count. */
static int merge_text(cJSON *dev, const char *text)
{
	cJSON *f = cJSON_Parse(text);
	int problems;

	assert_non_null(f);
	problems = p2m_entity_merge_frame(drv, "t", dev, f, false);
	cJSON_Delete(f);
	return problems;
}

static void assert_bounded(const cJSON *dev)
{
	size_t used = p2m_entity_stored_bytes(dev), max = p2m_entity_max_stored(drv);

	if (used > max)
		fail_msg("state holds %zu bytes, more than the bound of %zu", used, max);
}

/* The one warning merging text logs (stderr caught in a temporary file). */
static void merge_logged(cJSON *dev, const char *text, int problems, char *log, size_t len)
{
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	enum p2m_log_level level = p2m_log_get_level();
	size_t n;

	p2m_log_ratelimit_reset();	 /* each case's first line is written */
	p2m_log_set_level(P2M_LOG_WARN); /* main() keeps the other tests' warnings quiet */
	assert_non_null(tmp);
	assert_true(saved >= 0);
	fflush(stderr);
	assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	assert_int_equal(merge_text(dev, text), problems);
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	p2m_log_set_level(level);
	rewind(tmp);
	n = fread(log, 1, len - 1, tmp);
	log[n] = '\0';
	fclose(tmp);
}

/* A real snapshot takes a small part of what the caps allow: they leave ample room. */
static void test_real_state_well_within_caps(void **st)
{
	cJSON *dev = device_from(SNAPSHOT("V1.0.3", "true", "2", "0"));

	(void)st;
	assert_true(p2m_entity_stored_bytes(dev) < P2M_MAX_STORED_BYTES / 16);
	assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(dev, "settings")) <
		    P2M_MAX_ROOT_MEMBERS / 4);
	/* the bound is the budget plus a few KiB of roots and table fields */
	assert_true(p2m_entity_max_stored(drv) > P2M_MAX_STORED_BYTES);
	assert_true(p2m_entity_max_stored(drv) < P2M_MAX_STORED_BYTES + (size_t)16 * 1024);
	cJSON_Delete(dev);
}

/* A device inventing a new member in every frame: the root stops growing at the cap,
 * while the fields the table reads keep updating, even ones first seen after the cap. */
static void test_new_members_capped(void **st)
{
	cJSON *dev = device_from(SNAPSHOT("V1.0.3", "true", "2", "0"));
	enum p2m_log_level level = p2m_log_get_level();
	int refused = 0;
	char text[160], log[1024];

	(void)st;
	p2m_log_set_level(P2M_LOG_ERR); /* 10000 warnings are not worth reading */
	for (int i = 0; i < 10000; i++) {
		int problems;

		snprintf(text, sizeof(text),
			 "{\"settings\":{\"junk_%d\":%d,\"warehouse_temper\":%d.5}}", i, i, i % 50);
		problems = merge_text(dev, text);
		assert_true(problems == 0 || problems == 1);
		refused += problems;
		snprintf(text, sizeof(text), "%d.5", i % 50);
		if (i % 1000 == 0)
			assert_state_has(dev, "chamber_temperature", text);
	}
	p2m_log_set_level(level);
	assert_bounded(dev);
	/* set_temp and temp are not table fields: they count against the cap too */
	assert_int_equal(refused, 10000 - (P2M_MAX_ROOT_MEMBERS - 2));
	assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(dev, "settings")) <
		    P2M_MAX_ROOT_MEMBERS + 20);
	assert_state_has(dev, "chamber_temperature", "49.5");

	/* members already kept are still updated */
	assert_int_equal(merge_text(dev, "{\"settings\":{\"junk_0\":\"new\",\"temp\":45}}"), 0);
	assert_string_equal(p2m_json_field(dev, "settings", "junk_0")->valuestring, "new");
	/* a table field never reported before is taken even with the root full */
	assert_int_equal(merge_text(dev, "{\"settings\":{\"hotbedtemp\":70}}"), 0);
	assert_state_has(dev, "auto_bed_threshold", "70");
	/* other roots have caps of their own */
	assert_int_equal(merge_text(dev, "{\"sta\":{\"junk\":1}}"), 0);
	/* a refused member is one problem; the rest of the frame is merged */
	merge_logged(dev, "{\"settings\":{\"junk_x\":1,\"work_on\":false}}", 1, log, sizeof(log));
	assert_non_null(strstr(log, "device t: settings: "));
	assert_non_null(strstr(log, "junk_x"));
	assert_state_has(dev, "power", "\"OFF\"");
	assert_null(p2m_json_field(dev, "settings", "junk_x"));
	/* many in one frame: the first named, the rest counted on one line */
	merge_logged(dev, "{\"settings\":{\"junk_y\":1,\"junk_z\":2,\"junk_w\":3}}", 3, log,
		     sizeof(log));
	assert_non_null(strstr(log, "'junk_y' ignored"));
	assert_null(strstr(log, "junk_z"));
	assert_non_null(strstr(log, "device t: settings: 2 more members ignored"));
	assert_bounded(dev);
	cJSON_Delete(dev);
}

/* Objects are merged into what is kept, so one member can grow frame after frame;
 * and one frame of small values takes far more memory than its text. Both stop at the
 * byte cap, while updates that fit and table fields go on. */
static void test_stored_bytes_capped(void **st)
{
	cJSON *dev = device_from(SNAPSHOT("V1.0.3", "true", "2", "0"));
	enum p2m_log_level level = p2m_log_get_level();
	char pad[201], text[400], log[1024];
	int refused = 0;

	(void)st;
	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	p2m_log_set_level(P2M_LOG_ERR);
	for (int i = 0; i < 10000; i++) {
		snprintf(text, sizeof(text),
			 "{\"printer\":{\"blob\":{\"k%d\":\"%s\"},\"state\":%d}}", i, pad,
			 i % 2 ? 3 : 2);
		refused += merge_text(dev, text);
	}
	p2m_log_set_level(level);
	assert_bounded(dev);
	assert_true(refused > 8000); /* about 260 B a key: some 1000 fit */
	assert_state_has(dev, "printer_state", "\"connected\"");
	/* a smaller value in its place frees the room: new members fit again */
	assert_int_equal(merge_text(dev, "{\"printer\":{\"blob\":0}}"), 0);
	assert_true(p2m_entity_stored_bytes(dev) < (size_t)8 * 1024);
	assert_int_equal(merge_text(dev, "{\"printer\":{\"blob\":{\"a\":1}}}"), 0);
	/* and objects are still merged, not replaced */
	assert_int_equal(merge_text(dev, "{\"printer\":{\"blob\":{\"b\":2}}}"), 0);
	assert_non_null(cJSON_GetObjectItem(p2m_json_field(dev, "printer", "blob"), "a"));
	assert_non_null(cJSON_GetObjectItem(p2m_json_field(dev, "printer", "blob"), "b"));

	/* one 60 KiB frame of zeros would take some 2 MiB as cJSON: that member is refused */
	cJSON *fresh = device_from(SNAPSHOT("V1.0.3", "true", "2", "0"));
	size_t n = 30000, len = 0;
	char *big = malloc(2 * n + 64);

	assert_non_null(big);
	len += (size_t)sprintf(big, "{\"wifi\":{\"list\":[0");
	for (size_t i = 1; i < n; i++)
		len += (size_t)sprintf(big + len, ",0");
	sprintf(big + len, "],\"ssid\":\"Net3\"}}");
	merge_logged(fresh, big, 1, log, sizeof(log));
	assert_non_null(strstr(log, "device t: wifi.list: "));
	assert_non_null(strstr(log, "bytes"));
	assert_string_equal(p2m_json_field(fresh, "wifi", "ssid")->valuestring, "Net3");
	assert_null(p2m_json_field(fresh, "wifi", "list"));
	assert_bounded(fresh);
	free(big);
	cJSON_Delete(fresh);
	cJSON_Delete(dev);
}

/* Member names are capped like string values. */
static void test_long_name_refused(void **st)
{
	cJSON *dev = device_from(SNAPSHOT("V1.0.3", "true", "2", "0"));
	char name[400], text[600];

	(void)st;
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	snprintf(text, sizeof(text), "{\"sta\":{\"%s\":1,\"ip\":\"10.0.0.6\"}}", name);
	assert_int_equal(merge_text(dev, text), 1);
	snprintf(text, sizeof(text), "{\"sta\":{\"x\":{\"%s\":1}}}", name);
	assert_int_equal(merge_text(dev, text), 1);
	assert_null(p2m_json_field(dev, "sta", "x"));
	assert_state_has(dev, "ip_address", "\"10.0.0.6\"");
	cJSON_Delete(dev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_merge_says_what_changed),
	    cmocka_unit_test(test_declared_inputs_are_complete),
	    cmocka_unit_test(test_topics),
	    cmocka_unit_test(test_pushes_merge),
	    cmocka_unit_test(test_bad_frames),
	    cmocka_unit_test(test_long_string_refused),
	    cmocka_unit_test(test_real_state_well_within_caps),
	    cmocka_unit_test(test_new_members_capped),
	    cmocka_unit_test(test_stored_bytes_capped),
	    cmocka_unit_test(test_long_name_refused),
	};
	p2m_log_set_level(P2M_LOG_ERR);
	return cmocka_run_group_tests_name("entity", tests, NULL, NULL);
}
