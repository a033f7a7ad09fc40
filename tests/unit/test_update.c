/* test_update.c - the update entity's state and release notes (src/update.c): what Home
 * Assistant's MQTT update entity is sent, with and without an image on offer, during an
 * install, and release notes cut to the 255 characters it keeps. */
#include "panda2mqtt/update.h"

#include <glib.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static char *state(const char *installed, const struct p2m_update_view *u)
{
	cJSON *o = p2m_update_state("Panda Breath firmware", installed, u);
	char *s = o ? cJSON_PrintUnformatted(o) : NULL;

	cJSON_Delete(o);
	return s;
}

static void test_state(void **st)
{
	struct p2m_update_view none = {.percent = -1};
	struct p2m_update_view offered = {
	    .latest = "V1.0.4", .path = "/x", .summary = "Fixes", .percent = -1};
	struct p2m_update_view sending = offered;
	char *s;

	(void)st;
	assert_null(state(NULL, &offered)); /* not reported yet: nothing to say */
	s = state("V1.0.3", &none);
	assert_string_equal(s, "{\"installed_version\":\"V1.0.3\",\"latest_version\":\"V1.0.3\","
			       "\"title\":\"Panda Breath firmware\",\"release_summary\":null,"
			       "\"in_progress\":false,\"update_percentage\":null}");
	cJSON_free(s);
	s = state("V1.0.3", &offered);
	assert_string_equal(s, "{\"installed_version\":\"V1.0.3\",\"latest_version\":\"V1.0.4\","
			       "\"title\":\"Panda Breath firmware\",\"release_summary\":\"Fixes\","
			       "\"in_progress\":false,\"update_percentage\":null}");
	cJSON_free(s);
	sending.in_progress = true;
	sending.percent = 42;
	s = state("V1.0.3", &sending);
	assert_non_null(strstr(s, "\"in_progress\":true,\"update_percentage\":42}"));
	cJSON_free(s);
	sending.percent = -1; /* checking, or waiting for the restart */
	s = state("V1.0.3", &sending);
	assert_non_null(strstr(s, "\"in_progress\":true,\"update_percentage\":null}"));
	cJSON_free(s);
}

static void test_summary(void **st)
{
	char long_text[600];
	char *s;

	(void)st;
	assert_null(p2m_update_summary("  \n\t ", 5));
	s = p2m_update_summary("\n Fixes the fan. \n", 18);
	assert_string_equal(s, "Fixes the fan.");
	g_free(s);
	memset(long_text, 'x', sizeof(long_text));
	s = p2m_update_summary(long_text, sizeof(long_text));
	assert_int_equal(g_utf8_strlen(s, -1), 255);
	assert_true(g_str_has_suffix(s, "…"));
	g_free(s);
	s = p2m_update_summary("caf\xe9 ok", 7); /* not UTF-8: replaced, never passed on */
	assert_true(g_utf8_validate(s, -1, NULL));
	assert_true(g_str_has_suffix(s, " ok"));
	g_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_state),
	    cmocka_unit_test(test_summary),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
