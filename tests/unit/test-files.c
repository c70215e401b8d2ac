// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Files: real dump and restore scenarios without the rest of the engine.
 *
 * A child opens things at known fd numbers and stops itself; we dump its fd
 * table, push the images through protobuf, kill it, restore the entries in
 * this process (the "master") and, in a fork, install the table and check
 * from there that everything is as dumped.  The fork reports through a pipe
 * it keeps across files_install().
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "mutate-files.h"
#include "kup-pty.pb-c.h"

#define PIPE_BYTES	(100 * 1024)
#define DEL_BYTES	5000
#define MEMFD_BYTES	10000

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

static char tmpdir[64];

static unsigned char pat(size_t i, unsigned int seed)
{
	return (unsigned char)((i * 131 + seed * 7 + (i >> 8)) & 0xff);
}

static void fill(unsigned char *b, size_t n, unsigned int seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = pat(i, seed);
}

static void path_in(char *buf, size_t sz, const char *name)
{
	snprintf(buf, sz, "%s/%s", tmpdir, name);
}

/* --- capture of log lines ------------------------------------------------ */

static int saved_stderr = -1, cap_fd = -1;

static void capture_start(void)
{
	fflush(stderr);
	saved_stderr = dup(2);
	cap_fd = memfd_create("log", 0);
	dup2(cap_fd, 2);
}

static char *capture_end(void)
{
	static char buf[8192];
	ssize_t n;

	dup2(saved_stderr, 2);
	close(saved_stderr);
	n = pread(cap_fd, buf, sizeof(buf) - 1, 0);
	close(cap_fd);
	buf[n > 0 ? n : 0] = 0;
	fprintf(stderr, "%s", buf);	/* keep it visible */
	return buf;
}

/* --- a stopped child ------------------------------------------------------ */

typedef int (*setup_fn)(void *arg);

/* Fork a child that closes everything, points 0-2 at /dev/null, runs @fn
 * and stops itself.  Returns its pid once it is stopped. */
static pid_t start_child(setup_fn fn, void *arg)
{
	int st;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int nul;

		syscall(SYS_close_range, 3, ~0u, 0);
		nul = open("/dev/null", O_RDWR);
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(nul, 2);
		if (nul > 2)
			close(nul);
		if (fn(arg))
			_exit(3);
		raise(SIGSTOP);
		for (;;)
			pause();
	}
	assert_int_equal(waitpid(pid, &st, WUNTRACED), pid);
	if (!WIFSTOPPED(st))
		fail_msg("child setup failed: status %x", st);
	return pid;
}

static void kill_child(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* Dump @pid's table; on success pack/unpack both images. */
static int dump_child(pid_t pid, const struct files_opts *o, FilesImage **img, FdtableEntry **t)
{
	struct files_dump *d;
	FilesImage fi = FILES_IMAGE__INIT;
	FdtableEntry ft = FDTABLE_ENTRY__INIT;
	uint8_t *buf;
	size_t len;
	int ret;

	assert_int_equal(files_dump_begin(o, &d), 0);
	ret = files_dump_fdtable(d, pid, &ft);
	if (!ret)
		ret = files_dump_end(d, &fi);
	files_dump_free(d);
	if (ret) {
		files_free_fdtable(&ft);
		files_free_image(&fi);
		return ret;
	}
	len = files_image__get_packed_size(&fi);
	buf = malloc(len + 1);
	assert_non_null(buf);
	assert_int_equal(files_image__pack(&fi, buf), len);
	*img = files_image__unpack(NULL, len, buf);
	assert_non_null(*img);
	free(buf);
	len = fdtable_entry__get_packed_size(&ft);
	buf = malloc(len + 1);
	assert_non_null(buf);
	assert_int_equal(fdtable_entry__pack(&ft, buf), len);
	*t = fdtable_entry__unpack(NULL, len, buf);
	assert_non_null(*t);
	free(buf);
	files_free_fdtable(&ft);
	files_free_image(&fi);
	return 0;
}

/* --- the big scenario ----------------------------------------------------- */

enum {
	FD_REG = 10, FD_REG_DUP, FD_REG2, FD_DEL, FD_PR, FD_PW, FD_EVT, FD_TMR, FD_SIG,
	FD_EP, FD_INO, FD_NULL, FD_MEMFD, FD_DIR, FD_FIFO, FD_TICKS, FD_SEM,
	FD_LAST = FD_SEM
};

static int at(int fd, int want)
{
	if (fd < 0)
		return -1;
	if (fd == want)
		return 0;
	if (dup2(fd, want) < 0)
		return -1;
	close(fd);
	return 0;
}

static int setup_all(void *arg)
{
	char p[256];
	static unsigned char buf[PIPE_BYTES];
	int fd, pp[2];
	uint64_t v;
	sigset_t mask;
	struct itimerspec its = { .it_value = { .tv_sec = 30 } };
	struct epoll_event ev;

	/* regular file, O_APPEND at an offset, shared with a dup; another
	 * description of it at another offset */
	path_in(p, sizeof(p), "reg");
	if (at(open(p, O_WRONLY | O_APPEND), FD_REG) || lseek(FD_REG, 123, SEEK_SET) != 123)
		return -1;
	if (dup2(FD_REG, FD_REG_DUP) < 0)
		return -1;
	if (at(open(p, O_RDONLY), FD_REG2) || lseek(FD_REG2, 500, SEEK_SET) != 500)
		return -1;
	fcntl(FD_REG2, F_SETFD, FD_CLOEXEC);
	/* deleted file with content */
	path_in(p, sizeof(p), "del");
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0640);
	fill(buf, DEL_BYTES, 1);
	if (fd < 0 || write(fd, buf, DEL_BYTES) != DEL_BYTES || unlink(p) || lseek(fd, 77, SEEK_SET) != 77)
		return -1;
	if (at(fd, FD_DEL))
		return -1;
	/* a pipe with 100 KiB buffered */
	if (pipe(pp) || fcntl(pp[1], F_SETPIPE_SZ, 256 * 1024) < 0)
		return -1;
	fill(buf, PIPE_BYTES, 2);
	if (write(pp[1], buf, PIPE_BYTES) != PIPE_BYTES)
		return -1;
	fcntl(pp[1], F_SETFL, O_NONBLOCK);
	if (at(pp[0], FD_PR) || at(pp[1], FD_PW))
		return -1;
	/* eventfd 42 */
	if (at(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), FD_EVT))
		return -1;
	fcntl(FD_EVT, F_SETFD, FD_CLOEXEC);
	v = 42;
	if (write(FD_EVT, &v, 8) != 8)
		return -1;
	/* timerfd armed for 30 s */
	if (at(timerfd_create(CLOCK_MONOTONIC, 0), FD_TMR) || timerfd_settime(FD_TMR, 0, &its, NULL))
		return -1;
	/* signalfd */
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGUSR2);
	if (at(signalfd(-1, &mask, 0), FD_SIG))
		return -1;
	/* epoll on the pipe and the eventfd */
	if (at(epoll_create1(0), FD_EP))
		return -1;
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = 0x1111 };
	if (epoll_ctl(FD_EP, EPOLL_CTL_ADD, FD_PR, &ev))
		return -1;
	ev = (struct epoll_event){ .events = EPOLLIN | EPOLLET, .data.u64 = 0x2222 };
	if (epoll_ctl(FD_EP, EPOLL_CTL_ADD, FD_EVT, &ev))
		return -1;
	/* inotify with wds 1 and 3 (2 removed) */
	if (at(inotify_init1(0), FD_INO))
		return -1;
	if (inotify_add_watch(FD_INO, tmpdir, IN_CREATE | IN_DELETE) != 1)
		return -1;
	path_in(p, sizeof(p), "sub2");
	if (inotify_add_watch(FD_INO, p, IN_ALL_EVENTS) != 2 || inotify_rm_watch(FD_INO, 2))
		return -1;
	path_in(p, sizeof(p), "sub");
	if (inotify_add_watch(FD_INO, p, IN_MODIFY | IN_ONLYDIR) != 3)
		return -1;
	/* drain the IN_IGNORED of wd 2 */
	{
		char eb[512];
		fcntl(FD_INO, F_SETFL, O_NONBLOCK);
		while (read(FD_INO, eb, sizeof(eb)) > 0)
			;
		fcntl(FD_INO, F_SETFL, 0);
	}
	if (at(open("/dev/null", O_RDWR), FD_NULL))
		return -1;
	/* memfd with content and seals */
	fd = memfd_create("kup-test", MFD_ALLOW_SEALING);
	fill(buf, MEMFD_BYTES, 3);
	if (fd < 0 || write(fd, buf, MEMFD_BYTES) != MEMFD_BYTES ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) || lseek(fd, 999, SEEK_SET) != 999)
		return -1;
	if (at(fd, FD_MEMFD))
		return -1;
	if (at(open(tmpdir, O_RDONLY | O_DIRECTORY), FD_DIR))
		return -1;
	path_in(p, sizeof(p), "fifo");
	if (at(open(p, O_RDWR | O_NONBLOCK), FD_FIFO) || write(FD_FIFO, "fifo data", 9) != 9)
		return -1;
	/* an armed timer with 3 expirations not read yet */
	its = (struct itimerspec){ .it_value = { .tv_sec = 100 } };
	if (at(timerfd_create(CLOCK_MONOTONIC, 0), FD_TICKS) || timerfd_settime(FD_TICKS, 0, &its, NULL))
		return -1;
	v = 3;
	if (ioctl(FD_TICKS, TFD_IOC_SET_TICKS, &v))
		return -1;
	/* a semaphore eventfd at 3 */
	if (at(eventfd(3, EFD_SEMAPHORE), FD_SEM))
		return -1;
	return 0;
}

