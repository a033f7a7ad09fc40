/* test_log.c - log records (log.c): the "LEVEL: message" line on stderr, the verbosity
 * threshold, the level names, the journal's priority prefixes (only when standard error is
 * the stream JOURNAL_STREAM names), and the rate limiter that keeps input repeated at will
 * (a bad field in every push, a flood of commands) from flooding the log, per key and all
 * keys together. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "panda2mqtt/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* What fn() writes to stderr. */
static void captured(void (*fn)(void), char *out, size_t len)
{
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	size_t n;

	assert_non_null(tmp);
	assert_true(saved >= 0);
	fflush(stderr);
	assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	fn();
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	rewind(tmp);
	n = fread(out, 1, len - 1, tmp);
	out[n] = '\0';
	fclose(tmp);
}

static void every_level(void)
{
	p2m_err("device %s: e", "a");
	p2m_warn("w %d", 1);
	p2m_info("i");
	p2m_debug("d");
}

static void a_long_line(void)
{
	char big[3000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	p2m_warn("%s", big);
}

static void test_levels_and_format(void **st)
{
	char out[4096];

	(void)st;
	p2m_log_set_level(P2M_LOG_INFO); /* the default */
	captured(every_level, out, sizeof(out));
	assert_string_equal(out, "error: device a: e\nwarning: w 1\ninfo: i\n");
	p2m_log_set_level(P2M_LOG_DEBUG); /* -v */
	assert_int_equal(p2m_log_get_level(), P2M_LOG_DEBUG);
	captured(every_level, out, sizeof(out));
	assert_string_equal(out, "error: device a: e\nwarning: w 1\ninfo: i\ndebug: d\n");
	p2m_log_set_level(P2M_LOG_ERR);
	captured(every_level, out, sizeof(out));
	assert_string_equal(out, "error: device a: e\n");
	/* a record is one line, cut rather than split */
	p2m_log_set_level(P2M_LOG_INFO);
	captured(a_long_line, out, sizeof(out));
	assert_int_equal(strlen(out), strlen("warning: ") + 1023 + 1);
	assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
}

static void test_level_names(void **state)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};
	enum p2m_log_level level;

	(void)state;
	for (int i = P2M_LOG_ERR; i <= P2M_LOG_DEBUG; i++) {
		assert_string_equal(p2m_log_level_name((enum p2m_log_level)i), names[i]);
		assert_true(p2m_log_level_parse(names[i], &level));
		assert_int_equal(level, i);
	}
	assert_false(p2m_log_level_parse("warn", &level));
	assert_false(p2m_log_level_parse("Info", &level));
	assert_false(p2m_log_level_parse("", &level));
	assert_false(p2m_log_level_parse(NULL, &level));
	assert_string_equal(p2m_log_level_name((enum p2m_log_level)9), "?");
}

static void test_journal_stream_matches(void **state)
{
	(void)state;
	assert_true(p2m_log_journal_stream_matches("8:12345", 8, 12345));
	assert_true(p2m_log_journal_stream_matches("2049:18446744073709551615", 2049,
						   18446744073709551615ULL));
	assert_false(p2m_log_journal_stream_matches("8:12345", 8, 12346));
	assert_false(p2m_log_journal_stream_matches("9:12345", 8, 12345));
	assert_false(p2m_log_journal_stream_matches(NULL, 8, 12345));
	assert_false(p2m_log_journal_stream_matches("", 8, 12345));
	assert_false(p2m_log_journal_stream_matches("8", 8, 12345));
	assert_false(p2m_log_journal_stream_matches("8:12345x", 8, 12345));
	assert_false(p2m_log_journal_stream_matches("8:12345:1", 8, 12345));
	assert_false(p2m_log_journal_stream_matches("a:b", 8, 12345));
}

static void four_lines(void)
{
	p2m_log_set_level(P2M_LOG_DEBUG);
	p2m_err("e %d", 1);
	p2m_warn("w");
	p2m_info("i");
	p2m_debug("d");
	p2m_log_set_level(P2M_LOG_INFO);
	p2m_debug("hidden");
}

