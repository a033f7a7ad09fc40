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
 * LOAD_CLOCK_SLOTS values, each remembered with its send time, so a state message read back from
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
 * --flap: start making faults, or stop making new ones; faults start off), "quit".
 *
 * This file owns the process: the options (--help), the control lines, the 5 ms clock
 * that drives pushes, faults and commands, start-up and the exit. load.h lists the files
 * that own the rest, and the thread they run on.
 */
#include "load.h"
#include "panda2mqtt/json_util.h"

#include <errno.h>
#include <getopt.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TICK_US ((lws_usec_t)5 * 1000) /* push and fault clock */

struct load load = {
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

gint64 load_now_us(void)
{
	return g_get_monotonic_time() - load.t0;
}

static void tick(lws_sorted_usec_list_t *sul)
{
	gint64 now = load_now_us();

	load_pushes_tick(now);
	load_faults_tick(now);
	load_commands_tick(now, load.last_tick ? now - load.last_tick : 0);
	load.last_tick = now;
	lws_sul_schedule(load.ctx, 0, sul, tick, TICK_US);
}

static void control_line(char *line)
{
	double v;

	g_strstrip(line);
	if (!strcmp(line, "stats")) {
		load_print_stats();
	} else if (!strcmp(line, "faults on") || !strcmp(line, "faults off")) {
		load.calm = !strcmp(line, "faults off");
		for (int i = 0; i < load.n_devices; i++)
			load.devs[i].next_fault = 0;
		printf("ok %s\n", line);
	} else if (sscanf(line, "commands %lf", &v) == 1 && v >= 0) {
		load.cmd_rate = v;
		load.cmd_credit = 0;
		printf("ok commands\n");
	} else if (!strcmp(line, "quit")) {
		g_main_loop_quit(load.loop);
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
		g_main_loop_quit(load.loop); /* the runner went away */
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
	g_main_loop_quit(load.loop);
	return G_SOURCE_REMOVE;
}

/* ---------- start ---------- */

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " LOAD_NAME " [OPTION]...\n"
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
		"Device i is \"" LOAD_ID_PREFIX
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
		fprintf(stderr, LOAD_NAME ": %s: '%s' is not a number in %g..%g\n", opt, s, lo, hi);
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
			load.n_devices = (int)num_arg("--devices", optarg, 1, 10000);
			break;
		case 'r':
			load.rate = num_arg("--rate", optarg, 0, 100);
			break;
		case 'f':
			load.flap_mean_s = num_arg("--flap", optarg, 0, 1e6);
			break;
		case O_FREEZE:
			load.freeze_s = num_arg("--freeze", optarg, 0.1, 3600);
			break;
		case 'c':
			load.cmd_rate = num_arg("--commands", optarg, 0, 100000);
			break;
		case 'b':
			colon = strrchr(optarg, ':');
			if (!colon || colon == optarg) {
				fprintf(stderr, LOAD_NAME ": --broker: HOST:PORT expected\n");
				exit(2);
			}
			*colon = '\0';
			load.broker_host = optarg;
			load.broker_port = (int)num_arg("--broker port", colon + 1, 1, 65535);
			break;
		case O_BASE:
			load.base = optarg;
			break;
		case O_PREFIX:
			load.prefix = optarg;
			break;
		case 'o':
			load.config_out = optarg;
			break;
		case O_STALE:
			load.stale_timeout = (int)num_arg("--stale-timeout", optarg, 2, 3600);
			break;
		case O_SEED:
			seed = (guint32)num_arg("--seed", optarg, 0, 4294967295.0);
			break;
		case O_FPP:
			load.frames_per_push = (int)num_arg("--frames-per-push", optarg, 1, 8);
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
		fprintf(stderr, LOAD_NAME ": unexpected argument '%s'\n", argv[optind]);
		exit(2);
	}
	load.rand = g_rand_new_with_seed(seed);
}

int main(int argc, char **argv)
{
	int rc = 1;

	p2m_json_init(); /* cJSON on GLib's allocator, as in the gateway */
	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	lws_set_log_level(LLL_ERR, NULL);
	load.t0 = g_get_monotonic_time() - 1; /* every timestamp positive */
	load.period_us = load.rate > 0 ? (gint64)(G_USEC_PER_SEC / load.rate) : 0;
	load.loop = g_main_loop_new(NULL, FALSE);
	load.ctx = p2m_loop_lws_new(load_protocols);
	if (!load.ctx || load_devices_listen() < 0)
		goto out;

	if (load_broker_start() < 0)
		goto out;

	g_unix_fd_add(STDIN_FILENO, G_IO_IN | G_IO_HUP | G_IO_ERR, on_stdin, NULL);
	g_unix_signal_add(SIGINT, on_signal, NULL);
	g_unix_signal_add(SIGTERM, on_signal, NULL);
	lws_sul_schedule(load.ctx, 0, &load.sul_tick, tick, TICK_US);
	printf("ready devices=%d\n", load.n_devices);
	fflush(stdout);
	g_main_loop_run(load.loop);
	rc = 0;
out:
	if (load.ctx)
		lws_sul_cancel(&load.sul_tick);
	p2m_loop_lws_destroy(load.ctx);
	load_broker_stop();
	load_devices_free();
	if (load.rand)
		g_rand_free(load.rand);
	if (load.loop)
		g_main_loop_unref(load.loop);
	return rc;
}
