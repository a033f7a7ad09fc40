/* fuzz_dialin.c - libFuzzer target: what a connection to the [dialin] endpoint presents
 * before it is a device (dialin_handshake.h).
 *
 * Input layout:
 *   byte 0, bits 0-1: the token configured: 0 none, 1 FUZZ_TOKEN, 2 the first line of the
 *                     rest (as config.c takes it: at least 16 bytes, else none), 3 as 1
 *   byte 0, bit 2:    the connection's URL has a "token=" argument (the next line)
 *   byte 0, bit 3:    it sends an Authorization header (the next line)
 *   byte 0, bits 4-5: the [dialin] allow list: 0 none, 1 the id the handshake gives, 2 its
 *                     MAC upper case with ':' (and another), 3 the next line, split at
 *                     ',' as config.c splits it (entries of at most P2M_ID_MAX bytes)
 *   the rest:         those lines, each ended by '\n' (a line is a C string: cut at its
 *                     first NUL), then the first WebSocket message, as sent.
 * So "0{...}" is a bare handshake and "\x0c" "url\nBearer x\n{...}" one with both
 * credentials.
 * Checked:
 *  - p2m_dialin_token_ok says what ws.c promises (a URL token decides when present, else
 *    "Bearer <token>"), and p2m_secret_equal is string equality;
 *  - p2m_dialin_identify: unknown exactly when the text is no dial-in family's handshake
 *    (p2m_family_for_snapshot), the family a dial-in one whose is_snapshot() takes it; an
 *    id only with OK, then [a-z0-9_-], the family's prefix, at most P2M_ID_MAX;
 *  - p2m_dialin_allowed: an empty list allows everyone; a list allows the id exactly when
 *    an entry names it or its MAC (':' and '-' ignored, any case). */
#include "fuzz_common.h"

#include "panda2mqtt/dialin_handshake.h"
#include "panda2mqtt/families.h"

#include <ctype.h>

#define FUZZ_TOKEN "FIXTURE-DIALIN-TOKEN-0123456789"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	return 0;
}

/* The next line of [*p, end): NUL-terminated copy (cut at a NUL), or NULL at the end. */
static char *next_line(const char **p, const char *end)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	char *line;

	if (!nl)
		return NULL;
	line = strndup(*p, (size_t)(nl - *p));
	if (!line)
		abort();
	*p = nl + 1;
	return line;
}

static bool reference_token_ok(const char *token, const char *url, const char *auth)
{
	if (!token)
		return true;
	if (url)
		return strcmp(url, token) == 0;
	return auth && strncmp(auth, "Bearer ", 7) == 0 && strcmp(auth + 7, token) == 0;
}

/* "A1:b2-C3" -> "a1b2c3" */
static void norm(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (; *in && o + 1 < len; in++)
		if (*in != ':' && *in != '-')
			out[o++] = (char)tolower((unsigned char)*in);
	out[o] = '\0';
}

static void check_allowed(const struct p2m_driver *drv, const char *id, char **list, size_t n)
{
	struct p2m_dialin_conf conf = {.allow = list, .n_allow = n};
	char a[P2M_ID_MAX + 1], b[P2M_ID_MAX + 1], w[P2M_ID_MAX + 1];
	size_t np = strlen(drv->name);
	bool want = n == 0;

	norm(id, a, sizeof(a));
	norm(id + np + 1, b, sizeof(b));
	for (size_t i = 0; i < n && !want; i++) {
		norm(list[i], w, sizeof(w));
		want = strcmp(w, a) == 0 || strcmp(w, b) == 0;
	}
	if (p2m_dialin_allowed(&conf, drv, id) != want)
		fuzz_fail("p2m_dialin_allowed says %d for %s with %zu entries", !want, id, n);
}

