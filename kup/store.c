// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Image stores for the commands: a directory (ckpt-core's own), or the
 * persistent page store adapted to struct img_store.
 *
 * The ppp adapter: a dump is one ppp transaction; every image is one blob
 * whose data is written in place in the store's mapping, but page images:
 * those are written by ranges (ppp_blob_write_at(), from the engine's
 * buffers on two CPUs; a page of the file allocated at format and written so
 * is not cleared first, as a fault of the mapping clears it), and the
 * store's checksums of their extents are the pieces' XXH3 the engine took
 * (computed once, where the store's checksum is XXH3: its default); the set becomes visible atomically at commit.  A restore
 * opens the committed checkpoint read-only and reads the blobs in place.
 * Every blob a restore reads is covered by a checksum of its own (container
 * records, pages_sum), so blobs are mapped without the store's per-extent
 * check; `kup ppp verify` runs that one.
 *
 * On a block device (the pmem region) the mapping goes through the page
 * cache: a write fault first reads the page from the device, and after a
 * kexec every read faults.  There the page images are streamed instead:
 * written with ppp_blob_write_at() and read with ppp_blob_read(), which move
 * them with O_DIRECT between the engine's buffer and the device (and check
 * each extent's crc32c as it is read).  A pre-dump's image written ahead is
 * streamed too, and the pages changed since written again in place
 * (ppp_blob_pwrite) at the freeze.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

#include "ckpt.h"
#include "image.h"
#include "kup.h"
#include "ppp.h"

void kup_ppp_logger(int level, const char *msg)
{
	log_msg(level, 0, "%s", msg);
}

/* "auto": KUP_STORE of the configuration file, if it names one (quietly:
 * kup switch and kup check report the file's errors). */
static bool config_store(char *buf, size_t len)
{
	struct kup_config cfg;
	int lvl = log_get_level(), r;
	bool yes = false;

	log_set_level(LOG_LVL_ERR - 1);
	r = kup_config_load(NULL, &cfg);
	log_set_level(lvl);
	if (r)
		return false;
	if (cfg.store && strcmp(cfg.store, "auto")) {
		snprintf(buf, len, "%s", cfg.store);
		yes = true;
	}
	kup_config_free(&cfg);
	return yes;
}

int kup_ppp_locate(const char *given, char *buf, size_t len, const char **path)
{
	int r;

	if (given && strcmp(given, "auto")) {
		*path = given;
		return 0;
	}
	if (config_store(buf, len)) {
		*path = buf;
		return 0;
	}
	r = ppp_find_device(buf, len, PPP_FIND_LOAD_MODULES);
	if (r) {
		log_err("no persistent page store found (looked at /dev/pmem* and block devices); "
			"name the device or file");
		return r;
	}
	*path = buf;
	return 0;
}

struct ppp_store {
	struct img_store st;
	struct ppp *p;
	struct ppp_txn *txn;	/* writing */
	struct ppp_ckpt *ckpt;	/* reading */
	char path[PATH_MAX];
	char where[PATH_MAX + 8];
};

static void blob_init(struct img_store *st, const char *name, struct img_blob *b)
{
	memset(b, 0, sizeof(*b));
	b->store = st;
	b->fd = -1;
	snprintf(b->name, sizeof(b->name), "%s", name);
}

/* A new blob of the transaction; b->priv is its ppp handle until finish(). */
static int blob_new(struct img_store *st, const char *name, size_t len, struct img_blob *b)
{
	struct ppp_store *ps = st->priv;
	struct ppp_blob *pb;
	int r;

	blob_init(st, name, b);
	if (!ps->txn) {
		log_err("%s: not open for writing", ps->where);
		return -EBADF;
	}
	r = ppp_blob_create(ps->txn, name, len, &pb);
	if (r) {
		if (r == -ENOSPC)
			log_err("%s: no room for image %s (%zu bytes); a larger store is needed",
				ps->where, name, len);
		return r;
	}
	b->len = len;
	b->priv = pb;
	return 0;
}

/* Written in place, through the mapping. */
static int ps_create(struct img_store *st, const char *name, size_t len, struct img_blob *b)
{
	struct ppp_store *ps = st->priv;
	int r = blob_new(st, name, len, b);

	if (r || !len)
		return r;
	b->data = ppp_blob_data(b->priv);
	if (!b->data) {
		ppp_txn_abort(ps->txn);
		ps->txn = NULL;
		b->priv = NULL;
		log_err("%s: image %s has no direct mapping", ps->where, name);
		return -EIO;
	}
	return 0;
}

static int ps_finish(struct img_store *st, struct img_blob *b)
{
	struct ppp_blob *pb = b->priv;

	b->priv = NULL;
	if (!pb)
		return -EINVAL;
	return ppp_blob_close(pb);
}

static int ps_sum_now(struct img_store *st, struct img_blob *b, uint64_t off, uint64_t len)
{
	return b->priv ? ppp_blob_sum_now(b->priv, off, len) : -EBADF;
}

static void ps_changed(struct img_store *st, struct img_blob *b, uint64_t off, uint64_t len)
{
	if (b->priv)
		ppp_blob_changed(b->priv, off, len);
}

/* the store's name of the checksum the engine gives its pieces */
#define PIECE_CSUM (IMG_PSUM_NOW == IMG_PSUM_XXH3 ? PPP_CSUM_XXH3 : PPP_CSUM_XXH64)

static void ps_piece_sums(struct img_store *st, struct img_blob *b, const uint64_t *sums,
			  size_t n)
{
	if (b->priv)
		(void)ppp_blob_take_sums(b->priv, PIECE_CSUM, sums, n, IMG_PAGES_CHUNK);
}

/* Written with write() only (blob->data stays NULL). */
static int ps_create_stream(struct img_store *st, const char *name, size_t len,
			    struct img_blob *b)
{
	return blob_new(st, name, len, b);
}

static int ps_write_at(struct img_store *st, struct img_blob *b, uint64_t off, const void *buf,
		       size_t len, const uint64_t *sums)
{
	return b->priv ? ppp_blob_write_at(b->priv, off, buf, len, PIECE_CSUM, sums,
					   IMG_PAGES_CHUNK) : -EBADF;
}

static int ps_rewrite(struct img_store *st, struct img_blob *b, uint64_t off, const void *buf,
		      size_t len)
{
	return b->priv ? ppp_blob_pwrite(b->priv, off, buf, len) : -EBADF;
}

static int ps_sum_bytes(struct img_store *st, struct img_blob *b, uint64_t off, const void *buf,
			size_t len)
{
	return b->priv ? ppp_blob_sum_bytes(b->priv, off, buf, len) : -EBADF;
}

/* Reading: b->priv holds a copy of the blob's info. */
static int ps_open_stream(struct img_store *st, const char *name, struct img_blob *b)
{
	struct ppp_store *ps = st->priv;
	struct ppp_blob_info *info;
	int r;

	blob_init(st, name, b);
	if (!ps->ckpt)
		return -ENOENT;
	info = calloc(1, sizeof(*info));
	if (!info)
		return -ENOMEM;
	r = ppp_blob_find(ps->ckpt, name, info);
	if (!r && info->size > SIZE_MAX)
		r = -EFBIG;
	if (r) {
		free(info);
		return r;
	}
	b->len = info->size;
	b->priv = info;
	b->reading = true;
	return 0;
}

static int ps_read(struct img_store *st, struct img_blob *b, uint64_t off, void *buf, size_t len)
{
	struct ppp_store *ps = st->priv;

	return b->priv && b->reading ? ppp_blob_read(ps->ckpt, b->priv, off, buf, len) : -EBADF;
}

static int ps_open(struct img_store *st, const char *name, struct img_blob *b)
{
	struct ppp_store *ps = st->priv;
	struct ppp_blob_info info;
	const void *data;
	int r;

	blob_init(st, name, b);
	if (!ps->ckpt)
		return -ENOENT;
	r = ppp_blob_find(ps->ckpt, name, &info);
	if (r)
		return r;
	if (info.size > SIZE_MAX)
		return -EFBIG;
	r = ppp_blob_map(ps->ckpt, &info, PPP_MAP_NOVERIFY, &data);
	if (r)
		return r;
	b->data = (void *)data;	/* read-only mapping: never written through */
	b->len = info.size;
	return 0;
}

static void ps_release(struct img_store *st, struct img_blob *b)
{
	/* A blob created and never finished: the transaction cannot commit
	 * anyway (the dump fails and aborts it); drop it as it is, without
	 * checksumming or writing back what was written of it. */
	if (b->priv && b->reading)
		free(b->priv);
	else if (b->priv)
		ppp_blob_discard(b->priv);
	b->reading = false;
	b->priv = NULL;
	b->data = NULL;
}

static int ps_commit(struct img_store *st)
{
	struct ppp_store *ps = st->priv;
	int r;

	if (!ps->txn)
		return -EBADF;
	r = ppp_txn_commit(ps->txn);
	ps->txn = NULL;
	if (r)
		log_err("%s: cannot commit the checkpoint: %s", ps->where, ppp_strerror(r));
	return r;
}

static void ps_abort(struct img_store *st)
{
	struct ppp_store *ps = st->priv;

	if (ps->txn)
		ppp_txn_abort(ps->txn);
	ps->txn = NULL;
}

static int ps_remove(struct img_store *st, const char *name)
{
	struct ppp_store *ps = st->priv;
	int r;

	if (!ps->txn)
		return -EBADF;
	r = ppp_txn_remove(ps->txn, name);
	return r == -ENOENT ? 0 : r;
}

static void ps_close(struct img_store *st)
{
	struct ppp_store *ps = st->priv;

	if (ps->txn)
		ppp_txn_abort(ps->txn);
	if (ps->ckpt)
		ppp_ckpt_close(ps->ckpt);
	ppp_close(ps->p);
	free(ps);
}

#define PPP_STORE_OPS			\
	.create = ps_create,		\
	.finish = ps_finish,		\
	.open = ps_open,		\
	.release = ps_release,		\
	.commit = ps_commit,		\
	.abort = ps_abort,		\
	.close = ps_close,		\
	.remove = ps_remove

/* A file: page images written by ranges (see above), read in place. */
static const struct img_store_ops ppp_store_ops = {
	PPP_STORE_OPS,
	.sum_now = ps_sum_now,
	.changed = ps_changed,
	.piece_sums = ps_piece_sums,
	.create_stream = ps_create_stream,
	.write_at = ps_write_at,
	.write_ahead_mapped = true,
};

/* A file in hugetlbfs (reserved huge pages, no write()): every image
 * written in place through the mapping, page images on two CPUs straight
 * from the processes' memory (one copy), read in place. */
static const struct img_store_ops ppp_map_store_ops = {
	PPP_STORE_OPS,
	.sum_now = ps_sum_now,
	.changed = ps_changed,
	.piece_sums = ps_piece_sums,
	.write_ahead_mapped = true,
};

/* A block device: page images streamed with O_DIRECT (see above). */
static const struct img_store_ops ppp_block_store_ops = {
	PPP_STORE_OPS,
	.create_stream = ps_create_stream,
	.write_at = ps_write_at,
	.rewrite = ps_rewrite,
	.sum_bytes = ps_sum_bytes,
	.open_stream = ps_open_stream,
	.read = ps_read,
};

/* An abort was requested (kup/signals.c): the store's optional long work
 * stops early. */
static bool store_interrupted(void)
{
	return ckpt_abort_signal() != 0;
}

/* Name the process holding the store's lock. */
static void busy(const char *path, const char *where)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	pid_t holder = fd >= 0 ? img_lock_holder(fd, NULL) : 0;

	if (fd >= 0)
		close(fd);
	if (holder)
		log_err("%s is being written by another kup (pid %d)", where, holder);
	else
		log_err("%s is being written by another kup", where);
}

