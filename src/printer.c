/* printer.c - see printer.h. */
#include "printer.h"

#include "panda2mqtt/entity.h"
#include "panda2mqtt/ha.h"
#include "panda2mqtt/json_util.h"
#include "panda2mqtt/log.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

struct p2m_printer {
	const struct p2m_config *cfg;
	struct p2m_mqtt *mqtt;
	struct p2m_printer_source *src;
	char *t_state, *t_avail, *t_discovery, *t_request;
	char *last_state; /* what was published last on t_state (publish only changes) */
	bool online_sent;
	guint state_idle;
	guint report_timer;
	guint stale_timer;
	gint64 heard_at; /* monotonic µs of the last source message; 0 = none yet */
	unsigned sequence;
};

const struct p2m_printer_source *p2m_printer_get_source(const struct p2m_printer *p)
{
	return p ? p->src : NULL;
}

static struct p2m_view view_of(const struct p2m_printer *p)
{
	struct p2m_view v = {.dev = p2m_printer_source_report(p->src),
			     .now = (double)g_get_real_time() / G_USEC_PER_SEC};
	return v;
}

static void publish_state(struct p2m_printer *p)
{
	struct p2m_view v = view_of(p);
	cJSON *state;
	char *s;

	if (!p->cfg->printer.ha_device || !p2m_printer_source_known(p->src) ||
	    !p2m_mqtt_connected(p->mqtt))
		return;
	if (!p->online_sent && p2m_mqtt_publish(p->mqtt, p->t_avail, "online", true) == 0)
		p->online_sent = true;
	state = p2m_entity_state(&p2m_printer_driver, &v);
	s = p2m_json_print(state);
	cJSON_Delete(state);
	if (p->last_state && strcmp(p->last_state, s) == 0) {
		cJSON_free(s);
		return;
	}
	if (p2m_mqtt_publish(p->mqtt, p->t_state, s, true) == 0) {
		cJSON_free(p->last_state);
		p->last_state = s;
	} else {
		cJSON_free(s);
	}
}

static gboolean state_idle(gpointer data)
{
	struct p2m_printer *p = data;

	p->state_idle = 0;
	publish_state(p);
	return G_SOURCE_REMOVE;
}

void p2m_printer_publish_discovery(struct p2m_printer *p)
{
	struct p2m_view v;
	struct p2m_ha_device hd;
	cJSON *disc;
	char *s;

	if (!p || !p->cfg->printer.ha_device)
		return;
	v = view_of(p);
	hd = (struct p2m_ha_device){.id = p->cfg->printer.id,
				    .name = p->cfg->printer.name,
				    .base_topic = p->cfg->mqtt.base_topic,
				    .safety = &p->cfg->safety,
				    .view = &v};
	disc = p2m_ha_discovery(&p2m_printer_driver, &hd);
	s = p2m_json_print(disc);
	cJSON_Delete(disc);
	p2m_mqtt_publish(p->mqtt, p->t_discovery, s, true);
	cJSON_free(s);
}

/* The virtual Bambu printer's report: what is known, in the report's own shape. */
static void publish_report(struct p2m_printer *p)
{
	const cJSON *known =
	    cJSON_GetObjectItemCaseSensitive(p2m_printer_source_report(p->src), "print");
	cJSON *r, *print;
	char *s;

	if (!p2m_printer_source_known(p->src) || !p2m_mqtt_connected(p->mqtt))
		return;
	r = cJSON_CreateObject();
	print = cJSON_AddObjectToObject(r, "print");
	p2m_json_merge(print, known);
	if (!cJSON_GetObjectItemCaseSensitive(print, "gcode_state"))
		cJSON_AddStringToObject(print, "gcode_state", "IDLE");
	cJSON_AddStringToObject(print, "command", "push_status");
	cJSON_AddNumberToObject(print, "msg", 0);
	cJSON_AddNumberToObject(print, "sequence_id", ++p->sequence);
	s = p2m_json_print(r);
	cJSON_Delete(r);
	p2m_mqtt_publish(p->mqtt, p->cfg->bambu_virtual.topic, s, false);
	cJSON_free(s);
}

/* [printer] stale_timeout: a source that went quiet is forgotten, so that the virtual
 * Moonraker says startup with the bed at 0 °C, the virtual Bambu printer stops reporting
 * and the printer's Home Assistant device goes offline, instead of a printer switched
 * off keeping its last hot bed (and the heater's Auto mode) forever. */
