// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Pseudo-terminals for kup dump/restore: three pairs and a session.
 *
 * P (this process, the root) holds the masters:
 *   A: canonical, echo off, ONLCR: P wrote "line1\npartial" that the slave
 *      has not read (a whole line and one not finished), the slave wrote
 *      "out1\nout2" that P has not read; exclusive mode; slave owned by
 *      4242:5, mode 0604;
 *   B: raw, packet mode, window 33x101: "rawin" and "rawout" queued;
 *   L: never unlocked.
 * C (a child) is a session leader whose controlling terminal is A's slave,
 * which it also holds opened as /dev/tty (and answers through);
 * G (its child) is its own process group, the foreground one of A.
 *
 * On SIGUSR1, P checks what it sees (index of each pair, termios, window,
 * packet mode, lock, owner and mode of A's slave, A's session and foreground
 * group), writes "-end\n" to A and asks C to check: C reads B's slave until
 * "rawin", checks its controlling terminal, foreground group and exclusive
 * mode, writes "!OK\n" (or "!FAIL why\n") to A and asks G, which checks it
 * is in the foreground of its controlling terminal, reads it (a background
 * group could not) until it has "line1\npartial-end\n" (the line finished
 * after the restore) and writes "GOK\n".  P then reads A until it has everything: "out1\r\nout2!OK\r\nGOK\r\n",
 * and B: the packet-mode status byte (TIOCPKT_NOSTOP, from the child's
 * cfmakeraw()) not read at dump time, then a data byte and "rawout".  One line: "CHECK 1 OK" or
 * "CHECK 1 FAIL <what>".  READY once all is set up.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "say.h"

static volatile sig_atomic_t req;

static void on_usr1(int sig)
{
	req = 1;
}

static void wait_req(void)
{
	sigset_t none;

	sigemptyset(&none);
	while (!req)
		sigsuspend(&none);
	req = 0;
}

/* Read @fd until @want (len bytes) has arrived or 10 s passed; got: what came. */
static size_t read_until(int fd, char *got, size_t cap, size_t want)
{
	size_t n = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	while (n < want && n < cap && poll(&p, 1, 10000) > 0) {
		ssize_t r = read(fd, got + n, cap - n);

		if (r <= 0)
			break;
		n += r;
	}
	return n;
}

static void vis(char *out, size_t cap, const char *b, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 5 < cap; i++)
		o += snprintf(out + o, cap - o, (b[i] >= 32 && b[i] < 127) ? "%c" : "\\x%02x",
			      (unsigned char)b[i]);
	out[o] = 0;
}

#define FAIL(...) do { snprintf(why, sizeof(why), __VA_ARGS__); goto out; } while (0)

