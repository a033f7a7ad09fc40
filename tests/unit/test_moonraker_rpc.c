/* test_moonraker_rpc.c - the virtual Moonraker's answers (moonraker_rpc.c), pure: the
 * JSON-RPC 2.0 methods the Panda Breath's Klipper link calls (printer.objects.query and
 * .subscribe, printer.objects.list), what it answers before anything is known, every
 * error class, oversized requests, and GET /printer/info. The firmware's own literal
 * request: test_firmware_evidence.c. */
#include "panda2mqtt/log.h"
#include "panda2mqtt/moonraker_rpc.h"
#include "panda2mqtt/printer_source.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void assert_contains(const char *s, const char *part)
{
	if (!strstr(s, part))
		fail_msg("'%s' does not contain '%s'", s, part);
}

static cJSON *rpc(const char *req, const struct p2m_moonraker_view *v)
{
	char *out = p2m_moonraker_rpc(req, strlen(req), v);
	cJSON *r = out ? cJSON_Parse(out) : NULL;

	cJSON_free(out);
	return r;
}

static int error_code(const cJSON *r)
{
	return cJSON_GetObjectItem(cJSON_GetObjectItem(r, "error"), "code")->valueint;
}

static void test_rpc(void **state)
{
	struct p2m_printer_status st = {.has_bed = true,
					.bed = 65.5,
					.has_bed_target = true,
					.bed_target = 70,
					.state = P2M_PRINT_PAUSED};
	struct p2m_moonraker_view v = {.status = &st, .known = true, .eventtime = 12.5};
	const cJSON *status;
	char *big;
	cJSON *r;

	(void)state;
	r = rpc("{\"jsonrpc\":\"2.0\",\"method\":\"printer.objects.query\",\"params\":{\"objects\":"
		"{\"heater_bed\":[\"temperature\",\"nope\"],\"print_stats\":null,\"webhooks\":null,"
		"\"gcode_move\":null}},\"id\":3}",
		&v);
	assert_int_equal(cJSON_GetObjectItem(r, "id")->valueint, 3);
	assert_true(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(r, "result"), "eventtime")->valuedouble ==
	    12.5);
	status = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "result"), "status");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(status, "heater_bed")), 1);
	assert_true(cJSON_GetObjectItem(cJSON_GetObjectItem(status, "heater_bed"), "temperature")
			->valuedouble == 65.5);
	assert_string_equal(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(status, "print_stats"), "state")->valuestring,
	    "paused");
	assert_string_equal(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(status, "webhooks"), "state")->valuestring,
	    "ready");
	assert_null(cJSON_GetObjectItem(status, "gcode_move"));
	cJSON_Delete(r);

	/* nothing known yet: startup, and the bed reads 0 (below any Auto threshold) */
	v.known = false;
	st.has_bed = false;
	r = rpc("{\"jsonrpc\":\"2.0\",\"method\":\"printer.objects.subscribe\",\"params\":{"
		"\"objects\":{\"heater_bed\":null,\"webhooks\":[\"state\"]}},\"id\":\"s\"}",
		&v);
	status = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "result"), "status");
	assert_true(cJSON_GetObjectItem(cJSON_GetObjectItem(status, "heater_bed"), "temperature")
			->valuedouble == 0);
	assert_string_equal(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(status, "webhooks"), "state")->valuestring,
	    "startup");
	cJSON_Delete(r);

	r = rpc("{\"jsonrpc\":\"2.0\",\"method\":\"machine.reboot\",\"id\":1}", &v);
	assert_int_equal(error_code(r), -32601);
	cJSON_Delete(r);
	r = rpc("{\"jsonrpc\":\"2.0\",\"method\":\"printer.info\"}", &v); /* notification */
	assert_null(r);
	r = rpc("{", &v);
	assert_int_equal(error_code(r), -32700);
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(r, "id")));
	cJSON_Delete(r);
	r = rpc("42", &v);
	assert_int_equal(error_code(r), -32600);
	cJSON_Delete(r);
	r = rpc("{\"method\":7,\"id\":1}", &v);
	assert_int_equal(error_code(r), -32600);
	cJSON_Delete(r);
	r = rpc("{\"method\":\"printer.info\",\"id\":{}}", &v);
	assert_int_equal(error_code(r), -32600);
	cJSON_Delete(r);
	r = rpc("{\"method\":\"printer.objects.query\",\"params\":[1],\"id\":1}", &v);
	assert_int_equal(error_code(r), -32602);
	cJSON_Delete(r);
	big = malloc(P2M_MOONRAKER_MAX_REQUEST + 2);
	memset(big, ' ', P2M_MOONRAKER_MAX_REQUEST + 1);
	big[P2M_MOONRAKER_MAX_REQUEST + 1] = '\0';
	r = rpc(big, &v);
	assert_int_equal(error_code(r), -32600);
	cJSON_Delete(r);
	free(big);

	r = rpc("{\"jsonrpc\":\"2.0\",\"method\":\"printer.objects.list\",\"id\":1}", &v);
	assert_int_equal(
	    cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "result"), "objects")),
	    5);
	cJSON_Delete(r);
	{
		char *info = p2m_moonraker_http_printer_info(&v);

		assert_contains(info, "{\"result\":{\"state\":\"startup\"");
		cJSON_free(info);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rpc),
	};

	p2m_log_set_level(P2M_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
