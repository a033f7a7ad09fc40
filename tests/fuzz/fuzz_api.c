/* fuzz_api.c - libFuzzer target: one request to the gateway's request/response API
 * (api.h), as bridge_api.c hands it over: the verb (the topic after bridge/request/),
 * the payload and the retain flag, all from the broker.
 *
 * Input layout: byte 0's low bit is the retain flag; then the verb up to the first NUL
 * (at most P2M_API_MAX_VERB + 8 bytes are taken: a longer topic level is cut by the
 * subscription's own bound in bridge_api.c, but the parser is given longer ones too);
 * the rest is the payload. So "\0health\0{\"transaction\":1}" is a health request.
 * Checked, per api.h:
 *  - a refused request always says why; an accepted one is a known verb, never retained,
 *    its payload at most P2M_API_MAX_PAYLOAD bytes and a JSON object;
 *  - device/remove gives an id a [device] id could be (lower-case letters, digits, '_'
 *    and '-', 1..P2M_ID_MAX); log_level one of the four levels;
 *  - the transaction echoed is the request's own: a string of at most
 *    P2M_API_MAX_TRANSACTION bytes or a finite number, else none;
 *  - the response (ok or error) is one JSON object with "status" "ok" or "error", an
 *    "error" string exactly when refused, the transaction as read, and printable: never
 *    more than a constant plus the transaction and the reason (no amplification). */
#include "fuzz_common.h"

#include "panda2mqtt/api.h"

#include <math.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	return 0;
}

static bool id_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= P2M_ID_MAX && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static void check_transaction(const cJSON *t)
{
	if (!t)
		return;
	if (cJSON_IsString(t)) {
		if (strlen(t->valuestring) > P2M_API_MAX_TRANSACTION)
			fuzz_fail("api: a transaction of %zu bytes is echoed",
				  strlen(t->valuestring));
	} else if (!cJSON_IsNumber(t) || !isfinite(t->valuedouble)) {
		fuzz_fail("api: a transaction that is neither a string nor a finite number");
	}
}

static void check_response(const struct p2m_api_request *req, const char *error)
{
	cJSON *resp = p2m_api_response(req, NULL, error), *back;
	const cJSON *status, *err, *t;
	char *text = p2m_json_print(resp);
	size_t bound = 256 + (error ? 6 * strlen(error) : 0) + 6 * P2M_API_MAX_TRANSACTION;

	if (strlen(text) > bound)
		fuzz_fail("api: a response of %zu bytes", strlen(text));
	back = cJSON_Parse(text);
	if (!cJSON_IsObject(back))
		fuzz_fail("api: the response is not one JSON object: %.200s", text);
	status = cJSON_GetObjectItemCaseSensitive(back, "status");
	err = cJSON_GetObjectItemCaseSensitive(back, "error");
	if (!cJSON_IsString(status) || strcmp(status->valuestring, error ? "error" : "ok") != 0)
		fuzz_fail("api: status is not '%s': %.200s", error ? "error" : "ok", text);
	if (error ? !cJSON_IsString(err) : err != NULL)
		fuzz_fail("api: 'error' does not say whether the request was refused: %.200s",
			  text);
	t = cJSON_GetObjectItemCaseSensitive(back, "transaction");
	if ((t != NULL) != (req->transaction != NULL))
		fuzz_fail("api: the transaction is not echoed as read: %.200s", text);
	check_transaction(t);
	cJSON_Delete(back);
	cJSON_free(text);
	cJSON_Delete(resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char verb[P2M_API_MAX_VERB + 9], err[256] = "";
	struct p2m_api_request req;
	size_t vlen = 0, off;
	bool retained;
	const char *payload;
	int rc;

	if (size < 1)
		return 0;
	retained = data[0] & 1;
	off = 1;
	while (off + vlen < size && data[off + vlen] && vlen < sizeof(verb) - 1)
		vlen++;
	memcpy(verb, data + off, vlen);
	verb[vlen] = '\0';
	off += vlen;
	if (off < size && data[off] == '\0')
		off++;
	payload = (const char *)data + off;

	memset(&req, 0, sizeof(req));
	rc = p2m_api_parse(verb, payload, size - off, retained, &req, err, sizeof(err));
	check_transaction(req.transaction);
	if (rc != 0) {
		if (!err[0])
			fuzz_fail("api: a request refused without a reason");
		check_response(&req, err);
	} else {
		if (req.verb == P2M_API_UNKNOWN || strcmp(p2m_api_verb_name(req.verb), verb) != 0)
			fuzz_fail("api: '%s' taken as %s", verb, p2m_api_verb_name(req.verb));
		if (retained)
			fuzz_fail("api: a retained request taken");
		if (size - off > P2M_API_MAX_PAYLOAD)
			fuzz_fail("api: a payload of %zu bytes taken", size - off);
		if (req.verb == P2M_API_DEVICE_REMOVE && !id_ok(req.id))
			fuzz_fail("api: device/remove of '%s'", req.id);
		if (req.verb == P2M_API_LOG_LEVEL &&
		    ((int)req.level < (int)P2M_LOG_ERR || (int)req.level > (int)P2M_LOG_DEBUG))
			fuzz_fail("api: log level %d", (int)req.level);
		check_response(&req, NULL);
	}
	p2m_api_request_clear(&req);
	return 0;
}
