/* ha.c - see ha.h. Each row becomes one component whose state comes from the device's
 * one JSON state topic through a value template, and whose commands go to
 * <base>/<id>/set/<key>. Availability is shared at the root: the bridge's Will and the
 * device link, both required (mode "all"). Only keys each platform's schema accepts are
 * written, so the payload also passes strict validation. */
#include "panda2mqtt/ha.h"

#include "panda2mqtt/command.h"
#include "panda2mqtt/entity.h"
#include "panda2mqtt/events.h"

#include <glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

static char *fmt(const char *f, ...)
{
	char *s;
	va_list ap;

	va_start(ap, f);
	s = g_strdup_vprintf(f, ap);
	va_end(ap);
	return s;
}

static void add_str(cJSON *o, const char *k, const char *v)
{
	if (v)
		cJSON_AddStringToObject(o, k, v);
}

static void add_owned(cJSON *o, const char *k, char *v)
{
	cJSON_AddStringToObject(o, k, v);
	g_free(v);
}

char *p2m_ha_discovery_topic(const char *prefix, const char *id)
{
	return fmt("%s/device/%s/config", prefix, id);
}

/* The topic the row of this key is published on (entity.h: its category decides). */
static char *state_topic(const struct p2m_driver *d, const struct p2m_ha_device *dev,
			 const char *key)
{
	const struct p2m_entity *e = p2m_entity_find(d, key);

	return fmt("%s/%s%s", dev->base_topic, dev->id,
		   p2m_topic_suffix(e ? p2m_entity_topic(e) : P2M_TOPIC_STATE));
}

static void add_state(cJSON *c, const struct p2m_driver *d, const struct p2m_ha_device *dev,
		      const char *key, const char *topic_key, const char *template_key)
{
	add_owned(c, topic_key, state_topic(d, dev, key));
	add_owned(c, template_key, fmt("{{ value_json.%s }}", key));
}

static void add_command(cJSON *c, const struct p2m_ha_device *dev, const char *key,
			const char *topic_key)
{
	add_owned(c, topic_key, fmt("%s/%s/set/%s", dev->base_topic, dev->id, key));
}

static void add_list(cJSON *c, const char *key, const char *const *items)
{
	cJSON *a = cJSON_AddArrayToObject(c, key);

	for (size_t i = 0; items && items[i]; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(items[i]));
}

static void add_options(cJSON *c, const struct p2m_entity *e, const struct p2m_ha_device *dev)
{
	const char *buf[P2M_MAX_OPTIONS];
	const char *const *options = p2m_entity_options(e, dev->view, buf, P2M_MAX_OPTIONS);
	/* Not "none" or "unknown": Home Assistant reads those as its own unknown state. */
	static const char *const placeholder[] = {P2M_HA_NO_OPTIONS, NULL};

	/* Home Assistant refuses an empty option list: offer a placeholder until the
	 * device has reported something to choose from. */
	add_list(c, "options", options && options[0] ? options : placeholder);
}

static void add_climate(cJSON *c, const struct p2m_driver *d, const struct p2m_entity *e,
			const struct p2m_ha_device *dev)
{
	const struct p2m_climate_keys *k = e->climate;
	cJSON *modes = cJSON_AddArrayToObject(c, "modes");

	for (size_t i = 0; k->modes[i]; i++)
		cJSON_AddItemToArray(modes, cJSON_CreateString(k->modes[i]));
	add_state(c, d, dev, k->mode, "mode_state_topic", "mode_state_template");
	add_command(c, dev, k->mode, "mode_command_topic");
	add_state(c, d, dev, k->target, "temperature_state_topic", "temperature_state_template");
	add_command(c, dev, k->target, "temperature_command_topic");
	add_state(c, d, dev, k->current, "current_temperature_topic",
		  "current_temperature_template");
	if (k->action)
		add_state(c, d, dev, k->action, "action_topic", "action_template");
	cJSON_AddNumberToObject(c, "min_temp", e->min);
	cJSON_AddNumberToObject(c, "max_temp", p2m_entity_max(e, dev->safety));
	cJSON_AddNumberToObject(c, "temp_step", e->step);
	cJSON_AddNumberToObject(c, "precision", 0.1);
	cJSON_AddStringToObject(c, "temperature_unit", "C");
}

