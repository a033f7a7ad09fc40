/* loop.h - the glue that puts every library on one GLib main loop.
 *
 * Owns: the lws context on a libuv loop that runs inside GLib (one GSource), and the
 * fd watch + timer that drive libmosquitto without its own thread. Does not own:
 * protocol logic.
 *
 * Trap handled here and to be kept in mind by callers: an lws call made from a GLib
 * callback (timer, MQTT message) is not noticed by lws until its next own event, so
 * call p2m_loop_lws_kick() after one. */
#ifndef PANDA2MQTT_LOOP_H
#define PANDA2MQTT_LOOP_H

#include <glib.h>
#include <libwebsockets.h>
#include <mosquitto.h>

/* The lws context, on a libuv loop run by the default GLib main context. One per process. */
struct lws_context *p2m_loop_lws_new(const struct lws_protocols *protocols);
void p2m_loop_lws_kick(struct lws_context *ctx);

/* Destroy the context (NULL: none) and the libuv loop under it. */
void p2m_loop_lws_destroy(struct lws_context *ctx);

/* Once a second, fn(ud) for every registered pair. Objects that each need a coarse timer
 * (staleness, retries, refreshes) share this one GLib source: GLib visits every source
 * on every loop iteration, so a timer per device made each frame cost O(devices)
 * (docs/BENCHMARKS.md). fn may remove any tick, its own included. */
struct p2m_tick;
struct p2m_tick *p2m_tick_add(void (*fn)(void *ud), void *ud);
void p2m_tick_remove(struct p2m_tick *t); /* NULL: nothing */

struct p2m_mosq_watch;

/* Watch mosq's socket on the default GLib context and run loop_misc every second. */
struct p2m_mosq_watch *p2m_mosq_watch_new(struct mosquitto *mosq);

/* Re-read the socket and want_write after any libmosquitto call: the fd changes on
 * every (re)connect and calls made inside callbacks only queue. */
void p2m_mosq_watch_update(struct p2m_mosq_watch *w);

void p2m_mosq_watch_free(struct p2m_mosq_watch *w);

#endif
