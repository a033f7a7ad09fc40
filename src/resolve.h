/* resolve.h - host names to addresses, asked on the loop without blocking it.
 *
 * Owns: DNS lookups (the hosts file, then the servers of resolv.conf) through c-ares,
 * whose sockets and timers are GLib sources on the default context; telling an address
 * literal from a name. Every lookup asks afresh (no cache), so a name that moved is
 * followed by the next lookup.
 * Does not own: .local names (mdns.c, through avahi-daemon), which address of several to
 * dial, or when to ask again (the callers ask before every (re)connect: mqtt.c, ws.c). */
#ifndef PANDA2MQTT_RESOLVE_H
#define PANDA2MQTT_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>

struct p2m_lookup;

/* The answer: n >= 1 addresses as literals ("192.0.2.7", "2001:db8::7"), best first;
 * or n == 0 and error says why (for the log). Both are valid only during the call. The
 * lookup is gone when this is called: forget the pointer, do not cancel it. */
typedef void (*p2m_lookup_fn)(void *ud, const char *const *addrs, size_t n, const char *error);

/* Look name up; family is AF_INET, AF_INET6 or AF_UNSPEC. fn is called exactly once, from
 * the loop and never before this returns, unless the lookup is cancelled first. */
struct p2m_lookup *p2m_lookup_start(const char *name, int family, p2m_lookup_fn fn, void *ud);

/* fn will not be called. NULL: nothing. */
void p2m_lookup_cancel(struct p2m_lookup *l);

/* An IPv4 or IPv6 address literal: dialled as it is, never looked up. */
bool p2m_is_address(const char *host);

/* A name that ends in ".local" (mDNS, answered by avahi-daemon rather than DNS). */
bool p2m_is_local_name(const char *host);

/* Is addr one of the n addresses of an answer? */
bool p2m_addr_in(const char *addr, const char *const *addrs, size_t n);

/* For tests: ask these DNS servers ("127.0.0.1:5353,...", c-ares' CSV syntax) instead of
 * resolv.conf's; NULL goes back to resolv.conf. Applies to lookups started later. */
void p2m_lookup_use_servers(const char *csv);

#endif
