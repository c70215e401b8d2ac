// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Restore: rebuild a dumped tree with its PIDs, then let it run.
 *
 * Design (docs/design.md): every restored task starts as a fork of the
 * restorer ("stub") created with clone3(set_tid) by its restored parent, so
 * the tree has the dumped shape, PIDs, sessions and groups.  A stub runs
 * ordinary C code for what a task does to itself (sessions, cwd, signal
 * handlers, fd table), maps a one-page "syscall; int3" trampoline in a hole
 * of the dumped layout and waits.  The restorer then drives it with ptrace:
 * injected syscalls tear down the stub's address space, map the dumped one,
 * create the threads with their TIDs, set per-thread state and credentials,
 * unmap the trampoline and install the dumped registers.  Nothing runs until
 * every task is complete; a failure kills every task made so far.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kcmp.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ckpt-images.h"
#include "internal.h"
#include "ipc-sysv.h"
#include "journal.h"
#include "restore.h"
#include "shmem.h"
#include "task-state.h"

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif

enum { MSG_CREATED = 1, MSG_PGID_DONE, MSG_READY, MSG_ERR, MSG_GO_PGID, MSG_GO_SETUP,
       MSG_TABLE_WAIT, MSG_GO_TABLE, MSG_FILL, MSG_GO_FORK };

struct ctl_msg {
	int type;
	int err;
	unsigned long tramp;
	int nkeep;
	int keep[MAX_KEEP];
};

int rproc_index(struct rctx *c, pid_t pid)
{
	for (int i = 0; i < c->n; i++)
		if ((pid_t)c->p[i].pe->pid == pid)
			return i;
	return -1;
}

uint64_t rst_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* -v: a line per phase of the restore with its duration (docs/design.md,
 * "Where a restore's time goes") */
static void phase_done(struct rctx *c, const char *what)
{
	uint64_t now = rst_now_ns();

	log_debug("restore: %-28s %9.1f ms", what, (now - c->ns_phase) / 1e6);
	c->ns_phase = now;
}

/* ---- loading and validating the images ---------------------------------- */

/*
 * Read the images and cross-check them all (validate.c) before anything
 * is made from them: from here on restore trusts every field it uses.
 */
static int load_images(struct rctx *c)
{
	int ret = ckpt_images_load(c->st, &c->im);

	if (ret)
		return ret;
	c->inv = c->im.inv;
	c->pst = c->im.pst;
	c->files = c->im.files;
	c->fdtab = c->im.fdtab;
	c->shm = c->im.shm;
	c->n = c->im.n;
	ret = ipc_rst_load(c->st, &c->ipc);
	if (ret)
		return ret;
	c->p = calloc(c->n, sizeof(*c->p));
	if (!c->p)
		return -ENOMEM;
	for (int i = 0; i < c->n; i++) {
		struct rproc *p = &c->p[i];

		p->ctl[0] = p->ctl[1] = -1;
		p->pe = c->pst->entries[i];
		p->core = c->im.core[i];
		p->mm = c->im.mm[i];
		p->fdt = c->im.fdt[i];
		p->alive = p->pe->state != TASK_STATE__TASK_ZOMBIE;
	}
	for (int i = 0; i < c->n; i++) {	/* validated: a live task with a table */
		struct rproc *p = &c->p[i];

		p->files_owner = p->fdt && p->fdt->has_files_of ? rproc_index(c, p->fdt->files_of) : -1;
	}
	return 0;
}


static int check_pid_free(pid_t id)
{
	char path[64];
	struct proc_stat ps;

	snprintf(path, sizeof(path), "/proc/%d", id);
	/* a just-killed tree may linger as zombies until its parent reaps */
	for (int tries = 0; tries < 100 && !proc_read_stat(id, 0, &ps) &&
	     (ps.state == 'Z' || ps.state == 'X' || (ps.flags & 0x4 /* PF_EXITING */));
	     tries++)
		usleep(50000);
	if (access(path, F_OK) == 0 || !proc_read_stat(id, 0, &ps)) {
		if (proc_read_stat(id, 0, &ps))
			ps.comm[0] = 0;
		log_err("pid %d is in use (by \"%s\"); cannot restore the tree with its PIDs",
			id, ps.comm);
		return -EBUSY;
	}
	return 0;
}

/*
 * The root's session has no leader in the tree and the tree is no shell
 * job: its leader had exited at dump (a daemon, docs/design.md "Sessions").
 * A helper task takes that pid, makes the session, and the root is created
 * as its child; it exits once the tree runs.
 */
static pid_t session_helper_pid(struct rctx *c)
{
	PstreeEntry *root = c->p[0].pe;

	if (c->inv->shell_job || root->sid == root->pid || rproc_index(c, root->sid) >= 0)
		return 0;
	return root->sid;
}

static int check_pids_free(struct rctx *c)
{
	if (c->helper && check_pid_free(c->helper))
		return -EBUSY;
	for (int i = 0; i < c->n; i++) {
		PstreeEntry *pe = c->p[i].pe;
		size_t nt = pe->n_threads ? pe->n_threads : 1;

		for (size_t t = 0; t < nt; t++) {
			pid_t id = pe->n_threads ? pe->threads[t] : pe->pid;

			if (check_pid_free(id))
				return -EBUSY;
		}
	}
	return 0;
}


/* ---- the stub: code that runs inside each new task ---------------------- */

static void stub_send(struct rproc *p, int fd, int type, int err)
{
	struct ctl_msg m = { .type = type, .err = err, .tramp = p->tramp,
			     .nkeep = p->nkeep + p->nkeep_shared };

	memcpy(m.keep, p->keep, sizeof(int) * m.nkeep);
	if (write(fd, &m, sizeof(m)) < 0)
		_exit(125);
}

static int stub_wait(int fd, int type)
{
	struct ctl_msg m;
	ssize_t n;

	do
		n = read(fd, &m, sizeof(m));
	while (n < 0 && errno == EINTR);
	if (n != sizeof(m) || m.type != type)
		_exit(126);
	return 0;
}

static pid_t clone_with_pid_flags(pid_t pid, int exit_signal, uint64_t flags)
{
	uint64_t tid = pid;
	struct clone_args ca = {
		.flags = flags,
		.exit_signal = exit_signal,
		.set_tid = (uint64_t)&tid,
		.set_tid_size = 1,
	};

	return syscall(SYS_clone3, &ca, sizeof(ca));
}

static pid_t clone_with_pid(pid_t pid, int exit_signal)
{
	return clone_with_pid_flags(pid, exit_signal, 0);
}

static void stub_main(struct rctx *c, int idx);

static int stub_fork_children(struct rctx *c, int idx)
{
	for (int j = 0; j < c->n; j++) {
		struct rproc *k = &c->p[j];
		int sig = SIGCHLD;
		pid_t r;

		if (!j || k->pe->ppid != c->p[idx].pe->pid)
			continue;
		if (k->core && k->core->has_exit_signal && k->core->exit_signal > 0 &&
		    k->core->exit_signal < 65)
			sig = k->core->exit_signal;
		/* a task sharing its parent's fd table (validated) */
		r = clone_with_pid_flags(k->pe->pid, sig, k->files_owner >= 0 ? CLONE_FILES : 0);
		if (r < 0)
			return log_errno(errno, "pid %u: cannot create child pid %u", c->p[idx].pe->pid,
					 k->pe->pid);
		if (r == 0)
			stub_main(c, j);	/* never returns */
	}
	return 0;
}

