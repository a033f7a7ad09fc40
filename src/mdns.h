/* mdns.h - DNS-SD and .local names through avahi-daemon, on the gateway's one loop.
 *
 * Owns: the avahi-client (through avahi-glib), surviving an absent D-Bus, an absent
 * daemon and daemon restarts; a browser for each service type asked for (the device
 * families', families.h) with one resolver per service instance kept open (so an
 * address change is reported); folding the per-interface and per-protocol events of one
 * service into one report; resolving host names (.local).
 * Does not own: deciding what a service is (dnssd_probe.c probes it) or any device.
 *
 * Trap (DESIGN.md): creating browsers and resolvers makes blocking D-Bus calls to the
 * local daemon; they happen only when a record appears or a name is asked for. */
#ifndef PANDA2MQTT_MDNS_H
#define PANDA2MQTT_MDNS_H

#include <stdbool.h>

struct p2m_mdns;

struct p2m_mdns_callbacks {
	/* A service instance resolved, or resolved again to a different address or port.
	 * addr is an IPv4 literal. */
	void (*on_service)(void *ud, const char *type, const char *name, const char *addr,
			   int port);
	/* Every record of that instance is gone (or the daemon went away). */
	void (*on_service_gone)(void *ud, const char *type, const char *name);
	/* A name asked for with p2m_mdns_resolve_host; addr NULL when it did not resolve. */
	void (*on_host)(void *ud, const char *host, const char *addr);
};

/* Starts at once, browsing the service types in types (NULL-terminated, distinct;
 * copied); with NULL or none only host names are resolved. Never fails for a missing
 * daemon or bus: it logs one line and keeps trying. */
struct p2m_mdns *p2m_mdns_new(const char *const *types, const struct p2m_mdns_callbacks *cb,
			      void *ud);

/* Ask for host's address (e.g. "garage.local"); answered through on_host, later if the
 * daemon is not there yet. Asking again while a lookup runs does nothing. */
void p2m_mdns_resolve_host(struct p2m_mdns *m, const char *host);

/* Browse from scratch (a user asked: a device was forgotten, or the network changed):
 * every service is reported gone, the client is made anew, and every service present
 * is reported again. Host lookups under way are asked again. */
void p2m_mdns_restart(struct p2m_mdns *m);

void p2m_mdns_free(struct p2m_mdns *m);

#endif
