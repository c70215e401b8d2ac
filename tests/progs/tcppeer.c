// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Network peers for the socket tests (tests/integ/t-sk-*.sh).  Addresses
 * are numeric IPv4 or IPv6; the output follows say.h.
 *
 *   tcppeer echo-server ADDR PORT
 *	listen, accept any number of clients, echo every byte back
 *	("LISTEN", "ACCEPT <n>").  SIGUSR1: "CHECK k OK clients=<n> bytes=<n>".
 *   tcppeer echo-client ADDR PORT [INTERVAL_MS]
 *	one connection; every INTERVAL_MS (20) send the next 8-byte counter
 *	and read it back: a reset, end-of-file or another value is an ERROR.
 *	"N <value>" every 50 values.  SIGUSR1: "CHECK k OK n=<value>".
 *   tcppeer bulk-server ADDR PORT MB / bulk-client ADDR PORT MB
 *	one connection; each side writes MB MiB of a pattern without reading
 *	until the socket is full ("FULL sent=<bytes> ..."), then waits for
 *	SIGUSR2, then writes the rest and reads and checks all MB MiB from
 *	the other side: "DONE OK" (or ERROR at the first wrong byte).
 *   tcppeer udp-server ADDR PORT
 *	echo every datagram to its sender ("UDP READY").
 *   tcppeer udp-client ADDR PORT
 *	a connected UDP socket: send the next counter every 20 ms until its
 *	echo comes back (datagrams may be lost while the server is away),
 *	"N <value>" every 50.  SIGUSR1: "CHECK k OK n=<value>".
 *   tcppeer hold-server ADDR PORT N / hold-client ADDR PORT N
 *	N connections held open (benchmarks): "HELD <n>" once all are up.
 *	The server echoes; SIGUSR1 makes the client send one byte on each
 *	and read it back: "CHECK k OK conns=<n>".
 *   tcppeer listen ADDR PORT
 *	listen and accept; each accepted connection gets "HELLO\n" and is
 *	closed ("ACCEPTED <n>").
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "say.h"

static volatile sig_atomic_t check_req, go;
static int nchecks;

static void on_usr1(int s) { check_req = 1; }
static void on_usr2(int s) { go = 1; }

static socklen_t mkaddr(const char *a, const char *port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(a, ':')) {
		struct sockaddr_in6 *s6 = (void *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(atoi(port));
		if (inet_pton(AF_INET6, a, &s6->sin6_addr) != 1)
			die("bad address %s", a);
		return sizeof(*s6);
	}
	struct sockaddr_in *s4 = (void *)ss;
	s4->sin_family = AF_INET;
	s4->sin_port = htons(atoi(port));
	if (inet_pton(AF_INET, a, &s4->sin_addr) != 1)
		die("bad address %s", a);
	return sizeof(*s4);
}

static int do_listen(const char *a, const char *port)
{
	struct sockaddr_storage ss;
	socklen_t l = mkaddr(a, port, &ss);
	int one = 1, fd = socket(ss.ss_family, SOCK_STREAM, 0);

	if (fd < 0)
		die("socket: %m");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, l) < 0 || listen(fd, 16) < 0)
		die("bind/listen %s %s: %m", a, port);
	return fd;
}

static int do_connect(const char *a, const char *port, int type)
{
	struct sockaddr_storage ss;
	socklen_t l = mkaddr(a, port, &ss);
	int fd = socket(ss.ss_family, type, 0);

	for (int i = 0; i < 100; i++) {
		if (connect(fd, (struct sockaddr *)&ss, l) == 0)
			return fd;
		if (errno != ECONNREFUSED)
			break;
		usleep(50000);
	}
	die("connect %s %s: %m", a, port);
}

static int echo_server(const char *a, const char *port)
{
	struct pollfd p[64];
	int n = 1, clients = 0;
	unsigned long long bytes = 0;
	char buf[65536];

	p[0].fd = do_listen(a, port);
	p[0].events = POLLIN;
	say("LISTEN");
	for (;;) {
		if (check_req) {
			check_req = 0;
			say("CHECK %d OK clients=%d bytes=%llu", ++nchecks, clients, bytes);
		}
		if (poll(p, n, 1000) < 0) {
			if (errno == EINTR)
				continue;
			die("poll: %m");
		}
		if ((p[0].revents & POLLIN) && n < 64) {
			int c = accept(p[0].fd, NULL, NULL);
			if (c >= 0) {
				p[n].fd = c;
				p[n++].events = POLLIN;
				say("ACCEPT %d", ++clients);
			}
		}
		for (int i = 1; i < n; i++) {
			ssize_t r, w;

			if (!p[i].revents)
				continue;
			r = read(p[i].fd, buf, sizeof(buf));
			if (r <= 0) {
				if (r < 0 && errno == EINTR)
					continue;
				say("CLOSED %d %s", i, r < 0 ? strerror(errno) : "eof");
				close(p[i].fd);
				p[i--] = p[--n];
				continue;
			}
			for (ssize_t off = 0; off < r; off += w) {
				w = write(p[i].fd, buf + off, r - off);
				if (w < 0 && errno == EINTR) {
					w = 0;
					continue;
				}
				if (w < 0)
					die("echo write: %m");
			}
			bytes += r;
		}
	}
}