int kup_store_hold_shared(const char *given)
{
	const char *path;
	char dev[PATH_MAX];
	int fd, e;

	if (kup_ppp_locate(given, dev, sizeof(dev), &path))
		return -ENODEV;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	/* the restorer's lock is shared too: this does not wait */
	if (flock(fd, LOCK_SH | LOCK_NB) < 0) {
		e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int kup_store_open_ppp(const char *given, int write, struct img_store **out)
{
	struct ppp_store *ps;
	const char *path;
	char dev[PATH_MAX];
	bool stream = write & KUP_STORE_STREAM;
	int r;

	write &= ~KUP_STORE_STREAM;
	ppp_set_logger(kup_ppp_logger);
	ppp_set_interrupt(store_interrupted);
	if (kup_ppp_locate(given, dev, sizeof(dev), &path))
		return -ENODEV;
	r = img_trust_path(path, -1, "refusing the store");
	if (r)
		return r;
	ps = calloc(1, sizeof(*ps));
	if (!ps)
		return -ENOMEM;
	snprintf(ps->path, sizeof(ps->path), "%s", path);
	snprintf(ps->where, sizeof(ps->where), "store %s", ps->path);
	r = ppp_open(ps->path, write ? PPP_RDWR : PPP_RDONLY, &ps->p);
	if (r) {
		if (r == -ENODATA)
			log_err("%s holds no persistent page store (kup ppp format %s --size SIZE makes one)",
				ps->path, ps->path);
		free(ps);
		return r;
	}
	if (write) {
		/* One checkpoint per store: the new one replaces the old,
		 * which stays valid until the commit unless space runs out;
		 * KUP_STORE_APPEND changes the committed one (blobs removed
		 * or added: a part of it restored, kup/parts.c). */
		r = ppp_txn_begin(ps->p, write == KUP_STORE_APPEND ? PPP_TXN_APPEND : PPP_TXN_REPLACE,
				  &ps->txn);
		if (r == -EBUSY)
			busy(ps->path, ps->where);
	} else {
		r = ppp_ckpt_open(ps->p, &ps->ckpt);
		if (r == -ENOENT)
			log_err("%s holds no checkpoint", ps->where);
	}
	if (r) {
		ppp_close(ps->p);
		free(ps);
		return r;
	}
	{
		struct ppp_status pst;

		bool known = !ppp_status(ps->p, &pst);

		ps->st.ops = (stream && !write) ||
			     (known && pst.backend == PPP_BACKEND_BLOCK &&
			      !getenv("KUP_PPP_NO_STREAM")) ? &ppp_block_store_ops :
			     known && pst.map_only ? &ppp_map_store_ops : &ppp_store_ops;
	}
	ps->st.where = ps->where;
	ps->st.priv = ps;
	*out = &ps->st;
	return 0;
}

/* Remove from @wr (open with KUP_STORE_APPEND) every blob of the committed
 * checkpoint whose name begins with @prefix; returns how many or -errno. */
int kup_store_remove_prefix(struct img_store *wr, const char *prefix)
{
	struct ppp_store *ps = wr->priv;
	struct ppp_blob_info info;
	struct ppp_ckpt *c;
	size_t pl = strlen(prefix);
	uint32_t n;
	int r, k = 0;

	if (!ps->txn)
		return -EBADF;
	r = ppp_ckpt_open(ps->p, &c);
	if (r)
		return r;
	n = ppp_ckpt_nblobs(c);
	for (uint32_t i = 0; i < n && !r; i++) {
		r = ppp_ckpt_blob(c, i, &info);
		if (r || strncmp(info.name, prefix, pl))
			continue;
		r = ppp_txn_remove(ps->txn, info.name);
		k++;
	}
	ppp_ckpt_close(c);
	return r ? r : k;
}

void kup_ppp_quiet_logger(int level, const char *msg)
{
}

/* Does @given (or the store found) hold a checkpoint?  No messages. */
bool kup_store_has_ckpt(const char *given)
{
	char dev[PATH_MAX];
	const char *path = given;
	struct ppp_ckpt *c;
	struct ppp *p;
	bool yes = false;

	ppp_set_logger(kup_ppp_quiet_logger);
	if (!given || !strcmp(given, "auto")) {
		if (!config_store(dev, sizeof(dev)) &&
		    ppp_find_device(dev, sizeof(dev), PPP_FIND_LOAD_MODULES))
			goto out;
		path = dev;
	}
	if (ppp_open(path, PPP_RDONLY, &p))
		goto out;
	if (!ppp_ckpt_open(p, &c)) {
		yes = true;
		ppp_ckpt_close(c);
	}
	ppp_close(p);
out:
	ppp_set_logger(kup_ppp_logger);
	return yes;
}

/* After a successful restore: drop the checkpoint and wipe the data;
 * *@wiped (may be NULL) gets the bytes wiped. */
int kup_store_scrub_ppp(const char *given, uint64_t *wiped)
{
	const char *path;
	char dev[PATH_MAX];
	struct ppp *p;
	int r;

	ppp_set_logger(kup_ppp_logger);
	if (kup_ppp_locate(given, dev, sizeof(dev), &path))
		return -ENODEV;
	r = ppp_open(path, PPP_RDWR, &p);
	if (r)
		return r;
	r = ppp_scrub(p);
	if (wiped)
		*wiped = ppp_scrub_wiped(p);
	ppp_close(p);
	return r;
}
