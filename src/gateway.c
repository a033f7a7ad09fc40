/* gateway.c - see gateway.h.
 *
 * Signals come through a signalfd watched on the loop, which keeps the daemon to one
 * thread (g_unix_signal_add would start a helper thread). SIGHUP reloads.
 *
 * A reload keeps the configuration struct where it is (every module points into it)
 * and replaces its content: what changed is applied (devices, [safety], [discovery],
 * [log], the broker session), what cannot change while running keeps its running value
 * ([dialin], [printer], [moonraker], [bambu_virtual], the [mqtt] topics), and unchanged
 * sections keep their very strings, which the broker session's TLS set-up points to. */
#include "gateway.h"

#include "bridge.h"
#include "bridge_api.h"
#include "device.h"
#include "device_registry.h"
#include "firmware.h"
#include "http_post.h"
#include "loop.h"
#include "moonraker.h"
#include "mqtt.h"
#include "printer.h"
#include "service.h"
#include "ws.h"
#include "panda2mqtt/command.h"
#include "panda2mqtt/families.h"
#include "panda2mqtt/json_util.h"
#include "panda2mqtt/log.h"

#include <errno.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

struct p2m_gateway {
	struct p2m_config *cfg; /* this address for good: a reload replaces its content */
	const char *path;	/* the file a reload reads again */
	bool verbose;		/* -v: debug whatever [log] level says */
	GMainLoop *loop;
	struct p2m_mqtt *mqtt;
	struct p2m_device_env env;
	struct p2m_registry *registry;
	struct p2m_printer *printer;	 /* [printer]; NULL without */
	struct p2m_moonraker *moonraker; /* [moonraker] port; NULL when off */
	struct p2m_bridge *bridge;
	struct p2m_bridge_api *api;
	char *t_ha_status;
	char *base_slash;  /* "<base>/" */
	guint birth_timer; /* re-sends state a while after Home Assistant's birth */
	guint controller_timer;
	guint ready_idle;
	guint reload_idle;
	struct p2m_config *pending; /* read and checked, applied by the next reload_idle */
	bool applying;		    /* in apply(): a reload that comes now waits its turn */
	gint64 broker_lost_at;	    /* monotonic; 0 while connected */
	bool controller_tripped;
	int exit_code;
};

static void info_changed(void *ud)
{
	struct p2m_gateway *gw = ud;

	p2m_bridge_changed(gw->bridge);
}

static void on_mqtt_connect(void *ud)
{
	struct p2m_gateway *gw = ud;

	for (size_t i = 0; i < p2m_registry_count(gw->registry); i++)
		p2m_device_republish(p2m_registry_at(gw->registry, i));
	p2m_printer_on_connect(gw->printer);
	p2m_bridge_publish_discovery(gw->bridge);
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
	info_changed(gw);
	return G_SOURCE_REMOVE;
}

