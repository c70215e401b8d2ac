// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Trust of the places images come from and go to.
 *
 * A restore runs as root and recreates whatever its images describe: uids,
 * capabilities, open files, mappings.  So images are only as trustworthy as
 * the place that holds them: an image directory or a store is accepted only
 * when nobody but root could have written it, that is when it and every
 * directory above it up to / are owned by root and writable by nobody else
 * (the rule sshd's StrictModes applies to a user's authorized_keys).  A
 * directory above it may be writable by others if it has the sticky bit
 * (/tmp): others can then add names there but not rename or remove root's.
 * A block or character device may be writable by its group when that group
 * is root's or "disk" (whose members can write every disk anyway; gid 6,
 * Debian's, where no group database names it, as in an initramfs).
 *
 * KUP_INSECURE_IMAGES=1 in the environment turns the check into a warning.
 * It exists for tests that must show what the check protects against; it is
 * never the default.
 */
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "image.h"
#include "log.h"

bool img_trust_relaxed(void)
{
	const char *e = getenv("KUP_INSECURE_IMAGES");

	return e && !strcmp(e, "1");
}

/* The disk group: gid 6 where no group database names it (an initramfs). */
static gid_t disk_gid(void)
{
	struct group *g = getgrnam("disk");

	return g ? g->gr_gid : 6;
}

static const char *kind_name(mode_t m)
{
	return S_ISDIR(m) ? "directory" : S_ISBLK(m) || S_ISCHR(m) ? "device" : "file";
}

/*
 * Is @sb (of @path, @what for messages) safe?  @leaf: the object itself
 * rather than a directory above it.  0, or -EPERM logged.
 */
static int check_stat(const struct stat *sb, const char *path, const char *what, bool leaf)
{
	mode_t wr = sb->st_mode & 022;

	if (sb->st_uid != 0) {
		log_err("%s: bad ownership or modes for %s %s: owned by uid %u, not root",
			what, kind_name(sb->st_mode), path, (unsigned)sb->st_uid);
		return -EPERM;
	}
	if (leaf && (S_ISBLK(sb->st_mode) || S_ISCHR(sb->st_mode)) &&
	    (sb->st_gid == 0 || sb->st_gid == disk_gid()))
		wr &= ~020;
	if (!leaf && (sb->st_mode & S_ISVTX))
		wr = 0;
	if (wr) {
		log_err("%s: bad ownership or modes for %s %s: writable by %s (mode %04o)",
			what, kind_name(sb->st_mode), path,
			wr == 022 ? "group and others" : wr == 020 ? "group" : "others",
			(unsigned)(sb->st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

int img_trust_path(const char *path, int fd, const char *what)
{
	char *real, *slash;
	struct stat sb, fsb;
	int ret = 0;

	if (img_trust_relaxed()) {
		log_warn("%s: %s not checked for ownership and modes (KUP_INSECURE_IMAGES=1, "
			 "for tests only)", what, path);
		return 0;
	}
	real = realpath(path, NULL);
	if (!real)
		return log_errno(errno, "%s: cannot resolve %s", what, path);
	if (stat(real, &sb)) {
		ret = log_errno(errno, "%s: cannot inspect %s", what, real);
		goto out;
	}
	/* the object opened is the one checked */
	if (fd >= 0 && (fstat(fd, &fsb) || fsb.st_dev != sb.st_dev || fsb.st_ino != sb.st_ino)) {
		log_err("%s: %s changed while it was being opened", what, path);
		ret = -EPERM;
		goto out;
	}
	ret = check_stat(&sb, real, what, true);
	while (!ret && (slash = strrchr(real, '/'))) {
		if (slash == real)
			slash[1] = 0;	/* "/" itself */
		else
			*slash = 0;
		if (stat(real, &sb)) {
			ret = log_errno(errno, "%s: cannot inspect %s", what, real);
			break;
		}
		ret = check_stat(&sb, real, what, false);
		if (slash == real)
			break;
	}
out:
	free(real);
	return ret;
}

/*
 * The pid holding a flock() on @fd's file, from /proc/locks (0 if none is
 * found: it was released meanwhile, or the lock is of another kind);
 * *@writer: an exclusive lock (may be NULL).
 */
pid_t img_lock_holder(int fd, bool *writer)
{
	FILE *f = fopen("/proc/locks", "re");
	char line[256];
	struct stat sb;
	pid_t pid = 0;

	if (!f)
		return 0;
	if (fstat(fd, &sb)) {
		fclose(f);
		return 0;
	}
	while (!pid && fgets(line, sizeof(line), f)) {
		unsigned int maj, min;
		unsigned long ino;
		char kind[16], rw[16];
		int p;

		if (strstr(line, "->"))
			continue;	/* a waiter, not a holder */
		if (sscanf(line, "%*d: %15s %*s %15s %d %x:%x:%lu", kind, rw, &p, &maj, &min,
			   &ino) != 6)
			continue;
		if (!strcmp(kind, "FLOCK") && p > 0 && ino == sb.st_ino &&
		    maj == major(sb.st_dev) && min == minor(sb.st_dev)) {
			pid = p;
			if (writer)
				*writer = !strcmp(rw, "WRITE");
		}
	}
	fclose(f);
	return pid;
}
