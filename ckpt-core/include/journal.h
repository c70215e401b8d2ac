/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The undo journal (docs/design.md, "When kup dies"): before kup changes
 * anything in a process tree or on the host that the kernel does not undo
 * by itself when kup dies (a blocked signal mask, the trampoline mapping, a
 * patched instruction, a TCP socket in repair mode, an nftables table, a
 * half-written image, a loaded kernel), it appends one line saying how to
 * undo it to its journal, /run/kup/journal/<op>-<pid>-<start>.  An operation
 * that ends cleanly removes its journal; the journal of a kup that died is
 * replayed by the next kup command or by `kup recover` (ckpt_recover()).
 *
 * One journal per process at a time; every call is a no-op when none is
 * open, so that the engine's code paths are the same with or without one.
 */
#ifndef KUP_JOURNAL_H
#define KUP_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define JOURNAL_DIR	"/run/kup/journal"

/* Open this process's journal for operation @op ("dump", "restore",
 * "switch").  Fails (logged) when it cannot be written: the caller then
 * refuses to start, since a death could not be undone. */
int journal_begin(const char *op);
/* The operation ended cleanly (or its own failure path undid everything):
 * the journal goes. */
void journal_end(void);
/* A forked process that is no part of the operation (the lazy pages
 * server) lets go of its copy of the journal, leaving the file. */
void journal_forget(void);
bool journal_active(void);

/* Append one record (a line; format below).  0 when none is open; a failed
 * write is logged and returned: do not make the change it describes. */
int journal_add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A "lock" record for table @name in the network namespace @nsfd (-1:
 * ours), which task @pid (0: none) is in. */
int journal_lock(const char *name, int nsfd, pid_t pid);

/* A "regs" record: the registers of frozen thread @tid before anything
 * was injected into it. */
struct arch_regs;
int journal_regs(pid_t pid, pid_t tid, const struct arch_regs *r);

/* Start time of @tid (field 22 of /proc/PID/task/TID/stat), 0 if gone. */
unsigned long long journal_start_time(pid_t pid, pid_t tid);

/*
 * Records (one per line, fields separated by one space, numbers decimal but
 * masks, addresses and words in hex without 0x):
 *   store dir|ppp PATH          the store written (PATH: rest of the line)
 *   partial PATH                a directory holding only this operation's
 *                               unfinished images (the dir store's staging
 *                               directory, DIR/.kup-new-XXXXXX)
 *   leave-running               the dump lets the tree go on
 *   mask PID TID START MASK     TID's signal mask before kup blocked it
 *   regs PID TID START HEX      TID's registers before anything was injected
 *                               (arch_regs_size() bytes in hex)
 *   stopped PID                 PID was in a job-control stop
 *   patch PID TID START IP ORIG the word at IP is patched with
 *                               arch_puppet_code (ORIG before): TID may be
 *                               parked there
 *   unpatch PID IP              ... and put back
 *   tramp PID START ADDR LEN    the trampoline area is (maybe) mapped
 *   untramp PID ADDR            ... and gone
 *   sk PID START FD INO REUSE   the socket is put in TCP repair mode
 *   lock NAME NSDEV NSINO PID   nftables table NAME in that network ns
 *   task PID START              a task created by a restore
 *   committing                  the store's commit begins (the dir store's
 *                               inventory.img, once moved out of the
 *                               staging directory, is this dump's)
 *   committed                   the dump's images are complete
 *   complete                    the restored tree is complete, its
 *                               connections live (masks and stopped
 *                               tasks journaled before it)
 *   running                     the restored tree was let go
 *   kexec-loaded                a switch loaded a kernel
 *   kexec-exec                  ... and is executing it
 *   dumping ROOT START STORE    a switch dumps ROOT into STORE (ppp)
 *   tcp                         the switch was given --tcp-established
 */

#endif
