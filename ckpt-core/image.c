// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Image containers and the directory image store.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <isa-l/crc.h>

#include "image.h"
#if defined(__x86_64__) || defined(__i386__)
/* XXH3 through libxxhash's dispatch: the widest vector unit the CPU has */
#include <xxh_x86dispatch.h>
#endif
#include "journal.h"
#include "log.h"
#include "kup-image.pb-c.h"
#include "kup-ipc.pb-c.h"
#include "kup-mntns.pb-c.h"

uint32_t img_crc32c(uint32_t crc, const void *buf, size_t len)
{
	/* isa-l's crc32_iscsi takes and returns the non-inverted register */
	return ~crc32_iscsi((unsigned char *)buf, len, ~crc);
}

uint64_t img_xxh64(const void *buf, size_t len)
{
	return XXH64(buf, len, 0);
}

void img_sum_init(struct img_sum *s)
{
	XXH64_reset(&s->xs, 0);
}

void img_sum_update(struct img_sum *s, const void *buf, size_t len)
{
	XXH64_update(&s->xs, buf, len);
}

uint64_t img_sum_final(struct img_sum *s)
{
	return XXH64_digest(&s->xs);
}

uint64_t img_piece_sum(enum img_psum_kind kind, const void *buf, size_t len)
{
	return kind == IMG_PSUM_XXH3 ? XXH3_64bits(buf, len) : XXH64(buf, len, 0);
}

enum img_psum_kind img_psum_now(void)
{
	static int now = -1;
	int k = __atomic_load_n(&now, __ATOMIC_RELAXED);

	if (k < 0) {
		const char *e = getenv("KUP_TEST_PSUM");

		k = e && !strcmp(e, "xxh64") ? IMG_PSUM_XXH64 : IMG_PSUM_XXH3;
		__atomic_store_n(&now, k, __ATOMIC_RELAXED);
	}
	return k;
}

const char *img_psum_kind_name(uint32_t kind)
{
	switch (kind) {
	case IMG_PSUM_XXH64:
		return "xxh64";
	case IMG_PSUM_XXH3:
		return "xxh3";
	}
	return NULL;
}

static void psum_piece_reset(struct img_psum *s)
{
	if (s->kind == IMG_PSUM_XXH3)
		XXH3_64bits_reset(s->x3);
	else
		img_sum_init(&s->cur);
	s->in_cur = 0;
}

void img_psum_init(struct img_psum *s, enum img_psum_kind kind, bool whole)
{
	memset(s, 0, sizeof(*s));
	s->whole = whole;
	s->kind = kind;
	/* (the library's allocation: its state wants 64-byte alignment) */
	if (s->kind == IMG_PSUM_XXH3 && !(s->x3 = XXH3_createState())) {
		s->nomem = true;
		return;
	}
	psum_piece_reset(s);
}

static void psum_piece_done(struct img_psum *s)
{
	uint64_t v;

	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		uint64_t *n = realloc(s->sums, cap * sizeof(*n));

		if (!n) {
			s->nomem = true;
			return;
		}
		s->sums = n;
		s->cap = cap;
	}
	v = s->kind == IMG_PSUM_XXH3 ? XXH3_64bits_digest(s->x3) : img_sum_final(&s->cur);
	s->sums[s->n++] = v;
	psum_piece_reset(s);
}

void img_psum_update(struct img_psum *s, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	if (s->whole && !s->nomem) {
		if (s->kind == IMG_PSUM_XXH3)
			XXH3_64bits_update(s->x3, buf, len);
		else
			img_sum_update(&s->cur, buf, len);
		return;
	}
	while (len && !s->nomem) {
		size_t take = IMG_PAGES_CHUNK - s->in_cur < len ? IMG_PAGES_CHUNK - s->in_cur : len;

		if (s->kind == IMG_PSUM_XXH3)
			XXH3_64bits_update(s->x3, p, take);
		else
			img_sum_update(&s->cur, p, take);
		s->in_cur += take;
		p += take;
		len -= take;
		if (s->in_cur == IMG_PAGES_CHUNK)
			psum_piece_done(s);
	}
}

