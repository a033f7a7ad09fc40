/* entity.c - see entity.h. The checks here are driven by the rows alone: a field
 * that some row reads must have the type that row expects; fields no row reads are
 * kept as reported (they appear in the published raw state, secrets removed). */
#include "panda2mqtt/entity.h"

#include "panda2mqtt/json_util.h"
#include "panda2mqtt/log.h"

#include <stdint.h>
#include <string.h>

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
		/* Firmware reports work_on as true/false or as 0/1 (field notes). */
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

	if (!e->root || !e->field)
		return NULL;
	if (strcmp(e->root, P2M_ROOT_LOCAL) == 0)
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
	       e->platform != P2M_EVENT && e->vtype != P2M_V_PRESS && e->vtype != P2M_V_SECRET;
}

const char *const *p2m_entity_options(const struct p2m_entity *e, const struct p2m_view *v,
				      const char **buf, size_t n)
{
	return e->options_fn ? e->options_fn(v, buf, n) : e->options;
}

cJSON *p2m_entity_read_generic(const struct p2m_entity *e, const struct p2m_view *view)
{
	const cJSON *v = read_source(e, view);

	if (!v)
		return NULL;
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
	case P2M_V_PRESS:
	case P2M_V_SECRET:
		return NULL;
	}
	return NULL;
}

cJSON *p2m_entity_read(const struct p2m_entity *e, const struct p2m_view *v)
{
	return e->read ? e->read(e, v) : p2m_entity_read_generic(e, v);
}

/* The row that reads root.field (as its field or its fallback), if any. */
static const struct p2m_entity *row_reading(const struct p2m_driver *d, const char *root,
					    const char *field)
{
	for (size_t i = 0; i < d->n_entities; i++) {
		const struct p2m_entity *e = &d->entities[i];

		if (!e->root || strcmp(e->root, root) != 0)
			continue;
		if ((e->field && strcmp(e->field, field) == 0) ||
		    (e->fallback && strcmp(e->fallback, field) == 0))
			return e;
	}
	return NULL;
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
	if (!fresh)
		return NULL;
	if (r ? cJSON_ReplaceItemInObjectCaseSensitive(dev, name, fresh)
	      : cJSON_AddItemToObject(dev, name, fresh))
		return fresh;
	cJSON_Delete(fresh);
	return NULL;
}

static size_t charged_total(const struct p2m_driver *d, const cJSON *dev);

/* Merge the valid members of one root into dev. *charged is what dev's members hold
 * against P2M_MAX_STORED_BYTES, kept up to date across the roots of a frame. */
