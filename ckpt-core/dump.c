// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Dump: freeze a process tree, save it to an image store, then kill it or let
 * it go on.  Any failure before the end leaves the tree exactly as it was,
 * running, and removes what was written.  So does an abort request
 * (ckpt_request_abort, from a signal): it is polled between tasks and
 * stages and between chunks of the memory copy, up to the commit; the
 * failure path itself never polls.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "ipc-sysv.h"
#include "journal.h"
#include "shmem.h"
#include "task-state.h"

#define PF_IO_WORKER	0x00000010
#define PF_KTHREAD	0x00200000
#define PF_EXITING	0x00000004

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif
struct kup_rseq_conf {
	uint64_t rseq_abi_pointer;
	uint32_t rseq_abi_size;
	uint32_t signature;
	uint32_t flags;
	uint32_t pad;
};

struct dthread {
	pid_t tid;
	bool seized;
	bool running;		/* seized, but it did not stop in time */
	uint64_t sigmask;	/* saved while we block everything */
	bool mask_saved;
	struct arch_regs regs;	/* its own, while it is parked */
	bool regs_saved, parked;
	/* a signal it had already taken when we seized it (it stopped in
	 * signal-delivery-stop): pending again for the image and the tree */
	bool held;
	bool in_delivery;	/* still in that stop: nothing ran in it since */
	int held_sig;
	uint8_t held_si[128];
	/* its private pending signals, read before anything ran in it: the
	 * first npend_max, those it had once it was frozen (count_pending) */
	SiginfoEntry **pend;
	size_t npend, npend_max;
	bool stop_pending;	/* SIGSTOP among them */
	bool took_stop;		/* took one sent during an injected syscall */
};

struct dproc {
	pid_t pid;
	struct proc_stat st;
	TaskState state;
	struct dthread *t;
	int nt;
	struct puppet pp;
	CoreEntry core;
	MmImage mm;
	struct mem_frames frames;	/* of its memory, for its children (mem.c) */
	FdtableEntry fdt;
	bool have_core, have_mm, have_fdt;
	SiginfoEntry **spend;	/* shared pending signals, read before anything ran */
	size_t nspend, nspend_max;
	bool stop_pending;	/* SIGSTOP among them */
};

