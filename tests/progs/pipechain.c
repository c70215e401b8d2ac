/*
 * pipechain: three processes A -> B -> C joined by two pipes, with both
 * pipes kept full, so a checkpoint always catches data in flight.
 *
 * Usage: pipechain [-c COUNT]
 *   A (the root) writes the 64-bit numbers 0, 1, 2, ... as fast as pipe 1
 *   takes them; B copies pipe 1 to pipe 2 but reads slowly (1 KiB per ms);
 *   C reads pipe 2 even more slowly (512 bytes per ms) and checks that every
 *   number arrives exactly once and in order.  So A always waits on a full
 *   pipe 1 and B on a full pipe 2.
 *   -c COUNT: A stops after COUNT numbers; C then prints "DONE <COUNT>", B
 *   and C exit 0 and A prints "END OK" once both did (else "ERROR ...").
 *
 * Protocol (shared by the tests/progs programs): every line is one write(2)
 * to stdout; SIGUSR1 to C asks for "CHECK <k> OK next=<n>"; any broken
 * invariant prints "ERROR <who>: <why>" and exits 1.
 *
 * Lines of this program:
 *   "PID A <pid>", "PID B <pid>", "PID C <pid>"   at start
 *   "P <n>"        from C about twice a second: n numbers received so far,
 *                  all of them checked (so P values only ever grow)
 *   "DONE <n>", "END OK"   with -c, at the end
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t check_requested;

static void on_usr1(int sig)
{
	check_requested = 1;
}

#define SAY_LINE_MAX 512
#include "say.h"


/* Write all of buf; EINTR is retried, anything else is fatal. */
static void write_all(const char *who, int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("%s: write: %s", who, n < 0 ? strerror(errno) : "wrote 0");
		p += n;
		len -= n;
	}
}

/* One read; EINTR is retried.  Returns 0 at EOF. */
static size_t read_some(const char *who, int fd, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = read(fd, buf, len);

		if (n >= 0)
			return n;
		if (errno != EINTR)
			die("%s: read: %s", who, strerror(errno));
	}
}

static void run_a(int out, long long count)
{
	uint64_t block[64], next = 0;

	for (;;) {
		int n = 0;

		while (n < 64 && (count < 0 || (long long)next < count))
			block[n++] = next++;
		if (!n)
			break;
		write_all("A", out, block, n * sizeof(block[0]));
	}
	close(out);
}

static void run_b(int in, int out)
{
	char buf[1024];
	size_t n;

	while ((n = read_some("B", in, buf, sizeof(buf))) > 0) {
		write_all("B", out, buf, n);
		sleep_ms_full(1);
	}
	close(out);
	exit(0);
}

static void run_c(int in, long long count)
{
	unsigned char buf[512 + 8];
	uint64_t expect = 0, last_report = mono_ms();
	size_t have = 0, n;
	int checks = 0;

	for (;;) {
		size_t off = 0;

		n = read_some("C", in, buf + have, 512);
		if (!n)
			break;
		have += n;
		for (; have - off >= 8; off += 8) {
			uint64_t v;

			memcpy(&v, buf + off, 8);
			if (v != expect)
				die("C: got %llu, expected %llu",
				    (unsigned long long)v, (unsigned long long)expect);
			expect++;
		}
		memmove(buf, buf + off, have - off);
		have -= off;

		if (check_requested) {
			check_requested = 0;
			say("CHECK %d OK next=%llu", ++checks, (unsigned long long)expect);
		}
		if (mono_ms() - last_report >= 500) {
			last_report = mono_ms();
			say("P %llu", (unsigned long long)expect);
		}
		sleep_ms_full(1);
	}
	if (have)
		die("C: %zu stray bytes at EOF", have);
	if (count >= 0 && (long long)expect != count)
		die("C: EOF after %llu numbers, expected %lld",
		    (unsigned long long)expect, count);
	say("P %llu", (unsigned long long)expect);
	say("DONE %llu", (unsigned long long)expect);
	exit(0);
}

int main(int argc, char **argv)
{
	long long count = -1;
	int p1[2], p2[2], opt, st, bad = 0;
	pid_t b, c;

	while ((opt = getopt(argc, argv, "c:")) != -1) {
		if (opt != 'c') {
			fprintf(stderr, "usage: pipechain [-c COUNT]\n");
			return 2;
		}
		count = atoll(optarg);
	}

	/* A write to a pipe whose reader died must be an error we report. */
	signal(SIGPIPE, SIG_IGN);
	if (pipe(p1) || pipe(p2))
		die("A: pipe: %s", strerror(errno));
	say("PID A %d", getpid());

	b = fork();
	if (b < 0)
		die("A: fork: %s", strerror(errno));
	if (b == 0) {
		close(p1[1]);
		close(p2[0]);
		say("PID B %d", getpid());
		run_b(p1[0], p2[1]);
	}
	c = fork();
	if (c < 0)
		die("A: fork: %s", strerror(errno));
	if (c == 0) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_usr1;
		sa.sa_flags = SA_RESTART;
		sigaction(SIGUSR1, &sa, NULL);
		close(p1[0]);
		close(p1[1]);
		close(p2[1]);
		say("PID C %d", getpid());
		run_c(p2[0], count);
	}
	close(p1[0]);
	close(p2[0]);
	close(p2[1]);

	run_a(p1[1], count);

	if (waitpid(b, &st, 0) != b || !WIFEXITED(st) || WEXITSTATUS(st)) {
		say("ERROR A: B (pid %d) ended with status %#x", b, st);
		bad = 1;
	}
	if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st)) {
		say("ERROR A: C (pid %d) ended with status %#x", c, st);
		bad = 1;
	}
	if (bad)
		return 1;
	say("END OK");
	return 0;
}
