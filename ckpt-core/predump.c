// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Pre-dump rounds (kup dump --pre-dump): the private memory of a tree is
 * copied while it runs, the pages it writes meanwhile are tracked and copied
 * again, round after round, until few change; the frozen dump then reads
 * only the pages written since the last round and takes the others from
 * the copy (mem.c, copy_runs).  docs/design.md, "Pre-dump".
 *
 * Tracking: a userfaultfd in write-protect mode with UFFD_FEATURE_WP_ASYNC
 * (Linux 6.7): the kernel resolves a write to a protected page by itself,
 * clearing the protection, and PAGEMAP_SCAN reports the pages written
 * (PAGE_IS_WRITTEN) and protects them again in the same walk.  The
 * userfaultfd is created inside each process by an injected syscall (it
 * belongs to the address space that calls it), taken out with pidfd_getfd
 * and closed in the process again: kup holds the only reference, and its
 * ioctls act on that address space.  Closing it (or kup's death) unregisters
 * every range and drops every protection: the tree runs on as before.
 *
 * A page is taken from the copy only if, at the freeze, it is present,
 * protected by our userfaultfd (PAGE_IS_WPALLOWED) and not written since
 * (not PAGE_IS_WRITTEN).  A page is protected only by a scan that also
 * reports it; a reported page that is wanted is copied after the scan, so
 * a write that races with the copy leaves it written.  A mapping made,
 * moved (mremap) or replaced since is not registered (the kernel drops the
 * registration with the mapping) or its pages are new: it is read in full.
 * A process that exec'd has a new address space that our userfaultfd does
 * not cover: read in full.  Swapped pages are read at the freeze.
 *
 * Mappings are registered with the process's threads stopped for a moment
 * (register_vmas), and once the rounds converge each process's page image
 * is written into the store ahead of the freeze (write_ahead), so that the
 * frozen pass only reads the pages written since into it.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "internal.h"
#include "journal.h"

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY	1
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED	(1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC	(1 << 15)
#endif

/* PAGEMAP_SCAN (linux/fs.h of 6.7; Debian 12's headers lack it) */
struct pd_region {
	uint64_t start, end, categories;
};

struct pd_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};

#define PD_PAGEMAP_SCAN		_IOWR('f', 16, struct pd_scan_arg)
#define PD_WP_MATCHING		(1 << 0)
#define PD_IS_WPALLOWED		(1 << 0)
#define PD_IS_WRITTEN		(1 << 1)
#define PD_IS_FILE		(1 << 2)
#define PD_IS_PRESENT		(1 << 3)
#define PD_IS_PFNZERO		(1 << 5)

/*
 * When the rounds stop early: a round that found at most PD_STOP_PAGES
 * pages written, or at most PD_STOP_PERMILLE of what the tree has in the
 * copy, or more than the round before (the tree writes faster than the
 * rounds copy: more rounds would not shrink the frozen pass).
 */
#define PD_STOP_PAGES		2048	/* 8 MiB */
#define PD_STOP_PERMILLE	20	/* 2% */

/* The copy of one process's pages: page slots in one growing mapping, found
 * by page number through an open-addressing hash table; and the slots in
 * page order (shadow_order: made after each round, while the tree runs), so
 * that the frozen pass merges them with the pages it selected instead of
 * looking each one up. */
struct pd_shadow {
	uint8_t *data;		/* cap slots of PAGE_SIZE_K */
	uint8_t *valid;		/* per slot: its content is a copy of the page */
	uint64_t *pg;		/* per slot: its page number */
	size_t n, cap;
	uint64_t *keys;		/* page number + 1; 0: free */
	uint32_t *vals;
	size_t hn, hcap;
	uint32_t *order;	/* slots [0, on), by page number */
	size_t on;
};

struct pd_proc {
	pid_t pid;
	unsigned long long start_time;	/* the pid is this process */
	int uffd;			/* the userfaultfd (PD_UFFD), or -1 */
	bool tracked;			/* its writes are tracked */
	bool tried;			/* set-up attempted: not again */
	bool sd_seen;			/* PD_SOFTDIRTY: a round read it */
	struct pd_shadow sh;
	/* its page image written ahead (write_ahead), laid out by page number */
	struct img_blob blob;
	bool have_blob;
	uint64_t *layout;		/* page numbers, ascending */
	size_t nlayout;
	uint64_t *sums;			/* ... the checksum of each of its pieces */
	uint8_t *stale;			/* ... per piece: written since its sum */
};

enum pd_method {
	PD_UFFD,	/* userfaultfd WP_ASYNC + PAGEMAP_SCAN (6.7+) */
	PD_SOFTDIRTY,	/* clear_refs 4 + pagemap bit 55 */
};

struct predump {
	struct pd_proc *p;
	int n, cap;
	struct img_store *st;
	enum pd_method method;
	unsigned int rounds;	/* run so far (catch-up rounds too) */
	uint64_t copied;	/* pages they copied */
};

/* pagemap entries (Documentation/admin-guide/mm/pagemap.rst) */
#define PM_SOFT_DIRTY		(1ULL << 55)
#define PM_FILE			(1ULL << 61)
#define PM_PRESENT		(1ULL << 63)


static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* ---- the copy ------------------------------------------------------------- */

static size_t hash_slot(uint64_t key, size_t cap)
{
	key *= 0x9e3779b97f4a7c15ULL;
	return (key >> 17) & (cap - 1);
}

static int shadow_grow_hash(struct pd_shadow *sh)
{
	size_t ncap = sh->hcap ? sh->hcap * 2 : 4096;
	uint64_t *nk = calloc(ncap, sizeof(*nk));
	uint32_t *nv = calloc(ncap, sizeof(*nv));

	if (!nk || !nv) {
		free(nk);
		free(nv);
		return -ENOMEM;
	}
	for (size_t i = 0; i < sh->hcap; i++) {
		size_t h;

		if (!sh->keys[i])
			continue;
		for (h = hash_slot(sh->keys[i], ncap); nk[h]; h = (h + 1) & (ncap - 1))
			;
		nk[h] = sh->keys[i];
		nv[h] = sh->vals[i];
	}
	free(sh->keys);
	free(sh->vals);
	sh->keys = nk;
	sh->vals = nv;
	sh->hcap = ncap;
	return 0;
}

/* The slot of page number @pg, or -1. */
static long shadow_find(const struct pd_shadow *sh, uint64_t pg)
{
	if (!sh->hcap)
		return -1;
	for (size_t h = hash_slot(pg + 1, sh->hcap); sh->keys[h]; h = (h + 1) & (sh->hcap - 1))
		if (sh->keys[h] == pg + 1)
			return sh->vals[h];
	return -1;
}

static int shadow_grow_data(struct pd_shadow *sh)
{
	size_t ncap = sh->cap ? sh->cap * 2 : 1024;
	uint8_t *nd, *nvalid;
	uint64_t *npg;

	if (ncap > UINT32_MAX)
		return -ENOMEM;
	nvalid = realloc(sh->valid, ncap);
	if (!nvalid)
		return -ENOMEM;
	memset(nvalid + sh->cap, 0, ncap - sh->cap);
	sh->valid = nvalid;
	npg = realloc(sh->pg, ncap * sizeof(*npg));
	if (!npg)
		return -ENOMEM;
	sh->pg = npg;
	nd = sh->data ? mremap(sh->data, sh->cap * PAGE_SIZE_K, ncap * PAGE_SIZE_K, MREMAP_MAYMOVE)
		      : mmap(NULL, ncap * PAGE_SIZE_K, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (nd == MAP_FAILED)
		return -ENOMEM;
	sh->data = nd;
	sh->cap = ncap;
	return 0;
}

/* The slot of page number @pg, made if it has none. */
static long shadow_slot(struct pd_shadow *sh, uint64_t pg)
{
	long s = shadow_find(sh, pg);
	size_t h;

	if (s >= 0)
		return s;
	if ((sh->hn + 1) * 2 > sh->hcap && shadow_grow_hash(sh))
		return -ENOMEM;
	if (sh->n == sh->cap && shadow_grow_data(sh))
		return -ENOMEM;
	for (h = hash_slot(pg + 1, sh->hcap); sh->keys[h]; h = (h + 1) & (sh->hcap - 1))
		;
	sh->keys[h] = pg + 1;
	sh->vals[h] = sh->n;
	sh->hn++;
	sh->pg[sh->n] = pg;
	return sh->n++;
}

static const struct pd_shadow *sort_sh;	/* shadow_order's qsort: no re-entry */

static int cmp_slot_pg(const void *a, const void *b)
{
	uint64_t x = sort_sh->pg[*(const uint32_t *)a], y = sort_sh->pg[*(const uint32_t *)b];

	return x < y ? -1 : x > y;
}

/*
 * Bring sh->order up to date: the slots made since it was last (usually a
 * few, mostly in page order already) sorted and merged into it.  Run after
 * each round, not frozen.
 */
static int shadow_order(struct pd_shadow *sh)
{
	size_t add = sh->n - sh->on, i, j, k;
	uint32_t *o, *nw;
	bool sorted = true;

	if (!add)
		return 0;
	o = malloc(sh->n * sizeof(*o));
	nw = malloc(add * sizeof(*nw));
	if (!o || !nw) {
		free(o);
		free(nw);
		return -ENOMEM;
	}
	for (i = 0; i < add; i++) {
		nw[i] = sh->on + i;
		sorted = sorted && (!i || sh->pg[nw[i - 1]] < sh->pg[nw[i]]);
	}
	if (!sorted) {
		sort_sh = sh;
		qsort(nw, add, sizeof(*nw), cmp_slot_pg);
		sort_sh = NULL;
	}
	for (i = j = k = 0; i < sh->on || j < add;)
		o[k++] = j == add || (i < sh->on && sh->pg[sh->order[i]] < sh->pg[nw[j]]) ?
			 sh->order[i++] : nw[j++];
	free(nw);
	free(sh->order);
	sh->order = o;
	sh->on = sh->n;
	return 0;
}

static void shadow_free(struct pd_shadow *sh)
{
	if (sh->data)
		munmap(sh->data, sh->cap * PAGE_SIZE_K);
	free(sh->valid);
	free(sh->pg);
	free(sh->keys);
	free(sh->vals);
	free(sh->order);
	memset(sh, 0, sizeof(*sh));
}

/* ---- tracking ------------------------------------------------------------- */

static unsigned long long start_time_of(pid_t pid)
{
	return journal_start_time(pid, pid);
}

/* Can this kernel track writes with an asynchronous write-protect
 * userfaultfd and PAGEMAP_SCAN?  Tried on kup's own memory. */
static bool uffd_wp_async_works(void)
{
	struct uffdio_api api = { .api = UFFD_API,
				  .features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED };
	struct pd_region reg[4];
	struct pd_scan_arg a = { .size = sizeof(a), .flags = PD_WP_MATCHING,
				 .vec_len = 4, .category_mask = PD_IS_WRITTEN | PD_IS_WPALLOWED,
				 .return_mask = PD_IS_WRITTEN };
	volatile uint8_t *m;
	bool ok = false;
	int fd, pm = -1;

	fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0)
		return false;
	m = mmap(NULL, 2 * PAGE_SIZE_K, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		goto out;
	m[0] = 1;
	a.vec = (uintptr_t)reg;
	a.start = (uintptr_t)m;
	a.end = (uintptr_t)m + 2 * PAGE_SIZE_K;
	if (!ioctl(fd, UFFDIO_API, &api) &&
	    !ioctl(fd, UFFDIO_REGISTER, &(struct uffdio_register){
		    .range = { (uintptr_t)m, 2 * PAGE_SIZE_K }, .mode = UFFDIO_REGISTER_MODE_WP }) &&
	    (pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)) >= 0 &&
	    ioctl(pm, PD_PAGEMAP_SCAN, &a) == 1) {
		/* protected now: not written; written again after a write */
		a.start = (uintptr_t)m;
		ok = ioctl(pm, PD_PAGEMAP_SCAN, &a) == 0;
		m[0] = 2;
		a.start = (uintptr_t)m;
		ok = ok && ioctl(pm, PD_PAGEMAP_SCAN, &a) == 1;
	}
	if (pm >= 0)
		close(pm);
	munmap((void *)m, 2 * PAGE_SIZE_K);
out:
	close(fd);
	return ok;
}

/*
 * Make a userfaultfd in @p's address space and take it: its main thread is
 * stopped for the few syscalls (signals blocked meanwhile), then let go on
 * its own registers.  0 with p->uffd -1 when the process cannot be tracked
 * now (it is being stopped, is in a signal's delivery, refuses the
 * syscall): it is then read in full at the freeze.
 */
static int track_begin(struct pd_proc *p)
{
	struct uffdio_api api = { .api = UFFD_API,
				  .features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED };
	uint64_t mask, all = ~0ULL;
	struct arch_regs regs;
	struct puppet pp = { 0 };
	bool masked = false;
	long fd = -1, r;
	siginfo_t si;
	int ret, pidfd, st;

	p->tried = true;
	ret = puppet_seize(p->pid, true);
	if (ret == -ESRCH)
		return 0;
	if (ret == -ETIMEDOUT) {
		puppet_wait_stop_bounded(p->pid, &st, 0);
		ptrace(PTRACE_DETACH, p->pid, 0, 0);
		log_warn("pid %d: did not stop to start the tracking of its writes: its memory is "
			 "copied at the freeze", p->pid);
		return 0;
	}
	if (ret)
		return log_errno(ret, "pid %d: cannot stop it to track its writes", p->pid);
	/* in a signal's delivery: given back as it is, not tracked */
	if (!ptrace(PTRACE_GETSIGINFO, p->pid, 0, &si) && (si.si_code >> 8) != PTRACE_EVENT_STOP) {
		ptrace(PTRACE_DETACH, p->pid, 0, si.si_signo);
		log_warn("pid %d: stopped in the delivery of signal %d: its memory is copied at "
			 "the freeze", p->pid, si.si_signo);
		return 0;
	}
	ret = seccomp_dump_prepare(p->pid, p->pid);
	if (!ret && ptrace(PTRACE_GETSIGMASK, p->pid, sizeof(mask), &mask))
		ret = log_errno(errno, "pid %d: cannot read the signal mask", p->pid);
	if (!ret)
		ret = arch_get_regs(p->pid, &regs);
	/* journal.h: what `kup recover` puts back if kup dies meanwhile (the
	 * registers only on a thread parked in kup's code) */
	if (!ret && (journal_add("mask %d %d %llu %" PRIx64, p->pid, p->pid,
				 journal_start_time(p->pid, p->pid), mask) ||
		     journal_regs(p->pid, p->pid, &regs)))
		ret = -EIO;
	if (!ret && ptrace(PTRACE_SETSIGMASK, p->pid, sizeof(all), &all))
		ret = log_errno(errno, "pid %d: cannot block signals", p->pid);
	masked = !ret;
	if (!ret)
		ret = puppet_install(&pp, p->pid, p->pid);
	if (!ret)
		ret = PSYS(&pp, p->pid, &fd, __NR_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (!ret && fd >= 0) {
		pidfd = syscall(SYS_pidfd_open, p->pid, 0);
		p->uffd = pidfd < 0 ? -1 : syscall(SYS_pidfd_getfd, pidfd, (int)fd, 0);
		if (p->uffd < 0)
			log_warn_errno(errno, "pid %d: cannot take its userfaultfd %ld: its memory is "
				       "copied at the freeze", p->pid, fd);
		if (pidfd >= 0)
			close(pidfd);
		if (PSYS(&pp, p->pid, &r, __NR_close, fd) && !ret)
			ret = -EIO;
	} else if (!ret) {
		log_warn_errno(-fd, "pid %d: userfaultfd refused: its memory is copied at the freeze",
			       p->pid);
	}
	if (pp.tramp && puppet_uninstall(&pp, p->pid, &regs) && !ret)
		ret = -EIO;
	else if (!pp.tramp && masked)
		arch_set_regs(p->pid, &regs);
	if (masked)
		ptrace(PTRACE_SETSIGMASK, p->pid, sizeof(mask), &mask);
	ptrace(PTRACE_DETACH, p->pid, 0, 0);
	/* a SIGSTOP sent to it meanwhile, passed over in an injected syscall */
	if (puppet_took_stop(p->pid))
		kill(p->pid, SIGSTOP);
	if (!ret && p->uffd >= 0 && ioctl(p->uffd, UFFDIO_API, &api)) {
		log_warn_errno(errno, "pid %d: userfaultfd: cannot enable asynchronous write "
			       "protection: its memory is copied at the freeze", p->pid);
		close(p->uffd);
		p->uffd = -1;
	}
	if (ret && p->uffd >= 0) {
		close(p->uffd);
		p->uffd = -1;
	}
	p->tracked = p->uffd >= 0;
	return ret;
}

/* ---- soft-dirty ------------------------------------------------------------ */

/* Clear the soft-dirty bits of @pid's address space (and write-protect its
 * pages, so that the next write sets the bit again). */
static int clear_soft_dirty(pid_t pid)
{
	char path[64];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/clear_refs", pid);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, "4", 1) != 1)
		ret = -errno;
	close(fd);
	return ret;
}

static int pagemap_entry(int pm, uintptr_t va, uint64_t *e)
{
	return pread(pm, e, sizeof(*e), va / PAGE_SIZE_K * sizeof(*e)) == sizeof(*e) ? 0 : -1;
}

/* Does this kernel keep soft-dirty bits?  A page of kup's own written after
 * a clear must show bit 55, and not before the write. */
static bool soft_dirty_works(void)
{
	volatile uint8_t *m;
	uint64_t e0 = 0, e1 = 0;
	bool ok = false;
	int pm;

	pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pm < 0)
		return false;
	m = mmap(NULL, PAGE_SIZE_K, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m != MAP_FAILED) {
		m[0] = 1;
		if (!clear_soft_dirty(getpid()) && !pagemap_entry(pm, (uintptr_t)m, &e0)) {
			m[0] = 2;
			ok = !pagemap_entry(pm, (uintptr_t)m, &e1) && (e0 & PM_PRESENT) &&
			     !(e0 & PM_SOFT_DIRTY) && (e1 & PM_SOFT_DIRTY);
		}
		munmap((void *)m, PAGE_SIZE_K);
	}
	close(pm);
	return ok;
}

/* ---- rounds --------------------------------------------------------------- */

struct pd_round {
	uint64_t copied;	/* pages written since the last round that the dump saves */
};

/* The private mappings whose pages a dump saves (mem.c, page_wanted). */
struct pd_vma {
	unsigned long start, end;
	bool file;
};

static int read_private_vmas(pid_t pid, struct pd_vma **out, size_t *nout)
{
	char *buf = proc_read_file(pid, "maps", NULL), *line, *save = NULL;
	struct pd_vma *v = NULL;
	size_t n = 0, cap = 0;

	if (!buf)
		return -errno;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long s, e, off, ino;
		char perms[8], dev[32];
		int pos = 0;

		if (sscanf(line, "%lx-%lx %7s %lx %31s %lu %n", &s, &e, perms, &off, dev, &ino,
			   &pos) < 6 || perms[3] != 'p')
			continue;
		if (pos > 0 && line[pos] == '[' && strcmp(line + pos, "[heap]") &&
		    strncmp(line + pos, "[stack", 6) && strncmp(line + pos, "[anon", 5))
			continue;	/* [vdso], [vvar], [vsyscall], [uprobes] */
		if (n == cap) {
			struct pd_vma *nv;

			cap = cap ? cap * 2 : 64;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				free(v);
				free(buf);
				return -ENOMEM;
			}
			v = nv;
		}
		v[n].start = s;
		v[n].end = e;
		v[n].file = pos > 0 && line[pos] && line[pos] != '[';
		n++;
	}
	free(buf);
	*out = v;
	*nout = n;
	return 0;
}

