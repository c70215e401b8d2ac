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

/* ---- the modules' halves ---- */

/* task-attrs.c */
int dump_attrs(struct task_dump *p, CoreEntry *c);
/* Per thread, from outside: refuses SCHED_DEADLINE. */
int dump_sched(pid_t tid, ThreadCore *tc);
int stub_set_attrs(struct task_rst *tr);
int restore_dumpable(struct task_rst *tk);
int restore_sched(struct task_rst *tr);
int restore_pdeathsig(struct task_rst *tk);

/* task-sigactions.c */
int dump_sigactions(struct task_dump *p, CoreEntry *c);
int stub_set_sigactions(CoreEntry *core);

/* task-timers.c */
int dump_timers(struct task_dump *p, CoreEntry *c);
int restore_timers(struct task_rst *tk);

/* task-signals.c */
/* The signals pending for thread @tid, or with @shared for its process. */
int dump_pending(pid_t tid, bool shared, SiginfoEntry ***out, size_t *nout);
int dump_shared_pending(struct task_dump *p, CoreEntry *c);
int restore_thread_pending(struct task_rst *tk, const ThreadCore *tc);
int restore_shared_pending(struct task_rst *tk);
/* Once the task runs untraced: the SIGSTOPs it had pending. */
void send_pending_stops(struct task_rst *tr);

/* task-rlimits.c */
int dump_rlimits(struct task_dump *p, CoreEntry *c);
int restore_rlimits(struct task_rst *tk);

/* task-creds.c */
void dump_loginuid(struct task_dump *p, CoreEntry *c);
int dump_creds(struct task_dump *p, CoreEntry *c);
int restore_loginuid(struct task_rst *tk);
int restore_creds(struct task_rst *tk, pid_t tid);

#endif
