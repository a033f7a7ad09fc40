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
 * This file owns the process: the command line (--help is the reference, and
 * docs/man/panda2mqtt-sim.1), the log lines on stderr and the reply lines on stdout,
 * start-up, the main loop, signals and the exit. It does not own the device, the server,
 * the control channel or the Klipper link: sim.h lists the files that do, and the
 * thread they run on.
 */
#include "sim.h"
#include "sim_mdns.h"
#include "sim_ptalk.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct sim sim;

static volatile sig_atomic_t got_signal;

/* ---------- output ---------- */

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

void sim_say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	logv(false, fmt, ap);
	va_end(ap);
}

void sim_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	logv(true, fmt, ap);
	va_end(ap);
}

void sim_reply(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

void *sim_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fprintf(stderr, SIM_NAME ": out of memory\n");
		abort();
	}
	return p;
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
	    "  wifi.password        " SIM_SECRET_WIFI_PASSWORD "\n"
	    "  ap.password          " SIM_SECRET_AP_PASSWORD "\n"
	    "  printer.access_code  " SIM_SECRET_ACCESS_CODE "\n");
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
	sim.fw = SIM_FW_V103;
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
			for (i = 0; i < SIM_FW_COUNT; i++)
				if (!strcasecmp(optarg, sim_fw_names[i]) ||
				    !strcmp(optarg, sim_fw_names[i] + 1))
					break;
			if (i == SIM_FW_COUNT)
				usage_error("--firmware: '%s' is not one of V1.0.0 V1.0.1 V1.0.2 "
					    "V1.0.3 V1.0.4",
					    optarg);
			sim.fw = (enum sim_fw)i;
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
			if (!sim_valid_hostname(optarg))
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
	cJSON_Hooks hooks = {.malloc_fn = sim_xmalloc, .free_fn = free};
	struct sigaction sa;
	int port;

	parse_args(argc, argv);
	cJSON_InitHooks(&hooks);
	signal(SIGPIPE, SIG_IGN);

	if (sim.frames_log_path) {
		sim.frames_log = fopen(sim.frames_log_path, "a");
		if (!sim.frames_log) {
			sim_say("cannot open %s: %s", sim.frames_log_path, strerror(errno));
			return 1;
		}
	}
	lws_set_log_level(LLL_ERR | LLL_WARN | (sim.verbose ? LLL_NOTICE : 0), NULL);
	sim_device_init();
	port = sim_server_start();
	if (port < 0)
		goto fail;
	if (sim.mdns_name && sim_mdns_start(sim.mdns_name, sim.hostname, port, sim.mdns_host,
					    sim.mdns_host ? sim.host : NULL) < 0)
		goto fail;
	sim_reply("ready port=%d", port);

	sim_control_open();
	sim_device_start();

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	while (!sim.quit && !got_signal)
		if (lws_service(sim.ctx, 0) < 0)
			break;
	sim_say("exiting (%s)", sim.quit ? "quit" : got_signal ? "signal" : "service error");

	sim_mdns_stop(); /* the service disappears first */
	sim_device_stop();
	sim_klipper_cancel();
	sim.exiting = true;
	sim_server_destroy();
	sim_device_free();
	sim_control_free();
	sim_klipper_free();
	if (sim.frames_log)
		fclose(sim.frames_log);
	return 0;

fail:
	sim_server_destroy();
	sim_device_free();
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
