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

/* The out-of-memory policy (docs/DEVELOPING.md): an allocation that fails aborts the
 * process, as GLib's g_malloc does, and the service manager restarts it. This makes
 * cJSON follow it (its allocations go through g_malloc; cJSON otherwise returns NULL
 * and its Add functions silently drop members). Call once, first thing in main().
 * Memory from cJSON, GLib and libc comes from the same heap (GLib >= 2.46 uses the
 * system malloc), so cJSON_free, g_free and free are interchangeable; the code still
 * frees each block with its allocator's own function. */
void p2m_json_init(void);

/* state[root][field], or NULL. */
const cJSON *p2m_json_field(const cJSON *state, const char *root, const char *field);

/* Merge every member of src into dst, recursing into objects that exist on both sides;
 * other values (arrays included) replace. */
void p2m_json_merge(cJSON *dst, const cJSON *src);

/* A deep copy of v with every secret member removed, at any depth. */
cJSON *p2m_json_redacted(const cJSON *v);

/* Depth of nesting of v (a scalar is 0). Stops counting at limit+1. */
int p2m_json_depth(const cJSON *v, int limit);

/* Print unformatted; caller frees with cJSON_free. Never NULL. */
char *p2m_json_print(const cJSON *v);

/* The same into a buffer the process reuses: valid until the next call, never freed by
 * the caller. For the hot path (every state published), which then allocates nothing to
 * print. */
const char *p2m_json_print_buffered(const cJSON *v);

#endif
