/* fuzz_moonraker.c - libFuzzer target: one WebSocket message to the virtual Moonraker
 * (moonraker_rpc.h), as moonraker.c hands it over: at most P2M_MOONRAKER_MAX_REQUEST
 * bytes (a longer one closes the client before it gets here, but the function is given
 * longer ones too).
 *
 * Input layout: byte 0 picks what is known of the printer (the view: nothing yet;
 * printing; paused with only a bed; complete at the extremes a source accepts; an error,
 * which the firmware knows as cancelled; cancelled), and whether there is a hostname;
 * the rest is the message. So "1" + tests/fixtures/panda_breath/moonraker-request-v1.0.3.json
 * is what the Panda Breath polls every second.
 * Checked, per JSON-RPC 2.0 and moonraker_rpc.h:
 *  - no reply only for a notification (a request object without "id");
 *  - a reply is one JSON object: "jsonrpc":"2.0", exactly one of "result" and "error"
 *    (with one of the four codes and a message), and "id": the request's when it had a
 *    valid one (a number or a string) and was read as a request, else null (also for
 *    a number JSON cannot write: 1e999 reads as infinity);
 *  - a reply is never more than a constant plus six times the request (its id is the
 *    only thing repeated; JSON escapes take up to six bytes a byte): no amplification;
 *  - printer.objects.query (and subscribe) answers only objects that exist, each once,
 *    with only the attributes asked for (all when asked with null), and the values the
 *    view holds: the Panda Breath heats in Auto mode on heater_bed.temperature, and must
 *    read 0 when the bed is unknown;
 *  - GET /printer/info's body is {"result": printer.info}. */
#include "fuzz_common.h"

#include "panda2mqtt/moonraker_rpc.h"

#include <math.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	return 0;
}

static const struct p2m_printer_status statuses[] = {
    {0},
    {.has_bed = true,
     .has_bed_target = true,
     .has_nozzle = true,
     .has_nozzle_target = true,
     .bed = 60,
     .bed_target = 60,
     .nozzle = 215.5,
     .nozzle_target = 220,
     .state = P2M_PRINT_PRINTING,
     .progress = 0.42},
    {.has_bed = true, .bed = 85, .state = P2M_PRINT_PAUSED},
    {.has_bed = true,
     .has_bed_target = true,
     .has_nozzle = true,
     .bed = -50,
     .bed_target = 1000,
     .nozzle = 1000,
     .state = P2M_PRINT_COMPLETE,
     .progress = 1},
    {.has_nozzle = true, .nozzle = 169.9, .state = P2M_PRINT_ERROR},
    {.state = P2M_PRINT_CANCELLED, .progress = 0.1},
};
#define N_STATUSES (sizeof(statuses) / sizeof(statuses[0]))

static const char *const objects[] = {"webhooks", "print_stats", "virtual_sdcard", "extruder",
				      "heater_bed"};

static bool known_object(const char *name)
{
	for (size_t i = 0; i < sizeof(objects) / sizeof(objects[0]); i++)
		if (strcmp(objects[i], name) == 0)
			return true;
	return false;
}

static double number(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	if (!cJSON_IsNumber(v))
		fuzz_fail("moonraker: %s is not a number", name);
	return v->valuedouble;
}

/* What a query answers of the objects the view holds values for. */
static void check_status_values(const cJSON *status, const struct p2m_moonraker_view *v)
{
	const struct p2m_printer_status *s = v->status;
	const cJSON *bed = cJSON_GetObjectItemCaseSensitive(status, "heater_bed");
	const cJSON *ext = cJSON_GetObjectItemCaseSensitive(status, "extruder");
	const cJSON *ps = cJSON_GetObjectItemCaseSensitive(status, "print_stats");
	const cJSON *wh = cJSON_GetObjectItemCaseSensitive(status, "webhooks");
	const cJSON *x;

	if (cJSON_GetObjectItemCaseSensitive(bed, "temperature") &&
	    number(bed, "temperature") != (s->has_bed ? s->bed : 0))
		fuzz_fail("moonraker: heater_bed.temperature is not the bed's (0 when unknown)");
	if (cJSON_GetObjectItemCaseSensitive(bed, "target") &&
	    number(bed, "target") != (s->has_bed_target ? s->bed_target : 0))
		fuzz_fail("moonraker: heater_bed.target is wrong");
	if (cJSON_GetObjectItemCaseSensitive(ext, "temperature") &&
	    number(ext, "temperature") != (s->has_nozzle ? s->nozzle : 0))
		fuzz_fail("moonraker: extruder.temperature is wrong");
	x = cJSON_GetObjectItemCaseSensitive(ps, "state");
	if (x &&
	    !(cJSON_IsString(x) &&
	      (strcmp(x->valuestring, "standby") == 0 || strcmp(x->valuestring, "printing") == 0 ||
	       strcmp(x->valuestring, "paused") == 0 || strcmp(x->valuestring, "complete") == 0 ||
	       strcmp(x->valuestring, "cancelled") == 0)))
		fuzz_fail("moonraker: print_stats.state is not one the firmware knows");
	x = cJSON_GetObjectItemCaseSensitive(wh, "state");
	if (x &&
	    !(cJSON_IsString(x) && strcmp(x->valuestring, v->known ? "ready" : "startup") == 0))
		fuzz_fail("moonraker: webhooks.state does not say whether anything is known");
}

