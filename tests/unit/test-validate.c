// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The cross-checks of an image set (ckpt-core/validate.c): a sane tree,
 * memory layout and shared-memory image pass; each kind of lie is refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ckpt-images.h"
#include "internal.h"

/* ---- the tree: root 100, children 101 (a group leader) and 102 (2 threads) */

struct tree {
	PstreeEntry e[3], *pe[3];
	uint32_t tids[3][2];
	PstreeImage img;
};

static void tree_init(struct tree *t)
{
	static const uint32_t pid[3] = { 100, 101, 102 }, ppid[3] = { 0, 100, 100 };

	pstree_image__init(&t->img);
	for (int i = 0; i < 3; i++) {
		pstree_entry__init(&t->e[i]);
		t->e[i].pid = pid[i];
		t->e[i].ppid = ppid[i];
		t->e[i].sid = 100;
		t->e[i].pgid = i == 1 ? 101 : 100;
		t->e[i].state = TASK_STATE__TASK_ALIVE;
		t->tids[i][0] = pid[i];
		t->tids[i][1] = 200 + i;
		t->e[i].threads = t->tids[i];
		t->e[i].n_threads = i == 2 ? 2 : 1;
		t->pe[i] = &t->e[i];
	}
	t->img.entries = t->pe;
	t->img.n_entries = 3;
}

static int tree_check(struct tree *t)
{
	return ckpt_validate_pstree(&t->img, 100, false);
}

static void test_tree_sane(void **state)
{
	struct tree t;
	uint32_t *ids;
	size_t n;

	tree_init(&t);
	assert_int_equal(tree_check(&t), 0);
	assert_int_equal(ckpt_pstree_ids(&t.img, 100, false, &ids, &n), 0);
	assert_int_equal(n, 4);		/* 100 101 102 202 */
	assert_int_equal(ids[0], 100);
	assert_int_equal(ids[3], 202);
	free(ids);
}

static void test_tree_lies(void **state)
{
	struct tree t;

	log_set_level(-1);
	tree_init(&t); t.e[1].ppid = 101;			/* self-parent */
	assert_int_equal(tree_check(&t), -EINVAL);
	tree_init(&t); t.e[1].ppid = 102; t.e[2].ppid = 101;	/* cycle */
	assert_int_equal(tree_check(&t), -EINVAL);
	tree_init(&t); t.e[2].ppid = 4000;			/* missing parent */
	assert_int_equal(tree_check(&t), -EINVAL);
	tree_init(&t); t.e[1].ppid = 102;			/* listed before its parent */
	assert_int_equal(tree_check(&t), -EINVAL);
	tree_init(&t); t.e[2].pid = t.tids[2][0] = 101;		/* duplicate pid */
	assert_int_equal(tree_check(&t), -EINVAL);
	tree_init(&t); t.tids[2][1] = 101;			/* a tid that is a pid */
	assert_int_equal(tree_check(&t), -EINVAL);
	tree_init(&t); t.tids[2][0] = 202;			/* thread list not led by the pid */
	assert_int_equal(tree_check(&t), -EINVAL);
	tree_init(&t); t.e[2].pid = t.tids[2][0] = 5000000;	/* pid out of range */
	assert_int_equal(tree_check(&t), -EINVAL);
	tree_init(&t); t.pe[0] = &t.e[1]; t.pe[1] = &t.e[0];	/* root not first */
	assert_int_equal(tree_check(&t), -EINVAL);
	tree_init(&t); t.e[0].state = TASK_STATE__TASK_ZOMBIE;	/* a zombie root */
	assert_int_equal(tree_check(&t), -EINVAL);
	tree_init(&t); t.e[1].state = TASK_STATE__TASK_ZOMBIE; t.e[2].ppid = 101;
	assert_int_equal(tree_check(&t), -EINVAL);		/* a zombie's child */
	tree_init(&t); t.e[1].state = 9;			/* unknown state */
	assert_int_equal(tree_check(&t), -EINVAL);
	tree_init(&t); t.e[2].pgid = 4000;			/* group of nothing */
	assert_int_equal(tree_check(&t), -EINVAL);
	tree_init(&t); t.e[2].pgid = 101; t.e[1].pgid = 100;	/* a leader that is not one */
	assert_int_equal(tree_check(&t), -EINVAL);
	tree_init(&t); t.e[2].sid = 4000;			/* session of nothing */
	assert_int_equal(tree_check(&t), -EINVAL);
	tree_init(&t); t.e[1].sid = 101;			/* a session leader in group 101: ok */
	assert_int_equal(tree_check(&t), 0);
	t.e[1].pgid = 100;					/* ... but not in another */
	assert_int_equal(tree_check(&t), -EINVAL);
	tree_init(&t); t.e[0].sid = 7;				/* the root in an outside session */
	assert_int_equal(tree_check(&t), -EINVAL);		/* ... its children not */
	t.e[1].sid = t.e[2].sid = 7;
	assert_int_equal(ckpt_validate_pstree(&t.img, 100, true), 0);	/* a shell job */
	assert_int_equal(tree_check(&t), 0);	/* a daemon: its session leader had exited */
	t.e[2].pgid = 7;					/* ... and its group */
	assert_int_equal(tree_check(&t), 0);
	t.e[2].pgid = 8;
	assert_int_equal(tree_check(&t), -EINVAL);
	t.e[2].pgid = 100;
	t.e[0].sid = t.e[1].sid = t.e[2].sid = 202;		/* a session of a thread's id */
	assert_int_equal(tree_check(&t), -EINVAL);
	tree_init(&t); t.e[0].sid = t.e[1].sid = t.e[2].sid = 101;	/* led by a child */
	assert_int_equal(tree_check(&t), -EINVAL);
	tree_init(&t);
	assert_int_equal(ckpt_validate_pstree(&t.img, 101, false), -EINVAL);	/* another root */
	t.img.n_entries = 0;
	assert_int_equal(tree_check(&t), -EINVAL);
	log_set_level(LOG_LVL_INFO);
}

