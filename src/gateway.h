/* gateway.h - the daemon's run: one loop, one broker session, the devices.
 *
 * Owns: start-up in order (loop, lws, MQTT, devices), routing MQTT messages (to the
 * devices, the bridge API, the printer), Home Assistant's birth message, reloading the
 * configuration (SIGHUP, the reload request), telling the service manager (service.h)
 * and the ordered shutdown on SIGTERM/SIGINT (devices and bridge marked offline, then
 * disconnect).
 * Does not own: parsing the configuration file (config.c), bridge/info and the bridge
 * device (bridge.c), requests (bridge_api.c) or any device logic. */
#ifndef PANDA2MQTT_GATEWAY_H
#define PANDA2MQTT_GATEWAY_H

#include "panda2mqtt/config.h"

#include <stdbool.h>

/* Runs until a stop signal; returns the process exit code. cfg (loaded from path, which
 * a reload reads again) is the gateway's until it returns: reloads replace its content.
 * verbose: debug logging whatever [log] level says. */
int p2m_gateway_run(struct p2m_config *cfg, const char *path, bool verbose);

#endif