uint64_t img_psum_of_sums(enum img_psum_kind kind, const uint64_t *sums, size_t n)
{
	uint8_t le[64 * 8];
	struct img_sum w;
	XXH3_state_t x3;

	if (kind == IMG_PSUM_XXH3)
		XXH3_64bits_reset(&x3);
	else
		img_sum_init(&w);
	for (size_t i = 0; i < n; i += 64) {
		size_t m = n - i < 64 ? n - i : 64;

		for (size_t j = 0; j < m; j++)
			for (int b = 0; b < 8; b++)
				le[j * 8 + b] = sums[i + j] >> (8 * b);
		if (kind == IMG_PSUM_XXH3)
			XXH3_64bits_update(&x3, le, m * 8);
		else
			img_sum_update(&w, le, m * 8);
	}
	return kind == IMG_PSUM_XXH3 ? XXH3_64bits_digest(&x3) : img_sum_final(&w);
}

void img_psum_release(struct img_psum *s)
{
	free(s->sums);
	s->sums = NULL;
	if (s->x3)
		XXH3_freeState(s->x3);
	s->x3 = NULL;
}

int img_psum_final(struct img_psum *s, uint64_t *whole, uint64_t **sums, size_t *n)
{
	if (sums) {
		*sums = NULL;
		*n = 0;
	}
	if (s->whole && !s->nomem) {
		*whole = s->kind == IMG_PSUM_XXH3 ? XXH3_64bits_digest(s->x3) :
			 img_sum_final(&s->cur);
		img_psum_release(s);
		return 0;
	}
	if (s->in_cur && !s->nomem)
		psum_piece_done(s);
	if (s->nomem) {
		img_psum_release(s);
		return -ENOMEM;
	}
	*whole = img_psum_of_sums(s->kind, s->sums, s->n);
	if (sums) {
		*sums = s->sums;
		*n = s->n;
	} else {
		free(s->sums);
	}
	s->sums = NULL;
	if (s->x3)
		XXH3_freeState(s->x3);
	s->x3 = NULL;
	return 0;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24;
}

static uint32_t get_le32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

int img_write_msgs(struct img_store *st, const char *name, enum img_kind kind,
		   const ProtobufCMessage *const *msgs, size_t n)
{
	struct img_blob b;
	size_t total = IMG_HDR_SIZE, i, off;
	uint8_t *p;
	int ret;

	for (i = 0; i < n; i++)
		total += IMG_REC_HDR_SIZE + protobuf_c_message_get_packed_size(msgs[i]);

	ret = st->ops->create(st, name, total, &b);
	if (ret)
		return ret;
	p = b.data;
	memcpy(p, IMG_MAGIC, 8);
	put_le32(p + 8, IMG_FORMAT_VERSION);
	put_le32(p + 12, kind);
	off = IMG_HDR_SIZE;
	for (i = 0; i < n; i++) {
		size_t len = protobuf_c_message_pack(msgs[i], p + off + IMG_REC_HDR_SIZE);

		put_le32(p + off, len);
		put_le32(p + off + 4, img_crc32c(0, p + off + IMG_REC_HDR_SIZE, len));
		off += IMG_REC_HDR_SIZE + len;
	}
	ret = st->ops->finish(st, &b);
	st->ops->release(st, &b);
	return ret;
}

void img_free_msgs(ProtobufCMessage **msgs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(msgs[i], NULL);
	free(msgs);
}

