/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Shared by the unit tests of the files image: random bit flips and
 * truncations of a packed FilesImage, each unpacked and validated.  Nothing
 * is asserted: a crash, a leak or undefined behaviour (the test build runs
 * under ASan/UBSan) is the failure.
 */
#ifndef KUP_TEST_MUTATE_FILES_H
#define KUP_TEST_MUTATE_FILES_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "log.h"

static void mutate_files_image(const FilesImage *fi, int iters, unsigned int seed)
{
	size_t len = files_image__get_packed_size(fi);
	uint8_t *buf = malloc(len), *m = malloc(len);

	files_image__pack(fi, buf);
	log_set_level(-1);
	for (int it = 0; it < iters; it++) {
		FilesImage *u;
		size_t l = len;

		memcpy(m, buf, len);
		for (int k = 0; k < 1 + it % 4; k++) {
			seed = seed * 1103515245 + 12345;
			m[(seed >> 8) % len] ^= (uint8_t)(1u << ((seed >> 3) & 7));
		}
		if (it % 7 == 0)
			l = (seed >> 4) % len;
		u = files_image__unpack(NULL, l, m);
		if (!u)
			continue;
		files_validate_image(u);
		files_image__free_unpacked(u, NULL);
	}
	log_set_level(LOG_LVL_INFO);
	free(buf);
	free(m);
}

#endif
