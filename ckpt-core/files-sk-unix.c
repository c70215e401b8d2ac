// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unix sockets: stream, datagram and seqpacket.
 *
 * Dump: each socket is looked at through our copy of its fd: getsockopt for
 * the type and options, unix_diag (NETLINK_SOCK_DIAG, one exact query by
 * inode) for its state, name, peer, shutdown state, listen backlog and the
 * number of connections a listener has not accepted yet.  The receive queue
 * is read without consuming it: MSG_PEEK from increasing SO_PEEK_OFF offsets
 * (the socket's own peek offset is put back), one message per datagram or
 * seqpacket record (with the sender's address); a stream's bytes as one
 * message, cut where a send carried files.  Files in flight (SCM_RIGHTS)
 * come with the peek as fds of ours: each is dumped as a file entry
 * (files_dump_inflight(): the same entry as an fd of the tree that is the
 * same file) and the message keeps their ids; no socket or epoll in flight,
 * and none with SO_PASSCRED (the senders' credentials would be lost).  files_dump_end() checks the tree as a whole: every connected
 * stream or seqpacket socket has its peer in the tree, every pending
 * connection of a listener comes from the tree, datagram sockets connected
 * outside the tree are connected to a name that can be connected again.
 * One stream peer outside the tree is allowed: journald's stdout socket
 * (JOURNAL_STDOUT), to which systemd connects a service's stdout and stderr;
 * it is connected to again at restore, and the stream header journald reads
 * first (identifier, unit, priority, level prefix, forwarding) sent again.
 *
 * Restore: the first unix entry opened builds every unix socket of the image
 * at once in the master (usk_restore_all), in an order that works:
 *   1. listeners: socket, bind, listen;
 *   2. an accepted connection whose listener is in the image: the client
 *      connects to the restored listener, which accepts it at once (names on
 *      both sides are the kernel's, as they were);
 *   3. other connected pairs (socketpair, or datagram sockets connected to
 *      each other): socketpair();
 *   4. a socket whose peer is gone: a socketpair whose other end is closed
 *      once the queued data is back;
 *   5. everything else: socket, bind;
 *   6. connections a listener had not accepted: the clients connect;
 *   7. queued data is sent again into each socket from its peer (datagrams
 *      to a named socket: from the socket that sent them if it is in the
 *      image, else from an unnamed socket of ours), with the files in
 *      flight it carried (their entries opened then, files_rst_open_id());
 *   8. datagram sockets connect to their peers (after 7: a connected
 *      datagram socket takes data from its peer only);
 *   9. shutdown state and options.
 * A name whose socket file exists is bound again only if that file is a
 * socket nobody listens on (a stale file is unlinked; anything else is an
 * error); the file gets its mode and owner back.  A failure closes every
 * socket made and unlinks the socket files made.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <linux/unix_diag.h>

#include "files.h"
#include "sk-diag.h"
#include "kup-sk-unix.pb-c.h"

#define JOURNAL_STDOUT	"/run/systemd/journal/stdout"
#include "log.h"

#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04
#endif

/* files_obj tags of this kind (files.h keeps 1..99, files.c 100..). */
enum {
	FOBJ_USK = 0x756b0001,	/* dump: (0, socket ino); restore: (1, file id) -> fd */
	FOBJ_USK_DONE,		/* restore: (0, 0): every socket was built */
};

#define USK_NAME_MAX	(sizeof(((struct sockaddr_un *)0)->sun_path))
#define USK_MSGS_MAX	(1u << 20)	/* queued messages per socket */
#define USK_FILTER_MAX	4096		/* BPF_MAXINSNS */
#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD	76
#endif
#define USK_ST_ESTABLISHED	1	/* the kernel's TCP_* values in sk_state */
#define USK_ST_CLOSE		7
#define USK_ST_LISTEN		10
#define USK_RCV_SHUTDOWN	1
#define USK_SEND_SHUTDOWN	2
#define USK_SHUTDOWN_MASK	3

/* --- names ------------------------------------------------------------------ */

static bool name_is_path(const uint8_t *n, size_t len)
{
	return len && n[0];
}

/* A printable form of a unix address: "/path", "@abstract" (non-printable
 * bytes as \xNN) or "unnamed". */
static const char *name_str(const uint8_t *n, size_t len, char *buf, size_t size)
{
	size_t o = 0;

	if (!len)
		return "unnamed";
	if (name_is_path(n, len)) {
		snprintf(buf, size, "%.*s", (int)strnlen((const char *)n, len), (const char *)n);
		return buf;
	}
	buf[o++] = '@';
	for (size_t i = 1; i < len && o + 5 < size; i++) {
		if (n[i] >= 0x20 && n[i] < 0x7f)
			buf[o++] = n[i];
		else
			o += snprintf(buf + o, size - o, "\\x%02x", n[i]);
	}
	buf[o] = 0;
	return buf;
}

#define NAME_BUF	(4 * USK_NAME_MAX + 8)

/* sockaddr_un for @n; gives its length. */
static socklen_t name_addr(const uint8_t *n, size_t len, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, n, len);
	return offsetof(struct sockaddr_un, sun_path) + len;
}

/* --- unix_diag ----------------------------------------------------------------- */

struct usk_diag {
	uint32_t ino, state, type;
	uint8_t name[USK_NAME_MAX];
	size_t name_len;
	bool has_peer, has_vfs, has_rqlen;
	uint32_t peer;
	uint32_t vfs_ino, vfs_dev;	/* the kernel's dev_t encoding */
	uint32_t rqueue, wqueue;
	uint8_t shutdown;
	uint32_t n_icons;
};

static int diag_parse(const struct nlmsghdr *h, struct usk_diag *d)
{
	const struct unix_diag_msg *m = NLMSG_DATA(h);
	const struct rtattr *a;
	int len;

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
		return -EBADMSG;
	memset(d, 0, sizeof(*d));
	d->ino = m->udiag_ino;
	d->state = m->udiag_state;
	d->type = m->udiag_type;
	len = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
	for (a = (const struct rtattr *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		size_t pl = RTA_PAYLOAD(a);

		switch (a->rta_type) {
		case UNIX_DIAG_NAME:
			if (pl > USK_NAME_MAX)
				return -EBADMSG;
			memcpy(d->name, RTA_DATA(a), pl);
			d->name_len = pl;
			break;
		case UNIX_DIAG_PEER:
			if (pl < 4)
				return -EBADMSG;
			d->has_peer = true;
			memcpy(&d->peer, RTA_DATA(a), 4);
			break;
		case UNIX_DIAG_VFS: {
			struct unix_diag_vfs v;
			if (pl < sizeof(v))
				return -EBADMSG;
			memcpy(&v, RTA_DATA(a), sizeof(v));
			d->has_vfs = true;
			d->vfs_ino = v.udiag_vfs_ino;
			d->vfs_dev = v.udiag_vfs_dev;
			break;
		}
		case UNIX_DIAG_ICONS:
			d->n_icons = pl / 4;
			break;
		case UNIX_DIAG_RQLEN: {
			struct unix_diag_rqlen q;
			if (pl < sizeof(q))
				return -EBADMSG;
			memcpy(&q, RTA_DATA(a), sizeof(q));
			d->has_rqlen = true;
			d->rqueue = q.udiag_rqueue;
			d->wqueue = q.udiag_wqueue;
			break;
		}
		case UNIX_DIAG_SHUTDOWN:
			if (pl >= 1)
				d->shutdown = *(const uint8_t *)RTA_DATA(a);
			break;
		}
	}
	return 0;
}

struct usk_find {
	uint32_t ino;
	struct usk_diag *d;
};

static int usk_diag_one(const struct nlmsghdr *h, void *arg)
{
	const struct usk_find *f = arg;
	int ret = diag_parse(h, f->d);

	if (!ret && f->d->ino != f->ino)
		ret = -EBADMSG;
	return ret ? ret : 1;
}

/* Query the unix socket with inode @ino.  -ENOENT: no such socket (in our
 * network namespace). */
static int usk_diag(uint32_t ino, struct usk_diag *d)
{
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req r;
	} req = {
		.nlh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST, .nlmsg_seq = 1 },
		.r = { .sdiag_family = AF_UNIX, .udiag_states = ~0u, .udiag_ino = ino,
		       .udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER |
				     UDIAG_SHOW_ICONS | UDIAG_SHOW_RQLEN,
		       .udiag_cookie = { ~0u, ~0u } },
	};
	struct usk_find f = { .ino = ino, .d = d };
	int ret = sk_diag_query(-1, &req, sizeof(req), 0, usk_diag_one, &f);

	return ret == 1 ? 0 : ret ? ret : -EBADMSG;
}

/* --- dump ------------------------------------------------------------------- */

static int sk_family(int fd)
{
	int fam = -1;
	socklen_t l = sizeof(fam);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &fam, &l) < 0)
		return -1;
	return fam;
}

static bool usk_match(const struct fd_info *fi)
{
	return S_ISSOCK(fi->st.st_mode) && !(fi->flags & O_PATH) && sk_family(fi->lfd) == AF_UNIX;
}

static const char *type_name(uint32_t type)
{
	switch (type) {
	case SOCK_STREAM: return "stream";
	case SOCK_DGRAM: return "datagram";
	case SOCK_SEQPACKET: return "seqpacket";
	default: return "unknown";
	}
}

static int get_int(const struct fd_info *fi, int level, int opt, const char *what, int *v)
{
	socklen_t l = sizeof(*v);

	if (getsockopt(fi->lfd, level, opt, v, &l) < 0)
		return log_errno(errno, FI_FMT ": unix socket: getsockopt(%s)", FI_ARG(fi), what);
	return 0;
}

