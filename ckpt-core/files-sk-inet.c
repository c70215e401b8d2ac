// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Inet sockets: TCP and UDP over IPv4 and IPv6 (v4-mapped addresses too).
 *
 * Dump: the local copy of the socket (pidfd_getfd) tells its family, type,
 * addresses, options (getsockopt) and, for TCP, its state (TCP_INFO).
 * Listening, closed and UDP sockets are plain data.  An established
 * connection (only with --tcp-established) is first locked (netlock.h: its
 * packets are dropped in both directions), then put in repair mode
 * (TCP_REPAIR), and its sequence numbers, both queues (peeked, not
 * consumed), MSS, window scaling, SACK and timestamp options, window
 * (TCP_REPAIR_WINDOW) and clock (TCP_TIMESTAMP) are read.  The socket stays
 * in repair mode: if the tree is killed it goes away silently (no FIN, no
 * RST) and the lock keeps the peer's retransmissions from meeting a RST
 * until kup restore removes it.  If the tree goes on (--leave-running, or a
 * failed dump), files_dump_release() takes the sockets out of repair mode
 * and removes the lock.
 *
 * Restore: the master makes each socket, binds it with IP_FREEBIND /
 * IPV6_FREEBIND (the address may not be configured yet on a new boot), and
 * listens or connects.  A connection is rebuilt in repair mode: sequence
 * numbers before connect() (which then sends nothing), options, the queues
 * (the unsent tail of the send queue is kept for later), window, clock.
 * files_rst_finish() (just before the tree runs) removes the lock, turns
 * repair off (the kernel sends a window probe, which makes the peer answer
 * at once) and queues the unsent data normally.  A failed restore closes
 * the sockets still in repair mode, and files_rst_release() removes the
 * lock.  A restore killed before files_rst_finish() closes them silently
 * (repair mode) and leaves the lock for a retry (journal.c).
 * docs/sockets.md has the details and the limits.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>

#include "files.h"
#include "internal.h"
#include "kup-sk-inet.pb-c.h"
#include "log.h"
#include "journal.h"
#include "netlock.h"
#include "sk-diag.h"

#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif
#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND 78
#endif
#define SK_BUF_LOCK_MASK	3		/* SOCK_SNDBUF_LOCK | SOCK_RCVBUF_LOCK */
#define SK_QUEUE_MAX		(128u << 20)	/* per queue, in an image */
#define SK_OPTS_MAX		64
#define SK_CA_NAME_MAX		16		/* TCP_CA_NAME_MAX */
#define SK_USER_MSS_MAX		32767		/* MAX_TCP_WINDOW: TCP_MAXSEG's limit */
#define SK_FILTER_MAX		4096		/* BPF_MAXINSNS */

/* --- names for messages -------------------------------------------------- */

static const char *const tcp_states[] = {
	[TCP_ESTABLISHED] = "ESTABLISHED", [TCP_SYN_SENT] = "SYN_SENT",
	[TCP_SYN_RECV] = "SYN_RECV", [TCP_FIN_WAIT1] = "FIN_WAIT1",
	[TCP_FIN_WAIT2] = "FIN_WAIT2", [TCP_TIME_WAIT] = "TIME_WAIT",
	[TCP_CLOSE] = "CLOSE", [TCP_CLOSE_WAIT] = "CLOSE_WAIT",
	[TCP_LAST_ACK] = "LAST_ACK", [TCP_LISTEN] = "LISTEN", [TCP_CLOSING] = "CLOSING",
};

static const char *tcp_state_name(unsigned int st)
{
	return st < sizeof(tcp_states) / sizeof(tcp_states[0]) && tcp_states[st] ?
	       tcp_states[st] : "?";
}

/* Our FIN is in the sequence (sent, in the send queue). */
static bool state_fin_sent(unsigned int st)
{
	return st == TCP_FIN_WAIT1 || st == TCP_FIN_WAIT2 || st == TCP_LAST_ACK ||
	       st == TCP_CLOSING;
}

/* The peer's FIN was received (rcv_nxt counts it). */
static bool state_fin_rcvd(unsigned int st)
{
	return st == TCP_CLOSE_WAIT || st == TCP_LAST_ACK || st == TCP_CLOSING;
}

/* States of a connection kept with repair mode. */
static bool state_repaired(unsigned int st)
{
	return st == TCP_ESTABLISHED || state_fin_sent(st) || state_fin_rcvd(st);
}

struct sk_addr {
	int family;
	uint8_t a[16];
	uint16_t port;
	bool set;
};

/* "10.0.0.1:80", "[fd00::1]:80" */
static const char *addr_str(const struct sk_addr *s, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (!s->set || !inet_ntop(s->family, s->a, a, sizeof(a)))
		snprintf(buf, len, "*");
	else if (s->family == AF_INET6)
		snprintf(buf, len, "[%s]:%u", a, s->port);
	else
		snprintf(buf, len, "%s:%u", a, s->port);
	return buf;
}

/*
 * The datagram sockets kept: UDP, UDP-Lite, and ICMP "ping" sockets
 * (SOCK_DGRAM, IPPROTO_ICMP or IPPROTO_ICMPV6: the port is the echo
 * identifier), all bound and connected the same way.
 */
static bool dgram_ok(unsigned int family, unsigned int type, unsigned int proto)
{
	/* raw sockets: any protocol but 0 (which socket() refuses) */
	if (type == SOCK_RAW)
		return proto > 0 && proto <= 255;
	return type == SOCK_DGRAM &&
	       (proto == IPPROTO_UDP || proto == IPPROTO_UDPLITE ||
		(family == AF_INET && proto == IPPROTO_ICMP) ||
		(family == AF_INET6 && proto == IPPROTO_ICMPV6));
}

static const char *proto_name(const SkInetEntry *e)
{
	bool v6 = e->family == AF_INET6;

	if (e->type == SOCK_RAW)
		return v6 ? "raw IPv6" : "raw IPv4";
	switch (e->protocol) {
	case IPPROTO_TCP:
		return v6 ? "TCPv6" : "TCP";
	case IPPROTO_UDPLITE:
		return v6 ? "UDP-Litev6" : "UDP-Lite";
	}
	switch (e->protocol) {
	case IPPROTO_ICMP:
		return "ICMP (ping)";
	case IPPROTO_ICMPV6:
		return "ICMPv6 (ping)";
	}
	return v6 ? "UDPv6" : "UDP";
}

static void entry_addrs(const SkInetEntry *e, struct sk_addr *src, struct sk_addr *dst)
{
	memset(src, 0, sizeof(*src));
	memset(dst, 0, sizeof(*dst));
	src->family = dst->family = e->family;
	if (e->has_src_addr) {
		memcpy(src->a, e->src_addr.data, e->src_addr.len);
		src->port = e->src_port;
		src->set = true;
	}
	if (e->has_dst_addr) {
		memcpy(dst->a, e->dst_addr.data, e->dst_addr.len);
		dst->port = e->dst_port;
		dst->set = true;
	}
}

/* "TCP 10.0.0.1:80 -> 10.0.0.2:4000" for messages about entry @e. */
static const char *conn_str(const SkInetEntry *e, char *buf, size_t len)
{
	struct sk_addr s, d;
	char a[64], b[64];

	entry_addrs(e, &s, &d);
	if (d.set)
		snprintf(buf, len, "%s %s -> %s", proto_name(e), addr_str(&s, a, sizeof(a)),
			 addr_str(&d, b, sizeof(b)));
	else
		snprintf(buf, len, "%s %s", proto_name(e), addr_str(&s, a, sizeof(a)));
	return buf;
}

/* --- socket options ---------------------------------------------------------- */

enum { OPT_ALL = 0, OPT_TCP = 1, OPT_UDP = 2, OPT_V4 = 4, OPT_V6 = 8, OPT_EARLY = 16,
       OPT_LISTEN = 32, OPT_UDPLITE = 64, OPT_RAW = 128 };

#ifndef ICMP_FILTER
#define ICMP_FILTER	1	/* SOL_RAW: a 32-bit mask of ICMP types dropped */
#endif

#ifndef UDPLITE_SEND_CSCOV
#define UDPLITE_SEND_CSCOV	10
#define UDPLITE_RECV_CSCOV	11
#endif

struct sk_opt_def {
	int level, name;
	unsigned int flags;	/* OPT_*: which sockets have it; EARLY: before bind */
};

/*
 * The int options kept.  Restore sets those whose value differs from the new
 * socket's; SO_REUSEADDR of a repaired socket waits for the end of repair
 * (repair mode forces reuse, and leaving it clears the flag).
 */
static const struct sk_opt_def sk_opts[] = {
	{ SOL_SOCKET, SO_REUSEADDR, OPT_EARLY },
	{ SOL_SOCKET, SO_REUSEPORT, OPT_EARLY },
	{ SOL_SOCKET, SO_KEEPALIVE, OPT_ALL },
	{ SOL_SOCKET, SO_PRIORITY, OPT_ALL },
	{ SOL_SOCKET, SO_MARK, OPT_ALL },
	{ SOL_SOCKET, SO_OOBINLINE, OPT_ALL },
	{ SOL_SOCKET, SO_BROADCAST, OPT_UDP },
	{ SOL_SOCKET, SO_RCVLOWAT, OPT_ALL },
	{ SOL_SOCKET, SO_TIMESTAMP, OPT_ALL },
	{ IPPROTO_IP, IP_TOS, OPT_V4 },
	{ IPPROTO_IP, IP_TTL, OPT_V4 },
	{ IPPROTO_IP, IP_FREEBIND, OPT_V4 },
	{ IPPROTO_IP, IP_MTU_DISCOVER, OPT_V4 },
	{ IPPROTO_IP, IP_PKTINFO, OPT_V4 | OPT_UDP },
	{ IPPROTO_IP, IP_RECVTOS, OPT_V4 },
	{ IPPROTO_IPV6, IPV6_V6ONLY, OPT_V6 | OPT_EARLY },
	{ IPPROTO_IPV6, IPV6_TCLASS, OPT_V6 },
	{ IPPROTO_IPV6, IPV6_UNICAST_HOPS, OPT_V6 },
	{ IPPROTO_IPV6, IPV6_FREEBIND, OPT_V6 },
	{ IPPROTO_IPV6, IPV6_RECVPKTINFO, OPT_V6 | OPT_UDP },
	{ IPPROTO_TCP, TCP_NODELAY, OPT_TCP },
	{ IPPROTO_TCP, TCP_CORK, OPT_TCP },
	{ IPPROTO_TCP, TCP_KEEPIDLE, OPT_TCP },
	{ IPPROTO_TCP, TCP_KEEPINTVL, OPT_TCP },
	{ IPPROTO_TCP, TCP_KEEPCNT, OPT_TCP },
	{ IPPROTO_TCP, TCP_USER_TIMEOUT, OPT_TCP },
	{ IPPROTO_TCP, TCP_NOTSENT_LOWAT, OPT_TCP },
	{ IPPROTO_TCP, TCP_LINGER2, OPT_TCP },
	{ IPPROTO_TCP, TCP_DEFER_ACCEPT, OPT_TCP | OPT_LISTEN },
	{ IPPROTO_TCP, TCP_FASTOPEN, OPT_TCP | OPT_LISTEN },
	{ IPPROTO_UDPLITE, UDPLITE_SEND_CSCOV, OPT_UDPLITE },
	{ IPPROTO_UDPLITE, UDPLITE_RECV_CSCOV, OPT_UDPLITE },
	{ IPPROTO_IP, IP_HDRINCL, OPT_RAW | OPT_V4 },
	{ SOL_RAW, ICMP_FILTER, OPT_RAW | OPT_V4 },
	{ IPPROTO_IPV6, IPV6_CHECKSUM, OPT_RAW | OPT_V6 },
};
#define NR_OPTS (sizeof(sk_opts) / sizeof(sk_opts[0]))