static cJSON *component(const struct p2m_driver *d, const struct p2m_entity *e,
			const struct p2m_ha_device *dev)
{
	static const char *const platforms[] = {
	    [P2M_CLIMATE] = "climate",
	    [P2M_SENSOR] = "sensor",
	    [P2M_BINARY_SENSOR] = "binary_sensor",
	    [P2M_SWITCH] = "switch",
	    [P2M_SELECT] = "select",
	    [P2M_NUMBER] = "number",
	    [P2M_BUTTON] = "button",
	    [P2M_TEXT] = "text",
	    [P2M_EVENT] = "event",
	    [P2M_UPDATE] = "update",
	};
	cJSON *c = cJSON_CreateObject();

	cJSON_AddStringToObject(c, "platform", platforms[e->platform]);
	add_owned(c, "unique_id", fmt("panda2mqtt_%s_%s", dev->id, e->key));
	if (e->name)
		cJSON_AddStringToObject(c, "name", e->name);
	else
		cJSON_AddNullToObject(c, "name"); /* the device's main feature: the device name */
	add_str(c, "device_class", e->device_class);
	add_str(c, "entity_category", e->category);
	add_str(c, "icon", e->icon);
	if (e->disabled)
		cJSON_AddFalseToObject(c, "enabled_by_default");
	if (e->attributes) {
		add_owned(c, "json_attributes_topic", state_topic(d, dev, e->attributes));
		add_owned(c, "json_attributes_template",
			  fmt("{{ value_json.%s | tojson }}", e->attributes));
	}

	switch (e->platform) {
	case P2M_CLIMATE:
		add_climate(c, d, e, dev);
		break;
	case P2M_SENSOR:
		add_state(c, d, dev, e->key, "state_topic", "value_template");
		add_str(c, "unit_of_measurement", e->unit);
		add_str(c, "state_class", e->state_class);
		if (e->vtype == P2M_V_ENUM)
			add_options(c, e, dev);
		break;
	case P2M_BINARY_SENSOR:
		add_state(c, d, dev, e->key, "state_topic", "value_template");
		cJSON_AddStringToObject(c, "payload_on", "ON");
		cJSON_AddStringToObject(c, "payload_off", "OFF");
		break;
	case P2M_SWITCH:
		add_state(c, d, dev, e->key, "state_topic", "value_template");
		add_command(c, dev, e->key, "command_topic");
		cJSON_AddStringToObject(c, "payload_on", "ON");
		cJSON_AddStringToObject(c, "payload_off", "OFF");
		break;
	case P2M_SELECT:
		add_state(c, d, dev, e->key, "state_topic", "value_template");
		add_command(c, dev, e->key, "command_topic");
		add_options(c, e, dev);
		break;
	case P2M_NUMBER:
		add_state(c, d, dev, e->key, "state_topic", "value_template");
		add_command(c, dev, e->key, "command_topic");
		cJSON_AddNumberToObject(c, "min", e->min);
		cJSON_AddNumberToObject(c, "max", p2m_entity_max(e, dev->safety));
		cJSON_AddNumberToObject(c, "step", e->step);
		cJSON_AddStringToObject(c, "mode", "box");
		add_str(c, "unit_of_measurement", e->unit);
		break;
	case P2M_BUTTON:
		add_command(c, dev, e->key, "command_topic");
		cJSON_AddStringToObject(c, "payload_press", "PRESS");
		break;
	case P2M_TEXT:
		/* A password field has a state too, or Home Assistant would keep what was typed
		 * as the entity's state, in its database: whether one is held, never the secret
		 * (entity.c); "" when none is, hence min 0. */
		add_state(c, d, dev, e->key, "state_topic", "value_template");
		add_command(c, dev, e->key, "command_topic");
		cJSON_AddStringToObject(c, "mode", e->password ? "password" : "text");
		cJSON_AddNumberToObject(c, "min", e->password ? 0 : 1);
		cJSON_AddNumberToObject(c, "max", e->max > 0 ? e->max : 64);
		break;
	case P2M_EVENT: {
		const char *types[P2M_MAX_EVENT_TYPES];

		add_owned(c, "state_topic", fmt("%s/%s/event", dev->base_topic, dev->id));
		add_list(c, "event_types", p2m_event_types(d, types, P2M_MAX_EVENT_TYPES));
		break;
	}
	case P2M_UPDATE:
		/* the row's value is the whole JSON state Home Assistant's update entity takes */
		add_owned(c, "state_topic", state_topic(d, dev, e->key));
		add_owned(c, "value_template", fmt("{{ value_json.%s | tojson }}", e->key));
		add_command(c, dev, e->key, "command_topic");
		cJSON_AddStringToObject(c, "payload_install", "install");
		break;
	case P2M_NONE:
		break;
	}
	return c;
}