/* ---- fd tables shared with CLONE_FILES --------------------------------- */
/*
 * Processes that share one fd table (fdtable_entry.files_of) are created
 * with CLONE_FILES from their parent, which shares it (validate.c), so
 * the table they all see is the one their owner (the task whose entry
 * holds it) installs.  Each sharer first does, in its stub_setup(), what
 * still needs the restorer's fds (its root and working directory), says
 * so (MSG_TABLE_WAIT) and waits; then the owner installs the table once,
 * moving above it its own fds to keep and those of every sharer (control
 * socket, files to map: keep_src, in task order); the restorer passes
 * each sharer its new numbers (MSG_GO_TABLE).  The table's epoll
 * registrations, flock and OFD locks are the owner's to take back; each
 * task takes the POSIX locks it held (restore_posix_locks()).
 */

/* Owner: the keep fds of its sharers after its own (p->keep). */
static void shared_keep_src(struct rctx *c, struct rproc *p)
{
	int n = p->nkeep, idx = p - c->p;

	for (int j = 0; j < c->n; j++)
		if (c->p[j].files_owner == idx) {
			memcpy(p->keep + n, c->p[j].keep_src, sizeof(int) * c->p[j].nkeep);
			n += c->p[j].nkeep;
		}
}

/* Restorer: the numbers of the sharers' keep fds, which owner @idx gave
 * after its own in MSG_READY. */
static void shared_keep_got(struct rctx *c, int idx, const int *keep)
{
	for (int j = 0; j < c->n; j++)
		if (c->p[j].files_owner == idx) {
			memcpy(c->p[j].keep, keep, sizeof(int) * c->p[j].nkeep);
			keep += c->p[j].nkeep;
		}
}

/* Restorer, before any stub exists: how many fds each owner keeps for
 * its sharers (one message carries them all). */
static int shared_keep_prepare(struct rctx *c)
{
	for (int i = 0; i < c->n; i++) {
		struct rproc *p = &c->p[i], *o;

		if (p->files_owner < 0)
			continue;
		o = &c->p[p->files_owner];
		if (o->nkeep + o->nkeep_shared + p->nkeep > MAX_KEEP) {
			log_err("pid %u: too many mapped files in the tasks sharing its fd table",
				o->pe->pid);
			return -E2BIG;
		}
		o->nkeep_shared += p->nkeep;
	}
	return 0;
}

/*
 * Sharer's stub: wait until the owner has installed the table, and take
 * the numbers of its fds there.  The owner moves them (the control socket
 * too) and closes the old numbers, which may then hold other files: no fd
 * is used meanwhile.  The restorer tells the new control socket's number
 * with a queued signal (blocked, taken with sigwaitinfo), then the others
 * through it.
 */
static int stub_join_table(struct rctx *c, struct rproc *p, int *ctl)
{
	struct ctl_msg m;
	siginfo_t si;
	sigset_t set;
	ssize_t n;
	int sig;

	if (files_kcmp(getpid(), getppid(), KCMP_FILES, 0, 0))
		return log_errno(EINVAL, "pid %u: does not share the fd table of its parent",
				 p->pe->pid);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	stub_send(p, *ctl, MSG_TABLE_WAIT, 0);
	do
		sig = sigwaitinfo(&set, &si);
	while ((sig < 0 && errno == EINTR) ||
	       (sig == SIGUSR1 && (si.si_code != SI_QUEUE || si.si_pid != c->restorer)));
	if (sig != SIGUSR1)
		_exit(126);
	*ctl = si.si_value.sival_int;
	do
		n = read(*ctl, &m, sizeof(m));
	while (n < 0 && errno == EINTR);
	if (n != sizeof(m) || m.type != MSG_GO_TABLE || m.nkeep != p->nkeep || m.keep[0] != *ctl)
		_exit(126);
	memcpy(p->keep, m.keep, sizeof(int) * p->nkeep);
	return 0;
}

static int stub_setup(struct rctx *c, struct rproc *p, int *ctl)
{
	CoreEntry *core = p->core;
	int cwd = files_rst_fd(c->fr, core->cwd_file_id);
	int root = files_rst_fd(c->fr, core->root_file_id);
	struct range *all = NULL, vd;
	struct range sp[4];
	struct task_rst tr = { .pid = p->pe->pid, .core = core,
			       .allow_differences = c->o->allow_differences };
	int nall = 0, nsp, ret;
	void *t;

	/* what the task sets on itself (task-state.h) */
	ret = task_states_restore(&tr, TS_STUB);
	if (ret)
		return ret;

	/* the trampoline: free in both our layout and the dumped one */
	ret = read_special_maps(getpid(), sp, &nsp, &vd, &all, &nall);
	if (ret)
		return ret;
	p->tramp = find_hole(p->mm, all, nall, puppet_area_size());
	free(all);
	if (!p->tramp)
		return log_errno(ENOMEM, "pid %u: no room for the restore trampoline", p->pe->pid);
	t = mmap((void *)p->tramp, puppet_area_size(), PROT_READ | PROT_WRITE | PROT_EXEC,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (t != (void *)p->tramp)
		return log_errno(errno, "pid %u: cannot map the restore trampoline", p->pe->pid);
	memset(t, 0xcc, 64);
	memcpy(t, arch_puppet_code, arch_puppet_code_len);

	/*
	 * The root and working directory last of what needs a path: a chrooted
	 * task (a privilege-separated child in /run/sshd, a RootDirectory=
	 * service) sees no /proc after this, and what is left works on fds.
	 */
	if (root >= 0 && (fchdir(root) || chroot(".")))
		return log_errno(errno, "pid %u: cannot restore the root directory", p->pe->pid);
	if (cwd < 0 || fchdir(cwd))
		return log_errno(errno, "pid %u: cannot restore the working directory", p->pe->pid);

	if (p->files_owner >= 0)
		return stub_join_table(c, p, ctl);	/* its owner installs the table */
	memcpy(p->keep, p->keep_src, sizeof(int) * p->nkeep);
	shared_keep_src(c, p);
	ret = files_install(c->fr, p->fdt, p->keep, p->nkeep + p->nkeep_shared);
	if (ret)
		return ret;	/* the control socket may be gone: the restorer sees EOF */
	*ctl = p->keep[0];
	ret = files_post_install(c->fr, p->fdt);
	if (!ret)
		ret = files_locks_take(c->fr, p->fdt);
	return ret;
}

static void stub_main(struct rctx *c, int idx)
{
	struct rproc *p = &c->p[idx];
	PstreeEntry *pe = p->pe;
	int ctl = p->ctl[1], ret;
	sigset_t all;

	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	/* dies with its parent (the restorer, or the parent task's stub) until
	 * the very end of the restore: see takeover_finish() */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != (idx ? (pid_t)pe->ppid : c->helper ? c->helper : c->restorer))
		_exit(125);	/* it died before we got here */
	log_set_prefix("kup restore");

	if (pe->sid == pe->pid) {
		if (setsid() < 0) {
			ret = log_errno(errno, "pid %u: cannot create its session", pe->pid);
			goto fail;
		}
		/* before any child: they inherit it */
		ret = files_pty_ctty_restore(c->fr, pe->pid, false);
		if (ret)
			goto fail;
	} else if (pe->pgid == pe->pid && setpgid(0, 0)) {
		ret = log_errno(errno, "pid %u: cannot create its process group", pe->pid);
		goto fail;
	}
	/* a session of the tree comes from its leader's setsid() (dump.c
	 * refuses a task in a session other than its own or its parent's) */
	if (rproc_index(c, pe->sid) >= 0 && getsid(0) != (pid_t)pe->sid) {
		ret = log_errno(EINVAL, "pid %u: in session %d instead of %u", pe->pid, getsid(0),
				pe->sid);
		goto fail;
	}
	/* the memory its children share with it, in place before they are
	 * forked (mem-restore.c) */
	ret = stub_cow_prepare(c, idx);
	if (ret)
		goto fail;
	stub_send(p, ctl, MSG_FILL, 0);
	stub_wait(ctl, MSG_GO_FORK);
	ret = stub_fork_children(c, idx);
	if (ret)
		goto fail;
	stub_send(p, ctl, MSG_CREATED, 0);
	stub_wait(ctl, MSG_GO_PGID);
	if ((pid_t)pe->pgid != getpgid(0) && setpgid(0, pe->pgid)) {
		if (!(c->o->shell_job && idx == 0)) {
			ret = log_errno(errno, "pid %u: cannot join process group %u", pe->pid, pe->pgid);
			goto fail;
		}
	}
	stub_send(p, ctl, MSG_PGID_DONE, 0);
	stub_wait(ctl, MSG_GO_SETUP);
	/* every group exists now: the terminal's foreground one */
	if (p->alive && pe->sid == pe->pid) {
		ret = files_pty_ctty_restore(c->fr, pe->pid, true);
		if (ret)
			goto fail;
	}
	if (!p->alive) {
		int st = pe->has_exit_code ? pe->exit_code : 0;

		if (WIFSIGNALED(st)) {
			signal(WTERMSIG(st), SIG_DFL);
			sigprocmask(SIG_UNBLOCK, &all, NULL);
			kill(getpid(), WTERMSIG(st));
		}
		_exit(WEXITSTATUS(st));
	}
	ret = stub_setup(c, p, &ctl);
	if (ret)
		goto fail;
	stub_send(p, ctl, MSG_READY, 0);
	for (;;)		/* the restorer takes over from here */
		pause();
fail:
	stub_send(p, ctl, MSG_ERR, ret);
	_exit(127);
}

