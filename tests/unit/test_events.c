/* test_events.c - every event a device can publish is one its Home Assistant event
 * entity lists (Home Assistant drops any other, with "Invalid event type").
 *
 * The emitters are walked, not trusted: the sources are read for every event they create
 * (p2m_event_new("...") in a family's file, p2m_device_event(P2M_EV_...) in the core),
 * and each is checked against the list discovery publishes for the families that can
 * emit it. An event built by hand ("event_type" written anywhere but events.c) fails too. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "panda2mqtt/families.h"
#include "panda2mqtt/events.h"
#include "panda2mqtt/ha.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	long n;
	char *buf;

	if (!f)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static const struct p2m_driver *driver_named(const char *name, size_t len)
{
	for (const struct p2m_driver *const *d = p2m_families; *d; d++)
		if (strlen((*d)->name) == len && strncmp((*d)->name, name, len) == 0)
			return *d;
	return NULL;
}

/* Each p2m_event_new("type") in text: declared by drv (or, when drv is NULL, by every
 * family: a core file). Returns how many were checked. */
static int check_literals(const char *file, const char *text, const struct p2m_driver *drv)
{
	static const char call[] = "p2m_event_new(\"";
	int n = 0;

	/* a type this walk cannot read is a type it cannot check */
	for (const char *p = strstr(text, "p2m_event_new("); p; p = strstr(p + 1, "p2m_event_new("))
		if (p[14] != '"' && strncmp(p + 14, "const char *type)", 17) != 0 &&
		    strncmp(p + 14, "p2m_event_name(", 15) != 0) /* its definition; the core's */
			fail_msg("%s: %.60s: the type must be a string literal", file, p);
	for (const char *p = strstr(text, call); p; p = strstr(p + 1, call)) {
		const char *t = p + sizeof(call) - 1, *end = strchr(t, '"');
		char type[64];

		assert_non_null(end);
		snprintf(type, sizeof(type), "%.*s", (int)(end - t), t);
		for (const struct p2m_driver *const *d = p2m_families; *d; d++)
			if ((!drv || *d == drv) && !p2m_event_declared(*d, type))
				fail_msg("%s emits \"%s\", which the %s does not declare", file,
					 type, (*d)->model);
		n++;
	}
	return n;
}

/* Each p2m_device_event(P2M_EV_X): a core event that exists. */
static int check_core_calls(const char *file, const char *text)
{
	static const char call[] = "p2m_device_event(P2M_EV_";
	int n = 0;

	for (const char *p = strstr(text, call); p; p = strstr(p + 1, call)) {
		const char *t = p + sizeof(call) - 1;
		bool known = false;

		for (int ev = 0; ev < P2M_EV_COUNT; ev++) {
			char upper[64];
			const char *name = p2m_event_name((enum p2m_event)ev);
			size_t i;

			for (i = 0; name[i] && i + 1 < sizeof(upper); i++)
				upper[i] = (char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 32
										   : name[i]);
			upper[i] = '\0';
			known |= strncmp(t, upper, i) == 0 && t[i] == ')';
		}
		if (!known)
			fail_msg("%s: %.40s is not a core event", file, p);
		n++;
	}
	return n;
}

static int walk(const char *dir, bool drivers)
{
	DIR *d = opendir(dir);
	struct dirent *ent;
	int n = 0;

	if (!d)
		fail_msg("cannot read %s", dir);
	while ((ent = readdir(d))) {
		size_t len = strlen(ent->d_name);
		char path[512];
		char *text;

		if (len < 3 || strcmp(ent->d_name + len - 2, ".c") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, ent->d_name);
		text = slurp(path);
		if (strstr(text, "\"event_type\"") && strcmp(ent->d_name, "events.c") != 0)
			fail_msg("%s builds an event by hand; use p2m_event_new()", path);
		if (drivers) {
			const struct p2m_driver *drv = driver_named(ent->d_name, len - 2);

			/* a family's file emits its own family's events */
			if (drv)
				n += check_literals(path, text, drv);
			else if (strstr(text, "p2m_event_new(\""))
				fail_msg("%s emits events but is no family's file", path);
		} else {
			n += check_literals(path, text, NULL);
			n += check_core_calls(path, text);
		}
		free(text);
	}
	closedir(d);
	return n;
}