/* ---- memory: two mappings, a file one (file 1) and a shared one (object 1) */

struct mm {
	VmaEntry v[3], *pv[3];
	PageRun r[2], *pr[2];
	PageRun c[2], *pc[2];	/* shared with the parent, in the anonymous mapping */
	PageRun h, *ph[1];	/* hot (none unless a test sets hot_runs) */
	MmImage img;
	FileEntry fe, *pfe;
	FilesImage files;
	ShmemEntry se, *pse;
	ShmemImage shm;
};

static void mm_init(struct mm *m)
{
	mm_image__init(&m->img);
	for (int i = 0; i < 3; i++) {
		vma_entry__init(&m->v[i]);
		m->pv[i] = &m->v[i];
	}
	m->v[0].start = 0x400000; m->v[0].end = 0x404000;
	m->v[0].kind = VMA_KIND__VMA_FILE_PRIVATE;
	m->v[0].has_file_id = true; m->v[0].file_id = 1;
	m->v[1].start = 0x500000; m->v[1].end = 0x502000;
	m->v[1].kind = VMA_KIND__VMA_SHMEM;
	m->v[1].has_shmem_id = true; m->v[1].shmem_id = 1;
	m->v[2].start = 0x7f0000000000; m->v[2].end = 0x7f0000010000;
	m->v[2].kind = VMA_KIND__VMA_ANON_PRIVATE;
	for (int i = 0; i < 2; i++) {
		page_run__init(&m->r[i]);
		m->pr[i] = &m->r[i];
	}
	m->r[0].vaddr = 0x401000; m->r[0].nr_pages = 2; m->r[0].off = 0;
	m->r[1].vaddr = 0x7f0000008000; m->r[1].nr_pages = 8; m->r[1].off = 2;
	m->img.pid = 100;
	m->img.vmas = m->pv; m->img.n_vmas = 3;
	m->img.runs = m->pr; m->img.n_runs = 2;
	m->img.pages_nr = 10;
	for (int i = 0; i < 2; i++) {
		page_run__init(&m->c[i]);
		m->pc[i] = &m->c[i];
	}
	m->c[0].vaddr = 0x7f0000000000; m->c[0].nr_pages = 4; m->c[0].off = 0;
	m->c[1].vaddr = 0x7f0000005000; m->c[1].nr_pages = 2; m->c[1].off = 4;
	m->img.cow_runs = m->pc; m->img.n_cow_runs = 2;
	m->img.has_cow_pages_nr = true; m->img.cow_pages_nr = 6;
	page_run__init(&m->h);
	m->ph[0] = &m->h;
	file_entry__init(&m->fe);
	m->fe.id = 1;
	m->fe.kind = FILE_KIND__FILE_REG;
	m->pfe = &m->fe;
	files_image__init(&m->files);
	m->files.files = &m->pfe; m->files.n_files = 1;
	shmem_entry__init(&m->se);
	m->se.id = 1;
	m->se.size = 8192;
	m->pse = &m->se;
	shmem_image__init(&m->shm);
	m->shm.entries = &m->pse; m->shm.n_entries = 1;
}