/* The image written ahead has a place for page @pg: copy slots @s.. there
 * (into a streamed image: written again, consecutive pages at once). */
static int blob_update(struct pd_proc *p, uint64_t pg, long s, uint64_t k)
{
	struct img_store *st = p->blob.store;
	size_t at = 0, run = 0;	/* pages [at, at + run) of the image: slots from @s + from */
	uint64_t from = 0;
	int ret = 0;

	for (uint64_t i = 0; i <= k && !ret; i++) {
		uint64_t want = pg + i;
		size_t lo = 0, hi = p->nlayout;
		bool found = false;

		while (i < k && lo < hi) {
			size_t mid = (lo + hi) / 2;

			if (p->layout[mid] < want)
				lo = mid + 1;
			else
				hi = mid;
		}
		found = i < k && lo < p->nlayout && p->layout[lo] == want;
		if (run && (!found || lo != at + run)) {
			if (!p->blob.data)
				ret = st->ops->rewrite(st, &p->blob, at * PAGE_SIZE_K,
						       p->sh.data + (s + from) * PAGE_SIZE_K,
						       run * PAGE_SIZE_K);
			run = 0;
		}
		if (!found)
			continue;
		if (p->blob.data) {
			memcpy(p->blob.data + lo * PAGE_SIZE_K, p->sh.data + (s + i) * PAGE_SIZE_K,
			       PAGE_SIZE_K);
			if (st->ops->changed)
				st->ops->changed(st, &p->blob, lo * PAGE_SIZE_K, PAGE_SIZE_K);
		}
		if (p->stale)
			p->stale[lo * PAGE_SIZE_K / IMG_PAGES_CHUNK] = 1;
		if (!run) {
			at = lo;
			from = i;
		}
		run++;
	}
	return ret ? log_errno(ret, "pid %d: cannot write pages into its image written ahead in %s",
			       p->pid, st->where) : 0;
}

