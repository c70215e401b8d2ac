// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kup ppp: manage the persistent page store (ppp/, docs/ppp-format.md).
 *
 *   kup ppp format DEV|FILE [--size SIZE]
 *   kup ppp status [DEV|FILE] [--json]
 *   kup ppp verify [DEV|FILE]
 *   kup ppp scrub  [DEV|FILE]
 *   kup ppp ls     [DEV|FILE] [--json]
 * and, for debugging and the lab:
 *   kup ppp put [-s STORE] FILE NAME
 *   kup ppp get [-s STORE] NAME [-o OUT]
 *   kup ppp rm  [-s STORE] NAME
 *
 * Without DEV|FILE the store is looked for on /dev/pmem* and the other block
 * devices (loading nd_e820/nd_pmem if the legacy region is not bound yet).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "image.h"
#include "json.h"
#include "kup.h"
#include "ppp.h"

void ppp_usage(FILE *f)
{
	fprintf(f,
		"Usage: kup ppp COMMAND [ARGS...]\n\n"
		"Manage the persistent page store: a file, or the pmem device of a\n"
		"memmap=SIZE!START region, whose content survives a kexec.\n\n"
		"Commands:\n"
		"  format DEV|FILE [--size SIZE]  create an empty store\n"
		"  status [DEV|FILE] [--json]     size, use, generation, checkpoint\n"
		"  verify [DEV|FILE]              check every checksum\n"
		"  scrub  [DEV|FILE]              drop the checkpoint and wipe the data\n"
		"  ls     [DEV|FILE] [--json]     list the blobs of the checkpoint\n\n"
		"Debugging:\n"
		"  put [-s STORE] FILE NAME       add FILE ('-': stdin) as blob NAME\n"
		"  get [-s STORE] NAME [-o OUT]   write blob NAME to stdout or OUT\n"
		"  rm  [-s STORE] NAME            remove blob NAME\n\n"
		"Without DEV|FILE the store is found on /dev/pmem* or another block\n"
		"device.  Run 'kup ppp COMMAND --help' for the options of a command.\n"
		"Exit status: 0 ok, 1 failure (the store is bad or the operation\n"
		"failed), 2 bad usage.\n");
}

/* ---- helpers -------------------------------------------------------- */

static int locate(const char *given, char *buf, size_t len, const char **path)
{
	int r;

	if (given) {
		*path = given;
		return 0;
	}
	r = ppp_find_device(buf, len, PPP_FIND_LOAD_MODULES);
	if (r) {
		log_err("no store given and none found; name the device or file");
		return r;
	}
	*path = buf;
	return 0;
}

static const char *backend_name(int b)
{
	switch (b) {
	case PPP_BACKEND_FILE: return "file";
	case PPP_BACKEND_BLOCK: return "block device";
	case PPP_BACKEND_MEM: return "memory";
	}
	return "?";
}

static void fmt_time(uint64_t ns, char *buf, size_t len)
{
	time_t t = ns / 1000000000ull;
	struct tm tm;

	if (!ns || !gmtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "never");
}

static void fmt_size(uint64_t v, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double d = v;
	int u = 0;

	while (d >= 1024 && u < 5) {
		d /= 1024;
		u++;
	}
	if (u)
		snprintf(buf, len, "%.1f %s", d, unit[u]);
	else
		snprintf(buf, len, "%" PRIu64 " B", v);
}

/*
 * Parse "[STORE]" plus the options every command shares.  Returns the exit
 * code to use now, or -1 to go on.
 */
struct args {
	const char *store;
	bool json;
	const char *out;
	int npos;
	char *pos[3];
};

static int parse(int argc, char **argv, const char *shortopts, const struct option *lopts,
		 int maxpos, void (*usage)(FILE *), struct args *a)
{
	int c;

	memset(a, 0, sizeof(*a));
	optind = 0;	/* full getopt reset */
	while ((c = getopt_long(argc, argv, shortopts, lopts, NULL)) != -1) {
		switch (c) {
		case 's': a->store = optarg; break;
		case 'j': a->json = true; break;
		case 'o': a->out = optarg; break;
		case 'v': log_set_level(log_get_level() + 1); break;
		case 'h': usage(stdout); return KUP_EXIT_OK;
		default: return kup_usage_error(NULL);
		}
	}
	for (; optind < argc; optind++) {
		if (a->npos == maxpos)
			return kup_usage_error("unexpected argument '%s'", argv[optind]);
		a->pos[a->npos++] = argv[optind];
	}
	return -1;
}

