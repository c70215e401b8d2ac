// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fanotify groups and their marks.
 *
 * Dump: "fanotify flags:F event-flags:E" and one line per mark in fdinfo.
 * Each mark is kept by a path, as the dumped process sees it:
 *  - an inode mark ("ino: sdev: ... f_handle:"): the inode found again from
 *    its file handle with open_by_handle_at() on a mount of its device,
 *    named by readlink (an inode without a path is refused);
 *  - a mount mark ("mnt_id:"): the mount point of that mount in the
 *    process's mountinfo;
 *  - a filesystem mark ("sdev:" alone): the mount point of a mount of that
 *    device.
 * with its mask, ignore mask and flags (ignored mask surviving modify,
 * evictable, FAN_MARK_IGNORE).
 *
 * Restore: fanotify_init() with the same flags, then fanotify_mark() for
 * each mark on its path (the ignore mask in a second call).  Events queued
 * at dump time, and permission events waiting for an answer, are not kept
 * (a process waiting on a permission event was interrupted and asks again).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "files.h"
#include "log.h"

#define HANDLE_MAX	128
#ifndef FAN_MARK_EVICTABLE
#define FAN_MARK_EVICTABLE	0x00000200
#endif
#ifndef FAN_MARK_IGNORE
#define FAN_MARK_IGNORE		0x00000400
#endif
#define MFLAGS_OK	(FAN_MARK_IGNORED_SURV_MODIFY | FAN_MARK_EVICTABLE | FAN_MARK_IGNORE)
/* fanotify_init() flags a group can show (the class, FAN_CLOEXEC, ...,
 * FAN_REPORT_*): anything the kernel takes; checked by fanotify_init(). */
#define FAN_INIT_OK	0x0000ffffu
#define FAN_EVENT_FLAGS_OK (O_ACCMODE | O_LARGEFILE | 0100000 | O_CLOEXEC | O_APPEND | O_DSYNC | \
			    O_NOATIME | O_NONBLOCK | O_SYNC)

static bool fanotify_match(const struct fd_info *fi)
{
	return !strcmp(fi->link, "anon_inode:[fanotify]");
}

static int hex_handle(const char *s, unsigned char *out, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		unsigned int v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (unsigned char)v;
	}
	return 0;
}

/* The mount point (as @pid sees it) of mount @mnt_id, or of a mount of
 * device @dev when @mnt_id < 0. */
static int mount_point(pid_t pid, int mnt_id, dev_t dev, char *out, size_t len)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	int ret = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/mountinfo", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (ret && getline(&line, &cap, f) > 0) {
		unsigned int id, a, b;
		char mnt[4096];

		if (sscanf(line, "%u %*u %u:%u %*s %4095s", &id, &a, &b, mnt) != 4)
			continue;
		if (mnt_id >= 0 ? (int)id != mnt_id : (a != major(dev) || b != minor(dev)))
			continue;
		files_unescape(mnt);
		if (strlen(mnt) < len) {
			strcpy(out, mnt);
			ret = 0;
		}
	}
	free(line);
	fclose(f);
	return ret;
}

