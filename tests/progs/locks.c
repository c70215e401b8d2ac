/*
 * locks: a counter that holds file locks of every kind, for
 * checkpoint/restore tests.
 *
 * Usage: locks DIR
 *        locks -m DIR   only: flock(LOCK_EX) on DIR/mapped.dat, mapped, its
 *                       fd closed (the mapping keeps the description and
 *                       its lock: no fd shows it; a checkpoint must refuse)
 * In DIR it creates and locks:
 *   flock.dat   flock(LOCK_EX)
 *   shared.dat  flock(LOCK_SH), through a description the child shares
 *   posix.dat   POSIX (F_SETLK) write lock on bytes 0-99 and read lock from
 *               byte 200 to EOF; the file is also mapped MAP_SHARED and
 *               open on a second fd (dup): closing any fd of a file drops
 *               the POSIX locks of the process on it
 *   ofd.dat     OFD (F_OFD_SETLK) write lock on bytes 10-14
 *   child.dat   a child process holds a POSIX write lock on all of it
 *
 * Protocol (shared by the tests/progs programs): every line is one write(2)
 * to stdout; SIGUSR1 asks for "CHECK <k> OK ..." / "CHECK <k> FAIL <why>";
 * a broken invariant prints "ERROR <why>" and exits 1.
 *
 * Lines: "PID PARENT <pid>", "PID CHILD <pid>", "READY",
 *   "C <n> <pid> <realtime_ms>" every 100 ms (n = 0, 1, 2, ...),
 *   "CHECK <k> OK <locks>": the "lock:" lines of its fdinfo for each file,
 *   as "name=CLASS:TYPE:START:END,..." (FAIL when a POSIX lock is shown
 *   with another pid than ours).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define SAY_LINE_MAX 2048
#include "say.h"

static volatile sig_atomic_t check_requested;
static void on_usr1(int sig) { check_requested = 1; }

static const char *names[] = { "flock", "shared", "posix", "ofd" };
static int fds[4];

static int open_in(const char *dir, const char *name)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s.dat", dir, name);
	fd = open(path, O_RDWR | O_CREAT, 0600);
	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	if (ftruncate(fd, 4096))
		die("ftruncate %s: %s", path, strerror(errno));
	return fd;
}

static void setlk(int fd, int cmd, short type, off_t start, off_t len, const char *what)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	if (fcntl(fd, cmd, &fl))
		die("%s: %s", what, strerror(errno));
}

/* The lock lines of fd @fd, appended to @out as "CLASS:TYPE:START:END,...". */
static int describe(int fd, char *out, size_t len)
{
	char path[64], buf[4096], *p;
	ssize_t n;
	int f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = open(path, O_RDONLY);
	if (f < 0)
		return -1;
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n < 0)
		return -1;
	buf[n] = 0;
	for (p = buf; (p = strstr(p, "lock:\t")); p++) {
		char cls[16], type[16], end[32];
		long long start;
		int pid;

		if (sscanf(p, "lock:\t%*d: %15s %*s %15s %d %*s %lld %31s", cls, type, &pid, &start,
			   end) != 5)
			return -1;
		if (!strcmp(cls, "POSIX") && pid != getpid())
			return -2;
		snprintf(out + strlen(out), len - strlen(out), "%s:%s:%lld:%s,", cls, type, start, end);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	unsigned checks = 0;
	uint64_t n = 0;
	pid_t child;
	void *map;
	int cfd, dupfd;

	if (argc == 3 && !strcmp(argv[1], "-m")) {
		int fd = open_in(argv[2], "mapped");

		if (flock(fd, LOCK_EX | LOCK_NB))
			die("flock: %s", strerror(errno));
		if (mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED)
			die("mmap: %s", strerror(errno));
		close(fd);
		say("PID PARENT %d", getpid());
		say("READY");
		for (;;)
			pause();
	}
	if (argc != 2) {
		fprintf(stderr, "usage: locks [-m] DIR\n");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	say("PID PARENT %d", getpid());

	for (int i = 0; i < 4; i++)
		fds[i] = open_in(argv[1], names[i]);
	if (flock(fds[0], LOCK_EX | LOCK_NB))
		die("flock: %s", strerror(errno));
	if (flock(fds[1], LOCK_SH | LOCK_NB))
		die("flock shared: %s", strerror(errno));
	setlk(fds[2], F_SETLK, F_WRLCK, 0, 100, "posix write lock");
	setlk(fds[2], F_SETLK, F_RDLCK, 200, 0, "posix read lock");
	map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fds[2], 0);
	if (map == MAP_FAILED)
		die("mmap posix.dat: %s", strerror(errno));
	dupfd = dup(fds[2]);
	setlk(fds[3], F_OFD_SETLK, F_WRLCK, 10, 5, "OFD lock");

	cfd = open_in(argv[1], "child");
	child = fork();
	if (child < 0)
		die("fork: %s", strerror(errno));
	if (child == 0) {
		setlk(cfd, F_SETLK, F_WRLCK, 0, 0, "child posix lock");
		say("PID CHILD %d", getpid());
		for (;;)
			pause();
	}
	close(cfd);
	while (fcntl(fds[0], F_GETFD) < 0 || dupfd < 0)	/* keep dupfd open */
		die("dup: %s", strerror(errno));
	sleep_ms(100);
	say("READY");

	for (;;) {
		say("C %llu %d %llu", (unsigned long long)n++, getpid(), (unsigned long long)now_ms());
		if (check_requested) {
			char out[1536] = "";
			int bad = 0;

			check_requested = 0;
			for (int i = 0; i < 4 && !bad; i++) {
				snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s=", names[i]);
				bad = describe(fds[i], out, sizeof(out));
				snprintf(out + strlen(out), sizeof(out) - strlen(out), " ");
			}
			if (bad)
				say("CHECK %u FAIL %s", ++checks,
				    bad == -2 ? "a POSIX lock shows another pid" : "cannot read fdinfo");
			else
				say("CHECK %u OK %s", ++checks, out);
		}
		sleep_ms(100);
	}
}
