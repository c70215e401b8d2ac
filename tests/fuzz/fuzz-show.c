// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: kup show's decoder (ckpt-core/show-image.c) on any image
 * bytes, as text and (with its record checksums fixed up) as JSON.
 * Output goes to /dev/null.
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
	ckpt_show_image(out, buf, size, "fuzz.img", false, true);
	fix_container_crcs(buf, size);		/* to reach the decoder */
	ckpt_show_image(out, buf, size, "fuzz.img", true, false);
	free(buf);
	return 0;
}