static gboolean stale_check(gpointer data)
{
	struct p2m_printer *p = data;
	gint64 limit = (gint64)p->cfg->printer.stale_timeout * G_USEC_PER_SEC;

	if (!p->heard_at || g_get_monotonic_time() - p->heard_at < limit)
		return G_SOURCE_CONTINUE;
	p->heard_at = 0;
	if (!p2m_printer_source_forget(p->src))
		return G_SOURCE_CONTINUE;
	p2m_warn("printer: nothing on its topics for %d s; its values are forgotten until it "
		 "reports again",
		 p->cfg->printer.stale_timeout);
	if (p->cfg->printer.ha_device && p2m_mqtt_connected(p->mqtt)) {
		p2m_mqtt_publish(p->mqtt, p->t_avail, "offline", true);
		p->online_sent = false;
	}
	return G_SOURCE_CONTINUE;
}

static gboolean report_timer(gpointer data)
{
	publish_report(data);
	return G_SOURCE_CONTINUE;
}

struct p2m_printer *p2m_printer_new(const struct p2m_config *cfg, struct p2m_mqtt *m)
{
	const struct p2m_printer_conf *c = &cfg->printer;
	struct p2m_printer *p;

	if (!c->enabled)
		return NULL;
	p = g_new0(struct p2m_printer, 1);
	p->cfg = cfg;
	p->mqtt = m;
	p->src = p2m_printer_source_new(c);
	p->t_state = g_strdup_printf("%s/%s", cfg->mqtt.base_topic, c->id);
	p->t_avail = g_strdup_printf("%s/%s/availability", cfg->mqtt.base_topic, c->id);
	p->t_discovery = p2m_ha_discovery_topic(cfg->mqtt.discovery_prefix, c->id);
	if (c->bambu_report_topic)
		p2m_mqtt_add_subscription(m, c->bambu_report_topic);
	for (int i = 0; i < P2M_SRC_COUNT; i++)
		if (c->src[i].topic)
			p2m_mqtt_add_subscription(m, c->src[i].topic);
	if (cfg->bambu_virtual.topic) {
		/* device/<serial>/request: the Panda Breath asks for a full report (pushall) */
		p->t_request = g_strdup_printf("device/%s/request", cfg->bambu_virtual.serial);
		p2m_mqtt_add_subscription(m, p->t_request);
		p->report_timer =
		    g_timeout_add_seconds((guint)cfg->bambu_virtual.interval, report_timer, p);
	}
	if (c->stale_timeout)
		p->stale_timer = g_timeout_add_seconds(1, stale_check, p);
	p2m_info("printer: reading %s%s%s%s", c->bambu_report_topic ? c->bambu_report_topic : "",
		 c->bambu_report_topic && c->src[P2M_SRC_BED].topic ? " and " : "",
		 c->src[P2M_SRC_BED].topic ? c->src[P2M_SRC_BED].topic : "",
		 cfg->bambu_virtual.topic ? "; publishing the virtual Bambu printer" : "");
	return p;
}

void p2m_printer_free(struct p2m_printer *p)
{
	if (!p)
		return;
	if (p->state_idle)
		g_source_remove(p->state_idle);
	if (p->report_timer)
		g_source_remove(p->report_timer);
	if (p->stale_timer)
		g_source_remove(p->stale_timer);
	p2m_printer_source_free(p->src);
	cJSON_free(p->last_state);
	g_free(p->t_state);
	g_free(p->t_avail);
	g_free(p->t_discovery);
	g_free(p->t_request);
	g_free(p);
}

bool p2m_printer_on_message(struct p2m_printer *p, const char *topic, const char *payload,
			    size_t len)
{
	if (!p)
		return false;
	if (p->t_request && strcmp(topic, p->t_request) == 0) {
		/* Only a pushall is answered; commands to a printer that is not there are
		 * dropped (the real one, if any, is not on this topic). */
		if (len < 4096 && memmem(payload, len, "pushall", 7))
			publish_report(p);
		return true;
	}
	if (!p2m_printer_source_wants(p->src, topic))
		return false;
	p->heard_at = g_get_monotonic_time();
	if (p2m_printer_source_feed(p->src, topic, payload, len) && !p->state_idle)
		p->state_idle = g_idle_add(state_idle, p);
	return true;
}

void p2m_printer_on_connect(struct p2m_printer *p)
{
	if (!p)
		return;
	p->online_sent = false;
	cJSON_free(p->last_state);
	p->last_state = NULL;
	p2m_printer_publish_discovery(p);
	publish_state(p);
}

void p2m_printer_publish_offline(struct p2m_printer *p)
{
	if (p && p->cfg->printer.ha_device && p2m_mqtt_connected(p->mqtt))
		p2m_mqtt_publish(p->mqtt, p->t_avail, "offline", true);
}
