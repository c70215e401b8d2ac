// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Trees to keep, checked before anything is loaded or frozen: each for
 * what its dump would refuse (kup_tree_check: ckpt_dump_check, the live
 * tree looked at by the dump's own code), and several kept at once (kup
 * dump/switch with several -t/--unit) together (kup_trees_check).
 *
 * Each tree is dumped and restored on its own (kup/parts.c: a unit's start
 * restores its own tree), so two trees must not overlap and must share
 * nothing that a restore would have to make in both at once: a pipe, a
 * socket (the same one, or the two ends of a unix socket connection) or
 * shared memory (System V, POSIX /dev/shm, memfd, shared anonymous).  Such
 * trees cannot be restored as two, and two units cannot be restored as one
 * (each comes back into its own control group): the switch is refused,
 * naming both trees and the object, and nothing changes.
 *
 * Unix socket connections are seen in kup's own network namespace (the
 * kernel's socket diagnostics are per namespace); connections between trees
 * in another one are not seen here, and the dump keeps each end as closed
 * by its peer (--external-peers=close) or refuses (refuse).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "ckpt.h"
#include "kup.h"

const char *kup_tree_name(const struct kup_tree *t, char *buf, size_t len)
{
	if (t->unit)
		snprintf(buf, len, "%s (pid %d)", t->unit, t->pid);
	else
		snprintf(buf, len, "the tree of pid %d", t->pid);
	return buf;
}

int kup_tree_check(const struct kup_tree *t, const struct ckpt_dump_opts *tmpl)
{
	struct ckpt_dump_opts o = { 0 };

	if (tmpl)
		o = *tmpl;
	o.pid = t->pid;
	o.unit = t->unit;
	o.store = NULL;
	o.pre = NULL;
	return ckpt_dump_check(&o);
}

enum { OBJ_PIPE, OBJ_SOCK, OBJ_SHM };

struct obj {
	int kind;
	unsigned long long dev, ino;
	int tree;
	pid_t pid;
	int fd;			/* -1: a mapping */
	bool via_peer;		/* the other end of the fd's unix socket */
	unsigned long long own;	/* via_peer: the fd's own socket */
	char path[96];		/* OBJ_SHM */
};

struct objs {
	struct obj *v;
	size_t n, cap;
};

static struct obj *obj_add(struct objs *o)
{
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 256;
		struct obj *v = realloc(o->v, cap * sizeof(*v));

		if (!v)
			return NULL;
		o->v = v;
		o->cap = cap;
	}
	memset(&o->v[o->n], 0, sizeof(o->v[0]));
	return &o->v[o->n++];
}

struct peer {
	unsigned int ino, peer;
};

struct peers {
	struct peer *v;
	size_t n;
};

static int cmp_peer(const void *a, const void *b)
{
	unsigned int x = ((const struct peer *)a)->ino, y = ((const struct peer *)b)->ino;

	return (x > y) - (x < y);
}

/* Every unix socket of this network namespace with a peer. */
static void unix_peers(struct peers *pp)
{
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req r;
	} req = {
		.nlh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 1 },
		.r = { .sdiag_family = AF_UNIX, .udiag_states = ~0u, .udiag_show = UDIAG_SHOW_PEER },
	};
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	static char buf[32768];
	size_t cap = 0;
	bool done = false;
	int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);

	if (s < 0)
		return;
	if (sendto(s, &req, sizeof(req), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto out;
	while (!done) {
		ssize_t r = recv(s, buf, sizeof(buf), 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)r);
		     h = NLMSG_NEXT(h, r)) {
			const struct unix_diag_msg *m = NLMSG_DATA(h);
			struct rtattr *a;
			int len;

			if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
				done = true;
				break;
			}
			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
			    h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
				continue;
			len = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
			for (a = (struct rtattr *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
				if (a->rta_type != UNIX_DIAG_PEER || RTA_PAYLOAD(a) < 4)
					continue;
				if (pp->n == cap) {
					struct peer *v = realloc(pp->v, (cap ? cap * 2 : 256) * sizeof(*v));

					if (!v)
						goto out;
					pp->v = v;
					cap = cap ? cap * 2 : 256;
				}
				pp->v[pp->n].ino = m->udiag_ino;
				memcpy(&pp->v[pp->n].peer, RTA_DATA(a), 4);
				pp->n++;
			}
		}
	}
	if (pp->n)
		qsort(pp->v, pp->n, sizeof(*pp->v), cmp_peer);
