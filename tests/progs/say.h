/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Shared by the test programs.  The output protocol: every line is written by
 * one write(2) to stdout, so lines of several processes never mix and nothing
 * waits in a stdio buffer; "ERROR <why>" means a broken invariant, exit 1.
 * Async-signal-safe as long as the format is.  A program may define
 * SAY_LINE_MAX before including this (default 1024 bytes, on the stack), and
 * SAY_NO_DIE when it has a die() of its own.  Then small helpers: sleeping
 * and clocks in milliseconds, and (with SAY_UNIX_ADDR defined) unix socket
 * addresses.
 */
#ifndef KUP_TEST_SAY_H
#define KUP_TEST_SAY_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#ifndef SAY_LINE_MAX
#define SAY_LINE_MAX 1024
#endif

static void __attribute__((format(printf, 1, 2), unused)) say(const char *fmt, ...)
{
	char line[SAY_LINE_MAX];
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (len > (int)sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	if (write(1, line, len) != len)
		_exit(3);
}

#ifndef SAY_NO_DIE
#define die(...) do { say("ERROR " __VA_ARGS__); exit(1); } while (0)
#endif

/* Sleep @ms; a caught signal ends it early (a check request is answered at
 * once, the tick just comes early). */
static void __attribute__((unused)) sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Sleep @ms whatever signals arrive. */
static void __attribute__((unused)) sleep_ms_full(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static uint64_t __attribute__((unused)) clock_ms(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return ts.tv_sec * 1000ull + ts.tv_nsec / 1000000;
}

/* Wall-clock milliseconds (comparable between processes and with kup's
 * logs), and monotonic ones (for timeouts). */
static uint64_t __attribute__((unused)) now_ms(void) { return clock_ms(CLOCK_REALTIME); }
static uint64_t __attribute__((unused)) mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }

#ifdef SAY_UNIX_ADDR
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

/* A unix socket address: a path, or "@name" for the abstract namespace. */
static socklen_t make_addr(const char *a, struct sockaddr_un *sa)
{
	size_t l = strlen(a);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (l >= sizeof(sa->sun_path))
		die("address too long");
	memcpy(sa->sun_path, a, l);
	if (a[0] == '@') {
		sa->sun_path[0] = 0;
		return offsetof(struct sockaddr_un, sun_path) + l;
	}
	return sizeof(*sa);
}
#endif

#endif
