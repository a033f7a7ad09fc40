/* update.h - a family's firmware update entity: the state Home Assistant's update entity
 * takes, and its install command.
 *
 * Owns: the update entity's JSON state (installed and offered version, release notes,
 * progress), the install payloads ("install", and "reinstall" for an image whose version
 * is already installed or older: Home Assistant's MQTT update entity only ever sends its
 * payload_install, "install"; a reinstall is asked for by hand, docs/FIRMWARE-UPDATE.md),
 * the marker a family's plan puts in its frames for an image the core sends by HTTP
 * (driver.h: http_update), and release notes cut to what Home Assistant keeps.
 * Does not own: where images come from (firmware.c), whether an install is allowed and
 * sending it (device_ota.c, device_update.c). */
#ifndef PANDA2MQTT_UPDATE_H
#define PANDA2MQTT_UPDATE_H

#include "panda2mqtt/driver.h"

#include <stdbool.h>
#include <stddef.h>

/* Home Assistant's limit for an update entity's release_summary, in characters. */
#define P2M_UPDATE_SUMMARY_MAX 255

/* The update entity's state object: installed is the device's firmware version (NULL:
 * not known yet, then NULL is returned); u the offered image and progress (NULL: none).
 * Without an image the latest version is the installed one: no update offered. */
cJSON *p2m_update_state(const char *title, const char *installed, const struct p2m_update_view *u);

/* The payload of an install command: "install", or "reinstall" (*reinstall set). 0, or
 * -1 after p2m_cmd_reject(). */
int p2m_cmd_install(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v,
		    bool *reinstall);

/* The marker of an install the core carries out (families with http_update): the image
 * offered, checked and sent by device_ota.c. It goes alone: nothing else in the command. */
void p2m_cmd_install_image(struct p2m_cmd *cmd, bool reinstall);
#define P2M_INSTALL_KEY "@install"

/* Release notes as Home Assistant takes them: valid UTF-8 (invalid bytes replaced),
 * surrounding blanks dropped, at most P2M_UPDATE_SUMMARY_MAX characters ("…" at the end
 * when cut). NULL for an empty text. g_free the result. */
char *p2m_update_summary(const char *text, size_t len);

#endif
