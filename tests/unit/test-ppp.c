// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of the persistent page store (ppp/) on temporary files:
 * format/open/txn/commit/read/verify/scrub, corruption detection, crash and
 * abort safety, hostile superblocks and indexes.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <xxhash.h>
#include <xxh_x86dispatch.h>

#include "ppp.h"
#include "../../ppp/ppp-int.h"	/* on-media layout, to forge bad stores */

#define MiB (1ull << 20)

static char tmpdir[256];
/* The extent checksum of the stores the tests format: the whole suite runs
 * once with the default (xxh3), once with xxhash64 and once with crc32c. */
static uint32_t g_csum;
static char logbuf[1 << 16];
static size_t loglen;

static void capture_logger(int level, const char *msg)
{
	int n = snprintf(logbuf + loglen, sizeof(logbuf) - loglen, "%d %s\n", level, msg);

	if (n > 0 && loglen + n < sizeof(logbuf))
		loglen += n;
	if (getenv("PPP_TEST_VERBOSE"))
		fprintf(stderr, "[log %d] %s\n", level, msg);
}

static void log_reset(void)
{
	loglen = 0;
	logbuf[0] = 0;
}

static bool log_has(const char *s)
{
	return strstr(logbuf, s) != NULL;
}

static char *tpath(const char *name)
{
	static char buf[4][512];
	static int i;
	char *p = buf[i++ % 4];

	snprintf(p, 512, "%s/%s", tmpdir, name);
	return p;
}

static int setup(void **state)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

	snprintf(tmpdir, sizeof(tmpdir), "%s/test-ppp.XXXXXX", base);
	assert_non_null(mkdtemp(tmpdir));
	ppp_set_logger(capture_logger);
	log_reset();
	return 0;
}

static int teardown(void **state)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void fill(void *buf, size_t len, uint32_t seed)
{
	uint8_t *b = buf;

	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		b[i] = seed >> 16;
	}
}

static void *pattern(size_t len, uint32_t seed)
{
	void *b = malloc(len ? len : 1);

	assert_non_null(b);
	fill(b, len, seed);
	return b;
}

static struct ppp *open_store(const char *path, int flags)
{
	struct ppp *p = NULL;

	assert_int_equal(ppp_open(path, flags, &p), 0);
	return p;
}

static void put(struct ppp_txn *t, const char *name, const void *data, size_t len)
{
	struct ppp_blob *b;

	assert_int_equal(ppp_blob_create(t, name, len, &b), 0);
	assert_int_equal(ppp_blob_write(b, data, len), 0);
	assert_int_equal(ppp_blob_close(b), 0);
}

/* Commit one checkpoint of the given blobs (content = pattern(size, seed)). */
struct spec { const char *name; size_t size; uint32_t seed; };

static void commit_blobs(const char *path, unsigned flags, const struct spec *s, int n)
{
	struct ppp *p = open_store(path, PPP_RDWR);
	struct ppp_txn *t;

	assert_int_equal(ppp_txn_begin(p, flags, &t), 0);
	for (int i = 0; i < n; i++) {
		void *d = pattern(s[i].size, s[i].seed);

		put(t, s[i].name, d, s[i].size);
		free(d);
	}
	assert_int_equal(ppp_txn_commit(t), 0);
	ppp_close(p);
}

/* Check that the committed checkpoint holds exactly these blobs. */
static void check_blobs(const char *path, const struct spec *s, int n)
{
	struct ppp *p = open_store(path, PPP_RDONLY);
	struct ppp_ckpt *c;

	assert_int_equal(ppp_ckpt_open(p, &c), 0);
	assert_int_equal(ppp_ckpt_nblobs(c), n);
	for (int i = 0; i < n; i++) {
		struct ppp_blob_info bi;
		const void *data;
		void *want = pattern(s[i].size, s[i].seed);

		assert_int_equal(ppp_blob_find(c, s[i].name, &bi), 0);
		assert_int_equal(bi.size, s[i].size);
		assert_int_equal(ppp_blob_map(c, &bi, 0, &data), 0);
		assert_memory_equal(data, want, s[i].size);
		free(want);
	}
	ppp_ckpt_close(c);
	assert_int_equal(ppp_verify(p, NULL), 0);
	ppp_close(p);
}

static void file_pwrite(const char *path, uint64_t off, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0600);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

