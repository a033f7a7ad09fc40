/* firmware.c - see firmware.h.
 *
 * The directory is re-read when asked and at least RESCAN_S after the last read: every
 * state publish asks for the latest image, and a directory read per frame would be
 * wasted work; a file dropped in shows up within seconds. Reading a fragment is a
 * 16 KiB read(2) of a local file, short enough for the event loop; so is reading the first
 * NOTES_MAX bytes of the newest image's release notes at each rescan. */
/* strverscmp is a GNU extension: _GNU_SOURCE comes from CMakeLists.txt */
#include "firmware.h"

#include "panda2mqtt/log.h"
#include "panda2mqtt/update.h"

#include <glib.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RESCAN_S 5
/* Release notes read: Home Assistant keeps 255 characters of them (update.h). */
#define NOTES_MAX 4096

struct family_latest {
	char *family;
	struct p2m_fw_image img; /* version NULL: none */
	gint64 read_at;		 /* monotonic us; 0: never */
};

struct p2m_firmware {
	char *dir;
	GPtrArray *families; /* of struct family_latest */
	bool warned;	     /* the directory could not be read (said once) */
};

struct p2m_fw_reader {
	int fd;
	off_t size, done;
};

static void image_clear(struct p2m_fw_image *img)
{
	g_free(img->version);
	g_free(img->path);
	g_free(img->summary);
	memset(img, 0, sizeof(*img));
}

static void family_free(gpointer p)
{
	struct family_latest *f = p;

	image_clear(&f->img);
	g_free(f->family);
	g_free(f);
}

struct p2m_firmware *p2m_firmware_new(const char *dir)
{
	struct p2m_firmware *fw = g_new0(struct p2m_firmware, 1);

	fw->dir = g_strdup(dir);
	fw->families = g_ptr_array_new_with_free_func(family_free);
	return fw;
}

void p2m_firmware_free(struct p2m_firmware *fw)
{
	if (!fw)
		return;
	g_ptr_array_free(fw->families, TRUE);
	g_free(fw->dir);
	g_free(fw);
}

/* Is this file name one of family's images? Its version into buf. */
static bool name_version(const char *file, const char *family, char *buf, size_t len)
{
	size_t nf = strlen(family), n = strlen(file);
	const char *v;
	size_t nv;

	if (n <= nf + 1 + 4 || strncmp(file, family, nf) != 0 || file[nf] != '-' ||
	    strcmp(file + n - 4, ".bin") != 0)
		return false;
	v = file + nf + 1;
	nv = n - nf - 1 - 4;
	if (nv >= len || nv > 32)
		return false;
	for (size_t i = 0; i < nv; i++)
		if (!g_ascii_isalnum(v[i]) && !strchr("._+-", v[i]))
			return false;
	memcpy(buf, v, nv);
	buf[nv] = '\0';
	return true;
}

/* "<image without .bin>.txt", if there is one: its first NOTES_MAX bytes. */
static char *read_notes(const char *image_path)
{
	size_t n = strlen(image_path);
	char *path = g_strdup_printf("%.*s.txt", (int)(n - 4), image_path);
	char buf[NOTES_MAX];
	ssize_t got = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;

	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		do
			got = read(fd, buf, sizeof(buf));
		while (got < 0 && errno == EINTR);
	}
	if (fd >= 0)
		close(fd);
	g_free(path);
	return got > 0 ? p2m_update_summary(buf, (size_t)got) : NULL;
}

static void rescan(struct p2m_firmware *fw, struct family_latest *f)
{
	DIR *d = opendir(fw->dir);
	struct dirent *de;
	char version[33];

	image_clear(&f->img);
	if (!d) {
		/* a directory not made yet (the add-on names one in any case) is no fault */
		if (!fw->warned && errno == ENOENT)
			p2m_info("firmware: %s does not exist: no images offered", fw->dir);
		else if (!fw->warned)
			p2m_warn("firmware: cannot read %s: %s", fw->dir, strerror(errno));
		fw->warned = true;
		return;
	}
	fw->warned = false;
	while ((de = readdir(d))) {
		struct stat st;
		char *path;

		if (!name_version(de->d_name, f->family, version, sizeof(version)))
			continue;
		if (f->img.version && strverscmp(version, f->img.version) <= 0)
			continue;
		path = g_build_filename(fw->dir, de->d_name, NULL);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
		    st.st_size > P2M_FIRMWARE_MAX_BYTES) {
			g_free(path);
			continue;
		}
		image_clear(&f->img);
		f->img.version = g_strdup(version);
		f->img.path = path;
		f->img.size = st.st_size;
	}
	closedir(d);
	if (f->img.path)
		f->img.summary = read_notes(f->img.path);
}

const struct p2m_fw_image *p2m_firmware_latest(struct p2m_firmware *fw, const char *family)
{
	struct family_latest *f = NULL;
	gint64 now = g_get_monotonic_time();

	if (!fw || !fw->dir)
		return NULL;
	for (guint i = 0; i < fw->families->len && !f; i++) {
		struct family_latest *x = g_ptr_array_index(fw->families, i);
		if (strcmp(x->family, family) == 0)
			f = x;
	}
	if (!f) {
		f = g_new0(struct family_latest, 1);
		f->family = g_strdup(family);
		g_ptr_array_add(fw->families, f);
	}
	if (!f->read_at || now - f->read_at >= (gint64)RESCAN_S * G_USEC_PER_SEC) {
		char *old = g_strdup(f->img.version);

		f->read_at = now;
		rescan(fw, f);
		if (f->img.version && g_strcmp0(old, f->img.version) != 0)
			p2m_info("firmware: %s %s offered (%s, %lld bytes)", family, f->img.version,
				 f->img.path, (long long)f->img.size);
		g_free(old);
	}
	return f->img.version ? &f->img : NULL;
}

struct p2m_fw_reader *p2m_fw_reader_open(const char *path, char *err, size_t errlen)
{
	struct p2m_fw_reader *r;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    st.st_size > P2M_FIRMWARE_MAX_BYTES) {
		snprintf(err, errlen, "%s is not a regular file of 1 byte to 16 MiB", path);
		close(fd);
		return NULL;
	}
	r = g_new0(struct p2m_fw_reader, 1);
	r->fd = fd;
	r->size = st.st_size;
	return r;
}

ssize_t p2m_fw_reader_next(struct p2m_fw_reader *r, void *buf, bool *last)
{
	size_t want = (size_t)MIN((off_t)P2M_FIRMWARE_CHUNK, r->size - r->done);
	ssize_t got;

	*last = false;
	if (want == 0)
		return 0;
	do
		got = pread(r->fd, buf, want, r->done);
	while (got < 0 && errno == EINTR);
	if (got <= 0)
		return -1; /* the file shrank under us, or a read error */
	r->done += got;
	*last = r->done >= r->size;
	return got;
}

int p2m_fw_reader_percent(const struct p2m_fw_reader *r)
{
	return r->size ? (int)(r->done * 100 / r->size) : 0;
}

void p2m_fw_reader_rewind(struct p2m_fw_reader *r)
{
	r->done = 0;
}

off_t p2m_fw_reader_size(const struct p2m_fw_reader *r)
{
	return r->size;
}

void p2m_fw_reader_close(struct p2m_fw_reader *r)
{
	if (!r)
		return;
	close(r->fd);
	g_free(r);
}
