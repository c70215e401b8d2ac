// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Netlink sockets (route, generic, uevent, audit, sock_diag...).
 *
 * Dump: through our copy of the fd: SO_PROTOCOL and SO_TYPE, getsockname
 * (the bound port id), getpeername (a connected socket's peer port id and
 * group), NETLINK_LIST_MEMBERSHIPS (every multicast group, the legacy
 * bitmask of bind() included), the NETLINK_* options and the buffer sizes,
 * and the namespace (SIOCGSKNS).  These queries see one socket, in any
 * namespace; netlink_diag only lists every netlink socket of a namespace
 * (no lookup by inode) and lacks options such as NETLINK_EXT_ACK and
 * NETLINK_GET_STRICT_CHK.  Messages queued on the socket are not kept:
 * they are the kernel's notifications and answers, which a new kernel
 * would not send in the same form anyway (docs/sockets.md).
 *
 * Restore, in the master: socket(), the options, bind() to the dumped port
 * id (it must be free: the error names it), each group joined with
 * NETLINK_ADD_MEMBERSHIP, connect() to the dumped peer, the buffer sizes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/sockios.h>

#include "files.h"
#include "sk-diag.h"
#include "kup-sk-netlink.pb-c.h"
#include "log.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

#define NL_PROTO_MAX	32	/* MAX_LINKS */
#define NL_GROUP_WORDS	64	/* 2048 groups */

/* The boolean options kept, in restore order. */
static const struct nl_opt {
	int name;
	const char *str;
	size_t off_has, off_val;
} nl_opts[] = {
#define NL_OPT(n, f) { n, #n, offsetof(SkNetlinkEntry, has_##f), offsetof(SkNetlinkEntry, f) }
	NL_OPT(NETLINK_PKTINFO, pktinfo),
	NL_OPT(NETLINK_NO_ENOBUFS, no_enobufs),
	NL_OPT(NETLINK_BROADCAST_ERROR, broadcast_error),
	NL_OPT(NETLINK_CAP_ACK, cap_ack),
	NL_OPT(NETLINK_EXT_ACK, ext_ack),
	NL_OPT(NETLINK_GET_STRICT_CHK, get_strict_chk),
	NL_OPT(NETLINK_LISTEN_ALL_NSID, listen_all_nsid),
#undef NL_OPT
};
#define NR_NL_OPTS (sizeof(nl_opts) / sizeof(nl_opts[0]))

static const char *proto_name(uint32_t p)
{
	static const char *const names[] = {
		[NETLINK_ROUTE] = "route", [NETLINK_USERSOCK] = "usersock",
		[NETLINK_FIREWALL] = "firewall", [NETLINK_SOCK_DIAG] = "sock_diag",
		[NETLINK_NFLOG] = "nflog", [NETLINK_XFRM] = "xfrm",
		[NETLINK_SELINUX] = "selinux", [NETLINK_ISCSI] = "iscsi",
		[NETLINK_AUDIT] = "audit", [NETLINK_FIB_LOOKUP] = "fib_lookup",
		[NETLINK_CONNECTOR] = "connector", [NETLINK_NETFILTER] = "netfilter",
		[NETLINK_IP6_FW] = "ip6_fw", [NETLINK_DNRTMSG] = "dnrtmsg",
		[NETLINK_KOBJECT_UEVENT] = "uevent", [NETLINK_GENERIC] = "generic",
		[NETLINK_SCSITRANSPORT] = "scsitransport", [NETLINK_ECRYPTFS] = "ecryptfs",
		[NETLINK_RDMA] = "rdma", [NETLINK_CRYPTO] = "crypto", [NETLINK_SMC] = "smc",
	};

	if (p < sizeof(names) / sizeof(names[0]) && names[p])
		return names[p];
	return "netlink";
}

/* --- dump ------------------------------------------------------------------- */

static bool nl_match(const struct fd_info *fi)
{
	int fam = -1;
	socklen_t l = sizeof(fam);

	return S_ISSOCK(fi->st.st_mode) && !(fi->flags & O_PATH) &&
	       getsockopt(fi->lfd, SOL_SOCKET, SO_DOMAIN, &fam, &l) == 0 && fam == AF_NETLINK;
}

static int get_opt(const struct fd_info *fi, int level, int name, const char *what, int *v)
{
	socklen_t l = sizeof(*v);

	*v = 0;
	if (getsockopt(fi->lfd, level, name, v, &l) < 0)
		return log_errno(errno, FI_FMT ": netlink socket: getsockopt(%s)", FI_ARG(fi), what);
	return 0;
}

