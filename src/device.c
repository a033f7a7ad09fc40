/* device.c - see device.h. */
#include "device.h"

#include "panda2mqtt/command.h"
#include "panda2mqtt/entity.h"
#include "panda2mqtt/ha.h"
#include "panda2mqtt/json_util.h"
#include "panda2mqtt/log.h"
#include "ws.h"

#include <glib.h>
#include <string.h>

#define MAX_MESSAGE_BYTES (64 * 1024)
#define CONNECT_TIMEOUT_S 10
/* After a command, wait this long before re-reading the snapshot: the frames are
 * written within milliseconds, and the device applies them as they arrive. */
#define VERIFY_DELAY_MS 1500

struct p2m_device {
	const struct p2m_device_env *env;
	const struct p2m_device_conf *conf;
	const struct p2m_driver *driver;
	char *t_state, *t_avail, *t_event, *t_discovery;
	struct p2m_ws *ws;
	struct p2m_ws *probe;
	bool probe_got;
	bool probe_again;
	cJSON *dev; /* merged state as reported; an empty object before the first frame */
	bool online;
	bool first_frame;
	int failures;
	char *published_state;
	char *published_discovery;
	guint refresh_timer;
	guint verify_timer;
};

static void start_probe(struct p2m_device *d);

const char *p2m_device_id(const struct p2m_device *d)
{
	return d->conf->id;
}

static void publish(struct p2m_device *d, const char *topic, const char *payload, bool retain)
{
	p2m_mqtt_publish(d->env->mqtt, topic, payload, retain);
}

static void publish_event(struct p2m_device *d, cJSON *event)
{
	char *s = p2m_json_print(event);

	publish(d, d->t_event, s, false);
	cJSON_free(s);
	cJSON_Delete(event);
}

void p2m_device_reject(struct p2m_device *d, const char *field, const char *reason)
{
	cJSON *e = cJSON_CreateObject();

	p2m_warn("device %s: command rejected: %s%s%s", d->conf->id, field && *field ? field : "",
		 field && *field ? ": " : "", reason);
	cJSON_AddStringToObject(e, "event", "command_rejected");
	cJSON_AddStringToObject(e, "field", field ? field : "");
	cJSON_AddStringToObject(e, "reason", reason);
	publish_event(d, e);
}

static void publish_state(struct p2m_device *d, bool force)
{
	cJSON *state = p2m_entity_state(d->driver, d->dev);
	char *s = p2m_json_print(state);

	cJSON_Delete(state);
	if (!force && d->published_state && strcmp(s, d->published_state) == 0) {
		cJSON_free(s);
		return;
	}
	if (p2m_mqtt_publish(d->env->mqtt, d->t_state, s, true) == 0) {
		cJSON_free(d->published_state);
		d->published_state = s;
	} else {
		cJSON_free(s);
	}
}

static void publish_discovery(struct p2m_device *d, bool force)
{
	const struct p2m_ha_device info = {
		.id = d->conf->id,
		.name = d->conf->name,
		.base_topic = d->env->cfg->mqtt.base_topic,
		.fw_version = d->driver->fw_version(d->dev),
		.host = d->conf->host,
		.port = d->conf->port,
		.safety = &d->env->safety,
	};
	cJSON *disc = p2m_ha_discovery(d->driver, &info);
	char *s = p2m_json_print(disc);

	cJSON_Delete(disc);
	if (!force && d->published_discovery && strcmp(s, d->published_discovery) == 0) {
		cJSON_free(s);
		return;
	}
	if (p2m_mqtt_publish(d->env->mqtt, d->t_discovery, s, true) == 0) {
		cJSON_free(d->published_discovery);
		d->published_discovery = s;
	} else {
		cJSON_free(s);
	}
}

void p2m_device_publish_discovery(struct p2m_device *d)
{
	publish_discovery(d, true);
}

void p2m_device_republish(struct p2m_device *d)
{
	publish(d, d->t_avail, d->online ? "online" : "offline", true);
	publish_discovery(d, true);
	if (d->dev->child)
		publish_state(d, true);
}

void p2m_device_publish_offline(struct p2m_device *d)
{
	publish(d, d->t_avail, "offline", true);
}

static void set_online(struct p2m_device *d, bool online)
{
	if (d->online == online)
		return;
	d->online = online;
	publish(d, d->t_avail, online ? "online" : "offline", true);
	if (d->env->changed)
		d->env->changed(d->env->ud);
}

