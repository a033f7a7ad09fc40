/* load_device.c - panda2mqtt-load's simulated devices.
 *
 * Owns: the devices, each a WebSocket server on its own loopback port (a vhost of the one
 * lws context): the snapshot as the first frame of every connection and the temperature
 * pushes, built by tools/sim_snapshot.c as the simulator's are, but with tenths for
 * readings since each reading is a frame's clock (its send time kept in sent_at); the
 * frames of a push beyond the first (--frames-per-push), repeating fields that change
 * nothing; merging what the gateway writes into the state (so that its re-reads find it)
 * and timing the commands it delivers; the faults of --flap (drop, reboot, freeze) at
 * exponentially distributed times. Does not own: the broker's side (load_broker.c), the
 * clock that calls the ticks and the options (load_main.c). */
#include "load.h"
#include "sim_snapshot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define RX_MAX	      ((size_t)64 * 1024) /* the gateway's frames are a few hundred bytes */
#define TX_MAX	      ((size_t)4 * 1024)  /* a snapshot is about 1 KiB */
#define REBOOT_US     ((gint64)3 * G_USEC_PER_SEC)
#define SECRET_WIFI   "LoadWifiPass-2c41"
#define SECRET_AP     "LoadApPass-9e07"
#define SECRET_ACCESS "LoadAccess-5b18"

struct load_conn {
	struct lws *wsi;
	struct load_dev *dev;
	struct load_conn *next;
	bool snapshot_sent;
	bool push_due;
	int push_left; /* frames of the current push still to send */
	bool killed;
	size_t rx_len;
	char *rx;
};

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

bool load_dev_up(const struct load_dev *d, gint64 now)
{
	return now >= d->rebooting_until && now >= d->frozen_until;
}

/* Close every connection without a close frame, as a device that vanishes does. */
static void dev_drop(struct load_dev *d)
{
	for (struct load_conn *c = d->conns; c; c = c->next)
		if (!c->killed) {
			c->killed = true;
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		}
}

static void dev_fault(struct load_dev *d, gint64 now)
{
	enum load_fault f = (enum load_fault)g_rand_int_range(load.rand, 0, LOAD_FAULT_KINDS);

	load.faults[f]++;
	switch (f) {
	case LOAD_FAULT_DROP:
		dev_drop(d);
		break;
	case LOAD_FAULT_REBOOT:
		dev_drop(d);
		d->rebooting_until = now + REBOOT_US;
		break;
	case LOAD_FAULT_FREEZE:
		d->frozen_until = now + (gint64)(load.freeze_s * G_USEC_PER_SEC);
		break;
	default:
		break;
	}
}

static gint64 next_fault_at(gint64 now)
{
	double u = g_rand_double_range(load.rand, 1e-9, 1.0);

	return now + (gint64)(-log(u) * load.flap_mean_s * G_USEC_PER_SEC);
}

/* Frame text after LWS_PRE bytes of buf; its length, 0 when it does not fit. */
static size_t frame_text(struct load_conn *c, unsigned char *buf, size_t cap, bool snapshot)
{
	/* the push's other frames: fields the device repeats, that change nothing */
	if (!snapshot && c->push_left < load.frames_per_push) {
		static const char same[] =
		    "{\"settings\":{\"ptc_sensor_status\":0,\"warehouse_sensor_status\":0}}";

		if (sizeof(same) > cap - LWS_PRE)
			return 0;
		memcpy(buf + LWS_PRE, same, sizeof(same));
		return sizeof(same) - 1;
	}
	struct load_dev *d = c->dev;
	unsigned slot = ++d->seq % LOAD_CLOCK_SLOTS;
	/* tenths, unlike a real unit's whole degrees: the reading is the frame's clock */
	struct sim_readings r = {.warehouse = 20.0 + (double)slot / 10, .decimals = 1};
	char *out = (char *)buf + LWS_PRE, *txt;
	size_t len;
	int n;

	d->sent_at[slot] = load_now_us();
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

static int conn_writeable(struct load_conn *c)
{
	static unsigned char buf[LWS_PRE + TX_MAX];
	bool snapshot = !c->snapshot_sent;
	size_t len;

	if (c->killed || !load_dev_up(c->dev, load_now_us()))
		return 0;
	if (!snapshot && !c->push_due)
		return 0;
	if (!snapshot && !c->push_left)
		c->push_left = load.frames_per_push;
	len = frame_text(c, buf, sizeof(buf), snapshot);
	if (!len)
		return -1;
	if (lws_write(c->wsi, buf + LWS_PRE, len, LWS_WRITE_TEXT) < (int)len)
		return -1;
	load.frames_sent++;
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
static void conn_message(struct load_conn *c, const char *txt, size_t len)
{
	struct load_dev *d = c->dev;
	cJSON *doc = cJSON_ParseWithLength(txt, len);
	const cJSON *root, *f;

	load.frames_rx++;
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
				load_sample_add(&load.cmd_lat, load_now_us() - d->cmd_sent);
				load.cmds_seen++;
				d->cmd_value = 0;
			}
			if (cJSON_GetObjectItemCaseSensitive(mine, f->string))
				cJSON_ReplaceItemInObjectCaseSensitive(mine, f->string,
								       cJSON_Duplicate(f, 1));
		}
	}
	cJSON_Delete(doc);
}

