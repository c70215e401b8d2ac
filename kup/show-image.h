/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KUP_SHOW_IMAGE_H
#define KUP_SHOW_IMAGE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Decode one image (kup show): 0, or -1 when it is not a valid image. */
int kup_show_image(FILE *out, const void *data, size_t len, const char *name, bool json,
		   bool first);
#endif
