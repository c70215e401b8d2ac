// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Signal actions: read by injected rt_sigaction at dump, set by the task
 * itself (its stub) at restore.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "task-state.h"

static int dump_sigactions(struct task_dump *p, CoreEntry *c)
{
	c->sigactions = calloc(64, sizeof(*c->sigactions));
	if (!c->sigactions)
		return -ENOMEM;
	for (int sig = 1; sig <= 64; sig++) {
		uint64_t ka[4];
		long ret;
		int err;

		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		err = PSYS(p->pp, p->pid, &ret, SYS_rt_sigaction, sig, 0, p->pp->scratch, 8);
		if (err)
			return err;
		if (ret)
			return log_errno(-ret, "pid %d: cannot read the action of signal %d", p->pid, sig);
		err = task_read_scratch(p, ka, sizeof(ka));
		if (err)
			return err;
		if (!ka[0] && !ka[1] && !ka[3])
			continue;	/* SIG_DFL, no flags: nothing to restore */
		SigactionEntry *e = malloc(sizeof(*e));
		if (!e)
			return -ENOMEM;
		sigaction_entry__init(e);
		e->sig = sig;
		e->handler = ka[0];
		e->flags = ka[1];
		e->restorer = ka[2];
		e->mask = ka[3];
		c->sigactions[c->n_sigactions++] = e;
	}
	return 0;
}

static int stub_set_sigactions(struct task_rst *tr)
{
	const CoreEntry *core = tr->core;

	/* the restorer's own handlers (sanitizers, libraries) must not leak in */
	for (int sig = 1; sig <= 64; sig++) {
		uint64_t dfl[4] = { 0 };	/* SIG_DFL, no flags, empty mask */

		if (sig != SIGKILL && sig != SIGSTOP)
			syscall(SYS_rt_sigaction, sig, dfl, NULL, 8);
	}
	for (size_t i = 0; i < core->n_sigactions; i++) {
		SigactionEntry *s = core->sigactions[i];
		uint64_t ka[4] = { s->handler, s->flags, s->restorer, s->mask };

		if (s->sig < 1 || s->sig > 64 || s->sig == SIGKILL || s->sig == SIGSTOP)
			return log_errno(EINVAL, "core image: bad signal number %u", s->sig);
		if (syscall(SYS_rt_sigaction, s->sig, ka, NULL, 8))
			return log_errno(errno, "cannot restore the action of signal %u", s->sig);
	}
	return 0;
}

static int validate_sigactions(const CoreEntry *c, uint32_t pid)
{
	for (size_t i = 0; i < c->n_sigactions; i++) {
		const SigactionEntry *s = c->sigactions[i];

		if (!s || s->sig < 1 || s->sig > 64 || s->sig == SIGKILL || s->sig == SIGSTOP) {
			log_err("core-%u.img: action of a bad signal number %u", pid, s ? s->sig : 0);
			return -EINVAL;
		}
	}
	return 0;
}

const struct task_state_ops task_sigactions_ops = {
	.name = "signal actions",
	.dump = dump_sigactions,
	.validate = validate_sigactions,
	.restore = { [TS_STUB] = stub_set_sigactions },
};
