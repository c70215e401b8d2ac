/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A whole image set, parsed and cross-checked (ckpt-core/validate.c).
 *
 * img_parse() checks each image on its own (bounds, crc, protobuf).  What no
 * single image shows is checked here: the shape of the process tree, the ids
 * one image uses that another defines, mappings against the pages that fill
 * them, every field restore later hands to the kernel.  The checks are pure
 * functions over parsed images (no syscall, nothing changed): restore runs
 * them before it makes anything, the store's readers at boot run them, and
 * the fuzz targets (tests/fuzz) run them on any bytes.  Each refusal is
 * logged once, naming the image and the pid.
 */
#ifndef KUP_CKPT_IMAGES_H
#define KUP_CKPT_IMAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "image.h"
#include "kup-image.pb-c.h"

#define CKPT_PID_MAX	4194304u	/* the kernel's PID_MAX_LIMIT */

struct ckpt_images {
	InventoryEntry *inv;
	PstreeImage *pst;
	FilesImage *files;
	FdtableImage *fdtab;
	ShmemImage *shm;
	size_t n;		/* pst->n_entries */
	CoreEntry **core;	/* [n]: NULL for a zombie */
	MmImage **mm;		/* [n]: NULL for a zombie */
	FdtableEntry **fdt;	/* [n]: into fdtab, NULL for a zombie */
};

/*
 * Read every metadata image of the set in @st and cross-check them all
 * (ckpt_images_validate).  On failure *im is freed and zeroed.
 */
int ckpt_images_load(struct img_store *st, struct ckpt_images *im);
void ckpt_images_free(struct ckpt_images *im);

/* Every check below, over a loaded set (@im->core etc. filled). */
int ckpt_images_validate(const struct ckpt_images *im);

/*
 * The process tree: pids and tids in range and each used once, the root
 * first (@root_pid) and alive, every parent listed before its children (no
 * self-parent, no cycle, no missing or zombie parent), thread lists that
 * start with the pid, sessions and groups that restore can recreate
 * (@shell_job: the root's session and group may be outside the tree).
 */
int ckpt_validate_pstree(const PstreeImage *pst, uint32_t root_pid, bool shell_job);

/*
 * One process's memory: mappings ordered, page-aligned, not overlapping,
 * below the task size, of a known kind, their file and shared-memory ids
 * defined in @files / @shm; page runs in address order, inside one mapping
 * each, filling the pages image in order, pages_nr pages in all; the runs
 * shared with the parent (cow_runs) in address order inside private
 * anonymous mappings, apart from the own runs.  That the parent's image
 * has those is checked with the whole set (ckpt_images_validate).
 */
int ckpt_validate_mm(const MmImage *mm, uint32_t pid, const FilesImage *files,
		     const ShmemImage *shm);
/* The pages @mm (of @pid) shares with its parent (@pmm, of @ppid; NULL for
 * the root) are all in the parent's image, as its own or shared in turn
 * with its own parent (the parent's image checked first). */
int ckpt_validate_cow(const MmImage *mm, const MmImage *pmm, uint32_t pid, uint32_t ppid);
/* The run of @mm's own pages (@cow: of those shared with its parent) that
 * holds @vaddr, or NULL.  For a validated image (runs in address order). */
const PageRun *ckpt_mm_run_at(const MmImage *mm, uint64_t vaddr, bool cow);

/* The shared-memory objects: ids 1..n in order, sizes, runs inside the
 * object, paths restore may create, file ids defined in @files. */
int ckpt_validate_shmem(const ShmemImage *shm, const FilesImage *files);
/* The page image of object @e (shmem-ID.img, @len bytes) holds its runs. */
int ckpt_validate_shmem_pages(const ShmemEntry *e, size_t len);

/*
 * Every PID and TID of a tree, sorted and unique, for kup hold (once
 * ckpt_validate_pstree passed).  *ids is malloc'd.
 */
int ckpt_pstree_ids(const PstreeImage *pst, uint32_t root_pid, bool shell_job, uint32_t **ids,
		    size_t *n);

/*
 * An image store over one buffer (read-only): a sequence of blobs, each
 * [u8 name length][name][u32 little-endian data length][data].  A blob cut
 * short by the end of the buffer is dropped.  @buf must outlive the store.
 */
int img_store_open_mem(const void *buf, size_t len, struct img_store **out);
/* Append one blob in that encoding to @f (to make such a buffer). */
int img_mem_put(FILE *f, const char *name, const void *data, uint32_t len);

#endif
