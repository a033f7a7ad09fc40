/* load.h - what the parts of panda2mqtt-load share (private header).
 *
 * One process, one thread: GLib's main loop drives libwebsockets and libmosquitto
 * (src/loop.c). The parts:
 *   load_main.c    the process: options, control lines on stdin, the 5 ms clock, start, exit
 *   load_device.c  the simulated devices: a loopback WebSocket server each, their frames
 *                  (tools/sim_snapshot.c, as the simulator's) and their faults
 *   load_broker.c  the broker's side: commands published, what the gateway publishes read
 *                  back and timed, the figures
 * The options, the devices and the figures live in struct load. */
#ifndef LOAD_H
#define LOAD_H

#include "loop.h"

#include <cjson/cJSON.h>
#include <glib.h>
#include <libwebsockets.h>
#include <mosquitto.h>

#include <stdbool.h>

#define LOAD_NAME      "panda2mqtt-load"
#define LOAD_ID_PREFIX "load_"
/* The chamber readings a device cycles through, 20.0, 20.1, ... 59.9 °C: far more than
 * the frames that can be on their way at once. */
#define LOAD_CLOCK_SLOTS 400

enum load_fault { LOAD_FAULT_DROP, LOAD_FAULT_REBOOT, LOAD_FAULT_FREEZE, LOAD_FAULT_KINDS };

struct load_conn; /* one WebSocket connection to a device (load_device.c) */

struct load_dev {
	int idx;
	char id[16];
	int port;
	struct lws_vhost *vh;
	cJSON *state;
	struct load_conn *conns;
	gint64 rebooting_until; /* monotonic us; 0: up */
	gint64 frozen_until;
	gint64 next_fault;
	gint64 first_connect;		  /* first WebSocket established */
	gint64 discovered;		  /* first discovery config seen */
	unsigned seq;			  /* frames sent: the next reading */
	gint64 sent_at[LOAD_CLOCK_SLOTS]; /* send time of each reading; 0: never sent */
	int last_slot;			  /* the reading of the last state seen; -1: none */
	gint64 state_at;		  /* when the last new state was seen */
	bool online;			  /* the gateway's availability topic */
	int cmd_value;			  /* outstanding command's value; 0: none */
	int cmd_last;			  /* the last value sent: the next one differs */
	gint64 cmd_sent;
};

struct load_samples {
	guint32 *v; /* microseconds */
	size_t n, cap;
};

struct load {
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
	struct load_dev *devs;
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
	    faults[LOAD_FAULT_KINDS];
	unsigned long discovered;
	unsigned long state_msgs, state_bytes, state_bytes_max; /* every state message */
	struct load_samples state_lat, cmd_lat;
	/* bridge/info */
	int info_devices, info_dupes, info_online, info_missing;
};

extern struct load load;

/* Monotonic microseconds since the start (always > 0). */
gint64 load_now_us(void);

/* ---------- load_device.c ---------- */

extern const struct lws_protocols load_protocols[];

/* Create the devices, each listening on a free loopback port; with --config-out, write a
 * [device] section for each. 0, or -1. */
int load_devices_listen(void);
void load_devices_free(void);
/* Up: neither rebooting nor frozen. */
bool load_dev_up(const struct load_dev *d, gint64 now);
/* The clock's jobs: the pushes due, the faults due (and the ends of reboots and freezes). */
void load_pushes_tick(gint64 now);
void load_faults_tick(gint64 now);

/* ---------- load_broker.c ---------- */

/* Connect to the broker (the gateway's) and subscribe to what the gateway publishes. 0, or
 * -1. */
int load_broker_start(void);
void load_broker_stop(void);
/* Publish the commands due (--commands / "commands RATE"). */
void load_commands_tick(gint64 now, gint64 elapsed);
/* A latency sample, in microseconds. */
void load_sample_add(struct load_samples *s, gint64 us);
/* One JSON line of figures on stdout; the window starts again. */
void load_print_stats(void);

#endif
