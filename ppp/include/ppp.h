/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ppp — the persistent page store.
 *
 * A store is a file, or a block device such as the legacy pmem region
 * /dev/pmem0 (memmap=SIZE!START), whose content survives a kexec.  It holds
 * at most one committed checkpoint: a set of named blobs written in one
 * transaction and made visible by an atomic superblock flip.  The on-media
 * format is described in docs/ppp-format.md.
 *
 * Conventions:
 *  - Every function that can fail returns 0 or a negative errno and reports
 *    the reason (naming the store, blob, extent and offset) once through the
 *    logger set with ppp_set_logger().
 *  - Media content is never trusted: a corrupt store yields an error
 *    (-EUCLEAN: bad metadata, -EBADMSG: checksum mismatch, -ENODATA: not a
 *    store, -EPROTONOSUPPORT: unknown version), never a crash.
 *  - One struct ppp may be used from several threads only with external
 *    locking, except: writes into different blobs of a transaction
 *    (ppp_blob_write(), the ppp_blob_data() pointer, ppp_blob_close()) may run
 *    in parallel, and read-side calls on an open checkpoint are thread-safe.
 *
 * The library depends on libc, ISA-L (crc32c), libxxhash (XXH64, XXH3),
 * libblkid and libkmod only.
 */
#ifndef PPP_H
#define PPP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PPP_NAME_MAX		95		/* bytes in a blob name, without the NUL */
#define PPP_SIZE_UNKNOWN	UINT64_MAX	/* ppp_blob_create(): size not known yet */
#define PPP_MIN_SIZE		(16u << 10)	/* smallest store */
#define PPP_PAGE_SIZE		4096u		/* alignment of blobs >= 4 KiB */

struct ppp;		/* an open store */
struct ppp_txn;		/* a transaction writing a new checkpoint */
struct ppp_blob;	/* a blob being written */
struct ppp_ckpt;	/* the committed checkpoint, opened for reading */

/* ---- logging -------------------------------------------------------- */

enum { PPP_LOG_ERR = 0, PPP_LOG_WARN = 1, PPP_LOG_INFO = 2, PPP_LOG_DEBUG = 3 };

/*
 * Route messages (one line, no trailing newline) to @fn; NULL restores the
 * default, which prints errors and warnings on stderr as "ppp: ...".
 * Process-wide; set it before using the library from several threads.
 */
void ppp_set_logger(void (*fn)(int level, const char *msg));

/*
 * Long work that is only an optimisation (prefaulting a blob's mapping)
 * stops early once @fn returns true (e.g. an abort was requested from a
 * signal handler).  NULL: never.  Process-wide.
 */
void ppp_set_interrupt(bool (*fn)(void));

/* ---- store ---------------------------------------------------------- */

/*
 * Extent checksums.  All detect a torn or scribbled extent.  XXH3 (the
 * default) is 64 bits wide and vectorised (SSE2, AVX2 or AVX512, chosen at
 * run time): ~32 GB/s from cache on a current x86 core, so over a store's
 * extents it runs as fast as memory delivers them (~11 GB/s from DRAM,
 * where XXH64 gives 4.4), and a writer that summed its pieces with it can
 * hand the sums over (ppp_blob_write_at(), ppp_blob_take_sums()) instead of
 * the store reading the pieces again.  Under QEMU TCG (no vector units to map to)
 * it still does ~1 GB/s.  XXH64 is 64 bits of plain integer arithmetic
 * (13.6 GB/s cached, 8.5 under TCG).  crc32c is fast only where the CPU has
 * a crc32 instruction: ~120 MB/s where that is emulated (TCG).  Stores keep
 * the checksum they were formatted with.  docs/ppp-format.md.
 */
