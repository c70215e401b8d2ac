// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kup show: decode a checkpoint's images to readable text or JSON, from a
 * directory, one image file or a persistent page store, and summarise it
 * (--ps, --fds, --mappings).  The decoder and the summaries are the
 * engine's (ckpt-core/show-image.c, show-summary.c); this file only reads
 * the bytes.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt-summary.h"
#include "image.h"
#include "json.h"
#include "kup.h"
#include "ppp.h"

/*
 * kup show reads images from anywhere (it only decodes them): a FIFO must
 * not block it, nor a file truncated while it reads crash it (SIGBUS through
 * a mapping), so images are read into memory.
 */
#define SHOW_MAX_IMAGE	(1ULL << 30)

static void set_free(struct ckpt_show_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		free(set->v[i].name);
		free(set->v[i].data);
	}
	free(set->v);
	set->v = NULL;
	set->n = 0;
}

static struct ckpt_show_blob *set_add(struct ckpt_show_set *set, const char *name)
{
	struct ckpt_show_blob *v = realloc(set->v, (set->n + 1) * sizeof(*v));

	if (!v)
		return NULL;
	set->v = v;
	v += set->n;
	v->data = NULL;
	v->len = 0;
	v->name = strdup(name);
	if (!v->name)
		return NULL;
	set->n++;
	return v;
}

static bool is_metadata(const void *hdr, size_t len)
{
	return len >= IMG_HDR_SIZE && !memcmp(hdr, IMG_MAGIC, 8);
}

/* ---- a directory or a file ------------------------------------------------ */

static int read_all(int fd, void *buf, size_t len, const char *name)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = read(fd, (char *)buf + got, len - got);

		if (r < 0)
			return log_errno(errno, "cannot read %s", name), -1;
		if (!r) {
			log_err("%s: could read %zu of its %zu bytes", name, got, len);
			return -1;
		}
		got += r;
	}
	return 0;
}

/*
 * Add image @name (in @dfd) to @set: a metadata image read whole, any other
 * (page images) by its size only.  @explicit: named by the user, who is told
 * when it is no image.
 */
static int load_file(int dfd, const char *name, bool explicit, struct ckpt_show_set *set)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	char hdr[IMG_HDR_SIZE];
	struct ckpt_show_blob *b;
	struct stat st;
	int ret = -1;

	if (fd < 0)
		return log_errno(errno, "cannot open %s", name), -1;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		log_err("%s: not a kup image (not a regular file)", name);
		goto out;
	}
	b = set_add(set, name);
	if (!b) {
		log_errno(ENOMEM, "cannot read %s", name);
		goto out;
	}
	b->len = st.st_size;
	if (st.st_size < IMG_HDR_SIZE || read_all(fd, hdr, sizeof(hdr), name) ||
	    !is_metadata(hdr, sizeof(hdr))) {
		if (explicit)
			log_err("%s: not a kup metadata image", name);
		ret = explicit ? -1 : 0;
		goto out;
	}
	if ((unsigned long long)st.st_size > SHOW_MAX_IMAGE) {
		log_err("%s: not a kup image (%lld bytes)", name, (long long)st.st_size);
		goto out;
	}
	b->data = malloc(b->len);
	if (!b->data) {
		log_errno(ENOMEM, "cannot read %s", name);
		goto out;
	}
	memcpy(b->data, hdr, sizeof(hdr));
	if (read_all(fd, (char *)b->data + sizeof(hdr), b->len - sizeof(hdr), name)) {
		free(b->data);
		b->data = NULL;
		goto out;
	}
	ret = 0;
out:
	close(fd);
	return ret;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int load_dir(const char *dir, struct ckpt_show_set *set)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent **ents;
	int n, bad = 0;

	if (dfd < 0)
		return log_errno(errno, "cannot open %s", dir), -1;
	n = scandir(dir, &ents, NULL, by_name);
	if (n < 0) {
		log_errno(errno, "cannot list %s", dir);
		close(dfd);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		const char *nm = ents[i]->d_name;
		size_t l = strlen(nm);

		if (l > 4 && !strcmp(nm + l - 4, ".img") && nm[0] != '.')
			bad |= load_file(dfd, nm, false, set);
		free(ents[i]);
	}
	free(ents);
	close(dfd);
	return bad ? -1 : 0;
}

