/* config.c - see config.h.
 *
 * Owns: reading the INI text (through inih), the key tables with types and ranges,
 * defaults, validation with "file:line: [section] key: message" errors, the MQTT
 * password from the file, password_file or the environment, and the warning about a
 * world-readable file holding a password.
 * Does not own: acting on any setting (nothing here connects or resolves anything),
 * or the meaning of the values beyond their syntax and range.
 *
 * How line numbers are known. Debian's inih 55 is built without INI_HANDLER_LINENO, so
 * the handler is not told the line. We feed inih through ini_parse_stream() with our own
 * fgets-style reader (read_line) over the whole text held in memory. inih calls the
 * reader for one line, processes that line completely (calling the handler at most once
 * for it), and only then asks for the next one; so the counter the reader bumps is the
 * line the handler is looking at. Three things could break that one-to-one mapping and
 * the reader prevents each:
 *  - inih splits a line longer than its buffer (ini_max_line, 200) and treats the rest
 *    as a new line; the reader rejects such a line instead of handing over part of it.
 *  - Debian's build allows multi-line values: an indented line is appended to the
 *    previous key (so an indented "port = 1" would silently become part of "host").
 *    The reader strips leading whitespace, so inih never sees a continuation line.
 *  - inih drops a UTF-8 BOM only from what it believes is line 1; the reader drops it.
 * The reader also recognises the [section] headers itself: inih does not tell the
 * handler about a section with no keys (INI_CALL_HANDLER_ON_NEW_SECTION is off), yet an
 * empty [device x] or [typo] must still be an error, and a device needs its header line.
 * The reader stops (reports end of input) after the first error, so the first error is
 * the one reported. inih's own syntax errors come back as the line number it returns.
 *
 * inih strips whitespace around names and values and drops an inline comment that starts
 * with " ;" -- so a password cannot contain " ;" or begin or end with a blank; such a
 * password belongs in password_file or the environment. */
#include "panda2mqtt/config.h"

#include "panda2mqtt/log.h"

#include <glib.h>
#include <ini.h>

#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define MAX_FILE_SIZE (1024 * 1024) /* a configuration file is a few hundred bytes */
#define MAX_KEYS      16	    /* most keys in one section */
/* password_file: MQTT allows 65535 bytes, but real passwords and tokens are far below
 * 4 KiB; anything longer is a wrong file, not a password. */
#define MAX_PASSWORD_BYTES 4096

enum section {
	SEC_NONE,
	SEC_MQTT,
	SEC_DISCOVERY,
	SEC_SAFETY,
	SEC_PRINTER,
	SEC_MOONRAKER,
	SEC_BAMBU_VIRTUAL,
	SEC_DIALIN,
	SEC_FIRMWARE,
	SEC_LOG,
	SEC_DEVICE,
	SEC_COUNT
};

/* [dialin] allow: at most this many ids. */
#define MAX_ALLOW 256

enum kind {
	K_STRING,   /* non-empty string */
	K_OPTIONAL, /* string; empty means NULL */
	K_TOPIC,    /* non-empty MQTT topic prefix */
	K_INT,	    /* whole number in min..max */
	K_DOUBLE,   /* number in min..max */
	K_BOOL,
	K_PATH,	   /* JSON path: dot-separated non-empty member names */
	K_ADDRESS, /* IPv4 or IPv6 literal (nothing is resolved: no DNS on the loop) */
	K_SERIAL,  /* printer serial: 1..32 of A-Z a-z 0-9 (it becomes a topic level) */
	K_FAMILY,  /* a device family's name: [a-z0-9_]; which exist is the caller's check
		      (p2m_config_check_families): the core does not know the drivers */
	K_LEVEL,   /* a log level's name (log.h), stored as its enum p2m_log_level */
};

/* What a key's offset is relative to. */
enum target { T_CONFIG, T_DEVICE, T_STATE };

#define F_SECRET    1u /* never echo the value; marks the text as holding a secret */
#define F_PW_SOURCE 2u /* one of the mutually exclusive password sources */
#define F_ZERO_OK   4u /* 0 is accepted besides min..max */

struct key_def {
	const char *name;
	enum kind kind;
	enum target target;
	size_t offset;
	long min, max;
	unsigned flags;
	/* The default, written as in the file; NULL: none (0, false or NULL). Applied by
	 * apply_defaults() before the file is read, so the table is the one place a
	 * default is written. */
	const char *def;
};

#define CFG(field) T_CONFIG, offsetof(struct p2m_config, field)
#define DEV(field) T_DEVICE, offsetof(struct p2m_device_conf, field)
#define ST(field)  T_STATE, offsetof(struct parse_state, field)

struct parse_state {
	struct p2m_config *cfg;
	const char *name; /* path or string name, for messages */
	const char *text;
	size_t len, pos;
	int lineno;

	enum section sect;
	char section[256];		   /* the current header's text, for messages */
	int section_line[SEC_COUNT];	   /* header line of each single section, 0 = absent */
	int key_line[SEC_COUNT][MAX_KEYS]; /* where each key was set, 0 = not yet */

	char *password_file;
	char *token_file;
	char *allow;	    /* [dialin] allow as written; split in finish() */
	const char *pw_key; /* the password source set first, and where */
	int pw_line;
	bool secret_in_text; /* a non-empty secret key appears in the text */

	bool failed;
	int err_line;
	char *err;
	size_t errlen;
};

static const struct key_def mqtt_keys[] = {
    {"host", K_STRING, CFG(mqtt.host), 0, 0, 0, "127.0.0.1"},
    {"port", K_INT, CFG(mqtt.port), 1, 65535, 0, "1883"}, /* 8883 with tls: finish() */
    {"username", K_OPTIONAL, CFG(mqtt.username), 0, 0, 0, NULL},
    {"password", K_OPTIONAL, CFG(mqtt.password), 0, 0, F_SECRET | F_PW_SOURCE, NULL},
    {"password_file", K_OPTIONAL, ST(password_file), 0, 0, F_PW_SOURCE, NULL},
    {"client_id", K_STRING, CFG(mqtt.client_id), 0, 0, 0, "panda2mqtt"},
    {"base_topic", K_TOPIC, CFG(mqtt.base_topic), 0, 0, 0, "panda2mqtt"},
    {"discovery_prefix", K_TOPIC, CFG(mqtt.discovery_prefix), 0, 0, 0, "homeassistant"},
    {"keepalive", K_INT, CFG(mqtt.keepalive), 5, 3600, 0, "30"},
    {"tls", K_BOOL, CFG(mqtt.tls), 0, 0, 0, NULL},
    {"cafile", K_OPTIONAL, CFG(mqtt.cafile), 0, 0, 0, NULL},
    {"insecure", K_BOOL, CFG(mqtt.insecure), 0, 0, 0, NULL},
};

