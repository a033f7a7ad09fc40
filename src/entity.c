/* entity.c - see entity.h. The checks here are driven by the rows alone: a field
 * that some row reads must have the type that row expects; fields no row reads are
 * kept as reported, within the caps (the published report takes only what an allow-list
 * names: p2m_entity_report). */
#include "panda2mqtt/entity.h"

#include "panda2mqtt/json_util.h"
#include "panda2mqtt/log.h"

#include <glib.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* One line per device field and kind of problem every this many seconds: a device that
 * sends the same bad value in every push must not fill the log (log.h). */
#define FIELD_LOG_PERIOD_S 600.0
/* What a held secret reads as: whether one is held, never what it is. */
#define SECRET_MASK "********"

const struct p2m_entity *p2m_entity_find(const struct p2m_driver *d, const char *key)
{
	for (size_t i = 0; i < d->n_entities; i++)
		if (strcmp(d->entities[i].key, key) == 0)
			return &d->entities[i];
	return NULL;
}

static bool value_fits(enum p2m_vtype t, const cJSON *v)
{
	switch (t) {
	case P2M_V_NUMBER:
	case P2M_V_INT:
	case P2M_V_ENUM:
	case P2M_V_FLAG:
		return cJSON_IsNumber(v);
	case P2M_V_BOOL:
		/* Firmware reports work_on as true/false or as 0/1 (docs/protocol-panda-breath.md).
		 */
		return cJSON_IsBool(v) ||
		       (cJSON_IsNumber(v) && (v->valuedouble == 0 || v->valuedouble == 1));
	case P2M_V_STRING:
		return cJSON_IsString(v);
	case P2M_V_PRESS:
	case P2M_V_SECRET:
		return true;
	}
	return false;
}

static const char *type_name(const cJSON *v)
{
	if (cJSON_IsNumber(v))
		return "a number";
	if (cJSON_IsBool(v))
		return "a boolean";
	if (cJSON_IsString(v))
		return "a string";
	if (cJSON_IsNull(v))
		return "null";
	if (cJSON_IsArray(v))
		return "an array";
	return "an object";
}

static const char *expected_name(enum p2m_vtype t)
{
	switch (t) {
	case P2M_V_BOOL:
		return "a boolean or 0/1";
	case P2M_V_STRING:
		return "a string";
	default:
		return "a number";
	}
}

static const cJSON *read_source(const struct p2m_entity *e, const struct p2m_view *view)
{
	const cJSON *v;

	if (!e->field)
		return NULL;
	/* a row without a root reads what the gateway holds (a typed secret) */
	if (!e->root || strcmp(e->root, P2M_ROOT_LOCAL) == 0)
		return cJSON_GetObjectItemCaseSensitive(view->local, e->field);
	v = p2m_json_field(view->dev, e->root, e->field);
	if (v && value_fits(e->vtype, v))
		return v;
	if (e->fallback) {
		v = p2m_json_field(view->dev, e->root, e->fallback);
		if (v && value_fits(e->vtype, v))
			return v;
	}
	return NULL;
}

bool p2m_entity_has_state(const struct p2m_entity *e)
{
	return e->platform != P2M_CLIMATE && e->platform != P2M_BUTTON &&
	       e->platform != P2M_EVENT && e->vtype != P2M_V_PRESS;
}

bool p2m_entity_visible(const struct p2m_driver *d, const struct p2m_entity *e,
			const struct p2m_view *v)
{
	size_t i = (size_t)(e - d->entities);

	if (!e->optional)
		return true;
	if (v->seen && i < d->n_entities && v->seen[i])
		return true;
	return e->root && e->field &&
	       (p2m_json_field(v->dev, e->root, e->field) ||
		(e->fallback && p2m_json_field(v->dev, e->root, e->fallback)));
}

