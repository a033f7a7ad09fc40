/* moonraker_rpc.h - the answers of the virtual Moonraker, as text.
 *
 * Owns: JSON-RPC 2.0 over Moonraker's /websocket (printer.info, printer.objects.list,
 * printer.objects.query, printer.objects.subscribe answered like query, server.info,
 * server.connection.identify; -32601 for any other method, -32700 / -32600 / -32602
 * for malformed input) and the body of HTTP GET /printer/info, from a printer status.
 * Does not own: sockets (moonraker.c) or where the status comes from (printer_source.h).
 * Pure, so unit tests call it directly. */
#ifndef PANDA2MQTT_MOONRAKER_RPC_H
#define PANDA2MQTT_MOONRAKER_RPC_H

#include "panda2mqtt/printer_source.h"

#include <stddef.h>

/* Largest request read; Moonraker clients send a few hundred bytes. */
#define P2M_MOONRAKER_MAX_REQUEST ((size_t)16 * 1024)

struct p2m_moonraker_view {
	const struct p2m_printer_status *status;
	bool known;	  /* anything reported yet: Klipper "ready", else "startup" */
	double eventtime; /* seconds, monotonic (Klipper's eventtime) */
	const char *hostname;
	int websocket_count;
	int connection_id; /* of the asking connection */
};

/* The reply to one WebSocket message, or NULL when none is due (a notification: a
 * request without "id"). Caller frees with cJSON_free. */
char *p2m_moonraker_rpc(const char *msg, size_t len, const struct p2m_moonraker_view *v);

/* {"result": printer.info} for GET /printer/info. Caller frees with cJSON_free. */
char *p2m_moonraker_http_printer_info(const struct p2m_moonraker_view *v);

#endif
