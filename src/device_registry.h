/* device_registry.h - every device the gateway serves, in one list.
 *
 * Owns: creating the devices of the [device] sections that have a host, resolving
 * .local hosts through Avahi, and taking devices that discovery found: one device per
 * id, followed to a new address rather than duplicated. A found device's id comes from
 * its driver (the MAC), so it survives address changes and restarts; a [device <id>]
 * section without host gives a found device its name and options.
 * Does not own: MQTT routing (gateway.c), probing DNS-SD candidates (dnssd_probe.c), a device's
 * own lifecycle (device.c). */
#ifndef PANDA2MQTT_DEVICE_REGISTRY_H
#define PANDA2MQTT_DEVICE_REGISTRY_H

#include "device.h"

#include <stddef.h>

struct p2m_registry;

/* Creates the configured devices at once, starts discovery and the [dialin] endpoint.
 * env must outlive it. NULL (logged) when the endpoint cannot listen. */
struct p2m_registry *p2m_registry_new(const struct p2m_device_env *env);
void p2m_registry_free(struct p2m_registry *reg);

size_t p2m_registry_count(const struct p2m_registry *reg);
struct p2m_device *p2m_registry_at(const struct p2m_registry *reg, size_t i);
/* By id; id need not be NUL-terminated. */
struct p2m_device *p2m_registry_find(const struct p2m_registry *reg, const char *id, size_t len);

#endif
