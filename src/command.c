/* command.c - see command.h. Values from MQTT are checked here against the rows'
 * types and ranges; nothing reaches a device unless every field of the command
 * passed. Values are never echoed into reasons for fields that may carry secrets. */
#include "panda2mqtt/command.h"

#include "panda2mqtt/entity.h"
#include "panda2mqtt/json_util.h"

#include <glib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void set_err(char *err, size_t errlen, const char *msg)
{
	snprintf(err, errlen, "%s", msg);
}

cJSON *p2m_command_parse_object(const char *payload, size_t len, char *err, size_t errlen)
{
	cJSON *v;

	if (len == 0) {
		set_err(err, errlen, "empty payload");
		return NULL;
	}
	if (len > P2M_MAX_COMMAND_BYTES) {
		set_err(err, errlen, "payload larger than 4096 bytes");
		return NULL;
	}
	v = cJSON_ParseWithLength(payload, len);
	if (!v) {
		set_err(err, errlen, "payload is not valid JSON");
		return NULL;
	}
	if (!cJSON_IsObject(v)) {
		set_err(err, errlen, "payload is not a JSON object");
		cJSON_Delete(v);
		return NULL;
	}
	if (p2m_json_depth(v, P2M_MAX_COMMAND_DEPTH) > P2M_MAX_COMMAND_DEPTH) {
		set_err(err, errlen, "payload nested too deeply");
		cJSON_Delete(v);
		return NULL;
	}
	return v;
}

cJSON *p2m_command_parse_field(const struct p2m_driver *d, const char *field, const char *payload,
			       size_t len, char *err, size_t errlen)
{
	const struct p2m_entity *e = d ? p2m_entity_find(d, field) : NULL;
	bool text = e && (e->vtype == P2M_V_STRING || e->vtype == P2M_V_SECRET);
	cJSON *obj, *v;

	if (len == 0) {
		set_err(err, errlen, "empty payload");
		return NULL;
	}
	if (len > P2M_MAX_STRING_BYTES) {
		set_err(err, errlen, "payload longer than 256 bytes");
		return NULL;
	}
	v = text ? NULL : cJSON_ParseWithLength(payload, len);
	if (v && (cJSON_IsObject(v) || cJSON_IsArray(v) || cJSON_IsNull(v))) {
		cJSON_Delete(v);
		set_err(err, errlen, "payload must be a plain value");
		return NULL;
	}
	if (!v) {
		/* A bare word such as heat or ON: take it as a string. */
		if (memchr(payload, '\0', len)) {
			set_err(err, errlen, "payload contains a NUL byte");
			return NULL;
		}
		char *s = g_strndup(payload, len);
		v = cJSON_CreateString(s);
		g_free(s);
	}
	obj = cJSON_CreateObject();
	cJSON_AddItemToObject(obj, field, v);
	return obj;
}