bool p2m_entity_note_seen(const struct p2m_driver *d, const cJSON *dev, bool *seen)
{
	const struct p2m_view v = {.dev = dev};
	bool changed = false;

	for (size_t i = 0; i < d->n_entities; i++) {
		const struct p2m_entity *e = &d->entities[i];

		if (e->optional && !seen[i] && p2m_entity_visible(d, e, &v)) {
			seen[i] = true;
			changed = true;
		}
	}
	return changed;
}

const char *const *p2m_entity_options(const struct p2m_entity *e, const struct p2m_view *v,
				      const char **buf, size_t n)
{
	return e->options_fn ? e->options_fn(v, buf, n) : e->options;
}

/* The row's value by its vtype, root, field and fallback; NULL when the device has not
 * reported it (or reported a wrong type). */
static cJSON *read_generic(const struct p2m_entity *e, const struct p2m_view *view)
{
	const cJSON *v = read_source(e, view);

	if (!v)
		return e->vtype == P2M_V_SECRET ? cJSON_CreateString("") : NULL;
	switch (e->vtype) {
	case P2M_V_NUMBER:
	case P2M_V_INT:
		return cJSON_CreateNumber(v->valuedouble);
	case P2M_V_BOOL:
		return cJSON_CreateString(
		    cJSON_IsTrue(v) || (cJSON_IsNumber(v) && v->valuedouble == 1) ? "ON" : "OFF");
	case P2M_V_STRING:
		return cJSON_CreateString(v->valuestring);
	case P2M_V_ENUM:
		for (size_t i = 0; e->options && e->options[i]; i++)
			if (e->values[i] == v->valuedouble)
				return cJSON_CreateString(e->options[i]);
		return NULL;
	case P2M_V_FLAG:
		return cJSON_CreateString(v->valuedouble != 0 ? "ON" : "OFF");
	case P2M_V_SECRET:
		/* whether a secret is held (typed here, or reported by the device), never it */
		return cJSON_CreateString(cJSON_IsString(v) && v->valuestring[0] ? SECRET_MASK
										 : "");
	case P2M_V_PRESS:
		return NULL;
	}
	return NULL;
}

cJSON *p2m_entity_read(const struct p2m_entity *e, const struct p2m_view *v)
{
	return e->read ? e->read(e, v) : read_generic(e, v);
}

/* Which row reads root.field, indexed per driver on first use: the merge asks this for
 * every member of every frame, and walking the table with strcmp was the largest single
 * cost of taking a frame (docs/BENCHMARKS.md). Drivers are static and there is one
 * thread, so an index lives as long as the process. Keys are "root" 0x1f "field"; where
 * two rows read the same field, the first in table order wins, as in a walk. */
static GHashTable *row_index(const struct p2m_driver *d)
{
	static GHashTable *by_driver;
	GHashTable *idx;

	if (!by_driver)
		by_driver = g_hash_table_new(g_direct_hash, g_direct_equal);
	idx = g_hash_table_lookup(by_driver, d);
	if (idx)
		return idx;
	idx = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	for (size_t i = d->n_entities; i-- > 0;) {
		const struct p2m_entity *e = &d->entities[i];

		if (!e->root)
			continue;
		if (e->fallback)
			g_hash_table_replace(idx, g_strconcat(e->root, "\x1f", e->fallback, NULL),
					     (gpointer)e);
		if (e->field)
			g_hash_table_replace(idx, g_strconcat(e->root, "\x1f", e->field, NULL),
					     (gpointer)e);
	}
	g_hash_table_insert(by_driver, (gpointer)d, idx);
	return idx;
}

/* The row that reads root.field (as its field or its fallback), if any. */
static const struct p2m_entity *row_reading(const struct p2m_driver *d, const char *root,
					    const char *field)
{
	char key[2 * P2M_MAX_STRING_BYTES + 2];
	size_t nr = strlen(root), nf = strlen(field);

	if (nr + nf + 2 > sizeof(key))
		return NULL; /* longer than any name a table can hold */
	/* root, 0x1f, then field with its NUL */
	memcpy(key, root, nr); /* NOLINT(bugprone-not-null-terminated-result) */
	key[nr] = '\x1f';
	memcpy(key + nr + 1, field, nf + 1);
	return g_hash_table_lookup(row_index(d), key);
}

