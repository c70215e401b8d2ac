// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Regular files, directories and O_PATH fds: reopened by path.
 *
 * Deleted files (link "... (deleted)", st_nlink == 0) keep their content in
 * the image (once per inode, on the first entry that saw it) and come back as
 * an unlinked O_TMPFILE in their original directory, or in /tmp when that is
 * gone or cannot hold one; every entry of the inode reopens that one file.
 * Deleted directories come back as an empty directory made in /tmp and
 * removed at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "log.h"

#define O_TMPFILE_BIT	020000000	/* __O_TMPFILE without O_DIRECTORY */

static bool reg_match(const struct fd_info *fi)
{
	return S_ISREG(fi->st.st_mode) ||
	       ((fi->flags & O_PATH) && !S_ISDIR(fi->st.st_mode));
}

static bool dir_match(const struct fd_info *fi)
{
	return S_ISDIR(fi->st.st_mode);
}

static const char *type_name(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG: return "regular file";
	case S_IFDIR: return "directory";
	case S_IFCHR: return "character device";
	case S_IFBLK: return "block device";
	case S_IFIFO: return "FIFO";
	case S_IFSOCK: return "socket";
	case S_IFLNK: return "symlink";
	default: return "file";
	}
}

static int path_dump(const struct fd_info *fi, FileEntry *fe, bool dir)
{
	char path[sizeof(fi->link)];
	bool suffix, deleted;

	memcpy(path, fi->link, sizeof(path));
	suffix = files_strip_deleted(path);
	if (!files_path_ok(path)) {
		log_err(FI_FMT ": '%s' is not a path that can be reopened", FI_ARG(fi), fi->link);
		return -EOPNOTSUPP;
	}
	deleted = fi->st.st_nlink == 0;
	if (suffix && !deleted) {
		log_err(FI_FMT ": %s was unlinked but still has %lu other hard link(s): not supported",
			FI_ARG(fi), fi->link, (unsigned long)fi->st.st_nlink);
		return -EOPNOTSUPP;
	}
	/* The restore opens the path as kup sees it: it must be this file.  A
	 * process in another mount namespace (a service's private /tmp) or
	 * root sees other files under the same names. */
	if (!deleted && (S_ISREG(fi->st.st_mode) || S_ISDIR(fi->st.st_mode))) {
		struct stat here;

		if (stat(path, &here) || here.st_dev != fi->st.st_dev || here.st_ino != fi->st.st_ino) {
			log_err(FI_FMT ": %s is not the file the process sees under that name "
				"(another mount namespace or root, e.g. a service's private /tmp): "
				"not supported", FI_ARG(fi), path);
			return -EOPNOTSUPP;
		}
	}
	fe->path = strdup(path);
	if (!fe->path)
		return -ENOMEM;
	/* tmpfile bits do not reopen; O_NOFOLLOW matters only for O_PATH */
	fe->flags &= ~O_TMPFILE_BIT;
	if (!dir)
		fe->flags &= ~O_DIRECTORY;
	if (!(fe->flags & O_PATH))
		fe->flags &= ~O_NOFOLLOW;
	fe->has_ino = fe->has_dev = fe->has_mode = true;
	fe->ino = fi->st.st_ino;
	fe->dev = fi->st.st_dev;
	fe->mode = fi->st.st_mode;
	fe->has_uid = fe->has_gid = true;
	fe->uid = fi->st.st_uid;
	fe->gid = fi->st.st_gid;
	fe->has_mtime_ns = true;
	fe->mtime_ns = (uint64_t)fi->st.st_mtim.tv_sec * 1000000000ull + fi->st.st_mtim.tv_nsec;
	if (S_ISREG(fi->st.st_mode)) {
		fe->has_size = true;
		fe->size = fi->st.st_size;
	}
	if (!deleted)
		return 0;
	fe->has_deleted = fe->deleted = true;
	if (dir)
		return 0;
	if (!S_ISREG(fi->st.st_mode)) {
		log_err(FI_FMT ": deleted %s %s: not supported", FI_ARG(fi),
			type_name(fi->st.st_mode), fi->link);
		return -EOPNOTSUPP;
	}
	struct files_obj *o = files_dump_obj(fi->d, FOBJ_CONTENT, fi->st.st_dev, fi->st.st_ino, true);
	if (!o)
		return -ENOMEM;
	/* never more privilege than the process had: see set_owner_times() */
	if (fe->mode & (S_ISUID | S_ISGID))
		log_warn(FI_FMT ": deleted file %s has mode %04o: a restore recreates it "
			 "without its setuid/setgid bits", FI_ARG(fi), path,
			 (unsigned)(fe->mode & 07777));
	if (o->fe)		/* content already in another entry */
		return 0;
	int ret = files_read_content(fi, fi->st.st_size, &fe->content);
	if (ret)
		return ret;
	fe->has_content = true;
	o->fe = fe;
	return 0;
}