enum {
	PPP_CSUM_DEFAULT = 0,	/* ppp_format(): PPP_CSUM_XXH3 */
	PPP_CSUM_CRC32C = 1,	/* Castagnoli, as iSCSI and ext4 */
	PPP_CSUM_XXH64 = 2,	/* xxHash XXH64, seed 0 */
	PPP_CSUM_XXH3 = 3,	/* xxHash XXH3, 64 bits, no seed (XXH3_64bits()) */
};
/* "crc32c", "xxhash64", "xxh3" (NULL for an unknown value) */
const char *ppp_csum_name(uint32_t csum);
/* the PPP_CSUM_* value of a name ("crc32c", "xxhash64", also "xxh64", "xxh3",
 * also "xxhash3"), or -EINVAL */
int ppp_csum_parse(const char *name);

struct ppp_format_opts {
	uint32_t extent_size;	/* checksum granularity, power of two in [4 KiB, 1 GiB];
				   0: 1 MiB */
	unsigned flags;
	uint32_t csum;		/* PPP_CSUM_*; 0: PPP_CSUM_XXH3 */
};
#define PPP_FORMAT_FORCE	0x1	/* overwrite a device/file that holds other data */
#define PPP_FORMAT_SPARSE	0x2	/* file: do not preallocate (default: fallocate) */

/*
 * Create an empty store (no checkpoint, generation 1, new UUID).
 * File: created (mode 0600) or recreated, then sized to @size bytes (rounded
 * down to 4 KiB); @size 0 reuses the size of an existing non-empty file.
 * Block device: @size 0 means the whole device; a smaller size uses a prefix.
 * Refuses a device or a non-empty file that holds something else (a
 * filesystem, a partition table, other data) unless PPP_FORMAT_FORCE.
 * @opts may be NULL.
 */
int ppp_format(const char *path, uint64_t size, const struct ppp_format_opts *opts);

/* Same, over caller memory (@len bytes; tests, fuzzing, building images). */
int ppp_format_mem(void *buf, size_t len, const struct ppp_format_opts *opts);

#define PPP_RDONLY	0x0
#define PPP_RDWR	0x1

/*
 * Open the store in a file or a block device and map it (MAP_SHARED).
 * Validates the superblocks; the checkpoint index is validated by
 * ppp_ckpt_open().  PPP_RDWR is needed for transactions and ppp_scrub().
 * As with any shared mapping, a store file must not be truncated by someone
 * else while it is open (accesses past the new end raise SIGBUS).
 */
int ppp_open(const char *path, int flags, struct ppp **out);

/* Open a store image held in caller memory (no locking, no msync).  The
 * memory must stay valid and must not be resized until ppp_close(). */
int ppp_open_mem(void *buf, size_t len, int flags, struct ppp **out);

/* Unmap and close; aborts a transaction still open.  Checkpoints still open
 * are detached: their calls then fail with -EBADF, pointers obtained from
 * them become invalid, and they must still be freed with ppp_ckpt_close(). */
void ppp_close(struct ppp *p);

/* The path given to ppp_open() ("<memory>" for ppp_open_mem()). */
const char *ppp_path(const struct ppp *p);

/* The file descriptor of the store (-1 for memory), e.g. to mmap a blob
 * privately at struct ppp_blob_info.offset. */
int ppp_fd(const struct ppp *p);

enum { PPP_BACKEND_FILE = 1, PPP_BACKEND_BLOCK = 2, PPP_BACKEND_MEM = 3 };

struct ppp_status {
	uint32_t version;		/* on-media format version */
	int backend;			/* PPP_BACKEND_* */
	uint8_t uuid[16];
	char uuid_str[37];		/* "xxxxxxxx-xxxx-..." */
	uint64_t size;			/* store size in bytes */
	uint64_t data_size;		/* bytes available to blobs and the index */
	uint64_t used;			/* bytes held by the committed checkpoint */
	uint64_t generation;		/* bumped by every commit, scrub, format */
	uint32_t extent_size;		/* checksum granularity */
	uint32_t csum;			/* PPP_CSUM_* of the extents */
	const char *csum_name;		/* ppp_csum_name(csum) */
	bool has_ckpt;			/* a committed checkpoint is present */
	uint32_t nblobs;		/* blobs in it */
	uint64_t blob_bytes;		/* sum of their sizes */
	uint64_t commit_time_ns;	/* CLOCK_REALTIME of the last commit (0: none) */
	uint64_t format_time_ns;
	unsigned sb_valid;		/* bit 0/1: superblock copy 0/1 is valid */
	uint64_t data_mark;		/* the data area is zero from this offset on
					   (0: unknown, the next scrub wipes all) */
	bool map_only;			/* a file in hugetlbfs (reserved huge pages):
					   written through the mapping only */
};

