/* mqtt.c - see mqtt.h.
 *
 * libmosquitto never reconnects by itself outside loop_forever, so every loss
 * (on_disconnect, a refused connect, an attempt that never completes) goes through
 * schedule_retry(), which backs off 1 s, 2 s, ... 30 s. The broker's name is resolved
 * once, before the loop runs: libmosquitto's own lookup inside connect_async would
 * block the loop on every retry. With TLS the name is kept, because the certificate
 * check needs it. */
#include "mqtt.h"

#include "loop.h"
#include "panda2mqtt/log.h"

#include <arpa/inet.h>
#include <glib.h>
#include <mosquitto.h>
#include <netdb.h>
#include <string.h>

#define BACKOFF_MAX_S	   30
#define CONNECT_TIMEOUT_US ((gint64)15 * G_USEC_PER_SEC)

struct p2m_mqtt {
	const struct p2m_mqtt_conf *conf;
	struct mosquitto *mosq;
	struct p2m_mosq_watch *watch;
	struct p2m_mqtt_callbacks cb;
	void *ud;
	char *host; /* resolved address, or the name */
	char *state_topic;
	GPtrArray *subs;
	bool connected;
	bool configured;
	bool stopping;
	bool closed;
	int last_mid; /* mid of the shutdown "offline", until the broker acknowledges it */
	bool last_acked;
	bool attempting;
	gint64 attempt_started;
	guint retry_timer;
	guint watchdog;
	int backoff;
};

static void schedule_retry(struct p2m_mqtt *m);

static void try_connect(struct p2m_mqtt *m)
{
	int rc;

	m->attempting = true;
	m->attempt_started = g_get_monotonic_time();
	m->closed = false;
	if (!m->configured) {
		/* The first call stores host and port even when its connect fails. */
		m->configured = true;
		rc = mosquitto_connect_async(m->mosq, m->host, m->conf->port, m->conf->keepalive);
	} else {
		rc = mosquitto_reconnect_async(m->mosq);
	}
	p2m_mosq_watch_update(m->watch);
	if (rc != MOSQ_ERR_SUCCESS) {
		p2m_debug("mqtt: connecting to %s:%d failed: %s", m->conf->host, m->conf->port,
			  rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
		m->attempting = false;
		schedule_retry(m);
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

static void schedule_retry(struct p2m_mqtt *m)
{
	if (m->stopping || m->retry_timer)
		return;
	m->backoff = m->backoff ? MIN(m->backoff * 2, BACKOFF_MAX_S) : 1;
	p2m_debug("mqtt: next connection attempt in %d s", m->backoff);
	m->retry_timer = g_timeout_add_seconds(m->backoff, on_retry, m);
}

/* An attempt whose TCP connect or CONNACK never comes is abandoned and retried; so is
 * one whose socket libmosquitto closed without telling (a failed TLS handshake: 2.0.11
 * returns MOSQ_ERR_TLS from loop_read and never calls on_disconnect; on_log has said
 * why). */
static gboolean on_watchdog(gpointer data)
{
	struct p2m_mqtt *m = data;

	if (!m->attempting || m->connected || m->retry_timer)
		return G_SOURCE_CONTINUE;
	if (mosquitto_socket(m->mosq) < 0) {
		m->attempting = false;
		schedule_retry(m);
	} else if (g_get_monotonic_time() - m->attempt_started > CONNECT_TIMEOUT_US) {
		p2m_warn("mqtt: no answer from %s:%d; retrying", m->conf->host, m->conf->port);
		m->attempting = false;
		mosquitto_disconnect(m->mosq);
		p2m_mosq_watch_update(m->watch);
		schedule_retry(m);
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
	p2m_info("mqtt: connected to %s:%d", m->conf->host, m->conf->port);
	m->connected = true;
	m->backoff = 0;
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
	m->connected = false;
	schedule_retry(m);
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

static char *resolve_once(const char *host)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	char buf[INET6_ADDRSTRLEN];
	char *out;
	int rc;

	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0 || !res) {
		p2m_warn("mqtt: cannot resolve broker %s (%s); libmosquitto will try on "
			 "each attempt",
			 host, gai_strerror(rc));
		return g_strdup(host);
	}
	if (res->ai_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, buf,
			  sizeof(buf));
	else
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)res->ai_addr)->sin6_addr, buf,
			  sizeof(buf));
	out = g_strdup(buf);
	freeaddrinfo(res);
	return out;
}

struct p2m_mqtt *p2m_mqtt_new(const struct p2m_mqtt_conf *conf, const struct p2m_mqtt_callbacks *cb,
			      void *ud)
{
	struct p2m_mqtt *m = g_new0(struct p2m_mqtt, 1);
	int rc;

	m->conf = conf;
	m->cb = *cb;
	m->ud = ud;
	m->subs = g_ptr_array_new_with_free_func(g_free);
	m->state_topic = g_strdup_printf("%s/bridge/state", conf->base_topic);
	m->mosq = mosquitto_new(conf->client_id, true, m);
	if (!m->mosq) {
		p2m_err("mqtt: cannot create client: %s", strerror(errno));
		p2m_mqtt_free(m);
		return NULL;
	}
	mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
	/* Small messages, sent as they happen: without this, Nagle holds a state publish
	 * back until the broker acknowledges the previous one (tens of ms under load). */
	mosquitto_int_option(m->mosq, MOSQ_OPT_TCP_NODELAY, 1);
	mosquitto_will_set(m->mosq, m->state_topic, 7, "offline", 1, true);
	if (conf->username)
		mosquitto_username_pw_set(m->mosq, conf->username, conf->password);
	if (conf->tls) {
		rc = mosquitto_tls_set(m->mosq, conf->cafile,
				       conf->cafile ? NULL : "/etc/ssl/certs", NULL, NULL, NULL);
		if (rc == MOSQ_ERR_SUCCESS)
			rc = mosquitto_tls_insecure_set(m->mosq, conf->insecure);
		if (rc != MOSQ_ERR_SUCCESS) {
			p2m_err("mqtt: TLS set-up failed: %s", mosquitto_strerror(rc));
			p2m_mqtt_free(m);
			return NULL;
		}
	}
	mosquitto_connect_callback_set(m->mosq, on_connect);
	mosquitto_disconnect_callback_set(m->mosq, on_disconnect);
	mosquitto_message_callback_set(m->mosq, on_message);
	mosquitto_publish_callback_set(m->mosq, on_publish);
	mosquitto_log_callback_set(m->mosq, on_log);
	return m;
}

void p2m_mqtt_add_subscription(struct p2m_mqtt *m, const char *pattern)
{
	g_ptr_array_add(m->subs, g_strdup(pattern));
}

int p2m_mqtt_start(struct p2m_mqtt *m)
{
	m->host = m->conf->tls ? g_strdup(m->conf->host) : resolve_once(m->conf->host);
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
	int rc;

	if (!m->connected)
		return -1;
	rc = mosquitto_publish(m->mosq, NULL, topic, (int)strlen(payload), payload, 1, retain);
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
	if (m->retry_timer)
		g_source_remove(m->retry_timer);
	if (m->watchdog)
		g_source_remove(m->watchdog);
	p2m_mosq_watch_free(m->watch);
	if (m->mosq)
		mosquitto_destroy(m->mosq);
	g_ptr_array_free(m->subs, TRUE);
	g_free(m->state_topic);
	g_free(m->host);
	g_free(m);
}