static int mm_check(struct mm *m)
{
	return ckpt_validate_mm(&m->img, 100, &m->files, &m->shm);
}

static void test_mm(void **state)
{
	struct mm m;

	mm_init(&m);
	assert_int_equal(mm_check(&m), 0);
	log_set_level(-1);
	assert_int_equal(ckpt_validate_mm(&m.img, 101, &m.files, &m.shm), -EINVAL);	/* another pid */
	mm_init(&m); m.v[1].start = 0x403000;			/* overlapping mappings */
	assert_int_equal(mm_check(&m), -EINVAL);
	mm_init(&m); m.v[0].end = 0x400000;			/* empty mapping */
	assert_int_equal(mm_check(&m), -EINVAL);
	mm_init(&m); m.v[2].start += 12;			/* unaligned */
	assert_int_equal(mm_check(&m), -EINVAL);
	mm_init(&m); m.v[2].end = 0xfffffffffffff000;		/* above the task size */
	assert_int_equal(mm_check(&m), -EINVAL);
	mm_init(&m); m.v[0].pgoff = 0xfffffffffffff000;		/* pgoff + length overflows */
	assert_int_equal(mm_check(&m), -EINVAL);
	mm_init(&m); m.v[2].kind = 42;				/* unknown kind */
	assert_int_equal(mm_check(&m), -EINVAL);
	mm_init(&m); m.v[0].file_id = 2;			/* a file not in files.img */
	assert_int_equal(mm_check(&m), -EINVAL);
	mm_init(&m); m.v[0].has_file_id = false;
	assert_int_equal(mm_check(&m), -EINVAL);
	mm_init(&m); m.v[1].shmem_id = 2;			/* an object not in shmem.img */
	assert_int_equal(mm_check(&m), -EINVAL);
	mm_init(&m); m.r[0].vaddr = 0x300000;			/* a run outside every mapping */
	assert_int_equal(mm_check(&m), -EINVAL);
	mm_init(&m); m.r[0].nr_pages = 4; m.r[1].off = 4; m.img.pages_nr = 12;
	assert_int_equal(mm_check(&m), -EINVAL);		/* past its mapping's end */
	mm_init(&m); m.r[0].vaddr += 8;				/* unaligned run */
	assert_int_equal(mm_check(&m), -EINVAL);
	mm_init(&m); m.r[1].off = 3;				/* not where the previous ends */
	assert_int_equal(mm_check(&m), -EINVAL);
	mm_init(&m); m.img.pages_nr = 11;			/* pages the runs do not hold */
	assert_int_equal(mm_check(&m), -EINVAL);
	mm_init(&m); m.img.pages_nr = 9;			/* runs past the pages image */
	assert_int_equal(mm_check(&m), -EINVAL);
	mm_init(&m); m.r[1].nr_pages = 0; m.img.pages_nr = 2;	/* an empty run */
	assert_int_equal(mm_check(&m), -EINVAL);
	mm_init(&m); m.r[1].nr_pages = UINT64_MAX - 1;		/* overflow */
	assert_int_equal(mm_check(&m), -EINVAL);
	/* pages shared with the parent */
	mm_init(&m); m.c[1].nr_pages = 4; m.img.cow_pages_nr = 8;	/* onto its own pages */
	assert_int_equal(mm_check(&m), -EINVAL);
	mm_init(&m); m.c[0].vaddr = 0x401000;			/* in a file mapping */
	assert_int_equal(mm_check(&m), -EINVAL);
	mm_init(&m); m.c[0].vaddr = 0x7f0000006000; m.c[1].vaddr = 0x7f0000000000;
	assert_int_equal(mm_check(&m), -EINVAL);		/* out of order */
	mm_init(&m); m.img.cow_pages_nr = 7;			/* not what the runs count */
	assert_int_equal(mm_check(&m), -EINVAL);
	mm_init(&m); m.c[1].off = 3;				/* not where the previous ends */
	assert_int_equal(mm_check(&m), -EINVAL);
	mm_init(&m); m.c[0].nr_pages = 0; m.img.cow_pages_nr = 2;	/* an empty run */
	assert_int_equal(mm_check(&m), -EINVAL);
	mm_init(&m); m.c[1].nr_pages = UINT64_MAX - 1;		/* overflow */
	assert_int_equal(mm_check(&m), -EINVAL);
	mm_init(&m); m.r[0].vaddr = 0x7f0000000000; m.r[1].vaddr = 0x401000; m.r[1].nr_pages = 2;
	m.r[0].nr_pages = 8; m.r[1].off = 8; m.img.n_cow_runs = 0; m.img.cow_pages_nr = 0;
	assert_int_equal(mm_check(&m), -EINVAL);		/* own runs out of order */
	/* the hot pages (a lazy restore's first pass): inside one own run */
	mm_init(&m); m.img.hot_runs = m.ph; m.img.n_hot_runs = 1;
	m.h.vaddr = 0x7f000000a000; m.h.nr_pages = 3; m.h.off = 4;
	assert_int_equal(mm_check(&m), 0);
	m.h.off = 5;						/* not at its offset there */
	assert_int_equal(mm_check(&m), -EINVAL);
	m.h.off = 4; m.h.nr_pages = 7;				/* past the run's end */
	assert_int_equal(mm_check(&m), -EINVAL);
	m.h.nr_pages = UINT64_MAX;				/* overflow */
	assert_int_equal(mm_check(&m), -EINVAL);
	m.h.nr_pages = 0;					/* empty */
	assert_int_equal(mm_check(&m), -EINVAL);
	m.h.vaddr = 0x7f0000000000; m.h.nr_pages = 1; m.h.off = 0;	/* in no own run */
	assert_int_equal(mm_check(&m), -EINVAL);
	m.h.vaddr = 0x7f000000a008; m.h.off = 4;		/* unaligned */
	assert_int_equal(mm_check(&m), -EINVAL);
	/* the pieces' checksums: one per MiB of the image, theirs the whole's */
	{
		uint64_t sums[2] = { 0x1234, 0x5678 };

		mm_init(&m); m.img.n_cow_runs = 0; m.img.cow_pages_nr = 0;
		m.r[1].vaddr = 0x7f0000000000; m.r[1].nr_pages = 16;
		m.v[2].end = 0x7f0000010000;
		m.img.pages_nr = 18;
		assert_int_equal(mm_check(&m), 0);		/* none: an older image */
		m.img.chunk_sum = sums; m.img.n_chunk_sum = 1;
		m.img.pages_sum = img_psum_of_sums(IMG_PSUM_XXH64, sums, 1);
		assert_int_equal(mm_check(&m), 0);		/* 18 pages: one piece */
		m.img.pages_sum_kind = IMG_PSUM_XXH3;		/* ... of another kind */
		assert_int_equal(mm_check(&m), -EINVAL);
		m.img.pages_sum = img_psum_of_sums(IMG_PSUM_XXH3, sums, 1);
		assert_int_equal(mm_check(&m), 0);
		m.img.pages_sum_kind = 2;			/* no such kind */
		assert_int_equal(mm_check(&m), -EINVAL);
		m.img.pages_sum_kind = IMG_PSUM_XXH64;
		m.img.pages_sum = img_psum_of_sums(IMG_PSUM_XXH64, sums, 1);
		m.img.pages_sum ^= 1;				/* not theirs */
		assert_int_equal(mm_check(&m), -EINVAL);
		m.img.n_chunk_sum = 2;			/* one too many */
		m.img.pages_sum = img_psum_of_sums(IMG_PSUM_XXH64, sums, 2);
		assert_int_equal(mm_check(&m), -EINVAL);
	}
	log_set_level(LOG_LVL_INFO);
}