static int dump_opts(const struct fd_info *fi, UnixSkEntry *u)
{
	struct linger lg;
	socklen_t l = sizeof(lg);
	int v, ret;

	ret = get_int(fi, SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF", &v);
	if (ret)
		return ret;
	u->has_sndbuf = true;
	u->sndbuf = v;
	ret = get_int(fi, SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF", &v);
	if (ret)
		return ret;
	u->has_rcvbuf = true;
	u->rcvbuf = v;
	ret = get_int(fi, SOL_SOCKET, SO_PASSCRED, "SO_PASSCRED", &v);
	if (ret)
		return ret;
	u->has_passcred = true;
	u->passcred = !!v;
	ret = get_int(fi, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR", &v);
	if (ret)
		return ret;
	u->has_reuseaddr = true;
	u->reuseaddr = !!v;
	ret = get_int(fi, SOL_SOCKET, SO_PEEK_OFF, "SO_PEEK_OFF", &v);
	if (ret)
		return ret;
	u->has_peek_off = true;
	u->peek_off = v;
	if (getsockopt(fi->lfd, SOL_SOCKET, SO_LINGER, &lg, &l) < 0)
		return log_errno(errno, FI_FMT ": unix socket: getsockopt(SO_LINGER)", FI_ARG(fi));
	u->has_linger_on = u->has_linger_sec = true;
	u->linger_on = !!lg.l_onoff;
	u->linger_sec = lg.l_linger < 0 ? 0 : lg.l_linger;
	ret = get_int(fi, SOL_SOCKET, SO_PASSSEC, "SO_PASSSEC", &v);
	if (ret)
		return ret;
	u->has_passsec = u->passsec = !!v;
	l = sizeof(v);
	if (getsockopt(fi->lfd, SOL_SOCKET, SO_PASSPIDFD, &v, &l) == 0 && v)
		u->has_passpidfd = u->passpidfd = true;
	/* a classic filter; an eBPF one is refused */
	return files_sk_dump_filter(fi, "unix socket", &u->filter, &u->has_filter,
				    &u->has_filter_locked, &u->filter_locked);
}

static void free_queue(UnixSkEntry *u)
{
	for (size_t i = 0; i < u->n_queue; i++) {
		free(u->queue[i]->data.data);
		free(u->queue[i]->from.data);
		free(u->queue[i]->file_ids);
		free(u->queue[i]);
	}
	free(u->queue);
	u->queue = NULL;
	u->n_queue = 0;
}

static int add_msg(UnixSkEntry *u, size_t *cap, const void *data, size_t len,
		   const void *from, size_t from_len)
{
	UnixSkMsg *m;

	if (u->n_queue == *cap) {
		size_t nc = *cap ? *cap * 2 : 8;
		UnixSkMsg **nq = realloc(u->queue, nc * sizeof(*nq));
		if (!nq)
			return -ENOMEM;
		u->queue = nq;
		*cap = nc;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	unix_sk_msg__init(m);
	m->data.data = malloc(len ? len : 1);
	if (!m->data.data) {
		free(m);
		return -ENOMEM;
	}
	memcpy(m->data.data, data, len);
	m->data.len = len;
	if (from_len) {
		m->has_from = true;
		m->from.data = malloc(from_len);
		if (!m->from.data) {
			free(m->data.data);
			free(m);
			return -ENOMEM;
		}
		memcpy(m->from.data, from, from_len);
		m->from.len = from_len;
	}
	u->queue[u->n_queue++] = m;
	return 0;
}

#define USK_FDS_MAX	253	/* SCM_MAX_FD: files in flight per message */

/*
 * The files in flight a peek brought in (SCM_RIGHTS): into @fds (*n of
 * them), in order; a pidfd (SO_PASSPIDFD) is closed.  True if the control
 * data was cut short.
 */
static bool peek_cmsgs(struct msghdr *mh, int *fds, size_t *n)
{
	*n = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET ||
		    (c->cmsg_type != SCM_RIGHTS && c->cmsg_type != SCM_PIDFD))
			continue;
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (c->cmsg_type == SCM_RIGHTS && *n < USK_FDS_MAX)
				fds[(*n)++] = fd;
			else
				close(fd);
		}
	}
	return mh->msg_flags & MSG_CTRUNC;
}

/* "pipe:[123], /etc/hosts, ...": what each file in flight is, as /proc
 * shows it. */
static void inflight_names(const int *fds, size_t n, char *what, size_t wlen)
{
	size_t used = 0;

	what[0] = 0;
	for (size_t i = 0; i < n && used + 8 < wlen; i++) {
		char link[64], target[256];
		ssize_t l;

		snprintf(link, sizeof(link), "/proc/self/fd/%d", fds[i]);
		l = readlink(link, target, sizeof(target) - 1);
		if (l <= 0)
			continue;
		target[l] = 0;
		used += snprintf(what + used, wlen - used, "%s%s", used ? ", " : "", target);
		if (used >= wlen)
			used = wlen - 1;
	}
}

static void close_fds(const int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/*
 * Message @m (number @idx of the queue) carries files in flight @fds: an
 * entry for each (taken over, closed on failure), their ids into @m.
 */
static int inflight_to_msg(const struct fd_info *fi, UnixSkMsg *m, size_t idx, int *fds,
			   size_t n)
{
	int ret = 0;

	m->file_ids = calloc(n, sizeof(*m->file_ids));
	if (!m->file_ids) {
		close_fds(fds, n);
		return log_errno(ENOMEM, FI_FMT ": unix socket queue", FI_ARG(fi));
	}
	for (size_t i = 0; i < n; i++) {
		char where[64];

		if (ret) {
			close(fds[i]);
			continue;
		}
		snprintf(where, sizeof(where), "queued message %zu, file %zu in flight", idx + 1,
			 i + 1);
		ret = files_dump_inflight(fi->d, fi, fds[i], where, &m->file_ids[i]);
		if (!ret)
			m->n_file_ids++;
	}
	return ret;
}

/*
 * A stream queue hands out the bytes of several sends in one read, but a
 * read never goes past the end of a send that carried files (the kernel
 * keeps each send in buffers of its own, the files with the first) and
 * returns its files with it.  So a peek that brings files ends where the
 * send that carried them ends.  Where that send began cannot be seen: a
 * peek walks on from any byte to the next buffer with files and brings
 * them.  The files are kept with the last byte of the send: a reader gets
 * them with the read that completes it, as before, and no read that ends
 * before it gets them (read() would drop them).
 *
 * The peek brought @r bytes at @total with files @fds (taken over): the
 * bytes since @seg but the last become one message, the last byte another,
 * with the files.
 */
static int stream_fds_msgs(const struct fd_info *fi, UnixSkEntry *out, size_t *cap,
			   const uint8_t *all, size_t seg, size_t total, size_t r, int *fds,
			   size_t nfds)
{
	size_t last = total + r - 1;
	int ret = 0;

	if (out->n_queue + 2 > USK_MSGS_MAX) {
		close_fds(fds, nfds);
		log_err(FI_FMT ": unix socket: more than %u sends with files in flight queued",
			FI_ARG(fi), USK_MSGS_MAX / 2);
		return -EFBIG;
	}
	if (last > seg)
		ret = add_msg(out, cap, all + seg, last - seg, NULL, 0);
	if (!ret)
		ret = add_msg(out, cap, all + last, 1, NULL, 0);
	if (ret) {
		close_fds(fds, nfds);
		return log_errno(ret, FI_FMT ": unix socket queue", FI_ARG(fi));
	}
	log_debug(FI_FMT ": unix socket: the send ending at queued byte %zu carries %zu files "
		  "in flight", FI_ARG(fi), last, nfds);
	return inflight_to_msg(fi, out->queue[out->n_queue - 1], out->n_queue - 1, fds, nfds);
}

/*
 * Read the receive queue of @fi without consuming it.  The peek offset is
 * set before every read (explicit offsets: a truncated peek is simply done
 * again with a larger buffer), and the socket's own offset is put back.
 */
static int peek_queue(const struct fd_info *fi, const UnixSkEntry *u, UnixSkEntry *out,
		      uint64_t max)
{
	bool stream = u->type == SOCK_STREAM;
	char inflight[512];
	int fds[USK_FDS_MAX];
	size_t cap = 0, bsize = 65536, total = 0, nfds = 0, seg = 0;
	uint8_t *buf = NULL, *all = NULL;
	int inq = 0, ret = 0, zero_runs = 0;
	union {
		char b[CMSG_SPACE(sizeof(int) * 253) + CMSG_SPACE(64)];
		struct cmsghdr align;
	} ctl;

	if (stream) {
		if (ioctl(fi->lfd, SIOCINQ, &inq) < 0)
			return log_errno(errno, FI_FMT ": unix socket: SIOCINQ", FI_ARG(fi));
		if (inq <= 0)
			return 0;
		if ((uint64_t)inq > max) {
			log_err(FI_FMT ": unix socket: %d queued bytes, more than the limit (%llu)",
				FI_ARG(fi), inq, (unsigned long long)max);
			return -EFBIG;
		}
		all = malloc(inq);
		if (!all)
			return log_errno(ENOMEM, FI_FMT ": unix socket queue", FI_ARG(fi));
	} else {
		buf = malloc(bsize);
		if (!buf)
			return log_errno(ENOMEM, FI_FMT ": unix socket queue", FI_ARG(fi));
	}
	for (;;) {
		struct sockaddr_un from;
		struct iovec iov;
		struct msghdr mh = { .msg_name = &from, .msg_namelen = sizeof(from),
				     .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b) };
		int off = (int)total;
		ssize_t r;

		if (stream && total >= (size_t)inq)
			break;
		if (setsockopt(fi->lfd, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)) < 0) {
			ret = log_errno(errno, FI_FMT ": unix socket: SO_PEEK_OFF %d", FI_ARG(fi), off);
			break;
		}
		if (stream) {
			iov.iov_base = all + total;
			iov.iov_len = inq - total;
		} else {
			iov.iov_base = buf;
			iov.iov_len = bsize;
		}
		r = recvmsg(fi->lfd, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC |
			    (stream ? 0 : MSG_TRUNC));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			break;
		if (r < 0) {
			ret = log_errno(errno, FI_FMT ": unix socket: cannot read its queue", FI_ARG(fi));
			break;
		}
		if (peek_cmsgs(&mh, fds, &nfds)) {
			log_err(FI_FMT ": unix socket: a queued message carries more files in flight "
				"than could be read: not supported", FI_ARG(fi));
			close_fds(fds, nfds);
			nfds = 0;
			ret = -EOPNOTSUPP;
			break;
		}
		if (nfds && u->passcred) {
			inflight_names(fds, nfds, inflight, sizeof(inflight));
			log_err(FI_FMT ": unix %s socket has files in flight (SCM_RIGHTS in its queue: "
				"%s) with SO_PASSCRED (credentials): not supported", FI_ARG(fi),
				type_name(u->type), inflight);
			close_fds(fds, nfds);
			nfds = 0;
			ret = -EOPNOTSUPP;
			break;
		}
		if (stream) {
			if (r == 0)
				break;	/* end of file (the peer shut down) */
			if (nfds) {
				ret = stream_fds_msgs(fi, out, &cap, all, seg, total, r, fds, nfds);
				nfds = 0;
				if (ret)
					break;
				seg = total + r;
			}
			total += r;
			continue;
		}
		if (nfds && (size_t)r > bsize) {
			close_fds(fds, nfds);	/* peeked again below */
			nfds = 0;
		}
		if ((size_t)r > bsize) {	/* truncated: again, with room */
			uint8_t *nb = realloc(buf, r);
			if (!nb) {
				ret = log_errno(ENOMEM, FI_FMT ": unix socket queue", FI_ARG(fi));
				break;
			}
			buf = nb;
			bsize = r;
			continue;
		}
		if (r == 0) {
			/* A seqpacket socket shut down for reading says 0 at the
			 * end; a zero-length datagram is only peeked once. */
			if ((u->shutdown & USK_RCV_SHUTDOWN) || ++zero_runs > 1)
				break;
		} else {
			zero_runs = 0;
		}
		if (out->n_queue >= USK_MSGS_MAX || total + r > max) {
			log_err(FI_FMT ": unix socket: more than %u messages or %llu bytes queued",
				FI_ARG(fi), USK_MSGS_MAX, (unsigned long long)max);
			ret = -EFBIG;
			break;
		}
		ret = add_msg(out, &cap, buf, r, from.sun_path,
			      u->type == SOCK_DGRAM &&
			      mh.msg_namelen > offsetof(struct sockaddr_un, sun_path) ?
			      mh.msg_namelen - offsetof(struct sockaddr_un, sun_path) : 0);
		if (ret) {
			log_errno(ret, FI_FMT ": unix socket queue", FI_ARG(fi));
			break;
		}
		if (nfds) {
			ret = inflight_to_msg(fi, out->queue[out->n_queue - 1], out->n_queue - 1,
					      fds, nfds);
			nfds = 0;
			if (ret)
				break;
		}
		total += r;
	}
	close_fds(fds, nfds);	/* a message not kept */
	if (!ret && stream && total > seg) {
		ret = add_msg(out, &cap, all + seg, total - seg, NULL, 0);
		if (ret)
			log_errno(ret, FI_FMT ": unix socket queue", FI_ARG(fi));
	}
	if (!ret && stream && total != (size_t)inq) {
		log_err(FI_FMT ": unix socket: read %zu of its %d queued bytes", FI_ARG(fi), total, inq);
		ret = -EIO;
	}
	/* the dumped process's own peek offset */
	if (setsockopt(fi->lfd, SOL_SOCKET, SO_PEEK_OFF, &u->peek_off, sizeof(u->peek_off)) < 0 && !ret)
		ret = log_errno(errno, FI_FMT ": unix socket: cannot put SO_PEEK_OFF back", FI_ARG(fi));
	free(buf);
	free(all);
	if (ret)
		free_queue(out);
	else if (total)
		log_debug(FI_FMT ": unix socket: %zu queued bytes in %zu messages", FI_ARG(fi),
			  total, out->n_queue);
	return ret;
}