/* Copy pages [@va, @va + @n pages) into their slots: slot runs read at once. */
static int copy_to_shadow(struct pd_proc *p, int memfd, int pm, uint64_t va, uint64_t n)
{
	struct pd_shadow *sh = &p->sh;

	for (uint64_t i = 0; i < n;) {
		long s0 = shadow_slot(sh, va / PAGE_SIZE_K + i), s;
		uint64_t k = 1;
		ssize_t got;

		if (s0 < 0)
			return -ENOMEM;
		while (i + k < n && k < 2048) {
			s = shadow_slot(sh, va / PAGE_SIZE_K + i + k);
			if (s < 0)
				return -ENOMEM;
			if (s != s0 + (long)k)
				break;
			k++;
		}
		/* gone meanwhile (unmapped): no copy, read at the freeze */
		got = mem_read_pages(p->pid, sh->data + s0 * PAGE_SIZE_K, va + i * PAGE_SIZE_K,
				     k * PAGE_SIZE_K, memfd, pm);
		memset(sh->valid + s0, !got, k);
		if (!got && p->have_blob) {
			int ret = blob_update(p, va / PAGE_SIZE_K + i, s0, k);

			if (ret)
				return ret;
		}
		i += k;
	}
	return 0;
}

struct pd_stopped {
	pid_t tid;
	int sig;	/* in the delivery of this signal: given back */
	bool running;	/* seized, did not stop */
};