static bool known_root(const struct p2m_driver *d, const char *root)
{
	for (const char *const *r = d->roots; r && *r; r++)
		if (strcmp(*r, root) == 0)
			return true;
	return false;
}

/* Strings or member names longer than the cap anywhere in v (v's own name included). */
static bool has_long_string(const cJSON *v)
{
	const cJSON *c;

	if (v->string && strlen(v->string) > P2M_MAX_STRING_BYTES)
		return true;
	if (cJSON_IsString(v))
		return strlen(v->valuestring) > P2M_MAX_STRING_BYTES;
	cJSON_ArrayForEach(c, v)
	{
		if (has_long_string(c))
			return true;
	}
	return false;
}

size_t p2m_entity_stored_bytes(const cJSON *v)
{
	size_t n = sizeof(cJSON);
	const cJSON *c;

	if (v->string)
		n += strlen(v->string) + 1;
	if (v->valuestring)
		n += strlen(v->valuestring) + 1;
	cJSON_ArrayForEach(c, v)
	{
		n += p2m_entity_stored_bytes(c);
	}
	return n;
}

/* A member the caps never refuse: a scalar in a field some row reads. A table field
 * holding an object or array is not (only P2M_V_PRESS/SECRET rows would take one), so
 * that what the caps exempt stays bounded by the table itself. */
static bool is_table_field(const struct p2m_driver *d, const char *root, const cJSON *m)
{
	return !cJSON_IsObject(m) && !cJSON_IsArray(m) && row_reading(d, root, m->string);
}

/* What a stored member counts against P2M_MAX_STORED_BYTES. */
static size_t charged_bytes(const struct p2m_driver *d, const char *root, const cJSON *m)
{
	return is_table_field(d, root, m) ? 0 : p2m_entity_stored_bytes(m);
}

size_t p2m_entity_max_stored(const struct p2m_driver *d)
{
	/* the state object itself, and the budget shared by everything not exempt */
	size_t n = sizeof(cJSON) + P2M_MAX_STORED_BYTES;

	for (const char *const *r = d->roots; r && *r; r++)
		n += sizeof(cJSON) + strlen(*r) + 1;
	/* each exempt field at its longest: a string value just under the refusal */
	for (size_t i = 0; i < d->n_entities; i++) {
		const struct p2m_entity *e = &d->entities[i];
		const char *names[] = {e->field, e->fallback};

		if (!e->root || !known_root(d, e->root))
			continue;
		for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
			if (names[k])
				n +=
				    sizeof(cJSON) + strlen(names[k]) + 1 + P2M_MAX_STRING_BYTES + 1;
	}
	return n;
}

/* The device's stored object for a root, made empty when missing (a root reported with
 * nothing valid in it is still reported: the device has spoken). */
static cJSON *stored_root(cJSON *dev, const char *name)
{
	cJSON *r = cJSON_GetObjectItemCaseSensitive(dev, name);
	cJSON *fresh;

	if (cJSON_IsObject(r))
		return r;
	fresh = cJSON_CreateObject();
	if (r)
		cJSON_ReplaceItemInObjectCaseSensitive(dev, name, fresh);
	else
		cJSON_AddItemToObject(dev, name, fresh);
	return fresh;
}

static size_t charged_total(const struct p2m_driver *d, const cJSON *dev);

/* A warning about one field of a device's report (root or field NULL: about a root, a
 * frame), at most once per FIELD_LOG_PERIOD_S for that device, field and kind of
 * problem (the kind is what the format says). */
static void field_warn(const char *dev_name, const char *root, const char *field, const char *fmt,
		       ...) __attribute__((format(printf, 4, 5)));
