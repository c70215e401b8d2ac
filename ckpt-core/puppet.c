// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The puppet: running syscalls inside a stopped task.
 *
 * The tracer points the thread's registers at a "syscall; int3" trampoline
 * mapped in the target, lets it run, and collects the result at the trap.
 * During dump the trampoline is mapped by one bootstrap syscall executed
 * from a temporarily patched instruction at the thread's current ip.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
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
	return puppet_wait_stop(tid, &st);
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

/* Resume @tid and wait for the trap that ends an injected syscall. */
static int run_to_trap(pid_t tid)
{
	int st, ret;

	if (ptrace(PTRACE_CONT, tid, 0, 0))
		return log_errno(errno, "tid %d: cannot resume for a syscall", tid);
	for (;;) {
		ret = puppet_wait_stop(tid, &st);
		if (ret)
			return ret;
		if (WSTOPSIG(st) == SIGTRAP && !(st >> 16))
			return 0;
		if (st >> 16) {
			/* clone events and the like: keep going to the trap */
			if (ptrace(PTRACE_CONT, tid, 0, 0))
				return log_errno(errno, "tid %d: cannot resume", tid);
			continue;
		}
		/* A signal arrived (only unblockable ones can): pass it on later. */
		log_err("tid %d: signal %d during an injected syscall", tid, WSTOPSIG(st));
		return -EINTR;
	}
}

int puppet_syscall_n(struct puppet *p, pid_t tid, long *ret, long nr, const unsigned long a[6])
{
	struct arch_regs saved, r;
	int err;

	err = arch_get_regs(tid, &saved);
	if (err)
		return err;
	r = saved;
	arch_regs_syscall(&r, p->tramp, nr, a);
	err = arch_set_regs(tid, &r);
	if (!err)
		err = run_to_trap(tid);
	if (!err)
		err = arch_get_regs(tid, &r);
	if (!err && arch_regs_ip(&r) != p->tramp + arch_syscall_trap_len) {
		log_err("tid %d: injected syscall %ld stopped at 0x%lx, not at the trampoline",
			tid, nr, arch_regs_ip(&r));
		err = -EFAULT;
	}
	if (arch_set_regs(tid, &saved) && !err)
		err = -EIO;
	if (!err)
		*ret = arch_regs_retval(&r);
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
	struct arch_regs saved, r;
	int err, st, stops = 0;

	err = arch_get_regs(tid, &saved);
	if (err)
		return err;
	r = saved;
	arch_regs_syscall(&r, p->tramp, nr, a);
	err = arch_set_regs(tid, &r);
	if (err)
		return err;
	while (stops < 2) {
		if (ptrace(PTRACE_SYSCALL, tid, 0, 0))
			return log_errno(errno, "tid %d: cannot step syscall %ld", tid, nr);
		err = puppet_wait_stop(tid, &st);
		if (err)
			return err;
		if (WSTOPSIG(st) == (SIGTRAP | 0x80))
			stops++;
		else if (!(st >> 16)) {
			log_err("tid %d: signal %d while stepping syscall %ld", tid, WSTOPSIG(st), nr);
			return -EINTR;
		}
	}
	err = arch_get_regs(tid, &r);
	if (err)
		return err;
	*ret = arch_regs_retval(&r);
	return arch_set_regs(tid, final ? final : &saved);
}

int puppet_install(struct puppet *p, pid_t pid, pid_t tid)
{
	struct arch_regs saved, r;
	unsigned char code[PUPPET_CODE];
	unsigned long a[6] = { 0, PUPPET_AREA, PROT_READ | PROT_WRITE | PROT_EXEC,
			       MAP_PRIVATE | MAP_ANONYMOUS, (unsigned long)-1, 0 };
	unsigned long ip, orig, patched;
	int err;

	memset(p, 0, sizeof(*p));
	p->pid = pid;
	err = arch_get_regs(tid, &saved);
	if (err)
		return err;
	ip = arch_regs_ip(&saved);
	errno = 0;
	orig = ptrace(PTRACE_PEEKDATA, tid, ip, 0);
	if (errno)
		return log_errno(errno, "pid %d: cannot read code at 0x%lx", pid, ip);
	patched = orig;
	memcpy(&patched, arch_syscall_trap, arch_syscall_trap_len);
	/* journal.h: what `kup recover` undoes if we die from here on */
	if (journal_add("patch %d %d %llu %lx %lx", pid, tid, journal_start_time(pid, tid), ip, orig) ||
	    journal_add("tramp %d %llu 0 %lx", pid, journal_start_time(pid, pid), PUPPET_AREA))
		return -EIO;
	if (ptrace(PTRACE_POKEDATA, tid, ip, patched))
		return log_errno(errno, "pid %d: cannot patch code at 0x%lx", pid, ip);

	r = saved;
	arch_regs_syscall(&r, ip, __NR_mmap, a);
	err = arch_set_regs(tid, &r);
	if (!err)
		err = run_to_trap(tid);
	if (!err)
		err = arch_get_regs(tid, &r);

	/* put the code back whatever happened */
	if (ptrace(PTRACE_POKEDATA, tid, ip, orig)) {
		if (!err)
			err = log_errno(errno, "pid %d: cannot restore code at 0x%lx", pid, ip);
	} else {
		journal_add("unpatch %d %lx", pid, ip);
	}
	if (arch_set_regs(tid, &saved) && !err)
		err = -EIO;
	if (err)
		return err;
	if ((long)arch_regs_retval(&r) < 0 && (long)arch_regs_retval(&r) > -4096)
		return log_errno(-arch_regs_retval(&r), "pid %d: cannot map the puppet area", pid);

	p->tramp = arch_regs_retval(&r);
	if (journal_add("tramp %d %llu %lx %lx", pid, journal_start_time(pid, pid), p->tramp,
			PUPPET_AREA))
		return -EIO;
	p->scratch = p->tramp + PUPPET_CODE;
	p->scratch_len = PUPPET_AREA - PUPPET_CODE;
	p->own_area = true;
	memset(code, 0xcc, sizeof(code));
	memcpy(code, arch_syscall_trap, arch_syscall_trap_len);
	return puppet_write(pid, p->tramp, code, sizeof(code));
}

int puppet_uninstall(struct puppet *p, pid_t tid)
{
	const unsigned long a[6] = { p->tramp, PUPPET_AREA };
	long ret;
	int err;

	if (!p->own_area || !p->tramp)
		return 0;
	err = puppet_syscall_last(p, tid, &ret, __NR_munmap, a, NULL);
	if (!err && ret)
		err = log_errno(-ret, "pid %d: cannot unmap the puppet area", p->pid);
	if (!err)
		journal_add("untramp %d %lx", p->pid, p->tramp);
	p->tramp = 0;
	return err;
}

unsigned long puppet_area_size(void) { return PUPPET_AREA; }
