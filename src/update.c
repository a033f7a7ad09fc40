/* update.c - see update.h. */
#include "panda2mqtt/update.h"

#include "panda2mqtt/command.h"

#include <glib.h>
#include <string.h>

cJSON *p2m_update_state(const char *title, const char *installed, const struct p2m_update_view *u)
{
	cJSON *o;

	if (!installed)
		return NULL;
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "installed_version", installed);
	cJSON_AddStringToObject(o, "latest_version", u && u->latest ? u->latest : installed);
	cJSON_AddStringToObject(o, "title", title);
	/* always present: Home Assistant keeps a summary until told otherwise */
	if (u && u->latest && u->summary)
		cJSON_AddStringToObject(o, "release_summary", u->summary);
	else
		cJSON_AddNullToObject(o, "release_summary");
	cJSON_AddBoolToObject(o, "in_progress", u && u->in_progress);
	if (u && u->in_progress && u->percent >= 0)
		cJSON_AddNumberToObject(o, "update_percentage", u->percent);
	else
		cJSON_AddNullToObject(o, "update_percentage");
	return o;
}

int p2m_cmd_install(struct p2m_cmd *cmd, const struct p2m_entity *e, const cJSON *v,
		    bool *reinstall)
{
	if (!cJSON_IsString(v) ||
	    (strcmp(v->valuestring, "install") != 0 && strcmp(v->valuestring, "reinstall") != 0))
		return p2m_cmd_reject(cmd, e->key,
				      "the payload must be \"install\" or \"reinstall\"");
	*reinstall = v->valuestring[0] == 'r';
	return 0;
}

void p2m_cmd_install_image(struct p2m_cmd *cmd, bool reinstall)
{
	cJSON *m = cJSON_CreateObject();
	cJSON *o = cJSON_AddObjectToObject(m, P2M_INSTALL_KEY);

	cJSON_AddBoolToObject(o, "reinstall", reinstall);
	p2m_cmd_frame_object(cmd, m);
}

char *p2m_update_summary(const char *text, size_t len)
{
	char *valid = g_utf8_make_valid(text, (gssize)len);
	char *s = g_strstrip(valid);
	char *out;

	if (!*s) {
		g_free(valid);
		return NULL;
	}
	/* (a NUL byte comes out of g_utf8_make_valid as U+FFFD, like any invalid byte) */
	if (g_utf8_strlen(s, -1) <= P2M_UPDATE_SUMMARY_MAX) {
		out = g_strdup(s);
	} else {
		const char *cut = g_utf8_offset_to_pointer(s, P2M_UPDATE_SUMMARY_MAX - 1);

		out = g_strdup_printf("%.*s…", (int)(cut - s), s);
	}
	g_free(valid);
	return out;
}
