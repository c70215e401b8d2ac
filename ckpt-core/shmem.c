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

#include "ckpt-images.h"
#include "internal.h"
#include "shmem.h"

/* "/dev/shm/NAME": an object shm_open() makes, no directory in between. */
static bool shm_name_ok(const char *path)
{
	const char *n = path + 9;

	return !strncmp(path, "/dev/shm/", 9) && n[0] && !strchr(n, '/') &&
	       strcmp(n, ".") && strcmp(n, "..");
}

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
	else if (!strncmp(v->name, "/dev/shm/", 9) && !strstr(v->name, " (deleted)")) {
		if (!shm_name_ok(v->name)) {
			free(e);
			log_err("pid %d: shared mapping 0x%lx of %s: not a /dev/shm object name "
				"(a file in a directory of /dev/shm): not supported", pid,
				(unsigned long)v->start, v->name);
			return -EOPNOTSUPP;
		}
		e->path = strdup(v->name);
		e->has_uid = e->has_gid = e->has_mode = true;
		e->uid = sb.st_uid;
		e->gid = sb.st_gid;
		e->mode = sb.st_mode & 07777;
	}
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
 * A /dev/shm object of the checkpoint.  It is created exclusively, never
 * through a symbolic link.  One that exists already is used only if root
 * or the checkpoint's owner of it owns it: on the same boot it may still be
 * there, shared with processes outside the tree; after a kexec /dev/shm
 * starts empty and any user could create the name first, to have a root
 * process map a file of theirs.  Either way its content is the
 * checkpoint's (the caller refills it), docs/files.md.  @made: we created
 * it (removed if the restore fails).
 */
static int shm_object_open(const ShmemEntry *e, bool *made)
{
	struct stat sb;
	int fd;

	*made = false;
	fd = open(e->path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0) {
		*made = true;
		return fd;
	}
	if (errno != EEXIST)
		return log_errno(errno, "shmem object %u: cannot create %s", e->id, e->path);
	fd = open(e->path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return log_errno(errno, "shmem object %u: %s exists and cannot be opened",
				 e->id, e->path);
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
		close(fd);
		log_err("shmem object %u: %s exists and is not a regular file", e->id, e->path);
		return -EEXIST;
	}
	if (sb.st_uid != 0 && (!e->has_uid || sb.st_uid != e->uid)) {
		close(fd);
		log_err("shmem object %u: %s exists and belongs to uid %u, not to %s: "
			"not restored into it", e->id, e->path, (unsigned)sb.st_uid,
			e->has_uid && e->uid ? "root or the checkpoint's owner" : "root");
		return -EEXIST;
	}
	log_info("shmem object %u: %s exists (uid %u): its content is replaced by the "
		 "checkpoint's", e->id, e->path, (unsigned)sb.st_uid);
	return fd;
}

void shmem_rst_undo(const ShmemImage *img, const bool *made)
{
	for (size_t i = 0; made && i < img->n_entries; i++)
		if (made[i] && unlink(img->entries[i]->path) && errno != ENOENT)
			log_warn_errno(errno, "cannot remove %s", img->entries[i]->path);
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
		   int **fds_out, bool **made_out)
{
	int *fds = calloc(img->n_entries + 1, sizeof(int));
	bool *made = calloc(img->n_entries + 1, sizeof(bool));

	if (!fds || !made) {
		free(fds);
		free(made);
		return -ENOMEM;
	}
	for (size_t i = 0; i < img->n_entries; i++)
		fds[i] = -1;
	for (size_t i = 0; i < img->n_entries; i++) {
		const ShmemEntry *e = img->entries[i];
		struct img_blob b;
		char name[64];
		int fd, ret;

		if (e->id != i + 1 || e->size > (1ULL << 46)) {
			log_err("shmem.img: entry %zu: bad id %u or size %llu", i, e->id,
				(unsigned long long)e->size);
			goto fail;
		}
		if (e->path && !strncmp(e->path, "/dev/shm/", 9)) {
			if (!shm_name_ok(e->path)) {
				log_err("shmem.img: object %u: '%s' is not a /dev/shm object name",
					e->id, e->path);
				goto fail;
			}
			fd = shm_object_open(e, &made[i]);
			if (fd < 0)
				goto fail;
		} else if (e->anon) {
			fd = anon_shared_create(e);
		} else {
			const char *mname = e->path && !strncmp(e->path, "memfd:", 6) ? e->path + 6 : "kup-shmem";

			fd = e->path && !strncmp(e->path, "memfd:", 6) ? memfd_of_files(fr, e) : -1;
			if (fd >= 0) {
				fds[i] = fd;
				continue;	/* filled and sealed by the files restore */
			}
			fd = memfd_create(mname, MFD_CLOEXEC | MFD_ALLOW_SEALING);
		}
		if (fd < 0) {
			log_errno(errno, "shmem object %u (%s): cannot create", e->id,
				  e->path ? e->path : "shared anonymous");
			goto fail;
		}
		fds[i] = fd;
		if (made[i] && e->has_uid && e->has_gid && e->has_mode &&
		    (fchown(fd, e->uid, e->gid) || fchmod(fd, e->mode & 0777))) {
			log_errno(errno, "shmem object %u: cannot give %s to %u:%u mode %04o", e->id,
				  e->path, e->uid, e->gid, e->mode & 0777);
			goto fail;
		}
		/* an object that was there: nothing of its content stays */
		if (ftruncate(fd, e->size) ||
		    (e->size && fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, e->size))) {
			log_errno(errno, "shmem object %u: cannot clear %s", e->id,
				  e->path ? e->path : "");
			goto fail;
		}
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
		/* the entry itself was checked at load (ckpt_validate_shmem) */
		if (ckpt_validate_shmem_pages(e, b.len)) {
			st->ops->release(st, &b);
			goto fail;
		}
		for (size_t r = 0; r < e->n_runs; r++) {
			const PageRun *run = e->runs[r];
			uint64_t len = run->nr_pages * PAGE_SIZE_K;

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
	*made_out = made;
	return 0;
fail:
	for (size_t i = 0; i < img->n_entries; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	shmem_rst_undo(img, made);
	free(fds);
	free(made);
	return -EINVAL;
}
