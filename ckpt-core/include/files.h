/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Files and file descriptors.
 *
 * Dump: every fd of every process is inspected through a local copy taken
 * with pidfd_getfd(); open file descriptions shared between fds or processes
 * (same struct file, found with kcmp) become ONE file_entry with one id.
 * Paths that are not fds (cwd, root, exe, mapped files) become file entries
 * too, so that everything the restore must open is in files.img.
 *
 * Restore: the restorer (master) opens every file entry once, before any
 * restored task exists.  Restored tasks start as forks of the master, so
 * they inherit all of those fds; each then installs its own table with
 * files_install() (dup2 into the dumped numbers, close the rest) and runs
 * files_post_install() for what depends on the final fd numbers (epoll).
 *
 * Each file kind lives in its own files-<kind>.c with dump and restore
 * halves, registered in the table in files.c.  docs/files.md tells what each
 * kind stores and what is refused.
 */
#ifndef KUP_FILES_H
#define KUP_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include "kup-image.pb-c.h"

struct img_store;

struct files_dump;	/* opaque, files.c */
struct files_rst;	/* opaque, files.c */
struct files_opts;

/* What the dump knows of one fd while inspecting it. */
struct fd_info {
	pid_t pid;
	int fd;			/* fd number in the dumped process (-1: not an fd) */
	int lfd;		/* our local copy of the file (pidfd_getfd or open) */
	struct stat st;
	char link[4096];	/* readlink(/proc/pid/fd/N) */
	char *fdinfo;		/* contents of /proc/pid/fdinfo/N (NUL-terminated);
				 * NULL for files_dump_link() entries */
	unsigned int flags;	/* from fdinfo "flags:" (octal), without O_CLOEXEC */
	uint64_t pos;		/* from fdinfo "pos:" */
	struct files_dump *d;	/* the dump this fd belongs to */
	char where[128];	/* "fd 7", "exe", "map_files/7f..-7f.." (messages) */
	bool local;		/* a file in flight: lfd is the only copy there is
				 * (fd is -1); kcmp() compares our own lfd */
};

/* Messages about an fd: log_err(FI_FMT ": cannot ...", FI_ARG(fi)). */
#define FI_FMT		"pid %d %s"
#define FI_ARG(fi)	(fi)->pid, (fi)->where

struct file_kind_ops {
	FileKind kind;
	const char *name;
	/* Does this kind handle @fi?  First match in the table wins. */
	bool (*match)(const struct fd_info *fi);
	/* Fill @fe (id, kind, flags and pos are already set). */
	int (*dump)(const struct fd_info *fi, FileEntry *fe);
	/* dump() only looks (at the fd's stat, link, fdinfo and our copy of
	 * it): it changes nothing in the file or the tree and writes nothing,
	 * so the check of a live tree (files_check_fdtable) runs it as is. */
	bool dump_checks;
	/* Optional, for a kind whose dump() changes what it reads (not
	 * dump_checks): the refusals of dump() that the live fd tells, without
	 * changing it.  It fills @fe and the dump's objects as far as the
	 * kind's dump_end() needs, which the check runs too (files_check_end). */
	int (*check)(const struct fd_info *fi, FileEntry *fe);
	/* Optional: once the whole fd table of @pid is known, for each entry
	 * first seen in that table (@fd is its number there). */
	int (*dump_done)(struct files_dump *d, FileEntry *fe, pid_t pid, int fd,
			 const FdtableEntry *t);
	/* Optional: once per dump, from files_dump_end() (cross-process checks). */
	int (*dump_end)(struct files_dump *d);
	/* Optional: the dump is over, before the tree is let go (@resume: it
	 * goes on running, after --leave-running or a failure) or killed. */
	void (*dump_release)(struct files_dump *d, bool resume);
	/* Optional: kind-specific checks of an untrusted entry; no side effect. */
	int (*validate)(const FileEntry *fe);
	/* Restore: open/create the file in the master; return an fd or -errno. */
	int (*open)(const FileEntry *fe, struct files_rst *fr);
	/* In the restored task, after its fd table is installed (optional). */
	int (*post_install)(const FileEntry *fe, int fd, const FdtableEntry *t,
			    const struct files_rst *fr);
	/* post_install runs before that of the other kinds (it replaces a
	 * placeholder that an epoll of the task may watch). */
	bool post_install_early;
	/* Optional, in the master: every task is complete, the tree is about
	 * to run (files_rst_finish()). */
	int (*rst_finish)(struct files_rst *fr);
	/* Optional: the restore is over, done or failed (files_rst_release());
	 * @img may not be validated. */
	void (*rst_release)(const FilesImage *img, const struct files_opts *o);
};

