/*
 * scmrights: files in flight (SCM_RIGHTS) in a unix socket's queue, which
 * nobody receives until asked, so that a checkpoint catches them.
 *
 * Usage: scmrights -t seqpacket|dgram|stream -f FILE [-r]
 *   A parent and a child joined by a socketpair.  The parent writes
 *   "0123456789abcdef" to FILE and sends the child, without the child
 *   reading anything:
 *     message "one"   with the read end of a pipe holding "pipe-data";
 *     message "two"   with FILE opened read-write at offset 5 and an eventfd
 *                     whose count is 7 (the parent keeps that eventfd: the
 *                     same open file is in flight and in its fd table);
 *     message "three" with no file.
 *   A stream has no messages but keeps the sends that carry files apart:
 *   "one" goes as "o" (no file) then "ne" with the pipe, and the child
 *   reads "o" alone first, which must come without a file.
 *   -r: the only message, "sock", carries one end of another socketpair
 *   (refused); SIGUSR1 to the child: it receives it, with its socket.
 *
 *   SIGUSR1 to the child: it receives the three messages, in order, checks
 *   each one's data and files (the pipe gives "pipe-data", the file reads
 *   "567" at its offset, the eventfd reads 7), writes 100 to the eventfd and
 *   prints "CHECK 1 OK child" (or "CHECK 1 FAIL child: why").
 *   SIGUSR1 to the parent: its own eventfd reads 100 (the same file as the
 *   child's): "CHECK 1 OK parent".
 *
 * Lines: "PID P <pid>", "PID C <pid>", "SENT" once all is queued.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "say.h"

static volatile sig_atomic_t check_requested;

static void on_usr1(int sig)
{
	(void)sig;
	check_requested = 1;
}

static void wait_check(void)
{
	sigset_t none;

	sigemptyset(&none);
	while (!check_requested)
		sigsuspend(&none);
	check_requested = 0;
}

static void send_files(int s, const char *data, const int *fds, int n)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = (void *)data, .iov_len = strlen(data) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (n) {
		struct cmsghdr *c;

		mh.msg_control = ctl.b;
		mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(n * sizeof(int));
		memcpy(CMSG_DATA(c), fds, n * sizeof(int));
	}
	if (sendmsg(s, &mh, 0) != (ssize_t)iov.iov_len)
		die("sendmsg %s: %s", data, strerror(errno));
}

/* Receive one message (at most @max bytes, < 64): its data must be @want,
 * it must carry @n files. */
static const char *recv_files_n(int s, const char *want, int *fds, int n, size_t max)
{
	static char why[256];
	union {
		char b[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} ctl;
	char buf[64];
	struct iovec iov = { .iov_base = buf, .iov_len = max };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
			     .msg_controllen = sizeof(ctl.b) };
	int got = 0;
	ssize_t r = recvmsg(s, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	if (r < 0) {
		snprintf(why, sizeof(why), "no message '%s': %s", want, strerror(errno));
		return why;
	}
	buf[r] = 0;
	if (strcmp(buf, want)) {
		snprintf(why, sizeof(why), "message '%s' where '%s' was expected", buf, want);
		return why;
	}
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			if (got < n)
				memcpy(&fds[got], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			got++;
		}
	}
	if (got != n) {
		snprintf(why, sizeof(why), "message '%s' carries %d files, not %d", want, got, n);
		return why;
	}
	return NULL;
}

static const char *recv_files(int s, const char *want, int *fds, int n)
{
	return recv_files_n(s, want, fds, n, 63);
}

static bool stream;

