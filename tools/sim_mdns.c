/*
 * sim_mdns.c - the simulator's DNS-SD announcement through a running avahi-daemon.
 *
 * Owns: publishing one _http._tcp service (TXT board=... and path=/, as the Panda Breath
 * firmware does) and optionally an address record HOST.local -> IPv4 that the service
 * points at; the avahi-client on its own AvahiThreadedPoll thread; reconnecting after the
 * bus or the daemon goes away; renaming on collisions. Does not own: anything of the
 * simulated device (the other files sim.h lists), browsing or resolving.
 *
 * Threads: the state below is shared between the simulator's thread and avahi's. avahi's
 * callbacks (client, entry group, timeout) run on avahi's thread with the poll's lock
 * already held; the public functions take it with avahi_threaded_poll_lock. Before
 * avahi_threaded_poll_start and after avahi_threaded_poll_stop only the caller runs.
 *
 * Traps: avahi_client_new calls the client callback (S_RUNNING or CONNECTING) before it
 * returns, so the callbacks use their client argument, not m.client. A client in
 * AVAHI_CLIENT_FAILURE (daemon or bus gone; AVAHI_CLIENT_NO_FAIL does not prevent it) must
 * be replaced, and is freed from a timeout rather than inside its own callback (which runs
 * inside libdbus' dispatch of that client's connection). Freeing a client frees its entry
 * groups. Without AVAHI_PUBLISH_NO_REVERSE an address whose reverse name the daemon already
 * publishes (its own 127.0.0.1) fails with "Local name collision" whatever the host name.
 */
#include "sim_mdns.h"

#include <avahi-client/client.h>
#include <avahi-client/publish.h>
#include <avahi-common/address.h>
#include <avahi-common/alternative.h>
#include <avahi-common/domain.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-common/thread-watch.h>
#include <avahi-common/timeval.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SERVICE_TYPE "_http._tcp"
#define RECONNECT_MS 1000 /* after the daemon or the bus went away */
#define BUS_RETRY_MS 2000 /* while avahi_client_new fails (no D-Bus) */
#define MAX_RENAMES  32	  /* in one publish attempt */

static struct {
	AvahiThreadedPoll *poll;
	const AvahiPoll *api;
	AvahiClient *client;	/* NULL while there is no bus */
	AvahiEntryGroup *group; /* belongs to client */
	AvahiTimeout *timer;	/* replaces the client: reconnect or bus retry */
	char *name;		/* instance name, renamed on collision */
	char *host;		/* address record name or NULL, renamed on collision */
	char *board_txt;	/* "board=..." */
	AvahiAddress address;
	uint16_t port;
	bool want;	  /* announced unless "mdns off" */
	bool bus_failing; /* avahi_client_new failed last time (logged once) */
} m;

static void mlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void mlog(const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "panda2mqtt-sim: mdns: %s\n", line);
	fflush(stderr);
}

static void connect_client(void);

static void timer_cb(AvahiTimeout *t, void *ud)
{
	(void)ud;
	m.api->timeout_update(t, NULL);
	if (m.client) {
		avahi_client_free(m.client); /* frees m.group too */
		m.client = NULL;
		m.group = NULL;
	}
	connect_client();
}

static void schedule(unsigned ms)
{
	struct timeval tv;

	avahi_elapse_time(&tv, ms, 0);
	if (m.timer)
		m.api->timeout_update(m.timer, &tv);
	else if (!(m.timer = m.api->timeout_new(m.api, &tv, timer_cb, NULL)))
		mlog("cannot create a timer: reconnecting is off");
}

/* "panda-b.local" -> "panda-b-2.local": avahi_alternative_host_name takes one label. */
static char *alternative_host(const char *host)
{
	const char *dot = strchr(host, '.');
	size_t n = dot ? (size_t)(dot - host) : strlen(host);
	char label[AVAHI_LABEL_MAX], *alt, *r;

	if (n >= sizeof(label))
		return NULL;
	memcpy(label, host, n);
	label[n] = '\0';
	if (!(alt = avahi_alternative_host_name(label)))
		return NULL;
	r = avahi_strdup_printf("%s%s", alt, dot ? dot : "");
	avahi_free(alt);
	return r;
}

