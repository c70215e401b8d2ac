// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: mntns.img, the mount table of a sandboxed tree (a
 * MntnsImage) as a restore checks it before it rebuilds anything from it
 * (mount points, kinds, sources, saved files and their sizes).
 */
#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "kup-mntns.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	MntnsImage *img;

	log_set_level(-1);
	img = mntns_image__unpack(NULL, size, data);
	if (!img)
		return 0;
	ckpt_validate_mntns(img);
	mntns_image__free_unpacked(img, NULL);
	return 0;
}
