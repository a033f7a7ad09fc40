/* events.h - the events a device publishes on <base>/<id>/event.
 *
 * Owns: the event types the core emits for every family (command checks, replies,
 * safety, firmware updates), which of them apply to a family, and the one list Home
 * Assistant's event entity is given: the core's that apply plus the family's own
 * (driver.h: event_types). Home Assistant drops an event whose type that list lacks, so
 * every emitter takes its type from here or from its driver's list.
 * Does not own: when events happen (device.c, the drivers) or publishing them. */
#ifndef PANDA2MQTT_EVENTS_H
#define PANDA2MQTT_EVENTS_H

#include "panda2mqtt/driver.h"

enum p2m_event {
	P2M_EV_COMMAND_REJECTED,    /* a command was invalid: nothing sent */
	P2M_EV_COMMAND_REFUSED,	    /* a [safety] rule holds: a command that heats refused */
	P2M_EV_COMMAND_NOT_APPLIED, /* the re-read after a command shows a field unchanged */
	P2M_EV_COMMAND_FAILED,	    /* the device answered a request with a failure */
	P2M_EV_DEVICE_REBOOTED,	    /* back after a restart the gateway sent */
	P2M_EV_SAFETY_CUTOFF,	    /* a [safety] rule switched the heating off */
	P2M_EV_UPDATE_SENT,	    /* a firmware image was sent whole */
	P2M_EV_UPDATE_FAILED,	    /* a firmware update stopped */
	/* families whose images go by HTTP (driver http_update): */
	P2M_EV_FIRMWARE_UPDATED,       /* back on the version sent */
	P2M_EV_FIRMWARE_UPDATE_FAILED, /* refused before sending, or did not take: reason */
	P2M_EV_COUNT
};

/* "command_rejected", ... */
const char *p2m_event_name(enum p2m_event ev);

/* Can the core emit this event for a device of this family? */
bool p2m_event_applies(const struct p2m_driver *d, enum p2m_event ev);

/* Every event type a device of this family can publish, without repeats, NULL-terminated
 * in buf (n entries, the NULL included; P2M_MAX_EVENT_TYPES is always enough). */
#define P2M_MAX_EVENT_TYPES 32
const char *const *p2m_event_types(const struct p2m_driver *d, const char **buf, size_t n);

/* Is type one of p2m_event_types(d)? */
bool p2m_event_declared(const struct p2m_driver *d, const char *type);

/* The member that names an event's type. */
#define P2M_EVENT_TYPE_KEY "event_type"

/* {"event_type": type}, for the emitter to add its details to. */
cJSON *p2m_event_new(const char *type);

#endif
