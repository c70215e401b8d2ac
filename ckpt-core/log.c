// SPDX-License-Identifier: GPL-2.0-or-later
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int log_level = LOG_LVL_INFO;
static const char *log_prefix = "kup";
/* -1: not looked at yet; 0: plain lines; 1: "<N>" syslog level prefixes */
static int level_prefix = -1;

/*
 * Where stderr goes decides the form of a line.  journald's stream (a
 * service's stderr: JOURNAL_STREAM names its device and inode) and the
 * kernel log (/dev/kmsg, the holder's log in the initramfs) read a "<N>"
 * prefix as the line's priority, so `journalctl -p err` finds kup's errors.
 * A terminal or a file gets the lines as they are.
 */
static bool stderr_takes_levels(void)
{
	unsigned long long dev, ino;
	const char *js = getenv("JOURNAL_STREAM");
	struct stat st;

	if (fstat(STDERR_FILENO, &st))
		return false;
	if (S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 11)
		return true;	/* /dev/kmsg */
	return js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
	       dev == (unsigned long long)st.st_dev && ino == (unsigned long long)st.st_ino;
}

void log_set_level_prefix(int on) { level_prefix = on < 0 ? -1 : !!on; }

void log_set_level(int level) { log_level = level; }
int log_get_level(void) { return log_level; }
void log_set_prefix(const char *prefix) { log_prefix = prefix; }

static log_hook_fn log_hook;

log_hook_fn log_set_hook(log_hook_fn hook)
{
	log_hook_fn prev = log_hook;

	log_hook = hook;
	return prev;
}

void log_msg(int level, int err, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	/* syslog priorities: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG */
	static const int prio[] = { 3, 4, 6, 7 };
	char buf[1024];
	va_list ap;
	int n = 0, text;

	if (level > log_level)
		return;
	if (level < LOG_LVL_ERR || level > LOG_LVL_DEBUG)
		level = LOG_LVL_DEBUG;
	if (level_prefix < 0)
		level_prefix = stderr_takes_levels();
	if (level_prefix)
		n = snprintf(buf, sizeof(buf), "<%d>", prio[level]);
	n += snprintf(buf + n, sizeof(buf) - n, "%s: %s%s", log_prefix,
		     level == LOG_LVL_INFO ? "" : names[level],
		     level == LOG_LVL_INFO ? "" : ": ");
	text = n;
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < sizeof(buf))
		n += vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	if (err && n >= 0 && (size_t)n < sizeof(buf))
		n += snprintf(buf + n, sizeof(buf) - n, ": %s", strerror(err));
	if (n < 0 || (size_t)n >= sizeof(buf) - 1)
		n = sizeof(buf) - 2;
	if (log_hook && text >= 0 && text < n) {
		buf[n] = 0;
		if (log_hook(level, buf + text))
			return;		/* taken, not written */
	}
	buf[n++] = '\n';
	/* one write() so that lines from several tasks do not interleave */
	if (write(STDERR_FILENO, buf, n) < 0)
		return;
}

/*
 * The progress line: on a terminal only (at info level, not into the journal
 * or a file), once the work has lasted a second, at most four times a
 * second: "kup dump: memory 312/672 MiB (46%), 150 MiB/s, 2 s left".
 */
static struct {
	const char *what;
	unsigned long long total, done;
	double t0, last;
	bool on, shown, always;
} prog;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void progress_print(bool end)
{
	double t = now_s(), el = t - prog.t0, rate = el > 0 ? prog.done / el : 0;
	char line[160];
	int n;

	n = snprintf(line, sizeof(line), "\r%s: %s %llu/%llu MiB", log_prefix, prog.what,
		     prog.done >> 20, prog.total >> 20);
	if (prog.total && n < (int)sizeof(line))
		n += snprintf(line + n, sizeof(line) - n, " (%llu%%)",
			      prog.done >= prog.total ? 100 : prog.done * 100 / prog.total);
	if (n < (int)sizeof(line))
		n += snprintf(line + n, sizeof(line) - n, ", %.0f MiB/s", rate / (1 << 20));
	if (!end && rate > 0 && prog.total > prog.done && n < (int)sizeof(line))
		n += snprintf(line + n, sizeof(line) - n, ", %.0f s left",
			      (prog.total - prog.done) / rate + 0.5);
	if (end && n < (int)sizeof(line))
		n += snprintf(line + n, sizeof(line) - n, ", %.1f s", el);
	if (n >= (int)sizeof(line))
		n = sizeof(line) - 1;
	/* clear the rest of the line; a newline at the end */
	fprintf(stderr, "%s\033[K%s", line, end ? "\n" : "");
	fflush(stderr);
	prog.last = t;
	prog.shown = true;
}

void log_progress_begin(const char *what, unsigned long long total)
{
	/* KUP_PROGRESS=always: from the start, never: not at all */
	const char *env = getenv("KUP_PROGRESS");

	prog.on = log_level >= LOG_LVL_INFO && level_prefix != 1 && isatty(STDERR_FILENO) &&
		  !(env && !strcmp(env, "never"));
	prog.always = env && !strcmp(env, "always");
	prog.what = what;
	prog.total = total;
	prog.done = 0;
	prog.shown = false;
	prog.t0 = prog.last = now_s();
}

void log_progress_add(unsigned long long bytes)
{
	double t;

	if (!prog.on)
		return;
	prog.done += bytes;
	t = now_s();
	if ((prog.always || t - prog.t0 >= 1.0) && (t - prog.last >= 0.25 || !prog.shown))
		progress_print(false);
}

void log_progress_end(void)
{
	if (prog.on && prog.shown)
		progress_print(true);
	prog.on = false;
}
