// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Lazy restore (kup restore --lazy): the tree runs as soon as everything
 * but its private anonymous memory is back; those pages come from the
 * images on first touch through userfaultfd and from a background pass.
 * docs/design.md, "Lazy restore".
 *
 * Restorer side: lazy_start() forks the server ("kup-lazy") before anything
 * of the tree is made; lazy_register() gives it, for each task, a userfaultfd
 * made inside the task (an injected userfaultfd(), taken with pidfd_getfd and
 * closed in the task) with the task's lazy mappings registered MISSING;
 * lazy_running() tells it the tree runs, lazy_stop() kills it (a failed
 * restore).
 *
 * Server side: one loop over its control socket and the userfaultfds.  A
 * fault gets its page (and a few pending after it) with UFFDIO_COPY from the
 * image, or a zero page where the image has none (a page the process
 * dropped since, or never had); between events the background pass copies
 * the pending pages in address order, a piece of each process in turn.
 * Forks, mremap, munmap and madvise(MADV_DONTNEED) come as events and move
 * or drop the bookkeeping.  A process whose pages are all in gets its
 * userfaultfd closed; the server exits when none is left, and, the tree
 * being restored, then lets the caller scrub the store (on_memory_complete).
 * A page that cannot be read back kills the tree: it must not run on with
 * zeros.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ckpt-images.h"
#include "internal.h"
#include "journal.h"
#include "restore.h"

#define LAZY_CHUNK	(1UL << 20)	/* read from an image at a time (a store's extent) */
_Static_assert(LAZY_CHUNK == IMG_PAGES_CHUNK, "a piece read is a piece checked");
#define LAZY_AHEAD	16		/* pages given at a fault, where pending */
#define PG		PAGE_SIZE_K
#define LAZY_MAX_VMAS	65536		/* mappings of a task handed over in one message */

enum { LAZY_ADD = 1, LAZY_RUNNING };

struct lazy_hdr {
	int type;
	int idx;		/* LAZY_ADD: the task, in the restore's order */
	uint32_t nvmas;		/* ... followed by one byte per mapping: lazy or not */
};

/* ---- restorer side -------------------------------------------------------- */

static void lazy_serve(struct rctx *c, int sock) __attribute__((noreturn));

static bool in_tree(const struct rctx *c, pid_t pid)
{
	for (int i = 0; i < c->n; i++) {
		const PstreeEntry *pe = c->p[i].pe;

		if ((pid_t)pe->pid == pid || (pid_t)pe->pgid == pid || (pid_t)pe->sid == pid)
			return true;
		for (size_t t = 0; t < pe->n_threads; t++)
			if ((pid_t)pe->threads[t] == pid)
				return true;
	}
	return false;
}

/*
 * Fork the server, before anything of the tree exists (it must hold none of
 * the tree's files) and with a pid that is none of the tree's: a child
 * that got one of those is let go and another forked.
 */
int lazy_start(struct rctx *c)
{
	for (int tries = 0; tries < 64; tries++) {
		int sv[2];
		pid_t pid;
		char go = 'G';

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
			return log_errno(errno, "cannot create the lazy pages server's socket");
		pid = fork();
		if (pid < 0) {
			close(sv[0]);
			close(sv[1]);
			return log_errno(errno, "cannot fork the lazy pages server");
		}
		if (pid == 0) {
			close(sv[0]);
			if (read(sv[1], &go, 1) != 1 || go != 'G')
				_exit(0);
			lazy_serve(c, sv[1]);
		}
		close(sv[1]);
		if (in_tree(c, pid)) {
			close(sv[0]);
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
			continue;
		}
		if (write(sv[0], &go, 1) != 1) {
			int e = errno;

			close(sv[0]);
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return log_errno(e, "cannot start the lazy pages server");
		}
		c->lazy_pid = pid;
		c->lazy_sock = sv[0];
		log_debug("lazy pages server: pid %d", pid);
		return 0;
	}
	return log_errno(EAGAIN, "cannot fork the lazy pages server with a pid of its own");
}

