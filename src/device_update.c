/* device_update.c - a firmware image sent to a device over its link (device_priv.h).
 *
 * Owns: reading the image a fragment at a time as the link takes it (one fragment in the
 * link's queue at a time, so a large image never sits in memory), the update entity's
 * progress, and the events that end an update (update_sent, update_failed).
 * Does not own: when an install is allowed (the drivers) or the image files (firmware.c). */
#include "device_priv.h"

#include "firmware.h"
#include "ws.h"

void p2m_device_update_done(struct p2m_device *d)
{
	d->update.in_progress = false;
	d->update.percent = -1;
	p2m_device_publish_state(d, NULL, false);
}

void p2m_device_update_failed(struct p2m_device *d, const char *why)
{
	cJSON *e = p2m_device_event(P2M_EV_UPDATE_FAILED);

	p2m_warn("device %s: firmware update failed: %s", d->conf->id, why);
	cJSON_AddStringToObject(e, "reason", why);
	p2m_device_emit(d, e);
	p2m_fw_reader_close(d->upload);
	d->upload = NULL;
	p2m_device_update_done(d);
}

/* The next fragment of the image, once the last one is on its way (on_drained). */
void p2m_device_upload_next(struct p2m_device *d)
{
	unsigned char buf[P2M_FIRMWARE_CHUNK];
	bool first = p2m_fw_reader_percent(d->upload) == 0 && d->update.percent < 0;
	bool last;
	ssize_t n = p2m_fw_reader_next(d->upload, buf, &last);
	int pct;

	if (n <= 0 || p2m_ws_send_fragment(d->ws, buf, (size_t)n, first, last) != 0) {
		p2m_device_update_failed(d, n <= 0 ? "cannot read the image"
						   : "cannot queue the image");
		/* half a message on the link: only a new connection makes sense of it */
		if (d->ws)
			p2m_ws_close(d->ws, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION);
		return;
	}
	pct = p2m_fw_reader_percent(d->upload);
	if (pct != d->update.percent) {
		d->update.percent = pct;
		p2m_device_publish_state(d, NULL, false);
	}
	if (!last)
		return;
	p2m_info("device %s: firmware image sent (%lld bytes); the device installs it and "
		 "restarts",
		 d->conf->id, (long long)p2m_fw_reader_size(d->upload));
	p2m_fw_reader_close(d->upload);
	d->upload = NULL;
	d->expect_reboot = true;
	p2m_device_emit(d, p2m_device_event(P2M_EV_UPDATE_SENT));
	p2m_device_send_more(d);
}

void p2m_device_upload_start(struct p2m_device *d, const char *path)
{
	char err[300];

	d->upload = p2m_fw_reader_open(path, err, sizeof(err));
	if (!d->upload) {
		p2m_device_update_failed(d, err);
		return;
	}
	p2m_info("device %s: sending firmware %s (%lld bytes)", d->conf->id, path,
		 (long long)p2m_fw_reader_size(d->upload));
	d->update.percent = -1;
	p2m_device_upload_next(d);
}
