/* discovery.h - devices found on the network, and .local names.
 *
 * Owns: turning DNS-SD services (mdns.c) into confirmed devices. Each candidate service
 * is probed once: a short-lived ws://addr:port/ws connection whose first frame must be
 * a snapshot that one of the drivers recognises. A candidate that answers but is not a
 * device is rejected quietly and not probed again until its record changes; one that
 * cannot be reached is tried again with backoff. Also passes .local lookups through.
 * Does not own: the device list or ids (registry.c), Avahi itself (mdns.c). */
#ifndef PANDA2MQTT_DISCOVERY_H
#define PANDA2MQTT_DISCOVERY_H

#include "panda2mqtt/driver.h"

#include <cjson/cJSON.h>
#include <libwebsockets.h>
#include <stdbool.h>

struct p2m_discovery;

struct p2m_found {
	const struct p2m_driver *driver;
	const char *service; /* DNS-SD instance name, e.g. "PandaBreath" */
	const char *addr;    /* IPv4 literal */
	int port;
	const cJSON *snapshot; /* the first frame the candidate sent */
};

struct p2m_discovery_callbacks {
	/* A candidate proved to be a device (again, after its record changed). */
	void (*on_found)(void *ud, const struct p2m_found *f);
	/* An answer to p2m_discovery_resolve_host; addr NULL when it did not resolve. */
	void (*on_host)(void *ud, const char *host, const char *addr);
};

/* browse false: only .local names are resolved. */
struct p2m_discovery *p2m_discovery_new(struct lws_context *lws, bool browse,
					const struct p2m_discovery_callbacks *cb, void *ud);

void p2m_discovery_resolve_host(struct p2m_discovery *disc, const char *host);

void p2m_discovery_free(struct p2m_discovery *disc);

#endif
