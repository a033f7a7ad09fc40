/* test_config.c - unit tests for config.c: defaults, a full file, every class of error
 * with its exact "file:line" prefix, the password sources and the rule that no password
 * ever appears in a message. Runs without servers; temporary files go to $TMPDIR. */
#include "panda2mqtt/config.h"
#include "panda2mqtt/log.h"

#include <errno.h>
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

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SECRET	     "hunter2-s3cret"

static const struct p2m_config zero_cfg;

/* ---- helpers ----------------------------------------------------------------------- */

static void load_ok(struct p2m_config *cfg, const char *text)
{
	char err[512] = "";
	int rc = p2m_config_load_string(cfg, text, "t.ini", err, sizeof(err));

	if (rc != 0)
		fail_msg("unexpected error: %s\n--- input ---\n%s", err, text);
	assert_string_equal(err, "");
}

/* Loads text expecting an error; checks the cfg was left zeroed and returns the message. */
static void load_err(const char *text, char *err, size_t errlen)
{
	struct p2m_config cfg;

	memset(&cfg, 0x5a, sizeof(cfg)); /* garbage in: the loader must not read it */
	assert_int_equal(p2m_config_load_string(&cfg, text, "t.ini", err, errlen), -1);
	assert_memory_equal(&cfg, &zero_cfg, sizeof(cfg));
	p2m_config_free(&cfg); /* safe after an error */
}

static void assert_starts_with(const char *s, const char *prefix)
{
	if (strncmp(s, prefix, strlen(prefix)) != 0)
		fail_msg("'%s' does not start with '%s'", s, prefix);
}

static void assert_contains(const char *s, const char *part)
{
	if (!strstr(s, part))
		fail_msg("'%s' does not contain '%s'", s, part);
}

static void assert_lacks(const char *s, const char *part)
{
	if (strstr(s, part))
		fail_msg("'%s' contains '%s'", s, part);
}

/* A temporary file holding len bytes with the given mode; the caller unlinks and frees
 * it. */
