// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Smaller attributes of a process and its threads: umask, personality, name,
 * child subreaper, oom_score_adj, dumpable, parent-death signal, scheduling
 * and I/O priority, CPU affinity, membarrier registrations.
 */
#include <ctype.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "task-state.h"

/*
 * A CPU list as the kernel prints it ("0-3,6\n") into @set; -EINVAL when it
 * is not one or names a CPU past CPU_SETSIZE.
 */
static int parse_cpulist(const char *s, cpu_set_t *set)
{
	CPU_ZERO(set);
	while (*s && *s != '\n') {
		char *end;
		unsigned long a = strtoul(s, &end, 10), b = a;

		if (end == s || !isdigit((unsigned char)*s))
			return -EINVAL;
		s = end;
		if (*s == '-') {
			s++;
			if (!isdigit((unsigned char)*s))
				return -EINVAL;
			b = strtoul(s, &end, 10);
			s = end;
		}
		if (b < a || b >= CPU_SETSIZE)
			return -EINVAL;
		for (unsigned long c = a; c <= b; c++)
			CPU_SET(c, set);
		if (*s == ',')
			s++;
		else if (*s && *s != '\n')
			return -EINVAL;
	}
	return 0;
}

static int read_cpulist(const char *path, cpu_set_t *set)
{
	char buf[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EINVAL;
	buf[n] = 0;
	return parse_cpulist(buf, set);
}

/* The CPUs online, read once. */
static bool online_cpus(cpu_set_t *set)
{
	static cpu_set_t online;
	static int state;	/* 0 unread, 1 read, -1 unreadable */

	if (!state)
		state = read_cpulist("/sys/devices/system/cpu/online", &online) == 0 &&
			CPU_COUNT(&online) ? 1 : -1;
	if (state < 0)
		return false;
	*set = online;
	return true;
}

/*
 * The CPUs @tid could run on if it asked for none: its cpuset cgroup's
 * (cgroup v2 where the cpuset controller is on, or v1's cpuset hierarchy)
 * or else those online.  false when none can be read.
 */
static bool unasked_cpus(pid_t tid, cpu_set_t *set)
{
	char *cg, path[4096], *line, *nl, *at;
	bool ok = false;

	cg = proc_read_file(tid, "cgroup", NULL);

	/* "0::/path" (v2), "N:cpuset:/path" (v1) */
	for (line = cg; !ok && line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		if (!strncmp(line, "0::/", 4))
			snprintf(path, sizeof(path), "/sys/fs/cgroup%s/cpuset.cpus.effective",
				 line[4] ? line + 3 : "");
		else if ((at = strstr(line, ":cpuset:/")) && at == strchr(line, ':'))
			snprintf(path, sizeof(path), "/sys/fs/cgroup/cpuset%s/cpuset.effective_cpus",
				 at[9] ? at + 8 : "");
		else
			continue;
		ok = read_cpulist(path, set) == 0 && CPU_COUNT(set);
	}
	free(cg);
	return ok || online_cpus(set);
}

/*
 * The CPUs @tid may run on, kept only when it (or its parent, or a unit's
 * CPUAffinity=) narrowed them: a thread that may run on every CPU it could
 * gets, at restore, the CPUs of wherever it is restored.
 */
static int dump_cpus(pid_t tid, ThreadCore *tc)
{
	cpu_set_t set, could, both;
	size_t len = 0;

	if (sched_getaffinity(tid, sizeof(set), &set))
		return log_errno(errno, "tid %d: cannot read the CPUs it may run on", tid);
	/* the common case, without reading its cgroup: every CPU online */
	if (online_cpus(&could)) {
		CPU_AND(&both, &set, &could);
		if (CPU_EQUAL(&both, &could))
			return 0;
	}
	if (!unasked_cpus(tid, &could))
		return 0;
	CPU_AND(&both, &set, &could);
	if (CPU_EQUAL(&both, &could))
		return 0;
	for (size_t c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set))
			len = c / 8 + 1;
	tc->cpus.data = malloc(len);
	if (!tc->cpus.data)
		return -ENOMEM;
	memcpy(tc->cpus.data, &set, len);
	tc->cpus.len = len;
	tc->has_cpus = true;
	return 0;
}

/*
 * Scheduling policy, nice and real-time priority (sched_getattr) and the
 * I/O priority (ioprio_get), read from outside.  Deadline scheduling is
 * refused: its runtime and period are an admission the restore may not get.
 */
