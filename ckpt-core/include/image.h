/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Image sets.
 *
 * An image set is a bag of named blobs held by an image store: a directory
 * (one file per blob) or the persistent page store (kup/ adapts ppp to this
 * interface).  Metadata blobs are "containers" of protobuf records, each with
 * its own crc32c (docs/image-format.md); page blobs are raw page-aligned data
 * whose checksum lives in the metadata that describes them.
 */
#ifndef KUP_IMAGE_H
#define KUP_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define XXH_STATIC_LINKING_ONLY		/* XXH64_state_t in struct img_sum */
#include <xxhash.h>
#include <protobuf-c/protobuf-c.h>

#define IMG_MAGIC		"KUPIMG\0\0"
#define IMG_FORMAT_VERSION	2
#define IMG_HDR_SIZE		16
#define IMG_REC_HDR_SIZE	8
#define IMG_MAX_RECORD		(256u << 20)

enum img_kind {
	IMG_INVENTORY = 1,
	IMG_PSTREE,
	IMG_CORE,
	IMG_MM,
	IMG_FILES,
	IMG_FDTABLE,
	IMG_SHMEM,
	IMG_SOCKETS,
	IMG_IPC,
	IMG_MNTNS = 10,	/* mntns.img: the mount namespace of a sandboxed tree */
	IMG_PARTS = 11,	/* parts.img: the trees of a store holding several */
	IMG_KIND_MAX,
};

struct img_store;

struct img_blob {
	struct img_store *store;
	char name[64];
	void *data;
	size_t len;
	int fd;		/* >= 0: the blob can also be written with pwrite() */
	void *priv;
	bool reading;	/* store-private: opened with open_stream() */
};

struct img_store_ops {
	/* Create blob @name of exactly @len bytes; blob->data is writable. */
	int (*create)(struct img_store *st, const char *name, size_t len, struct img_blob *b);
	/* Make a created blob durable in the store. */
	int (*finish)(struct img_store *st, struct img_blob *b);
	/* Open blob @name read-only; -ENOENT when missing. */
	int (*open)(struct img_store *st, const char *name, struct img_blob *b);
	void (*release)(struct img_store *st, struct img_blob *b);
	/* The set is complete (written last).  Until then a reader refuses it. */
	int (*commit)(struct img_store *st);
	/* Drop everything written since the store was opened for writing. */
	void (*abort)(struct img_store *st);
	void (*close)(struct img_store *st);
	int (*remove)(struct img_store *st, const char *name);
	/*
	 * Optional, for page images (large, written and read once):
	 * create_stream() makes a blob filled only by write_at() (blob->data is
	 * NULL); open_stream() opens one for read() of page-aligned pieces
	 * (blob->data is NULL).  A store offers them when it moves such data
	 * faster than through a mapping.  write_at(): @len page-aligned bytes
	 * at @off, ranges in any order and from several threads at a time, each
	 * byte once; @off a multiple of IMG_PAGES_CHUNK, @len too unless the
	 * range ends the blob.  @sums: the IMG_PSUM_NOW checksum (XXH3) of each
	 * IMG_PAGES_CHUNK piece of @buf (the last one shorter), which the store
	 * takes as its own checksums where they are such.
	 */
	int (*create_stream)(struct img_store *st, const char *name, size_t len, struct img_blob *b);
	int (*write_at)(struct img_store *st, struct img_blob *b, uint64_t off, const void *buf,
			size_t len, const uint64_t *sums);
	int (*open_stream)(struct img_store *st, const char *name, struct img_blob *b);
	int (*read)(struct img_store *st, struct img_blob *b, uint64_t off, void *buf, size_t len);
	/*
	 * Optional, for a created blob filled early and changed a little later
	 * (a pre-dump's page image written ahead): sum_now() takes the store's
	 * own checksums of bytes [@off, @off + @len) now, and changed() names
	 * bytes written since, so that finish() checksums only those.
	 */
	int (*sum_now)(struct img_store *st, struct img_blob *b, uint64_t off, uint64_t len);
	void (*changed)(struct img_store *st, struct img_blob *b, uint64_t off, uint64_t len);
	/*
	 * Optional, for a streamed blob written in full and changed a little
	 * later (a pre-dump's image written ahead into a block device):
	 * rewrite() writes page-aligned bytes at @off again; sum_bytes() says
	 * @buf holds bytes [@off, @off + @len) as the blob has them now, so
	 * that finish() takes the store's checksums of them from there rather
	 * than reading them back.
	 */
	int (*rewrite)(struct img_store *st, struct img_blob *b, uint64_t off, const void *buf,
		       size_t len);
	int (*sum_bytes)(struct img_store *st, struct img_blob *b, uint64_t off, const void *buf,
			 size_t len);
	/*
	 * Optional, for a created blob written through its mapping, whole: the
	 * IMG_PSUM_NOW checksum of each IMG_PAGES_CHUNK piece of it as it is
	 * now (a pages
	 * image's chunk_sum), which the store may take as its own checksums
	 * rather than read the blob again at finish().
	 */
	void (*piece_sums)(struct img_store *st, struct img_blob *b, const uint64_t *sums, size_t n);
	/*
	 * A pre-dump writes its page images ahead through the mapping
	 * (create(), sum_now()), though a dump streams them (create_stream():
	 * a store file, whose pages a write() fills without clearing them
	 * first, while the mapping is the cheaper way to change a few pages).
	 */
	bool write_ahead_mapped;
};

