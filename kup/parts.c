// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Several trees in one store (kup dump/switch with several -t/--unit).
 *
 * A store holds one checkpoint, a set of named blobs (docs/ppp-format.md).
 * With several trees, parts.img lists them, and the images of part N are
 * the blobs "pN/NAME" (NAME as in a store of one tree).  The engine sees a
 * part through a part store, a view of the store under the prefix, so that
 * dump and restore are the same for one tree or several.
 *
 * The dump of several trees is one transaction: tree 1 is frozen and
 * written, and where its dump would commit, tree 2 is dumped, and so on;
 * the last one commits the transaction.  So every tree is frozen until the
 * commit, and if one fails the others, still frozen, thaw as they were and
 * nothing is committed.  Past the commit each tree is killed in turn.
 *
 * Each part is restored on its own (kup restore --unit U, or every part
 * that is no unit's); once its tree runs, its blobs leave the checkpoint
 * (a transaction that keeps the rest).  A part whose restore fails is marked
 * so and kept, and the other parts stay restorable.  When no part is left to
 * restore, the store is scrubbed (failed parts included: given up).
 * Restores of parts run one at a time (a lock in /run/kup).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"
#include "ckpt-summary.h"
#include "image.h"
#include "kup-image.pb-c.h"
#include "kup.h"

#define PARTS_IMG	"parts.img"
#define PARTS_LOCK	"/run/kup/store.lock"

/* ---- the part store --------------------------------------------------------- */

struct chain;

struct part_store {
	struct img_store st;
	struct img_store_ops ops;
	struct img_store *base;
	char prefix[16];
	char where[PATH_MAX + 300];
	struct chain *chain;	/* a dump of several trees: commit dumps the next */
	int next;
};

static int full_name(struct img_store *st, const char *name, char *buf, size_t len)
{
	struct part_store *p = st->priv;
	int n = snprintf(buf, len, "%s%s", p->prefix, name);

	if (n < 0 || (size_t)n >= len || (size_t)n >= sizeof(((struct img_blob *)0)->name)) {
		log_err("%s: image name %s%s is too long", p->where, p->prefix, name);
		return -ENAMETOOLONG;
	}
	return 0;
}

#define BASE(st)	(((struct part_store *)(st)->priv)->base)

static int pt_create(struct img_store *st, const char *name, size_t len, struct img_blob *b)
{
	char n[128];
	int r = full_name(st, name, n, sizeof(n));

	return r ? r : BASE(st)->ops->create(BASE(st), n, len, b);
}

static int pt_create_stream(struct img_store *st, const char *name, size_t len, struct img_blob *b)
{
	char n[128];
	int r = full_name(st, name, n, sizeof(n));

	return r ? r : BASE(st)->ops->create_stream(BASE(st), n, len, b);
}

static int pt_open(struct img_store *st, const char *name, struct img_blob *b)
{
	char n[128];
	int r = full_name(st, name, n, sizeof(n));

	return r ? r : BASE(st)->ops->open(BASE(st), n, b);
}

static int pt_open_stream(struct img_store *st, const char *name, struct img_blob *b)
{
	char n[128];
	int r = full_name(st, name, n, sizeof(n));

	return r ? r : BASE(st)->ops->open_stream(BASE(st), n, b);
}

static int pt_remove(struct img_store *st, const char *name)
{
	char n[128];
	int r = full_name(st, name, n, sizeof(n));

	return r ? r : BASE(st)->ops->remove(BASE(st), n);
}

static int pt_finish(struct img_store *st, struct img_blob *b)
{
	return BASE(st)->ops->finish(BASE(st), b);
}

static void pt_release(struct img_store *st, struct img_blob *b)
{
	BASE(st)->ops->release(BASE(st), b);
}

static int pt_write_at(struct img_store *st, struct img_blob *b, uint64_t off, const void *buf,
		       size_t len, const uint64_t *sums)
{
	return BASE(st)->ops->write_at(BASE(st), b, off, buf, len, sums);
}

static int pt_read(struct img_store *st, struct img_blob *b, uint64_t off, void *buf, size_t len)
{
	return BASE(st)->ops->read(BASE(st), b, off, buf, len);
}

static int dump_from(struct chain *c, int i);

static int pt_commit(struct img_store *st)
{
	struct part_store *p = st->priv;

	if (p->chain)
		return dump_from(p->chain, p->next);
	return p->base->ops->commit(p->base);
}

static void pt_abort(struct img_store *st)
{
	BASE(st)->ops->abort(BASE(st));
}

/* The base store stays open: its owner closes it. */
static void pt_close(struct img_store *st)
{
	free(st->priv);
}

static void part_name(const PartEntry *pe, char *buf, size_t len)
{
	if (pe->unit)
		snprintf(buf, len, "%s", pe->unit);
	else
		snprintf(buf, len, "the tree of pid %u", pe->root_pid);
}

struct img_store *kup_part_store(struct img_store *base, const PartEntry *pe)
{
	struct part_store *p = calloc(1, sizeof(*p));
	char name[256];

	if (!p) {
		log_errno(ENOMEM, "%s: part %s", base->where, pe->prefix);
		return NULL;
	}
	p->base = base;
	snprintf(p->prefix, sizeof(p->prefix), "%s", pe->prefix);
	part_name(pe, name, sizeof(name));
	snprintf(p->where, sizeof(p->where), "%s, part %.*s (%s)", base->where,
		 (int)strlen(p->prefix) - 1, p->prefix, name);
	p->ops = (struct img_store_ops){
		.create = pt_create, .finish = pt_finish, .open = pt_open,
		.release = pt_release, .commit = pt_commit, .abort = pt_abort,
		.close = pt_close, .remove = pt_remove,
		.create_stream = base->ops->create_stream ? pt_create_stream : NULL,
		.write_at = base->ops->write_at ? pt_write_at : NULL,
		.open_stream = base->ops->open_stream ? pt_open_stream : NULL,
		.read = base->ops->read ? pt_read : NULL,
		.write_ahead_mapped = base->ops->write_ahead_mapped,
	};
	p->st.ops = &p->ops;
	p->st.where = p->where;
	p->st.priv = p;
	return &p->st;
}

/* ---- parts.img ---------------------------------------------------------------- */

/* "pN/", N in 1..KUP_MAX_TREES without leading zeros */
static bool prefix_ok(const char *s, unsigned int *n)
{
	char *end;
	unsigned long v;

	if (s[0] != 'p' || s[1] < '1' || s[1] > '9')
		return false;
	v = strtoul(s + 1, &end, 10);
	if (strcmp(end, "/") || v > KUP_MAX_TREES)
		return false;
	*n = v;
	return true;
}

int kup_parts_read(struct img_store *st, PartsImage **out)
{
	ProtobufCMessage *m;
	PartsImage *pi;
	bool seen[KUP_MAX_TREES + 1] = { false };
	int r;

	*out = NULL;
	r = img_read_msg(st, PARTS_IMG, IMG_PARTS, &parts_image__descriptor, &m);
	if (r == -ENOENT)
		return 0;
	if (r) {
		log_err("%s: %s is damaged: none of its trees can be restored", st->where, PARTS_IMG);
		return r;
	}
	pi = (PartsImage *)m;
	r = pi->n_parts ? 0 : -EBADMSG;
	if (r)
		log_err("%s: %s lists no tree", st->where, PARTS_IMG);
	for (size_t i = 0; !r && i < pi->n_parts; i++) {
		const PartEntry *pe = pi->parts[i];
		unsigned int n;

		if (!prefix_ok(pe->prefix, &n) || seen[n]) {
			log_err("%s: %s: part %zu has a bad or repeated prefix '%.20s'", st->where,
				PARTS_IMG, i, pe->prefix);
			r = -EBADMSG;
		} else if (pe->root_pid <= 1 || pe->root_pid > (1u << 22)) {
			log_err("%s: %s: part %s has a bad root pid %u", st->where, PARTS_IMG,
				pe->prefix, pe->root_pid);
			r = -EBADMSG;
		} else if (pe->unit && !kup_unit_name_ok(pe->unit)) {
			log_err("%s: %s: part %s names no service unit", st->where, PARTS_IMG, pe->prefix);
			r = -EBADMSG;
		}
		seen[prefix_ok(pe->prefix, &n) ? n : 0] = true;
		for (size_t j = 0; !r && pe->unit && j < i; j++)
			if (pi->parts[j]->unit && !strcmp(pi->parts[j]->unit, pe->unit)) {
				log_err("%s: %s: %s is listed twice", st->where, PARTS_IMG, pe->unit);
				r = -EBADMSG;
			}
	}
	if (r) {
		parts_image__free_unpacked(pi, NULL);
		return r;
	}
	*out = pi;
	return 0;
}

/* ---- the dump of several trees ---------------------------------------------- */

struct chain {
	const struct ckpt_dump_opts *tmpl;
	const struct kup_tree *t;
	int n;
	struct img_store **ps;
	struct ckpt_stats *stats;
	struct predump **pre;	/* --pre-dump: each tree's rounds, run first */
};

static int dump_from(struct chain *c, int i)
{
	struct ckpt_dump_opts o = *c->tmpl;
	struct ckpt_stats s;
	int r;

	o.pid = c->t[i].pid;
	o.unit = c->t[i].unit;
	o.store = c->ps[i];
	o.pre = c->pre ? c->pre[i] : NULL;
	o.pre_dump_rounds = 0;
	log_info("dumping %s (%d of %d)", o.store->where, i + 1, c->n);
	r = ckpt_dump(&o, &s);
	if (!r) {
		char at[64];

		log_info("%s%s%d: frozen at %s, for %.1f ms", o.unit ? o.unit : "",
			 o.unit ? ", pid " : "pid ", o.pid,
			 kup_fmt_time(s.freeze_realtime_ns, at, sizeof(at)), s.frozen_ns / 1e6);
	}
	/* the first freeze: the outage of the whole switch begins there */
	if (!c->stats->freeze_realtime_ns || s.freeze_realtime_ns < c->stats->freeze_realtime_ns)
		c->stats->freeze_realtime_ns = s.freeze_realtime_ns;
	/* on the way out, the trees dumped are complete (this one included) */
	c->stats->nr_procs += s.nr_procs;
	c->stats->nr_threads += s.nr_threads;
	c->stats->pages += s.pages;
	c->stats->pages_from_pre_dump += s.pages_from_pre_dump;
	c->stats->pre_dump_pages += s.pre_dump_pages;
	if (s.pre_dump_rounds > c->stats->pre_dump_rounds)
		c->stats->pre_dump_rounds = s.pre_dump_rounds;
	return r;
}

int kup_dump_trees(const struct ckpt_dump_opts *tmpl, const struct kup_tree *t, int n,
		   struct ckpt_stats *stats)
{
	PartsImage pi = PARTS_IMAGE__INIT;
	PartEntry *pe = calloc(n, sizeof(*pe)), **pv = calloc(n, sizeof(*pv));
	struct img_store **ps = calloc(n, sizeof(*ps));
	char (*prefix)[16] = calloc(n, sizeof(*prefix));
	struct chain c = { .tmpl = tmpl, .t = t, .n = n, .ps = ps, .stats = stats };
	uint64_t t0;
	struct timespec ts;
	int r = 0;

	memset(stats, 0, sizeof(*stats));
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	if (!pe || !pv || !ps || !prefix) {
		r = log_errno(ENOMEM, "%s", tmpl->store->where);
		goto out;
	}
	for (int i = 0; i < n; i++) {
		part_entry__init(&pe[i]);
		snprintf(prefix[i], sizeof(prefix[i]), "p%d/", i + 1);
		pe[i].prefix = prefix[i];
		pe[i].root_pid = t[i].pid;
		pe[i].unit = (char *)t[i].unit;
		pv[i] = &pe[i];
		ps[i] = kup_part_store(tmpl->store, &pe[i]);
		if (!ps[i]) {
			r = -ENOMEM;
			goto out;
		}
		((struct part_store *)ps[i]->priv)->chain = i + 1 < n ? &c : NULL;
		((struct part_store *)ps[i]->priv)->next = i + 1;
	}
	pi.n_parts = n;
	pi.parts = pv;
	r = img_write_msg(tmpl->store, PARTS_IMG, IMG_PARTS, &pi);
	/* every tree is frozen until the last is dumped: the rounds of all
	 * run before the first freeze, then one more each to catch up */
	if (!r && tmpl->pre_dump_rounds > 0) {
		c.pre = calloc(n, sizeof(*c.pre));
		if (!c.pre)
			r = -ENOMEM;
		for (int i = 0; !r && i < n; i++) {
			log_info("pre-dump of %s%s%d (%d of %d)", t[i].unit ? t[i].unit : "",
				 t[i].unit ? ", pid " : "pid ", t[i].pid, i + 1, n);
			r = ckpt_predump(t[i].pid, tmpl->pre_dump_rounds, &c.pre[i]);
		}
		for (int i = 0; !r && n > 1 && i < n; i++)
			r = ckpt_predump_round(c.pre[i], t[i].pid);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		stats->pre_dump_ns = ts.tv_sec * 1000000000ULL + ts.tv_nsec - t0;
	}
	if (!r)
		r = dump_from(&c, 0);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	stats->total_ns = ts.tv_sec * 1000000000ULL + ts.tv_nsec - t0;
	stats->frozen_ns = stats->total_ns - stats->pre_dump_ns;
out:
	for (int i = 0; c.pre && i < n; i++)
		ckpt_predump_free(c.pre[i]);
	free(c.pre);
	if (r)
		tmpl->store->ops->abort(tmpl->store);
	for (int i = 0; ps && i < n; i++)
		if (ps[i])
			ps[i]->ops->close(ps[i]);
	free(pe);
	free(pv);
	free(ps);
	free(prefix);
	return r;
}

/* ---- restoring parts ------------------------------------------------------------ */

int kup_parts_lock(void)
{
	int fd;

	mkdir("/run/kup", 0755);
	fd = open(PARTS_LOCK, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return log_errno(errno, "cannot open %s", PARTS_LOCK);
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR || ckpt_abort_signal()) {
			int e = errno;

			close(fd);
			return log_errno(e, "cannot lock %s", PARTS_LOCK);
		}
	}
	return fd;
}

