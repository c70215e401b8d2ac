// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The cross-checks of a whole image set, before restore trusts any of it
 * (include/ckpt-images.h says what each one covers).
 *
 * Images come from a directory or from the store carried across a reboot:
 * they are input, and restore runs as root.  Every field that restore later
 * uses as an index, a count, an address or a kernel argument is checked
 * here, once, with a message naming the image and the pid; restore itself
 * then works on a set it may trust.  Nothing here makes a syscall.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "ckpt-images.h"
#include "internal.h"
#include "task-state.h"

/* ---- sorted id sets ------------------------------------------------------ */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

struct idset {
	uint32_t *v;
	size_t n;
};

static bool idset_has(const struct idset *s, uint32_t id)
{
	return s->n && bsearch(&id, s->v, s->n, sizeof(*s->v), cmp_u32);
}

/* The ids of @files, sorted (files_validate_image() checked them unique). */
static int file_ids(const FilesImage *files, struct idset *s)
{
	s->n = 0;
	s->v = malloc((files && files->n_files ? files->n_files : 1) * sizeof(*s->v));
	if (!s->v)
		return -ENOMEM;
	for (size_t i = 0; files && i < files->n_files; i++)
		if (files->files[i])
			s->v[s->n++] = files->files[i]->id;
	qsort(s->v, s->n, sizeof(*s->v), cmp_u32);
	return 0;
}

/*
 * Restore tags the fds it keeps for mappings with the high bits of a file
 * id (restore.c: write access, the exe file, shared memory): an id used by
 * a mapping, a cwd, a root or an exe must leave them clear.
 */
#define FILE_ID_MAX	0x1fffffffu

static bool file_ref_ok(const struct idset *files, uint32_t id)
{
	return id && id <= FILE_ID_MAX && idset_has(files, id);
}

/* ---- the process tree ----------------------------------------------------- */

struct pid_ix {
	uint32_t pid;
	uint32_t ix;
};

static int cmp_pid_ix(const void *a, const void *b)
{
	return cmp_u32(&((const struct pid_ix *)a)->pid, &((const struct pid_ix *)b)->pid);
}

/* Index of @pid in @pst via the sorted @ix, or -1. */
static long tree_index(const struct pid_ix *ix, size_t n, uint32_t pid)
{
	struct pid_ix key = { .pid = pid }, *r = bsearch(&key, ix, n, sizeof(*ix), cmp_pid_ix);

	return r ? (long)r->ix : -1;
}

static bool task_state_ok(TaskState s)
{
	return protobuf_c_enum_descriptor_get_value(&task_state__descriptor, s) != NULL;
}

/* Each entry on its own: pid, state, thread list. */
static int check_entry(const PstreeEntry *pe, size_t i)
{
	if (!pe) {
		log_err("pstree.img: entry %zu is empty", i);
		return -EINVAL;
	}
	if (!pe->pid || pe->pid > CKPT_PID_MAX) {
		log_err("pstree.img: entry %zu: pid %u is out of range", i, pe->pid);
		return -EINVAL;
	}
	if (!task_state_ok(pe->state)) {
		log_err("pstree.img: pid %u: unknown state %d", pe->pid, pe->state);
		return -EINVAL;
	}
	if (i == 0 && pe->state == TASK_STATE__TASK_ZOMBIE) {
		log_err("pstree.img: pid %u: the root of the tree is a zombie", pe->pid);
		return -EINVAL;
	}
	if (pe->state != TASK_STATE__TASK_ZOMBIE &&
	    (!pe->n_threads || pe->n_threads > 65536 || pe->threads[0] != pe->pid)) {
		log_err("pstree.img: pid %u: bad thread list (%zu threads, the first %u)", pe->pid,
			pe->n_threads, pe->n_threads ? pe->threads[0] : 0);
		return -EINVAL;
	}
	if (pe->n_threads > 65536) {
		log_err("pstree.img: pid %u: %zu threads", pe->pid, pe->n_threads);
		return -EINVAL;
	}
	for (size_t t = 0; t < pe->n_threads; t++)
		if (!pe->threads[t] || pe->threads[t] > CKPT_PID_MAX) {
			log_err("pstree.img: pid %u: tid %u is out of range", pe->pid, pe->threads[t]);
			return -EINVAL;
		}
	return 0;
}

/* Every pid and tid once: a task's own pid may open its thread list. */
static int collect_ids(const PstreeImage *pst, uint32_t **out, size_t *nout)
{
	size_t n = 0, cap = 0;
	uint32_t *v;

	for (size_t i = 0; i < pst->n_entries; i++)
		cap += 1 + pst->entries[i]->n_threads;
	v = malloc(cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < pst->n_entries; i++) {
		const PstreeEntry *pe = pst->entries[i];

		v[n++] = pe->pid;
		for (size_t t = 0; t < pe->n_threads; t++)
			if (t || pe->threads[t] != pe->pid)
				v[n++] = pe->threads[t];
	}
	qsort(v, n, sizeof(*v), cmp_u32);
	*out = v;
	*nout = n;
	return 0;
}