static void file_pread(const char *path, uint64_t off, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

static void flip_byte(const char *path, uint64_t off)
{
	uint8_t b;

	file_pread(path, off, &b, 1);
	b ^= 0x40;
	file_pwrite(path, off, &b, 1);
}

static void format_file(const char *path, uint64_t size, uint32_t extent)
{
	struct ppp_format_opts o = { .extent_size = extent, .csum = g_csum };

	assert_int_equal(ppp_format(path, size, &o), 0);
}

/* The checksum the tests' stores have (PPP_CSUM_DEFAULT is XXH3). */
static uint32_t store_csum(void)
{
	return g_csum ? g_csum : PPP_CSUM_XXH3;
}

/* @len bytes summed as PPP_CSUM_* @type says, straight from the libraries
 * (docs/ppp-format.md), not through the store's code. */
static uint64_t sum_of(uint32_t type, const void *buf, size_t len)
{
	switch (type) {
	case PPP_CSUM_XXH3:
		return XXH3_64bits_dispatch(buf, len);
	case PPP_CSUM_XXH64:
		return XXH64(buf, len, 0);
	case PPP_CSUM_CRC32C:
		return ppp_crc32c(0, buf, len);
	}
	fail_msg("checksum type %u", type);
	return 0;
}

/* ---- tests ---------------------------------------------------------- */

static void test_crc32c(void **state)
{
	const char *v = "123456789";

	assert_int_equal(ppp_crc32c(0, v, 9), 0xe3069283);
	assert_int_equal(ppp_crc32c(ppp_crc32c(0, v, 4), v + 4, 5), 0xe3069283);
	assert_int_equal(ppp_crc32c(0, NULL, 0), 0);
	assert_string_equal(ppp_csum_name(PPP_CSUM_CRC32C), "crc32c");
	assert_string_equal(ppp_csum_name(PPP_CSUM_XXH64), "xxhash64");
	assert_string_equal(ppp_csum_name(PPP_CSUM_XXH3), "xxh3");
	assert_null(ppp_csum_name(0));
	assert_null(ppp_csum_name(4));
	assert_int_equal(ppp_csum_parse("xxh64"), PPP_CSUM_XXH64);
	assert_int_equal(ppp_csum_parse("xxhash64"), PPP_CSUM_XXH64);
	assert_int_equal(ppp_csum_parse("xxh3"), PPP_CSUM_XXH3);
	assert_int_equal(ppp_csum_parse("xxhash3"), PPP_CSUM_XXH3);
	assert_int_equal(ppp_csum_parse("crc32c"), PPP_CSUM_CRC32C);
	assert_int_equal(ppp_csum_parse("crc32"), -EINVAL);
	assert_int_equal(ppp_csum_parse("xxh128"), -EINVAL);
	/* the values docs/ppp-format.md gives */
	assert_int_equal(XXH64(v, 9, 0), 0x8cb841db40e6ae83ull);
	assert_int_equal(XXH3_64bits_dispatch(v, 9), 0x72dcb18b67a17dffull);
	assert_int_equal(XXH3_64bits_dispatch(NULL, 0), 0x2d06800538d394c2ull);
}

static void test_format_open_empty(void **state)
{
	const char *path = tpath("empty.ppp");
	struct ppp_status st;
	struct ppp_ckpt *c;
	struct stat sbuf;
	struct ppp *p;

	format_file(path, 1 * MiB + 100, 0);
	assert_int_equal(stat(path, &sbuf), 0);
	assert_int_equal(sbuf.st_mode & 0777, 0600);
	assert_int_equal(sbuf.st_size, 1 * MiB);	/* rounded down to 4 KiB */

	p = open_store(path, PPP_RDONLY);
	assert_int_equal(ppp_status(p, &st), 0);
	assert_int_equal(st.version, 2);
	assert_int_equal(st.csum, store_csum());
	assert_string_equal(st.csum_name, g_csum == PPP_CSUM_CRC32C ? "crc32c" :
					  g_csum == PPP_CSUM_XXH64 ? "xxhash64" : "xxh3");
	assert_int_equal(st.backend, PPP_BACKEND_FILE);
	assert_int_equal(st.size, 1 * MiB);
	assert_int_equal(st.data_size, 1 * MiB - 8192);
	assert_int_equal(st.generation, 1);
	assert_false(st.has_ckpt);
	assert_int_equal(st.nblobs, 0);
	assert_int_equal(st.used, 0);
	assert_int_equal(st.extent_size, 1 * MiB);
	assert_int_equal(st.sb_valid, 3);
	assert_int_equal(strlen(st.uuid_str), 36);
	assert_int_not_equal(st.format_time_ns, 0);
	assert_int_equal(ppp_ckpt_open(p, &c), -ENOENT);
	assert_int_equal(ppp_verify(p, NULL), 0);
	assert_string_equal(ppp_path(p), path);
	assert_true(ppp_fd(p) >= 0);
	ppp_close(p);
}

static void test_format_errors(void **state)
{
	const char *path = tpath("f.ppp"), *other = tpath("other");
	struct ppp_format_opts o = { .extent_size = 3000 };
	struct ppp_status st;
	struct ppp *p;

	log_reset();
	assert_int_equal(ppp_format(path, 0, NULL), -EINVAL);
	assert_true(log_has("a size is needed"));
	assert_int_equal(access(path, F_OK), -1);	/* not left behind */
	assert_int_equal(ppp_format(path, 8192, NULL), -EINVAL);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(ppp_format(path, 1 * MiB, &o), -EINVAL);
	assert_int_equal(ppp_format(tmpdir, 1 * MiB, NULL), -EISDIR);
	o = (struct ppp_format_opts){ .csum = PPP_CSUM_XXH3 + 1 };
	log_reset();
	assert_int_equal(ppp_format(path, 1 * MiB, &o), -EINVAL);
	assert_true(log_has("checksum type 4: must be crc32c, xxhash64 or xxh3"));
	assert_int_equal(access(path, F_OK), -1);

	/* a file with something else in it */
	file_pwrite(other, 0, "precious data", 13);
	log_reset();
	assert_int_equal(ppp_format(other, 1 * MiB, NULL), -EEXIST);
	assert_true(log_has(other));
	o = (struct ppp_format_opts){ .flags = PPP_FORMAT_FORCE };
	assert_int_equal(ppp_format(other, 1 * MiB, &o), 0);

	/* reformat an existing store, keeping its size */
	format_file(path, 2 * MiB, 0);
	assert_int_equal(ppp_format(path, 0, NULL), 0);
	p = open_store(path, PPP_RDONLY);
	assert_int_equal(ppp_status(p, &st), 0);
	assert_int_equal(st.size, 2 * MiB);
	ppp_close(p);

	/* reformat wipes the old content */
	{
		struct spec sp[] = { { "secret.img", 100000, 5 } };
		uint8_t *buf = malloc(2 * MiB);

		format_file(path, 2 * MiB, 0);
		commit_blobs(path, 0, sp, 1);
		assert_int_equal(ppp_format(path, 0, NULL), 0);
		file_pread(path, 0, buf, 2 * MiB);
		for (size_t i = 8192; i < 2 * MiB; i++)
			if (buf[i])
				fail_msg("byte %zu survived the format", i);
		free(buf);
		/* grow and shrink */
		format_file(path, 3 * MiB, 0);
		format_file(path, 1 * MiB, 0);
		p = open_store(path, PPP_RDONLY);
		assert_int_equal(ppp_status(p, &st), 0);
		assert_int_equal(st.size, 1 * MiB);
		ppp_close(p);
	}

	/* sparse */
	o = (struct ppp_format_opts){ .flags = PPP_FORMAT_SPARSE };
	assert_int_equal(ppp_format(path, 64 * MiB, &o), 0);
	p = open_store(path, PPP_RDONLY);
	assert_int_equal(ppp_status(p, &st), 0);
	assert_int_equal(st.size, 64 * MiB);
	ppp_close(p);
}

static void test_roundtrip(void **state)
{
	const char *path = tpath("rt.ppp");
	size_t big = 10 * MiB + 123;
	struct ppp_blob *b, *pages;
	struct ppp_blob_info bi;
	struct ppp_status st;
	struct ppp_ckpt *c;
	struct ppp_txn *t;
	const void *data;
	uint8_t *src, *want, tmp[4096];
	struct ppp *p;
	void *dst;

	format_file(path, 64 * MiB, 0);
	p = open_store(path, PPP_RDWR);
	assert_int_equal(ppp_txn_begin(p, 0, &t), 0);

	/* small image written in pieces */
	src = pattern(3000, 1);
	assert_int_equal(ppp_blob_create(t, "pstree.img", 3000, &b), 0);
	for (int i = 0; i < 3000; i += 1000)
		assert_int_equal(ppp_blob_write(b, src + i, 1000), 0);
	assert_int_equal(ppp_blob_close(b), 0);
	free(src);

	/* size unknown at creation */
	src = pattern(777, 2);
	assert_int_equal(ppp_blob_create(t, "core-1234.img", PPP_SIZE_UNKNOWN, &b), 0);
	assert_null(ppp_blob_data(b));
	assert_int_equal(ppp_blob_write(b, src, 500), 0);
	assert_int_equal(ppp_blob_write(b, src + 500, 277), 0);
	assert_int_equal(ppp_blob_close(b), 0);
	free(src);

	/* a page blob written in place, in any order */
	assert_int_equal(ppp_blob_create(t, "pages-1234.img", big, &pages), 0);
	dst = ppp_blob_data(pages);
	assert_non_null(dst);
	assert_int_equal((uintptr_t)dst % 4096, 0);
	src = pattern(big, 3);
	memcpy((uint8_t *)dst + 5 * MiB, src + 5 * MiB, big - 5 * MiB);
	memcpy(dst, src, 5 * MiB);
	assert_int_equal(ppp_blob_close(pages), 0);

	assert_int_equal(ppp_blob_create(t, "empty.img", 0, &b), 0);
	assert_int_equal(ppp_blob_close(b), 0);

	/* a sequential blob spanning several extents, with odd write sizes */
	want = pattern(3 * MiB + 5, 4);
	assert_int_equal(ppp_blob_create(t, "seq.img", 3 * MiB + 5, &b), 0);
	for (size_t off = 0; off < 3 * MiB + 5;) {
		size_t n = 3 * MiB + 5 - off < 333333 ? 3 * MiB + 5 - off : 333333;

		assert_int_equal(ppp_blob_write(b, want + off, n), 0);
		off += n;
	}
	assert_int_equal(ppp_blob_close(b), 0);
	assert_int_equal(ppp_txn_commit(t), 0);
	ppp_close(p);

	p = open_store(path, PPP_RDONLY);
	assert_int_equal(ppp_status(p, &st), 0);
	assert_int_equal(st.generation, 2);
	assert_true(st.has_ckpt);
	assert_int_equal(st.nblobs, 5);
	assert_int_equal(st.blob_bytes, 3000 + 777 + big + 3 * MiB + 5);
	assert_true(st.used >= st.blob_bytes && st.used < st.blob_bytes + 64 * 1024);
	assert_int_not_equal(st.commit_time_ns, 0);

	assert_int_equal(ppp_ckpt_open(p, &c), 0);
	assert_int_equal(ppp_ckpt_generation(c), 2);
	assert_int_equal(ppp_ckpt_nblobs(c), 5);
	/* name order */
	{
		const char *names[] = { "core-1234.img", "empty.img", "pages-1234.img",
					"pstree.img", "seq.img" };

		for (uint32_t i = 0; i < 5; i++) {
			assert_int_equal(ppp_ckpt_blob(c, i, &bi), 0);
			assert_string_equal(bi.name, names[i]);
			assert_int_equal(bi.index, i);
		}
		assert_int_equal(ppp_ckpt_blob(c, 5, &bi), -ENOENT);
	}
	assert_int_equal(ppp_blob_find(c, "nope", &bi), -ENOENT);

	assert_int_equal(ppp_blob_find(c, "pages-1234.img", &bi), 0);
	assert_int_equal(bi.size, big);
	assert_int_equal(bi.offset % 4096, 0);
	assert_int_equal(bi.extent_size, 1 * MiB);
	assert_int_equal(bi.nextents, 11);
	assert_int_equal(ppp_blob_map(c, &bi, 0, &data), 0);
	assert_memory_equal(data, src, big);
	/* partial reads across an extent boundary */
	assert_int_equal(ppp_blob_read(c, &bi, 1 * MiB - 100, tmp, 4096), 0);
	assert_memory_equal(tmp, src + 1 * MiB - 100, 4096);
	assert_int_equal(ppp_blob_read(c, &bi, big - 10, tmp, 10), 0);
	assert_memory_equal(tmp, src + big - 10, 10);
	assert_int_equal(ppp_blob_read(c, &bi, big - 10, tmp, 11), -ERANGE);
	assert_int_equal(ppp_blob_read(c, &bi, UINT64_MAX, tmp, 2), -ERANGE);
	assert_int_equal(ppp_blob_verify(c, &bi), 0);
	/* the offset is usable to map the blob privately from the fd */
	{
		void *m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, ppp_fd(p), bi.offset);

		assert_true(m != MAP_FAILED);
		assert_memory_equal(m, src, 4096);
		munmap(m, 4096);
	}
	free(src);

	assert_int_equal(ppp_blob_find(c, "seq.img", &bi), 0);
	assert_int_equal(ppp_blob_map(c, &bi, 0, &data), 0);
	assert_memory_equal(data, want, 3 * MiB + 5);
	free(want);

	src = pattern(3000, 1);
	assert_int_equal(ppp_blob_find(c, "pstree.img", &bi), 0);
	assert_int_equal(ppp_blob_map(c, &bi, PPP_MAP_NOVERIFY, &data), 0);
	assert_memory_equal(data, src, 3000);
	free(src);
	src = pattern(777, 2);
	assert_int_equal(ppp_blob_find(c, "core-1234.img", &bi), 0);
	assert_int_equal(bi.size, 777);
	assert_int_equal(bi.offset % 64, 0);
	assert_int_equal(ppp_blob_read(c, &bi, 0, tmp, 777), 0);
	assert_memory_equal(tmp, src, 777);
	free(src);
	assert_int_equal(ppp_blob_find(c, "empty.img", &bi), 0);
	assert_int_equal(bi.size, 0);
	assert_int_equal(bi.nextents, 0);
	assert_int_equal(ppp_blob_map(c, &bi, 0, &data), 0);
	assert_non_null(data);
	assert_int_equal(ppp_blob_read(c, &bi, 0, tmp, 0), 0);
	ppp_ckpt_close(c);
	assert_int_equal(ppp_verify(p, NULL), 0);
	ppp_close(p);
}

static void test_corrupt_data(void **state)
{
	const char *path = tpath("bad.ppp");
	struct spec s[] = { { "a.img", 100, 1 }, { "pages.img", 3 * MiB, 2 } };
	struct ppp_blob_info bi;
	struct ppp_ckpt *c;
	const void *data;
	uint8_t tmp[100];
	uint64_t nbad, off;
	struct ppp *p;

	format_file(path, 16 * MiB, 0);
	commit_blobs(path, 0, s, 2);
	check_blobs(path, s, 2);

	p = open_store(path, PPP_RDONLY);
	assert_int_equal(ppp_ckpt_open(p, &c), 0);
	assert_int_equal(ppp_blob_find(c, "pages.img", &bi), 0);
	off = bi.offset;
	ppp_ckpt_close(c);
	ppp_close(p);

	flip_byte(path, off + 1 * MiB + 4242);	/* extent 1 of 3 */

	p = open_store(path, PPP_RDONLY);
	log_reset();
	assert_int_equal(ppp_verify(p, &nbad), -EBADMSG);
	assert_int_equal(nbad, 1);
	assert_true(log_has("blob 'pages.img' extent 1/3"));
	assert_true(log_has(path));
	assert_int_equal(ppp_ckpt_open(p, &c), 0);
	assert_int_equal(ppp_blob_find(c, "pages.img", &bi), 0);
	assert_int_equal(ppp_blob_map(c, &bi, 0, &data), -EBADMSG);
	assert_int_equal(ppp_blob_verify(c, &bi), -EBADMSG);
	assert_int_equal(ppp_blob_read(c, &bi, 0, tmp, 100), 0);		/* extent 0 */
	assert_int_equal(ppp_blob_read(c, &bi, 2 * MiB, tmp, 100), 0);	/* extent 2 */
	assert_int_equal(ppp_blob_read(c, &bi, 1 * MiB + 4200, tmp, 100), -EBADMSG);
	assert_int_equal(ppp_blob_read(c, &bi, 1 * MiB - 50, tmp, 100), -EBADMSG);
	assert_int_equal(ppp_blob_map(c, &bi, PPP_MAP_NOVERIFY, &data), 0);
	assert_int_equal(ppp_blob_find(c, "a.img", &bi), 0);
	assert_int_equal(ppp_blob_map(c, &bi, 0, &data), 0);
	ppp_ckpt_close(c);
	ppp_close(p);

	/* a damaged index */
	p = open_store(path, PPP_RDONLY);
	off = p->sb.index_off;
	ppp_close(p);
	flip_byte(path, off + 70);
	p = open_store(path, PPP_RDONLY);
	log_reset();
	assert_int_equal(ppp_ckpt_open(p, &c), -EBADMSG);
	assert_true(log_has("index"));
	assert_int_equal(ppp_verify(p, NULL), -EBADMSG);
	ppp_close(p);
}

