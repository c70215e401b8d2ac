// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The mount namespace of a tree that has one of its own: a service's
 * sandbox (PrivateTmp=, ProtectSystem=, ProtectHome=, PrivateDevices=,
 * ReadOnlyPaths=, BindPaths=...).  docs/design.md, "Sandboxes".
 *
 * Dump: the tree's /proc/PID/mountinfo is compared with kup's own.  Each
 * mount is classified (kup-mntns.proto, mnt_kind): kept as kup's namespace
 * has it (its per-mount options may differ: a read-only remount), a bind of
 * a path kup sees, a new proc/sysfs/mqueue/devpts, a tmpfs of its own (its
 * files are saved), or a bind of a systemd-private-* directory (a private
 * /tmp, whose host directory does not survive a reboot: its files are
 * saved and it is made fresh).  Anything else is refused, naming the pid,
 * the mount point and why, before anything changes.
 *
 * Restore: the restorer unshares its mount namespace before it opens any
 * file of the tree or creates any task, makes every mount a slave (nothing
 * propagates back to the host), takes clones of the bind sources while
 * they are still where kup sees them, unmounts what the tree's namespace
 * did not have, mounts what it had in the dumped order, restores the files,
 * then compares its mountinfo with the dumped one (up to mount ids, device
 * numbers and peer group numbers) and fails on any difference.  The tasks,
 * forks of the restorer, are born inside; the restorer goes back to its own
 * namespace once the tree runs.
 *
 * With it, the sandbox's user namespace (PrivateUsers=: its maps, made
 * again for the tasks to join, restore.c and task-creds.c) and UTS
 * namespace (ProtectHostname=: its names, the restorer's own while the
 * tasks are born).  docs/design.md, "User namespaces".
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/mount.h>
#include <linux/nsfs.h>
#include <linux/openat2.h>

#include "internal.h"
#include "kup-mntns.pb-c.h"

/* Bounds, checked at dump (refused) and restore (image rejected). */
#define MNT_MAX			1024		/* mounts in one namespace */
#define MNT_FILES_MAX		65536		/* files of all its tmpfs and private dirs */
#define MNT_CONTENT_MAX		(64u << 20)	/* bytes of those files */
#define MNT_PASSES_MAX		64		/* unmount passes at restore */
#define USERNS_EXTENTS_MAX	340		/* lines of a uid_map (the kernel's bound) */

struct mnt_info {
	int id, parent;
	unsigned int maj, min;
	char *root, *mp, *opts, *prop, *fstype, *source, *sb;
	int kind;		/* dump: MntKind, 0 while unknown */
	bool matched;		/* restore: a dumped MNT_KEPT mount */
};

struct mnt_table {
	struct mnt_info *m;
	size_t n;
	char *buf;
};

static void table_free(struct mnt_table *t)
{
	free(t->m);
	free(t->buf);
	memset(t, 0, sizeof(*t));
}

/* Optional fields ("shared:3 master:1 unbindable") as kinds only. */
static void prop_kinds(char *fields, char *out, size_t len)
{
	char *save = NULL;

	out[0] = 0;
	for (char *f = strtok_r(fields, " ", &save); f; f = strtok_r(NULL, " ", &save)) {
		const char *k = !strncmp(f, "shared:", 7) ? "shared" :
				!strncmp(f, "master:", 7) ? "master" :
				!strcmp(f, "unbindable") ? "unbindable" : NULL;

		if (!k)
			continue;
		if (out[0])
			strncat(out, " ", len - strlen(out) - 1);
		strncat(out, k, len - strlen(out) - 1);
	}
}

/* Split one mountinfo line in place. */
static int parse_line(char *line, struct mnt_info *m)
{
	char *f[6], *sep, *save = NULL, *rest;
	int i;

	memset(m, 0, sizeof(*m));
	sep = strstr(line, " - ");
	if (!sep)
		return -EINVAL;
	*sep = 0;
	rest = sep + 3;
	if (sscanf(line, "%d %d %u:%u", &m->id, &m->parent, &m->maj, &m->min) != 4)
		return -EINVAL;
	for (i = 0; i < 6; i++) {
		f[i] = strtok_r(i ? NULL : line, " ", &save);
		if (!f[i])
			return -EINVAL;
	}
	m->root = f[3];
	m->mp = f[4];
	m->opts = f[5];
	m->prop = save && *save ? save : save + strlen(save);
	m->fstype = strtok_r(rest, " ", &save);
	m->source = strtok_r(NULL, " ", &save);
	m->sb = strtok_r(NULL, " ", &save);
	if (!m->fstype || !m->source || !m->sb)
		return -EINVAL;
	files_unescape(m->root);
	files_unescape(m->mp);
	files_unescape(m->source);
	return 0;
}

/* mountinfo of the /proc/PID directory @pfd: it reads on while the
 * restore has the namespace's /proc unmounted. */
static char *read_mountinfo_at(int pfd)
{
	int fd = openat(pfd, "mountinfo", O_RDONLY | O_CLOEXEC);
	size_t len = 0, cap = 65536;
	char *buf = fd >= 0 ? malloc(cap) : NULL;
	ssize_t n;

	while (buf && (n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 4096) {
			char *b = realloc(buf, cap * 2);

			if (!b) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = b;
			cap *= 2;
		}
	}
	if (buf && n < 0) {
		free(buf);
		buf = NULL;
	}
	if (buf)
		buf[len] = 0;
	if (fd >= 0)
		close(fd);
	return buf;
}

/* /proc/@pid/mountinfo, or through @pfd (a /proc/PID directory) if >= 0 */
static int table_read(pid_t pid, int pfd, struct mnt_table *t)
{
	char *line, *save = NULL;
	size_t cap = 0;

	memset(t, 0, sizeof(*t));
	errno = 0;
	t->buf = pfd >= 0 ? read_mountinfo_at(pfd) : proc_read_file(pid, "mountinfo", NULL);
	if (!t->buf)
		return log_errno(errno ? errno : EIO, "pid %d: cannot read /proc/%d/mountinfo",
				 pid, pid);
	for (line = strtok_r(t->buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct mnt_info m;

		if (parse_line(line, &m)) {
			log_err("pid %d: cannot parse a line of /proc/%d/mountinfo", pid, pid);
			table_free(t);
			return -EINVAL;
		}
		if (t->n == cap) {
			struct mnt_info *n;

			cap = cap ? 2 * cap : 64;
			n = realloc(t->m, cap * sizeof(*n));
			if (!n) {
				table_free(t);
				return -ENOMEM;
			}
			t->m = n;
		}
		t->m[t->n++] = m;
	}
	/* the optional fields as kinds, in place (they are at most as long) */
	for (size_t i = 0; i < t->n; i++) {
		char k[64];

		prop_kinds(t->m[i].prop, k, sizeof(k));
		strcpy(t->m[i].prop, k);
	}
	return 0;
}

static struct mnt_info *table_find_id(struct mnt_table *t, int id)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->m[i].id == id)
			return &t->m[i];
	return NULL;
}

/* nsfs mounts pin namespaces of the host (/run/netns/NAME): they are not
 * the service's, are not reproduced and are left out of the comparison. */
static bool ignored(const struct mnt_info *m)
{
	return !strcmp(m->fstype, "nsfs");
}

static bool is_virtual(const char *fstype)
{
	return !strcmp(fstype, "proc") || !strcmp(fstype, "sysfs") ||
	       !strcmp(fstype, "mqueue") || !strcmp(fstype, "devpts");
}

/* "/a/b" is @prefix or below it (by components). */
static const char *path_below(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	if (!strcmp(prefix, "/"))
		return strcmp(path, "/") ? path : "";
	if (strncmp(path, prefix, n) || (path[n] && path[n] != '/'))
		return NULL;
	return path + n;
}

/* The systemd-private-* component of @path (a private /tmp's host dir). */
static const char *private_component(const char *path)
{
	const char *p = strstr(path, "/systemd-private-");

	return p && p[17] ? p + 1 : NULL;
}

/* A private /tmp's host directory is made in /tmp or /var/tmp, nowhere else. */
static bool private_in_tmp(const char *src)
{
	const char *p = private_component(src);

	return p && ((p - src == 5 && !strncmp(src, "/tmp/", 5)) ||
		     (p - src == 9 && !strncmp(src, "/var/tmp/", 9))) && !strstr(p, "/.");
}

static uint64_t ts_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000ull + (uint64_t)ts->tv_nsec;
}

/* ---- dump ---- */

struct walk {
	pid_t pid;
	const char *mp;
	dev_t dev;
	MntEntry *e;
	size_t cap;
	size_t *nfiles;
	uint64_t *bytes;
	/* files with several names seen so far: inode, index in e->files */
	struct walk_link { ino_t ino; uint32_t idx; } *links;
	size_t nlinks;
};

/* The index of the file @st already listed under another name, or -1
 * (then it is remembered if it has other names). */
static int64_t walk_link(struct walk *w, const struct stat *st)
{
	struct walk_link *n;

	if (S_ISDIR(st->st_mode) || st->st_nlink < 2)
		return -1;
	for (size_t i = 0; i < w->nlinks; i++)
		if (w->links[i].ino == st->st_ino)
			return w->links[i].idx;
	n = realloc(w->links, (w->nlinks + 1) * sizeof(*n));
	if (!n)
		return -1;	/* it is copied, as a file of one name */
	w->links = n;
	w->links[w->nlinks++] = (struct walk_link){ st->st_ino, (uint32_t)(w->e->n_files - 1) };
	return -1;
}

