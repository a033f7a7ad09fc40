/* bridge.h - the gateway itself on MQTT: <base>/bridge/info and its Home Assistant
 * device (zigbee2mqtt's "Bridge" device is the model).
 *
 * Owns: bridge/info (version, topics, log level, devices online and total, every
 * device), coalesced into one publish per turn of the loop however many devices change;
 * the bridge device's discovery (<prefix>/device/<base>_bridge/config; ha.c builds it);
 * the log level at run time (ours and libwebsockets'); the service manager's STATUS line.
 * Does not own: bridge/state (mqtt.c: online and the Will), requests (bridge_api.c), the
 * devices (device_registry.c). */
#ifndef PANDA2MQTT_BRIDGE_H
#define PANDA2MQTT_BRIDGE_H

#include "device_registry.h"
#include "mqtt.h"
#include "panda2mqtt/config.h"
#include "panda2mqtt/log.h"

struct p2m_bridge;

/* cfg and m must outlive it; the registry comes later (it reports changes to us). */
struct p2m_bridge *p2m_bridge_new(const struct p2m_config *cfg, struct p2m_mqtt *m);
void p2m_bridge_set_registry(struct p2m_bridge *b, struct p2m_registry *reg);
void p2m_bridge_free(struct p2m_bridge *b);

/* Something bridge/info shows changed: published once the loop is idle. */
void p2m_bridge_changed(struct p2m_bridge *b);
/* The bridge device's discovery (connect, Home Assistant's birth, a reload). */
void p2m_bridge_publish_discovery(struct p2m_bridge *b);
/* The log level now (a request, the select in Home Assistant, a reload). */
void p2m_bridge_set_log_level(struct p2m_bridge *b, enum p2m_log_level level);
/* "N of M devices online", for the service manager. Caller frees with g_free. */
char *p2m_bridge_status(const struct p2m_bridge *b);

#endif
