/*
 * cowtree: private memory shared copy-on-write between a parent and its
 * child.
 *
 * Usage: cowtree
 *
 * The parent maps 32 MiB of private anonymous memory, fills it with a
 * pattern and forks; the child then rewrites its first 1 MiB with another
 * pattern (those pages are its own copies) and drops the 64 KiB after it
 * (MADV_DONTNEED: zeros for the child, the parent keeps its pages); the
 * other 30.9 MiB stay shared.
 * Lines: "AREA <hex start>", "PID C <child pid>", "READY".  SIGUSR1 to the
 * parent: it checks its own copy, has the child check its copy, and prints
 * "CHECK <k> OK" or "CHECK <k> FAIL <who> at <offset>".
 */
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "say.h"

#define LEN	(32UL << 20)
#define MINE	(1UL << 20)
#define DROPPED	(64UL << 10)	/* after MINE, in the child */

static volatile sig_atomic_t check_requested;
static void on_usr1(int sig) { check_requested = 1; }

static uint8_t pattern(size_t i, int child)
{
	if (child && i < MINE)
		return (uint8_t)(i * 13 + 1);
	if (child && i < MINE + DROPPED)
		return 0;
	return (uint8_t)(i * 7 + (i >> 12));
}

static long first_bad(const uint8_t *a, int child)
{
	for (size_t i = 0; i < LEN; i++)
		if (a[i] != pattern(i, child))
			return i;
	return -1;
}

int main(void)
{
	int to_child[2], from_child[2], k = 0;
	uint8_t *a;
	pid_t c;

	signal(SIGUSR1, on_usr1);
	a = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		die("mmap failed");
	madvise(a, LEN, MADV_NOHUGEPAGE);	/* 4 KiB pages: counted one by one */
	for (size_t i = 0; i < LEN; i++)
		a[i] = pattern(i, 0);
	if (pipe(to_child) || pipe(from_child))
		die("pipe failed");
	c = fork();
	if (c < 0)
		die("fork failed");
	if (!c) {
		char q;

		signal(SIGUSR1, SIG_IGN);
		for (size_t i = 0; i < MINE; i++)
			a[i] = pattern(i, 1);
		if (madvise(a + MINE, DROPPED, MADV_DONTNEED))
			_exit(1);
		if (write(from_child[1], "r", 1) != 1)
			_exit(1);
		while (read(to_child[0], &q, 1) == 1) {
			long bad = first_bad(a, 1);
			char r = bad < 0 ? 'y' : 'n';

			if (write(from_child[1], &r, 1) != 1)
				_exit(1);
		}
		_exit(0);
	}
	{
		char r;

		if (read(from_child[0], &r, 1) != 1)
			die("child did not start");
	}
	say("AREA %lx", (unsigned long)a);
	say("PID C %d", c);
	say("READY");
	for (;;) {
		if (check_requested) {
			long bad = first_bad(a, 0);
			char r = 0;

			check_requested = 0;
			k++;
			if (write(to_child[1], "?", 1) != 1 || read(from_child[0], &r, 1) != 1)
				say("CHECK %d FAIL child does not answer", k);
			else if (bad >= 0)
				say("CHECK %d FAIL parent at %ld", k, bad);
			else if (r != 'y')
				say("CHECK %d FAIL child", k);
			else
				say("CHECK %d OK", k);
		}
		sleep_ms(100);
	}
}
