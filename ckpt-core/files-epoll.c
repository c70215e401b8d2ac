// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * epoll: the registrations ("tfd: N events: X data: D" lines of fdinfo).
 * A registration belongs to (file, fd number); at dump each one is matched
 * to the file its fd number holds in the dumping process with
 * kcmp(KCMP_EPOLL_TFD), and that file's id is kept (tfile_id).  A
 * registration whose number was closed (or now holds another file) after
 * EPOLL_CTL_ADD, while a dup kept the file alive, is matched against the
 * other fds of the process (tfd_closed); if none holds the file, it is
 * refused.
 *
 * Restore: epoll_create1() in the master; files_post_install() of each task
 * adds (EPOLL_CTL_ADD, same events and data) the registrations whose fd
 * number holds the same file in that task's table.  Tasks sharing the epoll
 * file and the target get EEXIST from the second ADD, which is fine.
 * Readiness is recomputed by the kernel on ADD.  A tfd_closed registration
 * is added by the task holding its file: the file is put at the old number
 * for the EPOLL_CTL_ADD (what was there is set aside and put back), then
 * the number is closed again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "files.h"
#include "log.h"

static bool epoll_match(const struct fd_info *fi)
{
	return !strcmp(fi->link, "anon_inode:[eventpoll]");
}

