/*
 * panda2mqtt-sim - a simulated BIQU Panda Breath chamber heater.
 *
 * What it is: the test double and demo device for panda2mqtt. It speaks the device's
 * WebSocket protocol as docs/protocol-panda-breath.md records it from the official
 * firmware (--dialect real, the default): ws://HOST:PORT/ws, a full multi-root snapshot as
 * the first frame of every connection, whole-degree warehouse_temper pushes and no
 * calibrated fields, ptc_heater_status only on a heater fault, drying timers up to 99 h,
 * {"response":{"type":T,"ok":0|1}} replies to every client, the differences between
 * firmware V1.0.0 and V1.0.1..V1.0.4, and reboots. --dialect doc plays what the base
 * protocol document describes instead (cal_* fields, ptc_heater_status as a heating flag,
 * 12 h timers, no replies but set_hostname), so that both stay tested. Tests drive it with
 * control lines on stdin and read "ready port=N" / "ok CMD" lines on stdout (--help).
 *
 * With --mdns it also announces itself over DNS-SD as the device does (_http._tcp, TXT
 * board=HOSTNAME path=/), through a running avahi-daemon (sim_mdns.c).
 *
 * With --printer-link it also plays the firmware's Klipper link (V1.0.3+): after a Klipper
 * bind (printer_type 2, then printer ip/port) it polls that Moonraker's /websocket with
 * printer.objects.query as the device does, and Auto mode (work_mode 1) heats only while
 * the bed is at or above hotbedtemp. --klipper-found says what a Klipper scan finds.
 *
 * What it is not: an emulation of the firmware. No OTA, Bambu/MQTT link or client
 * limit; the thermal model is a toy. Where docs/protocol-panda-breath.md is unsure it
 * picks one behaviour (listed in --help). Its secrets are fixed public strings, so that
 * tests can search logs and topics for leaks.
 *
 * One thread: libwebsockets' default event loop serves the sockets, stdin and the timers
 * (with --mdns, avahi's client runs on a second thread inside sim_mdns.c).
 */
#include "sim_mdns.h"
#include "sim_ptalk.h"

#include <libwebsockets.h>
#include <cjson/cJSON.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define SIM_NAME "panda2mqtt-sim"

#define SECRET_WIFI_PASSWORD "SimWifiPass-7f3a9c"
#define SECRET_AP_PASSWORD   "SimApPass-51d2e8"
#define SECRET_ACCESS_CODE   "SimAccess-90b4c1"

#define QUEUE_CAP      256		   /* outgoing messages per client */
#define RX_MAX	       (16u * 1024 * 1024) /* largest client message kept in memory */
#define PUSH_MAX       (64u * 1024 * 1024) /* largest pushbin / pushbig */
#define LINE_MAX_BYTES (16u * 1024 * 1024) /* longest control line */
#define PUSHBIG_MIN    23		   /* strlen("{\"settings\":{\"pad\":\"\"}}") */

#define AMBIENT 22.0 /* degrees C */
/* The Klipper bind's printer frame must come this long after printer_type 2 (the device
 * needs about 5 s [RE]; a little slack for the test machine). */
#define KLIPPER_BIND_GAP_S 4.0
/* How often the Klipper link pings Moonraker. */
#define KLIPPER_PING_S 3.0
/* The request the official V1.0.3 firmware polls Moonraker with, byte for byte [RE]
 * (tests/fixtures/panda_breath/moonraker-request-v1.0.3.json). */
#define KLIPPER_QUERY                                                                              \
	"{\"id\":1001,\"jsonrpc\":\"2.0\",\"method\":\"printer.objects.query\",\"params\":{"       \
	"\"objects\":{\"webhooks\":[\"state\"],\"virtual_sdcard\":[\"progress\"],\"print_stats\":" \
	"[\"state\"],\"extruder\":[\"temperature\",\"target\"],\"heater_bed\":[\"temperature\","   \
	"\"target\"],\"gcode_macro _KNOMI_STATUS\":null}}}"
#define STEP	   0.5	/* most the chamber moves per push */
#define RAW_OFFSET 0.4	/* warehouse_temper - cal_warehouse_temp */
#define PTC_OFFSET 30.0 /* PTC element above chamber while heating */
#define TEMP_MAX   60	/* UI clamp for set_temp / temp / filament_temp */

enum fw { FW_V100, FW_V101, FW_V102, FW_V103, FW_V104 };
static const char *const fw_names[] = {"V1.0.0", "V1.0.1", "V1.0.2", "V1.0.3", "V1.0.4"};

enum msg_kind { MSG_SNAPSHOT, MSG_TEMP, MSG_CONTROL };
static const char *const msg_kind_names[] = {"snapshot", "temperature push", "control push"};

/* One outgoing WebSocket message: one frame, or the three fragments of pushfrag. Each part's
 * buffer has LWS_PRE bytes of headroom. One part goes out per WRITEABLE callback. */
struct part {
	unsigned char *buf;
	size_t len;
	enum lws_write_protocol proto;
};

struct msg {
	enum msg_kind kind;
	unsigned nparts, sent;
	struct part part[3];
};

/* Per-session data of the "chat" protocol: used by HTTP requests (only http_body_pending)
 * and WebSocket clients (the rest, set up in ESTABLISHED). */
struct client {
	struct lws *wsi;
	struct client *prev, *next;
	unsigned id;
	bool linked;	       /* in sim.clients */
	bool kill;	       /* being closed by drop/reboot: send and apply nothing more */
	bool kill_after_flush; /* ...once what was queued before is sent (reboot) */
	bool need_snapshot;    /* connected while frozen: snapshot goes out on thaw */
	bool http_body_pending;
	bool rx_paused; /* reading paused while lws holds unsent output (see client_writeable) */
	char peer[64];
	struct msg *q[QUEUE_CAP];
	unsigned head, count;
	unsigned char *rx; /* the message being received, reassembled */
	size_t rx_len, rx_cap, rx_total;
	bool rx_binary;
};

enum restart { RESTART_NONE, RESTART_REBOOT, RESTART_FACTORY };

static struct sim {
	/* options */
	const char *host;
	int port;
	enum fw fw;
	double push_interval, reboot_time;
	const char *frames_log_path;
	char mac[13];
	const char *hostname;
	const char *mdns_name, *mdns_host; /* --mdns, --mdns-host */
	bool verbose;
	bool doc; /* --dialect doc: the base protocol document's device */

	/* runtime */
	struct lws_context *ctx;
	struct lws_vhost *vh;
	cJSON *state;	/* the device state, shaped like the snapshot */
	double chamber; /* calibrated chamber temperature */
	bool heating;
	struct client *clients;
	unsigned next_id;
	bool frozen, rebooting, quit;
	FILE *frames_log;
	lws_sorted_usec_list_t sul_push, sul_second, sul_reboot;
	struct lws *stdin_wsi;
	int stdin_fd;
	char *line;
	size_t line_len, line_cap;
	bool line_discard; /* skipping the rest of an over-long line */
	bool exiting;
	cJSON *ignored;	   /* "root.field" names whose writes are ignored (control: ignore) */
	cJSON *refused;	   /* reply types answered ok:0, the write not applied (control: refuse) */
	cJSON *silent;	   /* reply types not answered (control: noreply) */
	bool heater_fault; /* a heater fault (control: fault heater): the element stays off */
	bool chamber_pinned;	/* the chamber stays where it was set (control: pin) */
	double printer_type_at; /* monotonic s of the last printer_type 2 write; 0: none */

	/* --printer-link: the Klipper link */
	bool printer_link;
	const char *klipper_found; /* --klipper-found ADDR:PORT, what a Klipper scan lists */
	bool klipper_bind;	   /* the message being applied bound a Klipper printer */
	struct lws *kl_wsi;
	bool kl_up, kl_want_send, kl_want_ping;
	unsigned kl_id;
	double kl_ping_at, kl_pong_at; /* monotonic s: the last PING sent, the last PONG */
	double bed;		       /* heater_bed.temperature last read; 0 until read */
	bool auto_hot;		       /* Auto mode: the bed is at or above hotbedtemp */
	char *kl_rx;
	size_t kl_rx_len;
	lws_sorted_usec_list_t sul_kl_poll, sul_kl_retry;
} sim;

static volatile sig_atomic_t got_signal;

/* ---------- logging ---------- */

static void logv(bool verbose_only, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void logv(bool verbose_only, const char *fmt, va_list ap)
{
	char line[1024];

	if (verbose_only && !sim.verbose)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	fprintf(stderr, SIM_NAME ": %s\n", line);
	fflush(stderr);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	logv(false, fmt, ap);
	va_end(ap);
}

static void debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	logv(true, fmt, ap);
	va_end(ap);
}

static void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void reply(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fprintf(stderr, SIM_NAME ": out of memory\n");
		abort();
	}
	return p;
}

static bool is_secret_key(const char *key)
{
	return strstr(key, "password") || strstr(key, "access_code") || strstr(key, "passwd");
}

/* A short printable form of a value for the log; secrets are never printed. */
static void describe(const char *key, const cJSON *v, char *out, size_t size)
{
	char *txt;

	if (is_secret_key(key)) {
		snprintf(out, size, "<redacted>");
		return;
	}
	txt = cJSON_PrintUnformatted(v);
	snprintf(out, size, "%s", txt ? txt : "?");
	if (txt && strlen(txt) >= size && size > 4)
		memcpy(out + size - 4, "...", 4);
	cJSON_free(txt);
}

/* ---------- the device state ---------- */

static cJSON *root_obj(const char *root)
{
	return cJSON_GetObjectItemCaseSensitive(sim.state, root);
}

static cJSON *settings(void)
{
	return root_obj("settings");
}

/* Replace obj[key] keeping its position, or append it. Takes ownership of v. */
static void put(cJSON *obj, const char *key, cJSON *v)
{
	if (cJSON_GetObjectItemCaseSensitive(obj, key))
		cJSON_ReplaceItemInObjectCaseSensitive(obj, key, v);
	else
		cJSON_AddItemToObject(obj, key, v);
}

static void put_num(const char *key, double n)
{
	put(settings(), key, cJSON_CreateNumber(n));
}

/* An integer value of a JSON number (not bool, not fractional). */
static bool json_int(const cJSON *v, long *out)
{
	double d;

	if (!cJSON_IsNumber(v))
		return false;
	d = v->valuedouble;
	if (!(d >= -1e9 && d <= 1e9) || d != (double)(long)d)
		return false;
	*out = (long)d;
	return true;
}

