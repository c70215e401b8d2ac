// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Memory, dump half: the VMA walk, page selection from pagemap, page dump.
 * The address-space rebuild (restore half, driven through the puppet) is
 * mem-restore.c.
 *
 * Pages of a process go to one page blob "pages-PID.img", described by runs
 * in mm-PID.img.  Only pages that exist are saved: untouched anonymous holes
 * stay unpopulated, private file mappings keep just their dirty (COWed)
 * pages, shared memory (shared anonymous, memfd, /dev/shm) is saved once per
 * object in the shmem image.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ckpt-images.h"
#include "internal.h"
#include "ipc-sysv.h"

#define PME_PRESENT	(1ULL << 63)
#define PME_SWAP	(1ULL << 62)
#define PME_FILE	(1ULL << 61)

struct vma_raw {
	unsigned long start, end, pgoff;
	char perms[5];
	unsigned long ino;
	bool stats;			/* from smaps: the next four are known */
	unsigned long rss_kb, swap_kb;	/* 0 and 0: no page to look for */
	unsigned long thp_kb;		/* AnonHugePages */
	char path[PATH_MAX];
	char vmflags[128];
};

static const struct { const char *flag; int advice; } madv_flags[] = {
	{ "dc", MADV_DONTFORK }, { "wf", MADV_WIPEONFORK }, { "hg", MADV_HUGEPAGE },
	{ "nh", MADV_NOHUGEPAGE }, { "dd", MADV_DONTDUMP }, { "mg", MADV_MERGEABLE },
};

static bool has_vmflag(const char *flags, const char *f)
{
	for (const char *p = flags; (p = strstr(p, f)); p += 2)
		if ((p == flags || p[-1] == ' ') && (p[2] == ' ' || p[2] == 0 || p[2] == '\n'))
			return true;
	return false;
}

/* Parse /proc/PID/smaps into raw VMAs; or /proc/PID/maps (@maps): without
 * the flags and counts, but without a walk of every page table either. */
static int read_vmas(pid_t pid, struct vma_raw **out, int *nout, bool quiet, bool maps)
{
	const char *file = maps ? "maps" : "smaps";
	char *buf = proc_read_file(pid, file, NULL), *line, *save = NULL;
	struct vma_raw *v = NULL, *cur = NULL;
	int n = 0, cap = 0;

	if (!buf)
		return quiet ? -errno : log_errno(errno, "pid %d: cannot read /proc/%d/%s", pid, pid,
						  file);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long s, e, off, ino;
		char perms[8], dev[32];
		int pos = 0;

		if (sscanf(line, "%lx-%lx %7s %lx %31s %lu %n", &s, &e, perms, &off, dev, &ino, &pos) >= 6
		    && strchr(line, '-') && line[0] != 'V') {
			if (n == cap) {
				struct vma_raw *nv;
				cap = cap ? cap * 2 : 64;
				nv = realloc(v, cap * sizeof(*v));
				if (!nv) {
					free(v);
					free(buf);
					return -ENOMEM;
				}
				v = nv;
			}
			cur = &v[n++];
			memset(cur, 0, sizeof(*cur));
			cur->start = s;
			cur->end = e;
			cur->pgoff = off;
			memcpy(cur->perms, perms, 4);
			cur->ino = ino;
			cur->stats = !maps;
			if (pos > 0)
				snprintf(cur->path, sizeof(cur->path), "%s", line + pos);
		} else if (cur && !strncmp(line, "VmFlags:", 8)) {
			snprintf(cur->vmflags, sizeof(cur->vmflags), "%s", line + 8);
		} else if (cur && !strncmp(line, "Rss:", 4)) {
			cur->rss_kb = strtoul(line + 4, NULL, 10);
		} else if (cur && !strncmp(line, "Swap:", 5)) {
			cur->swap_kb = strtoul(line + 5, NULL, 10);
		} else if (cur && !strncmp(line, "AnonHugePages:", 14)) {
			cur->thp_kb = strtoul(line + 14, NULL, 10);
		}
	}
	free(buf);
	*out = v;
	*nout = n;
	return 0;
}

static bool path_is(const char *path, const char *name)
{
	return !strcmp(path, name);
}

static VmaKind classify(const struct vma_raw *r)
{
	bool shared = r->perms[3] == 's';

	if (path_is(r->path, "[vdso]"))
		return VMA_KIND__VMA_VDSO;
	if (!strncmp(r->path, "[vvar", 5))
		return VMA_KIND__VMA_VVAR;
	if (path_is(r->path, "[vsyscall]"))
		return VMA_KIND__VMA_VSYSCALL;
	if (shared) {
		if (!r->path[0] || !strncmp(r->path, "/dev/zero", 9) ||
		    !strncmp(r->path, "/memfd:", 7) || !strncmp(r->path, "/dev/shm/", 9))
			return VMA_KIND__VMA_SHMEM;
		if (!strncmp(r->path, "/SYSV", 5) && r->ino <= INT_MAX)
			return VMA_KIND__VMA_SYSV_SHM;
		return VMA_KIND__VMA_FILE_SHARED;
	}
	if (!r->path[0] || r->path[0] == '[')
		return VMA_KIND__VMA_ANON_PRIVATE;
	return VMA_KIND__VMA_FILE_PRIVATE;
}

struct run_list {
	PageRun *runs;
	size_t n, cap;
	uint64_t pages;
	bool split;	/* the next page starts a new run (runs never cross mappings) */
};

/* Add @npages pages from @vaddr: to the last run when they follow it. */
static int run_add(struct run_list *rl, uint64_t vaddr, uint64_t npages)
{
	if (rl->n && !rl->split && rl->runs[rl->n - 1].vaddr + rl->runs[rl->n - 1].nr_pages * PAGE_SIZE_K == vaddr) {
		rl->runs[rl->n - 1].nr_pages += npages;
	} else {
		if (rl->n == rl->cap) {
			PageRun *nr;
			rl->cap = rl->cap ? rl->cap * 2 : 256;
			nr = realloc(rl->runs, rl->cap * sizeof(*nr));
			if (!nr)
				return -ENOMEM;
			rl->runs = nr;
		}
		page_run__init(&rl->runs[rl->n]);
		rl->runs[rl->n].vaddr = vaddr;
		rl->runs[rl->n].nr_pages = npages;
		rl->runs[rl->n].off = rl->pages;
		rl->n++;
	}
	rl->split = false;
	rl->pages += npages;
	return 0;
}

#define PME_PFN_MASK	((1ULL << 55) - 1)

/* The PFN of the shared zero page: read-faulted anonymous pages map it and
 * need not be saved (they read as zeros after restore too). */
static uint64_t zero_pfn(void)
{
	static uint64_t pfn = ~0ULL;
	volatile char *p;
	uint64_t pme = 0;
	int fd;

	if (pfn != ~0ULL)
		return pfn;
	p = mmap(NULL, PAGE_SIZE_K, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return pfn = 0;
	(void)p[0];
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && pread(fd, &pme, 8, ((unsigned long)p / PAGE_SIZE_K) * 8) == 8 &&
	    (pme & PME_PRESENT))
		pfn = pme & PME_PFN_MASK;
	else
		pfn = 0;
	if (fd >= 0)
		close(fd);
	munmap((void *)p, PAGE_SIZE_K);
	return pfn;
}

/*
 * PAGEMAP_SCAN (Linux 6.7): the kernel walks the page tables and returns
 * ranges of pages with the same categories, skipping what is not populated;
 * the cost follows the pages that exist, not the size of the mapping (an
 * 8 TiB PROT_NONE reservation costs nothing).  Older kernels: pagemap read
 * in chunks, after the smaps Rss/Swap test has skipped empty mappings.
 */
#ifndef PAGEMAP_SCAN
struct page_region {
	uint64_t start, end, categories;
};

struct pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};

#define PAGEMAP_SCAN	_IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_FILE	(1 << 2)
#define PAGE_IS_PRESENT	(1 << 3)
#define PAGE_IS_SWAPPED	(1 << 4)
#define PAGE_IS_PFNZERO	(1 << 5)
#endif
#define PAGE_IS_WPALLOWED_K	(1 << 0)
#define PAGE_IS_WRITTEN_K	(1 << 1)

