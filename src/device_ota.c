/* device_ota.c - a firmware image installed over HTTP, for families whose devices take
 * it so (driver http_update: the Panda Breath's POST /ota), from the update entity's
 * install command to the version the device reports after its restart (device_priv.h).
 *
 * Owns, in order: the refusals before anything else (no image, an update already under
 * way, the device heating or drying, the offered version already installed or older
 * unless a reinstall is asked for); the image check (esp_image.h), a few hundred KiB per
 * turn of the loop so the loop never waits for a 4 MiB file; the upload (http_post.h)
 * from the same open file, its bytes hashed again on the way and compared with the
 * checked digest before the last piece goes (a file changed in between is never
 * completed); progress on the update entity; the device's answer on the WebSocket
 * ({"response":{"type":"ota_fw","ok":1|0}}); and, after the restart, the version the
 * device's first report gives: the one sent is success (firmware_updated), anything else
 * failure (firmware_update_failed, with the reason). Each phase has a time bound.
 * Nothing here runs unless the user asked for the install: the update entity's command.
 * Does not own: the image directory (firmware.c), the update entity's state (update.h),
 * the HTTP client (http_post.c). */
#include "device_priv.h"

#include "panda2mqtt/esp_image.h"
#include "firmware.h"
#include "http_post.h"
#include "ws.h"

#include <stdarg.h>
#include <string.h>

/* Pieces of the image checked per turn of the loop (16 KiB each). */
#define CHECK_PIECES 16
/* The upload: nothing sent or received this long ends it, and it ends after this long in
 * all (a 4.5 MiB image takes seconds on a Wi-Fi device). */
#define POST_IDLE_S  30
#define POST_TOTAL_S 600
/* The whole image sent: the device's answer, or its restart, within this long. */
#define REPLY_S 90
/* Answered ok: the device back, and reporting, within this long. */
#define RESTART_S 180

enum ota_phase { OTA_CHECK, OTA_SEND, OTA_REPLY, OTA_RESTART };

struct p2m_ota {
	enum ota_phase phase;
	char *version; /* offered: from the file's name */
	char *path;
	char *name;		  /* the file's name alone: what events say (not where it lives) */
	struct p2m_esp_image img; /* the checked image */
	struct p2m_fw_reader *reader;
	struct p2m_esp_check *check;
	GChecksum *sent; /* what has been uploaded */
	struct p2m_http_post *post;
	guint idle, timer;
	bool link_lost; /* the link dropped after the image went: the restart */
};

static void ota_free(struct p2m_ota *o)
{
	if (!o)
		return;
	if (o->idle)
		g_source_remove(o->idle);
	if (o->timer)
		g_source_remove(o->timer);
	p2m_http_post_free(o->post);
	p2m_esp_check_free(o->check);
	p2m_fw_reader_close(o->reader);
	if (o->sent)
		g_checksum_free(o->sent);
	g_free(o->version);
	g_free(o->path);
	g_free(o->name);
	g_free(o);
}

static void ota_end(struct p2m_device *d)
{
	ota_free(d->ota);
	d->ota = NULL;
	d->update.in_progress = false;
	d->update.percent = -1;
	p2m_device_publish_state(d, NULL, false);
}

