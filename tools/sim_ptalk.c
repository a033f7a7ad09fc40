/* sim_ptalk.c - "panda2mqtt-sim ptalk": a PTalk speaker that dials in.
 *
 * Owns: one simulated PTalk (docs/protocol-ptalk.md): it
 * connects to a server URL, sends its device_handshake, answers every command the way
 * the firmware does (ok / error / not_supported / invalid_command / invalid_param),
 * takes a firmware image after request_ota (one binary message; it logs the image's
 * size and SHA-256, then "reboots" into the version asked for), and reconnects after a
 * reboot or a lost link. It never connects anywhere but the URL it is given.
 * Test hooks: every message received is written as one JSON line to --frames-log
 * (binary messages as {"binary": bytes}); SIGUSR1 drops the link at once (it
 * reconnects); SIGSTOP freezes it as a hung device would be.
 * Does not own: the Panda Breath simulator (sim.h lists its files); sim_main.c calls this. */
#include "sim_ptalk.h"

#include <cjson/cJSON.h>
#include <libwebsockets.h>
#include <openssl/evp.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NAME "panda2mqtt-sim ptalk"
#define TXQ  16

static struct {
	/* options */
	char *host, *path;
	int port;
	const char *device_id, *fw, *name, *frames_log_path;
	char *fw_installed; /* the version an image installed, once one has */
	int battery, volume, brightness;
	int reboot_ms, reconnect_ms;
	const char *refuse; /* "CMD:STATUS": answer CMD with STATUS (a firmware refusing) */
	bool verbose;
	/* state */
	struct lws_context *ctx;
	struct lws *wsi;
	FILE *frames_log;
	time_t booted;
	char *txq[TXQ];
	int ntx;
	bool rebooting;	   /* close, then connect after reboot_ms */
	bool drop;	   /* SIGUSR1: close at once */
	char *ota_version; /* request_ota accepted: the next binary message is the image */
	EVP_MD_CTX *ota_md;
	size_t ota_bytes;
	lws_sorted_usec_list_t sul_connect, sul_tick;
} P;

static volatile sig_atomic_t got_stop, got_drop;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	fputs(NAME ": ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

static void send_json(cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);

	cJSON_Delete(o);
	if (!P.wsi || P.ntx == TXQ) {
		free(s);
		return;
	}
	P.txq[P.ntx++] = s;
	lws_callback_on_writable(P.wsi);
}

static cJSON *answer(const char *status)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "status", status);
	cJSON_AddStringToObject(o, "device_id", P.device_id);
	return o;
}

static void handshake(void)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "cmd", "device_handshake");
	cJSON_AddStringToObject(o, "device_id", P.device_id);
	cJSON_AddStringToObject(o, "firmware_version", P.fw);
	cJSON_AddStringToObject(o, "device_name", P.name);
	cJSON_AddNumberToObject(o, "battery_percent", P.battery);
	cJSON_AddStringToObject(o, "connectivity_state", "ONLINE");
	send_json(o);
}

/* A whole number in 0..100, as the firmware checks volume and brightness. */
static bool level(const cJSON *v, int *out)
{
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 100 ||
	    v->valuedouble != (double)(int)v->valuedouble)
		return false;
	*out = (int)v->valuedouble;
	return true;
}

static void reboot(const char *why)
{
	say("rebooting (%s)", why);
	P.rebooting = true;
	lws_set_timeout(P.wsi, PENDING_TIMEOUT_USER_OK, 1); /* after the answer is out */
}

