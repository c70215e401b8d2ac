// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kup recover: undo what a kup that died left in process trees and on the
 * host, from the undo journals under /run/kup/journal (docs/design.md,
 * "When kup dies").  Every kup command does it first, quietly, for the
 * journals of dead kup processes (kup_recover_stale); this command does it
 * on demand and says what it did.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ckpt.h"
#include "journal.h"
#include "json.h"
#include "kup.h"

#ifndef KEXEC_FILE_UNLOAD
#define KEXEC_FILE_UNLOAD	0x1
#endif

static void recover_usage(FILE *f)
{
	fprintf(f,
		"Usage: kup recover [--json] [-v]\n\n"
		"Undo what a kup command killed half-way (kill -9, the OOM killer, a cgroup\n"
		"kill) left behind, from its journal in " JOURNAL_DIR ": a dumped tree gets\n"
		"its signal mask back and loses kup's trampoline mapping and its TCP\n"
		"connections leave repair mode; network locks and unfinished images go; a\n"
		"half-restored tree is killed; a kernel loaded by a switch that did not\n"
		"happen is unloaded (and its tree restored from the store if the dump had\n"
		"completed).  Every kup command does this first for kup processes that\n"
		"died; this command does it on demand and reports.  Exit 1 if something\n"
		"could not be undone (its journal stays for another try).\n\n"
		"      --json    one JSON object: {\"recovered\": [...]}\n"
		"  -v, --verbose more messages\n");
}

/* A switch that died before its kexec: no kernel stays loaded, and a tree
 * its dump had already taken into the store comes back from it. */
static int recover_switch(const struct ckpt_recover_switch *sw, struct ckpt_recover_item *it)
{
	int ret = 0;

	if (sw->kexec_exec) {
		snprintf(it->action, sizeof(it->action), "nothing to undo: the kexec had begun");
		return 0;
	}
	/* a clean switch it had armed (kup/switch-shutdown.c) goes too */
	switch_shutdown_disarm_stale(it->owner);
	snprintf(it->action, sizeof(it->action), "nothing to undo");
	if (sw->store && !sw->root_alive && kup_store_has_ckpt(sw->store)) {
		char *argv[] = { "kup", "restore", "--ppp", (char *)sw->store, "-d",
				 sw->tcp ? "--tcp-established" : NULL, NULL };
		pid_t pid = fork();
		int st;

		if (pid < 0)
			return log_errno(errno, "cannot fork");
		if (!pid) {
			/* this recovery holds the journal's lock: the restore must not
			 * wait for it to replay the journals itself */
			setenv("KUP_IN_RECOVERY", "1", 1);
			execv("/proc/self/exe", argv);
			_exit(127);
		}
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			log_err("the switch's tree could not be restored from %s: run kup restore "
				"--ppp %s", sw->store, sw->store);
			ret = -EIO;
		} else {
			snprintf(it->action, sizeof(it->action), "the tree restored from %.100s",
				 sw->store);
		}
	}
	if (sw->kexec_loaded) {
		if (syscall(SYS_kexec_file_load, -1, -1, 0, NULL, KEXEC_FILE_UNLOAD) && errno != ENOENT) {
			log_warn_errno(errno, "cannot unload the kernel the switch loaded "
				       "(kup kexec unload)");
			return ret;
		}
		snprintf(it->action + strlen(it->action), sizeof(it->action) - strlen(it->action),
			 "%s", ret ? "" : "; the kernel it loaded unloaded");
	}
	return ret;
}

static void print_text(const struct ckpt_recover_item *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct ckpt_recover_item *it = &v[i];

		printf("%s (pid %d): %s%s", it->op, (int)it->owner, it->err ? "FAILED: " : "", it->action);
		if (it->threads || it->trampolines || it->sockets || it->locks || it->images || it->killed)
			printf(" (%u signal masks, %u trampolines, %u sockets, %u network locks, "
			       "%u images removed, %u tasks killed)", it->threads, it->trampolines,
			       it->sockets, it->locks, it->images, it->killed);
		printf("\n");
	}
}

static void print_json(const struct ckpt_recover_item *v, size_t n)
{
	json_t *list = json_array(), *o = json_object();

	for (size_t i = 0; i < n; i++) {
		const struct ckpt_recover_item *it = &v[i];
		json_t *e = json_object();

		kup_json_set(e, "op", kup_json_str(it->op));
		kup_json_set(e, "pid", json_integer(it->owner));
		kup_json_set(e, "journal", kup_json_str(it->journal));
		kup_json_set(e, "ok", json_boolean(!it->err));
		kup_json_set(e, "action", kup_json_str(it->action));
		kup_json_set(e, "signal_masks", json_integer(it->threads));
		kup_json_set(e, "trampolines", json_integer(it->trampolines));
		kup_json_set(e, "sockets", json_integer(it->sockets));
		kup_json_set(e, "network_locks", json_integer(it->locks));
		kup_json_set(e, "images_removed", json_integer(it->images));
		kup_json_set(e, "tasks_killed", json_integer(it->killed));
		json_array_append_new(list, e);
	}
	kup_json_set(o, "recovered", list);
	kup_json_print(stdout, o);
}

void kup_recover_stale(void)
{
	struct ckpt_recover_opts o = { .switch_hook = recover_switch };
	struct ckpt_recover_item *v;
	size_t n;

	if (geteuid() != 0 || access(JOURNAL_DIR, F_OK))
		return;
	ckpt_recover(&o, &v, &n);
	for (size_t i = 0; i < n; i++)
		log_warn("a %s by kup pid %d died half-way: %s%s", v[i].op, (int)v[i].owner,
			 v[i].err ? "could not undo it all (kup recover tells more): " : "",
			 v[i].action);
	free(v);
}

int cmd_recover(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, 0, 'J' },
		{ "verbose", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' },
		{}
	};
	struct ckpt_recover_opts o = { .switch_hook = recover_switch };
	struct ckpt_recover_item *v;
	bool json = false;
	size_t n;
	int c, ret;

	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 'J': json = true; break;
		case 'v': log_set_level(log_get_level() + 1); break;
		case 'h': recover_usage(stdout); return 0;
		default: return kup_usage_error(NULL);
		}
	}
	if (optind != argc)
		return kup_usage_error("unexpected argument '%s'", argv[optind]);
	/* it drives the trees it puts back with ptrace, as dump and restore */
	ret = ckpt_recover(&o, &v, &n);
	if (json)
		print_json(v, n);
	else if (!n)
		printf("nothing to recover\n");
	else
		print_text(v, n);
	free(v);
	return ret ? KUP_EXIT_FAIL : 0;
}