static int merge_root(const struct p2m_driver *d, const char *dev_name, cJSON *dev,
		      const cJSON *root, size_t *charged)
{
	int problems = 0;
	int capped[2] = {0, 0}; /* refused by the member cap, by the byte cap */
	int logged;
	/* Members the member cap counts (table fields are not); SIZE_MAX until needed. Both
	 * tallies are made only when a frame brings something other than table fields: a
	 * temperature push then costs no walk over the stored state. */
	size_t members = SIZE_MAX;
	const cJSON *f;
	cJSON *stored = stored_root(dev, root->string);
	cJSON *m;

	if (!stored) {
		p2m_warn("device %s: %s: out of memory; ignored", dev_name, root->string);
		return 1;
	}
	cJSON_ArrayForEach(f, root)
	{
		const struct p2m_entity *e = row_reading(d, root->string, f->string);
		bool table = is_table_field(d, root->string, f), merge;
		cJSON *old;
		size_t old_cost, new_cost;

		if (e && !value_fits(e->vtype, f)) {
			p2m_warn("device %s: %s.%s: expected %s, got %s; ignored", dev_name,
				 root->string, f->string, expected_name(e->vtype), type_name(f));
			problems++;
			continue;
		}
		if (has_long_string(f)) {
			p2m_warn(
			    "device %s: %s.%.64s: string or name longer than %d bytes; ignored",
			    dev_name, root->string, f->string, P2M_MAX_STRING_BYTES);
			problems++;
			continue;
		}
		old = cJSON_GetObjectItemCaseSensitive(stored, f->string);
		if (!old && !table && members == SIZE_MAX) {
			members = 0;
			cJSON_ArrayForEach(m, stored)
			{
				members += !is_table_field(d, root->string, m);
			}
		}
		if (!old && !table && members >= P2M_MAX_ROOT_MEMBERS) {
			if (!capped[0]++)
				p2m_warn("device %s: %s: already %d members kept; new member "
					 "'%.64s' ignored",
					 dev_name, root->string, P2M_MAX_ROOT_MEMBERS, f->string);
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
				p2m_warn("device %s: %s.%.64s: would take the state kept over %d "
					 "bytes; ignored",
					 dev_name, root->string, f->string, P2M_MAX_STORED_BYTES);
			problems++;
			continue;
		}
		if (merge) {
			p2m_json_merge(old, f);
		} else {
			/* decided before old is freed by its replacement */
			bool old_counted = old && !is_table_field(d, root->string, old);
			cJSON *value = cJSON_Duplicate(f, true);

			if (!value || !(old ? cJSON_ReplaceItemViaPointer(stored, old, value)
					    : cJSON_AddItemToObject(stored, f->string, value))) {
				p2m_warn("device %s: %s.%.64s: out of memory; ignored", dev_name,
					 root->string, f->string);
				cJSON_Delete(value);
				problems++;
				continue;
			}
			if (members != SIZE_MAX)
				members = members - old_counted + !table;
		}
		if (*charged != SIZE_MAX)
			*charged = *charged - old_cost + new_cost;
	}
	/* One frame can carry thousands of refused members: one line for the rest. */
	logged = (capped[0] > 0) + (capped[1] > 0);
	if (capped[0] + capped[1] > logged)
		p2m_warn("device %s: %s: %d more members ignored by the same caps", dev_name,
			 root->string, capped[0] + capped[1] - logged);
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
			   const cJSON *frame)
{
	int problems = 0;
	size_t charged;
	const cJSON *root;

	if (!cJSON_IsObject(frame)) {
		p2m_warn("device %s: frame is %s, not a JSON object; ignored", dev_name,
			 type_name(frame));
		return -1;
	}
	if (p2m_json_depth(frame, P2M_MAX_FRAME_DEPTH) > P2M_MAX_FRAME_DEPTH) {
		p2m_warn("device %s: frame nested deeper than %d levels; ignored", dev_name,
			 P2M_MAX_FRAME_DEPTH);
		return -1;
	}
	/* Tallied at most once per frame, and only when needed (merge_root): the state is
	 * bounded, so this is bounded work too. */
	charged = SIZE_MAX;
	cJSON_ArrayForEach(root, frame)
	{
		if (!known_root(d, root->string)) {
			p2m_warn("device %s: unknown root '%.64s'; ignored", dev_name,
				 root->string);
			problems++;
			continue;
		}
		if (!cJSON_IsObject(root)) {
			p2m_warn("device %s: root '%s' is %s, not an object; ignored", dev_name,
				 root->string, type_name(root));
			problems++;
			continue;
		}
		problems += merge_root(d, dev_name, dev, root, &charged);
	}
	return problems;
}

cJSON *p2m_entity_state(const struct p2m_driver *d, const struct p2m_view *v)
{
	cJSON *state = cJSON_CreateObject();

	for (size_t i = 0; i < d->n_entities; i++) {
		const struct p2m_entity *e = &d->entities[i];
		cJSON *val;

		if (!p2m_entity_has_state(e))
			continue;
		val = p2m_entity_read(e, v);
		cJSON_AddItemToObject(state, e->key, val ? val : cJSON_CreateNull());
	}
	cJSON_AddItemToObject(state, "device", p2m_json_redacted(v->dev));
	return state;
}
