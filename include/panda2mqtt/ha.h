/* ha.h - Home Assistant MQTT discovery built from a driver's entity table, and the
 * gateway's own device.
 *
 * Owns: the device-based discovery payload (<prefix>/device/<id>/config): device and
 * origin blocks, availability, one component per table row, and the "Forget" button of
 * a device the gateway was not configured with; the bridge device's payload.
 * Does not own: publishing, or when to (gateway.c re-sends on homeassistant/status). */
#ifndef PANDA2MQTT_HA_H
#define PANDA2MQTT_HA_H

#include "panda2mqtt/driver.h"
#include "panda2mqtt/entity.h"

/* The option a select offers while there is nothing to choose from yet. */
#define P2M_HA_NO_OPTIONS "Scan first"

struct p2m_ha_device {
	const char *id;		/* device id: topic path element and unique_id part */
	const char *name;	/* friendly name */
	const char *mac;	/* "aa:bb:..." for Home Assistant's connections; NULL: none */
	const char *base_topic; /* e.g. "panda2mqtt" */
	const char *fw_version; /* NULL when not known yet */
	const char *host;	/* for configuration_url */
	int port;
	const struct p2m_safety *safety; /* caps heater targets */
	const struct p2m_view *view;	 /* for options that come from the device */
	/* found on the network or dialled in: a "Forget" button that asks the gateway
	 * (<base>/bridge/request/device/remove) to withdraw it */
	bool forget;
};

cJSON *p2m_ha_discovery(const struct p2m_driver *d, const struct p2m_ha_device *dev);

/* What the payload above takes from the device's state and address (firmware, host,
 * options read from the state), as one string: equal strings, equal payloads. Far
 * cheaper than the payload, so that every frame can ask whether discovery changed.
 * Caller frees with g_free. */
char *p2m_ha_discovery_inputs(const struct p2m_driver *d, const struct p2m_ha_device *dev);

/* May these changes of the device's state change its discovery? (driver.h:
 * discovery_inputs, the options_fn rows' inputs, optional rows.) */
bool p2m_ha_discovery_depends(const struct p2m_driver *d, const struct p2m_changes *c);

/* The gateway itself as a Home Assistant device (zigbee2mqtt's "Bridge"): connection
 * state, version, devices online and total, the log level, buttons to reload the
 * configuration and (browse: [discovery] mdns on) to browse DNS-SD again. Everything is
 * read from <base>/bridge/state and <base>/bridge/info; commands are requests to the
 * bridge API (api.h). */
struct p2m_ha_bridge {
	const char *id;		/* p2m_config_bridge_id() */
	const char *base_topic; /* e.g. "panda2mqtt" */
	bool browse;
};
cJSON *p2m_ha_bridge_discovery(const struct p2m_ha_bridge *b);

/* "<prefix>/device/<id>/config"; caller frees with g_free. */
char *p2m_ha_discovery_topic(const char *prefix, const char *id);

#endif
