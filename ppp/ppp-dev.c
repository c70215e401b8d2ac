// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ppp: locating the store on a block device — /dev/pmem* (the legacy pmem
 * region from memmap=SIZE!START, driven by nd_e820 + nd_pmem) first, then
 * every other block device.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <blkid/blkid.h>
#include <libkmod.h>

#include "ppp-int.h"

/* Does @dev hold a valid superblock of ours?  Quiet: most devices do not. */
static bool probe_dev(const char *dev)
{
	struct ppp p = { .path = (char *)dev, .fd = -1, .dfd = -1 };
	uint8_t hdr[PPP_DATA_OFF];
	struct ppp_sbv v;
	bool ok = false;
	int fd;

	fd = open(dev, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return false;
	p.backend = PPP_BACKEND_BLOCK;
	p.dev_size = lseek(fd, 0, SEEK_END);
	if (p.dev_size >= PPP_DATA_OFF && pread(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr))
		for (int i = 0; i < 2 && !ok; i++) {
			struct ppp_sb raw;

			memcpy(&raw, hdr + i * PPP_SB_SLOT_SIZE, sizeof(raw));
			ok = ppp__sb_decode(&p, i, &raw, &v, true) == 0;
		}
	close(fd);
	ppp_dbg("%s: %s", dev, ok ? "holds a page store" : "no page store");
	return ok;
}

static int glob_pmem(glob_t *g)
{
	int r = glob("/dev/pmem*", 0, NULL, g);

	if (r == GLOB_NOMATCH)
		g->gl_pathc = 0;
	return r == 0 ? (int)g->gl_pathc : 0;
}

/* Does /proc/iomem show a legacy pmem region (memmap=SIZE!START)? */
bool ppp_have_legacy_pmem(void)
{
	char line[256];
	bool found = false;
	FILE *f = fopen("/proc/iomem", "re");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, "Persistent Memory (legacy)") != NULL;
	fclose(f);
	return found;
}

static int load_modules(void)
{
	static const char *const mods[] = { "nd_e820", "nd_pmem" };
	struct kmod_ctx *ctx = kmod_new(NULL, NULL);
	int ret = 0;

	if (!ctx) {
		ppp_err("libkmod: cannot initialise");
		return -ENOMEM;
	}
	kmod_load_resources(ctx);
	for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]); i++) {
		struct kmod_module *m = NULL;
		int r = kmod_module_new_from_name(ctx, mods[i], &m);

		if (r == 0)
			/* without install commands: ndctl's for libnvdimm (load
			 * the keys of real NVDIMMs) is not in an initramfs */
			r = kmod_module_probe_insert_module(m, KMOD_PROBE_IGNORE_COMMAND,
							    NULL, NULL, NULL, NULL);
		if (r < 0 && r != -EEXIST) {
			/* built in, or not needed: the device may appear anyway */
			ppp_warn("loading module %s: %s", mods[i], strerror(-r));
			ret = r;
		} else {
			ppp_info("loaded module %s", mods[i]);
		}
		kmod_module_unref(m);
	}
	kmod_unref(ctx);
	return ret;
}

static int found(char *buf, size_t buflen, const char *dev)
{
	if (strlen(dev) >= buflen)
		return -ENAMETOOLONG;
	strcpy(buf, dev);
	ppp_info("page store found on %s", dev);
	return 0;
}

/* Size in 512-byte sectors and device number of /sys/class/block/@name. */
static bool sys_block(const char *name, dev_t *devno)
{
	char path[300], buf[64];
	unsigned maj = 0, min = 0;
	unsigned long long sectors;
	FILE *f;
	bool ok;

	snprintf(path, sizeof(path), "/sys/class/block/%s/size", name);
	f = fopen(path, "re");
	if (!f)
		return false;
	ok = fscanf(f, "%llu", &sectors) == 1 && sectors * 512 >= PPP_MIN_SIZE;
	fclose(f);
	if (!ok)
		return false;
	snprintf(path, sizeof(path), "/sys/class/block/%s/dev", name);
	f = fopen(path, "re");
	if (!f)
		return false;
	ok = fgets(buf, sizeof(buf), f) && sscanf(buf, "%u:%u", &maj, &min) == 2;
	fclose(f);
	*devno = makedev(maj, min);
	return ok;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Every other block device.  libblkid's own device cache keeps only devices
 * with a signature it recognises, which a page store is not; so the devices
 * are listed from /sys/class/block and named by libblkid from their numbers.
 */
static int probe_others(char *buf, size_t buflen, int *checked)
{
	struct dirent *d;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int r = -ENODEV;
	DIR *dir = opendir("/sys/class/block");

	if (!dir)
		return -ENODEV;
	while ((d = readdir(dir))) {
		if (d->d_name[0] == '.' || !strncmp(d->d_name, "pmem", 4))
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? cap * 2 : 32) * sizeof(*nn));

			if (!nn)
				break;
			names = nn;
		}
		if (!(names[n] = strdup(d->d_name)))
			break;
		n++;
	}
	closedir(dir);
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		char *dev;
		dev_t devno;

		if (r == -ENODEV && sys_block(names[i], &devno) &&
		    (dev = blkid_devno_to_devname(devno))) {
			++*checked;
			if (probe_dev(dev))
				r = found(buf, buflen, dev);
			free(dev);
		}
		free(names[i]);
	}
	free(names);
	return r;
}

int ppp_find_device(char *buf, size_t buflen, unsigned flags)
{
	glob_t g;
	int n, r, checked = 0;

	if (!buf || !buflen || (flags & ~PPP_FIND_LOAD_MODULES))
		return -EINVAL;
	n = glob_pmem(&g);
	if (n == 0 && (flags & PPP_FIND_LOAD_MODULES) && ppp_have_legacy_pmem()) {
		ppp_info("legacy persistent memory present but no /dev/pmem*: "
			 "loading nd_e820 and nd_pmem");
		load_modules();
		for (int i = 0; i < 50 && n == 0; i++) {	/* 5 s for udev */
			nanosleep(&(struct timespec){ 0, 100000000 }, NULL);
			globfree(&g);
			n = glob_pmem(&g);
		}
	}
	for (int i = 0; i < n; i++, checked++)
		if (probe_dev(g.gl_pathv[i])) {
			r = found(buf, buflen, g.gl_pathv[i]);
			globfree(&g);
			return r;
		}
	if (n)
		globfree(&g);
	r = probe_others(buf, buflen, &checked);
	if (r == -ENODEV)
		ppp_err("no page store found on /dev/pmem* or any of the %d block "
			"devices checked%s", checked,
			ppp_have_legacy_pmem() ? "" : " (no legacy persistent memory in "
			"/proc/iomem: is memmap=SIZE!START on the kernel command line?)");
	return r;
}
