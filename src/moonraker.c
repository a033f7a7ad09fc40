/* moonraker.c - see moonraker.h.
 *
 * One lws protocol serves both HTTP and the WebSocket, like Moonraker on one port. Every
 * reply is built when the request arrives (the status is current then) and queued; a
 * client that keeps asking without reading is closed once its queue is full, so nobody
 * can make the gateway hold memory without bound. Messages are reassembled up to
 * P2M_MOONRAKER_MAX_REQUEST; a longer one closes the connection (Moonraker clients send
 * a few hundred bytes). */
#include "moonraker.h"

#include "loop.h"
#include "panda2mqtt/log.h"
#include "panda2mqtt/moonraker_rpc.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QUEUE_MAX 16

struct p2m_moonraker {
	struct lws_vhost *vh;
	const struct p2m_printer_source *src;
	int clients;
	int next_id;
	char hostname[64];
};

/* Per connection (lws zeroes it). HTTP uses only http_body. */
struct conn {
	char *rx;
	size_t rx_len;
	bool rx_overflow;
	char *q[QUEUE_MAX]; /* replies, LWS_PRE bytes of headroom each */
	size_t qlen[QUEUE_MAX];
	unsigned head, count;
	char *http_body;
	int id;
	bool ws;
	char peer[64];
};

static struct p2m_moonraker *of(struct lws *wsi)
{
	return lws_get_vhost_user(lws_get_vhost(wsi));
}

static void make_view(const struct p2m_moonraker *m, const struct conn *c,
		      struct p2m_printer_status *st, struct p2m_moonraker_view *v)
{
	p2m_printer_source_status(m->src, st);
	*v = (struct p2m_moonraker_view){.status = st,
					 .known = p2m_printer_source_known(m->src),
					 .eventtime =
					     (double)g_get_monotonic_time() / G_USEC_PER_SEC,
					 .hostname = m->hostname,
					 .websocket_count = m->clients,
					 .connection_id = c ? c->id : 0};
}

static void conn_clear(struct conn *c)
{
	while (c->count) {
		g_free(c->q[c->head]);
		c->head = (c->head + 1) % QUEUE_MAX;
		c->count--;
	}
	g_free(c->rx);
	c->rx = NULL;
	cJSON_free(c->http_body);
	c->http_body = NULL;
}

/* Returns -1 when the client must be closed. */
static int enqueue(struct lws *wsi, struct conn *c, const char *text)
{
	size_t n = strlen(text);
	char *buf;

	if (c->count == QUEUE_MAX) {
		p2m_warn("moonraker: client %s sends faster than it reads (%d replies waiting); "
			 "closing it",
			 c->peer, QUEUE_MAX);
		return -1;
	}
	buf = g_malloc(LWS_PRE + n + 1);
	memcpy(buf + LWS_PRE, text, n + 1);
	c->q[(c->head + c->count) % QUEUE_MAX] = buf;
	c->qlen[(c->head + c->count) % QUEUE_MAX] = n;
	c->count++;
	lws_callback_on_writable(wsi);
	return 0;
}

static int on_message(struct lws *wsi, struct conn *c)
{
	struct p2m_moonraker *m = of(wsi);
	struct p2m_printer_status st;
	struct p2m_moonraker_view v;
	char *reply;
	int rc = 0;

	make_view(m, c, &st, &v);
	reply = p2m_moonraker_rpc(c->rx ? c->rx : "", c->rx_len, &v);
	if (reply && strstr(reply, "\"error\""))
		p2m_info("moonraker: client %s: %.200s", c->peer, reply);
	if (reply)
		rc = enqueue(wsi, c, reply);
	cJSON_free(reply);
	return rc;
}

static int on_receive(struct lws *wsi, struct conn *c, const void *in, size_t len)
{
	int rc = 0;

	if (lws_is_first_fragment(wsi)) {
		c->rx_len = 0;
		c->rx_overflow = false;
	}
	if (!c->rx_overflow && c->rx_len + len > P2M_MOONRAKER_MAX_REQUEST) {
		p2m_warn("moonraker: client %s: message longer than %zu bytes; closing it", c->peer,
			 P2M_MOONRAKER_MAX_REQUEST);
		c->rx_overflow = true;
		return -1;
	}
	if (!c->rx) {
		c->rx = g_malloc(P2M_MOONRAKER_MAX_REQUEST);
	}
	memcpy(c->rx + c->rx_len, in, len);
	c->rx_len += len;
	if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
		if (lws_frame_is_binary(wsi))
			p2m_warn("moonraker: client %s: binary message ignored", c->peer);
		else
			rc = on_message(wsi, c);
		c->rx_len = 0;
	}
	return rc;
}

static int on_writeable(struct lws *wsi, struct conn *c)
{
	char *buf;
	size_t n;

	if (!c->count)
		return 0;
	buf = c->q[c->head];
	n = c->qlen[c->head];
	c->head = (c->head + 1) % QUEUE_MAX;
	c->count--;
	if (lws_write(wsi, (unsigned char *)buf + LWS_PRE, n, LWS_WRITE_TEXT) < (int)n) {
		g_free(buf);
		return -1;
	}
	g_free(buf);
	if (c->count)
		lws_callback_on_writable(wsi);
	return 0;
}

