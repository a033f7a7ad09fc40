/* mqtt.h - the broker session.
 *
 * Owns: connecting (user/password, TLS), the Will on <base>/bridge/state, reconnects
 * with backoff whenever the broker goes away, subscriptions (re-made on every
 * connect), and a clean shutdown that publishes "offline" and flushes.
 * Does not own: what is published or what messages mean (gateway.c). */
#ifndef PANDA2MQTT_MQTT_H
#define PANDA2MQTT_MQTT_H

#include "panda2mqtt/config.h"

#include <stdbool.h>
#include <stddef.h>

struct p2m_mqtt;

struct p2m_mqtt_callbacks {
	/* Connected (again): subscriptions are made; republish everything retained. */
	void (*on_connect)(void *ud);
	void (*on_message)(void *ud, const char *topic, const char *payload, size_t len,
			   bool retained);
};

struct p2m_mqtt *p2m_mqtt_new(const struct p2m_mqtt_conf *conf, const struct p2m_mqtt_callbacks *cb,
			      void *ud);

/* Subscribe now and after every reconnect. Call before p2m_mqtt_start. */
void p2m_mqtt_add_subscription(struct p2m_mqtt *m, const char *pattern);

/* Start connecting (non-blocking); failures are retried with backoff. */
int p2m_mqtt_start(struct p2m_mqtt *m);

bool p2m_mqtt_connected(const struct p2m_mqtt *m);

/* QoS 1. Returns -1 when not connected: callers republish from on_connect. */
int p2m_mqtt_publish(struct p2m_mqtt *m, const char *topic, const char *payload, bool retain);

/* Publish <base>/bridge/state "online" again (retained), as on every connect: for a
 * Home Assistant that cannot have seen the retained copy (docs/BROKERS.md). */
void p2m_mqtt_republish_online(struct p2m_mqtt *m);

/* Publish <base>/bridge/state offline, disconnect, and run the loop until that is sent
 * (at most timeout_ms). */
void p2m_mqtt_shutdown(struct p2m_mqtt *m, int timeout_ms);

/* After p2m_mqtt_shutdown, when the settings it points to have changed (a reload): a new
 * client with them (same subscriptions) starts connecting. -1 (logged) when the client
 * cannot be made (TLS set-up). */
int p2m_mqtt_renew(struct p2m_mqtt *m);

void p2m_mqtt_free(struct p2m_mqtt *m);

#endif
