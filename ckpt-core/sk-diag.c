// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * sock_diag queries, said once for the socket kinds that need them (inet,
 * packet, netlink, unix).  A socket's diag answers come from the network
 * namespace the diag socket was made in, which is the dumped socket's
 * (SIOCGSKNS), not necessarily kup's: the diag socket is made there with
 * setns() of the calling thread, which goes back to its own namespace
 * right after (a thread left in the wrong one would make every later
 * socket there, so failing to come back aborts).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/sock_diag.h>

#include "files.h"
#include "log.h"
#include "sk-diag.h"

#ifndef SIOCGSKNS
#define SIOCGSKNS 0x894C
#endif

int sk_diag_netns(const struct fd_info *fi, uint64_t *ino)
{
	struct stat st;
	int nsfd, ret;

	nsfd = ioctl(fi->lfd, SIOCGSKNS);
	if (nsfd < 0 || fstat(nsfd, &st) < 0) {
		ret = log_errno(errno, FI_FMT ": cannot find the network namespace of %s",
				FI_ARG(fi), fi->link);
		if (nsfd >= 0)
			close(nsfd);
		return ret;
	}
	*ino = st.st_ino;
	return nsfd;
}

int sk_diag_socket(int nsfd)
{
	int own, s, ret;

	if (nsfd < 0) {
		s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
		return s < 0 ? -errno : s;
	}
	own = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (own < 0)
		return -errno;
	if (setns(nsfd, CLONE_NEWNET) < 0) {
		ret = -errno;
		close(own);
		return ret;
	}
	s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	ret = s < 0 ? -errno : s;
	if (setns(own, CLONE_NEWNET) < 0) {
		log_errno(errno, "cannot go back to our network namespace");
		abort();	/* every later socket would be made in the wrong one */
	}
	close(own);
	return ret;
}

/* The next datagram of @s into *@buf (grown to fit it): its length or -errno. */
static ssize_t recv_all(int s, char **buf, size_t *cap)
{
	ssize_t r;

	do	/* its size first: a listener's icons, a big dump */
		r = recv(s, NULL, 0, MSG_PEEK | MSG_TRUNC);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if ((size_t)r + 1 > *cap) {
		char *nb = realloc(*buf, r + 1);

		if (!nb)
			return -ENOMEM;
		*buf = nb;
		*cap = r + 1;
	}
	do
		r = recv(s, *buf, *cap, 0);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r ? r : -EBADMSG;
}

/* The answers in @buf (@r bytes): 1 or -errno to stop, 0 for more. */
static int parse_answers(char *buf, ssize_t r, size_t min, bool *done,
			 int (*cb)(const struct nlmsghdr *h, void *arg), void *arg)
{
	for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)r);
	     h = NLMSG_NEXT(h, r)) {
		if (h->nlmsg_type == NLMSG_DONE) {
			*done = true;
			return 0;
		}
		if (h->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = NLMSG_DATA(h);

			return h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error < 0 ?
			       e->error : -EBADMSG;
		}
		if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY && h->nlmsg_len >= NLMSG_LENGTH(min)) {
			int ret = cb(h, arg);

			if (ret)
				return ret;
		}
	}
	return 0;
}

int sk_diag_query(int nsfd, const void *req, size_t len, size_t min,
		  int (*cb)(const struct nlmsghdr *h, void *arg), void *arg)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	bool dump = ((const struct nlmsghdr *)req)->nlmsg_flags & NLM_F_DUMP, done = false;
	size_t cap = 0;
	char *buf = NULL;
	int s, ret = 0;

	s = sk_diag_socket(nsfd);
	if (s < 0)
		return s;
	if (sendto(s, req, len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = -errno;
		goto out;
	}
	while (!ret && !done) {
		ssize_t r = recv_all(s, &buf, &cap);

		if (r < 0) {
			ret = r;
			break;
		}
		ret = parse_answers(buf, r, min, &done, cb, arg);
		done |= !dump;
	}
out:
	free(buf);
	close(s);
	return ret;
}