/* settings.key as an integer (bools count as 0/1); dflt when absent or not a number. */
static long get_int(const char *key, long dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(settings(), key);

	if (cJSON_IsBool(v))
		return cJSON_IsTrue(v);
	if (cJSON_IsNumber(v))
		return (long)v->valuedouble;
	return dflt;
}

/* V1.0.0 keeps its target in "temp"; later firmware in "set_temp" ("temp" mirrors it). */
/* root.key as an integer, or dflt. */
static long get_int_in(const char *root, const char *key, long dflt)
{
	long n;

	return json_int(cJSON_GetObjectItemCaseSensitive(root_obj(root), key), &n) ? n : dflt;
}

static const char *target_key(void)
{
	return sim.fw == FW_V100 ? "temp" : "set_temp";
}

static const char *sta_ip(void)
{
	struct in_addr a;

	if (inet_pton(AF_INET, sim.host, &a) == 1 && a.s_addr != htonl(INADDR_ANY))
		return sim.host;
	return "127.0.0.1";
}

static cJSON *state_defaults(void)
{
	cJSON *st = cJSON_CreateObject();
	cJSON *s = cJSON_AddObjectToObject(st, "settings");
	cJSON *o;
	char ssid[64];

	cJSON_AddStringToObject(s, "fw_version", fw_names[sim.fw]);
	cJSON_AddNumberToObject(s, "printer_type", 1);
	cJSON_AddBoolToObject(s, "work_on", 0);
	cJSON_AddNumberToObject(s, "work_mode", 2);
	if (sim.fw != FW_V100)
		cJSON_AddNumberToObject(s, "set_temp", 40);
	cJSON_AddNumberToObject(s, "temp", 40);
	cJSON_AddNumberToObject(s, "hotbedtemp", 80);
	cJSON_AddNumberToObject(s, "filtertemp", 30);
	cJSON_AddNumberToObject(s, "custom_temp", 60);
	cJSON_AddNumberToObject(s, "custom_timer", 12);
	cJSON_AddNumberToObject(s, "filament_temp", 60);
	cJSON_AddNumberToObject(s, "filament_timer", 12);
	cJSON_AddNumberToObject(s, "filament_drying_mode", 3);
	cJSON_AddNumberToObject(s, "isrunning", 0);
	cJSON_AddNumberToObject(s, "remaining_seconds", 0);
	/* placeholders keeping the key order; the snapshot fills in the model's values */
	cJSON_AddNumberToObject(s, "warehouse_temper", 0);
	if (sim.doc) {
		/* the base document's fields: function names in the real binaries */
		cJSON_AddNumberToObject(s, "cal_warehouse_temp", 0);
		cJSON_AddNumberToObject(s, "cal_ptc_temp", 0);
	}
	cJSON_AddNumberToObject(s, "ptc_sensor_status", 0);
	cJSON_AddNumberToObject(s, "warehouse_sensor_status", 0);
	if (sim.doc) /* the document's "heater status"; the firmware's is a fault flag */
		cJSON_AddNumberToObject(s, "ptc_heater_status", 0);
	cJSON_AddStringToObject(s, "language", "en");

	o = cJSON_AddObjectToObject(st, "printer");
	cJSON_AddNumberToObject(o, "state", 3);
	cJSON_AddStringToObject(o, "name", "Sim X1C");
	cJSON_AddStringToObject(o, "ip", "127.0.0.2");
	cJSON_AddNumberToObject(o, "port", 8883);
	cJSON_AddStringToObject(o, "host", "");
	cJSON_AddStringToObject(o, "sn", "01S00SIM0000001");
	cJSON_AddStringToObject(o, "access_code", SECRET_ACCESS_CODE);

	o = cJSON_AddObjectToObject(st, "sta");
	cJSON_AddStringToObject(o, "ip", sta_ip());
	cJSON_AddStringToObject(o, "hostname", sim.hostname);
	cJSON_AddNumberToObject(o, "state", 3);

	o = cJSON_AddObjectToObject(st, "ap");
	snprintf(ssid, sizeof(ssid), "Panda_Breath_%s", sim.mac);
	cJSON_AddStringToObject(o, "ssid", ssid);
	cJSON_AddStringToObject(o, "password", SECRET_AP_PASSWORD);
	cJSON_AddStringToObject(o, "ip", "192.168.254.1");
	cJSON_AddNumberToObject(o, "on", 0);

	o = cJSON_AddObjectToObject(st, "wifi");
	cJSON_AddStringToObject(o, "ssid", "SimNet");
	cJSON_AddStringToObject(o, "password", SECRET_WIFI_PASSWORD);

	if (sim.fw == FW_V104) {
		o = cJSON_AddObjectToObject(st, "ha");
		cJSON_AddStringToObject(o, "ip", "");
		cJSON_AddNumberToObject(o, "port", 1883);
		cJSON_AddStringToObject(o, "user", "");
		cJSON_AddNumberToObject(o, "state", 0);
	}
	return st;
}

/* ---------- thermal model and drying ---------- */

static bool drying(void)
{
	return get_int("isrunning", 0) == 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* warehouse_temper: the chamber itself on real firmware; the base document has it a
 * little above the calibrated reading. */
static double temp_raw(void)
{
	return sim.doc ? sim.chamber + RAW_OFFSET : sim.chamber;
}

static double temp_ptc(void)
{
	return sim.heating ? sim.chamber + PTC_OFFSET : sim.chamber;
}

static void push_root(const char *root, cJSON *obj);

/* One push period: the heater runs when work_on is true or drying runs; it heats toward
 * filament_temp while drying, else toward the target; otherwise the chamber cools. */
static void model_step(void)
{
	/* with the Klipper link, Auto mode heats only while the bed is hot enough */
	bool gated = sim.printer_link && get_int("work_mode", 2) == 1 && !sim.auto_hot;
	bool on = !sim.rebooting && !sim.heater_fault &&
		  ((get_int("work_on", 0) != 0 && !gated) || drying());
	double target = AMBIENT, d;

	if (on)
		target =
		    (double)(drying() ? get_int("filament_temp", 60) : get_int(target_key(), 40));
	if (sim.doc && sim.printer_link && (on && sim.chamber < target) != sim.heating) {
		/* with the printer link, the heater's relay is pushed when it changes, so that
		 * Auto mode switching is seen at once */
		cJSON *o = cJSON_CreateObject();

		put_num("ptc_heater_status", on && sim.chamber < target);
		cJSON_AddNumberToObject(o, "ptc_heater_status", on && sim.chamber < target);
		sim.heating = on && sim.chamber < target;
		push_root("settings", o);
	}
	sim.heating = on && sim.chamber < target;
	if (sim.chamber_pinned)
		return;
	d = target - sim.chamber;
	if (d > STEP)
		d = STEP;
	if (d < -STEP)
		d = -STEP;
	sim.chamber += d;
}

static void drying_start(void)
{
	long hours = get_int("custom_timer", 12);

	put_num("isrunning", 1);
	put_num("remaining_seconds", (double)(hours > 0 ? hours * 3600 : 0));
	say("drying started: %ld h at %ld C", hours, get_int("filament_temp", 60));
}

static void drying_stop(const char *why)
{
	bool was = drying();

	put_num("isrunning", 0);
	put_num("remaining_seconds", 0);
	if (was)
		say("drying stopped (%s)", why);
}

/* filament_drying_mode: 1 PLA preset, 2 PETG preset, 3 custom (commits filament_*). */
static void drying_mode_apply(long mode)
{
	cJSON *s = settings();

	if (mode == 1)
		put_num("filament_temp", 55);
	else if (mode == 2)
		put_num("filament_temp", 60);
	else if (mode == 3) {
		put(s, "custom_temp", cJSON_CreateNumber((double)get_int("filament_temp", 60)));
		put(s, "custom_timer", cJSON_CreateNumber((double)get_int("filament_timer", 12)));
	}
	put_num("filament_drying_mode", (double)mode);
}

/* ---------- outgoing messages ---------- */

static struct msg *msg_new(enum msg_kind kind)
{
	struct msg *m = xmalloc(sizeof(*m));

	memset(m, 0, sizeof(*m));
	m->kind = kind;
	return m;
}

static void msg_add(struct msg *m, const void *data, size_t len, enum lws_write_protocol proto)
{
	struct part *p = &m->part[m->nparts++];

	p->buf = xmalloc(LWS_PRE + len);
	if (len)
		memcpy(p->buf + LWS_PRE, data, len);
	p->len = len;
	p->proto = proto;
}

static void msg_free(struct msg *m)
{
	unsigned i;

	if (!m)
		return;
	for (i = 0; i < m->nparts; i++)
		free(m->part[i].buf);
	free(m);
}

static struct msg *msg_clone(const struct msg *m)
{
	struct msg *c = msg_new(m->kind);
	unsigned i;

	for (i = 0; i < m->nparts; i++)
		msg_add(c, m->part[i].buf + LWS_PRE, m->part[i].len, m->part[i].proto);
	return c;
}

static struct msg **queue_at(struct client *c, unsigned i)
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
	static const enum msg_kind order[] = {MSG_TEMP, MSG_CONTROL};
	unsigned k, i;

	if (c->count < QUEUE_CAP)
		return true;
	for (k = 0; k < 2; k++)
		for (i = 0; i < c->count; i++) {
			struct msg *m = *queue_at(c, i);

			if (m->kind == order[k] && !m->sent) {
				say("client %u: falling behind, %u messages queued: dropped the "
				    "oldest %s",
				    c->id, c->count, msg_kind_names[m->kind]);
				queue_remove(c, i);
				return true;
			}
		}
	return false;
}

