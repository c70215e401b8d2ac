// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kup hold: keep the PIDs of the checkpointed tree free until its restore.
 *
 * A service started at boot has a low PID, and on the next boot the kernel
 * hands low PIDs out again, to udev's workers and the early services, long
 * before the root filesystem (the service's binaries and files) is mounted
 * and the restore can run.  So the initramfs runs `kup hold` first thing
 * (initramfs/): it reads the tree's process list from the store and makes
 * one placeholder process per PID and TID of the tree, created with that
 * number (clone3 set_tid).  When `kup restore --ppp` runs, once its images
 * are read and checked, it asks the holder to let go: the holder kills its
 * placeholders, reaps them, answers, and exits; the restore then creates the
 * tree with clone3 set_tid as always.  A PID just let go is not handed out
 * again by the kernel until its PID counter wraps (PIDs are allocated
 * cyclically, and set_tid does not move the counter), so nothing else takes
 * it in between unless it also asks for that exact number.
 *
 * The holder is a daemon: it answers on the abstract unix socket @kup-hold
 * (root only): "status" (what it holds), "release" (let go, then exit).  It
 * also lets go by itself after --timeout seconds, or on SIGTERM, SIGINT or
 * SIGHUP.  A placeholder gets SIGKILL if the holder dies, blocks every other
 * signal, closes every fd and sleeps; its name is "kup-hold".  A PID that is
 * taken when the holder starts (by a process of the initramfs, often) is
 * tried again every 100 ms until it comes free or the holder lets go.
 * Messages of the daemon go to /dev/kmsg (--log FILE otherwise).
 *
 * The daemon's command line starts with '@' ("@usr/sbin/kup hold ..."), and
 * so do its placeholders': systemd spares the processes of root so marked
 * when it kills what is left of a systemd initrd (dracut's) before switching
 * to the root file system, and at shutdown.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ckpt-summary.h"
#include "image.h"
#include "json.h"
#include "kup-image.pb-c.h"
#include "kup.h"

#define HOLD_SOCKET	"kup-hold"	/* abstract: the same before and after switch_root */
#define HOLD_MSG_MAX	65536
#define HOLD_RETRY_MS	100

static void hold_usage(FILE *f)
{
	fprintf(f,
		"Usage: kup hold [--ppp STORE] [--if-any] [--timeout SECONDS] [--log FILE]\n"
		"       kup hold --status [--json] | --release | --unit-done UNIT\n\n"
		"Keep the PIDs of the tree in the persistent page store free until it is\n"
		"restored: one placeholder process (\"kup-hold\") per PID and thread ID of\n"
		"the tree, created with that number.  Run first thing at boot, in the\n"
		"initramfs (its kup hook does it).  `kup restore --ppp` lets the PIDs go\n"
		"just before it recreates the tree.  The holder runs in the background;\n"
		"this command returns once the placeholders exist.\n\n"
		"      --ppp STORE        the store: a device, a file, or auto (default)\n"
		"      --if-any           exit 0 if there is no store or no checkpoint\n"
		"      --timeout SECONDS  let go by itself after SECONDS (default 600, or\n"
		"                         KUP_HOLD_TIMEOUT in /etc/default/kup; 0: wait\n"
		"                         for a restore forever)\n"
		"      --log FILE         where the holder's messages go (default\n"
		"                         /dev/kmsg, the kernel log)\n"
		"      --status           print what the running holder holds\n"
		"      --json             with --status: one JSON object {\"running\", \"held\",\n"
		"                         \"total\", \"pids\", \"taken\"}\n"
		"      --release          make the running holder let go and exit\n"
		"      --unit-done UNIT   UNIT, kept across the switch, was restored: once it\n"
		"                         is no longer activating (nor its memory still\n"
		"                         coming: kup-lazy), its line of /run/kup/unit\n"
		"                         goes and systemd reloads (kup-generator's drop-in)\n"
		"  -v, --verbose          more messages\n");
}

static socklen_t hold_addr(struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path + 1, HOLD_SOCKET, strlen(HOLD_SOCKET));
	return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(HOLD_SOCKET);
}

/*
 * Send @req to the running holder and read its answer into @ans.
 * -ENOENT when no holder runs; other errors are logged.
 */
static int hold_request(const char *req, char *ans, size_t len)
{
	struct sockaddr_un sa;
	socklen_t sl = hold_addr(&sa);
	struct timeval tv = { 30, 0 };
	struct ucred cr = { 0 };
	socklen_t cl = sizeof(cr);
	ssize_t n;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return log_errno(errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sl) < 0) {
		int e = errno;

		close(fd);
		if (e == ECONNREFUSED || e == ENOENT)
			return -ENOENT;
		return log_errno(e, "cannot reach the PID holder (@%s)", HOLD_SOCKET);
	}
	/* an abstract name can be taken by anybody: only root's holder counts */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) || cr.uid != 0) {
		log_warn("@%s is bound by pid %d (uid %d), not by root's kup hold: ignored",
			 HOLD_SOCKET, cr.pid, (int)cr.uid);
		close(fd);
		return -ENOENT;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0) {
		int e = errno;

		close(fd);
		return log_errno(e, "PID holder (@%s): cannot send '%s'", HOLD_SOCKET, req);
	}
	n = recv(fd, ans, len - 1, 0);
	if (n <= 0) {
		int e = n < 0 ? errno : EPIPE;

		close(fd);
		return log_errno(e, "PID holder (@%s): no answer to '%s'", HOLD_SOCKET, req);
	}
	ans[n] = 0;
	close(fd);
	return 0;
}