int img_parse(const void *buf, size_t len, enum img_kind kind,
	      const ProtobufCMessageDescriptor *desc, const char *what,
	      ProtobufCMessage ***out, size_t *nout)
{
	const uint8_t *p = buf;
	ProtobufCMessage **msgs = NULL;
	size_t n = 0, cap = 0, off;
	uint32_t v;

	if (len < IMG_HDR_SIZE || memcmp(p, IMG_MAGIC, 8)) {
		log_err("image %s: not a kup image (bad magic or truncated header)", what);
		return -EINVAL;
	}
	v = get_le32(p + 8);
	if (v != IMG_FORMAT_VERSION) {
		log_err("image %s: format version %u, this kup reads version %u",
			what, v, IMG_FORMAT_VERSION);
		return -EINVAL;
	}
	v = get_le32(p + 12);
	if (v != (uint32_t)kind) {
		log_err("image %s: holds image kind %u, expected %u (%s)", what, v,
			kind, img_kind_name(kind));
		return -EINVAL;
	}
	for (off = IMG_HDR_SIZE; off < len;) {
		uint32_t rlen, crc;
		ProtobufCMessage *m;

		if (len - off < IMG_REC_HDR_SIZE) {
			log_err("image %s: truncated record header at offset %zu", what, off);
			goto fail;
		}
		rlen = get_le32(p + off);
		crc = get_le32(p + off + 4);
		if (rlen > IMG_MAX_RECORD || rlen > len - off - IMG_REC_HDR_SIZE) {
			log_err("image %s: record %zu at offset %zu: length %u beyond end of image",
				what, n, off, rlen);
			goto fail;
		}
		if (img_crc32c(0, p + off + IMG_REC_HDR_SIZE, rlen) != crc) {
			log_err("image %s: record %zu at offset %zu: checksum mismatch",
				what, n, off);
			goto fail;
		}
		m = protobuf_c_message_unpack(desc, NULL, rlen, p + off + IMG_REC_HDR_SIZE);
		if (!m) {
			log_err("image %s: record %zu at offset %zu: cannot decode %s",
				what, n, off, desc->name);
			goto fail;
		}
		if (n == cap) {
			ProtobufCMessage **nm;

			cap = cap ? cap * 2 : 4;
			nm = realloc(msgs, cap * sizeof(*msgs));
			if (!nm) {
				protobuf_c_message_free_unpacked(m, NULL);
				goto fail;
			}
			msgs = nm;
		}
		msgs[n++] = m;
		off += IMG_REC_HDR_SIZE + rlen;
	}
	*out = msgs;
	*nout = n;
	return 0;
fail:
	img_free_msgs(msgs, n);
	return -EINVAL;
}

int img_read_msg(struct img_store *st, const char *name, enum img_kind kind,
		 const ProtobufCMessageDescriptor *desc, ProtobufCMessage **msg)
{
	ProtobufCMessage **msgs;
	struct img_blob b;
	size_t n;
	int ret;

	ret = st->ops->open(st, name, &b);
	if (ret)
		return ret;
	ret = img_parse(b.data, b.len, kind, desc, name, &msgs, &n);
	st->ops->release(st, &b);
	if (ret)
		return ret;
	if (n != 1) {
		log_err("image %s: %zu records, expected exactly one", name, n);
		img_free_msgs(msgs, n);
		return -EINVAL;
	}
	*msg = msgs[0];
	free(msgs);
	return 0;
}

static const struct {
	const char *name;
	const ProtobufCMessageDescriptor *desc;
} img_kinds[IMG_KIND_MAX] = {
	[IMG_INVENTORY] = { "inventory", &inventory_entry__descriptor },
	[IMG_PSTREE]    = { "pstree", &pstree_image__descriptor },
	[IMG_CORE]      = { "core", &core_entry__descriptor },
	[IMG_MM]        = { "mm", &mm_image__descriptor },
	[IMG_FILES]     = { "files", &files_image__descriptor },
	[IMG_FDTABLE]   = { "fdtable", &fdtable_image__descriptor },
	[IMG_SHMEM]     = { "shmem", &shmem_image__descriptor },
	[IMG_SOCKETS]   = { "sockets", NULL },
	[IMG_IPC]       = { "ipc", &ipc_image__descriptor },
	[IMG_MNTNS]     = { "mntns", &mntns_image__descriptor },
	[IMG_PARTS]     = { "parts", &parts_image__descriptor },
};

const ProtobufCMessageDescriptor *img_kind_desc(enum img_kind kind)
{
	return kind > 0 && kind < IMG_KIND_MAX ? img_kinds[kind].desc : NULL;
}

