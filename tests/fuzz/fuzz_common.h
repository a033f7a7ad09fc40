/* fuzz_common.h - what the three libFuzzer targets share: quiet logging, the device
 * states an input is applied to (snapshots as each firmware sends them, taken from
 * tests/unit/test_panda_breath.c and the simulator), and rendering a device's state,
 * discovery and events the way device.c does, so everything a hostile frame or
 * command can reach is exercised and freed. Header-only: each target is one file. */
#ifndef P2M_FUZZ_COMMON_H
#define P2M_FUZZ_COMMON_H

#include "panda2mqtt/command.h"
#include "panda2mqtt/families.h"
#include "panda2mqtt/entity.h"
#include "panda2mqtt/ha.h"
#include "panda2mqtt/json_util.h"
#include "panda2mqtt/log.h"
#include "panda2mqtt/safety.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Set P2M_FUZZ_VERBOSE=1 to see the daemon's warnings while reproducing an input. */
static inline void fuzz_quiet_logs(void)
{
	const char *v = getenv("P2M_FUZZ_VERBOSE");

	p2m_log_set_level(v && *v == '1' ? P2M_LOG_DEBUG : P2M_LOG_ERR);
}

/* set_temp: "" on V1.0.0 (it keeps its target in temp), else "\"set_temp\":40,". */
#define FUZZ_SNAPSHOT(fw, work_on, work_mode, isrunning, set_temp)                                 \
	"{\"settings\":{\"fw_version\":\"" fw "\",\"work_on\":" work_on                            \
	",\"work_mode\":" work_mode ",\"isrunning\":" isrunning "," set_temp                       \
	"\"temp\":40,\"custom_temp\":60,\"custom_timer\":12,\"filament_temp\":60,"                 \
	"\"filament_timer\":12,\"filament_drying_mode\":3,\"remaining_seconds\":3600,"             \
	"\"hotbedtemp\":80,\"filtertemp\":30,\"printer_type\":1,\"ptc_sensor_status\":0,"          \
	"\"warehouse_sensor_status\":0,\"ptc_heater_status\":0,\"language\":\"en\","               \
	"\"warehouse_temper\":30.4,\"cal_warehouse_temp\":30.0,\"cal_ptc_temp\":52.5},"            \
	"\"printer\":{\"state\":3,\"sn\":\"01S\",\"access_code\":\"SECRET-AC\","                   \
	"\"list\":[{\"name\":\"X1C\",\"sn\":\"01S\",\"ip\":\"10.0.0.9\",\"access_code\":\"\"},"    \
	"{\"name\":\"Voron\",\"ip\":\"10.0.0.7\",\"port\":7125}]},"                                \
	"\"wifi\":{\"ssid\":\"Net\",\"password\":\"SECRET-WIFI\","                                 \
	"\"list\":[{\"ssid\":\"Net2\",\"rssi\":-40},{\"ssid\":\"Other\",\"rssi\":-70}]},"          \
	"\"ap\":{\"ssid\":\"Panda_Breath_3C84279A1B2C\",\"password\":\"SECRET-AP\",\"on\":0},"     \
	"\"sta\":{\"ip\":\"10.0.0.5\",\"hostname\":\"PandaBreath\",\"state\":3}"

/* The device states inputs are applied to. The first is a device that has not reported
 * yet (the frame is then its first, snapshot or not). */
static const char *const fuzz_bases[] = {
    "{}",
    FUZZ_SNAPSHOT("V1.0.0", "0", "2", "0", "") "}",			/* V1.0.0: temp, 0/1 */
    FUZZ_SNAPSHOT("V1.0.3", "true", "2", "0", "\"set_temp\":40,") "}",	/* heating */
    FUZZ_SNAPSHOT("V1.0.3", "true", "3", "1", "\"set_temp\":40,") "}",	/* drying */
    FUZZ_SNAPSHOT("V1.0.1", "false", "1", "0", "\"set_temp\":40,") "}", /* off, Auto mode */
    FUZZ_SNAPSHOT("V1.0.4", "true", "2", "0", "\"set_temp\":40,")	/* own HA link */
    ",\"ha\":{\"ip\":\"\",\"port\":1883,\"user\":\"\",\"state\":0}}",
};
#define FUZZ_N_BASES (sizeof(fuzz_bases) / sizeof(fuzz_bases[0]))

/* Values the gateway holds for a device (selections and typed secrets). */
#define FUZZ_LOCAL "{\"wifi_selected\":\"Net2\",\"printer_selected\":\"X1C\"}"

static inline cJSON *fuzz_parse_fixture(const char *text)
{
	cJSON *v = cJSON_Parse(text);

	if (!v)
		abort(); /* a broken fixture: fail loudly, not as a "finding" */
	return v;
}