static void client_send(struct client *c, struct msg *m, bool front)
{
	if (!queue_make_room(c)) {
		say("client %u: queue full, dropped a new %s", c->id, msg_kind_names[m->kind]);
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

static unsigned client_count(void)
{
	unsigned n = 0;
	struct client *c;

	for (c = sim.clients; c; c = c->next)
		n += !c->kill;
	return n;
}

/* Queue a copy of m for every live client; frees m. Returns the number of clients. */
static unsigned broadcast(struct msg *m)
{
	unsigned n = 0;
	struct client *c;

	for (c = sim.clients; c; c = c->next) {
		if (c->kill)
			continue;
		client_send(c, msg_clone(m), false);
		n++;
	}
	msg_free(m);
	return n;
}

static unsigned broadcast_text(enum msg_kind kind, const char *txt, size_t len)
{
	struct msg *m = msg_new(kind);

	msg_add(m, txt, len, LWS_WRITE_TEXT);
	return broadcast(m);
}

/* A reading as the device prints it: whole degrees on real units [live], tenths in the
 * base document's examples. */
static void reading(char *buf, size_t len, double t)
{
	if (sim.doc)
		snprintf(buf, len, "%.1f", t);
	else
		snprintf(buf, len, "%.0f", t);
}

static void set_raw_temp(cJSON *s, const char *key, double t)
{
	char num[32];

	if (!cJSON_GetObjectItemCaseSensitive(s, key))
		return;
	reading(num, sizeof(num), t);
	cJSON_ReplaceItemInObjectCaseSensitive(s, key, cJSON_CreateRaw(num));
}

/* The first frame of a connection: the whole state, in the firmware's dialect. */
static struct msg *snapshot(void)
{
	cJSON *snap = cJSON_Duplicate(sim.state, 1);
	cJSON *s = cJSON_GetObjectItemCaseSensitive(snap, "settings");
	cJSON *v;
	struct msg *m;
	char *txt;

	v = cJSON_GetObjectItemCaseSensitive(s, "work_on");
	if (sim.fw == FW_V100 && cJSON_IsBool(v))
		cJSON_ReplaceItemInObjectCaseSensitive(s, "work_on",
						       cJSON_CreateNumber(cJSON_IsTrue(v)));
	v = cJSON_GetObjectItemCaseSensitive(s, "set_temp");
	if (sim.fw != FW_V100 && v)
		put(s, "temp", cJSON_Duplicate(v, 1));
	set_raw_temp(s, "warehouse_temper", temp_raw());
	set_raw_temp(s, "cal_warehouse_temp", sim.chamber);
	set_raw_temp(s, "cal_ptc_temp", temp_ptc());
	txt = cJSON_PrintUnformatted(snap);
	cJSON_Delete(snap);
	m = msg_new(MSG_SNAPSHOT);
	msg_add(m, txt, strlen(txt), LWS_WRITE_TEXT);
	cJSON_free(txt);
	return m;
}

static void push_temperatures(void)
{
	char txt[160], raw[32];
	int n;

	reading(raw, sizeof(raw), temp_raw());
	if (sim.doc)
		n = snprintf(txt, sizeof(txt),
			     "{\"settings\":{\"warehouse_temper\":%s,\"cal_warehouse_temp\":%.1f,"
			     "\"cal_ptc_temp\":%.1f}}",
			     raw, sim.chamber, temp_ptc());
	else
		n = snprintf(txt, sizeof(txt), "{\"settings\":{\"warehouse_temper\":%s}}", raw);

	debug("push %s", txt);
	broadcast_text(MSG_TEMP, txt, (size_t)n);
}

/* ---------- connections, reboot ---------- */

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

static unsigned drop_all(bool flush)
{
	unsigned n = 0;
	struct client *c;

	for (c = sim.clients; c; c = c->next)
		if (!c->kill) {
			client_kill(c, flush);
			n++;
		}
	return n;
}

static void reboot_end(lws_sorted_usec_list_t *sul)
{
	(void)sul;
	sim.rebooting = false;
	say("reboot complete: accepting connections");
}

static void reboot_start(const char *why)
{
	say("rebooting (%s): closing %u client(s), refusing connections for %.1f s", why,
	    drop_all(true), sim.reboot_time);
	sim.rebooting = true;
	sim.heating = false;
	drying_stop("reboot");
	lws_sul_schedule(sim.ctx, 0, &sim.sul_reboot, reboot_end,
			 (lws_usec_t)(sim.reboot_time * LWS_US_PER_SEC));
}

static void push_tick(lws_sorted_usec_list_t *sul)
{
	model_step();
	if (!sim.frozen && !sim.rebooting)
		push_temperatures();
	lws_sul_schedule(sim.ctx, 0, sul, push_tick,
			 (lws_usec_t)(sim.push_interval * LWS_US_PER_SEC));
}

static void second_tick(lws_sorted_usec_list_t *sul)
{
	long left;

	if (drying()) {
		left = get_int("remaining_seconds", 0) - 1;
		if (left <= 0) {
			put_num("remaining_seconds", 0);
			put_num("isrunning", 0);
			say("drying finished");
		} else {
			put_num("remaining_seconds", (double)left);
		}
	}
	lws_sul_schedule(sim.ctx, 0, sul, second_tick, LWS_US_PER_SEC);
}

/* ---------- client writes ---------- */

static void noted(unsigned id, const char *root, const char *key, const cJSON *v, const char *why)
{
	char val[96];

	describe(key, v, val, sizeof(val));
	if (why)
		say("client %u: %s.%s=%s ignored: %s", id, root, key, val, why);
	else
		say("client %u: %s.%s=%s applied", id, root, key, val);
}

struct int_field {
	const char *key;
	long min, max;
};

/* The ranges the device's page clamps to [RE] (what the device itself does with other
 * values is not known: this one ignores them), and the base document's. */
static const struct int_field int_fields[] = {
    {"work_mode", 1, 3},       {"hotbedtemp", 40, 120},
    {"filtertemp", 0, 120},    {"filament_temp", 40, TEMP_MAX},
    {"filament_timer", 0, 99},
};
static const struct int_field doc_int_fields[] = {
    {"work_mode", 1, 3},       {"hotbedtemp", 0, 120},
    {"filtertemp", 0, 120},    {"filament_temp", 0, TEMP_MAX},
    {"filament_timer", 1, 12},
};

static const char *const settings_read_only[] = {
    "fw_version",	 "custom_temp",	      "custom_timer",
    "remaining_seconds", "warehouse_temper",  "cal_warehouse_temp",
    "cal_ptc_temp",	 "ptc_sensor_status", "warehouse_sensor_status",
    "ptc_heater_status",
};

static bool in_list(const char *key, const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(key, list[i]))
			return true;
	return false;
}

/* Reads an integer in [min, max] or explains why not. */
static const char *want_int(const cJSON *v, long min, long max, long *out)
{
	if (!cJSON_IsNumber(v))
		return "wrong type (expects an integer)";
	if (!json_int(v, out))
		return "not an integer";
	if (*out < min || *out > max)
		return "out of range";
	return NULL;
}

/* Is a reply of this type due, and is it a refusal (control: refuse, noreply)? */
static bool listed_type(const cJSON *list, const char *type)
{
	const cJSON *i;

	cJSON_ArrayForEach(i, list)
	{
		if (!strcmp(i->valuestring, type))
			return true;
	}
	return false;
}

/* {"response":{"type":T,"ok":0|1}} to every client [RE, live]; not on --dialect doc
 * (except set_hostname, as before), not for a type told to stay silent. */
static void respond(const char *type, bool ok)
{
	cJSON *r;

	if ((sim.doc && strcmp(type, "set_hostname")) || listed_type(sim.silent, type))
		return;
	r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "type", type);
	cJSON_AddNumberToObject(r, "ok", ok ? 1 : 0);
	push_root("response", r);
}

/* A write whose reply type is refused: answered ok:0 and not applied. */
static bool refused(const char *type)
{
	if (!listed_type(sim.refused, type))
		return false;
	respond(type, false);
	return true;
}

static enum restart write_setting(unsigned id, const char *key, const cJSON *v)
{
	const struct int_field *fields = sim.doc ? doc_int_fields : int_fields;
	const char *why = NULL;
	long n = 0;
	size_t i;

	for (i = 0; i < sizeof(int_fields) / sizeof(int_fields[0]); i++)
		if (!strcmp(key, fields[i].key)) {
			why = want_int(v, fields[i].min, fields[i].max, &n);
			if (!why)
				put_num(key, (double)n);
			noted(id, "settings", key, v, why);
			return RESTART_NONE;
		}

	if (!strcmp(key, "work_on")) {
		if (cJSON_IsBool(v))
			put(settings(), key, cJSON_CreateBool(cJSON_IsTrue(v)));
		else if (!cJSON_IsNumber(v))
			why = "wrong type (expects a boolean)";
		else if (sim.fw != FW_V100)
			why = "an integer work_on is ignored by this firmware (send a boolean)";
		else if (!json_int(v, &n) || (n != 0 && n != 1))
			why = "out of range (expects true/false/0/1)";
		else
			put(settings(), key, cJSON_CreateBool(n));
	} else if (!strcmp(key, "set_temp") || !strcmp(key, "temp")) {
		if (strcmp(key, target_key()))
			why = sim.fw == FW_V100 ? "V1.0.0 reads the target from temp"
						: "this firmware reads the target from set_temp";
		else if (!(why = want_int(v, 0, TEMP_MAX, &n)))
			put_num(key, (double)n);
	} else if (!strcmp(key, "filament_drying_mode")) {
		if (!(why = want_int(v, 1, 3, &n)))
			drying_mode_apply(n);
	} else if (!strcmp(key, "isrunning")) {
		if ((why = want_int(v, 0, 1, &n)))
			;
		else if (n == 0)
			drying_stop("isrunning 0");
		else if (drying())
			why = "drying already running";
		else
			drying_start();
	} else if (!strcmp(key, "reset") || !strcmp(key, "factory_reset")) {
		if (!(why = want_int(v, 1, 1, &n))) {
			if (key[0] == 'f' && refused("factory_reset")) {
				noted(id, "settings", key, v, "refused (control: refuse)");
				return RESTART_NONE;
			}
			noted(id, "settings", key, v, NULL);
			if (key[0] == 'f')
				respond("factory_reset", true);
			return key[0] == 'r' ? RESTART_REBOOT : RESTART_FACTORY;
		}
	} else if (!strcmp(key, "language")) {
		if (!cJSON_IsString(v))
			why = "wrong type (expects a string)";
		else if (!v->valuestring[0] || strlen(v->valuestring) > 15)
			why = "out of range (1-15 characters)";
		else
			put(settings(), key, cJSON_CreateString(v->valuestring));
	} else if (!strcmp(key, "printer_type")) {
		if (sim.doc && !sim.printer_link)
			why = "printer binding is not simulated (see --printer-link)";
		else if ((why = want_int(v, 1, 2, &n)))
			;
		else if (refused("printer_type"))
			why = "refused (control: refuse)";
		else {
			put_num(key, (double)n);
			sim.printer_type_at = n == 2 ? now_s() : 0;
			respond("printer_type", true);
		}
	} else if (in_list(key, settings_read_only,
			   sizeof(settings_read_only) / sizeof(settings_read_only[0]))) {
		why = "read-only";
	} else {
		why = "unknown field";
	}
	noted(id, "settings", key, v, why);
	return RESTART_NONE;
}