/* A child's shared pages must be in its parent's image. */
static void test_cow_parent(void **state)
{
	struct mm parent, child;

	mm_init(&parent);	/* own: 0x7f0000008000 8 pages; shared: 0-4, 5-7 */
	parent.img.n_cow_runs = 0;
	mm_init(&child);
	child.r[1].vaddr = 0x7f000000e000; child.r[1].nr_pages = 2; child.img.pages_nr = 4;
	child.c[0].vaddr = 0x7f0000008000; child.c[0].nr_pages = 6; child.c[0].off = 0;
	child.img.n_cow_runs = 1; child.img.cow_pages_nr = 6;
	assert_int_equal(ckpt_validate_mm(&child.img, 100, &child.files, &child.shm), 0);
	assert_int_equal(ckpt_validate_cow(&child.img, &parent.img, 101, 100), 0);
	log_set_level(-1);
	child.c[0].vaddr = 0x7f0000007000;			/* a page before the parent's */
	assert_int_equal(ckpt_validate_cow(&child.img, &parent.img, 101, 100), -EINVAL);
	child.c[0].vaddr = 0x7f0000008000;
	assert_int_equal(ckpt_validate_cow(&child.img, NULL, 101, 0), -EINVAL);	/* the root */
	log_set_level(LOG_LVL_INFO);
	/* the parent's own shared pages count: in turn its parent's */
	parent.img.n_cow_runs = 2;
	child.c[0].vaddr = 0x7f0000000000; child.c[0].nr_pages = 4;
	child.img.cow_pages_nr = 4;
	assert_int_equal(ckpt_validate_cow(&child.img, &parent.img, 101, 100), 0);
	child.c[0].nr_pages = 5; child.img.cow_pages_nr = 5;	/* 0x7f0000004000: nobody's */
	log_set_level(-1);
	assert_int_equal(ckpt_validate_cow(&child.img, &parent.img, 101, 100), -EINVAL);
	log_set_level(LOG_LVL_INFO);
}

