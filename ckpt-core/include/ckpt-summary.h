/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reading a checkpoint without restoring it (ckpt-core/summary.c,
 * ckpt-core/show-image.c): what the commands need to know of one, in plain
 * C structures, and the decoder of kup show.  The image schema (the
 * protobuf-c structures) stays inside the engine.
 */
#ifndef KUP_CKPT_SUMMARY_H
#define KUP_CKPT_SUMMARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "image.h"

/* The checkpoint as its inventory.img describes it. */
struct ckpt_summary {
	uint32_t root_pid;
	bool shell_job;			/* dumped with --shell-job */
	char *unit;			/* the service it is (kup dump --unit), or NULL */
	char *kernel_release;		/* of the kernel it was dumped on, or NULL */
	char *boot_id;			/* of the boot it was dumped on, or NULL */
	uint64_t dump_time_ns;		/* CLOCK_REALTIME */
	uint64_t freeze_time_ns;	/* CLOCK_REALTIME at the freeze; 0: not known */
	uint64_t pages_total;
};

/*
 * Read the inventory of the checkpoint in @st into @s (free it with
 * ckpt_summary_free).  -ENOENT when there is none (not logged: no complete
 * checkpoint there); other errors (a damaged image) are logged.
 */
int ckpt_summary_read(struct img_store *st, struct ckpt_summary *s);
void ckpt_summary_free(struct ckpt_summary *s);

/*
 * Every PID and TID of the tree in @st, sorted and unique, the tree checked
 * as restore checks it (a damaged one is refused, logged); *root is the
 * root's pid.  *ids is malloc'd.
 */
int ckpt_tree_ids(struct img_store *st, uint32_t **ids, size_t *n, uint32_t *root);

/*
 * Decode one image file's bytes (@len of them, named @name) to readable
 * text, or with @json to one "name": value member of a JSON object (@first:
 * no comma before it).  0, or -1 when it is not a valid image (logged).
 * Safe on any bytes.
 */
int ckpt_show_image(FILE *out, const void *data, size_t len, const char *name, bool json,
		    bool first);

#endif
