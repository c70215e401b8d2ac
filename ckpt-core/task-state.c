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
