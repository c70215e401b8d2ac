// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A read-only image store over one buffer holding a sequence of blobs:
 * [u8 name length][name][u32 little-endian data length][data].
 *
 * It lets an image set travel as one byte string: the fuzz targets feed it
 * whole sets to restore's loader and cross-checks, and tests can build a set
 * in memory.  A blob opened is a private copy of exactly its bytes, so that
 * a sanitizer sees any read past its end.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt-images.h"
#include "internal.h"

struct mem_store {
	struct img_store st;
	const uint8_t *buf;
	size_t len;
};

/* Find blob @name: its data and length.  The last one of a name wins. */
static bool mem_find(const struct mem_store *ms, const char *name, const uint8_t **data,
		     uint32_t *dlen)
{
	size_t pos = 0, nlen = strlen(name);
	bool found = false;

	while (pos < ms->len) {
		size_t l = ms->buf[pos];
		uint32_t d;

		if (ms->len - pos - 1 < l + 4)
			break;
		memcpy(&d, ms->buf + pos + 1 + l, 4);
		d = le32toh(d);
		if (ms->len - pos - 1 - l - 4 < d)
			break;
		if (l == nlen && !memcmp(ms->buf + pos + 1, name, l)) {
			*data = ms->buf + pos + 1 + l + 4;
			*dlen = d;
			found = true;
		}
		pos += 1 + l + 4 + d;
	}
	return found;
}

static int mem_open(struct img_store *st, const char *name, struct img_blob *b)
{
	const struct mem_store *ms = st->priv;
	const uint8_t *data;
	uint32_t len;

	memset(b, 0, sizeof(*b));
	b->store = st;
	b->fd = -1;
	snprintf(b->name, sizeof(b->name), "%s", name);
	if (!mem_find(ms, name, &data, &len))
		return -ENOENT;
	b->len = len;
	if (len) {
		b->data = malloc(len);
		if (!b->data)
			return -ENOMEM;
		memcpy(b->data, data, len);
	}
	return 0;
}

static void mem_release(struct img_store *st, struct img_blob *b)
{
	free(b->data);
	b->data = NULL;
}

static void mem_close(struct img_store *st)
{
	free(st->priv);
}

static const struct img_store_ops mem_store_ops = {
	.open = mem_open,
	.release = mem_release,
	.close = mem_close,
};

int img_store_open_mem(const void *buf, size_t len, struct img_store **out)
{
	struct mem_store *ms = calloc(1, sizeof(*ms));

	if (!ms)
		return -ENOMEM;
	ms->buf = buf;
	ms->len = len;
	ms->st.ops = &mem_store_ops;
	ms->st.where = "(memory)";
	ms->st.priv = ms;
	*out = &ms->st;
	return 0;
}

int img_mem_put(FILE *f, const char *name, const void *data, uint32_t len)
{
	uint8_t l = strlen(name);
	uint32_t le = htole32(len);

	if (strlen(name) > 255)
		return -ENAMETOOLONG;
	if (fwrite(&l, 1, 1, f) != 1 || fwrite(name, 1, l, f) != l || fwrite(&le, 4, 1, f) != 1 ||
	    (len && fwrite(data, 1, len, f) != len))
		return -EIO;
	return 0;
}
