// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: kup show's decoder (ckpt-core/show-image.c) on any image
 * bytes, as text and JSON (the second time with its record checksums fixed
 * up, to reach the typed decoders: sockets, registers, siginfo, BPF...),
 * and the summaries (show-summary.c) over the image as each of the images
 * they read.  Output goes to /dev/null.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fix-crc.h"
#include "log.h"
#include "ckpt-summary.h"

static FILE *out;

static void show(const uint8_t *buf, size_t size, bool text)
{
	json_t *img = ckpt_show_image(buf, size, "fuzz.img", text);

	if (!img)
		return;
	if (text)
		ckpt_show_text(out, "fuzz.img", img);
	else
		json_dumpf(img, out, JSON_PRESERVE_ORDER);
	json_decref(img);
}

/* The summaries read pstree, files, fdtable, core-1 and mm-1: all these bytes. */
static void summaries(uint8_t *buf, size_t size)
{
	static char *names[] = { "pstree.img", "files.img", "fdtable.img", "core-1.img",
				 "mm-1.img" };
	struct ckpt_show_blob v[5];
	struct ckpt_show_set set = { v, 5 };
	json_t *rows;

	for (int i = 0; i < 5; i++)
		v[i] = (struct ckpt_show_blob){ names[i], buf, size };
	rows = ckpt_show_ps(&set);
	if (rows)
		ckpt_show_table(out, rows), json_decref(rows);
	rows = ckpt_show_fds(&set, 0);
	if (rows)
		ckpt_show_table(out, rows), json_decref(rows);
	rows = ckpt_show_mappings(&set, 0);
	if (rows)
		ckpt_show_table(out, rows), json_decref(rows);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exactly @size bytes, so that ASan sees any read past the image */
	uint8_t *buf = malloc(size ? size : 1);

	log_set_level(-1);
	if (!out)
		out = fopen("/dev/null", "w");
	if (!buf || !out)
		abort();
	memcpy(buf, data, size);
	show(buf, size, true);
	fix_container_crcs(buf, size);		/* to reach the decoder */
	show(buf, size, false);
	show(buf, size, true);
	summaries(buf, size);
	free(buf);
	return 0;
}