out:
	close(s);
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

/* The tree @pid is in, or -1. */
static int tree_of(pid_t pid, const struct kup_tree *t, int n)
{
	for (int depth = 0; pid > 1 && depth < 4096; depth++) {
		for (int i = 0; i < n; i++)
			if (t[i].pid == pid)
				return i;
		pid = kup_ppid_of(pid);
	}
	return -1;
}

static int scan_fds(struct objs *o, const struct peers *pp, pid_t pid, int tree)
{
	char path[64], link[128];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (!d)
		return 0;	/* gone, or a zombie */
	while ((de = readdir(d))) {
		unsigned long long ino;
		int kind, fd;
		ssize_t l;
		struct obj *ob;

		if (de->d_name[0] == '.')
			continue;
		fd = atoi(de->d_name);
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
		l = readlink(path, link, sizeof(link) - 1);
		if (l <= 0)
			continue;
		link[l] = 0;
		if (sscanf(link, "pipe:[%llu]", &ino) == 1)
			kind = OBJ_PIPE;
		else if (sscanf(link, "socket:[%llu]", &ino) == 1)
			kind = OBJ_SOCK;
		else if (link[0] == '/') {
			/* a named FIFO, or a memfd */
			struct stat st;
			bool fifo;

			if (stat(path, &st))
				continue;
			fifo = S_ISFIFO(st.st_mode);
			if (!fifo && strncmp(link, "/memfd:", 7))
				continue;
			ob = obj_add(o);
			if (!ob)
				goto nomem;
			*ob = (struct obj){ .kind = fifo ? OBJ_PIPE : OBJ_SHM, .dev = st.st_dev,
					    .ino = st.st_ino, .tree = tree, .pid = pid, .fd = fd };
			snprintf(ob->path, sizeof(ob->path), "%.95s", link);
			continue;
		} else
			continue;
		ob = obj_add(o);
		if (!ob)
			goto nomem;
		*ob = (struct obj){ .kind = kind, .ino = ino, .tree = tree, .pid = pid, .fd = fd };
		if (kind == OBJ_SOCK && pp->n) {
			struct peer key = { .ino = ino }, *p;

			p = bsearch(&key, pp->v, pp->n, sizeof(*pp->v), cmp_peer);
			if (p && p->peer) {
				ob = obj_add(o);
				if (!ob)
					goto nomem;
				*ob = (struct obj){ .kind = OBJ_SOCK, .ino = p->peer, .tree = tree,
						    .pid = pid, .fd = fd, .via_peer = true, .own = ino };
			}
		}
	}
	closedir(d);
	return 0;
nomem:
	closedir(d);
	return log_errno(ENOMEM, "pid %d", pid);
}

/* Shared memory mappings: System V, /dev/shm, memfd, shared anonymous. */
static int scan_maps(struct objs *o, pid_t pid, int tree)
{
	char path[64], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char perms[8], name[400] = "";
		unsigned int maj, min;
		unsigned long long ino;
		struct obj *ob;

		if (sscanf(line, "%*x-%*x %7s %*x %x:%x %llu %399[^\n]", perms, &maj, &min, &ino,
			   name) < 4 || perms[3] != 's' || !ino)
			continue;
		if (strncmp(name, "/SYSV", 5) && strncmp(name, "/dev/shm/", 9) &&
		    strncmp(name, "/memfd:", 7) && strncmp(name, "/dev/zero", 9))
			continue;
		ob = obj_add(o);
		if (!ob) {
			fclose(f);
			return log_errno(ENOMEM, "pid %d", pid);
		}
		*ob = (struct obj){ .kind = OBJ_SHM, .dev = makedev(maj, min), .ino = ino,
				    .tree = tree, .pid = pid, .fd = -1 };
		snprintf(ob->path, sizeof(ob->path), "%.95s", name);
	}
	fclose(f);
	return 0;
}

