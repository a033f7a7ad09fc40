/* sim.h - what the parts of panda2mqtt-sim's Panda Breath mode share (private header).
 *
 * The simulator is one process and one thread: libwebsockets' default event loop serves the
 * sockets, stdin and the timers (with --mdns, avahi's client runs on a second thread inside
 * sim_mdns.c). Its parts, one job each:
 *   sim_main.c      the process: command line, log and reply lines, start, main loop, exit
 *   sim_device.c    the device: its state, thermal model, drying, reboots, timers
 *   sim_writes.c    what a client's frame does to the device: checks, replies, scans, binds
 *   sim_server.c    the HTTP and WebSocket server: connections, queues, broadcasts
 *   sim_klipper.c   the firmware's Klipper link (--printer-link): a Moonraker client
 *   sim_control.c   the control channel on stdin: the tests' commands
 *   sim_snapshot.c  the snapshot and push texts (shared with panda2mqtt-load)
 *   sim_mdns.c      the DNS-SD announcement (--mdns)
 *   sim_ptalk.c     "panda2mqtt-sim ptalk", a separate mode
 * The options and the state more than one part reads live in struct sim; what one part
 * alone uses stays static in its file. */
#ifndef SIM_H
#define SIM_H

#include "sim_snapshot.h"

#include <cjson/cJSON.h>
#include <libwebsockets.h>

#include <stdbool.h>
#include <stdio.h>

#define SIM_NAME "panda2mqtt-sim"

#define SIM_SECRET_WIFI_PASSWORD "SimWifiPass-7f3a9c"
#define SIM_SECRET_AP_PASSWORD	 "SimApPass-51d2e8"
#define SIM_SECRET_ACCESS_CODE	 "SimAccess-90b4c1"

#define SIM_RAW_OFFSET 0.4 /* doc dialect: warehouse_temper - cal_warehouse_temp */

struct sim {
	/* options (sim_main.c) */
	const char *host;
	int port;
	enum sim_fw fw;
	double push_interval, reboot_time;
	const char *frames_log_path;
	char mac[13];
	const char *hostname;
	const char *mdns_name, *mdns_host; /* --mdns, --mdns-host */
	bool verbose;
	bool doc;		   /* --dialect doc: the base protocol document's device */
	bool printer_link;	   /* --printer-link: play the Klipper link */
	const char *klipper_found; /* --klipper-found ADDR:PORT, what a Klipper scan lists */

	/* shared runtime */
	struct lws_context *ctx; /* sim_server.c */
	struct lws_vhost *vh;
	FILE *frames_log;    /* sim_main.c opens it, sim_server.c writes it */
	cJSON *state;	     /* the device state, shaped like the snapshot (sim_device.c) */
	double chamber;	     /* calibrated chamber temperature */
	bool heating;	     /* the element is on */
	bool rebooting;	     /* sim_device.c: connections are refused, frames ignored */
	bool frozen;	     /* control: freeze: nothing is sent */
	bool quit;	     /* control: quit */
	bool exiting;	     /* sim_main.c: tearing down, callbacks do nothing more */
	cJSON *ignored;	     /* "root.field" names whose writes are ignored (control: ignore) */
	cJSON *refused;	     /* reply types answered ok:0, the write not applied (refuse) */
	cJSON *silent;	     /* reply types not answered (control: noreply) */
	bool heater_fault;   /* a heater fault (control: fault heater): the element stays off */
	bool chamber_pinned; /* the chamber stays where it was set (control: pin) */
	bool auto_hot;	     /* Klipper link: the bed is at or above hotbedtemp */
};

extern struct sim sim;

/* ---------- sim_main.c: output ---------- */

