// SPDX-License-Identifier: GPL-2.0-or-later
/* kup restore: bring a dumped process tree back. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"
#include "image.h"
#include "journal.h"
#include "json.h"
#include "ckpt-summary.h"
#include "kup-image.pb-c.h"
#include "kup.h"

static void restore_usage(FILE *f)
{
	fprintf(f,
		"Usage: kup restore (-D DIR | --ppp STORE [--keep] [--if-any]\n"
		"                   [--unit UNIT | --no-unit | -t PID]) [-d] [--pidfile FILE]\n"
		"                   [--lazy | --eager] [--shell-job] [--tcp-established]\n"
		"                   [--allow-differences] [--json] [-v]\n\n"
		"Recreate the tree saved in DIR or in the persistent page store STORE with\n"
		"its PIDs and let it run.  Without -d, wait for the restored root to exit\n"
		"and exit with its status.  A failed restore leaves no restored process\n"
		"behind and the images untouched; so does a restore interrupted by SIGINT,\n"
		"SIGTERM or SIGHUP.  Once a tree restored from a store runs,\n"
		"the store is scrubbed (the checkpoint holds process memory) unless --keep.\n"
		"A store of several trees: each is restored on its own (--unit, -t, or\n"
		"every one that --no-unit or nothing selects, with -d); its part leaves\n"
		"the store once it runs, the last one scrubs it; a part that fails is\n"
		"kept (marked failed) and the others stay restorable.\n\n"
		"  -D, --images-dir DIR   images to restore from\n"
		"      --ppp STORE        restore from a persistent page store: a device\n"
		"                         (/dev/pmem0), a file, or 'auto' (find it)\n"
		"      --keep             do not scrub the store after the restore\n"
		"      --if-any           with --ppp: exit 0 if there is no store or it holds\n"
		"                         no checkpoint (kup-restore.service at boot), or\n"
		"                         none that --unit/--no-unit asks for\n"
		"      --unit UNIT        restore only a checkpoint of the service UNIT (kup\n"
		"                         dump --unit), as UNIT's start does after a switch\n"
		"      --no-unit          restore only a checkpoint that is no service's\n"
		"  -t, --tree PID         restore only the tree whose root was PID (a store\n"
		"                         of several trees, kup dump with several -t/--unit)\n"
		"  -d, --restore-detached return once the tree runs\n"
		"      --eager            all of the memory before the tree runs (the default,\n"
		"                         unless KUP_RESTORE_MEMORY=lazy with --ppp)\n"
		"      --lazy             run the tree before its private memory is back: its\n"
		"                         pages come on first touch and in the background,\n"
		"                         from a process named kup-lazy that exits once all\n"
		"                         are in (then scrubs the store, unless --keep); a\n"
		"                         page that cannot be read back kills the tree\n"
		"  -j, --shell-job        restore into this terminal (the tree was dumped\n"
		"                         with --shell-job)\n"
		"      --tcp-established  restore established TCP connections\n"
		"      --pidfile FILE     with -d: write the root pid to FILE\n"
		"      --allow-differences  run the tree even with state this kernel or these\n"
		"                         privileges cannot apply as dumped (a resource\n"
		"                         limit, oom_score_adj, the personality, the time\n"
		"                         namespace of the clocks): a warning\n"
		"                         names each difference; without it the restore fails\n"
		"      --json             at the end, one JSON object on stdout: the store and\n"
		"                         each tree restored (root pid, processes, threads,\n"
		"                         pages, bytes, when it was frozen and ran again,\n"
		"                         the outage); without -d, once the root exited\n"
		"  -v, --verbose          more messages\n");
}

/* CLOCK_REALTIME when this restore began (the phases of a switch) */
static unsigned long long restore_begun_ns;

/* What the outage of the tree is reckoned from (the inventory). */
struct outage {
	char name[128];			/* the unit, or pid-N */
	unsigned long long freeze_ns;	/* 0: not known (an older image) */
	bool other_boot;		/* dumped by another boot: a switch */
};

struct rst_ppp {
	const char *given;
	bool keep, lazy;
	int hold_fd;			/* kup-lazy's own shared lock on the store */
	struct ckpt_restore_opts *o;
	unsigned long long running_ns;	/* CLOCK_REALTIME: the tree runs again */
	const struct outage *outage;	/* the tree's, once read */
};

