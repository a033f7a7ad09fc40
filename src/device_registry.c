/* device_registry.c - see device_registry.h.
 *
 * A reload (p2m_registry_reload) compares each device's [device] section with the new
 * one: equal, the device keeps its link and only takes the new section; different, it is
 * made anew (a found device at the address it has, a configured one at the new one; one
 * that dials in is let go, and is taken again when it does); gone, it is withdrawn.
 *
 * Forgetting (device/remove, [discovery] forget_after) withdraws a found or dialled-in
 * device: its entities go from Home Assistant and its retained topics from the broker,
 * and it is served again only when it is found or dials in again. Ids whose retained
 * availability the broker still holds from an earlier run ("gone": not served now, not
 * configured) can be forgotten the same way, and forget_after counts for them from when
 * this run first heard of them. Configured devices are never forgotten: they go with
 * their section.
 *
 * Matching a found device to one already served, in order:
 *  1. the same id: a found device seen before, or a [device] section named by that id;
 *  2. a served device whose own reports give the same id (a configured device that a
 *     browse finds too): the MAC is the same, so it is the same heater;
 *  3. a served device dialled at the same address and port that has not reported yet
 *     (one that has reported another id lost that address to a new device).
 * A configured device keeps its configured address whatever DNS-SD says (the admin
 * chose it); a found one follows its record. A device that dials in (dialin.c) is
 * matched by its id alone and follows its connection; a [device <id>] section without
 * host gives it its name and options, as for a found device. */
#include "device_registry.h"

#include "dialin.h"
#include "dnssd_probe.h"
#include "ws.h"
#include "panda2mqtt/families.h"
#include "panda2mqtt/log.h"

#include <glib.h>
#include <math.h>
#include <string.h>
#include <strings.h>

/* A .local device that is offline asks Avahi for its address again this often. */
#define RESOLVE_AGAIN_S 30
/* forget_after is checked this many times within its span, at least once a second and at
 * most once an hour */
#define FORGET_CHECKS 20

struct entry {
	struct p2m_device *dev;
	struct p2m_device_conf *own; /* the conf of a found device without a section */
	const struct p2m_device_conf *conf;
	bool moved_warned;
	bool doomed; /* a duplicate, freed from an idle callback */
};

struct p2m_registry {
	struct p2m_device_env env; /* the gateway's, with identified pointing here */
	GPtrArray *entries;
	struct p2m_dnssd_probe *disc;
	struct p2m_dialin *dialin;
	guint resolve_timer;
	guint reap_idle;
	guint forget_timer;
	GHashTable *gone; /* id -> gint64 *: monotonic us this run first heard of it */
};

static void entry_free(gpointer p)
{
	struct entry *e = p;

	p2m_device_free(e->dev);
	if (e->own) {
		g_free(e->own->id);
		g_free(e->own->name);
		g_free(e->own);
	}
	g_free(e);
}

static bool is_local_name(const char *host)
{
	size_t n = strlen(host);

	return n > 6 && strcasecmp(host + n - 6, ".local") == 0;
}

static struct entry *match(struct p2m_registry *reg, const char *id, const char *addr, int port)
{
	char hw[P2M_ID_MAX + 1];

	for (guint i = 0; i < reg->entries->len; i++) {
		struct entry *e = g_ptr_array_index(reg->entries, i);
		if (!e->doomed && strcmp(p2m_device_id(e->dev), id) == 0)
			return e;
	}
	for (guint i = 0; i < reg->entries->len; i++) {
		struct entry *e = g_ptr_array_index(reg->entries, i);
		if (!e->doomed && p2m_device_hw_id(e->dev, hw, sizeof(hw)) && strcmp(hw, id) == 0)
			return e;
	}
	for (guint i = 0; i < reg->entries->len; i++) {
		struct entry *e = g_ptr_array_index(reg->entries, i);
		/* Not one that reported another id: the address went to a new device. */
		if (!e->doomed && p2m_device_at(e->dev, addr, port) &&
		    !p2m_device_hw_id(e->dev, hw, sizeof(hw)))
			return e;
	}
	return NULL;
}

/* A new entry for a device that was not configured by address: its [device <id>] section
 * if there is one, else defaults (no name: the device's own name is shown, device.c). */
