/* sim_ota.c - the simulated Panda Breath's firmware upload: POST /ota, as the device's
 * own page sends it (docs/FIRMWARE-UPDATE.md).
 *
 * Owns: one upload at a time: its headers (Content-Type
 * "application/octet-stream;charset=UTF-8", OTA-Type "ota_fw", Content-Length), its body
 * (hashed as it comes, saved to --ota-save PATH with the headers in PATH.json, for the
 * tests to compare with the image file), the image check the device's page makes (at
 * most 0x480000 bytes) and its bootloader's (magic 0xE9, chip id 5 = ESP32-C3 at byte 12,
 * the SHA-256 appended when byte 23 says so), written here independently of the
 * gateway's esp_image.c; the answer: HTTP 200 or 400, and on the WebSocket
 * {"response":{"type":"ota_fw","ok":1|0}}; then the restart into the image's version
 * (its esp_app_desc_t.version at byte 48). The control line "ota MODE" bends it: ok
 * (default), refuse (ok:0, no restart), drop (the device goes away half way through the
 * body: the connection closes, the device restarts on its old version), old (ok:1, but
 * it comes back on its old version), stall (it stops reading after the first piece of
 * the body and keeps the connection open).
 * Does not own: the HTTP server (sim_server.c), the reboot (sim_device.c). */
#include "sim.h"

#include <glib.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define OTA_MAX	       0x480000
#define OTA_TYPE       "application/octet-stream;charset=UTF-8"
#define HEAD_KEEP      128
#define ESP_CHIP_C3    5
#define APP_DESC_MAGIC 0xABCD5432u

const char *const sim_ota_mode_names[SIM_OTA_MODES] = {"ok", "refuse", "drop", "old", "stall"};

struct sim_ota {
	char content_type[128];
	char ota_type[64];
	long long content_length;
	unsigned long long got;
	unsigned char head[HEAD_KEEP];
	unsigned char tail[32]; /* the last 32 bytes so far */
	GChecksum *all;		/* the whole body */
	GByteArray *keep;	/* the body, for the appended digest's check */
	FILE *save;
	bool too_big;
	bool stalled; /* mode stall: reading stopped, the connection kept */
};

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

struct sim_ota *sim_ota_begin(struct lws *wsi)
{
	struct sim_ota *o = calloc(1, sizeof(*o));
	char len[32] = "";

