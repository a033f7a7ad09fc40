/*
 * panda2mqtt-load - many simulated Panda Breath devices in one process, and the clock that
 * measures a gateway serving them.
 *
 * What it is: the load generator behind tools/bench.py (latency, CPU, memory) and
 * tools/soak.py (faults over hours). Each device listens on its own loopback port, sends
 * a full snapshot as the first frame of every connection, pushes temperatures at --rate,
 * merges what it is sent into its state (so that the gateway's re-read finds its writes),
 * and with --flap drops, reboots and freezes at random. Every frame it sends carries a new
 * chamber reading (settings.warehouse_temper, as the firmware reports it): one of
 * CLOCK_SLOTS values, each remembered with its send time, so a state message read back from
 * the broker says by its chamber_temperature which frame it shows and how long that frame
 * took to get through (no field outside the device's own vocabulary is needed, since the
 * gateway publishes only what it knows). Commands are published here too, and timed until
 * the frame reaches the device. The snapshot and the pushes are built as panda2mqtt-sim
 * builds them (tools/sim_snapshot.c), but for the readings: tenths, where a real unit
 * sends whole degrees, since each one is a frame's clock.
 *
 * What it is not: a model of the device (see panda2mqtt-sim for that: firmware dialects,
 * drying, Wi-Fi, printers), nor a judge: it prints figures as JSON lines on stdout and the
 * runners decide what they mean.
 *
 * Control lines on stdin: "stats" (print the figures and start a new window),
 * "commands RATE" (commands per second, across the devices), "faults on|off" (with
 * --flap: start making faults, or stop making new ones; faults start off), "quit". One thread:
 * GLib's main loop drives libwebsockets and libmosquitto (src/loop.c).
 */
#include "loop.h"
#include "sim_snapshot.h"

#include "panda2mqtt/log.h"

#include <cjson/cJSON.h>
#include <glib-unix.h>
#include <glib.h>
#include <libwebsockets.h>
#include <mosquitto.h>

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAME	      "panda2mqtt-load"
#define ID_PREFIX     "load_"
#define RX_MAX	      ((size_t)64 * 1024)    /* the gateway's frames are a few hundred bytes */
#define TX_MAX	      ((size_t)4 * 1024)     /* a snapshot is about 1 KiB */
#define TICK_US	      ((lws_usec_t)5 * 1000) /* push and fault clock */
#define REBOOT_US     ((gint64)3 * G_USEC_PER_SEC)
#define QUIET_US      ((gint64)5 * G_USEC_PER_SEC) /* "quiet": no new state for this long */
#define SECRET_WIFI   "LoadWifiPass-2c41"
#define SECRET_AP     "LoadApPass-9e07"
#define SECRET_ACCESS "LoadAccess-5b18"
/* The chamber readings a device cycles through, 20.0, 20.1, ... 59.9 °C: far more than
 * the frames that can be on their way at once. */
#define CLOCK_SLOTS 400

enum fault { FAULT_DROP, FAULT_REBOOT, FAULT_FREEZE, FAULT_KINDS };
static const char *const fault_names[] = {"drops", "reboots", "freezes"};

struct conn {
	struct lws *wsi;
	struct dev *dev;
	struct conn *next;
	bool snapshot_sent;
	bool push_due;
	int push_left; /* frames of the current push still to send */
	bool killed;
	size_t rx_len;
	char *rx;
};

struct dev {
	int idx;
	char id[16];
	int port;
	struct lws_vhost *vh;
	cJSON *state;
	struct conn *conns;
	gint64 rebooting_until; /* monotonic us; 0: up */
	gint64 frozen_until;
	gint64 next_fault;
	gint64 first_connect;	     /* first WebSocket established */
	gint64 discovered;	     /* first discovery config seen */
	unsigned seq;		     /* frames sent: the next reading */
	gint64 sent_at[CLOCK_SLOTS]; /* send time of each reading; 0: never sent */
	int last_slot;		     /* the reading of the last state seen; -1: none */
	gint64 state_at;	     /* when the last new state was seen */
	bool online;		     /* the gateway's availability topic */
	int cmd_value;		     /* outstanding command's value; 0: none */
	int cmd_last;		     /* the last value sent: the next one differs */
	gint64 cmd_sent;
};

struct samples {
	guint32 *v; /* microseconds */
	size_t n, cap;
};