#define CHECK(cond, ...) do { if (!(cond)) { \
	dprintf(rep, "FAIL line %d: ", __LINE__); dprintf(rep, __VA_ARGS__); \
	dprintf(rep, "\n"); bad++; } } while (0)

static int check_all(int rep, void *arg)
{
	static unsigned char buf[PIPE_BYTES + 16], want[PIPE_BYTES];
	struct stat *dir_st = arg;
	struct epoll_event evs[8];
	struct itimerspec its;
	struct stat st;
	char lnk[256], p[256];
	int bad = 0, n, fl;
	uint64_t v;

	/* exactly the dumped table (and the report pipe) */
	{
		DIR *d = opendir("/proc/self/fd");
		struct dirent *de;
		int cnt = 0;
		while ((de = readdir(d)))
			if (de->d_name[0] != '.')
				cnt++;
		closedir(d);
		/* 0-2, 10-24, rep, and the DIR's own fd */
		CHECK(cnt == 3 + (FD_LAST - FD_REG + 1) + 1 + 1, "%d fds open", cnt);
	}
	CHECK(rep > FD_LAST, "report fd %d not moved above the table", rep);
	/* regular file: offset, flags, sharing, cloexec */
	CHECK(lseek(FD_REG, 0, SEEK_CUR) == 123, "reg offset %ld", (long)lseek(FD_REG, 0, SEEK_CUR));
	fl = fcntl(FD_REG, F_GETFL);
	CHECK((fl & O_APPEND) && (fl & O_ACCMODE) == O_WRONLY, "reg flags %o", fl);
	CHECK(lseek(FD_REG2, 0, SEEK_CUR) == 500, "reg2 offset");
	lseek(FD_REG, 7, SEEK_SET);
	CHECK(lseek(FD_REG_DUP, 0, SEEK_CUR) == 7, "dup does not share the offset");
	CHECK(lseek(FD_REG2, 0, SEEK_CUR) == 500, "reg2 shares the offset but should not");
	CHECK(fcntl(FD_REG2, F_GETFD) == FD_CLOEXEC, "reg2 cloexec lost");
	CHECK(fcntl(FD_EVT, F_GETFD) == FD_CLOEXEC, "eventfd cloexec lost");
	CHECK(fcntl(FD_REG, F_GETFD) == 0, "reg got cloexec");
	CHECK(fcntl(FD_REG_DUP, F_GETFD) == 0, "reg dup got cloexec");
	/* deleted file */
	CHECK(!fstat(FD_DEL, &st) && st.st_nlink == 0 && st.st_size == DEL_BYTES &&
	      (st.st_mode & 07777) == 0640, "deleted file: nlink %lu size %ld mode %o",
	      (unsigned long)st.st_nlink, (long)st.st_size, st.st_mode);
	CHECK(lseek(FD_DEL, 0, SEEK_CUR) == 77, "deleted file offset");
	fill(want, DEL_BYTES, 1);
	CHECK(pread(FD_DEL, buf, DEL_BYTES, 0) == DEL_BYTES && !memcmp(buf, want, DEL_BYTES),
	      "deleted file content");
	CHECK((fcntl(FD_DEL, F_GETFL) & O_ACCMODE) == O_RDWR, "deleted file access mode");
	/* epoll before draining anything */
	n = epoll_wait(FD_EP, evs, 8, 0);
	CHECK(n == 2, "epoll_wait gave %d", n);
	{
		int seen = 0;
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 == 0x1111 && (evs[i].events & EPOLLIN))
				seen |= 1;
			if (evs[i].data.u64 == 0x2222 && (evs[i].events & EPOLLIN))
				seen |= 2;
		}
		CHECK(seen == 3, "epoll data/events wrong (%d)", seen);
	}
	/* pipe: exactly the 100 KiB */
	CHECK(fcntl(FD_PR, F_GETPIPE_SZ) == 256 * 1024, "pipe size %d", fcntl(FD_PR, F_GETPIPE_SZ));
	CHECK(fcntl(FD_PW, F_GETFL) & O_NONBLOCK, "pipe write end lost O_NONBLOCK");
	CHECK(!(fcntl(FD_PR, F_GETFL) & O_NONBLOCK), "pipe read end got O_NONBLOCK");
	fcntl(FD_PR, F_SETFL, O_NONBLOCK);
	{
		size_t got = 0;
		ssize_t r;
		while ((r = read(FD_PR, buf + got, sizeof(buf) - got)) > 0)
			got += r;
		fill(want, PIPE_BYTES, 2);
		CHECK(got == PIPE_BYTES && !memcmp(buf, want, PIPE_BYTES), "pipe gave %zu bytes", got);
		CHECK(r < 0 && errno == EAGAIN, "pipe: end not EAGAIN");
	}
	CHECK(write(FD_PW, "x", 1) == 1 && read(FD_PR, buf, 2) == 1, "pipe ends not connected");
	/* eventfd */
	CHECK(read(FD_EVT, &v, 8) == 8 && v == 42, "eventfd count %llu", (unsigned long long)v);
	CHECK(fcntl(FD_EVT, F_GETFL) & O_NONBLOCK, "eventfd lost O_NONBLOCK");
	/* timerfd */
	CHECK(!timerfd_gettime(FD_TMR, &its) && its.it_value.tv_sec >= 25 && its.it_value.tv_sec < 30,
	      "timerfd remaining %ld s", (long)its.it_value.tv_sec);
	/* signalfd mask */
	{
		int f = open("/proc/self/fdinfo/" "18", O_RDONLY);
		char b[512] = "";
		CHECK(f >= 0 && read(f, b, sizeof(b) - 1) > 0, "signalfd fdinfo");
		CHECK(strstr(b, "sigmask:\t0000000000000a00") != NULL, "signalfd mask: %s", b);
		close(f);
	}
	/* inotify wds */
	{
		int f = open("/proc/self/fdinfo/" "20", O_RDONLY);
		char b[2048] = "";
		struct inotify_event *ie = (void *)buf;
		CHECK(f >= 0 && read(f, b, sizeof(b) - 1) > 0, "inotify fdinfo");
		close(f);
		CHECK(strstr(b, "inotify wd:1 ") && strstr(b, "inotify wd:3 ") && !strstr(b, "wd:2 "),
		      "inotify wds: %s", b);
		path_in(p, sizeof(p), "newfile");
		f = open(p, O_CREAT | O_WRONLY, 0600);
		close(f);
		fcntl(FD_INO, F_SETFL, O_NONBLOCK);
		CHECK(read(FD_INO, buf, sizeof(buf)) > 0 && ie->wd == 1 && (ie->mask & IN_CREATE) &&
		      !strcmp(ie->name, "newfile"), "inotify event wd %d mask %x", ie->wd, ie->mask);
		unlink(p);
	}
	/* /dev/null */
	CHECK(!fstat(FD_NULL, &st) && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3), "/dev/null");
	/* memfd */
	snprintf(p, sizeof(p), "/proc/self/fd/%d", FD_MEMFD);
	n = readlink(p, lnk, sizeof(lnk) - 1);
	lnk[n > 0 ? n : 0] = 0;
	CHECK(!strcmp(lnk, "/memfd:kup-test (deleted)"), "memfd link %s", lnk);
	CHECK(fcntl(FD_MEMFD, F_GET_SEALS) == (F_SEAL_SHRINK | F_SEAL_GROW), "memfd seals %x",
	      fcntl(FD_MEMFD, F_GET_SEALS));
	CHECK(lseek(FD_MEMFD, 0, SEEK_CUR) == 999, "memfd offset");
	fill(want, MEMFD_BYTES, 3);
	CHECK(pread(FD_MEMFD, buf, MEMFD_BYTES + 1, 0) == MEMFD_BYTES && !memcmp(buf, want, MEMFD_BYTES),
	      "memfd content");
	/* directory */
	CHECK(!fstat(FD_DIR, &st) && st.st_ino == dir_st->st_ino && st.st_dev == dir_st->st_dev,
	      "directory");
	/* FIFO */
	CHECK(read(FD_FIFO, buf, 100) == 9 && !memcmp(buf, "fifo data", 9), "fifo data");
	CHECK(fcntl(FD_FIFO, F_GETFL) & O_NONBLOCK, "fifo flags");
	/* timer ticks and semaphore eventfd */
	CHECK(read(FD_TICKS, &v, 8) == 8 && v == 3, "timerfd ticks %llu", (unsigned long long)v);
	CHECK(read(FD_SEM, &v, 8) == 8 && v == 1, "semaphore eventfd gave %llu", (unsigned long long)v);
	CHECK(read(FD_SEM, &v, 8) == 8 && v == 1 && read(FD_SEM, &v, 8) == 8, "semaphore count");
	return bad;
}

