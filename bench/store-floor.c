// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The floor of an eager dump into a store file: the paths its pages can
 * take, each timed alone on SIZE_MB, beside a warm memcpy of the same size
 * measured in the same run (bench/run.sh prints them under the store's
 * rows).  The pages come from a child's touched memory, as the dump reads
 * a service's, on two threads (the dump's two copiers), in 2 MiB ranges:
 *   read      process_vm_readv into a 2 MiB buffer of each thread, and the
 *             XXH3 of each 1 MiB piece (the dump's read half, no write);
 *   pwrite    a cached 2 MiB buffer written into a file of DIR with
 *             pwrite() (the store's way today), one writer (writers of one
 *             tmpfs file queue on its inode's lock): into pages the file
 *             had allocated (fallocate, as `kup ppp format` and the scrub
 *             leave them), then into pages written before;
 *   mapped    read straight into the file's shared mapping (one copy, the
 *             XXH3 from the mapping), its pages written before: the
 *             populate (MADV_POPULATE_WRITE) of the mapping, the copy and
 *             the munmap timed apart;
 *   mapped_fresh the same into pages only allocated (the populate clears
 *             them).
 * Usage: store-floor DIR [SIZE_MB]    prints "NAME_ms N" lines
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#if defined(__x86_64__)
#include <xxh_x86dispatch.h>
#endif

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define RANGE (2UL << 20)
#define PIECE (1UL << 20)

static volatile unsigned long long sink;	/* the sums are computed, not dropped */

static double ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

enum mode { READ, MAPPED };

struct run {
	enum mode mode;
	pid_t pid;
	char *remote;		/* the child's memory (same address as ours) */
	char *map;		/* MAPPED: the file's mapping */
	size_t len;
	size_t next;		/* the next range to take */
	int err;
};

static void *copier(void *arg)
{
	struct run *r = arg;
	char *buf = aligned_alloc(4096, RANGE);
	unsigned long long h = 0;

	if (!buf)
		return (void *)1;
	memset(buf, 0, RANGE);
	for (;;) {
		size_t off = __atomic_fetch_add(&r->next, RANGE, __ATOMIC_RELAXED);
		size_t n;
		char *dst;

		if (off >= r->len)
			break;
		n = r->len - off < RANGE ? r->len - off : RANGE;
		dst = r->mode == MAPPED ? r->map + off : buf;
		if (process_vm_readv(r->pid, &(struct iovec){ dst, n }, 1,
				     &(struct iovec){ r->remote + off, n }, 1, 0) != (ssize_t)n) {
			r->err = errno ? errno : EIO;
			break;
		}
		for (size_t p = 0; p < n; p += PIECE)
			h ^= XXH3_64bits(dst + p, n - p < PIECE ? n - p : PIECE);
	}
	sink ^= h;
	free(buf);
	return NULL;
}

/* Two copiers over the child's memory; the time, or -1. */
static double copy2(struct run *r)
{
	pthread_t t[2];
	double t0 = ms();
	int nt = 0;

	r->next = 0;
	r->err = 0;
	for (int i = 0; i < 2; i++)
		if (!pthread_create(&t[i], NULL, copier, r))
			nt++;
	for (int i = 0; i < nt; i++)
		pthread_join(t[i], NULL);
	if (!nt || r->err) {
		fprintf(stderr, "store-floor: process_vm_readv: %s\n", strerror(r->err ? r->err : EAGAIN));
		return -1;
	}
	return ms() - t0;
}

/* A file of @len bytes in @dir: allocated, and written once if @written. */
static int make_file(const char *dir, size_t len, bool written, char *path, size_t plen)
{
	int fd;

	snprintf(path, plen, "%s/store-floor.XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0) {
		perror(path);
		return -1;
	}
	if (fallocate(fd, 0, 0, len)) {
		perror("fallocate");
		close(fd);
		unlink(path);
		return -1;
	}
	if (written) {
		char *buf = aligned_alloc(4096, RANGE);

		if (!buf)
			return -1;
		memset(buf, 0x5a, RANGE);
		for (size_t off = 0; off < len; off += RANGE)
			if (pwrite(fd, buf, len - off < RANGE ? len - off : RANGE, off) < 0) {
				perror("pwrite");
				free(buf);
				close(fd);
				unlink(path);
				return -1;
			}
		free(buf);
	}
	return fd;
}

/* One writer: a cached 2 MiB buffer into the file, @len bytes. */
static double pwrite_file(int fd, size_t len)
{
	char *buf = aligned_alloc(4096, RANGE);
	double t;

	if (!buf)
		return -1;
	memset(buf, 0xa5, RANGE);
	t = ms();
	for (size_t off = 0; off < len; off += RANGE)
		if (pwrite(fd, buf, len - off < RANGE ? len - off : RANGE, off) < 0) {
			perror("pwrite");
			free(buf);
			return -1;
		}
	t = ms() - t;
	free(buf);
	return t;
}

/* The mapped path into @fd: populate, copy, munmap, each printed. */
static int mapped(struct run *r, int fd, const char *name)
{
	double t, tp, tc, tu;

	t = ms();
	r->map = mmap(NULL, r->len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (r->map == MAP_FAILED) {
		perror("mmap");
		return -1;
	}
	if (madvise(r->map, r->len, MADV_POPULATE_WRITE))
		perror("madvise(MADV_POPULATE_WRITE)");	/* the copy faults instead */
	tp = ms() - t;
	r->mode = MAPPED;
	tc = copy2(r);
	t = ms();
	munmap(r->map, r->len);
	tu = ms() - t;
	if (tc < 0)
		return -1;
	printf("%s_populate_ms %.1f\n%s_copy_ms %.1f\n%s_munmap_ms %.1f\n%s_ms %.1f\n", name, tp,
	       name, tc, name, tu, name, tp + tc + tu);
	return 0;
}

int main(int argc, char **argv)
{
	struct run r = { 0 };
	char path[4096], *src, *dst;
	int go[2], fd, ret = 1;
	double t;
	char c;

	if (argc < 2) {
		fprintf(stderr, "usage: store-floor DIR [SIZE_MB]\n");
		return 2;
	}
	r.len = (argc > 2 ? strtoull(argv[2], NULL, 10) : 1024) << 20;
	src = mmap(NULL, r.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	dst = mmap(NULL, r.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (src == MAP_FAILED || dst == MAP_FAILED || pipe(go))
		return 1;
	for (size_t i = 0; i < r.len; i += 8)
		*(unsigned long *)(src + i) = i * 0x9e3779b97f4a7c15UL;
	memcpy(dst, src, r.len);	/* touched: the memcpy below is the warm one */
	t = ms();
	memcpy(dst, src, r.len);
	printf("memcpy_warm_ms %.1f\n", ms() - t);
	munmap(dst, r.len);

	/* the child: src's pages are its own once it writes them (COW broken) */
	r.pid = fork();
	if (r.pid < 0)
		return 1;
	if (r.pid == 0) {
		for (size_t i = 0; i < r.len; i += 4096)
			src[i] ^= 1;
		if (write(go[1], "r", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	if (read(go[0], &c, 1) != 1)
		goto out;
	r.remote = src;
	munmap(src, r.len);	/* ours: the child's are read */

	r.mode = READ;
	t = copy2(&r);
	if (t < 0)
		goto out;
	printf("read_ms %.1f\n", t);

	fd = make_file(argv[1], r.len, false, path, sizeof(path));
	if (fd < 0)
		goto out;
	unlink(path);
	printf("pwrite_allocated_ms %.1f\n", pwrite_file(fd, r.len));
	printf("pwrite_written_ms %.1f\n", pwrite_file(fd, r.len));
	if (mapped(&r, fd, "mapped"))
		goto out;
	close(fd);

	fd = make_file(argv[1], r.len, false, path, sizeof(path));
	if (fd < 0)
		goto out;
	unlink(path);
	if (mapped(&r, fd, "mapped_fresh"))
		goto out;
	close(fd);
	ret = 0;
out:
	kill(r.pid, SIGKILL);
	waitpid(r.pid, NULL, 0);
	return ret;
}
