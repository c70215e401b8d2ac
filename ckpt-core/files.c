// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Files and file descriptors: the generic part (see files.h).
 *
 * Dump: each fd of a frozen process is copied into our table with
 * pidfd_getfd(), looked at (fstat, readlink, fdinfo), compared with kcmp()
 * against the files already seen on the same inode (a shared description is
 * dumped once) and handed to the first kind of the table below that matches.
 *
 * Restore: every entry is validated, then opened once in the master;
 * restored tasks (forks of the master) install their own tables.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/kcmp.h>

#include "files.h"
#include "image.h"
#include "log.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

extern const struct file_kind_ops files_memfd_ops, files_reg_ops, files_dir_ops,
	files_tty_ops, files_chr_ops, files_pipe_ops, files_fifo_ops,
	files_eventfd_ops, files_signalfd_ops, files_timerfd_ops,
	files_inotify_ops, files_epoll_ops, files_sk_inet_ops,
	files_sk_netlink_ops, files_pty_ops, files_tun_ops;
extern const struct file_kind_ops files_sk_unix_ops, files_pidfd_ops, files_nsfd_ops,
	files_fanotify_ops, files_sk_packet_ops;

static int sk_refuse_dump(const struct fd_info *fi, FileEntry *fe);
static bool sk_match(const struct fd_info *fi) { return S_ISSOCK(fi->st.st_mode); }

/*
 * Sockets are another issue: their kinds (files-sk-unix.c, files-sk-inet.c)
 * go in front of this catch-all, which refuses every socket and names its
 * family.
 */
static const struct file_kind_ops files_sk_refuse_ops = {
	.kind = FILE_KIND__FILE_UNIX_SK,
	.name = "socket",
	.match = sk_match,
	.dump = sk_refuse_dump,
	.dump_checks = true,
};

/* First match wins: namespace fds and memfds before reg (both are regular
 * files), O_PATH fds are taken by reg/dir whatever the inode type. */
static const struct file_kind_ops *const file_kinds[] = {
	&files_nsfd_ops,	/* nsfs inodes are regular files */
	&files_memfd_ops,
	&files_reg_ops,
	&files_dir_ops,
	&files_pty_ops,		/* pty masters and slaves, before the terminals */
	&files_tty_ops,
	&files_tun_ops,
	&files_chr_ops,
	&files_pipe_ops,
	&files_fifo_ops,
	&files_eventfd_ops,
	&files_signalfd_ops,
	&files_timerfd_ops,
	&files_inotify_ops,
	&files_epoll_ops,
	&files_pidfd_ops,
	&files_fanotify_ops,
	/* socket kinds go here */
	&files_sk_unix_ops,
	&files_sk_inet_ops,
	&files_sk_netlink_ops,
	&files_sk_packet_ops,
	&files_sk_refuse_ops,
};
#define NR_KINDS (sizeof(file_kinds) / sizeof(file_kinds[0]))

/* The kind that restores entries of @kind (it has an open()). */
static const struct file_kind_ops *rst_ops(int kind)
{
	for (size_t i = 0; i < NR_KINDS; i++)
		if ((int)file_kinds[i]->kind == kind && file_kinds[i]->open)
			return file_kinds[i];
	return NULL;
}

static const struct file_kind_ops *dump_ops(int kind)
{
	for (size_t i = 0; i < NR_KINDS; i++)
		if ((int)file_kinds[i]->kind == kind)
			return file_kinds[i];
	return NULL;
}

const char *files_kind_name(int kind)
{
	const struct file_kind_ops *ops = dump_ops(kind);
	return ops ? ops->name : "unknown";
}

/* --- syscalls glibc may lack -------------------------------------------- */

static int sys_pidfd_open(pid_t pid)
{
	return syscall(SYS_pidfd_open, pid, 0);
}

static int sys_pidfd_getfd(int pidfd, int fd)
{
	return syscall(SYS_pidfd_getfd, pidfd, fd, 0);
}

int files_kcmp(pid_t p1, pid_t p2, int type, unsigned long i1, unsigned long i2)
{
	return syscall(SYS_kcmp, p1, p2, type, i1, i2);
}

/* --- small helpers --------------------------------------------------------- */

char *files_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

int files_reopen(int fd, int flags)
{
	char p[64];

	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	return open(p, flags);
}

int files_write_all(int fd, const void *buf, size_t len)
{
	const char *b = buf;

	while (len) {
		ssize_t r = write(fd, b, len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;
		b += r;
		len -= r;
	}
	return 0;
}

static int pread_all(int fd, uint8_t *buf, uint64_t len, uint64_t off)
{
	uint64_t done = 0;

	while (done < len) {
		ssize_t r = pread(fd, buf + done, len - done, off + done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ENODATA;
		done += r;
	}
	return 0;
}

static int pwrite_all(int fd, const uint8_t *buf, uint64_t len, uint64_t off)
{
	uint64_t done = 0;

	while (done < len) {
		ssize_t r = pwrite(fd, buf + done, len - done, off + done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO;
		done += r;
	}
	return 0;
}

/*
 * The data extents of @rfd below @size, as (offset, length) pairs: the
 * holes in between are not kept.  A filesystem without SEEK_DATA gives one
 * extent, the whole file.  Past FILES_EXTENTS_MAX extents the last one runs
 * to the end (holes there are kept as zeros).
 */
static int data_extents(int rfd, uint64_t size, uint64_t **out, size_t *n_out)
{
	uint64_t *v = NULL, off = 0;
	size_t n = 0, cap = 0;

	while (off < size) {
		off_t d = lseek(rfd, (off_t)off, SEEK_DATA), h;

		if (d < 0 && errno == ENXIO)
			break;		/* only a hole from here on */
		if (d < 0) {		/* no SEEK_DATA here: all of it */
			n = 0;
			d = 0;
			h = (off_t)size;
		} else {
			h = lseek(rfd, d, SEEK_HOLE);
			if (h < 0 || (uint64_t)h > size)
				h = (off_t)size;
		}
		if ((uint64_t)d >= size || h <= d)
			break;
		if (n / 2 + 1 >= FILES_EXTENTS_MAX)
			h = (off_t)size;
		if (n + 2 > cap) {
			uint64_t *nv;
			cap = cap ? 2 * cap : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				free(v);
				return -ENOMEM;
			}
			v = nv;
		}
		v[n++] = (uint64_t)d;
		v[n++] = (uint64_t)(h - d);
		off = (uint64_t)h;
	}
	*out = v;
	*n_out = n;
	return 0;
}

/* The blob that holds the data of entry @id (content_in_image). */
static void blob_name(uint32_t id, char *buf, size_t len)
{
	snprintf(buf, len, "file-content-%u.img", id);
}

#define BLOB_ALIGN(x)	(((x) + 4095) & ~(uint64_t)4095)

/* More data than the files image keeps: into a blob of the store, the
 * extents one after the other. */
static int content_to_blob(const struct fd_info *fi, int rfd, FileEntry *fe, const uint64_t *ext,
			   size_t n_ext, uint64_t data)
{
	struct img_store *st = files_dump_opts(fi->d)->store;
	struct img_blob b;
	uint64_t pos = 0;
	char name[64];
	int ret;

	if (data > FILES_BLOB_MAX) {
		log_err(FI_FMT ": %s: %llu bytes of data to keep, more than kup keeps (%llu)",
			FI_ARG(fi), fi->link, (unsigned long long)data,
			(unsigned long long)FILES_BLOB_MAX);
		return -EFBIG;
	}
	blob_name(fe->id, name, sizeof(name));
	ret = st->ops->create(st, name, BLOB_ALIGN(data), &b);
	if (ret)
		return log_errno(ret, FI_FMT ": %s: cannot make image %s for its %llu bytes of data",
				 FI_ARG(fi), fi->link, name, (unsigned long long)data);
	for (size_t i = 0; i < n_ext && !ret; i += 2) {
		ret = pread_all(rfd, (uint8_t *)b.data + pos, ext[i + 1], ext[i]);
		if (ret == -ENODATA) {
			log_err(FI_FMT ": %s shrank while being read", FI_ARG(fi), fi->link);
			ret = -EIO;
		} else if (ret) {
			log_errno(ret, FI_FMT ": cannot read %s", FI_ARG(fi), fi->link);
		}
		pos += ext[i + 1];
	}
	if (!ret) {
		memset((uint8_t *)b.data + data, 0, BLOB_ALIGN(data) - data);
		fe->has_content_xxh64 = true;
		fe->content_xxh64 = img_xxh64(b.data, data);
		ret = st->ops->finish(st, &b);
		if (ret)
			log_errno(ret, FI_FMT ": %s: cannot write image %s", FI_ARG(fi), fi->link, name);
	}
	st->ops->release(st, &b);
	if (ret)
		return ret;
	fe->has_content_in_image = fe->content_in_image = true;
	log_debug(FI_FMT ": %s: %llu bytes of data in %s", FI_ARG(fi), fi->link,
		  (unsigned long long)data, name);
	return 0;
}

int files_read_content(const struct fd_info *fi, uint64_t size, FileEntry *fe)
{
	const struct files_opts *o = files_dump_opts(fi->d);
	uint64_t max = o->content_max ? o->content_max : FILES_CONTENT_MAX_DEFAULT;
	uint64_t data = 0, *ext = NULL, pos = 0;
	size_t n_ext = 0;
	uint8_t *buf;
	int rfd, ret;

	/* A fresh description: the dumped one keeps its offset untouched,
	 * and write-only files can be read too. */
	rfd = files_reopen(fi->lfd, O_RDONLY);
	if (rfd < 0)
		return log_errno(errno, FI_FMT ": cannot reopen %s to read its content",
				 FI_ARG(fi), fi->link);
	ret = data_extents(rfd, size, &ext, &n_ext);
	if (ret) {
		close(rfd);
		return log_errno(ret, FI_FMT ": %s", FI_ARG(fi), fi->link);
	}
	for (size_t i = 1; i < n_ext; i += 2)
		data += ext[i];
	if (data > max && o->store) {
		ret = content_to_blob(fi, rfd, fe, ext, n_ext, data);
		close(rfd);
		if (!ret && n_ext == 2 && ext[0] == 0 && ext[1] == size) {
			free(ext);	/* dense */
			ext = NULL;
			n_ext = 0;
		}
		if (ret) {
			free(ext);
			return ret;
		}
		fe->extents = ext;
		fe->n_extents = n_ext;
		return 0;
	}
	if (data > max) {
		log_err(FI_FMT ": %s: %llu bytes of data (a file of %llu bytes) to keep in the "
			"image, more than the limit (%llu)", FI_ARG(fi), fi->link,
			(unsigned long long)data, (unsigned long long)size,
			(unsigned long long)max);
		free(ext);
		close(rfd);
		return -EFBIG;
	}
	buf = malloc(data ? data : 1);
	if (!buf) {
		free(ext);
		close(rfd);
		return log_errno(ENOMEM, FI_FMT ": %s", FI_ARG(fi), fi->link);
	}
	for (size_t i = 0; i < n_ext; i += 2) {
		ret = pread_all(rfd, buf + pos, ext[i + 1], ext[i]);
		if (ret == -ENODATA) {
			log_err(FI_FMT ": %s shrank while being read", FI_ARG(fi), fi->link);
			ret = -EIO;
		} else if (ret) {
			log_errno(ret, FI_FMT ": cannot read %s", FI_ARG(fi), fi->link);
		}
		if (ret) {
			free(buf);
			free(ext);
			close(rfd);
			return ret;
		}
		pos += ext[i + 1];
	}
	close(rfd);
	fe->content.data = buf;
	fe->content.len = data;
	fe->has_content = true;
	if (n_ext == 2 && ext[0] == 0 && ext[1] == size) {
		free(ext);	/* dense: content is the whole file, as before */
		ext = NULL;
		n_ext = 0;
	} else if (!n_ext) {
		free(ext);
		ext = NULL;
		if (size) {	/* all holes: one empty extent says so */
			ext = calloc(2, sizeof(*ext));
			if (!ext)
				return log_errno(ENOMEM, FI_FMT ": %s", FI_ARG(fi), fi->link);
			n_ext = 2;
		}
	}
	fe->extents = ext;
	fe->n_extents = n_ext;
	return 0;
}

/* Undo the escaping of a mountinfo field (\040 etc.) in place. */
void files_unescape(char *s)
{
	char *o = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*o++ = *s++;
		}
	}
	*o = 0;
}

