/* device.c - see device.h; the files that share the work are listed in device_priv.h.
 *
 * Owns: a device's lifecycle. Its link: dialled (and redialled by ws.c) for a family the
 * gateway connects to, attached by dialin.c for one that dials in, moved when its
 * address changes. Every message in: parsed, answered replies taken (device_send.c),
 * merged into the state (entity.c), events from the change, then published and the
 * [safety] rules checked. Online when the device speaks, offline when its link goes.
 * Does not own: publishing (device_publish.c), commands (device_send.c), re-reads
 * (device_reread.c), the rules (device_safety.c), images (device_update.c). */
#include "device_priv.h"

#include "panda2mqtt/entity.h"
#include "panda2mqtt/ha.h"
#include "panda2mqtt/json_util.h"
#include "firmware.h"
#include "ws.h"

#include <string.h>

#define CONNECT_TIMEOUT_S 10

const char *p2m_device_id(const struct p2m_device *d)
{
	return d->conf->id;
}

const struct p2m_driver *p2m_device_driver(const struct p2m_device *d)
{
	return d->driver;
}

cJSON *p2m_device_parse(struct p2m_device *d, const char *text, size_t len, bool snapshot)
{
	cJSON *frame = cJSON_ParseWithLength(text, len);

	if (!frame)
		p2m_device_warn_limited(d, "not json",
					"frame is not valid JSON (%zu bytes); ignored", len);
	else if (snapshot && !d->driver->is_snapshot(frame))
		p2m_device_warn_limited(d, "not snapshot", "first frame is not a %s %s",
					d->driver->model,
					d->driver->dials_in ? "handshake" : "snapshot");
	return frame;
}

/* Does the frame bring a new value for one of these (root, field) pairs? NULL: any frame
 * may. */
static bool brings_new(const char *const (*fields)[2], const cJSON *frame, const cJSON *dev)
{
	if (!fields)
		return true;
	for (; (*fields)[0]; fields++) {
		const cJSON *v = p2m_json_field(frame, (*fields)[0], (*fields)[1]);
		const cJSON *old;

		if (!v)
			continue;
		old = p2m_json_field(dev, (*fields)[0], (*fields)[1]);
		if (!(old && cJSON_Compare(v, old, true)))
			return true;
	}
	return false;
}

bool p2m_device_take_frame(struct p2m_device *d, const cJSON *frame, bool whole, bool first)
{
	bool reported = d->dev->child != NULL, changed;
	struct p2m_changes changes;
	/* what events compare, before: copied only when the frame can make an event */
	cJSON *before = reported && d->driver->events &&
				(whole || brings_new(d->driver->event_fields, frame, d->dev))
			    ? cJSON_Duplicate(d->dev, true)
			    : NULL;
	const char *fw = d->driver->fw_version(d->dev);
	char *fw_old = fw ? g_strdup(fw) : NULL;

	if (p2m_entity_merge(d->driver, d->conf->id, d->dev, frame,
			     whole && d->driver->snapshot_is_whole, &changes) >= 0 &&
	    whole)
		d->read_at = (double)g_get_real_time() / G_USEC_PER_SEC;
	changed = p2m_changed(&changes);
	if (changed)
		p2m_entity_note_seen(d->driver, d->dev, d->seen);
	/* Its first report says which device it is: the registry may find it is one it
	 * already serves under another id; then nothing of it is ever published. */
	if (!reported && d->dev->child && d->env->identified &&
	    !d->env->identified(d->env->registry, d)) {
		d->retired = true;
		cJSON_Delete(before);
		g_free(fw_old);
		return changed;
	}
	if (before && changed)
		d->driver->events(before, d->dev, p2m_device_emit, d);
	cJSON_Delete(before);
	fw = d->driver->fw_version(d->dev);
	if (fw && (!fw_old || strcmp(fw, fw_old) != 0)) {
		p2m_info("device %s: %s firmware %s", d->conf->id, d->driver->model, fw);
		if (d->env->changed)
			d->env->changed(d->env->ud);
		if (fw_old)
			p2m_device_ota_version(d, false);
	}
	g_free(fw_old);
	/* A push that repeats what is stored changes nothing to publish (docs/BENCHMARKS.md).
	 * Discovery depends on the state too (firmware, names, scan results, fields seen):
	 * re-sent if it changed. A whole snapshot moves the drying countdown's reference
	 * (read_at) even when nothing else changed, and brings the raw report up to date.
	 * The first frame of a link publishes the state again: the device is back. */
	if (first || p2m_ha_discovery_depends(d->driver, &changes))
		p2m_device_update_discovery(d, false);
	if (whole)
		p2m_device_publish_report(d, false);
	if (changed)
		p2m_device_publish_state(d, &changes, first);
	return changed;
}

static void on_open(void *ud)
{
	struct p2m_device *d = ud;

	p2m_info("device %s: connected to ws://%s:%d%s", d->conf->id, d->host, d->port,
		 d->driver->ws_path);
	d->first_frame = true;
	d->links++;
}