static char *temp_file_bytes(const char *data, size_t len, mode_t mode)
{
	const char *dir = getenv("TMPDIR");
	char *path;
	int fd;

	assert_true(asprintf(&path, "%s/test_config.XXXXXX", dir && *dir ? dir : "/tmp") > 0);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

static char *temp_file(const char *text, mode_t mode)
{
	return temp_file_bytes(text, strlen(text), mode);
}

static void remove_temp(char *path)
{
	unlink(path);
	free(path);
}

/* Redirects stderr (where p2m_log writes) into a temporary file until capture_end. */
struct capture {
	int saved, fd;
	char *path;
	char text[4096];
};

static void capture_begin(struct capture *c)
{
	c->path = temp_file("", 0600);
	c->fd = open(c->path, O_RDWR);
	assert_true(c->fd >= 0);
	fflush(stderr);
	c->saved = dup(STDERR_FILENO);
	assert_true(c->saved >= 0);
	assert_true(dup2(c->fd, STDERR_FILENO) >= 0);
}

static const char *capture_end(struct capture *c)
{
	ssize_t n;

	fflush(stderr);
	assert_true(dup2(c->saved, STDERR_FILENO) >= 0);
	close(c->saved);
	n = pread(c->fd, c->text, sizeof(c->text) - 1, 0);
	assert_true(n >= 0);
	c->text[n] = '\0';
	close(c->fd);
	remove_temp(c->path);
	return c->text;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* ---- defaults and a valid file ------------------------------------------------------ */

static void check_defaults(const struct p2m_config *cfg)
{
	assert_string_equal(cfg->path, "t.ini");
	assert_string_equal(cfg->mqtt.host, "127.0.0.1");
	assert_int_equal(cfg->mqtt.port, 1883);
	assert_null(cfg->mqtt.username);
	assert_null(cfg->mqtt.password);
	assert_string_equal(cfg->mqtt.client_id, "panda2mqtt");
	assert_string_equal(cfg->mqtt.base_topic, "panda2mqtt");
	assert_string_equal(cfg->mqtt.discovery_prefix, "homeassistant");
	assert_int_equal(cfg->mqtt.keepalive, 30);
	assert_false(cfg->mqtt.tls);
	assert_null(cfg->mqtt.cafile);
	assert_false(cfg->mqtt.insecure);
	assert_true(cfg->discovery.mdns);
	assert_true(cfg->safety.max_target_temp == 60.0);
	assert_true(cfg->safety.heater_fault_cutoff);
	assert_int_equal(cfg->safety.max_drying_hours, 99);
	assert_null(cfg->devices);
	assert_int_equal(cfg->n_devices, 0);
	assert_false(cfg->password_world_readable);
}

static void test_defaults(void **state)
{
	static const char *const inputs[] = {
	    "",
	    "; only comments\n# and blank lines\n\n   \n",
	    "[mqtt]\n[discovery]\n[safety]\n",
	    "[mqtt]\nusername =\npassword =\npassword_file =\ncafile =\n",
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(inputs); i++) {
		struct p2m_config cfg;

		load_ok(&cfg, inputs[i]);
		check_defaults(&cfg);
		p2m_config_free(&cfg);
		assert_memory_equal(&cfg, &zero_cfg, sizeof(cfg));
		p2m_config_free(&cfg); /* twice is safe */
	}
}

static void test_full_config(void **state)
{
	static const char text[] = "; panda2mqtt\n"
				   "[mqtt]\n"
				   "host = broker.lan\n"
				   "port = 1884\n"
				   "username = heater\n"
				   "password = pw ; an inline comment\n"
				   "client_id = p2m-1\n"
				   "base_topic = home/panda\n"
				   "discovery_prefix = ha\n"
				   "keepalive = 45\n"
				   "tls = No\n"
				   "cafile = /nonexistent/ignored-without-tls.pem\n"
				   "insecure = ON\n"
				   "\n"
				   "[discovery]\n"
				   "mdns = off\n"
				   "\n"
				   "[device garage]\n"
				   "host = 192.168.1.50\n"
				   "port = 8080\n"
				   "name = Garage chamber heater\n"
				   "stale_timeout = 2\n"
				   "refresh_interval = 0\n"
				   "\n"
				   "[safety]\n"
				   "max_target_temp = 45.5\n"
				   "heater_fault_cutoff = false\n"
				   "max_drying_hours = 24\n"
				   "\n"
				   "[device shed_2-b]\n"
				   "host = shed.lan\n";
	struct p2m_config cfg;

	(void)state;
	load_ok(&cfg, text);
	assert_string_equal(cfg.mqtt.host, "broker.lan");
	assert_int_equal(cfg.mqtt.port, 1884);
	assert_string_equal(cfg.mqtt.username, "heater");
	assert_string_equal(cfg.mqtt.password, "pw");
	assert_string_equal(cfg.mqtt.client_id, "p2m-1");
	assert_string_equal(cfg.mqtt.base_topic, "home/panda");
	assert_string_equal(cfg.mqtt.discovery_prefix, "ha");
	assert_int_equal(cfg.mqtt.keepalive, 45);
	assert_false(cfg.mqtt.tls);
	assert_string_equal(cfg.mqtt.cafile, "/nonexistent/ignored-without-tls.pem");
	assert_true(cfg.mqtt.insecure);
	assert_false(cfg.discovery.mdns);
	assert_true(cfg.safety.max_target_temp == 45.5);
	assert_true(cfg.safety.max_chamber_temp == 65);
	assert_true(cfg.safety.sensor_fault_cutoff);
	assert_false(cfg.safety.heater_fault_cutoff);
	assert_int_equal(cfg.safety.max_drying_hours, 24);
	assert_true(cfg.safety.controller_lost_minutes == 0);
	assert_false(cfg.password_world_readable); /* never from the string loader */

	assert_int_equal(cfg.n_devices, 2);
	assert_string_equal(cfg.devices[0].id, "garage");
	assert_string_equal(cfg.devices[0].host, "192.168.1.50");
	assert_int_equal(cfg.devices[0].port, 8080);
	assert_string_equal(cfg.devices[0].name, "Garage chamber heater");
	assert_int_equal(cfg.devices[0].stale_timeout, 2);
	assert_int_equal(cfg.devices[0].refresh_interval, 0);
	assert_int_equal(cfg.devices[0].line, 18);

	assert_string_equal(cfg.devices[1].id, "shed_2-b");
	assert_string_equal(cfg.devices[1].host, "shed.lan");
	assert_int_equal(cfg.devices[1].port, 80);
	assert_null(cfg.devices[1].name); /* default: the device's own name (device.c) */
	assert_int_equal(cfg.devices[1].stale_timeout, 60);
	assert_int_equal(cfg.devices[1].refresh_interval, 60);
	assert_int_equal(cfg.devices[1].line, 30);
	p2m_config_free(&cfg);
}

/* A section without host names a device that discovery finds under that id. */
static void test_found_device_section(void **state)
{
	struct p2m_config cfg;
	const struct p2m_device_conf *d;

	(void)state;
	load_ok(&cfg, "[device panda_breath_3c84279a1b2c]\nname = Garage\nstale_timeout = 5\n"
		      "[device garage]\nhost = garage.local\n");
	assert_true(cfg.discovery.mdns);
	d = p2m_config_device(&cfg, "panda_breath_3c84279a1b2c");
	assert_non_null(d);
	assert_null(d->host);
	assert_string_equal(d->name, "Garage");
	assert_int_equal(d->port, 80);
	assert_int_equal(d->stale_timeout, 5);
	assert_int_equal(d->refresh_interval, 60);
	d = p2m_config_device(&cfg, "garage");
	assert_non_null(d);
	assert_string_equal(d->host, "garage.local");
	assert_null(p2m_config_device(&cfg, "panda_breath"));
	p2m_config_free(&cfg);
}

/* Indentation, CRLF, a BOM, comments and ':' separators are accepted; an indented key is
 * a key, not the continuation of the previous value. */
static void test_layout(void **state)
{
	static const char text[] = "\xEF\xBB\xBF; comment\r\n"
				   "[mqtt]\r\n"
				   "  host = a.lan\r\n"
				   "\tport = 1900   \r\n"
				   "keepalive: 60\r\n"
				   "[device x] ; trailing comment\r\n"
				   "    host = 10.0.0.1\r\n";
	struct p2m_config cfg;

	(void)state;
	load_ok(&cfg, text);
	assert_string_equal(cfg.mqtt.host, "a.lan");
	assert_int_equal(cfg.mqtt.port, 1900);
	assert_int_equal(cfg.mqtt.keepalive, 60);
	assert_int_equal(cfg.n_devices, 1);
	assert_string_equal(cfg.devices[0].host, "10.0.0.1");
	assert_int_equal(cfg.devices[0].line, 6);
	p2m_config_free(&cfg);
}

static void test_booleans(void **state)
{
	static const struct {
		const char *text;
		bool value;
	} cases[] = {
	    {"true", true}, {"TRUE", true}, {"yes", true},    {"Yes", true},
	    {"on", true},   {"1", true},    {"false", false}, {"False", false},
	    {"no", false},  {"NO", false},  {"off", false},   {"0", false},
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct p2m_config cfg;
		char text[64];

		snprintf(text, sizeof(text), "[discovery]\nmdns = %s\n", cases[i].text);
		load_ok(&cfg, text);
		assert_int_equal(cfg.discovery.mdns, cases[i].value);
		p2m_config_free(&cfg);
	}
}

static void test_tls_port(void **state)
{
	char *ca = temp_file("-----BEGIN CERTIFICATE-----\n", 0600);
	struct p2m_config cfg;
	char text[512];

	(void)state;
	load_ok(&cfg, "[mqtt]\ntls = true\n");
	assert_true(cfg.mqtt.tls);
	assert_int_equal(cfg.mqtt.port, 8883);
	assert_null(cfg.mqtt.cafile);
	p2m_config_free(&cfg);

	load_ok(&cfg, "[mqtt]\nport = 1883\ntls = on\n"); /* given explicitly: kept */
	assert_int_equal(cfg.mqtt.port, 1883);
	p2m_config_free(&cfg);

	load_ok(&cfg, "[mqtt]\ntls = false\n");
	assert_int_equal(cfg.mqtt.port, 1883);
	p2m_config_free(&cfg);

	snprintf(text, sizeof(text), "[mqtt]\ntls = yes\ncafile = %s\n", ca);
	load_ok(&cfg, text);
	assert_string_equal(cfg.mqtt.cafile, ca);
	assert_int_equal(cfg.mqtt.port, 8883);
	p2m_config_free(&cfg);
	remove_temp(ca);
}

/* ---- errors ------------------------------------------------------------------------ */

struct err_case {
	const char *text;
	const char *prefix;   /* the exact start of the message */
	const char *contains; /* and some words after it */
};

static const struct err_case err_cases[] = {
    /* unknown section */
    {"[mqtt]\nhost = a\n[foo]\n", "t.ini:3: [foo]: ", "unknown section"},
    {"[ mqtt ]\n", "t.ini:1: [ mqtt ]: ", "unknown section"},
    {"[Mqtt]\nhost = a\n", "t.ini:1: [Mqtt]: ", "unknown section"},
    {"[devices]\n", "t.ini:1: [devices]: ", "unknown section"},
    /* unknown key */
    {"[mqtt]\nprot = 1\n", "t.ini:2: [mqtt] prot: ", "unknown key"},
    {"[safety]\nmdns = on\n", "t.ini:2: [safety] mdns: ", "unknown key"},
    {"[discovery]\nmdns = on\nHost = x\n", "t.ini:3: [discovery] Host: ", "unknown key"},
    {"[device a]\nhost = x\ncolor = red\n", "t.ini:3: [device a] color: ", "unknown key"},
    /* not a number */
    {"[mqtt]\nport = abc\n", "t.ini:2: [mqtt] port: 'abc' is not a number", ""},
    {"[device a]\nhost = x\nport = 80x\n", "t.ini:3: [device a] port: '80x' is not a number", ""},
    {"[mqtt]\nport =\n", "t.ini:2: [mqtt] port: '' is not a number", ""},
    {"[mqtt]\nport = 0x50\n", "t.ini:2: [mqtt] port: '0x50' is not a number", ""},
    {"[mqtt]\nkeepalive = 1.5\n", "t.ini:2: [mqtt] keepalive: '1.5' is not a number", ""},
    {"[safety]\nmax_target_temp = 50C\n",
     "t.ini:2: [safety] max_target_temp: '50C' is not a number", ""},
    {"[safety]\nmax_target_temp = nan\n",
     "t.ini:2: [safety] max_target_temp: 'nan' is not a number", ""},
    /* out of range */
    {"[mqtt]\nport = 70000\n", "t.ini:2: [mqtt] port: 70000 is out of range 1..65535", ""},
    {"[mqtt]\nport = 0\n", "t.ini:2: [mqtt] port: 0 is out of range 1..65535", ""},
    {"[mqtt]\nport = -1\n", "t.ini:2: [mqtt] port: -1 is out of range 1..65535", ""},
    {"[mqtt]\nport = 99999999999999999999\n",
     "t.ini:2: [mqtt] port: 99999999999999999999 is out of range 1..65535", ""},
    {"[mqtt]\nkeepalive = 4\n", "t.ini:2: [mqtt] keepalive: 4 is out of range 5..3600", ""},
    {"[mqtt]\nkeepalive = 3601\n", "t.ini:2: [mqtt] keepalive: 3601 is out of range 5..3600", ""},
    {"[device a]\nhost = x\nstale_timeout = 1\n",
     "t.ini:3: [device a] stale_timeout: 1 is out of range 2..3600", ""},
    {"[device a]\nhost = x\nrefresh_interval = 3\n",
     "t.ini:3: [device a] refresh_interval: 3 is out of range 0 or 5..86400", ""},
    {"[device a]\nhost = x\nrefresh_interval = 86401\n",
     "t.ini:3: [device a] refresh_interval: 86401 is out of range 0 or 5..86400", ""},
    {"[safety]\nmax_target_temp = 60.5\n",
     "t.ini:2: [safety] max_target_temp: 60.5 is out of range 0..60", ""},
    {"[dialin]\nport = 9000\nmax_devices = 0\n",
     "t.ini:3: [dialin] max_devices: 0 is out of range 1..1024", ""},
    {"[safety]\nmax_drying_hours = 100\n",
     "t.ini:2: [safety] max_drying_hours: 100 is out of range 1..99", ""},
    {"[safety]\nmax_drying_hours = 0\n",
     "t.ini:2: [safety] max_drying_hours: 0 is out of range 1..99", ""},
    {"[safety]\nheater_fault_cutoff = maybe\n", "t.ini:2: [safety] heater_fault_cutoff: ", ""},
    {"[safety]\nmax_target_temp = -1\n",
     "t.ini:2: [safety] max_target_temp: -1 is out of range 0..60", ""},
    {"[safety]\nmax_target_temp = inf\n",
     "t.ini:2: [safety] max_target_temp: inf is out of range 0..60", ""},
    /* the chamber cut-off must sit above any target heating may aim for */
    {"[safety]\nmax_target_temp = 50\nmax_chamber_temp = 50\n",
     "t.ini:3: [safety] max_chamber_temp: 50 must be above max_target_temp (50)", ""},
    {"[safety]\nmax_chamber_temp = 95\n",
     "t.ini:2: [safety] max_chamber_temp: 95 is out of range 20..90", ""},
    {"[safety]\ncontroller_lost_minutes = -1\n",
     "t.ini:2: [safety] controller_lost_minutes: -1 is out of range 0..1440", ""},
    {"[safety]\nsensor_fault_cutoff = sometimes\n",
     "t.ini:2: [safety] sensor_fault_cutoff: 'sometimes' is not a boolean", ""},
    /* bad boolean */
    {"[mqtt]\ntls = maybe\n", "t.ini:2: [mqtt] tls: 'maybe' is not a boolean", ""},
    {"[mqtt]\ninsecure =\n", "t.ini:2: [mqtt] insecure: '' is not a boolean", ""},
    {"[discovery]\nmdns = 2\n", "t.ini:2: [discovery] mdns: '2' is not a boolean", ""},
    /* missing host with mdns off: named at the section header */
    {"[discovery]\nmdns = off\n[device garage]\nport = 81\n",
     "t.ini:3: [device garage]: missing required key 'host'", "[discovery] mdns, which is off"},
    {"[device a]\n[device b]\nhost = x\n[discovery]\nmdns = no\n",
     "t.ini:1: [device a]: ", "'host'"},
    {"[discovery]\nmdns=false\n[device a]\nhost = x\n[device b]\nname = B\n",
     "t.ini:5: [device b]: ", "'host'"},
    /* bad device id */
    {"[device]\nhost = x\n", "t.ini:1: [device]: ", "missing device id"},
    {"[device ]\nhost = x\n", "t.ini:1: [device ]: ", "missing device id"},
    {"[device Garage]\n", "t.ini:1: [device Garage]: ", "'Garage' is not valid"},
    {"[device a.b]\n", "t.ini:1: [device a.b]: ", "'a.b' is not valid"},
    {"[device a b]\n", "t.ini:1: [device a b]: ", "'a b' is not valid"},
    {"[device  a]\n", "t.ini:1: [device  a]: ", "' a' is not valid"},
    {"[device abcdefghijabcdefghijabcdefghijabc]\n",
     "t.ini:1: [device abcdefghijabcdefghijabcdefghijabc]: ", "is not valid"},
    /* duplicate device */
    {"[device a]\nhost = x\n\n[device a]\nhost = y\n",
     "t.ini:4: [device a]: ", "duplicate device id (first defined at line 1)"},
    /* duplicate key, also in a second device (keys are per section) */
    {"[mqtt]\nport = 1\nport = 2\n",
     "t.ini:3: [mqtt] port: ", "duplicate key (first set at line 2)"},
    {"[mqtt]\nhost = a\nhost = a\n", "t.ini:3: [mqtt] host: ", "duplicate key"},
    {"[device a]\nhost = x\n[device b]\nhost = y\nhost = z\n",
     "t.ini:5: [device b] host: ", "duplicate key (first set at line 4)"},
    /* a single section given twice */
    {"[mqtt]\n[safety]\n[mqtt]\n", "t.ini:3: [mqtt]: ", "section appears twice (first at line 1)"},
    /* key outside any section */
    {"host = x\n[mqtt]\n", "t.ini:1: host: ", "outside any section"},
    {"; comment\n\nport = 1\n", "t.ini:3: port: ", "outside any section"},
    /* password and password_file */
    {"[mqtt]\npassword = pw\npassword_file = /nonexistent/pw\n",
     "t.ini:3: [mqtt] password_file: ", "cannot be used together with password (line 2)"},
    {"[mqtt]\npassword_file = /nonexistent/pw\n\npassword = pw\n",
     "t.ini:4: [mqtt] password: ", "cannot be used together with password_file (line 2)"},
    {"[mqtt]\n\npassword_file = /nonexistent/pw\n",
     "t.ini:3: [mqtt] password_file: ", "cannot open '/nonexistent/pw'"},
    /* topics */
    {"[mqtt]\nbase_topic = a/+/b\n", "t.ini:2: [mqtt] base_topic: 'a/+/b' ",
     "must not contain '+' or '#'"},
    {"[mqtt]\ndiscovery_prefix = ha#\n", "t.ini:2: [mqtt] discovery_prefix: 'ha#' ",
     "must not contain '+' or '#'"},
    {"[mqtt]\nbase_topic = /a\n", "t.ini:2: [mqtt] base_topic: '/a' ", "start or end with '/'"},
    {"[mqtt]\nbase_topic = a/\n", "t.ini:2: [mqtt] base_topic: 'a/' ", "start or end with '/'"},
    {"[mqtt]\nbase_topic = a//b\n", "t.ini:2: [mqtt] base_topic: 'a//b' ", "'//'"},
    {"[mqtt]\nbase_topic =\n", "t.ini:2: [mqtt] base_topic: must not be empty", ""},
    {"[mqtt]\ndiscovery_prefix = /\n", "t.ini:2: [mqtt] discovery_prefix: '/' ", "'/'"},
    /* required strings */
    {"[mqtt]\nhost =\n", "t.ini:2: [mqtt] host: must not be empty", ""},
    {"[mqtt]\nclient_id =\n", "t.ini:2: [mqtt] client_id: must not be empty", ""},
    {"[device a]\nhost = x\nname =\n", "t.ini:3: [device a] name: must not be empty", ""},
    /* lines inih or the reader cannot take */
    {"[mqtt\n", "t.ini:1: ", "no closing ']'"},
    {"[mqtt] x\n", "t.ini:1: ", "unexpected text after ']'"},
    {"[mqtt]\njunk\n", "t.ini:2: ", "expected [section], key = value or a comment"},
    {"[mqtt]\nfoo ; = bar\n", "t.ini:2: syntax error", ""},
    {"[mqtt]\n= 1\n", "t.ini:2: [mqtt]: ", "missing key name"},
    {"[mqtt]\nhost = a\x01 b\n", "t.ini:2: ", "control character"},
    /* an indented key is a key, not a continuation of host */
    {"[mqtt]\nhost = a\n    port = 99999\n", "t.ini:3: [mqtt] port: ", "out of range"},
    /* line numbers survive CRLF, a BOM, comments and blank lines */
    {"\xEF\xBB\xBF; c\r\n# c\r\n\r\n[mqtt]\r\nport = x\r\n",
     "t.ini:5: [mqtt] port: 'x' is not a number", ""},
    /* the first error is the one reported, also ahead of end-of-file checks */
    {"[mqtt]\nport = x\nkeepalive = 1\n[foo]\n", "t.ini:2: [mqtt] port: ", "not a number"},
    {"[device a]\n[mqtt]\nport = 0\n", "t.ini:3: [mqtt] port: ", "out of range"},
    /* tls with a CA file that cannot be read: named at the cafile line */
    {"[mqtt]\ntls = yes\ncafile = /nonexistent/ca.pem\n",
     "t.ini:3: [mqtt] cafile: ", "cannot open '/nonexistent/ca.pem'"},
    {"[mqtt]\ncafile = /\ntls = yes\n", "t.ini:2: [mqtt] cafile: ", "cannot read '/'"},
};

static void test_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(err_cases); i++) {
		char err[512] = "";

		load_err(err_cases[i].text, err, sizeof(err));
		if (strncmp(err, err_cases[i].prefix, strlen(err_cases[i].prefix)) != 0 ||
		    !strstr(err, err_cases[i].contains) || strchr(err, '\n'))
			fail_msg("case %zu: got '%s', want '%s...%s'\n--- input ---\n%s", i, err,
				 err_cases[i].prefix, err_cases[i].contains, err_cases[i].text);
	}
}

