/* sim_server.c - the simulated Panda Breath's HTTP and WebSocket server.
 *
 * Owns: the libwebsockets context and its one vhost on --host/--port (and the protocol
 * list, whose other members are the control channel and the Klipper client); GET / (a
 * small page), ws://HOST:PORT/ws (no subprotocol or "chat"), 404 and 400 for the rest;
 * refusing connections while rebooting; the connected clients: the snapshot as the first
 * frame, a queue of outgoing messages per client (a slow client loses its oldest pushes,
 * never its snapshot), fragmented messages, flow control, closing without a close frame;
 * reassembling what clients send, the --frames-log, handing text frames to sim_writes.c;
 * freeze and thaw. Does not own: what is in the frames (sim_device.c, sim_writes.c,
 * sim_control.c), the device state. */
#include "sim.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#define QUEUE_CAP 256		      /* outgoing messages per client */
#define RX_MAX	  (16u * 1024 * 1024) /* largest client message kept in memory */

static const char *const msg_kind_names[] = {"snapshot", "temperature push", "control push"};

/* One outgoing WebSocket message: one frame, or the three fragments of pushfrag. Each part's
 * buffer has LWS_PRE bytes of headroom. One part goes out per WRITEABLE callback. */
struct part {
	unsigned char *buf;
	size_t len;
	enum lws_write_protocol proto;
};

struct sim_msg {
	enum sim_msg_kind kind;
	unsigned nparts, sent;
	struct part part[3];
};

/* Per-session data of the "chat" protocol: used by HTTP requests (only http_body_pending)
 * and WebSocket clients (the rest, set up in ESTABLISHED). */
struct client {
	struct lws *wsi;
	struct client *prev, *next;
	unsigned id;
	bool linked;	       /* in the list of clients */
	bool kill;	       /* being closed by drop/reboot: send and apply nothing more */
	bool kill_after_flush; /* ...once what was queued before is sent (reboot) */
	bool need_snapshot;    /* connected while frozen: snapshot goes out on thaw */
	bool http_body_pending;
	bool rx_paused; /* reading paused while lws holds unsent output (see client_writeable) */
	char peer[64];
	struct sim_msg *q[QUEUE_CAP];
	unsigned head, count;
	unsigned char *rx; /* the message being received, reassembled */
	size_t rx_len, rx_cap, rx_total;
	bool rx_binary;
};

static struct client *clients;
static unsigned next_id;

/* ---------- outgoing messages ---------- */

struct sim_msg *sim_msg_new(enum sim_msg_kind kind)
{
	struct sim_msg *m = sim_xmalloc(sizeof(*m));

	memset(m, 0, sizeof(*m));
	m->kind = kind;
	return m;
}

unsigned char *sim_msg_add(struct sim_msg *m, const void *data, size_t len,
			   enum lws_write_protocol proto)
{
	struct part *p = &m->part[m->nparts++];

	p->buf = sim_xmalloc(LWS_PRE + len);
	if (data && len)
		memcpy(p->buf + LWS_PRE, data, len);
	p->len = len;
	p->proto = proto;
	return p->buf + LWS_PRE;
}

static void msg_free(struct sim_msg *m)
{
	unsigned i;

	if (!m)
		return;
	for (i = 0; i < m->nparts; i++)
		free(m->part[i].buf);
	free(m);
}

static struct sim_msg *msg_clone(const struct sim_msg *m)
{
	struct sim_msg *c = sim_msg_new(m->kind);
	unsigned i;

	for (i = 0; i < m->nparts; i++)
		sim_msg_add(c, m->part[i].buf + LWS_PRE, m->part[i].len, m->part[i].proto);
	return c;
}

static struct sim_msg **queue_at(struct client *c, unsigned i)
{
	return &c->q[(c->head + i) % QUEUE_CAP];
}

static void queue_remove(struct client *c, unsigned i)
{
	msg_free(*queue_at(c, i));
	for (; i + 1 < c->count; i++)
		*queue_at(c, i) = *queue_at(c, i + 1);
	c->count--;
}

static void queue_clear(struct client *c)
{
	while (c->count)
		queue_remove(c, 0);
}

/* A full queue drops its oldest temperature push, else its oldest control push; never the
 * snapshot and never a message whose first fragment is already on the wire. */
