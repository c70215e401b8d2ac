/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The kup driver: one file per subcommand (kup/cmd-*.c), listed in one
 * table of kup.c (as git's builtins are), with its subcommands (kup ppp
 * format, kup kexec load) in tables of the same kind.  The dispatcher
 * (kup_dispatch) sets the log prefix and argv[0] to "kup CMD [SUB]" (so
 * getopt's messages carry it too), refuses a command that needs root before
 * anything else (but its --help), replays stale journals and runs it.
 */
#ifndef KUP_KUP_H
#define KUP_KUP_H

#include <getopt.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "log.h"

struct kup_command {
	const char *name;
	int (*fn)(int argc, char **argv);	/* argv[0] is "kup NAME" */
	const char *summary;			/* one line for the parent's --help */
	unsigned int needs;			/* KUP_NEED_*, checked before fn runs */
	const struct kup_command *sub;		/* or subcommands (ending with {}) */
	void (*usage)(FILE *f);			/* ... and the parent's --help */
	bool no_recover;			/* no kup_recover_stale() first */
};

/* The commands (kup/cmd-*.c) */
int cmd_check(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_hold(int argc, char **argv);
int cmd_recover(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_switch(int argc, char **argv);
int cmd_switch_dump(int argc, char **argv);
extern const struct kup_command kup_ppp_commands[], kup_kexec_commands[];
void ppp_usage(FILE *f);
void kexec_usage(FILE *f);

/*
 * A usage mistake: "kup CMD: error: MESSAGE" and the hint to --help, once
 * each; returns KUP_EXIT_USAGE.  @fmt NULL: only the hint (getopt has said
 * what is wrong).
 */
int kup_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Exit codes shared by every subcommand (documented in kup(8)). */
enum {
	KUP_EXIT_OK = 0,
	KUP_EXIT_FAIL = 1,	/* the operation failed; nothing was lost */
	KUP_EXIT_USAGE = 2,	/* bad command line */
};

/*
 * Signals (kup/signals.c).  kup_catch_abort: SIGINT, SIGTERM and SIGHUP
 * request an abort of the engine (those ignored when kup started stay
 * ignored, but SIGTERM), SIGPIPE is ignored; kup_release_abort puts the
 * defaults back.  kup_start_worker forks the worker that does the command's
 * work and returns 0 in it (with kup_catch_abort done, in a process group of
 * its own, SIGTERM when the command dies); the command itself forwards those
 * signals to it and exits with its status, never returning.
 * kup_command_died: in the worker, the command is gone.
 * An interrupted command exits with 128 + the signal's number.
 */
void kup_catch_abort(void);
void kup_release_abort(void);
int kup_start_worker(void);
bool kup_command_died(void);
const char *kup_signame(int sig);
#define KUP_EXIT_SIGNAL(sig)	(128 + (sig))

/* Replay the undo journals of kup processes that died (kup/cmd-recover.c);
 * every command does it first.  Quiet but for one warning per journal. */
void kup_recover_stale(void);

/*
 * Commands that need root say so before doing anything: kup_need_root
 * checks the effective uid and the capabilities of @need (KUP_NEED_*), and
 * says "CMD: must be run as root (...)" otherwise (-EPERM).  The dispatcher
 * does it with the command's .needs; a command whose needs depend on its
 * options (kup dump --ppp) checks the rest itself.
 */
#define KUP_NEED_CKPT	1u	/* freeze, ptrace, clone3 set_tid */
#define KUP_NEED_STORE	2u	/* write a store or its device */
#define KUP_NEED_BOOT	4u	/* kexec */
int kup_need_root(const char *cmd, unsigned int need);
bool kup_wants_help(int argc, char **argv);	/* -h or --help among the arguments */

/* Parse a size such as 256M, 1G, 4096; returns 0 or -EINVAL. */
int kup_parse_size(const char *s, unsigned long long *out);

/* Image stores (kup/store.c).  "auto" (or NULL) finds the store device. */
struct img_store;
#define KUP_STORE_APPEND	2	/* @write: change the committed checkpoint */
#define KUP_STORE_STREAM	4	/* @write 0 | this: page images read in pieces, each
					   extent checked as read (kup restore --lazy) */
int kup_store_open_ppp(const char *given, int write, struct img_store **out);
int kup_store_remove_prefix(struct img_store *wr, const char *prefix);
int kup_store_scrub_ppp(const char *given, uint64_t *wiped);
/* A shared lock on store @given through an open file of its own (a kup-lazy
 * reading it after its restorer closed its copy): the fd, or -errno. */
int kup_store_hold_shared(const char *given);
bool kup_store_has_ckpt(const char *given);
int kup_ppp_locate(const char *given, char *buf, size_t len, const char **path);
void kup_ppp_logger(int level, const char *msg);
void kup_ppp_quiet_logger(int level, const char *msg);	/* says nothing */

/* Run argv (PATH searched), return its stdout (malloc'd, NUL-terminated;
 * NULL if it could not run) and its wait status in *status (-1: unknown). */
char *kup_capture(char *const argv[], int *status);

/* Does @initrd carry kup's initramfs hook or dracut module (initramfs/: kup
 * hold at boot)?  Asks initramfs-tools' lsinitramfs, else dracut's lsinitrd.
 * 1 yes, 0 no, -1 cannot tell. */
int kup_initrd_has_hook(const char *initrd);
bool kup_initrd_older(const char *initrd, char *when, size_t len);

/* systemd services (kup/unit.c).  kup_unit_main_pid: the main pid of the
 * running service @unit, checked to be the root of every process of the
 * unit's cgroup (errors logged). */
bool kup_unit_name_ok(const char *unit);
pid_t kup_ppid_of(pid_t pid);		/* from /proc/PID/stat; 0 if gone */
int kup_unit_main_pid(const char *unit, pid_t *root);
#define KUP_UNIT_FILE	"/run/kup/unit"	/* written at boot by kup hold: the units to restore */
void kup_unit_forget(const char *unit);	/* its line of KUP_UNIT_FILE goes */
pid_t kup_unit_lazy_pid(const char *unit);	/* its kup-lazy, 0: none */

/*
 * Several trees in one store (kup/parts.c, docs/ppp-format.md "Several
 * trees").  kup_dump_trees: dump the trees into @tmpl->store (open for
 * writing) as one commit: all are frozen until it, or none is dumped.
 * kup_parts_read: parts.img of @st, validated; *out NULL (and 0) for a
 * store of one tree.  kup_part_store: the view of part @pe of @base (close
 * it before @base).  kup_parts_lock: one restore of a part at a time (an fd
 * to close).  kup_parts_done: the part's tree runs (its blobs go) or its
 * restore @failed (it is kept, marked); the last one restored scrubs the
 * store, unless failed ones are left (they stay for another try).
 * kup_trees_check: before anything changes, the trees may be kept together
 * (they do not overlap, share no pipe, socket or shared memory).
 */
#define KUP_MAX_TREES	64
/* --pre-dump without a number: at most this many rounds (docs/kup.8) */
#define KUP_PRE_DUMP_ROUNDS	4
int kup_parse_pre_dump(const char *arg);
struct kup_tree {
	pid_t pid;
	const char *unit;	/* or NULL: a tree given by its root (-t) */
};
struct ckpt_dump_opts;
struct ckpt_stats;
struct PartsImage;
struct PartEntry;
int kup_dump_trees(const struct ckpt_dump_opts *tmpl, const struct kup_tree *t, int n,
		   struct ckpt_stats *stats);
int kup_parts_read(struct img_store *st, struct PartsImage **out);
struct img_store *kup_part_store(struct img_store *base, const struct PartEntry *pe);
int kup_parts_lock(void);
int kup_parts_done(const char *given, const char *prefix, bool failed);
int kup_parts_retry(const char *given);	/* clear every part's failed mark; how many */
/* A store of one tree: its checkpoint failed to restore on this boot (its
 * unit started cold: a later boot must not restore it), or may be tried
 * again (@failed false: kup switch --from-store).  1: changed, 0: nothing
 * to do (a store of several trees: kup_parts_done / kup_parts_retry). */
int kup_store_mark_failed(const char *given, bool failed);
/* The checkpoint in @st (a store of one tree) is so marked: said, with
 * @what (what is not done for it). */
bool kup_ckpt_marked_failed(struct img_store *st, const char *what);
/* What the dump of tree @t with the options of @tmpl (NULL: the defaults)
 * would refuse, told while it runs (ckpt_dump_check): 0 or -errno, the
 * refusal logged in the dump's words.  Nothing is stopped or changed. */
int kup_tree_check(const struct kup_tree *t, const struct ckpt_dump_opts *tmpl);
/* Trees kept at once: none inside another, nothing shared between them. */
int kup_trees_check(const struct kup_tree *t, int n);
const char *kup_tree_name(const struct kup_tree *t, char *buf, size_t len);

/*
 * The configuration file (kup/config.c, docs/kup.8 CONFIGURATION):
 * kup_config_load reads @path, or else $KUP_CONFIG, or else
 * KUP_CONFIG_FILE (whose absence is no error); errors name the file and
 * line.  Unset values: NULL store, -1 for the numbers.
 */
#define KUP_CONFIG_FILE	"/etc/default/kup"
struct kup_config {
	char path[4096];
	bool loaded;		/* the file exists and was read */
	char *units[KUP_MAX_TREES];
	int nunits;
	char *store;
	int tcp;		/* KUP_TCP_ESTABLISHED: 0, 1, -1 unset */
	int ext_peers_close;	/* KUP_EXTERNAL_PEERS: 1 close, 0 refuse, -1 unset */
	long hold_timeout;	/* KUP_HOLD_TIMEOUT in seconds, -1 unset */
	int pre_dump;		/* KUP_PRE_DUMP: rounds, 0 no, -1 unset */
	int lazy;		/* KUP_RESTORE_MEMORY: 1 lazy, 0 eager, -1 unset */
	long panic;		/* KUP_PANIC in seconds, -1 unset */
};
int kup_config_load(const char *path, struct kup_config *c);
void kup_config_free(struct kup_config *c);

/* The PID holder (kup/cmd-hold.c): make a running `kup hold` let go of the
 * PIDs it keeps for a restore; 0 also when none runs. */
int kup_hold_release(const char *part);	/* part: "pN/" of a store of several trees, NULL: all */

/*
 * A clean switch (kup/switch-shutdown.c): with systemd as init, kup switch
 * lets the system go down as `systemctl kexec` takes it and dumps the kept
 * trees late in that shutdown (kup-switch-dump.service).
 * switch_shutdown: arm it and start the shutdown; 0 once the shutdown has
 * it, negative if it could not (undone: the caller unloads the kernel),
 * -ECANCELED if an abort signal came first.
 */
struct switch_plan {
	const char *kernel;		/* as kup switch was given it */
	char *const *load_argv;		/* `kup kexec load ...` of it */
	char *const *dump_argv;		/* `kup dump ...` of the kept trees */
	size_t nkeep;			/* what is kept: */
	const char *const *units;	/*   the unit, or NULL for a tree, */
	const pid_t *roots;		/*   its root pid, */
	const char *const *names;	/*   its name in messages and the record
					 *   (the unit, or "pid-N") */
};
bool switch_shutdown_possible(void);	/* systemd is init */
int switch_shutdown(const struct switch_plan *plan);
int switch_shutdown_plain(void);	/* `systemctl kexec`, nothing to dump */
/* The plan of a kup switch @owner that died before its shutdown goes. */
void switch_shutdown_disarm_stale(pid_t owner);

/* The record of the last switch, KUP_LAST_SWITCH_FILE ($KUP_LAST_SWITCH if
 * set): begun by the switch, completed by the restore on the new boot. */
#define KUP_LAST_SWITCH_FILE	"/var/lib/kup/last-switch"
struct switch_item {
	char name[128];			/* the unit, or pid-N */
	bool dumped, restored, failed;
	unsigned long long freeze_ns, running_ns;	/* CLOCK_REALTIME */
	/* the restore's phases (0: not recorded, an older kup): the new
	 * boot's kernel started, the restore command began */
	unsigned long long kernel_start_ns, restore_begun_ns;
	/* a lazy restore: every page of its memory was in (0: not recorded) */
	unsigned long long memory_complete_ns;
	char error[256];
};
struct switch_record {
	unsigned long long begun_ns;
	char boot_id[64], booted[64];	/* the switch's boot; the next one */
	char booted_release[128];	/* uname -r of the next boot ("" unknown) */
	char from[128];			/* uname -r of the switch's kernel */
	char kernel[1024];		/* the kernel switched to */
	unsigned long long dump_done_ns;	/* the last dump ended (0: not recorded) */
	/* --pre-dump: the rounds while the services ran (0: none recorded) */
	unsigned long long pre_dump_begun_ns, pre_dump_done_ns;
	/* and what they did (0 rounds: not recorded, an older record): the
	 * rounds, the pages they copied, the pages of the dumps and of those
	 * the ones the frozen pass read (not from the copy) */
	unsigned int pre_dump_rounds;
	unsigned long long pre_dump_pages, dump_pages, frozen_pages_read;
	/* the new boot's kup hold (initramfs) began: the wall clock, and the
	 * time since the kernel's start (CLOCK_BOOTTIME); 0: not recorded */
	unsigned long long hold_ns, hold_since_boot_ns;
	struct switch_item *items;
	size_t n;
};
void switch_record_begin(const char *kernel);
int switch_record_read(struct switch_record *r);
void switch_record_free(struct switch_record *r);
void switch_record_report(void);
void switch_record_dump_done(void);
void switch_record_restored(const char *name, unsigned long long freeze_ns,
			    unsigned long long running_ns, unsigned long long begun_ns,
			    bool other_boot);
void switch_record_restore_failed(const char *name);
/* kup dump run by a switch (KUP_SWITCH_DUMP_ENV set): its pre-dump rounds */
#define KUP_SWITCH_DUMP_ENV	"KUP_SWITCH_DUMP"
void switch_record_pre_dump(unsigned long long begun_ns, unsigned long long done_ns,
			    unsigned int rounds, unsigned long long copied,
			    unsigned long long pages, unsigned long long read);
/* A lazy restore of @name (of another boot): its memory is all in now. */
void switch_record_memory_complete(const char *name);
/* kup hold began (at boot, in the initramfs): noted in /run for the
 * restore to put into the record (the root is not writable yet). */
#define KUP_HOLD_START_FILE	"/run/kup/hold-start"
void switch_hold_started(unsigned long long realtime_ns, unsigned long long since_boot_ns);
/* The next boot came up on @r->from although the switch was to another
 * kernel: the new one did not come up (panic=, the default boot entry). */
bool switch_record_rolled_back(const struct switch_record *r);

/* This boot's id (/proc/sys/kernel/random/boot_id) into @buf ("" and an
 * error when it cannot be read). */
int kup_boot_id(char *buf, size_t len);

/* "2026-12-06 23:50:01.123 UTC" (CLOCK_REALTIME ns); "?" for 0. */
const char *kup_fmt_time(unsigned long long ns, char *buf, size_t len);

#endif
