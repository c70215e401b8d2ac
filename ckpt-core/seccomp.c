// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Seccomp: strict mode and filters, per thread.
 *
 * Dump: the mode comes from /proc/PID/task/TID/status ("Seccomp:"), the
 * filters from ptrace(PTRACE_SECCOMP_GET_FILTER) (index 0 is the oldest) and
 * their flags from PTRACE_SECCOMP_GET_METADATA; they are kept oldest first.
 * A filter that can hand a syscall to a user-space supervisor
 * (SECCOMP_RET_USER_NOTIF) is refused: its listener cannot be kept.
 *
 * Restore: the filters are installed with injected seccomp() calls, oldest
 * first.  Threads that all have the main thread's chain get it as one shared
 * chain (the last filter is installed with SECCOMP_FILTER_FLAG_TSYNC), as
 * after a TSYNC or a clone; other threads get their own chains.  The tracer
 * holds PTRACE_O_SUSPEND_SECCOMP on every thread, so a filter installed
 * before the restore ends filters none of the restorer's syscalls: it
 * applies from the moment the task is detached.
 */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include "internal.h"
#include "task-state.h"

#ifndef PTRACE_SECCOMP_GET_FILTER
#define PTRACE_SECCOMP_GET_FILTER	0x420c
#endif
#ifndef PTRACE_SECCOMP_GET_METADATA
#define PTRACE_SECCOMP_GET_METADATA	0x420d
#endif
#ifndef SECCOMP_RET_USER_NOTIF
#define SECCOMP_RET_USER_NOTIF		0x7fc00000U
#endif
#ifndef SECCOMP_FILTER_FLAG_LOG
#define SECCOMP_FILTER_FLAG_LOG		(1UL << 1)
#endif

#define BPF_INSN_SIZE		8
#define SECCOMP_INSNS_MAX	4096	/* BPF_MAXINSNS */
#define SECCOMP_PATH_MAX	32768	/* MAX_INSNS_PER_PATH */
#define SECCOMP_FLAGS_KEPT	SECCOMP_FILTER_FLAG_LOG

/* ---- dump ----------------------------------------------------------------- */

static int thread_mode(pid_t pid, pid_t tid, uint32_t *mode)
{
	char name[64], val[32], *status;
	int ret;

	snprintf(name, sizeof(name), "task/%d/status", tid);
	status = proc_read_file(pid, name, NULL);
	if (!status)
		return log_errno(errno, "pid %d tid %d: cannot read its status", pid, tid);
	ret = proc_status_field(status, "Seccomp", val, sizeof(val));
	free(status);
	*mode = ret ? 0 : strtoul(val, NULL, 10);
	if (*mode > SECCOMP_MODE_FILTER) {
		log_err("pid %d tid %d: unknown seccomp mode %u", pid, tid, *mode);
		return -EOPNOTSUPP;
	}
	return 0;
}

/* Can the program hand a syscall to a supervisor?  RET A: cannot tell. */
static const char *filter_refusal(const struct sock_filter *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (BPF_CLASS(f[i].code) != BPF_RET)
			continue;
		if (BPF_RVAL(f[i].code) == BPF_A)
			return "returns a computed action (BPF_RET|BPF_A)";
		if ((f[i].k & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_USER_NOTIF)
			return "sends syscalls to a user-space supervisor (SECCOMP_RET_USER_NOTIF)";
	}
	return NULL;
}

static int dump_one_filter(pid_t pid, pid_t tid, unsigned long idx, SeccompFilter *sf)
{
	struct { uint64_t filter_off, flags; } md = { idx, 0 };
	struct sock_filter *prog;
	const char *why;
	long n;

	n = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, idx, NULL);
	if (n <= 0 || n > SECCOMP_INSNS_MAX)
		return log_errno(n < 0 ? errno : EINVAL, "pid %d tid %d: cannot read seccomp filter %lu",
				 pid, tid, idx);
	prog = calloc(n, BPF_INSN_SIZE);
	if (!prog)
		return -ENOMEM;
	if (ptrace(PTRACE_SECCOMP_GET_FILTER, tid, idx, prog) != n) {
		free(prog);
		return log_errno(errno, "pid %d tid %d: cannot read seccomp filter %lu", pid, tid, idx);
	}
	sf->bpf.data = (uint8_t *)prog;
	sf->bpf.len = n * BPF_INSN_SIZE;
	why = filter_refusal(prog, n);
	if (why) {
		log_err("pid %d tid %d: seccomp filter %lu %s: not supported", pid, tid, idx, why);
		return -EOPNOTSUPP;
	}
	if (ptrace(PTRACE_SECCOMP_GET_METADATA, tid, sizeof(md), &md) < 0)
		return log_errno(errno, "pid %d tid %d: cannot read the flags of seccomp filter %lu",
				 pid, tid, idx);
	if (md.flags & ~(uint64_t)SECCOMP_FLAGS_KEPT) {
		log_err("pid %d tid %d: seccomp filter %lu has flags 0x%llx: not supported", pid, tid,
			idx, (unsigned long long)md.flags);
		return -EOPNOTSUPP;
	}
	sf->has_flags = true;
	sf->flags = md.flags;
	return 0;
}

