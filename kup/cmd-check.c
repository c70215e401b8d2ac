// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kup check: will `kup switch` work here?  Touches nothing: no kernel is
 * loaded, no process is stopped.  Each check prints one line, "ok", "warn"
 * (the switch works, with a risk named) or "FAIL" (it would not); --json
 * prints them as a list.  Exit 1 if any check failed.
 *
 *   privileges   root with the capabilities a dump and a restore use (libcap)
 *   kexec        the running kernel can load and switch to another one
 *   kernel       KERNEL exists, with its initrd; the initrd carries kup's hook
 *   modules      the new kernel has the drivers of the store (libkmod against
 *                /lib/modules/VERSION)
 *   store        the store is found and formatted, and survives a kexec (a
 *                legacy persistent memory region, memmap=SIZE!START)
 *   space        the tree's memory fits the store
 *   config       the configuration file (/etc/default/kup) reads, and names
 *                the units kept by default (when none is given)
 *   tree         the tree (or the unit's) exists and may be kept
 *   restore      the new boot will restore it (kup-restore.service enabled,
 *                or kup-generator installed for a unit)
 *   rollback     a new kernel that does not come up reboots (panic=) into
 *                the running one, whose initrd carries kup's hook
 *   together     several trees: they do not overlap nor share anything
 * With several trees (units), tree and restore are reported for each
 * (--json: with its "unit" or "pid").
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libkmod.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "ckpt.h"
#include "json.h"
#include "kup.h"
#include "ppp.h"

enum { CK_OK, CK_WARN, CK_FAIL };

struct checks {
	json_t *json;		/* --json: the checks, printed at the end */
	int n, fails, warns;
	const char *unit;	/* the checks of one unit's tree (several kept) */
	pid_t pid;		/* ... or of one -t tree */
};

static void __attribute__((format(printf, 4, 5)))
report(struct checks *c, int status, const char *name, const char *fmt, ...)
{
	static const char *const word[] = { "ok", "warn", "FAIL" };
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->fails += status == CK_FAIL;
	c->warns += status == CK_WARN;
	if (c->json) {
		json_t *o = json_object();

		kup_json_set(o, "check", kup_json_str(name));
		kup_json_set(o, "status", json_string(status == CK_OK ? "ok" :
						      status == CK_WARN ? "warn" : "fail"));
		kup_json_set(o, "message", kup_json_str(msg));
		if (c->unit)
			kup_json_set(o, "unit", kup_json_str(c->unit));
		else if (c->pid)
			kup_json_set(o, "pid", json_integer(c->pid));
		json_array_append_new(c->json, o);
	} else {
		printf("%-4s %-10s %s\n", word[status], name, msg);
	}
	c->n++;
}

/* ---- privileges ---------------------------------------------------------- */

static void check_privileges(struct checks *c)
{
	static const struct { cap_value_t cap; const char *name; } need[] = {
		{ CAP_SYS_ADMIN, "CAP_SYS_ADMIN" },
		{ CAP_SYS_PTRACE, "CAP_SYS_PTRACE" },
		{ CAP_CHECKPOINT_RESTORE, "CAP_CHECKPOINT_RESTORE" },
		{ CAP_NET_ADMIN, "CAP_NET_ADMIN" },
		{ CAP_SYS_BOOT, "CAP_SYS_BOOT" },
		{ CAP_SETUID, "CAP_SETUID" },
		{ CAP_KILL, "CAP_KILL" },
	};
	char missing[256] = "";
	cap_t caps = cap_get_proc();

	if (!caps) {
		report(c, CK_FAIL, "privileges", "cannot read this process's capabilities: %s",
		       strerror(errno));
		return;
	}
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		cap_flag_value_t v = CAP_CLEAR;

		if (cap_get_flag(caps, need[i].cap, CAP_EFFECTIVE, &v) || v != CAP_SET) {
			size_t l = strlen(missing);

			snprintf(missing + l, sizeof(missing) - l, "%s%s", l ? " " : "", need[i].name);
		}
	}
	cap_free(caps);
	if (missing[0])
		report(c, CK_FAIL, "privileges", "uid %d lacks %s (run kup as root)", (int)getuid(),
		       missing);
	else
		report(c, CK_OK, "privileges", "root with the capabilities a switch uses");
}

/* ---- kexec --------------------------------------------------------------- */