static int dump_sched(struct task_dump *td, pid_t tid, ThreadCore *tc)
{
	struct sched_attr_k attr;
	long io;

	memset(&attr, 0, sizeof(attr));
	if (syscall(SYS_sched_getattr, tid, &attr, sizeof(attr), 0))
		return log_errno(errno, "tid %d: cannot read its scheduling attributes", tid);
	if (attr.sched_policy == 6 /* SCHED_DEADLINE */) {
		log_err("tid %d: SCHED_DEADLINE scheduling is not supported", tid);
		return -EOPNOTSUPP;
	}
	tc->has_sched_policy = tc->has_sched_flags = tc->has_sched_nice = true;
	tc->has_sched_priority = true;
	tc->sched_policy = attr.sched_policy;
	tc->sched_flags = attr.sched_flags & 1;	/* SCHED_FLAG_RESET_ON_FORK */
	tc->sched_nice = attr.sched_nice;
	tc->sched_priority = attr.sched_priority;
	io = syscall(SYS_ioprio_get, 1 /* IOPRIO_WHO_PROCESS */, tid);
	if (io < 0)
		return log_errno(errno, "tid %d: cannot read its I/O priority", tid);
	tc->has_ioprio = true;
	tc->ioprio = io;
	return dump_cpus(tid, tc);
}

static int stub_set_personality(struct task_rst *tr)
{
	unsigned int want = tr->core->personality;
	int cur, err = 0;
	char d[32], a[32];

	if (personality(want) < 0)
		err = errno;
	cur = personality(0xffffffff);
	if (!err && (unsigned int)cur == want)
		return 0;
	snprintf(d, sizeof(d), "0x%x", want);
	snprintf(a, sizeof(a), "0x%x", (unsigned int)cur);
	return difference(tr, err ? err : EINVAL, "personality", d, a);
}

static int stub_set_oom_score_adj(struct task_rst *tr)
{
	int want = tr->core->oom_score_adj, cur = 0, fd, len, err = 0;
	char buf[32], d[16], a[16];

	fd = open("/proc/self/oom_score_adj", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return log_errno(errno, "pid %u: cannot open /proc/self/oom_score_adj", tr->pid);
	len = snprintf(buf, sizeof(buf), "%d", want);
	if (write(fd, buf, len) < 0)
		err = errno;
	len = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	if (len > 0) {
		buf[len] = 0;
		cur = atoi(buf);
	}
	if (!err && cur == want)
		return 0;
	snprintf(d, sizeof(d), "%d", want);
	snprintf(a, sizeof(a), "%d", cur);
	return difference(tr, err ? err : EINVAL, "oom_score_adj", d, a);
}

/* A CPU set as a list ("0-3,6"), cut short to fit @len. */
static void cpus_str(const cpu_set_t *set, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = 0;
	for (int c = 0; c < CPU_SETSIZE && o < len; c++) {
		int e = c;

		if (!CPU_ISSET(c, set))
			continue;
		while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, set))
			e++;
		o += snprintf(buf + o, len - o, e > c ? "%s%d-%d" : "%s%d", o ? "," : "", c, e);
		c = e;
	}
}

/*
 * The CPUs the thread was given.  The kernel keeps the set asked for and
 * runs the thread on those of them it has (online, in its cgroup): where
 * that is only some of them, a warning; where none, a difference (the
 * thread would run on the restorer's CPUs).
 */
static int restore_cpus(struct task_rst *tr, const ThreadCore *tc, const char *what)
{
	cpu_set_t want, got;
	char d[256], a[256], w[96];

	CPU_ZERO(&want);
	memcpy(&want, tc->cpus.data, tc->cpus.len);
	cpus_str(&want, d, sizeof(d));
	snprintf(w, sizeof(w), "%s CPUs", what);
	if (sched_setaffinity(tc->tid, sizeof(want), &want))
		return difference(tr, errno, w, d, "the restorer's");
	if (sched_getaffinity(tc->tid, sizeof(got), &got))
		return log_errno(errno, "tid %u: cannot read the CPUs it may run on", tc->tid);
	if (!CPU_EQUAL(&got, &want)) {
		cpus_str(&got, a, sizeof(a));
		log_warn("pid %d: tid %u may run on CPUs %s of the %s it had", tr->pid, tc->tid, a, d);
	}
	return 0;
}

/*
 * Scheduling policy, nice, real-time priority and I/O priority of each
 * thread, set from outside once the threads exist.  One that cannot be set
 * (a real-time policy where the cgroup grants no real-time runtime) fails
 * the restore, or with --allow-differences is a warning naming the thread
 * (it runs at the restorer's).
 */
