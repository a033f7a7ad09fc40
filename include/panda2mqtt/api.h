/* api.h - requests to the gateway over MQTT, as zigbee2mqtt takes them: a JSON payload on
 * <base>/bridge/request/<verb>, answered on <base>/bridge/response/<verb> with
 * {"status":"ok"|"error","data":{...},"error":"why","transaction":T}, T being the
 * request's own "transaction" (a string or a number) when it gave one.
 *
 * Owns: the verbs there are, checking a request (size, JSON, member types, retain flag)
 * and the shape of a response.
 * Does not own: carrying a request out (bridge_api.c), or MQTT. */
#ifndef PANDA2MQTT_API_H
#define PANDA2MQTT_API_H

#include "panda2mqtt/config.h"
#include "panda2mqtt/log.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

enum p2m_api_verb {
	P2M_API_UNKNOWN,
	P2M_API_DEVICE_REMOVE, /* "device/remove" {"id":"..."} */
	P2M_API_RELOAD,	       /* "reload" {} */
	P2M_API_HEALTH,	       /* "health" {} */
	P2M_API_LOG_LEVEL,     /* "log_level" {"value":"error|warning|info|debug"} */
	P2M_API_MDNS_BROWSE,   /* "mdns/browse" {}: browse DNS-SD again from scratch */
};

/* A request is a few dozen bytes; more is not a request. */
#define P2M_API_MAX_PAYLOAD 4096
/* The longest verb answered (the topic level(s) after bridge/request/). */
#define P2M_API_MAX_VERB 64
/* The longest transaction string echoed. */
#define P2M_API_MAX_TRANSACTION 128

struct p2m_api_request {
	enum p2m_api_verb verb;
	char id[P2M_ID_MAX + 1];  /* device/remove */
	enum p2m_log_level level; /* log_level */
	cJSON *transaction;	  /* to echo; NULL: none. Owned: p2m_api_request_clear */
};

/* The verb's name ("device/remove"), or "?". */
const char *p2m_api_verb_name(enum p2m_api_verb verb);

/* Check one request: its verb (the topic after bridge/request/, NUL-terminated), its
 * payload and whether it came retained (a retained request would be carried out again
 * at every reconnect: refused, like retained commands). 0, or -1 with the reason in err
 * (for the error response). req->transaction is set whenever it could be read, on an
 * error too, so that the error response carries it. Clear req afterwards either way. */
int p2m_api_parse(const char *verb, const char *payload, size_t len, bool retained,
		  struct p2m_api_request *req, char *err, size_t errlen);
void p2m_api_request_clear(struct p2m_api_request *req);

/* The response to req: "ok" with data when error is NULL, else "error" with it. Takes
 * data (NULL: {}). Caller frees with cJSON_Delete. */
cJSON *p2m_api_response(const struct p2m_api_request *req, cJSON *data, const char *error);

#endif