int kup_hold_release(const char *part)
{
	char ans[HOLD_MSG_MAX], req[32];
	int r;

	snprintf(req, sizeof(req), "release%s%.16s", part ? " " : "", part ? part : "");
	r = hold_request(req, ans, sizeof(ans));

	if (r == -ENOENT)
		return 0;
	if (r)
		return r;
	if (strncmp(ans, "released ", 9)) {
		log_err("PID holder (@%s): %s", HOLD_SOCKET, ans);
		return -EIO;
	}
	log_info("the PID holder let go: %s", ans);
	return 0;
}

/* ---- the holder ------------------------------------------------------------ */

struct held {
	pid_t id;		/* the number to keep */
	pid_t ph;		/* its placeholder, 0 while the number is taken */
	bool warned;
	bool released;		/* its tree's restore asked for it */
	char part[8];		/* a store of several trees: its part ("p1/") */
};

struct holder {
	struct held *v;
	size_t n;
	int listen_fd, sig_fd;
	pid_t self;
	int ntrees;		/* a store of several trees: how many are held */
	char what[64];		/* "the tree of pid N" or "N trees" */
};

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = ((const struct held *)a)->id, y = ((const struct held *)b)->id;

	return (x > y) - (x < y);
}

/*
 * The checkpoints of services (kup dump --unit): say which in KUP_UNIT_FILE,
 * one per line, for kup-generator (systemd-units/), which makes each unit's
 * start restore it.  /run is carried from the initramfs onto the root file
 * system.
 */
static void note_units(char units[][256], size_t n)
{
	FILE *f;

	if (!n)
		return;
	mkdir("/run/kup", 0755);
	f = fopen(KUP_UNIT_FILE, "we");
	for (size_t i = 0; f && i < n; i++)
		fprintf(f, "%s\n", units[i]);
	if (!f || fclose(f)) {
		log_warn("cannot write %s: %s; %s%s will start cold", KUP_UNIT_FILE,
			 strerror(errno), units[0], n > 1 ? " and the other kept units" : "");
		return;
	}
	for (size_t i = 0; i < n; i++)
		log_info("the checkpoint of %s is kept: its start will restore it", units[i]);
}

/* The ids of one tree (the store's only one, or a part of it) appended to
 * @h, tagged with @part; its unit, if any, into @unit.  The tree is checked
 * as restore will check it (ckpt_tree_ids), so that a damaged one is
 * refused here rather than numbers held for it. */
