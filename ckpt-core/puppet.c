// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The puppet: running syscalls inside a stopped task.
 *
 * The tracer points the thread's registers at the syscall instruction of a
 * trampoline mapped in the target, lets it run with PTRACE_SYSCALL and
 * collects the result at the syscall's exit stop.  During dump the
 * trampoline is mapped (and unmapped) by one syscall run from a word of
 * code patched for that time (puppet_syscall_patched).  No trap is used: a
 * thread whose tracer dies during a syscall parks in the code after it
 * (arch_puppet_code) instead of dying of SIGTRAP.
 */
#include <elf.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "journal.h"

#define PUPPET_AREA	(4 * PAGE_SIZE_K)
#define PUPPET_CODE	64	/* code at the start, scratch after it */

#ifndef PTRACE_O_SUSPEND_SECCOMP
#define PTRACE_O_SUSPEND_SECCOMP (1 << 21)
#endif
#define PUPPET_OPTS	(PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE)

/*
 * Seccomp filters of the task must not filter the syscalls we inject (nor
 * kill it for them): seize with PTRACE_O_SUSPEND_SECCOMP when we may (root
 * outside any seccomp sandbox); a task that has filters then needs it
 * (puppet_suspend_seccomp).  Detaching ends the suspension.
 */
int puppet_seize(pid_t tid, bool interrupt)
{
	int st;

	if (ptrace(PTRACE_SEIZE, tid, 0, PUPPET_OPTS | PTRACE_O_SUSPEND_SECCOMP) &&
	    ((errno != EPERM && errno != EINVAL) || ptrace(PTRACE_SEIZE, tid, 0, PUPPET_OPTS)))
		return -errno;
	if (!interrupt)
		return 0;
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0))
		return -errno;
	return puppet_wait_stop_bounded(tid, &st, PUPPET_STOP_TIMEOUT_MS);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

/*
 * Wait for a stop, at most @timeout_ms: a thread in an uninterruptible or
 * killable sleep (a vfork parent, a wait on a hung file system) or an
 * io_uring worker never stops for PTRACE_INTERRUPT, and a freeze that waits
 * for it holds the whole tree frozen.  -ETIMEDOUT leaves the thread seized
 * but running: the caller gives the tree back.
 */
int puppet_wait_stop_bounded(pid_t tid, int *status, unsigned timeout_ms)
{
	uint64_t deadline = mono_ms() + timeout_ms;
	useconds_t nap = 100;
	int st;

	for (;;) {
		pid_t r = waitpid(tid, &st, __WALL | WNOHANG);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return log_errno(errno, "tid %d: wait failed", tid);
		}
		if (r == tid) {
			if (WIFEXITED(st) || WIFSIGNALED(st))
				return -ESRCH;
			*status = st;
			return 0;
		}
		if (mono_ms() >= deadline)
			return -ETIMEDOUT;
		usleep(nap);
		if (nap < 10000)
			nap *= 2;
	}
}

int puppet_suspend_seccomp(pid_t tid)
{
	if (ptrace(PTRACE_SETOPTIONS, tid, 0, PUPPET_OPTS | PTRACE_O_SUSPEND_SECCOMP))
		return -errno;
	return 0;
}

int puppet_wait_stop(pid_t tid, int *status)
{
	int st;

	for (;;) {
		pid_t r = waitpid(tid, &st, __WALL);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return log_errno(errno, "tid %d: wait failed", tid);
		}
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			log_err("tid %d: exited unexpectedly (status 0x%x)", tid, st);
			return -ESRCH;
		}
		*status = st;
		return 0;
	}
}

int puppet_write(pid_t pid, unsigned long addr, const void *buf, size_t len)
{
	struct iovec l = { (void *)buf, len }, r = { (void *)addr, len };
	ssize_t n = process_vm_writev(pid, &l, 1, &r, 1, 0);

	if (n != (ssize_t)len)
		return log_errno(n < 0 ? errno : EIO, "pid %d: cannot write %zu bytes at 0x%lx",
				 pid, len, addr);
	return 0;
}

