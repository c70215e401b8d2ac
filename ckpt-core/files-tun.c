// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tun/tap: an fd of /dev/net/tun attached to a device (one queue), and the
 * device itself.
 *
 * Dump: TUNGETIFF on our copy of the fd gives the device name and its
 * IFF_TUN/TAP, NO_PI, VNET_HDR, MULTI_QUEUE flags; the queue's vnet header
 * size, sndbuf and vnet endianness come from their TUNGET ioctls.  The device
 * is read over rtnetlink in its own network namespace (TUNGETDEVNETNS):
 * persist, owner and group (IFLA_TUN_*), MTU, txqueuelen, flags, carrier, link type,
 * MAC address, IPv6 address generation mode, its addresses and the routes
 * whose next hop is the device.  What the kernel makes by itself (prefix and
 * local routes, link-local and router-advertised addresses) is not kept: it
 * comes back with the addresses.  Refused, naming pid, fd and device: a fd
 * not attached (a queue detached with TUNSETQUEUE, or never attached), a
 * device in another network namespace than its process, one enslaved to a
 * bridge or bond, with XDP, a socket filter (TUNATTACHFILTER) or offloads
 * (TUNSETOFFLOAD), a route with several next hops, a nexthop object or an
 * encapsulation, and a device held outside the dumped tree (a queue, or
 * the same description: tun_dump_end() walks /proc/PID/fd).
 *
 * Restore (in the master, hence in the restorer's network namespace): the
 * first entry of a device creates it (TUNSETIFINDEX to its old index when
 * free, TUNSETIFF) and configures it (owner, group, link type, MTU,
 * txqueuelen, MAC, flags, addresses, up, routes); the other queues of a
 * multi-queue device attach to it.  A persistent device that still exists
 * is attached to (what it already has is kept); one that exists and has a
 * queue attached is refused.  A recreated device is made persistent only
 * once the whole tree is restored (rst_finish), so that a failed restore
 * takes it away with the restorer's fds.  Packets queued in the device at
 * dump time are lost.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <linux/ethtool.h>
#include <linux/if_addr.h>
#include <linux/if_arp.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <libmnl/libmnl.h>

#include "files.h"
#include "log.h"
#include "kup-tun.pb-c.h"

#ifndef IFA_PROTO_KERNEL_LL
#define IFA_PROTO_KERNEL_RA	2
#define IFA_PROTO_KERNEL_LL	3
#endif

#define TUN_MAJOR	10
#define TUN_MINOR	200
#define TUN_PATH	"/dev/net/tun"

/* TUNSETIFF flags given back at restore. */
#define TUN_IFF_KEPT	(IFF_TUN | IFF_TAP | IFF_NO_PI | IFF_ONE_QUEUE | IFF_VNET_HDR | \
			 IFF_MULTI_QUEUE | IFF_NAPI | IFF_NAPI_FRAGS)
/* Device flags given back (IFF_UP last). */
#define TUN_DEV_FLAGS	(IFF_UP | IFF_NOARP | IFF_MULTICAST | IFF_ALLMULTI | IFF_PROMISC | \
			 IFF_DEBUG | IFF_DYNAMIC)
/* Address flags one can ask for. */
#define TUN_IFA_FLAGS	(IFA_F_NODAD | IFA_F_HOMEADDRESS | IFA_F_MANAGETEMPADDR | \
			 IFA_F_NOPREFIXROUTE | IFA_F_MCAUTOJOIN)
#define TUN_LIST_MAX	4096	/* addresses, routes, metrics per device */

enum { FOBJ_TUN = 0x74756e01 };	/* dump: (netns, ifindex); restore: (hash, len) of the name */

static bool tun_match(const struct fd_info *fi)
{
	return S_ISCHR(fi->st.st_mode) && !(fi->flags & O_PATH) &&
	       major(fi->st.st_rdev) == TUN_MAJOR && minor(fi->st.st_rdev) == TUN_MINOR;
}

static size_t alen(uint32_t family)
{
	return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

/* --- rtnetlink ------------------------------------------------------------- */

struct nl {
	struct mnl_socket *s;
	unsigned int seq, portid;
	int iosk;		/* an AF_INET datagram socket of the same namespace (ioctls) */
};

static void nl_close(struct nl *nl)
{
	if (nl->s)
		mnl_socket_close(nl->s);
	if (nl->iosk >= 0)
		close(nl->iosk);
	nl->s = NULL;
	nl->iosk = -1;
}

/* Sockets of network namespace @nsfd (-1: ours). */
static int nl_open(struct nl *nl, int nsfd)
{
	int self = -1, ret = 0;

	nl->s = NULL;
	nl->iosk = -1;
	if (nsfd >= 0) {
		self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (self < 0)
			return log_errno(errno, "cannot open our network namespace");
		if (setns(nsfd, CLONE_NEWNET) < 0) {
			ret = log_errno(errno, "cannot enter the network namespace of a tun device");
			close(self);
			return ret;
		}
	}
	nl->s = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl->s || mnl_socket_bind(nl->s, 0, MNL_SOCKET_AUTOPID) < 0)
		ret = log_errno(errno, "cannot open an rtnetlink socket");
	nl->iosk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (!ret && nl->iosk < 0)
		ret = log_errno(errno, "cannot open a socket for device ioctls");
	if (self >= 0) {
		if (setns(self, CLONE_NEWNET) < 0 && !ret)
			ret = log_errno(errno, "cannot come back to our network namespace");
		close(self);
	}
	if (ret) {
		nl_close(nl);
		return ret;
	}
	nl->portid = mnl_socket_get_portid(nl->s);
	nl->seq = 1;
	return 0;
}

static struct nlmsghdr *nl_msg(struct nl *nl, char *buf, int type, int flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = ++nl->seq;
	return nlh;
}