/* A log line on stderr, "panda2mqtt-sim: ..."; debug only with --verbose. */
void sim_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sim_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A line on stdout, for the tests ("ready port=N", "ok CMD", "error CMD: WHY"). */
void sim_reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* malloc that aborts when out of memory (also cJSON's allocator). */
void *sim_xmalloc(size_t n);

/* ---------- sim_device.c: the device ---------- */

/* sim.state's root (NULL if absent) and settings. */
cJSON *sim_root(const char *root);
cJSON *sim_settings(void);
/* Replace obj[key] keeping its position, or append it. Takes ownership of v. */
void sim_put(cJSON *obj, const char *key, cJSON *v);
void sim_put_num(const char *key, double n);
/* An integer value of a JSON number (not bool, not fractional). */
bool sim_json_int(const cJSON *v, long *out);
/* settings.key as an integer (bools count as 0/1); dflt when absent or not a number. */
long sim_get_int(const char *key, long dflt);
/* root.key as an integer, or dflt. */
long sim_get_int_in(const char *root, const char *key, long dflt);
/* V1.0.0 keeps its target in "temp"; later firmware in "set_temp" ("temp" mirrors it). */
const char *sim_target_key(void);
/* Monotonic seconds. */
double sim_now(void);

bool sim_drying(void);
void sim_drying_start(void);
void sim_drying_stop(const char *why);
/* filament_drying_mode: 1 PLA preset, 2 PETG preset, 3 custom (commits filament_*). */
void sim_drying_mode(long mode);

/* Close every client, refuse connections for --reboot-time, cancel drying. */
void sim_reboot(const char *why);
/* The state back to its defaults (the chamber stays where it is), then a reboot. */
void sim_factory_reset(void);
/* The snapshot frame's text, now (cJSON_free it). */
char *sim_device_snapshot(void);

/* sim.state and the timers (model pushes, drying countdown); sim_device_stop cancels the
 * timers, sim_device_free frees the state. */
void sim_device_init(void);
void sim_device_start(void);
void sim_device_stop(void);
void sim_device_free(void);

/* ---------- sim_writes.c: client frames ---------- */

/* Apply one text message from client id: roots and fields in order. */
void sim_writes_apply(unsigned id, const char *txt, size_t len);
/* sta.hostname's rule: 1-32 letters, digits or '-', not starting with '-'. */
bool sim_valid_hostname(const char *h);

/* ---------- sim_server.c: HTTP, WebSocket, outgoing messages ---------- */

enum sim_msg_kind { SIM_MSG_SNAPSHOT, SIM_MSG_TEMP, SIM_MSG_CONTROL };
struct sim_msg;

/* A message of up to three parts (fragments); sim_msg_add copies len bytes of data (data
 * NULL: left for the caller to fill) and returns where they are. */
struct sim_msg *sim_msg_new(enum sim_msg_kind kind);
unsigned char *sim_msg_add(struct sim_msg *m, const void *data, size_t len,
			   enum lws_write_protocol proto);
/* Queue a copy of m for every live client; frees m. Returns the number of clients. */
unsigned sim_broadcast(struct sim_msg *m);
unsigned sim_broadcast_text(enum sim_msg_kind kind, const char *txt, size_t len);
/* Send {"root": obj} to every client (takes obj), as the device answers a scan or a bind. */
void sim_push_root(const char *root, cJSON *obj);
/* Live clients; closing them all (flush: what is queued goes first). */
unsigned sim_client_count(void);
unsigned sim_drop_all(bool flush);
/* After a freeze: waiting snapshots go first, then queued pushes. */
void sim_thaw(void);
/* Create the context and listen; the port listened on, or -1 after a log line. */
int sim_server_start(void);
void sim_server_destroy(void);

/* ---------- sim_klipper.c: the Klipper link ---------- */

/* Klipper printer.state as the device reports it: set and pushed when it changes. */
void sim_printer_state(long st);
/* Connect (again) to the bound printer; close the link. */
void sim_klipper_start(void);
void sim_klipper_stop(const char *why);
/* At exit: cancel its timers (before the context goes), free its buffer (after). */
void sim_klipper_cancel(void);
void sim_klipper_free(void);
int sim_klipper_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			 size_t len);

/* ---------- sim_control.c: the control channel ---------- */

/* Watch stdin for control lines (after sim_server_start). */
void sim_control_open(void);
void sim_control_free(void);
int sim_control_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			 size_t len);

#endif
