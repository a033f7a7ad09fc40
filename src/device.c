/* device.c - see device.h.
 *
 * A Panda Breath neither acknowledges writes nor broadcasts changes, so the truth comes
 * from snapshots: every new connection's first frame. After a command the device is
 * re-read on a short-lived second connection, what it reports is published, and any
 * written field that did not take is reported as a "command_not_applied" event.
 * A request/reply family (driver->message) answers every request in order: the names of
 * the requests sent and not yet answered are queued here, so that each answer is known
 * for what it answers; such a device is re-read with its status request on the same
 * link. A family that dials in has no address to dial: dialin.c attaches each link. */
#include "device.h"

#include "panda2mqtt/command.h"
#include "panda2mqtt/entity.h"
#include "panda2mqtt/ha.h"
#include "panda2mqtt/json_util.h"
#include "panda2mqtt/log.h"
#include "panda2mqtt/safety.h"
#include "firmware.h"
#include "loop.h"
#include "ws.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#define CONNECT_TIMEOUT_S 10
/* After a command, wait this long before re-reading the snapshot: the frames are
 * written within milliseconds, and the device applies them as they arrive. */
#define VERIFY_DELAY_MS 1500
/* A tripped safety rule sends the off command again at most this often while the
 * device still reports heating (the re-read after the first one takes 1.5 s). */
#define SAFETY_RESEND_US ((gint64)10 * G_USEC_PER_SEC)
/* A request/reply device that has not answered a request this long will not: the rest
 * of a command waiting on it is dropped. */
#define REPLY_TIMEOUT_S 30
/* Requests kept waiting for their answers; a device that stops answering but keeps its
 * link must not grow the queue without end. */
#define MAX_UNANSWERED 64

struct p2m_device {
	const struct p2m_device_env *env;
	const struct p2m_device_conf *conf;
	const struct p2m_driver *driver;
	char *host; /* the address dialled; NULL while a .local name is being resolved */
	int port;
	char *t_state, *t_avail, *t_event, *t_discovery;
	struct p2m_ws *ws;
	struct p2m_ws *probe;
	bool probe_got;
	bool probe_again;
	cJSON *dev;   /* merged state as reported; an empty object before the first frame */
	cJSON *local; /* values the gateway holds: selections, typed secrets */
	double read_at;
	bool online;
	bool first_frame;
	bool own_ha_warned;
	bool expect_reboot; /* a command that restarts the device was sent */
	bool retired;	    /* a duplicate of another device: publishes nothing more */
	gint64 safety_sent; /* when a safety rule last sent the off command; 0: none */
	int failures;
	/* SHA-256 of the last state published, not the payload: one is kept for every
	 * device (docs/BENCHMARKS.md). */
	char *published_state;
	/* What the last discovery published was made from (p2m_ha_discovery_inputs; ""
	 * for the empty payload that withdraws it): the same inputs, the same payload. */
	char *discovery_inputs;
	cJSON *pending;	       /* frames still to send (after a pause marker) */
	cJSON *expected;       /* {root: {readback_field: value}} from the last command */
	struct p2m_tick *tick; /* the periodic re-read */
	gint64 refresh_at;     /* monotonic us */
	guint verify_timer;
	guint pending_timer;
	char *log_name;	   /* "device <id>" */
	char *status_name; /* the driver's status request's name; NULL: none */
	/* request/reply families */
	GQueue unanswered; /* names of the requests sent, oldest first */
	int await_left;	   /* answers still due before the pending frames go on; -1: none */
	guint await_timer;
	/* a firmware image being sent, and the update entity's state */
	struct p2m_fw_reader *upload;
	struct p2m_update_view update;
};

static void start_probe(struct p2m_device *d);
static void send_pending(struct p2m_device *d);
static void check_safety(struct p2m_device *d);

const char *p2m_device_id(const struct p2m_device *d)
{
	return d->conf->id;
}

const struct p2m_driver *p2m_device_driver(const struct p2m_device *d)
{
	return d->driver;
}

static struct p2m_view view_of(struct p2m_device *d)
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
	};
}

