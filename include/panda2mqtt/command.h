/* command.h - from an MQTT command payload to checked, ordered device frames.
 *
 * Owns: payload parsing (<base>/<id>/set JSON objects and <base>/<id>/set/<field>
 * plain values), the generic value checks rows use, and all-or-nothing planning:
 * a command with any bad field produces no frame at all.
 * Does not own: sending (device.c) or what a field means (the drivers). */
#ifndef PANDA2MQTT_COMMAND_H
#define PANDA2MQTT_COMMAND_H

#include "panda2mqtt/driver.h"

#define P2M_MAX_COMMAND_BYTES 4096
#define P2M_MAX_COMMAND_DEPTH 4

/* Parse a JSON command object. NULL with a reason in err when it is not one. */
cJSON *p2m_command_parse_object(const char *payload, size_t len, char *err, size_t errlen);

/* Turn a plain payload for one field into {field: value}. For text rows the payload is
 * the text, as is (a typed code such as 00123456 must stay text); otherwise JSON scalars
 * (45, true, "x") are taken as such and anything else as a string. NULL with a reason
 * in err. */
cJSON *p2m_command_parse_field(const struct p2m_driver *d, const char *field, const char *payload,
			       size_t len, char *err, size_t errlen);

/* Check every field of the command object against the driver's rows and plan the
 * frames. Returns 0 with cmd->frames filled, or -1 with cmd->field and cmd->reason set
 * and no frames. cmd->driver, dev and safety must be set; the rest is managed here. */
int p2m_command_plan(struct p2m_cmd *cmd, const cJSON *command);

/* Release what p2m_command_plan allocated (frames, intent). */
void p2m_command_clear(struct p2m_cmd *cmd);

/* For rows and drivers: */
int p2m_cmd_reject(struct p2m_cmd *cmd, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Append the frame {"root":{"field":value}} (takes ownership of value). */
void p2m_cmd_frame(struct p2m_cmd *cmd, const char *root, const char *field, cJSON *value);
/* A number within e->min..max (capped by [safety] for capped rows); whole for P2M_V_INT. */
int p2m_cmd_number(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v, double *out);

/* The highest value a row accepts: e->max, or its [safety] cap (e->cap) when lower. */
double p2m_entity_max(const struct p2m_entity *e, const struct p2m_safety *safety);
/* true/false, "ON"/"OFF" (any case) or 1/0. */
int p2m_cmd_bool(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v, bool *out);
/* One of e->options (exact label); returns its index in *index. */
int p2m_cmd_option(struct p2m_cmd *cmd, const struct p2m_entity *e, const char *const *options,
		   const cJSON *v, int *index);
/* The payload "PRESS". */
int p2m_cmd_press(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v);
/* Text of 1..e->max characters (64 when max is 0), printable, no control characters.
 * The value is never echoed in a rejection (it may be a password). */
int p2m_cmd_text(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v, const char **out);
/* Ask the gateway to hold key = value for the device after this command (takes value). */
void p2m_cmd_set_local(struct p2m_cmd *cmd, const char *key, cJSON *value);
/* A pause between two frames (the device needs time between some steps). */
void p2m_cmd_delay(struct p2m_cmd *cmd, int ms);

/* Append a whole frame object as is (families whose frames are not {root: {field}}). */
void p2m_cmd_frame_object(struct p2m_cmd *cmd, cJSON *frame);
/* Request/reply families: send nothing more until the device has answered every request
 * sent so far; a refusal (or no answer) drops the rest of the command. */
void p2m_cmd_await_reply(struct p2m_cmd *cmd);
/* Push families with typed replies (driver replies/reply_of): send nothing more until the
 * device answers `type`. A failure drops the rest of the command; no answer within
 * timeout_ms lets the rest go on (the reply only shortens a wait the device needs). */
void p2m_cmd_await_reply_named(struct p2m_cmd *cmd, const char *type, int timeout_ms);
/* Send the image at path as one binary message, in fragments (firmware updates). */
void p2m_cmd_send_file(struct p2m_cmd *cmd, const char *path);

/* The markers these put in the frame list: {"@delay_ms": N}, {"@await_reply": true} or
 * {"@await_reply": {"type": T, "timeout_ms": N}}, {"@send_file": path}. Frames never start with
 * '@': the device never sees them. */
#define P2M_DELAY_KEY	    "@delay_ms"
#define P2M_AWAIT_REPLY_KEY "@await_reply"
#define P2M_SEND_FILE_KEY   "@send_file"

#endif
