/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Engine-internal types shared by dump.c, restore.c and the resource files.
 */
#ifndef KUP_INTERNAL_H
#define KUP_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include "arch.h"
#include "ckpt.h"
#include "files.h"
#include "image.h"
#include "kup-image.pb-c.h"
#include "kup-ipc.pb-c.h"
#include "log.h"

#define PAGE_SIZE_K	4096UL
#define PAGE_ALIGN_K(x)	(((x) + PAGE_SIZE_K - 1) & ~(PAGE_SIZE_K - 1))

#define _cleanup_(f) __attribute__((cleanup(f)))
static inline void freep(void *p) { free(*(void **)p); }
static inline void closep(int *fd) { if (*fd >= 0) close(*fd); }

/* ---- abort requests (abort.c) ---- */
/* -ECANCELED once ckpt_request_abort() was called, else 0.  Only the
 * forward paths poll it: failure paths run to their end. */
int ckpt_check_abort(void);

/* ---- /proc parsing (proc.c) ---- */
struct proc_stat {
	char state;
	pid_t ppid, pgid, sid;
	unsigned int tty_nr;	/* the controlling terminal (kernel dev encoding), 0: none */
	unsigned long flags;
	unsigned long start_code, end_code, start_stack;
	unsigned long start_data, end_data, start_brk;
	unsigned long arg_start, arg_end, env_start, env_end;
	int exit_code;
	int exit_signal;
	char comm[64];
};
int proc_read_stat(pid_t pid, pid_t tid, struct proc_stat *st);
char *proc_read_file(pid_t pid, const char *name, size_t *len);	/* malloc'd, NUL-terminated */
int proc_status_field(const char *status, const char *key, char *out, size_t outlen);
int proc_list_tids(pid_t pid, pid_t **tids, int *n);
int proc_list_children(pid_t pid, pid_t tid, pid_t **kids, int *n);

/* pthread_create() of a helper thread that takes no signal: they (an abort
 * request) stay with the thread that drives the dump or restore.  0 or -errno. */
int ckpt_thread_start(pthread_t *th, void *(*fn)(void *), void *arg);

/* ---- clocks across boots (clocks.c) ---- */
/* Dump: every process of the tree is in the root's time namespace. */
int clocks_dump_check(const pid_t *pids, int n);
/* Dump: record the tree's monotonic and boot clocks in @inv. */
void clocks_dump(pid_t root, InventoryEntry *inv);
/* Restore, in the restorer before any task is created: a time namespace for
 * the tasks to come if their clocks would not go on otherwise. */
int clocks_restore_prepare(const InventoryEntry *inv, bool same_boot, bool allow_differences);

/* ---- the tree's mount namespace (mntns.c) ---- */
/* Dump, the tree frozen: when the tree's mount namespace is not kup's,
 * write mntns.img and set *own; refuse what cannot be rebuilt.  @st NULL:
 * the check of a live tree (ckpt_dump_check), the same refusals, nothing
 * written. */
int mntns_dump(const pid_t *pids, int n, struct img_store *st, bool *own);
/* mntns.img's checks, as a restore makes them (a MntnsImage) */
int ckpt_validate_mntns(const void *img);
/* Restore, before any file of the tree is opened and any task created:
 * with mntns.img, unshare the restorer's mount namespace and rebuild the
 * dumped one in it (*out is set even on failure: leave it). */
struct mntns_rst;
int mntns_rst_enter(struct img_store *st, pid_t root, struct mntns_rst **out);
/* Back to the restorer's namespace; @failed: remove what was made on the
 * host (a private /tmp's directory).  NULL is fine. */
void mntns_rst_leave(struct mntns_rst *r, bool failed);
/* The user namespace made for the tree (the dumped one had its own), or
 * -1; and then /proc/sys/kernel/ns_last_pid, open for writing: its tasks
 * make their threads once they are in it (restore.c). */
int mntns_rst_userns(const struct mntns_rst *r);
int mntns_rst_last_pid(const struct mntns_rst *r);

/* ---- ptrace puppet (puppet.c) ---- */
/* A thread we drive: its saved registers are restored by puppet_release. */
/* struct sched_attr of sched_getattr(2)/sched_setattr(2) (the first 48
 * bytes: without the utilization clamps) */
struct sched_attr_k {
	uint32_t size;
	uint32_t sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime;
	uint64_t sched_deadline;
	uint64_t sched_period;
};