/* ---- a store ----------------------------------------------------------------- */

static int load_blob(struct ppp_ckpt *c, const struct ppp_blob_info *bi, const char *where,
		     struct ckpt_show_set *set)
{
	struct ckpt_show_blob *b = set_add(set, bi->name);
	char hdr[IMG_HDR_SIZE];
	int r;

	if (!b)
		return log_errno(ENOMEM, "%s: cannot read %s", where, bi->name), -1;
	b->len = bi->size;
	if (bi->size < IMG_HDR_SIZE || ppp_blob_read(c, bi, 0, hdr, sizeof(hdr)) ||
	    !is_metadata(hdr, sizeof(hdr)))
		return 0;
	if (bi->size > SHOW_MAX_IMAGE) {
		log_err("%s: %s: not a kup image (%" PRIu64 " bytes)", where, bi->name, bi->size);
		return -1;
	}
	b->data = malloc(bi->size);
	if (!b->data)
		return log_errno(ENOMEM, "%s: cannot read %s", where, bi->name), -1;
	r = ppp_blob_read(c, bi, 0, b->data, bi->size);
	if (r) {
		log_errno(r, "%s: cannot read %s", where, bi->name);
		free(b->data);
		b->data = NULL;
		return -1;
	}
	return 0;
}

/*
 * The committed checkpoint of the store @given (a file, a device, "auto"),
 * its blobs read through ppp (each extent's checksum checked).  Read-only,
 * and any store: kup show only decodes.
 */
static int load_store(const char *given, struct ckpt_show_set *set)
{
	struct ppp_blob_info bi;
	struct ppp_ckpt *c;
	char dev[PATH_MAX];
	const char *path;
	struct ppp *p;
	int r, bad = 0;

	ppp_set_logger(kup_ppp_logger);
	if (kup_ppp_locate(given, dev, sizeof(dev), &path))
		return -1;
	r = ppp_open(path, PPP_RDONLY, &p);
	if (r) {
		/* ppp said why, but for this one */
		if (r == -ENODATA)
			log_err("%s holds no persistent page store", path);
		return -1;
	}
	r = ppp_ckpt_open(p, &c);
	if (r) {
		if (r == -ENOENT)
			log_err("store %s holds no checkpoint", path);
		else
			log_errno(r, "store %s: cannot read its checkpoint", path);
		ppp_close(p);
		return -1;
	}
	for (uint32_t i = 0; !ppp_ckpt_blob(c, i, &bi); i++) {
		size_t l = strlen(bi.name);

		if (l > 4 && !strcmp(bi.name + l - 4, ".img"))
			bad |= load_blob(c, &bi, path, set);
	}
	ppp_ckpt_close(c);
	ppp_close(p);
	return bad ? -1 : 0;
}

/*
 * Is @path (not a directory) a store rather than an image: a block device,
 * or a file that is no image and that ppp opens?  Asked quietly.
 */
static bool is_store(const char *path, const struct stat *st)
{
	char hdr[8];
	struct ppp *p;
	int fd, r;

	if (S_ISREG(st->st_mode)) {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
		if (fd < 0)
			return false;
		r = read(fd, hdr, sizeof(hdr));
		close(fd);
		if (r == (int)sizeof(hdr) && !memcmp(hdr, IMG_MAGIC, 8))
			return false;
	} else if (!S_ISBLK(st->st_mode)) {
		return false;
	}
	ppp_set_logger(kup_ppp_quiet_logger);
	r = ppp_open(path, PPP_RDONLY, &p);
	ppp_set_logger(kup_ppp_logger);
	if (r)
		return false;
	ppp_close(p);
	return true;
}

/* ---- output ------------------------------------------------------------------ */

