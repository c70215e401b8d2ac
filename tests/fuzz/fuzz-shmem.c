// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: the shared-memory images.  The input is a shmem_image
 * (protobuf, the record of shmem.img) checked by ckpt_validate_shmem(),
 * then each entry against a page image of 0..15 pages (its last input byte
 * picks how many) as shmem_rst_open() checks each shmem-ID.img.
 */
#include <stddef.h>
#include <stdint.h>

#include "ckpt-images.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FileEntry fe[4], *fp[4];
	FilesImage files = FILES_IMAGE__INIT;
	ShmemImage *shm;

	log_set_level(-1);
	if (!size)
		return 0;
	for (int i = 0; i < 4; i++) {
		file_entry__init(&fe[i]);
		fe[i].id = i + 1;
		fe[i].kind = FILE_KIND__FILE_MEMFD;
		fp[i] = &fe[i];
	}
	files.n_files = 4;
	files.files = fp;
	shm = shmem_image__unpack(NULL, size - 1, data);
	if (!shm)
		return 0;
	if (!ckpt_validate_shmem(shm, &files))
		for (size_t i = 0; i < shm->n_entries; i++)
			ckpt_validate_shmem_pages(shm->entries[i], (data[size - 1] & 15) * PAGE_SIZE_K);
	shmem_image__free_unpacked(shm, NULL);
	return 0;
}
