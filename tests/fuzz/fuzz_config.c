/* fuzz_config.c - libFuzzer target: the INI configuration.
 *
 * The input is the configuration text given to p2m_config_load_string() (cut at its
 * first NUL, as a C string is); the result is freed with p2m_config_free(), also after
 * an error, which the API allows.
 *
 * Files: a password_file or a cafile (with tls) makes the loader open that path read-only.
 * Inputs that name something under /dev, /proc, /sys or /run are skipped: a FIFO or a
 * terminal would block the run, which says nothing about the parser (a password_file
 * that never ends, such as /dev/zero, is only read up to its 4 KiB cap;
 * tools/run-fuzz.sh also runs the targets from an empty directory). The
 * PANDA2MQTT_MQTT_PASSWORD and PANDA2MQTT_DIALIN_TOKEN variables are unset so that the
 * text is what counts.
 *
 * Checked: an error always says what is wrong, and never shows the value of a secret key
 * (password, token; config.c's F_SECRET) written in the text; a configuration that loads
 * holds every value within the range config.h documents (the rest of the daemon relies
 * on that: a [safety] max_drying_hours of 0 would refuse every drying run, a
 * max_chamber_temp not above max_target_temp would trip on an allowed target); and the
 * same text loaded again compares equal in every section and device (what a reload of
 * an unchanged file compares to keep every device's link). */
#include "fuzz_common.h"

#include "panda2mqtt/config.h"

#include <stdio.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	unsetenv(P2M_ENV_MQTT_PASSWORD);
	unsetenv(P2M_ENV_DIALIN_TOKEN);
	return 0;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* The value of "key = value" on the line (n bytes), trimmed; false when the line is not
 * that key's. */
static bool value_of(const char *line, size_t n, const char *key, const char **v, size_t *vl)
{
	const char *eq = memchr(line, '=', n), *k = line, *end = line + n;
	size_t kl = strlen(key);

	if (!eq)
		return false;
	while (k < eq && blank(*k))
		k++;
	if ((size_t)(eq - k) < kl || strncmp(k, key, kl) != 0)
		return false;
	for (k += kl; k < eq; k++)
		if (!blank(*k))
			return false;
	for (*v = eq + 1; *v < end && blank(**v); (*v)++)
		;
	for (*vl = (size_t)(end - *v); *vl > 0 && blank((*v)[*vl - 1]); (*vl)--)
		;
	return true;
}

/* The error of loading text with its bytes at [off, off + n) rotated (fuzz_rotate). */
static void load_rotated(const char *text, size_t off, size_t n, char *err, size_t errlen)
{
	struct p2m_config cfg;
	char *copy = strdup(text), saved;

	if (!copy)
		abort();
	saved = copy[off + n];
	copy[off + n] = '\0';
	fuzz_rotate(copy + off);
	copy[off + n] = saved;
	err[0] = '\0';
	(void)p2m_config_load_string(&cfg, copy, "fuzz.ini", err, errlen);
	p2m_config_free(&cfg);
	free(copy);
}

/* The values of secret keys ("password = X", "token = X": config.c's F_SECRET) must not be
 * in err (X of 4 bytes or more). When err holds X, the text is loaded again with X
 * rotated: if that error holds X too, it comes from elsewhere (the list of valid keys
 * names "username", for one); if not, the error shows the secret. */
static void check_err_hides_secrets(const char *text, const char *err)
{
	static const char *const keys[] = {"password", "token"};
	char again[512], *x;
	const char *v;
	size_t vl;

	for (const char *line = text; *line;) {
		const char *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) : strlen(line);

		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			if (!value_of(line, n, keys[i], &v, &vl) || vl < 4 ||
			    !memmem(err, strlen(err), v, vl))
				continue;
			load_rotated(text, (size_t)(v - text), vl, again, sizeof(again));
			x = strndup(v, vl);
			if (!x)
				abort();
			if (!strstr(again, x))
				fuzz_fail("the error shows the value of %s: %s", keys[i], err);
			free(x);
		}
		line += n + (end != NULL);
	}
}

static const char *const sections[] = {"mqtt",	    "discovery",     "safety", "printer",
				       "moonraker", "bambu_virtual", "dialin", "log"};

