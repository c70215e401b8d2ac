// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Memory, restore half (the dump half is mem.c): the files a task maps
 * opened for it, the trampoline's hole, the stub's layout torn down and the
 * dumped one mapped through injected syscalls, the vDSO put back or
 * proxied, the pages written with process_vm_writev, and the mm fields
 * (PR_SET_MM_MAP).  docs/design.md, "Restore", step 5.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ckpt-images.h"
#include "internal.h"
#include "ipc-sysv.h"
#include "restore.h"

#ifndef PR_SET_MM_MAP
#define PR_SET_MM 35
#define PR_SET_MM_MAP 14
#endif

struct prctl_mm_map_k {
	uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
	uint64_t arg_start, arg_end, env_start, env_end;
	uint64_t auxv;
	uint32_t auxv_size;
	uint32_t exe_fd;
};

/* The mapped files opened, the pages image there and intact (the mappings
 * and page runs themselves were checked at load: ckpt_validate_mm). */
int validate_mm(struct rctx *c, struct rproc *p)
{
	MmImage *mm = p->mm;
	char name[64];
	int ret;

	for (size_t i = 0; i < mm->n_vmas; i++) {
		VmaEntry *v = mm->vmas[i];

		if ((v->kind == VMA_KIND__VMA_FILE_PRIVATE || v->kind == VMA_KIND__VMA_FILE_SHARED) &&
		    files_rst_fd(c->fr, v->file_id) < 0) {
			log_err("mm-%u.img: mapping 0x%" PRIx64 ": unknown file", p->pe->pid, v->start);
			return -EINVAL;
		}
		if (v->kind == VMA_KIND__VMA_SYSV_SHM) {
			const SysvShmEntry *seg = v->has_sysv_shmid ? ipc_rst_shm(c->ipc, v->sysv_shmid) : NULL;
			const VmaEntry *pv = i ? mm->vmas[i - 1] : NULL;

			/* a piece of an attachment follows the piece before it */
			if (!seg || v->pgoff > PAGE_ALIGN_K(seg->size) ||
			    v->end - v->start > PAGE_ALIGN_K(seg->size) - v->pgoff ||
			    (v->pgoff && !(pv && pv->kind == v->kind && pv->sysv_shmid == v->sysv_shmid &&
					   pv->end == v->start &&
					   pv->pgoff + (pv->end - pv->start) == v->pgoff))) {
				log_err("mm-%u.img: mapping 0x%" PRIx64 ": not an attachment of a System V "
					"segment of ipc.img", p->pe->pid, v->start);
				return -EINVAL;
			}
		}
	}
	snprintf(name, sizeof(name), "pages-%u.img", p->pe->pid);
	if (c->st->ops->open_stream && c->st->ops->read)
		ret = c->st->ops->open_stream(c->st, name, &p->pages);
	else
		ret = c->st->ops->open(c->st, name, &p->pages);
	if (ret)
		return ret == -ENOENT ? log_errno(ENOENT, "%s: %s missing", c->st->where, name) : ret;
	p->pages_open = true;
	if (p->pages.len != mm->pages_nr * PAGE_SIZE_K) {
		log_err("image %s: %zu bytes, expected %" PRIu64 " pages (truncated?)", name,
			p->pages.len, mm->pages_nr);
		return -EINVAL;
	}
	/* streamed images are checked as they are read (restore_pages) */
	if (!p->pages.data)
		return 0;
	if (!mm->n_chunk_sum) {
		/* an older image (or an empty one): one checksum of the whole */
		if (img_piece_sum(mm->pages_sum_kind, p->pages.data, p->pages.len) !=
		    mm->pages_sum) {
			log_err("image %s: checksum mismatch (corrupted)", name);
			return -EINVAL;
		}
		return 0;
	}
	p->pages_ok = calloc(mm->n_chunk_sum, 1);
	if (!p->pages_ok)
		return -ENOMEM;
	/* each piece is checked right before its pages are first written
	 * (pages_check), while it is in the cache: by restore_pages and
	 * put_pages while the tree is being built (an eager restore: a damaged
	 * piece fails it before any task runs, and what was made is killed), by
	 * the lazy server once the tree runs (docs/design.md, "Lazy restore") */
	return 0;
}

/*
 * Check the pieces of @p's mapped pages image that hold bytes @off to
 * @off + @len against their checksums (mm_image.chunk_sum), each once.
 * Nothing to do for a streamed image (checked as it is read) or one with a
 * single checksum (checked whole by validate_mm).
 */
int pages_check(struct rproc *p, uint64_t off, uint64_t len)
{
	const MmImage *mm = p->mm;

	if (!p->pages_ok || !len)
		return 0;
	for (uint64_t k = off / IMG_PAGES_CHUNK; k <= (off + len - 1) / IMG_PAGES_CHUNK; k++) {
		uint64_t cs = k * IMG_PAGES_CHUNK;
		size_t clen = p->pages.len - cs < IMG_PAGES_CHUNK ? p->pages.len - cs : IMG_PAGES_CHUNK;

		if (k >= mm->n_chunk_sum || cs >= p->pages.len)
			return -ERANGE;
		if (p->pages_ok[k])
			continue;
		if (img_piece_sum(mm->pages_sum_kind, (const uint8_t *)p->pages.data + cs, clen) !=
		    mm->chunk_sum[k]) {
			log_err("image %s: the piece at offset %" PRIu64 ": checksum mismatch "
				"(corrupted)", p->pages.name, cs);
			return -EINVAL;
		}
		p->pages_ok[k] = 1;
	}
	return 0;
}

/* ---- the running kernel's vDSO ------------------------------------------ */

int read_special_maps(pid_t pid, struct range *sp, int *nsp, struct range *vdso,
			     struct range **all, int *nall)
{
	char *buf = proc_read_file(pid, "maps", NULL), *line, *save = NULL;
	struct range *a = NULL;
	int n = 0, cap = 0;

	*nsp = 0;
	vdso->start = vdso->end = 0;
	if (!buf)
		return log_errno(errno, "pid %d: cannot read maps", pid);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long s, e;
		char *name = strrchr(line, ' ');

		if (sscanf(line, "%lx-%lx", &s, &e) != 2)
			continue;
		if (s >= ARCH_TASK_SIZE)
			continue;	/* vsyscall */
		if (all) {
			if (n == cap) {
				struct range *na;
				cap = cap ? cap * 2 : 64;
				na = realloc(a, cap * sizeof(*a));
				if (!na) {
					free(a);
					free(buf);
					return -ENOMEM;
				}
				a = na;
			}
			a[n].start = s;
			a[n++].end = e;
		}
		if (name && (!strcmp(name + 1, "[vdso]") || !strncmp(name + 1, "[vvar", 5))) {
			if (*nsp < 4) {
				sp[*nsp].start = s;
				sp[(*nsp)++].end = e;
			}
			if (!strcmp(name + 1, "[vdso]")) {
				vdso->start = s;
				vdso->end = e;
			}
		}
	}
	free(buf);
	if (all) {
		*all = a;
		*nall = n;
	}
	return 0;
}

int probe_vdso(struct rctx *c)
{
	struct range vd;
	int ret = read_special_maps(getpid(), c->specials, &c->nspecials, &vd, NULL, NULL);

	if (ret)
		return ret;
	if (!vd.start)
		return 0;
	c->vdso_start = vd.start;
	c->vdso_size = vd.end - vd.start;
	c->vdso_crc = img_crc32c(0, (void *)vd.start, c->vdso_size);
	return vdso_parse_symtab((void *)vd.start, c->vdso_size, &c->cur_syms);
}

/* ---- holes in an address space --------------------------------------------- */

/* The end of a range of @r[] (or 0) that overlaps [s, e). */
static unsigned long overlap_end(unsigned long s, unsigned long e, const struct range *r, int n)
{
	for (int i = 0; i < n; i++)
		if (s < r[i].end && r[i].start < e)
			return r[i].end;
	return 0;
}

static unsigned long overlap_end_vmas(unsigned long s, unsigned long e, const MmImage *mm)
{
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (s < mm->vmas[i]->end && mm->vmas[i]->start < e)
			return mm->vmas[i]->end;
	return 0;
}

/* A free range of @len bytes, outside @r[] and the dumped layout; past each
 * mapping in its way at once (a TiB reservation is one step, not 2^24). */
unsigned long find_hole(const MmImage *mm, const struct range *r, int n, unsigned long len)
{
	for (unsigned long a = 0x10000; a + len < 0x7f0000000000UL;) {
		unsigned long end = overlap_end(a, a + len, r, n);

		if (!end)
			end = overlap_end_vmas(a, a + len, mm);
		if (!end)
			return a;
		a = (end + 0xffff) & ~0xffffUL;
	}
	return 0;
}

static int keep_add(struct rproc *p, int fd, uint32_t id)
{
	for (int i = 1; i < p->nkeep; i++)
		if (p->keep_id[i] == id)
			return 0;
	if (p->nkeep >= MAX_KEEP) {
		log_err("pid %u: too many mapped files", p->pe->pid);
		return -E2BIG;
	}
	p->keep_src[p->nkeep] = fd;
	p->keep_id[p->nkeep++] = id;
	return 0;
}

