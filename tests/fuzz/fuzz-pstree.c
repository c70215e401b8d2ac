// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: the process tree, as kup hold and restore read it.  The
 * input is a pstree_image (protobuf, the record of pstree.img); its last
 * byte says whether the tree is a shell job.  ckpt_pstree_ids() (kup hold's
 * reader: checks, then every pid and tid) must return a sorted list without
 * duplicates whenever it accepts a tree.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ckpt-images.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	PstreeImage *pst;
	uint32_t *ids;
	size_t n;

	log_set_level(-1);
	if (!size)
		return 0;
	pst = pstree_image__unpack(NULL, size - 1, data);
	if (!pst)
		return 0;
	if (!ckpt_pstree_ids(pst, pst->n_entries ? pst->entries[0]->pid : 0, data[size - 1] & 1,
			     &ids, &n)) {
		for (size_t i = 1; i < n; i++)
			if (ids[i] <= ids[i - 1])
				abort();
		free(ids);
	}
	pstree_image__free_unpacked(pst, NULL);
	return 0;
}