static int walk_add(struct walk *w, const char *rel, int dfd, const char *name,
		    const struct stat *st)
{
	MntFile *f;

	if (*w->nfiles >= MNT_FILES_MAX) {
		log_err("pid %d: mount %s: more than %d files in the namespace's own "
			"filesystems: not supported", w->pid, w->mp, MNT_FILES_MAX);
		return -EOPNOTSUPP;
	}
	if (w->e->n_files == w->cap) {
		MntFile **n;

		w->cap = w->cap ? 2 * w->cap : 32;
		n = realloc(w->e->files, w->cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		w->e->files = n;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	mnt_file__init(f);
	w->e->files[w->e->n_files++] = f;
	(*w->nfiles)++;
	f->path = strdup(rel);
	if (!f->path)
		return -ENOMEM;
	f->mode = st->st_mode;
	f->uid = st->st_uid;
	f->gid = st->st_gid;
	f->mtime_ns = ts_ns(&st->st_mtim);
	f->has_atime_ns = true;
	f->atime_ns = ts_ns(&st->st_atim);
	int64_t first = walk_link(w, st);

	if (first >= 0) {
		f->has_link_of = true;
		f->link_of = (uint32_t)first;
		return 0;
	}
	if (S_ISLNK(st->st_mode)) {
		char buf[PATH_MAX];
		ssize_t n = readlinkat(dfd, name, buf, sizeof(buf) - 1);

		if (n < 0)
			return log_errno(errno, "pid %d: mount %s: cannot read symlink %s",
					 w->pid, w->mp, rel);
		buf[n] = 0;
		f->target = strdup(buf);
		return f->target ? 0 : -ENOMEM;
	}
	if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
		f->has_rdev = true;
		f->rdev = st->st_rdev;
		return 0;
	}
	if (!S_ISREG(st->st_mode))
		return 0;
	if (*w->bytes + (uint64_t)st->st_size > MNT_CONTENT_MAX) {
		log_err("pid %d: mount %s: its files hold more than %u MiB: not supported",
			w->pid, w->mp, MNT_CONTENT_MAX >> 20);
		return -EOPNOTSUPP;
	}
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);

	if (fd < 0)
		fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return log_errno(errno, "pid %d: mount %s: cannot open %s", w->pid, w->mp, rel);
	f->has_data = true;
	f->data.data = malloc(st->st_size ? (size_t)st->st_size : 1);
	if (!f->data.data) {
		close(fd);
		return -ENOMEM;
	}
	while (f->data.len < (size_t)st->st_size) {
		ssize_t n = read(fd, f->data.data + f->data.len, (size_t)st->st_size - f->data.len);

		if (n <= 0) {
			int e = n < 0 ? errno : EIO;

			close(fd);
			return log_errno(e, "pid %d: mount %s: cannot read %s (it changed?)",
					 w->pid, w->mp, rel);
		}
		f->data.len += (size_t)n;
	}
	close(fd);
	*w->bytes += f->data.len;
	return 0;
}

/* Pre-order: a directory before what it holds.  Other filesystems mounted
 * below are passed over (their mount points come back as directories). */
static int walk_dir(struct walk *w, int dfd, const char *rel, int depth)
{
	DIR *d;
	struct dirent *de;
	int ret = 0;

	if (depth > 256) {
		log_err("pid %d: mount %s: directories nested too deep at %s", w->pid, w->mp, rel);
		return -EOPNOTSUPP;
	}
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -errno;
	}
	while (!ret && (errno = 0, de = readdir(d))) {
		char sub[PATH_MAX];
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if ((size_t)snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "",
				     de->d_name) >= sizeof(sub) - 1) {
			log_err("pid %d: mount %s: a path too long below %s", w->pid, w->mp, rel);
			ret = -ENAMETOOLONG;
			break;
		}
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW)) {
			ret = log_errno(errno, "pid %d: mount %s: cannot stat %s", w->pid, w->mp, sub);
			break;
		}
		if (st.st_dev != w->dev) {
			if (S_ISDIR(st.st_mode))
				continue;	/* another mount: made from its own entry */
		}
		if (S_ISSOCK(st.st_mode)) {
			/* a bound unix socket's name: the socket's own restore makes it */
			log_debug("pid %d: mount %s: socket %s left to its socket", w->pid, w->mp, sub);
			continue;
		}
		ret = walk_add(w, sub, dirfd(d), de->d_name, &st);
		if (!ret && S_ISDIR(st.st_mode)) {
			int sfd = openat(dirfd(d), de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sfd < 0)
				ret = log_errno(errno, "pid %d: mount %s: cannot open %s",
						w->pid, w->mp, sub);
			else
				ret = walk_dir(w, sfd, sub, depth + 1);
		}
	}
	if (!ret && errno)
		ret = log_errno(errno, "pid %d: mount %s: cannot read directory %s",
				w->pid, w->mp, *rel ? rel : "/");
	closedir(d);
	return ret;
}

static int dump_files(pid_t pid, const struct mnt_info *m, MntEntry *e, size_t *nfiles,
		      uint64_t *bytes)
{
	struct walk w = { .pid = pid, .mp = m->mp, .dev = makedev(m->maj, m->min), .e = e,
			  .nfiles = nfiles, .bytes = bytes };
	char path[PATH_MAX + 32];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/root%s", pid, m->mp);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		int e2 = errno;

		if (fd >= 0)
			close(fd);
		return log_errno(e2, "pid %d: mount %s: cannot open it", pid, m->mp);
	}
	if (st.st_dev != w.dev) {
		close(fd);
		log_err("pid %d: mount %s: another mount covers it: not supported", pid, m->mp);
		return -EOPNOTSUPP;
	}
	int ret = walk_add(&w, "", fd, ".", &st);

	if (ret) {
		close(fd);
		return ret;
	}
	ret = walk_dir(&w, fd, "", 0);
	free(w.links);
	return ret;
}

/* The top mount at @m's mount point in the tree's view is @m's. */
static bool is_top(const struct mnt_table *t, const struct mnt_info *m)
{
	for (const struct mnt_info *o = m + 1; o < t->m + t->n; o++)
		if (!strcmp(o->mp, m->mp))
			return false;
	return true;
}

/* A bind of a part of a filesystem mounted only in the tree's namespace,
 * by an earlier mount of its own: 0 and @e filled, 1 if not such a bind. */
static int inner_bind(pid_t pid, struct mnt_table *t, struct mnt_info *m, MntEntry *e)
{
	char src[PATH_MAX], a_path[PATH_MAX + 32], b_path[PATH_MAX + 32];
	struct mnt_info *best = NULL;
	const char *rest = NULL;
	struct stat a, b;

	for (struct mnt_info *k = t->m; k < t->m + t->n; k++) {
		const char *r;

		if (k == m || !k->kind || k->maj != m->maj || k->min != m->min ||
		    (k->kind != MNT_KIND__MNT_VIRTUAL && k->kind != MNT_KIND__MNT_TMPFS))
			continue;
		r = path_below(m->root, k->root);
		if (r && (!best || strlen(k->root) > strlen(best->root))) {
			best = k;
			rest = r;
		}
	}
	if (!best)
		return 1;
	if ((size_t)snprintf(src, sizeof(src), "%s%s", strcmp(best->mp, "/") || !*rest ? best->mp : "",
			     rest) >= sizeof(src) - 1)
		return -ENAMETOOLONG;
	snprintf(a_path, sizeof(a_path), "/proc/%d/root%s", pid, m->mp);
	snprintf(b_path, sizeof(b_path), "/proc/%d/root%s", pid, src);
	if (is_top(t, m) && (stat(a_path, &a) || stat(b_path, &b) || a.st_dev != b.st_dev ||
			     a.st_ino != b.st_ino)) {
		log_err("pid %d: mount %s: a bind of %s of its own %s at %s, which it does not "
			"see there: not supported", pid, m->mp, m->root, best->fstype, best->mp);
		return -EOPNOTSUPP;
	}
	e->bind_src = strdup(src);
	if (!e->bind_src)
		return -ENOMEM;
	e->has_bind_inner = e->bind_inner = true;
	m->kind = MNT_KIND__MNT_BIND;
	return 0;
}

/* Classify @m of the tree's table @t against kup's table @h. */
static int classify(pid_t pid, struct mnt_table *t, struct mnt_info *m, struct mnt_table *h,
		    MntEntry *e, size_t *nfiles, uint64_t *bytes)
{
	struct mnt_info *parent = table_find_id(t, m->parent);
	bool parent_kept = !parent || parent == m || parent->kind == MNT_KIND__MNT_KEPT;
	struct mnt_info *best = NULL;
	const char *rest = NULL;
	bool same_dev = false;

	for (size_t i = 0; i < h->n; i++) {
		struct mnt_info *k = &h->m[i];
		const char *r;

		if (k->maj != m->maj || k->min != m->min)
			continue;
		same_dev = true;
		if (parent_kept && !strcmp(k->mp, m->mp) && !strcmp(k->root, m->root) &&
		    !strcmp(k->fstype, m->fstype)) {
			m->kind = MNT_KIND__MNT_KEPT;
			return 0;
		}
		r = path_below(m->root, k->root);
		if (r && (!best || strlen(k->root) > strlen(best->root))) {
			best = k;
			rest = r;
		}
	}
	if (!strcmp(m->mp, "/")) {
		log_err("pid %d: mount /: its root is not kup's / (%s %s of %s; RootDirectory= "
			"or a pivot_root): not supported", pid, m->fstype, m->root, m->source);
		return -EOPNOTSUPP;
	}
	if (!same_dev) {
		int ret = inner_bind(pid, t, m, e);

		if (ret <= 0)
			return ret;
		if (!strcmp(m->fstype, "tmpfs") && !strcmp(m->root, "/")) {
			m->kind = MNT_KIND__MNT_TMPFS;
			return dump_files(pid, m, e, nfiles, bytes);
		}
		if (is_virtual(m->fstype) && !strcmp(m->root, "/")) {
			m->kind = MNT_KIND__MNT_VIRTUAL;
			return 0;
		}
		log_err("pid %d: mount %s: %s %s (root %s) is not mounted in kup's namespace "
			"and is not a tmpfs, proc, sysfs, mqueue or devpts of its own: not supported",
			pid, m->mp, m->fstype, m->source, m->root);
		return -EOPNOTSUPP;
	}
	if (!best) {
		log_err("pid %d: mount %s: %s %s, root %s, is not reachable in kup's namespace "
			"(no mount there shows that part of the filesystem): not supported",
			pid, m->mp, m->fstype, m->source, m->root);
		return -EOPNOTSUPP;
	}
	if (strcmp(best->fstype, m->fstype)) {
		log_err("pid %d: mount %s: %s, where kup's namespace has %s on the same device: "
			"not supported", pid, m->mp, m->fstype, best->fstype);
		return -EOPNOTSUPP;
	}
	char src[PATH_MAX];

	if ((size_t)snprintf(src, sizeof(src), "%s%s", strcmp(best->mp, "/") || !*rest ? best->mp : "",
			     rest) >= sizeof(src) - 1)
		return -ENAMETOOLONG;
	e->bind_src = strdup(src);
	if (!e->bind_src)
		return -ENOMEM;
	/* the same directory in both views */
	if (is_top(t, m)) {
		char here[PATH_MAX + 32];
		struct stat a, b;

		snprintf(here, sizeof(here), "/proc/%d/root%s", pid, m->mp);
		if (stat(here, &a) || stat(src, &b) || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
			log_err("pid %d: mount %s: a bind of %s, which is not the same file in "
				"kup's namespace: not supported", pid, m->mp, src);
			return -EOPNOTSUPP;
		}
	}
	if (private_in_tmp(src) && (!strcmp(m->mp, "/tmp") || !strcmp(m->mp, "/var/tmp"))) {
		m->kind = MNT_KIND__MNT_PRIVATE;
		return dump_files(pid, m, e, nfiles, bytes);
	}
	m->kind = MNT_KIND__MNT_BIND;
	return 0;
}