static struct entry *entry_for(struct p2m_registry *reg, const char *id)
{
	struct entry *e = g_new0(struct entry, 1);
	const struct p2m_device_conf *pinned = p2m_config_device(reg->env.cfg, id);

	if (pinned) {
		e->conf = pinned;
	} else {
		e->own = g_new0(struct p2m_device_conf, 1);
		p2m_config_device_defaults(e->own);
		e->own->id = g_strdup(id);
		e->conf = e->own;
	}
	return e;
}

static void add(struct p2m_registry *reg, struct entry *e, const struct p2m_driver *drv,
		const char *host, int port)
{
	g_hash_table_remove(reg->gone, e->conf->id); /* served again */
	e->dev = p2m_device_new(&reg->env, e->conf, drv, host, port);
	g_ptr_array_add(reg->entries, e);
	if (reg->env.changed)
		reg->env.changed(reg->env.ud);
}

static void reap_now(struct p2m_registry *reg)
{
	for (guint i = reg->entries->len; i-- > 0;)
		if (((struct entry *)g_ptr_array_index(reg->entries, i))->doomed)
			g_ptr_array_remove_index(reg->entries, i);
}

static gboolean reap(gpointer data)
{
	struct p2m_registry *reg = data;

	reg->reap_idle = 0;
	reap_now(reg);
	if (reg->env.changed)
		reg->env.changed(reg->env.ud);
	return G_SOURCE_REMOVE;
}

static void doom(struct p2m_registry *reg, struct entry *e)
{
	e->doomed = true;
	if (!reg->reap_idle)
		reg->reap_idle = g_idle_add(reap, reg);
}

/* A device's first report names the hardware. The same heater may already be served
 * under another id: configured by address and found by a browse before the configured
 * one could report (a .local name still resolving, a device that was busy). The
 * configured one stays. */
static bool on_identified(struct p2m_registry *reg, struct p2m_device *d)
{
	char hw[P2M_ID_MAX + 1], other[P2M_ID_MAX + 1];
	struct entry *me = NULL;

	if (!p2m_device_hw_id(d, hw, sizeof(hw)))
		return true;
	for (guint i = 0; i < reg->entries->len; i++) {
		struct entry *e = g_ptr_array_index(reg->entries, i);
		if (e->dev == d)
			me = e;
	}
	for (guint i = 0; me && i < reg->entries->len; i++) {
		struct entry *e = g_ptr_array_index(reg->entries, i);
		if (e == me || e->doomed ||
		    (strcmp(p2m_device_id(e->dev), hw) != 0 &&
		     !(p2m_device_hw_id(e->dev, other, sizeof(other)) && strcmp(other, hw) == 0)))
			continue;
		if (me->conf->host && !e->conf->host) {
			p2m_info("device %s: the device found as %s is this configured one; "
				 "dropping %s",
				 p2m_device_id(d), p2m_device_id(e->dev), p2m_device_id(e->dev));
			p2m_device_withdraw(e->dev);
			doom(reg, e);
			return true;
		}
		p2m_warn("device %s: is the same device as %s (%s); serving it once, as %s",
			 p2m_device_id(d), p2m_device_id(e->dev), hw, p2m_device_id(e->dev));
		doom(reg, me);
		return false;
	}
	return true;
}

/* A [device id] section whose type names another family than the one a device found
 * under that id turned out to be: said once per call, and the device is not served. */
static bool type_refused(const struct p2m_registry *reg, const char *id,
			 const struct p2m_driver *drv, const char *how)
{
	const struct p2m_device_conf *c = p2m_config_device(reg->env.cfg, id);

	if (!c || !c->type || strcmp(c->type, drv->name) == 0)
		return false;
	p2m_warn("device %s: %s is a %s (%s), but its [device] section says type = %s; not "
		 "served",
		 id, how, drv->model, drv->name, c->type);
	return true;
}