/*
 * Why the parent of entry @i is not listed before it: the chain of parents
 * from @i comes back to it (a cycle), or it is merely out of order.
 */
static int bad_parent_order(const PstreeImage *pst, const struct pid_ix *ix, size_t i)
{
	const PstreeEntry *pe = pst->entries[i];
	long k = (long)i;

	for (size_t steps = 0; steps <= pst->n_entries; steps++) {
		long up = tree_index(ix, pst->n_entries, pst->entries[k]->ppid);

		if (up < 0 || up == 0)
			break;
		if (up == (long)i) {
			log_err("pstree.img: pid %u: its parents form a cycle (through pid %u)",
				pe->pid, pst->entries[k]->pid);
			return -EINVAL;
		}
		k = up;
	}
	log_err("pstree.img: pid %u is listed before its parent %u", pe->pid, pe->ppid);
	return -EINVAL;
}

/*
 * The root's session when its leader had exited at dump (a daemon): a
 * helper task takes that pid and makes the session and its group, and the
 * root is created as its child (restore.c, session_helper_pid).  0: none.
 */
static uint32_t helper_sid(const PstreeImage *pst, const struct pid_ix *ix, bool shell_job)
{
	const PstreeEntry *root = pst->entries[0];

	if (shell_job || root->sid == root->pid || tree_index(ix, pst->n_entries, root->sid) >= 0)
		return 0;
	return root->sid;
}

/*
 * How restore makes sessions and groups (restore.c, stub_main): a task whose
 * sid is its pid calls setsid(), one whose pgid is its pid makes its group,
 * every other task keeps its parent's session and joins the group of an
 * existing leader in it, once every task exists.  The root's session comes
 * from outside (a shell job), or from a helper (helper_sid).
 */
static int check_session(const PstreeImage *pst, const struct pid_ix *ix, size_t i,
			 bool shell_job)
{
	const PstreeEntry *pe = pst->entries[i], *root = pst->entries[0];
	uint32_t helper = helper_sid(pst, ix, shell_job);
	long leader;

	if (i == 0 && helper && helper > CKPT_PID_MAX) {
		log_err("pstree.img: pid %u: session %u is out of range", pe->pid, helper);
		return -EINVAL;
	}
	if (pe->sid != pe->pid) {
		bool ok = i ? pe->sid == pst->entries[tree_index(ix, pst->n_entries, pe->ppid)]->sid
			    : shell_job || helper;

		if (!ok) {
			log_err("pstree.img: pid %u: session %u cannot be recreated (%s)", pe->pid,
				pe->sid, i ? "its parent is in another session" :
				"its leader is another process of the tree");
			return -EINVAL;
		}
	} else if (pe->pgid != pe->pid) {
		log_err("pstree.img: pid %u: a session leader in group %u", pe->pid, pe->pgid);
		return -EINVAL;
	}
	if (pe->pgid == pe->pid || (shell_job && pe->pgid == root->pgid) ||
	    (helper && pe->pgid == helper && pe->sid == helper))
		return 0;
	leader = tree_index(ix, pst->n_entries, pe->pgid);
	if (leader < 0 || pst->entries[leader]->pgid != pe->pgid ||
	    pst->entries[leader]->sid != pe->sid) {
		log_err("pstree.img: pid %u: process group %u has no leader in its session %u",
			pe->pid, pe->pgid, pe->sid);
		return -EINVAL;
	}
	return 0;
}

