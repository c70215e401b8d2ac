/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The output protocol shared by the test programs: every line is written by
 * one write(2) to stdout, so lines of several processes never mix and nothing
 * waits in a stdio buffer; "ERROR <why>" means a broken invariant, exit 1.
 * Async-signal-safe as long as the format is.  A program may define
 * SAY_LINE_MAX before including this (default 1024 bytes, on the stack), and
 * SAY_NO_DIE when it has a die() of its own.
 */
#ifndef KUP_TEST_SAY_H
#define KUP_TEST_SAY_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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

#endif
