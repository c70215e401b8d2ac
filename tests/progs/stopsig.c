/*
 * stopsig: a stopped task with pending signals, beside a running one.
 *
 * Usage: stopsig [fd-path]
 *
 * The root forks S and R.  S blocks SIGUSR2 and SIGRTMIN+2, is sent three
 * SIGRTMIN+2 with the values 1, 2, 3 and one SIGUSR2 (pending, blocked),
 * then SIGSTOP (a group-stop), then SIGWINCH and SIGRTMIN+3 with value 7
 * (pending and not blocked: a stopped task only takes them when continued)
 * and SIGSTOP again, to the process and to the thread (pending: stop
 * signals sent to a stopped task wait there until a SIGCONT drops them).
 * R prints "R <n>" every 100 ms.  With fd-path, R keeps that path open
 * (a test gives it something a dump refuses).
 *
 * Once continued, S unblocks everything (SIGCONT's handler asks it to) and
 * reports each signal it takes, in order: "S GOT <sig> <value>" (value -1
 * when the signal carried none), then "S DONE <n>" with the count.
 *
 * Lines: "PID S <pid>", "PID R <pid>", "READY" once S is stopped with its
 * pending signals, "R <n>", "S GOT ...", "S DONE <n>".
 * SIGHUP and SIGRTMIN+5 to the root are counted (a test sends many during a
 * dump; real-time signals queue, each one counts).
 * SIGUSR1 to the root: "CHECK <k> OK stopped=<pid> running=<pid> hups=<n>
 * rts=<n>" when S is
 * stopped (state T) and R running, both its children; SIGTERM: kill both,
 * reap, "FINAL OK", exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define SAY_LINE_MAX 256
#include "say.h"

static volatile sig_atomic_t check_requested, final_requested, continued;
static volatile sig_atomic_t got_n, hups, rts;
static volatile int got_sig[16], got_val[16];

static void on_usr1(int sig) { check_requested = 1; }
static void on_term(int sig) { final_requested = 1; }
static void on_cont(int sig) { continued = 1; }
static void on_hup(int sig) { hups++; }
static void on_rt(int sig) { rts++; }

static void on_sig(int sig, siginfo_t *si, void *uc)
{
	if (got_n >= 16)
		return;
	got_sig[got_n] = sig;
	got_val[got_n] = si->si_code == SI_QUEUE ? si->si_value.sival_int : -1;
	got_n++;
}

static char task_state(pid_t pid, pid_t *ppid)
{
	char path[64], buf[512], *p, st = '?';
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return '?';
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
		sscanf(p + 1, " %c %d", &st, ppid);
	fclose(f);
	return st;
}

static void run_s(int ready_fd)
{
	struct sigaction sa = { .sa_sigaction = on_sig, .sa_flags = SA_SIGINFO };
	sigset_t block;
	int shown = 0;

	signal(SIGTERM, SIG_DFL);
	signal(SIGUSR1, SIG_DFL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGWINCH, &sa, NULL);
	sigaction(SIGRTMIN + 2, &sa, NULL);
	sigaction(SIGRTMIN + 3, &sa, NULL);
	signal(SIGCONT, on_cont);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, SIGRTMIN + 2);
	sigprocmask(SIG_BLOCK, &block, NULL);
	say("PID S %d", getpid());
	if (write(ready_fd, "x", 1) != 1)
		die("S: cannot signal readiness");
	close(ready_fd);
	while (!continued)
		sleep_ms(100);
	/* SIGWINCH and SIGRTMIN+3 were taken as it was continued */
	sigprocmask(SIG_UNBLOCK, &block, NULL);
	for (int i = 0; i < 20; i++) {
		while (shown < got_n) {
			say("S GOT %d %d", got_sig[shown], got_val[shown]);
			shown++;
		}
		sleep_ms(50);
	}
	say("S DONE %d", (int)got_n);
	for (;;)
		pause();
}

static pid_t spawn_r(const char *path)
{
	pid_t pid = fork();

	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid)
		return pid;
	signal(SIGTERM, SIG_DFL);
	signal(SIGUSR1, SIG_DFL);
	if (path && open(path, O_RDWR) < 0)
		die("R: open %s: %s", path, strerror(errno));
	say("PID R %d", getpid());
	for (unsigned long n = 0;; n++) {
		say("R %lu", n);
		sleep_ms(100);
	}
}

int main(int argc, char **argv)
{
	int p[2], st, k = 0;
	pid_t s, r;
	char c;

	signal(SIGUSR1, on_usr1);
	signal(SIGTERM, on_term);
	if (pipe(p))
		die("pipe: %s", strerror(errno));
	s = fork();
	if (s < 0)
		die("fork: %s", strerror(errno));
	if (!s) {
		close(p[0]);
		run_s(p[1]);
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1)
		die("S did not start");
	close(p[0]);
	for (int v = 1; v <= 3; v++)
		if (sigqueue(s, SIGRTMIN + 2, (union sigval){ .sival_int = v }))
			die("sigqueue: %s", strerror(errno));
	kill(s, SIGUSR2);
	kill(s, SIGSTOP);
	if (waitpid(s, &st, WUNTRACED) != s || !WIFSTOPPED(st))
		die("S did not stop");
	kill(s, SIGWINCH);
	sigqueue(s, SIGRTMIN + 3, (union sigval){ .sival_int = 7 });
	/* stop signals sent to a stopped task stay pending, process-wide
	 * and thread-directed */
	kill(s, SIGSTOP);
	syscall(SYS_tkill, s, SIGSTOP);
	r = spawn_r(argc > 1 ? argv[1] : NULL);
	signal(SIGHUP, on_hup);
	signal(SIGRTMIN + 5, on_rt);
	say("READY");
	for (;;) {
		if (check_requested) {
			pid_t ps = 0, pr = 0;
			char ss = task_state(s, &ps), sr = task_state(r, &pr);

			check_requested = 0;
			k++;
			if (ss != 'T' || ps != getpid())
				say("CHECK %d FAIL S %d: state %c ppid %d", k, s, ss, ps);
			else if ((sr != 'S' && sr != 'R') || pr != getpid())
				say("CHECK %d FAIL R %d: state %c ppid %d", k, r, sr, pr);
			else
				say("CHECK %d OK stopped=%d running=%d hups=%d rts=%d", k, s, r, (int)hups,
				    (int)rts);
		}
		if (final_requested) {
			kill(s, SIGKILL);
			kill(r, SIGKILL);
			while (wait(NULL) > 0)
				;
			say("FINAL OK");
			return 0;
		}
		sleep_ms(200);
	}
}