/* Replace image @name of the store's checkpoint by @msg (of @kind), in an
 * append transaction; with @drop_prefix, part @drop_prefix's blobs go too. */
static int rewrite_msg(const char *given, const char *name, enum img_kind kind,
		       const ProtobufCMessage *msg, const char *drop_prefix)
{
	struct img_store *wr;
	int r = kup_store_open_ppp(given, KUP_STORE_APPEND, &wr);

	if (r)
		return r;
	if (drop_prefix) {
		r = kup_store_remove_prefix(wr, drop_prefix);
		r = r < 0 ? r : 0;
	}
	if (!r)
		r = wr->ops->remove(wr, name);
	if (!r)
		r = img_write_msg(wr, name, kind, msg);
	if (!r)
		r = wr->ops->commit(wr);
	else
		wr->ops->abort(wr);
	wr->ops->close(wr);
	return r;
}

int kup_parts_done(const char *given, const char *prefix, bool failed)
{
	struct img_store *rd;
	PartsImage *pi = NULL;
	size_t idx, pending = 0;
	char name[256];
	int r;

	r = kup_store_open_ppp(given, 0, &rd);
	if (r)
		return r;
	r = kup_parts_read(rd, &pi);
	rd->ops->close(rd);
	if (r || !pi)
		return r ? r : -ENOENT;
	for (idx = 0; idx < pi->n_parts; idx++)
		if (!strcmp(pi->parts[idx]->prefix, prefix))
			break;
	if (idx == pi->n_parts) {
		parts_image__free_unpacked(pi, NULL);
		return -ENOENT;
	}
	part_name(pi->parts[idx], name, sizeof(name));
	if (failed) {
		pi->parts[idx]->has_failed = true;
		pi->parts[idx]->failed = true;
	} else {
		part_entry__free_unpacked(pi->parts[idx], NULL);
		memmove(pi->parts + idx, pi->parts + idx + 1, (pi->n_parts - idx - 1) * sizeof(*pi->parts));
		pi->n_parts--;
	}
	for (size_t i = 0; i < pi->n_parts; i++)
		pending += !pi->parts[i]->failed;
	if (!pi->n_parts) {
		parts_image__free_unpacked(pi, NULL);
		r = kup_store_scrub_ppp(given, NULL);
		if (!r)
			log_info("no tree left in the store: scrubbed");
		return r;
	}
	/* the failed ones stay, as a store of one tree keeps its checkpoint when
	 * its restore fails: for another try (kup switch --from-store takes them
	 * to a kernel, the old one after a new one failed them) */
	for (size_t i = 0; !pending && i < pi->n_parts; i++) {
		char other[256];

		part_name(pi->parts[i], other, sizeof(other));
		log_warn("the checkpoint of %s, whose restore failed, stays in the store for another "
			 "try: `kup switch KERNEL --from-store` takes it to KERNEL, `kup ppp scrub` "
			 "drops it", other);
	}
	r = rewrite_msg(given, PARTS_IMG, IMG_PARTS, &pi->base, failed ? NULL : prefix);
	parts_image__free_unpacked(pi, NULL);
	if (r)
		log_errno(r, "cannot mark %s's part of the store as %s", name,
			  failed ? "failed" : "restored");
	else
		log_info("the part of %s %s; %zu tree%s left to restore in the store", name,
			 failed ? "is kept, marked failed" : "was dropped", pending, pending == 1 ? "" : "s");
	return r;
}

