/* test_log.c - unit tests for log.c: the level names, and the journal's priority
 * prefixes (only when standard error is the stream JOURNAL_STREAM names). */
#include "panda2mqtt/log.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

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

/* What p2m_log writes while stderr is a temporary file. */
static void run_logged(void (*fn)(void), char *out, size_t len)
{
	char path[] = "/tmp/test_log.XXXXXX";
	int fd = mkstemp(path), saved;
	ssize_t n;

	assert_true(fd >= 0);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	fn();
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(fd, out, len - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(path);
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
	run_logged(four_lines, out, sizeof(out));
	assert_string_equal(out, "error: e 1\nwarning: w\ninfo: i\ndebug: d\n");
	p2m_log_set_journal(true);
	run_logged(four_lines, out, sizeof(out));
	p2m_log_set_journal(false);
	assert_string_equal(out, "<3>error: e 1\n<4>warning: w\n<6>info: i\n<7>debug: d\n");
	run_logged(detect_then_log, out, sizeof(out));
	assert_string_equal(out, "<6>info: to the journal\ninfo: not to the journal\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_level_names),
	    cmocka_unit_test(test_journal_stream_matches),
	    cmocka_unit_test(test_prefixes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
