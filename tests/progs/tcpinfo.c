// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tcpinfo PID: what the kernel says of each established TCP connection of
 * process PID (a copy of each socket fd taken with pidfd_getfd, then
 * TCP_INFO), one line each:
 *     fd N options ts,sack,wscale,usec_ts,... wscale SND,RCV
 * "options" lists the tcpi_options bits by name (ss prints some of them
 * only with -o, and none of usec_ts in iproute2 6.1).  Exit status 1 if the
 * process cannot be looked at.
 */
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "say.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

static const char *const bits[] = { "ts", "sack", "wscale", "ecn", "ecn_seen",
				    "syn_data", "usec_ts", "tfo_child" };

int main(int argc, char **argv)
{
	char path[64], opts[128];
	struct dirent *de;
	int pidfd;
	DIR *d;

	if (argc != 2)
		die("usage: tcpinfo PID");
	pidfd = syscall(SYS_pidfd_open, atoi(argv[1]), 0);
	if (pidfd < 0)
		die("pidfd_open %s: %m", argv[1]);
	snprintf(path, sizeof(path), "/proc/%s/fd", argv[1]);
	d = opendir(path);
	if (!d)
		die("%s: %m", path);
	while ((de = readdir(d))) {
		struct tcp_info ti;
		socklen_t len = sizeof(ti);
		struct stat st;
		int tfd, n = 0;

		if (de->d_name[0] == '.')
			continue;
		tfd = syscall(SYS_pidfd_getfd, pidfd, atoi(de->d_name), 0);
		if (tfd < 0)
			continue;
		memset(&ti, 0, sizeof(ti));
		if (fstat(tfd, &st) || !S_ISSOCK(st.st_mode) ||
		    getsockopt(tfd, IPPROTO_TCP, TCP_INFO, &ti, &len) || ti.tcpi_state != 1) {
			close(tfd);
			continue;
		}
		opts[0] = 0;
		for (unsigned i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
			if (ti.tcpi_options & (1u << i))
				n += snprintf(opts + n, sizeof(opts) - n, "%s%s", n ? "," : "", bits[i]);
		printf("fd %s options %s wscale %u,%u\n", de->d_name, n ? opts : "-",
		       ti.tcpi_snd_wscale, ti.tcpi_rcv_wscale);
		close(tfd);
	}
	closedir(d);
	return 0;
}
