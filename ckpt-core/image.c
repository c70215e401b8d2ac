// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Image containers and the directory image store.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <isa-l/crc.h>

#include "image.h"
#include "log.h"
#include "kup-image.pb-c.h"
#include "kup-ipc.pb-c.h"

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

struct dir_store {
	struct img_store st;
	int dfd;
	char *path;
	char **written;		/* names created since open, for abort */
	size_t nwritten;
	bool uncommitted;	/* an earlier checkpoint's inventory is gone */
};

#define COMMIT_NAME "inventory.img"

static int dir_create(struct img_store *st, const char *name, size_t len, struct img_blob *b)
{
	struct dir_store *ds = st->priv;
	char **nw;
	int fd;

	memset(b, 0, sizeof(*b));
	b->store = st;
	b->fd = -1;
	snprintf(b->name, sizeof(b->name), "%s", name);
	/*
	 * The first image written overwrites an earlier checkpoint's: that
	 * one stops being a checkpoint first, so that a dump that fails or is
	 * killed half-way never leaves old and new images under one inventory.
	 */
	if (!ds->uncommitted) {
		if (unlinkat(ds->dfd, COMMIT_NAME, 0) && errno != ENOENT)
			return log_errno(errno, "cannot remove the earlier %s/%s", ds->path, COMMIT_NAME);
		ds->uncommitted = true;
	}
	fd = openat(ds->dfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return log_errno(errno, "cannot create image %s/%s", ds->path, name);
	nw = realloc(ds->written, (ds->nwritten + 1) * sizeof(*nw));
	if (nw) {
		ds->written = nw;
		ds->written[ds->nwritten++] = strdup(name);
	}
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
	int fd;

	memset(b, 0, sizeof(*b));
	b->store = st;
	b->fd = -1;
	snprintf(b->name, sizeof(b->name), "%s", name);
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

static void dir_release(struct img_store *st, struct img_blob *b)
{
	if (b->data)
		munmap(b->data, b->len);
	if (b->priv)
		close((int)(long)b->priv);
	b->data = NULL;
	b->priv = NULL;
}

static int dir_commit(struct img_store *st)
{
	struct dir_store *ds = st->priv;

	if (syncfs(ds->dfd))
		return log_errno(errno, "cannot sync images in %s", ds->path);
	for (size_t i = 0; i < ds->nwritten; i++)
		free(ds->written[i]);
	ds->nwritten = 0;
	ds->uncommitted = false;
	return 0;
}

static void dir_abort(struct img_store *st)
{
	struct dir_store *ds = st->priv;

	for (size_t i = 0; i < ds->nwritten; i++) {
		if (ds->written[i])
			unlinkat(ds->dfd, ds->written[i], 0);
		free(ds->written[i]);
	}
	ds->nwritten = 0;
}

static int dir_remove(struct img_store *st, const char *name)
{
	struct dir_store *ds = st->priv;

	if (unlinkat(ds->dfd, name, 0) && errno != ENOENT)
		return log_errno(errno, "cannot remove image %s/%s", ds->path, name);
	return 0;
}

static void dir_close(struct img_store *st)
{
	struct dir_store *ds = st->priv;

	for (size_t i = 0; i < ds->nwritten; i++)
		free(ds->written[i]);
	free(ds->written);
	close(ds->dfd);
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
};

int img_store_open_dir(const char *dir, int create, struct img_store **out)
{
	struct dir_store *ds;
	int dfd;

	if (create && mkdir(dir, 0700) && errno != EEXIST)
		return log_errno(errno, "cannot create image directory %s", dir);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return log_errno(errno, "cannot open image directory %s", dir);
	ds = calloc(1, sizeof(*ds));
	if (!ds) {
		close(dfd);
		return -ENOMEM;
	}
	ds->dfd = dfd;
	ds->path = strdup(dir);
	ds->st.ops = &dir_store_ops;
	ds->st.where = ds->path;
	ds->st.priv = ds;
	*out = &ds->st;
	return 0;
}
