/* log.c - see log.h. Writes whole lines with one fprintf so that records from
 * the one thread never interleave, and flushes because stderr may be a pipe.
 *
 * The journal: systemd sets JOURNAL_STREAM to the device and inode of the stream it
 * connected to standard error; journald reads a leading "<N>" of each line as its
 * syslog priority (sd-daemon(3)), which makes journalctl -p warning show the warnings
 * and errors only. Anywhere else (a terminal, the add-on's s6 log, a test's file) the
 * lines stay as they were. */
#include "panda2mqtt/log.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The rate limiter's table: bounded, whatever the input invents as keys. Beyond the
 * per-key limit, all rate-limited lines together share a budget (a burst, then a few a
 * second), so that input inventing a new key for every line cannot flood the log either. */
#define RATELIMIT_SLOTS	 512
#define RATELIMIT_BURST	 50.0
#define RATELIMIT_REFILL 5.0 /* lines per second */

static enum p2m_log_level max_level = P2M_LOG_INFO;
static const char *const level_names[] = {"error", "warning", "info", "debug"};
/* LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG (syslog.h), as sd-daemon.h's SD_ERR...
 * prefixes write them */
static const char *const journal_prefix[] = {"<3>", "<4>", "<6>", "<7>"};
static bool to_journal;

void p2m_log_set_level(enum p2m_log_level max)
{
	max_level = max;
}

enum p2m_log_level p2m_log_get_level(void)
{
	return max_level;
}

const char *p2m_log_level_name(enum p2m_log_level level)
{
	return (unsigned)level <= P2M_LOG_DEBUG ? level_names[level] : "?";
}

bool p2m_log_level_parse(const char *name, enum p2m_log_level *out)
{
	for (int i = P2M_LOG_ERR; i <= P2M_LOG_DEBUG; i++) {
		if (name && strcmp(name, level_names[i]) == 0) {
			*out = (enum p2m_log_level)i;
			return true;
		}
	}
	return false;
}

bool p2m_log_journal_stream_matches(const char *env, unsigned long long dev, unsigned long long ino)
{
	unsigned long long d, i;
	int used = 0;

	if (!env || sscanf(env, "%llu:%llu%n", &d, &i, &used) != 2 || env[used] != '\0')
		return false;
	return d == dev && i == ino;
}

void p2m_log_detect_journal(void)
{
	struct stat sb;

	to_journal =
	    fstat(STDERR_FILENO, &sb) == 0 &&
	    p2m_log_journal_stream_matches(getenv("JOURNAL_STREAM"), (unsigned long long)sb.st_dev,
					   (unsigned long long)sb.st_ino);
}

void p2m_log_set_journal(bool on)
{
	to_journal = on;
}

void p2m_log(enum p2m_log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (level > max_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s%s: %s\n", to_journal ? journal_prefix[level] : "", level_names[level],
		line);
	fflush(stderr);
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct {
	uint64_t hash;
	double last; /* monotonic seconds of the last line allowed; 0: none */
	unsigned held;
} slots[RATELIMIT_SLOTS];
static double budget = RATELIMIT_BURST, budget_at;

void p2m_log_ratelimit_reset(void)
{
	memset(slots, 0, sizeof(slots));
	budget = RATELIMIT_BURST;
}

bool p2m_log_ratelimit(const char *key, double period_s, unsigned *suppressed)
{
	uint64_t h = fnv1a(key);
	struct timespec ts;
	double now;
	unsigned i = (unsigned)(h % RATELIMIT_SLOTS);

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	budget += (now - budget_at) * RATELIMIT_REFILL;
	if (budget > RATELIMIT_BURST)
		budget = RATELIMIT_BURST;
	budget_at = now;
	if ((slots[i].hash != h || slots[i].last <= 0 || now - slots[i].last >= period_s) &&
	    budget >= 1) {
		budget -= 1;
		if (suppressed)
			*suppressed = slots[i].hash == h ? slots[i].held : 0;
		slots[i].hash = h;
		slots[i].last = now;
		slots[i].held = 0;
		return true;
	}
	slots[i].held++;
	return false;
}