static void test_abort_keeps_previous(void **state)
{
	const char *path = tpath("abort.ppp");
	struct spec s[] = { { "pstree.img", 1000, 7 }, { "pages.img", 2 * MiB + 1, 8 } };
	struct ppp_status st;
	struct ppp_blob *b;
	struct ppp_txn *t;
	struct ppp *p;
	void *d;

	format_file(path, 16 * MiB, 0);
	commit_blobs(path, 0, s, 2);

	/* abort half-way */
	p = open_store(path, PPP_RDWR);
	assert_int_equal(ppp_txn_begin(p, 0, &t), 0);
	put(t, "x.img", "xyz", 3);
	assert_int_equal(ppp_blob_create(t, "pages.img", 4 * MiB, &b), 0);
	d = ppp_blob_data(b);
	memset(d, 0xee, 2 * MiB);
	ppp_txn_abort(t);
	assert_int_equal(ppp_status(p, &st), 0);
	assert_int_equal(st.generation, 2);
	ppp_close(p);
	check_blobs(path, s, 2);

	/* never committed, never aborted: the handle is just closed */
	p = open_store(path, PPP_RDWR);
	assert_int_equal(ppp_txn_begin(p, 0, &t), 0);
	assert_int_equal(ppp_blob_create(t, "pages.img", 4 * MiB, &b), 0);
	assert_int_equal(ppp_blob_write(b, "", 0), 0);
	memset(ppp_blob_data(b), 0xdd, 4 * MiB);
	ppp_close(p);
	check_blobs(path, s, 2);

	/* a blob that failed to close poisons the transaction */
	p = open_store(path, PPP_RDWR);
	assert_int_equal(ppp_txn_begin(p, 0, &t), 0);
	assert_int_equal(ppp_blob_create(t, "short.img", 100, &b), 0);
	assert_int_equal(ppp_blob_write(b, "abc", 3), 0);
	log_reset();
	assert_int_equal(ppp_blob_close(b), -EIO);
	assert_true(log_has("only 3 of 100 bytes"));
	assert_int_equal(ppp_blob_create(t, "other.img", 1, &b), -EIO);
	log_reset();
	assert_int_equal(ppp_txn_commit(t), -EIO);
	assert_true(log_has("a blob of the transaction failed"));
	ppp_close(p);
	check_blobs(path, s, 2);
}

/* A writer killed (kill -9) in the middle of a transaction. */
static void test_killed_writer(void **state)
{
	const char *path = tpath("kill.ppp");
	struct spec s[] = { { "core-1.img", 5000, 11 }, { "pages-1.img", 3 * MiB, 12 } };
	struct spec s2[] = { { "new.img", 4 * MiB, 13 } };
	int status;
	pid_t pid;

	format_file(path, 32 * MiB, 0);
	commit_blobs(path, 0, s, 2);

	for (int stage = 0; stage < 3; stage++) {
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct ppp *p;
			struct ppp_txn *t;
			struct ppp_blob *b;

			if (ppp_open(path, PPP_RDWR, &p) || ppp_txn_begin(p, PPP_TXN_REPLACE, &t))
				_exit(1);
			ppp_blob_create(t, "core-1.img", 100, &b);
			ppp_blob_write(b, "half", 4);
			if (stage >= 1) {
				ppp_blob_create(t, "pages-1.img", 8 * MiB, &b);
				memset(ppp_blob_data(b), 0x5a, 8 * MiB);
			}
			if (stage == 2) {
				/* as far as the index, but not the superblock */
				ppp_blob_close(b);
			}
			kill(getpid(), SIGKILL);
			_exit(2);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		check_blobs(path, s, 2);
	}
	/* the lock died with the writer: a new transaction works */
	commit_blobs(path, 0, s2, 1);
	check_blobs(path, s2, 1);
}

/* A commit interrupted while writing the superblock: the torn copy is
 * ignored and the previous generation, still intact, is used. */
static void test_torn_superblock(void **state)
{
	const char *path = tpath("torn.ppp");
	struct spec s1[] = { { "a.img", 3 * MiB, 21 } };
	struct spec s2[] = { { "b.img", 3 * MiB, 22 } };
	struct ppp_status st;
	struct ppp_sb raw;
	struct ppp *p;
	int slot;

	format_file(path, 16 * MiB, 0);
	commit_blobs(path, 0, s1, 1);	/* generation 2 */
	commit_blobs(path, 0, s2, 1);	/* generation 3, in copy 1 */
	slot = 3 & 1;
	file_pread(path, slot * 4096, &raw, sizeof(raw));
	assert_int_equal(le64toh(raw.generation), 3);
	file_pread(path, !slot * 4096, &raw, sizeof(raw));
	assert_int_equal(le64toh(raw.generation), 2);

	flip_byte(path, slot * 4096 + 100);	/* tear the new copy */
	log_reset();
	p = open_store(path, PPP_RDONLY);
	assert_int_equal(ppp_status(p, &st), 0);
	assert_int_equal(st.generation, 2);
	assert_int_equal(st.sb_valid, 1u << !slot);
	assert_int_equal(ppp_verify(p, NULL), 0);
	assert_true(log_has("superblock copy 1"));
	ppp_close(p);
	check_blobs(path, s1, 1);

	/* the next transaction repairs the torn copy before writing data */
	commit_blobs(path, PPP_TXN_APPEND, s2, 1);
	p = open_store(path, PPP_RDONLY);
	assert_int_equal(ppp_status(p, &st), 0);
	assert_int_equal(st.generation, 3);
	assert_int_equal(st.sb_valid, 3);
	ppp_close(p);
	{
		struct spec both[] = { s1[0], s2[0] };

		check_blobs(path, both, 2);
	}
}

static void test_truncated_file(void **state)
{
	const char *path = tpath("trunc.ppp");
	struct spec s[] = { { "a.img", 1 * MiB, 31 } };
	struct ppp *p = NULL;

	format_file(path, 8 * MiB, 0);
	commit_blobs(path, 0, s, 1);
	assert_int_equal(truncate(path, 4 * MiB), 0);
	log_reset();
	assert_int_equal(ppp_open(path, PPP_RDONLY, &p), -EUCLEAN);
	assert_true(log_has("truncated"));
	assert_int_equal(truncate(path, 5000), 0);
	assert_int_equal(ppp_open(path, PPP_RDONLY, &p), -ENODATA);
	assert_int_equal(truncate(path, 0), 0);
	assert_int_equal(ppp_open(path, PPP_RDWR, &p), -ENODATA);
	assert_null(p);
	assert_int_equal(ppp_open(tpath("missing"), PPP_RDONLY, &p), -ENOENT);
}

/* Rewrite superblock copy @slot through @fn, fixing its checksum if @fix. */
static void edit_sb(const char *path, int slot, void (*fn)(struct ppp_sb *), bool fix)
{
	struct ppp_sb raw;

	file_pread(path, slot * 4096, &raw, sizeof(raw));
	fn(&raw);
	if (fix)
		raw.crc = htole32(ppp_crc32c(0, &raw, offsetof(struct ppp_sb, crc)));
	file_pwrite(path, slot * 4096, &raw, sizeof(raw));
}

/* Make both superblock copies hold the current generation (a transaction
 * does that when it starts). */
static void mirror(const char *path)
{
	struct ppp *p = open_store(path, PPP_RDWR);
	struct ppp_txn *t;

	assert_int_equal(ppp_txn_begin(p, 0, &t), 0);
	ppp_txn_abort(t);
	ppp_close(p);
}

static void sb_magic(struct ppp_sb *s) { s->magic[0] = 'X'; }
static void sb_nothing(struct ppp_sb *s) { s->uuid[3] ^= 1; }
static void sb_version(struct ppp_sb *s) { s->version = htole32(3); }
static void sb_csum(struct ppp_sb *s) { s->csum = htole32(7); }
static void sb_csum4(struct ppp_sb *s) { s->csum = htole32(PPP_CSUM_XXH3 + 1); }
static void sb_v1_csum(struct ppp_sb *s) { s->version = htole32(1); s->csum = htole32(2); }
static void sb_size_big(struct ppp_sb *s) { s->size = htole64(le64toh(s->size) * 2); }
static void sb_size_odd(struct ppp_sb *s) { s->size = htole64(le64toh(s->size) - 512); }
static void sb_size_tiny(struct ppp_sb *s) { s->size = htole64(8192); }
static void sb_shift(struct ppp_sb *s) { s->extent_shift = htole32(40); }
static void sb_flags(struct ppp_sb *s) { s->flags |= htole32(0x80); }
static void sb_gen0(struct ppp_sb *s) { s->generation = 0; }
static void sb_reserved(struct ppp_sb *s) { s->reserved[77] = 1; }
static void sb_dataoff(struct ppp_sb *s) { s->data_off = htole64(4096); }
static void sb_sbsize(struct ppp_sb *s) { s->sb_size = htole32(512); }
static void sb_ix_out(struct ppp_sb *s) { s->index_off = htole64(le64toh(s->size) - 32); }
static void sb_ix_zero(struct ppp_sb *s) { s->index_off = 0; }
static void sb_ix_wrap(struct ppp_sb *s) { s->index_len = htole64(UINT64_MAX - 100); }
static void sb_ix_noflag(struct ppp_sb *s) { s->flags = 0; }
static void sb_nblobs(struct ppp_sb *s) { s->nblobs = htole32(PPP_MAX_BLOBS + 1); }
static void sb_v1_mark(struct ppp_sb *s) { s->version = htole32(1); s->csum = 0; s->data_mark = htole64(8192); }

static void test_bad_superblocks(void **state)
{
	static const struct {
		void (*fn)(struct ppp_sb *);
		bool fix;
		int err;
		const char *msg;
	} cases[] = {
		{ sb_magic, true, -ENODATA, "not a kup page store" },
		{ sb_nothing, false, -EUCLEAN, "checksum mismatch" },
		{ sb_version, true, -EPROTONOSUPPORT, "version 3 is not supported" },
		{ sb_csum, true, -EUCLEAN, "unknown checksum type 7" },
		{ sb_csum4, true, -EUCLEAN, "unknown checksum type 4" },
		{ sb_v1_csum, true, -EUCLEAN, "reserved" },
		{ sb_size_big, true, -EUCLEAN, "truncated?" },
		{ sb_size_odd, true, -EUCLEAN, "bad store size" },
		{ sb_size_tiny, true, -EUCLEAN, "bad store size" },
		{ sb_shift, true, -EUCLEAN, "extent size" },
		{ sb_flags, true, -EUCLEAN, "unknown flags" },
		{ sb_gen0, true, -EUCLEAN, "generation 0" },
		{ sb_reserved, true, -EUCLEAN, "reserved" },
		{ sb_dataoff, true, -EUCLEAN, "data area offset" },
		{ sb_sbsize, true, -EUCLEAN, "superblock size" },
		{ sb_ix_out, true, -EUCLEAN, "outside the data area" },
		{ sb_ix_zero, true, -EUCLEAN, "outside the data area" },
		{ sb_ix_wrap, true, -EUCLEAN, "outside the data area" },
		{ sb_ix_noflag, true, -EUCLEAN, "without a checkpoint" },
		{ sb_nblobs, true, -EUCLEAN, "blobs (max" },
		{ sb_v1_mark, true, -EUCLEAN, "reserved" },
	};
	const char *path = tpath("sb.ppp");
	struct spec s[] = { { "a.img", 5000, 41 } };
	struct ppp_status st;
	struct ppp *p;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ppp_format_opts o = { .flags = PPP_FORMAT_FORCE, .csum = g_csum };

		assert_int_equal(ppp_format(path, 4 * MiB, &o), 0);
		commit_blobs(path, 0, s, 1);
		mirror(path);
		/* one bad copy: the other is used */
		edit_sb(path, 0, cases[i].fn, cases[i].fix);
		log_reset();
		p = open_store(path, PPP_RDONLY);
		assert_int_equal(ppp_status(p, &st), 0);
		assert_int_equal(st.sb_valid, 2);
		ppp_close(p);
		check_blobs(path, s, 1);
		/* both bad: refused */
		edit_sb(path, 1, cases[i].fn, cases[i].fix);
		log_reset();
		p = NULL;
		assert_int_equal(ppp_open(path, PPP_RDONLY, &p), cases[i].err);
		assert_null(p);
		if (!log_has(cases[i].msg))
			fail_msg("case %zu: no '%s' in log:\n%s", i, cases[i].msg, logbuf);
	}
}

