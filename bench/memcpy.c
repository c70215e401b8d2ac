// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The yardstick for the dump/restore benchmark: one memcpy of SIZE_MB into
 * fresh (never touched) memory, as a dump or restore must also fill memory
 * it has just obtained, and one into memory already faulted in.
 * Usage: memcpy [SIZE_MB]   prints "memcpy_fresh_ms N" and "memcpy_warm_ms N"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	size_t len = (argc > 1 ? strtoull(argv[1], NULL, 10) : 1024) << 20;
	char *src = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *dst = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	double t;

	if (src == MAP_FAILED || dst == MAP_FAILED)
		return 1;
	for (size_t i = 0; i < len; i += 4096)
		src[i] = (char)i;
	t = ms();
	memcpy(dst, src, len);
	printf("memcpy_fresh_ms %.1f\n", ms() - t);
	t = ms();
	memcpy(dst, src, len);
	printf("memcpy_warm_ms %.1f\n", ms() - t);
	return dst[4096] != src[4096];
}
