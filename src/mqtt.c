/* mqtt.c - see mqtt.h.
 *
 * libmosquitto never reconnects by itself outside loop_forever, so every loss
 * (on_disconnect, a refused connect, an attempt that never completes) goes through
 * schedule_retry(), which backs off 1 s, 2 s, ... 30 s.
 *
 * Names: libmosquitto's own lookup inside connect_async would block the loop, so every
 * attempt first resolves the broker's name without blocking (resolve.h: DNS and the
 * hosts file through c-ares; a .local name through avahi-daemon, mdns.h) and connects to
 * the address. A broker whose address changed (the add-on's core-mosquitto after an
 * update) is found at its new address by the next attempt. When a name has several
 * addresses, each failed attempt moves on to the next one.
 *
 * TLS to an address still checks the certificate against the configured name:
 * libmosquitto would check it against the host given to connect (the address), so it
 * gets our own SSL_CTX (MOSQ_OPT_SSL_CTX, without libmosquitto's defaults, so without its
 * verify callback) whose X509_VERIFY_PARAM carries the name and whose info callback puts
 * the name in SNI before the ClientHello is written (libmosquitto sets SNI to the host it
 * was given). `insecure` drops the name check only; the chain is always verified. */
#include "mqtt.h"

#include "loop.h"
#include "mdns.h"
#include "resolve.h"
#include "panda2mqtt/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <mosquitto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <sys/socket.h>

#define BACKOFF_MAX_S	   30
#define CONNECT_TIMEOUT_US ((gint64)15 * G_USEC_PER_SEC)

struct p2m_mqtt {
	const struct p2m_mqtt_conf *conf;
	struct mosquitto *mosq;
	struct p2m_mosq_watch *watch;
	struct p2m_mqtt_callbacks cb;
	void *ud;
	struct p2m_lookup *lookup;   /* the broker's name being resolved (DNS) */
	struct p2m_mdns *mdns;	     /* a .local broker name: made at the first attempt */
	bool resolving;		     /* waiting for lookup or mdns */
	char addr[INET6_ADDRSTRLEN]; /* the address last dialled */
	unsigned failures;	     /* attempts failed since the last connection */
	size_t naddrs;		     /* how many addresses the name had at the last lookup */
	bool resolve_warned;	     /* one warning per outage, not one per retry */
	char *state_topic;
	GPtrArray *subs;
	bool connected;
	bool stopping;
	bool closed;
	int last_mid; /* mid of the shutdown "offline", until the broker acknowledges it */
	bool last_acked;
	bool attempting;
	gint64 attempt_started;
	guint retry_timer;
	guint watchdog;
	int backoff;
	gint64 burst_at; /* the last large publish (discovery), while a trim is due */
};

static void schedule_retry(struct p2m_mqtt *m, bool failed);