static int set_bytes(ProtobufCBinaryData *b, protobuf_c_boolean *has, const void *p, size_t len)
{
	b->data = malloc(len ? len : 1);
	if (!b->data)
		return -ENOMEM;
	memcpy(b->data, p, len);
	b->len = len;
	*has = true;
	return 0;
}

static bool same_file(const struct stat *st, const struct usk_diag *d)
{
	return S_ISSOCK(st->st_mode) && st->st_ino == d->vfs_ino &&
	       st->st_dev == makedev(d->vfs_dev >> 20, d->vfs_dev & 0xfffff);
}

static void keep_mode(UnixSkEntry *u, const struct stat *st)
{
	u->has_file_mode = u->has_file_uid = u->has_file_gid = true;
	u->file_mode = st->st_mode & 07777;
	u->file_uid = st->st_uid;
	u->file_gid = st->st_gid;
}

/* The socket's file renamed within the directory of @path: its new path
 * (malloc'd), or NULL. */
static char *find_renamed(const char *path, const struct usk_diag *d, struct stat *st)
{
	char dir[USK_NAME_MAX + 1], full[PATH_MAX];
	const char *slash = strrchr(path, '/');
	struct dirent *e;
	char *found = NULL;
	DIR *dp;

	snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	dp = opendir(dir);
	if (!dp)
		return NULL;
	while (!found && (e = readdir(dp))) {
		if (e->d_ino != d->vfs_ino)
			continue;
		snprintf(full, sizeof(full), "%s/%s", slash == path ? "" : dir, e->d_name);
		if (lstat(full, st) == 0 && same_file(st, d) && strlen(full) < USK_NAME_MAX)
			found = strdup(full);
	}
	closedir(dp);
	return found;
}

/*
 * A path-bound socket that will bind again.  Its file is still its own:
 * the file's mode and owner are kept.  The file is gone (unlinked, or
 * renamed in its directory): the restore binds the name and unlinks or
 * renames the file.  A relative name: the directory where it resolves to
 * the socket's file, or else the process's working directory.
 */
static int dump_path_file(const struct fd_info *fi, const struct usk_diag *d, UnixSkEntry *u)
{
	char nb[NAME_BUF], cwd[PATH_MAX], link[64], full[PATH_MAX + NAME_BUF];
	const char *path = name_str(d->name, d->name_len, nb, sizeof(nb));
	struct stat st;
	ssize_t n;

	if (!d->has_vfs) {
		log_err(FI_FMT ": unix socket bound to %s: unix_diag shows no file for it",
			FI_ARG(fi), path);
		return -EOPNOTSUPP;
	}
	if (path[0] != '/') {
		snprintf(link, sizeof(link), "/proc/%d/cwd", fi->pid);
		n = readlink(link, cwd, sizeof(cwd) - 1);
		if (n <= 0 || cwd[0] != '/')
			return log_errno(n < 0 ? errno : EINVAL, FI_FMT ": unix socket bound to the "
					 "relative path '%s': cannot read %s", FI_ARG(fi), path, link);
		cwd[n] = 0;
		if (files_strip_deleted(cwd) || n >= PATH_MAX - 1) {
			log_err(FI_FMT ": unix socket bound to the relative path '%s', and its "
				"working directory %s is gone: not supported", FI_ARG(fi), path, cwd);
			return -EOPNOTSUPP;
		}
		u->bind_dir = strdup(cwd);
		if (!u->bind_dir)
			return -ENOMEM;
		snprintf(full, sizeof(full), "%s/%s", cwd, path);
		if (lstat(full, &st) == 0 && same_file(&st, d)) {
			keep_mode(u, &st);
			return 0;
		}
		if (lstat(full, &st) == 0 && !S_ISSOCK(st.st_mode)) {
			log_err(FI_FMT ": unix socket bound to the relative path '%s', not found in its "
				"working directory %s, where %s is another file: not supported",
				FI_ARG(fi), path, cwd, full);
			return -EOPNOTSUPP;
		}
		u->has_name_gone = u->name_gone = true;
		log_debug(FI_FMT ": unix socket bound to '%s': its file is not in %s, bound there "
			  "again and removed", FI_ARG(fi), path, cwd);
		return 0;
	}
	if (lstat(path, &st) == 0 && same_file(&st, d)) {
		keep_mode(u, &st);
		return 0;
	}
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		log_err(FI_FMT ": unix socket bound to %s, whose file was replaced by another file "
			"(not a socket): not supported", FI_ARG(fi), path);
		return -EOPNOTSUPP;
	}
	u->has_name_gone = u->name_gone = true;
	u->renamed_to = find_renamed(path, d, &st);
	if (u->renamed_to)
		keep_mode(u, &st);
	log_debug(FI_FMT ": unix socket bound to %s, whose file was %s%s", FI_ARG(fi), path,
		  u->renamed_to ? "renamed to " : "removed", u->renamed_to ? u->renamed_to : "");
	return 0;
}

/* Connected: the peer's inode and name. */
static int dump_peer(const struct fd_info *fi, const struct usk_diag *d, UnixSkEntry *u,
		     struct usk_diag *pd)
{
	struct sockaddr_un sa;
	socklen_t l = sizeof(sa);
	int ret;

	u->has_peer_ino = true;
	u->peer_ino = d->peer;
	memset(pd, 0, sizeof(*pd));
	if (d->peer) {
		ret = usk_diag(d->peer, pd);
		if (ret)
			return log_errno(ret, FI_FMT ": unix socket: cannot look at its peer "
					 "socket:[%u] (sock_diag)", FI_ARG(fi), d->peer);
		if (pd->name_len)
			return set_bytes(&u->peer_name, &u->has_peer_name, pd->name, pd->name_len);
		return 0;
	}
	/* The peer is gone, or not accepted yet: the address it had. */
	if (getpeername(fi->lfd, (struct sockaddr *)&sa, &l) == 0 &&
	    l > offsetof(struct sockaddr_un, sun_path))
		return set_bytes(&u->peer_name, &u->has_peer_name, sa.sun_path,
				 l - offsetof(struct sockaddr_un, sun_path));
	return 0;
}