/* Every image of @set, or those named by @names (NULL-terminated). */
static int show_images(const struct ckpt_show_set *set, char **names, bool json)
{
	json_t *all = json ? json_object() : NULL;
	int bad = 0;

	for (char **nm = names; nm && *nm; nm++)
		if (!ckpt_show_find(set, *nm)) {
			log_err("no image %s in the checkpoint", *nm);
			bad = 1;
		}
	for (size_t i = 0; i < set->n; i++) {
		const struct ckpt_show_blob *b = &set->v[i];
		json_t *img;
		bool wanted = !names || !*names;

		for (char **nm = names; nm && *nm; nm++)
			wanted |= !strcmp(*nm, b->name);
		if (!wanted)
			continue;
		if (!b->data) {
			if (!json)
				printf("== %s (raw pages, %zu bytes)\n", b->name, b->len);
			continue;
		}
		img = ckpt_show_image(b->data, b->len, b->name, !json);
		if (!img) {
			bad = 1;
			continue;
		}
		if (json)
			kup_json_set(all, b->name, img);
		else
			ckpt_show_text(stdout, b->name, img), json_decref(img);
	}
	if (json && kup_json_print(stdout, all))
		bad = 1;
	return bad;
}

enum summary { SUM_NONE, SUM_PS, SUM_FDS, SUM_MAPPINGS };

/* Length of the part prefix "pN/" of @name (a store of several trees), or 0. */
static size_t part_prefix(const char *name)
{
	size_t i = 1;

	if (name[0] != 'p' || name[1] < '1' || name[1] > '9')
		return 0;
	while (name[i] >= '0' && name[i] <= '9')
		i++;
	return name[i] == '/' ? i + 1 : 0;
}

static json_t *summary_of(const struct ckpt_show_set *set, enum summary what, uint32_t pid)
{
	return what == SUM_PS ? ckpt_show_ps(set) :
	       what == SUM_FDS ? ckpt_show_fds(set, pid) : ckpt_show_mappings(set, pid);
}

/*
 * The summary of a store of several trees (blobs pN/NAME, docs/ppp-format.md):
 * each part's, its rows led by "part"; with @pid, of the part holding it.
 * NULL when @set has no parts.
 */
static json_t *parts_summary(const struct ckpt_show_set *set, enum summary what, uint32_t pid,
			     bool *bad)
{
	struct ckpt_show_set view = { .v = calloc(set->n ? set->n : 1, sizeof(*set->v)) };
	json_t *all = NULL;
	char done[KUP_MAX_TREES * 8] = "", core[32];

	snprintf(core, sizeof(core), "core-%u.img", pid);
	for (size_t i = 0; view.v && i < set->n; i++) {
		size_t pl = part_prefix(set->v[i].name);
		char tag[16];
		json_t *rows, *row;
		size_t k;

		if (!pl || pl >= sizeof(tag) - 1)
			continue;
		/* " pN " in @done: that part is done */
		snprintf(tag, sizeof(tag), " %.*s ", (int)pl - 1, set->v[i].name);
		if (strstr(done, tag) || strlen(done) + strlen(tag) >= sizeof(done))
			continue;
		strcat(done, tag);
		memmove(tag, tag + 1, pl - 1);
		tag[pl - 1] = 0;
		view.n = 0;
		for (size_t j = 0; j < set->n; j++)
			if (!strncmp(set->v[j].name, set->v[i].name, pl)) {
				view.v[view.n] = set->v[j];
				view.v[view.n++].name += pl;
			}
		if (!all)
			all = json_array();
		if (pid && !ckpt_show_find(&view, core))
			continue;
		rows = summary_of(&view, what, pid);
		if (!rows) {
			*bad = true;
			continue;
		}
		json_array_foreach(rows, k, row) {
			json_t *r = json_object();

			kup_json_set(r, "part", json_string(tag));
			json_object_update(r, row);
			json_array_append_new(all, r);
		}
		json_decref(rows);
	}
	free(view.v);
	if (all && pid && !json_array_size(all) && !*bad) {
		log_err("pid %u is not a process of the checkpoint", pid);
		*bad = true;
	}
	return all;
}

static int show_summary(const struct ckpt_show_set *set, enum summary what, uint32_t pid,
			bool json)
{
	bool bad = false;
	json_t *rows = parts_summary(set, what, pid, &bad);

	if (!rows && !bad)
		rows = summary_of(set, what, pid);
	if (!rows)
		return 1;
	if (json)
		return kup_json_print(stdout, rows) || bad ? 1 : 0;
	ckpt_show_table(stdout, rows);
	json_decref(rows);
	return bad;
}

