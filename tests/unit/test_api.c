/* test_api.c - unit tests for api.c: the bridge requests a broker client may send, every
 * way one can be wrong (size, JSON, types, verb, retain flag), the transaction echoed in
 * every response it could be read for, and the shape of the responses. */
#include "panda2mqtt/api.h"
#include "panda2mqtt/json_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static int parse(const char *verb, const char *payload, bool retained, struct p2m_api_request *req,
		 char *err, size_t errlen)
{
	return p2m_api_parse(verb, payload, strlen(payload), retained, req, err, errlen);
}

static void assert_contains(const char *s, const char *part)
{
	if (!strstr(s, part))
		fail_msg("'%s' does not contain '%s'", s, part);
}

static void test_valid_requests(void **state)
{
	struct p2m_api_request req;
	char err[160] = "";

	(void)state;
	assert_int_equal(parse("device/remove", "{\"id\":\"panda_breath_3c84279a1b2c\"}", false,
			       &req, err, sizeof(err)),
			 0);
	assert_int_equal(req.verb, P2M_API_DEVICE_REMOVE);
	assert_string_equal(req.id, "panda_breath_3c84279a1b2c");
	assert_null(req.transaction);
	p2m_api_request_clear(&req);

	assert_int_equal(parse("log_level", "{\"value\":\"debug\",\"transaction\":7}", false, &req,
			       err, sizeof(err)),
			 0);
	assert_int_equal(req.verb, P2M_API_LOG_LEVEL);
	assert_int_equal(req.level, P2M_LOG_DEBUG);
	assert_true(cJSON_IsNumber(req.transaction) && req.transaction->valuedouble == 7);
	p2m_api_request_clear(&req);

	for (int v = P2M_API_RELOAD; v <= P2M_API_MDNS_BROWSE; v++) {
		if (v == P2M_API_LOG_LEVEL)
			continue;
		assert_int_equal(parse(p2m_api_verb_name((enum p2m_api_verb)v),
				       "{\"transaction\":\"abc\",\"extra\":[1,2]}", false, &req,
				       err, sizeof(err)),
				 0);
		assert_int_equal(req.verb, v);
		assert_string_equal(req.transaction->valuestring, "abc");
		p2m_api_request_clear(&req);
	}
}

static void test_bad_requests(void **state)
{
	static const struct {
		const char *verb, *payload;
		bool retained;
		const char *error;
		bool has_transaction;
	} cases[] = {
	    {"health", "", false, "not JSON", false},
	    {"health", "health please", false, "not JSON", false},
	    {"health", "{\"transaction\":", false, "not JSON", false},
	    {"health", "[1,2]", false, "must be a JSON object", false},
	    {"health", "\"x\"", false, "must be a JSON object", false},
	    {"health", "{\"transaction\":{}}", false, "'transaction' must be a string or a number",
	     false},
	    /* found by fuzz_api: infinity would be echoed as null */
	    {"health", "{\"transaction\":1e999}", false, "a number too large to echo", false},
	    {"health", "{\"transaction\":\"t\"}", true, "retained requests are not accepted", true},
	    {"restart", "{\"transaction\":\"t\"}", false, "unknown request", true},
	    {"device/remove/now", "{}", false, "unknown request", false},
	    {"", "{}", false, "unknown request", false},
	    {"device/remove", "{\"transaction\":1}", false, "'id' is missing", true},
	    {"device/remove", "{\"id\":5}", false, "'id' must be a string", false},
	    {"device/remove", "{\"id\":null}", false, "'id' must be a string", false},
	    {"device/remove", "{\"id\":\"\"}", false, "'id' must be 1..32 characters", false},
	    {"device/remove", "{\"id\":\"Garage\"}", false, "'id' must be 1..32 characters", false},
	    {"device/remove", "{\"id\":\"a/b\"}", false, "'id' must be 1..32 characters", false},
	    {"device/remove", "{\"id\":\"abcdefghijklmnopqrstuvwxyz0123456\"}", false,
	     "'id' must be 1..32 characters", false},
	    {"log_level", "{}", false, "'value' is missing", false},
	    {"log_level", "{\"value\":3}", false, "'value' must be a string", false},
	    {"log_level", "{\"value\":\"verbose\"}", false, "'value' must be one of", false},
	    {"log_level", "{\"value\":\"DEBUG\"}", false, "'value' must be one of", false},
	};
	struct p2m_api_request req;
	char err[160];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		if (parse(cases[i].verb, cases[i].payload, cases[i].retained, &req, err,
			  sizeof(err)) != -1)
			fail_msg("case %zu (%s %s) was accepted", i, cases[i].verb,
				 cases[i].payload);
		assert_contains(err, cases[i].error);
		assert_int_equal(req.transaction != NULL, cases[i].has_transaction);
		p2m_api_request_clear(&req);
	}
}

