/* fuzz_device.h - what the device targets (fuzz_frame, fuzz_command) share: the device
 * states an input is applied to (snapshots as each firmware sends them), rendering a
 * device's state and discovery the way device_publish.c does, and the properties checked
 * on the result:
 *  - secrets: nothing published (each topic's state, the raw report, and what
 *    discovery takes from the device: its name, firmware, MAC and options) holds a string
 *    that was only ever at a secret-looking or unknown name (fuzz_check_secrets), nor a
 *    fixture secret (SECRET-..., FIXTURE-...) the input did not bring itself; the raw
 *    report holds only what the driver's rows and report_fields allow (fuzz_check_report);
 *  - events: every event a driver hook emits is declared (p2m_event_declared);
 *  - ids, MAC addresses and names the hooks derive have their documented shape;
 *  - [safety]: when the state says the heater is on, the off command plans and, carried
 *    out, switches it off (fuzz_check_safety_off).
 * Fixtures are built once (LLVMFuzzerInitialize) and copied per input. */
#ifndef P2M_FUZZ_DEVICE_H
#define P2M_FUZZ_DEVICE_H

#include "fuzz_common.h"

#include "panda2mqtt/command.h"
#include "panda2mqtt/families.h"
#include "panda2mqtt/entity.h"
#include "panda2mqtt/events.h"
#include "panda2mqtt/ha.h"
#include "panda2mqtt/safety.h"

#include <ctype.h>
#include <strings.h>

/* A whole first frame as the real firmware sends it (the shape of
 * tests/fixtures/panda_breath/first-frame-v1.0.3.json: no cal_* fields, no
 * ptc_heater_status), with scan results and made-up secrets (SECRET-...). set_temp: ""
 * on V1.0.0 (it keeps its target in temp), else "\"set_temp\":40,"; extra: more
 * settings members, each with a leading comma. */
#define FUZZ_SNAPSHOT(fw, work_on, work_mode, isrunning, set_temp, extra)                          \
	"{\"settings\":{\"fw_version\":\"" fw "\",\"printer_type\":1,\"work_on\":" work_on         \
	",\"work_mode\":" work_mode ",\"isrunning\":" isrunning "," set_temp                       \
	"\"temp\":40,\"hotbedtemp\":80,\"filtertemp\":30,\"custom_temp\":60,\"custom_timer\":12,"  \
	"\"filament_temp\":60,\"filament_timer\":12,\"filament_drying_mode\":3,"                   \
	"\"remaining_seconds\":3600,\"warehouse_temper\":30,\"ptc_sensor_status\":0,"              \
	"\"warehouse_sensor_status\":0,\"language\":\"en\"" extra "},"                             \
	"\"printer\":{\"state\":3,\"name\":\"X1C\",\"ip\":\"10.0.0.9\",\"port\":8883,"             \
	"\"host\":\"\",\"sn\":\"01S\",\"access_code\":\"SECRET-AC\","                              \
	"\"list\":[{\"name\":\"X1C\",\"sn\":\"01S\",\"ip\":\"10.0.0.9\","                          \
	"\"access_code\":\"SECRET-LIST-AC\"},{\"name\":\"Voron\",\"ip\":\"10.0.0.7\","             \
	"\"port\":7125}]},"                                                                        \
	"\"wifi\":{\"ssid\":\"Net\",\"password\":\"SECRET-WIFI\","                                 \
	"\"list\":[{\"ssid\":\"Net2\",\"rssi\":-40},{\"ssid\":\"Other\",\"rssi\":-70}]},"          \
	"\"ap\":{\"ssid\":\"Panda_Breath_3C84279A1B2C\",\"password\":\"SECRET-AP\","               \
	"\"ip\":\"192.168.254.1\",\"on\":0},"                                                      \
	"\"sta\":{\"ip\":\"10.0.0.5\",\"hostname\":\"PandaBreath\",\"state\":3}"

#define FUZZ_SET_TEMP "\"set_temp\":40,"

/* The Panda Breath states inputs are applied to. The first is a device that has not
 * reported yet (the frame is then its first, snapshot or not); NULL is the fixture file
 * itself. */
