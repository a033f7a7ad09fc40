/* sim_snapshot.h - the Panda Breath's snapshot and temperature push, for the simulators.
 *
 * Owns: the state a simulated Panda Breath starts with (roots and fields in the firmware's
 * order, docs/protocol-panda-breath.md), per firmware version and dialect; the text of the
 * snapshot made from such a state (the first frame of every connection); the text of a
 * temperature push. One definition, so that panda2mqtt-sim (sim_*.c) and panda2mqtt-load
 * send the same device. Does not own: what changes the state afterwards (the simulator's
 * model and writes, the load generator's merge), the readings' values, nor sending. */
#ifndef SIM_SNAPSHOT_H
#define SIM_SNAPSHOT_H

#include <cjson/cJSON.h>

#include <stdbool.h>
#include <stddef.h>

enum sim_fw { SIM_FW_V100, SIM_FW_V101, SIM_FW_V102, SIM_FW_V103, SIM_FW_V104, SIM_FW_COUNT };

/* "V1.0.0" ... "V1.0.4", as settings.fw_version reports them. */
extern const char *const sim_fw_names[SIM_FW_COUNT];

/* What tells one simulated device from another. The secrets are fixed public strings, so
 * that tests can search logs and topics for leaks. */
struct sim_identity {
	enum sim_fw fw;
	bool doc; /* the base protocol document's dialect (--dialect doc) */
	const char *hostname, *sta_ip;
	const char *mac; /* 12 hex digits: the hotspot is Panda_Breath_<mac> */
	const char *wifi_ssid, *wifi_password, *ap_password;
	const char *printer_name, *printer_sn, *access_code; /* the bound Bambu printer */
};

/* A new device state, shaped like the snapshot. The readings (warehouse_temper and, in the
 * document's dialect, cal_warehouse_temp and cal_ptc_temp) are placeholders that keep their
 * place: sim_snapshot_text fills them in. */
cJSON *sim_snapshot_state(const struct sim_identity *id);

/* The temperatures a frame reports. */
struct sim_readings {
	double warehouse; /* settings.warehouse_temper */
	int decimals;	  /* ...printed with: 0 on real units [live], 1 in the document */
	bool cal;	  /* pushes also carry the two below (the document's dialect) */
	double cal_warehouse, cal_ptc; /* printed with one decimal */
};

/* The snapshot: state as firmware fw prints it (V1.0.0 reports work_on as 0/1, later ones
 * mirror set_temp in temp), with the readings in the fields state has. Free with
 * cJSON_free. */
char *sim_snapshot_text(const cJSON *state, enum sim_fw fw, const struct sim_readings *r);

/* A temperature push, {"settings":{"warehouse_temper":X,...}}, into buf; returns what
 * snprintf returns. */
int sim_snapshot_push(char *buf, size_t size, const struct sim_readings *r);

#endif
