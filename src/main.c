/* main.c - the command line: options, configuration, and handing over to the gateway.
 *
 * Exit codes: 0 clean stop (or --check-config passed), 1 bad configuration or a failed
 * start, 2 usage error. */
#include "gateway.h"
#include "panda2mqtt/config.h"
#include "panda2mqtt/families.h"
#include "panda2mqtt/json_util.h"
#include "panda2mqtt/log.h"

#include <getopt.h>
#include <mosquitto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: panda2mqtt [-c FILE] [-v] [--check-config] [--version] [--help]\n"
		"Bridge BIQU Panda Breath chamber heaters to Home Assistant over MQTT.\n"
		"\n"
		"  -c, --config FILE   configuration file (default %s)\n"
		"  -v, --verbose       log debug detail, whatever [log] level says\n"
		"      --check-config  read and check the configuration, connect nowhere,\n"
		"                      exit 0 if it is valid and 1 if not\n"
		"  -V, --version       print the version and exit\n"
		"  -h, --help          print this help and exit\n"
		"\n"
		"The MQTT password may also come from the environment variable %s.\n"
		"Logs go to standard error. SIGHUP reloads the configuration.\n"
		"See panda2mqtt(8), panda2mqtt.ini(5) and the README.\n",
		P2M_DEFAULT_CONFIG_PATH, P2M_ENV_MQTT_PASSWORD);
}

int main(int argc, char **argv)
{
	enum { OPT_CHECK = 256 };
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"check-config", no_argument, NULL, OPT_CHECK},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *path = P2M_DEFAULT_CONFIG_PATH;
	bool check = false, verbose = false;
	struct p2m_config cfg;
	char err[512];
	int c, rc;

	p2m_json_init();	  /* before anything allocates a cJSON */
	p2m_log_detect_journal(); /* before the first line */

	/* Stop and reload signals are taken through a signalfd on the loop (gateway.c); block
	 * them from the very start so that one arriving during start-up is not fatal. */
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	sigprocmask(SIG_BLOCK, &stop, NULL);

	while ((c = getopt_long(argc, argv, "c:vVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'v':
			verbose = true;
			p2m_log_set_level(P2M_LOG_DEBUG);
			break;
		case OPT_CHECK:
			check = true;
			break;
		case 'V':
			printf("panda2mqtt %s\n", P2M_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "panda2mqtt: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (p2m_config_load_file(&cfg, path, err, sizeof(err)) != 0 ||
	    p2m_config_check_families(&cfg, p2m_family_known, p2m_family_names(), err,
				      sizeof(err)) != 0) {
		fprintf(stderr, "panda2mqtt: %s\n", err);
		p2m_config_free(&cfg);
		return 1;
	}
	if (check) {
		size_t with_host = 0;
		for (size_t i = 0; i < cfg.n_devices; i++)
			with_host += cfg.devices[i].host != NULL;
		printf("%s: configuration is valid (%zu static device(s), %zu named for "
		       "discovery, mDNS %s",
		       path, with_host, cfg.n_devices - with_host,
		       cfg.discovery.mdns ? "on" : "off");
		if (cfg.dialin.port)
			printf(", dial-in on port %d%s", cfg.dialin.port,
			       cfg.dialin.token ? " with a token" : " without a token");
		printf(")\n");
		p2m_config_free(&cfg);
		return 0;
	}
	if (!verbose)
		p2m_log_set_level((enum p2m_log_level)cfg.log.level);
	mosquitto_lib_init();
	rc = p2m_gateway_run(&cfg, path, verbose);
	mosquitto_lib_cleanup();
	p2m_config_free(&cfg);
	return rc;
}
