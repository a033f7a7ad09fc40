/* gateway.h - the daemon's run: one loop, one broker session, the devices.
 *
 * Owns: start-up in order (loop, lws, MQTT, devices), routing MQTT messages to
 * devices, <base>/bridge/info, Home Assistant's birth message, and the ordered
 * shutdown on SIGTERM/SIGINT (devices and bridge marked offline, then disconnect).
 * Does not own: the configuration file (config.c) or any device logic. */
#ifndef PANDA2MQTT_GATEWAY_H
#define PANDA2MQTT_GATEWAY_H

#include "panda2mqtt/config.h"

/* Runs until a stop signal; returns the process exit code. */
int p2m_gateway_run(const struct p2m_config *cfg);

#endif