int files_mount_fd(struct files_dump *d, struct files_rst *fr, pid_t pid, dev_t dev)
{
	struct files_obj *o = d ? files_dump_obj(d, FOBJ_MNT, dev, 0, true) :
				  files_rst_obj(fr, FOBJ_MNT, dev, 0, true);
	unsigned int ma = major(dev), mi = minor(dev);
	char path[64], *line = NULL;
	size_t cap = 0;
	FILE *f;
	int best = -1;

	if (!o)
		return -ENOMEM;
	if (o->fd >= 0)
		return o->fd;
	snprintf(path, sizeof(path), "/proc/%d/mountinfo", pid);
	f = fopen(path, "re");
	if (!f)
		return log_errno(errno, "pid %d: cannot read %s", pid, path);
	while (getline(&line, &cap, f) > 0) {
		unsigned int a, b;
		char root[4096], mnt[4096], full[4200];
		int fd;

		if (sscanf(line, "%*d %*d %u:%u %4095s %4095s", &a, &b, root, mnt) != 4 ||
		    a != ma || b != mi)
			continue;
		files_unescape(root);
		files_unescape(mnt);
		snprintf(full, sizeof(full), "/proc/%d/root%s", pid, mnt);
		fd = open(full, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (best >= 0)
			close(best);
		best = fd;
		if (!strcmp(root, "/"))
			break;	/* a mount of the whole filesystem: the best */
	}
	free(line);
	fclose(f);
	if (best < 0) {
		log_err("pid %d: no mount of device %u:%u", pid, ma, mi);
		return -ENOENT;
	}
	o->fd = best;	/* closed with the objects */
	return best;
}

int files_content_check(const FileEntry *fe)
{
	uint64_t end = 0, sum = 0, total;

	if (fe->content_in_image && (fe->has_content || !fe->has_content_xxh64)) {
		log_err(FE_FMT ": data in an image, and in this one too or without its checksum",
			FE_ARG(fe));
		return -EINVAL;
	}
	if (!fe->has_content && !fe->content_in_image)
		return 0;
	if (!fe->has_size) {
		log_err(FE_FMT ": content without a size", FE_ARG(fe));
		return -EINVAL;
	}
	total = fe->content_in_image ? fe->size : fe->content.len;
	if (!fe->n_extents) {
		if (total != fe->size || (fe->content_in_image && fe->size > FILES_BLOB_MAX)) {
			log_err(FE_FMT ": content of %llu bytes for a file of %llu", FE_ARG(fe),
				(unsigned long long)total, (unsigned long long)fe->size);
			return -EINVAL;
		}
		return 0;
	}
	if (fe->n_extents % 2 || fe->n_extents / 2 > FILES_EXTENTS_MAX || !fe->extents) {
		log_err(FE_FMT ": bad list of %zu data extents", FE_ARG(fe), fe->n_extents);
		return -EINVAL;
	}
	for (size_t i = 0; i < fe->n_extents; i += 2) {
		uint64_t off = fe->extents[i], len = fe->extents[i + 1];

		if ((i && off < end) || off > fe->size || len > fe->size - off ||
		    (!len && fe->n_extents != 2)) {
			log_err(FE_FMT ": data extent %zu (%llu+%llu) out of order or past the "
				"size %llu", FE_ARG(fe), i / 2, (unsigned long long)off,
				(unsigned long long)len, (unsigned long long)fe->size);
			return -EINVAL;
		}
		end = off + len;
		sum += len;
	}
	if (fe->content_in_image ? sum > FILES_BLOB_MAX : sum != fe->content.len) {
		log_err(FE_FMT ": %zu bytes of content for %llu bytes of extents", FE_ARG(fe),
			fe->content.len, (unsigned long long)sum);
		return -EINVAL;
	}
	return 0;
}

/* The data of @own in its blob, mapped: checked against the extents' total
 * and the checksum. */
static int open_blob(struct files_rst *fr, const FileEntry *own, struct img_blob *b,
		     uint64_t *data)
{
	struct img_store *st = files_rst_opts(fr)->store;
	char name[64];
	int ret;

	*data = own->n_extents ? 0 : own->size;
	for (size_t i = 1; i < own->n_extents; i += 2)
		*data += own->extents[i];
	blob_name(own->id, name, sizeof(name));
	if (!st)
		return log_errno(ENOENT, FE_FMT ": its data is in image %s, and there is no store",
				 FE_ARG(own), name);
	ret = st->ops->open(st, name, b);
	if (ret)
		return log_errno(ret, FE_FMT ": cannot open image %s", FE_ARG(own), name);
	if (b->len != BLOB_ALIGN(*data) || img_xxh64(b->data, *data) != own->content_xxh64) {
		log_err(FE_FMT ": image %s does not hold its %llu bytes of data (size or checksum)",
			FE_ARG(own), name, (unsigned long long)*data);
		st->ops->release(st, b);
		return -EINVAL;
	}
	return 0;
}

int files_write_content(struct files_rst *fr, int fd, const FileEntry *own)
{
	const uint8_t *p = own->content.data;
	uint64_t len = own->content.len;
	struct img_blob b = { 0 };
	int ret = 0;

	if (own->content_in_image) {
		ret = open_blob(fr, own, &b, &len);
		if (ret)
			return ret;
		p = b.data;
	}
	if (!own->n_extents)
		ret = pwrite_all(fd, p, len, 0);
	for (size_t i = 0; i < own->n_extents && !ret; i += 2) {
		ret = pwrite_all(fd, p, own->extents[i + 1], own->extents[i]);
		p += own->extents[i + 1];
	}
	if (own->content_in_image)
		files_rst_opts(fr)->store->ops->release(files_rst_opts(fr)->store, &b);
	if (ret)
		return ret;
	/* the holes at the end */
	if (ftruncate(fd, (off_t)own->size) < 0)
		return -errno;
	return 0;
}

const char *files_fdinfo_field(const char *fdinfo, const char *key)
{
	size_t kl = strlen(key);
	const char *p = fdinfo;

	if (!p)
		return NULL;
	while (*p) {
		if (!strncmp(p, key, kl))
			return p + kl;
		p = strchr(p, '\n');
		if (!p)
			break;
		p++;
	}
	return NULL;
}

bool files_strip_deleted(char *path)
{
	static const char suf[] = " (deleted)";
	size_t l = strlen(path), sl = sizeof(suf) - 1;

	if (l < sl || strcmp(path + l - sl, suf))
		return false;
	path[l - sl] = 0;
	return true;
}

bool files_path_ok(const char *path)
{
	return path && path[0] == '/' && strlen(path) < PATH_MAX;
}

const char *files_fe_name(const FileEntry *fe)
{
	if (fe->path && fe->path[0])
		return fe->path;
	return files_kind_name(fe->kind);
}

/* Read a whole /proc text file into a NUL-terminated malloc'd buffer. */
static int read_text(const char *path, char **out)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	int fd, e;

	if (!buf)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		e = -errno;
		free(buf);
		return e;
	}
	for (;;) {
		ssize_t r;

		if (len + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				e = -ENOMEM;
				goto err;
			}
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			e = -errno;
			goto err;
		}
		if (r == 0)
			break;
		len += r;
	}
	close(fd);
	buf[len] = 0;
	*out = buf;
	return 0;
err:
	close(fd);
	free(buf);
	return e;
}

/* --- object map -------------------------------------------------------------- */

struct objmap {
	struct files_obj **b;
	size_t nb, n;
};