static void ota_fail(struct p2m_device *d, const char *stage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void ota_fail(struct p2m_device *d, const char *stage, const char *fmt, ...)
{
	cJSON *e = p2m_device_event(P2M_EV_FIRMWARE_UPDATE_FAILED);
	va_list ap;
	char *why;

	va_start(ap, fmt);
	why = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	p2m_warn("device %s: firmware update %s: %s", d->conf->id,
		 strcmp(stage, "refused") == 0 ? "refused" : "failed", why);
	cJSON_AddStringToObject(e, "stage", stage);
	cJSON_AddStringToObject(e, "reason", why);
	if (d->ota && d->ota->version)
		cJSON_AddStringToObject(e, "version", d->ota->version);
	p2m_device_emit(d, e);
	g_free(why);
	ota_end(d);
}

/* Never while heating or drying (asked when the install is requested and again just
 * before the first byte goes out: the image check takes a moment). */
static bool refused_while_heating(struct p2m_device *d)
{
	struct p2m_heat_status hs = {0};

	if (d->driver->heat_status)
		d->driver->heat_status(d->dev, &hs);
	if (!hs.heating)
		return false;
	ota_fail(d, "refused", "the device is heating or drying: switch it off first");
	return true;
}

static gboolean on_timeout(gpointer data)
{
	struct p2m_device *d = data;
	struct p2m_ota *o = d->ota;

	o->timer = 0;
	switch (o->phase) {
	case OTA_SEND:
		ota_fail(d, "upload", "the upload took longer than %d s", POST_TOTAL_S);
		break;
	case OTA_REPLY:
		ota_fail(d, "install",
			 "the device neither answered nor restarted within %d s of receiving "
			 "the image",
			 REPLY_S);
		break;
	case OTA_RESTART:
		ota_fail(d, "confirm", "the device did not come back within %d s", RESTART_S);
		break;
	case OTA_CHECK:
		break;
	}
	return G_SOURCE_REMOVE;
}

static void enter(struct p2m_device *d, enum ota_phase phase, int seconds)
{
	struct p2m_ota *o = d->ota;

	o->phase = phase;
	if (o->timer)
		g_source_remove(o->timer);
	o->timer = g_timeout_add_seconds((guint)seconds, on_timeout, d);
}

/* ---- the upload ---- */

static ssize_t post_body(void *ud, unsigned char *buf, size_t len)
{
	struct p2m_device *d = ud;
	struct p2m_ota *o = d->ota;
	bool last;
	ssize_t n = p2m_fw_reader_next(o->reader, buf, &last);

	if (n < 0 || (size_t)n != len)
		return -1;
	g_checksum_update(o->sent, buf, (gsize)n);
	if (last && strcmp(g_checksum_get_string(o->sent), o->img.sha256) != 0) {
		p2m_warn("device %s: %s changed since it was checked; upload abandoned before "
			 "its end",
			 d->conf->id, o->path);
		return -1;
	}
	return n;
}

static void post_progress(void *ud, uint64_t sent)
{
	struct p2m_device *d = ud;
	int pct = (int)(sent * 100 / (d->ota->img.size ? d->ota->img.size : 1));

	if (pct != d->update.percent) {
		d->update.percent = pct;
		p2m_device_publish_state(d, NULL, false);
	}
}

static void post_done(void *ud, bool body_sent, int status, const char *why)
{
	struct p2m_device *d = ud;
	struct p2m_ota *o = d->ota;

	p2m_http_post_free(o->post);
	o->post = NULL;
	if (!body_sent) {
		ota_fail(d, "upload", "the upload stopped after %d %% of the image: %s",
			 MAX(d->update.percent, 0), why);
		return;
	}
	if (status >= 300) {
		ota_fail(d, "install", "the device refused the image (HTTP status %d)", status);
		return;
	}
	p2m_info("device %s: image sent (HTTP %d%s%s); waiting for the device's answer",
		 d->conf->id, status, status ? "" : ": ", status ? "" : why);
	if (o->phase == OTA_SEND)
		enter(d, OTA_REPLY, REPLY_S);
}

static void start_upload(struct p2m_device *d)
{
	static const struct p2m_http_post_callbacks cb = {
	    .body = post_body,
	    .progress = post_progress,
	    .done = post_done,
	};
	const struct p2m_http_update *h = d->driver->http_update;
	struct p2m_ota *o = d->ota;
	struct p2m_http_post_opts po = {
	    .name = d->log_name,
	    .host = d->host,
	    .port = d->port,
	    .path = h->path,
	    .content_type = h->content_type,
	    .header = h->header,
	    .header_value = h->header_value,
	    .length = o->img.size,
	    .idle_timeout = POST_IDLE_S,
	};

	/* the check took a moment: the device may have gone, or started heating */
	if (!d->online || !d->host) {
		ota_fail(d, "refused", "the device is offline");
		return;
	}
	if (refused_while_heating(d))
		return;
	p2m_fw_reader_rewind(o->reader);
	o->sent = g_checksum_new(G_CHECKSUM_SHA256);
	p2m_info("device %s: sending firmware %s to http://%s:%d%s (%llu bytes)", d->conf->id,
		 o->version, d->host, d->port, h->path, (unsigned long long)o->img.size);
	d->update.percent = 0;
	p2m_device_publish_state(d, NULL, false);
	enter(d, OTA_SEND, POST_TOTAL_S);
	o->post = p2m_http_post_start(d->env->lws, &po, &cb, d);
}

/* ---- the check ---- */

static gboolean check_step(gpointer data)
{
	struct p2m_device *d = data;
	struct p2m_ota *o = d->ota;
	unsigned char buf[P2M_FIRMWARE_CHUNK];
	char err[256];
	bool last = false;

	for (int i = 0; i < CHECK_PIECES && !last; i++) {
		ssize_t n = p2m_fw_reader_next(o->reader, buf, &last);

		if (n < 0) {
			o->idle = 0;
			ota_fail(d, "check", "cannot read %s", o->name);
			return G_SOURCE_REMOVE;
		}
		if (p2m_esp_check_feed(o->check, buf, (size_t)n, err, sizeof(err)) != 0) {
			o->idle = 0;
			ota_fail(d, "check", "%s is refused: %s", o->name, err);
			return G_SOURCE_REMOVE;
		}
	}
	if (!last)
		return G_SOURCE_CONTINUE;
	o->idle = 0;
	if (p2m_esp_check_finish(o->check, &o->img, err, sizeof(err)) != 0) {
		ota_fail(d, "check", "%s is refused: %s", o->name, err);
		return G_SOURCE_REMOVE;
	}
	p2m_info("device %s: %s is a good %s image (%u segments, %llu bytes%s, SHA-256 %s)",
		 d->conf->id, o->path, p2m_esp_chip_name(o->img.chip_id), o->img.segments,
		 (unsigned long long)o->img.size,
		 o->img.hash_appended ? ", its own digest matches" : "", o->img.sha256);
	if (o->img.version[0] && strcmp(o->img.version, o->version) != 0)
		p2m_warn("device %s: %s says it is version %s, its name says %s", d->conf->id,
			 o->path, o->img.version, o->version);
	start_upload(d);
	return G_SOURCE_REMOVE;
}

/* ---- from the outside ---- */

void p2m_device_ota_start(struct p2m_device *d, bool reinstall)
{
	const struct p2m_http_update *h = d->driver->http_update;
	const char *fw = d->driver->fw_version(d->dev);
	struct p2m_ota *o;
	char err[300];

	p2m_device_view(d); /* the image on offer now */
	if (d->ota) {
		p2m_device_reject(d, "firmware_update", "a firmware update is already under way");
		return;
	}
	o = d->ota = g_new0(struct p2m_ota, 1);
	o->version = g_strdup(d->update.latest);
	o->path = g_strdup(d->update.path);
	o->name = o->path ? g_path_get_basename(o->path) : NULL;
	d->update.in_progress = true;
	d->update.percent = -1;
	if (!h || !o->version || !o->path) {
		ota_fail(d, "refused", "no firmware image for this device in [firmware] dir");
		return;
	}
	if (refused_while_heating(d))
		return;
	if (fw && !reinstall && strverscmp(o->version, fw) <= 0) {
		ota_fail(d, "refused",
			 "firmware %s is installed and %s is not newer (payload \"reinstall\" "
			 "installs it anyway)",
			 fw, o->version);
		return;
	}
	o->reader = p2m_fw_reader_open(o->path, err, sizeof(err));
	if (!o->reader) {
		p2m_warn("device %s: %s", d->conf->id, err);
		ota_fail(d, "check", "cannot read %s", o->name);
		return;
	}
	if (h->max_bytes && p2m_fw_reader_size(o->reader) > h->max_bytes) {
		ota_fail(d, "check",
			 "%s is refused: it is larger than the %ld bytes (0x%lx) the device takes "
			 "(%lld bytes)",
			 o->name, h->max_bytes, (unsigned long)h->max_bytes,
			 (long long)p2m_fw_reader_size(o->reader));
		return;
	}
	o->check = p2m_esp_check_new(h->esp_chip, (uint64_t)h->max_bytes);
	o->phase = OTA_CHECK;
	p2m_info("device %s: firmware %s%s asked for: checking %s", d->conf->id, o->version,
		 reinstall ? " (reinstall)" : "", o->path);
	p2m_device_publish_state(d, NULL, false);
	o->idle = g_idle_add(check_step, d);
}

bool p2m_device_ota_busy(const struct p2m_device *d)
{
	return d->ota != NULL;
}

bool p2m_device_ota_reply(struct p2m_device *d, const char *type, bool ok)
{
	const struct p2m_http_update *h = d->driver->http_update;
	struct p2m_ota *o = d->ota;

	if (!h || strcmp(type, h->reply_type) != 0)
		return false;
	if (!o || (o->phase != OTA_SEND && o->phase != OTA_REPLY))
		return false; /* another client's upload (the device's own page) */
	p2m_http_post_free(o->post);
	o->post = NULL;
	if (!ok) {
		ota_fail(d, "install", "the device refused the image (%s ok 0)", type);
		return true;
	}
	p2m_info("device %s: the device took the image; it restarts into %s", d->conf->id,
		 o->version);
	d->update.percent = 100;
	d->expect_reboot = true;
	o->link_lost = false; /* the restart is the next link lost */
	enter(d, OTA_RESTART, RESTART_S);
	p2m_device_publish_state(d, NULL, false);
	return true;
}

void p2m_device_ota_link_lost(struct p2m_device *d)
{
	struct p2m_ota *o = d->ota;

	if (!o)
		return;
	switch (o->phase) {
	case OTA_SEND:
		/* The WebSocket may go quiet (stale) while the device takes the image: the
		 * upload's own connection says whether the device went away. Its answer may
		 * be lost with this link; the version it reports after it tells then. */
		p2m_info("device %s: the link dropped during the upload", d->conf->id);
		o->link_lost = true;
		break;
	case OTA_REPLY:
		/* the whole image went and the device restarted before its answer came */
		p2m_info("device %s: the link dropped after the image: the device restarts",
			 d->conf->id);
		enter(d, OTA_RESTART, RESTART_S);
		o->link_lost = true;
		break;
	case OTA_RESTART:
		o->link_lost = true;
		break;
	case OTA_CHECK:
		break;
	}
}

void p2m_device_ota_version(struct p2m_device *d, bool new_link)
{
	struct p2m_ota *o = d->ota;
	const char *fw = d->driver->fw_version(d->dev);
	cJSON *e;
	bool sent;

	if (!o || (o->phase != OTA_RESTART && o->phase != OTA_REPLY))
		return;
	sent = fw && (strcmp(fw, o->version) == 0 ||
		      (o->img.version[0] && strcmp(fw, o->img.version) == 0));
	/* The version sent, however it is heard (a new link, a push, a re-read), settles
	 * it. Another one does only on the first report of a link that came back after the
	 * image went: before, the device may not have restarted yet (its answer, or the
	 * phase's bound, follows). */
	if (!sent && (!new_link || !o->link_lost || o->phase == OTA_REPLY))
		return;
	if (!sent) {
		ota_fail(d, "confirm", "the device came back on firmware %s, not %s",
			 fw ? fw : "(not reported)", o->version);
		return;
	}
	p2m_info("device %s: firmware %s installed", d->conf->id, fw);
	e = p2m_device_event(P2M_EV_FIRMWARE_UPDATED);
	cJSON_AddStringToObject(e, "version", fw);
	p2m_device_emit(d, e);
	ota_end(d);
}

void p2m_device_ota_free(struct p2m_device *d)
{
	ota_free(d->ota);
	d->ota = NULL;
}
