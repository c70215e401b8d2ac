// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Reading /proc.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

char *proc_read_file(pid_t pid, const char *name, size_t *lenp)
{
	char path[128];
	size_t cap = 4096, len = 0;
	char *buf;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	buf = malloc(cap);
	while (buf) {
		ssize_t n;

		if (len + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			free(buf);
			buf = NULL;
			break;
		}
		if (n == 0)
			break;
		len += n;
	}
	close(fd);
	if (buf) {
		buf[len] = 0;
		if (lenp)
			*lenp = len;
	}
	return buf;
}

int proc_read_stat(pid_t pid, pid_t tid, struct proc_stat *st)
{
	char name[64], *buf, *p, *q;
	unsigned long v[52];
	int i = 3;

	if (tid && tid != pid)
		snprintf(name, sizeof(name), "task/%d/stat", tid);
	else
		snprintf(name, sizeof(name), "stat");
	buf = proc_read_file(pid, name, NULL);
	if (!buf)
		return -errno ? -errno : -ESRCH;
	p = strchr(buf, '(');
	q = strrchr(buf, ')');
	if (!p || !q || q < p || q[1] != ' ' || !q[2]) {
		free(buf);
		return -EINVAL;
	}
	memset(st, 0, sizeof(*st));
	snprintf(st->comm, sizeof(st->comm), "%.*s", (int)(q - p - 1), p + 1);
	st->state = q[2];
	p = q + 3;
	memset(v, 0, sizeof(v));
	/* field 4 (ppid) onwards */
	while (*p && i < 52) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		v[i++] = strtoul(p, &q, 10);
		if (q == p) {	/* negative numbers */
			v[i - 1] = strtol(p, &q, 10);
			if (q == p)
				break;
		}
		p = q;
	}
	free(buf);
	st->ppid = v[3];
	st->pgid = v[4];
	st->sid = v[5];
	st->tty_nr = v[6];
	st->flags = v[8];
	st->start_code = v[25];
	st->end_code = v[26];
	st->start_stack = v[27];
	st->exit_signal = v[37];
	st->start_data = v[44];
	st->end_data = v[45];
	st->start_brk = v[46];
	st->arg_start = v[47];
	st->arg_end = v[48];
	st->env_start = v[49];
	st->env_end = v[50];
	st->exit_code = v[51];
	return 0;
}

int ckpt_thread_start(pthread_t *th, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int r;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(th, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -r;
}

int proc_status_field(const char *status, const char *key, char *out, size_t outlen)
{
	size_t kl = strlen(key);
	const char *p = status;

	while (p && *p) {
		if (!strncmp(p, key, kl) && p[kl] == ':') {
			const char *v = p + kl + 1, *e;

			while (*v == ' ' || *v == '\t')
				v++;
			e = strchr(v, '\n');
			if (!e)
				e = v + strlen(v);
			snprintf(out, outlen, "%.*s", (int)(e - v), v);
			return 0;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -ENOENT;
}

static int cmp_pid(const void *a, const void *b)
{
	return *(const pid_t *)a - *(const pid_t *)b;
}

int proc_list_tids(pid_t pid, pid_t **tids, int *n)
{
	char path[64];
	struct dirent *de;
	pid_t *t = NULL;
	int cnt = 0, cap = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		if (cnt == cap) {
			pid_t *nt;
			cap = cap ? cap * 2 : 16;
			nt = realloc(t, cap * sizeof(*t));
			if (!nt) {
				free(t);
				closedir(d);
				return -ENOMEM;
			}
			t = nt;
		}
		t[cnt++] = atoi(de->d_name);
	}
	closedir(d);
	if (cnt)
		qsort(t, cnt, sizeof(*t), cmp_pid);
	/* the thread group leader first */
	for (int i = 0; i < cnt; i++) {
		if (t[i] == pid) {
			memmove(t + 1, t, i * sizeof(*t));
			t[0] = pid;
			break;
		}
	}
	*tids = t;
	*n = cnt;
	return 0;
}

int proc_list_children(pid_t pid, pid_t tid, pid_t **kids, int *n)
{
	char name[64], *buf, *p, *q;
	pid_t *k = NULL;
	int cnt = 0, cap = 0;

	snprintf(name, sizeof(name), "task/%d/children", tid);
	buf = proc_read_file(pid, name, NULL);
	if (!buf)
		return -errno;
	for (p = buf;; p = q) {
		long v = strtol(p, &q, 10);

		if (q == p)
			break;
		if (cnt == cap) {
			pid_t *nk;
			cap = cap ? cap * 2 : 8;
			nk = realloc(k, cap * sizeof(*k));
			if (!nk) {
				free(k);
				free(buf);
				return -ENOMEM;
			}
			k = nk;
		}
		k[cnt++] = v;
	}
	free(buf);
	*kids = k;
	*n = cnt;
	return 0;
}
