/*
 * files-zoo: one process holding one fd of every kind the files code
 * restores, each in a state that a faithful restore must keep.
 *
 * Usage: files-zoo DIR
 *   DIR: a scratch directory (created if missing) for the regular file, the
 *   deleted file, the FIFO and the watched directories.
 *
 * Protocol (shared by the tests/progs programs): every line is one write(2)
 * to stdout; SIGUSR1 asks for a self-check, answered "CHECK <k> OK" or
 * "CHECK <k> FAIL <why>" (first failure); a broken setup prints
 * "ERROR <why>" and exits 1.
 *
 * Lines of this program:
 *   "READY <pid>"   once everything is open and checked a first time
 *   "CHECK <k> OK" / "CHECK <k> FAIL <why>"
 *
 * The checks do not change the state they look at (pipe data is peeked with
 * tee(2), the eventfd count is written back, offsets are put back), so they
 * can run before the dump and again after the restore:
 *   - regular file at offset 123, O_WRONLY|O_APPEND, shared with a dup
 *     (moving one moves the other), another description at offset 500 with
 *     close-on-exec;
 *   - deleted file with 5000 known bytes at offset 77;
 *   - pipe of 256 KiB holding 100 KiB of known bytes, write end O_NONBLOCK;
 *   - FIFO in DIR holding "fifo data";
 *   - eventfd with count 42 (EFD_NONBLOCK, close-on-exec);
 *   - timerfd armed for one hour with a 10 s interval (time left must shrink
 *     but stay above 50 minutes);
 *   - signalfd for SIGUSR2|SIGTERM... (mask read back from fdinfo);
 *   - epoll (level-triggered) on the pipe and the eventfd with known data;
 *   - inotify with watches 1 (DIR) and 3 (DIR/sub), 2 removed;
 *   - /dev/null, /dev/urandom;
 *   - memfd "zoo" with 10000 known bytes, seals SHRINK|GROW, offset 999;
 *   - directory fd on DIR.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define PIPE_BYTES	(100 * 1024)
#define DEL_BYTES	5000
#define MEMFD_BYTES	10000

enum {
	FD_REG = 10, FD_REG_DUP, FD_REG2, FD_DEL, FD_PR, FD_PW, FD_EVT, FD_TMR, FD_SIG,
	FD_EP, FD_INO, FD_NULL, FD_URND, FD_MEMFD, FD_DIR, FD_FIFO,
};

static volatile sig_atomic_t check_requested;
static const char *dir;
static struct stat dir_st;
static char fail[200];

static void on_usr1(int sig)
{
	check_requested = 1;
}

#define SAY_LINE_MAX 512
#define SAY_NO_DIE
#include "say.h"

static void die(const char *what)
{
	say("ERROR %s: %s", what, strerror(errno));
	exit(1);
}

static unsigned char pat(size_t i, unsigned int seed)
{
	return (unsigned char)((i * 131 + seed * 7 + (i >> 8)) & 0xff);
}

static void fill(unsigned char *b, size_t n, unsigned int seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = pat(i, seed);
}

static void at(int fd, int want, const char *what)
{
	if (fd < 0)
		die(what);
	if (fd != want) {
		if (dup2(fd, want) < 0)
			die(what);
		close(fd);
	}
}

static void path(char *buf, size_t sz, const char *name)
{
	snprintf(buf, sz, "%s/%s", dir, name);
}

static void setup(void)
{
	static unsigned char buf[PIPE_BYTES];
	struct itimerspec its = { .it_value = { .tv_sec = 3600 }, .it_interval = { .tv_sec = 10 } };
	struct epoll_event ev;
	sigset_t mask;
	char p[4096], eb[512];
	uint64_t v = 42;
	int fd, pp[2];

	mkdir(dir, 0755);
	path(p, sizeof(p), "sub");
	mkdir(p, 0755);
	path(p, sizeof(p), "sub2");
	mkdir(p, 0755);
	if (stat(dir, &dir_st))
		die("stat DIR");

	path(p, sizeof(p), "reg");
	fd = open(p, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	for (int i = 0; i < 100; i++)
		if (write(fd, "0123456789", 10) != 10)
			die("write reg");
	close(fd);
	at(open(p, O_WRONLY | O_APPEND), FD_REG, "open reg");
	lseek(FD_REG, 123, SEEK_SET);
	at(dup(FD_REG), FD_REG_DUP, "dup reg");
	at(open(p, O_RDONLY), FD_REG2, "open reg 2");
	lseek(FD_REG2, 500, SEEK_SET);
	fcntl(FD_REG2, F_SETFD, FD_CLOEXEC);

	path(p, sizeof(p), "deleted");
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0640);
	fill(buf, DEL_BYTES, 1);
	if (fd < 0 || write(fd, buf, DEL_BYTES) != DEL_BYTES || unlink(p))
		die("deleted file");
	lseek(fd, 77, SEEK_SET);
	at(fd, FD_DEL, "deleted file");

	if (pipe(pp) || fcntl(pp[1], F_SETPIPE_SZ, 256 * 1024) < 0)
		die("pipe");
	fill(buf, PIPE_BYTES, 2);
	if (write(pp[1], buf, PIPE_BYTES) != PIPE_BYTES)
		die("fill pipe");
	fcntl(pp[1], F_SETFL, O_NONBLOCK);
	at(pp[0], FD_PR, "pipe");
	at(pp[1], FD_PW, "pipe");

	at(eventfd(0, EFD_NONBLOCK), FD_EVT, "eventfd");
	fcntl(FD_EVT, F_SETFD, FD_CLOEXEC);
	if (write(FD_EVT, &v, 8) != 8)
		die("eventfd write");

	at(timerfd_create(CLOCK_MONOTONIC, 0), FD_TMR, "timerfd");
	if (timerfd_settime(FD_TMR, 0, &its, NULL))
		die("timerfd_settime");

	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR2);
	sigaddset(&mask, SIGWINCH);
	at(signalfd(-1, &mask, 0), FD_SIG, "signalfd");

	at(epoll_create1(0), FD_EP, "epoll");
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = 0x1111 };
	if (epoll_ctl(FD_EP, EPOLL_CTL_ADD, FD_PR, &ev))
		die("epoll_ctl pipe");
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = 0x2222 };
	if (epoll_ctl(FD_EP, EPOLL_CTL_ADD, FD_EVT, &ev))
		die("epoll_ctl eventfd");

	at(inotify_init1(IN_NONBLOCK), FD_INO, "inotify");
	if (inotify_add_watch(FD_INO, dir, IN_CREATE | IN_DELETE) != 1)
		die("inotify wd 1");
	path(p, sizeof(p), "sub2");
	if (inotify_add_watch(FD_INO, p, IN_ALL_EVENTS) != 2 || inotify_rm_watch(FD_INO, 2))
		die("inotify wd 2");
	path(p, sizeof(p), "sub");
	if (inotify_add_watch(FD_INO, p, IN_MODIFY) != 3)
		die("inotify wd 3");
	while (read(FD_INO, eb, sizeof(eb)) > 0)
		;

	at(open("/dev/null", O_RDWR), FD_NULL, "/dev/null");
	at(open("/dev/urandom", O_RDONLY), FD_URND, "/dev/urandom");

	fd = memfd_create("zoo", MFD_ALLOW_SEALING);
	fill(buf, MEMFD_BYTES, 3);
	if (fd < 0 || write(fd, buf, MEMFD_BYTES) != MEMFD_BYTES ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW))
		die("memfd");
	lseek(fd, 999, SEEK_SET);
	at(fd, FD_MEMFD, "memfd");

	at(open(dir, O_RDONLY | O_DIRECTORY), FD_DIR, "directory");

	path(p, sizeof(p), "fifo");
	unlink(p);
	if (mkfifo(p, 0600))
		die("mkfifo");
	at(open(p, O_RDWR | O_NONBLOCK), FD_FIFO, "fifo");
	if (write(FD_FIFO, "fifo data", 9) != 9)
		die("fifo write");
}

#define FAIL(...) do { snprintf(fail, sizeof(fail), __VA_ARGS__); return -1; } while (0)

/* Copy the data of the pipe read through @fd without consuming it. */
static ssize_t peek(int fd, unsigned char *buf, size_t len)
{
	int tmp[2], n = 0;
	ssize_t r, got = 0;

	if (ioctl(fd, FIONREAD, &n) < 0 || pipe(tmp))
		return -1;
	fcntl(tmp[1], F_SETPIPE_SZ, fcntl(fd, F_GETPIPE_SZ));
	if (n > 0 && tee(fd, tmp[1], n, SPLICE_F_NONBLOCK) != n)
		n = -1;
	close(tmp[1]);
	while (n > 0 && (r = read(tmp[0], buf + got, len - got)) > 0)
		got += r;
	close(tmp[0]);
	return n < 0 ? -1 : got;
}