static size_t obj_hash(int tag, uint64_t a, uint64_t b)
{
	uint64_t h = (uint64_t)tag * 0x9e3779b97f4a7c15ull;
	h ^= a + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	h ^= b + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return (size_t)h;
}

static struct files_obj *objmap_get(struct objmap *m, int tag, uint64_t a,
				    uint64_t b, bool create)
{
	struct files_obj *o;
	size_t h = obj_hash(tag, a, b);

	if (m->nb) {
		for (o = m->b[h & (m->nb - 1)]; o; o = o->next)
			if (o->tag == tag && o->a == a && o->b == b)
				return o;
	}
	if (!create)
		return NULL;
	if (m->n >= m->nb) {	/* grow: rehash */
		size_t nb = m->nb ? m->nb * 2 : 64;
		struct files_obj **nbk = calloc(nb, sizeof(*nbk));

		if (!nbk)
			return NULL;
		for (size_t i = 0; i < m->nb; i++) {
			while ((o = m->b[i])) {
				size_t j = obj_hash(o->tag, o->a, o->b) & (nb - 1);
				m->b[i] = o->next;
				o->next = nbk[j];
				nbk[j] = o;
			}
		}
		free(m->b);
		m->b = nbk;
		m->nb = nb;
	}
	o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->tag = tag;
	o->a = a;
	o->b = b;
	o->fd = o->fd2 = -1;
	o->fdnum = -1;
	o->next = m->b[h & (m->nb - 1)];
	m->b[h & (m->nb - 1)] = o;
	m->n++;
	return o;
}

static struct files_obj *objmap_next(struct objmap *m, struct files_obj *o)
{
	size_t i = 0;

	if (o) {
		if (o->next)
			return o->next;
		i = (obj_hash(o->tag, o->a, o->b) & (m->nb - 1)) + 1;
	}
	for (; i < m->nb; i++)
		if (m->b[i])
			return m->b[i];
	return NULL;
}

static void objmap_close_fds(struct objmap *m)
{
	for (struct files_obj *o = objmap_next(m, NULL); o; o = objmap_next(m, o)) {
		if (o->fd >= 0)
			close(o->fd);
		if (o->fd2 >= 0)
			close(o->fd2);
		o->fd = o->fd2 = -1;
	}
}

static void objmap_free(struct objmap *m)
{
	objmap_close_fds(m);
	for (size_t i = 0; i < m->nb; i++) {
		struct files_obj *o, *n;
		for (o = m->b[i]; o; o = n) {
			n = o->next;
			free(o->v);
			free(o->buf);
			free(o->buf2);
			free(o);
		}
	}
	free(m->b);
	memset(m, 0, sizeof(*m));
}

/* --- dump ---------------------------------------------------------------- */

enum { FOBJ_DEDUP = 100, FOBJ_LINK, FOBJ_LINK_RW };

struct dent {
	FileEntry *fe;
	const struct file_kind_ops *ops;
	pid_t pid;
	int fd;			/* -1 for link entries */
	bool local;		/* in flight: pid is ours, fd our copy (kcmp) */
};

struct files_dump {
	struct files_opts opts;
	struct dent *ents;
	size_t n, cap;
	uint32_t next_id;
	struct objmap objs;
	int *inflight;		/* our copies of files in flight (kcmp) */
	size_t n_inflight, cap_inflight;
};

const struct files_opts *files_dump_opts(const struct files_dump *d)
{
	return &d->opts;
}

bool files_dump_in_tree(const struct files_dump *d, pid_t pid)
{
	for (size_t i = 0; i < d->opts.n_tree_pids; i++)
		if (d->opts.tree_pids[i] == pid)
			return true;
	return false;
}

static bool pid_holds_socket(pid_t pid, const char *want)
{
	char dir[64], link[64], path[340];
	struct dirent *e;
	bool found = false;
	DIR *fds;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
	fds = opendir(dir);
	if (!fds)
		return false;
	while (!found && (e = readdir(fds))) {
		ssize_t n;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = 0;
		found = !strcmp(link, want);
	}
	closedir(fds);
	return found;
}

int files_sock_owner(const struct files_dump *d, uint64_t ino, pid_t *pid, char *comm,
		     size_t len)
{
	char want[40], path[64];
	struct dirent *e;
	DIR *proc;
	int ret = -ENOENT;

	snprintf(want, sizeof(want), "socket:[%llu]", (unsigned long long)ino);
	proc = opendir("/proc");
	if (!proc)
		return -errno;
	while ((e = readdir(proc))) {
		char *end;
		long p = strtol(e->d_name, &end, 10);
		FILE *f;

		if (*end || p <= 0 || files_dump_in_tree(d, p) || p == getpid() ||
		    !pid_holds_socket(p, want))
			continue;
		*pid = p;
		comm[0] = 0;
		snprintf(path, sizeof(path), "/proc/%ld/comm", p);
		f = fopen(path, "re");
		if (f) {
			if (fgets(comm, len, f))
				comm[strcspn(comm, "\n")] = 0;
			fclose(f);
		}
		ret = 0;
		break;
	}
	closedir(proc);
	return ret;
}

const char *files_sock_owner_str(const struct files_dump *d, uint64_t ino, char *buf,
				 size_t len)
{
	char comm[32];
	pid_t pid;

	if (files_sock_owner(d, ino, &pid, comm, sizeof(comm)))
		return "an unknown process";
	snprintf(buf, len, "pid %d (%s)", pid, comm);
	return buf;
}

struct files_obj *files_dump_obj(struct files_dump *d, int tag, uint64_t a,
				 uint64_t b, bool create)
{
	return objmap_get(&d->objs, tag, a, b, create);
}

struct files_obj *files_dump_obj_next(struct files_dump *d, struct files_obj *o)
{
	return objmap_next(&d->objs, o);
}

int files_dump_begin(const struct files_opts *o, struct files_dump **out)
{
	struct files_dump *d = calloc(1, sizeof(*d));

	if (!d)
		return log_errno(ENOMEM, "files: cannot start the dump");
	if (o)
		d->opts = *o;
	*out = d;
	return 0;
}

void files_dump_release(struct files_dump *d, bool resume)
{
	if (!d)
		return;
	for (size_t k = 0; k < NR_KINDS; k++)
		if (file_kinds[k]->dump_release)
			file_kinds[k]->dump_release(d, resume);
}

void files_dump_free(struct files_dump *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		if (d->ents[i].fe)
			file_entry__free_unpacked(d->ents[i].fe, NULL);
	free(d->ents);
	objmap_free(&d->objs);
	for (size_t i = 0; i < d->n_inflight; i++)
		close(d->inflight[i]);
	free(d->inflight);
	free(d);
}

static FileEntry *new_entry(void)
{
	FileEntry *fe = malloc(sizeof(*fe));

	if (fe)
		file_entry__init(fe);
	return fe;
}

static int add_dent(struct files_dump *d, FileEntry *fe, const struct file_kind_ops *ops,
		    pid_t pid, int fd)
{
	if (d->n == d->cap) {
		size_t nc = d->cap ? d->cap * 2 : 64;
		struct dent *ne = realloc(d->ents, nc * sizeof(*ne));
		if (!ne)
			return -ENOMEM;
		d->ents = ne;
		d->cap = nc;
	}
	d->ents[d->n] = (struct dent){ .fe = fe, .ops = ops, .pid = pid, .fd = fd };
	d->n++;
	return 0;
}

static const char *sk_family_name(int fam)
{
	switch (fam) {
	case AF_UNIX: return "unix";
	case AF_INET: return "inet";
	case AF_INET6: return "inet6";
	case AF_NETLINK: return "netlink";
	case AF_PACKET: return "packet";
	case AF_VSOCK: return "vsock";
	case AF_ALG: return "alg";
	case AF_KEY: return "key";
	case AF_BLUETOOTH: return "bluetooth";
	case AF_TIPC: return "tipc";
	case AF_XDP: return "xdp";
	default: return NULL;
	}
}

int files_sk_dump_filter(const struct fd_info *fi, const char *what, ProtobufCBinaryData *f,
			 protobuf_c_boolean *has, protobuf_c_boolean *has_locked,
			 protobuf_c_boolean *locked)
{
	socklen_t n = 0, l;
	int v;

	if (getsockopt(fi->lfd, SOL_SOCKET, SO_GET_FILTER, NULL, &n) < 0) {
		if (errno == EACCES) {
			log_err(FI_FMT ": %s: an eBPF socket filter (SO_ATTACH_BPF) is attached: not "
				"supported (only classic filters)", FI_ARG(fi), what);
			return -EOPNOTSUPP;
		}
		return log_errno(errno, FI_FMT ": %s: SO_GET_FILTER", FI_ARG(fi), what);
	}
	if (!n)
		return 0;
	if (n > FILES_SK_FILTER_MAX) {
		log_err(FI_FMT ": %s: a socket filter of %u instructions", FI_ARG(fi), what,
			(unsigned)n);
		return -EINVAL;
	}
	f->data = calloc(n, sizeof(struct sock_filter));
	if (!f->data)
		return log_errno(ENOMEM, FI_FMT ": %s: socket filter", FI_ARG(fi), what);
	l = n;
	if (getsockopt(fi->lfd, SOL_SOCKET, SO_GET_FILTER, f->data, &l) < 0 || l != n)
		return log_errno(errno ? errno : EAGAIN, FI_FMT ": %s: SO_GET_FILTER (the filter "
				 "changed during the dump?)", FI_ARG(fi), what);
	f->len = n * sizeof(struct sock_filter);
	*has = true;
	l = sizeof(v);
	if (getsockopt(fi->lfd, SOL_SOCKET, SO_LOCK_FILTER, &v, &l) == 0 && v)
		*has_locked = *locked = true;
	return 0;
}