static void command(const cJSON *msg)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(msg, "cmd");
	const char *cmd = cJSON_IsString(c) ? c->valuestring : "";
	size_t len = strlen(cmd);
	cJSON *o;

	if (P.refuse && len && !strncmp(P.refuse, cmd, len) && P.refuse[len] == ':') {
		o = answer(P.refuse + len + 1);
		cJSON_AddStringToObject(o, "message", "refused by --refuse");
		send_json(o);
		return;
	}
	if (!strcmp(cmd, "request_status")) {
		o = answer("ok");
		cJSON_AddStringToObject(o, "device_name", P.name);
		cJSON_AddNumberToObject(o, "battery_percent", P.battery);
		cJSON_AddStringToObject(o, "connectivity_state", "ONLINE");
		cJSON_AddStringToObject(o, "firmware_version", P.fw);
		cJSON_AddNumberToObject(o, "volume", P.volume);
		cJSON_AddNumberToObject(o, "brightness", P.brightness);
		cJSON_AddNumberToObject(o, "uptime_sec", (double)(time(NULL) - P.booted));
	} else if (!strcmp(cmd, "set_volume") || !strcmp(cmd, "set_brightness")) {
		bool vol = !strcmp(cmd, "set_volume");
		const char *key = vol ? "volume" : "brightness";
		int x;

		if (!level(cJSON_GetObjectItemCaseSensitive(msg, key), &x)) {
			o = answer("invalid_param");
			cJSON_AddStringToObject(o, "message", "must be 0-100");
		} else {
			*(vol ? &P.volume : &P.brightness) = x;
			o = answer("ok");
			cJSON_AddNumberToObject(o, key, x);
			say("%s %d", key, x);
		}
	} else if (!strcmp(cmd, "set_device_name")) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(msg, "device_name");

		if (!cJSON_IsString(n) || !n->valuestring[0] || strlen(n->valuestring) > 32) {
			o = answer("invalid_param");
			cJSON_AddStringToObject(o, "message",
						"device_name must be 1-32 characters");
		} else {
			free((char *)P.name);
			P.name = strdup(n->valuestring);
			o = answer("ok");
			cJSON_AddStringToObject(o, "device_name", P.name);
			say("name %s", P.name);
		}
	} else if (!strcmp(cmd, "reboot")) {
		o = answer("ok");
		cJSON_AddStringToObject(o, "message", "Rebooting...");
		send_json(o);
		reboot("reboot command");
		return;
	} else if (!strcmp(cmd, "request_ota")) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(msg, "version");

		free(P.ota_version);
		P.ota_version = strdup(cJSON_IsString(v) ? v->valuestring : "latest");
		o = answer("ok");
		cJSON_AddStringToObject(o, "version", P.ota_version);
		say("ota: ready for %s", P.ota_version);
	} else if (!strcmp(cmd, "set_wifi")) {
		o = answer("not_supported");
		cJSON_AddStringToObject(o, "message",
					"WiFi config not supported over WebSocket. Use BLE.");
	} else {
		o = answer("invalid_command");
		cJSON_AddStringToObject(o, "message", "unknown command");
	}
	send_json(o);
}

static void log_frame(const char *text, size_t binary)
{
	if (!P.frames_log)
		return;
	if (text)
		fprintf(P.frames_log, "%s\n", text);
	else
		fprintf(P.frames_log, "{\"binary\":%zu}\n", binary);
	fflush(P.frames_log);
}

/* One fragment of the image: hashed as it comes; the last one ends it. */
static void ota_data(const void *in, size_t len, bool last)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	unsigned int n = 0;

	if (!P.ota_version) {
		say("binary data without request_ota; ignored");
		return;
	}
	if (!P.ota_md) {
		P.ota_md = EVP_MD_CTX_new();
		EVP_DigestInit_ex(P.ota_md, EVP_sha256(), NULL);
		P.ota_bytes = 0;
	}
	EVP_DigestUpdate(P.ota_md, in, len);
	P.ota_bytes += len;
	if (!last)
		return;
	EVP_DigestFinal_ex(P.ota_md, md, &n);
	EVP_MD_CTX_free(P.ota_md);
	P.ota_md = NULL;
	for (unsigned int i = 0; i < n; i++)
		snprintf(hex + (size_t)2 * i, 3, "%02x", md[i]);
	say("ota: received %zu bytes sha256 %s", P.ota_bytes, hex);
	log_frame(NULL, P.ota_bytes);
	free(P.fw_installed);
	P.fw = P.fw_installed = P.ota_version; /* the new running version */
	P.ota_version = NULL;
	reboot("firmware installed");
}

