/* device_registry.h - every device the gateway serves, in one list.
 *
 * Owns: creating the devices of the [device] sections that have a host, resolving
 * .local hosts through Avahi, and taking devices that discovery found: one device per
 * id, followed to a new address rather than duplicated. A found device's id comes from
 * its driver (the MAC), so it survives address changes and restarts; a [device <id>]
 * section without host gives a found device its name and options. Applying a reloaded
 * configuration to the devices; forgetting found and dialled-in devices (on request, or
 * [discovery] forget_after days offline), also those only the broker still remembers.
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

/* The configuration (env->cfg) has been replaced; old is the previous one, which the
 * devices' sections still point into until this returns. Unchanged devices keep their
 * links; changed ones are made anew; removed ones are withdrawn; [safety] and
 * [discovery] are applied. Not from inside a device's callback. */
void p2m_registry_reload(struct p2m_registry *reg, const struct p2m_config *old);

/* device/remove: withdraw a found or dialled-in device (or an id only the broker still
 * holds topics of) until it is found or dials in again. 0, or -1 with why in err (a
 * configured device; an unknown id). */
int p2m_registry_forget(struct p2m_registry *reg, const char *id, char *err, size_t errlen);
/* The broker holds a retained availability for id (heard when subscribing): an id not
 * served and not configured is remembered as one that may be forgotten. */
void p2m_registry_note_retained(struct p2m_registry *reg, const char *id);
/* Those ids, as a JSON array (caller frees). */
cJSON *p2m_registry_gone(const struct p2m_registry *reg);

/* mdns/browse: browse DNS-SD from scratch. 0, or -1 with why in err (mdns off). */
int p2m_registry_rebrowse(struct p2m_registry *reg, char *err, size_t errlen);

#endif
