/* bridge.c - see bridge.h. */
#include "bridge.h"

#include "service.h"
#include "panda2mqtt/ha.h"
#include "panda2mqtt/json_util.h"

#include <glib.h>
#include <libwebsockets.h>

struct p2m_bridge {
	const struct p2m_config *cfg;
	struct p2m_mqtt *mqtt;
	struct p2m_registry *reg;
	char *t_info;
	guint info_idle;
};

struct p2m_bridge *p2m_bridge_new(const struct p2m_config *cfg, struct p2m_mqtt *m)
{
	struct p2m_bridge *b = g_new0(struct p2m_bridge, 1);

	b->cfg = cfg;
	b->mqtt = m;
	/* base_topic is never changed by a reload (gateway.c): the topic stays */
	b->t_info = g_strdup_printf("%s/bridge/info", cfg->mqtt.base_topic);
	return b;
}

void p2m_bridge_set_registry(struct p2m_bridge *b, struct p2m_registry *reg)
{
	b->reg = reg;
}

void p2m_bridge_free(struct p2m_bridge *b)
{
	if (!b)
		return;
	if (b->info_idle)
		g_source_remove(b->info_idle);
	g_free(b->t_info);
	g_free(b);
}

static void count(const struct p2m_bridge *b, size_t *online, size_t *total)
{
	*online = *total = 0;
	for (size_t i = 0; b->reg && i < p2m_registry_count(b->reg); i++) {
		(*total)++;
		*online += p2m_device_is_online(p2m_registry_at(b->reg, i));
	}
}

char *p2m_bridge_status(const struct p2m_bridge *b)
{
	size_t online, total;

	count(b, &online, &total);
	return g_strdup_printf("%zu of %zu device(s) online", online, total);
}

static gboolean publish_info(gpointer data)
{
	struct p2m_bridge *b = data;
	cJSON *info = cJSON_CreateObject();
	cJSON *devs;
	size_t online, total;
	char *s;

	b->info_idle = 0;
	count(b, &online, &total);
	cJSON_AddStringToObject(info, "version", P2M_VERSION);
	cJSON_AddStringToObject(info, "base_topic", b->cfg->mqtt.base_topic);
	cJSON_AddStringToObject(info, "discovery_prefix", b->cfg->mqtt.discovery_prefix);
	cJSON_AddStringToObject(info, "log_level", p2m_log_level_name(p2m_log_get_level()));
	cJSON_AddNumberToObject(info, "devices_online", (double)online);
	cJSON_AddNumberToObject(info, "devices_total", (double)total);
	devs = cJSON_AddArrayToObject(info, "devices");
	for (size_t i = 0; b->reg && i < p2m_registry_count(b->reg); i++)
		cJSON_AddItemToArray(devs, p2m_device_info(p2m_registry_at(b->reg, i)));
	s = p2m_json_print(info);
	p2m_mqtt_publish(b->mqtt, b->t_info, s, true);
	cJSON_free(s);
	cJSON_Delete(info);
	s = p2m_bridge_status(b);
	p2m_service_status(s);
	g_free(s);
	return G_SOURCE_REMOVE;
}

void p2m_bridge_changed(struct p2m_bridge *b)
{
	if (!b->info_idle)
		b->info_idle = g_idle_add(publish_info, b);
}

void p2m_bridge_publish_discovery(struct p2m_bridge *b)
{
	char *id = p2m_config_bridge_id(b->cfg);
	char *topic = p2m_ha_discovery_topic(b->cfg->mqtt.discovery_prefix, id);
	const struct p2m_ha_bridge hb = {
	    .id = id,
	    .base_topic = b->cfg->mqtt.base_topic,
	    .browse = b->cfg->discovery.mdns,
	};
	cJSON *disc = p2m_ha_bridge_discovery(&hb);
	char *s = p2m_json_print(disc);

	p2m_mqtt_publish(b->mqtt, topic, s, true);
	cJSON_free(s);
	cJSON_Delete(disc);
	g_free(topic);
	g_free(id);
}

void p2m_bridge_set_log_level(struct p2m_bridge *b, enum p2m_log_level level)
{
	bool changed = level != p2m_log_get_level();

	/* said at info while the old level or the new one shows info */
	if (changed && level < P2M_LOG_INFO)
		p2m_info("log level %s", p2m_log_level_name(level));
	p2m_log_set_level(level);
	if (changed && level >= P2M_LOG_INFO)
		p2m_info("log level %s", p2m_log_level_name(level));
	/* libwebsockets' own lines: warnings too when debugging (as at start-up) */
	lws_set_log_level(level >= P2M_LOG_DEBUG ? LLL_ERR | LLL_WARN : LLL_ERR, NULL);
	p2m_bridge_changed(b);
}