static void check_kexec(struct checks *c)
{
	FILE *f = fopen("/proc/sys/kernel/kexec_load_disabled", "re");
	int disabled = 0;

	if (access("/sys/kernel/kexec_loaded", F_OK)) {
		report(c, CK_FAIL, "kexec", "this kernel cannot kexec (no /sys/kernel/kexec_loaded: "
		       "built without CONFIG_KEXEC)");
		if (f)
			fclose(f);
		return;
	}
	if (f) {
		if (fscanf(f, "%d", &disabled) != 1)
			disabled = 0;
		fclose(f);
	}
	if (disabled)
		report(c, CK_FAIL, "kexec", "kexec is disabled until the next boot "
		       "(kernel.kexec_load_disabled = 1)");
	else
		report(c, CK_OK, "kexec", "this kernel can load another one (kexec_file_load)");
}

/* ---- the new kernel -------------------------------------------------------- */

/* KERNEL as kup kexec load takes it: a path, or a version. */
static void kernel_paths(const char *kernel, char *kpath, size_t kl, char *ipath, size_t il,
			 char *version, size_t vl)
{
	const char *b;

	if (!strchr(kernel, '/') && access(kernel, F_OK)) {
		snprintf(kpath, kl, "/boot/vmlinuz-%s", kernel);
		snprintf(ipath, il, "/boot/initrd.img-%s", kernel);
		snprintf(version, vl, "%s", kernel);
		return;
	}
	snprintf(kpath, kl, "%s", kernel);
	b = strrchr(kernel, '/');
	b = b ? b + 1 : kernel;
	ipath[0] = version[0] = 0;
	if (!strncmp(b, "vmlinuz-", 8)) {
		snprintf(ipath, il, "%.*sinitrd.img-%s", (int)(b - kernel), kernel, b + 8);
		snprintf(version, vl, "%s", b + 8);
	}
}

static void check_kernel(struct checks *c, const char *kernel, char *version, size_t vl)
{
	char kpath[PATH_MAX], ipath[PATH_MAX], when[96];
	struct stat st;
	int hook;

	kernel_paths(kernel, kpath, sizeof(kpath), ipath, sizeof(ipath), version, vl);
	if (stat(kpath, &st)) {
		report(c, CK_FAIL, "kernel", "%s: %s", kpath, strerror(errno));
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		report(c, CK_FAIL, "kernel", "%s: not a regular file", kpath);
		return;
	}
	if (!ipath[0] || access(ipath, R_OK)) {
		report(c, CK_WARN, "kernel", "%s has no initrd (%s): nothing keeps the tree's PIDs "
		       "before its restore", kpath, ipath[0] ? ipath : "name not vmlinuz-VERSION");
		return;
	}
	hook = kup_initrd_has_hook(ipath);
	if (hook < 0)
		report(c, CK_WARN, "kernel", "%s, initrd %s: cannot list it (lsinitramfs, lsinitrd), "
		       "so whether it carries kup's hook is not known", kpath, ipath);
	else if (!hook)
		report(c, CK_WARN, "kernel", "initrd %s carries no kup hook: early processes may "
		       "take the tree's PIDs, and a --unit service is not restored by its unit "
		       "(update-initramfs -u -k %s, or dracut --force --kver %s)", ipath,
		       version[0] ? version : "VERSION", version[0] ? version : "VERSION");
	else if (kup_initrd_older(ipath, when, sizeof(when)))
		report(c, CK_WARN, "kernel", "initrd %s is older than this kup (%s): the kup it "
		       "carries may not read what this one writes, and the kept services would "
		       "start cold (update-initramfs -u -k %s, or dracut --force --kver %s)", ipath,
		       when, version[0] ? version : "VERSION", version[0] ? version : "VERSION");
	else
		report(c, CK_OK, "kernel", "%s with %s, which carries kup's hook", kpath, ipath);
}

/* The way back: a new kernel that panics reboots into the boot loader's
 * default entry, presumably the running kernel; its initrd's kup hold is
 * what names the kept units there. */
