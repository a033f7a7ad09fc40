/* driver.h - what a device family is: one entity table plus a few hooks.
 *
 * A row of the table (struct p2m_entity) names one field of the published state:
 * where its value comes from on the device, how Home Assistant shows it, and how a
 * command for it is checked and turned into device frames. Parsing (entity.c),
 * state publishing (entity.c), discovery (ha.c) and commands (command.c) all read
 * the same rows, so a new field is one row and a new family is one file.
 *
 * Owns: the types. Does not own: transport, MQTT, or any particular family. */
#ifndef PANDA2MQTT_DRIVER_H
#define PANDA2MQTT_DRIVER_H

#include "panda2mqtt/config.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

enum p2m_platform {
	P2M_NONE, /* a state field and command target with no entity of its own */
	P2M_CLIMATE,
	P2M_SENSOR,
	P2M_BINARY_SENSOR,
	P2M_SWITCH,
	P2M_SELECT,
	P2M_NUMBER,
	P2M_BUTTON,
	P2M_TEXT,
	P2M_EVENT,  /* the device's <base>/<id>/event stream as a Home Assistant event entity */
	P2M_UPDATE, /* firmware: its value is the update entity's JSON state object */
};

/* How a value is read from the device and what a command must carry. */
enum p2m_vtype {
	P2M_V_NUMBER, /* JSON number; commands checked against min..max */
	P2M_V_INT,    /* whole number; commands must be whole */
	P2M_V_BOOL,   /* device true/false or 1/0; published "ON"/"OFF" */
	P2M_V_STRING, /* JSON string */
	P2M_V_ENUM,   /* device integer <-> option label (options[i] <-> values[i]) */
	P2M_V_PRESS,  /* a button: the command payload is "PRESS" */
	P2M_V_FLAG,   /* device integer, 0 = "OFF", anything else = "ON" (fault codes) */
	P2M_V_SECRET, /* write-only text (passwords): held by the gateway, never published */
};

struct p2m_entity;
struct p2m_cmd;

/* A firmware update the gateway can send ([firmware] dir; families with a P2M_UPDATE row). */
struct p2m_update_view {
	const char *latest;  /* the newest image's version; NULL: no image */
	const char *path;    /* its file */
	const char *summary; /* its release notes (update.h); NULL: none */
	bool in_progress;    /* being checked or sent, or sent and the device not yet back */
	int percent;	     /* of the image sent; -1 when nothing is being sent */
};

/* How a family's devices take a firmware image over HTTP, as their own web page sends it:
 * POST <path> on the device's port with the image as the body. The core checks the image
 * (esp_image.h) and the device (not heating, not that version) first, streams the file,
 * and takes the device's WebSocket reply of reply_type (reply_of) as the result; after
 * the restart, the version the device reports says whether it took. */
struct p2m_http_update {
	const char *path;	  /* "/ota" */
	const char *content_type; /* the Content-Type header's value */
	const char *header;	  /* one more header's name ("OTA-Type"), or NULL */
	const char *header_value; /* and its value ("ota_fw") */
	const char *reply_type;	  /* the reply that says how it went ("ota_fw") */
	long max_bytes;		  /* the largest image the device takes */
	int esp_chip;		  /* the ESP chip id images must be built for (esp_image.h) */
};

/* What a read function sees. */
struct p2m_view {
	const cJSON *dev;   /* the device's merged state, as reported */
	const cJSON *local; /* values the gateway holds for the device (selections, secrets) */
	double now;	    /* seconds since the epoch */
	double read_at;	    /* when the last full snapshot was read (0 = never) */
	const struct p2m_update_view *update; /* NULL for families without updates */
	/* Per row (index into the driver's table): has the device ever reported the field
	 * of an optional row (p2m_entity.optional)? NULL: only what dev holds now counts. */
	const bool *seen;
};

/* Derive a published value; NULL when unknown. */
typedef cJSON *(*p2m_read_fn)(const struct p2m_entity *e, const struct p2m_view *v);