static bool is_journal(const ProtobufCBinaryData *name)
{
	return name->len == sizeof(JOURNAL_STDOUT) &&
	       !memcmp(name->data, JOURNAL_STDOUT, sizeof(JOURNAL_STDOUT));
}

/* A service's stdout or stderr: the identifier for journald is the task's
 * name (systemd's default, the executable's name, as far as comm keeps it). */
static int dump_journal(const struct fd_info *fi, UnixSkEntry *u)
{
	char path[64], comm[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/comm", fi->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, comm, sizeof(comm) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return log_errno(errno, FI_FMT ": cannot read %s", FI_ARG(fi), path);
	comm[n] = 0;
	comm[strcspn(comm, "\n")] = 0;
	u->journal_ident = strdup(comm);
	return u->journal_ident ? 0 : -ENOMEM;
}

static bool is_pending(const UnixSkEntry *u)
{
	return u->type != SOCK_DGRAM && u->state == USK_ST_ESTABLISHED && u->has_peer_ino &&
	       !u->peer_ino && (u->shutdown & USK_SHUTDOWN_MASK) != USK_SHUTDOWN_MASK;
}

static int usk_dump_entry(const struct fd_info *fi, UnixSkEntry *u)
{
	const struct files_opts *o = files_dump_opts(fi->d);
	struct usk_diag d, pd;
	char nb[NAME_BUF];
	int type, ret;

	ret = usk_diag(fi->st.st_ino, &d);
	if (ret)
		return log_errno(ret, FI_FMT ": unix socket %s: sock_diag cannot see it "
				 "(another network namespace?)", FI_ARG(fi), fi->link);
	ret = get_int(fi, SOL_SOCKET, SO_TYPE, "SO_TYPE", &type);
	if (ret)
		return ret;
	if (type != SOCK_STREAM && type != SOCK_DGRAM && type != SOCK_SEQPACKET) {
		log_err(FI_FMT ": unix socket of type %d not supported", FI_ARG(fi), type);
		return -EOPNOTSUPP;
	}
	u->ino = fi->st.st_ino;
	u->type = type;
	u->state = d.state;
	u->has_shutdown = true;
	u->shutdown = d.shutdown & USK_SHUTDOWN_MASK;
	if (d.state != USK_ST_ESTABLISHED && d.state != USK_ST_CLOSE && d.state != USK_ST_LISTEN) {
		log_err(FI_FMT ": unix %s socket in state %u: not supported", FI_ARG(fi),
			type_name(type), d.state);
		return -EOPNOTSUPP;
	}
	if (d.name_len) {
		ret = set_bytes(&u->name, &u->has_name, d.name, d.name_len);
		if (ret)
			return ret;
		/* a connected stream socket's name may be its listener's */
		if (name_is_path(d.name, d.name_len) &&
		    (type == SOCK_DGRAM || d.state != USK_ST_ESTABLISHED)) {
			ret = dump_path_file(fi, &d, u);
			if (ret)
				return ret;
		}
	}
	if (d.has_peer) {
		ret = dump_peer(fi, &d, u, &pd);
		if (ret)
			return ret;
		if (type == SOCK_STREAM && d.state == USK_ST_ESTABLISHED && d.peer &&
		    is_journal(&u->peer_name)) {
			ret = dump_journal(fi, u);
			if (ret)
				return ret;
		}
	}
	ret = dump_opts(fi, u);
	if (ret)
		return ret;
	if (d.state == USK_ST_LISTEN) {
		u->has_backlog = u->has_pending = true;
		u->backlog = d.wqueue;
		u->pending = d.n_icons;
		return 0;
	}
	if (is_pending(u)) {
		int outq = 0;

		if (ioctl(fi->lfd, SIOCOUTQ, &outq) < 0)
			return log_errno(errno, FI_FMT ": unix socket: SIOCOUTQ", FI_ARG(fi));
		if (outq > 0) {
			log_err(FI_FMT ": unix %s socket has data queued on a connection to %s that "
				"is not accepted yet: not supported", FI_ARG(fi), type_name(type),
				name_str(u->peer_name.data, u->peer_name.len, nb, sizeof(nb)));
			return -EOPNOTSUPP;
		}
	}
	if (u->journal_ident)
		return 0;	/* journald sends nothing on it */
	ret = peek_queue(fi, u, u, o->content_max ? o->content_max : FILES_CONTENT_MAX_DEFAULT);
	if (ret)
		return ret;
	if (type == SOCK_DGRAM && u->n_queue && !u->has_name && u->peer_ino &&
	    (!pd.has_peer || pd.peer != u->ino)) {
		log_err(FI_FMT ": unnamed unix datagram socket connected one way to socket:[%u] "
			"has %zu queued datagrams: they could not be sent again, not supported",
			FI_ARG(fi), d.peer, u->n_queue);
		return -EOPNOTSUPP;
	}
	return 0;
}

static int usk_dump(const struct fd_info *fi, FileEntry *fe)
{
	UnixSkEntry u = UNIX_SK_ENTRY__INIT;
	struct files_obj *o;
	size_t len;
	int ret;

	ret = usk_dump_entry(fi, &u);
	if (ret)
		goto out;
	len = unix_sk_entry__get_packed_size(&u);
	fe->sk.data = malloc(len ? len : 1);
	if (!fe->sk.data) {
		ret = log_errno(ENOMEM, FI_FMT ": unix socket", FI_ARG(fi));
		goto out;
	}
	fe->sk.len = unix_sk_entry__pack(&u, fe->sk.data);
	fe->has_sk = true;
	o = files_dump_obj(fi->d, FOBJ_USK, 0, u.ino, true);
	if (!o) {
		ret = log_errno(ENOMEM, FI_FMT ": unix socket", FI_ARG(fi));
		goto out;
	}
	o->fe = fe;
	o->pid = fi->pid;
	o->fdnum = fi->fd;
	log_debug(FI_FMT ": unix %s socket:[%llu] state %u", FI_ARG(fi), type_name(u.type),
		  (unsigned long long)u.ino, u.state);
out:
	free(u.name.data);
	free(u.peer_name.data);
	free(u.renamed_to);
	free(u.bind_dir);
	free(u.journal_ident);
	free_queue(&u);
	return ret;
}

/* --- the tree as a whole ------------------------------------------------------ */

struct dsk {
	UnixSkEntry *u;
	struct files_obj *o;
	pid_t pid;
	int fd;
	bool close;		/* its peer is outside: kept as closed by it */
};

static struct dsk *dsk_find(struct dsk *v, size_t n, uint64_t ino)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].u->ino == ino)
			return &v[i];
	return NULL;
}

static bool same_name(const ProtobufCBinaryData *a, const ProtobufCBinaryData *b)
{
	return a->len && a->len == b->len && !memcmp(a->data, b->data, a->len);
}

static struct dsk *listener_named(struct dsk *v, size_t n, const UnixSkEntry *u)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].u->state == USK_ST_LISTEN && v[i].u->type == u->type &&
		    same_name(&v[i].u->name, &u->peer_name))
			return &v[i];
	return NULL;
}

/* A connection to a peer outside the tree: refused, or with
 * --external-peers=close kept as closed by its peer, with a warning. */
static int outside_peer(struct files_dump *d, struct dsk *s, const char *what, const char *pn)
{
	char ob[64];
	const char *owner = s->u->peer_ino ?
		files_sock_owner_str(d, s->u->peer_ino, ob, sizeof(ob)) : "no process";

	if (!files_dump_opts(d)->ext_peers_close) {
		log_err("pid %d fd %d: unix %s socket %s outside the dumped tree (socket:[%llu] "
			"of %s, %s): not supported (--external-peers=close keeps it as closed by "
			"its peer)", s->pid, s->fd, type_name(s->u->type), what,
			(unsigned long long)s->u->peer_ino, owner, pn);
		return -EOPNOTSUPP;
	}
	log_warn("pid %d fd %d: unix %s socket %s outside the dumped tree (socket:[%llu] of %s, "
		 "%s): restored as closed by its peer", s->pid, s->fd, type_name(s->u->type),
		 what, (unsigned long long)s->u->peer_ino, owner, pn);
	s->close = true;
	return 0;
}

static int check_peer(struct files_dump *d, struct dsk *v, size_t n, struct dsk *s)
{
	const UnixSkEntry *u = s->u;
	char nb[NAME_BUF];
	const char *pn = name_str(u->peer_name.data, u->peer_name.len, nb, sizeof(nb));

	if (!u->has_peer_ino)
		return 0;
	if (is_pending(u)) {
		if (!listener_named(v, n, u))
			return outside_peer(d, s, "waits to be accepted by a listener", pn);
		return 0;
	}
	if (!u->peer_ino || dsk_find(v, n, u->peer_ino) || u->journal_ident)
		return 0;
	/* a datagram socket connected to a name connects to it again */
	if (u->type == SOCK_DGRAM && u->has_peer_name && u->peer_name.len > 1)
		return 0;
	return outside_peer(d, s, "connected to a peer", pn);
}

static int check_listener(struct files_dump *d, struct dsk *v, size_t n, struct dsk *s)
{
	char nb[NAME_BUF];
	uint32_t mine = 0;

	if (s->u->state != USK_ST_LISTEN || !s->u->pending)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (is_pending(v[i].u) && listener_named(v, n, v[i].u) == s)
			mine++;
	if (mine == s->u->pending)
		return 0;
	name_str(s->u->name.data, s->u->name.len, nb, sizeof(nb));
	if (files_dump_opts(d)->ext_peers_close) {
		/* their clients are gone after a switch: as if they gave up */
		log_warn("pid %d fd %d: unix listener %s: %u connections from outside the dumped "
			 "tree, not accepted yet, are dropped", s->pid, s->fd, nb,
			 s->u->pending - mine);
		return 0;
	}
	log_err("pid %d fd %d: unix listener %s has %u connections not accepted yet, "
		"%u of them from the dumped tree: connections from outside cannot be "
		"restored, not supported", s->pid, s->fd, nb, s->u->pending, mine);
	return -EOPNOTSUPP;
}