static int ns_id(pid_t pid, const char *type, struct stat *st)
{
	char path[64];

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, type);
	else
		snprintf(path, sizeof(path), "/proc/self/ns/%s", type);
	return stat(path, st) ? -errno : 0;
}

static bool same_ns(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* The tree's network namespace, when it is not kup's, by its name in
 * /run/netns: the restore runs in it (nsenter --net), as for its sockets
 * (docs/sockets.md).  One without a name would be gone after a reboot and
 * a restore elsewhere would leave the tree less confined: refused. */
static int find_netns(pid_t pid, char **name)
{
	struct stat a, b, c;
	DIR *d;
	struct dirent *de;

	*name = NULL;
	if (ns_id(pid, "net", &a) || ns_id(0, "net", &b) || same_ns(&a, &b))
		return 0;
	d = opendir("/run/netns");
	while (d && (de = readdir(d))) {
		char path[PATH_MAX];

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/run/netns/%s", de->d_name);
		if (!stat(path, &c) && same_ns(&a, &c)) {
			*name = strdup(de->d_name);
			break;
		}
	}
	if (d)
		closedir(d);
	if (*name)
		return 0;
	log_err("pid %d: in a mount namespace of its own and in a network namespace of its own "
		"that has no name in /run/netns (PrivateNetwork=): not supported (the restore "
		"would put it in kup's)", pid);
	return -EOPNOTSUPP;
}

/* The namespaces a sandbox may have that kup does not reproduce. */
static int check_other_ns(pid_t pid)
{
	static const struct { const char *type, *what; } ns[] = {
		{ "ipc", "an IPC namespace of its own (PrivateIPC=)" },
		{ "pid", "a PID namespace of its own" },
		{ "cgroup", "a cgroup namespace of its own" },
	};
	struct stat a, b;

	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		if (ns_id(pid, ns[i].type, &a) || ns_id(0, ns[i].type, &b) || same_ns(&a, &b))
			continue;
		log_err("pid %d: in a mount namespace of its own and in %s: not supported "
			"(the restore would put it in kup's)", pid, ns[i].what);
		return -EOPNOTSUPP;
	}
	return 0;
}

/* The namespace related by @req (NS_GET_USERNS: the user namespace that
 * owns it, NS_GET_PARENT: a user namespace's parent) to namespace @type of
 * @pid, as a stat. */
static int ns_rel(pid_t pid, const char *type, unsigned long req, struct stat *st)
{
	char path[64];
	int fd, rfd, ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, type);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rfd = ioctl(fd, req);
	if (rfd < 0 || fstat(rfd, st))
		ret = -errno;
	if (rfd >= 0)
		close(rfd);
	close(fd);
	return ret;
}

/* Namespace @type of @pid is owned by kup's user namespace. */
static int owned_by_kup(pid_t pid, const char *type, const char *what)
{
	struct stat o, self;

	if (ns_id(0, "user", &self))
		return -errno;
	if (ns_rel(pid, type, NS_GET_USERNS, &o) || !same_ns(&o, &self)) {
		log_err("pid %d: its %s belongs to its own user namespace (made with it, as "
			"unshare --user does), not to kup's: not supported (systemd makes the user "
			"namespace last)", pid, what);
		return -EOPNOTSUPP;
	}
	return 0;
}

/* The tree's UTS namespace (ProtectHostname=): its names, read from inside. */
static int dump_uts(pid_t pid, MntnsImage *img)
{
	struct stat a, b;
	struct utsname u;
	char path[64];
	int fd, self, ret;

	if (ns_id(pid, "uts", &a) || ns_id(0, "uts", &b) || same_ns(&a, &b))
		return 0;
	ret = owned_by_kup(pid, "uts", "UTS namespace (ProtectHostname=)");
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "/proc/%d/ns/uts", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	self = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || self < 0 || setns(fd, CLONE_NEWUTS))
		ret = log_errno(errno, "pid %d: cannot enter its UTS namespace", pid);
	else if (uname(&u))
		ret = log_errno(errno, "pid %d: cannot read its host name", pid);
	if (fd >= 0 && self >= 0 && setns(self, CLONE_NEWUTS) && !ret)
		ret = log_errno(errno, "cannot go back to kup's UTS namespace");
	if (fd >= 0)
		close(fd);
	if (self >= 0)
		close(self);
	if (ret)
		return ret;
	img->hostname = strdup(u.nodename);
	img->domainname = strdup(u.domainname);
	return img->hostname && img->domainname ? 0 : -ENOMEM;
}

static int parse_idmap(pid_t pid, const char *file, UsernsExtent ***out, size_t *n)
{
	char *buf = proc_read_file(pid, file, NULL), *line, *save = NULL;
	int ret = 0;

	if (!buf)
		return log_errno(errno ? errno : EIO, "pid %d: cannot read /proc/%d/%s", pid, pid, file);
	*out = calloc(USERNS_EXTENTS_MAX, sizeof(**out));
	*n = 0;
	if (!*out)
		ret = -ENOMEM;
	for (line = strtok_r(buf, "\n", &save); !ret && line; line = strtok_r(NULL, "\n", &save)) {
		unsigned int a, b, c;
		UsernsExtent *x;

		if (sscanf(line, "%u %u %u", &a, &b, &c) != 3 || *n == USERNS_EXTENTS_MAX) {
			log_err("pid %d: cannot parse /proc/%d/%s", pid, pid, file);
			ret = -EINVAL;
			break;
		}
		x = malloc(sizeof(*x));
		if (!x) {
			ret = -ENOMEM;
			break;
		}
		userns_extent__init(x);
		x->first = a;
		x->lower_first = b;
		x->count = c;
		(*out)[(*n)++] = x;
	}
	free(buf);
	return ret;
}

/* Another process than the tree's in user namespace @ns: its pid, or 0. */
static pid_t userns_outsider(const struct stat *ns, const pid_t *pids, int n)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t found = 0;

	while (d && !found && (de = readdir(d))) {
		pid_t p = (pid_t)atoi(de->d_name);
		struct stat st;
		int i;

		if (p <= 0 || ns_id(p, "user", &st) || !same_ns(&st, ns))
			continue;
		for (i = 0; i < n && pids[i] != p; i++)
			;
		if (i == n)
			found = p;
	}
	if (d)
		closedir(d);
	return found;
}

/*
 * The tree's user namespace (PrivateUsers=), when it is not kup's: a child
 * of kup's, its maps as kup's namespace reads them, its owner's uid, holding only the tree's processes (a namespace shared with others
 * would be split in two by the restore).  The tree's mount and UTS
 * namespaces must be owned by kup's: systemd, as root, makes the user
 * namespace after them.
 */
static int dump_userns(const pid_t *pids, int n, MntnsImage *img)
{
	struct stat a, self, parent;
	char *sg;
	pid_t other;
	int fd, ret;
	UsernsEntry *u;

	if (ns_id(pids[0], "user", &a) || ns_id(0, "user", &self) || same_ns(&a, &self))
		return 0;
	if (ns_rel(pids[0], "user", NS_GET_PARENT, &parent) || !same_ns(&parent, &self)) {
		log_err("pid %d: in a user namespace that is not a child of kup's (nested user "
			"namespaces): not supported", pids[0]);
		return -EOPNOTSUPP;
	}
	ret = owned_by_kup(pids[0], "mnt", "mount namespace");
	if (ret)
		return ret;
	other = userns_outsider(&a, pids, n);
	if (other) {
		log_err("pid %d: its user namespace is shared with pid %d, which is not in the "
			"tree: not supported", pids[0], other);
		return -EOPNOTSUPP;
	}
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	userns_entry__init(u);
	img->userns = u;
	ret = parse_idmap(pids[0], "uid_map", &u->uid_map, &u->n_uid_map);
	if (!ret)
		ret = parse_idmap(pids[0], "gid_map", &u->gid_map, &u->n_gid_map);
	if (ret)
		return ret;
	sg = proc_read_file(pids[0], "setgroups", NULL);
	if (!sg)
		return log_errno(errno ? errno : EIO, "pid %d: cannot read /proc/%d/setgroups",
				 pids[0], pids[0]);
	u->setgroups_allowed = !strncmp(sg, "allow", 5);
	free(sg);
	{
		char path[64];
		uid_t owner;

		snprintf(path, sizeof(path), "/proc/%d/ns/user", pids[0]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || ioctl(fd, NS_GET_OWNER_UID, &owner)) {
			ret = log_errno(errno, "pid %d: cannot read the owner of its user namespace",
					pids[0]);
			if (fd >= 0)
				close(fd);
			return ret;
		}
		close(fd);
		u->owner_uid = owner;
	}
	log_info("pid %d: in a user namespace of its own (%zu uid and %zu gid map lines, "
		 "setgroups %s, owner %u)", pids[0], u->n_uid_map, u->n_gid_map,
		 u->setgroups_allowed ? "allowed" : "denied", u->owner_uid);
	return 0;
}

