/* sim_mdns.h - the simulator's DNS-SD announcement through a running avahi-daemon.
 *
 * Owns: one _http._tcp service with TXT board=... and path=/ (what a Panda Breath
 * announces), optionally an address record NAME.local -> IPv4 that the service points at;
 * the avahi-client on its own AvahiThreadedPoll thread (the simulator's loop is
 * libwebsockets'); surviving an absent D-Bus, an absent daemon and daemon restarts;
 * renaming on a name collision. Does not own: the simulator's state, options or control
 * lines (sim_device.c, sim_main.c, sim_control.c), nor browsing or resolving anything.
 *
 * Threads: every function here is called from the simulator's thread and takes the poll's
 * lock; avahi's callbacks run on the avahi thread. Logs go to stderr as
 * "panda2mqtt-sim: mdns: ...". */
#ifndef SIM_MDNS_H
#define SIM_MDNS_H

#include <stdbool.h>

/* Announce instance name (a DNS-SD instance name, 1-63 bytes of UTF-8) of type _http._tcp
 * on port, with TXT board=txt_board and path=/. With address_host (e.g. "panda-b.local"),
 * also publish address_host -> address (an IPv4 literal) and point the service at it;
 * otherwise the service points at the daemon's own host name. A missing bus or daemon is
 * not an error: it is logged and the announcement follows when they appear. Returns 0, or
 * -1 after a message on stderr (invalid argument, already started, no thread). */
int sim_mdns_start(const char *name, const char *txt_board, int port, const char *address_host,
		   const char *address);

/* false: withdraw the announcement (goodbye packets); true: announce it again. Remembered
 * across daemon restarts. Does nothing before sim_mdns_start. */
void sim_mdns_set_published(bool on);

/* Withdraw, stop the thread and free everything; safe to call when never started. */
void sim_mdns_stop(void);

#endif