struct img_store {
	const struct img_store_ops *ops;
	const char *where;	/* for messages: directory or device path */
	void *priv;
};

/*
 * The directory store.  Flags:
 *  IMG_DIR_WRITE: open for a dump.  The directory is created (0700) if
 *    missing; an existing one must hold nothing but a previous checkpoint.
 *    It is locked (a second writer fails at once, naming the holder's pid);
 *    images are created in a fresh directory inside it and renamed into
 *    place at commit (docs/image-format.md).
 *  IMG_DIR_ANY_PLACE: skip the trust check (img_trust_path) when reading,
 *    for kup show.
 * A reader holds a shared lock on the directory until it closes the store:
 * a dump cannot replace the checkpoint under it, and it does not start
 * reading while one is being replaced (both fail at once, naming the pid).
 * Without IMG_DIR_ANY_PLACE the directory must be trusted.
 */
#define IMG_DIR_WRITE		1
#define IMG_DIR_ANY_PLACE	2
int img_store_open_dir(const char *dir, int flags, struct img_store **out);

/*
 * Trust (ckpt-core/trust.c).  img_trust_path: may images at @path (opened
 * as @fd, or -1) be believed?  Owned by root and writable by nobody else,
 * and so every directory above it (sticky ones may be writable by others).
 * 0, or -EPERM with a message naming @what and the offending path.
 * KUP_INSECURE_IMAGES=1 (tests only) makes it a warning.
 * img_lock_holder: the pid holding a flock() on @fd's file, or 0; *@writer:
 * an exclusive lock.
 */
int img_trust_path(const char *path, int fd, const char *what);
bool img_trust_relaxed(void);
pid_t img_lock_holder(int fd, bool *writer);

/* Write one container holding @n messages of kind @kind to blob @name. */
int img_write_msgs(struct img_store *st, const char *name, enum img_kind kind,
		   const ProtobufCMessage *const *msgs, size_t n);
static inline int img_write_msg(struct img_store *st, const char *name,
				enum img_kind kind, const void *msg)
{
	const ProtobufCMessage *m = msg;
	return img_write_msgs(st, name, kind, &m, 1);
}

/*
 * Parse a container from memory.  Every record is checked (bounds, crc)
 * and unpacked with @desc.  On success *msgs holds *n messages to free with
 * img_free_msgs().  Errors name @what (the blob name) and the record.
 */
int img_parse(const void *buf, size_t len, enum img_kind kind,
	      const ProtobufCMessageDescriptor *desc, const char *what,
	      ProtobufCMessage ***msgs, size_t *n);
void img_free_msgs(ProtobufCMessage **msgs, size_t n);

/* Read blob @name and parse exactly one message. */
int img_read_msg(struct img_store *st, const char *name, enum img_kind kind,
		 const ProtobufCMessageDescriptor *desc, ProtobufCMessage **msg);

