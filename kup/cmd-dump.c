// SPDX-License-Identifier: GPL-2.0-or-later
/* kup dump: checkpoint a process tree. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"
#include "journal.h"
#include "json.h"
#include "kup.h"

static void dump_usage(FILE *f)
{
	fprintf(f,
		"Usage: kup dump (-t PID | --unit UNIT)... (-D DIR | --ppp STORE) [--leave-running]\n"
		"                [--shell-job] [--tcp-established] [--external-peers=MODE]\n"
		"                [--sysv-ipc LIST] [--pre-dump[=N]] [--json] [-v]\n"
		"       kup dump (-t PID | --unit UNIT)... --check [OPTIONS]\n\n"
		"Freeze the process tree rooted at PID (every descendant and thread), save it\n"
		"to image directory DIR (created if missing) or to the persistent page store\n"
		"STORE, then kill it, or let it go on with --leave-running.  On failure the\n"
		"tree is left running as it was (and a store keeps its previous checkpoint);\n"
		"so it is when SIGINT, SIGTERM or SIGHUP interrupt the dump, or when this\n"
		"command is killed (the work is done by a worker process, see kup(8)).\n"
		"Several -t and --unit dump several trees into one store (--ppp), as one\n"
		"checkpoint: all of them or none; each is restored on its own (kup restore\n"
		"--unit UNIT, or --no-unit for the -t ones).  They must not overlap nor\n"
		"share a pipe, a socket or shared memory.\n"
		"With --check nothing is dumped: what the dump would refuse that can be told\n"
		"while the trees run is said (exit 1), touching nothing.\n\n"
		"  -t, --tree PID         root of the tree to dump\n"
		"  -u, --unit UNIT        the systemd service UNIT: the tree of its main\n"
		"                         process, which must hold every process of the\n"
		"                         unit; its name is kept (kup restore --unit)\n"
		"  -D, --images-dir DIR   where to write the images\n"
		"      --ppp STORE        write them to a persistent page store instead: a\n"
		"                         device (/dev/pmem0), a file, or 'auto' (find it)\n"
		"  -R, --leave-running    let the tree continue after the dump\n"
		"  -j, --shell-job        the tree was started from a shell (its terminal,\n"
		"                         session and group come from outside)\n"
		"      --tcp-established  dump established TCP connections\n"
		"      --external-peers=MODE  connections to processes outside the tree\n"
		"                         (a unix socket to a client, a local TCP peer):\n"
		"                         'refuse' (the default) fails the dump naming them,\n"
		"                         'close' keeps them as closed by their peer (the\n"
		"                         service sees the client disconnect), a warning each\n"
		"      --sysv-ipc LIST    also keep these System V objects, which the tree\n"
		"                         does not attach or use: shm:ID,sem:ID,msg:ID\n"
		"      --pre-dump[=N]     copy the memory while the tree runs, then what it\n"
		"                         wrote meanwhile, at most N rounds (default %d), so\n"
		"                         that the frozen pass copies only the last changes\n"
		"      --json             at the end, one JSON object on stdout: the trees,\n"
		"                         processes, threads, pages, bytes, when the trees\n"
		"                         were frozen and for how long, the store\n"
		"      --check            only tell what the dump would refuse (no -D or\n"
		"                         --ppp needed): nothing is stopped or written\n"
		"  -v, --verbose          more messages\n", KUP_PRE_DUMP_ROUNDS);
}

/* --pre-dump[=N]: the rounds, or -1 (said why) */
int kup_parse_pre_dump(const char *arg)
{
	char *end;
	long n;

	if (!arg)
		return KUP_PRE_DUMP_ROUNDS;
	n = strtol(arg, &end, 10);
	if (*end || end == arg || n < 1 || n > 100) {
		kup_usage_error("--pre-dump: '%s' is not a number of rounds from 1 to 100", arg);
		return -1;
	}
	return n;
}