int ckpt_validate_pstree(const PstreeImage *pst, uint32_t root_pid, bool shell_job)
{
	struct pid_ix *ix = NULL;
	uint32_t *ids = NULL;
	size_t n, nids = 0;
	int ret;

	if (!pst || !pst->n_entries) {
		log_err("pstree.img: no process");
		return -EINVAL;
	}
	n = pst->n_entries;
	if (n > CKPT_PID_MAX) {
		log_err("pstree.img: %zu processes", n);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		ret = check_entry(pst->entries[i], i);
		if (ret)
			return ret;
	}
	if (pst->entries[0]->pid != root_pid) {
		log_err("pstree.img: the first entry is pid %u, not the root pid %u",
			pst->entries[0]->pid, root_pid);
		return -EINVAL;
	}
	ret = collect_ids(pst, &ids, &nids);
	if (ret)
		return ret;
	for (size_t k = 1; k < nids; k++)
		if (ids[k] == ids[k - 1]) {
			log_err("pstree.img: pid/tid %u is used twice", ids[k]);
			ret = -EINVAL;
			goto out;
		}
	ix = malloc(n * sizeof(*ix));
	if (!ix) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		ix[i] = (struct pid_ix){ pst->entries[i]->pid, (uint32_t)i };
	qsort(ix, n, sizeof(*ix), cmp_pid_ix);
	for (size_t i = 1; i < n && !ret; i++) {
		const PstreeEntry *pe = pst->entries[i];
		long up = tree_index(ix, n, pe->ppid);

		if (pe->ppid == pe->pid) {
			log_err("pstree.img: pid %u is its own parent", pe->pid);
			ret = -EINVAL;
		} else if (up < 0) {
			log_err("pstree.img: pid %u: its parent %u is not in the tree", pe->pid, pe->ppid);
			ret = -EINVAL;
		} else if ((size_t)up >= i) {
			ret = bad_parent_order(pst, ix, i);
		} else if (pst->entries[up]->state == TASK_STATE__TASK_ZOMBIE) {
			log_err("pstree.img: pid %u: its parent %u is a zombie", pe->pid, pe->ppid);
			ret = -EINVAL;
		}
	}
	/* every parent is known from here: sessions may look at them */
	for (size_t i = 0; i < n && !ret; i++)
		ret = check_session(pst, ix, i, shell_job);
	if (!ret && helper_sid(pst, ix, shell_job) &&
	    bsearch(&pst->entries[0]->sid, ids, nids, sizeof(*ids), cmp_u32)) {
		log_err("pstree.img: pid %u: its session %u is a thread of the tree",
			pst->entries[0]->pid, pst->entries[0]->sid);
		ret = -EINVAL;
	}
out:
	free(ix);
	free(ids);
	return ret;
}

int ckpt_pstree_ids(const PstreeImage *pst, uint32_t root_pid, bool shell_job, uint32_t **ids,
		    size_t *n)
{
	int ret = ckpt_validate_pstree(pst, root_pid, shell_job);

	if (ret)
		return ret;
	return collect_ids(pst, ids, n);	/* unique: checked above */
}

/* ---- one process: core and memory ---------------------------------------- */

static int check_thread(const ThreadCore *tc, uint32_t pid, uint32_t tid)
{
	if (!tc || tc->tid != tid) {
		log_err("core-%u.img: thread %u: missing, or another tid", pid, tid);
		return -EINVAL;
	}
	if (tc->gpregs.len != arch_regs_size()) {
		log_err("core-%u.img: thread %u: registers of %zu bytes, expected %zu", pid, tid,
			tc->gpregs.len, arch_regs_size());
		return -EINVAL;
	}
	if (tc->has_xstate && tc->xstate.len && tc->xstate.len < 512) {
		log_err("core-%u.img: thread %u: FPU state of %zu bytes", pid, tid, tc->xstate.len);
		return -EINVAL;
	}
	return 0;
}

static int check_core(const CoreEntry *c, const PstreeEntry *pe, const struct idset *files)
{
	uint32_t pid = pe->pid;

	if (c->pid != pid || c->n_threads != pe->n_threads) {
		log_err("core-%u.img: pid %u with %zu threads; pstree.img says pid %u, %zu threads",
			pid, c->pid, c->n_threads, pid, pe->n_threads);
		return -EINVAL;
	}
	for (size_t t = 0; t < c->n_threads; t++)
		if (check_thread(c->threads[t], pid, pe->threads[t]))
			return -EINVAL;
	/* the per-process state modules' own checks (task-state.h) */
	if (task_states_validate(c, pid))
		return -EINVAL;
	if (!file_ref_ok(files, c->cwd_file_id) || !file_ref_ok(files, c->root_file_id)) {
		log_err("core-%u.img: working directory (file %u) or root (file %u) not in files.img",
			pid, c->cwd_file_id, c->root_file_id);
		return -EINVAL;
	}
	if (!c->mm || c->mm->n_auxv > 128 || c->mm->n_auxv % 2) {
		log_err("core-%u.img: no mm fields, or an auxiliary vector of %zu words", pid,
			c->mm ? c->mm->n_auxv : 0);
		return -EINVAL;
	}
	if (c->mm->has_exe_file_id && !file_ref_ok(files, c->mm->exe_file_id)) {
		log_err("core-%u.img: executable (file %u) not in files.img", pid, c->mm->exe_file_id);
		return -EINVAL;
	}
	if (c->has_exit_signal && (c->exit_signal < 0 || c->exit_signal > 64)) {
		log_err("core-%u.img: exit signal %d", pid, c->exit_signal);
		return -EINVAL;
	}
	return 0;
}

static bool vma_kind_ok(VmaKind k)
{
	return protobuf_c_enum_descriptor_get_value(&vma_kind__descriptor, k) != NULL;
}