/* A base device state, merged from its snapshot frame as the daemon would. */
static inline cJSON *fuzz_base_device(size_t i)
{
	const struct p2m_driver *drv = &p2m_driver_panda_breath;
	cJSON *dev = cJSON_CreateObject();
	cJSON *frame = fuzz_parse_fixture(fuzz_bases[i % FUZZ_N_BASES]);

	if (p2m_entity_merge_frame(drv, "fuzz", dev, frame) != 0)
		abort();
	cJSON_Delete(frame);
	return dev;
}

/* What both device targets start from, made once in LLVMFuzzerInitialize. */
struct fuzz_fixtures {
	cJSON *bases[FUZZ_N_BASES];
	cJSON *local;
};

static inline void fuzz_fixtures_load(struct fuzz_fixtures *f)
{
	fuzz_quiet_logs();
	for (size_t i = 0; i < FUZZ_N_BASES; i++)
		f->bases[i] = fuzz_base_device(i);
	f->local = fuzz_parse_fixture(FUZZ_LOCAL);
}

static inline void fuzz_drop_event(void *ud, cJSON *event)
{
	char *s = p2m_json_print(event);

	(void)ud;
	cJSON_free(s);
	cJSON_Delete(event);
}

/* Print and free (printing walks every string and number of the result). */
static inline void fuzz_consume(cJSON *v)
{
	char *s = p2m_json_print(v);

	cJSON_free(s);
	cJSON_Delete(v);
}

/* Everything device.c derives from a device's state: its id, firmware, own-HA-link
 * flag, the published state and the discovery payload. */
static inline void fuzz_render(const cJSON *dev, const cJSON *local,
			       const struct p2m_safety *safety)
{
	const struct p2m_driver *drv = &p2m_driver_panda_breath;
	struct p2m_view view = {.dev = dev, .local = local, .now = 1000000, .read_at = 999000};
	char id[P2M_ID_MAX + 1] = "fuzz";
	struct p2m_ha_device info;

	if (!drv->device_id(dev, id, sizeof(id)))
		strcpy(id, "fuzz");
	(void)drv->has_own_ha_link(dev);
	fuzz_consume(p2m_entity_state(drv, &view));
	info = (struct p2m_ha_device){
	    .id = id,
	    .name = "Fuzz heater",
	    .base_topic = "panda2mqtt",
	    .fw_version = drv->fw_version(dev),
	    .host = "127.0.0.1",
	    .port = 80,
	    .safety = safety,
	    .view = &view,
	};
	fuzz_consume(p2m_ha_discovery(drv, &info));
}

/* The device reporting back what it was sent: each planned frame (pauses skipped) is
 * merged into dev as a report of the same fields. */
static inline void fuzz_echo_frames(cJSON *dev, const cJSON *frames)
{
	const cJSON *f;

	cJSON_ArrayForEach(f, frames)
	{
		if (!cJSON_GetObjectItemCaseSensitive(f, P2M_DELAY_KEY))
			(void)p2m_entity_merge_frame(&p2m_driver_panda_breath, "fuzz", dev, f);
	}
}

/* A finding that is not a sanitizer report: say what and stop (libFuzzer saves the input). */
static inline void fuzz_fail(const char *what, const cJSON *dev, const struct p2m_cmd *cmd)
{
	char *s = p2m_json_print(dev);
	char *f = cmd->frames ? p2m_json_print(cmd->frames) : NULL;

	fprintf(stderr, "FUZZ PROPERTY FAILED: %s\nstate: %s\noff frames: %s\n", what, s ? s : "?",
		f ? f : cmd->reason);
	cJSON_free(s);
	cJSON_free(f);
	abort();
}

/* The [safety] rules as device.c applies them after every report: when the device is
 * heating, the driver's off command must plan, and once the device reports having done
 * what it was sent it must no longer be heating (else a cut-off would not cut off). */
static inline void fuzz_check_safety_off(const cJSON *dev, const cJSON *local,
					 const struct p2m_safety *safety)
{
	const struct p2m_driver *drv = &p2m_driver_panda_breath;
	struct p2m_heat_status h = {0};
	struct p2m_view view = {.dev = dev, .local = local, .now = 1000000, .read_at = 999000};
	struct p2m_cmd cmd = {.driver = drv, .dev = dev, .view = &view, .safety = safety};
	cJSON *off, *after;

	drv->heat_status(dev, &h);
	(void)p2m_trip_rule(p2m_safety_check(safety, &h));
	if (!h.heating)
		return;
	off = fuzz_parse_fixture(drv->off_command);
	if (p2m_command_plan(&cmd, off) != 0 || cJSON_GetArraySize(cmd.frames) == 0)
		fuzz_fail("the off command cannot be planned while heating", dev, &cmd);
	after = cJSON_Duplicate(dev, true);
	fuzz_echo_frames(after, cmd.frames);
	drv->heat_status(after, &h);
	if (h.heating)
		fuzz_fail("still heating after the off command was carried out", dev, &cmd);
	cJSON_Delete(after);
	p2m_command_clear(&cmd);
	cJSON_Delete(off);
}

#endif
