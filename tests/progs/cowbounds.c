/*
 * cowbounds: private memory shared copy-on-write between a parent and its
 * child whose mappings of it no longer have the same bounds.
 *
 * Usage: cowbounds
 *
 * The parent maps six areas of 4 MiB (1 MiB apart), fills them with a
 * pattern and forks; then each area's mapping changes in one of the two:
 *   0: the parent maps 16 KiB right below it (merged into its mapping) and
 *      fills them;
 *   1: the parent unmaps its first 64 KiB (the child keeps them);
 *   2: the child grows it in place by 64 KiB (mremap) and fills those;
 *   3: the child unmaps its first 64 KiB (the parent keeps them);
 *   4: the parent makes its first 64 KiB read-only (its mapping splits in
 *      two; those pages are still shared with the child);
 *   5: the child makes 64 KiB at 1 MiB read-only (its mapping splits in
 *      three over the parent's one).
 * The child also rewrites 64 KiB in the middle of each area (its own
 * copies); the rest stays shared.
 * Lines: "AREA <k> <hex start>", "PID C <child pid>", "READY".  SIGUSR1 to
 * the parent: it checks its own copy, has the child check its copy, and
 * prints "CHECK <k> OK" or "CHECK <k> FAIL <who> at <address>".
 */
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "say.h"

#define NAREAS	6
#define LEN	(4UL << 20)
#define GAP	(1UL << 20)
#define BELOW	(16UL << 10)	/* area 0: mapped below it by the parent */
#define HEAD	(64UL << 10)	/* areas 1 and 3: unmapped; 2: grown by; 4, 5: read-only */
#define RO5	(1UL << 20)	/* area 5: where the child's read-only part starts */
#define MINE	(2UL << 20)	/* where the child's own 64 KiB start */

static volatile sig_atomic_t check_requested;
static void on_usr1(int sig) { check_requested = 1; }

static uint8_t *area[NAREAS];

static uint8_t pattern(int k, size_t i, int child)
{
	if (child && i >= MINE && i < MINE + HEAD)
		return (uint8_t)(i * 13 + k + 1);
	return (uint8_t)(i * 7 + (i >> 12) + k * 31);
}

/* The first address of what @child maps that does not hold its pattern,
 * or NULL. */
static const uint8_t *first_bad(int child)
{
	for (int k = 0; k < NAREAS; k++) {
		size_t from = 0, to = LEN;

		if ((k == 1 && !child) || (k == 3 && child))
			from = HEAD;
		for (size_t i = from; i < to; i++)
			if (area[k][i] != pattern(k, i, child))
				return &area[k][i];
	}
	if (!child) {
		for (size_t i = 0; i < BELOW; i++)
			if (area[0][i - BELOW] != (uint8_t)(i * 3 + 5))
				return &area[0][i - BELOW];
	} else {
		for (size_t i = 0; i < HEAD; i++)
			if (area[2][LEN + i] != (uint8_t)(i * 11 + 9))
				return &area[2][LEN + i];
	}
	return NULL;
}

int main(void)
{
	int to_child[2], from_child[2], n = 0;
	uint8_t *base;
	pid_t c;

	signal(SIGUSR1, on_usr1);
	/* a place for the areas with room around each */
	base = mmap(NULL, NAREAS * (LEN + GAP) + GAP, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED || munmap(base, NAREAS * (LEN + GAP) + GAP))
		die("mmap failed");
	for (int k = 0; k < NAREAS; k++) {
		area[k] = mmap(base + GAP + k * (LEN + GAP), LEN, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (area[k] != base + GAP + k * (LEN + GAP))
			die("mmap of area %d failed", k);
		madvise(area[k], LEN, MADV_NOHUGEPAGE);	/* 4 KiB pages: counted one by one */
		for (size_t i = 0; i < LEN; i++)
			area[k][i] = pattern(k, i, 0);
	}
	if (pipe(to_child) || pipe(from_child))
		die("pipe failed");
	c = fork();
	if (c < 0)
		die("fork failed");
	if (!c) {
		uint8_t *g;
		char q;

		signal(SIGUSR1, SIG_IGN);
		for (int k = 0; k < NAREAS; k++)
			for (size_t i = MINE; i < MINE + HEAD; i++)
				area[k][i] = pattern(k, i, 1);
		g = mremap(area[2], LEN, LEN + HEAD, 0);
		if (g != area[2] || munmap(area[3], HEAD) ||
		    mprotect(area[5] + RO5, HEAD, PROT_READ))
			_exit(1);
		for (size_t i = 0; i < HEAD; i++)
			area[2][LEN + i] = (uint8_t)(i * 11 + 9);
		if (write(from_child[1], "r", 1) != 1)
			_exit(1);
		while (read(to_child[0], &q, 1) == 1) {
			char r = first_bad(1) ? 'n' : 'y';

			if (write(from_child[1], &r, 1) != 1)
				_exit(1);
		}
		_exit(0);
	}
	{
		uint8_t *b;
		char r;

		if (read(from_child[0], &r, 1) != 1)
			die("child did not start");
		b = mmap(area[0] - BELOW, BELOW, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (b != area[0] - BELOW)
			die("mmap below area 0 failed");
		madvise(b, BELOW, MADV_NOHUGEPAGE);	/* as the area: merged into it */
		for (size_t i = 0; i < BELOW; i++)
			b[i] = (uint8_t)(i * 3 + 5);
		if (munmap(area[1], HEAD) || mprotect(area[4], HEAD, PROT_READ))
			die("munmap or mprotect failed");
	}
	for (int k = 0; k < NAREAS; k++)
		say("AREA %d %lx", k, (unsigned long)area[k]);
	say("PID C %d", c);
	say("READY");
	for (;;) {
		if (check_requested) {
			const uint8_t *bad = first_bad(0);
			char r = 0;

			check_requested = 0;
			n++;
			if (write(to_child[1], "?", 1) != 1 || read(from_child[0], &r, 1) != 1)
				say("CHECK %d FAIL child does not answer", n);
			else if (bad)
				say("CHECK %d FAIL parent at %p", n, bad);
			else if (r != 'y')
				say("CHECK %d FAIL child", n);
			else
				say("CHECK %d OK", n);
		}
		sleep_ms(100);
	}
}