static const struct key_def discovery_keys[] = {
    {"mdns", K_BOOL, CFG(discovery.mdns), 0, 0, 0, "true"},
    /* days; fractions too (tests wait seconds, not days) */
    {"forget_after", K_DOUBLE, CFG(discovery.forget_after), 0, 36500, 0, NULL},
};

static const struct key_def log_keys[] = {
    {"level", K_LEVEL, CFG(log.level), 0, 0, 0, "info"},
};

static const struct key_def safety_keys[] = {
    {"max_target_temp", K_DOUBLE, CFG(safety.max_target_temp), 0, 60, 0, "60"},
    {"max_chamber_temp", K_DOUBLE, CFG(safety.max_chamber_temp), 20, 90, 0, "65"},
    {"sensor_fault_cutoff", K_BOOL, CFG(safety.sensor_fault_cutoff), 0, 0, 0, "true"},
    {"heater_fault_cutoff", K_BOOL, CFG(safety.heater_fault_cutoff), 0, 0, 0, "true"},
    {"max_drying_hours", K_INT, CFG(safety.max_drying_hours), 1, 99, 0, "99"},
    {"controller_lost_minutes", K_DOUBLE, CFG(safety.controller_lost_minutes), 0, 1440, 0, NULL},
};

static const struct key_def dialin_keys[] = {
    {"port", K_INT, CFG(dialin.port), 1, 65535, F_ZERO_OK, NULL},
    {"listen", K_STRING, CFG(dialin.listen), 0, 0, 0, "0.0.0.0"},
    {"path", K_STRING, CFG(dialin.path), 0, 0, 0, "/ws"},
    {"token", K_OPTIONAL, CFG(dialin.token), 0, 0, F_SECRET, NULL},
    {"token_file", K_OPTIONAL, ST(token_file), 0, 0, 0, NULL},
    {"allow", K_OPTIONAL, ST(allow), 0, 0, 0, NULL},
    {"max_devices", K_INT, CFG(dialin.max_devices), 1, 1024, 0, "16"},
    {"firmware_dir", K_OPTIONAL, CFG(dialin.firmware_dir), 0, 0, 0, NULL}, /* finish_firmware */
};

static const struct key_def firmware_keys[] = {
    {"dir", K_OPTIONAL, CFG(firmware.dir), 0, 0, 0, NULL},
};

#define PSRC(i, f) CFG(printer.src[i].f)
static const struct key_def printer_keys[] = {
    {"bambu_report_topic", K_TOPIC, CFG(printer.bambu_report_topic), 0, 0, 0, NULL},
    {"bed_temperature_topic", K_TOPIC, PSRC(P2M_SRC_BED, topic), 0, 0, 0, NULL},
    {"bed_temperature_path", K_PATH, PSRC(P2M_SRC_BED, path), 0, 0, 0, NULL},
    {"bed_target_topic", K_TOPIC, PSRC(P2M_SRC_BED_TARGET, topic), 0, 0, 0, NULL},
    {"bed_target_path", K_PATH, PSRC(P2M_SRC_BED_TARGET, path), 0, 0, 0, NULL},
    {"nozzle_temperature_topic", K_TOPIC, PSRC(P2M_SRC_NOZZLE, topic), 0, 0, 0, NULL},
    {"nozzle_temperature_path", K_PATH, PSRC(P2M_SRC_NOZZLE, path), 0, 0, 0, NULL},
    {"print_state_topic", K_TOPIC, PSRC(P2M_SRC_STATE, topic), 0, 0, 0, NULL},
    {"print_state_path", K_PATH, PSRC(P2M_SRC_STATE, path), 0, 0, 0, NULL},
    {"id", K_STRING, CFG(printer.id), 0, 0, 0, "printer"},
    {"name", K_STRING, CFG(printer.name), 0, 0, 0, "Printer"},
    {"ha_device", K_BOOL, CFG(printer.ha_device), 0, 0, 0, "true"},
    {"stale_timeout", K_INT, CFG(printer.stale_timeout), 10, 86400, F_ZERO_OK, NULL},
};

static const struct key_def moonraker_keys[] = {
    {"port", K_INT, CFG(moonraker.port), 1, 65535, F_ZERO_OK, NULL},
    {"listen", K_ADDRESS, CFG(moonraker.listen), 0, 0, 0, "0.0.0.0"},
};

static const struct key_def bambu_virtual_keys[] = {
    {"serial", K_SERIAL, CFG(bambu_virtual.serial), 0, 0, 0, NULL},
    {"interval", K_INT, CFG(bambu_virtual.interval), 1, 60, 0, "2"},
};

static const struct key_def device_keys[] = {
    {"type", K_FAMILY, DEV(type), 0, 0, 0, NULL},
    {"host", K_STRING, DEV(host), 0, 0, 0, NULL},
    {"port", K_INT, DEV(port), 1, 65535, 0, "80"},
    {"name", K_STRING, DEV(name), 0, 0, 0, NULL},
    {"debounce", K_INT, DEV(debounce), 0, 60000, 0, NULL},
    {"stale_timeout", K_INT, DEV(stale_timeout), 2, 3600, 0, "60"},
    {"refresh_interval", K_INT, DEV(refresh_interval), 5, 86400, F_ZERO_OK, "60"},
    {"duplicate_ha_entities", K_BOOL, DEV(duplicate_ha_entities), 0, 0, 0, NULL},
};