static void connect_to(struct p2m_mqtt *m, const char *addr)
{
	const char *host = m->conf->host;
	int rc;

	if (strcmp(addr, host) != 0)
		p2m_debug("mqtt: broker %s is at %s", host, addr);
	g_strlcpy(m->addr, addr, sizeof(m->addr));
	m->resolve_warned = false;
	/* connect_async, not reconnect_async: the address may be another one each time. */
	rc = mosquitto_connect_async(m->mosq, addr, m->conf->port, m->conf->keepalive);
	p2m_mosq_watch_update(m->watch);
	if (rc != MOSQ_ERR_SUCCESS) {
		p2m_debug("mqtt: connecting to %s:%d (%s) failed: %s", host, m->conf->port, addr,
			  rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
		m->attempting = false;
		schedule_retry(m, true);
	}
}

/* The name did not resolve (error) or resolving took too long. */
static void resolve_failed(struct p2m_mqtt *m, const char *why)
{
	m->naddrs = 0;
	m->resolving = false;
	m->attempting = false;
	if (m->resolve_warned) {
		p2m_debug("mqtt: cannot resolve broker %s: %s", m->conf->host, why);
	} else {
		m->resolve_warned = true;
		p2m_warn("mqtt: cannot resolve broker %s: %s; retrying", m->conf->host, why);
	}
	schedule_retry(m, true);
}

static void on_lookup(void *ud, const char *const *addrs, size_t n, const char *error)
{
	struct p2m_mqtt *m = ud;

	m->lookup = NULL;
	if (m->stopping)
		return;
	m->resolving = false;
	if (!n) {
		resolve_failed(m, error);
		return;
	}
	if (m->addr[0] && !p2m_addr_in(m->addr, addrs, n))
		p2m_info("mqtt: broker %s moved from %s to %s", m->conf->host, m->addr, addrs[0]);
	/* Each failed attempt tries the next address of the name. */
	m->naddrs = n;
	connect_to(m, addrs[m->failures % n]);
}

static void on_mdns_host(void *ud, const char *host, const char *addr)
{
	struct p2m_mqtt *m = ud;

	(void)host;
	if (!m->resolving || m->stopping)
		return; /* an answer after the attempt was given up */
	m->resolving = false;
	if (!addr) {
		resolve_failed(m, "no answer from avahi-daemon");
		return;
	}
	connect_to(m, addr);
}

static void try_connect(struct p2m_mqtt *m)
{
	static const struct p2m_mdns_callbacks mdns_cb = {.on_host = on_mdns_host};
	const char *host = m->conf->host;

	m->attempting = true;
	m->attempt_started = g_get_monotonic_time();
	m->closed = false;
	m->naddrs = 1;
	if (p2m_is_address(host)) {
		connect_to(m, host);
	} else if (p2m_is_local_name(host)) {
		m->resolving = true;
		if (!m->mdns)
			m->mdns = p2m_mdns_new(false, &mdns_cb, m);
		p2m_mdns_resolve_host(m->mdns, host); /* may answer at once (on_mdns_host) */
	} else {
		m->resolving = true;
		m->lookup = p2m_lookup_start(host, AF_UNSPEC, on_lookup, m);
	}
}

static gboolean on_retry(gpointer data)
{
	struct p2m_mqtt *m = data;

	m->retry_timer = 0;
	if (!m->stopping)
		try_connect(m);
	return G_SOURCE_REMOVE;
}

/* failed: an attempt that never got a session (the next one tries the next address). */
static void schedule_retry(struct p2m_mqtt *m, bool failed)
{
	if (m->stopping || m->retry_timer)
		return;
	if (failed)
		m->failures++;
	if (failed && m->naddrs > 1 && m->failures % m->naddrs != 0) {
		/* The name's next address at once, as libmosquitto's own lookup would have
		 * tried them in turn; the backoff grows once per round. */
		p2m_debug("mqtt: trying the next address of %s", m->conf->host);
		m->retry_timer = g_idle_add(on_retry, m);
		return;
	}
	m->backoff = m->backoff ? MIN(m->backoff * 2, BACKOFF_MAX_S) : 1;
	p2m_debug("mqtt: next connection attempt in %d s", m->backoff);
	m->retry_timer = g_timeout_add_seconds(m->backoff, on_retry, m);
}

/* An attempt whose name, TCP connect or CONNACK never comes is abandoned and retried; so
 * is one whose socket libmosquitto closed without telling (a failed TLS handshake: 2.0.11
 * returns MOSQ_ERR_TLS from loop_read and never calls on_disconnect; on_log has said
 * why). */
/* Discovery goes out in bursts (start-up, Home Assistant's birth, a reload): some 12 KiB
 * a device, each copy held by libmosquitto until the broker acknowledges it. Freed, that
 * peak stays in the process (glibc keeps freed heap pages among the live ones), and
 * the resident memory of a 500-device gateway is then the burst's, not what it uses
 * (docs/BENCHMARKS.md). A few seconds after the last large publish the free pages go
 * back to the system. */
#define BURST_BYTES    4096
#define BURST_QUIET_US (3 * (gint64)G_USEC_PER_SEC)

static void trim_after_burst(struct p2m_mqtt *m)
{
	if (!m->burst_at || g_get_monotonic_time() - m->burst_at < BURST_QUIET_US)
		return;
	m->burst_at = 0;
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

static gboolean on_watchdog(gpointer data)
{
	struct p2m_mqtt *m = data;
	bool late = g_get_monotonic_time() - m->attempt_started > CONNECT_TIMEOUT_US;

	trim_after_burst(m);
	if (!m->attempting || m->connected || m->retry_timer)
		return G_SOURCE_CONTINUE;
	if (m->resolving) {
		if (late) {
			p2m_lookup_cancel(m->lookup);
			m->lookup = NULL;
			resolve_failed(m, "no answer in time");
		}
	} else if (mosquitto_socket(m->mosq) < 0) {
		m->attempting = false;
		schedule_retry(m, true);
	} else if (late) {
		p2m_warn("mqtt: no answer from %s:%d; retrying", m->conf->host, m->conf->port);
		m->attempting = false;
		mosquitto_disconnect(m->mosq);
		p2m_mosq_watch_update(m->watch);
		schedule_retry(m, true);
	}
	return G_SOURCE_CONTINUE;
}

static void on_connect(struct mosquitto *mosq, void *ud, int rc)
{
	struct p2m_mqtt *m = ud;

	(void)mosq;
	m->attempting = false;
	if (rc != 0) {
		/* libmosquitto disconnects next; on_disconnect schedules the retry. */
		p2m_err("mqtt: broker %s:%d refused the connection: %s", m->conf->host,
			m->conf->port, mosquitto_connack_string(rc));
		return;
	}
	if (strcmp(m->addr, m->conf->host) != 0)
		p2m_info("mqtt: connected to %s:%d (%s)", m->conf->host, m->conf->port, m->addr);
	else
		p2m_info("mqtt: connected to %s:%d", m->conf->host, m->conf->port);
	m->connected = true;
	m->backoff = 0;
	m->failures = 0;
	for (guint i = 0; i < m->subs->len; i++)
		mosquitto_subscribe(m->mosq, NULL, g_ptr_array_index(m->subs, i), 1);
	mosquitto_publish(m->mosq, NULL, m->state_topic, 6, "online", 1, true);
	if (m->cb.on_connect)
		m->cb.on_connect(m->ud);
	p2m_mosq_watch_update(m->watch);
}

static void on_disconnect(struct mosquitto *mosq, void *ud, int rc)
{
	struct p2m_mqtt *m = ud;

	(void)mosq;
	m->closed = true;
	m->attempting = false;
	if (m->stopping)
		return;
	if (m->connected)
		p2m_warn("mqtt: connection to %s:%d lost (%s); reconnecting", m->conf->host,
			 m->conf->port, mosquitto_strerror(rc));
	schedule_retry(m, !m->connected);
	m->connected = false;
}

/* libmosquitto says why a TLS handshake failed (unknown CA, host name) only through
 * its log; its error lines carry no credentials. */
static void on_log(struct mosquitto *mosq, void *ud, int level, const char *str)
{
	struct p2m_mqtt *m = ud;

	(void)mosq;
	if (level == MOSQ_LOG_ERR)
		p2m_warn("mqtt: %s:%d: %s", m->conf->host, m->conf->port, str);
}

static void on_publish(struct mosquitto *mosq, void *ud, int mid)
{
	struct p2m_mqtt *m = ud;

	(void)mosq;
	if (m->stopping && mid == m->last_mid)
		m->last_acked = true;
}

static void on_message(struct mosquitto *mosq, void *ud, const struct mosquitto_message *msg)
{
	struct p2m_mqtt *m = ud;

	(void)mosq;
	if (m->cb.on_message && !m->stopping)
		m->cb.on_message(m->ud, msg->topic, msg->payload ? msg->payload : "",
				 (size_t)msg->payloadlen, msg->retain);
}

/* Why the broker's certificate was refused, in words (the handshake error that
 * libmosquitto logs next only says "certificate verify failed"). */
static int tls_verify(int ok, X509_STORE_CTX *x)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	const char *name = ssl ? SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)) : NULL;

	if (!ok)
		p2m_warn("mqtt: the certificate of broker %s is refused: %s (depth %d)",
			 name ? name : "?",
			 X509_verify_cert_error_string(X509_STORE_CTX_get_error(x)),
			 X509_STORE_CTX_get_error_depth(x));
	return ok;
}