static const struct sk_opt_def *opt_find(uint32_t level, uint32_t name)
{
	for (size_t i = 0; i < NR_OPTS; i++)
		if ((uint32_t)sk_opts[i].level == level && (uint32_t)sk_opts[i].name == name)
			return &sk_opts[i];
	return NULL;
}

static bool opt_applies(const struct sk_opt_def *d, int family, int type, int protocol)
{
	if ((d->flags & OPT_RAW) && type != SOCK_RAW)
		return false;
	if ((d->flags & OPT_TCP) && type != SOCK_STREAM)
		return false;
	/* OPT_UDP: every datagram socket (UDP, UDP-Lite, ping) */
	if ((d->flags & OPT_UDP) && type == SOCK_STREAM)
		return false;
	if ((d->flags & OPT_UDPLITE) && protocol != IPPROTO_UDPLITE)
		return false;
	if ((d->flags & OPT_V6) && family != AF_INET6)
		return false;
	/* IPv4 options of a v6 socket hold for its v4-mapped traffic: kept */
	return true;
}

/* --- dump ------------------------------------------------------------------ */

enum { FOBJ_INET_SK = 200, FOBJ_NETLOCK, FOBJ_NETLOCK_NS };

static bool inet_match(const struct fd_info *fi)
{
	int fam = -1;
	socklen_t l = sizeof(fam);

	if (!S_ISSOCK(fi->st.st_mode))
		return false;
	if (getsockopt(fi->lfd, SOL_SOCKET, SO_DOMAIN, &fam, &l) < 0)
		return false;
	return fam == AF_INET || fam == AF_INET6;
}

static int get_int(int fd, int level, int name, int *val)
{
	socklen_t l = sizeof(*val);

	*val = 0;
	return getsockopt(fd, level, name, val, &l) < 0 ? -errno : 0;
}

static int set_int(int fd, int level, int name, int val)
{
	return setsockopt(fd, level, name, &val, sizeof(val)) < 0 ? -errno : 0;
}

static int sockaddr_to(const struct sockaddr_storage *ss, struct sk_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)ss;
		out->family = AF_INET;
		memcpy(out->a, &in->sin_addr, 4);
		out->port = ntohs(in->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)ss;
		out->family = AF_INET6;
		memcpy(out->a, &in6->sin6_addr, 16);
		out->port = ntohs(in6->sin6_port);
	} else {
		return -EAFNOSUPPORT;
	}
	out->set = true;
	return 0;
}

static bool addr_is_any(const struct sk_addr *s)
{
	static const uint8_t zero[16];
	return !memcmp(s->a, zero, s->family == AF_INET ? 4 : 16);
}

static int set_addr(ProtobufCBinaryData *b, const struct sk_addr *s)
{
	size_t len = s->family == AF_INET ? 4 : 16;

	b->data = malloc(len);
	if (!b->data)
		return -ENOMEM;
	memcpy(b->data, s->a, len);
	b->len = len;
	return 0;
}

static int dump_opts(const struct fd_info *fi, SkInetEntry *e)
{
	struct linger lg;
	socklen_t l;
	char buf[IFNAMSIZ + SK_CA_NAME_MAX];
	int v, ret;

	e->opts = calloc(NR_OPTS, sizeof(*e->opts));
	if (!e->opts)
		return -ENOMEM;
	for (size_t i = 0; i < NR_OPTS; i++) {
		const struct sk_opt_def *d = &sk_opts[i];
		SkInetOpt *o;

		if (!opt_applies(d, e->family, e->type, e->protocol))
			continue;
		if ((d->flags & OPT_LISTEN) && e->state != TCP_LISTEN)
			continue;
		ret = get_int(fi->lfd, d->level, d->name, &v);
		if (ret == -ENOPROTOOPT || ret == -EOPNOTSUPP)
			continue;
		if (ret)
			return log_errno(ret, FI_FMT ": getsockopt(%d, %d)", FI_ARG(fi),
					 d->level, d->name);
		o = malloc(sizeof(*o));
		if (!o)
			return -ENOMEM;
		sk_inet_opt__init(o);
		o->level = d->level;
		o->name = d->name;
		o->val = v;
		e->opts[e->n_opts++] = o;
	}
	l = sizeof(lg);
	if (getsockopt(fi->lfd, SOL_SOCKET, SO_LINGER, &lg, &l) == 0 && lg.l_onoff) {
		e->has_linger_on = e->linger_on = true;
		e->has_linger_secs = true;
		e->linger_secs = lg.l_linger;
	}
	l = IFNAMSIZ;
	memset(buf, 0, sizeof(buf));
	if (getsockopt(fi->lfd, SOL_SOCKET, SO_BINDTODEVICE, buf, &l) == 0 && buf[0]) {
		e->bind_dev = strndup(buf, IFNAMSIZ - 1);
		if (!e->bind_dev)
			return -ENOMEM;
	}
	if (e->type == SOCK_STREAM) {
		l = SK_CA_NAME_MAX;
		memset(buf, 0, sizeof(buf));
		if (getsockopt(fi->lfd, IPPROTO_TCP, TCP_CONGESTION, buf, &l) == 0 && buf[0]) {
			e->congestion = strndup(buf, SK_CA_NAME_MAX - 1);
			if (!e->congestion)
				return -ENOMEM;
		}
	}
	ret = get_int(fi->lfd, SOL_SOCKET, SO_SNDBUF, &v);
	if (!ret) {
		e->has_sndbuf = true;
		e->sndbuf = v;
		ret = get_int(fi->lfd, SOL_SOCKET, SO_RCVBUF, &v);
	}
	if (!ret) {
		e->has_rcvbuf = true;
		e->rcvbuf = v;
		ret = get_int(fi->lfd, SOL_SOCKET, SO_BUF_LOCK, &v);
	}
	if (ret)
		return log_errno(ret, FI_FMT ": cannot read its buffer sizes", FI_ARG(fi));
	e->has_buf_lock = true;
	e->buf_lock = v & SK_BUF_LOCK_MASK;
	/* a classic filter; an eBPF one is refused */
	return files_sk_dump_filter(fi, fi->link, &e->filter, &e->has_filter,
				    &e->has_filter_locked, &e->filter_locked);
}

/* The dump's lock name (one per dump), made on first use. */
static void dump_lock_name(struct files_dump *d, char *buf, size_t len)
{
	struct files_obj *o = files_dump_obj(d, FOBJ_NETLOCK, 0, 0, true);
	char name[NETLOCK_NAME_MAX];

	if (o && !o->v) {
		netlock_new_name(name, sizeof(name));
		/* the name lives in the object's array, freed with it */
		o->v = (int *)strdup(name);
	}
	snprintf(buf, len, "%s", o && o->v ? (const char *)o->v : "");
}

/* Peek @len bytes of the queue selected with TCP_REPAIR_QUEUE. */
static int peek_queue(const struct fd_info *fi, int fd, int q, uint32_t len,
		      ProtobufCBinaryData *out, protobuf_c_boolean *has)
{
	uint8_t *buf;
	ssize_t r;

	if (set_int(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, q))
		return log_errno(errno, FI_FMT ": TCP_REPAIR_QUEUE", FI_ARG(fi));
	if (!len)
		return 0;
	if (len > SK_QUEUE_MAX) {
		log_err(FI_FMT ": %u bytes in its %s queue, more than kup keeps (%u)", FI_ARG(fi),
			len, q == TCP_SEND_QUEUE ? "send" : "receive", SK_QUEUE_MAX);
		return -EFBIG;
	}
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	r = recv(fd, buf, len, MSG_PEEK | MSG_DONTWAIT);
	if (r != (ssize_t)len) {
		int e = r < 0 ? errno : EIO;
		free(buf);
		return log_errno(e, FI_FMT ": read %zd of the %u bytes of its %s queue", FI_ARG(fi),
				 r, len, q == TCP_SEND_QUEUE ? "send" : "receive");
	}
	out->data = buf;
	out->len = len;
	*has = true;
	return 0;
}

static int queue_seq(int fd, int q, uint32_t *seq)
{
	int v;
	int ret = set_int(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, q);

	if (!ret)
		ret = get_int(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, &v);
	*seq = v;
	return ret;
}

static int dump_tcp_repair(const struct fd_info *fi, SkInetEntry *e, const char *conn)
{
	SkInetTcp *t = malloc(sizeof(*t));
	struct tcp_repair_window w;
	struct tcp_info ti;
	socklen_t l;
	int outq, nsd, inq, v, fd = fi->lfd, ret;
	bool fin;

	if (!t)
		return -ENOMEM;
	sk_inet_tcp__init(t);
	e->tcp = t;
	l = sizeof(ti);
	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0)
		return log_errno(errno, FI_FMT ": %s: TCP_INFO", FI_ARG(fi), conn);
	if (ti.tcpi_state != e->state) {
		log_err(FI_FMT ": %s: went from %s to %s during the dump", FI_ARG(fi), conn,
			tcp_state_name(e->state), tcp_state_name(ti.tcpi_state));
		return -EAGAIN;
	}
	if (ioctl(fd, SIOCOUTQ, &outq) < 0 || ioctl(fd, SIOCOUTQNSD, &nsd) < 0 ||
	    ioctl(fd, SIOCINQ, &inq) < 0)
		return log_errno(errno, FI_FMT ": %s: cannot size its queues", FI_ARG(fi), conn);
	/* FIN_WAIT*, LAST_ACK, CLOSING: our FIN takes one sequence number at
	 * the end of the send queue (in the queue sizes until it is
	 * acknowledged), and no data.  A FIN received (CLOSE_WAIT, LAST_ACK,
	 * CLOSING) is in rcv_nxt (TCP_QUEUE_SEQ) but not in SIOCINQ. */
	fin = state_fin_sent(e->state);
	if (fin && e->state != TCP_FIN_WAIT2) {
		outq--;
		nsd = nsd ? nsd - 1 : 0;
	}
	if (outq < 0 || inq < 0 || nsd < 0 || nsd > outq) {
		log_err(FI_FMT ": %s: odd queue sizes (out %d, not sent %d, in %d)",
			FI_ARG(fi), conn, outq, nsd, inq);
		return -EIO;
	}
	ret = queue_seq(fd, TCP_SEND_QUEUE, &t->snd_seq);
	if (!ret)
		ret = peek_queue(fi, fd, TCP_SEND_QUEUE, outq, &t->snd_queue, &t->has_snd_queue);
	if (ret)
		return ret < -1 ? ret : log_errno(ret, FI_FMT ": %s: send queue", FI_ARG(fi), conn);
	/* after a FIN nothing can be sent the normal way: the whole queue
	 * goes back in repair mode, as if sent */
	t->has_snd_unsent = true;
	t->snd_unsent = fin ? 0 : nsd;
	if (fin) {
		t->has_fin_sent = t->fin_sent = true;
		t->has_fin_acked = true;
		t->fin_acked = e->state == TCP_FIN_WAIT2;
	}
	ret = queue_seq(fd, TCP_RECV_QUEUE, &t->rcv_seq);
	if (!ret)
		ret = peek_queue(fi, fd, TCP_RECV_QUEUE, inq, &t->rcv_queue, &t->has_rcv_queue);
	if (!ret)
		ret = set_int(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
	if (ret)
		return ret;
	/* in repair mode TCP_MAXSEG gives the peer's MSS (mss_clamp) */
	if (get_int(fd, IPPROTO_TCP, TCP_MAXSEG, &v))
		return log_errno(errno, FI_FMT ": %s: TCP_MAXSEG", FI_ARG(fi), conn);
	t->mss_clamp = v;
	if (get_int(fd, IPPROTO_TCP, TCP_TIMESTAMP, &v) == 0) {
		t->has_timestamp = true;
		t->timestamp = v;
	}
	l = sizeof(w);
	if (getsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, &l) < 0)
		return log_errno(errno, FI_FMT ": %s: TCP_REPAIR_WINDOW", FI_ARG(fi), conn);
	t->snd_wl1 = w.snd_wl1;
	t->snd_wnd = w.snd_wnd;
	t->max_window = w.max_window;
	t->rcv_wnd = w.rcv_wnd;
	t->rcv_wup = w.rcv_wup;
	t->wscale_ok = !!(ti.tcpi_options & TCPI_OPT_WSCALE);
	if (t->wscale_ok) {
		t->has_snd_wscale = t->has_rcv_wscale = true;
		t->snd_wscale = ti.tcpi_snd_wscale;
		t->rcv_wscale = ti.tcpi_rcv_wscale;
	}
	t->sack_ok = !!(ti.tcpi_options & TCPI_OPT_SACK);
	t->tstamp_ok = !!(ti.tcpi_options & TCPI_OPT_TIMESTAMPS);
	log_debug(FI_FMT ": %s: snd %u (%d queued, %d unsent) rcv %u (%d queued) mss %u "
		  "wscale %s %u/%u wnd %u/%u", FI_ARG(fi), conn, t->snd_seq, outq, nsd,
		  t->rcv_seq, inq, t->mss_clamp, t->wscale_ok ? "on" : "off", t->snd_wscale,
		  t->rcv_wscale, t->snd_wnd, t->rcv_wnd);
	return 0;
}

