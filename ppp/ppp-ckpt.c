// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ppp: the read side — loading and validating a checkpoint index, looking
 * blobs up, checking extents, ppp_verify().
 *
 * The index is copied out of the mapping before it is checked, so that a
 * concurrent writer (or a hostile one) cannot change it after validation:
 * every offset used later comes from the validated private copy.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ppp-int.h"

struct range {
	uint64_t start, end;
	uint32_t idx;		/* blob index, UINT32_MAX: the index itself */
};

static int cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static const char *range_name(const struct ppp_ckpt *c, const struct range *r)
{
	return r->idx == UINT32_MAX ? "<index>" : c->ents[r->idx].name;
}

void ppp__ckpt_free(struct ppp_ckpt *c)
{
	if (!c)
		return;
	free(c->ix);
	free(c->verified);
	free(c);
}

/* Check a name field of the index: 1..95 printable characters, NUL-padded. */
static bool name_ok(const char *n)
{
	const char *end = memchr(n, 0, 96);

	if (!end || end == n)
		return false;
	for (const char *s = n; s < end; s++)
		if (*s < 0x20 || *s > 0x7e)
			return false;
	for (const char *s = end; s < n + 96; s++)
		if (*s)
			return false;
	return true;
}

/*
 * Copy the index of the current state (p->sb) and validate everything in it.
 * No lock is taken: the result is a consistent private snapshot.
 */