static const char *child_check(int s)
{
	static char why[256];
	int fds[2];
	const char *fail;
	char buf[32];
	uint64_t v = 0;
	ssize_t r;

	if (stream) {
		/* one byte: the send before the one with the pipe */
		fail = recv_files_n(s, "o", fds, 0, 1);
		if (!fail)
			fail = recv_files(s, "ne", fds, 1);
	} else {
		fail = recv_files(s, "one", fds, 1);
	}
	if (fail)
		return fail;
	r = read(fds[0], buf, sizeof(buf) - 1);
	buf[r > 0 ? r : 0] = 0;
	if (strcmp(buf, "pipe-data")) {
		snprintf(why, sizeof(why), "the pipe in flight gives '%s'", buf);
		return why;
	}
	fail = recv_files(s, "two", fds, 2);
	if (fail)
		return fail;
	r = read(fds[0], buf, 3);
	buf[r > 0 ? r : 0] = 0;
	if (strcmp(buf, "567")) {
		snprintf(why, sizeof(why), "the file in flight reads '%s' at its offset", buf);
		return why;
	}
	if (read(fds[1], &v, sizeof(v)) != sizeof(v) || v != 7) {
		snprintf(why, sizeof(why), "the eventfd in flight counts %llu, not 7",
			 (unsigned long long)v);
		return why;
	}
	v = 100;
	if (write(fds[1], &v, sizeof(v)) != sizeof(v))
		return "cannot write to the eventfd";
	fail = recv_files(s, "three", fds, 0);
	if (fail)
		return fail;
	if (recv(s, buf, sizeof(buf), MSG_DONTWAIT) >= 0 || errno != EAGAIN)
		return "more in the queue than was sent";
	return NULL;
}

int main(int argc, char **argv)
{
	const char *type = "seqpacket", *file = NULL;
	bool refuse = false;
	int sv[2], opt, st;
	pid_t child;

	while ((opt = getopt(argc, argv, "t:f:r")) != -1) {
		if (opt == 't')
			type = optarg;
		else if (opt == 'f')
			file = optarg;
		else if (opt == 'r')
			refuse = true;
		else
			die("usage: scmrights -t seqpacket|dgram|stream -f FILE [-r]");
	}
	if (!file && !refuse)
		die("usage: scmrights -t seqpacket|dgram|stream -f FILE [-r]");
	stream = !strcmp(type, "stream");
	signal(SIGUSR1, on_usr1);
	if (socketpair(AF_UNIX, stream ? SOCK_STREAM : strcmp(type, "dgram") ? SOCK_SEQPACKET :
		       SOCK_DGRAM, 0, sv))
		die("socketpair: %s", strerror(errno));
	say("PID P %d", getpid());
	child = fork();
	if (child < 0)
		die("fork: %s", strerror(errno));
	if (child == 0) {
		const char *fail;

		close(sv[0]);
		say("PID C %d", getpid());
		wait_check();
		if (refuse) {	/* still queued, with its socket */
			int fd;

			fail = recv_files(sv[1], "sock", &fd, 1);
		} else {
			fail = child_check(sv[1]);
		}
		if (fail)
			say("CHECK 1 FAIL child: %s", fail);
		else
			say("CHECK 1 OK child");
		for (;;)
			pause();
	}
	close(sv[1]);
	if (refuse) {
		int other[2];

		if (socketpair(AF_UNIX, SOCK_STREAM, 0, other))
			die("socketpair: %s", strerror(errno));
		send_files(sv[0], "sock", &other[1], 1);
		close(other[1]);
		say("SENT");
	} else {
		int p[2], f, efd, fds[2];
		uint64_t v = 0;

		if (pipe(p))
			die("pipe: %s", strerror(errno));
		if (write(p[1], "pipe-data", 9) != 9)
			die("write pipe: %s", strerror(errno));
		f = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (f < 0 || write(f, "0123456789abcdef", 16) != 16 || lseek(f, 5, SEEK_SET) != 5)
			die("%s: %s", file, strerror(errno));
		efd = eventfd(7, EFD_NONBLOCK);
		if (efd < 0)
			die("eventfd: %s", strerror(errno));
		if (stream) {
			send_files(sv[0], "o", NULL, 0);
			send_files(sv[0], "ne", &p[0], 1);
		} else {
			send_files(sv[0], "one", &p[0], 1);
		}
		fds[0] = f;
		fds[1] = efd;
		send_files(sv[0], "two", fds, 2);
		send_files(sv[0], "three", NULL, 0);
		close(p[0]);
		close(f);
		say("SENT");
		wait_check();
		if (read(efd, &v, sizeof(v)) != sizeof(v) || v != 100)
			say("CHECK 1 FAIL parent: its eventfd counts %llu, not 100",
			    (unsigned long long)v);
		else
			say("CHECK 1 OK parent");
	}
	for (;;) {
		if (waitpid(child, &st, WNOHANG) == child)
			die("the child ended");
		pause();
	}
}