static struct {
	/* options */
	int n_devices;
	double rate;
	double flap_mean_s;
	double freeze_s;
	double cmd_rate;
	int frames_per_push; /* a push is this many frames: a new reading, then no change */
	const char *broker_host;
	int broker_port;
	const char *base, *prefix;
	const char *config_out;
	int stale_timeout;
	/* run */
	GMainLoop *loop;
	struct lws_context *ctx;
	struct mosquitto *mosq;
	struct p2m_mosq_watch *watch;
	struct dev *devs;
	gint64 t0;
	gint64 period_us;
	size_t push_cursor;
	gint64 push_round;
	double cmd_credit;
	gint64 last_tick;
	bool calm; /* no new faults: until "faults on" */
	lws_sorted_usec_list_t sul_tick;
	GRand *rand;
	/* window figures */
	unsigned long frames_sent, frames_rx, states, stale_states, cmds_sent, cmds_seen,
	    faults[FAULT_KINDS];
	unsigned long discovered;
	unsigned long state_msgs, state_bytes, state_bytes_max; /* every state message */
	struct samples state_lat, cmd_lat;
	/* bridge/info */
	int info_devices, info_dupes, info_online, info_missing;
} L = {
    .n_devices = 100,
    .rate = 2.0,
    .frames_per_push = 1,
    .freeze_s = 8.0,
    .broker_host = "127.0.0.1",
    .broker_port = 1883,
    .base = "panda2mqtt",
    .prefix = "homeassistant",
    .stale_timeout = 60,
    .calm = true,
};

static gint64 now_us(void)
{
	return g_get_monotonic_time() - L.t0;
}

static void sample_add(struct samples *s, gint64 us)
{
	if (us < 0)
		us = 0;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 4096;
		s->v = g_renew(guint32, s->v, s->cap);
	}
	s->v[s->n++] = us > G_MAXUINT32 ? G_MAXUINT32 : (guint32)us;
}

static int cmp_u32(const void *a, const void *b)
{
	guint32 x = *(const guint32 *)a, y = *(const guint32 *)b;

	return (x > y) - (x < y);
}

/* {"n":N,"p50":ms,"p99":ms,"max":ms} and the window emptied. */
static cJSON *sample_take(struct samples *s)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddNumberToObject(o, "n", (double)s->n);
	if (s->n) {
		qsort(s->v, s->n, sizeof(*s->v), cmp_u32);
		size_t p50 = (s->n - 1) * 50 / 100, p99 = (s->n - 1) * 99 / 100;

		cJSON_AddNumberToObject(o, "p50", s->v[p50] / 1000.0);
		cJSON_AddNumberToObject(o, "p99", s->v[p99] / 1000.0);
		cJSON_AddNumberToObject(o, "max", s->v[s->n - 1] / 1000.0);
	}
	s->n = 0;
	return o;
}

/* ---------- one device ---------- */

/* Device idx as the simulator's firmware V1.0.3 starts (sim_snapshot.c), with a name and a
 * MAC of its own, so that no two devices look like the same heater. */
static cJSON *state_new(int idx)
{
	char hostname[32], mac[16];
	const struct sim_identity id = {
	    .fw = SIM_FW_V103,
	    .hostname = hostname,
	    .sta_ip = "127.0.0.1",
	    .mac = mac,
	    .wifi_ssid = "LoadNet",
	    .wifi_password = SECRET_WIFI,
	    .ap_password = SECRET_AP,
	    .printer_name = "Load X1C",
	    .printer_sn = "01S00LOAD000001",
	    .access_code = SECRET_ACCESS,
	};

	snprintf(hostname, sizeof(hostname), "load-panda-%04d", idx);
	snprintf(mac, sizeof(mac), "4c0ad0%06x", (unsigned)idx);
	return sim_snapshot_state(&id);
}

static bool dev_up(const struct dev *d, gint64 now)
{
	return now >= d->rebooting_until && now >= d->frozen_until;
}

/* Close every connection without a close frame, as a device that vanishes does. */
static void dev_drop(struct dev *d)
{
	for (struct conn *c = d->conns; c; c = c->next)
		if (!c->killed) {
			c->killed = true;
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		}
}

static void dev_fault(struct dev *d, gint64 now)
{
	enum fault f = (enum fault)g_rand_int_range(L.rand, 0, FAULT_KINDS);

	L.faults[f]++;
	switch (f) {
	case FAULT_DROP:
		dev_drop(d);
		break;
	case FAULT_REBOOT:
		dev_drop(d);
		d->rebooting_until = now + REBOOT_US;
		break;
	case FAULT_FREEZE:
		d->frozen_until = now + (gint64)(L.freeze_s * G_USEC_PER_SEC);
		break;
	default:
		break;
	}
}

static gint64 next_fault_at(gint64 now)
{
	double u = g_rand_double_range(L.rand, 1e-9, 1.0);

	return now + (gint64)(-log(u) * L.flap_mean_s * G_USEC_PER_SEC);
}