/* The session helper (session_helper_pid): makes the session, then the
 * root under it, and waits to be killed once the tree runs. */
static void session_helper_main(struct rctx *c)
{
	struct rproc *p = &c->p[0];
	pid_t r;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != c->restorer)
		_exit(125);
	log_set_prefix("kup restore");
	if (setsid() < 0) {
		stub_send(p, p->ctl[1], MSG_ERR,
			  log_errno(errno, "pid %d: cannot make the session of pid %u", c->helper,
				    p->pe->pid));
		_exit(127);
	}
	r = clone_with_pid(p->pe->pid, SIGCHLD);
	if (r < 0) {
		stub_send(p, p->ctl[1], MSG_ERR,
			  log_errno(errno, "cannot create the root task with pid %u", p->pe->pid));
		_exit(127);
	}
	if (r == 0)
		stub_main(c, 0);	/* never returns */
	for (;;)
		pause();
}

/* ---- the restorer's side ----------------------------------------------- */

static int ctl_recv(struct rctx *c, int type, int idx)
{
	struct rproc *p = &c->p[idx];
	struct ctl_msg m;
	ssize_t n;

	do
		n = read(p->ctl[0], &m, sizeof(m));
	while (n < 0 && errno == EINTR);
	if (n != sizeof(m)) {
		log_err("pid %u: the restore helper died", p->pe->pid);
		return -EIO;
	}
	if (m.type == MSG_ERR)
		return m.err ? m.err : -EIO;
	if (m.type != type) {
		log_err("pid %u: unexpected message %d from the restore helper", p->pe->pid, m.type);
		return -EIO;
	}
	if (type == MSG_READY) {
		if (m.nkeep != p->nkeep + p->nkeep_shared)
			return -EIO;
		p->tramp = m.tramp;
		memcpy(p->keep, m.keep, sizeof(int) * p->nkeep);
		shared_keep_got(c, idx, m.keep + p->nkeep);
	}
	return 0;
}

static int ctl_send(struct rctx *c, int idx, int type)
{
	struct ctl_msg m = { .type = type };

	if (write(c->p[idx].ctl[0], &m, sizeof(m)) != sizeof(m))
		return log_errno(errno, "pid %u: cannot talk to the restore helper", c->p[idx].pe->pid);
	return 0;
}

/* Restorer: the stubs set themselves up, sharers of a table around their
 * owner's installing it. */
static int setup_stubs(struct rctx *c)
{
	int ret = 0;

	for (int i = 0; i < c->n && !ret; i++)
		if (c->p[i].files_owner >= 0)
			ret = ctl_send(c, i, MSG_GO_SETUP);
	for (int i = 0; i < c->n && !ret; i++)
		if (c->p[i].files_owner >= 0)
			ret = ctl_recv(c, MSG_TABLE_WAIT, i);
	for (int i = 0; i < c->n && !ret; i++)
		if (c->p[i].files_owner < 0)
			ret = ctl_send(c, i, MSG_GO_SETUP);
	for (int i = 0; i < c->n && !ret; i++)
		if (c->p[i].files_owner < 0 && c->p[i].alive)
			ret = ctl_recv(c, MSG_READY, i);
	for (int i = 0; i < c->n && !ret; i++)
		if (c->p[i].files_owner >= 0) {
			struct ctl_msg m = { .type = MSG_GO_TABLE, .nkeep = c->p[i].nkeep };
			union sigval v = { .sival_int = c->p[i].keep[0] };

			memcpy(m.keep, c->p[i].keep, sizeof(int) * m.nkeep);
			if (write(c->p[i].ctl[0], &m, sizeof(m)) != sizeof(m) ||
			    sigqueue(c->p[i].pe->pid, SIGUSR1, v))
				ret = log_errno(errno, "pid %u: cannot talk to the restore helper",
						c->p[i].pe->pid);
			if (!ret)
				ret = ctl_recv(c, MSG_READY, i);
		}
	return ret;
}


