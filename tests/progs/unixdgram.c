/*
 * unixdgram: a unix datagram receiver with two senders in its tree and
 * datagrams queued for it that it does not read until asked.
 *
 * Usage: unixdgram -a ADDR     (ADDR: a path, or @name for an abstract name)
 *        unixdgram -s ADDR     (a lone sender)
 *   R (the root) binds ADDR and reads nothing.  Child S1, unbound, sends
 *   datagrams 0..3 with sendto(ADDR); once S1 is done, child S2 binds
 *   ADDR.s2 (ADDR2), connect()s to ADDR and sends datagrams 0..3 with
 *   send().  Datagram k of sender s is "S<s> <k>" padded with byte s*16+k to
 *   100 + 300*k bytes.  Lines "S1 SENT", "S2 SENT".
 *   SIGUSR1 to R: it reads its queue (non-blocking): exactly the 8 datagrams
 *   in the order sent, each whole and with its sender's address (none for
 *   S1, ADDR2 for S2), then an empty queue: "CHECK 1 OK" (or FAIL why).
 *   Afterwards R prints "LATE <from> <text>" for each datagram it gets.
 *   SIGUSR1 to S1 or S2: it sends one more datagram ("S<s> <k>", k = 4, 5...)
 *   the way it sent the others.
 * Lone sender (-s): an unbound socket connect()ed to ADDR (a receiver
 *   outside the tree); each SIGUSR1 sends "S3 <k>" (k = 0, 1...) with send()
 *   and prints "SENT <k>" (or "ERROR ...").
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define SAY_UNIX_ADDR
#include "say.h"

#define PER_SENDER 4

static volatile sig_atomic_t check_requested;
static char fail[256];

static void on_usr1(int sig)
{
	check_requested = 1;
}

static size_t dg_fill(int s, int k, char *buf)
{
	size_t len = 100 + 300 * k;

	memset(buf, s * 16 + k, len);
	snprintf(buf, 16, "S%d %d", s, k);
	return len;
}

static void wait_usr1(void)
{
	sigset_t none;

	sigemptyset(&none);
	while (!check_requested)
		sigsuspend(&none);
	check_requested = 0;
}

static void sender(int s, const char *addr, const char *addr2, int ready)
{
	struct sockaddr_un to, me;
	socklen_t tl = make_addr(addr, &to);
	char buf[4096];
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	if (fd < 0)
		die("S%d: socket: %s", s, strerror(errno));
	if (s == 2) {
		socklen_t ml = make_addr(addr2, &me);
		if (bind(fd, (struct sockaddr *)&me, ml) || connect(fd, (struct sockaddr *)&to, tl))
			die("S2: bind/connect: %s", strerror(errno));
	}
	for (int k = 0;; k++) {
		size_t len = dg_fill(s, k, buf);
		ssize_t r = s == 2 ? send(fd, buf, len, 0) :
			    sendto(fd, buf, len, 0, (struct sockaddr *)&to, tl);

		if (r != (ssize_t)len)
			die("S%d: send %d: %s", s, k, r < 0 ? strerror(errno) : "short");
		if (k == PER_SENDER - 1) {
			say("S%d SENT", s);
			if (write(ready, "x", 1) != 1)
				die("S%d: pipe", s);
		}
		if (k >= PER_SENDER - 1)
			wait_usr1();
	}
}

#define FAIL(...) do { snprintf(fail, sizeof(fail), __VA_ARGS__); return -1; } while (0)

static int check_queue(int fd, const char *addr2)
{
	struct sockaddr_un want2;
	socklen_t w2l = make_addr(addr2, &want2);

	/* what the kernel gives back: a path with its NUL, abstract as bound */
	if (addr2[0] != '@')
		w2l = offsetof(struct sockaddr_un, sun_path) + strlen(addr2) + 1;
	char buf[4096], want[4096];

	for (int i = 0; i < 2 * PER_SENDER; i++) {
		int s = 1 + i / PER_SENDER, k = i % PER_SENDER;
		size_t len = dg_fill(s, k, want);
		struct sockaddr_un from;
		socklen_t fl = sizeof(from);
		ssize_t r = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);

		if (r < 0)
			FAIL("datagram %d (S%d %d): %s", i, s, k, strerror(errno));
		if ((size_t)r != len || memcmp(buf, want, len))
			FAIL("datagram %d: got %zd bytes '%.8s', expected %zu bytes 'S%d %d'",
			     i, r, buf, len, s, k);
		if (s == 1 && fl > offsetof(struct sockaddr_un, sun_path))
			FAIL("datagram %d: S1 is unnamed, but the sender has an address (len %u)", i, fl);
		if (s == 2 && (fl != w2l || memcmp(from.sun_path, want2.sun_path,
						   fl - offsetof(struct sockaddr_un, sun_path))))
			FAIL("datagram %d: the sender's address is not %s (len %u)", i, addr2, fl);
	}
	if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0 || errno != EAGAIN)
		FAIL("more datagrams than were sent");
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa;
	struct sigaction sig;
	char addr2[128], c;
	const char *addr = NULL;
	int fd, opt, ready[2];

	int lone = 0;

	while ((opt = getopt(argc, argv, "a:s:")) != -1) {
		addr = opt == 'a' || opt == 's' ? optarg : NULL;
		lone = opt == 's';
	}
	if (!addr) {
		fprintf(stderr, "usage: unixdgram -a ADDR | -s ADDR\n");
		return 2;
	}
	memset(&sig, 0, sizeof(sig));
	sig.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sig, NULL);
	if (lone) {
		char buf[16];

		fd = socket(AF_UNIX, SOCK_DGRAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, make_addr(addr, &sa)))
			die("S3: connect %s: %s", addr, strerror(errno));
		say("S3 CONNECTED");
		for (int k = 0;; k++) {
			wait_usr1();
			snprintf(buf, sizeof(buf), "S3 %d", k);
			if (send(fd, buf, strlen(buf), 0) < 0)
				die("S3: send %d: %s", k, strerror(errno));
			say("SENT %d", k);
		}
	}
	snprintf(addr2, sizeof(addr2), "%s.s2", addr);

	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, make_addr(addr, &sa)))
		die("R: bind %s: %s", addr, strerror(errno));
	if (pipe(ready))
		die("R: pipe");
	for (int s = 1; s <= 2; s++) {
		pid_t p = fork();

		if (p < 0)
			die("R: fork");
		if (p == 0) {
			close(fd);
			close(ready[0]);
			say("PID S%d %d", s, getpid());
			sender(s, addr, addr2, ready[1]);
		}
		if (read(ready[0], &c, 1) != 1)
			die("R: S%d did not send", s);
	}
	close(ready[0]);
	close(ready[1]);
	wait_usr1();
	if (check_queue(fd, addr2))
		say("CHECK 1 FAIL %s", fail);
	else
		say("CHECK 1 OK");
	for (;;) {
		char buf[4096];
		struct sockaddr_un from;
		socklen_t fl = sizeof(from) - 1;
		ssize_t r;

		memset(&from, 0, sizeof(from));
		r = recvfrom(fd, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&from, &fl);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die("R: recv: %s", strerror(errno));
		buf[r < 16 ? r : 15] = 0;
		say("LATE %s %s", fl > offsetof(struct sockaddr_un, sun_path) ?
		    (from.sun_path[0] ? from.sun_path : from.sun_path + 1) : "unnamed", buf);
	}
}