/* Describe the store as it is now on the media (re-reads the superblocks). */
int ppp_status(struct ppp *p, struct ppp_status *st);

/*
 * Check both superblock copies, the index and the checksum of every extent of
 * every blob.  Each problem is logged, naming the blob, the extent and its
 * offsets.  Returns 0 if the store is sound, -EBADMSG if a checksum failed,
 * another negative errno if the metadata is unusable; *nbad (may be NULL)
 * gets the number of bad extents.  A store without a checkpoint is sound.
 */
int ppp_verify(struct ppp *p, uint64_t *nbad);

/*
 * After a successful restore: invalidate the checkpoint (both superblock
 * copies, generation + 1), then zero the data area — the checkpoint's blobs
 * and index and whatever older or aborted transactions left — so that no
 * process memory lingers.  Only the part below the superblock's data mark is
 * wiped (the highest byte written since the last wipe: transactions raise it
 * before they write above it); all of it if the store has no mark.  Needs
 * PPP_RDWR and no open transaction.
 */
int ppp_scrub(struct ppp *p);

/* Bytes the last successful ppp_scrub() on @p wiped (0 before one). */
uint64_t ppp_scrub_wiped(const struct ppp *p);

/* ---- write side ----------------------------------------------------- */

/*
 * Start a transaction (one at a time per store, across processes: -EBUSY
 * otherwise).  Nothing becomes visible before ppp_txn_commit(); the committed
 * checkpoint stays valid and untouched until then, so a crash, a kexec or a
 * kill -9 at any point leaves either the old checkpoint or the new one.
 *
 * PPP_TXN_APPEND: the new checkpoint starts with the blobs of the committed
 *   one (by reference, no copy); creating a blob of the same name replaces it.
 * PPP_TXN_REPLACE: if space runs out while the committed checkpoint is still
 *   kept, invalidate it (a superblock flip to "no checkpoint") and reuse its
 *   space.  A crash after that point leaves no checkpoint at all (never a
 *   corrupt one).  Not with PPP_TXN_APPEND.
 */
#define PPP_TXN_APPEND	0x1
#define PPP_TXN_REPLACE	0x2
int ppp_txn_begin(struct ppp *p, unsigned flags, struct ppp_txn **out);

/*
 * Add a blob of @size bytes to the transaction and reserve its space: one
 * contiguous region of the mapping, page-aligned if @size >= 4 KiB (64-byte
 * aligned otherwise).  @name: 1..PPP_NAME_MAX printable ASCII characters,
 * unique in the transaction (-EEXIST).  @size PPP_SIZE_UNKNOWN: the data is
 * buffered in memory and placed at ppp_blob_close() (small images only; no
 * ppp_blob_data()).  -ENOSPC if the store is full.
 */
int ppp_blob_create(struct ppp_txn *t, const char *name, uint64_t size,
		    struct ppp_blob **out);

/* Append @len bytes (sequential writes). -EFBIG past the size given. */
int ppp_blob_write(struct ppp_blob *b, const void *buf, size_t len);

/*
 * Or the blob in ranges written in any order, by several threads at a time:
 * @len bytes at @off, each byte once.  The checksums of the extents wholly
 * in a range are taken from @sums (the @csum checksum, PPP_CSUM_XXH64 or
 * PPP_CSUM_XXH3, of each @piece bytes of @buf, the last one shorter; may be
 * NULL) where they are the store's own (@csum is the store's checksum,
 * @piece its extent size, @off on an extent boundary), else computed here;
 * an extent across ranges is summed from the store at ppp_blob_close().
 * Once every byte is written the blob is as one written whole with
 * ppp_blob_write() (ppp_blob_pwrite, ppp_blob_close).  Not mixed with
 * ppp_blob_write() on one blob.
 */
