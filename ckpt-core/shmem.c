// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Shared memory objects: shared anonymous mappings, memfds and /dev/shm
 * files.  Each object is saved once, whoever maps it, with only the pages
 * that exist (SEEK_DATA/SEEK_HOLE), in "shmem-ID.img"; restore recreates it
 * once in the restorer and every restored task maps the same object.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "shmem.h"

#define SHMEM_STEP (8UL << 20)

struct shmem_dump {
	ShmemEntry **e;
	size_t n;
	struct img_store *st;
};

int shmem_dump_begin(struct shmem_dump **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void shmem_dump_free(struct shmem_dump *sd)
{
	if (!sd)
		return;
	for (size_t i = 0; i < sd->n; i++) {
		if (sd->e[i]->n_runs)
			free(sd->e[i]->runs[0]);
		free(sd->e[i]->runs);
		free(sd->e[i]->path);
		free(sd->e[i]);
	}
	free(sd->e);
	free(sd);
}

void shmem_set_store(struct shmem_dump *sd, struct img_store *st) { sd->st = st; }

static int save_object(struct shmem_dump *sd, ShmemEntry *e, int fd, const char *what)
{
	PageRun *runs = NULL;
	size_t n = 0, cap = 0;
	uint64_t pages = 0;
	struct img_blob b;
	struct img_sum sum;
	char name[64];
	off_t pos = 0;
	int ret;

	/* pass 1: where the data is */
	for (;;) {
		off_t d = lseek(fd, pos, SEEK_DATA), h;

		if (d < 0 || (uint64_t)d >= e->size)
			break;
		h = lseek(fd, d, SEEK_HOLE);
		if (h < 0 || (uint64_t)h > e->size)
			h = e->size;
		d &= ~(PAGE_SIZE_K - 1);
		h = PAGE_ALIGN_K(h);
		if (n == cap) {
			PageRun *nr;
			cap = cap ? cap * 2 : 16;
			nr = realloc(runs, cap * sizeof(*nr));
			if (!nr) {
				free(runs);
				return -ENOMEM;
			}
			runs = nr;
		}
		page_run__init(&runs[n]);
		runs[n].vaddr = d;
		runs[n].nr_pages = (h - d) / PAGE_SIZE_K;
		runs[n].off = pages;
		pages += runs[n].nr_pages;
		n++;
		pos = h;
	}
	snprintf(name, sizeof(name), "shmem-%u.img", e->id);
	ret = sd->st->ops->create(sd->st, name, pages * PAGE_SIZE_K, &b);
	if (ret) {
		free(runs);
		return ret;
	}
	/* in steps of at most 8 MiB, polling for an abort request */
	img_sum_init(&sum);
	for (size_t i = 0; i < n && !ret; i++) {
		size_t len = runs[i].nr_pages * PAGE_SIZE_K;
		uint8_t *dst = (uint8_t *)b.data + runs[i].off * PAGE_SIZE_K;

		for (size_t done = 0; done < len && !ret; done += SHMEM_STEP) {
			size_t step = len - done < SHMEM_STEP ? len - done : SHMEM_STEP;
			ssize_t r = pread(fd, dst + done, step, runs[i].vaddr + done);

			if (r < 0)
				ret = log_errno(errno, "%s: cannot read shared memory at offset %lu",
						what, (unsigned long)(runs[i].vaddr + done));
			/* a short read at the end of the object leaves zeros: fine */
			if (!ret) {
				img_sum_update(&sum, dst + done, step);
				ret = ckpt_check_abort();
			}
		}
	}
	if (!ret) {
		e->xxh64 = img_sum_final(&sum);
		ret = sd->st->ops->finish(sd->st, &b);
	}
	sd->st->ops->release(sd->st, &b);
	if (ret) {
		free(runs);
		return ret;
	}
	e->n_runs = n;
	e->runs = n ? malloc(n * sizeof(*e->runs)) : NULL;
	for (size_t i = 0; i < n; i++)
		e->runs[i] = &runs[i];
	if (!n)
		free(runs);
	return 0;
}

int shmem_dump_vma(struct shmem_dump *sd, pid_t pid, VmaEntry *v, uint64_t ino, const char *link)
{
	ShmemEntry *e, **ne;
	struct stat sb;
	int fd, ret;

	if (stat(link, &sb))
		return log_errno(errno, "pid %d: cannot inspect shared mapping 0x%lx (%s)",
				 pid, (unsigned long)v->start, link);
	for (size_t i = 0; i < sd->n; i++) {
		if (sd->e[i]->ino == (uint64_t)sb.st_ino) {
			v->shmem_id = sd->e[i]->id;
			return 0;
		}
	}
	e = calloc(1, sizeof(*e));
	ne = realloc(sd->e, (sd->n + 1) * sizeof(*ne));
	if (!e || !ne) {
		free(e);
		return -ENOMEM;
	}
	sd->e = ne;
	shmem_entry__init(e);
	e->id = sd->n + 1;
	e->ino = sb.st_ino;
	e->size = sb.st_size;
	if (!v->name || !v->name[0] || !strncmp(v->name, "/dev/zero", 9))
		e->has_anon = e->anon = true;	/* MAP_SHARED|MAP_ANONYMOUS, or of /dev/zero */
	else if (!strncmp(v->name, "/dev/shm/", 9) && !strstr(v->name, " (deleted)"))
		e->path = strdup(v->name);
	else if (v->name && !strncmp(v->name, "/memfd:", 7)) {
		const char *d = strstr(v->name, " (deleted)");
		size_t l = d ? (size_t)(d - v->name) : strlen(v->name);

		e->path = strndup(v->name + 1, l - 1);	/* "memfd:NAME" */
	}
	fd = open(link, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		free(e->path);
		free(e);
		return log_errno(errno, "pid %d: cannot open shared mapping 0x%lx", pid,
				 (unsigned long)v->start);
	}
	ret = save_object(sd, e, fd, link);
	close(fd);
	if (ret) {
		free(e->path);
		free(e);
		return ret;
	}
	sd->e[sd->n++] = e;
	v->shmem_id = e->id;
	return 0;
}

int shmem_dump_end(struct shmem_dump *sd, struct img_store *st)
{
	ShmemImage img = SHMEM_IMAGE__INIT;

	img.n_entries = sd->n;
	img.entries = sd->e;
	return img_write_msg(st, "shmem.img", IMG_SHMEM, &img);
}

/* ---- restore: create every object in the restorer ---- */

/*
 * Shared anonymous memory comes back as shared anonymous memory: one
 * MAP_SHARED|MAP_ANONYMOUS mapping of the object's size, whose shmem file is
 * opened through /proc/self/map_files.  Every restored task maps that file,
 * so they share one object that shows as "/dev/zero (deleted)", as the
 * dumped one did.  The fd keeps the object alive once our mapping is gone.
 */
static int anon_shared_create(const ShmemEntry *e)
{
	char link[96];
	void *m;
	int fd, err;

	if (!e->size || e->size & (PAGE_SIZE_K - 1)) {
		log_err("shmem.img: object %u: shared anonymous memory of %llu bytes", e->id,
			(unsigned long long)e->size);
		errno = EINVAL;
		return -1;
	}
	m = mmap(NULL, e->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return -1;
	snprintf(link, sizeof(link), "/proc/self/map_files/%lx-%lx", (unsigned long)m,
		 (unsigned long)m + (unsigned long)e->size);
	fd = open(link, O_RDWR | O_CLOEXEC);
	err = errno;
	munmap(m, e->size);
	errno = err;
	return fd;
}

/*
 * A memfd the tree also holds as an fd was made by the files restore
 * (files-memfd.c), with its content, size and seals: the mappings map that
 * one object, as they did (a write through one is read through the other).
 * A new read-write fd of it (from an fd of the tree's), or -1.
 */
static int memfd_of_files(struct files_rst *fr, const ShmemEntry *e)
{
	for (size_t i = 0; fr && i < files_rst_count(fr); i++) {
		const FileEntry *x = files_rst_nth(fr, i);
		int fd;

		if (x->kind != FILE_KIND__FILE_MEMFD || x->ino != e->ino)
			continue;
		fd = files_rst_fd(fr, x->id);
		if (fd >= 0)
			return files_reopen(fd, O_RDWR | O_CLOEXEC);
	}
	return -1;
}

int shmem_rst_open(struct img_store *st, const ShmemImage *img, struct files_rst *fr,
		   int **fds_out)
{
	int *fds = calloc(img->n_entries + 1, sizeof(int));

	if (!fds)
		return -ENOMEM;
	for (size_t i = 0; i < img->n_entries; i++)
		fds[i] = -1;
	for (size_t i = 0; i < img->n_entries; i++) {
		const ShmemEntry *e = img->entries[i];
		struct img_blob b;
		char name[64];
		bool fill = true;
		int fd, ret;

		if (e->id != i + 1 || e->size > (1ULL << 46)) {
			log_err("shmem.img: entry %zu: bad id %u or size %llu", i, e->id,
				(unsigned long long)e->size);
			goto fail;
		}
		if (e->path && !strncmp(e->path, "/dev/shm/", 9) && !strstr(e->path, "/../")) {
			fd = open(e->path, O_RDWR | O_CLOEXEC);
			if (fd >= 0)
				fill = false;	/* same kernel: the object is still there */
			else
				fd = open(e->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		} else if (e->anon) {
			fd = anon_shared_create(e);
		} else {
			const char *mname = e->path && !strncmp(e->path, "memfd:", 6) ? e->path + 6 : "kup-shmem";

			fd = e->path && !strncmp(e->path, "memfd:", 6) ? memfd_of_files(fr, e) : -1;
			if (fd >= 0)
				fill = false;	/* filled and sealed by the files restore */
			else
				fd = memfd_create(mname, MFD_CLOEXEC | MFD_ALLOW_SEALING);
		}
		if (fd < 0) {
			log_errno(errno, "shmem object %u (%s): cannot create", e->id,
				  e->path ? e->path : "shared anonymous");
			goto fail;
		}
		fds[i] = fd;
		if (!fill)
			continue;
		if (ftruncate(fd, e->size)) {
			log_errno(errno, "shmem object %u: cannot size to %llu", e->id,
				  (unsigned long long)e->size);
			goto fail;
		}
		snprintf(name, sizeof(name), "shmem-%u.img", e->id);
		ret = st->ops->open(st, name, &b);
		if (ret) {
			log_err("image %s: missing (%s)", name, strerror(-ret));
			goto fail;
		}
		if (img_xxh64(b.data, b.len) != e->xxh64) {
			log_err("image %s: checksum mismatch", name);
			st->ops->release(st, &b);
			goto fail;
		}
		for (size_t r = 0; r < e->n_runs; r++) {
			const PageRun *run = e->runs[r];
			uint64_t len = run->nr_pages * PAGE_SIZE_K;

			if (run->nr_pages > b.len / PAGE_SIZE_K || run->off > b.len / PAGE_SIZE_K - run->nr_pages ||
			    run->vaddr > e->size + PAGE_SIZE_K) {
				log_err("image %s: run %zu out of bounds", name, r);
				st->ops->release(st, &b);
				goto fail;
			}
			if (pwrite(fd, (uint8_t *)b.data + run->off * PAGE_SIZE_K, len, run->vaddr) < 0) {
				log_errno(errno, "shmem object %u: cannot fill", e->id);
				st->ops->release(st, &b);
				goto fail;
			}
		}
		st->ops->release(st, &b);
		/* page-rounded writes may have grown it */
		if (ftruncate(fd, e->size))
			goto fail;
	}
	*fds_out = fds;
	return 0;
fail:
	for (size_t i = 0; i < img->n_entries; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	return -EINVAL;
}