struct section_def {
	const char *name;
	const struct key_def *keys;
	size_t n_keys;
};

static const struct section_def sections[SEC_COUNT] = {
    [SEC_MQTT] = {"mqtt", mqtt_keys, ARRAY_LEN(mqtt_keys)},
    [SEC_DISCOVERY] = {"discovery", discovery_keys, ARRAY_LEN(discovery_keys)},
    [SEC_SAFETY] = {"safety", safety_keys, ARRAY_LEN(safety_keys)},
    [SEC_PRINTER] = {"printer", printer_keys, ARRAY_LEN(printer_keys)},
    [SEC_MOONRAKER] = {"moonraker", moonraker_keys, ARRAY_LEN(moonraker_keys)},
    [SEC_BAMBU_VIRTUAL] = {"bambu_virtual", bambu_virtual_keys, ARRAY_LEN(bambu_virtual_keys)},
    [SEC_DIALIN] = {"dialin", dialin_keys, ARRAY_LEN(dialin_keys)},
    [SEC_FIRMWARE] = {"firmware", firmware_keys, ARRAY_LEN(firmware_keys)},
    [SEC_LOG] = {"log", log_keys, ARRAY_LEN(log_keys)},
    [SEC_DEVICE] = {"device", device_keys, ARRAY_LEN(device_keys)},
};

_Static_assert(ARRAY_LEN(mqtt_keys) <= MAX_KEYS, "raise MAX_KEYS");
_Static_assert(ARRAY_LEN(discovery_keys) <= MAX_KEYS, "raise MAX_KEYS");
_Static_assert(ARRAY_LEN(safety_keys) <= MAX_KEYS, "raise MAX_KEYS");
_Static_assert(ARRAY_LEN(dialin_keys) <= MAX_KEYS, "raise MAX_KEYS");
_Static_assert(ARRAY_LEN(device_keys) <= MAX_KEYS, "raise MAX_KEYS");
_Static_assert(ARRAY_LEN(printer_keys) <= MAX_KEYS, "raise MAX_KEYS");

/* Records the first error only; later calls are ignored. Returns 0 so that handlers can
 * "return fail(...)". section and key may be NULL. */
__attribute__((format(printf, 5, 6))) static int
fail(struct parse_state *st, int line, const char *section, const char *key, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (st->failed)
		return 0;
	st->failed = true;
	st->err_line = line;
	if (!st->err || st->errlen == 0)
		return 0;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (section && key)
		snprintf(st->err, st->errlen, "%s:%d: [%s] %s: %s", st->name, line, section, key,
			 msg);
	else if (section)
		snprintf(st->err, st->errlen, "%s:%d: [%s]: %s", st->name, line, section, msg);
	else if (key)
		snprintf(st->err, st->errlen, "%s:%d: %s: %s", st->name, line, key, msg);
	else
		snprintf(st->err, st->errlen, "%s:%d: %s", st->name, line, msg);
	return 0;
}

static void set_err(char *err, size_t errlen, const char *name, const char *what, int errnum)
{
	if (err && errlen > 0)
		snprintf(err, errlen, "%s: %s: %s", name, what, strerror(errnum));
}

static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		g_free(s);
	}
}

/* ---- sections ---------------------------------------------------------------------- */

static bool valid_device_id(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > P2M_ID_MAX)
		return false;
	return strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static int start_device(struct parse_state *st, const char *id)
{
	struct p2m_config *c = st->cfg;
	struct p2m_device_conf *d;

	if (*id == '\0')
		return fail(st, st->lineno, st->section, NULL,
			    "missing device id; write [device <id>]");
	if (!valid_device_id(id))
		return fail(st, st->lineno, st->section, NULL,
			    "device id '%s' is not valid: use 1..%d characters from a-z, 0-9, "
			    "'_' and '-'",
			    id, P2M_ID_MAX);
	for (size_t i = 0; i < c->n_devices; i++)
		if (strcmp(c->devices[i].id, id) == 0)
			return fail(st, st->lineno, st->section, NULL,
				    "duplicate device id (first defined at line %d)",
				    c->devices[i].line);

	c->devices = g_renew(struct p2m_device_conf, c->devices, c->n_devices + 1);
	d = &c->devices[c->n_devices];
	memset(d, 0, sizeof(*d));
	d->id = g_strdup(id);
	c->n_devices++;
	p2m_config_device_defaults(d);
	d->line = st->lineno;
	memset(st->key_line[SEC_DEVICE], 0, sizeof(st->key_line[SEC_DEVICE]));
	return 1;
}

/* A "[...]" line (already stripped of surrounding blanks). Returns 0 after an error. */
static int enter_section(struct parse_state *st, const char *line, size_t n)
{
	const char *close = memchr(line, ']', n);
	const char *rest;
	size_t name_len;
	char name[256];

	if (!close)
		return fail(st, st->lineno, NULL, NULL, "section header has no closing ']'");
	for (rest = close + 1; rest < line + n && isspace((unsigned char)*rest); rest++)
		;
	if (rest < line + n && *rest != ';' && *rest != '#')
		return fail(st, st->lineno, NULL, NULL, "unexpected text after ']'");
	name_len = (size_t)(close - line - 1);
	if (name_len >= sizeof(name))
		name_len = sizeof(name) - 1; /* longer than any valid name: only for the message */
	memcpy(name, line + 1, name_len);
	name[name_len] = '\0';
	snprintf(st->section, sizeof(st->section), "%s", name);

	if (strncmp(name, "device", 6) == 0 &&
	    (name[6] == '\0' || isspace((unsigned char)name[6]))) {
		st->sect = SEC_DEVICE;
		return start_device(st, name[6] ? name + 7 : "");
	}
	for (int s = SEC_NONE + 1; s < SEC_COUNT; s++) {
		if (s == SEC_DEVICE || strcmp(name, sections[s].name) != 0)
			continue;
		if (st->section_line[s])
			return fail(st, st->lineno, name, NULL,
				    "section appears twice (first at line %d)",
				    st->section_line[s]);
		st->section_line[s] = st->lineno;
		st->sect = (enum section)s;
		if (s == SEC_PRINTER) {
			st->cfg->printer.enabled = true;
			st->cfg->printer.line = st->lineno;
		} else if (s == SEC_MOONRAKER) {
			st->cfg->moonraker.line = st->lineno;
		} else if (s == SEC_BAMBU_VIRTUAL) {
			st->cfg->bambu_virtual.line = st->lineno;
		}
		return 1;
	}
	return fail(st, st->lineno, name, NULL,
		    "unknown section; expected [mqtt], [discovery], [safety], [printer], "
		    "[moonraker], [bambu_virtual], [dialin], [firmware], [log] or [device <id>]");
}