static bool queue_make_room(struct client *c)
{
	static const enum sim_msg_kind order[] = {SIM_MSG_TEMP, SIM_MSG_CONTROL};
	unsigned k, i;

	if (c->count < QUEUE_CAP)
		return true;
	for (k = 0; k < 2; k++)
		for (i = 0; i < c->count; i++) {
			struct sim_msg *m = *queue_at(c, i);

			if (m->kind == order[k] && !m->sent) {
				sim_say(
				    "client %u: falling behind, %u messages queued: dropped the "
				    "oldest %s",
				    c->id, c->count, msg_kind_names[m->kind]);
				queue_remove(c, i);
				return true;
			}
		}
	return false;
}

static void client_send(struct client *c, struct sim_msg *m, bool front)
{
	if (!queue_make_room(c)) {
		sim_say("client %u: queue full, dropped a new %s", c->id, msg_kind_names[m->kind]);
		msg_free(m);
		return;
	}
	if (front && (!c->count || !(*queue_at(c, 0))->sent)) {
		c->head = (c->head + QUEUE_CAP - 1) % QUEUE_CAP;
		c->q[c->head] = m;
	} else {
		*queue_at(c, c->count) = m;
	}
	c->count++;
	if (!sim.frozen)
		lws_callback_on_writable(c->wsi);
}

unsigned sim_client_count(void)
{
	unsigned n = 0;
	struct client *c;

	for (c = clients; c; c = c->next)
		n += !c->kill;
	return n;
}

/* Queue a copy of m for every live client; frees m. Returns the number of clients. */
unsigned sim_broadcast(struct sim_msg *m)
{
	unsigned n = 0;
	struct client *c;

	for (c = clients; c; c = c->next) {
		if (c->kill)
			continue;
		client_send(c, msg_clone(m), false);
		n++;
	}
	msg_free(m);
	return n;
}

unsigned sim_broadcast_text(enum sim_msg_kind kind, const char *txt, size_t len)
{
	struct sim_msg *m = sim_msg_new(kind);

	sim_msg_add(m, txt, len, LWS_WRITE_TEXT);
	return sim_broadcast(m);
}

/* The first frame of a connection: the whole state, in the firmware's dialect. */
static struct sim_msg *snapshot(void)
{
	struct sim_msg *m = sim_msg_new(SIM_MSG_SNAPSHOT);
	char *txt = sim_device_snapshot();

	sim_msg_add(m, txt, strlen(txt), LWS_WRITE_TEXT);
	cJSON_free(txt);
	return m;
}

void sim_push_root(const char *root, cJSON *obj)
{
	cJSON *frame = cJSON_CreateObject();
	char *txt;

	cJSON_AddItemToObject(frame, root, obj);
	txt = cJSON_PrintUnformatted(frame);
	sim_broadcast_text(SIM_MSG_CONTROL, txt, strlen(txt));
	cJSON_free(txt);
	cJSON_Delete(frame);
}

/* ---------- connections ---------- */

/* Close without a close frame, as a device that vanishes would (async: safe in any callback).
 * With flush, what is already queued goes out first (a device answers, then restarts), but
 * the connection is closed after a second whatever happens. */
static void client_kill(struct client *c, bool flush)
{
	if (c->kill)
		return;
	c->kill = true;
	if (flush && c->count && !sim.frozen) {
		c->kill_after_flush = true;
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, 1);
		lws_callback_on_writable(c->wsi);
	} else {
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
	}
}

unsigned sim_drop_all(bool flush)
{
	unsigned n = 0;
	struct client *c;

	for (c = clients; c; c = c->next)
		if (!c->kill) {
			client_kill(c, flush);
			n++;
		}
	return n;
}

void sim_thaw(void)
{
	struct client *c;

	sim.frozen = false;
	for (c = clients; c; c = c->next) {
		if (c->kill)
			continue;
		if (c->need_snapshot) {
			c->need_snapshot = false;
			client_send(c, snapshot(), true);
		}
		if (c->count)
			lws_callback_on_writable(c->wsi);
	}
}

static void frames_log_write(struct client *c)
{
	if (!sim.frames_log)
		return;
	if (c->rx_binary)
		fprintf(sim.frames_log, "<binary %zu bytes>\n", c->rx_total);
	else if (c->rx_total > c->rx_len)
		fprintf(sim.frames_log, "<text %zu bytes, too long to log>\n", c->rx_total);
	else {
		fwrite(c->rx, 1, c->rx_len, sim.frames_log);
		fputc('\n', sim.frames_log);
	}
	fflush(sim.frames_log);
}

