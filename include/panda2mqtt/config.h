/* config.h - the INI configuration, read with inih into one struct.
 *
 * Owns: parsing, defaults, validation (errors as "file:line: [section] key: message"),
 * secrets taken from the environment or a file.
 * Does not own: acting on the settings; nothing here connects anywhere, so
 * --check-config can run it alone. */
#ifndef PANDA2MQTT_CONFIG_H
#define PANDA2MQTT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define P2M_DEFAULT_CONFIG_PATH "/etc/panda2mqtt/panda2mqtt.ini"

/* The environment variable that, when set, supplies the MQTT password. */
#define P2M_ENV_MQTT_PASSWORD "PANDA2MQTT_MQTT_PASSWORD"

struct p2m_mqtt_conf {
	char *host;		/* default "127.0.0.1" */
	int port;		/* default 1883, or 8883 when tls */
	char *username;		/* NULL when empty */
	char *password;		/* NULL when empty; from password, password_file or env */
	char *client_id;	/* default "panda2mqtt" */
	char *base_topic;	/* default "panda2mqtt"; no '+', '#', leading or trailing '/' */
	char *discovery_prefix; /* default "homeassistant" */
	int keepalive;		/* seconds, default 30, 5..3600 */
	bool tls;		/* default false */
	char *cafile;		/* NULL: system CA store (/etc/ssl/certs) when tls */
	bool insecure;		/* skip the server hostname check; default false */
};

/* Longest device id: section names and ids that drivers derive for found devices. */
#define P2M_ID_MAX 32

struct p2m_device_conf {
	char *id; /* the section name after "device ": [a-z0-9_-]{1,32} */
	/* The device family (a driver's name, e.g. "panda_breath"). NULL: not written; a
	 * device with a host is then a Panda Breath, one without (found on the network or
	 * dialling in) is whatever family it identifies as. */
	char *type;
	/* IP address or name (a .local name is resolved through Avahi). NULL: the
	 * section only sets the name and options of a device found by [discovery] mdns
	 * under this id; then required unless mdns is on. */
	char *host;
	int port; /* default 80 */
	/* NULL: the name the device gives itself (its hostname), else its model */
	char *name;
	int stale_timeout; /* seconds without any frame before reconnecting; default 60, 2..3600 */
	int refresh_interval; /* seconds between snapshot re-reads; default 60, 0 = never,
				 else 5..86400 */
	/* Publish discovery even when the device runs its own Home Assistant MQTT link
	 * (firmware V1.0.4's "ha" root); default false: no duplicate entities. */
	bool duplicate_ha_entities;
	/* Milliseconds a state is held back after a change, so that a burst of changes
	 * publishes once (the latest); default 0 (at once), 0..60000. */
	int debounce;
	int line;      /* line of the section header, for later messages */
	int type_line; /* line of its type key, 0 when not written */
};

/* [safety]. The target cap is applied to commands (command.c); the rules that watch
 * the device's reports are in safety.c; the controller-lost rule in gateway.c. */
struct p2m_safety {
	double max_target_temp;		/* targets above are rejected; default 60, 0..60 */
	double max_chamber_temp;	/* heating off above this; default 65, 20..90 */
	bool sensor_fault_cutoff;	/* heating off on a sensor fault; default true */
	bool heater_fault_cutoff;	/* heating off on a heater fault; default true */
	int max_drying_hours;		/* longer drying runs are rejected; default 99, 1..99 */
	double controller_lost_minutes; /* broker gone this long: heating off; 0 = never
					   (default), else 0.05..1440 */
};

/* The environment variable that, when set, supplies the [dialin] token. */
#define P2M_ENV_DIALIN_TOKEN "PANDA2MQTT_DIALIN_TOKEN"

/* [dialin]: the endpoint devices that dial in (PTalk) connect to. */
struct p2m_dialin_conf {
	int port;	/* 0 = off (default), else 1..65535 */
	char *listen;	/* address to listen on; default "0.0.0.0" */
	char *path;	/* default "/ws"; must start with '/' */
	char *token;	/* NULL: none; from token, token_file or the environment */
	char **allow;	/* device ids allowed; none = every device */
	size_t n_allow; /* at most 256 */
	/* Devices that may dial in, at most; more are refused. Ids named by a [device]
	 * section always may. Default 16, 1..1024. */
	int max_devices;
	/* The old name of [firmware] dir (a deprecation warning), copied there. */
	char *firmware_dir;
};

/* [firmware]: images offered to every family's devices (firmware.h, docs/FIRMWARE-UPDATE.md). */
struct p2m_firmware_conf {
	char *dir; /* images "<family>-<version>.bin"; NULL: no updates */
};

/* [printer]: where the bound printer's bed and print state come from (printer_source.h).
 * Each source is an MQTT topic whose payload is a plain value (Home Assistant's
 * statestream) or JSON with a dotted path to the value; or one Bambu report topic. */
