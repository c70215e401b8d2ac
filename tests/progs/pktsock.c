// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Packet sockets for t-sk-packet.  Usage: pktsock IFNAME GOPREFIX
 *
 * A SOCK_RAW packet socket of ethertype IPv4 bound to IFNAME, with a
 * classic filter (IPv4 UDP to port 7777 only), a multicast membership
 * (01:00:5e:01:02:03) and a promiscuous one, and the options PACKET_VERSION
 * TPACKET_V2, _RESERVE 64, _AUXDATA, _ORIGDEV, _VNET_HDR, _TIMESTAMP,
 * _LOSS, buffer sizes; a SOCK_DGRAM one of ethertype IPv4 bound to IFNAME.
 * Prints READY, then for each round N (the file GOPREFIX-N appears): waits
 * until both sockets received a UDP datagram to port 7777 whose payload is
 * "kupN" (sent from the other side) and prints
 *   ROUND N raw=<frames> dgram=<frames> OPTS <getsockopt view>
 * The view names the bound interface, so it must not change across a
 * restore.  A socket that sees no such datagram in 20 s: ERROR.
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include "say.h"

static int gi(int fd, int level, int name)
{
	int v = -1;
	socklen_t l = sizeof(v);

	if (getsockopt(fd, level, name, &v, &l) < 0)
		die("getsockopt %d: %s", name, strerror(errno));
	return v;
}

static void si(int fd, int level, int name, int v)
{
	if (setsockopt(fd, level, name, &v, sizeof(v)) < 0)
		die("setsockopt %d: %s", name, strerror(errno));
}

static int open_bound(int type, const char *ifname)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP),
				   .sll_ifindex = if_nametoindex(ifname) };
	int fd = socket(AF_PACKET, type, htons(ETH_P_IP));

	if (fd < 0 || !sll.sll_ifindex)
		die("packet socket on %s: %s", ifname, strerror(errno));
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		die("bind: %s", strerror(errno));
	return fd;
}

/* Read what is queued; 1 once a datagram with @want (at @off: UDP payload) came. */
static int drain(int fd, int iphdr, const char *want, int *frames)
{
	unsigned char b[2048];
	int seen = 0;
	ssize_t n;

	while ((n = recv(fd, b, sizeof(b), MSG_DONTWAIT)) > 0) {
		int ihl;

		if (n < iphdr + 28 || b[iphdr + 9] != 17)
			continue;
		ihl = (b[iphdr] & 15) * 4;
		if (n < iphdr + ihl + 8 || ntohs(*(uint16_t *)(b + iphdr + ihl + 2)) != 7777)
			continue;
		(*frames)++;
		if (n >= iphdr + ihl + 8 + (ssize_t)strlen(want) &&
		    !memcmp(b + iphdr + ihl + 8, want, strlen(want)))
			seen = 1;
	}
	return seen;
}

static void view(int fd, char *out, size_t len)
{
	struct sockaddr_ll sll = { 0 };
	socklen_t l = sizeof(sll);
	char ifn[IF_NAMESIZE] = "?";
	struct sock_filter f[16];
	socklen_t fl = 16;

	if (getsockname(fd, (struct sockaddr *)&sll, &l) < 0)
		die("getsockname: %s", strerror(errno));
	if_indextoname(sll.sll_ifindex, ifn);
	if (getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, f, &fl) < 0)
		die("SO_GET_FILTER: %s", strerror(errno));
	snprintf(out, len, "type=%d proto=0x%04x if=%s version=%d reserve=%d aux=%d origdev=%d "
		 "vnet=%d tstamp=%d loss=%d rcvbuf=%d sndbuf=%d filter=%u",
		 gi(fd, SOL_SOCKET, SO_TYPE), ntohs(sll.sll_protocol), ifn,
		 gi(fd, SOL_PACKET, PACKET_VERSION), gi(fd, SOL_PACKET, PACKET_RESERVE),
		 gi(fd, SOL_PACKET, PACKET_AUXDATA), gi(fd, SOL_PACKET, PACKET_ORIGDEV),
		 gi(fd, SOL_PACKET, PACKET_VNET_HDR), gi(fd, SOL_PACKET, PACKET_TIMESTAMP),
		 gi(fd, SOL_PACKET, PACKET_LOSS), gi(fd, SOL_SOCKET, SO_RCVBUF),
		 gi(fd, SOL_SOCKET, SO_SNDBUF), (unsigned)fl);
}

