/* ws.h - the WebSocket transport, one struct per connection to a device.
 *
 * Owns: dialing ws://host:port/path (a host that is a name is looked up afresh before
 * every dial, without blocking: resolve.h), reassembling fragmented messages under a size
 * cap, an ordered send queue (text, binary fragments, pings), the staleness timeout, and
 * reconnects with backoff (also when TCP connects and the upgrade never answers). A
 * "oneshot" connection delivers its first message and closes: that is how a fresh
 * snapshot is read. The other direction too: a listener on a port and path that checks
 * an optional token and hands each accepted connection to its owner.
 * Does not own: what messages mean (device.c, dialin.c and the drivers). */
#ifndef PANDA2MQTT_WS_H
#define PANDA2MQTT_WS_H

#include <glib.h>
#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>

struct p2m_ws;

/* The largest message taken from a device: a full snapshot is a few KiB. */
#define P2M_WS_MAX_MESSAGE ((size_t)64 * 1024)

struct p2m_ws_opts {
	const char *name; /* what log lines start with: "device <id>" */
	const char *host; /* an address, or a name looked up (IPv4) before each dial */
	int port;
	const char *path;    /* the family's ws_path (driver.h), e.g. "/ws" */
	size_t max_message;  /* larger messages close the connection */
	int stale_timeout;   /* seconds without a message before reconnecting; 0 = never */
	int connect_timeout; /* seconds for TCP + upgrade + (oneshot) first message */
	bool oneshot;	     /* first message, then close; never reconnect */
};

struct p2m_ws_callbacks {
	void (*on_open)(void *ud);
	/* One whole text message (NUL-terminated; len excludes the NUL). */
	void (*on_message)(void *ud, const char *text, size_t len);
	/* The connection ended or an attempt failed; why is for the log. A oneshot
	 * connection must not be freed from inside this callback (defer it). */
	void (*on_close)(void *ud, bool was_open, const char *why);
	/* Optional: the send queue has just been emptied (a streamer sends its next part). */
	void (*on_drained)(void *ud);
};

/* The protocol list for p2m_loop_lws_new. */
const struct lws_protocols *p2m_ws_protocols(void);

/* Starts dialing at once. */
struct p2m_ws *p2m_ws_new(struct lws_context *ctx, const struct p2m_ws_opts *opts,
			  const struct p2m_ws_callbacks *cb, void *ud);

/* Queue one text message; -1 when the connection is not open or the queue is full. */
int p2m_ws_send(struct p2m_ws *ws, const char *text);
/* Queue one fragment of a binary message (first and last mark its ends). */
int p2m_ws_send_fragment(struct p2m_ws *ws, const void *data, size_t len, bool first, bool last);
/* Queue a ping; the pong counts as data received (p2m_ws_last_rx). */
int p2m_ws_ping(struct p2m_ws *ws);
size_t p2m_ws_queued(const struct p2m_ws *ws);
/* Drop every queued message not yet begun (what must go first follows); a fragmented
 * message already begun keeps its remaining fragments. Returns how many were dropped. */
size_t p2m_ws_purge(struct p2m_ws *ws);
/* When the last message (or pong) arrived: monotonic microseconds. */
gint64 p2m_ws_last_rx(const struct p2m_ws *ws);
/* Close with this WebSocket status (LWS_CLOSE_STATUS_*) once the current write is done;
 * whatever is queued is dropped. on_close follows. */
void p2m_ws_close(struct p2m_ws *ws, int status);

bool p2m_ws_is_open(const struct p2m_ws *ws);

/* Free a connection and drop its link. Not from inside its own on_close. */
void p2m_ws_free(struct p2m_ws *ws);

/* ---- accepted connections (devices that dial in) ---- */

struct p2m_ws_listener;

struct p2m_ws_listen_opts {
	const char *name;  /* log prefix, e.g. "dialin" */
	const char *iface; /* address to listen on; NULL or "0.0.0.0": every one */
	int port;	   /* 0: any free port (p2m_ws_listener_port) */
	const char *path;  /* the only path accepted, e.g. "/ws" */
	const char *token; /* NULL: none; else "?token=" or "Authorization: Bearer" */
	size_t max_message;
	int handshake_timeout; /* seconds from the upgrade to the first whole message */
};

/* A device connected and upgraded. The connection now belongs to the callee, which gives
 * it callbacks (p2m_ws_set_callbacks) before returning; until then it has none. An
 * accepted connection is never redialled: after its on_close it is freed by ws.c, so
 * the owner drops its pointer in on_close (and must not free it there). */
typedef void (*p2m_ws_accept_fn)(void *ud, struct p2m_ws *ws);

struct p2m_ws_listener *p2m_ws_listen(struct lws_context *ctx, const struct p2m_ws_listen_opts *o,
				      p2m_ws_accept_fn accept, void *ud);
int p2m_ws_listener_port(const struct p2m_ws_listener *l);
void p2m_ws_listener_free(struct p2m_ws_listener *l);

/* Hand an accepted connection to a (new) owner: its log name, callbacks and the staleness
 * timeout (0: none) that applies from now on. */
void p2m_ws_set_callbacks(struct p2m_ws *ws, const char *name, const struct p2m_ws_callbacks *cb,
			  void *ud, int stale_timeout);
/* The address an accepted connection came from. */
const char *p2m_ws_peer(const struct p2m_ws *ws);

#endif
