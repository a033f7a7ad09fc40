/* safety.h - the [safety] rules that watch what a device reports.
 *
 * Owns: deciding, from a device's heat status (driver.h), whether its heating must be
 * switched off now (the chamber above max_chamber_temp, a sensor fault or a heater fault,
 * while heating), and whether a rule's condition holds at all (then no command may
 * switch heating on). Names the rules for events and logs.
 * Does not own: the target and drying-length caps (applied to commands: command.c, the
 * entity tables' ranges), sending the off command or refusing commands (device.c), or
 * the controller-lost rule, which watches the broker (gateway.c). */
#ifndef PANDA2MQTT_SAFETY_H
#define PANDA2MQTT_SAFETY_H

#include "panda2mqtt/driver.h"

enum p2m_trip {
	P2M_TRIP_NONE,
	P2M_TRIP_CHAMBER,	  /* chamber above max_chamber_temp while heating */
	P2M_TRIP_SENSOR,	  /* a sensor fault while heating */
	P2M_TRIP_HEATER,	  /* a heater fault while heating */
	P2M_TRIP_CONTROLLER_LOST, /* the broker gone for controller_lost_minutes */
};

/* The rule a device's report trips, or P2M_TRIP_NONE (also when not heating). */
enum p2m_trip p2m_safety_check(const struct p2m_safety *s, const struct p2m_heat_status *h);

/* The rule whose condition holds, heating or not (a hot chamber, a fault), or
 * P2M_TRIP_NONE: while one does, a command that would heat is refused. */
enum p2m_trip p2m_safety_hold(const struct p2m_safety *s, const struct p2m_heat_status *h);

/* "max_chamber_temp", "sensor_fault", "heater_fault", "controller_lost": the event's
 * "rule". */
const char *p2m_trip_rule(enum p2m_trip t);

/* What tripped, in words, for the log line. */
const char *p2m_trip_reason(enum p2m_trip t);

/* What holds, in words (a refused command's reason). */
const char *p2m_trip_condition(enum p2m_trip t);

#endif