static int dump_groups(const struct fd_info *fi, SkNetlinkEntry *e)
{
	uint32_t g[NL_GROUP_WORDS] = { 0 };
	socklen_t l = sizeof(g);
	size_t n;

	if (getsockopt(fi->lfd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, g, &l) < 0)
		return log_errno(errno, FI_FMT ": netlink socket: NETLINK_LIST_MEMBERSHIPS",
				 FI_ARG(fi));
	if (l > sizeof(g)) {
		log_err(FI_FMT ": netlink socket: more than %d multicast groups: not supported",
			FI_ARG(fi), NL_GROUP_WORDS * 32);
		return -EOPNOTSUPP;
	}
	for (n = l / 4; n && !g[n - 1]; n--)
		;
	if (!n)
		return 0;
	e->groups = malloc(n * sizeof(*e->groups));
	if (!e->groups)
		return -ENOMEM;
	memcpy(e->groups, g, n * sizeof(*e->groups));
	e->n_groups = n;
	return 0;
}

static int nl_dump_entry(const struct fd_info *fi, SkNetlinkEntry *e)
{
	struct sockaddr_nl sa;
	socklen_t l;
	char peek[16];
	ssize_t q;
	int v, nsfd, ret;

	ret = get_opt(fi, SOL_SOCKET, SO_PROTOCOL, "SO_PROTOCOL", &v);
	if (ret)
		return ret;
	e->protocol = v;
	ret = get_opt(fi, SOL_SOCKET, SO_TYPE, "SO_TYPE", &v);
	if (ret)
		return ret;
	e->type = v;
	nsfd = sk_diag_netns(fi, &e->netns);
	if (nsfd < 0)
		return nsfd;
	close(nsfd);
	l = sizeof(sa);
	memset(&sa, 0, sizeof(sa));
	if (getsockname(fi->lfd, (struct sockaddr *)&sa, &l) < 0)
		return log_errno(errno, FI_FMT ": netlink socket: getsockname", FI_ARG(fi));
	if (sa.nl_pid) {
		e->has_portid = true;
		e->portid = sa.nl_pid;
	}
	l = sizeof(sa);
	memset(&sa, 0, sizeof(sa));
	if (getpeername(fi->lfd, (struct sockaddr *)&sa, &l) == 0 && (sa.nl_pid || sa.nl_groups)) {
		e->has_dst_portid = e->has_dst_group = true;
		e->dst_portid = sa.nl_pid;
		e->dst_group = sa.nl_groups;
	}
	ret = dump_groups(fi, e);
	if (ret)
		return ret == -ENOMEM ? log_errno(ret, FI_FMT, FI_ARG(fi)) : ret;
	for (size_t i = 0; i < NR_NL_OPTS; i++) {
		ret = get_opt(fi, SOL_NETLINK, nl_opts[i].name, nl_opts[i].str, &v);
		if (ret)
			return ret;
		*(protobuf_c_boolean *)((char *)e + nl_opts[i].off_has) = true;
		*(protobuf_c_boolean *)((char *)e + nl_opts[i].off_val) = !!v;
	}
	ret = get_opt(fi, SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF", &v);
	if (ret)
		return ret;
	e->has_sndbuf = true;
	e->sndbuf = v;
	ret = get_opt(fi, SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF", &v);
	if (ret)
		return ret;
	e->has_rcvbuf = true;
	e->rcvbuf = v;
	q = recv(fi->lfd, peek, sizeof(peek), MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC);
	if (q >= 0)
		log_debug(FI_FMT ": %s netlink socket: its queued messages are dropped",
			  FI_ARG(fi), proto_name(e->protocol));
	log_debug(FI_FMT ": %s netlink socket, port id %u, %zu group words", FI_ARG(fi),
		  proto_name(e->protocol), e->portid, e->n_groups);
	return 0;
}

static int nl_dump(const struct fd_info *fi, FileEntry *fe)
{
	SkNetlinkEntry *e = malloc(sizeof(*e));
	size_t len;
	int ret;

	if (!e)
		return log_errno(ENOMEM, FI_FMT, FI_ARG(fi));
	sk_netlink_entry__init(e);
	ret = nl_dump_entry(fi, e);
	if (ret)
		goto out;
	len = sk_netlink_entry__get_packed_size(e);
	fe->sk.data = malloc(len ? len : 1);
	if (!fe->sk.data) {
		ret = log_errno(ENOMEM, FI_FMT, FI_ARG(fi));
		goto out;
	}
	fe->sk.len = sk_netlink_entry__pack(e, fe->sk.data);
	fe->has_sk = true;
out:
	sk_netlink_entry__free_unpacked(e, NULL);	/* malloc'd as it expects */
	return ret;
}

/* --- validation ---------------------------------------------------------------- */

static SkNetlinkEntry *unpack_entry(const FileEntry *fe)
{
	if (!fe->has_sk || !fe->sk.len || !fe->sk.data)
		return NULL;
	return sk_netlink_entry__unpack(NULL, fe->sk.len, fe->sk.data);
}

static int nl_validate(const FileEntry *fe)
{
	SkNetlinkEntry *e = unpack_entry(fe);
	const char *why = NULL;

	if (!e) {
		log_err(FE_FMT ": missing or unreadable netlink socket data", FE_ARG(fe));
		return -EINVAL;
	}
	if (e->protocol >= NL_PROTO_MAX)
		why = "protocol";
	else if (e->type != SOCK_RAW && e->type != SOCK_DGRAM)
		why = "type";
	else if (e->n_groups > NL_GROUP_WORDS || (e->n_groups && !e->groups))
		why = "groups";
	else if (e->sndbuf > INT_MAX || e->rcvbuf > INT_MAX)
		why = "buffer size";
	else if ((fe->flags & O_ACCMODE) != O_RDWR || (fe->flags & (O_PATH | O_DIRECTORY)))
		why = "open flags";
	sk_netlink_entry__free_unpacked(e, NULL);
	if (why) {
		log_err(FE_FMT ": bad netlink socket entry (%s)", FE_ARG(fe), why);
		return -EINVAL;
	}
	return 0;
}

/* --- restore --------------------------------------------------------------------- */

static int set_opt(const FileEntry *fe, int fd, int level, int name, const char *what, int v)
{
	if (setsockopt(fd, level, name, &v, sizeof(v)) < 0)
		return log_errno(errno, FE_FMT ": setsockopt(%s, %d)", FE_ARG(fe), what, v);
	return 0;
}

static int nl_restore(const FileEntry *fe, const SkNetlinkEntry *e, int fd)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int ret;

	for (size_t i = 0; i < NR_NL_OPTS; i++) {
		if (!*(const protobuf_c_boolean *)((const char *)e + nl_opts[i].off_val))
			continue;
		ret = set_opt(fe, fd, SOL_NETLINK, nl_opts[i].name, nl_opts[i].str, 1);
		if (ret)
			return ret;
	}
	if (e->portid) {
		sa.nl_pid = e->portid;
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			if (errno == EADDRINUSE)
				log_err(FE_FMT ": %s netlink socket: port id %u is taken by another "
					"socket", FE_ARG(fe), proto_name(e->protocol), e->portid);
			else
				log_errno(errno, FE_FMT ": %s netlink socket: cannot bind to port id %u",
					  FE_ARG(fe), proto_name(e->protocol), e->portid);
			return errno == EADDRINUSE ? -EADDRINUSE : -errno;
		}
	}
	for (size_t w = 0; w < e->n_groups; w++)
		for (int b = 0; b < 32; b++) {
			int g = w * 32 + b + 1;

			if (!(e->groups[w] & (1u << b)))
				continue;
			if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof(g)) < 0)
				return log_errno(errno, FE_FMT ": %s netlink socket: cannot join "
						 "group %d", FE_ARG(fe), proto_name(e->protocol), g);
		}
	if (e->dst_portid || e->dst_group) {
		struct sockaddr_nl da = { .nl_family = AF_NETLINK, .nl_pid = e->dst_portid,
					  .nl_groups = e->dst_group };

		if (connect(fd, (struct sockaddr *)&da, sizeof(da)) < 0)
			return log_errno(errno, FE_FMT ": %s netlink socket: cannot connect to "
					 "port id %u group %u", FE_ARG(fe), proto_name(e->protocol),
					 e->dst_portid, e->dst_group);
	}
	/* getsockopt gives twice what was set */
	ret = 0;
	if (e->has_sndbuf)
		ret = set_opt(fe, fd, SOL_SOCKET, SO_SNDBUFFORCE, "SO_SNDBUFFORCE", e->sndbuf / 2);
	if (!ret && e->has_rcvbuf)
		ret = set_opt(fe, fd, SOL_SOCKET, SO_RCVBUFFORCE, "SO_RCVBUFFORCE", e->rcvbuf / 2);
	return ret;
}