static void field_warn(const char *dev_name, const char *root, const char *field, const char *fmt,
		       ...)
{
	char key[400], msg[512];
	unsigned held = 0;
	va_list ap;

	if (p2m_log_get_level() < P2M_LOG_WARN)
		return; /* not even counted: the line would not be written */
	snprintf(key, sizeof(key), "%s\x1f%s\x1f%.64s\x1f%s", dev_name, root ? root : "",
		 field ? field : "", fmt);
	if (!p2m_log_ratelimit(key, FIELD_LOG_PERIOD_S, &held))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!root)
		snprintf(key, sizeof(key), "%s", "");
	else if (!field)
		snprintf(key, sizeof(key), "%.64s: ", root);
	else
		snprintf(key, sizeof(key), "%.64s.%.64s: ", root, field);
	if (held)
		p2m_warn("device %s: %s%s (%u more like it not logged)", dev_name, key, msg, held);
	else
		p2m_warn("device %s: %s%s", dev_name, key, msg);
}

/* A value of the right type that still cannot be right: an infinite or not-a-number
 * reading (JSON 1e999), a code the row has no option for, a number outside what the row
 * says the device can report. Why, or NULL when it is believable. */
static const char *implausible(const struct p2m_entity *e, const cJSON *v)
{
	double x;

	if (!cJSON_IsNumber(v))
		return NULL;
	x = v->valuedouble;
	if (!isfinite(x))
		return "not a finite number";
	if (e->vtype == P2M_V_ENUM && e->values && !e->read) {
		for (size_t i = 0; e->options && e->options[i]; i++)
			if (e->values[i] == x)
				return NULL;
		return "not a code this field takes";
	}
	if ((e->report_min != 0 || e->report_max != 0) && (x < e->report_min || x > e->report_max))
		return "outside what the device can report";
	return NULL;
}

/* A whole snapshot's root: its scalars are all the device has, so a stored scalar it
 * leaves out is gone (a fault flag the device no longer sends). Objects and arrays (scan
 * results) are kept: a snapshot does not always repeat them. */
static bool drop_missing_scalars(cJSON *stored, const cJSON *root)
{
	cJSON *m = stored->child, *next;
	bool dropped = false;

	for (; m; m = next) {
		next = m->next;
		if (!cJSON_IsObject(m) && !cJSON_IsArray(m) &&
		    !cJSON_GetObjectItemCaseSensitive(root, m->string)) {
			cJSON_Delete(cJSON_DetachItemViaPointer(stored, m));
			dropped = true;
		}
	}
	return dropped;
}

/* Merge the valid members of one root into dev. *charged is what dev's members hold
 * against P2M_MAX_STORED_BYTES, kept up to date across the roots of a frame. */
/* root.field changed (names borrowed from the frame). */
static void note_change(struct p2m_changes *c, const char *root, const char *field)
{
	if (c->all)
		return;
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->root[i], root) == 0 && strcmp(c->field[i], field) == 0)
			return;
	if (c->n == P2M_MAX_CHANGES) {
		c->all = true;
		return;
	}
	c->root[c->n] = root;
	c->field[c->n++] = field;
}