static void sb_to_v1(struct ppp_sb *s) { s->version = htole32(1); s->csum = 0; s->data_mark = 0; }

/* A version 1 store (crc32c extents, no checksum field) is read, and the
 * next commit writes version 2 with crc32c kept. */
static void test_version1_store(void **state)
{
	const char *path = tpath("v1.ppp");
	struct spec s[] = { { "a.img", 3 * MiB + 5, 7 }, { "b.img", 100, 8 } };
	struct spec s2[] = { { "c.img", 2 * MiB, 9 } };
	struct ppp_format_opts o = { .csum = PPP_CSUM_CRC32C };
	struct ppp_status st;
	struct ppp *p;

	assert_int_equal(ppp_format(path, 16 * MiB, &o), 0);
	commit_blobs(path, 0, s, 2);
	mirror(path);
	edit_sb(path, 0, sb_to_v1, true);
	edit_sb(path, 1, sb_to_v1, true);
	p = open_store(path, PPP_RDONLY);
	assert_int_equal(ppp_status(p, &st), 0);
	assert_int_equal(st.version, 1);
	assert_int_equal(st.csum, PPP_CSUM_CRC32C);
	assert_int_equal(st.data_mark, 0);	/* none: a scrub wipes all */
	assert_int_equal(ppp_verify(p, NULL), 0);
	ppp_close(p);
	check_blobs(path, s, 2);
	commit_blobs(path, 0, s2, 1);
	p = open_store(path, PPP_RDONLY);
	assert_int_equal(ppp_status(p, &st), 0);
	assert_int_equal(st.version, 2);
	assert_int_equal(st.csum, PPP_CSUM_CRC32C);
	ppp_close(p);
	check_blobs(path, s2, 1);
}

/* Forge the index of the committed checkpoint, then fix its checksums so
 * that only the structural checks can catch the problem. */
static void edit_index(const char *path, void (*fn)(struct ppp_ix_hdr *, struct ppp_ix_entry *,
						  struct ppp_sb *))
{
	struct ppp_sb raw;
	uint64_t off, len;
	uint8_t *ix;

	file_pread(path, 0, &raw, sizeof(raw));
	off = le64toh(raw.index_off);
	len = le64toh(raw.size) - off;	/* all up to the end: index_len may grow */
	ix = malloc(len);
	file_pread(path, off, ix, len);
	fn((struct ppp_ix_hdr *)ix, (struct ppp_ix_entry *)(ix + 64), &raw);
	raw.index_crc = htole32(ppp_crc32c(0, ix, le64toh(raw.index_len)));
	raw.crc = htole32(ppp_crc32c(0, &raw, offsetof(struct ppp_sb, crc)));
	file_pwrite(path, off, ix, len);
	file_pwrite(path, 0, &raw, sizeof(raw));
	file_pwrite(path, 4096, &raw, sizeof(raw));
	free(ix);
}

#define IXFN(n) static void n(struct ppp_ix_hdr *h, struct ppp_ix_entry *e, struct ppp_sb *s)
IXFN(ix_noterm) { memset(e[0].name, 'a', 96); }
IXFN(ix_ctrl) { e[1].name[0] = '\n'; }
IXFN(ix_empty) { memset(e[1].name, 0, 96); }
IXFN(ix_pad) { e[0].name[90] = 'x'; }
IXFN(ix_unsorted) { char x[96]; memcpy(x, e[0].name, 96); memcpy(e[0].name, e[1].name, 96); memcpy(e[1].name, x, 96); }
IXFN(ix_dup) { memcpy(e[1].name, e[0].name, 96); }
IXFN(ix_outside) { e[2].offset = htole64(le64toh(s->size) - 4096); }
IXFN(ix_wrap) { e[2].length = htole64(UINT64_MAX - 4095); }
IXFN(ix_below) { e[0].offset = htole64(4096); }
IXFN(ix_overlap) { e[1].offset = htole64(le64toh(e[2].offset) + 4096); }
IXFN(ix_over_index) { e[0].offset = s->index_off; }
IXFN(ix_misalign) { e[2].offset = htole64(le64toh(e[2].offset) + 64); }
IXFN(ix_crcfirst) { e[1].crc_first = htole64(le64toh(e[1].crc_first) + 1); }
IXFN(ix_ncrc) { h->ncrc = htole64(le64toh(h->ncrc) - 1); }
IXFN(ix_ncrc_huge) { h->ncrc = htole64(UINT64_MAX / 2); }
IXFN(ix_nblobs) { h->nblobs = htole32(2); }
IXFN(ix_gen) { h->generation = htole64(1); }
IXFN(ix_uuid) { h->uuid[0] ^= 1; }
IXFN(ix_magic) { h->magic[0] = 0; }
IXFN(ix_esize) { h->entry_size = htole32(64); }
IXFN(ix_flags) { e[0].flags = htole32(1); }
IXFN(ix_emptyoff) { e[0].length = 0; }
IXFN(ix_sbnblobs) { s->nblobs = htole32(4); }
IXFN(ix_sblen) { s->index_len = htole64(le64toh(s->index_len) - 4); }
IXFN(ix_sblen_huge) { s->index_len = htole64(le64toh(s->size) - le64toh(s->index_off)); }

static void test_hostile_index(void **state)
{
	static const struct {
		void (*fn)(struct ppp_ix_hdr *, struct ppp_ix_entry *, struct ppp_sb *);
		const char *msg;
	} cases[] = {
		{ ix_noterm, "bad name" }, { ix_ctrl, "bad name" }, { ix_empty, "bad name" },
		{ ix_pad, "bad name" }, { ix_unsorted, "not sorted" }, { ix_dup, "duplicated" },
		{ ix_outside, "outside the data area" }, { ix_wrap, "outside the data area" },
		{ ix_below, "outside the data area" }, { ix_overlap, "overlaps" },
		{ ix_over_index, "overlaps" }, { ix_misalign, "not aligned" },
		{ ix_crcfirst, "checksums start" }, { ix_ncrc, "bytes, expected" },
		{ ix_ncrc_huge, "checksums for a store" }, { ix_nblobs, "entries of" },
		{ ix_gen, "belongs to generation" }, { ix_uuid, "another store" },
		{ ix_magic, "bad magic" }, { ix_esize, "entries of" },
		{ ix_flags, "unknown flags" }, { ix_emptyoff, "empty but at offset" },
		{ ix_sbnblobs, "entries of" }, { ix_sblen, "bytes, expected" },
		{ ix_sblen_huge, "too large" },
	};
	const char *path = tpath("ix.ppp");
	struct spec s[] = { { "a.img", 100, 51 }, { "b.img", 200, 52 }, { "c.img", 2 * MiB, 53 } };
	struct ppp_ckpt *c;
	struct ppp_txn *t;
	struct ppp_status st;
	struct ppp *p;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		format_file(path, 8 * MiB, 0);
		commit_blobs(path, 0, s, 3);
		edit_index(path, cases[i].fn);
		log_reset();
		p = open_store(path, PPP_RDWR);
		c = NULL;
		assert_int_equal(ppp_ckpt_open(p, &c), -EUCLEAN);
		assert_null(c);
		if (!log_has(cases[i].msg))
			fail_msg("case %zu: no '%s' in log:\n%s", i, cases[i].msg, logbuf);
		assert_int_equal(ppp_verify(p, NULL), -EUCLEAN);
		assert_int_equal(ppp_status(p, &st), -EUCLEAN);
		/* cannot build on it, but can replace it */
		assert_int_equal(ppp_txn_begin(p, PPP_TXN_APPEND, &t), -EUCLEAN);
		assert_int_equal(ppp_txn_begin(p, 0, &t), 0);
		put(t, "fresh.img", "fresh", 5);
		assert_int_equal(ppp_txn_commit(t), 0);
		assert_int_equal(ppp_verify(p, NULL), 0);
		ppp_close(p);
	}
}

static void test_scrub(void **state)
{
	const char *path = tpath("scrub.ppp");
	struct spec s[] = { { "secret.img", 3 * MiB + 17, 61 }, { "x.img", 100, 62 } };
	struct ppp_status st;
	struct ppp_ckpt *c;
	struct ppp *p;
	uint8_t *buf;
	struct ppp_sb a, b;

	format_file(path, 16 * MiB, 0);
	commit_blobs(path, 0, s, 2);
	commit_blobs(path, PPP_TXN_APPEND, s, 1);	/* older copies lying around */

	p = open_store(path, PPP_RDONLY);
	log_reset();
	assert_int_equal(ppp_scrub(p), -EROFS);
	assert_true(log_has("read-write"));
	ppp_close(p);

	p = open_store(path, PPP_RDWR);
	assert_int_equal(ppp_ckpt_open(p, &c), 0);
	assert_int_equal(ppp_scrub(p), -EBUSY);
	ppp_ckpt_close(c);
	assert_int_equal(ppp_scrub(p), 0);
	assert_int_equal(ppp_status(p, &st), 0);
	assert_int_equal(st.generation, 4);
	assert_false(st.has_ckpt);
	assert_int_equal(st.used, 0);
	assert_int_equal(ppp_ckpt_open(p, &c), -ENOENT);
	ppp_close(p);

	buf = malloc(16 * MiB);
	file_pread(path, 0, buf, 16 * MiB);
	for (size_t i = 8192; i < 16 * MiB; i++)
		if (buf[i])
			fail_msg("byte %zu not wiped", i);
	memcpy(&a, buf, sizeof(a));
	memcpy(&b, buf + 4096, sizeof(b));
	assert_memory_equal(&a, &b, sizeof(a));
	free(buf);

	/* usable again */
	commit_blobs(path, 0, s, 2);
	check_blobs(path, s, 2);

	/* scrub of an empty store, of a memory store */
	p = open_store(path, PPP_RDWR);
	assert_int_equal(ppp_scrub(p), 0);
	assert_int_equal(ppp_scrub(p), 0);
	ppp_close(p);
}