static void client_rx(struct client *c, struct lws *wsi, const void *in, size_t len)
{
	if (lws_is_first_fragment(wsi)) {
		c->rx_len = 0;
		c->rx_total = 0;
		c->rx_binary = lws_frame_is_binary(wsi);
	}
	c->rx_total += len;
	if (c->rx_len + len <= RX_MAX) {
		if (c->rx_len + len + 1 > c->rx_cap) {
			size_t cap = c->rx_cap ? c->rx_cap : 4096;
			unsigned char *p;

			while (cap < c->rx_len + len + 1)
				cap *= 2;
			p = realloc(c->rx, cap);
			if (!p) {
				fprintf(stderr, SIM_NAME ": out of memory\n");
				abort();
			}
			c->rx = p;
			c->rx_cap = cap;
		}
		if (len)
			memcpy(c->rx + c->rx_len, in, len);
		c->rx_len += len;
	}
	if (!lws_is_final_fragment(wsi))
		return;

	frames_log_write(c);
	sim_debug("client %u: received %s message, %zu bytes", c->id,
		  c->rx_binary ? "binary" : "text", c->rx_total);
	if (c->rx_binary)
		sim_say("client %u: binary frame (%zu bytes) ignored", c->id, c->rx_total);
	else if (c->rx_total > c->rx_len)
		sim_say("client %u: text frame of %zu bytes too long, ignored", c->id, c->rx_total);
	else if (sim.rebooting || c->kill)
		sim_say("client %u: frame ignored (device restarting)", c->id);
	else
		sim_writes_apply(c->id, (const char *)c->rx, c->rx_len);
	c->rx_len = 0;
	c->rx_total = 0;
	if (c->rx_cap > 65536) { /* don't keep a huge buffer around */
		free(c->rx);
		c->rx = NULL;
		c->rx_cap = 0;
	}
}

/* ---------- the HTTP / WebSocket protocol ---------- */

static const char index_html[] =
    "<!DOCTYPE html>\n<html><head><title>Panda Breath (simulated)</title></head>\n"
    "<body><h1>Panda Breath</h1><p>panda2mqtt-sim: a simulated device. WebSocket at "
    "<code>/ws</code>.</p></body></html>\n";

static int http_request(struct client *c, struct lws *wsi, const char *uri)
{
	unsigned char buf[LWS_PRE + 512], *start = &buf[LWS_PRE], *p = start,
					  *end = &buf[sizeof(buf) - 1];
	unsigned status;

	if (sim.rebooting)
		return -1;
	if (!strcmp(uri, "/")) {
		if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "text/html",
						sizeof(index_html) - 1, &p, end) ||
		    lws_finalize_write_http_header(wsi, start, &p, end))
			return 1;
		c->http_body_pending = true;
		lws_callback_on_writable(wsi);
		return 0;
	}
	/* /ws without an upgrade is a bad request; everything else does not exist */
	status = strcmp(uri, "/ws") ? HTTP_STATUS_NOT_FOUND : HTTP_STATUS_BAD_REQUEST;
	sim_debug("HTTP %s -> %u", uri, status);
	if (lws_return_http_status(wsi, status, NULL))
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int http_body(struct client *c, struct lws *wsi)
{
	unsigned char buf[LWS_PRE + sizeof(index_html)];

	if (!c->http_body_pending)
		return 0;
	c->http_body_pending = false;
	memcpy(&buf[LWS_PRE], index_html, sizeof(index_html) - 1);
	if (lws_write(wsi, &buf[LWS_PRE], sizeof(index_html) - 1, LWS_WRITE_HTTP_FINAL) !=
	    (int)sizeof(index_html) - 1)
		return 1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int confirm_upgrade(struct lws *wsi)
{
	char uri[256] = "";

	if (sim.rebooting)
		return -1;
	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) > 0 && !strcmp(uri, "/ws"))
		return 0;
	sim_say("refused a WebSocket upgrade on \"%s\" (only /ws)", uri);
	if (lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL))
		return -1;
	return 1;
}

static int client_established(struct client *c, struct lws *wsi)
{
	memset(c, 0, sizeof(*c));
	if (sim.rebooting)
		return -1;
	c->wsi = wsi;
	c->id = ++next_id;
	lws_get_peer_simple(wsi, c->peer, sizeof(c->peer));
	c->next = clients;
	if (clients)
		clients->prev = c;
	clients = c;
	c->linked = true;
	sim_say("client %u connected from %s (%u connected)", c->id, c->peer, sim_client_count());
	if (sim.frozen)
		c->need_snapshot = true;
	else
		client_send(c, snapshot(), false);
	return 0;
}

static void client_closed(struct client *c)
{
	if (!c->linked)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->linked = false;
	queue_clear(c);
	free(c->rx);
	c->rx = NULL;
	sim_say("client %u disconnected (%u connected)", c->id, sim_client_count());
}

