/* device_priv.h - the inside of one device, shared by the files that serve it.
 *
 * A device is served by six small files, one job each:
 *   device.c          its lifecycle: links (dialled or accepted), frames in, online/offline
 *   device_publish.c  what it publishes: state, discovery, availability, events
 *   device_send.c     commands out: planning, the outbox, replies to requests
 *   device_reread.c   re-reading the whole state (a second connection's snapshot, or the
 *                     family's status request) after commands and periodically
 *   device_safety.c   the [safety] rules: cut-offs and refusing commands that would heat
 *   device_update.c   firmware images sent over the link
 *   device_ota.c      firmware images installed over HTTP (driver http_update)
 * Only these files include this header; everyone else uses device.h. */
#ifndef PANDA2MQTT_DEVICE_PRIV_H
#define PANDA2MQTT_DEVICE_PRIV_H

#include "device.h"

#include "panda2mqtt/entity.h"
#include "panda2mqtt/events.h"
#include "panda2mqtt/log.h"
#include "panda2mqtt/safety.h"

#include <glib.h>

struct p2m_fw_reader;
struct p2m_ota;
struct p2m_tick;

/* A request sent and not yet answered (families with replies: driver message/reply_of). */
struct p2m_request {
	char *name;	/* the request's name, or the reply type it gets */
	gint64 sent_at; /* monotonic us */
	bool restarts;	/* the frame restarts the device unless refused */
};

/* What the outbox waits for before the next frame. */
enum p2m_await { P2M_AWAIT_NONE, P2M_AWAIT_ALL, P2M_AWAIT_TYPE };

struct p2m_device {
	const struct p2m_device_env *env;
	const struct p2m_device_conf *conf;
	const struct p2m_driver *driver;
	char *host; /* the address dialled; NULL while a .local name is being resolved */
	int port;
	char *t_state[P2M_TOPICS], *t_avail, *t_event, *t_discovery, *t_report;
	char *log_name; /* "device <id>" */
	struct p2m_ws *ws;
	cJSON *dev;   /* merged state as reported; an empty object before the first frame */
	cJSON *local; /* values the gateway holds: selections, typed secrets */
	bool *seen;   /* per row: an optional row's field was reported (entity.h) */
	double read_at;
	bool online;
	bool first_frame;
	bool own_ha_warned;
	bool expect_reboot; /* a command that restarts the device was sent */
	bool retired;	    /* a duplicate of another device: publishes nothing more */
	int failures;

	/* For the health request (bridge_api.c): links opened (dialled or accepted), messages
	 * in, publishes made, why the link last failed; since when it is offline
	 * (monotonic us; 0 while online), for [discovery] forget_after. */
	unsigned links;
	guint64 frames, publishes;
	char *last_error;
	gint64 offline_since;

	/* device_publish.c: a 64-bit hash of the last state and report published, not the
	 * payloads (docs/BENCHMARKS.md); 0: none yet. What the last discovery was made from
	 * (p2m_ha_discovery_inputs; "" for the empty payload that withdraws it). A state
	 * held back by [device] debounce, and its timer. */
	guint64 state_hash[P2M_TOPICS], report_hash;
	/* What the main topic says, kept to be updated row by row: only the rows whose
	 * inputs changed are read again (row_dirty); a topic is built anew (topic_full)
	 * after a whole snapshot or a command, and the other topics every time one of
	 * their rows changed (NULL in between). */
	cJSON *topic_state[P2M_TOPICS];
	bool state_dirty[P2M_TOPICS];
	bool topic_full[P2M_TOPICS];
	bool *row_dirty;
	char *discovery_inputs;
	guint debounce_timer;

	/* device_reread.c */
	struct p2m_ws *probe;
	bool probe_got;
	bool probe_again;
	struct p2m_tick *tick; /* the periodic re-read */
	gint64 refresh_at;     /* monotonic us */
	guint verify_timer;
	cJSON *expected;   /* {root: {readback_field: value}} from the last command */
	char *status_name; /* the driver's status request's name; NULL: none */

	/* device_send.c */
	cJSON *outbox;	     /* frames (and markers) still to send, in order; NULL: none */
	guint pending_timer; /* a @delay_ms marker's pause */
	GQueue unanswered;   /* struct p2m_request *, oldest first */
	enum p2m_await await;
	char *await_type; /* P2M_AWAIT_TYPE: the reply waited for */
	guint await_timer;

	/* device_safety.c */
	gint64 safety_sent;  /* when a safety rule last sent the off command; 0: none */
	bool safety_tripped; /* the last check tripped a rule: check every report */

	/* device_update.c: a firmware image being sent, and the update entity's state */
	struct p2m_fw_reader *upload;
	struct p2m_update_view update;
	bool has_update; /* the family has an update row */
	char *offered;	 /* the image offered when last looked: "version\nnotes"; NULL: none */

	/* device_ota.c: an install over HTTP under way; NULL: none */
	struct p2m_ota *ota;
};