int ppp__ckpt_load(struct ppp *p, struct ppp_ckpt **out)
{
	const struct ppp_sbv *sb = &p->sb;
	const struct ppp_ix_hdr *h;
	struct range *rg = NULL;
	struct ppp_ckpt *c;
	uint64_t data_sz, max_ncrc, expect, run = 0;
	uint32_t n, nr = 0;
	int r = -EUCLEAN;

	if (!(sb->flags & PPP_SB_HAS_CKPT)) {
		ppp_dbg("%s: no checkpoint (generation %" PRIu64 ")", p->path,
			sb->generation);
		return -ENOENT;
	}
	/* bound the allocation before trusting index_len: nblobs entries and
	 * at most one crc per extent of the data area plus one per blob */
	data_sz = sb->size - PPP_DATA_OFF;
	max_ncrc = (data_sz >> sb->extent_shift) + sb->nblobs;
	if (sb->index_len > sizeof(*h) + (uint64_t)sb->nblobs * sizeof(struct ppp_ix_entry) +
			    max_ncrc * ppp__csum_size(sb->csum)) {
		ppp_err("%s: index (offset %" PRIu64 "): length %" PRIu64 " is too "
			"large for %u blobs", p->path, sb->index_off, sb->index_len,
			sb->nblobs);
		return -EUCLEAN;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->p = p;
	c->generation = sb->generation;
	c->extent_shift = sb->extent_shift;
	c->csum = sb->csum;
	c->index_off = sb->index_off;
	c->index_len = sb->index_len;
	c->ix = malloc(sb->index_len);
	if (!c->ix) {
		r = -ENOMEM;
		goto fail;
	}
	memcpy(c->ix, p->base + sb->index_off, sb->index_len);
	if (ppp_crc32c(0, c->ix, sb->index_len) != sb->index_crc) {
		ppp_err("%s: index (offset %" PRIu64 ", %" PRIu64 " bytes) of "
			"generation %" PRIu64 ": checksum mismatch", p->path,
			sb->index_off, sb->index_len, sb->generation);
		r = -EBADMSG;
		goto fail;
	}
	h = (const struct ppp_ix_hdr *)c->ix;
#define BAD(...) do { ppp_err(__VA_ARGS__); r = -EUCLEAN; goto fail; } while (0)
	if (memcmp(h->magic, PPP_IX_MAGIC, 8))
		BAD("%s: index (offset %" PRIu64 "): bad magic", p->path, sb->index_off);
	if (le64toh(h->generation) != sb->generation || memcmp(h->uuid, sb->uuid, 16))
		BAD("%s: index (offset %" PRIu64 "): belongs to generation %" PRIu64
		    " or another store, not to generation %" PRIu64, p->path,
		    sb->index_off, (uint64_t)le64toh(h->generation), sb->generation);
	n = le32toh(h->nblobs);
	c->ncrc = le64toh(h->ncrc);
	if (n != sb->nblobs || le32toh(h->entry_size) != sizeof(struct ppp_ix_entry))
		BAD("%s: index (offset %" PRIu64 "): %u entries of %u bytes, "
		    "expected %u of %zu", p->path, sb->index_off, n,
		    le32toh(h->entry_size), sb->nblobs, sizeof(struct ppp_ix_entry));
	for (size_t i = 0; i < sizeof(h->reserved); i++)
		if (h->reserved[i])
			BAD("%s: index: reserved bytes are not zero", p->path);
	if (c->ncrc > max_ncrc)
		BAD("%s: index: %" PRIu64 " checksums for a store of %" PRIu64
		    " bytes", p->path, c->ncrc, sb->size);
	expect = sizeof(*h) + (uint64_t)n * sizeof(struct ppp_ix_entry) +
		 c->ncrc * ppp__csum_size(c->csum);
	if (expect != sb->index_len)
		BAD("%s: index: %" PRIu64 " bytes, expected %" PRIu64 " for %u blobs "
		    "and %" PRIu64 " checksums", p->path, sb->index_len, expect, n,
		    c->ncrc);
	c->nblobs = n;
	c->ents = (const struct ppp_ix_entry *)(c->ix + sizeof(*h));
	c->crcs = c->ix + sizeof(*h) + (size_t)n * sizeof(struct ppp_ix_entry);

	rg = malloc(((size_t)n + 1) * sizeof(*rg));
	if (!rg) {
		r = -ENOMEM;
		goto fail;
	}
	rg[nr++] = (struct range){ sb->index_off, sb->index_off + sb->index_len, UINT32_MAX };
	c->used = ppp__align_up(sb->index_len, PPP_SMALL_ALIGN);
	for (uint32_t i = 0; i < n; i++) {
		const struct ppp_ix_entry *e = &c->ents[i];
		uint64_t off = le64toh(e->offset), len = le64toh(e->length);

		if (!name_ok(e->name))
			BAD("%s: index entry %u: bad name (not 1..%d printable "
			    "characters, NUL-padded)", p->path, i, PPP_NAME_MAX);
		if (i && strcmp(c->ents[i - 1].name, e->name) >= 0)
			BAD("%s: index entry %u ('%s'): names not sorted or duplicated",
			    p->path, i, e->name);
		if (e->flags || e->reserved)
			BAD("%s: blob '%s': unknown flags 0x%x", p->path, e->name,
			    le32toh(e->flags));
		if (len == 0) {
			if (off)
				BAD("%s: blob '%s': empty but at offset %" PRIu64,
				    p->path, e->name, off);
		} else {
			if (off < PPP_DATA_OFF || off > sb->size || len > sb->size - off)
				BAD("%s: blob '%s': offset %" PRIu64 " length %" PRIu64
				    " is outside the data area [%u, %" PRIu64 ")", p->path,
				    e->name, off, len, PPP_DATA_OFF, sb->size);
			if (off % ppp__blob_align(len))
				BAD("%s: blob '%s': offset %" PRIu64 " is not aligned to %"
				    PRIu64, p->path, e->name, off, ppp__blob_align(len));
			rg[nr++] = (struct range){ off, off + len, i };
		}
		if (le64toh(e->crc_first) != run)
			BAD("%s: blob '%s': checksums start at %" PRIu64 ", expected %"
			    PRIu64, p->path, e->name, (uint64_t)le64toh(e->crc_first), run);
		run += ppp__nextents(len, c->extent_shift);
		if (run > c->ncrc)
			BAD("%s: blob '%s': needs more checksums than the %" PRIu64
			    " in the index", p->path, e->name, c->ncrc);
		c->used += ppp__align_up(len, PPP_SMALL_ALIGN);
		c->blob_bytes += len;
	}
	if (run != c->ncrc)
		BAD("%s: index: %" PRIu64 " checksums, the blobs use %" PRIu64,
		    p->path, c->ncrc, run);
	qsort(rg, nr, sizeof(*rg), cmp_range);
	for (uint32_t i = 1; i < nr; i++)
		if (rg[i].start < rg[i - 1].end)
			BAD("%s: blob '%s' [%" PRIu64 ", %" PRIu64 ") overlaps '%s' [%"
			    PRIu64 ", %" PRIu64 ")", p->path, range_name(c, &rg[i]),
			    rg[i].start, rg[i].end, range_name(c, &rg[i - 1]),
			    rg[i - 1].start, rg[i - 1].end);
#undef BAD
	free(rg);
	c->verified = calloc(c->ncrc / 8 + 1, 1);
	if (!c->verified) {
		ppp__ckpt_free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
fail:
	free(rg);
	ppp__ckpt_free(c);
	return r;
}

int ppp_ckpt_open(struct ppp *p, struct ppp_ckpt **out)
{
	struct ppp_ckpt *c;
	int r;

	if (!p || !out)
		return -EINVAL;
	p->ckpt_refs++;
	r = ppp__lock_update(p);
	if (r) {
		p->ckpt_refs--;
		ppp_err("%s: the store is being written by another process", p->path);
		return r;
	}
	r = ppp__load_state(p, false);
	if (!r)
		r = ppp__ckpt_load(p, &c);
	if (r) {
		p->ckpt_refs--;
		ppp__lock_update(p);
		return r;
	}
	c->next = p->ckpts;
	p->ckpts = c;
	*out = c;
	return 0;
}

void ppp_ckpt_close(struct ppp_ckpt *c)
{
	struct ppp *p;

	if (!c)
		return;
	p = c->p;
	if (p) {
		for (struct ppp_ckpt **pp = &p->ckpts; *pp; pp = &(*pp)->next)
			if (*pp == c) {
				*pp = c->next;
				break;
			}
		p->ckpt_refs--;
		ppp__lock_update(p);
	}
	ppp__ckpt_free(c);
}

uint64_t ppp_ckpt_generation(const struct ppp_ckpt *c)
{
	return c ? c->generation : 0;
}

uint32_t ppp_ckpt_nblobs(const struct ppp_ckpt *c)
{
	return c ? c->nblobs : 0;
}

static void fill_info(const struct ppp_ckpt *c, uint32_t i, struct ppp_blob_info *info)
{
	const struct ppp_ix_entry *e = &c->ents[i];

	info->name = e->name;
	info->size = le64toh(e->length);
	info->offset = le64toh(e->offset);
	info->index = i;
	info->extent_size = 1u << c->extent_shift;
	info->nextents = ppp__nextents(info->size, c->extent_shift);
}

int ppp_ckpt_blob(const struct ppp_ckpt *c, uint32_t i, struct ppp_blob_info *info)
{
	if (!c || !info)
		return -EINVAL;
	if (!c->p)
		return -EBADF;
	if (i >= c->nblobs)
		return -ENOENT;
	fill_info(c, i, info);
	return 0;
}

int ppp_blob_find(const struct ppp_ckpt *c, const char *name, struct ppp_blob_info *info)
{
	uint32_t lo = 0, hi;

	if (!c || !name || !info)
		return -EINVAL;
	if (!c->p)
		return -EBADF;
	hi = c->nblobs;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int d = strcmp(name, c->ents[mid].name);

		if (!d) {
			fill_info(c, mid, info);
			return 0;
		}
		if (d < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -ENOENT;
}

/* The entry behind @info; never trusts anything in it but the index. */
static const struct ppp_ix_entry *entry_of(const struct ppp_ckpt *c,
					   const struct ppp_blob_info *info, int *r)
{
	*r = 0;
	if (!c || !info) {
		*r = -EINVAL;
		return NULL;
	}
	if (!c->p) {
		*r = -EBADF;
		return NULL;
	}
	if (info->index >= c->nblobs) {
		*r = -ENOENT;
		return NULL;
	}
	return &c->ents[info->index];
}

static bool test_verified(const struct ppp_ckpt *c, uint64_t k)
{
	return __atomic_load_n(&c->verified[k / 8], __ATOMIC_ACQUIRE) & (1u << (k % 8));
}

static void set_verified(const struct ppp_ckpt *c, uint64_t k)
{
	__atomic_fetch_or(&c->verified[k / 8], (uint8_t)(1u << (k % 8)), __ATOMIC_RELEASE);
}

/* Check extent @k of blob @e, its data at @src (NULL: in the mapping),
 * against its checksum; logs a mismatch. */
static int check_extent_at(const struct ppp_ckpt *c, const struct ppp_ix_entry *e, uint64_t k,
			   const uint8_t *src)
{
	uint64_t off = le64toh(e->offset), len = le64toh(e->length);
	uint64_t first = le64toh(e->crc_first);
	uint64_t start = k << c->extent_shift;
	uint64_t n = len - start < (1ull << c->extent_shift) ? len - start :
		     1ull << c->extent_shift;
	uint64_t want = ppp__csum_get(c->csum, c->crcs, first + k);
	uint64_t got = ppp__csum(c->csum, src ? src : c->p->base + off + start, n);

	if (got != want) {
		int w = ppp__csum_size(c->csum) * 2;

		ppp_err("%s: blob '%s' extent %" PRIu64 "/%" PRIu64 " (blob bytes %"
			PRIu64 "-%" PRIu64 ", store offset %" PRIu64 "): %s "
			"0x%0*" PRIx64 ", expected 0x%0*" PRIx64, c->p->path, e->name, k,
			ppp__nextents(len, c->extent_shift), start, start + n - 1,
			off + start, ppp_csum_name(c->csum), w, got, w, want);
		return -EBADMSG;
	}
	set_verified(c, first + k);
	return 0;
}

static int check_extent(const struct ppp_ckpt *c, const struct ppp_ix_entry *e, uint64_t k)
{
	return check_extent_at(c, e, k, NULL);
}

/* Check extents [k0, k1] of @e that were not checked yet. */
static int check_extents(const struct ppp_ckpt *c, const struct ppp_ix_entry *e,
			 uint64_t k0, uint64_t k1, bool all, uint64_t *nbad)
{
	uint64_t first = le64toh(e->crc_first);
	int r = 0;

	for (uint64_t k = k0; k <= k1; k++) {
		if (!all && test_verified(c, first + k))
			continue;
		if (check_extent(c, e, k)) {
			r = -EBADMSG;
			if (nbad)
				++*nbad;
			if (!all)
				break;
		}
	}
	return r;
}

int ppp_blob_verify(const struct ppp_ckpt *c, const struct ppp_blob_info *info)
{
	const struct ppp_ix_entry *e;
	uint64_t n;
	int r;

	e = entry_of(c, info, &r);
	if (!e)
		return r;
	n = ppp__nextents(le64toh(e->length), c->extent_shift);
	return n ? check_extents(c, e, 0, n - 1, true, NULL) : 0;
}

int ppp_blob_map(const struct ppp_ckpt *c, const struct ppp_blob_info *info,
		 unsigned flags, const void **data)
{
	static const char empty[1];
	const struct ppp_ix_entry *e;
	uint64_t len, n;
	int r;

	e = entry_of(c, info, &r);
	if (!e)
		return r;
	if (!data || (flags & ~PPP_MAP_NOVERIFY))
		return -EINVAL;
	len = le64toh(e->length);
	n = ppp__nextents(len, c->extent_shift);
	if (!(flags & PPP_MAP_NOVERIFY) && n) {
		r = check_extents(c, e, 0, n - 1, false, NULL);
		if (r)
			return r;
	}
	*data = len ? (const void *)(c->p->base + le64toh(e->offset)) : empty;
	return 0;
}

int ppp_blob_read(const struct ppp_ckpt *c, const struct ppp_blob_info *info,
		  uint64_t off, void *buf, size_t len)
{
	const struct ppp_ix_entry *e;
	uint64_t size;
	int r;

	e = entry_of(c, info, &r);
	if (!e)
		return r;
	if (!buf && len)
		return -EINVAL;
	size = le64toh(e->length);
	if (off > size || len > size - off) {
		ppp_err("%s: blob '%s': read of %zu bytes at %" PRIu64 " is past its "
			"end (%" PRIu64 " bytes)", c->p->path, e->name, len, off, size);
		return -ERANGE;
	}
	if (!len)
		return 0;
	/*
	 * Whole extents into an aligned buffer, from a block device: read them
	 * with O_DIRECT (no page cache: after a kexec it is cold anyway) and
	 * check them in the buffer.
	 */
	if (!(off & ((1ull << c->extent_shift) - 1)) &&
	    (!(len & ((1ull << c->extent_shift) - 1)) || off + len == size) &&
	    ppp__direct_ok(buf, le64toh(e->offset) + off, len) && ppp__direct_fd(c->p) >= 0) {
		for (size_t done = 0; done < len;) {
			ssize_t n = pread(c->p->dfd, (uint8_t *)buf + done, len - done,
					  le64toh(e->offset) + off + done);

			if (n <= 0) {
				r = n < 0 ? -errno : -EIO;
				ppp_err("%s: blob '%s': read of %zu bytes at %" PRIu64 ": %s",
					c->p->path, e->name, len - done, off + done, strerror(-r));
				return r;
			}
			done += n;
		}
		for (uint64_t k = off >> c->extent_shift; k <= (off + len - 1) >> c->extent_shift; k++) {
			r = check_extent_at(c, e, k, (const uint8_t *)buf + ((k << c->extent_shift) - off));
			if (r)
				return r;
		}
		return 0;
	}
	/*
	 * Whole extents through the mapping: copied first, then the copy
	 * checked (not the store, which may change between the check and the
	 * copy; nor an extent seen good earlier: a reader of pages while the
	 * tree they belong to runs must see a store damaged meanwhile).
	 */
	if (!(off & ((1ull << c->extent_shift) - 1)) &&
	    (!(len & ((1ull << c->extent_shift) - 1)) || off + len == size)) {
		memcpy(buf, c->p->base + le64toh(e->offset) + off, len);
		for (uint64_t k = off >> c->extent_shift; k <= (off + len - 1) >> c->extent_shift; k++) {
			r = check_extent_at(c, e, k, (const uint8_t *)buf + ((k << c->extent_shift) - off));
			if (r)
				return r;
		}
		return 0;
	}
	r = check_extents(c, e, off >> c->extent_shift,
			  (off + len - 1) >> c->extent_shift, false, NULL);
	if (r)
		return r;
	memcpy(buf, c->p->base + le64toh(e->offset) + off, len);
	return 0;
}

#define VERIFY_CHUNK (8u << 20)

/*
 * ppp_verify() of a blob of a block device: its extents read with O_DIRECT,
 * VERIFY_CHUNK bytes of whole extents at a time (after a kexec the page
 * cache of the mapping is cold, and faulting it in page by page costs more
 * than the checksum).  Extents are at most VERIFY_CHUNK here.  Counts the
 * bad extents in @bad; -errno if the device cannot be read.
 */
static int verify_blob_direct(const struct ppp_ckpt *c, const struct ppp_ix_entry *e,
			      uint8_t *buf, uint64_t *bad)
{
	uint64_t off = le64toh(e->offset), len = le64toh(e->length);
	uint64_t ext = 1ull << c->extent_shift, next = ppp__nextents(len, c->extent_shift);
	uint64_t per = VERIFY_CHUNK / ext;

	for (uint64_t k = 0; k < next; k += per) {
		uint64_t start = k << c->extent_shift;
		uint64_t n = len - start < per * ext ? len - start : per * ext;
		uint64_t want = ppp__align_up(n, PPP_PAGE_SIZE);	/* <= VERIFY_CHUNK */

		for (uint64_t done = 0; done < n;) {
			ssize_t got = pread(c->p->dfd, buf + done, want - done, off + start + done);

			if (got <= 0) {
				int r = got < 0 ? -errno : -EIO;

				ppp_err("%s: blob '%s': read of %" PRIu64 " bytes at store offset %"
					PRIu64 ": %s", c->p->path, e->name, want - done,
					off + start + done, strerror(-r));
				return r;
			}
			done += got;
		}
		for (uint64_t j = 0; j < per && k + j < next; j++)
			if (check_extent_at(c, e, k + j, buf + j * ext))
				++*bad;
	}
	return 0;
}

int ppp_verify(struct ppp *p, uint64_t *nbad)
{
	struct ppp_ckpt *c;
	uint64_t bad = 0;
	uint8_t *buf = NULL;
	int r;

	if (nbad)
		*nbad = 0;
	if (!p)
		return -EINVAL;
	r = ppp__load_state(p, false);
	if (r)
		return r;
	for (int i = 0; i < 2; i++)
		if (!(p->sb_valid & (1u << i)))
			ppp_warn("%s: superblock copy %d is not valid (interrupted "
				 "commit?); the next transaction rewrites it", p->path, i);
	if (!(p->sb.flags & PPP_SB_HAS_CKPT))
		return 0;
	r = ppp_ckpt_open(p, &c);
	if (r)
		return r;
	if ((1ull << c->extent_shift) <= VERIFY_CHUNK && ppp__direct_fd(p) >= 0 &&
	    posix_memalign((void **)&buf, PPP_DIRECT_ALIGN, VERIFY_CHUNK))
		buf = NULL;
	for (uint32_t i = 0; i < c->nblobs; i++) {
		const struct ppp_ix_entry *e = &c->ents[i];
		uint64_t n = ppp__nextents(le64toh(e->length), c->extent_shift);

		if (!n)
			continue;
		if (buf && le64toh(e->length) >= PPP_PAGE_SIZE) {
			uint64_t before = bad;

			if (!verify_blob_direct(c, e, buf, &bad))
				continue;
			bad = before;	/* unreadable with O_DIRECT: through the mapping */
		}
		check_extents(c, e, 0, n - 1, true, &bad);
	}
	free(buf);
	if (bad)
		ppp_err("%s: generation %" PRIu64 ": %" PRIu64 " bad extent%s",
			p->path, c->generation, bad, bad == 1 ? "" : "s");
	ppp_ckpt_close(c);
	if (nbad)
		*nbad = bad;
	return bad ? -EBADMSG : 0;
}
