// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kup kexec: load the next kernel and switch to it.
 *
 * Loading uses the kernel's file loader, kexec_file_load(2): the kernel
 * itself parses the image and places the segments only in "System RAM"
 * (/proc/iomem), never in a memmap=SIZE!START reservation that holds the
 * persistent page store.  Without that syscall (a kernel built without
 * CONFIG_KEXEC_FILE) kup cannot load: kexec-tools' `kexec -s` is the same
 * syscall, and the classic loader (kexec -l, kexec_load(2)) is never used:
 * it reads /sys/firmware/memmap, which does not show memmap= reservations,
 * and could place segments on top of the store.
 *
 * The new command line is the running one (/proc/cmdline, without the boot
 * loader's BOOT_IMAGE=) plus --append, and it always carries the store's
 * reservation: every "Persistent Memory (legacy)" range of /proc/iomem must
 * be covered by a memmap=SIZE!START on it, or the next kernel would take the
 * store for plain RAM and overwrite it.  Missing ones are added.
 *
 * --panic SECONDS (kup switch passes its own, 10 by default) replaces any
 * panic= of the running line: a new kernel that panics while it comes up
 * reboots after SECONDS through the firmware into the boot loader's default
 * entry -- the old kernel, which kup never changes -- and the kept services
 * come back there from the store (docs/design.md, "Rollback").
 *
 * KUP_FAULT_KEXEC=fail (tests only) fakes the kernel's side: load and unload
 * check and print everything but make no syscall, and exec fails as
 * reboot(LINUX_REBOOT_CMD_KEXEC) does with nothing loaded, without calling
 * it.  So a test can take kup switch through a kexec that fails after the
 * dump on a machine that must not be rebooted.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/reboot.h>

#include "json.h"
#include "kup.h"

#ifndef SYS_kexec_file_load
#define SYS_kexec_file_load 320
#endif
#ifndef KEXEC_FILE_UNLOAD
#define KEXEC_FILE_UNLOAD	0x1
#define KEXEC_FILE_NO_INITRAMFS	0x4
#endif

#define CMDLINE_MAX 4096

/* KUP_FAULT_KEXEC=fail: no kexec syscall at all (tests, see above) */
static bool kexec_faked(void)
{
	const char *e = getenv("KUP_FAULT_KEXEC");

	return e && !strcmp(e, "fail");
}

void kexec_usage(FILE *f)
{
	fprintf(f,
		"Usage: kup kexec COMMAND [ARGS...]\n\n"
		"Load the next kernel and switch to it, keeping the persistent page store.\n\n"
		"Commands:\n"
		"  load KERNEL [--initrd FILE | --no-initrd] [--append ARGS]\n"
		"              [--command-line LINE] [--panic SECONDS] [--dry-run]\n"
		"      load KERNEL (a path, or a version: /boot/vmlinuz-VERSION) with\n"
		"      kexec_file_load; the initrd defaults to /boot/initrd.img-VERSION;\n"
		"      the command line is the running one plus ARGS, and carries the\n"
		"      memmap=SIZE!START of every persistent memory range; --panic:\n"
		"      panic=SECONDS instead of the running line's panic=\n"
		"  exec [--systemd]\n"
		"      switch to the loaded kernel now (no shutdown: services not\n"
		"      dumped are lost), or through `systemctl kexec` (clean shutdown)\n"
		"  unload      forget the loaded kernel\n"
		"  status [--json]  is a kernel loaded (exit 0 if so, 1 if not); --json:\n"
		"              {\"supported\": BOOL, \"loaded\": BOOL}\n\n"
		"Exit status: 0 ok, 1 failure, 2 bad usage.\n");
}

/* ---- the command line ------------------------------------------------- */

/* "256M", "0x40000000", "1G": memparse()-like; 0 or -EINVAL. */
static int parse_mem(const char *s, const char **end, uint64_t *out)
{
	char *e;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &e, 0);
	if (e == s || errno)
		return -EINVAL;
	switch (*e) {
	case 'E': case 'e': v <<= 10; /* fall through */
	case 'P': case 'p': v <<= 10; /* fall through */
	case 'T': case 't': v <<= 10; /* fall through */
	case 'G': case 'g': v <<= 10; /* fall through */
	case 'M': case 'm': v <<= 10; /* fall through */
	case 'K': case 'k': v <<= 10; e++;
	}
	*out = v;
	*end = e;
	return 0;
}

