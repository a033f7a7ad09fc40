/* dialin.h - the endpoint that devices which dial in connect to ([dialin]).
 *
 * Owns: the listener (port, path, optional token: ws.c checks it before the upgrade),
 * connections that have not yet said who they are (the handshake must come within
 * 10 s, and be one a dial-in family recognises), the allowlist of device ids, and the
 * rule for a second connection that claims the id of a connected device: the connected
 * one is pinged, and the newcomer is refused while it answers; taken once it does not.
 * Does not own: the device list and ids (device_registry.c), a device's own link (device.c). */
#ifndef PANDA2MQTT_DIALIN_H
#define PANDA2MQTT_DIALIN_H

#include "panda2mqtt/config.h"
#include "panda2mqtt/driver.h"

#include <libwebsockets.h>
#include <stddef.h>

struct p2m_dialin;
struct p2m_device;
struct p2m_ws;

struct p2m_dialin_callbacks {
	/* The device already served under this id, or NULL. */
	struct p2m_device *(*find)(void *ud, const char *id);
	/* May a device of this id be served? false: the gateway serves [dialin] max_devices
	 * dial-in devices already, and this one is new and named by no [device] section. */
	bool (*admit)(void *ud, const char *id);
	/* A session said who it is and may be that device: hand it over (creating the
	 * device when it is new). first/len is its handshake, as received. */
	void (*adopt)(void *ud, const struct p2m_driver *drv, const char *id, struct p2m_ws *ws,
		      const char *first, size_t len);
};

/* Starts listening; NULL (logged) when the port cannot be bound. */
struct p2m_dialin *p2m_dialin_new(struct lws_context *lws, const struct p2m_dialin_conf *conf,
				  const struct p2m_dialin_callbacks *cb, void *ud);
void p2m_dialin_free(struct p2m_dialin *di);

#endif
