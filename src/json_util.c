/* json_util.c - see json_util.h. */
#include "panda2mqtt/json_util.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void *json_malloc(size_t n)
{
	return g_malloc(n ? n : 1); /* aborts on failure; g_malloc(0) would be NULL */
}

void p2m_json_init(void)
{
	cJSON_Hooks hooks = {.malloc_fn = json_malloc, .free_fn = g_free};

	cJSON_InitHooks(&hooks);
}

const cJSON *p2m_json_field(const cJSON *state, const char *root, const char *field)
{
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(state, root);

	if (!cJSON_IsObject(r))
		return NULL;
	return cJSON_GetObjectItemCaseSensitive(r, field);
}

void p2m_json_merge(cJSON *dst, const cJSON *src)
{
	const cJSON *s;

	cJSON_ArrayForEach(s, src)
	{
		cJSON *d = cJSON_GetObjectItemCaseSensitive(dst, s->string);

		if (d && cJSON_IsObject(d) && cJSON_IsObject(s)) {
			p2m_json_merge(d, s);
			continue;
		}
		cJSON *copy = cJSON_Duplicate(s, true);
		if (!copy)
			continue;
		if (d)
			cJSON_ReplaceItemViaPointer(dst, d, copy);
		else
			cJSON_AddItemToObject(dst, s->string, copy);
	}
}

/* True when a key names a secret (passwords, access codes, tokens, keys). */
static bool is_secret_key(const char *key)
{
	/* Deliberately broad: dropping a harmless field is cheap, leaking a secret is not. */
	static const char *const needles[] = {"pass",  "pwd",	 "psk", "access_code",
					      "token", "secret", "key"};

	if (!key)
		return false;
	for (size_t i = 0; i < sizeof(needles) / sizeof(needles[0]); i++)
		if (strcasestr(key, needles[i]))
			return true;
	return false;
}

cJSON *p2m_json_redacted(const cJSON *v)
{
	cJSON *out;
	const cJSON *c;

	if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
		return cJSON_Duplicate(v, true);
	out = cJSON_IsObject(v) ? cJSON_CreateObject() : cJSON_CreateArray();
	cJSON_ArrayForEach(c, v)
	{
		if (cJSON_IsObject(v) && is_secret_key(c->string))
			continue;
		cJSON *copy = p2m_json_redacted(c);
		if (!copy)
			continue;
		if (cJSON_IsObject(v))
			cJSON_AddItemToObject(out, c->string, copy);
		else
			cJSON_AddItemToArray(out, copy);
	}
	return out;
}

int p2m_json_depth(const cJSON *v, int limit)
{
	int max = 0;
	const cJSON *c;

	if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
		return 0;
	if (limit < 0)
		return 1;
	cJSON_ArrayForEach(c, v)
	{
		int d = p2m_json_depth(c, limit - 1);
		if (d > max)
			max = d;
		if (max > limit)
			break;
	}
	return max + 1;
}

char *p2m_json_print(const cJSON *v)
{
	return cJSON_PrintUnformatted(v);
}

const char *p2m_json_print_buffered(const cJSON *v)
{
	/* one buffer for the process (one thread), grown to the largest payload printed */
	static char *buf;
	static int cap;

	for (;;) {
		if (buf && cJSON_PrintPreallocated((cJSON *)v, buf, cap, false))
			return buf;
		cap = cap ? cap * 2 : 4096;
		g_free(buf);
		buf = g_malloc((size_t)cap);
	}
}