static int reg_dump(const struct fd_info *fi, FileEntry *fe)
{
	return path_dump(fi, fe, false);
}

static int dir_dump(const struct fd_info *fi, FileEntry *fe)
{
	return path_dump(fi, fe, true);
}

static int path_validate(const FileEntry *fe, bool dir)
{
	if (!files_path_ok(fe->path)) {
		log_err("file %u (%s): missing or bad path", fe->id, dir ? "directory" : "file");
		return -EINVAL;
	}
	if (fe->deleted && (!fe->has_dev || !fe->has_ino)) {
		log_err(FE_FMT ": deleted without its inode number", FE_ARG(fe));
		return -EINVAL;
	}
	if (fe->has_content && (!fe->deleted || dir)) {
		log_err(FE_FMT ": content for a file that is not a deleted file", FE_ARG(fe));
		return -EINVAL;
	}
	if (fe->has_content && (!fe->has_size || fe->content.len != fe->size)) {
		log_err(FE_FMT ": content of %zu bytes for a file of %llu", FE_ARG(fe),
			fe->content.len, (unsigned long long)fe->size);
		return -EINVAL;
	}
	if (fe->has_mode && !dir && !(fe->flags & O_PATH) && !S_ISREG(fe->mode)) {
		log_err(FE_FMT ": mode 0%o is not a regular file", FE_ARG(fe), fe->mode);
		return -EINVAL;
	}
	if (fe->has_mode && dir && !S_ISDIR(fe->mode)) {
		log_err(FE_FMT ": mode 0%o is not a directory", FE_ARG(fe), fe->mode);
		return -EINVAL;
	}
	if (fe->deleted && !dir && fe->has_mode && !S_ISREG(fe->mode)) {
		log_err(FE_FMT ": deleted file that is not a regular file", FE_ARG(fe));
		return -EINVAL;
	}
	return 0;
}

static int reg_validate(const FileEntry *fe)
{
	return path_validate(fe, false);
}

static int dir_validate(const FileEntry *fe)
{
	return path_validate(fe, true);
}

/* Flags to (re)open an entry with. */
static int open_flags(const FileEntry *fe)
{
	return (fe->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_TMPFILE_BIT)) | O_NOCTTY;
}

static int seek_to(const FileEntry *fe, int fd)
{
	if ((fe->flags & O_PATH) || !fe->has_pos || !fe->pos)
		return 0;
	if (lseek(fd, (off_t)fe->pos, SEEK_SET) < 0)
		return log_errno(errno, FE_FMT ": cannot seek to %llu", FE_ARG(fe),
				 (unsigned long long)fe->pos);
	return 0;
}

/* An unlinked regular file in @dir, or -errno. */
static int tmpfile_in(const char *dir)
{
	int fd = open(dir, O_TMPFILE | O_RDWR, 0600);
	return fd < 0 ? -errno : fd;
}