static int tree_ids(struct img_store *st, struct holder *h, const char *part, uint32_t *root,
		    char *unit, size_t ulen)
{
	struct ckpt_summary sum;
	uint32_t *ids = NULL;
	size_t n = 0;
	struct held *v;
	int r = ckpt_tree_ids(st, &ids, &n, root);

	if (r)
		return r;
	v = realloc(h->v, (h->n + n) * sizeof(*h->v));
	if (!v) {
		free(ids);
		return -ENOMEM;
	}
	h->v = v;
	for (size_t i = 0; i < n; i++) {
		memset(&v[h->n + i], 0, sizeof(*v));
		v[h->n + i].id = ids[i];
		snprintf(v[h->n + i].part, sizeof(v[0].part), "%s", part);
	}
	h->n += n;
	free(ids);
	if (!ckpt_summary_read(st, &sum)) {
		if (sum.unit && kup_unit_name_ok(sum.unit))
			snprintf(unit, ulen, "%s", sum.unit);
		ckpt_summary_free(&sum);
	}
	return 0;
}

/*
 * The PIDs and TIDs of the checkpoint in the store @given (of each tree of
 * a store of several, but those whose restore failed already), sorted,
 * unique: each tree is checked as restore will check it (ckpt_pstree_ids),
 * so that a damaged one is refused here rather than numbers held for it.
 */
static int read_ids(const char *given, struct holder *h, uint32_t *root)
{
	static char units[KUP_MAX_TREES][256];
	struct img_store *st;
	PartsImage *pi = NULL;
	size_t nu = 0;
	int r = kup_store_open_ppp(given, 0, &st);

	if (r)
		return r;
	r = kup_parts_read(st, &pi);
	if (!r && !pi && kup_ckpt_marked_failed(st, "no PID is held")) {
		st->ops->close(st);
		return 0;	/* nothing held, no unit noted: it starts cold */
	}
	if (!r && !pi) {
		units[0][0] = 0;
		r = tree_ids(st, h, "", root, units[0], sizeof(units[0]));
		nu = units[0][0] != 0;
	}
	for (size_t i = 0; !r && pi && i < pi->n_parts; i++) {
		struct img_store *ps;
		uint32_t rt;

		if (pi->parts[i]->failed)
			continue;
		ps = kup_part_store(st, pi->parts[i]);
		if (!ps) {
			r = -ENOMEM;
			break;
		}
		units[nu][0] = 0;
		r = tree_ids(ps, h, pi->parts[i]->prefix, &rt, units[nu], sizeof(units[nu]));
		if (!r && !*root)
			*root = rt;
		nu += !r && units[nu][0];
		h->ntrees++;
		ps->ops->close(ps);
	}
	if (!r && h->n) {
		qsort(h->v, h->n, sizeof(*h->v), cmp_pid);
		for (size_t i = 1; i < h->n; i++)
			if (h->v[i].id == h->v[i - 1].id) {
				log_err("%s: pid %d is in two of its trees; no PID is held", st->where,
					h->v[i].id);
				r = -EINVAL;
			}
	}
	if (!r)
		note_units(units, nu);
	if (r) {
		free(h->v);
		h->v = NULL;
		h->n = 0;
	}
	if (pi)
		parts_image__free_unpacked(pi, NULL);
	st->ops->close(st);
	return r;
}

/* A placeholder: sleeps with the number until it is killed. */
static pid_t make_placeholder(pid_t id, pid_t holder)
{
	uint64_t tid = id;
	struct clone_args ca = {
		.exit_signal = SIGCHLD,
		.set_tid = (uint64_t)&tid,
		.set_tid_size = 1,
	};
	sigset_t all;
	pid_t pid = syscall(SYS_clone3, &ca, sizeof(ca));

	if (pid)
		return pid < 0 ? -errno : pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != holder)
		_exit(0);
	prctl(PR_SET_NAME, "kup-hold");
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	syscall(SYS_close_range, 0, ~0U, 0);
	for (;;)
		pause();
}

