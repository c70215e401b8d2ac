// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * File locks: flock(), POSIX (fcntl F_SETLK) and OFD (F_OFD_SETLK) locks.
 *
 * Dump: /proc/PID/fdinfo/N lists, as "lock:" lines in /proc/locks format,
 * the locks set through that open file description and owned by that
 * process (POSIX) or by the description itself (flock, OFD).  A POSIX lock
 * goes to the table of the process that owns it (the pid of the line; a
 * table that processes share with CLONE_FILES is the owner, and holds the
 * POSIX locks of each, with their pids); a
 * flock or OFD lock is recorded once per description, in the table of the
 * first process seen holding it.  A lease (F_SETLEASE) is owned by the
 * description too and recorded the same way; a lease being broken and
 * delegations are refused.
 *
 * Restore: flock and OFD locks and leases are taken by the restored task
 * right after its fd table is installed (they live as long as the
 * description; F_SETLEASE also makes the task the owner that the lease
 * break signal goes to, as at dump).  POSIX
 * locks belong to the process and die with any close() of the file by it,
 * so the restorer takes them with an injected fcntl(F_SETLK) in the task
 * after the last fd it had to close (restore.c).  A lock that cannot be
 * taken back (someone outside the tree holds a conflicting one) fails the
 * restore, naming pid, fd and file.
 */
#include <fcntl.h>
#include <linux/kcmp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "files.h"
#include "internal.h"
#include "log.h"

#define LOCK_EOF_K	((uint64_t)INT64_MAX)

static const char *kind_name(FileLockKind k)
{
	switch (k) {
	case FILE_LOCK_KIND__LOCK_POSIX: return "POSIX";
	case FILE_LOCK_KIND__LOCK_FLOCK: return "flock";
	case FILE_LOCK_KIND__LOCK_OFD: return "OFD";
	case FILE_LOCK_KIND__LOCK_LEASE: return "lease";
	default: return "unknown";
	}
}

/* ---- dump ------------------------------------------------------------------- */

static bool same_lock(const FileLock *a, const FileLock *b)
{
	return a->kind == b->kind && a->write == b->write && a->start == b->start &&
	       a->has_end == b->has_end && (!a->has_end || a->end == b->end);
}

