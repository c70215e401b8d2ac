// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: every parser of image bytes.  The first input byte picks
 * the image kind; the rest is parsed as a container of that kind (a files
 * image also goes through files_validate_image(), and so through every
 * kind's validator: socket data included), and the vDSO symbol table parser
 * gets the raw bytes too.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "files.h"
#include "image.h"
#include "internal.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ProtobufCMessage **msgs;
	VdsoSymtab t;
	size_t n;
	enum img_kind kind;

	log_set_level(-1);
	if (size < 1)
		return 0;
	kind = 1 + data[0] % (IMG_KIND_MAX - 1);
	if (img_kind_desc(kind) &&
	    !img_parse(data + 1, size - 1, kind, img_kind_desc(kind), "fuzz", &msgs, &n)) {
		for (size_t i = 0; kind == IMG_FILES && i < n; i++)
			files_validate_image((const FilesImage *)msgs[i]);
		img_free_msgs(msgs, n);
	}
	if (!vdso_parse_symtab(data + 1, size - 1, &t))
		vdso_symtab_free(&t);
	return 0;
}
