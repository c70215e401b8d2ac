// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: the store opened from a file and from a block device,
 * as kup opens it at boot (ppp_open(), not the in-memory ppp_open_mem() of
 * fuzz-ppp.c).  Each input is written to a regular file of exactly its size
 * and to a loop device of STORE_DEV bytes (its start; the rest zeroed),
 * then opened read-only and walked: status, verify, every blob read back
 * into an aligned buffer (on the device: through O_DIRECT), verified.
 * Superblock and index checksums are fixed up as fuzz-ppp.c does, so that
 * mutations get past them.
 *
 * The loop device is made once (root, /dev/loop-control) with autoclear:
 * it goes away with the process.  Without one only the file is opened.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "ppp.h"
#include "../../ppp/ppp-int.h"

#define STORE_DEV	(256u << 10)

static char file_path[64], dev_path[64];
static int dev_fd = -1;		/* open: keeps the autoclear device */
static uint8_t *dev_buf, *rbuf, *img;

static void quiet(int level, const char *msg)
{
	(void)level;
	(void)msg;
}

static int make_loop(void)
{
	char back[64];
	struct loop_info64 li = { .lo_flags = LO_FLAGS_AUTOCLEAR };
	int ctl, bfd, n;

	snprintf(back, sizeof(back), "/var/tmp/fuzz-ppp-open-%d.dev", getpid());
	bfd = open(back, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (bfd < 0 || ftruncate(bfd, STORE_DEV))
		return -1;
	unlink(back);
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	n = ctl < 0 ? -1 : ioctl(ctl, LOOP_CTL_GET_FREE);
	if (ctl >= 0)
		close(ctl);
	if (n < 0)
		goto fail;
	snprintf(dev_path, sizeof(dev_path), "/dev/loop%d", n);
	dev_fd = open(dev_path, O_RDWR | O_CLOEXEC);
	if (dev_fd < 0 || ioctl(dev_fd, LOOP_SET_FD, bfd) || ioctl(dev_fd, LOOP_SET_STATUS64, &li))
		goto fail;
	close(bfd);
	return 0;
fail:
	if (dev_fd >= 0)
		close(dev_fd);
	dev_fd = -1;
	dev_path[0] = 0;
	close(bfd);
	return -1;
}

static void fix_checksums(uint8_t *buf, size_t len)
{
	for (int i = 0; i < 2; i++) {
		struct ppp_sb sb;
		uint64_t off, ilen;

		if ((size_t)(i + 1) * PPP_SB_SLOT_SIZE > len)
			break;
		memcpy(&sb, buf + i * PPP_SB_SLOT_SIZE, sizeof(sb));
		off = le64toh(sb.index_off);
		ilen = le64toh(sb.index_len);
		if (off <= len && ilen <= len - off)
			sb.index_crc = htole32(ppp_crc32c(0, buf + off, ilen));
		sb.crc = htole32(ppp_crc32c(0, &sb, offsetof(struct ppp_sb, crc)));
		memcpy(buf + i * PPP_SB_SLOT_SIZE, &sb, sizeof(sb));
	}
}

static void walk(const char *path)
{
	struct ppp_status st;
	struct ppp_ckpt *c;
	struct ppp *p;
	uint64_t nbad;

	if (ppp_open(path, PPP_RDONLY, &p))
		return;
	ppp_status(p, &st);
	ppp_verify(p, &nbad);
	if (ppp_ckpt_open(p, &c) == 0) {
		struct ppp_blob_info bi;

		for (uint32_t i = 0; ppp_ckpt_blob(c, i, &bi) == 0; i++) {
			size_t n = bi.size < STORE_DEV ? bi.size : STORE_DEV;

			ppp_blob_verify(c, &bi);
			ppp_blob_read(c, &bi, 0, rbuf, n);
			if (bi.size > 4096)
				ppp_blob_read(c, &bi, 4096, rbuf, n - 4096);
		}
		ppp_ckpt_close(c);
	}
	ppp_close(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd;

	if (size > STORE_DEV)
		return 0;
	for (int pass = 0; pass < 2; pass++) {
		memcpy(img, data, size);
		if (pass)
			fix_checksums(img, size);
		fd = open(file_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || pwrite(fd, img, size, 0) != (ssize_t)size)
			abort();
		close(fd);
		walk(file_path);
		if (dev_fd >= 0) {
			memset(dev_buf, 0, STORE_DEV);
			memcpy(dev_buf, img, size);
			if (pwrite(dev_fd, dev_buf, STORE_DEV, 0) != STORE_DEV || fsync(dev_fd))
				abort();
			walk(dev_path);
		}
	}
	return 0;
}

static void remove_file(void)
{
	unlink(file_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	ppp_set_logger(quiet);
	snprintf(file_path, sizeof(file_path), "/var/tmp/fuzz-ppp-open-%d.store", getpid());
	dev_buf = aligned_alloc(4096, STORE_DEV);
	rbuf = aligned_alloc(4096, STORE_DEV);
	img = malloc(STORE_DEV);
	if (!dev_buf || !rbuf || !img)
		abort();
	atexit(remove_file);
	if (make_loop())
		fprintf(stderr, "fuzz-ppp-open: no loop device (%s): the file only\n", strerror(errno));
	return 0;
}