static void userns_free(UsernsEntry *u)
{
	if (!u)
		return;
	for (size_t i = 0; u->uid_map && i < u->n_uid_map; i++)
		free(u->uid_map[i]);
	for (size_t i = 0; u->gid_map && i < u->n_gid_map; i++)
		free(u->gid_map[i]);
	free(u->uid_map);
	free(u->gid_map);
	free(u);
}

static void image_free(MntnsImage *img)
{
	for (size_t i = 0; i < img->n_mounts; i++) {
		MntEntry *e = img->mounts[i];

		if (!e)
			continue;
		for (size_t j = 0; j < e->n_files; j++) {
			free(e->files[j]->path);
			free(e->files[j]->target);
			free(e->files[j]->data.data);
			free(e->files[j]);
		}
		free(e->files);
		free(e->bind_src);
		free(e);
	}
	free(img->mounts);
	free(img->netns);
	free(img->hostname);
	free(img->domainname);
	userns_free(img->userns);
}

int mntns_dump(const pid_t *pids, int n, struct img_store *st, bool *own)
{
	MntnsImage img = MNTNS_IMAGE__INIT;
	struct mnt_table t = { 0 }, h = { 0 };
	struct stat root_ns, other, self_ns;
	char link[PATH_MAX + 32], rootdir[PATH_MAX];
	size_t nfiles = 0;
	uint64_t bytes = 0;
	ssize_t len;
	int ret;

	*own = false;
	if (ns_id(pids[0], "mnt", &root_ns) || ns_id(0, "mnt", &self_ns))
		return 0;	/* no namespaces here */
	for (int i = 1; i < n; i++) {
		static const char *const types[] = { "mnt", "user" };

		for (size_t k = 0; k < 2; k++) {
			struct stat r;

			if (ns_id(pids[i], types[k], &other) || ns_id(pids[0], types[k], &r))
				continue;	/* a zombie */
			if (!same_ns(&r, &other)) {
				log_err("pid %d is in another %s namespace than the tree's root %d: "
					"not supported", pids[i], k ? "user" : "mount", pids[0]);
				return -EOPNOTSUPP;
			}
		}
	}
	if (same_ns(&root_ns, &self_ns)) {
		struct stat u, su;

		if (!ns_id(pids[0], "user", &u) && !ns_id(0, "user", &su) && !same_ns(&u, &su)) {
			log_err("pid %d: in a user namespace of its own but in kup's mount namespace: "
				"not supported (the restore would put it in kup's user namespace)",
				pids[0]);
			return -EOPNOTSUPP;
		}
		return 0;
	}
	ret = check_other_ns(pids[0]);
	if (!ret)
		ret = find_netns(pids[0], &img.netns);
	if (!ret)
		ret = dump_userns(pids, n, &img);
	if (!ret)
		ret = dump_uts(pids[0], &img);
	if (ret)
		goto out;
	snprintf(link, sizeof(link), "/proc/%d/root", pids[0]);
	len = readlink(link, rootdir, sizeof(rootdir) - 1);
	if (len < 0) {
		ret = log_errno(errno, "pid %d: cannot read its root", pids[0]);
		goto out;
	}
	rootdir[len] = 0;
	if (strcmp(rootdir, "/")) {
		log_err("pid %d: root %s inside a mount namespace of its own (RootDirectory=): "
			"not supported", pids[0], rootdir);
		ret = -EOPNOTSUPP;
		goto out;
	}
	ret = table_read(pids[0], -1, &t);
	if (!ret)
		ret = table_read(getpid(), -1, &h);
	if (ret)
		goto out;
	if (t.n > MNT_MAX) {
		log_err("pid %d: %zu mounts in its namespace: not supported (at most %d)",
			pids[0], t.n, MNT_MAX);
		ret = -EOPNOTSUPP;
		goto out;
	}
	img.mounts = calloc(t.n ? t.n : 1, sizeof(*img.mounts));
	if (!img.mounts) {
		ret = -ENOMEM;
		goto out;
	}
	img.n_mounts = t.n;
	/* parents first where the table has them later: "/" may come last */
	for (bool progress = true, last = false; !ret && (progress || !last);) {
		last = !progress;
		progress = false;
		for (size_t i = 0; i < t.n && !ret; i++) {
			struct mnt_info *m = &t.m[i];
			struct mnt_info *p = table_find_id(&t, m->parent);
			MntEntry *e;

			if (ignored(m) || m->kind)
				continue;
			if (!last && p && p != m && !p->kind && !ignored(p))
				continue;	/* its parent first */
			progress = true;
			e = calloc(1, sizeof(*e));
			if (!e) {
				ret = -ENOMEM;
				break;
			}
			mnt_entry__init(e);
			img.mounts[i] = e;
			ret = classify(pids[0], &t, m, &h, e, &nfiles, &bytes);
			e->kind = m->kind;
		}
	}
	if (ret)
		goto out;
	/* in the table's order, without the ignored ones */
	size_t k = 0;

	for (size_t i = 0; i < t.n; i++) {
		MntEntry *e = img.mounts[i];
		struct mnt_info *m = &t.m[i];

		if (!e)
			continue;
		e->mountpoint = m->mp;
		e->root = m->root;
		e->fstype = m->fstype;
		e->source = m->source;
		e->mnt_opts = m->opts;
		e->sb_opts = m->sb;
		e->propagation = m->prop;
		img.mounts[i] = NULL;
		img.mounts[k++] = e;
		log_debug("pid %d: mount %s (%s, root %s): %s%s%s", pids[0], m->mp, m->fstype,
			  m->root, mnt_kind__descriptor.values[e->kind - 1].name,
			  e->bind_src ? " of " : "", e->bind_src ? e->bind_src : "");
	}
	img.n_mounts = k;
	*own = true;
	if (!st)
		goto out;	/* a check only (ckpt_dump_check) */
	ret = img_write_msg(st, "mntns.img", IMG_MNTNS, &img);
	if (!ret) {
		log_info("pid %d: its mount namespace (%zu mounts, %zu files in its own "
			 "filesystems) is kept", pids[0], k, nfiles);
	}
out:
	image_free(&img);
	table_free(&t);
	table_free(&h);
	return ret;
}

/* ---- restore ---- */

struct mntns_rst {
	MntnsImage *img;
	int *src;		/* per mount: a detached clone of its bind source, or -1 */
	char **made;		/* per mount: a private dir made on the host, to remove on failure */
	int self_ns;		/* the restorer's own mount namespace */
	int proc;		/* its /proc/PID directory */
	int cwd;
	bool entered;
	int self_uts;		/* the restorer's UTS namespace, when the tree has one */
	bool uts_entered;
	int userns;		/* the tree's user namespace, made for it, or -1 */
	int last_pid;		/* /proc/sys/kernel/ns_last_pid, opened with it */
};

static bool rel_path_ok(const char *p)
{
	if (!*p)
		return true;
	if (p[0] == '/' || strlen(p) >= PATH_MAX - 1)
		return false;
	for (const char *c = p; *c;) {
		size_t n = strcspn(c, "/");

		if (!n || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		c += n;
		if (*c == '/' && !*++c)
			return false;
	}
	return true;
}

static bool abs_path_ok(const char *p)
{
	return p[0] == '/' && strlen(p) < PATH_MAX - 1 && (!p[1] || rel_path_ok(p + 1));
}

static bool field_ok(const char *s)
{
	return strlen(s) < 4096 && !strchr(s, '\n');
}

/* Extents that the kernel would take: at most 340, none overflows, none
 * overlaps another inside or outside. */
static bool idmap_ok(UsernsExtent *const *x, size_t n)
{
	if (!n || n > USERNS_EXTENTS_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!x[i]->count || x[i]->first > UINT32_MAX - x[i]->count ||
		    x[i]->lower_first > UINT32_MAX - x[i]->count)
			return false;
		for (size_t j = 0; j < i; j++)
			if ((x[i]->first < x[j]->first + x[j]->count &&
			     x[j]->first < x[i]->first + x[i]->count) ||
			    (x[i]->lower_first < x[j]->lower_first + x[j]->count &&
			     x[j]->lower_first < x[i]->lower_first + x[i]->count))
				return false;
	}
	return true;
}

static bool name_ok(const char *s)
{
	return !s || strlen(s) < 65;
}