/* The 2 MiB extents of @v from its first 2 MiB boundary (thp_map's bits) */
static uint64_t thp_extents(const VmaEntry *v)
{
	uint64_t first = (v->start + (2ULL << 20) - 1) & ~((2ULL << 20) - 1);

	return v->end > first ? (v->end - first) >> 21 : 0;
}

static int check_vmas(const MmImage *mm, uint32_t pid, const struct idset *files,
		      const ShmemImage *shm)
{
	uint64_t prev_end = 0;

	for (size_t i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *v = mm->vmas[i];

		if (!v || !vma_kind_ok(v->kind) || v->start >= v->end ||
		    v->start & (PAGE_SIZE_K - 1) || v->end & (PAGE_SIZE_K - 1) || v->start < prev_end ||
		    (v->end > ARCH_TASK_SIZE && v->kind != VMA_KIND__VMA_VSYSCALL) ||
		    v->pgoff & (PAGE_SIZE_K - 1) || v->pgoff > UINT64_MAX - (v->end - v->start) ||
		    v->prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC) ||
		    v->flags & ~(MAP_SHARED | MAP_PRIVATE | MAP_NORESERVE) ||
		    (v->has_thp_bytes && v->thp_bytes > v->end - v->start) ||
		    (v->has_thp_map && v->thp_map.len > thp_extents(v) / 8 + 1)) {
			log_err("mm-%u.img: mapping %zu (0x%" PRIx64 "-0x%" PRIx64 ") is invalid",
				pid, i, v ? v->start : 0, v ? v->end : 0);
			return -EINVAL;
		}
		if ((v->kind == VMA_KIND__VMA_FILE_PRIVATE || v->kind == VMA_KIND__VMA_FILE_SHARED) &&
		    (!v->has_file_id || !file_ref_ok(files, v->file_id))) {
			log_err("mm-%u.img: mapping 0x%" PRIx64 ": file %u is not in files.img", pid,
				v->start, v->file_id);
			return -EINVAL;
		}
		if (v->kind == VMA_KIND__VMA_SHMEM &&
		    (!v->has_shmem_id || !v->shmem_id || !shm || v->shmem_id > shm->n_entries)) {
			log_err("mm-%u.img: mapping 0x%" PRIx64 ": shared object %u is not in shmem.img",
				pid, v->start, v->shmem_id);
			return -EINVAL;
		}
		prev_end = v->end;
	}
	return 0;
}

/* The runs fill the pages image in order, as the dump writes them, each
 * inside one mapping. */
static int check_runs(const MmImage *mm, uint32_t pid)
{
	uint64_t next = 0;

	if (mm->pages_nr > ARCH_TASK_SIZE / PAGE_SIZE_K) {
		log_err("mm-%u.img: %" PRIu64 " pages", pid, mm->pages_nr);
		return -EINVAL;
	}
	for (size_t i = 0; i < mm->n_runs; i++) {
		const PageRun *r = mm->runs[i];
		bool inside = false;

		if (!r || r->off != next) {
			log_err("mm-%u.img: page run %zu is not where the previous one ends", pid, i);
			return -EINVAL;
		}
		if (!r->nr_pages || r->nr_pages > mm->pages_nr - r->off ||
		    r->vaddr & (PAGE_SIZE_K - 1) ||
		    (i && r->vaddr < mm->runs[i - 1]->vaddr + mm->runs[i - 1]->nr_pages * PAGE_SIZE_K))
			goto bad_run;
		for (size_t j = 0; j < mm->n_vmas && !inside; j++) {
			const VmaEntry *v = mm->vmas[j];

			inside = r->vaddr >= v->start && r->vaddr < v->end &&
				 r->nr_pages <= (v->end - r->vaddr) / PAGE_SIZE_K;
		}
		if (!inside)
			goto bad_run;
		next = r->off + r->nr_pages;
	}
	if (next != mm->pages_nr) {
		log_err("mm-%u.img: the page runs hold %" PRIu64 " pages, the image %" PRIu64,
			pid, next, mm->pages_nr);
		return -EINVAL;
	}
	return 0;
bad_run:
	log_err("mm-%u.img: a page run lies outside the mappings or the pages image", pid);
	return -EINVAL;
}

/* The run of @runs (in address order) holding @vaddr, or NULL. */
static const PageRun *run_at(PageRun *const *runs, size_t n, uint64_t vaddr)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const PageRun *r = runs[mid];

		if (vaddr < r->vaddr)
			hi = mid;
		else if ((vaddr - r->vaddr) / PAGE_SIZE_K >= r->nr_pages)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

const PageRun *ckpt_mm_run_at(const MmImage *mm, uint64_t vaddr, bool cow)
{
	return cow ? run_at(mm->cow_runs, mm->n_cow_runs, vaddr) : run_at(mm->runs, mm->n_runs, vaddr);
}

