/* fuzz_esp_image.c - libFuzzer target: a firmware image file as the update check reads it
 * (esp_image.h) before anything is sent to a device: whatever a user (or anything that
 * can write to the firmware directory) put there.
 *
 * Input layout: byte 0 picks the chip asked for (the Panda Breath's ESP32-C3, or any)
 * and the size limit (none, or a small one so that the limit is reached); byte 1 the
 * size of the pieces the incremental check is fed (1..256 bytes, as device_ota.c and
 * firmware.c read a file across turns of the loop); the rest is the image. The seeds are
 * made-up images in the layout test_esp_image.c builds.
 * Checked, per esp_image.h:
 *  - fed in pieces, the check gives the same verdict as on the whole image, and the
 *    same result when it takes it (the reading loop can split a file anywhere; the
 *    reasons may differ: only the whole image's size is known before its bytes);
 *  - a refused image always says why, and after a refusal every further piece is
 *    refused the same way;
 *  - an accepted image is at most the limit, is for the chip asked for, has 1..16
 *    segments, starts with the magic byte, and reports NUL-terminated version and
 *    project strings and its SHA-256 as 64 lower-case hex digits. */
#include "fuzz_common.h"

#include "panda2mqtt/esp_image.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	return 0;
}

static void check_good(const struct p2m_esp_image *img, const uint8_t *image, size_t len, int chip,
		       uint64_t max)
{
	if (img->size != len || (max && img->size > max))
		fuzz_fail("esp_image: size %llu for %zu bytes (limit %llu)",
			  (unsigned long long)img->size, len, (unsigned long long)max);
	if (chip >= 0 && img->chip_id != (unsigned)chip)
		fuzz_fail("esp_image: chip %u taken for %d", img->chip_id, chip);
	if (img->segments < 1 || img->segments > P2M_ESP_MAX_SEGMENTS)
		fuzz_fail("esp_image: %u segments", img->segments);
	if (len < 1 || image[0] != P2M_ESP_IMAGE_MAGIC)
		fuzz_fail("esp_image: taken without the magic byte");
	if (memchr(img->version, 0, sizeof(img->version)) == NULL ||
	    memchr(img->project, 0, sizeof(img->project)) == NULL)
		fuzz_fail("esp_image: version or project not terminated");
	if (strlen(img->sha256) != 64 || strspn(img->sha256, "0123456789abcdef") != 64)
		fuzz_fail("esp_image: sha256 '%s'", img->sha256);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t limits[] = {0, 0x480000, 4096, 300};
	struct p2m_esp_image whole, pieces;
	struct p2m_esp_check *c;
	char err_whole[256] = "", err_pieces[256] = "", err_again[256] = "";
	const uint8_t *image;
	size_t len, step, at;
	int chip, rc_whole, rc_pieces = 0;
	uint64_t max;

	if (size < 2)
		return 0;
	chip = (data[0] & 1) ? -1 : P2M_ESP_CHIP_ESP32C3;
	max = limits[(data[0] >> 1) & 3];
	step = (size_t)data[1] % 256 + 1;
	image = data + 2;
	len = size - 2;

	memset(&whole, 0, sizeof(whole));
	memset(&pieces, 0, sizeof(pieces));
	rc_whole = p2m_esp_image_check(image, len, chip, max, &whole, err_whole, sizeof(err_whole));
	if (rc_whole != 0 && !err_whole[0])
		fuzz_fail("esp_image: refused without a reason");
	if (rc_whole == 0)
		check_good(&whole, image, len, chip, max);

	c = p2m_esp_check_new(chip, max);
	for (at = 0; at < len && rc_pieces == 0; at += step)
		rc_pieces = p2m_esp_check_feed(c, image + at, len - at < step ? len - at : step,
					       err_pieces, sizeof(err_pieces));
	if (rc_pieces != 0) {
		/* refused for good: a further piece is refused the same way */
		if (p2m_esp_check_feed(c, image, len ? 1 : 0, err_again, sizeof(err_again)) == 0 ||
		    strcmp(err_again, err_pieces) != 0)
			fuzz_fail("esp_image: a refusal did not stick ('%s', then '%s')",
				  err_pieces, err_again);
	} else {
		rc_pieces = p2m_esp_check_finish(c, &pieces, err_pieces, sizeof(err_pieces));
	}
	p2m_esp_check_free(c);
	if ((rc_whole == 0) != (rc_pieces == 0))
		fuzz_fail("esp_image: in pieces of %zu: '%s', whole: '%s'", step,
			  rc_pieces ? err_pieces : "ok", rc_whole ? err_whole : "ok");
	if (rc_whole == 0 &&
	    (whole.size != pieces.size || whole.chip_id != pieces.chip_id ||
	     whole.segments != pieces.segments || whole.hash_appended != pieces.hash_appended ||
	     strcmp(whole.version, pieces.version) != 0 ||
	     strcmp(whole.project, pieces.project) != 0 ||
	     strcmp(whole.sha256, pieces.sha256) != 0))
		fuzz_fail("esp_image: in pieces of %zu the result differs", step);
	return 0;
}
