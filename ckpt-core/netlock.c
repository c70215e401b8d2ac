// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The network lock (see netlock.h): nftables through libnftables, one
 * transaction per call.  Commands run in the socket's network namespace:
 * the calling thread enters it with setns() and comes back to its own.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <nftables/libnftables.h>

#include "log.h"
#include "netlock.h"

void netlock_new_name(char *buf, size_t len)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(buf, len, "kup-lock-%d-%llx", (int)getpid(),
		 (unsigned long long)ts.tv_sec * 1000000ull + ts.tv_nsec / 1000);
}

bool netlock_name_ok(const char *name)
{
	size_t l;

	if (!name || strncmp(name, "kup-lock-", 9))
		return false;
	l = strnlen(name, NETLOCK_NAME_MAX);
	if (l >= NETLOCK_NAME_MAX || l == 9)
		return false;
	for (size_t i = 9; i < l; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f') ||
		      name[i] == '-'))
			return false;
	return true;
}

/* Run @cmd in namespace @nsfd (-1: ours).  @quiet: no message on failure. */
static int nft_run(const char *cmd, int nsfd, bool quiet)
{
	struct nft_ctx *nft;
	int self = -1, ret = 0;

	if (nsfd >= 0) {
		self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (self < 0)
			return log_errno(errno, "network lock: cannot open our network namespace");
		if (setns(nsfd, CLONE_NEWNET) < 0) {
			ret = log_errno(errno, "network lock: cannot enter the socket's network namespace");
			close(self);
			return ret;
		}
	}
	nft = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!nft) {
		ret = log_errno(ENOMEM, "network lock: cannot create an nftables context");
		goto out;
	}
	nft_ctx_buffer_output(nft);
	nft_ctx_buffer_error(nft);
	if (nft_run_cmd_from_buffer(nft, cmd)) {
		const char *e = nft_ctx_get_error_buffer(nft);

		if (!quiet)
			log_err("network lock: nftables refused '%.200s': %s", cmd,
				e && *e ? e : "(no message)");
		ret = -EIO;
	}
	nft_ctx_free(nft);
out:
	if (self >= 0) {
		if (setns(self, CLONE_NEWNET) < 0)
			ret = log_errno(errno, "network lock: cannot come back to our network namespace");
		close(self);
	}
	return ret;
}

int netlock_add(const char *name, int nsfd, bool create, int family,
		const void *laddr, uint16_t lport, const void *raddr, uint16_t rport)
{
	char cmd[2048], la[INET6_ADDRSTRLEN], ra[INET6_ADDRSTRLEN];
	int n = 0;

	if (!netlock_name_ok(name) || (family != AF_INET && family != AF_INET6))
		return log_errno(EINVAL, "network lock: bad arguments");
	if (!inet_ntop(family, laddr, la, sizeof(la)) || !inet_ntop(family, raddr, ra, sizeof(ra)))
		return log_errno(errno, "network lock: bad address");
	if (create)
		n = snprintf(cmd, sizeof(cmd),
			"add table inet %1$s\n"
			"add chain inet %1$s in { type filter hook input priority -300 ; policy accept ; }\n"
			"add chain inet %1$s out { type filter hook output priority -300 ; policy accept ; }\n"
			"add set inet %1$s c4 { type ipv4_addr . inet_service . ipv4_addr . inet_service ; }\n"
			"add set inet %1$s c6 { type ipv6_addr . inet_service . ipv6_addr . inet_service ; }\n"
			"add rule inet %1$s in meta mark 0x%2$x accept\n"
			"add rule inet %1$s in ip saddr . tcp sport . ip daddr . tcp dport @c4 drop\n"
			"add rule inet %1$s out ip daddr . tcp dport . ip saddr . tcp sport @c4 drop\n"
			"add rule inet %1$s in ip6 saddr . tcp sport . ip6 daddr . tcp dport @c6 drop\n"
			"add rule inet %1$s out ip6 daddr . tcp dport . ip6 saddr . tcp sport @c6 drop\n",
			name, NETLOCK_PASS_MARK);
	snprintf(cmd + n, sizeof(cmd) - n, "add element inet %s %s { %s . %u . %s . %u }\n",
		 name, family == AF_INET ? "c4" : "c6", ra, rport, la, lport);
	return nft_run(cmd, nsfd, false);
}

int netlock_remove(const char *name, int nsfd)
{
	char cmd[256];

	if (!netlock_name_ok(name))
		return log_errno(EINVAL, "network lock: bad table name");
	/* "add" first: deleting a table that is not there is not an error */
	snprintf(cmd, sizeof(cmd), "add table inet %1$s\ndelete table inet %1$s\n", name);
	return nft_run(cmd, nsfd, false);
}

bool netlock_exists(const char *name)
{
	char cmd[128];

	if (!netlock_name_ok(name))
		return false;
	snprintf(cmd, sizeof(cmd), "list table inet %s\n", name);
	return nft_run(cmd, -1, true) == 0;
}
