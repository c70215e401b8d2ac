// SPDX-License-Identifier: GPL-2.0-or-later
/* kup restore: bring a dumped process tree back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "kup.h"

static void restore_usage(FILE *f)
{
	fprintf(f,
		"Usage: kup restore -D DIR [-d] [--shell-job] [--tcp-established] [-v]\n\n"
		"Recreate the tree saved in DIR with its PIDs and let it run.  Without -d,\n"
		"wait for the restored root to exit and exit with its status.  A failed\n"
		"restore leaves no restored process behind and the images untouched.\n\n"
		"  -D, --images-dir DIR   images to restore from\n"
		"  -d, --restore-detached return once the tree runs\n"
		"  -j, --shell-job        restore into this terminal (the tree was dumped\n"
		"                         with --shell-job)\n"
		"      --tcp-established  restore established TCP connections\n"
		"      --pidfile FILE     with -d: write the root pid to FILE\n"
		"  -v, --verbose          more messages\n");
}

static int cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "images-dir", required_argument, 0, 'D' },
		{ "restore-detached", no_argument, 0, 'd' },
		{ "shell-job", no_argument, 0, 'j' },
		{ "tcp-established", no_argument, 0, 'T' },
		{ "pidfile", required_argument, 0, 'p' },
		{ "force-vdso-proxy", no_argument, 0, 'F' },
		{ "verbose", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' },
		{}
	};
	struct ckpt_restore_opts o = { 0 };
	struct ckpt_stats stats;
	const char *dir = NULL, *pidfile = NULL;
	pid_t root = 0;
	int c, ret;

	log_set_prefix("kup restore");
	o.root_pid = &root;
	while ((c = getopt_long(argc, argv, "D:djvh", opts, NULL)) != -1) {
		switch (c) {
		case 'D': dir = optarg; break;
		case 'd': o.detach = true; break;
		case 'j': o.shell_job = true; break;
		case 'T': o.tcp_established = true; break;
		case 'p': pidfile = optarg; break;
		case 'F': o.force_vdso_proxy = true; break;
		case 'v': log_set_level(log_get_level() + 1); break;
		case 'h': restore_usage(stdout); return 0;
		default: restore_usage(stderr); return KUP_EXIT_USAGE;
		}
	}
	if (!dir || optind != argc) {
		restore_usage(stderr);
		return KUP_EXIT_USAGE;
	}
	ret = img_store_open_dir(dir, 0, &o.store);
	if (ret)
		return KUP_EXIT_FAIL;
	if (pidfile && !o.detach) {
		log_err("--pidfile needs -d (without it kup waits for the tree to exit)");
		return KUP_EXIT_USAGE;
	}
	ret = ckpt_restore(&o, &stats);
	o.store->ops->close(o.store);
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

KUP_COMMAND("restore", cmd_restore, "restore a process tree from an image directory");