/* Let go of the threads @v stopped by stop_all(). */
static void resume_all(struct pd_stopped *v, int n)
{
	int st;

	for (int i = 0; i < n; i++) {
		if (v[i].running)
			puppet_wait_stop_bounded(v[i].tid, &st, 0);
		ptrace(PTRACE_DETACH, v[i].tid, 0, v[i].sig);
	}
	free(v);
}

/* Stop every thread of @pid (until no new one appears): 0 with *@out, or
 * -EAGAIN when one does not stop (all let go again). */
static int stop_all(pid_t pid, struct pd_stopped **out, int *nout)
{
	struct pd_stopped *v = NULL;
	int n = 0, ret = 0;

	for (int round = 0; round < 20 && !ret; round++) {
		pid_t *tids;
		int nt, added = 0;

		if (proc_list_tids(pid, &tids, &nt)) {
			ret = -ESRCH;
			break;
		}
		for (int i = 0; i < nt && !ret; i++) {
			struct pd_stopped *nv;
			bool known = false;
			siginfo_t si;
			int r;

			for (int j = 0; j < n; j++)
				known |= v[j].tid == tids[i];
			if (known)
				continue;
			r = puppet_seize(tids[i], true);
			if (r == -ESRCH)
				continue;
			if (r == -EPERM) {
				struct proc_stat ts;

				/* exiting (a child of the tree that ends): a zombie
				 * cannot be seized; nothing to register there */
				if (proc_read_stat(pid, tids[i], &ts) || ts.state == 'Z' || ts.state == 'X') {
					ret = -ESRCH;
					break;
				}
			}
			if (r && r != -ETIMEDOUT) {
				ret = r;
				break;
			}
			nv = realloc(v, (n + 1) * sizeof(*v));
			if (!nv) {
				ret = -ENOMEM;
				break;
			}
			v = nv;
			v[n].tid = tids[i];
			v[n].running = r == -ETIMEDOUT;
			v[n].sig = 0;
			if (!r && !ptrace(PTRACE_GETSIGINFO, tids[i], 0, &si) &&
			    (si.si_code >> 8) != PTRACE_EVENT_STOP)
				v[n].sig = si.si_signo;
			n++;
			added++;
			if (r)
				ret = -EAGAIN;
		}
		free(tids);
		if (!added)
			break;
	}
	if (ret) {
		resume_all(v, n);
		return ret;
	}
	*out = v;
	*nout = n;
	return 0;
}

/*
 * Register @p's private mappings with its userfaultfd (again each round:
 * new ones), its threads stopped meanwhile: a range registered must be a
 * mapping exactly as it is, for one that changed under the ioctl would be
 * split, and the process's next mremap of it fail.  A mapping that cannot
 * be registered (device memory, another userfaultfd's) or a process whose
 * threads do not all stop is not tracked there: read at the freeze.
 */
static int register_vmas(struct pd_proc *p, struct pd_vma **v, size_t *nv)
{
	struct pd_stopped *st = NULL;
	int n = 0, ret;

	*v = NULL;
	*nv = 0;
	ret = stop_all(p->pid, &st, &n);
	if (ret)
		return ret == -EAGAIN || ret == -ESRCH ? 0 :
		       log_errno(ret, "pid %d: cannot stop its threads to register its mappings",
				 p->pid);
	ret = read_private_vmas(p->pid, v, nv);
	for (size_t i = 0; !ret && i < *nv; i++) {
		struct uffdio_register ur = { .range = { (*v)[i].start, (*v)[i].end - (*v)[i].start },
					      .mode = UFFDIO_REGISTER_MODE_WP };

		ioctl(p->uffd, UFFDIO_REGISTER, &ur);
	}
	resume_all(st, n);
	if (ret == -ENOENT || ret == -ESRCH)
		ret = 0;
	return ret ? log_errno(ret, "pid %d: cannot read its mappings", p->pid) : 0;
}

struct pd_range {
	uint64_t va, n;
};

/*
 * The frozen dump's puppet patches a word of code at the program's entry
 * point (puppet_patch_site): its page is copied on write then, and saved
 * with the private pages.  Copied now (the word written with its own value,
 * @pid stopped), the page is in the selection the image written ahead is
 * laid out by, as the frozen pass will have it (the userfaultfd way does
 * the same when it injects its syscalls: track_begin).  Best effort.
 */
