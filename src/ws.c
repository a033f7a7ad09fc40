/* ws.c - see ws.h.
 *
 * lws traps handled here (each reproduced on Debian's lws 4.1.6):
 *  - a connect whose upgrade never answers ends with CLOSED_CLIENT_HTTP and
 *    WSI_DESTROY but no CLIENT_CONNECTION_ERROR, so the end of every attempt is taken
 *    from WSI_DESTROY, and our own connect timer bounds the attempt;
 *  - lws has no maximum message size: fragments are reassembled here, with a cap;
 *  - lws calls made from GLib timers need p2m_loop_lws_kick() to take effect;
 *  - the pong to an empty ping never reaches LWS_CALLBACK_RECEIVE_PONG: pings carry a
 *    few bytes.
 * Timers: one shared second tick (loop.h) per connection, not a GLib source each.
 * The same connection object serves both directions: dialled (devices we connect to) and
 * accepted (devices that connect to us, p2m_ws_listen); only dialling, redialling and the
 * upgrade checks differ.
 * Frames still queued when a connection dies are dropped (and counted in the log), never
 * sent later on a new connection: a late heater command is worse than a lost one.
 * A host that is a name is looked up before every dial (resolve.h, on the loop; lws's
 * own lookup would block it), for IPv4 addresses as in mdns.c (the devices are
 * IPv4-only): a device whose name moved is dialled at its new address. The connect
 * timeout counts from the start of the lookup. The name stays the Host header. */
#include "ws.h"

#include "loop.h"
#include "resolve.h"
#include "panda2mqtt/log.h"
#include "panda2mqtt/dialin_handshake.h"

#include <arpa/inet.h>
#include <glib.h>
#include <string.h>
#include <sys/socket.h>

#define BACKOFF_MAX_S 30
#define TXQ_MAX	      64

/* One queued write: a text message, one fragment of a binary message, or a ping. */
struct txmsg {
	int flags; /* lws_write_protocol */
	size_t len;
	unsigned char data[];
};

struct p2m_ws {
	struct lws_context *ctx;
	struct lws *wsi;
	struct p2m_ws_opts o;
	struct p2m_ws_callbacks cb;
	void *ud;
	bool active;	 /* an attempt or connection is under way */
	bool open;	 /* upgrade done */
	bool in_message; /* between the first and the last fragment of a message */
	bool binary;	 /* the message being received is binary */
	bool discarding; /* an oversized message: dropping it until the link closes */
	bool accepted;	 /* the device dialled us: never redialled, freed after on_close */
	bool got_first;	 /* a whole message has arrived (accepted: the handshake) */
	bool tx_open;	 /* a fragmented message is half written: its rest must follow */
	int close_code;	 /* p2m_ws_close: close with this status at the next write */
	char peer[64];	 /* accepted: the device's address */
	GString *rx;
	GQueue txq;
	gint64 last_rx;
	gint64 pinged_at; /* accepted: when an idle link was last pinged */
	gint64 retry_at;  /* monotonic us of the next dial; 0: none due */
	struct p2m_tick *tick;
	int backoff;
	struct p2m_lookup *lookup;   /* the host name being looked up before a dial */
	char addr[INET6_ADDRSTRLEN]; /* the address last dialled */
	unsigned failures;	     /* dials that never opened: picks the next address */
	size_t naddrs;		     /* how many addresses the name had at the last lookup */
	char why[160];
};

static void dial(struct p2m_ws *ws);
static void ws_destroy(struct p2m_ws *ws);

static void set_why(struct p2m_ws *ws, const char *why)
{
	if (!ws->why[0])
		g_strlcpy(ws->why, why, sizeof(ws->why));
}

static void drop_queue(struct p2m_ws *ws)
{
	guint n = g_queue_get_length(&ws->txq);

	if (n)
		p2m_warn("%s: %u queued frame(s) not sent: connection closed", ws->o.name, n);
	g_queue_clear_full(&ws->txq, g_free);
}

/* The next dial, at the shared second tick (on_tick). failed: a dial that never opened;
 * a name with addresses not yet tried in this round dials the next one at the next tick,
 * and the backoff grows once per round. */