static const char *const fuzz_bases[] = {
    "{}",
    FUZZ_SNAPSHOT("V1.0.0", "0", "2", "0", "", "") "}", /* V1.0.0: temp, 0/1, off */
    NULL, /* first-frame-v1.0.3.json: V1.0.3 heating, FIXTURE-... secrets */
    FUZZ_SNAPSHOT("V1.0.3", "true", "3", "1", FUZZ_SET_TEMP, "") "}",  /* drying */
    FUZZ_SNAPSHOT("V1.0.1", "false", "1", "0", FUZZ_SET_TEMP, "") "}", /* off, Auto mode */
    FUZZ_SNAPSHOT("V1.0.4", "true", "2", "0", FUZZ_SET_TEMP, "")       /* own HA link */
    ",\"ha\":{\"ip\":\"10.0.0.2\",\"port\":1883,\"user\":\"mqtt-user\","
    "\"password\":\"SECRET-HA\",\"state\":0}}",
    /* the base protocol document's dialect: cal_* readings, ptc_heater_status 0 */
    FUZZ_SNAPSHOT("V1.0.3", "true", "2", "0", FUZZ_SET_TEMP,
		  ",\"cal_warehouse_temp\":30.0,\"cal_ptc_temp\":52.5,\"ptc_heater_status\":0") "}",
    /* a heater fault while heating: a [safety] rule holds */
    FUZZ_SNAPSHOT("V1.0.3", "true", "2", "0", FUZZ_SET_TEMP, ",\"ptc_heater_status\":1") "}",
};
#define FUZZ_N_BASES	   (sizeof(fuzz_bases) / sizeof(fuzz_bases[0]))
#define FUZZ_FIXTURE_FRAME "panda_breath/first-frame-v1.0.3.json"

/* A PTalk after its handshake (docs/protocol-ptalk.md). */
#define FUZZ_PTALK_HANDSHAKE                                                                       \
	"{\"cmd\":\"device_handshake\",\"device_id\":\"A1:B2:C3:D4:E5:F6\","                       \
	"\"firmware_version\":\"1.0.1\",\"device_name\":\"Kitchen\",\"battery_percent\":85,"       \
	"\"connectivity_state\":\"ONLINE\",\"wifi_password\":\"SECRET-PTALK-WIFI\","               \
	"\"pairing_code\":\"SECRET-PTALK-PIN\"}"

/* Values the gateway holds for a Panda Breath: selections, and (the second) typed secrets
 * and a Klipper port. */
#define FUZZ_LOCAL_PLAIN "{\"wifi_selected\":\"Net2\",\"printer_selected\":\"X1C\"}"
#define FUZZ_LOCAL_HELD                                                                            \
	"{\"wifi_selected\":\"Net2\",\"printer_selected\":\"Voron\","                              \
	"\"wifi_password\":\"SECRET-LOCAL-WIFI\",\"printer_access_code\":\"SECRET-LOCAL-AC\","     \
	"\"klipper_port\":7125}"

/* [safety] as configured by default, max_drying_hours included (0 would refuse every
 * drying run), and a strict one. */
#define FUZZ_SAFETY                                                                                \
	{                                                                                          \
		.max_target_temp = 60, .max_chamber_temp = 65, .sensor_fault_cutoff = true,        \
		.heater_fault_cutoff = true, .max_drying_hours = 99                                \
	}
#define FUZZ_SAFETY_STRICT                                                                         \
	{                                                                                          \
		.max_target_temp = 45, .max_chamber_temp = 50, .sensor_fault_cutoff = true,        \
		.heater_fault_cutoff = true, .max_drying_hours = 24                                \
	}

/* A firmware image the gateway could send a PTalk. */
static const struct p2m_update_view fuzz_update = {
    .latest = "9.9.9", .path = "/nonexistent/ptalk-9.9.9.bin", .percent = -1};

#define FUZZ_MAX_ROWS 128

/* ---- names that may be published --------------------------------------------------- */

/* A member name that looks like it holds a secret: the daemon's deny-list and then some
 * (issue 22's F1 names PIN, accesscode, access-code, lan_code, code). Broad on purpose:
 * it only decides what the property looks for. */
