/* printer.h - the bound printer on MQTT: its source topics in, its Home Assistant device
 * and the virtual Bambu printer's reports out.
 *
 * Owns: subscribing the [printer] source topics on the gateway's broker session and
 * feeding what arrives to printer_source; publishing the printer as its own Home
 * Assistant device (state <base>/<id>, availability, discovery from p2m_printer_driver)
 * when [printer] ha_device is on; and, with [bambu_virtual], publishing
 * device/<serial>/report every interval and at once on a "pushall" request, so that a
 * Panda Breath bound to the mosquitto TLS listener of the recipe (docs/AUTO-MODE.md)
 * sees a Bambu printer.
 * Does not own: the broker session (mqtt.c), value extraction (printer_source.c), the
 * virtual Moonraker (moonraker.c), TLS or passwords (mosquitto's listener does that; the
 * gateway never holds a printer's access code). */
#ifndef PANDA2MQTT_PRINTER_H
#define PANDA2MQTT_PRINTER_H

#include "mqtt.h"
#include "panda2mqtt/config.h"
#include "panda2mqtt/printer_source.h"

#include <stdbool.h>
#include <stddef.h>

struct p2m_printer;

/* NULL when cfg has no [printer]. Subscriptions are added to m (call before
 * p2m_mqtt_start). */
struct p2m_printer *p2m_printer_new(const struct p2m_config *cfg, struct p2m_mqtt *m);
void p2m_printer_free(struct p2m_printer *p);

const struct p2m_printer_source *p2m_printer_get_source(const struct p2m_printer *p);

/* A message from the broker; true when it was one of the printer's topics. */
bool p2m_printer_on_message(struct p2m_printer *p, const char *topic, const char *payload,
			    size_t len);
/* Connected (again): publish everything retained. */
void p2m_printer_on_connect(struct p2m_printer *p);
/* Home Assistant came online: discovery again. */
void p2m_printer_publish_discovery(struct p2m_printer *p);
/* Shutting down: availability offline. */
void p2m_printer_publish_offline(struct p2m_printer *p);

#endif