/* Send @nlh, run @cb on each answer; 0 or -errno (the kernel's error). */
static int nl_talk(struct nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	char buf[32768];
	unsigned int seq = nlh->nlmsg_seq;
	ssize_t n;
	int r;

	if (mnl_socket_sendto(nl->s, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		n = mnl_socket_recvfrom(nl->s, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		r = mnl_cb_run(buf, n, seq, nl->portid, cb, data);
	} while (r > MNL_CB_STOP);
	return r < 0 ? -errno : 0;
}

/* --- dump: the device -------------------------------------------------------- */

struct tun_dev {
	TunEntry *e;
	const struct fd_info *fi;
	int ifindex;
	bool seen, is_tun, master, xdp;
	uint32_t queues, disabled;
	int err;
};

static void parse_tun_data(const struct nlattr *nest, struct tun_dev *dv)
{
	const struct nlattr *a;

	mnl_attr_for_each_nested(a, nest) {
		switch (mnl_attr_get_type(a)) {
		case IFLA_TUN_OWNER:
			dv->e->has_owner = true;
			dv->e->owner = mnl_attr_get_u32(a);
			break;
		case IFLA_TUN_GROUP:
			dv->e->has_group = true;
			dv->e->group = mnl_attr_get_u32(a);
			break;
		case IFLA_TUN_PI:
			if (!mnl_attr_get_u8(a))
				dv->e->iff |= IFF_NO_PI;
			break;
		case IFLA_TUN_PERSIST:
			dv->e->persist = mnl_attr_get_u8(a) != 0;
			break;
		case IFLA_TUN_NUM_QUEUES:
			dv->queues = mnl_attr_get_u32(a);
			break;
		case IFLA_TUN_NUM_DISABLED_QUEUES:
			dv->disabled = mnl_attr_get_u32(a);
			break;
		}
	}
}

static void parse_linkinfo(const struct nlattr *nest, struct tun_dev *dv)
{
	const struct nlattr *a;

	mnl_attr_for_each_nested(a, nest) {
		if (mnl_attr_get_type(a) == IFLA_INFO_KIND)
			dv->is_tun = !strcmp(mnl_attr_get_str(a), "tun");
		else if (mnl_attr_get_type(a) == IFLA_INFO_DATA)
			parse_tun_data(a, dv);
	}
}

static void parse_af_spec(const struct nlattr *nest, struct tun_dev *dv)
{
	const struct nlattr *a, *b;

	mnl_attr_for_each_nested(a, nest) {
		if (mnl_attr_get_type(a) != AF_INET6)
			continue;
		mnl_attr_for_each_nested(b, a) {
			if (mnl_attr_get_type(b) == IFLA_INET6_ADDR_GEN_MODE) {
				dv->e->has_addr_gen_mode = true;
				dv->e->addr_gen_mode = mnl_attr_get_u8(b);
			}
		}
	}
}

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	struct tun_dev *dv = data;
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *a, *b;
	TunEntry *e = dv->e;

	if (nlh->nlmsg_type != RTM_NEWLINK || ifi->ifi_index != dv->ifindex)
		return MNL_CB_OK;
	dv->seen = true;
	e->link_type = ifi->ifi_type;
	e->dev_flags = ifi->ifi_flags & TUN_DEV_FLAGS;
	/* up with a queue attached but no carrier: TUNSETCARRIER 0 */
	if ((ifi->ifi_flags & IFF_UP) && !(ifi->ifi_flags & IFF_LOWER_UP)) {
		e->has_carrier_off = true;
		e->carrier_off = true;
	}
	mnl_attr_for_each(a, nlh, sizeof(*ifi)) {
		switch (mnl_attr_get_type(a)) {
		case IFLA_MTU:
			e->mtu = mnl_attr_get_u32(a);
			break;
		case IFLA_TXQLEN:
			e->txqlen = mnl_attr_get_u32(a);
			break;
		case IFLA_ADDRESS:
			if (mnl_attr_get_payload_len(a) == 6 && !e->has_hwaddr) {
				e->hwaddr.data = malloc(6);
				if (!e->hwaddr.data)
					return MNL_CB_ERROR;
				memcpy(e->hwaddr.data, mnl_attr_get_payload(a), 6);
				e->hwaddr.len = 6;
				e->has_hwaddr = true;
			}
			break;
		case IFLA_MASTER:
			dv->master = mnl_attr_get_u32(a) != 0;
			break;
		case IFLA_LINKINFO:
			parse_linkinfo(a, dv);
			break;
		case IFLA_AF_SPEC:
			parse_af_spec(a, dv);
			break;
		case IFLA_XDP:
			mnl_attr_for_each_nested(b, a)
				if (mnl_attr_get_type(b) == IFLA_XDP_ATTACHED &&
				    mnl_attr_get_u8(b) != XDP_ATTACHED_NONE)
					dv->xdp = true;
			break;
		}
	}
	return MNL_CB_OK;
}

static int dump_link(struct nl *nl, struct tun_dev *dv)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	const struct fd_info *fi = dv->fi;
	const char *name = dv->e->name;
	struct nlmsghdr *nlh = nl_msg(nl, buf, RTM_GETLINK, 0);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	int ret;

	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = dv->ifindex;
	ret = nl_talk(nl, nlh, link_cb, dv);
	if (ret || !dv->seen)
		return log_errno(ret ? ret : ENODEV, FI_FMT ": cannot read tun device %s",
				 FI_ARG(fi), name);
	if (!dv->is_tun) {
		log_err(FI_FMT ": %s is not a tun device", FI_ARG(fi), name);
		return -EINVAL;
	}
	if (dv->master) {
		log_err(FI_FMT ": tun device %s is enslaved to another device (bridge, bond): "
			"not supported", FI_ARG(fi), name);
		return -EOPNOTSUPP;
	}
	if (dv->xdp) {
		log_err(FI_FMT ": tun device %s has an XDP program: not supported", FI_ARG(fi),
			name);
		return -EOPNOTSUPP;
	}
	if (dv->disabled) {
		log_err(FI_FMT ": tun device %s has %u queue(s) detached with TUNSETQUEUE: not "
			"supported", FI_ARG(fi), name, dv->disabled);
		return -EOPNOTSUPP;
	}
	return 0;
}

/* --- dump: addresses --------------------------------------------------------- */

static int bin_set(ProtobufCBinaryData *b, protobuf_c_boolean *has, const void *p, size_t len)
{
	b->data = malloc(len);
	if (!b->data)
		return -ENOMEM;
	memcpy(b->data, p, len);
	b->len = len;
	if (has)
		*has = true;
	return 0;
}

static int list_add(void ***v, size_t *n, void *x)
{
	void **nv;

	if (*n >= TUN_LIST_MAX)
		return -E2BIG;
	nv = realloc(*v, (*n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	nv[(*n)++] = x;
	*v = nv;
	return 0;
}

static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
	struct tun_dev *dv = data;
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *a, *local = NULL, *addr = NULL, *brd = NULL, *label = NULL;
	const struct ifa_cacheinfo *ci = NULL;
	uint32_t flags = ifa->ifa_flags, prio = 0, proto = 0;
	size_t len = alen(ifa->ifa_family);
	bool has_prio = false;
	TunAddr *x;

	if (nlh->nlmsg_type != RTM_NEWADDR || (int)ifa->ifa_index != dv->ifindex || !len ||
	    dv->err)
		return MNL_CB_OK;
	mnl_attr_for_each(a, nlh, sizeof(*ifa)) {
		size_t pl = mnl_attr_get_payload_len(a);

		switch (mnl_attr_get_type(a)) {
		case IFA_LOCAL:
			local = pl == len ? a : NULL;
			break;
		case IFA_ADDRESS:
			addr = pl == len ? a : NULL;
			break;
		case IFA_BROADCAST:
			brd = pl == len ? a : NULL;
			break;
		case IFA_LABEL:
			label = a;
			break;
		case IFA_FLAGS:
			flags = mnl_attr_get_u32(a);
			break;
		case IFA_CACHEINFO:
			if (pl >= sizeof(*ci))
				ci = mnl_attr_get_payload(a);
			break;
		case IFA_RT_PRIORITY:
			prio = mnl_attr_get_u32(a);
			has_prio = true;
			break;
		case IFA_PROTO:
			proto = mnl_attr_get_u8(a);
			break;
		}
	}
	/* The kernel's own: made again when the device comes back. */
	if (proto == IFA_PROTO_KERNEL_LL || proto == IFA_PROTO_KERNEL_RA ||
	    (flags & IFA_F_TEMPORARY))
		return MNL_CB_OK;
	if (!local)
		local = addr;
	if (!local)
		return MNL_CB_OK;
	x = calloc(1, sizeof(*x));
	if (!x)
		goto nomem;
	tun_addr__init(x);
	x->family = ifa->ifa_family;
	x->prefixlen = ifa->ifa_prefixlen;
	x->flags = flags & TUN_IFA_FLAGS;
	x->scope = ifa->ifa_scope;
	if (list_add((void ***)&dv->e->addrs, &dv->e->n_addrs, x)) {
		tun_addr__free_unpacked(x, NULL);
		goto nomem;
	}
	if (bin_set(&x->local, NULL, mnl_attr_get_payload(local), len) ||
	    (addr && memcmp(mnl_attr_get_payload(addr), mnl_attr_get_payload(local), len) &&
	     bin_set(&x->peer, &x->has_peer, mnl_attr_get_payload(addr), len)) ||
	    (brd && bin_set(&x->broadcast, &x->has_broadcast, mnl_attr_get_payload(brd), len)))
		goto nomem;
	if (label && mnl_attr_get_payload_len(label) < IFNAMSIZ &&
	    strcmp(mnl_attr_get_str(label), dv->e->name)) {
		x->label = strndup(mnl_attr_get_str(label), IFNAMSIZ);
		if (!x->label)
			goto nomem;
	}
	if (ci && !(flags & IFA_F_PERMANENT) && ci->ifa_valid != 0xffffffffu) {
		x->has_valid_lft = x->has_preferred_lft = true;
		x->valid_lft = ci->ifa_valid;
		x->preferred_lft = ci->ifa_prefered;
	}
	x->has_rt_priority = has_prio;
	x->rt_priority = prio;
	return MNL_CB_OK;
nomem:
	dv->err = -ENOMEM;
	return MNL_CB_OK;
}

static int dump_addrs(struct nl *nl, struct tun_dev *dv)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = nl_msg(nl, buf, RTM_GETADDR, NLM_F_DUMP);
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	int ret;

	ifa->ifa_family = AF_UNSPEC;
	ifa->ifa_index = dv->ifindex;
	ret = nl_talk(nl, nlh, addr_cb, dv);
	if (!ret)
		ret = dv->err;
	if (ret)
		return log_errno(ret, FI_FMT ": cannot read the addresses of %s", FI_ARG(dv->fi),
				 dv->e->name);
	return 0;
}