/* One restored tree in --json's "trees" (@list NULL: no --json). */
static void json_tree(json_t *list, const struct outage *out, pid_t root,
		      const struct ckpt_stats *s, unsigned long long running_ns)
{
	json_t *t;
	char at[64];

	if (!list)
		return;
	t = json_object();
	kup_json_set(t, "name", kup_json_str(out->name));
	kup_json_set(t, "root_pid", json_integer(root));
	kup_json_set(t, "processes", json_integer(s->nr_procs));
	kup_json_set(t, "threads", json_integer(s->nr_threads));
	kup_json_set(t, "pages", kup_json_u64(s->pages));
	kup_json_set(t, "bytes", kup_json_u64(s->pages * (uint64_t)sysconf(_SC_PAGESIZE)));
	kup_json_set(t, "total_ns", kup_json_u64(s->total_ns));
	kup_json_set(t, "frozen_at_ns", kup_json_u64(out->freeze_ns));
	kup_json_set(t, "frozen_at", kup_json_str(kup_fmt_time(out->freeze_ns, at, sizeof(at))));
	kup_json_set(t, "running_at_ns", kup_json_u64(running_ns));
	kup_json_set(t, "running_at", kup_json_str(kup_fmt_time(running_ns, at, sizeof(at))));
	/* the outage: frozen by the dump until it runs again (0: not known) */
	kup_json_set(t, "outage_ns", kup_json_u64(out->freeze_ns && running_ns > out->freeze_ns ?
						  running_ns - out->freeze_ns : 0));
	kup_json_set(t, "other_boot", json_boolean(out->other_boot));
	json_array_append_new(list, t);
}

/* --json: {"store": {"kind", "path"}, "trees": [...], "exit_status"} */
static void json_print(json_t *list, const char *kind, const char *path, int exit_status)
{
	json_t *o, *store;

	if (!list)
		return;
	o = json_object();
	store = json_object();
	kup_json_set(store, "kind", json_string(kind));
	kup_json_set(store, "path", kup_json_str(path));
	kup_json_set(o, "store", store);
	kup_json_set(o, "trees", json_incref(list));
	if (exit_status >= 0)
		kup_json_set(o, "exit_status", json_integer(exit_status));
	if (kup_json_print(stdout, o))
		log_warn("the restore is done, but its summary could not be written to stdout");
}

static void read_outage(struct img_store *st, struct outage *out)
{
	struct ckpt_summary sum;
	char bid[64] = "";

	memset(out, 0, sizeof(*out));
	if (ckpt_summary_read(st, &sum))
		return;
	if (sum.unit && kup_unit_name_ok(sum.unit))
		snprintf(out->name, sizeof(out->name), "%s", sum.unit);
	else
		snprintf(out->name, sizeof(out->name), "pid-%u", sum.root_pid);
	out->freeze_ns = sum.freeze_time_ns;
	kup_boot_id(bid, sizeof(bid));
	out->other_boot = sum.boot_id && bid[0] && strcmp(sum.boot_id, bid);
	ckpt_summary_free(&sum);
}

/* --as-new-boot (tests): restored as after a switch, the record too */
static void read_outage_as(struct img_store *st, struct outage *out, bool as_new_boot)
{
	read_outage(st, out);
	if (as_new_boot && out->name[0])
		out->other_boot = true;
}

/* The tree runs: the restore is done, signals are no longer an abort (kup
 * restore without -d then waits for the root).  From a store: the tree runs
 * from copies of its memory, the store's checkpoint (process memory,
 * secrets included) is no longer needed. */