FUZZ_HELPER bool fuzz_secret_name(const char *name)
{
	static const char *const needles[] = {
	    /* p2m_json_is_secret_key's */
	    "pass", "pwd", "psk", "access_code", "token", "secret", "key",
	    /* and more */
	    "pin", "code", "auth", "cred", "cert", "salt", "session", "private", "cookie"};
	char low[P2M_MAX_STRING_BYTES + 1];
	size_t n = 0;

	if (!name)
		return false;
	for (; name[n] && n < P2M_MAX_STRING_BYTES; n++)
		low[n] = (char)tolower((unsigned char)name[n]);
	low[n] = '\0';
	if (name[n])
		return true; /* longer than any name that is kept: treated as secret */
	for (size_t i = 0; i < sizeof(needles) / sizeof(needles[0]); i++)
		if (fuzz_contains(low, n, needles[i], strlen(needles[i])))
			return true;
	return false;
}

FUZZ_HELPER bool fuzz_known_root(const struct p2m_driver *d, const char *root)
{
	for (const char *const *r = d->roots; r && *r; r++)
		if (fuzz_streq(*r, root))
			return true;
	return false;
}

/* The driver's own word on root.field (written here again, not taken from entity.c): a
 * row reads it and it is no secret's, or report_fields lists it. */
/* The first characters and lengths of every field name a driver's rows and
 * report_fields name: most names a fuzzer makes up are turned away by these alone. */
struct fuzz_names {
	const struct p2m_driver *d;
	bool first[256], len[P2M_MAX_STRING_BYTES + 2];
};

FUZZ_HELPER void fuzz_names_note(struct fuzz_names *n, const char *name, size_t len)
{
	n->first[(unsigned char)name[0]] = true;
	n->len[len <= P2M_MAX_STRING_BYTES ? len : P2M_MAX_STRING_BYTES + 1] = true;
}

FUZZ_HELPER const struct fuzz_names *fuzz_names_of(const struct p2m_driver *d)
{
	static struct fuzz_names cache[4];

	for (size_t i = 0; i < 4; i++) {
		struct fuzz_names *n = &cache[i];

		if (n->d == d)
			return n;
		if (n->d)
			continue;
		n->d = d;
		for (size_t k = 0; k < d->n_entities; k++) {
			const struct p2m_entity *e = &d->entities[k];

			if (e->field)
				fuzz_names_note(n, e->field, strlen(e->field));
			if (e->fallback)
				fuzz_names_note(n, e->fallback, strlen(e->fallback));
		}
		for (const char *const *a = d->report_fields; a && *a; a++) {
			const char *f = strchr(*a, '.');

			if (f)
				fuzz_names_note(n, f + 1, strcspn(f + 1, "["));
		}
		return n;
	}
	abort(); /* more drivers than the cache holds */
}

FUZZ_HELPER bool fuzz_reportable(const struct p2m_driver *d, const char *root, const char *field)
{
	const struct fuzz_names *names = fuzz_names_of(d);
	size_t fl = strlen(field);
	char path[600];

	if (!names->first[(unsigned char)field[0]] ||
	    !names->len[fl <= P2M_MAX_STRING_BYTES ? fl : P2M_MAX_STRING_BYTES + 1])
		return false;
	for (size_t i = 0; i < d->n_entities; i++) {
		const struct p2m_entity *e = &d->entities[i];

		if (e->root && fuzz_streq(e->root, root) &&
		    ((e->field && fuzz_streq(e->field, field)) ||
		     (e->fallback && fuzz_streq(e->fallback, field))))
			return e->vtype != P2M_V_SECRET;
	}
	snprintf(path, sizeof(path), "%s.%s", root, field);
	for (const char *const *a = d->report_fields; a && *a; a++)
		if (fuzz_streq(*a, path))
			return true;
	return false;
}

/* Does report_fields list member of the objects in the array root.field ("root.field[].m");
 * member NULL: any member of it? */
FUZZ_HELPER bool fuzz_list_allowed(const struct p2m_driver *d, const char *root, const char *field,
				   const char *member)
{
	char prefix[600];
	size_t n = (size_t)snprintf(prefix, sizeof(prefix), "%s.%s[].", root, field);

	if (n >= sizeof(prefix))
		return false;
	for (const char *const *a = d->report_fields; a && *a; a++)
		if (strlen(*a) >= n && fuzz_contains(*a, n, prefix, n) &&
		    (!member || fuzz_streq(*a + n, member)))
			return true;
	return false;
}

