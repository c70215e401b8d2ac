// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * x86_64 registers, FPU/xstate, syscall trampolines.
 */
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <asm/unistd.h>

#include "arch.h"
#include "log.h"

/* 0: syscall; 2: xor %eax,%eax; 4: mov $__NR_pause,%al; 6: jmp 0 */
const unsigned char arch_puppet_code[] = { 0x0f, 0x05, 0x31, 0xc0, 0xb0, __NR_pause, 0xeb, 0xf8 };
const size_t arch_puppet_code_len = sizeof(arch_puppet_code);
const size_t arch_syscall_insn_len = 2;
_Static_assert(sizeof(arch_puppet_code) == sizeof(long), "the puppet's code is one word");

#define ERESTARTSYS		512
#define ERESTARTNOINTR		513
#define ERESTARTNOHAND		514
#define ERESTART_RESTARTBLOCK	516

int arch_get_regs(pid_t tid, struct arch_regs *r)
{
	struct iovec iov = { &r->r, sizeof(r->r) };

	if (ptrace(PTRACE_GETREGSET, tid, NT_PRSTATUS, &iov))
		return log_errno(errno, "tid %d: cannot read registers", tid);
	return 0;
}

int arch_set_regs(pid_t tid, const struct arch_regs *r)
{
	struct iovec iov = { (void *)&r->r, sizeof(r->r) };

	if (ptrace(PTRACE_SETREGSET, tid, NT_PRSTATUS, &iov))
		return log_errno(errno, "tid %d: cannot set registers", tid);
	return 0;
}

#define XSTATE_MAX (64 * 1024)

int arch_get_fpstate(pid_t tid, void **buf, size_t *len)
{
	struct iovec iov;
	void *p = malloc(XSTATE_MAX);

	if (!p)
		return -ENOMEM;
	iov.iov_base = p;
	iov.iov_len = XSTATE_MAX;
	if (ptrace(PTRACE_GETREGSET, tid, NT_X86_XSTATE, &iov)) {
		/* no XSAVE: the legacy FXSAVE area */
		iov.iov_len = 512;
		if (ptrace(PTRACE_GETREGSET, tid, NT_PRFPREG, &iov)) {
			free(p);
			return log_errno(errno, "tid %d: cannot read FPU state", tid);
		}
		/* mark as FXSAVE by length 512 */
	}
	*buf = p;
	*len = iov.iov_len;
	return 0;
}

int arch_set_fpstate(pid_t tid, const void *buf, size_t len)
{
	struct iovec iov = { (void *)buf, len };
	int type = len == 512 ? NT_PRFPREG : NT_X86_XSTATE;

	if (ptrace(PTRACE_SETREGSET, tid, type, &iov)) {
		/* A different CPU may refuse some xfeatures: keep the SSE part. */
		if (type == NT_X86_XSTATE && len >= 512) {
			iov.iov_len = 512;
			if (!ptrace(PTRACE_SETREGSET, tid, NT_PRFPREG, &iov)) {
				log_warn("tid %d: extended FPU state refused, restored the x87/SSE part only", tid);
				return 0;
			}
		}
		return log_errno(errno, "tid %d: cannot set FPU state (%zu bytes)", tid, len);
	}
	return 0;
}

void arch_regs_syscall(struct arch_regs *r, unsigned long ip, long nr,
		       const unsigned long a[6])
{
	r->r.rip = ip;
	r->r.rax = nr;
	r->r.orig_rax = -1;	/* no syscall-restart fixups on resume */
	r->r.rdi = a[0];
	r->r.rsi = a[1];
	r->r.rdx = a[2];
	r->r.r10 = a[3];
	r->r.r8 = a[4];
	r->r.r9 = a[5];
}

void arch_regs_park(struct arch_regs *r, unsigned long code)
{
	r->r.rip = code + 2;	/* the xor after the syscall */
	r->r.orig_rax = -1;
}

long arch_regs_retval(const struct arch_regs *r) { return (long)r->r.rax; }
unsigned long arch_regs_ip(const struct arch_regs *r) { return r->r.rip; }
unsigned long arch_regs_sp(const struct arch_regs *r) { return r->r.rsp; }
void arch_regs_set_sp(struct arch_regs *r, unsigned long sp) { r->r.rsp = sp; }

int arch_regs_in_syscall(const struct arch_regs *r)
{
	return (long)r->r.orig_rax >= 0;
}

int arch_regs_fixup_restart(struct arch_regs *r)
{
	long ret = (long)r->r.rax;

	if ((long)r->r.orig_rax < 0)
		return 0;
	switch (-ret) {
	case ERESTARTSYS:
	case ERESTARTNOINTR:
	case ERESTARTNOHAND:
	case ERESTART_RESTARTBLOCK:
		/*
		 * Re-execute the syscall with its original arguments.  For
		 * restart_syscall() users (nanosleep, poll, futex with a
		 * timeout) the remaining-time state lived in the old kernel:
		 * the call starts over with its original timeout.
		 */
		r->r.rax = r->r.orig_rax;
		r->r.rip -= 2;
		r->r.orig_rax = -1;
		return 1;
	}
	r->r.orig_rax = -1;
	return 0;
}

size_t arch_regs_size(void) { return sizeof(struct user_regs_struct); }

/* struct user_regs_struct, in order */
static const char *const regs_names[] = {
	"r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8",
	"rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags",
	"rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs",
};

static uint64_t get_le(const unsigned char *p, size_t n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | p[n];
	return v;
}

int arch_show_regs(const void *buf, size_t len, arch_show_fn *field, void *arg)
{
	_Static_assert(sizeof(regs_names) / sizeof(regs_names[0]) * 8 ==
		       sizeof(struct user_regs_struct), "user_regs_struct layout");
	if (len != sizeof(struct user_regs_struct))
		return -EINVAL;
	for (size_t i = 0; i < len / 8; i++)
		field(arg, regs_names[i], get_le((const unsigned char *)buf + i * 8, 8));
	return 0;
}

/*
 * The FXSAVE area (512 bytes), then, for an XSAVE area, its header: which
 * state components it holds.
 */
int arch_show_fpstate(const void *buf, size_t len, arch_show_fn *field, void *arg)
{
	static const struct { const char *name; unsigned off, size; } fx[] = {
		{ "fcw", 0, 2 }, { "fsw", 2, 2 }, { "ftw", 4, 1 }, { "fop", 6, 2 },
		{ "fip", 8, 8 }, { "fdp", 16, 8 }, { "mxcsr", 24, 4 }, { "mxcsr_mask", 28, 4 },
	};
	const unsigned char *p = buf;

	if (len < 512 || len > XSTATE_MAX)
		return -EINVAL;
	field(arg, "size", len);
	for (size_t i = 0; i < sizeof(fx) / sizeof(fx[0]); i++)
		field(arg, fx[i].name, get_le(p + fx[i].off, fx[i].size));
	if (len >= 512 + 64) {
		field(arg, "xstate_bv", get_le(p + 512, 8));
		field(arg, "xcomp_bv", get_le(p + 520, 8));
	}
	return 0;
}

size_t arch_encode_jump(unsigned char *buf, uint64_t target)
{
	/* movabs $target, %rax ; jmp *%rax  (rax is not an argument register) */
	buf[0] = 0x48;
	buf[1] = 0xb8;
	memcpy(buf + 2, &target, 8);
	buf[10] = 0xff;
	buf[11] = 0xe0;
	return 12;
}
