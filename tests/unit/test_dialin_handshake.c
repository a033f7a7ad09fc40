/* Unit tests: what the [dialin] endpoint decides before a connection is a device
 * (dialin_handshake.c): the token, the handshake and the id it gives, the allow list. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "panda2mqtt/dialin_handshake.h"
#include "panda2mqtt/families.h"

#include <string.h>

#define TOKEN "0123456789abcdef-token"

static void test_secret_equal(void **st)
{
	(void)st;
	assert_true(p2m_secret_equal(TOKEN, TOKEN));
	assert_true(p2m_secret_equal("", ""));
	assert_false(p2m_secret_equal("", TOKEN));
	assert_false(p2m_secret_equal(TOKEN, ""));
	assert_false(p2m_secret_equal("0123456789abcdef-tokeN", TOKEN));
	assert_false(p2m_secret_equal(TOKEN "x", TOKEN));
	assert_false(p2m_secret_equal("0123456789abcdef-toke", TOKEN));
	/* a repeat of the secret is longer, hence different */
	assert_false(p2m_secret_equal(TOKEN TOKEN, TOKEN));
}

static void test_token(void **st)
{
	(void)st;
	/* no token configured: everyone */
	assert_true(p2m_dialin_token_ok(NULL, NULL, NULL));
	assert_true(p2m_dialin_token_ok(NULL, "wrong", "Bearer wrong"));
	/* the URL argument decides when present, even against a right header */
	assert_true(p2m_dialin_token_ok(TOKEN, TOKEN, NULL));
	assert_false(p2m_dialin_token_ok(TOKEN, "wrong", "Bearer " TOKEN));
	assert_false(p2m_dialin_token_ok(TOKEN, "", "Bearer " TOKEN));
	/* else the header, as "Bearer <token>" */
	assert_true(p2m_dialin_token_ok(TOKEN, NULL, "Bearer " TOKEN));
	assert_false(p2m_dialin_token_ok(TOKEN, NULL, "Basic " TOKEN));
	assert_false(p2m_dialin_token_ok(TOKEN, NULL, TOKEN));
	assert_false(p2m_dialin_token_ok(TOKEN, NULL, "Bearer " TOKEN " "));
	assert_false(p2m_dialin_token_ok(TOKEN, NULL, "Bearer "));
	assert_false(p2m_dialin_token_ok(TOKEN, NULL, NULL));
}

static enum p2m_handshake identify(const char *text, const struct p2m_driver **drv, char *id)
{
	return p2m_dialin_identify(text, strlen(text), drv, id, P2M_ID_MAX + 1);
}

static void test_identify(void **st)
{
	const struct p2m_driver *drv;
	char id[P2M_ID_MAX + 1];

	(void)st;
	assert_int_equal(
	    identify("{\"cmd\":\"device_handshake\",\"device_id\":\"A1:B2:C3:D4:E5:F6\","
		     "\"firmware_version\":\"1.0.1\"}",
		     &drv, id),
	    P2M_HANDSHAKE_OK);
	assert_ptr_equal(drv, &p2m_driver_ptalk);
	assert_string_equal(id, "ptalk_a1b2c3d4e5f6");

	/* not JSON; JSON but no handshake; a family the gateway dials (not one that dials in) */
	assert_int_equal(identify("{\"cmd\":\"device_hands", &drv, id), P2M_HANDSHAKE_UNKNOWN);
	assert_null(drv);
	assert_int_equal(identify("[1,2]", &drv, id), P2M_HANDSHAKE_UNKNOWN);
	assert_int_equal(
	    identify("{\"settings\":{\"fw_version\":\"V1.0.3\",\"work_on\":true}}", &drv, id),
	    P2M_HANDSHAKE_UNKNOWN);
	assert_null(drv);
	assert_string_equal(id, "");
}

/* A device id the family cannot use leaves no part of one behind: the refusal's log line
 * and its once-a-minute memory would otherwise carry a made-up id ("ptalk_a1"). */
static void test_identify_no_id(void **st)
{
	const struct p2m_driver *drv;
	char id[P2M_ID_MAX + 1];

	(void)st;
	assert_int_equal(
	    identify("{\"cmd\":\"device_handshake\",\"device_id\":\"A1 B2\"}", &drv, id),
	    P2M_HANDSHAKE_NO_ID);
	assert_ptr_equal(drv, &p2m_driver_ptalk);
	assert_string_equal(id, "");
	assert_int_equal(identify("{\"cmd\":\"device_handshake\",\"device_id\":\"::\"}", &drv, id),
			 P2M_HANDSHAKE_NO_ID);
	assert_string_equal(id, "");
}

static void test_allowed(void **st)
{
	char *list[] = {"A1:B2:C3:D4:E5:F6", "ptalk_0000000000aa"};
	struct p2m_dialin_conf none = {0}, some = {.allow = list, .n_allow = 2};

	(void)st;
	assert_true(p2m_dialin_allowed(&none, &p2m_driver_ptalk, "ptalk_ffffffffffff"));
	assert_true(p2m_dialin_allowed(&some, &p2m_driver_ptalk, "ptalk_a1b2c3d4e5f6"));
	assert_true(p2m_dialin_allowed(&some, &p2m_driver_ptalk, "ptalk_0000000000aa"));
	assert_false(p2m_dialin_allowed(&some, &p2m_driver_ptalk, "ptalk_a1b2c3d4e5f7"));
	assert_false(p2m_dialin_allowed(&some, &p2m_driver_ptalk, "ptalk_ffffffffffff"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_secret_equal), cmocka_unit_test(test_token),
	    cmocka_unit_test(test_identify),	 cmocka_unit_test(test_identify_no_id),
	    cmocka_unit_test(test_allowed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