static int open_store(const char *given, int flags, struct ppp **p)
{
	char dev[PATH_MAX];
	const char *path;

	if (locate(given, dev, sizeof(dev), &path))
		return -ENODEV;
	if (img_trust_path(path, -1, "refusing the store"))
		return -EPERM;
	return ppp_open(path, flags, p);
}

/* ---- format --------------------------------------------------------- */

static void format_usage(FILE *f)
{
	fprintf(f,
		"Usage: kup ppp format DEV|FILE [--size SIZE] [--extent-size SIZE]\n"
		"                      [--checksum xxh3|xxhash64|crc32c] [--force] [--sparse]\n\n"
		"Create an empty store (no checkpoint) with a new UUID.  A FILE is\n"
		"created (mode 0600) or recreated and preallocated; a device is used\n"
		"whole unless --size asks for less.  A FILE in a hugetlbfs mount is a\n"
		"store in reserved huge pages (/proc/sys/vm/nr_hugepages): whole huge\n"
		"pages, written through its mapping.\n\n"
		"  --size SIZE         store size (e.g. 256M, 4G); required for a new file\n"
		"  --extent-size SIZE  checksum granularity, 4K..1G, default 1M\n"
		"  --checksum NAME     of every extent: xxh3 (default; vectorised, fast on\n"
		"                      any CPU), xxhash64 (plain integer arithmetic) or\n"
		"                      crc32c (fast only with a crc32 instruction)\n"
		"  --force             overwrite a device or file holding other data\n"
		"  --sparse            do not preallocate a file\n");
}

static int ppp_format_cmd(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "size", required_argument, 0, 'S' },
		{ "extent-size", required_argument, 0, 'E' },
		{ "checksum", required_argument, 0, 'C' },
		{ "force", no_argument, 0, 'f' },
		{ "sparse", no_argument, 0, 'p' },
		{ "verbose", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' },
		{}
	};
	struct ppp_format_opts o = { 0 };
	unsigned long long size = 0, es;
	struct ppp_status st;
	struct ppp *p;
	char sz[32];
	int c, r;

	optind = 0;
	while ((c = getopt_long(argc, argv, "fvh", lo, NULL)) != -1) {
		switch (c) {
		case 'S':
			if (kup_parse_size(optarg, &size) || !size || size >> 62) {
				return kup_usage_error("bad size '%s'", optarg);
			}
			break;
		case 'E':
			if (kup_parse_size(optarg, &es) || es > UINT32_MAX) {
				return kup_usage_error("bad extent size '%s'", optarg);
			}
			o.extent_size = es;
			break;
		case 'C':
			r = ppp_csum_parse(optarg);
			if (r < 0) {
				return kup_usage_error("unknown checksum '%s' (xxh3, xxhash64 or crc32c)", optarg);
			}
			o.csum = r;
			break;
		case 'f': o.flags |= PPP_FORMAT_FORCE; break;
		case 'p': o.flags |= PPP_FORMAT_SPARSE; break;
		case 'v': log_set_level(log_get_level() + 1); break;
		case 'h': format_usage(stdout); return KUP_EXIT_OK;
		default: return kup_usage_error(NULL);
		}
	}
	if (optind == argc)
		return kup_usage_error("DEV|FILE is needed: the device or file to format");
	if (optind != argc - 1)
		return kup_usage_error("unexpected argument '%s'", argv[optind + 1]);
	if (!size) {
		struct stat sb;

		if (stat(argv[optind], &sb) < 0 ? errno == ENOENT :
		    S_ISREG(sb.st_mode) && sb.st_size == 0) {
			return kup_usage_error("%s: --size is needed to create a store file", argv[optind]);
		}
	}
	r = ppp_format(argv[optind], size, &o);
	if (r)
		return KUP_EXIT_FAIL;
	if (ppp_open(argv[optind], PPP_RDONLY, &p) || ppp_status(p, &st))
		return KUP_EXIT_FAIL;
	fmt_size(st.size, sz, sizeof(sz));
	printf("%s: formatted, %" PRIu64 " bytes (%s), uuid %s, %s per %u KiB extent\n",
	       argv[optind], st.size, sz, st.uuid_str, st.csum_name, st.extent_size >> 10);
	ppp_close(p);
	return KUP_EXIT_OK;
}

/* ---- status --------------------------------------------------------- */