/* The data mark of superblock copy @slot, as on the media. */
static uint64_t disk_mark(const char *path, int slot)
{
	struct ppp_sb raw;

	file_pread(path, slot * 4096, &raw, sizeof(raw));
	assert_int_equal(le32toh(raw.crc), ppp_crc32c(0, &raw, offsetof(struct ppp_sb, crc)));
	return le64toh(raw.data_mark);
}

static uint8_t file_byte(const char *path, uint64_t off)
{
	uint8_t b;

	file_pread(path, off, &b, 1);
	return b;
}

static uint64_t g_mark;
static void sb_mark_none(struct ppp_sb *s) { s->data_mark = 0; }
static void sb_mark_set(struct ppp_sb *s) { s->data_mark = htole64(g_mark); }

/* Scrub the store at @path; returns the bytes it wiped. */
static uint64_t scrub_file(const char *path)
{
	struct ppp *p = open_store(path, PPP_RDWR);
	uint64_t n;

	assert_int_equal(ppp_scrub(p), 0);
	n = ppp_scrub_wiped(p);
	ppp_close(p);
	return n;
}

/*
 * The data mark: raised in both superblock copies before a byte above it is
 * written, a few times per transaction rather than per blob; a scrub wipes
 * up to it and no further; a store without a mark, or with a bad one, is
 * wiped in full.
 */
static void test_scrub_mark(void **state)
{
	struct ppp_format_opts o = { .csum = g_csum, .flags = PPP_FORMAT_SPARSE };
	const char *path = tpath("mark.ppp");
	const uint64_t size = 160 * MiB;
	struct ppp_blob *b, *b2;
	struct ppp_status st;
	struct ppp_txn *t;
	struct ppp *p;
	uint64_t m, m2;
	void *d = pattern(MiB, 71);
	uint8_t one = 0xa5;

	assert_int_equal(ppp_format(path, size, &o), 0);
	p = open_store(path, PPP_RDWR);
	assert_int_equal(ppp_status(p, &st), 0);
	assert_int_equal(st.data_mark, 8192);	/* a formatted file is zero */
	assert_int_equal(disk_mark(path, 0), 8192);
	assert_int_equal(disk_mark(path, 1), 8192);

	/* raised in both copies by the allocation, before any write */
	assert_int_equal(ppp_txn_begin(p, 0, &t), 0);
	assert_int_equal(ppp_blob_create(t, "a.img", MiB, &b), 0);
	m = disk_mark(path, 0);
	assert_int_equal(disk_mark(path, 1), m);
	assert_true(m >= 8192 + MiB);
	assert_int_equal(m % 4096, 0);
	assert_true(m <= 8192 + MiB + PPP_MARK_STEP);
	/* the next blob fits below it: no superblock write */
	assert_int_equal(ppp_blob_create(t, "b.img", MiB, &b2), 0);
	assert_int_equal(disk_mark(path, 0), m);
	assert_int_equal(ppp_blob_write(b, d, MiB), 0);
	assert_int_equal(ppp_blob_write(b2, d, MiB), 0);
	assert_int_equal(ppp_blob_close(b), 0);
	assert_int_equal(ppp_blob_close(b2), 0);
	assert_int_equal(ppp_txn_commit(t), 0);
	assert_int_equal(ppp_status(p, &st), 0);
	assert_int_equal(st.data_mark, m);
	assert_int_equal(disk_mark(path, 0), m);
	assert_int_equal(disk_mark(path, 1), m);
	ppp_close(p);

	/* exactly up to the mark: a byte planted at it stays (nothing above
	 * the mark is ever written by the store: a scrub need not look) */
	assert_true(m < size);
	file_pwrite(path, m, &one, 1);
	file_pwrite(path, m - 1, &one, 1);
	assert_int_equal(scrub_file(path), m - 8192);
	assert_int_equal(file_byte(path, m), one);
	assert_int_equal(file_byte(path, m - 1), 0);
	assert_int_equal(file_byte(path, 8192), 0);
	file_pwrite(path, m, "", 1);
	assert_int_equal(disk_mark(path, 0), 8192);
	assert_int_equal(disk_mark(path, 1), 8192);
	/* nothing written since: nothing to wipe */
	assert_int_equal(scrub_file(path), 0);

	/* a larger dump past the mark raises it again, before its bytes land */
	commit_blobs(path, 0, (struct spec[]){ { "a.img", 4 * MiB, 74 } }, 1);
	m = disk_mark(path, 0);
	p = open_store(path, PPP_RDWR);
	assert_int_equal(ppp_txn_begin(p, PPP_TXN_REPLACE, &t), 0);
	assert_int_equal(ppp_blob_create(t, "big.img", 100 * MiB, &b), 0);
	m2 = disk_mark(path, 0);
	assert_int_equal(disk_mark(path, 1), m2);
	assert_true(m2 > m);
	assert_true(m2 <= size);
	for (int i = 0; i < 100; i++)
		assert_int_equal(ppp_blob_write(b, d, MiB), 0);
	assert_int_equal(ppp_blob_close(b), 0);
	assert_int_equal(ppp_txn_commit(t), 0);
	assert_int_equal(ppp_verify(p, NULL), 0);
	ppp_close(p);
	m2 = disk_mark(path, 0);
	assert_int_equal(scrub_file(path), m2 - 8192);
	assert_int_equal(disk_mark(path, 0), 8192);

	/* a store without a mark (an older one): wiped in full, then marked */
	commit_blobs(path, 0, (struct spec[]){ { "c.img", 5000, 72 } }, 1);
	mirror(path);
	edit_sb(path, 0, sb_mark_none, true);
	edit_sb(path, 1, sb_mark_none, true);
	file_pwrite(path, size - 1, &one, 1);
	p = open_store(path, PPP_RDWR);
	assert_int_equal(ppp_status(p, &st), 0);
	assert_int_equal(st.data_mark, 0);
	assert_true(st.has_ckpt);
	/* a transaction on it keeps it without a mark */
	assert_int_equal(ppp_txn_begin(p, PPP_TXN_APPEND, &t), 0);
	put(t, "d.img", d, MiB);
	assert_int_equal(ppp_txn_commit(t), 0);
	assert_int_equal(disk_mark(path, 0), 0);
	assert_int_equal(disk_mark(path, 1), 0);
	ppp_close(p);
	assert_int_equal(scrub_file(path), size - 8192);
	assert_int_equal(file_byte(path, size - 1), 0);
	assert_int_equal(disk_mark(path, 0), 8192);

	/* a hostile mark is never trusted to skip bytes */
	static const uint64_t bad[] = { 4096, 8192 + 100, 160 * MiB + 4096, UINT64_MAX & ~4095ull };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		commit_blobs(path, 0, (struct spec[]){ { "e.img", 5000, 73 } }, 1);
		mirror(path);
		g_mark = bad[i];
		edit_sb(path, 0, sb_mark_set, true);
		edit_sb(path, 1, sb_mark_set, true);
		file_pwrite(path, size - 1, &one, 1);
		log_reset();
		p = open_store(path, PPP_RDWR);
		assert_int_equal(ppp_status(p, &st), 0);
		assert_int_equal(st.sb_valid, 3);	/* the rest of it is fine */
		assert_int_equal(st.data_mark, 0);
		assert_true(log_has("bad data mark"));
		assert_int_equal(ppp_scrub(p), 0);
		assert_int_equal(ppp_scrub_wiped(p), size - 8192);
		ppp_close(p);
		assert_int_equal(file_byte(path, size - 1), 0);
		assert_int_equal(disk_mark(path, 1), 8192);
	}
	free(d);
}

static void test_append(void **state)
{
	const char *path = tpath("append.ppp");
	struct spec s1[] = { { "a.img", 2 * MiB, 71 }, { "b.img", 100, 72 } };
	struct spec s2[] = { { "b.img", 300, 73 }, { "c.img", 1 * MiB, 74 } };
	struct spec all[] = { s1[0], s2[0], s2[1] };
	struct ppp_blob_info bi;
	struct ppp_ckpt *c;
	struct ppp *p;
	uint64_t off_a;

	format_file(path, 16 * MiB, 0);
	commit_blobs(path, 0, s1, 2);
	p = open_store(path, PPP_RDONLY);
	assert_int_equal(ppp_ckpt_open(p, &c), 0);
	assert_int_equal(ppp_blob_find(c, "a.img", &bi), 0);
	off_a = bi.offset;
	ppp_ckpt_close(c);
	ppp_close(p);

	commit_blobs(path, PPP_TXN_APPEND, s2, 2);
	check_blobs(path, all, 3);
	p = open_store(path, PPP_RDONLY);
	assert_int_equal(ppp_ckpt_open(p, &c), 0);
	assert_int_equal(ppp_blob_find(c, "a.img", &bi), 0);
	assert_int_equal(bi.offset, off_a);	/* by reference, not copied */
	ppp_ckpt_close(c);
	ppp_close(p);

	/* remove: an inherited blob, a blob of this transaction */
	{
		struct ppp_txn *t;
		struct ppp_blob *b;
		struct spec left[] = { s2[0] };

		p = open_store(path, PPP_RDWR);
		assert_int_equal(ppp_txn_begin(p, PPP_TXN_APPEND, &t), 0);
		assert_int_equal(ppp_txn_remove(t, "a.img"), 0);
		assert_int_equal(ppp_txn_remove(t, "a.img"), -ENOENT);
		assert_int_equal(ppp_txn_remove(t, "zzz"), -ENOENT);
		put(t, "tmp.img", "tmp", 3);
		assert_int_equal(ppp_blob_create(t, "open.img", 3, &b), 0);
		assert_int_equal(ppp_txn_remove(t, "open.img"), -EBUSY);
		assert_int_equal(ppp_blob_write(b, "abc", 3), 0);
		assert_int_equal(ppp_blob_close(b), 0);
		assert_int_equal(ppp_txn_remove(t, "open.img"), 0);
		assert_int_equal(ppp_txn_remove(t, "tmp.img"), 0);
		assert_int_equal(ppp_txn_remove(t, "c.img"), 0);
		assert_int_equal(ppp_txn_commit(t), 0);
		ppp_close(p);
		check_blobs(path, left, 1);
	}

	/* without APPEND the new checkpoint holds only the new blobs */
	commit_blobs(path, 0, s2, 1);
	check_blobs(path, s2, 1);
}

