/* moonraker.h - the virtual Moonraker: a listening lws vhost on the gateway's shared
 * context, so that a Panda Breath (firmware V1.0.3+) bound to it as a Klipper printer
 * runs its own Auto mode from any printer's bed temperature.
 *
 * Owns: the listening socket ([moonraker] listen, port), HTTP GET /printer/info, the
 * WebSocket /websocket (reassembly with a cap, one reply queue per connection), and
 * handing each message to moonraker_rpc.
 * Does not own: the answers (moonraker_rpc.c), where the data comes from (printer.c),
 * or binding: the Panda Breath binds only when the user presses its bind button. */
#ifndef PANDA2MQTT_MOONRAKER_H
#define PANDA2MQTT_MOONRAKER_H

#include "panda2mqtt/config.h"
#include "panda2mqtt/printer_source.h"

#include <libwebsockets.h>

struct p2m_moonraker;

/* NULL with an error logged when it cannot listen. src must outlive it. */
struct p2m_moonraker *p2m_moonraker_new(struct lws_context *ctx,
					const struct p2m_moonraker_conf *conf,
					const struct p2m_printer_source *src);
/* Call after the lws context is destroyed (the vhost's connections go with it). */
void p2m_moonraker_free(struct p2m_moonraker *m);

#endif
