/* drivers.h - the registry of device families, like rtl_433's decoder list.
 * Owns: the list. Adding a family is one line in registry.c and one file. */
#ifndef PANDA2MQTT_DRIVERS_H
#define PANDA2MQTT_DRIVERS_H

#include "panda2mqtt/driver.h"

extern const struct p2m_driver p2m_driver_panda_breath;
extern const struct p2m_driver p2m_driver_ptalk;

/* NULL-terminated list of every family. */
extern const struct p2m_driver *const p2m_drivers[];

/* The family whose is_snapshot() accepts this first frame, among those that dial in
 * (dials_in true) or those the gateway dials; NULL when none does. */
const struct p2m_driver *p2m_driver_for_snapshot(const cJSON *frame, bool dials_in);

#endif