static void on_found(void *ud, const struct p2m_found *f)
{
	struct p2m_registry *reg = ud;
	char id[P2M_ID_MAX + 1];
	struct entry *e;

	if (!f->driver->device_id || !f->driver->device_id(f->snapshot, id, sizeof(id))) {
		p2m_warn("mdns: the %s at %s:%d reports no MAC address or hostname to name it "
			 "by; add it as a [device] with its host",
			 f->driver->model, f->addr, f->port);
		return;
	}
	e = match(reg, id, f->addr, f->port);
	if (e && e->conf->host) {
		if (!p2m_device_at(e->dev, f->addr, f->port) && !is_local_name(e->conf->host) &&
		    !e->moved_warned) {
			e->moved_warned = true;
			p2m_warn("device %s: found by mdns at %s:%d, but its [device] section "
				 "says %s:%d; keeping the configured address",
				 p2m_device_id(e->dev), f->addr, f->port, e->conf->host,
				 e->conf->port);
		}
		return;
	}
	if (e) {
		p2m_device_set_address(e->dev, f->addr, f->port);
		return;
	}
	if (type_refused(reg, id, f->driver, "the device found by mdns"))
		return;
	e = entry_for(reg, id);
	p2m_info("device %s: found by mdns as '%s' at %s:%d", id, f->service, f->addr, f->port);
	add(reg, e, f->driver, f->addr, f->port);
}

/* Another dial-in device may register while fewer than [dialin] max_devices do; one
 * already known, or named by a [device] section, always may. */
static bool dialin_admit(void *ud, const char *id)
{
	struct p2m_registry *reg = ud;
	int known = 0;

	if (p2m_registry_find(reg, id, strlen(id)) || p2m_config_device(reg->env.cfg, id))
		return true;
	for (guint i = 0; i < reg->entries->len; i++) {
		struct entry *e = g_ptr_array_index(reg->entries, i);
		known += !e->doomed && p2m_device_driver(e->dev)->dials_in;
	}
	return known < reg->env.cfg->dialin.max_devices;
}

/* A device that dialled in said who it is (dialin.c settled any rival claim). */
static struct p2m_device *dialin_find(void *ud, const char *id)
{
	struct p2m_registry *reg = ud;

	return p2m_registry_find(reg, id, strlen(id));
}

static void dialin_adopt(void *ud, const struct p2m_driver *drv, const char *id, struct p2m_ws *ws,
			 const char *first, size_t len)
{
	struct p2m_registry *reg = ud;
	struct entry *e = match(reg, id, "", -1);

	if (e && p2m_device_driver(e->dev) != drv) {
		p2m_warn("dialin: %s is served as a %s, and a %s now claims its id; refused", id,
			 p2m_device_driver(e->dev)->model, drv->model);
		p2m_ws_close(ws, LWS_CLOSE_STATUS_POLICY_VIOLATION);
		return;
	}
	if (!e) {
		if (type_refused(reg, id, drv, "the device dialling in")) {
			p2m_ws_close(ws, LWS_CLOSE_STATUS_POLICY_VIOLATION);
			return;
		}
		e = entry_for(reg, id);
		add(reg, e, drv, p2m_ws_peer(ws), 0);
	}
	p2m_device_attach(e->dev, ws, first, len);
}

static void on_host(void *ud, const char *host, const char *addr)
{
	struct p2m_registry *reg = ud;

	if (!addr)
		return; /* logged by mdns.c; asked again while the device is offline */
	for (guint i = 0; i < reg->entries->len; i++) {
		struct entry *e = g_ptr_array_index(reg->entries, i);
		if (e->conf->host && strcasecmp(e->conf->host, host) == 0)
			p2m_device_set_address(e->dev, addr, e->conf->port);
	}
}

/* An address learnt for a .local name may go stale: ask again while offline. */
static gboolean on_resolve_again(gpointer data)
{
	struct p2m_registry *reg = data;

	for (guint i = 0; i < reg->entries->len; i++) {
		struct entry *e = g_ptr_array_index(reg->entries, i);
		if (e->conf->host && is_local_name(e->conf->host) && !p2m_device_is_online(e->dev))
			p2m_dnssd_probe_resolve_host(reg->disc, e->conf->host);
	}
	return G_SOURCE_CONTINUE;
}

/* A [device] section with a host: its device, dialled (or its .local name looked up). */
static void add_configured(struct p2m_registry *reg, const struct p2m_device_conf *c)
{
	struct entry *e = g_new0(struct entry, 1);

	e->conf = c;
	/* its type (checked when the configuration was read: main.c); a found device's
	 * family comes from its snapshot */
	add(reg, e, p2m_family_of(c->type), is_local_name(c->host) ? NULL : c->host, c->port);
}

