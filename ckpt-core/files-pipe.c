// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Pipes and FIFOs.
 *
 * Every end (every open file description) is its own entry; the entries of
 * one pipe share pipe_ino (FIFOs: dev + ino).  The buffered data is read
 * without consuming it: tee(2) from a read end into a pipe of ours as large
 * as the dumped one, then read from ours.  It is kept once per pipe, on the
 * first read end seen (pipes) or on the first entry (FIFOs: reopened for
 * reading if needed).
 *
 * A pipe whose write end is in the tree but whose only readers are outside
 * it is refused (after restore the writer would have no reader and get
 * EPIPE).  A read end whose writers are outside is kept: the restored reader
 * gets the buffered data, then end-of-file.
 *
 * Restore: one pipe per inode; its size (F_SETPIPE_SZ) and data come back,
 * the first read and write entries get its two ends, other entries of the
 * same pipe are new descriptions reopened through /proc/self/fd.  FIFOs are
 * opened by path (O_RDWR|O_NONBLOCK first, which never blocks), refilled,
 * and every entry reopens that one with its own flags.  A deleted FIFO comes
 * back as a FIFO made in /tmp and unlinked at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "log.h"

#define PIPE_DEF_SIZE	65536u
#define PIPE_SIZE_MAX	(1u << 31)

static bool pipe_match(const struct fd_info *fi)
{
	return S_ISFIFO(fi->st.st_mode) && !(fi->flags & O_PATH) &&
	       !strncmp(fi->link, "pipe:", 5);
}

static bool fifo_match(const struct fd_info *fi)
{
	return S_ISFIFO(fi->st.st_mode) && !(fi->flags & O_PATH) && fi->link[0] == '/';
}

/* Copy the buffered data of the pipe read through @rfd into fe->pipe_data,
 * leaving it in the pipe. */
static int peek_data(const struct fd_info *fi, int rfd, FileEntry *fe)
{
	int n = 0, size, tmp[2], ret = 0;
	ssize_t r;
	uint8_t *buf;
	size_t got = 0;

	if (ioctl(rfd, FIONREAD, &n) < 0)
		return log_errno(errno, FI_FMT ": %s: FIONREAD", FI_ARG(fi), fi->link);
	if (n <= 0)
		return 0;
	size = fcntl(rfd, F_GETPIPE_SZ);
	if (size < 0)
		return log_errno(errno, FI_FMT ": %s: F_GETPIPE_SZ", FI_ARG(fi), fi->link);
	if (pipe2(tmp, O_CLOEXEC) < 0)
		return log_errno(errno, FI_FMT ": %s: cannot make a pipe to copy its data",
				 FI_ARG(fi), fi->link);
	if (fcntl(tmp[1], F_GETPIPE_SZ) < size && fcntl(tmp[1], F_SETPIPE_SZ, size) < 0) {
		ret = log_errno(errno, FI_FMT ": %s: cannot make a pipe of %d bytes to copy its data",
				FI_ARG(fi), fi->link, size);
		goto out;
	}
	buf = malloc(n);
	if (!buf) {
		ret = log_errno(ENOMEM, FI_FMT ": %s", FI_ARG(fi), fi->link);
		goto out;
	}
	r = tee(rfd, tmp[1], n, SPLICE_F_NONBLOCK);
	if (r != n) {
		if (r < 0)
			ret = log_errno(errno, FI_FMT ": %s: cannot copy its %d buffered bytes (tee)",
					FI_ARG(fi), fi->link, n);
		else
			ret = log_errno(EIO, FI_FMT ": %s: copied %zd of its %d buffered bytes",
					FI_ARG(fi), fi->link, r, n);
		free(buf);
		goto out;
	}
	while (got < (size_t)n) {
		r = read(tmp[0], buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			ret = log_errno(r < 0 ? errno : EIO, FI_FMT ": %s: reading the copy of its data",
					FI_ARG(fi), fi->link);
			free(buf);
			goto out;
		}
		got += r;
	}
	fe->has_pipe_data = true;
	fe->pipe_data.data = buf;
	fe->pipe_data.len = n;
	log_debug(FI_FMT ": %s: %d bytes of data", FI_ARG(fi), fi->link, n);
out:
	close(tmp[0]);
	close(tmp[1]);
	return ret;
}

static int pipe_size(const struct fd_info *fi, FileEntry *fe)
{
	int size = fcntl(fi->lfd, F_GETPIPE_SZ);

	if (size < 0)
		return log_errno(errno, FI_FMT ": %s: F_GETPIPE_SZ", FI_ARG(fi), fi->link);
	fe->has_pipe_size = true;
	fe->pipe_size = size;
	return 0;
}

