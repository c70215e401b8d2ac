/*
 * fdshare: two processes, not threads, that share one fd table: a parent
 * and its child made with clone(CLONE_FILES) (no CLONE_VM), both running.
 *
 * Usage: fdshare -f FILE -g FILE2
 *   Before the lines below, the parent opens FILE at fd 50 (both see it),
 *   the child opens a pipe holding "in-the-pipe" at fd 60 and 61 (read and
 *   write ends) and takes a POSIX write lock on bytes 0-9 of FILE through
 *   fd 50 (the lock belongs to the shared table).  A grandchild, made by
 *   the child with plain fork(), has a table of its own (a copy); another
 *   one, made by the child with clone(CLONE_FILES), shares the table too.
 *
 *   SIGUSR1 to the child: it opens FILE2 at fd 70 and closes fd 50, then
 *   "CHECK 1 OK child" (or FAIL).
 *   SIGUSR1 to the parent (after that): fd 70 is FILE2 (reads its content)
 *   and fd 50 is closed, in its own table: one table; the pipe at fd 60
 *   gives "in-the-pipe"; "CHECK 1 OK parent" (or FAIL why).
 *   SIGUSR1 to the grandchild: its fd 50 is still FILE (its own copy of
 *   the table) and fd 70 is not open: "CHECK 1 OK grandchild".
 *   SIGUSR1 to the sharing grandchild: fd 70 is FILE2 and fd 50 is closed:
 *   "CHECK 1 OK sharer".
 *
 * Lines: "PID P <pid>", "PID C <pid>", "PID G <pid>", "PID S <pid>",
 * "READY".
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "say.h"

static volatile sig_atomic_t check_requested;
static const char *file, *file2;

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

/* Is @fd open on the file at @path? */
static bool is_file(int fd, const char *path)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

static void grandchild(void)
{
	say("PID G %d", getpid());
	for (;;) {
		wait_check();
		if (!is_file(50, file))
			say("CHECK 1 FAIL grandchild: fd 50 is not %s in its own table", file);
		else if (fcntl(70, F_GETFD) >= 0)
			say("CHECK 1 FAIL grandchild: fd 70, opened by the child, shows in its table");
		else
			say("CHECK 1 OK grandchild");
	}
}

static int sharer(void *arg)
{
	(void)arg;
	say("PID S %d", getpid());
	for (;;) {
		wait_check();
		if (!is_file(70, file2))
			say("CHECK 1 FAIL sharer: fd 70, opened by the child, is not in its table");
		else if (fcntl(50, F_GETFD) >= 0)
			say("CHECK 1 FAIL sharer: fd 50, closed by the child, is still open");
		else
			say("CHECK 1 OK sharer");
	}
	return 0;
}

static void child(void)
{
	static char stack2[65536] __attribute__((aligned(16)));
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };
	int p[2], fd;
	pid_t g;

	say("PID C %d", getpid());
	if (pipe(p) || dup2(p[0], 60) != 60 || dup2(p[1], 61) != 61 ||
	    write(61, "in-the-pipe", 11) != 11)
		die("pipe: %s", strerror(errno));
	close(p[0]);
	close(p[1]);
	if (fcntl(50, F_SETLK, &fl))
		die("lock: %s", strerror(errno));
	g = fork();
	if (g < 0)
		die("fork: %s", strerror(errno));
	if (g == 0)
		grandchild();
	if (clone(sharer, stack2 + sizeof(stack2), CLONE_FILES | SIGCHLD, NULL) < 0)
		die("clone: %s", strerror(errno));
	say("READY");
	for (;;) {
		wait_check();
		fd = open(file2, O_RDONLY);
		if (fd < 0 || dup2(fd, 70) != 70) {
			say("CHECK 1 FAIL child: cannot open %s at fd 70: %s", file2, strerror(errno));
			continue;
		}
		close(fd);
		close(50);
		say("CHECK 1 OK child");
	}
}

static const char *parent_check(void)
{
	static char why[256];
	char buf[64];
	ssize_t r;

	if (!is_file(70, file2))
		return "fd 70, opened by the child, is not in its table";
	r = pread(70, buf, sizeof(buf) - 1, 0);
	buf[r > 0 ? r : 0] = 0;
	if (strcmp(buf, "second-file")) {
		snprintf(why, sizeof(why), "fd 70 reads '%s'", buf);
		return why;
	}
	if (fcntl(50, F_GETFD) >= 0)
		return "fd 50, closed by the child, is still open in its table";
	r = read(60, buf, sizeof(buf) - 1);
	buf[r > 0 ? r : 0] = 0;
	if (strcmp(buf, "in-the-pipe")) {
		snprintf(why, sizeof(why), "the pipe at fd 60 gives '%s'", buf);
		return why;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	static char stack[65536] __attribute__((aligned(16)));
	int opt, fd, st;
	pid_t c;

	while ((opt = getopt(argc, argv, "f:g:")) != -1) {
		if (opt == 'f')
			file = optarg;
		else if (opt == 'g')
			file2 = optarg;
		else
			die("usage: fdshare -f FILE -g FILE2");
	}
	if (!file || !file2)
		die("usage: fdshare -f FILE -g FILE2");
	signal(SIGUSR1, on_usr1);
	say("PID P %d", getpid());
	fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, "first-file", 10) != 10 || dup2(fd, 50) != 50)
		die("%s: %s", file, strerror(errno));
	close(fd);
	fd = open(file2, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, "second-file", 11) != 11)
		die("%s: %s", file2, strerror(errno));
	close(fd);
	/* a process of its own (own memory, own signal handlers), one fd table */
	c = clone((int (*)(void *))child, stack + sizeof(stack), CLONE_FILES | SIGCHLD, NULL);
	if (c < 0)
		die("clone: %s", strerror(errno));
	for (;;) {
		const char *fail;

		wait_check();
		if (waitpid(c, &st, WNOHANG) == c)
			die("the child ended");
		fail = parent_check();
		if (fail)
			say("CHECK 1 FAIL parent: %s", fail);
		else
			say("CHECK 1 OK parent");
	}
}