static bool any_local_name(const struct p2m_config *cfg)
{
	for (size_t i = 0; i < cfg->n_devices; i++)
		if (cfg->devices[i].host && is_local_name(cfg->devices[i].host))
			return true;
	return false;
}

/* DNS-SD browsing (mdns on) and .local names, as the configuration asks; browse_was:
 * whether the running browser (if any) browses. */
static void start_discovery(struct p2m_registry *reg, bool browse_was)
{
	static const struct p2m_dnssd_probe_callbacks cb = {
	    .on_found = on_found,
	    .on_host = on_host,
	};
	const struct p2m_config *cfg = reg->env.cfg;
	bool local_names = any_local_name(cfg);

	if (reg->disc &&
	    (browse_was != cfg->discovery.mdns || !(cfg->discovery.mdns || local_names))) {
		p2m_dnssd_probe_free(reg->disc);
		reg->disc = NULL;
	}
	if (!reg->disc && (cfg->discovery.mdns || local_names))
		reg->disc = p2m_dnssd_probe_new(reg->env.lws, cfg->discovery.mdns, &cb, reg);
	if (local_names && !reg->resolve_timer) {
		on_resolve_again(reg);
		reg->resolve_timer = g_timeout_add_seconds(RESOLVE_AGAIN_S, on_resolve_again, reg);
	} else if (!local_names && reg->resolve_timer) {
		g_source_remove(reg->resolve_timer);
		reg->resolve_timer = 0;
	}
}

static gboolean on_forget_check(gpointer data);

/* The [discovery] forget_after check, every FORGET_CHECKS-th of its span. */
static void start_forgetting(struct p2m_registry *reg)
{
	double span_s = reg->env.cfg->discovery.forget_after * 86400;

	if (reg->forget_timer)
		g_source_remove(reg->forget_timer);
	reg->forget_timer = 0;
	if (span_s > 0)
		reg->forget_timer = g_timeout_add_seconds(
		    (guint)CLAMP(span_s / FORGET_CHECKS, 1, 3600), on_forget_check, reg);
}

struct p2m_registry *p2m_registry_new(const struct p2m_device_env *env)
{
	const struct p2m_config *cfg = env->cfg;
	struct p2m_registry *reg = g_new0(struct p2m_registry, 1);

	reg->env = *env;
	reg->env.identified = on_identified;
	reg->env.registry = reg;
	reg->entries = g_ptr_array_new_with_free_func(entry_free);
	reg->gone = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	for (size_t i = 0; i < cfg->n_devices; i++)
		if (cfg->devices[i].host) /* else it names a device found or dialling in */
			add_configured(reg, &cfg->devices[i]);
	start_discovery(reg, cfg->discovery.mdns);
	if (cfg->dialin.port) {
		static const struct p2m_dialin_callbacks dcb = {
		    .find = dialin_find,
		    .admit = dialin_admit,
		    .adopt = dialin_adopt,
		};
		reg->dialin = p2m_dialin_new(env->lws, &cfg->dialin, &dcb, reg);
		if (!reg->dialin) {
			p2m_registry_free(reg);
			return NULL;
		}
	}
	start_forgetting(reg);
	return reg;
}

void p2m_registry_free(struct p2m_registry *reg)
{
	if (!reg)
		return;
	if (reg->resolve_timer)
		g_source_remove(reg->resolve_timer);
	if (reg->reap_idle)
		g_source_remove(reg->reap_idle);
	if (reg->forget_timer)
		g_source_remove(reg->forget_timer);
	p2m_dnssd_probe_free(reg->disc);
	g_ptr_array_free(reg->entries, TRUE);
	p2m_dialin_free(reg->dialin);
	g_hash_table_destroy(reg->gone);
	g_free(reg);
}

/* ---- reload ------------------------------------------------------------------------ */

/* Let the device of entry i go: withdrawn from Home Assistant (gone), or only marked
 * offline (it is made anew at once, or dials in again). */
