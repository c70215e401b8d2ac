/*
 * privusers: run a command in a user namespace made the way systemd makes
 * one for PrivateUsers=yes, for tests/lib-sandbox.sh: after the other
 * namespaces (they stay owned by the initial user namespace), with root and
 * the service's uid and gid mapped to themselves and everything else to
 * nobody, setgroups denied.  The groups and gids are set before (setgroups
 * is denied inside), the uids after, as systemd's User= and Group= do.
 *
 * Usage: privusers UID GID CMD [ARGS...]
 *
 * A child that stays in the parent namespace writes the maps (two lines
 * need CAP_SETUID and CAP_SETGID there), then the command runs with the
 * capabilities root keeps inside (all of them for uid 0, none otherwise).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "privusers: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void put(pid_t pid, const char *file, const char *s)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
	fd = open(path, O_WRONLY);
	if (fd < 0 || write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		die(path);
	close(fd);
}

int main(int argc, char **argv)
{
	char umap[64], gmap[64], c;
	int ready[2], done[2], st;
	uid_t uid;
	gid_t gid;
	pid_t parent = getpid(), child;

	if (argc < 4) {
		fprintf(stderr, "usage: privusers UID GID CMD [ARGS...]\n");
		return 2;
	}
	uid = (uid_t)atoi(argv[1]);
	gid = (gid_t)atoi(argv[2]);
	if (setgroups(1, &gid) || setresgid(gid, gid, gid))
		die("setgroups/setresgid");
	if (uid)
		snprintf(umap, sizeof(umap), "0 0 1\n%u %u 1\n", uid, uid);
	else
		snprintf(umap, sizeof(umap), "0 0 1\n");
	if (gid)
		snprintf(gmap, sizeof(gmap), "0 0 1\n%u %u 1\n", gid, gid);
	else
		snprintf(gmap, sizeof(gmap), "0 0 1\n");
	if (pipe(ready) || pipe(done))
		die("pipe");
	child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		close(ready[1]);
		close(done[0]);
		if (read(ready[0], &c, 1) != 1)
			_exit(1);
		put(parent, "setgroups", "deny");
		put(parent, "uid_map", umap);
		put(parent, "gid_map", gmap);
		_exit(write(done[1], "", 1) == 1 ? 0 : 1);
	}
	close(ready[0]);
	close(done[1]);
	if (unshare(CLONE_NEWUSER))
		die("unshare(CLONE_NEWUSER)");
	if (write(ready[1], "", 1) != 1 || read(done[0], &c, 1) != 1)
		die("the maps were not written");
	if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st))
		die("the child that writes the maps");
	close(ready[1]);
	close(done[0]);
	if (uid && setresuid(uid, uid, uid))
		die("setresuid");
	execvp(argv[3], argv + 3);
	die(argv[3]);
}
