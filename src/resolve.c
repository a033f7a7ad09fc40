/* resolve.c - see resolve.h.
 *
 * Why c-ares and not GLib's asynchronous resolver: GResolver (GThreadedResolver in GLib
 * 2.74) runs getaddrinfo() in a worker thread of GTask's pool and hands the answer back
 * to the loop. That is little code and honours nsswitch, but it puts threads in a
 * daemon whose rule is one thread (signals come through a signalfd to avoid even GLib's
 * signal helper thread), and a lookup that is cancelled keeps its thread blocked until
 * the resolver gives up. c-ares is the lookup itself done on the loop: its UDP/TCP
 * sockets are watched like libmosquitto's, its retransmissions are a GLib timer, a
 * cancelled lookup is gone at once, and its time is bounded by the options below. What
 * it gives up is nsswitch: it reads the hosts file and resolv.conf itself, which is what
 * a name like the add-on's core-mosquitto needs (Docker's DNS); .local names go through
 * avahi-daemon instead (mdns.c), as they did before.
 *
 * One c-ares channel per lookup: it reads resolv.conf and the hosts file when it is
 * made (a few small local files), so a changed resolv.conf is seen by the next lookup,
 * and a cancel is ares_destroy() with nothing shared left behind. Lookups are rare
 * (one per (re)connect of a named broker or device). The answer is handed over from an
 * idle callback: c-ares may answer inside ares_getaddrinfo() (hosts file, literals), and
 * a channel must not be destroyed from inside its own callback. */
#include "resolve.h"

#include "panda2mqtt/log.h"

#include <arpa/inet.h>
#include <ares.h>
#include <glib-unix.h>
#include <glib.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* Per server and try; c-ares doubles it on later tries. With the 2 tries: about 3 s for
 * a server that never answers, well inside the callers' connect timeouts. */
#define LOOKUP_TIMEOUT_MS 1000
#define LOOKUP_TRIES	  2

struct watch {
	ares_socket_t fd;
	GIOCondition cond;
	guint source;
};

struct p2m_lookup {
	ares_channel ch;
	p2m_lookup_fn fn;
	void *ud;
	int family;
	GArray *watches; /* struct watch, one per socket c-ares has open */
	guint timer;
	guint answer_idle;
	GPtrArray *addrs; /* the answer, once c-ares has given it */
	char error[128];
};

static char *servers_override;

static gboolean on_timer(gpointer data);

bool p2m_is_address(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return host && (inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1);
}

bool p2m_is_local_name(const char *host)
{
	size_t n = host ? strlen(host) : 0;

	if (n && host[n - 1] == '.')
		n--; /* "printer.local." is the same name */
	return n > 6 && strncasecmp(host + n - 6, ".local", 6) == 0;
}

bool p2m_addr_in(const char *addr, const char *const *addrs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(addrs[i], addr) == 0)
			return true;
	return false;
}

void p2m_lookup_use_servers(const char *csv)
{
	g_free(servers_override);
	servers_override = g_strdup(csv);
}

static void drop_watch(struct p2m_lookup *l, guint i)
{
	struct watch *w = &g_array_index(l->watches, struct watch, i);

	/* May be the source being dispatched: GLib drops it once its callback returns. */
	g_source_remove(w->source);
	g_array_remove_index_fast(l->watches, i);
}

/* When c-ares next wants to be called without socket activity (a retransmission, a
 * timeout), or no timer when it has nothing outstanding. */
static void arm_timer(struct p2m_lookup *l)
{
	struct timeval tv;
	guint ms;

	if (l->timer)
		g_source_remove(l->timer);
	l->timer = 0;
	if (!l->ch || l->addrs || !ares_timeout(l->ch, NULL, &tv))
		return;
	ms = (guint)tv.tv_sec * 1000 + ((guint)tv.tv_usec + 999) / 1000;
	l->timer = g_timeout_add(ms, on_timer, l);
}

static gboolean on_timer(gpointer data)
{
	struct p2m_lookup *l = data;

	l->timer = 0;
	ares_process_fd(l->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	arm_timer(l);
	return G_SOURCE_REMOVE;
}

static gboolean on_fd(gint fd, GIOCondition cond, gpointer data)
{
	struct p2m_lookup *l = data;

	/* An error or hang-up is read: c-ares then sees the socket's error and moves on. */
	ares_process_fd(l->ch, (cond & (G_IO_IN | G_IO_HUP | G_IO_ERR)) ? fd : ARES_SOCKET_BAD,
			(cond & G_IO_OUT) ? fd : ARES_SOCKET_BAD);
	arm_timer(l);
	/* sock_state_cb has removed or replaced this source if c-ares closed the socket or
	 * now wants something else; GLib ignores the return value of a removed source. */
	return G_SOURCE_CONTINUE;
}

/* c-ares opened, changed or closed a socket. */
static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct p2m_lookup *l = data;
	GIOCondition cond = (readable ? G_IO_IN : 0) | (writable ? G_IO_OUT : 0);

	for (guint i = 0; i < l->watches->len; i++) {
		const struct watch *w = &g_array_index(l->watches, struct watch, i);
		if (w->fd != fd)
			continue;
		if (w->cond == cond)
			return;
		drop_watch(l, i);
		break;
	}
	if (cond) {
		struct watch w = {.fd = fd, .cond = cond};
		w.source = g_unix_fd_add(fd, cond | G_IO_HUP | G_IO_ERR, on_fd, l);
		g_array_append_val(l->watches, w);
	}
}

