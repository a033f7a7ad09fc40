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
#include <glib.h>
#include <libwebsockets.h>

struct p2m_device;
struct p2m_registry;
struct p2m_firmware;
struct p2m_ws;

/* What every device shares, owned by the gateway (identified: by the registry). */
struct p2m_device_env {
	struct lws_context *lws;
	struct p2m_mqtt *mqtt;
	const struct p2m_config *cfg;
	struct p2m_safety safety;
	/* Something bridge/info shows changed (online, firmware). */
	void (*changed)(void *ud);
	void *ud;
	/* The device's first report: false when it turns out to be a device already
	 * served under another id (it then publishes nothing and awaits its freeing). */
	bool (*identified)(struct p2m_registry *reg, struct p2m_device *d);
	struct p2m_registry *registry;
	/* Firmware images for devices that dial in; NULL: none. */
	struct p2m_firmware *firmware;
};

/* conf must outlive the device. host NULL: no address yet (a .local name being
 * resolved); the device waits for p2m_device_set_address. A family that dials in is
 * never dialled: host is where it connected from, and p2m_device_attach gives it links. */
struct p2m_device *p2m_device_new(const struct p2m_device_env *env,
				  const struct p2m_device_conf *conf,
				  const struct p2m_driver *driver, const char *host, int port);
void p2m_device_free(struct p2m_device *d);

/* The device is (now) at host:port: when that differs from where it was dialled,
 * the link is dropped and dialled there. State and availability are kept until the
 * new link says otherwise. */
void p2m_device_set_address(struct p2m_device *d, const char *host, int port);
/* A device that dialled in: this accepted connection (whose first message, the
 * handshake, is first/len) is now its link, replacing any earlier one. */
void p2m_device_attach(struct p2m_device *d, struct p2m_ws *ws, const char *first, size_t len);
/* Its current link (NULL: none). */
struct p2m_ws *p2m_device_link(const struct p2m_device *d);
/* Where it is dialled, or where it connected from (NULL: a .local name not resolved
 * yet), and the port (0 for one that dials in). */
const char *p2m_device_host(const struct p2m_device *d);
int p2m_device_port(const struct p2m_device *d);
/* Is the device dialled at host:port? */
bool p2m_device_at(const struct p2m_device *d, const char *host, int port);
/* The id its driver derives from what it reported (the MAC); false before it has. */
bool p2m_device_hw_id(const struct p2m_device *d, char *buf, size_t len);
bool p2m_device_is_online(const struct p2m_device *d);
/* Since when it has been offline (monotonic microseconds; it is offline from its
 * creation until it first speaks); 0 while online. */
gint64 p2m_device_offline_since(const struct p2m_device *d);
/* A reload found its [device] section unchanged: conf (equal to the one it has, in the
 * new configuration) replaces it; the link and everything else stay. */
void p2m_device_set_conf(struct p2m_device *d, const struct p2m_device_conf *conf);
/* The [safety] settings changed (env->safety): check the rules against the state now,
 * and send discovery again (the caps are the entities' maximums). */
void p2m_device_safety_changed(struct p2m_device *d);

const char *p2m_device_id(const struct p2m_device *d);
const struct p2m_driver *p2m_device_driver(const struct p2m_device *d);

/* Publish everything retained again (after an MQTT connect). */
void p2m_device_republish(struct p2m_device *d);
/* Publish availability and the whole state again (a while after Home Assistant came
 * online: on brokers whose retained copies it cannot see, docs/BROKERS.md). */
void p2m_device_republish_state(struct p2m_device *d);
/* Publish discovery again (Home Assistant came online). */
void p2m_device_publish_discovery(struct p2m_device *d);
/* Mark offline on MQTT (shutdown). */
void p2m_device_publish_offline(struct p2m_device *d);
/* Remove it from MQTT and Home Assistant (a duplicate being dropped, a device forgotten);
 * it publishes nothing more. */
void p2m_device_withdraw(struct p2m_device *d);
/* The same for a device id the gateway does not serve (retained topics left by an
 * earlier run): empty retained payloads on its discovery, state, report and
 * availability topics. */
void p2m_device_withdraw_id(struct p2m_mqtt *m, const struct p2m_config *cfg, const char *id);

/* A command object from <base>/<id>/set (or built from set/<field>). Rejections are
 * logged and published as events; nothing is sent unless all of it is valid. */
void p2m_device_command(struct p2m_device *d, const cJSON *command);
/* The broker has been gone for [safety] controller_lost_minutes: switch the heating
 * off if it is on (an error line; the event cannot reach the broker). */
void p2m_device_controller_lost(struct p2m_device *d);
/* A command that could not even be parsed: log + event. */
void p2m_device_reject(struct p2m_device *d, const char *field, const char *reason);

/* For bridge/info. */
cJSON *p2m_device_info(const struct p2m_device *d);
/* For the health request: counters and the last link error; no secrets. */
cJSON *p2m_device_health(const struct p2m_device *d);

#endif
