/* fuzz_common.h - what every libFuzzer target shares: quiet logging, fixtures, failing
 * with a message, and a set of output strings to search. Header-only: each target is one
 * file. The device targets (frame, command) add fuzz_device.h. */
#ifndef P2M_FUZZ_COMMON_H
#define P2M_FUZZ_COMMON_H

#include "panda2mqtt/json_util.h"
#include "panda2mqtt/log.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The targets' own checking code: not instrumented for coverage (its branches say nothing
 * about the code under test, and would only dilute libFuzzer's feedback), and written
 * without the string functions libFuzzer hooks (strcmp, memmem, ...), whose hooks cost
 * more than the comparisons. */
#define FUZZ_HELPER static inline __attribute__((no_sanitize("coverage")))

FUZZ_HELPER bool fuzz_streq(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

/* Does hay (n bytes) hold needle (nl bytes)? */
FUZZ_HELPER bool fuzz_contains(const char *hay, size_t n, const char *needle, size_t nl)
{
	if (nl == 0)
		return true;
	for (size_t i = 0; i + nl <= n; i++) {
		size_t k = 0;

		if (hay[i] != needle[0])
			continue;
		while (k < nl && hay[i + k] == needle[k])
			k++;
		if (k == nl)
			return true;
	}
	return false;
}

/* A hash of the input, to sample costly checks deterministically. */
FUZZ_HELPER uint32_t fuzz_hash(const uint8_t *data, size_t size)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 16777619u;
	/* FNV's low bits mix poorly (appending a byte whose low bits are 0 keeps them in a
	 * short cycle): finish with MurmurHash3's mixer, so any bits will do */
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* Set P2M_FUZZ_VERBOSE=1 to see the daemon's warnings while reproducing an input. */
static inline void fuzz_quiet_logs(void)
{
	const char *v = getenv("P2M_FUZZ_VERBOSE");

	p2m_log_set_level(v && *v == '1' ? P2M_LOG_DEBUG : P2M_LOG_ERR);
}

/* A finding that is not a sanitizer report: say what and stop (libFuzzer saves the input). */
static inline void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static inline void fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("FUZZ PROPERTY FAILED: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

static inline cJSON *fuzz_parse_fixture(const char *text)
{
	cJSON *v = cJSON_Parse(text);

	if (!v) {
		fprintf(stderr, "fuzz: a fixture is not JSON: %.200s\n", text);
		abort(); /* a broken fixture: fail loudly, not as a "finding" */
	}
	return v;
}

/* A file of tests/fixtures (P2M_FUZZ_FIXTURES, set by tests/fuzz/CMakeLists.txt), whole,
 * NUL-terminated. Read once, in LLVMFuzzerInitialize. */
static inline char *fuzz_read_fixture(const char *name)
{
	char path[1024];
	FILE *f;
	long n;
	char *text;

	snprintf(path, sizeof(path), "%s/%s", P2M_FUZZ_FIXTURES, name);
	f = fopen(path, "rb");
	if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		fprintf(stderr, "fuzz: cannot read the fixture %s\n", path);
		abort();
	}
	text = malloc((size_t)n + 1);
	if (!text || fread(text, 1, (size_t)n, f) != (size_t)n)
		abort();
	text[n] = '\0';
	fclose(f);
	return text;
}

/* A letter or digit replaced by the next of its kind: same length, same class of
 * character, so that every check a value goes through (length, printable, hostname
 * characters, UTF-8) treats the rotated value as it treats the original. */
FUZZ_HELPER void fuzz_rotate(char *s)
{
	for (; *s; s++) {
		if (*s >= 'a' && *s <= 'z')
			*s = *s == 'z' ? 'a' : (char)(*s + 1);
		else if (*s >= 'A' && *s <= 'Z')
			*s = *s == 'Z' ? 'A' : (char)(*s + 1);
		else if (*s >= '0' && *s <= '9')
			*s = *s == '9' ? '0' : (char)(*s + 1);
	}
}

/* Print and free (printing walks every string and number of the result). */
static inline void fuzz_consume(cJSON *v)
{
	char *s = p2m_json_print(v);

	cJSON_free(s);
	cJSON_Delete(v);
}

/* Strings, each followed by a NUL, in one buffer: what a target published, searched for
 * values that must not be there. A search never matches across two strings (no string
 * of cJSON holds a NUL). */
struct fuzz_text {
	char *buf;
	size_t len, cap;
};

FUZZ_HELPER void fuzz_text_add(struct fuzz_text *t, const char *s)
{
	size_t n = strlen(s) + 1;

	if (t->len + n > t->cap) {
		t->cap = (t->len + n) * 2;
		t->buf = realloc(t->buf, t->cap);
		if (!t->buf)
			abort();
	}
	memcpy(t->buf + t->len, s, n);
	t->len += n;
}

/* Every string value in v, at any depth. */
FUZZ_HELPER void fuzz_text_add_strings(struct fuzz_text *t, const cJSON *v)
{
	const cJSON *c;

	if (cJSON_IsString(v) && v->valuestring)
		fuzz_text_add(t, v->valuestring);
	cJSON_ArrayForEach(c, v)
	{
		fuzz_text_add_strings(t, c);
	}
}

FUZZ_HELPER bool fuzz_text_has(const struct fuzz_text *t, const char *s)
{
	return fuzz_contains(t->buf, t->len, s, strlen(s));
}

static inline void fuzz_text_clear(struct fuzz_text *t)
{
	t->len = 0;
}

static inline void fuzz_text_free(struct fuzz_text *t)
{
	free(t->buf);
	*t = (struct fuzz_text){0};
}

#endif