int puppet_read(pid_t pid, unsigned long addr, void *buf, size_t len)
{
	struct iovec l = { buf, len }, r = { (void *)addr, len };
	ssize_t n = process_vm_readv(pid, &l, 1, &r, 1, 0);

	if (n != (ssize_t)len)
		return log_errno(n < 0 ? errno : EIO, "pid %d: cannot read %zu bytes at 0x%lx",
				 pid, len, addr);
	return 0;
}

/*
 * SIGSTOP cannot be blocked: a stopped task that was sent one while stopped
 * takes it as soon as it runs an injected syscall.  The dump has read the
 * pending signals before (dump.c, snapshot_pending) and sends it again when
 * it lets the tree go; the restore sends it last (restore.c, stop_task):
 * here it is passed over.  One sent while kup drives the task is passed
 * over too, and noted (note_stop_taken): it is sent again as the task is
 * let go.  True when @st is that stop.
 */
static bool stop_signal_passed_over(int st)
{
	return WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP && !(st >> 16);
}

/*
 * The threads that took a SIGSTOP during an injected syscall, where it was
 * passed over (stop_signal_passed_over): one sent to the tree while kup
 * drove it, after the dump or the restore had read its pending signals.
 * Whoever lets such a thread go sends it again (puppet_took_stop), so that
 * the tree ends stopped as its sender asked, not running.
 */
static pthread_mutex_t stops_mu = PTHREAD_MUTEX_INITIALIZER;
static pid_t *stop_tids;
static size_t nstop_tids, capstop_tids;

static void note_stop_taken(pid_t tid)
{
	pthread_mutex_lock(&stops_mu);
	for (size_t i = 0; i < nstop_tids; i++)
		if (stop_tids[i] == tid)
			goto out;
	if (nstop_tids == capstop_tids) {
		size_t nc = capstop_tids ? capstop_tids * 2 : 8;
		pid_t *n = realloc(stop_tids, nc * sizeof(*n));

		if (!n) {
			log_warn("tid %d: took a SIGSTOP during an injected syscall, and it "
				 "cannot be noted: it is lost", tid);
			goto out;
		}
		stop_tids = n;
		capstop_tids = nc;
	}
	stop_tids[nstop_tids++] = tid;
out:
	pthread_mutex_unlock(&stops_mu);
}

bool puppet_took_stop(pid_t tid)
{
	bool took = false;

	pthread_mutex_lock(&stops_mu);
	for (size_t i = 0; i < nstop_tids && !took; i++)
		if (stop_tids[i] == tid) {
			stop_tids[i] = stop_tids[--nstop_tids];
			took = true;
		}
	pthread_mutex_unlock(&stops_mu);
	return took;
}

/*
 * Fault injection for the tests, at the entry stop of the N-th (default
 * first) syscall NR that kup injects, in thread @tid:
 * KUP_FAULT_DIE_IN_SYSCALL=NR[:N] kills this process with SIGKILL, as the
 * OOM killer would: the thread then runs it without a tracer
 * (tests/integ/t-kill-all.sh);
 * KUP_FAULT_STOP_IN_SYSCALL=NR[:N] sends @tid's process a SIGSTOP, as an
 * admin's `kill -STOP` would (tests/integ/t-stopped-signals.sh).
 */
struct fault {
	const char *env;
	long nr, n, seen;
};

static bool fault_hit(struct fault *f, long nr)
{
	const char *e;
	char *end;

	if (f->nr == 0) {
		f->nr = -1;
		e = getenv(f->env);
		if (e && *e) {
			f->nr = strtol(e, &end, 10);
			f->n = *end == ':' ? strtol(end + 1, NULL, 10) : 1;
		}
	}
	return nr == f->nr && ++f->seen == f->n;
}

static void fault_point(pid_t tid, long nr)
{
	static struct fault die = { "KUP_FAULT_DIE_IN_SYSCALL" };
	static struct fault stop = { "KUP_FAULT_STOP_IN_SYSCALL" };

	if (fault_hit(&stop, nr))
		kill(tid, SIGSTOP);
	if (fault_hit(&die, nr))
		kill(getpid(), SIGKILL);
}

/*
 * Resume @tid, stopped with its registers on a syscall instruction, and
 * wait for that syscall's exit stop: PTRACE_SYSCALL to its entry, then to
 * its exit.  Nothing after the syscall instruction runs while we trace the
 * thread: what follows it (arch_puppet_code) is for a thread whose tracer
 * died, and parks it.  Events on the way (a clone) are stepped over.
 */