static bool valid_hostname(const char *h)
{
	size_t n = strlen(h), i;

	if (n < 1 || n > 32 || h[0] == '-')
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)h[i]) && h[i] != '-')
			return false;
	return true;
}

/* Send {"root": obj} to every client, as the device answers a scan or a bind. */
static void push_root(const char *root, cJSON *obj)
{
	cJSON *frame = cJSON_CreateObject();
	char *txt;

	cJSON_AddItemToObject(frame, root, obj);
	txt = cJSON_PrintUnformatted(frame);
	broadcast_text(MSG_CONTROL, txt, strlen(txt));
	cJSON_free(txt);
	cJSON_Delete(frame);
}

static cJSON *scan_results(const char *root, long klipper_port)
{
	cJSON *list = cJSON_CreateArray(), *e;

	if (!strcmp(root, "wifi")) {
		static const char *const ssids[] = {"SimNet", "Neighbour"};
		for (size_t i = 0; i < 2; i++) {
			e = cJSON_CreateObject();
			cJSON_AddStringToObject(e, "ssid", ssids[i]);
			cJSON_AddNumberToObject(e, "rssi", -40 - 30 * (double)i);
			cJSON_AddItemToArray(list, e);
		}
	} else if (klipper_port) {
		char ip[64] = "127.0.0.3";
		const char *colon = sim.klipper_found ? strrchr(sim.klipper_found, ':') : NULL;

		if (colon) { /* --klipper-found: that host and port, whatever port was scanned */
			snprintf(ip, sizeof(ip), "%.*s", (int)(colon - sim.klipper_found),
				 sim.klipper_found);
			klipper_port = atol(colon + 1);
		}
		e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "name", "Sim Voron");
		cJSON_AddStringToObject(e, "ip", ip);
		cJSON_AddNumberToObject(e, "port", (double)klipper_port);
		cJSON_AddItemToArray(list, e);
	} else {
		e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "name", "Sim X1C");
		cJSON_AddStringToObject(e, "sn", "01S00SIM0000002");
		cJSON_AddStringToObject(e, "ip", "127.0.0.2");
		cJSON_AddStringToObject(e, "access_code", "");
		cJSON_AddItemToArray(list, e);
	}
	return list;
}

/* A scan: progress 1 then 2 and the list, stored (new snapshots show it) and pushed. */
static void scan(const char *root, long klipper_port)
{
	cJSON *o = cJSON_CreateObject();

	put(root_obj(root), "scan", cJSON_CreateNumber(2));
	put(root_obj(root), "list", scan_results(root, klipper_port));
	cJSON_AddNumberToObject(o, "scan", 2);
	cJSON_AddItemToObject(o, "list", scan_results(root, klipper_port));
	push_root(root, o);
}

/* ---------- the Klipper link (--printer-link) ---------- */

/* Klipper printer.state as the device reports it (docs/protocol-panda-breath.md): 2 connecting,
 * 3 connected, 4 failed, 5 ready. */
static void printer_state(long st)
{
	cJSON *o;

	if (get_int_in("printer", "state", -1) == st)
		return;
	put(root_obj("printer"), "state", cJSON_CreateNumber((double)st));
	o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "state", (double)st);
	push_root("printer", o);
}

static void klipper_connect(lws_sorted_usec_list_t *sul);

static void klipper_stop(const char *why)
{
	lws_sul_cancel(&sim.sul_kl_poll);
	lws_sul_cancel(&sim.sul_kl_retry);
	if (sim.kl_wsi) {
		say("klipper: closing the link (%s)", why);
		lws_set_timeout(sim.kl_wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
		sim.kl_wsi = NULL;
	}
	sim.kl_up = false;
	sim.bed = 0;
	sim.auto_hot = false;
}

static void klipper_start(void)
{
	klipper_stop("re-bound");
	printer_state(2);
	lws_sul_schedule(sim.ctx, 0, &sim.sul_kl_retry, klipper_connect, 1);
}

static void klipper_retry(void)
{
	sim.kl_wsi = NULL;
	sim.kl_up = false;
	if (get_int("printer_type", 1) != 2)
		return;
	printer_state(4);
	lws_sul_cancel(&sim.sul_kl_poll);
	lws_sul_schedule(sim.ctx, 0, &sim.sul_kl_retry, klipper_connect, 2 * LWS_US_PER_SEC);
}

static void klipper_connect(lws_sorted_usec_list_t *sul)
{
	struct lws_client_connect_info ci;
	/* a Klipper printer is kept as printer.host on real firmware [RE], .ip in the document */
	const cJSON *ip =
	    cJSON_GetObjectItemCaseSensitive(root_obj("printer"), sim.doc ? "ip" : "host");
	long port = get_int_in("printer", "port", 80);
	static char host[64];

	(void)sul;
	if (sim.kl_wsi || !cJSON_IsString(ip) || get_int("printer_type", 1) != 2)
		return;
	snprintf(host, sizeof(host), "%s", ip->valuestring);
	memset(&ci, 0, sizeof(ci));
	ci.context = sim.ctx;
	ci.vhost = sim.vh;
	ci.address = host;
	ci.port = (int)port;
	ci.path = "/websocket";
	ci.host = host;
	ci.origin = host;
	ci.local_protocol_name = "klipper-client"; /* no subprotocol is asked of Moonraker */
	say("klipper: connecting to ws://%s:%ld/websocket", host, port);
	sim.kl_wsi = lws_client_connect_via_info(&ci);
	if (!sim.kl_wsi)
		klipper_retry();
}

static void klipper_poll(lws_sorted_usec_list_t *sul)
{
	double now = now_s();

	if (sim.kl_wsi && sim.kl_up) {
		sim.kl_want_send = true;
		/* the firmware pings and logs "no PONG received" when none comes [RE] */
		if (!sim.doc && now - sim.kl_ping_at >= KLIPPER_PING_S) {
			if (sim.kl_ping_at > 0 && sim.kl_pong_at < sim.kl_ping_at)
				say("klipper: no PONG received after PING");
			sim.kl_want_ping = true;
			sim.kl_ping_at = now;
		}
		lws_callback_on_writable(sim.kl_wsi);
	}
	lws_sul_schedule(sim.ctx, 0, sul, klipper_poll, LWS_US_PER_SEC);
}

/* Auto mode: the heater may run while the bed is at or above hotbedtemp. */
static void klipper_bed(double bed)
{
	long threshold = get_int("hotbedtemp", 80);
	bool hot = bed >= (double)threshold;

	sim.bed = bed;
	if (hot != sim.auto_hot)
		say("klipper: bed %.1f C %s hotbedtemp %ld: Auto mode %s", bed, hot ? ">=" : "<",
		    threshold, hot ? "heats" : "idles");
	sim.auto_hot = hot;
}

static void klipper_reply(const char *txt, size_t len)
{
	cJSON *doc = cJSON_ParseWithLength(txt, len);
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(doc, "result"), "status");
	const cJSON *wh = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(st, "webhooks"), "state");
	const cJSON *bed = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(st, "heater_bed"), "temperature");

	if (!cJSON_IsObject(st)) {
		say("klipper: unexpected reply %.120s", txt);
	} else {
		printer_state(cJSON_IsString(wh) && !strcmp(wh->valuestring, "ready") ? 5 : 8);
		if (cJSON_IsNumber(bed))
			klipper_bed(bed->valuedouble);
	}
	cJSON_Delete(doc);
}

static int callback_klipper(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			    size_t len)
{
	unsigned char buf[LWS_PRE + 512];
	int n;

	(void)user;
	if (wsi != sim.kl_wsi && reason != LWS_CALLBACK_WSI_DESTROY)
		return reason == LWS_CALLBACK_CLIENT_RECEIVE ? -1 : 0;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		say("klipper: connected");
		sim.kl_up = true;
		printer_state(3);
		klipper_poll(&sim.sul_kl_poll);
		return 0;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (sim.kl_want_ping) {
			sim.kl_want_ping = false;
			memcpy(buf + LWS_PRE, "ping", 4);
			if (lws_write(wsi, buf + LWS_PRE, 4, LWS_WRITE_PING) < 4)
				return -1;
			if (sim.kl_want_send)
				lws_callback_on_writable(wsi);
			return 0;
		}
		if (!sim.kl_want_send)
			return 0;
		sim.kl_want_send = false;
		/* what the firmware asks for, every second */
		if (sim.doc)
			n = snprintf(
			    (char *)buf + LWS_PRE, sizeof(buf) - LWS_PRE,
			    "{\"jsonrpc\":\"2.0\",\"method\":\"printer.objects.query\","
			    "\"params\":{\"objects\":{\"webhooks\":null,\"virtual_sdcard\":"
			    "null,\"print_stats\":null,\"extruder\":null,\"heater_bed\":"
			    "null}},\"id\":%u}",
			    ++sim.kl_id);
		else
			n = snprintf((char *)buf + LWS_PRE, sizeof(buf) - LWS_PRE, "%s",
				     KLIPPER_QUERY);
		return lws_write(wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_TEXT) < n ? -1 : 0;
	case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
		sim.kl_pong_at = now_s();
		debug("klipper: PONG");
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (lws_is_first_fragment(wsi))
			sim.kl_rx_len = 0;
		if (sim.kl_rx_len + len > 65536)
			return -1;
		sim.kl_rx = realloc(sim.kl_rx, sim.kl_rx_len + len + 1);
		memcpy(sim.kl_rx + sim.kl_rx_len, in, len);
		sim.kl_rx_len += len;
		if (lws_is_final_fragment(wsi))
			klipper_reply(sim.kl_rx, sim.kl_rx_len);
		return 0;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		say("klipper: cannot connect: %s", in ? (const char *)in : "?");
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		/* every failure ends here, a connect that never upgrades included */
		if (wsi == sim.kl_wsi && !sim.exiting) {
			say("klipper: link lost");
			klipper_retry();
		}
		return 0;
	default:
		return 0;
	}
}