/*
 * An established connection: lock it, put it in repair mode (remembered in
 * a FOBJ_INET_SK object so that files_dump_release() can undo it), read it.
 */
static int dump_tcp_conn(const struct fd_info *fi, SkInetEntry *e, int nsfd,
			 const struct sk_addr *src, const struct sk_addr *dst, const char *conn)
{
	char name[NETLOCK_NAME_MAX];
	struct files_obj *o, *nso;
	struct sk_addr ls = *src, rs = *dst;
	bool create;
	int ret, reuse;

	if (!files_dump_opts(fi->d)->tcp_established) {
		log_err(FI_FMT ": established connection %s%s%s: needs --tcp-established", FI_ARG(fi),
			conn, e->state == TCP_ESTABLISHED ? "" : " in state ",
			e->state == TCP_ESTABLISHED ? "" : tcp_state_name(e->state));
		return -EOPNOTSUPP;
	}
	/* v4-mapped: the packets on the wire are IPv4 */
	if (ls.family == AF_INET6 && IN6_IS_ADDR_V4MAPPED((struct in6_addr *)ls.a) &&
	    IN6_IS_ADDR_V4MAPPED((struct in6_addr *)rs.a)) {
		ls.family = rs.family = AF_INET;
		memmove(ls.a, ls.a + 12, 4);
		memmove(rs.a, rs.a + 12, 4);
	}
	dump_lock_name(fi->d, name, sizeof(name));
	nso = files_dump_obj(fi->d, FOBJ_NETLOCK_NS, e->netns, 0, true);
	o = files_dump_obj(fi->d, FOBJ_INET_SK, 0, e->ino, true);
	if (!nso || !o || !name[0])
		return -ENOMEM;
	create = nso->fd < 0;
	if (create) {
		nso->fd = fcntl(nsfd, F_DUPFD_CLOEXEC, 0);
		if (nso->fd < 0)
			return log_errno(errno, FI_FMT ": %s: network namespace", FI_ARG(fi), conn);
	}
	ret = create ? journal_lock(name, nsfd, fi->pid) : 0;
	if (!ret)
		ret = netlock_add(name, nsfd, create, ls.family, ls.a, ls.port, rs.a, rs.port);
	if (ret) {
		log_err(FI_FMT ": %s: cannot lock the connection", FI_ARG(fi), conn);
		if (create) {
			close(nso->fd);
			nso->fd = -1;
		}
		return ret;
	}
	e->lock_table = strdup(name);
	if (!e->lock_table)
		return -ENOMEM;
	if (get_int(fi->lfd, SOL_SOCKET, SO_REUSEADDR, &reuse))
		reuse = 0;
	o->fd = fcntl(fi->lfd, F_DUPFD_CLOEXEC, 0);
	if (o->fd < 0)
		return log_errno(errno, FI_FMT ": %s: cannot keep a copy", FI_ARG(fi), conn);
	o->uses = reuse;
	o->pid = fi->pid;
	o->fdnum = fi->fd;
	if (journal_add("sk %d %llu %d %llu %d", fi->pid, journal_start_time(fi->pid, fi->pid), fi->fd,
			(unsigned long long)e->ino, reuse))
		return -EIO;
	if (set_int(fi->lfd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON))
		return log_errno(errno, FI_FMT ": %s: cannot enter repair mode (TCP_REPAIR)",
				 FI_ARG(fi), conn);
	o->flag = true;
	return dump_tcp_repair(fi, e, conn);
}

struct inet_find {
	int family;
	uint32_t ino;
	struct sk_addr *dst;
	uint8_t *shut;
};

static int diag_find_one(const struct nlmsghdr *h, void *arg)
{
	const struct inet_diag_msg *m = NLMSG_DATA(h);
	const struct inet_find *f = arg;
	const struct rtattr *a;
	int alen;

	if (m->idiag_inode != f->ino)
		return 0;
	if (f->dst) {
		f->dst->family = f->family;
		memcpy(f->dst->a, m->id.idiag_dst, f->family == AF_INET6 ? 16 : 4);
		f->dst->port = ntohs(m->id.idiag_dport);
		f->dst->set = true;
	}
	a = (const struct rtattr *)(m + 1);
	alen = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
	for (; RTA_OK(a, alen); a = RTA_NEXT(a, alen))
		if (a->rta_type == INET_DIAG_SHUTDOWN && f->shut && RTA_PAYLOAD(a) >= 1)
			*f->shut = *(const uint8_t *)RTA_DATA(a);
	return 1;
}

/*
 * Look the socket @ino (@family, @proto) up in a sock_diag dump of the
 * namespace's sockets in @states: its destination (which getpeername()
 * does not give in SYN_SENT) and its shutdown flags (INET_DIAG_SHUTDOWN).
 * 0, or -ENOENT when it is not there.
 */
static int diag_find(int nsfd, int family, int proto, uint32_t states, uint32_t ino,
		     struct sk_addr *dst, uint8_t *shut)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req = {
		.nlh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 1 },
		.r = { .sdiag_family = family, .sdiag_protocol = proto,
		       .idiag_states = states },
	};
	struct inet_find f = { .family = family, .ino = ino, .dst = dst, .shut = shut };
	int ret = sk_diag_query(nsfd, &req, sizeof(req), sizeof(struct inet_diag_msg),
				diag_find_one, &f);

	return ret == 1 ? 0 : ret ? ret : -ENOENT;
}

static int peer_ino_one(const struct nlmsghdr *h, void *arg)
{
	*(uint32_t *)arg = ((const struct inet_diag_msg *)NLMSG_DATA(h))->idiag_inode;
	return 1;
}

/*
 * The inode of the local socket at the other end of the connection
 * @src -> @dst, looked up with inet_diag (one exact query) in the socket's
 * namespace @nsfd; -ENOENT if the peer is not a socket of that namespace.
 */
static int local_peer_ino(int nsfd, const struct sk_addr *src, const struct sk_addr *dst,
			  uint32_t *ino)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req = {
		.nlh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST, .nlmsg_seq = 1 },
		.r = { .sdiag_family = src->family, .sdiag_protocol = IPPROTO_TCP,
		       .idiag_states = ~0u },
	};
	int ret;

	req.r.id.idiag_sport = htons(dst->port);
	req.r.id.idiag_dport = htons(src->port);
	memcpy(req.r.id.idiag_src, dst->a, src->family == AF_INET6 ? 16 : 4);
	memcpy(req.r.id.idiag_dst, src->a, src->family == AF_INET6 ? 16 : 4);
	req.r.id.idiag_cookie[0] = req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	*ino = 0;
	ret = sk_diag_query(nsfd, &req, sizeof(req), sizeof(struct inet_diag_msg), peer_ino_one,
			    ino);
	if (ret < 0)
		return ret;
	return *ino ? 0 : -ENOENT;
}

/*
 * --external-peers=close: a connection whose peer is a socket of a local
 * process outside the tree (after a kernel switch it is gone) is kept as
 * closed by that peer: no repair, no lock, the bytes not read yet.  1: it
 * is one (@e filled), 0: it is not.
 */
static int dump_tcp_closed(const struct fd_info *fi, SkInetEntry *e, int nsfd,
			   const struct sk_addr *src, const struct sk_addr *dst, const char *conn)
{
	char comm[32];
	uint32_t ino;
	pid_t pid;
	int inq = 0, ret;

	if (!files_dump_opts(fi->d)->ext_peers_close)
		return 0;
	ret = local_peer_ino(nsfd, src, dst, &ino);
	if (ret == -ENOENT)
		return 0;
	if (ret)
		return log_errno(ret, FI_FMT ": %s: cannot look for its local peer (sock_diag)",
				 FI_ARG(fi), conn);
	if (files_sock_owner(fi->d, ino, &pid, comm, sizeof(comm)))
		return 0;	/* the peer is in the tree */
	if (ioctl(fi->lfd, SIOCINQ, &inq) < 0)
		return log_errno(errno, FI_FMT ": %s: SIOCINQ", FI_ARG(fi), conn);
	if (inq > 0) {
		if ((uint32_t)inq > SK_QUEUE_MAX) {
			log_err(FI_FMT ": %s: %d bytes in its receive queue, more than kup keeps (%u)",
				FI_ARG(fi), conn, inq, SK_QUEUE_MAX);
			return -EFBIG;
		}
		e->closed_rcv_queue.data = malloc(inq);
		if (!e->closed_rcv_queue.data)
			return -ENOMEM;
		e->has_closed_rcv_queue = true;
		if (recv(fi->lfd, e->closed_rcv_queue.data, inq, MSG_PEEK | MSG_DONTWAIT) != inq)
			return log_errno(errno ? errno : EIO, FI_FMT ": %s: cannot read its receive "
					 "queue", FI_ARG(fi), conn);
		e->closed_rcv_queue.len = inq;
	}
	e->has_peer_closed = e->peer_closed = true;
	log_warn(FI_FMT ": %s: its peer is pid %d (%s), outside the dumped tree: restored as "
		 "closed by its peer", FI_ARG(fi), conn, pid, comm);
	return 1;
}

/*
 * A TCP socket in TCP_CLOSE: never connected, or closed after a connection
 * (reset, or both FINs exchanged), which the kernel shows by both ways
 * being shut down (poll: POLLRDHUP).  Such a socket keeps its binding and
 * gives end of file; it is kept so.  What it still holds that the restore
 * cannot give back (unread bytes, an error not read yet: a reset) makes the
 * dump fail.
 */
