/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sock_diag (NETLINK_SOCK_DIAG) queries for the socket kinds (sk-diag.c):
 * the network namespace of a socket, a diag socket made in it, and one
 * request with its answers handed to a callback.
 */
#ifndef KUP_SK_DIAG_H
#define KUP_SK_DIAG_H

#include <stddef.h>
#include <stdint.h>
#include <linux/netlink.h>

struct fd_info;

/*
 * The network namespace of socket @fi (SIOCGSKNS): an fd on it, its inode
 * in *@ino.  -errno, logged naming pid, fd and the socket.
 */
int sk_diag_netns(const struct fd_info *fi, uint64_t *ino);

/*
 * A NETLINK_SOCK_DIAG socket made in the network namespace @nsfd (-1: ours);
 * the calling thread is back in its own namespace after.  fd or -errno.
 */
int sk_diag_socket(int nsfd);

/*
 * Send sock_diag request @req (@len bytes: its nlmsghdr, then the family's
 * request) from a socket of namespace @nsfd (-1: ours) and give each
 * SOCK_DIAG_BY_FAMILY answer whose payload has at least @min bytes to
 * @cb, which returns 0 (go on), 1 (done) or -errno (stop).  The answers
 * end with NLMSG_DONE, or after the first datagram for a request without
 * NLM_F_DUMP.  1: @cb said done; 0: the answers ended; -errno: @cb's, the
 * error an NLMSG_ERROR answer gave (-EBADMSG if none), or the socket's.
 * Logs nothing.
 */
int sk_diag_query(int nsfd, const void *req, size_t len, size_t min,
		  int (*cb)(const struct nlmsghdr *h, void *arg), void *arg);

#endif
