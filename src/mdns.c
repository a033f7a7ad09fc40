/* mdns.c - see mdns.h.
 *
 * The client is made with AVAHI_CLIENT_NO_FAIL, so a daemon that is not running yet is
 * waited for. Two cases NO_FAIL does not cover, both handled with a fresh client:
 *  - no system D-Bus at all: avahi_client_new fails outright; retried on a timer;
 *  - the daemon going away (restart, crash): the client ends in AVAHI_CLIENT_FAILURE
 *    (AVAHI_ERR_DISCONNECTED) and cannot recover; it is freed from an idle callback
 *    (not from inside its own callback) and a new one waits for the daemon.
 * Browser events arrive once per interface and protocol: each (interface, protocol)
 * instance of a service gets its own resolver, kept open so that it tells when the
 * record changes; the service is reported when the address or port it resolves to
 * changes, and gone when its last instance is removed.
 * Addresses are asked for as IPv4 (AVAHI_PROTO_INET): the devices are IPv4-only, and
 * an IPv6 link-local address would need a scope the WebSocket URL cannot carry. */
#include "mdns.h"

#include "panda2mqtt/log.h"

#include <avahi-client/client.h>
#include <avahi-client/lookup.h>
#include <avahi-common/error.h>
#include <avahi-glib/glib-watch.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

#define CLIENT_RETRY_S	10 /* no D-Bus: try again this often */
#define RESOLVE_RETRY_S 30 /* a resolver that timed out */

struct service;

struct instance {
	struct service *svc;
	AvahiIfIndex iface;
	AvahiProtocol proto;
	AvahiServiceResolver *r;
	bool found; /* r has answered once */
	guint retry;
};

struct service {
	struct p2m_mdns *m;
	char *key;	  /* "type\tname": the services table's key */
	const char *type; /* one of m->types */
	char *name;
	char *domain;
	GPtrArray *instances;
	char addr[AVAHI_ADDRESS_STR_MAX];
	int port;
	bool reported;
};

struct host_lookup {
	struct p2m_mdns *m;
	char *host;
	AvahiHostNameResolver *r; /* NULL while waiting for the daemon */
};

struct p2m_mdns {
	char **types; /* the service types browsed; NULL: none */
	char *types_text;
	struct p2m_mdns_callbacks cb;
	void *ud;
	AvahiGLibPoll *poll;
	AvahiClient *client;
	bool browsing;	      /* the browsers exist (the client frees them) */
	GHashTable *services; /* "type\tname" -> struct service */
	GHashTable *hosts;    /* host name -> struct host_lookup */
	guint restart;
	bool down_logged; /* one line per outage, not one per retry */
	bool ever_running;
};

static void start_client(struct p2m_mdns *m);
static void start_resolver(struct instance *in);

static void instance_free(gpointer p)
{
	struct instance *in = p;

	if (in->r)
		avahi_service_resolver_free(in->r);
	if (in->retry)
		g_source_remove(in->retry);
	g_free(in);
}

static void service_free(gpointer p)
{
	struct service *s = p;

	g_ptr_array_free(s->instances, TRUE);
	g_free(s->key);
	g_free(s->name);
	g_free(s->domain);
	g_free(s);
}

static void host_lookup_free(gpointer p)
{
	struct host_lookup *h = p;

	if (h->r)
		avahi_host_name_resolver_free(h->r);
	g_free(h->host);
	g_free(h);
}

static void log_down(struct p2m_mdns *m, const char *why)
{
	if (m->down_logged) {
		p2m_debug("mdns: %s", why);
		return;
	}
	m->down_logged = true;
	p2m_warn("mdns: %s; static devices are served meanwhile, and discovery starts when "
		 "avahi-daemon is reachable",
		 why);
}

/* Free the client, which frees its browsers and resolvers: forget our pointers to them
 * first. With report, services reported found are reported gone. */
static void drop_client(struct p2m_mdns *m, bool report)
{
	GHashTableIter it;
	gpointer key, value;

	m->browsing = false;
	g_hash_table_iter_init(&it, m->services);
	while (g_hash_table_iter_next(&it, &key, &value)) {
		struct service *s = value;
		for (guint i = 0; i < s->instances->len; i++)
			((struct instance *)g_ptr_array_index(s->instances, i))->r = NULL;
		if (report && s->reported)
			m->cb.on_service_gone(m->ud, s->type, s->name);
		g_hash_table_iter_remove(&it);
	}
	g_hash_table_iter_init(&it, m->hosts);
	while (g_hash_table_iter_next(&it, &key, &value))
		((struct host_lookup *)value)->r = NULL; /* asked for again once running */
	if (m->client)
		avahi_client_free(m->client);
	m->client = NULL;
}

