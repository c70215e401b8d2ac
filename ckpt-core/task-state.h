/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Per-process state (docs/design.md, "Where per-process state lives"):
 * signal actions, timers, credentials, resource limits, pending signals and
 * the smaller attributes, each in a task-*.c file of its own with its dump
 * half and its restore half side by side.  dump.c and restore.c only
 * orchestrate: they hand a module one of the two contexts below.
 */
#ifndef KUP_TASK_STATE_H
#define KUP_TASK_STATE_H

#include "internal.h"

/*
 * What a dump half sees of a process: frozen, its signals blocked, the
 * trampoline in it and its threads parked (dump.c, prepare_proc), so that
 * syscalls can be injected in it (PSYS(td->pp, ...)) and their results read
 * from the scratch area.
 */
struct task_dump {
	pid_t pid;
	struct puppet *pp;
	const struct proc_stat *st;
	const char *status;		/* /proc/PID/status */
	/* its process-wide pending signals, read before anything ran in it
	 * (dump.c, snapshot_pending): the image takes them over */
	SiginfoEntry ***spend;
	size_t *nspend;
};

static inline int task_read_scratch(struct task_dump *td, void *buf, size_t len)
{
	return puppet_read(td->pid, td->pp->scratch, buf, len);
}

/*
 * What a restore half sees of a task being restored: its pid and its core
 * image (validated), and for the halves injected into it (restore.c,
 * takeover) the puppet whose trampoline and scratch area are in place.  In
 * the stub (the task itself) and from outside @pp is NULL.
 */
struct task_rst {
	pid_t pid;
	CoreEntry *core;
	struct puppet *pp;
	bool allow_differences;		/* --allow-differences */
	/* the tree has a user namespace of its own: the task joined it
	 * (creds_join_userns) with its ids, groups and audit login uid set */
	bool in_userns;
};

/* Inject syscall @nr in thread @tid of the task.  With @retp its return
 * value is stored there; without, a failure is logged with @what and
 * returned as a negative errno. */
int task_inj(struct task_rst *tr, pid_t tid, long nr, const char *what, long *retp,
	     unsigned long a0, unsigned long a1, unsigned long a2, unsigned long a3,
	     unsigned long a4, unsigned long a5);
#define TASK_INJ(tr, tid, nr, what, ...) task_inj(tr, tid, nr, what, NULL, __VA_ARGS__)
/* Copy @buf to offset @off of the task's scratch area. */
int task_scratch_put(struct task_rst *tr, size_t off, const void *buf, size_t len);
/*
 * State the restore cannot apply as dumped (privileges, this kernel): an
 * error, or with allow_differences a warning naming the difference.
 */
int difference(const struct task_rst *tr, int err, const char *what, const char *dumped,
	       const char *applied);

/*
 * Restore, for a tree with a user namespace of its own: set the task's ids
 * and groups as dumped (kup's view) and its audit login uid, keeping the
 * capabilities to join, then join the namespace through @nsfd, an fd of
 * the task's.  With one thread: the kernel lets no other join.
 */
int creds_join_userns(struct task_rst *tr, int nsfd);

/* ---- the table ---- */

/*
 * When a restore half runs.  The order of the phases is the order of the
 * restore (restore.c); within a phase, the order of task_states[].
 */
enum task_phase {
	TS_STUB,	/* in the stub, by the task itself, before its files: plain C */
	TS_THREADS,	/* injected, once its threads exist with their own state */
	TS_LATE,	/* injected, after that */
	TS_PRIV,	/* injected, what needs privileges its credentials may drop */
	TS_CREDS,	/* the credentials */
	TS_AFTER_CREDS,	/* what setting the credentials resets */
	TS_OUTSIDE,	/* from the restorer, once every task is taken over */
	TS_FINISH,	/* injected, the last steps before its registers go in */
	TS_RUNNING,	/* once the tree runs untraced: best effort */
	TS_NR_PHASES
};

struct task_state_ops {
	const char *name;
	/*
	 * The dump halves: the process's part of the core image, and each
	 * thread's (either may be NULL).  What could not be restored is
	 * refused here, naming the pid or tid, before anything changed.
	 */
	int (*dump)(struct task_dump *td, CoreEntry *c);
	int (*dump_thread)(struct task_dump *td, pid_t tid, ThreadCore *tc);
	/* Checks of its fields in an untrusted core image of process @pid
	 * (validate.c: its threads are there, with their tids): no side
	 * effect, each refusal logged naming the image. */
	int (*validate)(const CoreEntry *c, uint32_t pid);
	/* The restore halves, by phase (NULL: nothing to do then).  A failure
	 * is logged by the module with the pid and fails the restore. */
	int (*restore[TS_NR_PHASES])(struct task_rst *tr);
};

/* Every module, in order (task-state.c); NULL-terminated. */
extern const struct task_state_ops *const task_states[];

/* Walk the table: the dump halves of process @td into @c, the thread
 * halves of thread @tid into @tc, the restore halves of phase @ph. */
int task_states_dump(struct task_dump *td, CoreEntry *c);
int task_states_dump_thread(struct task_dump *td, pid_t tid, ThreadCore *tc);
int task_states_restore(struct task_rst *tr, enum task_phase ph);
int task_states_validate(const CoreEntry *c, uint32_t pid);

/* ---- the modules (one file each) ---- */
extern const struct task_state_ops task_attrs_ops;	/* task-attrs.c */
extern const struct task_state_ops task_sigactions_ops;	/* task-sigactions.c */
extern const struct task_state_ops task_timers_ops;	/* task-timers.c */
extern const struct task_state_ops task_signals_ops;	/* task-signals.c */
extern const struct task_state_ops task_rlimits_ops;	/* task-rlimits.c */
extern const struct task_state_ops task_creds_ops;	/* task-creds.c */
extern const struct task_state_ops task_seccomp_ops;	/* seccomp.c */

/* task-signals.c: the signals pending for thread @tid, or with @shared for
 * its process (dump.c reads them as it freezes the task): the first @max
 * of them; and how many there are (the @max of a frozen task). */
int dump_pending(pid_t tid, bool shared, size_t max, SiginfoEntry ***out, size_t *nout);
int pending_count(pid_t tid, bool shared, size_t *count);

#endif
