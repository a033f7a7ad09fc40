/* esp_image.c - see esp_image.h.
 *
 * A small state machine walks the image as ESP-IDF's esp_image_verify() does, one piece
 * at a time: header, then each segment's header and data, then the padding whose last
 * byte is the checksum, then the appended SHA-256. Where every part ends follows from the
 * lengths read on the way, so a truncated image is told from a whole one even without an
 * appended digest, and the digest is checked at the offset the bootloader reads it from
 * (not merely "the last 32 bytes"; the image must end there, so both are the same).
 * SHA-256 is GLib's (GChecksum): no digest code of our own. */
#include "panda2mqtt/esp_image.h"

#include <glib.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The head of the file kept for the application description (esp_app_desc_t's first
 * fields end at byte 112). */
#define HEAD_KEEP 128

enum phase { P_HEADER, P_SEG_HDR, P_SEG_DATA, P_PAD, P_HASH, P_END };

struct p2m_esp_check {
	int chip;
	uint64_t max;
	uint64_t off; /* bytes taken so far */
	enum phase phase;
	unsigned char head[HEAD_KEEP];
	unsigned char seghdr[P2M_ESP_SEGMENT_HDR];
	size_t seghdr_len;
	unsigned nseg, seg; /* segments in all, the one being read */
	uint32_t seg_left;  /* bytes of its data still to come */
	uint8_t xor ;	    /* the checksum so far */
	uint64_t pad_end;   /* the offset after the checksum byte */
	bool hash_appended;
	unsigned char hash[32];
	size_t hash_len;
	GChecksum *body; /* everything the appended digest covers */
	GChecksum *file; /* the whole file */
	char err[200];	 /* set once: the image is bad */
};

const char *p2m_esp_chip_name(unsigned chip_id)
{
	switch (chip_id) {
	case P2M_ESP_CHIP_ESP32:
		return "ESP32";
	case P2M_ESP_CHIP_ESP32S2:
		return "ESP32-S2";
	case P2M_ESP_CHIP_ESP32C3:
		return "ESP32-C3";
	case P2M_ESP_CHIP_ESP32S3:
		return "ESP32-S3";
	case 12:
		return "ESP32-C2";
	case 13:
		return "ESP32-C6";
	case 16:
		return "ESP32-H2";
	default:
		return "an unknown chip";
	}
}

struct p2m_esp_check *p2m_esp_check_new(int chip, uint64_t max_bytes)
{
	struct p2m_esp_check *c = g_new0(struct p2m_esp_check, 1);

	c->chip = chip;
	c->max = max_bytes;
	c->body = g_checksum_new(G_CHECKSUM_SHA256);
	c->file = g_checksum_new(G_CHECKSUM_SHA256);
	return c;
}

void p2m_esp_check_free(struct p2m_esp_check *c)
{
	if (!c)
		return;
	g_checksum_free(c->body);
	g_checksum_free(c->file);
	g_free(c);
}

__attribute__((format(printf, 2, 3))) static int bad(struct p2m_esp_check *c, const char *fmt, ...)
{
	if (!c->err[0]) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(c->err, sizeof(c->err), fmt, ap);
		va_end(ap);
	}
	return -1;
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The 24-byte header is in c->head. */
static int take_header(struct p2m_esp_check *c)
{
	const unsigned char *h = c->head;
	unsigned chip = (unsigned)h[12] | (unsigned)h[13] << 8;

	if (h[0] != P2M_ESP_IMAGE_MAGIC)
		return bad(c, "not an ESP application image (its first byte is 0x%02x, not 0x%02x)",
			   h[0], P2M_ESP_IMAGE_MAGIC);
	if (c->chip >= 0 && chip != (unsigned)c->chip)
		return bad(c, "built for %s (chip id %u), not for %s (chip id %d)",
			   p2m_esp_chip_name(chip), chip, p2m_esp_chip_name((unsigned)c->chip),
			   c->chip);
	if (h[1] == 0 || h[1] > P2M_ESP_MAX_SEGMENTS)
		return bad(c, "its header names %u segments (1 to %d)", h[1], P2M_ESP_MAX_SEGMENTS);
	if (h[23] > 1)
		return bad(c, "its header's hash_appended is %u (0 or 1)", h[23]);
	c->nseg = h[1];
	c->hash_appended = h[23] == 1;
	c->phase = P_SEG_HDR;
	return 0;
}

/* A segment header is in c->seghdr. */
static int take_segment_header(struct p2m_esp_check *c)
{
	uint32_t len = le32(c->seghdr + 4);

	c->seghdr_len = 0;
	/* the bootloader refuses unaligned lengths; a length past any image the device
	 * takes is a damaged header, not a long segment */
	if (len % 4 != 0)
		return bad(c, "segment %u's length %u is not a multiple of 4: damaged", c->seg + 1,
			   (unsigned)len);
	if (c->max && c->off + len > c->max)
		return bad(c,
			   "segment %u's length %u runs past the largest image (%llu bytes): "
			   "damaged",
			   c->seg + 1, (unsigned)len, (unsigned long long)c->max);
	c->seg_left = len;
	c->phase = P_SEG_DATA;
	return 0;
}

/* After the last segment: the checksum is the last byte of the padding to 16 bytes. */
static void end_segments(struct p2m_esp_check *c)
{
	c->pad_end = (c->off + 1 + 15) & ~(uint64_t)15;
	c->phase = P_PAD;
}