static int seize_add(struct rproc *p, pid_t tid)
{
	pid_t *n = realloc(p->seized_tids, (p->nseized + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	p->seized_tids = n;
	p->seized_tids[p->nseized++] = tid;
	return 0;
}

int inj(struct takeover *tk, pid_t tid, long nr, const char *what, long *retp,
	       unsigned long a0, unsigned long a1, unsigned long a2, unsigned long a3,
	       unsigned long a4, unsigned long a5)
{
	long ret;
	int err = puppet_syscall(&tk->pp, tid, &ret, nr, a0, a1, a2, a3, a4, a5);

	if (err)
		return err;
	if (retp)
		*retp = ret;
	else if (ret < 0 && ret > -4096)
		return log_errno(-ret, "pid %u tid %d: %s", tk->p->pe->pid, tid, what);
	return 0;
}


int scratch_put(struct takeover *tk, size_t off, const void *buf, size_t len)
{
	if (off + len > tk->pp.scratch_len)
		return -E2BIG;
	return puppet_write(tk->p->pe->pid, tk->pp.scratch + off, buf, len);
}

/* What the per-process state modules (task-state.h) see of @tk. */
static struct task_rst task_rst_of(struct takeover *tk)
{
	return (struct task_rst){ .pid = tk->p->pe->pid, .core = tk->p->core, .pp = &tk->pp,
				  .allow_differences = tk->c->o->allow_differences,
				  .in_userns = tk->c->userns_fd >= 0 };
}


/* A thread made with another tid than asked (another fork took the
 * ns_last_pid turn): it exits before it runs anything of the tree. */
static void drop_thread(struct takeover *tk, pid_t tid)
{
	const unsigned long a[6] = { 0 };
	struct arch_regs r;
	int st;

	if (!puppet_wait_stop(tid, &st) && !arch_get_regs(tid, &r)) {
		arch_regs_syscall(&r, tk->pp.tramp, SYS_exit, a);
		if (!arch_set_regs(tid, &r))
			ptrace(PTRACE_CONT, tid, 0, 0);
	}
	while (waitpid(tid, &st, __WALL) == tid && !WIFEXITED(st) && !WIFSIGNALED(st))
		ptrace(PTRACE_CONT, tid, 0, 0);
}

/*
 * In a user namespace of its own the task cannot ask for a tid (clone3's
 * set_tid needs CAP_CHECKPOINT_RESTORE in kup's, the PID namespace's
 * owner), and it can only join it while it has one thread: the restorer
 * sets ns_last_pid just below the tid, the task makes the thread without
 * one, and the restorer puts ns_last_pid back where the system had it, so
 * that other forks do not go on into the tree's next tids.  Another fork
 * on the system in between takes the tid: the thread the task got exits at
 * once (nothing of the tree ran in it), and once the other task is gone
 * (most are short-lived) the turn is taken again, a few times.
 */
#define THREAD_TID_TRIES	16
#define THREAD_TID_WAIT_MS	2000

static int set_last_pid(int fd, long v)
{
	char buf[24];
	int len = snprintf(buf, sizeof(buf), "%ld", v);

	return pwrite(fd, buf, (size_t)len, 0) == len ? 0 : -errno;
}

static long get_last_pid(int fd)
{
	char buf[24] = "";

	return pread(fd, buf, sizeof(buf) - 1, 0) > 0 ? strtol(buf, NULL, 10) : -1;
}

/* Wait until no task has pid @tid (a task there is not the tree's: its
 * pids were free when the restore began). */
static bool tid_freed(pid_t tid)
{
	for (int ms = 0; ms < THREAD_TID_WAIT_MS; ms += 10) {
		if (kill(tid, 0) && errno == ESRCH)
			return true;
		usleep(10000);
	}
	return false;
}

static int clone_thread_at(struct takeover *tk, uint64_t tid, long *ret)
{
	int fd = tk->c->last_pid_fd, err = 0;
	pid_t pid = tk->p->pe->pid;
	long was = get_last_pid(fd);

	for (int t = 0; t < THREAD_TID_TRIES; t++) {
		err = set_last_pid(fd, (long)tid - 1);
		if (err)
			return log_errno(-err, "pid %d: cannot set ns_last_pid for thread %" PRIu64,
					 pid, tid);
		err = inj(tk, pid, SYS_clone3, "clone3", ret, tk->pp.scratch,
			  sizeof(struct clone_args), 0, 0, 0, 0);
		if (was > 0)
			set_last_pid(fd, was);
		if (err || *ret == (long)tid || *ret <= 0)
			return err;
		log_info("pid %d: thread %" PRIu64 " came as %ld (another task took its tid): again",
			 pid, tid, *ret);
		drop_thread(tk, (pid_t)*ret);
		*ret = 0;
		if (!tid_freed((pid_t)tid)) {
			log_err("pid %d: thread %" PRIu64 ": its tid was taken by another task while "
				"the thread was made", pid, tid);
			return -EBUSY;
		}
	}
	log_err("pid %d: thread %" PRIu64 ": other tasks took its tid %d times", pid, tid,
		THREAD_TID_TRIES);
	return -EBUSY;
}

static int create_threads(struct takeover *tk)
{
	struct rproc *p = tk->p;
	pid_t pid = p->pe->pid;
	bool userns = tk->c->userns_fd >= 0;

	for (size_t i = 1; i < p->pe->n_threads; i++) {
		uint64_t tid = p->pe->threads[i];
		struct clone_args ca = {
			.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
				 CLONE_SYSVSEM,
			.set_tid = userns ? 0 : tk->pp.scratch + 128,
			.set_tid_size = userns ? 0 : 1,
		};
		long ret;
		int st, err;

		err = scratch_put(tk, 0, &ca, sizeof(ca));
		if (!err)
			err = scratch_put(tk, 128, &tid, sizeof(tid));
		if (!err && userns)
			err = clone_thread_at(tk, tid, &ret);
		else if (!err)
			err = inj(tk, pid, SYS_clone3, "clone3", &ret, tk->pp.scratch, sizeof(ca), 0, 0, 0, 0);
		if (err)
			return err;
		if (ret != (long)tid) {
			if (ret > 0 && !userns)
				drop_thread(tk, (pid_t)ret);
			return log_errno(ret < 0 ? -ret : EBUSY, "pid %d: cannot create thread %" PRIu64,
					 pid, tid);
		}
		err = seize_add(p, tid);
		if (!err)
			err = puppet_wait_stop(tid, &st);
		if (err)
			return err;
	}
	return 0;
}

static int restore_thread(struct takeover *tk, ThreadCore *tc)
{
	pid_t tid = tc->tid;
	int err = 0;

	if (tc->has_robust_list && tc->robust_list)
		err = INJ(tk, tid, SYS_set_robust_list, "set_robust_list", tc->robust_list,
			  tc->robust_list_len, 0, 0, 0, 0);
	if (!err && tc->has_rseq_addr && tc->rseq_addr)
		err = INJ(tk, tid, SYS_rseq, "cannot register rseq", tc->rseq_addr, tc->rseq_len, 0,
			  tc->rseq_sig, 0, 0);
	if (!err)
		err = INJ(tk, tid, SYS_set_tid_address, "set_tid_address", tc->clear_tid_addr, 0, 0, 0, 0, 0);
	if (!err) {
		/* always: a disabled one too, or the restorer's own would stay */
		bool on = tc->has_sas_sp && !(tc->sas_flags & SS_DISABLE);
		struct { uint64_t sp; int32_t flags; int32_t pad; uint64_t size; } ss = {
			on ? tc->sas_sp : 0, on ? (int32_t)(tc->sas_flags & ~SS_ONSTACK) : SS_DISABLE, 0,
			on ? tc->sas_size : 0 };

		err = scratch_put(tk, 512, &ss, sizeof(ss));
		if (!err)
			err = INJ(tk, tid, SYS_sigaltstack, "cannot restore sigaltstack",
				  tk->pp.scratch + 512, 0, 0, 0, 0, 0);
	}
	if (!err && tc->comm) {
		char comm[16] = { 0 };

		snprintf(comm, sizeof(comm), "%s", tc->comm);
		err = scratch_put(tk, 512, comm, sizeof(comm));
		if (!err)
			err = INJ(tk, tid, SYS_prctl, "prctl(PR_SET_NAME)", PR_SET_NAME, tk->pp.scratch + 512,
				  0, 0, 0, 0);
	}
	return err;
}

/* Is @p the first task holding file @id, and @fd its first fd of it? */
static bool first_holder(struct rctx *c, struct rproc *p, uint32_t id, int fd)
{
	for (int i = 0; i < c->n; i++) {
		struct rproc *q = &c->p[i];

		for (size_t k = 0; q->alive && k < q->fdt->n_fds; k++)
			if (q->fdt->fds[k]->file_id == id)
				return q == p && q->fdt->fds[k]->fd == fd;
	}
	return false;
}

/*
 * Signal-driven I/O: the first task holding a file sets its signal, its
 * owner (all tasks exist by now; threads of this one too) and O_ASYNC, in
 * that order, through its own fd: the fd number is what SIGIO's si_fd
 * reports, and the owner records the credentials of the task that sets it.
 */
static int restore_fown(struct takeover *tk)
{
	const FdtableEntry *t = tk->p->fdt;
	pid_t pid = tk->p->pe->pid;
	int err = 0;

	for (size_t i = 0; !err && i < t->n_fds; i++) {
		const FileEntry *fe = files_rst_entry(tk->c->fr, t->fds[i]->file_id);
		int fd = t->fds[i]->fd;
		long fl;

		if (!fe || (!fe->fown && !(fe->flags & O_ASYNC)) ||
		    !first_holder(tk->c, tk->p, fe->id, fd))
			continue;
		if (fe->fown) {
			struct f_owner_ex own = { fe->fown->type, fe->fown->pid };

			err = INJ(tk, pid, SYS_fcntl, "cannot set the signal of signal-driven I/O (F_SETSIG)",
				  fd, F_SETSIG, fe->fown->sig, 0, 0, 0);
			if (!err)
				err = scratch_put(tk, 512, &own, sizeof(own));
			if (!err)
				err = INJ(tk, pid, SYS_fcntl, "cannot set the owner of signal-driven I/O "
					  "(F_SETOWN_EX)", fd, F_SETOWN_EX, tk->pp.scratch + 512, 0, 0, 0);
		}
		if (!err && (fe->flags & O_ASYNC))
			err = inj(tk, pid, SYS_fcntl, "F_GETFL", &fl, fd, F_GETFL, 0, 0, 0, 0);
		if (!err && (fe->flags & O_ASYNC))
			err = fl < 0 ? log_errno(-fl, "pid %d fd %d: F_GETFL", pid, fd) :
			      INJ(tk, pid, SYS_fcntl, "cannot set O_ASYNC", fd, F_SETFL, fl | O_ASYNC, 0, 0, 0);
		if (err)
			log_err("pid %d fd %d: %s: signal-driven I/O not restored", pid, fd, files_fe_name(fe));
	}
	return err;
}

/*
 * The task that takes POSIX lock @l of table @t back: the table's, or the
 * task that held it if that one shares the table (CLONE_FILES).
 */
static pid_t posix_lock_holder(struct rctx *c, const FdtableEntry *t, const FileLock *l)
{
	int i = l->has_pid ? rproc_index(c, l->pid) : -1;

	if (i >= 0 && c->p[i].files_owner >= 0 && c->p[c->p[i].files_owner].fdt == t)
		return l->pid;
	return t->pid;
}

/*
 * POSIX locks belong to the process: it takes them itself (fcntl F_SETLK),
 * once every task is taken over: any close of the file drops them, and a
 * task sharing the fd table closes its restore fds in its own takeover.
 */
static int restore_posix_locks(struct takeover *tk)
{
	const struct rproc *p = tk->p;
	const FdtableEntry *t = p->files_owner >= 0 ? tk->c->p[p->files_owner].fdt : p->fdt;
	pid_t pid = p->pe->pid;

	for (size_t i = 0; i < t->n_locks; i++) {
		const FileLock *l = t->locks[i];
		struct flock fl;
		char what[512];
		long ret;
		int err;

		if (l->kind != FILE_LOCK_KIND__LOCK_POSIX || posix_lock_holder(tk->c, t, l) != pid)
			continue;
		files_lock_flock(l, &fl);
		err = scratch_put(tk, 512, &fl, sizeof(fl));
		if (!err)
			err = inj(tk, pid, SYS_fcntl, "fcntl", &ret, l->fd, F_SETLK, tk->pp.scratch + 512,
				  0, 0, 0);
		if (err)
			return err;
		if (ret) {
			files_lock_describe(tk->c->fr, t, l, what, sizeof(what));
			return log_errno(-ret, "pid %d fd %d: cannot take back its %s%s", pid, l->fd, what,
					 ret == -EAGAIN || ret == -EACCES ?
					 " (a conflicting lock is held outside the tree)" : "");
		}
	}
	return 0;
}

/* ---- the takeovers on one CPU ------------------------------------------ */

/*
 * Every injected syscall is a round trip between the restorer and the
 * task it drives: PTRACE_SYSCALL, a stop at the syscall's entry and one at
 * its exit, each waking the other side.  With the two on different CPUs
 * every wake-up is a cross-CPU one, often of an idle CPU, and it costs
 * more than the syscall: 3-4x the round trip on the same CPU on a
 * virtualised host, 5-40x in the QEMU lab's emulated guest (the more the
 * host is loaded), whose idle vCPUs the host must schedule again
 * (docs/lab.md, "Where a restore's time goes").  A task with many mappings and threads takes hundreds of
 * them (redis-server with its jemalloc arenas and 5 threads: about 250).
 * So from the first takeover until every task is complete and parked the
 * restorer runs on the CPU it is on, and each task taken over runs there
 * too, its threads with it (they are made from its main thread and inherit
 * its CPUs).  Each thread gets back the CPUs the task had, those a stub
 * inherits from the restorer (then those it had at dump, task-attrs.c's
 * restore_cpus, where it had fewer than it could), before the journal says the tree is
 * complete (from then on `kup recover` lets it go: never on one CPU).
 * Best effort: where the affinity cannot be set, the takeover runs as it
 * would without.
 */
static void pin_restorer(struct rctx *c)
{
	cpu_set_t one;
	int cpu;

	c->pin_cpu = -1;
	if (sched_getaffinity(0, sizeof(c->restorer_cpus), &c->restorer_cpus)) {
		log_debug("the restorer's CPUs: %s; not pinned", strerror(errno));
		return;
	}
	cpu = sched_getcpu();
	if (cpu < 0 || cpu >= CPU_SETSIZE || CPU_COUNT(&c->restorer_cpus) < 2)
		return;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (sched_setaffinity(0, sizeof(one), &one)) {
		log_debug("cannot run the restorer on CPU %d alone: %s", cpu, strerror(errno));
		return;
	}
	c->pin_cpu = cpu;
}

static void unpin_restorer(struct rctx *c)
{
	if (c->pin_cpu < 0)
		return;
	if (sched_setaffinity(0, sizeof(c->restorer_cpus), &c->restorer_cpus))
		log_warn("cannot give the restorer its CPUs back: %s", strerror(errno));
	c->pin_cpu = -1;
}

static void pin_task(struct rctx *c, struct rproc *p)
{
	pid_t pid = p->pe->pid;
	cpu_set_t one;

	if (c->pin_cpu < 0)
		return;
	if (sched_getaffinity(pid, sizeof(p->cpus), &p->cpus)) {
		log_debug("pid %d: its CPUs: %s; not pinned", pid, strerror(errno));
		return;
	}
	CPU_ZERO(&one);
	CPU_SET(c->pin_cpu, &one);
	if (sched_setaffinity(pid, sizeof(one), &one)) {
		log_debug("pid %d: cannot run it on CPU %d alone: %s", pid, c->pin_cpu,
			  strerror(errno));
		return;
	}
	p->pinned = true;
}

static int unpin_task(struct rproc *p)
{
	const CoreEntry *core = p->core;

	if (!p->pinned)
		return 0;
	for (size_t i = 0; i < core->n_threads; i++)
		if (sched_setaffinity(core->threads[i]->tid, sizeof(p->cpus), &p->cpus))
			return log_errno(errno, "pid %u tid %u: cannot give it its CPUs back",
					 p->pe->pid, core->threads[i]->tid);
	p->pinned = false;
	return 0;
}

static int takeover(struct rctx *c, struct rproc *p)
{
	struct takeover tk = { .c = c, .p = p, .memfd = -1 };
	pid_t pid = p->pe->pid;
	struct { uint64_t ptr; uint32_t size, sig, flags, pad; } rc;
	struct task_rst tr;
	int err;

	tk.pp.pid = pid;
	tk.pp.tramp = p->tramp;
	tk.pp.scratch = p->tramp + 64;
	tk.pp.scratch_len = puppet_area_size() - 64;

	err = puppet_seize(pid, true);
	if (err)
		return log_errno(err, "pid %d: cannot take over the restored task", pid);
	p->seized = true;
	err = seize_add(p, pid);
	if (err)
		return err;
	pin_task(c, p);
	/* the stub's own rseq area is about to disappear */
	memset(&rc, 0, sizeof(rc));
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, pid, sizeof(rc), &rc) > 0 && rc.ptr) {
		err = INJ(&tk, pid, SYS_rseq, "cannot unregister the helper's rseq", rc.ptr, rc.size, 1,
			  rc.sig, 0, 0);
		if (err)
			return err;
	}
	err = restore_mm(&tk);
	if (tk.memfd >= 0)
		close(tk.memfd);
	if (!err)
		err = ckpt_check_abort();
	if (!err)
		err = restore_mm_fields(&tk);
	tr = task_rst_of(&tk);
	/* into the tree's user namespace: with one thread, once what needs
	 * kup's privileges is done (docs/design.md, "User namespaces") */
	if (!err && c->userns_fd >= 0)
		err = creds_join_userns(&tr, keep_fd(p, KEEP_USERNS));
	if (!err)
		err = create_threads(&tk);
	for (size_t i = 0; !err && i < p->core->n_threads; i++)
		err = restore_thread(&tk, p->core->threads[i]);
	/* the per-process state modules, phase by phase (task-state.h):
	 * pending signals, timers, limits, then what needs privileges
	 * (the audit login uid, seccomp), the credentials, and what they
	 * reset */
	if (!err)
		err = task_states_restore(&tr, TS_THREADS);
	if (!err)
		err = ckpt_check_abort();
	for (enum task_phase ph = TS_LATE; !err && ph <= TS_AFTER_CREDS; ph++)
		err = task_states_restore(&tr, ph);
	if (!err)
		err = restore_fown(&tk);	/* with the task's final credentials */
	for (int i = 0; !err && i < p->nkeep; i++)
		err = INJ(&tk, pid, SYS_close, "cannot close a restore fd", p->keep[i], 0, 0, 0, 0, 0);
	c->n_inj += tk.pp.n_calls;
	c->ns_inj += tk.pp.ns_calls;
	return err;
}