static bool ignored(const char *root, const char *key)
{
	char name[128];
	const cJSON *i;

	snprintf(name, sizeof(name), "%s.%s", root, key);
	cJSON_ArrayForEach(i, sim.ignored)
	{
		if (!strcmp(i->valuestring, name))
			return true;
	}
	return false;
}

static enum restart write_field(unsigned id, const char *root, const char *key, const cJSON *v)
{
	const char *why = NULL;
	long n;

	if (ignored(root, key)) {
		noted(id, root, key, v, "ignored on purpose (control: ignore)");
		return RESTART_NONE;
	}
	if (!strcmp(root, "settings"))
		return write_setting(id, key, v);
	if (!strcmp(root, "sta") && !strcmp(key, "hostname")) {
		if (!cJSON_IsString(v))
			why = "wrong type (expects a string)";
		else if (!valid_hostname(v->valuestring))
			why = "not a valid hostname (1-32 letters, digits, '-')";
		else if (refused("set_hostname"))
			why = "refused (control: refuse): no restart";
		noted(id, root, key, v, why);
		if (why)
			return RESTART_NONE;
		put(root_obj("sta"), key, cJSON_CreateString(v->valuestring));
		respond("set_hostname", true);
		return RESTART_REBOOT;
	}
	if (!strcmp(root, "ap") && !strcmp(key, "on")) {
		if (!(why = want_int(v, 0, 1, &n)))
			put(root_obj("ap"), key, cJSON_CreateNumber((double)n));
	} else if ((!strcmp(root, "wifi") || !strcmp(root, "printer")) && !strcmp(key, "scan")) {
		if (!(why = want_int(v, 1, 1, &n)))
			scan(root, 0);
	} else if (!strcmp(root, "printer") && !strcmp(key, "scan_port")) {
		if (!(why = want_int(v, 1, 65535, &n)))
			scan(root, n);
	} else if (!strcmp(root, "printer") && !strcmp(key, "disconnect")) {
		if (!(why = want_int(v, 1, 1, &n))) {
			cJSON *o = cJSON_CreateObject();
			klipper_stop("unbound");
			put(root_obj("printer"), "state", cJSON_CreateNumber(0));
			cJSON_AddNumberToObject(o, "state", 0);
			push_root("printer", o);
		}
	} else if (!strcmp(root, "printer") && !sim.doc && get_int("printer_type", 1) == 2 &&
		   (!strcmp(key, "name") || !strcmp(key, "ip") || !strcmp(key, "port"))) {
		/* a Klipper bind: the device needs its pause after printer_type 2, and keeps
		 * the printer as host/port [RE] */
		if (sim.printer_type_at > 0 && now_s() - sim.printer_type_at < KLIPPER_BIND_GAP_S)
			why = "too soon after printer_type 2 (the device needs about 5 s)";
		else if (!strcmp(key, "name"))
			put(root_obj("printer"), key, cJSON_Duplicate(v, true));
		else {
			put(root_obj("printer"), !strcmp(key, "ip") ? "host" : "port",
			    cJSON_Duplicate(v, true));
			cJSON_DeleteItemFromObjectCaseSensitive(root_obj("printer"), "ip");
			if (sim.printer_link)
				sim.klipper_bind = true;
			else
				printer_state(2); /* connecting, and no link to connect with */
		}
	} else if (!strcmp(root, "printer") &&
		   (!strcmp(key, "name") || !strcmp(key, "sn") || !strcmp(key, "ip") ||
		    !strcmp(key, "access_code") || !strcmp(key, "port"))) {
		/* a bind: stored field by field; the device then reports itself connected */
		put(root_obj("printer"), key, cJSON_Duplicate(v, true));
		put(root_obj("printer"), "state", cJSON_CreateNumber(3));
		if (sim.printer_link && get_int("printer_type", 1) == 2 &&
		    (!strcmp(key, "ip") || !strcmp(key, "port")))
			sim.klipper_bind = true;
	} else if ((!strcmp(root, "wifi") || !strcmp(root, "ap")) &&
		   (!strcmp(key, "ssid") || !strcmp(key, "password") ||
		    (!strcmp(root, "ap") && !strcmp(key, "ip")))) {
		const char *type = !strcmp(root, "wifi") ? NULL
				   : !strcmp(key, "ip")	 ? "set_hotspot_ip"
							 : "set_ap";
		if (!cJSON_IsString(v))
			why = "wrong type (expects a string)";
		else if (type && refused(type))
			why = "refused (control: refuse)";
		else {
			put(root_obj(root), key, cJSON_CreateString(v->valuestring));
			if (type)
				respond(type, true);
		}
	} else if (!strcmp(root, "wifi") || !strcmp(root, "sta") || !strcmp(root, "ap") ||
		   !strcmp(root, "printer") || !strcmp(root, "ha")) {
		why = "not simulated";
	} else {
		why = "unknown root";
	}
	noted(id, root, key, v, why);
	return RESTART_NONE;
}

/* Apply one text message from a client: roots and fields in order. */
static void client_message(struct client *c, const char *txt, size_t len)
{
	enum restart restart = RESTART_NONE;
	const char *end = NULL;
	cJSON *doc, *root, *field;

	if (sim.rebooting || c->kill) {
		say("client %u: frame ignored (device restarting)", c->id);
		return;
	}
	doc = cJSON_ParseWithLengthOpts(txt, len, &end, 0);
	if (!doc) {
		say("client %u: malformed JSON (%zu bytes) ignored", c->id, len);
		return;
	}
	while (end && end < txt + len && isspace((unsigned char)*end))
		end++;
	if (end && end < txt + len)
		say("client %u: %zu bytes after the JSON value ignored", c->id,
		    (size_t)(txt + len - end));
	if (!cJSON_IsObject(doc)) {
		say("client %u: frame is not a JSON object, ignored", c->id);
		cJSON_Delete(doc);
		return;
	}
	cJSON_ArrayForEach(root, doc)
	{
		if (!cJSON_IsObject(root)) {
			say("client %u: root %s is not an object, ignored", c->id, root->string);
			continue;
		}
		cJSON_ArrayForEach(field, root)
		{
			if (restart != RESTART_NONE) {
				say("client %u: %s.%s ignored: device restarting", c->id,
				    root->string, field->string);
				continue;
			}
			restart = write_field(c->id, root->string, field->string, field);
		}
	}
	cJSON_Delete(doc);
	if (sim.klipper_bind) {
		sim.klipper_bind = false;
		klipper_start();
	}
	if (restart == RESTART_FACTORY) {
		double chamber = sim.chamber;

		cJSON_Delete(sim.state);
		sim.state = state_defaults();
		sim.chamber = chamber;
		say("factory reset: state back to defaults");
		reboot_start("factory_reset");
	} else if (restart == RESTART_REBOOT) {
		reboot_start("client request");
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
	debug("client %u: received %s message, %zu bytes", c->id, c->rx_binary ? "binary" : "text",
	      c->rx_total);
	if (c->rx_binary)
		say("client %u: binary frame (%zu bytes) ignored", c->id, c->rx_total);
	else if (c->rx_total > c->rx_len)
		say("client %u: text frame of %zu bytes too long, ignored", c->id, c->rx_total);
	else
		client_message(c, (const char *)c->rx, c->rx_len);
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
	debug("HTTP %s -> %u", uri, status);
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
	say("refused a WebSocket upgrade on \"%s\" (only /ws)", uri);
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
	c->id = ++sim.next_id;
	lws_get_peer_simple(wsi, c->peer, sizeof(c->peer));
	c->next = sim.clients;
	if (sim.clients)
		sim.clients->prev = c;
	sim.clients = c;
	c->linked = true;
	say("client %u connected from %s (%u connected)", c->id, c->peer, client_count());
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
		sim.clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->linked = false;
	queue_clear(c);
	free(c->rx);
	c->rx = NULL;
	say("client %u disconnected (%u connected)", c->id, client_count());
}

static int client_writeable(struct client *c, struct lws *wsi)
{
	struct msg *m;
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
		say("client %u: write failed, closing", c->id);
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
			debug("refused a connection: rebooting");
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

/* ---------- the control channel (stdin) ---------- */

static bool parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > PUSH_MAX)
		return false;
	*out = (size_t)v;
	return true;
}

/* set ROOT.FIELD JSON: a change made on the device itself (buttons, its web UI). */
static const char *control_set(char *arg, size_t arg_len)
{
	char *sp = memchr(arg, ' ', arg_len), *dot;
	const char *key;
	const char *end = NULL;
	cJSON *v, *obj;
	long n;

	if (!sp)
		return "usage: set ROOT.FIELD JSON";
	*sp = '\0';
	dot = strchr(arg, '.');
	if (!dot || dot == arg || !dot[1])
		return "usage: set ROOT.FIELD JSON";
	*dot = '\0';
	key = dot + 1;
	/* the line is NUL-terminated; cJSON wants the NUL inside the length */
	v = cJSON_ParseWithLengthOpts(sp + 1, arg_len - (size_t)(sp + 1 - arg) + 1, &end, 1);
	if (!v)
		return "bad JSON value";
	obj = root_obj(arg);
	if (!obj) {
		say("control: new root %s", arg);
		obj = cJSON_AddObjectToObject(sim.state, arg);
	}
	if (!cJSON_IsObject(obj)) {
		cJSON_Delete(v);
		return "not an object root";
	}
	if (!strcmp(arg, "settings")) {
		if (!strcmp(key, "work_on") && (cJSON_IsBool(v) || cJSON_IsNumber(v))) {
			bool on = cJSON_IsBool(v) ? cJSON_IsTrue(v) : v->valuedouble != 0;

			cJSON_Delete(v);
			v = cJSON_CreateBool(on);
		} else if (!strcmp(key, "set_temp") || !strcmp(key, "temp")) {
			key = target_key();
		} else if (!strcmp(key, "cal_warehouse_temp") || !strcmp(key, "warehouse_temper")) {
			if (!cJSON_IsNumber(v)) {
				cJSON_Delete(v);
				return "a temperature must be a number";
			}
			sim.chamber = v->valuedouble - (key[0] == 'w' && sim.doc ? RAW_OFFSET : 0);
			cJSON_Delete(v);
			return NULL;
		} else if (!strcmp(key, "cal_ptc_temp")) {
			cJSON_Delete(v);
			return "cal_ptc_temp follows the model (set cal_warehouse_temp)";
		} else if (!strcmp(key, "reset") || !strcmp(key, "factory_reset")) {
			cJSON_Delete(v);
			return "not a state field (use the reboot command)";
		} else if (!strcmp(key, "isrunning") && json_int(v, &n) && (n == 0 || n == 1)) {
			cJSON_Delete(v);
			if (n == 0)
				drying_stop("control");
			else if (!drying())
				drying_start();
			return NULL;
		} else if (!strcmp(key, "filament_drying_mode") && json_int(v, &n) && n >= 1 &&
			   n <= 3) {
			cJSON_Delete(v);
			drying_mode_apply(n);
			return NULL;
		}
	}
	put(obj, key, v);
	return NULL;
}

