/* printer_source.c - see printer_source.h.
 *
 * Why one Bambu-shaped object: a Bambu report is a root ("print") with fields, which is
 * what entity.c merges and checks against a table, and what the virtual Bambu printer
 * publishes. Plain sources are written into the same fields, so the Home Assistant
 * device, the virtual Moonraker and the virtual Bambu printer all read one thing. Only
 * the fields the table names are kept of a Bambu report: a full report carries some
 * 10 KiB of AMS and camera detail that nothing here reads. */
#include "panda2mqtt/printer_source.h"

#include "panda2mqtt/entity.h"
#include "panda2mqtt/json_util.h"
#include "panda2mqtt/log.h"

#include <glib.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- states ------------------------------------------------------------------------ */

static const struct {
	const char *word;
	enum p2m_print_state state;
} state_words[] = {
    /* Bambu gcode_state */
    {"IDLE", P2M_PRINT_STANDBY},
    {"PREPARE", P2M_PRINT_PRINTING}, /* heating up and levelling: the bed is heating */
    {"SLICING", P2M_PRINT_PRINTING},
    {"RUNNING", P2M_PRINT_PRINTING},
    {"PAUSE", P2M_PRINT_PAUSED},
    {"FINISH", P2M_PRINT_COMPLETE},
    {"FAILED", P2M_PRINT_ERROR},
    /* Klipper print_stats.state */
    {"standby", P2M_PRINT_STANDBY},
    {"printing", P2M_PRINT_PRINTING},
    {"paused", P2M_PRINT_PAUSED},
    {"complete", P2M_PRINT_COMPLETE},
    {"error", P2M_PRINT_ERROR},
    {"cancelled", P2M_PRINT_CANCELLED},
    /* other integrations (OctoPrint, PrusaLink, Home Assistant templates) */
    {"operational", P2M_PRINT_STANDBY},
    {"ready", P2M_PRINT_STANDBY},
    {"finished", P2M_PRINT_COMPLETE},
    {"canceled", P2M_PRINT_CANCELLED},
};

enum p2m_print_state p2m_print_state_parse(const char *s)
{
	for (size_t i = 0; s && i < ARRAY_LEN(state_words); i++)
		if (strcasecmp(s, state_words[i].word) == 0)
			return state_words[i].state;
	return P2M_PRINT_UNKNOWN;
}

const char *p2m_print_state_klipper(enum p2m_print_state s)
{
	switch (s) {
	case P2M_PRINT_PRINTING:
		return "printing";
	case P2M_PRINT_PAUSED:
		return "paused";
	case P2M_PRINT_COMPLETE:
		return "complete";
	case P2M_PRINT_ERROR:
		return "error";
	case P2M_PRINT_CANCELLED:
		return "cancelled";
	case P2M_PRINT_STANDBY:
	case P2M_PRINT_UNKNOWN:
		break;
	}
	return "standby";
}

const char *p2m_print_state_bambu(enum p2m_print_state s)
{
	switch (s) {
	case P2M_PRINT_PRINTING:
		return "RUNNING";
	case P2M_PRINT_PAUSED:
		return "PAUSE";
	case P2M_PRINT_COMPLETE:
		return "FINISH";
	case P2M_PRINT_ERROR:
	case P2M_PRINT_CANCELLED:
		return "FAILED";
	case P2M_PRINT_STANDBY:
	case P2M_PRINT_UNKNOWN:
		break;
	}
	return "IDLE";
}

/* ---- one value out of one message --------------------------------------------------- */

/* A plain payload: a number when all of it is one, else the text. */
static cJSON *plain_value(const char *payload, size_t len, char *err, size_t errlen)
{
	char buf[P2M_MAX_STRING_BYTES + 1], *end;
	size_t a = 0, b = len;
	double d;

	while (a < b && isspace((unsigned char)payload[a]))
		a++;
	while (b > a && isspace((unsigned char)payload[b - 1]))
		b--;
	if (b == a) {
		snprintf(err, errlen, "empty payload");
		return NULL;
	}
	if (b - a > P2M_MAX_STRING_BYTES || memchr(payload + a, '\0', b - a)) {
		snprintf(err, errlen, "not a value (longer than %d bytes or binary)",
			 P2M_MAX_STRING_BYTES);
		return NULL;
	}
	memcpy(buf, payload + a, b - a);
	buf[b - a] = '\0';
	errno = 0;
	d = strtod(buf, &end);
	if (end != buf && *end == '\0' && errno == 0 && isfinite(d))
		return cJSON_CreateNumber(d);
	return cJSON_CreateString(buf);
}

