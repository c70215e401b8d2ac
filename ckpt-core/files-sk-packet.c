// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Packet sockets (AF_PACKET, SOCK_RAW and SOCK_DGRAM).
 *
 * Dump: through our copy of the fd: SO_TYPE, getsockname (the ethertype
 * and the bound interface, kept by NAME: SIOCGIFNAME on the socket itself
 * resolves it in the socket's network namespace), the SOL_PACKET options
 * (PACKET_VERSION, _AUXDATA, _ORIGDEV, _VNET_HDR, _RESERVE, _TIMESTAMP,
 * _LOSS, _QDISC_BYPASS, _IGNORE_OUTGOING), the buffer sizes, a classic
 * socket filter (files_sk_dump_filter) and, from packet_diag (a NETLINK_SOCK_DIAG
 * dump of the namespace's packet sockets, ours found by inode), the
 * memberships (PACKET_DIAG_MCLIST).  Refused, naming pid and fd: an mmap'ed
 * ring (PACKET_DIAG_RX_RING / TX_RING), a fanout group (PACKET_DIAG_FANOUT),
 * an eBPF filter, an interface without a name.  Frames queued on the socket
 * are dropped (docs/sockets.md).
 *
 * Restore, in the master (which must run in the dumped network namespace):
 * socket() with no protocol (nothing is received before the bind), the
 * options, the filter, the buffer sizes, bind() to the ethertype and the
 * interface looked up by name, then each membership as many times as it
 * was added.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/packet_diag.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>

#include "files.h"
#include "sk-diag.h"
#include "kup-sk-packet.pb-c.h"
#include "log.h"

#ifndef SOL_PACKET
#define SOL_PACKET 263
#endif

#define PK_ADDR_MAX	32	/* MAX_ADDR_LEN */
#define PK_MC_MAX	4096
#define PK_MC_COUNT_MAX	1024

/* PACKET_ADD_MEMBERSHIP takes up to MAX_ADDR_LEN address bytes */
struct pk_mreq {
	int mr_ifindex;
	unsigned short mr_type;
	unsigned short mr_alen;
	unsigned char mr_address[PK_ADDR_MAX];
};

/* The integer options kept, in restore order (PACKET_VERSION first). */
static const struct pk_opt {
	int name;
	const char *str;
	size_t off_has, off_val;
	bool is_bool;
} pk_opts[] = {
#define PK_OPT(n, f, b) { n, #n, offsetof(SkPacketEntry, has_##f), offsetof(SkPacketEntry, f), b }
	PK_OPT(PACKET_VERSION, version, false),
	PK_OPT(PACKET_RESERVE, reserve, false),
	PK_OPT(PACKET_AUXDATA, auxdata, true),
	PK_OPT(PACKET_ORIGDEV, origdev, true),
	PK_OPT(PACKET_VNET_HDR, vnet_hdr, true),
	PK_OPT(PACKET_TIMESTAMP, timestamp, false),
	PK_OPT(PACKET_LOSS, loss, true),
	PK_OPT(PACKET_QDISC_BYPASS, qdisc_bypass, true),
	PK_OPT(PACKET_IGNORE_OUTGOING, ignore_outgoing, true),
#undef PK_OPT
};
#define NR_PK_OPTS (sizeof(pk_opts) / sizeof(pk_opts[0]))

static uint32_t opt_get(const SkPacketEntry *e, const struct pk_opt *o)
{
	if (o->is_bool)
		return *(const protobuf_c_boolean *)((const char *)e + o->off_val);
	return *(const uint32_t *)((const char *)e + o->off_val);
}

static const char *type_name(uint32_t t)
{
	return t == SOCK_DGRAM ? "SOCK_DGRAM" : "SOCK_RAW";
}

/* --- dump ------------------------------------------------------------------- */

static bool pk_match(const struct fd_info *fi)
{
	int fam = -1;
	socklen_t l = sizeof(fam);

	return S_ISSOCK(fi->st.st_mode) && !(fi->flags & O_PATH) &&
	       getsockopt(fi->lfd, SOL_SOCKET, SO_DOMAIN, &fam, &l) == 0 && fam == AF_PACKET;
}

static int get_int(const struct fd_info *fi, int level, int name, const char *what, int *v)
{
	socklen_t l = sizeof(*v);

	*v = 0;
	if (getsockopt(fi->lfd, level, name, v, &l) < 0)
		return log_errno(errno, FI_FMT ": packet socket: getsockopt(%s)", FI_ARG(fi), what);
	return 0;
}

/* The name of interface @idx in the socket's network namespace. */
static int if_name(const struct fd_info *fi, int idx, const char *what, char **out)
{
	struct ifreq ifr = { .ifr_ifindex = idx };

	if (ioctl(fi->lfd, SIOCGIFNAME, &ifr) < 0) {
		if (errno == ENODEV) {
			log_err(FI_FMT ": packet socket: its %s (interface index %d) has no name in "
				"its network namespace: not supported", FI_ARG(fi), what, idx);
			return -EOPNOTSUPP;
		}
		return log_errno(errno, FI_FMT ": packet socket: cannot name interface %d",
				 FI_ARG(fi), idx);
	}
	ifr.ifr_name[IFNAMSIZ - 1] = 0;
	*out = strdup(ifr.ifr_name);
	return *out ? 0 : log_errno(ENOMEM, FI_FMT, FI_ARG(fi));
}

/* What packet_diag tells of our socket (@fi). */
static int diag_parse(const struct fd_info *fi, const struct nlmsghdr *h, SkPacketEntry *e)
{
	const struct packet_diag_msg *m = NLMSG_DATA(h);
	int len = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
	int ret;

	for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		switch (a->rta_type) {
		case PACKET_DIAG_RX_RING:
		case PACKET_DIAG_TX_RING:
			log_err(FI_FMT ": packet socket: it has an mmap'ed %s ring (PACKET_%s_RING): "
				"not supported", FI_ARG(fi),
				a->rta_type == PACKET_DIAG_RX_RING ? "receive" : "transmit",
				a->rta_type == PACKET_DIAG_RX_RING ? "RX" : "TX");
			return -EOPNOTSUPP;
		case PACKET_DIAG_FANOUT:
			log_err(FI_FMT ": packet socket: it is in a fanout group (PACKET_FANOUT): "
				"not supported", FI_ARG(fi));
			return -EOPNOTSUPP;
		case PACKET_DIAG_MCLIST: {
			struct packet_diag_mclist *mc = RTA_DATA(a);
			size_t n = RTA_PAYLOAD(a) / sizeof(*mc);

			if (n > PK_MC_MAX) {
				log_err(FI_FMT ": packet socket: %zu memberships: not supported",
					FI_ARG(fi), n);
				return -EOPNOTSUPP;
			}
			e->mc = calloc(n ? n : 1, sizeof(*e->mc));
			if (!e->mc)
				return log_errno(ENOMEM, FI_FMT, FI_ARG(fi));
			for (size_t i = 0; i < n; i++) {
				SkPacketMc *c = malloc(sizeof(*c));

				if (!c)
					return log_errno(ENOMEM, FI_FMT, FI_ARG(fi));
				sk_packet_mc__init(c);
				e->mc[e->n_mc++] = c;
				c->type = mc[i].pdmc_type;
				c->count = mc[i].pdmc_count;
				ret = if_name(fi, mc[i].pdmc_index, "membership's interface", &c->ifname);
				if (ret)
					return ret;
				if (mc[i].pdmc_alen > PK_ADDR_MAX) {
					log_err(FI_FMT ": packet socket: a membership with a %u-byte "
						"address", FI_ARG(fi), mc[i].pdmc_alen);
					return -EOPNOTSUPP;
				}
				if (mc[i].pdmc_alen) {
					c->addr.data = malloc(mc[i].pdmc_alen);
					if (!c->addr.data)
						return log_errno(ENOMEM, FI_FMT, FI_ARG(fi));
					memcpy(c->addr.data, mc[i].pdmc_addr, mc[i].pdmc_alen);
					c->addr.len = mc[i].pdmc_alen;
					c->has_addr = true;
				}
			}
			break;
		}
		}
	}
	return 0;
}

struct pk_find {
	const struct fd_info *fi;
	SkPacketEntry *e;
	bool failed;		/* diag_parse() failed, and said why */
};

static int diag_one(const struct nlmsghdr *h, void *arg)
{
	struct pk_find *f = arg;
	int ret;

	if (((const struct packet_diag_msg *)NLMSG_DATA(h))->pdiag_ino != f->fi->st.st_ino)
		return 0;
	ret = diag_parse(f->fi, h, f->e);
	f->failed = ret;
	return ret ? ret : 1;
}

/* Look our socket up in a packet_diag dump of its namespace. */
static int dump_diag(const struct fd_info *fi, int nsfd, SkPacketEntry *e)
{
	struct {
		struct nlmsghdr nlh;
		struct packet_diag_req r;
	} req = {
		.nlh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
		.r = { .sdiag_family = AF_PACKET, .pdiag_ino = fi->st.st_ino,
		       .pdiag_show = PACKET_SHOW_INFO | PACKET_SHOW_MCLIST |
				     PACKET_SHOW_RING_CFG | PACKET_SHOW_FANOUT,
		       .pdiag_cookie = { ~0u, ~0u } },
	};
	struct pk_find f = { .fi = fi, .e = e };
	int ret = sk_diag_query(nsfd, &req, sizeof(req), sizeof(struct packet_diag_msg),
				diag_one, &f);

	if (ret == 1)
		return 0;
	if (ret < 0)
		return f.failed ? ret : log_errno(-ret, FI_FMT ": packet socket: packet_diag",
						  FI_ARG(fi));
	log_err(FI_FMT ": packet socket: not found by packet_diag (inode %llu)", FI_ARG(fi),
		(unsigned long long)fi->st.st_ino);
	return -ENOENT;
}

static int pk_dump_entry(const struct fd_info *fi, SkPacketEntry *e)
{
	struct sockaddr_ll sll;
	socklen_t l = sizeof(sll);
	int v, nsfd, ret;

	ret = get_int(fi, SOL_SOCKET, SO_TYPE, "SO_TYPE", &v);
	if (ret)
		return ret;
	if (v != SOCK_RAW && v != SOCK_DGRAM) {
		log_err(FI_FMT ": packet socket of type %d (SOCK_PACKET?): not supported",
			FI_ARG(fi), v);
		return -EOPNOTSUPP;
	}
	e->type = v;
	memset(&sll, 0, sizeof(sll));
	if (getsockname(fi->lfd, (struct sockaddr *)&sll, &l) < 0)
		return log_errno(errno, FI_FMT ": packet socket: getsockname", FI_ARG(fi));
	e->protocol = ntohs(sll.sll_protocol);
	if (sll.sll_ifindex) {
		ret = if_name(fi, sll.sll_ifindex, "bound interface", &e->ifname);
		if (ret)
			return ret;
	}
	for (size_t i = 0; i < NR_PK_OPTS; i++) {
		const struct pk_opt *o = &pk_opts[i];

		ret = get_int(fi, SOL_PACKET, o->name, o->str, &v);
		if (ret)
			return ret;
		*(protobuf_c_boolean *)((char *)e + o->off_has) = true;
		if (o->is_bool)
			*(protobuf_c_boolean *)((char *)e + o->off_val) = !!v;
		else
			*(uint32_t *)((char *)e + o->off_val) = v;
	}
	ret = get_int(fi, SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF", &v);
	if (ret)
		return ret;
	e->has_sndbuf = true;
	e->sndbuf = v;
	ret = get_int(fi, SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF", &v);
	if (ret)
		return ret;
	e->has_rcvbuf = true;
	e->rcvbuf = v;
	ret = files_sk_dump_filter(fi, "packet socket", &e->filter, &e->has_filter,
				   &e->has_filter_locked, &e->filter_locked);
	if (ret)
		return ret;
	nsfd = sk_diag_netns(fi, &e->netns);
	if (nsfd < 0)
		return nsfd;
	ret = dump_diag(fi, nsfd, e);
	close(nsfd);
	if (ret)
		return ret;
	log_debug(FI_FMT ": %s packet socket, protocol 0x%04x, interface %s, %zu memberships "
		  "(queued frames are dropped)", FI_ARG(fi), type_name(e->type), e->protocol,
		  e->ifname ? e->ifname : "(any)", e->n_mc);
	return 0;
}

static int pk_dump(const struct fd_info *fi, FileEntry *fe)
{
	SkPacketEntry *e = malloc(sizeof(*e));
	size_t len;
	int ret;

	if (!e)
		return log_errno(ENOMEM, FI_FMT, FI_ARG(fi));
	sk_packet_entry__init(e);
	ret = pk_dump_entry(fi, e);
	if (ret)
		goto out;
	len = sk_packet_entry__get_packed_size(e);
	fe->packet.data = malloc(len ? len : 1);
	if (!fe->packet.data) {
		ret = log_errno(ENOMEM, FI_FMT, FI_ARG(fi));
		goto out;
	}
	fe->packet.len = sk_packet_entry__pack(e, fe->packet.data);
	fe->has_packet = true;
out:
	sk_packet_entry__free_unpacked(e, NULL);	/* malloc'd as it expects */
	return ret;
}

/* --- validation ---------------------------------------------------------------- */

static SkPacketEntry *unpack_entry(const FileEntry *fe)
{
	if (!fe->has_packet || !fe->packet.len || !fe->packet.data)
		return NULL;
	return sk_packet_entry__unpack(NULL, fe->packet.len, fe->packet.data);
}

static bool ifname_ok(const char *n)
{
	return n && *n && strlen(n) < IFNAMSIZ && !strchr(n, '/');
}

static const char *pk_check(const FileEntry *fe, const SkPacketEntry *e)
{
	if (e->type != SOCK_RAW && e->type != SOCK_DGRAM)
		return "type";
	if (e->protocol > 0xffff)
		return "protocol";
	if (e->ifname && !ifname_ok(e->ifname))
		return "interface name";
	if (e->version > TPACKET_V3 || e->reserve > INT_MAX || e->timestamp > INT_MAX)
		return "option";
	if (e->vnet_hdr && e->type != SOCK_RAW)
		return "PACKET_VNET_HDR";
	if (e->sndbuf > INT_MAX || e->rcvbuf > INT_MAX)
		return "buffer size";
	if (e->has_filter && (!e->filter.len || !e->filter.data ||
			      e->filter.len % sizeof(struct sock_filter) ||
			      e->filter.len > FILES_SK_FILTER_MAX * sizeof(struct sock_filter)))
		return "filter";
	if (e->n_mc > PK_MC_MAX || (e->n_mc && !e->mc))
		return "memberships";
	for (size_t i = 0; i < e->n_mc; i++) {
		const SkPacketMc *c = e->mc[i];

		if (!c || !ifname_ok(c->ifname) || !c->count || c->count > PK_MC_COUNT_MAX ||
		    c->type > 0xffff || (c->has_addr && (c->addr.len > PK_ADDR_MAX ||
							 (c->addr.len && !c->addr.data))))
			return "membership";
	}
	if ((fe->flags & O_ACCMODE) != O_RDWR || (fe->flags & (O_PATH | O_DIRECTORY)))
		return "open flags";
	return NULL;
}

static int pk_validate(const FileEntry *fe)
{
	SkPacketEntry *e = unpack_entry(fe);
	const char *why;

	if (!e) {
		log_err(FE_FMT ": missing or unreadable packet socket data", FE_ARG(fe));
		return -EINVAL;
	}
	why = pk_check(fe, e);
	sk_packet_entry__free_unpacked(e, NULL);
	if (why) {
		log_err(FE_FMT ": bad packet socket entry (%s)", FE_ARG(fe), why);
		return -EINVAL;
	}
	return 0;
}

/* --- restore --------------------------------------------------------------------- */

static int set_int(const FileEntry *fe, int fd, int level, int name, const char *what, int v)
{
	if (setsockopt(fd, level, name, &v, sizeof(v)) < 0)
		return log_errno(errno, FE_FMT ": packet socket: setsockopt(%s, %d)", FE_ARG(fe),
				 what, v);
	return 0;
}

/* The index of interface @name in our network namespace. */
static int if_index(const FileEntry *fe, int fd, const char *name, const char *what)
{
	struct ifreq ifr = { 0 };

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) {
		if (errno == ENODEV) {
			log_err(FE_FMT ": packet socket: its %s %s does not exist in this network "
				"namespace", FE_ARG(fe), what, name);
			return -ENODEV;
		}
		return log_errno(errno, FE_FMT ": packet socket: cannot find interface %s",
				 FE_ARG(fe), name);
	}
	return ifr.ifr_ifindex;
}

static int pk_restore(const FileEntry *fe, const SkPacketEntry *e, int fd)
{
	int ret;

	for (size_t i = 0; i < NR_PK_OPTS; i++) {
		const struct pk_opt *o = &pk_opts[i];
		uint32_t v = opt_get(e, o);

		/* the defaults are left alone (PACKET_VNET_HDR: SOCK_RAW only) */
		if (!*(const protobuf_c_boolean *)((const char *)e + o->off_has) || !v)
			continue;
		ret = set_int(fe, fd, SOL_PACKET, o->name, o->str, v);
		if (ret)
			return ret;
	}
	if (e->has_filter) {
		struct sock_fprog p = { .len = e->filter.len / sizeof(struct sock_filter),
					.filter = (struct sock_filter *)e->filter.data };

		if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &p, sizeof(p)) < 0)
			return log_errno(errno, FE_FMT ": packet socket: cannot attach its socket "
					 "filter (%u instructions)", FE_ARG(fe), p.len);
		if (e->filter_locked) {
			ret = set_int(fe, fd, SOL_SOCKET, SO_LOCK_FILTER, "SO_LOCK_FILTER", 1);
			if (ret)
				return ret;
		}
	}
	/* getsockopt gives twice what was set */
	if (e->has_sndbuf) {
		ret = set_int(fe, fd, SOL_SOCKET, SO_SNDBUFFORCE, "SO_SNDBUFFORCE", e->sndbuf / 2);
		if (ret)
			return ret;
	}
	if (e->has_rcvbuf) {
		ret = set_int(fe, fd, SOL_SOCKET, SO_RCVBUFFORCE, "SO_RCVBUFFORCE", e->rcvbuf / 2);
		if (ret)
			return ret;
	}
	if (e->protocol || e->ifname) {
		struct sockaddr_ll sll = { .sll_family = AF_PACKET,
					   .sll_protocol = htons(e->protocol) };

		if (e->ifname) {
			ret = if_index(fe, fd, e->ifname, "bound interface");
			if (ret < 0)
				return ret;
			sll.sll_ifindex = ret;
		}
		if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
			return log_errno(errno, FE_FMT ": packet socket: cannot bind to protocol "
					 "0x%04x on %s", FE_ARG(fe), e->protocol,
					 e->ifname ? e->ifname : "every interface");
	}
	for (size_t i = 0; i < e->n_mc; i++) {
		const SkPacketMc *c = e->mc[i];
		struct pk_mreq mr = { .mr_type = c->type };

		ret = if_index(fe, fd, c->ifname, "membership's interface");
		if (ret < 0)
			return ret;
		mr.mr_ifindex = ret;
		if (c->has_addr) {
			mr.mr_alen = c->addr.len;
			memcpy(mr.mr_address, c->addr.data, c->addr.len);
		}
		for (uint32_t k = 0; k < c->count; k++)
			if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0)
				return log_errno(errno, FE_FMT ": packet socket: cannot add its "
						 "membership (type %u) on %s", FE_ARG(fe), c->type,
						 c->ifname);
	}
	return 0;
}