static int validate(const MntnsImage *img)
{
	size_t nfiles = 0;
	uint64_t bytes = 0;

	if (img->userns && (!idmap_ok(img->userns->uid_map, img->userns->n_uid_map) ||
			    !idmap_ok(img->userns->gid_map, img->userns->n_gid_map))) {
		log_err("mntns.img: the user namespace's uid or gid map is not one the kernel takes");
		return -EINVAL;
	}
	if (!name_ok(img->hostname) || !name_ok(img->domainname) ||
	    !img->hostname != !img->domainname) {
		log_err("mntns.img: bad host or domain name of the UTS namespace");
		return -EINVAL;
	}

	if (!img->n_mounts || img->n_mounts > MNT_MAX) {
		log_err("mntns.img: %zu mounts", img->n_mounts);
		return -EINVAL;
	}
	for (size_t i = 0; i < img->n_mounts; i++) {
		const MntEntry *e = img->mounts[i];
		bool has_files = e->kind == MNT_KIND__MNT_TMPFS || e->kind == MNT_KIND__MNT_PRIVATE;
		bool has_src = e->kind == MNT_KIND__MNT_BIND || e->kind == MNT_KIND__MNT_PRIVATE;

		if (e->kind < MNT_KIND__MNT_KEPT || e->kind > MNT_KIND__MNT_PRIVATE ||
		    !abs_path_ok(e->mountpoint) || !abs_path_ok(e->root) || !field_ok(e->fstype) ||
		    !field_ok(e->source) || !field_ok(e->mnt_opts) || !field_ok(e->sb_opts) ||
		    !field_ok(e->propagation) || strchr(e->fstype, ' ') ||
		    (has_src != (e->bind_src != NULL)) || (e->bind_src && !abs_path_ok(e->bind_src)) ||
		    (!has_files && e->n_files) || (has_files && (!e->n_files ||
		    strcmp(e->files[0]->path, "") || !S_ISDIR(e->files[0]->mode))) ||
		    (e->bind_inner && e->kind != MNT_KIND__MNT_BIND) ||
		    (e->kind == MNT_KIND__MNT_PRIVATE && !private_in_tmp(e->bind_src)) ||
		    (e->kind == MNT_KIND__MNT_VIRTUAL && !is_virtual(e->fstype)) ||
		    (e->kind == MNT_KIND__MNT_TMPFS && strcmp(e->fstype, "tmpfs"))) {
			log_err("mntns.img: mount %zu (%.256s): inconsistent entry", i, e->mountpoint);
			return -EINVAL;
		}
		if (i == 0 && (strcmp(e->mountpoint, "/") || e->kind != MNT_KIND__MNT_KEPT)) {
			log_err("mntns.img: the first mount is not a kept /");
			return -EINVAL;
		}
		for (size_t j = 0; j < e->n_files; j++) {
			const MntFile *f = e->files[j];
			mode_t t = f->mode & S_IFMT;
			bool parent_dir = j == 0;

			/* another name of an earlier file of the same type
			 * (not a directory, not itself a link): nothing else */
			bool link = f->has_link_of;

			if (link && (f->link_of >= j || !*f->path || t == S_IFDIR ||
				     (e->files[f->link_of]->mode & S_IFMT) != t ||
				     e->files[f->link_of]->has_link_of || f->has_data ||
				     f->target || f->has_rdev)) {
				log_err("mntns.img: mount %s: file %zu (%.256s): inconsistent entry (a bad link)",
					e->mountpoint, j, f->path);
				return -EINVAL;
			}
			if (++nfiles > MNT_FILES_MAX || !rel_path_ok(f->path) ||
			    (j && !*f->path) || (f->mode & ~(S_IFMT | 07777)) ||
			    (t != S_IFDIR && t != S_IFREG && t != S_IFLNK && t != S_IFCHR &&
			     t != S_IFBLK && t != S_IFIFO) ||
			    (!link && ((t == S_IFREG) != f->has_data ||
				       (t == S_IFLNK) != (f->target != NULL) ||
				       (t == S_IFCHR || t == S_IFBLK) != f->has_rdev)) ||
			    (f->target && (!*f->target || strlen(f->target) >= PATH_MAX))) {
				log_err("mntns.img: mount %s: file %zu (%.256s): inconsistent entry",
					e->mountpoint, j, f->path);
				return -EINVAL;
			}
			bytes += f->data.len;
			if (bytes > MNT_CONTENT_MAX) {
				log_err("mntns.img: mount %s: more than %u MiB of files",
					e->mountpoint, MNT_CONTENT_MAX >> 20);
				return -EINVAL;
			}
			/* its directory came before it (pre-order) */
			const char *slash = strrchr(f->path, '/');
			size_t dl = slash ? (size_t)(slash - f->path) : 0;

			for (size_t k = j; j && k-- > 0 && !parent_dir;)
				parent_dir = S_ISDIR(e->files[k]->mode) && strlen(e->files[k]->path) == dl &&
					     !strncmp(e->files[k]->path, f->path, dl);
			if (!parent_dir) {
				log_err("mntns.img: mount %s: file %.256s comes before its directory",
					e->mountpoint, f->path);
				return -EINVAL;
			}
		}
	}
	return 0;
}

/* The checks every restore makes of mntns.img (for the fuzz target). */
int ckpt_validate_mntns(const void *img)
{
	return validate(img);
}

/* Per-mount options to mount flags. */
static unsigned long mnt_flags(const char *opts)
{
	char buf[4096], *save = NULL;
	unsigned long fl = 0;

	snprintf(buf, sizeof(buf), "%s", opts);
	for (char *o = strtok_r(buf, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		if (!strcmp(o, "ro"))
			fl |= MS_RDONLY;
		else if (!strcmp(o, "nosuid"))
			fl |= MS_NOSUID;
		else if (!strcmp(o, "nodev"))
			fl |= MS_NODEV;
		else if (!strcmp(o, "noexec"))
			fl |= MS_NOEXEC;
		else if (!strcmp(o, "noatime"))
			fl |= MS_NOATIME;
		else if (!strcmp(o, "nodiratime"))
			fl |= MS_NODIRATIME;
		else if (!strcmp(o, "relatime"))
			fl |= MS_RELATIME;
		else if (!strcmp(o, "strictatime"))
			fl |= MS_STRICTATIME;
		else if (!strcmp(o, "nosymfollow"))
			fl |= 256;	/* MS_NOSYMFOLLOW, Linux 5.10 */
	}
	/* mountinfo shows no word for strictatime */
	if (!(fl & (MS_NOATIME | MS_RELATIME)))
		fl |= MS_STRICTATIME;
	return fl;
}

/* The superblock options as mount(2) data: without rw/ro. */
static void sb_data(const char *sb, char *out, size_t len)
{
	char buf[4096], *save = NULL;

	out[0] = 0;
	snprintf(buf, sizeof(buf), "%s", sb);
	for (char *o = strtok_r(buf, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		if (!strcmp(o, "rw") || !strcmp(o, "ro"))
			continue;
		if (out[0])
			strncat(out, ",", len - strlen(out) - 1);
		strncat(out, o, len - strlen(out) - 1);
	}
}

static int set_flags(const MntEntry *e)
{
	if (mount(NULL, e->mountpoint, NULL, MS_REMOUNT | MS_BIND | mnt_flags(e->mnt_opts), NULL))
		return log_errno(errno, "mount %s: cannot set its options %s", e->mountpoint,
				 e->mnt_opts);
	return 0;
}

/* A directory fd for @rel's parent below @root, no symlink followed. */
static int parent_fd(int root, const char *rel, const char **name)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(rel, '/');
	struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
					   RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV };
	int fd;

	*name = slash ? slash + 1 : rel;
	if (!slash)
		return fcntl(root, F_DUPFD_CLOEXEC, 0);
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - rel), rel);
	fd = (int)syscall(SYS_openat2, root, dir, &how, sizeof(how));
	return fd < 0 ? -errno : fd;
}

/* Another name @f of the file @first made before it (validated). */
static int put_link(int root, const char *mp, const MntFile *f, const MntFile *first)
{
	const char *name, *sname;
	int dfd, sfd, ret = 0;

	dfd = parent_fd(root, f->path, &name);
	if (dfd < 0)
		return log_errno(dfd, "mount %s: cannot reach the directory of %s", mp, f->path);
	sfd = parent_fd(root, first->path, &sname);
	if (sfd < 0) {
		close(dfd);
		return log_errno(sfd, "mount %s: cannot reach the directory of %s", mp,
				 first->path);
	}
	if (linkat(sfd, sname, dfd, name, 0))
		ret = log_errno(errno, "mount %s: cannot link %s to %s", mp, f->path, first->path);
	close(sfd);
	close(dfd);
	return ret;
}

static int put_file(int root, const char *mp, const MntFile *f)
{
	const char *name;
	mode_t t = f->mode & S_IFMT;
	int dfd, fd = -1, ret = 0;

	if (!*f->path) {
		if (fchown(root, f->uid, f->gid) || fchmod(root, f->mode & 07777))
			return log_errno(errno, "mount %s: cannot set the owner and mode of its root", mp);
		return 0;
	}
	dfd = parent_fd(root, f->path, &name);
	if (dfd < 0)
		return log_errno(dfd, "mount %s: cannot reach the directory of %s", mp, f->path);
	if (t == S_IFDIR) {
		if (mkdirat(dfd, name, 0700))
			ret = -errno;
	} else if (t == S_IFREG) {
		fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			ret = -errno;
		for (size_t off = 0; !ret && off < f->data.len;) {
			ssize_t n = write(fd, f->data.data + off, f->data.len - off);

			if (n <= 0)
				ret = n < 0 ? -errno : -EIO;
			else
				off += (size_t)n;
		}
	} else if (t == S_IFLNK) {
		if (symlinkat(f->target, dfd, name))
			ret = -errno;
	} else if (mknodat(dfd, name, t | 0600, (dev_t)f->rdev)) {
		ret = -errno;
	}
	if (!ret && fchownat(dfd, name, f->uid, f->gid, AT_SYMLINK_NOFOLLOW))
		ret = -errno;
	/* after the owner: chown clears setuid and setgid.  Those are not
	 * given back (never more privilege than the dump saw, as for deleted
	 * files: docs/files.md) */
	mode_t mode = f->mode & (t == S_IFDIR ? 07777 : 01777);

	if (!ret && (f->mode & 06000) && t != S_IFDIR)
		log_warn("mount %s: %s had mode %04o: recreated without its setuid/setgid bits",
			 mp, f->path, (unsigned)(f->mode & 07777));
	if (!ret && t != S_IFLNK && fchmodat(dfd, name, mode, 0))
		ret = -errno;
	if (fd >= 0)
		close(fd);
	close(dfd);
	if (ret)
		return log_errno(ret, "mount %s: cannot make %s", mp, f->path);
	return 0;
}