static bool keep_has(const struct rproc *p, uint32_t id)
{
	for (int i = 1; i < p->nkeep; i++)
		if (p->keep_id[i] == id)
			return true;
	return false;
}

int keep_fd(const struct rproc *p, uint32_t id)
{
	for (int i = 1; i < p->nkeep; i++)
		if (p->keep_id[i] == id)
			return p->keep[i];
	return -1;
}

/* Open (in the restorer) the fds each task needs to map its files. */
int prepare_keep(struct rctx *c, struct rproc *p)
{
	char path[64];
	int ret;

	p->nkeep = 1;
	p->keep_src[0] = p->ctl[1];
	p->keep_id[0] = 0;
	for (size_t i = 0; i < p->mm->n_vmas; i++) {
		VmaEntry *v = p->mm->vmas[i];

		if (v->kind == VMA_KIND__VMA_FILE_PRIVATE || v->kind == VMA_KIND__VMA_FILE_SHARED) {
			bool wr = v->kind == VMA_KIND__VMA_FILE_SHARED && (v->prot & PROT_WRITE);
			uint32_t id = v->file_id | (wr ? 0x40000000u : 0);
			int fd;

			if (keep_has(p, id))
				continue;
			snprintf(path, sizeof(path), "/proc/self/fd/%d", files_rst_fd(c->fr, v->file_id));
			fd = open(path, (wr ? O_RDWR : O_RDONLY) | O_CLOEXEC);
			if (fd < 0)
				return log_errno(errno, "pid %u: cannot reopen the file mapped at 0x%" PRIx64
						 " (%s)", p->pe->pid, v->start, v->name ? v->name : "?");
			ret = keep_add(p, fd, id);
			if (ret)
				return ret;
		} else if (v->kind == VMA_KIND__VMA_SHMEM) {
			ret = keep_add(p, c->shm_fds[v->shmem_id - 1], SHM_KEY | v->shmem_id);
			if (ret)
				return ret;
		}
	}
	if (c->userns_fd >= 0) {
		ret = keep_add(p, c->userns_fd, KEEP_USERNS);
		if (ret)
			return ret;
	}
	if (p->core->mm->has_exe_file_id && files_rst_fd(c->fr, p->core->mm->exe_file_id) >= 0)
		return keep_add(p, files_rst_fd(c->fr, p->core->mm->exe_file_id), 0x20000000u);
	return 0;
}

/* Move the special mappings (vvar, vdso) by @delta, via @tmp if they overlap. */
static int move_specials(struct takeover *tk, struct range *sp, int nsp, long delta)
{
	pid_t pid = tk->p->pe->pid;

	for (int i = 0; i < nsp; i++) {
		unsigned long len = sp[i].end - sp[i].start;
		long ret;
		int err = inj(tk, pid, SYS_mremap, "mremap", &ret, sp[i].start, len, len,
			      MREMAP_MAYMOVE | MREMAP_FIXED, sp[i].start + delta, 0);

		if (err)
			return err;
		if (ret != (long)(sp[i].start + delta))
			return log_errno(ret < 0 ? -ret : EFAULT, "pid %d: cannot move the vDSO/vvar", pid);
		sp[i].start += delta;
		sp[i].end += delta;
	}
	return 0;
}

static int restore_vdso(struct takeover *tk, bool *proxy, unsigned long *new_vdso)
{
	struct rproc *p = tk->p;
	struct rctx *c = tk->c;
	MmImage *mm = p->mm;
	VmaEntry *dv = NULL;
	VdsoSymtab *old = NULL;
	struct range sp[4], vd, cur[8];
	int nsp, err, ncur = 0;
	unsigned long lo = ~0UL, hi = 0, hole;
	bool same;

	err = read_special_maps(p->pe->pid, sp, &nsp, &vd, NULL, NULL);
	if (err)
		return err;
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (mm->vmas[i]->kind == VMA_KIND__VMA_VDSO)
			dv = mm->vmas[i];
	if (mm->has_vdso_symtab)
		old = vdso_symtab__unpack(NULL, mm->vdso_symtab.len, mm->vdso_symtab.data);
	for (int i = 0; i < nsp; i++) {
		lo = sp[i].start < lo ? sp[i].start : lo;
		hi = sp[i].end > hi ? sp[i].end : hi;
	}
	*proxy = false;
	*new_vdso = vd.start;
	if (!nsp || !vd.start) {
		if (old)
			vdso_symtab__free_unpacked(old, NULL);
		return 0;
	}
	/* same kernel vDSO and same layout of vvar/vdso: put ours where the old one was */
	same = dv && old && !c->o->force_vdso_proxy && old->vdso_crc == c->vdso_crc &&
	       dv->end - dv->start == vd.end - vd.start;
	if (same) {
		long delta = (long)dv->start - (long)vd.start;

		for (int i = 0; i < nsp; i++) {
			bool found = false;
			for (size_t j = 0; j < mm->n_vmas; j++) {
				VmaEntry *v = mm->vmas[j];
				found |= (v->kind == VMA_KIND__VMA_VVAR || v->kind == VMA_KIND__VMA_VDSO) &&
					 v->start == sp[i].start + delta && v->end == sp[i].end + delta;
			}
			same &= found;
		}
	}
	cur[ncur].start = p->tramp;
	cur[ncur++].end = p->tramp + puppet_area_size();
	for (int i = 0; i < nsp; i++)
		cur[ncur++] = sp[i];
	/* first park the specials in a hole (avoids overlapping moves) */
	hole = find_hole(mm, cur, ncur, hi - lo);
	if (!hole)
		return log_errno(ENOMEM, "pid %u: no room to move the vDSO", p->pe->pid);
	err = move_specials(tk, sp, nsp, (long)hole - (long)lo);
	if (err)
		goto out;
	if (same) {
		long delta = (long)dv->start - (long)(vd.start + hole - lo);

		err = move_specials(tk, sp, nsp, delta);
		*new_vdso = dv->start;
	} else {
		*proxy = dv != NULL;
		*new_vdso = vd.start + hole - lo;
		if (dv)
			log_info("pid %u: the vDSO differs from the dumped one: routing its entry points to the running kernel's vDSO",
				 p->pe->pid);
	}
out:
	if (old)
		vdso_symtab__free_unpacked(old, NULL);
	return err;
}

static int patch_old_vdso(struct takeover *tk, unsigned long new_vdso)
{
	MmImage *mm = tk->p->mm;
	VdsoSymtab *old;
	VmaEntry *dv = NULL;
	int err = 0, n = 0;

	if (!mm->has_vdso_symtab)
		return 0;
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (mm->vmas[i]->kind == VMA_KIND__VMA_VDSO)
			dv = mm->vmas[i];
	old = vdso_symtab__unpack(NULL, mm->vdso_symtab.len, mm->vdso_symtab.data);
	if (!old || !dv)
		return old ? 0 : log_errno(EINVAL, "mm-%u.img: bad vDSO symbol table", tk->p->pe->pid);
	for (size_t i = 0; i < old->n_syms && !err; i++) {
		unsigned char jmp[16];
		size_t len;
		bool found = false;

		for (size_t j = 0; j < tk->c->cur_syms.n_syms; j++) {
			VdsoSym *ns = tk->c->cur_syms.syms[j];

			if (strcmp(ns->name, old->syms[i]->name))
				continue;
			found = true;
			if (old->syms[i]->offset + 16 > dv->end - dv->start)
				break;
			len = arch_encode_jump(jmp, new_vdso + ns->offset);
			err = puppet_write(tk->p->pe->pid, dv->start + old->syms[i]->offset, jmp, len);
			n++;
			break;
		}
		if (!found)
			log_warn("pid %u: vDSO symbol %s is gone in the running kernel", tk->p->pe->pid,
				 old->syms[i]->name);
	}
	log_debug("pid %u: %d vDSO entry points routed", tk->p->pe->pid, n);
	vdso_symtab__free_unpacked(old, NULL);
	return err;
}

static long vma_at(const MmImage *mm, uint64_t vaddr);
static bool cow_done(const struct rproc *p, long j);
static int restore_cow_pages(struct takeover *tk);
static int put_pages(struct rctx *c, struct rproc *src, uint64_t off, pid_t pid, uint64_t vaddr,
		     uint64_t npages, int *memfd);