static void schedule_retry(struct p2m_ws *ws, bool failed)
{
	if (ws->o.oneshot || ws->accepted || ws->retry_at)
		return;
	if (failed && ws->naddrs > 1 && ws->failures % ws->naddrs != 0) {
		ws->retry_at = g_get_monotonic_time();
		return;
	}
	ws->backoff = ws->backoff ? MIN(ws->backoff * 2, BACKOFF_MAX_S) : 1;
	ws->retry_at = g_get_monotonic_time() + (gint64)ws->backoff * G_USEC_PER_SEC;
}

/* The end of an attempt or connection, whichever way it ended. */
static void lost(struct p2m_ws *ws)
{
	bool was_open = ws->open;
	char why[sizeof(ws->why)];

	if (!ws->active)
		return;
	if (!was_open)
		ws->failures++;
	ws->active = ws->open = ws->in_message = ws->discarding = ws->tx_open = false;
	g_string_truncate(ws->rx, 0);
	drop_queue(ws);
	g_strlcpy(why, ws->why[0] ? ws->why : "connection closed", sizeof(why));
	schedule_retry(ws, !was_open);
	/* Last: a oneshot owner may schedule our destruction from here. */
	if (ws->cb.on_close)
		ws->cb.on_close(ws->ud, was_open, why);
}