static void status_usage(FILE *f)
{
	fprintf(f,
		"Usage: kup ppp status [DEV|FILE] [--json]\n\n"
		"Show the store: size, space used by the checkpoint, generation,\n"
		"number of blobs, commit time, UUID.  Exit 1 if the store is unusable.\n\n"
		"  -j, --json   machine-readable output\n");
}

static int ppp_status_cmd(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "json", no_argument, 0, 'j' },
		{ "store", required_argument, 0, 's' },
		{ "verbose", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' },
		{}
	};
	char ct[40], ft[40], s1[32], s2[32];
	struct ppp_status st;
	struct args a;
	struct ppp *p;
	int r;

	r = parse(argc, argv, "js:vh", lo, 1, status_usage, &a);
	if (r >= 0)
		return r;
	if (open_store(a.npos ? a.pos[0] : a.store, PPP_RDONLY, &p))
		return KUP_EXIT_FAIL;
	r = ppp_status(p, &st);
	if (r && !st.generation) {
		ppp_close(p);
		return KUP_EXIT_FAIL;
	}
	fmt_time(st.commit_time_ns, ct, sizeof(ct));
	fmt_time(st.format_time_ns, ft, sizeof(ft));
	if (a.json) {
		json_t *o = json_object();

		kup_json_set(o, "path", kup_json_str(ppp_path(p)));
		kup_json_set(o, "backend", json_string(backend_name(st.backend)));
		kup_json_set(o, "hugetlbfs", json_boolean(st.map_only));
		kup_json_set(o, "uuid", json_string(st.uuid_str));
		kup_json_set(o, "version", json_integer(st.version));
		kup_json_set(o, "size", kup_json_u64(st.size));
		kup_json_set(o, "data_size", kup_json_u64(st.data_size));
		kup_json_set(o, "used", kup_json_u64(st.used));
		kup_json_set(o, "generation", kup_json_u64(st.generation));
		kup_json_set(o, "extent_size", json_integer(st.extent_size));
		kup_json_set(o, "checksum", json_string(st.csum_name));
		kup_json_set(o, "checkpoint", json_boolean(st.has_ckpt));
		kup_json_set(o, "valid", json_boolean(!r));
		kup_json_set(o, "blobs", json_integer(st.nblobs));
		kup_json_set(o, "blob_bytes", kup_json_u64(st.blob_bytes));
		kup_json_set(o, "committed", st.commit_time_ns ? json_string(ct) : json_null());
		kup_json_set(o, "commit_time_ns", kup_json_u64(st.commit_time_ns));
		kup_json_set(o, "formatted", json_string(ft));
		kup_json_set(o, "data_mark", kup_json_u64(st.data_mark));	/* 0: unknown */
		kup_json_set(o, "superblocks_valid",
			     json_integer(!!(st.sb_valid & 1) + !!(st.sb_valid & 2)));
		kup_json_print(stdout, o);
	} else {
		fmt_size(st.size, s1, sizeof(s1));
		printf("store:        %s (%s%s)\n", ppp_path(p), backend_name(st.backend),
		       st.map_only ? " in hugetlbfs: reserved huge pages, written through the "
		       "mapping" : "");
		printf("uuid:         %s\n", st.uuid_str);
		printf("format:       version %u, formatted %s\n", st.version, ft);
		printf("size:         %" PRIu64 " bytes (%s), extent size %u, %s\n",
		       st.size, s1, st.extent_size, st.csum_name);
		fmt_size(st.used, s1, sizeof(s1));
		printf("used:         %" PRIu64 " bytes (%s, %.1f%% of the data area)\n",
		       st.used, s1, st.data_size ? 100.0 * st.used / st.data_size : 0.0);
		printf("generation:   %" PRIu64 "\n", st.generation);
		if (!st.has_ckpt && st.commit_time_ns) {
			printf("checkpoint:   none (since %s)\n", ct);
		} else if (!st.has_ckpt) {
			printf("checkpoint:   none\n");
		} else if (r) {
			printf("checkpoint:   UNREADABLE (%s)\n", strerror(-r));
		} else {
			fmt_size(st.blob_bytes, s2, sizeof(s2));
			printf("checkpoint:   %u blob%s, %" PRIu64 " bytes (%s), committed %s\n",
			       st.nblobs, st.nblobs == 1 ? "" : "s", st.blob_bytes, s2, ct);
		}
		if (st.data_mark) {
			fmt_size(st.data_mark - (st.size - st.data_size), s1, sizeof(s1));
			printf("written:      up to offset %" PRIu64 " (a scrub wipes %s)\n",
			       st.data_mark, s1);
		} else {
			printf("written:      unknown (a scrub wipes the whole data area)\n");
		}
		printf("superblocks:  %d of 2 valid\n",
		       !!(st.sb_valid & 1) + !!(st.sb_valid & 2));
	}
	ppp_close(p);
	return r ? KUP_EXIT_FAIL : KUP_EXIT_OK;
}

