/*
 * fanotify: a counter with a fanotify group and marks of every kind, for
 * checkpoint/restore tests.
 *
 * Usage: fanotify DIR   (DIR: a filesystem of its own, e.g. a tmpfs)
 * Marks: on the inode DIR/f for FAN_MODIFY, on the inode DIR/g with
 * FAN_CLOSE_WRITE ignored (surviving modification), on the mount DIR for
 * FAN_CLOSE_WRITE, on the filesystem of DIR for FAN_OPEN.
 * Lines: "READY", "C <n> <pid> <realtime_ms>" every 100 ms; SIGUSR1 asks for
 * "CHECK <k> OK" / "CHECK <k> FAIL <why>": it writes DIR/f and DIR/g and
 * reads the events: f must show open, modify and close-write; g open only.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "say.h"

static volatile sig_atomic_t check_requested;
static void on_usr1(int sig) { check_requested = 1; }

static const char *dir;
static int fan;

static char *in(const char *name)
{
	static char p[2][4096];
	static int k;

	k ^= 1;
	snprintf(p[k], sizeof(p[k]), "%s/%s", dir, name);
	return p[k];
}

static void touch(const char *name)
{
	int fd = open(in(name), O_WRONLY | O_CREAT, 0600);

	if (fd < 0 || write(fd, "x", 1) != 1)
		die("write %s: %s", name, strerror(errno));
	close(fd);
}

/* Drain the queue; the masks seen for f and g. */
static void events(unsigned long long *mf, unsigned long long *mg)
{
	struct stat f, g;
	char buf[8192];
	ssize_t n;

	stat(in("f"), &f);
	stat(in("g"), &g);
	*mf = *mg = 0;
	while ((n = read(fan, buf, sizeof(buf))) > 0) {
		struct fanotify_event_metadata *m = (void *)buf;

		for (; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
			struct stat st;

			if (m->fd >= 0 && !fstat(m->fd, &st)) {
				if (st.st_ino == f.st_ino)
					*mf |= m->mask;
				if (st.st_ino == g.st_ino)
					*mg |= m->mask;
			}
			if (m->fd >= 0)
				close(m->fd);
		}
	}
}

static const char *check(void)
{
	static char why[160];
	unsigned long long mf, mg;

	events(&mf, &mg);
	touch("f");
	touch("g");
	events(&mf, &mg);
	if ((mf & (FAN_OPEN | FAN_MODIFY | FAN_CLOSE_WRITE)) != (FAN_OPEN | FAN_MODIFY | FAN_CLOSE_WRITE) ||
	    (mg & ~FAN_OPEN) || !(mg & FAN_OPEN)) {
		snprintf(why, sizeof(why), "events for f 0x%llx (want open, modify, close-write), "
			 "for g 0x%llx (want open only)", mf, mg);
		return why;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	unsigned checks = 0;
	uint64_t n = 0;
	const char *why;

	if (argc != 2)
		die("usage: fanotify DIR");
	dir = argv[1];
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	touch("f");
	touch("g");
	fan = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY | O_LARGEFILE);
	if (fan < 0 ||
	    fanotify_mark(fan, FAN_MARK_ADD, FAN_MODIFY, AT_FDCWD, in("f")) ||
	    fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY,
			  FAN_CLOSE_WRITE, AT_FDCWD, in("g")) ||
	    fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_CLOSE_WRITE, AT_FDCWD, dir) ||
	    fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_OPEN, AT_FDCWD, dir))
		die("fanotify: %s", strerror(errno));
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