static int sk_refuse_dump(const struct fd_info *fi, FileEntry *fe)
{
	int fam = -1;
	socklen_t l = sizeof(fam);
	const char *name;

	if (getsockopt(fi->lfd, SOL_SOCKET, SO_DOMAIN, &fam, &l) < 0)
		fam = -1;
	name = sk_family_name(fam);
	if (name)
		log_err(FI_FMT ": %s socket not supported (%s)", FI_ARG(fi), name, fi->link);
	else
		log_err(FI_FMT ": socket of family %d not supported (%s)", FI_ARG(fi), fam, fi->link);
	return -EOPNOTSUPP;
}

static int parse_fdinfo(struct fd_info *fi)
{
	const char *v;
	char *end;

	v = files_fdinfo_field(fi->fdinfo, "flags:");
	if (!v)
		goto bad;
	errno = 0;
	fi->flags = strtoul(v, &end, 8);
	if (errno || end == v)
		goto bad;
	v = files_fdinfo_field(fi->fdinfo, "pos:");
	if (!v)
		goto bad;
	fi->pos = strtoull(v, &end, 10);
	if (errno || end == v)
		goto bad;
	return 0;
bad:
	log_err(FI_FMT ": cannot parse its fdinfo", FI_ARG(fi));
	return -EINVAL;
}

/*
 * Is (pid, fd) the same description as an entry already dumped?  Gives its
 * dent index, -1 if new (*pos: where to insert it), or -errno.  The entries
 * of one inode are kept sorted in kcmp()'s order, which is a total order on
 * struct file pointers: a binary search needs O(log n) kcmp calls, which
 * matters for anon-inode files (every eventfd, epoll, timerfd... shares one
 * inode).
 */
static int kcmp_file(const struct fd_info *fi, const struct dent *e)
{
	int r = files_kcmp(fi->local ? getpid() : fi->pid, e->pid, KCMP_FILE,
			   fi->local ? fi->lfd : fi->fd, e->fd);

	if (r < 0)
		return log_errno(errno, FI_FMT ": kcmp with pid %d fd %d failed: "
				 "cannot tell shared files apart", FI_ARG(fi), e->pid, e->fd);
	return r;
}

static int find_shared(struct files_dump *d, const struct fd_info *fi,
		       struct files_obj **hp, size_t *pos)
{
	struct files_obj *h;
	size_t lo = 0, hi;

	h = objmap_get(&d->objs, FOBJ_DEDUP, fi->st.st_dev, fi->st.st_ino, true);
	if (!h)
		return -ENOMEM;
	*hp = h;
	hi = h->nv;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = kcmp_file(fi, &d->ents[h->v[mid]]);

		if (r < 0)
			return r;
		if (r == 0)
			return h->v[mid];
		if (r == 1)		/* ours sorts before */
			hi = mid;
		else if (r == 2)
			lo = mid + 1;
		else
			goto linear;	/* no ordering: compare with all */
	}
	*pos = lo;
	return -1;
linear:
	for (size_t i = 0; i < h->nv; i++) {
		int r = kcmp_file(fi, &d->ents[h->v[i]]);
		if (r <= 0)
			return r < 0 ? r : h->v[i];
	}
	*pos = h->nv;
	return -1;
}

static int dedup_insert(struct files_obj *h, size_t pos, int idx)
{
	if (h->nv == h->cv) {
		size_t nc = h->cv ? h->cv * 2 : 4;
		int *nv = realloc(h->v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		h->v = nv;
		h->cv = nc;
	}
	memmove(h->v + pos + 1, h->v + pos, (h->nv - pos) * sizeof(*h->v));
	h->v[pos] = idx;
	h->nv++;
	return 0;
}

static const struct file_kind_ops *match_kind(const struct fd_info *fi)
{
	for (size_t i = 0; i < NR_KINDS; i++)
		if (file_kinds[i]->match(fi))
			return file_kinds[i];
	return NULL;
}

/* The kind of @fi, or NULL: a file kup does not keep (refused, named). */
static const struct file_kind_ops *kind_of(const struct fd_info *fi)
{
	const struct file_kind_ops *ops = match_kind(fi);

	if (!ops)
		log_err(FI_FMT ": unsupported file '%s'", FI_ARG(fi), fi->link);
	return ops;
}

/*
 * Signal-driven I/O: the owner (F_GETOWN_EX) and signal (F_GETSIG) of the
 * description, read on our copy of it.  Whether the owner is in the tree
 * is checked once the tree is known (ckpt_dump).
 */
static int dump_fown(const struct fd_info *fi, FileEntry *fe)
{
	struct f_owner_ex own = { 0 };
	FownEntry *fo;
	int sig;

	if (fi->fd < 0 || (fi->flags & O_PATH))	/* an O_PATH fd has no owner */
		return 0;
	if (fcntl(fi->lfd, F_GETOWN_EX, &own))
		return log_errno(errno, FI_FMT ": %s: cannot read its owner (F_GETOWN_EX)", FI_ARG(fi),
				 fi->link);
	sig = fcntl(fi->lfd, F_GETSIG);
	if (sig < 0)
		return log_errno(errno, FI_FMT ": %s: cannot read its signal (F_GETSIG)", FI_ARG(fi),
				 fi->link);
	if (!own.pid && !sig)
		return 0;
	fo = malloc(sizeof(*fo));
	if (!fo)
		return -ENOMEM;
	fown_entry__init(fo);
	fo->type = own.type;
	fo->pid = own.pid;
	fo->sig = sig;
	fe->fown = fo;
	return 0;
}

/* Make an entry for @fi (whose lfd, st, link are set); gives its id. */
static int dump_new(struct files_dump *d, struct fd_info *fi, uint32_t *id)
{
	const struct file_kind_ops *ops;
	FileEntry *fe;
	int ret;

	ops = kind_of(fi);
	if (!ops)
		return -EOPNOTSUPP;
	fe = new_entry();
	if (!fe)
		return log_errno(ENOMEM, FI_FMT ": %s", FI_ARG(fi), fi->link);
	fe->id = ++d->next_id;
	fe->kind = ops->kind;
	fe->flags = fi->flags;
	fe->has_pos = true;
	fe->pos = fi->pos;
	ret = ops->dump(fi, fe);
	if (!ret)
		ret = dump_fown(fi, fe);
	if (!ret)
		ret = add_dent(d, fe, ops, fi->local ? getpid() : fi->pid,
			       fi->local ? fi->lfd : fi->fd);
	if (!ret && fi->local)
		d->ents[d->n - 1].local = true;
	if (ret) {
		file_entry__free_unpacked(fe, NULL);
		d->next_id--;
		return ret;
	}
	*id = fe->id;
	return 0;
}

/*
 * Fill @fi (pid, fd and d set) for fd @fi->fd of the process of @pidfd: our
 * copy of it, its stat, link and fdinfo.  @live: the process runs (the
 * check pass), an fd it closed meanwhile gives -ENOENT, not logged.
 */
static int fd_info_read(struct fd_info *fi, int pidfd, bool live)
{
	char path[64];
	ssize_t l;
	int ret;

	snprintf(fi->where, sizeof(fi->where), "fd %d", fi->fd);
	fi->lfd = sys_pidfd_getfd(pidfd, fi->fd);
	if (fi->lfd < 0) {
		/* closed meanwhile; ESRCH: the process is exiting */
		if (live && (errno == EBADF || errno == ESRCH))
			return -ENOENT;
		return log_errno(errno, FI_FMT ": cannot take a copy (pidfd_getfd)", FI_ARG(fi));
	}
	if (fstat(fi->lfd, &fi->st) < 0)
		return log_errno(errno, FI_FMT ": cannot stat", FI_ARG(fi));
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", fi->pid, fi->fd);
	l = readlink(path, fi->link, sizeof(fi->link) - 1);
	if (live && (l == 0 || (l < 0 && errno == ENOENT)))
		return -ENOENT;		/* closed meanwhile, or the process exits */
	if (l < 0)
		return log_errno(errno, FI_FMT ": cannot read link %s", FI_ARG(fi), path);
	fi->link[l] = 0;
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", fi->pid, fi->fd);
	ret = read_text(path, &fi->fdinfo);
	if (ret == -ENOENT && live)
		return ret;
	if (ret)
		return log_errno(ret, FI_FMT ": cannot read %s", FI_ARG(fi), path);
	return parse_fdinfo(fi);
}

static int dump_fd(struct files_dump *d, int pidfd, pid_t pid, int fd, FdEntry *out,
		   FdtableEntry *t)
{
	struct fd_info *fi = calloc(1, sizeof(*fi));
	struct files_obj *h = NULL;
	uint32_t id = 0;
	size_t pos = 0;
	int ret, shared;

	if (!fi)
		return log_errno(ENOMEM, "pid %d fd %d", pid, fd);
	fi->pid = pid;
	fi->fd = fd;
	fi->d = d;
	ret = fd_info_read(fi, pidfd, false);
	if (ret)
		goto out;
	out->fd = fd;
	out->cloexec = !!(fi->flags & O_CLOEXEC);
	fi->flags &= ~O_CLOEXEC;

	shared = find_shared(d, fi, &h, &pos);
	if (shared < -1) {
		ret = shared;
		goto out;
	}
	if (shared >= 0) {
		id = d->ents[shared].fe->id;
		log_debug(FI_FMT ": shares file %u with pid %d fd %d", FI_ARG(fi), id,
			  d->ents[shared].pid, d->ents[shared].fd);
	} else {
		size_t before = d->n;

		ret = dump_new(d, fi, &id);
		if (ret)
			goto out;
		/* A unix socket's dump adds the entries of the files in
		 * flight in its queue first: find our place again. */
		if (d->n != before + 1 && find_shared(d, fi, &h, &pos) != -1) {
			ret = log_errno(EIO, FI_FMT ": lost its place among shared files",
					FI_ARG(fi));
			goto out;
		}
		ret = dedup_insert(h, pos, d->n - 1);
		if (ret)
			goto out;
	}
	out->file_id = id;
	ret = files_locks_dump(d, fi, id, t);
out:
	if (fi->lfd >= 0)
		close(fi->lfd);
	free(fi->fdinfo);
	free(fi);
	return ret;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return x < y ? -1 : x > y;
}

/* The fd numbers of @pid, sorted.  @live: the process runs (the check),
 * and may be gone: -ENOENT, not logged. */
static int list_fds(pid_t pid, int **out, size_t *n, bool live)
{
	char path[64];
	struct dirent *de;
	size_t cap = 64, cnt = 0;
	int *v = malloc(cap * sizeof(int));
	DIR *dir;

	if (!v)
		return -ENOMEM;
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	dir = opendir(path);
	if (!dir) {
		int e = errno;
		free(v);
		if (live && e == ENOENT)
			return -ENOENT;
		return log_errno(e, "pid %d: cannot list %s", pid, path);
	}
	while ((de = readdir(dir))) {
		char *end;
		long fd;

		if (de->d_name[0] == '.')
			continue;
		fd = strtol(de->d_name, &end, 10);
		if (*end || fd < 0 || fd > INT_MAX)
			continue;
		if (cnt == cap) {
			int *nv = realloc(v, cap * 2 * sizeof(int));
			if (!nv) {
				closedir(dir);
				free(v);
				return -ENOMEM;
			}
			v = nv;
			cap *= 2;
		}
		v[cnt++] = fd;
	}
	closedir(dir);
	qsort(v, cnt, sizeof(int), cmp_int);
	*out = v;
	*n = cnt;
	return 0;
}

void files_free_fdtable(FdtableEntry *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_fds; i++)
		if (t->fds[i])
			fd_entry__free_unpacked(t->fds[i], NULL);
	free(t->fds);
	t->fds = NULL;
	t->n_fds = 0;
	for (size_t i = 0; i < t->n_locks; i++)
		if (t->locks[i])
			file_lock__free_unpacked(t->locks[i], NULL);
	free(t->locks);
	t->locks = NULL;
	t->n_locks = 0;
}