static cJSON *forget_button(const struct p2m_ha_device *dev);

cJSON *p2m_ha_discovery(const struct p2m_driver *d, const struct p2m_ha_device *dev)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *device = cJSON_AddObjectToObject(root, "device");
	cJSON *ids = cJSON_AddArrayToObject(device, "identifiers");
	cJSON *origin = cJSON_AddObjectToObject(root, "origin");
	cJSON *avail = cJSON_AddArrayToObject(root, "availability");
	cJSON *components = cJSON_AddObjectToObject(root, "components");
	cJSON *a;

	char *ident = fmt("panda2mqtt_%s", dev->id);
	cJSON_AddItemToArray(ids, cJSON_CreateString(ident));
	g_free(ident);
	cJSON_AddStringToObject(device, "name", dev->name);
	cJSON_AddStringToObject(device, "manufacturer", d->manufacturer);
	cJSON_AddStringToObject(device, "model", d->model);
	add_str(device, "sw_version", dev->fw_version);
	if (dev->mac && dev->mac[0]) {
		cJSON *conns = cJSON_AddArrayToObject(device, "connections"), *mac;

		mac = cJSON_CreateArray();
		cJSON_AddItemToArray(mac, cJSON_CreateString("mac"));
		cJSON_AddItemToArray(mac, cJSON_CreateString(dev->mac));
		cJSON_AddItemToArray(conns, mac);
	}
	/* a device with a web page: one the gateway dials (those that dial in have port 0) */
	if (dev->host && dev->port > 0)
		add_owned(device, "configuration_url", fmt("http://%s:%d/", dev->host, dev->port));

	cJSON_AddStringToObject(origin, "name", "panda2mqtt");
	cJSON_AddStringToObject(origin, "sw_version", P2M_VERSION);

	a = cJSON_CreateObject();
	add_owned(a, "topic", fmt("%s/bridge/state", dev->base_topic));
	cJSON_AddItemToArray(avail, a);
	a = cJSON_CreateObject();
	add_owned(a, "topic", fmt("%s/%s/availability", dev->base_topic, dev->id));
	cJSON_AddItemToArray(avail, a);
	cJSON_AddStringToObject(root, "availability_mode", "all");

	for (size_t i = 0; i < d->n_entities; i++) {
		const struct p2m_entity *e = &d->entities[i];

		if (e->platform == P2M_NONE || !p2m_entity_visible(d, e, dev->view) ||
		    (e->platform == P2M_NUMBER && p2m_entity_max(e, dev->safety) < e->min))
			continue; /* never reported; or no value left under the [safety] cap */
		cJSON_AddItemToObject(components, e->key, component(d, e, dev));
	}
	if (dev->forget)
		cJSON_AddItemToObject(components, "forget", forget_button(dev));
	return root;
}

/* A button publishing payload on <base>/bridge/request/<verb>. */
static cJSON *request_button(const char *unique_id, const char *name, const char *icon,
			     const char *base, const char *verb, const char *payload)
{
	cJSON *c = cJSON_CreateObject();

	cJSON_AddStringToObject(c, "platform", "button");
	cJSON_AddStringToObject(c, "unique_id", unique_id);
	cJSON_AddStringToObject(c, "name", name);
	cJSON_AddStringToObject(c, "entity_category", "config");
	cJSON_AddStringToObject(c, "icon", icon);
	add_owned(c, "command_topic", fmt("%s/bridge/request/%s", base, verb));
	cJSON_AddStringToObject(c, "payload_press", payload);
	return c;
}

