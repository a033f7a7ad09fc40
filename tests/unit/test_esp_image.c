/* test_esp_image.c - the image check before a firmware upload (src/esp_image.c), on
 * made-up ESP-IDF application images built here as esptool lays them out: good ones
 * (with and without the appended SHA-256, fed whole or a few bytes at a time) and bad
 * ones (truncated anywhere, another chip, a wrong digest, a wrong checksum, oversized,
 * trailing bytes, not an image at all). */
#include "panda2mqtt/esp_image.h"

#include <glib.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

struct spec {
	unsigned chip;
	bool hash;
	size_t seg_len[3]; /* data bytes of each segment (multiples of 4); 0 ends */
	const char *version;
};

static void put32(GByteArray *b, uint32_t v)
{
	guint8 p[4] = {v & 0xff, v >> 8 & 0xff, v >> 16 & 0xff, v >> 24 & 0xff};

	g_byte_array_append(b, p, 4);
}

/* An image as esptool writes one: header, segments (the first starting with
 * esp_app_desc_t), padding to 16 with the XOR checksum last, the SHA-256 if asked for. */
static GByteArray *build(const struct spec *s)
{
	GByteArray *b = g_byte_array_new();
	guint8 h[24] = {0xE9, 0, 2, 0x1f, 0x20, 0, 0, 0x42, 0xEE};
	guint8 xor = 0xEF;
	unsigned n = 0;

	while (n < 3 && s->seg_len[n])
		n++;
	h[1] = (guint8)n;
	h[12] = s->chip & 0xff;
	h[13] = s->chip >> 8 & 0xff;
	h[23] = s->hash;
	g_byte_array_append(b, h, sizeof(h));
	for (unsigned i = 0; i < n; i++) {
		size_t start;

		put32(b, 0x42000020u + i * 0x10000u);
		put32(b, (uint32_t)s->seg_len[i]);
		start = b->len;
		g_byte_array_set_size(b, (guint)(start + s->seg_len[i]));
		for (size_t k = 0; k < s->seg_len[i]; k++)
			b->data[start + k] = (guint8)(k * 31 + i * 7 + 1);
		if (i == 0 && s->seg_len[0] >= 256) {
			guint8 *d = b->data + start;

			memset(d, 0, 256);
			d[0] = 0x32, d[1] = 0x54, d[2] = 0xCD, d[3] = 0xAB; /* 0xABCD5432 */
			memcpy(d + 16, s->version, strlen(s->version));
			memcpy(d + 48, "panda_breath", 12);
		}
		for (size_t k = 0; k < s->seg_len[i]; k++)
			xor ^= b->data[start + k];
	}
	while (b->len % 16 != 15) {
		guint8 z = 0;

		g_byte_array_append(b, &z, 1);
	}
	g_byte_array_append(b, &xor, 1);
	if (s->hash) {
		GChecksum *c = g_checksum_new(G_CHECKSUM_SHA256);
		guint8 d[32];
		gsize dl = sizeof(d);

		g_checksum_update(c, b->data, b->len);
		g_checksum_get_digest(c, d, &dl);
		g_checksum_free(c);
		g_byte_array_append(b, d, sizeof(d));
	}
	return b;
}

static const struct spec GOOD = {P2M_ESP_CHIP_ESP32C3, true, {4096, 1000}, "V1.0.4"};

static int check(const GByteArray *b, struct p2m_esp_image *out, char *err)
{
	return p2m_esp_image_check(b->data, b->len, P2M_ESP_CHIP_ESP32C3, 0x480000, out, err, 200);
}

static void assert_refused(const GByteArray *b, const char *why)
{
	struct p2m_esp_image img;
	char err[200] = "";

	assert_int_equal(check(b, &img, err), -1);
	if (!strstr(err, why))
		fail_msg("'%s' does not contain '%s'", err, why);
}

static void test_good_image(void **state)
{
	GByteArray *b = build(&GOOD);
	struct p2m_esp_image img;
	char err[200] = "";
	char *sha = g_compute_checksum_for_data(G_CHECKSUM_SHA256, b->data, b->len);

	(void)state;
	assert_int_equal(check(b, &img, err), 0);
	assert_int_equal(img.size, b->len);
	assert_int_equal(img.chip_id, P2M_ESP_CHIP_ESP32C3);
	assert_int_equal(img.segments, 2);
	assert_true(img.hash_appended);
	assert_string_equal(img.version, "V1.0.4");
	assert_string_equal(img.project, "panda_breath");
	assert_string_equal(img.sha256, sha);
	assert_string_equal(p2m_esp_chip_name(img.chip_id), "ESP32-C3");
	g_free(sha);
	g_byte_array_free(b, TRUE);
}

static void test_good_image_without_digest(void **state)
{
	struct spec s = GOOD;
	GByteArray *b;
	struct p2m_esp_image img;
	char err[200] = "";

	(void)state;
	s.hash = false;
	s.seg_len[2] = 12; /* three segments */
	b = build(&s);
	assert_int_equal(check(b, &img, err), 0);
	assert_false(img.hash_appended);
	assert_int_equal(img.segments, 3);
	assert_int_equal(img.size % 16, 0);
	g_byte_array_free(b, TRUE);
}