static void detect_then_log(void)
{
	struct stat sb;
	char env[64];

	fstat(STDERR_FILENO, &sb);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)sb.st_dev,
		 (unsigned long long)sb.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	p2m_log_detect_journal();
	p2m_info("to the journal");
	/* the variable inherited by a process whose stderr is elsewhere: no prefix */
	setenv("JOURNAL_STREAM", "1:1", 1);
	p2m_log_detect_journal();
	p2m_info("not to the journal");
	unsetenv("JOURNAL_STREAM");
	p2m_log_detect_journal();
}

static void test_prefixes(void **state)
{
	char out[512];

	(void)state;
	captured(four_lines, out, sizeof(out));
	assert_string_equal(out, "error: e 1\nwarning: w\ninfo: i\ndebug: d\n");
	p2m_log_set_journal(true);
	captured(four_lines, out, sizeof(out));
	p2m_log_set_journal(false);
	assert_string_equal(out, "<3>error: e 1\n<4>warning: w\n<6>info: i\n<7>debug: d\n");
	captured(detect_then_log, out, sizeof(out));
	assert_string_equal(out, "<6>info: to the journal\ninfo: not to the journal\n");
}

static void sleep_s(double s)
{
	struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (time_t)s) * 1e9)};

	nanosleep(&ts, NULL);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_ratelimit_per_key(void **st)
{
	const char *key = "device a: settings.x";
	unsigned suppressed = 99;
	double t0;

	(void)st;
	p2m_log_ratelimit_reset();
	t0 = now_s();
	assert_true(p2m_log_ratelimit(key, 2, &suppressed));
	assert_int_equal(suppressed, 0);
	for (int i = 0; i < 5; i++)
		assert_false(p2m_log_ratelimit(key, 2, &suppressed));
	/* another key is not held back by the first */
	assert_true(p2m_log_ratelimit("device b: settings.x", 2, NULL));
	assert_true(now_s() - t0 < 2); /* (else the machine stalled: the test proves nothing) */
	sleep_s(2.1);
	/* after the period: allowed again, and told how many were held back meanwhile */
	assert_true(p2m_log_ratelimit(key, 2, &suppressed));
	assert_int_equal(suppressed, 5);
	assert_false(p2m_log_ratelimit(key, 2, NULL));
	/* reset forgets every key */
	p2m_log_ratelimit_reset();
	assert_true(p2m_log_ratelimit(key, 2, &suppressed));
	assert_int_equal(suppressed, 0);
}

/* Input that invents a new key for every line still cannot flood the log: all keys share
 * a budget (a burst of 50, then 5 lines a second). */
static void test_ratelimit_budget(void **st)
{
	char key[32];
	int allowed = 0;
	double t0, t1, t2, t3;

	(void)st;
	p2m_log_ratelimit_reset();
	t0 = now_s();
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "invented %d", i);
		allowed += p2m_log_ratelimit(key, 60, NULL);
	}
	t1 = now_s();
	/* the burst, and what the budget refilled while the loop ran (5 a second) */
	if (allowed < 50 || allowed > 50 + 5 * (t1 - t0) + 1)
		fail_msg("%d lines allowed in %.3f s", allowed, t1 - t0);
	sleep_s(0.6); /* refills 3 lines */
	t2 = now_s();
	allowed = 0;
	for (int i = 1000; i < 1100; i++) {
		snprintf(key, sizeof(key), "invented %d", i);
		allowed += p2m_log_ratelimit(key, 60, NULL);
	}
	t3 = now_s();
	if (allowed < (int)(5 * (t2 - t1)) - 1 || allowed > 5 * (t3 - t0) + 1)
		fail_msg("%d lines allowed after %.3f s of refill", allowed, t3 - t1);
	p2m_log_ratelimit_reset(); /* a full burst again */
	assert_true(p2m_log_ratelimit("invented 5000", 60, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_levels_and_format),	   cmocka_unit_test(test_level_names),
	    cmocka_unit_test(test_journal_stream_matches), cmocka_unit_test(test_prefixes),
	    cmocka_unit_test(test_ratelimit_per_key),	   cmocka_unit_test(test_ratelimit_budget),
	};

	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