/* ---- secrets: what the input put where nothing may be published --------------------- */

struct fuzz_strs {
	const char **v;
	size_t n, cap;
};

FUZZ_HELPER void fuzz_strs_add(struct fuzz_strs *s, const char *v)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (!s->v)
			abort();
	}
	s->v[s->n++] = v;
}

/* Every string value in v: collected into out, or rotated in place (out NULL). */
FUZZ_HELPER void fuzz_mark(cJSON *v, struct fuzz_strs *out)
{
	cJSON *c;

	if (cJSON_IsString(v) && v->valuestring) {
		if (out)
			fuzz_strs_add(out, v->valuestring);
		else
			fuzz_rotate(v->valuestring);
	}
	cJSON_ArrayForEach(c, v)
	{
		fuzz_mark(c, out);
	}
}

/* The strings of a frame (or of a stored state, which has a frame's shape) that may
 * never be published: under a secret-looking name, or anywhere the driver's rows and
 * report_fields do not name (an unknown root or member, an object member, an array
 * member the allow-list does not list). Collected into tainted, or rotated in place
 * (tainted NULL); the others, which are published as they are, collected into clean
 * (NULL: not collected). */
FUZZ_HELPER void fuzz_taint(const struct p2m_driver *d, cJSON *frame, struct fuzz_strs *tainted,
			    struct fuzz_strs *clean)
{
	cJSON *root, *f, *item, *m;

	if (!cJSON_IsObject(frame)) {
		fuzz_mark(frame, tainted);
		return;
	}
	cJSON_ArrayForEach(root, frame)
	{
		if (!cJSON_IsObject(root) || !fuzz_known_root(d, root->string)) {
			fuzz_mark(root, tainted);
			continue;
		}
		cJSON_ArrayForEach(f, root)
		{
			if (fuzz_secret_name(f->string)) {
				fuzz_mark(f, tainted);
			} else if (cJSON_IsArray(f) &&
				   fuzz_list_allowed(d, root->string, f->string, NULL)) {
				cJSON_ArrayForEach(item, f)
				{
					if (!cJSON_IsObject(item)) {
						fuzz_mark(item, tainted);
						continue;
					}
					cJSON_ArrayForEach(m, item)
					{
						if (cJSON_IsObject(m) || cJSON_IsArray(m) ||
						    fuzz_secret_name(m->string) ||
						    !fuzz_list_allowed(d, root->string, f->string,
								       m->string))
							fuzz_mark(m, tainted);
						else if (clean)
							fuzz_mark(m, clean);
					}
				}
			} else if (cJSON_IsObject(f) || cJSON_IsArray(f) ||
				   !fuzz_reportable(d, root->string, f->string)) {
				fuzz_mark(f, tainted);
			} else if (clean) {
				fuzz_mark(f, clean);
			}
		}
	}
}

/* A value worth looking for: four bytes or more, one of them a letter or digit (what
 * fuzz_rotate changes). */
FUZZ_HELPER bool fuzz_findable(const char *s)
{
	size_t n = strlen(s);

	if (n < 4)
		return false;
	for (; *s; s++)
		if (isalnum((unsigned char)*s))
			return true;
	return false;
}

/* The fixture secrets are spelled so that they can be searched for. */
FUZZ_HELPER bool fuzz_has_fixture_secret(const void *data, size_t len)
{
	return fuzz_contains(data, len, "SECRET-", 7) || fuzz_contains(data, len, "FIXTURE-", 8);
}

/* The property. out: the strings published for the input; secrets: the candidates
 * (strings the input and the state it was applied to hold at names that may not be
 * published); clean: the strings the device's state now holds where they are published
 * as they are (fuzz_taint on the merged state). A candidate found in out is explained
 * when it is part of a clean string. Else rotated(ud, out_rot) publishes the same again
 * with every candidate rotated (fuzz_rotate; called at most once): a candidate in out
 * but not in out_rot is published because of its own value, a leak; one that is in
 * both comes from elsewhere (a constant such as "heating", or a value derived from a
 * number). input: the raw input; a fixture secret in out when the input carries none is
 * a leak at once. */
