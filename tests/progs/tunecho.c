// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tunecho DEV...: the far end of tun/tap devices.  Each DEV is
 *     NAME:tun|tap[:pi][:vnet][:mq=N][:persist][:owner=UID][:group=GID][:detach]
 * (IFF_NO_PI unless "pi"; "mq=N" attaches N queues; "detach" detaches the
 * last queue with TUNSETQUEUE).  Prints "READY" once every device is open,
 * then answers each IPv4 ICMP echo request read from a tun device with its
 * reply (on the same queue), and prints "N <replies> <name>" after each.
 * A packet that is not a well-formed echo request is ignored.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>

#include "say.h"

#define MAXQ 64

static struct q {
	int fd;
	const char *name;
	bool pi, vnet;
} qs[MAXQ];
static int nq;

static void open_dev(char *spec)
{
	char *name = strtok(spec, ":"), *opt;
	int flags = IFF_NO_PI, queues = 1, owner = -1, group = -1;
	bool persist = false, detach = false;

	if (!name)
		die("empty device spec");
	while ((opt = strtok(NULL, ":"))) {
		if (!strcmp(opt, "tun"))
			flags |= IFF_TUN;
		else if (!strcmp(opt, "tap"))
			flags |= IFF_TAP;
		else if (!strcmp(opt, "pi"))
			flags &= ~IFF_NO_PI;
		else if (!strcmp(opt, "vnet"))
			flags |= IFF_VNET_HDR;
		else if (!strncmp(opt, "mq=", 3)) {
			flags |= IFF_MULTI_QUEUE;
			queues = atoi(opt + 3);
		} else if (!strcmp(opt, "persist"))
			persist = true;
		else if (!strncmp(opt, "owner=", 6))
			owner = atoi(opt + 6);
		else if (!strncmp(opt, "group=", 6))
			group = atoi(opt + 6);
		else if (!strcmp(opt, "detach"))
			detach = true;
		else
			die("unknown option %s", opt);
	}
	for (int i = 0; i < queues; i++) {
		struct ifreq ifr = { 0 };
		int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK);

		if (fd < 0 || nq >= MAXQ)
			die("open /dev/net/tun: %m");
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
		ifr.ifr_flags = flags;
		if (ioctl(fd, TUNSETIFF, &ifr) < 0)
			die("TUNSETIFF %s: %m", name);
		if (i == 0 && persist && ioctl(fd, TUNSETPERSIST, 1UL) < 0)
			die("TUNSETPERSIST %s: %m", name);
		if (i == 0 && owner >= 0 && ioctl(fd, TUNSETOWNER, (unsigned long)owner) < 0)
			die("TUNSETOWNER %s: %m", name);
		if (i == 0 && group >= 0 && ioctl(fd, TUNSETGROUP, (unsigned long)group) < 0)
			die("TUNSETGROUP %s: %m", name);
		qs[nq++] = (struct q){ fd, name, !(flags & IFF_NO_PI), !!(flags & IFF_VNET_HDR) };
	}
	if (detach) {
		struct ifreq ifr = { .ifr_flags = IFF_DETACH_QUEUE };
		if (ioctl(qs[nq - 1].fd, TUNSETQUEUE, &ifr) < 0)
			die("TUNSETQUEUE %s: %m", name);
	}
}

static uint16_t csum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint32_t s = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		s += (b[i] << 8) | b[i + 1];
	if (len & 1)
		s += b[len - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return htons(~s);
}

/* Turn the echo request at @ip (@len bytes) into its reply; false if not one. */
static bool echo_reply(uint8_t *ip, size_t len)
{
	struct iphdr *h = (struct iphdr *)ip;
	struct icmphdr *ic;
	size_t hl;
	uint32_t a;

	if (len < sizeof(*h) || h->version != 4)
		return false;
	hl = h->ihl * 4;
	if (hl < sizeof(*h) || len < hl + sizeof(*ic) || h->protocol != IPPROTO_ICMP)
		return false;
	ic = (struct icmphdr *)(ip + hl);
	if (ic->type != ICMP_ECHO)
		return false;
	a = h->saddr;
	h->saddr = h->daddr;
	h->daddr = a;
	h->check = 0;
	h->check = csum(h, hl);
	ic->type = ICMP_ECHOREPLY;
	ic->checksum = 0;
	ic->checksum = csum(ic, len - hl);
	return true;
}

int main(int argc, char **argv)
{
	struct pollfd pfd[MAXQ];
	unsigned long replies = 0;

	for (int i = 1; i < argc; i++)
		open_dev(argv[i]);
	say("READY");
	for (int i = 0; i < nq; i++)
		pfd[i] = (struct pollfd){ .fd = qs[i].fd, .events = POLLIN };
	for (;;) {
		if (poll(pfd, nq, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll: %m");
		}
		for (int i = 0; i < nq; i++) {
			uint8_t buf[65536];
			size_t off = (qs[i].pi ? 4 : 0) + (qs[i].vnet ? 10 : 0);
			ssize_t n;

			if (!(pfd[i].revents & POLLIN))
				continue;
			n = read(qs[i].fd, buf, sizeof(buf));
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n < 0)
				die("read %s: %m", qs[i].name);
			if ((size_t)n <= off || !echo_reply(buf + off, n - off))
				continue;
			if (write(qs[i].fd, buf, n) != n)
				die("write %s: %m", qs[i].name);
			say("N %lu %s", ++replies, qs[i].name);
		}
	}
}