static void check_rollback(struct checks *c, long panic)
{
	char ipath[PATH_MAX], when[96];
	struct utsname u;
	int hook;

	if (!panic) {
		report(c, CK_WARN, "rollback", "KUP_PANIC=0: a new kernel that panics stays there "
		       "instead of rebooting into the old one");
		return;
	}
	if (uname(&u))
		return;
	snprintf(ipath, sizeof(ipath), "/boot/initrd.img-%s", u.release);
	if (access(ipath, R_OK)) {
		report(c, CK_WARN, "rollback", "%s: no initrd at %s: if the new kernel does not come "
		       "up, whether the kept services come back here is not known", u.release, ipath);
		return;
	}
	hook = kup_initrd_has_hook(ipath);
	if (hook < 0)
		report(c, CK_WARN, "rollback", "%s: cannot list it (lsinitramfs, lsinitrd): whether "
		       "a rollback to %s restores the kept services is not known", ipath, u.release);
	else if (!hook)
		report(c, CK_WARN, "rollback", "%s carries no kup hook: if the new kernel does not "
		       "come up and the machine falls back to %s, kept units start cold there "
		       "(update-initramfs -u -k %s, or dracut --force --kver %s)", ipath, u.release,
		       u.release, u.release);
	else if (kup_initrd_older(ipath, when, sizeof(when)))
		report(c, CK_WARN, "rollback", "%s is older than this kup (%s): if the new kernel "
		       "does not come up and the machine falls back to %s, the kup it carries may "
		       "not read the store, and kept units start cold there (update-initramfs -u "
		       "-k %s, or dracut --force --kver %s)", ipath, when, u.release, u.release,
		       u.release);
	else
		report(c, CK_OK, "rollback", "a new kernel that panics reboots after %ld s (panic=); "
		       "the firmware's default entry, %s presumably, restores the kept services "
		       "(%s carries kup's hook)", panic, u.release, ipath);
}

static void check_modules(struct checks *c, const char *version)
{
	static const char *const mods[] = { "libnvdimm", "nd_e820", "nd_pmem" };
	char dir[PATH_MAX], missing[128] = "";
	struct kmod_ctx *ctx;

	snprintf(dir, sizeof(dir), "/lib/modules/%s", version);
	if (access(dir, F_OK)) {
		report(c, CK_FAIL, "modules", "%s: %s (the kernel's modules are not installed)", dir,
		       strerror(errno));
		return;
	}
	ctx = kmod_new(dir, NULL);
	if (!ctx) {
		report(c, CK_FAIL, "modules", "libkmod cannot read %s", dir);
		return;
	}
	for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]); i++) {
		struct kmod_list *l = NULL;

		if (kmod_module_new_from_lookup(ctx, mods[i], &l) < 0 || !l) {
			size_t n = strlen(missing);

			snprintf(missing + n, sizeof(missing) - n, "%s%s", n ? " " : "", mods[i]);
		}
		kmod_module_unref_list(l);
	}
	kmod_unref(ctx);
	if (missing[0])
		report(c, CK_FAIL, "modules", "%s lacks %s: the new kernel would not find the store",
		       dir, missing);
	else
		report(c, CK_OK, "modules", "%s has the persistent memory drivers", dir);
}

/* ---- the tree ---------------------------------------------------------------- */

/* kB of "Anonymous:" + "Swap:" of @pid (what a dump copies, roughly). */
static unsigned long long anon_kb(pid_t pid)
{
	char path[64], line[256];
	unsigned long long total = 0, v;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Anonymous: %llu kB", &v) == 1 || sscanf(line, "Swap: %llu kB", &v) == 1)
			total += v;
	fclose(f);
	return total;
}

/* The processes of @root's tree and their anonymous memory. */
static int tree_size(pid_t root, int *nprocs, unsigned long long *kb)
{
	pid_t *v = NULL, *pp = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	bool grew = true;
	DIR *d = opendir("/proc");
	char *in;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char *end;
		long p = strtol(de->d_name, &end, 10);

		if (*end || p <= 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			v = realloc(v, cap * sizeof(*v));
			pp = realloc(pp, cap * sizeof(*pp));
			if (!v || !pp) {
				closedir(d);
				free(v);
				free(pp);
				return -ENOMEM;
			}
		}
		v[n] = p;
		pp[n++] = kup_ppid_of(p);
	}
	closedir(d);
	in = calloc(n ? n : 1, 1);
	if (!in) {
		free(v);
		free(pp);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		in[i] = v[i] == root;
	while (grew) {
		grew = false;
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; !in[i] && j < n; j++)
				if (in[j] && pp[i] == v[j])
					in[i] = grew = true;
	}
	*nprocs = 0;
	*kb = 0;
	for (size_t i = 0; i < n; i++)
		if (in[i]) {
			(*nprocs)++;
			*kb += anon_kb(v[i]);
		}
	free(in);
	free(v);
	free(pp);
	return 0;
}

