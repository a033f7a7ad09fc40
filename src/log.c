/* log.c - see log.h. Writes whole lines with one fprintf so that records from
 * the one thread never interleave, and flushes because stderr may be a pipe. */
#include "panda2mqtt/log.h"

#include <stdarg.h>
#include <stdio.h>

static enum p2m_log_level max_level = P2M_LOG_INFO;
static const char *const level_names[] = {"error", "warning", "info", "debug"};

void p2m_log_set_level(enum p2m_log_level max)
{
	max_level = max;
}

enum p2m_log_level p2m_log_get_level(void)
{
	return max_level;
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
	fprintf(stderr, "%s: %s\n", level_names[level], line);
	fflush(stderr);
}
