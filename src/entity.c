/* entity.c - see entity.h. The checks here are driven by the rows alone: a field
 * that some row reads must have the type that row expects; fields no row reads are
 * kept as reported (they appear in the published raw state, secrets removed). */
#include "panda2mqtt/entity.h"

#include "panda2mqtt/json_util.h"
#include "panda2mqtt/log.h"

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

/* Strings longer than the cap anywhere in v. */
static bool has_long_string(const cJSON *v)
{
	const cJSON *c;

	if (cJSON_IsString(v))
		return strlen(v->valuestring) > P2M_MAX_STRING_BYTES;
	cJSON_ArrayForEach(c, v)
	{
		if (has_long_string(c))
			return true;
	}
	return false;
}

static int merge_root(const struct p2m_driver *d, const char *dev_name, cJSON *dev,
		      const cJSON *root)
{
	int problems = 0;
	const cJSON *f;
	cJSON *clean = cJSON_CreateObject();

	cJSON_ArrayForEach(f, root)
	{
		const struct p2m_entity *e = row_reading(d, root->string, f->string);

		if (e && !value_fits(e->vtype, f)) {
			p2m_warn("device %s: %s.%s: expected %s, got %s; ignored", dev_name,
				 root->string, f->string, expected_name(e->vtype), type_name(f));
			problems++;
			continue;
		}
		if (has_long_string(f)) {
			p2m_warn("device %s: %s.%s: string longer than %d bytes; ignored", dev_name,
				 root->string, f->string, P2M_MAX_STRING_BYTES);
			problems++;
			continue;
		}
		cJSON_AddItemToObject(clean, f->string, cJSON_Duplicate(f, true));
	}
	cJSON *wrap = cJSON_CreateObject();
	cJSON_AddItemToObject(wrap, root->string, clean);
	p2m_json_merge(dev, wrap);
	cJSON_Delete(wrap);
	return problems;
}

int p2m_entity_merge_frame(const struct p2m_driver *d, const char *dev_name, cJSON *dev,
			   const cJSON *frame)
{
	int problems = 0;
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
		problems += merge_root(d, dev_name, dev, root);
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
