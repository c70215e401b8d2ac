/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * For the image fuzz targets: recompute the record checksums of image
 * containers (docs/image-format.md), so that a mutation reaches the protobuf
 * decoder and the cross-checks instead of dying at the first crc.  Targets
 * run each input as is and fixed up.
 */
#ifndef KUP_FUZZ_FIX_CRC_H
#define KUP_FUZZ_FIX_CRC_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

#include "image.h"

/* One container of @len bytes. */
static void fix_container_crcs(uint8_t *buf, size_t len)
{
	size_t off = IMG_HDR_SIZE;

	if (len < IMG_HDR_SIZE || memcmp(buf, IMG_MAGIC, 8))
		return;
	while (len - off >= IMG_REC_HDR_SIZE) {
		uint32_t rlen, crc;

		memcpy(&rlen, buf + off, 4);
		rlen = le32toh(rlen);
		if (rlen > len - off - IMG_REC_HDR_SIZE)
			break;
		crc = htole32(img_crc32c(0, buf + off + IMG_REC_HDR_SIZE, rlen));
		memcpy(buf + off + 4, &crc, 4);
		off += IMG_REC_HDR_SIZE + rlen;
	}
}

/* Every container of a blob set ([u8 name length][name][u32 LE length][data]). */
static void fix_set_crcs(uint8_t *buf, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		size_t l = buf[pos];
		uint32_t d;

		if (len - pos - 1 < l + 4)
			break;
		memcpy(&d, buf + pos + 1 + l, 4);
		d = le32toh(d);
		if (len - pos - 1 - l - 4 < d)
			break;
		fix_container_crcs(buf + pos + 1 + l + 4, d);
		pos += 1 + l + 4 + d;
	}
}

#endif
