// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Regular files, directories and O_PATH fds: reopened by path.
 *
 * Deleted files (link "... (deleted)", st_nlink == 0) keep their data in
 * the image (once per inode, on the first entry that saw it; the extents
 * SEEK_DATA finds, holes are not kept) and come back as an unlinked
 * O_TMPFILE in their original directory, or in /tmp when that is gone or
 * cannot hold one; every entry of the inode reopens that one file.  A file
 * unlinked under its name but linked elsewhere (st_nlink > 0) is reopened
 * by its file handle.
 * Deleted directories come back as an empty directory made in /tmp and
 * removed at once.
 *
 * A regular file on a tmpfs (/run/..., a status or pid file a daemon keeps
 * open) does not outlive a reboot: its data is kept too (up to
 * VOLATILE_MAX), and a restore on another boot that finds no file at its
 * path makes it again there, with its data, owner, mode and mtime.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "files.h"
#include "log.h"

#define O_TMPFILE_BIT	020000000	/* __O_TMPFILE without O_DIRECTORY */
#define VOLATILE_MAX	(16ull << 20)	/* the most data kept of a file on a tmpfs */

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

/*
 * A file unlinked under the name it was opened by while it still has links
 * elsewhere (hard links; a file renamed over): no name of it is known, so
 * it is reopened by its file handle, which stays valid while the inode
 * lives.  Checked here: the handle must open this inode again.
 */
static int handle_dump(const struct fd_info *fi, FileEntry *fe)
{
	struct {
		struct file_handle fh;
		unsigned char buf[MAX_HANDLE_SZ];
	} h;
	struct stat st;
	int mnt_id, mfd, fd;

	h.fh.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(fi->lfd, "", &h.fh, &mnt_id, AT_EMPTY_PATH) < 0) {
		log_errno(errno, FI_FMT ": %s was unlinked but still has %lu other hard link(s), "
			  "and its filesystem gives no file handle to reopen it by: not supported",
			  FI_ARG(fi), fi->link, (unsigned long)fi->st.st_nlink);
		return -EOPNOTSUPP;
	}
	mfd = files_mount_fd(fi->d, NULL, fi->pid, fi->st.st_dev);
	if (mfd < 0)
		return mfd;
	fd = open_by_handle_at(mfd, &h.fh, O_PATH | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_dev != fi->st.st_dev ||
	    st.st_ino != fi->st.st_ino) {
		log_err(FI_FMT ": %s was unlinked but still has %lu other hard link(s), and its "
			"file handle does not open it again: not supported", FI_ARG(fi), fi->link,
			(unsigned long)fi->st.st_nlink);
		if (fd >= 0)
			close(fd);
		return -EOPNOTSUPP;
	}
	close(fd);
	fe->handle.data = malloc(h.fh.handle_bytes ? h.fh.handle_bytes : 1);
	if (!fe->handle.data)
		return -ENOMEM;
	memcpy(fe->handle.data, h.fh.f_handle, h.fh.handle_bytes);
	fe->handle.len = h.fh.handle_bytes;
	fe->has_handle = fe->has_handle_type = true;
	fe->handle_type = h.fh.handle_type;
	return 0;
}

/* The number N of a path /proc/N/..., or 0; @tgid: its thread group, @state
 * its state letter (0 if it could not be read). */
static pid_t proc_path_pid(const char *path, pid_t *tgid, char *state)
{
	char status[64], *line = NULL, *end;
	size_t cap = 0;
	long n;
	FILE *f;

	*tgid = 0;
	*state = 0;
	if (strncmp(path, "/proc/", 6))
		return 0;
	n = strtol(path + 6, &end, 10);
	if (end == path + 6 || n <= 0 || n > INT_MAX || (*end && *end != '/'))
		return 0;
	snprintf(status, sizeof(status), "/proc/%ld/status", n);
	f = fopen(status, "re");
	if (f) {
		while (getline(&line, &cap, f) > 0) {
			sscanf(line, "State: %c", state);
			if (sscanf(line, "Tgid: %d", tgid) == 1)
				break;
		}
		free(line);
		fclose(f);
	}
	if (*tgid <= 0)
		*tgid = (pid_t)n;
	return (pid_t)n;
}

