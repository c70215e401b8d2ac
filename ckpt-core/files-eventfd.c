// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * eventfd: the counter ("eventfd-count:", hex) and the semaphore mode
 * ("eventfd-semaphore:"; older kernels do not show it and the
 * mode is taken as off).  Restore: eventfd(0, EFD_SEMAPHORE?) and one
 * write() of the counter.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "files.h"
#include "log.h"

#define EVENTFD_MAX	0xfffffffffffffffeull

static bool eventfd_match(const struct fd_info *fi)
{
	return !strcmp(fi->link, "anon_inode:[eventfd]");
}

static int eventfd_dump(const struct fd_info *fi, FileEntry *fe)
{
	const char *v = files_fdinfo_field(fi->fdinfo, "eventfd-count:");
	char *end;

	if (!v) {
		log_err(FI_FMT ": eventfd without eventfd-count in its fdinfo", FI_ARG(fi));
		return -EINVAL;
	}
	errno = 0;
	fe->counter = strtoull(v, &end, 16);
	if (errno || end == v) {
		log_err(FI_FMT ": cannot parse eventfd-count", FI_ARG(fi));
		return -EINVAL;
	}
	fe->has_counter = true;
	v = files_fdinfo_field(fi->fdinfo, "eventfd-semaphore:");
	if (v) {
		fe->has_eventfd_semaphore = true;
		fe->eventfd_semaphore = strtoul(v, NULL, 10) != 0;
	}
	return 0;
}

static int eventfd_validate(const FileEntry *fe)
{
	if (!fe->has_counter || fe->counter > EVENTFD_MAX) {
		log_err("file %u (eventfd): missing or bad counter", fe->id);
		return -EINVAL;
	}
	if ((fe->flags & O_ACCMODE) != O_RDWR) {
		log_err("file %u (eventfd): bad flags 0%o", fe->id, fe->flags);
		return -EINVAL;
	}
	return 0;
}

static int eventfd_open(const FileEntry *fe, struct files_rst *fr)
{
	int fd = eventfd(0, fe->eventfd_semaphore ? EFD_SEMAPHORE : 0);

	if (fd < 0)
		return log_errno(errno, "file %u (eventfd): cannot create", fe->id);
	if (fe->counter) {
		uint64_t c = fe->counter;
		if (write(fd, &c, sizeof(c)) != sizeof(c)) {
			int e = errno;
			close(fd);
			return log_errno(e, "file %u (eventfd): cannot set the counter to %llu",
					 fe->id, (unsigned long long)c);
		}
	}
	return fd;
}

const struct file_kind_ops files_eventfd_ops = {
	.kind = FILE_KIND__FILE_EVENTFD,
	.name = "eventfd",
	.match = eventfd_match,
	.dump = eventfd_dump,
	.dump_checks = true,
	.validate = eventfd_validate,
	.open = eventfd_open,
};