static void check_ranges(const struct p2m_config *c)
{
	const struct p2m_safety *s = &c->safety;
	const struct p2m_printer_conf *p = &c->printer;

#define RANGE(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fuzz_fail("a loaded configuration breaks: %s", #cond);                     \
	} while (0)
	RANGE(c->mqtt.host && *c->mqtt.host && c->mqtt.base_topic && *c->mqtt.base_topic);
	RANGE(c->mqtt.client_id && c->mqtt.discovery_prefix);
	RANGE(c->mqtt.port >= 1 && c->mqtt.port <= 65535);
	RANGE(c->mqtt.keepalive >= 5 && c->mqtt.keepalive <= 3600);
	RANGE(s->max_target_temp >= 0 && s->max_target_temp <= 60);
	RANGE(s->max_chamber_temp >= 20 && s->max_chamber_temp <= 90);
	RANGE(s->max_chamber_temp > s->max_target_temp);
	RANGE(s->max_drying_hours >= 1 && s->max_drying_hours <= 99);
	RANGE(s->controller_lost_minutes == 0 ||
	      (s->controller_lost_minutes >= 0.05 && s->controller_lost_minutes <= 1440));
	RANGE(c->dialin.port >= 0 && c->dialin.port <= 65535);
	RANGE(c->dialin.max_devices >= 1 && c->dialin.max_devices <= 1024);
	RANGE(!c->dialin.token || strlen(c->dialin.token) >= 16);
	RANGE(c->dialin.path && c->dialin.path[0] == '/' && c->dialin.listen);
	RANGE(c->dialin.n_allow <= 256);
	RANGE(c->moonraker.port >= 0 && c->moonraker.port <= 65535);
	RANGE(!c->bambu_virtual.serial ||
	      (c->bambu_virtual.interval >= 1 && c->bambu_virtual.interval <= 60 &&
	       c->bambu_virtual.topic));
	RANGE(!p->enabled || (p->id && p->name));
	RANGE(p->stale_timeout == 0 || (p->stale_timeout >= 10 && p->stale_timeout <= 86400));
	for (size_t i = 0; i < c->n_devices; i++) {
		const struct p2m_device_conf *d = &c->devices[i];

		RANGE(d->id && strlen(d->id) >= 1 && strlen(d->id) <= P2M_ID_MAX &&
		      strspn(d->id, "abcdefghijklmnopqrstuvwxyz0123456789_-") == strlen(d->id));
		RANGE(p2m_config_device(c, d->id) == d); /* ids are unique */
		RANGE(d->port >= 1 && d->port <= 65535);
		RANGE(d->stale_timeout >= 2 && d->stale_timeout <= 3600);
		RANGE(d->refresh_interval == 0 ||
		      (d->refresh_interval >= 5 && d->refresh_interval <= 86400));
	}
	RANGE(c->discovery.forget_after >= 0 && c->discovery.forget_after <= 36500);
	RANGE(c->log.level >= P2M_LOG_ERR && c->log.level <= P2M_LOG_DEBUG);
#undef RANGE
}

/* A reload of an unchanged file: the text loaded again compares equal, section by
 * section and device by device (else every device would be reconnected). */
static void check_reload_same(const struct p2m_config *c, const char *text)
{
	struct p2m_config again;
	char err[512];

	if (p2m_config_load_string(&again, text, "fuzz.ini", err, sizeof(err)) != 0)
		fuzz_fail("the same text loaded once and refused the second time: %s", err);
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		if (p2m_config_section_differs(c, &again, sections[i]))
			fuzz_fail("[%s] differs from itself loaded again", sections[i]);
	if (again.n_devices != c->n_devices)
		fuzz_fail("%zu devices, then %zu", c->n_devices, again.n_devices);
	for (size_t i = 0; i < c->n_devices; i++)
		if (p2m_config_device_differs(&c->devices[i], &again.devices[i]))
			fuzz_fail("[device %s] differs from itself loaded again", c->devices[i].id);
	p2m_config_free(&again);
}

static bool names_special_files(const uint8_t *data, size_t size)
{
	static const char *const bad[] = {"dev/", "proc/", "sys/", "run/", "fd/"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (memmem(data, size, bad[i], strlen(bad[i])))
			return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct p2m_config cfg;
	char err[512];
	char *text;
	int rc;

	if (names_special_files(data, size))
		return 0;
	text = malloc(size + 1);
	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	err[0] = '\0';
	rc = p2m_config_load_string(&cfg, text, "fuzz.ini", err, sizeof(err));
	if (rc != 0 && !err[0])
		fuzz_fail("a configuration refused without a reason");
	if (rc != 0)
		check_err_hides_secrets(text, err);
	else {
		check_ranges(&cfg);
		check_reload_same(&cfg, text);
	}
	p2m_config_free(&cfg);
	free(text);
	return 0;
}
