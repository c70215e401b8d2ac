/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The restore's state shared by its parts: restore.c (the tree, stubs,
 * takeover of each task) and mem-restore.c (the address space).
 */
#ifndef KUP_RESTORE_H
#define KUP_RESTORE_H

#include <sched.h>

#include "ckpt-images.h"
#include "internal.h"

#define MAX_KEEP 256

struct range { unsigned long start, end; };

struct rproc {
	PstreeEntry *pe;
	CoreEntry *core;
	MmImage *mm;
	FdtableEntry *fdt;
	int ctl[2];
	bool alive;
	/* keep slots: 0 = ctl socket, then one per mapped file / shmem / exe */
	int nkeep;
	int keep_src[MAX_KEEP];		/* fd in the restorer */
	uint32_t keep_id[MAX_KEEP];	/* file id, or SHM_KEY|shmem id */
	int keep[MAX_KEEP];		/* fd in the stub after files_install */
	/* fd tables shared with CLONE_FILES (fdtable_entry.files_of): the
	 * index of the task whose table this one shares, or -1; the owner's
	 * count of the keep fds of its sharers (installed after its own) */
	int files_owner;
	int nkeep_shared;
	unsigned long tramp;
	struct img_blob pages;
	bool pages_open;
	bool seized;
	pid_t *seized_tids;
	int nseized;
	bool pinned;		/* on rctx.pin_cpu until complete; its CPUs were @cpus */
	cpu_set_t cpus;
	uint8_t *cow;		/* per mapping: enum cow_state (mem-restore.c) */
	uint8_t *lazy;		/* per mapping: enum lazy_kind, its pages come lazily (lazy.c) */
	uint8_t *pages_ok;	/* a mapped pages image with pieces' checksums: per piece,
				 * checked (pages_check) */
};

enum lazy_kind {
	LAZY_NO,
	LAZY_SMALL,		/* filled a few pages at a fault */
	LAZY_HUGE,		/* filled 2 MiB at a time, whole extents collapsed */
};

int pages_check(struct rproc *p, uint64_t off, uint64_t len);

/* transparent huge pages (mem-restore.c) */
#define THP_SIZE (2UL << 20)
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
bool thp_wanted(const struct rproc *p, const VmaEntry *v);
bool thp_whole_in_image(const MmImage *mm, uint64_t s, uint64_t e);
bool thp_was_huge(const VmaEntry *v, uint64_t a);

/* A private anonymous mapping and the children sharing it (mem-restore.c) */
enum cow_state {
	COW_NONE,		/* mapped and filled at the takeover */
	COW_WANTED,		/* children share it: the stub maps it before forking them */
	COW_INHERITED,		/* the parent's, kept by the stub: filled before the fork */
	COW_PREMAPPED,		/* mapped by the stub: filled before the fork */
};

#define SHM_KEY 0x80000000u
/* keep_id of the tree's user namespace (rctx.userns_fd, shared by all) */
#define KEEP_USERNS 0x10000000u

struct rctx {
	const struct ckpt_restore_opts *o;
	struct img_store *st;
	struct ckpt_images im;	/* owns the images below */
	InventoryEntry *inv;
	PstreeImage *pst;
	FilesImage *files;
	FdtableImage *fdtab;
	ShmemImage *shm;
	struct files_rst *fr;
	int *shm_fds;
	struct ipc_rst *ipc;	/* System V objects */
	bool ipc_done;		/* restored: kept when the context goes */
	bool *shm_made;		/* /dev/shm objects this restore created */
	struct rproc *p;
	int n;
	pid_t restorer;		/* our pid: the parent of the root task */
	pid_t helper;		/* the session helper's pid (the dead session leader's), or 0 */
	bool helper_up;		/* ... it was created (and is not reaped yet) */
	/* the running kernel's vDSO, seen in the restorer */
	unsigned long vdso_start, vdso_size;
	uint32_t vdso_crc;
	VdsoSymtab cur_syms;
	struct range specials[4];
	int nspecials;
	/* where the memory's time went (restore_pages), logged at -v */
	uint64_t ns_read, ns_sum, ns_write, bytes_read;
	bool fill_two;		/* some pages filled on two CPUs: the times are sums */
	/* ... and the syscalls injected at the takeovers */
	uint64_t n_inj, ns_inj;
	/* the CPU the restorer and the task it takes over share (pin_cpu,
	 * -1: none), and the restorer's own CPUs before (restore.c) */
	int pin_cpu;
	cpu_set_t restorer_cpus;
	uint64_t ns_phase;	/* the start of the phase under way (phase_done) */
	/* lazy restore (lazy.c): the pages server and our end of its socket */
	pid_t lazy_pid;
	int lazy_sock;
	/* the tree's user namespace, made for it (mntns.c), or -1; then
	 * ns_last_pid, by which its threads get their tids */
	int userns_fd;
	int last_pid_fd;
};

struct takeover {
	struct rctx *c;
	struct rproc *p;
	struct puppet pp;
	int memfd;		/* /proc/PID/mem, opened when needed, or -1 */
};

/* An injected syscall in @tid of the task taken over: its result in *retp,
 * or (retp NULL) a failure logged with @what. */
int inj(struct takeover *tk, pid_t tid, long nr, const char *what, long *retp,
	unsigned long a0, unsigned long a1, unsigned long a2, unsigned long a3,
	unsigned long a4, unsigned long a5);
#define INJ(tk, tid, nr, what, ...) inj(tk, tid, nr, what, NULL, __VA_ARGS__)
/* Copy @buf into the trampoline's scratch area at @off. */
int scratch_put(struct takeover *tk, size_t off, const void *buf, size_t len);

int rproc_index(struct rctx *c, pid_t pid);
uint64_t rst_now_ns(void);

/* mem-restore.c: the address space */
int read_special_maps(pid_t pid, struct range *sp, int *nsp, struct range *vdso,
		      struct range **all, int *nall);
int probe_vdso(struct rctx *c);
unsigned long find_hole(const MmImage *mm, const struct range *r, int n, unsigned long len);
int validate_mm(struct rctx *c, struct rproc *p);
int keep_fd(const struct rproc *p, uint32_t id);
int prepare_keep(struct rctx *c, struct rproc *p);
int restore_mm(struct takeover *tk);
/* Copy-on-write with the children: the plan (restorer, before any fork),
 * the stub's mappings (in the stub, before it forks its children), their
 * pages (restorer, while the stub waits). */
int cow_plan(struct rctx *c);
int stub_cow_prepare(struct rctx *c, int idx);
int cow_fill(struct rctx *c, int idx);
int restore_mm_fields(struct takeover *tk);

/* lazy.c: the private anonymous memory after the tree runs (--lazy).  The
 * server forked before the tree is made; each task's lazy mappings handed
 * to it at the end of its takeover; told the tree runs, or killed. */
int lazy_start(struct rctx *c);
int lazy_register(struct takeover *tk);
void lazy_running(struct rctx *c);
void lazy_stop(struct rctx *c);

#endif
