/* dnssd_probe.c - see dnssd_probe.h.
 *
 * "Answered" versus "unreachable": a probe whose WebSocket opened, or whose HTTP
 * upgrade the server refused (lws reports a handshake failure with an "HS:" reason),
 * met a web server, and a web server that is not a device stays one until its record
 * changes. A probe that got no HTTP answer at all (refused, timed out) may be a device
 * that is busy or still starting: it is tried again, 30 s later, then less often.
 *
 * Which services and paths: each family the gateway dials names the DNS-SD type its
 * devices announce and the WebSocket path they serve (driver.h). A service of a type
 * is probed at each distinct path of the families announcing that type, one after the
 * other, until one answers with a snapshot of one of those families. */
#include "dnssd_probe.h"

#include "mdns.h"
#include "panda2mqtt/families.h"
#include "panda2mqtt/log.h"
#include "ws.h"

#include <glib.h>
#include <string.h>

#define PROBE_TIMEOUT_S 5
#define RETRY_MIN_S	30
#define RETRY_MAX_S	(30 * 60)

enum cand_state { C_PROBING, C_CONFIRMED, C_REJECTED, C_WAITING };

struct candidate {
	struct p2m_dnssd_probe *disc;
	char *key;	  /* "type\tname" */
	const char *type; /* the families' own string */
	size_t path;	  /* the index (paths_of) of the path being probed */
	char *name;
	char addr[64];
	int port;
	enum cand_state state;
	struct p2m_ws *probe;
	guint retry;
	int backoff;
};

struct p2m_dnssd_probe {
	struct lws_context *lws;
	struct p2m_dnssd_probe_callbacks cb;
	void *ud;
	struct p2m_mdns *mdns;
	GHashTable *cands; /* service name -> struct candidate */
};

static void probe(struct candidate *c);
static gboolean on_retry(gpointer data);

static void candidate_free(gpointer p)
{
	struct candidate *c = p;

	p2m_ws_free(c->probe);
	if (c->retry)
		g_source_remove(c->retry);
	while (g_idle_remove_by_data(c))
		;
	g_free(c->key);
	g_free(c->name);
	g_free(c);
}

/* The distinct WebSocket paths of the families announcing type, in family order;
 * returns how many were written (at most n). */
static size_t paths_of(const char *type, const char **paths, size_t n)
{
	size_t k = 0;

	for (const struct p2m_driver *const *d = p2m_families; *d; d++) {
		bool seen = false;

		if ((*d)->dials_in || !(*d)->dnssd_type || strcmp((*d)->dnssd_type, type) != 0)
			continue;
		for (size_t i = 0; i < k; i++)
			seen |= strcmp(paths[i], (*d)->ws_path) == 0;
		if (!seen && k < n)
			paths[k++] = (*d)->ws_path;
	}
	return k;
}

static const char *probed_path(const struct candidate *c)
{
	const char *paths[8];
	size_t n = paths_of(c->type, paths, 8);

	return c->path < n ? paths[c->path] : NULL;
}

static void reject(struct candidate *c, const char *why)
{
	/* another family announcing this type may serve another path */
	c->path++;
	if (probed_path(c)) {
		p2m_debug("mdns: '%s' at %s:%d: %s; trying %s", c->name, c->addr, c->port, why,
			  probed_path(c));
		c->state = C_WAITING;
		g_idle_add(on_retry, c);
		return;
	}
	c->state = C_REJECTED;
	p2m_debug("mdns: '%s' at %s:%d is not a device this gateway knows (%s); not asking "
		  "again until its record changes",
		  c->name, c->addr, c->port, why);
}

static void on_probe_message(void *ud, const char *text, size_t len)
{
	struct candidate *c = ud;
	cJSON *frame = cJSON_ParseWithLength(text, len);
	const struct p2m_driver *drv = frame ? p2m_family_for_snapshot(frame, false) : NULL;
	const char *path = probed_path(c);

	if (c->state != C_PROBING)
		return; /* a second frame, after the first decided */
	/* a family announcing this type and serving this path, not just any family */
	if (drv && (!drv->dnssd_type || strcmp(drv->dnssd_type, c->type) != 0 || !path ||
		    strcmp(drv->ws_path, path) != 0))
		drv = NULL;
	if (!drv) {
		reject(c, frame ? "its first frame is no known snapshot" : "it sent no JSON");
		cJSON_Delete(frame);
		return;
	}
	c->state = C_CONFIRMED;
	c->backoff = 0;
	p2m_debug("mdns: '%s' at %s:%d is a %s", c->name, c->addr, c->port, drv->model);
	c->disc->cb.on_found(c->disc->ud, &(const struct p2m_found){
					      .driver = drv,
					      .service = c->name,
					      .addr = c->addr,
					      .port = c->port,
					      .snapshot = frame,
					  });
	cJSON_Delete(frame);
}

static gboolean on_retry(gpointer data)
{
	struct candidate *c = data;

	c->retry = 0;
	probe(c);
	return G_SOURCE_REMOVE;
}

static gboolean free_probe(gpointer data)
{
	struct candidate *c = data;

	p2m_ws_free(c->probe);
	c->probe = NULL;
	return G_SOURCE_REMOVE;
}

