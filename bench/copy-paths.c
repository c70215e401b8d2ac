// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The paths a restore's pages take, each timed alone on SIZE_MB, so that the
 * phases of `kup restore -v` can be set beside them (bench/lab-bench.sh):
 *   memcpy into fresh and into touched memory (this process);
 *   process_vm_writev of 8 MiB pieces into fresh memory of a child (the
 *   restore's way), with the default advice, MADV_NOHUGEPAGE and
 *   MADV_HUGEPAGE there, and after
 *   MADV_POPULATE_WRITE there (the copy alone: the faults were taken before
 *   the clock started);
 *   pread of a store device with O_DIRECT into a touched buffer (-p DEV);
 *   XXH64 of touched memory (the page images' and the extents' checksum).
 * Usage: copy-paths [-p DEV] [SIZE_MB]    prints "NAME_ms N" lines
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define PIECE (8UL << 20)
#define HUGE_SZ (2UL << 20)

volatile unsigned long long sum;	/* the checksum is computed, not dropped */

static double ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static char *map_aligned(size_t len)
{
	char *p = mmap(NULL, len + HUGE_SZ, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	return (char *)(((unsigned long)p + HUGE_SZ - 1) & ~(HUGE_SZ - 1));
}

/* A child with fresh memory at the same address as ours (fork: the mapping
 * is there, untouched); @advice applied in it first (-1: none). */
static double writev_child(char *src, char *dst, size_t len, int advice)
{
	int go[2], done[2];
	double t;
	pid_t pid;
	char c;

	if (pipe(go) || pipe(done))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (advice >= 0)
			madvise(dst, len, advice);
		if (write(done[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	if (read(done[0], &c, 1) != 1)
		return -1;
	t = ms();
	for (size_t off = 0; off < len; off += PIECE) {
		size_t n = len - off < PIECE ? len - off : PIECE;
		struct iovec l = { src + off, n }, r = { dst + off, n };

		if (process_vm_writev(pid, &l, 1, &r, 1, 0) != (ssize_t)n) {
			perror("process_vm_writev");
			t = -1;
			break;
		}
	}
	t = t < 0 ? -1 : ms() - t;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(go[0]);
	close(go[1]);
	close(done[0]);
	close(done[1]);
	return t;
}

int main(int argc, char **argv)
{
	const char *dev = NULL;
	size_t len;
	char *src, *dst, *dst2;
	double t;
	int opt;

	while ((opt = getopt(argc, argv, "p:")) != -1) {
		if (opt != 'p') {
			fprintf(stderr, "usage: copy-paths [-p DEV] [SIZE_MB]\n");
			return 2;
		}
		dev = optarg;
	}
	len = (optind < argc ? strtoull(argv[optind], NULL, 10) : 64) << 20;
	src = map_aligned(len);
	dst = map_aligned(len);
	dst2 = map_aligned(len);
	if (!src || !dst || !dst2)
		return 1;
	for (size_t i = 0; i < len; i += 8)
		*(unsigned long *)(src + i) = i * 0x9e3779b97f4a7c15UL;

	t = ms();
	memcpy(dst2, src, len);
	printf("memcpy_fresh_ms %.1f\n", ms() - t);
	t = ms();
	memcpy(dst2, src, len);
	printf("memcpy_warm_ms %.1f\n", ms() - t);
	t = ms();
	sum = XXH64(src, len, 0);
	printf("xxh64_ms %.1f\n", ms() - t);
	printf("process_vm_writev_fresh_ms %.1f\n", writev_child(src, dst, len, -1));
	printf("process_vm_writev_fresh_nohuge_ms %.1f\n", writev_child(src, dst, len, MADV_NOHUGEPAGE));
	printf("process_vm_writev_hugepage_ms %.1f\n", writev_child(src, dst, len, MADV_HUGEPAGE));
	printf("process_vm_writev_prefaulted_ms %.1f\n", writev_child(src, dst, len, MADV_POPULATE_WRITE));
	if (dev) {
		int fd = open(dev, O_RDONLY | O_DIRECT);

		if (fd < 0) {
			perror(dev);
			return 1;
		}
		t = ms();
		for (size_t off = 0; off < len; off += PIECE) {
			size_t n = len - off < PIECE ? len - off : PIECE;

			if (pread(fd, dst2 + off, n, off) != (ssize_t)n) {
				perror("pread");
				return 1;
			}
		}
		printf("pread_direct_ms %.1f\n", ms() - t);
		close(fd);
	}
	return 0;
}