/* Available whenever the gateway is: a device that is gone (offline) is the one worth
 * forgetting, so the device's own availability must not disable the button. */
static void bridge_availability(cJSON *c, const char *base)
{
	cJSON *a = cJSON_AddArrayToObject(c, "availability"), *t = cJSON_CreateObject();

	add_owned(t, "topic", fmt("%s/bridge/state", base));
	cJSON_AddItemToArray(a, t);
}

static cJSON *forget_button(const struct p2m_ha_device *dev)
{
	char *uid = fmt("panda2mqtt_%s_forget", dev->id);
	char *payload = fmt("{\"id\":\"%s\"}", dev->id); /* ids need no JSON escaping */
	cJSON *c = request_button(uid, "Forget", "mdi:delete-outline", dev->base_topic,
				  "device/remove", payload);

	bridge_availability(c, dev->base_topic);
	g_free(uid);
	g_free(payload);
	return c;
}

static cJSON *bridge_component(const struct p2m_ha_bridge *b, const char *platform, const char *key,
			       const char *name)
{
	cJSON *c = cJSON_CreateObject();

	cJSON_AddStringToObject(c, "platform", platform);
	add_owned(c, "unique_id", fmt("panda2mqtt_%s_%s", b->id, key));
	cJSON_AddStringToObject(c, "name", name);
	return c;
}

/* A value of bridge/info (publish_info in bridge.c). */
static cJSON *bridge_info_sensor(const struct p2m_ha_bridge *b, const char *key, const char *name,
				 const char *icon)
{
	cJSON *c = bridge_component(b, "sensor", key, name);

	add_owned(c, "state_topic", fmt("%s/bridge/info", b->base_topic));
	add_owned(c, "value_template", fmt("{{ value_json.%s }}", key));
	cJSON_AddStringToObject(c, "icon", icon);
	bridge_availability(c, b->base_topic);
	return c;
}

cJSON *p2m_ha_bridge_discovery(const struct p2m_ha_bridge *b)
{
	static const char *const levels[] = {"error", "warning", "info", "debug", NULL};
	cJSON *root = cJSON_CreateObject();
	cJSON *device = cJSON_AddObjectToObject(root, "device");
	cJSON *origin = cJSON_AddObjectToObject(root, "origin");
	cJSON *comps = cJSON_AddObjectToObject(root, "components");
	cJSON *c;
	char *s;

	s = fmt("panda2mqtt_%s", b->id);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(device, "identifiers"), cJSON_CreateString(s));
	g_free(s);
	add_owned(device, "name", fmt("panda2mqtt bridge (%s)", b->base_topic));
	cJSON_AddStringToObject(device, "manufacturer", "panda2mqtt");
	cJSON_AddStringToObject(device, "model", "Bridge");
	cJSON_AddStringToObject(device, "sw_version", P2M_VERSION);
	cJSON_AddStringToObject(origin, "name", "panda2mqtt");
	cJSON_AddStringToObject(origin, "sw_version", P2M_VERSION);

	/* No availability of its own: offline is what it shows. */
	c = bridge_component(b, "binary_sensor", "connection_state", "Connection state");
	cJSON_AddStringToObject(c, "device_class", "connectivity");
	cJSON_AddStringToObject(c, "entity_category", "diagnostic");
	add_owned(c, "state_topic", fmt("%s/bridge/state", b->base_topic));
	cJSON_AddStringToObject(c, "payload_on", "online");
	cJSON_AddStringToObject(c, "payload_off", "offline");
	cJSON_AddItemToObject(comps, "connection_state", c);

	c = bridge_info_sensor(b, "version", "Version", "mdi:information-outline");
	cJSON_AddStringToObject(c, "entity_category", "diagnostic");
	cJSON_AddItemToObject(comps, "version", c);
	c = bridge_info_sensor(b, "devices_online", "Devices online", "mdi:lan-connect");
	cJSON_AddStringToObject(c, "state_class", "measurement");
	cJSON_AddItemToObject(comps, "devices_online", c);
	c = bridge_info_sensor(b, "devices_total", "Devices", "mdi:devices");
	cJSON_AddStringToObject(c, "state_class", "measurement");
	cJSON_AddItemToObject(comps, "devices_total", c);

	c = bridge_component(b, "select", "log_level", "Log level");
	cJSON_AddStringToObject(c, "entity_category", "config");
	cJSON_AddStringToObject(c, "icon", "mdi:format-list-bulleted");
	add_owned(c, "state_topic", fmt("%s/bridge/info", b->base_topic));
	cJSON_AddStringToObject(c, "value_template", "{{ value_json.log_level }}");
	add_owned(c, "command_topic", fmt("%s/bridge/request/log_level", b->base_topic));
	cJSON_AddStringToObject(c, "command_template", "{\"value\": \"{{ value }}\"}");
	add_list(c, "options", levels);
	bridge_availability(c, b->base_topic);
	cJSON_AddItemToObject(comps, "log_level", c);

	s = fmt("panda2mqtt_%s_reload", b->id);
	c = request_button(s, "Reload configuration", "mdi:reload", b->base_topic, "reload", "{}");
	g_free(s);
	bridge_availability(c, b->base_topic);
	cJSON_AddItemToObject(comps, "reload", c);
	if (b->browse) {
		s = fmt("panda2mqtt_%s_mdns_browse", b->id);
		c = request_button(s, "Search for devices", "mdi:magnify", b->base_topic,
				   "mdns/browse", "{}");
		g_free(s);
		bridge_availability(c, b->base_topic);
	} else {
		/* a component with its platform alone: Home Assistant removes the entity */
		c = cJSON_CreateObject();
		cJSON_AddStringToObject(c, "platform", "button");
	}
	cJSON_AddItemToObject(comps, "mdns_browse", c);
	return root;
}

