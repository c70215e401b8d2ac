// SPDX-License-Identifier: GPL-2.0-or-later
/* Image containers: round trip, and every kind of damage is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glob.h>
#include <cmocka.h>

#include "image.h"
#include "log.h"
#include "kup-image.pb-c.h"

static char dir[] = "/tmp/kup-test-image.XXXXXX";

static struct img_store *open_store(void)
{
	struct img_store *st;

	assert_int_equal(img_store_open_dir(dir, IMG_DIR_WRITE, &st), 0);
	return st;
}

static void write_pstree(struct img_store *st, uint32_t pid)
{
	PstreeEntry e = PSTREE_ENTRY__INIT, *pe = &e;
	PstreeImage img = PSTREE_IMAGE__INIT;
	uint32_t tids[1] = { pid };

	e.pid = pid;
	e.pgid = e.sid = pid;
	e.state = TASK_STATE__TASK_ALIVE;
	e.n_threads = 1;
	e.threads = tids;
	img.n_entries = 1;
	img.entries = &pe;
	assert_int_equal(img_write_msg(st, "pstree.img", IMG_PSTREE, &img), 0);
}

static int read_pstree(struct img_store *st, uint32_t *pid)
{
	ProtobufCMessage *m;
	int ret = img_read_msg(st, "pstree.img", IMG_PSTREE, &pstree_image__descriptor, &m);

	if (!ret) {
		*pid = ((PstreeImage *)m)->entries[0]->pid;
		protobuf_c_message_free_unpacked(m, NULL);
	}
	return ret;
}

/* Where the store is writing pstree.img: its staging directory. */
static void staged_path(char *path, size_t len)
{
	char pat[128];
	glob_t g;

	snprintf(pat, sizeof(pat), "%s/.kup-new-*/pstree.img", dir);
	assert_int_equal(glob(pat, 0, NULL, &g), 0);
	assert_int_equal(g.gl_pathc, 1);
	snprintf(path, len, "%s", g.gl_pathv[0]);
	globfree(&g);
}

static void damage(size_t off, int truncate_to)
{
	char path[128];
	FILE *f;
	int c;

	staged_path(path, sizeof(path));
	if (truncate_to >= 0) {
		assert_int_equal(truncate(path, truncate_to), 0);
		return;
	}
	f = fopen(path, "r+");
	assert_non_null(f);
	fseek(f, off, SEEK_SET);
	c = fgetc(f);
	fseek(f, off, SEEK_SET);
	fputc(c ^ 0x40, f);
	fclose(f);
}

static void test_round_trip(void **state)
{
	struct img_store *st = open_store();
	uint32_t pid = 0;

	write_pstree(st, 4242);
	assert_int_equal(read_pstree(st, &pid), 0);
	assert_int_equal(pid, 4242);
	st->ops->close(st);
}

static void test_missing(void **state)
{
	struct img_store *st = open_store();
	uint32_t pid;

	st->ops->remove(st, "pstree.img");
	assert_int_equal(read_pstree(st, &pid), -ENOENT);
	st->ops->close(st);
}

static void test_damage(void **state)
{
	/* magic, version, kind, record length, checksum, payload */
	static const size_t offs[] = { 0, 8, 12, 16, 20, 26 };
	struct img_store *st = open_store();
	uint32_t pid;

	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		write_pstree(st, 7);
		damage(offs[i], -1);
		assert_int_equal(read_pstree(st, &pid), -EINVAL);
	}
	for (int len = 0; len < 26; len += 5) {
		write_pstree(st, 7);
		damage(0, len);
		assert_true(read_pstree(st, &pid) < 0);
	}
	st->ops->close(st);
}

static void test_wrong_kind(void **state)
{
	struct img_store *st = open_store();
	ProtobufCMessage *m;

	write_pstree(st, 9);
	assert_int_equal(img_read_msg(st, "pstree.img", IMG_CORE, &core_entry__descriptor, &m), -EINVAL);
	st->ops->close(st);
}

static void test_abort_removes(void **state)
{
	struct img_store *st = open_store();
	char path[128];

	write_pstree(st, 11);
	staged_path(path, sizeof(path));
	assert_int_equal(access(path, F_OK), 0);
	st->ops->abort(st);
	assert_int_not_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/pstree.img", dir);
	assert_int_not_equal(access(path, F_OK), 0);
	st->ops->close(st);
}

/* Nothing is visible in the directory before the commit, all of it after. */
static void test_commit(void **state)
{
	struct img_store *st = open_store();
	InventoryEntry inv = INVENTORY_ENTRY__INIT;
	char path[128];
	uint32_t pid = 0;

	write_pstree(st, 12);
	snprintf(path, sizeof(path), "%s/pstree.img", dir);
	assert_int_not_equal(access(path, F_OK), 0);
	inv.root_pid = 12;
	assert_int_equal(img_write_msg(st, "inventory.img", IMG_INVENTORY, &inv), 0);
	assert_int_equal(st->ops->commit(st), 0);
	assert_int_equal(access(path, F_OK), 0);
	st->ops->close(st);
	assert_int_equal(img_store_open_dir(dir, 0, &st), 0);
	assert_int_equal(read_pstree(st, &pid), 0);
	assert_int_equal(pid, 12);
	st->ops->close(st);
}