static void teardown(struct p2m_lookup *l)
{
	if (l->ch)
		ares_destroy(l->ch); /* closes its sockets (through on_sock_state) */
	l->ch = NULL;
	while (l->watches->len)
		drop_watch(l, l->watches->len - 1);
	if (l->timer)
		g_source_remove(l->timer);
	l->timer = 0;
	if (l->answer_idle)
		g_source_remove(l->answer_idle);
	l->answer_idle = 0;
}

static void lookup_free(struct p2m_lookup *l)
{
	teardown(l);
	g_array_free(l->watches, TRUE);
	if (l->addrs)
		g_ptr_array_free(l->addrs, TRUE);
	g_free(l);
}

static gboolean on_answer(gpointer data)
{
	struct p2m_lookup *l = data;
	p2m_lookup_fn fn = l->fn;
	void *ud = l->ud;
	GPtrArray *addrs = l->addrs;
	char error[sizeof(l->error)];

	l->answer_idle = 0;
	l->addrs = NULL;
	g_strlcpy(error, l->error, sizeof(error));
	lookup_free(l);
	fn(ud, (const char *const *)addrs->pdata, addrs->len, addrs->len ? NULL : error);
	g_ptr_array_free(addrs, TRUE);
	return G_SOURCE_REMOVE;
}

static void add_address(struct p2m_lookup *l, const struct sockaddr *sa)
{
	char buf[INET6_ADDRSTRLEN];
	const void *a;

	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	else
		return;
	if ((l->family != AF_UNSPEC && sa->sa_family != l->family) ||
	    !inet_ntop(sa->sa_family, a, buf, sizeof(buf)))
		return;
	for (guint i = 0; i < l->addrs->len; i++)
		if (strcmp(g_ptr_array_index(l->addrs, i), buf) == 0)
			return;
	g_ptr_array_add(l->addrs, g_strdup(buf));
}

static void on_addrinfo(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	struct p2m_lookup *l = arg;

	(void)timeouts;
	if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
		ares_freeaddrinfo(res); /* cancelled: l is being freed */
		return;
	}
	l->addrs = g_ptr_array_new_with_free_func(g_free);
	if (status == ARES_SUCCESS && res)
		for (const struct ares_addrinfo_node *n = res->nodes; n; n = n->ai_next)
			add_address(l, n->ai_addr);
	if (status != ARES_SUCCESS)
		g_strlcpy(l->error, ares_strerror(status), sizeof(l->error));
	else if (!l->addrs->len)
		g_strlcpy(l->error,
			  l->family == AF_INET	  ? "no IPv4 address"
			  : l->family == AF_INET6 ? "no IPv6 address"
						  : "no address",
			  sizeof(l->error));
	ares_freeaddrinfo(res);
	l->answer_idle = g_idle_add(on_answer, l);
}

static int channel_new(struct p2m_lookup *l)
{
	static bool library_ready;
	struct ares_options o;
	int rc;

	if (!library_ready) {
		rc = ares_library_init(ARES_LIB_INIT_ALL);
		if (rc != ARES_SUCCESS)
			return rc;
		library_ready = true;
	}
	memset(&o, 0, sizeof(o));
	o.timeout = LOOKUP_TIMEOUT_MS;
	o.tries = LOOKUP_TRIES;
	o.sock_state_cb = on_sock_state;
	o.sock_state_cb_data = l;
	rc = ares_init_options(&l->ch, &o,
			       ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB);
	if (rc != ARES_SUCCESS) {
		l->ch = NULL;
		return rc;
	}
	if (servers_override)
		rc = ares_set_servers_ports_csv(l->ch, servers_override);
	return rc;
}

struct p2m_lookup *p2m_lookup_start(const char *name, int family, p2m_lookup_fn fn, void *ud)
{
	struct p2m_lookup *l = g_new0(struct p2m_lookup, 1);
	struct ares_addrinfo_hints hints;
	int rc;

	l->fn = fn;
	l->ud = ud;
	l->family = family;
	l->watches = g_array_new(FALSE, FALSE, sizeof(struct watch));
	rc = channel_new(l);
	if (rc != ARES_SUCCESS) {
		/* No resolver at all (out of memory, unreadable configuration): an answer
		 * like any other, from the loop. */
		p2m_debug("resolve: cannot start a lookup of %s: %s", name, ares_strerror(rc));
		l->addrs = g_ptr_array_new_with_free_func(g_free);
		g_strlcpy(l->error, ares_strerror(rc), sizeof(l->error));
		l->answer_idle = g_idle_add(on_answer, l);
		return l;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	ares_getaddrinfo(l->ch, name, NULL, &hints, on_addrinfo, l);
	arm_timer(l);
	return l;
}

void p2m_lookup_cancel(struct p2m_lookup *l)
{
	if (l)
		lookup_free(l);
}