/* The registers thread @tc resumes with: the dumped ones, an interrupted
 * syscall set to start again. */
static void final_regs(const ThreadCore *tc, struct arch_regs *regs)
{
	memcpy(regs, tc->gpregs.data, sizeof(*regs));
	arch_regs_fixup_restart(regs);
}

/*
 * A task dumped stopped (group stop) is stopped before it is let go, so it
 * runs nothing of its own in between (not even the handler of a signal it
 * has pending): SIGSTOP while everything else is still blocked, delivered
 * from its signal-delivery-stop; it is then in the group stop, which it
 * stays in when detached, its other threads joining it.  Its parent is told
 * as for any stop (the signal it reports is SIGSTOP: docs/design.md).
 */
static int stop_task(struct rproc *p)
{
	pid_t pid = p->pe->pid;
	int st, sig = 0, err;

	if (syscall(SYS_tgkill, pid, pid, SIGSTOP))
		return log_errno(errno, "pid %d: cannot stop it again", pid);
	for (int round = 0; round < 8; round++) {
		if (ptrace(PTRACE_CONT, pid, 0, sig))
			return log_errno(errno, "pid %d: cannot resume it to stop it", pid);
		err = puppet_wait_stop_bounded(pid, &st, PUPPET_STOP_TIMEOUT_MS);
		if (err)
			return log_errno(err, "pid %d: did not stop again", pid);
		if ((st >> 16) == PTRACE_EVENT_STOP)
			return 0;	/* in its group stop */
		sig = WSTOPSIG(st) == SIGSTOP && !(st >> 16) ? SIGSTOP : 0;
	}
	log_err("pid %d: did not stop again (status 0x%x)", pid, st);
	return -EIO;
}