static void test_shmem(void **state)
{
	struct mm m;
	PageRun r = PAGE_RUN__INIT, *pr = &r;

	mm_init(&m);
	m.se.runs = &pr;
	m.se.n_runs = 1;
	r.vaddr = 4096;
	r.nr_pages = 1;
	assert_int_equal(ckpt_validate_shmem(&m.shm, &m.files), 0);
	assert_int_equal(ckpt_validate_shmem_pages(&m.se, 4096), 0);
	log_set_level(-1);
	assert_int_equal(ckpt_validate_shmem_pages(&m.se, 0), -EINVAL);	/* past the image */
	assert_int_equal(ckpt_validate_shmem_pages(&m.se, 100), -EINVAL);	/* not whole pages */
	r.vaddr = 8192;						/* past the object */
	assert_int_equal(ckpt_validate_shmem(&m.shm, &m.files), -EINVAL);
	r.vaddr = 4096; r.nr_pages = 2;
	assert_int_equal(ckpt_validate_shmem(&m.shm, &m.files), -EINVAL);
	r.nr_pages = 1; m.se.id = 2;				/* ids 1..n in order */
	assert_int_equal(ckpt_validate_shmem(&m.shm, &m.files), -EINVAL);
	m.se.id = 1; m.se.size = 1ULL << 50;			/* size */
	assert_int_equal(ckpt_validate_shmem(&m.shm, &m.files), -EINVAL);
	m.se.size = 8192;
	m.se.path = "/dev/shm/../etc/shadow";			/* paths */
	assert_int_equal(ckpt_validate_shmem(&m.shm, &m.files), -EINVAL);
	m.se.path = "/dev/shm/..";
	assert_int_equal(ckpt_validate_shmem(&m.shm, &m.files), -EINVAL);
	m.se.path = "/dev/shm/";
	assert_int_equal(ckpt_validate_shmem(&m.shm, &m.files), -EINVAL);
	m.se.path = "/dev/shm/a//b";
	assert_int_equal(ckpt_validate_shmem(&m.shm, &m.files), -EINVAL);
	m.se.path = "/dev/shm/kup-test";
	assert_int_equal(ckpt_validate_shmem(&m.shm, &m.files), 0);
	m.se.has_file_id = true; m.se.file_id = 9;		/* file ids */
	assert_int_equal(ckpt_validate_shmem(&m.shm, &m.files), -EINVAL);
	log_set_level(LOG_LVL_INFO);
}

/* The in-memory store: blobs found by name, a cut one dropped. */
static void test_mem_store(void **state)
{
	struct img_store *st;
	struct img_blob b;
	char *buf;
	size_t len;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(img_mem_put(f, "a.img", "xyz", 3), 0);
	assert_int_equal(img_mem_put(f, "b.img", "", 0), 0);
	assert_int_equal(img_mem_put(f, "c.img", "12345678", 8), 0);
	fclose(f);
	assert_int_equal(img_store_open_mem(buf, len - 1, &st), 0);	/* c.img cut */
	assert_int_equal(st->ops->open(st, "a.img", &b), 0);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, "xyz", 3);
	st->ops->release(st, &b);
	assert_int_equal(st->ops->open(st, "b.img", &b), 0);
	assert_int_equal(b.len, 0);
	st->ops->release(st, &b);
	assert_int_equal(st->ops->open(st, "c.img", &b), -ENOENT);
	assert_int_equal(st->ops->open(st, "d.img", &b), -ENOENT);
	st->ops->close(st);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tree_sane),
		cmocka_unit_test(test_tree_lies),
		cmocka_unit_test(test_mm),
		cmocka_unit_test(test_cow_parent),
		cmocka_unit_test(test_shmem),
		cmocka_unit_test(test_mem_store),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