/* The entry of @s becomes one whose peer has closed: what the kernel shows
 * of a connection whose peer went away (4. of the restore). */
static int mark_closed(struct dsk *s)
{
	UnixSkEntry *u = s->u;
	FileEntry *fe = s->o->fe;
	uint8_t *data;
	size_t len;

	u->has_closed_peer_ino = true;
	u->closed_peer_ino = u->peer_ino;
	u->peer_ino = 0;
	if (u->type != SOCK_DGRAM)
		u->shutdown = USK_SHUTDOWN_MASK;
	len = unix_sk_entry__get_packed_size(u);
	data = malloc(len ? len : 1);
	if (!data)
		return log_errno(ENOMEM, "pid %d fd %d: unix socket", s->pid, s->fd);
	free(fe->sk.data);
	fe->sk.data = data;
	fe->sk.len = unix_sk_entry__pack(u, data);
	return 0;
}

static int usk_dump_end(struct files_dump *d)
{
	struct dsk *v = NULL;
	size_t n = 0, cap = 0;
	int ret = 0;

	for (struct files_obj *o = files_dump_obj_next(d, NULL); o; o = files_dump_obj_next(d, o)) {
		if (o->tag != FOBJ_USK || !o->fe)
			continue;
		if (n == cap) {
			struct dsk *nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));
			if (!nv) {
				ret = log_errno(ENOMEM, "unix sockets");
				goto out;
			}
			v = nv;
		}
		memset(&v[n], 0, sizeof(v[n]));
		v[n].u = unix_sk_entry__unpack(NULL, o->fe->sk.len, o->fe->sk.data);
		if (!v[n].u) {
			ret = log_errno(ENOMEM, "unix sockets");
			goto out;
		}
		v[n].o = o;
		v[n].pid = o->pid;
		v[n].fd = o->fdnum;
		n++;
	}
	for (size_t i = 0; i < n && !ret; i++) {
		ret = check_peer(d, v, n, &v[i]);
		if (!ret)
			ret = check_listener(d, v, n, &v[i]);
	}
	for (size_t i = 0; i < n && !ret; i++)
		if (v[i].close)
			ret = mark_closed(&v[i]);
out:
	for (size_t i = 0; i < n; i++)
		unix_sk_entry__free_unpacked(v[i].u, NULL);
	free(v);
	return ret;
}

/* --- validation ---------------------------------------------------------------- */

static bool name_ok(const ProtobufCBinaryData *b)
{
	if (b->len > USK_NAME_MAX || (b->len && !b->data))
		return false;
	if (!b->len)
		return true;
	if (!b->data[0])	/* abstract: any bytes */
		return b->len > 1;
	/* a path (relative ones are checked with bind_dir): ends at a NUL
	 * within the field */
	return strnlen((const char *)b->data, b->len) < b->len;
}

static bool name_relative(const ProtobufCBinaryData *b)
{
	return b->len && b->data[0] && b->data[0] != '/';
}

#define BAD(why) do { reason = (why); goto bad; } while (0)

static int usk_validate_entry(const FileEntry *fe, const UnixSkEntry *u)
{
	const char *reason;
	uint64_t total = 0;

	if (u->type != SOCK_STREAM && u->type != SOCK_DGRAM && u->type != SOCK_SEQPACKET)
		BAD("type");
	if (u->state != USK_ST_ESTABLISHED && u->state != USK_ST_CLOSE && u->state != USK_ST_LISTEN)
		BAD("state");
	if (!u->ino || u->ino > UINT32_MAX || u->peer_ino > UINT32_MAX || u->peer_ino == u->ino)
		BAD("inode");
	if (u->has_closed_peer_ino && (!u->has_peer_ino || u->peer_ino ||
				       u->closed_peer_ino > UINT32_MAX))
		BAD("closed peer");
	if ((u->has_name && !name_ok(&u->name)) || (u->has_peer_name && !name_ok(&u->peer_name)))
		BAD("name");
	if (u->bind_dir && (!files_path_ok(u->bind_dir) || !u->has_name ||
			    !name_relative(&u->name)))
		BAD("directory of a relative name");
	if (u->has_name && name_relative(&u->name) && !u->bind_dir &&
	    (u->type == SOCK_DGRAM || u->state != USK_ST_ESTABLISHED))
		BAD("relative name without its directory");
	if (u->name_gone && (!u->has_name || !name_is_path(u->name.data, u->name.len)))
		BAD("removed name");
	if (u->renamed_to && (!u->name_gone || u->bind_dir || u->renamed_to[0] != '/' ||
			      strlen(u->renamed_to) >= USK_NAME_MAX))
		BAD("renamed name");
	if (u->state == USK_ST_LISTEN &&
	    (u->type == SOCK_DGRAM || !u->has_name || !u->name.len || u->n_queue ||
	     u->has_peer_ino || u->backlog > INT_MAX || u->pending > FILES_LIST_MAX))
		BAD("listener");
	if (u->state != USK_ST_LISTEN && (u->has_backlog || u->pending))
		BAD("backlog of a non-listener");
	if (u->has_peer_ino && u->state != USK_ST_ESTABLISHED)
		BAD("peer of an unconnected socket");
	if (u->shutdown > USK_SHUTDOWN_MASK || u->sndbuf > INT_MAX || u->rcvbuf > INT_MAX ||
	    u->peek_off < -1 || u->linger_sec > INT_MAX || u->file_mode > 07777)
		BAD("option value");
	if (u->n_queue > USK_MSGS_MAX || (u->n_queue && !u->queue))
		BAD("queue length");
	for (size_t i = 0; i < u->n_queue; i++) {
		const UnixSkMsg *m = u->queue[i];

		if (!m || (m->data.len && !m->data.data) || m->data.len > INT_MAX)
			BAD("queued message");
		if (m->has_from && (u->type != SOCK_DGRAM || !name_ok(&m->from)))
			BAD("queued message sender");
		/* a stream send of no bytes sends nothing, not even files */
		if (u->type == SOCK_STREAM && !m->data.len)
			BAD("empty stream message");
		if (m->n_file_ids && (u->passcred || m->n_file_ids > USK_FDS_MAX || !m->file_ids))
			BAD("files in flight");
		total += m->data.len;
	}
	if (total > FILES_CONTENT_MAX)
		BAD("queue size");
	if ((fe->flags & O_ACCMODE) != O_RDWR || (fe->flags & (O_PATH | O_DIRECTORY | O_APPEND)))
		BAD("open flags");
	if (u->has_filter && (!u->filter.len || !u->filter.data ||
			      u->filter.len % sizeof(struct sock_filter) ||
			      u->filter.len > USK_FILTER_MAX * sizeof(struct sock_filter)))
		BAD("socket filter");
	if (u->journal_ident &&
	    (u->type != SOCK_STREAM || u->state != USK_ST_ESTABLISHED || !u->peer_ino ||
	     !u->has_peer_name || !is_journal(&u->peer_name) || u->n_queue ||
	     !u->journal_ident[0] || strlen(u->journal_ident) > 64 || strpbrk(u->journal_ident, "\n")))
		BAD("journal stream");
	return 0;
bad:
	log_err(FE_FMT ": bad unix socket entry (%s)", FE_ARG(fe), reason);
	return -EINVAL;
}
#undef BAD

static int usk_validate(const FileEntry *fe)
{
	UnixSkEntry *u;
	int ret;

	if (!fe->has_sk || !fe->sk.len || !fe->sk.data) {
		log_err(FE_FMT ": unix socket without its socket data", FE_ARG(fe));
		return -EINVAL;
	}
	u = unix_sk_entry__unpack(NULL, fe->sk.len, fe->sk.data);
	if (!u) {
		log_err(FE_FMT ": cannot decode its unix socket data", FE_ARG(fe));
		return -EINVAL;
	}
	ret = usk_validate_entry(fe, u);
	unix_sk_entry__free_unpacked(u, NULL);
	return ret;
}

/* --- restore --------------------------------------------------------------------- */

struct rsk {
	const FileEntry *fe;
	UnixSkEntry *u;
	int fd;
	int tmp;		/* the other end for a socket whose peer is gone */
	struct rsk *peer;	/* in the image */
	struct rsk *listener;	/* accepted from it (2.), or waits on it (5.) */
	bool pair;		/* made by socketpair() with its peer */
	bool client;		/* connects to peer->listener, which accepts peer */
	bool made_file;		/* we bound a path: unlink it on failure */
	bool file_moved;	/* ... and renamed it to u->renamed_to */
	bool gone_now;		/* name_gone, and another socket binds that name */
};

struct rctx {
	struct rsk *v;
	size_t n;
	int anon;		/* an unnamed datagram socket to send from */
	struct files_rst *fr;
};

#define RS_FMT		"unix %s socket:[%llu] (file %u)"
#define RS_ARG(s)	type_name((s)->u->type), (unsigned long long)(s)->u->ino, (s)->fe->id

static struct rsk *rsk_find(struct rctx *c, uint64_t ino)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].u->ino == ino)
			return &c->v[i];
	return NULL;
}

static struct rsk *rsk_listener(struct rctx *c, const ProtobufCBinaryData *name, uint32_t type)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].u->state == USK_ST_LISTEN && c->v[i].u->type == type &&
		    same_name(&c->v[i].u->name, name))
			return &c->v[i];
	return NULL;
}

/* The socket file this restore made for @s (a failed restore removes it). */
static void unlink_made(struct rsk *s, char *nb, size_t size)
{
	const char *name = name_str(s->u->name.data, s->u->name.len, nb, size);
	int dfd = AT_FDCWD;

	if (s->file_moved) {
		unlink(s->u->renamed_to);
		return;
	}
	if (s->u->bind_dir)
		dfd = open(s->u->bind_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0 || dfd == AT_FDCWD)
		unlinkat(dfd, name, 0);
	if (dfd >= 0)
		close(dfd);
}