static int cmp_obj(const void *a, const void *b)
{
	const struct obj *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind - y->kind;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	return x->tree - y->tree;
}

static const char *where(const struct obj *o, char *buf, size_t len)
{
	if (o->fd >= 0)
		snprintf(buf, len, "pid %d fd %d", o->pid, o->fd);
	else
		snprintf(buf, len, "pid %d (a mapping)", o->pid);
	return buf;
}

static void refuse(const struct kup_tree *t, const struct obj *a, const struct obj *b)
{
	char na[256], nb[256], wa[64], wb[64], what[200];

	if (a->kind == OBJ_PIPE && a->path[0])
		snprintf(what, sizeof(what), "a FIFO (%s)", a->path);
	else if (a->kind == OBJ_PIPE)
		snprintf(what, sizeof(what), "a pipe (pipe:[%llu])", a->ino);
	else if (a->kind == OBJ_SHM)
		snprintf(what, sizeof(what), "shared memory (%s)", a->path);
	else if (a->via_peer || b->via_peer)
		snprintf(what, sizeof(what), "a unix socket connection (socket:[%llu] and socket:[%llu])",
			 a->via_peer ? a->own : a->ino, b->via_peer ? b->own : b->ino);
	else
		snprintf(what, sizeof(what), "a socket (socket:[%llu])", a->ino);
	log_err("%s and %s share %s: %s and %s; each tree is kept and restored on its own, "
		"so two trees kept at once must share nothing (keep one of them only)",
		kup_tree_name(&t[a->tree], na, sizeof(na)), kup_tree_name(&t[b->tree], nb, sizeof(nb)),
		what, where(a, wa, sizeof(wa)), where(b, wb, sizeof(wb)));
}

int kup_trees_check(const struct kup_tree *t, int n)
{
	struct objs o = { 0 };
	struct peers pp = { 0 };
	struct dirent *de;
	int ret = 0;
	DIR *d;

	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++) {
			char a[256], b[256];

			if (i == j || !in_tree(t[j].pid, t[i].pid) || (t[i].pid == t[j].pid && j < i))
				continue;
			if (t[i].pid == t[j].pid)
				log_err("%s and %s are the same tree", kup_tree_name(&t[i], a, sizeof(a)),
					kup_tree_name(&t[j], b, sizeof(b)));
			else
				log_err("the trees of %s and %s overlap: the second is inside the first",
					kup_tree_name(&t[i], a, sizeof(a)), kup_tree_name(&t[j], b, sizeof(b)));
			ret = -EINVAL;
		}
	if (ret || n < 2)
		return ret;
	unix_peers(&pp);
	d = opendir("/proc");
	if (!d)
		return log_errno(errno, "/proc");
	while (!ret && (de = readdir(d))) {
		pid_t pid = atoi(de->d_name);
		int tree;

		if (pid <= 1)
			continue;
		tree = tree_of(pid, t, n);
		if (tree < 0)
			continue;
		ret = scan_fds(&o, &pp, pid, tree);
		if (!ret)
			ret = scan_maps(&o, pid, tree);
	}
	closedir(d);
	if (!ret && o.n)
		qsort(o.v, o.n, sizeof(*o.v), cmp_obj);
	/* the same object in two trees: a run of equal keys with two trees
	 * (two ends seen through their peers both outside is no sharing) */
	for (size_t i = 0; !ret && i < o.n;) {
		size_t j = i + 1;

		while (j < o.n && o.v[j].kind == o.v[i].kind && o.v[j].ino == o.v[i].ino &&
		       o.v[j].dev == o.v[i].dev)
			j++;
		for (size_t a = i; a < j && !ret; a++)
			for (size_t b = a + 1; b < j && !ret; b++)
				if (o.v[a].tree != o.v[b].tree && !(o.v[a].via_peer && o.v[b].via_peer)) {
					refuse(t, &o.v[a], &o.v[b]);
					ret = -EINVAL;
				}
		i = j;
	}
	free(o.v);
	free(pp.v);
	return ret;
}