struct range { uint64_t start, end; };	/* [start, end) */

/* Persistent memory ranges of /proc/iomem ("Persistent Memory (legacy)"). */
static int pmem_ranges(struct range *r, int max)
{
	FILE *f = fopen("/proc/iomem", "re");
	char line[256];
	int n = 0;

	if (!f)
		return log_errno(errno, "cannot read /proc/iomem");
	while (fgets(line, sizeof(line), f)) {
		unsigned long long s, e;
		const char *name = strstr(line, " : ");

		if (!name || !strstr(name, "Persistent Memory"))
			continue;
		if (sscanf(line, " %llx-%llx", &s, &e) != 2 || e < s)
			continue;
		if (!s && !e) {
			fclose(f);
			log_err("/proc/iomem hides addresses (not root?)");
			return -EPERM;
		}
		if (n < max)
			r[n++] = (struct range){ s, e + 1 };
	}
	fclose(f);
	return n;
}

/* Does @cmdline hold a memmap=SIZE!START covering [start, end)? */
static bool cmdline_reserves(const char *cmdline, const struct range *want)
{
	const char *p = cmdline;

	while ((p = strstr(p, "memmap="))) {
		const char *q = p + 7;

		if (p != cmdline && !isspace((unsigned char)p[-1])) {
			p = q;
			continue;
		}
		/* memmap=SIZE!START[,SIZE!START...] */
		for (;;) {
			uint64_t size, start;
			const char *e;

			if (parse_mem(q, &e, &size) || *e != '!' ||
			    parse_mem(e + 1, &e, &start))
				break;
			if (start <= want->start && start + size >= want->end)
				return true;
			if (*e != ',')
				break;
			q = e + 1;
		}
		p = q;
	}
	return false;
}

static void fmt_mem(uint64_t v, char *buf, size_t len)
{
	if (v && !(v & ((1ull << 30) - 1)))
		snprintf(buf, len, "%" PRIu64 "G", v >> 30);
	else if (v && !(v & ((1ull << 20) - 1)))
		snprintf(buf, len, "%" PRIu64 "M", v >> 20);
	else if (v && !(v & ((1ull << 10) - 1)))
		snprintf(buf, len, "%" PRIu64 "K", v >> 10);
	else
		snprintf(buf, len, "0x%" PRIx64, v);
}

/* Append " word" to @buf (CMDLINE_MAX); -E2BIG if it does not fit. */
static int cat_word(char *buf, const char *word)
{
	size_t l = strlen(buf), w = strlen(word);

	if (l + !!l + w + 1 > CMDLINE_MAX)
		return -E2BIG;
	if (l)
		buf[l++] = ' ';
	memcpy(buf + l, word, w + 1);
	return 0;
}

/*
 * Split @line into the kernel's part and what follows a lone "--" (the
 * arguments of init), dropping BOOT_IMAGE= (the old kernel's path) and,
 * with @drop_panic, panic=.
 */
static int split_cmdline(const char *line, char *kern, char *init, bool drop_panic)
{
	char raw[CMDLINE_MAX], *save = NULL, *w;
	bool after = false;

	kern[0] = init[0] = 0;
	if (strlen(line) >= sizeof(raw))
		return -E2BIG;
	snprintf(raw, sizeof(raw), "%s", line);
	for (w = strtok_r(raw, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save)) {
		if (!after && !strcmp(w, "--")) {
			after = true;
			continue;
		}
		if (!after && !strncmp(w, "BOOT_IMAGE=", 11))
			continue;
		if (!after && drop_panic && !strncmp(w, "panic=", 6))
			continue;
		if (cat_word(after ? init : kern, w))
			return -E2BIG;
	}
	return 0;
}

/* @panic: NULL keeps the line's panic=, else "panic=N" replaces it (before
 * @append, whose own panic= would win: the kernel takes the last one) */
