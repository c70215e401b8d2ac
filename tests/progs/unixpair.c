/*
 * unixpair: a parent and a child joined by a unix socketpair, each with
 * messages queued for the other that nobody reads until asked, so that a
 * checkpoint catches data in both directions.
 *
 * Usage: unixpair -t stream|seqpacket|dgram [-n COUNT]
 *   Each side sends COUNT messages (message i of side s: 1 + (i*131 + s*7) %
 *   2000 bytes, byte j = (i*31 + j + s) & 0xff) without reading.  The parent
 *   then shuts its socket down for writing (stream and seqpacket), so the
 *   child must see end-of-file right after the last message.  The parent's
 *   socket is non-blocking, has SO_PASSCRED and a SO_RCVBUF of its own; the
 *   child's has SO_PEEK_OFF 0 and a SO_SNDBUF of its own.
 *
 *   SIGUSR1 to the child: it reads all it should get, in order, checks every
 *   byte and message boundary, then end-of-file (stream, seqpacket) or an
 *   empty queue (dgram) and its options, sends one more message "LIVE" and
 *   prints "CHECK 1 OK child" (or "CHECK 1 FAIL child: why").
 *   SIGUSR1 to the parent: the same, then the "LIVE" message, then an empty
 *   queue: "CHECK 1 OK parent".
 *
 * Lines: "PID P <pid>", "PID C <pid>", "QUEUED <side> msgs=<n> bytes=<b>
 * unread=<SIOCOUTQ>" once a side has sent, "CHECK ..." as above.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/sockios.h>
#include <unistd.h>

#include "say.h"

static volatile sig_atomic_t check_requested;
static int type, count = 40;
static char fail[256];

static void on_usr1(int sig)
{
	check_requested = 1;
}

static size_t msg_len(int side, int i)
{
	return 1 + (i * 131 + side * 7) % 2000;
}

static void msg_fill(int side, int i, uint8_t *buf)
{
	for (size_t j = 0; j < msg_len(side, i); j++)
		buf[j] = (i * 31 + j + side) & 0xff;
}

#define FAIL(...) do { snprintf(fail, sizeof(fail), __VA_ARGS__); return -1; } while (0)

/* Wait up to 3 s for something to read. */
static int wait_in(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;

	while ((r = poll(&p, 1, 3000)) < 0 && errno == EINTR)
		;
	return r;
}

/* Read exactly len bytes (stream) or one message of len bytes. */
static int read_msg(int fd, uint8_t *buf, size_t len, const char *what)
{
	size_t got = 0;

	while (got < len || (type != SOCK_STREAM && got == 0 && len == 0)) {
		ssize_t r;

		if (wait_in(fd) <= 0)
			FAIL("%s: nothing to read after %zu of %zu bytes", what, got, len);
		r = recv(fd, buf + got, type == SOCK_STREAM ? len - got : len + 1, MSG_DONTWAIT);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0)
			FAIL("%s: recv: %s", what, strerror(errno));
		if (r == 0)
			FAIL("%s: end of file after %zu of %zu bytes", what, got, len);
		if (type != SOCK_STREAM && (size_t)r != len)
			FAIL("%s: a message of %zd bytes, expected %zu", what, r, len);
		got += r;
		if (type != SOCK_STREAM)
			break;
	}
	return 0;
}

static int read_all(int fd, int from)
{
	uint8_t want[2048], got[2048 + 1];
	char what[64];

	for (int i = 0; i < count; i++) {
		snprintf(what, sizeof(what), "message %d from side %d", i, from);
		msg_fill(from, i, want);
		if (read_msg(fd, got, msg_len(from, i), what))
			return -1;
		if (memcmp(want, got, msg_len(from, i)))
			FAIL("%s: wrong content", what);
	}
	return 0;
}

/* Nothing more to read: end of file if @eof, else an empty queue. */
static int expect_end(int fd, int eof)
{
	char c;
	ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);

	if (eof && r == 0)
		return 0;
	if (!eof && r < 0 && errno == EAGAIN)
		return 0;
	FAIL("expected %s, got %zd (%s)", eof ? "end of file" : "an empty queue", r,
	     r < 0 ? strerror(errno) : "data");
}

static int getint(int fd, int opt)
{
	int v = -12345;
	socklen_t l = sizeof(v);

	getsockopt(fd, SOL_SOCKET, opt, &v, &l);
	return v;
}