/* The data of @fi's file, kept once per inode: in @fe unless another entry
 * has it already. */
static int content_dump(const struct fd_info *fi, FileEntry *fe)
{
	struct files_obj *o = files_dump_obj(fi->d, FOBJ_CONTENT, fi->st.st_dev, fi->st.st_ino, true);
	int ret;

	if (!o)
		return -ENOMEM;
	if (o->fe)		/* data already in another entry */
		return 0;
	ret = files_read_content(fi, fi->st.st_size, fe);
	if (!ret)
		o->fe = fe;
	return ret;
}

/*
 * A file under /proc/N/ of a process of the tree: reopened by each task that
 * holds it once every process of the tree exists again (post_install), by
 * its path relative to /proc.  Refused: /proc of threads (they are made
 * after the files are installed), zombies, entries that are not fds (cwd,
 * root, exe, mappings: the master opens those).
 */
static int proc_of_tree(const struct fd_info *fi, const char *path, FileEntry *fe)
{
	pid_t tgid, n = 0;
	char state;
	const char *why = NULL;

	n = proc_path_pid(path, &tgid, &state);
	if (!n || !files_dump_in_tree(fi->d, tgid))
		return 0;
	if (fi->fd < 0)
		why = "that is not an fd";
	else if (n != tgid || strstr(path, "/task/"))
		why = "of a thread";
	else if (state == 'Z' || state == 'X')
		why = "of a zombie";
	if (why) {
		log_err(FI_FMT ": %s is a /proc file of pid %d, a process of the dumped tree, %s: "
			"not supported", FI_ARG(fi), path, tgid, why);
		return -EOPNOTSUPP;
	}
	fe->has_proc_of_tree = fe->proc_of_tree = true;
	return 0;
}

/* @content: read the data of a deleted file (the dump; not the check of a
 * live tree, to which its size is no concern: the dump keeps any in a blob) */
