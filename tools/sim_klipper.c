/* sim_klipper.c - the firmware's Klipper link (--printer-link, firmware V1.0.3+).
 *
 * Owns: after a Klipper bind (sim_writes.c), one WebSocket client to that printer's
 * Moonraker at ws://HOST:PORT/websocket; every second the query the firmware sends
 * (printer.objects.query, byte for byte on the real dialect, the old query on the doc
 * dialect), a PING every 3 s on the real dialect and its "no PONG received" log; reading
 * webhooks.state and heater_bed.temperature from the replies, hence printer.state (2
 * connecting, 3 connected, 4 failed, 5 ready, 8 startup) pushed as it changes, and
 * sim.auto_hot, the bed at or above hotbedtemp, that lets Auto mode heat (sim_device.c);
 * reconnecting every 2 s. Does not own: the bind and unbind frames (sim_writes.c), the
 * thermal model, the server side of the simulator. */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

/* How often the Klipper link pings Moonraker. */
#define KLIPPER_PING_S 3.0
/* The request the official V1.0.3 firmware polls Moonraker with, byte for byte [RE]
 * (tests/fixtures/panda_breath/moonraker-request-v1.0.3.json). */
#define KLIPPER_QUERY                                                                              \
	"{\"id\":1001,\"jsonrpc\":\"2.0\",\"method\":\"printer.objects.query\",\"params\":{"       \
	"\"objects\":{\"webhooks\":[\"state\"],\"virtual_sdcard\":[\"progress\"],\"print_stats\":" \
	"[\"state\"],\"extruder\":[\"temperature\",\"target\"],\"heater_bed\":[\"temperature\","   \
	"\"target\"],\"gcode_macro _KNOMI_STATUS\":null}}}"

static struct {
	struct lws *wsi;
	bool up, want_send, want_ping;
	unsigned id;
	double ping_at, pong_at; /* monotonic s: the last PING sent, the last PONG */
	char *rx;
	size_t rx_len;
	lws_sorted_usec_list_t sul_poll, sul_retry;
} K;

/* Klipper printer.state as the device reports it (docs/protocol-panda-breath.md): 2 connecting,
 * 3 connected, 4 failed, 5 ready. */
void sim_printer_state(long st)
{
	cJSON *o;

	if (sim_get_int_in("printer", "state", -1) == st)
		return;
	sim_put(sim_root("printer"), "state", cJSON_CreateNumber((double)st));
	o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "state", (double)st);
	sim_push_root("printer", o);
}

static void klipper_connect(lws_sorted_usec_list_t *sul);

void sim_klipper_cancel(void)
{
	lws_sul_cancel(&K.sul_poll);
	lws_sul_cancel(&K.sul_retry);
}

