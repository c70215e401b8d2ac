/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ppp internals: on-media structures (docs/ppp-format.md) and the helpers
 * shared by the files of ppp/.  Not installed, not for other components.
 */
#ifndef PPP_INT_H
#define PPP_INT_H

#include <endian.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define XXH_STATIC_LINKING_ONLY		/* XXH64_state_t, XXH3_state_t on the stack */
#include <xxhash.h>

#include "ppp.h"

/* ---- on media (all integers little-endian) -------------------------- */

#define PPP_SB_MAGIC		"KUPPPPSB"
#define PPP_IX_MAGIC		"KUPPPPIX"
#define PPP_VERSION		2		/* written; version 1 (crc32c, no csum field) is read */
#define PPP_VERSION_V1		1
#define PPP_SB_SIZE		256		/* bytes of struct ppp_sb */
#define PPP_SB_SLOT_SIZE	4096		/* each copy has its own page */
#define PPP_DATA_OFF		8192		/* after the two superblock pages */
#define PPP_SMALL_ALIGN		64		/* alignment of blobs < 4 KiB, the index */
#define PPP_DEF_EXTENT_SHIFT	20		/* 1 MiB */
#define PPP_MIN_EXTENT_SHIFT	12
#define PPP_MAX_EXTENT_SHIFT	30
#define PPP_MAX_BLOBS		(1u << 20)
#define PPP_MARK_STEP		(64ull << 20)	/* the data mark is raised ahead by this */

#define PPP_SB_HAS_CKPT		0x1u		/* index_* describe a checkpoint */
#define PPP_SB_KNOWN_FLAGS	PPP_SB_HAS_CKPT

struct ppp_sb {
	uint8_t  magic[8];		/*   0 "KUPPPPSB" */
	uint32_t version;		/*   8 PPP_VERSION */
	uint32_t sb_size;		/*  12 PPP_SB_SIZE */
	uint8_t  uuid[16];		/*  16 store identity, set by format */
	uint64_t generation;		/*  32 +1 at every state change */
	uint64_t size;			/*  40 store size, multiple of 4096 */
	uint64_t data_off;		/*  48 PPP_DATA_OFF */
	uint32_t extent_shift;		/*  56 log2 of the checksum extent */
	uint32_t flags;			/*  60 PPP_SB_* */
	uint64_t index_off;		/*  64 byte offset of the index (0: none) */
	uint64_t index_len;		/*  72 its length */
	uint32_t index_crc;		/*  80 crc32c of the index */
	uint32_t nblobs;		/*  84 entries in the index */
	uint64_t commit_time_ns;	/*  88 CLOCK_REALTIME of the commit */
	uint64_t format_time_ns;	/*  96 */
	uint32_t csum;			/* 104 PPP_CSUM_* of the extents (v1: 0 = crc32c) */
	uint64_t data_mark;		/* 108 end of the data written since the
					 * last wipe (0: unknown, wipe all) */
	uint8_t  reserved[136];		/* 116 zero */
	uint32_t crc;			/* 252 crc32c of bytes 0..251 */
} __attribute__((packed));
_Static_assert(sizeof(struct ppp_sb) == PPP_SB_SIZE, "superblock size");

struct ppp_ix_hdr {
	uint8_t  magic[8];		/*   0 "KUPPPPIX" */
	uint64_t generation;		/*   8 == superblock generation */
	uint8_t  uuid[16];		/*  16 == superblock uuid */
	uint32_t nblobs;		/*  32 == superblock nblobs */
	uint32_t entry_size;		/*  36 sizeof(struct ppp_ix_entry) */
	uint64_t ncrc;			/*  40 entries in the checksum table */
	uint8_t  reserved[16];		/*  48 zero */
} __attribute__((packed));
_Static_assert(sizeof(struct ppp_ix_hdr) == 64, "index header size");