struct dtree {
	struct dproc *p;
	int n, cap;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static struct dproc *tree_find(struct dtree *t, pid_t pid)
{
	for (int i = 0; i < t->n; i++)
		if (t->p[i].pid == pid)
			return &t->p[i];
	return NULL;
}

static struct dproc *tree_add(struct dtree *t, pid_t pid)
{
	if (t->n == t->cap) {
		struct dproc *np;
		t->cap = t->cap ? t->cap * 2 : 16;
		np = realloc(t->p, t->cap * sizeof(*np));
		if (!np)
			return NULL;
		t->p = np;
	}
	memset(&t->p[t->n], 0, sizeof(t->p[0]));
	t->p[t->n].pid = pid;
	return &t->p[t->n++];
}

/* ---- freezing ------------------------------------------------------------- */

static bool is_io_worker(const struct proc_stat *st)
{
	return (st->flags & PF_IO_WORKER) || !strncmp(st->comm, "iou-", 4);
}

/*
 * io_uring is refused (docs/design.md, "io_uring"), before anything is
 * seized: its io worker threads (iou-wrk-*, iou-sqp-*) do not stop for
 * ptrace, and a freeze that waits for them holds the whole tree frozen.
 * Named: the pid, its io_uring fds and its worker threads.
 */
static int refuse_io_uring(pid_t pid)
{
	char path[64], link[64], fds[128] = "", workers[256] = "", *maps;
	struct dirent *de;
	bool mapped;
	size_t fl = 0, wl = 0;
	pid_t *tids;
	DIR *dir;
	int n;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	dir = opendir(path);
	while (dir && (de = readdir(dir))) {
		ssize_t l;

		if (de->d_name[0] == '.')
			continue;
		l = readlinkat(dirfd(dir), de->d_name, link, sizeof(link) - 1);
		if (l <= 0)
			continue;
		link[l] = 0;
		if (strcmp(link, "anon_inode:[io_uring]") || fl >= sizeof(fds) - 16)
			continue;
		fl += snprintf(fds + fl, sizeof(fds) - fl, "%sfd %s", fl ? ", " : "", de->d_name);
	}
	if (dir)
		closedir(dir);
	if (!proc_list_tids(pid, &tids, &n)) {
		for (int i = 0; i < n; i++) {
			struct proc_stat ts;

			if (proc_read_stat(pid, tids[i], &ts) || !is_io_worker(&ts) ||
			    wl >= sizeof(workers) - 32)
				continue;
			wl += snprintf(workers + wl, sizeof(workers) - wl, "%stid %d (%.20s)",
				       wl ? ", " : "", tids[i], ts.comm);
		}
		free(tids);
	}
	/* a ring whose fd was closed lives on in its mappings */
	maps = proc_read_file(pid, "maps", NULL);
	mapped = maps && strstr(maps, "anon_inode:[io_uring]");
	free(maps);
	if (!fl && !wl && !mapped)
		return 0;
	log_err("pid %d: uses io_uring (%s%s%s%s%s%s): io_uring is not supported, nothing was "
		"frozen or changed", pid, fl ? fds : "", fl ? " anon_inode:[io_uring]" : "",
		fl && wl ? "; its io worker threads " : wl ? "io worker threads " : "", workers,
		(fl || wl) && mapped ? "; " : "", mapped ? "its rings mapped" : "");
	return -EOPNOTSUPP;
}

/* The resident anonymous memory of @pid (/proc/PID/status RssAnon), 0 if
 * unknown */
static uint64_t rss_anon_kb(pid_t pid)
{
	char *st = proc_read_file(pid, "status", NULL), v[32];
	uint64_t kb = 0;

	if (st && !proc_status_field(st, "RssAnon", v, sizeof(v)))
		kb = strtoull(v, NULL, 10);
	free(st);
	return kb;
}

/* Before the first seize: what would make the freeze fail or hang, looked at
 * in the whole tree as it stands (the freeze looks again as it goes); and
 * its resident anonymous memory (*@anon_kb). */
static int precheck_tree(pid_t root, uint64_t *anon_kb)
{
	pid_t *pids = malloc(sizeof(*pids)), *tids, *kids;
	int n = 1, cap = 1, ret = 0, nt, nk;

	if (!pids)
		return -ENOMEM;
	pids[0] = root;
	*anon_kb = 0;
	for (int i = 0; i < n && !ret; i++) {
		*anon_kb += rss_anon_kb(pids[i]);
		ret = refuse_io_uring(pids[i]);
		if (ret || proc_list_tids(pids[i], &tids, &nt))
			continue;
		for (int j = 0; j < nt && !ret; j++) {
			if (proc_list_children(pids[i], tids[j], &kids, &nk))
				continue;
			for (int k = 0; k < nk && !ret; k++) {
				bool known = false;

				for (int m = 0; m < n; m++)
					known |= pids[m] == kids[k];
				if (known)
					continue;
				if (n == cap) {
					pid_t *np = realloc(pids, (cap *= 2) * sizeof(*np));

					if (!np) {
						ret = -ENOMEM;
						break;
					}
					pids = np;
				}
				pids[n++] = kids[k];
			}
			free(kids);
		}
		free(tids);
	}
	free(pids);
	return ret;
}

/*
 * The stop that follows our interrupt may be a signal-delivery-stop: the
 * thread had dequeued a signal (one arriving as we seized it) and resuming
 * it for an injected syscall would drop that signal.  Keep its siginfo: it
 * is pending again in the image, and put back into the thread
 * (requeue_held) before the dump reads or changes anything.
 */
static void note_held_signal(struct dthread *t)
{
	siginfo_t si;

	if (ptrace(PTRACE_GETSIGINFO, t->tid, 0, &si) || si.si_signo <= 0 || si.si_signo > 64)
		return;
	/* our own interrupt and a group stop are event stops, not signals */
	if ((si.si_code >> 8) == PTRACE_EVENT_STOP || si.si_signo == SIGKILL)
		return;
	t->held = t->in_delivery = true;
	t->held_sig = si.si_signo;
	memcpy(t->held_si, &si, sizeof(t->held_si) < sizeof(si) ? sizeof(t->held_si) : sizeof(si));
}

/* @tid of @pid has exited (a zombie, or gone) */
static bool thread_exited(pid_t pid, pid_t tid)
{
	struct proc_stat ts;

	return proc_read_stat(pid, tid, &ts) || ts.state == 'Z' || ts.state == 'X';
}

static int freeze_threads(struct dproc *p)
{
	for (int round = 0; round < 100; round++) {
		struct proc_stat ts;
		pid_t *tids;
		int n, ret, added = 0;

		ret = proc_list_tids(p->pid, &tids, &n);
		if (ret)
			return log_errno(ret, "pid %d: cannot list threads", p->pid);
		for (int i = 0; i < n; i++) {
			bool known = false;

			for (int j = 0; j < p->nt; j++)
				known |= p->t[j].tid == tids[i];
			if (known)
				continue;
			if (!proc_read_stat(p->pid, tids[i], &ts) && is_io_worker(&ts)) {
				free(tids);
				return refuse_io_uring(p->pid) ?: -EOPNOTSUPP;
			}
			ret = puppet_seize(tids[i], true);
			/* exited meanwhile; EPERM: a zombie by the seize */
			if (ret == -ESRCH || (ret == -EPERM && thread_exited(p->pid, tids[i])))
				continue;
			if (ret && ret != -ETIMEDOUT) {
				pid_t tid = tids[i];

				free(tids);
				return log_errno(ret, "pid %d tid %d: cannot freeze", p->pid, tid);
			}
			struct dthread *nt = realloc(p->t, (p->nt + 1) * sizeof(*nt));
			if (!nt) {
				free(tids);
				return -ENOMEM;
			}
			p->t = nt;
			memset(&p->t[p->nt], 0, sizeof(p->t[0]));
			p->t[p->nt].tid = tids[i];
			p->t[p->nt].seized = true;
			p->t[p->nt].running = ret == -ETIMEDOUT;
			if (!ret)
				note_held_signal(&p->t[p->nt]);
			p->nt++;
			added++;
			if (ret) {
				pid_t tid = tids[i];

				free(tids);
				if (proc_read_stat(p->pid, tid, &ts))
					snprintf(ts.comm, sizeof(ts.comm), "?"), ts.state = '?';
				log_err("pid %d tid %d (%s): did not stop within %d s (state %c: an "
					"uninterruptible wait, a vfork parent...): the tree is given back",
					p->pid, tid, ts.comm, PUPPET_STOP_TIMEOUT_MS / 1000, ts.state);
				return -ETIMEDOUT;
			}
		}
		free(tids);
		if (!added)
			return 0;
	}
	log_err("pid %d: threads keep appearing, cannot freeze", p->pid);
	return -EAGAIN;
}

/*
 * How many signals each thread of @p, and @p itself, has queued, counted as
 * soon as all its threads are stopped: what snapshot_pending reads.  The
 * signals that keep coming while the tree is frozen are queued after them
 * and stay with the task when it is let go; read with them, a queue that
 * grows as fast as it is read would hold the tree frozen (pending_count).
 */
static int count_pending(struct dproc *p)
{
	int err;

	for (int i = 0; i < p->nt; i++) {
		err = pending_count(p->t[i].tid, false, &p->t[i].npend_max);
		if (err)
			return err;
	}
	return p->nt ? pending_count(p->pid, true, &p->nspend_max) : 0;
}

/* The threads of @p as they are, none seized (the check of a live tree). */
static int list_threads(struct dproc *p)
{
	pid_t *tids;
	int n, ret = proc_list_tids(p->pid, &tids, &n);

	if (ret == -ENOENT || ret == -ESRCH)
		return 0;	/* gone meanwhile */
	if (ret)
		return log_errno(ret, "pid %d: cannot list threads", p->pid);
	p->t = calloc(n ? n : 1, sizeof(*p->t));
	if (!p->t) {
		free(tids);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++)
		p->t[i].tid = tids[i];
	p->nt = n;
	free(tids);
	return 0;
}

/*
 * The tree of @root, parents first, each task frozen (or, @live: only
 * looked at, for ckpt_dump_check: its threads listed, none seized).
 */
static int freeze_tree(struct dtree *t, pid_t root, bool live)
{
	struct dproc *p = tree_add(t, root);

	if (!p)
		return -ENOMEM;
	for (int i = 0; i < t->n; i++) {
		pid_t pid = t->p[i].pid;
		int ret;

		ret = ckpt_check_abort();
		if (ret)
			return ret;
		ret = proc_read_stat(pid, 0, &t->p[i].st);
		if (ret && live && i) {
			/* the tree runs: a child listed may be gone and reaped */
			memmove(&t->p[i], &t->p[i + 1], (t->n - i - 1) * sizeof(t->p[0]));
			t->n--;
			i--;
			continue;
		}
		if (ret)
			return log_errno(ret, "pid %d: cannot read /proc/%d/stat", pid, pid);
		if (t->p[i].st.flags & PF_KTHREAD) {
			log_err("pid %d (%s): is a kernel thread, it cannot be dumped", pid, t->p[i].st.comm);
			return -EPERM;
		}
		if (t->p[i].st.state == 'Z' || t->p[i].st.state == 'X') {
			t->p[i].state = TASK_STATE__TASK_ZOMBIE;
			continue;
		}
		ret = refuse_io_uring(pid);
		if (ret)
			return ret;
		t->p[i].state = t->p[i].st.state == 'T' ? TASK_STATE__TASK_STOPPED : TASK_STATE__TASK_ALIVE;
		ret = live ? list_threads(&t->p[i]) : freeze_threads(&t->p[i]);
		if (!ret && !live)
			ret = count_pending(&t->p[i]);
		if (ret)
			return ret;
		/* stat again: frozen now, and ppid/pgid/sid are final */
		ret = proc_read_stat(pid, 0, &t->p[i].st);
		if (!t->p[i].nt && i) {
			/* every thread exited between the listing and the
			 * seize: a zombie now (its parent is frozen), or
			 * reaped by the kernel (SIGCHLD ignored) */
			if (!ret && (t->p[i].st.state == 'Z' || t->p[i].st.state == 'X')) {
				t->p[i].state = TASK_STATE__TASK_ZOMBIE;
				continue;
			}
			if (ret) {
				free(t->p[i].t);
				memmove(&t->p[i], &t->p[i + 1], (t->n - i - 1) * sizeof(t->p[0]));
				t->n--;
				i--;
				continue;
			}
		}
		for (int j = 0; j < t->p[i].nt; j++) {
			pid_t *kids;
			int nk;

			if (proc_list_children(pid, t->p[i].t[j].tid, &kids, &nk))
				continue;
			for (int k = 0; k < nk; k++) {
				if (tree_find(t, kids[k]))
					continue;
				if (!tree_add(t, kids[k])) {
					free(kids);
					return -ENOMEM;
				}
			}
			free(kids);
		}
	}
	return 0;
}

/*
 * Take the threads of @p out of the parking loop (park_threads) onto their
 * own registers, the main thread last, as the trampoline goes.  Every
 * thread gets its registers back whatever fails.
 */
static int unpark_threads(struct dproc *p)
{
	int ret = 0, err;

	for (int i = p->nt; i-- > 1;) {
		struct dthread *t = &p->t[i];

		if (t->parked && arch_set_regs(t->tid, &t->regs) && !ret)
			ret = -EIO;
		t->parked = false;
	}
	if (p->nt) {
		struct dthread *t = &p->t[0];
		bool area = p->pp.own_area && p->pp.tramp;

		err = area ? puppet_uninstall(&p->pp, t->tid, t->regs_saved ? &t->regs : NULL) : 0;
		ret = ret ? ret : err;
		if (t->parked && (err || !area) && arch_set_regs(t->tid, &t->regs) && !ret)
			ret = -EIO;
		t->parked = false;
	}
	return ret;
}

static void release_tree(struct dtree *t, bool kill_it)
{
	if (kill_it)
		for (int i = 0; i < t->n; i++)
			if (t->p[i].state != TASK_STATE__TASK_ZOMBIE)
				kill(t->p[i].pid, SIGKILL);
	for (int i = 0; i < t->n; i++) {
		struct dproc *p = &t->p[i];

		if (!kill_it && unpark_threads(p))
			log_err("pid %d: kup's trampoline could not be removed cleanly", p->pid);

		for (int j = 0; j < p->nt; j++) {
			if (!p->t[j].seized)
				continue;
			if (p->t[j].mask_saved && !kill_it)
				ptrace(PTRACE_SETSIGMASK, p->t[j].tid, sizeof(uint64_t), &p->t[j].sigmask);
			/* one that never stopped cannot be detached while it runs: its
			 * stop, if it comes, is let go now or when we exit */
			if (p->t[j].running)
				puppet_wait_stop_bounded(p->t[j].tid, &(int){ 0 }, 0);
			/* a SIGSTOP sent to it while kup drove it, passed over */
			p->t[j].took_stop = puppet_took_stop(p->t[j].tid);
			/* a signal it had taken as we seized it is given back */
			ptrace(PTRACE_DETACH, p->t[j].tid, 0,
			       !kill_it && p->t[j].in_delivery ? p->t[j].held_sig : 0);
			p->t[j].seized = false;
		}
		/* a stopped task stops again by itself once detached (its group
		 * stop is still in effect); what it had pending stays so, but a
		 * SIGSTOP it took during an injected syscall is sent again, one
		 * it had pending before the dump as one sent during it (a
		 * second one is one: stop signals do not queue) */
		if (kill_it)
			continue;
		for (int j = 0; j < p->nt; j++)
			if ((p->t[j].stop_pending || p->t[j].took_stop) &&
			    !(p->t[j].in_delivery && p->t[j].held_sig == SIGSTOP))
				syscall(SYS_tgkill, p->pid, p->t[j].tid, SIGSTOP);
		if (p->stop_pending)
			kill(p->pid, SIGSTOP);
	}
}

/* ---- per-thread state ----------------------------------------------------- */

static int read_scratch(struct dproc *p, void *buf, size_t len)
{
	return puppet_read(p->pid, p->pp.scratch, buf, len);
}

static int dump_thread(struct dproc *p, struct dthread *t, ThreadCore *tc)
{
	struct task_dump td = { .pid = p->pid, .pp = &p->pp, .st = &p->st };
	struct arch_regs regs;
	struct kup_rseq_conf rc;
	uint64_t tidaddr = 0;
	struct { uint64_t sp; int32_t flags; int32_t pad; uint64_t size; } ss;
	void *fp;
	size_t fplen;
	long ret;
	int err;
	char name[64], *comm;

	thread_core__init(tc);
	tc->tid = t->tid;
	regs = t->regs;		/* its own: it is parked (park_threads) */
	tc->gpregs.len = arch_regs_size();
	tc->gpregs.data = malloc(tc->gpregs.len);
	if (!tc->gpregs.data)
		return -ENOMEM;
	memcpy(tc->gpregs.data, &regs, tc->gpregs.len);
	tc->has_in_syscall = true;
	tc->in_syscall = arch_regs_in_syscall(&regs);
	err = arch_get_fpstate(t->tid, &fp, &fplen);
	if (err)
		return err;
	tc->has_xstate = true;
	tc->xstate.data = fp;
	tc->xstate.len = fplen;
	tc->sigmask = t->sigmask;
	tc->pending = t->pend;
	tc->n_pending = t->npend;
	t->pend = NULL;
	t->npend = 0;

	memset(&rc, 0, sizeof(rc));
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, t->tid, sizeof(rc), &rc) > 0 && rc.rseq_abi_pointer) {
		tc->has_rseq_addr = tc->has_rseq_len = tc->has_rseq_sig = true;
		tc->rseq_addr = rc.rseq_abi_pointer;
		tc->rseq_len = rc.rseq_abi_size;
		tc->rseq_sig = rc.signature;
	}
	{
		void *head = NULL;
		size_t len = 0;

		if (syscall(SYS_get_robust_list, t->tid, &head, &len) == 0) {
			tc->has_robust_list = tc->has_robust_list_len = true;
			tc->robust_list = (uint64_t)head;
			tc->robust_list_len = len;
		}
	}
	err = PSYS(&p->pp, t->tid, &ret, SYS_prctl, PR_GET_TID_ADDRESS, p->pp.scratch);
	if (!err && !ret)
		err = read_scratch(p, &tidaddr, sizeof(tidaddr));
	if (err)
		return err;
	tc->has_clear_tid_addr = true;
	tc->clear_tid_addr = tidaddr;

	err = PSYS(&p->pp, t->tid, &ret, SYS_sigaltstack, 0, p->pp.scratch);
	if (!err && !ret)
		err = read_scratch(p, &ss, sizeof(ss));
	if (err)
		return err;
	tc->has_sas_sp = tc->has_sas_size = tc->has_sas_flags = true;
	tc->sas_sp = ss.sp;
	tc->sas_size = ss.size;
	tc->sas_flags = ss.flags;

	err = task_states_dump_thread(&td, t->tid, tc);	/* task-state.h */
	if (err)
		return err;

	snprintf(name, sizeof(name), "task/%d/comm", t->tid);
	comm = proc_read_file(p->pid, name, NULL);
	if (comm) {
		comm[strcspn(comm, "\n")] = 0;
		tc->comm = comm;
	}
	return 0;
}

