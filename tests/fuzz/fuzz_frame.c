/* fuzz_frame.c - libFuzzer target: one WebSocket text frame from a device.
 *
 * The input is the frame's text, as ws.c hands it to device.c. Like device.c's
 * take_frame(), it is parsed, checked with is_snapshot(), merged into a device state
 * (the caps of entity.h apply: depth 8, strings and names 256 bytes, members per root,
 * stored bytes), and the driver's events are derived from the state before and after;
 * then the published state and the discovery payload are built from the result, and
 * the [safety] rules are checked: when the state says the heater is on, the off command
 * must plan and, carried out, switch it off (fuzz_check_safety_off). What is kept of the
 * device must stay within p2m_entity_max_stored(): a frame of small values takes far
 * more memory than its text. Each input is applied to a device that has not reported
 * yet and to one realistic snapshot state (chosen by the input's length, so it is
 * deterministic), then everything is freed.
 * The same text is also taken as a PTalk message (a request/reply family that dials in):
 * the driver's message() turns it into a frame, which is merged, bounded, published and
 * named (device_id) the same way, answering a request or none. */
#include "fuzz_common.h"

static struct fuzz_fixtures fx;
static size_t max_stored;
static const struct p2m_safety safety = {
    .max_target_temp = 60, .max_chamber_temp = 65, .sensor_fault_cutoff = true};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_fixtures_load(&fx);
	max_stored = p2m_entity_max_stored(&p2m_driver_panda_breath);
	return 0;
}

static void apply(const cJSON *base, const cJSON *frame)
{
	const struct p2m_driver *drv = &p2m_driver_panda_breath;
	cJSON *dev = cJSON_Duplicate(base, true);
	cJSON *before = cJSON_Duplicate(dev, true);
	const char *fw;
	char *fw_old;

	if (!dev || !before)
		abort();
	(void)drv->is_snapshot(frame);
	fw = drv->fw_version(dev);
	fw_old = fw ? strdup(fw) : NULL;
	(void)p2m_entity_merge_frame(drv, "fuzz", dev, frame, false);
	if (p2m_entity_stored_bytes(dev) > max_stored) {
		fprintf(stderr, "FUZZ PROPERTY FAILED: state holds %zu bytes, bound %zu\n",
			p2m_entity_stored_bytes(dev), max_stored);
		abort();
	}
	if (before->child)
		drv->events(before, dev, fuzz_drop_event, NULL);
	/* device.c compares the firmware before and after, and logs a change */
	fw = drv->fw_version(dev);
	if (fw && fw_old)
		(void)strcmp(fw, fw_old);
	free(fw_old);
	fuzz_render(dev, fx.local, &safety);
	fuzz_check_safety_off(dev, fx.local, &safety);
	cJSON_Delete(before);
	cJSON_Delete(dev);
}

static void apply_ptalk(const cJSON *msg, size_t size)
{
	static const char *const requests[] = {NULL, "request_status", "set_volume", "request_ota"};
	const struct p2m_driver *drv = &p2m_driver_ptalk;
	const struct p2m_update_view update = {
	    .latest = "9.9.9", .path = "/nonexistent", .percent = -1};
	cJSON *dev = cJSON_CreateObject(), *frame = NULL, *state;
	struct p2m_view v = {.dev = dev, .now = 1e9, .update = &update};
	char id[P2M_ID_MAX + 1];

	(void)drv->is_snapshot(msg);
	(void)drv->message(msg, requests[size % 4], &frame, fuzz_drop_event, NULL);
	if (frame) {
		(void)p2m_entity_merge_frame(drv, "fuzz", dev, frame, false);
		if (p2m_entity_stored_bytes(dev) > p2m_entity_max_stored(drv)) {
			fprintf(stderr, "FUZZ PROPERTY FAILED: ptalk state holds %zu bytes\n",
				p2m_entity_stored_bytes(dev));
			abort();
		}
	}
	if (drv->device_id(dev, id, sizeof(id)) &&
	    (strlen(id) > P2M_ID_MAX ||
	     strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(id))) {
		fprintf(stderr, "FUZZ PROPERTY FAILED: ptalk id '%s' is not a valid id\n", id);
		abort();
	}
	(void)drv->fw_version(dev);
	state = p2m_entity_state(drv, &v);
	free(cJSON_PrintUnformatted(state));
	cJSON_Delete(state);
	cJSON_Delete(frame);
	cJSON_Delete(dev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cJSON *frame = cJSON_ParseWithLength((const char *)data, size);

	if (!frame)
		return 0; /* device.c logs and drops text that is not JSON */
	apply(fx.bases[0], frame);
	apply(fx.bases[1 + size % (FUZZ_N_BASES - 1)], frame);
	apply_ptalk(frame, size);
	cJSON_Delete(frame);
	return 0;
}