static void test_long_line(void **state)
{
	char text[512], err[512];

	(void)state;
	snprintf(text, sizeof(text), "[mqtt]\n; ok\nname = %0300d\n", 0);
	load_err(text, err, sizeof(err));
	assert_starts_with(err, "t.ini:3: the line is longer than");
	/* the longest line inih takes is accepted and the count stays right */
	snprintf(text, sizeof(text), "[mqtt]\nclient_id = %0186d\nport = x\n", 0);
	load_err(text, err, sizeof(err));
	assert_starts_with(err, "t.ini:3: [mqtt] port: 'x' is not a number");
}

static void test_error_buffer(void **state)
{
	struct p2m_config cfg;
	char small[8];

	(void)state;
	memset(small, 'x', sizeof(small));
	assert_int_equal(p2m_config_load_string(&cfg, "[foo]\n", "t.ini", small, sizeof(small)),
			 -1);
	assert_string_equal(small, "t.ini:1");
	assert_int_equal(p2m_config_load_string(&cfg, "[foo]\n", "t.ini", NULL, 0), -1);
	assert_int_equal(p2m_config_load_string(&cfg, NULL, NULL, NULL, 0), 0);
	p2m_config_free(&cfg);
}

static void test_file_errors(void **state)
{
	char err[512], want[512];
	char *path = temp_file("[mqtt]\n\nport = 0\n", 0600);
	struct p2m_config cfg;

	(void)state;
	assert_int_equal(p2m_config_load_file(&cfg, "/nonexistent/p2m.ini", err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "/nonexistent/p2m.ini: cannot open: %s", strerror(ENOENT));
	assert_string_equal(err, want);
	assert_memory_equal(&cfg, &zero_cfg, sizeof(cfg));

	assert_int_equal(p2m_config_load_file(&cfg, "/", err, sizeof(err)), -1);
	assert_starts_with(err, "/: cannot read: ");

	assert_int_equal(p2m_config_load_file(&cfg, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:3: [mqtt] port: 0 is out of range 1..65535", path);
	assert_string_equal(err, want);
	assert_memory_equal(&cfg, &zero_cfg, sizeof(cfg));
	p2m_config_free(&cfg);
	remove_temp(path);
}

/* ---- passwords --------------------------------------------------------------------- */

static void test_password_file(void **state)
{
	static const struct {
		const char *content;
		const char *password;
	} cases[] = {
	    {"s3cret pass\nsecond line\n", "s3cret pass"},
	    {"crlf\r\n", "crlf"},
	    {"no-newline", "no-newline"},
	    {" spaces kept ; too \n", " spaces kept ; too "},
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char *pw = temp_file(cases[i].content, 0600);
		struct p2m_config cfg;
		char text[512];

		snprintf(text, sizeof(text), "[mqtt]\nusername = u\npassword_file = %s\n", pw);
		load_ok(&cfg, text);
		assert_string_equal(cfg.mqtt.password, cases[i].password);
		p2m_config_free(&cfg);
		remove_temp(pw);
	}

	char *empty = temp_file("\n", 0600), text[512], err[512];

	snprintf(text, sizeof(text), "[mqtt]\npassword_file = %s\n", empty);
	load_err(text, err, sizeof(err));
	assert_starts_with(err, "t.ini:2: [mqtt] password_file: ");
	assert_contains(err, "is empty");
	remove_temp(empty);
}

/* The password file's first line is capped at 4096 bytes (config.c): a wrong file, or
 * one that never ends, is an error naming the file, and never echoes what it read. */
#define PW_MAX 4096

static void password_file_ok(const char *data, size_t len, size_t pw_len)
{
	char *pw = temp_file_bytes(data, len, 0600);
	struct p2m_config cfg;
	char text[512];

	snprintf(text, sizeof(text), "[mqtt]\npassword_file = %s\n", pw);
	load_ok(&cfg, text);
	assert_int_equal(strlen(cfg.mqtt.password), pw_len);
	assert_memory_equal(cfg.mqtt.password, data, pw_len);
	p2m_config_free(&cfg);
	remove_temp(pw);
}

static void password_file_err(const char *data, size_t len, const char *why)
{
	char *pw = temp_file_bytes(data, len, 0600);
	char text[512], err[1024], prefix[600];

	snprintf(text, sizeof(text), "[mqtt]\npassword_file = %s\n", pw);
	load_err(text, err, sizeof(err));
	snprintf(prefix, sizeof(prefix), "t.ini:2: [mqtt] password_file: the first line of '%s' ",
		 pw);
	assert_starts_with(err, prefix);
	assert_contains(err, why);
	assert_lacks(err, SECRET);
	remove_temp(pw);
}

/* SECRET over and over, so that any echo of the content would be seen. */
static void fill_secret(char *data, size_t len)
{
	for (size_t i = 0; i < len; i++)
		data[i] = SECRET[i % strlen(SECRET)];
}

static void test_password_file_capped(void **state)
{
	size_t big = (size_t)1024 * 1024;
	char *data = malloc(big);

	(void)state;
	assert_non_null(data);
	/* up to the cap, with or without a line end */
	fill_secret(data, big);
	password_file_ok(data, PW_MAX, PW_MAX);
	data[PW_MAX] = '\n';
	password_file_ok(data, PW_MAX + 1, PW_MAX);
	data[PW_MAX] = '\r';
	data[PW_MAX + 1] = '\n';
	password_file_ok(data, PW_MAX + 2, PW_MAX);
	/* a short first line, then a long rest: the rest is not read */
	data[10] = '\n';
	password_file_ok(data, big, 10);

	/* one byte over, with or without a line end, and a first line of 1 MiB */
	fill_secret(data, big);
	password_file_err(data, PW_MAX + 1, "is longer than 4096 bytes");
	data[PW_MAX + 1] = '\r';
	data[PW_MAX + 2] = '\n';
	password_file_err(data, PW_MAX + 3, "is longer than 4096 bytes");
	fill_secret(data, big);
	password_file_err(data, big, "is longer than 4096 bytes");
	/* a NUL would cut the password short: the broker would get another one */
	data[2] = '\0';
	data[5] = '\n';
	password_file_err(data, 6, "holds a NUL byte");
	free(data);
}

static void test_env_override(void **state)
{
	static const char *const inputs[] = {
	    "", "[mqtt]\npassword = from-file\n",
	    "[mqtt]\npassword_file = /nonexistent/pw\n", /* not read when overridden */
	};
	struct p2m_config cfg;
	char err[512];

	(void)state;
	assert_int_equal(setenv(P2M_ENV_MQTT_PASSWORD, "from-env", 1), 0);
	for (size_t i = 0; i < ARRAY_LEN(inputs); i++) {
		load_ok(&cfg, inputs[i]);
		assert_string_equal(cfg.mqtt.password, "from-env");
		p2m_config_free(&cfg);
	}
	/* the file is still wrong when it names two sources */
	load_err("[mqtt]\npassword = a\npassword_file = /b\n", err, sizeof(err));
	assert_starts_with(err, "t.ini:3: [mqtt] password_file: ");

	/* set but empty: ignored */
	assert_int_equal(setenv(P2M_ENV_MQTT_PASSWORD, "", 1), 0);
	load_ok(&cfg, "[mqtt]\npassword = from-file\n");
	assert_string_equal(cfg.mqtt.password, "from-file");
	p2m_config_free(&cfg);
	load_ok(&cfg, "");
	assert_null(cfg.mqtt.password);
	p2m_config_free(&cfg);
	assert_int_equal(unsetenv(P2M_ENV_MQTT_PASSWORD), 0);
}

static void test_world_readable(void **state)
{
	static const struct {
		const char *text;
		mode_t mode;
		bool flagged;
	} cases[] = {
	    {"[mqtt]\npassword = " SECRET "\n", 0644, true},
	    {"[mqtt]\npassword = " SECRET "\n", 0604, true},
	    {"[mqtt]\npassword = " SECRET "\n", 0600, false},
	    {"[mqtt]\npassword = " SECRET "\n", 0640, false}, /* group only: not "others" */
	    {"[mqtt]\npassword =\n", 0644, false},
	    {"[mqtt]\nusername = u\n", 0644, false},
	};
	(void)state;
	p2m_log_set_level(P2M_LOG_INFO); /* warnings shown */
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char *path = temp_file(cases[i].text, cases[i].mode);
		struct p2m_config cfg;
		struct capture cap;
		char err[512] = "";
		const char *log;
		int rc;

		capture_begin(&cap);
		rc = p2m_config_load_file(&cfg, path, err, sizeof(err));
		log = capture_end(&cap);
		assert_int_equal(rc, 0);
		assert_int_equal(cfg.password_world_readable, cases[i].flagged);
		if (cases[i].flagged) {
			assert_contains(log, "warning: ");
			assert_contains(log, path);
			assert_contains(log, "readable");
			assert_int_equal(count_lines(log), 1); /* one warning, one line */
		} else {
			assert_string_equal(log, "");
		}
		assert_lacks(log, SECRET);
		p2m_config_free(&cfg);
		remove_temp(path);
	}
}

/* No error message and no log line carries a password value. */
static void test_password_never_shown(void **state)
{
	static const char *const inputs[] = {
	    "[mqtt]\npassword = " SECRET "\npassword = " SECRET "x\n",
	    "[mqtt]\npassword = " SECRET "\npassword_file = /nonexistent/pw\n",
	    "[mqtt]\npassword_file = /nonexistent/pw\npassword = " SECRET "\n",
	    "[device a]\nhost = x\npassword = " SECRET "\n",
	    "[discovery]\npassword = " SECRET "\n",
	    "password = " SECRET "\n",
	    "[mqtt]\npassword ; = " SECRET "\n",
	    "[mqtt]\npassword " SECRET "\n",
	    "[mqtt]\npassword = " SECRET "\x01\n",
	    "[mqtt]\npassword = " SECRET
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
	    /* an error found only at the end (a device without host, mdns off) */
	    "[discovery]\nmdns = off\n[mqtt]\npassword = " SECRET "\n[device a]\n",
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(inputs); i++) {
		char err[1024] = "";
		struct capture cap;
		const char *log;

		capture_begin(&cap);
		load_err(inputs[i], err, sizeof(err));
		log = capture_end(&cap);
		assert_true(err[0] != '\0');
		assert_lacks(err, SECRET);
		assert_lacks(log, SECRET);
	}
	/* and from a file, including when it is world-readable */
	char *path = temp_file("[mqtt]\npassword = " SECRET "\nport = 0\n", 0644);
	struct p2m_config cfg;
	struct capture cap;
	char err[1024];

	capture_begin(&cap);
	assert_int_equal(p2m_config_load_file(&cfg, path, err, sizeof(err)), -1);
	assert_lacks(capture_end(&cap), SECRET);
	assert_lacks(err, SECRET);
	remove_temp(path);
}

/* ---- [dialin] ----------------------------------------------------------------------- */

#define TOKEN "tok-0123456789abcdef"

static void test_firmware_dir(void **state)
{
	struct p2m_config cfg;
	char err[512];

	(void)state;
	load_ok(&cfg, "");
	assert_null(cfg.firmware.dir); /* no updates by default */
	p2m_config_free(&cfg);
	load_ok(&cfg, "[firmware]\ndir = /srv/fw\n");
	assert_string_equal(cfg.firmware.dir, "/srv/fw");
	p2m_config_free(&cfg);
	/* the old name, alone or naming the same directory */
	load_ok(&cfg, "[dialin]\nfirmware_dir = /srv/fw\n");
	assert_string_equal(cfg.firmware.dir, "/srv/fw");
	p2m_config_free(&cfg);
	load_ok(&cfg, "[firmware]\ndir = /srv/fw\n[dialin]\nfirmware_dir = /srv/fw\n");
	assert_string_equal(cfg.firmware.dir, "/srv/fw");
	p2m_config_free(&cfg);
	/* two directories: which one was meant? */
	load_err("[firmware]\ndir = /srv/a\n[dialin]\nfirmware_dir = /srv/b\n", err, sizeof(err));
	assert_contains(err, "firmware_dir");
	assert_contains(err, "[firmware] dir");
}

static void test_dialin(void **state)
{
	struct p2m_config cfg;
	char err[512];
	char *tf = temp_file(TOKEN "\nignored\n", 0600);
	char text[512];

	(void)state;
	load_ok(&cfg, "");
	assert_int_equal(cfg.dialin.port, 0); /* off by default */
	assert_string_equal(cfg.dialin.listen, "0.0.0.0");
	assert_string_equal(cfg.dialin.path, "/ws");
	assert_null(cfg.dialin.token);
	assert_int_equal(cfg.dialin.n_allow, 0);
	assert_int_equal(cfg.dialin.max_devices, 16);
	assert_null(cfg.dialin.firmware_dir);
	p2m_config_free(&cfg);

	load_ok(&cfg, "[dialin]\nport = 8765\nlisten = 192.168.1.2\npath = /ptalk\n"
		      "token = " TOKEN "\nallow = A1:B2:C3:D4:E5:F6, ptalk_112233445566\t x\n"
		      "firmware_dir = /var/lib/fw\n[discovery]\nmdns = off\n[device ptalk_x]\n");
	assert_int_equal(cfg.dialin.port, 8765);
	assert_string_equal(cfg.dialin.listen, "192.168.1.2");
	assert_string_equal(cfg.dialin.path, "/ptalk");
	assert_string_equal(cfg.dialin.token, TOKEN);
	assert_int_equal(cfg.dialin.n_allow, 3);
	assert_string_equal(cfg.dialin.allow[0], "A1:B2:C3:D4:E5:F6");
	assert_string_equal(cfg.dialin.allow[1], "ptalk_112233445566");
	assert_string_equal(cfg.dialin.allow[2], "x");
	assert_string_equal(cfg.dialin.firmware_dir, "/var/lib/fw");
	/* the old name of [firmware] dir */
	assert_string_equal(cfg.firmware.dir, "/var/lib/fw");
	/* a [device] without host is fine when it may dial in */
	assert_int_equal(cfg.n_devices, 1);
	p2m_config_free(&cfg);

	snprintf(text, sizeof(text), "[dialin]\nport = 1\ntoken_file = %s\n", tf);
	load_ok(&cfg, text);
	assert_string_equal(cfg.dialin.token, TOKEN);
	p2m_config_free(&cfg);

	setenv(P2M_ENV_DIALIN_TOKEN, "from-the-environment-1234", 1);
	load_ok(&cfg, text);
	assert_string_equal(cfg.dialin.token, "from-the-environment-1234");
	p2m_config_free(&cfg);
	unsetenv(P2M_ENV_DIALIN_TOKEN);

	load_err("[dialin]\nport = 70000\n", err, sizeof(err));
	assert_string_equal(err, "t.ini:2: [dialin] port: 70000 is out of range 0 or 1..65535");
	load_err("[dialin]\npath = ws\n", err, sizeof(err));
	assert_starts_with(err, "t.ini:2: [dialin] path: 'ws' must start with '/'");
	load_err("[dialin]\npath = /ws?x=1\n", err, sizeof(err));
	assert_starts_with(err, "t.ini:2: [dialin] path: ");
	load_err("[dialin]\ntoken = short\n", err, sizeof(err));
	assert_string_equal(
	    err, "t.ini:2: [dialin] token: the token must be at least 16 characters long");
	assert_lacks(err, "short'");
	snprintf(text, sizeof(text), "[dialin]\ntoken = " TOKEN "\ntoken_file = %s\n", tf);
	load_err(text, err, sizeof(err));
	assert_starts_with(err, "t.ini:3: [dialin] token_file: cannot be used together with token");
	assert_lacks(err, TOKEN);
	load_err("[dialin]\ntoken_file = /nonexistent/tok\n", err, sizeof(err));
	assert_starts_with(err, "t.ini:2: [dialin] token_file: cannot open '/nonexistent/tok'");
	load_err("[dialin]\nallow = abcdefghijklmnopqrstuvwxyz0123456789\n", err, sizeof(err));
	assert_starts_with(err, "t.ini:2: [dialin] allow: ");
	load_err("[discovery]\nmdns = off\n[device a]\n", err, sizeof(err));
	assert_contains(err, "[dialin], which is off");
	remove_temp(tf);
}

static bool known_family(const char *name)
{
	return strcmp(name, "panda_breath") == 0 || strcmp(name, "json_sensor") == 0;
}

/* [device] type: a family name, checked for existence by the caller (the core does not
 * know the families); absent means "not written" (NULL). */
static void test_device_type(void **state)
{
	struct p2m_config cfg;
	char err[512];

	(void)state;
	load_ok(&cfg, "[device a]\nhost = 10.0.0.2\n\n[device b]\nhost = 10.0.0.3\n"
		      "type = json_sensor\n");
	assert_null(cfg.devices[0].type);
	assert_string_equal(cfg.devices[1].type, "json_sensor");
	assert_int_equal(cfg.devices[1].type_line, 6);
	assert_int_equal(p2m_config_check_families(&cfg, known_family, "panda_breath, json_sensor",
						   err, sizeof(err)),
			 0);
	p2m_config_free(&cfg);

	load_ok(&cfg, "[device a]\nhost = 10.0.0.2\n\n[device b]\nhost = x\ntype = ptalk\n");
	assert_int_equal(p2m_config_check_families(&cfg, known_family, "panda_breath, json_sensor",
						   err, sizeof(err)),
			 -1);
	assert_string_equal(err, "t.ini:6: [device b] type: unknown device family 'ptalk'; "
				 "known: panda_breath, json_sensor");
	p2m_config_free(&cfg);

	load_err("[device a]\nhost = x\ntype = Panda Breath\n", err, sizeof(err));
	assert_starts_with(err, "t.ini:3: [device a] type: 'Panda Breath' is not a family name");
	load_err("[device a]\nhost = x\ntype =\n", err, sizeof(err));
	assert_starts_with(err, "t.ini:3: [device a] type: must not be empty");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_device_type),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_full_config),
	    cmocka_unit_test(test_layout),
	    cmocka_unit_test(test_found_device_section),
	    cmocka_unit_test(test_booleans),
	    cmocka_unit_test(test_tls_port),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_long_line),
	    cmocka_unit_test(test_error_buffer),
	    cmocka_unit_test(test_file_errors),
	    cmocka_unit_test(test_password_file),
	    cmocka_unit_test(test_password_file_capped),
	    cmocka_unit_test(test_env_override),
	    cmocka_unit_test(test_world_readable),
	    cmocka_unit_test(test_password_never_shown),
	    cmocka_unit_test(test_dialin),
	    cmocka_unit_test(test_firmware_dir),
	};

	/* The runner's environment must not supply a password behind the tests' back. */
	unsetenv(P2M_ENV_MQTT_PASSWORD);
	unsetenv(P2M_ENV_DIALIN_TOKEN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
