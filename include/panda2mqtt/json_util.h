/* json_util.h - small cJSON helpers shared by drivers, state and discovery.
 *
 * Owns: safe lookups into a device's merged state, the deep merge of a device
 * frame into that state, and the removal of secrets before anything is published
 * or logged. Does not own: what a field means (that is the drivers' tables). */
#ifndef PANDA2MQTT_JSON_UTIL_H
#define PANDA2MQTT_JSON_UTIL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* state[root][field], or NULL. */
const cJSON *p2m_json_field(const cJSON *state, const char *root, const char *field);

/* Merge every member of src into dst, recursing into objects that exist on both sides;
 * other values (arrays included) replace. */
void p2m_json_merge(cJSON *dst, const cJSON *src);

/* True when a key names a secret (passwords, access codes, tokens, keys). */
bool p2m_json_is_secret_key(const char *key);

/* A deep copy of v with every secret member removed, at any depth. */
cJSON *p2m_json_redacted(const cJSON *v);

/* Depth of nesting of v (a scalar is 0). Stops counting at limit+1. */
int p2m_json_depth(const cJSON *v, int limit);

/* Print unformatted; caller frees. Never NULL for valid input (aborts on OOM like cJSON). */
char *p2m_json_print(const cJSON *v);

/* The same into a buffer the process reuses: valid until the next call, never freed by
 * the caller. For the hot path (every state published), which then allocates nothing to
 * print. */
const char *p2m_json_print_buffered(const cJSON *v);

#endif