struct puppet {
	pid_t pid;		/* thread group */
	unsigned long tramp;	/* address of syscall+trap in the target */
	unsigned long scratch;	/* writable scratch area in the target */
	size_t scratch_len;
	bool own_area;		/* we mapped tramp/scratch ourselves (dump) */
	unsigned long patch_at;	/* where the area's mmap/munmap run (dump) */
	unsigned long patch_orig; /* ... and the word it holds */
	/* the syscalls injected through it and their time (restore -v) */
	unsigned long n_calls;
	uint64_t ns_calls;
};

/* With @interrupt, waits at most PUPPET_STOP_TIMEOUT_MS for the stop:
 * -ETIMEDOUT leaves @tid seized but running. */
int puppet_seize(pid_t tid, bool interrupt);
/* Hold the seccomp filters of seized @tid off while we drive it (until
 * detach): PTRACE_O_SUSPEND_SECCOMP.  -EPERM when we may not. */
int puppet_suspend_seccomp(pid_t tid);
int puppet_wait_stop(pid_t tid, int *status);
/* How long a thread may take to stop for PTRACE_INTERRUPT (docs/design.md) */
#define PUPPET_STOP_TIMEOUT_MS	10000
int puppet_wait_stop_bounded(pid_t tid, int *status, unsigned timeout_ms);
/* Dump side: map a trampoline in stopped process @pid (thread @tid). */
int puppet_install(struct puppet *p, pid_t pid, pid_t tid);
/* Unmap it, leaving @tid on @final registers (NULL: those it has). */
int puppet_uninstall(struct puppet *p, pid_t tid, const struct arch_regs *final);
/* Run syscall @nr in thread @tid; *ret gets its return value. */
int puppet_syscall(struct puppet *p, pid_t tid, long *ret, long nr,
		   unsigned long a0, unsigned long a1, unsigned long a2,
		   unsigned long a3, unsigned long a4, unsigned long a5);
#define PSYS(p, tid, ret, nr, ...) puppet_syscall_n(p, tid, ret, nr, (unsigned long[6]){ __VA_ARGS__ })
int puppet_syscall_n(struct puppet *p, pid_t tid, long *ret, long nr, const unsigned long a[6]);
/* Did @tid take a SIGSTOP during an injected syscall (passed over there)?
 * Asked once, as the thread is let go: whoever asks sends it again. */
bool puppet_took_stop(pid_t tid);
int puppet_write(pid_t pid, unsigned long addr, const void *buf, size_t len);
int puppet_read(pid_t pid, unsigned long addr, void *buf, size_t len);
/*
 * Run syscall @nr in stopped thread @tid from the code patched for the time
 * of the call over the word at @at (executable, executed by no thread;
 * @orig is what it holds), then set @final registers and put the word back.
 * Killed at any point, we leave the thread on its own registers or parked
 * at @at (journal.h: `patch`).
 */
/* Where the trampoline's mmap and munmap run in @pid (puppet.c). */
unsigned long puppet_patch_site(pid_t pid, unsigned long ip);
int puppet_syscall_patched(pid_t pid, pid_t tid, unsigned long at, unsigned long orig,
			   long *ret, long nr, const unsigned long a[6],
			   const struct arch_regs *final);

/* ---- memory (mem.c) ---- */
struct mem_dump_stats {
	unsigned long long pages;
	unsigned long long from_pre;	/* of them, taken from the pre-dump's copy */
};
/* The page frames of a dumped process's private anonymous pages (own and
 * shared with its parent, in image order): its children's dump compares
 * theirs with them (mem.c). */
struct mem_frames { uint64_t *own, *cow; };
struct shmem_dump;
struct ipc_dump;
struct predump;
int mem_dump(pid_t pid, struct img_store *st, struct files_dump *fd,
	     const struct puppet *pp, MmImage *mm, struct mem_dump_stats *stats,
	     struct shmem_dump *sd, struct ipc_dump *ipc, const MmImage *parent_mm,
	     const struct mem_frames *parent_frames, struct mem_frames *frames,
	     struct predump *pd);

/* ---- pre-dump rounds (predump.c) ---- */
/* Copy the private memory of the tree of @root while it runs, then what it
 * writes meanwhile, at most @rounds times, then write its page images ahead
 * into @st (if not NULL); *@out is NULL (and a warning said why) when this
 * kernel cannot track writes: a plain dump. */
