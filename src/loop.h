/* loop.h - the glue that puts every library on one GLib main loop.
 *
 * Owns: the lws context in GLib event-library mode, and the fd watch + timer that
 * drive libmosquitto without its own thread. Does not own: protocol logic.
 *
 * Trap handled here and to be kept in mind by callers: an lws call made from a GLib
 * callback (timer, MQTT message) is not noticed by lws until its next own event, so
 * call p2m_loop_lws_kick() after one. */
#ifndef PANDA2MQTT_LOOP_H
#define PANDA2MQTT_LOOP_H

#include <glib.h>
#include <libwebsockets.h>
#include <mosquitto.h>

struct lws_context *p2m_loop_lws_new(GMainLoop *loop, const struct lws_protocols *protocols);
void p2m_loop_lws_kick(struct lws_context *ctx);

struct p2m_mosq_watch;

/* Watch mosq's socket on the default GLib context and run loop_misc every second. */
struct p2m_mosq_watch *p2m_mosq_watch_new(struct mosquitto *mosq);

/* Re-read the socket and want_write after any libmosquitto call: the fd changes on
 * every (re)connect and calls made inside callbacks only queue. */
void p2m_mosq_watch_update(struct p2m_mosq_watch *w);

void p2m_mosq_watch_free(struct p2m_mosq_watch *w);

#endif