static void on_ha_birth(struct p2m_gateway *gw)
{
	p2m_info("mqtt: Home Assistant is online; sending discovery");
	for (size_t i = 0; i < p2m_registry_count(gw->registry); i++)
		p2m_device_publish_discovery(p2m_registry_at(gw->registry, i));
	p2m_printer_publish_discovery(gw->printer);
	p2m_bridge_publish_discovery(gw->bridge);
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

/* <base>/<id>/availability: our own (ignored), or, retained when subscribing, one an
 * earlier run left for a device not served now (it may be forgotten). */
static bool on_availability(struct p2m_gateway *gw, const char *rest, size_t len, bool retained)
{
	const char *slash = strchr(rest, '/');
	const struct p2m_printer_conf *pc = &gw->cfg->printer;
	char id[P2M_ID_MAX + 1];

	if (!slash || strcmp(slash, "/availability") != 0)
		return false;
	if (!retained || len == 0 || (size_t)(slash - rest) > P2M_ID_MAX)
		return true;
	memcpy(id, rest, (size_t)(slash - rest));
	id[slash - rest] = '\0';
	/* not a device id (config.c): nothing this gateway could have published */
	if (!id[0] || strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(id))
		return true;
	if (strcmp(id, "bridge") != 0 && !(pc->enabled && strcmp(id, pc->id) == 0))
		p2m_registry_note_retained(gw->registry, id);
	return true;
}

static void on_mqtt_message(void *ud, const char *topic, const char *payload, size_t len,
			    bool retained)
{
	struct p2m_gateway *gw = ud;
	size_t blen = strlen(gw->base_slash);

	if (strcmp(topic, gw->t_ha_status) == 0) {
		if (len == 6 && memcmp(payload, "online", 6) == 0)
			on_ha_birth(gw);
		return;
	}
	if (p2m_printer_on_message(gw->printer, topic, payload, len))
		return;
	if (strncmp(topic, gw->base_slash, blen) != 0)
		return;
	if (p2m_bridge_api_on_message(gw->api, topic, payload, len, retained) ||
	    on_availability(gw, topic + blen, len, retained))
		return;
	route_command(gw, topic, topic + blen, payload, len, retained);
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

static void set_controller_timer(struct p2m_gateway *gw)
{
	bool want = gw->cfg->safety.controller_lost_minutes > 0;

	if (want && !gw->controller_timer) {
		gw->controller_timer = g_timeout_add_seconds(1, on_controller_check, gw);
	} else if (!want && gw->controller_timer) {
		g_source_remove(gw->controller_timer);
		gw->controller_timer = 0;
		gw->broker_lost_at = 0;
		gw->controller_tripped = false;
	}
}

/* ---- reload ------------------------------------------------------------------------ */

/* Sections a running gateway cannot change: their listeners, subscriptions and topics
 * were made at start-up (the [mqtt] topics are every device's topics). A reload keeps
 * their running values and says that they take a restart. */
static const char *const restart_sections[] = {"dialin", "printer", "moonraker", "bambu_virtual",
					       "firmware"};

static cJSON *needs_restart(const struct p2m_config *cur, const struct p2m_config *nxt)
{
	cJSON *a = cJSON_CreateArray();
	char name[32];

	for (size_t i = 0; i < G_N_ELEMENTS(restart_sections); i++) {
		if (!p2m_config_section_differs(cur, nxt, restart_sections[i]))
			continue;
		snprintf(name, sizeof(name), "[%s]", restart_sections[i]);
		cJSON_AddItemToArray(a, cJSON_CreateString(name));
	}
	if (strcmp(cur->mqtt.base_topic, nxt->mqtt.base_topic) != 0)
		cJSON_AddItemToArray(a, cJSON_CreateString("[mqtt] base_topic"));
	if (strcmp(cur->mqtt.discovery_prefix, nxt->mqtt.discovery_prefix) != 0)
		cJSON_AddItemToArray(a, cJSON_CreateString("[mqtt] discovery_prefix"));
	return a;
}

static void swap_ptr(char **a, char **b)
{
	char *t = *a;

	*a = *b;
	*b = t;
}

#define SWAP(a, b)                                                                                 \
	do {                                                                                       \
		__typeof__(a) t_ = (a);                                                            \
		(a) = (b);                                                                         \
		(b) = t_;                                                                          \
	} while (0)

/* Does [mqtt] differ in what a new session takes (everything but the topics)? */
static bool session_differs(const struct p2m_config *cur, struct p2m_config *nxt)
{
	char *base = nxt->mqtt.base_topic, *prefix = nxt->mqtt.discovery_prefix;
	bool differs;

	/* compared as if the topics were the running ones, which they stay */
	nxt->mqtt.base_topic = cur->mqtt.base_topic;
	nxt->mqtt.discovery_prefix = cur->mqtt.discovery_prefix;
	differs = p2m_config_section_differs(cur, nxt, "mqtt");
	nxt->mqtt.base_topic = base;
	nxt->mqtt.discovery_prefix = prefix;
	return differs;
}

/* nxt (checked) becomes the configuration: every part that can change while running is
 * applied; the rest keeps its running value (needs_restart). Runs from an idle callback:
 * nothing of a device or of the broker session is on the stack. */
static void apply(struct p2m_gateway *gw, struct p2m_config *nxt)
{
	struct p2m_config *cur = gw->cfg;
	cJSON *restart = needs_restart(cur, nxt);
	bool mqtt_changed = session_differs(cur, nxt);
	char *list = NULL, *status;

	p2m_service_reloading();
	for (int i = 0; i < cJSON_GetArraySize(restart); i++) {
		char *more = g_strconcat(list ? list : "", list ? ", " : "",
					 cJSON_GetArrayItem(restart, i)->valuestring, NULL);
		g_free(list);
		list = more;
	}
	if (list)
		p2m_warn("reload: %s changed; that takes a restart (systemctl restart panda2mqtt), "
			 "the running values stay until then",
			 list);
	g_free(list);
	cJSON_Delete(restart);
	/* What stays moves into nxt, so that the swap below keeps it where it is (the
	 * modules hold pointers to it); nxt ends up with what is to be freed. A changed
	 * broker session ends first, saying offline with the settings it was made with. */
	if (mqtt_changed) {
		p2m_info("reload: [mqtt] changed; connecting to the broker again");
		p2m_mqtt_shutdown(gw->mqtt, 2000);
		swap_ptr(&cur->mqtt.base_topic, &nxt->mqtt.base_topic);
		swap_ptr(&cur->mqtt.discovery_prefix, &nxt->mqtt.discovery_prefix);
	} else {
		SWAP(cur->mqtt, nxt->mqtt);
	}
	SWAP(cur->dialin, nxt->dialin);
	SWAP(cur->printer, nxt->printer);
	SWAP(cur->moonraker, nxt->moonraker);
	SWAP(cur->bambu_virtual, nxt->bambu_virtual);
	SWAP(cur->firmware, nxt->firmware);
	SWAP(*cur, *nxt); /* nxt: the old configuration (its [device] sections still used) */

	/* the new session before the old settings go: the old client's TLS set-up points
	 * into them; it connects once this returns to the loop */
	if (mqtt_changed && p2m_mqtt_renew(gw->mqtt) != 0) {
		p2m_err("reload: cannot make a broker session with the new [mqtt] settings; "
			"stopping");
		gw->exit_code = 1;
		g_main_loop_quit(gw->loop);
	}
	gw->env.safety = cur->safety;
	p2m_registry_reload(gw->registry, nxt);
	set_controller_timer(gw);
	p2m_bridge_set_log_level(gw->bridge, gw->verbose ? P2M_LOG_DEBUG : cur->log.level);
	p2m_config_free(nxt);
	g_free(nxt);
	p2m_bridge_publish_discovery(gw->bridge); /* its "Search" button follows mdns */
	info_changed(gw);
	status = p2m_bridge_status(gw->bridge);
	p2m_info("reload: done; %s", status);
	p2m_service_ready(status);
	g_free(status);
}

/* apply() can turn the loop (an [mqtt] change waits for the old session's "offline" to
 * be acknowledged), and a SIGHUP or a reload request read then is applied after it,
 * never inside it: the configuration and the session it is replacing are half done. */
static gboolean on_reload(gpointer data)
{
	struct p2m_gateway *gw = data;
	struct p2m_config *nxt;

	gw->reload_idle = 0;
	gw->applying = true;
	while ((nxt = gw->pending)) {
		gw->pending = NULL;
		apply(gw, nxt);
	}
	gw->applying = false;
	return G_SOURCE_REMOVE;
}

static void free_config(struct p2m_config *c)
{
	if (c) {
		p2m_config_free(c);
		g_free(c);
	}
}

/* Read and check the file again; applied from an idle callback (not inside the
 * broker's or a device's callback: the session or the device may be replaced). 0, with
 * *data (if asked for) saying what takes a restart; -1 with why in err, the running
 * configuration untouched. */
static int request_reload(void *ud, cJSON **data, char *err, size_t errlen)
{
	struct p2m_gateway *gw = ud;
	struct p2m_config *nxt = g_new0(struct p2m_config, 1);

	if (p2m_config_load_file(nxt, gw->path, err, errlen) != 0 ||
	    p2m_config_check_families(nxt, p2m_family_known, p2m_family_names(), err, errlen) !=
		0) {
		p2m_err("reload: %s; the running configuration stays", err);
		free_config(nxt);
		return -1;
	}
	if (data) {
		*data = cJSON_CreateObject();
		cJSON_AddItemToObject(*data, "restart_needed", needs_restart(gw->cfg, nxt));
	}
	free_config(gw->pending); /* two in a row: the newer wins */
	gw->pending = nxt;
	if (!gw->reload_idle && !gw->applying) /* else the running apply's loop takes it */
		gw->reload_idle = g_idle_add(on_reload, gw);
	return 0;
}

static gboolean on_signal(gint fd, GIOCondition cond, gpointer data)
{
	struct p2m_gateway *gw = data;
	struct signalfd_siginfo si;

	(void)cond;
	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return G_SOURCE_CONTINUE;
	if (si.ssi_signo == SIGHUP) {
		char err[512];

		p2m_info("received %s; reloading %s", strsignal((int)si.ssi_signo), gw->path);
		request_reload(gw, NULL, err, sizeof(err));
		return G_SOURCE_CONTINUE;
	}
	p2m_info("received %s; stopping", strsignal((int)si.ssi_signo));
	g_main_loop_quit(gw->loop);
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

/* The loop turns: the service manager may count the daemon as started. */
static gboolean on_ready(gpointer data)
{
	struct p2m_gateway *gw = data;
	char *status = p2m_bridge_status(gw->bridge);

	gw->ready_idle = 0;
	p2m_service_start();
	p2m_service_ready(status);
	g_free(status);
	return G_SOURCE_REMOVE;
}

int p2m_gateway_run(struct p2m_config *cfg, const char *path, bool verbose)
{
	struct p2m_gateway gw = {.cfg = cfg, .path = path, .verbose = verbose};
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
	gw.t_ha_status = g_strdup_printf("%s/status", cfg->mqtt.discovery_prefix);
	gw.base_slash = g_strdup_printf("%s/", cfg->mqtt.base_topic);

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
	/* the retained ones say which devices an earlier run served (on_availability) */
	sub = g_strdup_printf("%s/+/availability", cfg->mqtt.base_topic);
	p2m_mqtt_add_subscription(gw.mqtt, sub);
	g_free(sub);
	p2m_mqtt_add_subscription(gw.mqtt, gw.t_ha_status);
	gw.bridge = p2m_bridge_new(cfg, gw.mqtt);
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
	p2m_bridge_set_registry(gw.bridge, gw.registry);
	gw.api = p2m_bridge_api_new(&(const struct p2m_bridge_api_env){
	    .cfg = cfg,
	    .mqtt = gw.mqtt,
	    .reg = gw.registry,
	    .bridge = gw.bridge,
	    .reload = request_reload,
	    .ud = &gw,
	});
	p2m_info("panda2mqtt %s running with %zu configured device(s)%s", P2M_VERSION,
		 p2m_registry_count(gw.registry),
		 cfg->discovery.mdns ? "; looking for more with mdns" : "");
	p2m_mqtt_start(gw.mqtt);
	set_controller_timer(&gw);
	gw.ready_idle = g_idle_add(on_ready, &gw);

	g_main_loop_run(gw.loop);

	p2m_service_stopping();
	for (size_t i = 0; i < p2m_registry_count(gw.registry); i++)
		p2m_device_publish_offline(p2m_registry_at(gw.registry, i));
	p2m_printer_publish_offline(gw.printer);
	p2m_mqtt_shutdown(gw.mqtt, 2000);
out:
	p2m_service_stop();
	if (gw.controller_timer)
		g_source_remove(gw.controller_timer);
	if (gw.ready_idle)
		g_source_remove(gw.ready_idle);
	if (gw.reload_idle)
		g_source_remove(gw.reload_idle);
	free_config(gw.pending);
	p2m_bridge_api_free(gw.api);
	p2m_registry_free(gw.registry);
	p2m_firmware_free(gw.env.firmware);
	p2m_bridge_free(gw.bridge);
	if (gw.birth_timer)
		g_source_remove(gw.birth_timer);
	p2m_mqtt_free(gw.mqtt);
	p2m_loop_lws_destroy(gw.env.lws);
	p2m_moonraker_free(gw.moonraker); /* its connections went with the context */
	p2m_printer_free(gw.printer);	  /* after: the Moonraker read its source */
	g_source_remove(sig_watch);
	close(sfd);
	g_free(gw.t_ha_status);
	g_free(gw.base_slash);
	g_main_loop_unref(gw.loop);
	p2m_info("stopped");
	return gw.exit_code;
}