/* ---- per-process state ---------------------------------------------------- */

static int dump_mm_fields(struct dproc *p, CoreEntry *c, struct files_dump *fdump)
{
	MmEntry *m = malloc(sizeof(*m));
	size_t len = 0;
	uint64_t *auxv;
	long ret;
	int err;

	if (!m)
		return -ENOMEM;
	mm_entry__init(m);
	c->mm = m;
	m->start_code = p->st.start_code;
	m->end_code = p->st.end_code;
	m->start_data = p->st.start_data;
	m->end_data = p->st.end_data;
	m->start_brk = p->st.start_brk;
	m->start_stack = p->st.start_stack;
	m->arg_start = p->st.arg_start;
	m->arg_end = p->st.arg_end;
	m->env_start = p->st.env_start;
	m->env_end = p->st.env_end;
	err = PSYS(&p->pp, p->pid, &ret, SYS_brk, 0);
	if (err)
		return err;
	m->brk = ret;
	auxv = (uint64_t *)proc_read_file(p->pid, "auxv", &len);
	if (auxv) {
		m->n_auxv = len / 8;
		m->auxv = auxv;
	}
	m->has_exe_file_id = true;
	return files_dump_link(fdump, p->pid, "exe", false, &m->exe_file_id);
}

static int dump_core(struct dproc *p, struct files_dump *fdump)
{
	CoreEntry *c = &p->core;
	struct task_dump td = { .pid = p->pid, .pp = &p->pp, .st = &p->st,
				.spend = &p->spend, .nspend = &p->nspend };
	_cleanup_(freep) char *status = NULL;
	char val[64];
	int err;

	core_entry__init(c);
	p->have_core = true;
	c->pid = p->pid;
	status = proc_read_file(p->pid, "status", NULL);
	if (!status)
		return log_errno(errno, "pid %d: cannot read /proc/%d/status", p->pid, p->pid);
	td.status = status;
	if (!proc_status_field(status, "THP_enabled", val, sizeof(val))) {
		c->has_thp_disabled = true;
		c->thp_disabled = !strtoul(val, NULL, 10);
	}

	c->threads = calloc(p->nt, sizeof(*c->threads));
	if (!c->threads)
		return -ENOMEM;
	for (int i = 0; i < p->nt; i++) {
		ThreadCore *tc;

		err = ckpt_check_abort();
		if (err)
			return err;
		tc = malloc(sizeof(*tc));
		if (!tc)
			return -ENOMEM;
		c->threads[c->n_threads++] = tc;
		err = dump_thread(p, &p->t[i], tc);
		if (err)
			return err;
	}
	/* the per-process state modules (task-state.h) */
	err = task_states_dump(&td, c);
	if (err)
		return err;

	/* the root first: a root kup cannot reach is named as such */
	err = files_dump_link(fdump, p->pid, "root", false, &c->root_file_id);
	if (!err)
		err = files_dump_link(fdump, p->pid, "cwd", false, &c->cwd_file_id);
	if (!err)
		err = dump_mm_fields(p, c, fdump);
	return err;
}

