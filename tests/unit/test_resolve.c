/* Unit tests: name lookups on the loop (resolve.c), against a tiny DNS server that runs in
 * this process on the same GLib loop (UDP on loopback, an ephemeral port): c-ares' real
 * sockets, fd watches and timers, with no network and no change to the machine.
 * Covered: an answer that changes between two lookups is followed (no cache), several
 * addresses, a name that does not exist, a server that never answers (the timer path,
 * bounded), a server that is not there, cancelling (no callback afterwards, nothing
 * leaked: run under ASan), literals, and that an answer never comes before start returns. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "resolve.h"

#include <arpa/inet.h>
#include <glib-unix.h>
#include <glib.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Every wait in these tests: far above what a lookup needs on a busy machine. */
#define WAIT_US ((gint64)20 * G_USEC_PER_SEC)

/* ---- the DNS server: A records from a table, NXDOMAIN for the rest --------------------- */

enum mode { ANSWER, SILENT };

static struct {
	int fd;
	guint watch;
	int port;
	enum mode mode;
	const char *name;     /* the one name it knows */
	const char *addrs[4]; /* its IPv4 addresses, NULL-terminated */
	int queries;	      /* queries received */
	bool replied;	      /* a reply was sent */
} dns;

/* The question's name as dotted text; returns the offset after the question, or 0. */
static size_t question(const unsigned char *q, size_t len, char *name, size_t size, unsigned *qtype)
{
	size_t off = 12, out = 0;

	while (off < len && q[off]) {
		size_t l = q[off++];
		if (l > 63 || off + l > len || out + l + 2 > size)
			return 0;
		if (out)
			name[out++] = '.';
		memcpy(name + out, q + off, l);
		out += l;
		off += l;
	}
	name[out] = '\0';
	if (off + 5 > len)
		return 0;
	*qtype = (unsigned)q[off + 1] << 8 | q[off + 2];
	return off + 5;
}

static gboolean on_dns(gint fd, GIOCondition cond, gpointer data)
{
	unsigned char q[512], r[1024]; /* room for the question and four answers */
	struct sockaddr_storage from;
	socklen_t fromlen = sizeof(from);
	char name[256];
	unsigned qtype = 0;
	size_t qend, off;
	int ancount = 0;
	ssize_t n;

	(void)cond, (void)data;
	n = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fromlen);
	if (n < 12)
		return G_SOURCE_CONTINUE;
	dns.queries++;
	if (dns.mode == SILENT)
		return G_SOURCE_CONTINUE;
	qend = question(q, (size_t)n, name, sizeof(name), &qtype);
	if (!qend)
		return G_SOURCE_CONTINUE;
	memcpy(r, q, qend);
	off = qend;
	bool known = dns.name && g_ascii_strcasecmp(name, dns.name) == 0;
	for (int i = 0; known && qtype == 1 && dns.addrs[i]; i++) {
		static const unsigned char rr[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4};
		memcpy(r + off, rr, sizeof(rr));
		inet_pton(AF_INET, dns.addrs[i], r + off + sizeof(rr));
		off += sizeof(rr) + 4;
		ancount++;
	}
	r[2] = 0x81;		    /* a response; recursion desired */
	r[3] = known ? 0x80 : 0x83; /* recursion available; NXDOMAIN if unknown */
	r[4] = 0;
	r[5] = 1; /* one question */
	r[6] = 0;
	r[7] = (unsigned char)ancount;
	memset(r + 8, 0, 4);
	sendto(fd, r, off, 0, (struct sockaddr *)&from, fromlen);
	dns.replied = true;
	return G_SOURCE_CONTINUE;
}

static int dns_setup(void **st)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	char csv[64];

	(void)st;
	memset(&dns, 0, sizeof(dns));
	dns.fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (dns.fd < 0 || bind(dns.fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    getsockname(dns.fd, (struct sockaddr *)&sa, &len) != 0)
		return -1;
	dns.port = ntohs(sa.sin_port);
	dns.watch = g_unix_fd_add(dns.fd, G_IO_IN, on_dns, NULL);
	snprintf(csv, sizeof(csv), "127.0.0.1:%d", dns.port);
	p2m_lookup_use_servers(csv);
	return 0;
}