/* Options that depend on the device (scan results); NULL-terminated, static storage
 * for the lifetime of the call's result: filled into buf. */
typedef const char *const *(*p2m_options_fn)(const struct p2m_view *v, const char **buf, size_t n);

/* Record a checked command value in cmd's intent; return 0, or -1 after p2m_cmd_reject(). */
typedef int (*p2m_write_fn)(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *value);

/* Which [safety] cap lowers a row's max for commands and discovery. */
enum p2m_cap {
	P2M_CAP_NONE,
	P2M_CAP_TARGET,	   /* a heater target: [safety] max_target_temp */
	P2M_CAP_DRY_HOURS, /* a drying run's length: [safety] max_drying_hours */
};

/* The state keys a climate entity is assembled from. */
struct p2m_climate_keys {
	const char *mode;
	const char *target;
	const char *current;
	const char *action; /* may be NULL */
	const char *const *modes;
};

struct p2m_entity {
	const char *key;  /* state JSON key, unique_id suffix and <base>/<id>/set/<key> */
	const char *name; /* Home Assistant name */
	enum p2m_platform platform;
	enum p2m_vtype vtype;
	/* Home Assistant metadata (NULL = not set) */
	const char *device_class;
	const char *unit;
	const char *state_class;
	const char *category; /* "config" or "diagnostic" */
	const char *icon;
	bool disabled; /* not enabled by default */
	/* where the value lives on the device (generic read), and a fallback field */
	const char *root;
	const char *field;
	const char *fallback;
	p2m_read_fn read;	/* overrides the generic read */
	const char *attributes; /* state key of an object shown as the entity's attributes */
	/* range (numbers, for commands), options (select, enum sensor) */
	double min, max, step;
	enum p2m_cap cap;	    /* max also lowered by a [safety] setting */
	const char *const *options; /* NULL-terminated */
	const int *values;	    /* device value of each option */
	p2m_options_fn options_fn;  /* options from the device's state instead */
	bool password;		    /* P2M_TEXT shown as a password field */
	/* Fed only by a field not every device sends (docs/protocol-panda-breath.md: the
	 * calibrated readings): the row is in the published state and in discovery only
	 * once the device has reported root.field (or the fallback). */
	bool optional;
	/* What the device can believably report in root.field (numbers): a value outside
	 * report_min..report_max is logged and reads as unknown. Both 0: any finite number. */
	double report_min, report_max;
	/* A row with a read function: the fields its value comes from, separated by blanks,
	 * as "root.field", "root.*" (any field of a root) or "@time" (the clock: the time of
	 * the last whole snapshot). Its value is derived again only when one changed. NULL:
	 * at every change (always right, only slower). A unit test checks each list against
	 * what the read function really reads. */
	const char *inputs;
	/* commands: NULL = read-only */
	p2m_write_fn write;
	const struct p2m_climate_keys *climate;
};

/* What the heater safety rules (safety.h) read from a device's merged state. */
struct p2m_heat_status {
	bool heating;	   /* any heating switched on: heating, Auto mode, drying */
	bool has_chamber;  /* chamber holds a reading */
	double chamber;	   /* °C */
	bool sensor_fault; /* a temperature sensor reports a fault */
	bool heater_fault; /* the heating element itself reports a fault */
};

/* One command being checked and planned. Rows' write functions fill `intent`
 * (the driver's own struct); the driver's plan() then emits frames in the order
 * its firmware needs. */
struct p2m_cmd {
	const struct p2m_driver *driver;
	const cJSON *dev; /* the device's merged state as last reported */
	const struct p2m_view *view;
	cJSON *local; /* values for the gateway to hold after this command, or NULL */
	const struct p2m_safety *safety;
	void *intent;
	cJSON *frames;	  /* array of frame objects, in send order */
	char field[64];	  /* the field a rejection is about */
	char reason[256]; /* why it was rejected */
};