typedef int (*check_fn)(int rep, void *arg);

/* Restore @img/@t and run @check in an installed fork; assert it passed. */
static int keep_at = -1;	/* put the report pipe at this number before install */

static void restore_and_check(FilesImage *img, FdtableEntry *t, const struct files_opts *o,
			      check_fn check, void *arg)
{
	struct files_rst *fr = NULL;
	int rp[2], st;
	char rbuf[8192];
	ssize_t n;
	size_t got = 0;
	pid_t pid;

	assert_int_equal(files_rst_open_all(img, o, &fr), 0);
	assert_int_equal(files_validate_fdtable(img, t), 0);
	assert_int_equal(files_rst_check_fdtables(fr, &t, 1), 0);
	assert_int_equal(pipe(rp), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int keep[1] = { rp[1] }, bad;

		close(rp[0]);
		if (keep_at >= 0 && keep[0] != keep_at && fcntl(keep_at, F_GETFD) < 0) {
			dup2(keep[0], keep_at);
			close(keep[0]);
			keep[0] = keep_at;
		}
		if (files_install(fr, t, keep, 1)) {
			dprintf(keep[0], "files_install failed\n");
			_exit(1);
		}
		if (files_post_install(fr, t)) {
			dprintf(keep[0], "files_post_install failed\n");
			_exit(1);
		}
		bad = check(keep[0], arg);
		_exit(bad ? 1 : 0);
	}
	close(rp[1]);
	while ((n = read(rp[0], rbuf + got, sizeof(rbuf) - 1 - got)) > 0)
		got += n;
	rbuf[got] = 0;
	close(rp[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	files_rst_free(fr);
	if (got)
		fprintf(stderr, "%s", rbuf);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_dump_restore_all(void **state)
{
	struct files_opts o = { 0 };
	FilesImage *img = NULL;
	FdtableEntry *t = NULL;
	struct stat dst;
	char p[256];
	int fd;
	pid_t pid;

	/* files the child opens */
	path_in(p, sizeof(p), "reg");
	fd = open(p, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	for (int i = 0; i < 100; i++)
		assert_int_equal(write(fd, "0123456789", 10), 10);
	close(fd);
	path_in(p, sizeof(p), "sub");
	mkdir(p, 0755);
	path_in(p, sizeof(p), "sub2");
	mkdir(p, 0755);
	path_in(p, sizeof(p), "fifo");
	unlink(p);
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_int_equal(stat(tmpdir, &dst), 0);

	pid = start_child(setup_all, NULL);
	assert_int_equal(dump_child(pid, &o, &img, &t), 0);
	kill_child(pid);

	/* what the dump saw */
	assert_int_equal(t->pid, (uint32_t)pid);
	assert_int_equal(t->n_fds, 3 + FD_LAST - FD_REG + 1);
	assert_int_equal(files_fdtable_id(t, FD_REG), files_fdtable_id(t, FD_REG_DUP));
	assert_int_not_equal(files_fdtable_id(t, FD_REG), files_fdtable_id(t, FD_REG2));
	assert_int_equal(files_fdtable_id(t, 0), files_fdtable_id(t, 2));
	assert_int_equal(files_validate_image(img), 0);

	restore_and_check(img, t, &o, check_all, &dst);
	files_image__free_unpacked(img, NULL);
	fdtable_entry__free_unpacked(t, NULL);
}

/* --- pipe data is only peeked ---------------------------------------------- */

static int setup_pipe_peek(void *arg)
{
	int pp[2];
	char b[1000];

	memset(b, 'p', sizeof(b));
	if (pipe(pp) || at(pp[0], 5) || at(pp[1], 6) || write(6, b, sizeof(b)) != sizeof(b))
		return -1;
	return 0;
}

static void test_pipe_peek_keeps_data(void **state)
{
	struct files_opts o = { 0 };
	FilesImage *img;
	FdtableEntry *t;
	int st;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int n = 0;
		syscall(SYS_close_range, 0, ~0u, 0);
		if (setup_pipe_peek(NULL))
			_exit(3);
		raise(SIGSTOP);
		ioctl(5, FIONREAD, &n);
		_exit(n == 1000 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &st, WUNTRACED), pid);
	assert_true(WIFSTOPPED(st));
	assert_int_equal(dump_child(pid, &o, &img, &t), 0);
	assert_int_equal(img->n_files, 2);
	kill(pid, SIGCONT);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	files_image__free_unpacked(img, NULL);
	fdtable_entry__free_unpacked(t, NULL);
}

/* --- two processes, links --------------------------------------------------- */

struct pair_shared {
	pid_t b;
	unsigned long map_start, map_end;
};

#define MAP_BYTES 8192

/* A: regular file 5 (shared with B), epoll 6 on eventfd 7 (both shared
 * with B), deleted file 8 also mapped shared-writable, pipe read end 9 and
 * a second read description 10; B: the write end 11 (data "hello"). */
static int setup_pair(void *arg)
{
	struct pair_shared *sh = arg;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0x7777 };
	static unsigned char buf[MAP_BYTES];
	char p[256];
	int pp[2], fd, st;
	void *m;
	uint64_t one = 1;
	pid_t b;

	if (chdir(tmpdir))
		return -1;
	path_in(p, sizeof(p), "reg");
	if (at(open(p, O_RDWR), 5) || lseek(5, 3, SEEK_SET) != 3)
		return -1;
	if (at(epoll_create1(0), 6) || at(eventfd(0, 0), 7) || write(7, &one, 8) != 8)
		return -1;
	if (epoll_ctl(6, EPOLL_CTL_ADD, 7, &ev))
		return -1;
	path_in(p, sizeof(p), "mapped");
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	fill(buf, MAP_BYTES, 4);
	if (fd < 0 || write(fd, buf, MAP_BYTES) != MAP_BYTES || unlink(p))
		return -1;
	m = mmap(NULL, MAP_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED || at(fd, 8))
		return -1;
	sh->map_start = (unsigned long)m;
	sh->map_end = (unsigned long)m + MAP_BYTES;
	if (pipe(pp) || at(pp[0], 9) || at(pp[1], 11))
		return -1;
	snprintf(p, sizeof(p), "/proc/self/fd/%d", 9);
	if (at(open(p, O_RDONLY), 10))
		return -1;
	b = fork();
	if (b < 0)
		return -1;
	if (b == 0) {
		close(9);
		close(10);
		close(8);
		if (write(11, "hello", 5) != 5)
			_exit(1);
		raise(SIGSTOP);
		for (;;)
			pause();
	}
	close(11);
	if (waitpid(b, &st, WUNTRACED) != b || !WIFSTOPPED(st))
		return -1;
	sh->b = b;
	return 0;
}

struct pair_ids {
	uint32_t map, map_ro, cwd, exe;
	struct stat exe_st, dir_st;
};
static struct pair_ids pair_ids;

static int check_pair_a(int rep, void *arg)
{
	int *keep = arg, mapfd = keep[0], bad = 0;
	static unsigned char buf[MAP_BYTES], want[MAP_BYTES];
	struct stat st, st2;
	struct epoll_event ev;
	void *m;

	CHECK(lseek(5, 0, SEEK_CUR) == 3, "reg offset");
	lseek(5, 4242, SEEK_SET);	/* B checks that it moved there too */
	CHECK(epoll_wait(6, &ev, 1, 0) == 1 && ev.data.u64 == 0x7777, "epoll in A");
	/* the mapping's entry and fd 8 are the same recreated inode */
	CHECK(!fstat(mapfd, &st) && !fstat(8, &st2) && st.st_ino == st2.st_ino &&
	      st.st_dev == st2.st_dev && st.st_nlink == 0, "mapped file and fd 8 differ");
	CHECK((fcntl(mapfd, F_GETFL) & O_ACCMODE) == O_RDWR, "mapped file not O_RDWR");
	CHECK(!fstat(keep[1], &st2) && st.st_ino == st2.st_ino &&
	      (fcntl(keep[1], F_GETFL) & O_ACCMODE) == O_RDONLY, "read-only use of the mapped file");
	m = mmap(NULL, MAP_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, mapfd, 0);
	CHECK(m != MAP_FAILED, "cannot map the mapped file shared-writable");
	fill(want, MAP_BYTES, 4);
	if (m != MAP_FAILED) {
		CHECK(!memcmp(m, want, MAP_BYTES), "mapped content");
		((char *)m)[0] = 'Z';
		CHECK(pread(8, buf, 1, 0) == 1 && buf[0] == 'Z', "write through the map not seen by fd 8");
	}
	/* two descriptions of one pipe read end */
	fcntl(9, F_SETFL, O_NONBLOCK);
	CHECK(!(fcntl(10, F_GETFL) & O_NONBLOCK), "pipe read ends share flags");
	CHECK(read(10, buf, 10) == 5 && !memcmp(buf, "hello", 5), "pipe data through fd 10");
	CHECK(fcntl(11, F_GETFD) < 0, "fd 11 should be B's only");
	return bad;
}

static int check_pair_b(int rep, void *arg)
{
	int bad = 0;
	struct epoll_event ev;

	CHECK(lseek(5, 0, SEEK_CUR) == 4242, "reg offset not shared with A (%ld)",
	      (long)lseek(5, 0, SEEK_CUR));
	CHECK(epoll_wait(6, &ev, 1, 0) == 1 && ev.data.u64 == 0x7777, "epoll in B");
	CHECK(write(11, "x", 1) == 1, "pipe write end");
	CHECK(fcntl(8, F_GETFD) < 0 && fcntl(9, F_GETFD) < 0, "A's fds in B");
	return bad;
}

static int check_links(int rep, void *arg)
{
	int *keep = arg, bad = 0;
	struct stat st;

	CHECK(!fstat(keep[0], &st) && S_ISDIR(st.st_mode) && st.st_ino == pair_ids.dir_st.st_ino,
	      "cwd entry");
	CHECK(!fstat(keep[1], &st) && st.st_ino == pair_ids.exe_st.st_ino &&
	      (fcntl(keep[1], F_GETFL) & O_ACCMODE) == O_RDONLY, "exe entry");
	return bad;
}

/* Fork, install @t keeping @keep (report pipe first), run @check. */
static void run_task(struct files_rst *fr, FdtableEntry *t, int *keep, int nkeep,
		     int (*check)(int, void *))
{
	int rp[2], st, k[8];
	char rbuf[4096];
	ssize_t n;
	size_t got = 0;
	pid_t pid;

	assert_int_equal(pipe(rp), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(rp[0]);
		k[0] = rp[1];
		if (nkeep)
			memcpy(k + 1, keep, nkeep * sizeof(int));
		if (files_install(fr, t, k, nkeep + 1) || files_post_install(fr, t)) {
			dprintf(k[0], "install failed\n");
			_exit(1);
		}
		_exit(check(k[0], k + 1) ? 1 : 0);
	}
	close(rp[1]);
	while ((n = read(rp[0], rbuf + got, sizeof(rbuf) - 1 - got)) > 0)
		got += n;
	rbuf[got] = 0;
	close(rp[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (got)
		fprintf(stderr, "%s", rbuf);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_two_processes_and_links(void **state)
{
	struct pair_shared *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct files_opts o = { 0 };
	FilesImage fi = FILES_IMAGE__INIT, *img;
	FdtableEntry ta = FDTABLE_ENTRY__INIT, tb = FDTABLE_ENTRY__INIT;
	FdtableEntry *tabs[2] = { &ta, &tb };
	struct files_dump *d;
	struct files_rst *fr;
	uint32_t map_id2, root_id;
	char link[128];
	uint8_t *buf;
	size_t len;
	pid_t a;

	assert_true(sh != MAP_FAILED);
	a = start_child(setup_pair, sh);
	assert_int_equal(stat(tmpdir, &pair_ids.dir_st), 0);
	assert_int_equal(stat("/proc/self/exe", &pair_ids.exe_st), 0);

	assert_int_equal(files_dump_begin(&o, &d), 0);
	assert_int_equal(files_dump_fdtable(d, a, &ta), 0);
	assert_int_equal(files_dump_fdtable(d, sh->b, &tb), 0);
	snprintf(link, sizeof(link), "map_files/%lx-%lx", sh->map_start, sh->map_end);
	assert_int_equal(files_dump_link(d, a, link, true, &pair_ids.map), 0);
	assert_int_equal(files_dump_link(d, a, link, true, &map_id2), 0);
	assert_int_equal(pair_ids.map, map_id2);	/* one entry per use */
	assert_int_equal(files_dump_link(d, a, link, false, &map_id2), 0);
	assert_int_not_equal(pair_ids.map, map_id2);	/* read-only: another */
	pair_ids.map_ro = map_id2;
	assert_int_equal(files_dump_link(d, a, "cwd", false, &pair_ids.cwd), 0);
	assert_int_equal(files_dump_link(d, a, "root", false, &root_id), 0);
	assert_int_not_equal(root_id, pair_ids.cwd);
	assert_int_equal(files_dump_link(d, a, "exe", false, &pair_ids.exe), 0);
	assert_int_equal(files_dump_end(d, &fi), 0);
	files_dump_free(d);
	kill_child(sh->b);
	kill_child(a);

	/* shared between the processes: same ids */
	assert_int_equal(files_fdtable_id(&ta, 5), files_fdtable_id(&tb, 5));
	assert_int_equal(files_fdtable_id(&ta, 6), files_fdtable_id(&tb, 6));
	assert_int_equal(files_fdtable_id(&ta, 7), files_fdtable_id(&tb, 7));
	assert_int_not_equal(files_fdtable_id(&ta, 9), files_fdtable_id(&ta, 10));
	/* the deleted file's content is in the image once */
	{
		int with = 0;
		for (size_t i = 0; i < fi.n_files; i++)
			with += fi.files[i]->has_content;
		assert_int_equal(with, 1);
	}
	len = files_image__get_packed_size(&fi);
	buf = malloc(len);
	files_image__pack(&fi, buf);
	img = files_image__unpack(NULL, len, buf);
	assert_non_null(img);
	free(buf);

	assert_int_equal(files_rst_open_all(img, &o, &fr), 0);
	assert_int_equal(files_rst_check_fdtables(fr, tabs, 2), 0);
	{
		int keep[2] = { files_rst_fd(fr, pair_ids.map), files_rst_fd(fr, pair_ids.map_ro) };
		run_task(fr, &ta, keep, 2, check_pair_a);
	}
	run_task(fr, &tb, NULL, 0, check_pair_b);
	{
		int keep[2] = { files_rst_fd(fr, pair_ids.cwd), files_rst_fd(fr, pair_ids.exe) };
		FdtableEntry empty = FDTABLE_ENTRY__INIT;
		run_task(fr, &empty, keep, 2, check_links);
	}
	files_rst_free(fr);
	files_image__free_unpacked(img, NULL);
	files_free_image(&fi);
	files_free_fdtable(&ta);
	files_free_fdtable(&tb);
	munmap(sh, 4096);
}

/* --- many anon-inode files: dedup stays fast and right ----------------------- */

#define MANY 2000

static int setup_many(void *arg)
{
	for (int i = 0; i < MANY; i++) {
		int fd = eventfd(i, 0);
		if (at(fd, 10 + i) || dup2(10 + i, 10 + MANY + i) < 0)
			return -1;
	}
	return 0;
}

static void test_many_anon_files(void **state)
{
	struct files_opts o = { 0 };
	FilesImage *img;
	FdtableEntry *t;
	struct timespec t0, t1;
	struct rlimit rl;
	pid_t pid;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_max < 10 + 2 * MANY + 64)
		skip();
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	pid = start_child(setup_many, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(dump_child(pid, &o, &img, &t), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	kill_child(pid);
	fprintf(stderr, "dump of %d fds: %.0f ms\n", 2 * MANY + 3,
		(t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
	assert_int_equal(img->n_files, MANY + 1);	/* + /dev/null */
	for (int i = 0; i < MANY; i++) {
		uint32_t id = files_fdtable_id(t, 10 + i);
		const FileEntry *fe = NULL;

		assert_int_equal(id, files_fdtable_id(t, 10 + MANY + i));
		for (size_t k = 0; k < img->n_files; k++)
			if (img->files[k]->id == id)
				fe = img->files[k];
		assert_non_null(fe);
		assert_int_equal(fe->counter, (uint64_t)i);
	}
	files_image__free_unpacked(img, NULL);
	fdtable_entry__free_unpacked(t, NULL);
}

/* --- install: keep fds and collisions -------------------------------------- */

static int check_keep(int rep, void *arg)
{
	int bad = 0;
	struct stat st;

	CHECK(rep > 7, "keep fd %d not above 7", rep);
	CHECK(!fstat(3, &st) && st.st_rdev == makedev(1, 3), "fd 3 is not /dev/null");
	CHECK(!fstat(7, &st) && st.st_rdev == makedev(1, 5), "fd 7 is not /dev/zero");
	CHECK(fcntl(7, F_GETFD) == FD_CLOEXEC, "fd 7 cloexec");
	CHECK(fcntl(4, F_GETFD) < 0 && fcntl(5, F_GETFD) < 0, "fds 4/5 open");
	return bad;
}

static FileEntry *mk_chr(uint32_t id, const char *path, unsigned int minor)
{
	FileEntry *fe = calloc(1, sizeof(*fe));

	file_entry__init(fe);
	fe->id = id;
	fe->kind = FILE_KIND__FILE_CHR;
	fe->flags = O_RDWR;
	fe->path = strdup(path);
	fe->has_rdev = true;
	fe->rdev = makedev(1, minor);
	return fe;
}

static FdEntry *mk_fd(int fd, uint32_t id, bool cloexec)
{
	FdEntry *e = calloc(1, sizeof(*e));

	fd_entry__init(e);
	e->fd = fd;
	e->file_id = id;
	e->cloexec = cloexec;
	return e;
}

static void test_install_keep(void **state)
{
	FilesImage img = FILES_IMAGE__INIT;
	FdtableEntry t = FDTABLE_ENTRY__INIT;
	FileEntry *fes[2] = { mk_chr(1, "/dev/null", 3), mk_chr(2, "/dev/zero", 5) };
	FdEntry *fds[2] = { mk_fd(3, 1, false), mk_fd(7, 2, true) };

	img.files = fes;
	img.n_files = 2;
	t.pid = 1234;
	t.fds = fds;
	t.n_fds = 2;
	/* the master's copies sit at low numbers, where fd 3 must go */
	restore_and_check(&img, &t, NULL, check_keep, NULL);
	keep_at = 7;	/* the fd to keep sits where fd 7 must go */
	restore_and_check(&img, &t, NULL, check_keep, NULL);
	keep_at = -1;
	for (int i = 0; i < 2; i++) {
		file_entry__free_unpacked(fes[i], NULL);
		fd_entry__free_unpacked(fds[i], NULL);
	}
}

static bool have_pty(void)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY);

	if (m < 0)
		return false;
	close(m);
	return true;
}

/* --- terminal with --shell-job; deleted file whose directory is gone ------------ */

static int setup_tty_slave(void *arg)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY), s;

	if (m < 0 || grantpt(m) || unlockpt(m))
		return -1;
	s = open(ptsname(m), O_RDWR | O_NOCTTY | O_NONBLOCK);
	close(m);
	return at(s, 4);
}

static int check_tty(int rep, void *arg)
{
	dev_t *rdev = arg;
	struct stat st;
	int bad = 0;

	CHECK(isatty(4), "fd 4 is not a terminal");
	CHECK(!fstat(4, &st) && st.st_rdev == *rdev, "fd 4 is not the restorer's terminal");
	CHECK((fcntl(4, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) == (O_RDWR | O_NONBLOCK), "tty flags");
	return bad;
}

static void test_tty_shell_job(void **state)
{
	struct files_opts sj = { .shell_job = true }, no = { 0 };
	FilesImage *img;
	FdtableEntry *t;
	struct stat st;
	int m, s, status;
	pid_t pid;

	if (!have_pty())
		skip();
	pid = start_child(setup_tty_slave, NULL);

	assert_int_equal(dump_child(pid, &sj, &img, &t), 0);
	kill_child(pid);
	/* the restorer has a terminal on its stdin */
	m = posix_openpt(O_RDWR | O_NOCTTY);
	assert_true(m >= 0 && !grantpt(m) && !unlockpt(m));
	s = open(ptsname(m), O_RDWR | O_NOCTTY);
	assert_true(s >= 0);
	assert_int_equal(fstat(s, &st), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct files_rst *fr;

		dup2(s, 0);
		log_set_level(-1);
		if (!files_rst_open_all(img, &no, &fr))
			_exit(2);	/* a terminal without --shell-job */
		log_set_level(LOG_LVL_INFO);
		restore_and_check(img, t, &sj, check_tty, &st.st_rdev);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	close(s);
	close(m);
	files_image__free_unpacked(img, NULL);
	fdtable_entry__free_unpacked(t, NULL);
}

static int setup_deleted_gone(void *arg)
{
	char p[256];
	int fd;

	path_in(p, sizeof(p), "gone");
	mkdir(p, 0755);
	path_in(p, sizeof(p), "gone/x");
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, "still here", 10) != 10 || unlink(p))
		return -1;
	path_in(p, sizeof(p), "gone");
	if (rmdir(p))
		return -1;
	return at(fd, 3);
}

static int check_deleted_gone(int rep, void *arg)
{
	char b[32], lnk[256];
	int bad = 0;
	ssize_t n = readlink("/proc/self/fd/3", lnk, sizeof(lnk) - 1);

	lnk[n > 0 ? n : 0] = 0;
	CHECK(pread(3, b, sizeof(b), 0) == 10 && !memcmp(b, "still here", 10), "content");
	CHECK(lseek(3, 0, SEEK_CUR) == 10, "offset");
	CHECK(!strncmp(lnk, "/tmp/", 5) && strstr(lnk, "(deleted)"), "recreated as %s", lnk);
	return bad;
}

static void test_deleted_dir_gone(void **state)
{
	struct files_opts o = { 0 };
	FilesImage *img;
	FdtableEntry *t;
	pid_t pid = start_child(setup_deleted_gone, NULL);

	assert_int_equal(dump_child(pid, &o, &img, &t), 0);
	kill_child(pid);
	restore_and_check(img, t, &o, check_deleted_gone, NULL);
	files_image__free_unpacked(img, NULL);
	fdtable_entry__free_unpacked(t, NULL);
}

/* --- refusals at dump ---------------------------------------------------------- */

/* a packet socket in a fanout group (PACKET_FANOUT_HASH, group 0x4b55) */
static int setup_packet(void *arg)
{
	int s = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)), f = 0x4b55;

	if (s >= 0 && setsockopt(s, SOL_PACKET, PACKET_FANOUT, &f, sizeof(f)) < 0)
		return -1;
	return at(s, 5);
}

/* a socket of a family without a kind: the catch-all */
static int setup_vsock(void *arg)
{
	return at(socket(AF_VSOCK, SOCK_STREAM, 0), 5);
}

static int setup_io_uring(void *arg)
{
	unsigned char params[120] = { 0 };	/* struct io_uring_params */
	return at(syscall(425 /* io_uring_setup */, 4, params), 5);
}

static int setup_tty(void *arg)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY), s;

	if (m < 0 || grantpt(m) || unlockpt(m))
		return -1;
	s = open(ptsname(m), O_RDWR | O_NOCTTY);
	if (at(s, 4))
		return -1;
	return at(m, 9);
}

