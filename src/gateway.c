/* gateway.c - see gateway.h.
 *
 * Signals come through a signalfd watched on the loop, which keeps the daemon to one
 * thread (g_unix_signal_add would start a helper thread). */
#include "gateway.h"

#include "device.h"
#include "loop.h"
#include "moonraker.h"
#include "mqtt.h"
#include "panda2mqtt/command.h"
#include "panda2mqtt/json_util.h"
#include "panda2mqtt/log.h"
#include "firmware.h"
#include "http_post.h"
#include "printer.h"
#include "device_registry.h"
#include "ws.h"

#include <glib-unix.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

struct p2m_gateway {
	const struct p2m_config *cfg;
	GMainLoop *loop;
	struct p2m_mqtt *mqtt;
	struct p2m_device_env env;
	struct p2m_registry *registry;
	struct p2m_printer *printer;	 /* [printer]; NULL without */
	struct p2m_moonraker *moonraker; /* [moonraker] port; NULL when off */
	char *t_info;
	char *t_ha_status;
	guint info_idle;
	guint birth_timer; /* re-sends state a while after Home Assistant's birth */
	guint controller_timer;
	gint64 broker_lost_at; /* monotonic; 0 while connected */
	bool controller_tripped;
	int exit_code;
};

static gboolean publish_info(gpointer data)
{
	struct p2m_gateway *gw = data;
	cJSON *info = cJSON_CreateObject();
	cJSON *devs;
	char *s;

	gw->info_idle = 0;
	cJSON_AddStringToObject(info, "version", P2M_VERSION);
	cJSON_AddStringToObject(info, "base_topic", gw->cfg->mqtt.base_topic);
	cJSON_AddStringToObject(info, "discovery_prefix", gw->cfg->mqtt.discovery_prefix);
	devs = cJSON_AddArrayToObject(info, "devices");
	for (size_t i = 0; i < p2m_registry_count(gw->registry); i++)
		cJSON_AddItemToArray(devs, p2m_device_info(p2m_registry_at(gw->registry, i)));
	s = p2m_json_print(info);
	p2m_mqtt_publish(gw->mqtt, gw->t_info, s, true);
	cJSON_free(s);
	cJSON_Delete(info);
	return G_SOURCE_REMOVE;
}

/* Coalesce: many devices changing at once publish bridge/info once. */
static void info_changed(void *ud)
{
	struct p2m_gateway *gw = ud;

	if (!gw->info_idle)
		gw->info_idle = g_idle_add(publish_info, gw);
}

static void on_mqtt_connect(void *ud)
{
	struct p2m_gateway *gw = ud;

	for (size_t i = 0; i < p2m_registry_count(gw->registry); i++)
		p2m_device_republish(p2m_registry_at(gw->registry, i));
	p2m_printer_on_connect(gw->printer);
	info_changed(gw);
}

/* Home Assistant subscribes to an entity's availability and state topics only after it
 * has handled the entity's discovery, and some brokers never hand it the retained
 * copies (RabbitMQ keeps them per node and gives none to a wildcard subscription,
 * docs/BROKERS.md): so the bridge state, availability and state go again, once HA has
 * had time to subscribe. On mosquitto this repeats what it already has. */
#define P2M_BIRTH_STATE_DELAY_S 3

static gboolean on_birth_timer(gpointer data)
{
	struct p2m_gateway *gw = data;

	gw->birth_timer = 0;
	p2m_debug("mqtt: sending availability and state again after Home Assistant's birth");
	p2m_mqtt_republish_online(gw->mqtt);
	for (size_t i = 0; i < p2m_registry_count(gw->registry); i++)
		p2m_device_republish_state(p2m_registry_at(gw->registry, i));
	p2m_printer_on_connect(gw->printer);
	return G_SOURCE_REMOVE;
}

static void on_ha_birth(struct p2m_gateway *gw)
{
	p2m_info("mqtt: Home Assistant is online; sending discovery");
	for (size_t i = 0; i < p2m_registry_count(gw->registry); i++)
		p2m_device_publish_discovery(p2m_registry_at(gw->registry, i));
	p2m_printer_publish_discovery(gw->printer);
	/* Births in a row (HA restarting twice) send the state once, after the last. */
	if (gw->birth_timer)
		g_source_remove(gw->birth_timer);
	gw->birth_timer = g_timeout_add_seconds(P2M_BIRTH_STATE_DELAY_S, on_birth_timer, gw);
}