int p2m_cmd_reject(struct p2m_cmd *cmd, const char *field, const char *fmt, ...)
{
	va_list ap;

	snprintf(cmd->field, sizeof(cmd->field), "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(cmd->reason, sizeof(cmd->reason), fmt, ap);
	va_end(ap);
	return -1;
}

void p2m_cmd_frame(struct p2m_cmd *cmd, const char *root, const char *field, cJSON *value)
{
	cJSON *frame = cJSON_CreateObject();
	cJSON *r = cJSON_AddObjectToObject(frame, root);

	cJSON_AddItemToObject(r, field, value);
	cJSON_AddItemToArray(cmd->frames, frame);
}

double p2m_entity_max(const struct p2m_entity *e, const struct p2m_safety *safety)
{
	double cap = e->max;

	if (safety && e->cap == P2M_CAP_TARGET)
		cap = safety->max_target_temp;
	else if (safety && e->cap == P2M_CAP_DRY_HOURS)
		cap = safety->max_drying_hours;
	return cap < e->max ? cap : e->max;
}

int p2m_cmd_number(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v, double *out)
{
	double x, max = p2m_entity_max(e, cmd->safety);

	if (cJSON_IsString(v)) {
		/* Home Assistant sends numbers as text on per-field topics ("45.0"). */
		char *end;
		x = strtod(v->valuestring, &end);
		if (end == v->valuestring || *end)
			return p2m_cmd_reject(cmd, e->key, "expected a number");
	} else if (cJSON_IsNumber(v)) {
		x = v->valuedouble;
	} else {
		return p2m_cmd_reject(cmd, e->key, "expected a number");
	}
	if (!isfinite(x))
		return p2m_cmd_reject(cmd, e->key, "expected a finite number");
	if (max < e->min)
		return p2m_cmd_reject(cmd, e->key, "[safety] %s (%g) is below the lowest value %g",
				      e->cap == P2M_CAP_DRY_HOURS ? "max_drying_hours"
								  : "max_target_temp",
				      max, e->min);
	if (x < e->min || x > max)
		return p2m_cmd_reject(cmd, e->key, "%g is out of range %g..%g", x, e->min, max);
	if (e->vtype == P2M_V_INT && x != floor(x))
		return p2m_cmd_reject(cmd, e->key, "%g is not a whole number", x);
	*out = x;
	return 0;
}

int p2m_cmd_bool(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v, bool *out)
{
	if (cJSON_IsBool(v)) {
		*out = cJSON_IsTrue(v);
		return 0;
	}
	if (cJSON_IsNumber(v) && (v->valuedouble == 0 || v->valuedouble == 1)) {
		*out = v->valuedouble == 1;
		return 0;
	}
	if (cJSON_IsString(v) &&
	    (strcasecmp(v->valuestring, "ON") == 0 || strcasecmp(v->valuestring, "OFF") == 0)) {
		*out = strcasecmp(v->valuestring, "ON") == 0;
		return 0;
	}
	return p2m_cmd_reject(cmd, e->key, "expected ON, OFF, true or false");
}

int p2m_cmd_option(struct p2m_cmd *cmd, const struct p2m_entity *e, const char *const *options,
		   const cJSON *v, int *index)
{
	char list[160] = "";

	if (cJSON_IsString(v))
		for (int i = 0; options[i]; i++)
			if (strcmp(options[i], v->valuestring) == 0) {
				*index = i;
				return 0;
			}
	for (int i = 0; options[i]; i++) {
		size_t used = strlen(list);
		snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", options[i]);
	}
	return p2m_cmd_reject(cmd, e->key, "expected one of: %s", list);
}

int p2m_cmd_press(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v)
{
	if (cJSON_IsString(v) && strcmp(v->valuestring, "PRESS") == 0)
		return 0;
	return p2m_cmd_reject(cmd, e->key, "expected PRESS");
}

int p2m_cmd_text(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v, const char **out)
{
	size_t max = e->max > 0 ? (size_t)e->max : 64, len;

	if (!cJSON_IsString(v))
		return p2m_cmd_reject(cmd, e->key, "expected text");
	len = strlen(v->valuestring);
	if (len < 1 || len > max)
		return p2m_cmd_reject(cmd, e->key, "expected text of 1 to %zu characters", max);
	for (const unsigned char *c = (const unsigned char *)v->valuestring; *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			return p2m_cmd_reject(cmd, e->key, "control characters are not allowed");
	*out = v->valuestring;
	return 0;
}

void p2m_cmd_set_local(struct p2m_cmd *cmd, const char *key, cJSON *value)
{
	if (!cmd->local)
		cmd->local = cJSON_CreateObject();
	if (cJSON_GetObjectItemCaseSensitive(cmd->local, key))
		cJSON_ReplaceItemInObjectCaseSensitive(cmd->local, key, value);
	else
		cJSON_AddItemToObject(cmd->local, key, value);
}

void p2m_cmd_frame_object(struct p2m_cmd *cmd, cJSON *frame)
{
	cJSON_AddItemToArray(cmd->frames, frame);
}

void p2m_cmd_await_reply(struct p2m_cmd *cmd)
{
	cJSON *marker = cJSON_CreateObject();

	cJSON_AddTrueToObject(marker, P2M_AWAIT_REPLY_KEY);
	cJSON_AddItemToArray(cmd->frames, marker);
}

void p2m_cmd_await_reply_named(struct p2m_cmd *cmd, const char *type, int timeout_ms)
{
	cJSON *marker = cJSON_CreateObject();
	cJSON *a = cJSON_AddObjectToObject(marker, P2M_AWAIT_REPLY_KEY);

	cJSON_AddStringToObject(a, "type", type);
	cJSON_AddNumberToObject(a, "timeout_ms", timeout_ms);
	cJSON_AddItemToArray(cmd->frames, marker);
}

void p2m_cmd_send_file(struct p2m_cmd *cmd, const char *path)
{
	cJSON *marker = cJSON_CreateObject();

	cJSON_AddStringToObject(marker, P2M_SEND_FILE_KEY, path);
	cJSON_AddItemToArray(cmd->frames, marker);
}

void p2m_cmd_delay(struct p2m_cmd *cmd, int ms)
{
	cJSON *marker = cJSON_CreateObject();

	cJSON_AddNumberToObject(marker, P2M_DELAY_KEY, ms);
	cJSON_AddItemToArray(cmd->frames, marker);
}

void p2m_command_clear(struct p2m_cmd *cmd)
{
	cJSON_Delete(cmd->frames);
	cmd->frames = NULL;
	cJSON_Delete(cmd->local);
	cmd->local = NULL;
	g_free(cmd->intent);
	cmd->intent = NULL;
}

int p2m_command_plan(struct p2m_cmd *cmd, const cJSON *command)
{
	const struct p2m_driver *d = cmd->driver;
	const cJSON *f;

	cmd->field[0] = cmd->reason[0] = '\0';
	cmd->frames = cJSON_CreateArray();
	cmd->local = NULL;
	cmd->intent = g_malloc0(d->intent_size ? d->intent_size : 1);
	if (d->intent_init)
		d->intent_init(cmd->intent);

	if (!cJSON_IsObject(command) || !command->child) {
		p2m_cmd_reject(cmd, "", "the command names no field");
		goto fail;
	}
	cJSON_ArrayForEach(f, command)
	{
		const struct p2m_entity *e = p2m_entity_find(d, f->string);

		if (!e || !e->write) {
			p2m_cmd_reject(cmd, f->string, e ? "read-only field" : "unknown field");
			goto fail;
		}
		if (e->write(cmd, e, f) != 0)
			goto fail;
	}
	if (d->plan(cmd) != 0)
		goto fail;
	if (cJSON_GetArraySize(cmd->frames) == 0 && !cmd->local) {
		p2m_cmd_reject(cmd, "", "nothing to send");
		goto fail;
	}
	return 0;
fail:
	cJSON_Delete(cmd->frames);
	cmd->frames = NULL;
	cJSON_Delete(cmd->local);
	cmd->local = NULL;
	return -1;
}
