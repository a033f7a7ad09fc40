/* test_families.c - the driver contract (driver.h) holds for every registered family.
 *
 * Each member driver.h marks REQUIRED is checked for each family in families.c, as are
 * the pairs marked "both or neither" and what the core assumes of every table (unique
 * keys, one event row, rows rooted in the family's roots). A family added without one
 * of them fails here, by name, before it can crash the daemon. Also the lookups the
 * [device] type key uses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "panda2mqtt/entity.h"
#include "panda2mqtt/families.h"

#include <stdio.h>
#include <string.h>

/* Each check returns the first problem it finds ("" when none), so that the test of
 * the checks themselves can feed them broken families. */
static char why[256];
#define PROBLEM(...)                                                                               \
	do {                                                                                       \
		snprintf(why, sizeof(why), __VA_ARGS__);                                           \
		return why;                                                                        \
	} while (0)

static bool valid_name(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n > 0 && n <= 32 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

/* "_name._tcp" or "_name._udp": what avahi-browse takes. */
static bool valid_dnssd_type(const char *s)
{
	size_t n = strlen(s);

	return n > 6 && s[0] == '_' &&
	       (strcmp(s + n - 5, "._tcp") == 0 || strcmp(s + n - 5, "._udp") == 0);
}

static bool root_listed(const struct p2m_driver *d, const char *root)
{
	for (const char *const *r = d->roots; *r; r++)
		if (strcmp(*r, root) == 0)
			return true;
	return false;
}

static const char *check_table(const struct p2m_driver *d)
{
	size_t events = 0;
	bool writes = false;

	if (!d->entities || d->n_entities == 0)
		PROBLEM("%s: no entity table", d->name);
	for (size_t i = 0; i < d->n_entities; i++) {
		const struct p2m_entity *e = &d->entities[i];

		/* a climate row is named after its device; a P2M_NONE row is no entity */
		if (!e->key || (!e->name && e->platform != P2M_NONE && e->platform != P2M_CLIMATE))
			PROBLEM("%s: row %zu has no key or name", d->name, i);
		for (size_t j = 0; j < i; j++)
			if (strcmp(d->entities[j].key, e->key) == 0)
				PROBLEM("%s: two rows with key %s", d->name, e->key);
		if (e->root && strcmp(e->root, P2M_ROOT_LOCAL) != 0 && !root_listed(d, e->root))
			PROBLEM("%s: row %s reads root %s, which roots does not list", d->name,
				e->key, e->root);
		events += e->platform == P2M_EVENT;
		writes |= e->write != NULL;
	}
	if (events != 1)
		PROBLEM("%s: %zu event rows; the core's events need exactly one", d->name, events);
	if (writes && !d->plan)
		PROBLEM("%s: rows write, but plan is NULL (REQUIRED when any row writes)", d->name);
	return "";
}

static const char *check_family(const struct p2m_driver *d)
{
	const char *t;

	/* who it is */
	if (!valid_name(d->name))
		PROBLEM("family name '%s' is not [a-z0-9_]{1,32}", d->name ? d->name : "(null)");
	if (!d->manufacturer || !d->model)
		PROBLEM("%s: manufacturer and model are REQUIRED", d->name);
	/* where it is */
	if (!d->dials_in && (!d->ws_path || d->ws_path[0] != '/'))
		PROBLEM("%s: ws_path is REQUIRED (\"/...\") for a family the gateway dials",
			d->name);
	if (d->dnssd_type && (d->dials_in || !valid_dnssd_type(d->dnssd_type)))
		PROBLEM("%s: dnssd_type '%s' is not _name._tcp, or the family dials in", d->name,
			d->dnssd_type);
	/* what it says */
	if (*(t = check_table(d)))
		return t;
	if (!d->roots || !d->roots[0])
		PROBLEM("%s: roots is REQUIRED", d->name);
	if (!d->is_snapshot || !d->fw_version)
		PROBLEM("%s: is_snapshot and fw_version are REQUIRED", d->name);
	if (d->dials_in && !d->device_id)
		PROBLEM("%s: a family that dials in needs device_id (its devices say who they "
			"are)",
			d->name);
	/* both or neither */
	if (!d->replies != !d->reply_of)
		PROBLEM("%s: replies and reply_of go together", d->name);
	if (!d->request_key != !d->message)
		PROBLEM("%s: request_key and message go together", d->name);
	if (!d->heat_status != !d->off_command)
		PROBLEM("%s: heat_status and off_command go together", d->name);
	if (d->event_fields && !d->events)
		PROBLEM("%s: event_fields without events", d->name);
	return "";
}

static void test_every_family_keeps_the_contract(void **st)
{
	size_t n = 0;

	(void)st;
	for (const struct p2m_driver *const *d = p2m_families; *d; d++, n++) {
		const char *problem = check_family(*d);

		if (*problem)
			fail_msg("%s", problem);
		for (const struct p2m_driver *const *e = p2m_families; e < d; e++)
			if (strcmp((*e)->name, (*d)->name) == 0)
				fail_msg("two families named %s", (*d)->name);
	}
	assert_true(n >= 3);
}

/* A contract test that cannot fail would prove nothing: a family missing each
 * REQUIRED member in turn is caught. */
static void test_a_broken_family_is_caught(void **st)
{
	struct p2m_driver broken = p2m_driver_json_sensor;

	(void)st;
	broken.ws_path = NULL;
	assert_non_null(strstr(check_family(&broken), "ws_path"));
	broken = p2m_driver_json_sensor;
	broken.fw_version = NULL;
	assert_non_null(strstr(check_family(&broken), "fw_version"));
	broken = p2m_driver_json_sensor;
	broken.plan = NULL; /* its interval row writes */
	assert_non_null(strstr(check_family(&broken), "plan"));
	broken = p2m_driver_panda_breath;
	broken.off_command = NULL;
	assert_non_null(strstr(check_family(&broken), "off_command"));
	broken = p2m_driver_json_sensor;
	broken.name = "JSON sensor";
	assert_non_null(strstr(check_family(&broken), "is not"));
	broken = p2m_driver_json_sensor;
	broken.n_entities--; /* without its event row */
	assert_non_null(strstr(check_family(&broken), "event rows"));
	assert_string_equal(check_family(&p2m_driver_json_sensor), ""); /* the real one */
}

static void test_lookups_for_the_type_key(void **st)
{
	const char *names = p2m_family_names();

	(void)st;
	for (const struct p2m_driver *const *d = p2m_families; *d; d++) {
		assert_ptr_equal(p2m_family_by_name((*d)->name), *d);
		assert_true(p2m_family_known((*d)->name));
		assert_non_null(strstr(names, (*d)->name));
	}
	assert_null(p2m_family_by_name("panda"));
	assert_false(p2m_family_known("Panda_Breath"));
	assert_false(p2m_family_known(NULL));
	/* no type: a Panda Breath, what the gateway was made for */
	assert_ptr_equal(p2m_family_of(NULL), &p2m_driver_panda_breath);
	assert_ptr_equal(p2m_family_of("json_sensor"), &p2m_driver_json_sensor);
	assert_null(p2m_family_of("nope"));
	assert_string_equal(names, "panda_breath, ptalk, json_sensor");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_family_keeps_the_contract),
	    cmocka_unit_test(test_a_broken_family_is_caught),
	    cmocka_unit_test(test_lookups_for_the_type_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