static void conn_rx(struct load_conn *c, struct lws *wsi, const void *in, size_t len)
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

static struct load_dev *dev_of(struct lws *wsi)
{
	struct lws_vhost *vh = lws_get_vhost(wsi);

	return vh ? lws_get_vhost_user(vh) : NULL;
}

static int callback_device(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			   size_t len)
{
	struct load_conn *c = user;
	struct load_dev *d;

	switch (reason) {
	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		d = dev_of(wsi);
		return d && load_now_us() < d->rebooting_until;
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
			d->first_connect = load_now_us();
		lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_CLOSED:
		if (c && c->dev) {
			struct load_conn **p = &c->dev->conns;

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

const struct lws_protocols load_protocols[] = {
    {"panda-breath", callback_device, sizeof(struct load_conn), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---------- the clock's jobs ---------- */

void load_pushes_tick(gint64 now)
{
	if (load.period_us <= 0)
		return;
	/* Device i is due at i * period / N + k * period: evenly spread. */
	for (;;) {
		struct load_dev *d = &load.devs[load.push_cursor];
		gint64 due = load.push_round * load.period_us +
			     (gint64)load.push_cursor * load.period_us / load.n_devices;

		if (due > now)
			break;
		if (load_dev_up(d, now))
			for (struct load_conn *c = d->conns; c; c = c->next)
				if (c->snapshot_sent && !c->killed) {
					c->push_due = true;
					lws_callback_on_writable(c->wsi);
				}
		if (++load.push_cursor == (size_t)load.n_devices) {
			load.push_cursor = 0;
			load.push_round++;
		}
	}
}

void load_faults_tick(gint64 now)
{
	for (int i = 0; i < load.n_devices; i++) {
		struct load_dev *d = &load.devs[i];

		/* A frozen or rebooted device that comes back owes its new clients a snapshot. */
		if ((d->frozen_until && now >= d->frozen_until) ||
		    (d->rebooting_until && now >= d->rebooting_until)) {
			d->frozen_until = d->rebooting_until = 0;
			for (struct load_conn *c = d->conns; c; c = c->next)
				lws_callback_on_writable(c->wsi);
		}
		if (load.calm || load.flap_mean_s <= 0)
			continue;
		if (!d->next_fault)
			d->next_fault = next_fault_at(now);
		if (now >= d->next_fault && load_dev_up(d, now)) {
			dev_fault(d, now);
			d->next_fault = next_fault_at(now);
		}
	}
}

/* ---------- start, stop ---------- */

int load_devices_listen(void)
{
	struct lws_context_creation_info info;
	FILE *f = NULL;

	if (load.config_out && !(f = fopen(load.config_out, "w"))) {
		fprintf(stderr, LOAD_NAME ": cannot write %s: %s\n", load.config_out,
			strerror(errno));
		return -1;
	}
	load.devs = g_new0(struct load_dev, (size_t)load.n_devices);
	for (int i = 0; i < load.n_devices; i++) {
		struct load_dev *d = &load.devs[i];

		d->idx = i;
		d->last_slot = -1;
		snprintf(d->id, sizeof(d->id), LOAD_ID_PREFIX "%04d", i);
		d->state = state_new(i);
		memset(&info, 0, sizeof(info));
		info.options =
		    LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
		info.port = 0; /* any free port: written to --config-out */
		info.iface = "127.0.0.1";
		info.protocols = load_protocols;
		info.vhost_name = d->id;
		info.user = d;
		d->vh = lws_create_vhost(load.ctx, &info);
		d->port = d->vh ? lws_get_vhost_listen_port(d->vh) : -1;
		if (d->port <= 0) {
			fprintf(stderr, LOAD_NAME ": device %d: cannot listen: %s\n", i,
				strerror(errno));
			if (f)
				fclose(f);
			return -1;
		}
		if (f)
			fprintf(f,
				"\n[device %s]\nhost = 127.0.0.1\nport = %d\nstale_timeout = %d\n",
				d->id, d->port, load.stale_timeout);
	}
	if (f && fclose(f) != 0)
		return -1;
	return 0;
}

void load_devices_free(void)
{
	for (int i = 0; load.devs && i < load.n_devices; i++)
		cJSON_Delete(load.devs[i].state);
	g_free(load.devs);
	load.devs = NULL;
}