static int dump_tcp_close(const struct fd_info *fi, SkInetEntry *e, const char *conn)
{
	struct pollfd p = { .fd = fi->lfd, .events = POLLIN | POLLRDHUP };
	int inq = 0;

	if (poll(&p, 1, 0) < 0)
		return log_errno(errno, FI_FMT ": %s: poll", FI_ARG(fi), conn);
	if (!(p.revents & POLLRDHUP))
		return 0;
	if (ioctl(fi->lfd, SIOCINQ, &inq) < 0)
		return log_errno(errno, FI_FMT ": %s: SIOCINQ", FI_ARG(fi), conn);
	if (p.revents & POLLERR) {
		log_err(FI_FMT ": %s: closed connection with an error not read yet (reset by its "
			"peer?)%s: not supported", FI_ARG(fi), conn,
			inq > 0 ? " and bytes not read" : "");
		return -EOPNOTSUPP;
	}
	if (inq > 0) {
		log_err(FI_FMT ": %s: closed connection with %d bytes not read: not supported",
			FI_ARG(fi), conn, inq);
		return -EOPNOTSUPP;
	}
	e->has_conn_closed = e->conn_closed = true;
	return 0;
}

/* shutdown() of a UDP socket, which only sock_diag shows (SEND_SHUTDOWN) */
static int dump_udp_shutdown(const struct fd_info *fi, SkInetEntry *e, int nsfd,
			     const char *conn)
{
	uint8_t shut = 0;
	int ret = diag_find(nsfd, e->family, e->protocol, ~0u, fi->st.st_ino, NULL, &shut);

	if (ret) {
		/* no udp_diag: poll shows a shutdown for reading, not for writing */
		struct pollfd p = { .fd = fi->lfd, .events = POLLRDHUP };

		log_debug(FI_FMT ": %s: not found with sock_diag (%s): its shutdown for writing "
			  "cannot be seen", FI_ARG(fi), conn, strerror(-ret));
		if (poll(&p, 1, 0) > 0 && (p.revents & POLLRDHUP))
			shut = 1;
	}
	if (shut & 3) {
		e->has_udp_shutdown = true;
		e->udp_shutdown = shut & 3;
	}
	return 0;
}

/*
 * The peer of a connected ping or raw socket: getpeername() says ENOTCONN
 * (no port), /proc/PID/net/icmp (icmp6, raw, raw6) has it: the line of our
 * inode, state 1 (connected), the remote address as the kernel's words in
 * hex.
 */
static int ping_peer(const struct fd_info *fi, int family, bool raw, struct sk_addr *dst)
{
	char path[64], line[512];
	FILE *f;
	int ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/net/%s%s", fi->pid, raw ? "raw" : "icmp",
		 family == AF_INET6 ? "6" : "");
	f = fopen(path, "re");
	if (!f)
		return log_errno(errno, FI_FMT ": cannot read %s", FI_ARG(fi), path);
	while (fgets(line, sizeof(line), f)) {
		unsigned int w[4] = { 0 }, st = 0;
		unsigned long long ino = 0;
		char loc[64], rem[64];
		int nw = family == AF_INET6 ? 4 : 1;

		/* sl local rem st tx:rx tr:when retr uid timeout inode */
		if (sscanf(line, " %*s %63s %63s %x %*s %*s %*s %*s %*s %llu", loc, rem, &st,
			   &ino) != 4 || ino != fi->st.st_ino)
			continue;
		if (st != TCP_ESTABLISHED)
			break;
		if ((nw == 1 && sscanf(rem, "%8x", &w[0]) != 1) ||
		    (nw == 4 && sscanf(rem, "%8x%8x%8x%8x", &w[0], &w[1], &w[2], &w[3]) != 4)) {
			log_err(FI_FMT ": %s: cannot read the peer of ping socket", FI_ARG(fi), path);
			ret = -EINVAL;
			break;
		}
		memset(dst, 0, sizeof(*dst));
		dst->family = family;
		memcpy(dst->a, w, nw * 4);	/* the kernel printed its words as they are */
		dst->set = true;
		break;
	}
	fclose(f);
	return ret;
}