static int range_cmp(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Is @vaddr in the dumped vDSO (whose pages are not written back unless the
 * old vDSO is kept as a proxy)? */
static bool in_vdso(const MmImage *mm, uint64_t vaddr)
{
	for (size_t j = 0; j < mm->n_vmas; j++) {
		const VmaEntry *v = mm->vmas[j];

		if (vaddr >= v->start && vaddr < v->end)
			return v->kind == VMA_KIND__VMA_VDSO;
	}
	return false;
}

#define STREAM_BUF (8UL << 20)

/*
 * Write the page image into the task, STREAM_BUF at a time, each piece to
 * the runs it holds (they fill the image in order: checked by validate_mm).
 * A mapped image is used in place, a piece (IMG_PAGES_CHUNK) at a time, each
 * checked (pages_check) right before it is written (an older image with one
 * checksum: whole, by validate_mm); a streamed one is read into a buffer and
 * its checksum checked at the end.  On a mismatch the restore fails and its
 * tasks, none of which has run yet, are killed.  An image of FILL_MIN bytes
 * or more goes on two CPUs instead (restore_pages_par, below).
 */
/*
 * Pages of mappings that are not writable (mapped with their own protection:
 * a PROT_NONE reservation, a read-only RELRO segment with its relocated
 * copies) go through /proc/PID/mem, which writes with FOLL_FORCE into
 * private mappings (copy on write), as the dump reads them.
 */
static int write_pages_forced(struct takeover *tk, const uint8_t *src,
			      const struct iovec *remote, size_t k)
{
	pid_t pid = tk->p->pe->pid;

	if (tk->memfd < 0) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/mem", pid);
		tk->memfd = open(path, O_RDWR | O_CLOEXEC);
		if (tk->memfd < 0)
			return log_errno(errno, "pid %d: cannot open %s", pid, path);
	}
	for (size_t j = 0; j < k; j++) {
		if (pwrite(tk->memfd, src, remote[j].iov_len, (unsigned long)remote[j].iov_base) !=
		    (ssize_t)remote[j].iov_len)
			return log_errno(errno, "pid %d: cannot write pages at %p", pid,
					 remote[j].iov_base);
		src += remote[j].iov_len;
	}
	return 0;
}

/*
 * The pieces of a mapped image checked on a thread of their own, in order,
 * a few ahead of the writes (CHECK_AHEAD: so that a piece is still in the
 * cache when it is written): the check of the next pieces overlaps the write
 * of this one.  A piece is written only once found intact; the first damaged
 * one stops the checks.
 */
#define CHECK_AHEAD 4
#define CHECK_MIN_PIECES 8	/* fewer: checked inline */

struct piece_checker {
	struct rproc *p;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t n;	/* pieces */
	size_t done;	/* pieces checked, in order */
	size_t want;	/* the piece the writer waits for */
	bool bad;	/* piece done is damaged */
	bool stop;
};

static void *checker_main(void *arg)
{
	struct piece_checker *pc = arg;
	struct rproc *p = pc->p;

	for (size_t k = 0; k < pc->n; k++) {
		uint64_t cs = k * IMG_PAGES_CHUNK;
		size_t clen = p->pages.len - cs < IMG_PAGES_CHUNK ? p->pages.len - cs : IMG_PAGES_CHUNK;
		bool ok, stop;

		pthread_mutex_lock(&pc->mu);
		while (!pc->stop && k >= pc->want + CHECK_AHEAD)
			pthread_cond_wait(&pc->cv, &pc->mu);
		stop = pc->stop;
		ok = p->pages_ok[k];
		pthread_mutex_unlock(&pc->mu);
		if (stop)
			break;
		if (!ok)
			ok = img_piece_sum(p->mm->pages_sum_kind,
					   (const uint8_t *)p->pages.data + cs, clen) ==
			     p->mm->chunk_sum[k];
		pthread_mutex_lock(&pc->mu);
		if (ok) {
			p->pages_ok[k] = 1;
			pc->done = k + 1;
		} else {
			pc->bad = true;
		}
		pthread_cond_broadcast(&pc->cv);
		pthread_mutex_unlock(&pc->mu);
		if (!ok)
			break;
	}
	return NULL;
}

/* Start checking @p's pieces ahead; false: not worth it or no thread (the
 * writer checks each piece itself). */
static bool checker_start(struct piece_checker *pc, struct rctx *c, struct rproc *p)
{
	cpu_set_t others;
	bool up;

	memset(pc, 0, sizeof(*pc));
	if (!p->pages.data || !p->pages_ok || p->mm->n_chunk_sum < CHECK_MIN_PIECES ||
	    p->mm->n_chunk_sum != img_psum_pieces(p->pages.len))
		return false;
	pc->p = p;
	pc->n = p->mm->n_chunk_sum;
	pthread_mutex_init(&pc->mu, NULL);
	pthread_cond_init(&pc->cv, NULL);
	up = !ckpt_thread_start(&pc->th, checker_main, pc);
	/* the restorer runs on one CPU while it builds the tree (restore.c,
	 * pin_restorer), and a thread inherits it: the checks go to the others */
	others = c->restorer_cpus;
	if (up && c->pin_cpu >= 0) {
		CPU_CLR(c->pin_cpu, &others);
		if (CPU_COUNT(&others))
			pthread_setaffinity_np(pc->th, sizeof(others), &others);
	}
	if (!up) {
		pthread_cond_destroy(&pc->cv);
		pthread_mutex_destroy(&pc->mu);
	}
	return up;
}

/* Wait until the pieces holding bytes [@off, @off + @len) are checked;
 * -EINVAL (and the error naming the piece) for a damaged one. */
static int checker_wait(struct piece_checker *pc, uint64_t off, uint64_t len)
{
	size_t last = (off + len - 1) / IMG_PAGES_CHUNK;
	bool bad;

	pthread_mutex_lock(&pc->mu);
	pc->want = off / IMG_PAGES_CHUNK;
	pthread_cond_broadcast(&pc->cv);
	while (pc->done <= last && !pc->bad)
		pthread_cond_wait(&pc->cv, &pc->mu);
	bad = pc->done <= last;
	pthread_mutex_unlock(&pc->mu);
	if (bad) {
		log_err("image %s: the piece at offset %" PRIu64 ": checksum mismatch (corrupted)",
			pc->p->pages.name, (uint64_t)pc->done * IMG_PAGES_CHUNK);
		return -EINVAL;
	}
	return 0;
}

static void checker_end(struct piece_checker *pc)
{
	pthread_mutex_lock(&pc->mu);
	pc->stop = true;
	pthread_cond_broadcast(&pc->cv);
	pthread_mutex_unlock(&pc->mu);
	pthread_join(pc->th, NULL);
	pthread_cond_destroy(&pc->cv);
	pthread_mutex_destroy(&pc->mu);
}

/*
 * The eager fill on two CPUs, for an image of at least FILL_MIN bytes when
 * the restorer may use two: the image is cut into FILL_UNIT ranges (whole
 * pieces of IMG_PAGES_CHUNK), taken in turn by the restorer and a helper
 * thread on another CPU.  Each thread, for its range: reads it into its
 * buffer (a streamed image: the store checks each extent it reads against
 * its own checksums, as for put_pages) or checks its pieces in place (a
 * mapped one: pages_check, each piece once), then writes it into the task
 * while it is in the cache.  The task's page faults (a huge page cleared, or
 * 512 small ones) are taken by the thread that writes, so they too run on
 * both CPUs.  The first error stops both; the restore fails and its tasks,
 * none of which has run yet, are killed.
 */
#define FILL_UNIT (2UL << 20)
#define FILL_MIN (8UL << 20)

struct fill_seg {
	size_t boff;		/* offset in the range */
	uint64_t vaddr;
	size_t len;
};

struct par_fill {
	struct takeover *tk;
	bool proxy;
	pthread_mutex_t mu;
	size_t ri, rdone;	/* the next run, pages of it taken */
	uint64_t pos;		/* the image offset of the next range */
	uint64_t moved;		/* bytes written, not yet counted as progress */
	uint64_t ns_read, ns_sum, ns_write;
	int err;
};

/* The next range: its image offset in @start, its length returned (0: none
 * left), the pieces of runs it writes in @seg. */
static size_t fill_take(struct par_fill *pf, uint64_t *start, struct fill_seg *seg, size_t *nseg)
{
	const MmImage *mm = pf->tk->p->mm;
	size_t bytes = 0, k = 0;

	pthread_mutex_lock(&pf->mu);
	*start = pf->pos;
	while (!pf->err && bytes < FILL_UNIT && pf->ri < mm->n_runs) {
		const PageRun *r = mm->runs[pf->ri];
		size_t left = (r->nr_pages - pf->rdone) * PAGE_SIZE_K;
		size_t take = left < FILL_UNIT - bytes ? left : FILL_UNIT - bytes;
		uint64_t va = r->vaddr + pf->rdone * PAGE_SIZE_K;

		if (!((!pf->proxy && in_vdso(mm, r->vaddr)) || cow_done(pf->tk->p, vma_at(mm, r->vaddr)))) {
			if (k && seg[k - 1].boff + seg[k - 1].len == bytes &&
			    seg[k - 1].vaddr + seg[k - 1].len == va)
				seg[k - 1].len += take;
			else
				seg[k++] = (struct fill_seg){ bytes, va, take };
		}
		bytes += take;
		pf->rdone += take / PAGE_SIZE_K;
		if (pf->rdone == r->nr_pages) {
			pf->ri++;
			pf->rdone = 0;
		}
	}
	pf->pos += bytes;
	pthread_mutex_unlock(&pf->mu);
	*nseg = k;
	return bytes;
}

static void fill_fail(struct par_fill *pf, int err)
{
	pthread_mutex_lock(&pf->mu);
	if (!pf->err)
		pf->err = err;
	pthread_mutex_unlock(&pf->mu);
}

/* Pages not writable: through /proc/PID/mem (write_pages_forced), opened
 * once for both threads. */
