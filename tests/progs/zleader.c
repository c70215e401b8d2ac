/*
 * zleader: a process group whose leader is a zombie.
 *
 * Usage: zleader [session]
 *
 * The root (a child subreaper) forks L; L makes its own process group (with
 * "session": its own session, setsid),
 * forks G into it and exits with status 3 (never reaped: a zombie leading
 * the group); G is reparented to the root and prints "G <n>" every 100 ms.
 * Lines: "PID L <pid>", "PID G <pid>", "READY".  SIGUSR1 to the root:
 * "CHECK <k> OK" when L is a zombie child and G's group (and session, with
 * "session") is L's pid;
 * SIGTERM: reaps L (status 3 expected), kills G, "FINAL OK" or "FINAL FAIL".
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define SAY_LINE_MAX 256
#include "say.h"

static volatile sig_atomic_t check_requested, final_requested;
static void on_usr1(int sig) { check_requested = 1; }
static void on_term(int sig) { final_requested = 1; }

static char task_state(pid_t pid)
{
	char path[64], buf[512], *p, st = '?';
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return '?';
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
		sscanf(p + 1, " %c", &st);
	fclose(f);
	return st;
}

int main(int argc, char **argv)
{
	int session = argc > 1 && !strcmp(argv[1], "session");

	int p[2], k = 0, st;
	pid_t l, g;

	prctl(PR_SET_CHILD_SUBREAPER, 1);
	signal(SIGUSR1, on_usr1);
	signal(SIGTERM, on_term);
	if (pipe(p))
		die("pipe failed");
	l = fork();
	if (!l) {
		if (session)
			setsid();
		else
			setpgid(0, 0);
		g = fork();
		if (!g) {
			signal(SIGUSR1, SIG_DFL);
			signal(SIGTERM, SIG_DFL);
			for (unsigned long n = 0;; n++) {
				say("G %lu", n);
				sleep_ms(100);
			}
		}
		if (write(p[1], &g, sizeof(g)) != sizeof(g))
			_exit(1);
		_exit(3);
	}
	if (read(p[0], &g, sizeof(g)) != sizeof(g))
		die("L did not start G");
	while (task_state(l) != 'Z')
		sleep_ms(10);
	say("PID L %d", l);
	say("PID G %d", g);
	say("READY");
	for (;;) {
		if (check_requested) {
			check_requested = 0;
			k++;
			if (task_state(l) != 'Z')
				say("CHECK %d FAIL L %d is not a zombie (%c)", k, l, task_state(l));
			else if (getpgid(g) != l)
				say("CHECK %d FAIL G's group is %d, not %d", k, getpgid(g), l);
			else if (session && getsid(g) != l)
				say("CHECK %d FAIL G's session is %d, not %d", k, getsid(g), l);
			else
				say("CHECK %d OK", k);
		}
		if (final_requested) {
			if (waitpid(l, &st, 0) != l || !WIFEXITED(st) || WEXITSTATUS(st) != 3)
				say("FINAL FAIL L's status 0x%x", st);
			else
				say("FINAL OK");
			kill(g, SIGKILL);
			waitpid(g, NULL, 0);
			return 0;
		}
		sleep_ms(100);
	}
}
