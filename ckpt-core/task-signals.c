// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Pending signals: read with PTRACE_PEEKSIGINFO at dump (dump.c takes the
 * snapshot before anything runs in the task), queued again at restore; a
 * pending SIGSTOP is sent once the task runs.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "task-state.h"

struct peek_args {
	uint64_t off;
	uint32_t flags;
	int32_t nr;
};

/* Is there a signal at @off in the queue of @tid (@shared: its process's)?
 * 1 or 0, or -errno. */
static int pending_at(pid_t tid, bool shared, unsigned long off)
{
	struct peek_args args = { off, shared ? 1 : 0, 1 };
	uint8_t si[128];
	long r = ptrace(PTRACE_PEEKSIGINFO, tid, &args, si);

	if (r < 0)
		return log_errno(errno, "tid %d: cannot read pending signals", tid);
	return r > 0;
}

/*
 * The length the queue had at one moment, for dump_pending.  The kernel
 * finds the signal at offset k by walking the queue from its head: reading
 * n signals one after the other costs n * n / 2 steps (60000 queued take
 * half a minute), and a queue that grows while it is read, as a frozen
 * task's does when signals keep coming, may never be read to its end: it
 * grows up to RLIMIT_SIGPENDING, after which the kernel merges what is
 * sent into one pending bit.  Probing offsets 0, 1, 3, 7... then halving
 * costs n log n steps: the offset found missing (all before it present)
 * is a length the queue had, once.
 */
int pending_count(pid_t tid, bool shared, size_t *count)
{
	unsigned long have = 0, missing = 0;	/* the first probe is offset 0 */
	int r;

	for (;;) {
		r = pending_at(tid, shared, missing);
		if (r < 0)
			return r;
		if (!r)
			break;
		have = missing + 1;
		missing = missing * 2 + 1;
	}
	/* [0, have) were there, @missing was not */
	while (have < missing) {
		unsigned long mid = have + (missing - have) / 2;

		r = pending_at(tid, shared, mid);
		if (r < 0)
			return r;
		if (r)
			have = mid + 1;
		else
			missing = mid;
	}
	*count = missing;
	return 0;
}

static void free_entries(SiginfoEntry **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(&v[i]->base, NULL);
	free(v);
}

/*
 * The first @max signals queued (all: SIZE_MAX).  Nothing is taken from a
 * frozen task's queue, only added at its end: its first pending_count()
 * signals are the whole queue as it was when that count was taken.
 */
int dump_pending(pid_t tid, bool shared, size_t max, SiginfoEntry ***out, size_t *nout)
{
	struct peek_args args = { 0, shared ? 1 : 0, 32 };
	uint8_t si[32][128];
	SiginfoEntry **v = NULL;
	size_t n = 0;
	int err = 0;

	while (n < max) {
		long r;

		/* a long queue is read slowly (pending_count): the dump may be
		 * stopped meanwhile */
		err = ckpt_check_abort();
		if (err)
			break;
		if (max - n < 32)
			args.nr = max - n;
		r = ptrace(PTRACE_PEEKSIGINFO, tid, &args, si);
		if (r < 0) {
			err = log_errno(errno, "tid %d: cannot read pending signals", tid);
			break;
		}
		if (r == 0)
			break;
		SiginfoEntry **nv = realloc(v, (n + r) * sizeof(*nv));
		if (!nv) {
			err = -ENOMEM;
			break;
		}
		v = nv;
		for (long i = 0; !err && i < r; i++) {
			SiginfoEntry *e = malloc(sizeof(*e));

			if (e) {
				siginfo_entry__init(e);
				e->raw.len = 128;
				e->raw.data = malloc(128);
			}
			if (!e || !e->raw.data) {
				free(e);
				err = -ENOMEM;
				break;
			}
			memcpy(e->raw.data, si[i], 128);
			v[n++] = e;
		}
		if (err)
			break;
		args.off += r;
	}
	if (err) {
		free_entries(v, n);
		return err;
	}
	*out = v;
	*nout = n;
	return 0;
}

/* The process-wide pending signals dump.c read as it froze the task. */
static int dump_shared_pending(struct task_dump *p, CoreEntry *c)
{
	c->shared_pending = *p->spend;
	c->n_shared_pending = *p->nspend;
	*p->spend = NULL;
	*p->nspend = 0;
	return 0;
}

/*
 * A pending signal of a POSIX timer carries the old kernel's private rearm
 * cookie; queued again by hand it must not be taken for the new timer's own
 * signal, or the new timer is never re-armed.
 */
static void siginfo_scrub(uint8_t *si)
{
	int32_t code;

	memcpy(&code, si + 8, sizeof(code));
	if (code == -2 /* SI_TIMER */)
		memset(si + 32, 0, 4);	/* _sifields._timer._sys_private */
}