static bool rename_service(void)
{
	char *n = avahi_alternative_service_name(m.name);

	if (!n)
		return false;
	mlog("name collision: '%s' is taken, renamed to '%s'", m.name, n);
	avahi_free(m.name);
	m.name = n;
	return true;
}

static bool rename_host(void)
{
	char *n = alternative_host(m.host);

	if (!n)
		return false;
	mlog("name collision: %s is taken, renamed to %s", m.host, n);
	avahi_free(m.host);
	m.host = n;
	return true;
}

static void group_cb(AvahiEntryGroup *g, AvahiEntryGroupState state, void *ud);

/* (Re)build and commit the entry group, when wanted and the daemon is running. */
static void publish(AvahiClient *c)
{
	const char *what = "";
	int r = AVAHI_OK, i;

	if (!m.want || avahi_client_get_state(c) != AVAHI_CLIENT_S_RUNNING)
		return;
	if (!m.group && !(m.group = avahi_entry_group_new(c, group_cb, NULL))) {
		mlog("cannot create an entry group: %s", avahi_strerror(avahi_client_errno(c)));
		return;
	}
	for (i = 0; i <= MAX_RENAMES; i++) {
		avahi_entry_group_reset(m.group);
		/* NO_REVERSE: no PTR for the address, which would collide with the daemon's
		 * own (127.0.0.1) or another simulator's on the same address. avahi adds A
		 * records as UNIQUE|ALLOW_MULTIPLE: the same name from another local group is
		 * no collision (the addresses merge); only probing on the network finds one. */
		if (m.host) {
			what = "address record";
			r = avahi_entry_group_add_address(
			    m.group, AVAHI_IF_UNSPEC, AVAHI_PROTO_INET, AVAHI_PUBLISH_NO_REVERSE,
			    m.host, &m.address);
			if (r == AVAHI_ERR_COLLISION && rename_host())
				continue;
			if (r < 0)
				break;
		}
		what = "service";
		r = avahi_entry_group_add_service(m.group, AVAHI_IF_UNSPEC, AVAHI_PROTO_INET, 0,
						  m.name, SERVICE_TYPE, NULL, m.host, m.port,
						  m.board_txt, "path=/", NULL);
		if (r == AVAHI_ERR_COLLISION && rename_service())
			continue;
		if (r < 0)
			break;
		what = "commit";
		r = avahi_entry_group_commit(m.group);
		break;
	}
	if (r < 0) {
		mlog("cannot announce '%s' (%s): %s", m.name, what, avahi_strerror(r));
		avahi_entry_group_reset(m.group);
	}
}

static void group_cb(AvahiEntryGroup *g, AvahiEntryGroupState state, void *ud)
{
	char addr[AVAHI_ADDRESS_STR_MAX];

	(void)ud;
	switch (state) {
	case AVAHI_ENTRY_GROUP_ESTABLISHED:
		if (m.host)
			mlog("announced '%s' %s port %u (%s path=/), %s -> %s", m.name,
			     SERVICE_TYPE, m.port, m.board_txt, m.host,
			     avahi_address_snprint(addr, sizeof(addr), &m.address));
		else
			mlog("announced '%s' %s port %u (%s path=/)", m.name, SERVICE_TYPE, m.port,
			     m.board_txt);
		break;
	case AVAHI_ENTRY_GROUP_COLLISION:
		/* Found while probing: the group does not say which record collided. */
		if (!rename_service() || (m.host && !rename_host())) {
			mlog("name collision and no alternative name: not announced");
			avahi_entry_group_reset(g);
			break;
		}
		publish(avahi_entry_group_get_client(g));
		break;
	case AVAHI_ENTRY_GROUP_FAILURE:
		mlog("announcing '%s' failed: %s", m.name,
		     avahi_strerror(avahi_client_errno(avahi_entry_group_get_client(g))));
		break;
	case AVAHI_ENTRY_GROUP_UNCOMMITED:
	case AVAHI_ENTRY_GROUP_REGISTERING:
		break;
	}
}