static void test_replace_enospc(void **state)
{
	const char *path = tpath("full.ppp");
	struct spec s1[] = { { "pages.img", 3 * MiB, 81 } };
	struct spec s2[] = { { "pages2.img", 3 * MiB, 82 } };
	struct ppp_ckpt *c;
	struct ppp_blob *b;
	struct ppp_txn *t;
	struct ppp *p;

	format_file(path, 5 * MiB, 0);
	commit_blobs(path, 0, s1, 1);

	p = open_store(path, PPP_RDWR);
	assert_int_equal(ppp_txn_begin(p, 0, &t), 0);
	log_reset();
	assert_int_equal(ppp_blob_create(t, "pages2.img", 3 * MiB, &b), -ENOSPC);
	assert_true(log_has("beside the committed checkpoint"));
	ppp_txn_abort(t);
	assert_int_equal(ppp_txn_begin(p, 0, &t), 0);
	assert_int_equal(ppp_blob_create(t, "huge.img", 5 * MiB, &b), -ENOSPC);
	ppp_txn_abort(t);
	ppp_close(p);
	check_blobs(path, s1, 1);

	/* REPLACE while the checkpoint is open for reading: refused */
	p = open_store(path, PPP_RDWR);
	assert_int_equal(ppp_ckpt_open(p, &c), 0);
	assert_int_equal(ppp_txn_begin(p, PPP_TXN_REPLACE, &t), 0);
	assert_int_equal(ppp_blob_create(t, "pages2.img", 3 * MiB, &b), -EBUSY);
	ppp_txn_abort(t);
	ppp_ckpt_close(c);
	ppp_close(p);
	check_blobs(path, s1, 1);

	/* REPLACE, interrupted after the drop: no checkpoint, never a bad one */
	p = open_store(path, PPP_RDWR);
	assert_int_equal(ppp_txn_begin(p, PPP_TXN_REPLACE, &t), 0);
	log_reset();
	assert_int_equal(ppp_blob_create(t, "pages2.img", 3 * MiB, &b), 0);
	assert_true(log_has("dropped the checkpoint of generation 2"));
	memset(ppp_blob_data(b), 1, 3 * MiB);
	ppp_txn_abort(t);
	assert_int_equal(ppp_ckpt_open(p, &c), -ENOENT);
	assert_int_equal(ppp_verify(p, NULL), 0);
	ppp_close(p);

	commit_blobs(path, 0, s1, 1);
	commit_blobs(path, PPP_TXN_REPLACE, s2, 1);
	check_blobs(path, s2, 1);
}

static void test_api_errors(void **state)
{
	const char *path = tpath("api.ppp");
	struct ppp *p, *q, *ro;
	struct ppp_txn *t, *t2;
	struct ppp_blob *b, *b2;
	struct ppp_ckpt *c;
	char name[120];

	format_file(path, 4 * MiB, 0);
	ro = open_store(path, PPP_RDONLY);
	log_reset();
	assert_int_equal(ppp_txn_begin(ro, 0, &t), -EROFS);
	assert_true(log_has("read-only"));

	p = open_store(path, PPP_RDWR);
	q = open_store(path, PPP_RDWR);
	assert_int_equal(ppp_txn_begin(p, PPP_TXN_APPEND | PPP_TXN_REPLACE, &t), -EINVAL);
	assert_int_equal(ppp_txn_begin(p, 0x100, &t), -EINVAL);
	assert_int_equal(ppp_txn_begin(p, 0, &t), 0);
	assert_int_equal(ppp_txn_begin(p, 0, &t2), -EBUSY);
	log_reset();
	assert_int_equal(ppp_txn_begin(q, 0, &t2), -EBUSY);	/* flock */
	assert_true(log_has("in use by another process"));
	assert_int_equal(ppp_ckpt_open(ro, &c), -EBUSY);

	assert_int_equal(ppp_blob_create(t, "", 10, &b), -EINVAL);
	memset(name, 'n', sizeof(name));
	name[96] = 0;
	assert_int_equal(ppp_blob_create(t, name, 10, &b), -EINVAL);
	name[95] = 0;
	assert_int_equal(ppp_blob_create(t, name, 10, &b), 0);	/* 95: the max */
	assert_int_equal(ppp_blob_close(b), -EIO);		/* nothing written */
	assert_int_equal(ppp_blob_create(t, "tab\there", 10, &b), -EINVAL);
	assert_int_equal(ppp_blob_create(t, "\xc3\xa9", 10, &b), -EINVAL);
	assert_int_equal(ppp_blob_create(t, NULL, 10, &b), -EINVAL);
	ppp_txn_abort(t);

	assert_int_equal(ppp_txn_begin(p, 0, &t), 0);
	assert_int_equal(ppp_blob_create(t, "a", 10, &b), 0);
	assert_int_equal(ppp_blob_create(t, "a", 10, &b2), -EEXIST);
	log_reset();
	assert_int_equal(ppp_blob_write(b, "0123456789ab", 12), -EFBIG);
	assert_true(log_has("past its size"));
	assert_int_equal(ppp_blob_write(b, "0123456789", 10), 0);
	assert_int_equal(ppp_blob_write(b, "x", 1), -EFBIG);
	assert_int_equal(ppp_blob_truncate(b, 11), -EINVAL);
	assert_int_equal(ppp_blob_create(t, "big", 4 * MiB, &b2), -ENOSPC);
	assert_int_equal(ppp_blob_create(t, "b", 100, &b2), 0);
	log_reset();
	assert_int_equal(ppp_blob_close(b), 0);
	assert_int_equal(ppp_txn_commit(t), -EBUSY);		/* b still open */
	assert_true(log_has("blob 'b' is still open"));
	assert_int_equal(ppp_ckpt_open(p, &c), -ENOENT);

	/* lock released after commit: the other handle can write */
	assert_int_equal(ppp_txn_begin(q, 0, &t2), 0);
	put(t2, "q.img", "q", 1);
	assert_int_equal(ppp_txn_commit(t2), 0);
	/* and p sees its commit */
	assert_int_equal(ppp_ckpt_open(p, &c), 0);
	assert_int_equal(ppp_ckpt_nblobs(c), 1);
	/* a reader holds the shared lock: no writer elsewhere */
	assert_int_equal(ppp_txn_begin(q, 0, &t2), -EBUSY);
	/* ... but the same handle may write (its reader keeps its snapshot) */
	assert_int_equal(ppp_txn_begin(p, 0, &t), 0);
	ppp_txn_abort(t);
	ppp_ckpt_close(c);

	/* a closed store detaches its checkpoints */
	assert_int_equal(ppp_ckpt_open(ro, &c), 0);
	ppp_close(ro);
	{
		struct ppp_blob_info bi;
		const void *d;

		assert_int_equal(ppp_blob_find(c, "q.img", &bi), -EBADF);
		assert_int_equal(ppp_ckpt_blob(c, 0, &bi), -EBADF);
		bi.index = 0;
		assert_int_equal(ppp_blob_map(c, &bi, 0, &d), -EBADF);
	}
	ppp_ckpt_close(c);
	ppp_close(p);
	ppp_close(q);
	ppp_close(NULL);
	ppp_txn_abort(NULL);
	ppp_ckpt_close(NULL);
	assert_int_equal(ppp_open(NULL, 0, &p), -EINVAL);
	assert_int_equal(ppp_open(path, 0x10, &p), -EINVAL);
}

static void test_truncate_blob(void **state)
{
	const char *path = tpath("tb.ppp");
	struct ppp_blob *b, *b2;
	struct ppp_blob_info bi, bi2;
	struct ppp_ckpt *c;
	struct ppp_txn *t;
	struct ppp *p;
	uint8_t *src = pattern(3 * MiB, 91);
	const void *d;

	format_file(path, 8 * MiB, 0);
	p = open_store(path, PPP_RDWR);
	assert_int_equal(ppp_txn_begin(p, 0, &t), 0);
	assert_int_equal(ppp_blob_create(t, "pages.img", 3 * MiB, &b), 0);
	memcpy(ppp_blob_data(b), src, 3 * MiB / 2);
	assert_int_equal(ppp_blob_truncate(b, 3 * MiB / 2), 0);
	assert_int_equal(ppp_blob_close(b), 0);
	/* the released tail is reused */
	assert_int_equal(ppp_blob_create(t, "next.img", 1 * MiB, &b2), 0);
	assert_int_equal(ppp_blob_write(b2, src, 1 * MiB), 0);
	assert_int_equal(ppp_blob_truncate(b2, 1000), 0);
	assert_int_equal(ppp_blob_close(b2), 0);
	assert_int_equal(ppp_blob_create(t, "zero.img", 100, &b2), 0);
	assert_int_equal(ppp_blob_truncate(b2, 0), 0);
	assert_int_equal(ppp_blob_close(b2), 0);
	assert_int_equal(ppp_txn_commit(t), 0);

	assert_int_equal(ppp_ckpt_open(p, &c), 0);
	assert_int_equal(ppp_blob_find(c, "pages.img", &bi), 0);
	assert_int_equal(bi.size, 3 * MiB / 2);
	assert_int_equal(ppp_blob_map(c, &bi, 0, &d), 0);
	assert_memory_equal(d, src, 3 * MiB / 2);
	assert_int_equal(ppp_blob_find(c, "next.img", &bi2), 0);
	assert_int_equal(bi2.size, 1000);
	assert_int_equal(bi2.offset, bi.offset + 3 * MiB / 2);
	assert_int_equal(ppp_blob_map(c, &bi2, 0, &d), 0);
	assert_memory_equal(d, src, 1000);
	assert_int_equal(ppp_blob_find(c, "zero.img", &bi2), 0);
	assert_int_equal(bi2.size, 0);
	ppp_ckpt_close(c);
	assert_int_equal(ppp_verify(p, NULL), 0);
	ppp_close(p);
	free(src);
}

/* Checksums taken early (ppp_blob_sum_now), a few bytes changed and named
 * since (ppp_blob_changed): the close redoes those extents and the store
 * verifies; a change not named leaves its extent's old checksum. */
static void test_sum_now(void **state)
{
	const char *path = tpath("sn.ppp");
	struct ppp_blob *b;
	struct ppp_txn *t;
	struct ppp *p;
	uint8_t *d;

	for (int named = 1; named >= 0; named--) {
		format_file(path, 16 * MiB, 0);
		p = open_store(path, PPP_RDWR);
		assert_int_equal(ppp_txn_begin(p, 0, &t), 0);
		assert_int_equal(ppp_blob_create(t, "pages.img", 3 * MiB + 4096, &b), 0);
		assert_int_equal(ppp_blob_sum_now(b, 0, 4096), -EINVAL);	/* not direct */
		d = ppp_blob_data(b);
		assert_non_null(d);
		fill(d, 3 * MiB + 4096, 7);
		assert_int_equal(ppp_blob_sum_now(b, 0, 3 * MiB + 4096), 0);
		d[MiB + 5] ^= 0xff;				/* extent 1 */
		d[3 * MiB + 100] ^= 0xff;			/* the last, partial one */
		if (named) {
			ppp_blob_changed(b, MiB + 5, 1);
			ppp_blob_changed(b, 3 * MiB + 100, 1);
		}
		assert_int_equal(ppp_blob_close(b), 0);
		assert_int_equal(ppp_txn_commit(t), 0);
		assert_int_equal(ppp_verify(p, NULL), named ? 0 : -EBADMSG);
		ppp_close(p);
	}
}

