// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kup switch: update the kernel under a running service.
 *
 *   1. load the new kernel (kup kexec load: kexec_file_load, the running
 *      command line with the store's memmap= reservation) -- first, so that a
 *      kernel that does not load leaves the service untouched;
 *   2. dump the tree into the persistent page store (kup dump --ppp); with
 *      several trees (units, -t PIDs), all of them into one commit of the
 *      store (kup/parts.c), each restored on its own on the new boot;
 *   3. sync and kexec into the new kernel.
 * The new kernel is loaded with panic=SECONDS (--panic, KUP_PANIC, 10 by
 * default): if it panics on its way up, it reboots through the firmware
 * into the boot loader's default entry, the old kernel, whose initrd's kup
 * hold and the units' starts restore the kept trees from the store there
 * (docs/design.md, "Rollback").  If the kexec itself fails after the dump
 * (the fast path: reboot() returns), the trees are restored from the store
 * on the running kernel and the command says so.
 * --from-store dumps nothing: it takes the trees already in the store --
 * those whose restore failed on this boot (their units started cold) -- to
 * KERNEL, the old one typically: the store is verified (every extent's
 * checksum), the failed marks of its parts are cleared, and the system goes
 * down to KERNEL; there the units' starts restore them as after any switch.
 * With systemd as init (and without --fast or --no-exec), 2 and 3 are a
 * clean switch instead (kup/switch-shutdown.c): the system goes down as
 * `systemctl kexec` takes it and the tree is dumped late in that shutdown.
 *
 * On the new boot, kup-restore.service (systemd-units/) runs
 * `kup restore --ppp auto -d --if-any --tcp-established` early, before the
 * normal services (connections are in the store only if kup switch was given
 * --tcp-established).
 * A failure at 1 or 2 unloads the kernel and leaves the tree running.
 * Without -t or --unit, the units of KUP_UNITS in the configuration file
 * (/etc/default/kup, kup/config.c) are kept; the file also gives the store,
 * --tcp-established and --external-peers, which the command line overrides.
 * Everything that can be checked before the kernel is loaded is: each unit
 * runs and is the tree of its main process, and the trees do not overlap
 * nor share anything (kup/trees.c).
 *
 * Like kup dump, the work is done by a worker process (kup/signals.c):
 * SIGINT, SIGTERM or SIGHUP, or the death of the command, abort it.  The
 * step running gets the signal too (each step is a child that also gets
 * SIGTERM if the worker dies): an interrupted load or dump leaves the tree
 * running, and the kernel is unloaded; a signal that comes once the dump is
 * complete (the tree is in the store, and gone) brings the tree back from
 * the store instead of switching.  Past the kexec there is nothing to undo.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"
#include "ckpt-summary.h"
#include "image.h"
#include "journal.h"
#include "kup-image.pb-c.h"
#include "kup.h"

static void switch_usage(FILE *f)
{
	fprintf(f,
		"Usage: kup switch KERNEL [-t PID | --unit UNIT]... [--ppp STORE]\n"
		"                  [--initrd FILE | --no-initrd] [--append ARGS] [--panic SECONDS]\n"
		"                  [--tcp-established | --no-tcp-established] [--external-peers=MODE]\n"
		"                  [--pre-dump[=N] | --no-pre-dump] [--config FILE] [--no-exec | --fast]\n"
		"                  [--from-store] [-v]\n\n"
		"Switch to KERNEL (a path, or a version: /boot/vmlinuz-VERSION) keeping the\n"
		"process tree rooted at PID: load KERNEL with kexec_file_load, dump the tree\n"
		"into the persistent page store, kexec.  On the new kernel,\n"
		"kup-restore.service restores the tree from the store before the normal\n"
		"services start.  If loading or dumping fails, the tree keeps running and\n"
		"no kernel stays loaded; so it is when SIGINT, SIGTERM or SIGHUP interrupt\n"
		"the switch or this command is killed (see kup(8), SIGNALS).\n"
		"Several -t and --unit keep several trees, dumped together into the store\n"
		"(all or none); each unit's start restores its own on the new boot.\n"
		"Without -t or --unit: the units of KUP_UNITS in /etc/default/kup (the\n"
		"configuration file, kup(8) CONFIGURATION; its settings are the defaults\n"
		"of the options below).\n\n"
		"  -t, --tree PID         root of the tree to keep\n"
		"  -u, --unit UNIT        the systemd service to keep (the tree of its main\n"
		"                         process); on the new boot the unit's start\n"
		"                         restores it, or starts it cold if that fails\n"
		"      --ppp STORE        the store: a device (default: auto, the pmem\n"
		"                         device of a memmap=SIZE!START reservation)\n"
		"      --initrd FILE      initrd of KERNEL (default /boot/initrd.img-VERSION)\n"
		"      --no-initrd        load without one\n"
		"      --append ARGS      more kernel parameters\n"
		"      --panic SECONDS    the new kernel reboots SECONDS after a panic (default\n"
		"                         10, KUP_PANIC in the file; 0: it stays): the\n"
		"                         firmware's default entry, the old kernel, then\n"
		"                         restores the kept trees from the store\n"
		"      --tcp-established  keep established TCP connections\n"
		"      --no-tcp-established  do not (KUP_TCP_ESTABLISHED=yes in the file)\n"
		"      --external-peers=MODE  connections to processes that are not kept\n"
		"                         (gone after the switch anyway): 'close' (the\n"
		"                         default) keeps them as closed by their peer, a\n"
		"                         warning each; 'refuse' fails the dump (kup dump)\n"
		"      --pre-dump[=N]     copy the memory while the trees run, at most N\n"
		"                         rounds, so that they are frozen shorter (kup dump)\n"
		"      --no-pre-dump      do not (KUP_PRE_DUMP in the file)\n"
		"      --config FILE      the configuration file (default /etc/default/kup)\n"
		"      --no-exec          stop after the dump (the kernel stays loaded:\n"
		"                         `kup kexec exec` switches)\n"
		"      --fast, --no-shutdown  dump now and kexec at once, without the\n"
		"                         clean shutdown (`systemctl kexec`) that kup\n"
		"                         switch goes through when systemd is init\n"
		"      --from-store       dump nothing: take the trees already in the store\n"
		"                         (their restore failed on this boot, their units\n"
		"                         started cold) to KERNEL, e.g. back to the old\n"
		"                         kernel; the store is verified first\n"
		"  -v, --verbose          more messages\n");
}

/*
 * Run `kup ARGS...` (this binary) and return its exit status.  It gets
 * SIGTERM if we die, and with @forward the signal of an abort request.
 */
static int run_self_fwd(char *const argv[], bool forward)
{
	const struct timespec tick = { 0, 20 * 1000 * 1000 };
	pid_t parent = getpid(), pid, r;
	bool told = false;
	int status;

	pid = fork();
	if (pid < 0)
		return log_errno(errno, "cannot fork"), KUP_EXIT_FAIL;
	if (!pid) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(KUP_EXIT_FAIL);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return KUP_EXIT_FAIL;
		if (forward && ckpt_abort_signal() && !told) {
			kill(pid, ckpt_abort_signal());
			told = true;
		}
		nanosleep(&tick, NULL);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : KUP_EXIT_FAIL;
}

static int run_self(char *const argv[])
{
	return run_self_fwd(argv, true);
}

/* Forget the loaded kernel (not to be interrupted). */
static void unload(void)
{
	char *uargv[] = { "kup", "kexec", "unload", NULL };

	run_self_fwd(uargv, false);
}

/* The interrupted switch's message and status. */
static int interrupted(const char *tree, const char *kernel, const char *what)
{
	log_err("interrupted by %s%s: %s %s; %s was unloaded",
		kup_signame(ckpt_abort_signal()), kup_command_died() ? " (the kup command died)" : "",
		tree, what, kernel);
	return KUP_EXIT_SIGNAL(ckpt_abort_signal());
}

/* "A", "A and B", "A, B and C" (units, or the trees of pids) */
static void trees_what(const struct kup_tree *t, int n, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = 0;
	for (int i = 0; i < n && off < len; i++) {
		char name[256];
		int w;

		if (t[i].unit)
			snprintf(name, sizeof(name), "%s", t[i].unit);
		else
			snprintf(name, sizeof(name), "%sthe tree of pid %d", i ? "" : "", t[i].pid);
		w = snprintf(buf + off, len - off, "%s%s", !i ? "" : i == n - 1 ? " and " : ", ", name);
		off += w > 0 ? (size_t)w : 0;
	}
}

/*
 * A new kernel that does not come up falls back to the running one (panic=,
 * the firmware's default entry): there the initrd's kup hold names the kept
 * units for their starts to restore them.  Without the hook they start cold.
 */
static void check_rollback_initrd(const char *kernel, bool units)
{
	char path[PATH_MAX], when[96];
	struct utsname u;

	if (uname(&u))
		return;
	snprintf(path, sizeof(path), "/boot/initrd.img-%s", u.release);
	if (access(path, F_OK))
		return;		/* another layout: cannot tell */
	if (kup_initrd_has_hook(path) == 0)
		log_warn("%s carries no kup hook: if %s does not come up and the machine falls "
			 "back to %s, %s there (update-initramfs -u -k %s, or dracut --force --kver %s, "
			 "adds the hook)", path, kernel, u.release, units ? "the kept units start cold" :
			 "early processes may take the kept trees' PIDs", u.release, u.release);
	else if (kup_initrd_older(path, when, sizeof(when)))
		log_warn("%s is older than this kup (%s): if %s does not come up and the machine "
			 "falls back to %s, the kup it carries may not read the store (update-initramfs "
			 "-u -k %s, or dracut --force --kver %s)", path, when, kernel, u.release,
			 u.release, u.release);
}

/* "A", "A and B": what the store holds (units, trees of pids); how many
 * trees, or -errno. */
static int store_trees(const char *store, char *buf, size_t len)
{
	struct img_store *st;
	PartsImage *pi = NULL;
	size_t off = 0;
	int r = kup_store_open_ppp(store, 0, &st);

	buf[0] = 0;
	if (r)
		return r;
	r = kup_parts_read(st, &pi);
	if (!r && pi) {
		for (size_t i = 0; i < pi->n_parts && off < len; i++) {
			int w = pi->parts[i]->unit ?
				snprintf(buf + off, len - off, "%s%s", !i ? "" :
					 i == pi->n_parts - 1 ? " and " : ", ", pi->parts[i]->unit) :
				snprintf(buf + off, len - off, "%sthe tree of pid %u", !i ? "" :
					 i == pi->n_parts - 1 ? " and " : ", ", pi->parts[i]->root_pid);
			off += w > 0 ? (size_t)w : 0;
		}
		r = (int)pi->n_parts;
		parts_image__free_unpacked(pi, NULL);
	} else if (!r) {
		struct ckpt_summary sum;

		r = ckpt_summary_read(st, &sum);
		if (r == -ENOENT)
			log_err("%s: no complete checkpoint (inventory.img is missing)", st->where);
		if (!r) {
			if (sum.unit)
				snprintf(buf, len, "%s", sum.unit);
			else
				snprintf(buf, len, "the tree of pid %u", sum.root_pid);
			ckpt_summary_free(&sum);
			r = 1;
		}
	}
	st->ops->close(st);
	return r;
}

/* The switch's options for `kup kexec load`. */
struct kload {
	const char *kernel, *initrd, *panic, *append;
	bool no_initrd;
};

/*
 * Step 1 of a switch: `kup kexec load` with @k's options, journalled first;
 * its argv is left in @largv (the clean switch's shutdown loads it again).
 * 0: loaded; 1: interrupted (unloaded again); -1: not loaded (said).
 */
static int load_kernel(const struct kload *k, char **largv)
{
	int n = 0, rc;

	largv[n++] = "kup";
	largv[n++] = "kexec";
	largv[n++] = "load";
	largv[n++] = (char *)k->kernel;
	if (k->initrd) {
		largv[n++] = "--initrd";
		largv[n++] = (char *)k->initrd;
	}
	if (k->no_initrd)
		largv[n++] = "--no-initrd";
	largv[n++] = "--panic";
	largv[n++] = (char *)k->panic;
	if (k->append) {
		largv[n++] = "--append";
		largv[n++] = (char *)k->append;
	}
	largv[n] = NULL;
	log_info("loading %s", k->kernel);
	if (journal_add("kexec-loaded"))
		return -1;
	rc = run_self(largv);
	if (ckpt_abort_signal()) {
		unload();
		return 1;
	}
	if (rc) {
		log_err("%s could not be loaded: nothing was changed", k->kernel);
		return -1;
	}
	return 0;
}

/*
 * kup switch KERNEL --from-store: the trees the store holds (a restore
 * failed here, or was never tried) go to KERNEL; nothing is dumped.  The
 * services that run here (their units' cold starts) stop with the system.
 */
static int switch_from_store(const struct kload *k, const char *store, char **largv,
			     bool no_exec, bool fast)
{
	const char *kernel = k->kernel;
	char what[1024], *vargv[5], *uargv[4];
	const char *stay;
	int n = 0, rc;

	if (!kup_store_has_ckpt(store)) {
		log_err("the store (%s) holds no checkpoint: nothing to take to %s", store, kernel);
		return KUP_EXIT_FAIL;
	}
	rc = store_trees(store, what, sizeof(what));
	if (rc < 0) {
		log_err("the checkpoint in the store (%s) cannot be read: nothing was changed", store);
		return KUP_EXIT_FAIL;
	}
	stay = rc > 1 ? "stay" : "stays";
	/* every extent of every blob, before anything changes */
	vargv[n++] = "kup";
	vargv[n++] = "ppp";
	vargv[n++] = "verify";
	if (strcmp(store, "auto"))
		vargv[n++] = (char *)store;
	vargv[n] = NULL;
	log_info("verifying the store: %s", what);
	if (run_self_fwd(vargv, false)) {
		log_err("the store is damaged (see above): %s cannot be taken to %s; nothing was "
			"changed", what, kernel);
		return KUP_EXIT_FAIL;
	}
	kup_start_worker();
	if (journal_begin("switch"))
		return KUP_EXIT_FAIL;
	atexit(journal_end);

	rc = load_kernel(k, largv);
	if (rc > 0)
		return interrupted(what, kernel, strcmp(stay, "stay") ? "stays in the store" : "stay in the store");
	if (rc < 0)
		return KUP_EXIT_FAIL;
	rc = kup_parts_retry(store);
	if (rc >= 0) {
		/* a store of one tree: its failed mark (kup_store_mark_failed) */
		int one = kup_store_mark_failed(store, false);

		rc = one < 0 ? one : rc + one;
	}
	if (rc < 0) {
		unload();
		log_err("%s %s in the store as %s; %s was unloaded", what, stay,
			strcmp(stay, "stay") ? "it is" : "they are", kernel);
		return KUP_EXIT_FAIL;
	}
	if (rc)
		log_info("%d tree%s whose restore failed will be tried again on %s", rc,
			 rc > 1 ? "s" : "", kernel);
	if (no_exec) {
		log_info("%s %s in the store and %s is loaded: `kup kexec exec` switches", what,
			 stay, kernel);
		return 0;
	}
	switch_record_begin(kernel);
	if (!fast && switch_shutdown_possible()) {
		log_info("taking %s to %s: the system goes down as `systemctl kexec` takes it "
			 "(their services running here stop with it)", what, kernel);
		journal_add("kexec-exec");
		if (!switch_shutdown_plain())
			return 0;
		unload();
		log_err("%s %s in the store; %s was unloaded", what, stay, kernel);
		return KUP_EXIT_FAIL;
	}
	log_info("taking %s to %s", what, kernel);
	uargv[0] = "kup";
	uargv[1] = "kexec";
	uargv[2] = "exec";
	uargv[3] = NULL;
	journal_add("kexec-exec");
	rc = run_self(uargv);
	unload();
	log_err("kexec failed: %s %s in the store; the services here run on; %s was unloaded",
		what, stay, kernel);
	return rc ? rc : KUP_EXIT_FAIL;
}

int cmd_switch(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tree", required_argument, 0, 't' },
		{ "unit", required_argument, 0, 'u' },
		{ "ppp", required_argument, 0, 'P' },
		{ "initrd", required_argument, 0, 'i' },
		{ "no-initrd", no_argument, 0, 'N' },
		{ "append", required_argument, 0, 'a' },
		{ "panic", required_argument, 0, 'p' },
		{ "tcp-established", no_argument, 0, 'T' },
		{ "no-tcp-established", no_argument, 0, 'X' },
		{ "external-peers", required_argument, 0, 'E' },
		{ "pre-dump", optional_argument, 0, 'D' },
		{ "no-pre-dump", no_argument, 0, 'Q' },
		{ "config", required_argument, 0, 'C' },
		{ "no-exec", no_argument, 0, 'n' },
		{ "fast", no_argument, 0, 'F' },
		{ "no-shutdown", no_argument, 0, 'F' },
		{ "from-store", no_argument, 0, 'S' },
		{ "verbose", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' },
		{}
	};
	const char *kernel, *initrd = NULL, *append = NULL, *store = NULL, *config = NULL;
	const char *peers = NULL, *panic = NULL;
	char what[1024], *end, panic_buf[24];
	bool no_initrd = false, no_exec = false, has_pid_tree = false, has_unit = false, fast = false;
	bool from_store = false;
	int tcp = -1, pre_dump = -1;
	char pre_dump_arg[32];
	struct kup_tree trees[KUP_MAX_TREES];
	struct kup_config cfg;
	char *largv[16], *dargv[16 + 2 * KUP_MAX_TREES], *uargv[4];
	struct kload kl;
	int c, n = 0, ntrees = 0, rc;

	while ((c = getopt_long(argc, argv, "t:u:vh", opts, NULL)) != -1) {
		switch (c) {
		case 't':
		case 'u':
			if (ntrees == KUP_MAX_TREES) {
				return kup_usage_error("at most %d trees at once", KUP_MAX_TREES);
			}
			trees[ntrees].unit = c == 'u' ? optarg : NULL;
			trees[ntrees].pid = c == 't' ? strtol(optarg, &end, 10) : 0;
			if (c == 't' && (*end || trees[ntrees].pid <= 0)) {
				return kup_usage_error("invalid pid '%s'", optarg);
			}
			ntrees++;
			break;
		case 'P': store = optarg; break;
		case 'i': initrd = optarg; break;
		case 'N': no_initrd = true; break;
		case 'a': append = optarg; break;
		case 'p': panic = optarg; break;
		case 'T': tcp = 1; break;
		case 'X': tcp = 0; break;
		case 'C': config = optarg; break;
		case 'D':
			pre_dump = kup_parse_pre_dump(optarg);
			if (pre_dump < 0)
				return KUP_EXIT_USAGE;
			break;
		case 'Q': pre_dump = 0; break;
		case 'E':
			if (!strcmp(optarg, "refuse")) {
				peers = "--external-peers=refuse";
			} else if (!strcmp(optarg, "close")) {
				peers = "--external-peers=close";
			} else {
				return kup_usage_error("--external-peers: '%s' is neither 'close' nor 'refuse'", optarg);
			}
			break;
		case 'n': no_exec = true; break;
		case 'F': fast = true; break;
		case 'S': from_store = true; break;
		case 'v': log_set_level(log_get_level() + 1); break;
		case 'h': switch_usage(stdout); return 0;
		default: return kup_usage_error(NULL);
		}
	}
	if (optind == argc)
		return kup_usage_error("KERNEL is needed (a path, or a version: "
				       "/boot/vmlinuz-VERSION)");
	if (optind + 1 != argc)
		return kup_usage_error("unexpected argument '%s'", argv[optind + 1]);
	if (initrd && no_initrd)
		return kup_usage_error("--initrd and --no-initrd exclude each other");
	kernel = argv[optind];
	/* the configuration file: the defaults of what the command line does not say */
	if (kup_config_load(config, &cfg)) {
		log_err("nothing was changed");
		return KUP_EXIT_USAGE;
	}
	if (from_store && ntrees)
		return kup_usage_error("--from-store takes the trees that are in the store: "
				       "no -t or --unit");
	if (!ntrees && !from_store) {
		for (int i = 0; i < cfg.nunits; i++)
			trees[ntrees++] = (struct kup_tree){ .unit = cfg.units[i] };
		if (!ntrees) {
			kup_config_free(&cfg);
			return kup_usage_error("nothing to keep: name a tree or a unit (-t PID, "
					       "--unit UNIT), or the units to keep by default in "
					       "%s (KUP_UNITS=\"UNIT...\")", cfg.path);
		}
		log_info("keeping %d unit%s named in %s (KUP_UNITS)", ntrees, ntrees > 1 ? "s" : "",
			 cfg.path);
	}
	if (!store)
		store = cfg.store ? cfg.store : "auto";
	if (tcp < 0)
		tcp = cfg.tcp > 0;
	if (pre_dump < 0)
		pre_dump = cfg.pre_dump > 0 ? cfg.pre_dump : 0;
	if (!peers)
		peers = cfg.ext_peers_close == 0 ? "--external-peers=refuse" : "--external-peers=close";
	if (!panic) {
		snprintf(panic_buf, sizeof(panic_buf), "%ld", cfg.panic >= 0 ? cfg.panic : 10L);
		panic = panic_buf;
	} else {
		long v;

		errno = 0;
		v = strtol(panic, &end, 10);
		if (errno || !*panic || *end || v < 0 || v > 86400)
			return kup_usage_error("--panic: '%s' is not a number of seconds (0..86400)",
					       panic);
	}
	/* cfg's strings stay allocated until the command exits */
	/* before anything is loaded (the dump checks it again) */
	for (int i = 0; i < ntrees; i++) {
		if (!trees[i].unit) {
			has_pid_tree = true;
			if (kill(trees[i].pid, 0) && errno == ESRCH) {
				log_err("pid %d: no such process: nothing was changed", trees[i].pid);
				return KUP_EXIT_FAIL;
			}
			continue;
		}
		has_unit = true;
		for (int j = 0; j < i; j++)
			if (trees[j].unit && !strcmp(trees[j].unit, trees[i].unit)) {
				return kup_usage_error("%s is named twice: nothing was changed", trees[i].unit);
			}
		if (kup_unit_main_pid(trees[i].unit, &trees[i].pid)) {
			log_err("%s cannot be kept: nothing was changed", trees[i].unit);
			return KUP_EXIT_FAIL;
		}
	}
	kl = (struct kload){ .kernel = kernel, .initrd = initrd, .panic = panic, .append = append,
			     .no_initrd = no_initrd };
	if (from_store)
		return switch_from_store(&kl, store, largv, no_exec, fast);
	/* together, then what each dump would refuse, told while the trees
	 * run (the dumps check it all again) */
	if (kup_trees_check(trees, ntrees)) {
		log_err("these trees cannot be kept together: nothing was changed");
		return KUP_EXIT_FAIL;
	}
	for (int i = 0; i < ntrees; i++) {
		struct ckpt_dump_opts dopts = { .tcp_established = tcp,
						.ext_peers_close = !strcmp(peers, "--external-peers=close") };

		if (kup_tree_check(&trees[i], &dopts)) {
			if (trees[i].unit)
				log_err("%s cannot be kept: nothing was changed", trees[i].unit);
			else
				log_err("the tree of pid %d cannot be kept: nothing was changed",
					trees[i].pid);
			return KUP_EXIT_FAIL;
		}
	}
	trees_what(trees, ntrees, what, sizeof(what));
	/* from here on the worker does it all (kup/signals.c) */
	kup_start_worker();
	/* killed before the kexec, kup recover unloads the kernel and brings
	 * a dumped tree back (the dump's own journal covers the tree) */
	if (journal_begin("switch") || (tcp && journal_add("tcp")))
		return KUP_EXIT_FAIL;
	atexit(journal_end);

	if (has_pid_tree && access("/etc/systemd/system/sysinit.target.wants/kup-restore.service", F_OK) &&
	    access("/run/systemd/system", F_OK) == 0)
		log_warn("kup-restore.service is not enabled: after the switch, restore the tree "
			 "with `kup restore --ppp %s -d` (systemctl enable kup-restore.service)", store);

	check_rollback_initrd(kernel, has_unit);
	if (kup_store_has_ckpt(store)) {
		char held[1024];

		if (store_trees(store, held, sizeof(held)) > 0)
			log_warn("the store holds %s, not restored (a restore that failed?): this "
				 "switch replaces it (kup switch KERNEL --from-store would take it)", held);
	}

	/* 1. the kernel first: nothing is touched if it does not load */
	rc = load_kernel(&kl, largv);
	if (rc > 0)
		return interrupted(what, kernel, "was not touched");
	if (rc < 0)
		return KUP_EXIT_FAIL;

	/* 2. the tree into the store */
	n = 0;
	dargv[n++] = "kup";
	dargv[n++] = "dump";
	for (int i = 0; i < ntrees; i++) {
		/* a unit by its name: kup dump checks it again and records it */
		dargv[n++] = trees[i].unit ? "--unit" : "-t";
		if (trees[i].unit)
			dargv[n++] = (char *)trees[i].unit;
		else if (asprintf(&dargv[n++], "%d", trees[i].pid) < 0)
			return KUP_EXIT_FAIL;
	}
	dargv[n++] = "--ppp";
	dargv[n++] = (char *)store;
	if (tcp)
		dargv[n++] = "--tcp-established";
	dargv[n++] = (char *)peers;
	if (pre_dump) {
		snprintf(pre_dump_arg, sizeof(pre_dump_arg), "--pre-dump=%d", pre_dump);
		dargv[n++] = pre_dump_arg;
	}
	dargv[n] = NULL;
	{
		/* one root stands for all: they are dumped (and killed) together */
		pid_t root = trees[0].pid;

		if (!no_exec && !fast && switch_shutdown_possible()) {
			char pidname[KUP_MAX_TREES][32];
			const char *units[KUP_MAX_TREES], *names[KUP_MAX_TREES];
			pid_t roots[KUP_MAX_TREES];
			struct switch_plan sp = { .kernel = kernel, .load_argv = largv,
						  .dump_argv = dargv, .nkeep = ntrees, .units = units,
						  .roots = roots, .names = names };

			for (int i = 0; i < ntrees; i++) {
				snprintf(pidname[i], sizeof(pidname[i]), "pid-%d", (int)trees[i].pid);
				units[i] = trees[i].unit;
				roots[i] = trees[i].pid;
				names[i] = trees[i].unit ? trees[i].unit : pidname[i];
			}
			rc = switch_shutdown(&sp);
			if (!rc)
				return 0;
			unload();
			if (rc == -ECANCELED || ckpt_abort_signal())
				return interrupted(what, kernel, "was not touched");
			log_err("the clean switch could not begin: %s keeps running, %s was unloaded",
				what, kernel);
			return KUP_EXIT_FAIL;
		}
		log_info("dumping %s into the store (%s)", what, store);
		switch_record_begin(kernel);
		if (journal_add("dumping %d %llu %s", (int)root, journal_start_time(root, root), store)) {
			unload();
			return KUP_EXIT_FAIL;
		}
	}
	/* the dump notes its pre-dump rounds in the record of the switch */
	setenv(KUP_SWITCH_DUMP_ENV, "1", 1);
	rc = run_self(dargv);
	unsetenv(KUP_SWITCH_DUMP_ENV);
	if (rc) {
		unload();
		if (ckpt_abort_signal())
			return interrupted(what, kernel, "keeps running");
		log_err("the dump failed: %s keeps running, %s was unloaded", what, kernel);
		return KUP_EXIT_FAIL;
	}
	switch_record_dump_done();
	if (no_exec) {
		log_info("%s %s in the store and %s is loaded: `kup kexec exec` switches", what,
			 ntrees > 1 ? "are" : "is", kernel);
		return 0;
	}
	if (ckpt_abort_signal()) {
		/* the dump was complete: the tree is in the store, not running */
		char *rargv[] = { "kup", "restore", "--ppp", (char *)store, "-d",
				  tcp ? "--tcp-established" : NULL, NULL };
		int sig = ckpt_abort_signal();

		/* the restore is not interrupted in turn */
		rc = run_self_fwd(rargv, false);
		unload();
		if (rc) {
			log_err("interrupted by %s after the dump; the tree could not be restored: "
				"`kup restore --ppp %s -d` brings it back; %s was unloaded",
				kup_signame(sig), store, kernel);
			return KUP_EXIT_FAIL;
		}
		return interrupted(what, kernel, "was restored from the store and runs");
	}

	/* 3. the switch */
	log_info("switching to %s", kernel);
	uargv[0] = "kup";
	uargv[1] = "kexec";
	uargv[2] = "exec";
	uargv[3] = NULL;
	journal_add("kexec-exec");
	rc = run_self(uargv);
	/* only reached if the kexec failed: the trees are safe in the store,
	 * and come back on the running kernel */
	{
		char *rargv[] = { "kup", "restore", "--ppp", (char *)store, "-d",
				  tcp ? "--tcp-established" : NULL, NULL };

		log_err("kexec failed: restoring %s from the store on the running kernel", what);
		n = run_self_fwd(rargv, false);
		unload();
		if (n)
			log_err("kexec failed, and not every tree could be restored on the running kernel "
				"(see above): `kup restore --ppp %s -d` brings back those left in the store; "
				"%s was unloaded", store, kernel);
		else
			log_err("kexec failed: %s %s restored on the running kernel and run%s%s; "
				"%s was unloaded", what, ntrees > 1 ? "were" : "was", ntrees > 1 ? "" : "s",
				has_unit ? " (a unit's processes now run outside their unit)" : "", kernel);
	}
	return rc ? rc : KUP_EXIT_FAIL;
}

