// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kup switch: update the kernel under a running service.
 *
 *   1. load the new kernel (kup kexec load: kexec_file_load, the running
 *      command line with the store's memmap= reservation) -- first, so that a
 *      kernel that does not load leaves the service untouched;
 *   2. dump the tree into the persistent page store (kup dump --ppp);
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
		"Usage: kup switch KERNEL (-t PID | --unit UNIT) [--ppp STORE] [--initrd FILE | --no-initrd]\n"
		"                  [--append ARGS] [--tcp-established] [--external-peers=MODE]\n"
		"                  [--no-exec | --fast] [-v]\n\n"
		"Switch to KERNEL (a path, or a version: /boot/vmlinuz-VERSION) keeping the\n"
		"process tree rooted at PID: load KERNEL with kexec_file_load, dump the tree\n"
		"into the persistent page store, kexec.  On the new kernel,\n"
		"kup-restore.service restores the tree from the store before the normal\n"
		"services start.  If loading or dumping fails, the tree keeps running and\n"
		"no kernel stays loaded; so it is when SIGINT, SIGTERM or SIGHUP interrupt\n"
		"the switch or this command is killed (see kup(8), SIGNALS).\n\n"
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
		"      --external-peers=MODE  connections to processes that are not kept\n"
		"                         (gone after the switch anyway): 'close' (the\n"
		"                         default) keeps them as closed by their peer, a\n"
		"                         warning each; 'refuse' fails the dump (kup dump)\n"
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
		{ "external-peers", required_argument, 0, 'E' },
		{ "no-exec", no_argument, 0, 'n' },
		{ "fast", no_argument, 0, 'F' },
		{ "no-shutdown", no_argument, 0, 'F' },
		{ "verbose", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' },
		{}
	};
	const char *kernel, *initrd = NULL, *append = NULL, *store = "auto", *tree = NULL;
	const char *unit = NULL, *peers = "--external-peers=close";
	char what[300];
	bool no_initrd = false, tcp = false, no_exec = false, fast = false;
	char *largv[16], *dargv[16], *uargv[4];
	int c, n = 0, rc;

	log_set_prefix("kup switch");
	while ((c = getopt_long(argc, argv, "t:u:vh", opts, NULL)) != -1) {
		switch (c) {
		case 't': tree = optarg; break;
		case 'u': unit = optarg; break;
		case 'P': store = optarg; break;
		case 'i': initrd = optarg; break;
		case 'N': no_initrd = true; break;
		case 'a': append = optarg; break;
		case 'T': tcp = true; break;
		case 'E':
			if (!strcmp(optarg, "refuse")) {
				peers = "--external-peers=refuse";
			} else if (strcmp(optarg, "close")) {
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
	if (optind + 1 != argc || !tree == !unit || (initrd && no_initrd)) {
		switch_usage(stderr);
		return KUP_EXIT_USAGE;
	}
	kernel = argv[optind];
	if (kup_need_root("kup switch", KUP_NEED_CKPT | KUP_NEED_STORE | KUP_NEED_BOOT))
		return KUP_EXIT_FAIL;
	if (unit) {
		pid_t main_pid;

		/* before anything is loaded (the dump checks it again) */
		if (kup_unit_main_pid(unit, &main_pid)) {
			log_err("%s cannot be kept: nothing was changed", unit);
			return KUP_EXIT_FAIL;
		}
	}
	if (unit)
		snprintf(what, sizeof(what), "%s", unit);
	else
		snprintf(what, sizeof(what), "the tree of pid %s", tree);
	/* from here on the worker does it all (kup/signals.c) */
	kup_start_worker();
	/* killed before the kexec, kup recover unloads the kernel and brings
	 * a dumped tree back (the dump's own journal covers the tree) */
	if (journal_begin("switch") || (tcp && journal_add("tcp")))
		return KUP_EXIT_FAIL;
	atexit(journal_end);

	if (!unit && access("/etc/systemd/system/sysinit.target.wants/kup-restore.service", F_OK) &&
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
	dargv[n++] = unit ? "--unit" : "-t";
	dargv[n++] = (char *)(unit ? unit : tree);
	dargv[n++] = "--ppp";
	dargv[n++] = (char *)store;
	if (tcp)
		dargv[n++] = "--tcp-established";
	dargv[n++] = (char *)peers;
	dargv[n] = NULL;
	{
		pid_t root = 0;

		if (unit)
			kup_unit_main_pid(unit, &root);
		else
			root = atoi(tree);
		if (!no_exec && !fast && switch_shutdown_possible()) {
			char name[64];
			const char *names[] = { unit ? unit : name };
			struct switch_plan sp = { .kernel = kernel, .load_argv = largv,
						  .dump_argv = dargv, .nkeep = 1, .units = &unit,
						  .roots = &root, .names = names };

			snprintf(name, sizeof(name), "pid-%d", (int)root);
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
	if (no_exec) {
		log_info("the tree is in the store and %s is loaded: `kup kexec exec` switches", kernel);
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
				"`kup restore --ppp %s` brings it back; %s was unloaded",
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
	/* only reached if the kexec failed: the tree is safe in the store */
	log_err("kexec failed; the tree is in the store: `kup restore --ppp %s` brings it back", store);
	return rc ? rc : KUP_EXIT_FAIL;
}

KUP_COMMAND("switch", cmd_switch, "switch to a new kernel keeping a process tree (load, dump, kexec)");
