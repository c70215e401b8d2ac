// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ppp: the store itself — backends (file, block device, memory), superblocks,
 * format, status, scrub.  The backends differ only in how the store is
 * opened, sized and synced; everything else works on the mapping.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <blkid/blkid.h>

#include "ppp-int.h"

/* ---- superblocks ---------------------------------------------------- */

static bool all_zero(const void *buf, size_t len)
{
	const uint8_t *b = buf;

	for (size_t i = 0; i < len; i++)
		if (b[i])
			return false;
	return true;
}

/*
 * Decode and validate one superblock copy.  -ENODATA if it does not carry
 * the magic; otherwise every field is checked and the first problem is
 * logged (at debug level when @quiet: the caller decides what is an error).
 */
int ppp__sb_decode(const struct ppp *p, int slot, const struct ppp_sb *raw,
		   struct ppp_sbv *v, bool quiet)
{
	int lvl = quiet ? PPP_LOG_DEBUG : PPP_LOG_WARN;
	const char *path = p->path;
	uint32_t crc, ver;
	uint64_t size;

	if (memcmp(raw->magic, PPP_SB_MAGIC, 8))
		return -ENODATA;

#define BAD(...) do { ppp__log(lvl, __VA_ARGS__); return -EUCLEAN; } while (0)
	crc = ppp_crc32c(0, raw, offsetof(struct ppp_sb, crc));
	if (crc != le32toh(raw->crc))
		BAD("%s: superblock copy %d (offset %d): checksum mismatch "
		    "(crc32c 0x%08x, stored 0x%08x)", path, slot,
		    slot * PPP_SB_SLOT_SIZE, crc, le32toh(raw->crc));
	ver = le32toh(raw->version);
	if (ver != PPP_VERSION && ver != PPP_VERSION_V1) {
		ppp__log(lvl, "%s: superblock copy %d: format version %u is not "
			 "supported (this reads versions %u and %u)", path, slot, ver,
			 PPP_VERSION_V1, PPP_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (le32toh(raw->sb_size) != PPP_SB_SIZE)
		BAD("%s: superblock copy %d: bad superblock size %u", path, slot,
		    le32toh(raw->sb_size));
	if (!all_zero(raw->reserved, sizeof(raw->reserved)))
		BAD("%s: superblock copy %d: reserved bytes are not zero", path, slot);

	memcpy(v->uuid, raw->uuid, 16);
	v->generation = le64toh(raw->generation);
	v->size = size = le64toh(raw->size);
	v->extent_shift = le32toh(raw->extent_shift);
	v->flags = le32toh(raw->flags);
	v->index_off = le64toh(raw->index_off);
	v->index_len = le64toh(raw->index_len);
	v->index_crc = le32toh(raw->index_crc);
	v->nblobs = le32toh(raw->nblobs);
	v->commit_time_ns = le64toh(raw->commit_time_ns);
	v->format_time_ns = le64toh(raw->format_time_ns);
	v->version = ver;
	v->csum = le32toh(raw->csum);
	v->data_mark = le64toh(raw->data_mark);
	if (ver == PPP_VERSION_V1) {
		if (v->csum || v->data_mark)
			BAD("%s: superblock copy %d: reserved bytes are not zero", path, slot);
		v->csum = PPP_CSUM_CRC32C;
	} else if (!ppp_csum_name(v->csum)) {
		BAD("%s: superblock copy %d: unknown checksum type %u", path, slot,
		    v->csum);
	}

	if (v->generation == 0)
		BAD("%s: superblock copy %d: generation 0", path, slot);
	if (size < PPP_MIN_SIZE || size % PPP_PAGE_SIZE)
		BAD("%s: superblock copy %d: bad store size %" PRIu64, path, slot, size);
	if (size > p->dev_size)
		BAD("%s: superblock copy %d: store size %" PRIu64 " exceeds the "
		    "%" PRIu64 " bytes of the %s (truncated?)", path, slot, size,
		    p->dev_size, p->backend == PPP_BACKEND_BLOCK ? "device" :
		    p->backend == PPP_BACKEND_FILE ? "file" : "buffer");
	if (le64toh(raw->data_off) != PPP_DATA_OFF)
		BAD("%s: superblock copy %d: bad data area offset %" PRIu64, path,
		    slot, (uint64_t)le64toh(raw->data_off));
	if (v->extent_shift < PPP_MIN_EXTENT_SHIFT || v->extent_shift > PPP_MAX_EXTENT_SHIFT)
		BAD("%s: superblock copy %d: bad extent size 2^%u", path, slot,
		    v->extent_shift);
	if (v->data_mark && (v->data_mark < PPP_DATA_OFF || v->data_mark > size ||
			     v->data_mark % PPP_PAGE_SIZE)) {
		/* never trusted to skip bytes: the next scrub wipes them all */
		ppp__log(lvl, "%s: superblock copy %d: bad data mark %" PRIu64 " (not "
			 "a page in the data area); the next scrub wipes all of it",
			 path, slot, v->data_mark);
		v->data_mark = 0;
	}
	if (v->flags & ~PPP_SB_KNOWN_FLAGS)
		BAD("%s: superblock copy %d: unknown flags 0x%x", path, slot, v->flags);
	if (v->flags & PPP_SB_HAS_CKPT) {
		if (v->index_off < PPP_DATA_OFF || v->index_off % PPP_SMALL_ALIGN ||
		    v->index_len < sizeof(struct ppp_ix_hdr) ||
		    v->index_off > size || v->index_len > size - v->index_off)
			BAD("%s: superblock copy %d: index (offset %" PRIu64 ", %" PRIu64
			    " bytes) is outside the data area", path, slot,
			    v->index_off, v->index_len);
		if (v->nblobs > PPP_MAX_BLOBS)
			BAD("%s: superblock copy %d: %u blobs (max %u)", path, slot,
			    v->nblobs, PPP_MAX_BLOBS);
	} else if (v->index_off || v->index_len || v->index_crc || v->nblobs) {
		BAD("%s: superblock copy %d: index fields set without a checkpoint",
		    path, slot);
	}
#undef BAD
	return 0;
}

void ppp__sb_encode(const struct ppp_sbv *v, struct ppp_sb *raw)
{
	memset(raw, 0, sizeof(*raw));
	memcpy(raw->magic, PPP_SB_MAGIC, 8);
	raw->version = htole32(PPP_VERSION);
	raw->sb_size = htole32(PPP_SB_SIZE);
	memcpy(raw->uuid, v->uuid, 16);
	raw->generation = htole64(v->generation);
	raw->size = htole64(v->size);
	raw->data_off = htole64(PPP_DATA_OFF);
	raw->extent_shift = htole32(v->extent_shift);
	raw->flags = htole32(v->flags);
	raw->index_off = htole64(v->index_off);
	raw->index_len = htole64(v->index_len);
	raw->index_crc = htole32(v->index_crc);
	raw->nblobs = htole32(v->nblobs);
	raw->commit_time_ns = htole64(v->commit_time_ns);
	raw->format_time_ns = htole64(v->format_time_ns);
	raw->csum = htole32(v->csum);
	raw->data_mark = htole64(v->data_mark);
	raw->crc = htole32(ppp_crc32c(0, raw, offsetof(struct ppp_sb, crc)));
}

/*
 * Pick the state from the two superblock copies in @hdr (PPP_DATA_OFF bytes):
 * the valid copy with the highest generation.
 */
static int choose_state(struct ppp *p, const uint8_t *hdr, bool quiet)
{
	struct ppp_sbv v[2];
	int r[2];

	for (int i = 0; i < 2; i++) {
		struct ppp_sb raw;

		memcpy(&raw, hdr + i * PPP_SB_SLOT_SIZE, sizeof(raw));
		r[i] = ppp__sb_decode(p, i, &raw, &v[i], quiet);
	}
	p->sb_valid = (r[0] == 0) | (r[1] == 0) << 1;
	if (r[0] && r[1]) {
		int e;

		if (r[0] == -ENODATA && r[1] == -ENODATA) {
			if (!quiet)
				ppp_err("%s: not a kup page store (no superblock)", p->path);
			return -ENODATA;
		}
		e = r[0] == -EPROTONOSUPPORT || r[1] == -EPROTONOSUPPORT ?
			-EPROTONOSUPPORT : -EUCLEAN;
		if (!quiet)
			ppp_err("%s: no valid superblock", p->path);
		return e;
	}
	if (!r[0] && !r[1]) {
		if (memcmp(v[0].uuid, v[1].uuid, 16))
			ppp_warn("%s: the superblock copies belong to different stores "
				 "(interrupted format?); using the newer one", p->path);
		p->sb = v[1].generation > v[0].generation ? v[1] : v[0];
	} else {
		p->sb = r[0] ? v[1] : v[0];
	}
	return 0;
}

/* Re-read the state from the mapping (another process may have committed). */
int ppp__load_state(struct ppp *p, bool quiet)
{
	uint8_t hdr[PPP_DATA_OFF];
	int r;

	memcpy(hdr, p->base, sizeof(hdr));
	r = choose_state(p, hdr, quiet);
	if (r)
		return r;
	if (p->sb.size != p->size) {
		ppp_err("%s: the store was reformatted with another size "
			"(%" PRIu64 " bytes, was %" PRIu64 "); reopen it", p->path,
			p->sb.size, p->size);
		return -ESTALE;
	}
	return 0;
}

int ppp__sync(struct ppp *p, uint64_t off, uint64_t len)
{
	uint64_t start, end;

	if (p->fd < 0 || !len)
		return 0;
	start = off & ~(uint64_t)(PPP_PAGE_SIZE - 1);
	end = ppp__align_up(off + len, PPP_PAGE_SIZE);
	if (end > p->size)
		end = p->size;
	if (msync(p->base + start, end - start, MS_SYNC) < 0) {
		int e = errno;

		ppp_err("%s: msync of offset %" PRIu64 " length %" PRIu64 ": %s",
			p->path, start, end - start, strerror(e));
		return -e;
	}
	return 0;
}

/* Start writeback of a range early (best effort; ppp__sync() waits). */
void ppp__writeback(struct ppp *p, uint64_t off, uint64_t len)
{
	if (p->fd >= 0 && len)
		(void)sync_file_range(p->fd, off, len, SYNC_FILE_RANGE_WRITE);
}

int ppp__write_sb(struct ppp *p, int slot, const struct ppp_sbv *v)
{
	struct ppp_sb raw;

	ppp__sb_encode(v, &raw);
	memcpy(p->base + slot * PPP_SB_SLOT_SIZE, &raw, sizeof(raw));
	return ppp__sync(p, slot * PPP_SB_SLOT_SIZE, sizeof(raw));
}

/* Both copies, the same generation: a crash between the two leaves either. */
int ppp__write_sb_both(struct ppp *p, const struct ppp_sbv *v)
{
	int r = ppp__write_sb(p, v->generation & 1, v);

	if (!r)
		r = ppp__write_sb(p, !(v->generation & 1), v);
	if (!r)
		p->sb_valid = 3;
	return r;
}

/*
 * Advisory lock on the store, across processes: exclusive while a
 * transaction or a scrub runs, shared while a checkpoint is open for reading.
 */
/*
 * flock(@op | LOCK_NB).  systemd-udevd holds a shared flock on a block device
 * while it processes its events, and one comes after every close of a
 * writable fd (a commit's or a format's included): on a block device, wait
 * out such a short lock (up to 5 s) before calling the store busy.
 */
static int flock_wait(int fd, int op, int backend)
{
	for (int tries = 0;; tries++) {
		if (!flock(fd, op == LOCK_UN ? LOCK_UN : op | LOCK_NB))
			return 0;
		if (errno != EWOULDBLOCK || backend != PPP_BACKEND_BLOCK || tries >= 250 ||
		    ppp__interrupted())
			return -1;
		usleep(20000);
	}
}

int ppp__lock_update(struct ppp *p)
{
	int want;

	if (p->fd < 0)
		return 0;
	want = p->txn || p->scrubbing ? LOCK_EX : p->ckpt_refs > 0 ? LOCK_SH : LOCK_UN;
	if (want == p->lock)
		return 0;
	if (flock_wait(p->fd, want == LOCK_UN ? LOCK_UN : want, p->backend) < 0) {
		int e = errno == EWOULDBLOCK ? EBUSY : errno;

		/* a failed conversion may have dropped the lock we had */
		if (p->lock && flock(p->fd, p->lock | LOCK_NB) < 0)
			p->lock = 0;
		return -e;
	}
	p->lock = want;
	return 0;
}

/* ---- open / close --------------------------------------------------- */

static int new_handle(const char *path, struct ppp **out)
{
	struct ppp *p = calloc(1, sizeof(*p));

	if (!p || !(p->path = strdup(path))) {
		free(p);
		return -ENOMEM;
	}
	p->fd = -1;
	p->dfd = -1;
	*out = p;
	return 0;
}

int ppp__direct_fd(struct ppp *p)
{
	int dfd = __atomic_load_n(&p->dfd, __ATOMIC_ACQUIRE), fd, none = -1;

	if (dfd != -1 || p->backend != PPP_BACKEND_BLOCK || p->fd < 0)
		return dfd >= 0 ? dfd : -1;
	fd = open(p->path, (p->writable ? O_RDWR : O_RDONLY) | O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		ppp_dbg("%s: no O_DIRECT access (%s): transfers go through the mapping",
			p->path, strerror(errno));
	/* readers on two threads (an eager restore) may get here at once: the
	 * first one's fd is kept; -2: do not try again */
	if (!__atomic_compare_exchange_n(&p->dfd, &none, fd >= 0 ? fd : -2, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) && fd >= 0)
		close(fd);
	dfd = __atomic_load_n(&p->dfd, __ATOMIC_ACQUIRE);
	return dfd >= 0 ? dfd : -1;
}

static void free_handle(struct ppp *p)
{
	if (p->dfd >= 0)
		close(p->dfd);
	free(p->path);
	free(p);
}

/*
 * A file in hugetlbfs: the store in huge pages reserved for it
 * (/proc/sys/vm/nr_hugepages), as a pmem region is reserved at boot.  Its
 * pages are not in the page cache, and hugetlbfs has no write(): the bytes
 * go through the mapping, whose faults are one per 2 MiB.  Its size is a
 * multiple of the huge page size (*@align, from st_blksize).
 */
static bool fd_map_only(int fd, uint64_t *align)
{
	struct statfs sf;
	struct stat st;

	if (fstatfs(fd, &sf) < 0 || (unsigned long)sf.f_type != HUGETLBFS_MAGIC)
		return false;
	if (align)
		*align = fstat(fd, &st) == 0 && st.st_blksize > 0 ? (uint64_t)st.st_blksize :
			 2u << 20;
	return true;
}

/* Size of an open file or block device; sets the backend. */
static int fd_size(int fd, const char *path, int *backend, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		int e = errno;

		ppp_err("%s: stat: %s", path, strerror(e));
		return -e;
	}
	if (S_ISREG(st.st_mode)) {
		*backend = PPP_BACKEND_FILE;
		*size = st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		*backend = PPP_BACKEND_BLOCK;
		if (ioctl(fd, BLKGETSIZE64, size) < 0) {
			int e = errno;

			ppp_err("%s: BLKGETSIZE64: %s", path, strerror(e));
			return -e;
		}
	} else {
		ppp_err("%s: not a regular file or a block device", path);
		return -EINVAL;
	}
	return 0;
}

int ppp_open(const char *path, int flags, struct ppp **out)
{
	uint8_t hdr[PPP_DATA_OFF];
	struct ppp *p;
	ssize_t n;
	void *m;
	int r;

	if (!path || !out || (flags & ~PPP_RDWR))
		return -EINVAL;
	r = new_handle(path, &p);
	if (r)
		return r;
	p->writable = flags & PPP_RDWR;
	p->fd = open(path, (p->writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (p->fd < 0) {
		r = -errno;
		ppp_err("%s: open: %s", path, strerror(-r));
		goto fail;
	}
	r = fd_size(p->fd, path, &p->backend, &p->dev_size);
	if (r)
		goto fail;
	p->map_only = p->backend == PPP_BACKEND_FILE && fd_map_only(p->fd, NULL);
	if (p->dev_size < PPP_DATA_OFF) {
		ppp_err("%s: not a kup page store (only %" PRIu64 " bytes)", path,
			p->dev_size);
		r = -ENODATA;
		goto fail;
	}
	n = pread(p->fd, hdr, sizeof(hdr), 0);
	if (n != (ssize_t)sizeof(hdr)) {
		r = n < 0 ? -errno : -EIO;
		ppp_err("%s: reading the superblocks: %s", path, strerror(-r));
		goto fail;
	}
	r = choose_state(p, hdr, false);
	if (r)
		goto fail;
	p->size = p->sb.size;
	m = mmap(NULL, p->size, PROT_READ | (p->writable ? PROT_WRITE : 0),
		 MAP_SHARED, p->fd, 0);
	if (m == MAP_FAILED) {
		r = -errno;
		ppp_err("%s: mmap of %" PRIu64 " bytes: %s", path, p->size, strerror(-r));
		goto fail;
	}
	p->base = m;
	r = ppp__load_state(p, false);
	if (r)
		goto fail;
	ppp_dbg("%s: opened, generation %" PRIu64 ", %" PRIu64 " bytes", path,
		p->sb.generation, p->size);
	*out = p;
	return 0;
fail:
	if (p->base)
		munmap(p->base, p->size);
	if (p->fd >= 0)
		close(p->fd);
	free_handle(p);
	return r;
}

int ppp_open_mem(void *buf, size_t len, int flags, struct ppp **out)
{
	struct ppp *p;
	int r;

	if (!buf || !out || (flags & ~PPP_RDWR))
		return -EINVAL;
	r = new_handle("<memory>", &p);
	if (r)
		return r;
	p->backend = PPP_BACKEND_MEM;
	p->writable = flags & PPP_RDWR;
	p->base = buf;
	p->dev_size = len;
	if (len < PPP_DATA_OFF) {
		ppp_err("%s: not a kup page store (only %zu bytes)", p->path, len);
		free_handle(p);
		return -ENODATA;
	}
	r = choose_state(p, buf, false);
	if (r) {
		free_handle(p);
		return r;
	}
	p->size = p->sb.size;
	*out = p;
	return 0;
}

void ppp_close(struct ppp *p)
{
	if (!p)
		return;
	if (p->txn)
		ppp_txn_abort(p->txn);
	for (struct ppp_ckpt *c = p->ckpts; c; c = c->next)
		c->p = NULL;
	p->ckpts = NULL;
	if (p->fd >= 0) {
		munmap(p->base, p->size);
		close(p->fd);	/* drops the flock */
	}
	free_handle(p);
}

const char *ppp_path(const struct ppp *p)
{
	return p ? p->path : NULL;
}

int ppp_fd(const struct ppp *p)
{
	return p ? p->fd : -1;
}

/* ---- format --------------------------------------------------------- */

static int check_opts(const struct ppp_format_opts *o, uint32_t *shift, uint32_t *csum)
{
	uint32_t es = o && o->extent_size ? o->extent_size : 1u << PPP_DEF_EXTENT_SHIFT;

	*csum = o && o->csum ? o->csum : PPP_CSUM_XXH3;
	if (!ppp_csum_name(*csum)) {
		ppp_err("checksum type %u: must be crc32c, xxhash64 or xxh3", *csum);
		return -EINVAL;
	}
	if (o && (o->flags & ~(PPP_FORMAT_FORCE | PPP_FORMAT_SPARSE)))
		return -EINVAL;
	if (es & (es - 1) || es < (1u << PPP_MIN_EXTENT_SHIFT) ||
	    es > (1u << PPP_MAX_EXTENT_SHIFT)) {
		ppp_err("extent size %u: must be a power of two between 4 KiB and 1 GiB", es);
		return -EINVAL;
	}
	*shift = __builtin_ctz(es);
	return 0;
}

/* Write a fresh empty store at p->base (p->size bytes); @zeroed: its data
 * area reads as zeros (else the first scrub wipes all of it). */
static int format_map(struct ppp *p, uint32_t shift, uint32_t csum, bool zeroed)
{
	struct ppp_sbv v = { 0 };
	int r;

	r = ppp__random(v.uuid, 16);
	if (r) {
		ppp_err("%s: getrandom: %s", p->path, strerror(-r));
		return r;
	}
	v.uuid[6] = (v.uuid[6] & 0x0f) | 0x40;	/* RFC 4122 version 4 */
	v.uuid[8] = (v.uuid[8] & 0x3f) | 0x80;
	v.generation = 1;
	v.size = p->size;
	v.extent_shift = shift;
	v.csum = csum;
	v.version = PPP_VERSION;
	v.format_time_ns = ppp__now_ns();
	v.data_mark = zeroed ? PPP_DATA_OFF : 0;

	/* first kill both old copies, so that an interrupted format never
	 * leaves a mix of the old and the new store */
	memset(p->base, 0, PPP_DATA_OFF);
	r = ppp__sync(p, 0, PPP_DATA_OFF);
	if (!r)
		r = ppp__write_sb(p, 0, &v);
	if (!r)
		r = ppp__write_sb(p, 1, &v);
	if (r)
		return r;
	p->sb = v;
	p->sb_valid = 3;
	return 0;
}

int ppp_format_mem(void *buf, size_t len, const struct ppp_format_opts *opts)
{
	struct ppp p = { .path = (char *)"<memory>", .fd = -1, .dfd = -1, .backend = PPP_BACKEND_MEM };
	uint32_t shift, csum;
	int r;

	if (!buf)
		return -EINVAL;
	r = check_opts(opts, &shift, &csum);
	if (r)
		return r;
	p.base = buf;
	p.dev_size = len;
	p.size = len & ~(uint64_t)(PPP_PAGE_SIZE - 1);
	if (p.size < PPP_MIN_SIZE) {
		ppp_err("%s: %zu bytes is too small for a store (min %u)", p.path,
			len, PPP_MIN_SIZE);
		return -EINVAL;
	}
	return format_map(&p, shift, csum,
			  all_zero(p.base + PPP_DATA_OFF, p.size - PPP_DATA_OFF));
}

/* Does the device/file start with a superblock of ours (valid or not)? */
static bool has_our_magic(int fd)
{
	char m[8];

	for (int i = 0; i < 2; i++)
		if (pread(fd, m, 8, i * PPP_SB_SLOT_SIZE) == 8 &&
		    !memcmp(m, PPP_SB_MAGIC, 8))
			return true;
	return false;
}

/* Refuse to format over a filesystem or a partition table. */
static int check_foreign_signature(int fd, const char *path)
{
	blkid_probe pr = blkid_new_probe();
	const char *type = NULL;
	int r = 0, found;

	if (!pr)
		return -ENOMEM;
	if (blkid_probe_set_device(pr, fd, 0, 0) < 0) {
		blkid_free_probe(pr);
		ppp_err("%s: cannot probe the device for existing data", path);
		return -EIO;
	}
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_enable_partitions(pr, 1);
	found = blkid_do_safeprobe(pr);
	if (found == 0 &&
	    (!blkid_probe_lookup_value(pr, "TYPE", &type, NULL) ||
	     !blkid_probe_lookup_value(pr, "PTTYPE", &type, NULL))) {
		ppp_err("%s: holds a %s signature; not formatting it (use --force)",
			path, type);
		r = -EEXIST;
	} else if (found == -2) {
		ppp_err("%s: holds several signatures; not formatting it (use --force)", path);
		r = -EEXIST;
	}
	blkid_free_probe(pr);
	return r;
}

int ppp_format(const char *path, uint64_t size, const struct ppp_format_opts *opts)
{
	bool force = opts && (opts->flags & PPP_FORMAT_FORCE);
	bool sparse = opts && (opts->flags & PPP_FORMAT_SPARSE);
	struct ppp p = { .fd = -1, .dfd = -1 };
	bool created = false, zero_file = false;
	struct stat st;
	uint64_t have, align = 0;
	uint32_t shift, csum;
	void *m;
	int r;

	if (!path)
		return -EINVAL;
	r = check_opts(opts, &shift, &csum);
	if (r)
		return r;
	p.path = (char *)path;
	if (stat(path, &st) == 0 && S_ISBLK(st.st_mode)) {
		/* O_EXCL: fails if mounted or otherwise claimed */
		p.fd = open(path, O_RDWR | O_EXCL | O_CLOEXEC);
	} else {
		p.fd = open(path, O_RDWR | O_CLOEXEC);
		if (p.fd < 0 && errno == ENOENT) {
			p.fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
			created = p.fd >= 0;
		}
	}
	if (p.fd < 0) {
		r = -errno;
		ppp_err("%s: open: %s", path, strerror(-r));
		return r;
	}
	r = fd_size(p.fd, path, &p.backend, &have);
	if (r)
		goto out;
	if (flock_wait(p.fd, LOCK_EX, p.backend) < 0) {
		r = -EBUSY;
		ppp_err("%s: the store is in use by another process", path);
		goto out;
	}

	if (p.backend == PPP_BACKEND_BLOCK) {
		if (!size)
			size = have;
		if (size > have) {
			ppp_err("%s: size %" PRIu64 " exceeds the device size %" PRIu64,
				path, size, have);
			r = -EINVAL;
			goto out;
		}
		if (!force && !has_our_magic(p.fd)) {
			r = check_foreign_signature(p.fd, path);
			if (r)
				goto out;
		}
	} else {
		if (have && !force && !has_our_magic(p.fd)) {
			ppp_err("%s: holds other data (%" PRIu64 " bytes, not a page "
				"store); not formatting it (use --force)", path, have);
			r = -EEXIST;
			goto out;
		}
		if (!size)
			size = have;
		if (!size) {
			ppp_err("%s: a size is needed to create a store file", path);
			r = -EINVAL;
			goto out;
		}
	}
	size &= ~(uint64_t)(PPP_PAGE_SIZE - 1);
	if (p.backend == PPP_BACKEND_FILE && fd_map_only(p.fd, &align)) {
		/* hugetlbfs: whole huge pages, all allocated (no sparse file) */
		p.map_only = true;
		size -= size % align;
		sparse = false;
	}
	if (size < PPP_MIN_SIZE) {
		ppp_err("%s: %" PRIu64 " bytes is too small for a store (min %u)",
			path, size, PPP_MIN_SIZE);
		r = -EINVAL;
		goto out;
	}
	if (p.backend == PPP_BACKEND_FILE) {
		bool wiped = true;

		/* resize in place rather than truncating to 0 first: a reader
		 * that still maps the file must not meet SIGBUS */
		if (have != size && ftruncate(p.fd, size) < 0) {
			r = -errno;
			ppp_err("%s: resizing to %" PRIu64 " bytes: %s", path, size,
				strerror(-r));
			goto out;
		}
		/* old checkpoints (process memory) must not survive */
		if (have && fallocate(p.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				      0, size) < 0)
			wiped = false;
		/* reserve the blocks now: a full filesystem would otherwise
		 * turn a write through the mapping into SIGBUS */
		if (!sparse && (r = posix_fallocate(p.fd, 0, size))) {
			ppp_err("%s: allocating %" PRIu64 " bytes: %s%s", path, size,
				strerror(r), p.map_only && r == ENOSPC ? " (not as many free huge "
				"pages: /proc/sys/vm/nr_hugepages, /proc/meminfo)" : "");
			r = -r;
			goto out;
		}
		if (!wiped)
			zero_file = true;
	}
	p.size = p.dev_size = size;
	m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, p.fd, 0);
	if (m == MAP_FAILED) {
		r = -errno;
		ppp_err("%s: mmap of %" PRIu64 " bytes: %s", path, size, strerror(-r));
		goto out;
	}
	p.base = m;
	if (zero_file) {
		memset(m, 0, size);	/* no hole punching here */
		r = ppp__sync(&p, 0, size);
		if (r)
			goto unmap;
	}
	/* a file's data area was punched or zeroed above; a device keeps
	 * whatever it held */
	r = format_map(&p, shift, csum, p.backend == PPP_BACKEND_FILE);
unmap:
	munmap(m, size);
	if (!r && p.backend == PPP_BACKEND_FILE && fsync(p.fd) < 0) {
		r = -errno;
		ppp_err("%s: fsync: %s", path, strerror(-r));
	}
	if (!r) {
		char u[37];

		ppp__uuid_str(p.sb.uuid, u);
		ppp_dbg("%s: formatted, %" PRIu64 " bytes, uuid %s", path, size, u);
	}
out:
	close(p.fd);
	if (r && created)
		unlink(path);
	return r;
}

/* ---- status, scrub -------------------------------------------------- */

int ppp_status(struct ppp *p, struct ppp_status *st)
{
	struct ppp_ckpt *c;
	int r;

	if (!p || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	r = ppp__load_state(p, false);
	if (r)
		return r;
	st->version = p->sb.version;
	st->backend = p->backend;
	memcpy(st->uuid, p->sb.uuid, 16);
	ppp__uuid_str(st->uuid, st->uuid_str);
	st->size = p->sb.size;
	st->data_size = p->sb.size - PPP_DATA_OFF;
	st->generation = p->sb.generation;
	st->extent_size = 1u << p->sb.extent_shift;
	st->csum = p->sb.csum;
	st->csum_name = ppp_csum_name(p->sb.csum);
	st->has_ckpt = p->sb.flags & PPP_SB_HAS_CKPT;
	st->nblobs = p->sb.nblobs;
	st->commit_time_ns = p->sb.commit_time_ns;
	st->format_time_ns = p->sb.format_time_ns;
	st->sb_valid = p->sb_valid;
	st->data_mark = p->sb.data_mark;
	st->map_only = p->map_only;
	if (!st->has_ckpt)
		return 0;
	/* a private, validated copy of the index: no lock needed */
	r = ppp__ckpt_load(p, &c);
	if (r)
		return r;
	st->used = c->used;
	st->blob_bytes = c->blob_bytes;
	ppp__ckpt_free(c);
	return 0;
}

/* Zero [off, off+len) of the store and make it durable. */
static int wipe(struct ppp *p, uint64_t off, uint64_t len)
{
	if (p->backend == PPP_BACKEND_FILE &&
	    fallocate(p->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) == 0) {
		int r;

		/* punched (reads as zero); allocate again so that later writes
		 * through the mapping cannot hit a full filesystem */
		r = posix_fallocate(p->fd, off, len);
		if (r)
			ppp_warn("%s: re-allocating the data area after the wipe: %s",
				 p->path, strerror(r));
		if (fdatasync(p->fd) < 0) {
			r = errno;
			ppp_err("%s: fdatasync: %s", p->path, strerror(r));
			return -r;
		}
		return 0;
	}
	if (p->backend == PPP_BACKEND_BLOCK) {
		/* the kernel writes the zeros (on pmem: at memcpy speed) and
		 * drops the range from the page cache; faster than dirtying the
		 * mapping page by page */
		uint64_t range[2] = { off, len };

		if (ioctl(p->fd, BLKZEROOUT, range) == 0)
			return 0;
		ppp_dbg("%s: BLKZEROOUT: %s; zeroing through the mapping", p->path,
			strerror(errno));
	}
	memset(p->base + off, 0, len);
	return ppp__sync(p, off, len);
}

int ppp_scrub(struct ppp *p)
{
	struct ppp_sbv v;
	uint64_t end;
	int r;

	if (!p)
		return -EINVAL;
	if (!p->writable) {
		ppp_err("%s: scrub needs the store opened read-write", p->path);
		return -EROFS;
	}
	if (p->txn || p->ckpt_refs) {
		ppp_err("%s: scrub with a transaction or a checkpoint open", p->path);
		return -EBUSY;
	}
	p->scrubbing = true;
	p->scrub_wiped = 0;
	r = ppp__lock_update(p);
	if (r) {
		ppp_err("%s: the store is in use by another process", p->path);
		goto out;
	}
	r = ppp__load_state(p, false);
	if (r)
		goto out;
	/* invalidate first: both copies, so that none points to data that is
	 * about to be wiped (the data mark stays until the wipe is done) */
	v = p->sb;
	v.generation++;
	v.flags &= ~PPP_SB_HAS_CKPT;
	v.index_off = v.index_len = 0;
	v.index_crc = v.nblobs = 0;
	v.commit_time_ns = ppp__now_ns();
	r = ppp__write_sb_both(p, &v);
	if (r)
		goto out;
	p->sb = v;
	/* nothing was written past the data mark since the last wipe; a store
	 * without one (older, or a device formatted over) is wiped in full */
	end = v.data_mark ? v.data_mark : p->size;
	if (end > PPP_DATA_OFF)
		r = wipe(p, PPP_DATA_OFF, end - PPP_DATA_OFF);
	if (r)
		goto out;
	v.data_mark = PPP_DATA_OFF;
	r = ppp__write_sb_both(p, &v);
	if (r)
		goto out;
	p->sb = v;
	p->scrub_wiped = end - PPP_DATA_OFF;
	ppp_dbg("%s: scrubbed, generation %" PRIu64 ": wiped %" PRIu64 " of the %" PRIu64
		" bytes of the data area", p->path, v.generation, p->scrub_wiped,
		p->size - PPP_DATA_OFF);
out:
	p->scrubbing = false;
	ppp__lock_update(p);
	return r;
}

uint64_t ppp_scrub_wiped(const struct ppp *p)
{
	return p ? p->scrub_wiped : 0;
}