static void cow_patch_site(pid_t pid)
{
	unsigned long at = puppet_patch_site(pid, 0);
	long w;

	if (!at)
		return;
	errno = 0;
	w = ptrace(PTRACE_PEEKDATA, pid, at, 0);
	if (!errno)
		ptrace(PTRACE_POKEDATA, pid, at, w);
}

/*
 * One soft-dirty round in @p.  With its threads stopped: read the pages
 * whose soft-dirty bit is set (every present page the first time), then
 * clear the bits; let it go; copy those pages.  A write after the clear
 * sets the bit again (the next round or the freeze sees it), also one that
 * races with the copy; none can fall between the read and the clear, the
 * threads being stopped (docs/design.md, "Pre-dump").
 */
static int round_proc_sd(struct pd_proc *p, struct pd_round *rd)
{
	struct pd_stopped *stp = NULL;
	struct pd_range *rg = NULL;
	size_t nrg = 0, caprg = 0, nv = 0;
	struct pd_vma *v = NULL;
	uint64_t *ent = NULL;
	int pm = -1, memfd = -1, nst = 0, ret;
	char path[64];

	ret = stop_all(p->pid, &stp, &nst);
	if (ret)
		return ret == -EAGAIN || ret == -ESRCH ? 0 :
		       log_errno(ret, "pid %d: cannot stop its threads to read its dirty pages",
				 p->pid);
	if (!p->sd_seen)
		cow_patch_site(p->pid);
	snprintf(path, sizeof(path), "/proc/%d/pagemap", p->pid);
	pm = open(path, O_RDONLY | O_CLOEXEC);
	ent = malloc(4096 * sizeof(*ent));
	if (pm < 0 || !ent) {
		ret = pm < 0 ? -errno : -ENOMEM;
		goto resume;
	}
	ret = read_private_vmas(p->pid, &v, &nv);
	for (size_t i = 0; !ret && i < nv; i++) {
		for (uint64_t va = v[i].start; !ret && va < v[i].end;) {
			uint64_t n = (v[i].end - va) / PAGE_SIZE_K;
			ssize_t got;

			if (n > 4096)
				n = 4096;
			got = pread(pm, ent, n * sizeof(*ent), va / PAGE_SIZE_K * sizeof(*ent));
			if (got <= 0) {
				ret = got ? -errno : -EIO;
				break;
			}
			n = got / sizeof(*ent);
			for (uint64_t j = 0; j < n; j++) {
				uint64_t e = ent[j], pva = va + j * PAGE_SIZE_K;

				if (!(e & PM_PRESENT) || (p->sd_seen && !(e & PM_SOFT_DIRTY)))
					continue;
				if (v[i].file && (e & PM_FILE))
					continue;	/* not saved (mem.c, page_wanted) */
				if (nrg && rg[nrg - 1].va + rg[nrg - 1].n * PAGE_SIZE_K == pva) {
					rg[nrg - 1].n++;
					continue;
				}
				if (nrg == caprg) {
					struct pd_range *nr;

					caprg = caprg ? caprg * 2 : 256;
					nr = realloc(rg, caprg * sizeof(*rg));
					if (!nr) {
						ret = -ENOMEM;
						break;
					}
					rg = nr;
				}
				rg[nrg].va = pva;
				rg[nrg++].n = 1;
			}
			va += n * PAGE_SIZE_K;
		}
	}
	if (!ret)
		ret = clear_soft_dirty(p->pid);
	if (!ret)
		p->sd_seen = true;
resume:
	resume_all(stp, nst);
	if (ret == -ENOENT || ret == -ESRCH) {
		ret = 0;	/* gone meanwhile */
		nrg = 0;
	} else if (ret) {
		ret = log_errno(ret, "pid %d: cannot read and clear its soft-dirty pages", p->pid);
	}
	if (!ret && nrg) {
		snprintf(path, sizeof(path), "/proc/%d/mem", p->pid);
		memfd = open(path, O_RDONLY | O_CLOEXEC);
		if (memfd < 0)
			ret = !start_time_of(p->pid) ? 0 :
			      log_errno(errno, "pid %d: cannot open %s", p->pid, path);
	}
	for (size_t i = 0; !ret && memfd >= 0 && i < nrg; i++) {
		ret = copy_to_shadow(p, memfd, pm, rg[i].va, rg[i].n);
		rd->copied += rg[i].n;
		if (!ret)
			ret = ckpt_check_abort();
	}
	if (pm >= 0)
		close(pm);
	if (memfd >= 0)
		close(memfd);
	free(ent);
	free(rg);
	free(v);
	return ret;
}

/* One round in @p: register its private mappings (again: new ones), report
 * and protect the pages written since the last round, copy those saved. */
static int round_proc(struct pd_proc *p, struct pd_round *rd)
{
	struct pd_region reg[512];
	struct pd_vma *v = NULL;
	size_t nv = 0;
	char path[64];
	int pm = -1, memfd = -1, ret;

	ret = register_vmas(p, &v, &nv);
	if (ret || !nv)
		return ret;
	snprintf(path, sizeof(path), "/proc/%d/pagemap", p->pid);
	pm = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/mem", p->pid);
	memfd = open(path, O_RDONLY | O_CLOEXEC);
	if (pm < 0 || memfd < 0) {
		int e = errno;

		/* gone meanwhile: nothing to say */
		ret = !start_time_of(p->pid) ? 0 :
		      log_errno(e, "pid %d: cannot open pagemap/mem", p->pid);
		goto out;
	}
	for (size_t i = 0; i < nv && !ret; i++) {
		struct pd_scan_arg a = {
			.size = sizeof(a), .flags = PD_WP_MATCHING,
			.start = v[i].start, .end = v[i].end,
			.vec = (uintptr_t)reg, .vec_len = sizeof(reg) / sizeof(reg[0]),
			.category_mask = PD_IS_WRITTEN | PD_IS_WPALLOWED | PD_IS_PRESENT,
			/* PD_IS_FILE costs a look at each page's struct page:
			 * only where it matters (mem.c, select_pages_scan) */
			.return_mask = (v[i].file ? PD_IS_FILE : PD_IS_PFNZERO) | PD_IS_PRESENT,
		};

		while (a.start < v[i].end && !ret) {
			long n = ioctl(pm, PD_PAGEMAP_SCAN, &a);

			if (n < 0) {
				if (errno != ENOENT && errno != ESRCH && errno != EINVAL)
					ret = log_errno(errno, "pid %d: PAGEMAP_SCAN of 0x%" PRIx64 "-0x%lx",
							p->pid, (uint64_t)a.start, v[i].end);
				break;
			}
			for (long j = 0; j < n && !ret; j++) {
				uint64_t c = reg[j].categories, np;

				if (reg[j].end <= reg[j].start || reg[j].start < v[i].start ||
				    reg[j].end > v[i].end)
					continue;
				np = (reg[j].end - reg[j].start) / PAGE_SIZE_K;
				if (v[i].file ? (c & PD_IS_FILE) : (c & PD_IS_PFNZERO))
					continue;	/* not saved (mem.c, page_wanted) */
				ret = copy_to_shadow(p, memfd, pm, reg[j].start, np);
				rd->copied += np;
				if (!ret)
					ret = ckpt_check_abort();
			}
			if (a.walk_end <= a.start)
				break;
			a.start = a.walk_end;
		}
	}
out:
	if (pm >= 0)
		close(pm);
	if (memfd >= 0)
		close(memfd);
	free(v);
	return ret;
}

