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
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"
#include "journal.h"
#include "kup.h"

static void switch_usage(FILE *f)
{
	fprintf(f,
		"Usage: kup switch KERNEL [-t PID | --unit UNIT]... [--ppp STORE]\n"
		"                  [--initrd FILE | --no-initrd] [--append ARGS]\n"
		"                  [--tcp-established | --no-tcp-established] [--external-peers=MODE]\n"
		"                  [--config FILE] [--no-exec | --fast] [-v]\n\n"
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
		"      --tcp-established  keep established TCP connections\n"
		"      --no-tcp-established  do not (KUP_TCP_ESTABLISHED=yes in the file)\n"
		"      --external-peers=MODE  connections to processes that are not kept\n"
		"                         (gone after the switch anyway): 'close' (the\n"
		"                         default) keeps them as closed by their peer, a\n"
		"                         warning each; 'refuse' fails the dump (kup dump)\n"
		"      --config FILE      the configuration file (default /etc/default/kup)\n"
		"      --no-exec          stop after the dump (the kernel stays loaded:\n"
		"                         `kup kexec exec` switches)\n"
		"      --fast, --no-shutdown  dump now and kexec at once, without the\n"
		"                         clean shutdown (`systemctl kexec`) that kup\n"
		"                         switch goes through when systemd is init\n"
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

static int cmd_switch(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tree", required_argument, 0, 't' },
		{ "unit", required_argument, 0, 'u' },
		{ "ppp", required_argument, 0, 'P' },
		{ "initrd", required_argument, 0, 'i' },
		{ "no-initrd", no_argument, 0, 'N' },
		{ "append", required_argument, 0, 'a' },
		{ "tcp-established", no_argument, 0, 'T' },
		{ "no-tcp-established", no_argument, 0, 'X' },
		{ "external-peers", required_argument, 0, 'E' },
		{ "config", required_argument, 0, 'C' },
		{ "no-exec", no_argument, 0, 'n' },
		{ "fast", no_argument, 0, 'F' },
		{ "no-shutdown", no_argument, 0, 'F' },
		{ "verbose", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' },
		{}
	};
	const char *kernel, *initrd = NULL, *append = NULL, *store = NULL, *config = NULL;
	const char *peers = NULL;
	char what[1024], *end;
	bool no_initrd = false, no_exec = false, has_pid_tree = false, fast = false;
	int tcp = -1;
	struct kup_tree trees[KUP_MAX_TREES];
	struct kup_config cfg;
	char *largv[16], *dargv[16 + 2 * KUP_MAX_TREES], *uargv[4];
	int c, n = 0, ntrees = 0, rc;

	log_set_prefix("kup switch");
	while ((c = getopt_long(argc, argv, "t:u:vh", opts, NULL)) != -1) {
		switch (c) {
		case 't':
		case 'u':
			if (ntrees == KUP_MAX_TREES) {
				log_err("at most %d trees at once", KUP_MAX_TREES);
				return KUP_EXIT_USAGE;
			}
			trees[ntrees].unit = c == 'u' ? optarg : NULL;
			trees[ntrees].pid = c == 't' ? strtol(optarg, &end, 10) : 0;
			if (c == 't' && (*end || trees[ntrees].pid <= 0)) {
				log_err("invalid pid '%s'", optarg);
				return KUP_EXIT_USAGE;
			}
			ntrees++;
			break;
		case 'P': store = optarg; break;
		case 'i': initrd = optarg; break;
		case 'N': no_initrd = true; break;
		case 'a': append = optarg; break;
		case 'T': tcp = 1; break;
		case 'X': tcp = 0; break;
		case 'C': config = optarg; break;
		case 'E':
			if (!strcmp(optarg, "refuse")) {
				peers = "--external-peers=refuse";
			} else if (!strcmp(optarg, "close")) {
				peers = "--external-peers=close";
			} else {
				log_err("--external-peers: '%s' is neither 'close' nor 'refuse'", optarg);
				return KUP_EXIT_USAGE;
			}
			break;
		case 'n': no_exec = true; break;
		case 'F': fast = true; break;
		case 'v': log_set_level(log_get_level() + 1); break;
		case 'h': switch_usage(stdout); return 0;
		default: switch_usage(stderr); return KUP_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc || (initrd && no_initrd)) {
		switch_usage(stderr);
		return KUP_EXIT_USAGE;
	}
	kernel = argv[optind];
	/* the configuration file: the defaults of what the command line does not say */
	if (kup_config_load(config, &cfg)) {
		log_err("nothing was changed");
		return KUP_EXIT_USAGE;
	}
	if (!ntrees) {
		for (int i = 0; i < cfg.nunits; i++)
			trees[ntrees++] = (struct kup_tree){ .unit = cfg.units[i] };
		if (!ntrees) {
			log_err("nothing to keep: name a tree or a unit (-t PID, --unit UNIT), or "
				"the units to keep by default in %s (KUP_UNITS=\"UNIT...\")", cfg.path);
			switch_usage(stderr);
			kup_config_free(&cfg);
			return KUP_EXIT_USAGE;
		}
		log_info("keeping %d unit%s named in %s (KUP_UNITS)", ntrees, ntrees > 1 ? "s" : "",
			 cfg.path);
	}
	if (!store)
		store = cfg.store ? cfg.store : "auto";
	if (tcp < 0)
		tcp = cfg.tcp > 0;
	if (!peers)
		peers = cfg.ext_peers_close == 0 ? "--external-peers=refuse" : "--external-peers=close";
	/* cfg's strings stay allocated until the command exits */
	if (kup_need_root("kup switch", KUP_NEED_CKPT | KUP_NEED_STORE | KUP_NEED_BOOT))
		return KUP_EXIT_FAIL;
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
		for (int j = 0; j < i; j++)
			if (trees[j].unit && !strcmp(trees[j].unit, trees[i].unit)) {
				log_err("%s is named twice: nothing was changed", trees[i].unit);
				return KUP_EXIT_USAGE;
			}
		if (kup_unit_main_pid(trees[i].unit, &trees[i].pid)) {
			log_err("%s cannot be kept: nothing was changed", trees[i].unit);
			return KUP_EXIT_FAIL;
		}
	}
	/* together (and what the dump would refuse before freezing) */
	if (kup_trees_check(trees, ntrees)) {
		log_err("%s: nothing was changed", ntrees > 1 ? "these trees cannot be kept together" :
			"this tree cannot be kept");
		return KUP_EXIT_FAIL;
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

	/* 1. the kernel first: nothing is touched if it does not load */
	largv[n++] = "kup";
	largv[n++] = "kexec";
	largv[n++] = "load";
	largv[n++] = (char *)kernel;
	if (initrd) {
		largv[n++] = "--initrd";
		largv[n++] = (char *)initrd;
	}
	if (no_initrd)
		largv[n++] = "--no-initrd";
	if (append) {
		largv[n++] = "--append";
		largv[n++] = (char *)append;
	}
	largv[n] = NULL;
	log_info("loading %s", kernel);
	if (journal_add("kexec-loaded"))
		return KUP_EXIT_FAIL;
	rc = run_self(largv);
	if (ckpt_abort_signal()) {
		unload();
		return interrupted(what, kernel, "was not touched");
	}
	if (rc) {
		log_err("%s could not be loaded: nothing was changed", kernel);
		return KUP_EXIT_FAIL;
	}

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
	rc = run_self(dargv);
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
				has_pid_tree && ntrees == 1 ? "" :
				" (a unit's processes now run outside their unit)", kernel);
	}
	return rc ? rc : KUP_EXIT_FAIL;
}

KUP_COMMAND("switch", cmd_switch, "switch to a new kernel keeping a process tree (load, dump, kexec)");