void lazy_stop(struct rctx *c)
{
	if (c->lazy_sock >= 0)
		close(c->lazy_sock);
	c->lazy_sock = -1;
	if (c->lazy_pid > 0) {
		kill(c->lazy_pid, SIGKILL);
		while (waitpid(c->lazy_pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	c->lazy_pid = 0;
}

void lazy_running(struct rctx *c)
{
	struct lazy_hdr h = { .type = LAZY_RUNNING };

	if (c->lazy_sock < 0)
		return;
	if (send(c->lazy_sock, &h, sizeof(h), MSG_NOSIGNAL) != sizeof(h))
		log_warn("cannot tell the lazy pages server (pid %d) the tree runs: the store "
			 "will not be scrubbed by it", c->lazy_pid);
	close(c->lazy_sock);
	c->lazy_sock = -1;
}

static int send_uffd(struct rctx *c, int idx, int ufd, const uint8_t *lazy, uint32_t nvmas)
{
	struct lazy_hdr h = { .type = LAZY_ADD, .idx = idx, .nvmas = nvmas };
	struct iovec io[2] = { { &h, sizeof(h) }, { (void *)lazy, nvmas } };
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
	struct msghdr mh = { .msg_iov = io, .msg_iovlen = 2, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	memset(u.buf, 0, sizeof(u.buf));
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &ufd, sizeof(int));
	if (sendmsg(c->lazy_sock, &mh, MSG_NOSIGNAL) != (ssize_t)(sizeof(h) + nvmas))
		return log_errno(errno, "pid %u: cannot hand its memory to the lazy pages server "
				 "(pid %d)", c->p[idx].pe->pid, c->lazy_pid);
	return 0;
}

#define UFFD_EVENTS (UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | \
		     UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_THREAD_ID)

/*
 * A userfaultfd of the task's own (made in it, so its mm is the task's),
 * taken into the restorer and closed in the task, its lazy mappings
 * registered, handed to the server.  -EOPNOTSUPP: this kernel gives none
 * (the caller writes the pages eagerly).
 */
int lazy_register(struct takeover *tk)
{
	struct rproc *p = tk->p;
	pid_t pid = p->pe->pid;
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_EVENTS };
	long tfd;
	int pidfd, ufd, err;

	if (p->mm->n_vmas > LAZY_MAX_VMAS) {
		log_warn("pid %d: %zu mappings, more than a lazy restore takes (%d): its memory is "
			 "restored eagerly", pid, p->mm->n_vmas, LAZY_MAX_VMAS);
		return -EOPNOTSUPP;
	}
	err = inj(tk, pid, SYS_userfaultfd, "userfaultfd", &tfd, O_CLOEXEC | O_NONBLOCK, 0, 0, 0, 0, 0);
	if (err)
		return err;
	if (tfd < 0) {
		log_warn("pid %d: no userfaultfd (%s): its memory is restored eagerly", pid,
			 strerror((int)-tfd));
		return -EOPNOTSUPP;
	}
	pidfd = syscall(SYS_pidfd_open, pid, 0);
	ufd = pidfd >= 0 ? syscall(SYS_pidfd_getfd, pidfd, (int)tfd, 0) : -1;
	err = ufd < 0 ? log_errno(errno, "pid %d: cannot take its userfaultfd", pid) : 0;
	if (pidfd >= 0)
		close(pidfd);
	if (!err)
		err = INJ(tk, pid, SYS_close, "cannot close its userfaultfd", tfd, 0, 0, 0, 0, 0);
	if (err)
		goto out;
	if (ioctl(ufd, UFFDIO_API, &api)) {
		log_warn("pid %d: userfaultfd without the events a lazy restore needs (%s): its "
			 "memory is restored eagerly", pid, strerror(errno));
		err = -EOPNOTSUPP;
		goto out;
	}
	for (size_t i = 0; i < p->mm->n_vmas; i++) {
		const VmaEntry *v = p->mm->vmas[i];
		struct uffdio_register reg = { .range = { v->start, v->end - v->start },
					       .mode = UFFDIO_REGISTER_MODE_MISSING };

		if (!p->lazy[i])
			continue;
		if (ioctl(ufd, UFFDIO_REGISTER, &reg) ||
		    !(reg.ioctls & (1ULL << _UFFDIO_COPY))) {
			err = log_errno(errno ? errno : EOPNOTSUPP, "pid %d: cannot register "
					"0x%" PRIx64 "-0x%" PRIx64 " for a lazy restore", pid,
					v->start, v->end);
			goto out;
		}
	}
	err = send_uffd(tk->c, p - tk->c->p, ufd, p->lazy, p->mm->n_vmas);
out:
	if (ufd >= 0)
		close(ufd);
	return err;
}

/* ---- the server ------------------------------------------------------------ */

struct larea {
	uint64_t start, end;	/* where it is now */
	uint64_t src;		/* the dumped address of start */
	int img;		/* the task whose image holds its pages */
	uint64_t *bits;		/* per page: still to fill from the image */
	bool huge;		/* filled a 2 MiB extent at a time (LAZY_HUGE) */
	uint64_t *hbits;	/* per 2 MiB extent from start's: whole in the image,
				 * to collapse once filled (or NULL) */
};

struct lmm {
	int uffd;
	pid_t pid;		/* the restored task (a forked child: its ancestor's) */
	pid_t seen;		/* the process (a thread of it seen faulting) */
	int pidfd;		/* ... its pidfd, or -1 (a forked child not seen yet) */
	bool pidfd_thread;	/* ... of one of its threads only */
	struct larea *a;
	int n;
	uint64_t left;		/* pending pages */
	int img;		/* the task whose image (its hot_runs) it began as */
	size_t hot;		/* background: the hot run it is at */
	int cur;		/* background: the area it is at */
	uint64_t curw;		/* ... and the word of its bits (none set before it) */
	uint64_t *retry;	/* faults to answer again after an event */
	int nretry;
};

struct lsrv {
	struct rctx *c;
	int sock;
	bool running;
	struct lmm **mm;
	int nmm, next;
	struct img_blob *pages;	/* per task: its page image, opened here */
	uint8_t *buf;		/* one piece of one image */
	int buf_img;
	uint64_t buf_off;
	size_t buf_len;
	uint64_t filled, zeroed, unneeded;	/* pages: copied, zero, of processes gone */
	uint64_t collapsed, not_collapsed;	/* 2 MiB extents */
	uint64_t hot_filled;		/* ... of them by the hot pass */
	const char *hold_cold;		/* tests: only the hot pass before it exists */
	bool cold_held;			/* ... and the hot pass is over */
};

static bool bit_test(const uint64_t *b, uint64_t i)
{
	return b[i / 64] >> (i % 64) & 1;
}

static void bit_clear(uint64_t *b, uint64_t i)
{
	b[i / 64] &= ~(1ULL << (i % 64));
}

/* The 2 MiB extent of @a holding @addr, as an index of its hbits. */
static uint64_t hidx(const struct larea *a, uint64_t addr)
{
	return addr / THP_SIZE - a->start / THP_SIZE;
}

/* Clear the pending bits of [s, e) in every area of @m (and its extents
 * there are whole no longer). */
static void drop_range(struct lmm *m, uint64_t s, uint64_t e)
{
	for (int k = 0; k < m->n; k++) {
		struct larea *a = &m->a[k];
		uint64_t from = s > a->start ? s : a->start, to = e < a->end ? e : a->end;

		for (uint64_t at = from; at < to; at += PG) {
			uint64_t i = (at - a->start) / PG;

			if (bit_test(a->bits, i)) {
				bit_clear(a->bits, i);
				m->left--;
			}
			if (a->hbits)
				bit_clear(a->hbits, hidx(a, at));
		}
	}
}

static struct larea *area_of(struct lmm *m, uint64_t addr)
{
	for (int k = 0; k < m->n; k++)
		if (addr >= m->a[k].start && addr < m->a[k].end)
			return &m->a[k];
	return NULL;
}

static int area_add(struct lmm *m, uint64_t start, uint64_t end, uint64_t src, int img,
		    bool huge)
{
	struct larea *na = realloc(m->a, (m->n + 1) * sizeof(*na));
	uint64_t words = ((end - start) / PG + 63) / 64;
	uint64_t hwords = ((end - 1) / THP_SIZE - start / THP_SIZE + 1 + 63) / 64;

	if (!na)
		return -ENOMEM;
	m->a = na;
	na[m->n] = (struct larea){ start, end, src, img, calloc(words ? words : 1, 8), huge,
				   huge ? calloc(hwords, 8) : NULL };
	if (!na[m->n].bits || (huge && !na[m->n].hbits)) {
		free(na[m->n].bits);
		free(na[m->n].hbits);
		return -ENOMEM;
	}
	m->n++;
	return 0;
}

static void mm_free(struct lmm *m)
{
	for (int k = 0; k < m->n; k++) {
		free(m->a[k].bits);
		free(m->a[k].hbits);
	}
	free(m->a);
	free(m->retry);
	if (m->uffd >= 0)
		close(m->uffd);
	if (m->pidfd >= 0)
		close(m->pidfd);
	free(m);
}

static void srv_drop(struct lsrv *s, int k)
{
	mm_free(s->mm[k]);
	s->mm[k] = s->mm[--s->nmm];
}

static int pidfd_signal(int pidfd, int sig)
{
	return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

static int list_add(pid_t **list, int *n, int *cap, pid_t pid)
{
	for (int i = 0; i < *n; i++)
		if ((*list)[i] == pid)
			return 0;
	if (*n == *cap) {
		pid_t *nl = realloc(*list, (*cap = *cap ? *cap * 2 : 64) * sizeof(*nl));

		if (!nl)
			return -ENOMEM;
		*list = nl;
	}
	(*list)[(*n)++] = pid;
	return 1;
}

/*
 * Stop every process of the tree, then kill them all: those it serves (by
 * pidfd, taken when each was handed over or first seen faulting: a pid
 * reused since by another process is never signalled), and what they have
 * forked, found through /proc/PID/task/TID/children of stopped processes
 * (whose children cannot be reaped, so their pids cannot be reused).
 */
static void kill_tree(struct lsrv *s)
{
	pid_t *list = NULL;
	int n = 0, cap = 0;

	for (int k = 0; k < s->nmm; k++) {
		struct lmm *m = s->mm[k];

		if (m->pidfd >= 0 && !pidfd_signal(m->pidfd, SIGSTOP))
			list_add(&list, &n, &cap, m->seen);
	}
	for (int i = 0; i < n; i++) {
		char path[64];
		DIR *d;
		struct dirent *de;

		snprintf(path, sizeof(path), "/proc/%d/task", list[i]);
		d = opendir(path);
		while (d && (de = readdir(d))) {
			char cp[320];
			FILE *f;

			if (de->d_name[0] == '.')
				continue;
			snprintf(cp, sizeof(cp), "/proc/%d/task/%s/children", list[i], de->d_name);
			f = fopen(cp, "re");
			for (int child; f && fscanf(f, "%d", &child) == 1;)
				if (list_add(&list, &n, &cap, child) > 0)
					kill(child, SIGSTOP);
			if (f)
				fclose(f);
		}
		if (d)
			closedir(d);
	}
	for (int k = 0; k < s->nmm; k++)
		if (s->mm[k]->pidfd >= 0)
			pidfd_signal(s->mm[k]->pidfd, SIGKILL);
	for (int i = 0; i < n; i++)
		kill(list[i], SIGKILL);
	free(list);
}

/* Has the process of @m exited (its pidfd readable)?  Unknown (no pidfd,
 * or only a thread's): no. */
static bool mm_dead(const struct lmm *m)
{
	struct pollfd p = { .fd = m->pidfd, .events = POLLIN };

	return m->pidfd >= 0 && !m->pidfd_thread && poll(&p, 1, 0) == 1;
}

static void srv_fatal(struct lsrv *s, struct lmm *m, uint64_t addr, int err, bool filling)
	__attribute__((noreturn));
static void srv_fatal(struct lsrv *s, struct lmm *m, uint64_t addr, int err, bool filling)
{
	if (filling)
		log_err("pid %d: cannot fill the page at 0x%" PRIx64 " (%s): killing the whole "
			"tree, it must not run on without its memory", m->pid, addr,
			strerror(err < 0 ? -err : err));
	else
		log_err("pid %d: the page at 0x%" PRIx64 " cannot be read back from %s (%s): "
			"killing the whole tree, it must not run on without its memory", m->pid,
			addr, s->c->st->where, strerror(err < 0 ? -err : err));
	kill_tree(s);
	if (s->c->o->on_fatal) {
		for (int i = 0; i < s->c->n; i++)
			if (s->c->p[i].alive)
				s->c->st->ops->release(s->c->st, &s->pages[i]);
		s->c->st->ops->close(s->c->st);
		s->c->o->on_fatal(s->c->o->arg);
	}
	_exit(1);
}

/* The page image of task @img at page @pgoff, read a piece at a time. */
static int src_page(struct lsrv *s, int img, uint64_t pgoff, const uint8_t **page)
{
	struct img_store *st = s->c->st;
	struct img_blob *b = &s->pages[img];
	const MmImage *mm = s->c->p[img].mm;
	uint64_t off = pgoff * PG, cs = off & ~(LAZY_CHUNK - 1);
	int err = 0;

	if (off >= b->len)
		return -ERANGE;
	if (s->buf_img != img || s->buf_off != cs) {
		size_t len = b->len - cs < LAZY_CHUNK ? b->len - cs : LAZY_CHUNK;

		s->buf_img = -1;
		if (st->ops->read)
			err = st->ops->read(st, b, cs, s->buf, len);
		else if (b->data)
			memcpy(s->buf, (uint8_t *)b->data + cs, len);
		else
			err = -EBADF;
		if (err)
			return err;
		/* a directory's image: the piece's own checksum, of the copy (a
		 * store's reads check its extents themselves) */
		if (b->data && mm->n_chunk_sum &&
		    (cs / IMG_PAGES_CHUNK >= mm->n_chunk_sum ||
		     img_piece_sum(mm->pages_sum_kind, s->buf, len) !=
		     mm->chunk_sum[cs / IMG_PAGES_CHUNK])) {
			log_err("image %s: the piece at offset %" PRIu64 ": checksum mismatch "
				"(corrupted)", b->name, cs);
			return -EBADMSG;
		}
		s->buf_img = img;
		s->buf_off = cs;
		s->buf_len = len;
	}
	*page = s->buf + (off - cs);
	return 0;
}

static void add_retry(struct lmm *m, uint64_t addr)
{
	uint64_t *nr = realloc(m->retry, (m->nretry + 1) * sizeof(*nr));

	if (nr) {
		m->retry = nr;
		m->retry[m->nretry++] = addr;
	}
}

static void wake(struct lmm *m, uint64_t addr, uint64_t len)
{
	struct uffdio_range r = { addr, len };

	ioctl(m->uffd, UFFDIO_WAKE, &r);
}

/*
 * Copy the pending pages from @addr on (at most @max, in one run of the
 * image and one piece of it) into @m.  Pages copied (a page found present
 * counts as done), or -EAGAIN (the layout is changing: events first),
 * -ESRCH (the process is gone), -ENOENT (no longer mapped).  A page that
 * cannot be read is fatal.
 */
static long fill(struct lsrv *s, struct lmm *m, struct larea *a, uint64_t addr, uint64_t max)
{
	const MmImage *mm = s->c->p[a->img].mm;
	uint64_t i = (addr - a->start) / PG, sv = a->src + (addr - a->start), n = 0, done;
	const PageRun *r = ckpt_mm_run_at(mm, sv, false);
	const uint8_t *src;
	struct uffdio_copy uc;
	int err;

	if (!r) {		/* cannot be: only pages of runs are pending */
		bit_clear(a->bits, i);
		m->left--;
		return 1;
	}
	err = src_page(s, a->img, r->off + (sv - r->vaddr) / PG, &src);
	if (err)
		srv_fatal(s, m, addr, err, false);
	if (max > r->nr_pages - (sv - r->vaddr) / PG)
		max = r->nr_pages - (sv - r->vaddr) / PG;
	if (max > (uint64_t)(s->buf + s->buf_len - src) / PG)
		max = (s->buf + s->buf_len - src) / PG;
	if (max > (a->end - addr) / PG)
		max = (a->end - addr) / PG;
	while (n < max && bit_test(a->bits, i + n))
		n++;
	uc = (struct uffdio_copy){ .dst = addr, .src = (uintptr_t)src, .len = n * PG };
	err = ioctl(m->uffd, UFFDIO_COPY, &uc) ? errno : 0;
	done = uc.copy > 0 ? (uint64_t)uc.copy / PG : 0;
	if (err == EEXIST) {
		done++;		/* that one is in already */
		wake(m, addr, done * PG);
	} else if (err && !done) {
		if (err == EAGAIN || err == ESRCH || err == ENOENT)
			return -err;
		if (mm_dead(m))
			return -ESRCH;
		srv_fatal(s, m, addr, err, true);	/* ENOMEM... */
	}
	for (uint64_t k = 0; k < done; k++)
		bit_clear(a->bits, i + k);
	m->left -= done;
	s->filled += done;
	return done;
}

/*
 * Put the extent of @a holding @addr in a huge page: whole in the image
 * and all its pages in (so none is left for a fault to ask: a collapse
 * needs every page of a registered range present), MADV_COLLAPSE through
 * process_madvise (Linux 6.1+).  A refusal leaves its 4 KiB pages.
 */
static void collapse(struct lsrv *s, struct lmm *m, struct larea *a, uint64_t addr)
{
	uint64_t h = hidx(a, addr), cs = addr & ~(THP_SIZE - 1);
	struct iovec io = { (void *)cs, THP_SIZE };

	if (!a->hbits || !bit_test(a->hbits, h))
		return;
	for (uint64_t at = cs; at < cs + THP_SIZE; at += PG)
		if (bit_test(a->bits, (at - a->start) / PG))
			return;
	bit_clear(a->hbits, h);
	if (m->pidfd >= 0 && syscall(SYS_process_madvise, m->pidfd, &io, 1, MADV_COLLAPSE, 0) ==
	    (ssize_t)THP_SIZE) {
		s->collapsed++;
		return;
	}
	if (!s->not_collapsed++)
		log_debug("pid %d: 0x%" PRIx64 " stays in 4 KiB pages (MADV_COLLAPSE: %s)", m->pid,
			 cs, m->pidfd < 0 ? "no pidfd" : strerror(errno));
}

/*
 * Fill the pending pages of the 2 MiB extent of @a holding @addr (that at
 * @addr first: a fault waits for it alone), then collapse it.  As fill()
 * for the page at @addr; the rest of the extent as it goes (what is not in
 * now comes later).
 */
static long fill_huge(struct lsrv *s, struct lmm *m, struct larea *a, uint64_t addr)
{
	uint64_t cs = addr & ~(THP_SIZE - 1), ce = cs + THP_SIZE, total;
	long r = fill(s, m, a, addr, ((a->end < ce ? a->end : ce) - addr) / PG);

	if (r <= 0)
		return r;
	total = r;
	if (cs < a->start)
		cs = a->start;
	if (ce > a->end)
		ce = a->end;
	for (uint64_t at = cs; at < ce;) {
		if (!bit_test(a->bits, (at - a->start) / PG)) {
			at += PG;
			continue;
		}
		r = fill(s, m, a, at, (ce - at) / PG);
		if (r == -ESRCH)
			return -ESRCH;
		if (r <= 0)
			return total;	/* the layout is changing: later */
		total += r;
		at += r * PG;
	}
	collapse(s, m, a, addr);
	return total;
}

/* A fault at @addr: its page from the image, or a zero page. */
static int on_fault(struct lsrv *s, struct lmm *m, uint64_t addr)
{
	struct larea *a = area_of(m, addr);
	struct uffdio_zeropage z = { .range = { addr, PG } };
	long r;

	if (a && bit_test(a->bits, (addr - a->start) / PG)) {
		r = a->huge ? fill_huge(s, m, a, addr) : fill(s, m, a, addr, LAZY_AHEAD);
		if (r == -EAGAIN)
			add_retry(m, addr);
		else if (r == -ENOENT)
			wake(m, addr, PG);	/* no longer there: let it see so */
		return r == -ESRCH ? -ESRCH : 0;
	}
	if (!ioctl(m->uffd, UFFDIO_ZEROPAGE, &z)) {
		s->zeroed++;
		return 0;
	}
	switch (errno) {
	case EAGAIN:
		add_retry(m, addr);
		return 0;
	case EEXIST:
	case ENOENT:
		wake(m, addr, PG);
		return 0;
	case ESRCH:
		return -ESRCH;
	default:
		if (mm_dead(m))
			return -ESRCH;
		srv_fatal(s, m, addr, -errno, true);
	}
}

/* mremap moved [from, from + len) to @to: so do the pending pages. */
static int on_remap(struct lmm *m, uint64_t from, uint64_t to, uint64_t len)
{
	int n0 = m->n, err;

	if (from == to)
		return 0;
	drop_range(m, to, to + len);	/* what was there is gone */
	for (int k = 0; k < n0; k++) {
		uint64_t s = from > m->a[k].start ? from : m->a[k].start;
		uint64_t e = from + len < m->a[k].end ? from + len : m->a[k].end;
		struct larea *a, *na;

		if (s >= e)
			continue;
		/* its extents, moved, are no longer collapsed (their
		 * pages come 2 MiB at a time still) */
		err = area_add(m, s - from + to, e - from + to, m->a[k].src + (s - m->a[k].start),
			       m->a[k].img, m->a[k].huge);
		if (!err && m->a[m->n - 1].hbits) {
			free(m->a[m->n - 1].hbits);
			m->a[m->n - 1].hbits = NULL;
		}
		if (err)
			return err;
		a = &m->a[k];
		na = &m->a[m->n - 1];
		for (uint64_t at = s; at < e; at += PG) {
			uint64_t i = (at - a->start) / PG;

			if (bit_test(a->bits, i)) {
				bit_clear(a->bits, i);
				na->bits[(at - s) / PG / 64] |= 1ULL << ((at - s) / PG % 64);
			}
		}
	}
	return 0;
}

static int on_fork(struct lsrv *s, struct lmm *m, int ufd)
{
	struct lmm *n = calloc(1, sizeof(*n)), **nl;
	int err = n ? 0 : -ENOMEM;

	for (int k = 0; !err && k < m->n; k++) {
		const struct larea *a = &m->a[k];

		err = area_add(n, a->start, a->end, a->src, a->img, a->huge);
		if (!err)
			memcpy(n->a[k].bits, a->bits, ((a->end - a->start) / PG + 63) / 64 * 8);
		if (!err && a->hbits)
			memcpy(n->a[k].hbits, a->hbits,
			       ((a->end - 1) / THP_SIZE - a->start / THP_SIZE + 1 + 63) / 64 * 8);
		else if (!err && n->a[k].hbits) {
			free(n->a[k].hbits);
			n->a[k].hbits = NULL;
		}
	}
	nl = err ? NULL : realloc(s->mm, (s->nmm + 1) * sizeof(*nl));
	if (!nl) {
		if (n) {
			n->uffd = n->pidfd = -1;
			mm_free(n);
		}
		close(ufd);
		return log_errno(ENOMEM, "pid %d forked: no memory for its child's pages", m->pid);
	}
	n->uffd = ufd;
	n->pidfd = -1;		/* its pid: at its first fault */
	n->pid = m->pid;
	n->left = m->left;
	n->img = m->img;
	n->hot = m->hot;
	s->mm = nl;
	s->mm[s->nmm++] = n;
	return 0;
}

/* The messages of @m's userfaultfd.  -ESRCH: its process is gone. */
static int on_events(struct lsrv *s, struct lmm *m)
{
	struct uffd_msg msg[16];

	for (;;) {
		ssize_t got = read(m->uffd, msg, sizeof(msg));
		int err = 0;

		if (got < 0)
			return errno == EAGAIN ? 0 : errno == EINTR ? 0 : -ESRCH;
		if (!got)
			return -ESRCH;
		for (size_t k = 0; k < got / sizeof(msg[0]) && !err; k++) {
			struct uffd_msg *u = &msg[k];

			switch (u->event) {
			case UFFD_EVENT_PAGEFAULT:
				if (m->pidfd < 0 && u->arg.pagefault.feat.ptid) {
					/* the main thread's tid is the pid; another
					 * thread's is taken as a thread pidfd */
					m->pidfd = syscall(SYS_pidfd_open, u->arg.pagefault.feat.ptid, 0);
					if (m->pidfd < 0) {
						m->pidfd = syscall(SYS_pidfd_open,
								   u->arg.pagefault.feat.ptid,
								   O_EXCL /* PIDFD_THREAD */);
						m->pidfd_thread = true;
					}
					if (m->pidfd >= 0)
						m->seen = u->arg.pagefault.feat.ptid;
				}
				err = on_fault(s, m, u->arg.pagefault.address & ~(PG - 1));
				break;
			case UFFD_EVENT_FORK:
				err = on_fork(s, m, (int)u->arg.fork.ufd);
				break;
			case UFFD_EVENT_REMAP:
				err = on_remap(m, u->arg.remap.from, u->arg.remap.to, u->arg.remap.len);
				break;
			case UFFD_EVENT_REMOVE:
			case UFFD_EVENT_UNMAP:
				drop_range(m, u->arg.remove.start, u->arg.remove.end);
				break;
			}
		}
		if (err)
			return err;
	}
}

static int on_add(struct lsrv *s, const struct lazy_hdr *h, const uint8_t *lazy, int ufd)
{
	struct rproc *p;
	struct lmm *m, **nl;
	int err = 0;

	if (h->idx < 0 || h->idx >= s->c->n || h->nvmas != s->c->p[h->idx].mm->n_vmas) {
		close(ufd);
		return log_errno(EINVAL, "lazy pages server: a bad request");
	}
	p = &s->c->p[h->idx];
	m = calloc(1, sizeof(*m));
	if (!m) {
		close(ufd);
		return -ENOMEM;
	}
	m->uffd = ufd;
	m->img = h->idx;
	m->pid = p->pe->pid;
	m->seen = p->pe->pid;
	m->pidfd = syscall(SYS_pidfd_open, p->pe->pid, 0);
	for (size_t j = 0; !err && j < p->mm->n_vmas; j++) {
		const VmaEntry *v = p->mm->vmas[j];
		struct larea *a;

		if (!lazy[j])
			continue;
		err = area_add(m, v->start, v->end, v->start, h->idx, lazy[j] == LAZY_HUGE);
		a = err ? NULL : &m->a[m->n - 1];
		/* the extents that were huge pages, whole in the image:
		 * collapsed once filled */
		for (uint64_t cs = (v->start + THP_SIZE - 1) & ~(THP_SIZE - 1);
		     a && a->hbits && cs + THP_SIZE <= a->end; cs += THP_SIZE)
			if (thp_was_huge(v, cs) && thp_whole_in_image(p->mm, cs, cs + THP_SIZE))
				a->hbits[hidx(a, cs) / 64] |= 1ULL << (hidx(a, cs) % 64);
	}
	for (size_t r = 0; !err && r < p->mm->n_runs; r++) {
		const PageRun *run = p->mm->runs[r];
		uint64_t e = run->vaddr + run->nr_pages * PG;

		for (int k = 0; k < m->n; k++) {
			struct larea *a = &m->a[k];
			uint64_t from = run->vaddr > a->start ? run->vaddr : a->start;
			uint64_t to = e < a->end ? e : a->end;

			for (uint64_t at = from; at < to; at += PG) {
				uint64_t i = (at - a->start) / PG;

				a->bits[i / 64] |= 1ULL << (i % 64);
				m->left++;
			}
		}
	}
	nl = err ? NULL : realloc(s->mm, (s->nmm + 1) * sizeof(*nl));
	if (!nl) {
		mm_free(m);
		return err ? err : -ENOMEM;
	}
	s->mm = nl;
	s->mm[s->nmm++] = m;
	log_debug("pid %d: %" PRIu64 " pages to come lazily", m->pid, m->left);
	return 0;
}

/* The restorer's messages; 1 when it has closed its end. */
static int on_ctl(struct lsrv *s)
{
	struct {
		struct lazy_hdr h;
		uint8_t lazy[LAZY_MAX_VMAS];
	} *msg = (void *)s->buf;
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
	struct iovec io = { msg, sizeof(*msg) };
	struct msghdr mh = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm;
	int ufd = -1;
	ssize_t got;

	/* the piece buffer is free between two fills: the message goes there */
	s->buf_img = -1;
	got = recvmsg(s->sock, &mh, MSG_CMSG_CLOEXEC);
	if (got < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : 1;
	if (got == 0)
		return 1;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&ufd, CMSG_DATA(cm), sizeof(int));
	if ((size_t)got < sizeof(msg->h)) {
		if (ufd >= 0)
			close(ufd);
		return 0;
	}
	if (msg->h.type == LAZY_RUNNING) {
		s->running = true;
		return 0;
	}
	if (msg->h.type != LAZY_ADD || ufd < 0 || (size_t)got != sizeof(msg->h) + msg->h.nvmas) {
		if (ufd >= 0)
			close(ufd);
		return -EINVAL;
	}
	return on_add(s, &msg->h, msg->lazy, ufd);
}

/* The server cannot go on: what it serves must not run on with zeros. */
static void srv_die(struct lsrv *s, int err, const char *what) __attribute__((noreturn));
static void srv_die(struct lsrv *s, int err, const char *what)
{
	log_err("%s (%s): killing the whole tree, it must not run on without its memory", what,
		strerror(err < 0 ? -err : err));
	kill_tree(s);
	_exit(1);
}

/*
 * The background pass's first part: the pages the process wrote last
 * before the dump (its image's hot runs, dumped addresses), wherever they
 * are now.  Fills one piece; false when no hot page is left to fill.
 */
static bool hot_piece(struct lsrv *s, struct lmm *m)
{
	const MmImage *mm = s->c->p[m->img].mm;

	for (; m->hot < mm->n_hot_runs; m->hot++) {
		const PageRun *h = mm->hot_runs[m->hot];
		uint64_t hs = h->vaddr, he = h->vaddr + h->nr_pages * PG;

		for (int k = 0; k < m->n; k++) {
			struct larea *a = &m->a[k];
			uint64_t lo = a->src > hs ? a->src : hs;
			uint64_t hi = a->src + (a->end - a->start) < he ? a->src + (a->end - a->start) : he;

			if (a->img != m->img)
				continue;
			for (uint64_t v = lo; v < hi; v += PG) {
				uint64_t at = a->start + (v - a->src), left = (hi - v) / PG;
				long r;

				if (!bit_test(a->bits, (v - a->src) / PG))
					continue;
				r = a->huge ? fill_huge(s, m, a, at) :
					      fill(s, m, a, at, left < LAZY_CHUNK / PG ? left : LAZY_CHUNK / PG);
				if (r == -ESRCH)
					m->left = 0;	/* gone: dropped by the loop */
				else if (r == -ENOENT)
					drop_range(m, at, at + PG);
				if (r > 0)
					s->hot_filled += r;
				return true;
			}
		}
	}
	return false;
}

/* One piece of the background pass, for the next process with pages to
 * come: its hot pages first, then the rest in address order; false when
 * none has. */
static bool background(struct lsrv *s)
{
	for (int tries = 0; tries < s->nmm; tries++) {
		struct lmm *m = s->mm[s->next++ % s->nmm];
		bool from_start = !m->cur && !m->curw;

		if (!m->left)
			continue;
		if (hot_piece(s, m))
			return true;
		if (s->hold_cold && access(s->hold_cold, F_OK))
			continue;
		for (; m->cur < m->n; m->cur++, m->curw = 0) {
			struct larea *a = &m->a[m->cur];
			uint64_t np = (a->end - a->start) / PG;

			for (uint64_t w = m->curw; w * 64 < np; w++) {
				uint64_t at;
				long r;

				if (!a->bits[w])
					continue;
				m->curw = w;
				at = a->start + (w * 64 + __builtin_ctzll(a->bits[w])) * PG;
				r = a->huge ? fill_huge(s, m, a, at) : fill(s, m, a, at, LAZY_CHUNK / PG);
				if (r == -ESRCH)
					m->left = 0;	/* gone: dropped by the loop */
				else if (r == -ENOENT)
					/* unmapped and its event not read yet, or never
					 * coming (the mapping replaced): not to fill */
					drop_range(m, a->start + (w * 64 + __builtin_ctzll(a->bits[w])) * PG,
						   a->start + (w * 64 + __builtin_ctzll(a->bits[w]) + 1) * PG);
				return true;
			}
		}
		if (from_start)
			m->left = 0;	/* nothing found from the start: none left */
		m->cur = 0;	/* areas added by a remap, or wrapped */
		m->curw = 0;
		return true;
	}
	return false;
}

static void lazy_serve(struct rctx *c, int sock)
{
	const struct ckpt_restore_opts *o = c->o;
	struct lsrv s = { .c = c, .sock = sock, .buf_img = -1,
			  .hold_cold = getenv("KUP_LAZY_HOLD_COLD") };
	const char *hold = getenv("KUP_LAZY_HOLD");	/* tests: no background pass before it exists */
	bool ctl_open = true;
	struct pollfd *pfd = NULL;

	prctl(PR_SET_NAME, "kup-lazy");
	log_set_prefix("kup lazy");
	if (o->in_server)
		o->in_server(o->arg);
	setsid();	/* no terminal's signals: a dead server would leave zeros */
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	journal_forget();	/* the restore's, not ours */
	/* page-aligned: a block device's store reads into it with O_DIRECT */
	s.buf = aligned_alloc(PG, LAZY_CHUNK > sizeof(struct lazy_hdr) + LAZY_MAX_VMAS ?
			      LAZY_CHUNK : PAGE_ALIGN_K(sizeof(struct lazy_hdr) + LAZY_MAX_VMAS));
	s.pages = calloc(c->n, sizeof(*s.pages));
	if (!s.buf || !s.pages)
		_exit(1);
	for (int i = 0; i < c->n; i++) {
		struct rproc *p = &c->p[i];
		char name[64];
		int err;

		if (!p->alive)
			continue;
		snprintf(name, sizeof(name), "pages-%u.img", p->pe->pid);
		if (c->st->ops->open_stream && c->st->ops->read)
			err = c->st->ops->open_stream(c->st, name, &s.pages[i]);
		else
			err = c->st->ops->open(c->st, name, &s.pages[i]);
		if (err) {
			log_errno(err, "%s: cannot open %s", c->st->where, name);
			_exit(1);	/* the restore's own check says more */
		}
	}
	while (ctl_open || s.nmm) {
		bool held = hold && access(hold, F_OK), busy;
		int n = 0, r;

		free(pfd);
		pfd = calloc(s.nmm + 1, sizeof(*pfd));
		if (!pfd)
			srv_die(&s, ENOMEM, "lazy pages server");
		if (ctl_open)
			pfd[n++] = (struct pollfd){ .fd = sock, .events = POLLIN };
		for (int k = 0; k < s.nmm; k++)
			pfd[n++] = (struct pollfd){ .fd = s.mm[k]->uffd, .events = POLLIN };
		busy = !held && s.nmm && !s.cold_held;
		r = poll(pfd, n, busy ? 0 : held || s.cold_held ? 100 : -1);
		if (r < 0 && errno != EINTR)
			srv_die(&s, errno, "lazy pages server: poll");
		if (ctl_open && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			r = on_ctl(&s);
			if (r < 0)
				srv_die(&s, r, "lazy pages server: cannot take a task's memory");
			if (r) {
				ctl_open = false;
				close(sock);
			}
		}
		for (int k = 0; k < s.nmm; k++) {
			struct lmm *m = s.mm[k];
			uint64_t *rl = m->retry;	/* faults that came while the layout changed */
			int rn = m->nretry, e;

			m->retry = NULL;
			m->nretry = 0;
			e = on_events(&s, m);	/* a fork adds to s.mm: seen in this loop */
			if (e < 0 && e != -ESRCH)
				srv_die(&s, e, "lazy pages server: cannot follow a fork or mremap");
			for (int t = 0; t < rn && e != -ESRCH; t++)
				e = on_fault(&s, m, rl[t]);
			free(rl);
			/* gone: found so here too when no fill would tell
			 * (the background pass held) */
			if (e != -ESRCH && mm_dead(m))
				e = -ESRCH;
			if (e == -ESRCH || !m->left) {
				s.unneeded += m->left;
				srv_drop(&s, k);
				k--;
			}
		}
		if (!held && s.nmm && (busy || s.cold_held))
			s.cold_held = !background(&s) && s.hold_cold && access(s.hold_cold, F_OK);
	}
	free(pfd);
	for (int i = 0; i < c->n; i++)
		if (c->p[i].alive)
			c->st->ops->release(c->st, &s.pages[i]);
	if (s.running) {
		if (s.collapsed || s.not_collapsed)
			log_debug("%" PRIu64 " extents of 2 MiB collapsed into huge pages, %" PRIu64
				  " not", s.collapsed, s.not_collapsed);
		if (s.unneeded)
			log_info("done: %" PRIu64 " pages filled, %" PRIu64 " zero pages, %" PRIu64
				 " not needed (their processes exited)", s.filled, s.zeroed,
				 s.unneeded);
		else if (s.hot_filled)
			log_info("the tree's memory is complete: %" PRIu64 " pages filled (%" PRIu64
				 " of them first: those written last before the dump), %" PRIu64
				 " zero pages", s.filled, s.hot_filled, s.zeroed);
		else
			log_info("the tree's memory is complete: %" PRIu64 " pages filled, %" PRIu64
				 " zero pages", s.filled, s.zeroed);
		c->st->ops->close(c->st);
		if (o->on_memory_complete)
			o->on_memory_complete(o->arg);
	}
	_exit(0);
}