/* The summary of a dump that worked (--json, docs/kup-dump.8). */
static int print_json(const struct kup_tree *trees, int ntrees, const struct ckpt_stats *s,
		      const char *kind, const char *path, bool left_running)
{
	json_t *o = json_object(), *store = json_object(), *list = json_array();
	char at[64];

	for (int i = 0; i < ntrees; i++) {
		json_t *t = json_object();

		kup_json_set(t, "pid", json_integer(trees[i].pid));
		kup_json_set(t, "unit", kup_json_str(trees[i].unit));
		json_array_append_new(list, t);
	}
	kup_json_set(o, "trees", list);
	kup_json_set(o, "processes", json_integer(s->nr_procs));
	kup_json_set(o, "threads", json_integer(s->nr_threads));
	kup_json_set(o, "pages", kup_json_u64(s->pages));
	kup_json_set(o, "bytes", kup_json_u64(s->pages * (uint64_t)sysconf(_SC_PAGESIZE)));
	kup_json_set(o, "frozen_at_ns", kup_json_u64(s->freeze_realtime_ns));
	kup_json_set(o, "frozen_at", kup_json_str(kup_fmt_time(s->freeze_realtime_ns, at,
								sizeof(at))));
	kup_json_set(o, "frozen_ns", kup_json_u64(s->frozen_ns));
	if (s->pre_dump_ns) {	/* --pre-dump: the rounds, while the trees ran */
		kup_json_set(o, "pre_dump_ns", kup_json_u64(s->pre_dump_ns));
		kup_json_set(o, "pre_dump_rounds", json_integer(s->pre_dump_rounds));
		kup_json_set(o, "pre_dump_pages", kup_json_u64(s->pre_dump_pages));
		/* of "pages": those the frozen pass read (the rest from the copy) */
		kup_json_set(o, "frozen_pages_read",
			     kup_json_u64(s->pages - s->pages_from_pre_dump));
	}
	kup_json_set(o, "total_ns", kup_json_u64(s->total_ns));
	kup_json_set(o, "left_running", json_boolean(left_running));
	kup_json_set(store, "kind", json_string(kind));
	kup_json_set(store, "path", kup_json_str(path));
	kup_json_set(o, "store", store);
	return kup_json_print(stdout, o);
}

/* --check: the trees together, then each for what its dump would refuse. */
static int check_trees(const struct ckpt_dump_opts *o, struct kup_tree *trees, int ntrees,
		       bool extra)
{
	int fails = 0;

	if (extra)
		return kup_usage_error("--check takes the trees and the options of what they hold "
				       "(--shell-job, --tcp-established, --external-peers, "
				       "--sysv-ipc), nothing of a dump's output");
	for (int i = 0; i < ntrees; i++)
		if (trees[i].unit && kup_unit_main_pid(trees[i].unit, &trees[i].pid))
			return KUP_EXIT_FAIL;
	if (ntrees > 1 && kup_trees_check(trees, ntrees))
		return KUP_EXIT_FAIL;
	for (int i = 0; i < ntrees; i++) {
		char name[256];

		kup_tree_name(&trees[i], name, sizeof(name));
		if (kup_tree_check(&trees[i], o)) {
			log_err("%s cannot be kept", name);
			fails++;
		} else {
			log_info("%s: nothing found that the dump would refuse (what only a frozen "
				 "tree tells is checked by the dump)", name);
		}
	}
	return fails ? KUP_EXIT_FAIL : KUP_EXIT_OK;
}