static int block_signals(struct dproc *p)
{
	uint64_t all = ~0ULL;

	for (int i = 0; i < p->nt; i++) {
		struct dthread *t = &p->t[i];

		if (ptrace(PTRACE_GETSIGMASK, t->tid, sizeof(uint64_t), &t->sigmask))
			return log_errno(errno, "tid %d: cannot read the signal mask", t->tid);
		t->mask_saved = true;
		/* journal.h: put back by `kup recover` if we die */
		if (journal_add("mask %d %d %llu %" PRIx64, p->pid, t->tid,
				journal_start_time(p->pid, t->tid), t->sigmask) ||
		    (i == 0 && p->state == TASK_STATE__TASK_STOPPED && journal_add("stopped %d", p->pid)))
			return -EIO;
		/* ... and its registers, for it will be parked in kup's code */
		if (arch_get_regs(t->tid, &t->regs))
			return -EIO;
		t->regs_saved = true;
		if (journal_regs(p->pid, t->tid, &t->regs))
			return -EIO;
		if (ptrace(PTRACE_SETSIGMASK, t->tid, sizeof(uint64_t), &all))
			return log_errno(errno, "tid %d: cannot block signals", t->tid);
	}
	return 0;
}

static bool pending_has(SiginfoEntry **v, size_t n, int sig)
{
	for (size_t i = 0; i < n; i++) {
		int s;

		memcpy(&s, v[i]->raw.data, sizeof(s));
		if (s == sig)
			return true;
	}
	return false;
}

/*
 * The pending signals, read once everything is blocked and before the first
 * injected syscall: SIGSTOP cannot be blocked, and a stopped task that has
 * one pending (sent while it was stopped) takes it as soon as it runs our
 * syscall, which goes on past it (puppet.c).  Those are sent again when the
 * tree is let go (release_tree) and by the restore once the task is stopped
 * (restore.c, stop_task).  A held signal (note_held_signal) comes first.
 */
static int snapshot_pending(struct dproc *p)
{
	int err;

	for (int i = 0; i < p->nt; i++) {
		struct dthread *t = &p->t[i];

		err = dump_pending(t->tid, false, t->npend_max, &t->pend, &t->npend);
		if (err)
			return err;
		if (t->held) {
			SiginfoEntry **nv = realloc(t->pend, (t->npend + 1) * sizeof(*nv));
			SiginfoEntry *e = malloc(sizeof(*e));

			if (nv)
				t->pend = nv;
			if (!nv || !e) {
				free(e);
				return -ENOMEM;
			}
			siginfo_entry__init(e);
			e->raw.len = 128;
			e->raw.data = malloc(128);
			if (!e->raw.data) {
				free(e);
				return -ENOMEM;
			}
			memcpy(e->raw.data, t->held_si, 128);
			memmove(t->pend + 1, t->pend, t->npend * sizeof(*nv));
			t->pend[0] = e;
			t->npend++;
		}
		t->stop_pending = pending_has(t->pend, t->npend, SIGSTOP);
	}
	err = dump_pending(p->pid, true, p->nspend_max, &p->spend, &p->nspend);
	if (err)
		return err;
	p->stop_pending = pending_has(p->spend, p->nspend, SIGSTOP);
	return 0;
}

/* A held signal goes back into its thread (blocked now, so it waits),
 * whatever becomes of the dump.  A held SIGSTOP is sent again at release. */
static int requeue_held(struct dproc *p)
{
	for (int i = 0; i < p->nt; i++) {
		struct dthread *t = &p->t[i];
		siginfo_t si;
		long ret;
		int err;

		if (!t->held)
			continue;
		memcpy(&si, t->held_si, sizeof(si) < 128 ? sizeof(si) : 128);
		t->in_delivery = false;
		if (si.si_signo == SIGSTOP)
			continue;
		err = puppet_write(p->pid, p->pp.scratch, t->held_si, 128);
		if (!err)
			err = PSYS(&p->pp, t->tid, &ret, SYS_rt_tgsigqueueinfo, p->pid, t->tid,
				   si.si_signo, p->pp.scratch);
		if (!err && ret)
			err = log_errno(-ret, "tid %d: cannot queue signal %d it had taken as it was "
					"frozen", t->tid, si.si_signo);
		if (err)
			return err;
	}
	return 0;
}

/*
 * Point every thread of @p at the parking loop of its trampoline
 * (arch_puppet_code) until the tree is let go: should kup die, none of them
 * runs on while its sockets are in repair mode or its state half-read; they
 * sleep there with every signal blocked until `kup recover` puts their
 * journaled registers back.  Injected syscalls start from and return to
 * these registers; the thread's own are in t->regs.
 */
static int park_threads(struct dproc *p)
{
	for (int i = 0; i < p->nt; i++) {
		struct dthread *t = &p->t[i];
		struct arch_regs r = t->regs;

		arch_regs_park(&r, p->pp.tramp);
		if (arch_set_regs(t->tid, &r))
			return -EIO;
		t->parked = true;
	}
	return 0;
}

static void free_pending(SiginfoEntry **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(&v[i]->base, NULL);
	free(v);
}

/* Freeze @p for good: signals blocked, pending signals read, trampoline in,
 * held signals queued again, threads parked.  Done for every process before
 * any of them is dumped (an inherited socket in repair mode is then never
 * used by a process kup did not park). */
static int prepare_proc(struct dproc *p)
{
	int err;

	err = block_signals(p);
	for (int i = 0; !err && i < p->nt; i++)
		err = seccomp_dump_prepare(p->pid, p->t[i].tid);
	if (!err)
		err = snapshot_pending(p);
	if (!err)
		err = ckpt_check_abort();
	if (err)
		return err;
	for (int i = 0; i < p->nt; i++)
		if (p->t[i].tid == p->pid)
			p->t[i].in_delivery = false;	/* it runs from here on */
	err = puppet_install(&p->pp, p->pid, p->pid);
	if (!err)
		err = requeue_held(p);
	if (!err)
		err = park_threads(p);
	return err;
}

/* Has @i a live child in the tree (whose dump compares its page frames
 * with @i's: mem.c)? */
static bool has_children(struct dtree *t, int i)
{
	for (int j = 0; j < t->n; j++)
		if (t->p[j].st.ppid == t->p[i].pid && t->p[j].state != TASK_STATE__TASK_ZOMBIE)
			return true;
	return false;
}

/* @i's parent, dumped before it (the copy-on-write pages they share are
 * saved once, mem.c), or NULL for the root. */
static const struct dproc *dumped_parent(struct dtree *t, int i)
{
	struct dproc *pp = i ? tree_find(t, t->p[i].st.ppid) : NULL;

	return pp && pp->have_mm && pp->frames.own ? pp : NULL;
}

/* The anonymous and shared memory the tree's processes have in RAM: what
 * the dump will copy, about (the progress line's total). */
static unsigned long long tree_anon_bytes(struct dtree *t)
{
	unsigned long long sum = 0, kb;
	char path[64], line[128];
	FILE *f;

	for (int i = 0; i < t->n; i++) {
		if (t->p[i].state == TASK_STATE__TASK_ZOMBIE)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/status", t->p[i].pid);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "RssAnon: %llu kB", &kb) == 1 ||
			    sscanf(line, "RssShmem: %llu kB", &kb) == 1)
				sum += kb << 10;
		fclose(f);
	}
	return sum;
}

