/*
 * deleted: a counter holding files whose names are gone, for
 * checkpoint/restore tests.
 *
 * Usage: deleted DIR        the files below, in DIR
 *        deleted -b DIR     only: a deleted file of 230 MiB, 65 MiB of 'b',
 *                           a hole of 100 MiB, 65 MiB of 'c' (more data than
 *                           the files image keeps); the same protocol, its
 *                           check reads all of it back
 * Files (each fd's number is printed as "FD <name> <fd>"):
 *   sparse   a deleted file of 3 GiB with three small pieces of data (at 0,
 *            64 MiB and the last bytes), the rest holes; offset 12345
 *   memfd    a memfd of 1 GiB with one page of data at 512 MiB
 *   hl1/hl2  two names of one file, an fd opened through each (O_RDWR and
 *            O_RDONLY), both names then removed: one inode, two fds
 *   orig     opened, linked as "other", then "orig" removed: the fd's name
 *            is "orig (deleted)" while the file lives on as "other"
 *   owned    a deleted file of mode 0640 owned by 65534:65534
 *   gonedir  an fd on a directory removed since; the working directory is
 *            another removed directory ("cwdgone")
 *   opath    O_PATH fds on the file "pathfile" and on DIR itself, and
 *            (O_PATH|O_NOFOLLOW) on a symbolic link, a FIFO, a unix socket's
 *            file, /dev/null, and on a file removed since (deleted)
 *   watched  a file held open and watched by an inotify (IN_MODIFY), then
 *            removed: a write through the fd gives the watch an event
 *
 * Protocol (tests/progs/say.h): "READY", then "C <n> <pid> <realtime_ms>"
 * every 100 ms; SIGUSR1 asks for "CHECK <k> OK" or "CHECK <k> FAIL <why>":
 * contents, holes (allocated blocks), sizes, offsets, inodes shared, modes,
 * owners, directories, O_PATH flags.  Writes made by a check (through one
 * fd of hl1/hl2 and of orig) are read back through the other name.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#define SAY_LINE_MAX 2048
#include "say.h"

#define GiB (1ull << 30)
#define MiB (1ull << 20)
#define SPARSE_SIZE (3 * GiB)

static volatile sig_atomic_t check_requested;
static void on_usr1(int sig) { check_requested = 1; }

static const char *dir;
static int watched, ino_fd, ino_wd;
static int op_link, op_fifo, op_sock, op_null, op_gone;
static const char *const op_names[] = { "link", "fifo", "sock", NULL };
static int sparse, memfd, hl1, hl2, orig, owned, gonedir, opath_file, opath_dir;
static char why[512];

#define FAIL(...) do { snprintf(why, sizeof(why), __VA_ARGS__); return -1; } while (0)

static char *in(const char *name)
{
	static char p[2][4096];
	static int k;

	k ^= 1;		/* two names in one call of link() */
	snprintf(p[k], sizeof(p[k]), "%s/%s", dir, name);
	return p[k];
}

static int mk(const char *name, int flags)
{
	int fd = open(in(name), flags | O_CREAT, 0600);
	if (fd < 0)
		die("open %s: %s", in(name), strerror(errno));
	return fd;
}

static void put(int fd, const char *s, uint64_t off)
{
	if (pwrite(fd, s, strlen(s), off) != (ssize_t)strlen(s))
		die("pwrite at %llu: %s", (unsigned long long)off, strerror(errno));
}

static int has(int fd, const char *s, uint64_t off, const char *what)
{
	char b[64] = "";
	size_t l = strlen(s);

	if (pread(fd, b, l, off) != (ssize_t)l || memcmp(b, s, l))
		FAIL("%s: '%.*s' at %llu, expected '%s'", what, (int)l, b,
		     (unsigned long long)off, s);
	return 0;
}

static int zero_at(int fd, uint64_t off, const char *what)
{
	char b[16];

	if (pread(fd, b, sizeof(b), off) != sizeof(b))
		FAIL("%s: cannot read at %llu", what, (unsigned long long)off);
	for (size_t i = 0; i < sizeof(b); i++)
		if (b[i])
			FAIL("%s: data at %llu where a hole was", what, (unsigned long long)off);
	return 0;
}