static int restore_sched(struct task_rst *tr)
{
	int err = 0;

	for (size_t t = 0; !err && t < tr->core->n_threads; t++) {
		ThreadCore *tc = tr->core->threads[t];
		struct sched_attr_k attr = { .size = sizeof(attr) };
		char what[64], d[64];

		snprintf(what, sizeof(what), "tid %d's", tc->tid);
		if (tc->has_sched_policy) {
			attr.sched_policy = tc->sched_policy;
			attr.sched_flags = tc->sched_flags & 1;
			attr.sched_nice = tc->sched_nice;
			attr.sched_priority = tc->sched_priority;
			snprintf(d, sizeof(d), "scheduling policy %u (nice %d, priority %u)",
				 tc->sched_policy, tc->sched_nice, tc->sched_priority);
			if (syscall(SYS_sched_setattr, tc->tid, &attr, 0))
				err = difference(tr, errno, what, d, "the restorer's");
		}
		snprintf(d, sizeof(d), "I/O priority class %u level %u", tc->ioprio >> 13,
			 tc->ioprio & 0x1fff);
		if (!err && tc->has_ioprio &&
		    syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, tc->tid, tc->ioprio))
			err = difference(tr, errno, what, d, "the restorer's");
		if (!err && tc->has_cpus)
			err = restore_cpus(tr, tc, what);
	}
	return err;
}

#ifndef MEMBARRIER_CMD_GET_REGISTRATIONS
#define MEMBARRIER_CMD_GET_REGISTRATIONS (1 << 9)	/* Linux 6.3 */
#endif
/* The registrations kept: each REGISTER_* command (bit), the command it
 * allows (a probe where GET_REGISTRATIONS is missing, 0: none), its name. */
static const struct {
	unsigned int reg, probe;
	const char *name;
} membarrier_regs[] = {
	{ MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, "global expedited" },
	{ MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, MEMBARRIER_CMD_PRIVATE_EXPEDITED,
	  "private expedited" },
	{ MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE,
	  MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, "private expedited sync-core" },
	{ MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ,
	  "private expedited rseq" },
};
#define MEMBARRIER_REG_MASK (MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED | \
			     MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED | \
			     MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE | \
			     MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ)

/*
 * The membarrier(2) registrations of the process's mm, asked in it with
 * MEMBARRIER_CMD_GET_REGISTRATIONS.  Before Linux 6.3 there is no such
 * command: each private command is tried instead (it fails with EPERM
 * unless the mm registered for it; run, it is a barrier on threads that are
 * all stopped); a registration for global expedited barriers cannot be seen
 * there (docs/files.md).
 */
static int dump_membarrier(struct task_dump *p, CoreEntry *c)
{
	long ret;
	int err;

	err = PSYS(p->pp, p->pid, &ret, SYS_membarrier, MEMBARRIER_CMD_GET_REGISTRATIONS, 0, 0);
	if (err)
		return err;
	if (ret >= 0) {
		c->membarrier_registrations = ret & MEMBARRIER_REG_MASK;
	} else {
		c->membarrier_registrations = 0;
		for (size_t i = 0; i < sizeof(membarrier_regs) / sizeof(membarrier_regs[0]); i++) {
			if (!membarrier_regs[i].probe)
				continue;
			err = PSYS(p->pp, p->pid, &ret, SYS_membarrier, membarrier_regs[i].probe,
				   0, 0);
			if (err)
				return err;
			if (ret == 0)
				c->membarrier_registrations |= membarrier_regs[i].reg;
		}
	}
	c->has_membarrier_registrations = c->membarrier_registrations != 0;
	return 0;
}

/* Register the restored mm again, in the task, once its memory is in. */
static int restore_membarrier(struct task_rst *tr)
{
	unsigned int want = tr->core->membarrier_registrations;
	long ret;
	int err;

	for (size_t i = 0; i < sizeof(membarrier_regs) / sizeof(membarrier_regs[0]); i++) {
		if (!(want & membarrier_regs[i].reg))
			continue;
		err = task_inj(tr, tr->pid, SYS_membarrier, "membarrier", &ret,
			       membarrier_regs[i].reg, 0, 0, 0, 0, 0);
		if (err)
			return err;
		if (ret < 0) {
			char what[64];

			snprintf(what, sizeof(what), "membarrier registration (%s)",
				 membarrier_regs[i].name);
			err = difference(tr, -ret, what, "registered", "none");
			if (err)
				return err;
		}
	}
	return 0;
}