struct files_opts {
	bool shell_job;		/* ttys are the restorer's terminal */
	bool tcp_established;	/* dump established TCP connections */
	/* dump: a connection to a process outside the tree is kept as one
	 * whose peer has closed (--external-peers=close), not refused */
	bool ext_peers_close;
	const pid_t *tree_pids;	/* dump: every process of the tree */
	/* dump: the tree has a mount namespace of its own, rebuilt at restore
	 * before files are opened: paths are checked in its view */
	bool own_mntns;
	size_t n_tree_pids;
	/* Largest content kept for one deleted file or memfd (bytes);
	 * 0: FILES_CONTENT_MAX_DEFAULT. */
	uint64_t content_max;
	/* The image store: data of deleted files and memfds above content_max
	 * goes to blobs of its own (NULL: refused instead). */
	struct img_store *store;
	/* Restore: the tree was dumped on another boot (a kernel switch), by a
	 * kup dump whose own network namespace had the inode dump_netns (0:
	 * unknown, an older image). */
	bool other_boot;
	uint64_t dump_netns;
};

#define FILES_CONTENT_MAX_DEFAULT	(128ull << 20)
/* Restore-side bounds on untrusted images. */
#define FILES_CONTENT_MAX	(1ull << 32)
#define FILES_FD_MAX		(1 << 20)	/* highest fd number accepted + 1 */
#define FILES_LIST_MAX		(1 << 20)	/* epoll tfds, inotify watches */
#define FILES_EXTENTS_MAX	(1 << 16)	/* data extents of a deleted file */
#define FILES_BLOB_MAX		(1ull << 40)	/* data of a deleted file kept in a blob */

/* --- dump ----------------------------------------------------------------- */
int files_dump_begin(const struct files_opts *o, struct files_dump **out);
/*
 * Inspect every fd of @pid (the process is frozen, we are its tracer).
 * Fails with a message naming pid, fd and what is not supported
 * ("pid 123 fd 7: packet socket not supported").  @t is filled (and left
 * empty on failure); free it with files_free_fdtable().
 */
int files_dump_fdtable(struct files_dump *fd, pid_t pid, FdtableEntry *t);
/*
 * A path-like file of @pid: @link is a /proc/pid relative name such as
 * "cwd", "root", "exe" or "map_files/7f..-7f..".  Gives the file entry id.
 * Entries are shared by (device, inode, need_write): cwd == root gives one id.
 * @need_write: the restore must give an O_RDWR fd (MAP_SHARED + PROT_WRITE);
 * otherwise O_RDONLY (directories: O_RDONLY|O_DIRECTORY).  The fd restored
 * for "exe" suits prctl(PR_SET_MM_MAP)'s exe_fd.
 */
int files_dump_link(struct files_dump *fd, pid_t pid, const char *link,
		    bool need_write, uint32_t *id);
/*
 * Check only (ckpt_dump_check, for kup check and kup switch before anything
 * is loaded): what the dump of @pid's fd table would refuse that can be
 * told while the tree runs, by the dump's own code and in its words: an fd
 * table shared with a process it cannot be restored with, an fd of no kind
 * kup keeps, the refusals of the kinds whose dump only looks (dump_checks)
 * and those of the kinds' check().  Nothing is stopped, changed or written; an fd closed
 * meanwhile is skipped.  @d from files_dump_begin() with tree_pids set.
 */
int files_check_fdtable(struct files_dump *d, pid_t pid);
/* Once every table is checked: the cross-process checks (dump_end) of the
 * kinds with a check(), as files_dump_end() runs them. */
int files_check_end(struct files_dump *d);
/* Move the collected entries into @img (caller packs, then frees them with
 * files_free_image()).  Runs the cross-process checks (pipe ends). */
int files_dump_end(struct files_dump *fd, FilesImage *img);
/* Before the tree is let go: @resume (it goes on running) or it is being
 * killed.  Call it on success and on failure (kinds undo what they changed
 * in the tree's files: TCP repair mode, network lock). */
void files_dump_release(struct files_dump *fd, bool resume);
void files_dump_free(struct files_dump *fd);
/* Free what files_dump_fdtable() / files_dump_end() put in @t / @img (not
 * @t / @img themselves) and reset them to empty. */