static inline void fuzz_check_secrets(const char *what, const struct fuzz_text *out,
				      const struct fuzz_strs *const *secrets, size_t n_lists,
				      const struct fuzz_strs *clean,
				      void (*rotated)(void *ud, struct fuzz_text *out_rot),
				      void *ud, const void *input, size_t input_len)
{
	struct fuzz_text rot = {0};
	bool have_rot = false;

	if (!fuzz_has_fixture_secret(input, input_len) &&
	    (fuzz_text_has(out, "SECRET-") || fuzz_text_has(out, "FIXTURE-")))
		fuzz_fail("%s: a fixture secret is published", what);
	for (size_t l = 0; l < n_lists; l++)
		for (size_t i = 0; secrets[l] && i < secrets[l]->n; i++) {
			const char *s = secrets[l]->v[i];
			size_t n = strlen(s);
			bool explained = false;

			if (!fuzz_findable(s) || !fuzz_text_has(out, s))
				continue;
			for (size_t c = 0; c < clean->n && !explained; c++)
				explained = fuzz_contains(clean->v[c], strlen(clean->v[c]), s, n);
			if (explained)
				continue;
			if (!have_rot) {
				rotated(ud, &rot);
				have_rot = true;
			}
			if (!fuzz_text_has(&rot, s))
				fuzz_fail("%s: '%.300s', held at a name that may not be published, "
					  "is published",
					  what, s);
		}
	fuzz_text_free(&rot);
}

/* ---- the raw report ---------------------------------------------------------------- */

/* The raw report (its own topic): only what fuzz_reportable allows, never an object, never a name
 * that looks secret. */
FUZZ_HELPER void fuzz_check_report(const struct p2m_driver *d, const cJSON *report)
{
	const cJSON *root, *m, *item, *x;

	if (!cJSON_IsObject(report))
		fuzz_fail("the raw report is not an object");
	cJSON_ArrayForEach(root, report)
	{
		if (!cJSON_IsObject(root) || !fuzz_known_root(d, root->string))
			fuzz_fail("the report has a root '%s' that is no object of the driver's",
				  root->string);
		cJSON_ArrayForEach(m, root)
		{
			if (cJSON_IsObject(m) || fuzz_secret_name(m->string))
				fuzz_fail("the report publishes %s.%s", root->string, m->string);
			if (!cJSON_IsArray(m)) {
				if (!fuzz_reportable(d, root->string, m->string))
					fuzz_fail("the report publishes %s.%s, not allowed",
						  root->string, m->string);
				continue;
			}
			if (!fuzz_list_allowed(d, root->string, m->string, NULL))
				fuzz_fail("the report publishes the list %s.%s", root->string,
					  m->string);
			cJSON_ArrayForEach(item, m)
			{
				if (!cJSON_IsObject(item))
					fuzz_fail("the list %s.%s has a non-object", root->string,
						  m->string);
				cJSON_ArrayForEach(x, item)
				{
					if (cJSON_IsObject(x) || cJSON_IsArray(x) ||
					    fuzz_secret_name(x->string) ||
					    !fuzz_list_allowed(d, root->string, m->string,
							       x->string))
						fuzz_fail("the report publishes %s.%s[].%s",
							  root->string, m->string, x->string);
				}
			}
		}
	}
}

/* ---- events ------------------------------------------------------------------------ */

/* The emit() given to driver hooks (ud: the driver): every event's type is declared,
 * or Home Assistant would drop it. */
static inline void fuzz_emit(void *ud, cJSON *event)
{
	const struct p2m_driver *d = ud;
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(event, P2M_EVENT_TYPE_KEY);

	if (!cJSON_IsString(type) || !p2m_event_declared(d, type->valuestring)) {
		char *s = p2m_json_print(event);
		fuzz_fail("%s emits an event whose type is not declared: %s", d->name, s);
	}
	fuzz_consume(event);
}

/* ---- a device ---------------------------------------------------------------------- */