static void send_all(int fd, int side)
{
	uint8_t buf[2048];
	size_t bytes = 0;
	int unread = -1;

	for (int i = 0; i < count; i++) {
		ssize_t r;

		msg_fill(side, i, buf);
		r = send(fd, buf, msg_len(side, i), MSG_DONTWAIT);
		if (r != (ssize_t)msg_len(side, i))
			die("side %d: send %d: %zd (%s)", side, i, r, r < 0 ? strerror(errno) : "short");
		bytes += r;
	}
	ioctl(fd, SIOCOUTQ, &unread);
	say("QUEUED %s msgs=%d bytes=%zu unread=%d", side ? "child" : "parent", count, bytes, unread);
}

static void wait_check(void)
{
	sigset_t none;

	sigemptyset(&none);
	while (!check_requested)
		sigsuspend(&none);
	check_requested = 0;
}

static int child_check(int fd, int sndbuf)
{
	if (read_all(fd, 0))
		return -1;
	if (expect_end(fd, type != SOCK_DGRAM))
		return -1;
	if (getint(fd, SO_PEEK_OFF) != 0)
		FAIL("SO_PEEK_OFF is %d, expected 0", getint(fd, SO_PEEK_OFF));
	if (getint(fd, SO_SNDBUF) != sndbuf)
		FAIL("SO_SNDBUF is %d, expected %d", getint(fd, SO_SNDBUF), sndbuf);
	if (fcntl(fd, F_GETFL) & O_NONBLOCK)
		FAIL("the socket became non-blocking");
	if (send(fd, "LIVE", 4, 0) != 4)
		FAIL("send LIVE: %s", strerror(errno));
	return 0;
}

static int parent_check(int fd, int rcvbuf)
{
	char live[8];

	if (read_all(fd, 1))
		return -1;
	if (read_msg(fd, (uint8_t *)live, 4, "LIVE message"))
		return -1;
	if (memcmp(live, "LIVE", 4))
		FAIL("LIVE message: wrong content");
	if (expect_end(fd, 0))
		return -1;
	if (getint(fd, SO_PASSCRED) != 1)
		FAIL("SO_PASSCRED is %d, expected 1", getint(fd, SO_PASSCRED));
	if (getint(fd, SO_RCVBUF) != rcvbuf)
		FAIL("SO_RCVBUF is %d, expected %d", getint(fd, SO_RCVBUF), rcvbuf);
	if (!(fcntl(fd, F_GETFL) & O_NONBLOCK))
		FAIL("the socket is not non-blocking any more");
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	int sv[2], opt, v, side, ret;
	pid_t child;

	while ((opt = getopt(argc, argv, "t:n:")) != -1) {
		if (opt == 't')
			type = !strcmp(optarg, "stream") ? SOCK_STREAM :
			       !strcmp(optarg, "seqpacket") ? SOCK_SEQPACKET :
			       !strcmp(optarg, "dgram") ? SOCK_DGRAM : -1;
		else if (opt == 'n')
			count = atoi(optarg);
		else
			type = -1;
	}
	if (type <= 0 || count < 1 || count > 100) {
		fprintf(stderr, "usage: unixpair -t stream|seqpacket|dgram [-n COUNT<=100]\n");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (socketpair(AF_UNIX, type, 0, sv))
		die("socketpair: %s", strerror(errno));
	say("PID P %d", getpid());
	child = fork();
	if (child < 0)
		die("fork: %s", strerror(errno));
	side = child == 0;
	close(sv[!side]);
	if (side) {
		int sndbuf;

		say("PID C %d", getpid());
		v = 0;
		setsockopt(sv[1], SOL_SOCKET, SO_PEEK_OFF, &v, sizeof(v));
		v = 150000;
		setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
		sndbuf = getint(sv[1], SO_SNDBUF);
		send_all(sv[1], 1);
		wait_check();
		ret = child_check(sv[1], sndbuf);
	} else {
		int rcvbuf;

		v = 1;
		setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &v, sizeof(v));
		v = 100000;
		setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
		rcvbuf = getint(sv[0], SO_RCVBUF);
		fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
		send_all(sv[0], 0);
		if (type != SOCK_DGRAM && shutdown(sv[0], SHUT_WR))
			die("shutdown: %s", strerror(errno));
		wait_check();
		ret = parent_check(sv[0], rcvbuf);
	}
	if (ret)
		say("CHECK 1 FAIL %s: %s", side ? "child" : "parent", fail);
	else
		say("CHECK 1 OK %s", side ? "child" : "parent");
	/* stay until killed */
	for (;;)
		pause();
}
