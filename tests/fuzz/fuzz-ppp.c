// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target for the persistent page store: the input is a store image.
 *
 * Each input is opened twice: as is, and with its superblock and index
 * checksums recomputed (so that mutations reach the index and data checks
 * instead of dying at the first crc).  Each time the store is walked
 * read-only (status, verify, every blob found, mapped, read), then written:
 * a transaction on top of it, a REPLACE transaction, a scrub.  Besides the
 * sanitizers, invariants are checked: whatever the library commits must
 * read back and verify.
 *
 * Build (from the top of the tree):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=gnu11 -D_GNU_SOURCE \
 *     -Ippp/include ppp/[a-z]*.c tests/fuzz/fuzz-ppp.c -lisal -lxxhash -lblkid -lkmod \
 *     -o build/fuzz/fuzz-ppp
 * Run:
 *   build/fuzz/fuzz-ppp -max_len=65536 -max_total_time=60 CORPUS_DIR tests/fuzz/corpus/ppp
 * Regenerate the seeds:
 *   PPP_FUZZ_MKCORPUS=tests/fuzz/corpus/ppp build/fuzz/fuzz-ppp
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ppp.h"
#include "../../ppp/ppp-int.h"	/* layout, to fix checksums up */

#define MAX_INPUT (1u << 20)

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz-ppp: invariant broken at line %d: %s\n", __LINE__, #cond); \
	abort(); } } while (0)

static void quiet(int level, const char *msg)
{
	(void)level;
	(void)msg;
	if (getenv("PPP_FUZZ_VERBOSE"))
		fprintf(stderr, "ppp: %s\n", msg);
}

/* Walk everything readable. */
static void walk(uint8_t *buf, size_t len)
{
	struct ppp_status st;
	struct ppp_ckpt *c;
	struct ppp *p;
	uint64_t nbad;
	volatile uint8_t sink = 0;

	if (ppp_open_mem(buf, len, PPP_RDONLY, &p))
		return;
	ppp_status(p, &st);
	ppp_verify(p, &nbad);
	if (ppp_ckpt_open(p, &c) == 0) {
		struct ppp_blob_info bi, bf;

		CHECK(ppp_blob_find(c, "\x7f-no-such-blob", &bf) == -ENOENT);
		for (uint32_t i = 0; ppp_ckpt_blob(c, i, &bi) == 0; i++) {
			const void *d;
			uint8_t tmp[64];
			size_t n = bi.size < sizeof(tmp) ? bi.size : sizeof(tmp);

			CHECK(i < ppp_ckpt_nblobs(c));
			CHECK(strlen(bi.name) >= 1 && strlen(bi.name) <= PPP_NAME_MAX);
			CHECK(ppp_blob_find(c, bi.name, &bf) == 0 && bf.index == i);
			CHECK(bi.size == 0 || (bi.offset >= PPP_DATA_OFF &&
					       bi.offset + bi.size <= len));
			CHECK(ppp_blob_map(c, &bi, PPP_MAP_NOVERIFY, &d) == 0);
			if (bi.size) {
				sink ^= ((const uint8_t *)d)[0];
				sink ^= ((const uint8_t *)d)[bi.size - 1];
			}
			if (ppp_blob_verify(c, &bi) == 0) {
				CHECK(ppp_blob_map(c, &bi, 0, &d) == 0);
				CHECK(ppp_blob_read(c, &bi, 0, tmp, n) == 0);
				CHECK(ppp_blob_read(c, &bi, bi.size - n, tmp, n) == 0);
			} else {
				CHECK(ppp_blob_map(c, &bi, 0, &d) == -EBADMSG);
			}
			CHECK(ppp_blob_read(c, &bi, bi.size, tmp, 1) == -ERANGE);
		}
		ppp_ckpt_close(c);
	}
	ppp_close(p);
	(void)sink;
}

static bool put(struct ppp_txn *t, const char *name, size_t size, uint8_t seed)
{
	struct ppp_blob *b;
	uint8_t chunk[512];

	memset(chunk, seed, sizeof(chunk));
	if (ppp_blob_create(t, name, size, &b))
		return false;	/* no space, typically */
	for (size_t off = 0; off < size; off += sizeof(chunk)) {
		size_t n = size - off < sizeof(chunk) ? size - off : sizeof(chunk);

		CHECK(ppp_blob_write(b, chunk, n) == 0);
	}
	CHECK(ppp_blob_close(b) == 0);
	return true;
}