static const FileEntry *content_owner(const struct files_rst *fr, const FileEntry *fe)
{
	for (size_t i = 0; i < files_rst_count(fr); i++) {
		const FileEntry *x = files_rst_nth(fr, i);
		if (x->has_content && x->deleted && x->has_dev && x->has_ino &&
		    x->dev == fe->dev && x->ino == fe->ino &&
		    (x->kind == FILE_KIND__FILE_REG || x->kind == FILE_KIND__FILE_DIR))
			return x;
	}
	return NULL;
}

/*
 * Owner first, then the mode (a chown clears setuid and setgid bits).  A
 * file the restore creates never gets setuid or setgid bits (nor file
 * capabilities: no extended attribute is restored): root would be making a
 * privileged program out of bytes from an image.  The dump warns about such
 * a file, naming pid and fd.
 */
static void set_owner_times(const FileEntry *fe, int fd)
{
	unsigned int mode = fe->mode & 07777;

	if (fe->has_uid && fe->has_gid && fchown(fd, fe->uid, fe->gid) < 0)
		log_warn_errno(errno, FE_FMT ": cannot give it to %u:%u", FE_ARG(fe),
			       fe->uid, fe->gid);
	if (fe->has_mode && (mode & (S_ISUID | S_ISGID)) && !S_ISDIR(fe->mode)) {
		log_warn(FE_FMT ": deleted file with mode %04o recreated without its "
			 "setuid/setgid bits", FE_ARG(fe), mode);
		mode &= ~(S_ISUID | S_ISGID);
	}
	if (fe->has_mode && fchmod(fd, mode) < 0)
		log_warn_errno(errno, FE_FMT ": cannot set mode 0%o", FE_ARG(fe), mode);
	if (fe->has_mtime_ns) {
		struct timespec ts[2] = {
			{ .tv_nsec = UTIME_OMIT },
			{ .tv_sec = fe->mtime_ns / 1000000000ull,
			  .tv_nsec = fe->mtime_ns % 1000000000ull },
		};
		futimens(fd, ts);
	}
}

/* The recreated inode of a deleted regular file (shared by its entries). */
static int deleted_reg_inode(const FileEntry *fe, struct files_rst *fr)
{
	struct files_obj *o = files_rst_obj(fr, FOBJ_DELETED, fe->dev, fe->ino, true);
	const FileEntry *own;
	char dir[PATH_MAX];
	const char *where;
	int fd, ret;

	if (!o)
		return log_errno(ENOMEM, FE_FMT, FE_ARG(fe));
	if (o->fd >= 0)
		return o->fd;
	own = content_owner(fr, fe);
	if (!own) {
		log_err(FE_FMT ": deleted file without its content in the image", FE_ARG(fe));
		return -EINVAL;
	}
	snprintf(dir, sizeof(dir), "%s", own->path);
	where = dirname(dir);
	fd = tmpfile_in(where);
	if (fd < 0) {
		log_debug(FE_FMT ": no O_TMPFILE in %s (%s), using /tmp", FE_ARG(fe), where,
			  strerror(-fd));
		where = "/tmp";
		fd = tmpfile_in(where);
	}
	if (fd < 0)
		return log_errno(fd, FE_FMT ": cannot recreate the deleted file (O_TMPFILE in %s)",
				 FE_ARG(fe), where);
	ret = files_write_all(fd, own->content.data, own->content.len);
	if (ret) {
		close(fd);
		return log_errno(ret, FE_FMT ": cannot write the %zu bytes of the deleted file in %s",
				 FE_ARG(fe), own->content.len, where);
	}
	set_owner_times(own, fd);
	log_debug(FE_FMT ": deleted file recreated in %s", FE_ARG(fe), where);
	o->fd = fd;
	return fd;
}