static int dump_proc(struct dproc *p, const struct ckpt_dump_opts *o, struct files_dump *fdump,
		     struct shmem_dump *sd, struct ipc_dump *ipc, struct ckpt_stats *stats,
		     const struct dproc *parent, bool with_frames, struct predump *pd)
{
	struct mem_dump_stats ms = { 0 };
	char name[64];
	int err;

	err = dump_core(p, fdump);
	if (!err)
		err = ckpt_check_abort();
	if (!err) {
		fdtable_entry__init(&p->fdt);
		p->have_fdt = true;
		err = files_dump_fdtable(fdump, p->pid, &p->fdt);
	}
	if (!err)
		err = ckpt_check_abort();
	if (!err) {
		mm_image__init(&p->mm);
		p->have_mm = true;
		err = mem_dump(p->pid, o->store, fdump, &p->pp, &p->mm, &ms, sd, ipc,
			       parent ? &parent->mm : NULL, parent ? &parent->frames : NULL,
			       with_frames ? &p->frames : NULL, pd);
	}
	if (err)
		return err;
	stats->pages += ms.pages;
	stats->pages_from_pre_dump += ms.from_pre;
	snprintf(name, sizeof(name), "core-%d.img", p->pid);
	err = img_write_msg(o->store, name, IMG_CORE, &p->core);
	if (err)
		return err;
	snprintf(name, sizeof(name), "mm-%d.img", p->pid);
	return img_write_msg(o->store, name, IMG_MM, &p->mm);
}

/* The name of a live process outside the tree, or NULL if there is none
 * with that pid (it exited). */
static const char *live_comm(pid_t pid, struct proc_stat *ps)
{
	if (proc_read_stat(pid, 0, ps) || ps->state == 'Z' || ps->state == 'X')
		return NULL;
	return ps->comm;
}

/*
 * Every session and process group must be restorable.  A session or group
 * whose leader is in the tree is made by it.  One whose leader is alive
 * outside is the shell's (--shell-job).  One whose leader has exited (a
 * daemon that forked twice around setsid(): its sid is its dead parent's
 * pid) is made again at restore by a helper holding that pid
 * (restore.c, session_helper), which the tree's root is created under:
 * so it must be the root's own session (and group, if the group too is
 * led from outside).
 */
static int check_sessions(struct dtree *t, const struct ckpt_dump_opts *o)
{
	const struct proc_stat *root = &t->p[0].st;
	bool dead_sid = false;
	struct proc_stat ps;
	const char *comm;

	if (!tree_find(t, root->sid) && !(o->shell_job) && !live_comm(root->sid, &ps))
		dead_sid = true;
	for (int i = 0; i < t->n; i++) {
		struct dproc *p = &t->p[i];

		if (p->state == TASK_STATE__TASK_ZOMBIE && i == 0) {
			log_err("pid %d: is a zombie, nothing to dump", p->pid);
			return -EINVAL;
		}
		if (!tree_find(t, p->st.sid) && !(o->shell_job && p->st.sid == root->sid) &&
		    !(dead_sid && p->st.sid == root->sid)) {
			comm = live_comm(p->st.sid, &ps);
			if (comm)
				log_err("pid %d: its session leader %d (%s) is alive outside the dumped "
					"tree: started from a shell? use --shell-job", p->pid,
					p->st.sid, comm);
			else
				log_err("pid %d: its session %d, whose leader has exited, is not the "
					"session of the tree's root %d: not supported", p->pid,
					p->st.sid, t->p[0].pid);
			return -EINVAL;
		}
		if (!tree_find(t, p->st.pgid) && !(o->shell_job && p->st.pgid == root->pgid) &&
		    !(dead_sid && p->st.pgid == root->sid)) {
			comm = live_comm(p->st.pgid, &ps);
			if (comm)
				log_err("pid %d: its process group %d is led by %d (%s), alive outside "
					"the dumped tree: started from a shell? use --shell-job",
					p->pid, p->st.pgid, p->st.pgid, comm);
			else
				log_err("pid %d: its process group %d, whose leader has exited, is not "
					"the group of the session of the tree's root: not supported",
					p->pid, p->st.pgid);
			return -EINVAL;
		}
		/* the restore makes sessions by setsid() in their leader, whose
		 * children inherit them, and joins groups within the session */
		if (i && p->st.sid != p->pid) {
			struct dproc *pp = tree_find(t, p->st.ppid), *pg = tree_find(t, p->st.pgid);

			if (pp && pp->st.sid != p->st.sid) {
				log_err("pid %d: in session %d while its parent %d is in session %d: "
					"not supported", p->pid, p->st.sid, pp->pid, pp->st.sid);
				return -EOPNOTSUPP;
			}
			if (pg && pg->st.sid != p->st.sid) {
				log_err("pid %d: in process group %d of another session (%d, not %d): "
					"not supported", p->pid, p->st.pgid, pg->st.sid, p->st.sid);
				return -EOPNOTSUPP;
			}
		}
	}
	if (dead_sid)
		log_info("pid %d: its session %d has no leader any more (a daemon); the restore "
			 "makes it again with a helper of that pid", t->p[0].pid, root->sid);
	return 0;
}

/*
 * The restore puts every task in one cgroup per hierarchy (the restorer's,
 * or the unit's with kup restore --unit): a tree whose tasks are in
 * different cgroups (sub-cgroups it made below its own, or a task moved
 * elsewhere) is refused, naming the task and both paths (docs/design.md,
 * "Cgroups").  /proc/PID/cgroup: one "id:controllers:path" line per
 * hierarchy, the same hierarchies in the same order for every task.
 */
static int check_cgroups(struct dtree *t)
{
	char *root = proc_read_file(t->p[0].pid, "cgroup", NULL);
	struct proc_stat ps;
	int ret = 0;

	if (!root)
		return 0;
	for (int i = 1; i < t->n && !ret; i++) {
		char *cg, *a, *b, *sa = NULL, *sb = NULL, *rc;

		if (t->p[i].state == TASK_STATE__TASK_ZOMBIE)
			continue;
		cg = proc_read_file(t->p[i].pid, "cgroup", NULL);
		if (!cg)
			continue;	/* exited meanwhile */
		/* an exiting task shows "/" in every v1 hierarchy: killed
		 * since the freeze; what it left is found by the dump */
		if (!proc_read_stat(t->p[i].pid, 0, &ps) && (ps.flags & PF_EXITING)) {
			free(cg);
			continue;
		}
		rc = strdup(root);
		if (!rc) {
			free(cg);
			ret = -ENOMEM;
			break;
		}
		for (a = strtok_r(rc, "\n", &sa), b = strtok_r(cg, "\n", &sb); a && b && !ret;
		     a = strtok_r(NULL, "\n", &sa), b = strtok_r(NULL, "\n", &sb)) {
			char *pa = strchr(a, ':'), *pb = strchr(b, ':');

			pa = pa ? strchr(pa + 1, ':') : NULL;
			pb = pb ? strchr(pb + 1, ':') : NULL;
			if (!pa || !pb || !strcmp(pa, pb))
				continue;
			*pb = 0;
			b = strchr(b, ':') ? strchr(b, ':') + 1 : b;	/* the controllers */
			log_err("pid %d: is in cgroup %s (%s%s), not in the tree's root %d's %s: "
				"cgroups are not restored, not supported", t->p[i].pid, pb + 1,
				*b ? "hierarchy " : "cgroup v2", b, t->p[0].pid, pa + 1);
			ret = -EOPNOTSUPP;
		}
		free(cg);
		free(rc);
	}
	free(root);
	return ret;
}

static void free_dump(struct dtree *t)
{
	for (int i = 0; i < t->n; i++) {
		struct dproc *p = &t->p[i];

		for (int j = 0; j < p->nt; j++)
			free_pending(p->t[j].pend, p->t[j].npend);
		free_pending(p->spend, p->nspend);
		free(p->t);
		if (p->have_fdt)
			files_free_fdtable(&p->fdt);
		if (p->have_mm)
			mem_free_image(&p->mm);
		mem_frames_free(&p->frames);
		if (p->have_core) {
			/* everything was allocated with malloc in the layout
			 * protobuf-c's free_unpacked expects */
			CoreEntry *c = malloc(sizeof(*c));
			if (c) {
				*c = p->core;
				protobuf_c_message_free_unpacked(&c->base, NULL);
			}
		}
	}
	free(t->p);
}

