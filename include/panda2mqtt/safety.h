/* safety.h - the [safety] rules that watch what a device reports.
 *
 * Owns: deciding, from a device's heat status (driver.h), whether its heating must be
 * switched off now: the chamber above max_chamber_temp while heating, or a sensor
 * fault while heating. Names the rules for events and logs.
 * Does not own: the target cap (applied to commands, command.c), the drying limit of
 * 12 h (the entity table's range), sending the off command (device.c), or the
 * controller-lost rule, which watches the broker (gateway.c). */
#ifndef PANDA2MQTT_SAFETY_H
#define PANDA2MQTT_SAFETY_H

#include "panda2mqtt/driver.h"

enum p2m_trip {
	P2M_TRIP_NONE,
	P2M_TRIP_CHAMBER,	  /* chamber above max_chamber_temp while heating */
	P2M_TRIP_SENSOR,	  /* a sensor fault while heating */
	P2M_TRIP_CONTROLLER_LOST, /* the broker gone for controller_lost_minutes */
};

/* The rule a device's report trips, or P2M_TRIP_NONE (also when not heating). */
enum p2m_trip p2m_safety_check(const struct p2m_safety *s, const struct p2m_heat_status *h);

/* "max_chamber_temp", "sensor_fault", "controller_lost": the event's "rule". */
const char *p2m_trip_rule(enum p2m_trip t);

/* What tripped, in words, for the log line. */
const char *p2m_trip_reason(enum p2m_trip t);

#endif