/* What a message from a request/reply family turned out to be (p2m_driver.message). */
enum p2m_reply {
	P2M_NOT_A_REPLY, /* sent by the device on its own (a handshake), or not understood */
	P2M_REPLY_OK,	 /* the oldest unanswered request was carried out */
	P2M_REPLY_FAILED /* it was refused; the driver has emitted an event saying why */
};

/* A device family. Each member is marked REQUIRED (the core calls or reads it without
 * checking: a family without it is a bug, and tests/unit/test_families.c fails for
 * every registered family that lacks one) or OPTIONAL (the core checks, and says what
 * NULL means). How to add a family: docs/ADDING-A-FAMILY.md. */
struct p2m_driver {
	/* ---- who it is ---- */
	/* REQUIRED. "panda_breath": the [device] type key, the prefix of firmware image
	 * files, part of log lines. [a-z0-9_], unique among the families. */
	const char *name;
	/* REQUIRED. Home Assistant's device manufacturer and model; the model is also the
	 * name of a device that has none. */
	const char *manufacturer;
	const char *model;

	/* ---- where it is ---- */
	/* REQUIRED unless dials_in. The WebSocket path the gateway dials ("/ws"). */
	const char *ws_path;
	/* OPTIONAL. The DNS-SD service type its devices announce ("_http._tcp"); every
	 * service of that type is probed (ws_path, first frame through is_snapshot) when
	 * [discovery] mdns is on. NULL: found only by address ([device] host). */
	const char *dnssd_type;

	/* ---- what it says ---- */
	/* REQUIRED, at least one row. The entity table: parsing, state, discovery and
	 * commands all come from it (struct p2m_entity). */
	const struct p2m_entity *entities;
	size_t n_entities;
	/* REQUIRED. The roots its devices send (the top-level members of a frame, each an
	 * object); members of others are logged as unknown. NULL-terminated. */
	const char *const *roots;
	/* REQUIRED. Does this first frame of a connection come from a device of this
	 * family? (Found devices and dial-ins are told apart by it.) */
	bool (*is_snapshot)(const cJSON *frame);
	/* REQUIRED. The firmware version string in the merged state, or NULL. */
	const char *(*fw_version)(const cJSON *dev);
	/* OPTIONAL. A stable device id ([a-z0-9_-], at most P2M_ID_MAX characters, config.h)
	 * from what the device reports, for devices found on the network or dialling in;
	 * false when it reports nothing stable enough. NULL: such devices are refused. */
	bool (*device_id)(const cJSON *dev, char *buf, size_t len);
	/* OPTIONAL. The raw report's allow-list: besides the fields rows read (secrets
	 * never), the members of the device's own report that may be published as they
	 * are, as "root.field", or "root.field[].member" for a member of each object in an
	 * array (scan results). Anything else, a field a future firmware adds included, is
	 * never published: a list of secret names cannot know tomorrow's. NULL-terminated;
	 * NULL: only the fields rows read. */
	const char *const *report_fields;
	/* The first frame of each connection is the device's whole state: a scalar that a
	 * root of it leaves out is no longer there (a fault flag that went away). */
	bool snapshot_is_whole;

	/* ---- commands ---- */
	/* The size of the family's own intent struct (0: none), and OPTIONAL intent_init,
	 * called once per command with a zeroed intent before any row's write function. */
	size_t intent_size;
	void (*intent_init)(void *intent);
	/* REQUIRED when any row has a write function: turn the recorded intent into frames
	 * (p2m_cmd_frame) in the order the firmware needs, or reject. */
	int (*plan)(struct p2m_cmd *cmd);
	/* OPTIONAL. Written fields that the device reports back under another name (root,
	 * field, read-back field); a written field not listed here and not in `verify` is
	 * not checked after a command (actions such as reset or scan). */
	const char *const (*verify)[3];
	/* OPTIONAL. Does this frame restart the device (its reconnect is then a
	 * "device_rebooted")? NULL: no frame does. */
	bool (*restarts)(const cJSON *frame);
	/* OPTIONAL. Push families that answer some writes with a typed reply: (root, field,
	 * reply type) of each such write, NULL-terminated, and reply_of(), which says
	 * whether a frame is a reply, to which type, and whether it succeeded. Both or
	 * neither. */
	const char *const (*replies)[3];
	bool (*reply_of)(const cJSON *frame, const char **type, bool *ok);

