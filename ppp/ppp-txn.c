// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ppp: the write side — transactions, the allocator, blobs, commit.
 *
 * A transaction never writes where the committed checkpoint lives: the
 * allocator treats the committed blobs and index as busy.  Commit writes a
 * new index in free space, msyncs the new blobs and the index, and only then
 * writes the superblock copy that holds the older generation.  See
 * docs/ppp-format.md for why this is crash-safe.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "ppp-int.h"

enum { ENT_OPEN, ENT_CLOSED, ENT_INHERITED, ENT_DROPPED };

struct tent {
	char name[96];
	uint64_t off, len;	/* len: final length (the capacity while open) */
	uint64_t *crcs;		/* host order, one checksum per extent */
	int state;
	struct ppp_blob *blob;	/* while open */
};

struct busy {
	uint64_t start, end;	/* end rounded up to PPP_SMALL_ALIGN */
	bool base;		/* belongs to the committed checkpoint */
};

struct ppp_txn {
	struct ppp *p;
	unsigned flags;
	struct ppp_sbv base;	/* the state the transaction builds on */
	bool has_base;		/* base checkpoint's space is reserved */
	struct busy *busy;	/* sorted by start, disjoint */
	size_t nbusy, cbusy;
	uint64_t cursor;	/* next-fit hint */
	struct tent **ents;
	size_t nents, cents;
	struct tent **hash;	/* name -> entry, open addressing */
	size_t hcap;
	size_t nopen;
	int error;		/* sticky: a blob failed */
	bool direct_io;		/* blobs written with O_DIRECT: flush the device */
	pthread_mutex_t mu;	/* create/close/truncate from several threads */
};

struct ppp_blob {
	struct ppp_txn *t;
	struct tent *e;
	uint64_t pos;		/* sequential write position */
	bool direct;		/* ppp_blob_data() was used: checksum at close */
	bool populated;		/* the mapping of a large blob was prefaulted */
	bool recrc;		/* truncated: checksum at close */
	bool buffered;		/* PPP_SIZE_UNKNOWN: data in buf */
	uint8_t *buf;
	size_t bufcap;
	struct ppp__csum run;	/* checksum of the partial extent next_k */
	bool run_fed;		/* run has seen bytes */
	uint64_t next_k;
	uint8_t *crc_ok;	/* direct: per extent, its checksum taken and the
				 * bytes not changed since (ppp_blob_sum_now) */
	uint8_t *rewritten;	/* streamed: per extent, written again since its
				 * checksum (ppp_blob_pwrite) */
	bool via_map;		/* some bytes went through the mapping */
	uint64_t at_bytes;	/* written with ppp_blob_write_at() (atomic) */
};

/* ---- names ---------------------------------------------------------- */

static int check_name(const struct ppp *p, const char *name)
{
	size_t n = name ? strnlen(name, PPP_NAME_MAX + 1) : 0;

	if (n == 0 || n > PPP_NAME_MAX) {
		ppp_err("%s: blob name must have 1 to %d characters", p->path,
			PPP_NAME_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		if (name[i] < 0x20 || name[i] > 0x7e) {
			ppp_err("%s: blob name '%.*s': only printable ASCII is allowed",
				p->path, (int)i, name);
			return -EINVAL;
		}
	return 0;
}

static uint64_t hash_name(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 0x100000001b3ull;
	return h;
}

static struct tent **hash_slot(struct ppp_txn *t, const char *name)
{
	size_t i = hash_name(name) & (t->hcap - 1);

	while (t->hash[i] && strcmp(t->hash[i]->name, name))
		i = (i + 1) & (t->hcap - 1);
	return &t->hash[i];
}

/* Make room for one more name (load factor <= 1/2). */
static int hash_reserve(struct ppp_txn *t)
{
	struct tent **old = t->hash;
	size_t ocap = t->hcap;

	if ((t->nents + 1) * 2 <= t->hcap)
		return 0;
	t->hcap = ocap ? ocap * 2 : 64;
	t->hash = calloc(t->hcap, sizeof(*t->hash));
	if (!t->hash) {
		t->hash = old;
		t->hcap = ocap;
		return -ENOMEM;
	}
	for (size_t i = 0; i < ocap; i++)
		if (old[i])
			*hash_slot(t, old[i]->name) = old[i];
	free(old);
	return 0;
}

static int add_ent(struct ppp_txn *t, struct tent *e)
{
	if (t->nents == t->cents) {
		size_t nc = t->cents ? t->cents * 2 : 32;
		struct tent **n = realloc(t->ents, nc * sizeof(*n));

		if (!n)
			return -ENOMEM;
		t->ents = n;
		t->cents = nc;
	}
	if (hash_reserve(t))
		return -ENOMEM;
	t->ents[t->nents++] = e;
	*hash_slot(t, e->name) = e;
	return 0;
}

/* ---- allocator ------------------------------------------------------ */

static size_t busy_pos(const struct ppp_txn *t, uint64_t start)
{
	size_t lo = 0, hi = t->nbusy;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->busy[mid].start < start)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int busy_insert(struct ppp_txn *t, uint64_t start, uint64_t end, bool base)
{
	size_t i;

	if (t->nbusy == t->cbusy) {
		size_t nc = t->cbusy ? t->cbusy * 2 : 64;
		struct busy *n = realloc(t->busy, nc * sizeof(*n));

		if (!n)
			return -ENOMEM;
		t->busy = n;
		t->cbusy = nc;
	}
	i = busy_pos(t, start);
	memmove(&t->busy[i + 1], &t->busy[i], (t->nbusy - i) * sizeof(*t->busy));
	t->busy[i] = (struct busy){ start, end, base };
	t->nbusy++;
	return 0;
}

static struct busy *busy_find(struct ppp_txn *t, uint64_t start)
{
	size_t i = busy_pos(t, start);

	return i < t->nbusy && t->busy[i].start == start ? &t->busy[i] : NULL;
}

static void busy_remove(struct ppp_txn *t, uint64_t start)
{
	struct busy *b = busy_find(t, start);

	if (b) {
		size_t i = b - t->busy;

		memmove(b, b + 1, (t->nbusy - i - 1) * sizeof(*b));
		t->nbusy--;
	}
}

/* First gap at or after @from that holds @len bytes aligned to @align. */
static bool gap_from(const struct ppp_txn *t, uint64_t from, uint64_t len,
		     uint64_t align, uint64_t *off)
{
	uint64_t cand = ppp__align_up(from, align);
	size_t lo = 0, hi = t->nbusy;

	/* ends are sorted too (disjoint ranges): skip those ending before */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->busy[mid].end <= cand)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < t->nbusy; i++) {
		if (cand <= t->busy[i].start && len <= t->busy[i].start - cand)
			break;
		if (t->busy[i].end > cand)
			cand = ppp__align_up(t->busy[i].end, align);
	}
	if (cand > t->p->size || len > t->p->size - cand)
		return false;
	*off = cand;
	return true;
}

