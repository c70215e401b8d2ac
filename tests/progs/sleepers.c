/*
 * sleepers: threads that spend their life inside blocking system calls, so a
 * checkpoint interrupts each of them mid-call.  After restore every call must
 * go on as if nothing happened: no EINTR leaking out (no signal is ever
 * delivered to these threads), no early return, no lost wakeup.
 *
 * Usage: sleepers
 *
 * Threads:
 *   waker     every 200 ms: tick++, writes the tick's low byte to a pipe, adds
 *             1 to an eventfd, increments a futex word and FUTEX_WAKEs it
 *   nanosleep nanosleep(250 ms) in a loop; each must return 0 after >= 250 ms
 *   long      clock_nanosleep(CLOCK_MONOTONIC, 3 s) relative, same rules
 *   read      read(2) on the pipe; each byte must be the next tick's
 *   epoll     epoll_wait(-1) on the eventfd; must return exactly 1 event,
 *             or EINTR: epoll_wait is one of the calls the kernel itself
 *             fails with EINTR after a stop (SIGSTOP/SIGCONT or a ptrace
 *             interrupt, see signal(7)); such returns are counted and the
 *             loop goes on, as any real event loop does
 *   futex     FUTEX_WAIT on the word (0 or EAGAIN are fine, EINTR is not)
 * Every thread but main blocks all signals.  Main answers SIGUSR1.
 *
 * Protocol (shared by the tests/progs programs): every line is one write(2)
 * to stdout; SIGUSR1 asks for "CHECK <k> OK <details>" / "CHECK <k> FAIL <why>";
 * a broken invariant prints "ERROR <why>" and exits 1.
 *
 * A check fails unless every thread made progress since the previous check
 * (so checks must be at least 3.5 s apart for the long sleeper) and the read,
 * epoll and futex threads lag the waker by at most 2 ticks.
 * Lines: "PID <pid>", "READY", "CHECK <k> OK tick=<n> nanosleep=<n> long=<n>
 * read=<n> epoll=<n> futex=<n> epoll_eintr=<n>".
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int pipe_fd[2], efd, epfd;
static volatile uint32_t futex_word;
static volatile uint64_t ticks, n_nanosleep, n_long, n_read, n_epoll, n_futex;
static volatile uint64_t n_epoll_eintr;

#define SAY_LINE_MAX 512
#include "say.h"


static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void *waker(void *arg)
{
	struct timespec period = { 0, 200 * 1000000L };

	for (;;) {
		uint64_t one = 1;
		unsigned char b;

		/* Not a thread under test: it may restart by hand. */
		while (nanosleep(&period, &period) && errno == EINTR)
			;
		period.tv_nsec = 200 * 1000000L;
		ticks++;
		b = ticks & 0xff;
		if (write(pipe_fd[1], &b, 1) != 1)
			die("waker: pipe write: %s", strerror(errno));
		if (write(efd, &one, sizeof(one)) != sizeof(one))
			die("waker: eventfd write: %s", strerror(errno));
		__atomic_add_fetch(&futex_word, 1, __ATOMIC_SEQ_CST);
		if (syscall(SYS_futex, &futex_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) < 0)
			die("waker: FUTEX_WAKE: %s", strerror(errno));
	}
	return NULL;
}

static void *do_nanosleep(void *arg)
{
	struct timespec req = { 0, 250 * 1000000L };

	for (;;) {
		int64_t t0 = mono_ns(), dt;

		if (nanosleep(&req, NULL))
			die("nanosleep: %s after %lld sleeps", strerror(errno),
			    (long long)n_nanosleep);
		dt = mono_ns() - t0;
		if (dt < 250 * 1000000ll)
			die("nanosleep(250 ms) returned after %lld us", (long long)dt / 1000);
		n_nanosleep++;
	}
	return NULL;
}

static void *do_long(void *arg)
{
	struct timespec req = { 3, 0 };

	for (;;) {
		int64_t t0 = mono_ns(), dt;
		int err = clock_nanosleep(CLOCK_MONOTONIC, 0, &req, NULL);

		if (err)
			die("clock_nanosleep(3 s): %s after %lld sleeps", strerror(err),
			    (long long)n_long);
		dt = mono_ns() - t0;
		if (dt < 3000 * 1000000ll)
			die("clock_nanosleep(3 s) returned after %lld us", (long long)dt / 1000);
		n_long++;
	}
	return NULL;
}