static struct pd_proc *pd_find(struct predump *pd, pid_t pid)
{
	for (int i = 0; i < pd->n; i++)
		if (pd->p[i].pid == pid)
			return &pd->p[i];
	return NULL;
}

static struct pd_proc *pd_add(struct predump *pd, pid_t pid)
{
	struct pd_proc *p;

	if (pd->n == pd->cap) {
		int ncap = pd->cap ? pd->cap * 2 : 16;
		struct pd_proc *np = realloc(pd->p, ncap * sizeof(*np));

		if (!np)
			return NULL;
		pd->p = np;
		pd->cap = ncap;
	}
	p = &pd->p[pd->n++];
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->uffd = -1;
	p->start_time = start_time_of(pid);
	return p;
}

static void pd_drop(struct predump *pd, struct pd_proc *p)
{
	if (p->uffd >= 0)
		close(p->uffd);
	p->uffd = -1;
	p->tracked = false;
	p->sd_seen = false;
	shadow_free(&p->sh);
	if (p->have_blob)
		pd->st->ops->release(pd->st, &p->blob);
	p->have_blob = false;
	free(p->layout);
	p->layout = NULL;
	p->nlayout = 0;
	free(p->sums);
	free(p->stale);
	p->sums = NULL;
	p->stale = NULL;
}

/* The processes of the tree as it is now (new ones added, tracked), those
 * gone or replaced (another process with the pid) dropped. */
static int walk_tree(struct predump *pd, pid_t root)
{
	pid_t *todo = malloc(sizeof(*todo));
	size_t n = 1, cap = 1;
	int ret = 0;

	if (!todo)
		return -ENOMEM;
	todo[0] = root;
	for (size_t i = 0; i < n && !ret; i++) {
		struct proc_stat st;
		struct pd_proc *p = pd_find(pd, todo[i]);
		pid_t *tids = NULL;
		int nt = 0;

		if (proc_read_stat(todo[i], 0, &st) || st.state == 'Z' || st.state == 'X')
			continue;
		if (p && p->start_time != start_time_of(todo[i])) {
			pd_drop(pd, p);
			p->start_time = start_time_of(todo[i]);
			p->tried = false;
		}
		if (!p && !(p = pd_add(pd, todo[i]))) {
			ret = -ENOMEM;
			break;
		}
		if (!p->tried && pd->method == PD_SOFTDIRTY)
			p->tried = p->tracked = true;
		else if (!p->tried)
			ret = track_begin(p);
		if (!ret)
			ret = ckpt_check_abort();
		if (ret || proc_list_tids(todo[i], &tids, &nt))
			continue;
		for (int t = 0; t < nt && !ret; t++) {
			pid_t *kids;
			int nk;

			if (proc_list_children(todo[i], tids[t], &kids, &nk))
				continue;
			for (int k = 0; k < nk; k++) {
				if (n == cap) {
					pid_t *nt2 = realloc(todo, (cap *= 2) * sizeof(*todo));

					if (!nt2) {
						ret = -ENOMEM;
						break;
					}
					todo = nt2;
				}
				todo[n++] = kids[k];
			}
			free(kids);
		}
		free(tids);
	}
	free(todo);
	return ret;
}

/* Does @st take a pre-dump's image written ahead as a stream (a block
 * device), or through its mapping (a directory, a store file)? */
static bool ahead_streamed(const struct img_store *st)
{
	return st->ops->create_stream && !st->ops->write_ahead_mapped;
}

/*
 * Into a store that streams page images (a block device): the image in
 * IMG_PAGES_CHUNK steps through one buffer, each piece summed on the way
 * (the store takes them as its extents' checksums).  A page without a copy
 * is written as zeroes, and read at the freeze.
 */
static int write_ahead_stream(struct predump *pd, struct pd_proc *p)
{
	struct img_store *st = pd->st;
	struct pd_shadow *sh = &p->sh;
	uint64_t len = p->nlayout * PAGE_SIZE_K;
	uint8_t *buf;
	int ret = 0;

	buf = mmap(NULL, IMG_PAGES_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		   -1, 0);
	if (buf == MAP_FAILED)
		return -ENOMEM;
	for (size_t k = 0; k < img_psum_pieces(len) && !ret; k++) {
		uint64_t off = k * IMG_PAGES_CHUNK;
		uint64_t l = len - off < IMG_PAGES_CHUNK ? len - off : IMG_PAGES_CHUNK;

		for (size_t i = off / PAGE_SIZE_K; i < (off + l) / PAGE_SIZE_K; i++) {
			long slot = shadow_find(sh, p->layout[i]);
			uint8_t *d = buf + (i * PAGE_SIZE_K - off);

			if (slot >= 0 && sh->valid[slot])
				memcpy(d, sh->data + slot * PAGE_SIZE_K, PAGE_SIZE_K);
			else
				memset(d, 0, PAGE_SIZE_K);
		}
		p->sums[k] = img_piece_sum(IMG_PSUM_NOW, buf, l);
		ret = st->ops->write_at(st, &p->blob, off, buf, l, &p->sums[k]);
		if (ret)
			ret = log_errno(ret, "pid %d: cannot write its page image ahead into %s",
					p->pid, st->where);
		else
			ret = ckpt_check_abort();
	}
	munmap(buf, IMG_PAGES_CHUNK);
	return ret;
}

/*
 * Write @p's page image ahead, before the freeze: the pages a dump would
 * save now (mem_select_pages), in their order, those of the copy filled in;
 * if the frozen pass selects the same pages (predump_take_blob), it only
 * writes the pages written since and those without a copy.  Pushed to the
 * store's media now, so that the commit has little left to sync.  Into a
 * store that streams page images, every page the rounds copy again from
 * now on is written into the image too (blob_update): the image holds the
 * copy of every page the copy has, which the frozen pass relies on.
 */