int main(int argc, char **argv)
{
	/* IPv4 (ethertype at 12), UDP (byte 23), destination port 7777 (36, no IP options) */
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 0, 5),
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 23),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 17, 0, 3),
		BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 36),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 7777, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0xffff),
		BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };
	struct packet_mreq mc = { .mr_type = PACKET_MR_MULTICAST, .mr_alen = 6,
				  .mr_address = { 0x01, 0x00, 0x5e, 0x01, 0x02, 0x03 } };
	struct packet_mreq pr = { .mr_type = PACKET_MR_PROMISC };
	int raw, dg, nraw = 0, ndg = 0;

	if (argc != 3)
		die("usage: pktsock IFNAME GOPREFIX");
	raw = open_bound(SOCK_RAW, argv[1]);
	dg = open_bound(SOCK_DGRAM, argv[1]);
	si(raw, SOL_PACKET, PACKET_VERSION, TPACKET_V2);
	si(raw, SOL_PACKET, PACKET_RESERVE, 64);
	si(raw, SOL_PACKET, PACKET_AUXDATA, 1);
	si(raw, SOL_PACKET, PACKET_ORIGDEV, 1);
	si(raw, SOL_PACKET, PACKET_VNET_HDR, 1);
	si(raw, SOL_PACKET, PACKET_TIMESTAMP, 1);	/* SOF_TIMESTAMPING_TX_HARDWARE */
	si(raw, SOL_PACKET, PACKET_LOSS, 1);
	si(raw, SOL_SOCKET, SO_RCVBUF, 300000);
	si(dg, SOL_SOCKET, SO_SNDBUF, 100000);
	if (setsockopt(raw, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0)
		die("SO_ATTACH_FILTER: %s", strerror(errno));
	mc.mr_ifindex = pr.mr_ifindex = if_nametoindex(argv[1]);
	if (setsockopt(raw, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mc, sizeof(mc)) < 0 ||
	    setsockopt(raw, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &pr, sizeof(pr)) < 0)
		die("PACKET_ADD_MEMBERSHIP: %s", strerror(errno));
	say("READY");
	for (int n = 0;; n++) {
		char go[4096], want[32], vr[512], vd[512];
		int got_raw = 0, got_dg = 0;
		struct stat st;

		snprintf(go, sizeof(go), "%s-%d", argv[2], n);
		while (stat(go, &st) < 0)
			sleep_ms(20);
		snprintf(want, sizeof(want), "kup%d", n);
		for (int t = 0; t < 200 && !(got_raw && got_dg); t++) {
			struct pollfd p[2] = { { .fd = raw, .events = POLLIN },
					       { .fd = dg, .events = POLLIN } };

			poll(p, 2, 100);
			got_raw |= drain(raw, ETH_HLEN + 10 /* vnet header */, want, &nraw);
			got_dg |= drain(dg, 0, want, &ndg);
		}
		if (!got_raw || !got_dg)
			die("round %d: no datagram \"%s\" on the %s socket", n, want,
			    got_raw ? "SOCK_DGRAM" : "SOCK_RAW");
		view(raw, vr, sizeof(vr));
		view(dg, vd, sizeof(vd));
		say("ROUND %d raw=%d dgram=%d OPTS raw: %s; dgram: %s", n, nraw, ndg, vr, vd);
	}
}
