// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kup: rebootless kernel updates by checkpoint, kexec and restore.
 * The dispatcher: subcommands register themselves (kup.h, KUP_COMMAND).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(int argc, char **argv)
{
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
			if (strcmp(c->name, "recover"))
				kup_recover_stale();
			return c->fn(argc - i, argv + i);
		}
	fprintf(stderr, "kup: '%s' is not a kup command\n", argv[i]);
	usage(stderr);
	return KUP_EXIT_USAGE;
}
