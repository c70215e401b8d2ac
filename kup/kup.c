// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kup: rebootless kernel updates by checkpoint, kexec and restore.
 * The dispatcher: subcommands register themselves (kup.h, KUP_COMMAND).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/capability.h>

#include "kup.h"

extern const struct kup_command __start_kup_cmds[], __stop_kup_cmds[];

static void usage(FILE *f)
{
	fprintf(f, "Usage: kup [-v|-q] COMMAND [ARGS...]\n\n"
		   "Checkpoint services, switch kernels with kexec, restore them.\n\nCommands:\n");
	for (const struct kup_command *c = __start_kup_cmds; c < __stop_kup_cmds; c++)
		fprintf(f, "  %-10s %s\n", c->name, c->summary);
	fprintf(f, "\nRun 'kup COMMAND --help' for the options of a command; see kup(8).\n");
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
	else
		fprintf(stderr, "%s: must be run as root (needs uid 0 and %s; running as uid %d)\n",
			cmd, needs, (int)geteuid());
	return -EPERM;
}

bool kup_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	static char name[64];
	int i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose"))
			log_set_level(log_get_level() + 1);
		else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet"))
			log_set_level(LOG_LVL_ERR);
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--version")) {
			printf("kup 0.1\n");
			return 0;
		} else {
			fprintf(stderr, "kup: unknown option %s\n", argv[i]);
			usage(stderr);
			return KUP_EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return KUP_EXIT_USAGE;
	}
	for (const struct kup_command *c = __start_kup_cmds; c < __stop_kup_cmds; c++)
		if (!strcmp(c->name, argv[i])) {
			optind = 1;
			/* not in a restore that a recovery runs (it holds the
			 * journals' locks the replay would wait for) */
			if (strcmp(c->name, "recover") && !getenv("KUP_IN_RECOVERY"))
				kup_recover_stale();
			/* getopt names argv[0] in its messages: "kup dump: ..." */
			snprintf(name, sizeof(name), "kup %s", c->name);
			argv[i] = name;
			return c->fn(argc - i, argv + i);
		}
	fprintf(stderr, "kup: '%s' is not a kup command\n", argv[i]);
	usage(stderr);
	return KUP_EXIT_USAGE;
}
