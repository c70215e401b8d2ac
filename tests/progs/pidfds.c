/*
 * pidfds: a counter holding pidfds of processes of its tree, for
 * checkpoint/restore tests.
 *
 * It forks a child (which waits), opens a pidfd of the child
 * (PIDFD_NONBLOCK) and one of itself (close-on-exec cleared) with a dup of it
 * (close-on-exec), and registers the child's pidfd in an epoll.  A second
 * child exits at once and is reaped: its pidfd is one of an exited process.
 * Lines: "PID CHILD <pid>", "READY", "C <n> <pid> <realtime_ms>" every
 * 100 ms; SIGUSR1 asks for "CHECK <k> OK" / "CHECK <k> FAIL <why>": each
 * pidfd's fdinfo names the right pid, O_NONBLOCK is where it was,
 * pidfd_send_signal(0) reaches the child, the epoll says the child still
 * runs; the exited child's pidfd says Pid -1, is readable, and signals to
 * it fail with ESRCH.  When the child exits, the epoll wakes the counter, which reaps the
 * child through its pidfd (waitid(P_PIDFD)) and says "CHILD EXITED <status>".
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "say.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static volatile sig_atomic_t check_requested;
static void on_usr1(int sig) { check_requested = 1; }

static long fdinfo_pid(int fd)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = open(path, O_RDONLY);
	if (f < 0)
		return -2;
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return -2;
	buf[n] = 0;
	p = strstr(buf, "\nPid:");
	return p ? strtol(p + 5, NULL, 10) : -2;
}

int main(void)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0x5eed };
	struct sigaction sa;
	unsigned checks = 0;
	uint64_t n = 0;
	int child_fd, self_fd, self_dup, ep, dead_fd;
	pid_t dead;
	pid_t child;
	char why[256];

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	child = fork();
	if (child < 0)
		die("fork: %s", strerror(errno));
	if (child == 0) {
		for (;;)
			pause();
	}
	say("PID CHILD %d", child);
	dead = fork();
	if (dead < 0)
		die("fork: %s", strerror(errno));
	if (dead == 0)
		_exit(7);
	dead_fd = (int)syscall(SYS_pidfd_open, dead, 0);
	if (dead_fd < 0 || waitpid(dead, NULL, 0) != dead)
		die("dead child: %s", strerror(errno));
	child_fd = (int)syscall(SYS_pidfd_open, child, O_NONBLOCK);
	self_fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	self_dup = fcntl(self_fd, F_DUPFD_CLOEXEC, 20);
	ep = epoll_create1(0);
	if (child_fd < 0 || self_fd < 0 || self_dup < 0 || ep < 0 || fcntl(self_fd, F_SETFD, 0) ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, child_fd, &ev))
		die("pidfds: %s", strerror(errno));
	say("READY");
	for (;;) {
		struct epoll_event got;
		int r;

		say("C %llu %d %llu", (unsigned long long)n++, getpid(), (unsigned long long)now_ms());
		r = epoll_wait(ep, &got, 1, 0);
		if (r == 1 && child) {
			siginfo_t si = { 0 };

			if (got.data.u64 != 0x5eed)
				die("epoll data %llx", (unsigned long long)got.data.u64);
			if (waitid(P_PIDFD, child_fd, &si, WEXITED | WNOHANG))
				die("waitid(P_PIDFD): %s", strerror(errno));
			if (si.si_pid != child)
				die("waitid reaped %d, not %d", si.si_pid, child);
			say("CHILD EXITED %d", si.si_status);
			child = 0;
		}
		if (check_requested) {
			check_requested = 0;
			why[0] = 0;
			if (fdinfo_pid(child_fd) != child)
				snprintf(why, sizeof(why), "child pidfd names pid %ld, not %d",
					 fdinfo_pid(child_fd), child);
			else if (fdinfo_pid(self_fd) != getpid() || fdinfo_pid(self_dup) != getpid())
				snprintf(why, sizeof(why), "own pidfds name %ld and %ld, not %d",
					 fdinfo_pid(self_fd), fdinfo_pid(self_dup), getpid());
			else if (!(fcntl(child_fd, F_GETFL) & O_NONBLOCK) ||
				 (fcntl(self_fd, F_GETFL) & O_NONBLOCK))
				snprintf(why, sizeof(why), "O_NONBLOCK changed");
			else if (!(fcntl(self_dup, F_GETFD) & FD_CLOEXEC) ||
				 (fcntl(self_fd, F_GETFD) & FD_CLOEXEC))
				snprintf(why, sizeof(why), "close-on-exec changed");
			else if (syscall(SYS_pidfd_send_signal, child_fd, 0, NULL, 0))
				snprintf(why, sizeof(why), "pidfd_send_signal: %s", strerror(errno));
			else if (epoll_wait(ep, &got, 1, 0) != 0)
				snprintf(why, sizeof(why), "the epoll says the child exited");
			else if (fdinfo_pid(dead_fd) != -1)
				snprintf(why, sizeof(why), "the exited child's pidfd names pid %ld",
					 fdinfo_pid(dead_fd));
			else if (!syscall(SYS_pidfd_send_signal, dead_fd, 0, NULL, 0) || errno != ESRCH)
				snprintf(why, sizeof(why), "a signal to the exited child did not fail with ESRCH");
			else {
				struct pollfd pf = { .fd = dead_fd, .events = POLLIN };

				if (poll(&pf, 1, 0) != 1 || !(pf.revents & POLLIN))
					snprintf(why, sizeof(why), "the exited child's pidfd is not readable");
			}
			if (why[0])
				say("CHECK %u FAIL %s", ++checks, why);
			else
				say("CHECK %u OK", ++checks);
		}
		sleep_ms(100);
	}
}
