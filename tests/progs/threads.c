/*
 * threads: a multi-threaded counter.  Each thread keeps its own counter in
 * thread-local storage and must keep both its count and its TID across a
 * checkpoint/restore.
 *
 * Usage: threads [-n NTHREADS]   (default 8, at most 64)
 *
 * Protocol (shared by the tests/progs programs): every line is one write(2)
 * to stdout; SIGUSR1 asks for "CHECK <k> OK <details>" / "CHECK <k> FAIL <why>";
 * a broken invariant prints "ERROR <why>" and exits 1.
 *
 * Lines of this program:
 *   "PID <pid>"                   once, at start
 *   "TID <i> <tid>"               once per thread, at start
 *   "T<i> <tid> <n>"              every 100 ms per thread, n = 0, 1, 2, ...
 *   "CHECK <k> OK threads=<N> <i>:<tid>:<n> ..."
 *
 * Each thread checks on every tick that gettid() is still the TID it saw at
 * start, that its __thread counter equals the copy it keeps on its stack and
 * the copy in a shared array, and that getpid() did not change.  The main
 * thread answers SIGUSR1 (the others block it) and also checks that every
 * thread is still advancing.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64

static __thread uint64_t tls_count;
static __thread int tls_index = -1;

static volatile uint64_t shared_count[MAX_THREADS];
static volatile pid_t thread_tid[MAX_THREADS];
static pid_t main_pid;

#define SAY_LINE_MAX 4096
#include "say.h"


static void *worker(void *arg)
{
	int idx = (int)(intptr_t)arg;
	pid_t tid = gettid();
	uint64_t stack_copy = 0;

	tls_index = idx;
	thread_tid[idx] = tid;
	say("TID %d %d", idx, tid);
	/* Stagger the threads so their lines interleave. */
	sleep_ms_full(idx * 100 / MAX_THREADS + 1);

	for (;;) {
		if (gettid() != tid)
			die("T%d: tid changed from %d to %d", idx, tid, gettid());
		if (getpid() != main_pid)
			die("T%d: pid changed from %d to %d", idx, main_pid, getpid());
		if (tls_index != idx)
			die("T%d: __thread index is %d", idx, tls_index);
		if (tls_count != stack_copy || tls_count != shared_count[idx])
			die("T%d: __thread counter %llu, stack copy %llu, shared %llu",
			    idx, (unsigned long long)tls_count,
			    (unsigned long long)stack_copy,
			    (unsigned long long)shared_count[idx]);

		say("T%d %d %llu", idx, tid, (unsigned long long)tls_count);

		tls_count++;
		stack_copy++;
		shared_count[idx]++;
		sleep_ms_full(100);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	uint64_t seen[MAX_THREADS] = { 0 };
	int nthreads = 8, opt, checks = 0;
	sigset_t usr1;

	while ((opt = getopt(argc, argv, "n:")) != -1) {
		if (opt != 'n') {
			fprintf(stderr, "usage: threads [-n NTHREADS]\n");
			return 2;
		}
		nthreads = atoi(optarg);
	}
	if (nthreads < 1 || nthreads > MAX_THREADS) {
		fprintf(stderr, "threads: 1..%d threads\n", MAX_THREADS);
		return 2;
	}

	main_pid = getpid();
	say("PID %d", main_pid);

	/* Workers inherit the blocked SIGUSR1; main takes it with sigwait. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);

	for (int i = 0; i < nthreads; i++) {
		pthread_t t;

		if (pthread_create(&t, NULL, worker, (void *)(intptr_t)i))
			die("pthread_create %d failed", i);
	}

	for (;;) {
		char line[4096];
		int sig, len, fail = 0;

		if (sigwait(&usr1, &sig))
			die("sigwait failed");
		checks++;
		len = 0;
		for (int i = 0; i < nthreads && len < (int)sizeof(line) - 64; i++) {
			uint64_t c = shared_count[i];

			if (checks > 1 && c <= seen[i])
				fail = 1;
			seen[i] = c;
			len += snprintf(line + len, sizeof(line) - len, " %d:%d:%llu",
					i, thread_tid[i], (unsigned long long)c);
		}
		if (getpid() != main_pid || gettid() != main_pid)
			say("CHECK %d FAIL main thread pid/tid changed: %d/%d, was %d",
			    checks, getpid(), gettid(), main_pid);
		else if (fail)
			say("CHECK %d FAIL a thread did not advance since the last check:%s",
			    checks, line);
		else
			say("CHECK %d OK threads=%d%s", checks, nthreads, line);
	}
}
