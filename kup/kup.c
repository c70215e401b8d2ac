// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kup: rebootless kernel updates by checkpoint, kexec and restore.
 * The dispatcher: every command and subcommand is in a table here (kup.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/capability.h>

#include "kup.h"
#include "ppp.h"

static void kup_usage(FILE *f);

static const struct kup_command kup_commands[] = {
	{ "check", cmd_check, "tell whether kup switch would work here (touches nothing)" },
	{ "dump", cmd_dump, "checkpoint a process tree to an image directory or a store",
	  KUP_NEED_CKPT },
	{ "hold", cmd_hold, "keep the PIDs of the stored tree free until its restore (initramfs)",
	  KUP_NEED_CKPT | KUP_NEED_STORE },
	{ "kexec", NULL, "load the next kernel (kexec_file_load) and switch to it",
	  0, kup_kexec_commands, kexec_usage },
	{ "ppp", NULL, "manage the persistent page store (format, status, verify, scrub)",
	  0, kup_ppp_commands, ppp_usage },
	{ "recover", cmd_recover, "undo what a killed kup left in process trees and on the host",
	  KUP_NEED_CKPT, .no_recover = true },
	{ "restore", cmd_restore, "restore a process tree from an image directory or a store",
	  KUP_NEED_CKPT },
	{ "show", cmd_show, "decode images to text or JSON" },
	{ "status", cmd_status, "the last kernel switch: each kept service's outage" },
	{ "switch", cmd_switch, "switch to a new kernel keeping a process tree (load, dump, kexec)",
	  KUP_NEED_CKPT | KUP_NEED_STORE | KUP_NEED_BOOT },
	{ "switch-dump", cmd_switch_dump,
	  "(run by kup-switch-dump.service) the late dump of a clean switch",
	  KUP_NEED_CKPT | KUP_NEED_STORE | KUP_NEED_BOOT },
	{}
};

/* The command being run: "kup", "kup dump", "kup ppp format" */
static char kup_cmd_name[64] = "kup";

static void kup_usage(FILE *f)
{
	fprintf(f, "Usage: kup [-v|-q] COMMAND [ARGS...]\n\n"
		   "Checkpoint services, switch kernels with kexec, restore them.\n\nCommands:\n");
	for (const struct kup_command *c = kup_commands; c->name; c++)
		fprintf(f, "  %-11s %s\n", c->name, c->summary);
	fprintf(f, "\nRun 'kup COMMAND --help' for the options of a command; see kup(8) and\n"
		   "the page of each command, kup-COMMAND(8).\n");
}

int kup_usage_error(const char *fmt, ...)
{
	va_list ap;
	char msg[1024];

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		log_err("%s", msg);
	}
	fprintf(stderr, "Try '%s --help' for more information.\n", kup_cmd_name);
	return KUP_EXIT_USAGE;
}

int kup_parse_size(const char *s, unsigned long long *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	case 't': case 'T': v <<= 40; end++; break;
	}
	if (*end == 'i' || *end == 'B')
		end++;
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

int kup_need_root(const char *cmd, unsigned int need)
{
	static const struct {
		unsigned int flag;
		cap_value_t cap;
		const char *name;
	} caps[] = {
		/* what every dump and restore uses; CAP_SYS_ADMIN is needed only
		 * by some trees (a time namespace, seccomp): their step says so */
		{ KUP_NEED_CKPT, CAP_SYS_PTRACE, "CAP_SYS_PTRACE" },
		{ KUP_NEED_CKPT, CAP_CHECKPOINT_RESTORE, "CAP_CHECKPOINT_RESTORE" },
		{ KUP_NEED_STORE, CAP_SYS_ADMIN, "CAP_SYS_ADMIN" },
		{ KUP_NEED_STORE, CAP_DAC_OVERRIDE, "CAP_DAC_OVERRIDE" },
		{ KUP_NEED_BOOT, CAP_SYS_BOOT, "CAP_SYS_BOOT" },
	};
	char needs[256] = "", missing[256] = "";
	cap_t c = cap_get_proc();

	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		cap_flag_value_t v = CAP_CLEAR;
		size_t l;

		if (!(need & caps[i].flag) || strstr(needs, caps[i].name))
			continue;
		l = strlen(needs);
		snprintf(needs + l, sizeof(needs) - l, "%s%s", l ? ", " : "", caps[i].name);
		if (c && !cap_get_flag(c, caps[i].cap, CAP_EFFECTIVE, &v) && v == CAP_SET)
			continue;
		l = strlen(missing);
		snprintf(missing + l, sizeof(missing) - l, "%s%s", l ? ", " : "", caps[i].name);
	}
	if (c)
		cap_free(c);
	if (!geteuid() && !missing[0])
		return 0;
	if (missing[0])
		fprintf(stderr, "%s: must be run as root (needs %s; uid %d lacks %s)\n", cmd,
			needs, (int)geteuid(), missing);
	else if (needs[0])
		fprintf(stderr, "%s: must be run as root (needs uid 0 and %s; running as uid %d)\n",
			cmd, needs, (int)geteuid());
	else
		fprintf(stderr, "%s: must be run as root (running as uid %d)\n", cmd,
			(int)geteuid());
	return -EPERM;
}

bool kup_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return true;
	return false;
}

/*
 * Run argv[0] of @cmds (argv[-1], the parent, is already named "kup ..."
 * in kup_cmd_name): its subcommand, or its function once it may run.
 */
static int kup_dispatch(const struct kup_command *cmds, void (*usage)(FILE *),
			int argc, char **argv)
{
	size_t len = strlen(kup_cmd_name);
	const struct kup_command *c;

	if (argc < 1)
		return kup_usage_error("a command is needed");
	if (!strcmp(argv[0], "-h") || !strcmp(argv[0], "--help") || !strcmp(argv[0], "help")) {
		usage(stdout);
		return KUP_EXIT_OK;
	}
	for (c = cmds; c->name && strcmp(c->name, argv[0]); c++)
		;
	if (!c->name) {
		if (argv[0][0] == '-')
			return kup_usage_error("unknown option %s", argv[0]);
		return kup_usage_error("'%s' is not a %s command", argv[0],
				       len > 4 ? kup_cmd_name + 4 : "kup");
	}
	snprintf(kup_cmd_name + len, sizeof(kup_cmd_name) - len, " %s", c->name);
	log_set_prefix(kup_cmd_name);
	/* getopt names argv[0] in its messages: "kup dump: ..." */
	argv[0] = kup_cmd_name;
	if (c->sub)
		return kup_dispatch(c->sub, c->usage, argc - 1, argv + 1);
	if (c->needs && !kup_wants_help(argc, argv) && kup_need_root(kup_cmd_name, c->needs))
		return KUP_EXIT_FAIL;
	/* not in a restore that a recovery runs (it holds the journals'
	 * locks the replay would wait for) */
	if (!c->no_recover && !getenv("KUP_IN_RECOVERY"))
		kup_recover_stale();
	optind = 1;
	return c->fn(argc, argv);
}

int main(int argc, char **argv)
{
	int i = 1;

	ppp_set_logger(kup_ppp_logger);
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose"))
			log_set_level(log_get_level() + 1);
		else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet"))
			log_set_level(LOG_LVL_ERR);
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			break;
		else if (!strcmp(argv[i], "--version")) {
			printf("kup 0.1\n");
			return 0;
		} else {
			return kup_usage_error("unknown option %s", argv[i]);
		}
	}
	return kup_dispatch(kup_commands, kup_usage, argc - i, argv + i);
}
