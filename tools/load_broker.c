/* load_broker.c - panda2mqtt-load's side of the broker: commands, read-backs, figures.
 *
 * Owns: the libmosquitto client (on the GLib loop through src/loop.c); publishing commands
 * (auto_bed_threshold, one frame each, one at a time per device) at --commands per
 * second; reading back what the gateway publishes: each state's chamber_temperature,
 * which says which frame it shows and so how long that frame took (state latency),
 * availability, discovery, bridge/info; the figures of a window, printed as one JSON line.
 * Does not own: the devices and the frames (load_device.c), the clock and the control
 * lines (load_main.c). */
#include "load.h"

#include "panda2mqtt/log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUIET_US ((gint64)5 * G_USEC_PER_SEC) /* "quiet": no new state for this long */

static const char *const fault_names[] = {"drops", "reboots", "freezes"};

/* ---------- latency samples ---------- */

void load_sample_add(struct load_samples *s, gint64 us)
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
static cJSON *sample_take(struct load_samples *s)
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

/* ---------- commands ---------- */

static void send_command(struct load_dev *d, gint64 now)
{
	char *topic, payload[16];
	/* auto_bed_threshold 60..119: one frame, {"settings":{"hotbedtemp":V}} */
	int v = d->cmd_last >= 60 && d->cmd_last < 119 ? d->cmd_last + 1 : 60;
	int rc;

	topic = g_strdup_printf("%s/%s/set/auto_bed_threshold", load.base, d->id);
	snprintf(payload, sizeof(payload), "%d", v);
	d->cmd_value = d->cmd_last = v;
	d->cmd_sent = now;
	rc = mosquitto_publish(load.mosq, NULL, topic, (int)strlen(payload), payload, 0, false);
	g_free(topic);
	if (rc == MOSQ_ERR_SUCCESS)
		load.cmds_sent++;
	else
		d->cmd_value = 0;
	p2m_mosq_watch_update(load.watch);
}

void load_commands_tick(gint64 now, gint64 elapsed)
{
	if (load.cmd_rate <= 0)
		return;
	load.cmd_credit += load.cmd_rate * (double)elapsed / G_USEC_PER_SEC;
	while (load.cmd_credit >= 1) {
		struct load_dev *d = &load.devs[g_rand_int_range(load.rand, 0, load.n_devices)];

		load.cmd_credit -= 1;
		/* One command at a time per device, only to one that is up and linked. */
		if (d->cmd_value || !d->conns || !load_dev_up(d, now))
			continue;
		send_command(d, now);
	}
}

/* ---------- what the gateway publishes ---------- */

static struct load_dev *dev_by_id(const char *id, size_t len)
{
	char buf[16];
	char *end;
	long i;

	if (len <= strlen(LOAD_ID_PREFIX) || len >= sizeof(buf) ||
	    strncmp(id, LOAD_ID_PREFIX, strlen(LOAD_ID_PREFIX)) != 0)
		return NULL;
	memcpy(buf, id, len);
	buf[len] = '\0';
	i = strtol(buf + strlen(LOAD_ID_PREFIX), &end, 10);
	return *end || i < 0 || i >= load.n_devices ? NULL : &load.devs[i];
}

static void on_state(struct load_dev *d, const char *payload, int len)
{
	cJSON *st = cJSON_ParseWithLength(payload, (size_t)len);
	const cJSON *reading = cJSON_GetObjectItemCaseSensitive(st, "chamber_temperature");

	load.state_msgs++;
	load.state_bytes += (unsigned long)len;
	load.state_bytes_max = MAX(load.state_bytes_max, (unsigned long)len);
	long slot = cJSON_IsNumber(reading) ? lround((reading->valuedouble - 20.0) * 10) : -1;

	if (slot >= 0 && slot < LOAD_CLOCK_SLOTS && d->sent_at[slot]) {
		if (slot != d->last_slot) {
			load.states++;
			d->state_at = load_now_us();
			load_sample_add(&load.state_lat, load_now_us() - d->sent_at[slot]);
			d->last_slot = (int)slot;
		} else {
			load.stale_states++;
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
	guint8 *seen = g_new0(guint8, (size_t)load.n_devices);

	load.info_devices = load.info_dupes = load.info_online = 0;
	cJSON_ArrayForEach(e, list)
	{
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
		struct load_dev *d =
		    cJSON_IsString(id) ? dev_by_id(id->valuestring, strlen(id->valuestring)) : NULL;

		load.info_devices++;
		if (!d)
			continue;
		if (seen[d->idx]++)
			load.info_dupes++;
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "online")))
			load.info_online++;
	}
	load.info_missing = 0;
	for (int i = 0; i < load.n_devices; i++)
		load.info_missing += !seen[i];
	g_free(seen);
	cJSON_Delete(info);
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
	size_t base_len = strlen(load.base), prefix_len = strlen(load.prefix);
	const char *t = msg->topic;
	const char *rest, *slash;
	struct load_dev *d;

	(void)m;
	(void)ud;
	if (!strncmp(t, load.prefix, prefix_len) && !strncmp(t + prefix_len, "/device/", 8)) {
		rest = t + prefix_len + 8;
		slash = strchr(rest, '/');
		d = slash ? dev_by_id(rest, (size_t)(slash - rest)) : NULL;
		if (d && msg->payloadlen > 0 && !d->discovered) {
			d->discovered = load_now_us();
			load.discovered++;
		}
		return;
	}
	if (strncmp(t, load.base, base_len) != 0 || t[base_len] != '/')
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
	snprintf(topic, sizeof(topic), "%s/+", load.base);
	mosquitto_subscribe(m, NULL, topic, 0);
	snprintf(topic, sizeof(topic), "%s/+/availability", load.base);
	mosquitto_subscribe(m, NULL, topic, 0);
	snprintf(topic, sizeof(topic), "%s/bridge/info", load.base);
	mosquitto_subscribe(m, NULL, topic, 0);
	snprintf(topic, sizeof(topic), "%s/device/+/config", load.prefix);
	mosquitto_subscribe(m, NULL, topic, 0);
	p2m_mosq_watch_update(load.watch);
}