static void on_message(void *ud, const char *text, size_t len)
{
	struct p2m_device *d = ud;
	bool snapshot = d->first_frame, changed = true;
	cJSON *frame;

	d->first_frame = false;
	d->frames++;
	if (d->retired)
		return;
	frame = p2m_device_parse(d, text, len, snapshot);
	if (!frame)
		return;
	if (d->driver->message) {
		p2m_device_take_message(d, frame, snapshot);
	} else {
		p2m_device_take_reply(d, frame);
		changed = p2m_device_take_frame(d, frame, snapshot, snapshot);
	}
	cJSON_Delete(frame);
	if (d->retired)
		return;
	if (snapshot)
		p2m_device_ota_version(d, true);
	p2m_device_check_safety(d, changed);
	if (!d->online && !d->retired) {
		d->failures = 0;
		p2m_device_set_online(d, true);
		if (d->expect_reboot) {
			d->expect_reboot = false;
			p2m_device_emit(d, p2m_device_event(P2M_EV_DEVICE_REBOOTED));
		}
	}
}

static void on_drained(void *ud)
{
	struct p2m_device *d = ud;

	if (d->upload)
		p2m_device_upload_next(d);
	else
		p2m_device_send_more(d);
}

static void on_close(void *ud, bool was_open, const char *why)
{
	struct p2m_device *d = ud;

	(void)was_open;
	/* An accepted link is gone for good (ws.c frees it); the device dials in again. */
	if (d->driver->dials_in)
		d->ws = NULL;
	if (d->upload)
		p2m_device_update_failed(d, "the link was lost while sending the image");
	else if (d->update.in_progress && !d->ota)
		p2m_device_update_done(d); /* the device restarts to install it */
	p2m_device_ota_link_lost(d);
	p2m_device_send_reset(d);
	g_free(d->last_error);
	d->last_error = g_strdup(why);
	if (d->retired)
		return;
	if (d->driver->dials_in)
		p2m_warn("device %s: link lost (%s); waiting for it to connect again", d->conf->id,
			 why);
	else if (d->online)
		p2m_warn("device %s: link lost (%s); reconnecting", d->conf->id, why);
	else if (d->failures++ == 0)
		p2m_warn("device %s: cannot reach ws://%s:%d%s (%s); retrying", d->conf->id,
			 d->host, d->port, d->driver->ws_path, why);
	else
		p2m_debug("device %s: attempt failed (%s)", d->conf->id, why);
	p2m_device_set_online(d, false);
}

/* Dial the current address: the main link (which reconnects by itself). */
static void open_link(struct p2m_device *d)
{
	static const struct p2m_ws_callbacks cb = {
	    .on_open = on_open,
	    .on_message = on_message,
	    .on_close = on_close,
	    .on_drained = on_drained,
	};
	const struct p2m_ws_opts o = {
	    .name = d->log_name,
	    .host = d->host,
	    .port = d->port,
	    .path = d->driver->ws_path,
	    .max_message = P2M_WS_MAX_MESSAGE,
	    .stale_timeout = d->conf->stale_timeout,
	    .connect_timeout = CONNECT_TIMEOUT_S,
	};

	d->failures = 0;
	d->ws = p2m_ws_new(d->env->lws, &o, &cb, d);
}

/* Drop both connections and whatever was still to be sent on them. */
static void close_links(struct p2m_device *d)
{
	p2m_device_send_reset(d);
	p2m_device_reread_stop(d);
	p2m_ws_free(d->ws);
	d->ws = NULL;
	p2m_fw_reader_close(d->upload);
	d->upload = NULL;
	p2m_device_ota_link_lost(d);
}

struct p2m_device *p2m_device_new(const struct p2m_device_env *env,
				  const struct p2m_device_conf *conf,
				  const struct p2m_driver *driver, const char *host, int port)
{
	struct p2m_device *d = g_new0(struct p2m_device, 1);
	const char *base = env->cfg->mqtt.base_topic;

	d->env = env;
	d->conf = conf;
	d->driver = driver;
	d->host = g_strdup(host);
	d->port = port;
	d->dev = cJSON_CreateObject();
	d->local = cJSON_CreateObject();
	d->seen = g_new0(bool, driver->n_entities);
	d->row_dirty = g_new0(bool, driver->n_entities);
	for (int t = 0; t < P2M_TOPICS; t++)
		d->t_state[t] = g_strdup_printf("%s/%s%s", base, conf->id, p2m_topic_suffix(t));
	d->t_avail = g_strdup_printf("%s/%s/availability", base, conf->id);
	d->t_event = g_strdup_printf("%s/%s/event", base, conf->id);
	d->t_discovery = p2m_ha_discovery_topic(env->cfg->mqtt.discovery_prefix, conf->id);
	d->t_report = g_strdup_printf("%s/%s/report", base, conf->id);
	d->log_name = g_strdup_printf("device %s", conf->id);
	g_queue_init(&d->unanswered);
	d->update.percent = -1;
	for (size_t i = 0; i < driver->n_entities; i++)
		d->has_update |= driver->entities[i].platform == P2M_UPDATE;
	d->offline_since = g_get_monotonic_time();
	p2m_device_reread_start(d);
	if (driver->dials_in) {
		p2m_info("device %s: %s, connected from %s", conf->id, driver->model,
			 host ? host : "?");
	} else if (host) {
		p2m_info("device %s: %s at ws://%s:%d%s", conf->id, driver->model, host, port,
			 driver->ws_path);
		open_link(d);
	} else {
		p2m_info("device %s: %s at %s, waiting for its address", conf->id, driver->model,
			 conf->host);
	}
	return d;
}

