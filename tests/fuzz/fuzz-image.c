// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: every parser of image bytes.  The first input byte picks
 * the image kind; the rest is parsed as a container of that kind (a files
 * image also goes through files_validate_image(), and so through every
 * kind's validator: socket data included), and the vDSO symbol table parser
 * gets the raw bytes too.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "files.h"
#include "image.h"
#include "internal.h"
#include "ipc-sysv.h"
#include "log.h"

/* The checks restore runs on what it parsed, before it trusts it. */
static void validate(enum img_kind kind, ProtobufCMessage **msgs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (kind == IMG_CORE) {
			seccomp_validate((CoreEntry *)msgs[i]);
		} else if (kind == IMG_IPC) {
			ipc_validate_image((IpcImage *)msgs[i]);
		} else if (kind == IMG_FILES) {
			files_validate_image((FilesImage *)msgs[i]);
		} else if (kind == IMG_FDTABLE) {
			/* against a files image holding every id the tables use */
			FdtableImage *ft = (FdtableImage *)msgs[i];
			FilesImage fi = FILES_IMAGE__INIT;
			FileEntry fes[64], *fp[64];

			for (size_t t = 0; t < ft->n_tables; t++) {
				FdtableEntry *te = ft->tables[t];

				fi.n_files = 0;
				fi.files = fp;
				for (size_t k = 0; k < te->n_fds && fi.n_files < 64; k++) {
					bool seen = false;

					for (size_t j = 0; j < fi.n_files; j++)
						seen |= fes[j].id == te->fds[k]->file_id;
					if (seen || !te->fds[k]->file_id)
						continue;
					file_entry__init(&fes[fi.n_files]);
					fes[fi.n_files].id = te->fds[k]->file_id;
					fes[fi.n_files].kind = FILE_KIND__FILE_REG;
					fp[fi.n_files] = &fes[fi.n_files];
					fi.n_files++;
				}
				files_validate_fdtable(&fi, te);
			}
		}
	}
}

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
		validate(kind, msgs, n);
		img_free_msgs(msgs, n);
	}
	if (!vdso_parse_symtab(data + 1, size - 1, &t))
		vdso_symtab_free(&t);
	return 0;
}
