/*
 * unixserver: a unix stream server with clients inside its own tree, and
 * the client for it.
 *
 * Usage: unixserver -a ADDR        (ADDR: a path, or @name for an abstract name)
 *        unixserver -c ADDR [-k]   (a client)
 *
 * Server: listens on ADDR (a path-bound socket file gets mode 0640), then
 *   - child 1 connects and is accepted at once; it sends "PING <k>" records
 *     (16 bytes) every 20 ms, checks each "PONG <k>" answer and prints
 *     "P1 <k>";
 *   - child 2 connects and is NOT accepted: the server accepts nothing more
 *     until it gets SIGUSR1 ("CHECK <n> OK accepting" then); child 2 prints
 *     "C2 CONNECTED" at once, and once accepted it gets "HELLO", prints
 *     "C2 HELLO" and pings like child 1 ("P2 <k>").
 *   Every connection the server accepts gets "HELLO" (16 bytes) first; the
 *   server answers every PING and prints "ACCEPTED <n>" for each accept, and
 *   "CLOSED fd <fd>: <why>" when it drops a connection (end of file, or the
 *   poll events it saw).
 * Client: connects to ADDR, waits for HELLO, sends 10 PINGs and checks the
 *   answers, prints "CLIENT OK" and exits 0 (anything else: ERROR, exit 1).
 *   With -k it pings forever every 20 ms ("K <k>") instead.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SAY_UNIX_ADDR
#include "say.h"

#define REC 16
#define MAXC 64

static volatile sig_atomic_t check_requested;

static void on_usr1(int sig)
{
	check_requested = 1;
}

static void read_rec(int fd, char *buf, const char *who)
{
	size_t got = 0;

	while (got < REC) {
		ssize_t r = read(fd, buf + got, REC - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("%s: read: %s", who, r < 0 ? strerror(errno) : "end of file");
		got += r;
	}
}

static void write_rec(int fd, const char *rec, const char *who)
{
	char buf[REC] = { 0 };

	strncpy(buf, rec, REC - 1);
	if (write(fd, buf, REC) != REC)
		die("%s: write: %s", who, strerror(errno));
}

static int client_connect(const char *addr, const char *who)
{
	struct sockaddr_un sa;
	socklen_t l = make_addr(addr, &sa);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, l))
		die("%s: connect %s: %s", who, addr, strerror(errno));
	return fd;
}

static void ping_loop(int fd, const char *who, long limit)
{
	char rec[REC], want[32];

	for (long k = 0; limit < 0 || k < limit; k++) {
		snprintf(want, sizeof(want), "PING %ld", k);
		write_rec(fd, want, who);
		read_rec(fd, rec, who);
		snprintf(want, sizeof(want), "PONG %ld", k);
		if (strncmp(rec, want, REC))
			die("%s: got '%.16s', expected '%s'", who, rec, want);
		if (limit < 0) {
			say("%s %ld", who, k);
			sleep_ms_full(20);
		}
	}
}

static void wait_hello(int fd, const char *who)
{
	char rec[REC];

	read_rec(fd, rec, who);
	if (strncmp(rec, "HELLO", REC))
		die("%s: got '%.16s', expected HELLO", who, rec);
}

static int run_client(const char *addr, int keep)
{
	int fd = client_connect(addr, "client");

	wait_hello(fd, "client");
	if (keep)
		ping_loop(fd, "K", -1);
	ping_loop(fd, "client", 10);
	say("CLIENT OK");
	return 0;
}

static void serve(int fd, const char *who)
{
	char rec[REC], ans[32];
	long k;

	read_rec(fd, rec, who);
	if (sscanf(rec, "PING %ld", &k) != 1)
		die("%s: got '%.16s'", who, rec);
	snprintf(ans, sizeof(ans), "PONG %ld", k);
	write_rec(fd, ans, who);
}

int main(int argc, char **argv)
{
	const char *addr = NULL, *caddr = NULL;
	struct pollfd p[MAXC];
	struct sockaddr_un sa;
	struct sigaction sig;
	int opt, keep = 0, l, n = 0, accepting = 0, accepted = 0, checks = 0;
	socklen_t len;

	while ((opt = getopt(argc, argv, "a:c:k")) != -1) {
		if (opt == 'a')
			addr = optarg;
		else if (opt == 'c')
			caddr = optarg;
		else if (opt == 'k')
			keep = 1;
		else
			addr = caddr = NULL;
	}
	signal(SIGPIPE, SIG_IGN);
	if (caddr)
		return run_client(caddr, keep);
	if (!addr) {
		fprintf(stderr, "usage: unixserver -a ADDR | -c ADDR [-k]\n");
		return 2;
	}
	memset(&sig, 0, sizeof(sig));
	sig.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sig, NULL);

	len = make_addr(addr, &sa);
	l = socket(AF_UNIX, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, len) || listen(l, 8))
		die("server: listen on %s: %s", addr, strerror(errno));
	if (addr[0] == '/' && chmod(addr, 0640))
		die("server: chmod %s: %s", addr, strerror(errno));
	say("LISTENING %d", getpid());

	if (fork() == 0) {
		int fd = client_connect(addr, "P1");
		wait_hello(fd, "P1");
		ping_loop(fd, "P1", -1);
	}
	p[n].fd = accept(l, NULL, NULL);
	if (p[n].fd < 0)
		die("server: accept: %s", strerror(errno));
	write_rec(p[n++].fd, "HELLO", "server");
	say("ACCEPTED %d", ++accepted);
	if (fork() == 0) {
		int fd = client_connect(addr, "C2");
		say("C2 CONNECTED");
		wait_hello(fd, "C2");
		say("C2 HELLO");
		ping_loop(fd, "P2", -1);
	}
	p[n].fd = l;
	p[n].events = 0;
	for (int i = 0; i < n; i++)
		p[i].events = POLLIN;
	n++;
	for (;;) {
		int r = poll(p, n, 100);

		if (r < 0 && errno != EINTR)
			die("server: poll: %s", strerror(errno));
		if (check_requested) {
			check_requested = 0;
			accepting = 1;
			for (int i = 0; i < n; i++)
				if (p[i].fd == l)
					p[i].events = POLLIN;
			say("CHECK %d OK accepting", ++checks);
		}
		if (r <= 0)
			continue;
		for (int i = 0; i < n; i++) {
			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (p[i].fd == l) {
				int fd;

				if (!accepting || n == MAXC)
					continue;
				fd = accept(l, NULL, NULL);
				if (fd < 0)
					die("server: accept: %s", strerror(errno));
				write_rec(fd, "HELLO", "server");
				say("ACCEPTED %d", ++accepted);
				/* looked at by this very loop: no stale revents */
				p[n].fd = fd;
				p[n].events = POLLIN;
				p[n++].revents = 0;
				continue;
			}
			if (p[i].revents & POLLIN) {
				char c;

				if (recv(p[i].fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0) {
					/* a client went away */
					say("CLOSED fd %d: end of file", p[i].fd);
					close(p[i].fd);
					p[i] = p[--n];
					i--;
					continue;
				}
				serve(p[i].fd, "server");
			} else {
				say("CLOSED fd %d: revents %#x", p[i].fd, p[i].revents);
				close(p[i].fd);
				p[i] = p[--n];
				i--;
			}
		}
	}
}