const char *img_kind_name(enum img_kind kind)
{
	return kind > 0 && kind < IMG_KIND_MAX ? img_kinds[kind].name : "unknown";
}

/* ---- the directory store ------------------------------------------------ */

/*
 * Reading: images are opened in the directory, O_NOFOLLOW, under a shared
 * flock() on it (lock_dir()).
 *
 * Writing (a dump): the directory is locked with flock() on its fd; images
 * are created O_EXCL|O_NOFOLLOW in a fresh directory .kup-new-XXXXXX inside
 * it (0700, made by mkdtemp), so that nothing planted in the directory can
 * be followed or overwritten, and the previous checkpoint stays whole until
 * the commit.  The commit syncs, removes the previous inventory.img (the
 * previous checkpoint is no longer complete), renames the new images into
 * place, removes the previous checkpoint's other images, and renames the new
 * inventory.img last: a reader sees one complete checkpoint or none.
 */
struct dir_store {
	struct img_store st;
	int dfd;
	char *path;
	bool writing;
	int sdfd;		/* the staging directory, -1 if none */
	char sname[32];		/* its name in dfd */
};

#define COMMIT_NAME	"inventory.img"
#define STAGING_PREFIX	".kup-new-"

static bool is_image_name(const char *n)
{
	size_t l = strlen(n);

	return l > 4 && !strcmp(n + l - 4, ".img") && n[0] != '.';
}

static bool valid_blob_name(const char *name)
{
	return name[0] && name[0] != '.' && !strchr(name, '/') && strlen(name) < 64;
}