cJSON *p2m_printer_extract(const char *payload, size_t len, const char *path, char *err,
			   size_t errlen)
{
	cJSON *doc, *out = NULL;
	const cJSON *v;
	char member[P2M_MAX_STRING_BYTES + 1];

	if (len > P2M_PRINTER_MAX_PAYLOAD) {
		snprintf(err, errlen, "%zu bytes, more than %zu", len, P2M_PRINTER_MAX_PAYLOAD);
		return NULL;
	}
	if (!path)
		return plain_value(payload, len, err, errlen);
	doc = cJSON_ParseWithLength(payload, len);
	if (!doc) {
		snprintf(err, errlen, "not JSON (a path, %s, is configured)", path);
		return NULL;
	}
	if (p2m_json_depth(doc, P2M_MAX_FRAME_DEPTH) > P2M_MAX_FRAME_DEPTH) {
		snprintf(err, errlen, "nested deeper than %d levels", P2M_MAX_FRAME_DEPTH);
		cJSON_Delete(doc);
		return NULL;
	}
	v = doc;
	for (const char *p = path; v && *p;) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);

		if (n >= sizeof(member))
			n = sizeof(member) - 1;
		memcpy(member, p, n);
		member[n] = '\0';
		v = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, member) : NULL;
		p = dot ? dot + 1 : p + strlen(p);
	}
	if (!v)
		snprintf(err, errlen, "no member at %s", path);
	else if (cJSON_IsNumber(v) && isfinite(v->valuedouble))
		out = cJSON_CreateNumber(v->valuedouble);
	else if (cJSON_IsString(v))
		out = plain_value(v->valuestring, strlen(v->valuestring), err, errlen);
	else
		snprintf(err, errlen, "%s is neither a number nor a string", path);
	cJSON_Delete(doc);
	return out;
}

/* ---- the source --------------------------------------------------------------------- */

struct p2m_printer_source {
	const struct p2m_printer_conf *conf;
	cJSON *state; /* {"print":{...}} */
};

/* Where each plain source goes in the Bambu-shaped state. */
static const char *const src_field[P2M_SRC_COUNT] = {
    [P2M_SRC_BED] = "bed_temper",
    [P2M_SRC_BED_TARGET] = "bed_target_temper",
    [P2M_SRC_NOZZLE] = "nozzle_temper",
    [P2M_SRC_STATE] = "gcode_state",
};

struct p2m_printer_source *p2m_printer_source_new(const struct p2m_printer_conf *conf)
{
	struct p2m_printer_source *s = g_new0(struct p2m_printer_source, 1);

	s->conf = conf;
	s->state = cJSON_CreateObject();
	cJSON_AddObjectToObject(s->state, "print");
	return s;
}

void p2m_printer_source_free(struct p2m_printer_source *s)
{
	if (!s)
		return;
	cJSON_Delete(s->state);
	g_free(s);
}

bool p2m_printer_source_wants(const struct p2m_printer_source *s, const char *topic)
{
	const struct p2m_printer_conf *c = s->conf;

	if (c->bambu_report_topic && strcmp(c->bambu_report_topic, topic) == 0)
		return true;
	for (int i = 0; i < P2M_SRC_COUNT; i++)
		if (c->src[i].topic && strcmp(c->src[i].topic, topic) == 0)
			return true;
	return false;
}

static cJSON *print_root(const struct p2m_printer_source *s)
{
	return cJSON_GetObjectItemCaseSensitive(s->state, "print");
}

/* A Bambu report: the table's fields of its "print" root, merged into what is kept. */
static bool feed_bambu(struct p2m_printer_source *s, const char *topic, const char *payload,
		       size_t len)
{
	const struct p2m_driver *d = &p2m_printer_driver;
	cJSON *doc, *frame, *picked, *before;
	const cJSON *print;
	char who[128];
	bool changed;

	if (len > P2M_PRINTER_MAX_PAYLOAD) {
		p2m_warn("printer: %s: %zu bytes, more than %zu; ignored", topic, len,
			 P2M_PRINTER_MAX_PAYLOAD);
		return false;
	}
	doc = cJSON_ParseWithLength(payload, len);
	if (!cJSON_IsObject(doc)) {
		p2m_warn("printer: %s: not a JSON object; ignored", topic);
		cJSON_Delete(doc);
		return false;
	}
	print = cJSON_GetObjectItemCaseSensitive(doc, "print");
	if (!print) { /* info, system, mc_print... answers: nothing for us */
		cJSON_Delete(doc);
		return false;
	}
	frame = cJSON_CreateObject();
	picked = cJSON_AddObjectToObject(frame, "print");
	for (size_t i = 0; cJSON_IsObject(print) && i < d->n_entities; i++) {
		const cJSON *f = cJSON_GetObjectItemCaseSensitive(print, d->entities[i].field);

		if (f)
			cJSON_AddItemToObject(picked, d->entities[i].field,
					      cJSON_Duplicate(f, false));
	}
	if (!cJSON_IsObject(print))
		cJSON_ReplaceItemInObjectCaseSensitive(frame, "print", cJSON_Duplicate(print, 1));
	before = cJSON_Duplicate(s->state, true);
	snprintf(who, sizeof(who), "printer (%.100s)", topic);
	p2m_entity_merge_frame(d, who, s->state, frame, false);
	changed = !cJSON_Compare(before, s->state, true);
	cJSON_Delete(before);
	cJSON_Delete(frame);
	cJSON_Delete(doc);
	return changed;
}