static int inet_dump_entry(const struct fd_info *fi, SkInetEntry *e, int nsfd)
{
	struct sockaddr_storage ss;
	struct sk_addr src = { 0 }, dst = { 0 };
	struct tcp_info ti;
	socklen_t l;
	char conn[160], a[64], b[64];
	int ret;

	l = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (getsockname(fi->lfd, (struct sockaddr *)&ss, &l) < 0 || sockaddr_to(&ss, &src))
		return log_errno(errno ? errno : EINVAL, FI_FMT ": getsockname", FI_ARG(fi));
	l = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (getpeername(fi->lfd, (struct sockaddr *)&ss, &l) == 0) {
		if (sockaddr_to(&ss, &dst))
			return log_errno(EINVAL, FI_FMT ": getpeername", FI_ARG(fi));
	} else if (errno != ENOTCONN) {
		return log_errno(errno, FI_FMT ": getpeername", FI_ARG(fi));
	} else if (e->type == SOCK_RAW || e->protocol == IPPROTO_ICMP ||
		   e->protocol == IPPROTO_ICMPV6) {
		ret = ping_peer(fi, e->family, e->type == SOCK_RAW, &dst);
		if (ret)
			return ret;
	}
	if (src.port || !addr_is_any(&src)) {
		e->has_src_addr = e->has_src_port = true;
		e->src_port = src.port;
		if (set_addr(&e->src_addr, &src))
			return -ENOMEM;
	} else {
		src.set = false;
	}
	if (dst.set) {
		e->has_dst_addr = e->has_dst_port = true;
		e->dst_port = dst.port;
		if (set_addr(&e->dst_addr, &dst))
			return -ENOMEM;
	}
	if (e->type == SOCK_STREAM) {
		l = sizeof(ti);
		memset(&ti, 0, sizeof(ti));
		if (getsockopt(fi->lfd, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0)
			return log_errno(errno, FI_FMT ": TCP_INFO", FI_ARG(fi));
		e->state = ti.tcpi_state;
	} else {
		e->state = dst.set ? TCP_ESTABLISHED : TCP_CLOSE;
	}
	if (dst.set)
		snprintf(conn, sizeof(conn), "%s %s -> %s", proto_name(e),
			 addr_str(&src, a, sizeof(a)), addr_str(&dst, b, sizeof(b)));
	else
		snprintf(conn, sizeof(conn), "%s %s", proto_name(e), addr_str(&src, a, sizeof(a)));
	ret = dump_opts(fi, e);
	if (ret)
		return ret == -ENOMEM ? log_errno(ret, FI_FMT, FI_ARG(fi)) : ret;
	if (e->type != SOCK_STREAM)
		return dump_udp_shutdown(fi, e, nsfd, conn);
	switch (e->state) {
	case TCP_CLOSE:
		return dump_tcp_close(fi, e, conn);
	case TCP_LISTEN:
		/* for a listener, TCP_INFO gives the accept queue in unacked and
		 * the backlog in sacked */
		if (ti.tcpi_unacked) {
			log_err(FI_FMT ": listening socket %s has %u connections not accepted yet: "
				"not supported", FI_ARG(fi), conn, ti.tcpi_unacked);
			return -EOPNOTSUPP;
		}
		e->has_backlog = true;
		e->backlog = ti.tcpi_sacked;
		return 0;
	case TCP_ESTABLISHED:
	case TCP_FIN_WAIT1:
	case TCP_FIN_WAIT2:
	case TCP_CLOSE_WAIT:
	case TCP_LAST_ACK:
	case TCP_CLOSING:
		ret = dump_tcp_closed(fi, e, nsfd, &src, &dst, conn);
		if (ret)
			return ret < 0 ? ret : 0;
		return dump_tcp_conn(fi, e, nsfd, &src, &dst, conn);
	case TCP_SYN_SENT:
		diag_find(nsfd, e->family, IPPROTO_TCP, 1u << TCP_SYN_SENT, fi->st.st_ino, &dst,
			  NULL);
		if (dst.set)
			snprintf(conn, sizeof(conn), "%s %s -> %s", proto_name(e),
				 addr_str(&src, a, sizeof(a)), addr_str(&dst, b, sizeof(b)));
		log_err(FI_FMT ": connection %s in state SYN_SENT (a connect() in progress, not "
			"answered yet): not supported", FI_ARG(fi), conn);
		return -EOPNOTSUPP;
	default:
		log_err(FI_FMT ": connection %s in state %s: not supported (only established "
			"and half-closed connections, listening and closed sockets)",
			FI_ARG(fi), conn, tcp_state_name(e->state));
		return -EOPNOTSUPP;
	}
}

static int inet_dump(const struct fd_info *fi, FileEntry *fe)
{
	SkInetEntry *e = malloc(sizeof(*e));
	int fam, type, proto, nsfd = -1, ret;
	size_t len;

	if (!e)
		return log_errno(ENOMEM, FI_FMT, FI_ARG(fi));
	sk_inet_entry__init(e);

	if (get_int(fi->lfd, SOL_SOCKET, SO_DOMAIN, &fam) ||
	    get_int(fi->lfd, SOL_SOCKET, SO_TYPE, &type) ||
	    get_int(fi->lfd, SOL_SOCKET, SO_PROTOCOL, &proto))
	{
		ret = log_errno(errno, FI_FMT ": cannot tell what socket %s is", FI_ARG(fi), fi->link);
		goto out;
	}
	ret = -EOPNOTSUPP;
	if (!(type == SOCK_STREAM && proto == IPPROTO_TCP) && !dgram_ok(fam, type, proto)) {
		log_err(FI_FMT ": %s socket of type %d, protocol %d not supported (only TCP, UDP, "
			"UDP-Lite, ICMP ping and raw sockets) (%s)",
			FI_ARG(fi), fam == AF_INET6 ? "inet6" : "inet", type, proto, fi->link);
		goto out;
	}
	e->family = fam;
	e->type = type;
	e->protocol = proto;
	e->ino = fi->st.st_ino;
	nsfd = sk_diag_netns(fi, &e->netns);
	if (nsfd < 0) {
		ret = nsfd;
		goto out;
	}
	ret = inet_dump_entry(fi, e, nsfd);
	if (ret)
		goto out;
	len = sk_inet_entry__get_packed_size(e);
	fe->sk.data = malloc(len ? len : 1);
	if (!fe->sk.data) {
		ret = log_errno(ENOMEM, FI_FMT, FI_ARG(fi));
		goto out;
	}
	fe->sk.len = sk_inet_entry__pack(e, fe->sk.data);
	fe->has_sk = true;
	fe->has_ino = true;
	fe->ino = fi->st.st_ino;
out:
	if (nsfd >= 0)
		close(nsfd);
	/* every member was malloc'd the way free_unpacked expects */
	sk_inet_entry__free_unpacked(e, NULL);
	return ret;
}

/*
 * The tree goes on (@resume: --leave-running or a failed dump): every
 * repaired socket leaves repair mode (without a window probe) and gets its
 * SO_REUSEADDR back, then the locks go.  Otherwise the sockets stay in
 * repair mode (the tree is being killed: they close silently) and the locks
 * stay for kup restore.
 */
static void inet_dump_release(struct files_dump *d, bool resume)
{
	struct files_obj *o;
	char name[NETLOCK_NAME_MAX] = "";
	bool named = false;

	if (!resume)
		return;
	for (o = files_dump_obj_next(d, NULL); o; o = files_dump_obj_next(d, o)) {
		if (o->tag == FOBJ_NETLOCK && o->v) {
			snprintf(name, sizeof(name), "%s", (const char *)o->v);
			named = true;
		}
		if (o->tag != FOBJ_INET_SK || o->fd < 0 || !o->flag)
			continue;
		if (set_int(o->fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP))
			log_errno(errno, "pid %d fd %d: cannot leave TCP repair mode", o->pid, o->fdnum);
		else
			o->flag = false;
		if (o->uses && set_int(o->fd, SOL_SOCKET, SO_REUSEADDR, o->uses))
			log_errno(errno, "pid %d fd %d: cannot set SO_REUSEADDR back", o->pid, o->fdnum);
	}
	if (!named)
		return;
	for (o = files_dump_obj_next(d, NULL); o; o = files_dump_obj_next(d, o)) {
		if (o->tag != FOBJ_NETLOCK_NS || o->fd < 0)
			continue;
		netlock_remove(name, o->fd);
	}
}

/* --- validation ------------------------------------------------------------ */

static SkInetEntry *unpack_entry(const FileEntry *fe)
{
	if (!fe->has_sk || !fe->sk.data || !fe->sk.len)
		return NULL;
	return sk_inet_entry__unpack(NULL, fe->sk.len, fe->sk.data);
}

static bool addr_ok(uint32_t family, bool has, const ProtobufCBinaryData *a, bool has_port,
		    uint32_t port)
{
	if (!has)
		return !has_port;
	return has_port && port <= 65535 && a->data &&
	       a->len == (family == AF_INET ? 4u : 16u);
}

static int validate_tcp(const FileEntry *fe, const SkInetEntry *e)
{
	const SkInetTcp *t = e->tcp;

	if (!t) {
		log_err(FE_FMT ": connection without its TCP state", FE_ARG(fe));
		return -EINVAL;
	}
	if ((t->has_snd_queue && (t->snd_queue.len > SK_QUEUE_MAX ||
				  (t->snd_queue.len && !t->snd_queue.data))) ||
	    (t->has_rcv_queue && (t->rcv_queue.len > SK_QUEUE_MAX ||
				  (t->rcv_queue.len && !t->rcv_queue.data))) ||
	    (t->has_snd_unsent && t->snd_unsent > (t->has_snd_queue ? t->snd_queue.len : 0))) {
		log_err(FE_FMT ": bad TCP queue sizes", FE_ARG(fe));
		return -EINVAL;
	}
	if (!t->mss_clamp || t->mss_clamp > 65535 ||
	    (t->wscale_ok && (!t->has_snd_wscale || !t->has_rcv_wscale ||
			      t->snd_wscale > 14 || t->rcv_wscale > 14)) ||
	    t->max_window < t->snd_wnd) {
		log_err(FE_FMT ": bad TCP options (mss %u, window scale %u/%u, window %u/%u)",
			FE_ARG(fe), t->mss_clamp, t->snd_wscale, t->rcv_wscale, t->snd_wnd,
			t->max_window);
		return -EINVAL;
	}
	if (!e->has_dst_addr || !e->has_src_addr || !e->src_port || !e->dst_port) {
		log_err(FE_FMT ": connection without both addresses", FE_ARG(fe));
		return -EINVAL;
	}
	if (e->lock_table && !netlock_name_ok(e->lock_table)) {
		log_err(FE_FMT ": bad network lock name", FE_ARG(fe));
		return -EINVAL;
	}
	return 0;
}

static int validate_sk(const FileEntry *fe, const SkInetEntry *e)
{
	if (e->family != AF_INET && e->family != AF_INET6) {
		log_err(FE_FMT ": bad address family %u", FE_ARG(fe), e->family);
		return -EINVAL;
	}
	if (!(e->type == SOCK_STREAM && e->protocol == IPPROTO_TCP) &&
	    !dgram_ok(e->family, e->type, e->protocol)) {
		log_err(FE_FMT ": bad socket type %u protocol %u", FE_ARG(fe), e->type, e->protocol);
		return -EINVAL;
	}
	if (!addr_ok(e->family, e->has_src_addr, &e->src_addr, e->has_src_port, e->src_port) ||
	    !addr_ok(e->family, e->has_dst_addr, &e->dst_addr, e->has_dst_port, e->dst_port)) {
		log_err(FE_FMT ": bad socket address", FE_ARG(fe));
		return -EINVAL;
	}
	if (e->n_opts > SK_OPTS_MAX || (e->n_opts && !e->opts)) {
		log_err(FE_FMT ": bad option list", FE_ARG(fe));
		return -EINVAL;
	}
	for (size_t i = 0; i < e->n_opts; i++) {
		const struct sk_opt_def *d = e->opts[i] ? opt_find(e->opts[i]->level, e->opts[i]->name) : NULL;
		if (!d || !opt_applies(d, e->family, e->type, e->protocol)) {
			log_err(FE_FMT ": unexpected socket option %u/%u", FE_ARG(fe),
				e->opts[i] ? e->opts[i]->level : 0, e->opts[i] ? e->opts[i]->name : 0);
			return -EINVAL;
		}
	}
	if ((e->bind_dev && strnlen(e->bind_dev, IFNAMSIZ) >= IFNAMSIZ) ||
	    (e->congestion && strnlen(e->congestion, SK_CA_NAME_MAX) >= SK_CA_NAME_MAX) ||
	    (e->has_linger_secs && e->linger_secs < 0) ||
	    (e->has_sndbuf && e->sndbuf > INT_MAX) || (e->has_rcvbuf && e->rcvbuf > INT_MAX) ||
	    (e->has_buf_lock && e->buf_lock > SK_BUF_LOCK_MASK) ||
	    (e->has_backlog && e->backlog > 65535) ||
	    (e->has_filter && (!e->filter.len || !e->filter.data ||
			       e->filter.len % sizeof(struct sock_filter) ||
			       e->filter.len > SK_FILTER_MAX * sizeof(struct sock_filter))) ||
	    (e->has_udp_shutdown && (e->type == SOCK_STREAM || e->udp_shutdown > 3))) {
		log_err(FE_FMT ": bad socket options", FE_ARG(fe));
		return -EINVAL;
	}
	if (e->type != SOCK_STREAM) {
		if ((e->state != TCP_CLOSE && e->state != TCP_ESTABLISHED) ||
		    (e->state == TCP_ESTABLISHED) != e->has_dst_addr || e->tcp) {
			log_err(FE_FMT ": bad UDP state %u", FE_ARG(fe), e->state);
			return -EINVAL;
		}
		return 0;
	}
	if (e->peer_closed || e->has_closed_rcv_queue) {
		if (!e->peer_closed || e->tcp || e->lock_table || e->closed_rcv_queue.len > SK_QUEUE_MAX ||
		    (e->closed_rcv_queue.len && !e->closed_rcv_queue.data) ||
		    !state_repaired(e->state))
			goto bad_closed;
		return 0;
	}
	if (e->conn_closed && e->state != TCP_CLOSE)
		goto bad_closed;
	switch (e->state) {
	case TCP_CLOSE:
		if (e->tcp || e->has_dst_addr)
			break;
		return 0;
	case TCP_LISTEN:
		if (e->tcp || e->has_dst_addr || !e->has_src_port || !e->src_port)
			break;
		return 0;
	case TCP_ESTABLISHED:
	case TCP_FIN_WAIT1:
	case TCP_FIN_WAIT2:
	case TCP_CLOSE_WAIT:
	case TCP_LAST_ACK:
	case TCP_CLOSING:
		if (e->tcp && state_fin_sent(e->state) != (e->tcp->has_fin_sent && e->tcp->fin_sent))
			break;
		if (e->tcp && e->tcp->fin_sent && e->tcp->has_snd_unsent && e->tcp->snd_unsent)
			break;
		if (e->tcp && e->tcp->fin_acked && e->state != TCP_FIN_WAIT2)
			break;
		return validate_tcp(fe, e);
	}
	log_err(FE_FMT ": bad TCP state %u", FE_ARG(fe), e->state);
	return -EINVAL;
bad_closed:
	log_err(FE_FMT ": bad connection closed by its peer", FE_ARG(fe));
	return -EINVAL;
}

static int inet_validate(const FileEntry *fe)
{
	SkInetEntry *e = unpack_entry(fe);
	int ret;

	if (!e) {
		log_err(FE_FMT ": missing or unreadable socket data", FE_ARG(fe));
		return -EINVAL;
	}
	ret = validate_sk(fe, e);
	sk_inet_entry__free_unpacked(e, NULL);
	return ret;
}

/* --- restore ----------------------------------------------------------------- */

static int dumped_opt(const SkInetEntry *e, int level, int name, int def)
{
	for (size_t i = 0; i < e->n_opts; i++)
		if ((int)e->opts[i]->level == level && (int)e->opts[i]->name == name)
			return e->opts[i]->val;
	return def;
}

/*
 * A TCP listener whose port another listener of the image shares with
 * SO_REUSEPORT, while its own SO_REUSEPORT is off: it was cleared after
 * bind().  Such a listener binds with SO_REUSEPORT on (whatever the order
 * of the two), and gets the dumped value in files_rst_finish().
 */
static bool reuseport_later(struct files_rst *fr, const FileEntry *fe, const SkInetEntry *e)
{
	size_t n = files_rst_count(fr);
	bool found = false;

	if (e->type != SOCK_STREAM || e->state != TCP_LISTEN || !e->has_src_port ||
	    dumped_opt(e, SOL_SOCKET, SO_REUSEPORT, 0))
		return false;
	for (size_t i = 0; i < n && !found; i++) {
		const FileEntry *o = files_rst_nth(fr, i);
		SkInetEntry *oe;

		if (!o || o == fe || o->kind != FILE_KIND__FILE_INET_SK)
			continue;
		oe = unpack_entry(o);
		if (!oe)
			continue;
		found = oe->type == SOCK_STREAM && oe->state == TCP_LISTEN &&
			oe->has_src_port && oe->src_port == e->src_port &&
			dumped_opt(oe, SOL_SOCKET, SO_REUSEPORT, 0);
		sk_inet_entry__free_unpacked(oe, NULL);
	}
	return found;
}

/* A TCP socket in TCP_CLOSE bound to a port: restored in repair mode. */
static bool closed_bound(const SkInetEntry *e)
{
	return e->type == SOCK_STREAM && e->state == TCP_CLOSE && !e->tcp &&
	       e->has_src_port && e->src_port;
}

static int rst_sockaddr(const SkInetEntry *e, bool dst, struct sockaddr_storage *ss,
			socklen_t *len)
{
	const ProtobufCBinaryData *a = dst ? &e->dst_addr : &e->src_addr;
	uint16_t port = dst ? e->dst_port : e->src_port;

	memset(ss, 0, sizeof(*ss));
	if (e->family == AF_INET) {
		struct sockaddr_in *in = (void *)ss;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		memcpy(&in->sin_addr, a->data, 4);
		*len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (void *)ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		memcpy(&in6->sin6_addr, a->data, 16);
		*len = sizeof(*in6);
	}
	return 0;
}

/* Set the int options of @e whose value differs from @fd's; @early: only
 * those needed before bind, else only the others. */
static int rst_opts(const FileEntry *fe, const SkInetEntry *e, int fd, bool early,
		    const char *conn)
{
	bool repair = e->tcp != NULL || closed_bound(e);

	for (size_t i = 0; i < e->n_opts; i++) {
		const SkInetOpt *o = e->opts[i];
		const struct sk_opt_def *d = opt_find(o->level, o->name);
		int cur, ret;

		if (!d || !!(d->flags & OPT_EARLY) != early)
			continue;
		if (repair && o->level == SOL_SOCKET && o->name == SO_REUSEADDR)
			continue;	/* files_rst_finish(), after repair */
		if ((o->level == IPPROTO_IP && o->name == IP_FREEBIND) ||
		    (o->level == IPPROTO_IPV6 && o->name == IPV6_FREEBIND))
			continue;	/* rst_bind() */
		if (!get_int(fd, o->level, o->name, &cur) && cur == o->val)
			continue;
		ret = set_int(fd, o->level, o->name, o->val);
		if (ret)
			return log_errno(ret, FE_FMT ": %s: cannot set socket option %u/%u to %d",
					 FE_ARG(fe), conn, o->level, o->name, o->val);
	}
	return 0;
}


static int rst_bind(const FileEntry *fe, const SkInetEntry *e, int fd, const char *conn)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int lvl = e->family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP;
	int opt = e->family == AF_INET6 ? IPV6_FREEBIND : IP_FREEBIND;
	int fb = dumped_opt(e, lvl, opt, 0);
	char a[64];
	struct sk_addr s, d;

	if (!e->has_src_addr)
		return 0;
	/* A listener shares its port with the connections it accepted, which
	 * may be restored (in repair mode) before it: it binds and listens
	 * with SO_REUSEADDR, then gets the dumped value (inet_open()).
	 * Another listener on the port still makes bind() fail. */
	bool reuse = e->type == SOCK_STREAM && !e->tcp && !closed_bound(e) &&
		     !dumped_opt(e, SOL_SOCKET, SO_REUSEADDR, 0);

	if (set_int(fd, lvl, opt, 1) || (reuse && set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1)))
		return log_errno(errno, FE_FMT ": %s: cannot set freebind", FE_ARG(fe), conn);
	rst_sockaddr(e, false, &ss, &len);
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		entry_addrs(e, &s, &d);
		return log_errno(errno, FE_FMT ": %s: cannot bind to %s", FE_ARG(fe), conn,
				 addr_str(&s, a, sizeof(a)));
	}
	if (!fb && set_int(fd, lvl, opt, 0))
		return log_errno(errno, FE_FMT ": %s: cannot clear freebind", FE_ARG(fe), conn);
	return 0;
}

