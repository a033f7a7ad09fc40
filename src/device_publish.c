/* device_publish.c - what a device publishes: its state, its Home Assistant discovery,
 * its availability and its events (device_priv.h).
 *
 * Owns: the view the entity tables read, skipping a state or discovery that has not
 * changed, the name shown, events (each of a type the family declares) and rate-limited
 * warnings about what the device or the broker repeat at will.
 * Does not own: when to publish (device.c, device_send.c) or the payloads' content (the
 * entity tables: entity.c, ha.c). */
#include "device_priv.h"

#include "panda2mqtt/entity.h"
#include "panda2mqtt/ha.h"
#include "panda2mqtt/json_util.h"
#include "panda2mqtt/log.h"
#include "firmware.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* One warning line per device and kind this often, however often the cause repeats. */
#define WARN_PERIOD_S	60.0
#define REJECT_PERIOD_S 5.0

struct p2m_view p2m_device_view(struct p2m_device *d)
{
	const struct p2m_fw_image *img = NULL;

	if (d->has_update) {
		img = p2m_firmware_latest(d->env->firmware, d->driver->name);
		d->update.latest = img ? img->version : NULL;
		d->update.path = img ? img->path : NULL;
		d->update.summary = img ? img->summary : NULL;
	}
	return (struct p2m_view){
	    .dev = d->dev,
	    .local = d->local,
	    .now = (double)g_get_real_time() / G_USEC_PER_SEC,
	    .read_at = d->read_at,
	    .update = d->has_update ? &d->update : NULL,
	    .seen = d->seen,
	};
}

void p2m_device_check_offer(struct p2m_device *d)
{
	const struct p2m_fw_image *img;
	char *now;

	if (!d->has_update || !d->online || d->retired)
		return;
	img = p2m_firmware_latest(d->env->firmware, d->driver->name);
	now =
	    img ? g_strdup_printf("%s\n%s", img->version, img->summary ? img->summary : "") : NULL;
	if (g_strcmp0(now, d->offered) == 0) {
		g_free(now);
		return;
	}
	g_free(d->offered);
	d->offered = now;
	p2m_device_publish_state(d, NULL, false); /* unchanged topics are not sent again */
}

/* The name shown in Home Assistant and bridge/info: the configured one, else the one the
 * device gives itself, else its model. */
static const char *device_name(const struct p2m_device *d)
{
	const char *own = d->driver->display_name ? d->driver->display_name(d->dev) : NULL;

	if (d->conf->name)
		return d->conf->name;
	return own ? own : d->driver->model;
}

static int publish(struct p2m_device *d, const char *topic, const char *payload, bool retain)
{
	if (p2m_mqtt_publish(d->env->mqtt, topic, payload, retain) != 0)
		return -1;
	d->publishes++;
	return 0;
}

static void log_limited_v(struct p2m_device *d, enum p2m_log_level level, double period,
			  const char *kind, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));
static void log_limited_v(struct p2m_device *d, enum p2m_log_level level, double period,
			  const char *kind, const char *fmt, va_list ap)
{
	char key[160], line[768];
	unsigned held = 0;

	snprintf(key, sizeof(key), "%s\x1f%.120s", d->conf->id, kind);
	if (!p2m_log_ratelimit(key, period, &held))
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	if (held)
		p2m_log(level, "device %s: %s (and %u more like it, not logged)", d->conf->id, line,
			held);
	else
		p2m_log(level, "device %s: %s", d->conf->id, line);
}

void p2m_device_warn_limited(struct p2m_device *d, const char *kind, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_limited_v(d, P2M_LOG_WARN, WARN_PERIOD_S, kind, fmt, ap);
	va_end(ap);
}

void p2m_device_log_limited(struct p2m_device *d, enum p2m_log_level level, double period,
			    const char *kind, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_limited_v(d, level, period, kind, fmt, ap);
	va_end(ap);
}

cJSON *p2m_device_event(enum p2m_event type)
{
	return p2m_event_new(p2m_event_name(type));
}

void p2m_device_emit(void *ud, cJSON *ev)
{
	struct p2m_device *d = ud;
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, P2M_EVENT_TYPE_KEY);
	char *s = p2m_json_print(ev);

	/* Home Assistant drops a type its event entity does not list: a bug, said once. */
	if (!cJSON_IsString(type) || !p2m_event_declared(d->driver, type->valuestring))
		p2m_device_warn_limited(d, "undeclared event",
					"BUG: event %s is not among the %s's declared event types",
					s, d->driver->model);
	/* every event's line, unless a flood of them (log.h's budget) */
	p2m_device_log_limited(d, P2M_LOG_INFO, 0, cJSON_IsString(type) ? type->valuestring : "?",
			       "event %s", s);
	publish(d, d->t_event, s, false);
	cJSON_free(s);
	cJSON_Delete(ev);
}