static int check_pty_pair(int rep, void *arg)
{
	struct stat st;
	int bad = 0, n = -1;

	CHECK(isatty(4) && !fstat(4, &st), "fd 4 is not a terminal");
	CHECK(!ioctl(9, TIOCGPTN, &n) && (unsigned int)n == minor(st.st_rdev),
	      "fd 9 is not the master of fd 4 (index %d)", n);
	return bad;
}

static void test_pty_pair(void **state)
{
	struct files_opts o = { 0 };
	FilesImage *img;
	FdtableEntry *t;
	pid_t pid;
	int n;

	if (!have_pty())
		skip();
	pid = start_child(setup_tty, NULL);
	assert_int_equal(dump_child(pid, &o, &img, &t), 0);
	kill_child(pid);
	n = 0;
	for (size_t i = 0; i < img->n_files; i++)
		n += img->files[i]->kind == FILE_KIND__FILE_PTY;
	assert_int_equal(n, 2);		/* the master and the slave */
	restore_and_check(img, t, &o, check_pty_pair, NULL);
	files_image__free_unpacked(img, NULL);
	fdtable_entry__free_unpacked(t, NULL);
}

/* The write end here, the read end in a grandchild (outside the dump). */
static int setup_pipe_writer(void *arg)
{
	int pp[2], sync[2];
	pid_t pid, parent = getpid();
	char c;

	if (pipe(pp) || pipe(sync))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* dies with its parent (no leftover once the test kills it) */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(0);
		close(pp[1]);
		close(sync[0]);
		close(sync[1]);	/* tells the parent prctl is done */
		for (;;)
			pause();
	}
	close(sync[1]);
	if (read(sync[0], &c, 1) != 0)
		return -1;
	close(sync[0]);
	close(pp[0]);
	return at(pp[1], 5);
}