static void drop(struct p2m_registry *reg, guint i, bool withdraw)
{
	struct entry *e = g_ptr_array_index(reg->entries, i);

	if (withdraw)
		p2m_device_withdraw(e->dev);
	else
		p2m_device_publish_offline(e->dev);
	g_ptr_array_remove_index(reg->entries, i);
}

/* A device found or dialled in whose [device] section (or its lack) is now new. */
static void reload_found(struct p2m_registry *reg, guint i)
{
	struct entry *e = g_ptr_array_index(reg->entries, i);
	const struct p2m_device_conf *nc = p2m_config_device(reg->env.cfg, e->conf->id);
	const struct p2m_driver *drv = p2m_device_driver(e->dev);
	char *id, *host;
	int port;

	if (nc && nc->host) {
		p2m_info("device %s: now configured with a host; serving it from its section",
			 nc->id);
		drop(reg, i, false); /* the configured one follows (same topics) */
		return;
	}
	if (type_refused(reg, e->conf->id, drv, "the device served")) {
		drop(reg, i, true);
		return;
	}
	if (!nc && e->own)
		return; /* nothing configured then or now */
	if (nc && !e->own && !p2m_config_device_differs(e->conf, nc)) {
		e->conf = nc;
		p2m_device_set_conf(e->dev, nc);
		return;
	}
	id = g_strdup(e->conf->id);
	host = g_strdup(p2m_device_host(e->dev));
	port = p2m_device_port(e->dev);
	p2m_info("device %s: its [device] section changed; %s", id,
		 drv->dials_in ? "taking it again when it connects" : "connecting again");
	drop(reg, i, false);
	if (!drv->dials_in && host) {
		struct entry *ne = entry_for(reg, id);

		add(reg, ne, drv, host, port);
	}
	g_free(id);
	g_free(host);
}

void p2m_registry_reload(struct p2m_registry *reg, const struct p2m_config *old)
{
	const struct p2m_config *cfg = reg->env.cfg;
	size_t before = reg->entries->len;

	/* doomed entries point into the old configuration: not past this call */
	reap_now(reg);
	for (guint i = reg->entries->len; i-- > 0;) {
		struct entry *e = g_ptr_array_index(reg->entries, i);
		const struct p2m_device_conf *nc = p2m_config_device(cfg, e->conf->id);

		if (!e->conf->host) {
			reload_found(reg, i);
		} else if (nc && nc->host && !p2m_config_device_differs(e->conf, nc)) {
			e->conf = nc;
			p2m_device_set_conf(e->dev, nc);
		} else if (!nc || !nc->host) {
			p2m_info("device %s: no longer configured; withdrawn", e->conf->id);
			drop(reg, i, true);
		} else {
			p2m_info("device %s: its [device] section changed; connecting again",
				 e->conf->id);
			drop(reg, i, false); /* and made anew below */
		}
	}
	for (size_t i = 0; i < cfg->n_devices; i++) {
		const struct p2m_device_conf *c = &cfg->devices[i];

		if (c->host && !p2m_registry_find(reg, c->id, strlen(c->id))) {
			if (!p2m_config_device(old, c->id) || !p2m_config_device(old, c->id)->host)
				p2m_info("device %s: added to the configuration", c->id);
			add_configured(reg, c);
		}
	}
	reg->env.safety = cfg->safety;
	if (p2m_config_section_differs(old, cfg, "safety"))
		for (guint i = 0; i < reg->entries->len; i++)
			p2m_device_safety_changed(p2m_registry_at(reg, i));
	start_discovery(reg, old->discovery.mdns);
	if (p2m_config_section_differs(old, cfg, "discovery"))
		start_forgetting(reg);
	if (reg->entries->len != before && reg->env.changed)
		reg->env.changed(reg->env.ud);
}

/* ---- forgetting -------------------------------------------------------------------- */

static void forget_entry(struct p2m_registry *reg, struct entry *e, const char *why)
{
	p2m_info("device %s: forgotten (%s); it is served again when it is %s", e->conf->id, why,
		 p2m_device_driver(e->dev)->dials_in ? "connects again" : "found again");
	p2m_device_withdraw(e->dev);
	doom(reg, e);
}