static int merge_root(const struct p2m_driver *d, const char *dev_name, cJSON *dev,
		      const cJSON *root, bool whole, size_t *charged, struct p2m_changes *changes)
{
	int problems = 0;
	int capped[2] = {0, 0}; /* refused by the member cap, by the byte cap */
	int logged;
	/* Members the member cap counts (table fields are not); SIZE_MAX until needed. Both
	 * tallies are made only when a frame brings something other than table fields: a
	 * temperature push then costs no walk over the stored state. */
	size_t members = SIZE_MAX;
	const cJSON *f;
	cJSON *stored = cJSON_GetObjectItemCaseSensitive(dev, root->string);
	cJSON *m;

	if (!cJSON_IsObject(stored)) {
		changes->all = true;
		stored = stored_root(dev, root->string);
	}
	if (whole && drop_missing_scalars(stored, root)) {
		changes->all = true;
		*charged = SIZE_MAX; /* tallied again when next needed */
	}
	cJSON_ArrayForEach(f, root)
	{
		const struct p2m_entity *e = row_reading(d, root->string, f->string);
		bool table = is_table_field(d, root->string, f), merge;
		const char *why;
		cJSON *old;
		size_t old_cost, new_cost;

		if (e && !value_fits(e->vtype, f)) {
			field_warn(dev_name, root->string, f->string,
				   "expected %s, got %s; ignored", expected_name(e->vtype),
				   type_name(f));
			problems++;
			continue;
		}
		if (e && (why = implausible(e, f)) != NULL) {
			/* not kept: what was stored before is no truer now, so the field reads as
			 * unknown until the device reports a value that can be right */
			char *txt = cJSON_PrintUnformatted(f);
			field_warn(dev_name, root->string, f->string,
				   "%.32s is %s; shown as unknown", txt ? txt : "?", why);
			cJSON_free(txt);
			if (cJSON_GetObjectItemCaseSensitive(stored, f->string)) {
				cJSON_DeleteItemFromObjectCaseSensitive(stored, f->string);
				note_change(changes, root->string, f->string);
			}
			problems++;
			continue;
		}
		if (has_long_string(f)) {
			field_warn(dev_name, root->string, f->string,
				   "string or name longer than %d bytes; ignored",
				   P2M_MAX_STRING_BYTES);
			problems++;
			continue;
		}
		old = cJSON_GetObjectItemCaseSensitive(stored, f->string);
		/* the same value again (most of a push): nothing to store, nothing changed */
		if (old && !cJSON_IsObject(old) && cJSON_Compare(old, f, true))
			continue;
		if (!old && !table && members == SIZE_MAX) {
			members = 0;
			cJSON_ArrayForEach(m, stored)
			{
				members += !is_table_field(d, root->string, m);
			}
		}
		if (!old && !table && members >= P2M_MAX_ROOT_MEMBERS) {
			if (!capped[0]++)
				field_warn(dev_name, root->string, NULL,
					   "already %d members kept; new member '%.64s' ignored",
					   P2M_MAX_ROOT_MEMBERS, f->string);
			problems++;
			continue;
		}
		/* What the member costs before and after. An object reported onto a stored
		 * object is merged into it (a push carries only what changed), in place:
		 * copying the stored one to measure the result would let every repeat of
		 * a name in one frame copy up to P2M_MAX_STORED_BYTES. The merge adds at
		 * most f's own bytes, so that is what is charged; the exact figure is
		 * tallied again at the next frame. Anything else replaces what is stored. */
		merge = cJSON_IsObject(old) && cJSON_IsObject(f);
		old_cost = old && !merge ? charged_bytes(d, root->string, old) : 0;
		new_cost = table ? 0 : p2m_entity_stored_bytes(f);
		if (!table && *charged == SIZE_MAX)
			*charged = charged_total(d, dev);
		if (!table && *charged - old_cost + new_cost > P2M_MAX_STORED_BYTES) {
			if (!capped[1]++)
				field_warn(dev_name, root->string, f->string,
					   "would take the state kept over %d bytes; ignored",
					   P2M_MAX_STORED_BYTES);
			problems++;
			continue;
		}
		note_change(changes, root->string, f->string);
		if (merge) {
			p2m_json_merge(old, f);
		} else {
			/* decided before old is freed by its replacement */
			bool old_counted = old && !is_table_field(d, root->string, old);
			cJSON *value = cJSON_Duplicate(f, true);

			if (old)
				cJSON_ReplaceItemViaPointer(stored, old, value);
			else
				cJSON_AddItemToObject(stored, f->string, value);
			if (members != SIZE_MAX)
				members = members - old_counted + !table;
		}
		if (*charged != SIZE_MAX)
			*charged = *charged - old_cost + new_cost;
	}
	/* One frame can carry thousands of refused members: one line for the rest. */
	logged = (capped[0] > 0) + (capped[1] > 0);
	if (capped[0] + capped[1] > logged)
		field_warn(dev_name, root->string, NULL, "%d more members ignored by the same caps",
			   capped[0] + capped[1] - logged);
	return problems;
}