static void expect_refused(setup_fn fn, void *arg, const struct files_opts *o,
			   const char *const *needles)
{
	FilesImage *img = NULL;
	FdtableEntry *t = NULL;
	char *log;
	int ret;
	pid_t pid = start_child(fn, arg);

	capture_start();
	ret = dump_child(pid, o, &img, &t);
	log = capture_end();
	kill_child(pid);
	assert_int_equal(ret, -EOPNOTSUPP);
	for (int i = 0; needles[i]; i++)
		if (!strstr(log, needles[i]))
			fail_msg("'%s' not in the message: %s", needles[i], log);
}

static void test_refuse_packet_socket(void **state)
{
	int s = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	const char *const n[] = { "fd 5", "packet socket: it is in a fanout group", NULL };

	if (s < 0)
		skip();
	close(s);
	expect_refused(setup_packet, NULL, NULL, n);
}

static void test_refuse_vsock_socket(void **state)
{
	int s = socket(AF_VSOCK, SOCK_STREAM, 0);
	const char *const n[] = { "fd 5", "vsock socket not supported", NULL };

	if (s < 0)
		skip();
	close(s);
	expect_refused(setup_vsock, NULL, NULL, n);
}

static void test_refuse_io_uring(void **state)
{
	unsigned char params[120] = { 0 };
	int s = syscall(425, 4, params);
	const char *const n[] = { "fd 5", "anon_inode:[io_uring]", NULL };

	if (s < 0)
		skip();
	close(s);
	expect_refused(setup_io_uring, NULL, NULL, n);
}