	if (!o)
		abort();
	lws_hdr_copy(wsi, o->content_type, sizeof(o->content_type), WSI_TOKEN_HTTP_CONTENT_TYPE);
	if (lws_hdr_custom_copy(wsi, o->ota_type, sizeof(o->ota_type), "ota-type:", 9) < 0)
		o->ota_type[0] = '\0';
	o->content_length = -1;
	if (lws_hdr_copy(wsi, len, sizeof(len), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
		o->content_length = atoll(len);
	o->all = g_checksum_new(G_CHECKSUM_SHA256);
	o->keep = g_byte_array_new();
	if (sim.ota_save) {
		o->save = fopen(sim.ota_save, "wb");
		if (!o->save)
			sim_say("ota: cannot write %s", sim.ota_save);
	}
	sim_say("POST /ota: Content-Type \"%s\", OTA-Type \"%s\", Content-Length %lld (mode %s)",
		o->content_type, o->ota_type, o->content_length, sim_ota_mode_names[sim.ota_mode]);
	return o;
}

/* Part of the body. -1: the device goes away (mode drop). */
int sim_ota_body(struct sim_ota *o, struct lws *wsi, const void *in, size_t len)
{
	const unsigned char *p = in;

	if (o->got < HEAD_KEEP)
		memcpy(o->head + o->got, p, MIN(len, (size_t)(HEAD_KEEP - o->got)));
	g_checksum_update(o->all, p, len);
	if (o->got + len > OTA_MAX)
		o->too_big = true;
	else
		g_byte_array_append(o->keep, p, (guint)len);
	if (o->save)
		fwrite(p, 1, len, o->save);
	o->got += len;
	if (sim.ota_mode == SIM_OTA_DROP && o->content_length > 0 &&
	    o->got * 2 >= (unsigned long long)o->content_length) {
		sim_say("ota: the device goes away after %llu of %lld bytes", o->got,
			o->content_length);
		sim_reboot("power lost during the upload");
		return -1;
	}
	if (sim.ota_mode == SIM_OTA_STALL && !o->stalled) {
		sim_say("ota: the device stops reading after %llu of %lld bytes", o->got,
			o->content_length);
		o->stalled = true;
		lws_rx_flow_control(wsi, 0);
		/* lws's own bound on a body (5 s, set again after this callback) would close
		 * it: the device hangs instead (sim_ota_timer) */
		lws_set_timer_usecs(wsi, LWS_USEC_PER_SEC / 10);
	}
	return 0;
}

/* The image check; NULL, or why it is refused. */
static const char *check(struct sim_ota *o)
{
	static char why[160];
	guint8 digest[32];
	gsize dlen = sizeof(digest);

	if (strcasecmp(o->content_type, OTA_TYPE) != 0)
		return "Content-Type is not " OTA_TYPE;
	if (strcmp(o->ota_type, "ota_fw") != 0)
		return "OTA-Type is not ota_fw";
	if (o->content_length != (long long)o->got)
		return "Content-Length is not the body's length";
	if (o->too_big)
		return "larger than 0x480000 bytes";
	if (o->got < 24 + 32 || o->head[0] != 0xE9)
		return "not an ESP image (magic)";
	if ((o->head[12] | o->head[13] << 8) != ESP_CHIP_C3) {
		snprintf(why, sizeof(why), "chip id %d, not ESP32-C3 (5)",
			 o->head[12] | o->head[13] << 8);
		return why;
	}
	if (o->head[23] == 1) {
		GChecksum *c = g_checksum_new(G_CHECKSUM_SHA256);

		g_checksum_update(c, o->keep->data, o->keep->len - 32);
		g_checksum_get_digest(c, digest, &dlen);
		g_checksum_free(c);
		if (memcmp(digest, o->keep->data + o->keep->len - 32, 32) != 0)
			return "its appended SHA-256 does not match";
	}
	return NULL;
}

static void write_record(struct sim_ota *o, const char *refused)
{
	char *path;
	FILE *f;
	cJSON *j;
	char *txt;

	if (!sim.ota_save)
		return;
	path = g_strdup_printf("%s.json", sim.ota_save);
	f = fopen(path, "w");
	j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "content_type", o->content_type);
	cJSON_AddStringToObject(j, "ota_type", o->ota_type);
	cJSON_AddNumberToObject(j, "content_length", (double)o->content_length);
	cJSON_AddNumberToObject(j, "bytes", (double)o->got);
	cJSON_AddStringToObject(j, "sha256", g_checksum_get_string(o->all));
	cJSON_AddStringToObject(j, "mode", sim_ota_mode_names[sim.ota_mode]);
	if (refused)
		cJSON_AddStringToObject(j, "refused", refused);
	else
		cJSON_AddNullToObject(j, "refused");
	txt = cJSON_PrintUnformatted(j);
	if (f) {
		fputs(txt, f);
		fclose(f);
	}
	cJSON_free(txt);
	cJSON_Delete(j);
	g_free(path);
}

/* The whole body is in: check it, answer, restart. The HTTP status to answer with. */
int sim_ota_complete(struct sim_ota *o)
{
	const char *refused = check(o);
	cJSON *r = cJSON_CreateObject();
	char version[33] = "";

	if (o->save) {
		fclose(o->save);
		o->save = NULL;
	}
	if (!refused && sim.ota_mode == SIM_OTA_REFUSE)
		refused = "refused (control: ota refuse)";
	write_record(o, refused);
	cJSON_AddStringToObject(r, "type", "ota_fw");
	cJSON_AddNumberToObject(r, "ok", refused ? 0 : 1);
	sim_push_root("response", r);
	if (refused) {
		sim_say("ota: %llu bytes refused: %s", o->got, refused);
		return 400;
	}
	if (le32(o->head + 32) == APP_DESC_MAGIC)
		memcpy(version, o->head + 48, 32);
	sim_say("ota: %llu bytes taken (SHA-256 %s), image version \"%s\"", o->got,
		g_checksum_get_string(o->all), version);
	if (sim.ota_mode == SIM_OTA_OLD || !version[0])
		sim_say("ota: comes back on %s",
			cJSON_GetStringValue(cJSON_GetObjectItem(sim_settings(), "fw_version")));
	else {
		snprintf(sim.ota_version, sizeof(sim.ota_version), "%s", version);
		sim_put(sim_settings(), "fw_version", cJSON_CreateString(version));
	}
	sim_reboot("firmware update");
	return 200;
}

void sim_ota_timer(struct sim_ota *o, struct lws *wsi)
{
	if (!o || !o->stalled)
		return;
	lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
	lws_set_timer_usecs(wsi, LWS_USEC_PER_SEC);
}

void sim_ota_free(struct sim_ota *o)
{
	if (!o)
		return;
	if (o->save)
		fclose(o->save);
	g_checksum_free(o->all);
	g_byte_array_free(o->keep, TRUE);
	free(o);
}