/*
 * Invalidate the committed checkpoint so that its space can be reused
 * (PPP_TXN_REPLACE): both superblock copies get a new generation without a
 * checkpoint before any byte of it is overwritten.
 */
static int drop_base(struct ppp_txn *t, const char *why)
{
	struct ppp *p = t->p;
	struct ppp_sbv v = t->base;
	size_t j = 0;
	int r;

	if (p->ckpt_refs) {
		ppp_err("%s: cannot reuse the space of the committed checkpoint "
			"while it is open for reading", p->path);
		return -EBUSY;
	}
	v.generation++;
	v.flags &= ~PPP_SB_HAS_CKPT;
	v.index_off = v.index_len = 0;
	v.index_crc = v.nblobs = 0;
	v.commit_time_ns = ppp__now_ns();
	r = ppp__write_sb_both(p, &v);
	if (r)
		return r;
	ppp_info("%s: %s: dropped the checkpoint of generation %" PRIu64
		 " to reuse its space", p->path, why, t->base.generation);
	p->sb = t->base = v;
	t->has_base = false;
	for (size_t i = 0; i < t->nbusy; i++)
		if (!t->busy[i].base)
			t->busy[j++] = t->busy[i];
	t->nbusy = j;
	return 0;
}

/*
 * Bytes up to @end are about to be written: if that is past the data mark,
 * raise it (with some room ahead, so that a dump raises it a few times, not
 * per blob) in both superblock copies before any of them is.  The
 * generation stays: the checkpoint they describe is the same.
 */
static int raise_mark(struct ppp_txn *t, uint64_t end)
{
	struct ppp *p = t->p;
	struct ppp_sbv v = t->base;
	uint64_t m;
	int r;

	if (!v.data_mark || end <= v.data_mark)
		return 0;	/* no mark (the next scrub wipes all), or below it */
	m = ppp__align_up(end, PPP_PAGE_SIZE);
	m = p->size - m > PPP_MARK_STEP ? m + PPP_MARK_STEP : p->size;
	v.data_mark = m;
	r = ppp__write_sb_both(p, &v);
	if (r)
		return r;
	ppp_dbg("%s: data mark raised to %" PRIu64, p->path, m);
	p->sb = t->base = v;
	return 0;
}

/* Reserve @len (> 0) bytes; called with t->mu held. */
static int alloc_range(struct ppp_txn *t, const char *what, uint64_t len, uint64_t *off)
{
	struct ppp *p = t->p;
	uint64_t align = ppp__blob_align(len);
	int r;

	if (len > p->size - PPP_DATA_OFF)
		goto nospc;
	for (;;) {
		if (gap_from(t, t->cursor, len, align, off) ||
		    gap_from(t, PPP_DATA_OFF, len, align, off))
			break;
		if (!(t->flags & PPP_TXN_REPLACE) || !t->has_base)
			goto nospc;
		r = drop_base(t, what);
		if (r)
			return r;
	}
	r = raise_mark(t, *off + len);
	if (!r)
		r = busy_insert(t, *off, ppp__align_up(*off + len, PPP_SMALL_ALIGN), false);
	if (r)
		return r;
	t->cursor = *off + len;
	return 0;
nospc:
	ppp_err("%s: no space for %s (%" PRIu64 " bytes) in the %" PRIu64 " byte "
		"data area%s", p->path, what, len, p->size - PPP_DATA_OFF,
		t->has_base && !(t->flags & PPP_TXN_REPLACE) ?
		" beside the committed checkpoint" : "");
	return -ENOSPC;
}

/* ---- transactions --------------------------------------------------- */