/* ---- verify, scrub, ls ---------------------------------------------- */

static void verify_usage(FILE *f)
{
	fprintf(f,
		"Usage: kup ppp verify [DEV|FILE]\n\n"
		"Check the superblocks, the index and the checksum of every extent of\n"
		"every blob.  Exit 0 if all is well; otherwise 1, after naming each bad\n"
		"blob, extent and offset.\n");
}

static int ppp_verify_cmd(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "store", required_argument, 0, 's' },
		{ "verbose", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' },
		{}
	};
	struct ppp_status st;
	uint64_t nbad = 0;
	struct args a;
	struct ppp *p;
	int r;

	r = parse(argc, argv, "s:vh", lo, 1, verify_usage, &a);
	if (r >= 0)
		return r;
	if (open_store(a.npos ? a.pos[0] : a.store, PPP_RDONLY, &p))
		return KUP_EXIT_FAIL;
	r = ppp_verify(p, &nbad);
	if (r == -EBADMSG && nbad)
		;	/* each bad extent and the count were logged */
	else if (r)
		log_errno(r, "%s: verify failed", ppp_path(p));
	else if (!ppp_status(p, &st))
		printf("%s: ok, generation %" PRIu64 ", %s%u blob%s, %" PRIu64 " bytes\n",
		       ppp_path(p), st.generation, st.has_ckpt ? "" : "no checkpoint, ",
		       st.nblobs, st.nblobs == 1 ? "" : "s", st.blob_bytes);
	ppp_close(p);
	return r ? KUP_EXIT_FAIL : KUP_EXIT_OK;
}

static void scrub_usage(FILE *f)
{
	fprintf(f,
		"Usage: kup ppp scrub [DEV|FILE]\n\n"
		"After a successful restore: invalidate the checkpoint, then zero the\n"
		"whole data area so that no process memory lingers in the store.\n");
}

static int ppp_scrub_cmd(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "store", required_argument, 0, 's' },
		{ "verbose", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' },
		{}
	};
	struct ppp_status st;
	struct args a;
	struct ppp *p;
	int r;

	r = parse(argc, argv, "s:vh", lo, 1, scrub_usage, &a);
	if (r >= 0)
		return r;
	if (open_store(a.npos ? a.pos[0] : a.store, PPP_RDWR, &p))
		return KUP_EXIT_FAIL;
	r = ppp_scrub(p);
	if (!r && !ppp_status(p, &st))
		printf("%s: scrubbed, generation %" PRIu64 ", wiped %" PRIu64 " bytes\n",
		       ppp_path(p), st.generation, ppp_scrub_wiped(p));
	ppp_close(p);
	return r ? KUP_EXIT_FAIL : KUP_EXIT_OK;
}

static void ls_usage(FILE *f)
{
	fprintf(f,
		"Usage: kup ppp ls [DEV|FILE] [--json]\n\n"
		"List the blobs of the committed checkpoint: name, size, offset in the\n"
		"store, number of checksum extents.\n\n"
		"  -j, --json   a JSON list of {name, size, offset, extents}\n");
}

static int ppp_ls_cmd(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "json", no_argument, 0, 'j' },
		{ "store", required_argument, 0, 's' },
		{ "verbose", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' },
		{}
	};
	struct ppp_blob_info bi;
	json_t *list = NULL;
	struct ppp_ckpt *c;
	struct args a;
	struct ppp *p;
	int r;

	r = parse(argc, argv, "js:vh", lo, 1, ls_usage, &a);
	if (r >= 0)
		return r;
	if (open_store(a.npos ? a.pos[0] : a.store, PPP_RDONLY, &p))
		return KUP_EXIT_FAIL;
	r = ppp_ckpt_open(p, &c);
	if (r == -ENOENT && !a.json) {
		printf("%s: no checkpoint\n", ppp_path(p));
		ppp_close(p);
		return KUP_EXIT_OK;
	}
	if (r == -ENOENT) {
		printf("[]\n");
		ppp_close(p);
		return KUP_EXIT_OK;
	}
	if (r) {
		ppp_close(p);
		return KUP_EXIT_FAIL;
	}
	if (a.json)
		list = json_array();
	else
		printf("%-40s %14s %14s %8s\n", "NAME", "SIZE", "OFFSET", "EXTENTS");
	for (uint32_t i = 0; ppp_ckpt_blob(c, i, &bi) == 0; i++) {
		if (a.json) {
			json_t *o = json_object();

			kup_json_set(o, "name", kup_json_str(bi.name));
			kup_json_set(o, "size", kup_json_u64(bi.size));
			kup_json_set(o, "offset", kup_json_u64(bi.offset));
			kup_json_set(o, "extents", kup_json_u64(bi.nextents));
			json_array_append_new(list, o);
		} else {
			printf("%-40s %14" PRIu64 " %14" PRIu64 " %8" PRIu64 "\n", bi.name,
			       bi.size, bi.offset, bi.nextents);
		}
	}
	if (a.json)
		kup_json_print(stdout, list);
	ppp_ckpt_close(c);
	ppp_close(p);
	return KUP_EXIT_OK;
}

