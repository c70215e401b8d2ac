// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * timerfd: clock, settime flags, the REMAINING time of the current period
 * ("it_value:"), the interval and the expirations not read yet ("ticks:").
 * Restore: timerfd_create(clock), timerfd_settime() with the remaining time
 * (relative; for an absolute timer, now + remaining so that
 * TFD_TIMER_CANCEL_ON_SET keeps working), then the ticks with
 * ioctl(TFD_IOC_SET_TICKS) (needs CONFIG_CHECKPOINT_RESTORE).
 * The time the tree spent frozen is not counted: the timer fires that much
 * later than it would have.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "files.h"
#include "log.h"

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif
#define NSEC 1000000000ull
#define TIME_MAX_NS (1ull << 62)

static bool timerfd_match(const struct fd_info *fi)
{
	return !strcmp(fi->link, "anon_inode:[timerfd]");
}

static int parse_ts(const struct fd_info *fi, const char *key, uint64_t *ns)
{
	const char *v = files_fdinfo_field(fi->fdinfo, key);
	unsigned long long s, n;

	if (!v || sscanf(v, " (%llu, %llu)", &s, &n) != 2 || n >= NSEC || s > TIME_MAX_NS / NSEC) {
		log_err(FI_FMT ": timerfd: cannot parse '%s' in its fdinfo", FI_ARG(fi), key);
		return -EINVAL;
	}
	*ns = s * NSEC + n;
	return 0;
}

static int timerfd_dump(const struct fd_info *fi, FileEntry *fe)
{
	const char *v;
	int ret;

	v = files_fdinfo_field(fi->fdinfo, "clockid:");
	if (!v)
		goto bad;
	fe->clockid = strtol(v, NULL, 10);
	v = files_fdinfo_field(fi->fdinfo, "ticks:");
	if (!v)
		goto bad;
	fe->ticks = strtoull(v, NULL, 10);
	v = files_fdinfo_field(fi->fdinfo, "settime flags:");
	if (!v)
		goto bad;
	fe->settime_flags = strtoul(v, NULL, 8);
	fe->has_clockid = fe->has_ticks = fe->has_settime_flags = true;
	ret = parse_ts(fi, "it_value:", &fe->value_ns);
	if (!ret)
		ret = parse_ts(fi, "it_interval:", &fe->interval_ns);
	if (ret)
		return ret;
	fe->has_value_ns = fe->has_interval_ns = true;
	return 0;
bad:
	log_err(FI_FMT ": timerfd: cannot parse its fdinfo", FI_ARG(fi));
	return -EINVAL;
}

static bool clock_ok(int c)
{
	return c == CLOCK_REALTIME || c == CLOCK_MONOTONIC || c == CLOCK_BOOTTIME ||
	       c == CLOCK_REALTIME_ALARM || c == CLOCK_BOOTTIME_ALARM;
}

static int timerfd_validate(const FileEntry *fe)
{
	if (!fe->has_clockid || !clock_ok(fe->clockid) || !fe->has_value_ns ||
	    !fe->has_interval_ns || fe->value_ns > TIME_MAX_NS || fe->interval_ns > TIME_MAX_NS ||
	    (fe->settime_flags & ~(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET)) ||
	    (fe->flags & O_ACCMODE) != O_RDWR) {
		log_err("file %u (timerfd): missing or bad fields", fe->id);
		return -EINVAL;
	}
	return 0;
}

static struct timespec ns_ts(uint64_t ns)
{
	return (struct timespec){ .tv_sec = ns / NSEC, .tv_nsec = ns % NSEC };
}

static int timerfd_open(const FileEntry *fe, struct files_rst *fr)
{
	struct itimerspec its = { .it_interval = ns_ts(fe->interval_ns) };
	uint64_t value = fe->value_ns;
	int fd, flags = 0;

	fd = timerfd_create(fe->clockid, 0);
	if (fd < 0)
		return log_errno(errno, "file %u (timerfd): cannot create on clock %d",
				 fe->id, fe->clockid);
	/* an armed periodic timer about to expire shows 0 left */
	if (!value && fe->interval_ns)
		value = 1;
	if (value) {
		if (fe->settime_flags & TFD_TIMER_ABSTIME) {
			struct timespec now;
			int clk = fe->clockid == CLOCK_REALTIME_ALARM ? CLOCK_REALTIME :
				  fe->clockid == CLOCK_BOOTTIME_ALARM ? CLOCK_BOOTTIME : fe->clockid;

			if (clock_gettime(clk, &now) < 0)
				goto err;
			value += (uint64_t)now.tv_sec * NSEC + now.tv_nsec;
			flags = fe->settime_flags;
		}
		its.it_value = ns_ts(value);
		if (timerfd_settime(fd, flags, &its, NULL) < 0)
			goto err;
	}
	if (fe->has_ticks && fe->ticks) {
		uint64_t t = fe->ticks;
		if (ioctl(fd, TFD_IOC_SET_TICKS, &t) < 0) {
			int e = errno;
			close(fd);
			return log_errno(e, "file %u (timerfd): cannot set %llu pending expirations "
					 "(TFD_IOC_SET_TICKS)", fe->id, (unsigned long long)t);
		}
	}
	return fd;
err:
	{
		int e = errno;
		close(fd);
		return log_errno(e, "file %u (timerfd): cannot arm (%llu ns left, interval %llu ns)",
				 fe->id, (unsigned long long)fe->value_ns,
				 (unsigned long long)fe->interval_ns);
	}
}

const struct file_kind_ops files_timerfd_ops = {
	.kind = FILE_KIND__FILE_TIMERFD,
	.name = "timerfd",
	.match = timerfd_match,
	.dump = timerfd_dump,
	.dump_checks = true,
	.validate = timerfd_validate,
	.open = timerfd_open,
};