static int write_pstree(struct dtree *t, struct img_store *st, InventoryEntry *inv)
{
	PstreeImage img = PSTREE_IMAGE__INIT;
	size_t n = t->n > 0 ? (size_t)t->n : 1;
	PstreeEntry *e = calloc(n, sizeof(*e));
	PstreeEntry **pe = calloc(n, sizeof(*pe));
	int ret = -ENOMEM;

	inv->pids = calloc(n, sizeof(uint32_t));
	if (!e || !pe || !inv->pids)
		goto out;
	for (int i = 0; i < t->n; i++) {
		struct dproc *p = &t->p[i];

		pstree_entry__init(&e[i]);
		e[i].pid = p->pid;
		e[i].ppid = i ? p->st.ppid : 0;
		e[i].pgid = p->st.pgid;
		e[i].sid = p->st.sid;
		e[i].state = p->state;
		if (p->state == TASK_STATE__TASK_ZOMBIE) {
			e[i].has_exit_code = true;
			e[i].exit_code = p->st.exit_code;
		}
		e[i].threads = calloc(p->nt ? p->nt : 1, sizeof(uint32_t));
		if (!e[i].threads)
			goto out;
		for (int j = 0; j < p->nt; j++)
			e[i].threads[e[i].n_threads++] = p->t[j].tid;
		pe[i] = &e[i];
		inv->pids[inv->n_pids++] = p->pid;
	}
	img.n_entries = t->n;
	img.entries = pe;
	ret = img_write_msg(st, "pstree.img", IMG_PSTREE, &img);
out:
	for (int i = 0; e && i < t->n; i++)
		free(e[i].threads);
	free(e);
	free(pe);
	return ret;
}

static bool tree_has_thread(const struct dproc *p, pid_t tid)
{
	for (int j = 0; j < p->nt; j++)
		if (p->t[j].tid == tid)
			return true;
	return false;
}

/*
 * The owner of signal-driven I/O (F_SETOWN_EX) must come back with the
 * tree: a process of it, a process group led in it, or a thread of the
 * first process holding the file (the one that sets the owner at restore;
 * other threads may not exist yet then).
 */