	/* ---- events ---- */
	/* OPTIONAL. Events worth telling Home Assistant about, from the state before and
	 * after a frame; emit() takes ownership of the event object (with "event_type"). */
	void (*events)(const cJSON *before, const cJSON *after,
		       void (*emit)(void *ud, cJSON *event), void *ud);
	/* OPTIONAL. The (root, field) pairs events() compares, NULL-terminated: a frame that
	 * carries none of them cannot make an event, and costs no copy of the state before
	 * it. NULL: every frame may. */
	const char *const (*event_fields)[2];
	/* OPTIONAL. The event types this family's own hooks (events, message) emit,
	 * NULL-terminated; the core adds the ones it emits itself (events.h). Home
	 * Assistant drops an event whose type its event entity does not list. */
	const char *const *event_types;

	/* ---- Home Assistant ---- */
	/* OPTIONAL. True when the device runs its own Home Assistant link (duplicate
	 * entities). NULL: never. */
	bool (*has_own_ha_link)(const cJSON *dev);
	/* OPTIONAL. The device's MAC address as "aa:bb:cc:dd:ee:ff" (Home Assistant's
	 * device "connections"), when its state says it. */
	bool (*mac_address)(const cJSON *dev, char *buf, size_t len);
	/* OPTIONAL. The name the device gives itself (its hostname), for a device whose
	 * [device] section names none; NULL when it says none. The model is the fallback. */
	const char *(*display_name)(const cJSON *dev);
	/* OPTIONAL. The fields fw_version, display_name, mac_address and has_own_ha_link
	 * read, as a row's inputs are written: discovery is looked at again only when one
	 * of them, an option list (options_fn rows' inputs) or an optional row's field
	 * changed. NULL: at every change (always right, only slower). */
	const char *discovery_inputs;

	/* ---- heater safety ---- */
	/* OPTIONAL, both or neither: what the [safety] rules read (safety.h), and the
	 * command (a broker command, planned like one) that switches every kind of heating
	 * off. NULL: the family heats nothing, and no rule watches it. */
	void (*heat_status)(const cJSON *dev, struct p2m_heat_status *out);
	const char *off_command;

	/* ---- the direction and shape of the conversation ---- */
	/* The device connects to the gateway ([dialin]) instead of the other way round; its
	 * first message (is_snapshot) says who it is. */
	bool dials_in;
	/* OPTIONAL, both or neither. Request/reply families answer each request they are
	 * sent, in order. request_key names the member of a sent frame that names the
	 * request ("cmd"); message() turns each message into the frame merged into the
	 * state (*frame, rooted like any frame; NULL: nothing to merge) and events, given
	 * the request it may answer (the oldest unanswered one; NULL when none is). NULL:
	 * the family just pushes state. */
	const char *request_key;
	enum p2m_reply (*message)(const cJSON *msg, const char *request, cJSON **frame,
				  void (*emit)(void *ud, cJSON *event), void *ud);
	/* OPTIONAL. A frame that makes the device report its whole state on the same link:
	 * how a request/reply device is re-read. NULL: re-read on a second connection's
	 * snapshot. */
	const char *status_request;

	/* ---- firmware ---- */
	/* OPTIONAL. Its devices take firmware images by HTTP (struct p2m_http_update); the
	 * family's update row plans p2m_cmd_install_image() (update.h) and the core does the
	 * rest. NULL: the family sends images itself (p2m_cmd_send_file), or takes none. */
	const struct p2m_http_update *http_update;
};

#endif