static const char *comm_of(pid_t pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, buf, len - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return "?";
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return buf;
}

/* Make the placeholders still missing; returns how many are missing. */
static size_t take_free(struct holder *h, bool warn)
{
	size_t missing = 0;
	char comm[64];

	for (size_t i = 0; i < h->n; i++) {
		struct held *e = &h->v[i];
		pid_t r;

		if (e->ph || e->released)
			continue;
		r = make_placeholder(e->id, h->self);
		if (r > 0) {
			e->ph = r;
			if (e->warned)
				log_info("pid %d came free: held now", e->id);
			continue;
		}
		missing++;
		if (warn && !e->warned) {
			e->warned = true;
			if (r == -EEXIST)
				log_warn("pid %d is taken (by \"%s\"): will take it when it comes free; "
					 "the restore fails if it is still taken then",
					 e->id, comm_of(e->id, comm, sizeof(comm)));
			else
				log_warn("pid %d: cannot make a placeholder: %s", e->id, strerror(-r));
		}
	}
	return missing;
}

static size_t count_held(const struct holder *h)
{
	size_t k = 0;

	for (size_t i = 0; i < h->n; i++)
		k += h->v[i].ph > 0;
	return k;
}

/* "held N of M: p p p; taken: p p" */
static void describe(const struct holder *h, char *buf, size_t len)
{
	size_t off = 0, held = count_held(h), total = 0;
	int w;

	/* the PIDs of a tree restored (a store of several) are no longer counted */
	for (size_t i = 0; i < h->n; i++)
		total += !h->v[i].released;
	w = snprintf(buf, len, "held %zu of %zu", held, total);
	off = w > 0 ? (size_t)w : 0;
	for (int pass = 0; pass < 2; pass++) {
		const char *head = pass ? "; taken:" : ":";

		if ((pass ? total - held : held) == 0)
			continue;
		for (size_t i = 0; i < h->n && off < len; i++) {
			if ((h->v[i].ph > 0) != (pass == 0) || h->v[i].released)
				continue;
			w = snprintf(buf + off, len - off, "%s %d", head, h->v[i].id);
			head = "";
			off += w > 0 ? (size_t)w : 0;
		}
	}
	if (off >= len && len > 4)
		strcpy(buf + len - 4, "...");
}

/* Kill and reap the placeholders of @part (NULL: every one); true when
 * nothing is left to hold. */
static size_t let_go_part(struct holder *h, const char *part, bool *all)
{
	size_t k = 0;

	for (size_t i = 0; i < h->n; i++)
		if (!part || !strcmp(h->v[i].part, part)) {
			h->v[i].released = true;
			if (h->v[i].ph > 0)
				kill(h->v[i].ph, SIGKILL);
		}
	*all = true;
	for (size_t i = 0; i < h->n; i++) {
		*all = *all && h->v[i].released;
		if (h->v[i].ph <= 0 || !h->v[i].released)
			continue;
		while (waitpid(h->v[i].ph, NULL, 0) < 0 && errno == EINTR)
			;
		h->v[i].ph = 0;
		k++;
	}
	return k;
}

static size_t let_go(struct holder *h)
{
	bool all;

	return let_go_part(h, NULL, &all);
}

/* Reap placeholders that died (somebody killed one): take their numbers again. */
static void reap(struct holder *h)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		for (size_t i = 0; i < h->n; i++)
			if (h->v[i].ph == pid) {
				log_warn("the placeholder of pid %d was killed (%s): taking it again",
					 h->v[i].id, WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "exit");
				h->v[i].ph = 0;
			}
}

