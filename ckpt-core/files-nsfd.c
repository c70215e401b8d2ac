// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Namespace fds (open("/proc/PID/ns/TYPE"), link "TYPE:[inode]").
 *
 * Only an fd of the namespace the tree is restored in is kept: one of
 * kup's own namespaces (the restorer's at restore, which the restored tree
 * lives in).  Dump: the type, checked against /proc/self/ns/TYPE (device
 * and inode).  Restore: open("/proc/self/ns/TYPE") in the master.  An fd of
 * any other namespace (of another process, of a namespace of the tree's
 * own, one kept alive by a bind mount) is refused, naming it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "log.h"

static const char *const ns_types[] = {
	"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts",
};

static bool ns_type_ok(const char *t)
{
	for (size_t i = 0; i < sizeof(ns_types) / sizeof(ns_types[0]); i++)
		if (!strcmp(t, ns_types[i]))
			return true;
	return false;
}

/* "net:[4026531840]" -> "net" in @type. */
static bool ns_link(const char *link, char type[16])
{
	unsigned long long ino;
	int end = 0;

	return sscanf(link, "%15[a-z]:[%llu]%n", type, &ino, &end) == 2 && end &&
	       !link[end] && ns_type_ok(type);
}

static bool nsfd_match(const struct fd_info *fi)
{
	char type[16];

	return S_ISREG(fi->st.st_mode) && !(fi->flags & O_PATH) && ns_link(fi->link, type);
}

static int nsfd_dump(const struct fd_info *fi, FileEntry *fe)
{
	char type[16], own[64];
	struct stat st;

	if (!ns_link(fi->link, type))
		return -EINVAL;
	snprintf(own, sizeof(own), "/proc/self/ns/%s", type);
	if (stat(own, &st) || st.st_dev != fi->st.st_dev || st.st_ino != fi->st.st_ino) {
		log_err(FI_FMT ": fd of the %s namespace %s, which is not the one the tree is "
			"restored in (kup's own): not supported", FI_ARG(fi), type, fi->link);
		return -EOPNOTSUPP;
	}
	fe->path = strdup(type);
	return fe->path ? 0 : -ENOMEM;
}

static int nsfd_validate(const FileEntry *fe)
{
	if (!fe->path || !ns_type_ok(fe->path) || (fe->flags & (O_PATH | O_DIRECTORY))) {
		log_err("file %u (namespace fd): bad type or flags", fe->id);
		return -EINVAL;
	}
	return 0;
}

static int nsfd_open(const FileEntry *fe, struct files_rst *fr)
{
	char own[64];
	int fd;

	snprintf(own, sizeof(own), "/proc/self/ns/%s", fe->path);
	fd = open(own, (fe->flags & O_ACCMODE) | O_CLOEXEC);
	if (fd < 0)
		return log_errno(errno, "file %u: cannot open %s", fe->id, own);
	return fd;
}

const struct file_kind_ops files_nsfd_ops = {
	.kind = FILE_KIND__FILE_NSFD,
	.name = "namespace fd",
	.match = nsfd_match,
	.dump = nsfd_dump,
	.dump_checks = true,
	.validate = nsfd_validate,
	.open = nsfd_open,
};