/* What device_publish.c reads to publish a device. */
struct fuzz_dev {
	const struct p2m_driver *drv;
	cJSON *dev;
	const cJSON *local;
	bool seen[FUZZ_MAX_ROWS];
	const struct p2m_safety *safety;
};

static inline struct p2m_view fuzz_view(const struct fuzz_dev *d)
{
	return (struct p2m_view){.dev = d->dev,
				 .local = d->local,
				 .now = 1000000,
				 .read_at = 999000,
				 .update = d->drv->dials_in ? &fuzz_update : NULL,
				 .seen = d->seen};
}

FUZZ_HELPER bool fuzz_valid_id(const struct p2m_driver *drv, const char *id)
{
	size_t n = strlen(id), np = strlen(drv->name);

	return n <= P2M_ID_MAX && n > np + 1 && strncmp(id, drv->name, np) == 0 && id[np] == '_' &&
	       strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

FUZZ_HELPER bool fuzz_valid_mac(const char *m)
{
	if (strlen(m) != 17)
		return false;
	for (int i = 0; i < 17; i++)
		if (i % 3 == 2 ? m[i] != ':' : !strchr("0123456789abcdef", m[i]) || !m[i])
			return false;
	return true;
}

/* The state device_publish.c publishes, and its discovery: what they take from the
 * device goes into out (NULL: nowhere): the state's strings and, of discovery, the device
 * block and every option list. Like device_publish.c, discovery is built only when its
 * inputs (p2m_ha_discovery_inputs) differ from base_inputs (NULL: always), or when
 * force; and only when disc is not NULL: *disc is then its payload, or NULL when not
 * built. The hooks are checked on the way. Returns the discovery inputs; the caller
 * frees them. */
static inline char *fuzz_render(const struct fuzz_dev *d, struct fuzz_text *out,
				const char *base_inputs, bool force, char **disc)
{
	const struct p2m_driver *drv = d->drv;
	struct p2m_view view = fuzz_view(d);
	char id[P2M_ID_MAX + 1], mac[32];
	const char *own = drv->display_name ? drv->display_name(d->dev) : NULL;
	bool has_mac = drv->mac_address && drv->mac_address(d->dev, mac, sizeof(mac));
	struct p2m_ha_device info;
	cJSON *state, *dj, *c;
	char *inputs;

	if (drv->device_id(d->dev, id, sizeof(id)) && !fuzz_valid_id(drv, id))
		fuzz_fail("%s: device_id gives '%s', not a valid id", drv->name, id);
	if (has_mac && !fuzz_valid_mac(mac))
		fuzz_fail("%s: mac_address gives '%s'", drv->name, mac);
	if (own && (!own[0] || strlen(own) > P2M_MAX_STRING_BYTES))
		fuzz_fail("%s: display_name gives '%.300s'", drv->name, own);
	if (drv->has_own_ha_link)
		(void)drv->has_own_ha_link(d->dev);
	/* what device_publish.c publishes: each topic's state, and the report on its own */
	for (int t = 0; t < P2M_TOPICS; t++) {
		state = p2m_entity_topic_state(drv, &view, (enum p2m_topic)t);
		if (out)
			fuzz_text_add_strings(out, state);
		fuzz_consume(state); /* printed, as it is published */
	}
	state = p2m_entity_report(drv, d->dev);
	fuzz_check_report(drv, state);
	if (out)
		fuzz_text_add_strings(out, state);
	fuzz_consume(state);
	info = (struct p2m_ha_device){
	    .id = "fuzz",
	    .name = own ? own : drv->model,
	    .mac = has_mac ? mac : NULL,
	    .base_topic = "panda2mqtt",
	    .fw_version = drv->fw_version(d->dev),
	    .host = "127.0.0.1",
	    .port = drv->dials_in ? 0 : 80,
	    .safety = d->safety,
	    .view = &view,
	};
	inputs = p2m_ha_discovery_inputs(drv, &info);
	if (!disc)
		return inputs;
	*disc = NULL;
	if (!force && base_inputs && strcmp(inputs, base_inputs) == 0)
		return inputs;
	dj = p2m_ha_discovery(drv, &info);
	if (out) {
		fuzz_text_add_strings(out, cJSON_GetObjectItemCaseSensitive(dj, "device"));
		cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(dj, "components"))
		{
			fuzz_text_add_strings(out, cJSON_GetObjectItemCaseSensitive(c, "options"));
		}
	}
	*disc = p2m_json_print(dj);
	cJSON_Delete(dj);
	return inputs;
}