/* A planted symlink makes a dump into the directory refuse. */
static void test_planted_symlink(void **state)
{
	struct img_store *st;
	char path[128];

	snprintf(path, sizeof(path), "%s/core-1.img", dir);
	assert_int_equal(symlink("/nonexistent", path), 0);
	assert_int_equal(img_store_open_dir(dir, IMG_DIR_WRITE, &st), -EPERM);
	unlink(path);
}

/* A pages image's checksums, of either kind: the same pieces whatever the
 * sizes it is fed in, each that of its MiB, the whole's theirs; one sum of
 * the bytes when asked whole; XXH3 and XXH64 differ. */
static void test_pages_sums(void **state)
{
	size_t len = 3 * IMG_PAGES_CHUNK + 12345, steps[] = { 1, 4096, 777777, IMG_PAGES_CHUNK, len };
	enum img_psum_kind kinds[] = { IMG_PSUM_XXH64, IMG_PSUM_XXH3 };
	uint8_t *buf = malloc(len);
	uint64_t whole, first = 0, *sums, wholes[2];
	size_t n;

	assert_non_null(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 2654435761u >> 13);
	assert_true(img_piece_sum(IMG_PSUM_XXH64, buf, len) == XXH64(buf, len, 0));
	assert_true(img_piece_sum(IMG_PSUM_XXH3, buf, len) == XXH3_64bits(buf, len));
	assert_string_equal(img_psum_kind_name(IMG_PSUM_XXH3), "xxh3");
	assert_null(img_psum_kind_name(2));
	for (size_t t = 0; t < 2; t++) {
		enum img_psum_kind kind = kinds[t];

		for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
			struct img_psum ps;

			img_psum_init(&ps, kind, false);
			for (size_t off = 0; off < len; off += steps[k])
				img_psum_update(&ps, buf + off,
						len - off < steps[k] ? len - off : steps[k]);
			assert_int_equal(img_psum_final(&ps, &whole, &sums, &n), 0);
			assert_int_equal(n, img_psum_pieces(len));
			assert_int_equal(n, 4);
			for (size_t i = 0; i < n; i++) {
				size_t cl = len - i * IMG_PAGES_CHUNK < IMG_PAGES_CHUNK ?
					    len - i * IMG_PAGES_CHUNK : IMG_PAGES_CHUNK;

				assert_true(sums[i] ==
					    img_piece_sum(kind, buf + i * IMG_PAGES_CHUNK, cl));
			}
			assert_true(whole == img_psum_of_sums(kind, sums, n));
			if (k)
				assert_true(whole == first);
			first = whole;
			free(sums);
		}
		wholes[t] = whole;
		{
			struct img_psum ps;

			img_psum_init(&ps, kind, true);
			img_psum_update(&ps, buf, 100);
			img_psum_update(&ps, buf + 100, len - 100);
			assert_int_equal(img_psum_final(&ps, &whole, NULL, NULL), 0);
			assert_true(whole == img_piece_sum(kind, buf, len));
		}
		{
			/* released unfinished (a failed copy) */
			struct img_psum ps;

			img_psum_init(&ps, kind, false);
			img_psum_update(&ps, buf, len);
			img_psum_release(&ps);
		}
	}
	assert_true(wholes[0] != wholes[1]);
	/* the sums of more than one batch of 64 pieces (a 64+ MiB image) */
	{
		uint64_t many[200];
		uint8_t le[200 * 8];

		for (size_t i = 0; i < 200; i++) {
			many[i] = 0x0123456789abcdefull * (i + 1);
			for (int b = 0; b < 8; b++)
				le[i * 8 + b] = many[i] >> (8 * b);
		}
		assert_true(img_psum_of_sums(IMG_PSUM_XXH3, many, 200) == XXH3_64bits(le, sizeof(le)));
		assert_true(img_psum_of_sums(IMG_PSUM_XXH64, many, 200) == XXH64(le, sizeof(le), 0));
	}
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pages_sums),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_damage),
		cmocka_unit_test(test_wrong_kind),
		cmocka_unit_test(test_abort_removes),
		cmocka_unit_test(test_commit),
		cmocka_unit_test(test_planted_symlink),
	};
	int ret;

	log_set_level(getenv("TEST_VERBOSE") ? 3 : -1);
	if (!mkdtemp(dir))
		return 1;
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	{
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd))
			ret = ret ? ret : 1;
	}
	return ret;
}