/* --- dump: routes ------------------------------------------------------------ */

static bool multipath_uses(const struct nlattr *a, int ifindex)
{
	const struct rtnexthop *nh = mnl_attr_get_payload(a);
	int left = mnl_attr_get_payload_len(a);

	while (left >= (int)sizeof(*nh) && nh->rtnh_len >= sizeof(*nh) && nh->rtnh_len <= left) {
		if (nh->rtnh_ifindex == ifindex)
			return true;
		left -= RTNH_ALIGN(nh->rtnh_len);
		nh = RTNH_NEXT(nh);
	}
	return false;
}

static int route_metrics(const struct nlattr *nest, TunRoute *r)
{
	const struct nlattr *a;

	mnl_attr_for_each_nested(a, nest) {
		TunMetric *m;

		if (mnl_attr_get_type(a) == RTAX_CC_ALGO || mnl_attr_get_payload_len(a) != 4)
			return -EOPNOTSUPP;
		m = calloc(1, sizeof(*m));
		if (!m)
			return -ENOMEM;
		tun_metric__init(m);
		m->type = mnl_attr_get_type(a);
		m->value = mnl_attr_get_u32(a);
		if (list_add((void ***)&r->metrics, &r->n_metrics, m)) {
			free(m);
			return -ENOMEM;
		}
	}
	return 0;
}