/* A blob written whole through the mapping, given the writer's sums of its
 * 1 MiB pieces (ppp_blob_take_sums): they become the extents' checksums
 * only where they are of the store's kind and extent size (a wrong one then
 * fails verify: the close does not sum those extents again), else they are
 * refused (0) and the close sums the blob itself, so that XXH64 sums never
 * go into an XXH3 store nor the other way round.  A change named since is
 * summed again. */
static void test_take_sums(void **state)
{
	static const uint32_t kinds[] = { PPP_CSUM_XXH3, PPP_CSUM_XXH64, PPP_CSUM_CRC32C };
	const char *path = tpath("ts.ppp");
	size_t len = 3 * MiB + 4096;
	uint64_t sums[4], nbad;
	struct ppp_blob *b;
	struct ppp_txn *t;
	struct ppp *p;
	uint8_t *d;

	for (size_t i = 0; i < sizeof(kinds) / sizeof(*kinds); i++) {
		for (int lie = 0; lie <= 1; lie++) {
			bool ours = kinds[i] == store_csum();

			format_file(path, 16 * MiB, 0);
			p = open_store(path, PPP_RDWR);
			assert_int_equal(ppp_txn_begin(p, 0, &t), 0);
			assert_int_equal(ppp_blob_create(t, "pages.img", len, &b), 0);
			/* not written through the mapping (yet) */
			assert_int_equal(ppp_blob_take_sums(b, kinds[i], sums, 4, MiB), -EINVAL);
			d = ppp_blob_data(b);
			assert_non_null(d);
			fill(d, len, 11 + i);
			for (size_t k = 0; k < 4; k++)
				sums[k] = sum_of(kinds[i], d + k * MiB,
						 len - k * MiB < MiB ? len - k * MiB : MiB);
			if (lie)
				sums[2] ^= 1;
			/* not the store's extents: refused whatever their kind */
			assert_int_equal(ppp_blob_take_sums(b, kinds[i], sums, 4, 4096), 0);
			assert_int_equal(ppp_blob_take_sums(b, kinds[i], sums, 3, MiB), 0);
			assert_int_equal(ppp_blob_take_sums(b, kinds[i], sums, 4, MiB), ours);
			d[5] ^= 0xff;			/* extent 0, named */
			ppp_blob_changed(b, 5, 1);
			assert_int_equal(ppp_blob_close(b), 0);
			assert_int_equal(ppp_txn_commit(t), 0);
			assert_int_equal(ppp_verify(p, &nbad), lie && ours ? -EBADMSG : 0);
			assert_int_equal(nbad, lie && ours);
			ppp_close(p);
		}
	}
}

/* The committed blob @name of @p holds @want (@len bytes), read in place
 * without the store's check. */
static void check_blob_bytes(struct ppp *p, const char *name, const void *want, size_t len)
{
	struct ppp_blob_info bi;
	struct ppp_ckpt *c;
	const void *d;

	assert_int_equal(ppp_ckpt_open(p, &c), 0);
	assert_int_equal(ppp_blob_find(c, name, &bi), 0);
	assert_int_equal(ppp_blob_map(c, &bi, PPP_MAP_NOVERIFY, &d), 0);
	assert_memory_equal(d, want, len);
	ppp_ckpt_close(c);
}

/* A blob streamed in full, a few pages written again (ppp_blob_pwrite):
 * the extents given their bytes (ppp_blob_sum_bytes) are summed from them,
 * the others read back at the close; the store verifies and holds the
 * bytes written last.  Bytes given that are not the store's fail verify. */
static void test_pwrite(void **state)
{
	const char *path = tpath("pw.ppp");
	size_t len = 3 * MiB + 4096;
	uint8_t *src = pattern(len, 31), *page = pattern(4096, 77);
	struct ppp_blob *b;
	struct ppp_txn *t;
	struct ppp *p;

	for (int honest = 1; honest >= 0; honest--) {
		uint8_t *want = malloc(len);

		memcpy(want, src, len);
		format_file(path, 16 * MiB, 0);
		p = open_store(path, PPP_RDWR);
		assert_int_equal(ppp_txn_begin(p, 0, &t), 0);
		assert_int_equal(ppp_blob_create(t, "pages.img", len, &b), 0);
		assert_int_equal(ppp_blob_write(b, src, MiB), 0);
		assert_int_equal(ppp_blob_pwrite(b, 0, page, 4096), -EINVAL);	/* not all written */
		assert_int_equal(ppp_blob_write(b, src + MiB, len - MiB), 0);
		assert_int_equal(ppp_blob_pwrite(b, len - 4096, page, 8192), -EINVAL);	/* past the end */
		/* extent 1, summed from the caller's bytes */
		assert_int_equal(ppp_blob_pwrite(b, MiB + 8192, page, 4096), 0);
		memcpy(want + MiB + 8192, page, 4096);
		if (!honest)
			want[MiB + 100] ^= 1;	/* not the store's byte */
		assert_int_equal(ppp_blob_sum_bytes(b, MiB, want + MiB, MiB), 0);
		if (!honest)
			want[MiB + 100] ^= 1;
		/* the last, partial extent: read back at the close */
		assert_int_equal(ppp_blob_pwrite(b, 3 * MiB, page, 4096), 0);
		memcpy(want + 3 * MiB, page, 4096);
		assert_int_equal(ppp_blob_close(b), 0);
		assert_int_equal(ppp_txn_commit(t), 0);
		assert_int_equal(ppp_verify(p, NULL), honest ? 0 : -EBADMSG);
		check_blob_bytes(p, "pages.img", want, len);
		ppp_close(p);
		free(want);
	}
	free(src);
	free(page);
}

/* ppp_blob_write_at() from two threads, 2 MiB ranges taken in turn. */
struct at_writer {
	struct ppp_blob *b;
	const uint8_t *src;
	size_t len;
	int id;
	uint32_t csum;	/* the kind of sums it gives (PPP_CSUM_*) */
	bool lie;	/* one piece's sum given wrong */
	int ret;
};

static void *at_thread(void *arg)
{
	struct at_writer *w = arg;

	for (size_t off = w->id * 2 * MiB; off < w->len && !w->ret; off += 4 * MiB) {
		size_t l = w->len - off < 2 * MiB ? w->len - off : 2 * MiB;
		uint64_t sums[2];

		for (size_t i = 0; i * MiB < l; i++)
			sums[i] = sum_of(w->csum, w->src + off + i * MiB,
					 l - i * MiB < MiB ? l - i * MiB : MiB);
		if (w->lie && !off)
			sums[1] ^= 1;
		w->ret = ppp_blob_write_at(w->b, off, w->src + off, l, w->csum, sums, MiB);
	}
	return NULL;
}

/* A blob written by ranges from two threads: the store verifies and holds
 * the bytes, with extents as large as the ranges, smaller and larger (those
 * across ranges summed from the store at the close); where the store's
 * checksums are of the writer's kind (XXH64 or XXH3) and of 1 MiB the
 * writer's sums are taken as they are (a wrong one fails verify); sums of
 * another kind are not (the store sums the bytes itself and verifies).  Not
 * mixed with ppp_blob_write(); a blob not written whole does not close. */
static void test_write_at(void **state)
{
	const char *path = tpath("at.ppp");
	size_t len = 9 * MiB + 12288;
	uint8_t *src = pattern(len, 41);
	static const uint32_t extents[] = { 0, 64 << 10, 4 * MiB };
	struct ppp_blob *b;
	struct ppp_txn *t;
	struct ppp *p;

	for (int lie = 0; lie <= 1; lie++) {
		for (size_t x = 0; x < sizeof(extents) / sizeof(*extents) * 2; x++) {
			/* each extent size with XXH3 sums, then with XXH64 ones */
			uint32_t wsum = x % 2 ? PPP_CSUM_XXH64 : PPP_CSUM_XXH3;
			uint32_t ext = extents[x / 2];
			bool taken = wsum == store_csum() && !ext;
			struct at_writer w[2];
			pthread_t th[2];

			format_file(path, 32 * MiB, ext);
			p = open_store(path, PPP_RDWR);
			assert_int_equal(ppp_txn_begin(p, 0, &t), 0);
			assert_int_equal(ppp_blob_create(t, "pages.img", len, &b), 0);
			assert_int_equal(ppp_blob_write_at(b, len - 4096, src, 8192, 0, NULL, 0),
					 -EINVAL);
			for (int i = 0; i < 2; i++) {
				w[i] = (struct at_writer){ b, src, len, i, wsum, lie && i == 0, 0 };
				assert_int_equal(pthread_create(&th[i], NULL, at_thread, &w[i]), 0);
			}
			for (int i = 0; i < 2; i++) {
				pthread_join(th[i], NULL);
				assert_int_equal(w[i].ret, 0);
			}
			assert_int_equal(ppp_blob_write(b, src, 4096), -EINVAL);
			assert_int_equal(ppp_blob_close(b), 0);
			assert_int_equal(ppp_txn_commit(t), 0);
			assert_int_equal(ppp_verify(p, NULL), lie && taken ? -EBADMSG : 0);
			check_blob_bytes(p, "pages.img", src, len);
			ppp_close(p);
		}
	}

	/* mixed with ppp_blob_write(), or not whole */
	format_file(path, 32 * MiB, 0);
	p = open_store(path, PPP_RDWR);
	assert_int_equal(ppp_txn_begin(p, 0, &t), 0);
	assert_int_equal(ppp_blob_create(t, "a.img", 2 * MiB, &b), 0);
	assert_int_equal(ppp_blob_write(b, src, MiB), 0);
	assert_int_equal(ppp_blob_write_at(b, MiB, src, MiB, 0, NULL, 0), -EINVAL);
	ppp_blob_discard(b);
	ppp_txn_abort(t);
	assert_int_equal(ppp_txn_begin(p, 0, &t), 0);
	assert_int_equal(ppp_blob_create(t, "b.img", 2 * MiB, &b), 0);
	assert_int_equal(ppp_blob_write_at(b, MiB, src, MiB, 0, NULL, 0), 0);
	assert_int_equal(ppp_blob_write(b, src, MiB), -EINVAL);
	assert_int_equal(ppp_blob_close(b), -EIO);
	ppp_txn_abort(t);
	ppp_close(p);
	free(src);
}