void files_free_image(FilesImage *img)
{
	if (!img)
		return;
	for (size_t i = 0; i < img->n_files; i++)
		if (img->files[i])
			file_entry__free_unpacked(img->files[i], NULL);
	free(img->files);
	img->files = NULL;
	img->n_files = 0;
}

uint32_t files_fdtable_id(const FdtableEntry *t, int fd)
{
	size_t lo = 0, hi = t->n_fds;

	/* tables we build are sorted; fall back to a scan otherwise */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (!t->fds[mid])
			break;
		if (t->fds[mid]->fd == fd)
			return t->fds[mid]->file_id;
		if (t->fds[mid]->fd < fd)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = 0; i < t->n_fds; i++)
		if (t->fds[i] && t->fds[i]->fd == fd)
			return t->fds[i]->file_id;
	return 0;
}

/* The parent of @pid, from /proc/PID/stat (0 if it cannot be read). */
static pid_t read_ppid(pid_t pid)
{
	char path[64], buf[512], *p;
	int ppid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) &&
	    sscanf(p + 1, " %*c %d", &ppid) != 1)
		ppid = 0;
	fclose(f);
	return ppid;
}

/*
 * Processes (not threads) that share one fd table, made with
 * clone(CLONE_FILES): the table is dumped once, with the first process of
 * the tree that has it (the tree's order puts parents first); the others
 * name that one (files_of) and their own entry stays empty.  The restore
 * gives the sharing back by creating each sharer with CLONE_FILES from
 * its parent, so the parent must share the table too: a table shared only
 * by siblings (their parent made them with CLONE_FILES, then left the
 * table with unshare()) is refused.  1: @pid shares an earlier table, 0:
 * its table is its own (or the first of its group), -errno.
 */
static int dump_shared_fdtable(struct files_dump *d, pid_t pid, FdtableEntry *t)
{
	pid_t owner = 0, ppid;

	for (size_t i = 0; i < d->opts.n_tree_pids && d->opts.tree_pids[i] != pid; i++) {
		pid_t other = d->opts.tree_pids[i];

		if (files_kcmp(pid, other, KCMP_FILES, 0, 0) == 0) {
			owner = other;	/* the first of the group */
			break;
		}
	}
	ppid = read_ppid(pid);
	if (!owner) {
		/* the root's parent is outside the tree: a table shared with it
		 * would come back as a table of the tree's own */
		if (ppid > 0 && !files_dump_in_tree(d, ppid) &&
		    files_kcmp(pid, ppid, KCMP_FILES, 0, 0) == 0) {
			log_err("pid %d: shares its fd table with its parent %d, outside the dumped "
				"tree (clone with CLONE_FILES): not supported", pid, ppid);
			return -EOPNOTSUPP;
		}
		return 0;
	}
	if (!ppid || !files_dump_in_tree(d, ppid) || files_kcmp(pid, ppid, KCMP_FILES, 0, 0)) {
		log_err("pid %d: shares its fd table with pid %d (clone with CLONE_FILES) but not "
			"with its parent %d: not supported", pid, owner, ppid);
		return -EOPNOTSUPP;
	}
	t->has_files_of = true;
	t->files_of = owner;
	log_debug("pid %d: shares the fd table of pid %d (CLONE_FILES)", pid, owner);
	return 1;
}

int files_dump_fdtable(struct files_dump *d, pid_t pid, FdtableEntry *t)
{
	int *fds = NULL, pidfd, ret;
	size_t nfds = 0, first = d->n;

	fdtable_entry__init(t);
	t->pid = pid;
	ret = dump_shared_fdtable(d, pid, t);
	if (ret)
		return ret < 0 ? ret : 0;	/* 1: the table is another's */
	pidfd = sys_pidfd_open(pid);
	if (pidfd < 0)
		return log_errno(errno, "pid %d: cannot open a pidfd", pid);
	ret = list_fds(pid, &fds, &nfds, false);
	if (ret)
		goto out;
	t->fds = calloc(nfds ? nfds : 1, sizeof(*t->fds));
	if (!t->fds) {
		ret = log_errno(ENOMEM, "pid %d: fd table", pid);
		goto out;
	}
	for (size_t i = 0; i < nfds; i++) {
		FdEntry *e = malloc(sizeof(*e));

		if (!e) {
			ret = log_errno(ENOMEM, "pid %d fd %d", pid, fds[i]);
			goto out;
		}
		fd_entry__init(e);
		t->fds[t->n_fds++] = e;
		ret = dump_fd(d, pidfd, pid, fds[i], e, t);
		if (ret)
			goto out;
	}
	for (size_t i = first; i < d->n; i++) {
		struct dent *e = &d->ents[i];

		if (e->ops->dump_done && e->fd >= 0 && !e->local) {
			ret = e->ops->dump_done(d, e->fe, e->pid, e->fd, t);
			if (ret)
				goto out;
		}
	}
	ret = 0;
out:
	if (ret)
		files_free_fdtable(t);
	free(fds);
	close(pidfd);
	return ret;
}

static int check_fd(struct files_dump *d, int pidfd, pid_t pid, int fd)
{
	struct fd_info *fi = calloc(1, sizeof(*fi));
	const struct file_kind_ops *ops;
	FileEntry *fe;
	int ret;

	if (!fi)
		return log_errno(ENOMEM, "pid %d fd %d", pid, fd);
	fi->pid = pid;
	fi->fd = fd;
	fi->d = d;
	ret = fd_info_read(fi, pidfd, true);
	if (ret == -ENOENT)
		ret = 0;	/* closed meanwhile */
	if (ret)
		goto out;
	fi->flags &= ~O_CLOEXEC;
	ops = kind_of(fi);
	if (!ops) {
		ret = -EOPNOTSUPP;
		goto out;
	}
	if (!ops->dump_checks && !ops->check)
		goto out;	/* its refusals need the tree frozen: the dump's */
	fe = new_entry();
	if (!fe) {
		ret = log_errno(ENOMEM, FI_FMT ": %s", FI_ARG(fi), fi->link);
		goto out;
	}
	fe->id = ++d->next_id;
	fe->kind = ops->kind;
	fe->flags = fi->flags;
	ret = ops->dump_checks ? ops->dump(fi, fe) : ops->check(fi, fe);
	/* kept (the dump's objects may point to it) until files_dump_free() */
	if (!ret)
		ret = add_dent(d, fe, ops, pid, fd);
	if (ret)
		file_entry__free_unpacked(fe, NULL);
out:
	if (fi->lfd >= 0)
		close(fi->lfd);
	free(fi->fdinfo);
	free(fi);
	return ret;
}

int files_check_fdtable(struct files_dump *d, pid_t pid)
{
	FdtableEntry t;
	int *fds = NULL, pidfd, ret;
	size_t nfds = 0;

	fdtable_entry__init(&t);
	ret = dump_shared_fdtable(d, pid, &t);
	if (ret)
		return ret < 0 ? ret : 0;	/* 1: checked with the table's first holder */
	pidfd = sys_pidfd_open(pid);
	if (pidfd < 0)
		return errno == ESRCH ? 0 : log_errno(errno, "pid %d: cannot open a pidfd", pid);
	ret = list_fds(pid, &fds, &nfds, true);
	if (ret == -ENOENT)
		ret = 0;	/* gone meanwhile */
	for (size_t i = 0; !ret && i < nfds; i++)
		ret = check_fd(d, pidfd, pid, fds[i]);
	free(fds);
	close(pidfd);
	return ret;
}

int files_check_end(struct files_dump *d)
{
	int ret = 0;

	for (size_t k = 0; !ret && k < NR_KINDS; k++)
		if (file_kinds[k]->check && file_kinds[k]->dump_end)
			ret = file_kinds[k]->dump_end(d);
	return ret;
}