/* Before the ClientHello is written: SNI is the broker's name, not the address that
 * libmosquitto was given (RFC 6066 allows names only). */
static void tls_info(const SSL *ssl, int where, int ret)
{
	const char *name = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));

	(void)ret;
	if ((where & SSL_CB_HANDSHAKE_START) && name && !p2m_is_address(name))
		SSL_set_tlsext_host_name((SSL *)ssl, name);
}

/* The TLS context libmosquitto uses as it is: CAs, peer verification, and the name the
 * certificate must carry (the configured host, whatever address is dialled). */
static SSL_CTX *tls_context(const struct p2m_mqtt_conf *conf)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	int ok;

	if (!ctx)
		return NULL;
	/* libmosquitto's own defaults: TLS 1.2 or later, no compression. */
	ok = SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);
	if (ok && SSL_CTX_load_verify_locations(ctx, conf->cafile,
						conf->cafile ? NULL : "/etc/ssl/certs") != 1) {
		p2m_err("mqtt: cannot load CA certificates from %s",
			conf->cafile ? conf->cafile : "/etc/ssl/certs");
		ok = 0;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_verify);
	SSL_CTX_set_app_data(ctx, (void *)conf->host);
	SSL_CTX_set_info_callback(ctx, tls_info);
	if (ok && !conf->insecure) {
		X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);
		X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		ok = p2m_is_address(conf->host) ? X509_VERIFY_PARAM_set1_ip_asc(param, conf->host)
						: X509_VERIFY_PARAM_set1_host(param, conf->host, 0);
	}
	if (!ok) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* The client for m->conf: protocol, Will, credentials, TLS, callbacks. -1 (logged) when
 * it cannot be made. */