enum p2m_printer_src {
	P2M_SRC_BED,	    /* bed temperature, °C */
	P2M_SRC_BED_TARGET, /* bed target, °C */
	P2M_SRC_NOZZLE,	    /* nozzle temperature, °C */
	P2M_SRC_STATE,	    /* print state: Bambu gcode_state or Klipper print_stats.state */
	P2M_SRC_COUNT
};

struct p2m_printer_conf {
	bool enabled;		  /* the section is present */
	char *bambu_report_topic; /* device/<serial>/report, merged incrementally; or NULL */
	struct {
		char *topic; /* NULL: not from its own topic */
		char *path;  /* NULL: the payload is the value; else "a.b.c" into JSON */
	} src[P2M_SRC_COUNT];
	char *id;	/* Home Assistant device id (topic <base>/<id>); default "printer" */
	char *name;	/* default "Printer" */
	bool ha_device; /* publish the printer as its own Home Assistant device; default true */
	/* seconds without any message on the source topics before every value is forgotten
	 * (a printer switched off stops reporting; its last bed temperature must not keep
	 * Auto mode heating); 0 = never (default), else 10..86400 */
	int stale_timeout;
	int line;
};

/* [moonraker]: the virtual Moonraker the Panda Breath can bind to as a Klipper printer. */
struct p2m_moonraker_conf {
	int port;     /* 0 = off (default); the device scans and binds its "Klipper port" */
	char *listen; /* IP literal to listen on; default "0.0.0.0" */
	int line;
};

/* [bambu_virtual]: device/<serial>/report published on the gateway's broker connection. */
struct p2m_bambu_virtual_conf {
	char *serial; /* NULL: off */
	int interval; /* seconds between full reports; default 2, 1..60 */
	char *topic;  /* derived: device/<serial>/report */
	int line;
};

struct p2m_config {
	char *path; /* the file it came from (or the name given to the string loader) */
	struct p2m_mqtt_conf mqtt;
	struct {
		bool mdns; /* default true */
		/* days a device found by mdns or dialled in may stay offline before it is
		 * forgotten (its entities withdrawn); 0 = never (default), fractions
		 * allowed; configured devices are never forgotten */
		double forget_after;
	} discovery;
	struct {
		int level; /* enum p2m_log_level (log.h); default info */
	} log;
	struct p2m_safety safety;
	struct p2m_dialin_conf dialin;
	struct p2m_firmware_conf firmware;
	struct p2m_printer_conf printer;
	struct p2m_moonraker_conf moonraker;
	struct p2m_bambu_virtual_conf bambu_virtual;
	struct p2m_device_conf *devices;
	size_t n_devices;
	/* true when the file itself holds a password or token and is readable by "other" */
	bool password_world_readable;
};

/* Load from a file. Returns 0, or -1 with a one-line message in err. On error cfg is
 * left freed (safe to call p2m_config_free again). */
int p2m_config_load_file(struct p2m_config *cfg, const char *path, char *err, size_t errlen);

/* Same, from a string (tests); name is used in messages in place of a path. */
int p2m_config_load_string(struct p2m_config *cfg, const char *text, const char *name, char *err,
			   size_t errlen);

void p2m_config_free(struct p2m_config *cfg);

/* Every [device] type names a family known() accepts. Returns 0, or -1 with
 * "file:line: [device id] type: ..." in err, listing the known names (known_list). The
 * core does not know the families: the caller does (drivers/families.c). */
int p2m_config_check_families(const struct p2m_config *cfg, bool (*known)(const char *name),
			      const char *known_list, char *err, size_t errlen);

/* The defaults of a [device] section, for a device found on the network that has
 * none; id and name are the caller's. */
void p2m_config_device_defaults(struct p2m_device_conf *d);

/* The [device] section with this id, or NULL. */
const struct p2m_device_conf *p2m_config_device(const struct p2m_config *cfg, const char *id);

/* The id of the gateway's own Home Assistant device: base_topic with every character
 * other than A-Z a-z 0-9 _ - made '_', then "_bridge" (one per base topic, so two
 * gateways on a broker differ: docs/SCALING.md). No [device] may take it. Caller frees
 * with g_free. */
char *p2m_config_bridge_id(const struct p2m_config *cfg);

/* For a reload: do two configurations hold different values in this section ("mqtt",
 * "discovery", "safety", "dialin", "printer", "moonraker", "bambu_virtual", "log"; true
 * for any other name)? Values as loaded are compared: a password read from
 * password_file equals the same password written in the file. */
bool p2m_config_section_differs(const struct p2m_config *a, const struct p2m_config *b,
				const char *section);
/* Do two [device] sections differ in id or any key? */
bool p2m_config_device_differs(const struct p2m_device_conf *a, const struct p2m_device_conf *b);

#endif