int files_dump_link(struct files_dump *d, pid_t pid, const char *link,
		    bool need_write, uint32_t *id)
{
	struct fd_info *fi;
	struct files_obj *lo;
	char path[128];
	ssize_t l;
	int ret;

	if (!link || strlen(link) > 100 || strstr(link, ".."))
		return log_errno(EINVAL, "pid %d: bad link name '%s'", pid, link ? link : "");
	fi = calloc(1, sizeof(*fi));
	if (!fi)
		return log_errno(ENOMEM, "pid %d %s", pid, link);
	fi->pid = pid;
	fi->fd = -1;
	fi->d = d;
	snprintf(fi->where, sizeof(fi->where), "%s", link);
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, link);
	fi->lfd = open(path, O_RDONLY | O_CLOEXEC);
	if (fi->lfd < 0) {
		ret = log_errno(errno, FI_FMT ": cannot open %s", FI_ARG(fi), path);
		goto out;
	}
	if (fstat(fi->lfd, &fi->st) < 0) {
		ret = log_errno(errno, FI_FMT ": cannot stat %s", FI_ARG(fi), path);
		goto out;
	}
	l = readlink(path, fi->link, sizeof(fi->link) - 1);
	if (l < 0) {
		ret = log_errno(errno, FI_FMT ": cannot read link %s", FI_ARG(fi), path);
		goto out;
	}
	fi->link[l] = 0;
	if (!S_ISREG(fi->st.st_mode) && !S_ISDIR(fi->st.st_mode)) {
		log_err(FI_FMT ": '%s' is neither a regular file nor a directory: not supported",
			FI_ARG(fi), fi->link);
		ret = -EOPNOTSUPP;
		goto out;
	}
	fi->flags = S_ISDIR(fi->st.st_mode) ? (O_RDONLY | O_DIRECTORY) :
		    need_write ? O_RDWR : O_RDONLY;
	fi->flags |= O_LARGEFILE;
	if (need_write && S_ISDIR(fi->st.st_mode)) {
		ret = log_errno(EISDIR, FI_FMT ": %s", FI_ARG(fi), fi->link);
		goto out;
	}
	/* Read-only and read-write uses are separate entries: an executable
	 * cannot be opened for writing while it runs (ETXTBSY).  A deleted
	 * file's entries still share one recreated inode. */
	lo = objmap_get(&d->objs, need_write ? FOBJ_LINK_RW : FOBJ_LINK,
			fi->st.st_dev, fi->st.st_ino, true);
	if (!lo) {
		ret = log_errno(ENOMEM, FI_FMT, FI_ARG(fi));
		goto out;
	}
	if (lo->fe) {
		*id = lo->fe->id;
		ret = 0;
		goto out;
	}
	ret = dump_new(d, fi, id);
	if (ret)
		goto out;
	lo->fe = d->ents[d->n - 1].fe;
out:
	if (fi->lfd >= 0)
		close(fi->lfd);
	free(fi);
	return ret;
}

int files_dump_inflight(struct files_dump *d, const struct fd_info *owner, int lfd,
			const char *where, uint32_t *id)
{
	struct fd_info *fi = calloc(1, sizeof(*fi));
	const struct file_kind_ops *ops;
	struct files_obj *h = NULL;
	char path[64];
	size_t pos = 0;
	ssize_t l;
	int ret, shared;

	if (!fi) {
		close(lfd);
		return log_errno(ENOMEM, FI_FMT, FI_ARG(owner));
	}
	fi->pid = owner->pid;
	fi->fd = -1;
	fi->lfd = lfd;
	fi->d = d;
	fi->local = true;
	snprintf(fi->where, sizeof(fi->where), "%.40s, %.80s", owner->where, where);
	if (fstat(lfd, &fi->st) < 0) {
		ret = log_errno(errno, FI_FMT ": cannot stat", FI_ARG(fi));
		goto out;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", lfd);
	l = readlink(path, fi->link, sizeof(fi->link) - 1);
	if (l < 0) {
		ret = log_errno(errno, FI_FMT ": cannot read link %s", FI_ARG(fi), path);
		goto out;
	}
	fi->link[l] = 0;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", lfd);
	ret = read_text(path, &fi->fdinfo);
	if (ret) {
		log_errno(ret, FI_FMT ": cannot read %s", FI_ARG(fi), path);
		goto out;
	}
	ret = parse_fdinfo(fi);
	if (ret)
		goto out;
	fi->flags &= ~O_CLOEXEC;
	ops = match_kind(fi);
	/* A socket in flight may carry more files in flight (or itself); an
	 * epoll's registrations name fds of a table it is in no more. */
	if (S_ISSOCK(fi->st.st_mode) || !ops || ops->kind == FILE_KIND__FILE_EPOLL) {
		log_err(FI_FMT ": %s '%s' in flight (SCM_RIGHTS): not supported", FI_ARG(fi),
			S_ISSOCK(fi->st.st_mode) ? "socket" : ops ? ops->name : "file",
			fi->link);
		ret = -EOPNOTSUPP;
		goto out;
	}
	shared = find_shared(d, fi, &h, &pos);
	if (shared < -1) {
		ret = shared;
		goto out;
	}
	if (shared >= 0) {
		*id = d->ents[shared].fe->id;
		log_debug(FI_FMT ": shares file %u with pid %d fd %d", FI_ARG(fi), *id,
			  d->ents[shared].pid, d->ents[shared].fd);
		goto out;	/* our copy is not needed */
	}
	if (d->n_inflight == d->cap_inflight) {
		size_t nc = d->cap_inflight ? d->cap_inflight * 2 : 16;
		int *nv = realloc(d->inflight, nc * sizeof(*nv));

		if (!nv) {
			ret = log_errno(ENOMEM, FI_FMT, FI_ARG(fi));
			goto out;
		}
		d->inflight = nv;
		d->cap_inflight = nc;
	}
	ret = dump_new(d, fi, id);
	if (ret)
		goto out;
	ret = dedup_insert(h, pos, d->n - 1);
	if (ret)
		goto out;
	d->inflight[d->n_inflight++] = lfd;	/* kept for kcmp */
	fi->lfd = -1;
	log_debug(FI_FMT ": '%s' in flight is file %u", FI_ARG(fi), fi->link, *id);
out:
	if (fi->lfd >= 0)
		close(fi->lfd);
	free(fi->fdinfo);
	free(fi);
	return ret;
}

int files_dump_end(struct files_dump *d, FilesImage *img)
{
	int ret;

	for (size_t k = 0; k < NR_KINDS; k++) {
		if (file_kinds[k]->dump_end) {
			ret = file_kinds[k]->dump_end(d);
			if (ret)
				return ret;
		}
	}
	files_image__init(img);
	img->files = calloc(d->n ? d->n : 1, sizeof(*img->files));
	if (!img->files)
		return log_errno(ENOMEM, "files: image of %zu entries", d->n);
	for (size_t i = 0; i < d->n; i++) {
		img->files[i] = d->ents[i].fe;
		d->ents[i].fe = NULL;
	}
	img->n_files = d->n;
	return 0;
}

/* --- validation ------------------------------------------------------------ */

#define FILES_FLAGS_OK (O_ACCMODE | O_APPEND | O_NONBLOCK | O_DSYNC | O_SYNC | O_ASYNC | \
			O_DIRECT | 0100000 /* the kernel's O_LARGEFILE; 0 in glibc */ | O_DIRECTORY | O_NOFOLLOW | \
			O_NOATIME | O_PATH)

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int validate_entry(const FileEntry *fe)
{
	const struct file_kind_ops *ops;

	ops = rst_ops(fe->kind);
	if (!ops) {
		log_err("file %u: unknown or unsupported kind %d", fe->id, (int)fe->kind);
		return -EINVAL;
	}
	if (fe->flags & ~FILES_FLAGS_OK) {
		log_err("file %u (%s): unexpected open flags 0%o", fe->id, ops->name,
			fe->flags & ~FILES_FLAGS_OK);
		return -EINVAL;
	}
	if ((fe->flags & O_ACCMODE) == O_ACCMODE) {
		log_err("file %u (%s): bad access mode in flags 0%o", fe->id, ops->name, fe->flags);
		return -EINVAL;
	}
	if (fe->has_pos && fe->pos > (uint64_t)INT64_MAX) {
		log_err("file %u (%s): bad offset %llu", fe->id, ops->name,
			(unsigned long long)fe->pos);
		return -EINVAL;
	}
	if (fe->path && strnlen(fe->path, PATH_MAX) >= PATH_MAX) {
		log_err("file %u (%s): path too long", fe->id, ops->name);
		return -EINVAL;
	}
	if (fe->has_content && (fe->content.len > FILES_CONTENT_MAX ||
				(fe->content.len && !fe->content.data))) {
		log_err("file %u (%s): bad content length %zu", fe->id, files_fe_name(fe),
			fe->content.len);
		return -EINVAL;
	}
	if (fe->has_pipe_data && (fe->pipe_data.len > (1u << 31) ||
				  (fe->pipe_data.len && !fe->pipe_data.data))) {
		log_err("file %u (%s): bad pipe data length %zu", fe->id, files_fe_name(fe),
			fe->pipe_data.len);
		return -EINVAL;
	}
	if (fe->n_tfds > FILES_LIST_MAX || (fe->n_tfds && !fe->tfds) ||
	    fe->n_wds > FILES_LIST_MAX || (fe->n_wds && !fe->wds)) {
		log_err("file %u (%s): bad list sizes", fe->id, files_fe_name(fe));
		return -EINVAL;
	}
	for (size_t i = 0; i < fe->n_tfds; i++)
		if (!fe->tfds[i]) {
			log_err("file %u: empty epoll target", fe->id);
			return -EINVAL;
		}
	for (size_t i = 0; i < fe->n_wds; i++)
		if (!fe->wds[i] || !fe->wds[i]->path) {
			log_err("file %u: empty inotify watch", fe->id);
			return -EINVAL;
		}
	if (fe->fown && (fe->fown->sig < 0 || fe->fown->sig > 64 || fe->fown->pid < 0 ||
			 (fe->fown->type != F_OWNER_TID && fe->fown->type != F_OWNER_PID &&
			  fe->fown->type != F_OWNER_PGRP))) {
		log_err("file %u (%s): bad owner or signal for signal-driven I/O", fe->id,
			files_fe_name(fe));
		return -EINVAL;
	}
	if (fe->has_sk && fe->kind != FILE_KIND__FILE_UNIX_SK && fe->kind != FILE_KIND__FILE_INET_SK &&
	    fe->kind != FILE_KIND__FILE_NETLINK_SK) {
		log_err("file %u: socket data in a %s entry", fe->id, ops->name);
		return -EINVAL;
	}
	if (fe->has_pty && fe->kind != FILE_KIND__FILE_PTY) {
		log_err("file %u: pty data in a %s entry", fe->id, ops->name);
		return -EINVAL;
	}
	if (fe->has_tun && fe->kind != FILE_KIND__FILE_TUN) {
		log_err("file %u: tun device data in a %s entry", fe->id, ops->name);
		return -EINVAL;
	}
	if ((fe->n_extents && fe->kind != FILE_KIND__FILE_REG && fe->kind != FILE_KIND__FILE_MEMFD) ||
	    (fe->has_handle && fe->kind != FILE_KIND__FILE_REG) ||
	    (fe->content_in_image && fe->kind != FILE_KIND__FILE_REG &&
	     fe->kind != FILE_KIND__FILE_MEMFD) ||
	    (fe->has_pidfd_pid && fe->kind != FILE_KIND__FILE_PIDFD) ||
	    (fe->has_packet && fe->kind != FILE_KIND__FILE_PACKET_SK) ||
	    ((fe->has_fan_flags || fe->n_fan_marks) && fe->kind != FILE_KIND__FILE_FANOTIFY) ||
	    (fe->proc_of_tree && fe->kind != FILE_KIND__FILE_REG && fe->kind != FILE_KIND__FILE_DIR)) {
		log_err("file %u: data of another kind in a %s entry", fe->id, ops->name);
		return -EINVAL;
	}
	return ops->validate ? ops->validate(fe) : 0;
}