int ppp_blob_write_at(struct ppp_blob *b, uint64_t off, const void *buf, size_t len,
		      uint32_t csum, const uint64_t *sums, uint64_t piece);

/*
 * The blob's region in the mapping, writable, @size bytes, for zero-copy
 * writes (e.g. process_vm_readv() straight into the store).  Any order; the
 * checksums are computed by ppp_blob_close() over the whole blob.  NULL for a
 * PPP_SIZE_UNKNOWN blob.
 */
void *ppp_blob_data(struct ppp_blob *b);

/*
 * For a blob written through ppp_blob_data(): compute the checksums of the
 * extents holding bytes [@off, @off + @len) now, from the mapping;
 * ppp_blob_close() keeps them unless ppp_blob_changed() has named those
 * bytes since.  For a writer that fills a blob early and changes a few pages
 * of it later (a pre-dump's image written ahead): the close then reads only
 * the extents changed.  The writer must name every change.
 */
int ppp_blob_sum_now(struct ppp_blob *b, uint64_t off, uint64_t len);
void ppp_blob_changed(struct ppp_blob *b, uint64_t off, uint64_t len);

/*
 * For a blob written in full with ppp_blob_write() (a pre-dump's image
 * written ahead into a block device, a few pages of it changed later):
 * ppp_blob_pwrite() writes @len bytes at @off again, with O_DIRECT when
 * @buf, @off and @len are 4 KiB aligned; the extents it touches lose their
 * checksums.  ppp_blob_sum_bytes(): @buf holds bytes [@off, @off + @len) as
 * they are in the store now; the checksums of the extents wholly in that
 * range are taken from it.  ppp_blob_close() reads back from the store the
 * extents written again and not summed since.
 */
int ppp_blob_pwrite(struct ppp_blob *b, uint64_t off, const void *buf, size_t len);
int ppp_blob_sum_bytes(struct ppp_blob *b, uint64_t off, const void *buf, size_t len);

/*
 * For a blob written through ppp_blob_data(), whole: @sums are the writer's
 * own @csum checksums (PPP_CSUM_XXH64 or PPP_CSUM_XXH3) of each @piece bytes
 * of it (@n of them, the last one shorter), taken from the mapping once it
 * wrote them.  Where they are the store's checksums (@csum is the store's,
 * @piece its extent size) they become the extents' checksums, as
 * ppp_blob_sum_now() would take them, and ppp_blob_close() does not read the
 * blob again; returns 1 then, 0 when they are not (the close computes its
 * own).  The writer must name every change made since (ppp_blob_changed).
 */
int ppp_blob_take_sums(struct ppp_blob *b, uint32_t csum, const uint64_t *sums, uint64_t n,
		       uint64_t piece);

/* Shrink the blob to @len bytes (<= the size given); the tail is released. */
int ppp_blob_truncate(struct ppp_blob *b, uint64_t len);

/*
 * Finish the blob: compute the checksum of each extent and start writeback.
 * A blob written only with ppp_blob_write() must be complete (-EIO
 * otherwise; ppp_blob_truncate() first if less is meant).  The handle is
 * freed in every case; on error the transaction can no longer commit.
 */
int ppp_blob_close(struct ppp_blob *b);

/*
 * Drop an open blob unfinished: no checksums, no writeback, its space goes
 * back.  The handle is freed; the transaction can no longer commit
 * (-ECANCELED), only be aborted.  For a writer that gives up half-way.
 */
void ppp_blob_discard(struct ppp_blob *b);

/*
 * Leave blob @name out of the new checkpoint: a closed blob of this
 * transaction (its space is released) or, with PPP_TXN_APPEND, an inherited
 * one.  -ENOENT if there is none, -EBUSY if it is still open.
 */
