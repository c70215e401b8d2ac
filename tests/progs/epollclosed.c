/*
 * epollclosed: a counter whose epoll watches files whose fd numbers were
 * closed since EPOLL_CTL_ADD, for checkpoint/restore tests.
 *
 * Pipe A's read end is registered (data 0xa), dup'ed to fd 100, and closed:
 * its old number stays free.  Pipe B's read end is registered (data 0xb),
 * dup'ed to fd 101, closed, and its old number then holds /dev/null.
 * Lines: "READY", "C <n> <pid> <realtime_ms>" every 100 ms; SIGUSR1 asks for
 * "CHECK <k> OK" / "CHECK <k> FAIL <why>": a byte written into each pipe
 * makes the epoll report exactly that registration's data, the fdinfo of the
 * epoll still shows the old numbers, the old number of B still holds
 * /dev/null and that of A is still free.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "say.h"

static volatile sig_atomic_t check_requested;
static void on_usr1(int sig) { check_requested = 1; }

static int ep, a_old, b_old, a_w, b_w;

static const char *one(int w, int r, uint64_t data)
{
	static char why[128];
	struct epoll_event ev;
	char c;
	int n;

	if (write(w, "x", 1) != 1)
		return "cannot write into a pipe";
	n = epoll_wait(ep, &ev, 1, 1000);
	if (n != 1 || ev.data.u64 != data) {
		snprintf(why, sizeof(why), "epoll: %d events, data %llx, expected %llx", n,
			 n == 1 ? (unsigned long long)ev.data.u64 : 0ull, (unsigned long long)data);
		return why;
	}
	if (read(r, &c, 1) != 1)
		return "cannot read the byte back";
	if (epoll_wait(ep, &ev, 1, 0) != 0)
		return "the epoll still reports an event";
	return NULL;
}

static const char *check(void)
{
	char path[64], buf[1024], want[64];
	struct stat st;
	const char *why;
	ssize_t n;
	int f;

	if ((why = one(a_w, 100, 0xa)) || (why = one(b_w, 101, 0xb)))
		return why;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", ep);
	f = open(path, O_RDONLY);
	n = f < 0 ? -1 : read(f, buf, sizeof(buf) - 1);
	if (f >= 0)
		close(f);
	if (n <= 0)
		return "cannot read the epoll's fdinfo";
	buf[n] = 0;
	snprintf(want, sizeof(want), "tfd: %8d events:", a_old);
	if (!strstr(buf, want))
		return "the epoll does not show the old number of A";
	snprintf(want, sizeof(want), "tfd: %8d events:", b_old);
	if (!strstr(buf, want))
		return "the epoll does not show the old number of B";
	if (fstat(b_old, &st) || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
		return "the old number of B does not hold /dev/null";
	if (fcntl(a_old, F_GETFD) >= 0 || errno != EBADF)
		return "the old number of A is not free";
	return NULL;
}

int main(void)
{
	struct sigaction sa;
	unsigned checks = 0;
	uint64_t n = 0;
	int a[2], b[2];
	const char *why;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	ep = epoll_create1(0);
	if (ep < 0 || pipe(a) || pipe(b))
		die("setup: %s", strerror(errno));
	a_old = a[0];
	b_old = b[0];
	a_w = a[1];
	b_w = b[1];
	struct epoll_event ea = { .events = EPOLLIN, .data.u64 = 0xa };
	struct epoll_event eb = { .events = EPOLLIN, .data.u64 = 0xb };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, a[0], &ea) || epoll_ctl(ep, EPOLL_CTL_ADD, b[0], &eb) ||
	    dup2(a[0], 100) != 100 || dup2(b[0], 101) != 101)
		die("epoll: %s", strerror(errno));
	close(a[0]);
	close(b[0]);
	if (open("/dev/null", O_RDONLY) != a_old ||	/* lowest free: a's number */
	    dup2(a_old, b_old) != b_old)
		die("/dev/null: %s", strerror(errno));
	close(a_old);
	if ((why = check()))
		die("%s", why);
	say("READY");
	for (;;) {
		say("C %llu %d %llu", (unsigned long long)n++, getpid(), (unsigned long long)now_ms());
		if (check_requested) {
			check_requested = 0;
			why = check();
			if (why)
				say("CHECK %u FAIL %s", ++checks, why);
			else
				say("CHECK %u OK", ++checks);
		}
		sleep_ms(100);
	}
}
