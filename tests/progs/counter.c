/*
 * counter: the simplest service to checkpoint.  Prints a counter that
 * increments once per interval and checks its own state on every tick.
 *
 * Usage: counter [-i INTERVAL_MS] [-n COUNT] [-m MB]
 *   -i  interval between lines, default 100 ms (bench uses 1 ms)
 *   -n  exit 0 after printing COUNT lines (default: run forever)
 *   -m  also hold MB of touched anonymous memory (a pattern that depends on
 *       the page number), checksummed at start and at every self-check
 *
 * Protocol shared by the tests/progs programs:
 *   - every line is written by a single write(2) to stdout, so lines from
 *     several processes never mix and nothing waits in a stdio buffer;
 *   - SIGUSR1 asks for a self-check, answered by one line
 *     "CHECK <k> OK <details>" or "CHECK <k> FAIL <why>" (k = 1, 2, ...);
 *   - a broken invariant prints "ERROR <why>" and exits 1.
 *
 * Lines of this program:
 *   "C <n> <pid> <realtime_ms>"  n = 0, 1, 2, ... with no gap and no repeat
 *   "MEM <sum> mb=<MB>"          with -m, once before the first "C" line
 *   "CHECK <k> OK n=<n> pid=<pid>[ sum=<sum>]"   (sum: with -m, must equal MEM)
 *
 * Invariants checked on every tick: the counter and its shadow copies on the
 * heap and the stack agree, a 64 KiB heap buffer still holds the pattern of
 * the previous tick, getpid() and gettid() equal the pid seen at start, and
 * CLOCK_MONOTONIC never goes back.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BUF_WORDS (64 * 1024 / 8)

static volatile sig_atomic_t check_requested;

static void on_usr1(int sig)
{
	check_requested = 1;
}

#define SAY_LINE_MAX 512
#include "say.h"


static uint64_t pattern(uint64_t n, uint64_t i)
{
	return (n * 0x9e3779b97f4a7c15ull) ^ (i * 0xbf58476d1ce4e5b9ull) ^ 0x5555;
}

/* -m: MB of memory, every word a function of its index; the sum is over all
 * of it, so any page lost or moved changes it. */
static uint64_t *mem;
static size_t mem_words;

static uint64_t mem_sum(void)
{
	uint64_t s = 0;

	for (size_t i = 0; i < mem_words; i++)
		s = (s ^ mem[i]) * 0x100000001b3ull;
	return s;
}

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	uint64_t n = 0, stack_shadow = 0, last_mono = 0, *heap_shadow, *buf;
	long interval = 100, limit = -1, mb = 0;
	uint64_t sum0 = 0;
	unsigned checks = 0;
	struct sigaction sa;
	pid_t pid = getpid();
	int opt;

	while ((opt = getopt(argc, argv, "i:n:m:")) != -1) {
		if (opt == 'i')
			interval = atol(optarg);
		else if (opt == 'n')
			limit = atol(optarg);
		else if (opt == 'm')
			mb = atol(optarg);
		else {
			fprintf(stderr, "usage: counter [-i MS] [-n COUNT] [-m MB]\n");
			return 2;
		}
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);

	heap_shadow = malloc(sizeof(*heap_shadow));
	buf = malloc(BUF_WORDS * sizeof(*buf));
	if (!heap_shadow || !buf)
		die("malloc failed");
	*heap_shadow = 0;
	for (int i = 0; i < BUF_WORDS; i++)
		buf[i] = pattern(0, i);
	if (mb > 0) {
		mem_words = (size_t)mb << 17;
		mem = malloc(mem_words * sizeof(*mem));
		if (!mem)
			die("cannot allocate %ld MB", mb);
		for (size_t i = 0; i < mem_words; i++)
			mem[i] = pattern(i >> 9, i) + i;
		sum0 = mem_sum();
		say("MEM %016llx mb=%ld", (unsigned long long)sum0, mb);
	}

	for (;;) {
		uint64_t mono = now_ns(CLOCK_MONOTONIC);

		if (getpid() != pid || gettid() != pid)
			die("pid changed: started as %d, getpid %d gettid %d",
			    pid, getpid(), gettid());
		if (n != stack_shadow || n != *heap_shadow)
			die("counter %llu disagrees with shadows %llu (stack) %llu (heap)",
			    (unsigned long long)n, (unsigned long long)stack_shadow,
			    (unsigned long long)*heap_shadow);
		for (int i = 0; i < BUF_WORDS; i++)
			if (buf[i] != pattern(n, i))
				die("heap buffer word %d is %#llx, want %#llx at n=%llu", i,
				    (unsigned long long)buf[i],
				    (unsigned long long)pattern(n, i),
				    (unsigned long long)n);
		if (mono < last_mono)
			die("CLOCK_MONOTONIC went back by %llu ns",
			    (unsigned long long)(last_mono - mono));
		last_mono = mono;

		say("C %llu %d %llu", (unsigned long long)n, pid,
		    (unsigned long long)(now_ns(CLOCK_REALTIME) / 1000000));

		if (check_requested) {
			check_requested = 0;
			if (mem) {
				uint64_t sum = mem_sum();

				if (sum != sum0)
					say("CHECK %u FAIL memory sum %016llx, was %016llx", ++checks,
					    (unsigned long long)sum, (unsigned long long)sum0);
				else
					say("CHECK %u OK n=%llu pid=%d sum=%016llx", ++checks,
					    (unsigned long long)n, pid, (unsigned long long)sum);
			} else {
				say("CHECK %u OK n=%llu pid=%d", ++checks,
				    (unsigned long long)n, pid);
			}
		}
		if (limit >= 0 && (long)n + 1 >= limit)
			return 0;

		n++;
		stack_shadow++;
		(*heap_shadow)++;
		for (int i = 0; i < BUF_WORDS; i++)
			buf[i] = pattern(n, i);
		sleep_ms(interval);
	}
}
