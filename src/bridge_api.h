/* bridge_api.h - the request/response API on MQTT (api.h has the protocol):
 * <base>/bridge/request/<verb> answered on <base>/bridge/response/<verb>.
 *
 * Owns: the subscription, answering every request (an error response for a bad one,
 * with a rate-limited log line), and carrying out device/remove, health, log_level and
 * mdns/browse; reload through the gateway.
 * Does not own: checking a request (api.c), the devices (device_registry.c), reading
 * the configuration again (gateway.c). */
#ifndef PANDA2MQTT_BRIDGE_API_H
#define PANDA2MQTT_BRIDGE_API_H

#include "bridge.h"
#include "device_registry.h"
#include "mqtt.h"
#include "panda2mqtt/config.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

struct p2m_bridge_api;

struct p2m_bridge_api_env {
	const struct p2m_config *cfg;
	struct p2m_mqtt *mqtt;
	struct p2m_registry *reg;
	struct p2m_bridge *bridge;
	/* Read the configuration again and apply it soon: 0, with *data (may stay NULL) for
	 * the response, or -1 with why in err (the running configuration stays). */
	int (*reload)(void *ud, cJSON **data, char *err, size_t errlen);
	void *ud;
};

/* Subscribes on env->mqtt (before p2m_mqtt_start); env is copied. */
struct p2m_bridge_api *p2m_bridge_api_new(const struct p2m_bridge_api_env *env);
void p2m_bridge_api_free(struct p2m_bridge_api *api);

/* A message from the broker: true when it was a request (it has been answered). */
bool p2m_bridge_api_on_message(struct p2m_bridge_api *api, const char *topic, const char *payload,
			       size_t len, bool retained);

#endif