static bool page_wanted(VmaKind kind, bool present, bool swapped, bool file, bool zero)
{
	switch (kind) {
	case VMA_KIND__VMA_VDSO:
		return true;
	case VMA_KIND__VMA_ANON_PRIVATE:
		/* present or swapped; not the shared zero page of a read fault */
		return swapped || (present && !zero);
	case VMA_KIND__VMA_FILE_PRIVATE:
		/* only the copies made on write */
		return swapped || (present && !file);
	default:
		return false;
	}
}

/* Add [@va, @va + @n pages) to @l, to its last range when it follows. */
static int va_runs_add(struct va_runs *l, uint64_t va, uint64_t n)
{
	if (l->n && l->v[l->n - 1].va + l->v[l->n - 1].n * PAGE_SIZE_K == va) {
		l->v[l->n - 1].n += n;
		return 0;
	}
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 256;
		struct va_run *nv = realloc(l->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = ncap;
	}
	l->v[l->n].va = va;
	l->v[l->n++].n = n;
	return 0;
}

/*
 * 1: done with PAGEMAP_SCAN; 0: not available here; < 0: error.  @clean
 * (or NULL): the pages selected that are present, protected by an
 * asynchronous write-protect userfaultfd (a pre-dump's) and not written
 * since, added to it: the same walk serves the pre-dump (predump_sources).
 */
static int select_pages_scan(int pmfd, pid_t pid, const VmaEntry *v, struct run_list *rl,
			     struct va_runs *clean)
{
	static bool unavailable;
	struct page_region reg[512];
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.start = v->start,
		.end = v->end,
		.vec = (uintptr_t)reg,
		.vec_len = sizeof(reg) / sizeof(reg[0]),
		.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
		.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_FILE | PAGE_IS_PFNZERO,
	};

	/* KUP_TEST_NO_PAGEMAP_SCAN=1 (tests): the way of kernels before 6.7 */
	if (unavailable || getenv("KUP_TEST_NO_PAGEMAP_SCAN"))
		return 0;
	/* whether a page is a file's costs the kernel a look at each page's
	 * struct page, most of a walk's time: asked only where it matters */
	if (v->kind == VMA_KIND__VMA_ANON_PRIVATE)
		arg.return_mask &= ~PAGE_IS_FILE;
	if (clean)
		arg.return_mask |= PAGE_IS_WRITTEN_K | PAGE_IS_WPALLOWED_K;
	while (arg.start < v->end) {
		long n = ioctl(pmfd, PAGEMAP_SCAN, &arg);

		if (n < 0) {
			/* no such ioctl (before 6.7): pagemap it is, from here on */
			if ((errno == ENOTTY || errno == EINVAL) && arg.start == v->start) {
				unavailable = true;
				return 0;
			}
			return log_errno(errno, "pid %d: PAGEMAP_SCAN of 0x%" PRIx64 "-0x%" PRIx64,
					 pid, (uint64_t)arg.start, (uint64_t)v->end);
		}
		for (long i = 0; i < n; i++) {
			uint64_t c = reg[i].categories;

			if (reg[i].start < arg.start || reg[i].end > v->end ||
			    reg[i].end <= reg[i].start) {
				log_err("pid %d: PAGEMAP_SCAN returned 0x%" PRIx64 "-0x%" PRIx64
					" outside 0x%" PRIx64 "-0x%" PRIx64, pid, reg[i].start,
					reg[i].end, (uint64_t)arg.start, v->end);
				return -EIO;
			}
			if (!page_wanted(v->kind, c & PAGE_IS_PRESENT, c & PAGE_IS_SWAPPED,
					 c & PAGE_IS_FILE, c & PAGE_IS_PFNZERO))
				continue;
			if (run_add(rl, reg[i].start, (reg[i].end - reg[i].start) / PAGE_SIZE_K))
				return -ENOMEM;
			if (clean && (c & (PAGE_IS_PRESENT | PAGE_IS_WPALLOWED_K | PAGE_IS_WRITTEN_K)) ==
				     (PAGE_IS_PRESENT | PAGE_IS_WPALLOWED_K) &&
			    va_runs_add(clean, reg[i].start, (reg[i].end - reg[i].start) / PAGE_SIZE_K))
				return -ENOMEM;
		}
		if (arg.walk_end <= arg.start)
			break;
		arg.start = arg.walk_end;
	}
	return 1;
}

#define THP_EXTENT	(2UL << 20)
#define KPF_THP		22

/*
 * Which 2 MiB extents of the private anonymous mapping @v are one
 * transparent huge page (the tree is frozen: its frames stay put): the
 * first page's frame, 512-aligned, a THP in /proc/kpageflags.  Without
 * kpageflags (no CAP_SYS_ADMIN, no such file) the map is left out.
 */
static int thp_map(int pmfd, pid_t pid, VmaEntry *v)
{
	static int kpf = -2;
	uint64_t first = (v->start + THP_EXTENT - 1) & ~(THP_EXTENT - 1), n, found = 0;
	uint8_t *map;

	if (kpf == -2)
		kpf = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	if (kpf < 0 || first + THP_EXTENT > v->end)
		return 0;
	n = (v->end - first) / THP_EXTENT;
	map = calloc((n + 7) / 8, 1);
	if (!map)
		return -ENOMEM;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t pme, flags, pfn;

		if (pread(pmfd, &pme, 8, (first + i * THP_EXTENT) / PAGE_SIZE_K * 8) != 8) {
			free(map);
			return log_errno(errno ? errno : EIO, "pid %d: cannot read pagemap at 0x%"
					 PRIx64, pid, first + i * THP_EXTENT);
		}
		pfn = pme & PME_PFN_MASK;
		if (!(pme & PME_PRESENT) || !pfn || pfn % (THP_EXTENT / PAGE_SIZE_K) ||
		    pread(kpf, &flags, 8, pfn * 8) != 8 || !(flags >> KPF_THP & 1))
			continue;
		map[i / 8] |= 1 << (i % 8);
		found++;
	}
	if (!found) {	/* frames hidden (pagemap without them): nothing known */
		free(map);
		return 0;
	}
	v->has_thp_map = true;
	v->thp_map.data = map;
	v->thp_map.len = (n + 7) / 8;
	return 0;
}

/* Select the pages of one VMA that must be saved (@clean: select_pages_scan;
 * marked incomplete when the pages are read otherwise; the vDSO is never
 * protected by a pre-dump).  1: not done, @r's counts (smaps) are needed
 * first: without PAGEMAP_SCAN every page of a mapping is read from pagemap,
 * and only smaps says which mappings have none (an 8 TiB reservation). */
static int select_pages(int pmfd, pid_t pid, const VmaEntry *v, const struct vma_raw *r,
			struct run_list *rl, struct va_runs *clean)
{
	uint64_t npages = (v->end - v->start) / PAGE_SIZE_K;
	uint64_t buf[4096], zpfn = zero_pfn();
	int ret;

	if (v->kind != VMA_KIND__VMA_VDSO && v->kind != VMA_KIND__VMA_ANON_PRIVATE &&
	    v->kind != VMA_KIND__VMA_FILE_PRIVATE)
		return 0;
	if (v->kind != VMA_KIND__VMA_VDSO) {
		/* nothing resident nor swapped: no page to save (smaps counts
		 * neither the zero page nor holes) */
		if (r->stats && !r->rss_kb && !r->swap_kb)
			return 0;
		ret = select_pages_scan(pmfd, pid, v, rl, clean);
		if (ret)
			return ret < 0 ? ret : 0;
		if (!r->stats)
			return 1;
		if (clean)
			clean->incomplete = true;
		log_debug("pid %d: the pages of 0x%" PRIx64 "-0x%" PRIx64 " from its pagemap, "
			  "page by page", pid, v->start, v->end);
	}
	for (uint64_t i = 0; i < npages;) {
		size_t want = npages - i > 4096 ? 4096 : npages - i;
		ssize_t n = pread(pmfd, buf, want * 8, (v->start / PAGE_SIZE_K + i) * 8);

		if (n <= 0)
			return log_errno(n < 0 ? errno : EIO, "pid %d: cannot read pagemap at 0x%" PRIx64,
					 pid, v->start + i * PAGE_SIZE_K);
		for (size_t j = 0; j < (size_t)n / 8; j++) {
			uint64_t pme = buf[j];
			bool present = pme & PME_PRESENT;

			if (page_wanted(v->kind, present, pme & PME_SWAP, pme & PME_FILE,
					present && zpfn && (pme & PME_PFN_MASK) == zpfn) &&
			    run_add(rl, v->start + (i + j) * PAGE_SIZE_K, 1))
				return -ENOMEM;
		}
		i += n / 8;
	}
	return 0;
}

