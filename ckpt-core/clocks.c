// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The tree's monotonic clocks across a restore.
 *
 * CLOCK_MONOTONIC and CLOCK_BOOTTIME count from the boot: after a kexec the
 * new kernel's clocks start near zero, and a restored program would see them
 * jump back by the old uptime (timers, timeouts and "never goes back"
 * checks break).  The dump records what the tree read from both clocks when
 * the checkpoint was committed.  When the restore runs on another boot (or
 * the tree lived in a time namespace), the restorer makes a time namespace
 * (unshare(CLONE_NEWTIME), /proc/self/timens_offsets) in which both clocks
 * go on from the recorded values; every restored task is created in it.
 * The time between dump and restore does not count, as for a process that
 * was stopped.  CLOCK_REALTIME is not namespaced and stays the wall clock.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* /proc/PID/timens_offsets: "monotonic S NS\nboottime S NS\n" (absent
 * without CONFIG_TIME_NS: no offsets). */
static int read_offsets(pid_t pid, int64_t *mono, int64_t *boot)
{
	char *s = proc_read_file(pid, "timens_offsets", NULL), *line, *save = NULL;

	*mono = *boot = 0;
	if (!s)
		return 0;
	for (line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[32];
		long long sec, nsec;

		if (sscanf(line, "%31s %lld %lld", name, &sec, &nsec) != 3)
			continue;
		if (!strcmp(name, "monotonic"))
			*mono = sec * 1000000000LL + nsec;
		else if (!strcmp(name, "boottime"))
			*boot = sec * 1000000000LL + nsec;
	}
	free(s);
	return 0;
}

static int ns_ino(pid_t pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/ns/time", pid);
	n = readlink(path, buf, len - 1);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return 0;
}

int clocks_dump_check(const pid_t *pids, int n)
{
	char root[64], other[64];

	if (ns_ino(pids[0], root, sizeof(root)))
		return 0;	/* no time namespaces here */
	for (int i = 1; i < n; i++) {
		if (ns_ino(pids[i], other, sizeof(other)))
			continue;	/* gone (zombie): checked by its parent */
		if (strcmp(root, other)) {
			log_err("pid %d is in another time namespace (%s) than the root %d (%s): "
				"not supported", pids[i], other, pids[0], root);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

void clocks_dump(pid_t root, InventoryEntry *inv)
{
	int64_t mo, bo;

	read_offsets(root, &mo, &bo);
	inv->has_mono_ns = inv->has_boottime_ns = true;
	inv->mono_ns = clock_ns(CLOCK_MONOTONIC) + mo;
	inv->boottime_ns = clock_ns(CLOCK_BOOTTIME) + bo;
	inv->has_timens_mono_off_ns = inv->has_timens_boot_off_ns = true;
	inv->timens_mono_off_ns = mo;
	inv->timens_boot_off_ns = bo;
}

static void split(int64_t ns, long long *sec, long long *nsec)
{
	*sec = ns / 1000000000LL;
	*nsec = ns % 1000000000LL;
	if (*nsec < 0) {	/* the kernel wants 0 <= nsec < 1e9 */
		*nsec += 1000000000LL;
		(*sec)--;
	}
}

int clocks_restore_prepare(const InventoryEntry *inv, bool same_boot, bool allow_differences)
{
	int64_t mo, bo;
	long long ms, mn, bs, bn;
	char buf[128];
	int fd, len;

	if (!inv->has_mono_ns || !inv->has_boottime_ns)
		return 0;	/* older images: nothing recorded */
	if (same_boot) {
		/* the clocks went on; only a namespace's offsets to keep */
		mo = inv->timens_mono_off_ns;
		bo = inv->timens_boot_off_ns;
	} else {
		mo = inv->mono_ns - clock_ns(CLOCK_MONOTONIC);
		bo = inv->boottime_ns - clock_ns(CLOCK_BOOTTIME);
	}
	if (!mo && !bo)
		return 0;
	if (unshare(CLONE_NEWTIME)) {
		if (!allow_differences)
			return log_errno(errno, "pid %u: cannot make a time namespace: the restored "
					 "tree's monotonic clock would jump by %+.3f s "
					 "(--allow-differences accepts it)", inv->root_pid, -mo / 1e9);
		log_warn_errno(errno, "pid %u: cannot make a time namespace: the restored tree's "
			       "monotonic clock jumps by %+.3f s", inv->root_pid, -mo / 1e9);
		return 0;
	}
	split(mo, &ms, &mn);
	split(bo, &bs, &bn);
	len = snprintf(buf, sizeof(buf), "monotonic %lld %lld\nboottime %lld %lld\n", ms, mn, bs, bn);
	fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, len) != len) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		return log_errno(e, "cannot set the time namespace offsets (monotonic %+.3f s, "
				 "boottime %+.3f s)", mo / 1e9, bo / 1e9);
	}
	close(fd);
	log_info("clocks: the tree's monotonic clock goes on from %.3f s (time namespace, "
		 "offset %+.3f s)", inv->mono_ns / 1e9, mo / 1e9);
	return 0;
}