/*
 * The last steps of a task, once every task is taken over: its own
 * parent-death signal replaces the SIGKILL of the stub (until then a
 * restorer that dies, even of SIGKILL, takes every task it made with it:
 * the root dies with it, each other task with its parent), its FPU state,
 * and its threads parked in the trampoline's loop (arch_puppet_code): a
 * restorer killed from here on leaves them asleep there, never running on
 * sockets still in repair mode, for `kup recover` to kill or let go
 * (journal_complete).  takeover_release() gives them their registers.
 */
static int takeover_finish(struct rctx *c, struct rproc *p)
{
	struct takeover tk = { .c = c, .p = p, .memfd = -1 };
	pid_t pid = p->pe->pid;
	struct task_rst tr;
	struct arch_regs regs;
	int err;

	tk.pp.pid = pid;
	tk.pp.tramp = p->tramp;
	tk.pp.scratch = p->tramp + 64;
	tk.pp.scratch_len = puppet_area_size() - 64;
	/* after the last close of every task: any close drops them */
	err = restore_posix_locks(&tk);
	tr = task_rst_of(&tk);
	if (!err)
		err = task_states_restore(&tr, TS_FINISH);
	if (err)
		return err;

	for (size_t i = p->core->n_threads; i-- > 0;) {
		ThreadCore *tc = p->core->threads[i];

		if (tc->has_xstate && tc->xstate.len) {
			err = arch_set_fpstate(tc->tid, tc->xstate.data, tc->xstate.len);
			if (err)
				return err;
		}
		final_regs(tc, &regs);
		arch_regs_park(&regs, p->tramp);
		err = arch_set_regs(tc->tid, &regs);
		if (err)
			return err;
	}
	return 0;
}

/*
 * The registers go in, other threads first, then the main thread's as the
 * trampoline goes: unmapped by a munmap patched over the program's entry
 * point (puppet_syscall_patched), so that a restorer killed during it
 * leaves the thread on its registers or parked there, never returning into
 * the unmapped trampoline.
 */
static int takeover_release(struct rctx *c, struct rproc *p)
{
	const unsigned long a[6] = { p->tramp, puppet_area_size() };
	pid_t pid = p->pe->pid;
	struct arch_regs regs;
	unsigned long at, orig;
	long ret;
	int err;

	for (size_t i = p->core->n_threads; i-- > 1;) {
		final_regs(p->core->threads[i], &regs);
		err = arch_set_regs(p->core->threads[i]->tid, &regs);
		if (err)
			return err;
	}
	final_regs(p->core->threads[0], &regs);
	at = puppet_patch_site(pid, arch_regs_ip(&regs));
	errno = 0;
	orig = ptrace(PTRACE_PEEKDATA, pid, at, 0);
	if (errno)
		return log_errno(errno, "pid %d: cannot read code at 0x%lx", pid, at);
	err = puppet_syscall_patched(pid, pid, at, orig, &ret, SYS_munmap, a, &regs);
	if (!err && ret)
		err = log_errno(-ret, "pid %d: cannot remove the restore trampoline", pid);
	if (!err)
		journal_add("untramp %d %lx", pid, p->tramp);
	return err;
}