int seccomp_dump_prepare(pid_t pid, pid_t tid)
{
	uint32_t mode;
	int ret = thread_mode(pid, tid, &mode);

	if (ret || !mode)
		return ret;
	ret = puppet_suspend_seccomp(tid);
	if (ret)
		return log_errno(ret, "pid %d tid %d: has seccomp %s, and kup cannot hold them off "
				 "while it inspects the task (PTRACE_O_SUSPEND_SECCOMP needs "
				 "CAP_SYS_ADMIN and no seccomp filter of kup's own)", pid, tid,
				 mode == SECCOMP_MODE_STRICT ? "strict mode" : "filters");
	return 0;
}

int seccomp_dump_thread(pid_t pid, pid_t tid, ThreadCore *tc)
{
	SeccompFilter **v = NULL;
	size_t n = 0;
	int ret;

	ret = thread_mode(pid, tid, &tc->seccomp_mode);
	if (ret)
		return ret;
	tc->has_seccomp_mode = true;
	if (tc->seccomp_mode != SECCOMP_MODE_FILTER)
		return 0;
	/* count them first; index 0 is the oldest */
	for (;; n++) {
		if (ptrace(PTRACE_SECCOMP_GET_FILTER, tid, n, NULL) >= 0)
			continue;
		if (errno == ENOENT)
			break;
		return log_errno(errno, "pid %d tid %d: cannot read its seccomp filters "
				 "(PTRACE_SECCOMP_GET_FILTER)", pid, tid);
	}
	if (!n || n > SECCOMP_PATH_MAX) {
		log_err("pid %d tid %d: seccomp mode 2 with %zu filters", pid, tid, n);
		return -EINVAL;
	}
	v = calloc(n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	tc->seccomp_filters = v;
	for (size_t i = 0; i < n; i++) {
		SeccompFilter *sf = malloc(sizeof(*sf));

		if (!sf)
			return -ENOMEM;
		seccomp_filter__init(sf);
		v[tc->n_seccomp_filters++] = sf;
		ret = dump_one_filter(pid, tid, i, sf);
		if (ret)
			return ret;
	}
	log_debug("pid %d tid %d: %zu seccomp filters", pid, tid, n);
	return 0;
}

/* ---- validation of untrusted images ------------------------------------------- */

int seccomp_validate(const CoreEntry *c)
{
	for (size_t t = 0; t < c->n_threads; t++) {
		const ThreadCore *tc = c->threads[t];
		uint64_t total = 0;

		if (tc->seccomp_mode > SECCOMP_MODE_FILTER ||
		    (tc->seccomp_mode != SECCOMP_MODE_FILTER && tc->n_seccomp_filters) ||
		    (tc->seccomp_mode == SECCOMP_MODE_FILTER && !tc->n_seccomp_filters) ||
		    tc->n_seccomp_filters > SECCOMP_PATH_MAX) {
			log_err("core-%u.img: tid %u: bad seccomp mode %u with %zu filters", c->pid,
				tc->tid, tc->seccomp_mode, tc->n_seccomp_filters);
			return -EINVAL;
		}
		for (size_t i = 0; i < tc->n_seccomp_filters; i++) {
			const SeccompFilter *sf = tc->seccomp_filters[i];
			size_t len = sf ? sf->bpf.len : 0;

			total += len / BPF_INSN_SIZE + 4;	/* the kernel's per-filter cost */
			if (!len || len % BPF_INSN_SIZE || len / BPF_INSN_SIZE > SECCOMP_INSNS_MAX ||
			    !sf->bpf.data || (sf->flags & ~SECCOMP_FLAGS_KEPT) || total > SECCOMP_PATH_MAX) {
				log_err("core-%u.img: tid %u: seccomp filter %zu is invalid", c->pid,
					tc->tid, i);
				return -EINVAL;
			}
		}
	}
	return 0;
}

/* ---- restore --------------------------------------------------------------------- */

static bool same_chain(const ThreadCore *a, const ThreadCore *b)
{
	if (a->seccomp_mode != b->seccomp_mode || a->n_seccomp_filters != b->n_seccomp_filters)
		return false;
	for (size_t i = 0; i < a->n_seccomp_filters; i++) {
		const SeccompFilter *x = a->seccomp_filters[i], *y = b->seccomp_filters[i];

		if (x->bpf.len != y->bpf.len || x->flags != y->flags ||
		    memcmp(x->bpf.data, y->bpf.data, x->bpf.len))
			return false;
	}
	return true;
}

static int inject(struct puppet *pp, pid_t pid, pid_t tid, const char *what, long *ret, long nr,
		  unsigned long a0, unsigned long a1, unsigned long a2)
{
	const unsigned long a[6] = { a0, a1, a2 };
	int err = puppet_syscall_n(pp, tid, ret, nr, a);

	if (!err && *ret < 0 && *ret > -4096)
		err = log_errno(-*ret, "pid %d tid %d: %s", pid, tid, what);
	return err;
}

/* Install @tc's filters in @tid through a buffer at @buf in the target. */
static int install_chain(struct puppet *pp, pid_t pid, pid_t tid, const ThreadCore *tc,
			 unsigned long buf, bool tsync)
{
	long ret;
	int err = 0;

	for (size_t i = 0; !err && i < tc->n_seccomp_filters; i++) {
		const SeccompFilter *sf = tc->seccomp_filters[i];
		struct { uint16_t len; uint16_t pad[3]; uint64_t filter; } fprog = {
			(uint16_t)(sf->bpf.len / BPF_INSN_SIZE), { 0 }, buf + 16 };
		unsigned long flags = sf->flags;

		if (tsync && i == tc->n_seccomp_filters - 1)
			flags |= SECCOMP_FILTER_FLAG_TSYNC;
		err = puppet_write(pid, buf, &fprog, sizeof(fprog));
		if (!err)
			err = puppet_write(pid, buf + 16, sf->bpf.data, sf->bpf.len);
		if (!err)
			err = inject(pp, pid, tid, "cannot install a seccomp filter", &ret,
				     SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, buf);
		if (!err && ret) {	/* TSYNC: the thread that could not follow */
			log_err("pid %d: thread %ld cannot share the seccomp filters of tid %d", pid,
				ret, tid);
			err = -EBUSY;
		}
	}
	return err;
}

int seccomp_restore(struct puppet *pp, const CoreEntry *c)
{
	pid_t pid = c->pid;
	const ThreadCore *main_tc = c->threads[0];
	bool shared = main_tc->seccomp_mode == SECCOMP_MODE_FILTER;
	size_t bufsz = 0;
	unsigned long buf = 0;
	long ret;
	int err = 0;

	for (size_t t = 0; t < c->n_threads; t++) {
		const ThreadCore *tc = c->threads[t];

		shared &= same_chain(main_tc, tc);
		for (size_t i = 0; i < tc->n_seccomp_filters; i++)
			if (tc->seccomp_filters[i]->bpf.len > bufsz)
				bufsz = tc->seccomp_filters[i]->bpf.len;
		if (tc->seccomp_mode && puppet_suspend_seccomp(tc->tid))
			return log_errno(EPERM, "pid %d tid %u: cannot restore its seccomp state: the "
					 "restorer cannot hold the filters off (PTRACE_O_SUSPEND_SECCOMP "
					 "needs CAP_SYS_ADMIN and no seccomp filter of its own)",
					 pid, tc->tid);
	}
	if (bufsz) {
		bufsz = PAGE_ALIGN_K(bufsz + 16);
		const unsigned long a[6] = { 0, bufsz, PROT_READ | PROT_WRITE,
					     MAP_PRIVATE | MAP_ANONYMOUS, (unsigned long)-1, 0 };

		err = puppet_syscall_n(pp, pid, &ret, SYS_mmap, a);
		if (!err && ret < 0 && ret > -4096)
			err = log_errno(-ret, "pid %d: cannot map a buffer for seccomp filters", pid);
		if (err)
			return err;
		buf = ret;
	}
	if (shared) {
		err = install_chain(pp, pid, pid, main_tc, buf, c->n_threads > 1);
	} else {
		for (size_t t = 0; !err && t < c->n_threads; t++) {
			const ThreadCore *tc = c->threads[t];

			if (tc->seccomp_mode == SECCOMP_MODE_STRICT)
				err = inject(pp, pid, tc->tid, "cannot enter seccomp strict mode", &ret,
					     SYS_prctl, PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0);
			else if (tc->seccomp_mode == SECCOMP_MODE_FILTER)
				err = install_chain(pp, pid, tc->tid, tc, buf, false);
		}
	}
	if (buf && !err)
		err = inject(pp, pid, pid, "cannot unmap the seccomp buffer", &ret, SYS_munmap, buf,
			     bufsz, 0);
	return err;
}

/* ---- the table's entry (task-state.h) ---- */

static int seccomp_dump_task_thread(struct task_dump *td, pid_t tid, ThreadCore *tc)
{
	return seccomp_dump_thread(td->pid, tid, tc);
}

/*
 * Before the credentials, which may drop the CAP_SYS_ADMIN a filter
 * without no_new_privs needs; the filters are held off
 * (PTRACE_O_SUSPEND_SECCOMP) until the task is detached.
 */
static int seccomp_restore_task(struct task_rst *tr)
{
	return seccomp_restore(tr->pp, tr->core);
}

static int seccomp_validate_task(const CoreEntry *c, uint32_t pid)
{
	return seccomp_validate(c);
}

const struct task_state_ops task_seccomp_ops = {
	.name = "seccomp",
	.dump_thread = seccomp_dump_task_thread,
	.validate = seccomp_validate_task,
	.restore = { [TS_PRIV] = seccomp_restore_task },
};
