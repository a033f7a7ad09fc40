/* device.h - one device: its link, its state cache, availability and commands.
 *
 * Owns: the lifecycle of one device (dial, snapshot, pushes, loss, return), the merged
 * state as the device reported it, publishing availability/state/discovery for it,
 * turning checked commands into frames, and re-reading the device's snapshot after a
 * command and every refresh interval (the device neither acknowledges writes nor
 * broadcasts changes, so a fresh connection's first frame is the only truth).
 * Does not own: MQTT routing (gateway.c), transport details (ws.c), field meaning
 * (drivers). */
#ifndef PANDA2MQTT_DEVICE_H
#define PANDA2MQTT_DEVICE_H

#include "mqtt.h"
#include "panda2mqtt/config.h"
#include "panda2mqtt/driver.h"

#include <cjson/cJSON.h>
#include <libwebsockets.h>

/* What every device shares, owned by the gateway. */
struct p2m_device_env {
	struct lws_context *lws;
	struct p2m_mqtt *mqtt;
	const struct p2m_config *cfg;
	struct p2m_safety safety;
	/* Something bridge/info shows changed (online, firmware). */
	void (*changed)(void *ud);
	void *ud;
};

struct p2m_device;

struct p2m_device *p2m_device_new(const struct p2m_device_env *env,
				  const struct p2m_device_conf *conf,
				  const struct p2m_driver *driver);
void p2m_device_free(struct p2m_device *d);

const char *p2m_device_id(const struct p2m_device *d);
const struct p2m_driver *p2m_device_driver(const struct p2m_device *d);

/* Publish everything retained again (after an MQTT connect). */
void p2m_device_republish(struct p2m_device *d);
/* Publish discovery again (Home Assistant came online). */
void p2m_device_publish_discovery(struct p2m_device *d);
/* Mark offline on MQTT (shutdown). */
void p2m_device_publish_offline(struct p2m_device *d);

/* A command object from <base>/<id>/set (or built from set/<field>). Rejections are
 * logged and published as events; nothing is sent unless all of it is valid. */
void p2m_device_command(struct p2m_device *d, const cJSON *command);
/* A command that could not even be parsed: log + event. */
void p2m_device_reject(struct p2m_device *d, const char *field, const char *reason);

/* For bridge/info. */
cJSON *p2m_device_info(const struct p2m_device *d);

#endif