/* The first error the dump's check said (it names pid, fd, object), for
 * the tree's line. */
static char tree_err[512];

static bool keep_tree_error(int level, const char *msg)
{
	if (level == LOG_LVL_ERR && !tree_err[0])
		snprintf(tree_err, sizeof(tree_err), "%s", msg);
	return false;
}

static pid_t check_tree(struct checks *c, const char *tree, const char *unit,
			const struct ckpt_dump_opts *dopts, unsigned long long *kb)
{
	struct kup_tree kt = { .unit = unit };
	int r;

	char comm[64] = "?", path[64];
	pid_t root = 0;
	int nprocs = 0;
	FILE *f;

	if (unit) {
		if (kup_unit_main_pid(unit, &root)) {
			report(c, CK_FAIL, "tree", "%s cannot be kept (see above)", unit);
			return 0;
		}
	} else {
		char *end;
		long v = strtol(tree, &end, 10);

		if (*end || v <= 0 || v > 4194304) {
			report(c, CK_FAIL, "tree", "'%s' is not a pid", tree);
			return 0;
		}
		root = v;
	}
	if (root == 1 || root == getpid()) {
		report(c, CK_FAIL, "tree", "pid %d cannot be kept (%s)", root,
		       root == 1 ? "init" : "kup itself");
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/%d/comm", root);
	f = fopen(path, "re");
	if (!f) {
		report(c, CK_FAIL, "tree", "no process %d", root);
		return 0;
	}
	if (fgets(comm, sizeof(comm), f))
		comm[strcspn(comm, "\n")] = 0;
	fclose(f);
	if (tree_size(root, &nprocs, kb)) {
		report(c, CK_FAIL, "tree", "cannot read the tree of pid %d", root);
		return 0;
	}
	/* what its dump would refuse, told while it runs */
	kt.pid = root;
	tree_err[0] = 0;
	log_set_hook(keep_tree_error);
	r = kup_tree_check(&kt, dopts);
	log_set_hook(NULL);
	if (r) {
		report(c, CK_FAIL, "tree", "%s%s%d (%s) cannot be kept: %s", unit ? unit : "",
		       unit ? ": main pid " : "pid ", root, comm,
		       tree_err[0] ? tree_err : strerror(-r));
		return 0;
	}
	report(c, CK_OK, "tree", "%s%s%d (%s): %d process%s, about %llu MiB of memory to keep; "
	       "nothing its dump would refuse while it runs (the dump checks the rest, and "
	       "leaves the tree running if something cannot be kept)",
	       unit ? unit : "", unit ? ": main pid " : "pid ",
	       root, comm, nprocs, nprocs == 1 ? "" : "es", (*kb + 1023) / 1024);
	return root;
}

/* ---- the store ---------------------------------------------------------------- */

/* The first error ppp said (it names the store), for the store's line. */
static char ppp_err[512];

static void keep_ppp_error(int level, const char *msg)
{
	if (level == LOG_LVL_ERR && !ppp_err[0])
		snprintf(ppp_err, sizeof(ppp_err), "%s", msg);
}

static void check_store(struct checks *c, const char *given, unsigned long long tree_kb,
			int have_tree)
{
	char dev[PATH_MAX];
	const char *path;
	struct ppp_status st;
	struct ppp *p;
	unsigned long long need = tree_kb * 1024, room;
	int r;

	ppp_set_logger(kup_ppp_logger);
	if (kup_ppp_locate(given, dev, sizeof(dev), &path)) {
		report(c, CK_FAIL, "store", "no persistent page store found%s",
		       ppp_have_legacy_pmem() ? "" : " (no memmap=SIZE!START reservation on this kernel's "
		       "command line: see kup(8))");
		return;
	}
	/* what goes wrong is the check's line, said once, with ppp's words */
	ppp_err[0] = 0;
	ppp_set_logger(keep_ppp_error);
	r = ppp_open(path, PPP_RDONLY, &p);
	if (r) {
		ppp_set_logger(kup_ppp_logger);
		if (r == -ENODATA)
			report(c, CK_FAIL, "store", "%s: not formatted (kup ppp format)", path);
		else if (ppp_err[0])
			report(c, CK_FAIL, "store", "%s", ppp_err);
		else
			report(c, CK_FAIL, "store", "%s: %s", path, strerror(-r));
		return;
	}
	r = ppp_status(p, &st);
	ppp_close(p);
	ppp_set_logger(kup_ppp_logger);
	if (r) {
		report(c, CK_FAIL, "store", "%s: cannot read its status: %s", path,
		       ppp_err[0] ? ppp_err : strerror(-r));
		return;
	}
	if (st.backend != PPP_BACKEND_BLOCK || strncmp(path, "/dev/pmem", 9))
		report(c, CK_FAIL, "store", "%s is not persistent memory: its content does not "
		       "survive a kexec (a memmap=SIZE!START reservation gives /dev/pmem0)", path);
	else
		report(c, CK_OK, "store", "%s, %llu MiB%s", path,
		       (unsigned long long)(st.size >> 20),
		       st.has_ckpt ? ", holding a checkpoint that a dump replaces" : "");
	if (!have_tree)
		return;
	room = st.data_size;
	need += need / 16 + (1 << 20);	/* metadata, the index, extents' rounding */
	if (need > room)
		report(c, CK_FAIL, "space", "the tree%s about %llu MiB, the store holds %llu MiB",
		       have_tree > 1 ? "s need" : " needs", need >> 20, room >> 20);
	else if (st.has_ckpt && need > room - st.used)
		report(c, CK_WARN, "space", "the tree%s (about %llu MiB) fit%s only once the store's "
		       "previous checkpoint (%llu MiB) is dropped", have_tree > 1 ? "s" : "", need >> 20,
		       have_tree > 1 ? "" : "s", (unsigned long long)(st.used >> 20));
	else
		report(c, CK_OK, "space", "the tree%s about %llu MiB of the store's %llu MiB",
		       have_tree > 1 ? "s need" : " needs", need >> 20, room >> 20);
}

/* ---- the restore on the new boot ------------------------------------------------- */

static void check_restore(struct checks *c, const char *unit)
{
	static const char *const gens[] = { "/lib/systemd/system-generators/kup-generator",
					    "/usr/lib/systemd/system-generators/kup-generator" };

	if (access("/run/systemd/system", F_OK)) {
		report(c, CK_WARN, "restore", "systemd does not run here: after the switch, restore "
		       "the tree with kup restore --ppp auto -d");
		return;
	}
	if (unit) {
		if (access(gens[0], X_OK) && access(gens[1], X_OK))
			report(c, CK_FAIL, "restore", "kup-generator is not installed: %s would start "
			       "cold instead of being restored (make install)", unit);
		else
			report(c, CK_OK, "restore", "%s's start on the new boot restores it", unit);
		return;
	}
	if (access("/etc/systemd/system/sysinit.target.wants/kup-restore.service", F_OK))
		report(c, CK_FAIL, "restore", "kup-restore.service is not enabled: nothing would "
		       "restore the tree (systemctl enable kup-restore.service)");
	else
		report(c, CK_OK, "restore", "kup-restore.service restores it early in the new boot");
}

static void check_usage(FILE *f)
{
	fprintf(f,
		"Usage: kup check [KERNEL] [-t PID | --unit UNIT]... [--ppp STORE] [--config FILE]\n"
		"                 [--json]\n\n"
		"Tell whether `kup switch KERNEL` would work here, touching nothing: privileges,\n"
		"kexec, the new kernel, its initrd and modules, the store and its room for\n"
		"the trees, each tree itself, and its restore on the new boot.  One line per\n"
		"check: ok, warn (works, with a risk named) or FAIL.  Exit 1 if a check\n"
		"failed.  Without -t or --unit: the units of KUP_UNITS in the configuration\n"
		"file (/etc/default/kup), as kup switch KERNEL does.\n\n"
		"  -t, --tree PID         a tree to keep\n"
		"  -u, --unit UNIT        a systemd service to keep\n"
		"      --ppp STORE        the store (default: KUP_STORE, or auto)\n"
		"      --config FILE      the configuration file\n"
		"      --json             the checks as a JSON list of {check, status, message};\n"
		"                         with several trees, those of one tree have its\n"
		"                         \"unit\" (or \"pid\") too\n");
}

int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tree", required_argument, 0, 't' },
		{ "unit", required_argument, 0, 'u' },
		{ "ppp", required_argument, 0, 'P' },
		{ "config", required_argument, 0, 'C' },
		{ "json", no_argument, 0, 'J' },
		{ "help", no_argument, 0, 'h' },
		{}
	};
	const char *trees[KUP_MAX_TREES], *units[KUP_MAX_TREES];
	const char *store = NULL, *kernel = NULL, *config = NULL;
	struct kup_tree kt[KUP_MAX_TREES];
	struct kup_config cfg;
	struct checks c = { 0 };
	struct ckpt_dump_opts dopts = { 0 };
	unsigned long long kb = 0;
	char version[256] = "";
	int o, n = 0, nroots = 0, cfg_ret;
	bool json = false;

	while ((o = getopt_long(argc, argv, "t:u:h", opts, NULL)) != -1) {
		switch (o) {
		case 't':
		case 'u':
			if (n == KUP_MAX_TREES) {
				return kup_usage_error("at most %d trees at once", KUP_MAX_TREES);
			}
			trees[n] = o == 't' ? optarg : NULL;
			units[n++] = o == 'u' ? optarg : NULL;
			break;
		case 'P': store = optarg; break;
		case 'C': config = optarg; break;
		case 'J': json = true; break;
		case 'h': check_usage(stdout); return 0;
		default: return kup_usage_error(NULL);
		}
	}
	if (optind + 1 < argc)
		return kup_usage_error("unexpected argument '%s' (one KERNEL at most)",
				       argv[optind + 1]);
	if (optind < argc)
		kernel = argv[optind];
	if (json) {
		c.json = json_array();
		if (!c.json)
			return log_errno(ENOMEM, "--json"), KUP_EXIT_FAIL;
	}
	check_privileges(&c);
	check_kexec(&c);
	cfg_ret = kup_config_load(config, &cfg);
	if (cfg_ret) {
		report(&c, CK_FAIL, "config", "%s cannot be used (see above): kup switch refuses to run",
		       cfg.path);
	} else if (!n && cfg.nunits) {
		for (int i = 0; i < cfg.nunits; i++) {
			trees[n] = NULL;
			units[n++] = cfg.units[i];
		}
		report(&c, CK_OK, "config", "%s: %d unit%s kept by default (KUP_UNITS)", cfg.path,
		       cfg.nunits, cfg.nunits > 1 ? "s" : "");
	} else if (cfg.loaded) {
		report(&c, CK_OK, "config", "%s%s", cfg.path,
		       cfg.nunits ? "" : ": no unit kept by default (KUP_UNITS)");
	}
	if (!store)
		store = !cfg_ret && cfg.store ? cfg.store : "auto";
	/* the trees as kup switch dumps them (its options from the file) */
	dopts.tcp_established = !cfg_ret && cfg.tcp > 0;
	dopts.ext_peers_close = cfg_ret || cfg.ext_peers_close != 0;
	if (kernel) {
		check_kernel(&c, kernel, version, sizeof(version));
		if (version[0])
			check_modules(&c, version);
		check_rollback(&c, !cfg_ret && cfg.panic >= 0 ? cfg.panic : 10);
	}
	for (int i = 0; i < n; i++) {
		unsigned long long tkb = 0;
		pid_t root;

		if (n > 1) {
			/* several: each check of a tree names it */
			c.unit = units[i];
			c.pid = trees[i] ? atoi(trees[i]) : 0;
		}
		root = check_tree(&c, trees[i], units[i], &dopts, &tkb);
		kb += tkb;
		if (root > 0)
			kt[nroots++] = (struct kup_tree){ .pid = root, .unit = units[i] };
		check_restore(&c, units[i]);
	}
	c.unit = NULL;
	c.pid = 0;
	if (n > 1 && nroots == n) {
		if (kup_trees_check(kt, n))
			report(&c, CK_FAIL, "together", "the %d trees cannot be kept together (see above)", n);
		else
			report(&c, CK_OK, "together", "the %d trees do not overlap and share no pipe, "
			       "socket or shared memory: they are dumped as one checkpoint", n);
	}
	check_store(&c, store, kb, nroots);
	if (c.json) {
		if (kup_json_print(stdout, c.json))
			c.fails++;
	} else
		printf("%d checks: %d failed, %d warnings\n", c.n, c.fails, c.warns);
	if (!cfg_ret)
		kup_config_free(&cfg);
	return c.fails ? KUP_EXIT_FAIL : KUP_EXIT_OK;
}