static void rctx_free(struct rctx *c, bool failed)
{
	char nb[NAME_BUF];

	for (size_t i = 0; i < c->n; i++) {
		struct rsk *s = &c->v[i];

		if (s->fd >= 0)
			close(s->fd);
		if (s->tmp >= 0)
			close(s->tmp);
		if (failed && s->made_file)
			unlink_made(s, nb, sizeof(nb));
		if (s->u)
			unix_sk_entry__free_unpacked(s->u, NULL);
	}
	if (c->anon >= 0)
		close(c->anon);
	free(c->v);
}

/* Who is who: peers, accepted connections, pending ones.  The image was
 * validated entry by entry; here the links between entries. */
static int rctx_link(struct rctx *c)
{

	for (size_t i = 0; i < c->n; i++) {
		struct rsk *s = &c->v[i];
		const UnixSkEntry *u = s->u;

		if (i && rsk_find(c, u->ino) != s) {
			log_err(RS_FMT ": two entries for one socket", RS_ARG(s));
			return -EINVAL;
		}
		if (is_pending(u)) {
			s->listener = rsk_listener(c, &u->peer_name, u->type);
			if (!s->listener) {
				log_err(RS_FMT ": waits to be accepted by a listener that is not "
					"in the image", RS_ARG(s));
				return -EINVAL;
			}
			continue;
		}
		if (!u->peer_ino || u->journal_ident)
			continue;
		s->peer = rsk_find(c, u->peer_ino);
		if (!s->peer && u->type != SOCK_DGRAM) {
			log_err(RS_FMT ": its peer socket:[%llu] is not in the image", RS_ARG(s),
				(unsigned long long)u->peer_ino);
			return -EINVAL;
		}
		if (s->peer && s->peer->u->type != u->type) {
			log_err(RS_FMT ": its peer is of another type", RS_ARG(s));
			return -EINVAL;
		}
		if (s->peer && u->type != SOCK_DGRAM && s->peer->u->peer_ino != u->ino) {
			log_err(RS_FMT ": its peer is connected elsewhere", RS_ARG(s));
			return -EINVAL;
		}
		if (s->peer && s->peer->u->peer_ino == u->ino)
			s->pair = true;
	}
	/* an accepted connection: one side's name is a listener's */
	for (size_t i = 0; i < c->n; i++) {
		struct rsk *s = &c->v[i], *l;

		if (!s->pair || s->u->type == SOCK_DGRAM || !s->u->has_name)
			continue;
		l = rsk_listener(c, &s->u->name, s->u->type);
		if (!l || s->peer->listener)
			continue;
		s->listener = l;
		s->peer->client = true;
		s->pair = s->peer->pair = false;
	}
	return 0;
}

static int new_socket(struct rsk *s)
{
	s->fd = socket(AF_UNIX, s->u->type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->fd < 0)
		return log_errno(errno, RS_FMT ": cannot make a socket", RS_ARG(s));
	return 0;
}

/* Is a unix socket bound to the socket file at @path?  Connecting a
 * datagram socket to it tells without side effects: ECONNREFUSED when
 * nothing is bound there, EPROTOTYPE for a stream or seqpacket socket. */
static int path_in_use(const char *path)
{
	struct sockaddr_un sa;
	socklen_t l = name_addr((const uint8_t *)path, strlen(path) + 1, &sa);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), r, e;

	if (fd < 0)
		return -errno;
	r = connect(fd, (struct sockaddr *)&sa, l);
	e = errno;
	close(fd);
	if (r == 0 || e == EPROTOTYPE || e == EAGAIN)
		return 1;
	if (e == ECONNREFUSED || e == ENOENT)
		return 0;
	return -e;
}

static int bind_path_prepare(struct rsk *s, const char *path)
{
	struct stat st;
	int r;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return log_errno(errno, RS_FMT ": cannot look at %s", RS_ARG(s), path);
	}
	if (!S_ISSOCK(st.st_mode)) {
		log_err(RS_FMT ": %s exists and is not a socket: cannot bind to it", RS_ARG(s), path);
		return -EADDRINUSE;
	}
	r = path_in_use(path);
	if (r < 0)
		return log_errno(r, RS_FMT ": cannot tell whether %s is in use", RS_ARG(s), path);
	if (r) {
		log_err(RS_FMT ": cannot bind to %s: the address is in use by a live socket",
			RS_ARG(s), path);
		return -EADDRINUSE;
	}
	if (unlink(path) < 0 && errno != ENOENT)
		return log_errno(errno, RS_FMT ": cannot remove the stale socket file %s",
				 RS_ARG(s), path);
	log_debug(RS_FMT ": removed the stale socket file %s", RS_ARG(s), path);
	return 0;
}

/*
 * Owner and mode of the socket file bind() just made, through an O_PATH fd
 * of it: if someone swapped the name for a symbolic link meanwhile (a
 * directory they can write), nothing is followed.
 */
static int set_socket_file(struct rsk *s, const char *name)
{
	const UnixSkEntry *u = s->u;
	char self[64];
	struct stat st;
	int pfd, ret = 0;

	if (!u->has_file_mode && !(u->has_file_uid && u->has_file_gid))
		return 0;
	pfd = open(name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (pfd < 0)
		return log_errno(errno, RS_FMT ": cannot open %s", RS_ARG(s), name);
	if (fstat(pfd, &st) || !S_ISSOCK(st.st_mode)) {
		log_err(RS_FMT ": %s is no longer the socket just bound", RS_ARG(s), name);
		ret = -EEXIST;
		goto out;
	}
	if (u->has_file_uid && u->has_file_gid &&
	    fchownat(pfd, "", u->file_uid, u->file_gid, AT_EMPTY_PATH) < 0) {
		ret = log_errno(errno, RS_FMT ": cannot give %s owner %u:%u", RS_ARG(s), name,
				u->file_uid, u->file_gid);
		goto out;
	}
	snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
	if (u->has_file_mode && chmod(self, u->file_mode & 07777) < 0)
		ret = log_errno(errno, RS_FMT ": cannot give %s mode %o", RS_ARG(s), name,
				u->file_mode);
out:
	close(pfd);
	return ret;
}

/* Run in @dir (a relative name resolves there): the master is one thread,
 * its working directory is its own to change for a moment. */
static int enter_dir(struct rsk *s, const char *dir, int *saved)
{
	*saved = -1;
	if (!dir)
		return 0;
	*saved = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*saved < 0)
		return log_errno(errno, RS_FMT ": cannot open the working directory", RS_ARG(s));
	if (chdir(dir) < 0) {
		int e = errno;

		close(*saved);
		*saved = -1;
		return log_errno(e, RS_FMT ": cannot enter %s, where its name was bound", RS_ARG(s),
				 dir);
	}
	return 0;
}

static void leave_dir(int saved)
{
	if (saved < 0)
		return;
	if (fchdir(saved) < 0)
		log_errno(errno, "cannot go back to the restore's working directory");
	close(saved);
}

/* A name whose file was gone at dump: the file this bind made goes too
 * (or moves where the dumped one had been renamed to). */
static int name_gone_finish(struct rsk *s, const char *name)
{
	int ret;

	if (!s->u->renamed_to) {
		if (unlink(name) < 0)
			return log_errno(errno, RS_FMT ": cannot remove %s, removed before the dump",
					 RS_ARG(s), name);
		s->made_file = false;
		return 0;
	}
	ret = bind_path_prepare(s, s->u->renamed_to);
	if (ret)
		return ret;
	if (rename(name, s->u->renamed_to) < 0)
		return log_errno(errno, RS_FMT ": cannot rename %s to %s, as it was before the dump",
				 RS_ARG(s), name, s->u->renamed_to);
	s->file_moved = true;
	return 0;
}

/* The end of what bind_name() started for a name gone at dump. */
static int finish_gone_name(struct rsk *s)
{
	const UnixSkEntry *u = s->u;
	char nb[NAME_BUF];
	const char *name = name_str(u->name.data, u->name.len, nb, sizeof(nb));
	int ret, saved;

	if (!u->name_gone || !s->made_file || s->gone_now)
		return 0;
	ret = enter_dir(s, u->bind_dir, &saved);
	if (ret)
		return ret;
	ret = name_gone_finish(s, name);
	if (!ret && s->file_moved)
		ret = set_socket_file(s, u->renamed_to);
	leave_dir(saved);
	return ret;
}

static int bind_name(struct rsk *s, int fd)
{
	const UnixSkEntry *u = s->u;
	struct sockaddr_un sa;
	char nb[NAME_BUF];
	const char *name = name_str(u->name.data, u->name.len, nb, sizeof(nb));
	socklen_t l;
	int ret, saved;

	if (!u->has_name || !u->name.len)
		return 0;
	if (name_relative(&u->name) && !u->bind_dir) {
		log_err(RS_FMT ": bound to the relative path '%s' in an unknown directory",
			RS_ARG(s), name);
		return -EINVAL;
	}
	ret = enter_dir(s, u->bind_dir, &saved);
	if (ret)
		return ret;
	if (name_is_path(u->name.data, u->name.len)) {
		ret = bind_path_prepare(s, name);
		if (ret)
			goto out;
	}
	l = name_addr(u->name.data, u->name.len, &sa);
	if (bind(fd, (struct sockaddr *)&sa, l) < 0) {
		ret = errno == EADDRINUSE ? -EADDRINUSE : -errno;
		if (errno == EADDRINUSE)
			log_err(RS_FMT ": cannot bind to %s: the address is in use by a live socket",
				RS_ARG(s), name);
		else
			log_errno(errno, RS_FMT ": cannot bind to %s", RS_ARG(s), name);
		goto out;
	}
	if (!name_is_path(u->name.data, u->name.len))
		goto out;
	s->made_file = true;
	if (u->name_gone) {
		/* later (finish_gone_names), once nothing connects or sends to
		 * the name any more; at once if another socket binds it */
		if (s->gone_now)
			ret = name_gone_finish(s, name);
		goto out;
	}
	ret = set_socket_file(s, name);
out:
	leave_dir(saved);
	return ret;
}