static void test_emitters_against_tables(void **st)
{
	(void)st;
	/* there is something to check: the walk did find the emitters */
	assert_true(walk(P2M_SOURCE_DIR, false) >= 8);
	assert_true(walk(P2M_SOURCE_DIR "/drivers", true) >= 5);
}

/* The list discovery publishes: the core's events that apply, then the family's own. */
static void test_lists(void **st)
{
	(void)st;
	for (const struct p2m_driver *const *d = p2m_families; *d; d++) {
		const char *buf[P2M_MAX_EVENT_TYPES];
		const char *const *types = p2m_event_types(*d, buf, P2M_MAX_EVENT_TYPES);
		size_t n = 0;

		while (types[n])
			n++;
		assert_true(n + 1 < P2M_MAX_EVENT_TYPES); /* room to spare */
		for (int ev = 0; ev < P2M_EV_COUNT; ev++)
			assert_int_equal(
			    p2m_event_applies(*d, (enum p2m_event)ev),
			    p2m_event_declared(*d, p2m_event_name((enum p2m_event)ev)));
		for (const char *const *t = (*d)->event_types; t && *t; t++)
			assert_true(p2m_event_declared(*d, *t));
		for (size_t i = 0; i < n; i++)
			for (size_t j = i + 1; j < n; j++)
				assert_true(strcmp(types[i], types[j]) != 0);
		assert_false(p2m_event_declared(*d, "not_an_event"));
	}
	/* the heater families: a safety cut-off is always listed */
	assert_true(p2m_event_declared(&p2m_driver_panda_breath, "safety_cutoff"));
	assert_true(p2m_event_declared(&p2m_driver_panda_breath, "command_refused"));
	assert_true(p2m_event_declared(&p2m_driver_panda_breath, "heater_fault"));
	assert_true(p2m_event_declared(&p2m_driver_panda_breath, "command_failed"));
	assert_false(p2m_event_declared(&p2m_driver_ptalk, "safety_cutoff"));
	assert_true(p2m_event_declared(&p2m_driver_ptalk, "update_sent"));
}

/* What discovery publishes is that list. */
static void test_discovery_lists_them(void **st)
{
	(void)st;
	for (const struct p2m_driver *const *d = p2m_families; *d; d++) {
		cJSON *dev = cJSON_CreateObject();
		struct p2m_view v = {.dev = dev};
		struct p2m_safety safety = {.max_target_temp = 60, .max_drying_hours = 99};
		struct p2m_ha_device info = {
		    .id = "x", .name = "X", .base_topic = "b", .safety = &safety, .view = &v};
		cJSON *disc = p2m_ha_discovery(*d, &info);
		const cJSON *c;
		const char *buf[P2M_MAX_EVENT_TYPES];
		const char *const *types = p2m_event_types(*d, buf, P2M_MAX_EVENT_TYPES);
		bool found = false;

		cJSON_ArrayForEach(c, cJSON_GetObjectItem(disc, "components"))
		{
			const cJSON *list = cJSON_GetObjectItem(c, "event_types");
			size_t i = 0;
			const cJSON *t;

			if (!list)
				continue;
			found = true;
			cJSON_ArrayForEach(t, list)
			{
				assert_non_null(types[i]);
				assert_string_equal(t->valuestring, types[i++]);
			}
			assert_null(types[i]);
		}
		assert_true(found);
		cJSON_Delete(disc);
		cJSON_Delete(dev);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_emitters_against_tables),
	    cmocka_unit_test(test_lists),
	    cmocka_unit_test(test_discovery_lists_them),
	};
	return cmocka_run_group_tests_name("events", tests, NULL, NULL);
}
