/*
 * files-share: two processes sharing open file descriptions.
 *
 * Usage: files-share FILE
 *   FILE: a scratch regular file (created, 4 KiB).
 *
 * The parent P and its child C share (opened before the fork):
 *   - one description of FILE: an offset moved by P must be seen by C;
 *   - an epoll watching an eventfd (count 5) with data 0xe5;
 *   - a pipe P -> C holding 30000 bytes that nobody reads (data in flight);
 * and talk over two pipes: ctl (P -> C) and ack (C -> P).  C spends its
 * life blocked in read(ctl).
 *
 * Protocol (shared by the tests/progs programs): every line is one write(2)
 * to stdout; SIGUSR1 to P asks for a self-check, answered "CHECK <k> OK" or
 * "CHECK <k> FAIL <why>"; a broken setup prints "ERROR <why>", exit 1.
 *
 * Lines of this program:
 *   "PID P <pid>", "PID C <pid>"   at start
 *   "READY <pid of P>"             after a first check passed
 *   "CHECK <k> OK" / "CHECK <k> FAIL <why>"   k = 1, 2, ...
 *
 * A check: P sets the shared offset to 1000 + n (n counts the checks) and
 * sends n on ctl; C checks that it sees that offset, that the epoll reports
 * the eventfd with its data, and that the in-flight pipe still holds its
 * 30000 bytes (peeked with tee, not consumed); C answers one byte on ack
 * (0: fine, else which check failed); P checks the epoll on its side too.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <unistd.h>

#define INFLIGHT 30000

static volatile sig_atomic_t check_requested;

static void on_usr1(int sig)
{
	check_requested = 1;
}

#define SAY_LINE_MAX 512
#include "say.h"

static unsigned char pat(size_t i)
{
	return (unsigned char)(i * 7 + 3);
}

/* 0 if the pipe read through @fd holds exactly the in-flight bytes. */
static int inflight_ok(int fd)
{
	static unsigned char buf[INFLIGHT + 16];
	int tmp[2], n = 0;
	ssize_t r, got = 0;

	if (ioctl(fd, FIONREAD, &n) < 0 || n != INFLIGHT || pipe(tmp))
		return -1;
	fcntl(tmp[1], F_SETPIPE_SZ, fcntl(fd, F_GETPIPE_SZ));
	if (tee(fd, tmp[1], n, SPLICE_F_NONBLOCK) != n)
		n = -1;
	close(tmp[1]);
	while (n > 0 && (r = read(tmp[0], buf + got, sizeof(buf) - got)) > 0)
		got += r;
	close(tmp[0]);
	if (got != INFLIGHT)
		return -1;
	for (size_t i = 0; i < INFLIGHT; i++)
		if (buf[i] != pat(i))
			return -1;
	return 0;
}

static int epoll_ok(int ep)
{
	struct epoll_event ev;

	return epoll_wait(ep, &ev, 1, 0) == 1 && ev.data.u64 == 0xe5 ? 0 : -1;
}

static int child(int file, int ep, int data_r, int ctl_r, int ack_w)
{
	unsigned char n, res;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		ssize_t r = read(ctl_r, &n, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r != 1)
			return 1;
		res = 0;
		if (lseek(file, 0, SEEK_CUR) != 1000 + n)
			res = 1;
		else if (epoll_ok(ep))
			res = 2;
		else if (inflight_ok(data_r))
			res = 3;
		if (write(ack_w, &res, 1) != 1)
			return 1;
	}
}

/* One check; 0 or a message in @why. */
static int check(int file, int ep, int ctl_w, int ack_r, unsigned char n, const char **why)
{
	static const char *const whys[] = { "", "C does not share the file offset",
					    "C: epoll", "C: in-flight pipe data" };
	unsigned char res = 0xff;
	ssize_t r;

	lseek(file, 1000 + n, SEEK_SET);
	if (write(ctl_w, &n, 1) != 1) {
		*why = "C is gone";
		return -1;
	}
	while ((r = read(ack_r, &res, 1)) < 0 && errno == EINTR)
		;
	if (r != 1) {
		*why = "no answer from C";
		return -1;
	}
	if (res) {
		*why = res < 4 ? whys[res] : "C: ?";
		return -1;
	}
	if (epoll_ok(ep)) {
		*why = "P: epoll";
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static unsigned char buf[INFLIGHT];
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0xe5 };
	struct sigaction sa = { .sa_handler = on_usr1 };
	int file, ep, efd, data[2], ctl[2], ack[2], k = 0;
	unsigned char n = 0;
	const char *why = "";
	uint64_t five = 5;
	pid_t c;

	if (argc != 2) {
		fprintf(stderr, "usage: files-share FILE\n");
		return 2;
	}
	file = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (file < 0 || ftruncate(file, 4096)) {
		say("ERROR %s: %s", argv[1], strerror(errno));
		return 1;
	}
	efd = eventfd(0, EFD_NONBLOCK);
	ep = epoll_create1(0);
	if (efd < 0 || ep < 0 || write(efd, &five, 8) != 8 || epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) ||
	    pipe(data) || pipe(ctl) || pipe(ack)) {
		say("ERROR setup: %s", strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < INFLIGHT; i++)
		buf[i] = pat(i);
	if (write(data[1], buf, INFLIGHT) != INFLIGHT) {
		say("ERROR filling the pipe: %s", strerror(errno));
		return 1;
	}
	sigaction(SIGUSR1, &sa, NULL);
	say("PID P %d", getpid());
	c = fork();
	if (c < 0) {
		say("ERROR fork: %s", strerror(errno));
		return 1;
	}
	if (c == 0) {
		close(data[1]);
		close(ctl[1]);
		close(ack[0]);
		_exit(child(file, ep, data[0], ctl[0], ack[1]));
	}
	say("PID C %d", c);
	close(data[0]);	/* P keeps the write end: the data stays in flight */
	close(ctl[0]);
	close(ack[1]);
	if (check(file, ep, ctl[1], ack[0], ++n, &why)) {
		say("ERROR first check: %s", why);
		return 1;
	}
	say("READY %d", getpid());
	for (;;) {
		while (!check_requested)
			pause();
		check_requested = 0;
		if (check(file, ep, ctl[1], ack[0], ++n, &why))
			say("CHECK %d FAIL %s", ++k, why);
		else
			say("CHECK %d OK", ++k);
	}
}