/*
 * Page frames (pagemap entries) of the dumped private anonymous pages, in
 * the order of the runs, read before the pages are copied: a copy with
 * process_vm_readv pins each page, and the kernel gives a process that
 * pins a page it shares copy-on-write its own copy of it, so the frames
 * its children still share with it are only seen before.
 */
static int read_frames(int pmfd, pid_t pid, const MmImage *mm, PageRun **runs, size_t nruns,
		       uint64_t *out)
{
	size_t j = 0;	/* runs and mappings are both in address order */

	for (size_t r = 0; r < nruns; r++) {
		const PageRun *run = runs[r];

		while (j < mm->n_vmas && mm->vmas[j]->end <= run->vaddr)
			j++;
		if (j == mm->n_vmas || run->vaddr < mm->vmas[j]->start ||
		    mm->vmas[j]->kind != VMA_KIND__VMA_ANON_PRIVATE)
			continue;
		for (uint64_t i = 0; i < run->nr_pages;) {
			uint64_t k = run->nr_pages - i < 4096 ? run->nr_pages - i : 4096;

			if (pread(pmfd, out + run->off + i, k * 8, (run->vaddr / PAGE_SIZE_K + i) * 8) !=
			    (ssize_t)(k * 8))
				return log_errno(errno ? errno : EIO, "pid %d: cannot read pagemap at 0x%"
						 PRIx64, pid, run->vaddr + i * PAGE_SIZE_K);
			i += k;
		}
	}
	return 0;
}

static int mem_frames_read(int pmfd, pid_t pid, const MmImage *mm, struct mem_frames *f)
{
	int ret;

	f->own = calloc(mm->pages_nr + 1, sizeof(*f->own));
	f->cow = calloc(mm->cow_pages_nr + 1, sizeof(*f->cow));
	if (!f->own || !f->cow)
		return -ENOMEM;
	ret = read_frames(pmfd, pid, mm, mm->runs, mm->n_runs, f->own);
	return ret ? ret : read_frames(pmfd, pid, mm, mm->cow_runs, mm->n_cow_runs, f->cow);
}

void mem_frames_free(struct mem_frames *f)
{
	free(f->own);
	free(f->cow);
	f->own = f->cow = NULL;
}

/* The parent's frame at @vaddr, or 0 if its image has no page there. */
static uint64_t parent_frame(const MmImage *pmm, const struct mem_frames *pf, uint64_t vaddr)
{
	const PageRun *r = ckpt_mm_run_at(pmm, vaddr, false);

	if (r)
		return pf->own[r->off + (vaddr - r->vaddr) / PAGE_SIZE_K];
	r = ckpt_mm_run_at(pmm, vaddr, true);
	return r ? pf->cow[r->off + (vaddr - r->vaddr) / PAGE_SIZE_K] : 0;
}

/*
 * Copy-on-write with the parent: of the runs [@first, rl->n) just selected
 * in one private anonymous mapping, the pages the parent mapped at the same
 * address with the same page frame (still shared since the fork, or merged
 * by KSM: the same contents either way) go to @cl instead; the parent's
 * image holds them.  The parent's frames are the ones read before its pages
 * were copied (mem_frames).  Frame numbers read as 0 without
 * CAP_SYS_ADMIN: nothing is shared then.
 */
static int split_cow(int pmfd, pid_t pid, const MmImage *pmm, const struct mem_frames *pf,
		     struct run_list *rl, size_t first, struct run_list *cl)
{
	size_t n = rl->n - first;
	uint64_t a[512];
	PageRun *old;
	int ret = 0;

	if (!n)
		return 0;
	old = malloc(n * sizeof(*old));
	if (!old)
		return -ENOMEM;
	memcpy(old, rl->runs + first, n * sizeof(*old));
	rl->pages = old[0].off;
	rl->n = first;
	rl->split = true;
	cl->split = true;
	for (size_t r = 0; r < n && !ret; r++) {
		for (uint64_t i = 0; i < old[r].nr_pages && !ret;) {
			size_t k = old[r].nr_pages - i < 512 ? old[r].nr_pages - i : 512;
			uint64_t va = old[r].vaddr + i * PAGE_SIZE_K;

			if (pread(pmfd, a, k * 8, va / PAGE_SIZE_K * 8) != (ssize_t)(k * 8)) {
				ret = log_errno(errno ? errno : EIO, "pid %d: cannot read pagemap at 0x%"
						PRIx64, pid, va);
				break;
			}
			for (size_t j = 0; j < k && !ret; j++, va += PAGE_SIZE_K) {
				uint64_t b = parent_frame(pmm, pf, va);
				bool shared = (a[j] & PME_PRESENT) && (b & PME_PRESENT) &&
					      (a[j] & PME_PFN_MASK) &&
					      (a[j] & PME_PFN_MASK) == (b & PME_PFN_MASK);

				if (run_add(shared ? cl : rl, va, 1))
					ret = -ENOMEM;
			}
			i += k;
		}
	}
	free(old);
	return ret;
}

/*
 * Does the parent have a private anonymous mapping over part of @v's range
 * (private anonymous too)?  Not only one of the same bounds: after the fork
 * either may have grown or shrunk (memory mapped next to it merges into it,
 * its first pages unmapped), and the pages still shared are found by frame
 * wherever the two overlap.  Where the parent maps nothing, or nothing
 * private anonymous, parent_frame() reads 0: nothing is shared there.
 */
static bool parent_anon_over(const MmImage *pmm, const VmaEntry *v)
{
	size_t lo = 0, hi = pmm ? pmm->n_vmas : 0;

	if (v->kind != VMA_KIND__VMA_ANON_PRIVATE)
		return false;
	while (lo < hi) {	/* the first that ends past v's start (address order) */
		size_t mid = (lo + hi) / 2;

		if (pmm->vmas[mid]->end <= v->start)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < pmm->n_vmas && pmm->vmas[lo]->start < v->end; lo++)
		if (pmm->vmas[lo]->kind == VMA_KIND__VMA_ANON_PRIVATE)
			return true;
	return false;
}

#define COPY_BUF (8UL << 20)

#define PME_EXCLUSIVE	(1ULL << 56)

/*
 * Does a batch of pages hold an anonymous page that another process maps
 * too (copy-on-write since a fork) or that is swapped out (maybe shared)?
 * process_vm_readv pins the pages it reads, and the kernel gives a process
 * that pins an anonymous page it shares its own copy of it: the dump of a
 * pool of pre-forked workers would double their shared memory, one copy
 * per process, while it runs (and for good if the tree goes on running).
 * Such a batch is read through /proc/PID/mem, which does not pin.
 */
static bool batch_shared(int pmfd, const struct iovec *remote, size_t k)
{
	uint64_t pme[512];

	for (size_t j = 0; j < k; j++) {
		uint64_t first = (uintptr_t)remote[j].iov_base / PAGE_SIZE_K;
		uint64_t n = remote[j].iov_len / PAGE_SIZE_K;

		for (uint64_t i = 0; i < n;) {
			size_t m = n - i < 512 ? n - i : 512;
			ssize_t got = pread(pmfd, pme, m * 8, (first + i) * 8);

			if (got != (ssize_t)(m * 8))
				return true;	/* the safe way */
			for (size_t e = 0; e < m; e++)
				if ((pme[e] & PME_SWAP) ||
				    ((pme[e] & PME_PRESENT) && !(pme[e] & (PME_FILE | PME_EXCLUSIVE))))
					return true;
			i += m;
		}
	}
	return false;
}