/* What dev's members hold against P2M_MAX_STORED_BYTES. */
static size_t charged_total(const struct p2m_driver *d, const cJSON *dev)
{
	size_t n = 0;

	for (const char *const *r = d->roots; r && *r; r++) {
		const cJSON *root = cJSON_GetObjectItemCaseSensitive(dev, *r);
		const cJSON *m;

		if (!cJSON_IsObject(root))
			continue;
		cJSON_ArrayForEach(m, root)
		{
			n += charged_bytes(d, *r, m);
		}
	}
	return n;
}

int p2m_entity_merge_frame(const struct p2m_driver *d, const char *dev_name, cJSON *dev,
			   const cJSON *frame, bool whole)
{
	struct p2m_changes changes;

	return p2m_entity_merge(d, dev_name, dev, frame, whole, &changes);
}

int p2m_entity_merge(const struct p2m_driver *d, const char *dev_name, cJSON *dev,
		     const cJSON *frame, bool whole, struct p2m_changes *changes)
{
	int problems = 0;
	size_t charged;
	const cJSON *root;

	*changes = (struct p2m_changes){.all = whole};
	if (!cJSON_IsObject(frame)) {
		field_warn(dev_name, NULL, NULL, "frame is %s, not a JSON object; ignored",
			   type_name(frame));
		return -1;
	}
	if (p2m_json_depth(frame, P2M_MAX_FRAME_DEPTH) > P2M_MAX_FRAME_DEPTH) {
		field_warn(dev_name, NULL, NULL, "frame nested deeper than %d levels; ignored",
			   P2M_MAX_FRAME_DEPTH);
		return -1;
	}
	/* Tallied at most once per frame, and only when needed (merge_root): the state is
	 * bounded, so this is bounded work too. */
	charged = SIZE_MAX;
	cJSON_ArrayForEach(root, frame)
	{
		if (!known_root(d, root->string)) {
			field_warn(dev_name, root->string, NULL, "unknown root; ignored");
			problems++;
			continue;
		}
		if (!cJSON_IsObject(root)) {
			field_warn(dev_name, root->string, NULL, "is %s, not an object; ignored",
				   type_name(root));
			problems++;
			continue;
		}
		problems += merge_root(d, dev_name, dev, root, whole, &charged, changes);
	}
	return problems;
}

/* May root.field of a device's report be published? A field some row reads (never a
 * secret's), or one in the driver's allow-list. */
static bool reportable(const struct p2m_driver *d, const char *root, const char *field)
{
	const struct p2m_entity *e = row_reading(d, root, field);
	size_t rl = strlen(root), fl = strlen(field);

	if (e)
		return e->vtype != P2M_V_SECRET;
	for (const char *const *a = d->report_fields; a && *a; a++)
		if (strncmp(*a, root, rl) == 0 && (*a)[rl] == '.' &&
		    strncmp(*a + rl + 1, field, fl) == 0 && (*a)[rl + 1 + fl] == '\0')
			return true;
	return false;
}

/* The allowed members of the objects of the array root.field ("root.field[].member"). */
static cJSON *reportable_list(const struct p2m_driver *d, const char *root, const cJSON *list)
{
	char prefix[160];
	size_t pl;
	cJSON *out = NULL;
	const cJSON *item, *m;

	pl = (size_t)snprintf(prefix, sizeof(prefix), "%s.%s[].", root, list->string);
	for (const char *const *a = d->report_fields; a && *a && !out; a++)
		if (strncmp(*a, prefix, pl) == 0)
			out = cJSON_CreateArray();
	if (!out)
		return NULL;
	cJSON_ArrayForEach(item, list)
	{
		cJSON *o;

		if (!cJSON_IsObject(item))
			continue;
		o = cJSON_CreateObject();
		cJSON_ArrayForEach(m, item)
		{
			for (const char *const *a = d->report_fields; *a; a++)
				if (strncmp(*a, prefix, pl) == 0 &&
				    strcmp(*a + pl, m->string) == 0 && !cJSON_IsObject(m) &&
				    !cJSON_IsArray(m)) {
					cJSON_AddItemToObject(o, m->string,
							      cJSON_Duplicate(m, true));
					break;
				}
		}
		cJSON_AddItemToArray(out, o);
	}
	return out;
}