int kup_parts_retry(const char *given)
{
	struct img_store *rd;
	PartsImage *pi = NULL;
	int r, n = 0;

	r = kup_store_open_ppp(given, 0, &rd);
	if (r)
		return r;
	r = kup_parts_read(rd, &pi);
	rd->ops->close(rd);
	if (r || !pi)
		return r;
	for (size_t i = 0; i < pi->n_parts; i++)
		if (pi->parts[i]->failed) {
			pi->parts[i]->has_failed = false;
			pi->parts[i]->failed = false;
			n++;
		}
	if (!n) {
		parts_image__free_unpacked(pi, NULL);
		return 0;
	}
	r = rewrite_msg(given, PARTS_IMG, IMG_PARTS, &pi->base, NULL);
	parts_image__free_unpacked(pi, NULL);
	if (r)
		return log_errno(r, "cannot clear the failed marks of the store's parts");
	return n;
}

bool kup_ckpt_marked_failed(struct img_store *st, const char *what)
{
	struct ckpt_summary sum;
	bool failed = false;

	if (!ckpt_summary_read(st, &sum)) {
		failed = sum.restore_failed_boot != NULL;
		if (failed)
			log_warn("%s: the restore of %s failed on an earlier boot (%s), which started "
				 "it cold: it is not restored at boot again, %s (`kup switch KERNEL "
				 "--from-store` tries it again, `kup ppp scrub` drops it)", st->where,
				 sum.unit ? sum.unit : "its tree", sum.restore_failed_boot, what);
		ckpt_summary_free(&sum);
	}
	return failed;
}

