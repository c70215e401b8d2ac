// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kup show: decode images to readable text or JSON (the decoder is the engine's,
 * ckpt-core/show-image.c).
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "kup.h"
#include "ckpt-summary.h"

/*
 * Show one image file; returns 0, or -1 when it is not a valid image.
 * kup show reads images from anywhere (it only decodes them): a FIFO must
 * not block it, nor a file truncated while it reads crash it (SIGBUS through
 * a mapping), so the image is read into memory.
 */
#define SHOW_MAX_IMAGE	(1ULL << 30)

static int show_file(int dfd, const char *name, bool json, bool *first)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	struct stat st;
	char *data;
	size_t len = 0;
	int ret = -1;

	if (fd < 0) {
		log_errno(errno, "cannot open %s", name);
		return -1;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		log_err("%s: not a kup image (not a regular file)", name);
		return -1;
	}
	if (st.st_size < IMG_HDR_SIZE || (unsigned long long)st.st_size > SHOW_MAX_IMAGE) {
		close(fd);
		log_err("%s: not a kup image (%lld bytes)", name, (long long)st.st_size);
		return -1;
	}
	data = malloc(st.st_size);
	while (data && len < (size_t)st.st_size) {
		ssize_t r = read(fd, data + len, st.st_size - len);

		if (r <= 0)
			break;
		len += r;
	}
	close(fd);
	if (!data)
		return log_errno(ENOMEM, "cannot read %s", name), -1;
	if (len < IMG_HDR_SIZE) {
		log_err("%s: not a kup image (could read %zu bytes)", name, len);
		goto out;
	}
	ret = ckpt_show_image(stdout, data, len, name, json, *first);
	if (!ret)
		*first = false;
out:
	free(data);
	return ret;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int cmd_show(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, 0, 'J' },
		{ "help", no_argument, 0, 'h' },
		{}
	};
	bool json = false, first = true;
	struct stat st;
	int c, bad = 0;

	log_set_prefix("kup show");
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'J': json = true; break;
		case 'h':
			printf("Usage: kup show DIR|IMAGE [--json]\n\n"
			       "Decode a kup image, or every metadata image of a directory, to text\n"
			       "or JSON (one object keyed by file name).  Page images are listed by size.\n");
			return 0;
		default: return KUP_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "Usage: kup show DIR|IMAGE [--json]\n");
		return KUP_EXIT_USAGE;
	}
	if (stat(argv[optind], &st))
		return log_errno(errno, "cannot open %s", argv[optind]), KUP_EXIT_FAIL;
	if (json)
		putchar('{');
	if (S_ISDIR(st.st_mode)) {
		struct dirent **ents;
		int dfd = open(argv[optind], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int n = scandir(argv[optind], &ents, NULL, by_name);

		for (int i = 0; i < n; i++) {
			const char *nm = ents[i]->d_name;

			if (strstr(nm, ".img") && strncmp(nm, "pages-", 6) && strncmp(nm, "shmem-", 6))
				bad |= show_file(dfd, nm, json, &first);
			else if (!json && strstr(nm, ".img")) {
				struct stat ps;
				if (!fstatat(dfd, nm, &ps, 0))
					printf("== %s (raw pages, %lld bytes)\n", nm, (long long)ps.st_size);
			}
			free(ents[i]);
		}
		if (n >= 0)
			free(ents);
		close(dfd);
	} else {
		bad |= show_file(AT_FDCWD, argv[optind], json, &first);
	}
	if (json)
		printf("}\n");
	return bad ? KUP_EXIT_FAIL : 0;
}

KUP_COMMAND("show", cmd_show, "decode images to text or JSON");
