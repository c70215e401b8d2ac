/*
 * lockprobe: who holds a lock on a file, seen from another process.
 *
 * Usage: lockprobe [-o] FILE START LEN
 *   Asks F_GETLK (F_OFD_GETLK with -o) whether a write lock on bytes
 *   START..START+LEN-1 (LEN 0: to EOF) of FILE could be taken, and prints
 *   "FREE" or "LOCKED <R|W> pid=<pid>" (pid -1: an OFD lock).
 *   Exit status 0 either way; 2 on a usage or system error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int ofd = argc > 1 && !strcmp(argv[1], "-o");
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int fd;

	if (argc != 4 + ofd) {
		fprintf(stderr, "usage: lockprobe [-o] FILE START LEN\n");
		return 2;
	}
	fl.l_start = atoll(argv[2 + ofd]);
	fl.l_len = atoll(argv[3 + ofd]);
	fd = open(argv[1 + ofd], O_RDWR);
	if (fd < 0 || fcntl(fd, ofd ? F_OFD_GETLK : F_GETLK, &fl)) {
		fprintf(stderr, "lockprobe %s: %s\n", argv[1 + ofd], strerror(errno));
		return 2;
	}
	if (fl.l_type == F_UNLCK)
		printf("FREE\n");
	else
		printf("LOCKED %c pid=%d\n", fl.l_type == F_WRLCK ? 'W' : 'R', fl.l_pid);
	return 0;
}