void files_free_fdtable(FdtableEntry *t);
void files_free_image(FilesImage *img);

/* --- validation (no side effects: usable from a fuzzer) ------------------- */
/* Every entry of @img: kind known, required fields present, sizes sane. */
int files_validate_image(const FilesImage *img);
/* @t against @img: fd numbers unique and in range, file ids known. */
int files_validate_fdtable(const FilesImage *img, const FdtableEntry *t);

/* --- restore -------------------------------------------------------------- */
/*
 * In the master: validate and open every entry of @img.  @img must stay
 * alive (and unchanged) until files_rst_free().
 */
int files_rst_open_all(const FilesImage *img, const struct files_opts *o,
		       struct files_rst **out);
/*
 * Optional check once every table is known: each table validates, and every
 * epoll registration has a task that holds both the epoll and its target
 * under the dumped number (so that files_post_install() adds it).
 */
int files_rst_check_fdtables(const struct files_rst *fr,
			     FdtableEntry *const *tables, size_t n);
/* The master's fd for file @id (also valid in forked tasks), or -1. */
int files_rst_fd(const struct files_rst *fr, uint32_t id);
const FileEntry *files_rst_entry(const struct files_rst *fr, uint32_t id);
/*
 * In a restored task (a fork of the master): make the fd table exactly @t.
 * @keep: fds the caller still needs (control socket, files to map); they are
 * moved above every fd of @t and their new numbers written back in place.
 * Everything else is closed.  Raises RLIMIT_NOFILE's soft limit if needed.
 */
int files_install(const struct files_rst *fr, const FdtableEntry *t, int *keep, int nkeep);
int files_post_install(const struct files_rst *fr, const FdtableEntry *t);
/* In the master, once every task is complete, just before the tree runs
 * (restored TCP connections leave repair mode, the network lock goes). */
int files_rst_finish(struct files_rst *fr);
/* journal.h: before files_rst_finish(), the TCP connections of restored
 * task @pid (fd table @t) in repair mode (`sk`) and their locks (`lock`),
 * for `kup recover` to finish what files_rst_finish() does. */
int inet_rst_journal(const struct files_rst *fr, pid_t pid, const FdtableEntry *t);
/*
 * Restore: may a socket dumped in the network namespace of inode @dumped be
 * made in ours?  On the boot of the dump, only in that namespace.  On
 * another boot inodes mean nothing: a socket of kup dump's own namespace
 * (the machine's, for kup switch) is made in kup restore's own (the
 * machine's of the new boot, for kup-restore.service); one of any other
 * namespace is refused (it went with the old boot).  Logs why not,
 * "@what: ..."; 0 or -EINVAL.
 */
int files_rst_netns(const struct files_rst *fr, const char *what, uint64_t dumped);
/*
 * The value a restore gives TCP_TIMESTAMP for a connection dumped with
 * @ts and, as TCP_INFO said then, microsecond timestamps (@usec) or not.
 * From Linux 6.7 the low bit of the value turns microsecond timestamps on;
 * before, it is only part of the millisecond clock: the value given has
 * that bit as @usec says, the clock moved forward by one if need be (never
 * back: the peer drops what looks older than what it has seen).
 */
uint32_t sk_inet_tcp_clock(uint32_t ts, bool usec);
/* Once the restore is over, done or failed, after files_rst_free(): drops
 * what outlives the restore state (the network lock of a failed restore).
 * @img may be unvalidated. */
void files_rst_release(const FilesImage *img, const struct files_opts *o);
/* In the master only: closes the master's fds (a task that installed its
 * table must not call it: those numbers are its restored fds now). */
void files_rst_free(struct files_rst *fr);

/* --- pseudo-terminals (files-pty.c) ----------------------------------------- */
/* The controlling terminal of a session: pty /dev/pts/@index. */
struct files_pty_ctty {
	uint32_t index, sid, fg_pgrp;
};
/* Dump: the sessions of the ptys of @img (malloc'd array, *n entries). */
int files_pty_cttys(const FilesImage *img, struct files_pty_ctty **out, size_t *n);
/*
 * Restore, in the stub of session leader @sid, fds of the master still
 * inherited: @fg false, right after setsid(): the pty whose session it was
 * becomes its controlling terminal (TIOCSCTTY); @fg true, once every
 * process group exists: its foreground process group (TIOCSPGRP).
 */
int files_pty_ctty_restore(const struct files_rst *fr, pid_t sid, bool fg);

