/*
 * taskattr: a process with per-process attributes set: transparent huge
 * pages disabled (PR_SET_THP_DISABLE) and an audit login uid.
 *
 * Usage: taskattr LOGINUID [aio]
 *
 * With "aio", it also holds a Linux native AIO context (io_setup), idle.
 *
 * Lines: "READY", then "C <n>" every 100 ms.  SIGUSR1: "CHECK <k> OK
 * thp_disable=<0|1>" from prctl(PR_GET_THP_DISABLE).
 */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "say.h"

static volatile sig_atomic_t check_requested;
static void on_usr1(int sig) { check_requested = 1; }

int main(int argc, char **argv)
{
	int fd, k = 0;

	if (argc < 2)
		die("usage: taskattr LOGINUID [aio]");
	if (argc > 2 && !strcmp(argv[2], "aio")) {
		unsigned long ctx = 0;

		if (syscall(SYS_io_setup, 16, &ctx))
			die("io_setup: %s", strerror(errno));
		say("AIO %lx", ctx);
	}
	signal(SIGUSR1, on_usr1);
	if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0))
		die("PR_SET_THP_DISABLE: %s", strerror(errno));
	fd = open("/proc/self/loginuid", O_WRONLY);
	if (fd < 0 || write(fd, argv[1], strlen(argv[1])) != (ssize_t)strlen(argv[1]))
		die("cannot write /proc/self/loginuid: %s", strerror(errno));
	close(fd);
	say("READY");
	for (unsigned long n = 0;; n++) {
		if (check_requested) {
			check_requested = 0;
			say("CHECK %d OK thp_disable=%d", ++k, prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0));
		}
		say("C %lu", n);
		sleep_ms(100);
	}
}