/* <base>/<id>/set or <base>/<id>/set/<field> */
static void route_command(struct p2m_gateway *gw, const char *topic, const char *rest,
			  const char *payload, size_t len, bool retained)
{
	const char *slash = strchr(rest, '/');
	struct p2m_device *d;
	const char *field = NULL;
	char err[128];
	cJSON *cmd;

	if (!slash || strncmp(slash, "/set", 4) != 0 || (slash[4] && slash[4] != '/')) {
		p2m_debug("mqtt: ignoring message on %s", topic);
		return;
	}
	if (slash[4] == '/')
		field = slash + 5;
	d = p2m_registry_find(gw->registry, rest, (size_t)(slash - rest));
	if (!d) {
		p2m_warn("mqtt: command on %s for an unknown device; ignored", topic);
		return;
	}
	if (retained) {
		/* A retained command would be replayed on every restart of the gateway. */
		p2m_warn("device %s: retained command on %s ignored; publish commands without "
			 "the retain flag",
			 p2m_device_id(d), topic);
		p2m_device_reject(d, field ? field : "", "retained commands are not accepted");
		return;
	}
	if (field)
		cmd = p2m_command_parse_field(p2m_device_driver(d), field, payload, len, err,
					      sizeof(err));
	else
		cmd = p2m_command_parse_object(payload, len, err, sizeof(err));
	if (!cmd) {
		p2m_device_reject(d, field ? field : "", err);
		return;
	}
	p2m_device_command(d, cmd);
	cJSON_Delete(cmd);
}

static void on_mqtt_message(void *ud, const char *topic, const char *payload, size_t len,
			    bool retained)
{
	struct p2m_gateway *gw = ud;
	size_t blen = strlen(gw->cfg->mqtt.base_topic);

	if (strcmp(topic, gw->t_ha_status) == 0) {
		if (len == 6 && memcmp(payload, "online", 6) == 0)
			on_ha_birth(gw);
		return;
	}
	if (p2m_printer_on_message(gw->printer, topic, payload, len))
		return;
	if (strncmp(topic, gw->cfg->mqtt.base_topic, blen) == 0 && topic[blen] == '/')
		route_command(gw, topic, topic + blen + 1, payload, len, retained);
}

/* [safety] controller_lost_minutes: the broker is how Home Assistant reaches the
 * heater; gone that long, heating that nobody can switch off any more is switched off.
 * Once per outage. */
static gboolean on_controller_check(gpointer data)
{
	struct p2m_gateway *gw = data;
	gint64 now = g_get_monotonic_time();
	double limit_us = gw->cfg->safety.controller_lost_minutes * 60 * G_USEC_PER_SEC;

	if (p2m_mqtt_connected(gw->mqtt)) {
		gw->broker_lost_at = 0;
		gw->controller_tripped = false;
		return G_SOURCE_CONTINUE;
	}
	if (!gw->broker_lost_at)
		gw->broker_lost_at = now;
	if (!gw->controller_tripped && (double)(now - gw->broker_lost_at) >= limit_us) {
		gw->controller_tripped = true;
		p2m_warn("safety: the MQTT broker has been unreachable for %g minute(s); "
			 "switching off any heating",
			 gw->cfg->safety.controller_lost_minutes);
		for (size_t i = 0; i < p2m_registry_count(gw->registry); i++)
			p2m_device_controller_lost(p2m_registry_at(gw->registry, i));
	}
	return G_SOURCE_CONTINUE;
}

static gboolean on_signal(gint fd, GIOCondition cond, gpointer data)
{
	struct p2m_gateway *gw = data;
	struct signalfd_siginfo si;

	(void)cond;
	if (read(fd, &si, sizeof(si)) == sizeof(si)) {
		p2m_info("received %s; stopping", strsignal((int)si.ssi_signo));
		g_main_loop_quit(gw->loop);
	}
	return G_SOURCE_CONTINUE;
}