/* Frame text after LWS_PRE bytes of buf; its length, 0 when it does not fit. */
static size_t frame_text(struct conn *c, unsigned char *buf, size_t cap, bool snapshot)
{
	/* the push's other frames: fields the device repeats, that change nothing */
	if (!snapshot && c->push_left < L.frames_per_push) {
		static const char same[] =
		    "{\"settings\":{\"ptc_sensor_status\":0,\"warehouse_sensor_status\":0}}";

		if (sizeof(same) > cap - LWS_PRE)
			return 0;
		memcpy(buf + LWS_PRE, same, sizeof(same));
		return sizeof(same) - 1;
	}
	struct dev *d = c->dev;
	unsigned slot = ++d->seq % CLOCK_SLOTS;
	/* tenths, unlike a real unit's whole degrees: the reading is the frame's clock */
	struct sim_readings r = {.warehouse = 20.0 + (double)slot / 10, .decimals = 1};
	char *out = (char *)buf + LWS_PRE, *txt;
	size_t len;
	int n;

	d->sent_at[slot] = now_us();
	if (snapshot) {
		txt = sim_snapshot_text(d->state, SIM_FW_V103, &r);
		len = txt ? strlen(txt) : 0;
		if (len < cap - LWS_PRE)
			memcpy(out, txt, len);
		else
			len = 0;
		cJSON_free(txt);
		return len;
	}
	/* A temperature push as the device sends it; its reading is its clock. */
	n = sim_snapshot_push(out, cap - LWS_PRE, &r);
	return n > 0 && (size_t)n < cap - LWS_PRE ? (size_t)n : 0;
}

static int conn_writeable(struct conn *c)
{
	static unsigned char buf[LWS_PRE + TX_MAX];
	bool snapshot = !c->snapshot_sent;
	size_t len;

	if (c->killed || !dev_up(c->dev, now_us()))
		return 0;
	if (!snapshot && !c->push_due)
		return 0;
	if (!snapshot && !c->push_left)
		c->push_left = L.frames_per_push;
	len = frame_text(c, buf, sizeof(buf), snapshot);
	if (!len)
		return -1;
	if (lws_write(c->wsi, buf + LWS_PRE, len, LWS_WRITE_TEXT) < (int)len)
		return -1;
	L.frames_sent++;
	c->snapshot_sent = true;
	if (!snapshot && --c->push_left > 0) {
		lws_callback_on_writable(c->wsi); /* the rest of the push */
		return 0;
	}
	c->push_left = 0;
	c->push_due = false;
	return 0;
}

/* Merge what the gateway wrote into the state, as the device applies it. */
static void conn_message(struct conn *c, const char *txt, size_t len)
{
	struct dev *d = c->dev;
	cJSON *doc = cJSON_ParseWithLength(txt, len);
	const cJSON *root, *f;

	L.frames_rx++;
	if (!cJSON_IsObject(doc)) {
		cJSON_Delete(doc);
		return;
	}
	cJSON_ArrayForEach(root, doc)
	{
		cJSON *mine = cJSON_GetObjectItemCaseSensitive(d->state, root->string);

		if (!cJSON_IsObject(root) || !cJSON_IsObject(mine))
			continue;
		cJSON_ArrayForEach(f, root)
		{
			if (d->cmd_value && !strcmp(root->string, "settings") &&
			    !strcmp(f->string, "hotbedtemp") && cJSON_IsNumber(f) &&
			    f->valueint == d->cmd_value) {
				sample_add(&L.cmd_lat, now_us() - d->cmd_sent);
				L.cmds_seen++;
				d->cmd_value = 0;
			}
			if (cJSON_GetObjectItemCaseSensitive(mine, f->string))
				cJSON_ReplaceItemInObjectCaseSensitive(mine, f->string,
								       cJSON_Duplicate(f, 1));
		}
	}
	cJSON_Delete(doc);
}

static void conn_rx(struct conn *c, struct lws *wsi, const void *in, size_t len)
{
	if (c->rx_len + len > RX_MAX) {
		c->rx_len = 0;
		return;
	}
	if (!c->rx)
		c->rx = g_malloc(RX_MAX);
	memcpy(c->rx + c->rx_len, in, len);
	c->rx_len += len;
	if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
		conn_message(c, c->rx, c->rx_len);
		c->rx_len = 0;
	}
}

static struct dev *dev_of(struct lws *wsi)
{
	struct lws_vhost *vh = lws_get_vhost(wsi);

	return vh ? lws_get_vhost_user(vh) : NULL;
}