static bool has_sigstop(SiginfoEntry **v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int sig;

		if (v[i]->raw.len != 128)
			continue;
		memcpy(&sig, v[i]->raw.data, sizeof(sig));
		if (sig == SIGSTOP)
			return true;
	}
	return false;
}

/* The SIGSTOPs it had pending (sent while it was stopped), once it runs
 * untraced: pending again, as stop signals to a stopped task stay. */
static int send_pending_stops(struct task_rst *tr)
{
	CoreEntry *c = tr->core;

	for (size_t t = 0; t < c->n_threads; t++)
		if (has_sigstop(c->threads[t]->pending, c->threads[t]->n_pending))
			syscall(SYS_tgkill, tr->pid, c->threads[t]->tid, SIGSTOP);
	if (has_sigstop(c->shared_pending, c->n_shared_pending))
		kill(tr->pid, SIGSTOP);
	return 0;
}

/* The signals thread @tc had pending, queued to it again (all blocked). */
static int restore_thread_pending(struct task_rst *tk, const ThreadCore *tc)
{
	pid_t pid = tk->pid, tid = tc->tid;
	int err = 0;

	for (size_t i = 0; !err && i < tc->n_pending; i++) {
		const uint8_t *si = tc->pending[i]->raw.data;
		int sig;

		if (tc->pending[i]->raw.len != 128)
			return log_errno(EINVAL, "core-%d.img: bad pending siginfo", pid);
		uint8_t buf[128];

		memcpy(&sig, si, sizeof(sig));
		if (sig == SIGSTOP)
			continue;	/* sent last (stop_tasks) */
		memcpy(buf, si, sizeof(buf));
		siginfo_scrub(buf);
		err = task_scratch_put(tk, 512, buf, 128);
		if (!err)
			err = TASK_INJ(tk, tid, SYS_rt_tgsigqueueinfo, "cannot queue a pending signal", pid, tid,
				       sig, tk->pp->scratch + 512, 0, 0);
	}
	return err;
}

/* The signals pending for the whole process, queued again. */
static int restore_shared_pending(struct task_rst *tk)
{
	CoreEntry *c = tk->core;
	pid_t pid = tk->pid;
	int err = 0;

	for (size_t i = 0; !err && i < c->n_shared_pending; i++) {
		const uint8_t *si = c->shared_pending[i]->raw.data;
		int sig;

		if (c->shared_pending[i]->raw.len != 128)
			return log_errno(EINVAL, "core-%d.img: bad pending siginfo", pid);
		uint8_t buf[128];

		memcpy(&sig, si, sizeof(sig));
		if (sig == SIGSTOP)
			continue;	/* sent last (stop_tasks) */
		memcpy(buf, si, sizeof(buf));
		siginfo_scrub(buf);
		err = task_scratch_put(tk, 512, buf, 128);
		if (!err)
			err = TASK_INJ(tk, pid, SYS_rt_sigqueueinfo, "cannot queue a pending signal", pid, sig,
				       tk->pp->scratch + 512, 0, 0, 0);
	}
	return err;
}

static int restore_threads_pending(struct task_rst *tk)
{
	int err = 0;

	for (size_t i = 0; !err && i < tk->core->n_threads; i++)
		err = restore_thread_pending(tk, tk->core->threads[i]);
	return err;
}

static int check_siginfo(const SiginfoEntry *si, uint32_t pid, const char *what)
{
	if (!si || si->raw.len != 128) {
		log_err("core-%u.img: a %s pending signal is not a 128-byte siginfo", pid, what);
		return -EINVAL;
	}
	return 0;
}

static int validate_pending(const CoreEntry *c, uint32_t pid)
{
	for (size_t t = 0; t < c->n_threads; t++)
		for (size_t i = 0; i < c->threads[t]->n_pending; i++)
			if (check_siginfo(c->threads[t]->pending[i], pid, "thread's"))
				return -EINVAL;
	for (size_t i = 0; i < c->n_shared_pending; i++)
		if (check_siginfo(c->shared_pending[i], pid, "process-wide"))
			return -EINVAL;
	return 0;
}

/* The threads' own pending signals are in their ThreadCore, taken over by
 * dump.c's dump_thread; the process's are moved here. */
const struct task_state_ops task_signals_ops = {
	.name = "pending signals",
	.dump = dump_shared_pending,
	.validate = validate_pending,
	.restore = {
		[TS_THREADS] = restore_threads_pending,
		[TS_LATE] = restore_shared_pending,
		[TS_RUNNING] = send_pending_stops,
	},
};