int cmd_dump(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tree", required_argument, 0, 't' },
		{ "unit", required_argument, 0, 'u' },
		{ "images-dir", required_argument, 0, 'D' },
		{ "leave-running", no_argument, 0, 'R' },
		{ "shell-job", no_argument, 0, 'j' },
		{ "tcp-established", no_argument, 0, 'T' },
		{ "ppp", required_argument, 0, 'P' },
		{ "external-peers", required_argument, 0, 'E' },
		{ "sysv-ipc", required_argument, 0, 'I' },
		{ "pre-dump", optional_argument, 0, 'p' },
		{ "json", no_argument, 0, 'J' },
		{ "check", no_argument, 0, 'c' },
		{ "verbose", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' },
		{}
	};
	struct ckpt_dump_opts o = { 0 };
	struct kup_tree trees[KUP_MAX_TREES];
	struct ckpt_stats stats;
	unsigned long long begun_ns;
	struct timespec ts;
	int ntrees = 0;
	bool too_many = false, json = false, check = false;
	const char *dir = NULL, *ppp = NULL;
	char *end, *abs;
	int c, ret;

	while ((c = getopt_long(argc, argv, "t:u:D:Rjvh", opts, NULL)) != -1) {
		switch (c) {
		case 't':
		case 'u':
			if (ntrees == KUP_MAX_TREES) {
				too_many = true;
				break;
			}
			trees[ntrees].unit = c == 'u' ? optarg : NULL;
			trees[ntrees].pid = c == 't' ? strtol(optarg, &end, 10) : 0;
			if (c == 't' && (*end || trees[ntrees].pid <= 0))
				return kup_usage_error("-t %s: not a pid", optarg);
			ntrees++;
			break;
		case 'D': dir = optarg; break;
		case 'P': ppp = optarg; break;
		case 'R': o.leave_running = true; break;
		case 'j': o.shell_job = true; break;
		case 'T': o.tcp_established = true; break;
		case 'E':
			if (!strcmp(optarg, "close")) {
				o.ext_peers_close = true;
			} else if (!strcmp(optarg, "refuse")) {
				o.ext_peers_close = false;
			} else {
				return kup_usage_error("--external-peers: '%s' is neither 'close' nor "
						       "'refuse'", optarg);
			}
			break;
		case 'I': o.sysv_ipc = optarg; break;
		case 'p':
			o.pre_dump_rounds = kup_parse_pre_dump(optarg);
			if (o.pre_dump_rounds < 0)
				return KUP_EXIT_USAGE;
			break;
		case 'J': json = true; break;
		case 'c': check = true; break;
		case 'v': log_set_level(log_get_level() + 1); break;
		case 'h': dump_usage(stdout); return 0;
		default: return kup_usage_error(NULL);
		}
	}
	if (too_many)
		return kup_usage_error("at most %d trees at once", KUP_MAX_TREES);
	if (optind != argc)
		return kup_usage_error("unexpected argument '%s'", argv[optind]);
	if (!ntrees)
		return kup_usage_error("-t PID or --unit UNIT is needed");
	if (check)
		return check_trees(&o, trees, ntrees, dir || ppp || json || o.leave_running ||
				   o.pre_dump_rounds);
	if (dir && ppp)
		return kup_usage_error("-D and --ppp exclude each other");
	if (!dir && !ppp)
		return kup_usage_error("-D DIR or --ppp STORE is needed");
	if (ntrees > 1 && !ppp)
		return kup_usage_error("several trees go into a store (--ppp), not an image "
				       "directory");
	if (ntrees > 1 && o.sysv_ipc)
		return kup_usage_error("--sysv-ipc goes with one tree");
	if (ppp && kup_need_root("kup dump", KUP_NEED_STORE))
		return KUP_EXIT_FAIL;
	for (int i = 0; i < ntrees; i++)
		if (trees[i].unit && kup_unit_main_pid(trees[i].unit, &trees[i].pid))
			return KUP_EXIT_FAIL;
	/* several trees: together, then each (each is frozen until the last is
	 * dumped, so what one refuses is better found before the first freeze) */
	if (ntrees > 1 && kup_trees_check(trees, ntrees))
		return KUP_EXIT_FAIL;
	for (int i = 0; ntrees > 1 && i < ntrees; i++)
		if (kup_tree_check(&trees[i], &o))
			return KUP_EXIT_FAIL;
	o.pid = trees[0].pid;
	o.unit = trees[0].unit;
	/* from here on the worker does it all (kup/signals.c) */
	kup_start_worker();
	if (ppp)
		ret = kup_store_open_ppp(ppp, 1, &o.store);
	else
		ret = img_store_open_dir(dir, IMG_DIR_WRITE, &o.store);
	if (ret)
		return KUP_EXIT_FAIL;
	/* what a kill of this worker would leave, kup recover undoes */
	abs = realpath(ppp ? o.store->where : dir, NULL);
	if (journal_begin("dump") ||
	    (abs && journal_add("store %s %s", ppp ? "ppp" : "dir", abs)) ||
	    (o.leave_running && journal_add("leave-running"))) {
		o.store->ops->close(o.store);
		free(abs);
		return KUP_EXIT_FAIL;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	begun_ns = ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	if (ntrees > 1)
		ret = kup_dump_trees(&o, trees, ntrees, &stats);
	else
		ret = ckpt_dump(&o, &stats);
	journal_end();
	if (!ret && o.pre_dump_rounds && stats.pre_dump_ns) {
		/* the rounds end where the freeze begins */
		unsigned long long done = begun_ns + stats.pre_dump_ns;

		if (stats.freeze_realtime_ns >= begun_ns && stats.freeze_realtime_ns < done)
			done = stats.freeze_realtime_ns;
		switch_record_pre_dump(begun_ns, done, stats.pre_dump_rounds, stats.pre_dump_pages,
				       stats.pages, stats.pages - stats.pages_from_pre_dump);
	}
	if (!ret) {
		char trees_s[32] = "", at[64];

		if (ntrees > 1)
			snprintf(trees_s, sizeof(trees_s), "%d trees: ", ntrees);
		log_info("dumped %s%u processes, %u threads, %llu pages in %.1f ms to %s",
			 trees_s, stats.nr_procs, stats.nr_threads, stats.pages, stats.total_ns / 1e6,
			 o.store->where);
		if (o.pre_dump_rounds)
			log_info("pre-dump %.1f ms while the tree%s ran (%u round%s, %llu pages "
				 "copied), then frozen %.1f ms (%llu of %llu pages read)",
				 stats.pre_dump_ns / 1e6, ntrees > 1 ? "s" : "", stats.pre_dump_rounds,
				 stats.pre_dump_rounds == 1 ? "" : "s", stats.pre_dump_pages,
				 stats.frozen_ns / 1e6, stats.pages - stats.pages_from_pre_dump,
				 stats.pages);
		if (ntrees == 1)	/* several: each said when it was dumped (parts.c) */
			log_info("%s%s%d: frozen at %s", o.unit ? o.unit : "", o.unit ? ", pid " : "pid ",
				 o.pid, kup_fmt_time(stats.freeze_realtime_ns, at, sizeof(at)));
		if (ckpt_abort_signal())
			log_info("%s came after the commit: the dump was complete",
				 kup_signame(ckpt_abort_signal()));
		/* a store's where is "store PATH" */
		if (json && print_json(trees, ntrees, &stats, ppp ? "ppp" : "dir",
				       ppp ? o.store->where + strlen("store ") : abs ? abs : dir,
				       o.leave_running))
			log_warn("the dump is complete, but its summary could not be written "
				 "to stdout");
	}
	free(abs);
	o.store->ops->close(o.store);
	if (ret == -ECANCELED) {
		int sig = ckpt_abort_signal();

		char who[64];

		if (ntrees > 1)
			snprintf(who, sizeof(who), "the %d trees", ntrees);
		else
			snprintf(who, sizeof(who), "pid %d's tree", o.pid);
		log_err("interrupted by %s%s: %s left running, nothing written%s",
			kup_signame(sig), kup_command_died() ? " (the kup command died)" : "",
			who, ppp ? " (the store keeps its previous checkpoint)" : "");
		return KUP_EXIT_SIGNAL(sig);
	}
	return ret ? KUP_EXIT_FAIL : 0;
}