static int rst_bufs(const FileEntry *fe, const SkInetEntry *e, int fd, const char *conn)
{
	if (e->has_sndbuf && e->sndbuf / 2 && set_int(fd, SOL_SOCKET, SO_SNDBUFFORCE, e->sndbuf / 2))
		return log_errno(errno, FE_FMT ": %s: SO_SNDBUFFORCE %u", FE_ARG(fe), conn, e->sndbuf / 2);
	if (e->has_rcvbuf && e->rcvbuf / 2 && set_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, e->rcvbuf / 2))
		return log_errno(errno, FE_FMT ": %s: SO_RCVBUFFORCE %u", FE_ARG(fe), conn, e->rcvbuf / 2);
	/* FORCE locked both sizes; unlock those the program left to autotuning */
	if (set_int(fd, SOL_SOCKET, SO_BUF_LOCK, e->has_buf_lock ? (int)e->buf_lock : 0))
		return log_errno(errno, FE_FMT ": %s: SO_BUF_LOCK", FE_ARG(fe), conn);
	return 0;
}

static int rst_misc(const FileEntry *fe, const SkInetEntry *e, int fd, const char *conn)
{
	if (e->has_linger_on && e->linger_on) {
		struct linger lg = { .l_onoff = 1, .l_linger = e->linger_secs };
		if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
			return log_errno(errno, FE_FMT ": %s: SO_LINGER", FE_ARG(fe), conn);
	}
	if (e->has_filter) {
		/* the kernel checks the program */
		struct sock_fprog p = { .len = e->filter.len / sizeof(struct sock_filter),
					.filter = (struct sock_filter *)e->filter.data };

		if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &p, sizeof(p)) < 0)
			return log_errno(errno, FE_FMT ": %s: cannot attach its socket filter (%u "
					 "instructions)", FE_ARG(fe), conn, p.len);
		if (e->filter_locked && set_int(fd, SOL_SOCKET, SO_LOCK_FILTER, 1))
			return log_errno(errno, FE_FMT ": %s: SO_LOCK_FILTER", FE_ARG(fe), conn);
	}
	/* shutdown() of a UDP socket sets its flags, connected or not (then
	 * it says ENOTCONN, having done it) */
	if (e->has_udp_shutdown && e->udp_shutdown &&
	    shutdown(fd, e->udp_shutdown == 3 ? SHUT_RDWR : e->udp_shutdown == 2 ? SHUT_WR :
		     SHUT_RD) < 0 && errno != ENOTCONN)
		return log_errno(errno, FE_FMT ": %s: shutdown", FE_ARG(fe), conn);
	if (e->congestion) {
		char cur[SK_CA_NAME_MAX] = "";
		socklen_t l = sizeof(cur);

		getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, cur, &l);
		if (strncmp(cur, e->congestion, sizeof(cur)) &&
		    setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, e->congestion,
			       strlen(e->congestion)) < 0)
			log_warn_errno(errno, FE_FMT ": %s: congestion control %s not available, "
				       "keeping %s", FE_ARG(fe), conn, e->congestion, cur);
	}
	return 0;
}

/* Write @len bytes of @data into the queue @q of a socket in repair mode. */
static int fill_queue(int fd, int q, const uint8_t *data, size_t len)
{
	size_t off = 0;

	if (set_int(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, q))
		return -errno;
	while (off < len) {
		size_t chunk = len - off > 65536 ? 65536 : len - off;
		ssize_t r = send(fd, data + off, chunk, MSG_DONTWAIT);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		off += r;
	}
	return 0;
}

/*
 * connect() in repair mode sends nothing, but it still looks up the route to
 * the peer.  Early in a boot (kup-restore.service runs before sysinit.target)
 * the network may not be configured yet: udev, ifupdown or networkd run at
 * the same time.  Without a route the connect fails with ENETUNREACH, so the
 * restore waits for one, up to RST_ROUTE_WAIT_S, saying so once.
 */
#define RST_ROUTE_WAIT_S	60

static int repair_connect(const FileEntry *fe, int fd, const struct sockaddr_storage *ss,
			  socklen_t len, const char *conn)
{
	struct timespec t0, now;
	bool said = false;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int ret;

		if (!connect(fd, (const struct sockaddr *)ss, len))
			break;
		ret = errno;
		if (ret != ENETUNREACH && ret != EHOSTUNREACH)
			return log_errno(ret, FE_FMT ": %s: cannot reconnect in repair mode", FE_ARG(fe),
					 conn);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec >= RST_ROUTE_WAIT_S)
			return log_errno(ret, FE_FMT ": %s: cannot reconnect in repair mode (no route "
					 "to the peer after %d s)", FE_ARG(fe), conn, RST_ROUTE_WAIT_S);
		if (!said) {
			log_info("%s: no route to the peer yet (the network is not configured): "
				 "waiting up to %d s", conn, RST_ROUTE_WAIT_S);
			said = true;
		}
		ret = ckpt_check_abort();
		if (ret)
			return ret;
		usleep(100 * 1000);
	}
	if (said) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		log_info("%s: a route to the peer came after %.1f s", conn,
			 (now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) / 1e9);
	}
	return 0;
}

static unsigned int get_tcp_state(int fd)
{
	struct tcp_info ti;
	socklen_t l = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0)
		return TCP_CLOSE;
	return ti.tcpi_state;
}

/* shutdown(SHUT_WR) in repair mode, with the send queue selected: our FIN
 * goes at the end of the send queue, counted as sent (not transmitted). */
static int queue_our_fin(const FileEntry *fe, int fd, const char *conn)
{
	if (set_int(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) ||
	    shutdown(fd, SHUT_WR) < 0)
		return log_errno(errno, FE_FMT ": %s: cannot queue our FIN again", FE_ARG(fe), conn);
	return 0;
}

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/*
 * The peer's FIN, received before the dump (CLOSE_WAIT, LAST_ACK,
 * CLOSING): repair mode can set every sequence number but has no way to
 * mark a FIN as received, so the restore replays it: a FIN+ACK segment
 * from the peer's address to ours (sequence @seq: the FIN's own, @ack: our
 * snd_una), sent through a raw socket with NETLOCK_PASS_MARK (the network
 * lock lets it in) and looped back into the repaired socket, which takes
 * it as any segment: rcv_nxt counts the FIN, the state moves on
 * (ESTABLISHED -> CLOSE_WAIT, FIN_WAIT1 -> CLOSING).  Its answer (an ACK
 * the peer already had) is dropped by the lock, or harmless.  Checked with
 * TCP_INFO: the segment is processed when the send returns, or soon after.
 */
static int inject_fin(const FileEntry *fe, const SkInetEntry *e, int fd, uint32_t seq,
		      uint32_t ack, const char *conn)
{
	const SkInetTcp *t = e->tcp;
	uint8_t pkt[60] = { 0 }, ph[40] = { 0 }, *tcp, la[16], ra[16];
	struct sockaddr_storage ss = { 0 };
	unsigned int want = e->state == TCP_CLOSING ? TCP_CLOSING : TCP_CLOSE_WAIT;
	uint32_t win = t->snd_wnd >> (t->wscale_ok ? t->snd_wscale : 0), sum;
	int family = e->family, mark = NETLOCK_PASS_MARK, rs = -1, ret = 0;
	size_t iplen, alen;
	socklen_t sl;

	memcpy(la, e->src_addr.data, e->src_addr.len);
	memcpy(ra, e->dst_addr.data, e->dst_addr.len);
	/* v4-mapped: the segment is IPv4 */
	if (family == AF_INET6 && IN6_IS_ADDR_V4MAPPED((struct in6_addr *)la) &&
	    IN6_IS_ADDR_V4MAPPED((struct in6_addr *)ra)) {
		family = AF_INET;
		memmove(la, la + 12, 4);
		memmove(ra, ra + 12, 4);
	}
	alen = family == AF_INET ? 4 : 16;
	iplen = family == AF_INET ? 20 : 40;
	if (win > 65535)
		win = 65535;
	tcp = pkt + iplen;
	tcp[0] = e->dst_port >> 8;
	tcp[1] = e->dst_port & 0xff;
	tcp[2] = e->src_port >> 8;
	tcp[3] = e->src_port & 0xff;
	for (int i = 0; i < 4; i++) {
		tcp[4 + i] = seq >> (24 - 8 * i);
		tcp[8 + i] = ack >> (24 - 8 * i);
	}
	tcp[12] = 5 << 4;		/* 20 bytes, no options */
	tcp[13] = 0x11;			/* FIN, ACK */
	tcp[14] = win >> 8;
	tcp[15] = win & 0xff;
	/* pseudo header: source, destination, length, protocol */
	memcpy(ph, ra, alen);
	memcpy(ph + alen, la, alen);
	if (family == AF_INET) {
		ph[9] = IPPROTO_TCP;
		ph[11] = 20;
	} else {
		ph[35] = 20;
		ph[39] = IPPROTO_TCP;
	}
	sum = csum_add(0, ph, family == AF_INET ? 12 : 40);
	sum = csum_fold(csum_add(sum, tcp, 20));
	tcp[16] = sum >> 8;
	tcp[17] = sum & 0xff;
	if (family == AF_INET) {
		struct sockaddr_in *in = (void *)&ss;

		pkt[0] = 0x45;
		pkt[3] = 40;		/* total length; the kernel fills the checksum */
		pkt[6] = 0x40;		/* don't fragment */
		pkt[8] = 64;
		pkt[9] = IPPROTO_TCP;
		memcpy(pkt + 12, ra, 4);
		memcpy(pkt + 16, la, 4);
		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, la, 4);
		sl = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (void *)&ss;

		pkt[0] = 0x60;
		pkt[5] = 20;		/* payload length */
		pkt[6] = IPPROTO_TCP;
		pkt[7] = 64;
		memcpy(pkt + 8, ra, 16);
		memcpy(pkt + 24, la, 16);
		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, la, 16);
		sl = sizeof(*in6);
	}
	/* IPPROTO_RAW: we write the IP header (IP_HDRINCL, implied) */
	rs = socket(family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (rs < 0 || setsockopt(rs, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0 ||
	    sendto(rs, pkt, iplen + 20, 0, (struct sockaddr *)&ss, sl) < 0) {
		ret = log_errno(errno, FE_FMT ": %s: cannot replay the peer's FIN (raw socket)",
				FE_ARG(fe), conn);
		goto out;
	}
	for (int i = 0; i < 400 && get_tcp_state(fd) != want; i++) {
		struct timespec ts = { 0, 5000000 };
		nanosleep(&ts, NULL);
	}
	if (get_tcp_state(fd) != want) {
		log_err(FE_FMT ": %s: the replayed FIN of the peer was not taken (state %s, not %s)",
			FE_ARG(fe), conn, tcp_state_name(get_tcp_state(fd)), tcp_state_name(want));
		ret = -EIO;
	}
out:
	if (rs >= 0)
		close(rs);
	return ret;
}

/* Is @a (@family, network order) an address of this namespace? */
static bool addr_is_local(int family, const uint8_t *a)
{
	struct sockaddr_storage ss = { 0 };
	int s = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool local;

	if (s < 0)
		return false;
	ss.ss_family = family;
	if (family == AF_INET)
		memcpy(&((struct sockaddr_in *)&ss)->sin_addr, a, 4);
	else
		memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, a, 16);
	local = bind(s, (struct sockaddr *)&ss, family == AF_INET ? sizeof(struct sockaddr_in) :
		     sizeof(struct sockaddr_in6)) == 0;
	close(s);
	return local;
}

