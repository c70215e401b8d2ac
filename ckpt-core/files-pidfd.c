// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * pidfds (pidfd_open(), clone(CLONE_PIDFD)) of processes of the tree.
 *
 * Dump: the process it refers to (fdinfo "Pid:"), which must be a live
 * process of the dumped tree, or -1: a process that has exited and was
 * reaped.  A pidfd of a process outside the tree, of a zombie, of a thread
 * (PIDFD_THREAD), or of a process in another pid namespace (Pid: 0) is
 * refused.
 *
 * Restore: the tree has its pids back, and every task of it exists when
 * the fd tables are installed.  The master holds a placeholder (/dev/null);
 * in each task, files_post_install() replaces it with pidfd_open() of the
 * restored process, before the epoll registrations are added.  Each fd gets
 * a description of its own (a pidfd shared by dup or fork is two after the
 * restore: only O_NONBLOCK lives in it).  The pidfd of an exited process is
 * made in the master: a pidfd of a child of its that exits at once, then
 * reaped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "files.h"
#include "log.h"

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif
#define PIDFD_THREAD_FLAG O_EXCL

static bool pidfd_match(const struct fd_info *fi)
{
	return !strcmp(fi->link, "anon_inode:[pidfd]") || !strncmp(fi->link, "pidfd:", 6);
}

static char proc_state(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

static int pidfd_dump(const struct fd_info *fi, FileEntry *fe)
{
	const char *v = files_fdinfo_field(fi->fdinfo, "Pid:");
	long target = v ? strtol(v, NULL, 10) : 0;
	const char *why = NULL;

	if (!v || target == 0 || target < -1)
		why = "a process in another pid namespace";
	else if (target == -1)
		why = NULL;	/* exited and reaped: a dead pidfd */
	else if (!files_dump_in_tree(fi->d, target))
		why = "a process outside the dumped tree";
	else if (proc_state(target) == 'Z')
		why = "a zombie of the dumped tree";
	else if (fi->flags & PIDFD_THREAD_FLAG)
		why = "a thread pidfd (PIDFD_THREAD)";
	if (why) {
		log_err(FI_FMT ": pidfd of pid %ld (%s): not supported", FI_ARG(fi), target, why);
		return -EOPNOTSUPP;
	}
	fe->has_pidfd_pid = true;
	fe->pidfd_pid = (int32_t)target;
	return 0;
}

static int pidfd_validate(const FileEntry *fe)
{
	if (!fe->has_pidfd_pid || fe->pidfd_pid == 0 || fe->pidfd_pid < -1) {
		log_err("file %u (pidfd): missing or bad pid", fe->id);
		return -EINVAL;
	}
	if (fe->flags & (O_PATH | O_DIRECTORY | PIDFD_THREAD_FLAG)) {
		log_err("file %u (pidfd): bad flags 0%o", fe->id, fe->flags);
		return -EINVAL;
	}
	return 0;
}

/* A placeholder until the task replaces it (pidfd_post_install). */
static int pidfd_open_placeholder(const FileEntry *fe, struct files_rst *fr)
{
	int fd;

	if (fe->pidfd_pid == -1) {	/* a process that has exited */
		pid_t c = fork();

		if (c < 0)
			return log_errno(errno, "file %u (pidfd of an exited process): fork", fe->id);
		if (c == 0)
			_exit(0);
		fd = (int)syscall(SYS_pidfd_open, c, (fe->flags & O_NONBLOCK) ? PIDFD_NONBLOCK : 0);
		if (fd < 0)
			fd = -errno;
		while (waitpid(c, NULL, 0) < 0 && errno == EINTR)
			;
		if (fd < 0)
			return log_errno(fd, "file %u (pidfd of an exited process): pidfd_open",
					 fe->id);
		return fd;
	}
	fd = open("/dev/null", (fe->flags & O_ACCMODE) | O_CLOEXEC);
	if (fd < 0)
		return log_errno(errno, "file %u (pidfd of pid %d): cannot open /dev/null",
				 fe->id, fe->pidfd_pid);
	return fd;
}

static int pidfd_post_install(const FileEntry *fe, int fd, const FdtableEntry *t,
			      const struct files_rst *fr)
{
	bool cloexec = false;
	int pfd;

	if (fe->pidfd_pid == -1)
		return 0;	/* made in the master */
	for (size_t i = 0; i < t->n_fds; i++)
		if (t->fds[i]->fd == fd)
			cloexec = t->fds[i]->cloexec;
	pfd = (int)syscall(SYS_pidfd_open, fe->pidfd_pid,
			   (fe->flags & O_NONBLOCK) ? PIDFD_NONBLOCK : 0);
	if (pfd < 0)
		return log_errno(errno, "pid %u fd %d: cannot open a pidfd of pid %d", t->pid, fd,
				 fe->pidfd_pid);
	if (dup3(pfd, fd, cloexec ? O_CLOEXEC : 0) < 0) {
		int e = errno;
		close(pfd);
		return log_errno(e, "pid %u fd %d: cannot put the pidfd of pid %d in place", t->pid,
				 fd, fe->pidfd_pid);
	}
	close(pfd);
	return 0;
}

const struct file_kind_ops files_pidfd_ops = {
	.kind = FILE_KIND__FILE_PIDFD,
	.name = "pidfd",
	.match = pidfd_match,
	.dump = pidfd_dump,
	.dump_checks = true,
	.validate = pidfd_validate,
	.open = pidfd_open_placeholder,
	.post_install = pidfd_post_install,
	.post_install_early = true,
};
