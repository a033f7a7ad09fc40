/* log.h - one-line log records on stderr (journald adds the timestamp).
 *
 * Owns: the verbosity threshold, its names ("error", "warning", "info", "debug") and the
 * record format "LEVEL: message", preceded by an sd-daemon priority prefix ("<3>",
 * "<4>", "<6>", "<7>") when standard error is the journal, so that journalctl -p works.
 * Does not own: what is worth logging; callers put the device id first
 * ("device garage: ...") so every device line names its device. */
#ifndef PANDA2MQTT_LOG_H
#define PANDA2MQTT_LOG_H

#include <stdbool.h>

enum p2m_log_level { P2M_LOG_ERR, P2M_LOG_WARN, P2M_LOG_INFO, P2M_LOG_DEBUG };

void p2m_log_set_level(enum p2m_log_level max);
enum p2m_log_level p2m_log_get_level(void);
/* "error", "warning", "info", "debug". */
const char *p2m_log_level_name(enum p2m_log_level level);
/* The level of one of those names; false for anything else. */
bool p2m_log_level_parse(const char *name, enum p2m_log_level *out);

/* Does the JOURNAL_STREAM value env ("DEV:INO", set by systemd when it connects
 * standard error to the journal) name the file whose st_dev and st_ino these are? A
 * process whose stderr was redirected since (a child's 2>file) keeps the variable but
 * not the stream: then the prefix would be noise. */
bool p2m_log_journal_stream_matches(const char *env, unsigned long long dev,
				    unsigned long long ino);
/* Check standard error against JOURNAL_STREAM once (main, before the first line): when
 * it is the journal, every line gets its priority prefix. */
void p2m_log_detect_journal(void);
/* Force the prefix on or off (tests). */
void p2m_log_set_journal(bool on);
void p2m_log(enum p2m_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Lines that outside input can repeat at will (a device sending the same bad field in
 * every push, a flood of commands): may a line keyed `key` be logged now? At most one
 * per key every period_s seconds; *suppressed (may be NULL) gets how many were held back
 * since the last one, for the caller to mention. Keys live in a fixed table of a few
 * hundred: two keys that share a slot can each log a little more often, never less. */
bool p2m_log_ratelimit(const char *key, double period_s, unsigned *suppressed);
/* Forget every key (tests). */
void p2m_log_ratelimit_reset(void);

#define p2m_err(...)   p2m_log(P2M_LOG_ERR, __VA_ARGS__)
#define p2m_warn(...)  p2m_log(P2M_LOG_WARN, __VA_ARGS__)
#define p2m_info(...)  p2m_log(P2M_LOG_INFO, __VA_ARGS__)
#define p2m_debug(...) p2m_log(P2M_LOG_DEBUG, __VA_ARGS__)

#endif