static int sparse_ok(int fd, uint64_t size, uint64_t max_alloc, const char *what)
{
	struct stat st;

	if (fstat(fd, &st))
		FAIL("%s: fstat: %s", what, strerror(errno));
	if ((uint64_t)st.st_size != size)
		FAIL("%s: size %llu, expected %llu", what, (unsigned long long)st.st_size,
		     (unsigned long long)size);
	if (st.st_nlink)
		FAIL("%s: %lu links, expected none", what, (unsigned long)st.st_nlink);
	if ((uint64_t)st.st_blocks * 512 > max_alloc)
		FAIL("%s: %llu bytes allocated: the holes were filled", what,
		     (unsigned long long)st.st_blocks * 512);
	return 0;
}

static unsigned checks;

static int check(void)
{
	struct stat a, b, o;
	char tag[32];
	int fl;

	/* holes stay holes */
	if (sparse_ok(sparse, SPARSE_SIZE, 4 * MiB, "sparse") ||
	    has(sparse, "HEAD", 0, "sparse") || has(sparse, "MIDDLE", 64 * MiB, "sparse") ||
	    has(sparse, "TAIL", SPARSE_SIZE - 4, "sparse") ||
	    zero_at(sparse, 32 * MiB, "sparse") || zero_at(sparse, 2 * GiB, "sparse"))
		return -1;
	if (lseek(sparse, 0, SEEK_CUR) != 12345)
		FAIL("sparse: offset %lld, expected 12345", (long long)lseek(sparse, 0, SEEK_CUR));
	if (sparse_ok(memfd, GiB, 4 * MiB, "memfd") || has(memfd, "PAGE", 512 * MiB, "memfd") ||
	    zero_at(memfd, 256 * MiB, "memfd"))
		return -1;
	/* one inode behind two fds, both names gone */
	if (fstat(hl1, &a) || fstat(hl2, &b))
		FAIL("hl: fstat: %s", strerror(errno));
	if (a.st_ino != b.st_ino || a.st_dev != b.st_dev)
		FAIL("hl1 and hl2 are different files now (inodes %lu and %lu)",
		     (unsigned long)a.st_ino, (unsigned long)b.st_ino);
	if (a.st_nlink)
		FAIL("hl: %lu links, expected none", (unsigned long)a.st_nlink);
	if ((fcntl(hl1, F_GETFL) & O_ACCMODE) != O_RDWR ||
	    (fcntl(hl2, F_GETFL) & O_ACCMODE) != O_RDONLY)
		FAIL("hl: access modes changed");
	snprintf(tag, sizeof(tag), "check%u", checks);
	put(hl1, tag, 100);
	if (has(hl2, "hardlinked", 0, "hl2") || has(hl2, tag, 100, "hl2 (written through hl1)"))
		return -1;
	/* unlinked under its name, alive under another */
	if (fstat(orig, &a) || stat(in("other"), &o))
		FAIL("orig/other: stat: %s", strerror(errno));
	if (a.st_ino != o.st_ino || a.st_dev != o.st_dev)
		FAIL("orig is not the file 'other' any more (inodes %lu and %lu)",
		     (unsigned long)a.st_ino, (unsigned long)o.st_ino);
	if (a.st_nlink != 1)
		FAIL("orig: %lu links, expected 1", (unsigned long)a.st_nlink);
	put(orig, tag, 50);
	{
		int r = open(in("other"), O_RDONLY);
		int bad = r < 0 || has(r, "linked", 0, "other") || has(r, tag, 50, "other (written through orig)");
		if (r >= 0)
			close(r);
		if (bad) {
			if (r < 0)
				FAIL("cannot open other: %s", strerror(errno));
			return -1;
		}
	}
	if (lseek(orig, 0, SEEK_CUR) != 3)
		FAIL("orig: offset %lld, expected 3", (long long)lseek(orig, 0, SEEK_CUR));
	/* mode and owner */
	if (fstat(owned, &a))
		FAIL("owned: fstat: %s", strerror(errno));
	if ((a.st_mode & 07777) != 0640 || a.st_uid != 65534 || a.st_gid != 65534 || a.st_nlink)
		FAIL("owned: mode 0%o owner %u:%u links %lu, expected 0640 65534:65534 0",
		     a.st_mode & 07777, a.st_uid, a.st_gid, (unsigned long)a.st_nlink);
	if (has(owned, "mine", 0, "owned"))
		return -1;
	/* removed directories */
	if (fstat(gonedir, &a) || !S_ISDIR(a.st_mode) || a.st_nlink)
		FAIL("gonedir: not a removed directory any more");
	if (stat(".", &a) || !S_ISDIR(a.st_mode) || a.st_nlink)
		FAIL("the working directory is not a removed directory any more");
	/* the inotify watch on a removed file */
	put(watched, tag, 0);
	{
		char ev[4096];
		ssize_t n = read(ino_fd, ev, sizeof(ev));
		const struct inotify_event *e = (const void *)ev;

		if (n < (ssize_t)sizeof(*e) || e->wd != ino_wd || !(e->mask & IN_MODIFY))
			FAIL("watched: no IN_MODIFY event for wd %d after a write (%zd bytes read)",
			     ino_wd, n);
		while (read(ino_fd, ev, sizeof(ev)) > 0)
			;
	}
	/* O_PATH on other inodes */
	{
		int fds[] = { op_link, op_fifo, op_sock };
		mode_t types[] = { S_IFLNK, S_IFIFO, S_IFSOCK };

		for (int i = 0; op_names[i]; i++) {
			fl = fcntl(fds[i], F_GETFL);
			if (fl < 0 || !(fl & O_PATH) || fstat(fds[i], &a) || lstat(in(op_names[i]), &o) ||
			    a.st_ino != o.st_ino || (a.st_mode & S_IFMT) != types[i])
				FAIL("O_PATH on %s: flags 0%o, not that %s any more", op_names[i], fl,
				     op_names[i]);
		}
		fl = fcntl(op_null, F_GETFL);
		if (fl < 0 || !(fl & O_PATH) || fstat(op_null, &a) || !S_ISCHR(a.st_mode) ||
		    a.st_rdev != makedev(1, 3))
			FAIL("O_PATH on /dev/null: flags 0%o, not /dev/null any more", fl);
		fl = fcntl(op_gone, F_GETFL);
		if (fl < 0 || !(fl & O_PATH) || fstat(op_gone, &a) || !S_ISREG(a.st_mode) ||
		    a.st_nlink || a.st_size != 5)
			FAIL("O_PATH on a removed file: flags 0%o, not a removed file of 5 bytes", fl);
	}
	/* O_PATH */
	fl = fcntl(opath_file, F_GETFL);
	if (fl < 0 || !(fl & O_PATH) || fstat(opath_file, &a) || stat(in("pathfile"), &o) ||
	    a.st_ino != o.st_ino)
		FAIL("opath on pathfile: flags 0%o, not the file", fl);
	fl = fcntl(opath_dir, F_GETFL);
	if (fl < 0 || !(fl & O_PATH) || fstat(opath_dir, &a) || stat(dir, &o) ||
	    a.st_ino != o.st_ino)
		FAIL("opath on the directory: flags 0%o, not the directory", fl);
	return 0;
}

