/* dialin_handshake.h - what the [dialin] endpoint decides from what a connection sends,
 * before it is a device: its token, which device it says it is, and whether that device
 * may dial in.
 *
 * Owns: the token check (the value of "?token=" in the URL, else an "Authorization:
 * Bearer" header, compared in constant time), recognising a first message as the
 * handshake of a dial-in family and the device id it gives, and the [dialin] allow list.
 * Pure (no sockets), so unit tests and fuzzing call it directly.
 * Does not own: reading the URL and headers (ws.c), sessions, claims and the device cap
 * (dialin.c, the registry). */
#ifndef PANDA2MQTT_DIALIN_HANDSHAKE_H
#define PANDA2MQTT_DIALIN_HANDSHAKE_H

#include "panda2mqtt/config.h"
#include "panda2mqtt/driver.h"

#include <stdbool.h>
#include <stddef.h>

/* Equal strings, in time that depends only on the length of presented, not on where
 * the two differ. */
bool p2m_secret_equal(const char *presented, const char *secret);

/* Does a connection carry the token? url_token: the value of its URL's "token=" argument
 * (NULL: it has none), which decides when present; else authorization: its
 * Authorization header (NULL: none), which must be "Bearer <token>". token NULL: none is
 * needed, everyone may connect. */
bool p2m_dialin_token_ok(const char *token, const char *url_token, const char *authorization);

enum p2m_handshake {
	P2M_HANDSHAKE_OK,      /* *drv and id are set */
	P2M_HANDSHAKE_UNKNOWN, /* not JSON, or no dial-in family's handshake: *drv NULL */
	P2M_HANDSHAKE_NO_ID,   /* the family's handshake, but no usable device id: id "" */
};

/* The first message of a dial-in connection (len bytes of text): the family whose
 * handshake it is (p2m_family_for_snapshot) and the id its device_id() gives, read from
 * the frame its message() makes of it (id: idlen bytes, P2M_ID_MAX + 1 suffice). */
enum p2m_handshake p2m_dialin_identify(const char *text, size_t len, const struct p2m_driver **drv,
				       char *id, size_t idlen);

/* Does the [dialin] allow list (empty: everyone) admit this device? Entries match the
 * id ("ptalk_a1b2c3d4e5f6") or the part after the family prefix (the MAC, with or
 * without ':' or '-', any case). */
bool p2m_dialin_allowed(const struct p2m_dialin_conf *conf, const struct p2m_driver *drv,
			const char *id);

#endif