/* device_publish.c */
struct p2m_view p2m_device_view(struct p2m_device *d);
/* The state topics whose rows depend on changes (NULL: every topic), unless what they
 * would say is what was last published; force: even then (a device coming back). Held
 * back [device] debounce milliseconds unless forced. */
void p2m_device_publish_state(struct p2m_device *d, const struct p2m_changes *changes, bool force);
/* The device's own report (allow-listed) on <base>/<id>/report, when it changed. */
void p2m_device_publish_report(struct p2m_device *d, bool force);
void p2m_device_update_discovery(struct p2m_device *d, bool force);
/* Once a second (families with an update row): an image put in or taken out of
 * [firmware] dir is published without waiting for the device to change. */
void p2m_device_check_offer(struct p2m_device *d);
void p2m_device_set_online(struct p2m_device *d, bool online);
/* Publish an event (and log it); takes ev, which must be of a type the family declares
 * (events.h), or Home Assistant drops it. The emit callback of the drivers' hooks. */
void p2m_device_emit(void *ud, cJSON *ev);
/* A core event with its details filled in by the caller. */
cJSON *p2m_device_event(enum p2m_event type);
/* A warning about the device that input can repeat at will: rate-limited per device and
 * per `kind` (log.h). */
void p2m_device_warn_limited(struct p2m_device *d, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same at any level and period (0: only log.h's shared budget limits it). */
void p2m_device_log_limited(struct p2m_device *d, enum p2m_log_level level, double period,
			    const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* device_send.c */
/* Plan and send a command; preempt (a safety cut-off): whatever waits to be sent is
 * dropped and this goes ahead of it. 0, or -1 after a rejection event. */
int p2m_device_run_command(struct p2m_device *d, const cJSON *command, bool preempt);
/* The link is gone or replaced: drop what waited to be sent and every request. */
void p2m_device_send_reset(struct p2m_device *d);
/* The link's send queue emptied: the next frames. */
void p2m_device_send_more(struct p2m_device *d);
/* A frame from the device: is it a reply to a request (driver reply_of)? Handles it. */
void p2m_device_take_reply(struct p2m_device *d, const cJSON *frame);
/* One message of a request/reply family (driver message). */
void p2m_device_take_message(struct p2m_device *d, const cJSON *msg, bool first);
/* A request was sent on the link (the status request, a command's frame). */
void p2m_device_sent_request(struct p2m_device *d, const char *name, bool restarts);
/* The name of a frame's request (driver request_key or replies), or NULL. */
const char *p2m_device_request_name(const struct p2m_driver *drv, const cJSON *frame);

/* device.c */
/* Check, merge and publish one frame (whole: the device's whole state; first: the first
 * frame of a link, after which everything is published again). true: it changed the
 * stored state. */
bool p2m_device_take_frame(struct p2m_device *d, const cJSON *frame, bool whole, bool first);
/* Parse a message; NULL (logged) when it is no JSON. */
cJSON *p2m_device_parse(struct p2m_device *d, const char *text, size_t len, bool snapshot);

/* device_reread.c */
void p2m_device_reread(struct p2m_device *d);
void p2m_device_schedule_verify(struct p2m_device *d);
/* After a command: remember what each written field must read back as. */
void p2m_device_expect(struct p2m_device *d, const cJSON *frame);
/* After a whole re-read: did every field that reads back take? */
void p2m_device_check_expected(struct p2m_device *d);
void p2m_device_reread_start(struct p2m_device *d);
/* The link is going or being replaced: drop the second connection. */
void p2m_device_reread_stop(struct p2m_device *d);
void p2m_device_reread_free(struct p2m_device *d);

/* device_safety.c */
/* After a report: changed says whether it changed the stored state (an unchanged report
 * cannot trip a rule that did not trip; one that did is checked again every time). */
void p2m_device_check_safety(struct p2m_device *d, bool changed);
/* Is a [safety] rule holding that this planned command would break by heating? Then it is
 * refused (event, log) and true is returned. */
bool p2m_device_refuse_heating(struct p2m_device *d, const cJSON *frames);

/* device_update.c */
void p2m_device_upload_start(struct p2m_device *d, const char *path);
void p2m_device_upload_next(struct p2m_device *d);
void p2m_device_update_failed(struct p2m_device *d, const char *why);
void p2m_device_update_done(struct p2m_device *d);

/* device_ota.c */
/* The update entity's install command (the family's P2M_INSTALL_KEY marker): refuse, or
 * check, send and confirm the offered image. */
void p2m_device_ota_start(struct p2m_device *d, bool reinstall);
bool p2m_device_ota_busy(const struct p2m_device *d);
/* A typed reply from the device: true when it was the install's answer (taken). */
bool p2m_device_ota_reply(struct p2m_device *d, const char *type, bool ok);
/* The main link dropped. The device's firmware version may say how an install ended:
 * new_link: the first report of a link (after a restart), else a change of version. */
void p2m_device_ota_link_lost(struct p2m_device *d);
void p2m_device_ota_version(struct p2m_device *d, bool new_link);
void p2m_device_ota_free(struct p2m_device *d);

#endif