/* "10.8.0.0/24 table 254" for messages. */
static void route_name(const struct rtmsg *rtm, const struct nlattr *dst, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "default";

	if (dst && mnl_attr_get_payload_len(dst) == alen(rtm->rtm_family))
		inet_ntop(rtm->rtm_family, mnl_attr_get_payload(dst), a, sizeof(a));
	snprintf(buf, len, "%s/%u", a, rtm->rtm_dst_len);
}

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
	struct tun_dev *dv = data;
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *a, *at[RTA_MAX + 1] = { 0 };
	size_t len = alen(rtm->rtm_family);
	const char *why = NULL;
	bool ours = false;
	char name[80];
	TunRoute *r;
	int unknown = 0;

	if (nlh->nlmsg_type != RTM_NEWROUTE || !len || dv->err)
		return MNL_CB_OK;
	mnl_attr_for_each(a, nlh, sizeof(*rtm)) {
		int t = mnl_attr_get_type(a);

		if (t > RTA_MAX) {
			unknown = t;
			continue;
		}
		at[t] = a;
		if (t == RTA_OIF && (int)mnl_attr_get_u32(a) == dv->ifindex)
			ours = true;
		if (t == RTA_MULTIPATH && multipath_uses(a, dv->ifindex))
			ours = true;
	}
	if (!ours || rtm->rtm_protocol == RTPROT_KERNEL || rtm->rtm_protocol == RTPROT_RA ||
	    (rtm->rtm_flags & RTM_F_CLONED))
		return MNL_CB_OK;
	route_name(rtm, at[RTA_DST], name, sizeof(name));
	for (int t = 0; t <= RTA_MAX && !unknown; t++) {
		if (!at[t])
			continue;
		switch (t) {
		case RTA_DST: case RTA_SRC: case RTA_OIF: case RTA_GATEWAY: case RTA_PREFSRC:
		case RTA_PRIORITY: case RTA_METRICS: case RTA_TABLE: case RTA_PREF:
		case RTA_EXPIRES: case RTA_CACHEINFO:
			break;
		case RTA_MULTIPATH:
			why = "several next hops";
			break;
		case RTA_NH_ID:
			why = "a nexthop object";
			break;
		case RTA_ENCAP: case RTA_ENCAP_TYPE:
			why = "an encapsulation";
			break;
		case RTA_VIA:
			why = "a next hop of another family";
			break;
		default:
			unknown = t;
		}
	}
	if (unknown || why) {
		if (why)
			log_err(FI_FMT ": route %s through tun device %s has %s: not supported",
				FI_ARG(dv->fi), name, dv->e->name, why);
		else
			log_err(FI_FMT ": route %s through tun device %s has attribute %d: not "
				"supported", FI_ARG(dv->fi), name, dv->e->name, unknown);
		dv->err = -EOPNOTSUPP;
		return MNL_CB_OK;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		goto nomem;
	tun_route__init(r);
	if (list_add((void ***)&dv->e->routes, &dv->e->n_routes, r)) {
		free(r);
		goto nomem;
	}
	r->family = rtm->rtm_family;
	r->dst_len = rtm->rtm_dst_len;
	r->src_len = rtm->rtm_src_len;
	r->tos = rtm->rtm_tos;
	r->table = at[RTA_TABLE] ? mnl_attr_get_u32(at[RTA_TABLE]) : rtm->rtm_table;
	r->protocol = rtm->rtm_protocol;
	r->scope = rtm->rtm_scope;
	r->type = rtm->rtm_type;
	r->flags = rtm->rtm_flags & RTNH_F_ONLINK;
#define RT_BIN(attr, field)							\
	if (at[attr] && mnl_attr_get_payload_len(at[attr]) == len &&		\
	    bin_set(&r->field, &r->has_##field, mnl_attr_get_payload(at[attr]), len)) \
		goto nomem
	RT_BIN(RTA_DST, dst);
	RT_BIN(RTA_SRC, src);
	RT_BIN(RTA_GATEWAY, gateway);
	RT_BIN(RTA_PREFSRC, prefsrc);
#undef RT_BIN
	if (at[RTA_PRIORITY]) {
		r->has_priority = true;
		r->priority = mnl_attr_get_u32(at[RTA_PRIORITY]);
	}
	if (at[RTA_PREF]) {
		r->has_pref = true;
		r->pref = mnl_attr_get_u8(at[RTA_PREF]);
	}
	if (at[RTA_EXPIRES]) {
		r->has_expires = true;
		r->expires = mnl_attr_get_u32(at[RTA_EXPIRES]);
	}
	if (at[RTA_METRICS]) {
		int ret = route_metrics(at[RTA_METRICS], r);
		if (ret == -EOPNOTSUPP) {
			log_err(FI_FMT ": route %s through tun device %s has a congestion control "
				"metric: not supported", FI_ARG(dv->fi), name, dv->e->name);
			dv->err = ret;
			return MNL_CB_OK;
		}
		if (ret)
			goto nomem;
	}
	return MNL_CB_OK;
nomem:
	dv->err = -ENOMEM;
	return MNL_CB_OK;
}

static int dump_routes(struct nl *nl, struct tun_dev *dv)
{
	static const int fams[] = { AF_INET, AF_INET6 };

	for (size_t i = 0; i < 2; i++) {
		char buf[MNL_SOCKET_BUFFER_SIZE];
		struct nlmsghdr *nlh = nl_msg(nl, buf, RTM_GETROUTE, NLM_F_DUMP);
		struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
		int ret;

		rtm->rtm_family = fams[i];
		ret = nl_talk(nl, nlh, route_cb, dv);
		/* a kernel without IPv6 */
		if (ret == -EAFNOSUPPORT && fams[i] == AF_INET6)
			continue;
		if (ret)
			return log_errno(ret, FI_FMT ": cannot read the routes through %s",
					 FI_ARG(dv->fi), dv->e->name);
		if (dv->err == -ENOMEM)
			return log_errno(ENOMEM, FI_FMT ": routes of %s", FI_ARG(dv->fi),
					 dv->e->name);
		if (dv->err)
			return dv->err;
	}
	return 0;
}

/* --- dump ---------------------------------------------------------------- */

/* The per-queue state and what cannot be kept, through the fd itself. */
static int dump_queue(const struct fd_info *fi, TunEntry *e, struct nl *nl)
{
	struct ethtool_value ev = { .cmd = ETHTOOL_GTXCSUM };
	struct ifreq ifr;
	int v;

	if (ioctl(fi->lfd, TUNGETVNETHDRSZ, &v) == 0) {
		e->has_vnet_hdr_sz = true;
		e->vnet_hdr_sz = v;
	}
	if (ioctl(fi->lfd, TUNGETSNDBUF, &v) == 0) {
		e->has_sndbuf = true;
		e->sndbuf = v;
	}
	if (ioctl(fi->lfd, TUNGETVNETLE, &v) == 0 && v) {
		e->has_vnet_le = true;
		e->vnet_le = 1;
	}
	if (ioctl(fi->lfd, TUNGETVNETBE, &v) == 0 && v) {
		e->has_vnet_be = true;
		e->vnet_be = 1;
	}
	/* Offloads only come from TUNSETOFFLOAD, and all need TUN_F_CSUM. */
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", e->name);
	ifr.ifr_data = (void *)&ev;
	if (ioctl(nl->iosk, SIOCETHTOOL, &ifr) == 0 && ev.data) {
		log_err(FI_FMT ": tun device %s has offloads (TUNSETOFFLOAD): not supported",
			FI_ARG(fi), e->name);
		return -EOPNOTSUPP;
	}
	return 0;
}

/* The device's namespace must be the one its process restores into. */
static int dev_netns(const struct fd_info *fi, const char *name, int *nsfd, uint64_t *ino)
{
	struct stat dst, pst;
	char p[64];

	*nsfd = ioctl(fi->lfd, TUNGETDEVNETNS);
	if (*nsfd < 0 || fstat(*nsfd, &dst) < 0)
		return log_errno(errno, FI_FMT ": cannot find the network namespace of tun "
				 "device %s", FI_ARG(fi), name);
	snprintf(p, sizeof(p), "/proc/%d/ns/net", fi->pid);
	if (stat(p, &pst) < 0)
		return log_errno(errno, FI_FMT ": cannot read %s", FI_ARG(fi), p);
	if (dst.st_ino != pst.st_ino || dst.st_dev != pst.st_dev) {
		log_err(FI_FMT ": tun device %s is in another network namespace than its "
			"process: not supported", FI_ARG(fi), name);
		return -EOPNOTSUPP;
	}
	*ino = dst.st_ino;
	return 0;
}

/* Count the queues the tree holds (checked in tun_dump_end). */
static int note_queue(const struct fd_info *fi, const TunEntry *e, uint32_t queues)
{
	struct files_obj *o = files_dump_obj(fi->d, FOBJ_TUN, e->netns, e->ifindex, true);

	if (!o)
		return log_errno(ENOMEM, FI_FMT, FI_ARG(fi));
	if (!o->uses) {
		/* one namespace at restore: one device per name */
		for (struct files_obj *x = files_dump_obj_next(fi->d, NULL); x;
		     x = files_dump_obj_next(fi->d, x)) {
			if (x->tag != FOBJ_TUN || x == o || !x->v || strcmp((char *)x->v, e->name))
				continue;
			log_err(FI_FMT ": tun device %s of another network namespace than the %s of "
				"pid %d fd %d: not supported", FI_ARG(fi), e->name, e->name, x->pid,
				x->fdnum);
			return -EOPNOTSUPP;
		}
	}
	if (!o->uses++) {
		o->pid = fi->pid;
		o->fdnum = fi->fd;
		o->uses2 = (e->iff & IFF_MULTI_QUEUE) ? (int)queues : 1;
		o->v = (int *)strdup(e->name);
		if (!o->v)
			return log_errno(ENOMEM, FI_FMT, FI_ARG(fi));
	}
	return 0;
}

static int tun_dump(const struct fd_info *fi, FileEntry *fe)
{
	TunEntry *e = calloc(1, sizeof(*e));
	struct tun_dev dv = { .e = e, .fi = fi };
	struct nl nl = { .iosk = -1 };
	struct ifreq ifr;
	int nsfd = -1, ret;
	size_t len;

	if (!e)
		return log_errno(ENOMEM, FI_FMT, FI_ARG(fi));
	tun_entry__init(e);
	memset(&ifr, 0, sizeof(ifr));
	if (ioctl(fi->lfd, TUNGETIFF, &ifr) < 0) {
		ret = -errno;
		if (ret == -EBADFD)
			log_err(FI_FMT ": %s is not attached to a device (a queue detached with "
				"TUNSETQUEUE, or never attached): not supported", FI_ARG(fi),
				fi->link);
		else
			log_errno(ret, FI_FMT ": cannot read the device of %s", FI_ARG(fi), fi->link);
		goto out;
	}
	ret = -ENOMEM;
	e->name = strndup(ifr.ifr_name, IFNAMSIZ - 1);
	if (!e->name)
		goto out;
	/* TUNGETIFF's 0x1000 is IFF_NOFILTER there, not IFF_NO_PI (from netlink) */
	e->iff = ifr.ifr_flags & TUN_IFF_KEPT & ~IFF_NO_PI;
	if (ifr.ifr_flags & IFF_DETACH_QUEUE) {
		log_err(FI_FMT ": %s is a queue of tun device %s detached with TUNSETQUEUE: not "
			"supported", FI_ARG(fi), fi->link, e->name);
		ret = -EOPNOTSUPP;
		goto out;
	}
	if (!(ifr.ifr_flags & IFF_NOFILTER)) {
		log_err(FI_FMT ": tun device %s has a socket filter (TUNATTACHFILTER): not "
			"supported", FI_ARG(fi), e->name);
		ret = -EOPNOTSUPP;
		goto out;
	}
	ret = dev_netns(fi, e->name, &nsfd, &e->netns);
	if (ret)
		goto out;
	e->has_netns = true;
	ret = nl_open(&nl, nsfd);
	if (ret)
		goto out;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", e->name);
	if (ioctl(nl.iosk, SIOCGIFINDEX, &ifr) < 0) {
		ret = log_errno(errno, FI_FMT ": cannot find tun device %s", FI_ARG(fi), e->name);
		goto out;
	}
	e->ifindex = dv.ifindex = ifr.ifr_ifindex;
	ret = dump_queue(fi, e, &nl);
	if (!ret)
		ret = dump_link(&nl, &dv);
	if (!ret)
		ret = dump_addrs(&nl, &dv);
	if (!ret)
		ret = dump_routes(&nl, &dv);
	if (!ret)
		ret = note_queue(fi, e, dv.queues);
	if (ret)
		goto out;
	len = tun_entry__get_packed_size(e);
	fe->tun.data = malloc(len ? len : 1);
	fe->path = strdup(TUN_PATH);
	if (!fe->tun.data || !fe->path) {
		ret = log_errno(ENOMEM, FI_FMT, FI_ARG(fi));
		goto out;
	}
	fe->tun.len = tun_entry__pack(e, fe->tun.data);
	log_debug(FI_FMT ": tun device %s (flags 0x%x, index %u, %zu addresses, %zu routes)",
		  FI_ARG(fi), e->name, e->iff, e->ifindex, e->n_addrs, e->n_routes);
	fe->has_tun = true;
	fe->has_rdev = true;
	fe->rdev = fi->st.st_rdev;
out:
	nl_close(&nl);
	if (nsfd >= 0)
		close(nsfd);
	tun_entry__free_unpacked(e, NULL);
	return ret;
}

/* Is @pid in the dumped tree?  (Without the tree's list: traced by us.) */
static bool in_tree(struct files_dump *d, pid_t pid)
{
	char p[64], line[128];
	bool ours = false;
	FILE *f;

	if (files_dump_opts(d)->n_tree_pids)
		return files_dump_in_tree(d, pid);
	snprintf(p, sizeof(p), "/proc/%d/status", pid);
	f = fopen(p, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "TracerPid:", 10)) {
			ours = atoi(line + 10) == getpid();
			break;
		}
	fclose(f);
	return ours;
}

/* The device name of tun fd @fd of @pid ("iff:" in its fdinfo), or false. */
static bool fd_iff(pid_t pid, const char *fd, char *name)
{
	char p[96], buf[1024];
	const char *v;
	ssize_t n;
	int f;

	snprintf(p, sizeof(p), "/proc/%d/fdinfo/%s", pid, fd);
	f = open(p, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return false;
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return false;
	buf[n] = 0;
	v = files_fdinfo_field(buf, "iff:");
	if (!v)
		return false;
	v += strspn(v, " \t");
	n = strcspn(v, "\n");
	if (!n || n >= IFNAMSIZ)
		return false;
	memcpy(name, v, n);
	name[n] = 0;
	return true;
}

/* The inode of the network namespace of the device of fd @fd of @pid (or,
 * if we cannot take a copy of the fd, of @pid's own namespace). */
static uint64_t fd_netns(pid_t pid, int fd)
{
	int pidfd = syscall(SYS_pidfd_open, pid, 0), lfd = -1, nsfd = -1;
	uint64_t ino = 0;
	struct stat st;
	char p[64];

	if (pidfd >= 0)
		lfd = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	if (lfd >= 0)
		nsfd = ioctl(lfd, TUNGETDEVNETNS);
	if (nsfd >= 0 && fstat(nsfd, &st) == 0)
		ino = st.st_ino;
	snprintf(p, sizeof(p), "/proc/%d/ns/net", pid);
	if (!ino && stat(p, &st) == 0)
		ino = st.st_ino;
	if (nsfd >= 0)
		close(nsfd);
	if (lfd >= 0)
		close(lfd);
	if (pidfd >= 0)
		close(pidfd);
	return ino;
}

/* A tun fd of @pid (not in the tree) attached to a device of the tree? */
static int check_outsider(struct files_dump *d, pid_t pid)
{
	char p[64], link[sizeof(TUN_PATH) + 1], name[IFNAMSIZ];
	struct dirent *de;
	bool checked = false;
	int ret = 0;
	DIR *dir;

	snprintf(p, sizeof(p), "/proc/%d/fd", pid);
	dir = opendir(p);
	if (!dir)
		return 0;	/* gone, or a kernel thread */
	while (!ret && (de = readdir(dir))) {
		ssize_t n = readlinkat(dirfd(dir), de->d_name, link, sizeof(link));

		if (n != sizeof(TUN_PATH) - 1 || memcmp(link, TUN_PATH, n) ||
		    !fd_iff(pid, de->d_name, name))
			continue;
		if (!checked && in_tree(d, pid))
			break;
		checked = true;
		for (struct files_obj *o = files_dump_obj_next(d, NULL); o;
		     o = files_dump_obj_next(d, o)) {
			if (o->tag != FOBJ_TUN || strcmp((char *)o->v, name) ||
			    fd_netns(pid, atoi(de->d_name)) != o->a)
				continue;
			log_err("pid %d fd %d: tun device %s is also held by pid %d fd %s, outside "
				"the dumped tree", o->pid, o->fdnum, name, pid, de->d_name);
			ret = -EBUSY;
			break;
		}
	}
	closedir(dir);
	return ret;
}

/*
 * Every queue of each device must be in the tree, and no process outside
 * it may share one: a device held elsewhere stays alive and busy, and the
 * restore could not attach.
 */
static int tun_dump_end(struct files_dump *d)
{
	struct files_obj *o;
	struct dirent *de;
	bool any = false;
	int ret = 0;
	DIR *proc;

	for (o = files_dump_obj_next(d, NULL); o; o = files_dump_obj_next(d, o)) {
		if (o->tag != FOBJ_TUN)
			continue;
		any = true;
		if (o->uses == o->uses2)
			continue;
		log_err("pid %d fd %d: tun device %s has %d queue(s) attached, the dumped tree "
			"holds %d: another process holds it", o->pid, o->fdnum, (char *)o->v,
			o->uses2, o->uses);
		return -EBUSY;
	}
	if (!any)
		return 0;
	proc = opendir("/proc");
	if (!proc)
		return log_errno(errno, "cannot read /proc");
	while (!ret && (de = readdir(proc))) {
		pid_t pid = atoi(de->d_name);

		if (pid > 0 && pid != getpid())
			ret = check_outsider(d, pid);
	}
	closedir(proc);
	return ret;
}

/* --- validation ------------------------------------------------------------ */

static TunEntry *unpack_entry(const FileEntry *fe)
{
	if (!fe->has_tun || !fe->tun.data || !fe->tun.len)
		return NULL;
	return tun_entry__unpack(NULL, fe->tun.len, fe->tun.data);
}

static bool name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (!n || n >= IFNAMSIZ || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (*s <= ' ' || *s >= 127 || *s == '/' || *s == ':' || *s == '%')
			return false;
	return true;
}

static bool bin_ok(protobuf_c_boolean has, const ProtobufCBinaryData *b, size_t len)
{
	return !has || (b->data && b->len == len);
}

static bool addr_ok(const TunAddr *x)
{
	size_t len = alen(x->family);

	return len && x->prefixlen <= len * 8 && x->local.data && x->local.len == len &&
	       bin_ok(x->has_peer, &x->peer, len) && bin_ok(x->has_broadcast, &x->broadcast, len) &&
	       !(x->flags & ~TUN_IFA_FLAGS) && x->scope <= 255 &&
	       (!x->label || (name_ok(x->label) || strchr(x->label, ':'))) &&
	       (!x->label || strlen(x->label) < IFNAMSIZ) &&
	       x->has_valid_lft == x->has_preferred_lft;
}

static bool route_ok(const TunRoute *r)
{
	size_t len = alen(r->family);

	if (!len || r->dst_len > len * 8 || r->src_len > len * 8 || r->tos > 255 ||
	    r->protocol > 255 || r->scope > 255 || r->type > 255 || !r->type ||
	    (r->flags & ~RTNH_F_ONLINK) || !bin_ok(r->has_dst, &r->dst, len) ||
	    !bin_ok(r->has_src, &r->src, len) || !bin_ok(r->has_gateway, &r->gateway, len) ||
	    !bin_ok(r->has_prefsrc, &r->prefsrc, len) || (r->has_pref && r->pref > 255) ||
	    r->n_metrics > RTAX_MAX)
		return false;
	for (size_t i = 0; i < r->n_metrics; i++)
		if (!r->metrics[i] || !r->metrics[i]->type || r->metrics[i]->type > RTAX_MAX ||
		    r->metrics[i]->type == RTAX_CC_ALGO)
			return false;
	return true;
}

static int validate_entry(const FileEntry *fe, const TunEntry *e)
{
	unsigned int type = e->iff & (IFF_TUN | IFF_TAP);

	if (!name_ok(e->name)) {
		log_err(FE_FMT ": bad tun device name", FE_ARG(fe));
		return -EINVAL;
	}
	if ((e->iff & ~TUN_IFF_KEPT) || (type != IFF_TUN && type != IFF_TAP) ||
	    (e->dev_flags & ~TUN_DEV_FLAGS) || !e->mtu || e->mtu > 65535 ||
	    e->link_type > 0xffff || !bin_ok(e->has_hwaddr, &e->hwaddr, 6) ||
	    (e->has_addr_gen_mode && e->addr_gen_mode > 255) || !e->ifindex ||
	    e->ifindex > INT_MAX || (e->has_vnet_hdr_sz && e->vnet_hdr_sz < 10) ||
	    (e->has_sndbuf && e->sndbuf <= 0) || (e->has_vnet_le && e->vnet_le > 1) ||
	    (e->has_vnet_be && e->vnet_be > 1) || e->n_addrs > TUN_LIST_MAX ||
	    e->n_routes > TUN_LIST_MAX) {
		log_err(FE_FMT ": bad attributes of tun device %s", FE_ARG(fe), e->name);
		return -EINVAL;
	}
	for (size_t i = 0; i < e->n_addrs; i++)
		if (!e->addrs[i] || !addr_ok(e->addrs[i])) {
			log_err(FE_FMT ": bad address %zu of tun device %s", FE_ARG(fe), i, e->name);
			return -EINVAL;
		}
	for (size_t i = 0; i < e->n_routes; i++)
		if (!e->routes[i] || !route_ok(e->routes[i])) {
			log_err(FE_FMT ": bad route %zu through tun device %s", FE_ARG(fe), i,
				e->name);
			return -EINVAL;
		}
	return 0;
}

static int tun_validate(const FileEntry *fe)
{
	TunEntry *e = unpack_entry(fe);
	int ret;

	if (!e) {
		log_err(FE_FMT ": missing or bad tun device", FE_ARG(fe));
		return -EINVAL;
	}
	if ((fe->flags & O_ACCMODE) == O_ACCMODE || (fe->flags & (O_PATH | O_DIRECTORY))) {
		log_err(FE_FMT ": bad flags 0%o for a tun fd", FE_ARG(fe), fe->flags);
		ret = -EINVAL;
	} else {
		ret = validate_entry(fe, e);
	}
	tun_entry__free_unpacked(e, NULL);
	return ret;
}

/* --- restore --------------------------------------------------------------- */

static uint64_t name_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

struct rst_link {
	const char *name;
	int ifindex;
	bool seen, is_tun;
	uint32_t queues;
};

static int rst_link_cb(const struct nlmsghdr *nlh, void *data)
{
	struct rst_link *l = data;
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *a, *b, *c;

	if (nlh->nlmsg_type != RTM_NEWLINK)
		return MNL_CB_OK;
	l->seen = true;
	l->ifindex = ifi->ifi_index;
	mnl_attr_for_each(a, nlh, sizeof(*ifi)) {
		if (mnl_attr_get_type(a) != IFLA_LINKINFO)
			continue;
		mnl_attr_for_each_nested(b, a) {
			if (mnl_attr_get_type(b) == IFLA_INFO_KIND)
				l->is_tun = !strcmp(mnl_attr_get_str(b), "tun");
			if (mnl_attr_get_type(b) != IFLA_INFO_DATA)
				continue;
			mnl_attr_for_each_nested(c, b)
				if (mnl_attr_get_type(c) == IFLA_TUN_NUM_QUEUES)
					l->queues = mnl_attr_get_u32(c);
		}
	}
	return MNL_CB_OK;
}

/* Is there a device named @name (@index when @name is NULL)?  0, or -ENODEV. */
static int rst_get_link(struct nl *nl, const char *name, int index, struct rst_link *l)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = nl_msg(nl, buf, RTM_GETLINK, 0);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	int ret;

	memset(l, 0, sizeof(*l));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = index;
	if (name)
		mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	ret = nl_talk(nl, nlh, rst_link_cb, l);
	if (!ret && !l->seen)
		ret = -ENODEV;
	return ret;
}

static int rst_setlink(struct nl *nl, int ifindex, const TunEntry *e, bool up)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = nl_msg(nl, buf, RTM_NEWLINK, 0);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));

	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	if (up) {
		ifi->ifi_change = IFF_UP;
		ifi->ifi_flags = IFF_UP;
		return nl_talk(nl, nlh, NULL, NULL);
	}
	ifi->ifi_change = TUN_DEV_FLAGS & ~IFF_UP;
	ifi->ifi_flags = e->dev_flags & ~IFF_UP;
	mnl_attr_put_u32(nlh, IFLA_MTU, e->mtu);
	mnl_attr_put_u32(nlh, IFLA_TXQLEN, e->txqlen);
	if (e->has_hwaddr)
		mnl_attr_put(nlh, IFLA_ADDRESS, e->hwaddr.len, e->hwaddr.data);
	if (e->has_addr_gen_mode) {
		struct nlattr *spec = mnl_attr_nest_start(nlh, IFLA_AF_SPEC);
		struct nlattr *in6 = mnl_attr_nest_start(nlh, AF_INET6);

		mnl_attr_put_u8(nlh, IFLA_INET6_ADDR_GEN_MODE, e->addr_gen_mode);
		mnl_attr_nest_end(nlh, in6);
		mnl_attr_nest_end(nlh, spec);
	}
	return nl_talk(nl, nlh, NULL, NULL);
}