/* An end of a pipe; @peek: its data too (the dump, not the check of a live
 * tree, whose data is no concern of the check and may be read meanwhile). */
static int pipe_end(const struct fd_info *fi, FileEntry *fe, bool peek)
{
	int acc = fi->flags & O_ACCMODE, ret;
	struct files_obj *o;

	fe->has_pipe_ino = true;
	fe->pipe_ino = fi->st.st_ino;
	ret = pipe_size(fi, fe);
	if (ret)
		return ret;
	o = files_dump_obj(fi->d, FOBJ_PIPE, 0, fi->st.st_ino, true);
	if (!o)
		return -ENOMEM;
	if (acc != O_WRONLY) {
		o->flag = true;		/* a read end in the tree */
		if (!o->fe && peek) {
			ret = peek_data(fi, fi->lfd, fe);
			if (ret)
				return ret;
			o->fe = fe;
		}
	}
	if (acc == O_WRONLY) {
		struct pollfd p = { .fd = fi->lfd, .events = POLLOUT };

		/* POLLERR on a write end: the pipe has no reader at all */
		if (poll(&p, 1, 0) >= 0 && !(p.revents & POLLERR))
			o->flag2 = true;
		if (o->fdnum < 0) {
			o->pid = fi->pid;
			o->fdnum = fi->fd;
		}
	}
	return 0;
}

static int pipe_dump(const struct fd_info *fi, FileEntry *fe)
{
	return pipe_end(fi, fe, true);
}

/* The check of a live tree (ckpt_dump_check): the ends, for pipe_dump_end. */
static int pipe_check(const struct fd_info *fi, FileEntry *fe)
{
	return pipe_end(fi, fe, false);
}

static int pipe_dump_end(struct files_dump *d)
{
	for (struct files_obj *o = files_dump_obj_next(d, NULL); o; o = files_dump_obj_next(d, o)) {
		if (o->tag != FOBJ_PIPE || o->flag || !o->flag2)
			continue;
		log_err("pid %d fd %d: pipe:[%llu]: its read end is outside the dumped tree "
			"(the restored writer would have no reader): not supported",
			o->pid, o->fdnum, (unsigned long long)o->b);
		return -EOPNOTSUPP;
	}
	return 0;
}