static int kexec_cmdline(const char *base, const char *panic, const char *append, char *out)
{
	char line[CMDLINE_MAX], init[CMDLINE_MAX];
	struct range r[16];
	int n, ret;

	if (base) {
		if (strlen(base) >= CMDLINE_MAX)
			return -E2BIG;
		snprintf(line, sizeof(line), "%s", base);
	} else {
		FILE *f = fopen("/proc/cmdline", "re");

		if (!f)
			return log_errno(errno, "cannot read /proc/cmdline");
		if (!fgets(line, sizeof(line), f))
			line[0] = 0;
		fclose(f);
	}
	ret = split_cmdline(line, out, init, panic != NULL);
	if (ret)
		return ret;
	/* kernel parameters go before the "--" that starts init's arguments */
	if (panic && cat_word(out, panic))
		return -E2BIG;
	if (append && *append && cat_word(out, append))
		return -E2BIG;
	n = pmem_ranges(r, 16);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		char word[80], sz[32], st[32];

		if (cmdline_reserves(out, &r[i]))
			continue;
		fmt_mem(r[i].end - r[i].start, sz, sizeof(sz));
		fmt_mem(r[i].start, st, sizeof(st));
		snprintf(word, sizeof(word), "memmap=%s!%s", sz, st);
		if (cat_word(out, word))
			return -E2BIG;
		log_info("persistent memory %#" PRIx64 "-%#" PRIx64 " is not reserved on the "
			 "command line: adding %s", r[i].start, r[i].end - 1, word);
	}
	if (init[0] && (cat_word(out, "--") || cat_word(out, init)))
		return -E2BIG;
	return 0;
}

/* ---- load ------------------------------------------------------------- */

static bool is_file(const char *p)
{
	struct stat st;

	return !stat(p, &st) && S_ISREG(st.st_mode);
}

/*
 * Does a line of the initrd listing @list end with the path @name, as the
 * whole line (lsinitramfs: one path a line) or its last word (lsinitrd: an
 * ls -l line a file), or after a '/'?
 */
static bool listed(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *l = list; *l; ) {
		const char *e = strchrnul(l, '\n');
		size_t len = e - l;

		if (len >= n && !memcmp(e - n, name, n) &&
		    (len == n || e[-(ptrdiff_t)n - 1] == ' ' || e[-(ptrdiff_t)n - 1] == '/'))
			return true;
		l = *e ? e + 1 : e;
	}
	return false;
}

int kup_initrd_has_hook(const char *initrd)
{
	/* initramfs-tools' lister, else dracut's (a system has one of them) */
	static const char *const listers[] = { "lsinitramfs", "lsinitrd" };
	int r = -1;

	for (size_t i = 0; i < sizeof(listers) / sizeof(*listers); i++) {
		char *argv[] = { (char *)listers[i], (char *)initrd, NULL };
		int status;
		char *out = kup_capture(argv, &status);

		if (out && WIFEXITED(status) && WEXITSTATUS(status) == 127) {
			free(out);	/* not installed */
			continue;
		}
		if (out && WIFEXITED(status) && !WEXITSTATUS(status))
			r = listed(out, "sbin/kup") &&
			    (listed(out, "scripts/init-top/kup") ||		/* initramfs-tools */
			     listed(out, "dracut/hooks/pre-udev/00-kup-hold.sh"));	/* dracut */
		free(out);
		break;
	}
	return r;
}

/*
 * Was @initrd made before this kup was installed (its modification time
 * before the kup binary's change time: dpkg and make install set that as
 * they put the file in place)?  Then the kup it carries is an older one,
 * which may not read what this one writes.  @when gets the two dates.
 */
bool kup_initrd_older(const char *initrd, char *when, size_t len)
{
	struct stat i, k;
	char a[32], b[32];

	if (stat(initrd, &i) || stat("/proc/self/exe", &k) || i.st_mtime >= k.st_ctime)
		return false;
	strftime(a, sizeof(a), "%Y-%m-%d %H:%M", localtime(&i.st_mtime));
	strftime(b, sizeof(b), "%Y-%m-%d %H:%M", localtime(&k.st_ctime));
	snprintf(when, len, "made %s, this kup installed %s", a, b);
	return true;
}

