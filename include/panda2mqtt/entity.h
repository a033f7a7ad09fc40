/* entity.h - the generic half of the entity tables: reading device frames into a
 * device's state and building the state that is published.
 *
 * Owns: type checks of incoming fields against the rows that read them, merging,
 * and the published state object (every row's value plus the redacted raw state).
 * Does not own: commands (command.h) or discovery (ha.h). */
#ifndef PANDA2MQTT_ENTITY_H
#define PANDA2MQTT_ENTITY_H

#include "panda2mqtt/driver.h"

/* Limits on what a device may send; larger or deeper frames are refused whole. A longer
 * string value or member name refuses only the member it is in. */
#define P2M_MAX_FRAME_DEPTH  8
#define P2M_MAX_STRING_BYTES 256

/* Limits on what is kept of a device across frames. Every frame is capped (ws.h), but a
 * device that keeps inventing member names, or keeps adding to an object member (objects
 * are merged, not replaced), would otherwise grow its stored state without end. Fields
 * that a row of the entity table reads, holding a scalar, are never refused by these two
 * caps (junk must not crowd out real state); everything else is: a new member beyond
 * P2M_MAX_ROOT_MEMBERS in its root, or a member that would take the stored bytes of all
 * such members over P2M_MAX_STORED_BYTES, is ignored with a warning. Members already
 * stored can still be updated within the byte cap.
 * Real devices: the largest root (settings) has about 25 members, and a whole snapshot
 * with Wi-Fi and printer scan lists takes some 10-20 KiB as stored (counted as cJSON holds
 * it: one struct cJSON, 64 bytes on 64-bit, per value plus its name and string bytes). */
#define P2M_MAX_ROOT_MEMBERS 128
#define P2M_MAX_STORED_BYTES 262144 /* 256 KiB */

const struct p2m_entity *p2m_entity_find(const struct p2m_driver *d, const char *key);

/* A row whose root is this reads the gateway-held values (view->local), not the device. */
#define P2M_ROOT_LOCAL "@local"

/* The row's value using its own read function when it has one. */
cJSON *p2m_entity_read(const struct p2m_entity *e, const struct p2m_view *v);

/* Whether the row has a value in the published state. */
bool p2m_entity_has_state(const struct p2m_entity *e);

/* Whether the row is published (state and discovery) for this device: always, unless it
 * is optional and its field was never reported (v->seen, or the state as it is now). */
bool p2m_entity_visible(const struct p2m_driver *d, const struct p2m_entity *e,
			const struct p2m_view *v);

/* Mark in seen (one flag per row) the optional rows whose field dev now holds; true when
 * one was marked for the first time (discovery then changes). */
bool p2m_entity_note_seen(const struct p2m_driver *d, const cJSON *dev, bool *seen);

/* Room for options that come from the device (scan results), NULL included. */
#define P2M_MAX_OPTIONS 33

/* The row's options: static, or from options_fn (buf of n entries as storage). */
const char *const *p2m_entity_options(const struct p2m_entity *e, const struct p2m_view *v,
				      const char **buf, size_t n);

/* Check one parsed frame and merge what is valid into dev. Every rejected part is
 * logged with the device name and field (rate-limited per field: log.h). A field of the
 * right type whose value cannot be right (not finite, a code the row does not know,
 * outside the row's report range) is removed, so that it reads as unknown. whole: the
 * frame is the device's whole state (driver snapshot_is_whole), and scalars its roots
 * leave out are removed too. Returns the number of problems found (0 = all merged), or -1
 * when the frame was refused whole. */
int p2m_entity_merge_frame(const struct p2m_driver *d, const char *dev_name, cJSON *dev,
			   const cJSON *frame, bool whole);

/* What a frame changed in a device's stored state: the (root, field) pairs, or all. The
 * names are borrowed from the frame: valid while it is. */
#define P2M_MAX_CHANGES 16
struct p2m_changes {
	bool all; /* a whole snapshot, more than P2M_MAX_CHANGES, or a change no pair names */
	size_t n;
	const char *root[P2M_MAX_CHANGES];
	const char *field[P2M_MAX_CHANGES];
};

static inline bool p2m_changed(const struct p2m_changes *c)
{
	return c->all || c->n > 0;
}

/* The same, saying what in the stored state changed (a push that repeats what is stored
 * changes nothing: nothing need be derived or published from it). */
int p2m_entity_merge(const struct p2m_driver *d, const char *dev_name, cJSON *dev,
		     const cJSON *frame, bool whole, struct p2m_changes *changes);

/* Is root.field one of the blank-separated inputs ("root.field", "root.*": driver.h)? */
bool p2m_inputs_list(const char *inputs, const char *root, const char *field);

/* May the row's value have changed with these changes? From its root, field and fallback,
 * and its inputs (driver.h); a row with a read function and no inputs: always. */
bool p2m_entity_depends(const struct p2m_entity *e, const struct p2m_changes *c);

/* The topics a device's state is published on: its main entities on <base>/<id>, its
 * configuration and diagnostic entities (entity_category config or diagnostic) on
 * <base>/<id>/details, so that a new reading does not make Home Assistant render every
 * setting's template again (docs/BENCHMARKS.md), and its update entity (P2M_UPDATE) on
 * <base>/<id>/update, whose progress changes every second of an install. */
enum p2m_topic { P2M_TOPIC_STATE, P2M_TOPIC_DETAILS, P2M_TOPIC_UPDATE, P2M_TOPICS };
enum p2m_topic p2m_entity_topic(const struct p2m_entity *e);
/* The topic's suffix after <base>/<id>: "", "/details" or "/update". */
const char *p2m_topic_suffix(enum p2m_topic t);

/* Bytes v holds as stored: per value, sizeof(cJSON) plus its name and string with their
 * NULs (allocator overhead not counted). */
size_t p2m_entity_stored_bytes(const cJSON *v);

/* The most p2m_entity_stored_bytes() of a device's state can reach through
 * p2m_entity_merge_frame(), however many frames: P2M_MAX_STORED_BYTES plus the roots and
 * the table's scalar fields at their longest (P2M_MAX_STRING_BYTES). A constant per
 * driver: some 8 KiB above P2M_MAX_STORED_BYTES for the Panda Breath. */
size_t p2m_entity_max_stored(const struct p2m_driver *d);

/* The device's own report as far as it may be published: the members of its roots that
 * rows read (never a secret's) or the driver's report_fields allow; nothing else. */
cJSON *p2m_entity_report(const struct p2m_driver *d, const cJSON *dev);

/* The object published on one topic: each visible row of that topic with its value (null
 * when unknown). The report above goes to a topic of its own (device_publish.c). */
cJSON *p2m_entity_topic_state(const struct p2m_driver *d, const struct p2m_view *v,
			      enum p2m_topic topic);

/* Every visible row's value, whatever its topic (tests, and families with one topic). */
cJSON *p2m_entity_state(const struct p2m_driver *d, const struct p2m_view *v);

#endif