void sim_klipper_stop(const char *why)
{
	sim_klipper_cancel();
	if (K.wsi) {
		sim_say("klipper: closing the link (%s)", why);
		lws_set_timeout(K.wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
		K.wsi = NULL;
	}
	K.up = false;
	sim.auto_hot = false;
}

void sim_klipper_start(void)
{
	sim_klipper_stop("re-bound");
	sim_printer_state(2);
	lws_sul_schedule(sim.ctx, 0, &K.sul_retry, klipper_connect, 1);
}

static void klipper_retry(void)
{
	K.wsi = NULL;
	K.up = false;
	if (sim_get_int("printer_type", 1) != 2)
		return;
	sim_printer_state(4);
	lws_sul_cancel(&K.sul_poll);
	lws_sul_schedule(sim.ctx, 0, &K.sul_retry, klipper_connect, 2 * LWS_US_PER_SEC);
}

static void klipper_connect(lws_sorted_usec_list_t *sul)
{
	struct lws_client_connect_info ci;
	/* a Klipper printer is kept as printer.host on real firmware [RE], .ip in the document */
	const cJSON *ip =
	    cJSON_GetObjectItemCaseSensitive(sim_root("printer"), sim.doc ? "ip" : "host");
	long port = sim_get_int_in("printer", "port", 80);
	static char host[64];

	(void)sul;
	if (K.wsi || !cJSON_IsString(ip) || sim_get_int("printer_type", 1) != 2)
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
	sim_say("klipper: connecting to ws://%s:%ld/websocket", host, port);
	K.wsi = lws_client_connect_via_info(&ci);
	if (!K.wsi)
		klipper_retry();
}

static void klipper_poll(lws_sorted_usec_list_t *sul)
{
	double now = sim_now();

	if (K.wsi && K.up) {
		K.want_send = true;
		/* the firmware pings and logs "no PONG received" when none comes [RE] */
		if (!sim.doc && now - K.ping_at >= KLIPPER_PING_S) {
			if (K.ping_at > 0 && K.pong_at < K.ping_at)
				sim_say("klipper: no PONG received after PING");
			K.want_ping = true;
			K.ping_at = now;
		}
		lws_callback_on_writable(K.wsi);
	}
	lws_sul_schedule(sim.ctx, 0, sul, klipper_poll, LWS_US_PER_SEC);
}

/* Auto mode: the heater may run while the bed is at or above hotbedtemp. */
static void klipper_bed(double bed)
{
	long threshold = sim_get_int("hotbedtemp", 80);
	bool hot = bed >= (double)threshold;

	if (hot != sim.auto_hot)
		sim_say("klipper: bed %.1f C %s hotbedtemp %ld: Auto mode %s", bed,
			hot ? ">=" : "<", threshold, hot ? "heats" : "idles");
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
		sim_say("klipper: unexpected reply %.120s", txt);
	} else {
		sim_printer_state(cJSON_IsString(wh) && !strcmp(wh->valuestring, "ready") ? 5 : 8);
		if (cJSON_IsNumber(bed))
			klipper_bed(bed->valuedouble);
	}
	cJSON_Delete(doc);
}

int sim_klipper_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			 size_t len)
{
	unsigned char buf[LWS_PRE + 512];
	int n;
	char *grown;

	(void)user;
	if (wsi != K.wsi && reason != LWS_CALLBACK_WSI_DESTROY)
		return reason == LWS_CALLBACK_CLIENT_RECEIVE ? -1 : 0;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		sim_say("klipper: connected");
		K.up = true;
		sim_printer_state(3);
		klipper_poll(&K.sul_poll);
		return 0;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (K.want_ping) {
			K.want_ping = false;
			memcpy(buf + LWS_PRE, "ping", 4);
			if (lws_write(wsi, buf + LWS_PRE, 4, LWS_WRITE_PING) < 4)
				return -1;
			if (K.want_send)
				lws_callback_on_writable(wsi);
			return 0;
		}
		if (!K.want_send)
			return 0;
		K.want_send = false;
		/* what the firmware asks for, every second */
		if (sim.doc)
			n = snprintf(
			    (char *)buf + LWS_PRE, sizeof(buf) - LWS_PRE,
			    "{\"jsonrpc\":\"2.0\",\"method\":\"printer.objects.query\","
			    "\"params\":{\"objects\":{\"webhooks\":null,\"virtual_sdcard\":"
			    "null,\"print_stats\":null,\"extruder\":null,\"heater_bed\":"
			    "null}},\"id\":%u}",
			    ++K.id);
		else
			n = snprintf((char *)buf + LWS_PRE, sizeof(buf) - LWS_PRE, "%s",
				     KLIPPER_QUERY);
		return lws_write(wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_TEXT) < n ? -1 : 0;
	case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
		K.pong_at = sim_now();
		sim_debug("klipper: PONG");
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (lws_is_first_fragment(wsi))
			K.rx_len = 0;
		if (K.rx_len + len > 65536)
			return -1;
		grown = realloc(K.rx, K.rx_len + len + 1);
		if (!grown) {
			fprintf(stderr, SIM_NAME ": out of memory\n");
			abort();
		}
		K.rx = grown;
		memcpy(K.rx + K.rx_len, in, len);
		K.rx_len += len;
		if (lws_is_final_fragment(wsi))
			klipper_reply(K.rx, K.rx_len);
		return 0;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		sim_say("klipper: cannot connect: %s", in ? (const char *)in : "?");
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		/* every failure ends here, a connect that never upgrades included */
		if (wsi == K.wsi && !sim.exiting) {
			sim_say("klipper: link lost");
			klipper_retry();
		}
		return 0;
	default:
		return 0;
	}
}

void sim_klipper_free(void)
{
	free(K.rx);
	K.rx = NULL;
}
