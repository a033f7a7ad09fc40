/* dnssd_probe.h - devices found on the network (DNS-SD, not Home Assistant's MQTT
 * discovery, which is ha.c), and .local names.
 *
 * Owns: turning DNS-SD services (mdns.c) into confirmed devices. Each candidate service
 * is probed: a short-lived ws://addr:port<path> connection (the path of each family
 * announcing the service's type, driver.h) whose first frame must be a snapshot of
 * one of those families. A candidate that answers but is not a
 * device is rejected quietly and not probed again until its record changes; one that
 * cannot be reached is tried again with backoff. Also passes .local lookups through.
 * Does not own: the device list or ids (device_registry.c), Avahi itself (mdns.c). */
#ifndef PANDA2MQTT_DNSSD_PROBE_H
#define PANDA2MQTT_DNSSD_PROBE_H

#include "panda2mqtt/driver.h"

#include <cjson/cJSON.h>
#include <libwebsockets.h>
#include <stdbool.h>

struct p2m_dnssd_probe;

struct p2m_found {
	const struct p2m_driver *driver;
	const char *service; /* DNS-SD instance name, e.g. "PandaBreath" */
	const char *addr;    /* IPv4 literal */
	int port;
	const cJSON *snapshot; /* the first frame the candidate sent */
};

struct p2m_dnssd_probe_callbacks {
	/* A candidate proved to be a device (again, after its record changed). */
	void (*on_found)(void *ud, const struct p2m_found *f);
	/* An answer to p2m_dnssd_probe_resolve_host; addr NULL when it did not resolve. */
	void (*on_host)(void *ud, const char *host, const char *addr);
};

/* browse false: only .local names are resolved. */
struct p2m_dnssd_probe *p2m_dnssd_probe_new(struct lws_context *lws, bool browse,
					    const struct p2m_dnssd_probe_callbacks *cb, void *ud);

void p2m_dnssd_probe_resolve_host(struct p2m_dnssd_probe *disc, const char *host);

/* Browse DNS-SD again from scratch: every service present is probed again, and a device
 * among them reported found again (one that was forgotten comes back). */
void p2m_dnssd_probe_rebrowse(struct p2m_dnssd_probe *disc);

void p2m_dnssd_probe_free(struct p2m_dnssd_probe *disc);

#endif