static int put_files(int root, const MntEntry *e)
{
	int ret = 0;

	for (size_t j = 0; j < e->n_files && !ret; j++)
		ret = e->files[j]->has_link_of ?
			put_link(root, e->mountpoint, e->files[j], e->files[e->files[j]->link_of]) :
			put_file(root, e->mountpoint, e->files[j]);
	/* the times last, the deepest first: making a file changed its directory's */
	for (size_t j = e->n_files; !ret && j-- > 0;) {
		const MntFile *f = e->files[j];
		struct timespec ts[2] = {
			{ .tv_sec = (time_t)(f->atime_ns / 1000000000ull),
			  .tv_nsec = (long)(f->atime_ns % 1000000000ull) },
			{ .tv_sec = (time_t)(f->mtime_ns / 1000000000ull),
			  .tv_nsec = (long)(f->mtime_ns % 1000000000ull) },
		};
		const char *name;
		int dfd;

		if (!f->has_atime_ns)
			ts[0] = ts[1];
		if (!*f->path) {
			futimens(root, ts);
			continue;
		}
		dfd = parent_fd(root, f->path, &name);
		if (dfd >= 0) {
			utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW);
			close(dfd);
		}
	}
	return ret;
}

static void remove_tree(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
		unlinkat(dfd, name, 0);
		return;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			remove_tree(dirfd(d), de->d_name);
	closedir(d);
	unlinkat(dfd, name, AT_REMOVEDIR);
}

/* The host's directory of a private /tmp, made fresh: the one dumped was
 * made by systemd for a boot that may be gone.  Named as systemd names
 * them, for this boot (systemd-tmpfiles passes over this boot's). */