static int path_dump(const struct fd_info *fi, FileEntry *fe, bool dir, bool content)
{
	char path[sizeof(fi->link)];
	bool suffix, deleted;

	memcpy(path, fi->link, sizeof(path));
	suffix = files_strip_deleted(path);
	if (!files_path_ok(path)) {
		log_err(FI_FMT ": '%s' is not a path that can be reopened", FI_ARG(fi), fi->link);
		return -EOPNOTSUPP;
	}
	/* /proc/N/... of a process of the tree: the restore opens files before
	 * any process of the tree exists again. */
	int pret = proc_of_tree(fi, path, fe);
	if (pret)
		return pret;
	deleted = fi->st.st_nlink == 0;
	if (suffix && !deleted && S_ISDIR(fi->st.st_mode)) {
		log_err(FI_FMT ": directory %s was removed but still has %lu link(s): not supported",
			FI_ARG(fi), fi->link, (unsigned long)fi->st.st_nlink);
		return -EOPNOTSUPP;
	}
	if (suffix && !deleted) {
		int ret = handle_dump(fi, fe);
		if (ret)
			return ret;
	}
	/* The restore opens the path as kup sees it: it must be this file.  A
	 * process in another mount namespace (a service's private /tmp) or
	 * root sees other files under the same names. */
	if (!deleted && !suffix && (S_ISREG(fi->st.st_mode) || S_ISDIR(fi->st.st_mode))) {
		char seen[sizeof(path) + 32];
		struct stat here;

		/* a tree whose mount namespace is rebuilt: the path as it sees it */
		if (files_dump_opts(fi->d)->own_mntns)
			snprintf(seen, sizeof(seen), "/proc/%d/root%s", fi->pid, path);
		else
			snprintf(seen, sizeof(seen), "%s", path);
		if (stat(seen, &here) || here.st_dev != fi->st.st_dev || here.st_ino != fi->st.st_ino) {
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
	/* never more privilege than the process had: see set_owner_times() */
	if (fe->mode & (S_ISUID | S_ISGID))
		log_warn(FI_FMT ": deleted file %s has mode %04o: a restore recreates it "
			 "without its setuid/setgid bits", FI_ARG(fi), path,
			 (unsigned)(fe->mode & 07777));
	return content ? content_dump(fi, fe) : 0;
}

/*
 * A regular file on a tmpfs, linked: its data is kept, once per inode, for
 * a restore on another boot, where the file is gone.  A file with more data
 * than VOLATILE_MAX is not kept (a warning: a restore after a reboot fails
 * on it, naming it).
 */
static int volatile_dump(const struct fd_info *fi, FileEntry *fe)
{
	struct statfs sf;

	if (!S_ISREG(fi->st.st_mode) || (fi->flags & O_PATH) || fe->deleted ||
	    fe->has_handle || fe->proc_of_tree)
		return 0;
	if (fstatfs(fi->lfd, &sf) || (sf.f_type != TMPFS_MAGIC && sf.f_type != RAMFS_MAGIC))
		return 0;
	if ((uint64_t)fi->st.st_blocks * 512 > VOLATILE_MAX &&
	    (uint64_t)fi->st.st_size > VOLATILE_MAX) {
		log_warn(FI_FMT ": %s is on a tmpfs, with %llu bytes: its data is not kept, "
			 "a restore after a reboot will not find it", FI_ARG(fi), fe->path,
			 (unsigned long long)fi->st.st_size);
		return 0;
	}
	fe->has_volatile_fs = fe->volatile_fs = true;
	return content_dump(fi, fe);
}

static int reg_dump(const struct fd_info *fi, FileEntry *fe)
{
	int ret = path_dump(fi, fe, false, true);

	return ret ? ret : volatile_dump(fi, fe);
}

/* The check of a live tree (ckpt_dump_check): the dump's refusals of a path,
 * no data read (a tmpfs file's is not refused, only warned about). */
static int reg_check(const struct fd_info *fi, FileEntry *fe)
{
	return path_dump(fi, fe, false, false);
}

static int dir_check(const struct fd_info *fi, FileEntry *fe)
{
	return path_dump(fi, fe, true, false);
}

static int dir_dump(const struct fd_info *fi, FileEntry *fe)
{
	return path_dump(fi, fe, true, true);
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
	if (fe->volatile_fs && (dir || fe->deleted || fe->has_handle || fe->proc_of_tree ||
				(fe->flags & O_PATH))) {
		log_err(FE_FMT ": a file of a tmpfs that is no linked regular file", FE_ARG(fe));
		return -EINVAL;
	}
	if ((fe->has_content || fe->content_in_image) && (!(fe->deleted || fe->volatile_fs) || dir)) {
		log_err(FE_FMT ": content for a file that is not a deleted file or one on a tmpfs",
			FE_ARG(fe));
		return -EINVAL;
	}
	if ((fe->has_content || fe->content_in_image) && files_content_check(fe))
		return -EINVAL;
	if (fe->n_extents && !fe->has_content && !fe->content_in_image) {
		log_err(FE_FMT ": data extents without content", FE_ARG(fe));
		return -EINVAL;
	}
	if (fe->has_handle && (dir || fe->deleted || !fe->has_dev || !fe->has_ino ||
			       !fe->has_handle_type || !fe->handle.len ||
			       fe->handle.len > MAX_HANDLE_SZ || !fe->handle.data)) {
		log_err(FE_FMT ": bad file handle", FE_ARG(fe));
		return -EINVAL;
	}
	if (fe->has_mode && !dir && !(fe->flags & O_PATH) && !S_ISREG(fe->mode)) {
		log_err(FE_FMT ": mode 0%o is not a regular file", FE_ARG(fe), fe->mode);
		return -EINVAL;
	}
	if (fe->proc_of_tree && (fe->deleted || fe->has_handle || strncmp(fe->path, "/proc/", 6) ||
				 fe->path[6] < '1' || fe->path[6] > '9' || strstr(fe->path, "/../"))) {
		log_err(FE_FMT ": bad /proc file of the tree", FE_ARG(fe));
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
		if ((x->has_content || x->content_in_image) && x->deleted && x->has_dev && x->has_ino &&
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
	ret = files_write_content(fr, fd, own);
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

int files_reg_deleted_fd(struct files_rst *fr, uint64_t dev, uint64_t ino)
{
	for (size_t i = 0; i < files_rst_count(fr); i++) {
		const FileEntry *x = files_rst_nth(fr, i);

		if (x->kind == FILE_KIND__FILE_REG && x->deleted && x->has_dev && x->has_ino &&
		    x->dev == dev && x->ino == ino)
			return deleted_reg_inode(x, fr);
	}
	log_err("no deleted file of inode %llu in the image", (unsigned long long)ino);
	return -ENOENT;
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

/* A file unlinked under its name but linked elsewhere: by its handle. */
static int handle_open(const FileEntry *fe, struct files_rst *fr, int flags)
{
	struct {
		struct file_handle fh;
		unsigned char buf[MAX_HANDLE_SZ];
	} h;
	struct stat st;
	int mfd, fd;

	mfd = files_mount_fd(NULL, fr, getpid(), fe->dev);
	if (mfd < 0)
		return log_errno(mfd, FE_FMT ": no mount of its filesystem to reopen it by its "
				 "file handle", FE_ARG(fe));
	h.fh.handle_bytes = fe->handle.len;
	h.fh.handle_type = fe->handle_type;
	memcpy(h.fh.f_handle, fe->handle.data, fe->handle.len);
	fd = open_by_handle_at(mfd, &h.fh, flags & ~O_NOFOLLOW);
	if (fd < 0)
		return log_errno(errno, FE_FMT ": unlinked under that name, cannot reopen it by "
				 "its file handle (its other links are gone?)", FE_ARG(fe));
	if (fstat(fd, &st) < 0 || st.st_dev != fe->dev || st.st_ino != fe->ino) {
		log_err(FE_FMT ": its file handle opens another file now", FE_ARG(fe));
		close(fd);
		return -ESTALE;
	}
	return fd;
}

/* The entry of the image holding the data of the tmpfs file @fe. */
static const FileEntry *volatile_owner(const struct files_rst *fr, const FileEntry *fe)
{
	if (fe->has_content || fe->content_in_image)
		return fe;
	for (size_t i = 0; i < files_rst_count(fr); i++) {
		const FileEntry *x = files_rst_nth(fr, i);

		if (x->kind == FILE_KIND__FILE_REG && x->volatile_fs && !x->deleted &&
		    (x->has_content || x->content_in_image) && x->has_dev && fe->has_dev &&
		    x->has_ino && fe->has_ino && x->dev == fe->dev && x->ino == fe->ino)
			return x;
	}
	return NULL;
}

/*
 * The file on a tmpfs at @fe's path is gone (the restore runs on another
 * boot): made again there with its data, owner, mode and mtime (never
 * setuid/setgid), then opened as dumped.  Its directory must be there (the
 * system's own boot makes /run's directories); an existing file is never
 * replaced (O_EXCL).
 */
static int volatile_open(const FileEntry *fe, struct files_rst *fr, int flags)
{
	const FileEntry *own = volatile_owner(fr, fe);
	int wfd, fd, ret;

	if (!own) {
		log_err(FE_FMT ": %s is gone, and the image has no data of it", FE_ARG(fe),
			fe->path);
		return -ENOENT;
	}
	wfd = open(fe->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (wfd < 0 && errno == EEXIST)
		goto reopen;	/* another entry of the inode made it */
	if (wfd < 0)
		return log_errno(errno, FE_FMT ": %s, a file of a tmpfs, is gone and cannot be "
				 "made again", FE_ARG(fe), fe->path);
	ret = files_write_content(fr, wfd, own);
	if (ret) {
		close(wfd);
		unlink(fe->path);
		return log_errno(ret, FE_FMT ": cannot write the data of %s", FE_ARG(fe),
				 fe->path);
	}
	set_owner_times(own, wfd);
	close(wfd);
	log_info(FE_FMT ": %s (on a tmpfs) was gone: made again with its %llu bytes",
		 FE_ARG(fe), fe->path, (unsigned long long)(own->has_size ? own->size : 0));
reopen:
	fd = open(fe->path, flags);
	if (fd < 0)
		return log_errno(errno, FE_FMT ": cannot open %s", FE_ARG(fe), fe->path);
	return fd;
}

static int path_open(const FileEntry *fe, struct files_rst *fr, bool dir)
{
	int fd, ret, flags = open_flags(fe);

	if (fe->proc_of_tree) {
		/* a placeholder: each task reopens it relative to this fd */
		fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return log_errno(errno, FE_FMT ": cannot open /proc", FE_ARG(fe));
		return fd;
	}
	if (fe->has_handle) {
		fd = handle_open(fe, fr, flags);
		if (fd < 0)
			return fd;
	} else if (fe->deleted) {
		int ifd = dir ? deleted_dir_inode(fe, fr) : deleted_reg_inode(fe, fr);
		if (ifd < 0)
			return ifd;
		fd = files_reopen(ifd, flags & ~O_NOFOLLOW);
		if (fd < 0)
			return log_errno(errno, FE_FMT ": cannot reopen the recreated deleted %s",
					 FE_ARG(fe), dir ? "directory" : "file");
	} else {
		fd = open(fe->path, flags);
		if (fd < 0 && errno == ENOENT && fe->volatile_fs && !dir)
			fd = volatile_open(fe, fr, flags);
		else if (fd < 0)
			return log_errno(errno, FE_FMT ": cannot open %s", FE_ARG(fe), fe->path);
		if (fd < 0)
			return fd;
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

/* In the task: the /proc file of a process of the tree, every process of
 * which exists now, at its fd number (which holds an fd on /proc). */
static int proc_post_install(const FileEntry *fe, int fd, const FdtableEntry *t,
			     const struct files_rst *fr)
{
	bool cloexec = false;
	struct stat st;
	int nfd;

	if (!fe->proc_of_tree)
		return 0;
	for (size_t i = 0; i < t->n_fds; i++)
		if (t->fds[i]->fd == fd)
			cloexec = t->fds[i]->cloexec;
	nfd = openat(fd, fe->path + 6, open_flags(fe) | O_CLOEXEC);
	if (nfd < 0)
		return log_errno(errno, "pid %u fd %d: cannot reopen %s", t->pid, fd, fe->path);
	/* a file of the restored process: another inode, a size of 0 */
	if (fstat(nfd, &st) < 0 || (fe->has_mode && (st.st_mode & S_IFMT) != (fe->mode & S_IFMT))) {
		close(nfd);
		log_err("pid %u fd %d: %s is not a %s now", t->pid, fd, fe->path,
			type_name(fe->mode));
		return -EINVAL;
	}
	if (seek_to(fe, nfd) ||
	    dup3(nfd, fd, cloexec ? O_CLOEXEC : 0) < 0) {
		close(nfd);
		log_err("pid %u fd %d: cannot put %s in place", t->pid, fd, fe->path);
		return -EIO;
	}
	close(nfd);
	return 0;
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
	.check = reg_check,
	.validate = reg_validate,
	.open = reg_open,
	.post_install = proc_post_install,
	.post_install_early = true,
};

const struct file_kind_ops files_dir_ops = {
	.kind = FILE_KIND__FILE_DIR,
	.name = "directory",
	.match = dir_match,
	.dump = dir_dump,
	.check = dir_check,
	.validate = dir_validate,
	.open = dir_open,
	.post_install = proc_post_install,
	.post_install_early = true,
};