static int kexec_load_cmd(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "initrd", required_argument, 0, 'i' },
		{ "no-initrd", no_argument, 0, 'N' },
		{ "append", required_argument, 0, 'a' },
		{ "command-line", required_argument, 0, 'c' },
		{ "panic", required_argument, 0, 'p' },
		{ "dry-run", no_argument, 0, 'n' },
		{ "help", no_argument, 0, 'h' },
		{}
	};
	const char *kernel, *initrd = NULL, *append = NULL, *base = NULL;
	char kbuf[PATH_MAX], ibuf[PATH_MAX], cmdline[CMDLINE_MAX], panic[32], *end, when[96];
	bool no_initrd = false, dry = false, has_panic = false;
	int c, kfd, ifd = -1, ret;
	long secs;
	unsigned long flags = 0;

	while ((c = getopt_long(argc, argv, "i:a:c:nh", opts, NULL)) != -1) {
		switch (c) {
		case 'i': initrd = optarg; break;
		case 'N': no_initrd = true; break;
		case 'a': append = optarg; break;
		case 'c': base = optarg; break;
		case 'p':
			errno = 0;
			secs = strtol(optarg, &end, 10);
			if (errno || !*optarg || *end || secs < -1 || secs > 86400) {
				log_err("--panic: '%s' is not a number of seconds (-1..86400)", optarg);
				return KUP_EXIT_USAGE;
			}
			snprintf(panic, sizeof(panic), "panic=%ld", secs);
			has_panic = true;
			break;
		case 'n': dry = true; break;
		case 'h': kexec_usage(stdout); return 0;
		default: return kup_usage_error(NULL);
		}
	}
	if (optind == argc)
		return kup_usage_error("KERNEL is needed (a path, or a version)");
	if (optind + 1 != argc)
		return kup_usage_error("unexpected argument '%s'", argv[optind + 1]);
	if (initrd && no_initrd)
		return kup_usage_error("--initrd and --no-initrd exclude each other");
	kernel = argv[optind];
	if (!strchr(kernel, '/') && !is_file(kernel)) {
		/* a version: the Debian layout */
		snprintf(kbuf, sizeof(kbuf), "/boot/vmlinuz-%s", kernel);
		if (!initrd && !no_initrd) {
			snprintf(ibuf, sizeof(ibuf), "/boot/initrd.img-%s", kernel);
			initrd = ibuf;
		}
		kernel = kbuf;
	} else if (!initrd && !no_initrd) {
		const char *b = strrchr(kernel, '/');

		b = b ? b + 1 : kernel;
		if (!strncmp(b, "vmlinuz-", 8)) {
			int l = (int)(b - kernel);

			snprintf(ibuf, sizeof(ibuf), "%.*sinitrd.img-%s", l, kernel, b + 8);
			if (is_file(ibuf))
				initrd = ibuf;
		}
	}
	if (!is_file(kernel)) {
		log_err("kernel image %s: %s", kernel, access(kernel, F_OK) ? strerror(errno) :
			"not a regular file");
		return KUP_EXIT_FAIL;
	}
	if (initrd && !is_file(initrd)) {
		log_err("initrd %s: %s (--no-initrd to load without one)", initrd,
			access(initrd, F_OK) ? strerror(errno) : "not a regular file");
		return KUP_EXIT_FAIL;
	}
	if (initrd && kup_initrd_has_hook(initrd) == 0)
		log_warn("initrd %s carries no kup hook: on the new boot, early processes may "
			 "take the PIDs of the kept tree before its restore (update-initramfs -u "
			 "or dracut --force adds it, see kup(8))", initrd);
	else if (initrd && kup_initrd_older(initrd, when, sizeof(when)))
		log_warn("initrd %s is older than this kup (%s): the kup it carries may not read "
			 "what this one writes, and the kept trees would not come back "
			 "(update-initramfs -u or dracut --force makes it again)", initrd, when);
	ret = kexec_cmdline(base, has_panic ? panic : NULL, append, cmdline);
	if (ret == -E2BIG) {
		log_err("the command line would be longer than %d bytes", CMDLINE_MAX - 1);
		return KUP_EXIT_FAIL;
	}
	if (ret)
		return KUP_EXIT_FAIL;
	printf("kernel:       %s\ninitrd:       %s\ncommand line: %s\n", kernel,
	       initrd ? initrd : "(none)", cmdline);
	if (dry)
		return 0;

	kfd = open(kernel, O_RDONLY | O_CLOEXEC);
	if (kfd < 0)
		return log_errno(errno, "cannot open kernel image %s", kernel), KUP_EXIT_FAIL;
	if (initrd) {
		ifd = open(initrd, O_RDONLY | O_CLOEXEC);
		if (ifd < 0) {
			log_errno(errno, "cannot open initrd %s", initrd);
			close(kfd);
			return KUP_EXIT_FAIL;
		}
	} else {
		flags |= KEXEC_FILE_NO_INITRAMFS;
	}
	fflush(stdout);
	if (kexec_faked()) {
		log_warn("KUP_FAULT_KEXEC=fail: %s is not loaded (a test)", kernel);
		ret = 0;
	} else {
		ret = syscall(SYS_kexec_file_load, kfd, ifd, strlen(cmdline) + 1, cmdline, flags);
	}
	if (ret && errno == ENOSYS) {
		log_err("cannot load %s: this kernel has no kexec_file_load (built without "
			"CONFIG_KEXEC_FILE); kup does not use the classic loader (kexec -l), which "
			"may place the new kernel on the persistent page store", kernel);
	} else if (ret) {
		int e = errno;

		log_errno(e, "cannot load %s with kexec_file_load%s", kernel,
			  e == EKEYREJECTED || e == EPERM ?
			  " (signature or lockdown policy: the kernel must be signed)" :
			  e == ENOEXEC ? " (not a bzImage this kernel can load)" :
			  e == EBUSY ? " (a kexec is in progress)" : "");
	}
	close(kfd);
	if (ifd >= 0)
		close(ifd);
	if (ret)
		return KUP_EXIT_FAIL;
	printf("loaded; `kup kexec exec` switches to it\n");
	return 0;
}