/* After a successful commit of blob @name (@size bytes of @seed): it reads back. */
static void check_committed(uint8_t *buf, size_t len, const char *name, size_t size,
			    uint8_t seed, bool all_fresh)
{
	struct ppp_blob_info bi;
	struct ppp_ckpt *c;
	struct ppp *p;
	const void *d;

	CHECK(ppp_open_mem(buf, len, PPP_RDONLY, &p) == 0);
	CHECK(ppp_ckpt_open(p, &c) == 0);
	CHECK(ppp_blob_find(c, name, &bi) == 0);
	CHECK(bi.size == size);
	CHECK(ppp_blob_map(c, &bi, 0, &d) == 0);
	for (size_t i = 0; i < size; i++)
		CHECK(((const uint8_t *)d)[i] == seed);
	ppp_ckpt_close(c);
	if (all_fresh)
		CHECK(ppp_verify(p, NULL) == 0);
	ppp_close(p);
}

static void write_paths(uint8_t *buf, size_t len, const uint8_t *in, size_t inlen)
{
	struct ppp_status st;
	struct ppp_ckpt *c;
	struct ppp_txn *t;
	struct ppp *p;
	size_t sz = inlen > 100 ? (in[100] | in[99] << 8) % 9000 : 10;
	uint8_t seed = inlen > 50 ? in[50] : 1;

	uint8_t *orig;

	if (ppp_open_mem(buf, len, PPP_RDWR, &p))
		return;
	orig = malloc(len);
	CHECK(orig);
	memcpy(orig, buf, len);
	/* on top of whatever is there */
	if (ppp_txn_begin(p, PPP_TXN_APPEND, &t) == 0) {
		bool ok = put(t, "fuzz.img", sz, seed);

		put(t, "fuzz-empty.img", 0, 0);
		if (ppp_txn_commit(t) == 0 && ok) {
			check_committed(buf, len, "fuzz.img", sz, seed, false);
			ppp_verify(p, NULL);
		}
	}
	/* a fresh checkpoint, dropping the old one if space is short */
	if (ppp_txn_begin(p, PPP_TXN_REPLACE, &t) == 0) {
		size_t big = sz;

		ppp_status(p, &st);	/* may fail on a bad index, after the sizes */
		if (st.size)
			big += st.data_size / 2;

		bool ok_big = put(t, "big.img", big, seed ^ 0x55);
		bool ok_small = put(t, "small.img", sz / 3, seed);

		if (ppp_txn_commit(t) == 0) {
			if (ok_big)
				check_committed(buf, len, "big.img", big, seed ^ 0x55, true);
			if (ok_small)
				check_committed(buf, len, "small.img", sz / 3, seed, true);
		}
	}
	if (ppp_scrub(p) == 0) {
		uint64_t end = PPP_DATA_OFF + ppp_scrub_wiped(p);

		CHECK(ppp_ckpt_open(p, &c) == -ENOENT);
		CHECK(ppp_verify(p, NULL) == 0);
		CHECK(end <= p->size);
		/* wiped up to the data mark; above it, nothing was ever
		 * written: the transactions raised the mark before writing */
		for (size_t i = PPP_DATA_OFF; i < p->size; i++)
			CHECK(buf[i] == (i < end ? 0 : orig[i]));
	}
	free(orig);
	ppp_close(p);
}

/* Recompute the checksums of both superblock copies and of the index they
 * point to, when it lies in the buffer. */
