/*
 * proctree: a process tree with a zombie child and a stopped child.
 *
 * Usage: proctree
 *
 * The root forks:
 *   Z  which exits at once with status 7 and is never waited for: a zombie;
 *   S  which prints "S <n>" every 100 ms (n = 0, 1, 2, ...) and which the root
 *      stops with SIGSTOP once it has printed a few lines;
 *   R  which prints "R <n>" every 100 ms and keeps running.
 *
 * Protocol (shared by the tests/progs programs): every line is one write(2)
 * to stdout; SIGUSR1 (to the root) asks for a self-check, answered
 * "CHECK <k> OK <details>" or "CHECK <k> FAIL <why>"; a broken invariant
 * prints "ERROR <why>" and exits 1.
 *
 * Lines: "PID ROOT <pid>", "PID Z <pid>", "PID S <pid>", "PID R <pid>",
 * "READY" once S is stopped, "S <n>", "R <n>",
 * "CHECK <k> OK zombie=<pid> stopped=<pid> running=<pid>": Z is a zombie
 * (state Z) and S stopped (state T), both still children of the root.
 *
 * SIGTERM to the root is the final check: it reaps Z, whose status must be
 * "exited with 7", kills S and R, reaps them, prints "FINAL OK" or
 * "FINAL FAIL <why>" and exits 0 or 1.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t check_requested, final_requested;

static void on_usr1(int sig) { check_requested = 1; }
static void on_term(int sig) { final_requested = 1; }

#define SAY_LINE_MAX 512
#include "say.h"


/* State letter and ppid of a task from /proc/PID/stat; '?' if unreadable. */
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

static pid_t spawn_ticker(const char *name)
{
	pid_t pid = fork();

	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid)
		return pid;
	signal(SIGTERM, SIG_DFL);
	signal(SIGUSR1, SIG_DFL);
	say("PID %s %d", name, getpid());
	for (unsigned long n = 0;; n++) {
		say("%s %lu", name, n);
		sleep_ms(100);
	}
}

static const char *check_children(pid_t z, pid_t s, pid_t r, char *why, size_t len)
{
	pid_t pz = 0, ps = 0, pr = 0;
	char cz = task_state(z, &pz), cs = task_state(s, &ps), cr = task_state(r, &pr);

	if (cz != 'Z' || pz != getpid())
		return snprintf(why, len, "Z (pid %d) is in state %c with parent %d, want Z and %d",
				z, cz, pz, getpid()), why;
	if (cs != 'T' || ps != getpid())
		return snprintf(why, len, "S (pid %d) is in state %c with parent %d, want T and %d",
				s, cs, ps, getpid()), why;
	if (cr == '?' || cr == 'Z' || cr == 'T' || cr == 't' || pr != getpid())
		return snprintf(why, len, "R (pid %d) is in state %c with parent %d, want running and %d",
				r, cr, pr, getpid()), why;
	return NULL;
}

int main(void)
{
	struct sigaction sa;
	pid_t z, s, r;
	int checks = 0;
	char why[256];

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);

	say("PID ROOT %d", getpid());
	z = fork();
	if (z < 0)
		die("fork: %s", strerror(errno));
	if (z == 0)
		_exit(7);
	say("PID Z %d", z);
	s = spawn_ticker("S");
	r = spawn_ticker("R");

	sleep_ms(350);
	if (kill(s, SIGSTOP))
		die("SIGSTOP %d: %s", s, strerror(errno));
	for (int i = 0; task_state(s, &(pid_t){ 0 }) != 'T'; i++) {
		if (i > 100)
			die("S (pid %d) did not stop", s);
		sleep_ms(10);
	}
	for (int i = 0; task_state(z, &(pid_t){ 0 }) != 'Z'; i++) {
		if (i > 100)
			die("Z (pid %d) did not become a zombie", z);
		sleep_ms(10);
	}
	say("READY");

	for (;;) {
		pause();
		if (final_requested) {
			int st = 0;
			pid_t w = waitpid(z, &st, WNOHANG);

			kill(s, SIGKILL);
			kill(r, SIGKILL);
			waitpid(s, NULL, 0);
			waitpid(r, NULL, 0);
			if (w != z)
				say("FINAL FAIL waitpid(Z=%d) returned %d: %s", z, w,
				    w < 0 ? strerror(errno) : "not a zombie");
			else if (!WIFEXITED(st) || WEXITSTATUS(st) != 7)
				say("FINAL FAIL Z (pid %d) wait status %#x, want exit 7", z, st);
			else {
				say("FINAL OK zombie %d exited with 7", z);
				return 0;
			}
			return 1;
		}
		if (check_requested) {
			check_requested = 0;
			checks++;
			if (check_children(z, s, r, why, sizeof(why)))
				say("CHECK %d FAIL %s", checks, why);
			else
				say("CHECK %d OK zombie=%d stopped=%d running=%d", checks, z, s, r);
		}
	}
}
