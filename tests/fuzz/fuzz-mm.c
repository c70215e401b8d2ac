// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: validate_mm, the checks of one process's memory
 * (ckpt_validate_mm).  The input is an mm_image (protobuf, as a record of
 * mm-PID.img holds it), checked against a files image defining ids 1..8 and
 * a shmem image of three objects.
 */
#include <stddef.h>
#include <stdint.h>

#include "ckpt-images.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FileEntry fe[8], *fp[8];
	ShmemEntry se[3], *sp[3];
	FilesImage files = FILES_IMAGE__INIT;
	ShmemImage shm = SHMEM_IMAGE__INIT;
	MmImage *mm;

	log_set_level(-1);
	for (int i = 0; i < 8; i++) {
		file_entry__init(&fe[i]);
		fe[i].id = i + 1;
		fe[i].kind = FILE_KIND__FILE_REG;
		fp[i] = &fe[i];
	}
	for (int i = 0; i < 3; i++) {
		shmem_entry__init(&se[i]);
		se[i].id = i + 1;
		se[i].size = 8192;
		sp[i] = &se[i];
	}
	files.n_files = 8;
	files.files = fp;
	shm.n_entries = 3;
	shm.entries = sp;
	mm = mm_image__unpack(NULL, size, data);
	if (!mm)
		return 0;
	ckpt_validate_mm(mm, mm->pid, &files, &shm);
	mm_image__free_unpacked(mm, NULL);
	return 0;
}
