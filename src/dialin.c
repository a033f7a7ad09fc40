/* dialin.c - see dialin.h.
 *
 * A device that reboots comes back on a new connection before the gateway may have
 * noticed that the old one is dead (no FIN from a device that lost power). Refusing it
 * until the old link times out would keep a rebooted device out for a minute; taking
 * it at once would let anything on the LAN that knows a device id hijack the device's
 * entities. So a claim for a connected id waits CLAIM_WAIT_S while the old link is
 * pinged: if it answers, the device is still there and the newcomer is refused (close
 * status 1008, a warning naming both addresses); if not, the newcomer replaces it. */
#include "dialin.h"

#include "device.h"
#include "panda2mqtt/dialin_handshake.h"
#include "panda2mqtt/families.h"
#include "panda2mqtt/log.h"
#include "loop.h"
#include "ws.h"

#include <glib.h>
#include <stdarg.h>
#include <string.h>

/* A device refused for a rival claim keeps dialling: say so once a minute, not each time. */
#define REFUSAL_QUIET_S 60
/* Connections that have not yet said who they are, at most: more are refused. */
#define MAX_SESSIONS	    32
#define HANDSHAKE_TIMEOUT_S 10
#define CLAIM_WAIT_S	    5

struct session {
	struct p2m_dialin *di;
	struct p2m_ws *ws;
	char *log_name;
	/* a claim for a connected device's id, waiting for the old link's answer */
	const struct p2m_driver *drv;
	char id[P2M_ID_MAX + 1];
	char *first;
	size_t first_len;
	gint64 claim_at; /* 0: no claim under way */
	bool closing;	 /* refused: waiting for its on_close */
};

struct p2m_dialin {
	const struct p2m_dialin_conf *conf;
	struct p2m_ws_listener *listener;
	struct p2m_dialin_callbacks cb;
	void *ud;
	GPtrArray *sessions;
	struct p2m_tick *tick;
	GHashTable *refused_at; /* id -> monotonic us of its last logged refusal */
};

static void session_free(struct session *s)
{
	g_free(s->log_name);
	g_free(s->first);
	g_free(s);
}

/* The session is over for us; its connection is gone or has been handed on. */
static void session_drop(struct session *s)
{
	g_ptr_array_remove(s->di->sessions, s);
	session_free(s);
}

