/*
 * thp: 64 MiB of private anonymous memory asked for transparent huge pages
 * (MADV_HUGEPAGE), 2 MiB aligned and filled with a pattern.
 *
 * Usage: thp
 *
 * Lines: "AREA <hex start>", "READY"; SIGUSR1: "CHECK <k> OK sum=<hex>" when
 * every byte still holds its pattern, "CHECK <k> FAIL at <offset>" if not.
 */
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "say.h"

#define LEN	(64UL << 20)
#define HUGE	(2UL << 20)

static volatile sig_atomic_t check_requested;
static void on_usr1(int sig) { check_requested = 1; }

int main(void)
{
	uint8_t *raw, *a;
	int k = 0;

	signal(SIGUSR1, on_usr1);
	raw = mmap(NULL, LEN + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		die("mmap failed");
	a = (uint8_t *)(((uintptr_t)raw + HUGE - 1) & ~(HUGE - 1));
	if (madvise(a, LEN, MADV_HUGEPAGE))
		die("madvise(MADV_HUGEPAGE) failed");
	for (size_t i = 0; i < LEN; i++)
		a[i] = (uint8_t)(i * 7 + (i >> 12));
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
