/* families.h - the one list of device families (drivers), like rtl_433's decoder list.
 *
 * Owns: which families exist, looking one up by its name or by its first frame.
 * Does not own: any family (each is one file in src/drivers/, declared here) or what a
 * family is (driver.h). Adding a family: docs/ADDING-A-FAMILY.md. */
#ifndef PANDA2MQTT_FAMILIES_H
#define PANDA2MQTT_FAMILIES_H

#include "panda2mqtt/driver.h"

extern const struct p2m_driver p2m_driver_panda_breath;
extern const struct p2m_driver p2m_driver_ptalk;
extern const struct p2m_driver p2m_driver_json_sensor;

/* NULL-terminated list of every family. The first one is the family of a [device]
 * section with a host and no type key (panda_breath: what the gateway was made for). */
extern const struct p2m_driver *const p2m_families[];

/* The family named name (its [device] type), or NULL. */
const struct p2m_driver *p2m_family_by_name(const char *name);

/* p2m_family_by_name() != NULL, for p2m_config_check_families(). */
bool p2m_family_known(const char *name);

/* "panda_breath, ptalk, ...": for messages. Static storage. */
const char *p2m_family_names(void);

/* The family of a [device] section: its type, or the first family when it has none. */
const struct p2m_driver *p2m_family_of(const char *type);

/* The family whose is_snapshot() accepts this first frame, among those that dial in
 * (dials_in true) or those the gateway dials; NULL when none does. */
const struct p2m_driver *p2m_family_for_snapshot(const cJSON *frame, bool dials_in);

#endif