/*
 * The pages shared with the parent (cow_runs): in address order, counted
 * in order, each run inside one private anonymous mapping, none also in
 * the task's own runs.  That the parent has them is checked with the
 * whole image set (check_cow_parent).
 */
static int check_cow_runs(const MmImage *mm, uint32_t pid)
{
	uint64_t next = 0, prev_end = 0;
	size_t v = 0, o = 0;	/* mappings and own runs: in address order too */

	for (size_t i = 0; i < mm->n_cow_runs; i++) {
		const PageRun *r = mm->cow_runs[i];
		const VmaEntry *vma;

		if (!r || r->off != next || !r->nr_pages || r->nr_pages > ARCH_TASK_SIZE / PAGE_SIZE_K ||
		    r->vaddr & (PAGE_SIZE_K - 1) || r->vaddr < prev_end)
			goto bad;
		while (v < mm->n_vmas && mm->vmas[v]->end <= r->vaddr)
			v++;
		vma = v < mm->n_vmas ? mm->vmas[v] : NULL;
		if (!vma || vma->kind != VMA_KIND__VMA_ANON_PRIVATE || r->vaddr < vma->start ||
		    r->nr_pages > (vma->end - r->vaddr) / PAGE_SIZE_K)
			goto bad;
		while (o < mm->n_runs &&
		       mm->runs[o]->vaddr + mm->runs[o]->nr_pages * PAGE_SIZE_K <= r->vaddr)
			o++;
		if (o < mm->n_runs && mm->runs[o]->vaddr < r->vaddr + r->nr_pages * PAGE_SIZE_K)
			goto bad;
		next = r->off + r->nr_pages;
		prev_end = r->vaddr + r->nr_pages * PAGE_SIZE_K;
	}
	if (next != (mm->has_cow_pages_nr ? mm->cow_pages_nr : 0)) {
		log_err("mm-%u.img: the shared page runs hold %" PRIu64 " pages, the image says %" PRIu64,
			pid, next, mm->cow_pages_nr);
		return -EINVAL;
	}
	return 0;
bad:
	log_err("mm-%u.img: a run of pages shared with the parent is out of order, outside the "
		"private anonymous mappings, or also among the task's own pages", pid);
	return -EINVAL;
}

/* The entry of @pid among the entries before it (a parent), or -1. */
static long tree_index_of(const PstreeImage *pst, uint32_t pid)
{
	for (size_t i = 0; i < pst->n_entries; i++)
		if (pst->entries[i]->pid == pid)
			return i;
	return -1;
}

/* Every page @mm shares with its parent is in the parent's image: its own
 * page, or one the parent shares with its own parent (checked before). */
int ckpt_validate_cow(const MmImage *mm, const MmImage *pmm, uint32_t pid, uint32_t ppid)
{
	for (size_t i = 0; i < mm->n_cow_runs; i++) {
		const PageRun *r = mm->cow_runs[i];
		uint64_t vaddr = r->vaddr, left = r->nr_pages;

		while (left) {
			const PageRun *pr = pmm ? ckpt_mm_run_at(pmm, vaddr, false) : NULL;
			uint64_t have;

			if (!pr && pmm)
				pr = ckpt_mm_run_at(pmm, vaddr, true);
			if (!pr) {
				log_err("mm-%u.img: page 0x%" PRIx64 " is said to be shared with the "
					"parent (pid %u), whose image does not have it", pid, vaddr, ppid);
				return -EINVAL;
			}
			have = pr->nr_pages - (vaddr - pr->vaddr) / PAGE_SIZE_K;
			if (have > left)
				have = left;
			left -= have;
			vaddr += have * PAGE_SIZE_K;
		}
	}
	return 0;
}

/* The pieces' checksums of the pages image (chunk_sum), where it has
 * them: one per IMG_PAGES_CHUNK of it, and the whole's checksum theirs. */
static int check_chunk_sums(const MmImage *mm, uint32_t pid)
{
	if (!img_psum_kind_name(mm->pages_sum_kind)) {
		log_err("mm-%u.img: checksum kind %u of its page image is not known", pid,
			mm->pages_sum_kind);
		return -EINVAL;
	}
	if (!mm->n_chunk_sum)
		return 0;	/* an older image: one checksum of its bytes */
	if (mm->n_chunk_sum != img_psum_pieces(mm->pages_nr * PAGE_SIZE_K) ||
	    img_psum_of_sums(mm->pages_sum_kind, mm->chunk_sum, mm->n_chunk_sum) !=
	    mm->pages_sum) {
		log_err("mm-%u.img: %zu checksums of pieces of its %" PRIu64 " pages, not those "
			"of its page image", pid, mm->n_chunk_sum, mm->pages_nr);
		return -EINVAL;
	}
	return 0;
}