/* Check, merge and publish one frame from the main link or a snapshot re-read. */
static void take_frame(struct p2m_device *d, const char *text, size_t len, bool snapshot)
{
	cJSON *frame = cJSON_ParseWithLength(text, len);
	const char *fw_before = d->driver->fw_version(d->dev);
	char *fw_old = fw_before ? g_strdup(fw_before) : NULL;
	const char *fw;

	if (!frame) {
		p2m_warn("device %s: frame is not valid JSON (%zu bytes); ignored", d->conf->id,
			 len);
		g_free(fw_old);
		return;
	}
	if (snapshot && !d->driver->is_snapshot(frame))
		p2m_warn("device %s: first frame is not a %s snapshot", d->conf->id,
			 d->driver->model);
	p2m_entity_merge_frame(d->driver, d->conf->id, d->dev, frame);
	cJSON_Delete(frame);
	fw = d->driver->fw_version(d->dev);
	if (fw && (!fw_old || strcmp(fw, fw_old) != 0)) {
		p2m_info("device %s: %s firmware %s", d->conf->id, d->driver->model, fw);
		publish_discovery(d, false);
		if (d->env->changed)
			d->env->changed(d->env->ud);
	}
	g_free(fw_old);
	/* A snapshot is the device's whole truth: publish it even when nothing changed, so
	 * that a device coming back always refreshes its state. */
	publish_state(d, snapshot);
}

static void on_open(void *ud)
{
	struct p2m_device *d = ud;

	p2m_info("device %s: connected to ws://%s:%d/ws", d->conf->id, d->conf->host,
		 d->conf->port);
	d->first_frame = true;
}

static void on_message(void *ud, const char *text, size_t len)
{
	struct p2m_device *d = ud;
	bool snapshot = d->first_frame;

	d->first_frame = false;
	take_frame(d, text, len, snapshot);
	if (!d->online) {
		d->failures = 0;
		set_online(d, true);
	}
}

static void on_close(void *ud, bool was_open, const char *why)
{
	struct p2m_device *d = ud;

	(void)was_open;
	if (d->online)
		p2m_warn("device %s: link lost (%s); reconnecting", d->conf->id, why);
	else if (d->failures++ == 0)
		p2m_warn("device %s: cannot reach ws://%s:%d/ws (%s); retrying", d->conf->id,
			 d->conf->host, d->conf->port, why);
	else
		p2m_debug("device %s: attempt failed (%s)", d->conf->id, why);
	set_online(d, false);
}

static void on_probe_message(void *ud, const char *text, size_t len)
{
	struct p2m_device *d = ud;

	d->probe_got = true;
	p2m_debug("device %s: snapshot re-read", d->conf->id);
	take_frame(d, text, len, true);
}

static gboolean free_probe(gpointer data)
{
	struct p2m_device *d = data;

	p2m_ws_free(d->probe);
	d->probe = NULL;
	if (d->probe_again) {
		d->probe_again = false;
		start_probe(d);
	}
	return G_SOURCE_REMOVE;
}

static void on_probe_close(void *ud, bool was_open, const char *why)
{
	struct p2m_device *d = ud;

	(void)was_open;
	if (!d->probe_got)
		p2m_warn("device %s: snapshot re-read failed (%s)", d->conf->id, why);
	g_idle_add(free_probe, d);
}

static void start_probe(struct p2m_device *d)
{
	static const struct p2m_ws_callbacks cb = {
		.on_message = on_probe_message,
		.on_close = on_probe_close,
	};
	const struct p2m_ws_opts o = {
		.name = d->conf->id,
		.host = d->conf->host,
		.port = d->conf->port,
		.path = "/ws",
		.max_message = MAX_MESSAGE_BYTES,
		.connect_timeout = CONNECT_TIMEOUT_S,
		.oneshot = true,
	};

	if (d->probe) {
		d->probe_again = true;
		return;
	}
	d->probe_got = false;
	d->probe = p2m_ws_new(d->env->lws, &o, &cb, d);
}

static gboolean on_verify(gpointer data)
{
	struct p2m_device *d = data;

	d->verify_timer = 0;
	start_probe(d);
	return G_SOURCE_REMOVE;
}

static gboolean on_refresh(gpointer data)
{
	struct p2m_device *d = data;

	if (d->online)
		start_probe(d);
	return G_SOURCE_CONTINUE;
}