/* ---------- figures ---------- */

void load_print_stats(void)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *disc = cJSON_AddObjectToObject(o, "discovery");
	cJSON *faults = cJSON_AddObjectToObject(o, "faults");
	gint64 first = G_MAXINT64, last = 0, worst = 0;
	int online = 0, linked = 0, quiet = 0;
	gint64 now = load_now_us();
	char *txt;

	for (int i = 0; i < load.n_devices; i++) {
		const struct load_dev *d = &load.devs[i];

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
	cJSON_AddNumberToObject(o, "t", load_now_us() / 1e6);
	cJSON_AddNumberToObject(o, "devices", load.n_devices);
	cJSON_AddNumberToObject(o, "online", online);
	cJSON_AddNumberToObject(o, "linked", linked);
	cJSON_AddNumberToObject(o, "quiet", quiet);
	cJSON_AddNumberToObject(o, "frames_sent", (double)load.frames_sent);
	cJSON_AddNumberToObject(o, "frames_received", (double)load.frames_rx);
	cJSON_AddNumberToObject(o, "states", (double)load.states);
	cJSON_AddNumberToObject(o, "repeated_states", (double)load.stale_states);
	cJSON_AddNumberToObject(o, "state_messages", (double)load.state_msgs);
	cJSON_AddNumberToObject(o, "state_bytes_mean",
				load.state_msgs ? (double)load.state_bytes / (double)load.state_msgs
						: 0);
	cJSON_AddNumberToObject(o, "state_bytes_max", (double)load.state_bytes_max);
	cJSON_AddItemToObject(o, "state_latency_ms", sample_take(&load.state_lat));
	cJSON_AddNumberToObject(o, "commands_sent", (double)load.cmds_sent);
	cJSON_AddNumberToObject(o, "commands_seen", (double)load.cmds_seen);
	cJSON_AddItemToObject(o, "command_latency_ms", sample_take(&load.cmd_lat));
	cJSON_AddNumberToObject(disc, "devices", (double)load.discovered);
	if (load.discovered) {
		cJSON_AddNumberToObject(disc, "worst_ms", worst / 1000.0);
		cJSON_AddNumberToObject(disc, "span_ms",
					first < last ? (last - first) / 1000.0 : 0);
	}
	for (int f = 0; f < LOAD_FAULT_KINDS; f++)
		cJSON_AddNumberToObject(faults, fault_names[f], (double)load.faults[f]);
	cJSON_AddNumberToObject(o, "info_devices", load.info_devices);
	cJSON_AddNumberToObject(o, "info_duplicates", load.info_dupes);
	cJSON_AddNumberToObject(o, "info_missing", load.info_missing);
	cJSON_AddNumberToObject(o, "info_online", load.info_online);
	txt = cJSON_PrintUnformatted(o);
	printf("%s\n", txt);
	fflush(stdout);
	cJSON_free(txt);
	cJSON_Delete(o);
	load.frames_sent = load.frames_rx = load.states = load.stale_states = load.cmds_sent =
	    load.cmds_seen = 0;
	load.state_msgs = load.state_bytes = load.state_bytes_max = 0;
	memset(load.faults, 0, sizeof(load.faults));
}

/* ---------- start, stop ---------- */

int load_broker_start(void)
{
	mosquitto_lib_init();
	load.mosq = mosquitto_new(NULL, true, NULL);
	if (!load.mosq)
		return -1;
	mosquitto_int_option(load.mosq, MOSQ_OPT_TCP_NODELAY, 1);
	mosquitto_connect_callback_set(load.mosq, on_connect);
	mosquitto_message_callback_set(load.mosq, on_message);
	load.watch = p2m_mosq_watch_new(load.mosq);
	if (mosquitto_connect_async(load.mosq, load.broker_host, load.broker_port, 30) !=
	    MOSQ_ERR_SUCCESS) {
		fprintf(stderr, LOAD_NAME ": cannot connect to %s:%d\n", load.broker_host,
			load.broker_port);
		return -1;
	}
	p2m_mosq_watch_update(load.watch);
	return 0;
}

void load_broker_stop(void)
{
	if (load.mosq) {
		p2m_mosq_watch_free(load.watch);
		mosquitto_destroy(load.mosq);
		mosquitto_lib_cleanup();
	}
	g_free(load.state_lat.v);
	g_free(load.cmd_lat.v);
}
