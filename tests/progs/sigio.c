/*
 * sigio: signal-driven I/O on a pipe, for checkpoint/restore tests.
 *
 * Usage: sigio
 * The read end of a pipe (both ends held) is O_ASYNC|O_NONBLOCK, owned by
 * this process (F_SETOWN_EX F_OWNER_PID) and signals SIGRTMIN+2 (F_SETSIG).
 * Whatever is written into the pipe (by anyone: echo x > /proc/PID/fd/N)
 * raises SIGRTMIN+2 with si_fd = the read end and si_code POLL_IN; the
 * program drains the pipe and counts the signals and bytes.
 *
 * Protocol (shared by the tests/progs programs): every line is one write(2)
 * to stdout; SIGUSR1 asks for "CHECK <k> OK ..." / "CHECK <k> FAIL <why>";
 * a broken invariant prints "ERROR <why>" and exits 1.
 *
 * Lines: "PID <pid>", "FD <read end>", "READY",
 *   "C <n> <pid> <realtime_ms>" every 100 ms,
 *   "CHECK <k> OK signals=<n> bytes=<n> owner=<type>:<pid> sig=<n> async=<0|1>"
 *   (FAIL when the owner, signal or O_ASYNC changed, or a signal came with
 *   another si_fd or si_code).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "say.h"

static volatile sig_atomic_t check_requested, signals, bad_fd = -1;
static int rfd;

static void on_usr1(int sig) { check_requested = 1; }

static void on_io(int sig, siginfo_t *si, void *uc)
{
	if (si->si_fd != rfd || si->si_code != POLL_IN)
		bad_fd = si->si_fd;
	signals++;
}

int main(void)
{
	struct f_owner_ex own = { F_OWNER_PID, getpid() };
	struct sigaction sa;
	unsigned checks = 0;
	uint64_t n = 0, bytes = 0;
	int p[2];

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_sigaction = on_io;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(SIGRTMIN + 2, &sa, NULL);
	say("PID %d", getpid());
	if (pipe(p))
		die("pipe: %s", strerror(errno));
	rfd = p[0];
	if (fcntl(rfd, F_SETSIG, SIGRTMIN + 2) || fcntl(rfd, F_SETOWN_EX, &own) ||
	    fcntl(rfd, F_SETFL, O_ASYNC | O_NONBLOCK))
		die("signal-driven I/O setup: %s", strerror(errno));
	say("FD %d", rfd);
	say("READY");

	for (;;) {
		char buf[256];
		ssize_t r;

		while ((r = read(rfd, buf, sizeof(buf))) > 0)
			bytes += r;
		say("C %llu %d %llu", (unsigned long long)n++, getpid(), (unsigned long long)now_ms());
		if (check_requested) {
			struct f_owner_ex o = { 0 };
			int sig = fcntl(rfd, F_GETSIG), fl = fcntl(rfd, F_GETFL);

			check_requested = 0;
			checks++;
			fcntl(rfd, F_GETOWN_EX, &o);
			if (bad_fd != -1)
				say("CHECK %u FAIL a signal came with si_fd %d", checks, (int)bad_fd);
			else if (o.type != F_OWNER_PID || o.pid != getpid() || sig != SIGRTMIN + 2 ||
				 !(fl & O_ASYNC))
				say("CHECK %u FAIL owner %d:%d sig %d flags %#o", checks, o.type, o.pid, sig, fl);
			else
				say("CHECK %u OK signals=%d bytes=%llu owner=%d:%d sig=%d async=%d", checks,
				    (int)signals, (unsigned long long)bytes, o.type, o.pid, sig,
				    !!(fl & O_ASYNC));
		}
		sleep_ms(100);
	}
}