/*
 * journal.h: every task is complete and parked; killed from here on, the
 * restore is finished by `kup recover` rather than undone: the threads
 * get these registers and masks, the trampolines go, the connections
 * leave repair mode and their locks go (what files_rst_finish() and
 * takeover_release() were about to do), the tasks are let go.
 */
static int journal_complete(struct rctx *c)
{
	struct arch_regs regs;

	if (!journal_active())
		return 0;
	for (int i = 0; i < c->n; i++) {
		struct rproc *p = &c->p[i];
		pid_t pid = p->pe->pid;

		if (!p->alive)
			continue;
		if (journal_add("tramp %d %llu %lx %lx", pid, journal_start_time(pid, pid), p->tramp,
				puppet_area_size()) ||
		    inet_rst_journal(c->fr, pid, p->fdt))
			return -EIO;
		for (size_t t = 0; t < p->core->n_threads; t++) {
			ThreadCore *tc = p->core->threads[t];

			final_regs(tc, &regs);
			if (journal_regs(pid, tc->tid, &regs) ||
			    journal_add("mask %u %u %llu %" PRIx64, pid, tc->tid,
					journal_start_time(pid, tc->tid), tc->sigmask))
				return -EIO;
		}
		if (p->alive && p->pe->state == TASK_STATE__TASK_STOPPED &&
		    journal_add("stopped %u", p->pe->pid))
			return -EIO;
	}
	return journal_add("complete");
}

static void kill_all(struct rctx *c)
{
	lazy_stop(c);
	if (c->helper_up)
		kill(c->helper, SIGKILL);
	for (int i = 0; i < c->n; i++)
		kill(c->p[i].pe->pid, SIGKILL);
	/* we are a subreaper: collect everything that was made */
	while (waitpid(-1, NULL, __WALL) > 0 || errno == EINTR)
		;
}

static void free_ctx(struct rctx *c)
{
	for (int i = 0; c->p && i < c->n; i++) {
		struct rproc *p = &c->p[i];

		if (p->pages_open)
			c->st->ops->release(c->st, &p->pages);
		if (p->ctl[0] >= 0)
			close(p->ctl[0]);
		if (p->ctl[1] >= 0)
			close(p->ctl[1]);
		for (int k = 1; k < p->nkeep; k++)
			if (!(p->keep_id[k] & SHM_KEY) && p->keep_id[k] != 0x20000000u &&
			    p->keep_id[k] != KEEP_USERNS)
				close(p->keep_src[k]);
		for (int t = 0; t < p->nseized; t++)
			(void)puppet_took_stop(p->seized_tids[t]);	/* (killed) */
		free(p->seized_tids);
		free(p->cow);
		free(p->lazy);
		free(p->pages_ok);
	}
	free(c->p);
	if (c->fr)
		files_rst_free(c->fr);
	if (c->files) {
		struct files_opts fo = { .shell_job = c->o->shell_job,
					 .tcp_established = c->o->tcp_established };
		files_rst_release(c->files, &fo);
	}
	if (c->shm_fds) {
		for (size_t i = 0; c->shm && i < c->shm->n_entries; i++)
			if (c->shm_fds[i] >= 0)
				close(c->shm_fds[i]);
		free(c->shm_fds);
	}
	free(c->shm_made);
	vdso_symtab_free(&c->cur_syms);
	ipc_rst_free(c->ipc, !c->ipc_done);
	ckpt_images_free(&c->im);
}

/* The state modules' halves of phase @ph that run from outside the task
 * (TS_OUTSIDE: scheduling; TS_RUNNING: once it runs untraced). */
static int restore_outside(struct rctx *c, struct rproc *p, enum task_phase ph)
{
	struct task_rst tr = { .pid = p->pe->pid, .core = p->core,
			       .allow_differences = c->o->allow_differences };

	return task_states_restore(&tr, ph);
}

/* Was the tree dumped on this boot of this machine? */
static bool same_boot(const InventoryEntry *inv)
{
	char *id = proc_read_file(1, "../sys/kernel/random/boot_id", NULL);
	bool same;

	if (!id || !inv->boot_id)
		same = !inv->boot_id;	/* images without one: assume so */
	else
		same = !strncmp(id, inv->boot_id, strcspn(id, "\n")) &&
		       strlen(inv->boot_id) == strcspn(id, "\n");
	free(id);
	return same;
}