static int epoll_dump(const struct fd_info *fi, FileEntry *fe)
{
	const char *p = fi->fdinfo;
	size_t n = 0, cap = 0;

	while (p && *p) {
		int tfd;
		unsigned int events;
		unsigned long long data;

		if (!strncmp(p, "tfd:", 4)) {
			EpollTfd *t;

			if (sscanf(p, "tfd: %d events: %x data: %llx", &tfd, &events, &data) != 3) {
				log_err(FI_FMT ": epoll: cannot parse '%.60s'", FI_ARG(fi), p);
				return -EINVAL;
			}
			if (n == cap) {
				EpollTfd **nt = realloc(fe->tfds, (cap = cap ? cap * 2 : 8) * sizeof(*nt));
				if (!nt)
					return -ENOMEM;
				fe->tfds = nt;
			}
			t = malloc(sizeof(*t));
			if (!t)
				return -ENOMEM;
			epoll_tfd__init(t);
			t->tfd = tfd;
			t->events = events;
			t->data = data;
			fe->tfds[n++] = t;
			fe->n_tfds = n;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return 0;
}

static int epoll_dump_done(struct files_dump *d, FileEntry *fe, pid_t pid, int fd,
			   const FdtableEntry *t)
{
	for (size_t i = 0; i < fe->n_tfds; i++) {
		EpollTfd *tf = fe->tfds[i];
		struct kcmp_epoll_slot slot = { .efd = fd, .tfd = tf->tfd };
		uint32_t id;

		for (size_t j = 0; j < i; j++)
			if (fe->tfds[j]->tfd == tf->tfd)
				slot.toff++;
		id = files_fdtable_id(t, tf->tfd);
		if (id && files_kcmp(pid, pid, KCMP_EPOLL_TFD, tf->tfd, (unsigned long)&slot) == 0) {
			tf->has_tfile_id = true;
			tf->tfile_id = id;
			continue;
		}
		for (size_t k = 0; k < t->n_fds; k++) {
			if (t->fds[k]->fd == tf->tfd ||
			    files_kcmp(pid, pid, KCMP_EPOLL_TFD, t->fds[k]->fd, (unsigned long)&slot))
				continue;
			tf->has_tfile_id = true;
			tf->tfile_id = t->fds[k]->file_id;
			tf->has_tfd_closed = tf->tfd_closed = true;
			break;
		}
		if (tf->tfd_closed)
			continue;
		log_err("pid %d fd %d: epoll watches fd %d, which is %s, and no other fd of the "
			"process holds the file it was: not supported", pid, fd,
			tf->tfd, id ? "now another file (replaced after EPOLL_CTL_ADD)" :
			"closed (the file stays registered through a copy)");
		return -EOPNOTSUPP;
	}
	return 0;
}

static int epoll_validate(const FileEntry *fe)
{
	for (size_t i = 0; i < fe->n_tfds; i++) {
		if (fe->tfds[i]->tfd < 0 || fe->tfds[i]->tfd >= FILES_FD_MAX ||
		    (fe->tfds[i]->tfd_closed && !fe->tfds[i]->has_tfile_id)) {
			log_err("file %u (epoll): bad target fd %d", fe->id, fe->tfds[i]->tfd);
			return -EINVAL;
		}
	}
	if ((fe->flags & O_ACCMODE) != O_RDWR) {
		log_err("file %u (epoll): bad flags 0%o", fe->id, fe->flags);
		return -EINVAL;
	}
	return 0;
}

static int epoll_open(const FileEntry *fe, struct files_rst *fr)
{
	int fd = epoll_create1(0);

	if (fd < 0)
		return log_errno(errno, "file %u (epoll): cannot create", fe->id);
	return fd;
}

/* The registration of a file whose fd number was closed: put the file
 * (held at @src) at that number for the EPOLL_CTL_ADD, then give the number
 * back what the table has there (or nothing). */
static int add_closed(int epfd, const EpollTfd *tf, int src, const FdtableEntry *t)
{
	struct epoll_event ev = { .events = tf->events, .data.u64 = tf->data };
	int fdflags = fcntl(tf->tfd, F_GETFD);	/* a file of the table, or a keep fd */
	bool there = fdflags >= 0, cloexec = there && (fdflags & FD_CLOEXEC);
	int saved = -1, ret = 0;

	if (there && (saved = fcntl(tf->tfd, F_DUPFD_CLOEXEC, 0)) < 0)
		return log_errno(errno, "pid %u: epoll: cannot set fd %d aside", t->pid, tf->tfd);
	if (dup2(src, tf->tfd) < 0)
		ret = log_errno(errno, "pid %u: epoll: cannot put fd %d at %d", t->pid, src, tf->tfd);
	else if (epoll_ctl(epfd, EPOLL_CTL_ADD, tf->tfd, &ev) < 0 && errno != EEXIST)
		ret = log_errno(errno, "pid %u fd %d: epoll: cannot add closed fd %d (events %x)",
				t->pid, epfd, tf->tfd, tf->events);
	if (saved >= 0) {
		if (dup3(saved, tf->tfd, cloexec ? O_CLOEXEC : 0) < 0 && !ret)
			ret = log_errno(errno, "pid %u: epoll: cannot put fd %d back", t->pid, tf->tfd);
		close(saved);
	} else {
		close(tf->tfd);
	}
	return ret;
}

static int epoll_post_install(const FileEntry *fe, int fd, const FdtableEntry *t,
			      const struct files_rst *fr)
{
	for (size_t i = 0; i < fe->n_tfds; i++) {
		const EpollTfd *tf = fe->tfds[i];
		struct epoll_event ev = { .events = tf->events, .data.u64 = tf->data };
		uint32_t id = files_fdtable_id(t, tf->tfd);

		if (tf->tfd_closed) {
			int src = -1, ret;

			for (size_t k = 0; k < t->n_fds && src < 0; k++)
				if (t->fds[k]->file_id == tf->tfile_id)
					src = t->fds[k]->fd;
			if (src < 0)
				continue;	/* not this task's */
			ret = add_closed(fd, tf, src, t);
			if (ret)
				return ret;
			continue;
		}

		if (!id || (tf->has_tfile_id && id != tf->tfile_id))
			continue;	/* not this task's: another task adds it */
		if (epoll_ctl(fd, EPOLL_CTL_ADD, tf->tfd, &ev) < 0 && errno != EEXIST)
			return log_errno(errno, "pid %u fd %d: epoll: cannot add fd %d (events %x)",
					 t->pid, fd, tf->tfd, tf->events);
	}
	return 0;
}

const struct file_kind_ops files_epoll_ops = {
	.kind = FILE_KIND__FILE_EPOLL,
	.name = "epoll",
	.match = epoll_match,
	.dump = epoll_dump,
	.dump_done = epoll_dump_done,
	.validate = epoll_validate,
	.open = epoll_open,
	.post_install = epoll_post_install,
};
