// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What the per-process state modules (task-*.c) share: the helpers their
 * restore halves inject syscalls with (task-state.h).
 */
#include <stdio.h>
#include <string.h>

#include "task-state.h"

int task_inj(struct task_rst *tr, pid_t tid, long nr, const char *what, long *retp,
	     unsigned long a0, unsigned long a1, unsigned long a2, unsigned long a3,
	     unsigned long a4, unsigned long a5)
{
	long ret;
	int err = puppet_syscall(tr->pp, tid, &ret, nr, a0, a1, a2, a3, a4, a5);

	if (err)
		return err;
	if (retp)
		*retp = ret;
	else if (ret < 0 && ret > -4096)
		return log_errno(-ret, "pid %u tid %d: %s", tr->pid, tid, what);
	return 0;
}

int task_scratch_put(struct task_rst *tr, size_t off, const void *buf, size_t len)
{
	if (off + len > tr->pp->scratch_len)
		return -E2BIG;
	return puppet_write(tr->pid, tr->pp->scratch + off, buf, len);
}

int difference(const struct task_rst *tr, int err, const char *what, const char *dumped,
	       const char *applied)
{
	pid_t pid = tr->pid;

	if (!tr->allow_differences) {
		log_err("pid %d: cannot restore %s %s (%s; it would run with %s; "
			"--allow-differences accepts it)", pid, what, dumped, strerror(err), applied);
		return -err;
	}
	log_warn("pid %d: %s is %s, dumped %s (%s)", pid, what, applied, dumped, strerror(err));
	return 0;
}

/*
 * The order matters within a phase: the umask, personality and the rest
 * before the signal actions in the stub; the timers before the signals
 * pending for the process (a timer that fires as it is armed queues its
 * signal first, as it did before the dump), the resource limits after
 * both; the audit login uid and the seccomp filters before the credentials
 * drop the privileges they need.
 */
const struct task_state_ops *const task_states[] = {
	&task_attrs_ops,
	&task_sigactions_ops,
	&task_timers_ops,
	&task_signals_ops,
	&task_rlimits_ops,
	&task_creds_ops,
	&task_seccomp_ops,
	NULL
};

int task_states_dump(struct task_dump *td, CoreEntry *c)
{
	for (const struct task_state_ops *const *s = task_states; *s; s++) {
		int err;

		if (!(*s)->dump)
			continue;
		err = (*s)->dump(td, c);
		if (err)
			return err;
	}
	return 0;
}

int task_states_dump_thread(struct task_dump *td, pid_t tid, ThreadCore *tc)
{
	for (const struct task_state_ops *const *s = task_states; *s; s++) {
		int err;

		if (!(*s)->dump_thread)
			continue;
		err = (*s)->dump_thread(td, tid, tc);
		if (err)
			return err;
	}
	return 0;
}

int task_states_restore(struct task_rst *tr, enum task_phase ph)
{
	for (const struct task_state_ops *const *s = task_states; *s; s++) {
		int err;

		if (!(*s)->restore[ph])
			continue;
		err = (*s)->restore[ph](tr);
		if (err && ph != TS_RUNNING)
			return err;
	}
	return 0;
}

int task_states_validate(const CoreEntry *c, uint32_t pid)
{
	for (const struct task_state_ops *const *s = task_states; *s; s++)
		if ((*s)->validate && (*s)->validate(c, pid))
			return -EINVAL;
	return 0;
}
