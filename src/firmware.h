/* firmware.h - firmware images offered to devices, and sending one.
 *
 * Owns: the image directory ([firmware] dir, formerly [dialin] firmware_dir): files named
 * "<family>-<version>.bin" (for example ptalk-1.0.2.bin, panda_breath-V1.0.4.bin), the
 * newest per family by version order (strverscmp), its release notes from
 * "<family>-<version>.txt" beside it, re-read at most every few seconds; and reading an
 * image in fragments (a binary WebSocket message, an HTTP body), with progress.
 * Does not own: when an update is allowed (the drivers) or the link (ws.c, device.c). */
#ifndef PANDA2MQTT_FIRMWARE_H
#define PANDA2MQTT_FIRMWARE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The largest image taken: ESP32 application images are 1-4 MiB. */
#define P2M_FIRMWARE_MAX_BYTES ((off_t)16 * 1024 * 1024)
/* One fragment of the binary message. */
#define P2M_FIRMWARE_CHUNK 16384

struct p2m_firmware;

struct p2m_fw_image {
	char *version;
	char *path;
	char *summary; /* release notes (update.h: p2m_update_summary); NULL: none */
	off_t size;
};

/* dir NULL: no images ever. */
struct p2m_firmware *p2m_firmware_new(const char *dir);
void p2m_firmware_free(struct p2m_firmware *fw);

/* The newest image for a family (driver name), or NULL. Valid until the next call. */
const struct p2m_fw_image *p2m_firmware_latest(struct p2m_firmware *fw, const char *family);

/* Reading one image in order, a fragment at a time. */
struct p2m_fw_reader;

/* NULL with a reason in err when the file cannot be read or is empty or too large. */
struct p2m_fw_reader *p2m_fw_reader_open(const char *path, char *err, size_t errlen);
/* The next fragment into buf (P2M_FIRMWARE_CHUNK bytes); its length, 0 at the end, -1 on
 * a read error. *last says whether it is the final one. */
ssize_t p2m_fw_reader_next(struct p2m_fw_reader *r, void *buf, bool *last);
/* How much has been read: 0..100. */
int p2m_fw_reader_percent(const struct p2m_fw_reader *r);
/* From the start again (the same open file: one checked, then sent). */
void p2m_fw_reader_rewind(struct p2m_fw_reader *r);
off_t p2m_fw_reader_size(const struct p2m_fw_reader *r);
void p2m_fw_reader_close(struct p2m_fw_reader *r);

#endif