/* The frame as it may appear in a log line: secrets removed. */
static char *loggable(const cJSON *frame)
{
	cJSON *r = p2m_json_redacted(frame);
	char *s = p2m_json_print(r);

	cJSON_Delete(r);
	return s;
}

void p2m_device_command(struct p2m_device *d, const cJSON *command)
{
	struct p2m_cmd cmd = {
		.driver = d->driver,
		.dev = d->dev,
		.safety = &d->env->safety,
	};
	const cJSON *frame;

	if (!d->online || !p2m_ws_is_open(d->ws)) {
		p2m_device_reject(d, "", "device is offline");
		return;
	}
	if (p2m_command_plan(&cmd, command) != 0) {
		p2m_device_reject(d, cmd.field, cmd.reason);
		p2m_command_clear(&cmd);
		return;
	}
	cJSON_ArrayForEach(frame, cmd.frames)
	{
		char *text = p2m_json_print(frame);
		char *log = loggable(frame);

		if (p2m_ws_send(d->ws, text) == 0)
			p2m_info("device %s: sending %s", d->conf->id, log);
		else
			p2m_warn("device %s: could not queue %s", d->conf->id, log);
		cJSON_free(text);
		cJSON_free(log);
	}
	p2m_command_clear(&cmd);
	if (d->verify_timer)
		g_source_remove(d->verify_timer);
	d->verify_timer = g_timeout_add(VERIFY_DELAY_MS, on_verify, d);
}

cJSON *p2m_device_info(const struct p2m_device *d)
{
	cJSON *o = cJSON_CreateObject();
	const char *fw = d->driver->fw_version(d->dev);

	cJSON_AddStringToObject(o, "id", d->conf->id);
	cJSON_AddStringToObject(o, "name", d->conf->name);
	cJSON_AddStringToObject(o, "model", d->driver->model);
	cJSON_AddStringToObject(o, "host", d->conf->host);
	cJSON_AddNumberToObject(o, "port", d->conf->port);
	cJSON_AddBoolToObject(o, "online", d->online);
	if (fw)
		cJSON_AddStringToObject(o, "fw_version", fw);
	else
		cJSON_AddNullToObject(o, "fw_version");
	return o;
}

struct p2m_device *p2m_device_new(const struct p2m_device_env *env,
				  const struct p2m_device_conf *conf,
				  const struct p2m_driver *driver)
{
	static const struct p2m_ws_callbacks cb = {
		.on_open = on_open,
		.on_message = on_message,
		.on_close = on_close,
	};
	struct p2m_device *d = g_new0(struct p2m_device, 1);
	const char *base = env->cfg->mqtt.base_topic;
	const struct p2m_ws_opts o = {
		.name = conf->id,
		.host = conf->host,
		.port = conf->port,
		.path = "/ws",
		.max_message = MAX_MESSAGE_BYTES,
		.stale_timeout = conf->stale_timeout,
		.connect_timeout = CONNECT_TIMEOUT_S,
	};

	d->env = env;
	d->conf = conf;
	d->driver = driver;
	d->dev = cJSON_CreateObject();
	d->t_state = g_strdup_printf("%s/%s", base, conf->id);
	d->t_avail = g_strdup_printf("%s/%s/availability", base, conf->id);
	d->t_event = g_strdup_printf("%s/%s/event", base, conf->id);
	d->t_discovery = g_strdup_printf("%s/device/%s/config", env->cfg->mqtt.discovery_prefix,
					 conf->id);
	if (conf->refresh_interval > 0)
		d->refresh_timer = g_timeout_add_seconds(conf->refresh_interval, on_refresh, d);
	p2m_info("device %s: %s at ws://%s:%d/ws", conf->id, driver->model, conf->host,
		 conf->port);
	d->ws = p2m_ws_new(env->lws, &o, &cb, d);
	return d;
}

void p2m_device_free(struct p2m_device *d)
{
	if (!d)
		return;
	if (d->refresh_timer)
		g_source_remove(d->refresh_timer);
	if (d->verify_timer)
		g_source_remove(d->verify_timer);
	g_idle_remove_by_data(d);
	p2m_ws_free(d->probe);
	p2m_ws_free(d->ws);
	cJSON_Delete(d->dev);
	cJSON_free(d->published_state);
	cJSON_free(d->published_discovery);
	g_free(d->t_state);
	g_free(d->t_avail);
	g_free(d->t_event);
	g_free(d->t_discovery);
	g_free(d);
}