void p2m_device_reject(struct p2m_device *d, const char *field, const char *reason)
{
	cJSON *e = p2m_device_event(P2M_EV_COMMAND_REJECTED);
	char kind[320];

	/* the same rejection repeated by a flood of commands: one line every few seconds */
	snprintf(kind, sizeof(kind), "rejected %.64s %.200s", field ? field : "", reason);
	p2m_device_log_limited(d, P2M_LOG_WARN, REJECT_PERIOD_S, kind, "command rejected: %s%s%s",
			       field && *field ? field : "", field && *field ? ": " : "", reason);
	cJSON_AddStringToObject(e, "field", field ? field : "");
	cJSON_AddStringToObject(e, "reason", reason);
	p2m_device_emit(d, e);
}

/* FNV-1a, 64 bits: equal payloads, equal hashes; a different payload with an equal
 * hash (one chance in 2^64 per publish) would go unpublished until the next change. */
static guint64 payload_hash(const char *s)
{
	guint64 h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h ? h : 1; /* 0 means "nothing published" */
}

/* Publish v's text on topic (retained) unless its hash is *last; 0 on success. */
static void publish_changed(struct p2m_device *d, const char *topic, const cJSON *v, guint64 *last,
			    bool force)
{
	const char *payload = p2m_json_print_buffered(v);
	guint64 h = payload_hash(payload);

	if ((force || h != *last) && publish(d, topic, payload, true) == 0)
		*last = h;
}

/* Read the dirty rows of topic t again into what it says; false when a row appeared or
 * went (an optional row seen for the first time): then the topic is built anew, in the
 * table's order. */
static bool update_rows(struct p2m_device *d, const struct p2m_view *v, enum p2m_topic t)
{
	const struct p2m_driver *drv = d->driver;

	for (size_t i = 0; i < drv->n_entities; i++) {
		const struct p2m_entity *e = &drv->entities[i];
		cJSON *val;

		if (!d->row_dirty[i] || p2m_entity_topic(e) != t)
			continue;
		d->row_dirty[i] = false;
		if (p2m_entity_visible(drv, e, v) !=
		    (cJSON_GetObjectItemCaseSensitive(d->topic_state[t], e->key) != NULL))
			return false;
		if (!p2m_entity_visible(drv, e, v))
			continue;
		val = p2m_entity_read(e, v);
		cJSON_ReplaceItemInObjectCaseSensitive(d->topic_state[t], e->key,
						       val ? val : cJSON_CreateNull());
	}
	return true;
}

/* The topics marked dirty, brought up to date and published when they changed. */
static void publish_state_now(struct p2m_device *d, bool force)
{
	struct p2m_view v = p2m_device_view(d);

	for (int t = 0; t < P2M_TOPICS; t++) {
		if (!d->state_dirty[t] && !force)
			continue;
		d->state_dirty[t] = false;
		if (force || d->topic_full[t] || !d->topic_state[t] ||
		    !update_rows(d, &v, (enum p2m_topic)t)) {
			cJSON_Delete(d->topic_state[t]);
			d->topic_state[t] =
			    p2m_entity_topic_state(d->driver, &v, (enum p2m_topic)t);
			d->topic_full[t] = false;
			for (size_t i = 0; i < d->driver->n_entities; i++)
				if ((int)p2m_entity_topic(&d->driver->entities[i]) == t)
					d->row_dirty[i] = false;
		}
		/* a family with no row on a topic publishes nothing there */
		if (d->topic_state[t]->child || d->state_hash[t])
			publish_changed(d, d->t_state[t], d->topic_state[t], &d->state_hash[t],
					force);
		/* Only the main topic changes with every reading, so only its object is worth
		 * its memory (some 3 KiB a device); the settings and diagnostics are built
		 * anew the rare time one of them changes (docs/BENCHMARKS.md). */
		if (t != P2M_TOPIC_STATE) {
			cJSON_Delete(d->topic_state[t]);
			d->topic_state[t] = NULL;
		}
	}
}

static gboolean on_debounce(gpointer data)
{
	struct p2m_device *d = data;

	d->debounce_timer = 0;
	publish_state_now(d, false);
	return G_SOURCE_REMOVE;
}