static int make_client(struct p2m_mqtt *m)
{
	const struct p2m_mqtt_conf *conf = m->conf;

	g_free(m->state_topic);
	m->state_topic = g_strdup_printf("%s/bridge/state", conf->base_topic);
	m->mosq = mosquitto_new(conf->client_id, true, m);
	if (!m->mosq) {
		p2m_err("mqtt: cannot create client: %s", strerror(errno));
		return -1;
	}
	mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
	/* Small messages, sent as they happen: without this, Nagle holds a state publish
	 * back until the broker acknowledges the previous one (tens of ms under load). */
	mosquitto_int_option(m->mosq, MOSQ_OPT_TCP_NODELAY, 1);
	mosquitto_will_set(m->mosq, m->state_topic, 7, "offline", 1, true);
	if (conf->username)
		mosquitto_username_pw_set(m->mosq, conf->username, conf->password);
	if (conf->tls) {
		SSL_CTX *ctx = tls_context(conf);
		int rc;
		/* libmosquitto takes its own reference, and its defaults would replace our
		 * verification with its own check of the dialled address. */
		rc = ctx ? mosquitto_int_option(m->mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0)
			 : MOSQ_ERR_TLS;
		if (rc == MOSQ_ERR_SUCCESS)
			rc = mosquitto_void_option(m->mosq, MOSQ_OPT_SSL_CTX, ctx);
		SSL_CTX_free(ctx);
		if (rc != MOSQ_ERR_SUCCESS) {
			p2m_err("mqtt: TLS set-up failed: %s", mosquitto_strerror(rc));
			ERR_clear_error();
			return -1;
		}
	}
	mosquitto_connect_callback_set(m->mosq, on_connect);
	mosquitto_disconnect_callback_set(m->mosq, on_disconnect);
	mosquitto_message_callback_set(m->mosq, on_message);
	mosquitto_publish_callback_set(m->mosq, on_publish);
	mosquitto_log_callback_set(m->mosq, on_log);
	return 0;
}

struct p2m_mqtt *p2m_mqtt_new(const struct p2m_mqtt_conf *conf, const struct p2m_mqtt_callbacks *cb,
			      void *ud)
{
	struct p2m_mqtt *m = g_new0(struct p2m_mqtt, 1);

	m->conf = conf;
	m->cb = *cb;
	m->ud = ud;
	m->subs = g_ptr_array_new_with_free_func(g_free);
	if (make_client(m) != 0) {
		p2m_mqtt_free(m);
		return NULL;
	}
	return m;
}

