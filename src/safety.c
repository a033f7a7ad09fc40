/* safety.c - see safety.h. */
#include "panda2mqtt/safety.h"

enum p2m_trip p2m_safety_hold(const struct p2m_safety *s, const struct p2m_heat_status *h)
{
	/* A faulty sensor first: the chamber reading may be the fault itself. */
	if (s->sensor_fault_cutoff && h->sensor_fault)
		return P2M_TRIP_SENSOR;
	if (s->heater_fault_cutoff && h->heater_fault)
		return P2M_TRIP_HEATER;
	if (h->has_chamber && h->chamber > s->max_chamber_temp)
		return P2M_TRIP_CHAMBER;
	return P2M_TRIP_NONE;
}

enum p2m_trip p2m_safety_check(const struct p2m_safety *s, const struct p2m_heat_status *h)
{
	return h->heating ? p2m_safety_hold(s, h) : P2M_TRIP_NONE;
}

const char *p2m_trip_rule(enum p2m_trip t)
{
	switch (t) {
	case P2M_TRIP_CHAMBER:
		return "max_chamber_temp";
	case P2M_TRIP_SENSOR:
		return "sensor_fault";
	case P2M_TRIP_HEATER:
		return "heater_fault";
	case P2M_TRIP_CONTROLLER_LOST:
		return "controller_lost";
	case P2M_TRIP_NONE:
		break;
	}
	return "none";
}

const char *p2m_trip_reason(enum p2m_trip t)
{
	switch (t) {
	case P2M_TRIP_CHAMBER:
		return "chamber above max_chamber_temp while heating";
	case P2M_TRIP_SENSOR:
		return "a temperature sensor reports a fault while heating";
	case P2M_TRIP_HEATER:
		return "the heater reports a fault while heating";
	case P2M_TRIP_CONTROLLER_LOST:
		return "the MQTT broker has been unreachable for controller_lost_minutes";
	case P2M_TRIP_NONE:
		break;
	}
	return "no rule tripped";
}

const char *p2m_trip_condition(enum p2m_trip t)
{
	switch (t) {
	case P2M_TRIP_CHAMBER:
		return "the chamber is above max_chamber_temp";
	case P2M_TRIP_SENSOR:
		return "a temperature sensor reports a fault";
	case P2M_TRIP_HEATER:
		return "the heater reports a fault";
	case P2M_TRIP_CONTROLLER_LOST:
		return "the MQTT broker is unreachable";
	case P2M_TRIP_NONE:
		break;
	}
	return "no rule holds";
}
