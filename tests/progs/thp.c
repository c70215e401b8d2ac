/*
 * thp: private anonymous memory in transparent huge pages, 2 MiB aligned and
 * filled with a pattern: asked for with MADV_HUGEPAGE before it is written
 * ("advise"), or written in 4 KiB pages with no advice and then collapsed
 * by the program itself with MADV_COLLAPSE ("collapse": huge pages in a
 * mapping without the "hg" flag, as THP "always" or khugepaged leave), or
 * so only its first half ("half").
 *
 * Usage: thp [MIB [advise|collapse|half]]   (default 64 advise)
 *
 * Lines: "AREA <hex start>", "READY"; SIGUSR1: "CHECK <k> OK sum=<hex>" when
 * every byte still holds its pattern, "CHECK <k> FAIL at <offset>" if not.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "say.h"

#define HUGE	(2UL << 20)
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

static size_t LEN = 64UL << 20;

static volatile sig_atomic_t check_requested;
static void on_usr1(int sig) { check_requested = 1; }

int main(int argc, char **argv)
{
	uint8_t *raw, *a;
	int k = 0;
	bool advise = argc < 3 || !strcmp(argv[2], "advise");

	if (argc > 1)
		LEN = strtoul(argv[1], NULL, 10) << 20;
	if (!LEN)
		die("usage: thp [MIB [advise|collapse|half]]");
	signal(SIGUSR1, on_usr1);
	raw = mmap(NULL, LEN + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		die("mmap failed");
	a = (uint8_t *)(((uintptr_t)raw + HUGE - 1) & ~(HUGE - 1));
	if (advise && madvise(a, LEN, MADV_HUGEPAGE))
		die("madvise(MADV_HUGEPAGE) failed");
	for (size_t i = 0; i < LEN; i++)
		a[i] = (uint8_t)(i * 7 + (i >> 12));
	if (!advise && madvise(a, strcmp(argv[2], "half") ? LEN : LEN / 2, MADV_COLLAPSE))
		say("NOCOLLAPSE %d", errno);
	say("AREA %lx", (unsigned long)a);
	say("READY");
	for (;;) {
		if (check_requested) {
			uint64_t sum = 0;
			size_t bad = LEN;

			check_requested = 0;
			k++;
			for (size_t i = 0; i < LEN; i++) {
				if (a[i] != (uint8_t)(i * 7 + (i >> 12))) {
					bad = i;
					break;
				}
				sum += a[i];
			}
			if (bad < LEN)
				say("CHECK %d FAIL at %zu", k, bad);
			else
				say("CHECK %d OK sum=%llx", k, (unsigned long long)sum);
		}
		sleep_ms(100);
	}
}