cJSON *p2m_entity_report(const struct p2m_driver *d, const cJSON *dev)
{
	cJSON *out = cJSON_CreateObject();

	for (const char *const *r = d->roots; r && *r; r++) {
		const cJSON *root = cJSON_GetObjectItemCaseSensitive(dev, *r), *m;
		cJSON *copy = NULL;

		if (!cJSON_IsObject(root))
			continue;
		cJSON_ArrayForEach(m, root)
		{
			cJSON *v = NULL;

			if (cJSON_IsArray(m))
				v = reportable_list(d, *r, m);
			else if (!cJSON_IsObject(m) && reportable(d, *r, m->string))
				v = cJSON_Duplicate(m, true);
			if (!v)
				continue;
			if (!copy)
				copy = cJSON_AddObjectToObject(out, *r);
			cJSON_AddItemToObject(copy, m->string, v);
		}
	}
	return out;
}

bool p2m_inputs_list(const char *inputs, const char *root, const char *field)
{
	size_t rl = strlen(root), fl = strlen(field);

	for (const char *p = inputs; *p;) {
		size_t n = strcspn(p, " ");

		if (n > rl && strncmp(p, root, rl) == 0 && p[rl] == '.' &&
		    ((n == rl + 2 && p[rl + 1] == '*') ||
		     (n == rl + 1 + fl && strncmp(p + rl + 1, field, fl) == 0)))
			return true;
		p += n;
		p += strspn(p, " ");
	}
	return false;
}

bool p2m_entity_depends(const struct p2m_entity *e, const struct p2m_changes *c)
{
	if (c->all)
		return true;
	if (e->read && !e->inputs)
		return c->n > 0;
	for (size_t i = 0; i < c->n; i++) {
		if (e->inputs && p2m_inputs_list(e->inputs, c->root[i], c->field[i]))
			return true;
		if (e->read)
			continue;
		if (e->root && strcmp(e->root, c->root[i]) == 0 &&
		    ((e->field && strcmp(e->field, c->field[i]) == 0) ||
		     (e->fallback && strcmp(e->fallback, c->field[i]) == 0)))
			return true;
	}
	return false;
}

enum p2m_topic p2m_entity_topic(const struct p2m_entity *e)
{
	if (e->platform == P2M_UPDATE)
		return P2M_TOPIC_UPDATE;
	return e->category ? P2M_TOPIC_DETAILS : P2M_TOPIC_STATE;
}

const char *p2m_topic_suffix(enum p2m_topic t)
{
	static const char *const suffix[P2M_TOPICS] = {[P2M_TOPIC_STATE] = "",
						       [P2M_TOPIC_DETAILS] = "/details",
						       [P2M_TOPIC_UPDATE] = "/update"};

	return suffix[t];
}

static cJSON *state_of(const struct p2m_driver *d, const struct p2m_view *v, int topic)
{
	cJSON *state = cJSON_CreateObject();

	for (size_t i = 0; i < d->n_entities; i++) {
		const struct p2m_entity *e = &d->entities[i];
		cJSON *val;

		if (!p2m_entity_has_state(e) || (topic >= 0 && (int)p2m_entity_topic(e) != topic) ||
		    !p2m_entity_visible(d, e, v))
			continue;
		val = p2m_entity_read(e, v);
		cJSON_AddItemToObject(state, e->key, val ? val : cJSON_CreateNull());
	}
	return state;
}

cJSON *p2m_entity_topic_state(const struct p2m_driver *d, const struct p2m_view *v,
			      enum p2m_topic topic)
{
	return state_of(d, v, (int)topic);
}

cJSON *p2m_entity_state(const struct p2m_driver *d, const struct p2m_view *v)
{
	return state_of(d, v, -1);
}