static int fill_forced(struct par_fill *pf, const struct iovec *local, const struct iovec *remote,
		       size_t k)
{
	struct takeover *tk = pf->tk;
	int err = 0;

	pthread_mutex_lock(&pf->mu);
	if (tk->memfd < 0) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/mem", tk->p->pe->pid);
		tk->memfd = open(path, O_RDWR | O_CLOEXEC);
		if (tk->memfd < 0)
			err = log_errno(errno, "pid %d: cannot open %s", tk->p->pe->pid, path);
	}
	pthread_mutex_unlock(&pf->mu);
	for (size_t j = 0; !err && j < k; j++)
		err = write_pages_forced(tk, local[j].iov_base, &remote[j], 1);
	return err;
}

/* One filler: ranges until none is left; @lead (the restorer) counts the
 * progress and polls for an abort between them. */
static int fill_ranges(struct par_fill *pf, uint8_t *buf, bool lead)
{
	struct rproc *p = pf->tk->p;
	struct img_store *st = pf->tk->c->st;
	static __thread struct fill_seg seg[FILL_UNIT / PAGE_SIZE_K];
	static __thread struct iovec local[FILL_UNIT / PAGE_SIZE_K], remote[FILL_UNIT / PAGE_SIZE_K];
	uint64_t start, ns_read = 0, ns_sum = 0, ns_write = 0;
	size_t bytes, k;
	int err = 0;

	while (!err && (bytes = fill_take(pf, &start, seg, &k))) {
		size_t wlen = 0;
		uint8_t *src = p->pages.data ? (uint8_t *)p->pages.data + start : buf;
		uint64_t t0 = rst_now_ns(), t1;

		if (p->pages.data) {
			err = pages_check(p, start, bytes);
			t1 = rst_now_ns();
			ns_sum += t1 - t0;
		} else {
			err = st->ops->read(st, &p->pages, start, buf, bytes);
			if (err)
				log_errno(err, "pid %d: cannot read %s at offset %" PRIu64 " from %s",
					  p->pe->pid, p->pages.name, start, st->where);
			t1 = rst_now_ns();
			ns_read += t1 - t0;
		}
		if (err)
			break;
		for (size_t j = 0; j < k; j++) {
			local[j] = (struct iovec){ src + seg[j].boff, seg[j].len };
			remote[j] = (struct iovec){ (void *)(uintptr_t)seg[j].vaddr, seg[j].len };
			wlen += seg[j].len;
		}
		if (k && process_vm_writev(p->pe->pid, local, k, remote, k, 0) != (ssize_t)wlen)
			err = fill_forced(pf, local, remote, k);
		ns_write += rst_now_ns() - t1;
		pthread_mutex_lock(&pf->mu);
		pf->moved += bytes;
		if (lead) {
			log_progress_add(pf->moved);
			pf->moved = 0;
		}
		pthread_mutex_unlock(&pf->mu);
		if (!err && lead)
			err = ckpt_check_abort();
	}
	if (err)
		fill_fail(pf, err);
	pthread_mutex_lock(&pf->mu);
	pf->ns_read += ns_read;
	pf->ns_sum += ns_sum;
	pf->ns_write += ns_write;
	pthread_mutex_unlock(&pf->mu);
	return err;
}

static void *fill_helper(void *arg)
{
	struct par_fill *pf = arg;
	uint8_t *buf = NULL;

	if (!pf->tk->p->pages.data) {
		buf = mmap(NULL, FILL_UNIT, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
			   MAP_POPULATE, -1, 0);
		if (buf == MAP_FAILED)
			return NULL;	/* the restorer fills alone */
	}
	fill_ranges(pf, buf, false);
	if (buf)
		munmap(buf, FILL_UNIT);
	return NULL;
}

/* Can restore_pages() fill @p on two CPUs?  A mapped image needs its pieces'
 * checksums (an older one, with one checksum of the whole, was checked by
 * validate_mm and goes in order). */
static bool fill_par_ok(const struct rctx *c, const struct rproc *p)
{
	if (p->pages.len < FILL_MIN || CPU_COUNT(&c->restorer_cpus) < 2)
		return false;
	if (!p->pages.data)
		return c->st->ops->read != NULL;
	return p->pages_ok && p->mm->n_chunk_sum == img_psum_pieces(p->pages.len);
}

static int restore_pages_par(struct takeover *tk, bool proxy)
{
	struct rctx *c = tk->c;
	struct par_fill pf = { .tk = tk, .proxy = proxy };
	uint8_t *buf = NULL;
	pthread_t helper;
	bool two;
	int err;

	if (!tk->p->pages.data) {
		buf = mmap(NULL, FILL_UNIT, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
			   MAP_POPULATE, -1, 0);
		if (buf == MAP_FAILED)
			return log_errno(ENOMEM, "cannot allocate a %lu MiB buffer", FILL_UNIT >> 20);
	}
	pthread_mutex_init(&pf.mu, NULL);
	two = !ckpt_thread_start(&helper, fill_helper, &pf);
	if (two && c->pin_cpu >= 0) {
		/* the restorer runs on one CPU while it builds the tree
		 * (restore.c, pin_restorer), and a thread inherits it */
		cpu_set_t others = c->restorer_cpus;

		CPU_CLR(c->pin_cpu, &others);
		if (CPU_COUNT(&others))
			pthread_setaffinity_np(helper, sizeof(others), &others);
	}
	err = fill_ranges(&pf, buf, true);
	if (two)
		pthread_join(helper, NULL);
	if (!err)
		err = pf.err;
	if (!err)
		log_progress_add(pf.moved);
	c->fill_two |= two;
	c->ns_read += pf.ns_read;
	c->ns_sum += pf.ns_sum;
	c->ns_write += pf.ns_write;
	c->bytes_read += tk->p->pages.len;
	pthread_mutex_destroy(&pf.mu);
	if (buf)
		munmap(buf, FILL_UNIT);
	return err;
}