static int rst_addr(struct nl *nl, int ifindex, const TunAddr *x)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = nl_msg(nl, buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));

	ifa->ifa_family = x->family;
	ifa->ifa_prefixlen = x->prefixlen;
	ifa->ifa_scope = x->scope;
	ifa->ifa_index = ifindex;
	ifa->ifa_flags = x->flags & 0xff;
	mnl_attr_put_u32(nlh, IFA_FLAGS, x->flags);
	mnl_attr_put(nlh, IFA_LOCAL, x->local.len, x->local.data);
	if (x->has_peer)
		mnl_attr_put(nlh, IFA_ADDRESS, x->peer.len, x->peer.data);
	else
		mnl_attr_put(nlh, IFA_ADDRESS, x->local.len, x->local.data);
	if (x->has_broadcast)
		mnl_attr_put(nlh, IFA_BROADCAST, x->broadcast.len, x->broadcast.data);
	if (x->label)
		mnl_attr_put_strz(nlh, IFA_LABEL, x->label);
	if (x->has_valid_lft) {
		struct ifa_cacheinfo ci = { .ifa_valid = x->valid_lft,
					    .ifa_prefered = x->preferred_lft };
		mnl_attr_put(nlh, IFA_CACHEINFO, sizeof(ci), &ci);
	}
	if (x->has_rt_priority)
		mnl_attr_put_u32(nlh, IFA_RT_PRIORITY, x->rt_priority);
	return nl_talk(nl, nlh, NULL, NULL);
}

