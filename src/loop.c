/* loop.c - see loop.h.
 *
 * libmosquitto: one g_unix_fd_add watch on mosquitto_socket(), asking for G_IO_OUT only
 * while there is something to write. During a TLS handshake want_write stays true while
 * only reading advances it; watching for writability then spins the loop, so ask
 * OpenSSL instead until the handshake is done. A hang-up that libmosquitto does not
 * turn into a disconnect (seen with a TLS broker down) would spin at 100% CPU: drop the
 * socket ourselves so on_disconnect schedules the reconnect. */
#include "loop.h"

#include "panda2mqtt/log.h"

#include <glib-unix.h>
#include <openssl/ssl.h>

struct lws_context *p2m_loop_lws_new(GMainLoop *loop, const struct lws_protocols *protocols)
{
	struct lws_context_creation_info info;
	void *foreign_loops[1] = {loop};

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.options = LWS_SERVER_OPTION_GLIB;
	info.foreign_loops = foreign_loops;
	/* No lws PING keepalive (retry/validity policy left unset): lws only trusts PONG,
	 * which the device may never send. The data stream and a staleness timer in ws.c
	 * are the proof of life instead. */
	info.timeout_secs = 10;
	info.connect_timeout_secs = 10;
	return lws_create_context(&info);
}

void p2m_loop_lws_kick(struct lws_context *ctx)
{
	if (ctx)
		lws_cancel_service(ctx);
}

struct p2m_mosq_watch {
	struct mosquitto *mosq;
	int fd;
	GIOCondition cond;
	guint source;
	guint misc_timer;
};

static gboolean on_misc(gpointer data)
{
	struct p2m_mosq_watch *w = data;

	mosquitto_loop_misc(w->mosq);
	p2m_mosq_watch_update(w);
	return G_SOURCE_CONTINUE;
}

static gboolean on_fd(gint fd, GIOCondition cond, gpointer data)
{
	struct p2m_mosq_watch *w = data;

	(void)fd;
	if (cond & G_IO_NVAL) {
		/* The fd was closed under us; forget it and look again. */
		w->fd = -1;
		w->source = 0;
		p2m_mosq_watch_update(w);
		return G_SOURCE_REMOVE;
	}
	if (cond & (G_IO_IN | G_IO_HUP | G_IO_ERR))
		mosquitto_loop_read(w->mosq, 1);
	if ((cond & G_IO_OUT) && mosquitto_socket(w->mosq) == w->fd)
		mosquitto_loop_write(w->mosq, 1);
	if ((cond & (G_IO_HUP | G_IO_ERR)) && mosquitto_socket(w->mosq) == w->fd) {
		/* libmosquitto kept a dead socket: make it a disconnect. */
		p2m_debug("mqtt: socket hung up; dropping it");
		mosquitto_disconnect(w->mosq);
		mosquitto_loop_read(w->mosq, 1);
	}
	/* This source may have been replaced by the update below; tell GLib to drop it then. */
	guint self = w->source;
	p2m_mosq_watch_update(w);
	return w->source == self ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static bool wants_write(struct mosquitto *mosq)
{
	SSL *ssl = mosquitto_ssl_get(mosq);

	if (ssl && !SSL_is_init_finished(ssl))
		return SSL_want_write(ssl);
	return mosquitto_want_write(mosq);
}

void p2m_mosq_watch_update(struct p2m_mosq_watch *w)
{
	int fd = mosquitto_socket(w->mosq);
	GIOCondition cond = G_IO_IN | G_IO_HUP | G_IO_ERR;

	if (fd >= 0 && wants_write(w->mosq))
		cond |= G_IO_OUT;
	if (fd == w->fd && cond == w->cond && (fd < 0 || w->source))
		return;
	if (w->source) {
		GSource *s = g_main_context_find_source_by_id(NULL, w->source);
		if (s && !g_source_is_destroyed(s))
			g_source_destroy(s);
		w->source = 0;
	}
	w->fd = fd;
	w->cond = cond;
	if (fd >= 0)
		w->source = g_unix_fd_add(fd, cond, on_fd, w);
}

struct p2m_mosq_watch *p2m_mosq_watch_new(struct mosquitto *mosq)
{
	struct p2m_mosq_watch *w = g_new0(struct p2m_mosq_watch, 1);

	w->mosq = mosq;
	w->fd = -1;
	w->misc_timer = g_timeout_add_seconds(1, on_misc, w);
	p2m_mosq_watch_update(w);
	return w;
}

void p2m_mosq_watch_free(struct p2m_mosq_watch *w)
{
	if (!w)
		return;
	if (w->source)
		g_source_remove(w->source);
	g_source_remove(w->misc_timer);
	g_free(w);
}