static int signals_fd(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
		return -1;
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

int p2m_gateway_run(const struct p2m_config *cfg)
{
	struct p2m_gateway gw = {.cfg = cfg};
	const struct p2m_mqtt_callbacks mcb = {
	    .on_connect = on_mqtt_connect,
	    .on_message = on_mqtt_message,
	};
	char *sub;
	static struct lws_protocols protocols[3];
	int sfd;
	guint sig_watch;

	signal(SIGPIPE, SIG_IGN);
	sfd = signals_fd();
	if (sfd < 0) {
		p2m_err("cannot set up signal handling: %s", strerror(errno));
		return 1;
	}
	gw.loop = g_main_loop_new(NULL, FALSE);
	sig_watch = g_unix_fd_add(sfd, G_IO_IN, on_signal, &gw);
	gw.t_info = g_strdup_printf("%s/bridge/info", cfg->mqtt.base_topic);
	gw.t_ha_status = g_strdup_printf("%s/status", cfg->mqtt.discovery_prefix);

	lws_set_log_level(p2m_log_get_level() >= P2M_LOG_DEBUG ? LLL_ERR | LLL_WARN : LLL_ERR,
			  NULL);
	/* the WebSocket links and the HTTP uploads (device_ota.c) share the one context */
	protocols[0] = p2m_ws_protocols()[0];
	protocols[1] = *p2m_http_post_protocol();
	gw.env.lws = p2m_loop_lws_new(protocols);
	if (!gw.env.lws) {
		p2m_err("cannot create the WebSocket context (is libwebsockets-evlib-uv "
			"installed?)");
		gw.exit_code = 1;
		goto out;
	}
	gw.mqtt = p2m_mqtt_new(&cfg->mqtt, &mcb, &gw);
	if (!gw.mqtt) {
		gw.exit_code = 1;
		goto out;
	}
	sub = g_strdup_printf("%s/+/set", cfg->mqtt.base_topic);
	p2m_mqtt_add_subscription(gw.mqtt, sub);
	g_free(sub);
	sub = g_strdup_printf("%s/+/set/+", cfg->mqtt.base_topic);
	p2m_mqtt_add_subscription(gw.mqtt, sub);
	g_free(sub);
	p2m_mqtt_add_subscription(gw.mqtt, gw.t_ha_status);
	gw.printer = p2m_printer_new(cfg, gw.mqtt);
	if (cfg->moonraker.port) {
		gw.moonraker = p2m_moonraker_new(gw.env.lws, &cfg->moonraker,
						 p2m_printer_get_source(gw.printer));
		if (!gw.moonraker) {
			gw.exit_code = 1;
			goto out;
		}
	}

	gw.env.mqtt = gw.mqtt;
	gw.env.cfg = cfg;
	gw.env.safety = cfg->safety;
	gw.env.changed = info_changed;
	gw.env.ud = &gw;
	gw.env.firmware = p2m_firmware_new(cfg->firmware.dir);
	gw.registry = p2m_registry_new(&gw.env);
	if (!gw.registry) {
		gw.exit_code = 1;
		goto out;
	}
	p2m_info("panda2mqtt %s running with %zu configured device(s)%s", P2M_VERSION,
		 p2m_registry_count(gw.registry),
		 cfg->discovery.mdns ? "; looking for more with mdns" : "");
	p2m_mqtt_start(gw.mqtt);
	if (cfg->safety.controller_lost_minutes > 0)
		gw.controller_timer = g_timeout_add_seconds(1, on_controller_check, &gw);

	g_main_loop_run(gw.loop);

	for (size_t i = 0; i < p2m_registry_count(gw.registry); i++)
		p2m_device_publish_offline(p2m_registry_at(gw.registry, i));
	p2m_printer_publish_offline(gw.printer);
	p2m_mqtt_shutdown(gw.mqtt, 2000);
out:
	if (gw.controller_timer)
		g_source_remove(gw.controller_timer);
	p2m_registry_free(gw.registry);
	p2m_firmware_free(gw.env.firmware);
	if (gw.info_idle)
		g_source_remove(gw.info_idle);
	if (gw.birth_timer)
		g_source_remove(gw.birth_timer);
	p2m_mqtt_free(gw.mqtt);
	p2m_loop_lws_destroy(gw.env.lws);
	p2m_moonraker_free(gw.moonraker); /* its connections went with the context */
	p2m_printer_free(gw.printer);	  /* after: the Moonraker read its source */
	g_source_remove(sig_watch);
	close(sfd);
	g_free(gw.t_info);
	g_free(gw.t_ha_status);
	g_main_loop_unref(gw.loop);
	p2m_info("stopped");
	return gw.exit_code;
}