struct ppp_ix_entry {
	char     name[96];		/*   0 NUL-terminated, NUL-padded */
	uint64_t offset;		/*  96 byte offset in the store */
	uint64_t length;		/* 104 bytes */
	uint64_t crc_first;		/* 112 first crc of this blob in the table */
	uint32_t flags;			/* 120 zero */
	uint32_t reserved;		/* 124 zero */
} __attribute__((packed));
_Static_assert(sizeof(struct ppp_ix_entry) == 128, "index entry size");

/* ---- in memory ------------------------------------------------------ */

/* A decoded (host-endian), validated superblock. */
struct ppp_sbv {
	uint8_t uuid[16];
	uint64_t generation;
	uint64_t size;
	uint32_t extent_shift;
	uint32_t flags;
	uint64_t index_off, index_len;
	uint32_t index_crc, nblobs;
	uint64_t commit_time_ns, format_time_ns;
	uint32_t version;		/* as read (PPP_VERSION when written) */
	uint32_t csum;			/* PPP_CSUM_CRC32C, _XXH64 or _XXH3 */
	uint64_t data_mark;		/* 0 or in [PPP_DATA_OFF, size], page aligned */
};

struct ppp {
	char *path;
	int fd;				/* -1: memory backend */
	int dfd;			/* block device opened O_DIRECT (lazily), or -1 */
	int backend;			/* PPP_BACKEND_* */
	bool writable;
	bool map_only;			/* a file in hugetlbfs: no write(), every
					   byte goes through the mapping */
	uint8_t *base;			/* the store, mapped (or caller memory) */
	uint64_t size;			/* mapped bytes == superblock size */
	uint64_t dev_size;		/* size of the file/device/buffer */
	struct ppp_sbv sb;		/* last state read from the media */
	unsigned sb_valid;		/* bit per valid superblock copy */
	struct ppp_txn *txn;		/* the open transaction */
	int ckpt_refs;			/* open checkpoints */
	int lock;			/* flock state: 0, LOCK_SH, LOCK_EX */
	bool scrubbing;
	uint64_t scrub_wiped;		/* bytes the last ppp_scrub() wiped */
	struct ppp_ckpt *ckpts;		/* open checkpoints, detached at close */
};

/* A validated copy of a checkpoint index. */
struct ppp_ckpt {
	struct ppp *p;			/* NULL once the store is closed */
	struct ppp_ckpt *next;
	uint64_t generation;
	uint32_t extent_shift;
	uint32_t csum;			/* PPP_CSUM_* of the extents */
	uint32_t nblobs;
	uint64_t ncrc;
	uint64_t used;			/* bytes of data area held, aligned */
	uint64_t blob_bytes;
	uint64_t index_off, index_len;
	uint8_t *ix;			/* private copy of the index */
	const struct ppp_ix_entry *ents;
	const uint8_t *crcs;		/* ncrc little-endian checksums of
					   ppp__csum_size(csum) bytes */
	uint8_t *verified;		/* bit per extent, atomically updated */
};

/* util */
/*
 * Extent checksums: crc32c (4 bytes in the index), XXH64 (8 bytes, seed 0)
 * or XXH3 (64 bits, 8 bytes, no seed).  A running state checksums an extent
 * written in several pieces.  XXH3_state_t is declared 64-byte aligned (its
 * accumulators, for the vector code): whatever holds a struct ppp__csum must
 * be allocated so (ppp_blob_create()).
 */