/*
 * The peer's FIN: replayed (inject_fin(), 0) when our address is one of
 * the namespace's, for the segment must be delivered to us and not routed
 * anywhere.  Otherwise (a restore on a new boot, before the network is
 * configured) it is kept as an end of file only (1): shutdown(SHUT_RD), so
 * reads give what was left and then 0 as after the FIN, writes go on; the
 * state is the one before the FIN (ESTABLISHED, FIN_WAIT1) and our ACKs
 * stop short of the FIN, which the peer takes as old ones.
 */
static int rst_peer_fin(const FileEntry *fe, const SkInetEntry *e, int fd, uint32_t seq,
			uint32_t ack, const char *conn)
{
	int family = e->family;
	const uint8_t *la = e->src_addr.data;

	if (family == AF_INET6 && IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)la)) {
		family = AF_INET;
		la += 12;
	}
	if (addr_is_local(family, la))
		return inject_fin(fe, e, fd, seq, ack, conn);
	if (shutdown(fd, SHUT_RD) < 0)
		return log_errno(errno, FE_FMT ": %s: shutdown(SHUT_RD)", FE_ARG(fe), conn);
	log_warn(FE_FMT ": %s: its address is not configured yet: the peer's FIN is kept as an "
		 "end of file (state %s instead of %s)", FE_ARG(fe), conn,
		 tcp_state_name(e->state == TCP_CLOSE_WAIT ? TCP_ESTABLISHED : TCP_FIN_WAIT1),
		 tcp_state_name(e->state));
	return 1;
}

static int rst_tcp_conn(const FileEntry *fe, const SkInetEntry *e, int fd, const char *conn)
{
	const SkInetTcp *t = e->tcp;
	uint32_t sq = t->has_snd_queue ? t->snd_queue.len : 0;
	uint32_t rq = t->has_rcv_queue ? t->rcv_queue.len : 0;
	uint32_t sent = sq - (t->has_snd_unsent ? t->snd_unsent : 0);
	struct tcp_repair_opt opts[4];
	struct tcp_repair_window w;
	unsigned int want;
	bool eof_only = false;
	int tlvl = e->family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP;
	int topt = e->family == AF_INET6 ? IPV6_TRANSPARENT : IP_TRANSPARENT;
	struct sockaddr_storage ss;
	socklen_t len;
	int n = 0, ret;

	/* connect() sizes the segments from the MSS clamp, which the repair
	 * options set too late: a user MSS does it now, and is dropped after */
	if (set_int(fd, IPPROTO_TCP, TCP_MAXSEG, (int)(t->mss_clamp < SK_USER_MSS_MAX ?
							t->mss_clamp : SK_USER_MSS_MAX)))
		return log_errno(errno, FE_FMT ": %s: TCP_MAXSEG %u", FE_ARG(fe), conn, t->mss_clamp);
	/* the source address may not be configured yet (a new boot): bound
	 * with freebind, but the route of connect() wants it local unless the
	 * socket is transparent, for this call */
	rst_sockaddr(e, true, &ss, &len);
	if (set_int(fd, tlvl, topt, 1))
		return log_errno(errno, FE_FMT ": %s: cannot make it transparent", FE_ARG(fe), conn);
	ret = repair_connect(fe, fd, &ss, len, conn);
	if (ret)
		return ret;
	if (set_int(fd, tlvl, topt, 0))
		return log_errno(errno, FE_FMT ": %s: cannot clear transparent", FE_ARG(fe), conn);
	if (set_int(fd, IPPROTO_TCP, TCP_MAXSEG, 0))
		return log_errno(errno, FE_FMT ": %s: TCP_MAXSEG 0", FE_ARG(fe), conn);
	opts[n++] = (struct tcp_repair_opt){ TCPOPT_MAXSEG, t->mss_clamp };
	if (t->wscale_ok)
		opts[n++] = (struct tcp_repair_opt){ TCPOPT_WINDOW,
						     t->snd_wscale | (t->rcv_wscale << 16) };
	if (t->tstamp_ok)
		opts[n++] = (struct tcp_repair_opt){ TCPOPT_TIMESTAMP, 0 };
	if (t->sack_ok)
		opts[n++] = (struct tcp_repair_opt){ TCPOPT_SACK_PERMITTED, 0 };
	if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_OPTIONS, opts, n * sizeof(opts[0])) < 0)
		return log_errno(errno, FE_FMT ": %s: TCP_REPAIR_OPTIONS", FE_ARG(fe), conn);
	/* room for the queues: the dumped sizes are set afterwards */
	if (set_int(fd, SOL_SOCKET, SO_SNDBUFFORCE, (int)(sq + (1u << 20))) ||
	    set_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, (int)(rq * 2 + (1u << 20))))
		return log_errno(errno, FE_FMT ": %s: cannot make room for the queues", FE_ARG(fe), conn);
	ret = fill_queue(fd, TCP_SEND_QUEUE, t->snd_queue.data, sent);
	if (ret)
		return log_errno(ret, FE_FMT ": %s: cannot restore %u bytes of send queue",
				 FE_ARG(fe), conn, sent);
	/* the receive queue before any FIN: a socket shut down for writing
	 * takes no more bytes, not even in repair mode */
	ret = fill_queue(fd, TCP_RECV_QUEUE, t->rcv_queue.data, rq);
	if (ret)
		return log_errno(ret, FE_FMT ": %s: cannot restore %u bytes of receive queue",
				 FE_ARG(fe), conn, rq);
	/* The FINs in the order they came.  Ours: queued (and taken as sent)
	 * at the end of the send queue; the peer acknowledges it again once
	 * repair is over (FIN_WAIT2).  The peer's: replayed (inject_fin()). */
	if (t->fin_sent && e->state != TCP_LAST_ACK) {
		ret = queue_our_fin(fe, fd, conn);
		if (ret)
			return ret;
	}
	if (state_fin_rcvd(e->state)) {
		ret = rst_peer_fin(fe, e, fd, t->rcv_seq - 1,
				   t->snd_seq - sq - (t->fin_sent ? 1 : 0), conn);
		if (ret < 0)
			return ret;
		eof_only = ret > 0;
	}
	if (e->state == TCP_LAST_ACK) {
		ret = queue_our_fin(fe, fd, conn);
		if (ret)
			return ret;
	}
	/* FIN_WAIT2 comes back as FIN_WAIT1 (above); with the peer's FIN kept
	 * as an end of file only, as if it had not come */
	want = e->state == TCP_FIN_WAIT2 ? TCP_FIN_WAIT1 : e->state;
	if (eof_only)
		want = t->fin_sent ? TCP_FIN_WAIT1 : TCP_ESTABLISHED;
	if (get_tcp_state(fd) != want) {
		log_err(FE_FMT ": %s: rebuilt in state %s instead of %s", FE_ARG(fe), conn,
			tcp_state_name(get_tcp_state(fd)), tcp_state_name(want));
		return -EIO;
	}
	w = (struct tcp_repair_window){ .snd_wl1 = t->snd_wl1, .snd_wnd = t->snd_wnd,
		.max_window = t->max_window, .rcv_wnd = t->rcv_wnd, .rcv_wup = t->rcv_wup };
	/* without the FIN, rcv_nxt is one less than dumped: the window keeps
	 * its right edge */
	if (eof_only && w.rcv_wup == t->rcv_seq) {
		w.rcv_wup--;
		w.rcv_wnd++;
	}
	if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w)) < 0)
		return log_errno(errno, FE_FMT ": %s: TCP_REPAIR_WINDOW", FE_ARG(fe), conn);
	if (t->has_timestamp && set_int(fd, IPPROTO_TCP, TCP_TIMESTAMP, (int)t->timestamp))
		return log_errno(errno, FE_FMT ": %s: TCP_TIMESTAMP", FE_ARG(fe), conn);
	if (set_int(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE))
		return log_errno(errno, FE_FMT ": %s: TCP_REPAIR_QUEUE", FE_ARG(fe), conn);
	return 0;
}

/*
 * A connection whose peer has closed (--external-peers=close): an accepted
 * loopback connection whose client wrote the bytes the program had not read,
 * then closed: the program reads them, then the end of file, and a write
 * fails, as after a client's disconnect.  Without a usable loopback, a
 * socket never connected (reads fail with ENOTCONN, poll says POLLHUP).
 */