static void on_probe_close(void *ud, bool was_open, const char *why)
{
	struct candidate *c = ud;

	g_idle_add(free_probe, c); /* not from inside the transport's callback */
	if (c->state != C_PROBING)
		return;
	if (was_open || strncmp(why, "HS:", 3) == 0) {
		reject(c, why);
		return;
	}
	c->state = C_WAITING;
	c->backoff = c->backoff ? MIN(c->backoff * 2, RETRY_MAX_S) : RETRY_MIN_S;
	p2m_debug("mdns: '%s' at %s:%d did not answer (%s); asking again in %d s", c->name, c->addr,
		  c->port, why, c->backoff);
	c->retry = g_timeout_add_seconds((guint)c->backoff, on_retry, c);
}

static void probe(struct candidate *c)
{
	static const struct p2m_ws_callbacks cb = {
	    .on_message = on_probe_message,
	    .on_close = on_probe_close,
	};
	char *name = g_strdup_printf("mdns '%s'", c->name);
	const struct p2m_ws_opts o = {
	    .name = name,
	    .host = c->addr,
	    .port = c->port,
	    .path = probed_path(c),
	    .max_message = P2M_WS_MAX_MESSAGE,
	    .connect_timeout = PROBE_TIMEOUT_S,
	    .oneshot = true,
	};

	if (c->retry)
		g_source_remove(c->retry);
	c->retry = 0;
	/* A probe of the record's old address may still be closing: let it go. */
	if (c->probe) {
		while (g_idle_remove_by_data(c))
			;
		p2m_ws_free(c->probe);
	}
	c->state = C_PROBING;
	c->probe = p2m_ws_new(c->disc->lws, &o, &cb, c);
	g_free(name);
}

static void on_service(void *ud, const char *type, const char *name, const char *addr, int port)
{
	struct p2m_dnssd_probe *disc = ud;
	char *key = g_strdup_printf("%s\t%s", type, name);
	struct candidate *c = g_hash_table_lookup(disc->cands, key);

	if (!c) {
		c = g_new0(struct candidate, 1);
		c->disc = disc;
		c->key = key;
		key = NULL;
		c->type = type; /* mdns.c's copy, alive as long as disc->mdns */
		c->name = g_strdup(name);
		g_hash_table_insert(disc->cands, c->key, c);
	}
	g_free(key);
	/* mdns.c reports only a new or changed record: whatever was decided is stale. */
	g_strlcpy(c->addr, addr, sizeof(c->addr));
	c->port = port;
	c->backoff = 0;
	c->path = 0;
	probe(c);
}

static void on_service_gone(void *ud, const char *type, const char *name)
{
	struct p2m_dnssd_probe *disc = ud;
	char *key = g_strdup_printf("%s\t%s", type, name);

	/* The device itself, if it was one, stays: it goes offline only when its link
	 * goes quiet (device.c), and comes back if the record does. */
	g_hash_table_remove(disc->cands, key);
	g_free(key);
}

static void on_host(void *ud, const char *host, const char *addr)
{
	struct p2m_dnssd_probe *disc = ud;

	disc->cb.on_host(disc->ud, host, addr);
}

struct p2m_dnssd_probe *p2m_dnssd_probe_new(struct lws_context *lws, bool browse,
					    const struct p2m_dnssd_probe_callbacks *cb, void *ud)
{
	static const struct p2m_mdns_callbacks mcb = {
	    .on_service = on_service,
	    .on_service_gone = on_service_gone,
	    .on_host = on_host,
	};
	struct p2m_dnssd_probe *disc = g_new0(struct p2m_dnssd_probe, 1);
	const char *types[8];
	size_t n = 0;

	/* the distinct DNS-SD types of the families the gateway dials */
	for (const struct p2m_driver *const *d = p2m_families; browse && *d; d++) {
		bool seen = false;

		if ((*d)->dials_in || !(*d)->dnssd_type)
			continue;
		for (size_t i = 0; i < n; i++)
			seen |= strcmp(types[i], (*d)->dnssd_type) == 0;
		if (!seen && n + 1 < G_N_ELEMENTS(types))
			types[n++] = (*d)->dnssd_type;
	}
	types[n] = NULL;
	disc->lws = lws;
	disc->cb = *cb;
	disc->ud = ud;
	disc->cands = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, candidate_free);
	disc->mdns = p2m_mdns_new(types, &mcb, disc);
	return disc;
}

void p2m_dnssd_probe_resolve_host(struct p2m_dnssd_probe *disc, const char *host)
{
	p2m_mdns_resolve_host(disc->mdns, host);
}

void p2m_dnssd_probe_rebrowse(struct p2m_dnssd_probe *disc)
{
	/* mdns.c reports each service gone (its candidate goes) and then found again */
	p2m_mdns_restart(disc->mdns);
}

void p2m_dnssd_probe_free(struct p2m_dnssd_probe *disc)
{
	if (!disc)
		return;
	p2m_mdns_free(disc->mdns);
	g_hash_table_destroy(disc->cands);
	g_free(disc);
}