int ppp_txn_remove(struct ppp_txn *t, const char *name);

/*
 * Write the index, msync() the blobs and the index, then flip the
 * superblock.  All blobs must be closed.  The transaction is freed whether
 * it succeeds or not (on failure the committed checkpoint is unchanged).
 */
int ppp_txn_commit(struct ppp_txn *t);

/* Drop the transaction and its unclosed blobs; the media is left as it was. */
void ppp_txn_abort(struct ppp_txn *t);

/* ---- read side ------------------------------------------------------ */

/*
 * Open the newest committed checkpoint: re-reads the superblocks, copies and
 * validates the index (bounds, overflow, names, no overlaps).  -ENOENT if the
 * store has no checkpoint.  The result does not change if the store is
 * written to later.
 */
int ppp_ckpt_open(struct ppp *p, struct ppp_ckpt **out);
void ppp_ckpt_close(struct ppp_ckpt *c);

uint64_t ppp_ckpt_generation(const struct ppp_ckpt *c);
uint32_t ppp_ckpt_nblobs(const struct ppp_ckpt *c);

struct ppp_blob_info {
	const char *name;	/* valid until ppp_ckpt_close() */
	uint64_t size;		/* bytes */
	uint64_t offset;	/* of the data in the store file/device (page-aligned
				   if size >= 4 KiB) */
	uint32_t index;		/* 0..nblobs-1, blobs are sorted by name */
	uint32_t extent_size;
	uint64_t nextents;
};

/* Blob number @i (0..nblobs-1, in name order); -ENOENT past the end. */
int ppp_ckpt_blob(const struct ppp_ckpt *c, uint32_t i, struct ppp_blob_info *info);

/* Look a blob up by name (binary search); -ENOENT if absent. */
int ppp_blob_find(const struct ppp_ckpt *c, const char *name, struct ppp_blob_info *info);

/*
 * A read-only pointer to the blob's data in the mapping (no copy).  The
 * extents are checked against their checksums first (once per checkpoint handle)
 * unless PPP_MAP_NOVERIFY; -EBADMSG on mismatch (logged with the extent).
 */
#define PPP_MAP_NOVERIFY	0x1
int ppp_blob_map(const struct ppp_ckpt *c, const struct ppp_blob_info *info,
		 unsigned flags, const void **data);

/* Copy @len bytes at @off of the blob into @buf after checking the checksums of
 * the extents they lie in.  -ERANGE if the range is outside the blob. */
int ppp_blob_read(const struct ppp_ckpt *c, const struct ppp_blob_info *info,
		  uint64_t off, void *buf, size_t len);

/* Check all extents of one blob; -EBADMSG (logged) on mismatch. */
int ppp_blob_verify(const struct ppp_ckpt *c, const struct ppp_blob_info *info);

/* ---- locating the store --------------------------------------------- */

/*
 * Find a block device holding a store: /dev/pmem* first, then every other
 * block device (/sys/class/block, named through libblkid).  With PPP_FIND_LOAD_MODULES, if no /dev/pmem*
 * exists and /proc/iomem shows "Persistent Memory (legacy)", load nd_e820
 * and nd_pmem (libkmod) and wait for the device.  Writes the path into @buf.
 * -ENODEV if none.
 */
#define PPP_FIND_LOAD_MODULES	0x1
int ppp_find_device(char *buf, size_t buflen, unsigned flags);

/* Does /proc/iomem show a legacy persistent memory range (memmap=SIZE!START)? */
bool ppp_have_legacy_pmem(void);

/* crc32c (Castagnoli, as in iSCSI/ext4; the superblocks and the index):
 * crc = ppp_crc32c(0, buf, len);
 * chaining: ppp_crc32c(ppp_crc32c(0, a, n), b, m) == crc of a||b. */
uint32_t ppp_crc32c(uint32_t crc, const void *buf, size_t len);

/* The text of a negative errno returned by the library, for messages. */
const char *ppp_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* PPP_H */