static int callback_device(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			   size_t len)
{
	struct conn *c = user;
	struct dev *d;

	switch (reason) {
	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		d = dev_of(wsi);
		return d && now_us() < d->rebooting_until;
	case LWS_CALLBACK_ESTABLISHED:
		d = dev_of(wsi);
		if (!d)
			return -1;
		memset(c, 0, sizeof(*c));
		c->wsi = wsi;
		c->dev = d;
		c->next = d->conns;
		d->conns = c;
		if (!d->first_connect)
			d->first_connect = now_us();
		lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_CLOSED:
		if (c && c->dev) {
			struct conn **p = &c->dev->conns;

			while (*p && *p != c)
				p = &(*p)->next;
			if (*p)
				*p = c->next;
			g_free(c->rx);
			c->dev = NULL;
		}
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return c && c->dev ? conn_writeable(c) : 0;
	case LWS_CALLBACK_RECEIVE:
		if (c && c->dev)
			conn_rx(c, wsi, in, len);
		return 0;
	default:
		return 0;
	}
}

static const struct lws_protocols protocols[] = {
    {"panda-breath", callback_device, sizeof(struct conn), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---------- the clock: pushes, faults, commands ---------- */

static void send_command(struct dev *d, gint64 now)
{
	char *topic, payload[16];
	/* auto_bed_threshold 60..119: one frame, {"settings":{"hotbedtemp":V}} */
	int v = d->cmd_last >= 60 && d->cmd_last < 119 ? d->cmd_last + 1 : 60;
	int rc;

	topic = g_strdup_printf("%s/%s/set/auto_bed_threshold", L.base, d->id);
	snprintf(payload, sizeof(payload), "%d", v);
	d->cmd_value = d->cmd_last = v;
	d->cmd_sent = now;
	rc = mosquitto_publish(L.mosq, NULL, topic, (int)strlen(payload), payload, 0, false);
	g_free(topic);
	if (rc == MOSQ_ERR_SUCCESS)
		L.cmds_sent++;
	else
		d->cmd_value = 0;
	p2m_mosq_watch_update(L.watch);
}

static void commands_tick(gint64 now, gint64 elapsed)
{
	if (L.cmd_rate <= 0)
		return;
	L.cmd_credit += L.cmd_rate * (double)elapsed / G_USEC_PER_SEC;
	while (L.cmd_credit >= 1) {
		struct dev *d = &L.devs[g_rand_int_range(L.rand, 0, L.n_devices)];

		L.cmd_credit -= 1;
		/* One command at a time per device, only to one that is up and linked. */
		if (d->cmd_value || !d->conns || !dev_up(d, now))
			continue;
		send_command(d, now);
	}
}

static void pushes_tick(gint64 now)
{
	if (L.period_us <= 0)
		return;
	/* Device i is due at i * period / N + k * period: evenly spread. */
	for (;;) {
		struct dev *d = &L.devs[L.push_cursor];
		gint64 due =
		    L.push_round * L.period_us + (gint64)L.push_cursor * L.period_us / L.n_devices;

		if (due > now)
			break;
		if (dev_up(d, now))
			for (struct conn *c = d->conns; c; c = c->next)
				if (c->snapshot_sent && !c->killed) {
					c->push_due = true;
					lws_callback_on_writable(c->wsi);
				}
		if (++L.push_cursor == (size_t)L.n_devices) {
			L.push_cursor = 0;
			L.push_round++;
		}
	}
}

static void faults_tick(gint64 now)
{
	for (int i = 0; i < L.n_devices; i++) {
		struct dev *d = &L.devs[i];

		/* A frozen or rebooted device that comes back owes its new clients a snapshot. */
		if ((d->frozen_until && now >= d->frozen_until) ||
		    (d->rebooting_until && now >= d->rebooting_until)) {
			d->frozen_until = d->rebooting_until = 0;
			for (struct conn *c = d->conns; c; c = c->next)
				lws_callback_on_writable(c->wsi);
		}
		if (L.calm || L.flap_mean_s <= 0)
			continue;
		if (!d->next_fault)
			d->next_fault = next_fault_at(now);
		if (now >= d->next_fault && dev_up(d, now)) {
			dev_fault(d, now);
			d->next_fault = next_fault_at(now);
		}
	}
}

static void tick(lws_sorted_usec_list_t *sul)
{
	gint64 now = now_us();

	pushes_tick(now);
	faults_tick(now);
	commands_tick(now, L.last_tick ? now - L.last_tick : 0);
	L.last_tick = now;
	lws_sul_schedule(L.ctx, 0, sul, tick, TICK_US);
}

/* ---------- what the gateway publishes ---------- */

static struct dev *dev_by_id(const char *id, size_t len)
{
	char buf[16];
	char *end;
	long i;

	if (len <= strlen(ID_PREFIX) || len >= sizeof(buf) ||
	    strncmp(id, ID_PREFIX, strlen(ID_PREFIX)) != 0)
		return NULL;
	memcpy(buf, id, len);
	buf[len] = '\0';
	i = strtol(buf + strlen(ID_PREFIX), &end, 10);
	return *end || i < 0 || i >= L.n_devices ? NULL : &L.devs[i];
}

static void on_state(struct dev *d, const char *payload, int len)
{
	cJSON *st = cJSON_ParseWithLength(payload, (size_t)len);
	const cJSON *reading = cJSON_GetObjectItemCaseSensitive(st, "chamber_temperature");

	L.state_msgs++;
	L.state_bytes += (unsigned long)len;
	L.state_bytes_max = MAX(L.state_bytes_max, (unsigned long)len);
	long slot = cJSON_IsNumber(reading) ? lround((reading->valuedouble - 20.0) * 10) : -1;

	if (slot >= 0 && slot < CLOCK_SLOTS && d->sent_at[slot]) {
		if (slot != d->last_slot) {
			L.states++;
			d->state_at = now_us();
			sample_add(&L.state_lat, now_us() - d->sent_at[slot]);
			d->last_slot = (int)slot;
		} else {
			L.stale_states++;
		}
	}
	cJSON_Delete(st);
}

/* Every device listed once, and how many of them online. */
static void on_info(const char *payload, int len)
{
	cJSON *info = cJSON_ParseWithLength(payload, (size_t)len);
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(info, "devices");
	const cJSON *e;
	guint8 *seen = g_new0(guint8, (size_t)L.n_devices);

	L.info_devices = L.info_dupes = L.info_online = 0;
	cJSON_ArrayForEach(e, list)
	{
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
		struct dev *d =
		    cJSON_IsString(id) ? dev_by_id(id->valuestring, strlen(id->valuestring)) : NULL;

		L.info_devices++;
		if (!d)
			continue;
		if (seen[d->idx]++)
			L.info_dupes++;
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "online")))
			L.info_online++;
	}
	L.info_missing = 0;
	for (int i = 0; i < L.n_devices; i++)
		L.info_missing += !seen[i];
	g_free(seen);
	cJSON_Delete(info);
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
	size_t base_len = strlen(L.base), prefix_len = strlen(L.prefix);
	const char *t = msg->topic;
	const char *rest, *slash;
	struct dev *d;

	(void)m;
	(void)ud;
	if (!strncmp(t, L.prefix, prefix_len) && !strncmp(t + prefix_len, "/device/", 8)) {
		rest = t + prefix_len + 8;
		slash = strchr(rest, '/');
		d = slash ? dev_by_id(rest, (size_t)(slash - rest)) : NULL;
		if (d && msg->payloadlen > 0 && !d->discovered) {
			d->discovered = now_us();
			L.discovered++;
		}
		return;
	}
	if (strncmp(t, L.base, base_len) != 0 || t[base_len] != '/')
		return;
	rest = t + base_len + 1;
	if (!strcmp(rest, "bridge/info")) {
		on_info(msg->payload, msg->payloadlen);
		return;
	}
	slash = strchr(rest, '/');
	d = dev_by_id(rest, slash ? (size_t)(slash - rest) : strlen(rest));
	if (!d)
		return;
	if (!slash)
		on_state(d, msg->payload, msg->payloadlen);
	else if (!strcmp(slash, "/availability"))
		d->online = msg->payloadlen == 6 && !memcmp(msg->payload, "online", 6);
}