static void kill_wsi(struct p2m_ws *ws, const char *why)
{
	set_why(ws, why);
	if (ws->wsi) {
		lws_set_timeout(ws->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		p2m_loop_lws_kick(ws->ctx);
	}
}

/* Once a second: a retry that is due; the connect timeout before the upgrade (and, for
 * a oneshot, before its message), the staleness timeout after. */
static void on_tick(void *data)
{
	struct p2m_ws *ws = data;
	gint64 now = g_get_monotonic_time();
	gint64 idle_s = (now - ws->last_rx) / G_USEC_PER_SEC;
	char why[96];

	if (!ws->active) {
		if (ws->retry_at && now >= ws->retry_at) {
			ws->retry_at = 0;
			dial(ws);
		}
		return;
	}
	if (ws->lookup && idle_s >= ws->o.connect_timeout) {
		p2m_lookup_cancel(ws->lookup);
		ws->lookup = NULL;
		snprintf(why, sizeof(why), "no address for %s within %d s", ws->o.host,
			 ws->o.connect_timeout);
		set_why(ws, why);
		lost(ws);
	} else if ((!ws->open || ws->o.oneshot || (ws->accepted && !ws->got_first)) &&
		   idle_s >= ws->o.connect_timeout) {
		snprintf(why, sizeof(why), "no %s within %d s",
			 ws->accepted ? "handshake"
			 : ws->open   ? "snapshot"
				      : "upgrade",
			 ws->o.connect_timeout);
		kill_wsi(ws, why);
	} else if (ws->open && ws->o.stale_timeout && idle_s >= ws->o.stale_timeout) {
		snprintf(why, sizeof(why), "no data for %d s", ws->o.stale_timeout);
		kill_wsi(ws, why);
	} else if (ws->accepted && ws->open && ws->o.stale_timeout &&
		   idle_s * 2 >= ws->o.stale_timeout && ws->pinged_at <= ws->last_rx) {
		/* A device that dialled in speaks only when spoken to: half way to the
		 * staleness timeout, ask for a pong (WebSocket clients answer by themselves). */
		ws->pinged_at = now;
		p2m_ws_ping(ws);
	}
}

static void connect_to(struct p2m_ws *ws, const char *addr)
{
	struct lws_client_connect_info i;

	memset(&i, 0, sizeof(i));
	i.context = ws->ctx;
	i.address = addr;
	i.port = ws->o.port;
	i.path = ws->o.path;
	i.host = ws->o.host;
	i.origin = ws->o.host;
	i.protocol = NULL; /* the device takes clients that ask for no subprotocol */
	i.local_protocol_name = "p2m-ws-client";
	i.pwsi = &ws->wsi;
	i.opaque_user_data = ws;

	if (!lws_client_connect_via_info(&i)) {
		ws->wsi = NULL;
		set_why(ws, "cannot start a connection");
		lost(ws);
		return;
	}
	p2m_loop_lws_kick(ws->ctx);
}

static void on_lookup(void *ud, const char *const *addrs, size_t n, const char *error)
{
	struct p2m_ws *ws = ud;
	const char *addr;

	ws->lookup = NULL;
	ws->naddrs = n;
	if (!n) {
		char why[sizeof(ws->why)];
		snprintf(why, sizeof(why), "cannot resolve %s: %s", ws->o.host, error);
		set_why(ws, why);
		lost(ws);
		return;
	}
	/* Each dial that failed tries the next address of the name. */
	addr = addrs[ws->failures % n];
	if (ws->addr[0] && !p2m_addr_in(ws->addr, addrs, n))
		p2m_info("%s: %s is now at %s (was %s)", ws->o.name, ws->o.host, addr, ws->addr);
	else
		p2m_debug("%s: %s is %s", ws->o.name, ws->o.host, addr);
	g_strlcpy(ws->addr, addr, sizeof(ws->addr));
	connect_to(ws, addr);
}

static void dial(struct p2m_ws *ws)
{
	ws->why[0] = '\0';
	ws->active = true;
	ws->last_rx = g_get_monotonic_time();
	ws->naddrs = 1;
	if (p2m_is_address(ws->o.host))
		connect_to(ws, ws->o.host);
	else
		ws->lookup = p2m_lookup_start(ws->o.host, AF_INET, on_lookup, ws);
}

static int on_receive(struct p2m_ws *ws, struct lws *wsi, const char *in, size_t len)
{
	bool last = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);

	if (!ws->in_message) {
		ws->in_message = true;
		ws->binary = lws_frame_is_binary(wsi);
		g_string_truncate(ws->rx, 0);
	}
	if (ws->binary) {
		if (last) {
			p2m_warn("%s: binary message ignored", ws->o.name);
			ws->in_message = false;
		}
		return 0;
	}
	if (ws->discarding)
		return 0;
	if (ws->rx->len + len > ws->o.max_message) {
		char why[96];
		snprintf(why, sizeof(why), "message larger than %zu bytes", ws->o.max_message);
		p2m_warn("%s: %s; closing the connection", ws->o.name, why);
		/* Returning -1 here, in the middle of a large frame, crashes lws 4.1.6 in its
		 * rx parser; drop the rest of the message and close from outside it. */
		ws->discarding = true;
		g_string_truncate(ws->rx, 0);
		kill_wsi(ws, why);
		return 0;
	}
	g_string_append_len(ws->rx, in, (gssize)len);
	if (!last)
		return 0;
	ws->in_message = false;
	ws->got_first = true;
	ws->last_rx = g_get_monotonic_time();
	ws->backoff = 0; /* a device that talks is healthy: reconnect fast next time */
	ws->cb.on_message(ws->ud, ws->rx->str, ws->rx->len);
	if (ws->o.oneshot) {
		set_why(ws, "snapshot read");
		lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
		return -1;
	}
	return 0;
}