static int big_fd;

static int big_check(void)
{
	static char buf[MiB];
	struct stat st;

	if (fstat(big_fd, &st) || st.st_size != 230 * MiB || st.st_nlink)
		FAIL("big: size %lld, %lu links", (long long)st.st_size, (unsigned long)st.st_nlink);
	if ((uint64_t)st.st_blocks * 512 > 140 * MiB)
		FAIL("big: %llu bytes allocated: the hole was filled",
		     (unsigned long long)st.st_blocks * 512);
	for (uint64_t off = 0; off < 230 * MiB; off += MiB) {
		char want = off < 65 * MiB ? 'b' : off < 165 * MiB ? 0 : 'c';

		if (pread(big_fd, buf, MiB, off) != MiB)
			FAIL("big: cannot read at %llu", (unsigned long long)off);
		for (size_t i = 0; i < MiB; i += 4093)
			if (buf[i] != want)
				FAIL("big: byte %llu is %d, expected %d",
				     (unsigned long long)off + i, buf[i], want);
	}
	return 0;
}

static void big(void)
{
	static char buf[MiB];
	unsigned checks = 0;
	uint64_t n = 0;

	big_fd = mk("big", O_RDWR);
	memset(buf, 'b', sizeof(buf));
	for (int i = 0; i < 65; i++)
		if (write(big_fd, buf, sizeof(buf)) != sizeof(buf))
			die("write big: %s", strerror(errno));
	memset(buf, 'c', sizeof(buf));
	for (int i = 0; i < 65; i++)
		if (pwrite(big_fd, buf, sizeof(buf), (165 + i) * MiB) != sizeof(buf))
			die("write big: %s", strerror(errno));
	unlink(in("big"));
	say("FD big %d", big_fd);
	if (big_check())
		die("%s", why);
	say("READY");
	for (;;) {
		say("C %llu %d %llu", (unsigned long long)n++, getpid(), (unsigned long long)now_ms());
		if (check_requested) {
			check_requested = 0;
			checks++;
			if (big_check())
				say("CHECK %u FAIL %s", checks, why);
			else
				say("CHECK %u OK", checks);
		}
		sleep_ms(100);
	}
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	uint64_t n = 0;

	if (argc == 3 && !strcmp(argv[1], "-b")) {
		dir = argv[2];
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_usr1;
		sigaction(SIGUSR1, &sa, NULL);
		big();
	}
	if (argc != 2) {
		fprintf(stderr, "usage: deleted [-b] DIR\n");
		return 2;
	}
	dir = argv[1];
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);

	sparse = mk("sparse", O_RDWR);
	put(sparse, "HEAD", 0);
	put(sparse, "MIDDLE", 64 * MiB);
	put(sparse, "TAIL", SPARSE_SIZE - 4);
	lseek(sparse, 12345, SEEK_SET);
	unlink(in("sparse"));

	memfd = memfd_create("sparse-memfd", 0);
	if (memfd < 0 || ftruncate(memfd, GiB))
		die("memfd: %s", strerror(errno));
	put(memfd, "PAGE", 512 * MiB);

	hl1 = mk("hl1", O_RDWR);
	put(hl1, "hardlinked", 0);
	if (link(in("hl1"), in("hl2")))
		die("link: %s", strerror(errno));
	hl2 = open(in("hl2"), O_RDONLY);
	if (hl2 < 0)
		die("open hl2: %s", strerror(errno));
	unlink(in("hl1"));
	unlink(in("hl2"));

	orig = mk("orig", O_RDWR);
	put(orig, "linked", 0);
	lseek(orig, 3, SEEK_SET);
	if (link(in("orig"), in("other")))
		die("link other: %s", strerror(errno));
	unlink(in("orig"));

	owned = mk("owned", O_RDWR);
	put(owned, "mine", 0);
	if (fchown(owned, 65534, 65534) || fchmod(owned, 0640))
		die("owned: %s", strerror(errno));
	unlink(in("owned"));

	if (mkdir(in("gonedir"), 0755) || mkdir(in("cwdgone"), 0700))
		die("mkdir: %s", strerror(errno));
	gonedir = open(in("gonedir"), O_RDONLY | O_DIRECTORY);
	if (gonedir < 0 || rmdir(in("gonedir")))
		die("gonedir: %s", strerror(errno));
	if (chdir(in("cwdgone")) || rmdir(in("cwdgone")))
		die("cwdgone: %s", strerror(errno));

	watched = mk("watched", O_RDWR);
	ino_fd = inotify_init1(IN_NONBLOCK);
	if (ino_fd < 0 || (ino_wd = inotify_add_watch(ino_fd, in("watched"), IN_MODIFY)) < 0 ||
	    unlink(in("watched")))
		die("inotify: %s", strerror(errno));

	close(mk("pathfile", O_RDWR));
	opath_file = open(in("pathfile"), O_PATH);
	opath_dir = open(dir, O_PATH | O_DIRECTORY);
	{
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int sk = socket(AF_UNIX, SOCK_STREAM, 0), g;

		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", in("sock"));
		if (symlink("pathfile", in("link")) || mkfifo(in("fifo"), 0600) || sk < 0 ||
		    bind(sk, (struct sockaddr *)&sa, sizeof(sa)))
			die("O_PATH targets: %s", strerror(errno));
		close(sk);
		op_link = open(in("link"), O_PATH | O_NOFOLLOW);
		op_fifo = open(in("fifo"), O_PATH);
		op_sock = open(in("sock"), O_PATH);
		op_null = open("/dev/null", O_PATH);
		g = mk("opgone", O_RDWR);
		put(g, "12345", 0);
		op_gone = open(in("opgone"), O_PATH);
		close(g);
		unlink(in("opgone"));
		if (op_link < 0 || op_fifo < 0 || op_sock < 0 || op_null < 0 || op_gone < 0)
			die("O_PATH: %s", strerror(errno));
	}
	if (opath_file < 0 || opath_dir < 0)
		die("O_PATH: %s", strerror(errno));

	say("FD sparse %d", sparse);
	say("FD orig %d", orig);
	if (check())
		die("%s", why);
	say("READY");
	for (;;) {
		say("C %llu %d %llu", (unsigned long long)n++, getpid(), (unsigned long long)now_ms());
		if (check_requested) {
			check_requested = 0;
			checks++;
			if (check())
				say("CHECK %u FAIL %s", checks, why);
			else
				say("CHECK %u OK", checks);
		}
		sleep_ms(100);
	}
}
