/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The network lock: between the dump and the restore of established TCP
 * connections on one kernel, the packets of their 4-tuples are dropped, so
 * that the peer's retransmissions meet no socket (which would answer with a
 * RST) and our repaired sockets send nothing.  One nftables table per dump
 * and per network namespace, "inet kup-lock-<id>", holds two sets of
 * tuples and four drop rules in input and output chains at priority -300
 * (before conntrack).  docs/sockets.md tells the whole story.
 */
#ifndef KUP_NETLOCK_H
#define KUP_NETLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NETLOCK_NAME_MAX	64
/* Packets carrying this mark (SO_MARK) pass the lock: the peer's FIN that
 * the restore replays into a repaired socket (files-sk-inet.c). */
#define NETLOCK_PASS_MARK	0x6b7570f1u

/* A fresh table name for one dump: "kup-lock-<pid>-<time>". */
void netlock_new_name(char *buf, size_t len);
/* Is @name a table name netlock_new_name() could have made? */
bool netlock_name_ok(const char *name);

/*
 * In the network namespace @nsfd (-1: ours): create table @name (when
 * @create) and add the connection @family (AF_INET, AF_INET6: 4 or 16 byte
 * addresses, network order) local -> remote to its drop sets.
 */
int netlock_add(const char *name, int nsfd, bool create, int family,
		const void *laddr, uint16_t lport, const void *raddr, uint16_t rport);
/* Remove table @name from the namespace @nsfd (-1: ours); no error when it
 * does not exist. */
int netlock_remove(const char *name, int nsfd);
/* Does table @name exist in our namespace? (tests, messages) */
bool netlock_exists(const char *name);

#endif