/* --- file locks (files-lock.c) ------------------------------------------------ */
/*
 * Dump: the "lock:" lines of @fi's fdinfo.  POSIX locks go to the table of
 * their process; flock and OFD locks (owned by the description) to the
 * table of the first process seen holding the description (file @id).
 * Leases are refused.
 */
int files_locks_dump(struct files_dump *d, const struct fd_info *fi, uint32_t id,
		     FdtableEntry *t);
/*
 * Once every table is dumped: a flock lock that /proc/locks gives to one of
 * @pids but that no fd showed (held through a mapping only, or through an
 * fd passed away) would be lost: refused.
 */
int files_locks_check_unseen(struct files_dump *d, const pid_t *pids, size_t n);
/* /proc/locks read on a thread of its own from now on (once the tree is
 * frozen: its locks no longer change), for files_locks_check_unseen;
 * files_locks_prefetch_end() waits for it and drops what it read. */
void files_locks_prefetch(void);
/* /proc/locks read and dropped just before the freeze, so that reading it
 * frozen does not wait for an RCU grace period (files-lock.c). */
void files_locks_prime(void);
void files_locks_prefetch_end(void);
/* The locks of untrusted table @t; @fds: its fd numbers, sorted. */
int files_locks_validate(const FdtableEntry *t, const int *fds, size_t nfds);
/* In a restored task, once its table is installed: its flock and OFD locks. */
int files_locks_take(const struct files_rst *fr, const FdtableEntry *t);
/* The struct flock (F_SETLK) of POSIX lock @l, which the owning task must
 * take itself, after its last close of a file (any close drops them). */
struct flock;
void files_lock_flock(const FileLock *l, struct flock *fl);
/* "POSIX write lock on bytes 0-99 of PATH" for messages. */
void files_lock_describe(const struct files_rst *fr, const FdtableEntry *t,
			 const FileLock *l, char *buf, size_t len);

/* --- for files-*.c only ---------------------------------------------------- */
/*
 * A file in flight in a unix socket's queue (SCM_RIGHTS), received by a
 * peek into our own @lfd (taken over: kept open until files_dump_free() if
 * it makes a new entry, closed otherwise): the entry for it, shared with an
 * fd of the tree that is the same open file.  @owner: the socket's fd (for
 * messages); @where: "in flight #N" or so.
 */
int files_dump_inflight(struct files_dump *d, const struct fd_info *owner, int lfd,
			const char *where, uint32_t *id);
/* Restore: the fd of entry @id, opened now if it was not yet (a file in
 * flight is opened when the queue that carries it is refilled). */
int files_rst_open_id(struct files_rst *fr, uint32_t id);
const struct files_opts *files_dump_opts(const struct files_dump *d);
const struct files_opts *files_rst_opts(const struct files_rst *fr);

/*
 * Objects shared by several entries (a pipe, a deleted inode, a memfd),
 * keyed by (tag, a, b).  In the dump they live until files_dump_free(); in
 * the restore their fds are closed at the end of files_rst_open_all() (the
 * entries hold their own fds by then).
 */
struct files_obj {
	int tag;
	uint64_t a, b;
	int fd, fd2;		/* restore: -1 or owned fds */
	int uses, uses2;
	bool flag, flag2;
	pid_t pid;		/* dump: the first process/fd seen, for messages */
	int fdnum;
	FileEntry *fe;		/* dump: the entry that holds the shared data */
	int *v;			/* files.c: dedup array (freed with the object) */
	size_t nv, cv;
	void *buf, *buf2;	/* kinds' data, freed with the object */
	size_t len, len2;
	struct files_obj *next;
};
enum {
	FOBJ_CONTENT = 1,	/* dump: (dev, ino) of a deleted file or memfd */
	FOBJ_PIPE,		/* (0, pipe ino) */
	FOBJ_FIFO,		/* (dev, ino) */
	FOBJ_DELETED,		/* restore: recreated deleted regular file */
	FOBJ_MEMFD,		/* restore: recreated memfd */
	FOBJ_MNT,		/* dump: mount fd for a device (inotify) */
	FOBJ_LOCKS,		/* dump: (0, file id): flock/OFD locks recorded */
	FOBJ_FLOCK_INO,		/* dump: (0, inode): a flock lock was seen on an fd */
	FOBJ_PTY,		/* (0, index): a pty pair (dump: its master; restore:
				 * the master fd, fd2 the slave) */
	FOBJ_PTY_SLAVE,		/* dump: (index, file id): a slave entry */
	FOBJ_INOTIFY_DEL,	/* dump: (dev, ino) of a removed file an inotify watches */
};
struct files_obj *files_dump_obj(struct files_dump *d, int tag, uint64_t a,
				 uint64_t b, bool create);