/*
 * Read the pages of @k remote pieces into @buf, one after the other:
 * process_vm_readv, or /proc/pid/mem for shared pages (batch_shared) and
 * unreadable (PROT_NONE) pieces: it does not pin and uses FOLL_FORCE.
 */
static int read_pieces(pid_t pid, uint8_t *buf, const struct iovec *remote, size_t k,
		       size_t bytes, int memfd, int pmfd, bool quiet)
{
	struct iovec local = { buf, bytes };
	ssize_t n;

	n = batch_shared(pmfd, remote, k) ? -1 : process_vm_readv(pid, &local, 1, remote, k, 0);
	if (n == (ssize_t)bytes)
		return 0;
	for (size_t j = 0, off = 0; j < k; j++) {
		if (pread(memfd, buf + off, remote[j].iov_len,
			  (unsigned long)remote[j].iov_base) != (ssize_t)remote[j].iov_len)
			return quiet ? -EIO : log_errno(errno, "pid %d: cannot read memory at %p",
							 pid, remote[j].iov_base);
		off += remote[j].iov_len;
	}
	return 0;
}

int mem_read_pages(pid_t pid, uint8_t *buf, uint64_t vaddr, size_t len, int memfd, int pmfd)
{
	return read_pieces(pid, buf, &(struct iovec){ (void *)vaddr, len }, 1, len, memfd, pmfd,
			   true);
}

/*
 * A batch with pre-dumped pages (predump.c): @src[i] is the copy of the
 * batch's page i, or NULL for a page read now.  The pages read now go in
 * pieces of consecutive pages.  *@out is @buf, or the copy itself when it
 * holds the whole batch in order and @may_point.
 */
static int fill_batch(pid_t pid, uint8_t *buf, const struct iovec *remote, size_t k,
		      size_t bytes, const uint8_t *const *src, bool may_point, int memfd,
		      int pmfd, const uint8_t **out)
{
	size_t np = bytes / PAGE_SIZE_K, i = 0;
	bool one = src[0] != NULL;

	for (size_t j = 1; one && j < np; j++)
		one = src[j] == src[0] + j * PAGE_SIZE_K;
	if (one && may_point) {
		*out = src[0];
		return 0;
	}
	*out = buf;
	for (size_t j = 0; j < k; j++) {
		uint64_t va = (uintptr_t)remote[j].iov_base;
		size_t n = remote[j].iov_len / PAGE_SIZE_K;

		for (size_t p = 0; p < n;) {
			size_t q = p;
			int ret;

			if (src[i + p]) {
				memcpy(buf + (i + p) * PAGE_SIZE_K, src[i + p], PAGE_SIZE_K);
				p++;
				continue;
			}
			while (q < n && !src[i + q])
				q++;
			ret = read_pieces(pid, buf + (i + p) * PAGE_SIZE_K,
					  &(struct iovec){ (void *)(va + p * PAGE_SIZE_K),
							   (q - p) * PAGE_SIZE_K },
					  1, (q - p) * PAGE_SIZE_K, memfd, pmfd, false);
			if (ret)
				return ret;
			p = q;
		}
		i += n;
	}
	return 0;
}

/* Read into @data, the page image written ahead, the pages of @mm's runs
 * that @src does not hold (written since), consecutive ones at once. */
static int patch_runs(pid_t pid, const MmImage *mm, struct img_blob *blob,
		      const uint8_t *const *src, int memfd, int pmfd, uint8_t *stale)
{
	struct img_store *st = blob->store;
	uint8_t *data = blob->data;

	for (size_t r = 0; r < mm->n_runs; r++) {
		const PageRun *run = mm->runs[r];

		for (uint64_t i = 0; i < run->nr_pages;) {
			uint64_t j = i;
			int ret;

			if (src && src[run->off + i]) {
				i++;
				continue;
			}
			while (j < run->nr_pages && !(src && src[run->off + j]))
				j++;
			ret = read_pieces(pid, data + (run->off + i) * PAGE_SIZE_K,
					  &(struct iovec){ (void *)(run->vaddr + i * PAGE_SIZE_K),
							   (j - i) * PAGE_SIZE_K },
					  1, (j - i) * PAGE_SIZE_K, memfd, pmfd, false);
			if (ret)
				return ret;
			if (stale)
				memset(stale + (run->off + i) * PAGE_SIZE_K / IMG_PAGES_CHUNK, 1,
				       ((run->off + j) * PAGE_SIZE_K - 1) / IMG_PAGES_CHUNK -
				       (run->off + i) * PAGE_SIZE_K / IMG_PAGES_CHUNK + 1);
			if (st && st->ops->changed)
				st->ops->changed(st, blob, (run->off + i) * PAGE_SIZE_K,
						 (j - i) * PAGE_SIZE_K);
			i = j;
		}
	}
	return 0;
}

/*
 * The image written ahead into a store that streams it (a block device,
 * blob->data NULL: predump.c keeps it equal to the copy).  Each piece
 * (IMG_PAGES_CHUNK) holding a page written since the copy (@src NULL) or
 * one the rounds copied again (@stale) is put together in one buffer, from
 * the copy and the process; only the pages written since go into the store,
 * and both the piece's sum (@sums) and the store's checksums of its extents
 * are taken from the buffer.  *@written: the pages written.
 */
static int patch_stream(pid_t pid, const MmImage *mm, struct img_store *st, struct img_blob *blob,
			const uint8_t *const *src, int memfd, int pmfd, const uint8_t *stale,
			uint64_t *sums, uint64_t *written, size_t *resummed)
{
	const uint64_t per = IMG_PAGES_CHUNK / PAGE_SIZE_K;
	uint64_t len = mm->pages_nr * PAGE_SIZE_K;
	size_t r = 0;
	uint8_t *buf;
	int ret = 0;

	buf = mmap(NULL, IMG_PAGES_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		   -1, 0);
	if (buf == MAP_FAILED)
		return -ENOMEM;
	for (size_t k = 0; k < img_psum_pieces(len) && !ret; k++) {
		uint64_t p0 = k * per, p1 = p0 + per < mm->pages_nr ? p0 + per : mm->pages_nr;
		bool todo = stale[k];

		for (uint64_t i = p0; !todo && i < p1; i++)
			todo = !src || !src[i];
		if (!todo)
			continue;
		for (uint64_t i = p0; i < p1 && !ret;) {
			const PageRun *run;
			uint64_t j = i + 1;

			if (src && src[i]) {
				memcpy(buf + (i - p0) * PAGE_SIZE_K, src[i], PAGE_SIZE_K);
				i++;
				continue;
			}
			/* the runs are in image order, the pages of each consecutive */
			while (r < mm->n_runs && mm->runs[r]->off + mm->runs[r]->nr_pages <= i)
				r++;
			if (r == mm->n_runs || mm->runs[r]->off > i) {
				log_err("pid %d: page %" PRIu64 " of its image is in no run", pid, i);
				ret = -EINVAL;
				break;
			}
			run = mm->runs[r];
			while (j < p1 && j < run->off + run->nr_pages && !(src && src[j]))
				j++;
			ret = read_pieces(pid, buf + (i - p0) * PAGE_SIZE_K,
					  &(struct iovec){ (void *)(run->vaddr + (i - run->off) * PAGE_SIZE_K),
							   (j - i) * PAGE_SIZE_K },
					  1, (j - i) * PAGE_SIZE_K, memfd, pmfd, false);
			if (!ret)
				ret = st->ops->rewrite(st, blob, i * PAGE_SIZE_K,
						       buf + (i - p0) * PAGE_SIZE_K, (j - i) * PAGE_SIZE_K);
			if (ret)
				break;
			*written += j - i;
			i = j;
		}
		if (ret)
			break;
		sums[k] = img_piece_sum(IMG_PSUM_NOW, buf, (p1 - p0) * PAGE_SIZE_K);
		ret = st->ops->sum_bytes(st, blob, p0 * PAGE_SIZE_K, buf, (p1 - p0) * PAGE_SIZE_K);
		(*resummed)++;
		if (!ret)
			ret = ckpt_check_abort();
	}
	munmap(buf, IMG_PAGES_CHUNK);
	return ret;
}

