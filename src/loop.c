/* loop.c - see loop.h.
 *
 * libwebsockets runs on libuv, and libuv runs inside GLib as one GSource watching
 * libuv's epoll descriptor (uv_backend_fd, uv_backend_timeout: libuv's embedding API).
 * Why not lws's GLib event library: GLib polls every descriptor of every source on
 * every iteration, so with hundreds of devices each frame cost O(devices) in poll()
 * and in GSource bookkeeping (the profile in docs/BENCHMARKS.md). epoll only reports
 * the sockets that are ready.
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
#include <uv.h>

/* One lws context per process, so one libuv loop. */
static struct {
	uv_loop_t uv;
	GSource *source;
	gpointer fd_tag;
	bool up;
	struct lws_context *ctx; /* lws sets it to NULL once the context is wholly gone */
} uvl;

struct uv_gsource {
	GSource base;
};

/* libuv caches "now"; GLib may have run other sources since, so refresh it before asking
 * how long until libuv's next timer. */
static gint uv_timeout_ms(void)
{
	uv_update_time(&uvl.uv);
	return uv_backend_timeout(&uvl.uv);
}

static gboolean uv_source_prepare(GSource *s, gint *timeout)
{
	(void)s;
	*timeout = uv_timeout_ms();
	return *timeout == 0;
}

static gboolean uv_source_check(GSource *s)
{
	return (g_source_query_unix_fd(s, uvl.fd_tag) & G_IO_IN) || uv_timeout_ms() == 0;
}

static gboolean uv_source_dispatch(GSource *s, GSourceFunc cb, gpointer data)
{
	(void)s;
	(void)cb;
	(void)data;
	uv_run(&uvl.uv, UV_RUN_NOWAIT);
	return G_SOURCE_CONTINUE;
}

/* GLib "blocks" a source that may not recurse while it is dispatched: it takes the
 * source's descriptors out of the poll set and puts them back afterwards, and putting
 * them back signals the context's wakeup eventfd, so every dispatch cost a write() and,
 * at the next iteration, a read() and often a poll() more (strace in docs/BENCHMARKS.md).
 * Nothing here runs the main loop from inside a dispatch, so letting the two busy
 * sources (libuv's and the broker's socket) "recurse" changes nothing else. */
static void never_blocked(GSource *s)
{
	g_source_set_can_recurse(s, TRUE);
}

static GSourceFuncs uv_source_funcs = {
    .prepare = uv_source_prepare,
    .check = uv_source_check,
    .dispatch = uv_source_dispatch,
};

struct lws_context *p2m_loop_lws_new(const struct lws_protocols *protocols)
{
	struct lws_context_creation_info info;
	void *foreign_loops[1] = {&uvl.uv};
	struct lws_context *ctx;

	if (uvl.up || uv_loop_init(&uvl.uv) != 0)
		return NULL;
	uvl.up = true;
	uvl.source = g_source_new(&uv_source_funcs, sizeof(struct uv_gsource));
	uvl.fd_tag = g_source_add_unix_fd(uvl.source, uv_backend_fd(&uvl.uv), G_IO_IN);
	g_source_set_name(uvl.source, "libuv");
	never_blocked(uvl.source);
	g_source_attach(uvl.source, NULL);

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.options = LWS_SERVER_OPTION_LIBUV;
	info.foreign_loops = foreign_loops;
	info.pcontext = &uvl.ctx;
	/* No lws PING keepalive (retry/validity policy left unset): lws only trusts PONG,
	 * which the device may never send. The data stream and a staleness timer in ws.c
	 * are the proof of life instead. */
	info.timeout_secs = 10;
	info.connect_timeout_secs = 10;
	ctx = lws_create_context(&info);
	uvl.ctx = ctx;
	if (!ctx)
		p2m_loop_lws_destroy(NULL);
	return ctx;
}

void p2m_loop_lws_kick(struct lws_context *ctx)
{
	if (ctx)
		lws_cancel_service(ctx);
}

void p2m_loop_lws_destroy(struct lws_context *ctx)
{
	if (ctx)
		lws_context_destroy(ctx);
	if (!uvl.up)
		return;
	/* On a foreign loop lws closes its libuv handles asynchronously: run libuv alone
	 * until they are closed, and call destroy again for its last stage (lws 4.1 frees
	 * the context only then), until lws says the context is gone. */
	for (int i = 0; i < 4; i++) {
		uv_run(&uvl.uv, UV_RUN_DEFAULT);
		if (!uvl.ctx)
			break;
		lws_context_destroy(uvl.ctx);
	}
	if (uv_loop_close(&uvl.uv) != 0)
		p2m_warn("libuv: handles still open at exit");
	g_source_destroy(uvl.source);
	g_source_unref(uvl.source);
	uvl.source = NULL;
	uvl.up = false;
}

struct p2m_tick {
	void (*fn)(void *ud);
	void *ud;
	struct p2m_tick *prev, *next;
};

static struct {
	struct p2m_tick *head;
	struct p2m_tick *cursor; /* the next one to run while on_ticks walks the list */
	guint source;
} ticks;

static gboolean on_ticks(gpointer data)
{
	(void)data;
	for (struct p2m_tick *t = ticks.head; t; t = ticks.cursor) {
		ticks.cursor = t->next;
		t->fn(t->ud);
	}
	ticks.cursor = NULL;
	if (ticks.head)
		return G_SOURCE_CONTINUE;
	ticks.source = 0;
	return G_SOURCE_REMOVE;
}

struct p2m_tick *p2m_tick_add(void (*fn)(void *ud), void *ud)
{
	struct p2m_tick *t = g_new0(struct p2m_tick, 1);

	t->fn = fn;
	t->ud = ud;
	t->next = ticks.head;
	if (ticks.head)
		ticks.head->prev = t;
	ticks.head = t;
	if (!ticks.source)
		ticks.source = g_timeout_add_seconds(1, on_ticks, NULL);
	return t;
}

void p2m_tick_remove(struct p2m_tick *t)
{
	if (!t)
		return;
	if (ticks.cursor == t)
		ticks.cursor = t->next;
	if (t->prev)
		t->prev->next = t->next;
	else
		ticks.head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	g_free(t);
	/* The last one gone: the source stops itself at its next run, or now when idle. */
	if (!ticks.head && ticks.source && !ticks.cursor) {
		g_source_remove(ticks.source);
		ticks.source = 0;
	}
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
	if (fd >= 0) {
		GSource *s = g_unix_fd_source_new(fd, cond);

		g_source_set_callback(s, (GSourceFunc)(void (*)(void))on_fd, w, NULL);
		never_blocked(s);
		w->source = g_source_attach(s, NULL);
		g_source_unref(s);
	}
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