/* Take up to len bytes of the current part; how many were taken, or -1. */
static size_t take(struct p2m_esp_check *c, const unsigned char *p, size_t len, int *rc)
{
	size_t n = 0;

	*rc = 0;
	switch (c->phase) {
	case P_HEADER:
		n = MIN(len, (size_t)(P2M_ESP_HEADER_BYTES - c->off));
		c->off += n; /* the bytes are in c->head already */
		if (c->off == P2M_ESP_HEADER_BYTES)
			*rc = take_header(c);
		break;
	case P_SEG_HDR:
		n = MIN(len, sizeof(c->seghdr) - c->seghdr_len);
		memcpy(c->seghdr + c->seghdr_len, p, n);
		c->seghdr_len += n;
		c->off += n;
		if (c->seghdr_len == sizeof(c->seghdr))
			*rc = take_segment_header(c);
		break;
	case P_SEG_DATA:
		n = MIN(len, (size_t)c->seg_left);
		for (size_t i = 0; i < n; i++)
			c->xor ^= p[i];
		c->seg_left -= (uint32_t)n;
		c->off += n;
		break;
	case P_PAD:
		n = MIN(len, (size_t)(c->pad_end - c->off));
		c->off += n;
		if (c->off == c->pad_end) {
			uint8_t want = c->xor ^P2M_ESP_CHECKSUM_INITIAL;

			if (p[n - 1] != want)
				*rc = bad(c,
					  "its checksum is 0x%02x where its contents give 0x%02x: "
					  "damaged",
					  p[n - 1], want);
			c->phase = c->hash_appended ? P_HASH : P_END;
		}
		break;
	case P_HASH:
		n = MIN(len, sizeof(c->hash) - c->hash_len);
		memcpy(c->hash + c->hash_len, p, n);
		c->hash_len += n;
		c->off += n;
		if (c->hash_len == sizeof(c->hash)) {
			guint8 digest[32];
			gsize dlen = sizeof(digest);

			g_checksum_get_digest(c->body, digest, &dlen);
			if (dlen != sizeof(digest) || memcmp(digest, c->hash, sizeof(digest)) != 0)
				*rc = bad(c, "its SHA-256 does not match its contents: damaged or "
					     "changed");
			c->phase = P_END;
		}
		break;
	case P_END:
		*rc = bad(c, "it goes on past the end its header gives (%llu bytes)",
			  (unsigned long long)c->off);
		n = len;
		break;
	}
	/* a segment just ended: the next one, or the checksum */
	if (!*rc && c->phase == P_SEG_DATA && c->seg_left == 0) {
		if (++c->seg < c->nseg)
			c->phase = P_SEG_HDR;
		else
			end_segments(c);
	}
	return n;
}

int p2m_esp_check_feed(struct p2m_esp_check *c, const void *data, size_t len, char *err,
		       size_t errlen)
{
	const unsigned char *p = data;

	if (!c->err[0] && c->max && c->off + len > c->max)
		bad(c, "it is larger than the %llu bytes the device takes",
		    (unsigned long long)c->max);
	if (c->err[0]) {
		snprintf(err, errlen, "%s", c->err);
		return -1;
	}
	if (len == 0)
		return 0; /* (data may be NULL then) */
	if (c->off < HEAD_KEEP)
		memcpy(c->head + c->off, p, MIN(len, (size_t)(HEAD_KEEP - c->off)));
	g_checksum_update(c->file, p, len);
	while (len > 0) {
		bool covered = c->phase != P_HASH && c->phase != P_END;
		int rc;
		size_t n = take(c, p, len, &rc);

		if (covered)
			g_checksum_update(c->body, p, n);
		if (rc != 0) {
			snprintf(err, errlen, "%s", c->err);
			return -1;
		}
		p += n;
		len -= n;
	}
	return 0;
}

/* A fixed-size text field of the application description: printable ASCII or nothing. */
static void desc_string(char *out, const unsigned char *field)
{
	size_t n = 0;

	while (n < 32 && field[n]) {
		out[n] = g_ascii_isprint(field[n]) ? (char)field[n] : '?';
		n++;
	}
	out[n] = '\0';
}

int p2m_esp_check_finish(struct p2m_esp_check *c, struct p2m_esp_image *out, char *err,
			 size_t errlen)
{
	static const char *const where[] = {
	    [P_HEADER] = "in its header",      [P_SEG_HDR] = "in a segment header",
	    [P_SEG_DATA] = "inside a segment", [P_PAD] = "before its checksum",
	    [P_HASH] = "inside its SHA-256",
	};

	if (!c->err[0] && c->phase != P_END)
		bad(c, "truncated: it ends %s, after %llu bytes", where[c->phase],
		    (unsigned long long)c->off);
	if (c->err[0]) {
		snprintf(err, errlen, "%s", c->err);
		return -1;
	}
	memset(out, 0, sizeof(*out));
	out->size = c->off;
	out->chip_id = (unsigned)c->head[12] | (unsigned)c->head[13] << 8;
	out->segments = c->nseg;
	out->hash_appended = c->hash_appended;
	if (c->off >= P2M_ESP_APP_PROJECT_OFF + 32 &&
	    le32(c->head + P2M_ESP_APP_DESC_OFFSET) == P2M_ESP_APP_DESC_MAGIC) {
		desc_string(out->version, c->head + P2M_ESP_APP_VERSION_OFF);
		desc_string(out->project, c->head + P2M_ESP_APP_PROJECT_OFF);
	}
	g_strlcpy(out->sha256, g_checksum_get_string(c->file), sizeof(out->sha256));
	return 0;
}

int p2m_esp_image_check(const void *data, size_t len, int chip, uint64_t max_bytes,
			struct p2m_esp_image *out, char *err, size_t errlen)
{
	struct p2m_esp_check *c = p2m_esp_check_new(chip, max_bytes);
	int rc = p2m_esp_check_feed(c, data, len, err, errlen);

	if (rc == 0)
		rc = p2m_esp_check_finish(c, out, err, errlen);
	p2m_esp_check_free(c);
	return rc;
}