static int dns_teardown(void **st)
{
	(void)st;
	g_source_remove(dns.watch);
	close(dns.fd);
	p2m_lookup_use_servers(NULL);
	return 0;
}

/* ---- one lookup, run on the loop until it answers ------------------------------------- */

struct answer {
	bool done;
	GPtrArray *addrs;
	char error[160];
};

static void on_answer(void *ud, const char *const *addrs, size_t n, const char *error)
{
	struct answer *a = ud;

	assert_false(a->done); /* exactly once */
	a->done = true;
	a->addrs = g_ptr_array_new_with_free_func(g_free);
	for (size_t i = 0; i < n; i++)
		g_ptr_array_add(a->addrs, g_strdup(addrs[i]));
	if (!n) {
		assert_non_null(error);
		g_strlcpy(a->error, error, sizeof(a->error));
	}
}

static void run_until(const bool *flag, gint64 limit_us)
{
	gint64 deadline = g_get_monotonic_time() + limit_us;

	while (!*flag && g_get_monotonic_time() < deadline)
		if (!g_main_context_iteration(NULL, FALSE))
			g_usleep(1000);
}

static struct answer *lookup(const char *name, int family)
{
	struct answer *a = g_new0(struct answer, 1);

	p2m_lookup_start(name, family, on_answer, a);
	assert_false(a->done); /* never from inside start */
	run_until(&a->done, WAIT_US);
	assert_true(a->done);
	return a;
}

static void answer_free(struct answer *a)
{
	g_ptr_array_free(a->addrs, TRUE);
	g_free(a);
}

/* ---- the tests ------------------------------------------------------------------------ */

static void test_literals_local_names_and_membership(void **st)
{
	(void)st;
	assert_true(p2m_is_address("192.0.2.7"));
	assert_true(p2m_is_address("::1"));
	assert_true(p2m_is_address("2001:db8::7"));
	assert_false(p2m_is_address("core-mosquitto"));
	assert_false(p2m_is_address("192.0.2.7.nip.io"));
	assert_false(p2m_is_address("192.0.2"));
	assert_false(p2m_is_address(""));
	assert_false(p2m_is_address(NULL));
	assert_true(p2m_is_local_name("garage.local"));
	assert_true(p2m_is_local_name("Garage.LOCAL"));
	assert_true(p2m_is_local_name("garage.local."));
	assert_false(p2m_is_local_name(".local"));
	assert_false(p2m_is_local_name("garage.localdomain"));
	assert_false(p2m_is_local_name("core-mosquitto"));
	assert_false(p2m_is_local_name(NULL));

	const char *const addrs[] = {"127.0.0.2", "127.0.0.3"};
	assert_true(p2m_addr_in("127.0.0.3", addrs, 2));
	assert_false(p2m_addr_in("127.0.0.3", addrs, 1));
	assert_false(p2m_addr_in("127.0.0.4", addrs, 2));
	assert_false(p2m_addr_in("127.0.0.2", addrs, 0));
}

static void test_literal_is_its_own_answer(void **st)
{
	struct answer *a;

	(void)st;
	a = lookup("192.0.2.9", AF_INET);
	assert_int_equal(a->addrs->len, 1);
	assert_string_equal(g_ptr_array_index(a->addrs, 0), "192.0.2.9");
	answer_free(a);
	assert_int_equal(dns.queries, 0);
}

static void test_a_name_that_moves_is_followed(void **st)
{
	struct answer *a;

	(void)st;
	dns.name = "broker.p2m-unit.test";
	dns.addrs[0] = "127.0.0.2";
	a = lookup("broker.p2m-unit.test", AF_INET);
	assert_int_equal(a->addrs->len, 1);
	assert_string_equal(g_ptr_array_index(a->addrs, 0), "127.0.0.2");
	answer_free(a);
	assert_true(dns.queries >= 1);

	/* the record changes: the next lookup asks again and gets the new address */
	dns.addrs[0] = "127.0.0.3";
	a = lookup("broker.p2m-unit.test", AF_INET);
	assert_int_equal(a->addrs->len, 1);
	assert_string_equal(g_ptr_array_index(a->addrs, 0), "127.0.0.3");
	answer_free(a);
}