/* A FIFO by its path; @peek: its data too (as pipe_end). */
static int fifo_end(const struct fd_info *fi, FileEntry *fe, bool peek)
{
	char path[sizeof(fi->link)];
	struct files_obj *o;
	int ret;

	memcpy(path, fi->link, sizeof(path));
	if (files_strip_deleted(path)) {
		if (fi->st.st_nlink) {
			log_err(FI_FMT ": FIFO %s was unlinked but has other links: not supported",
				FI_ARG(fi), fi->link);
			return -EOPNOTSUPP;
		}
		fe->has_deleted = fe->deleted = true;
	}
	if (!files_path_ok(path)) {
		log_err(FI_FMT ": FIFO '%s' cannot be reopened", FI_ARG(fi), fi->link);
		return -EOPNOTSUPP;
	}
	fe->path = strdup(path);
	if (!fe->path)
		return -ENOMEM;
	fe->has_dev = fe->has_ino = fe->has_mode = true;
	fe->dev = fi->st.st_dev;
	fe->ino = fi->st.st_ino;
	fe->mode = fi->st.st_mode;
	ret = pipe_size(fi, fe);
	if (ret || !peek)
		return ret;
	o = files_dump_obj(fi->d, FOBJ_FIFO, fi->st.st_dev, fi->st.st_ino, true);
	if (!o)
		return -ENOMEM;
	if (!o->fe) {
		int rfd = fi->lfd;

		if ((fi->flags & O_ACCMODE) == O_WRONLY) {
			rfd = files_reopen(fi->lfd, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
			if (rfd < 0)
				return log_errno(errno, FI_FMT ": cannot open FIFO %s to read its data",
						 FI_ARG(fi), fi->link);
		}
		ret = peek_data(fi, rfd, fe);
		if (rfd != fi->lfd)
			close(rfd);
		if (ret)
			return ret;
		o->fe = fe;
	}
	return 0;
}

static int fifo_dump(const struct fd_info *fi, FileEntry *fe)
{
	return fifo_end(fi, fe, true);
}

static int fifo_check(const struct fd_info *fi, FileEntry *fe)
{
	return fifo_end(fi, fe, false);
}

static int check_data(const FileEntry *fe)
{
	uint64_t cap = fe->has_pipe_size ? fe->pipe_size : PIPE_DEF_SIZE;

	if (fe->has_pipe_size && (fe->pipe_size > PIPE_SIZE_MAX || fe->pipe_size < 4096)) {
		log_err(FE_FMT ": bad pipe size %u", FE_ARG(fe), fe->pipe_size);
		return -EINVAL;
	}
	if (fe->has_pipe_data && fe->pipe_data.len > cap) {
		log_err(FE_FMT ": %zu bytes of data for a pipe of %llu", FE_ARG(fe),
			fe->pipe_data.len, (unsigned long long)cap);
		return -EINVAL;
	}
	if (fe->flags & (O_PATH | O_DIRECTORY)) {
		log_err(FE_FMT ": bad flags 0%o for a pipe", FE_ARG(fe), fe->flags);
		return -EINVAL;
	}
	return 0;
}

static int pipe_validate(const FileEntry *fe)
{
	if (!fe->has_pipe_ino) {
		log_err("file %u (pipe): no pipe inode", fe->id);
		return -EINVAL;
	}
	return check_data(fe);
}

static int fifo_validate(const FileEntry *fe)
{
	if (!files_path_ok(fe->path) || !fe->has_dev || !fe->has_ino) {
		log_err("file %u (FIFO): missing path or inode", fe->id);
		return -EINVAL;
	}
	return check_data(fe);
}

/* Size and data of the pipe of @fe's group (entries with the same key). */
static int group_info(const struct files_rst *fr, const FileEntry *fe, bool fifo,
		      uint32_t *size, const FileEntry **data, bool *direct)
{
	*size = 0;
	*data = NULL;
	*direct = false;
	for (size_t i = 0; i < files_rst_count(fr); i++) {
		const FileEntry *x = files_rst_nth(fr, i);

		if (fifo ? (x->kind != FILE_KIND__FILE_FIFO || x->dev != fe->dev || x->ino != fe->ino)
			 : (x->kind != FILE_KIND__FILE_PIPE || x->pipe_ino != fe->pipe_ino))
			continue;
		if (x->has_pipe_size && x->pipe_size > *size)
			*size = x->pipe_size;
		if (x->has_pipe_data && x->pipe_data.len) {
			if (*data) {
				log_err(FE_FMT ": two entries (%u, %u) hold the data of one pipe",
					FE_ARG(fe), (*data)->id, x->id);
				return -EINVAL;
			}
			*data = x;
		}
		if ((x->flags & O_DIRECT) && (x->flags & O_ACCMODE) != O_RDONLY)
			*direct = true;
	}
	return 0;
}

/* Size the pipe behind @rfd/@wfd and write its data back. */
static int refill(const FileEntry *fe, int wfd, uint32_t size, const FileEntry *data)
{
	int fl, ret = 0;

	if (size && fcntl(wfd, F_GETPIPE_SZ) != (int)size &&
	    fcntl(wfd, F_SETPIPE_SZ, size) < 0)
		return log_errno(errno, FE_FMT ": cannot set the pipe size to %u bytes",
				 FE_ARG(fe), size);
	if (!data)
		return 0;
	fl = fcntl(wfd, F_GETFL);
	if (fl < 0 || fcntl(wfd, F_SETFL, fl | O_NONBLOCK) < 0)
		return log_errno(errno, FE_FMT ": F_SETFL", FE_ARG(fe));
	ret = files_write_all(wfd, data->pipe_data.data, data->pipe_data.len);
	if (ret)
		log_errno(ret, FE_FMT ": cannot put its %zu bytes of data back", FE_ARG(fe),
			  data->pipe_data.len);
	if (fcntl(wfd, F_SETFL, fl) < 0 && !ret)
		ret = log_errno(errno, FE_FMT ": F_SETFL", FE_ARG(fe));
	return ret;
}

static struct files_obj *pipe_obj(const FileEntry *fe, struct files_rst *fr)
{
	struct files_obj *o = files_rst_obj(fr, FOBJ_PIPE, 0, fe->pipe_ino, true);
	const FileEntry *data;
	uint32_t size;
	bool direct;
	int p[2];

	if (!o) {
		log_errno(ENOMEM, FE_FMT, FE_ARG(fe));
		return NULL;
	}
	if (o->fd >= 0)
		return o;
	if (group_info(fr, fe, false, &size, &data, &direct))
		return NULL;
	if (pipe2(p, direct ? O_DIRECT : 0) < 0) {
		log_errno(errno, FE_FMT ": cannot make a pipe", FE_ARG(fe));
		return NULL;
	}
	if (refill(fe, p[1], size, data)) {
		close(p[0]);
		close(p[1]);
		return NULL;
	}
	o->fd = p[0];
	o->fd2 = p[1];
	return o;
}

static int pipe_open(const FileEntry *fe, struct files_rst *fr)
{
	struct files_obj *o = pipe_obj(fe, fr);
	int acc = fe->flags & O_ACCMODE, fd;

	if (!o)
		return -EINVAL;
	if (acc == O_RDONLY)
		fd = o->uses++ ? files_reopen(o->fd, O_RDONLY) : dup(o->fd);
	else if (acc == O_WRONLY)
		fd = o->uses2++ ? files_reopen(o->fd2, O_WRONLY) : dup(o->fd2);
	else
		fd = files_reopen(o->fd, O_RDWR);
	if (fd < 0)
		return log_errno(errno, FE_FMT ": cannot open an end of the pipe", FE_ARG(fe));
	return fd;
}

static struct files_obj *fifo_obj(const FileEntry *fe, struct files_rst *fr)
{
	struct files_obj *o = files_rst_obj(fr, FOBJ_FIFO, fe->dev, fe->ino, true);
	const FileEntry *data;
	uint32_t size;
	bool direct;
	struct stat st;
	int fd;

	if (!o) {
		log_errno(ENOMEM, FE_FMT, FE_ARG(fe));
		return NULL;
	}
	if (o->fd >= 0)
		return o;
	if (group_info(fr, fe, true, &size, &data, &direct))
		return NULL;
	if (fe->deleted) {
		/* in a directory of our own: no name in /tmp anyone could take first */
		char dir[] = "/tmp/kup-deleted-fifo-XXXXXX", tmp[64];

		if (!mkdtemp(dir)) {
			log_errno(errno, FE_FMT ": cannot make a directory in /tmp for the deleted FIFO",
				  FE_ARG(fe));
			return NULL;
		}
		snprintf(tmp, sizeof(tmp), "%s/fifo", dir);
		if (mkfifo(tmp, fe->has_mode ? (fe->mode & 0777) : 0600) < 0) {
			log_errno(errno, FE_FMT ": cannot make %s for the deleted FIFO", FE_ARG(fe), tmp);
			rmdir(dir);
			return NULL;
		}
		fd = open(tmp, O_RDWR | O_NONBLOCK | O_NOFOLLOW);
		if (fd < 0)
			log_errno(errno, FE_FMT ": cannot open %s", FE_ARG(fe), tmp);
		unlink(tmp);
		rmdir(dir);
		if (fd < 0)
			return NULL;
	} else {
		fd = open(fe->path, O_RDWR | O_NONBLOCK);
		if (fd < 0) {
			log_errno(errno, FE_FMT ": cannot open the FIFO", FE_ARG(fe));
			return NULL;
		}
		if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
			log_err(FE_FMT ": is not a FIFO any more", FE_ARG(fe));
			close(fd);
			return NULL;
		}
		if (st.st_ino != fe->ino)
			log_warn(FE_FMT ": is another FIFO now (inode %llu, was %llu)", FE_ARG(fe),
				 (unsigned long long)st.st_ino, (unsigned long long)fe->ino);
	}
	if (refill(fe, fd, size, data)) {
		close(fd);
		return NULL;
	}
	o->fd = fd;
	return o;
}

static int fifo_open(const FileEntry *fe, struct files_rst *fr)
{
	struct files_obj *o = fifo_obj(fe, fr);
	int fd;

	if (!o)
		return -EINVAL;
	/* O_NONBLOCK: never waits (our O_RDWR holder is a reader and a writer);
	 * the dumped status flags are set afterwards. */
	fd = files_reopen(o->fd, (fe->flags & O_ACCMODE) | O_NONBLOCK);
	if (fd < 0)
		return log_errno(errno, FE_FMT ": cannot reopen the FIFO", FE_ARG(fe));
	return fd;
}

const struct file_kind_ops files_pipe_ops = {
	.kind = FILE_KIND__FILE_PIPE,
	.name = "pipe",
	.match = pipe_match,
	.dump = pipe_dump,
	.check = pipe_check,
	.dump_end = pipe_dump_end,
	.validate = pipe_validate,
	.open = pipe_open,
};

const struct file_kind_ops files_fifo_ops = {
	.kind = FILE_KIND__FILE_FIFO,
	.name = "FIFO",
	.match = fifo_match,
	.dump = fifo_dump,
	.check = fifo_check,
	.validate = fifo_validate,
	.open = fifo_open,
};
