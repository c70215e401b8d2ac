// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ppp-bench: write and read bandwidth of one large blob in a file store,
 * beside memcpy() of the same size.
 *
 *   ppp-bench [-s SIZE_MiB] [-d DIR | -p DEVICE] [-c xxhash64|crc32c]
 *             (default: 1024 MiB in /dev/shm, the default extent checksum)
 *
 * -p: a block device (the pmem region of the QEMU lab); it is formatted
 * (its content is lost) and left formatted and empty.
 *
 * Write paths, each on a freshly formatted store: ppp_blob_write() in 1 MiB
 * pieces (what the dump engine does: O_DIRECT on a block device), and the
 * zero-copy pointer (process_vm_readv straight into a file store's mapping);
 * each split into the copy, ppp_blob_close() (the checksum of every extent)
 * and ppp_txn_commit() (msync/fdatasync + superblock flip).  Read paths:
 * ppp_blob_read() in 8 MiB pieces (what a restore does), ppp_blob_map() with
 * and without checksum verification, followed by a copy out.  The last line
 * gives the store write bandwidth as a share of memcpy's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xxh_x86dispatch.h>
#endif

#include "ppp.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void report(const char *what, size_t bytes, double secs)
{
	printf("  %-44s %8.3f s %8.2f GiB/s\n", what, secs,
	       bytes / secs / (1024.0 * 1024 * 1024));
}

static void *xalloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

static void die(const char *what, int r)
{
	fprintf(stderr, "ppp-bench: %s: %s\n", what, strerror(-r));
	exit(1);
}

int main(int argc, char **argv)
{
	size_t mib = 1024, len;
	const char *dir = "/dev/shm", *dev = NULL;
	char path[4096];
	struct ppp_blob_info bi;
	struct ppp_ckpt *c;
	struct ppp_blob *b;
	struct ppp_txn *t;
	struct ppp *p;
	const void *data;
	uint8_t *src, *dst;
	double t0, t1, t2, t3, start;
	volatile uint64_t sum;
	double memcpy_s, cold_s, write_s;
	struct ppp_format_opts fo = { 0 };
	const char *cs;
	char label[80];
	int opt, r;

	while ((opt = getopt(argc, argv, "s:d:p:c:h")) != -1) {
		switch (opt) {
		case 's': mib = strtoul(optarg, NULL, 0); break;
		case 'd': dir = optarg; break;
		case 'p': dev = optarg; break;
		case 'c':
			r = ppp_csum_parse(optarg);
			if (r < 0) {
				fprintf(stderr, "ppp-bench: unknown checksum %s\n", optarg);
				return 2;
			}
			fo.csum = r;
			break;
		default:
			fprintf(stderr, "usage: ppp-bench [-s SIZE_MiB] [-d DIR | -p DEVICE] "
				"[-c xxhash64|crc32c]\n");
			return opt == 'h' ? 0 : 2;
		}
	}
	len = mib << 20;
	if (!len)
		return 2;
	if (dev)
		snprintf(path, sizeof(path), "%s", dev);
	else
		snprintf(path, sizeof(path), "%s/ppp-bench.%d", dir, getpid());

	src = xalloc(len);
	dst = xalloc(len);
	for (size_t i = 0; i < len; i += 8)
		*(uint64_t *)(src + i) = i * 0x9e3779b97f4a7c15ull;

	cs = ppp_csum_name(fo.csum ? fo.csum : PPP_CSUM_XXH3);	/* (ppp_format's default) */
	printf("ppp-bench: %zu MiB blob, store %s, %s extents\n", mib, path, cs);
	printf("baseline\n");
	t0 = now();
	memcpy(dst, src, len);		/* first touch of dst: page faults */
	t1 = now();
	memcpy(dst, src, len);
	t2 = now();
	memcpy_s = t2 - t1;
	cold_s = t1 - t0;
	report("memcpy, destination not yet faulted", len, t1 - t0);
	report("memcpy, warm", len, t2 - t1);
	t0 = now();
	sum = ppp_crc32c(0, src, len);
	t1 = now();
	report("crc32c (ISA-L)", len, t1 - t0);
	t0 = now();
	sum = XXH64(src, len, 0);
	t1 = now();
	report("xxhash64 (libxxhash XXH64)", len, t1 - t0);
	t0 = now();
	sum = XXH3_64bits(src, len);
	t1 = now();
	report("xxh3 (libxxhash XXH3, dispatched)", len, t1 - t0);
	(void)sum;

	fo.flags = dev ? PPP_FORMAT_FORCE : 0;
	r = ppp_format(path, dev ? 0 : len + (64 << 20), &fo);
	if (r)
		die("format", r);

	/*
	 * On a device, one untimed pass first (a transaction aborted): under
	 * a hypervisor the host allocates the guest's RAM, the store's
	 * included, when it is first written, which a machine's RAM never
	 * costs (and which a store written before a kexec has paid).
	 */
	if (dev) {
		if ((r = ppp_open(path, PPP_RDWR, &p)) || (r = ppp_txn_begin(p, 0, &t)) ||
		    (r = ppp_blob_create(t, "warmup", len, &b)))
			die("warm-up", r);
		for (size_t off = 0; off < len; off += 1 << 20)
			if ((r = ppp_blob_write(b, src + off, 1 << 20)))
				die("warm-up write", r);
		ppp_txn_abort(t);
		ppp_close(p);
	}

	/* sequential writes */
	printf("write, ppp_blob_write in 1 MiB pieces%s\n", dev ? " (O_DIRECT; after an "
	       "untimed pass over the store)" : "");
	if ((r = ppp_open(path, PPP_RDWR, &p)) || (r = ppp_txn_begin(p, 0, &t)))
		die("begin", r);
	start = t0 = now();
	if ((r = ppp_blob_create(t, "pages2.img", len, &b)))
		die("create", r);
	t1 = now();
	for (size_t off = 0; off < len; off += 1 << 20)
		if ((r = ppp_blob_write(b, src + off, 1 << 20)))
			die("write", r);
	t2 = now();
	if ((r = ppp_blob_close(b)))
		die("close", r);
	t3 = now();
	report("create (reserve)", len, t1 - t0);
	snprintf(label, sizeof(label), "write (copy + %s)", cs);
	report(label, len, t2 - t1);
	report("close", len, t3 - t2);
	t2 = now();
	if ((r = ppp_txn_commit(t)))
		die("commit", r);
	t3 = now();
	write_s = t3 - start;
	report("commit", len, t3 - t2);
	report("total", len, t3 - start);
	ppp_close(p);

	/* read */
	printf("read (fresh open)\n");
	/* what a restore from a block device does: ppp_blob_read in 8 MiB
	 * pieces (O_DIRECT there), each extent checked in the buffer */
	if ((r = ppp_open(path, PPP_RDONLY, &p)) || (r = ppp_ckpt_open(p, &c)) ||
	    (r = ppp_blob_find(c, "pages2.img", &bi)))
		die("open for reading", r);
	t0 = now();
	for (size_t off = 0; off < len; off += 8 << 20)
		if ((r = ppp_blob_read(c, &bi, off, dst + off, len - off < (8u << 20) ? len - off : 8 << 20)))
			die("read", r);
	t1 = now();
	snprintf(label, sizeof(label), "ppp_blob_read, 8 MiB pieces (+ %s)", cs);
	report(label, len, t1 - t0);
	if (memcmp(dst, src, len))
		die("read back", -EIO);
	t0 = now();
	if ((r = ppp_verify(p, NULL)))
		die("verify", r);
	t1 = now();
	report("ppp_verify (whole checkpoint)", len, t1 - t0);
	ppp_ckpt_close(c);
	ppp_close(p);

	if ((r = ppp_open(path, PPP_RDONLY, &p)) || (r = ppp_ckpt_open(p, &c)) ||
	    (r = ppp_blob_find(c, "pages2.img", &bi)))
		die("open for reading", r);
	t0 = now();
	if ((r = ppp_blob_map(c, &bi, 0, &data)))
		die("map", r);
	t1 = now();
	memcpy(dst, data, len);
	t2 = now();
	snprintf(label, sizeof(label), "map with verification (%s)", cs);
	report(label, len, t1 - t0);
	report("copy out of the mapping", len, t2 - t1);
	ppp_ckpt_close(c);
	ppp_close(p);

	if ((r = ppp_open(path, PPP_RDONLY, &p)) || (r = ppp_ckpt_open(p, &c)) ||
	    (r = ppp_blob_find(c, "pages2.img", &bi)))
		die("open for reading", r);
	t0 = now();
	if ((r = ppp_blob_map(c, &bi, PPP_MAP_NOVERIFY, &data)))
		die("map", r);
	memcpy(dst, data, len);
	t1 = now();
	report("map without verification + copy out", len, t1 - t0);
	ppp_ckpt_close(c);
	ppp_close(p);

	/* write through the zero-copy pointer, on a fresh store */
	r = ppp_format(path, dev ? 0 : len + (64 << 20), &fo);
	if (r)
		die("format", r);
	printf("write, zero-copy pointer (ppp_blob_data, through the mapping)\n");
	if ((r = ppp_open(path, PPP_RDWR, &p)) || (r = ppp_txn_begin(p, 0, &t)))
		die("open", r);
	start = t0 = now();
	if ((r = ppp_blob_create(t, "pages.img", len, &b)))
		die("create", r);
	t1 = now();
	memcpy(ppp_blob_data(b), src, len);
	t2 = now();
	if ((r = ppp_blob_close(b)))
		die("close", r);
	t3 = now();
	report("create (reserve + prefault)", len, t1 - t0);
	report("copy into the mapping", len, t2 - t1);
	snprintf(label, sizeof(label), "close (%s per extent)", cs);
	report(label, len, t3 - t2);
	t0 = now();
	if ((r = ppp_txn_commit(t)))
		die("commit", r);
	t1 = now();
	report("commit (msync + superblock)", len, t1 - t0);
	report("total", len, t1 - start);
	ppp_close(p);

	printf("store write (ppp_blob_write, commit included): %.2f GiB/s = %.0f%% of "
	       "warm memcpy (%.2f GiB/s), %.0f%% of memcpy into fresh memory (%.2f GiB/s)\n",
	       len / write_s / (1 << 30), 100.0 * memcpy_s / write_s,
	       len / memcpy_s / (1 << 30), 100.0 * cold_s / write_s,
	       len / cold_s / (1 << 30));

	if (dev && !ppp_open(path, PPP_RDWR, &p)) {
		ppp_scrub(p);	/* leave it formatted, empty */
		ppp_close(p);
	}
	if (!dev)
		unlink(path);
	return 0;
}