/* Connect to @name, bound in @dir if relative (the peer's bind_dir). */
static int connect_to(struct rsk *s, const ProtobufCBinaryData *name, const char *dir)
{
	struct sockaddr_un sa;
	socklen_t l = name_addr(name->data, name->len, &sa);
	char nb[NAME_BUF];
	int ret, saved;

	ret = enter_dir(s, name_relative(name) ? dir : NULL, &saved);
	if (ret)
		return ret;
	if (connect(s->fd, (struct sockaddr *)&sa, l) < 0)
		ret = log_errno(errno, RS_FMT ": cannot connect to %s", RS_ARG(s),
				name_str(name->data, name->len, nb, sizeof(nb)));
	leave_dir(saved);
	return ret;
}

/* 1. */
static int make_listener(struct rsk *s)
{
	int ret = new_socket(s);

	if (!ret)
		ret = bind_name(s, s->fd);
	if (!ret && listen(s->fd, s->u->backlog) < 0)
		ret = log_errno(errno, RS_FMT ": listen", RS_ARG(s));
	return ret;
}

/* 2. @s is the client; its peer the accepted side. */
static int make_accepted(struct rsk *s)
{
	struct rsk *a = s->peer, *l = a->listener;
	int ret = new_socket(s);

	if (!ret)
		ret = bind_name(s, s->fd);
	if (!ret)
		ret = connect_to(s, &l->u->name, l->u->bind_dir);
	if (ret)
		return ret;
	a->fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (a->fd < 0)
		return log_errno(errno, RS_FMT ": cannot accept its connection again", RS_ARG(a));
	return 0;
}

/* 4b. A service's stdout to journald: connect, and the stream header (as
 * systemd writes it: identifier, unit (empty: journald finds it from the
 * cgroup), priority info, level prefixes on, no forwarding). */
static int make_journal(struct rsk *s)
{
	char hdr[128];
	int ret = new_socket(s), n;

	if (!ret)
		ret = connect_to(s, &s->u->peer_name, NULL);
	if (ret) {
		log_err(RS_FMT ": the stdout of a service could not be connected to journald "
			"(%s) again", RS_ARG(s), JOURNAL_STDOUT);
		return ret;
	}
	n = snprintf(hdr, sizeof(hdr), "%s\n\n6\n1\n0\n0\n0\n", s->u->journal_ident);
	if (send(s->fd, hdr, n, MSG_NOSIGNAL) != n)
		return log_errno(errno, RS_FMT ": cannot send journald its stream header", RS_ARG(s));
	return 0;
}

/* 3. */
static int make_pair(struct rsk *s)
{
	int sv[2], ret;

	if (socketpair(AF_UNIX, s->u->type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		return log_errno(errno, RS_FMT ": socketpair", RS_ARG(s));
	s->fd = sv[0];
	if (s->peer) {
		s->peer->fd = sv[1];
	} else {
		s->tmp = sv[1];
	}
	/* names of datagram pairs; stream pairs lost theirs (docs/files.md) */
	if (s->u->type != SOCK_DGRAM)
		return 0;
	ret = bind_name(s, s->fd);
	if (!ret && s->peer)
		ret = bind_name(s->peer, s->peer->fd);
	return ret;
}

/* 1.-5. */
static int make_sockets(struct rctx *c)
{
	int ret = 0;

	for (size_t i = 0; i < c->n && !ret; i++)
		if (c->v[i].u->state == USK_ST_LISTEN)
			ret = make_listener(&c->v[i]);
	for (size_t i = 0; i < c->n && !ret; i++) {
		struct rsk *s = &c->v[i];
		const UnixSkEntry *u = s->u;

		if (s->fd >= 0 || u->state == USK_ST_LISTEN || is_pending(u) ||
		    (s->listener && !s->client))
			continue;
		if (s->client)
			ret = make_accepted(s);
		else if (s->u->journal_ident)
			ret = make_journal(s);
		else if (s->pair || (u->has_peer_ino && !u->peer_ino))
			ret = make_pair(s);
		else {
			ret = new_socket(s);
			if (!ret)
				ret = bind_name(s, s->fd);
		}
	}
	/* 5. connections not accepted yet, in inode order (creation order, the
	 *    kernel does not tell the order of the listener's queue) */
	for (size_t i = 0; i < c->n && !ret; i++) {
		struct rsk *s = &c->v[i];

		if (!is_pending(s->u))
			continue;
		ret = new_socket(s);
		if (!ret)
			ret = bind_name(s, s->fd);
		if (!ret)
			ret = connect_to(s, &s->listener->u->name, s->listener->u->bind_dir);
	}
	return ret;
}

static int force_sndbuf(struct rsk *s, int fd)
{
	int v = INT_MAX / 4;

	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) < 0)
		return log_errno(errno, RS_FMT ": SO_SNDBUFFORCE", RS_ARG(s));
	return 0;
}

/*
 * The files in flight of @m: our fds of their entries (opened now if they
 * were not yet), in a control message.
 */
