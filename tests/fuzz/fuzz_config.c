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
 * PANDA2MQTT_MQTT_PASSWORD variable is unset so that the file is read at all. */
#include "fuzz_common.h"

#include "panda2mqtt/config.h"

#include <stdio.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	unsetenv(P2M_ENV_MQTT_PASSWORD);
	return 0;
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
		abort(); /* an error must say what is wrong */
	if (rc == 0) {
		for (size_t i = 0; i < cfg.n_devices; i++)
			(void)p2m_config_device(&cfg, cfg.devices[i].id);
		if (strlen(cfg.mqtt.host) == 0 || strlen(cfg.mqtt.base_topic) == 0)
			abort(); /* defaults are filled in */
	}
	p2m_config_free(&cfg);
	free(text);
	return 0;
}