static int check_fown(struct dtree *t, const FilesImage *fi)
{
	for (size_t f = 0; f < fi->n_files; f++) {
		const FileEntry *fe = fi->files[f];
		const FownEntry *o = fe->fown;
		struct dproc *holder = NULL, *target;
		int fd = -1;
		bool ok;

		if (!o || !o->pid)
			continue;
		for (int i = 0; i < t->n && !holder; i++)
			for (size_t k = 0; t->p[i].have_fdt && k < t->p[i].fdt.n_fds && !holder; k++)
				if (t->p[i].fdt.fds[k]->file_id == fe->id) {
					holder = &t->p[i];
					fd = t->p[i].fdt.fds[k]->fd;
				}
		if (!holder)
			continue;
		target = tree_find(t, o->pid);
		if (o->type == F_OWNER_PGRP)
			ok = target && target->state != TASK_STATE__TASK_ZOMBIE;
		else if (o->type == F_OWNER_TID)
			ok = (target && target->state != TASK_STATE__TASK_ZOMBIE) ||
			     tree_has_thread(holder, o->pid);
		else
			ok = target && target->state != TASK_STATE__TASK_ZOMBIE;
		if (!ok) {
			log_err("pid %d fd %d: %s: the owner of its signal-driven I/O (%s %d) is not "
				"restored with the tree: not supported", holder->pid, fd, files_fe_name(fe),
				o->type == F_OWNER_PGRP ? "process group" :
				o->type == F_OWNER_TID ? "thread" : "pid", o->pid);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

/* Is @pid a descendant of the tree that the tree does not list?  Only in
 * the check of a live tree (ckpt_dump_check): forked since the walk. */
static bool forked_since(struct dtree *t, pid_t pid)
{
	struct proc_stat ps;

	for (int depth = 0; pid > 1 && depth < 4096; depth++) {
		if (proc_read_stat(pid, 0, &ps))
			return false;
		pid = ps.ppid;
		if (tree_find(t, pid))
			return true;
	}
	return false;
}

/* A pty of the tree is a terminal of no other process (its slave /dev/pts/N
 * open outside the tree would lose its other end at restore). */
static int check_pty_outside(struct dtree *t, const struct files_pty_ctty *v, size_t n)
{
	struct stat pts;
	struct dirent *de;
	DIR *proc;
	int ret = 0;

	if (!n)
		return 0;
	if (stat("/dev/pts", &pts))
		return log_errno(errno, "cannot stat /dev/pts");
	proc = opendir("/proc");
	if (!proc)
		return log_errno(errno, "cannot list /proc");
	while (!ret && (de = readdir(proc))) {
		pid_t pid = atoi(de->d_name);
		char path[300], lnk[64];
		struct dirent *fe;
		DIR *fds;

		if (pid <= 0 || pid == getpid() || tree_find(t, pid))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd", pid);
		fds = opendir(path);
		if (!fds)
			continue;	/* gone, or a kernel thread */
		while (!ret && (fe = readdir(fds))) {
			struct stat st;
			ssize_t l;

			if (fe->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/%d/fd/%s", pid, fe->d_name);
			l = readlink(path, lnk, sizeof(lnk) - 1);
			if (l < 9 || strncmp(lnk, "/dev/pts/", 9))
				continue;
			lnk[l] = 0;
			if (stat(path, &st) || !S_ISCHR(st.st_mode) || st.st_dev != pts.st_dev ||
			    major(st.st_rdev) < 136 || major(st.st_rdev) > 143)
				continue;
			for (size_t i = 0; i < n; i++)
				if (v[i].index == (major(st.st_rdev) - 136) * 256 + minor(st.st_rdev) &&
				    !forked_since(t, pid)) {
					log_err("pid %d fd %s: holds %s, whose pty master is in the dumped "
						"tree: a pty whose other end is outside the tree is not "
						"supported", pid, fe->d_name, lnk);
					ret = -EOPNOTSUPP;
				}
		}
		closedir(fds);
	}
	closedir(proc);
	return ret;
}

/*
 * The sessions of the tree's ptys: the session whose controlling terminal
 * a pty is must be led by a live process of the tree, its foreground group
 * must be a group of that session in the tree, and a process of the tree
 * whose controlling terminal is a pty must find that pty in the image (a
 * session outside the tree: the terminal of a --shell-job, not ours).
 */
static int check_ptys(struct dtree *t, const FilesImage *fi)
{
	struct files_pty_ctty *v = NULL;
	size_t n = 0;
	int ret = files_pty_cttys(fi, &v, &n);

	if (ret)
		return log_errno(ret, "files image: pty entries");
	for (size_t i = 0; i < n && !ret; i++) {
		struct dproc *l = v[i].sid ? tree_find(t, v[i].sid) : NULL;
		bool fg_ok = !v[i].fg_pgrp;

		if (!v[i].sid)
			continue;
		if (!l || l->state == TASK_STATE__TASK_ZOMBIE || l->st.sid != l->pid) {
			log_err("/dev/pts/%u: the controlling terminal of session %u, whose leader is "
				"not a live process of the dumped tree: not supported", v[i].index,
				v[i].sid);
			ret = -EOPNOTSUPP;
			break;
		}
		for (int k = 0; k < t->n && !fg_ok; k++)
			fg_ok = t->p[k].st.pgid == (pid_t)v[i].fg_pgrp &&
				t->p[k].st.sid == (pid_t)v[i].sid;
		if (!fg_ok) {
			log_err("/dev/pts/%u: its foreground process group %u is not a group of "
				"session %u in the dumped tree: not supported", v[i].index,
				v[i].fg_pgrp, v[i].sid);
			ret = -EOPNOTSUPP;
		}
	}
	for (int k = 0; k < t->n && !ret; k++) {
		struct dproc *p = &t->p[k];
		unsigned int ma = (p->st.tty_nr >> 8) & 0xfff;
		unsigned int idx = (ma - 136) * 256 + ((p->st.tty_nr & 0xff) | ((p->st.tty_nr >> 12) & 0xfff00));
		bool found = false;

		if (p->state == TASK_STATE__TASK_ZOMBIE || ma < 136 || ma > 143 ||
		    !tree_find(t, p->st.sid))
			continue;
		for (size_t i = 0; i < n && !found; i++)
			found = v[i].index == idx && v[i].sid == (uint32_t)p->st.sid;
		if (!found) {
			log_err("pid %d: its controlling terminal /dev/pts/%u, of session %d, is not "
				"a pty whose master is in the dumped tree: not supported", p->pid,
				idx, p->st.sid);
			ret = -EOPNOTSUPP;
		}
	}
	if (!ret)
		ret = check_pty_outside(t, v, n);
	free(v);
	return ret;
}

static int check_unseen_locks(struct dtree *t, struct files_dump *fdump)
{
	pid_t *pids = calloc(t->n > 0 ? (size_t)t->n : 1, sizeof(*pids));
	size_t n = 0;
	int ret;

	if (!pids)
		return -ENOMEM;
	for (int i = 0; i < t->n; i++)
		if (t->p[i].state != TASK_STATE__TASK_ZOMBIE)
			pids[n++] = t->p[i].pid;
	ret = files_locks_check_unseen(fdump, pids, n);
	free(pids);
	return ret;
}

static int write_files(struct dtree *t, struct files_dump *fdump, struct img_store *st)
{
	FilesImage fi = FILES_IMAGE__INIT;
	FdtableImage ft = FDTABLE_IMAGE__INIT;
	FdtableEntry **tabs = calloc(t->n > 0 ? (size_t)t->n : 1, sizeof(*tabs));
	int ret;

	if (!tabs)
		return -ENOMEM;
	for (int i = 0; i < t->n; i++)
		if (t->p[i].have_fdt)
			tabs[ft.n_tables++] = &t->p[i].fdt;
	ft.tables = tabs;
	ret = img_write_msg(st, "fdtable.img", IMG_FDTABLE, &ft);
	free(tabs);
	if (ret)
		return ret;
	ret = files_dump_end(fdump, &fi);
	if (ret)
		return ret;
	ret = check_fown(t, &fi);
	if (!ret)
		ret = check_ptys(t, &fi);
	if (!ret)
		ret = img_write_msg(st, "files.img", IMG_FILES, &fi);
	for (size_t i = 0; i < fi.n_files; i++)
		protobuf_c_message_free_unpacked(&fi.files[i]->base, NULL);
	free(fi.files);
	return ret;
}

/* The check of a live tree: no slave of a pty master of the tree is open
 * outside it (the masters as files-pty.c's check found them). */
static int check_pty_masters(struct dtree *t, struct files_dump *fdump)
{
	struct files_pty_ctty *v = NULL, *nv;
	size_t n = 0;
	int ret;

	for (struct files_obj *o = files_dump_obj_next(fdump, NULL); o;
	     o = files_dump_obj_next(fdump, o)) {
		if (o->tag != FOBJ_PTY)
			continue;
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv) {
			free(v);
			return -ENOMEM;
		}
		v = nv;
		v[n++] = (struct files_pty_ctty){ .index = (uint32_t)o->b };
	}
	ret = check_pty_outside(t, v, n);
	free(v);
	return ret;
}

/* The root asked for can be dumped at all (and the options make sense). */
static int check_root(const struct ckpt_dump_opts *o)
{
	if (o->pid <= 1) {
		log_err("pid %d: refusing to dump init or an invalid pid", o->pid);
		return -EINVAL;
	}
	if (ipc_check_named(o->sysv_ipc))
		return -EINVAL;
	if (kill(o->pid, 0) && errno == ESRCH) {
		log_err("pid %d: no such process", o->pid);
		return -ESRCH;
	}
	for (pid_t a = getpid(); a > 1;) {
		struct proc_stat ps;

		if (a == o->pid) {
			log_err("pid %d: is kup itself or one of its ancestors", o->pid);
			return -EINVAL;
		}
		if (proc_read_stat(a, 0, &ps))
			break;
		a = ps.ppid;
	}
	return 0;
}

/*
 * The refusals of ckpt_dump that the live tree tells, by the dump's own
 * code, with nothing seized, stopped, changed or written (docs/design.md,
 * "Checking before the freeze"): io_uring, the tree's shape (kernel
 * threads), its sessions, groups and cgroups, its time, mount and user
 * namespaces, its fds (files_check_fdtable, files_check_end) and the ptys
 * whose slave is open outside the tree.
 */
static int dump_check_once(const struct ckpt_dump_opts *o)
{
	struct files_opts fo = { .shell_job = o->shell_job, .tcp_established = o->tcp_established,
				 .ext_peers_close = o->ext_peers_close };
	struct files_dump *fdump = NULL;
	struct dtree t = { 0 };
	pid_t *pids = NULL;
	int ret;

	ret = check_root(o);
	if (!ret)
		ret = precheck_tree(o->pid, &(uint64_t){ 0 });
	if (!ret)
		ret = freeze_tree(&t, o->pid, true);
	if (!ret)
		ret = check_sessions(&t, o);
	if (!ret)
		ret = check_cgroups(&t);
	if (ret)
		goto out;
	pids = calloc(t.n > 0 ? (size_t)t.n : 1, sizeof(*pids));
	if (!pids) {
		ret = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < t.n; i++)
		pids[i] = t.p[i].pid;
	ret = clocks_dump_check(pids, t.n);
	if (!ret)
		ret = mntns_dump(pids, t.n, NULL, &fo.own_mntns);
	if (ret)
		goto out;
	/* the fds of the processes that run on: one exiting meanwhile has
	 * its files going (kcmp sees no table, an fd no link), a zombie none */
	fo.tree_pids = pids;
	for (int i = 0; i < t.n; i++) {
		struct proc_stat ps;

		if (t.p[i].state == TASK_STATE__TASK_ZOMBIE || proc_read_stat(t.p[i].pid, 0, &ps) ||
		    ps.state == 'Z' || ps.state == 'X' || (ps.flags & PF_EXITING))
			continue;
		pids[fo.n_tree_pids++] = t.p[i].pid;
	}
	ret = files_dump_begin(&fo, &fdump);
	for (size_t i = 0; !ret && i < fo.n_tree_pids; i++)
		ret = files_check_fdtable(fdump, pids[i]);
	if (!ret)
		ret = files_check_end(fdump);
	if (!ret)
		ret = check_pty_masters(&t, fdump);
out:
	files_dump_free(fdump);
	free_dump(&t);
	free(pids);
	return ret;
}

static bool take_message(int level, const char *msg)
{
	return true;
}

/*
 * The tree runs while it is looked at: a child that exits meanwhile (its
 * fds closing, its cgroup gone, its fd table gone) can look like a refusal.
 * What the dump refuses stays refused however often it is looked at, so a
 * refusal counts only when CHECK_TRIES looks in a row say it; the messages
 * are those of the last (the others are not written).
 */
#define CHECK_TRIES	3

int ckpt_dump_check(const struct ckpt_dump_opts *o)
{
	int ret = 0;

	for (int i = 0; i < CHECK_TRIES; i++) {
		log_hook_fn prev = NULL;

		if (i < CHECK_TRIES - 1)
			prev = log_set_hook(take_message);
		ret = dump_check_once(o);
		if (i < CHECK_TRIES - 1)
			log_set_hook(prev);
		if (!ret || ret == -ENOMEM || ret == -ECANCELED)
			break;
	}
	return ret;
}

/* (the dump of this much memory takes longer than a grace period) */
#define LOCKS_PRIME_MAX_KB (128 << 10)

int ckpt_dump(const struct ckpt_dump_opts *o, struct ckpt_stats *stats)
{
	InventoryEntry inv = INVENTORY_ENTRY__INIT;
	struct files_opts fo = { .shell_job = o->shell_job, .tcp_established = o->tcp_established,
				 .ext_peers_close = o->ext_peers_close, .store = o->store };
	struct files_dump *fdump = NULL;
	pid_t *tree_pids = NULL;
	struct shmem_dump *sd = NULL;
	struct ipc_dump *ipc = NULL;
	struct dtree t = { 0 };
	struct predump *pd = NULL;
	struct utsname uts;
	struct timespec rt;
	struct stat nsst;
	uint64_t t0 = now_ns(), tf = 0, anon_kb = 0;
	char *bootid;
	int ret;

	memset(stats, 0, sizeof(*stats));
	ret = check_root(o);
	if (ret)
		return ret;

	ret = ckpt_check_abort();
	if (!ret)
		ret = precheck_tree(o->pid, &anon_kb);
	if (!ret && o->pre) {
		pd = o->pre;	/* the caller's (several trees) */
	} else if (!ret && o->pre_dump_rounds > 0) {
		ret = predump_run(o->pid, o->pre_dump_rounds, o->store, &pd);
		stats->pre_dump_ns = now_ns() - t0;
		t0 = now_ns();
	}
	if (!ret) {
		/* (its wait is not frozen time; after a pre-dump, the dump of
		 * the memory hides the frozen read's wait, and the prime would
		 * only give the tree time to write more pages; so does the dump
		 * of more memory than LOCKS_PRIME_MAX_KB: the prime would only
		 * make the dump longer) */
		if (!pd && anon_kb < LOCKS_PRIME_MAX_KB)
			files_locks_prime();
		/* the tree's outage begins (inventory: freeze_time_ns); the
		 * mappings of images written ahead go once the tree is let go */
		img_defer_unmaps(true);
		tf = now_ns();
		clock_gettime(CLOCK_REALTIME, &rt);
		stats->freeze_realtime_ns = rt.tv_sec * 1000000000ULL + rt.tv_nsec;
		ret = freeze_tree(&t, o->pid, false);
	}
	if (ret)
		goto fail;
	files_locks_prefetch();
	ret = check_sessions(&t, o);
	if (!ret)
		ret = check_cgroups(&t);
	if (!ret) {
		tree_pids = calloc(t.n > 0 ? (size_t)t.n : 1, sizeof(*tree_pids));

		ret = -ENOMEM;
		if (tree_pids) {
			for (int i = 0; i < t.n; i++)
				tree_pids[i] = t.p[i].pid;
			ret = clocks_dump_check(tree_pids, t.n);
			if (!ret)
				ret = mntns_dump(tree_pids, t.n, o->store, &fo.own_mntns);
			fo.tree_pids = tree_pids;
			fo.n_tree_pids = t.n;
		}
	}
	if (ret)
		goto fail;
	ret = files_dump_begin(&fo, &fdump);
	if (!ret)
		ret = shmem_dump_begin(&sd);
	if (!ret)
		ret = ipc_dump_begin(o->store, o->sysv_ipc, &ipc);
	if (ret)
		goto fail;
	shmem_set_store(sd, o->store);

	for (int i = 0; i < t.n; i++) {
		if (t.p[i].state == TASK_STATE__TASK_ZOMBIE)
			continue;
		ret = ckpt_check_abort();
		if (!ret)
			ret = prepare_proc(&t.p[i]);
		if (ret)
			goto fail;
	}
	/* KUP_TEST_DUMP_HOLD=FILE (tests): wait here, the tree frozen and its
	 * threads parked (journaled), until FILE exists or an abort: a kill
	 * meanwhile is a kill during the dump */
	for (const char *hold = getenv("KUP_TEST_DUMP_HOLD");
	     hold && access(hold, F_OK) && !ckpt_abort_signal();)
		usleep(10000);
	log_progress_begin("memory", tree_anon_bytes(&t));
	for (int i = 0; i < t.n; i++) {
		if (t.p[i].state == TASK_STATE__TASK_ZOMBIE)
			continue;
		stats->nr_procs++;
		stats->nr_threads += t.p[i].nt;
		ret = ckpt_check_abort();
		if (!ret)
			ret = dump_proc(&t.p[i], o, fdump, sd, ipc, stats, dumped_parent(&t, i),
					has_children(&t, i), pd);
		if (ret)
			break;
	}
	log_progress_end();
	if (ret)
		goto fail;
	ret = predump_end(pd);
	if (!ret)
		ret = ckpt_check_abort();
	if (!ret)
		ret = check_unseen_locks(&t, fdump);
	if (!ret)
		ret = write_pstree(&t, o->store, &inv);
	if (!ret)
		ret = write_files(&t, fdump, o->store);
	if (!ret)
		ret = shmem_dump_end(sd, o->store);
	if (!ret) {
		pid_t *pids = calloc(t.n > 0 ? (size_t)t.n : 1, sizeof(*pids));
		int np = 0;

		ret = -ENOMEM;
		if (pids) {
			for (int i = 0; i < t.n; i++)
				if (t.p[i].state != TASK_STATE__TASK_ZOMBIE)
					pids[np++] = t.p[i].pid;
			ret = ipc_dump_end(ipc, pids, np);
			free(pids);
		}
	}
	if (ret)
		goto fail;

	uname(&uts);
	clock_gettime(CLOCK_REALTIME, &rt);
	inv.format_version = IMG_FORMAT_VERSION;
	inv.root_pid = o->pid;
	inv.kernel_release = uts.release;
	inv.dump_time_ns = rt.tv_sec * 1000000000ULL + rt.tv_nsec;
	inv.shell_job = o->shell_job;
	inv.unit = (char *)o->unit;
	inv.has_tcp_established = true;
	inv.tcp_established = o->tcp_established;
	inv.has_pages_total = true;
	inv.pages_total = stats->pages;
	inv.has_freeze_time_ns = true;
	inv.freeze_time_ns = stats->freeze_realtime_ns;
	clocks_dump(o->pid, &inv);
	if (!stat("/proc/self/ns/net", &nsst)) {
		inv.has_dump_netns = true;
		inv.dump_netns = nsst.st_ino;
	}
	bootid = proc_read_file(1, "../sys/kernel/random/boot_id", NULL);
	if (bootid) {
		bootid[strcspn(bootid, "\n")] = 0;
		inv.boot_id = bootid;
	}
	ret = img_write_msg(o->store, "inventory.img", IMG_INVENTORY, &inv);
	free(bootid);
	free(inv.pids);
	inv.pids = NULL;
	/* the last chance to abort: past the commit the dump completes */
	if (!ret)
		ret = ckpt_check_abort();
	/* journal.h: the store's checkpoint is replaced from here on (the dir
	 * store removes the previous inventory.img, then moves this dump's
	 * images in, its inventory.img last) */
	if (!ret)
		ret = journal_add("committing");
	if (!ret)
		ret = o->store->ops->commit(o->store);
	if (ret)
		goto fail;
	journal_add("committed");

	/* TCP connections stay in repair mode behind their network lock when
	 * the tree is killed; they go on as they were with --leave-running */
	files_dump_release(fdump, o->leave_running);
	release_tree(&t, !o->leave_running);
	stats->total_ns = now_ns() - t0;
	stats->frozen_ns = now_ns() - tf;
	img_defer_unmaps(false);
	files_locks_prefetch_end();
	stats->total_ns += stats->pre_dump_ns;
	predump_totals(pd, &stats->pre_dump_rounds, &stats->pre_dump_pages);
	if (pd != o->pre)
		predump_free(pd);
	files_dump_free(fdump);
	shmem_dump_free(sd);
	ipc_dump_free(ipc);
	free_dump(&t);
	free(tree_pids);
	return 0;
fail:
	/* the tree first, as it was; then what was written goes */
	files_dump_release(fdump, true);
	release_tree(&t, false);
	img_defer_unmaps(false);
	files_locks_prefetch_end();
	free(inv.pids);		/* write_pstree's, when a later step failed */
	if (pd != o->pre)
		predump_free(pd);
	o->store->ops->abort(o->store);
	if (fdump)
		files_dump_free(fdump);
	shmem_dump_free(sd);
	ipc_dump_free(ipc);
	free_dump(&t);
	free(tree_pids);
	if (ret != -ECANCELED)
		log_err("dump of pid %d failed; the tree was left running", o->pid);
	return ret;
}