static gboolean on_restart(gpointer data)
{
	struct p2m_mdns *m = data;

	m->restart = 0;
	drop_client(m, true);
	start_client(m);
	return G_SOURCE_REMOVE;
}

static void schedule_restart(struct p2m_mdns *m, guint seconds)
{
	if (m->restart)
		return;
	m->restart =
	    seconds ? g_timeout_add_seconds(seconds, on_restart, m) : g_idle_add(on_restart, m);
}

static struct instance *find_instance(struct service *s, AvahiIfIndex iface, AvahiProtocol proto)
{
	for (guint i = 0; i < s->instances->len; i++) {
		struct instance *in = g_ptr_array_index(s->instances, i);
		if (in->iface == iface && in->proto == proto)
			return in;
	}
	return NULL;
}

static gboolean on_resolve_retry(gpointer data)
{
	struct instance *in = data;

	in->retry = 0;
	start_resolver(in);
	return G_SOURCE_REMOVE;
}

static void on_resolved(AvahiServiceResolver *r, AvahiIfIndex iface, AvahiProtocol proto,
			AvahiResolverEvent event, const char *name, const char *type,
			const char *domain, const char *host, const AvahiAddress *a, uint16_t port,
			AvahiStringList *txt, AvahiLookupResultFlags flags, void *data)
{
	struct instance *in = data;
	struct service *s = in->svc;
	char addr[AVAHI_ADDRESS_STR_MAX];

	(void)iface, (void)proto, (void)type, (void)domain, (void)txt, (void)flags;
	if (event != AVAHI_RESOLVER_FOUND) {
		p2m_debug("mdns: cannot resolve service '%s' (%s); trying again in %d s", name,
			  avahi_strerror(avahi_client_errno(avahi_service_resolver_get_client(r))),
			  RESOLVE_RETRY_S);
		avahi_service_resolver_free(r);
		in->r = NULL;
		if (!in->retry)
			in->retry = g_timeout_add_seconds(RESOLVE_RETRY_S, on_resolve_retry, in);
		return;
	}
	if (in->found) {
		/* The record changed under an open resolver. Seen on avahi 0.8: a service
		 * re-announced on another host within the goodbye second came back with the
		 * new host and port but the old host's address. A fresh resolver reads the
		 * records as they are now. */
		avahi_service_resolver_free(r);
		in->r = NULL;
		in->found = false;
		start_resolver(in);
		return;
	}
	in->found = true;
	avahi_address_snprint(addr, sizeof(addr), a);
	if (s->reported && strcmp(addr, s->addr) == 0 && s->port == port)
		return;
	p2m_debug("mdns: service '%s' is %s (%s) port %u", name, addr, host, port);
	g_strlcpy(s->addr, addr, sizeof(s->addr));
	s->port = port;
	s->reported = true;
	s->m->cb.on_service(s->m->ud, s->type, s->name, s->addr, s->port);
}

static void start_resolver(struct instance *in)
{
	struct service *s = in->svc;

	if (!s->m->client || in->r)
		return;
	/* Kept open: it reports again when the service's address or port changes. */
	in->r = avahi_service_resolver_new(s->m->client, in->iface, in->proto, s->name, s->type,
					   s->domain, AVAHI_PROTO_INET, 0, on_resolved, in);
	if (!in->r)
		p2m_warn("mdns: cannot resolve service '%s': %s", s->name,
			 avahi_strerror(avahi_client_errno(s->m->client)));
}

/* m's own copy of a browsed type (the one services point to), or NULL. */
static const char *browsed_type(const struct p2m_mdns *m, const char *type)
{
	for (char **t = m->types; t && *t; t++)
		if (strcmp(*t, type) == 0)
			return *t;
	return NULL;
}