/* Which rows, and so which topics, may have changed: every one after a whole snapshot or
 * a command (changes NULL), else those whose inputs changed. */
static void mark_dirty(struct p2m_device *d, const struct p2m_changes *changes)
{
	bool all = !changes || changes->all;

	for (size_t i = 0; i < d->driver->n_entities; i++) {
		const struct p2m_entity *e = &d->driver->entities[i];
		enum p2m_topic t = p2m_entity_topic(e);

		if (!p2m_entity_has_state(e))
			continue;
		if (all) {
			d->state_dirty[t] = d->topic_full[t] = true;
		} else if (p2m_entity_depends(e, changes)) {
			d->state_dirty[t] = d->row_dirty[i] = true;
		}
	}
}

void p2m_device_publish_state(struct p2m_device *d, const struct p2m_changes *changes, bool force)
{
	if (d->retired)
		return;
	mark_dirty(d, changes);
	if (force || d->conf->debounce <= 0) {
		if (d->debounce_timer)
			g_source_remove(d->debounce_timer);
		d->debounce_timer = 0;
		publish_state_now(d, force);
	} else if (!d->debounce_timer) {
		/* a burst of changes: one state, the latest, once the burst is over */
		d->debounce_timer = g_timeout_add((guint)d->conf->debounce, on_debounce, d);
	}
}

void p2m_device_publish_report(struct p2m_device *d, bool force)
{
	cJSON *report;

	if (d->retired || !d->dev->child)
		return;
	report = p2m_entity_report(d->driver, d->dev);
	publish_changed(d, d->t_report, report, &d->report_hash, force);
	cJSON_Delete(report);
}

/* Firmware V1.0.4 can run its own Home Assistant link: by default publish no duplicate
 * entities for such a device (and withdraw ours). */
static bool skip_discovery(struct p2m_device *d)
{
	if (!d->driver->has_own_ha_link || !d->driver->has_own_ha_link(d->dev))
		return false;
	if (!d->own_ha_warned) {
		d->own_ha_warned = true;
		p2m_warn("device %s: the device runs its own Home Assistant MQTT link; %s",
			 d->conf->id,
			 d->conf->duplicate_ha_entities
			     ? "publishing ours too (duplicate_ha_entities = true)"
			     : "not publishing duplicate entities (set duplicate_ha_entities "
			       "= true to have them anyway)");
	}
	return !d->conf->duplicate_ha_entities;
}

void p2m_device_update_discovery(struct p2m_device *d, bool force)
{
	struct p2m_view v = p2m_device_view(d);
	char mac[32];
	const struct p2m_ha_device info = {
	    .id = d->conf->id,
	    .name = device_name(d),
	    .mac = d->driver->mac_address && d->driver->mac_address(d->dev, mac, sizeof(mac))
		       ? mac
		       : NULL,
	    .base_topic = d->env->cfg->mqtt.base_topic,
	    .fw_version = d->driver->fw_version(d->dev),
	    .host = d->host,
	    .port = d->driver->dials_in ? 0 : d->port,
	    .safety = &d->env->safety,
	    .view = &v,
	    .forget = !d->conf->host,
	};
	char *inputs, *payload;

	/* Not before the device has reported: only then are its firmware and whether it
	 * runs its own Home Assistant link known. */
	if (d->retired || !d->dev->child)
		return;
	/* Called for every frame: rebuilding the payload each time was most of the CPU
	 * with hundreds of devices (docs/BENCHMARKS.md), and it rarely changes. An empty
	 * retained payload removes our entities from Home Assistant. */
	inputs = skip_discovery(d) ? g_strdup("") : p2m_ha_discovery_inputs(d->driver, &info);
	if (!force && d->discovery_inputs && strcmp(inputs, d->discovery_inputs) == 0) {
		g_free(inputs);
		return;
	}
	if (*inputs) {
		cJSON *disc = p2m_ha_discovery(d->driver, &info);

		payload = p2m_json_print(disc);
		cJSON_Delete(disc);
	} else {
		payload = g_strdup(""); /* cJSON_free below: the same heap (json_util.h) */
	}
	/* Inputs kept only once that payload is out: a failed publish is retried at the
	 * next frame. */
	if (publish(d, d->t_discovery, payload, true) == 0) {
		g_free(d->discovery_inputs);
		d->discovery_inputs = inputs;
	} else {
		g_free(inputs);
	}
	cJSON_free(payload);
}

void p2m_device_publish_discovery(struct p2m_device *d)
{
	p2m_device_update_discovery(d, true);
}