static int add_lock(FdtableEntry *t, const FileLock *l)
{
	FileLock **nv, *n;

	for (size_t i = 0; i < t->n_locks; i++)
		if (same_lock(t->locks[i], l))
			return 0;	/* another fd of the same description */
	nv = realloc(t->locks, (t->n_locks + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	t->locks = nv;
	n = malloc(sizeof(*n));
	if (!n)
		return -ENOMEM;
	*n = *l;
	t->locks[t->n_locks++] = n;
	return 0;
}

/* One "lock:" line: "1: POSIX  ADVISORY  WRITE 8543 fe:00:10953440 0 99". */
static int parse_line(const struct fd_info *fi, const char *line, FileLock *l, char *cls)
{
	char mode[16], type[16], end[32];
	unsigned long long ino, start;
	int pid;

	file_lock__init(l);
	if (sscanf(line, "%*d: %15s %15s %15s %d %*x:%*x:%llu %llu %31s", cls, mode, type, &pid,
		   &ino, &start, end) != 7) {
		log_err(FI_FMT ": %s: cannot parse lock line '%.80s'", FI_ARG(fi), fi->link, line);
		return -EINVAL;
	}
	if (!strcmp(cls, "DELEG") || (!strcmp(cls, "LEASE") && strcmp(mode, "ACTIVE"))) {
		log_err(FI_FMT ": %s: holds a %s (%s %s %s): not supported", FI_ARG(fi), fi->link,
			strcmp(cls, "DELEG") ? "lease being broken" : "delegation", cls, mode, type);
		return -EOPNOTSUPP;
	}
	if (!strcmp(cls, "LEASE")) {
		l->kind = FILE_LOCK_KIND__LOCK_LEASE;
		strcpy(mode, "ADVISORY");	/* checked below like the others */
	} else if (!strcmp(cls, "POSIX"))
		l->kind = FILE_LOCK_KIND__LOCK_POSIX;
	else if (!strcmp(cls, "FLOCK"))
		l->kind = FILE_LOCK_KIND__LOCK_FLOCK;
	else if (!strcmp(cls, "OFDLCK"))
		l->kind = FILE_LOCK_KIND__LOCK_OFD;
	else {
		log_err(FI_FMT ": %s: lock of unknown class %s: not supported", FI_ARG(fi), fi->link, cls);
		return -EOPNOTSUPP;
	}
	if (strcmp(mode, "ADVISORY") || (strcmp(type, "READ") && strcmp(type, "WRITE"))) {
		log_err(FI_FMT ": %s: %s lock %s %s: not supported", FI_ARG(fi), fi->link, cls, mode,
			type);
		return -EOPNOTSUPP;
	}
	if (ino != (unsigned long long)fi->st.st_ino) {
		log_err(FI_FMT ": %s: lock line of another inode (%llu)", FI_ARG(fi), fi->link, ino);
		return -EINVAL;
	}
	l->write = !strcmp(type, "WRITE");
	l->fd = fi->fd;
	l->start = start;
	l->has_pid = true;
	l->pid = pid;
	if (strcmp(end, "EOF")) {
		l->has_end = true;
		l->end = strtoull(end, NULL, 10);
	}
	return 0;
}

int files_locks_dump(struct files_dump *d, const struct fd_info *fi, uint32_t id,
		     FdtableEntry *t)
{
	struct files_obj *o = NULL;
	int ret;

	for (const char *p = fi->fdinfo; p && (p = strstr(p, "lock:\t")); p++) {
		FileLock l;
		char cls[16];

		if (p != fi->fdinfo && p[-1] != '\n')
			continue;
		ret = parse_line(fi, p + 6, &l, cls);
		if (ret)
			return ret;
		if (l.kind == FILE_LOCK_KIND__LOCK_FLOCK) {
			struct files_obj *io = files_dump_obj(d, FOBJ_FLOCK_INO, 0, fi->st.st_ino, true);

			if (!io)
				return -ENOMEM;
			io->flag = true;
		}
		if (l.kind == FILE_LOCK_KIND__LOCK_POSIX) {
			/* shown with every fd of the file in the locker's fd table,
			 * which processes of the tree may share (CLONE_FILES): it
			 * is dumped with that table, with its pid */
			if (l.pid != fi->pid &&
			    (fi->local || !files_dump_in_tree(d, l.pid) ||
			     files_kcmp(fi->pid, l.pid, KCMP_FILES, 0, 0)))
				continue;
		} else {
			if (!o)
				o = files_dump_obj(d, FOBJ_LOCKS, 0, id, true);
			if (!o)
				return -ENOMEM;
			if (o->flag && o->pid != fi->pid)
				continue;	/* recorded with the first holder */
			o->flag = true;
			o->pid = fi->pid;
		}
		ret = add_lock(t, &l);
		if (ret)
			return ret;
		log_debug(FI_FMT ": %s: %s %s lock %llu-%s", FI_ARG(fi), fi->link, kind_name(l.kind),
			  l.write ? "write" : "read", (unsigned long long)l.start,
			  l.has_end ? "" : "EOF");
	}
	return 0;
}

/*
 * Opening /proc/locks waits for an RCU grace period (the kernel takes its
 * lock list's rwsem for writing: 10-20 ms), time the tree would spend
 * frozen: it is read on a thread started as soon as the tree is frozen,
 * while the dump goes on, and parsed where the check needs it.  And it is
 * read once before the freeze (files_locks_prime, what it says unused):
 * for about one grace period after, taking the rwsem again does not wait
 * for another (the kernel's rcu_sync is still "passed"), so the read of the
 * frozen tree's locks is quick.  If that window is missed it waits, as
 * without.
 */
void files_locks_prime(void)
{
	char chunk[4096];
	int fd = open("/proc/locks", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	while (read(fd, chunk, sizeof(chunk)) > 0)
		;
	close(fd);
}

static struct {
	pthread_t th;
	bool running;
	char *buf;	/* what it read (NULL: it could not) */
	size_t len;
	int err;
} prefetch;

static void *read_proc_locks(void *arg)
{
	FILE *f = fopen("/proc/locks", "re"), *out = NULL;
	char chunk[4096];
	size_t n;

	if (f)
		out = open_memstream(&prefetch.buf, &prefetch.len);
	if (!f || !out) {
		prefetch.err = errno ? errno : ENOMEM;
		if (f)
			fclose(f);
		return NULL;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, out);
	prefetch.err = ferror(f) ? EIO : 0;
	fclose(f);
	fclose(out);
	return NULL;
}

void files_locks_prefetch(void)
{
	if (prefetch.running)
		return;
	files_locks_prefetch_end();
	prefetch.err = 0;
	prefetch.running = !ckpt_thread_start(&prefetch.th, read_proc_locks, NULL);
}

void files_locks_prefetch_end(void)
{
	if (prefetch.running)
		pthread_join(prefetch.th, NULL);
	prefetch.running = false;
	free(prefetch.buf);
	prefetch.buf = NULL;
	prefetch.len = 0;
}

int files_locks_check_unseen(struct files_dump *d, const pid_t *pids, size_t n)
{
	FILE *f;
	char line[256];
	int ret = 0;

	if (prefetch.running) {
		pthread_join(prefetch.th, NULL);
		prefetch.running = false;
		if (prefetch.err || !prefetch.buf)
			return log_errno(prefetch.err ? prefetch.err : ENOMEM, "cannot read /proc/locks");
		f = prefetch.len ? fmemopen(prefetch.buf, prefetch.len, "r") : fopen("/dev/null", "re");
	} else {
		f = fopen("/proc/locks", "re");
	}
	if (!f)
		return log_errno(errno, "cannot read /proc/locks");
	while (!ret && fgets(line, sizeof(line), f)) {
		unsigned long long ino;
		char cls[16];
		int pid;

		/* "3: FLOCK  ADVISORY  WRITE 8543 fe:00:10953439 0 EOF"; waiters have "->" */
		if (sscanf(line, "%*d: %15s %*s %*s %d %*x:%*x:%llu", cls, &pid, &ino) != 3 ||
		    strcmp(cls, "FLOCK"))
			continue;
		for (size_t i = 0; i < n; i++) {
			if (pids[i] != pid || files_dump_obj(d, FOBJ_FLOCK_INO, 0, ino, false))
				continue;
			log_err("pid %d: holds a flock lock on inode %llu through no open fd (a mapping "
				"of the file, or an fd passed away): not supported", pid, ino);
			ret = -EOPNOTSUPP;
			break;
		}
	}
	fclose(f);
	files_locks_prefetch_end();	/* what the thread read is used */
	return ret;
}

/* ---- validation ------------------------------------------------------------- */

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return x < y ? -1 : x > y;
}

int files_locks_validate(const FdtableEntry *t, const int *fds, size_t nfds)
{
	if (t->n_locks > FILES_LIST_MAX || (t->n_locks && !t->locks)) {
		log_err("pid %u: bad lock list", t->pid);
		return -EINVAL;
	}
	for (size_t i = 0; i < t->n_locks; i++) {
		const FileLock *l = t->locks[i];

		if (!l ||
		    !bsearch(&l->fd, fds, nfds, sizeof(int), cmp_int) || l->start > LOCK_EOF_K ||
		    (l->has_end && (l->end < l->start || l->end >= LOCK_EOF_K)) ||
		    (l->kind != FILE_LOCK_KIND__LOCK_POSIX && l->kind != FILE_LOCK_KIND__LOCK_OFD &&
		     l->kind != FILE_LOCK_KIND__LOCK_FLOCK && l->kind != FILE_LOCK_KIND__LOCK_LEASE) ||
		    ((l->kind == FILE_LOCK_KIND__LOCK_FLOCK || l->kind == FILE_LOCK_KIND__LOCK_LEASE) &&
		     (l->start || l->has_end))) {
			log_err("pid %u: file lock %zu is invalid", t->pid, i);
			return -EINVAL;
		}
	}
	return 0;
}

/* ---- restore ---------------------------------------------------------------- */

void files_lock_flock(const FileLock *l, struct flock *fl)
{
	memset(fl, 0, sizeof(*fl));
	fl->l_type = l->write ? F_WRLCK : F_RDLCK;
	fl->l_whence = SEEK_SET;
	fl->l_start = l->start;
	fl->l_len = l->has_end ? (off_t)(l->end - l->start + 1) : 0;
}

void files_lock_describe(const struct files_rst *fr, const FdtableEntry *t, const FileLock *l,
			 char *buf, size_t len)
{
	const FileEntry *fe = files_rst_entry(fr, files_fdtable_id(t, l->fd));
	const char *name = fe ? files_fe_name(fe) : "?";

	if (l->kind == FILE_LOCK_KIND__LOCK_FLOCK)
		snprintf(buf, len, "flock %s lock on %s", l->write ? "exclusive" : "shared", name);
	else if (l->kind == FILE_LOCK_KIND__LOCK_LEASE)
		snprintf(buf, len, "%s lease on %s", l->write ? "write" : "read", name);
	else if (l->has_end)
		snprintf(buf, len, "%s %s lock on bytes %llu-%llu of %s", kind_name(l->kind),
			 l->write ? "write" : "read", (unsigned long long)l->start,
			 (unsigned long long)l->end, name);
	else
		snprintf(buf, len, "%s %s lock on bytes %llu-EOF of %s", kind_name(l->kind),
			 l->write ? "write" : "read", (unsigned long long)l->start, name);
}

int files_locks_take(const struct files_rst *fr, const FdtableEntry *t)
{
	for (size_t i = 0; i < t->n_locks; i++) {
		const FileLock *l = t->locks[i];
		struct flock fl;
		char what[512];
		int r;

		if (l->kind == FILE_LOCK_KIND__LOCK_POSIX)
			continue;
		if (l->kind == FILE_LOCK_KIND__LOCK_FLOCK) {
			r = flock(l->fd, (l->write ? LOCK_EX : LOCK_SH) | LOCK_NB);
		} else if (l->kind == FILE_LOCK_KIND__LOCK_LEASE) {
			r = fcntl(l->fd, F_SETLEASE, l->write ? F_WRLCK : F_RDLCK);
		} else {
			files_lock_flock(l, &fl);
			r = fcntl(l->fd, F_OFD_SETLK, &fl);
		}
		if (r) {
			int e = errno;

			files_lock_describe(fr, t, l, what, sizeof(what));
			return log_errno(e, "pid %u fd %d: cannot take back its %s%s", t->pid, l->fd, what,
					 e == EAGAIN || e == EWOULDBLOCK || e == EACCES ?
					 " (a conflicting lock is held outside the tree)" : "");
		}
	}
	return 0;
}