/* One request on the socket; returns true when the holder is done. */
static bool serve(struct holder *h)
{
	char req[64], ans[HOLD_MSG_MAX];
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	bool done = false;
	ssize_t n;
	int fd = accept4(h->listen_fd, NULL, NULL, SOCK_CLOEXEC);

	struct timeval tv = { 2, 0 };

	if (fd < 0)
		return false;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = recv(fd, req, sizeof(req) - 1, 0);
	req[n > 0 ? n : 0] = 0;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) || cr.uid != 0) {
		snprintf(ans, sizeof(ans), "refused: only root may talk to the holder");
	} else if (!strcmp(req, "status")) {
		describe(h, ans, sizeof(ans));
	} else if (!strcmp(req, "release")) {
		size_t k = let_go(h);

		snprintf(ans, sizeof(ans), "released %zu pids (asked by pid %d)", k, cr.pid);
		log_info("%s", ans);
		done = true;
	} else if (!strncmp(req, "release ", 8)) {
		/* one tree of a store of several: the others stay held */
		size_t k = let_go_part(h, req + 8, &done);

		snprintf(ans, sizeof(ans), "released %zu pids of %.16s (asked by pid %d)%s", k,
			 req + 8, cr.pid, done ? "; none left" : "");
		log_info("%s", ans);
	} else {
		snprintf(ans, sizeof(ans), "unknown request '%.32s'", req);
	}
	if (send(fd, ans, strlen(ans), MSG_NOSIGNAL) < 0)
		log_warn("cannot answer pid %d: %s", cr.pid, strerror(errno));
	close(fd);
	return done;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void holder_loop(struct holder *h, long timeout_s)
{
	long long deadline = timeout_s ? now_ms() + timeout_s * 1000LL : 0;

	for (;;) {
		struct pollfd p[2] = { { h->listen_fd, POLLIN, 0 }, { h->sig_fd, POLLIN, 0 } };
		bool missing = take_free(h, false) > 0;
		long long wait = missing ? HOLD_RETRY_MS : -1;
		int r;

		if (deadline) {
			long long left = deadline - now_ms();

			if (left <= 0) {
				log_info("no restore asked within %ld s: letting %zu pids go",
					 timeout_s, let_go(h));
				return;
			}
			if (wait < 0 || left < wait)
				wait = left;
		}
		r = poll(p, 2, (int)wait);
		if (r < 0 && errno != EINTR) {
			log_warn("poll: %s: letting %zu pids go", strerror(errno), let_go(h));
			return;
		}
		if (p[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			while (read(h->sig_fd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGCHLD) {
					reap(h);
					continue;
				}
				log_info("%s: letting %zu pids go", strsignal(si.ssi_signo), let_go(h));
				return;
			}
		}
		if ((p[0].revents & POLLIN) && serve(h))
			return;
	}
}

/*
 * Mark this process (and the placeholders it forks from now on) to be
 * spared by systemd's killing sprees: the first byte of its command line
 * (/proc/PID/cmdline, the memory argv[0] is in) becomes '@', systemd's mark
 * for the daemons a root file system needs.  Without it, systemd in a
 * dracut initrd sends SIGTERM to the holder just before it switches to the
 * root file system, and the PIDs are let go before the restore.
 */
static void mark_spared(void)
{
	char buf[1024], *p;
	unsigned long start = 0;
	ssize_t n;
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	/* arg_start is field 48: the 46th after the ')' that ends the name */
	p = strrchr(buf, ')');
	for (int i = 0; i < 46 && p; i++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%lu", &start) != 1 || !start) {
		log_warn("cannot find my command line in /proc/self/stat: systemd may "
			 "stop the holder when it leaves a systemd initrd");
		return;
	}
	*(char *)start = '@';
}

/*
 * Fork the daemon.  Its PID must not be one of the tree's: a fork that gets
 * one exits at once and we fork again (its number is free again for the
 * holder to take).  Returns the daemon's pid in the parent, 0 in the daemon.
 */
static pid_t fork_daemon(const struct holder *h)
{
	for (int tries = 0; tries < 64; tries++) {
		struct held key;
		pid_t pid = fork();

		if (pid < 0)
			return log_errno(errno, "cannot fork");
		key.id = pid ? pid : getpid();
		if (!bsearch(&key, h->v, h->n, sizeof(*h->v), cmp_pid))
			return pid;
		if (!pid)
			_exit(0);
		waitpid(pid, NULL, 0);
	}
	log_err("cannot fork a holder whose own PID is not one of the tree's");
	return -EAGAIN;
}

static int hold_start(const char *given, bool if_any, long timeout_s, const char *logpath)
{
	struct holder h = { .listen_fd = -1, .sig_fd = -1 };
	struct sockaddr_un sa;
	socklen_t sl = hold_addr(&sa);
	char msg[HOLD_MSG_MAX];
	uint32_t root = 0;
	int pfd[2], logfd, r;
	sigset_t sigs;
	pid_t pid;
	ssize_t n;
	struct timespec rt, bt;

	/* when the hold began, for the phases of a switch (kup status) */
	clock_gettime(CLOCK_REALTIME, &rt);
	if (clock_gettime(CLOCK_BOOTTIME, &bt))
		memset(&bt, 0, sizeof(bt));
	if (if_any && !kup_store_has_ckpt(given)) {
		log_info("no checkpoint in a persistent page store (%s): no PIDs to hold",
			 given ? given : "auto");
		return KUP_EXIT_OK;
	}
	if (read_ids(given, &h, &root))
		return KUP_EXIT_FAIL;
	if (!h.n) {
		log_info("no tree of the store (%s) is to be restored at this boot: no PIDs to hold",
			 given ? given : "auto");
		return KUP_EXIT_OK;
	}
	if (h.ntrees > 1)
		snprintf(h.what, sizeof(h.what), "%d trees", h.ntrees);
	else
		snprintf(h.what, sizeof(h.what), "the tree of pid %u", root);
	h.listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (h.listen_fd < 0 || bind(h.listen_fd, (struct sockaddr *)&sa, sl) < 0 ||
	    listen(h.listen_fd, 8) < 0) {
		if (errno == EADDRINUSE)
			log_err("a PID holder is already running (@%s): kup hold --status", HOLD_SOCKET);
		else
			log_errno(errno, "cannot listen on @%s", HOLD_SOCKET);
		return KUP_EXIT_FAIL;
	}
	logfd = open(logpath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (logfd < 0)
		log_warn("%s: %s; the holder's messages are lost", logpath, strerror(errno));
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return log_errno(errno, "pipe"), KUP_EXIT_FAIL;
	pid = fork_daemon(&h);
	if (pid < 0)
		return KUP_EXIT_FAIL;
	if (pid) {
		/* the command: wait for the placeholders, say how it went */
		close(pfd[1]);
		close(h.listen_fd);
		do
			n = read(pfd[0], msg, sizeof(msg) - 1);
		while (n < 0 && errno == EINTR);
		if (n <= 0) {
			log_err("the PID holder (pid %d) died before it held anything", pid);
			return KUP_EXIT_FAIL;
		}
		msg[n] = 0;
		free(h.v);
		log_info("holding the PIDs of %s for %s restore (holder pid %d): %s",
			 h.what, h.ntrees > 1 ? "their" : "its", pid, msg);
		switch_hold_started(rt.tv_sec * 1000000000ULL + rt.tv_nsec,
				    bt.tv_sec * 1000000000ULL + bt.tv_nsec);
		return KUP_EXIT_OK;
	}

	/* the daemon */
	close(pfd[0]);
	setsid();
	mark_spared();
	if (chdir("/"))
		_exit(KUP_EXIT_FAIL);
	h.self = getpid();
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGCHLD);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	h.sig_fd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (h.sig_fd < 0)
		_exit(KUP_EXIT_FAIL);
	log_set_prefix("kup hold");
	take_free(&h, true);
	describe(&h, msg, sizeof(msg));
	r = write(pfd[1], msg, strlen(msg)) < 0;
	close(pfd[1]);
	/* from now on: messages to the log, nothing on the terminal */
	{
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		if (null >= 0) {
			dup2(null, 0);
			dup2(logfd >= 0 ? logfd : null, 1);
			dup2(logfd >= 0 ? logfd : null, 2);
			close(null);
		}
		if (logfd >= 0)
			close(logfd);
		log_set_level_prefix(-1);	/* /dev/kmsg takes levels */
	}
	log_info("holding the PIDs of %s: %s", h.what, msg);
	if (r)
		log_warn("the command that started the holder is gone");
	holder_loop(&h, timeout_s);
	free(h.v);
	_exit(KUP_EXIT_OK);
}

/*
 * kup hold --unit-done UNIT, from the transient timer of kup-generator's
 * drop-in: once UNIT's start is over (systemd has read its PID file and run
 * its ExecStartPost), its line of /run/kup/unit goes and systemd reloads,
 * which drops the drop-in.  Not sooner: a reload must not take the drop-in
 * from a unit still starting (other kept units keep their lines until their
 * own turn).  At most 15 minutes of waiting.  After a lazy restore, not
 * before its memory is all in either (no kup-lazy left in the unit's
 * cgroup; at most an hour more): until then the tree may yet fail (a page
 * that cannot be read back kills it), and OnFailure=kup-cold@ of the
 * drop-in must be there to start the unit cold.
 */
static int unit_done(const char *unit)
{
	char *isact[] = { "systemctl", "is-active", "--", (char *)unit, NULL };
	char *reload[] = { "systemctl", "daemon-reload", NULL };
	const struct timespec tick = { 0, 200 * 1000 * 1000 };
	char *out;
	int st;

	if (!kup_unit_name_ok(unit)) {
		return kup_usage_error("'%s' is not the name of a service unit (NAME.service)", unit);
	}
	for (int i = 0; i < 4500; i++) {
		bool starting;

		out = kup_capture(isact, &st);
		starting = out && !strncmp(out, "activating", 10);
		free(out);
		if (!starting)
			break;
		nanosleep(&tick, NULL);
	}
	/* a lazy restore: the drop-in (its OnFailure=kup-cold@) stays until the
	 * memory is all in, for the tree is killed if a page cannot be read
	 * back; the unit then fails and starts cold */
	for (int i = 0; i < 18000; i++) {
		pid_t lazy = kup_unit_lazy_pid(unit);
		bool active;

		if (!lazy)
			break;
		if (!i)
			log_info("%s: its memory follows (kup-lazy, pid %d): its kup drop-in stays "
				 "until it is all in", unit, lazy);
		out = kup_capture(isact, &st);
		active = out && !strncmp(out, "active", 6);
		free(out);
		if (!active)
			break;
		nanosleep(&tick, NULL);
	}
	kup_unit_forget(unit);
	out = kup_capture(reload, &st);
	free(out);
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		log_err("%s: systemctl daemon-reload failed: its kup drop-in stays until the next one",
			unit);
		return KUP_EXIT_FAIL;
	}
	log_info("%s runs: its kup drop-in is gone", unit);
	return KUP_EXIT_OK;
}