/* Availability, then (once the device has told its state) the whole state. */
static void republish(struct p2m_device *d, bool discovery)
{
	if (d->retired)
		return;
	publish(d, d->t_avail, d->online ? "online" : "offline", true);
	if (discovery)
		p2m_device_update_discovery(d, true);
	if (d->dev->child) {
		p2m_device_publish_state(d, NULL, true);
		p2m_device_publish_report(d, true);
	}
}

void p2m_device_republish(struct p2m_device *d)
{
	republish(d, true);
}

void p2m_device_republish_state(struct p2m_device *d)
{
	republish(d, false);
}

void p2m_device_publish_offline(struct p2m_device *d)
{
	if (!d->retired)
		publish(d, d->t_avail, "offline", true);
}

void p2m_device_withdraw_id(struct p2m_mqtt *m, const struct p2m_config *cfg, const char *id)
{
	const char *base = cfg->mqtt.base_topic;
	char *t = p2m_ha_discovery_topic(cfg->mqtt.discovery_prefix, id);

	/* the topics p2m_device_new names, in the order p2m_device_withdraw empties them */
	p2m_mqtt_publish(m, t, "", true);
	g_free(t);
	for (int i = 0; i < P2M_TOPICS; i++) {
		t = g_strdup_printf("%s/%s%s", base, id, p2m_topic_suffix((enum p2m_topic)i));
		p2m_mqtt_publish(m, t, "", true);
		g_free(t);
	}
	t = g_strdup_printf("%s/%s/report", base, id);
	p2m_mqtt_publish(m, t, "", true);
	g_free(t);
	t = g_strdup_printf("%s/%s/availability", base, id);
	p2m_mqtt_publish(m, t, "", true);
	g_free(t);
}

void p2m_device_withdraw(struct p2m_device *d)
{
	d->retired = true;
	/* Empty retained payloads delete the retained messages and the HA device. */
	publish(d, d->t_discovery, "", true);
	for (int t = 0; t < P2M_TOPICS; t++)
		publish(d, d->t_state[t], "", true);
	publish(d, d->t_report, "", true);
	publish(d, d->t_avail, "", true);
}

void p2m_device_set_online(struct p2m_device *d, bool online)
{
	if (d->online == online)
		return;
	d->online = online;
	d->offline_since = online ? 0 : g_get_monotonic_time();
	publish(d, d->t_avail, online ? "online" : "offline", true);
	if (d->env->changed)
		d->env->changed(d->env->ud);
}

cJSON *p2m_device_info(const struct p2m_device *d)
{
	cJSON *o = cJSON_CreateObject();
	const char *fw = d->driver->fw_version(d->dev);

	cJSON_AddStringToObject(o, "id", d->conf->id);
	cJSON_AddStringToObject(o, "name", device_name(d));
	cJSON_AddStringToObject(o, "model", d->driver->model);
	if (d->host)
		cJSON_AddStringToObject(o, "host", d->host);
	else
		cJSON_AddNullToObject(o, "host");
	cJSON_AddNumberToObject(o, "port", d->port);
	cJSON_AddStringToObject(o, "source",
				d->driver->dials_in ? "dialin"
				: d->conf->host	    ? "config"
						    : "mdns");
	cJSON_AddBoolToObject(o, "online", d->online);
	if (fw)
		cJSON_AddStringToObject(o, "fw_version", fw);
	else
		cJSON_AddNullToObject(o, "fw_version");
	return o;
}

cJSON *p2m_device_health(const struct p2m_device *d)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "id", d->conf->id);
	cJSON_AddStringToObject(o, "source",
				d->driver->dials_in ? "dialin"
				: d->conf->host	    ? "config"
						    : "mdns");
	cJSON_AddBoolToObject(o, "online", d->online);
	if (!d->online) {
		gint64 offline_s = (g_get_monotonic_time() - d->offline_since) / G_USEC_PER_SEC;

		cJSON_AddNumberToObject(o, "offline_s", (double)offline_s);
	}
	cJSON_AddNumberToObject(o, "links", d->links);
	cJSON_AddNumberToObject(o, "reconnects", d->links > 1 ? d->links - 1 : 0);
	cJSON_AddNumberToObject(o, "frames", (double)d->frames);
	cJSON_AddNumberToObject(o, "publishes", (double)d->publishes);
	if (d->last_error)
		cJSON_AddStringToObject(o, "last_error", d->last_error);
	else
		cJSON_AddNullToObject(o, "last_error");
	return o;
}
