/* http_post.c - see http_post.h.
 *
 * The libwebsockets HTTP client as its POST example drives it (lws 4.1.6): the headers
 * are added in CLIENT_APPEND_HANDSHAKE_HEADER, which also says a body follows
 * (lws_client_http_body_pending); each CLIENT_HTTP_WRITEABLE writes one piece
 * (LWS_WRITE_HTTP, the last LWS_WRITE_HTTP_FINAL) and asks for the next callback, so the
 * socket's pace sets the reading's pace. lws keeps what a short write left and calls
 * WRITEABLE again only once it is out. The end of the connection is taken from whichever
 * of COMPLETED_CLIENT_HTTP, CLIENT_CONNECTION_ERROR, CLOSED_CLIENT_HTTP and WSI_DESTROY
 * comes first; the owner hears of it once. */
#include "http_post.h"

#include "firmware.h"
#include "loop.h"
#include "resolve.h"
#include "panda2mqtt/log.h"

#include <glib.h>
#include <string.h>
#include <sys/socket.h>

#define PROTOCOL_NAME "p2m-http-post"
/* The socket's send buffer: what the kernel holds beyond what the peer has taken. Left
 * to itself Linux grows it to megabytes, a whole firmware image: the progress would be
 * the kernel's, and a device that stops reading would look like one that took it all. */
#define SEND_BUFFER (32 * 1024)

struct p2m_http_post {
	struct lws_context *ctx;
	struct lws *wsi;
	struct p2m_http_post_opts o;
	struct p2m_http_post_callbacks cb;
	void *ud;
	struct p2m_lookup *lookup;
	struct p2m_tick *tick;
	gint64 last_activity; /* monotonic us */
	uint64_t sent;
	int status;
	bool body_sent, ended;
	bool in_connect; /* inside lws_client_connect_via_info: done() waits for its return */
	bool done_due;
	char why[160];
};

static void set_why(struct p2m_http_post *p, const char *why)
{
	if (!p->why[0])
		g_strlcpy(p->why, why, sizeof(p->why));
}

/* The end, whichever way it came: told once. The connection, if any, is let go. */
static void finish(struct p2m_http_post *p)
{
	if (p->ended)
		return;
	p->ended = true;
	if (p->wsi) {
		lws_set_opaque_user_data(p->wsi, NULL);
		lws_set_timeout(p->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		p2m_loop_lws_kick(p->ctx);
		p->wsi = NULL;
	}
	if (!p->status)
		set_why(p, p->body_sent ? "no answer" : "connection closed");
	/* lws may still write through i.pwsi on its way out of the connect call: the owner,
	 * who may free us in done(), hears of it after that */
	if (p->in_connect) {
		p->done_due = true;
		return;
	}
	p->cb.done(p->ud, p->body_sent, p->status, p->why);
}

static void on_tick(void *data)
{
	struct p2m_http_post *p = data;
	char why[96];

	if (p->ended ||
	    g_get_monotonic_time() - p->last_activity < (gint64)p->o.idle_timeout * G_USEC_PER_SEC)
		return;
	snprintf(why, sizeof(why), "nothing sent or received for %d s", p->o.idle_timeout);
	set_why(p, why);
	p2m_lookup_cancel(p->lookup);
	p->lookup = NULL;
	finish(p);
}

static int add_headers(struct p2m_http_post *p, struct lws *wsi, unsigned char **pos,
		       unsigned char *end)
{
	char len[24];
	int sndbuf = SEND_BUFFER;
	lws_sockfd_type fd = lws_get_socket_fd(wsi);

	if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) != 0)
		p2m_debug("%s: SO_SNDBUF not set", p->o.name);
	snprintf(len, sizeof(len), "%llu", (unsigned long long)p->o.length);
	if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
					 (const unsigned char *)p->o.content_type,
					 (int)strlen(p->o.content_type), pos, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
					 (const unsigned char *)len, (int)strlen(len), pos, end))
		return -1;
	if (p->o.header) {
		char name[64];

		snprintf(name, sizeof(name), "%s:", p->o.header);
		if (lws_add_http_header_by_name(wsi, (const unsigned char *)name,
						(const unsigned char *)p->o.header_value,
						(int)strlen(p->o.header_value), pos, end))
			return -1;
	}
	lws_client_http_body_pending(wsi, 1);
	lws_callback_on_writable(wsi);
	return 0;
}