/* The id's MAC as a user would write it in allow: upper case, ':' between pairs. */
static void mac_form(const char *bare, char *out, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; bare[i] && o + 2 < len; i++) {
		if (i && i % 2 == 0)
			out[o++] = ':';
		out[o++] = (char)toupper((unsigned char)bare[i]);
	}
	out[o] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data + 1, *end = (const char *)data + size;
	char *token_line = NULL, *url = NULL, *auth = NULL, *allow_line = NULL;
	const char *token = NULL;
	char *list[256], id[P2M_ID_MAX + 1], mac[2 * P2M_ID_MAX + 1], empty[1] = "";
	size_t n_list = 0;
	const struct p2m_driver *drv, *want;
	enum p2m_handshake hs;
	cJSON *msg;
	uint8_t sel;

	if (size < 1)
		return 0;
	sel = data[0];
	if ((sel & 3) == 2) {
		token_line = next_line(&p, end);
		token = token_line && strlen(token_line) >= 16 ? token_line : NULL;
	} else if (sel & 1) {
		token = FUZZ_TOKEN;
	}
	if (sel & 4)
		url = next_line(&p, end);
	if (sel & 8)
		auth = next_line(&p, end);
	if (((sel >> 4) & 3) == 3)
		allow_line = next_line(&p, end);

	/* the token */
	if (p2m_dialin_token_ok(token, url, auth) != reference_token_ok(token, url, auth))
		fuzz_fail("p2m_dialin_token_ok('%s', '%s', '%s') is wrong",
			  token ? token : "(none)", url ? url : "(none)", auth ? auth : "(none)");
	if (url && p2m_secret_equal(url, FUZZ_TOKEN) != (strcmp(url, FUZZ_TOKEN) == 0))
		fuzz_fail("p2m_secret_equal is not equality");
	if (url && auth && p2m_secret_equal(url, auth) != (strcmp(url, auth) == 0))
		fuzz_fail("p2m_secret_equal is not equality");

	/* the handshake */
	hs = p2m_dialin_identify(p, (size_t)(end - p), &drv, id, sizeof(id));
	msg = cJSON_ParseWithLength(p, (size_t)(end - p));
	want = msg ? p2m_family_for_snapshot(msg, true) : NULL;
	if (drv != want || (hs == P2M_HANDSHAKE_UNKNOWN) != (want == NULL))
		fuzz_fail("p2m_dialin_identify names the wrong family");
	if (drv && (!drv->dials_in || !drv->is_snapshot(msg)))
		fuzz_fail("p2m_dialin_identify takes what is no dial-in handshake");
	if (hs != P2M_HANDSHAKE_OK && id[0])
		fuzz_fail("p2m_dialin_identify leaves an id '%s' without OK", id);
	if (hs == P2M_HANDSHAKE_OK) {
		size_t n = strlen(id), np = strlen(drv->name);

		if (n > P2M_ID_MAX || n <= np + 1 || strncmp(id, drv->name, np) != 0 ||
		    id[np] != '_' || strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789_-") != n)
			fuzz_fail("p2m_dialin_identify gives the id '%s'", id);

		/* the allow list */
		switch ((sel >> 4) & 3) {
		case 0:
			break;
		case 1:
			list[n_list++] = id;
			break;
		case 2:
			mac_form(id + np + 1, mac, sizeof(mac));
			list[n_list++] = "ptalk_000000000000";
			if (strlen(mac) <= P2M_ID_MAX)
				list[n_list++] = mac;
			break;
		case 3:
			for (char *save = NULL,
				  *e = strtok_r(allow_line ? allow_line : empty, " ,\t", &save);
			     e && n_list < 256; e = strtok_r(NULL, " ,\t", &save))
				if (strlen(e) <= P2M_ID_MAX)
					list[n_list++] = e;
			break;
		}
		check_allowed(drv, id, list, n_list);
		if (((sel >> 4) & 3) == 1 || (((sel >> 4) & 3) == 2 && n_list == 2)) {
			struct p2m_dialin_conf conf = {.allow = list, .n_allow = n_list};

			if (!p2m_dialin_allowed(&conf, drv, id))
				fuzz_fail("p2m_dialin_allowed refuses %s, which its list names",
					  id);
		}
	}
	cJSON_Delete(msg);
	free(token_line);
	free(url);
	free(auth);
	free(allow_line);
	return 0;
}
