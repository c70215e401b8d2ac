/*
 * procfiles: a counter holding /proc files of its own tree, for
 * checkpoint/restore tests.
 *
 * It forks a child (which waits), then opens /proc/self/status (and reads
 * 10 bytes of it: offset 10), /proc/<child>/cmdline, the directory
 * /proc/self/fd and /proc/self/stat with O_NONBLOCK, and fds of its network
 * and UTS namespaces (kup's own).
 * Lines: "PID CHILD <pid>", "READY", "C <n> <pid> <realtime_ms>" every
 * 100 ms; SIGUSR1 asks for "CHECK <k> OK" / "CHECK <k> FAIL <why>": each fd
 * still reads the file of the same process (its pid, the child's command
 * line), the offset and O_NONBLOCK are kept, the directory lists this
 * process's own fds, the namespace fds are of its namespaces.
 */
#include <dirent.h>
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "say.h"

static volatile sig_atomic_t check_requested;
static void on_usr1(int sig) { check_requested = 1; }

static int st_fd, cmd_fd, dir_fd, stat_fd, net_fd, uts_fd;
static pid_t child;

static const char *check(void)
{
	static char why[256];
	char buf[4096], want[64];
	ssize_t n;

	n = pread(st_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return "cannot read /proc/self/status";
	buf[n] = 0;
	snprintf(want, sizeof(want), "\nPid:\t%d\n", getpid());
	if (!strstr(buf, want) || strncmp(buf, "Name:\tprocfiles", 15))
		return "/proc/self/status is not this process's";
	if (lseek(st_fd, 0, SEEK_CUR) != 10) {
		snprintf(why, sizeof(why), "status offset %lld, not 10",
			 (long long)lseek(st_fd, 0, SEEK_CUR));
		return why;
	}
	{
		struct stat a, b, c, d;

		if (fstat(net_fd, &a) || stat("/proc/self/ns/net", &b) || fstat(uts_fd, &c) ||
		    stat("/proc/self/ns/uts", &d) || a.st_ino != b.st_ino || c.st_ino != d.st_ino)
			return "the namespace fds are not of this process's namespaces";
	}
	n = pread(cmd_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0 || strcmp(buf, "procfiles-child"))
		return "the child's cmdline is not 'procfiles-child'";
	if (!(fcntl(stat_fd, F_GETFL) & O_NONBLOCK))
		return "O_NONBLOCK of /proc/self/stat lost";
	n = pread(stat_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0 || atoi(buf) != getpid())
		return "/proc/self/stat is not this process's";
	{
		int dfd = dup(dir_fd), found = 0;
		DIR *d;
		struct dirent *e;

		if (dfd < 0 || !(d = fdopendir(dfd)))
			return "cannot read /proc/self/fd";
		rewinddir(d);
		while ((e = readdir(d)))
			if (atoi(e->d_name) == cmd_fd)
				found = 1;
		closedir(d);
		if (!found)
			return "/proc/self/fd does not list this process's fds";
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	unsigned checks = 0;
	uint64_t n = 0;
	char path[64], b[10];
	const char *why;

	if (argc == 2 && !strcmp(argv[1], "child")) {
		for (;;)
			pause();
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	child = fork();
	if (child < 0)
		die("fork: %s", strerror(errno));
	if (child == 0) {
		char *args[] = { "procfiles-child", "child", NULL };

		execv("/proc/self/exe", args);
		die("exec: %s", strerror(errno));
	}
	say("PID CHILD %d", child);
	st_fd = open("/proc/self/status", O_RDONLY);
	snprintf(path, sizeof(path), "/proc/%d/cmdline", child);
	cmd_fd = open(path, O_RDONLY);
	dir_fd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY);
	stat_fd = open("/proc/self/stat", O_RDONLY | O_NONBLOCK);
	net_fd = open("/proc/self/ns/net", O_RDONLY);
	uts_fd = open("/proc/self/ns/uts", O_RDONLY);
	if (net_fd < 0 || uts_fd < 0)
		die("open /proc/self/ns: %s", strerror(errno));
	if (st_fd < 0 || cmd_fd < 0 || dir_fd < 0 || stat_fd < 0 || read(st_fd, b, 10) != 10)
		die("open /proc: %s", strerror(errno));
	while ((why = check()) && !strcmp(why, "the child's cmdline is not 'procfiles-child'") &&
	       n++ < 100)
		sleep_ms(20);	/* the child has not exec'd yet */
	n = 0;
	if (why)
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