/* One mark line (after "fanotify "). */
static int mark_dump(const struct fd_info *fi, const char *line, FanotifyMarkEntry *m)
{
	unsigned int mnt_id, sdev, mflags, mask, ign, hb, ht;
	unsigned long ino;
	char path[PATH_MAX];
	int off = 0;

	if (sscanf(line, "ino:%lx sdev:%x mflags:%x mask:%x ignored_mask:%x fhandle-bytes:%x "
		   "fhandle-type:%x f_handle:%n", &ino, &sdev, &mflags, &mask, &ign, &hb, &ht,
		   &off) == 7 && off) {
		struct {
			struct file_handle fh;
			unsigned char buf[HANDLE_MAX];
		} h;
		char lnk[64];
		struct stat st;
		ssize_t l;
		int mfd, fd;

		if (hb > HANDLE_MAX || hex_handle(line + off, h.fh.f_handle, hb)) {
			log_err(FI_FMT ": fanotify: bad file handle of inode %lu", FI_ARG(fi), ino);
			return -EINVAL;
		}
		h.fh.handle_bytes = hb;
		h.fh.handle_type = (int)ht;
		mfd = files_mount_fd(fi->d, NULL, fi->pid, makedev(sdev >> 20, sdev & 0xfffff));
		if (mfd < 0)
			return mfd;
		fd = open_by_handle_at(mfd, &h.fh, O_PATH | O_CLOEXEC);
		if (fd < 0)
			return log_errno(errno, FI_FMT ": fanotify: cannot find the marked inode %lu "
					 "again (open_by_handle_at)", FI_ARG(fi), ino);
		snprintf(lnk, sizeof(lnk), "/proc/self/fd/%d", fd);
		l = readlink(lnk, path, sizeof(path) - 1);
		if (l < 0 || fstat(fd, &st) < 0) {
			int e = errno;
			close(fd);
			return log_errno(e, FI_FMT ": fanotify: cannot name inode %lu", FI_ARG(fi), ino);
		}
		close(fd);
		path[l] = 0;
		if (st.st_ino != ino || files_strip_deleted(path) || !files_path_ok(path)) {
			log_err(FI_FMT ": fanotify marks inode %lu, which has no path (%s): not "
				"supported", FI_ARG(fi), ino, path);
			return -EOPNOTSUPP;
		}
		m->kind = FANOTIFY_MARK_KIND__FAN_MARK_KIND_INODE;
	} else if (sscanf(line, "mnt_id:%x mflags:%x mask:%x ignored_mask:%x", &mnt_id, &mflags,
			  &mask, &ign) == 4) {
		if (mount_point(fi->pid, (int)mnt_id, 0, path, sizeof(path))) {
			log_err(FI_FMT ": fanotify marks mount %u, which pid %d does not see",
				FI_ARG(fi), mnt_id, fi->pid);
			return -EOPNOTSUPP;
		}
		m->kind = FANOTIFY_MARK_KIND__FAN_MARK_KIND_MOUNT;
	} else if (sscanf(line, "sdev:%x mflags:%x mask:%x ignored_mask:%x", &sdev, &mflags,
			  &mask, &ign) == 4) {
		if (mount_point(fi->pid, -1, makedev(sdev >> 20, sdev & 0xfffff), path,
				sizeof(path))) {
			log_err(FI_FMT ": fanotify marks the filesystem of device %u:%u, which pid %d "
				"has no mount of", FI_ARG(fi), sdev >> 20, sdev & 0xfffff, fi->pid);
			return -EOPNOTSUPP;
		}
		m->kind = FANOTIFY_MARK_KIND__FAN_MARK_KIND_SB;
	} else {
		log_err(FI_FMT ": fanotify: cannot parse mark '%.80s'", FI_ARG(fi), line);
		return -EINVAL;
	}
	if (mflags & ~MFLAGS_OK) {
		log_err(FI_FMT ": fanotify mark on %s with flags 0x%x: not supported", FI_ARG(fi),
			path, mflags);
		return -EOPNOTSUPP;
	}
	m->path = strdup(path);
	m->mask = mask;
	m->ignored_mask = ign;
	m->mflags = mflags;
	return m->path ? 0 : -ENOMEM;
}

static int fanotify_dump(const struct fd_info *fi, FileEntry *fe)
{
	const char *v = files_fdinfo_field(fi->fdinfo, "fanotify flags:");
	unsigned int flags, eflags;
	size_t cap = 0;

	if (!v || sscanf(v, "%x event-flags:%x", &flags, &eflags) != 2) {
		log_err(FI_FMT ": fanotify without its flags in fdinfo", FI_ARG(fi));
		return -EINVAL;
	}
	fe->has_fan_flags = fe->has_fan_event_flags = true;
	fe->fan_flags = flags;
	fe->fan_event_flags = eflags;
	for (const char *p = fi->fdinfo; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		FanotifyMarkEntry *m;
		int ret;

		if (strncmp(p, "fanotify ", 9) || !strncmp(p, "fanotify flags:", 15))
			continue;
		if (fe->n_fan_marks == cap) {
			FanotifyMarkEntry **nm = realloc(fe->fan_marks,
							 (cap = cap ? 2 * cap : 8) * sizeof(*nm));
			if (!nm)
				return -ENOMEM;
			fe->fan_marks = nm;
		}
		m = malloc(sizeof(*m));
		if (!m)
			return -ENOMEM;
		fanotify_mark_entry__init(m);
		fe->fan_marks[fe->n_fan_marks++] = m;
		{
			const char *e = strchr(p, '\n');
			char *line = strndup(p + 9, e ? (size_t)(e - p - 9) : strlen(p + 9));

			if (!line)
				return -ENOMEM;
			ret = mark_dump(fi, line, m);
			free(line);
		}
		if (ret)
			return ret;
	}
	return 0;
}