static void fix_checksums(uint8_t *buf, size_t len)
{
	for (int i = 0; i < 2; i++) {
		struct ppp_sb sb;
		uint64_t off, ilen;

		if ((size_t)(i + 1) * PPP_SB_SLOT_SIZE > len)
			break;
		memcpy(&sb, buf + i * PPP_SB_SLOT_SIZE, sizeof(sb));
		off = le64toh(sb.index_off);
		ilen = le64toh(sb.index_len);
		if (off <= len && ilen <= len - off)
			sb.index_crc = htole32(ppp_crc32c(0, buf + off, ilen));
		sb.crc = htole32(ppp_crc32c(0, &sb, offsetof(struct ppp_sb, crc)));
		memcpy(buf + i * PPP_SB_SLOT_SIZE, &sb, sizeof(sb));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf;

	if (size > MAX_INPUT)
		return 0;
	/* exactly @size bytes, so that ASan sees any access past the image */
	buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	for (int pass = 0; pass < 2; pass++) {
		memcpy(buf, data, size);
		if (pass)
			fix_checksums(buf, size);
		walk(buf, size);
		write_paths(buf, size, data, size);
	}
	free(buf);
	return 0;
}

/* ---- seed corpus ---------------------------------------------------- */

static void save(const char *dir, const char *name, const uint8_t *buf, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f)) {
		perror(path);
		exit(1);
	}
}

static uint8_t *mkstore(size_t len, int nblobs, int gens, uint32_t csum)
{
	struct ppp_format_opts o = { .extent_size = 4096, .csum = csum };
	uint8_t *buf = calloc(1, len);
	struct ppp_txn *t;
	struct ppp *p;
	char name[32];

	CHECK(ppp_format_mem(buf, len, &o) == 0);
	CHECK(ppp_open_mem(buf, len, PPP_RDWR, &p) == 0);
	for (int g = 0; g < gens; g++) {
		CHECK(ppp_txn_begin(p, g ? PPP_TXN_APPEND : 0, &t) == 0);
		for (int i = 0; i < nblobs; i++) {
			snprintf(name, sizeof(name), "%s-%d.img", i % 3 ? "core" : "pages",
				 i + g * 100);
			put(t, name, i % 3 ? 50 + i * 37 : 4096 * (i % 4) + 100 * i, i + g);
		}
		CHECK(ppp_txn_commit(t) == 0);
	}
	ppp_close(p);
	return buf;
}

/* The seeds of one extent checksum type; names end in -@sfx. */
static void mkcorpus_csum(const char *dir, uint32_t csum, const char *sfx)
{
	const size_t S = 64 << 10;
	struct ppp_format_opts o = { .extent_size = 4096, .csum = csum };
	char n[64];
	uint8_t *b;

#define SAVE(name, buf, len) \
	(snprintf(n, sizeof(n), "%s-%s", name, sfx), save(dir, n, buf, len))
	b = calloc(1, 16 << 10);
	CHECK(ppp_format_mem(b, 16 << 10, &o) == 0);
	SAVE("empty-16k", b, 16 << 10);
	free(b);

	b = mkstore(32 << 10, 3, 1, csum);
	SAVE("three-32k", b, 32 << 10);
	free(b);

	b = mkstore(S, 12, 1, csum);
	SAVE("twelve-64k", b, S);
	b[0x2100] ^= 1;				/* a data byte */
	SAVE("twelve-64k-baddata", b, S);
	free(b);

	b = mkstore(S, 5, 3, csum);
	SAVE("appended-64k", b, S);
	b[100] ^= 1;				/* one superblock copy */
	SAVE("appended-64k-torn", b, S);
	b[4096 + 100] ^= 1;			/* both */
	SAVE("appended-64k-nosb", b, S);
	SAVE("appended-64k-short", b, S - 4096);
	free(b);

	b = mkstore(S, 4, 1, csum);
	{
		struct ppp *p;

		CHECK(ppp_open_mem(b, S, PPP_RDWR, &p) == 0);
		CHECK(ppp_scrub(p) == 0);
		ppp_close(p);
	}
	SAVE("scrubbed-64k", b, S);
	free(b);
#undef SAVE
}

/* Seeds named *-v1 are version 1 stores (crc32c, no checksum field), kept
 * from before version 2. */
static void mkcorpus(const char *dir)
{
	mkcorpus_csum(dir, PPP_CSUM_XXH3, "xxh3");
	mkcorpus_csum(dir, PPP_CSUM_XXH64, "xxh64");
	mkcorpus_csum(dir, PPP_CSUM_CRC32C, "crc32c");
	fprintf(stderr, "seeds written to %s\n", dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("PPP_FUZZ_MKCORPUS");

	(void)argc;
	(void)argv;
	ppp_set_logger(quiet);
	if (dir) {
		mkcorpus(dir);
		exit(0);
	}
	return 0;
}
