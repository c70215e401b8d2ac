// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * memfd: link "/memfd:NAME (deleted)".  The content goes in the image (once
 * per inode), with the seals (F_GET_SEALS) and the mode.  Restore:
 * memfd_create(NAME, MFD_ALLOW_SEALING), content, size, mode, then the seals
 * (F_SEAL_SEAL last, as part of the same F_ADD_SEALS); every entry of the
 * inode reopens it through /proc/self/fd with its own flags and offset.
 * hugetlbfs memfds are refused (they cannot be written back with write()).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "files.h"
#include "log.h"

#define MEMFD_PREFIX	"/memfd:"
#define MEMFD_NAME_MAX	249
#define SEALS_KNOWN	(F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | \
			 F_SEAL_FUTURE_WRITE | 0x20 /* F_SEAL_EXEC */)

static bool memfd_match(const struct fd_info *fi)
{
	return S_ISREG(fi->st.st_mode) && !(fi->flags & O_PATH) &&
	       fi->st.st_nlink == 0 &&
	       !strncmp(fi->link, MEMFD_PREFIX, sizeof(MEMFD_PREFIX) - 1);
}

static int memfd_dump(const struct fd_info *fi, FileEntry *fe)
{
	char name[sizeof(fi->link)];
	struct statfs sfs;
	struct files_obj *o;
	int seals, ret;

	snprintf(name, sizeof(name), "%s", fi->link + sizeof(MEMFD_PREFIX) - 1);
	files_strip_deleted(name);
	if (strlen(name) > MEMFD_NAME_MAX) {
		log_err(FI_FMT ": memfd name too long: %s", FI_ARG(fi), fi->link);
		return -EINVAL;
	}
	if (!fstatfs(fi->lfd, &sfs) && sfs.f_type == HUGETLBFS_MAGIC) {
		log_err(FI_FMT ": hugetlbfs memfd %s not supported", FI_ARG(fi), fi->link);
		return -EOPNOTSUPP;
	}
	seals = fcntl(fi->lfd, F_GET_SEALS);
	if (seals < 0)
		seals = F_SEAL_SEAL;	/* no sealing support: nothing can be added */
	fe->path = strdup(name);
	if (!fe->path)
		return -ENOMEM;
	fe->has_seals = true;
	fe->seals = seals;
	fe->has_size = fe->has_ino = fe->has_dev = fe->has_mode = true;
	fe->size = fi->st.st_size;
	fe->ino = fi->st.st_ino;
	fe->dev = fi->st.st_dev;
	fe->mode = fi->st.st_mode;
	fe->has_uid = fe->has_gid = true;
	fe->uid = fi->st.st_uid;
	fe->gid = fi->st.st_gid;
	fe->has_deleted = fe->deleted = true;
	o = files_dump_obj(fi->d, FOBJ_CONTENT, fi->st.st_dev, fi->st.st_ino, true);
	if (!o)
		return -ENOMEM;
	if (o->fe)
		return 0;
	ret = files_read_content(fi, fi->st.st_size, fe);
	if (ret)
		return ret;
	o->fe = fe;
	return 0;
}

static int memfd_validate(const FileEntry *fe)
{
	if (!fe->path || strlen(fe->path) > MEMFD_NAME_MAX) {
		log_err("file %u (memfd): missing or bad name", fe->id);
		return -EINVAL;
	}
	if (!fe->has_dev || !fe->has_ino || !fe->has_size || fe->size > FILES_CONTENT_MAX) {
		log_err(FE_FMT ": memfd without inode or size", FE_ARG(fe));
		return -EINVAL;
	}
	if (fe->has_seals && (fe->seals & ~SEALS_KNOWN)) {
		log_err(FE_FMT ": unknown memfd seals 0x%x", FE_ARG(fe), fe->seals);
		return -EINVAL;
	}
	if ((fe->has_content || fe->content_in_image) && files_content_check(fe))
		return -EINVAL;
	if (fe->n_extents && !fe->has_content && !fe->content_in_image) {
		log_err(FE_FMT ": data extents without content", FE_ARG(fe));
		return -EINVAL;
	}
	if (fe->flags & (O_PATH | O_DIRECTORY)) {
		log_err(FE_FMT ": bad memfd flags 0%o", FE_ARG(fe), fe->flags);
		return -EINVAL;
	}
	return 0;
}

static const FileEntry *memfd_owner(const struct files_rst *fr, const FileEntry *fe)
{
	for (size_t i = 0; i < files_rst_count(fr); i++) {
		const FileEntry *x = files_rst_nth(fr, i);
		if (x->kind == FILE_KIND__FILE_MEMFD && (x->has_content || x->content_in_image) &&
		    x->dev == fe->dev && x->ino == fe->ino)
			return x;
	}
	return NULL;
}

static int memfd_inode(const FileEntry *fe, struct files_rst *fr)
{
	struct files_obj *o = files_rst_obj(fr, FOBJ_MEMFD, fe->dev, fe->ino, true);
	const FileEntry *own;
	int fd, ret;

	if (!o)
		return log_errno(ENOMEM, FE_FMT, FE_ARG(fe));
	if (o->fd >= 0)
		return o->fd;
	own = memfd_owner(fr, fe);
	if (!own) {
		log_err("file %u (memfd %s): its content is not in the image", fe->id, fe->path);
		return -EINVAL;
	}
	fd = memfd_create(own->path, MFD_ALLOW_SEALING);
	if (fd < 0)
		return log_errno(errno, "file %u (memfd %s): cannot create", fe->id, own->path);
	ret = files_write_content(fr, fd, own);
	if (ret) {
		close(fd);
		return log_errno(ret, "file %u (memfd %s): cannot write its %llu bytes", fe->id,
				 own->path, (unsigned long long)own->size);
	}
	if (own->has_mode && fchmod(fd, own->mode & 07777) < 0)
		log_warn_errno(errno, "file %u (memfd %s): cannot set mode 0%o", fe->id,
			       own->path, own->mode & 07777);
	if (own->has_uid && own->has_gid && fchown(fd, own->uid, own->gid) < 0)
		log_warn_errno(errno, "file %u (memfd %s): cannot give it to %u:%u", fe->id,
			       own->path, own->uid, own->gid);
	if (own->has_seals && own->seals && fcntl(fd, F_ADD_SEALS, own->seals) < 0) {
		ret = -errno;
		close(fd);
		return log_errno(ret, "file %u (memfd %s): cannot add seals 0x%x", fe->id,
				 own->path, own->seals);
	}
	o->fd = fd;
	return fd;
}

static int memfd_open(const FileEntry *fe, struct files_rst *fr)
{
	int ifd = memfd_inode(fe, fr), fd;

	if (ifd < 0)
		return ifd;
	fd = files_reopen(ifd, (fe->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_NOFOLLOW)) | O_NOCTTY);
	if (fd < 0)
		return log_errno(errno, "file %u (memfd %s): cannot reopen with flags 0%o",
				 fe->id, fe->path, fe->flags);
	if (fe->has_pos && fe->pos && lseek(fd, fe->pos, SEEK_SET) < 0) {
		int e = errno;
		close(fd);
		return log_errno(e, "file %u (memfd %s): cannot seek to %llu", fe->id, fe->path,
				 (unsigned long long)fe->pos);
	}
	return fd;
}

const struct file_kind_ops files_memfd_ops = {
	.kind = FILE_KIND__FILE_MEMFD,
	.name = "memfd",
	.match = memfd_match,
	.dump = memfd_dump,
	.validate = memfd_validate,
	.open = memfd_open,
};