static void on_connect(struct mosquitto *m, void *ud, int rc)
{
	char topic[256];

	(void)ud;
	if (rc) {
		p2m_warn("mqtt: connect refused (%d)", rc);
		return;
	}
	snprintf(topic, sizeof(topic), "%s/+", L.base);
	mosquitto_subscribe(m, NULL, topic, 0);
	snprintf(topic, sizeof(topic), "%s/+/availability", L.base);
	mosquitto_subscribe(m, NULL, topic, 0);
	snprintf(topic, sizeof(topic), "%s/bridge/info", L.base);
	mosquitto_subscribe(m, NULL, topic, 0);
	snprintf(topic, sizeof(topic), "%s/device/+/config", L.prefix);
	mosquitto_subscribe(m, NULL, topic, 0);
	p2m_mosq_watch_update(L.watch);
}

/* ---------- figures ---------- */

static void print_stats(void)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *disc = cJSON_AddObjectToObject(o, "discovery");
	cJSON *faults = cJSON_AddObjectToObject(o, "faults");
	gint64 first = G_MAXINT64, last = 0, worst = 0;
	int online = 0, linked = 0, quiet = 0;
	gint64 now = now_us();
	char *txt;

	for (int i = 0; i < L.n_devices; i++) {
		const struct dev *d = &L.devs[i];

		online += d->online;
		linked += d->conns != NULL;
		quiet += now - d->state_at > QUIET_US;
		if (d->first_connect && d->first_connect < first)
			first = d->first_connect;
		if (d->discovered) {
			last = MAX(last, d->discovered);
			if (d->first_connect)
				worst = MAX(worst, d->discovered - d->first_connect);
		}
	}
	cJSON_AddNumberToObject(o, "t", now_us() / 1e6);
	cJSON_AddNumberToObject(o, "devices", L.n_devices);
	cJSON_AddNumberToObject(o, "online", online);
	cJSON_AddNumberToObject(o, "linked", linked);
	cJSON_AddNumberToObject(o, "quiet", quiet);
	cJSON_AddNumberToObject(o, "frames_sent", (double)L.frames_sent);
	cJSON_AddNumberToObject(o, "frames_received", (double)L.frames_rx);
	cJSON_AddNumberToObject(o, "states", (double)L.states);
	cJSON_AddNumberToObject(o, "repeated_states", (double)L.stale_states);
	cJSON_AddNumberToObject(o, "state_messages", (double)L.state_msgs);
	cJSON_AddNumberToObject(o, "state_bytes_mean",
				L.state_msgs ? (double)L.state_bytes / (double)L.state_msgs : 0);
	cJSON_AddNumberToObject(o, "state_bytes_max", (double)L.state_bytes_max);
	cJSON_AddItemToObject(o, "state_latency_ms", sample_take(&L.state_lat));
	cJSON_AddNumberToObject(o, "commands_sent", (double)L.cmds_sent);
	cJSON_AddNumberToObject(o, "commands_seen", (double)L.cmds_seen);
	cJSON_AddItemToObject(o, "command_latency_ms", sample_take(&L.cmd_lat));
	cJSON_AddNumberToObject(disc, "devices", (double)L.discovered);
	if (L.discovered) {
		cJSON_AddNumberToObject(disc, "worst_ms", worst / 1000.0);
		cJSON_AddNumberToObject(disc, "span_ms",
					first < last ? (last - first) / 1000.0 : 0);
	}
	for (int f = 0; f < FAULT_KINDS; f++)
		cJSON_AddNumberToObject(faults, fault_names[f], (double)L.faults[f]);
	cJSON_AddNumberToObject(o, "info_devices", L.info_devices);
	cJSON_AddNumberToObject(o, "info_duplicates", L.info_dupes);
	cJSON_AddNumberToObject(o, "info_missing", L.info_missing);
	cJSON_AddNumberToObject(o, "info_online", L.info_online);
	txt = cJSON_PrintUnformatted(o);
	printf("%s\n", txt);
	fflush(stdout);
	cJSON_free(txt);
	cJSON_Delete(o);
	L.frames_sent = L.frames_rx = L.states = L.stale_states = L.cmds_sent = L.cmds_seen = 0;
	L.state_msgs = L.state_bytes = L.state_bytes_max = 0;
	memset(L.faults, 0, sizeof(L.faults));
}

