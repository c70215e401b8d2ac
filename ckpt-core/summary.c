// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What the commands read of a checkpoint without restoring it
 * (ckpt-summary.h): the inventory and the tree's ids, as plain C.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt-images.h"
#include "ckpt-summary.h"
#include "log.h"

static int dup_str(char **out, const char *s)
{
	*out = NULL;
	if (!s)
		return 0;
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

int ckpt_summary_read(struct img_store *st, struct ckpt_summary *s)
{
	ProtobufCMessage *m;
	InventoryEntry *inv;
	int ret;

	memset(s, 0, sizeof(*s));
	ret = img_read_msg(st, "inventory.img", IMG_INVENTORY, &inventory_entry__descriptor, &m);
	if (ret)
		return ret;
	inv = (InventoryEntry *)m;
	s->root_pid = inv->root_pid;
	s->shell_job = inv->shell_job;
	s->dump_time_ns = inv->dump_time_ns;
	s->freeze_time_ns = inv->has_freeze_time_ns ? inv->freeze_time_ns : 0;
	s->pages_total = inv->pages_total;
	ret = dup_str(&s->unit, inv->unit);
	if (!ret)
		ret = dup_str(&s->kernel_release, inv->kernel_release);
	if (!ret)
		ret = dup_str(&s->boot_id, inv->boot_id);
	if (!ret)
		ret = dup_str(&s->restore_failed_boot, inv->restore_failed_boot);
	inventory_entry__free_unpacked(inv, NULL);
	if (ret)
		ckpt_summary_free(s);
	return ret;
}

void ckpt_summary_free(struct ckpt_summary *s)
{
	free(s->unit);
	free(s->kernel_release);
	free(s->boot_id);
	free(s->restore_failed_boot);
	memset(s, 0, sizeof(*s));
}

int ckpt_tree_ids(struct img_store *st, uint32_t **ids, size_t *n, uint32_t *root)
{
	struct ckpt_summary sum;
	ProtobufCMessage *m;
	PstreeImage *pst;
	int r;

	*ids = NULL;
	*n = 0;
	r = img_read_msg(st, "pstree.img", IMG_PSTREE, &pstree_image__descriptor, &m);
	if (r) {
		if (r == -ENOENT)
			log_err("%s: pstree.img missing", st->where);
		return r;
	}
	pst = (PstreeImage *)m;
	if (ckpt_summary_read(st, &sum)) {
		log_err("%s: inventory.img missing or damaged", st->where);
		r = -EINVAL;
		goto out;
	}
	r = ckpt_pstree_ids(pst, sum.root_pid, sum.shell_job, ids, n);
	ckpt_summary_free(&sum);
	if (r) {
		log_err("%s: the checkpoint's process tree is damaged", st->where);
		goto out;
	}
	*root = pst->entries[0]->pid;
out:
	pstree_image__free_unpacked(pst, NULL);
	return r;
}