static void read_full(int fd, void *buf, size_t len, const char *what)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = read(fd, (char *)buf + got, len - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die("%s: read: %m", what);
		if (r == 0)
			die("%s: end of file", what);
		got += r;
	}
}

static int echo_client(const char *a, const char *port, int interval)
{
	int fd = do_connect(a, port, SOCK_STREAM), one = 1;
	uint64_t v = 0, back;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	say("CONNECTED");
	for (;;) {
		if (check_req) {
			check_req = 0;
			say("CHECK %d OK n=%llu", ++nchecks, (unsigned long long)v);
		}
		v++;
		if (write(fd, &v, sizeof(v)) != sizeof(v))
			die("write %llu: %m", (unsigned long long)v);
		read_full(fd, &back, sizeof(back), "echo");
		if (back != v)
			die("sent %llu, got %llu back", (unsigned long long)v, (unsigned long long)back);
		if (v % 50 == 0)
			say("N %llu", (unsigned long long)v);
		usleep(interval * 1000);
	}
}

static uint8_t pattern(uint64_t i, int who)
{
	uint64_t x = (i / 8) * 0x9e3779b97f4a7c15ull + who;
	return (uint8_t)(x >> (8 * (i % 8)));
}

static int bulk(const char *a, const char *port, int mb, bool server)
{
	uint64_t total = (uint64_t)mb << 20, sent = 0, got = 0;
	int fd, me = server ? 1 : 2, peer = server ? 2 : 1;
	uint8_t buf[65536];

	if (server) {
		int l = do_listen(a, port);
		say("LISTEN");
		fd = accept(l, NULL, NULL);
		if (fd < 0)
			die("accept: %m");
		close(l);
	} else {
		fd = do_connect(a, port, SOCK_STREAM);
	}
	fcntl(fd, F_SETFL, O_NONBLOCK);
	/* large fixed buffers (root): megabytes in flight, and sizes the
	 * restore must keep */
	int sz = 2 << 20;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)))
		die("SO_SNDBUFFORCE: %m");
	/* fill until the socket (and the peer's receive side) is full */
	for (uint64_t idle = mono_ms(); sent < total && mono_ms() - idle < 500;) {
		size_t n = total - sent < sizeof(buf) ? total - sent : sizeof(buf);
		ssize_t w;

		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(sent + i, me);
		w = write(fd, buf, n);
		if (w > 0) {
			sent += w;
			idle = mono_ms();
		} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
			die("write: %m");
		} else {
			usleep(10000);
		}
	}
	say("FULL sent=%llu", (unsigned long long)sent);
	while (!go)
		pause();
	while (sent < total || got < total) {
		struct pollfd p = { .fd = fd, .events = POLLIN | (sent < total ? POLLOUT : 0) };

		if (poll(&p, 1, 30000) <= 0)
			die("stalled: sent %llu, got %llu", (unsigned long long)sent,
			    (unsigned long long)got);
		if (p.revents & POLLIN) {
			ssize_t r = read(fd, buf, sizeof(buf));
			if (r == 0)
				die("end of file after %llu bytes", (unsigned long long)got);
			if (r < 0 && errno != EAGAIN && errno != EINTR)
				die("read: %m");
			for (ssize_t i = 0; i < r; i++, got++)
				if (buf[i] != pattern(got, peer))
					die("byte %llu is wrong", (unsigned long long)got);
		}
		if ((p.revents & POLLOUT) && sent < total) {
			size_t n = total - sent < sizeof(buf) ? total - sent : sizeof(buf);
			ssize_t w;

			for (size_t i = 0; i < n; i++)
				buf[i] = pattern(sent + i, me);
			w = write(fd, buf, n);
			if (w > 0)
				sent += w;
			else if (w < 0 && errno != EAGAIN && errno != EINTR)
				die("write: %m");
		}
	}
	say("DONE OK sent=%llu got=%llu", (unsigned long long)sent, (unsigned long long)got);
	return 0;
}

static int udp_server(const char *a, const char *port)
{
	struct sockaddr_storage ss, from;
	socklen_t l = mkaddr(a, port, &ss), fl;
	int fd = socket(ss.ss_family, SOCK_DGRAM, 0);
	char buf[2048];

	if (bind(fd, (struct sockaddr *)&ss, l) < 0)
		die("bind: %m");
	say("UDP READY");
	for (;;) {
		ssize_t r;

		if (check_req) {
			check_req = 0;
			say("CHECK %d OK", ++nchecks);
		}
		fl = sizeof(from);
		r = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die("recvfrom: %m");
		sendto(fd, buf, r, 0, (struct sockaddr *)&from, fl);
	}
}