/*
 * The page image written by ranges (a directory's file with pwrite(), a
 * store's write_at(), or in place in a store's mapping) by this thread and
 * one more, on another CPU: each takes the next PAR_UNIT bytes of the
 * image, reads their pages into a buffer of its own (or straight into the
 * mapping: one copy), takes the pieces' sums (@sums, one per
 * IMG_PAGES_CHUNK) and writes them out.  Pages a pre-dump holds (@src) are
 * taken from there (predump_sources), unreadable (PROT_NONE) pieces through
 * /proc/pid/mem.  Reading another process's pages, writing them into
 * a file's pages and summing them each take about as long as a memcpy of
 * them; two CPUs do it in a little over half the time.  This thread alone
 * counts the progress and polls for an abort.
 */
/* small enough to stay in the cache between the read of the pages, their
 * sums and their write; a multiple of IMG_PAGES_CHUNK */
#define PAR_UNIT (2UL << 20)

struct par_copy {
	pthread_mutex_t mu;
	const struct run_list *rl;
	size_t i, done;		/* the next unit starts at page @done of run @i */
	uint64_t out;		/* and at this offset of the image */
	uint64_t moved;		/* bytes written, not yet counted (log_progress_add) */
	int err;
	pid_t pid;
	int memfd, pmfd;
	const uint8_t *const *src;
	struct img_store *st;
	struct img_blob *blob;
	uint64_t *sums;
};

/* The next unit's pieces (at most 512, each at least a page: the unit is
 * whole but at the end), or 0 when there is none left or a copier failed. */
static size_t par_take(struct par_copy *pc, struct iovec *remote, size_t *bytes, uint64_t *out)
{
	const struct run_list *rl = pc->rl;
	size_t k = 0;

	*bytes = 0;
	pthread_mutex_lock(&pc->mu);
	*out = pc->out;
	while (!pc->err && pc->i < rl->n && k < 512 && *bytes < PAR_UNIT) {
		size_t left = (rl->runs[pc->i].nr_pages - pc->done) * PAGE_SIZE_K;
		size_t take = left < PAR_UNIT - *bytes ? left : PAR_UNIT - *bytes;

		remote[k].iov_base = (void *)(rl->runs[pc->i].vaddr + pc->done * PAGE_SIZE_K);
		remote[k].iov_len = take;
		*bytes += take;
		k++;
		pc->done += take / PAGE_SIZE_K;
		if (pc->done == rl->runs[pc->i].nr_pages) {
			pc->i++;
			pc->done = 0;
		}
	}
	pc->out += *bytes;
	pthread_mutex_unlock(&pc->mu);
	return k;
}

static void par_fail(struct par_copy *pc, int err)
{
	pthread_mutex_lock(&pc->mu);
	if (!pc->err)
		pc->err = err;
	pthread_mutex_unlock(&pc->mu);
}

/* One copier: units until none is left; @lead (this thread) counts the
 * progress and polls for an abort between them. */
static int par_copier(struct par_copy *pc, uint8_t *buf, bool lead)
{
	struct iovec remote[512];
	uint64_t out;
	size_t k, bytes;
	int ret = 0;

	while (!ret && (k = par_take(pc, remote, &bytes, &out))) {
		/* a store's mapping: the pages read straight into place */
		uint8_t *dst = pc->blob->data ? pc->blob->data + out : buf;
		const uint8_t *data = dst;
		uint64_t *sums = pc->sums + out / IMG_PAGES_CHUNK;

		if (pc->src)
			ret = fill_batch(pc->pid, dst, remote, k, bytes, pc->src + out / PAGE_SIZE_K,
					 !pc->blob->data, pc->memfd, pc->pmfd, &data);
		else
			ret = read_pieces(pc->pid, dst, remote, k, bytes, pc->memfd, pc->pmfd,
					  false);
		for (size_t off = 0; !ret && off < bytes; off += IMG_PAGES_CHUNK)
			*sums++ = img_piece_sum(IMG_PSUM_NOW, data + off, bytes - off < IMG_PAGES_CHUNK ?
						bytes - off : IMG_PAGES_CHUNK);
		if (ret || pc->blob->data) {
			/* (in place) */
		} else if (pc->blob->fd >= 0) {
			for (size_t w = 0; w < bytes && !ret;) {
				ssize_t n = pwrite(pc->blob->fd, data + w, bytes - w, out + w);

				if (n <= 0)
					ret = -(n < 0 ? errno : EIO);
				w += n > 0 ? n : 0;
			}
		} else {
			ret = pc->st->ops->write_at(pc->st, pc->blob, out, data, bytes,
						    pc->sums + out / IMG_PAGES_CHUNK);
		}
		if (ret && ret != -EIO)	/* (read_pieces says what it could not read) */
			log_errno(ret, "pid %d: cannot write the page image %s to %s", pc->pid,
				  pc->blob->name, pc->st->where);
		pthread_mutex_lock(&pc->mu);
		pc->moved += bytes;
		if (lead) {
			log_progress_add(pc->moved);
			pc->moved = 0;
		}
		pthread_mutex_unlock(&pc->mu);
		if (!ret && lead)
			ret = ckpt_check_abort();
	}
	if (ret)
		par_fail(pc, ret);
	return ret;
}