/* The result of printer.objects.query for params. */
static void check_query(const cJSON *params, const cJSON *result,
			const struct p2m_moonraker_view *v)
{
	const cJSON *want = cJSON_GetObjectItemCaseSensitive(params, "objects");
	const cJSON *status = cJSON_GetObjectItemCaseSensitive(result, "status"), *o, *a;

	if (!cJSON_IsObject(status) || number(result, "eventtime") != v->eventtime)
		fuzz_fail("moonraker: a query result without status or eventtime");
	cJSON_ArrayForEach(o, status)
	{
		const cJSON *asked = cJSON_GetObjectItemCaseSensitive(want, o->string);

		if (!known_object(o->string) || !asked)
			fuzz_fail("moonraker: the answer holds '%s', which does not exist or "
				  "was not asked for",
				  o->string);
		if (!cJSON_IsObject(o))
			fuzz_fail("moonraker: %s is not an object", o->string);
		for (const cJSON *later = o->next; later; later = later->next)
			if (strcmp(later->string, o->string) == 0)
				fuzz_fail("moonraker: %s answered twice", o->string);
		if (!cJSON_IsArray(asked))
			continue;
		cJSON_ArrayForEach(a, o)
		{
			bool named = false;
			const cJSON *n;

			cJSON_ArrayForEach(n, asked)
			{
				named = named || (cJSON_IsString(n) &&
						  strcmp(n->valuestring, a->string) == 0);
			}
			if (!named)
				fuzz_fail("moonraker: %s.%s was not asked for", o->string,
					  a->string);
		}
	}
	check_status_values(status, v);
}

static bool valid_id(const cJSON *id)
{
	return cJSON_IsNumber(id) || cJSON_IsString(id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct p2m_moonraker_view v;
	const char *msg = (const char *)data + 1;
	size_t len;
	char *out;
	cJSON *req, *reply, *id, *result, *error;

	if (size < 1)
		return 0;
	len = size - 1;
	v = (struct p2m_moonraker_view){.status = &statuses[data[0] % N_STATUSES],
					.known = data[0] % N_STATUSES != 0,
					.eventtime = 12345.678,
					.hostname =
					    (data[0] / N_STATUSES) % 2 ? "pandabreath-gw" : NULL,
					.websocket_count = 2,
					.connection_id = 77};
	out = p2m_moonraker_rpc(msg, len, &v);
	req = len <= P2M_MOONRAKER_MAX_REQUEST ? cJSON_ParseWithLength(msg, len) : NULL;
	if (!out) {
		if (!cJSON_IsObject(req) || cJSON_GetObjectItemCaseSensitive(req, "id"))
			fuzz_fail("moonraker: no reply to what is not a notification");
		cJSON_Delete(req);
		return 0;
	}
	if (strlen(out) > 4096 + 6 * len)
		fuzz_fail("moonraker: a %zu-byte reply to %zu bytes", strlen(out), len);
	reply = cJSON_Parse(out);
	if (!cJSON_IsObject(reply))
		fuzz_fail("moonraker: the reply is not a JSON object: %.200s", out);
	result = cJSON_GetObjectItemCaseSensitive(reply, "result");
	error = cJSON_GetObjectItemCaseSensitive(reply, "error");
	id = cJSON_GetObjectItemCaseSensitive(reply, "id");
	if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(reply, "jsonrpc")) ||
	    strcmp(cJSON_GetObjectItemCaseSensitive(reply, "jsonrpc")->valuestring, "2.0") != 0 ||
	    !id || !result == !error)
		fuzz_fail("moonraker: not a JSON-RPC 2.0 reply: %.200s", out);
	if (error) {
		double code = number(error, "code");

		if (code != -32700 && code != -32600 && code != -32601 && code != -32602)
			fuzz_fail("moonraker: error code %g", code);
		if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(error, "message")))
			fuzz_fail("moonraker: an error without a message");
	}
	if (cJSON_IsObject(req)) {
		const cJSON *rid = cJSON_GetObjectItemCaseSensitive(req, "id");
		const cJSON *method = cJSON_GetObjectItemCaseSensitive(req, "method");
		bool nested = p2m_json_depth(req, 8) > 8;

		/* an id JSON cannot write (1e999 reads as infinity) can only come back null */
		if (!nested && valid_id(rid) &&
		    !(cJSON_IsNumber(rid) && !isfinite(rid->valuedouble)
			  ? cJSON_IsNull(id)
			  : cJSON_Compare(rid, id, true)))
			fuzz_fail("moonraker: the reply's id is not the request's");
		if (!valid_id(rid) && !cJSON_IsNull(id))
			fuzz_fail("moonraker: a reply's id that the request did not have");
		if (result && cJSON_IsString(method) &&
		    (strcmp(method->valuestring, "printer.objects.query") == 0 ||
		     strcmp(method->valuestring, "printer.objects.subscribe") == 0))
			check_query(cJSON_GetObjectItemCaseSensitive(req, "params"), result, &v);
	} else if (!cJSON_IsNull(id)) {
		fuzz_fail("moonraker: a reply to no request object has an id");
	}
	cJSON_Delete(reply);
	cJSON_Delete(req);
	cJSON_free(out);

	out = p2m_moonraker_http_printer_info(&v);
	reply = cJSON_Parse(out);
	if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(reply, "result")))
		fuzz_fail("moonraker: GET /printer/info is not {\"result\":{...}}");
	cJSON_Delete(reply);
	cJSON_free(out);
	return 0;
}