bool p2m_ha_discovery_depends(const struct p2m_driver *d, const struct p2m_changes *c)
{
	if (c->all || !d->discovery_inputs)
		return p2m_changed(c);
	for (size_t i = 0; i < c->n; i++)
		if (p2m_inputs_list(d->discovery_inputs, c->root[i], c->field[i]))
			return true;
	for (size_t i = 0; i < d->n_entities; i++) {
		const struct p2m_entity *e = &d->entities[i];

		if ((e->options_fn || e->optional) && p2m_entity_depends(e, c))
			return true;
	}
	return false;
}

/* Every varying input of p2m_ha_discovery in one string; the rest comes from the table
 * and the configuration, which do not change while the gateway runs. */
/* One input, so that no two different lists of inputs make the same string: its length
 * first, then its bytes (whatever bytes a device puts in a name); "-" when absent, which
 * no length-prefixed string starts with. */
static void add_input(GString *s, const char *v)
{
	if (!v) {
		g_string_append_c(s, '-');
		return;
	}
	g_string_append_printf(s, "%zu:", strlen(v));
	g_string_append(s, v);
}

char *p2m_ha_discovery_inputs(const struct p2m_driver *d, const struct p2m_ha_device *dev)
{
	GString *s = g_string_sized_new(256);

	add_input(s, dev->fw_version);
	add_input(s, dev->host);
	g_string_append_printf(s, "%d:", dev->port);
	add_input(s, dev->name);
	add_input(s, dev->mac);
	g_string_append_printf(s, "%d:", dev->forget); /* a Forget button or not */
	/* which optional rows are published */
	for (size_t i = 0; i < d->n_entities; i++)
		g_string_append_c(s, p2m_entity_visible(d, &d->entities[i], dev->view) ? '1' : '0');
	/* each row's options, their number first */
	for (size_t i = 0; i < d->n_entities; i++) {
		const struct p2m_entity *e = &d->entities[i];
		const char *buf[P2M_MAX_OPTIONS];
		const char *const *options;
		size_t n = 0;

		if (!e->options_fn || e->platform == P2M_NONE)
			continue;
		options = p2m_entity_options(e, dev->view, buf, P2M_MAX_OPTIONS);
		while (options && options[n])
			n++;
		g_string_append_printf(s, "%zu#", n);
		for (size_t j = 0; j < n; j++)
			add_input(s, options[j]);
	}
	return g_string_free(s, FALSE);
}