static int rst_route(struct nl *nl, int ifindex, const TunRoute *r)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = nl_msg(nl, buf, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));

	rtm->rtm_family = r->family;
	rtm->rtm_dst_len = r->dst_len;
	rtm->rtm_src_len = r->src_len;
	rtm->rtm_tos = r->tos;
	rtm->rtm_table = r->table < 256 ? r->table : RT_TABLE_UNSPEC;
	rtm->rtm_protocol = r->protocol;
	rtm->rtm_scope = r->scope;
	rtm->rtm_type = r->type;
	rtm->rtm_flags = r->flags;
	mnl_attr_put_u32(nlh, RTA_TABLE, r->table);
	mnl_attr_put_u32(nlh, RTA_OIF, ifindex);
	if (r->has_dst)
		mnl_attr_put(nlh, RTA_DST, r->dst.len, r->dst.data);
	if (r->has_src)
		mnl_attr_put(nlh, RTA_SRC, r->src.len, r->src.data);
	if (r->has_gateway)
		mnl_attr_put(nlh, RTA_GATEWAY, r->gateway.len, r->gateway.data);
	if (r->has_prefsrc)
		mnl_attr_put(nlh, RTA_PREFSRC, r->prefsrc.len, r->prefsrc.data);
	if (r->has_priority)
		mnl_attr_put_u32(nlh, RTA_PRIORITY, r->priority);
	if (r->has_pref)
		mnl_attr_put_u8(nlh, RTA_PREF, r->pref);
	if (r->has_expires)
		mnl_attr_put_u32(nlh, RTA_EXPIRES, r->expires);
	if (r->n_metrics) {
		struct nlattr *m = mnl_attr_nest_start(nlh, RTA_METRICS);

		for (size_t i = 0; i < r->n_metrics; i++)
			mnl_attr_put_u32(nlh, r->metrics[i]->type, r->metrics[i]->value);
		mnl_attr_nest_end(nlh, m);
	}
	return nl_talk(nl, nlh, NULL, NULL);
}

