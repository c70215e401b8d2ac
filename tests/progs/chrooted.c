/*
 * chrooted: a counter that lives inside a root directory of its own, like a
 * privilege-separated daemon (sshd's pre-auth child in /run/sshd, haproxy's
 * workers, a RootDirectory= service).
 *
 * Usage: chrooted DIR
 *   chroot(DIR), chdir("/"), then opens /data (read-write, must exist in
 *   DIR) as fd 3 and counts.  Nothing is opened outside the root after the
 *   chroot; stdout is whatever it was given.
 *
 * Protocol: the tests/progs one (single-write lines, SIGUSR1 self-check).
 * Lines of this program:
 *   "C <n> <pid> <realtime_ms>"  n = 0, 1, 2, ... with no gap and no repeat
 *   "CHECK <k> OK n=<n> data=<bytes> marker=<text>"
 *        the check appends one line to /data through fd 3, reads the whole
 *        file back through the same fd, and reads /marker by path (it must
 *        be the root's file: a task restored outside its root fails here)
 *   "CHECK <k> FAIL <why>"
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t check_requested;

static void on_usr1(int sig)
{
	check_requested = 1;
}

#include "say.h"

static void self_check(unsigned k, unsigned long n, int fd)
{
	char line[64], buf[4096], marker[128];
	struct stat st;
	ssize_t r;
	int mfd, len;

	len = snprintf(line, sizeof(line), "check %u at %lu\n", k, n);
	if (write(fd, line, len) != len) {
		say("CHECK %u FAIL cannot append to /data through fd 3: %s", k, strerror(errno));
		return;
	}
	if (fstat(fd, &st) || (r = pread(fd, buf, sizeof(buf) - 1, 0)) < 0) {
		say("CHECK %u FAIL cannot read /data back through fd 3: %s", k, strerror(errno));
		return;
	}
	buf[r] = 0;
	if (r != st.st_size || !strstr(buf, line)) {
		say("CHECK %u FAIL /data through fd 3 lacks the line just written", k);
		return;
	}
	mfd = open("/marker", O_RDONLY | O_CLOEXEC);
	if (mfd < 0) {
		say("CHECK %u FAIL cannot open /marker inside the root: %s", k, strerror(errno));
		return;
	}
	r = read(mfd, marker, sizeof(marker) - 1);
	close(mfd);
	if (r <= 0) {
		say("CHECK %u FAIL /marker is empty", k);
		return;
	}
	marker[r] = 0;
	marker[strcspn(marker, "\n")] = 0;
	say("CHECK %u OK n=%lu data=%ld marker=%s", k, n, (long)st.st_size, marker);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	unsigned long n = 0, shadow = 0;
	unsigned checks = 0;
	pid_t pid = getpid();
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: chrooted DIR\n");
		return 2;
	}
	if (chroot(argv[1]) || chdir("/"))
		die("cannot chroot to %s: %s", argv[1], strerror(errno));
	fd = open("/data", O_RDWR | O_APPEND);
	if (fd < 0)
		die("cannot open /data in the root: %s", strerror(errno));
	if (fd != 3 && (dup2(fd, 3) != 3 || close(fd)))
		die("cannot move /data to fd 3");
	sigaction(SIGUSR1, &sa, NULL);
	for (;;) {
		if (n != shadow)
			die("counter %lu and its shadow %lu disagree", n, shadow);
		if (getpid() != pid)
			die("pid changed from %d to %d", pid, getpid());
		say("C %lu %d %llu", n, pid, (unsigned long long)now_ms());
		n++;
		shadow++;
		if (check_requested) {
			check_requested = 0;
			self_check(++checks, n, 3);
		}
		sleep_ms(100);
	}
}
