/* fuzz_command.c - libFuzzer target: one MQTT command for a device.
 *
 * Input layout (so that any byte string is a valid input):
 *   byte 0, bit 0:     0 = a JSON object on <base>/<id>/set (p2m_command_parse_object),
 *                      1 = a plain payload on <base>/<id>/set/<field> (p2m_command_parse_field)
 *   byte 0, bits 1-6:  which device state the command is planned against (modulo the
 *                      number of states in fuzz_common.h: 0 = none reported yet, 1 = V1.0.0
 *                      off, 2 = V1.0.3 heating, 3 = V1.0.3 drying, 4 = V1.0.1 Auto off,
 *                      5 = V1.0.4 with its own HA link)
 *   byte 0, bit 7:     [safety] max_target_temp 45 instead of 60
 *   the rest:          object mode: the payload; field mode: the field name up to the
 *                      first '\n' (a topic level: no NUL), then the payload.
 * So in a readable seed '0' '2' '4' '6' '8' ':' start an object for states 0-5 and
 * '1' '3' '5' '7' '9' ';' a field payload.
 * Then, as device.c does: p2m_command_plan; on success the frames are printed, the
 * values the gateway holds (cmd.local) are merged, the frames are merged into the state
 * as the device would report them back, the state and discovery are rebuilt, and the
 * [safety] off command is checked against the new state; p2m_command_clear frees the
 * rest. A rejection must name no frames and give a reason. */
#include "fuzz_common.h"

static struct fuzz_fixtures fx;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_fixtures_load(&fx);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct p2m_driver *drv = &p2m_driver_panda_breath;
	const char *payload;
	size_t len;
	char err[256];
	cJSON *command;
	uint8_t sel;

	if (size < 1)
		return 0;
	sel = data[0];
	payload = (const char *)data + 1;
	len = size - 1;
	if (sel & 1) {
		const char *nl = memchr(payload, '\n', len);
		size_t flen = nl ? (size_t)(nl - payload) : len;
		char *field;

		if (memchr(payload, '\0', flen))
			return 0; /* MQTT topics cannot hold NUL */
		field = strndup(payload, flen);
		if (!field)
			abort();
		payload = nl ? nl + 1 : payload + len;
		len = nl ? len - flen - 1 : 0;
		command = p2m_command_parse_field(drv, field, payload, len, err, sizeof(err));
		free(field);
	} else {
		command = p2m_command_parse_object(payload, len, err, sizeof(err));
	}
	if (!command) {
		if (!err[0])
			abort(); /* a refusal must say why */
		return 0;
	}

	cJSON *dev = cJSON_Duplicate(fx.bases[((sel >> 1) & 0x3f) % FUZZ_N_BASES], true);
	cJSON *local = cJSON_Duplicate(fx.local, true);
	const struct p2m_safety safety = {.max_target_temp = sel & 0x80 ? 45 : 60,
					  .max_chamber_temp = 65,
					  .sensor_fault_cutoff = true};
	struct p2m_view view = {.dev = dev, .local = local, .now = 1000000, .read_at = 999000};
	struct p2m_cmd cmd = {.driver = drv, .dev = dev, .view = &view, .safety = &safety};

	if (p2m_command_plan(&cmd, command) == 0) {
		char *frames = p2m_json_print(cmd.frames);

		cJSON_free(frames);
		if (cmd.local)
			p2m_json_merge(local, cmd.local);
		/* the device does what it was sent and reports it */
		fuzz_echo_frames(dev, cmd.frames);
		fuzz_render(dev, local, &safety);
		fuzz_check_safety_off(dev, local, &safety);
	} else if (cmd.frames || !cmd.reason[0]) {
		abort(); /* a rejection sends nothing and says why */
	}
	p2m_command_clear(&cmd);
	cJSON_Delete(local);
	cJSON_Delete(dev);
	cJSON_Delete(command);
	return 0;
}