static void control_line(char *line)
{
	double v;

	g_strstrip(line);
	if (!strcmp(line, "stats")) {
		print_stats();
	} else if (!strcmp(line, "faults on") || !strcmp(line, "faults off")) {
		L.calm = !strcmp(line, "faults off");
		for (int i = 0; i < L.n_devices; i++)
			L.devs[i].next_fault = 0;
		printf("ok %s\n", line);
	} else if (sscanf(line, "commands %lf", &v) == 1 && v >= 0) {
		L.cmd_rate = v;
		L.cmd_credit = 0;
		printf("ok commands\n");
	} else if (!strcmp(line, "quit")) {
		g_main_loop_quit(L.loop);
	} else if (*line) {
		printf("error %s: unknown command\n", line);
	}
	fflush(stdout);
}

static gboolean on_stdin(gint fd, GIOCondition cond, gpointer data)
{
	static GString *acc;
	char buf[512];
	ssize_t n;
	char *nl;

	(void)cond;
	(void)data;
	if (!acc)
		acc = g_string_new(NULL);
	n = read(fd, buf, sizeof(buf));
	if (n <= 0) {
		g_main_loop_quit(L.loop); /* the runner went away */
		return G_SOURCE_REMOVE;
	}
	g_string_append_len(acc, buf, n);
	while ((nl = memchr(acc->str, '\n', acc->len))) {
		*nl = '\0';
		control_line(acc->str);
		g_string_erase(acc, 0, nl - acc->str + 1);
	}
	if (acc->len > 4096)
		g_string_truncate(acc, 0);
	return G_SOURCE_CONTINUE;
}