static int write_ahead(struct predump *pd, struct pd_proc *p)
{
	struct img_store *st = pd->st;
	struct pd_shadow *sh = &p->sh;
	bool stream = ahead_streamed(st);
	size_t n = 0, npieces;
	char name[64];
	int ret;

	ret = mem_select_pages(p->pid, &p->layout, &n);
	if (ret)
		return ret == -ENOENT || ret == -ESRCH ? 0 :
		       log_errno(ret, "pid %d: cannot select its pages", p->pid);
	p->nlayout = n;
	if (!n)
		return 0;
	/* the checksums of its pieces, now (the frozen pass redoes only those
	 * of the pieces written since: stale) */
	npieces = img_psum_pieces(n * PAGE_SIZE_K);
	p->sums = malloc(npieces * sizeof(*p->sums));
	p->stale = calloc(npieces, 1);
	if (!p->sums || !p->stale) {
		free(p->sums);
		free(p->stale);
		p->sums = NULL;
		p->stale = NULL;
		if (stream)
			return -ENOMEM;
	}
	snprintf(name, sizeof(name), "pages-%d.img", p->pid);
	ret = stream ? st->ops->create_stream(st, name, n * PAGE_SIZE_K, &p->blob) :
		       st->ops->create(st, name, n * PAGE_SIZE_K, &p->blob);
	if (ret)
		return ret;
	p->have_blob = true;
	if (stream)
		return write_ahead_stream(pd, p);
	/* the pages without a copy are read at the freeze */
	for (size_t i = 0; i < n; i++) {
		long slot = shadow_find(sh, p->layout[i]);

		if (slot >= 0 && sh->valid[slot])
			memcpy(p->blob.data + i * PAGE_SIZE_K, sh->data + slot * PAGE_SIZE_K,
			       PAGE_SIZE_K);
		if (i % 2048 == 2047 && (ret = ckpt_check_abort()))
			return ret;
	}
	msync(p->blob.data, n * PAGE_SIZE_K, MS_SYNC);
	/* the store's checksums of it, now (finish redoes only those of the
	 * bytes changed since: blob_update, the frozen pass) */
	if (st->ops->sum_now) {
		ret = st->ops->sum_now(st, &p->blob, 0, n * PAGE_SIZE_K);
		if (ret)
			return ret;
	}
	for (size_t k = 0; p->sums && k < npieces; k++) {
		uint64_t off = k * IMG_PAGES_CHUNK;

		p->sums[k] = img_piece_sum(IMG_PSUM_NOW, p->blob.data + off, n * PAGE_SIZE_K - off < IMG_PAGES_CHUNK ?
				       n * PAGE_SIZE_K - off : IMG_PAGES_CHUNK);
	}
	return 0;
}

int predump_take_blob(struct predump *pd, pid_t pid, PageRun *const *runs, size_t nruns,
		      uint64_t pages, struct img_blob *out, uint64_t **sums, uint8_t **stale)
{
	struct pd_proc *p = pd ? pd_find(pd, pid) : NULL;
	uint64_t differ = 0;	/* the first page where they differ */
	bool same;
	size_t k = 0;
	int ret;

	if (!p || !p->have_blob)
		return 0;
	same = p->start_time == start_time_of(pid);
	for (size_t r = 0; same && r < nruns; r++)
		for (uint64_t i = 0; same && i < runs[r]->nr_pages; i++, k++) {
			differ = runs[r]->vaddr + i * PAGE_SIZE_K;
			same = k < p->nlayout && p->layout[k] == differ / PAGE_SIZE_K;
		}
	if (same && k < p->nlayout)
		differ = p->layout[k] * PAGE_SIZE_K;
	same = same && pages == p->nlayout;
	if (same) {
		*out = p->blob;
		p->have_blob = false;
		*sums = p->sums;
		*stale = p->stale;
		p->sums = NULL;
		p->stale = NULL;
		return 1;
	}
	/* laid out otherwise now: written again in full (from the copy) */
	log_info("pid %d: its pages are not where the pre-dump wrote them (%" PRIu64 " pages now, "
		 "%zu then, from 0x%" PRIx64 " on): the page image is written again", pid, pages,
		 p->nlayout, differ);
	ret = pd->st->ops->finish(pd->st, &p->blob);
	pd->st->ops->release(pd->st, &p->blob);
	p->have_blob = false;
	if (!ret)
		ret = pd->st->ops->remove(pd->st, p->blob.name);
	return ret;
}

int predump_end(struct predump *pd)
{
	int ret = 0;

	for (int i = 0; pd && i < pd->n; i++) {
		struct pd_proc *p = &pd->p[i];

		if (!p->have_blob)
			continue;
		/* not dumped (gone since): its image goes */
		if (!ret)
			ret = pd->st->ops->finish(pd->st, &p->blob);
		pd->st->ops->release(pd->st, &p->blob);
		p->have_blob = false;
		if (!ret)
			ret = pd->st->ops->remove(pd->st, p->blob.name);
	}
	return ret;
}

static uint64_t pd_pages(const struct predump *pd)
{
	uint64_t total = 0;

	for (int i = 0; i < pd->n; i++)
		total += pd->p[i].sh.n;
	return total;
}

/* Round @r: the tree walked again (new processes tracked), the pages
 * written since the last round copied in every process tracked. */
static int one_round(struct predump *pd, pid_t root, int r, const char *what, uint64_t *copied)
{
	struct pd_round rd = { 0 };
	uint64_t t0 = mono_ns();
	int tracked = 0, ret;

	ret = walk_tree(pd, root);
	for (int i = 0; i < pd->n && !ret; i++) {
		if (!pd->p[i].tracked)
			continue;
		tracked++;
		ret = pd->method == PD_SOFTDIRTY ? round_proc_sd(&pd->p[i], &rd) :
		      round_proc(&pd->p[i], &rd);
		if (!ret)
			ret = shadow_order(&pd->p[i].sh);
	}
	*copied = rd.copied;
	if (ret)
		return ret;
	pd->rounds++;
	pd->copied += rd.copied;
	log_info("pre-dump round %d%s: %" PRIu64 " dirty pages copied (%.1f MiB) in %.3f s, "
		 "%" PRIu64 " pages in the copy; %d of %d processes tracked", r, what, rd.copied,
		 rd.copied * PAGE_SIZE_K / 1048576.0, (mono_ns() - t0) / 1e9, pd_pages(pd),
		 tracked, pd->n);
	return 0;
}