static int restore_pages(struct takeover *tk, bool proxy)
{
	struct rproc *p = tk->p;
	MmImage *mm = p->mm;
	pid_t pid = p->pe->pid;
	struct img_store *st = tk->c->st;
	static uint8_t *buf;
	uint64_t total = p->pages.len, pos = 0;
	size_t ri = 0, rdone = 0;	/* run ri, pages of it already written */
	struct img_psum sum;
	struct piece_checker pc;
	bool checking;
	uint64_t whole;
	int err;

	/* KUP_TEST_RESTORE_HOLD=FILE (tests): the pages of every task but the
	 * first wait here until FILE exists or an abort: a signal meanwhile
	 * comes while the tree's memory is being written */
	for (const char *hold = getenv("KUP_TEST_RESTORE_HOLD");
	     hold && p != tk->c->p && access(hold, F_OK) && !ckpt_abort_signal();)
		usleep(10000);
	if (fill_par_ok(tk->c, p))
		return restore_pages_par(tk, proxy);
	if (!p->pages.data && !buf) {
		buf = mmap(NULL, STREAM_BUF, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (buf == MAP_FAILED) {
			buf = NULL;
			return log_errno(ENOMEM, "cannot allocate a %lu MiB buffer", STREAM_BUF >> 20);
		}
	}
	img_psum_init(&sum, mm->pages_sum_kind, !mm->n_chunk_sum);
	checking = checker_start(&pc, tk->c, p);
	while (pos < total) {
		/* a mapped image a piece at a time: checked, then written while
		 * the piece is still in the cache */
		size_t step = p->pages.data && p->pages_ok ? IMG_PAGES_CHUNK : STREAM_BUF;
		size_t len = total - pos < step ? total - pos : step, boff = 0;
		uint8_t *src = p->pages.data ? (uint8_t *)p->pages.data + pos : buf;

		if (!p->pages.data) {
			uint64_t t0 = rst_now_ns(), t1;

			err = st->ops->read(st, &p->pages, pos, buf, len);
			if (err) {
				log_errno(err, "pid %d: cannot read %s at offset %" PRIu64
					  " from %s", pid, p->pages.name, pos, st->where);
				goto fail;
			}
			t1 = rst_now_ns();
			img_psum_update(&sum, buf, len);
			tk->c->ns_read += t1 - t0;
			tk->c->ns_sum += rst_now_ns() - t1;
		} else {
			uint64_t t0 = rst_now_ns();

			err = checking ? checker_wait(&pc, pos, len) : pages_check(p, pos, len);
			if (err)
				goto fail;
			tk->c->ns_sum += rst_now_ns() - t0;
		}
		tk->c->bytes_read += len;
		while (boff < len) {
			struct iovec remote[512], local = { src + boff, 0 };
			size_t k = 0;

			while (boff + local.iov_len < len && k < 512 && ri < mm->n_runs) {
				PageRun *r = mm->runs[ri];
				size_t left = (r->nr_pages - rdone) * PAGE_SIZE_K;
				size_t room = len - boff - local.iov_len;
				size_t take = left < room ? left : room;
				bool skip = (!proxy && in_vdso(mm, r->vaddr)) ||
					    cow_done(p, vma_at(mm, r->vaddr));

				if (skip && k)
					break;	/* write what we have first */
				if (!skip) {
					remote[k].iov_base = (void *)(r->vaddr + rdone * PAGE_SIZE_K);
					remote[k].iov_len = take;
					local.iov_len += take;
					k++;
				}
				rdone += take / PAGE_SIZE_K;
				if (rdone == r->nr_pages) {
					ri++;
					rdone = 0;
				}
				if (skip) {
					boff += take;	/* a vDSO run: not written */
					break;
				}
			}
			if (!k) {
				if (ri >= mm->n_runs)
					break;
				continue;
			}
			uint64_t tw = rst_now_ns();

			if (process_vm_writev(pid, &local, 1, remote, k, 0) != (ssize_t)local.iov_len) {
				err = write_pages_forced(tk, local.iov_base, remote, k);
				if (err)
					goto fail;
			}
			tk->c->ns_write += rst_now_ns() - tw;
			boff += local.iov_len;
		}
		pos += len;
		log_progress_add(len);
		err = ckpt_check_abort();
		if (err)
			goto fail;
	}
	if (checking)
		checker_end(&pc);
	if (p->pages.data) {
		img_psum_release(&sum);
		return 0;
	}
	err = img_psum_final(&sum, &whole, NULL, NULL);
	if (err)
		return err;
	if (whole != mm->pages_sum) {
		log_err("image %s: checksum mismatch (corrupted)", p->pages.name);
		return -EINVAL;
	}
	return 0;
fail:
	if (checking)
		checker_end(&pc);
	img_psum_release(&sum);
	return err;
}

/* ---- transparent huge pages ----------------------------------------------- */

/*
 * Should the private anonymous mapping @v come back in huge pages?  When it
 * had some at dump (thp_bytes, smaps AnonHugePages) or asked for them
 * (MADV_HUGEPAGE), unless it refuses them (MADV_NOHUGEPAGE, or the
 * process's PR_SET_THP_DISABLE).  Images without thp_bytes: only by advice,
 * as the faults of the fill give.
 */
bool thp_wanted(const struct rproc *p, const VmaEntry *v)
{
	if (v->kind != VMA_KIND__VMA_ANON_PRIVATE || (v->madv & (1ULL << MADV_NOHUGEPAGE)) ||
	    (p->core->has_thp_disabled && p->core->thp_disabled))
		return false;
	return (v->has_thp_bytes && v->thp_bytes) || (v->madv & (1ULL << MADV_HUGEPAGE));
}

/* Is every page of [s, e) in a run of @mm's image? */
bool thp_whole_in_image(const MmImage *mm, uint64_t s, uint64_t e)
{
	while (s < e) {
		const PageRun *r = ckpt_mm_run_at(mm, s, false);

		if (!r)
			return false;
		s = r->vaddr + r->nr_pages * PAGE_SIZE_K;
	}
	return true;
}

/* Was the 2 MiB extent at @a of @v one huge page at dump?  Without the map
 * (older images, no /proc/kpageflags at dump): taken to be when whole in
 * the image. */
bool thp_was_huge(const VmaEntry *v, uint64_t a)
{
	uint64_t first = (v->start + THP_SIZE - 1) & ~(THP_SIZE - 1), i;

	if (!v->has_thp_map)
		return true;
	if (a < first)
		return false;
	i = (a - first) / THP_SIZE;
	return i / 8 < v->thp_map.len && v->thp_map.data[i / 8] >> (i % 8) & 1;
}

/*
 * After the eager fill: the 2 MiB extents of a mapping that were huge pages
 * at dump and are whole in the image, collapsed into huge pages
 * (MADV_COLLAPSE, Linux 6.1+, whatever the sysfs THP mode), one call per
 * run of such extents.  Where the fill's faults gave huge pages already
 * (MADV_HUGEPAGE set before it) the kernel finds them so and copies
 * nothing.  MADV_HUGEPAGE is not set where the process had not asked for
 * it (its mapping would show advice it never gave, and none can be taken
 * back).  A refusal (an old kernel, no huge page free, THP off by
 * hardware) leaves the 4 KiB pages: said at -v.
 */
static int thp_collapse(struct takeover *tk, bool lazy_too)
{
	struct rproc *p = tk->p;
	const MmImage *mm = p->mm;
	pid_t pid = p->pe->pid;
	uint64_t huge = 0, t0 = rst_now_ns();

	for (size_t i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *v = mm->vmas[i];
		uint64_t a = (v->start + THP_SIZE - 1) & ~(THP_SIZE - 1), from = 0;

		if (!v->has_thp_bytes || !v->thp_bytes || !thp_wanted(p, v) || cow_done(p, i) ||
		    (!lazy_too && p->lazy && p->lazy[i]) || !(v->prot & PROT_WRITE))
			continue;
		for (;; a += THP_SIZE) {
			bool whole = a + THP_SIZE <= v->end && thp_was_huge(v, a) &&
				     thp_whole_in_image(mm, a, a + THP_SIZE);
			long ret;
			int err;

			if (whole && !from)
				from = a;
			if (whole || !from) {
				if (a + THP_SIZE > v->end)
					break;
				continue;
			}
			err = inj(tk, pid, SYS_madvise, "madvise", &ret, from, a - from, MADV_COLLAPSE,
				  0, 0, 0);
			if (err)
				return err;
			if (ret)
				log_debug("pid %d: 0x%" PRIx64 "-0x%" PRIx64 " stays in 4 KiB pages "
					 "(MADV_COLLAPSE: %s)", pid, from, a, strerror((int)-ret));
			else
				huge += a - from;
			from = 0;
			if (a + THP_SIZE > v->end)
				break;
		}
	}
	if (huge)
		log_debug("pid %d: %" PRIu64 " MiB in transparent huge pages (collapsed in %.1f ms)",
			  pid, huge >> 20, (rst_now_ns() - t0) / 1e6);
	return 0;
}

/* ---- lazy restore: which pages wait (lazy.c serves them) ---------------- */

/*
 * The mappings whose pages come after the tree runs: private anonymous,
 * writable, with pages in the image, not filled before a fork for
 * copy-on-write, not locked (mlock faults them all in).  Those that had
 * transparent huge pages (or asked for them) are filled 2 MiB at a time
 * and each whole extent collapsed into a huge page (lazy.c).  Everything
 * else is written before the tree runs, as without --lazy.
 */
static int lazy_plan(struct takeover *tk, bool *any)
{
	struct rproc *p = tk->p;
	const MmImage *mm = p->mm;

	*any = false;
	if (!tk->c->o->lazy)
		return 0;
	p->lazy = calloc(mm->n_vmas + 1, 1);
	if (!p->lazy)
		return -ENOMEM;
	for (size_t r = 0; r < mm->n_runs; r++) {
		long i = vma_at(mm, mm->runs[r]->vaddr);
		const VmaEntry *v = i >= 0 ? mm->vmas[i] : NULL;

		if (v && v->kind == VMA_KIND__VMA_ANON_PRIVATE && !cow_done(p, i) &&
		    (v->prot & PROT_WRITE) && !v->locked) {
			p->lazy[i] = thp_wanted(p, v) ? LAZY_HUGE : LAZY_SMALL;
			*any = true;
		}
	}
	return 0;
}

/* The runs of pages restore_pages() writes: all of them, but the old vDSO
 * (unless proxied), copy-on-write ranges in place, and with @lazy_too
 * false the lazy ones. */
static bool run_written(const struct rproc *p, const PageRun *r, bool proxy, bool lazy_too)
{
	long i = vma_at(p->mm, r->vaddr);

	if ((!proxy && in_vdso(p->mm, r->vaddr)) || cow_done(p, i))
		return false;
	return lazy_too || !p->lazy || i < 0 || !p->lazy[i];
}

/* The pages of a lazy restore that are written before the tree runs, read
 * from the image where they lie (not the whole image in order: the rest
 * stays unread until it is needed). */
static int restore_pages_picked(struct takeover *tk, bool proxy, bool lazy_too, bool others)
{
	struct rproc *p = tk->p;

	for (size_t r = 0; r < p->mm->n_runs; r++) {
		const PageRun *run = p->mm->runs[r];
		bool lz = p->lazy && vma_at(p->mm, run->vaddr) >= 0 && p->lazy[vma_at(p->mm, run->vaddr)];
		int err;

		if (!run_written(p, run, proxy, true) || (lz ? !lazy_too : !others))
			continue;
		err = put_pages(tk->c, p, run->off, p->pe->pid, run->vaddr, run->nr_pages, &tk->memfd);
		if (err)
			return err;
		err = ckpt_check_abort();
		if (err)
			return err;
	}
	return 0;
}

/*
 * The System V segment attached at mapping @i (and the pieces that follow
 * it): shmat at the same address, then unmap what the process had unmapped
 * of the attachment's tail.  Protections follow in step 5 of restore_mm.
 */
static int attach_sysv(struct takeover *tk, size_t i)
{
	MmImage *mm = tk->p->mm;
	const VmaEntry *v = mm->vmas[i];
	const SysvShmEntry *seg = ipc_rst_shm(tk->c->ipc, v->sysv_shmid);
	unsigned long end = v->end, attach_end = v->start + PAGE_ALIGN_K(seg->size);
	pid_t pid = tk->p->pe->pid;
	long ret;
	int err;

	for (size_t j = i + 1; j < mm->n_vmas; j++) {
		const VmaEntry *n = mm->vmas[j];

		if (n->kind != v->kind || n->sysv_shmid != v->sysv_shmid || n->start != end || !n->pgoff)
			break;
		end = n->end;
	}
	err = inj(tk, pid, SYS_shmat, "shmat", &ret, v->sysv_shmid, v->start,
		  (v->sysv_rdonly ? SHM_RDONLY : 0) | ((v->prot & PROT_EXEC) ? SHM_EXEC : 0), 0, 0, 0);
	if (err)
		return err;
	if (ret != (long)v->start)
		return log_errno(ret < 0 && ret > -4096 ? -ret : EFAULT,
				 "pid %d: cannot attach System V segment shmid %d at 0x%" PRIx64,
				 pid, v->sysv_shmid, v->start);
	if (end < attach_end)
		return INJ(tk, pid, SYS_munmap, "cannot unmap the tail of a System V attachment", end,
			   attach_end - end, 0, 0, 0, 0);
	return 0;
}

int restore_mm(struct takeover *tk)
{
	struct rproc *p = tk->p;
	MmImage *mm = p->mm;
	pid_t pid = p->pe->pid;
	struct range *keep, sp[4], vd;
	unsigned long prev = 0, new_vdso;
	int nkeep = 0, nsp, err;
	bool proxy, lazy;

	/* 1. tear down the stub's layout, keeping the trampoline, vdso/vvar
	 * and the private memory already in place for copy-on-write */
	err = read_special_maps(pid, sp, &nsp, &vd, NULL, NULL);
	if (err)
		return err;
	keep = calloc(mm->n_vmas + 1 + nsp, sizeof(*keep));
	if (!keep)
		return -ENOMEM;
	keep[nkeep].start = p->tramp;
	keep[nkeep++].end = p->tramp + puppet_area_size();
	for (int i = 0; i < nsp; i++)
		keep[nkeep++] = sp[i];
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (cow_done(p, i)) {
			keep[nkeep].start = mm->vmas[i]->start;
			keep[nkeep++].end = mm->vmas[i]->end;
		}
	qsort(keep, nkeep, sizeof(*keep), range_cmp);
	for (int i = 0; i <= nkeep; i++) {
		unsigned long end = i < nkeep ? keep[i].start : ARCH_TASK_SIZE;

		if (end > prev) {
			err = INJ(tk, pid, SYS_munmap, "cannot clear the address space", prev, end - prev, 0, 0, 0, 0);
			if (err)
				break;
		}
		if (i < nkeep)
			prev = keep[i].end;
	}
	free(keep);
	if (err)
		return err;

	/* 2. the vDSO */
	err = restore_vdso(tk, &proxy, &new_vdso);
	if (err)
		return err;

	/*
	 * 3. the dumped mappings.  Private ones with their own protection and
	 * MAP_NORESERVE as dumped: a writable mapping is charged against the
	 * commit limit and a PROT_NONE or MAP_NORESERVE one is not, so an 8 TiB
	 * reservation maps here as it did in the dumped process (mapped
	 * writable it would fail with ENOMEM).  Shared memory and the vDSO
	 * copy are writable until their pages are in.
	 */
	for (size_t i = 0; i < mm->n_vmas; i++) {
		VmaEntry *v = mm->vmas[i];
		unsigned long flags = MAP_FIXED, prot = PROT_READ | PROT_WRITE;
		long fd = -1, ret;

		switch (v->kind) {
		case VMA_KIND__VMA_VVAR:
		case VMA_KIND__VMA_VSYSCALL:
			continue;
		case VMA_KIND__VMA_VDSO:
			if (!proxy)
				continue;
			flags |= MAP_PRIVATE | MAP_ANONYMOUS;
			break;
		case VMA_KIND__VMA_ANON_PRIVATE:
			if (cow_done(p, i))
				continue;	/* in place, filled (stub_cow_prepare) */
			flags |= MAP_PRIVATE | MAP_ANONYMOUS | (v->growsdown ? MAP_GROWSDOWN : 0) |
				 (v->flags & MAP_NORESERVE);
			prot = v->prot;
			break;
		case VMA_KIND__VMA_FILE_PRIVATE:
			flags |= MAP_PRIVATE | (v->flags & MAP_NORESERVE);
			prot = v->prot;
			fd = keep_fd(p, v->file_id);
			break;
		case VMA_KIND__VMA_FILE_SHARED:
			flags |= MAP_SHARED;
			prot = v->prot;
			fd = keep_fd(p, v->file_id | ((v->prot & PROT_WRITE) ? 0x40000000u : 0));
			break;
		case VMA_KIND__VMA_SHMEM:
			/* filled through its fd: mapped as it was (a memfd sealed
			 * F_SEAL_FUTURE_WRITE takes no writable mapping) */
			flags |= MAP_SHARED;
			prot = v->prot;
			fd = keep_fd(p, SHM_KEY | v->shmem_id);
			break;
		case VMA_KIND__VMA_SYSV_SHM:
			if (v->pgoff)
				continue;	/* a piece of the attachment before */
			err = attach_sysv(tk, i);
			if (err)
				return err;
			continue;
		default:
			return log_errno(EINVAL, "mm-%d.img: unknown mapping kind %d", pid, v->kind);
		}
		if (!(flags & MAP_ANONYMOUS) && fd < 0)
			return log_errno(EBADF, "pid %d: no file to map at 0x%" PRIx64, pid, v->start);
		err = inj(tk, pid, SYS_mmap, "mmap", &ret, v->start, v->end - v->start, prot, flags,
			  fd, (flags & MAP_ANONYMOUS) ? 0 : v->pgoff);
		if (err)
			return err;
		if (ret != (long)v->start)
			return log_errno(ret < 0 && ret > -4096 ? -ret : EFAULT,
					 "pid %d: cannot map 0x%" PRIx64 "-0x%" PRIx64 " (%s)", pid,
					 v->start, v->end, v->name ? v->name : "");
	}

	if (tk->p->core->has_thp_disabled) {
		err = INJ(tk, pid, SYS_prctl, "cannot restore PR_SET_THP_DISABLE", PR_SET_THP_DISABLE,
			  tk->p->core->thp_disabled, 0, 0, 0, 0);
		if (err)
			return err;
	}
	/* 4. the pages, where transparent huge pages were asked for (or
	 * refused) told so first: the first write into each 2 MiB extent then
	 * faults in a huge page, as the dumped range had */
	for (size_t i = 0; i < mm->n_vmas; i++) {
		VmaEntry *v = mm->vmas[i];

		if (v->kind != VMA_KIND__VMA_ANON_PRIVATE || cow_done(p, i))
			continue;
		for (int a = MADV_HUGEPAGE; a <= MADV_NOHUGEPAGE; a++) {
			if (!(v->madv & (1ULL << a)))
				continue;
			err = INJ(tk, pid, SYS_madvise, "madvise", v->start, v->end - v->start, a,
				  0, 0, 0);
			if (err)
				return err;
		}
	}
	err = lazy_plan(tk, &lazy);
	if (!err)
		err = lazy ? restore_pages_picked(tk, proxy, false, true) : restore_pages(tk, proxy);
	if (!err)
		err = restore_cow_pages(tk);
	if (!err)
		err = thp_collapse(tk, false);
	if (err)
		return err;
	if (proxy) {
		err = patch_old_vdso(tk, new_vdso);
		if (err)
			return err;
	}

	/* 5. final protections and advice */
	for (size_t i = 0; i < mm->n_vmas; i++) {
		VmaEntry *v = mm->vmas[i];
		unsigned long len = v->end - v->start;

		if (v->kind == VMA_KIND__VMA_VVAR || v->kind == VMA_KIND__VMA_VSYSCALL ||
		    (v->kind == VMA_KIND__VMA_VDSO && !proxy))
			continue;
		if (v->prot != (PROT_READ | PROT_WRITE) && v->kind != VMA_KIND__VMA_FILE_SHARED &&
		    (v->kind != VMA_KIND__VMA_ANON_PRIVATE || cow_done(p, i)) &&
		    v->kind != VMA_KIND__VMA_FILE_PRIVATE) {
			err = INJ(tk, pid, SYS_mprotect, "cannot set protections", v->start, len, v->prot, 0, 0, 0);
			if (err)
				return err;
		}
		for (int a = 0; a < 64; a++) {
			if (!(v->madv & (1ULL << a)))
				continue;
			err = INJ(tk, pid, SYS_madvise, "madvise", v->start, len, a, 0, 0, 0);
			if (err)
				return err;
		}
		if (v->locked)
			INJ(tk, pid, SYS_mlock, "mlock", v->start, len, 0, 0, 0, 0);
	}

	/* 6. the lazy mappings to the pages server (or, if this kernel
	 * cannot, their pages now) */
	if (lazy) {
		err = lazy_register(tk);
		if (err == -EOPNOTSUPP) {
			err = restore_pages_picked(tk, proxy, true, false);
			if (!err)
				err = thp_collapse(tk, true);
		}
	}
	return err;
}

int restore_mm_fields(struct takeover *tk)
{
	MmEntry *m = tk->p->core->mm;
	pid_t pid = tk->p->pe->pid;
	struct prctl_mm_map_k map = {
		.start_code = m->start_code, .end_code = m->end_code,
		.start_data = m->start_data, .end_data = m->end_data,
		.start_brk = m->start_brk, .brk = m->brk, .start_stack = m->start_stack,
		.arg_start = m->arg_start, .arg_end = m->arg_end,
		.env_start = m->env_start, .env_end = m->env_end,
		.exe_fd = (uint32_t)-1,
	};
	size_t auxv_len = m->n_auxv * 8;
	int err, exe = keep_fd(tk->p, 0x20000000u);

	if (auxv_len > 1024)
		return log_errno(EINVAL, "core-%d.img: auxv too long", pid);
	map.auxv = tk->pp.scratch + 256;
	map.auxv_size = auxv_len;
	map.exe_fd = exe >= 0 ? (uint32_t)exe : (uint32_t)-1;
	err = scratch_put(tk, 0, &map, sizeof(map));
	if (!err && auxv_len)
		err = scratch_put(tk, 256, m->auxv, auxv_len);
	if (!err)
		err = INJ(tk, pid, SYS_prctl, "cannot restore the mm layout (PR_SET_MM_MAP)", PR_SET_MM,
			  PR_SET_MM_MAP, tk->pp.scratch, sizeof(map), 0, 0);
	return err;
}

/* ---- copy-on-write between a parent and its children -------------------- */

/*
 * A child's private anonymous pages that were still its parent's at dump
 * (mm_image.cow_runs, found by page frame in mem.c) are not in its image.
 * Each stub, before it forks its children, maps the private anonymous
 * mappings they share with it (COW_WANTED, planned here before anything is
 * forked) and the restorer writes its pages into them (cow_fill), so the
 * children inherit them copy-on-write, as the dumped ones had.  A child
 * keeps of an inherited mapping what lies inside a mapping of its own of
 * the same kind, flags and THP advice (cow_compatible: the bounds may
 * differ, either may have grown or shrunk since the fork), unmaps the
 * rest, adds the parts of its mapping the parent's does not cover
 * (cow_extend), drops the pages it did not share (MADV_DONTNEED) and gets
 * only its own written, and the shared ones of those added parts.
 * Every other range is rebuilt at the takeover as without sharing, the
 * shared pages written from the ancestor's image that has them
 * (put_cow_pages).
 *
 * Who sees what: the plan is the restorer's, inherited by every stub.  A
 * stub's copy of its parent's states is the parent stub's own (it was
 * forked after stub_cow_prepare), and the restorer reads each stub's
 * states back in cow_fill before that stub forks: so the stub and the
 * restorer find the same pieces kept (cow_piece) from the same states.
 */

/* The first mapping of @mm that ends past @vaddr (n_vmas: none). */
static size_t vma_from(const MmImage *mm, uint64_t vaddr)
{
	size_t lo = 0, hi = mm->n_vmas;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (mm->vmas[mid]->end <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The mapping of @mm holding @vaddr, or -1 (mappings are in address order). */
static long vma_at(const MmImage *mm, uint64_t vaddr)
{
	size_t i = vma_from(mm, vaddr);

	return i < mm->n_vmas && mm->vmas[i]->start <= vaddr ? (long)i : -1;
}

#define THP_ADVICE ((1ULL << MADV_HUGEPAGE) | (1ULL << MADV_NOHUGEPAGE))

/* Can the child's mapping @v keep, where they overlap, the parent's @pv it
 * inherited?  The protection is set at the takeover (as the plan's
 * mappings are all writable until then). */
static bool cow_compatible(const VmaEntry *pv, const VmaEntry *v)
{
	return pv->kind == VMA_KIND__VMA_ANON_PRIVATE && v->kind == VMA_KIND__VMA_ANON_PRIVATE &&
	       pv->start < v->end && v->start < pv->end && !pv->growsdown && !v->growsdown &&
	       pv->flags == v->flags && (pv->madv & THP_ADVICE) == (v->madv & THP_ADVICE);
}

static bool cow_done(const struct rproc *p, long j)
{
	return p->cow && j >= 0 && p->cow[j] >= COW_INHERITED;
}

/*
 * In the child's mapping @v, from @s: the end of the piece (at most
 * v->end) that is all memory its parent @pp mapped for it and that @v
 * keeps (*kept), or all not.  @pp's states: as its stub left them.
 */
static uint64_t cow_piece(const struct rproc *pp, const VmaEntry *v, uint64_t s, bool *kept)
{
	size_t j = pp && pp->cow ? vma_from(pp->mm, s) : 0;

	*kept = false;
	for (; pp && pp->cow && j < pp->mm->n_vmas && pp->mm->vmas[j]->start < v->end; j++) {
		const VmaEntry *pv = pp->mm->vmas[j];
		bool k = cow_done(pp, j) && cow_compatible(pv, v);

		if (pv->start <= s && k) {
			*kept = true;
			return pv->end < v->end ? pv->end : v->end;
		}
		if (pv->start > s && k)
			return pv->start;
	}
	return v->end;
}

/* Does the child's mapping @v keep any of what @pp mapped for it? */
static bool cow_keeps(const struct rproc *pp, const VmaEntry *v)
{
	bool kept;

	return v->kind == VMA_KIND__VMA_ANON_PRIVATE &&
	       (cow_piece(pp, v, v->start, &kept) < v->end || kept);
}

int cow_plan(struct rctx *c)
{
	for (int i = 0; i < c->n; i++) {
		struct rproc *p = &c->p[i];

		if (!p->alive)
			continue;
		p->cow = calloc(p->mm->n_vmas + 1, 1);
		if (!p->cow)
			return -ENOMEM;
	}
	for (int i = 1; i < c->n; i++) {
		struct rproc *p = &c->p[i];
		int up = rproc_index(c, p->pe->ppid);
		struct rproc *pp = up >= 0 ? &c->p[up] : NULL;

		if (!p->alive || !pp || !pp->alive)
			continue;
		for (size_t r = 0; r < p->mm->n_cow_runs; r++) {
			const PageRun *run = p->mm->cow_runs[r];
			uint64_t end = run->vaddr + run->nr_pages * PAGE_SIZE_K;
			long j = vma_at(p->mm, run->vaddr);

			/* every mapping of the parent the run lies in.  The stub
			 * maps it writable: charged against the commit limit as
			 * the dumped one was only if writable (or not at all
			 * with MAP_NORESERVE) */
			for (size_t pj = vma_from(pp->mm, run->vaddr);
			     j >= 0 && pj < pp->mm->n_vmas && pp->mm->vmas[pj]->start < end; pj++) {
				const VmaEntry *pv = pp->mm->vmas[pj];

				if (cow_compatible(pv, p->mm->vmas[j]) &&
				    ((pv->prot & PROT_WRITE) || (pv->flags & MAP_NORESERVE)))
					pp->cow[pj] = COW_WANTED;
			}
		}
	}
	return 0;
}

/* Drop from the inherited mapping @v what the child did not share. */
static int cow_zap(const struct rproc *p, const VmaEntry *v)
{
	const MmImage *mm = p->mm;
	uint64_t at = v->start;
	size_t lo = 0, hi = mm->n_cow_runs;

	while (lo < hi) {	/* the first run that ends past the mapping's start */
		size_t mid = (lo + hi) / 2;
		const PageRun *cr = mm->cow_runs[mid];

		if (cr->vaddr + cr->nr_pages * PAGE_SIZE_K <= v->start)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t r = lo; r <= mm->n_cow_runs; r++) {
		const PageRun *cr = r < mm->n_cow_runs ? mm->cow_runs[r] : NULL;
		uint64_t s = cr ? cr->vaddr : v->end, e = cr ? s + cr->nr_pages * PAGE_SIZE_K : v->end;

		if (e <= v->start)
			continue;
		if (s > v->end)
			s = e = v->end;
		if (s > at && madvise((void *)at, s - at, MADV_DONTNEED))
			return log_errno(errno, "pid %u: cannot drop the pages of 0x%" PRIx64 "-0x%"
					 PRIx64 " it did not share with its parent", p->pe->pid, at, s);
		at = e;
		if (at >= v->end)
			break;
	}
	return 0;
}

/*
 * Make the child's mapping @v whole around what it keeps of its parent's:
 * a part above a kept one by growing that in place (mremap: one mapping,
 * as the dumped one was), any other mapped here as the plan's mappings are
 * (the kernel does not merge a new mapping into one still sharing pages
 * with a parent's: two mappings of the same properties).  False (and what
 * it kept unmapped) where a part is taken in the stub's own layout: the
 * mapping is then rebuilt at the takeover.
 */
static bool cow_extend(const struct rproc *p, const struct rproc *pp, const VmaEntry *v)
{
	uint64_t s, e, ks = 0;	/* ks: where the kept piece just before starts */
	bool kept;

	for (s = v->start; s < v->end; s = e) {
		void *a;

		e = cow_piece(pp, v, s, &kept);
		if (kept) {
			ks = s;
			continue;
		}
		if (ks && mremap((void *)ks, s - ks, e - ks, 0) == (void *)ks) {
			ks = 0;
			continue;
		}
		ks = 0;
		a = mmap((void *)s, e - s, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | (v->flags & MAP_NORESERVE),
			 -1, 0);
		if (a != (void *)s) {
			if (a != MAP_FAILED)
				munmap(a, e - s);
			break;
		}
		for (int adv = MADV_HUGEPAGE; adv <= MADV_NOHUGEPAGE; adv++)
			if (v->madv & (1ULL << adv))
				madvise(a, e - s, adv);
	}
	if (s >= v->end)
		return true;
	/* below @s all is ours (kept or just mapped); above, what is kept */
	munmap((void *)v->start, s - v->start);
	for (; s < v->end; s = e) {
		e = cow_piece(pp, v, s, &kept);
		if (kept)
			munmap((void *)s, e - s);
	}
	log_debug("pid %u: 0x%" PRIx64 "-0x%" PRIx64 " does not fit around what it shares with its "
		  "parent: rebuilt without sharing", p->pe->pid, v->start, v->end);
	return false;
}

int stub_cow_prepare(struct rctx *c, int idx)
{
	struct rproc *p = &c->p[idx];
	MmImage *mm = p->mm;
	int up = idx ? rproc_index(c, p->pe->ppid) : -1;
	const struct rproc *pp = up >= 0 && c->p[up].cow ? &c->p[up] : NULL;

	if (!p->cow)
		return 0;
	/* what the parent mapped for its children: what lies in a mapping of
	 * ours that can keep it stays, the rest goes */
	for (size_t j = 0; pp && j < pp->mm->n_vmas; j++) {
		const VmaEntry *pv = pp->mm->vmas[j];
		uint64_t s, e;

		if (!cow_done(pp, j))
			continue;
		for (s = pv->start; s < pv->end; s = e) {
			size_t i = vma_from(mm, s);
			const VmaEntry *v = i < mm->n_vmas ? mm->vmas[i] : NULL;
			bool keep = v && v->start <= s && cow_compatible(pv, v);

			e = !v ? pv->end : v->start > s ? v->start : v->end;
			if (e > pv->end)
				e = pv->end;
			if (!keep && munmap((void *)s, e - s))
				return log_errno(errno, "pid %u: cannot unmap 0x%" PRIx64 "-0x%" PRIx64,
						 p->pe->pid, s, e);
		}
	}
	/* ... and each mapping of ours that keeps some is made whole */
	for (size_t i = 0; pp && i < mm->n_vmas; i++) {
		const VmaEntry *v = mm->vmas[i];
		int ret;

		if (!cow_keeps(pp, v) || !cow_extend(p, pp, v))
			continue;
		ret = cow_zap(p, v);
		if (ret)
			return ret;
		p->cow[i] = COW_INHERITED;
	}
	/* what our children share with us: mapped here before they are forked */
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *v = mm->vmas[i];
		void *a;

		if (p->cow[i] != COW_WANTED)
			continue;
		a = mmap((void *)v->start, v->end - v->start, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | (v->flags & MAP_NORESERVE),
			 -1, 0);
		if (a != (void *)v->start) {
			/* taken in the stub's own layout: rebuilt at the takeover */
			if (a != MAP_FAILED)
				munmap(a, v->end - v->start);
			p->cow[i] = COW_NONE;
			log_debug("pid %u: 0x%" PRIx64 "-0x%" PRIx64 " is not shared with its children",
				  p->pe->pid, v->start, v->end);
			continue;
		}
		for (int adv = MADV_HUGEPAGE; adv <= MADV_NOHUGEPAGE; adv++)
			if (v->madv & (1ULL << adv))
				madvise(a, v->end - v->start, adv);
		p->cow[i] = COW_PREMAPPED;
	}
	return 0;
}

#define COW_CHUNK (2UL << 20)

/* Write @npages pages of @src's own pages image, from page @off, into @pid
 * at @vaddr. */
static int put_pages(struct rctx *c, struct rproc *src, uint64_t off, pid_t pid, uint64_t vaddr,
		     uint64_t npages, int *memfd)
{
	static uint8_t *buf;

	while (npages) {
		size_t len = npages * PAGE_SIZE_K < COW_CHUNK ? npages * PAGE_SIZE_K : COW_CHUNK;
		const uint8_t *from;
		struct iovec local, remote = { (void *)vaddr, len };
		int err;

		if (src->pages.data) {
			err = pages_check(src, off * PAGE_SIZE_K, len);
			if (err)
				return err;
			from = (const uint8_t *)src->pages.data + off * PAGE_SIZE_K;
		} else {
			if (!buf && !(buf = malloc(COW_CHUNK)))
				return -ENOMEM;
			err = c->st->ops->read(c->st, &src->pages, off * PAGE_SIZE_K, buf, len);
			if (err)
				return log_errno(err, "pid %u: cannot read %s at offset %" PRIu64 " from %s",
						 src->pe->pid, src->pages.name, off * PAGE_SIZE_K,
						 c->st->where);
			from = buf;
		}
		local.iov_base = (void *)from;
		local.iov_len = len;
		if (process_vm_writev(pid, &local, 1, &remote, 1, 0) != (ssize_t)len) {
			/* not writable: /proc/PID/mem writes with FOLL_FORCE */
			if (*memfd < 0) {
				char path[64];

				snprintf(path, sizeof(path), "/proc/%d/mem", pid);
				*memfd = open(path, O_RDWR | O_CLOEXEC);
				if (*memfd < 0)
					return log_errno(errno, "pid %d: cannot open %s", pid, path);
			}
			if (pwrite(*memfd, from, len, vaddr) != (ssize_t)len)
				return log_errno(errno, "pid %d: cannot write pages at 0x%" PRIx64, pid,
						 vaddr);
		}
		off += len / PAGE_SIZE_K;
		vaddr += len;
		npages -= len / PAGE_SIZE_K;
	}
	return 0;
}

/* Write into @pid the @npages pages task @idx shared with its parent at
 * @vaddr, from the image of the ancestor that has them (ckpt_images_validate
 * checked there is one). */
static int put_cow_pages(struct rctx *c, int idx, pid_t pid, uint64_t vaddr, uint64_t npages,
			 int *memfd)
{
	int up = rproc_index(c, c->p[idx].pe->ppid);
	struct rproc *q = up >= 0 ? &c->p[up] : NULL;

	while (npages) {
		const PageRun *r = q ? ckpt_mm_run_at(q->mm, vaddr, false) : NULL;
		bool cow = !r && q;
		uint64_t n;
		int err;

		if (cow)
			r = ckpt_mm_run_at(q->mm, vaddr, true);
		if (!r)
			return log_errno(EINVAL, "pid %u: page 0x%" PRIx64 " of its parent is not in its "
					 "parent's image", c->p[idx].pe->pid, vaddr);
		n = r->nr_pages - (vaddr - r->vaddr) / PAGE_SIZE_K;
		if (n > npages)
			n = npages;
		if (cow)
			err = put_cow_pages(c, up, pid, vaddr, n, memfd);
		else
			err = put_pages(c, q, r->off + (vaddr - r->vaddr) / PAGE_SIZE_K, pid, vaddr, n,
					memfd);
		if (err)
			return err;
		vaddr += n * PAGE_SIZE_K;
		npages -= n;
	}
	return 0;
}

int cow_fill(struct rctx *c, int idx)
{
	struct rproc *p = &c->p[idx];
	MmImage *mm = p->mm;
	pid_t pid = p->pe->pid;
	struct iovec io = { p->cow, mm ? mm->n_vmas : 0 };
	int up = idx ? rproc_index(c, p->pe->ppid) : -1, memfd = -1, err = 0;

	if (!p->alive || !p->cow || !mm->n_vmas)
		return 0;
	/* what the stub could map: its copy of p->cow */
	if (process_vm_readv(pid, &io, 1, &io, 1, 0) != (ssize_t)io.iov_len)
		return log_errno(errno, "pid %d: cannot read what its restore helper mapped", pid);
	for (size_t r = 0; !err && r < mm->n_runs; r++) {
		const PageRun *run = mm->runs[r];

		if (cow_done(p, vma_at(mm, run->vaddr)))
			err = put_pages(c, p, run->off, pid, run->vaddr, run->nr_pages, &memfd);
	}
	/* the shared pages of what the stub mapped itself: its own mappings
	 * for its children, the parts of inherited ones the parent did not
	 * map (the parent's states: read back from its stub before it forked) */
	for (size_t r = 0; !err && r < mm->n_cow_runs; r++) {
		const PageRun *run = mm->cow_runs[r];
		uint64_t s = run->vaddr, end = s + run->nr_pages * PAGE_SIZE_K, e;
		long j = vma_at(mm, s);
		bool kept = false;

		if (j < 0 || p->cow[j] < COW_INHERITED)
			continue;
		for (; !err && s < end; s = e) {
			if (p->cow[j] == COW_INHERITED)
				e = cow_piece(up >= 0 ? &c->p[up] : NULL, mm->vmas[j], s, &kept);
			else
				e = end;
			if (e > end)
				e = end;
			if (!kept)
				err = put_cow_pages(c, idx, pid, s, (e - s) / PAGE_SIZE_K, &memfd);
		}
	}
	if (memfd >= 0)
		close(memfd);
	return err;
}

/* At the takeover: the shared pages of the mappings that were not
 * inherited, from the ancestors' images. */
static int restore_cow_pages(struct takeover *tk)
{
	struct rproc *p = tk->p;
	MmImage *mm = p->mm;
	int idx = p - tk->c->p;

	for (size_t r = 0; r < mm->n_cow_runs; r++) {
		const PageRun *run = mm->cow_runs[r];
		int err;

		if (cow_done(p, vma_at(mm, run->vaddr)))
			continue;
		err = put_cow_pages(tk->c, idx, p->pe->pid, run->vaddr, run->nr_pages, &tk->memfd);
		if (err)
			return err;
	}
	return 0;
}