/* Merge a frame as device.c's p2m_device_take_frame does, with the driver's events from
 * the state before and after (checked by fuzz_emit). Returns what the merge returns. */
static inline int fuzz_take_frame(struct fuzz_dev *d, const cJSON *frame, bool whole)
{
	cJSON *before = d->drv->events && d->dev->child ? cJSON_Duplicate(d->dev, true) : NULL;
	int rc = p2m_entity_merge_frame(d->drv, "fuzz", d->dev, frame,
					whole && d->drv->snapshot_is_whole);

	p2m_entity_note_seen(d->drv, d->dev, d->seen);
	if (before)
		d->drv->events(before, d->dev, fuzz_emit, (void *)d->drv);
	cJSON_Delete(before);
	return rc;
}

/* The device reporting back what it was sent: each planned frame (markers skipped) is
 * merged into the state as a report of the same fields. Returns the problems found. */
static inline int fuzz_echo_frames(const struct p2m_driver *drv, cJSON *dev, const cJSON *frames)
{
	const cJSON *f;
	int problems = 0;

	cJSON_ArrayForEach(f, frames)
	{
		if (f->child && f->child->string && f->child->string[0] == '@')
			continue;
		problems += p2m_entity_merge_frame(drv, "fuzz", dev, f, false);
	}
	return problems;
}

/* The [safety] rules as device_safety.c applies them after every report: a rule that
 * trips is one that holds, while heating; when the device is heating, the driver's off
 * command (off: parsed once) must plan, and once the device reports having done what it
 * was sent it must no longer be heating (else a cut-off would not cut off). */
static inline void fuzz_check_safety_off(const struct fuzz_dev *d, const cJSON *off)
{
	const struct p2m_driver *drv = d->drv;
	struct p2m_heat_status h = {0};
	struct p2m_view view = fuzz_view(d);
	struct p2m_cmd cmd = {.driver = drv, .dev = d->dev, .view = &view, .safety = d->safety};
	enum p2m_trip trip, hold;
	cJSON *after;

	if (!drv->heat_status || !drv->off_command)
		return;
	drv->heat_status(d->dev, &h);
	trip = p2m_safety_check(d->safety, &h);
	hold = p2m_safety_hold(d->safety, &h);
	if (trip != (h.heating ? hold : P2M_TRIP_NONE))
		fuzz_fail("safety: p2m_safety_check says %s, p2m_safety_hold %s, heating %d",
			  p2m_trip_rule(trip), p2m_trip_rule(hold), h.heating);
	(void)p2m_trip_reason(trip);
	(void)p2m_trip_condition(hold);
	if (!h.heating)
		return;
	if (p2m_command_plan(&cmd, off) != 0 || cJSON_GetArraySize(cmd.frames) == 0) {
		char *s = p2m_json_print(d->dev);
		fuzz_fail("the off command cannot be planned while heating (%s)\nstate: %s",
			  cmd.reason, s);
	}
	after = cJSON_Duplicate(d->dev, true);
	(void)fuzz_echo_frames(drv, after, cmd.frames);
	drv->heat_status(after, &h);
	if (h.heating) {
		char *s = p2m_json_print(d->dev), *f = p2m_json_print(cmd.frames);
		fuzz_fail("still heating after the off command was carried out\nstate: %s\n"
			  "off frames: %s",
			  s, f);
	}
	cJSON_Delete(after);
	p2m_command_clear(&cmd);
}

/* ---- the fixtures ------------------------------------------------------------------ */

/* One state an input is applied to, with what is precomputed of it. */
struct fuzz_base {
	struct fuzz_dev d;
	cJSON *rot;		  /* the state with its secrets rotated (fuzz_taint) */
	struct fuzz_strs secrets; /* its strings that may never be published */
	char *inputs, *disc;	  /* its discovery inputs and payload */
};

