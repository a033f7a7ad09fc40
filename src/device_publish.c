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

	if (d->driver->dials_in) {
		img = p2m_firmware_latest(d->env->firmware, d->driver->name);
		d->update.latest = img ? img->version : NULL;
		d->update.path = img ? img->path : NULL;
	}
	return (struct p2m_view){
	    .dev = d->dev,
	    .local = d->local,
	    .now = (double)g_get_real_time() / G_USEC_PER_SEC,
	    .read_at = d->read_at,
	    .update = d->driver->dials_in ? &d->update : NULL,
	    .seen = d->seen,
	};
}

const char *p2m_device_name(const struct p2m_device *d)
{
	const char *own = d->driver->display_name ? d->driver->display_name(d->dev) : NULL;

	if (d->conf->name)
		return d->conf->name;
	return own ? own : d->driver->model;
}

static void publish(struct p2m_device *d, const char *topic, const char *payload, bool retain)
{
	p2m_mqtt_publish(d->env->mqtt, topic, payload, retain);
}

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

/* The state, unless it is what was last published (or force). */
void p2m_device_publish_state(struct p2m_device *d, bool force)
{
	struct p2m_view v = p2m_device_view(d);
	cJSON *state = p2m_entity_state(d->driver, &v);
	char *payload = p2m_json_print(state);
	char *sum = g_compute_checksum_for_string(G_CHECKSUM_SHA256, payload, -1);

	cJSON_Delete(state);
	if ((force || !d->published_state || strcmp(sum, d->published_state) != 0) &&
	    p2m_mqtt_publish(d->env->mqtt, d->t_state, payload, true) == 0) {
		g_free(d->published_state);
		d->published_state = g_steal_pointer(&sum);
	}
	g_free(sum);
	cJSON_free(payload);
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
	    .name = p2m_device_name(d),
	    .mac = d->driver->mac_address && d->driver->mac_address(d->dev, mac, sizeof(mac))
		       ? mac
		       : NULL,
	    .base_topic = d->env->cfg->mqtt.base_topic,
	    .fw_version = d->driver->fw_version(d->dev),
	    .host = d->host,
	    .port = d->driver->dials_in ? 0 : d->port,
	    .safety = &d->env->safety,
	    .view = &v,
	};
	char *inputs, *payload;

	/* Not before the device has reported: only then are its firmware and whether it
	 * runs its own Home Assistant link known. */
	if (d->retired || !d->dev->child)
		return;
	/* Called for every frame: rebuilding the payload each time was most of the CPU
	 * with hundreds of devices (docs/BENCHMARKS.md), and it rarely changes. An empty
	 * retained payload removes our entities from Home Assistant. */
	inputs = skip_discovery(d) ? strdup("") : p2m_ha_discovery_inputs(d->driver, &info);
	if (!force && d->discovery_inputs && strcmp(inputs, d->discovery_inputs) == 0) {
		free(inputs);
		return;
	}
	if (*inputs) {
		cJSON *disc = p2m_ha_discovery(d->driver, &info);

		payload = p2m_json_print(disc);
		cJSON_Delete(disc);
	} else {
		payload = strdup("");
	}
	/* Inputs kept only once that payload is out: a failed publish is retried at the
	 * next frame. */
	if (p2m_mqtt_publish(d->env->mqtt, d->t_discovery, payload, true) == 0) {
		free(d->discovery_inputs);
		d->discovery_inputs = inputs;
	} else {
		free(inputs);
	}
	cJSON_free(payload);
}

void p2m_device_publish_discovery(struct p2m_device *d)
{
	p2m_device_update_discovery(d, true);
}

void p2m_device_republish(struct p2m_device *d)
{
	if (d->retired)
		return;
	publish(d, d->t_avail, d->online ? "online" : "offline", true);
	p2m_device_update_discovery(d, true);
	if (d->dev->child)
		p2m_device_publish_state(d, true);
}

void p2m_device_publish_offline(struct p2m_device *d)
{
	if (!d->retired)
		publish(d, d->t_avail, "offline", true);
}

void p2m_device_withdraw(struct p2m_device *d)
{
	d->retired = true;
	/* Empty retained payloads delete the retained messages and the HA device. */
	publish(d, d->t_discovery, "", true);
	publish(d, d->t_state, "", true);
	publish(d, d->t_avail, "", true);
}

void p2m_device_set_online(struct p2m_device *d, bool online)
{
	if (d->online == online)
		return;
	d->online = online;
	publish(d, d->t_avail, online ? "online" : "offline", true);
	if (d->env->changed)
		d->env->changed(d->env->ud);
}

cJSON *p2m_device_info(const struct p2m_device *d)
{
	cJSON *o = cJSON_CreateObject();
	const char *fw = d->driver->fw_version(d->dev);

	cJSON_AddStringToObject(o, "id", d->conf->id);
	cJSON_AddStringToObject(o, "name", p2m_device_name(d));
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
