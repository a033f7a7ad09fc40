/* discovery.c - see discovery.h.
 *
 * "Answered" versus "unreachable": a probe whose WebSocket opened, or whose HTTP
 * upgrade the server refused (lws reports a handshake failure with an "HS:" reason),
 * met a web server, and a web server that is not a device stays one until its record
 * changes. A probe that got no HTTP answer at all (refused, timed out) may be a device
 * that is busy or still starting: it is tried again, 30 s later, then less often. */
#include "discovery.h"

#include "mdns.h"
#include "panda2mqtt/drivers.h"
#include "panda2mqtt/log.h"
#include "ws.h"

#include <glib.h>
#include <string.h>

#define PROBE_TIMEOUT_S 5
#define RETRY_MIN_S	30
#define RETRY_MAX_S	(30 * 60)

enum cand_state { C_PROBING, C_CONFIRMED, C_REJECTED, C_WAITING };

struct candidate {
	struct p2m_discovery *disc;
	char *name;
	char addr[64];
	int port;
	enum cand_state state;
	struct p2m_ws *probe;
	guint retry;
	int backoff;
};

struct p2m_discovery {
	struct lws_context *lws;
	struct p2m_discovery_callbacks cb;
	void *ud;
	struct p2m_mdns *mdns;
	GHashTable *cands; /* service name -> struct candidate */
};

static void probe(struct candidate *c);

static void candidate_free(gpointer p)
{
	struct candidate *c = p;

	p2m_ws_free(c->probe);
	if (c->retry)
		g_source_remove(c->retry);
	while (g_idle_remove_by_data(c))
		;
	g_free(c->name);
	g_free(c);
}

static void reject(struct candidate *c, const char *why)
{
	c->state = C_REJECTED;
	p2m_debug("mdns: '%s' at %s:%d is not a device this gateway knows (%s); not asking "
		  "again until its record changes",
		  c->name, c->addr, c->port, why);
}

static void on_probe_message(void *ud, const char *text, size_t len)
{
	struct candidate *c = ud;
	cJSON *frame = cJSON_ParseWithLength(text, len);
	const struct p2m_driver *drv = frame ? p2m_driver_for_snapshot(frame, false) : NULL;

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
	    .path = "/ws",
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

static void on_service(void *ud, const char *name, const char *addr, int port)
{
	struct p2m_discovery *disc = ud;
	struct candidate *c = g_hash_table_lookup(disc->cands, name);

	if (!c) {
		c = g_new0(struct candidate, 1);
		c->disc = disc;
		c->name = g_strdup(name);
		g_hash_table_insert(disc->cands, c->name, c);
	}
	/* mdns.c reports only a new or changed record: whatever was decided is stale. */
	g_strlcpy(c->addr, addr, sizeof(c->addr));
	c->port = port;
	c->backoff = 0;
	probe(c);
}

static void on_service_gone(void *ud, const char *name)
{
	struct p2m_discovery *disc = ud;

	/* The device itself, if it was one, stays: it goes offline only when its link
	 * goes quiet (device.c), and comes back if the record does. */
	g_hash_table_remove(disc->cands, name);
}

static void on_host(void *ud, const char *host, const char *addr)
{
	struct p2m_discovery *disc = ud;

	disc->cb.on_host(disc->ud, host, addr);
}

struct p2m_discovery *p2m_discovery_new(struct lws_context *lws, bool browse,
					const struct p2m_discovery_callbacks *cb, void *ud)
{
	static const struct p2m_mdns_callbacks mcb = {
	    .on_service = on_service,
	    .on_service_gone = on_service_gone,
	    .on_host = on_host,
	};
	struct p2m_discovery *disc = g_new0(struct p2m_discovery, 1);

	disc->lws = lws;
	disc->cb = *cb;
	disc->ud = ud;
	disc->cands = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, candidate_free);
	disc->mdns = p2m_mdns_new(browse, &mcb, disc);
	return disc;
}

void p2m_discovery_resolve_host(struct p2m_discovery *disc, const char *host)
{
	p2m_mdns_resolve_host(disc->mdns, host);
}

void p2m_discovery_free(struct p2m_discovery *disc)
{
	if (!disc)
		return;
	p2m_mdns_free(disc->mdns);
	g_hash_table_destroy(disc->cands);
	g_free(disc);
}