void ppp__txn_free(struct ppp_txn *t)
{
	for (size_t i = 0; i < t->nents; i++) {
		struct tent *e = t->ents[i];

		if (e->blob) {
			free(e->blob->buf);
			free(e->blob->crc_ok);
			free(e->blob->rewritten);
			free(e->blob);
		}
		free(e->crcs);
		free(e);
	}
	free(t->ents);
	free(t->hash);
	free(t->busy);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static void txn_end(struct ppp_txn *t)
{
	struct ppp *p = t->p;

	p->txn = NULL;
	ppp__lock_update(p);
	ppp__txn_free(t);
}

/* Write p->sb into any superblock copy that differs from it, so that both
 * describe the checkpoint this transaction protects. */
static int mirror_sb(struct ppp *p)
{
	struct ppp_sb raw;
	int r;

	ppp__sb_encode(&p->sb, &raw);
	for (int i = 0; i < 2; i++) {
		if (!memcmp(p->base + i * PPP_SB_SLOT_SIZE, &raw, sizeof(raw)))
			continue;
		r = ppp__write_sb(p, i, &p->sb);
		if (r)
			return r;
	}
	p->sb_valid = 3;
	return 0;
}

/* Append a range without keeping the order (ppp_txn_begin sorts). */
static int busy_push(struct ppp_txn *t, uint64_t start, uint64_t end)
{
	if (t->nbusy == t->cbusy) {
		size_t nc = t->cbusy ? t->cbusy * 2 : 64;
		struct busy *n = realloc(t->busy, nc * sizeof(*n));

		if (!n)
			return -ENOMEM;
		t->busy = n;
		t->cbusy = nc;
	}
	t->busy[t->nbusy++] = (struct busy){ start, end, true };
	return 0;
}

static int cmp_busy(const void *a, const void *b)
{
	const struct busy *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Sort the pushed ranges and merge those that overlap (blobs shared by two
 * generations through PPP_TXN_APPEND appear twice). */
static void busy_sort_merge(struct ppp_txn *t)
{
	size_t j = 0;

	if (!t->nbusy)
		return;
	qsort(t->busy, t->nbusy, sizeof(*t->busy), cmp_busy);
	for (size_t i = 1; i < t->nbusy; i++) {
		if (t->busy[i].start < t->busy[j].end) {
			if (t->busy[i].end > t->busy[j].end)
				t->busy[j].end = t->busy[i].end;
		} else {
			t->busy[++j] = t->busy[i];
		}
	}
	t->nbusy = j + 1;
}

/* Keep the space of checkpoint @c: its index and its blobs. */
static int reserve_ckpt(struct ppp_txn *t, const struct ppp_ckpt *c)
{
	int r = busy_push(t, c->index_off,
			  ppp__align_up(c->index_off + c->index_len, PPP_SMALL_ALIGN));

	for (uint32_t i = 0; !r && i < c->nblobs; i++) {
		uint64_t off = le64toh(c->ents[i].offset), len = le64toh(c->ents[i].length);

		if (len)
			r = busy_push(t, off, ppp__align_up(off + len, PPP_SMALL_ALIGN));
	}
	return r;
}

/* Reserve the committed checkpoint's space; inherit its blobs if APPEND. */
static int load_base(struct ppp_txn *t)
{
	struct ppp *p = t->p;
	struct ppp_ckpt *c;
	int r;

	r = ppp__ckpt_load(p, &c);
	if (r) {
		if (r == -ENOMEM || (t->flags & PPP_TXN_APPEND)) {
			ppp_err("%s: cannot build on the committed checkpoint", p->path);
			return r;
		}
		/* its index is unusable: nothing of it can be read anyway */
		ppp_warn("%s: the committed checkpoint (generation %" PRIu64 ") is "
			 "unreadable; replacing it", p->path, p->sb.generation);
		return drop_base(t, "unreadable checkpoint");
	}
	r = reserve_ckpt(t, c);
	for (uint32_t i = 0; !r && (t->flags & PPP_TXN_APPEND) && i < c->nblobs; i++) {
		const struct ppp_ix_entry *ie = &c->ents[i];
		uint64_t n = ppp__nextents(le64toh(ie->length), c->extent_shift);
		struct tent *e = calloc(1, sizeof(*e));

		if (!e || (n && !(e->crcs = malloc(n * sizeof(*e->crcs))))) {
			free(e);
			r = -ENOMEM;
			break;
		}
		memcpy(e->name, ie->name, sizeof(e->name));
		e->off = le64toh(ie->offset);
		e->len = le64toh(ie->length);
		e->state = ENT_INHERITED;
		for (uint64_t k = 0; k < n; k++)
			e->crcs[k] = ppp__csum_get(c->csum, c->crcs, le64toh(ie->crc_first) + k);
		r = add_ent(t, e);
		if (r) {
			free(e->crcs);
			free(e);
		}
	}
	ppp__ckpt_free(c);
	return r;
}

int ppp_txn_begin(struct ppp *p, unsigned flags, struct ppp_txn **out)
{
	struct ppp_txn *t;
	int r;

	if (!p || !out || (flags & ~(PPP_TXN_APPEND | PPP_TXN_REPLACE)) ||
	    (flags & PPP_TXN_APPEND && flags & PPP_TXN_REPLACE))
		return -EINVAL;
	if (!p->writable) {
		ppp_err("%s: opened read-only", p->path);
		return -EROFS;
	}
	if (p->txn) {
		ppp_err("%s: a transaction is already open", p->path);
		return -EBUSY;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->mu, NULL);
	t->p = p;
	t->flags = flags;
	t->cursor = PPP_DATA_OFF;
	p->txn = t;
	r = ppp__lock_update(p);
	if (r) {
		ppp_err("%s: the store is in use by another process", p->path);
		goto fail;
	}
	r = ppp__load_state(p, false);
	if (r)
		goto fail;
	r = mirror_sb(p);
	if (r)
		goto fail;
	t->base = p->sb;
	t->has_base = p->sb.flags & PPP_SB_HAS_CKPT;
	if (t->has_base) {
		r = load_base(t);
		if (r)
			goto fail;
	}
	/* older checkpoints this process still reads from stay untouched too */
	for (struct ppp_ckpt *c = p->ckpts; c; c = c->next) {
		r = reserve_ckpt(t, c);
		if (r)
			goto fail;
	}
	busy_sort_merge(t);
	ppp_dbg("%s: transaction on generation %" PRIu64 " started", p->path,
		t->base.generation);
	*out = t;
	return 0;
fail:
	txn_end(t);
	return r;
}

void ppp_txn_abort(struct ppp_txn *t)
{
	if (!t)
		return;
	ppp_dbg("%s: transaction aborted", t->p->path);
	txn_end(t);
}

/* ---- blobs ---------------------------------------------------------- */

int ppp_blob_create(struct ppp_txn *t, const char *name, uint64_t size,
		    struct ppp_blob **out)
{
	struct ppp *p;
	struct ppp_blob *b = NULL;
	struct tent *e = NULL, *old;
	uint64_t n = 0;
	int r;

	if (!t || !out)
		return -EINVAL;
	p = t->p;
	r = check_name(p, name);
	if (r)
		return r;
	pthread_mutex_lock(&t->mu);
	if (t->error) {
		r = t->error;
		goto out;
	}
	r = hash_reserve(t);
	if (r)
		goto out;
	old = *hash_slot(t, name);
	if (old && old->state != ENT_INHERITED && old->state != ENT_DROPPED) {
		ppp_err("%s: blob '%s' already exists in this transaction", p->path, name);
		r = -EEXIST;
		goto out;
	}
	/* aligned as its XXH3 running state must be (struct ppp__csum) */
	b = aligned_alloc(_Alignof(struct ppp_blob), sizeof(*b));
	if (b)
		memset(b, 0, sizeof(*b));
	e = calloc(1, sizeof(*e));
	if (!b || !e) {
		r = -ENOMEM;
		goto out;
	}
	strcpy(e->name, name);
	if (size == PPP_SIZE_UNKNOWN) {
		b->buffered = true;
	} else if (size) {
		n = ppp__nextents(size, p->sb.extent_shift);
		if (size > p->size - PPP_DATA_OFF) {
			ppp_err("%s: blob '%s' (%" PRIu64 " bytes) is larger than the "
				"store's data area (%" PRIu64 " bytes)", p->path, name,
				size, p->size - PPP_DATA_OFF);
			r = -ENOSPC;
			goto out;
		}
		e->crcs = calloc(n, sizeof(*e->crcs));
		if (!e->crcs) {
			r = -ENOMEM;
			goto out;
		}
		r = alloc_range(t, name, size, &e->off);
		if (r)
			goto out;
		e->len = size;
	}
	r = add_ent(t, e);
	if (r) {
		if (e->len)
			busy_remove(t, e->off);
		goto out;
	}
	if (old)
		old->state = ENT_DROPPED;	/* replaced; its space stays busy */
	e->state = ENT_OPEN;
	e->blob = b;
	b->t = t;
	b->e = e;
	t->nopen++;
	*out = b;
	ppp_dbg("%s: blob '%s': %" PRIu64 " bytes at %" PRIu64, p->path, name,
		e->len, e->off);
	pthread_mutex_unlock(&t->mu);
	return 0;
out:
	pthread_mutex_unlock(&t->mu);
	if (e)
		free(e->crcs);
	free(e);
	free(b);
	return r;
}

static uint32_t ext_shift(const struct ppp_blob *b)
{
	return b->t->p->sb.extent_shift;
}

/* Fold @len bytes just written at b->pos into the running extent checksums. */
static void crc_feed(struct ppp_blob *b, const uint8_t *src, size_t len)
{
	uint32_t shift = ext_shift(b);
	uint32_t type = b->t->p->sb.csum;
	uint64_t pos = b->pos;

	while (len) {
		uint64_t ext_end = (b->next_k + 1) << shift;
		size_t piece = ext_end - pos < len ? ext_end - pos : len;

		if (!b->run_fed && piece == 1ull << shift) {
			/* a whole extent in one piece: no running state */
			b->e->crcs[b->next_k++] = ppp__csum(type, src, piece);
		} else {
			if (!b->run_fed)
				ppp__csum_init(&b->run, type);
			ppp__csum_update(&b->run, src, piece);
			b->run_fed = true;
			if (pos + piece == ext_end) {
				b->e->crcs[b->next_k++] = ppp__csum_final(&b->run);
				b->run_fed = false;
			}
		}
		src += piece;
		pos += piece;
		len -= piece;
	}
}

/*
 * Bytes [@off, @off + @len) of @b's region from @buf: straight to the device
 * when it can (no page cache, no read-before-write), else through the
 * mapping; once through the mapping, always (a direct write over pages the
 * mapping dirtied would race with their writeback).
 */
static int put_bytes(struct ppp_blob *b, uint64_t off, const void *buf, size_t len)
{
	struct ppp *p = b->t->p;
	struct tent *e = b->e;

	if (!b->direct && p->backend == PPP_BACKEND_FILE && p->fd >= 0 && !p->map_only) {
		/* into the page cache: a page of a store file allocated (and not
		 * yet written) is not cleared first, as a fault of the mapping
		 * clears it; nor is a page table filled and torn down */
		for (size_t done = 0; done < len;) {
			ssize_t n = pwrite(p->fd, (const uint8_t *)buf + done, len - done,
					   e->off + off + done);

			if (n <= 0) {
				int err = n < 0 ? errno : EIO;

				if (err == EINTR)
					continue;
				ppp_err("%s: blob '%s': write of %zu bytes at %" PRIu64 ": %s",
					p->path, e->name, len - done, off + done, strerror(err));
				return -err;
			}
			done += n;
		}
		return 0;
	}
	if (b->direct || b->via_map || !ppp__direct_ok(buf, e->off + off, len) ||
	    ppp__direct_fd(p) < 0) {
		memcpy(p->base + e->off + off, buf, len);
		__atomic_store_n(&b->via_map, true, __ATOMIC_RELAXED);	/* (ppp_blob_write_at) */
		return 0;
	}
	for (size_t done = 0; done < len;) {
		ssize_t n = pwrite(p->dfd, (const uint8_t *)buf + done, len - done,
				   e->off + off + done);

		if (n <= 0) {
			int err = n < 0 ? errno : EIO;

			ppp_err("%s: blob '%s': write of %zu bytes at %" PRIu64 ": %s",
				p->path, e->name, len - done, off + done, strerror(err));
			return -err;
		}
		done += n;
	}
	__atomic_store_n(&b->t->direct_io, true, __ATOMIC_RELAXED);
	return 0;
}

int ppp_blob_write(struct ppp_blob *b, const void *buf, size_t len)
{
	struct ppp *p;
	struct tent *e;
	int r;

	if (!b || (!buf && len))
		return -EINVAL;
	p = b->t->p;
	e = b->e;
	if (b->buffered) {
		size_t need;

		if (len > p->size - PPP_DATA_OFF - b->pos) {
			ppp_err("%s: blob '%s': %" PRIu64 " bytes do not fit in the store",
				p->path, e->name, b->pos + len);
			return -EFBIG;
		}
		need = b->pos + len;
		if (need > b->bufcap) {
			size_t nc = b->bufcap ? b->bufcap : 4096;
			uint8_t *nb;

			while (nc < need)
				nc *= 2;
			nb = realloc(b->buf, nc);
			if (!nb)
				return -ENOMEM;
			b->buf = nb;
			b->bufcap = nc;
		}
		memcpy(b->buf + b->pos, buf, len);
		b->pos += len;
		return 0;
	}
	if (__atomic_load_n(&b->at_bytes, __ATOMIC_RELAXED)) {
		ppp_err("%s: blob '%s': ppp_blob_write() after ppp_blob_write_at()", p->path,
			e->name);
		return -EINVAL;
	}
	if (len > e->len - b->pos) {
		ppp_err("%s: blob '%s': write of %zu bytes at %" PRIu64 " is past "
			"its size (%" PRIu64 " bytes)", p->path, e->name, len, b->pos,
			e->len);
		return -EFBIG;
	}
	r = put_bytes(b, b->pos, buf, len);
	if (r)
		return r;
	if (!b->direct && !b->recrc)
		crc_feed(b, buf, len);
	b->pos += len;
	if (b->pos == e->len && b->run_fed && !b->direct && !b->recrc) {
		/* the last, partial extent: summed now (ppp_blob_pwrite may follow) */
		e->crcs[b->next_k++] = ppp__csum_final(&b->run);
		b->run_fed = false;
	}
	return 0;
}

int ppp_blob_write_at(struct ppp_blob *b, uint64_t off, const void *buf, size_t len,
		      uint32_t csum, const uint64_t *sums, uint64_t piece)
{
	struct ppp *p;
	struct tent *e;
	uint32_t shift;
	uint64_t ne;
	bool take, part = false;
	int r;

	if (!b || (!buf && len))
		return -EINVAL;
	p = b->t->p;
	e = b->e;
	shift = ext_shift(b);
	ne = ppp__nextents(e->len, shift);
	if (b->buffered || b->direct || b->recrc || b->pos || off > e->len || len > e->len - off) {
		ppp_err("%s: blob '%s': cannot write %zu bytes at %" PRIu64 " of its %" PRIu64,
			p->path, e->name, len, off, e->len);
		return -EINVAL;
	}
	if (!len)
		return 0;
	/* opened once, not by two writers at a time */
	pthread_mutex_lock(&b->t->mu);
	(void)ppp__direct_fd(p);
	pthread_mutex_unlock(&b->t->mu);
	r = put_bytes(b, off, buf, len);
	if (r) {
		pthread_mutex_lock(&b->t->mu);
		if (!b->t->error)
			b->t->error = r;
		pthread_mutex_unlock(&b->t->mu);
		return r;
	}
	/* the writer's sums are the store's own only if of its kind and of
	 * whole extents starting at an extent boundary */
	take = sums && csum == p->sb.csum && piece == 1ull << shift &&
	       !(off & (piece - 1));
	for (uint64_t k = off >> shift; k < ne && (k << shift) < off + len; k++) {
		uint64_t start = k << shift;
		uint64_t l = e->len - start < (1ull << shift) ? e->len - start : 1ull << shift;

		if (start < off || start + l > off + len)
			part = true;	/* with another range's bytes */
		else
			e->crcs[k] = take ? sums[(start - off) >> shift] :
				     ppp__csum(p->sb.csum, (const uint8_t *)buf + (start - off), l);
	}
	if (part) {
		/* an extent larger than the ranges, or across two of them:
		 * summed from the store at close (as one written again) */
		pthread_mutex_lock(&b->t->mu);
		if (!b->rewritten && !(b->rewritten = calloc(ne, 1)))
			r = -ENOMEM;
		for (uint64_t k = off >> shift; !r && k < ne && (k << shift) < off + len; k++)
			if ((k << shift) < off || ((k + 1) << shift) > off + len)
				b->rewritten[k] = 1;
		if (r && !b->t->error)
			b->t->error = r;
		pthread_mutex_unlock(&b->t->mu);
		if (r)
			return r;
	}
	/* the writer of the last bytes makes the blob whole (the others are
	 * done with it: each byte is written once) */
	if (__atomic_add_fetch(&b->at_bytes, len, __ATOMIC_ACQ_REL) == e->len) {
		b->pos = e->len;
		b->next_k = ne;
	}
	return 0;
}

void *ppp_blob_data(struct ppp_blob *b)
{
	static uint8_t empty[1];

	struct ppp *p;

	if (!b || b->buffered)
		return NULL;
	p = b->t->p;
	if (b->pos || b->at_bytes) {
		/* already written with ppp_blob_write() (maybe with O_DIRECT,
		 * past the mapping's page cache): one way or the other */
		ppp_err("%s: blob '%s': ppp_blob_data() after ppp_blob_write()", p->path,
			b->e->name);
		return NULL;
	}
	b->direct = true;
	/* prefault a large blob in a few calls rather than page by page (in
	 * steps: allocating a file's blocks can take seconds per GiB, and the
	 * writer may want to give up meanwhile) */
	if (!b->populated && b->e->len >= (2u << 20) && p->fd >= 0) {
		uint64_t start = b->e->off & ~(uint64_t)(PPP_PAGE_SIZE - 1);
		uint64_t len = ppp__align_up(b->e->off + b->e->len, PPP_PAGE_SIZE) - start;

		for (uint64_t done = 0; done < len && !ppp__interrupted(); done += PPP_POPULATE_STEP)
			(void)madvise(p->base + start + done,
				      len - done < PPP_POPULATE_STEP ? len - done : PPP_POPULATE_STEP,
				      23 /* MADV_POPULATE_WRITE */);
	}
	b->populated = true;
	return b->e->len ? p->base + b->e->off : empty;
}

int ppp_blob_truncate(struct ppp_blob *b, uint64_t len)
{
	struct ppp_txn *t;
	struct tent *e;

	if (!b)
		return -EINVAL;
	t = b->t;
	e = b->e;
	if (b->buffered) {
		if (len > b->pos)
			return -EINVAL;
		b->pos = len;
		return 0;
	}
	if (len > e->len) {
		ppp_err("%s: blob '%s': cannot grow from %" PRIu64 " to %" PRIu64
			" bytes", t->p->path, e->name, e->len, len);
		return -EINVAL;
	}
	pthread_mutex_lock(&t->mu);
	if (t->cursor == e->off + e->len)
		t->cursor = e->off + len;
	if (len == 0) {
		busy_remove(t, e->off);
		e->off = 0;
	} else {
		busy_find(t, e->off)->end = ppp__align_up(e->off + len, PPP_SMALL_ALIGN);
	}
	pthread_mutex_unlock(&t->mu);
	e->len = len;
	if (b->pos > len)
		b->pos = len;
	b->recrc = true;
	return 0;
}

/* The checksum of every extent of @e, from the mapping, but those @ok
 * says are taken already (NULL: every one). */
static void crc_all(struct ppp *p, struct tent *e, const uint8_t *ok)
{
	uint32_t shift = p->sb.extent_shift;
	uint64_t n = ppp__nextents(e->len, shift);

	for (uint64_t k = 0; k < n; k++) {
		uint64_t start = k << shift;
		uint64_t len = e->len - start < (1ull << shift) ? e->len - start :
			       1ull << shift;

		if (!ok || !ok[k])
			e->crcs[k] = ppp__csum(p->sb.csum, p->base + e->off + start, len);
	}
}

/* The extents of @b holding bytes [@off, @off + @len): [*k0, *k1). */
static bool ext_span(const struct ppp_blob *b, uint64_t off, uint64_t len, uint64_t *k0,
		     uint64_t *k1)
{
	uint32_t shift = ext_shift(b);

	if (!len || off >= b->e->len)
		return false;
	if (len > b->e->len - off)
		len = b->e->len - off;
	*k0 = off >> shift;
	*k1 = ((off + len - 1) >> shift) + 1;
	return true;
}

int ppp_blob_sum_now(struct ppp_blob *b, uint64_t off, uint64_t len)
{
	struct ppp *p;
	uint64_t k0, k1;

	if (!b || !b->direct || b->recrc)
		return -EINVAL;
	p = b->t->p;
	if (!ext_span(b, off, len, &k0, &k1))
		return 0;
	if (!b->crc_ok && !(b->crc_ok = calloc(ppp__nextents(b->e->len, ext_shift(b)), 1)))
		return -ENOMEM;
	for (uint64_t k = k0; k < k1; k++) {
		uint64_t start = k << ext_shift(b);
		uint64_t l = b->e->len - start < (1ull << ext_shift(b)) ? b->e->len - start :
			     1ull << ext_shift(b);

		b->e->crcs[k] = ppp__csum(p->sb.csum, p->base + b->e->off + start, l);
		b->crc_ok[k] = 1;
	}
	return 0;
}

int ppp_blob_take_sums(struct ppp_blob *b, uint32_t csum, const uint64_t *sums, uint64_t n,
		       uint64_t piece)
{
	uint64_t ne;

	if (!b || !b->direct || b->recrc || b->buffered || (n && !sums))
		return -EINVAL;
	ne = ppp__nextents(b->e->len, ext_shift(b));
	if (csum != b->t->p->sb.csum || piece != 1ull << ext_shift(b) || n != ne || !n)
		return 0;
	if (!b->crc_ok && !(b->crc_ok = calloc(ne, 1)))
		return -ENOMEM;
	memcpy(b->e->crcs, sums, n * sizeof(*sums));
	memset(b->crc_ok, 1, n);
	return 1;
}

void ppp_blob_changed(struct ppp_blob *b, uint64_t off, uint64_t len)
{
	uint64_t k0, k1;

	if (b && b->crc_ok && ext_span(b, off, len, &k0, &k1))
		memset(b->crc_ok + k0, 0, k1 - k0);
}

/* A streamed blob written in full: may it be written again, at [@off, +@len)? */
static bool rewritable(const struct ppp_blob *b, uint64_t off, uint64_t len)
{
	return !b->buffered && !b->direct && !b->recrc && b->pos == b->e->len &&
	       off <= b->e->len && len <= b->e->len - off;
}

int ppp_blob_pwrite(struct ppp_blob *b, uint64_t off, const void *buf, size_t len)
{
	uint64_t k0, k1;
	int r;

	if (!b || (!buf && len))
		return -EINVAL;
	if (!rewritable(b, off, len)) {
		ppp_err("%s: blob '%s': cannot write %zu bytes at %" PRIu64 " again (%" PRIu64
			" of %" PRIu64 " bytes written)", b->t->p->path, b->e->name, len, off,
			b->pos, b->e->len);
		return -EINVAL;
	}
	if (!ext_span(b, off, len, &k0, &k1))
		return 0;
	if (!b->rewritten &&
	    !(b->rewritten = calloc(ppp__nextents(b->e->len, ext_shift(b)), 1)))
		return -ENOMEM;
	/* marked first: a failed write leaves the extent to be read back */
	memset(b->rewritten + k0, 1, k1 - k0);
	r = put_bytes(b, off, buf, len);
	if (r && !b->t->error)
		b->t->error = r;
	return r;
}

int ppp_blob_sum_bytes(struct ppp_blob *b, uint64_t off, const void *buf, size_t len)
{
	uint32_t shift;
	uint64_t k0, k1;

	if (!b || (!buf && len) || !rewritable(b, off, len))
		return -EINVAL;
	if (!ext_span(b, off, len, &k0, &k1))
		return 0;
	shift = ext_shift(b);
	for (uint64_t k = k0; k < k1; k++) {
		uint64_t start = k << shift;
		uint64_t l = b->e->len - start < (1ull << shift) ? b->e->len - start :
			     1ull << shift;

		if (start < off || start + l > off + len)
			continue;	/* partly in the range */
		b->e->crcs[k] = ppp__csum(b->t->p->sb.csum, (const uint8_t *)buf + (start - off), l);
		if (b->rewritten)
			b->rewritten[k] = 0;
	}
	return 0;
}

/* The checksums of the extents written again and not summed since, from
 * the bytes in the store: read with O_DIRECT when the blob was written so
 * (the mapping may hold pages older than the device's), else the mapping. */
static int crc_rewritten(struct ppp *p, struct ppp_blob *b)
{
	uint32_t shift = p->sb.extent_shift;
	uint64_t n = ppp__nextents(b->e->len, shift);
	uint8_t *buf = NULL;
	int r = 0;

	if (!b->via_map && ppp__direct_fd(p) >= 0 &&
	    posix_memalign((void **)&buf, PPP_DIRECT_ALIGN, 1ull << shift))
		buf = NULL;
	for (uint64_t k = 0; k < n && !r; k++) {
		uint64_t start = k << shift;
		uint64_t l = b->e->len - start < (1ull << shift) ? b->e->len - start :
			     1ull << shift;
		const uint8_t *src = p->base + b->e->off + start;

		if (!b->rewritten[k])
			continue;
		if (buf && ppp__direct_ok(buf, b->e->off + start, l)) {
			for (size_t done = 0; done < l;) {
				ssize_t got = pread(p->dfd, buf + done, l - done,
						    b->e->off + start + done);

				if (got <= 0) {
					r = got < 0 ? -errno : -EIO;
					ppp_err("%s: blob '%s': reading back %" PRIu64 " bytes at %"
						PRIu64 ": %s", p->path, b->e->name, l, start,
						strerror(-r));
					break;
				}
				done += got;
			}
			src = buf;
		}
		if (!r)
			b->e->crcs[k] = ppp__csum(p->sb.csum, src, l);
	}
	free(buf);
	return r;
}

int ppp_blob_close(struct ppp_blob *b)
{
	struct ppp_txn *t;
	struct ppp *p;
	struct tent *e;
	int r = 0;

	if (!b)
		return -EINVAL;
	t = b->t;
	p = t->p;
	e = b->e;
	if (b->buffered) {
		uint64_t n = ppp__nextents(b->pos, p->sb.extent_shift);

		pthread_mutex_lock(&t->mu);
		if (b->pos && !(e->crcs = calloc(n, sizeof(*e->crcs))))
			r = -ENOMEM;
		else if (b->pos)
			r = alloc_range(t, e->name, b->pos, &e->off);
		pthread_mutex_unlock(&t->mu);
		if (!r) {
			e->len = b->pos;
			memcpy(p->base + e->off, b->buf, e->len);
			crc_all(p, e, NULL);
		}
	} else if (!b->direct && b->pos != e->len) {
		ppp_err("%s: blob '%s': only %" PRIu64 " of %" PRIu64 " bytes written",
			p->path, e->name, b->pos, e->len);
		r = -EIO;
	} else if (b->direct || b->recrc) {
		crc_all(p, e, b->recrc ? NULL : b->crc_ok);
	} else if (b->next_k < ppp__nextents(e->len, p->sb.extent_shift)) {
		/* the last, partial extent */
		e->crcs[b->next_k] = b->run_fed ? ppp__csum_final(&b->run) :
				     ppp__csum(p->sb.csum, NULL, 0);
	}
	if (!r && b->rewritten && !b->direct && !b->recrc)
		r = crc_rewritten(p, b);
	if (!r)
		ppp__writeback(p, e->off, e->len);

	pthread_mutex_lock(&t->mu);
	if (r) {
		if (e->len && !b->buffered)
			busy_remove(t, e->off);
		e->state = ENT_DROPPED;
		if (!t->error)
			t->error = r;
	} else {
		e->state = ENT_CLOSED;
	}
	e->blob = NULL;
	t->nopen--;
	pthread_mutex_unlock(&t->mu);
	free(b->buf);
	free(b->crc_ok);
	free(b->rewritten);
	free(b);
	return r;
}

void ppp_blob_discard(struct ppp_blob *b)
{
	struct ppp_txn *t;
	struct tent *e;

	if (!b)
		return;
	t = b->t;
	e = b->e;
	pthread_mutex_lock(&t->mu);
	if (e->len && !b->buffered)
		busy_remove(t, e->off);
	e->state = ENT_DROPPED;
	if (!t->error)
		t->error = -ECANCELED;
	e->blob = NULL;
	t->nopen--;
	pthread_mutex_unlock(&t->mu);
	free(b->buf);
	free(b->crc_ok);
	free(b->rewritten);
	free(b);
}

int ppp_txn_remove(struct ppp_txn *t, const char *name)
{
	struct tent *e;
	int r = 0;

	if (!t || !name)
		return -EINVAL;
	if (strnlen(name, PPP_NAME_MAX + 1) > PPP_NAME_MAX)
		return -ENOENT;
	pthread_mutex_lock(&t->mu);
	e = t->hcap ? *hash_slot(t, name) : NULL;
	if (!e || e->state == ENT_DROPPED) {
		ppp_err("%s: no blob '%s' to remove", t->p->path, name);
		r = -ENOENT;
	} else if (e->state == ENT_OPEN) {
		ppp_err("%s: blob '%s' is open", t->p->path, name);
		r = -EBUSY;
	} else {
		if (e->state == ENT_CLOSED && e->len)
			busy_remove(t, e->off);
		e->state = ENT_DROPPED;
	}
	pthread_mutex_unlock(&t->mu);
	return r;
}

/* ---- commit --------------------------------------------------------- */

static int cmp_ent(const void *a, const void *b)
{
	return strcmp((*(struct tent *const *)a)->name, (*(struct tent *const *)b)->name);
}

int ppp_txn_commit(struct ppp_txn *t)
{
	struct ppp *p;
	struct tent **live = NULL;
	struct ppp_ix_hdr *h;
	struct ppp_sbv v;
	uint64_t ncrc = 0, ix_len, ix_off, lo = UINT64_MAX, hi = 0, bytes = 0;
	uint8_t *ix = NULL;
	size_t n = 0;
	int r;

	if (!t)
		return -EINVAL;
	p = t->p;
	if (t->error) {
		ppp_err("%s: not committing: a blob of the transaction failed", p->path);
		r = t->error;
		goto out;
	}
	for (size_t i = 0; i < t->nents; i++)
		if (t->ents[i]->state == ENT_OPEN) {
			ppp_err("%s: not committing: blob '%s' is still open", p->path,
				t->ents[i]->name);
			r = -EBUSY;
			goto out;
		}
	live = malloc((t->nents + 1) * sizeof(*live));
	if (!live) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < t->nents; i++) {
		struct tent *e = t->ents[i];

		if (e->state != ENT_CLOSED && e->state != ENT_INHERITED)
			continue;
		live[n++] = e;
		ncrc += ppp__nextents(e->len, p->sb.extent_shift);
		bytes += e->len;
	}
	if (n > PPP_MAX_BLOBS) {
		ppp_err("%s: %zu blobs, at most %u per checkpoint", p->path, n,
			PPP_MAX_BLOBS);
		r = -E2BIG;
		goto out;
	}
	qsort(live, n, sizeof(*live), cmp_ent);

	/* the index */
	ix_len = sizeof(*h) + n * sizeof(struct ppp_ix_entry) + ncrc * ppp__csum_size(p->sb.csum);
	ix = calloc(1, ix_len);
	if (!ix) {
		r = -ENOMEM;
		goto out;
	}
	r = alloc_range(t, "the index", ix_len, &ix_off);
	if (r)
		goto out;
	v = t->base;
	v.generation++;
	h = (struct ppp_ix_hdr *)ix;
	memcpy(h->magic, PPP_IX_MAGIC, 8);
	h->generation = htole64(v.generation);
	memcpy(h->uuid, v.uuid, 16);
	h->nblobs = htole32(n);
	h->entry_size = htole32(sizeof(struct ppp_ix_entry));
	h->ncrc = htole64(ncrc);
	{
		struct ppp_ix_entry *ie = (struct ppp_ix_entry *)(ix + sizeof(*h));
		uint8_t *crc = (uint8_t *)(ie + n);
		uint64_t k0 = 0;

		for (size_t i = 0; i < n; i++) {
			const struct tent *e = live[i];
			uint64_t ne = ppp__nextents(e->len, p->sb.extent_shift);

			memcpy(ie[i].name, e->name, sizeof(ie[i].name));
			ie[i].offset = htole64(e->len ? e->off : 0);
			ie[i].length = htole64(e->len);
			ie[i].crc_first = htole64(k0);
			for (uint64_t k = 0; k < ne; k++)
				ppp__csum_put(p->sb.csum, crc, k0 + k, e->crcs[k]);
			k0 += ne;
		}
	}
	memcpy(p->base + ix_off, ix, ix_len);

	/* everything this transaction wrote must be durable before the flip */
	for (size_t i = 0; i < t->nbusy; i++)
		if (!t->busy[i].base) {
			lo = t->busy[i].start < lo ? t->busy[i].start : lo;
			hi = t->busy[i].end > hi ? t->busy[i].end : hi;
		}
	r = ppp__sync(p, lo, hi - lo);
	if (!r && t->direct_io && fdatasync(p->fd)) {
		r = -errno;
		ppp_err("%s: flushing the device: %s", p->path, strerror(-r));
	}
	if (r)
		goto out;

	v.flags |= PPP_SB_HAS_CKPT;
	v.index_off = ix_off;
	v.index_len = ix_len;
	v.index_crc = ppp_crc32c(0, ix, ix_len);
	v.nblobs = n;
	v.commit_time_ns = ppp__now_ns();
	/* the copy holding the older generation; the other keeps t->base */
	r = ppp__write_sb(p, v.generation & 1, &v);
	if (r)
		goto out;
	p->sb = v;
	p->sb_valid = 3;
	ppp_dbg("%s: committed generation %" PRIu64 ": %zu blobs, %" PRIu64 " bytes",
		 p->path, v.generation, n, bytes);
out:
	free(ix);
	free(live);
	txn_end(t);
	return r;
}