static void test_limits(void **state)
{
	struct p2m_api_request req;
	char verb[P2M_API_MAX_VERB + 2], err[160], *big;
	size_t n = P2M_API_MAX_PAYLOAD + 1;

	(void)state;
	/* a payload one byte too large is refused before it is parsed */
	big = malloc(n + 1);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	big[n] = '\0';
	assert_int_equal(p2m_api_parse("health", big, n, false, &req, err, sizeof(err)), -1);
	assert_contains(err, "larger than 4096 bytes");
	p2m_api_request_clear(&req);
	assert_int_equal(p2m_api_parse("health", big + 1, n - 1, false, &req, err, sizeof(err)),
			 -1); /* "   }": at the limit, parsed (and not JSON) */
	assert_contains(err, "not JSON");
	p2m_api_request_clear(&req);
	big[n - 1] = ' ';
	big[n - 2] = '}';
	assert_int_equal(p2m_api_parse("health", big, n - 1, false, &req, err, sizeof(err)), 0);
	p2m_api_request_clear(&req);
	free(big);

	memset(verb, 'v', sizeof(verb) - 1);
	verb[sizeof(verb) - 1] = '\0';
	assert_int_equal(parse(verb, "{}", false, &req, err, sizeof(err)), -1);
	assert_contains(err, "too long");
	p2m_api_request_clear(&req);

	/* a transaction string is echoed up to its limit */
	{
		char payload[P2M_API_MAX_TRANSACTION + 64];
		int k = snprintf(payload, sizeof(payload), "{\"transaction\":\"");

		memset(payload + k, 't', P2M_API_MAX_TRANSACTION + 1);
		strcpy(payload + k + P2M_API_MAX_TRANSACTION + 1, "\"}");
		assert_int_equal(parse("health", payload, false, &req, err, sizeof(err)), -1);
		assert_contains(err, "'transaction' is longer than 128 characters");
		p2m_api_request_clear(&req);
	}
	/* one value and blanks, nothing else */
	assert_int_equal(parse("health", " {} \r\n", false, &req, err, sizeof(err)), 0);
	p2m_api_request_clear(&req);
	assert_int_equal(parse("health", "{} {}", false, &req, err, sizeof(err)), -1);
	assert_contains(err, "not JSON");
	p2m_api_request_clear(&req);
	/* a NUL inside the payload ends nothing early: the JSON is what len covers */
	assert_int_equal(p2m_api_parse("health", "{}\0junk", 7, false, &req, err, sizeof(err)), -1);
	p2m_api_request_clear(&req);
}

static void test_responses(void **state)
{
	struct p2m_api_request req;
	char err[160], *s;
	cJSON *data = cJSON_CreateObject(), *r;

	(void)state;
	assert_int_equal(parse("device/remove", "{\"id\":\"x1\",\"transaction\":\"abc\"}", false,
			       &req, err, sizeof(err)),
			 0);
	cJSON_AddStringToObject(data, "id", req.id);
	r = p2m_api_response(&req, data, NULL);
	s = p2m_json_print(r);
	assert_string_equal(s,
			    "{\"status\":\"ok\",\"data\":{\"id\":\"x1\"},\"transaction\":\"abc\"}");
	cJSON_free(s);
	cJSON_Delete(r);

	r = p2m_api_response(&req, NULL, "configured devices are removed from the configuration");
	s = p2m_json_print(r);
	assert_string_equal(s,
			    "{\"status\":\"error\",\"data\":{},\"error\":\"configured devices are "
			    "removed from the configuration\",\"transaction\":\"abc\"}");
	cJSON_free(s);
	cJSON_Delete(r);
	p2m_api_request_clear(&req);

	/* without a transaction, none is made up */
	assert_int_equal(parse("health", "nope", false, &req, err, sizeof(err)), -1);
	r = p2m_api_response(&req, NULL, err);
	assert_null(cJSON_GetObjectItemCaseSensitive(r, "transaction"));
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(r, "status")->valuestring, "error");
	cJSON_Delete(r);
	p2m_api_request_clear(&req);
	p2m_api_request_clear(&req); /* twice is safe */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_requests),
	    cmocka_unit_test(test_bad_requests),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_responses),
	};

	p2m_json_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