static bool parse_pid(const char *s, uint32_t *pid)
{
	char *end;
	unsigned long v;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || !v || v > INT_MAX)
		return false;
	*pid = v;
	return true;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: kup show DIR|IMAGE|STORE [--json] [--ps | --fds [PID] | --mappings [PID]]\n"
		"       kup show --ppp STORE [IMAGE...] [--json] [--ps | --fds [PID] | --mappings [PID]]\n\n"
		"Decode a kup image, every image of a checkpoint directory, or the checkpoint\n"
		"in a persistent page store (a file, a device, or auto; named without --ppp\n"
		"when it is a device or a store file), to text or to JSON\n"
		"(one object keyed by image name, protobuf's JSON mapping).  Page images are\n"
		"listed by size.\n\n"
		"  --ppp STORE       the store to read (a device, a file, or auto)\n"
		"  --json            JSON instead of text\n"
		"  --ps              the process tree: pid, ppid, pgid, sid, threads, state, comm, exe\n"
		"  --fds [PID]       file descriptors (of PID, or all): kind and path/peer/address\n"
		"  --mappings [PID]  memory mappings: range, protection, kind, file, pages dumped\n"
		"A store of several trees: the rows of --ps, --fds and --mappings are led by\n"
		"their tree's part (p1, p2...).\n");
}

int cmd_show(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, 0, 'J' },
		{ "ppp", required_argument, 0, 'P' },
		{ "ps", no_argument, 0, 'p' },
		{ "fds", optional_argument, 0, 'f' },
		{ "mappings", optional_argument, 0, 'm' },
		{ "help", no_argument, 0, 'h' },
		{}
	};
	struct ckpt_show_set set = { 0 };
	enum summary what = SUM_NONE;
	const char *store = NULL;
	bool json = false;
	uint32_t pid = 0;
	struct stat st = { 0 };
	int c, bad = 0, npos;
	char **pos;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'J': json = true; break;
		case 'P': store = optarg; break;
		case 'p': case 'f': case 'm':
			if (what)
				return kup_usage_error("--ps, --fds and --mappings exclude each other");
			what = c == 'p' ? SUM_PS : c == 'f' ? SUM_FDS : SUM_MAPPINGS;
			if (optarg && !parse_pid(optarg, &pid))
				return kup_usage_error("%s: not a pid", optarg);
			break;
		case 'h': usage(stdout); return 0;
		default: return kup_usage_error(NULL);
		}
	}
	pos = argv + optind;
	npos = argc - optind;
	/* --fds PID, --mappings PID: the pid after the source */
	if ((what == SUM_FDS || what == SUM_MAPPINGS) && !pid && npos > (store ? 0 : 1) &&
	    parse_pid(pos[npos - 1], &pid))
		npos--;
	if (!store && !npos)
		return kup_usage_error("DIR, IMAGE or STORE is needed (or --ppp STORE)");
	if ((!store && npos != 1) || (what && npos > (store ? 0 : 1)))
		return kup_usage_error("unexpected argument '%s'", pos[store ? 0 : 1]);
	pos[npos] = NULL;
	if (!store && !stat(pos[0], &st) && !S_ISDIR(st.st_mode) && is_store(pos[0], &st))
		store = pos[0];	/* kup show /dev/pmem0, kup show store.ppp */
	if (store) {
		if (store == pos[0])
			pos++;
		bad = load_store(store, &set);
	} else if (stat(pos[0], &st)) {
		return log_errno(errno, "cannot open %s", pos[0]), KUP_EXIT_FAIL;
	} else if (S_ISDIR(st.st_mode)) {
		bad = load_dir(pos[0], &set);
	} else {
		if (what) {
			return kup_usage_error("%s: --ps, --fds and --mappings read a checkpoint (a directory or --ppp)",
				pos[0]);
		}
		bad = load_file(AT_FDCWD, pos[0], true, &set);
	}
	if (what)
		bad |= show_summary(&set, what, pid, json);
	else if (!bad || S_ISDIR(st.st_mode) || store)
		bad |= show_images(&set, store ? pos : NULL, json);
	set_free(&set);
	return bad ? KUP_EXIT_FAIL : 0;
}

