/*
 * fdrefused: one process holding one file a checkpoint must refuse, for
 * tests of the refusal (named pid, fd, object; the tree left running).
 *
 * Usage: fdrefused KIND
 *   proc-thread  /proc/thread-self/status of a second thread open (a /proc
 *                file of a thread of the tree)
 *   pidfd-zombie a pidfd of its own child, which has exited (not reaped)
 *   pidfd-out    a pidfd of pid 1 (outside the tree)
 *   nsfd PATH    PATH open: a namespace other than its own (/proc/P/ns/net)
 *   clone-files  two children made with clone(CLONE_FILES), then the parent
 *                leaves their fd table (unshare): shared by siblings only
 *   fanotify-removed DIR  a fanotify mark on DIR/fa, held open and removed
 *   epoll-closed an epoll watching a pipe whose fd was closed since, the
 *                pipe open in a child only
 *   inotify-removed DIR  an inotify watch on DIR/w, which it then removes
 *                (a process outside the tree keeps the file open)
 *   perf-event   a perf event fd (a software event of its own, disabled)
 *   bpf-map      a BPF map fd (an array of one entry)
 *   userns       in a user namespace of its own (unshare), the fd /dev/null
 * Lines: "FD <fd>" (the fd to be named), "PID CHILD <pid>" when there is a
 * child, then "READY"; then it waits.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "say.h"

static pid_t child(unsigned long flags)
{
	pid_t c = (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, 0);

	if (c < 0)
		die("clone: %s", strerror(errno));
	if (c == 0) {
		for (;;)
			pause();
	}
	say("PID CHILD %d", c);
	return c;
}

static int fd_ready;

static void *thread_open(void *arg)
{
	*(int *)arg = open("/proc/thread-self/status", O_RDONLY);
	__atomic_store_n(&fd_ready, 1, __ATOMIC_RELEASE);
	for (;;)
		pause();
	return NULL;
}

int main(int argc, char **argv)
{
	const char *k = argc >= 2 ? argv[1] : "";
	int fd = -1;

	if (!strcmp(k, "proc-thread")) {
		pthread_t th;

		if (pthread_create(&th, NULL, thread_open, &fd))
			die("pthread_create: %s", strerror(errno));
		while (!__atomic_load_n(&fd_ready, __ATOMIC_ACQUIRE))
			sleep_ms(10);
	} else if (!strcmp(k, "pidfd-zombie")) {
		pid_t c = fork();

		if (c == 0)
			_exit(0);
		fd = (int)syscall(SYS_pidfd_open, c, 0);
		say("PID CHILD %d", c);
		{	/* until it is a zombie: exited, not reaped */
			siginfo_t si;

			if (waitid(P_PID, c, &si, WEXITED | WNOWAIT))
				die("waitid: %s", strerror(errno));
		}
	} else if (!strcmp(k, "pidfd-out")) {
		fd = (int)syscall(SYS_pidfd_open, 1, 0);
	} else if (!strcmp(k, "nsfd") && argc == 3) {
		fd = open(argv[2], O_RDONLY);
	} else if (!strcmp(k, "clone-files")) {
		child(CLONE_FILES);
		child(CLONE_FILES);
		if (unshare(CLONE_FILES))
			die("unshare: %s", strerror(errno));
		fd = 0;
	} else if (!strcmp(k, "inotify-removed") && argc == 3) {
		char path[4096];

		snprintf(path, sizeof(path), "%s/w", argv[2]);
		fd = inotify_init1(0);
		if (fd < 0 || inotify_add_watch(fd, path, IN_MODIFY) < 0 || unlink(path))
			die("inotify: %s", strerror(errno));
	} else if (!strcmp(k, "fanotify-removed") && argc == 3) {
		char path[4096];

		snprintf(path, sizeof(path), "%s/fa", argv[2]);
		fd = fanotify_init(FAN_CLASS_NOTIF, O_RDONLY);
		/* the file stays open: a removed inode with a mark */
		if (fd < 0 || open(path, O_RDWR | O_CREAT, 0600) < 0 || fanotify_mark(fd, FAN_MARK_ADD, FAN_MODIFY, AT_FDCWD, path) ||
		    unlink(path))
			die("fanotify: %s", strerror(errno));
	} else if (!strcmp(k, "epoll-closed")) {
		struct epoll_event ev = { .events = EPOLLIN };
		int p[2];
		pid_t c;

		fd = epoll_create1(0);
		if (fd < 0 || pipe(p) || epoll_ctl(fd, EPOLL_CTL_ADD, p[0], &ev))
			die("epoll: %s", strerror(errno));
		c = fork();	/* the file stays open in a child only */
		if (c < 0)
			die("fork: %s", strerror(errno));
		if (c == 0) {
			close(fd);
			for (;;)
				pause();
		}
		say("PID CHILD %d", c);
		close(p[0]);
	} else if (!strcmp(k, "perf-event")) {
		struct perf_event_attr a = { .type = PERF_TYPE_SOFTWARE, .size = sizeof(a),
					     .config = PERF_COUNT_SW_DUMMY, .disabled = 1,
					     .exclude_kernel = 1, .exclude_hv = 1 };

		fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
	} else if (!strcmp(k, "bpf-map")) {
		union bpf_attr a = { .map_type = BPF_MAP_TYPE_ARRAY, .key_size = 4,
				     .value_size = 4, .max_entries = 1 };

		fd = (int)syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof(a));
	} else if (!strcmp(k, "userns")) {
		if (unshare(CLONE_NEWUSER))
			die("unshare: %s", strerror(errno));
		fd = open("/dev/null", O_RDONLY);
	} else {
		die("usage: fdrefused proc-thread|pidfd-zombie|pidfd-out|nsfd|clone-files|fanotify-removed|inotify-removed|epoll-closed|perf-event|bpf-map|userns");
	}
	if (fd < 0)
		die("%s: %s", k, strerror(errno));
	say("FD %d", fd);
	say("READY");
	for (;;)
		pause();
}