int predump_run(pid_t root, int rounds, struct img_store *st, struct predump **out)
{
	struct predump *pd;
	uint64_t prev = UINT64_MAX;
	enum pd_method method;
	int ret = 0;

	*out = NULL;
	static bool said;

	/* KUP_TEST_PREDUMP_SOFT_DIRTY=1 (tests): the soft-dirty way on a kernel
	 * that has both, as on one without PAGEMAP_SCAN */
	if (!getenv("KUP_TEST_PREDUMP_SOFT_DIRTY") && uffd_wp_async_works()) {
		method = PD_UFFD;
	} else if (soft_dirty_works()) {
		method = PD_SOFTDIRTY;
		if (!said)
			log_info("pre-dump: the writes are tracked by soft-dirty bits (no "
				 "PAGEMAP_SCAN on this kernel)");
		said = true;
	} else {
		if (said)
			return 0;
		said = true;
		log_warn("pre-dump: this kernel cannot track the pages a process writes "
			 "(asynchronous userfaultfd write protection and PAGEMAP_SCAN, Linux 6.7; "
			 "nor soft-dirty bits, CONFIG_MEM_SOFT_DIRTY): a plain dump");
		return 0;
	}
	pd = calloc(1, sizeof(*pd));
	if (!pd)
		return -ENOMEM;
	pd->st = st;
	pd->method = method;
	for (int r = 1; r <= rounds && !ret; r++) {
		uint64_t copied;

		ret = one_round(pd, root, r, "", &copied);
		if (ret || (r > 1 && (copied <= PD_STOP_PAGES || copied > prev ||
				      copied * 1000 <= pd_pages(pd) * PD_STOP_PERMILLE)))
			break;
		prev = copied;
	}
	/* a store that streams page images (a block device) needs to write
	 * them again in place; without a store (several trees: ckpt_predump),
	 * no image */
	if (!ret && st && (!ahead_streamed(st) || (st->ops->rewrite && st->ops->sum_bytes))) {
		uint64_t t0 = mono_ns(), copied = 0;

		for (int i = 0; !ret && i < pd->n; i++)
			if (pd->p[i].tracked)
				ret = write_ahead(pd, &pd->p[i]);
		if (!ret) {
			/* KUP_TEST_PREDUMP_HOLD=FILE (tests): wait here, the tree
			 * running, until FILE exists: a kill meanwhile leaves the
			 * images written ahead and nothing committed */
			const char *hold = getenv("KUP_TEST_PREDUMP_HOLD");

			log_info("pre-dump: page images written ahead in %.3f s",
				 (mono_ns() - t0) / 1e9);
			while (hold && access(hold, F_OK) && !ckpt_abort_signal())
				usleep(10000);
		}
		/* what was written meanwhile, into the copy and the images */
		for (int r = 1; !ret && r <= 2; r++) {
			ret = one_round(pd, root, r, " after the images", &copied);
			if (copied <= PD_STOP_PAGES)
				break;
		}
	}
	if (ret) {
		predump_free(pd);
		return ret;
	}
	*out = pd;
	return 0;
}

/*
 * The pages of @pid's runs (mm image order, @pages in all) that the copy
 * holds as they are now: (*@out)[i] points to page i's copy, NULL for a
 * page to read.  Called with the tree frozen; @pmfd is its pagemap.  With
 * userfaultfd tracking, the pages still as copied are those of @clean (the
 * frozen walk that selected the runs reported them: present, protected,
 * not written since); runs, @clean and the copy's slots in page order are
 * merged, all three ascending.
 */
int predump_sources(struct predump *pd, pid_t pid, int pmfd, PageRun *const *runs, size_t nruns,
		    uint64_t pages, const struct va_runs *clean, const uint8_t ***out,
		    uint64_t *from_copy)
{
	struct pd_proc *p = pd ? pd_find(pd, pid) : NULL;
	const struct pd_shadow *sh;
	const uint8_t **src;
	size_t c = 0, k = 0;

	*out = NULL;
	*from_copy = 0;
	if (!p || !p->tracked || !p->sh.n || !pages || p->start_time != start_time_of(pid))
		return 0;
	if (pd->method == PD_SOFTDIRTY && !p->sd_seen)
		return 0;
	if (pd->method == PD_UFFD && (!clean || clean->incomplete)) {
		log_info("pid %d: its pages were not selected by PAGEMAP_SCAN: all read now", pid);
		return 0;
	}
	if (p->sh.on != p->sh.n && shadow_order(&p->sh))
		return -ENOMEM;
	sh = &p->sh;
	src = calloc(pages, sizeof(*src));
	if (!src)
		return -ENOMEM;
	for (size_t r = 0; pd->method == PD_SOFTDIRTY && r < nruns; r++) {
		const PageRun *run = runs[r];
		uint64_t ent[512];

		/* present and not written since the last clear */
		for (uint64_t i = 0; i < run->nr_pages;) {
			uint64_t va = run->vaddr + i * PAGE_SIZE_K, n = run->nr_pages - i;
			ssize_t got;

			if (n > 512)
				n = 512;
			got = pread(pmfd, ent, n * sizeof(ent[0]), va / PAGE_SIZE_K * sizeof(ent[0]));
			if (got < (ssize_t)sizeof(ent[0])) {
				free(src);
				return log_errno(got < 0 ? errno : EIO, "pid %d: cannot read its pagemap "
						 "at 0x%" PRIx64, pid, va);
			}
			n = got / sizeof(ent[0]);
			for (uint64_t j = 0; j < n; j++, i++) {
				long sl;

				if (!(ent[j] & PM_PRESENT) || (ent[j] & PM_SOFT_DIRTY))
					continue;
				sl = shadow_find(sh, va / PAGE_SIZE_K + j);
				if (sl < 0 || !sh->valid[sl] || run->off + i >= pages)
					continue;
				src[run->off + i] = sh->data + sl * PAGE_SIZE_K;
				(*from_copy)++;
			}
		}
	}
	/* the copy's slots in page order, merged with the clean pages of the
	 * runs: one step per slot, not per page */
	for (size_t r = 0; pd->method == PD_UFFD && r < nruns && k < sh->on; r++) {
		const PageRun *run = runs[r];
		uint64_t rs = run->vaddr / PAGE_SIZE_K, re = rs + run->nr_pages;

		while (c < clean->n && clean->v[c].va / PAGE_SIZE_K + clean->v[c].n <= rs)
			c++;
		for (size_t cc = c; cc < clean->n && clean->v[cc].va / PAGE_SIZE_K < re &&
		     k < sh->on; cc++) {
			uint64_t lo = clean->v[cc].va / PAGE_SIZE_K, hi = lo + clean->v[cc].n;

			if (lo < rs)
				lo = rs;
			if (hi > re)
				hi = re;
			while (k < sh->on && sh->pg[sh->order[k]] < lo)
				k++;
			for (; k < sh->on; k++) {
				uint32_t s = sh->order[k];
				uint64_t pg = sh->pg[s], off = run->off + (pg - rs);

				if (pg >= hi)
					break;
				if (!sh->valid[s] || off >= pages)
					continue;
				src[off] = sh->data + (size_t)s * PAGE_SIZE_K;
				(*from_copy)++;
			}
		}
	}
	*out = src;
	return 0;
}

void predump_totals(const struct predump *pd, unsigned int *rounds, unsigned long long *copied)
{
	*rounds = pd ? pd->rounds : 0;
	*copied = pd ? pd->copied : 0;
}

void predump_free(struct predump *pd)
{
	if (!pd)
		return;
	for (int i = 0; i < pd->n; i++)
		pd_drop(pd, &pd->p[i]);
	free(pd->p);
	free(pd);
}

int ckpt_predump(pid_t root, int rounds, struct predump **out)
{
	return predump_run(root, rounds, NULL, out);
}

int ckpt_predump_round(struct predump *pd, pid_t root)
{
	uint64_t copied;

	return pd ? one_round(pd, root, 1, " to catch up", &copied) : 0;
}

void ckpt_predump_free(struct predump *pd)
{
	predump_free(pd);
}