struct ppp__csum {
	uint32_t type;
	uint32_t crc;
	union {
		XXH64_state_t xs;
		XXH3_state_t x3;
	};
};
static inline bool ppp__csum_wide(uint32_t type)
{
	return type == PPP_CSUM_XXH64 || type == PPP_CSUM_XXH3;
}
static inline unsigned ppp__csum_size(uint32_t type)
{
	return ppp__csum_wide(type) ? 8 : 4;
}
uint64_t ppp__csum(uint32_t type, const void *buf, size_t len);
void ppp__csum_init(struct ppp__csum *s, uint32_t type);
void ppp__csum_update(struct ppp__csum *s, const void *buf, size_t len);
uint64_t ppp__csum_final(struct ppp__csum *s);
/* checksum @i of a table of @type's little-endian checksums */
static inline uint64_t ppp__csum_get(uint32_t type, const uint8_t *table, uint64_t i)
{
	if (ppp__csum_wide(type)) {
		uint64_t v;

		memcpy(&v, table + i * 8, 8);
		return le64toh(v);
	} else {
		uint32_t v;

		memcpy(&v, table + i * 4, 4);
		return le32toh(v);
	}
}
static inline void ppp__csum_put(uint32_t type, uint8_t *table, uint64_t i, uint64_t val)
{
	if (ppp__csum_wide(type)) {
		uint64_t v = htole64(val);

		memcpy(table + i * 8, &v, 8);
	} else {
		uint32_t v = htole32((uint32_t)val);

		memcpy(table + i * 4, &v, 4);
	}
}

void ppp__log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* ppp_set_interrupt()'s function says stop */
bool ppp__interrupted(void);
#define PPP_POPULATE_STEP	(16ULL << 20)

#define ppp_err(...)	ppp__log(PPP_LOG_ERR, __VA_ARGS__)
#define ppp_warn(...)	ppp__log(PPP_LOG_WARN, __VA_ARGS__)
#define ppp_info(...)	ppp__log(PPP_LOG_INFO, __VA_ARGS__)
#define ppp_dbg(...)	ppp__log(PPP_LOG_DEBUG, __VA_ARGS__)
void ppp__uuid_str(const uint8_t uuid[16], char out[37]);
int ppp__random(void *buf, size_t len);
uint64_t ppp__now_ns(void);

static inline uint64_t ppp__align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* a blob of @len bytes is aligned to this */
static inline uint64_t ppp__blob_align(uint64_t len)
{
	return len >= PPP_PAGE_SIZE ? PPP_PAGE_SIZE : PPP_SMALL_ALIGN;
}

static inline uint64_t ppp__nextents(uint64_t len, uint32_t shift)
{
	return len ? ((len - 1) >> shift) + 1 : 0;
}

/* store (ppp-store.c) */
int ppp__sb_decode(const struct ppp *p, int slot, const struct ppp_sb *raw,
		   struct ppp_sbv *out, bool quiet);
void ppp__sb_encode(const struct ppp_sbv *v, struct ppp_sb *raw);
int ppp__load_state(struct ppp *p, bool quiet);
int ppp__write_sb(struct ppp *p, int slot, const struct ppp_sbv *v);
int ppp__write_sb_both(struct ppp *p, const struct ppp_sbv *v);
int ppp__sync(struct ppp *p, uint64_t off, uint64_t len);
/*
 * Block devices: an O_DIRECT fd for large aligned transfers, which go
 * straight between the caller's buffer and the device (on pmem: one copy)
 * instead of through the page cache of the mapping.  -1 when not usable
 * (files, memory, or the device refuses O_DIRECT).
 */
int ppp__direct_fd(struct ppp *p);
#define PPP_DIRECT_ALIGN 4096u
static inline bool ppp__direct_ok(const void *buf, uint64_t off, uint64_t len)
{
	return !((uintptr_t)buf % PPP_DIRECT_ALIGN) && !(off % PPP_DIRECT_ALIGN) &&
	       !(len % 512) && len;
}
void ppp__writeback(struct ppp *p, uint64_t off, uint64_t len);
int ppp__lock_update(struct ppp *p);

/* index (ppp-ckpt.c) */
int ppp__ckpt_load(struct ppp *p, struct ppp_ckpt **out);
void ppp__ckpt_free(struct ppp_ckpt *c);

/* txn (ppp-txn.c) */
void ppp__txn_free(struct ppp_txn *t);

#endif /* PPP_INT_H */