static void rst_running(void *arg)
{
	struct rst_ppp *rp = arg;
	sigset_t abort_set, old_set, pending;
	struct timespec ts, t0, t1;
	uint64_t wiped = 0;
	char where[300];
	int r;

	clock_gettime(CLOCK_REALTIME, &ts);
	rp->running_ns = ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	kup_release_abort();
	journal_end();	/* nothing left to undo */
	if (!rp->given) {
		/* the images are no longer needed: a dump may write there again */
		rp->o->store->ops->close(rp->o->store);
		rp->o->store = NULL;
		return;
	}
	snprintf(where, sizeof(where), "%s", rp->o->store->where);
	rp->o->store->ops->close(rp->o->store);
	rp->o->store = NULL;
	if (rp->keep || rp->lazy)	/* lazily: once the memory is in */
		return;
	/* all the store held since its last wipe (up to its data mark), not
	 * only what the checkpoint used: after the tree runs, but within the
	 * command's time, so said with its duration and size */
	/* the scrub is not cut short by SIGINT, SIGTERM or SIGHUP (the tree
	 * runs: nothing to abort, and the store must not keep its memory):
	 * one that comes meanwhile takes effect once it is done */
	sigemptyset(&abort_set);
	sigaddset(&abort_set, SIGINT);
	sigaddset(&abort_set, SIGTERM);
	sigaddset(&abort_set, SIGHUP);
	sigprocmask(SIG_BLOCK, &abort_set, &old_set);
	/* KUP_TEST_SCRUB_HOLD=FILE (tests): the scrub waits until FILE
	 * exists, so that a signal comes during it */
	for (const char *hold = getenv("KUP_TEST_SCRUB_HOLD"); hold && access(hold, F_OK);)
		usleep(10000);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = kup_store_scrub_ppp(rp->given, &wiped);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (r)
		log_warn("the tree runs, but %s could not be scrubbed (%s); run kup ppp scrub",
			 where, strerror(-r));
	else
		log_info("%s scrubbed (%.0f ms, %" PRIu64 " MiB wiped)", where,
			 (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6,
			 (wiped + (1 << 20) - 1) >> 20);
	if (!sigpending(&pending))
		for (int sig = 1; sig < NSIG; sig++)
			if (sigismember(&abort_set, sig) && sigismember(&pending, sig)) {
				log_info("%s came during the scrub: the tree runs, the scrub "
					 "was completed first", kup_signame(sig));
				break;
			}
	sigprocmask(SIG_SETMASK, &old_set, NULL);
}

/*
 * In kup-lazy: the store stays locked (shared) while its pages are read.
 * The lock kup-lazy inherited is the restorer's: it goes when the restorer
 * closes its copy of the store, once the tree runs.  So kup-lazy takes one
 * of its own: no dump, scrub or drop of a part changes the store meanwhile.
 */
static int store_hold(const char *given)
{
	int fd = given ? kup_store_hold_shared(given) : -1;

	if (given && fd < 0)
		log_warn("cannot lock %s while its pages are read (%s): do not write to it "
			 "until kup-lazy exits", given, strerror(-fd));
	return fd;
}

static void rst_in_server(void *arg)
{
	struct rst_ppp *rp = arg;

	rp->hold_fd = store_hold(rp->given);
}

/*
 * The restore of a unit's tree kept across a switch failed, before or after
 * the tree ran (its memory could not be read back): the unit starts cold,
 * and from then on its state is newer than the checkpoint's, which a later
 * boot must not restore.  A store of one tree gets the mark in its
 * inventory (kup hold then holds nothing for it), a part of a store of
 * several its failed mark.  Tried for a while: another part's kup-lazy may
 * hold the store (a shared lock) meanwhile.
 */
static void mark_failed(const char *given, const char *prefix)
{
	for (int i = 0; i < 60; i++) {
		int lock = prefix ? kup_parts_lock() : -1, r;

		if (prefix && lock < 0)
			return;
		r = prefix ? kup_parts_done(given, prefix, true) : kup_store_mark_failed(given, true);
		if (lock >= 0)
			close(lock);
		if (r != -EBUSY) {
			if (r > 0)
				log_warn("the checkpoint stays in the store, marked failed: a later "
					 "boot does not restore it (`kup switch KERNEL --from-store` "
					 "tries it again, `kup ppp scrub` drops it)");
			return;
		}
		usleep(500000);
	}
	log_warn("the store stayed busy: its checkpoint could not be marked failed");
}

/* kup-lazy killed the tree (a page that cannot be read back) */
static void rst_fatal(void *arg)
{
	struct rst_ppp *rp = arg;

	if (rp->hold_fd >= 0)
		close(rp->hold_fd);
	rp->hold_fd = -1;
	if (rp->given && !rp->keep && rp->outage && rp->outage->other_boot)
		mark_failed(rp->given, NULL);
}

/* Lazily restored from a store: every page is in (kup-lazy, which has
 * closed its copy of the store), the checkpoint is no longer needed. */
static void rst_memory_complete(void *arg)
{
	struct rst_ppp *rp = arg;
	int r;

	if (rp->hold_fd >= 0)
		close(rp->hold_fd);
	rp->hold_fd = -1;
	/* after a switch: when the outage's last phase ended (kup status) */
	if (rp->outage && rp->outage->other_boot)
		switch_record_memory_complete(rp->outage->name);
	if (!rp->given || rp->keep)
		return;
	r = kup_store_scrub_ppp(rp->given, NULL);
	if (r)
		log_warn("the tree's memory is complete, but the store could not be scrubbed "
			 "(%s); run kup ppp scrub", strerror(-r));
	else
		log_info("the tree's memory is complete: the store is scrubbed");
}

/* KUP_RESTORE_MEMORY=lazy in the configuration file (quietly: a file with
 * errors is reported by kup switch and kup check; here it means eager). */
static bool config_lazy(void)
{
	struct kup_config cfg;
	int lvl = log_get_level(), r;
	bool yes;

	log_set_level(LOG_LVL_ERR - 1);
	r = kup_config_load(NULL, &cfg);
	log_set_level(lvl);
	if (r)
		return false;
	yes = cfg.lazy == 1;
	kup_config_free(&cfg);
	return yes;
}

/* The images are good: a PID holder from the initramfs lets the tree's PIDs go. */
static int rst_before_pids(void *arg)
{
	struct rst_ppp *rp = arg;

	return rp->given ? kup_hold_release(NULL) : 0;
}

/*
 * Is the checkpoint in @st the one asked for: of service @unit, or with
 * @unit NULL of no service?  0 yes, 1 no but that is fine (@if_any),
 * negative no (logged).
 */
static int check_unit(struct img_store *st, const char *unit, bool if_any)
{
	struct ckpt_summary sum;
	int ret = ckpt_summary_read(st, &sum);

	if (ret) {
		if (ret == -ENOENT)
			log_err("%s: no complete checkpoint here (inventory.img is missing)", st->where);
		return ret;
	}
	if (unit && (!sum.unit || strcmp(sum.unit, unit))) {
		if (sum.unit)
			log_msg(if_any ? LOG_LVL_INFO : LOG_LVL_ERR, 0,
				"the checkpoint in %s is %s's, not %s's", st->where, sum.unit, unit);
		else
			log_msg(if_any ? LOG_LVL_INFO : LOG_LVL_ERR, 0,
				"the checkpoint in %s (tree of pid %u) is no service's, not %s's",
				st->where, sum.root_pid, unit);
		ret = if_any ? 1 : -ENOENT;
	} else if (!unit && sum.unit) {
		log_msg(if_any ? LOG_LVL_INFO : LOG_LVL_ERR, 0,
			"the checkpoint in %s is %s's: left for it (its start restores it)",
			st->where, sum.unit);
		ret = if_any ? 1 : -ENOENT;
	}
	ckpt_summary_free(&sum);
	return ret;
}

/* The restore of @unit failed: the boot's note that it is to be restored
 * goes, so that kup-generator no longer redirects its start after the next
 * daemon-reload (kup-cold@ does it too).  A restore that worked leaves it
 * to the unit's drop-in (kup hold --unit-done, once the unit is active):
 * the line must stay until then, in case another unit's daemon-reload
 * comes in between. */
static void unit_failed(const char *unit)
{
	kup_unit_forget(unit);
}

/* ---- a store of several trees (kup/parts.c) ---- */

/* the parts lock while restore_parts() restores (a kup-lazy lets it go) */
static int parts_lock_fd = -1;

struct rst_part {
	const char *given, *prefix;
	bool keep, ran, lazy;
	int hold_fd;			/* kup-lazy's own shared lock on the store */
	unsigned long long running_ns;	/* CLOCK_REALTIME: the tree runs again */
	struct ckpt_restore_opts *o;
	struct img_store *base;
	const struct outage *outage;	/* the tree's, once read */
};

static void part_close(struct rst_part *rp)
{
	if (rp->o->store)
		rp->o->store->ops->close(rp->o->store);
	rp->o->store = NULL;
	if (rp->base)
		rp->base->ops->close(rp->base);
	rp->base = NULL;
}

#define PART_DROP_TRIES	7200	/* every 0.5 s: an hour of another part's lazy fill */

/* One try at dropping part @prefix; -EBUSY while another part's kup-lazy
 * reads the store.  @quiet: the store's "busy" said once already. */
static int part_drop_try(const char *given, const char *prefix, bool locked, bool quiet)
{
	int lvl = log_get_level(), lock = locked ? -1 : kup_parts_lock(), r;

	if (!locked && lock < 0)
		return lock;
	if (quiet)
		log_set_level(LOG_LVL_ERR - 1);
	r = kup_parts_done(given, prefix, false);
	log_set_level(lvl);
	if (lock >= 0)
		close(lock);
	return r;
}

/*
 * Drop part @prefix from the store: its tree runs with all its memory (the
 * last part's drop scrubs the store).  A kup-lazy of another part may read
 * the store meanwhile, with a shared lock the transaction cannot take: then
 * the drop is tried again every half second, in a process of its own
 * (kup-drop) when @fork_if_busy, so that this restore returns.  @locked:
 * the caller holds the parts lock.
 */
static void part_drop(const char *given, const char *prefix, bool fork_if_busy, bool locked)
{
	bool child = false;
	int r = part_drop_try(given, prefix, locked, false);

	if (r == -EBUSY) {
		log_info("another tree's memory is still read from the store: part %.*s is "
			 "dropped from it once that is done", (int)strlen(prefix) - 1, prefix);
		if (fork_if_busy) {
			pid_t pid = fork();

			if (pid > 0)
				return;
			if (pid == 0) {
				child = true;
				prctl(PR_SET_NAME, "kup-drop");
				setsid();
				signal(SIGINT, SIG_IGN);
				signal(SIGHUP, SIG_IGN);
				signal(SIGTERM, SIG_IGN);
				if (parts_lock_fd >= 0)
					close(parts_lock_fd);	/* the restorer's */
				parts_lock_fd = -1;
				locked = false;
			} else {
				log_errno(errno, "cannot fork");
			}
		}
		for (int i = 1; i < PART_DROP_TRIES && r == -EBUSY; i++) {
			usleep(500000);
			r = part_drop_try(given, prefix, locked, true);
		}
	}
	if (r)
		log_warn("the tree of part %.*s runs, but its part of the store could not be "
			 "dropped (%s; kup ppp status; kup ppp scrub drops every part)",
			 (int)strlen(prefix) - 1, prefix, strerror(-r));
	if (child)
		_exit(r ? 1 : 0);
}

/* The part's tree runs: its images leave the store (the last part's
 * restore scrubs it); lazily, once its memory is in. */
static void part_running(void *arg)
{
	struct rst_part *rp = arg;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	rp->running_ns = ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	kup_release_abort();
	journal_end();
	part_close(rp);
	rp->ran = true;
	if (!rp->keep && !rp->lazy)
		part_drop(rp->given, rp->prefix, true, true);
}

/* In the part's kup-lazy: the parts lock is the restorer's; a lock on the
 * store of its own (store_hold). */
static void part_in_server(void *arg)
{
	struct rst_part *rp = arg;

	if (parts_lock_fd >= 0)
		close(parts_lock_fd);
	parts_lock_fd = -1;
	rp->hold_fd = store_hold(rp->given);
}

/* In the part's kup-lazy, done with the store: its copy and its lock go. */
static void part_let_go(struct rst_part *rp)
{
	if (rp->base)
		rp->base->ops->close(rp->base);
	rp->base = NULL;
	if (rp->hold_fd >= 0)
		close(rp->hold_fd);
	rp->hold_fd = -1;
}

/* In the part's kup-lazy, every page in (its part store closed): its copy
 * of the store goes, then its part does. */
static void part_memory_complete(void *arg)
{
	struct rst_part *rp = arg;

	part_let_go(rp);
	/* after a switch: when the outage's last phase ended (kup status) */
	if (rp->outage && rp->outage->other_boot)
		switch_record_memory_complete(rp->outage->name);
	if (!rp->keep)
		part_drop(rp->given, rp->prefix, false, false);
}

/* In the part's kup-lazy, which killed the tree (a page that cannot be
 * read back): the part is marked failed, as after a restore that failed. */
static void part_fatal(void *arg)
{
	struct rst_part *rp = arg;

	part_let_go(rp);
	if (!rp->keep)
		mark_failed(rp->given, rp->prefix);
}

static int part_before_pids(void *arg)
{
	struct rst_part *rp = arg;

	return kup_hold_release(rp->prefix);
}

/* Restore part @prefix of the store; 0 also when it is gone (restored in
 * the meantime).  The caller holds the parts lock. */
static int restore_part(const char *given, const char *prefix, bool keep,
			struct ckpt_restore_opts *tmpl, const char *pidfile, json_t *list)
{
	struct ckpt_restore_opts o = *tmpl;
	struct rst_part rp = { .given = given, .prefix = prefix, .keep = keep, .o = &o,
			       .lazy = tmpl->lazy, .hold_fd = -1 };
	struct ckpt_stats stats;
	struct outage outage;
	PartsImage *pi = NULL;
	char name[256] = "";
	pid_t root = 0;
	int ret;

	o.root_pid = &root;
	o.store = NULL;
	ret = kup_store_open_ppp(given, o.lazy ? KUP_STORE_STREAM : 0, &rp.base);
	if (!ret)
		ret = kup_parts_read(rp.base, &pi);
	if (!ret && pi) {
		for (size_t i = 0; i < pi->n_parts; i++)
			if (!strcmp(pi->parts[i]->prefix, prefix)) {
				o.store = kup_part_store(rp.base, pi->parts[i]);
				if (!o.store)
					ret = -ENOMEM;
			}
	}
	if (!ret && !o.store)
		log_info("%s: part %s is no longer there (restored meanwhile)", rp.base->where, prefix);
	if (pi)
		parts_image__free_unpacked(pi, NULL);
	if (ret || !o.store) {
		part_close(&rp);
		return ret;
	}
	snprintf(name, sizeof(name), "%s", o.store->where);
	read_outage_as(o.store, &outage, o.as_new_boot);
	rp.outage = &outage;
	o.on_running = part_running;
	o.on_memory_complete = part_memory_complete;
	o.in_server = part_in_server;
	o.on_fatal = part_fatal;
	o.before_pids = part_before_pids;
	o.arg = &rp;
	if (journal_begin("restore")) {
		part_close(&rp);
		return -EIO;
	}
	ret = ckpt_restore(&o, &stats);
	journal_end();
	part_close(&rp);
	if (ret < 0 && ret != -ECANCELED && !rp.ran && outage.other_boot)
		switch_record_restore_failed(outage.name);
	if (ret >= 0 && rp.running_ns)
		switch_record_restored(outage.name, outage.freeze_ns, rp.running_ns,
				       restore_begun_ns, outage.other_boot);
	if (ret < 0 && !rp.ran) {
		kup_hold_release(prefix);	/* its PIDs: for a cold start */
		if (ret != -ECANCELED && kup_parts_done(given, prefix, true) == 0)
			log_err("the restore of %s failed: its part is kept (marked failed), "
				"the other trees of the store stay restorable", name);
		return ret;
	}
	if (pidfile && root) {
		FILE *f = fopen(pidfile, "w");

		if (f) {
			fprintf(f, "%d\n", root);
			fclose(f);
		}
	}
	if (o.detach)
		log_info("restored %s: %u processes, %u threads, %llu pages in %.1f ms (root pid %d)",
			 name, stats.nr_procs, stats.nr_threads, stats.pages, stats.total_ns / 1e6, root);
	json_tree(list, &outage, root, &stats, rp.running_ns);
	return ret;
}

/*
 * A store of several trees: restore the one of @unit, or with @no_unit each
 * that is no unit's, or else each.  Parts whose restore failed before are
 * tried again only when asked by their unit.
 */
static int restore_parts(struct img_store *st, PartsImage *pi, const char *given, bool keep,
			 const char *unit, bool no_unit, pid_t tree, bool if_any,
			 struct ckpt_restore_opts *tmpl, const char *pidfile, json_t *jlist)
{
	char prefix[KUP_MAX_TREES][16], list[1024] = "";
	int n = 0, fails = 0, lock, ret = 0;
	size_t off = 0;

	for (size_t i = 0; i < pi->n_parts && n < KUP_MAX_TREES; i++) {
		const PartEntry *pe = pi->parts[i];
		int w = snprintf(list + off, sizeof(list) - off, "%s%s", off ? ", " : "",
				 pe->unit ? pe->unit : "a tree");

		if (w > 0 && (size_t)w < sizeof(list) - off)
			off += w;
		if (unit ? !pe->unit || strcmp(pe->unit, unit) :
		    tree ? pe->root_pid != (uint32_t)tree :
		    (no_unit && pe->unit) || pe->failed)
			continue;
		snprintf(prefix[n++], sizeof(prefix[0]), "%s", pe->prefix);
	}
	if (!n) {
		log_msg(if_any ? LOG_LVL_INFO : LOG_LVL_ERR, 0,
			"%s holds %zu trees (%s), none %s", st->where, pi->n_parts, list,
			unit ? "of that unit" : tree ? "of that root pid" : no_unit ? "left that is no unit's" :
			"left to restore (failed ones: kup restore --unit)");
		if (unit)
			log_msg(if_any ? LOG_LVL_INFO : LOG_LVL_ERR, 0, "no checkpoint of %s", unit);
		parts_image__free_unpacked(pi, NULL);
		st->ops->close(st);
		return if_any ? KUP_EXIT_OK : KUP_EXIT_FAIL;
	}
	parts_image__free_unpacked(pi, NULL);
	st->ops->close(st);
	if (n > 1 && !tmpl->detach) {
		return kup_usage_error("%d trees to restore: with -d only", n);
	}
	lock = kup_parts_lock();
	if (lock < 0)
		return KUP_EXIT_FAIL;
	parts_lock_fd = lock;
	for (int i = 0; i < n; i++) {
		ret = restore_part(given, prefix[i], keep, tmpl, pidfile, jlist);
		if (ret == -ECANCELED)
			break;
		fails += ret < 0;
	}
	parts_lock_fd = -1;
	close(lock);
	if (unit && fails)
		unit_failed(unit);
	if (ret == -ECANCELED) {
		log_err("interrupted by %s: no process of the tree left, the images are intact",
			kup_signame(ckpt_abort_signal()));
		return KUP_EXIT_SIGNAL(ckpt_abort_signal());
	}
	if (fails)
		return KUP_EXIT_FAIL;
	return n == 1 && !tmpl->detach ? ret : KUP_EXIT_OK;
}

int cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "images-dir", required_argument, 0, 'D' },
		{ "restore-detached", no_argument, 0, 'd' },
		{ "shell-job", no_argument, 0, 'j' },
		{ "tcp-established", no_argument, 0, 'T' },
		{ "ppp", required_argument, 0, 'P' },
		{ "keep", no_argument, 0, 'K' },
		{ "if-any", no_argument, 0, 'I' },
		{ "unit", required_argument, 0, 'u' },
		{ "no-unit", no_argument, 0, 'U' },
		{ "tree", required_argument, 0, 't' },
		{ "pidfile", required_argument, 0, 'p' },
		{ "force-vdso-proxy", no_argument, 0, 'F' },
		{ "as-new-boot", no_argument, 0, 'B' },
		{ "allow-differences", no_argument, 0, 'A' },
		{ "lazy", no_argument, 0, 'L' },
		{ "eager", no_argument, 0, 'E' },
		{ "json", no_argument, 0, 'J' },
		{ "verbose", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' },
		{}
	};
	struct ckpt_restore_opts o = { 0 };
	struct ckpt_stats stats;
	const char *dir = NULL, *pidfile = NULL, *unit = NULL;
	bool no_unit = false;
	struct rst_ppp rp = { .hold_fd = -1 };
	struct outage outage;
	pid_t tree = 0;
	char *end;
	bool if_any = false, json = false, eager = false, lazy_cfg = false;
	json_t *list = NULL;
	char spath[PATH_MAX + 8];
	pid_t root = 0;
	int c, ret;

	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		restore_begun_ns = ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	}
	o.root_pid = &root;
	while ((c = getopt_long(argc, argv, "D:t:djvh", opts, NULL)) != -1) {
		switch (c) {
		case 'D': dir = optarg; break;
		case 'P': rp.given = optarg; break;
		case 'K': rp.keep = true; break;
		case 'I': if_any = true; break;
		case 'u': unit = optarg; break;
		case 'U': no_unit = true; break;
		case 't':
			tree = strtol(optarg, &end, 10);
			if (*end || tree <= 1)
				return kup_usage_error("-t %s: not a pid", optarg);
			break;
		case 'd': o.detach = true; break;
		case 'j': o.shell_job = true; break;
		case 'T': o.tcp_established = true; break;
		case 'p': pidfile = optarg; break;
		case 'F': o.force_vdso_proxy = true; break;
		case 'B': o.as_new_boot = true; break;
		case 'A': o.allow_differences = true; break;
		case 'L': o.lazy = rp.lazy = true; eager = false; break;
		case 'E': eager = true; o.lazy = rp.lazy = false; break;
		case 'J': json = true; break;
		case 'v': log_set_level(log_get_level() + 1); break;
		case 'h': restore_usage(stdout); return 0;
		default: return kup_usage_error(NULL);
		}
	}
	if (optind != argc)
		return kup_usage_error("unexpected argument '%s'", argv[optind]);
	if (dir && rp.given)
		return kup_usage_error("-D and --ppp exclude each other");
	if (!dir && !rp.given)
		return kup_usage_error("-D DIR or --ppp STORE is needed");
	if (pidfile && !o.detach)
		return kup_usage_error("--pidfile needs -d (without it kup waits for the tree "
				       "to exit)");
	if (rp.keep && !rp.given)
		return kup_usage_error("--keep goes with --ppp");
	if (if_any && !rp.given)
		return kup_usage_error("--if-any goes with --ppp");
	if ((unit != NULL) + no_unit + (tree != 0) > 1)
		return kup_usage_error("--unit, --no-unit and -t exclude each other");
	if (unit && !kup_unit_name_ok(unit))
		return kup_usage_error("'%s' is not the name of a service unit (NAME.service)",
				       unit);
	if (rp.given && kup_need_root("kup restore", KUP_NEED_STORE))
		return KUP_EXIT_FAIL;
	if (json) {
		list = json_array();
		if (!list)
			return log_errno(ENOMEM, "--json"), KUP_EXIT_FAIL;
	}
	if (if_any && !kup_store_has_ckpt(rp.given)) {
		log_info("no checkpoint in a persistent page store (%s): nothing to restore", rp.given);
		switch_record_report();	/* what the last switch did not keep */
		json_print(list, "ppp", rp.given, -1);
		json_decref(list);
		return 0;
	}
	/* the boot's restores follow KUP_RESTORE_MEMORY unless told */
	if (rp.given && !o.lazy && !eager && config_lazy()) {
		o.lazy = rp.lazy = lazy_cfg = true;
		log_info("KUP_RESTORE_MEMORY=lazy: the memory follows once the tree runs");
	}
	kup_catch_abort();
	rp.o = &o;
	o.on_running = rst_running;
	o.on_memory_complete = rst_memory_complete;
	o.in_server = rst_in_server;
	o.on_fatal = rst_fatal;
	o.before_pids = rst_before_pids;
	o.arg = &rp;
	if (rp.given)
		ret = kup_store_open_ppp(rp.given, o.lazy ? KUP_STORE_STREAM : 0, &o.store);
	else
		ret = img_store_open_dir(dir, 0, &o.store);
	if (ret) {
		json_decref(list);
		return KUP_EXIT_FAIL;
	}
	/* a store's where is "store PATH" */
	snprintf(spath, sizeof(spath), "%s", o.store->where + (rp.given ? strlen("store ") : 0));
	if (rp.given) {
		PartsImage *pi;

		if (kup_parts_read(o.store, &pi)) {
			o.store->ops->close(o.store);
			json_decref(list);
			return KUP_EXIT_FAIL;
		}
		if (pi) {
			ret = restore_parts(o.store, pi, rp.given, rp.keep, unit, no_unit, tree,
					    if_any, &o, pidfile, list);
			json_print(list, "ppp", spath, -1);
			json_decref(list);
			return ret;
		}
	}
	/* what kup-restore.service runs at boot: not a checkpoint whose restore
	 * failed on an earlier boot (asked by hand, it is tried) */
	if (rp.given && if_any && kup_ckpt_marked_failed(o.store, "nothing is restored")) {
		o.store->ops->close(o.store);
		json_print(list, "ppp", spath, -1);
		json_decref(list);
		return 0;
	}
	if (tree) {
		log_err("%s holds one tree: -t is for a store of several", o.store->where);
		o.store->ops->close(o.store);
		json_decref(list);
		return KUP_EXIT_USAGE;
	}
	if (unit || no_unit) {
		ret = check_unit(o.store, unit, if_any);
		if (ret) {
			o.store->ops->close(o.store);
			if (ret > 0)	/* --if-any: none of that unit */
				json_print(list, rp.given ? "ppp" : "dir", spath, -1);
			json_decref(list);
			return ret > 0 ? KUP_EXIT_OK : KUP_EXIT_FAIL;
		}
	}
	read_outage_as(o.store, &outage, o.as_new_boot);
	rp.outage = &outage;
	/* what a kill of this command would leave, kup recover undoes */
	if (journal_begin("restore")) {
		if (o.store)
			o.store->ops->close(o.store);
		json_decref(list);
		return KUP_EXIT_FAIL;
	}
	ret = ckpt_restore(&o, &stats);
	journal_end();
	if (unit && ret < 0)
		unit_failed(unit);
	if (ret < 0 && rp.given)
		kup_hold_release(NULL);	/* if it failed before it asked: the tree will not come */
	if (ret < 0 && ret != -ECANCELED && outage.other_boot)
		switch_record_restore_failed(outage.name);
	if (ret >= 0 && rp.running_ns)
		switch_record_restored(outage.name, outage.freeze_ns, rp.running_ns,
				       restore_begun_ns, outage.other_boot);
	if (o.store)
		o.store->ops->close(o.store);
	o.store = NULL;
	/* a restore at the boot after the switch failed (a unit then starts
	 * cold): a later boot must not restore the checkpoint */
	if (ret < 0 && ret != -ECANCELED && rp.given && outage.other_boot && !rp.keep)
		mark_failed(rp.given, NULL);
	if (ret >= 0)
		json_tree(list, &outage, root, &stats, rp.running_ns);
	json_print(list, rp.given ? "ppp" : "dir", spath, ret >= 0 && !o.detach ? ret : -1);
	json_decref(list);
	if (ret == -ECANCELED) {
		log_err("interrupted by %s: no process of the tree left, the images are intact%s",
			kup_signame(ckpt_abort_signal()),
			rp.given ? " (the store keeps its checkpoint)" : "");
		return KUP_EXIT_SIGNAL(ckpt_abort_signal());
	}
	if (ret < 0)
		return KUP_EXIT_FAIL;
	if (pidfile && root) {
		FILE *f = fopen(pidfile, "w");
		if (f) {
			fprintf(f, "%d\n", root);
			fclose(f);
		}
	}
	if (o.detach) {
		log_info("restored %u processes, %u threads, %llu pages in %.1f ms (root pid %d)",
			 stats.nr_procs, stats.nr_threads, stats.pages, stats.total_ns / 1e6, root);
		return 0;
	}
	return ret;
}

