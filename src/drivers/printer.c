/* printer.c - the entity table of the printer's own Home Assistant device ([printer]
 * ha_device): print state, bed and nozzle temperatures, progress.
 *
 * Owns: the rows. Does not own: where the values come from (printer_source.c merges
 * each source's readings into a state rooted at "print") or publishing (printer.c in
 * src/). Not a family in families.c: the printer is not a device the gateway dials,
 * so only the members state and discovery read are set; its rows are read the same
 * way as a family's. */
#include "panda2mqtt/printer_source.h"

#define TEMP_SENSOR                                                                                \
	.platform = P2M_SENSOR, .vtype = P2M_V_NUMBER, .device_class = "temperature",              \
	.unit = "°C", .state_class = "measurement", .root = "print",                               \
	.report_min = P2M_PRINTER_TEMP_MIN, .report_max = P2M_PRINTER_TEMP_MAX

static const struct p2m_entity printer_entities[] = {
    {.key = "print_state",
     .name = "Print state",
     .platform = P2M_SENSOR,
     .vtype = P2M_V_STRING,
     .icon = "mdi:printer-3d",
     .root = "print",
     .field = "gcode_state"},
    {.key = "bed_temperature", .name = "Bed temperature", TEMP_SENSOR, .field = "bed_temper"},
    {.key = "bed_target", .name = "Bed target", TEMP_SENSOR, .field = "bed_target_temper"},
    {.key = "nozzle_temperature",
     .name = "Nozzle temperature",
     TEMP_SENSOR,
     .field = "nozzle_temper"},
    {.key = "nozzle_target", .name = "Nozzle target", TEMP_SENSOR, .field = "nozzle_target_temper"},
    {.key = "progress",
     .name = "Progress",
     .platform = P2M_SENSOR,
     .vtype = P2M_V_NUMBER,
     .unit = "%",
     .state_class = "measurement",
     .icon = "mdi:progress-clock",
     .root = "print",
     .field = "mc_percent"},
    {.key = "remaining_time",
     .name = "Remaining time",
     .platform = P2M_SENSOR,
     .vtype = P2M_V_NUMBER,
     .device_class = "duration",
     .unit = "min",
     .root = "print",
     .field = "mc_remaining_time"},
};

static const char *const printer_roots[] = {"print", NULL};

const struct p2m_driver p2m_printer_driver = {
    .name = "printer",
    .manufacturer = "panda2mqtt",
    .model = "Printer seen over MQTT",
    .entities = printer_entities,
    .n_entities = sizeof(printer_entities) / sizeof(printer_entities[0]),
    .roots = printer_roots,
};