int p2m_registry_forget(struct p2m_registry *reg, const char *id, char *err, size_t errlen)
{
	for (guint i = 0; i < reg->entries->len; i++) {
		struct entry *e = g_ptr_array_index(reg->entries, i);

		if (e->doomed || strcmp(p2m_device_id(e->dev), id) != 0)
			continue;
		if (e->conf->host) {
			g_strlcpy(err, "configured devices are removed from the configuration",
				  errlen);
			return -1;
		}
		forget_entry(reg, e, "asked to");
		return 0;
	}
	if (g_hash_table_remove(reg->gone, id)) {
		p2m_info("device %s: forgotten (asked to): its retained topics are cleared", id);
		p2m_device_withdraw_id(reg->env.mqtt, reg->env.cfg, id);
		return 0;
	}
	g_strlcpy(err, "no such device", errlen);
	return -1;
}

void p2m_registry_note_retained(struct p2m_registry *reg, const char *id)
{
	const struct p2m_device_conf *c = p2m_config_device(reg->env.cfg, id);
	gint64 *at;

	if ((c && c->host) || p2m_registry_find(reg, id, strlen(id)) ||
	    g_hash_table_contains(reg->gone, id))
		return;
	at = g_new(gint64, 1);
	*at = g_get_monotonic_time();
	g_hash_table_insert(reg->gone, g_strdup(id), at);
	p2m_debug("device %s: the broker holds its topics from an earlier run; it is not served "
		  "now",
		  id);
}

cJSON *p2m_registry_gone(const struct p2m_registry *reg)
{
	cJSON *a = cJSON_CreateArray();
	GHashTableIter it;
	gpointer key;

	g_hash_table_iter_init(&it, reg->gone);
	while (g_hash_table_iter_next(&it, &key, NULL))
		cJSON_AddItemToArray(a, cJSON_CreateString(key));
	return a;
}

static gboolean on_forget_check(gpointer data)
{
	struct p2m_registry *reg = data;
	gint64 now = g_get_monotonic_time();
	double limit_us = reg->env.cfg->discovery.forget_after * 86400 * G_USEC_PER_SEC;
	char why[96];
	GHashTableIter it;
	gpointer key, value;

	snprintf(why, sizeof(why), "offline for [discovery] forget_after = %g day(s)",
		 reg->env.cfg->discovery.forget_after);
	for (guint i = 0; i < reg->entries->len; i++) {
		struct entry *e = g_ptr_array_index(reg->entries, i);
		gint64 since = p2m_device_offline_since(e->dev);

		if (!e->doomed && !e->conf->host && since && (double)(now - since) >= limit_us)
			forget_entry(reg, e, why);
	}
	g_hash_table_iter_init(&it, reg->gone);
	while (g_hash_table_iter_next(&it, &key, &value)) {
		if ((double)(now - *(gint64 *)value) < limit_us)
			continue;
		p2m_info("device %s: forgotten (not seen by this run for [discovery] forget_after "
			 "= %g day(s)): its retained topics are cleared",
			 (const char *)key, reg->env.cfg->discovery.forget_after);
		p2m_device_withdraw_id(reg->env.mqtt, reg->env.cfg, key);
		g_hash_table_iter_remove(&it);
	}
	return G_SOURCE_CONTINUE;
}

int p2m_registry_rebrowse(struct p2m_registry *reg, char *err, size_t errlen)
{
	if (!reg->disc || !reg->env.cfg->discovery.mdns) {
		g_strlcpy(err, "[discovery] mdns is off", errlen);
		return -1;
	}
	p2m_info("mdns: browsing again from scratch");
	p2m_dnssd_probe_rebrowse(reg->disc);
	return 0;
}

size_t p2m_registry_count(const struct p2m_registry *reg)
{
	return reg->entries->len;
}

struct p2m_device *p2m_registry_at(const struct p2m_registry *reg, size_t i)
{
	return ((struct entry *)g_ptr_array_index(reg->entries, i))->dev;
}

struct p2m_device *p2m_registry_find(const struct p2m_registry *reg, const char *id, size_t len)
{
	for (guint i = 0; i < reg->entries->len; i++) {
		struct entry *e = g_ptr_array_index(reg->entries, i);
		const char *did = p2m_device_id(e->dev);

		if (!e->doomed && strlen(did) == len && strncmp(did, id, len) == 0)
			return e->dev;
	}
	return NULL;
}