/* ---- the reader inih pulls lines from (see the comment at the top) ------------------ */

static char *read_line(char *buf, int num, void *stream)
{
	struct parse_state *st = stream;
	const char *line, *nl;
	size_t n;

	if (st->failed || st->pos >= st->len)
		return NULL;
	line = st->text + st->pos;
	nl = memchr(line, '\n', st->len - st->pos);
	n = nl ? (size_t)(nl - line) : st->len - st->pos;
	st->pos += n + (nl ? 1 : 0);
	st->lineno++;

	if (st->lineno == 1 && n >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
		line += 3;
		n -= 3;
	}
	while (n > 0 && isspace((unsigned char)line[n - 1])) /* also the '\r' of CRLF */
		n--;
	while (n > 0 && isspace((unsigned char)*line)) { /* no multi-line continuations */
		line++;
		n--;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)line[i];

		if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
			fail(st, st->lineno, NULL, NULL, "the line contains a control character");
			return NULL;
		}
	}
	/* The line goes over whole, with its '\n' (an inih built with INI_ALLOW_REALLOC takes
	 * a full buffer without one for part of a line and reads on), so it and the '\0'
	 * must fit. */
	if (num < 3 || n > (size_t)num - 2) {
		fail(st, st->lineno, NULL, NULL, "the line is longer than %d characters",
		     num < 3 ? 0 : num - 2);
		return NULL;
	}
	memcpy(buf, line, n);
	buf[n] = '\n';
	buf[n + 1] = '\0';

	if (n == 0 || *line == ';' || *line == '#')
		return buf;
	if (*line == '[')
		return enter_section(st, line, n) ? buf : NULL;
	if (!memchr(line, '=', n) && !memchr(line, ':', n)) {
		fail(st, st->lineno, NULL, NULL, "expected [section], key = value or a comment");
		return NULL;
	}
	return buf;
}

/* ---- values ------------------------------------------------------------------------ */

static void *slot(struct parse_state *st, const struct key_def *kd)
{
	char *base = (char *)st;

	switch (kd->target) {
	case T_CONFIG:
		base = (char *)st->cfg;
		break;
	case T_DEVICE:
		base = (char *)&st->cfg->devices[st->cfg->n_devices - 1];
		break;
	case T_STATE:
		break;
	}
	return base + kd->offset;
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 1;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 1;
		}
	}
	return 0;
}

/* "a.b.c": members of nested JSON objects (a member name with a '.' cannot be named). */
static const char *path_problem(const char *s)
{
	size_t n = strlen(s);

	if (s[0] == '.' || s[n - 1] == '.' || strstr(s, ".."))
		return "must be member names separated by single '.', e.g. print.bed_temper";
	return NULL;
}

static const char *address_problem(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	if (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1)
		return NULL;
	return "is not an IPv4 or IPv6 address (names are not resolved)";
}

