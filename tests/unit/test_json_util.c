/* test_json_util.c - the cJSON helpers every module uses (json_util.c): lookups into a
 * device's state, the deep merge of a frame into it, secrets removed at any depth, the
 * nesting depth that bounds frames and commands, and the reused print buffer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "panda2mqtt/json_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *printed(const cJSON *v)
{
	return cJSON_PrintUnformatted(v);
}

static void assert_json(const cJSON *v, const char *want)
{
	char *got = printed(v);

	if (strcmp(got, want) != 0)
		fail_msg("got  %s\nwant %s", got, want);
	cJSON_free(got);
}

static void test_field(void **st)
{
	cJSON *s = cJSON_Parse("{\"settings\":{\"work_on\":true},\"list\":[1],\"n\":3}");

	(void)st;
	assert_true(cJSON_IsTrue(p2m_json_field(s, "settings", "work_on")));
	assert_null(p2m_json_field(s, "settings", "missing"));
	assert_null(p2m_json_field(s, "nothing", "work_on"));
	assert_null(p2m_json_field(s, "list", "0")); /* a root that is no object */
	assert_null(p2m_json_field(s, "n", "x"));
	assert_null(p2m_json_field(NULL, "settings", "work_on"));
	cJSON_Delete(s);
}

static void test_merge(void **st)
{
	cJSON *dst =
	    cJSON_Parse("{\"a\":{\"x\":1,\"y\":2},\"b\":[1,2,3],\"c\":\"old\",\"d\":{\"k\":1}}");
	cJSON *src = cJSON_Parse("{\"a\":{\"y\":20,\"z\":30},\"b\":[9],\"c\":{\"now\":1},"
				 "\"d\":5,\"e\":null}");

	(void)st;
	p2m_json_merge(dst, src);
	/* objects on both sides merge; anything else (arrays too) replaces; new members join */
	assert_json(dst, "{\"a\":{\"x\":1,\"y\":20,\"z\":30},\"b\":[9],\"c\":{\"now\":1},"
			 "\"d\":5,\"e\":null}");
	/* src is left as it was, and nothing of it is shared with dst */
	assert_json(src, "{\"a\":{\"y\":20,\"z\":30},\"b\":[9],\"c\":{\"now\":1},\"d\":5,"
			 "\"e\":null}");
	cJSON_Delete(src);
	assert_json(dst, "{\"a\":{\"x\":1,\"y\":20,\"z\":30},\"b\":[9],\"c\":{\"now\":1},"
			 "\"d\":5,\"e\":null}");
	cJSON_Delete(dst);
}

/* Broad on purpose: a harmless member dropped costs little, a secret published a lot. */
static void test_redacted(void **st)
{
	cJSON *v = cJSON_Parse(
	    "{\"ssid\":\"Net\",\"password\":\"p1\",\"WiFi_PassWord\":\"p2\",\"pwd\":\"p3\","
	    "\"psk\":\"p4\",\"access_code\":\"p5\",\"token\":\"p6\",\"client_secret\":\"p7\","
	    "\"apiKey\":\"p8\",\"printer\":{\"name\":\"X1C\",\"access_code\":\"p9\","
	    "\"list\":[{\"name\":\"a\",\"pass\":\"p10\"},[{\"key\":\"p11\"}],7]},"
	    "\"on\":1}");
	cJSON *r = p2m_json_redacted(v);
	cJSON *scalar = cJSON_CreateString("password");
	cJSON *copy = p2m_json_redacted(scalar);
	char *s = printed(r);

	(void)st;
	assert_string_equal(s, "{\"ssid\":\"Net\",\"printer\":{\"name\":\"X1C\",\"list\":"
			       "[{\"name\":\"a\"},[{}],7]},\"on\":1}");
	/* a copy: the original keeps everything */
	assert_non_null(cJSON_GetObjectItem(v, "password"));
	/* a scalar is copied as it is (only member names can say "secret") */
	assert_string_equal(copy->valuestring, "password");
	assert_ptr_not_equal(copy, scalar);
	cJSON_free(s);
	cJSON_Delete(copy);
	cJSON_Delete(scalar);
	cJSON_Delete(r);
	cJSON_Delete(v);
}

static void test_depth(void **st)
{
	static const struct {
		const char *json;
		int limit, depth;
	} cases[] = {
	    {"1", 4, 0},
	    {"\"s\"", 4, 0},
	    {"{}", 4, 1},
	    {"[]", 4, 1},
	    {"{\"a\":1}", 4, 1},
	    {"{\"a\":{\"b\":[1,{\"c\":2}]}}", 8, 4},
	    {"[[[[[[[[[[1]]]]]]]]]]", 20, 10},
	    /* counting stops past the limit: deeper than the limit is all that is said */
	    {"[[[[[[[[[[1]]]]]]]]]]", 3, 5},
	    {"{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":1}}}}}", 4, 5},
	    {"{\"a\":{\"b\":{\"c\":{\"d\":1}}}}", 4, 4},
	};

	(void)st;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cJSON *v = cJSON_Parse(cases[i].json);
		int d;

		assert_non_null(v);
		d = p2m_json_depth(v, cases[i].limit);
		if (d != cases[i].depth)
			fail_msg("%s (limit %d): depth %d, expected %d", cases[i].json,
				 cases[i].limit, d, cases[i].depth);
		/* whatever the count, over the limit is over the limit */
		assert_int_equal(d > cases[i].limit, p2m_json_depth(v, 1000) > cases[i].limit);
		cJSON_Delete(v);
	}
}

/* The hot path's printer: the same text as cJSON's, into one buffer that grows to the
 * largest payload and is then reused. */
static void test_print_buffered(void **st)
{
	cJSON *small = cJSON_Parse("{\"mode\":\"heat\",\"t\":45.5,\"on\":true,\"n\":null}");
	cJSON *big = cJSON_CreateObject();
	const char *a, *b, *c;
	char *want;

	(void)st;
	for (int i = 0; i < 2000; i++) {
		char key[16];

		snprintf(key, sizeof(key), "k%d", i);
		cJSON_AddNumberToObject(big, key, i);
	}
	a = p2m_json_print_buffered(small);
	want = p2m_json_print(small);
	assert_string_equal(a, want);
	cJSON_free(want);
	b = p2m_json_print_buffered(big); /* some 16 KiB: the buffer grows */
	want = p2m_json_print(big);
	assert_true(strlen(want) > 4096);
	assert_string_equal(b, want);
	cJSON_free(want);
	c = p2m_json_print_buffered(small); /* and is reused, not shrunk */
	assert_ptr_equal(b, c);
	assert_string_equal(c, "{\"mode\":\"heat\",\"t\":45.5,\"on\":true,\"n\":null}");
	cJSON_Delete(small);
	cJSON_Delete(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_field),	   cmocka_unit_test(test_merge),
	    cmocka_unit_test(test_redacted),	   cmocka_unit_test(test_depth),
	    cmocka_unit_test(test_print_buffered),
	};

	p2m_json_init(); /* as main() does: cJSON allocates through g_malloc */
	return cmocka_run_group_tests_name("json_util", tests, NULL, NULL);
}