static void test_refuse_tty(void **state)
{
	const char *const n[] = { "fd 4", "terminal /dev/pts/", "needs --shell-job",
				  "master is held outside", NULL };

	if (!have_pty())
		skip();
	/* a slave without its master in the tree (a pair is a pty entry) */
	expect_refused(setup_tty_slave, NULL, NULL, n);
}

static void test_refuse_pipe_reader_outside(void **state)
{
	const char *const n[] = { "fd 5", "read end is outside", NULL };

	expect_refused(setup_pipe_writer, NULL, NULL, n);
}

/* --- corrupted images ------------------------------------------------------------ */

static void expect_bad_image(FilesImage *img, const char *what)
{
	struct files_rst *fr = NULL;
	int ret;

	capture_start();
	ret = files_rst_open_all(img, NULL, &fr);
	capture_end();
	if (ret >= 0)
		fail_msg("%s: accepted", what);
	assert_null(fr);
}

/* A FILE_PTY entry @id carrying @pe packed (into @buf). */
static void set_pty(FileEntry *fe, uint32_t id, const PtyEntry *pe, uint8_t *buf)
{
	file_entry__init(fe);
	fe->id = id;
	fe->kind = FILE_KIND__FILE_PTY;
	fe->flags = O_RDWR;
	fe->has_pty = true;
	fe->pty.data = buf;
	fe->pty.len = pty_entry__pack(pe, buf);
}

static void test_corrupt_pty(void **state)
{
	static uint8_t buf[2][256], cc[19], junk[8] = { 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4 };
	FileEntry fe[2], *arr[2] = { &fe[0], &fe[1] };
	FilesImage img = FILES_IMAGE__INIT;
	PtyTermios t = PTY_TERMIOS__INIT;
	PtyEntry m = PTY_ENTRY__INIT, sl = PTY_ENTRY__INIT;

	t.cc.data = cc;
	t.cc.len = sizeof(cc);
	m.master = true;
	m.index = 7;
	m.termios = &t;
	m.has_ws_row = m.has_ws_col = true;
	sl.index = 7;
	img.files = arr;
	img.n_files = 2;

	set_pty(&fe[0], 1, &m, buf[0]);
	set_pty(&fe[1], 2, &sl, buf[1]);
	assert_int_equal(files_validate_image(&img), 0);

	fe[0].pty.data = junk;
	fe[0].pty.len = sizeof(junk);
	expect_bad_image(&img, "pty data that does not decode");
	fe[0].has_pty = false;
	expect_bad_image(&img, "pty entry without pty data");
	m.termios = NULL;
	set_pty(&fe[0], 1, &m, buf[0]);
	expect_bad_image(&img, "master without termios");
	m.termios = &t;
	t.cc.len = 5;
	set_pty(&fe[0], 1, &m, buf[0]);
	expect_bad_image(&img, "short c_cc");
	t.cc.len = sizeof(cc);
	m.index = 1u << 30;
	set_pty(&fe[0], 1, &m, buf[0]);
	expect_bad_image(&img, "huge index");
	m.index = 7;
	m.has_fg_pgrp = true;
	m.fg_pgrp = 5;
	set_pty(&fe[0], 1, &m, buf[0]);
	expect_bad_image(&img, "foreground group without a session");
	m.has_fg_pgrp = false;
	m.ws_row = 70000;
	set_pty(&fe[0], 1, &m, buf[0]);
	expect_bad_image(&img, "window size out of range");
	m.ws_row = 24;
	set_pty(&fe[0], 1, &m, buf[0]);
	fe[0].has_sk = true;
	expect_bad_image(&img, "socket data in a pty entry");
	fe[0].has_sk = false;
	/* consistent entries that cannot be built: no side effect left */
	sl.index = 8;
	set_pty(&fe[1], 2, &sl, buf[1]);
	expect_bad_image(&img, "slave whose master is not in the image");
	sl.master = true;
	sl.index = 7;
	sl.termios = &t;
	sl.has_ws_row = sl.has_ws_col = true;
	set_pty(&fe[1], 2, &sl, buf[1]);
	expect_bad_image(&img, "two masters of one index");
}

