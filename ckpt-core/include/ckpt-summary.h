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
#include "json.h"

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
	char *restore_failed_boot;	/* inventory_entry.restore_failed_boot, or NULL */
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
 * kup show's decoder (ckpt-core/show-image.c).  Decode one image file's
 * bytes (@len of them, named @name in messages) to a JSON value
 * {"kind": K, "entries": [...]}, protobuf's JSON mapping with the bytes
 * fields that carry something (sockets, registers, siginfo, BPF...)
 * decoded (docs/image-format.md).  With @text its leaves are display
 * strings for ckpt_show_text(): numbers in hex, octal or by name as the
 * field wants, strings quoted.  NULL when it is not a valid image (logged).
 * Safe on any bytes.
 */
json_t *ckpt_show_image(const void *data, size_t len, const char *name, bool text);
void ckpt_show_text(FILE *out, const char *name, const json_t *img);

/* A checkpoint's images in memory, as kup show read them from a directory or a store. */
struct ckpt_show_blob {
	char *name;
	void *data;	/* NULL: not a metadata image (pages): only its size read */
	size_t len;
};

struct ckpt_show_set {
	struct ckpt_show_blob *v;
	size_t n;
};

const struct ckpt_show_blob *ckpt_show_find(const struct ckpt_show_set *set, const char *name);

/*
 * Summaries (ckpt-core/show-summary.c): one JSON object per process, per
 * fd (of process @pid, 0: of all), per mapping, in the tree's order; NULL
 * when the set holds no readable pstree.img or @pid is not in it (logged).
 * ckpt_show_table() prints such rows as a table.
 */
json_t *ckpt_show_ps(const struct ckpt_show_set *set);
json_t *ckpt_show_fds(const struct ckpt_show_set *set, uint32_t pid);
json_t *ckpt_show_mappings(const struct ckpt_show_set *set, uint32_t pid);
void ckpt_show_table(FILE *out, const json_t *rows);

#endif
