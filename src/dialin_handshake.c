/* dialin_handshake.c - see dialin_handshake.h. Taken out of ws.c (the token) and dialin.c
 * (identify, the allow list) unchanged in what they decide, so that they can be fuzzed. */
#include "panda2mqtt/dialin_handshake.h"

#include "panda2mqtt/families.h"

#include <ctype.h>
#include <string.h>

bool p2m_secret_equal(const char *presented, const char *secret)
{
	size_t na = strlen(presented), nb = strlen(secret);
	unsigned char d = na != nb;

	for (size_t i = 0; i < na; i++)
		d |= (unsigned char)(presented[i] ^ secret[nb ? i % nb : 0]);
	return d == 0;
}

bool p2m_dialin_token_ok(const char *token, const char *url_token, const char *authorization)
{
	if (!token)
		return true;
	if (url_token)
		return p2m_secret_equal(url_token, token);
	return authorization && strncmp(authorization, "Bearer ", 7) == 0 &&
	       p2m_secret_equal(authorization + 7, token);
}

static void no_emit(void *ud, cJSON *event)
{
	(void)ud;
	cJSON_Delete(event);
}

enum p2m_handshake p2m_dialin_identify(const char *text, size_t len, const struct p2m_driver **drv,
				       char *id, size_t idlen)
{
	cJSON *msg = cJSON_ParseWithLength(text, len), *frame = NULL;
	bool ok;

	if (idlen)
		id[0] = '\0';
	*drv = msg ? p2m_family_for_snapshot(msg, true) : NULL;
	if (!*drv) {
		cJSON_Delete(msg);
		return P2M_HANDSHAKE_UNKNOWN;
	}
	/* the id through the family's own reading of the handshake */
	if ((*drv)->message)
		(*drv)->message(msg, NULL, &frame, no_emit, NULL);
	else
		frame = cJSON_Duplicate(msg, true);
	if (!frame)
		frame = cJSON_CreateObject();
	ok = (*drv)->device_id && (*drv)->device_id(frame, id, idlen);
	if (!ok && idlen)
		id[0] = '\0'; /* device_id may have written part of one */
	cJSON_Delete(frame);
	cJSON_Delete(msg);
	return ok ? P2M_HANDSHAKE_OK : P2M_HANDSHAKE_NO_ID;
}

/* "A1:B2-c3" -> "a1b2c3" */
static void normalise(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (; *in && o + 1 < len; in++)
		if (*in != ':' && *in != '-')
			out[o++] = (char)tolower((unsigned char)*in);
	out[o] = '\0';
}

bool p2m_dialin_allowed(const struct p2m_dialin_conf *conf, const struct p2m_driver *drv,
			const char *id)
{
	size_t np = strlen(drv->name);
	const char *bare = id;
	char want[P2M_ID_MAX + 1], a[P2M_ID_MAX + 1], b[P2M_ID_MAX + 1];

	if (conf->n_allow == 0)
		return true;
	if (strncmp(id, drv->name, np) == 0 && id[np] == '_')
		bare = id + np + 1;
	normalise(id, a, sizeof(a));
	normalise(bare, b, sizeof(b));
	for (size_t i = 0; i < conf->n_allow; i++) {
		normalise(conf->allow[i], want, sizeof(want));
		if (strcmp(want, a) == 0 || strcmp(want, b) == 0)
			return true;
	}
	return false;
}