static bool is_unavailable(const cJSON *v)
{
	return cJSON_IsString(v) && (strcasecmp(v->valuestring, "unavailable") == 0 ||
				     strcasecmp(v->valuestring, "unknown") == 0 ||
				     strcasecmp(v->valuestring, "none") == 0);
}

static bool feed_plain(struct p2m_printer_source *s, int i, const char *topic, const char *payload,
		       size_t len)
{
	cJSON *print = print_root(s);
	const cJSON *old = cJSON_GetObjectItemCaseSensitive(print, src_field[i]);
	char err[160] = "";
	cJSON *v = p2m_printer_extract(payload, len, s->conf->src[i].path, err, sizeof(err));
	bool changed;

	if (!v) {
		p2m_warn("printer: %s: %s; ignored", topic, err);
		return false;
	}
	if (is_unavailable(v)) {
		/* Home Assistant's statestream says the sensor is gone: so is the value */
		p2m_info("printer: %s: %s; the value is now unknown", topic, v->valuestring);
		cJSON_Delete(v);
		if (!old)
			return false;
		cJSON_DeleteItemFromObjectCaseSensitive(print, src_field[i]);
		return true;
	}
	if (i == P2M_SRC_STATE) {
		enum p2m_print_state st =
		    cJSON_IsString(v) ? p2m_print_state_parse(v->valuestring) : P2M_PRINT_UNKNOWN;

		cJSON_Delete(v);
		if (st == P2M_PRINT_UNKNOWN) {
			p2m_warn("printer: %s: not a print state (expected e.g. RUNNING, IDLE, "
				 "printing, standby); ignored",
				 topic);
			return false;
		}
		v = cJSON_CreateString(p2m_print_state_bambu(st));
	} else if (!cJSON_IsNumber(v)) {
		p2m_warn("printer: %s: not a temperature; ignored", topic);
		cJSON_Delete(v);
		return false;
	} else if (v->valuedouble < P2M_PRINTER_TEMP_MIN || v->valuedouble > P2M_PRINTER_TEMP_MAX) {
		p2m_warn("printer: %s: %g °C is not a plausible temperature; ignored", topic,
			 v->valuedouble);
		cJSON_Delete(v);
		return false;
	}
	changed = !old || !cJSON_Compare(old, v, true);
	if (old)
		cJSON_ReplaceItemInObjectCaseSensitive(print, src_field[i], v);
	else
		cJSON_AddItemToObject(print, src_field[i], v);
	return changed;
}

bool p2m_printer_source_feed(struct p2m_printer_source *s, const char *topic, const char *payload,
			     size_t len)
{
	const struct p2m_printer_conf *c = s->conf;
	bool changed = false;

	if (c->bambu_report_topic && strcmp(c->bambu_report_topic, topic) == 0)
		changed |= feed_bambu(s, topic, payload, len);
	for (int i = 0; i < P2M_SRC_COUNT; i++)
		if (c->src[i].topic && strcmp(c->src[i].topic, topic) == 0)
			changed |= feed_plain(s, i, topic, payload, len);
	return changed;
}

bool p2m_printer_source_forget(struct p2m_printer_source *s)
{
	bool known = p2m_printer_source_known(s);

	cJSON_ReplaceItemInObjectCaseSensitive(s->state, "print", cJSON_CreateObject());
	return known;
}

bool p2m_printer_source_known(const struct p2m_printer_source *s)
{
	return cJSON_GetArraySize(print_root(s)) > 0;
}

static bool number(const cJSON *print, const char *field, double *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(print, field);

	if (!cJSON_IsNumber(v))
		return false;
	*out = v->valuedouble;
	return true;
}

/* A Bambu report's temperature is kept as sent (the merge logs one out of the table's
 * range, report_min/report_max): here it only counts when plausible. */
static bool temperature(const cJSON *print, const char *field, double *out)
{
	return number(print, field, out) && *out >= P2M_PRINTER_TEMP_MIN &&
	       *out <= P2M_PRINTER_TEMP_MAX;
}

void p2m_printer_source_status(const struct p2m_printer_source *s, struct p2m_printer_status *out)
{
	const cJSON *print = print_root(s);
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(print, "gcode_state");
	double pct = 0;

	memset(out, 0, sizeof(*out));
	out->has_bed = temperature(print, "bed_temper", &out->bed);
	out->has_bed_target = temperature(print, "bed_target_temper", &out->bed_target);
	out->has_nozzle = temperature(print, "nozzle_temper", &out->nozzle);
	out->has_nozzle_target = temperature(print, "nozzle_target_temper", &out->nozzle_target);
	out->state =
	    cJSON_IsString(st) ? p2m_print_state_parse(st->valuestring) : P2M_PRINT_UNKNOWN;
	if (number(print, "mc_percent", &pct) && pct >= 0 && pct <= 100)
		out->progress = pct / 100;
}

const cJSON *p2m_printer_source_report(const struct p2m_printer_source *s)
{
	return s->state;
}