static void connect_now(lws_sorted_usec_list_t *sul)
{
	struct lws_client_connect_info i;

	(void)sul;
	memset(&i, 0, sizeof(i));
	i.context = P.ctx;
	i.address = P.host;
	i.port = P.port;
	i.path = P.path;
	i.host = P.host;
	i.origin = P.host;
	i.protocol = NULL;
	i.local_protocol_name = "ptalk";
	i.pwsi = &P.wsi;
	if (!lws_client_connect_via_info(&i))
		lws_sul_schedule(P.ctx, 0, &P.sul_connect, connect_now,
				 (lws_usec_t)P.reconnect_ms * LWS_US_PER_MS);
}

static void closed(void)
{
	int delay = P.rebooting ? P.reboot_ms : P.reconnect_ms;

	P.wsi = NULL;
	for (int i = 0; i < P.ntx; i++)
		free(P.txq[i]);
	P.ntx = 0;
	if (P.ota_md) {
		EVP_MD_CTX_free(P.ota_md);
		P.ota_md = NULL;
		say("ota: link lost in the middle of the image");
	}
	if (P.rebooting)
		P.booted = time(NULL) + delay / 1000;
	P.rebooting = false;
	lws_sul_schedule(P.ctx, 0, &P.sul_connect, connect_now, (lws_usec_t)delay * LWS_US_PER_MS);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		    size_t len)
{
	static char *rx;
	static size_t rx_len;

	(void)user;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		say("connected to ws://%s:%d%.*s", P.host, P.port, (int)strcspn(P.path, "?"),
		    P.path); /* not the token */
		handshake();
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE: {
		bool last = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);

		if (lws_frame_is_binary(wsi)) {
			ota_data(in, len, last);
			break;
		}
		char *grown = realloc(rx, rx_len + len + 1);

		if (!grown)
			return -1;
		rx = grown;
		memcpy(rx + rx_len, in, len);
		rx_len += len;
		rx[rx_len] = '\0';
		if (!last)
			break;
		log_frame(rx, 0);
		if (P.verbose)
			say("received %s", rx);
		cJSON *msg = cJSON_ParseWithLength(rx, rx_len);
		rx_len = 0;
		if (!msg) {
			cJSON *o = answer("error");
			cJSON_AddStringToObject(o, "message", "invalid JSON");
			send_json(o);
			break;
		}
		command(msg);
		cJSON_Delete(msg);
		break;
	}
	case LWS_CALLBACK_CLIENT_WRITEABLE: {
		unsigned char buf[LWS_PRE + 4096];
		size_t n;

		if (!P.ntx)
			break;
		n = strlen(P.txq[0]);
		if (n > sizeof(buf) - LWS_PRE)
			n = sizeof(buf) - LWS_PRE;
		memcpy(buf + LWS_PRE, P.txq[0], n);
		free(P.txq[0]);
		memmove(P.txq, P.txq + 1, (size_t)--P.ntx * sizeof(P.txq[0]));
		if (lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_TEXT) < (int)n)
			return -1;
		if (P.ntx)
			lws_callback_on_writable(wsi);
		break;
	}
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		say("cannot connect: %s", in ? (const char *)in : "?");
		closed();
		break;
	case LWS_CALLBACK_CLIENT_CLOSED:
		say("link closed");
		closed();
		break;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols protocols[] = {
    {"ptalk", callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Signals only interrupt lws's wait: wake once a second to look at them. */
static void tick(lws_sorted_usec_list_t *sul)
{
	lws_sul_schedule(P.ctx, 0, sul, tick, LWS_US_PER_SEC);
}

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		got_drop = 1;
	else
		got_stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: panda2mqtt-sim ptalk --url ws://HOST:PORT/PATH[?token=T] [options]\n"
		   "A simulated PTalk speaker that connects to a panda2mqtt [dialin] endpoint.\n"
		   "  --url URL            where to connect (required; loopback in tests)\n"
		   "  --device-id MAC      device_id sent in the handshake (A1B2C3D4E5F6)\n"
		   "  --firmware VERSION   firmware version reported (1.0.1)\n"
		   "  --name NAME          device name (PTalk)\n"
		   "  --battery N          battery percent (85)\n"
		   "  --reboot-ms N        time a reboot takes before reconnecting (1500)\n"
		   "  --reconnect-ms N     wait before reconnecting after a lost link (1000)\n"
		   "  --frames-log FILE    every message received, one JSON line each\n"
		   "  --refuse CMD:STATUS  answer CMD with STATUS (error, invalid_param, ...)\n"
		   "  --verbose            log every message\n"
		   "Signals: SIGUSR1 drops the link (it reconnects); SIGTERM/SIGINT exit.\n");
}