/*
 * Routes in passes: one whose gateway is reached through another route of
 * the device waits for it.  @existed: the device was kept (persistent), what
 * is there already is fine.
 */
static int rst_routes(const FileEntry *fe, struct nl *nl, int ifindex, const TunEntry *e,
		      bool existed)
{
	bool *done = calloc(e->n_routes ? e->n_routes : 1, sizeof(*done));
	size_t left = e->n_routes, progress = 1;
	int ret = 0;

	if (!done)
		return log_errno(ENOMEM, FE_FMT, FE_ARG(fe));
	while (left && progress) {
		progress = 0;
		for (size_t i = 0; i < e->n_routes; i++) {
			if (done[i])
				continue;
			ret = rst_route(nl, ifindex, e->routes[i]);
			if (ret == -EEXIST && existed)
				ret = 0;
			if (ret == 0) {
				done[i] = true;
				progress++;
				left--;
			}
		}
	}
	if (left) {
		for (size_t i = 0; i < e->n_routes; i++) {
			const TunRoute *r = e->routes[i];
			char a[INET6_ADDRSTRLEN] = "default";

			if (done[i])
				continue;
			if (r->has_dst)
				inet_ntop(r->family, r->dst.data, a, sizeof(a));
			log_errno(ret, FE_FMT ": cannot add route %s/%u table %u through tun "
				  "device %s", FE_ARG(fe), a, r->dst_len, r->table, e->name);
			break;
		}
	} else {
		ret = 0;
	}
	free(done);
	return ret;
}

/* The device was just created (or kept): give it its state back. */
static int rst_config(const FileEntry *fe, int fd, struct nl *nl, const TunEntry *e,
		      int ifindex, bool existed)
{
	unsigned int def_type = (e->iff & IFF_TAP) ? ARPHRD_ETHER : ARPHRD_NONE;
	int ret;

	if (e->has_owner && ioctl(fd, TUNSETOWNER, (unsigned long)e->owner) < 0)
		return log_errno(errno, FE_FMT ": cannot give tun device %s to uid %u",
				 FE_ARG(fe), e->name, e->owner);
	if (e->has_group && ioctl(fd, TUNSETGROUP, (unsigned long)e->group) < 0)
		return log_errno(errno, FE_FMT ": cannot give tun device %s to gid %u",
				 FE_ARG(fe), e->name, e->group);
	if (e->link_type != def_type && ioctl(fd, TUNSETLINK, (unsigned long)e->link_type) < 0 &&
	    !existed)
		return log_errno(errno, FE_FMT ": cannot set the link type of tun device %s "
				 "to %u", FE_ARG(fe), e->name, e->link_type);
	ret = rst_setlink(nl, ifindex, e, false);
	if (ret)
		return log_errno(ret, FE_FMT ": cannot set MTU %u, txqueuelen %u and flags of "
				 "tun device %s", FE_ARG(fe), e->mtu, e->txqlen, e->name);
	for (size_t i = 0; i < e->n_addrs; i++) {
		const TunAddr *x = e->addrs[i];

		ret = rst_addr(nl, ifindex, x);
		if (ret == -EEXIST && existed)
			ret = 0;
		if (ret) {
			char a[INET6_ADDRSTRLEN] = "?";

			inet_ntop(x->family, x->local.data, a, sizeof(a));
			return log_errno(ret, FE_FMT ": cannot add address %s/%u to tun device %s",
					 FE_ARG(fe), a, x->prefixlen, e->name);
		}
	}
	if (e->carrier_off) {
		int on = 0;
		if (ioctl(fd, TUNSETCARRIER, &on) < 0)
			return log_errno(errno, FE_FMT ": cannot turn the carrier of tun device %s "
					 "off", FE_ARG(fe), e->name);
	}
	if (e->dev_flags & IFF_UP) {
		ret = rst_setlink(nl, ifindex, e, true);
		if (ret)
			return log_errno(ret, FE_FMT ": cannot bring tun device %s up",
					 FE_ARG(fe), e->name);
	}
	return rst_routes(fe, nl, ifindex, e, existed);
}

