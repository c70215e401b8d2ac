/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The CPU-specific part of kup, behind one header.  Each architecture has its
 * folder arch/<arch>/ providing these functions; nothing outside arch/ knows
 * register layouts or instruction encodings.
 */
#ifndef KUP_ARCH_H
#define KUP_ARCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "arch-regs.h"		/* struct arch_regs for this architecture */

/*
 * The puppet's code, one machine word: the syscall instruction the tracer
 * injects syscalls through (it catches their exit with PTRACE_SYSCALL),
 * followed by a loop that parks the thread in pause() should it run on
 * without a tracer (a tracer killed during the syscall): with every signal
 * blocked it sleeps there harmlessly until `kup recover` takes it back.
 */
extern const unsigned char arch_puppet_code[];
extern const size_t arch_puppet_code_len;
/* Length of the syscall instruction (ip after it = code + this). */
extern const size_t arch_syscall_insn_len;

int arch_get_regs(pid_t tid, struct arch_regs *r);
int arch_set_regs(pid_t tid, const struct arch_regs *r);

/* Extended FPU state: *buf malloc'd, *len bytes; set from the same blob. */
int arch_get_fpstate(pid_t tid, void **buf, size_t *len);
int arch_set_fpstate(pid_t tid, const void *buf, size_t len);

/* Prepare @r to run syscall @nr(args) at @ip with no restart fixups. */
void arch_regs_syscall(struct arch_regs *r, unsigned long ip, long nr,
		       const unsigned long args[6]);
/* Point @r at the parking loop of the puppet's code at @code (a thread
 * resumed from them sleeps there), with no restart fixups. */
void arch_regs_park(struct arch_regs *r, unsigned long code);
long arch_regs_retval(const struct arch_regs *r);
unsigned long arch_regs_ip(const struct arch_regs *r);
unsigned long arch_regs_sp(const struct arch_regs *r);
void arch_regs_set_sp(struct arch_regs *r, unsigned long sp);

/*
 * A task stopped while inside a syscall reports the syscall's -ERESTART*
 * value.  Make the registers re-execute the syscall when the task resumes
 * from them on a fresh kernel (restart_block state does not survive).
 * Returns 1 if a fixup was applied.
 */
int arch_regs_fixup_restart(struct arch_regs *r);
/* Was the task stopped inside a syscall? */
int arch_regs_in_syscall(const struct arch_regs *r);

/* Serialised form kept in images. */
size_t arch_regs_size(void);

/*
 * For kup show, which decodes images without knowing register layouts: call
 * @field for each named word of serialised registers (@len bytes, as
 * arch_regs_size()) or of an FPU state blob (as arch_get_fpstate() gives
 * it).  -EINVAL when @len is not a size this architecture writes (nothing
 * called).  Values read at any alignment.
 */
typedef void arch_show_fn(void *arg, const char *name, uint64_t val);
int arch_show_regs(const void *buf, size_t len, arch_show_fn *field, void *arg);
int arch_show_fpstate(const void *buf, size_t len, arch_show_fn *field, void *arg);

/* Write at @buf a jump to absolute @target; returns bytes used (<= 16). */
size_t arch_encode_jump(unsigned char *buf, uint64_t target);

#endif