static gboolean on_signal(gpointer data)
{
	(void)data;
	g_main_loop_quit(L.loop);
	return G_SOURCE_REMOVE;
}

/* ---------- start ---------- */

static int listen_all(void)
{
	struct lws_context_creation_info info;
	FILE *f = NULL;

	if (L.config_out && !(f = fopen(L.config_out, "w"))) {
		fprintf(stderr, NAME ": cannot write %s: %s\n", L.config_out, strerror(errno));
		return -1;
	}
	L.devs = g_new0(struct dev, (size_t)L.n_devices);
	for (int i = 0; i < L.n_devices; i++) {
		struct dev *d = &L.devs[i];

		d->idx = i;
		d->last_slot = -1;
		snprintf(d->id, sizeof(d->id), ID_PREFIX "%04d", i);
		d->state = state_new(i);
		memset(&info, 0, sizeof(info));
		info.options =
		    LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
		info.port = 0; /* any free port: written to --config-out */
		info.iface = "127.0.0.1";
		info.protocols = protocols;
		info.vhost_name = d->id;
		info.user = d;
		d->vh = lws_create_vhost(L.ctx, &info);
		d->port = d->vh ? lws_get_vhost_listen_port(d->vh) : -1;
		if (d->port <= 0) {
			fprintf(stderr, NAME ": device %d: cannot listen: %s\n", i,
				strerror(errno));
			if (f)
				fclose(f);
			return -1;
		}
		if (f)
			fprintf(f,
				"\n[device %s]\nhost = 127.0.0.1\nport = %d\nstale_timeout = %d\n",
				d->id, d->port, L.stale_timeout);
	}
	if (f && fclose(f) != 0)
		return -1;
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " NAME " [OPTION]...\n"
		"Many simulated Panda Breath devices on 127.0.0.1, one port each, and the\n"
		"timing of a gateway serving them through an MQTT broker.\n\n"
		"  -n, --devices N        devices (default 100)\n"
		"  -r, --rate HZ          temperature pushes per device per second (default 2;\n"
		"                         0: snapshots only)\n"
		"      --frames-per-push N  frames in each push: a new chamber reading, then\n"
		"                         N-1 frames repeating fields that change nothing\n"
		"                         (default 1, at most 8)\n"
		"  -f, --flap SECONDS     mean time between faults per device (drop, reboot,\n"
		"                         freeze), exponentially distributed (default 0: none)\n"
		"      --freeze SECONDS   how long a frozen device stays silent (default 8)\n"
		"  -c, --commands RATE    commands per second across the devices (default 0)\n"
		"  -b, --broker HOST:PORT the broker the gateway uses (default 127.0.0.1:1883)\n"
		"      --base-topic T     the gateway's base topic (default panda2mqtt)\n"
		"      --discovery-prefix P  (default homeassistant)\n"
		"  -o, --config-out FILE  write a [device] section per device here\n"
		"      --stale-timeout S  stale_timeout written there (default 60)\n"
		"      --seed N           random seed for faults and commands\n"
		"  -h, --help\n\n"
		"Stdout: \"ready devices=N\" once listening, then one JSON line per \"stats\".\n"
		"Stdin: stats | commands RATE | faults on|off | quit. Faults start off.\n"
		"Device i is \"" ID_PREFIX
		"%%04d\"; each push's first frame carries a new chamber\n"
		"reading: its clock.\n");
}

static double num_arg(const char *opt, const char *s, double lo, double hi)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi)) {
		fprintf(stderr, NAME ": %s: '%s' is not a number in %g..%g\n", opt, s, lo, hi);
		exit(2);
	}
	return v;
}