/*
 * The holder's answer to "status" ("held N of M: P P; taken: P P", cut
 * with "..." when long) as JSON: {"running": true, "held": N, "total": M,
 * "pids": [held], "taken": [not yet held], "truncated": BOOL}.  @ans NULL:
 * no holder runs.
 */
static int print_status_json(const char *ans)
{
	json_t *o = json_object(), *held = json_array(), *taken = json_array(), *cur = held;
	unsigned long nheld = 0, total = 0;
	const char *p;
	int off = 0;

	if (!o || !held || !taken) {
		json_decref(o), json_decref(held), json_decref(taken);
		return -ENOMEM;
	}
	kup_json_set(o, "running", json_boolean(ans != NULL));
	if (!ans) {
		json_decref(held), json_decref(taken);
		return kup_json_print(stdout, o);
	}
	if (sscanf(ans, "held %lu of %lu%n", &nheld, &total, &off) < 2)
		off = 0;
	for (p = ans + off; *p;) {
		char *end;
		long v;

		if (!strncmp(p, "; taken:", 8)) {
			cur = taken;
			p += 8;
			continue;
		}
		if (*p < '0' || *p > '9') {
			p++;
			continue;
		}
		v = strtol(p, &end, 10);
		/* a number cut by "..." is not one */
		if (strncmp(end, "...", 3))
			json_array_append_new(cur, json_integer(v));
		p = end;
	}
	kup_json_set(o, "held", json_integer(nheld));
	kup_json_set(o, "total", json_integer(total));
	kup_json_set(o, "pids", held);
	kup_json_set(o, "taken", taken);
	kup_json_set(o, "truncated", json_boolean(strstr(ans, "...") != NULL));
	return kup_json_print(stdout, o);
}