static void test_mem_backend(void **state)
{
	size_t len = 2 * MiB;
	uint8_t *buf = aligned_alloc(4096, len);
	struct ppp_format_opts o = { .extent_size = 4096, .csum = g_csum };
	struct ppp_blob_info bi;
	struct ppp_status st;
	struct ppp_ckpt *c;
	struct ppp_txn *t;
	struct ppp *p;
	const void *d;
	uint8_t *src = pattern(20000, 101);

	assert_int_equal(ppp_format_mem(buf, 8192, &o), -EINVAL);
	assert_int_equal(ppp_format_mem(buf, len, &o), 0);
	assert_int_equal(ppp_open_mem(buf, 100, 0, &p), -ENODATA);
	assert_int_equal(ppp_open_mem(buf, len, PPP_RDWR, &p), 0);
	assert_int_equal(ppp_status(p, &st), 0);
	assert_int_equal(st.backend, PPP_BACKEND_MEM);
	assert_int_equal(st.extent_size, 4096);
	assert_int_equal(ppp_fd(p), -1);
	assert_int_equal(ppp_txn_begin(p, 0, &t), 0);
	put(t, "m.img", src, 20000);
	assert_int_equal(ppp_txn_commit(t), 0);
	ppp_close(p);

	assert_int_equal(ppp_open_mem(buf, len, 0, &p), 0);
	assert_int_equal(ppp_ckpt_open(p, &c), 0);
	assert_int_equal(ppp_blob_find(c, "m.img", &bi), 0);
	assert_int_equal(bi.nextents, 5);
	assert_int_equal(ppp_blob_map(c, &bi, 0, &d), 0);
	assert_memory_equal(d, src, 20000);
	{
		/* on the media: the checksum the format names, per extent
		 * (docs/ppp-format.md), read from the newest superblock's index */
		struct ppp_sb sb[2];
		const struct ppp_sb *cur;
		const struct ppp_ix_entry *ie;
		const uint8_t *ix, *tab;

		memcpy(&sb[0], buf, sizeof(sb[0]));
		memcpy(&sb[1], buf + 4096, sizeof(sb[1]));
		cur = le64toh(sb[1].generation) > le64toh(sb[0].generation) ? &sb[1] : &sb[0];
		assert_int_equal(le32toh(cur->version), 2);
		assert_int_equal(le32toh(cur->csum), store_csum());
		ix = buf + le64toh(cur->index_off);
		ie = (const struct ppp_ix_entry *)(ix + 64);
		tab = ix + 64 + 128 * le32toh(cur->nblobs);
		for (int k = 0; k < 5; k++) {
			size_t n = k < 4 ? 4096 : 20000 - 4 * 4096;
			uint64_t want = sum_of(store_csum(), src + k * 4096, n);
			uint64_t got = 0;

			memcpy(&got, tab + (le64toh(ie->crc_first) + k) *
				     (g_csum == PPP_CSUM_CRC32C ? 4 : 8),
			       g_csum == PPP_CSUM_CRC32C ? 4 : 8);
			assert_int_equal(le64toh(got), want);
		}
	}
	buf[bi.offset + 4 * 4096 + 1] ^= 1;
	log_reset();
	assert_int_equal(ppp_blob_verify(c, &bi), -EBADMSG);
	assert_true(log_has("extent 4/5 (blob bytes 16384-19999"));
	ppp_ckpt_close(c);
	ppp_close(p);
	/* a store image smaller than its superblock says */
	assert_int_equal(ppp_open_mem(buf, len - 4096, 0, &p), -EUCLEAN);
	free(src);
	free(buf);
}

static void test_many_blobs(void **state)
{
	const char *path = tpath("many.ppp");
	struct ppp_blob_info bi;
	struct ppp_status st;
	struct ppp_ckpt *c;
	struct ppp_txn *t;
	struct ppp *p;
	char name[64], data[600];
	const int n = 3000;

	format_file(path, 8 * MiB, 0);
	p = open_store(path, PPP_RDWR);
	assert_int_equal(ppp_txn_begin(p, 0, &t), 0);
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "core-%d.img", i);
		fill(data, sizeof(data), i);
		put(t, name, data, 100 + i % 500);
	}
	assert_int_equal(ppp_txn_commit(t), 0);
	assert_int_equal(ppp_status(p, &st), 0);
	assert_int_equal(st.nblobs, n);
	assert_true(st.used < 3 * MiB);	/* small blobs are packed */
	assert_int_equal(ppp_ckpt_open(p, &c), 0);
	for (int i = 0; i < n; i++) {
		char got[600];

		snprintf(name, sizeof(name), "core-%d.img", i);
		fill(data, sizeof(data), i);
		assert_int_equal(ppp_blob_find(c, name, &bi), 0);
		assert_int_equal(bi.size, 100 + i % 500);
		assert_int_equal(ppp_blob_read(c, &bi, 0, got, bi.size), 0);
		assert_memory_equal(got, data, bi.size);
	}
	ppp_ckpt_close(c);
	assert_int_equal(ppp_verify(p, NULL), 0);
	/* a second, appended checkpoint beside it */
	assert_int_equal(ppp_txn_begin(p, PPP_TXN_APPEND, &t), 0);
	put(t, "core-7.img", "new", 3);
	assert_int_equal(ppp_txn_commit(t), 0);
	assert_int_equal(ppp_ckpt_open(p, &c), 0);
	assert_int_equal(ppp_ckpt_nblobs(c), n);
	assert_int_equal(ppp_blob_find(c, "core-7.img", &bi), 0);
	assert_int_equal(bi.size, 3);
	ppp_ckpt_close(c);
	ppp_close(p);
}

struct thr {
	struct ppp_txn *t;
	int id;
	int ret;
};

static void *writer_thread(void *arg)
{
	struct thr *w = arg;
	struct ppp_blob *b;
	char name[32];
	uint8_t *src = pattern(2 * MiB + w->id, w->id);

	snprintf(name, sizeof(name), "pages-%d.img", w->id);
	w->ret = -1;
	/* creation is serialised by the caller in real use; here it races on
	 * purpose, the transaction's mutex must cope */
	if (ppp_blob_create(w->t, name, 2 * MiB + w->id, &b))
		goto out;
	memcpy(ppp_blob_data(b), src, 2 * MiB + w->id);
	w->ret = ppp_blob_close(b);
out:
	free(src);
	return NULL;
}

static void test_parallel_blobs(void **state)
{
	const char *path = tpath("par.ppp");
	struct spec s[4];
	char names[4][32];
	pthread_t th[4];
	struct thr w[4];
	struct ppp_txn *t;
	struct ppp *p;

	format_file(path, 32 * MiB, 0);
	p = open_store(path, PPP_RDWR);
	assert_int_equal(ppp_txn_begin(p, 0, &t), 0);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct thr){ t, i + 1, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, writer_thread, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].ret, 0);
		snprintf(names[i], sizeof(names[i]), "pages-%d.img", i + 1);
		s[i] = (struct spec){ names[i], 2 * MiB + i + 1, i + 1 };
	}
	assert_int_equal(ppp_txn_commit(t), 0);
	ppp_close(p);
	check_blobs(path, s, 4);
}

static void test_generations(void **state)
{
	const char *path = tpath("gen.ppp");
	struct spec s[] = { { "a.img", 10000, 111 } };
	struct ppp_sb a, b;

	format_file(path, 4 * MiB, 0);
	for (int g = 2; g < 8; g++) {
		s[0].seed = g;
		commit_blobs(path, 0, s, 1);
		file_pread(path, (g & 1) * 4096, &a, sizeof(a));
		file_pread(path, !(g & 1) * 4096, &b, sizeof(b));
		assert_int_equal(le64toh(a.generation), g);
		assert_int_equal(le64toh(b.generation), g - 1);
		check_blobs(path, s, 1);
	}
}

/* A checkpoint this process still reads is not overwritten by later
 * transactions of the same handle (other processes are kept out by flock). */
static void test_old_reader_same_process(void **state)
{
	const char *path = tpath("reader.ppp");
	struct spec s1[] = { { "a.img", 2 * MiB, 121 } };
	struct spec s2[] = { { "b.img", 2 * MiB, 122 } };
	struct spec s3[] = { { "c.img", 2 * MiB, 123 } };
	struct ppp_blob_info bi;
	struct ppp_ckpt *c;
	struct ppp_txn *t;
	struct ppp *p;
	const void *d;
	void *want = pattern(2 * MiB, 121);

	format_file(path, 8 * MiB, 0);
	commit_blobs(path, 0, s1, 1);
	p = open_store(path, PPP_RDWR);
	assert_int_equal(ppp_ckpt_open(p, &c), 0);
	for (int round = 0; round < 2; round++) {
		const struct spec *s = round ? s3 : s2;
		void *d2 = pattern(s->size, s->seed);

		assert_int_equal(ppp_txn_begin(p, 0, &t), 0);
		put(t, s->name, d2, s->size);
		assert_int_equal(ppp_txn_commit(t), 0);
		free(d2);
	}
	assert_int_equal(ppp_blob_find(c, "a.img", &bi), 0);
	assert_int_equal(ppp_blob_map(c, &bi, 0, &d), 0);
	assert_memory_equal(d, want, 2 * MiB);
	ppp_ckpt_close(c);
	/* once closed, its space is reused */
	assert_int_equal(ppp_txn_begin(p, 0, &t), 0);
	put(t, "d.img", want, 2 * MiB);
	assert_int_equal(ppp_txn_commit(t), 0);
	assert_int_equal(ppp_ckpt_open(p, &c), 0);
	assert_int_equal(ppp_blob_find(c, "d.img", &bi), 0);
	assert_int_equal(bi.offset, 8192);
	ppp_ckpt_close(c);
	ppp_close(p);
	free(want);
}

/* Logged errors go through the callback and name the store. */
static void test_logger(void **state)
{
	struct ppp *p;

	ppp_set_logger(NULL);	/* the default must not crash */
	ppp_set_logger(capture_logger);
	log_reset();
	assert_int_equal(ppp_open(tpath("nothing-here"), 0, &p), -ENOENT);
	assert_true(log_has("0 "));
	assert_true(log_has("nothing-here: open"));
	assert_string_equal(ppp_strerror(-EBADMSG), strerror(EBADMSG));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_format_open_empty),
		cmocka_unit_test(test_format_errors),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_corrupt_data),
		cmocka_unit_test(test_abort_keeps_previous),
		cmocka_unit_test(test_killed_writer),
		cmocka_unit_test(test_torn_superblock),
		cmocka_unit_test(test_truncated_file),
		cmocka_unit_test(test_bad_superblocks),
		cmocka_unit_test(test_version1_store),
		cmocka_unit_test(test_hostile_index),
		cmocka_unit_test(test_scrub),
		cmocka_unit_test(test_scrub_mark),
		cmocka_unit_test(test_append),
		cmocka_unit_test(test_replace_enospc),
		cmocka_unit_test(test_api_errors),
		cmocka_unit_test(test_truncate_blob),
		cmocka_unit_test(test_sum_now),
		cmocka_unit_test(test_mem_backend),
		cmocka_unit_test(test_many_blobs),
		cmocka_unit_test(test_parallel_blobs),
		cmocka_unit_test(test_generations),
		cmocka_unit_test(test_pwrite),
		cmocka_unit_test(test_write_at),
		cmocka_unit_test(test_take_sums),
		cmocka_unit_test(test_old_reader_same_process),
		cmocka_unit_test(test_logger),
	};

	int r;

	g_csum = PPP_CSUM_DEFAULT;
	r = cmocka_run_group_tests_name("ppp (xxh3 extents)", tests, setup, teardown);
	g_csum = PPP_CSUM_XXH64;
	r += cmocka_run_group_tests_name("ppp (xxhash64 extents)", tests, setup, teardown);
	g_csum = PPP_CSUM_CRC32C;
	r += cmocka_run_group_tests_name("ppp (crc32c extents)", tests, setup, teardown);
	return r;
}