static void client_cb(AvahiClient *c, AvahiClientState state, void *ud)
{
	(void)ud;
	switch (state) {
	case AVAHI_CLIENT_S_RUNNING:
		publish(c);
		break;
	case AVAHI_CLIENT_S_COLLISION:
	case AVAHI_CLIENT_S_REGISTERING:
		/* The daemon's own host name changes; it goes S_RUNNING again after. */
		if (m.group)
			avahi_entry_group_reset(m.group);
		break;
	case AVAHI_CLIENT_CONNECTING:
		mlog("waiting for avahi-daemon");
		break;
	case AVAHI_CLIENT_FAILURE:
		mlog("lost avahi-daemon (%s): reconnecting", avahi_strerror(avahi_client_errno(c)));
		if (m.group) {
			avahi_entry_group_free(m.group); /* no server call: the bus is closed */
			m.group = NULL;
		}
		schedule(RECONNECT_MS);
		break;
	}
}

static void connect_client(void)
{
	int err = AVAHI_OK;

	m.client = avahi_client_new(m.api, AVAHI_CLIENT_NO_FAIL, client_cb, NULL, &err);
	if (!m.client) {
		m.group = NULL; /* one made by the callback was freed with the client */
		if (!m.bus_failing)
			mlog("cannot connect to D-Bus (%s): retrying every %u s",
			     avahi_strerror(err), BUS_RETRY_MS / 1000);
		m.bus_failing = true;
		schedule(BUS_RETRY_MS);
		return;
	}
	if (m.bus_failing)
		mlog("connected to D-Bus");
	m.bus_failing = false;
}

static void clear(void)
{
	avahi_free(m.name);
	avahi_free(m.host);
	avahi_free(m.board_txt);
	memset(&m, 0, sizeof(m));
}

int sim_mdns_start(const char *name, const char *txt_board, int port, const char *address_host,
		   const char *address)
{
	if (m.poll) {
		mlog("already started");
		return -1;
	}
	if (!name || !avahi_is_valid_service_name(name)) {
		mlog("'%s' is not a DNS-SD instance name (1-63 bytes of UTF-8)", name ? name : "");
		return -1;
	}
	if (!txt_board || strlen(txt_board) > 255 - strlen("board=")) {
		mlog("the board TXT value is missing or too long");
		return -1;
	}
	if (port < 1 || port > 65535) {
		mlog("port %d is not 1-65535", port);
		return -1;
	}
	if (address_host &&
	    (!avahi_is_valid_fqdn(address_host) ||
	     !avahi_address_parse(address ? address : "", AVAHI_PROTO_INET, &m.address))) {
		mlog("'%s' -> '%s' is not a host name and an IPv4 address", address_host,
		     address ? address : "");
		return -1;
	}

	m.name = avahi_strdup(name);
	m.host = address_host ? avahi_strdup(address_host) : NULL;
	m.board_txt = avahi_strdup_printf("board=%s", txt_board);
	m.port = (uint16_t)port;
	m.want = true;
	if (!m.name || (address_host && !m.host) || !m.board_txt ||
	    !(m.poll = avahi_threaded_poll_new())) {
		mlog("out of memory");
		clear();
		return -1;
	}
	m.api = avahi_threaded_poll_get(m.poll);

	/* The thread is not running yet: no lock needed for the first attempt. */
	connect_client();
	if (avahi_threaded_poll_start(m.poll) < 0) {
		mlog("cannot start the avahi thread");
		sim_mdns_stop();
		return -1;
	}
	return 0;
}

void sim_mdns_set_published(bool on)
{
	if (!m.poll)
		return;
	avahi_threaded_poll_lock(m.poll);
	m.want = on;
	if (!on) {
		if (m.group)
			avahi_entry_group_reset(m.group);
		mlog("withdrew '%s'", m.name);
	} else if (m.client && avahi_client_get_state(m.client) == AVAHI_CLIENT_S_RUNNING) {
		publish(m.client);
	} else {
		mlog("'%s' will be announced once avahi-daemon is there", m.name);
	}
	avahi_threaded_poll_unlock(m.poll);
}

void sim_mdns_stop(void)
{
	if (!m.poll)
		return;
	avahi_threaded_poll_stop(m.poll); /* -1 when it never ran; the thread is gone now */
	if (m.group) {
		/* Tells the daemon to withdraw (goodbye packets) while the bus is still up. */
		avahi_entry_group_free(m.group);
		m.group = NULL;
		if (m.want)
			mlog("withdrew '%s'", m.name);
	}
	if (m.client)
		avahi_client_free(m.client);
	if (m.timer)
		m.api->timeout_free(m.timer);
	avahi_threaded_poll_free(m.poll);
	clear();
}