/* The session's parts that belong to one client; the subscriptions stay. */
static void drop_client(struct p2m_mqtt *m)
{
	if (m->retry_timer)
		g_source_remove(m->retry_timer);
	if (m->watchdog)
		g_source_remove(m->watchdog);
	m->retry_timer = m->watchdog = 0;
	p2m_mosq_watch_free(m->watch);
	m->watch = NULL;
	if (m->mosq)
		mosquitto_destroy(m->mosq);
	m->mosq = NULL;
	p2m_lookup_cancel(m->lookup);
	m->lookup = NULL;
	p2m_mdns_free(m->mdns);
	m->mdns = NULL;
}

int p2m_mqtt_renew(struct p2m_mqtt *m)
{
	drop_client(m);
	m->resolving = m->connected = m->stopping = m->closed = false;
	m->last_acked = m->attempting = m->resolve_warned = false;
	m->addr[0] = '\0';
	m->failures = 0;
	m->naddrs = 0;
	m->backoff = 0;
	m->last_mid = 0;
	if (make_client(m) != 0)
		return -1;
	return p2m_mqtt_start(m);
}

void p2m_mqtt_add_subscription(struct p2m_mqtt *m, const char *pattern)
{
	g_ptr_array_add(m->subs, g_strdup(pattern));
}

int p2m_mqtt_start(struct p2m_mqtt *m)
{
	m->watch = p2m_mosq_watch_new(m->mosq);
	m->watchdog = g_timeout_add_seconds(1, on_watchdog, m);
	p2m_info("mqtt: connecting to %s:%d%s", m->conf->host, m->conf->port,
		 m->conf->tls ? " (TLS)" : "");
	try_connect(m);
	return 0;
}

bool p2m_mqtt_connected(const struct p2m_mqtt *m)
{
	return m && m->connected;
}

int p2m_mqtt_publish(struct p2m_mqtt *m, const char *topic, const char *payload, bool retain)
{
	size_t len;
	int rc;

	if (!m->connected)
		return -1;
	len = strlen(payload);
	if (len >= BURST_BYTES)
		m->burst_at = g_get_monotonic_time();
	rc = mosquitto_publish(m->mosq, NULL, topic, (int)len, payload, 1, retain);
	p2m_mosq_watch_update(m->watch);
	if (rc != MOSQ_ERR_SUCCESS) {
		p2m_warn("mqtt: publish to %s failed: %s", topic, mosquitto_strerror(rc));
		return -1;
	}
	return 0;
}

static gboolean on_shutdown_timeout(gpointer data)
{
	bool *expired = data;

	*expired = true;
	return G_SOURCE_REMOVE;
}

void p2m_mqtt_republish_online(struct p2m_mqtt *m)
{
	p2m_mqtt_publish(m, m->state_topic, "online", true);
}

void p2m_mqtt_shutdown(struct p2m_mqtt *m, int timeout_ms)
{
	bool expired = false;
	guint t;

	m->stopping = true;
	if (!m->connected)
		return;
	t = g_timeout_add(timeout_ms, on_shutdown_timeout, &expired);
	/* A clean DISCONNECT suppresses the Will, so say offline ourselves first, and wait
	 * for its PUBACK: mosquitto 2.0 treats a client that disconnects before the broker
	 * acknowledged its QoS 1 message as lost, and then publishes the Will as well. */
	mosquitto_publish(m->mosq, &m->last_mid, m->state_topic, 7, "offline", 1, true);
	p2m_mosq_watch_update(m->watch);
	while (!m->last_acked && !m->closed && !expired)
		g_main_context_iteration(NULL, TRUE);
	mosquitto_disconnect(m->mosq);
	p2m_mosq_watch_update(m->watch);
	while (!m->closed && !expired)
		g_main_context_iteration(NULL, TRUE);
	if (!expired)
		g_source_remove(t);
	m->connected = false;
}

void p2m_mqtt_free(struct p2m_mqtt *m)
{
	if (!m)
		return;
	drop_client(m);
	g_ptr_array_free(m->subs, TRUE);
	g_free(m->state_topic);
	g_free(m);
}