/* Sorted ids of @img (or -errno: duplicates, zero). */
static int sorted_ids(const FilesImage *img, uint32_t **out)
{
	uint32_t *ids = malloc((img->n_files ? img->n_files : 1) * sizeof(*ids));

	if (!ids)
		return -ENOMEM;
	for (size_t i = 0; i < img->n_files; i++)
		ids[i] = img->files[i]->id;
	qsort(ids, img->n_files, sizeof(*ids), cmp_u32);
	for (size_t i = 0; i < img->n_files; i++) {
		if (!ids[i] || (i && ids[i] == ids[i - 1])) {
			log_err("files image: %s file id %u", ids[i] ? "duplicate" : "bad", ids[i]);
			free(ids);
			return -EINVAL;
		}
	}
	*out = ids;
	return 0;
}

static bool id_in(const uint32_t *ids, size_t n, uint32_t id)
{
	return bsearch(&id, ids, n, sizeof(*ids), cmp_u32) != NULL;
}

int files_validate_image(const FilesImage *img)
{
	uint32_t *ids;
	int ret;

	if (!img || (img->n_files && !img->files) || img->n_files > (1u << 24)) {
		log_err("files image: bad entry list");
		return -EINVAL;
	}
	for (size_t i = 0; i < img->n_files; i++) {
		if (!img->files[i]) {
			log_err("files image: empty entry %zu", i);
			return -EINVAL;
		}
		ret = validate_entry(img->files[i]);
		if (ret)
			return ret;
	}
	ret = sorted_ids(img, &ids);
	if (ret)
		return ret;
	/* references between entries */
	for (size_t i = 0; i < img->n_files && !ret; i++) {
		const FileEntry *fe = img->files[i];
		for (size_t j = 0; j < fe->n_tfds; j++) {
			if (fe->tfds[j]->has_tfile_id && !id_in(ids, img->n_files, fe->tfds[j]->tfile_id)) {
				log_err("file %u: epoll target fd %d refers to missing file %u",
					fe->id, fe->tfds[j]->tfd, fe->tfds[j]->tfile_id);
				ret = -EINVAL;
				break;
			}
		}
	}
	free(ids);
	return ret;
}

static int validate_fdtable_ids(const uint32_t *ids, size_t nids, const FdtableEntry *t)
{
	int *nums;
	int ret = 0;

	if (!t || (t->n_fds && !t->fds) || t->n_fds > FILES_FD_MAX) {
		log_err("fd table: bad list");
		return -EINVAL;
	}
	nums = malloc((t->n_fds ? t->n_fds : 1) * sizeof(int));
	if (!nums)
		return -ENOMEM;
	for (size_t i = 0; i < t->n_fds; i++) {
		const FdEntry *e = t->fds[i];
		if (!e || e->fd < 0 || e->fd >= FILES_FD_MAX) {
			log_err("pid %u: bad fd entry %zu (fd %d)", t->pid, i, e ? e->fd : -1);
			ret = -EINVAL;
			goto out;
		}
		if (!id_in(ids, nids, e->file_id)) {
			log_err("pid %u fd %d: refers to missing file %u", t->pid, e->fd, e->file_id);
			ret = -EINVAL;
			goto out;
		}
		nums[i] = e->fd;
	}
	qsort(nums, t->n_fds, sizeof(int), cmp_int);
	for (size_t i = 1; i < t->n_fds; i++)
		if (nums[i] == nums[i - 1]) {
			log_err("pid %u fd %d: appears twice in the table", t->pid, nums[i]);
			ret = -EINVAL;
			goto out;
		}
	ret = files_locks_validate(t, nums, t->n_fds);
out:
	free(nums);
	return ret;
}

int files_validate_fdtable(const FilesImage *img, const FdtableEntry *t)
{
	uint32_t *ids;
	int ret;

	if (!img || (img->n_files && !img->files) || img->n_files > (1u << 24))
		return -EINVAL;
	for (size_t i = 0; i < img->n_files; i++)
		if (!img->files[i])
			return -EINVAL;
	if (t && t->has_files_of && (t->n_fds || t->n_locks || t->files_of == t->pid)) {
		log_err("pid %u: shares the fd table of pid %u, yet has fds or locks of its own",
			t->pid, t->files_of);
		return -EINVAL;
	}
	ret = sorted_ids(img, &ids);
	if (ret)
		return ret;
	ret = validate_fdtable_ids(ids, img->n_files, t);
	free(ids);
	return ret;
}

/* --- restore -------------------------------------------------------------- */

struct rst_ent {
	const FileEntry *fe;
	const struct file_kind_ops *ops;
	int fd;
	bool opening;
};

struct files_rst {
	struct files_opts opts;
	const FilesImage *img;
	struct rst_ent *e;	/* sorted by id */
	size_t n;
	struct objmap objs;
};

const struct files_opts *files_rst_opts(const struct files_rst *fr)
{
	return &fr->opts;
}

int files_rst_netns(const struct files_rst *fr, const char *what, uint64_t dumped)
{
	const struct files_opts *o = &fr->opts;
	struct stat own;

	if (stat("/proc/thread-self/ns/net", &own) < 0)
		return log_errno(errno, "%s: cannot find our network namespace", what);
	if (!o->other_boot || !o->dump_netns) {
		if (own.st_ino == dumped)
			return 0;
		log_err("%s was dumped in network namespace %llu, kup restore runs in %llu: "
			"run it in that namespace (nsenter --net=...)", what,
			(unsigned long long)dumped, (unsigned long long)own.st_ino);
		return -EINVAL;
	}
	if (dumped != o->dump_netns) {
		log_err("%s was dumped in network namespace %llu, not in kup dump's own (%llu), "
			"on another boot: that namespace went with it", what,
			(unsigned long long)dumped, (unsigned long long)o->dump_netns);
		return -EINVAL;
	}
	return 0;
}

struct files_obj *files_rst_obj(struct files_rst *fr, int tag, uint64_t a,
				uint64_t b, bool create)
{
	return objmap_get(&fr->objs, tag, a, b, create);
}

size_t files_rst_count(const struct files_rst *fr)
{
	return fr->img->n_files;
}

const FileEntry *files_rst_nth(const struct files_rst *fr, size_t i)
{
	return i < fr->img->n_files ? fr->img->files[i] : NULL;
}

static int cmp_ent(const void *a, const void *b)
{
	const struct rst_ent *x = a, *y = b;
	return x->fe->id < y->fe->id ? -1 : x->fe->id > y->fe->id;
}