static int make_private(struct mntns_rst *r, size_t i)
{
	const MntEntry *e = r->img->mounts[i];
	const char *comp = private_component(e->bind_src);
	char base[PATH_MAX], name[2 * NAME_MAX], path[2 * PATH_MAX], unit[128] = "";
	char *bootid = proc_read_file(1, "../sys/kernel/random/boot_id", NULL), id[33] = "";
	const char *sub, *u;
	unsigned char rnd[3];
	int bfd = -1, rfd = -1, ret;

	snprintf(base, sizeof(base), "%.*s", (int)(comp - e->bind_src - 1), e->bind_src);
	if (!*base)
		strcpy(base, "/");
	sub = comp + strcspn(comp, "/");	/* "/tmp" below it */
	/* systemd-private-BOOTID-UNIT-XXXXXX */
	u = comp + strlen("systemd-private-");
	if (strlen(u) > 33 && u[32] == '-') {
		const char *end = u + strcspn(u, "/");
		const char *dash = end;

		while (dash > u + 33 && *dash != '-')
			dash--;
		if (dash > u + 33 && dash - u - 33 < (long)sizeof(unit))
			snprintf(unit, sizeof(unit), "%.*s", (int)(dash - u - 33), u + 33);
	}
	if (!*unit)
		strcpy(unit, "kup");
	for (size_t k = 0, o = 0; bootid && bootid[k] && o < 32; k++)
		if (bootid[k] != '-' && bootid[k] != '\n')
			id[o++] = bootid[k], id[o] = 0;
	free(bootid);
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return log_errno(errno, "cannot get random bytes");
	snprintf(name, sizeof(name), "systemd-private-%s-%s-%02x%02x%02x", id, unit, rnd[0],
		 rnd[1], rnd[2]);
	bfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (bfd < 0)
		return log_errno(errno, "mount %s: cannot open %s", e->mountpoint, base);
	if (mkdirat(bfd, name, 0700)) {
		ret = log_errno(errno, "mount %s: cannot make %s/%s", e->mountpoint, base, name);
		goto out;
	}
	snprintf(path, sizeof(path), "%s%s%s", strcmp(base, "/") ? base : "", "/", name);
	r->made[i] = strdup(path);
	if (!r->made[i]) {
		ret = -ENOMEM;
		goto out;
	}
	/* the directories between it and the mount's root (".../tmp") */
	snprintf(path, sizeof(path), "%s", name);
	for (const char *c = sub; *c == '/' && c[1];) {
		size_t n = strcspn(c + 1, "/");

		snprintf(path + strlen(path), sizeof(path) - strlen(path), "/%.*s", (int)n, c + 1);
		if (mkdirat(bfd, path, 0700)) {
			ret = log_errno(errno, "mount %s: cannot make %s/%s", e->mountpoint, base, path);
			goto out;
		}
		c += n + 1;
	}
	rfd = openat(bfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (rfd < 0) {
		ret = log_errno(errno, "mount %s: cannot open %s/%s", e->mountpoint, base, path);
		goto out;
	}
	ret = put_files(rfd, e);
	if (ret)
		goto out;
	r->src[i] = (int)syscall(SYS_open_tree, rfd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
				 AT_EMPTY_PATH);
	if (r->src[i] < 0)
		ret = log_errno(errno, "mount %s: cannot take a clone of %s/%s", e->mountpoint,
				base, path);
	else
		log_info("mount %s: a fresh %s/%s", e->mountpoint, base, path);
out:
	if (rfd >= 0)
		close(rfd);
	close(bfd);
	return ret;
}

/*
 * A kernel file system with no backing store: its source is only a label,
 * chosen by whoever mounted it on this boot ("pstore" by systemd on 6.1,
 * "none" on 7.3 for /sys/fs/pstore; "tmpfs", "udev", "none"...).  Network
 * and FUSE file systems are not in it: their source names the data.
 */
static bool source_is_label(const char *fstype)
{
	static const char *const pseudo[] = {
		"proc", "sysfs", "tmpfs", "devtmpfs", "ramfs", "devpts", "mqueue", "cgroup",
		"cgroup2", "pstore", "bpf", "tracefs", "debugfs", "securityfs", "configfs",
		"fusectl", "efivarfs", "hugetlbfs", "binfmt_misc", "autofs", "rpc_pipefs",
	};

	for (size_t i = 0; fstype && i < sizeof(pseudo) / sizeof(*pseudo); i++)
		if (!strcmp(fstype, pseudo[i]))
			return true;
	return false;
}

/* The same source, or a pseudo file system's (a label of each boot's). */
static bool same_source(const char *fstype, const char *a, const char *b)
{
	return source_is_label(fstype) || !strcmp(a, b);
}

/* The current table matched against the dumped one: a mount is kept when
 * the image has it as MNT_KEPT (mount point, root, type, source but a pseudo
 * file system's) and its parent is kept. */
static bool *match_kept(struct mntns_rst *r, struct mnt_table *c)
{
	bool *used = calloc(r->img->n_mounts, sizeof(*used));
	bool progress = true;

	for (size_t i = 0; i < c->n; i++)
		c->m[i].matched = false;
	while (used && progress) {
		progress = false;
		for (size_t i = 0; i < c->n; i++) {
			struct mnt_info *m = &c->m[i];
			struct mnt_info *p = table_find_id(c, m->parent);

			if (m->matched || ignored(m))
				continue;
			if (strcmp(m->mp, "/") ? !p || p == m || !p->matched : p && p != m && p->matched)
				continue;
			for (size_t j = 0; j < r->img->n_mounts; j++) {
				const MntEntry *e = r->img->mounts[j];

				if (used[j] || e->kind != MNT_KIND__MNT_KEPT || strcmp(e->mountpoint, m->mp) ||
				    strcmp(e->root, m->root) || strcmp(e->fstype, m->fstype) ||
				    !same_source(e->fstype, e->source, m->source))
					continue;
				used[j] = m->matched = progress = true;
				break;
			}
		}
	}
	return used;	/* which dumped mounts are there */
}

/* Dumped kept mounts the copy of kup's namespace does not have: a second
 * mount of the same place (systemd binds /sys or /proc/sys onto themselves
 * to make them read-only), or one of the host's that is not mounted now.
 * Each is made again as a bind of its mount point, taken now. */
static int clone_missing_kept(struct mntns_rst *r)
{
	struct mnt_table c;
	bool *used;
	int ret = table_read(getpid(), r->proc, &c);

	if (ret)
		return ret;
	used = match_kept(r, &c);
	for (size_t i = 0; used && !ret && i < r->img->n_mounts; i++) {
		const MntEntry *e = r->img->mounts[i];

		if (e->kind != MNT_KIND__MNT_KEPT || used[i])
			continue;
		r->src[i] = (int)syscall(SYS_open_tree, AT_FDCWD, e->mountpoint,
					 OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
		if (r->src[i] < 0)
			ret = log_errno(errno, "mount %s: cannot take a clone of it (%s %s)",
					e->mountpoint, e->fstype, e->source);
		else
			log_debug("mount %s: mounted again on itself (%s %s)", e->mountpoint,
				  e->fstype, e->source);
	}
	if (!used)
		ret = -ENOMEM;
	free(used);
	table_free(&c);
	return ret;
}

/* Unmount what the dumped namespace did not have. */
static int unmount_others(struct mntns_rst *r)
{
	for (int pass = 0; pass < MNT_PASSES_MAX; pass++) {
		struct mnt_table c;
		bool any = false;
		int ret = table_read(getpid(), r->proc, &c);

		if (ret)
			return ret;
		free(match_kept(r, &c));
		for (size_t i = c.n; i-- > 0;) {
			struct mnt_info *m = &c.m[i];
			struct mnt_info *p = table_find_id(&c, m->parent);

			if (m->matched || !p || p == m || !p->matched)
				continue;
			if (!strcmp(m->mp, "/")) {
				log_err("mount /: %s %s is not the dumped namespace's /", m->fstype,
					m->source);
				table_free(&c);
				return -EINVAL;
			}
			if (umount2(m->mp, MNT_DETACH)) {
				ret = log_errno(errno, "cannot unmount %s", m->mp);
				table_free(&c);
				return ret;
			}
			any = true;
			break;	/* the table changed */
		}
		table_free(&c);
		if (!any)
			return 0;
	}
	log_err("mount namespace: still unmounting after %d passes", MNT_PASSES_MAX);
	return -ELOOP;
}

/* The last mount at the same mount point: its options are set after the
 * others are mounted (a read-only / comes last, as systemd does it). */
static bool covered(const MntnsImage *img, size_t i)
{
	for (size_t j = i + 1; j < img->n_mounts; j++)
		if (!strcmp(img->mounts[j]->mountpoint, img->mounts[i]->mountpoint))
			return true;
	return false;
}

static int mount_one(struct mntns_rst *r, size_t i)
{
	const MntEntry *e = r->img->mounts[i];
	unsigned long fl = mnt_flags(e->mnt_opts);
	char data[4096];
	struct stat st;
	int ret, fd;

	if (stat(e->mountpoint, &st) && errno == ENOENT && mkdir(e->mountpoint, 0755))
		return log_errno(errno, "mount %s: no such directory, and it cannot be made",
				 e->mountpoint);
	switch (e->kind) {
	case MNT_KIND__MNT_KEPT:
		if (r->src[i] < 0)
			return 0;	/* there from the start */
		__attribute__((fallthrough));	/* made again from its clone */
	case MNT_KIND__MNT_BIND:
	case MNT_KIND__MNT_PRIVATE:
		if (e->bind_inner) {
			/* below a mount made here before it */
			r->src[i] = (int)syscall(SYS_open_tree, AT_FDCWD, e->bind_src,
						 OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
			if (r->src[i] < 0)
				return log_errno(errno, "mount %s: cannot take a clone of %s",
						 e->mountpoint, e->bind_src);
		}
		if (syscall(SYS_move_mount, r->src[i], "", AT_FDCWD, e->mountpoint,
			    MOVE_MOUNT_F_EMPTY_PATH))
			return log_errno(errno, "mount %s: cannot bind %s there", e->mountpoint,
					 e->bind_src ? e->bind_src : e->mountpoint);
		close(r->src[i]);
		r->src[i] = -1;
		return set_flags(e);
	case MNT_KIND__MNT_VIRTUAL:
		sb_data(e->sb_opts, data, sizeof(data));
		if (mount(e->source, e->mountpoint, e->fstype, fl, data))
			return log_errno(errno, "mount %s: cannot mount %s (%s)", e->mountpoint,
					 e->fstype, data);
		return 0;
	case MNT_KIND__MNT_TMPFS:
		sb_data(e->sb_opts, data, sizeof(data));
		if (mount(e->source, e->mountpoint, "tmpfs", fl & ~MS_RDONLY, data))
			return log_errno(errno, "mount %s: cannot mount a tmpfs (%s)", e->mountpoint,
					 data);
		fd = open(e->mountpoint, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return log_errno(errno, "mount %s: cannot open it", e->mountpoint);
		ret = put_files(fd, e);
		close(fd);
		/* read-only at the end, once the mounts below have their
		 * mount points (systemd's private /dev is read-only) */
		return ret ? ret : (fl & MS_RDONLY) && covered(r->img, i) ? set_flags(e) : 0;
	default:
		return 0;
	}
}

/*
 * The superblock options of @sb as compared: a tmpfs's and devtmpfs's
 * size= and nr_inodes= left out.  The system's own (/dev, /run, /dev/shm)
 * are sized by the kernel from its memory, which another kernel counts
 * otherwise (a switch: 741020k before, 743756k after); a tmpfs the restore
 * mounts itself gets the dumped ones.
 */
static void sb_cmp(const char *fstype, const char *sb, char *out, size_t len)
{
	size_t n = 0;

	if (!sb)
		sb = "";
	if (!fstype || (strcmp(fstype, "tmpfs") && strcmp(fstype, "devtmpfs"))) {
		snprintf(out, len, "%s", sb);
		return;
	}
	out[0] = 0;
	while (*sb) {
		size_t l = strcspn(sb, ",");

		if (strncmp(sb, "size=", 5) && strncmp(sb, "nr_inodes=", 10) && n + l + 2 < len) {
			if (n)
				out[n++] = ',';
			memcpy(out + n, sb, l);
			n += l;
			out[n] = 0;
		}
		sb += l;
		if (*sb == ',')
			sb++;
	}
}

/* One mount as compared: everything but ids, devices and peer groups; the
 * source of a pseudo file system (a label) left out too. */
static char *norm(const char *mp, const char *root, const char *fstype, const char *source,
		  const char *opts, const char *sb_opts, const char *prop)
{
	char r[PATH_MAX], sb[1024], *s = NULL;
	const char *p = private_component(root);

	sb_cmp(fstype, sb_opts, sb, sizeof(sb));
	if (source_is_label(fstype))
		source = "-";

	if (p)	/* a private /tmp's host dir has another name on every start */
		snprintf(r, sizeof(r), "%.*ssystemd-private-*%s", (int)(p - root), root,
			 p + strcspn(p, "/"));
	else
		snprintf(r, sizeof(r), "%s", root);
	if (asprintf(&s, "%s %s %s %s %s %s [%s]", mp, r, fstype, source, opts, sb, prop) < 0)
		return NULL;
	return s;
}

/* Stable sort by mount point: pointers into one array keep their order. */
static void sort_lines(char **v, size_t n)
{
	/* insertion sort: few hundred lines at most, and stable */
	for (size_t i = 1; i < n; i++) {
		char *x = v[i];
		size_t j = i;
		size_t lx = strcspn(x, " ");

		while (j > 0) {
			size_t ly = strcspn(v[j - 1], " ");
			int c = strncmp(v[j - 1], x, lx < ly ? lx : ly);

			if (c < 0 || (!c && ly <= lx))
				break;
			v[j] = v[j - 1];
			j--;
		}
		v[j] = x;
	}
}

static int compare(struct mntns_rst *r)
{
	struct mnt_table c;
	char **want = calloc(r->img->n_mounts, sizeof(char *)), **have = NULL;
	size_t nh = 0, nw = r->img->n_mounts;
	int ret = table_read(getpid(), r->proc, &c);

	if (ret || !want) {
		free(want);
		if (!ret)
			table_free(&c);
		return ret ? ret : -ENOMEM;
	}
	have = calloc(c.n ? c.n : 1, sizeof(char *));
	ret = have ? 0 : -ENOMEM;
	for (size_t i = 0; !ret && i < nw; i++) {
		const MntEntry *e = r->img->mounts[i];

		want[i] = norm(e->mountpoint, e->root, e->fstype, e->source, e->mnt_opts, e->sb_opts,
			       e->propagation);
		if (!want[i])
			ret = -ENOMEM;
	}
	for (size_t i = 0; !ret && i < c.n; i++) {
		struct mnt_info *m = &c.m[i];

		if (ignored(m))
			continue;
		have[nh] = norm(m->mp, m->root, m->fstype, m->source, m->opts, m->sb, m->prop);
		if (!have[nh++])
			ret = -ENOMEM;
	}
	if (!ret) {
		sort_lines(want, nw);
		sort_lines(have, nh);
		for (size_t i = 0; i < nw || i < nh; i++) {
			if (i < nw && i < nh && !strcmp(want[i], have[i]))
				continue;
			if (i < nw && i < nh)
				log_err("mount %.*s: the rebuilt namespace differs: dumped '%s', "
					"restored '%s'", (int)strcspn(want[i], " "), want[i], want[i],
					have[i]);
			else if (i < nw)
				log_err("mount %.*s: missing in the rebuilt namespace (dumped '%s')",
					(int)strcspn(want[i], " "), want[i], want[i]);
			else
				log_err("mount %.*s: in the rebuilt namespace but not in the dumped "
					"one ('%s')", (int)strcspn(have[i], " "), have[i], have[i]);
			ret = -EINVAL;
			break;
		}
	}
	for (size_t i = 0; i < nw; i++)
		free(want[i]);
	for (size_t i = 0; have && i < nh; i++)
		free(have[i]);
	free(want);
	free(have);
	table_free(&c);
	return ret;
}

static int build(struct mntns_rst *r)
{
	MntnsImage *img = r->img;
	int ret;

	if (unshare(CLONE_NEWNS))
		return log_errno(errno, "cannot make a mount namespace for the tree");
	r->entered = true;
	/* nothing done here reaches the host's namespace */
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL))
		return log_errno(errno, "cannot make the tree's mount namespace a slave");
	/* every path of kup's namespace first, before anything moves */
	for (size_t i = 0; i < img->n_mounts; i++) {
		const MntEntry *e = img->mounts[i];

		if (e->kind == MNT_KIND__MNT_PRIVATE) {
			ret = make_private(r, i);
			if (ret)
				return ret;
		} else if (e->kind == MNT_KIND__MNT_BIND && !e->bind_inner) {
			r->src[i] = (int)syscall(SYS_open_tree, AT_FDCWD, e->bind_src,
						 OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
			if (r->src[i] < 0)
				return log_errno(errno, "mount %s: cannot take a clone of %s",
						 e->mountpoint, e->bind_src);
		}
	}
	ret = clone_missing_kept(r);
	if (!ret)
		ret = unmount_others(r);
	for (size_t i = 0; !ret && i < img->n_mounts; i++)
		if (img->mounts[i]->kind == MNT_KIND__MNT_KEPT && covered(img, i) && r->src[i] < 0)
			ret = set_flags(img->mounts[i]);
	for (size_t i = 0; !ret && i < img->n_mounts; i++)
		ret = mount_one(r, i);
	for (size_t i = 0; !ret && i < img->n_mounts; i++)
		if ((img->mounts[i]->kind == MNT_KIND__MNT_KEPT ||
		     img->mounts[i]->kind == MNT_KIND__MNT_TMPFS) && !covered(img, i))
			ret = set_flags(img->mounts[i]);
	/* propagation last, as systemd makes it: everything shared (stacked
	 * mounts too), then what was not shared made so again where it can
	 * be named by its mount point */
	bool any_shared = false;

	for (size_t i = 0; i < img->n_mounts; i++)
		any_shared = any_shared || strstr(img->mounts[i]->propagation, "shared");
	if (!ret && any_shared && mount(NULL, "/", NULL, MS_REC | MS_SHARED, NULL))
		ret = log_errno(errno, "cannot make the tree's mounts shared");
	for (size_t i = 0; !ret && i < img->n_mounts; i++) {
		const MntEntry *e = img->mounts[i];
		unsigned long p = strstr(e->propagation, "shared") ? 0 :
				  strstr(e->propagation, "master") ? MS_SLAVE :
				  strstr(e->propagation, "unbindable") ? MS_UNBINDABLE : MS_PRIVATE;

		if (p && !covered(img, i) && mount(NULL, e->mountpoint, NULL, p, NULL))
			ret = log_errno(errno, "mount %s: cannot make it %s", e->mountpoint,
					e->propagation[0] ? e->propagation : "private");
	}
	if (!ret)
		ret = compare(r);
	return ret;
}

/* Write @len bytes of @buf to /proc/@pid/@file in one write. */
static int write_proc(pid_t pid, const char *file, const char *buf, size_t len)
{
	char path[64];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len)
		ret = -errno;
	if (fd >= 0)
		close(fd);
	return ret ? ret : 0;
}

static int format_idmap(UsernsExtent *const *x, size_t n, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = 0;
	for (size_t i = 0; i < n && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%u %u %u\n", x[i]->first,
				      x[i]->lower_first, x[i]->count);
	return o < len ? (int)o : -E2BIG;
}

/*
 * The tree's user namespace, made as the dumped one: a child (its owner's
 * euid, if not root) unshares it and waits; the restorer, in the parent
 * namespace with CAP_SETUID and CAP_SETGID there, writes setgroups and the
 * maps (several lines need those), keeps a reference and lets the child go.
 * The child lives only while the restorer waits for it: no tree pid is
 * taken for long.
 */
static int make_userns(struct mntns_rst *r, pid_t root)
{
	const UsernsEntry *u = r->img->userns;
	char umap[USERNS_EXTENTS_MAX * 36], gmap[USERNS_EXTENTS_MAX * 36], path[64], c = 0;
	int ready[2], go[2], ret = 0, ul, gl;
	pid_t child;

	ul = format_idmap(u->uid_map, u->n_uid_map, umap, sizeof(umap));
	gl = format_idmap(u->gid_map, u->n_gid_map, gmap, sizeof(gmap));
	if (ul < 0 || gl < 0)
		return -E2BIG;
	if (pipe2(ready, O_CLOEXEC))
		return log_errno(errno, "cannot make a pipe");
	if (pipe2(go, O_CLOEXEC)) {
		ret = log_errno(errno, "cannot make a pipe");
		close(ready[0]);
		close(ready[1]);
		return ret;
	}
	child = fork();
	if (child == 0) {
		close(ready[0]);
		close(go[1]);
		if ((u->owner_uid && setresuid(u->owner_uid, u->owner_uid, u->owner_uid)) ||
		    unshare(CLONE_NEWUSER))
			_exit(1);
		if (write(ready[1], &c, 1) != 1)
			_exit(1);
		if (read(go[0], &c, 1) < 0)
			_exit(1);
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	if (child < 0) {
		ret = log_errno(errno, "cannot fork to make a user namespace");
		goto out;
	}
	if (read(ready[0], &c, 1) != 1) {
		ret = log_errno(EPERM, "pid %d: cannot make a user namespace (owner %u)", root,
				u->owner_uid);
		goto out;
	}
	ret = write_proc(child, "setgroups", u->setgroups_allowed ? "allow" : "deny",
			 u->setgroups_allowed ? 5 : 4);
	if (ret)
		log_errno(ret, "pid %d: cannot set setgroups of its user namespace", root);
	if (!ret && (ret = write_proc(child, "uid_map", umap, (size_t)ul)))
		log_errno(ret, "pid %d: cannot write the uid map of its user namespace", root);
	if (!ret && (ret = write_proc(child, "gid_map", gmap, (size_t)gl)))
		log_errno(ret, "pid %d: cannot write the gid map of its user namespace", root);
	if (!ret) {
		snprintf(path, sizeof(path), "/proc/%d/ns/user", child);
		r->userns = open(path, O_RDONLY | O_CLOEXEC);
		if (r->userns < 0)
			ret = log_errno(errno, "cannot open the user namespace made for pid %d", root);
	}
out:
	close(ready[0]);
	close(go[1]);	/* the child goes */
	if (child > 0)
		while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
			;
	return ret;
}

/* The tree's UTS namespace: the restorer's own, with the dumped names, in
 * which the tasks are born; it goes back to its own in mntns_rst_leave. */
static int enter_uts(struct mntns_rst *r)
{
	const MntnsImage *img = r->img;

	if (!img->hostname)
		return 0;
	r->self_uts = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
	if (r->self_uts < 0)
		return log_errno(errno, "cannot open the restorer's UTS namespace");
	if (unshare(CLONE_NEWUTS))
		return log_errno(errno, "cannot make a UTS namespace for the tree");
	r->uts_entered = true;
	if (sethostname(img->hostname, strlen(img->hostname)) ||
	    setdomainname(img->domainname, strlen(img->domainname)))
		return log_errno(errno, "cannot set the host name %s of the tree's UTS namespace",
				 img->hostname);
	return 0;
}

int mntns_rst_userns(const struct mntns_rst *r)
{
	return r ? r->userns : -1;
}

int mntns_rst_last_pid(const struct mntns_rst *r)
{
	return r ? r->last_pid : -1;
}

int mntns_rst_enter(struct img_store *st, pid_t root, struct mntns_rst **out)
{
	struct mntns_rst *r;
	ProtobufCMessage *msg = NULL;
	int ret;

	*out = NULL;
	ret = img_read_msg(st, "mntns.img", IMG_MNTNS, &mntns_image__descriptor, &msg);
	if (ret == -ENOENT)
		return 0;	/* the tree was in kup's namespace */
	if (ret)
		return ret;
	r = calloc(1, sizeof(*r));
	if (!r) {
		protobuf_c_message_free_unpacked(msg, NULL);
		return -ENOMEM;
	}
	r->img = (MntnsImage *)msg;
	r->self_ns = r->cwd = r->proc = r->self_uts = r->userns = r->last_pid = -1;
	*out = r;
	ret = validate(r->img);
	if (ret)
		return ret;
	r->src = malloc(r->img->n_mounts * sizeof(*r->src));
	r->made = calloc(r->img->n_mounts, sizeof(*r->made));
	if (!r->src || !r->made)
		return -ENOMEM;
	for (size_t i = 0; i < r->img->n_mounts; i++)
		r->src[i] = -1;
	if (r->img->netns) {
		char path[PATH_MAX];
		struct stat a, b;

		snprintf(path, sizeof(path), "/run/netns/%s", r->img->netns);
		if (strchr(r->img->netns, '/') || stat(path, &a) || ns_id(0, "net", &b) ||
		    !same_ns(&a, &b)) {
			log_err("pid %d: was in network namespace %.256s: restore it in there "
				"(nsenter --net=/run/netns/%.256s)", root, r->img->netns,
				r->img->netns);
			return -EINVAL;
		}
	}
	r->self_ns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	r->cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	r->proc = open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (r->self_ns < 0 || r->cwd < 0 || r->proc < 0)
		return log_errno(errno, "cannot open the restorer's own mount namespace");
	if (r->img->userns) {
		/* opened here: the rebuilt namespace may have /proc/sys read-only */
		r->last_pid = open("/proc/sys/kernel/ns_last_pid", O_RDWR | O_CLOEXEC);
		if (r->last_pid < 0)
			return log_errno(errno, "cannot open /proc/sys/kernel/ns_last_pid");
		ret = make_userns(r, root);
		if (ret)
			return ret;
	}
	ret = build(r);
	if (!ret)
		ret = enter_uts(r);
	if (ret) {
		log_err("pid %d: its mount namespace cannot be rebuilt as it was dumped", root);
		return ret;
	}
	log_info("pid %d: its mount namespace is rebuilt: %zu mounts, the same as dumped", root,
		 r->img->n_mounts);
	return 0;
}

void mntns_rst_leave(struct mntns_rst *r, bool failed)
{
	if (!r)
		return;
	if (r->entered && r->self_ns >= 0) {
		if (setns(r->self_ns, CLONE_NEWNS))
			log_errno(errno, "cannot go back to the restorer's mount namespace");
		else if (r->cwd >= 0 && fchdir(r->cwd))
			log_errno(errno, "cannot go back to the restorer's working directory");
		r->entered = false;
	}
	if (r->uts_entered && setns(r->self_uts, CLONE_NEWUTS))
		log_errno(errno, "cannot go back to the restorer's UTS namespace");
	r->uts_entered = false;
	if (r->self_uts >= 0)
		close(r->self_uts);
	if (r->userns >= 0)
		close(r->userns);
	if (r->last_pid >= 0)
		close(r->last_pid);
	for (size_t i = 0; r->img && r->src && i < r->img->n_mounts; i++) {
		if (r->src[i] >= 0)
			close(r->src[i]);
		r->src[i] = -1;
		if (failed && r->made && r->made[i]) {
			char *slash = strrchr(r->made[i], '/');
			int dfd;

			*slash = 0;
			dfd = open(*r->made[i] ? r->made[i] : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (dfd >= 0) {
				remove_tree(dfd, slash + 1);
				close(dfd);
			}
		}
		if (r->made)
			free(r->made[i]);
	}
	if (r->self_ns >= 0)
		close(r->self_ns);
	if (r->cwd >= 0)
		close(r->cwd);
	if (r->proc >= 0)
		close(r->proc);
	free(r->src);
	free(r->made);
	if (r->img)
		protobuf_c_message_free_unpacked(&r->img->base, NULL);
	free(r);
}
