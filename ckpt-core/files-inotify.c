// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * inotify: the watches ("inotify wd:... f_handle:..." lines of fdinfo).
 * Each watched inode is found again from its file handle with
 * open_by_handle_at() on a mount of its filesystem (from the dumped
 * process's mountinfo) and named by readlink(/proc/self/fd/N).  Watches on
 * deleted inodes, and filesystems that give no handle, are refused.
 *
 * Restore: inotify_init1(), then inotify_add_watch() in increasing wd order.
 * The kernel hands out wds cyclically (last + 1), so a gap is skipped with
 * a watch on a private memfd removed at once; each wd got is checked.  The
 * IN_IGNORED events those removals queue are drained.  Events queued at
 * dump time are not kept.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "files.h"
#include "log.h"

#define IN_MASK_OK (IN_ALL_EVENTS | IN_ONESHOT | IN_EXCL_UNLINK | IN_DONT_FOLLOW | IN_ONLYDIR)
#define HANDLE_MAX 128

static bool inotify_match(const struct fd_info *fi)
{
	return !strcmp(fi->link, "anon_inode:inotify");
}

static int hexbytes(const char *s, unsigned char *out, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		unsigned int v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = v;
	}
	return 0;
}

static int watch_path(const struct fd_info *fi, const char *line, InotifyWd *w)
{
	unsigned int wd, sdev, mask, ign, hb, ht;
	unsigned long ino;
	int off = 0, mfd, fd;
	struct {
		struct file_handle fh;
		unsigned char buf[HANDLE_MAX];
	} h;
	char lnk[64], path[4096];
	struct stat st;
	ssize_t l;

	if (sscanf(line, "inotify wd:%x ino:%lx sdev:%x mask:%x ignored_mask:%x "
		   "fhandle-bytes:%x fhandle-type:%x f_handle:%n",
		   &wd, &ino, &sdev, &mask, &ign, &hb, &ht, &off) != 7 || !off) {
		log_err(FI_FMT ": inotify watch without a file handle ('%.80s'): its filesystem "
			"cannot be supported", FI_ARG(fi), line);
		return -EOPNOTSUPP;
	}
	if (hb > HANDLE_MAX || hexbytes(line + off, h.fh.f_handle, hb)) {
		log_err(FI_FMT ": inotify wd %u: bad file handle", FI_ARG(fi), wd);
		return -EINVAL;
	}
	h.fh.handle_bytes = hb;
	h.fh.handle_type = ht;
	mfd = files_mount_fd(fi->d, NULL, fi->pid, makedev(sdev >> 20, sdev & 0xfffff));
	if (mfd < 0)
		return mfd;
	fd = open_by_handle_at(mfd, &h.fh, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return log_errno(errno, FI_FMT ": inotify wd %u: cannot find inode %lu again "
				 "(open_by_handle_at)", FI_ARG(fi), wd, ino);
	snprintf(lnk, sizeof(lnk), "/proc/self/fd/%d", fd);
	l = readlink(lnk, path, sizeof(path) - 1);
	if (l < 0 || fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return log_errno(e, FI_FMT ": inotify wd %u: cannot name inode %lu", FI_ARG(fi),
				 wd, ino);
	}
	close(fd);
	path[l] = 0;
	if (st.st_ino == ino && files_strip_deleted(path) && path[0] == '/' && !st.st_nlink &&
	    S_ISREG(st.st_mode)) {
		/* a removed file: kept if the tree holds it (checked at dump_end) */
		struct files_obj *o = files_dump_obj(fi->d, FOBJ_INOTIFY_DEL, st.st_dev, ino, true);

		if (!o)
			return -ENOMEM;
		if (!o->flag) {
			o->flag = true;
			o->pid = fi->pid;
			o->fdnum = fi->fd;
		}
		w->has_deleted_dev = w->has_deleted_ino = true;
		w->deleted_dev = st.st_dev;
		w->deleted_ino = ino;
	} else if (st.st_ino != ino || files_strip_deleted(path) || path[0] != '/') {
		log_err(FI_FMT ": inotify wd %u watches inode %lu, which has no path (%s): "
			"not supported", FI_ARG(fi), wd, ino, path);
		return -EOPNOTSUPP;
	}
	w->wd = wd;
	w->mask = mask;
	w->path = strdup(path);
	return w->path ? 0 : -ENOMEM;
}

static int cmp_wd(const void *a, const void *b)
{
	const InotifyWd *x = *(InotifyWd *const *)a, *y = *(InotifyWd *const *)b;
	return x->wd < y->wd ? -1 : x->wd > y->wd;
}

static int inotify_dump(const struct fd_info *fi, FileEntry *fe)
{
	const char *p = fi->fdinfo;
	size_t cap = 0;
	int ret;

	while (p && *p) {
		if (!strncmp(p, "inotify wd:", 11)) {
			const char *e = strchr(p, '\n');
			size_t len = e ? (size_t)(e - p) : strlen(p);
			char *line = strndup(p, len);
			InotifyWd *w;

			if (!line)
				return -ENOMEM;
			if (fe->n_wds == cap) {
				InotifyWd **nw = realloc(fe->wds, (cap = cap ? cap * 2 : 8) * sizeof(*nw));
				if (!nw) {
					free(line);
					return -ENOMEM;
				}
				fe->wds = nw;
			}
			w = malloc(sizeof(*w));
			if (!w) {
				free(line);
				return -ENOMEM;
			}
			inotify_wd__init(w);
			fe->wds[fe->n_wds++] = w;
			ret = watch_path(fi, line, w);
			free(line);
			if (ret)
				return ret;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	if (fe->n_wds)
		qsort(fe->wds, fe->n_wds, sizeof(*fe->wds), cmp_wd);
	return 0;
}

/* Every watch on a removed file needs the file in the image: a deleted
 * file entry of the tree (an fd or a mapping of it). */
static int inotify_dump_end(struct files_dump *d)
{
	for (struct files_obj *o = files_dump_obj_next(d, NULL); o; o = files_dump_obj_next(d, o)) {
		struct files_obj *c;

		if (o->tag != FOBJ_INOTIFY_DEL)
			continue;
		c = files_dump_obj(d, FOBJ_CONTENT, o->a, o->b, false);
		if (!c || !c->fe || c->fe->kind != FILE_KIND__FILE_REG) {
			log_err("pid %d fd %d: inotify watches inode %llu, a removed file that the "
				"tree does not hold open: not supported", o->pid, o->fdnum,
				(unsigned long long)o->b);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

static int inotify_validate(const FileEntry *fe)
{
	for (size_t i = 0; i < fe->n_wds; i++) {
		const InotifyWd *w = fe->wds[i];
		if (w->wd <= 0 || w->wd > FILES_LIST_MAX || !files_path_ok(w->path) ||
		    !(w->mask & IN_ALL_EVENTS) || (w->mask & ~IN_MASK_OK) ||
		    w->has_deleted_dev != w->has_deleted_ino) {
			log_err("file %u (inotify): bad watch %zu (wd %d mask %x)", fe->id, i,
				w->wd, w->mask);
			return -EINVAL;
		}
	}
	if (fe->flags & (O_PATH | O_DIRECTORY | O_APPEND)) {
		log_err("file %u (inotify): bad flags 0%o", fe->id, fe->flags);
		return -EINVAL;
	}
	return 0;
}

static int inotify_open(const FileEntry *fe, struct files_rst *fr)
{
	InotifyWd **wds = NULL;
	char dpath[64], wpath[PATH_MAX];
	int fd, dummy = -1, next = 1, ret = 0;
	bool gaps = false;

	fd = inotify_init1(0);
	if (fd < 0)
		return log_errno(errno, "file %u (inotify): cannot create", fe->id);
	if (!fe->n_wds)
		return fd;
	wds = malloc(fe->n_wds * sizeof(*wds));
	if (!wds) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(wds, fe->wds, fe->n_wds * sizeof(*wds));
	qsort(wds, fe->n_wds, sizeof(*wds), cmp_wd);
	for (size_t i = 0; i < fe->n_wds; i++) {
		const InotifyWd *w = wds[i];
		uint32_t mask = w->mask & IN_MASK_OK;
		struct stat st;
		int got;

		if (w->wd < next) {
			log_err("file %u (inotify): wd %d appears twice", fe->id, w->wd);
			ret = -EINVAL;
			goto out;
		}
		while (next < w->wd) {
			if (dummy < 0) {
				dummy = memfd_create("kup-inotify-gap", MFD_CLOEXEC);
				if (dummy < 0) {
					ret = log_errno(errno, "file %u (inotify): memfd", fe->id);
					goto out;
				}
				snprintf(dpath, sizeof(dpath), "/proc/self/fd/%d", dummy);
			}
			got = inotify_add_watch(fd, dpath, IN_ATTRIB);
			if (got != next) {
				ret = log_errno(got < 0 ? errno : EINVAL, "file %u (inotify): cannot "
						"skip wd %d (got %d)", fe->id, next, got);
				goto out;
			}
			inotify_rm_watch(fd, got);
			gaps = true;
			next++;
		}
		if (w->has_deleted_ino) {
			/* the recreated file, through its /proc/self/fd link */
			int dfd = files_reg_deleted_fd(fr, w->deleted_dev, w->deleted_ino);

			if (dfd < 0) {
				ret = dfd;
				goto out;
			}
			snprintf(wpath, sizeof(wpath), "/proc/self/fd/%d", dfd);
			mask &= ~IN_DONT_FOLLOW;
		} else {
			snprintf(wpath, sizeof(wpath), "%s", w->path);
			if (!lstat(w->path, &st) && S_ISLNK(st.st_mode))
				mask |= IN_DONT_FOLLOW;
		}
		got = inotify_add_watch(fd, wpath, mask);
		if (got < 0) {
			ret = log_errno(errno, "file %u (inotify): cannot watch %s (wd %d)", fe->id,
					w->path, w->wd);
			goto out;
		}
		if (got != w->wd) {
			log_err("file %u (inotify): the watch on %s came back as wd %d instead of %d",
				fe->id, w->path, got, w->wd);
			ret = -EINVAL;
			goto out;
		}
		next = w->wd + 1;
	}
	if (gaps) {	/* drop the IN_IGNORED events of the gap watches */
		char buf[4096];
		int fl = fcntl(fd, F_GETFL);

		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
		while (read(fd, buf, sizeof(buf)) > 0)
			;
		fcntl(fd, F_SETFL, fl);
	}
out:
	free(wds);
	if (dummy >= 0)
		close(dummy);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

const struct file_kind_ops files_inotify_ops = {
	.kind = FILE_KIND__FILE_INOTIFY,
	.name = "inotify",
	.match = inotify_match,
	.dump = inotify_dump,
	.dump_end = inotify_dump_end,
	.validate = inotify_validate,
	.open = inotify_open,
};