static void control_pushfrag(const char *txt, size_t len)
{
	struct msg *m = msg_new(MSG_CONTROL);
	size_t a = len / 3, b = (len - a) / 2;

	msg_add(m, txt, a, LWS_WRITE_TEXT | LWS_WRITE_NO_FIN);
	msg_add(m, txt + a, b, LWS_WRITE_CONTINUATION | LWS_WRITE_NO_FIN);
	msg_add(m, txt + a + b, len - a - b, LWS_WRITE_CONTINUATION);
	say("control: pushfrag %zu bytes (%zu+%zu+%zu) to %u client(s)", len, a, b, len - a - b,
	    broadcast(m));
}

/* "heater [CODE]": a heater fault, as the device reports one: settings.ptc_heater_status
 * (the page's "PTC Heater Abnormal" [RE]) pushed to every client and kept in snapshots;
 * the element stays off. "clear": gone (as after a repair and a restart). */
static const char *control_fault(const char *arg)
{
	long code = 1;
	char *end;
	cJSON *o;

	if (!strcmp(arg, "clear")) {
		sim.heater_fault = false;
		cJSON_DeleteItemFromObjectCaseSensitive(settings(), "ptc_heater_status");
		if (sim.doc)
			put_num("ptc_heater_status", 0);
		say("control: heater fault cleared");
		return NULL;
	}
	if (strncmp(arg, "heater", 6) || (arg[6] && arg[6] != ' '))
		return "usage: fault heater [CODE] | fault clear";
	if (arg[6]) {
		code = strtol(arg + 7, &end, 10);
		if (end == arg + 7 || *end)
			return "usage: fault heater [CODE] | fault clear";
	}
	sim.heater_fault = true;
	sim.heating = false;
	put_num("ptc_heater_status", (double)code);
	o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "ptc_heater_status", (double)code);
	push_root("settings", o);
	say("control: heater fault %ld", code);
	return NULL;
}