static int deleted_dir_inode(const FileEntry *fe, struct files_rst *fr)
{
	struct files_obj *o = files_rst_obj(fr, FOBJ_DELETED, fe->dev, fe->ino, true);
	char tmpl[] = "/tmp/kup-deleted-dir-XXXXXX";
	int fd;

	if (!o)
		return log_errno(ENOMEM, FE_FMT, FE_ARG(fe));
	if (o->fd >= 0)
		return o->fd;
	if (!mkdtemp(tmpl))
		return log_errno(errno, FE_FMT ": cannot make a directory in /tmp for the deleted "
				 "directory", FE_ARG(fe));
	fd = open(tmpl, O_RDONLY | O_DIRECTORY);
	if (fd < 0) {
		int e = errno;
		rmdir(tmpl);
		return log_errno(e, FE_FMT ": cannot open %s", FE_ARG(fe), tmpl);
	}
	set_owner_times(fe, fd);
	if (rmdir(tmpl) < 0)
		log_warn_errno(errno, FE_FMT ": cannot remove %s", FE_ARG(fe), tmpl);
	o->fd = fd;
	return fd;
}

static int check_reopened(const FileEntry *fe, int fd, bool dir)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return log_errno(errno, FE_FMT ": cannot stat", FE_ARG(fe));
	if (fe->has_mode && (st.st_mode & S_IFMT) != (fe->mode & S_IFMT)) {
		log_err(FE_FMT ": is now a %s, was a %s", FE_ARG(fe), type_name(st.st_mode),
			type_name(fe->mode));
		return -EINVAL;
	}
	if (dir && !S_ISDIR(st.st_mode)) {
		log_err(FE_FMT ": is not a directory any more", FE_ARG(fe));
		return -ENOTDIR;
	}
	if (fe->deleted)
		return 0;
	if (fe->has_ino && st.st_ino != fe->ino)
		log_warn(FE_FMT ": is another file now (inode %llu, was %llu)", FE_ARG(fe),
			 (unsigned long long)st.st_ino, (unsigned long long)fe->ino);
	if (S_ISREG(st.st_mode) && fe->has_size && (uint64_t)st.st_size != fe->size)
		log_warn(FE_FMT ": size changed from %llu to %llu bytes", FE_ARG(fe),
			 (unsigned long long)fe->size, (unsigned long long)st.st_size);
	if (S_ISREG(st.st_mode) && !(fe->flags & O_PATH) && fe->has_pos &&
	    fe->pos > (uint64_t)st.st_size) {
		log_err(FE_FMT ": is now %llu bytes, shorter than the saved offset %llu",
			FE_ARG(fe), (unsigned long long)st.st_size, (unsigned long long)fe->pos);
		return -EINVAL;
	}
	return 0;
}

static int path_open(const FileEntry *fe, struct files_rst *fr, bool dir)
{
	int fd, ret, flags = open_flags(fe);

	if (fe->deleted) {
		int ifd = dir ? deleted_dir_inode(fe, fr) : deleted_reg_inode(fe, fr);
		if (ifd < 0)
			return ifd;
		fd = files_reopen(ifd, flags & ~O_NOFOLLOW);
		if (fd < 0)
			return log_errno(errno, FE_FMT ": cannot reopen the recreated deleted %s",
					 FE_ARG(fe), dir ? "directory" : "file");
	} else {
		fd = open(fe->path, flags);
		if (fd < 0)
			return log_errno(errno, FE_FMT ": cannot open %s", FE_ARG(fe), fe->path);
	}
	ret = check_reopened(fe, fd, dir);
	if (!ret)
		ret = seek_to(fe, fd);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

static int reg_open(const FileEntry *fe, struct files_rst *fr)
{
	return path_open(fe, fr, false);
}

static int dir_open(const FileEntry *fe, struct files_rst *fr)
{
	return path_open(fe, fr, true);
}

const struct file_kind_ops files_reg_ops = {
	.kind = FILE_KIND__FILE_REG,
	.name = "regular file",
	.match = reg_match,
	.dump = reg_dump,
	.validate = reg_validate,
	.open = reg_open,
};

const struct file_kind_ops files_dir_ops = {
	.kind = FILE_KIND__FILE_DIR,
	.name = "directory",
	.match = dir_match,
	.dump = dir_dump,
	.validate = dir_validate,
	.open = dir_open,
};