static int rst_queue(const FileEntry *fe, int fd, const TunEntry *e)
{
	if (e->has_vnet_hdr_sz && ioctl(fd, TUNSETVNETHDRSZ, &e->vnet_hdr_sz) < 0)
		return log_errno(errno, FE_FMT ": cannot set the vnet header size of %s",
				 FE_ARG(fe), e->name);
	if (e->has_sndbuf && ioctl(fd, TUNSETSNDBUF, &e->sndbuf) < 0)
		return log_errno(errno, FE_FMT ": cannot set the send buffer of %s", FE_ARG(fe),
				 e->name);
	if (e->has_vnet_le) {
		int v = e->vnet_le;
		if (ioctl(fd, TUNSETVNETLE, &v) < 0)
			return log_errno(errno, FE_FMT ": cannot set little-endian vnet headers "
					 "on %s", FE_ARG(fe), e->name);
	}
	if (e->has_vnet_be) {
		int v = e->vnet_be;
		if (ioctl(fd, TUNSETVNETBE, &v) < 0)
			return log_errno(errno, FE_FMT ": cannot set big-endian vnet headers on %s",
					 FE_ARG(fe), e->name);
	}
	return 0;
}

/*
 * The first queue of a device in this restore: is the name free, or a kept
 * persistent tun device nobody uses?  Sets @existed.
 */
static int rst_check_name(const FileEntry *fe, struct nl *nl, const TunEntry *e, bool *existed)
{
	struct rst_link l;
	int ret = rst_get_link(nl, e->name, 0, &l);

	*existed = false;
	if (ret == -ENODEV)
		return 0;
	if (ret)
		return log_errno(ret, FE_FMT ": cannot look for device %s", FE_ARG(fe), e->name);
	if (!l.is_tun) {
		log_err(FE_FMT ": device %s exists and is not a tun device", FE_ARG(fe), e->name);
		return -EEXIST;
	}
	if (l.queues) {
		log_err(FE_FMT ": tun device %s exists and another process holds it", FE_ARG(fe),
			e->name);
		return -EBUSY;
	}
	*existed = true;
	return 0;
}

static int tun_open(const FileEntry *fe, struct files_rst *fr)
{
	TunEntry *e = unpack_entry(fe);
	struct nl nl = { .iosk = -1 };
	struct files_obj *o;
	struct ifreq ifr;
	struct rst_link l;
	bool first, existed = false;
	int fd = -1, ret;

	if (!e)
		return log_errno(EINVAL, FE_FMT ": bad tun device", FE_ARG(fe));
	ret = nl_open(&nl, -1);
	if (ret)
		goto out;
	o = files_rst_obj(fr, FOBJ_TUN, name_hash(e->name), strlen(e->name), true);
	if (!o) {
		ret = log_errno(ENOMEM, FE_FMT, FE_ARG(fe));
		goto out;
	}
	first = !o->flag;
	if (first) {
		ret = rst_check_name(fe, &nl, e, &existed);
		if (ret)
			goto out;
	}
	fd = open(TUN_PATH, (fe->flags & (O_ACCMODE | O_NONBLOCK)) | O_CLOEXEC);
	if (fd < 0) {
		ret = log_errno(errno, FE_FMT ": cannot open " TUN_PATH, FE_ARG(fe));
		goto out;
	}
	/* Its old index when free: the programs that kept it find their device. */
	if (first && !existed && rst_get_link(&nl, NULL, e->ifindex, &l) == -ENODEV) {
		unsigned int idx = e->ifindex;
		if (ioctl(fd, TUNSETIFINDEX, &idx) < 0)
			log_errno(errno, FE_FMT ": cannot ask index %u for %s", FE_ARG(fe), idx,
				  e->name);
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", e->name);
	ifr.ifr_flags = e->iff;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		ret = -errno;
		if (ret == -EBUSY)
			log_err(FE_FMT ": tun device %s exists and another process holds it",
				FE_ARG(fe), e->name);
		else if (ret == -EINVAL && existed)
			log_err(FE_FMT ": tun device %s exists with other flags (tun/tap, "
				"multi-queue)", FE_ARG(fe), e->name);
		else
			log_errno(ret, FE_FMT ": cannot attach to tun device %s", FE_ARG(fe),
				  e->name);
		goto out;
	}
	log_debug(FE_FMT ": %s tun device %s (flags 0x%x)", FE_ARG(fe),
		  !first ? "another queue of" : existed ? "kept" : "recreated", e->name, e->iff);
	ret = rst_queue(fe, fd, e);
	if (ret || !first)
		goto out;
	ret = rst_get_link(&nl, e->name, 0, &l);
	if (ret) {
		log_errno(ret, FE_FMT ": tun device %s vanished", FE_ARG(fe), e->name);
		goto out;
	}
	ret = rst_config(fe, fd, &nl, e, l.ifindex, existed);
	if (ret)
		goto out;
	o->flag = true;
	o->flag2 = existed;
out:
	nl_close(&nl);
	tun_entry__free_unpacked(e, NULL);
	if (ret) {
		if (fd >= 0)
			close(fd);
		return ret;
	}
	return fd;
}

/* The tree is complete: recreated persistent devices become persistent. */
static int tun_rst_finish(struct files_rst *fr)
{
	for (size_t i = 0; i < files_rst_count(fr); i++) {
		const FileEntry *fe = files_rst_nth(fr, i);
		struct files_obj *o;
		TunEntry *e;
		int fd, ret = 0;

		if (fe->kind != FILE_KIND__FILE_TUN)
			continue;
		e = unpack_entry(fe);
		if (!e)
			return -EINVAL;
		o = files_rst_obj(fr, FOBJ_TUN, name_hash(e->name), strlen(e->name), false);
		fd = files_rst_fd(fr, fe->id);
		if (e->persist && o && !o->flag2 && !o->uses) {
			if (fd < 0 || ioctl(fd, TUNSETPERSIST, 1UL) < 0)
				ret = log_errno(fd < 0 ? EBADF : errno, FE_FMT ": cannot make tun "
						"device %s persistent", FE_ARG(fe), e->name);
			o->uses = 1;
		}
		tun_entry__free_unpacked(e, NULL);
		if (ret)
			return ret;
	}
	return 0;
}

const struct file_kind_ops files_tun_ops = {
	.kind = FILE_KIND__FILE_TUN,
	.name = "tun device",
	.match = tun_match,
	.dump = tun_dump,
	.dump_end = tun_dump_end,
	.validate = tun_validate,
	.open = tun_open,
	.rst_finish = tun_rst_finish,
};