static int run_syscall(pid_t tid, long nr)
{
	int st, err, stops = 0;

	while (stops < 2) {
		if (ptrace(PTRACE_SYSCALL, tid, 0, 0))
			return log_errno(errno, "tid %d: cannot resume for syscall %ld", tid, nr);
		err = puppet_wait_stop(tid, &st);
		if (err)
			return err;
		if (WSTOPSIG(st) == (SIGTRAP | 0x80)) {
			if (!stops++)
				fault_point(tid, nr);
		} else if (stop_signal_passed_over(st)) {
			note_stop_taken(tid);
		} else if (!(st >> 16)) {
			/* only unblockable signals can arrive: pass it on later */
			log_err("tid %d: signal %d during injected syscall %ld", tid, WSTOPSIG(st), nr);
			return -EINTR;
		}
	}
	return 0;
}

/* Run syscall @nr(@a) at @at, a syscall instruction, in @tid whose
 * registers are @saved; install @final at its exit. */
static int inject(pid_t tid, unsigned long at, const struct arch_regs *saved, long *ret,
		  long nr, const unsigned long a[6], const struct arch_regs *final)
{
	struct arch_regs r = *saved;
	int err;

	arch_regs_syscall(&r, at, nr, a);
	err = arch_set_regs(tid, &r);
	if (!err)
		err = run_syscall(tid, nr);
	if (!err)
		err = arch_get_regs(tid, &r);
	if (!err && arch_regs_ip(&r) != at + arch_syscall_insn_len) {
		log_err("tid %d: injected syscall %ld stopped at 0x%lx, not after 0x%lx",
			tid, nr, arch_regs_ip(&r), at);
		err = -EFAULT;
	}
	if (arch_set_regs(tid, final) && !err)
		err = -EIO;
	if (!err)
		*ret = arch_regs_retval(&r);
	return err;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

int puppet_syscall_n(struct puppet *p, pid_t tid, long *ret, long nr, const unsigned long a[6])
{
	struct arch_regs saved;
	uint64_t t0 = mono_ns();
	int err;

	err = arch_get_regs(tid, &saved);
	if (!err)
		err = inject(tid, p->tramp, &saved, ret, nr, a, &saved);
	p->n_calls++;
	p->ns_calls += mono_ns() - t0;
	return err;
}

int puppet_syscall(struct puppet *p, pid_t tid, long *ret, long nr,
		   unsigned long a0, unsigned long a1, unsigned long a2,
		   unsigned long a3, unsigned long a4, unsigned long a5)
{
	const unsigned long a[6] = { a0, a1, a2, a3, a4, a5 };

	return puppet_syscall_n(p, tid, ret, nr, a);
}

/*
 * Run one syscall and stop at its exit, without executing anything after it
 * (the trampoline itself may be gone then).  Then install @final registers
 * (or the saved ones when NULL).
 */
int puppet_syscall_last(struct puppet *p, pid_t tid, long *ret, long nr,
			const unsigned long a[6], const struct arch_regs *final)
{
	struct arch_regs saved;
	int err;

	err = arch_get_regs(tid, &saved);
	if (err)
		return err;
	return inject(tid, p->tramp, &saved, ret, nr, a, final ? final : &saved);
}

int puppet_syscall_patched(pid_t pid, pid_t tid, unsigned long at, unsigned long orig,
			   long *ret, long nr, const unsigned long a[6],
			   const struct arch_regs *final)
{
	struct arch_regs saved;
	unsigned long code;
	int err;

	memcpy(&code, arch_puppet_code, sizeof(code));
	err = arch_get_regs(tid, &saved);
	if (err)
		return err;
	/* journal.h: what `kup recover` undoes if we die from here on */
	if (journal_add("patch %d %d %llu %lx %lx", pid, tid, journal_start_time(pid, tid), at, orig))
		return -EIO;
	if (ptrace(PTRACE_POKEDATA, tid, at, code))
		return log_errno(errno, "pid %d: cannot patch code at 0x%lx", pid, at);
	/* the thread is on @final before the word goes back: never on the
	 * original code with registers of ours */
	err = inject(tid, at, &saved, ret, nr, a, final ? final : &saved);
	if (ptrace(PTRACE_POKEDATA, tid, at, orig)) {
		if (!err)
			err = log_errno(errno, "pid %d: cannot restore code at 0x%lx", pid, at);
	} else {
		journal_add("unpatch %d %lx", pid, at);
	}
	return err;
}

/*
 * Where the area's mmap and munmap run: a word of code that no thread
 * executes, so that a thread parked there (arch_puppet_code) when kup dies
 * is told from the tree's own threads, and the tree's other threads never
 * run into the patch: the program's entry point (AT_ENTRY, run once at its
 * start), when it is in an executable mapping and not where @ip is.  Else
 * @ip, the thread's own instruction.
 */
unsigned long puppet_patch_site(pid_t pid, unsigned long ip)
{
	unsigned long v[2], entry = 0, s, e;
	char path[64], line[512], perms[8];
	bool ok = false;
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/auxv", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ip;
	while (read(fd, v, sizeof(v)) == sizeof(v) && v[0] != AT_NULL)
		if (v[0] == AT_ENTRY)
			entry = v[1];
	close(fd);
	if (!entry)
		return ip;
	if (ip + 32 > entry && ip < entry + 32)
		entry += 64;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return ip;
	while (!ok && fgets(line, sizeof(line), f))
		ok = sscanf(line, "%lx-%lx %7s", &s, &e, perms) == 3 && s <= entry &&
		     entry + sizeof(long) <= e && perms[2] == 'x';
	fclose(f);
	return ok ? entry : ip;
}

int puppet_install(struct puppet *p, pid_t pid, pid_t tid)
{
	struct arch_regs saved;
	unsigned char code[PUPPET_CODE];
	unsigned long a[6] = { 0, PUPPET_AREA, PROT_READ | PROT_WRITE | PROT_EXEC,
			       MAP_PRIVATE | MAP_ANONYMOUS, (unsigned long)-1, 0 };
	unsigned long at;
	long ret;
	int err;

	memset(p, 0, sizeof(*p));
	p->pid = pid;
	err = arch_get_regs(tid, &saved);
	if (err)
		return err;
	at = puppet_patch_site(pid, arch_regs_ip(&saved));
	errno = 0;
	p->patch_orig = ptrace(PTRACE_PEEKDATA, tid, at, 0);
	if (errno)
		return log_errno(errno, "pid %d: cannot read code at 0x%lx", pid, at);
	p->patch_at = at;
	if (journal_add("tramp %d %llu 0 %lx", pid, journal_start_time(pid, pid), PUPPET_AREA))
		return -EIO;
	err = puppet_syscall_patched(pid, tid, at, p->patch_orig, &ret, __NR_mmap, a, &saved);
	if (err)
		return err;
	if (ret < 0 && ret > -4096)
		return log_errno(-ret, "pid %d: cannot map the puppet area", pid);

	p->tramp = ret;
	if (journal_add("tramp %d %llu %lx %lx", pid, journal_start_time(pid, pid), p->tramp,
			PUPPET_AREA))
		return -EIO;
	p->scratch = p->tramp + PUPPET_CODE;
	p->scratch_len = PUPPET_AREA - PUPPET_CODE;
	p->own_area = true;
	memset(code, 0xcc, sizeof(code));
	memcpy(code, arch_puppet_code, arch_puppet_code_len);
	return puppet_write(pid, p->tramp, code, sizeof(code));
}

/* The area goes the way it came (puppet_syscall_patched): a munmap run
 * from the trampoline itself would return into nothing if we died then. */
int puppet_uninstall(struct puppet *p, pid_t tid, const struct arch_regs *final)
{
	const unsigned long a[6] = { p->tramp, PUPPET_AREA };
	long ret;
	int err;

	if (!p->own_area || !p->tramp)
		return 0;
	err = puppet_syscall_patched(p->pid, tid, p->patch_at, p->patch_orig, &ret, __NR_munmap,
				     a, final);
	if (!err && ret)
		err = log_errno(-ret, "pid %d: cannot unmap the puppet area", p->pid);
	if (!err)
		journal_add("untramp %d %lx", p->pid, p->tramp);
	p->tramp = 0;
	return err;
}

unsigned long puppet_area_size(void) { return PUPPET_AREA; }