/*
 * A store of one tree: mark its checkpoint as failed on this boot (the
 * inventory's restore_failed_boot), or clear the mark (@failed false).  1
 * when changed, 0 when there was nothing to change (a store of several
 * trees, no checkpoint, the mark as asked already).
 */
int kup_store_mark_failed(const char *given, bool failed)
{
	struct img_store *rd;
	ProtobufCMessage *m = NULL;
	InventoryEntry *inv;
	PartsImage *pi = NULL;
	char bid[64] = "";
	int r;

	r = kup_store_open_ppp(given, 0, &rd);
	if (r)
		return r;
	r = kup_parts_read(rd, &pi);
	if (!r && !pi)
		r = img_read_msg(rd, "inventory.img", IMG_INVENTORY, &inventory_entry__descriptor, &m);
	rd->ops->close(rd);
	if (pi)
		parts_image__free_unpacked(pi, NULL);
	if (r || !m)
		return r == -ENOENT ? 0 : r;
	inv = (InventoryEntry *)m;
	kup_boot_id(bid, sizeof(bid));
	if (failed ? inv->restore_failed_boot != NULL : inv->restore_failed_boot == NULL) {
		inventory_entry__free_unpacked(inv, NULL);
		return 0;
	}
	/* (the string goes back to protobuf-c's free as its own) */
	free(inv->restore_failed_boot);
	inv->restore_failed_boot = failed ? strdup(bid[0] ? bid : "?") : NULL;
	r = failed && !inv->restore_failed_boot ? -ENOMEM :
	    rewrite_msg(given, "inventory.img", IMG_INVENTORY, m, NULL);
	inventory_entry__free_unpacked(inv, NULL);
	if (r)
		return log_errno(r, "cannot %s the store's checkpoint as failed", failed ? "mark" : "unmark");
	return 1;
}