/* ---- put, get, rm (debugging) --------------------------------------- */

static void put_usage(FILE *f)
{
	fprintf(f,
		"Usage: kup ppp put [-s DEV|FILE] [--new] FILE NAME\n\n"
		"Commit a new checkpoint holding the blobs of the current one plus FILE\n"
		"('-': standard input) as blob NAME (replacing a blob of that name).\n\n"
		"  -s, --store DEV|FILE  the store (default: found on a block device)\n"
		"      --new             the new checkpoint holds only this blob\n");
}

/* Read all of @fd into @buf (@len bytes); -EIO if it is shorter. */
static int read_full(int fd, const char *what, uint8_t *buf, uint64_t len)
{
	while (len) {
		ssize_t n = read(fd, buf, len > (1u << 30) ? (1u << 30) : len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return log_errno(errno, "%s: read", what);
		if (n == 0) {
			log_err("%s: shorter than expected", what);
			return -EIO;
		}
		buf += n;
		len -= n;
	}
	return 0;
}

static int ppp_put_cmd(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "store", required_argument, 0, 's' },
		{ "new", no_argument, 0, 'N' },
		{ "verbose", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' },
		{}
	};
	const char *src, *name;
	bool fresh = false;
	struct ppp_txn *t = NULL;
	struct ppp_blob *b = NULL;
	struct stat sb;
	struct args a = { 0 };
	struct ppp *p = NULL;
	int fd = -1, c, r;

	optind = 0;
	while ((c = getopt_long(argc, argv, "s:vh", lo, NULL)) != -1) {
		switch (c) {
		case 's': a.store = optarg; break;
		case 'N': fresh = true; break;
		case 'v': log_set_level(log_get_level() + 1); break;
		case 'h': put_usage(stdout); return KUP_EXIT_OK;
		default: return kup_usage_error(NULL);
		}
	}
	if (optind > argc - 2)
		return kup_usage_error("FILE and NAME are needed");
	if (optind != argc - 2)
		return kup_usage_error("unexpected argument '%s'", argv[optind + 2]);
	src = argv[optind];
	name = argv[optind + 1];
	fd = strcmp(src, "-") ? open(src, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
	if (fd < 0) {
		log_errno(errno, "%s: open", src);
		return KUP_EXIT_FAIL;
	}
	if (open_store(a.store, PPP_RDWR, &p))
		goto fail;
	if (ppp_txn_begin(p, fresh ? PPP_TXN_REPLACE : PPP_TXN_APPEND, &t))
		goto fail;
	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
		/* straight into the store, no bounce buffer */
		if (ppp_blob_create(t, name, sb.st_size, &b) ||
		    read_full(fd, src, ppp_blob_data(b), sb.st_size))
			goto fail;
	} else {
		static uint8_t buf[1 << 16];
		ssize_t n;

		if (ppp_blob_create(t, name, PPP_SIZE_UNKNOWN, &b))
			goto fail;
		while ((n = read(fd, buf, sizeof(buf))) != 0) {
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				log_errno(errno, "%s: read", src);
				goto fail;
			}
			if (ppp_blob_write(b, buf, n))
				goto fail;
		}
	}
	r = ppp_blob_close(b);
	b = NULL;
	if (r)
		goto fail;
	r = ppp_txn_commit(t);
	t = NULL;
	if (r)
		goto fail;
	if (fd != STDIN_FILENO)
		close(fd);
	ppp_close(p);
	return KUP_EXIT_OK;
fail:
	/* an unclosed blob goes with its transaction */
	ppp_txn_abort(t);
	ppp_close(p);
	if (fd > STDIN_FILENO)
		close(fd);
	return KUP_EXIT_FAIL;
}