static int pk_open(const FileEntry *fe, struct files_rst *fr)
{
	SkPacketEntry *e = unpack_entry(fe);
	struct stat nst;
	int fd, ret;

	(void)fr;
	if (!e)
		return log_errno(EINVAL, FE_FMT ": unreadable packet socket data", FE_ARG(fe));
	if (stat("/proc/thread-self/ns/net", &nst) < 0) {
		ret = log_errno(errno, FE_FMT ": cannot find our network namespace", FE_ARG(fe));
		goto out;
	}
	if (nst.st_ino != e->netns) {
		log_err(FE_FMT ": packet socket was dumped in network namespace %llu, kup restore "
			"runs in %llu: run it in that namespace (nsenter --net=...)", FE_ARG(fe),
			(unsigned long long)e->netns, (unsigned long long)nst.st_ino);
		ret = -EINVAL;
		goto out;
	}
	/* no protocol: nothing is received before the bind */
	fd = socket(AF_PACKET, e->type | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = log_errno(errno, FE_FMT ": cannot create a %s packet socket", FE_ARG(fe),
				type_name(e->type));
		goto out;
	}
	ret = pk_restore(fe, e, fd);
	if (ret)
		close(fd);
	else
		ret = fd;
out:
	sk_packet_entry__free_unpacked(e, NULL);
	return ret;
}

const struct file_kind_ops files_sk_packet_ops = {
	.kind = FILE_KIND__FILE_PACKET_SK,
	.name = "packet socket",
	.match = pk_match,
	.dump = pk_dump,
	.validate = pk_validate,
	.open = pk_open,
};