static int http_request(struct lws *wsi, struct conn *c, const char *uri)
{
	unsigned char hdr[LWS_PRE + 512], *start = &hdr[LWS_PRE], *p = start,
					  *end = &hdr[sizeof(hdr) - 1];
	struct p2m_printer_status st;
	struct p2m_moonraker_view v;

	if (strcmp(uri, "/printer/info") != 0 && strcmp(uri, "/server/info") != 0) {
		p2m_debug("moonraker: HTTP %.100s from %s: 404", uri, c->peer);
		if (lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL))
			return -1;
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	}
	make_view(of(wsi), c, &st, &v);
	if (strcmp(uri, "/printer/info") == 0) {
		c->http_body = p2m_moonraker_http_printer_info(&v);
	} else {
		char *rpc = p2m_moonraker_rpc(
		    "{\"jsonrpc\":\"2.0\",\"method\":\"server.info\",\"id\":0}", 46, &v);
		cJSON *r = cJSON_Parse(rpc), *out = cJSON_CreateObject();

		cJSON_AddItemToObject(out, "result",
				      cJSON_DetachItemFromObjectCaseSensitive(r, "result"));
		c->http_body = cJSON_PrintUnformatted(out);
		cJSON_Delete(out);
		cJSON_Delete(r);
		cJSON_free(rpc);
	}
	if (!c->http_body ||
	    lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "application/json",
					strlen(c->http_body), &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return 1;
	lws_callback_on_writable(wsi);
	return 0;
}

static int http_body(struct lws *wsi, struct conn *c)
{
	size_t n;
	unsigned char *buf;
	int w;

	if (!c->http_body)
		return 0;
	n = strlen(c->http_body);
	buf = g_malloc(LWS_PRE + n);
	memcpy(buf + LWS_PRE, c->http_body, n);
	cJSON_free(c->http_body);
	c->http_body = NULL;
	w = lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_HTTP_FINAL);
	g_free(buf);
	if (w < (int)n)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int confirm_upgrade(struct lws *wsi)
{
	char uri[128] = "";

	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) > 0 &&
	    strcmp(uri, "/websocket") == 0)
		return 0;
	p2m_info("moonraker: WebSocket upgrade on \"%s\" refused (only /websocket)", uri);
	if (lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL))
		return -1;
	return 1;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		    size_t len)
{
	struct conn *c = user;
	struct p2m_moonraker *m;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		lws_get_peer_simple(wsi, c->peer, sizeof(c->peer));
		return http_request(wsi, c, in ? (const char *)in : "");
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return http_body(wsi, c);
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		if (c && !c->ws)
			conn_clear(c);
		return 0;
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return confirm_upgrade(wsi);
	case LWS_CALLBACK_ESTABLISHED:
		m = of(wsi);
		memset(c, 0, sizeof(*c));
		c->ws = true;
		c->id = ++m->next_id;
		m->clients++;
		lws_get_peer_simple(wsi, c->peer, sizeof(c->peer));
		p2m_info("moonraker: client %s connected (%d connected)", c->peer, m->clients);
		return 0;
	case LWS_CALLBACK_CLOSED:
		m = of(wsi);
		if (c->ws) {
			m->clients--;
			p2m_info("moonraker: client %s disconnected (%d connected)", c->peer,
				 m->clients);
		}
		conn_clear(c);
		c->ws = false;
		return 0;
	case LWS_CALLBACK_RECEIVE:
		return on_receive(wsi, c, in, len);
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return on_writeable(wsi, c);
	default:
		return 0;
	}
}

static const struct lws_protocols protocols[] = {
    {.name = "moonraker",
     .callback = callback,
     .per_session_data_size = sizeof(struct conn),
     .rx_buffer_size = 4096},
    {.name = NULL, .callback = NULL},
};

struct p2m_moonraker *p2m_moonraker_new(struct lws_context *ctx,
					const struct p2m_moonraker_conf *conf,
					const struct p2m_printer_source *src)
{
	struct lws_context_creation_info info;
	struct p2m_moonraker *m = g_new0(struct p2m_moonraker, 1);
	bool any4 = strcmp(conf->listen, "0.0.0.0") == 0;

	m->src = src;
	if (gethostname(m->hostname, sizeof(m->hostname) - 1) != 0)
		strcpy(m->hostname, "panda2mqtt");
	memset(&info, 0, sizeof(info));
	/* 0.0.0.0: every IPv4 address (the Panda Breath speaks IPv4 only); "::" every address */
	info.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND |
		       (strchr(conf->listen, ':') ? 0 : LWS_SERVER_OPTION_DISABLE_IPV6);
	info.port = conf->port;
	info.iface = any4 || strcmp(conf->listen, "::") == 0 ? NULL : conf->listen;
	info.protocols = protocols;
	info.vhost_name = "moonraker";
	info.user = m;
	m->vh = lws_create_vhost(ctx, &info);
	if (!m->vh || lws_get_vhost_listen_port(m->vh) <= 0) {
		p2m_err("moonraker: cannot listen on %s port %d", conf->listen, conf->port);
		g_free(m);
		return NULL;
	}
	p2m_loop_lws_kick(ctx);
	p2m_info("moonraker: virtual Moonraker on %s port %d (bind the Panda Breath to it as a "
		 "Klipper printer)",
		 conf->listen, conf->port);
	return m;
}

void p2m_moonraker_free(struct p2m_moonraker *m)
{
	g_free(m);
}