/* Remove every entry of the staging directory @name (in @dfd), then it. */
static void remove_staging(struct dir_store *ds, int dfd, const char *name)
{
	int sfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct dirent *de;
	DIR *d;

	if (sfd >= 0 && (d = fdopendir(sfd))) {
		while ((de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				unlinkat(dirfd(d), de->d_name, 0);
		closedir(d);
	} else if (sfd >= 0) {
		close(sfd);
	}
	if (unlinkat(dfd, name, AT_REMOVEDIR) && errno != ENOENT)
		log_warn_errno(errno, "cannot remove %s/%s", ds->path, name);
}

static int staging_begin(struct dir_store *ds)
{
	char tmpl[PATH_MAX];

	if (ds->sdfd >= 0)
		return 0;
	/* the directory is root's and writable by nobody else (checked) */
	if ((size_t)snprintf(tmpl, sizeof(tmpl), "%s/" STAGING_PREFIX "XXXXXX", ds->path) >= sizeof(tmpl))
		return log_errno(ENAMETOOLONG, "image directory %s", ds->path);
	if (!mkdtemp(tmpl))
		return log_errno(errno, "cannot make a new directory in %s for the images", ds->path);
	snprintf(ds->sname, sizeof(ds->sname), "%s", strrchr(tmpl, '/') + 1);
	/* journal.h: a dump killed from here on leaves it to the recovery */
	if (journal_active()) {
		char *abs = realpath(tmpl, NULL);
		int ret = abs ? journal_add("partial %s", abs) : log_errno(errno, "%s", tmpl);

		free(abs);
		if (ret) {
			unlinkat(ds->dfd, ds->sname, AT_REMOVEDIR);
			return ret;
		}
	}
	ds->sdfd = openat(ds->dfd, ds->sname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (ds->sdfd < 0) {
		int e = errno;

		unlinkat(ds->dfd, ds->sname, AT_REMOVEDIR);
		return log_errno(e, "cannot open %s", tmpl);
	}
	return 0;
}

static void staging_drop(struct dir_store *ds)
{
	if (ds->sdfd < 0)
		return;
	close(ds->sdfd);
	ds->sdfd = -1;
	remove_staging(ds, ds->dfd, ds->sname);
}

static int dir_create(struct img_store *st, const char *name, size_t len, struct img_blob *b)
{
	struct dir_store *ds = st->priv;
	int fd, ret;

	memset(b, 0, sizeof(*b));
	b->store = st;
	b->fd = -1;
	snprintf(b->name, sizeof(b->name), "%s", name);
	if (!ds->writing) {
		log_err("image directory %s: not open for writing", ds->path);
		return -EBADF;
	}
	if (!valid_blob_name(name)) {
		log_err("image directory %s: bad image name '%s'", ds->path, name);
		return -EINVAL;
	}
	ret = staging_begin(ds);
	if (ret)
		return ret;
	fd = openat(ds->sdfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST && !unlinkat(ds->sdfd, name, 0))	/* written again */
		fd = openat(ds->sdfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return log_errno(errno, "cannot create image %s/%s/%s", ds->path, ds->sname, name);
	if (len && ftruncate(fd, len)) {
		int e = errno;
		close(fd);
		return log_errno(e, "cannot size image %s/%s to %zu bytes", ds->path, name, len);
	}
	b->len = len;
	if (len) {
		b->data = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (b->data == MAP_FAILED) {
			int e = errno;
			close(fd);
			b->data = NULL;
			return log_errno(e, "cannot map image %s/%s", ds->path, name);
		}
	}
	b->priv = (void *)(long)fd;
	b->fd = fd;
	return 0;
}

static int dir_finish(struct img_store *st, struct img_blob *b)
{
	return 0;	/* data reaches the page cache; commit() syncs */
}

static int dir_open(struct img_store *st, const char *name, struct img_blob *b)
{
	struct dir_store *ds = st->priv;
	struct stat sb;
	int fd = -1;

	memset(b, 0, sizeof(*b));
	b->store = st;
	b->fd = -1;
	snprintf(b->name, sizeof(b->name), "%s", name);
	if (!valid_blob_name(name))
		return -ENOENT;
	/* while writing, the images written so far are the store's */
	if (ds->sdfd >= 0)
		fd = openat(ds->sdfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		fd = openat(ds->dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		int e = errno;
		if (e != ENOENT)
			log_errno(e, "cannot open image %s/%s", ds->path, name);
		return -e;
	}
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
		close(fd);
		log_err("image %s/%s: not a regular file", ds->path, name);
		return -EINVAL;
	}
	b->len = sb.st_size;
	if (b->len) {
		b->data = mmap(NULL, b->len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (b->data == MAP_FAILED) {
			int e = errno;
			close(fd);
			b->data = NULL;
			return log_errno(e, "cannot map image %s/%s", ds->path, name);
		}
	}
	b->priv = (void *)(long)fd;
	return 0;
}

static struct deferred_unmap {
	void *addr;
	size_t len;
} *deferred;
static size_t ndeferred, deferred_cap;
static bool deferring;

void img_defer_unmaps(bool on)
{
	deferring = on;
	if (on)
		return;
	for (size_t i = 0; i < ndeferred; i++)
		munmap(deferred[i].addr, deferred[i].len);
	free(deferred);
	deferred = NULL;
	ndeferred = deferred_cap = 0;
}

static void unmap_blob(void *addr, size_t len)
{
	if (deferring && ndeferred == deferred_cap) {
		size_t cap = deferred_cap ? deferred_cap * 2 : 16;
		struct deferred_unmap *n = realloc(deferred, cap * sizeof(*n));

		if (n) {
			deferred = n;
			deferred_cap = cap;
		}
	}
	if (deferring && ndeferred < deferred_cap)
		deferred[ndeferred++] = (struct deferred_unmap){ addr, len };
	else
		munmap(addr, len);
}

static void dir_release(struct img_store *st, struct img_blob *b)
{
	if (b->data)
		unmap_blob(b->data, b->len);
	if (b->priv)
		close((int)(long)b->priv);
	b->data = NULL;
	b->priv = NULL;
}

/* A piece of a blob opened with open(), read from its file (a lazy restore
 * reads pages while the tree runs: a file cut short meanwhile is an error,
 * not a SIGBUS in the mapping). */
static int dir_read(struct img_store *st, struct img_blob *b, uint64_t off, void *buf, size_t len)
{
	int fd = b->priv ? (int)(long)b->priv : -1;
	size_t done = 0;

	if (fd < 0 || off > b->len || len > b->len - off)
		return -EINVAL;
	while (done < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + done, len - done, off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;

			return log_errno(e, "image %s: read of %zu bytes at %" PRIu64 "%s",
					 b->name, len - done, off + done, n ? "" : " past its end (cut short?)");
		}
		done += n;
	}
	return 0;
}

/* Is @name an image of the staging directory? */
static bool staged(struct dir_store *ds, const char *name)
{
	struct stat sb;

	return !fstatat(ds->sdfd, name, &sb, AT_SYMLINK_NOFOLLOW);
}

static int dir_commit(struct img_store *st)
{
	struct dir_store *ds = st->priv;
	struct dirent *de;
	DIR *d;
	int fd, ret = 0;

	if (!ds->writing || ds->sdfd < 0 || !staged(ds, COMMIT_NAME)) {
		log_err("image directory %s: nothing to commit", ds->path);
		return -EINVAL;
	}
	if (syncfs(ds->dfd))
		return log_errno(errno, "cannot sync images in %s", ds->path);
	/* from here the previous checkpoint is no longer complete */
	if (unlinkat(ds->dfd, COMMIT_NAME, 0) && errno != ENOENT)
		return log_errno(errno, "cannot remove the previous %s/%s", ds->path, COMMIT_NAME);
	/* the previous checkpoint's images this one has not replaced */
	fd = openat(ds->dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return log_errno(errno, "cannot list %s", ds->path);
	}
	while ((de = readdir(d))) {
		if (is_image_name(de->d_name) && strcmp(de->d_name, COMMIT_NAME) &&
		    !staged(ds, de->d_name))
			unlinkat(ds->dfd, de->d_name, 0);
	}
	closedir(d);
	fd = openat(ds->sdfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return log_errno(errno, "cannot list %s/%s", ds->path, ds->sname);
	}
	/* again until none is left: a listing changed under readdir may skip names */
	for (bool moved = true; moved && !ret;) {
		moved = false;
		rewinddir(d);
		while (!ret && (de = readdir(d))) {
			if (!is_image_name(de->d_name) || !strcmp(de->d_name, COMMIT_NAME))
				continue;
			if (renameat(ds->sdfd, de->d_name, ds->dfd, de->d_name))
				ret = log_errno(errno, "cannot move image %s into %s", de->d_name,
						ds->path);
			moved = true;
		}
	}
	closedir(d);
	if (ret)
		return ret;
	if (fsync(ds->dfd))
		return log_errno(errno, "cannot sync %s", ds->path);
	if (renameat(ds->sdfd, COMMIT_NAME, ds->dfd, COMMIT_NAME))
		return log_errno(errno, "cannot move %s into %s", COMMIT_NAME, ds->path);
	if (fsync(ds->dfd))
		return log_errno(errno, "cannot sync %s", ds->path);
	staging_drop(ds);
	return 0;
}

static void dir_abort(struct img_store *st)
{
	staging_drop(st->priv);
}

static int dir_remove(struct img_store *st, const char *name)
{
	struct dir_store *ds = st->priv;
	int dfd = ds->sdfd >= 0 ? ds->sdfd : ds->dfd;

	if (!ds->writing || !valid_blob_name(name))
		return -EINVAL;
	if (unlinkat(dfd, name, 0) && errno != ENOENT)
		return log_errno(errno, "cannot remove image %s/%s", ds->path, name);
	return 0;
}

static void dir_close(struct img_store *st)
{
	struct dir_store *ds = st->priv;

	staging_drop(ds);
	close(ds->dfd);		/* and the lock goes */
	free(ds->path);
	free(ds);
}

static const struct img_store_ops dir_store_ops = {
	.create = dir_create,
	.finish = dir_finish,
	.open = dir_open,
	.release = dir_release,
	.commit = dir_commit,
	.abort = dir_abort,
	.close = dir_close,
	.remove = dir_remove,
	.read = dir_read,
};

/*
 * May a dump write into @ds's directory?  It holds nothing but a previous
 * checkpoint: regular image files of root's, and staging directories left
 * by a dump that was killed (removed here).
 */
static int check_dump_dir(struct dir_store *ds)
{
	int fd = openat(ds->dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	int ret = 0;
	DIR *d;

	d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return log_errno(errno, "cannot list image directory %s", ds->path);
	}
	while (!ret && (de = readdir(d))) {
		const char *n = de->d_name, *why = NULL;
		struct stat sb;

		if (!strcmp(n, ".") || !strcmp(n, ".."))
			continue;
		if (fstatat(ds->dfd, n, &sb, AT_SYMLINK_NOFOLLOW)) {
			ret = log_errno(errno, "cannot inspect %s/%s", ds->path, n);
			break;
		}
		if (S_ISDIR(sb.st_mode) && !strncmp(n, STAGING_PREFIX, strlen(STAGING_PREFIX)) &&
		    sb.st_uid == 0 && strlen(n) < sizeof(ds->sname)) {
			log_info("removing %s/%s, left by a dump that did not finish", ds->path, n);
			remove_staging(ds, ds->dfd, n);
			continue;
		}
		if (S_ISLNK(sb.st_mode))
			why = "a symbolic link";
		else if (!S_ISREG(sb.st_mode))
			why = "not a regular file";
		else if (!is_image_name(n))
			why = "not a kup image";
		else if (sb.st_uid != 0)
			why = "not root's";
		else if (sb.st_nlink != 1)
			why = "a file with other links";
		if (why) {
			log_err("%s/%s: %s: kup dump writes only into a new directory or one "
				"holding nothing but a previous checkpoint", ds->path, n, why);
			ret = -EPERM;
		}
	}
	closedir(d);
	return ret;
}

/*
 * A dump holds an exclusive flock() on the directory, a restore reading it a
 * shared one: no restore reads a checkpoint half replaced, no two dumps
 * write one directory.  A conflict fails at once, naming the holder.
 */
static int lock_dir(struct dir_store *ds)
{
	bool writer = true;
	pid_t holder;

	if (!flock(ds->dfd, (ds->writing ? LOCK_EX : LOCK_SH) | LOCK_NB))
		return 0;
	if (errno != EWOULDBLOCK)
		return log_errno(errno, "cannot lock image directory %s", ds->path);
	holder = img_lock_holder(ds->dfd, &writer);
	if (holder)
		log_err("image directory %s is being %s (pid %d)", ds->path,
			writer ? "written by another kup dump" : "read by a kup restore", holder);
	else
		log_err("image directory %s is being %s", ds->path,
			writer ? "written by another kup dump" : "read by a kup restore");
	return -EBUSY;
}

int img_store_open_dir(const char *dir, int flags, struct img_store **out)
{
	bool writing = flags & IMG_DIR_WRITE, made = false;
	struct dir_store *ds;
	int dfd, ret;

	if (writing) {
		if (!mkdir(dir, 0700))
			made = true;
		else if (errno != EEXIST)
			return log_errno(errno, "cannot create image directory %s", dir);
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return log_errno(errno, "cannot open image directory %s", dir);
	if (!(flags & IMG_DIR_ANY_PLACE) || writing) {
		ret = img_trust_path(dir, dfd, writing ? "refusing to write images there" :
				     "refusing the images");
		if (ret) {
			close(dfd);
			if (made)
				rmdir(dir);
			return ret;
		}
	}
	ds = calloc(1, sizeof(*ds));
	if (!ds || !(ds->path = strdup(dir))) {
		free(ds);
		close(dfd);
		return -ENOMEM;
	}
	ds->dfd = dfd;
	ds->sdfd = -1;
	ds->writing = writing;
	ds->st.ops = &dir_store_ops;
	ds->st.where = ds->path;
	ds->st.priv = ds;
	ret = lock_dir(ds);
	if (!ret && writing && !made)
		ret = check_dump_dir(ds);
	if (ret) {
		close(dfd);
		free(ds->path);
		free(ds);
		return ret;
	}
	*out = &ds->st;
	return 0;
}
