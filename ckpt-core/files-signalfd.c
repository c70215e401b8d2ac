// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * signalfd: the mask ("sigmask:", hex).  Restore: signalfd4(-1, mask).
 * Pending signals are the task's, not the file's: nothing else to keep.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "files.h"
#include "log.h"

static bool signalfd_match(const struct fd_info *fi)
{
	return !strcmp(fi->link, "anon_inode:[signalfd]");
}

static int signalfd_dump(const struct fd_info *fi, FileEntry *fe)
{
	const char *v = files_fdinfo_field(fi->fdinfo, "sigmask:");
	char *end;

	if (!v) {
		log_err(FI_FMT ": signalfd without sigmask in its fdinfo", FI_ARG(fi));
		return -EINVAL;
	}
	errno = 0;
	fe->sigmask = strtoull(v, &end, 16);
	if (errno || end == v) {
		log_err(FI_FMT ": cannot parse the signalfd mask", FI_ARG(fi));
		return -EINVAL;
	}
	fe->has_sigmask = true;
	return 0;
}

static int signalfd_validate(const FileEntry *fe)
{
	if (!fe->has_sigmask) {
		log_err("file %u (signalfd): no mask", fe->id);
		return -EINVAL;
	}
	if ((fe->flags & O_ACCMODE) != O_RDWR) {
		log_err("file %u (signalfd): bad flags 0%o", fe->id, fe->flags);
		return -EINVAL;
	}
	return 0;
}

static int signalfd_open(const FileEntry *fe, struct files_rst *fr)
{
	uint64_t mask = fe->sigmask;
	int fd = syscall(SYS_signalfd4, -1, &mask, sizeof(mask), 0);

	if (fd < 0)
		return log_errno(errno, "file %u (signalfd): cannot create with mask %llx",
				 fe->id, (unsigned long long)mask);
	return fd;
}

const struct file_kind_ops files_signalfd_ops = {
	.kind = FILE_KIND__FILE_SIGNALFD,
	.name = "signalfd",
	.match = signalfd_match,
	.dump = signalfd_dump,
	.dump_checks = true,
	.validate = signalfd_validate,
	.open = signalfd_open,
};