static const char *serial_problem(const char *s)
{
	size_t n = strlen(s);

	if (n > 32 ||
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") != n)
		return "must be 1..32 letters and digits";
	return NULL;
}

static const char *family_problem(const char *s)
{
	size_t n = strlen(s);

	if (n > 32 || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") != n)
		return "is not a family name (1..32 of a-z, 0-9 and '_', e.g. panda_breath)";
	return NULL;
}

/* Topic prefixes: one or more non-empty levels, no wildcards. */
static const char *topic_problem(const char *s)
{
	size_t n = strlen(s);

	if (strpbrk(s, "+#"))
		return "must not contain '+' or '#'";
	if (s[0] == '/' || s[n - 1] == '/')
		return "must not start or end with '/'";
	if (strstr(s, "//"))
		return "must not contain an empty level ('//')";
	return NULL;
}

static int set_number(struct parse_state *st, const struct key_def *kd, const char *value)
{
	const char *sect = st->section, *key = kd->name;
	const char *shown = (kd->flags & F_SECRET) ? "(value not shown)" : value;
	char *end;
	double d;
	long l = 0;

	errno = 0;
	if (kd->kind == K_INT) {
		l = strtol(value, &end, 10);
		d = (double)l;
	} else {
		d = strtod(value, &end);
	}
	if (end == value || *end != '\0' || isnan(d))
		return fail(st, st->lineno, sect, key, "'%s' is not a number", shown);
	if (errno == ERANGE || !isfinite(d) ||
	    ((d < (double)kd->min || d > (double)kd->max) &&
	     !((kd->flags & F_ZERO_OK) && d == 0))) {
		if (kd->flags & F_ZERO_OK)
			return fail(st, st->lineno, sect, key, "%s is out of range 0 or %ld..%ld",
				    shown, kd->min, kd->max);
		return fail(st, st->lineno, sect, key, "%s is out of range %ld..%ld", shown,
			    kd->min, kd->max);
	}
	if (kd->kind == K_INT)
		*(int *)slot(st, kd) = (int)l;
	else
		*(double *)slot(st, kd) = d;
	return 1;
}

static int set_value(struct parse_state *st, const struct key_def *kd, const char *value)
{
	const char *sect = st->section, *key = kd->name;
	const char *problem;
	char **sp;

	switch (kd->kind) {
	case K_INT:
	case K_DOUBLE:
		return set_number(st, kd, value);
	case K_BOOL:
		if (!parse_bool(value, (bool *)slot(st, kd)))
			return fail(st, st->lineno, sect, key,
				    "'%s' is not a boolean; use true/false, yes/no, on/off or 1/0",
				    (kd->flags & F_SECRET) ? "(value not shown)" : value);
		return 1;
	case K_LEVEL: {
		enum p2m_log_level level;

		if (!p2m_log_level_parse(value, &level))
			return fail(st, st->lineno, sect, key,
				    "'%s' is not a log level; use error, warning, info or debug",
				    value);
		*(int *)slot(st, kd) = (int)level;
		return 1;
	}
	case K_STRING:
	case K_TOPIC:
	case K_PATH:
	case K_ADDRESS:
	case K_SERIAL:
	case K_FAMILY:
		if (*value == '\0')
			return fail(st, st->lineno, sect, key, "must not be empty");
		problem = kd->kind == K_TOPIC	  ? topic_problem(value)
			  : kd->kind == K_PATH	  ? path_problem(value)
			  : kd->kind == K_ADDRESS ? address_problem(value)
			  : kd->kind == K_SERIAL  ? serial_problem(value)
			  : kd->kind == K_FAMILY  ? family_problem(value)
						  : NULL;
		if (problem)
			return fail(st, st->lineno, sect, key, "'%s' %s", value, problem);
		break;
	case K_OPTIONAL:
		if (*value == '\0')
			return 1; /* empty = none */
		break;
	}

	if (kd->flags & F_SECRET)
		st->secret_in_text = true;
	if (kd->flags & F_PW_SOURCE) {
		if (st->pw_key)
			return fail(st, st->lineno, sect, key,
				    "cannot be used together with %s (line %d); keep one of them",
				    st->pw_key, st->pw_line);
		st->pw_key = kd->name;
		st->pw_line = st->lineno;
	}
	sp = slot(st, kd);
	g_free(*sp); /* a default; duplicates never get here */
	*sp = g_strdup(value);
	return 1;
}

static int unknown_key(struct parse_state *st, const struct section_def *sd, const char *name)
{
	char known[256] = "";
	size_t used = 0;

	for (size_t i = 0; i < sd->n_keys && used < sizeof(known); i++) {
		int n = snprintf(known + used, sizeof(known) - used, "%s%s", i ? ", " : "",
				 sd->keys[i].name);

		if (n < 0)
			break;
		used += (size_t)n;
	}
	return fail(st, st->lineno, st->section, name, "unknown key; valid keys are %s", known);
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *st = user;
	const struct section_def *sd;

	(void)section; /* the reader tracks sections (see the top) */
	if (st->failed)
		return 0;
	if (st->sect == SEC_NONE)
		return fail(st, st->lineno, NULL, name, "key is outside any section");
	if (*name == '\0')
		return fail(st, st->lineno, st->section, NULL, "missing key name before '='");
	sd = &sections[st->sect];
	for (size_t i = 0; i < sd->n_keys; i++) {
		int *seen = &st->key_line[st->sect][i];

		if (strcmp(name, sd->keys[i].name) != 0)
			continue;
		if (*seen)
			return fail(st, st->lineno, st->section, name,
				    "duplicate key (first set at line %d)", *seen);
		*seen = st->lineno;
		if (st->sect == SEC_DEVICE && strcmp(name, "type") == 0)
			st->cfg->devices[st->cfg->n_devices - 1].type_line = st->lineno;
		return set_value(st, &sd->keys[i], value);
	}
	return unknown_key(st, sd, name);
}

/* ---- after the last line ----------------------------------------------------------- */

static int key_line(const struct parse_state *st, enum section s, const char *name)
{
	for (size_t i = 0; i < sections[s].n_keys; i++)
		if (strcmp(sections[s].keys[i].name, name) == 0)
			return st->key_line[s][i];
	return 0;
}

/* The password is the file's first line, without its "\n" or "\r\n". It is read into a
 * fixed buffer with read(2), not getline(): a file that is huge or never ends (a wrong
 * path such as /dev/zero) must not make the daemon allocate without limit, and a
 * buffer of our own is wiped afterwards where stdio's would not be. */
static int read_secret_file(struct parse_state *st, enum section sec, const char *key,
			    const char *path, char **out)
{
	int line = key_line(st, sec, key);
	const char *sect = sections[sec].name;
	/* the longest password, then room for a "\r" and one byte to see a longer line */
	char buf[MAX_PASSWORD_BYTES + 2];
	const char *nl = NULL;
	size_t n = 0;
	bool too_long;
	int fd, rc = 1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(st, line, sect, key, "cannot open '%s': %s", path, strerror(errno));
	while (!nl && n < sizeof(buf)) {
		ssize_t got = read(fd, buf + n, sizeof(buf) - n);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = fail(st, line, sect, key, "cannot read '%s': %s", path,
				  strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		nl = memchr(buf + n, '\n', (size_t)got);
		n += (size_t)got;
	}
	/* a full buffer and no line end: too long, even if a "\r" were to come next */
	too_long = !nl && n == sizeof(buf);
	if (nl)
		n = (size_t)(nl - buf);
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (too_long || n > MAX_PASSWORD_BYTES) {
		rc = fail(st, line, sect, key, "the first line of '%s' is longer than %d bytes",
			  path, MAX_PASSWORD_BYTES);
		goto out;
	}
	if (n == 0) {
		rc = fail(st, line, sect, key, "'%s' is empty", path);
		goto out;
	}
	/* g_strndup would cut the password short there; the broker would see another one */
	if (memchr(buf, '\0', n)) {
		rc = fail(st, line, sect, key, "the first line of '%s' holds a NUL byte", path);
		goto out;
	}
	*out = g_strndup(buf, n);
out:
	close(fd);
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

static int check_cafile(struct parse_state *st)
{
	int line = key_line(st, SEC_MQTT, "cafile");
	const char *path = st->cfg->mqtt.cafile;
	char byte;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(st, line, "mqtt", "cafile", "cannot open '%s': %s", path,
			    strerror(errno));
	if (read(fd, &byte, 1) < 0) { /* a directory opens, but does not read */
		int e = errno;

		close(fd);
		return fail(st, line, "mqtt", "cafile", "cannot read '%s': %s", path, strerror(e));
	}
	close(fd);
	return 1;
}

/* "a, b c" -> {"a", "b", "c"} */
static int split_allow(struct parse_state *st, int line)
{
	struct p2m_dialin_conf *di = &st->cfg->dialin;
	char *save = NULL;

	for (char *p = strtok_r(st->allow, " ,\t", &save); p; p = strtok_r(NULL, " ,\t", &save)) {
		if (di->n_allow == MAX_ALLOW)
			return fail(st, line, "dialin", "allow", "more than %d device ids",
				    MAX_ALLOW);
		if (strlen(p) > P2M_ID_MAX)
			return fail(st, line, "dialin", "allow",
				    "'%s' is longer than %d characters", p, P2M_ID_MAX);
		di->allow = g_renew(char *, di->allow, di->n_allow + 1);
		di->allow[di->n_allow++] = g_strdup(p);
	}
	return 1;
}

static const char *const src_names[P2M_SRC_COUNT] = {
    [P2M_SRC_BED] = "bed_temperature",
    [P2M_SRC_BED_TARGET] = "bed_target",
    [P2M_SRC_NOZZLE] = "nozzle_temperature",
    [P2M_SRC_STATE] = "print_state",
};

/* [printer], [moonraker], [bambu_virtual]: what each needs of the others. */
static int finish_printer(struct parse_state *st)
{
	struct p2m_config *c = st->cfg;
	struct p2m_printer_conf *p = &c->printer;
	struct p2m_bambu_virtual_conf *b = &c->bambu_virtual;

	if (p->enabled) {
		for (int i = 0; i < P2M_SRC_COUNT; i++) {
			char key[64];

			snprintf(key, sizeof(key), "%s_path", src_names[i]);
			if (p->src[i].path && !p->src[i].topic)
				return fail(st, key_line(st, SEC_PRINTER, key), "printer", key,
					    "needs %s_topic", src_names[i]);
		}
		if (!p->bambu_report_topic && !p->src[P2M_SRC_BED].topic)
			return fail(st, p->line, "printer", NULL,
				    "needs bambu_report_topic or bed_temperature_topic");
		if (!valid_device_id(p->id))
			return fail(st, key_line(st, SEC_PRINTER, "id"), "printer", "id",
				    "'%s' is not valid: use 1..%d characters from a-z, 0-9, '_' "
				    "and '-'",
				    p->id, P2M_ID_MAX);
		if (p2m_config_device(c, p->id))
			return fail(st, key_line(st, SEC_PRINTER, "id"), "printer", "id",
				    "'%s' is also a [device] id; choose another", p->id);
	}
	if (c->moonraker.port && !p->enabled)
		return fail(st, key_line(st, SEC_MOONRAKER, "port"), "moonraker", "port",
			    "needs a [printer] section to take the bed temperature from");
	if (b->line) {
		if (!b->serial)
			return fail(st, b->line, "bambu_virtual", NULL,
				    "missing required key 'serial'");
		if (!p->enabled)
			return fail(st, b->line, "bambu_virtual", NULL,
				    "needs a [printer] section to take the bed temperature from");
		b->topic = g_strdup_printf("device/%s/report", b->serial);
		if (p->bambu_report_topic && strcmp(p->bambu_report_topic, b->topic) == 0)
			return fail(
			    st, key_line(st, SEC_BAMBU_VIRTUAL, "serial"), "bambu_virtual",
			    "serial",
			    "%s is also [printer] bambu_report_topic: the gateway would read "
			    "its own reports",
			    b->topic);
	}
	return 1;
}

/* [dialin]: defaults, the token from its one source, the allow list. */
static int finish_dialin(struct parse_state *st)
{
	struct p2m_dialin_conf *di = &st->cfg->dialin;
	const char *env = getenv(P2M_ENV_DIALIN_TOKEN);
	int tl = key_line(st, SEC_DIALIN, "token"), tfl = key_line(st, SEC_DIALIN, "token_file");

	if (di->path[0] != '/' || strpbrk(di->path, "?# "))
		return fail(st, key_line(st, SEC_DIALIN, "path"), "dialin", "path",
			    "'%s' must start with '/' and hold no '?', '#' or blank", di->path);
	if (tl && tfl)
		return fail(st, tfl, "dialin", "token_file",
			    "cannot be used together with token (line %d); keep one of them", tl);
	if (env && *env) {
		free_secret(di->token);
		di->token = g_strdup(env);
	} else if (st->token_file &&
		   !read_secret_file(st, SEC_DIALIN, "token_file", st->token_file, &di->token)) {
		return 0;
	}
	if (di->token && strlen(di->token) < 16)
		return fail(st,
			    tfl	 ? tfl
			    : tl ? tl
				 : st->lineno,
			    "dialin", tfl ? "token_file" : "token",
			    "the token must be at least 16 characters long");
	if (st->allow && !split_allow(st, key_line(st, SEC_DIALIN, "allow")))
		return 0;
	return 1;
}

/* [dialin] firmware_dir is the old name of [firmware] dir (images for every family now):
 * still taken, with a warning saying where it moved. */
static int finish_firmware(struct parse_state *st)
{
	struct p2m_config *c = st->cfg;
	int line = key_line(st, SEC_DIALIN, "firmware_dir");

	if (!c->dialin.firmware_dir)
		return 1;
	if (c->firmware.dir && strcmp(c->firmware.dir, c->dialin.firmware_dir) != 0)
		return fail(st, line, "dialin", "firmware_dir",
			    "is the old name of [firmware] dir, which names another directory "
			    "(line %d); keep [firmware] dir only",
			    key_line(st, SEC_FIRMWARE, "dir"));
	p2m_warn("%s:%d: [dialin] firmware_dir is deprecated: write \"[firmware]\" and "
		 "\"dir = %s\" instead (images for every family)",
		 st->name, line, c->dialin.firmware_dir);
	if (!c->firmware.dir)
		c->firmware.dir = g_strdup(c->dialin.firmware_dir);
	return 1;
}

static void finish(struct parse_state *st)
{
	struct p2m_config *c = st->cfg;
	struct p2m_mqtt_conf *m = &c->mqtt;
	const char *env = getenv(P2M_ENV_MQTT_PASSWORD);
	char *bridge = p2m_config_bridge_id(c);

	for (size_t i = 0; i < c->n_devices; i++) {
		struct p2m_device_conf *d = &c->devices[i];
		char section[sizeof("device ") + P2M_ID_MAX];

		snprintf(section, sizeof(section), "device %s", d->id);
		/* its topics and Home Assistant device would be the gateway's own (bridge.c) */
		if (strcmp(d->id, bridge) == 0) {
			fail(st, d->line, section, NULL,
			     "'%s' is the gateway's own Home Assistant device id (base_topic + "
			     "\"_bridge\"); choose another",
			     d->id);
			g_free(bridge);
			return;
		}
		if (!d->host && !c->discovery.mdns && !c->dialin.port) {
			g_free(bridge);
			fail(st, d->line, section, NULL,
			     "missing required key 'host' (a device without one must be found "
			     "by [discovery] mdns, which is off, or dial in to [dialin], which "
			     "is off)");
			return;
		}
	}
	g_free(bridge);
	/* Legal MQTT, but RabbitMQ's MQTT plugin delivers a '.' as '/' (docs/BROKERS.md):
	 * Home Assistant would then listen on topics nothing is published to. */
	if (strchr(m->base_topic, '.') || strchr(m->discovery_prefix, '.'))
		p2m_warn("[mqtt] base_topic '%s' or discovery_prefix '%s' holds a '.': RabbitMQ "
			 "turns it into '/', so avoid it if the broker may be RabbitMQ",
			 m->base_topic, m->discovery_prefix);

	if (env && *env) {
		/* Overrides both password and password_file; the file is then not read. */
		free_secret(m->password);
		m->password = g_strdup(env);
	} else if (st->password_file && !read_secret_file(st, SEC_MQTT, "password_file",
							  st->password_file, &m->password)) {
		return;
	}
	if (!finish_dialin(st) || !finish_firmware(st))
		return;

	if (c->safety.max_chamber_temp <= c->safety.max_target_temp) {
		int line = key_line(st, SEC_SAFETY, "max_chamber_temp");
		fail(st, line ? line : key_line(st, SEC_SAFETY, "max_target_temp"), "safety",
		     "max_chamber_temp",
		     "%g must be above max_target_temp (%g): heating to an allowed target would "
		     "trip the cut-off",
		     c->safety.max_chamber_temp, c->safety.max_target_temp);
		return;
	}
	if (!finish_printer(st))
		return;
	if (m->tls && !key_line(st, SEC_MQTT, "port"))
		m->port = 8883;
	if (m->tls && m->cafile && !check_cafile(st))
		return;
}

static bool is_string_kind(enum kind k)
{
	return k != K_INT && k != K_DOUBLE && k != K_BOOL && k != K_LEVEL;
}

/* Each key's default (key_def.def) into the struct at base. */
static void apply_defaults(void *base, const struct key_def *keys, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct key_def *kd = &keys[i];
		void *at = (char *)base + kd->offset;

		if (!kd->def || kd->target == T_STATE)
			continue;
		switch (kd->kind) {
		case K_INT:
			*(int *)at = (int)strtol(kd->def, NULL, 10);
			break;
		case K_DOUBLE:
			*(double *)at = strtod(kd->def, NULL);
			break;
		case K_BOOL:
			parse_bool(kd->def, (bool *)at);
			break;
		case K_LEVEL: {
			enum p2m_log_level level = P2M_LOG_INFO;

			p2m_log_level_parse(kd->def, &level);
			*(int *)at = (int)level;
			break;
		}
		default:
			*(char **)at = g_strdup(kd->def);
		}
	}
}

/* Free every string key of the struct at base. */
static void free_keys(void *base, const struct key_def *keys, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char **at = (char **)(void *)((char *)base + keys[i].offset);

		if (keys[i].target == T_STATE || !is_string_kind(keys[i].kind))
			continue;
		if (keys[i].flags & F_SECRET)
			free_secret(*at);
		else
			g_free(*at);
		*at = NULL;
	}
}

void p2m_config_device_defaults(struct p2m_device_conf *d)
{
	apply_defaults(d, device_keys, ARRAY_LEN(device_keys));
}

int p2m_config_check_families(const struct p2m_config *cfg, bool (*known)(const char *name),
			      const char *known_list, char *err, size_t errlen)
{
	for (size_t i = 0; i < cfg->n_devices; i++) {
		const struct p2m_device_conf *d = &cfg->devices[i];

		if (d->type && !known(d->type)) {
			if (err && errlen)
				snprintf(err, errlen,
					 "%s:%d: [device %s] type: unknown device family '%s'; "
					 "known: %s",
					 cfg->path, d->type_line, d->id, d->type, known_list);
			return -1;
		}
	}
	return 0;
}

const struct p2m_device_conf *p2m_config_device(const struct p2m_config *cfg, const char *id)
{
	for (size_t i = 0; i < cfg->n_devices; i++)
		if (strcmp(cfg->devices[i].id, id) == 0)
			return &cfg->devices[i];
	return NULL;
}

char *p2m_config_bridge_id(const struct p2m_config *cfg)
{
	char *id = g_strdup_printf("%s_bridge", cfg->mqtt.base_topic);

	/* a topic level may hold '/' and more; a discovery node id only these */
	for (char *p = id; *p; p++)
		if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-')
			*p = '_';
	return id;
}

/* ---- comparing two configurations (a reload) --------------------------------------- */

static bool str_equal(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* Do the keys of the structs at a and b hold different values? Keys that only say where
 * a value came from (password_file, token_file) are skipped: the value read is compared
 * where it is stored. */
static bool keys_differ(const void *a, const void *b, const struct key_def *keys, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct key_def *kd = &keys[i];
		const char *pa = (const char *)a + kd->offset, *pb = (const char *)b + kd->offset;
		bool same;

		if (kd->target == T_STATE)
			continue;
		switch (kd->kind) {
		case K_INT:
		case K_LEVEL:
			same = *(const int *)(const void *)pa == *(const int *)(const void *)pb;
			break;
		case K_DOUBLE:
			same = !isless(*(const double *)(const void *)pa,
				       *(const double *)(const void *)pb) &&
			       !isgreater(*(const double *)(const void *)pa,
					  *(const double *)(const void *)pb);
			break;
		case K_BOOL:
			same = *(const bool *)pa == *(const bool *)pb;
			break;
		default:
			same = str_equal(*(char *const *)(const void *)pa,
					 *(char *const *)(const void *)pb);
		}
		if (!same)
			return true;
	}
	return false;
}

bool p2m_config_section_differs(const struct p2m_config *a, const struct p2m_config *b,
				const char *section)
{
	for (int s = SEC_NONE + 1; s < SEC_COUNT; s++) {
		if (s == SEC_DEVICE || strcmp(sections[s].name, section) != 0)
			continue;
		if (keys_differ(a, b, sections[s].keys, sections[s].n_keys))
			return true;
		/* what is derived from the keys or the section's presence */
		if (s == SEC_PRINTER)
			return a->printer.enabled != b->printer.enabled;
		if (s == SEC_DIALIN) {
			if (a->dialin.n_allow != b->dialin.n_allow)
				return true;
			for (size_t i = 0; i < a->dialin.n_allow; i++)
				if (strcmp(a->dialin.allow[i], b->dialin.allow[i]) != 0)
					return true;
		}
		return false;
	}
	return true; /* no such section: nothing can be assumed the same */
}

bool p2m_config_device_differs(const struct p2m_device_conf *a, const struct p2m_device_conf *b)
{
	return !str_equal(a->id, b->id) || keys_differ(a, b, device_keys, ARRAY_LEN(device_keys));
}

static void set_defaults(struct p2m_config *c)
{
	for (int s = SEC_NONE + 1; s < SEC_COUNT; s++)
		if (s != SEC_DEVICE)
			apply_defaults(c, sections[s].keys, sections[s].n_keys);
}

/* Parses text[0..len) into *cfg. On error *cfg is zeroed. */
static int parse(struct p2m_config *cfg, const char *text, size_t len, const char *name,
		 bool *secret_in_text, char *err, size_t errlen)
{
	struct p2m_config c = {0};
	struct parse_state st = {
	    .cfg = &c, .name = name, .text = text, .len = len, .err = err, .errlen = errlen};
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	if (err && errlen > 0)
		err[0] = '\0';
	c.path = g_strdup(name);
	set_defaults(&c);
	rc = ini_parse_stream(read_line, &st, on_key, &st);
	if (rc == -2) {
		/* inih's own allocation; everything else aborts (docs/DEVELOPING.md) */
		fail(&st, st.lineno, NULL, NULL, "out of memory");
	} else if (rc > 0 && (!st.failed || rc < st.err_line)) {
		/* inih found a line it cannot read before any error of ours. */
		st.failed = false;
		fail(&st, rc, NULL, NULL, "syntax error: cannot parse this line");
	}
	if (!st.failed)
		finish(&st);
	g_free(st.password_file);
	g_free(st.token_file);
	g_free(st.allow);
	if (st.failed) {
		p2m_config_free(&c);
		return -1;
	}
	*secret_in_text = st.secret_in_text;
	*cfg = c;
	return 0;
}

int p2m_config_load_string(struct p2m_config *cfg, const char *text, const char *name, char *err,
			   size_t errlen)
{
	bool secret;

	if (!text)
		text = "";
	return parse(cfg, text, strlen(text), name ? name : "<string>", &secret, err, errlen);
}

int p2m_config_load_file(struct p2m_config *cfg, const char *path, char *err, size_t errlen)
{
	struct stat sb;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	bool secret = false;
	int fd, rc;

	memset(cfg, 0, sizeof(*cfg));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		set_err(err, errlen, path, "cannot open", errno);
		return -1;
	}
	if (fstat(fd, &sb) < 0) {
		set_err(err, errlen, path, "cannot stat", errno);
		close(fd);
		return -1;
	}
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *bigger;

			if (cap >= (size_t)MAX_FILE_SIZE) {
				if (err && errlen > 0)
					snprintf(err, errlen, "%s: larger than %d bytes", path,
						 MAX_FILE_SIZE);
				rc = -1;
				goto out;
			}
			bigger = g_malloc(cap ? cap * 2 : 4096);
			/* Not realloc: the old block may hold a password; wipe it first. */
			if (buf) {
				memcpy(bigger, buf, len);
				explicit_bzero(buf, cap);
				g_free(buf);
			}
			buf = bigger;
			cap = cap ? cap * 2 : 4096;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			set_err(err, errlen, path, "cannot read", errno);
			rc = -1;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	rc = parse(cfg, buf, len, path, &secret, err, errlen);
	if (rc == 0 && secret && (sb.st_mode & S_IROTH)) {
		cfg->password_world_readable = true;
		p2m_warn("%s holds a secret (the MQTT password or the [dialin] token) and is "
			 "readable by every user; chmod 600 it, or use password_file/token_file or "
			 "the %s/%s environment variables",
			 path, P2M_ENV_MQTT_PASSWORD, P2M_ENV_DIALIN_TOKEN);
	}
out:
	close(fd);
	if (buf) {
		explicit_bzero(buf, cap);
		g_free(buf);
	}
	return rc;
}

void p2m_config_free(struct p2m_config *cfg)
{
	for (int s = SEC_NONE + 1; s < SEC_COUNT; s++)
		if (s != SEC_DEVICE)
			free_keys(cfg, sections[s].keys, sections[s].n_keys);
	for (size_t i = 0; i < cfg->n_devices; i++) {
		free_keys(&cfg->devices[i], device_keys, ARRAY_LEN(device_keys));
		g_free(cfg->devices[i].id);
	}
	/* what is derived from the keys rather than read into them */
	g_free(cfg->path);
	for (size_t i = 0; i < cfg->dialin.n_allow; i++)
		g_free(cfg->dialin.allow[i]);
	g_free(cfg->dialin.allow);
	g_free(cfg->bambu_virtual.topic);
	g_free(cfg->devices);
	memset(cfg, 0, sizeof(*cfg));
}