static const struct rst_ent *find_ent(const struct files_rst *fr, uint32_t id)
{
	size_t lo = 0, hi = fr->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (fr->e[mid].fe->id == id)
			return &fr->e[mid];
		if (fr->e[mid].fe->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int files_rst_fd(const struct files_rst *fr, uint32_t id)
{
	const struct rst_ent *e = fr ? find_ent(fr, id) : NULL;
	return e ? e->fd : -1;
}

const FileEntry *files_rst_entry(const struct files_rst *fr, uint32_t id)
{
	const struct rst_ent *e = fr ? find_ent(fr, id) : NULL;
	return e ? e->fe : NULL;
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* The status flags (F_SETFL) of the description, and a check of the access
 * mode it was opened with. */
static int set_status_flags(const FileEntry *fe, int fd)
{
	const int mask = O_APPEND | O_NONBLOCK | O_NOATIME | O_DIRECT;
	int cur = fcntl(fd, F_GETFL);

	if (cur < 0)
		return log_errno(errno, "file %u (%s): F_GETFL", fe->id, files_fe_name(fe));
	if (cur & O_PATH)
		return 0;
	if ((cur & O_ACCMODE) != (int)(fe->flags & O_ACCMODE)) {
		log_err("file %u (%s): opened with access mode %o instead of %o",
			fe->id, files_fe_name(fe), cur & O_ACCMODE, fe->flags & O_ACCMODE);
		return -EINVAL;
	}
	if ((cur ^ fe->flags) & mask) {
		if (fcntl(fd, F_SETFL, (cur & ~mask) | (fe->flags & mask)) < 0)
			return log_errno(errno, "file %u (%s): cannot set status flags 0%o",
					 fe->id, files_fe_name(fe), fe->flags & mask);
	}
	return 0;
}

int files_rst_finish(struct files_rst *fr)
{
	int ret;

	for (size_t k = 0; fr && k < NR_KINDS; k++) {
		if (file_kinds[k]->rst_finish) {
			ret = file_kinds[k]->rst_finish(fr);
			if (ret)
				return ret;
		}
	}
	return 0;
}

void files_rst_release(const FilesImage *img, const struct files_opts *o)
{
	static const struct files_opts none;

	for (size_t k = 0; img && k < NR_KINDS; k++)
		if (file_kinds[k]->rst_release)
			file_kinds[k]->rst_release(img, o ? o : &none);
}

void files_rst_free(struct files_rst *fr)
{
	if (!fr)
		return;
	for (size_t i = 0; i < fr->n; i++)
		if (fr->e[i].fd >= 0)
			close(fr->e[i].fd);
	free(fr->e);
	objmap_free(&fr->objs);
	free(fr);
}

int files_rst_open_id(struct files_rst *fr, uint32_t id)
{
	struct rst_ent *e = (struct rst_ent *)find_ent(fr, id);
	int fd, ret;

	if (!e) {
		log_err("file %u: not in the image", id);
		return -EINVAL;
	}
	if (e->fd >= 0)
		return e->fd;
	if (e->opening) {
		log_err("file %u (%s): needs itself to be opened", id, e->ops->name);
		return -EINVAL;
	}
	e->opening = true;
	fd = e->ops->open(e->fe, fr);
	e->opening = false;
	if (fd < 0)
		return fd;
	ret = set_status_flags(e->fe, fd);
	if (ret) {
		close(fd);
		return ret;
	}
	e->fd = fd;
	log_debug("file %u (%s %s): restored as fd %d", id, e->ops->name,
		  files_fe_name(e->fe), fd);
	return fd;
}

int files_rst_open_all(const FilesImage *img, const struct files_opts *o,
		       struct files_rst **out)
{
	struct files_rst *fr;
	int ret;

	ret = files_validate_image(img);
	if (ret)
		return ret;
	fr = calloc(1, sizeof(*fr));
	if (!fr)
		return log_errno(ENOMEM, "files: restore state");
	if (o)
		fr->opts = *o;
	fr->img = img;
	fr->n = img->n_files;
	fr->e = calloc(fr->n ? fr->n : 1, sizeof(*fr->e));
	if (!fr->e) {
		free(fr);
		return log_errno(ENOMEM, "files: restore state");
	}
	for (size_t i = 0; i < fr->n; i++) {
		fr->e[i].fe = img->files[i];
		fr->e[i].ops = rst_ops(img->files[i]->kind);
		fr->e[i].fd = -1;
	}
	qsort(fr->e, fr->n, sizeof(*fr->e), cmp_ent);
	raise_nofile();

	for (size_t i = 0; i < img->n_files; i++) {
		ret = files_rst_open_id(fr, img->files[i]->id);
		if (ret < 0)
			goto err;
	}
	/* Entries hold their own fds now: drop the shared helpers. */
	objmap_close_fds(&fr->objs);
	*out = fr;
	return 0;
err:
	files_rst_free(fr);
	return ret;
}

static int close_range_fallback(unsigned int lo, unsigned int hi)
{
	DIR *dir;
	struct dirent *de;
	int *v = NULL;
	size_t n = 0, cap = 0;

	if (!syscall(SYS_close_range, lo, hi, 0))
		return 0;
	if (errno != ENOSYS)
		return -errno;
	dir = opendir("/proc/self/fd");
	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		char *end;
		long fd = strtol(de->d_name, &end, 10);
		if (*end || de->d_name[0] == '.' || fd == dirfd(dir))
			continue;
		if ((unsigned long)fd < lo || (unsigned long)fd > hi)
			continue;
		if (n == cap) {
			int *nv = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof(int));
			if (!nv) {
				closedir(dir);
				free(v);
				return -ENOMEM;
			}
			v = nv;
		}
		v[n++] = fd;
	}
	closedir(dir);
	for (size_t i = 0; i < n; i++)
		close(v[i]);
	free(v);
	return 0;
}

int files_install(const struct files_rst *fr, const FdtableEntry *t, int *keep, int nkeep)
{
	int *hi = NULL, *stay = NULL, maxfd = -1, ret;
	size_t nstay = 0;

	if (!t || (t->n_fds && !t->fds) || t->n_fds > FILES_FD_MAX || nkeep < 0 ||
	    (nkeep && !keep)) {
		log_err("files_install: bad arguments");
		return -EINVAL;
	}
	for (size_t i = 0; i < t->n_fds; i++) {
		const FdEntry *e = t->fds[i];
		if (!e || e->fd < 0 || e->fd >= FILES_FD_MAX) {
			log_err("pid %u: bad fd entry %zu", t->pid, i);
			return -EINVAL;
		}
		if (files_rst_fd(fr, e->file_id) < 0) {
			log_err("pid %u fd %d: file %u was not restored", t->pid, e->fd, e->file_id);
			return -ENOENT;
		}
		if (e->fd > maxfd)
			maxfd = e->fd;
	}
	raise_nofile();
	hi = malloc((t->n_fds + 1) * sizeof(int));
	stay = malloc((t->n_fds + nkeep + 1) * sizeof(int));
	if (!hi || !stay) {
		ret = log_errno(ENOMEM, "pid %u: fd table", t->pid);
		goto out;
	}
	/* 1. Everything we need goes above the highest target number, so that
	 *    no dup2() below overwrites a source still to be used. */
	for (size_t i = 0; i < t->n_fds; i++) {
		int src = files_rst_fd(fr, t->fds[i]->file_id);
		hi[i] = fcntl(src, F_DUPFD, maxfd + 1);
		if (hi[i] < 0) {
			ret = log_errno(errno, "pid %u fd %d: cannot copy file %u", t->pid,
					t->fds[i]->fd, t->fds[i]->file_id);
			goto out;
		}
	}
	for (int k = 0; k < nkeep; k++) {
		int fl = fcntl(keep[k], F_GETFD), nfd;

		if (fl < 0) {
			ret = log_errno(errno, "pid %u: fd %d to keep", t->pid, keep[k]);
			goto out;
		}
		nfd = fcntl(keep[k], (fl & FD_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD, maxfd + 1);
		if (nfd < 0) {
			ret = log_errno(errno, "pid %u: cannot move fd %d above %d", t->pid,
					keep[k], maxfd);
			goto out;
		}
		keep[k] = nfd;
		stay[nstay++] = nfd;
	}
	/* 2. The dumped numbers. */
	for (size_t i = 0; i < t->n_fds; i++) {
		const FdEntry *e = t->fds[i];
		if (dup3(hi[i], e->fd, e->cloexec ? O_CLOEXEC : 0) < 0) {
			ret = log_errno(errno, "pid %u fd %d: cannot install file %u", t->pid,
					e->fd, e->file_id);
			goto out;
		}
		stay[nstay++] = e->fd;
	}
	/* 3. Close everything else (our copies included). */
	qsort(stay, nstay, sizeof(int), cmp_int);
	{
		unsigned int from = 0;
		for (size_t i = 0; i <= nstay; i++) {
			unsigned int to = i < nstay ? (unsigned int)stay[i] : ~0u;
			if (to > from) {
				ret = close_range_fallback(from, i < nstay ? to - 1 : ~0u);
				if (ret) {
					log_errno(ret, "pid %u: cannot close fds %u-%u", t->pid,
						  from, to - 1);
					goto out;
				}
			}
			if (i < nstay)
				from = to + 1;
		}
	}
	ret = 0;
out:
	free(hi);
	free(stay);
	return ret;
}

int files_post_install(const struct files_rst *fr, const FdtableEntry *t)
{
	for (int early = 1; early >= 0; early--)
	for (size_t i = 0; i < t->n_fds; i++) {
		const struct rst_ent *e = find_ent(fr, t->fds[i]->file_id);
		int ret;

		if (!e) {
			log_err("pid %u fd %d: unknown file %u", t->pid, t->fds[i]->fd,
				t->fds[i]->file_id);
			return -ENOENT;
		}
		if (!e->ops->post_install || e->ops->post_install_early != early)
			continue;
		ret = e->ops->post_install(e->fe, t->fds[i]->fd, t, fr);
		if (ret)
			return ret;
	}
	return 0;
}

static bool table_has_file(const FdtableEntry *t, uint32_t id)
{
	for (size_t i = 0; i < t->n_fds; i++)
		if (t->fds[i]->file_id == id)
			return true;
	return false;
}

int files_rst_check_fdtables(const struct files_rst *fr, FdtableEntry *const *tables, size_t n)
{
	int ret;

	for (size_t i = 0; i < n; i++) {
		ret = files_validate_fdtable(fr->img, tables[i]);
		if (ret)
			return ret;
	}
	for (size_t i = 0; i < fr->n; i++) {
		const FileEntry *fe = fr->e[i].fe;

		for (size_t j = 0; j < fe->n_tfds; j++) {
			const EpollTfd *tf = fe->tfds[j];
			bool found = false;

			for (size_t k = 0; k < n && !found; k++) {
				uint32_t id;

				if (!table_has_file(tables[k], fe->id))
					continue;
				if (tf->tfd_closed) {
					found = table_has_file(tables[k], tf->tfile_id);
					continue;
				}
				id = files_fdtable_id(tables[k], tf->tfd);
				found = id && (!tf->has_tfile_id || id == tf->tfile_id);
			}
			if (!found) {
				log_err("file %u (epoll): no task holds both it and its target fd %d "
					"(file %u): the registration could not be restored",
					fe->id, tf->tfd, tf->tfile_id);
				return -EINVAL;
			}
		}
	}
	return 0;
}
