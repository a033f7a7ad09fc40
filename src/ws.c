/* ws.c - see ws.h.
 *
 * lws traps handled here (each reproduced on Debian's lws 4.1.6):
 *  - a connect whose upgrade never answers ends with CLOSED_CLIENT_HTTP and
 *    WSI_DESTROY but no CLIENT_CONNECTION_ERROR, so the end of every attempt is taken
 *    from WSI_DESTROY, and our own connect timer bounds the attempt;
 *  - lws has no maximum message size: fragments are reassembled here, with a cap;
 *  - lws calls made from GLib timers need p2m_loop_lws_kick() to take effect.
 * Timers: one shared second tick (loop.h) per connection, not a GLib source each.
 * Frames still queued when a connection dies are dropped (and counted in the log), never
 * sent later on a new connection: a late heater command is worse than a lost one. */
#include "ws.h"

#include "loop.h"
#include "panda2mqtt/log.h"

#include <glib.h>
#include <string.h>

#define BACKOFF_MAX_S 30
#define TXQ_MAX	      64

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
	GString *rx;
	GQueue txq;
	gint64 last_rx;
	gint64 retry_at; /* monotonic us of the next dial; 0: none due */
	struct p2m_tick *tick;
	int backoff;
	char why[160];
};

static void dial(struct p2m_ws *ws);

static void set_why(struct p2m_ws *ws, const char *why)
{
	if (!ws->why[0])
		g_strlcpy(ws->why, why, sizeof(ws->why));
}

static void drop_queue(struct p2m_ws *ws)
{
	guint n = g_queue_get_length(&ws->txq);

	if (n)
		p2m_warn("device %s: %u queued frame(s) not sent: connection closed", ws->o.name,
			 n);
	g_queue_clear_full(&ws->txq, g_free);
}

/* The next dial, at the shared second tick (on_tick). */
static void schedule_retry(struct p2m_ws *ws)
{
	if (ws->o.oneshot || ws->retry_at)
		return;
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
	ws->active = ws->open = ws->in_message = ws->discarding = false;
	g_string_truncate(ws->rx, 0);
	drop_queue(ws);
	g_strlcpy(why, ws->why[0] ? ws->why : "connection closed", sizeof(why));
	schedule_retry(ws);
	/* Last: a oneshot owner may schedule our destruction from here. */
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
	if ((!ws->open || ws->o.oneshot) && idle_s >= ws->o.connect_timeout) {
		snprintf(why, sizeof(why), "no %s within %d s", ws->open ? "snapshot" : "upgrade",
			 ws->o.connect_timeout);
		kill_wsi(ws, why);
	} else if (ws->open && ws->o.stale_timeout && idle_s >= ws->o.stale_timeout) {
		snprintf(why, sizeof(why), "no data for %d s", ws->o.stale_timeout);
		kill_wsi(ws, why);
	}
}

static void dial(struct p2m_ws *ws)
{
	struct lws_client_connect_info i;

	memset(&i, 0, sizeof(i));
	i.context = ws->ctx;
	i.address = ws->o.host;
	i.port = ws->o.port;
	i.path = ws->o.path;
	i.host = ws->o.host;
	i.origin = ws->o.host;
	i.protocol = NULL; /* the device takes clients that ask for no subprotocol */
	i.local_protocol_name = "p2m-ws-client";
	i.pwsi = &ws->wsi;
	i.opaque_user_data = ws;

	ws->why[0] = '\0';
	ws->active = true;
	ws->last_rx = g_get_monotonic_time();
	if (!lws_client_connect_via_info(&i)) {
		ws->wsi = NULL;
		set_why(ws, "cannot start a connection");
		lost(ws);
		return;
	}
	p2m_loop_lws_kick(ws->ctx);
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
			p2m_warn("device %s: binary message ignored", ws->o.name);
			ws->in_message = false;
		}
		return 0;
	}
	if (ws->discarding)
		return 0;
	if (ws->rx->len + len > ws->o.max_message) {
		char why[96];
		snprintf(why, sizeof(why), "message larger than %zu bytes", ws->o.max_message);
		p2m_warn("device %s: %s; closing the connection", ws->o.name, why);
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
	char *text = g_queue_pop_head(&ws->txq);
	size_t n;
	unsigned char *buf;
	int rc;

	if (!text)
		return 0;
	n = strlen(text);
	buf = g_malloc(LWS_PRE + n);
	memcpy(buf + LWS_PRE, text, n);
	rc = lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_TEXT);
	g_free(buf);
	if (rc < (int)n) {
		p2m_warn("device %s: sending a frame failed; closing", ws->o.name);
		g_free(text);
		set_why(ws, "send failed");
		return -1;
	}
	g_free(text);
	if (!g_queue_is_empty(&ws->txq))
		lws_callback_on_writable(wsi);
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
	ws->o.path = g_strdup(opts->path ? opts->path : "/ws");
	ws->cb = *cb;
	ws->ud = ud;
	ws->rx = g_string_new(NULL);
	g_queue_init(&ws->txq);
	ws->tick = p2m_tick_add(on_tick, ws);
	dial(ws);
	return ws;
}

int p2m_ws_send(struct p2m_ws *ws, const char *text)
{
	if (!ws->open || !ws->wsi)
		return -1;
	if (g_queue_get_length(&ws->txq) >= TXQ_MAX) {
		p2m_warn("device %s: send queue full; frame not sent", ws->o.name);
		return -1;
	}
	g_queue_push_tail(&ws->txq, g_strdup(text));
	lws_callback_on_writable(ws->wsi);
	p2m_loop_lws_kick(ws->ctx);
	return 0;
}

bool p2m_ws_is_open(const struct p2m_ws *ws)
{
	return ws && ws->open;
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
	p2m_tick_remove(ws->tick);
	g_queue_clear_full(&ws->txq, g_free);
	g_string_free(ws->rx, TRUE);
	g_free((char *)ws->o.name);
	g_free((char *)ws->o.host);
	g_free((char *)ws->o.path);
	g_free(ws);
}
