// SPDX-License-Identifier: GPL-2.0-or-later
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static int log_level = LOG_LVL_INFO;
static const char *log_prefix = "kup";

void log_set_level(int level) { log_level = level; }
int log_get_level(void) { return log_level; }
void log_set_prefix(const char *prefix) { log_prefix = prefix; }

void log_msg(int level, int err, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	char buf[1024];
	va_list ap;
	int n;

	if (level > log_level)
		return;
	n = snprintf(buf, sizeof(buf), "%s: %s%s", log_prefix,
		     level == LOG_LVL_INFO ? "" : names[level],
		     level == LOG_LVL_INFO ? "" : ": ");
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < sizeof(buf))
		n += vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	if (err && n >= 0 && (size_t)n < sizeof(buf))
		n += snprintf(buf + n, sizeof(buf) - n, ": %s", strerror(err));
	if (n < 0 || (size_t)n >= sizeof(buf) - 1)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	/* one write() so that lines from several tasks do not interleave */
	if (write(STDERR_FILENO, buf, n) < 0)
		return;
}

void log_progress(const char *what, unsigned long long done, unsigned long long total)
{
	if (log_level < LOG_LVL_INFO || !isatty(STDERR_FILENO))
		return;
	fprintf(stderr, "\r%s: %s %llu/%llu%s", log_prefix, what, done, total,
		done >= total ? "\n" : "");
}
