/* printer_source.h - the bound printer's bed temperature, target and print state, as
 * taken from MQTT topics the user names in [printer].
 *
 * Owns: reading one message of a source topic (a plain value such as Home Assistant's
 * statestream publishes, JSON with a dotted path, or a Bambu report merged field by field
 * since Bambu printers send only what changed), keeping what is known in one object
 * shaped like a Bambu report ({"print":{"bed_temper":..,"gcode_state":..}}), and the
 * mapping between Bambu gcode_state and Klipper's print_stats.state.
 * Does not own: subscribing or publishing (printer.c), serving Moonraker (moonraker.c),
 * Home Assistant discovery (the table p2m_printer_driver is read by ha.c/entity.c).
 * Pure: no sockets, so unit tests drive it directly. */
#ifndef PANDA2MQTT_PRINTER_SOURCE_H
#define PANDA2MQTT_PRINTER_SOURCE_H

#include "panda2mqtt/config.h"
#include "panda2mqtt/driver.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* Largest source message read; Bambu's full reports are some 5-15 KiB. */
#define P2M_PRINTER_MAX_PAYLOAD ((size_t)64 * 1024)
/* A printer temperature outside this range (°C) is no reading: it is logged and treated
 * as unknown, whichever source brought it (the device's Auto mode heats on the bed's). */
#define P2M_PRINTER_TEMP_MIN (-50.0)
#define P2M_PRINTER_TEMP_MAX 1000.0

enum p2m_print_state {
	P2M_PRINT_UNKNOWN, /* nothing (valid) reported yet */
	P2M_PRINT_STANDBY,
	P2M_PRINT_PRINTING,
	P2M_PRINT_PAUSED,
	P2M_PRINT_COMPLETE,
	P2M_PRINT_ERROR,
	P2M_PRINT_CANCELLED,
};

/* Bambu gcode_state (IDLE, PREPARE, RUNNING, PAUSE, FINISH, FAILED, SLICING), Klipper
 * print_stats.state (standby, printing, paused, complete, error, cancelled) and a few
 * words other printers' integrations use (idle, operational, finished), any case.
 * P2M_PRINT_UNKNOWN for anything else. */
enum p2m_print_state p2m_print_state_parse(const char *s);
/* Klipper's print_stats.state; "standby" for unknown. */
const char *p2m_print_state_klipper(enum p2m_print_state s);
/* Bambu's gcode_state; "IDLE" for unknown. Cancelled is FAILED, as Bambu reports it. */
const char *p2m_print_state_bambu(enum p2m_print_state s);

/* The value at path ("a.b.c", NULL = the payload itself) of one message: a JSON number,
 * or a string; a payload that is not JSON is taken as a plain string, and a plain
 * string that is a number as that number. NULL with the reason in err. Caller frees
 * with cJSON_Delete. */
cJSON *p2m_printer_extract(const char *payload, size_t len, const char *path, char *err,
			   size_t errlen);

/* What is known now. */
struct p2m_printer_status {
	bool has_bed, has_bed_target, has_nozzle, has_nozzle_target;
	double bed, bed_target, nozzle, nozzle_target;
	enum p2m_print_state state;
	double progress; /* 0..1, 0 when unknown */
};

struct p2m_printer_source;

/* conf must outlive the source. */
struct p2m_printer_source *p2m_printer_source_new(const struct p2m_printer_conf *conf);
void p2m_printer_source_free(struct p2m_printer_source *s);

/* Whether topic is one of the source topics. */
bool p2m_printer_source_wants(const struct p2m_printer_source *s, const char *topic);

/* One message of a source topic. Returns true when what is known changed. Bad input is
 * logged ("printer: TOPIC: why") and changes nothing. */
bool p2m_printer_source_feed(struct p2m_printer_source *s, const char *topic, const char *payload,
			     size_t len);

/* Forget every value (the source went quiet); true when something was known. */
bool p2m_printer_source_forget(struct p2m_printer_source *s);

/* Whether anything has been reported yet. */
bool p2m_printer_source_known(const struct p2m_printer_source *s);
void p2m_printer_source_status(const struct p2m_printer_source *s, struct p2m_printer_status *out);

/* The merged state, shaped like a Bambu report ({"print":{...}}); owned by s. */
const cJSON *p2m_printer_source_report(const struct p2m_printer_source *s);

/* The entity table of the printer shown in Home Assistant (roots: "print"). */
extern const struct p2m_driver p2m_printer_driver;

#endif
