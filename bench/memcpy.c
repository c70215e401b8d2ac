// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The yardstick for the dump/restore benchmark: one memcpy of SIZE_MB into
 * fresh (never touched) memory, as a dump or restore must also fill memory
 * it has just obtained, and one into memory already faulted in; and one
 * into fresh memory asked for in transparent huge pages (MADV_HUGEPAGE),
 * by two threads a half each, as an eager restore of such memory fills it:
 * huge pages another mapping of the same size has just freed, as the
 * restore after a dump's kill finds them (in a VM, memory never touched
 * before costs the host's backing too: the first figure).
 * Usage: memcpy [SIZE_MB]   prints "memcpy_fresh_ms N", "memcpy_warm_ms N"
 * and "memcpy_fresh_thp2_ms N"
 */
#include <pthread.h>
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

struct half {
	char *dst;
	const char *src;
	size_t len;
};

static void *copy_half(void *arg)
{
	struct half *h = arg;

	memcpy(h->dst, h->src, h->len);
	return NULL;
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
	if (dst[4096] != src[4096])
		return 1;
	munmap(dst, len);
	dst = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (dst == MAP_FAILED || madvise(dst, len, MADV_HUGEPAGE))
		return 0;	/* no THP here: no such line */
	memset(dst, 1, len);
	munmap(dst, len);
	dst = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (dst == MAP_FAILED || madvise(dst, len, MADV_HUGEPAGE))
		return 1;
	{
		struct half h[2] = { { dst, src, len / 2 }, { dst + len / 2, src + len / 2, len - len / 2 } };
		pthread_t th;

		t = ms();
		if (pthread_create(&th, NULL, copy_half, &h[1]))
			return 1;
		copy_half(&h[0]);
		pthread_join(th, NULL);
		printf("memcpy_fresh_thp2_ms %.1f\n", ms() - t);
	}
	return dst[len - 4096] != src[len - 4096];
}