static int on_writeable(struct p2m_ws *ws, struct lws *wsi)
{
	struct txmsg *m;
	unsigned char *buf;
	int rc;

	if (ws->close_code) {
		lws_close_reason(wsi, (enum lws_close_status)ws->close_code, NULL, 0);
		return -1;
	}
	m = g_queue_pop_head(&ws->txq);
	if (!m)
		return 0;
	buf = g_malloc(LWS_PRE + m->len + 1);
	memcpy(buf + LWS_PRE, m->data, m->len);
	rc = lws_write(wsi, buf + LWS_PRE, m->len, (enum lws_write_protocol)m->flags);
	g_free(buf);
	if (rc < (int)m->len) {
		p2m_warn("%s: sending a frame failed; closing", ws->o.name);
		g_free(m);
		set_why(ws, "send failed");
		return -1;
	}
	ws->tx_open = (m->flags & LWS_WRITE_NO_FIN) != 0;
	g_free(m);
	if (!g_queue_is_empty(&ws->txq))
		lws_callback_on_writable(wsi);
	else if (ws->cb.on_drained)
		ws->cb.on_drained(ws->ud);
	return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		    size_t len)
{
	struct p2m_ws *ws = wsi ? lws_get_opaque_user_data(wsi) : NULL;

	(void)user;
	if (!ws)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
		char why[128];
		snprintf(why, sizeof(why), "%s", in ? (const char *)in : "connection failed");
		set_why(ws, why);
		/* Not every lws path follows this with WSI_DESTROY for our wsi. */
		if (ws->wsi == wsi || !ws->wsi) {
			ws->wsi = NULL;
			lws_set_opaque_user_data(wsi, NULL);
			lost(ws);
		}
		break;
	}
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		ws->open = true;
		ws->failures = 0;
		ws->last_rx = g_get_monotonic_time();
		if (ws->cb.on_open)
			ws->cb.on_open(ws->ud);
		if (!g_queue_is_empty(&ws->txq))
			lws_callback_on_writable(wsi);
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		return on_receive(ws, wsi, in, len);
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return on_writeable(ws, wsi);
	case LWS_CALLBACK_CLIENT_CLOSED:
		set_why(ws, "closed by the device");
		break;
	case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
		set_why(ws, "the WebSocket upgrade was not answered");
		break;
	case LWS_CALLBACK_WSI_DESTROY:
		if (ws->wsi == wsi || !ws->wsi) {
			ws->wsi = NULL;
			lost(ws);
		}
		break;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols protocols[] = {
    {"p2m-ws-client", callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

const struct lws_protocols *p2m_ws_protocols(void)
{
	return protocols;
}

struct p2m_ws *p2m_ws_new(struct lws_context *ctx, const struct p2m_ws_opts *opts,
			  const struct p2m_ws_callbacks *cb, void *ud)
{
	struct p2m_ws *ws = g_new0(struct p2m_ws, 1);

	ws->ctx = ctx;
	ws->o = *opts;
	ws->o.name = g_strdup(opts->name);
	ws->o.host = g_strdup(opts->host);
	ws->o.path = g_strdup(opts->path);
	ws->cb = *cb;
	ws->ud = ud;
	ws->rx = g_string_new(NULL);
	g_queue_init(&ws->txq);
	ws->tick = p2m_tick_add(on_tick, ws);
	dial(ws);
	return ws;
}

static int enqueue(struct p2m_ws *ws, int flags, const void *data, size_t len)
{
	struct txmsg *m;

	if (!ws->open || !ws->wsi)
		return -1;
	if (g_queue_get_length(&ws->txq) >= TXQ_MAX) {
		p2m_warn("%s: send queue full; frame not sent", ws->o.name);
		return -1;
	}
	m = g_malloc(sizeof(*m) + len);
	m->flags = flags;
	m->len = len;
	if (len)
		memcpy(m->data, data, len);
	g_queue_push_tail(&ws->txq, m);
	lws_callback_on_writable(ws->wsi);
	p2m_loop_lws_kick(ws->ctx);
	return 0;
}

int p2m_ws_send(struct p2m_ws *ws, const char *text)
{
	return enqueue(ws, LWS_WRITE_TEXT, text, strlen(text));
}

int p2m_ws_send_fragment(struct p2m_ws *ws, const void *data, size_t len, bool first, bool last)
{
	return enqueue(ws, lws_write_ws_flags(LWS_WRITE_BINARY, first, last), data, len);
}

int p2m_ws_ping(struct p2m_ws *ws)
{
	/* not empty: lws 4.1 does not report the pong to an empty ping (RECEIVE_PONG) */
	return enqueue(ws, LWS_WRITE_PING, "p2m", 3);
}

size_t p2m_ws_queued(const struct p2m_ws *ws)
{
	return ws ? g_queue_get_length((GQueue *)&ws->txq) : 0;
}

size_t p2m_ws_purge(struct p2m_ws *ws)
{
	GList *l;
	size_t n = 0;

	if (!ws)
		return 0;
	l = ws->txq.head;
	/* the rest of a message already begun: up to and including its last fragment */
	for (bool open = ws->tx_open; l && open; l = l->next)
		open = (((struct txmsg *)l->data)->flags & LWS_WRITE_NO_FIN) != 0;
	while (l) {
		GList *next = l->next;

		g_free(l->data);
		g_queue_delete_link(&ws->txq, l);
		n++;
		l = next;
	}
	return n;
}

gint64 p2m_ws_last_rx(const struct p2m_ws *ws)
{
	return ws->last_rx;
}

const char *p2m_ws_peer(const struct p2m_ws *ws)
{
	return ws->peer;
}

void p2m_ws_close(struct p2m_ws *ws, int status)
{
	if (!ws->wsi)
		return;
	ws->close_code = status;
	g_queue_clear_full(&ws->txq, g_free);
	lws_callback_on_writable(ws->wsi);
	p2m_loop_lws_kick(ws->ctx);
}

void p2m_ws_set_callbacks(struct p2m_ws *ws, const char *name, const struct p2m_ws_callbacks *cb,
			  void *ud, int stale_timeout)
{
	g_free((char *)ws->o.name);
	ws->o.name = g_strdup(name);
	ws->cb = *cb;
	ws->ud = ud;
	ws->o.stale_timeout = stale_timeout;
}

bool p2m_ws_is_open(const struct p2m_ws *ws)
{
	return ws && ws->open;
}

static void ws_destroy(struct p2m_ws *ws)
{
	p2m_tick_remove(ws->tick);
	p2m_lookup_cancel(ws->lookup);
	g_queue_clear_full(&ws->txq, g_free);
	g_string_free(ws->rx, TRUE);
	g_free((char *)ws->o.name);
	g_free((char *)ws->o.host);
	g_free((char *)ws->o.path);
	g_free(ws);
}

void p2m_ws_free(struct p2m_ws *ws)
{
	if (!ws)
		return;
	if (ws->wsi) {
		lws_set_opaque_user_data(ws->wsi, NULL);
		lws_set_timeout(ws->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		p2m_loop_lws_kick(ws->ctx);
	}
	ws_destroy(ws);
}

/* ---- the listening side: devices that dial in ---------------------------------------- */

struct p2m_ws_listener {
	struct lws_context *ctx;
	struct lws_vhost *vh;
	struct p2m_ws_listen_opts o;
	p2m_ws_accept_fn accept;
	void *ud;
};

/* The token the device presented: "?token=..." in its URL, or "Authorization: Bearer"
 * (p2m_dialin_token_ok decides). */
static bool token_ok(struct p2m_ws_listener *l, struct lws *wsi)
{
	char arg[512], auth[512];
	const char *got;
	bool ok;

	if (!l->o.token)
		return true;
	got = lws_get_urlarg_by_name(wsi, "token=", arg, (int)sizeof(arg));
	ok = p2m_dialin_token_ok(
	    l->o.token, got,
	    !got && lws_hdr_copy(wsi, auth, (int)sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION) > 0
		? auth
		: NULL);
	explicit_bzero(arg, sizeof(arg));
	explicit_bzero(auth, sizeof(auth));
	return ok;
}

/* Before the upgrade: the path, and the token when one is set. */
static int filter(struct p2m_ws_listener *l, struct lws *wsi)
{
	char uri[256], peer[64] = "?";

	lws_get_peer_simple(wsi, peer, sizeof(peer));
	if (lws_hdr_copy(wsi, uri, (int)sizeof(uri), WSI_TOKEN_GET_URI) <= 0 ||
	    strcmp(uri, l->o.path) != 0) {
		p2m_warn("%s: refused a connection from %s: path is not %s", l->o.name, peer,
			 l->o.path);
		return -1;
	}
	if (!token_ok(l, wsi)) {
		p2m_warn("%s: refused a connection from %s: wrong or missing token", l->o.name,
			 peer);
		return -1;
	}
	return 0;
}

static void accepted(struct p2m_ws_listener *l, struct lws *wsi)
{
	struct p2m_ws *ws = g_new0(struct p2m_ws, 1);

	ws->ctx = l->ctx;
	ws->wsi = wsi;
	ws->accepted = ws->active = ws->open = true;
	ws->o.name = g_strdup(l->o.name);
	ws->o.max_message = l->o.max_message;
	ws->o.connect_timeout = l->o.handshake_timeout;
	ws->rx = g_string_new(NULL);
	g_queue_init(&ws->txq);
	ws->last_rx = g_get_monotonic_time();
	lws_get_peer_simple(wsi, ws->peer, sizeof(ws->peer));
	lws_set_opaque_user_data(wsi, ws);
	ws->tick = p2m_tick_add(on_tick, ws);
	l->accept(l->ud, ws);
}

static int server_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			   size_t len)
{
	struct lws_vhost *vh = lws_get_vhost(wsi);
	struct p2m_ws_listener *l = vh ? lws_get_vhost_user(vh) : NULL;
	struct p2m_ws *ws = lws_get_opaque_user_data(wsi);

	(void)user;
	switch (reason) {
	case LWS_CALLBACK_HTTP:
		/* Not an upgrade: nothing is served over plain HTTP. */
		if (lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL))
			return -1;
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return l ? filter(l, wsi) : -1;
	case LWS_CALLBACK_ESTABLISHED:
		if (l)
			accepted(l, wsi);
		return 0;
	case LWS_CALLBACK_RECEIVE:
		return ws ? on_receive(ws, wsi, in, len) : 0;
	case LWS_CALLBACK_RECEIVE_PONG:
		if (ws)
			ws->last_rx = g_get_monotonic_time();
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return ws ? on_writeable(ws, wsi) : 0;
	case LWS_CALLBACK_CLOSED:
		if (ws)
			set_why(ws, "closed by the device");
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		if (ws) {
			lws_set_opaque_user_data(wsi, NULL);
			ws->wsi = NULL;
			lost(ws);
			/* nothing can happen on an accepted connection after this */
			ws_destroy(ws);
		}
		return 0;
	default:
		return 0;
	}
}

static const struct lws_protocols server_protocols[] = {
    {"p2m-ws-server", server_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

struct p2m_ws_listener *p2m_ws_listen(struct lws_context *ctx, const struct p2m_ws_listen_opts *o,
				      p2m_ws_accept_fn accept, void *ud)
{
	struct p2m_ws_listener *l = g_new0(struct p2m_ws_listener, 1);
	struct lws_context_creation_info info;

	l->ctx = ctx;
	l->o = *o;
	l->o.name = g_strdup(o->name);
	l->o.iface = g_strdup(o->iface);
	l->o.path = g_strdup(o->path);
	l->o.token = g_strdup(o->token);
	l->accept = accept;
	l->ud = ud;
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
	info.port = o->port;
	/* lws takes "0.0.0.0" as an interface name: NULL is every address. */
	info.iface = o->iface && strcmp(o->iface, "0.0.0.0") != 0 ? o->iface : NULL;
	info.protocols = server_protocols;
	info.vhost_name = l->o.name;
	info.user = l;
	l->vh = lws_create_vhost(ctx, &info);
	if (!l->vh) {
		p2m_err("%s: cannot listen on %s:%d", o->name, o->iface ? o->iface : "*", o->port);
		p2m_ws_listener_free(l);
		return NULL;
	}
	p2m_loop_lws_kick(ctx);
	return l;
}

int p2m_ws_listener_port(const struct p2m_ws_listener *l)
{
	return lws_get_vhost_listen_port(l->vh);
}

void p2m_ws_listener_free(struct p2m_ws_listener *l)
{
	if (!l)
		return;
	if (l->vh)
		lws_vhost_destroy(l->vh);
	g_free((char *)l->o.name);
	g_free((char *)l->o.iface);
	g_free((char *)l->o.path);
	if (l->o.token)
		explicit_bzero((char *)l->o.token, strlen(l->o.token));
	g_free((char *)l->o.token);
	g_free(l);
}