/* Fed a few bytes at a time (as the gateway reads the file) it says the same. */
static void test_fed_in_pieces(void **state)
{
	static const size_t steps[] = {1, 3, 7, 24, 1000, 16384};
	GByteArray *b = build(&GOOD);

	(void)state;
	for (size_t i = 0; i < G_N_ELEMENTS(steps); i++) {
		struct p2m_esp_check *c = p2m_esp_check_new(P2M_ESP_CHIP_ESP32C3, 0x480000);
		struct p2m_esp_image img;
		char err[200] = "";

		for (size_t off = 0; off < b->len; off += steps[i])
			assert_int_equal(p2m_esp_check_feed(c, b->data + off,
							    MIN(steps[i], b->len - off), err,
							    sizeof(err)),
					 0);
		assert_int_equal(p2m_esp_check_finish(c, &img, err, sizeof(err)), 0);
		assert_string_equal(img.version, "V1.0.4");
		p2m_esp_check_free(c);
	}
	g_byte_array_free(b, TRUE);
}

/* Cut anywhere: in the header, a segment header, a segment, the padding, the digest. */
static void test_truncated(void **state)
{
	GByteArray *b = build(&GOOD);
	size_t cuts[] = {0,	      10,	   24,	      28, 500, 24 + 8 + 4096 + 4,
			 b->len - 40, b->len - 33, b->len - 1};

	(void)state;
	for (size_t i = 0; i < G_N_ELEMENTS(cuts); i++) {
		GByteArray *t = g_byte_array_new();

		g_byte_array_append(t, b->data, (guint)cuts[i]);
		assert_refused(t, "truncated");
		g_byte_array_free(t, TRUE);
	}
	g_byte_array_free(b, TRUE);
}

static void test_wrong_chip(void **state)
{
	struct spec s = GOOD;
	GByteArray *b;

	(void)state;
	s.chip = P2M_ESP_CHIP_ESP32;
	b = build(&s);
	assert_refused(b, "built for ESP32 (chip id 0), not for ESP32-C3 (chip id 5)");
	g_byte_array_free(b, TRUE);
	s.chip = P2M_ESP_CHIP_ESP32S3;
	b = build(&s);
	assert_refused(b, "built for ESP32-S3");
	g_byte_array_free(b, TRUE);
}

static void test_bad_digest(void **state)
{
	GByteArray *b = build(&GOOD);

	(void)state;
	b->data[b->len - 5] ^= 0x01; /* in the digest */
	assert_refused(b, "SHA-256 does not match");
	b->data[b->len - 5] ^= 0x01;
	/* a changed byte in a segment, its checksum fixed up: only the digest tells */
	b->data[24 + 8 + 300] ^= 0x10;
	b->data[b->len - 33] ^= 0x10;
	assert_refused(b, "SHA-256 does not match");
	g_byte_array_free(b, TRUE);
}

static void test_bad_checksum(void **state)
{
	struct spec s = GOOD;
	GByteArray *b;

	(void)state;
	s.hash = false;
	b = build(&s);
	b->data[24 + 8 + 300] ^= 0x10;
	assert_refused(b, "checksum");
	g_byte_array_free(b, TRUE);
}

static void test_oversized(void **state)
{
	struct spec s = GOOD;
	struct p2m_esp_image img;
	char err[200] = "";
	GByteArray *b;

	(void)state;
	s.seg_len[0] = 0x480000; /* alone larger than the device takes */
	b = build(&s);
	assert_refused(b, "larger than the 4718592 bytes");
	g_byte_array_free(b, TRUE);
	/* a good image over a smaller limit */
	b = build(&GOOD);
	assert_int_equal(p2m_esp_image_check(b->data, b->len, P2M_ESP_CHIP_ESP32C3, 2048, &img, err,
					     sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "larg"));
	/* and exactly at the limit it is taken */
	assert_int_equal(p2m_esp_image_check(b->data, b->len, P2M_ESP_CHIP_ESP32C3, b->len, &img,
					     err, sizeof(err)),
			 0);
	g_byte_array_free(b, TRUE);
}

static void test_not_an_image(void **state)
{
	GByteArray *b = build(&GOOD);
	guint8 more[4] = {0};

	(void)state;
	b->data[0] = 0x7f;
	assert_refused(b, "not an ESP application image");
	b->data[0] = 0xE9;
	b->data[1] = 0;
	assert_refused(b, "segments");
	b->data[1] = 2;
	b->data[23] = 7;
	assert_refused(b, "hash_appended");
	b->data[23] = 1;
	b->data[24 + 4] = 3; /* a segment length not a multiple of 4 */
	assert_refused(b, "multiple of 4");
	b->data[24 + 4] = 0;
	g_byte_array_append(b, more, sizeof(more));
	assert_refused(b, "past the end");
	g_byte_array_free(b, TRUE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_image),	  cmocka_unit_test(test_good_image_without_digest),
	    cmocka_unit_test(test_fed_in_pieces), cmocka_unit_test(test_truncated),
	    cmocka_unit_test(test_wrong_chip),	  cmocka_unit_test(test_bad_digest),
	    cmocka_unit_test(test_bad_checksum),  cmocka_unit_test(test_oversized),
	    cmocka_unit_test(test_not_an_image),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