int ckpt_restore(const struct ckpt_restore_opts *o, struct ckpt_stats *stats)
{
	struct rctx c = { .o = o, .st = o->store, .lazy_sock = -1, .userns_fd = -1,
			  .last_pid_fd = -1, .pin_cpu = -1 };
	struct files_opts fo = { .shell_job = o->shell_job, .tcp_established = o->tcp_established,
				 .store = o->store };
	struct mntns_rst *mntns = NULL;
	struct timespec t0, t1;
	pid_t root;
	int ret, status;

	memset(stats, 0, sizeof(*stats));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	c.ns_phase = rst_now_ns();
	ret = load_images(&c);
	if (ret)
		goto out;
	phase_done(&c, "images loaded and checked");
	/* namespace inodes of another boot mean nothing here (files.h) */
	fo.other_boot = !same_boot(c.inv) || o->as_new_boot;
	fo.dump_netns = c.inv->has_dump_netns ? c.inv->dump_netns : 0;
	if (c.inv->shell_job && !o->shell_job) {
		log_err("%s: the tree was dumped with --shell-job; restore it with --shell-job", c.st->where);
		ret = -EINVAL;
		goto out;
	}
	/* before anything of the tree is opened or made */
	if (o->lazy) {
		ret = lazy_start(&c);
		if (ret)
			goto out;
	}
	if (o->before_pids) {
		ret = o->before_pids(o->arg);
		if (ret)
			goto out;
	}
	c.helper = session_helper_pid(&c);
	ret = check_pids_free(&c);
	if (ret)
		goto out;
	phase_done(&c, "pids held and free");
	/* the tree's files are opened, and its tasks born, in its namespace */
	ret = mntns_rst_enter(c.st, c.p[0].pe->pid, &mntns);
	if (ret)
		goto out;
	c.userns_fd = mntns_rst_userns(mntns);
	c.last_pid_fd = mntns_rst_last_pid(mntns);
	ret = files_rst_open_all(c.files, &fo, &c.fr);
	if (ret)
		goto out;
	ret = shmem_rst_open(c.st, c.shm, c.fr, &c.shm_fds, &c.shm_made);
	if (!ret)
		ret = ipc_rst_create(c.ipc, c.st);
	if (ret)
		goto out;
	ret = probe_vdso(&c);
	if (ret)
		goto out;
	phase_done(&c, "files and objects made");
	for (int i = 0; i < c.n; i++) {
		struct rproc *p = &c.p[i];

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p->ctl)) {
			ret = log_errno(errno, "cannot create a control socket");
			goto out;
		}
		if (!p->alive)
			continue;
		stats->nr_procs++;
		stats->nr_threads += p->pe->n_threads;
		ret = ckpt_check_abort();
		if (!ret)
			ret = validate_mm(&c, p);
		if (!ret)
			ret = prepare_keep(&c, p);
		if (ret)
			goto out;
		stats->pages += p->mm->pages_nr;
	}
	ret = shared_keep_prepare(&c);
	if (ret)
		goto out;

	ret = cow_plan(&c);
	if (ret)
		goto out;
	phase_done(&c, "memory images opened");
	ret = clocks_restore_prepare(c.inv, same_boot(c.inv) && !o->as_new_boot,
				     o->allow_differences);
	if (!ret)
		ret = ckpt_check_abort();
	if (ret)
		goto out;
	c.restorer = getpid();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (c.helper) {
		pid_t h = clone_with_pid(c.helper, SIGCHLD);

		if (h < 0) {
			ret = log_errno(errno, "cannot create the session helper with pid %d "
					"(the session of pid %u)", c.helper, c.p[0].pe->pid);
			goto out;
		}
		if (h == 0)
			session_helper_main(&c);	/* never returns */
		c.helper_up = true;
		root = c.p[0].pe->pid;
	} else {
		root = clone_with_pid(c.p[0].pe->pid, SIGCHLD);
		if (root < 0) {
			ret = log_errno(errno, "cannot create the root task with pid %u",
					c.p[0].pe->pid);
			goto out;
		}
		if (root == 0)
			stub_main(&c, 0);
	}
	/* parents first: a stub forks its children once its memory is in */
	for (int i = 0; i < c.n && !ret; i++) {
		ret = ctl_recv(&c, MSG_FILL, i);
		if (!ret)
			ret = cow_fill(&c, i);
		if (!ret)
			ret = ctl_send(&c, i, MSG_GO_FORK);
	}
	for (int i = 0; i < c.n && !ret; i++)
		ret = ctl_recv(&c, MSG_CREATED, i);
	/* journal.h: killed by `kup recover` if we die before the end */
	for (int i = 0; i < c.n && !ret; i++)
		ret = journal_add("task %u %llu", c.p[i].pe->pid,
				  journal_start_time(c.p[i].pe->pid, c.p[i].pe->pid));
	for (int i = 0; i < c.n && !ret; i++)
		ret = ctl_send(&c, i, MSG_GO_PGID);
	for (int i = 0; i < c.n && !ret; i++)
		ret = ctl_recv(&c, MSG_PGID_DONE, i);
	if (!ret)
		ret = setup_stubs(&c);
	if (!ret)
		phase_done(&c, "processes created");
	if (!ret) {
		unsigned long long total = 0;

		for (int i = 0; i < c.n; i++)
			if (c.p[i].alive)
				total += c.p[i].pages.len;
		log_progress_begin("memory", total);
	}
	if (!ret)
		pin_restorer(&c);
	for (int i = 0; i < c.n && !ret; i++)
		if (c.p[i].alive) {
			ret = ckpt_check_abort();
			if (!ret)
				ret = takeover(&c, &c.p[i]);
		}
	log_progress_end();
	if (!ret) {
		phase_done(&c, "memory and state in place");
		log_debug("restore:   pages: %.1f MiB; read %.1f ms, checksum %.1f ms, "
			  "written into the tasks %.1f ms%s",
			  c.bytes_read / 1048576.0, c.ns_read / 1e6, c.ns_sum / 1e6,
			  c.ns_write / 1e6, c.fill_two ? " (two CPUs: times summed)" : "");
		log_debug("restore:   syscalls injected: %" PRIu64 " in %.1f ms", c.n_inj,
			  c.ns_inj / 1e6);
	}
	/* every attachment made: a segment removed at dump goes with its last
	 * user, so marked before the tree is complete, a killed restore leaves
	 * none behind */
	if (!ret)
		ret = ipc_rst_finish(c.ipc);
	/* the last chance to abort: from here on the tree is let go */
	if (!ret)
		ret = ckpt_check_abort();
	for (int i = 0; i < c.n && !ret; i++)
		if (c.p[i].alive)
			ret = takeover_finish(&c, &c.p[i]);
	/* their CPUs back before `kup recover` may let them go (below), and
	 * before the CPUs a thread was given at dump (TS_OUTSIDE) */
	for (int i = 0; i < c.n && !ret; i++)
		if (c.p[i].alive)
			ret = unpin_task(&c.p[i]);
	unpin_restorer(&c);
	for (int i = 0; i < c.n && !ret; i++)
		if (c.p[i].alive)
			ret = restore_outside(&c, &c.p[i], TS_OUTSIDE);
	/* the connections go live (locks removed, repair off) only once every
	 * task is complete and parked: a restore killed before this point
	 * closes them still in repair mode, silently, and leaves the lock to a
	 * retry; from here on `kup recover` completes it instead */
	if (!ret)
		ret = journal_complete(&c);
	if (!ret)
		ret = files_rst_finish(c.fr);
	for (int i = 0; i < c.n && !ret; i++)
		if (c.p[i].alive)
			ret = takeover_release(&c, &c.p[i]);
	/* after the last injected syscall (takeover_release's munmap) */
	for (int i = 0; i < c.n && !ret; i++)
		if (c.p[i].alive && c.p[i].pe->state == TASK_STATE__TASK_STOPPED)
			ret = stop_task(&c.p[i]);
	if (ret) {
		kill_all(&c);
		if (ret != -ECANCELED)
			log_err("restore from %s failed; nothing was left running, the images are intact",
				c.st->where);
		goto out;
	}
	/* everything is in place: let the whole tree go at once */
	for (int i = 0; i < c.n; i++) {
		struct rproc *p = &c.p[i];

		for (size_t t = 0; p->alive && t < p->core->n_threads; t++) {
			ThreadCore *tc = p->core->threads[t];
			uint64_t mask = tc->sigmask;

			ptrace(PTRACE_SETSIGMASK, tc->tid, sizeof(mask), &mask);
		}
	}
	for (int i = 0; i < c.n; i++)
		for (int t = 0; t < c.p[i].nseized; t++) {
			pid_t tid = c.p[i].seized_tids[t];

			ptrace(PTRACE_DETACH, tid, 0, 0);
			/* a SIGSTOP sent to it during the restore, passed over in
			 * an injected syscall: the tree stops as its sender asked */
			if (puppet_took_stop(tid))
				kill(tid, SIGSTOP);
		}
	journal_add("running");
	if (c.lazy_pid) {
		log_info("the tree runs; pid %d (kup-lazy) fills in the rest of its memory",
			 c.lazy_pid);
		if (o->lazy_pid)
			*o->lazy_pid = c.lazy_pid;
		lazy_running(&c);
	}
	for (int i = 0; i < c.n; i++)
		if (c.p[i].alive)
			restore_outside(&c, &c.p[i], TS_RUNNING);
	phase_done(&c, "completed and let go");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	stats->total_ns = (t1.tv_sec - t0.tv_sec) * 1000000000ULL + t1.tv_nsec - t0.tv_nsec;
	if (c.helper_up) {
		/* the root becomes our child (we are its subreaper) */
		kill(c.helper, SIGKILL);
		while (waitpid(c.helper, NULL, 0) < 0 && errno == EINTR)
			;
	}
	prctl(PR_SET_CHILD_SUBREAPER, 0);
	mntns_rst_leave(mntns, false);
	if (o->root_pid)
		*o->root_pid = root;
	c.ipc_done = true;
	free_ctx(&c);
	memset(&c, 0, sizeof(c));
	if (o->on_running)
		o->on_running(o->arg);
	if (o->detach)
		return 0;
	while (waitpid(root, &status, 0) < 0)
		if (errno != EINTR)
			return log_errno(errno, "cannot wait for pid %d", root);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
out:
	unpin_restorer(&c);
	lazy_stop(&c);
	if (c.shm)
		shmem_rst_undo(c.shm, c.shm_made);
	free_ctx(&c);
	mntns_rst_leave(mntns, true);
	return ret;
}