/* One piece of the body. */
static int write_body(struct p2m_http_post *p, struct lws *wsi)
{
	unsigned char buf[LWS_PRE + P2M_FIRMWARE_CHUNK];
	uint64_t left = p->o.length - p->sent;
	size_t want = (size_t)MIN(left, (uint64_t)P2M_FIRMWARE_CHUNK);
	ssize_t n;
	bool last;

	if (p->body_sent)
		return 0;
	n = want ? p->cb.body(p->ud, buf + LWS_PRE, want) : 0;
	if (n < 0 || (size_t)n != want) {
		set_why(p, "the body could not be read");
		return -1;
	}
	last = p->sent + (uint64_t)n >= p->o.length;
	if (lws_write(wsi, buf + LWS_PRE, (size_t)n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) <
	    (int)n) {
		set_why(p, "sending failed");
		return -1;
	}
	p->sent += (uint64_t)n;
	p->last_activity = g_get_monotonic_time();
	/* lws bounds the whole body by its context's timeout_secs (10 s), which a 4 MiB
	 * image over Wi-Fi can take longer than: progress moves its bound on, ours
	 * (on_tick) decides */
	lws_set_timeout(wsi,
			last ? PENDING_TIMEOUT_AWAITING_SERVER_RESPONSE
			     : PENDING_TIMEOUT_CLIENT_ISSUE_PAYLOAD,
			p->o.idle_timeout + 5);
	if (last) {
		p->body_sent = true;
		lws_client_http_body_pending(wsi, 0);
	} else {
		lws_callback_on_writable(wsi);
	}
	if (p->cb.progress)
		p->cb.progress(p->ud, p->sent);
	return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		    size_t len)
{
	struct p2m_http_post *p = wsi ? lws_get_opaque_user_data(wsi) : NULL;
	char buf[LWS_PRE + 1024], *px;
	int lenx;

	(void)user;
	if (!p)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
		return add_headers(p, wsi, (unsigned char **)in, *(unsigned char **)in + len);
	case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE:
		return write_body(p, wsi);
	case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
		p->status = (int)lws_http_client_http_response(wsi);
		p->last_activity = g_get_monotonic_time();
		return 0;
	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP:
		px = buf + LWS_PRE;
		lenx = (int)sizeof(buf) - LWS_PRE;
		return lws_http_client_read(wsi, &px, &lenx) < 0 ? -1 : 0;
	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
		p->last_activity = g_get_monotonic_time();
		return 0;
	case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
		finish(p);
		return 0;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		set_why(p, in ? (const char *)in : "connection failed");
		p->wsi = NULL;
		lws_set_opaque_user_data(wsi, NULL);
		finish(p);
		return 0;
	case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
	case LWS_CALLBACK_WSI_DESTROY:
		set_why(p, "the device closed the connection");
		p->wsi = NULL;
		lws_set_opaque_user_data(wsi, NULL);
		finish(p);
		return 0;
	default:
		return 0;
	}
}

static const struct lws_protocols protocol = {PROTOCOL_NAME, callback, 0, 0, 0, NULL, 0};

const struct lws_protocols *p2m_http_post_protocol(void)
{
	return &protocol;
}

static void connect_to(struct p2m_http_post *p, const char *addr)
{
	struct lws_client_connect_info i;

	memset(&i, 0, sizeof(i));
	i.context = p->ctx;
	i.address = addr;
	i.port = p->o.port;
	i.path = p->o.path;
	i.host = p->o.host;
	i.origin = p->o.host;
	i.method = "POST";
	i.alpn = "http/1.1";
	i.protocol = PROTOCOL_NAME;
	i.local_protocol_name = PROTOCOL_NAME;
	i.pwsi = &p->wsi;
	i.opaque_user_data = p;
	p->last_activity = g_get_monotonic_time();
	p->in_connect = true;
	if (!lws_client_connect_via_info(&i)) {
		p->wsi = NULL;
		set_why(p, "cannot start a connection");
		finish(p);
	}
	p->in_connect = false;
	if (p->done_due) {
		p->done_due = false;
		p->cb.done(p->ud, p->body_sent, p->status, p->why);
		return;
	}
	p2m_loop_lws_kick(p->ctx);
}

static void on_lookup(void *ud, const char *const *addrs, size_t n, const char *error)
{
	struct p2m_http_post *p = ud;

	p->lookup = NULL;
	if (!n) {
		char why[160];

		snprintf(why, sizeof(why), "cannot resolve %s: %s", p->o.host, error);
		set_why(p, why);
		finish(p);
		return;
	}
	connect_to(p, addrs[0]);
}

/* Started from a GLib callback: the owner may not be ready for done() before this
 * returns, so a connection that fails at once is told from the loop. */
static gboolean start_later(gpointer data)
{
	struct p2m_http_post *p = data;

	if (p2m_is_address(p->o.host))
		connect_to(p, p->o.host);
	else
		p->lookup = p2m_lookup_start(p->o.host, AF_INET, on_lookup, p);
	return G_SOURCE_REMOVE;
}

struct p2m_http_post *p2m_http_post_start(struct lws_context *ctx,
					  const struct p2m_http_post_opts *o,
					  const struct p2m_http_post_callbacks *cb, void *ud)
{
	struct p2m_http_post *p = g_new0(struct p2m_http_post, 1);

	p->ctx = ctx;
	p->o = *o;
	p->o.name = g_strdup(o->name);
	p->o.host = g_strdup(o->host);
	p->o.path = g_strdup(o->path);
	p->o.content_type = g_strdup(o->content_type);
	p->o.header = g_strdup(o->header);
	p->o.header_value = g_strdup(o->header_value ? o->header_value : "");
	p->cb = *cb;
	p->ud = ud;
	p->last_activity = g_get_monotonic_time();
	p->tick = p2m_tick_add(on_tick, p);
	g_idle_add(start_later, p);
	return p;
}

void p2m_http_post_free(struct p2m_http_post *p)
{
	if (!p)
		return;
	g_idle_remove_by_data(p);
	p2m_lookup_cancel(p->lookup);
	p2m_tick_remove(p->tick);
	if (p->wsi) {
		lws_set_opaque_user_data(p->wsi, NULL);
		lws_set_timeout(p->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		p2m_loop_lws_kick(p->ctx);
	}
	g_free((char *)p->o.name);
	g_free((char *)p->o.host);
	g_free((char *)p->o.path);
	g_free((char *)p->o.content_type);
	g_free((char *)p->o.header);
	g_free((char *)p->o.header_value);
	g_free(p);
}
