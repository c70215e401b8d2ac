/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libckpt: checkpoint and restore of process trees.  Knows nothing of kexec.
 */
#ifndef KUP_CKPT_H
#define KUP_CKPT_H

#include <stdbool.h>
#include <sys/types.h>
#include "image.h"

struct ckpt_dump_opts {
	pid_t pid;			/* root of the tree */
	struct img_store *store;
	bool leave_running;
	bool shell_job;
	bool tcp_established;
	/* a connection to a process outside the tree (unix socket, local TCP)
	 * is dumped as one whose peer has closed, with a warning; without it
	 * the dump refuses (docs/sockets.md) */
	bool ext_peers_close;
	const char *unit;		/* recorded in the inventory: the service it is */
	const char *sysv_ipc;		/* "shm:ID,sem:ID,msg:ID": System V objects to
					 * keep that the tree does not use (or NULL) */
	/* rounds of copying the memory while the tree runs before the freeze
	 * (at most; 0: none): the frozen pass reads only what was written
	 * since (docs/design.md, "Pre-dump") */
	int pre_dump_rounds;
	/* rounds already run for this tree (ckpt_predump), used instead; the
	 * caller frees it after the dump */
	struct predump *pre;
};

struct ckpt_stats {
	unsigned long long frozen_ns;	/* tasks stopped */
	unsigned long long mem_ns;	/* memory copy */
	unsigned long long total_ns;
	unsigned long long pages;
	unsigned int nr_procs, nr_threads;
	unsigned long long freeze_realtime_ns;	/* dump: CLOCK_REALTIME at the freeze */
	unsigned long long pre_dump_ns;	/* dump: the pre-dump rounds, before the freeze */
	/* dump, --pre-dump: the rounds run (the most of any tree), the pages
	 * they copied (all rounds, all trees), and of stats.pages those taken
	 * from that copy at the freeze (the rest the frozen pass read) */
	unsigned int pre_dump_rounds;
	unsigned long long pre_dump_pages, pages_from_pre_dump;
};

int ckpt_dump(const struct ckpt_dump_opts *o, struct ckpt_stats *stats);
/* Pre-dump rounds for a tree dumped later with others (kup dump of several
 * trees: each is frozen until the last is dumped, so all rounds run before
 * the first freeze).  *@out NULL when this kernel cannot track writes (said
 * once); ckpt_predump_round() runs one more round, to catch up. */
struct predump;
int ckpt_predump(pid_t root, int rounds, struct predump **out);
int ckpt_predump_round(struct predump *pd, pid_t root);
void ckpt_predump_free(struct predump *pd);
/*
 * What ckpt_dump(@o) would refuse that can be told while the tree runs,
 * decided by the dump's own code and said in its words (pid, fd, object):
 * nothing is seized, stopped, changed or written (@o->store is not used).
 * For a caller that wants to refuse before it does anything else (kup
 * switch, before it loads a kernel; kup check).  What needs the tree
 * frozen is left to the dump (docs/design.md, "Checking before the
 * freeze").  0 or negative errno, logged.
 */
int ckpt_dump_check(const struct ckpt_dump_opts *o);

struct ckpt_restore_opts {
	struct img_store *store;
	bool detach;			/* return once the tree runs */
	bool shell_job;
	bool tcp_established;
	bool force_vdso_proxy;		/* test the cross-kernel vDSO path */
	bool as_new_boot;		/* test the clocks of a restore after a kexec */
	/* State this kernel or these privileges cannot apply (a resource
	 * limit, oom_score_adj, the personality) fails the restore; with this,
	 * the tree runs with what could be applied and a warning names each
	 * difference (pid, what, dumped and applied values). */
	bool allow_differences;
	pid_t *root_pid;		/* out: restored root */
	/* Called once the images are read and checked, just before the tree's
	 * PIDs are checked free and its tasks created (e.g. to make placeholders
	 * that keep those PIDs let go).  Non-zero fails the restore. */
	int (*before_pids)(void *arg);
	/* Called once the tree runs and every image is released (before the
	 * wait without detach), e.g. to scrub the store. */
	void (*on_running)(void *arg);
	/* Lazy restore (docs/design.md, "Lazy restore"): private anonymous
	 * memory is filled after the tree runs, by a server process
	 * ("kup-lazy") that outlives the call; once every page is in, it
	 * closes its copy of the store and calls on_memory_complete (e.g. to
	 * scrub the store), in that process.  on_running is then called
	 * before the memory is complete. */
	bool lazy;
	void (*on_memory_complete)(void *arg);
	/* Called first thing in the server, to let go of what it must not
	 * hold for its whole life (a lock of the caller's, inherited). */
	void (*in_server)(void *arg);
	/* Called in the server after a page that could not be read back made
	 * it kill the tree (its copy of the store closed), e.g. to mark the
	 * checkpoint failed. */
	void (*on_fatal)(void *arg);
	pid_t *lazy_pid;		/* out: the server, or 0 */
	void *arg;
};

/*
 * Restore the tree.  Without detach, waits for the root to exit and returns
 * its exit status (>= 0); errors are negative errno.
 */
int ckpt_restore(const struct ckpt_restore_opts *o, struct ckpt_stats *stats);

/*
 * Abort: ckpt_request_abort(SIG) may be called from a signal handler (it
 * only sets a flag).  A dump or restore running notices it at its next
 * safe point, within milliseconds, and fails with -ECANCELED through its
 * usual failure path: a dump leaves the tree running as it was and commits
 * nothing, a restore kills what it created.  A dump past its commit
 * completes.  ckpt_abort_signal() is the signal given (0: none).
 */
void ckpt_request_abort(int sig);
int ckpt_abort_signal(void);

/*
 * Recovery from a kup that died (docs/design.md, "When kup dies"): replay
 * the undo journal of every dump, restore or switch whose process is gone.
 * A dump's tree is put back as it was (or, past its commit without
 * --leave-running, killed as the dump meant), its network locks and
 * unfinished images removed; a restore's half-restored tasks are killed and
 * its locks removed.  Switch journals go to @switch_hook (kexec is not the
 * engine's).  *items: one entry per journal replayed (malloc'd).  Returns 0
 * or the first error (that journal is kept for a later try).
 */
struct ckpt_recover_item {
	char journal[288];
	char op[16];
	pid_t owner;
	int err;
	unsigned threads, trampolines, sockets, locks, images, killed;
	char action[160];
};

struct ckpt_recover_switch {
	bool kexec_loaded, kexec_exec, tcp, root_alive;
	pid_t root;
	const char *store;	/* the store the switch was dumping into, or NULL */
};

struct ckpt_recover_opts {
	int (*switch_hook)(const struct ckpt_recover_switch *sw, struct ckpt_recover_item *it);
};

int ckpt_recover(const struct ckpt_recover_opts *o, struct ckpt_recover_item **items,
		 size_t *nitems);

#endif