/* The process's attributes but its scheduling (per thread, dump_sched). */
static int dump_attrs(struct task_dump *p, CoreEntry *c)
{
	char val[64], *s;
	long ret;
	int err;

	if (!proc_status_field(p->status, "Umask", val, sizeof(val)))
		c->umask = strtoul(val, NULL, 8);
	s = proc_read_file(p->pid, "personality", NULL);
	c->personality = s ? strtoul(s, NULL, 16) : 0;
	free(s);
	s = proc_read_file(p->pid, "oom_score_adj", NULL);
	c->oom_score_adj = s ? atoi(s) : 0;
	free(s);

	err = PSYS(p->pp, p->pid, &ret, SYS_prctl, PR_GET_PDEATHSIG, p->pp->scratch);
	if (!err) {
		int v = 0;
		err = task_read_scratch(p, &v, sizeof(v));
		c->pdeathsig = v;
	}
	if (!err)
		err = PSYS(p->pp, p->pid, &ret, SYS_prctl, PR_GET_DUMPABLE);
	if (err)
		return err;
	c->dumpable = ret;
	if (!PSYS(p->pp, p->pid, &ret, SYS_prctl, PR_GET_CHILD_SUBREAPER, p->pp->scratch)) {
		int v = 0;
		task_read_scratch(p, &v, sizeof(v));
		c->has_child_subreaper = true;
		c->child_subreaper = v;
	}
	c->has_exit_signal = true;
	c->exit_signal = p->st->exit_signal;
	return dump_membarrier(p, c);
}

/*
 * What the task sets on itself in its stub, before its signal actions:
 * umask, personality, name, child subreaper, oom_score_adj.
 */
static int stub_set_attrs(struct task_rst *tr)
{
	CoreEntry *core = tr->core;
	int ret;

	umask(core->umask & 0777);
	ret = stub_set_personality(tr);
	if (ret)
		return ret;
	if (core->n_threads && core->threads[0]->comm)
		prctl(PR_SET_NAME, core->threads[0]->comm);
	if (core->has_child_subreaper)
		prctl(PR_SET_CHILD_SUBREAPER, core->child_subreaper);
	return stub_set_oom_score_adj(tr);
}

/* Once its credentials are set (they reset it). */
static int restore_dumpable(struct task_rst *tk)
{
	return TASK_INJ(tk, tk->pid, SYS_prctl, "cannot set dumpable", PR_SET_DUMPABLE,
			tk->core->dumpable, 0, 0, 0, 0);
}

/* Last of all (takeover_finish): until then the stub's SIGKILL stays. */
static int restore_pdeathsig(struct task_rst *tk)
{
	return TASK_INJ(tk, tk->pid, SYS_prctl, "cannot restore the parent-death signal",
			PR_SET_PDEATHSIG, tk->core->pdeathsig, 0, 0, 0, 0);
}

static int validate_attrs(const CoreEntry *c, uint32_t pid)
{
	for (size_t t = 0; t < c->n_threads; t++) {
		const ThreadCore *tc = c->threads[t];
		uint32_t tid = tc->tid;

		/* SCHED_OTHER, FIFO, RR, BATCH, IDLE; nice and real-time priority
		 * in the kernel's ranges; I/O class none, real-time, best-effort, idle */
		if (tc->has_sched_policy &&
		    (tc->sched_policy > 5 || tc->sched_policy == 4 || tc->sched_nice < -20 ||
		     tc->sched_nice > 19 || tc->sched_priority > 99 || (tc->sched_flags & ~1ULL))) {
			log_err("core-%u.img: thread %u: bad scheduling policy %u (nice %d, priority %u, "
				"flags 0x%llx)", pid, tid, tc->sched_policy, tc->sched_nice,
				tc->sched_priority, (unsigned long long)tc->sched_flags);
			return -EINVAL;
		}
		if (tc->has_ioprio && (tc->ioprio >> 13) > 3) {
			log_err("core-%u.img: thread %u: bad I/O priority 0x%x", pid, tid, tc->ioprio);
			return -EINVAL;
		}
		if (tc->has_cpus && (!tc->cpus.len || tc->cpus.len > sizeof(cpu_set_t) ||
				     !tc->cpus.data[tc->cpus.len - 1])) {
			log_err("core-%u.img: thread %u: bad CPU set (%zu bytes)", pid, tid,
				tc->cpus.len);
			return -EINVAL;
		}
	}
	if (c->membarrier_registrations & ~MEMBARRIER_REG_MASK) {
		log_err("core-%u.img: unknown membarrier registrations 0x%x", pid,
			c->membarrier_registrations);
		return -EINVAL;
	}
	if (c->oom_score_adj < -1000 || c->oom_score_adj > 1000) {
		log_err("core-%u.img: oom_score_adj %d is out of range", pid, c->oom_score_adj);
		return -EINVAL;
	}
	return 0;
}

const struct task_state_ops task_attrs_ops = {
	.name = "attributes",
	.dump = dump_attrs,
	.validate = validate_attrs,
	.dump_thread = dump_sched,
	.restore = {
		[TS_STUB] = stub_set_attrs,
		[TS_LATE] = restore_membarrier,
		[TS_AFTER_CREDS] = restore_dumpable,
		[TS_OUTSIDE] = restore_sched,
		[TS_FINISH] = restore_pdeathsig,
	},
};