static void parse_args(int argc, char **argv)
{
	enum { O_FREEZE = 256, O_BASE, O_PREFIX, O_STALE, O_SEED, O_FPP };
	static const struct option opts[] = {
	    {"devices", required_argument, NULL, 'n'},
	    {"rate", required_argument, NULL, 'r'},
	    {"flap", required_argument, NULL, 'f'},
	    {"freeze", required_argument, NULL, O_FREEZE},
	    {"commands", required_argument, NULL, 'c'},
	    {"broker", required_argument, NULL, 'b'},
	    {"base-topic", required_argument, NULL, O_BASE},
	    {"discovery-prefix", required_argument, NULL, O_PREFIX},
	    {"config-out", required_argument, NULL, 'o'},
	    {"stale-timeout", required_argument, NULL, O_STALE},
	    {"seed", required_argument, NULL, O_SEED},
	    {"frames-per-push", required_argument, NULL, O_FPP},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	guint32 seed = (guint32)getpid();
	char *colon;
	int o;

	while ((o = getopt_long(argc, argv, "n:r:f:c:b:o:h", opts, NULL)) != -1) {
		switch (o) {
		case 'n':
			L.n_devices = (int)num_arg("--devices", optarg, 1, 10000);
			break;
		case 'r':
			L.rate = num_arg("--rate", optarg, 0, 100);
			break;
		case 'f':
			L.flap_mean_s = num_arg("--flap", optarg, 0, 1e6);
			break;
		case O_FREEZE:
			L.freeze_s = num_arg("--freeze", optarg, 0.1, 3600);
			break;
		case 'c':
			L.cmd_rate = num_arg("--commands", optarg, 0, 100000);
			break;
		case 'b':
			colon = strrchr(optarg, ':');
			if (!colon || colon == optarg) {
				fprintf(stderr, NAME ": --broker: HOST:PORT expected\n");
				exit(2);
			}
			*colon = '\0';
			L.broker_host = optarg;
			L.broker_port = (int)num_arg("--broker port", colon + 1, 1, 65535);
			break;
		case O_BASE:
			L.base = optarg;
			break;
		case O_PREFIX:
			L.prefix = optarg;
			break;
		case 'o':
			L.config_out = optarg;
			break;
		case O_STALE:
			L.stale_timeout = (int)num_arg("--stale-timeout", optarg, 2, 3600);
			break;
		case O_SEED:
			seed = (guint32)num_arg("--seed", optarg, 0, 4294967295.0);
			break;
		case O_FPP:
			L.frames_per_push = (int)num_arg("--frames-per-push", optarg, 1, 8);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, NAME ": unexpected argument '%s'\n", argv[optind]);
		exit(2);
	}
	L.rand = g_rand_new_with_seed(seed);
}

int main(int argc, char **argv)
{
	int rc = 1;

	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	lws_set_log_level(LLL_ERR, NULL);
	L.t0 = g_get_monotonic_time() - 1; /* every timestamp positive */
	L.period_us = L.rate > 0 ? (gint64)(G_USEC_PER_SEC / L.rate) : 0;
	L.loop = g_main_loop_new(NULL, FALSE);
	L.ctx = p2m_loop_lws_new(protocols);
	if (!L.ctx || listen_all() < 0)
		goto out;

	mosquitto_lib_init();
	L.mosq = mosquitto_new(NULL, true, NULL);
	if (!L.mosq)
		goto out;
	mosquitto_int_option(L.mosq, MOSQ_OPT_TCP_NODELAY, 1);
	mosquitto_connect_callback_set(L.mosq, on_connect);
	mosquitto_message_callback_set(L.mosq, on_message);
	L.watch = p2m_mosq_watch_new(L.mosq);
	if (mosquitto_connect_async(L.mosq, L.broker_host, L.broker_port, 30) != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, NAME ": cannot connect to %s:%d\n", L.broker_host, L.broker_port);
		goto out;
	}
	p2m_mosq_watch_update(L.watch);

	g_unix_fd_add(STDIN_FILENO, G_IO_IN | G_IO_HUP | G_IO_ERR, on_stdin, NULL);
	g_unix_signal_add(SIGINT, on_signal, NULL);
	g_unix_signal_add(SIGTERM, on_signal, NULL);
	lws_sul_schedule(L.ctx, 0, &L.sul_tick, tick, TICK_US);
	printf("ready devices=%d\n", L.n_devices);
	fflush(stdout);
	g_main_loop_run(L.loop);
	rc = 0;
out:
	if (L.ctx)
		lws_sul_cancel(&L.sul_tick);
	p2m_loop_lws_destroy(L.ctx);
	if (L.mosq) {
		p2m_mosq_watch_free(L.watch);
		mosquitto_destroy(L.mosq);
		mosquitto_lib_cleanup();
	}
	for (int i = 0; L.devs && i < L.n_devices; i++)
		cJSON_Delete(L.devs[i].state);
	g_free(L.devs);
	g_free(L.state_lat.v);
	g_free(L.cmd_lat.v);
	if (L.rand)
		g_rand_free(L.rand);
	if (L.loop)
		g_main_loop_unref(L.loop);
	return rc;
}