struct fuzz_fixtures {
	struct fuzz_base pb[FUZZ_N_BASES]; /* Panda Breath states */
	struct fuzz_base pt[2];		   /* a PTalk: new, and after its handshake */
	cJSON *local[2], *local_rot[2];	   /* FUZZ_LOCAL_PLAIN, FUZZ_LOCAL_HELD */
	struct fuzz_strs local_secrets[2];
	cJSON *off; /* the Panda Breath's off command */
};

static inline void fuzz_base_load(struct fuzz_base *b, const struct p2m_driver *drv,
				  const cJSON *frame, const cJSON *local,
				  const struct p2m_safety *safety)
{
	b->d.drv = drv;
	b->d.dev = cJSON_CreateObject();
	b->d.local = local;
	b->d.safety = safety;
	if (drv->n_entities > FUZZ_MAX_ROWS)
		abort();
	if (p2m_entity_merge_frame(drv, "fuzz", b->d.dev, frame, drv->snapshot_is_whole) != 0)
		abort(); /* a fixture the driver does not take whole */
	p2m_entity_note_seen(drv, b->d.dev, b->d.seen);
	fuzz_taint(drv, b->d.dev, &b->secrets, NULL);
	b->rot = cJSON_Duplicate(b->d.dev, true);
	fuzz_taint(drv, b->rot, NULL, NULL);
	b->inputs = fuzz_render(&b->d, NULL, NULL, true, &b->disc);
}

/* The PTalk's state after a message: its frame (message()), merged. */
static inline cJSON *fuzz_ptalk_frame(const cJSON *msg, const char *request)
{
	cJSON *frame = NULL;

	(void)p2m_driver_ptalk.message(msg, request, &frame, fuzz_emit, (void *)&p2m_driver_ptalk);
	return frame;
}

static inline void fuzz_fixtures_load(struct fuzz_fixtures *f, const struct p2m_safety *safety)
{
	const char *locals[2] = {FUZZ_LOCAL_PLAIN, FUZZ_LOCAL_HELD};
	cJSON *frame, *hs;
	char *text;

	fuzz_quiet_logs();
	for (size_t i = 0; i < 2; i++) {
		cJSON *secret;

		f->local[i] = fuzz_parse_fixture(locals[i]);
		f->local_rot[i] = cJSON_Duplicate(f->local[i], true);
		cJSON_ArrayForEach(secret, f->local_rot[i])
		{
			if (fuzz_secret_name(secret->string))
				fuzz_mark(secret, NULL);
		}
		cJSON_ArrayForEach(secret, f->local[i])
		{
			if (fuzz_secret_name(secret->string))
				fuzz_mark(secret, &f->local_secrets[i]);
		}
	}
	for (size_t i = 0; i < FUZZ_N_BASES; i++) {
		text =
		    fuzz_bases[i] ? strdup(fuzz_bases[i]) : fuzz_read_fixture(FUZZ_FIXTURE_FRAME);
		frame = fuzz_parse_fixture(text);
		fuzz_base_load(&f->pb[i], &p2m_driver_panda_breath, frame, f->local[0], safety);
		cJSON_Delete(frame);
		free(text);
	}
	frame = cJSON_CreateObject();
	fuzz_base_load(&f->pt[0], &p2m_driver_ptalk, frame, NULL, safety);
	cJSON_Delete(frame);
	hs = fuzz_parse_fixture(FUZZ_PTALK_HANDSHAKE);
	frame = fuzz_ptalk_frame(hs, NULL);
	if (!frame)
		abort();
	fuzz_base_load(&f->pt[1], &p2m_driver_ptalk, frame, NULL, safety);
	cJSON_Delete(frame);
	cJSON_Delete(hs);
	f->off = fuzz_parse_fixture(p2m_driver_panda_breath.off_command);
}

/* A copy of a base to apply an input to. */
static inline struct fuzz_dev fuzz_dev_copy(const struct fuzz_base *b, const cJSON *local,
					    const struct p2m_safety *safety)
{
	struct fuzz_dev d = b->d;

	d.dev = cJSON_Duplicate(b->d.dev, true);
	if (!d.dev)
		abort();
	d.local = local;
	d.safety = safety;
	return d;
}

#endif
