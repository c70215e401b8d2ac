// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * dfork PIDFILE CMD [ARGS...]: start CMD as a classic daemon does: fork,
 * setsid() in the child, fork again and exit the child, so that CMD runs
 * in a session (and process group) whose leader has exited.  CMD's pid is
 * written to PIDFILE (then renamed into place: readers see it whole), the
 * session id to PIDFILE.sid.  The first process waits for the second to
 * exit, then exits 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void write_file(const char *path, long v)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "%ld\n", v) < 0 || fclose(f) || rename(tmp, path)) {
		perror(path);
		_exit(1);
	}
}

int main(int argc, char **argv)
{
	char sidfile[4096];
	pid_t p;
	int st;

	if (argc < 3) {
		fprintf(stderr, "usage: dfork PIDFILE CMD [ARGS...]\n");
		return 2;
	}
	p = fork();
	if (p < 0)
		return 1;
	if (p > 0) {
		if (waitpid(p, &st, 0) < 0 || !WIFEXITED(st))
			return 1;
		return WEXITSTATUS(st);
	}
	if (setsid() < 0)
		_exit(1);
	p = fork();
	if (p < 0)
		_exit(1);
	if (p > 0)
		_exit(0);	/* the session leader goes */
	/* wait until the leader is gone: its pid is no process any more */
	while (getppid() == getsid(0))
		usleep(1000);
	snprintf(sidfile, sizeof(sidfile), "%s.sid", argv[1]);
	write_file(sidfile, getsid(0));
	write_file(argv[1], getpid());
	execvp(argv[2], argv + 2);
	perror(argv[2]);
	_exit(127);
}
