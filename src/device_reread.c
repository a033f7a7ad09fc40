/* device_reread.c - re-reading a device's whole state (device_priv.h).
 *
 * A Panda Breath neither acknowledges writes nor reliably broadcasts changes, so the
 * truth comes from snapshots: every new connection's first frame. After a command the
 * device is re-read on a short-lived second connection, what it reports is published,
 * and any written field that did not take is reported as a "command_not_applied" event.
 * The same re-read runs every refresh_interval. A request/reply family is re-read with
 * its status request on its own link instead (driver status_request).
 *
 * Owns: the second connection, the periodic tick, the verify delay after a command and
 * the comparison of what was written with what reads back.
 * Does not own: merging what is read (device.c) or the link itself. */
#include "device_priv.h"

#include "loop.h"
#include "panda2mqtt/json_util.h"
#include "ws.h"

#include <math.h>
#include <string.h>

#define CONNECT_TIMEOUT_S 10
/* After a command, wait this long before re-reading the snapshot: the frames are
 * written within milliseconds, and the device applies them as they arrive. */
#define VERIFY_DELAY_MS 1500

static bool same_value(const cJSON *a, const cJSON *b)
{
	if ((cJSON_IsBool(a) || cJSON_IsNumber(a)) && (cJSON_IsBool(b) || cJSON_IsNumber(b))) {
		double x = cJSON_IsBool(a) ? cJSON_IsTrue(a) : a->valuedouble;
		double y = cJSON_IsBool(b) ? cJSON_IsTrue(b) : b->valuedouble;

		return fabs(x - y) < 1e-9;
	}
	return cJSON_Compare(a, b, true);
}

void p2m_device_check_expected(struct p2m_device *d)
{
	const cJSON *root, *f;

	if (!d->expected)
		return;
	cJSON_ArrayForEach(root, d->expected)
	{
		cJSON_ArrayForEach(f, root)
		{
			const cJSON *got = p2m_json_field(d->dev, root->string, f->string);
			cJSON *e;
			char *field;

			if (got && same_value(got, f))
				continue;
			e = p2m_device_event(P2M_EV_COMMAND_NOT_APPLIED);
			field = g_strdup_printf("%s.%s", root->string, f->string);
			cJSON_AddStringToObject(e, "field", field);
			g_free(field);
			cJSON_AddItemToObject(e, "expected", cJSON_Duplicate(f, true));
			cJSON_AddItemToObject(
			    e, "reported", got ? cJSON_Duplicate(got, true) : cJSON_CreateNull());
			p2m_warn("device %s: the device did not apply %s.%s", d->conf->id,
				 root->string, f->string);
			p2m_device_emit(d, e);
		}
	}
	cJSON_Delete(d->expected);
	d->expected = NULL;
}

void p2m_device_expect(struct p2m_device *d, const cJSON *frame)
{
	const cJSON *root, *f;

	if (!d->driver->verify)
		return;
	cJSON_ArrayForEach(root, frame)
	{
		cJSON_ArrayForEach(f, root)
		{
			for (const char *const(*v)[3] = d->driver->verify; (*v)[0]; v++) {
				cJSON *r;

				if (strcmp((*v)[0], root->string) != 0 ||
				    strcmp((*v)[1], f->string) != 0)
					continue;
				if (!d->expected)
					d->expected = cJSON_CreateObject();
				r = cJSON_GetObjectItemCaseSensitive(d->expected, root->string);
				if (!r)
					r = cJSON_AddObjectToObject(d->expected, root->string);
				cJSON_DeleteItemFromObjectCaseSensitive(r, (*v)[2]);
				cJSON_AddItemToObject(r, (*v)[2], cJSON_Duplicate(f, true));
			}
		}
	}
}

static void on_probe_message(void *ud, const char *text, size_t len)
{
	struct p2m_device *d = ud;
	cJSON *frame;

	d->probe_got = true;
	if (d->retired)
		return;
	p2m_debug("device %s: snapshot re-read", d->conf->id);
	frame = p2m_device_parse(d, text, len, true);
	if (!frame)
		return;
	p2m_device_take_frame(d, frame, true, false);
	cJSON_Delete(frame);
	p2m_device_check_expected(d);
	p2m_device_check_safety(d, true);
}

static gboolean free_probe(gpointer data)
{
	struct p2m_device *d = data;

	p2m_ws_free(d->probe);
	d->probe = NULL;
	if (d->probe_again) {
		d->probe_again = false;
		p2m_device_reread(d);
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

void p2m_device_reread(struct p2m_device *d)
{
	static const struct p2m_ws_callbacks cb = {
	    .on_message = on_probe_message,
	    .on_close = on_probe_close,
	};
	const struct p2m_ws_opts o = {
	    .name = d->log_name,
	    .host = d->host,
	    .port = d->port,
	    .path = d->driver->ws_path,
	    .max_message = P2M_WS_MAX_MESSAGE,
	    .connect_timeout = CONNECT_TIMEOUT_S,
	    .oneshot = true,
	};

	if (d->driver->status_request) {
		/* on the link itself; never inside the binary message of an image */
		if (!d->upload && p2m_ws_is_open(d->ws) &&
		    p2m_ws_send(d->ws, d->driver->status_request) == 0)
			p2m_device_sent_request(d, d->status_name, false);
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
	p2m_device_reread(d);
	return G_SOURCE_REMOVE;
}

void p2m_device_schedule_verify(struct p2m_device *d)
{
	if (d->verify_timer)
		g_source_remove(d->verify_timer);
	d->verify_timer = g_timeout_add(VERIFY_DELAY_MS, on_verify, d);
}

/* The periodic re-read, checked at the shared second tick (loop.h). */
static void on_tick(void *data)
{
	struct p2m_device *d = data;
	gint64 now = g_get_monotonic_time();

	p2m_device_check_offer(d);
	if (d->conf->refresh_interval <= 0 || now < d->refresh_at)
		return;
	d->refresh_at = now + (gint64)d->conf->refresh_interval * G_USEC_PER_SEC;
	if (d->online)
		p2m_device_reread(d);
}

/* The name of the driver's status request ("request_status"), or NULL. */
static char *status_name_of(const struct p2m_driver *drv)
{
	cJSON *f = drv->status_request ? cJSON_Parse(drv->status_request) : NULL;
	char *name = g_strdup(f ? p2m_device_request_name(drv, f) : NULL);

	cJSON_Delete(f);
	return name;
}

void p2m_device_reread_start(struct p2m_device *d)
{
	d->status_name = status_name_of(d->driver);
	if (d->conf->refresh_interval > 0 || d->has_update) {
		d->refresh_at =
		    g_get_monotonic_time() + (gint64)d->conf->refresh_interval * G_USEC_PER_SEC;
		d->tick = p2m_tick_add(on_tick, d);
	}
}

/* Drop the second connection (the link is going or being replaced). */
static void drop_probe(struct p2m_device *d)
{
	while (g_idle_remove_by_data(d))
		;
	d->probe_again = false;
	p2m_ws_free(d->probe);
	d->probe = NULL;
}

void p2m_device_reread_stop(struct p2m_device *d)
{
	drop_probe(d);
}

void p2m_device_reread_free(struct p2m_device *d)
{
	p2m_tick_remove(d->tick);
	d->tick = NULL;
	if (d->verify_timer)
		g_source_remove(d->verify_timer);
	d->verify_timer = 0;
	drop_probe(d);
	cJSON_Delete(d->expected);
	d->expected = NULL;
	g_free(d->status_name);
	d->status_name = NULL;
}