static void test_corrupt_entries(void **state)
{
	FilesImage img = FILES_IMAGE__INIT;
	FileEntry *fe = mk_chr(1, "/dev/null", 3), *fe2 = mk_chr(2, "/dev/zero", 5);
	FileEntry *arr[2] = { fe, fe2 };
	EpollTfd tf = EPOLL_TFD__INIT, *tfp = &tf;
	InotifyWd wd = INOTIFY_WD__INIT, *wdp = &wd;
	static uint8_t small[16];
	char *path;

	img.files = arr;
	img.n_files = 2;
	/* the base is fine */
	{
		struct files_rst *fr;
		assert_int_equal(files_rst_open_all(&img, NULL, &fr), 0);
		files_rst_free(fr);
	}
	fe->kind = 99;
	expect_bad_image(&img, "unknown kind");
	fe->kind = FILE_KIND__FILE_UNIX_SK;
	expect_bad_image(&img, "socket kind");
	fe->kind = FILE_KIND__FILE_CHR;
	fe->rdev = makedev(10, 232);
	expect_bad_image(&img, "char device not allowed");
	fe->rdev = makedev(1, 3);
	fe2->id = 1;
	expect_bad_image(&img, "duplicate id");
	fe2->id = 0;
	expect_bad_image(&img, "id 0");
	fe2->id = 2;
	fe->flags = 0x7fffffff;
	expect_bad_image(&img, "bad flags");
	fe->flags = O_RDWR;

	/* regular files */
	fe->kind = FILE_KIND__FILE_REG;
	path = fe->path;
	fe->path = NULL;
	expect_bad_image(&img, "regular file without a path");
	fe->path = "relative/path";
	expect_bad_image(&img, "relative path");
	fe->path = "/nonexistent/kup/file";
	expect_bad_image(&img, "missing file");
	fe->path = "/etc/hostname";
	fe->has_deleted = fe->deleted = true;
	expect_bad_image(&img, "deleted without inode");
	fe->has_dev = fe->has_ino = true;
	fe->has_content = true;
	fe->content.data = small;
	fe->content.len = (size_t)1 << 40;
	fe->has_size = true;
	fe->size = (uint64_t)1 << 40;
	expect_bad_image(&img, "huge content");
	fe->content.len = 16;
	fe->size = 17;
	expect_bad_image(&img, "content length != size");
	{
		uint64_t ext[4] = { 0, 8, 4, 8 };

		fe->size = 100;
		fe->extents = ext;
		fe->n_extents = 3;
		expect_bad_image(&img, "odd number of extent values");
		fe->n_extents = 4;
		expect_bad_image(&img, "overlapping extents");
		ext[2] = 96;
		ext[3] = 8;
		expect_bad_image(&img, "extent past the size");
		ext[3] = 4;
		ext[1] = 4;
		expect_bad_image(&img, "extents sum != content length");
		ext[1] = 12;
		ext[2] = UINT64_MAX - 1;
		ext[3] = 4;
		expect_bad_image(&img, "extent offset overflows");
		ext[1] = 16;
		ext[2] = 20;
		ext[3] = 0;
		expect_bad_image(&img, "empty extent among others");
		fe->extents = NULL;
		fe->n_extents = 0;
		fe->size = 17;
	}
	fe->has_content_in_image = fe->content_in_image = true;
	expect_bad_image(&img, "data both here and in an image");
	fe->has_content = false;
	expect_bad_image(&img, "data in an image without its checksum");
	fe->has_content_xxh64 = true;
	fe->size = (uint64_t)1 << 41;
	expect_bad_image(&img, "data in an image beyond the blob limit");
	fe->size = 17;
	fe->kind = FILE_KIND__FILE_PIPE;
	expect_bad_image(&img, "data in an image for a pipe");
	fe->kind = FILE_KIND__FILE_REG;
	expect_bad_image(&img, "data in an image and no store to read it from");
	fe->has_content_in_image = fe->content_in_image = fe->has_content_xxh64 = false;
	fe->has_content = true;
	fe->has_content = false;
	fe->content.data = NULL;
	fe->content.len = 0;
	expect_bad_image(&img, "deleted without its content");
	fe->has_deleted = fe->deleted = false;
	fe->has_handle = fe->has_handle_type = true;
	fe->handle.data = small;
	fe->handle.len = 200;
	expect_bad_image(&img, "file handle too long");
	fe->handle.len = 0;
	expect_bad_image(&img, "empty file handle");
	fe->has_handle = fe->has_handle_type = false;
	fe->handle.data = NULL;
	fe->handle.len = 0;
	fe->has_pos = true;
	fe->pos = 1ull << 63;
	expect_bad_image(&img, "huge offset");
	fe->pos = 0;
	fe->path = path;
	fe->has_dev = fe->has_ino = fe->has_size = false;

	/* a /proc file of the tree: under /proc/N/, nowhere else */
	fe->has_proc_of_tree = fe->proc_of_tree = true;
	fe->path = "/etc/hostname";
	expect_bad_image(&img, "proc_of_tree outside /proc");
	fe->path = "/proc/1/../../etc/hostname";
	expect_bad_image(&img, "proc_of_tree with ..");
	fe->kind = FILE_KIND__FILE_PIPE;
	expect_bad_image(&img, "proc_of_tree in a pipe");
	fe->kind = FILE_KIND__FILE_REG;
	fe->has_proc_of_tree = fe->proc_of_tree = false;
	fe->path = path;

	/* pidfds, namespace fds, fanotify */
	fe->kind = FILE_KIND__FILE_PIDFD;
	expect_bad_image(&img, "pidfd without a pid");
	fe->has_pidfd_pid = true;
	fe->pidfd_pid = -5;
	expect_bad_image(&img, "pidfd of pid -5");
	fe->pidfd_pid = 0;
	expect_bad_image(&img, "pidfd of pid 0");
	fe->kind = FILE_KIND__FILE_EVENTFD;
	fe->has_counter = true;
	fe->pidfd_pid = 1;
	expect_bad_image(&img, "pidfd pid in an eventfd");
	fe->has_pidfd_pid = fe->has_counter = false;
	fe->kind = FILE_KIND__FILE_NSFD;
	fe->path = "../../etc/passwd";
	expect_bad_image(&img, "namespace type that is a path");
	fe->path = "nett";
	expect_bad_image(&img, "unknown namespace type");
	fe->path = path;
	fe->kind = FILE_KIND__FILE_FANOTIFY;
	expect_bad_image(&img, "fanotify without flags");
	{
		FanotifyMarkEntry m = FANOTIFY_MARK_ENTRY__INIT, *mp = &m;

		fe->has_fan_flags = fe->has_fan_event_flags = true;
		fe->fan_flags = 0x7fff0000;
		expect_bad_image(&img, "fanotify init flags out of range");
		fe->fan_flags = 0;
		fe->fan_marks = &mp;
		fe->n_fan_marks = 1;
		m.kind = 9;
		m.path = "/tmp";
		expect_bad_image(&img, "fanotify mark of unknown kind");
		m.kind = FANOTIFY_MARK_KIND__FAN_MARK_KIND_MOUNT;
		m.path = "tmp";
		expect_bad_image(&img, "fanotify mark on a relative path");
		m.path = "/tmp";
		m.mflags = 0x1;
		expect_bad_image(&img, "fanotify mark with unknown flags");
		fe->fan_marks = NULL;
		fe->n_fan_marks = 0;
		fe->has_fan_flags = fe->has_fan_event_flags = false;
	}
	fe->kind = FILE_KIND__FILE_REG;

	/* pipes */
	fe->kind = FILE_KIND__FILE_PIPE;
	expect_bad_image(&img, "pipe without inode");
	fe->has_pipe_ino = true;
	fe->pipe_ino = 1;
	fe->has_pipe_data = true;
	fe->pipe_data.data = small;
	fe->pipe_data.len = 100000;
	expect_bad_image(&img, "pipe data larger than the pipe");
	fe->has_pipe_size = true;
	fe->pipe_size = 5;
	fe->pipe_data.len = 4;
	expect_bad_image(&img, "tiny pipe");
	fe->has_pipe_data = false;
	fe->pipe_data.data = NULL;
	fe->pipe_data.len = 0;
	fe->has_pipe_size = false;

	/* epoll, inotify, timerfd, eventfd, memfd */
	fe->kind = FILE_KIND__FILE_EPOLL;
	fe->n_tfds = 1;
	fe->tfds = &tfp;
	tf.tfd = -5;
	expect_bad_image(&img, "negative epoll tfd");
	tf.tfd = 3;
	tf.has_tfile_id = true;
	tf.tfile_id = 77;
	expect_bad_image(&img, "epoll target missing");
	fe->n_tfds = (size_t)1 << 40;
	expect_bad_image(&img, "huge tfd count");
	fe->n_tfds = 0;
	fe->tfds = NULL;

	fe->kind = FILE_KIND__FILE_INOTIFY;
	fe->flags = O_RDONLY;
	fe->n_wds = 1;
	fe->wds = &wdp;
	wd.wd = -1;
	wd.mask = IN_CREATE;
	wd.path = "/tmp";
	expect_bad_image(&img, "negative wd");
	wd.wd = 1;
	wd.path = NULL;
	expect_bad_image(&img, "watch without path");
	wd.path = "/tmp";
	wd.wd = 1 << 30;
	expect_bad_image(&img, "huge wd");
	fe->n_wds = 0;
	fe->wds = NULL;
	fe->flags = O_RDWR;

	fe->kind = FILE_KIND__FILE_TIMERFD;
	expect_bad_image(&img, "timerfd without fields");
	fe->has_clockid = fe->has_value_ns = fe->has_interval_ns = true;
	fe->clockid = 1234;
	expect_bad_image(&img, "timerfd bad clock");
	fe->clockid = CLOCK_MONOTONIC;
	fe->value_ns = ~0ull;
	expect_bad_image(&img, "timerfd huge value");
	fe->value_ns = 0;
	fe->has_clockid = fe->has_value_ns = fe->has_interval_ns = false;

	fe->kind = FILE_KIND__FILE_EVENTFD;
	expect_bad_image(&img, "eventfd without counter");
	fe->has_counter = true;
	fe->counter = ~0ull;
	expect_bad_image(&img, "eventfd counter too big");
	fe->has_counter = false;

	fe->kind = FILE_KIND__FILE_MEMFD;
	expect_bad_image(&img, "memfd without inode");
	fe->has_dev = fe->has_ino = fe->has_size = true;
	fe->size = 10;
	expect_bad_image(&img, "memfd without content");

	fe->kind = FILE_KIND__FILE_CHR;
	fe->has_dev = fe->has_ino = fe->has_size = false;
	img.n_files = 2;
	img.files[1] = NULL;
	expect_bad_image(&img, "NULL entry");
	img.files[1] = fe2;

	file_entry__free_unpacked(fe, NULL);
	file_entry__free_unpacked(fe2, NULL);
}