/* The hot pages (hot_runs, a lazy restore's first pass): at most 65536
 * runs, each inside one of the task's own runs, at its offset there. */
static int check_hot_runs(const MmImage *mm, uint32_t pid)
{
	if (mm->n_hot_runs > 65536) {
		log_err("mm-%u.img: %zu hot runs (at most 65536)", pid, mm->n_hot_runs);
		return -EINVAL;
	}
	for (size_t i = 0; i < mm->n_hot_runs; i++) {
		const PageRun *h = mm->hot_runs[i];
		const PageRun *r = run_at(mm->runs, mm->n_runs, h->vaddr);

		if (!r || h->vaddr % PAGE_SIZE_K || !h->nr_pages ||
		    h->nr_pages > r->nr_pages - (h->vaddr - r->vaddr) / PAGE_SIZE_K ||
		    h->off != r->off + (h->vaddr - r->vaddr) / PAGE_SIZE_K) {
			log_err("mm-%u.img: hot run %zu (0x%" PRIx64 ", %" PRIu64 " pages) is not "
				"inside one of its runs", pid, i, h->vaddr, h->nr_pages);
			return -EINVAL;
		}
	}
	return 0;
}

static int check_mm(const MmImage *mm, uint32_t pid, const struct idset *files,
		    const ShmemImage *shm)
{
	int ret;

	if (mm->pid != pid) {
		log_err("mm-%u.img: describes pid %u", pid, mm->pid);
		return -EINVAL;
	}
	ret = check_vmas(mm, pid, files, shm);
	if (!ret)
		ret = check_runs(mm, pid);
	if (!ret)
		ret = check_hot_runs(mm, pid);
	if (!ret)
		ret = check_chunk_sums(mm, pid);
	return ret ? ret : check_cow_runs(mm, pid);
}

int ckpt_validate_mm(const MmImage *mm, uint32_t pid, const FilesImage *files,
		     const ShmemImage *shm)
{
	struct idset ids;
	int ret = file_ids(files, &ids);

	if (!ret)
		ret = check_mm(mm, pid, &ids, shm);
	free(ids.v);
	return ret;
}

/* ---- shared memory --------------------------------------------------------- */

#define SHMEM_SIZE_MAX	(1ULL << 46)

/* A /dev/shm path restore may open or create: components below /dev/shm,
 * none empty, "." or "..". */
static bool shm_path_ok(const char *p)
{
	if (strncmp(p, "/dev/shm/", 9))
		return true;	/* not a /dev/shm object: a memfd name */
	for (const char *c = p + 9;;) {
		size_t l = strcspn(c, "/");

		if (!l || (l == 1 && c[0] == '.') || (l == 2 && c[0] == '.' && c[1] == '.') ||
		    l > 255)
			return false;
		if (!c[l])
			return true;
		c += l + 1;
	}
}

static int check_shmem_entry(const ShmemEntry *e, size_t i, const struct idset *files)
{
	uint64_t next = 0;

	if (!e || e->id != i + 1 || e->size > SHMEM_SIZE_MAX) {
		log_err("shmem.img: entry %zu: bad id %u or size %" PRIu64, i, e ? e->id : 0,
			e ? e->size : 0);
		return -EINVAL;
	}
	if (e->path && (strlen(e->path) > 4096 || !shm_path_ok(e->path))) {
		log_err("shmem.img: object %u: path %.64s cannot be recreated", e->id, e->path);
		return -EINVAL;
	}
	if (e->has_file_id && e->file_id && !idset_has(files, e->file_id)) {
		log_err("shmem.img: object %u: file %u is not in files.img", e->id, e->file_id);
		return -EINVAL;
	}
	for (size_t r = 0; r < e->n_runs; r++) {
		const PageRun *run = e->runs[r];

		if (!run || run->off != next || !run->nr_pages ||
		    run->nr_pages > SHMEM_SIZE_MAX / PAGE_SIZE_K || run->vaddr & (PAGE_SIZE_K - 1) ||
		    run->vaddr > PAGE_ALIGN_K(e->size) ||
		    run->nr_pages > (PAGE_ALIGN_K(e->size) - run->vaddr) / PAGE_SIZE_K) {
			log_err("shmem.img: object %u: run %zu lies outside the object", e->id, r);
			return -EINVAL;
		}
		next = run->off + run->nr_pages;
	}
	return 0;
}

static int check_shmem(const ShmemImage *shm, const struct idset *files)
{
	for (size_t i = 0; shm && i < shm->n_entries; i++) {
		int ret = check_shmem_entry(shm->entries[i], i, files);

		if (ret)
			return ret;
	}
	return 0;
}