static void *par_helper(void *arg)
{
	struct par_copy *pc = arg;
	uint8_t *buf = mmap(NULL, PAR_UNIT, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (buf == MAP_FAILED)
		return NULL;	/* the lead copies alone */
	par_copier(pc, buf, false);
	munmap(buf, PAR_UNIT);
	return NULL;
}

/* CPUs this thread may run on */
static int cpus_allowed(void)
{
	cpu_set_t set;

	return sched_getaffinity(0, sizeof(set), &set) ? 1 : CPU_COUNT(&set);
}

/*
 * The pages of @rl, in order, by ranges on two CPUs (above) into a blob
 * written with pwrite() (@blob->fd), in place (@blob->data) or with the
 * store's write_at(); @mm gets the pieces' sums.
 */
static int copy_runs_par(pid_t pid, const struct run_list *rl, MmImage *mm, struct img_store *st,
			 struct img_blob *blob, int memfd, int pmfd, const uint8_t *const *src)
{
	size_t n = img_psum_pieces(mm->pages_nr * PAGE_SIZE_K);
	struct par_copy pc = {
		.rl = rl, .pid = pid, .memfd = memfd, .pmfd = pmfd, .src = src, .st = st,
		.blob = blob,
	};
	uint8_t *buf;
	pthread_t helper;
	bool two;
	int ret;

	pc.sums = calloc(n, sizeof(*pc.sums));
	buf = mmap(NULL, PAR_UNIT, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
		   MAP_POPULATE, -1, 0);
	if (!pc.sums || buf == MAP_FAILED) {
		free(pc.sums);
		if (buf != MAP_FAILED)
			munmap(buf, PAR_UNIT);
		return -ENOMEM;
	}
	pthread_mutex_init(&pc.mu, NULL);
	two = cpus_allowed() > 1 && n > 2 && !ckpt_thread_start(&helper, par_helper, &pc);
	ret = par_copier(&pc, buf, true);
	if (two)
		pthread_join(helper, NULL);
	if (!ret)
		ret = pc.err;
	if (!ret)
		log_progress_add(pc.moved);
	pthread_mutex_destroy(&pc.mu);
	munmap(buf, PAR_UNIT);
	if (ret) {
		free(pc.sums);
		return ret;
	}
	mm->chunk_sum = pc.sums;
	mm->n_chunk_sum = n;
	mm->pages_sum = img_psum_of_sums(IMG_PSUM_NOW, pc.sums, n);
	return 0;
}

/* mm_image.pages_sum and chunk_sum from @ps (img_psum) */
static int note_pages_sums(pid_t pid, MmImage *mm, struct img_psum *ps)
{
	int ret = img_psum_final(ps, &mm->pages_sum, &mm->chunk_sum, &mm->n_chunk_sum);

	return ret ? log_errno(ret, "pid %d: the checksums of its page image", pid) : 0;
}

int mem_select_pages(pid_t pid, uint64_t **out, size_t *nout)
{
	struct vma_raw *raw = NULL;
	struct run_list rl = { 0 };
	uint64_t *pg = NULL;
	char name[64];
	int nraw = 0, ret, pmfd;
	size_t n = 0;

	*out = NULL;
	*nout = 0;
	/* gone meanwhile: -ENOENT or -ESRCH, not said */
	ret = read_vmas(pid, &raw, &nraw, true, false);
	if (ret)
		return ret;
	snprintf(name, sizeof(name), "/proc/%d/pagemap", pid);
	pmfd = open(name, O_RDONLY | O_CLOEXEC);
	if (pmfd < 0) {
		free(raw);
		return -errno;
	}
	for (int i = 0; i < nraw && !ret; i++) {
		VmaEntry v = VMA_ENTRY__INIT;

		v.start = raw[i].start;
		v.end = raw[i].end;
		v.kind = classify(&raw[i]);
		rl.split = true;
		ret = select_pages(pmfd, pid, &v, &raw[i], &rl, NULL);
	}
	close(pmfd);
	free(raw);
	if (!ret && rl.pages && !(pg = malloc(rl.pages * sizeof(*pg))))
		ret = -ENOMEM;
	for (size_t r = 0; !ret && r < rl.n; r++)
		for (uint64_t i = 0; i < rl.runs[r].nr_pages; i++)
			pg[n++] = rl.runs[r].vaddr / PAGE_SIZE_K + i;
	free(rl.runs);
	if (ret) {
		free(pg);
		return ret;
	}
	*out = pg;
	*nout = n;
	return 0;
}

void mem_free_image(MmImage *mm)
{
	for (size_t i = 0; i < mm->n_vmas; i++) {
		free(mm->vmas[i]->name);
		free(mm->vmas[i]->thp_map.data);
		free(mm->vmas[i]);
	}
	free(mm->vmas);
	if (mm->n_runs) {
		free(mm->runs[0]);	/* one array */
		free(mm->runs);
	}
	if (mm->n_cow_runs) {
		free(mm->cow_runs[0]);
		free(mm->cow_runs);
	}
	if (mm->n_hot_runs) {
		free(mm->hot_runs[0]);
		free(mm->hot_runs);
	}
	free(mm->vdso_symtab.data);
	free(mm->chunk_sum);
	mm_image__init(mm);
}

#define MEM_HOT_RUNS_MAX	65536	/* a hint: beyond it, the rest in address order */

/*
 * The pages read at the freeze while the others came from a pre-dump's copy
 * (@src[i] NULL for page i of the image): those the tree wrote last, its
 * hot pages (mm_image.hot_runs).  Nothing when the copy gave none.
 */
static int note_hot_runs(MmImage *mm, const uint8_t *const *src, uint64_t from_copy)
{
	PageRun *h = NULL;
	size_t n = 0, cap = 0, v = 0, last_r = SIZE_MAX;

	if (!src || !from_copy || from_copy >= mm->pages_nr)
		return 0;
	for (size_t r = 0; r < mm->n_runs && n < MEM_HOT_RUNS_MAX; r++) {
		const PageRun *run = mm->runs[r];

		/* private anonymous memory only (what a lazy restore fills;
		 * the rest was never tracked: the vDSO, files...) */
		while (v < mm->n_vmas && mm->vmas[v]->end <= run->vaddr)
			v++;
		if (v == mm->n_vmas || mm->vmas[v]->start > run->vaddr ||
		    mm->vmas[v]->kind != VMA_KIND__VMA_ANON_PRIVATE)
			continue;
		for (uint64_t j = 0; j < run->nr_pages && n < MEM_HOT_RUNS_MAX; j++) {
			uint64_t va = run->vaddr + j * PAGE_SIZE_K, off = run->off + j;

			if (off >= mm->pages_nr || src[off])
				continue;
			/* within one run only: two runs may touch (two mappings) */
			if (n && last_r == r && h[n - 1].vaddr + h[n - 1].nr_pages * PAGE_SIZE_K == va &&
			    h[n - 1].off + h[n - 1].nr_pages == off) {
				h[n - 1].nr_pages++;
				continue;
			}
			if (n == cap) {
				PageRun *nh = realloc(h, (cap = cap ? cap * 2 : 64) * sizeof(*h));

				if (!nh) {
					free(h);
					return -ENOMEM;
				}
				h = nh;
			}
			h[n] = (PageRun)PAGE_RUN__INIT;
			h[n].vaddr = va;
			h[n].off = off;
			h[n].nr_pages = 1;
			n++;
			last_r = r;
		}
	}
	if (!n)
		return 0;
	mm->hot_runs = malloc(n * sizeof(*mm->hot_runs));
	if (!mm->hot_runs) {
		free(h);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		mm->hot_runs[i] = &h[i];
	mm->n_hot_runs = n;
	return 0;
}

/*
 * The sums of the pieces of an image written ahead that changed since
 * (@stale), from its mapping @data: by this thread and one more when there
 * are a few (the tree is frozen meanwhile).
 */
struct resum {
	const uint8_t *data;
	uint64_t len;
	const uint8_t *stale;
	uint64_t *sums;
	size_t n, next;
};

static void *resum_run(void *arg)
{
	struct resum *rs = arg;
	size_t k;

	while ((k = __atomic_fetch_add(&rs->next, 1, __ATOMIC_RELAXED)) < rs->n) {
		uint64_t off = k * IMG_PAGES_CHUNK;

		if (rs->stale[k])
			rs->sums[k] = img_piece_sum(IMG_PSUM_NOW, rs->data + off, rs->len - off < IMG_PAGES_CHUNK ?
						rs->len - off : IMG_PAGES_CHUNK);
	}
	return NULL;
}

static void resum_stale(const uint8_t *data, uint64_t len, const uint8_t *stale, uint64_t *sums,
			size_t n)
{
	struct resum rs = { data, len, stale, sums, n, 0 };
	size_t nstale = 0;
	pthread_t th;
	bool two;

	for (size_t k = 0; k < n; k++)
		nstale += stale[k];
	two = nstale >= 4 && cpus_allowed() > 1 && !ckpt_thread_start(&th, resum_run, &rs);
	resum_run(&rs);
	if (two)
		pthread_join(th, NULL);
}

/*
 * /proc/PID/smaps walks every page table of the process to count its pages:
 * 13-16 ms for 1 GiB, most of what a frozen pass after a pre-dump takes.
 * The frozen pass starts from /proc/PID/maps instead and reads smaps on
 * another thread meanwhile: what needs its flags and counts (the mappings'
 * properties, THP, what is refused) waits for it, before any page is read.
 * The tree is frozen: both list the same mappings (checked).
 */
struct smaps_job {
	pthread_t th;
	pid_t pid;
	struct vma_raw *raw;
	int n, ret;
	bool started, merged;
};

static void *smaps_read(void *arg)
{
	struct smaps_job *j = arg;

	j->ret = read_vmas(j->pid, &j->raw, &j->n, false, false);
	return NULL;
}

static void smaps_start(struct smaps_job *j, pid_t pid)
{
	j->pid = pid;
	j->started = !ckpt_thread_start(&j->th, smaps_read, j);
}

/* The flags and counts of smaps into @raw (from maps), once. */
static int smaps_merge(struct smaps_job *j, struct vma_raw *raw, int nraw)
{
	int ret;

	if (j->merged)
		return 0;
	if (j->started)
		pthread_join(j->th, NULL);
	else
		smaps_read(j);	/* no thread: read now */
	j->started = false;
	j->merged = true;
	ret = j->ret;
	for (int i = 0; !ret && i < nraw; i++) {
		const struct vma_raw *a = &raw[i], *b = &j->raw[i];

		if (i >= j->n || a->start != b->start || a->end != b->end || a->pgoff != b->pgoff ||
		    a->ino != b->ino || memcmp(a->perms, b->perms, 4) || strcmp(a->path, b->path)) {
			log_err("pid %d: its mappings changed while it was frozen (0x%lx-0x%lx)",
				j->pid, a->start, a->end);
			ret = -EAGAIN;
		}
	}
	if (!ret && j->n != nraw) {
		log_err("pid %d: its mappings changed while it was frozen", j->pid);
		ret = -EAGAIN;
	}
	for (int i = 0; !ret && i < nraw; i++)
		raw[i] = j->raw[i];
	free(j->raw);
	j->raw = NULL;
	return ret;
}

/* The properties of mapping @v that smaps gives (@r), and what is refused. */
static int vma_flags(pid_t pid, int pmfd, VmaEntry *v, const struct vma_raw *r)
{
	/* mapped without reserving swap: an 8 TiB reservation must come
	 * back so too, or overcommit refuses it */
	if (has_vmflag(r->vmflags, "nr"))
		v->flags |= MAP_NORESERVE;
	v->has_growsdown = true;
	v->growsdown = has_vmflag(r->vmflags, "gd");
	v->has_locked = true;
	v->locked = has_vmflag(r->vmflags, "lo");
	v->has_madv = true;
	for (size_t m = 0; m < sizeof(madv_flags) / sizeof(madv_flags[0]); m++)
		if (has_vmflag(r->vmflags, madv_flags[m].flag))
			v->madv |= 1ULL << madv_flags[m].advice;
	if (v->kind == VMA_KIND__VMA_ANON_PRIVATE && r->thp_kb) {
		int ret;

		v->has_thp_bytes = true;
		v->thp_bytes = (uint64_t)r->thp_kb << 10;
		ret = thp_map(pmfd, pid, v);
		if (ret)
			return ret;
	}
	/* pages a lazy restore has not filled yet read as absent: a dump
	 * now would lose them (docs/design.md, "Lazy restore") */
	if (has_vmflag(r->vmflags, "um")) {
		log_err("pid %d: mapping 0x%lx-0x%lx is still being filled by userfaultfd "
			"(a lazy restore in progress?); dump it once its memory is complete",
			pid, r->start, r->end);
		return -EBUSY;
	}
	if ((has_vmflag(r->vmflags, "io") || has_vmflag(r->vmflags, "pf")) &&
	    v->kind != VMA_KIND__VMA_VVAR && v->kind != VMA_KIND__VMA_VSYSCALL) {
		log_err("pid %d: mapping 0x%lx-0x%lx (%s): device memory is not supported",
			pid, r->start, r->end, r->path[0] ? r->path : "anonymous");
		return -EOPNOTSUPP;
	}
	return 0;
}

/* smaps_merge(), then vma_flags() of every mapping (@vraw: the raw mapping
 * of each of @mm's) */
static int vmas_complete(struct smaps_job *j, pid_t pid, int pmfd, MmImage *mm,
			 struct vma_raw *raw, int nraw, const int *vraw)
{
	int ret = smaps_merge(j, raw, nraw);

	for (size_t i = 0; !ret && i < mm->n_vmas; i++)
		ret = vma_flags(pid, pmfd, mm->vmas[i], &raw[vraw[i]]);
	return ret;
}

int mem_dump(pid_t pid, struct img_store *st, struct files_dump *fdump,
	     const struct puppet *pp, MmImage *mm, struct mem_dump_stats *stats,
	     struct shmem_dump *sd, struct ipc_dump *ipc, const MmImage *pmm,
	     const struct mem_frames *pframes, struct mem_frames *frames, struct predump *pd)
{
	const uint8_t **src = NULL;
	struct vma_raw *raw = NULL;
	struct run_list rl = { 0 }, cl = { 0 };
	struct va_runs clean = { 0 };	/* for the pre-dump (predump_sources) */
	struct img_blob blob = { 0 };
	struct img_psum ps;
	uint64_t *ahead_sums = NULL;	/* the pre-dump's image: its pieces' sums */
	uint8_t *ahead_stale = NULL;	/* ... and which changed since */
	struct smaps_job smaps = { 0 };
	char name[64];
	int nraw = 0, ret, pmfd = -1, memfd = -1, *vraw = NULL;
	bool blob_open = false, ahead = false;
	uint64_t pre = 0;

	ret = read_vmas(pid, &raw, &nraw, false, true);
	if (ret)
		return ret;
	smaps_start(&smaps, pid);
	mm->pid = pid;
	mm->pages_sum_kind = IMG_PSUM_NOW;
	mm->has_pages_sum_kind = mm->pages_sum_kind != IMG_PSUM_XXH64;	/* (as older images) */
	mm->vmas = calloc(nraw, sizeof(*mm->vmas));
	vraw = calloc(nraw + 1, sizeof(*vraw));
	if (!mm->vmas || !vraw) {
		ret = -ENOMEM;
		goto out;
	}
	snprintf(name, sizeof(name), "/proc/%d/pagemap", pid);
	pmfd = open(name, O_RDONLY | O_CLOEXEC);
	snprintf(name, sizeof(name), "/proc/%d/mem", pid);
	memfd = open(name, O_RDONLY | O_CLOEXEC);
	if (pmfd < 0 || memfd < 0) {
		ret = log_errno(errno, "pid %d: cannot open pagemap/mem", pid);
		goto out;
	}

	for (int i = 0; i < nraw; i++) {
		struct vma_raw *r = &raw[i];
		size_t first;
		VmaEntry *v;

		if (pp && r->start == pp->tramp)
			continue;	/* our own puppet area */
		v = calloc(1, sizeof(*v));
		if (!v) {
			ret = -ENOMEM;
			goto out;
		}
		vma_entry__init(v);
		mm->vmas[mm->n_vmas++] = v;
		v->start = r->start;
		v->end = r->end;
		v->pgoff = r->pgoff;
		v->prot = (r->perms[0] == 'r' ? PROT_READ : 0) |
			  (r->perms[1] == 'w' ? PROT_WRITE : 0) |
			  (r->perms[2] == 'x' ? PROT_EXEC : 0);
		v->flags = r->perms[3] == 's' ? MAP_SHARED : MAP_PRIVATE;
		v->kind = classify(r);
		v->name = strdup(r->path);
		vraw[mm->n_vmas - 1] = i;	/* its flags: vmas_complete() */

		/* a Linux native AIO context (io_setup): its ring is the kernel's
		 * (docs/design.md, "Linux native AIO") */
		if (v->kind == VMA_KIND__VMA_FILE_SHARED && !strncmp(r->path, "/[aio]", 6)) {
			log_err("pid %d: Linux native AIO context 0x%lx (io_setup, its ring at "
				"0x%lx-0x%lx): not supported", pid, r->start, r->start, r->end);
			ret = -EOPNOTSUPP;
			goto out;
		}
		if (v->kind == VMA_KIND__VMA_FILE_PRIVATE || v->kind == VMA_KIND__VMA_FILE_SHARED) {
			char link[64];

			snprintf(link, sizeof(link), "map_files/%lx-%lx", r->start, r->end);
			v->has_file_id = true;
			ret = files_dump_link(fdump, pid, link,
					      v->kind == VMA_KIND__VMA_FILE_SHARED && (v->prot & PROT_WRITE),
					      &v->file_id);
			if (ret)
				goto out;
		} else if (v->kind == VMA_KIND__VMA_SHMEM) {
			char link[64];

			snprintf(link, sizeof(link), "/proc/%d/map_files/%lx-%lx", pid, r->start, r->end);
			v->has_shmem_id = true;
			ret = shmem_dump_vma(sd, pid, v, r->ino, link);
			if (ret)
				goto out;
		} else if (v->kind == VMA_KIND__VMA_SYSV_SHM) {
			/* (its flags now) */
			ret = smaps_merge(&smaps, raw, nraw);
			if (!ret)
				ret = ipc_dump_shm_vma(ipc, pid, v, mm->n_vmas > 1 ? mm->vmas[mm->n_vmas - 2] : NULL,
						       (int)r->ino, has_vmflag(r->vmflags, "ht"),
						       has_vmflag(r->vmflags, "mw"));
			if (ret)
				goto out;
		}
		rl.split = true;
		first = rl.n;
		ret = ckpt_check_abort();
		if (!ret)
			ret = select_pages(pmfd, pid, v, r, &rl, pd ? &clean : NULL);
		if (ret == 1) {
			/* (no PAGEMAP_SCAN: the counts of smaps, now) */
			ret = smaps_merge(&smaps, raw, nraw);
			if (!ret)
				ret = select_pages(pmfd, pid, v, r, &rl, pd ? &clean : NULL);
		}
		if (!ret && pmm && parent_anon_over(pmm, v))
			ret = split_cow(pmfd, pid, pmm, pframes, &rl, first, &cl);
		if (ret)
			goto out;
	}
	if (cl.n) {
		mm->cow_runs = malloc(cl.n * sizeof(*mm->cow_runs));
		if (!mm->cow_runs) {
			ret = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < cl.n; i++)
			mm->cow_runs[i] = &cl.runs[i];
		mm->n_cow_runs = cl.n;
		mm->has_cow_pages_nr = true;
		mm->cow_pages_nr = cl.pages;
		cl.runs = NULL;
	}

	mm->n_runs = rl.n;
	mm->pages_nr = rl.pages;
	if (rl.n) {
		mm->runs = malloc(rl.n * sizeof(*mm->runs));
		if (!mm->runs) {
			ret = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < rl.n; i++)
			mm->runs[i] = &rl.runs[i];
		rl.runs = NULL;
	}

	if (frames) {
		ret = mem_frames_read(pmfd, pid, mm, frames);
		if (ret)
			goto out;
	}

	/* (an image written ahead for a process without pages now goes) */
	ret = mm->pages_nr ? predump_sources(pd, pid, pmfd, mm->runs, mm->n_runs, mm->pages_nr,
					     &clean, &src, &pre) : 0;
	if (!ret)
		ret = predump_take_blob(pd, pid, mm->runs, mm->n_runs, mm->pages_nr, &blob,
					&ahead_sums, &ahead_stale);
	if (ret < 0)
		goto out;
	blob_open = ahead = ret;
	ret = pd ? note_hot_runs(mm, (const uint8_t *const *)src, pre) : 0;
	if (ret < 0)
		goto out;
	/* (before any page is read: what is refused) */
	ret = vmas_complete(&smaps, pid, pmfd, mm, raw, nraw, vraw);
	if (ret)
		goto out;
	if (mm->pages_nr) {
		if (pd)
			log_info("pid %d: %" PRIu64 " of %" PRIu64 " pages from the pre-dump, %" PRIu64
				 " read now%s", pid, pre, mm->pages_nr, mm->pages_nr - pre,
				 blob_open ? " into the image written ahead" : "");
	}
	if (ahead && !blob.data) {
		/* streamed ahead: the pages written since written again in place */
		uint64_t written = 0;
		size_t resummed = 0;

		/* (read_pieces and the store say what failed) */
		ret = ahead_sums && ahead_stale ?
		      patch_stream(pid, mm, st, &blob, (const uint8_t *const *)src, memfd, pmfd,
				   ahead_stale, ahead_sums, &written, &resummed) : -ENOMEM;
		if (ret)
			goto out;
		mm->n_chunk_sum = img_psum_pieces(mm->pages_nr * PAGE_SIZE_K);
		mm->chunk_sum = ahead_sums;
		ahead_sums = NULL;
		mm->pages_sum = img_psum_of_sums(IMG_PSUM_NOW, mm->chunk_sum, mm->n_chunk_sum);
		log_info("pid %d: %" PRIu64 " pages written into its page image at the freeze, "
			 "%zu of %zu pieces summed again", pid, written, resummed,
			 mm->n_chunk_sum);
		log_progress_add(mm->pages_nr * PAGE_SIZE_K);
	} else if (ahead) {
		/* written ahead, laid out as now: the pages written since go in */
		ret = patch_runs(pid, mm, &blob, (const uint8_t *const *)src, memfd, pmfd,
				 ahead_stale);
		if (ret)
			goto out;
		if (ahead_sums) {
			/* only the pieces written since the pre-dump summed them */
			uint64_t len = mm->pages_nr * PAGE_SIZE_K;

			mm->n_chunk_sum = img_psum_pieces(len);
			resum_stale(blob.data, len, ahead_stale, ahead_sums, mm->n_chunk_sum);
			mm->chunk_sum = ahead_sums;
			ahead_sums = NULL;
			mm->pages_sum = img_psum_of_sums(IMG_PSUM_NOW, mm->chunk_sum, mm->n_chunk_sum);
		} else {
			img_psum_init(&ps, IMG_PSUM_NOW, false);
			img_psum_update(&ps, blob.data, mm->pages_nr * PAGE_SIZE_K);
			ret = note_pages_sums(pid, mm, &ps);
			if (ret)
				goto out;
		}
		log_progress_add(mm->pages_nr * PAGE_SIZE_K);
	} else {
		snprintf(name, sizeof(name), "pages-%d.img", pid);
		if (st->ops->create_stream)
			ret = st->ops->create_stream(st, name, mm->pages_nr * PAGE_SIZE_K, &blob);
		else
			ret = st->ops->create(st, name, mm->pages_nr * PAGE_SIZE_K, &blob);
		if (ret)
			goto out;
		blob_open = true;
	}
	if (mm->pages_nr && !ahead) {
		struct run_list view = { .n = mm->n_runs, .runs = mm->runs[0] };

		ret = copy_runs_par(pid, &view, mm, st, &blob, memfd, pmfd,
				    (const uint8_t *const *)src);
		if (ret)
			goto out;
	}
	/* the pieces' sums were taken from the blob as it is: a store whose
	 * own checksums are the same need not read it again */
	if (mm->n_chunk_sum && blob.data && st->ops->piece_sums)
		st->ops->piece_sums(st, &blob, mm->chunk_sum, mm->n_chunk_sum);
	ret = st->ops->finish(st, &blob);
	if (stats) {
		stats->pages += mm->pages_nr;
		stats->from_pre += pre;
	}
	/* the vDSO symbol table, for a restore on another kernel */
	for (size_t i = 0; !ret && i < mm->n_vmas; i++) {
		VmaEntry *v = mm->vmas[i];
		VdsoSymtab t = VDSO_SYMTAB__INIT;
		uint8_t *img;
		size_t len = v->end - v->start;

		if (v->kind != VMA_KIND__VMA_VDSO)
			continue;
		img = malloc(len);
		if (!img) {
			ret = -ENOMEM;
			break;
		}
		ret = puppet_read(pid, v->start, img, len);
		if (!ret)
			ret = vdso_parse_symtab(img, len, &t);
		if (!ret) {
			t.vdso_start = v->start;
			t.vdso_size = len;
			t.vdso_crc = img_crc32c(0, img, len);	/* vvar: in the VMA list */
			mm->has_vdso_symtab = true;
			mm->vdso_symtab.len = vdso_symtab__get_packed_size(&t);
			mm->vdso_symtab.data = malloc(mm->vdso_symtab.len);
			if (mm->vdso_symtab.data)
				vdso_symtab__pack(&t, mm->vdso_symtab.data);
			else
				ret = -ENOMEM;
		}
		vdso_symtab_free(&t);
		free(img);
	}
out:
	if (smaps.started) {
		pthread_join(smaps.th, NULL);
		free(smaps.raw);
	}
	free(vraw);
	if (blob_open)
		st->ops->release(st, &blob);
	free(ahead_sums);
	free(ahead_stale);
	free(src);
	free(rl.runs);
	free(cl.runs);
	free(clean.v);
	free(raw);
	if (pmfd >= 0)
		close(pmfd);
	if (memfd >= 0)
		close(memfd);
	return ret;
}