int cmd_hold(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ppp", required_argument, 0, 'P' },
		{ "if-any", no_argument, 0, 'I' },
		{ "timeout", required_argument, 0, 't' },
		{ "log", required_argument, 0, 'l' },
		{ "status", no_argument, 0, 's' },
		{ "release", no_argument, 0, 'r' },
		{ "unit-done", required_argument, 0, 'U' },
		{ "json", no_argument, 0, 'J' },
		{ "verbose", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' },
		{}
	};
	const char *given = NULL, *logpath = "/dev/kmsg", *done_unit = NULL;
	bool if_any = false, status = false, release = false, json = false;
	long timeout_s = -1;
	char *end, ans[HOLD_MSG_MAX];
	int c, r;

	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 'P': given = optarg; break;
		case 'I': if_any = true; break;
		case 'l': logpath = optarg; break;
		case 's': status = true; break;
		case 'r': release = true; break;
		case 'U': done_unit = optarg; break;
		case 'J': json = true; break;
		case 't':
			errno = 0;
			timeout_s = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || timeout_s < 0 || timeout_s > 86400 * 365) {
				return kup_usage_error("--timeout %s: not a number of seconds", optarg);
			}
			break;
		case 'v': log_set_level(log_get_level() + 1); break;
		case 'h': hold_usage(stdout); return 0;
		default: return kup_usage_error(NULL);
		}
	}
	if (optind != argc)
		return kup_usage_error("unexpected argument '%s'", argv[optind]);
	if (status + release + (done_unit != NULL) > 1)
		return kup_usage_error("--status, --release and --unit-done exclude each other");
	if ((status || release || done_unit) && (given || if_any))
		return kup_usage_error("--ppp and --if-any go with starting a holder, not with %s",
				       status ? "--status" : release ? "--release" : "--unit-done");
	if (json && !status)
		return kup_usage_error("--json goes with --status");
	if (done_unit)
		return unit_done(done_unit);
	if (status || release) {
		r = hold_request(status ? "status" : "release", ans, sizeof(ans));
		if (r == -ENOENT && json) {
			print_status_json(NULL);
			return KUP_EXIT_FAIL;
		}
		if (r == -ENOENT) {
			log_err("no PID holder is running");
			return KUP_EXIT_FAIL;
		}
		if (r)
			return KUP_EXIT_FAIL;
		if (strncmp(ans, status ? "held " : "released ", status ? 5 : 9)) {
			log_err("PID holder (@%s): %s", HOLD_SOCKET, ans);
			return KUP_EXIT_FAIL;
		}
		if (json)
			return print_status_json(ans) ? KUP_EXIT_FAIL : KUP_EXIT_OK;
		printf("%s\n", ans);
		return KUP_EXIT_OK;
	}
	if (timeout_s < 0) {
		/* KUP_HOLD_TIMEOUT of the configuration file (the initramfs
		 * hook carries it); a bad file does not keep PIDs from being held */
		struct kup_config cfg;

		timeout_s = 600;
		if (kup_config_load(NULL, &cfg)) {
			log_warn("the configuration file is ignored: --timeout 600");
		} else {
			if (cfg.hold_timeout >= 0)
				timeout_s = cfg.hold_timeout;
			kup_config_free(&cfg);
		}
	}
	return hold_start(given, if_any, timeout_s, logpath);
}

