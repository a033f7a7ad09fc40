/* esp_image.h - checking an ESP-IDF application image before it is sent to a device.
 *
 * Owns: the image format as ESP-IDF's bootloader and OTA code read it (esp_image_format.h):
 * the 24-byte header (magic 0xE9, segment count, the extended header's chip id and
 * hash_appended flag), the segments (8-byte header, 4-byte aligned length), the one-byte
 * XOR checksum at the end of the 16-byte padding, and, when hash_appended is 1, the
 * SHA-256 of all of that in the 32 bytes after it; the image must end there. Also the
 * application description (esp_app_desc_t) at offset 32, whose version and project name
 * are reported. The check is fed the image a piece at a time, so a 4 MiB file is never
 * held in memory and the caller decides how much it reads per turn of its loop.
 * Pure: no files, no sockets (the caller reads the file: firmware.c, device_ota.c).
 * Does not own: which chip and size a family's devices take (driver.h: http_update),
 * when an update is allowed, or sending it. */
#ifndef PANDA2MQTT_ESP_IMAGE_H
#define PANDA2MQTT_ESP_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* esp_chip_id_t values (ESP-IDF esp_app_format.h) */
#define P2M_ESP_CHIP_ESP32   0
#define P2M_ESP_CHIP_ESP32S2 2
#define P2M_ESP_CHIP_ESP32C3 5
#define P2M_ESP_CHIP_ESP32S3 9

/* The fixed layout (esp_image_header_t, esp_image_segment_header_t, esp_app_desc_t). */
#define P2M_ESP_HEADER_BYTES	 24
#define P2M_ESP_SEGMENT_HDR	 8
#define P2M_ESP_MAX_SEGMENTS	 16
#define P2M_ESP_APP_DESC_OFFSET	 32
#define P2M_ESP_APP_DESC_MAGIC	 0xABCD5432u
#define P2M_ESP_APP_VERSION_OFF	 48 /* char version[32] */
#define P2M_ESP_APP_PROJECT_OFF	 80 /* char project_name[32] */
#define P2M_ESP_IMAGE_MAGIC	 0xE9
#define P2M_ESP_CHECKSUM_INITIAL 0xEF

/* What a good image turned out to be. */
struct p2m_esp_image {
	uint64_t size;	    /* bytes, the appended digest included */
	unsigned chip_id;   /* P2M_ESP_CHIP_* */
	unsigned segments;  /* 1..P2M_ESP_MAX_SEGMENTS */
	bool hash_appended; /* its SHA-256 was there, and matched */
	char version[33];   /* esp_app_desc_t.version; "" without an application description */
	char project[33];   /* esp_app_desc_t.project_name; "" likewise */
	char sha256[65];    /* of the whole file, lower-case hex */
};

/* A check being fed an image. */
struct p2m_esp_check;

/* chip: the chip id the image must be built for (-1: any); max_bytes: the largest image
 * taken (0: no limit). */
struct p2m_esp_check *p2m_esp_check_new(int chip, uint64_t max_bytes);
/* The next len bytes. -1 once the image is known to be bad (the reason in err, errlen
 * bytes); every later call fails the same way. */
int p2m_esp_check_feed(struct p2m_esp_check *c, const void *data, size_t len, char *err,
		       size_t errlen);
/* After the last byte: 0 with *out filled, or -1 with the reason in err. */
int p2m_esp_check_finish(struct p2m_esp_check *c, struct p2m_esp_image *out, char *err,
			 size_t errlen);
void p2m_esp_check_free(struct p2m_esp_check *c);

/* The same on an image held in memory (tests, fuzzing). */
int p2m_esp_image_check(const void *data, size_t len, int chip, uint64_t max_bytes,
			struct p2m_esp_image *out, char *err, size_t errlen);

/* "ESP32-C3", ... or "an unknown chip". */
const char *p2m_esp_chip_name(unsigned chip_id);

#endif