static void service_new(struct p2m_mdns *m, AvahiIfIndex iface, AvahiProtocol proto,
			const char *name, const char *type, const char *domain)
{
	char *key = g_strdup_printf("%s\t%s", type, name);
	struct service *s = g_hash_table_lookup(m->services, key);
	struct instance *in;

	if (!s) {
		s = g_new0(struct service, 1);
		s->m = m;
		s->key = key;
		key = NULL;
		s->type = browsed_type(m, type);
		s->name = g_strdup(name);
		s->domain = g_strdup(domain);
		s->instances = g_ptr_array_new_with_free_func(instance_free);
		g_hash_table_insert(m->services, s->key, s);
	}
	g_free(key);
	if (find_instance(s, iface, proto))
		return;
	in = g_new0(struct instance, 1);
	in->svc = s;
	in->iface = iface;
	in->proto = proto;
	g_ptr_array_add(s->instances, in);
	start_resolver(in);
}

static void service_removed(struct p2m_mdns *m, AvahiIfIndex iface, AvahiProtocol proto,
			    const char *name, const char *type)
{
	char *key = g_strdup_printf("%s\t%s", type, name);
	struct service *s = g_hash_table_lookup(m->services, key);
	struct instance *in = s ? find_instance(s, iface, proto) : NULL;

	if (in) {
		g_ptr_array_remove(s->instances, in);
		if (!s->instances->len) {
			p2m_debug("mdns: service '%s' (%s) is gone", name, type);
			if (s->reported)
				m->cb.on_service_gone(m->ud, s->type, s->name);
			g_hash_table_remove(m->services, key);
		}
	}
	g_free(key);
}

static void on_browse(AvahiServiceBrowser *b, AvahiIfIndex iface, AvahiProtocol proto,
		      AvahiBrowserEvent event, const char *name, const char *type,
		      const char *domain, AvahiLookupResultFlags flags, void *data)
{
	struct p2m_mdns *m = data;

	(void)b, (void)flags;
	switch (event) {
	case AVAHI_BROWSER_NEW:
		if (browsed_type(m, type))
			service_new(m, iface, proto, name, type, domain);
		break;
	case AVAHI_BROWSER_REMOVE:
		service_removed(m, iface, proto, name, type);
		break;
	case AVAHI_BROWSER_FAILURE:
		p2m_warn("mdns: browsing %s failed (%s); starting again", m->types_text,
			 avahi_strerror(avahi_client_errno(m->client)));
		schedule_restart(m, 0);
		break;
	case AVAHI_BROWSER_ALL_FOR_NOW:
	case AVAHI_BROWSER_CACHE_EXHAUSTED:
		break;
	}
}

static void on_host_resolved(AvahiHostNameResolver *r, AvahiIfIndex iface, AvahiProtocol proto,
			     AvahiResolverEvent event, const char *name, const AvahiAddress *a,
			     AvahiLookupResultFlags flags, void *data)
{
	struct host_lookup *h = data;
	struct p2m_mdns *m = h->m;
	char addr[AVAHI_ADDRESS_STR_MAX];
	char *host = g_strdup(h->host);

	(void)r, (void)iface, (void)proto, (void)flags;
	if (event == AVAHI_RESOLVER_FOUND) {
		avahi_address_snprint(addr, sizeof(addr), a);
		p2m_debug("mdns: %s is %s", name, addr);
	} else {
		p2m_warn("mdns: cannot resolve %s: %s", host,
			 avahi_strerror(avahi_client_errno(m->client)));
	}
	g_hash_table_remove(m->hosts, host); /* frees r: allowed from its own callback */
	m->cb.on_host(m->ud, host, event == AVAHI_RESOLVER_FOUND ? addr : NULL);
	g_free(host);
}

static void start_host_lookup(struct host_lookup *h)
{
	struct p2m_mdns *m = h->m;
	char *host;

	h->r = avahi_host_name_resolver_new(m->client, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, h->host,
					    AVAHI_PROTO_INET, 0, on_host_resolved, h);
	if (h->r)
		return;
	p2m_warn("mdns: cannot resolve %s: %s", h->host,
		 avahi_strerror(avahi_client_errno(m->client)));
	host = g_strdup(h->host);
	g_hash_table_remove(m->hosts, host);
	m->cb.on_host(m->ud, host, NULL);
	g_free(host);
}

