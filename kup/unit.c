// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * systemd services as trees (kup dump/switch --unit, kup restore --unit).
 *
 * A service is kept as the tree of its main process: every process of the
 * unit's control group (and its sub-groups) must be that process or one of
 * its descendants, or the dump would silently leave some behind.  The unit's
 * name goes into the inventory.  On the new boot the initramfs' kup hold
 * writes it to /run/kup/unit, kup-generator (systemd-units/) gives the unit
 * a drop-in whose start restores the tree from the store (so the restored
 * processes are born in the unit's cgroup, with the unit's main PID), and
 * kup-restore.service leaves that checkpoint alone.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kup.h"

char *kup_capture(char *const argv[], int *status)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	int pfd[2];
	pid_t pid;

	*status = -1;
	if (!buf || pipe2(pfd, O_CLOEXEC) < 0) {
		free(buf);
		return NULL;
	}
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		free(buf);
		return NULL;
	}
	if (!pid) {
		int null = open("/dev/null", O_RDWR);

		dup2(pfd[1], 1);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 2);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		ssize_t n;

		if (len + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		n = read(pfd[0], buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += n;
	}
	buf[len] = 0;
	close(pfd[0]);
	while (waitpid(pid, status, 0) < 0)
		if (errno != EINTR) {
			*status = -1;
			break;
		}
	return buf;
}

bool kup_unit_name_ok(const char *unit)
{
	size_t n = strlen(unit);

	if (n < 9 || n > 200 || strcmp(unit + n - 8, ".service") || unit[0] == '.' || unit[0] == '-')
		return false;
	for (const char *p = unit; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr(":_.@-", *p))
			return false;
	return true;
}

/* Value of KEY= in `systemctl show` output, or NULL. */
static const char *prop(const char *out, const char *key, char *val, size_t len)
{
	size_t kl = strlen(key);

	for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (!strncmp(l, key, kl) && l[kl] == '=') {
			size_t vl = strcspn(l + kl + 1, "\n");

			if (vl >= len)
				vl = len - 1;
			memcpy(val, l + kl + 1, vl);
			val[vl] = 0;
			return val;
		}
	}
	return NULL;
}

pid_t kup_ppid_of(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd, ppid = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return 0;
	return ppid;
}

static bool in_tree(pid_t pid, pid_t root)
{
	for (int depth = 0; pid > 1 && depth < 4096; depth++) {
		if (pid == root)
			return true;
		pid = kup_ppid_of(pid);
	}
	return pid == root;
}

