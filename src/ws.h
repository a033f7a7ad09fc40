/* ws.h - the WebSocket client transport, one struct per connection to a device.
 *
 * Owns: dialing ws://host:port/path, reassembling fragmented messages under a size
 * cap, an ordered send queue, the staleness timeout, and reconnects with backoff
 * (also when TCP connects and the upgrade never answers). A "oneshot" connection
 * delivers its first message and closes: that is how a fresh snapshot is read.
 * Does not own: what messages mean (device.c and the drivers). */
#ifndef PANDA2MQTT_WS_H
#define PANDA2MQTT_WS_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>

struct p2m_ws;

/* The largest message taken from a device: a full snapshot is a few KiB. */
#define P2M_WS_MAX_MESSAGE ((size_t)64 * 1024)

struct p2m_ws_opts {
	const char *name; /* device id, for log lines */
	const char *host;
	int port;
	const char *path;
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
};

/* The protocol list for p2m_loop_lws_new. */
const struct lws_protocols *p2m_ws_protocols(void);

/* Starts dialing at once. */
struct p2m_ws *p2m_ws_new(struct lws_context *ctx, const struct p2m_ws_opts *opts,
			  const struct p2m_ws_callbacks *cb, void *ud);

/* Queue one text message; -1 when the connection is not open or the queue is full. */
int p2m_ws_send(struct p2m_ws *ws, const char *text);

bool p2m_ws_is_open(const struct p2m_ws *ws);

void p2m_ws_free(struct p2m_ws *ws);

#endif