static int udp_client(const char *a, const char *port)
{
	int fd = do_connect(a, port, SOCK_DGRAM);
	struct timeval tv = { 0, 20000 };
	uint64_t v = 0, back;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	say("CONNECTED");
	for (;;) {
		ssize_t r;

		if (check_req) {
			check_req = 0;
			say("CHECK %d OK n=%llu", ++nchecks, (unsigned long long)v);
		}
		v++;
		do {
			if (send(fd, &v, sizeof(v), 0) < 0 && errno != ECONNREFUSED && errno != EINTR)
				die("send: %m");
			r = recv(fd, &back, sizeof(back), 0);
			if (r == sizeof(back) && back < v)
				r = -1;		/* a late echo of an older value */
		} while (r != sizeof(back));
		if (back != v)
			die("sent %llu, got %llu back", (unsigned long long)v, (unsigned long long)back);
		if (v % 50 == 0)
			say("N %llu", (unsigned long long)v);
		usleep(20000);
	}
}

static int listener(const char *a, const char *port)
{
	int l = do_listen(a, port), n = 0;

	say("LISTEN");
	for (;;) {
		int c = accept(l, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR)
				continue;
			die("accept: %m");
		}
		if (write(c, "HELLO\n", 6) != 6)
			die("write: %m");
		close(c);
		say("ACCEPTED %d", ++n);
	}
}

static int hold(const char *a, const char *port, int n, bool server)
{
	struct pollfd *p = calloc(n + 1, sizeof(*p));
	struct rlimit rl;
	int l = -1, up = 0;
	char c;

	if (!p)
		die("calloc");
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < (rlim_t)n + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (server) {
		struct sockaddr_storage ss;
		socklen_t sl = mkaddr(a, port, &ss);
		int one = 1;

		l = socket(ss.ss_family, SOCK_STREAM, 0);
		setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(l, (struct sockaddr *)&ss, sl) < 0 || listen(l, n) < 0)
			die("bind/listen: %m");
		say("LISTEN");
		while (up < n) {
			int c2 = accept(l, NULL, NULL);
			if (c2 < 0 && errno == EINTR)
				continue;
			if (c2 < 0)
				die("accept: %m");
			p[up].fd = c2;
			p[up++].events = POLLIN;
		}
		close(l);
	} else {
		while (up < n) {
			p[up].fd = do_connect(a, port, SOCK_STREAM);
			p[up++].events = POLLIN;
		}
	}
	say("HELD %d", up);
	for (;;) {
		if (check_req) {
			check_req = 0;
			for (int i = 0; !server && i < n; i++) {
				if (write(p[i].fd, "x", 1) != 1)
					die("conn %d: write: %m", i);
				read_full(p[i].fd, &c, 1, "hold");
			}
			say("CHECK %d OK conns=%d", ++nchecks, n);
		}
		if (!server) {
			pause();
			continue;
		}
		if (poll(p, n, -1) < 0)
			continue;
		for (int i = 0; i < n; i++) {
			if (!p[i].revents)
				continue;
			if (read(p[i].fd, &c, 1) != 1)
				die("conn %d: closed", i);
			if (write(p[i].fd, &c, 1) != 1)
				die("conn %d: write: %m", i);
		}
	}
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_usr1 };

	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_usr2;
	sigaction(SIGUSR2, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (argc < 4)
		die("usage: tcppeer MODE ADDR PORT [ARG]");
	if (!strcmp(argv[1], "echo-server"))
		return echo_server(argv[2], argv[3]);
	if (!strcmp(argv[1], "echo-client"))
		return echo_client(argv[2], argv[3], argc > 4 ? atoi(argv[4]) : 20);
	if (!strcmp(argv[1], "bulk-server") && argc > 4)
		return bulk(argv[2], argv[3], atoi(argv[4]), true);
	if (!strcmp(argv[1], "bulk-client") && argc > 4)
		return bulk(argv[2], argv[3], atoi(argv[4]), false);
	if (!strcmp(argv[1], "udp-server"))
		return udp_server(argv[2], argv[3]);
	if (!strcmp(argv[1], "udp-client"))
		return udp_client(argv[2], argv[3]);
	if (!strcmp(argv[1], "hold-server") && argc > 4)
		return hold(argv[2], argv[3], atoi(argv[4]), true);
	if (!strcmp(argv[1], "hold-client") && argc > 4)
		return hold(argv[2], argv[3], atoi(argv[4]), false);
	if (!strcmp(argv[1], "listen"))
		return listener(argv[2], argv[3]);
	die("unknown mode %s", argv[1]);
}