void p2m_device_attach(struct p2m_device *d, struct p2m_ws *ws, const char *first, size_t len)
{
	static const struct p2m_ws_callbacks cb = {
	    .on_message = on_message,
	    .on_close = on_close,
	    .on_drained = on_drained,
	};
	const char *peer = p2m_ws_peer(ws);
	bool moved = !d->host || strcmp(d->host, peer) != 0;

	if (d->ws) {
		p2m_info("device %s: a new connection from %s replaces the one from %s",
			 d->conf->id, peer, d->host ? d->host : "?");
		if (d->upload)
			p2m_device_update_failed(
			    d, "the device connected again while sending the image");
		close_links(d);
		p2m_device_set_online(d, false);
	}
	if (d->update.in_progress)
		p2m_device_update_done(d);
	g_free(d->host);
	d->host = g_strdup(peer);
	d->ws = ws;
	p2m_ws_set_callbacks(ws, d->log_name, &cb, d, d->conf->stale_timeout);
	p2m_info("device %s: connected from %s", d->conf->id, peer);
	d->first_frame = true;
	d->links++;
	on_message(d, first, len);
	/* the handshake is not the whole state (no volume, no uptime): ask for the rest */
	if (d->driver->status_request)
		p2m_device_reread(d);
	if (moved && d->env->changed)
		d->env->changed(d->env->ud);
}

struct p2m_ws *p2m_device_link(const struct p2m_device *d)
{
	return d->ws;
}

void p2m_device_set_address(struct p2m_device *d, const char *host, int port)
{
	if (d->driver->dials_in)
		return; /* it tells us where it is by connecting */
	if (d->host && strcmp(d->host, host) == 0 && d->port == port)
		return;
	if (d->host)
		p2m_info("device %s: moved from %s:%d to ws://%s:%d%s", d->conf->id, d->host,
			 d->port, host, port, d->driver->ws_path);
	else
		p2m_info("device %s: %s is %s; connecting to ws://%s:%d%s", d->conf->id,
			 d->conf->host, host, host, port, d->driver->ws_path);
	close_links(d);
	g_free(d->host);
	d->host = g_strdup(host);
	d->port = port;
	open_link(d);
	if (d->env->changed)
		d->env->changed(d->env->ud);
}

bool p2m_device_hw_id(const struct p2m_device *d, char *buf, size_t len)
{
	return d->driver->device_id && d->dev->child && d->driver->device_id(d->dev, buf, len);
}

const char *p2m_device_host(const struct p2m_device *d)
{
	return d->host;
}

int p2m_device_port(const struct p2m_device *d)
{
	return d->port;
}

bool p2m_device_at(const struct p2m_device *d, const char *host, int port)
{
	return d->host && strcmp(d->host, host) == 0 && d->port == port;
}

bool p2m_device_is_online(const struct p2m_device *d)
{
	return d->online;
}

gint64 p2m_device_offline_since(const struct p2m_device *d)
{
	return d->online ? 0 : d->offline_since;
}

void p2m_device_set_conf(struct p2m_device *d, const struct p2m_device_conf *conf)
{
	d->conf = conf;
}

void p2m_device_safety_changed(struct p2m_device *d)
{
	if (d->retired || !d->dev->child)
		return;
	p2m_device_check_safety(d, true);
	/* the caps are not among the discovery inputs (they never change otherwise) */
	p2m_device_update_discovery(d, true);
}

void p2m_device_free(struct p2m_device *d)
{
	if (!d)
		return;
	p2m_device_ota_free(d);
	close_links(d);
	p2m_device_reread_free(d);
	cJSON_Delete(d->dev);
	cJSON_Delete(d->local);
	g_free(d->seen);
	g_free(d->row_dirty);
	for (int t = 0; t < P2M_TOPICS; t++)
		cJSON_Delete(d->topic_state[t]);
	if (d->debounce_timer)
		g_source_remove(d->debounce_timer);
	g_free(d->discovery_inputs);
	g_free(d->offered);
	g_free(d->last_error);
	g_free(d->host);
	for (int t = 0; t < P2M_TOPICS; t++)
		g_free(d->t_state[t]);
	g_free(d->t_avail);
	g_free(d->t_event);
	g_free(d->t_discovery);
	g_free(d->t_report);
	g_free(d->log_name);
	g_free(d);
}