static void get_usage(FILE *f)
{
	fprintf(f,
		"Usage: kup ppp get [-s DEV|FILE] NAME [-o OUT]\n\n"
		"Write blob NAME of the committed checkpoint to standard output or OUT,\n"
		"after checking its checksums (exit 1, naming the bad extent, if one\n"
		"does not match).\n\n"
		"  -s, --store DEV|FILE  the store (default: found on a block device)\n"
		"  -o, --output OUT      write to OUT (created 0600) instead of stdout\n");
}

static int write_full(int fd, const char *what, const uint8_t *buf, uint64_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len > (1u << 30) ? (1u << 30) : len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return log_errno(errno, "%s: write", what);
		buf += n;
		len -= n;
	}
	return 0;
}

static int ppp_get_cmd(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "store", required_argument, 0, 's' },
		{ "output", required_argument, 0, 'o' },
		{ "verbose", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' },
		{}
	};
	struct ppp_blob_info bi;
	struct ppp_ckpt *c = NULL;
	const void *data;
	struct args a;
	struct ppp *p;
	int r, fd = STDOUT_FILENO, ret = KUP_EXIT_FAIL;

	r = parse(argc, argv, "s:o:vh", lo, 1, get_usage, &a);
	if (r >= 0)
		return r;
	if (a.npos != 1)
		return kup_usage_error("NAME is needed: the blob to write out");
	if (open_store(a.store, PPP_RDONLY, &p))
		return KUP_EXIT_FAIL;
	r = ppp_ckpt_open(p, &c);
	if (r == -ENOENT)
		log_err("%s: no checkpoint", ppp_path(p));
	if (r)
		goto out;
	r = ppp_blob_find(c, a.pos[0], &bi);
	if (r) {
		log_err("%s: no blob '%s' in the checkpoint", ppp_path(p), a.pos[0]);
		goto out;
	}
	if (ppp_blob_map(c, &bi, 0, &data))
		goto out;
	if (a.out) {
		fd = open(a.out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0) {
			log_errno(errno, "%s: open", a.out);
			goto out;
		}
	}
	if (!write_full(fd, a.out ? a.out : "stdout", data, bi.size))
		ret = KUP_EXIT_OK;
	if (a.out && close(fd) < 0) {
		log_errno(errno, "%s: close", a.out);
		ret = KUP_EXIT_FAIL;
	}
out:
	ppp_ckpt_close(c);
	ppp_close(p);
	return ret;
}

static void rm_usage(FILE *f)
{
	fprintf(f,
		"Usage: kup ppp rm [-s DEV|FILE] NAME\n\n"
		"Commit a new checkpoint holding the blobs of the current one but NAME.\n");
}

static int ppp_rm_cmd(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "store", required_argument, 0, 's' },
		{ "verbose", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' },
		{}
	};
	struct ppp_txn *t;
	struct args a;
	struct ppp *p;
	int r;

	r = parse(argc, argv, "s:vh", lo, 1, rm_usage, &a);
	if (r >= 0)
		return r;
	if (a.npos != 1)
		return kup_usage_error("NAME is needed: the blob to remove");
	if (open_store(a.store, PPP_RDWR, &p))
		return KUP_EXIT_FAIL;
	r = ppp_txn_begin(p, PPP_TXN_APPEND, &t);
	if (!r) {
		r = ppp_txn_remove(t, a.pos[0]);
		if (r)
			ppp_txn_abort(t);
		else
			r = ppp_txn_commit(t);
	}
	ppp_close(p);
	return r ? KUP_EXIT_FAIL : KUP_EXIT_OK;
}

/* ---- dispatch ------------------------------------------------------- */

const struct kup_command kup_ppp_commands[] = {
	{ "format", ppp_format_cmd, "create an empty store", KUP_NEED_STORE },
	{ "status", ppp_status_cmd, "size, use, generation, checkpoint" },
	{ "verify", ppp_verify_cmd, "check every checksum" },
	{ "scrub", ppp_scrub_cmd, "drop the checkpoint and wipe the data", KUP_NEED_STORE },
	{ "ls", ppp_ls_cmd, "list the blobs of the checkpoint" },
	{ "put", ppp_put_cmd, "add a blob", KUP_NEED_STORE },
	{ "get", ppp_get_cmd, "write a blob out" },
	{ "rm", ppp_rm_cmd, "remove a blob", KUP_NEED_STORE },
	{}
};
