/*
 * seccomp: a counter whose threads run under seccomp, each with its own
 * chain of filters, for checkpoint/restore tests.
 *
 * Usage: seccomp [-s | -n]
 *   (default)  threads differ:  T3 in strict mode (created first), F1 on the
 *              main thread, T1 created (inherits F1), F2 and F3 on the main
 *              thread, T2 created (inherits F1 F2 F3)
 *   -s         one shared chain: T1, T2 created first, then F1, F2, F3 each
 *              installed with SECCOMP_FILTER_FLAG_TSYNC (no strict thread)
 *   -n         one filter that hands getppid() to a user-space supervisor
 *              (SECCOMP_RET_USER_NOTIF, no listener: the call fails ENOSYS);
 *              a checkpoint must refuse it
 * Filters (no_new_privs is set first):
 *   F1  getppid() fails with EPERM
 *   F2  getppid() fails with EACCES (newer filters win among equal actions:
 *       a thread with F1 and F2 sees EACCES, one with F1 only sees EPERM)
 *   F3  uname() kills the process (SECCOMP_RET_KILL_PROCESS), installed with
 *       SECCOMP_FILTER_FLAG_LOG
 *   F4  prctl() kills the process, installed last on the main thread (with
 *       TSYNC in -s mode): a checkpointer that runs prctl() in the task
 *       without holding the filters off kills it
 *
 * Protocol (shared by the tests/progs programs): every line is one write(2)
 * to stdout; SIGUSR1 asks for "CHECK <k> OK ..." / "CHECK <k> FAIL <why>";
 * a broken invariant prints "ERROR <why>" and exits 1.
 *
 * Lines: "PID <pid>", "TID <name> <tid>" per thread, "READY",
 *   "C <n> <pid> <realtime_ms>" every 100 ms (n = 0, 1, 2, ...),
 *   "CHECK <k> OK main=<errno> t1=<errno> t2=<errno> strict=<ok|none>",
 *   "UNAME" on SIGUSR2, just before the main thread calls uname() (which
 *   must kill the process: "ERROR uname returned" otherwise).
 * Every thread checks every 50 ms that getppid() fails with its errno.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "say.h"

static volatile sig_atomic_t check_requested, uname_requested;
static volatile int want_main, want_t1, want_t2, ready;	/* threads check once ready */
static volatile int seen_t1, seen_t2;	/* last errno each thread saw */
static int strict_in[2], strict_out[2], have_strict;

static void on_usr1(int sig) { check_requested = 1; }
static void on_usr2(int sig) { uname_requested = 1; }

static void install(long nr, unsigned int action, unsigned int flags, const char *name)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, action),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };
	long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);

	if (r)
		die("installing %s: %ld %s", name, r, strerror(errno));
}

static int ppid_errno(void)
{
	errno = 0;
	if (syscall(SYS_getppid) != -1)
		return 0;
	return errno;
}

static void block_all(void)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
}

static void *worker(void *arg)
{
	int idx = (int)(intptr_t)arg;
	block_all();
	say("TID t%d %d", idx, gettid());
	for (;;) {
		int e = ppid_errno();

		if (idx == 1)
			seen_t1 = e;
		else
			seen_t2 = e;
		if (ready && e != (idx == 1 ? want_t1 : want_t2))
			die("t%d: getppid failed with %d (%s), want %d", idx, e, strerror(e),
			    idx == 1 ? want_t1 : want_t2);
		sleep_ms(50);
	}
	return NULL;
}

/* Strict mode: only read, write, _exit and sigreturn from here on. */
static void *strict_worker(void *arg)
{
	char c;

	block_all();
	say("TID t3 %d", gettid());
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT))
		die("t3: strict mode: %s", strerror(errno));
	for (;;) {
		if (read(strict_in[0], &c, 1) != 1)
			syscall(SYS_exit, 1);
		c ^= 0x5a;
		if (write(strict_out[1], &c, 1) != 1)
			syscall(SYS_exit, 1);
	}
	return NULL;
}