struct files_obj *files_rst_obj(struct files_rst *fr, int tag, uint64_t a,
				uint64_t b, bool create);
/* Walk all dump objects (for dump_end): NULL starts, NULL ends. */
struct files_obj *files_dump_obj_next(struct files_dump *d, struct files_obj *o);

/* All entries of the image being restored (groups: pipes, deleted files). */
size_t files_rst_count(const struct files_rst *fr);
const FileEntry *files_rst_nth(const struct files_rst *fr, size_t i);

/* File entry id of fd @fd in @t, 0 if none. */
uint32_t files_fdtable_id(const FdtableEntry *t, int fd);

/* Messages about an entry at restore: log_err(FE_FMT ": ...", FE_ARG(fe)). */
#define FE_FMT		"file %u (%s)"
#define FE_ARG(fe)	(fe)->id, files_fe_name(fe)
const char *files_fe_name(const FileEntry *fe);	/* path, or the kind's name */
const char *files_kind_name(int kind);

int files_kcmp(pid_t p1, pid_t p2, int type, unsigned long i1, unsigned long i2);

/* Small helpers. */
int files_reopen(int fd, int flags);		/* open("/proc/self/fd/N") */
int files_write_all(int fd, const void *buf, size_t len);
/* The data of the first @size bytes of the file into fe->content and
 * fe->extents (holes are not kept; no extents: content is all of it). */
int files_read_content(const struct fd_info *fi, uint64_t size, FileEntry *fe);
/* Restore: the recreated inode of the deleted regular file (@dev, @ino) of
 * the image (files-reg.c), or -errno. */
int files_reg_deleted_fd(struct files_rst *fr, uint64_t dev, uint64_t ino);
/* Validate content, size and extents of an entry that has content. */
int files_content_check(const FileEntry *fe);

/*
 * Sockets: the classic filter of @fi (SO_ATTACH_FILTER), read back with
 * SO_GET_FILTER into @f (struct sock_filter[]), *@has set when there is one,
 * *@has_locked and *@locked when SO_LOCK_FILTER is on.  An eBPF filter
 * (SO_ATTACH_BPF) cannot be read and is refused (-EOPNOTSUPP).  @what
 * names the socket in messages ("unix socket", the fd's link...).
 */
#define FILES_SK_FILTER_MAX	4096	/* BPF_MAXINSNS */
int files_sk_dump_filter(const struct fd_info *fi, const char *what, ProtobufCBinaryData *f,
			 protobuf_c_boolean *has, protobuf_c_boolean *has_locked,
			 protobuf_c_boolean *locked);
/* Write the content of @own into @fd at its offsets, leave holes as holes,
 * and give the file its size. */
int files_write_content(struct files_rst *fr, int fd, const FileEntry *own);
/* A directory fd on a mount of @dev (st_dev) as @pid sees its mounts, the
 * mount of the whole filesystem if there is one (for open_by_handle_at).
 * Cached per device in @d (dump) or @fr (restore): exactly one is set. */
int files_mount_fd(struct files_dump *d, struct files_rst *fr, pid_t pid, dev_t dev);
/* Undo the escaping of a mountinfo field (\040 etc.) in place. */
void files_unescape(char *s);
/* Value of "key" in @fdinfo (the text after the key, or NULL). */
const char *files_fdinfo_field(const char *fdinfo, const char *key);
/* Strip " (deleted)" from @path in place; true if it was there. */
bool files_strip_deleted(char *path);
bool files_path_ok(const char *path);		/* absolute, not too long */
char *files_strdup(const char *s);
/* Dump: is @pid a process of the dumped tree? */
bool files_dump_in_tree(const struct files_dump *d, pid_t pid);
/*
 * A process outside the dumped tree holding the socket with inode @ino
 * (an fd of it, scanning /proc): its pid and, in @comm, its name.
 * -ENOENT: none found (the socket is in another network namespace's
 * process, or only in flight).
 */
int files_sock_owner(const struct files_dump *d, uint64_t ino, pid_t *pid, char *comm,
		     size_t len);
/* "pid N (comm)" of the owner of socket @ino, or "an unknown process". */
const char *files_sock_owner_str(const struct files_dump *d, uint64_t ino, char *buf,
				 size_t len);

#endif
