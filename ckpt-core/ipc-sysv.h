/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * System V IPC (ipc-sysv.c): the segments a tree attaches, its semaphore
 * sets and message queues.
 */
#ifndef KUP_IPC_SYSV_H
#define KUP_IPC_SYSV_H
#include "internal.h"

/* ---- dump ---- */
struct ipc_dump;
/* Is @list ("shm:ID,sem:ID,msg:ID", kup dump --sysv-ipc) well formed? */
int ipc_check_named(const char *list);
/* @named: objects to keep although the tree does not use them (or NULL). */
int ipc_dump_begin(struct img_store *st, const char *named, struct ipc_dump **out);
/*
 * Mapping @v of @pid is System V segment @shmid ("/SYSV... (deleted)"):
 * record the attachment in @v and, the first time, the segment.  @prev is
 * the mapping before it.  Refuses what cannot be restored.
 */
int ipc_dump_shm_vma(struct ipc_dump *d, pid_t pid, VmaEntry *v, const VmaEntry *prev,
		     int shmid, bool hugetlb, bool may_write);
/* The tree's semaphore sets and message queues; writes ipc.img. */
int ipc_dump_end(struct ipc_dump *d, const pid_t *pids, int npids);
void ipc_dump_free(struct ipc_dump *d);

/* ---- restore ---- */
struct ipc_rst;
/* Checks of an untrusted ipc.img; no side effect. */
int ipc_validate_image(const IpcImage *img);
/* Read and validate ipc.img (none: no objects). */
int ipc_rst_load(struct img_store *st, struct ipc_rst **out);
/* The segment with @shmid in the image, or NULL. */
const SysvShmEntry *ipc_rst_shm(const struct ipc_rst *r, int shmid);
/* Create every object with its id, before any task maps a segment. */
int ipc_rst_create(struct ipc_rst *r, struct img_store *st);
/* Once every task is attached: segments removed at dump are removed again. */
int ipc_rst_finish(struct ipc_rst *r);
/* @undo: remove the objects created (a failed restore). */
void ipc_rst_free(struct ipc_rst *r, bool undo);
#endif