static void *do_read(void *arg)
{
	for (;;) {
		unsigned char b;
		ssize_t n = read(pipe_fd[0], &b, 1);

		if (n != 1)
			die("read on pipe returned %zd: %s", n, n < 0 ? strerror(errno) : "EOF");
		if (b != ((n_read + 1) & 0xff))
			die("read byte %u, expected %u: a byte was lost or repeated",
			    b, (unsigned)((n_read + 1) & 0xff));
		n_read++;
	}
	return NULL;
}

static void *do_epoll(void *arg)
{
	for (;;) {
		struct epoll_event ev;
		uint64_t v;
		int n = epoll_wait(epfd, &ev, 1, -1);

		if (n < 0 && errno == EINTR) {
			n_epoll_eintr++;
			continue;
		}
		if (n != 1)
			die("epoll_wait(-1) returned %d: %s", n, n < 0 ? strerror(errno) : "no event");
		if (read(efd, &v, sizeof(v)) != sizeof(v))
			die("eventfd read: %s", strerror(errno));
		n_epoll += v;
	}
	return NULL;
}

static void *do_futex(void *arg)
{
	uint32_t seen = 0;

	for (;;) {
		uint32_t v = __atomic_load_n(&futex_word, __ATOMIC_SEQ_CST);

		if (v != seen) {
			n_futex += v - seen;
			seen = v;
			continue;
		}
		if (syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0) &&
		    errno != EAGAIN)
			die("FUTEX_WAIT: %s", strerror(errno));
	}
	return NULL;
}

int main(void)
{
	void *(*fns[])(void *) = { waker, do_nanosleep, do_long, do_read, do_epoll, do_futex };
	uint64_t last[5] = { 0 };
	struct epoll_event ev = { .events = EPOLLIN };
	sigset_t all, usr1;
	int checks = 0;

	say("PID %d", getpid());
	if (pipe(pipe_fd))
		die("pipe: %s", strerror(errno));
	efd = eventfd(0, 0);
	epfd = epoll_create1(0);
	if (efd < 0 || epfd < 0)
		die("eventfd/epoll_create1: %s", strerror(errno));
	ev.data.fd = efd;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, efd, &ev))
		die("epoll_ctl: %s", strerror(errno));

	/* Threads start with every signal blocked; main keeps only SIGUSR1. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		pthread_t t;

		if (pthread_create(&t, NULL, fns[i], NULL))
			die("pthread_create failed");
	}
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_SETMASK, &usr1, NULL);
	say("READY");

	for (;;) {
		uint64_t now[5];
		static const char *names[5] = { "nanosleep", "long", "read", "epoll", "futex" };
		uint64_t t;
		int sig, bad = -1;

		if (sigwait(&usr1, &sig))
			die("sigwait failed");
		t = ticks;
		now[0] = n_nanosleep, now[1] = n_long, now[2] = n_read;
		now[3] = n_epoll, now[4] = n_futex;
		checks++;
		for (int i = 0; i < 5; i++)
			if (now[i] <= last[i])
				bad = i;
		if (bad >= 0)
			say("CHECK %d FAIL %s made no progress since the last check (%llu)",
			    checks, names[bad], (unsigned long long)now[bad]);
		else if (t > now[2] + 2 || t > now[3] + 2 || t > now[4] + 2)
			say("CHECK %d FAIL lost wakeups: tick=%llu read=%llu epoll=%llu futex=%llu",
			    checks, (unsigned long long)t, (unsigned long long)now[2],
			    (unsigned long long)now[3], (unsigned long long)now[4]);
		else
			say("CHECK %d OK tick=%llu nanosleep=%llu long=%llu read=%llu epoll=%llu futex=%llu epoll_eintr=%llu",
			    checks, (unsigned long long)t, (unsigned long long)now[0],
			    (unsigned long long)now[1], (unsigned long long)now[2],
			    (unsigned long long)now[3], (unsigned long long)now[4],
			    (unsigned long long)n_epoll_eintr);
		for (int i = 0; i < 5; i++)
			last[i] = now[i];
	}
}