static void running(struct p2m_mdns *m)
{
	GPtrArray *waiting = g_ptr_array_new();
	GHashTableIter it;
	gpointer key, value;

	if (m->down_logged || !m->ever_running) {
		if (m->types)
			p2m_info("mdns: connected to avahi-daemon; looking for devices (%s)",
				 m->types_text);
		else
			p2m_info("mdns: connected to avahi-daemon");
	}
	m->down_logged = false;
	m->ever_running = true;
	if (m->types && !m->browsing) {
		m->browsing = true;
		for (char **t = m->types; *t; t++) {
			/* freed with the client (drop_client) */
			if (avahi_service_browser_new(m->client, AVAHI_IF_UNSPEC,
						      AVAHI_PROTO_UNSPEC, *t, NULL, 0, on_browse,
						      m))
				continue;
			p2m_warn("mdns: cannot browse %s: %s", *t,
				 avahi_strerror(avahi_client_errno(m->client)));
			schedule_restart(m, CLIENT_RETRY_S);
			break;
		}
	}
	g_hash_table_iter_init(&it, m->hosts);
	while (g_hash_table_iter_next(&it, &key, &value))
		if (!((struct host_lookup *)value)->r)
			g_ptr_array_add(waiting, value);
	/* Not while iterating: a lookup that fails at once removes its entry. */
	for (guint i = 0; i < waiting->len; i++)
		start_host_lookup(g_ptr_array_index(waiting, i));
	g_ptr_array_free(waiting, TRUE);
}

static void on_client_state(AvahiClient *c, AvahiClientState state, void *data)
{
	struct p2m_mdns *m = data;

	/* Called from inside avahi_client_new already, before it returns. */
	m->client = c;
	switch (state) {
	case AVAHI_CLIENT_S_RUNNING:
		running(m);
		break;
	case AVAHI_CLIENT_CONNECTING:
		log_down(m, "avahi-daemon is not running");
		break;
	case AVAHI_CLIENT_FAILURE:
		log_down(m, avahi_client_errno(c) == AVAHI_ERR_DISCONNECTED
				? "lost avahi-daemon"
				: avahi_strerror(avahi_client_errno(c)));
		schedule_restart(m, 0);
		break;
	case AVAHI_CLIENT_S_REGISTERING:
	case AVAHI_CLIENT_S_COLLISION:
		break;
	}
}

static void start_client(struct p2m_mdns *m)
{
	char why[160];
	int err = 0;

	avahi_client_new(avahi_glib_poll_get(m->poll), AVAHI_CLIENT_NO_FAIL, on_client_state, m,
			 &err);
	if (m->client)
		return;
	snprintf(why, sizeof(why), "cannot talk to avahi-daemon (%s; is D-Bus running?)",
		 avahi_strerror(err));
	log_down(m, why);
	schedule_restart(m, CLIENT_RETRY_S);
}

struct p2m_mdns *p2m_mdns_new(const char *const *types, const struct p2m_mdns_callbacks *cb,
			      void *ud)
{
	struct p2m_mdns *m = g_new0(struct p2m_mdns, 1);

	if (types && *types) {
		m->types = g_strdupv((char **)types);
		m->types_text = g_strjoinv(", ", m->types);
	}
	m->cb = *cb;
	m->ud = ud;
	m->poll = avahi_glib_poll_new(NULL, G_PRIORITY_DEFAULT);
	m->services = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, service_free);
	m->hosts = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, host_lookup_free);
	start_client(m);
	return m;
}

void p2m_mdns_resolve_host(struct p2m_mdns *m, const char *host)
{
	struct host_lookup *h;

	if (g_hash_table_contains(m->hosts, host))
		return;
	h = g_new0(struct host_lookup, 1);
	h->m = m;
	h->host = g_strdup(host);
	g_hash_table_insert(m->hosts, h->host, h);
	if (m->client && avahi_client_get_state(m->client) == AVAHI_CLIENT_S_RUNNING)
		start_host_lookup(h);
}

void p2m_mdns_restart(struct p2m_mdns *m)
{
	/* from an idle callback: the caller may be inside one of ours */
	schedule_restart(m, 0);
}

void p2m_mdns_free(struct p2m_mdns *m)
{
	if (!m)
		return;
	if (m->restart)
		g_source_remove(m->restart);
	drop_client(m, false);
	g_hash_table_destroy(m->services);
	g_hash_table_destroy(m->hosts);
	avahi_glib_poll_free(m->poll);
	g_strfreev(m->types);
	g_free(m->types_text);
	g_free(m);
}