static int rst_tcp_closed(const FileEntry *fe, const SkInetEntry *e, const char *conn)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len = e->family == AF_INET6 ? sizeof(struct sockaddr_in6) :
			sizeof(struct sockaddr_in);
	int l = -1, c = -1, s = -1, big = SK_QUEUE_MAX;
	const char *step = "socket";

	ss.ss_family = e->family;
	if (e->family == AF_INET6)
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	else
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(e->family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
	c = socket(e->family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
	if (l < 0 || c < 0)
		goto fallback;
	step = "loopback listener";
	if (bind(l, (struct sockaddr *)&ss, len) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&ss, &len) < 0)
		goto fallback;
	step = "loopback connection";
	if (connect(c, (struct sockaddr *)&ss, len) < 0)
		goto fallback;
	s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0)
		goto fallback;
	if (e->closed_rcv_queue.len) {
		setsockopt(c, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
		setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
		step = "queued bytes";
		if (files_write_all(c, e->closed_rcv_queue.data, e->closed_rcv_queue.len))
			goto fallback;
	}
	close(c);
	close(l);
	log_debug(FE_FMT ": %s: restored as closed by its peer", FE_ARG(fe), conn);
	return s;
fallback:
	log_warn_errno(errno, FE_FMT ": %s: closed by its peer: no %s here; restored as a socket "
		       "never connected%s", FE_ARG(fe), conn, step,
		       e->closed_rcv_queue.len ? " (its unread bytes are lost)" : "");
	if (c >= 0)
		close(c);
	if (l >= 0)
		close(l);
	if (s >= 0)
		close(s);
	s = socket(e->family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
	if (s < 0)
		return log_errno(errno, FE_FMT ": %s: cannot create the socket", FE_ARG(fe), conn);
	return s;
}

static int inet_open(const FileEntry *fe, struct files_rst *fr)
{
	SkInetEntry *e = unpack_entry(fe);
	const SkInetTcp *t;
	struct stat nst;
	char conn[160];
	int fd = -1, ret;

	if (!e)
		return log_errno(EINVAL, FE_FMT ": unreadable socket data", FE_ARG(fe));
	conn_str(e, conn, sizeof(conn));
	t = e->tcp;
	if (stat("/proc/thread-self/ns/net", &nst) < 0) {
		ret = log_errno(errno, FE_FMT ": %s: cannot find our network namespace", FE_ARG(fe), conn);
		goto err;
	}
	if (nst.st_ino != e->netns) {
		log_err(FE_FMT ": %s was dumped in network namespace %llu, kup restore runs in %llu: "
			"run it in that namespace (nsenter --net=...)", FE_ARG(fe), conn,
			(unsigned long long)e->netns, (unsigned long long)nst.st_ino);
		ret = -EINVAL;
		goto err;
	}
	if (e->peer_closed) {
		fd = rst_tcp_closed(fe, e, conn);
		sk_inet_entry__free_unpacked(e, NULL);
		return fd;
	}
	if (t && !files_rst_opts(fr)->tcp_established) {
		log_err(FE_FMT ": established connection %s: restore it with --tcp-established",
			FE_ARG(fe), conn);
		ret = -EINVAL;
		goto err;
	}
	fd = socket(e->family, e->type, e->protocol);
	if (fd < 0) {
		ret = log_errno(errno, FE_FMT ": %s: cannot create the socket", FE_ARG(fe), conn);
		goto err;
	}
	/* a connection, and a closed TCP socket bound to a port (which it may
	 * share with a listener or a connection, as a socket closed after a
	 * connection does): repair mode, whose bind() forces the port reuse,
	 * until files_rst_finish() */
	if ((t || closed_bound(e)) && set_int(fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON)) {
		ret = log_errno(errno, FE_FMT ": %s: cannot enter repair mode", FE_ARG(fe), conn);
		goto err;
	}
	ret = rst_opts(fe, e, fd, true, conn);
	if (!ret && reuseport_later(fr, fe, e) && set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1))
		ret = log_errno(errno, FE_FMT ": %s: SO_REUSEPORT", FE_ARG(fe), conn);
	if (ret)
		goto err;
	if (e->bind_dev && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, e->bind_dev,
				      strlen(e->bind_dev)) < 0) {
		ret = log_errno(errno, FE_FMT ": %s: cannot bind to device %s", FE_ARG(fe), conn,
				e->bind_dev);
		goto err;
	}
	if (t) {
		uint32_t sq = t->has_snd_queue ? t->snd_queue.len : 0;
		uint32_t rq = t->has_rcv_queue ? t->rcv_queue.len : 0;

		/* the queues are written back on top of these */
		if (set_int(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) ||
		    set_int(fd, IPPROTO_TCP, TCP_QUEUE_SEQ,
			    (int)(t->snd_seq - sq - (t->fin_sent ? 1 : 0))) ||
		    set_int(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE) ||
		    set_int(fd, IPPROTO_TCP, TCP_QUEUE_SEQ,
			    (int)(t->rcv_seq - rq - (state_fin_rcvd(e->state) ? 1 : 0)))) {
			ret = log_errno(errno, FE_FMT ": %s: cannot set the sequence numbers",
					FE_ARG(fe), conn);
			goto err;
		}
	}
	ret = rst_bind(fe, e, fd, conn);
	if (ret)
		goto err;
	/* closed after a connection: both ways shut down, as the kernel leaves
	 * it (shutdown() of a closed socket says ENOTCONN, and does it) */
	if (e->conn_closed && shutdown(fd, SHUT_RDWR) < 0 && errno != ENOTCONN) {
		ret = log_errno(errno, FE_FMT ": %s: shutdown", FE_ARG(fe), conn);
		goto err;
	}
	if (e->state == TCP_LISTEN && listen(fd, e->has_backlog ? (int)e->backlog : SOMAXCONN) < 0) {
		ret = log_errno(errno, FE_FMT ": %s: cannot listen", FE_ARG(fe), conn);
		goto err;
	}
	if (e->type == SOCK_STREAM && !t && !closed_bound(e) &&
	    !dumped_opt(e, SOL_SOCKET, SO_REUSEADDR, 0) &&
	    set_int(fd, SOL_SOCKET, SO_REUSEADDR, 0)) {
		ret = log_errno(errno, FE_FMT ": %s: SO_REUSEADDR", FE_ARG(fe), conn);
		goto err;
	}
	if (t) {
		ret = rst_tcp_conn(fe, e, fd, conn);
		if (ret)
			goto err;
	} else if (e->type != SOCK_STREAM && e->has_dst_addr) {
		struct sockaddr_storage ss;
		socklen_t len;

		rst_sockaddr(e, true, &ss, &len);
		if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
			ret = log_errno(errno, FE_FMT ": %s: cannot connect", FE_ARG(fe), conn);
			goto err;
		}
	}
	ret = rst_opts(fe, e, fd, false, conn);
	if (!ret)
		ret = rst_bufs(fe, e, fd, conn);
	if (!ret)
		ret = rst_misc(fe, e, fd, conn);
	if (ret)
		goto err;
	log_debug(FE_FMT ": %s restored%s", FE_ARG(fe), conn, t ? " (in repair mode)" : "");
	sk_inet_entry__free_unpacked(e, NULL);
	return fd;
err:
	if (fd >= 0)
		close(fd);	/* still in repair mode: nothing reaches the peer */
	sk_inet_entry__free_unpacked(e, NULL);
	return ret < 0 ? ret : -EINVAL;
}

/* The locks named by the entries of @img in our namespace, each once. */
static void remove_locks(const FileEntry *const *files, size_t n)
{
	struct stat nst;
	char done[8][NETLOCK_NAME_MAX];
	size_t ndone = 0;

	if (stat("/proc/thread-self/ns/net", &nst) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		SkInetEntry *e;
		bool seen = false;

		if (!files[i] || files[i]->kind != FILE_KIND__FILE_INET_SK)
			continue;
		e = unpack_entry(files[i]);
		if (!e)
			continue;
		if (e->lock_table && netlock_name_ok(e->lock_table) && e->netns == nst.st_ino) {
			for (size_t k = 0; k < ndone && !seen; k++)
				seen = !strcmp(done[k], e->lock_table);
			if (!seen) {
				netlock_remove(e->lock_table, -1);
				if (ndone < 8)
					snprintf(done[ndone++], NETLOCK_NAME_MAX, "%s", e->lock_table);
			}
		}
		sk_inet_entry__free_unpacked(e, NULL);
	}
}

/* Queue the never-sent tail of the send queue, the normal way. */
static int send_unsent(const FileEntry *fe, const SkInetEntry *e, int fd, const char *conn)
{
	const SkInetTcp *t = e->tcp;
	uint32_t n = t->has_snd_unsent ? t->snd_unsent : 0;
	const uint8_t *p = t->snd_queue.data + t->snd_queue.len - n;
	int ret;

	if (!n)
		return 0;
	if (set_int(fd, SOL_SOCKET, SO_SNDBUFFORCE, (int)(t->snd_queue.len + (1u << 20))))
		return log_errno(errno, FE_FMT ": %s: SO_SNDBUFFORCE", FE_ARG(fe), conn);
	while (n) {
		ssize_t r = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return log_errno(r < 0 ? errno : EIO, FE_FMT ": %s: cannot queue %u unsent bytes",
					 FE_ARG(fe), conn, n);
		p += r;
		n -= r;
	}
	ret = rst_bufs(fe, e, fd, conn);
	return ret;
}

/* Just before the tree runs: locks off, connections live. */
static int inet_rst_finish(struct files_rst *fr)
{
	size_t n = files_rst_count(fr);
	const FileEntry **v = calloc(n ? n : 1, sizeof(*v));
	int ret = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		v[i] = files_rst_nth(fr, i);
	remove_locks(v, n);
	free(v);
	for (size_t i = 0; i < n && !ret; i++) {
		const FileEntry *fe = files_rst_nth(fr, i);
		SkInetEntry *e;
		char conn[160];
		int fd;

		if (fe->kind != FILE_KIND__FILE_INET_SK)
			continue;
		e = unpack_entry(fe);
		if (!e)
			return -EINVAL;
		fd = files_rst_fd(fr, fe->id);
		if (fd >= 0 && reuseport_later(fr, fe, e) &&
		    set_int(fd, SOL_SOCKET, SO_REUSEPORT, 0)) {
			conn_str(e, conn, sizeof(conn));
			ret = log_errno(errno, FE_FMT ": %s: SO_REUSEPORT", FE_ARG(fe), conn);
		}
		if (closed_bound(e) && fd >= 0) {
			conn_str(e, conn, sizeof(conn));
			if (set_int(fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF))
				ret = log_errno(errno, FE_FMT ": %s: cannot leave repair mode",
						FE_ARG(fe), conn);
			else if (dumped_opt(e, SOL_SOCKET, SO_REUSEADDR, 0) &&
				 set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1))
				ret = log_errno(errno, FE_FMT ": %s: SO_REUSEADDR", FE_ARG(fe), conn);
		}
		if (e->tcp && fd >= 0) {
			conn_str(e, conn, sizeof(conn));
			if (set_int(fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF))
				ret = log_errno(errno, FE_FMT ": %s: cannot leave repair mode",
						FE_ARG(fe), conn);
			else if (dumped_opt(e, SOL_SOCKET, SO_REUSEADDR, 0) &&
				 set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1))
				ret = log_errno(errno, FE_FMT ": %s: SO_REUSEADDR", FE_ARG(fe), conn);
			if (!ret)
				ret = send_unsent(fe, e, fd, conn);
		}
		sk_inet_entry__free_unpacked(e, NULL);
	}
	return ret;
}

int inet_rst_journal(const struct files_rst *fr, pid_t pid, const FdtableEntry *t)
{
	int ret = 0;

	for (size_t i = 0; t && i < t->n_fds && !ret; i++) {
		const FileEntry *fe = files_rst_entry(fr, t->fds[i]->file_id);
		int fd = fe ? files_rst_fd(fr, fe->id) : -1;
		SkInetEntry *e;
		struct stat sb;

		if (!fe || fe->kind != FILE_KIND__FILE_INET_SK || fd < 0 || fstat(fd, &sb))
			continue;
		e = unpack_entry(fe);
		if (!e)
			continue;
		/* a connection, or a closed socket bound in repair mode: both
		 * leave it in files_rst_finish() */
		if (e->tcp || closed_bound(e))
			ret = journal_add("sk %d %llu %d %llu %d", pid, journal_start_time(pid, pid),
					  t->fds[i]->fd, (unsigned long long)sb.st_ino,
					  dumped_opt(e, SOL_SOCKET, SO_REUSEADDR, 0) ? 1 : 0);
		if (!ret && e->tcp && e->lock_table && netlock_name_ok(e->lock_table))
			ret = journal_add("lock %s 0 %llu 0", e->lock_table,
					  (unsigned long long)e->netns);
		sk_inet_entry__free_unpacked(e, NULL);
	}
	return ret;
}

/* A restore with --tcp-established owns the lock: gone when it is over,
 * done or failed.  Without it the connections were not touched and the
 * lock stays for a restore that will take them. */
static void inet_rst_release(const FilesImage *img, const struct files_opts *o)
{
	if (o->tcp_established && img && img->files && img->n_files <= (1u << 24))
		remove_locks((const FileEntry *const *)img->files, img->n_files);
}

const struct file_kind_ops files_sk_inet_ops = {
	.kind = FILE_KIND__FILE_INET_SK,
	.name = "inet socket",
	.match = inet_match,
	.dump = inet_dump,
	.dump_release = inet_dump_release,
	.validate = inet_validate,
	.open = inet_open,
	.rst_finish = inet_rst_finish,
	.rst_release = inet_rst_release,
};
