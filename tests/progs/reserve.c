/*
 * reserve: huge reservations with few pages, as database servers and
 * allocators make them (MariaDB reserves 8 TiB).
 *
 * Usage: reserve [-r TIB] [-t MIB]    (default 8 TiB, 100 MiB)
 *   A: TIB TiB mapped PROT_NONE (MAP_NORESERVE), its first MIB MiB made
 *      read-write and filled with a pattern (the used part of the
 *      reservation);
 *   B: 1 TiB mapped read-write with MAP_NORESERVE, one page written every
 *      GiB (1024 pages far apart);
 *   C: 16 pages written, then made PROT_NONE (pages that exist in a mapping
 *      nobody may touch);
 *   D: 8 TiB PROT_NONE without MAP_NORESERVE (not accounted: PROT_NONE).
 * None of A or B could be mapped writable without MAP_NORESERVE under the
 * default overcommit heuristic, nor D accounted.
 *
 * Protocol: the tests/progs one (single-write lines, SIGUSR1 self-check).
 * Lines of this program:
 *   "READY <pid> A=<hex> B=<hex> C=<hex> D=<hex> sum=<hex>"
 *   "C <n> <pid> <realtime_ms>"   n = 0, 1, 2, ... with no gap and no repeat
 *   "CHECK <k> OK sum=<hex>"      every written word as written (C is made
 *                                  readable for the check and PROT_NONE again)
 *   "CHECK <k> FAIL <why>"
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "say.h"

#define PAGE	4096UL
#define GIB	(1UL << 30)
#define TIB	(1UL << 40)

static volatile sig_atomic_t check_requested;

static void on_usr1(int sig)
{
	check_requested = 1;
}

static uint64_t word(uint64_t addr)
{
	uint64_t z = addr * 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	return (z ^ (z >> 31)) | 1;
}

static void fill(uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i += 8)
		*(uint64_t *)(p + i) = word((uintptr_t)(p + i));
}

/* The sum of the words; @bad: set when a word is not the one written. */
static uint64_t sum_of(const uint8_t *p, size_t len, uint64_t s, bool *bad)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t w = *(const uint64_t *)(p + i);

		if (w != word((uintptr_t)(p + i)))
			*bad = true;
		s = (s ^ w) * 0x100000001b3ull;
	}
	return s;
}

static uint8_t *a, *b, *c, *d;
static size_t a_used;

static uint64_t sum_all(bool *bad)
{
	uint64_t s = 0xcbf29ce484222325ull;

	s = sum_of(a, a_used, s, bad);
	for (size_t g = 0; g < TIB / GIB; g++)
		s = sum_of(b + g * GIB, PAGE, s, bad);
	if (mprotect(c, 16 * PAGE, PROT_READ))
		die("mprotect C readable: %s", strerror(errno));
	s = sum_of(c, 16 * PAGE, s, bad);
	if (mprotect(c, 16 * PAGE, PROT_NONE))
		die("mprotect C back to PROT_NONE: %s", strerror(errno));
	return s;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	size_t tib = 8, mib = 100;
	unsigned checks = 0;
	unsigned long n = 0;
	uint64_t sum0;
	bool bad = false;
	int opt;

	while ((opt = getopt(argc, argv, "r:t:")) != -1) {
		if (opt == 'r')
			tib = strtoul(optarg, NULL, 0);
		else if (opt == 't')
			mib = strtoul(optarg, NULL, 0);
		else {
			fprintf(stderr, "usage: reserve [-r TIB] [-t MIB]\n");
			return 2;
		}
	}
	a_used = mib << 20;
	a = mmap(NULL, tib * TIB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (a == MAP_FAILED)
		die("cannot reserve %zu TiB: %s", tib, strerror(errno));
	if (mprotect(a, a_used, PROT_READ | PROT_WRITE))
		die("mprotect A: %s", strerror(errno));
	fill(a, a_used);
	b = mmap(NULL, TIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		 -1, 0);
	if (b == MAP_FAILED)
		die("cannot map 1 TiB with MAP_NORESERVE: %s", strerror(errno));
	for (size_t g = 0; g < TIB / GIB; g++)
		fill(b + g * GIB, PAGE);
	c = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (c == MAP_FAILED)
		die("cannot map C: %s", strerror(errno));
	fill(c, 16 * PAGE);
	if (mprotect(c, 16 * PAGE, PROT_NONE))
		die("mprotect C: %s", strerror(errno));
	d = mmap(NULL, 8 * TIB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (d == MAP_FAILED)
		die("cannot reserve D: %s", strerror(errno));
	sum0 = sum_all(&bad);
	if (bad)
		die("a word differs right after it was written");
	sigaction(SIGUSR1, &sa, NULL);
	say("READY %d A=%lx B=%lx C=%lx D=%lx sum=%016llx", getpid(), (unsigned long)a,
	    (unsigned long)b, (unsigned long)c, (unsigned long)d, (unsigned long long)sum0);
	for (;;) {
		say("C %lu %d %llu", n++, getpid(), (unsigned long long)now_ms());
		if (check_requested) {
			uint64_t s;

			check_requested = 0;
			bad = false;
			s = sum_all(&bad);
			if (bad || s != sum0)
				say("CHECK %u FAIL sum=%016llx, %016llx before%s", ++checks,
				    (unsigned long long)s, (unsigned long long)sum0,
				    bad ? ", a word differs" : "");
			else
				say("CHECK %u OK sum=%016llx", ++checks, (unsigned long long)s);
		}
		sleep_ms(100);
	}
}