static int fanotify_validate(const FileEntry *fe)
{
	if (!fe->has_fan_flags || !fe->has_fan_event_flags || (fe->fan_flags & ~FAN_INIT_OK) ||
	    (fe->fan_event_flags & ~FAN_EVENT_FLAGS_OK) || fe->n_fan_marks > FILES_LIST_MAX ||
	    (fe->n_fan_marks && !fe->fan_marks)) {
		log_err("file %u (fanotify): bad flags or marks", fe->id);
		return -EINVAL;
	}
	for (size_t i = 0; i < fe->n_fan_marks; i++) {
		const FanotifyMarkEntry *m = fe->fan_marks[i];

		if (!m || !files_path_ok(m->path) || (m->mflags & ~MFLAGS_OK) ||
		    (m->kind != FANOTIFY_MARK_KIND__FAN_MARK_KIND_INODE &&
		     m->kind != FANOTIFY_MARK_KIND__FAN_MARK_KIND_MOUNT &&
		     m->kind != FANOTIFY_MARK_KIND__FAN_MARK_KIND_SB)) {
			log_err("file %u (fanotify): bad mark %zu", fe->id, i);
			return -EINVAL;
		}
	}
	return 0;
}

static int fanotify_open(const FileEntry *fe, struct files_rst *fr)
{
	int fd = fanotify_init(fe->fan_flags | FAN_CLOEXEC, fe->fan_event_flags);

	if (fd < 0)
		return log_errno(errno, "file %u (fanotify): cannot create it (flags 0x%x, event "
				 "flags 0%o)", fe->id, fe->fan_flags, fe->fan_event_flags);
	for (size_t i = 0; i < fe->n_fan_marks; i++) {
		const FanotifyMarkEntry *m = fe->fan_marks[i];
		unsigned int how = m->kind == FANOTIFY_MARK_KIND__FAN_MARK_KIND_MOUNT ? FAN_MARK_MOUNT :
				   m->kind == FANOTIFY_MARK_KIND__FAN_MARK_KIND_SB ? FAN_MARK_FILESYSTEM : 0;
		unsigned int keep = m->mflags & FAN_MARK_EVICTABLE;
		int r = 0;

		if (m->mask)
			r = fanotify_mark(fd, FAN_MARK_ADD | how | keep, m->mask, AT_FDCWD, m->path);
		if (!r && m->ignored_mask)
			r = fanotify_mark(fd, FAN_MARK_ADD | how | keep |
					  ((m->mflags & FAN_MARK_IGNORE) ? FAN_MARK_IGNORE :
					   FAN_MARK_IGNORED_MASK) |
					  (m->mflags & FAN_MARK_IGNORED_SURV_MODIFY),
					  m->ignored_mask, AT_FDCWD, m->path);
		if (r) {
			int e = errno;
			close(fd);
			return log_errno(e, "file %u (fanotify): cannot mark %s (mask 0x%x, ignored "
					 "0x%x)", fe->id, m->path, m->mask, m->ignored_mask);
		}
	}
	return fd;
}

const struct file_kind_ops files_fanotify_ops = {
	.kind = FILE_KIND__FILE_FANOTIFY,
	.name = "fanotify",
	.match = fanotify_match,
	.dump = fanotify_dump,
	.dump_checks = true,
	.validate = fanotify_validate,
	.open = fanotify_open,
};
