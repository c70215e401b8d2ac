// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: restore's loading and cross-checks of a whole image set.
 * The input is a set of blobs ([u8 name length][name][u32 LE length][data],
 * ckpt-core/image-mem.c) read through an in-memory image store by
 * ckpt_images_load(), exactly as restore reads a directory or the store:
 * every metadata image parsed, the tree, cores, mms, fd tables, shmem
 * entries cross-checked.  Then what restore checks against the blobs
 * themselves: each pages-PID.img against its mm, each shmem-ID.img against
 * its entry.  Each input runs as is and with its record checksums fixed
 * up.  Seeds: real dumps (tests/fuzz/mkcorpus.py).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt-images.h"
#include "fix-crc.h"
#include "internal.h"

static void check_blobs(struct img_store *st, const struct ckpt_images *im)
{
	struct img_blob b;
	char name[64];

	for (size_t i = 0; i < im->n; i++) {
		if (!im->mm[i])
			continue;
		snprintf(name, sizeof(name), "pages-%u.img", im->pst->entries[i]->pid);
		if (st->ops->open(st, name, &b))
			continue;
		if (b.len == im->mm[i]->pages_nr * PAGE_SIZE_K)
			(void)img_piece_sum(im->mm[i]->pages_sum_kind, b.data, b.len);
		st->ops->release(st, &b);
	}
	for (size_t i = 0; i < im->shm->n_entries; i++) {
		snprintf(name, sizeof(name), "shmem-%u.img", im->shm->entries[i]->id);
		if (st->ops->open(st, name, &b))
			continue;
		ckpt_validate_shmem_pages(im->shm->entries[i], b.len);
		st->ops->release(st, &b);
	}
}

static void load(const uint8_t *data, size_t size)
{
	struct ckpt_images im;
	struct img_store *st;

	if (img_store_open_mem(data, size, &st))
		return;
	if (!ckpt_images_load(st, &im)) {
		check_blobs(st, &im);
		ckpt_images_free(&im);
	}
	st->ops->close(st);
}

/* As is, then with every record checksum fixed up (fix-crc.h). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf = malloc(size ? size : 1);

	log_set_level(-1);
	if (!buf)
		return 0;
	load(data, size);
	memcpy(buf, data, size);
	fix_set_crcs(buf, size);
	if (memcmp(buf, data, size))
		load(buf, size);
	free(buf);
	return 0;
}