static int fdinfo_has(int fd, const char *needle)
{
	char p[64], b[4096];
	int f, n;

	snprintf(p, sizeof(p), "/proc/self/fdinfo/%d", fd);
	f = open(p, O_RDONLY);
	n = f < 0 ? -1 : read(f, b, sizeof(b) - 1);
	if (f >= 0)
		close(f);
	if (n < 0)
		return 0;
	b[n] = 0;
	return strstr(b, needle) != NULL;
}

static int check(void)
{
	static unsigned char buf[PIPE_BYTES + 16], want[PIPE_BYTES];
	struct epoll_event evs[4];
	struct itimerspec its;
	struct stat st;
	char lnk[256];
	uint64_t v;
	ssize_t n;
	int fl;

	if (lseek(FD_REG, 0, SEEK_CUR) != 123)
		FAIL("reg offset %ld", (long)lseek(FD_REG, 0, SEEK_CUR));
	fl = fcntl(FD_REG, F_GETFL);
	if (!(fl & O_APPEND) || (fl & O_ACCMODE) != O_WRONLY)
		FAIL("reg flags 0%o", fl);
	lseek(FD_REG, 7, SEEK_SET);
	n = lseek(FD_REG_DUP, 0, SEEK_CUR);
	lseek(FD_REG, 123, SEEK_SET);
	if (n != 7)
		FAIL("reg dup does not share the offset");
	if (lseek(FD_REG2, 0, SEEK_CUR) != 500 || fcntl(FD_REG2, F_GETFD) != FD_CLOEXEC)
		FAIL("reg2 offset or cloexec");
	if (fcntl(FD_REG, F_GETFD) != 0)
		FAIL("reg has close-on-exec");

	if (fstat(FD_DEL, &st) || st.st_nlink || st.st_size != DEL_BYTES)
		FAIL("deleted file: nlink %lu size %ld", (unsigned long)st.st_nlink, (long)st.st_size);
	fill(want, DEL_BYTES, 1);
	if (lseek(FD_DEL, 0, SEEK_CUR) != 77 || pread(FD_DEL, buf, DEL_BYTES, 0) != DEL_BYTES ||
	    memcmp(buf, want, DEL_BYTES))
		FAIL("deleted file offset or content");

	n = epoll_wait(FD_EP, evs, 4, 0);
	if (n != 2 || evs[0].data.u64 + evs[1].data.u64 != 0x3333)
		FAIL("epoll_wait gave %zd events", n);

	fill(want, PIPE_BYTES, 2);
	n = peek(FD_PR, buf, sizeof(buf));
	if (n != PIPE_BYTES || memcmp(buf, want, PIPE_BYTES))
		FAIL("pipe holds %zd bytes", n);
	if (fcntl(FD_PR, F_GETPIPE_SZ) != 256 * 1024 || !(fcntl(FD_PW, F_GETFL) & O_NONBLOCK))
		FAIL("pipe size or write end flags");

	if (read(FD_EVT, &v, 8) != 8 || v != 42)
		FAIL("eventfd count");
	if (write(FD_EVT, &v, 8) != 8)
		FAIL("eventfd write back");
	if (fcntl(FD_EVT, F_GETFD) != FD_CLOEXEC)
		FAIL("eventfd close-on-exec");

	if (timerfd_gettime(FD_TMR, &its) || its.it_value.tv_sec < 3000 ||
	    its.it_value.tv_sec >= 3600 || its.it_interval.tv_sec != 10)
		FAIL("timerfd: %ld s left, interval %ld", (long)its.it_value.tv_sec,
		     (long)its.it_interval.tv_sec);

	if (!fdinfo_has(FD_SIG, "sigmask:\t0000000008000800"))
		FAIL("signalfd mask");
	if (!fdinfo_has(FD_INO, "inotify wd:1 ") || !fdinfo_has(FD_INO, "inotify wd:3 ") ||
	    fdinfo_has(FD_INO, "inotify wd:2 "))
		FAIL("inotify watches");

	if (fstat(FD_NULL, &st) || st.st_rdev != makedev(1, 3))
		FAIL("/dev/null");
	if (fstat(FD_URND, &st) || st.st_rdev != makedev(1, 9) || read(FD_URND, buf, 8) != 8)
		FAIL("/dev/urandom");

	snprintf((char *)buf, 64, "/proc/self/fd/%d", FD_MEMFD);
	n = readlink((char *)buf, lnk, sizeof(lnk) - 1);
	lnk[n > 0 ? n : 0] = 0;
	fill(want, MEMFD_BYTES, 3);
	if (strcmp(lnk, "/memfd:zoo (deleted)") ||
	    fcntl(FD_MEMFD, F_GET_SEALS) != (F_SEAL_SHRINK | F_SEAL_GROW) ||
	    lseek(FD_MEMFD, 0, SEEK_CUR) != 999 ||
	    pread(FD_MEMFD, buf, MEMFD_BYTES + 1, 0) != MEMFD_BYTES || memcmp(buf, want, MEMFD_BYTES))
		FAIL("memfd (%.100s)", lnk);

	if (fstat(FD_DIR, &st) || st.st_ino != dir_st.st_ino || st.st_dev != dir_st.st_dev)
		FAIL("directory");
	n = peek(FD_FIFO, buf, sizeof(buf));
	if (n != 9 || memcmp(buf, "fifo data", 9))
		FAIL("fifo holds %zd bytes", n);
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	int checks = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: files-zoo DIR\n");
		return 2;
	}
	dir = argv[1];
	sigaction(SIGUSR1, &sa, NULL);
	setup();
	if (check()) {
		say("ERROR first check: %s", fail);
		return 1;
	}
	say("READY %d", getpid());
	for (;;) {
		pause();
		if (check_requested) {
			check_requested = 0;
			if (check())
				say("CHECK %d FAIL %s", ++checks, fail);
			else
				say("CHECK %d OK", ++checks);
		}
	}
}
