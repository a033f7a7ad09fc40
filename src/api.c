/* api.c - see api.h. Everything here is input from the broker, so anyone allowed to
 * publish on <base>/bridge/request/# can send anything: every member is checked for its
 * type and size before it is used, and no part of a bad request is acted on. */
#include "panda2mqtt/api.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const verb_names[] = {
    [P2M_API_UNKNOWN] = "?",	       [P2M_API_DEVICE_REMOVE] = "device/remove",
    [P2M_API_RELOAD] = "reload",       [P2M_API_HEALTH] = "health",
    [P2M_API_LOG_LEVEL] = "log_level", [P2M_API_MDNS_BROWSE] = "mdns/browse",
};

const char *p2m_api_verb_name(enum p2m_api_verb verb)
{
	return (size_t)verb < sizeof(verb_names) / sizeof(verb_names[0]) ? verb_names[verb] : "?";
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* The same characters as a [device] id (config.c); found devices' ids keep to them. */
static bool valid_id(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= P2M_ID_MAX && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* A string member of obj, or NULL with err set (missing or another type). */
static const char *string_member(const cJSON *obj, const char *name, char *err, size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (!v) {
		fail(err, errlen, "'%s' is missing", name);
		return NULL;
	}
	if (!cJSON_IsString(v)) {
		fail(err, errlen, "'%s' must be a string", name);
		return NULL;
	}
	return v->valuestring;
}

static int take_transaction(const cJSON *obj, struct p2m_api_request *req, char *err, size_t errlen)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, "transaction");

	if (!t)
		return 0;
	if (cJSON_IsString(t) && strlen(t->valuestring) > P2M_API_MAX_TRANSACTION)
		return fail(err, errlen, "'transaction' is longer than %d characters",
			    P2M_API_MAX_TRANSACTION);
	if (!cJSON_IsString(t) && !cJSON_IsNumber(t))
		return fail(err, errlen, "'transaction' must be a string or a number");
	/* 1e999 reads as infinity, which JSON cannot write back: echoed, it would be null */
	if (cJSON_IsNumber(t) && !isfinite(t->valuedouble))
		return fail(err, errlen, "'transaction' is a number too large to echo");
	req->transaction = cJSON_Duplicate(t, false);
	return 0;
}

static enum p2m_api_verb verb_of(const char *verb)
{
	for (size_t i = P2M_API_UNKNOWN + 1; i < sizeof(verb_names) / sizeof(verb_names[0]); i++)
		if (strcmp(verb, verb_names[i]) == 0)
			return (enum p2m_api_verb)i;
	return P2M_API_UNKNOWN;
}

static int take_arguments(const cJSON *obj, struct p2m_api_request *req, char *err, size_t errlen)
{
	const char *s;

	switch (req->verb) {
	case P2M_API_DEVICE_REMOVE:
		s = string_member(obj, "id", err, errlen);
		if (!s)
			return -1;
		if (!valid_id(s))
			return fail(err, errlen,
				    "'id' must be 1..%d characters from a-z, 0-9, '_' and '-'",
				    P2M_ID_MAX);
		memcpy(req->id, s, strlen(s) + 1);
		return 0;
	case P2M_API_LOG_LEVEL:
		s = string_member(obj, "value", err, errlen);
		if (!s)
			return -1;
		if (!p2m_log_level_parse(s, &req->level))
			return fail(err, errlen,
				    "'value' must be one of error, warning, info, debug");
		return 0;
	case P2M_API_RELOAD:
	case P2M_API_HEALTH:
	case P2M_API_MDNS_BROWSE:
	case P2M_API_UNKNOWN:
		break;
	}
	return 0;
}

int p2m_api_parse(const char *verb, const char *payload, size_t len, bool retained,
		  struct p2m_api_request *req, char *err, size_t errlen)
{
	const char *end = NULL;
	cJSON *obj;
	int rc;

	memset(req, 0, sizeof(*req));
	req->level = P2M_LOG_INFO;
	if (strlen(verb) > P2M_API_MAX_VERB)
		return fail(err, errlen, "the request's topic is too long");
	if (len > P2M_API_MAX_PAYLOAD)
		return fail(err, errlen, "the payload is larger than %d bytes",
			    P2M_API_MAX_PAYLOAD);
	obj = cJSON_ParseWithLengthOpts(payload, len, &end, false);
	/* one JSON value and nothing after it but blanks */
	while (obj && end < payload + len &&
	       (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
		end++;
	if (obj && end != payload + len) {
		cJSON_Delete(obj);
		obj = NULL;
	}
	if (!obj)
		return fail(err, errlen, "the payload is not JSON (send an object, e.g. {})");
	if (!cJSON_IsObject(obj)) {
		cJSON_Delete(obj);
		return fail(err, errlen, "the payload must be a JSON object");
	}
	rc = take_transaction(obj, req, err, errlen);
	if (rc == 0 && retained)
		rc = fail(err, errlen,
			  "retained requests are not accepted; publish without the retain flag");
	if (rc == 0) {
		req->verb = verb_of(verb);
		if (req->verb == P2M_API_UNKNOWN)
			rc = fail(err, errlen,
				  "unknown request; known: device/remove, health, log_level, "
				  "mdns/browse, reload");
	}
	if (rc == 0)
		rc = take_arguments(obj, req, err, errlen);
	cJSON_Delete(obj);
	return rc;
}

void p2m_api_request_clear(struct p2m_api_request *req)
{
	cJSON_Delete(req->transaction);
	req->transaction = NULL;
}

cJSON *p2m_api_response(const struct p2m_api_request *req, cJSON *data, const char *error)
{
	cJSON *r = cJSON_CreateObject();

	cJSON_AddStringToObject(r, "status", error ? "error" : "ok");
	cJSON_AddItemToObject(r, "data", data ? data : cJSON_CreateObject());
	if (error)
		cJSON_AddStringToObject(r, "error", error);
	if (req && req->transaction)
		cJSON_AddItemToObject(r, "transaction", cJSON_Duplicate(req->transaction, false));
	return r;
}
