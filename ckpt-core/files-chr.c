// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Character devices.  Only the memory devices that carry no state are
 * supported (/dev/null, zero, full, random, urandom: recognised by rdev and
 * reopened, by their dumped path when it still is that device, else by
 * /dev/NAME).  Terminals are restored, with --shell-job only, as the
 * restorer's own terminal.  Every other character device is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "files.h"
#include "log.h"

static const struct {
	unsigned int minor;
	const char *path;
} mem_devs[] = {
	{ 3, "/dev/null" },
	{ 5, "/dev/zero" },
	{ 7, "/dev/full" },
	{ 8, "/dev/random" },
	{ 9, "/dev/urandom" },
};

static const char *mem_dev_path(dev_t rdev)
{
	if (major(rdev) != 1)
		return NULL;
	for (size_t i = 0; i < sizeof(mem_devs) / sizeof(mem_devs[0]); i++)
		if (minor(rdev) == mem_devs[i].minor)
			return mem_devs[i].path;
	return NULL;
}

/* Virtual consoles and serial lines (4:*), /dev/tty (5:0), /dev/console
 * (5:1), pty slaves (136-143:*). */
static bool is_tty(dev_t rdev)
{
	unsigned int ma = major(rdev), mi = minor(rdev);

	return ma == 4 || (ma == 5 && (mi == 0 || mi == 1)) || (ma >= 136 && ma <= 143);
}

static bool chr_match(const struct fd_info *fi)
{
	return S_ISCHR(fi->st.st_mode) && !(fi->flags & O_PATH) && !is_tty(fi->st.st_rdev);
}

static bool tty_match(const struct fd_info *fi)
{
	return S_ISCHR(fi->st.st_mode) && !(fi->flags & O_PATH) && is_tty(fi->st.st_rdev);
}

static int chr_dump(const struct fd_info *fi, FileEntry *fe)
{
	const char *name = mem_dev_path(fi->st.st_rdev);

	if (!name) {
		if (major(fi->st.st_rdev) == 5 && minor(fi->st.st_rdev) == 2)
			log_err(FI_FMT ": pty master %s not supported", FI_ARG(fi), fi->link);
		else
			log_err(FI_FMT ": character device %s (%u:%u) not supported", FI_ARG(fi),
				fi->link, major(fi->st.st_rdev), minor(fi->st.st_rdev));
		return -EOPNOTSUPP;
	}
	fe->path = strdup(fi->link[0] == '/' ? fi->link : name);
	if (!fe->path)
		return -ENOMEM;
	fe->has_rdev = true;
	fe->rdev = fi->st.st_rdev;
	return 0;
}

static int chr_validate(const FileEntry *fe)
{
	if (!fe->has_rdev || fe->rdev != (dev_t)fe->rdev || !mem_dev_path(fe->rdev)) {
		log_err(FE_FMT ": not a supported character device (rdev %llx)", FE_ARG(fe),
			(unsigned long long)fe->rdev);
		return -EINVAL;
	}
	if (fe->flags & (O_PATH | O_DIRECTORY)) {
		log_err(FE_FMT ": bad flags 0%o for a device", FE_ARG(fe), fe->flags);
		return -EINVAL;
	}
	return 0;
}

static int open_dev(const char *path, int flags, dev_t rdev)
{
	struct stat st;
	int fd = open(path, flags);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != rdev) {
		close(fd);
		return -ENODEV;
	}
	return fd;
}

static int chr_open(const FileEntry *fe, struct files_rst *fr)
{
	int flags = (fe->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_NOFOLLOW)) | O_NOCTTY;
	const char *name = mem_dev_path(fe->rdev);
	int fd = -ENOENT;

	if (files_path_ok(fe->path))
		fd = open_dev(fe->path, flags, fe->rdev);
	if (fd < 0)
		fd = open_dev(name, flags, fe->rdev);
	if (fd < 0)
		return log_errno(fd, FE_FMT ": cannot open %s (%u:%u)", FE_ARG(fe), name,
				 major(fe->rdev), minor(fe->rdev));
	return fd;
}

static int tty_dump(const struct fd_info *fi, FileEntry *fe)
{
	if (!files_dump_opts(fi->d)->shell_job) {
		log_err(FI_FMT ": terminal %s needs --shell-job", FI_ARG(fi), fi->link);
		return -EOPNOTSUPP;
	}
	fe->path = strdup(fi->link);
	if (!fe->path)
		return -ENOMEM;
	fe->has_rdev = true;
	fe->rdev = fi->st.st_rdev;
	return 0;
}

static int tty_validate(const FileEntry *fe)
{
	if (fe->flags & (O_PATH | O_DIRECTORY)) {
		log_err(FE_FMT ": bad flags 0%o for a terminal", FE_ARG(fe), fe->flags);
		return -EINVAL;
	}
	return 0;
}

/*
 * A new description of the restorer's terminal: reopen stdin, stdout or
 * stderr if one of them is a terminal, else /dev/tty (the controlling
 * terminal).
 */
static int tty_open(const FileEntry *fe, struct files_rst *fr)
{
	int flags = (fe->flags & (O_ACCMODE | O_NONBLOCK | O_APPEND)) | O_NOCTTY;
	int fd;

	if (!files_rst_opts(fr)->shell_job) {
		log_err(FE_FMT ": terminal needs --shell-job", FE_ARG(fe));
		return -EOPNOTSUPP;
	}
	for (int i = 0; i < 3; i++) {
		if (!isatty(i))
			continue;
		fd = files_reopen(i, flags);
		if (fd >= 0)
			return fd;
	}
	fd = open("/dev/tty", flags);
	if (fd < 0)
		return log_errno(errno, FE_FMT ": the restorer has no terminal to give (no "
				 "terminal on fds 0-2, cannot open /dev/tty)", FE_ARG(fe));
	return fd;
}

const struct file_kind_ops files_chr_ops = {
	.kind = FILE_KIND__FILE_CHR,
	.name = "character device",
	.match = chr_match,
	.dump = chr_dump,
	.dump_checks = true,
	.validate = chr_validate,
	.open = chr_open,
};

const struct file_kind_ops files_tty_ops = {
	.kind = FILE_KIND__FILE_TTY,
	.name = "terminal",
	.match = tty_match,
	.dump = tty_dump,
	.dump_checks = true,
	.validate = tty_validate,
	.open = tty_open,
};