static void test_several_addresses(void **st)
{
	struct answer *a;

	(void)st;
	dns.name = "multi.p2m-unit.test";
	dns.addrs[0] = "127.0.0.4";
	dns.addrs[1] = "127.0.0.5";
	a = lookup("multi.p2m-unit.test", AF_UNSPEC); /* A and AAAA asked; no AAAA here */
	assert_int_equal(a->addrs->len, 2);
	assert_true(strcmp(g_ptr_array_index(a->addrs, 0), "127.0.0.4") == 0 ||
		    strcmp(g_ptr_array_index(a->addrs, 1), "127.0.0.4") == 0);
	assert_true(strcmp(g_ptr_array_index(a->addrs, 0), "127.0.0.5") == 0 ||
		    strcmp(g_ptr_array_index(a->addrs, 1), "127.0.0.5") == 0);
	answer_free(a);
}

static void test_unknown_name_is_an_error(void **st)
{
	struct answer *a;

	(void)st;
	dns.name = "known.p2m-unit.test";
	dns.addrs[0] = "127.0.0.2";
	a = lookup("unknown.p2m-unit.test", AF_INET);
	assert_int_equal(a->addrs->len, 0);
	assert_true(a->error[0]);
	answer_free(a);
}

static void test_silent_server_times_out(void **st)
{
	gint64 started = g_get_monotonic_time();
	struct answer *a;

	(void)st;
	dns.mode = SILENT;
	a = lookup("silent.p2m-unit.test", AF_INET);
	assert_int_equal(a->addrs->len, 0);
	assert_true(a->error[0]);
	assert_true(dns.queries >= 2); /* retransmitted from the timer */
	/* bounded well under the callers' connect timeouts (10 s for devices) */
	assert_true(g_get_monotonic_time() - started < (gint64)9 * G_USEC_PER_SEC);
	answer_free(a);
}

static void test_no_server_is_an_error(void **st)
{
	char csv[64];
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	struct answer *a;

	(void)st;
	/* a port that was free a moment ago: nothing listens there */
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	snprintf(csv, sizeof(csv), "127.0.0.1:%d", ntohs(sa.sin_port));
	p2m_lookup_use_servers(csv);
	a = lookup("nowhere.p2m-unit.test", AF_INET);
	assert_int_equal(a->addrs->len, 0);
	assert_true(a->error[0]);
	answer_free(a);
}

static void test_cancel_means_no_answer(void **st)
{
	struct answer a = {0};
	struct p2m_lookup *l;
	bool never = false;

	(void)st;
	dns.name = "cancel.p2m-unit.test";
	dns.addrs[0] = "127.0.0.2";
	/* cancelled before the query is even answered */
	l = p2m_lookup_start("cancel.p2m-unit.test", AF_INET, on_answer, &a);
	p2m_lookup_cancel(l);
	/* cancelled with its answer on the way: the server has replied, unread */
	dns.replied = false;
	l = p2m_lookup_start("cancel.p2m-unit.test", AF_INET, on_answer, &a);
	run_until(&dns.replied, WAIT_US);
	assert_true(dns.replied);
	p2m_lookup_cancel(l);
	p2m_lookup_cancel(NULL);
	/* a literal, whose answer is already queued */
	l = p2m_lookup_start("192.0.2.1", AF_INET, on_answer, &a);
	p2m_lookup_cancel(l);
	run_until(&never, G_USEC_PER_SEC / 2);
	assert_false(a.done);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_literals_local_names_and_membership),
	    cmocka_unit_test_setup_teardown(test_literal_is_its_own_answer, dns_setup,
					    dns_teardown),
	    cmocka_unit_test_setup_teardown(test_a_name_that_moves_is_followed, dns_setup,
					    dns_teardown),
	    cmocka_unit_test_setup_teardown(test_several_addresses, dns_setup, dns_teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_name_is_an_error, dns_setup, dns_teardown),
	    cmocka_unit_test_setup_teardown(test_silent_server_times_out, dns_setup, dns_teardown),
	    cmocka_unit_test_setup_teardown(test_no_server_is_an_error, dns_setup, dns_teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_means_no_answer, dns_setup, dns_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