int ckpt_validate_shmem(const ShmemImage *shm, const FilesImage *files)
{
	struct idset ids;
	int ret = file_ids(files, &ids);

	if (!ret)
		ret = check_shmem(shm, &ids);
	free(ids.v);
	return ret;
}

int ckpt_validate_shmem_pages(const ShmemEntry *e, size_t len)
{
	uint64_t pages = len / PAGE_SIZE_K;

	if (len % PAGE_SIZE_K) {
		log_err("image shmem-%u.img: %zu bytes, not whole pages", e->id, len);
		return -EINVAL;
	}
	for (size_t r = 0; r < e->n_runs; r++)
		if (e->runs[r]->nr_pages > pages || e->runs[r]->off > pages - e->runs[r]->nr_pages) {
			log_err("image shmem-%u.img: run %zu is past its %" PRIu64 " pages", e->id, r,
				pages);
			return -EINVAL;
		}
	return 0;
}

/* ---- the whole set ------------------------------------------------------- */

/* The clocks restore computes offsets from (clocks.c): ±146 years leaves
 * room for any arithmetic on them. */
static int check_inventory_clocks(const InventoryEntry *inv)
{
	const int64_t lim = INT64_C(1) << 62;
	const struct { bool has; int64_t v; const char *what; } c[] = {
		{ inv->has_mono_ns, inv->mono_ns, "monotonic clock" },
		{ inv->has_boottime_ns, inv->boottime_ns, "boot clock" },
		{ inv->has_timens_mono_off_ns, inv->timens_mono_off_ns, "monotonic offset" },
		{ inv->has_timens_boot_off_ns, inv->timens_boot_off_ns, "boot clock offset" },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		if (c[i].has && (c[i].v > lim || c[i].v < -lim)) {
			log_err("inventory.img: %s of %" PRId64 " ns is out of range", c[i].what, c[i].v);
			return -EINVAL;
		}
	return 0;
}

static ssize_t pst_index(const struct ckpt_images *im, uint32_t pid)
{
	for (size_t i = 0; i < im->n; i++)
		if (im->pst->entries[i]->pid == pid)
			return i;
	return -1;
}

/*
 * Shared fd tables (fdtable_entry.files_of): the table is that of a live
 * process with a table of its own, and the sharer's parent shares it too
 * (the restore creates the sharer with CLONE_FILES from its parent).
 */
static int check_shared_fdtables(const struct ckpt_images *im)
{
	for (size_t i = 0; i < im->n; i++) {
		const FdtableEntry *t = im->fdt[i];
		const PstreeEntry *pe = im->pst->entries[i];
		ssize_t o, pp;

		if (!t || !t->has_files_of)
			continue;
		o = pst_index(im, t->files_of);
		pp = i ? pst_index(im, pe->ppid) : -1;
		if (o < 0 || !im->fdt[o] || im->fdt[o]->has_files_of || pp < 0 || !im->fdt[pp] ||
		    ((size_t)pp != (size_t)o &&
		     !(im->fdt[pp]->has_files_of && im->fdt[pp]->files_of == t->files_of))) {
			log_err("fdtable.img: pid %u shares the fd table of pid %u, which is not a "
				"table its parent %u has", pe->pid, t->files_of, pe->ppid);
			return -EINVAL;
		}
	}
	return 0;
}

int ckpt_images_validate(const struct ckpt_images *im)
{
	struct idset files = { 0 };
	int ret;

	if (!im->inv || !im->pst || !im->files || !im->fdtab || !im->shm) {
		log_err("image set: an image is missing");
		return -EINVAL;
	}
	if (im->inv->format_version != IMG_FORMAT_VERSION) {
		log_err("inventory.img: image format %u is not supported", im->inv->format_version);
		return -EINVAL;
	}
	ret = check_inventory_clocks(im->inv);
	if (!ret)
		ret = ckpt_validate_pstree(im->pst, im->inv->root_pid, im->inv->shell_job);
	if (!ret)
		ret = files_validate_image(im->files);
	if (!ret)
		ret = file_ids(im->files, &files);
	if (!ret)
		ret = check_shmem(im->shm, &files);
	for (size_t i = 0; i < im->n && !ret; i++) {
		const PstreeEntry *pe = im->pst->entries[i];

		if (pe->state == TASK_STATE__TASK_ZOMBIE)
			continue;
		if (!im->core[i] || !im->mm[i] || !im->fdt[i]) {
			log_err("image set: pid %u: its core, mm or fd table image is missing", pe->pid);
			ret = -EINVAL;
			break;
		}
		ret = check_core(im->core[i], pe, &files);
		if (!ret)
			ret = check_mm(im->mm[i], pe->pid, &files, im->shm);
		if (!ret)
			ret = files_validate_fdtable(im->files, im->fdt[i]);
		/* parents come first (ckpt_validate_pstree): already checked */
		if (!ret && im->mm[i]->n_cow_runs) {
			long up = i ? tree_index_of(im->pst, pe->ppid) : -1;

			ret = ckpt_validate_cow(im->mm[i], up >= 0 ? im->mm[up] : NULL, pe->pid, pe->ppid);
		}
	}
	if (!ret)
		ret = check_shared_fdtables(im);
	free(files.v);
	return ret;
}

/* ---- loading ------------------------------------------------------------ */

static int read_one(struct img_store *st, const char *name, enum img_kind kind,
		    const ProtobufCMessageDescriptor *desc, void *out)
{
	int ret = img_read_msg(st, name, kind, desc, (ProtobufCMessage **)out);

	if (ret == -ENOENT)
		log_errno(ENOENT, "%s: %s missing", st->where, name);
	return ret;
}

int ckpt_images_load(struct img_store *st, struct ckpt_images *im)
{
	char name[64];
	int ret;

	memset(im, 0, sizeof(*im));
	ret = img_read_msg(st, "inventory.img", IMG_INVENTORY, &inventory_entry__descriptor,
			   (ProtobufCMessage **)&im->inv);
	if (ret == -ENOENT)
		log_err("%s: no complete checkpoint here (inventory.img is missing)", st->where);
	if (!ret)
		ret = read_one(st, "pstree.img", IMG_PSTREE, &pstree_image__descriptor, &im->pst);
	if (!ret)
		ret = read_one(st, "files.img", IMG_FILES, &files_image__descriptor, &im->files);
	if (!ret)
		ret = read_one(st, "fdtable.img", IMG_FDTABLE, &fdtable_image__descriptor, &im->fdtab);
	if (!ret)
		ret = read_one(st, "shmem.img", IMG_SHMEM, &shmem_image__descriptor, &im->shm);
	if (ret)
		goto fail;
	if (im->inv->format_version != IMG_FORMAT_VERSION) {
		log_err("%s: image format %u is not supported", st->where, im->inv->format_version);
		ret = -EINVAL;
		goto fail;
	}
	/* the tree first: its pids name the other images */
	ret = ckpt_validate_pstree(im->pst, im->inv->root_pid, im->inv->shell_job);
	if (ret)
		goto fail;
	im->n = im->pst->n_entries;
	im->core = calloc(im->n, sizeof(*im->core));
	im->mm = calloc(im->n, sizeof(*im->mm));
	im->fdt = calloc(im->n, sizeof(*im->fdt));
	if (!im->core || !im->mm || !im->fdt) {
		ret = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < im->n; i++) {
		const PstreeEntry *pe = im->pst->entries[i];

		if (pe->state == TASK_STATE__TASK_ZOMBIE)
			continue;
		snprintf(name, sizeof(name), "core-%u.img", pe->pid);
		ret = read_one(st, name, IMG_CORE, &core_entry__descriptor, &im->core[i]);
		if (ret)
			goto fail;
		snprintf(name, sizeof(name), "mm-%u.img", pe->pid);
		ret = read_one(st, name, IMG_MM, &mm_image__descriptor, &im->mm[i]);
		if (ret)
			goto fail;
		for (size_t t = 0; t < im->fdtab->n_tables; t++)
			if (im->fdtab->tables[t] && im->fdtab->tables[t]->pid == pe->pid) {
				if (im->fdt[i]) {
					log_err("fdtable.img: two fd tables for pid %u", pe->pid);
					ret = -EINVAL;
					goto fail;
				}
				im->fdt[i] = im->fdtab->tables[t];
			}
		if (!im->fdt[i]) {
			log_err("fdtable.img: no fd table for pid %u", pe->pid);
			ret = -EINVAL;
			goto fail;
		}
	}
	ret = ckpt_images_validate(im);
	if (!ret)
		return 0;
fail:
	ckpt_images_free(im);
	return ret;
}

void ckpt_images_free(struct ckpt_images *im)
{
	for (size_t i = 0; i < im->n; i++) {
		if (im->core && im->core[i])
			core_entry__free_unpacked(im->core[i], NULL);
		if (im->mm && im->mm[i])
			mm_image__free_unpacked(im->mm[i], NULL);
	}
	free(im->core);
	free(im->mm);
	free(im->fdt);
	if (im->inv)
		inventory_entry__free_unpacked(im->inv, NULL);
	if (im->pst)
		pstree_image__free_unpacked(im->pst, NULL);
	if (im->files)
		files_image__free_unpacked(im->files, NULL);
	if (im->fdtab)
		fdtable_image__free_unpacked(im->fdtab, NULL);
	if (im->shm)
		shmem_image__free_unpacked(im->shm, NULL);
	memset(im, 0, sizeof(*im));
}