static int client_writeable(struct client *c, struct lws *wsi)
{
	struct sim_msg *m;
	struct part *p;
	int n;

	if (c->kill && (!c->kill_after_flush || !c->count))
		return -1;
	/* lws calls this only once it has sent what it held back */
	if (c->rx_paused && !lws_partial_buffered(wsi)) {
		c->rx_paused = false;
		lws_rx_flow_control(wsi, 1);
	}
	if (sim.frozen || !c->count)
		return 0;
	m = *queue_at(c, 0);
	p = &m->part[m->sent];
	n = lws_write(wsi, p->buf + LWS_PRE, p->len, p->proto);
	if (n < 0 || (size_t)n < p->len) {
		sim_say("client %u: write failed, closing", c->id);
		return -1;
	}
	if (++m->sent == m->nparts) {
		msg_free(m);
		c->head = (c->head + 1) % QUEUE_CAP;
		c->count--;
	}
	/* The socket took only part of it and lws keeps the rest. lws 4.1 spins forever
	 * (inside lws_service) if it reads the peer's EOF while it holds unsent output, so
	 * stop reading until that output is gone: a slow reader is read slowly. */
	if (lws_partial_buffered(wsi)) {
		if (!c->rx_paused) {
			c->rx_paused = true;
			lws_rx_flow_control(wsi, 0);
		}
		lws_callback_on_writable(wsi);
	} else if (c->count || c->kill_after_flush) {
		lws_callback_on_writable(wsi); /* the next message, or the close */
	}
	return 0;
}

static int callback_panda(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			  size_t len)
{
	struct client *c = user;

	switch (reason) {
	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
		if (sim.rebooting) {
			sim_debug("refused a connection: rebooting");
			return 1;
		}
		return 0;
	case LWS_CALLBACK_HTTP:
		return http_request(c, wsi, in ? (const char *)in : "");
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return http_body(c, wsi);
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return confirm_upgrade(wsi);
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return sim.rebooting;
	case LWS_CALLBACK_ESTABLISHED:
		return client_established(c, wsi);
	case LWS_CALLBACK_CLOSED:
		client_closed(c);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return client_writeable(c, wsi);
	case LWS_CALLBACK_RECEIVE:
		if (c->linked)
			client_rx(c, wsi, in, len);
		return 0;
	default:
		return 0;
	}
}

static const struct lws_protocols protocols[] = {
    /* first: serves HTTP, and WebSocket clients that ask for "chat" or for nothing */
    {.name = "chat",
     .callback = callback_panda,
     .per_session_data_size = sizeof(struct client),
     .rx_buffer_size = 4096},
    {.name = "sim-control", .callback = sim_control_callback},
    {.name = "klipper-client", .callback = sim_klipper_callback},
    {.name = NULL, .callback = NULL},
};

int sim_server_start(void)
{
	struct lws_context_creation_info info;
	struct in_addr a4;
	bool v4;
	int port;

	/* IPv4 addresses and interface names listen on IPv4 only, so that a host without
	 * IPv6 works; IPv6 literals and "::" need IPv6. */
	v4 = !strchr(sim.host, ':');
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
		       LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND |
		       (v4 ? LWS_SERVER_OPTION_DISABLE_IPV6 : 0);
	info.port = sim.port;
	info.iface = sim.host;
	if (!strcmp(sim.host, "::") ||
	    (inet_pton(AF_INET, sim.host, &a4) == 1 && a4.s_addr == htonl(INADDR_ANY)))
		info.iface = NULL;
	info.protocols = protocols;
	info.vhost_name = "panda-breath";
	sim.ctx = lws_create_context(&info);
	if (!sim.ctx) {
		sim_say("cannot create the lws context");
		return -1;
	}
	sim.vh = lws_create_vhost(sim.ctx, &info);
	port = sim.vh ? lws_get_vhost_listen_port(sim.vh) : -1;
	if (port <= 0) {
		sim_say("cannot listen on %s port %d", sim.host, sim.port);
		return -1;
	}
	sim_say("%s simulated (%s) on %s port %d: ws://%s%s%s:%d/ws", sim_fw_names[sim.fw],
		sim.doc ? "the base document's dialect" : "as the official firmware", sim.host,
		port, v4 ? "" : "[", sim.host, v4 ? "" : "]", port);
	return port;
}

void sim_server_destroy(void)
{
	if (sim.ctx)
		lws_context_destroy(sim.ctx);
	sim.ctx = NULL;
}