static void test_corrupt_fdtable(void **state)
{
	FilesImage img = FILES_IMAGE__INIT;
	FileEntry *fe = mk_chr(1, "/dev/null", 3);
	FdEntry *fds[2] = { mk_fd(3, 1, false), mk_fd(3, 1, false) };
	FdtableEntry t = FDTABLE_ENTRY__INIT;

	img.files = &fe;
	img.n_files = 1;
	t.fds = fds;
	t.n_fds = 2;
	capture_start();
	assert_int_not_equal(files_validate_fdtable(&img, &t), 0);	/* fd twice */
	fds[1]->fd = -4;
	assert_int_not_equal(files_validate_fdtable(&img, &t), 0);
	fds[1]->fd = 1 << 29;
	assert_int_not_equal(files_validate_fdtable(&img, &t), 0);
	fds[1]->fd = 4;
	fds[1]->file_id = 9;
	assert_int_not_equal(files_validate_fdtable(&img, &t), 0);
	fds[1]->file_id = 1;
	capture_end();
	assert_int_equal(files_validate_fdtable(&img, &t), 0);

	/* file locks: kind, fd in the table, range */
	FileLock lk = FILE_LOCK__INIT, *lks[1] = { &lk };

	lk.kind = FILE_LOCK_KIND__LOCK_POSIX;
	lk.fd = 4;
	lk.start = 10;
	lk.has_end = true;
	lk.end = 19;
	t.locks = lks;
	t.n_locks = 1;
	assert_int_equal(files_validate_fdtable(&img, &t), 0);
	capture_start();
	lk.fd = 5;		/* not in the table */
	assert_int_not_equal(files_validate_fdtable(&img, &t), 0);
	lk.fd = 4;
	lk.end = 9;		/* ends before it starts */
	assert_int_not_equal(files_validate_fdtable(&img, &t), 0);
	lk.end = 19;
	lk.kind = 77;
	assert_int_not_equal(files_validate_fdtable(&img, &t), 0);
	lk.kind = FILE_LOCK_KIND__LOCK_FLOCK;	/* a flock has no range */
	assert_int_not_equal(files_validate_fdtable(&img, &t), 0);
	lk.kind = FILE_LOCK_KIND__LOCK_LEASE;	/* nor has a lease */
	assert_int_not_equal(files_validate_fdtable(&img, &t), 0);
	lk.start = 0;
	lk.has_end = false;
	assert_int_equal(files_validate_fdtable(&img, &t), 0);
	lk.start = 10;
	lk.has_end = true;
	lk.kind = FILE_LOCK_KIND__LOCK_OFD;
	lk.start = (uint64_t)1 << 63;
	assert_int_not_equal(files_validate_fdtable(&img, &t), 0);
	lks[0] = NULL;
	assert_int_not_equal(files_validate_fdtable(&img, &t), 0);
	capture_end();
	t.locks = NULL;
	t.n_locks = 0;

	/* a table shared with another process's (CLONE_FILES) is empty */
	t.pid = 10;
	t.has_files_of = true;
	t.files_of = 9;
	capture_start();
	assert_int_not_equal(files_validate_fdtable(&img, &t), 0);	/* has fds */
	t.n_fds = 0;
	t.files_of = 10;
	assert_int_not_equal(files_validate_fdtable(&img, &t), 0);	/* its own */
	capture_end();
	t.files_of = 9;
	assert_int_equal(files_validate_fdtable(&img, &t), 0);
	file_entry__free_unpacked(fe, NULL);
	fd_entry__free_unpacked(fds[0], NULL);
	fd_entry__free_unpacked(fds[1], NULL);
}

/* Random mutations of a packed image: unpack + validate never crash. */
static void test_fuzz_validate(void **state)
{
	FilesImage img = FILES_IMAGE__INIT;
	FileEntry *fe[3] = { mk_chr(1, "/dev/null", 3), mk_chr(2, "/dev/zero", 5), mk_chr(3, "/x", 7) };
	EpollTfd tf = EPOLL_TFD__INIT, *tfp = &tf;

	fe[2]->kind = FILE_KIND__FILE_EPOLL;
	fe[2]->n_tfds = 1;
	fe[2]->tfds = &tfp;
	tf.tfd = 4;
	tf.has_tfile_id = true;
	tf.tfile_id = 1;
	fe[1]->has_pipe_data = true;
	fe[1]->pipe_data.data = (uint8_t *)"abcdef";
	fe[1]->pipe_data.len = 6;
	img.files = fe;
	img.n_files = 3;
	mutate_files_image(&img, 20000, 12345);
	fe[2]->n_tfds = 0;
	fe[2]->tfds = NULL;
	fe[1]->has_pipe_data = false;
	fe[1]->pipe_data.data = NULL;
	for (int i = 0; i < 3; i++)
		file_entry__free_unpacked(fe[i], NULL);
}

static int group_setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/kup-test-files-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	return 0;
}

/* Reap the orphans reparented to us (we are a child subreaper). */
static void reap_orphans(void)
{
	for (int i = 0; i < 100; i++) {
		pid_t r = waitpid(-1, NULL, WNOHANG);
		if (r < 0)
			return;		/* no child left */
		if (r == 0)
			usleep(10000);
	}
}

static int group_teardown(void **state)
{
	char cmd[128];

	reap_orphans();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) ? -1 : 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dump_restore_all),
		cmocka_unit_test(test_pipe_peek_keeps_data),
		cmocka_unit_test(test_two_processes_and_links),
		cmocka_unit_test(test_many_anon_files),
		cmocka_unit_test(test_install_keep),
		cmocka_unit_test(test_tty_shell_job),
		cmocka_unit_test(test_deleted_dir_gone),
		cmocka_unit_test(test_refuse_packet_socket),
		cmocka_unit_test(test_refuse_vsock_socket),
		cmocka_unit_test(test_refuse_io_uring),
		cmocka_unit_test(test_refuse_tty),
		cmocka_unit_test(test_pty_pair),
		cmocka_unit_test(test_corrupt_pty),
		cmocka_unit_test(test_refuse_pipe_reader_outside),
		cmocka_unit_test(test_corrupt_entries),
		cmocka_unit_test(test_corrupt_fdtable),
		cmocka_unit_test(test_fuzz_validate),
	};

	/* orphans of the dumped children come back to us, not to PID 1 */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (geteuid() != 0) {
		fprintf(stderr, "test-files: needs root (pidfd_getfd, kcmp)\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