/* Descriptor of the message a blob of @kind holds (for kup show). */
const ProtobufCMessageDescriptor *img_kind_desc(enum img_kind kind);
const char *img_kind_name(enum img_kind kind);

uint32_t img_crc32c(uint32_t crc, const void *buf, size_t len);

/*
 * The checksum of the shared memory images and of files' contents: XXH64
 * (seed 0), plain integer arithmetic, fast on any CPU, emulated ones
 * included (crc32c needs a crc32 instruction that QEMU TCG emulates ~70x
 * slower).  img_xxh64() of a whole buffer; img_sum_* over a stream.  Page
 * images have their own (img_psum below).
 */
uint64_t img_xxh64(const void *buf, size_t len);
struct img_sum {
	XXH64_state_t xs;
};
void img_sum_init(struct img_sum *s);
void img_sum_update(struct img_sum *s, const void *buf, size_t len);
uint64_t img_sum_final(struct img_sum *s);

/*
 * While a tree is frozen, the unmapping of large images written ahead
 * (a directory's blobs released) waits until img_defer_unmaps(false):
 * tearing down the page tables of a mapping of 1 GiB takes tens of ms.
 */
void img_defer_unmaps(bool on);

/*
 * A pages image's checksums (mm_image.chunk_sum, pages_sum): a checksum of
 * each IMG_PAGES_CHUNK piece of it (the last one shorter), and for the whole
 * image the same checksum of those, each as 8 little-endian bytes.  A piece
 * can so be checked alone as it is read (a lazy restore, the restore's two
 * threads), and the whole in one pass.  The checksum is the image's
 * pages_sum_kind:
 *   IMG_PSUM_XXH3: XXH3 64 bits (no seed), what a dump writes now: vector
 *     code (libxxhash picks AVX-512, AVX2 or SSE2 as the CPU has), as fast
 *     as memory can be read on a current x86 core (~30 GB/s in cache), and
 *     ~1 GB/s where the CPU is emulated (QEMU TCG);
 *   IMG_PSUM_XXH64: XXH64 (seed 0), older images (~14 GB/s in cache).
 * An image with no pieces' sums (older ones still, and an empty image) has
 * its kind's checksum of its bytes as its whole's (@whole true: older ones
 * are XXH64).  img_psum_final() gives the whole's
 * checksum and, with pieces, hands the array (malloc'd) to the caller;
 * img_psum_release() frees what a state holds when it is not finalised.
 */
#define IMG_PAGES_CHUNK (1UL << 20)
enum img_psum_kind {
	IMG_PSUM_XXH64 = 0,
	IMG_PSUM_XXH3 = 1,
};
/* what a dump writes: XXH3 (KUP_TEST_PSUM=xxh64, tests: XXH64 as an older
 * kup wrote, to check that such images still restore) */
enum img_psum_kind img_psum_now(void);
#define IMG_PSUM_NOW img_psum_now()
/* the checksum of a piece of @len bytes */
uint64_t img_piece_sum(enum img_psum_kind kind, const void *buf, size_t len);
/* "xxh64", "xxh3" (NULL for an unknown kind) */
const char *img_psum_kind_name(uint32_t kind);
struct img_psum {
	enum img_psum_kind kind;
	struct img_sum cur;		/* whole, or IMG_PSUM_XXH64's piece */
	XXH3_state_t *x3;		/* IMG_PSUM_XXH3's piece */
	uint64_t in_cur;	/* bytes of the current piece seen */
	uint64_t *sums;
	size_t n, cap;
	bool whole;
	bool nomem;
};
void img_psum_init(struct img_psum *s, enum img_psum_kind kind, bool whole);
void img_psum_update(struct img_psum *s, const void *buf, size_t len);
int img_psum_final(struct img_psum *s, uint64_t *whole, uint64_t **sums, size_t *n);
void img_psum_release(struct img_psum *s);
uint64_t img_psum_of_sums(enum img_psum_kind kind, const uint64_t *sums, size_t n);
static inline size_t img_psum_pieces(uint64_t len)
{
	return (len + IMG_PAGES_CHUNK - 1) / IMG_PAGES_CHUNK;
}

#endif
