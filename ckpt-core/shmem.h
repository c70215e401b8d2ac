/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KUP_SHMEM_H
#define KUP_SHMEM_H
#include "internal.h"
void shmem_set_store(struct shmem_dump *sd, struct img_store *st);
/* fds[id-1] is the restorer's fd of object id; made[id-1]: a /dev/shm
 * object the restore created (shmem_rst_undo removes them after a failure).
 * A memfd the files restore made (@fr) is mapped as that one object. */
int shmem_rst_open(struct img_store *st, const ShmemImage *img, struct files_rst *fr,
		   int **fds, bool **made);
void shmem_rst_undo(const ShmemImage *img, const bool *made);
#endif