static void refuse(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void refuse(struct session *s, const char *fmt, ...)
{
	va_list ap;
	char *why;

	gint64 now = g_get_monotonic_time(), *last;

	va_start(ap, fmt);
	why = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	last = s->id[0] ? g_hash_table_lookup(s->di->refused_at, s->id) : NULL;
	if (last && now - *last < (gint64)REFUSAL_QUIET_S * G_USEC_PER_SEC) {
		p2m_debug("dialin: refused %s from %s again: %s", s->id, p2m_ws_peer(s->ws), why);
	} else {
		p2m_warn("dialin: refused %s from %s: %s", s->id[0] ? s->id : "a connection",
			 p2m_ws_peer(s->ws), why);
		if (s->id[0] && g_hash_table_size(s->di->refused_at) < 1024)
			g_hash_table_replace(s->di->refused_at, g_strdup(s->id),
					     g_memdup2(&now, sizeof(now)));
	}
	g_free(why);
	s->closing = true;
	s->claim_at = 0;
	p2m_ws_close(s->ws, LWS_CLOSE_STATUS_POLICY_VIOLATION);
}

static void adopt(struct session *s)
{
	struct p2m_dialin *di = s->di;
	struct p2m_ws *ws = s->ws;

	g_ptr_array_remove(di->sessions, s);
	di->cb.adopt(di->ud, s->drv, s->id, ws, s->first, s->first_len);
	session_free(s);
}

static void on_session_message(void *ud, const char *text, size_t len)
{
	struct session *s = ud;
	struct p2m_dialin *di = s->di;
	struct p2m_device *d;

	if (s->closing || s->drv) {
		p2m_debug("dialin: %s: message before the claim was settled; ignored",
			  p2m_ws_peer(s->ws));
		return;
	}
	switch (p2m_dialin_identify(text, len, &s->drv, s->id, sizeof(s->id))) {
	case P2M_HANDSHAKE_UNKNOWN:
		refuse(s, "its first message is not the handshake of any device family");
		return;
	case P2M_HANDSHAKE_NO_ID:
		refuse(s, "its %s handshake carries no usable device_id", s->drv->model);
		return;
	case P2M_HANDSHAKE_OK:
		break;
	}
	if (!p2m_dialin_allowed(di->conf, s->drv, s->id)) {
		refuse(s, "not in [dialin] allow");
		return;
	}
	if (!di->cb.admit(di->ud, s->id)) {
		unsigned held = 0;

		/* a flood of new ids is one line a minute, not one per id */
		if (p2m_log_ratelimit("dialin max_devices", 60, &held))
			p2m_warn("dialin: refused %s from %s: [dialin] max_devices (%d) devices "
				 "dial in already (%u more refused since the last line); an "
				 "endpoint reachable from untrusted networks needs a token",
				 s->id, p2m_ws_peer(s->ws), di->conf->max_devices, held);
		s->closing = true;
		p2m_ws_close(s->ws, LWS_CLOSE_STATUS_POLICY_VIOLATION);
		return;
	}
	s->first = g_strndup(text, len);
	s->first_len = len;
	d = di->cb.find(di->ud, s->id);
	if (d && p2m_ws_is_open(p2m_device_link(d))) {
		p2m_debug("dialin: %s from %s claims the id of the connected device (from %s); "
			  "checking that one",
			  s->id, p2m_ws_peer(s->ws), p2m_ws_peer(p2m_device_link(d)));
		s->claim_at = g_get_monotonic_time();
		p2m_ws_ping(p2m_device_link(d));
		return;
	}
	adopt(s);
}

static void on_session_close(void *ud, bool was_open, const char *why)
{
	struct session *s = ud;

	(void)was_open;
	if (!s->closing && !s->drv)
		p2m_info("dialin: a connection from %s ended before its handshake (%s)",
			 p2m_ws_peer(s->ws), why);
	session_drop(s); /* ws.c frees the connection itself */
}

/* Once a second: settle the claims whose wait is over (or whose rival is gone). */
static void on_tick(void *ud)
{
	struct p2m_dialin *di = ud;
	gint64 now = g_get_monotonic_time();

	for (guint i = di->sessions->len; i-- > 0;) {
		struct session *s = g_ptr_array_index(di->sessions, i);
		struct p2m_device *d;
		struct p2m_ws *old;

		if (!s->claim_at)
			continue;
		d = di->cb.find(di->ud, s->id);
		old = d ? p2m_device_link(d) : NULL;
		if (!p2m_ws_is_open(old)) {
			adopt(s);
		} else if (p2m_ws_last_rx(old) > s->claim_at) {
			refuse(s, "%s is connected from %s and still answers", s->id,
			       p2m_ws_peer(old));
		} else if (now - s->claim_at >= (gint64)CLAIM_WAIT_S * G_USEC_PER_SEC) {
			p2m_warn("dialin: %s: the connection from %s did not answer within %d s; "
				 "taking the new one from %s",
				 s->id, p2m_ws_peer(old), CLAIM_WAIT_S, p2m_ws_peer(s->ws));
			adopt(s);
		}
	}
}

static void on_accept(void *ud, struct p2m_ws *ws)
{
	static const struct p2m_ws_callbacks cb = {
	    .on_message = on_session_message,
	    .on_close = on_session_close,
	};
	struct p2m_dialin *di = ud;
	struct session *s = g_new0(struct session, 1);

	s->di = di;
	s->ws = ws;
	s->log_name = g_strdup_printf("dialin %s", p2m_ws_peer(ws));
	g_ptr_array_add(di->sessions, s);
	p2m_ws_set_callbacks(ws, s->log_name, &cb, s, 0);
	p2m_debug("dialin: connection from %s", p2m_ws_peer(ws));
	if (di->sessions->len > MAX_SESSIONS)
		refuse(s, "more than %d connections are waiting for their handshake", MAX_SESSIONS);
}

struct p2m_dialin *p2m_dialin_new(struct lws_context *lws, const struct p2m_dialin_conf *conf,
				  const struct p2m_dialin_callbacks *cb, void *ud)
{
	struct p2m_dialin *di = g_new0(struct p2m_dialin, 1);
	const struct p2m_ws_listen_opts o = {
	    .name = "dialin",
	    .iface = conf->listen,
	    .port = conf->port,
	    .path = conf->path,
	    .token = conf->token,
	    .max_message = P2M_WS_MAX_MESSAGE,
	    .handshake_timeout = HANDSHAKE_TIMEOUT_S,
	};

	di->conf = conf;
	di->cb = *cb;
	di->ud = ud;
	di->sessions = g_ptr_array_new();
	di->refused_at = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	di->listener = p2m_ws_listen(lws, &o, on_accept, di);
	if (!di->listener) {
		p2m_dialin_free(di);
		return NULL;
	}
	di->tick = p2m_tick_add(on_tick, di);
	p2m_info("dialin: devices may connect to ws://%s:%d%s%s", conf->listen,
		 p2m_ws_listener_port(di->listener), conf->path,
		 conf->token ? " (with the token)" : "");
	return di;
}

void p2m_dialin_free(struct p2m_dialin *di)
{
	if (!di)
		return;
	p2m_tick_remove(di->tick);
	for (guint i = 0; i < di->sessions->len; i++) {
		struct session *s = g_ptr_array_index(di->sessions, i);
		p2m_ws_free(s->ws);
		session_free(s);
	}
	g_ptr_array_free(di->sessions, TRUE);
	g_hash_table_destroy(di->refused_at);
	p2m_ws_listener_free(di->listener);
	g_free(di);
}