/* Every process of cgroup directory @dir (recursively) is in @root's tree. */
static int check_cgroup(const char *unit, const char *dir, pid_t root, int depth)
{
	char path[PATH_MAX], comm[64];
	struct dirent *de;
	FILE *f;
	DIR *d;
	int pid, ret = 0;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	f = fopen(path, "re");
	if (!f)
		return log_errno(errno, "%s: cannot read %s", unit, path);
	while (!ret && fscanf(f, "%d", &pid) == 1) {
		if (in_tree(pid, root))
			continue;
		/* gone since the list was read: a short-lived child of the tree
		 * (a shell loop's sleep), whose parent chain cannot be read */
		if (kill(pid, 0) < 0 && errno == ESRCH)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		FILE *c = fopen(path, "re");

		if (!c || !fgets(comm, sizeof(comm), c))
			strcpy(comm, "?");
		if (c)
			fclose(c);
		comm[strcspn(comm, "\n")] = 0;
		log_err("%s: pid %d (%s) is not in the tree of the main pid %d; kup keeps a "
			"service as the tree of its main process", unit, pid, comm, root);
		ret = -EINVAL;
	}
	fclose(f);
	if (ret || depth > 16)
		return ret;
	d = opendir(dir);
	if (!d)
		return 0;
	while (!ret && (de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		ret = check_cgroup(unit, path, root, depth + 1);
	}
	closedir(d);
	return ret;
}

int kup_unit_main_pid(const char *unit, pid_t *root)
{
	char *argv[] = { "systemctl", "show", "-p", "LoadState", "-p", "ActiveState", "-p",
			 "MainPID", "-p", "ControlGroup", "--", (char *)unit, NULL };
	char load[64], active[64], mpid[32], cg[PATH_MAX - 32], dir[PATH_MAX];
	char *out, *end;
	int status, ret = 0;
	long v;

	if (!kup_unit_name_ok(unit)) {
		log_err("'%s' is not the name of a service unit (NAME.service)", unit);
		return -EINVAL;
	}
	if (access("/run/systemd/system", F_OK)) {
		log_err("%s: systemd is not running here", unit);
		return -ENOENT;
	}
	out = kup_capture(argv, &status);
	if (!out || !WIFEXITED(status) || WEXITSTATUS(status)) {
		log_err("%s: `systemctl show` failed%s", unit,
			out && WIFEXITED(status) && WEXITSTATUS(status) == 127 ?
			" (no systemctl: is this a systemd machine?)" : "");
		free(out);
		return -EIO;
	}
	if (!prop(out, "LoadState", load, sizeof(load)) || strcmp(load, "loaded")) {
		log_err("%s: no such unit (LoadState=%s)", unit, prop(out, "LoadState", load, sizeof(load)) ? load : "?");
		ret = -ENOENT;
	} else if (!prop(out, "ActiveState", active, sizeof(active)) || strcmp(active, "active")) {
		log_err("%s is not running (ActiveState=%s)", unit, active);
		ret = -ESRCH;
	} else if (!prop(out, "MainPID", mpid, sizeof(mpid)) ||
		   (v = strtol(mpid, &end, 10)) <= 0 || *end) {
		log_err("%s has no main process (MainPID=%s)", unit, mpid);
		ret = -ESRCH;
	} else {
		*root = v;
		if (prop(out, "ControlGroup", cg, sizeof(cg)) && cg[0] == '/') {
			snprintf(dir, sizeof(dir), "/sys/fs/cgroup%s", cg);
			ret = check_cgroup(unit, dir, *root, 0);
		}
	}
	free(out);
	return ret;
}

/*
 * The pid of a kup-lazy in @unit's cgroup (its top level, where the restore
 * that forked it ran), 0 if none (or the unit has no cgroup).  While one
 * runs, the restored tree's memory is not all in: the tree may still be
 * killed for a page that cannot be read back.
 */
pid_t kup_unit_lazy_pid(const char *unit)
{
	char *argv[] = { "systemctl", "show", "-p", "ControlGroup", "--", (char *)unit, NULL };
	char cg[PATH_MAX - 32], path[PATH_MAX], comm[32];
	pid_t found = 0;
	char *out;
	int status, pid;
	FILE *f;

	out = kup_capture(argv, &status);
	if (!out || !WIFEXITED(status) || WEXITSTATUS(status) ||
	    !prop(out, "ControlGroup", cg, sizeof(cg)) || cg[0] != '/') {
		free(out);
		return 0;
	}
	free(out);
	snprintf(path, sizeof(path), "/sys/fs/cgroup%s/cgroup.procs", cg);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (!found && fscanf(f, "%d", &pid) == 1) {
		FILE *c;

		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		c = fopen(path, "re");
		if (c && fgets(comm, sizeof(comm), c) && !strcmp(comm, "kup-lazy\n"))
			found = pid;
		if (c)
			fclose(c);
	}
	fclose(f);
	return found;
}

/*
 * Remove @unit's line from KUP_UNIT_FILE (the units kept across the switch,
 * one per line, written by kup hold at boot) under KUP_UNIT_FILE.lock, the
 * file itself when it was the last.  kup-generator then no longer makes
 * its start a restore after the next daemon-reload.
 */
void kup_unit_forget(const char *unit)
{
	char buf[256], tmp[sizeof(KUP_UNIT_FILE) + 8];
	bool found = false, others = false;
	FILE *f, *o = NULL;
	int lock = open(KUP_UNIT_FILE ".lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (lock >= 0)
		while (flock(lock, LOCK_EX) < 0 && errno == EINTR)
			;
	f = fopen(KUP_UNIT_FILE, "re");
	if (!f) {
		if (lock >= 0)
			close(lock);
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s.new", KUP_UNIT_FILE);
	while (fgets(buf, sizeof(buf), f)) {
		buf[strcspn(buf, "\n")] = 0;
		if (!strcmp(buf, unit)) {
			found = true;
			continue;
		}
		if (!buf[0])
			continue;
		if (!o && !(o = fopen(tmp, "we")))
			break;
		fprintf(o, "%s\n", buf);
		others = true;
	}
	fclose(f);
	if (o && fclose(o))
		others = false;
	if (!found) {
		if (o)
			unlink(tmp);
	} else if (others ? rename(tmp, KUP_UNIT_FILE) : unlink(KUP_UNIT_FILE) && errno != ENOENT) {
		log_warn("cannot update %s: %s", KUP_UNIT_FILE, strerror(errno));
	}
	if (lock >= 0)
		close(lock);
}