/* The controlling terminal of this process (/proc/self/stat tty_nr). */
static dev_t ctty(void)
{
	char b[1024], *p;
	unsigned int nr = 0;
	int fd = open("/proc/self/stat", O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, b, sizeof(b) - 1);

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return 0;
	b[n] = 0;
	p = strrchr(b, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %u", &nr) != 1)
		return 0;
	return makedev((nr >> 8) & 0xfff, (nr & 0xff) | ((nr >> 12) & 0xfff00));
}

static void grandchild(void)
{
	char why[1024] = "", got[256], v[200];
	size_t n;
	int fd;

	setpgid(0, 0);
	for (;;) {
		wait_req();
		fd = open("/dev/tty", O_RDWR);
		if (fd < 0)
			FAIL("no controlling terminal");
		if (tcgetpgrp(fd) != getpgrp())
			FAIL("not in the foreground of its terminal");
		if (!ctty())
			FAIL("no controlling terminal in /proc/self/stat");
		n = read_until(fd, got, sizeof(got), 18);
		vis(v, sizeof(v), got, n);
		if (n != 18 || memcmp(got, "line1\npartial-end\n", 18))
			FAIL("A's slave read '%s', not 'line1\\npartial-end\\n'", v);
out:
		if (why[0])
			dprintf(fd < 0 ? 1 : fd, "GFAIL %s\n", why);
		else if (write(fd, "GOK\n", 4) != 4)
			_exit(1);
		why[0] = 0;
		if (fd >= 0)
			close(fd);
	}
}

static void child(const char *na, const char *nb, int ready)
{
	struct termios t;
	char why[1024] = "", got[256], v[200];
	pid_t g;
	int sa, sb, dt, excl = 0;
	struct stat s2;
	size_t n;

	setsid();
	sa = open(na, O_RDWR);		/* becomes the controlling terminal */
	sb = open(nb, O_RDWR | O_NOCTTY);
	dt = open("/dev/tty", O_RDWR);	/* the same terminal by its alias */
	if (sa < 0 || sb < 0 || dt < 0)
		die("cannot open the slaves");
	tcgetattr(sa, &t);
	t.c_lflag |= ICANON;
	t.c_lflag &= ~(ECHO | ECHOE | ECHOK | ECHONL);
	t.c_oflag |= OPOST | ONLCR;
	tcsetattr(sa, TCSANOW, &t);
	tcgetattr(sb, &t);
	cfmakeraw(&t);
	tcsetattr(sb, TCSANOW, &t);
	if (ioctl(sa, TIOCEXCL))
		die("TIOCEXCL");
	g = fork();
	if (g == 0)
		grandchild();
	setpgid(g, g);
	if (tcsetpgrp(sa, g))
		die("tcsetpgrp");
	if (write(sa, "out1\nout2", 9) != 9 || write(sb, "rawout", 6) != 6)
		die("cannot write to the slaves");
	if (write(ready, "r", 1) != 1)
		die("ready");
	close(ready);
	for (;;) {
		wait_req();
		n = read_until(sb, got, sizeof(got), 5);
		vis(v, sizeof(v), got, n);
		if (n != 5 || memcmp(got, "rawin", 5))
			FAIL("B's slave read '%s', not 'rawin'", v);
		if (fstat(sa, &s2) || ctty() != s2.st_rdev)
			FAIL("the controlling terminal is not A's slave");
		if (tcgetsid(sa) != getpid())
			FAIL("A's session is %d, not %d", tcgetsid(sa), getpid());
		if (tcgetpgrp(sa) != g)
			FAIL("A's foreground group is %d, not %d", tcgetpgrp(sa), g);
		if (ioctl(sa, TIOCGEXCL, &excl) || !excl)
			FAIL("A's slave is not in exclusive mode");
		if (!isatty(dt) || tcgetsid(dt) != getpid())
			FAIL("the /dev/tty fd is not this session's terminal");
out:
		/* the answer goes through the /dev/tty fd: P reads it on A */
		if (why[0])
			dprintf(dt, "!FAIL %s\n", why);
		else if (write(dt, "!OK\n", 4) != 4)
			_exit(1);
		why[0] = 0;
		kill(g, SIGUSR1);
	}
}

static int check_master(int m, const char *name, char *why, size_t len)
{
	char *now = ptsname(m);

	if (!now || strcmp(now, name)) {
		snprintf(why, len, "master of %s is now the master of %s", name, now ? now : "?");
		return -1;
	}
	return 0;
}

int main(void)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	char na[64], nb[64], nl[64], why[1024] = "", got[256], v[200];
	struct winsize ws = { .ws_row = 33, .ws_col = 101 };
	struct termios t;
	struct stat st;
	int ma, mb, ml, one = 1, pk = 0, lk = 0, p[2], k = 0;
	pid_t c, sid = 0, fg = 0, g;
	size_t n;
	const char *want = "out1\r\nout2!OK\r\nGOK\r\n";

	sigaction(SIGUSR1, &sa, NULL);
	ma = posix_openpt(O_RDWR | O_NOCTTY);
	mb = posix_openpt(O_RDWR | O_NOCTTY);
	ml = posix_openpt(O_RDWR | O_NOCTTY);
	if (ma < 0 || mb < 0 || ml < 0 || grantpt(ma) || unlockpt(ma) || grantpt(mb) ||
	    unlockpt(mb))
		die("cannot open ptys");
	snprintf(na, sizeof(na), "%s", ptsname(ma));
	snprintf(nb, sizeof(nb), "%s", ptsname(mb));
	snprintf(nl, sizeof(nl), "%s", ptsname(ml));
	if (ioctl(mb, TIOCPKT, &one) || ioctl(mb, TIOCSWINSZ, &ws))
		die("packet mode, window size");
	if (chown(na, 4242, 5) || chmod(na, 0604))
		die("cannot chown %s", na);
	if (pipe(p))
		die("pipe");
	c = fork();
	if (c == 0) {
		close(p[0]);
		close(ma);
		close(mb);
		close(ml);
		child(na, nb, p[1]);
	}
	close(p[1]);
	if (read(p[0], got, 1) != 1)
		die("the child did not start");
	close(p[0]);
	if (write(ma, "line1\npartial", 13) != 13 || write(mb, "rawin", 5) != 5)
		die("cannot write to the masters");
	ioctl(ma, TIOCGPGRP, &g);
	say("READY %d A %s B %s L %s C %d G %d", getpid(), na, nb, nl, c, g);

	for (;;) {
		wait_req();
		k++;
		if (check_master(ma, na, why, sizeof(why)) || check_master(mb, nb, why, sizeof(why)) ||
		    check_master(ml, nl, why, sizeof(why)))
			goto out;
		if (ioctl(mb, TIOCGPKT, &pk) || !pk || ioctl(ma, TIOCGPKT, &pk) || pk)
			FAIL("packet mode: B should have it, A not");
		if (ioctl(ml, TIOCGPTLCK, &lk) || !lk || ioctl(ma, TIOCGPTLCK, &lk) || lk)
			FAIL("lock: L should be locked, A not");
		memset(&ws, 0, sizeof(ws));
		if (ioctl(mb, TIOCGWINSZ, &ws) || ws.ws_row != 33 || ws.ws_col != 101)
			FAIL("B's window is %dx%d, not 33x101", ws.ws_row, ws.ws_col);
		if (tcgetattr(ma, &t) || !(t.c_lflag & ICANON) || (t.c_lflag & ECHO) ||
		    !(t.c_oflag & ONLCR))
			FAIL("A's termios: lflag 0%o oflag 0%o", t.c_lflag, t.c_oflag);
		if (tcgetattr(mb, &t) || (t.c_lflag & (ICANON | ECHO | ISIG)) || (t.c_oflag & OPOST))
			FAIL("B's termios is not raw: lflag 0%o oflag 0%o", t.c_lflag, t.c_oflag);
		if (stat(na, &st) || st.st_uid != 4242 || st.st_gid != 5 || (st.st_mode & 07777) != 0604)
			FAIL("%s: owner %d:%d mode %o, not 4242:5 0604", na, st.st_uid, st.st_gid,
			     st.st_mode & 07777);
		if (ioctl(ma, TIOCGSID, &sid) || sid != c)
			FAIL("A is the terminal of session %d, not %d", sid, c);
		if (ioctl(ma, TIOCGPGRP, &fg) || fg != g)
			FAIL("A's foreground group is %d, not %d", fg, g);
		/* C reads the end of its line, then answers on A */
		if (write(ma, "-end\n", 5) != 5)
			FAIL("cannot write to A");
		kill(c, SIGUSR1);
		n = read_until(ma, got, sizeof(got), strlen(want));
		vis(v, sizeof(v), got, n);
		if (n != strlen(want) || memcmp(got, want, n))
			FAIL("A's master read '%s'", v);
		/* the status byte of cfmakeraw()'s flow control change, then data */
		n = read_until(mb, got, sizeof(got), 8);
		vis(v, sizeof(v), got, n);
		if (n != 8 || memcmp(got, "\x10\0rawout", 8))
			FAIL("B's master read '%s', not '\\x10' (TIOCPKT_NOSTOP), '\\x00rawout'", v);
out:
		if (why[0])
			say("CHECK %d FAIL %s", k, why);
		else
			say("CHECK %d OK", k);
		why[0] = 0;
	}
}