static void publish(struct p2m_device *d, const char *topic, const char *payload, bool retain)
{
	p2m_mqtt_publish(d->env->mqtt, topic, payload, retain);
}

static void emit_event(void *ud, cJSON *event)
{
	struct p2m_device *d = ud;
	char *s = p2m_json_print(event);

	p2m_info("device %s: event %s", d->conf->id, s);
	publish(d, d->t_event, s, false);
	cJSON_free(s);
	cJSON_Delete(event);
}

void p2m_device_reject(struct p2m_device *d, const char *field, const char *reason)
{
	cJSON *e = cJSON_CreateObject();

	p2m_warn("device %s: command rejected: %s%s%s", d->conf->id, field && *field ? field : "",
		 field && *field ? ": " : "", reason);
	cJSON_AddStringToObject(e, "event_type", "command_rejected");
	cJSON_AddStringToObject(e, "field", field ? field : "");
	cJSON_AddStringToObject(e, "reason", reason);
	emit_event(d, e);
}

/* The state, unless it is what was last published (or force). */
static void publish_state(struct p2m_device *d, bool force)
{
	struct p2m_view v = view_of(d);
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

static void publish_discovery(struct p2m_device *d, bool force)
{
	struct p2m_view v = view_of(d);
	const struct p2m_ha_device info = {
	    .id = d->conf->id,
	    .name = d->conf->name,
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
	if (!d->dev->child)
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
	if (d->retired)
		return;
	publish_discovery(d, true);
}

void p2m_device_republish(struct p2m_device *d)
{
	if (d->retired)
		return;
	publish(d, d->t_avail, d->online ? "online" : "offline", true);
	publish_discovery(d, true);
	if (d->dev->child)
		publish_state(d, true);
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

static void set_online(struct p2m_device *d, bool online)
{
	if (d->online == online)
		return;
	d->online = online;
	publish(d, d->t_avail, online ? "online" : "offline", true);
	if (d->env->changed)
		d->env->changed(d->env->ud);
}

static bool same_value(const cJSON *a, const cJSON *b)
{
	double x, y;

	if ((cJSON_IsBool(a) || cJSON_IsNumber(a)) && (cJSON_IsBool(b) || cJSON_IsNumber(b))) {
		x = cJSON_IsBool(a) ? cJSON_IsTrue(a) : a->valuedouble;
		y = cJSON_IsBool(b) ? cJSON_IsTrue(b) : b->valuedouble;
		return fabs(x - y) < 1e-9;
	}
	return cJSON_Compare(a, b, true);
}

/* After a command's re-read: did every field that reads back take? */
static void check_expected(struct p2m_device *d)
{
	const cJSON *root, *f;

	if (!d->expected)
		return;
	cJSON_ArrayForEach(root, d->expected)
	{
		cJSON_ArrayForEach(f, root)
		{
			const cJSON *got = p2m_json_field(d->dev, root->string, f->string);
			if (got && same_value(got, f))
				continue;
			cJSON *e = cJSON_CreateObject();
			cJSON_AddStringToObject(e, "event_type", "command_not_applied");
			char *field = g_strdup_printf("%s.%s", root->string, f->string);
			cJSON_AddStringToObject(e, "field", field);
			g_free(field);
			cJSON_AddItemToObject(e, "expected", cJSON_Duplicate(f, true));
			cJSON_AddItemToObject(
			    e, "reported", got ? cJSON_Duplicate(got, true) : cJSON_CreateNull());
			p2m_warn("device %s: the device did not apply %s.%s", d->conf->id,
				 root->string, f->string);
			emit_event(d, e);
		}
	}
	cJSON_Delete(d->expected);
	d->expected = NULL;
}

static cJSON *parse_frame(struct p2m_device *d, const char *text, size_t len, bool snapshot)
{
	cJSON *frame = cJSON_ParseWithLength(text, len);

	if (!frame)
		p2m_warn("device %s: frame is not valid JSON (%zu bytes); ignored", d->conf->id,
			 len);
	else if (snapshot && !d->driver->is_snapshot(frame))
		p2m_warn("device %s: first frame is not a %s %s", d->conf->id, d->driver->model,
			 d->driver->dials_in ? "handshake" : "snapshot");
	return frame;
}

/* Check, merge and publish one frame from the main link or a snapshot re-read. */
static void take_frame(struct p2m_device *d, const cJSON *frame, bool snapshot)
{
	cJSON *before;
	const char *fw;
	char *fw_old;

	before = cJSON_Duplicate(d->dev, true);
	fw = d->driver->fw_version(d->dev);
	fw_old = fw ? g_strdup(fw) : NULL;
	if (p2m_entity_merge_frame(d->driver, d->conf->id, d->dev, frame) >= 0 && snapshot)
		d->read_at = (double)g_get_real_time() / G_USEC_PER_SEC;
	/* Its first report says which device it is: the registry may find it is one it
	 * already serves under another id; then nothing of it is ever published. */
	if (!before->child && d->dev->child && d->env->identified &&
	    !d->env->identified(d->env->registry, d)) {
		d->retired = true;
		cJSON_Delete(before);
		g_free(fw_old);
		return;
	}
	if (d->driver->events && before->child)
		d->driver->events(before, d->dev, emit_event, d);
	cJSON_Delete(before);
	fw = d->driver->fw_version(d->dev);
	if (fw && (!fw_old || strcmp(fw, fw_old) != 0)) {
		p2m_info("device %s: %s firmware %s", d->conf->id, d->driver->model, fw);
		if (d->env->changed)
			d->env->changed(d->env->ud);
	}
	g_free(fw_old);
	/* Discovery depends on the state too (firmware, scan results): re-send if it changed. */
	publish_discovery(d, false);
	/* A snapshot is the device's whole truth: publish it even when nothing changed, so
	 * that a device coming back always refreshes its state. */
	publish_state(d, snapshot);
}

static void on_open(void *ud)
{
	struct p2m_device *d = ud;

	p2m_info("device %s: connected to ws://%s:%d/ws", d->conf->id, d->host, d->port);
	d->first_frame = true;
}

/* ---- request/reply families: what each answer answers ---- */

static void drop_pending(struct p2m_device *d, const char *why);

/* The name a frame gives its request (driver->request_key), or NULL. */
static const char *request_name(const struct p2m_driver *drv, const cJSON *frame)
{
	const cJSON *n =
	    drv->request_key ? cJSON_GetObjectItemCaseSensitive(frame, drv->request_key) : NULL;

	return n && cJSON_IsString(n) ? n->valuestring : NULL;
}

/* The name of the driver's status request ("request_status"), or NULL. Caller frees. */
static char *status_name_of(const struct p2m_driver *drv)
{
	cJSON *f = drv->status_request ? cJSON_Parse(drv->status_request) : NULL;
	char *name = g_strdup(f ? request_name(drv, f) : NULL);

	cJSON_Delete(f);
	return name;
}

static void clear_unanswered(struct p2m_device *d)
{
	g_queue_clear_full(&d->unanswered, g_free);
	d->await_left = -1;
	if (d->await_timer)
		g_source_remove(d->await_timer);
	d->await_timer = 0;
}

static void sent_request(struct p2m_device *d, const char *name)
{
	if (!name)
		return;
	if (g_queue_get_length(&d->unanswered) >= MAX_UNANSWERED) {
		p2m_warn("device %s: %u requests unanswered; forgetting the oldest", d->conf->id,
			 MAX_UNANSWERED);
		g_free(g_queue_pop_head(&d->unanswered));
	}
	g_queue_push_tail(&d->unanswered, g_strdup(name));
}

/* An answer came: frames waiting on the answers go on, or are dropped after a refusal. */
static void answered(struct p2m_device *d, bool ok)
{
	if (d->await_left <= 0)
		return;
	if (!ok) {
		drop_pending(d, "the device refused a request it needed");
		return;
	}
	if (--d->await_left > 0)
		return;
	d->await_left = -1;
	if (d->await_timer)
		g_source_remove(d->await_timer);
	d->await_timer = 0;
	send_pending(d);
}

static gboolean on_await_timeout(gpointer data)
{
	struct p2m_device *d = data;

	d->await_timer = 0;
	drop_pending(d, "the device did not answer within 30 s");
	return G_SOURCE_REMOVE;
}

/* One message of a request/reply family: its meaning from the driver, then merged. */
static void take_message(struct p2m_device *d, const cJSON *msg, bool first)
{
	const char *req = g_queue_peek_head(&d->unanswered);
	cJSON *frame = NULL;
	enum p2m_reply r = d->driver->message(msg, req, &frame, emit_event, d);
	bool whole = first;

	if (r != P2M_NOT_A_REPLY && req) {
		char *name = g_queue_pop_head(&d->unanswered);

		whole = whole ||
			(r == P2M_REPLY_OK && d->status_name && strcmp(name, d->status_name) == 0);
		g_free(name);
	} else if (r != P2M_NOT_A_REPLY) {
		p2m_debug("device %s: an answer to no request; taken as state", d->conf->id);
	}
	if (frame) {
		take_frame(d, frame, whole);
		cJSON_Delete(frame);
		if (whole && !first)
			check_expected(d);
	} else if (r == P2M_NOT_A_REPLY) {
		p2m_warn("device %s: a message that is neither a %s nor an answer; ignored",
			 d->conf->id, d->driver->dials_in ? "handshake" : "report");
	}
	if (r != P2M_NOT_A_REPLY && req)
		answered(d, r == P2M_REPLY_OK);
}

static void on_message(void *ud, const char *text, size_t len)
{
	struct p2m_device *d = ud;
	bool snapshot = d->first_frame;
	cJSON *frame;

	d->first_frame = false;
	if (d->retired)
		return;
	frame = parse_frame(d, text, len, snapshot);
	if (!frame)
		return;
	if (d->driver->message)
		take_message(d, frame, snapshot);
	else
		take_frame(d, frame, snapshot);
	cJSON_Delete(frame);
	if (d->retired)
		return;
	check_safety(d);
	if (!d->online && !d->retired) {
		d->failures = 0;
		set_online(d, true);
		if (d->expect_reboot) {
			cJSON *e = cJSON_CreateObject();
			d->expect_reboot = false;
			cJSON_AddStringToObject(e, "event_type", "device_rebooted");
			emit_event(d, e);
		}
	}
}

/* ---- firmware images ---- */

static void update_done(struct p2m_device *d)
{
	d->update.in_progress = false;
	d->update.percent = -1;
	publish_state(d, false);
}

static void update_failed(struct p2m_device *d, const char *why)
{
	cJSON *e = cJSON_CreateObject();

	p2m_warn("device %s: firmware update failed: %s", d->conf->id, why);
	cJSON_AddStringToObject(e, "event_type", "update_failed");
	cJSON_AddStringToObject(e, "reason", why);
	emit_event(d, e);
	p2m_fw_reader_close(d->upload);
	d->upload = NULL;
	update_done(d);
}

/* The next fragment of the image, once the last one is on its way (on_drained): one in
 * the queue at a time, so the image is read as fast as the link takes it. */
static void upload_next(struct p2m_device *d)
{
	unsigned char buf[P2M_FIRMWARE_CHUNK];
	bool first = p2m_fw_reader_percent(d->upload) == 0 && d->update.percent < 0;
	bool last;
	ssize_t n = p2m_fw_reader_next(d->upload, buf, &last);
	int pct;

	if (n <= 0 || p2m_ws_send_fragment(d->ws, buf, (size_t)n, first, last) != 0) {
		update_failed(d, n <= 0 ? "cannot read the image" : "cannot queue the image");
		/* half a message on the link: only a new connection makes sense of it */
		if (d->ws)
			p2m_ws_close(d->ws, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION);
		return;
	}
	pct = p2m_fw_reader_percent(d->upload);
	if (pct != d->update.percent) {
		d->update.percent = pct;
		publish_state(d, false);
	}
	if (!last)
		return;
	p2m_info("device %s: firmware image sent (%lld bytes); the device installs it and "
		 "restarts",
		 d->conf->id, (long long)p2m_fw_reader_size(d->upload));
	p2m_fw_reader_close(d->upload);
	d->upload = NULL;
	d->expect_reboot = true;
	cJSON *e = cJSON_CreateObject();
	cJSON_AddStringToObject(e, "event_type", "update_sent");
	emit_event(d, e);
	if (d->pending)
		send_pending(d);
}

static void start_upload(struct p2m_device *d, const char *path)
{
	char err[300];

	d->upload = p2m_fw_reader_open(path, err, sizeof(err));
	if (!d->upload) {
		update_failed(d, err);
		return;
	}
	p2m_info("device %s: sending firmware %s (%lld bytes)", d->conf->id, path,
		 (long long)p2m_fw_reader_size(d->upload));
	d->update.percent = -1;
	upload_next(d);
}

static void on_drained(void *ud)
{
	struct p2m_device *d = ud;

	if (d->upload)
		upload_next(d);
}

static void on_close(void *ud, bool was_open, const char *why)
{
	struct p2m_device *d = ud;

	(void)was_open;
	/* An accepted link is gone for good (ws.c frees it); the device dials in again. */
	if (d->driver->dials_in)
		d->ws = NULL;
	clear_unanswered(d);
	if (d->upload)
		update_failed(d, "the link was lost while sending the image");
	else if (d->update.in_progress)
		update_done(d); /* the device restarts to install it */
	if (d->retired)
		return;
	if (d->driver->dials_in)
		p2m_warn("device %s: link lost (%s); waiting for it to connect again", d->conf->id,
			 why);
	else if (d->online)
		p2m_warn("device %s: link lost (%s); reconnecting", d->conf->id, why);
	else if (d->failures++ == 0)
		p2m_warn("device %s: cannot reach ws://%s:%d/ws (%s); retrying", d->conf->id,
			 d->host, d->port, why);
	else
		p2m_debug("device %s: attempt failed (%s)", d->conf->id, why);
	if (d->pending) {
		p2m_warn("device %s: %d frame(s) of the last command not sent: link lost",
			 d->conf->id, cJSON_GetArraySize(d->pending));
		cJSON_Delete(d->pending);
		d->pending = NULL;
	}
	set_online(d, false);
}

static void on_probe_message(void *ud, const char *text, size_t len)
{
	struct p2m_device *d = ud;
	cJSON *frame;

	d->probe_got = true;
	if (d->retired)
		return;
	p2m_debug("device %s: snapshot re-read", d->conf->id);
	frame = parse_frame(d, text, len, true);
	if (!frame)
		return;
	take_frame(d, frame, true);
	cJSON_Delete(frame);
	check_expected(d);
	check_safety(d);
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
	    .name = d->log_name,
	    .host = d->host,
	    .port = d->port,
	    .path = "/ws",
	    .max_message = P2M_WS_MAX_MESSAGE,
	    .connect_timeout = CONNECT_TIMEOUT_S,
	    .oneshot = true,
	};

	if (d->driver->status_request) {
		/* on the link itself; never inside the binary message of an image */
		if (!d->upload && p2m_ws_is_open(d->ws) &&
		    p2m_ws_send(d->ws, d->driver->status_request) == 0)
			sent_request(d, d->status_name);
		return;
	}
	if (!d->host)
		return;
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

/* The periodic re-read, checked at the shared second tick (loop.h). */
static void on_tick(void *data)
{
	struct p2m_device *d = data;
	gint64 now = g_get_monotonic_time();

	if (now < d->refresh_at)
		return;
	d->refresh_at = now + (gint64)d->conf->refresh_interval * G_USEC_PER_SEC;
	if (d->online)
		start_probe(d);
}

static void schedule_verify(struct p2m_device *d)
{
	if (d->verify_timer)
		g_source_remove(d->verify_timer);
	d->verify_timer = g_timeout_add(VERIFY_DELAY_MS, on_verify, d);
}

/* The frame as it may appear in a log line: secrets removed. */
static char *loggable(const cJSON *frame)
{
	cJSON *r = p2m_json_redacted(frame);
	char *s = p2m_json_print(r);

	cJSON_Delete(r);
	return s;
}

/* Remember what each written field should read back as (the last write wins). */
static void expect(struct p2m_device *d, const cJSON *frame)
{
	const cJSON *root, *f;

	if (!d->driver->verify)
		return;
	cJSON_ArrayForEach(root, frame)
	{
		cJSON_ArrayForEach(f, root)
		{
			for (const char *const(*v)[3] = d->driver->verify; (*v)[0]; v++) {
				if (strcmp((*v)[0], root->string) != 0 ||
				    strcmp((*v)[1], f->string) != 0)
					continue;
				if (!d->expected)
					d->expected = cJSON_CreateObject();
				cJSON *r =
				    cJSON_GetObjectItemCaseSensitive(d->expected, root->string);
				if (!r)
					r = cJSON_AddObjectToObject(d->expected, root->string);
				cJSON_DeleteItemFromObjectCaseSensitive(r, (*v)[2]);
				cJSON_AddItemToObject(r, (*v)[2], cJSON_Duplicate(f, true));
			}
		}
	}
}

static gboolean on_pending(gpointer data)
{
	struct p2m_device *d = data;

	d->pending_timer = 0;
	send_pending(d);
	return G_SOURCE_REMOVE;
}

/* Send queued frames in order, up to a pause marker. */
static void send_pending(struct p2m_device *d)
{
	cJSON *frame;

	while (d->pending && (frame = cJSON_DetachItemFromArray(d->pending, 0))) {
		const cJSON *delay = cJSON_GetObjectItemCaseSensitive(frame, P2M_DELAY_KEY);
		const cJSON *file = cJSON_GetObjectItemCaseSensitive(frame, P2M_SEND_FILE_KEY);
		if (cJSON_IsNumber(delay)) {
			p2m_info("device %s: waiting %d ms before the next frame", d->conf->id,
				 delay->valueint);
			d->pending_timer = g_timeout_add((guint)delay->valueint, on_pending, d);
			cJSON_Delete(frame);
			return;
		}
		if (cJSON_GetObjectItemCaseSensitive(frame, P2M_AWAIT_REPLY_KEY)) {
			cJSON_Delete(frame);
			d->await_left = (int)g_queue_get_length(&d->unanswered);
			if (d->await_left == 0)
				continue;
			d->await_timer =
			    g_timeout_add_seconds(REPLY_TIMEOUT_S, on_await_timeout, d);
			return;
		}
		if (cJSON_IsString(file)) {
			start_upload(d, file->valuestring);
			cJSON_Delete(frame);
			if (d->upload)
				return; /* the rest, if any, once the image is sent */
			continue;
		}
		char *text = p2m_json_print(frame);
		char *log = loggable(frame);
		if (p2m_ws_send(d->ws, text) == 0) {
			p2m_info("device %s: sending %s", d->conf->id, log);
			expect(d, frame);
			sent_request(d, request_name(d->driver, frame));
			if (d->driver->restarts && d->driver->restarts(frame))
				d->expect_reboot = true;
		} else {
			p2m_warn("device %s: could not queue %s", d->conf->id, log);
		}
		cJSON_free(text);
		cJSON_free(log);
		cJSON_Delete(frame);
	}
	cJSON_Delete(d->pending);
	d->pending = NULL;
	schedule_verify(d);
}

/* The rest of a command cannot be sent: say so, and end an update it was for. */
static void drop_pending(struct p2m_device *d, const char *why)
{
	bool had_file = false;
	const cJSON *f;

	cJSON_ArrayForEach(f, d->pending) had_file |=
	    cJSON_GetObjectItemCaseSensitive(f, P2M_SEND_FILE_KEY) != NULL;
	if (d->pending)
		p2m_warn("device %s: %s; %d frame(s) of the command not sent", d->conf->id, why,
			 cJSON_GetArraySize(d->pending));
	cJSON_Delete(d->pending);
	d->pending = NULL;
	clear_unanswered(d);
	if (had_file)
		update_failed(d, why);
}

/* Check and send one command. preempt (safety): frames still waiting from an earlier
 * command are dropped instead of refusing this one. */
static int run_command(struct p2m_device *d, const cJSON *command, bool preempt)
{
	struct p2m_view v = view_of(d);
	struct p2m_cmd cmd = {
	    .driver = d->driver,
	    .dev = d->dev,
	    .view = &v,
	    .safety = &d->env->safety,
	};

	if (!d->online || !p2m_ws_is_open(d->ws)) {
		p2m_device_reject(d, "", "device is offline");
		return -1;
	}
	if (d->upload) {
		p2m_device_reject(d, "", "a firmware image is being sent");
		return -1;
	}
	if (d->pending && !preempt) {
		p2m_device_reject(d, "", "the previous command is still being sent");
		return -1;
	}
	if (p2m_command_plan(&cmd, command) != 0) {
		p2m_device_reject(d, cmd.field, cmd.reason);
		p2m_command_clear(&cmd);
		return -1;
	}
	if (cmd.local) {
		p2m_json_merge(d->local, cmd.local);
		publish_state(d, false);
	}
	if (cJSON_GetArraySize(cmd.frames) > 0) {
		const cJSON *f;

		if (d->pending_timer)
			g_source_remove(d->pending_timer);
		d->pending_timer = 0;
		d->await_left = -1;
		if (d->await_timer)
			g_source_remove(d->await_timer);
		d->await_timer = 0;
		cJSON_ArrayForEach(f, cmd.frames)
		{
			if (cJSON_GetObjectItemCaseSensitive(f, P2M_SEND_FILE_KEY)) {
				d->update.in_progress = true;
				d->update.percent = -1;
				publish_state(d, false);
			}
		}
		cJSON_Delete(d->pending);
		cJSON_Delete(d->expected);
		d->expected = NULL;
		d->pending = cmd.frames;
		cmd.frames = NULL;
		send_pending(d);
	}
	p2m_command_clear(&cmd);
	return 0;
}

void p2m_device_command(struct p2m_device *d, const cJSON *command)
{
	run_command(d, command, false);
}

/* Switch the device's heating off because a [safety] rule tripped: an event, an error
 * line, and the driver's off command ahead of anything still queued. */
static void safety_off(struct p2m_device *d, enum p2m_trip trip, const struct p2m_heat_status *h)
{
	gint64 now = g_get_monotonic_time();
	cJSON *e, *off;

	if (d->safety_sent && now - d->safety_sent < SAFETY_RESEND_US)
		return;
	d->safety_sent = now;
	e = cJSON_CreateObject();
	cJSON_AddStringToObject(e, "event_type", "safety_cutoff");
	cJSON_AddStringToObject(e, "rule", p2m_trip_rule(trip));
	if (h->has_chamber)
		cJSON_AddNumberToObject(e, "chamber_temperature", h->chamber);
	if (trip == P2M_TRIP_CHAMBER)
		cJSON_AddNumberToObject(e, "limit", d->env->safety.max_chamber_temp);
	p2m_err("device %s: safety: %s; switching the heating off", d->conf->id,
		p2m_trip_reason(trip));
	emit_event(d, e);
	off = cJSON_Parse(d->driver->off_command);
	if (!off || run_command(d, off, true) != 0) {
		p2m_err("device %s: safety: the off command could not be sent; trying again "
			"with the next report",
			d->conf->id);
		d->safety_sent = 0;
	}
	cJSON_Delete(off);
}

/* The device's heat status, for a family that can be switched off by safety rules. */
static bool heat_status(const struct p2m_device *d, struct p2m_heat_status *h)
{
	if (d->retired || !d->driver->heat_status || !d->driver->off_command)
		return false;
	d->driver->heat_status(d->dev, h);
	return true;
}

/* After every report: do the [safety] rules say the heating must go off? */
static void check_safety(struct p2m_device *d)
{
	struct p2m_heat_status h = {0};
	enum p2m_trip trip;

	if (!heat_status(d, &h))
		return;
	trip = p2m_safety_check(&d->env->safety, &h);
	if (trip == P2M_TRIP_NONE) {
		d->safety_sent = 0;
		return;
	}
	safety_off(d, trip, &h);
}

void p2m_device_controller_lost(struct p2m_device *d)
{
	struct p2m_heat_status h = {0};

	if (heat_status(d, &h) && h.heating)
		safety_off(d, P2M_TRIP_CONTROLLER_LOST, &h);
}

cJSON *p2m_device_info(const struct p2m_device *d)
{
	cJSON *o = cJSON_CreateObject();
	const char *fw = d->driver->fw_version(d->dev);

	cJSON_AddStringToObject(o, "id", d->conf->id);
	cJSON_AddStringToObject(o, "name", d->conf->name);
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

/* Dial the current address: the main link (which reconnects by itself). */
static void open_link(struct p2m_device *d)
{
	static const struct p2m_ws_callbacks cb = {
	    .on_open = on_open,
	    .on_message = on_message,
	    .on_close = on_close,
	};
	const struct p2m_ws_opts o = {
	    .name = d->log_name,
	    .host = d->host,
	    .port = d->port,
	    .path = "/ws",
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
	if (d->pending_timer)
		g_source_remove(d->pending_timer);
	d->pending_timer = 0;
	cJSON_Delete(d->pending);
	d->pending = NULL;
	while (g_idle_remove_by_data(d))
		;
	d->probe_again = false;
	p2m_ws_free(d->probe);
	d->probe = NULL;
	p2m_ws_free(d->ws);
	d->ws = NULL;
	clear_unanswered(d);
	p2m_fw_reader_close(d->upload);
	d->upload = NULL;
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
	d->t_state = g_strdup_printf("%s/%s", base, conf->id);
	d->t_avail = g_strdup_printf("%s/%s/availability", base, conf->id);
	d->t_event = g_strdup_printf("%s/%s/event", base, conf->id);
	d->t_discovery = p2m_ha_discovery_topic(env->cfg->mqtt.discovery_prefix, conf->id);
	d->log_name = g_strdup_printf("device %s", conf->id);
	d->status_name = status_name_of(driver);
	g_queue_init(&d->unanswered);
	d->await_left = -1;
	d->update.percent = -1;
	if (conf->refresh_interval > 0) {
		d->refresh_at =
		    g_get_monotonic_time() + (gint64)conf->refresh_interval * G_USEC_PER_SEC;
		d->tick = p2m_tick_add(on_tick, d);
	}
	if (driver->dials_in) {
		p2m_info("device %s: %s, connected from %s", conf->id, driver->model,
			 host ? host : "?");
	} else if (host) {
		p2m_info("device %s: %s at ws://%s:%d/ws", conf->id, driver->model, host, port);
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
			update_failed(d, "the device connected again while sending the image");
		close_links(d);
		set_online(d, false);
	}
	if (d->update.in_progress)
		update_done(d);
	g_free(d->host);
	d->host = g_strdup(peer);
	d->ws = ws;
	p2m_ws_set_callbacks(ws, d->log_name, &cb, d, d->conf->stale_timeout);
	p2m_info("device %s: connected from %s", d->conf->id, peer);
	d->first_frame = true;
	on_message(d, first, len);
	/* the handshake is not the whole state (no volume, no uptime): ask for the rest */
	if (d->driver->status_request)
		start_probe(d);
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
		p2m_info("device %s: moved from %s:%d to ws://%s:%d/ws", d->conf->id, d->host,
			 d->port, host, port);
	else
		p2m_info("device %s: %s is %s; connecting to ws://%s:%d/ws", d->conf->id,
			 d->conf->host, host, host, port);
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

bool p2m_device_at(const struct p2m_device *d, const char *host, int port)
{
	return d->host && strcmp(d->host, host) == 0 && d->port == port;
}

bool p2m_device_is_online(const struct p2m_device *d)
{
	return d->online;
}

void p2m_device_free(struct p2m_device *d)
{
	if (!d)
		return;
	p2m_tick_remove(d->tick);
	if (d->verify_timer)
		g_source_remove(d->verify_timer);
	close_links(d);
	cJSON_Delete(d->dev);
	cJSON_Delete(d->local);
	cJSON_Delete(d->expected);
	g_free(d->published_state);
	free(d->discovery_inputs);
	g_free(d->host);
	g_free(d->t_state);
	g_free(d->t_avail);
	g_free(d->t_event);
	g_free(d->t_discovery);
	g_free(d->log_name);
	g_free(d->status_name);
	g_free(d);
}