static void spawn(void *(*fn)(void *), int idx)
{
	pthread_t t;

	if (pthread_create(&t, NULL, fn, (void *)(intptr_t)idx))
		die("pthread_create t%d", idx);
	if (fn == worker)	/* let it run once before the next change */
		while ((idx == 1 ? seen_t1 : seen_t2) != (idx == 1 ? want_t1 : want_t2))
			sleep_ms(5);
}

static const char *strict_echo(unsigned char k)
{
	struct pollfd p = { strict_out[0], POLLIN, 0 };
	unsigned char r;

	if (!have_strict)
		return "none";
	if (write(strict_in[1], &k, 1) != 1)
		return "write-failed";
	if (poll(&p, 1, 2000) != 1 || read(strict_out[0], &r, 1) != 1)
		return "no-answer";
	return r == (k ^ 0x5a) ? "ok" : "wrong-answer";
}

int main(int argc, char **argv)
{
	char mode = argc > 1 && argv[1][0] == '-' ? argv[1][1] : 'd';
	struct sigaction sa;
	unsigned checks = 0;
	uint64_t n = 0;
	pid_t pid = getpid();

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_usr2;
	sigaction(SIGUSR2, &sa, NULL);
	say("PID %d", pid);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		die("no_new_privs: %s", strerror(errno));

	switch (mode) {
	case 'n':
		install(SYS_getppid, SECCOMP_RET_USER_NOTIF, 0, "the user-notif filter");
		want_main = ENOSYS;
		break;
	case 's':
		spawn(worker, 1);
		spawn(worker, 2);
		want_main = want_t1 = want_t2 = EACCES;
		install(SYS_getppid, SECCOMP_RET_ERRNO | EPERM, SECCOMP_FILTER_FLAG_TSYNC, "F1");
		install(SYS_getppid, SECCOMP_RET_ERRNO | EACCES, SECCOMP_FILTER_FLAG_TSYNC, "F2");
		install(SYS_uname, SECCOMP_RET_KILL_PROCESS,
			SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_LOG, "F3");
		install(SYS_prctl, SECCOMP_RET_KILL_PROCESS, SECCOMP_FILTER_FLAG_TSYNC, "F4");
		break;
	default:
		if (pipe(strict_in) || pipe(strict_out))
			die("pipe: %s", strerror(errno));
		have_strict = 1;
		spawn(strict_worker, 3);
		install(SYS_getppid, SECCOMP_RET_ERRNO | EPERM, 0, "F1");
		want_t1 = EPERM;
		spawn(worker, 1);
		install(SYS_getppid, SECCOMP_RET_ERRNO | EACCES, 0, "F2");
		install(SYS_uname, SECCOMP_RET_KILL_PROCESS, SECCOMP_FILTER_FLAG_LOG, "F3");
		want_main = want_t2 = EACCES;
		spawn(worker, 2);
		install(SYS_prctl, SECCOMP_RET_KILL_PROCESS, 0, "F4");
		if (strcmp(strict_echo(1), "ok"))
			die("the strict thread does not answer");
	}
	for (int i = 0; i < 10; i++)	/* every thread sees the final chains */
		sleep_ms(20);
	ready = 1;
	say("READY");

	for (;;) {
		int e = ppid_errno();

		if (e != want_main)
			die("main: getppid failed with %d (%s), want %d", e, strerror(e), want_main);
		say("C %llu %d %llu", (unsigned long long)n++, pid, (unsigned long long)now_ms());
		if (check_requested) {
			check_requested = 0;
			checks++;
			say("CHECK %u OK main=%d t1=%d t2=%d strict=%s", checks, e, seen_t1, seen_t2,
			    strict_echo(checks));
		}
		if (uname_requested) {
			struct utsname u;

			say("UNAME");
			uname(&u);
			die("uname returned");
		}
		sleep_ms(100);
	}
}