static void control_thaw(void)
{
	struct client *c;

	sim.frozen = false;
	for (c = sim.clients; c; c = c->next) {
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

static void control_line(char *line, size_t len)
{
	char *cmd = line, *arg, *sp;
	const char *err = NULL;
	size_t arg_len, n;

	if (len && line[len - 1] == '\r')
		line[--len] = '\0';
	if (!len)
		return;
	sp = memchr(line, ' ', len);
	if (sp) {
		*sp = '\0';
		arg = sp + 1;
		arg_len = len - (size_t)(arg - line);
	} else {
		arg = line + len;
		arg_len = 0;
	}
	debug("control: %s", cmd);

	if (!strcmp(cmd, "set")) {
		err = control_set(arg, arg_len);
	} else if (!strcmp(cmd, "push")) {
		say("control: push %zu bytes to %u client(s)", arg_len,
		    broadcast_text(MSG_CONTROL, arg, arg_len));
	} else if (!strcmp(cmd, "pushbin")) {
		if (!parse_size(arg, &n)) {
			err = "usage: pushbin N (0-67108864)";
		} else {
			struct msg *m = msg_new(MSG_CONTROL);
			unsigned char *p;
			size_t i;

			msg_add(m, NULL, 0, LWS_WRITE_BINARY);
			free(m->part[0].buf);
			m->part[0].buf = xmalloc(LWS_PRE + n);
			m->part[0].len = n;
			p = m->part[0].buf + LWS_PRE;
			for (i = 0; i < n; i++)
				p[i] = (unsigned char)i;
			say("control: pushbin %zu bytes to %u client(s)", n, broadcast(m));
		}
	} else if (!strcmp(cmd, "pushbig")) {
		if (!parse_size(arg, &n) || n < PUSHBIG_MIN) {
			err = "usage: pushbig N (23-67108864)";
		} else {
			char *txt = xmalloc(n);
			size_t pad = n - PUSHBIG_MIN;

			memcpy(txt, "{\"settings\":{\"pad\":\"", 20);
			memset(txt + 20, 'x', pad);
			memcpy(txt + 20 + pad, "\"}}", 3);
			say("control: pushbig %zu bytes to %u client(s)", n,
			    broadcast_text(MSG_CONTROL, txt, n));
			free(txt);
		}
	} else if (!strcmp(cmd, "pushfrag")) {
		control_pushfrag(arg, arg_len);
	} else if (!strcmp(cmd, "freeze")) {
		sim.frozen = true;
		say("control: frozen: sending nothing");
	} else if (!strcmp(cmd, "thaw")) {
		control_thaw();
		say("control: thawed");
	} else if (!strcmp(cmd, "drop")) {
		say("control: dropping %u client(s)", drop_all(false));
	} else if (!strcmp(cmd, "reboot")) {
		reboot_start("control");
	} else if (!strcmp(cmd, "ignore")) {
		if (!arg_len || !memchr(arg, '.', arg_len)) {
			err = "usage: ignore ROOT.FIELD";
		} else {
			if (!sim.ignored)
				sim.ignored = cJSON_CreateArray();
			cJSON_AddItemToArray(sim.ignored, cJSON_CreateString(arg));
			say("control: ignoring writes to %s", arg);
		}
	} else if (!strcmp(cmd, "fault")) {
		err = control_fault(arg);
	} else if (!strcmp(cmd, "pin")) {
		if (strcmp(arg, "on") && strcmp(arg, "off")) {
			err = "usage: pin on|off";
		} else {
			sim.chamber_pinned = !strcmp(arg, "on");
			say("control: chamber %s", sim.chamber_pinned ? "pinned" : "free");
		}
	} else if (!strcmp(cmd, "refuse") || !strcmp(cmd, "noreply")) {
		cJSON **list = cmd[0] == 'r' ? &sim.refused : &sim.silent;

		if (!arg_len || strchr(arg, ' ')) {
			err = cmd[0] == 'r' ? "usage: refuse TYPE" : "usage: noreply TYPE";
		} else {
			if (!*list)
				*list = cJSON_CreateArray();
			cJSON_AddItemToArray(*list, cJSON_CreateString(arg));
			say("control: %s %s", cmd, arg);
		}
	} else if (!strcmp(cmd, "clients")) {
		reply("ok clients %u", client_count());
		return;
	} else if (!strcmp(cmd, "mdns")) {
		if (strcmp(arg, "on") && strcmp(arg, "off")) {
			err = "usage: mdns on|off";
		} else if (!sim.mdns_name) {
			err = "not announcing (no --mdns)";
		} else {
			sim_mdns_set_published(!strcmp(arg, "on"));
			reply("ok mdns %s", arg);
			return;
		}
	} else if (!strcmp(cmd, "quit")) {
		sim.quit = true;
	} else {
		err = "unknown command";
	}
	if (err) {
		say("control: %s: %s", cmd, err);
		reply("error %s: %s", cmd, err);
	} else {
		reply("ok %s", cmd);
	}
}

/* Split what stdin gave into lines; a final line without a newline counts at EOF. */
static void control_feed(const char *data, size_t n, bool eof)
{
	char *nl;
	size_t used;

	if (sim.line_len + n + 1 > sim.line_cap) {
		size_t cap = sim.line_cap ? sim.line_cap : 4096;
		char *p;

		while (cap < sim.line_len + n + 1)
			cap *= 2;
		p = realloc(sim.line, cap);
		if (!p) {
			fprintf(stderr, SIM_NAME ": out of memory\n");
			abort();
		}
		sim.line = p;
		sim.line_cap = cap;
	}
	if (n)
		memcpy(sim.line + sim.line_len, data, n);
	sim.line_len += n;

	while (!sim.quit && (nl = memchr(sim.line, '\n', sim.line_len))) {
		*nl = '\0';
		used = (size_t)(nl - sim.line) + 1;
		if (sim.line_discard)
			sim.line_discard = false;
		else
			control_line(sim.line, used - 1);
		memmove(sim.line, sim.line + used, sim.line_len - used);
		sim.line_len -= used;
	}
	if (sim.quit)
		return;
	if (eof && sim.line_len && !sim.line_discard) {
		sim.line[sim.line_len] = '\0';
		control_line(sim.line, sim.line_len);
		sim.line_len = 0;
	} else if (sim.line_len > LINE_MAX_BYTES) {
		if (!sim.line_discard)
			reply("error line too long");
		sim.line_discard = true;
		sim.line_len = 0;
	}
}

/* Read what is left on stdin without blocking: lws may report a hang-up (and close) while
 * the last lines are still unread. */
static void control_drain(void)
{
	struct pollfd pfd = {.fd = sim.stdin_fd, .events = POLLIN};
	char buf[16384];
	ssize_t n;

	while (!sim.quit && poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLIN | POLLHUP))) {
		n = read(sim.stdin_fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		control_feed(buf, (size_t)n, false);
	}
}

static int callback_control(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			    size_t len)
{
	char buf[16384];
	ssize_t n;

	(void)wsi;
	(void)user;
	(void)in;
	(void)len;
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		n = read(sim.stdin_fd, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			return 0;
		if (n < 0)
			say("stdin: %s", strerror(errno));
		if (n <= 0)
			return -1; /* EOF: handled in RAW_CLOSE_FILE */
		control_feed(buf, (size_t)n, false);
		return 0;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		/* EOF, hang-up, error or exit; lws closes the descriptor after this */
		if (!sim.exiting && sim.stdin_fd >= 0) {
			control_drain();
			if (!sim.quit) {
				control_feed(NULL, 0, true);
				say("stdin closed: control channel off, still serving");
			}
		}
		sim.stdin_wsi = NULL;
		sim.stdin_fd = -1;
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
    {.name = "sim-control", .callback = callback_control},
    {.name = "klipper-client", .callback = callback_klipper},
    {.name = NULL, .callback = NULL},
};

static void control_open(void)
{
	lws_sock_file_fd_type u;

	/* a duplicate, so that lws closing it at EOF leaves fd 0 alone */
	sim.stdin_fd = dup(STDIN_FILENO);
	if (sim.stdin_fd < 0) {
		say("no stdin (%s): control channel off", strerror(errno));
		return;
	}
	u.filefd = sim.stdin_fd;
	sim.stdin_wsi =
	    lws_adopt_descriptor_vhost(sim.vh, LWS_ADOPT_RAW_FILE_DESC, u, "sim-control", NULL);
	if (!sim.stdin_wsi) { /* lws closed the descriptor */
		say("cannot watch stdin: control channel off");
		sim.stdin_fd = -1;
	}
}

/* ---------- command line ---------- */

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: " SIM_NAME " [OPTION]...\n"
	    "A simulated BIQU Panda Breath chamber heater: the test double and demo device of\n"
	    "panda2mqtt. It serves ws://HOST:PORT/ws the way the official firmware does (as far\n"
	    "as docs/protocol-panda-breath.md knows it); it is not the firmware.\n"
	    "\n"
	    "Options:\n"
	    "  --host ADDR          listen address: IPv4/IPv6 literal, localhost or an interface\n"
	    "                       name; 0.0.0.0 or :: for all (default 127.0.0.1)\n"
	    "  --port N             listen port; 0 = pick a free one (default 8080)\n"
	    "  --firmware VER       V1.0.0, V1.0.1, V1.0.2, V1.0.3 or V1.0.4 (default V1.0.3)\n"
	    "  --dialect real|doc   real (default): as the official firmware: no cal_* fields,\n"
	    "                       whole-degree warehouse_temper, ptc_heater_status only on a\n"
	    "                       heater fault, timers 0-99 h, replies {\"response\":...};\n"
	    "                       doc: as the base protocol document: cal_warehouse_temp and\n"
	    "                       cal_ptc_temp, ptc_heater_status 0/1 as a heating flag,\n"
	    "                       timers 1-12 h, no replies but set_hostname\n"
	    "  --push-interval SEC  temperature push period in seconds; 0 = no pushes (default "
	    "2.0)\n"
	    "  --frames-log FILE    append each message received from a client as one line:\n"
	    "                       text exactly as received, binary as \"<binary N bytes>\"\n"
	    "  --mac HEX12          MAC address, 12 hex digits (default 3C84279A1B2C)\n"
	    "  --hostname NAME      sta.hostname (default PandaBreath)\n"
	    "  --mdns NAME          announce DNS-SD service instance NAME, type _http._tcp on\n"
	    "                       the listen port, TXT board=HOSTNAME (--hostname) and path=/,\n"
	    "                       through avahi-daemon (waits for the bus and the daemon and\n"
	    "                       survives their restarts; renames on a name collision)\n"
	    "  --mdns-host HOST     with --mdns: also publish the address record HOST -> --host\n"
	    "                       and point the service at HOST; HOST ends in .local, --host\n"
	    "                       must be an IPv4 literal other than 0.0.0.0 (default: the\n"
	    "                       service points at the avahi host's own name). One HOST per\n"
	    "                       simulator: avahi merges the addresses of a name published\n"
	    "                       twice instead of reporting a collision\n"
	    "  --reboot-time SEC    how long a reboot takes (default 2.0)\n"
	    "  --printer-link       play the Klipper link of firmware V1.0.3+: after a Klipper\n"
	    "                       bind (printer_type 2, then printer name/ip/port, at least\n"
	    "                       4 s later; kept as printer.host/port) poll\n"
	    "                       ws://HOST:PORT/websocket every second with the firmware's\n"
	    "                       own request (id 1001) and PING every 3 s, logging \"no PONG\n"
	    "                       received\" when none came (printer.state 2 connecting,\n"
	    "                       3 connected, 5 ready, 8 startup, 4 failed; retried every\n"
	    "                       2 s); Auto mode (work_mode 1) then heats only while\n"
	    "                       heater_bed.temperature >= hotbedtemp (doc dialect: the old\n"
	    "                       query, ptc_heater_status pushed when the heater switches)\n"
	    "  --klipper-found ADDR:PORT  a Klipper scan (printer.scan_port) lists this\n"
	    "                       printer, whatever port was scanned (default 127.0.0.3\n"
	    "                       and the scanned port)\n"
	    "  -v, --verbose        verbose log on stderr\n"
	    "  -h, --help           show this help\n"
	    "\n"
	    "Stdout: \"ready port=N\" once listening, then one \"ok CMD\" or \"error CMD: WHY\" "
	    "per\n"
	    "control line.  Stderr: the log (never the secrets).  Exit status: 0 after quit,\n"
	    "SIGINT or SIGTERM; 1 when it cannot start; 2 on a usage error.\n"
	    "\n"
	    "Control lines on stdin (at EOF the simulator keeps running without them):\n"
	    "  set ROOT.FIELD JSON  change the state as the device's buttons or web UI would: no\n"
	    "                       frame is sent. set_temp and temp both mean the target;\n"
	    "                       work_on takes true/false/0/1; cal_warehouse_temp or\n"
	    "                       warehouse_temper set the chamber temperature; isrunning 1/0\n"
	    "                       starts/stops drying; filament_drying_mode applies its preset;\n"
	    "                       any other value is stored as given (new fields/roots too).\n"
	    "                       e.g. set settings.ptc_sensor_status 1, set printer.state 4\n"
	    "  push TEXT            send TEXT verbatim as one text frame to every client\n"
	    "  pushbin N            send an N-byte binary frame to every client\n"
	    "  pushbig N            send an N-byte JSON text frame "
	    "{\"settings\":{\"pad\":\"xx..\"}}\n"
	    "                       (N >= 23) to every client\n"
	    "  pushfrag TEXT        send TEXT as one message in three fragments (text,\n"
	    "                       continuation, continuation) to every client\n"
	    "  freeze               send nothing at all, keep TCP open: pushes are skipped,\n"
	    "                       upgrades complete but the snapshot and control pushes wait\n"
	    "  thaw                 resume: waiting snapshots go first, then queued pushes\n"
	    "  drop                 close every client connection now (no close frame)\n"
	    "  ignore ROOT.FIELD    from now on ignore writes to that field (a write that\n"
	    "                       does not take, as the real device sometimes does)\n"
	    "  fault heater [CODE]  a heater fault: settings.ptc_heater_status CODE (default 1)\n"
	    "                       pushed and kept in snapshots; the heater stays off\n"
	    "  fault clear          the heater fault is gone\n"
	    "  pin on|off           keep the chamber where it is (heating or not), or let the\n"
	    "                       model move it again\n"
	    "  refuse TYPE          writes answered by reply TYPE (set_hostname, set_ap,\n"
	    "                       set_hotspot_ip, factory_reset, printer_type) are refused:\n"
	    "                       {\"response\":{\"type\":TYPE,\"ok\":0}}, nothing applied,\n"
	    "                       no restart\n"
	    "  noreply TYPE         writes of reply TYPE are applied but not answered\n"
	    "  reboot               same as {\"settings\":{\"reset\":1}}\n"
	    "  clients              reply \"ok clients N\" (connected WebSocket clients)\n"
	    "  mdns off             withdraw the --mdns announcement (\"ok mdns off\")\n"
	    "  mdns on              announce it again (\"ok mdns on\")\n"
	    "  quit                 exit 0\n"
	    "\n"
	    "Device behaviour:\n"
	    "  GET / is a small HTML page, /ws the WebSocket (no subprotocol or \"chat\"), any\n"
	    "  other path 404. The first frame of each connection is the snapshot: roots\n"
	    "  settings, printer, sta, ap, wifi (and ha on V1.0.4). Initial state: work_on\n"
	    "  false, work_mode 2, target 40, chamber 22. Every push interval each client gets\n"
	    "  {\"settings\":{\"warehouse_temper\":X}} in whole degrees (doc dialect: tenths,\n"
	    "  with cal_warehouse_temp and cal_ptc_temp).\n"
	    "  Model: the heater runs while work_on is true or drying runs (and no heater\n"
	    "  fault), and moves the chamber 0.5 C per push toward the target (filament_temp\n"
	    "  while drying), else toward 22. Doc dialect: warehouse_temper = chamber + 0.4;\n"
	    "  cal_ptc_temp = chamber + 30 while below the target with the heater on.\n"
	    "  Firmware: V1.0.0 reports and reads temp (ignores set_temp), reports work_on as\n"
	    "  0/1 and accepts 0/1 or booleans; V1.0.1+ read set_temp (ignore writes of temp),\n"
	    "  report set_temp and temp, report booleans and ignore an integer work_on.\n"
	    "  Writes ({\"ROOT\":{\"FIELD\":VALUE,...}}, applied in order): settings work_on,\n"
	    "  work_mode 1-3, set_temp/temp 0-60, hotbedtemp 40-120, filtertemp 0-120,\n"
	    "  filament_temp 40-60, filament_timer 0-99 (doc: hotbedtemp 0-120, filament_temp\n"
	    "  0-60, filament_timer 1-12), filament_drying_mode 1 (PLA: filament_temp 55)\n"
	    "  2 (PETG: 60) 3 (custom: copy filament_temp/timer to custom_temp/timer),\n"
	    "  isrunning 1 (start drying for custom_timer hours, counting remaining_seconds down)\n"
	    "  or 0, reset 1, factory_reset 1 (reply factory_reset, defaults, then reboot),\n"
	    "  language, printer_type 1/2 (reply printer_type); sta.hostname (reply\n"
	    "  set_hostname, then reboot); ap.on 0/1, ap.ssid/password (reply set_ap), ap.ip\n"
	    "  (reply set_hotspot_ip); wifi.ssid/password (join); wifi.scan 1, printer.scan 1\n"
	    "  and printer.scan_port N answer with scan 2 and a list (pushed and kept in the\n"
	    "  snapshot); printer name/sn/ip/access_code/port bind a Bambu printer (state 3);\n"
	    "  after printer_type 2, name/ip/port bind a Klipper printer (kept as host/port);\n"
	    "  printer.disconnect 1 unbinds (state 0, pushed). Replies go to every client.\n"
	    "  Other writes are never acknowledged nor broadcast: only a new connection's\n"
	    "  snapshot shows them. Wrong types, out-of-range values, unknown roots and fields "
	    "and\n"
	    "  malformed JSON are logged and ignored; the connection stays.\n"
	    "  Reboot: every client is closed, connections are refused for --reboot-time\n"
	    "  seconds, then the state is back (drying cancelled). Fields after the one that\n"
	    "  restarts the device in the same frame are ignored.\n"
	    "\n"
	    "Secrets in the snapshot (fixed, so tests can search for leaks):\n"
	    "  wifi.password        " SECRET_WIFI_PASSWORD "\n"
	    "  ap.password          " SECRET_AP_PASSWORD "\n"
	    "  printer.access_code  " SECRET_ACCESS_CODE "\n");
}

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, SIM_NAME ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '" SIM_NAME " --help'.\n");
	exit(2);
}