static int inflight_cmsg(struct rctx *c, struct rsk *s, const UnixSkMsg *m, struct msghdr *mh,
			 void *ctl)
{
	struct cmsghdr *cm;

	mh->msg_control = ctl;
	mh->msg_controllen = CMSG_SPACE(m->n_file_ids * sizeof(int));
	cm = CMSG_FIRSTHDR(mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(m->n_file_ids * sizeof(int));
	for (size_t i = 0; i < m->n_file_ids; i++) {
		const FileEntry *fe = files_rst_entry(c->fr, m->file_ids[i]);
		int fd;

		if (!fe || fe->kind == FILE_KIND__FILE_UNIX_SK || fe->kind == FILE_KIND__FILE_EPOLL) {
			log_err(RS_FMT ": a queued message carries file %u in flight, %s", RS_ARG(s),
				m->file_ids[i], fe ? "a kind that cannot be" : "not in the image");
			return -EINVAL;
		}
		fd = files_rst_open_id(c->fr, m->file_ids[i]);
		if (fd < 0)
			return fd;
		memcpy(CMSG_DATA(cm) + i * sizeof(int), &fd, sizeof(int));
	}
	return 0;
}

static int send_msg(struct rctx *c, struct rsk *s, int from, const UnixSkMsg *m,
		    const struct sockaddr_un *to, socklen_t tl)
{
	const uint8_t *p = m->data.data;
	size_t left = m->data.len;
	bool fds_sent = false;
	union {
		char b[CMSG_SPACE(sizeof(int) * USK_FDS_MAX)];
		struct cmsghdr align;
	} ctl;

	do {
		struct iovec iov = { .iov_base = (void *)p, .iov_len = left };
		struct msghdr mh = { .msg_name = (void *)to, .msg_namelen = to ? tl : 0,
				     .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t r;

		/* a stream send cut short took the files with its first bytes */
		if (m->n_file_ids && !fds_sent) {
			int ret = inflight_cmsg(c, s, m, &mh, ctl.b);
			if (ret)
				return ret;
		}
		r = sendmsg(from, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return log_errno(errno, RS_FMT ": cannot put %zu queued bytes back",
					 RS_ARG(s), m->data.len);
		if (s->u->type != SOCK_STREAM && (size_t)r != left) {
			log_err(RS_FMT ": a message of %zu bytes went out as %zd", RS_ARG(s),
				left, r);
			return -EIO;
		}
		fds_sent = true;
		p += r;
		left -= r;
	} while (left);
	return 0;
}

/* The socket a queued datagram to @s is sent from (6.). */
static int dgram_sender(struct rctx *c, struct rsk *s, const UnixSkMsg *m,
			struct sockaddr_un *to, socklen_t *tl, int *from)
{
	*tl = 0;
	if (s->pair) {
		*from = s->peer->fd;
		return 0;
	}
	if (s->tmp >= 0) {
		*from = s->tmp;
		return 0;
	}
	if (!s->u->has_name || !s->u->name.len) {
		log_err(RS_FMT ": has queued datagrams but no name to send them to", RS_ARG(s));
		return -EINVAL;
	}
	*tl = name_addr(s->u->name.data, s->u->name.len, to);
	if (m->has_from) {
		for (size_t i = 0; i < c->n; i++) {
			struct rsk *x = &c->v[i];

			if (x->u->type == SOCK_DGRAM && x->fd >= 0 && same_name(&x->u->name, &m->from)) {
				*from = x->fd;
				return force_sndbuf(x, x->fd);
			}
		}
	}
	if (c->anon < 0) {
		int v = INT_MAX / 4;

		c->anon = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (c->anon < 0)
			return log_errno(errno, RS_FMT ": cannot make a socket to send from", RS_ARG(s));
		setsockopt(c->anon, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v));
	}
	if (m->has_from) {
		char nb[NAME_BUF];
		log_warn(RS_FMT ": a queued datagram from %s (not in the image) comes back "
			 "from an unnamed socket", RS_ARG(s),
			 name_str(m->from.data, m->from.len, nb, sizeof(nb)));
	}
	*from = c->anon;
	return 0;
}

/* 6. */
static int refill(struct rctx *c, struct rsk *s)
{
	int ret;

	for (size_t i = 0; i < s->u->n_queue; i++) {
		const UnixSkMsg *m = s->u->queue[i];
		struct sockaddr_un to;
		socklen_t tl = 0;
		int from;

		if (s->u->type == SOCK_DGRAM) {
			ret = dgram_sender(c, s, m, &to, &tl, &from);
		} else {
			from = s->peer ? s->peer->fd : s->tmp;
			ret = from < 0 ? -EINVAL : 0;
			if (ret)
				log_err(RS_FMT ": has queued data but no peer to send it", RS_ARG(s));
		}
		if (!ret && s->u->type != SOCK_DGRAM && i == 0)
			ret = force_sndbuf(s, from);
		if (!ret && s->u->type == SOCK_DGRAM && (s->pair || s->tmp >= 0) && i == 0)
			ret = force_sndbuf(s, from);
		if (!ret)
			ret = send_msg(c, s, from, m, tl ? &to : NULL, tl);
		if (ret)
			return ret;
	}
	return 0;
}

static int set_int(struct rsk *s, int opt, const char *what, int v)
{
	if (setsockopt(s->fd, SOL_SOCKET, opt, &v, sizeof(v)) < 0)
		return log_errno(errno, RS_FMT ": setsockopt(%s, %d)", RS_ARG(s), what, v);
	return 0;
}

/* 8. */
static int finish(struct rsk *s)
{
	const UnixSkEntry *u = s->u;
	int ret = 0;

	if (u->state != USK_ST_LISTEN && (u->shutdown & USK_SHUTDOWN_MASK)) {
		int how = (u->shutdown & USK_SHUTDOWN_MASK) == USK_SHUTDOWN_MASK ? SHUT_RDWR :
			  (u->shutdown & USK_RCV_SHUTDOWN) ? SHUT_RD : SHUT_WR;
		if (shutdown(s->fd, how) < 0 && errno != ENOTCONN)
			return log_errno(errno, RS_FMT ": shutdown", RS_ARG(s));
	}
	/* getsockopt gives twice what was set */
	if (u->has_sndbuf)
		ret = set_int(s, SO_SNDBUFFORCE, "SO_SNDBUFFORCE", u->sndbuf / 2);
	if (!ret && u->has_rcvbuf)
		ret = set_int(s, SO_RCVBUFFORCE, "SO_RCVBUFFORCE", u->rcvbuf / 2);
	if (!ret && u->reuseaddr)
		ret = set_int(s, SO_REUSEADDR, "SO_REUSEADDR", 1);
	if (!ret && u->passcred)
		ret = set_int(s, SO_PASSCRED, "SO_PASSCRED", 1);
	if (!ret && u->passsec)
		ret = set_int(s, SO_PASSSEC, "SO_PASSSEC", 1);
	if (!ret && u->passpidfd)
		ret = set_int(s, SO_PASSPIDFD, "SO_PASSPIDFD", 1);
	if (!ret && u->has_filter) {
		/* the kernel checks the program */
		struct sock_fprog p = { .len = u->filter.len / sizeof(struct sock_filter),
					.filter = (struct sock_filter *)u->filter.data };

		if (setsockopt(s->fd, SOL_SOCKET, SO_ATTACH_FILTER, &p, sizeof(p)) < 0)
			ret = log_errno(errno, RS_FMT ": cannot attach its socket filter (%u "
					"instructions)", RS_ARG(s), p.len);
		else if (u->filter_locked)
			ret = set_int(s, SO_LOCK_FILTER, "SO_LOCK_FILTER", 1);
	}
	if (!ret && u->has_peek_off && u->peek_off >= 0)
		ret = set_int(s, SO_PEEK_OFF, "SO_PEEK_OFF", u->peek_off);
	if (!ret && u->linger_on) {
		struct linger lg = { .l_onoff = 1, .l_linger = u->linger_sec };
		if (setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
			ret = log_errno(errno, RS_FMT ": SO_LINGER", RS_ARG(s));
	}
	return ret;
}

static bool dgram_to_connect(const struct rsk *s)
{
	return s->u->type == SOCK_DGRAM && s->u->peer_ino && !s->pair;
}

static int connect_dgram(struct rsk *s)
{
	if (s->peer && (!s->peer->u->has_name || !s->peer->u->name.len)) {
		log_err(RS_FMT ": connected to an unnamed socket it cannot connect to again",
			RS_ARG(s));
		return -EINVAL;
	}
	return connect_to(s, s->peer ? &s->peer->u->name : &s->u->peer_name,
			  s->peer ? s->peer->u->bind_dir : NULL);
}

/*
 * 8.  The kernel lets a datagram socket connect to another only while that
 * one is unconnected or connected back to it: a socket connects once every
 * socket that connects to it did (a chain A -> B -> C goes A, B).
 */
static int connect_dgrams(struct rctx *c)
{
	size_t *in = calloc(c->n ? c->n : 1, sizeof(*in)), left = 0;
	bool *done = calloc(c->n ? c->n : 1, sizeof(*done));
	int ret = 0;

	if (!in || !done) {
		ret = log_errno(ENOMEM, "unix sockets");
		goto out;
	}
	for (size_t i = 0; i < c->n; i++) {
		if (!dgram_to_connect(&c->v[i])) {
			done[i] = true;
			continue;
		}
		left++;
		if (c->v[i].peer)
			in[c->v[i].peer - c->v]++;
	}
	while (left && !ret) {
		bool progress = false;

		for (size_t i = 0; i < c->n && !ret; i++) {
			if (done[i] || in[i])
				continue;
			ret = connect_dgram(&c->v[i]);
			done[i] = progress = true;
			left--;
			if (c->v[i].peer)
				in[c->v[i].peer - c->v]--;
		}
		/* a cycle: the dumped state cannot be rebuilt that way, say so */
		for (size_t i = 0; i < c->n && !progress && !ret; i++) {
			if (!done[i]) {
				in[i] = 0;
				progress = true;
			}
		}
	}
out:
	free(in);
	free(done);
	return ret;
}

/*
 * A name gone at dump that another socket of the image binds again (bound
 * anew since): its file goes as soon as it is made, and it is made first
 * (the array is reordered before any link into it is taken).
 */
static void order_gone_names(struct rctx *c)
{
	size_t k = 0;

	for (size_t i = 0; i < c->n; i++)
		for (size_t j = 0; j < c->n && c->v[i].u->name_gone; j++)
			if (j != i && !c->v[j].u->name_gone &&
			    same_name(&c->v[i].u->name, &c->v[j].u->name) &&
			    !(c->v[j].u->type != SOCK_DGRAM && c->v[j].u->state == USK_ST_ESTABLISHED))
				c->v[i].gone_now = true;
	for (size_t i = 0; i < c->n; i++) {
		if (!c->v[i].gone_now)
			continue;
		struct rsk t = c->v[i];

		memmove(&c->v[k + 1], &c->v[k], (i - k) * sizeof(t));
		c->v[k++] = t;
	}
}

static int rctx_build(struct rctx *c)
{
	int ret;

	order_gone_names(c);
	ret = rctx_link(c);

	if (!ret)
		ret = make_sockets(c);
	for (size_t i = 0; i < c->n && !ret; i++)
		ret = refill(c, &c->v[i]);
	if (!ret)
		ret = connect_dgrams(c);
	for (size_t i = 0; i < c->n && !ret; i++)
		ret = finish_gone_name(&c->v[i]);
	for (size_t i = 0; i < c->n; i++) {
		if (c->v[i].tmp >= 0)
			close(c->v[i].tmp);
		c->v[i].tmp = -1;
	}
	for (size_t i = 0; i < c->n && !ret; i++)
		ret = finish(&c->v[i]);
	return ret;
}

/* Build every unix socket of the image; their fds go to FOBJ_USK objects. */
static int usk_restore_all(struct files_rst *fr)
{
	struct rctx c = { .anon = -1, .fr = fr };
	size_t cap = 0;
	int ret = 0;

	for (size_t i = 0; i < files_rst_count(fr); i++) {
		const FileEntry *fe = files_rst_nth(fr, i);
		struct rsk *s;

		if (fe->kind != FILE_KIND__FILE_UNIX_SK)
			continue;
		if (c.n == cap) {
			struct rsk *nv = realloc(c.v, (cap = cap ? cap * 2 : 16) * sizeof(*nv));
			if (!nv) {
				ret = log_errno(ENOMEM, "unix sockets");
				goto out;
			}
			c.v = nv;
		}
		s = &c.v[c.n++];
		memset(s, 0, sizeof(*s));
		s->fe = fe;
		s->fd = s->tmp = -1;
		s->u = unix_sk_entry__unpack(NULL, fe->sk.len, fe->sk.data);
		if (!s->u) {
			ret = log_errno(EINVAL, FE_FMT ": cannot decode its unix socket data", FE_ARG(fe));
			goto out;
		}
	}
	ret = rctx_build(&c);
	for (size_t i = 0; i < c.n && !ret; i++) {
		struct files_obj *o = files_rst_obj(fr, FOBJ_USK, 1, c.v[i].fe->id, true);

		if (!o) {
			ret = log_errno(ENOMEM, "unix sockets");
			break;
		}
		o->fd = c.v[i].fd;
		c.v[i].fd = -1;
	}
out:
	rctx_free(&c, ret != 0);
	return ret;
}

static int usk_open(const FileEntry *fe, struct files_rst *fr)
{
	struct files_obj *done = files_rst_obj(fr, FOBJ_USK_DONE, 0, 0, true);
	struct files_obj *o;
	int fd, ret;

	if (!done)
		return log_errno(ENOMEM, FE_FMT, FE_ARG(fe));
	if (!done->flag) {
		ret = usk_restore_all(fr);
		if (ret)
			return ret;
		done->flag = true;
	}
	o = files_rst_obj(fr, FOBJ_USK, 1, fe->id, false);
	if (!o || o->fd < 0) {
		log_err(FE_FMT ": its unix socket was not made", FE_ARG(fe));
		return -EINVAL;
	}
	fd = fcntl(o->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return log_errno(errno, FE_FMT ": dup", FE_ARG(fe));
	return fd;
}

const struct file_kind_ops files_sk_unix_ops = {
	.kind = FILE_KIND__FILE_UNIX_SK,
	.name = "unix socket",
	.match = usk_match,
	.dump = usk_dump,
	.dump_end = usk_dump_end,
	.validate = usk_validate,
	.open = usk_open,
};