static int nl_open(const FileEntry *fe, struct files_rst *fr)
{
	SkNetlinkEntry *e = unpack_entry(fe);
	struct stat nst;
	int fd, ret;

	if (!e)
		return log_errno(EINVAL, FE_FMT ": unreadable netlink socket data", FE_ARG(fe));
	if (stat("/proc/thread-self/ns/net", &nst) < 0) {
		ret = log_errno(errno, FE_FMT ": cannot find our network namespace", FE_ARG(fe));
		goto out;
	}
	if (nst.st_ino != e->netns) {
		log_err(FE_FMT ": %s netlink socket was dumped in network namespace %llu, kup "
			"restore runs in %llu: run it in that namespace (nsenter --net=...)",
			FE_ARG(fe), proto_name(e->protocol), (unsigned long long)e->netns,
			(unsigned long long)nst.st_ino);
		ret = -EINVAL;
		goto out;
	}
	fd = socket(AF_NETLINK, e->type | SOCK_CLOEXEC, e->protocol);
	if (fd < 0) {
		ret = log_errno(errno, FE_FMT ": cannot create a %s netlink socket", FE_ARG(fe),
				proto_name(e->protocol));
		goto out;
	}
	ret = nl_restore(fe, e, fd);
	if (ret)
		close(fd);
	else
		ret = fd;
out:
	sk_netlink_entry__free_unpacked(e, NULL);
	return ret;
}

const struct file_kind_ops files_sk_netlink_ops = {
	.kind = FILE_KIND__FILE_NETLINK_SK,
	.name = "netlink socket",
	.match = nl_match,
	.dump = nl_dump,
	.validate = nl_validate,
	.open = nl_open,
};