int predump_run(pid_t root, int rounds, struct img_store *st, struct predump **out);
/* Address ranges, ascending: [va, va + n pages). */
struct va_run {
	uint64_t va, n;
};
struct va_runs {
	struct va_run *v;
	size_t n, cap;
	bool incomplete;	/* some mapping was not looked at: not to be used */
};
/* With the tree frozen: the pages of @pid's runs (@pages in all, in image
 * order) whose copy is still right, (*@out)[i] for page i, NULL to read it
 * (*@out NULL: none).  @pmfd: its pagemap.  @clean: the pages the frozen
 * walk that selected them found present, protected by the pre-dump's
 * userfaultfd and not written since (mem.c, select_pages_scan; NULL: none
 * known, then none is taken from the copy with this tracking). */
int predump_sources(struct predump *pd, pid_t pid, int pmfd, PageRun *const *runs, size_t nruns,
		    uint64_t pages, const struct va_runs *clean, const uint8_t ***out,
		    uint64_t *from_copy);
/* The page image of @pid the pre-dump wrote ahead, if its pages are laid
 * out as the frozen pass has them (@runs): 1 and *@out (the caller finishes
 * and releases it), with the checksums of its pieces (IMG_PAGES_CHUNK) as
 * the pre-dump left them in *@sums and which of them changed since in
 * *@stale (both malloc'd, the caller's; NULL: none computed).  0: none (one
 * laid out otherwise is removed). */
int predump_take_blob(struct predump *pd, pid_t pid, PageRun *const *runs, size_t nruns,
		      uint64_t pages, struct img_blob *out, uint64_t **sums, uint8_t **stale);
/* After the frozen pass: the images written ahead for processes not dumped
 * are removed. */
int predump_end(struct predump *pd);
/* The rounds run so far and the pages they copied, all processes (for the
 * dump's stats; @pd NULL: none). */
void predump_totals(const struct predump *pd, unsigned int *rounds, unsigned long long *copied);
/* Stop tracking (the tree runs on as before) and free the copy. */
void predump_free(struct predump *pd);
void mem_free_image(MmImage *mm);
/* The page numbers a dump of @pid would save now, ascending (as mem_dump
 * selects them, before the pages shared with a parent are told apart).
 * -ENOENT or -ESRCH, not logged, when it is gone. */
int mem_select_pages(pid_t pid, uint64_t **out, size_t *nout);
/* Read @len bytes of pages at @vaddr of @pid as the dump does (no pinning of
 * shared pages; @memfd and @pmfd: its /proc mem and pagemap).  -EIO, not
 * logged, when a piece cannot be read. */
int mem_read_pages(pid_t pid, uint8_t *buf, uint64_t vaddr, size_t len, int memfd, int pmfd);
void mem_frames_free(struct mem_frames *f);

/* shared memory objects collected during dump */
struct shmem_dump;
int shmem_dump_begin(struct shmem_dump **out);
int shmem_dump_vma(struct shmem_dump *sd, pid_t pid, VmaEntry *vma, uint64_t ino, const char *map_files);
int shmem_dump_end(struct shmem_dump *sd, struct img_store *st);
void shmem_dump_free(struct shmem_dump *sd);

/* ---- seccomp (seccomp.c) ---- */
/* Before anything is injected: a thread with seccomp state needs its
 * filters held off (puppet_suspend_seccomp), or the dump is refused. */
int seccomp_dump_prepare(pid_t pid, pid_t tid);
/* Mode and filters of thread @tid (frozen, seized); refuses what cannot be kept. */
int seccomp_dump_thread(pid_t pid, pid_t tid, ThreadCore *tc);
/* Checks of an untrusted core image; no side effect. */
int seccomp_validate(const CoreEntry *c);
/* Install the dumped mode and filters in every thread of a restored task. */
int seccomp_restore(struct puppet *pp, const CoreEntry *c);

/* ---- vdso (vdso.c) ---- */
int vdso_parse_symtab(const void *img, size_t len, VdsoSymtab *out);
void vdso_symtab_free(VdsoSymtab *t);


int puppet_syscall_last(struct puppet *p, pid_t tid, long *ret, long nr,
			const unsigned long a[6], const struct arch_regs *final);
unsigned long puppet_area_size(void);

#endif