static double parse_seconds(const char *s, const char *opt)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0 && v <= 86400))
		usage_error("%s: expects seconds from 0 to 86400", opt);
	return v;
}

/* An mDNS host name: dot-separated labels of 1-63 letters, digits or '-', the last ".local". */
static bool valid_local_name(const char *h)
{
	size_t len = strlen(h), label = 0;

	if (len <= 6 || len > 253 || strcasecmp(h + len - 6, ".local"))
		return false;
	for (; *h; h++) {
		if (*h == '.') {
			if (!label)
				return false;
			label = 0;
		} else if ((!isalnum((unsigned char)*h) && *h != '-') || ++label > 63) {
			return false;
		}
	}
	return true;
}

static void parse_args(int argc, char **argv)
{
	enum {
		O_HOST = 256,
		O_PORT,
		O_FW,
		O_PUSH,
		O_FRAMES,
		O_MAC,
		O_HOSTNAME,
		O_REBOOT,
		O_MDNS,
		O_MDNS_HOST,
		O_PRINTER_LINK,
		O_KLIPPER_FOUND,
		O_DIALECT
	};
	static const struct option opts[] = {
	    {"host", required_argument, NULL, O_HOST},
	    {"port", required_argument, NULL, O_PORT},
	    {"firmware", required_argument, NULL, O_FW},
	    {"push-interval", required_argument, NULL, O_PUSH},
	    {"frames-log", required_argument, NULL, O_FRAMES},
	    {"mac", required_argument, NULL, O_MAC},
	    {"hostname", required_argument, NULL, O_HOSTNAME},
	    {"reboot-time", required_argument, NULL, O_REBOOT},
	    {"mdns", required_argument, NULL, O_MDNS},
	    {"mdns-host", required_argument, NULL, O_MDNS_HOST},
	    {"printer-link", no_argument, NULL, O_PRINTER_LINK},
	    {"klipper-found", required_argument, NULL, O_KLIPPER_FOUND},
	    {"dialect", required_argument, NULL, O_DIALECT},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char *end;
	long port;
	size_t i;
	int o;

	sim.host = "127.0.0.1";
	sim.port = 8080;
	sim.fw = FW_V103;
	sim.push_interval = 2.0;
	sim.reboot_time = 2.0;
	strcpy(sim.mac, "3C84279A1B2C");
	sim.hostname = "PandaBreath";

	while ((o = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (o) {
		case O_HOST:
			sim.host = strcmp(optarg, "localhost") ? optarg : "127.0.0.1";
			if (!*sim.host)
				usage_error("--host: empty address");
			break;
		case O_PORT:
			errno = 0;
			port = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || port < 0 || port > 65535)
				usage_error("--port: '%s' is not a port number (0-65535)", optarg);
			sim.port = (int)port;
			break;
		case O_FW:
			for (i = 0; i < sizeof(fw_names) / sizeof(fw_names[0]); i++)
				if (!strcasecmp(optarg, fw_names[i]) ||
				    !strcmp(optarg, fw_names[i] + 1))
					break;
			if (i == sizeof(fw_names) / sizeof(fw_names[0]))
				usage_error("--firmware: '%s' is not one of V1.0.0 V1.0.1 V1.0.2 "
					    "V1.0.3 V1.0.4",
					    optarg);
			sim.fw = (enum fw)i;
			break;
		case O_PUSH:
			sim.push_interval = parse_seconds(optarg, "--push-interval");
			if (sim.push_interval > 0 && sim.push_interval < 0.01)
				usage_error("--push-interval: %s is too short (0 or >= 0.01)",
					    optarg);
			break;
		case O_FRAMES:
			sim.frames_log_path = optarg;
			break;
		case O_MAC:
			if (strlen(optarg) != 12)
				usage_error("--mac: '%s' is not 12 hex digits", optarg);
			for (i = 0; i < 12; i++) {
				if (!isxdigit((unsigned char)optarg[i]))
					usage_error("--mac: '%s' is not 12 hex digits", optarg);
				sim.mac[i] = (char)toupper((unsigned char)optarg[i]);
			}
			break;
		case O_HOSTNAME:
			if (!valid_hostname(optarg))
				usage_error("--hostname: '%s' is not 1-32 letters, digits or '-'",
					    optarg);
			sim.hostname = optarg;
			break;
		case O_REBOOT:
			sim.reboot_time = parse_seconds(optarg, "--reboot-time");
			break;
		case O_MDNS:
			if (!*optarg || strlen(optarg) > 63)
				usage_error("--mdns: '%s' is not 1-63 bytes", optarg);
			sim.mdns_name = optarg;
			break;
		case O_MDNS_HOST:
			if (!valid_local_name(optarg))
				usage_error("--mdns-host: '%s' is not a NAME.local host name",
					    optarg);
			sim.mdns_host = optarg;
			break;
		case O_PRINTER_LINK:
			sim.printer_link = true;
			break;
		case O_KLIPPER_FOUND:
			if (!strrchr(optarg, ':') || strrchr(optarg, ':') == optarg ||
			    atol(strrchr(optarg, ':') + 1) < 1 ||
			    atol(strrchr(optarg, ':') + 1) > 65535 || strlen(optarg) > 60)
				usage_error("--klipper-found: '%s' is not ADDR:PORT", optarg);
			sim.klipper_found = optarg;
			break;
		case O_DIALECT:
			if (strcmp(optarg, "real") && strcmp(optarg, "doc"))
				usage_error("--dialect: '%s' is not real or doc", optarg);
			sim.doc = !strcmp(optarg, "doc");
			break;
		case 'v':
			sim.verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			fprintf(stderr, "Try '" SIM_NAME " --help'.\n");
			exit(2);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (sim.mdns_host) {
		struct in_addr a4;

		if (!sim.mdns_name)
			usage_error("--mdns-host needs --mdns");
		if (inet_pton(AF_INET, sim.host, &a4) != 1 || a4.s_addr == htonl(INADDR_ANY))
			usage_error("--mdns-host: --host '%s' is not an IPv4 literal other than "
				    "0.0.0.0",
				    sim.host);
	}
}

/* ---------- main ---------- */

static void on_signal(int sig)
{
	(void)sig;
	got_signal = 1;
	if (sim.ctx)
		lws_cancel_service(sim.ctx);
}

static int sim_panda_breath_main(int argc, char **argv)
{
	struct lws_context_creation_info info;
	cJSON_Hooks hooks = {.malloc_fn = xmalloc, .free_fn = free};
	struct sigaction sa;
	struct in_addr a4;
	bool v4;
	int port;

	parse_args(argc, argv);
	cJSON_InitHooks(&hooks);
	signal(SIGPIPE, SIG_IGN);

	if (sim.frames_log_path) {
		sim.frames_log = fopen(sim.frames_log_path, "a");
		if (!sim.frames_log) {
			say("cannot open %s: %s", sim.frames_log_path, strerror(errno));
			return 1;
		}
	}
	lws_set_log_level(LLL_ERR | LLL_WARN | (sim.verbose ? LLL_NOTICE : 0), NULL);
	sim.stdin_fd = -1;
	sim.chamber = AMBIENT;
	sim.state = state_defaults();

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
		say("cannot create the lws context");
		goto fail;
	}
	sim.vh = lws_create_vhost(sim.ctx, &info);
	port = sim.vh ? lws_get_vhost_listen_port(sim.vh) : -1;
	if (port <= 0) {
		say("cannot listen on %s port %d", sim.host, sim.port);
		goto fail;
	}
	say("%s simulated (%s) on %s port %d: ws://%s%s%s:%d/ws", fw_names[sim.fw],
	    sim.doc ? "the base document's dialect" : "as the official firmware", sim.host, port,
	    v4 ? "" : "[", sim.host, v4 ? "" : "]", port);
	if (sim.mdns_name && sim_mdns_start(sim.mdns_name, sim.hostname, port, sim.mdns_host,
					    sim.mdns_host ? sim.host : NULL) < 0)
		goto fail;
	reply("ready port=%d", port);

	control_open();
	if (sim.push_interval > 0)
		lws_sul_schedule(sim.ctx, 0, &sim.sul_push, push_tick,
				 (lws_usec_t)(sim.push_interval * LWS_US_PER_SEC));
	lws_sul_schedule(sim.ctx, 0, &sim.sul_second, second_tick, LWS_US_PER_SEC);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	while (!sim.quit && !got_signal)
		if (lws_service(sim.ctx, 0) < 0)
			break;
	say("exiting (%s)", sim.quit ? "quit" : got_signal ? "signal" : "service error");

	sim_mdns_stop(); /* the service disappears first */
	lws_sul_cancel(&sim.sul_push);
	lws_sul_cancel(&sim.sul_second);
	lws_sul_cancel(&sim.sul_reboot);
	lws_sul_cancel(&sim.sul_kl_poll);
	lws_sul_cancel(&sim.sul_kl_retry);
	sim.exiting = true;
	lws_context_destroy(sim.ctx);
	sim.ctx = NULL;
	cJSON_Delete(sim.state);
	cJSON_Delete(sim.ignored);
	cJSON_Delete(sim.refused);
	cJSON_Delete(sim.silent);
	free(sim.kl_rx);
	free(sim.line);
	if (sim.frames_log)
		fclose(sim.frames_log);
	return 0;

fail:
	if (sim.ctx)
		lws_context_destroy(sim.ctx);
	cJSON_Delete(sim.state);
	if (sim.frames_log)
		fclose(sim.frames_log);
	return 1;
}

int main(int argc, char **argv)
{
	/* "panda2mqtt-sim ptalk ...": a PTalk speaker that dials in (sim_ptalk.c). */
	if (argc > 1 && strcmp(argv[1], "ptalk") == 0)
		return sim_ptalk_main(argc - 1, argv + 1);
	return sim_panda_breath_main(argc, argv);
}