/* ---- exec, unload, status ----------------------------------------------- */

static int kexec_loaded(void)
{
	FILE *f = fopen("/sys/kernel/kexec_loaded", "re");
	int v = -1;

	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static int kexec_exec_cmd(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "systemd", no_argument, 0, 's' },
		{ "help", no_argument, 0, 'h' },
		{}
	};
	bool via_systemd = false;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's': via_systemd = true; break;
		case 'h': kexec_usage(stdout); return 0;
		default: return kup_usage_error(NULL);
		}
	}
	if (optind != argc)
		return kup_usage_error("unexpected argument '%s'", argv[optind]);
	if (kexec_faked()) {
		/* what reboot(LINUX_REBOOT_CMD_KEXEC) says with no kernel loaded */
		log_errno(EINVAL, "kexec failed (KUP_FAULT_KEXEC=fail: reboot() was not called)");
		return KUP_EXIT_FAIL;
	}
	if (kexec_loaded() != 1) {
		log_err("no kernel is loaded (kup kexec load KERNEL first)");
		return KUP_EXIT_FAIL;
	}
	fflush(NULL);
	sync();
	if (via_systemd) {
		execlp("systemctl", "systemctl", "kexec", (char *)NULL);
		return log_errno(errno, "cannot run systemctl kexec"), KUP_EXIT_FAIL;
	}
	reboot(LINUX_REBOOT_CMD_KEXEC);
	return log_errno(errno, "kexec failed"), KUP_EXIT_FAIL;
}

static int kexec_unload_cmd(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		kexec_usage(stdout);
		return 0;
	}
	if (argc != 1)
		return kup_usage_error("unexpected argument '%s'", argv[1]);
	if (kexec_faked())
		return 0;
	if (syscall(SYS_kexec_file_load, -1, -1, 0, NULL, KEXEC_FILE_UNLOAD))
		return log_errno(errno, "cannot unload the kexec kernel"), KUP_EXIT_FAIL;
	return 0;
}

static int kexec_status_cmd(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, 0, 'j' },
		{ "help", no_argument, 0, 'h' },
		{}
	};
	bool json = false;
	int c, v;

	while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'h': kexec_usage(stdout); return 0;
		default: return kup_usage_error(NULL);
		}
	}
	if (optind != argc)
		return kup_usage_error("unexpected argument '%s'", argv[optind]);
	v = kexec_loaded();
	if (json) {
		json_t *o = json_object();

		kup_json_set(o, "supported", json_boolean(v >= 0));
		kup_json_set(o, "loaded", json_boolean(v == 1));
		kup_json_print(stdout, o);
	}
	if (v < 0) {
		log_err("this kernel has no kexec (/sys/kernel/kexec_loaded is missing)");
		return KUP_EXIT_FAIL;
	}
	if (!json)
		printf("%s\n", v ? "loaded" : "not loaded");
	return v ? 0 : 1;
}

const struct kup_command kup_kexec_commands[] = {
	{ "load", kexec_load_cmd, "load the next kernel", KUP_NEED_BOOT },
	{ "exec", kexec_exec_cmd, "switch to the loaded kernel", KUP_NEED_BOOT },
	{ "unload", kexec_unload_cmd, "forget the loaded kernel", KUP_NEED_BOOT },
	{ "status", kexec_status_cmd, "is a kernel loaded" },
	{}
};
