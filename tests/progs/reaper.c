/*
 * reaper: run a command as a child subreaper and leave no process behind.
 *
 * Usage: reaper CMD [ARGS...]
 *
 * PID 1 on the test hosts does not reap orphans, so a killed or detached
 * process tree would leave zombies holding the very PIDs a later restore
 * needs.  reaper makes itself a child subreaper (PR_SET_CHILD_SUBREAPER), so
 * every orphan below it is reparented to it, runs CMD, and reaps every child
 * (waitpid(-1)) until CMD exits.  Then it SIGKILLs and reaps whatever is left
 * below it (walking /proc/<pid>/stat for ppid == self, repeatedly, since
 * killing a child reparents that child's children to us).
 *
 * SIGTERM, SIGINT and SIGHUP are forwarded to CMD.  Exit status: CMD's
 * (128+N when CMD was killed by signal N; 127 when it could not be run).
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t cmd_pid;

static void forward(int sig)
{
	if (cmd_pid > 0)
		kill(cmd_pid, sig);
}

/* Parent pid from /proc/PID/stat; comm may hold spaces and ')'. */
static pid_t stat_ppid(const char *pid)
{
	char path[300], buf[512], *p;
	int ppid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f)) {
		p = strrchr(buf, ')');
		if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
			ppid = -1;
	}
	fclose(f);
	return ppid;
}

/* SIGKILL every process whose parent is us; returns how many we found. */
static int kill_children(void)
{
	pid_t self = getpid();
	struct dirent *de;
	int found = 0;
	DIR *d;

	d = opendir("/proc");
	if (!d) {
		perror("reaper: opendir /proc");
		return 0;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		if (stat_ppid(de->d_name) != self)
			continue;
		kill(atoi(de->d_name), SIGKILL);
		found++;
	}
	closedir(d);
	return found;
}

static void reap_all_nohang(void)
{
	while (waitpid(-1, NULL, WNOHANG | __WALL) > 0)
		;
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	int status = 0, quiet_rounds = 0;
	pid_t pid;

	if (argc < 2) {
		fprintf(stderr, "usage: reaper CMD [ARGS...]\n");
		return 2;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) {
		perror("reaper: PR_SET_CHILD_SUBREAPER");
		return 127;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = forward;	/* no SA_RESTART: waitpid sees EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	pid = fork();
	if (pid < 0) {
		perror("reaper: fork");
		return 127;
	}
	if (pid == 0) {
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		execvp(argv[1], argv + 1);
		fprintf(stderr, "reaper: exec %s: %s\n", argv[1], strerror(errno));
		_exit(127);
	}
	cmd_pid = pid;

	for (;;) {
		int st;
		pid_t w = waitpid(-1, &st, __WALL);

		if (w == pid) {
			status = st;
			break;
		}
		if (w < 0 && errno == ECHILD) {	/* cannot happen before CMD */
			status = 127 << 8;
			break;
		}
	}
	cmd_pid = 0;

	/*
	 * Kill and reap what is left.  Stop after a few rounds in a row found
	 * nothing: a dying child may reparent its own children to us a moment
	 * after we looked.
	 */
	while (quiet_rounds < 3) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };

		if (kill_children())
			quiet_rounds = 0;
		else
			quiet_rounds++;
		nanosleep(&ts, NULL);
		reap_all_nohang();
	}

	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}