/* ws://host:port/path?query -> host, port, path (with the query). */
static bool parse_url(const char *url)
{
	const char *p = url, *slash, *colon;

	if (strncmp(p, "ws://", 5) != 0)
		return false;
	p += 5;
	slash = strchr(p, '/');
	colon = memchr(p, ':', slash ? (size_t)(slash - p) : strlen(p));
	if (!colon)
		return false;
	P.host = strndup(p, (size_t)(colon - p));
	P.port = atoi(colon + 1);
	P.path = strdup(slash ? slash : "/");
	return P.port > 0 && P.port < 65536 && P.host[0];
}

int sim_ptalk_main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"url", required_argument, NULL, 'u'},
	    {"device-id", required_argument, NULL, 'd'},
	    {"firmware", required_argument, NULL, 'f'},
	    {"name", required_argument, NULL, 'n'},
	    {"battery", required_argument, NULL, 'b'},
	    {"reboot-ms", required_argument, NULL, 'r'},
	    {"reconnect-ms", required_argument, NULL, 'c'},
	    {"frames-log", required_argument, NULL, 'l'},
	    {"refuse", required_argument, NULL, 'x'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct lws_context_creation_info info;
	const char *url = NULL;
	struct sigaction sa;
	int c;

	P.device_id = "A1B2C3D4E5F6";
	P.fw = "1.0.1";
	P.name = strdup("PTalk");
	P.battery = 85;
	P.volume = 60;
	P.brightness = 100;
	P.reboot_ms = 1500;
	P.reconnect_ms = 1000;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			url = optarg;
			break;
		case 'd':
			P.device_id = optarg;
			break;
		case 'f':
			P.fw = optarg;
			break;
		case 'n':
			free((char *)P.name);
			P.name = strdup(optarg);
			break;
		case 'b':
			P.battery = atoi(optarg);
			break;
		case 'r':
			P.reboot_ms = atoi(optarg);
			break;
		case 'c':
			P.reconnect_ms = atoi(optarg);
			break;
		case 'l':
			P.frames_log_path = optarg;
			break;
		case 'x':
			P.refuse = optarg;
			break;
		case 'v':
			P.verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!url || !parse_url(url)) {
		fprintf(stderr, NAME ": --url ws://HOST:PORT/PATH is required\n");
		return 2;
	}
	if (P.frames_log_path && !(P.frames_log = fopen(P.frames_log_path, "a"))) {
		fprintf(stderr, NAME ": cannot open %s: %s\n", P.frames_log_path, strerror(errno));
		return 1;
	}
	lws_set_log_level(LLL_ERR | (P.verbose ? LLL_WARN : 0), NULL);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	P.ctx = lws_create_context(&info);
	if (!P.ctx)
		return 1;
	P.booted = time(NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	say("device %s, firmware %s, connecting to %s:%d", P.device_id, P.fw, P.host, P.port);
	connect_now(NULL);
	tick(&P.sul_tick);
	while (!got_stop) {
		if (got_drop) {
			got_drop = 0;
			if (P.wsi) {
				say("dropping the link");
				lws_set_timeout(P.wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
			}
		}
		if (lws_service(P.ctx, 0) < 0)
			break;
	}
	say("exiting");
	lws_sul_cancel(&P.sul_connect);
	lws_sul_cancel(&P.sul_tick);
	lws_context_destroy(P.ctx);
	free(P.fw_installed);
	free(P.ota_version);
	if (P.frames_log)
		fclose(P.frames_log);
	free(P.host);
	free(P.path);
	free((char *)P.name);
	return 0;
}
