// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Netlink socket entries: validation refuses what the restore could not
 * use, never crashes on mutated bytes, and a valid entry restores a socket
 * with the dumped port id, groups and options.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/netlink.h>

#include "files.h"
#include "kup-sk-netlink.pb-c.h"
#include "log.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

static uint32_t groups[2] = { 0x11, 0x1 };	/* groups 1, 5 and 33 */

static void entry_init(SkNetlinkEntry *e)
{
	struct stat st;

	sk_netlink_entry__init(e);
	e->protocol = NETLINK_ROUTE;
	e->type = SOCK_RAW;
	e->netns = stat("/proc/thread-self/ns/net", &st) ? 0 : st.st_ino;
	e->has_portid = 1;
	e->portid = 0x6b750000 + (getpid() & 0xffff);
	e->groups = groups;
	e->n_groups = 2;
	e->has_ext_ack = e->ext_ack = 1;
	e->has_no_enobufs = e->no_enobufs = 1;
	e->has_rcvbuf = 1;
	e->rcvbuf = 600000;
}

static void image_of(const SkNetlinkEntry *e, FileEntry *fe, FileEntry **pfe, FilesImage *img,
		     uint8_t *buf)
{
	file_entry__init(fe);
	files_image__init(img);
	fe->id = 1;
	fe->kind = FILE_KIND__FILE_NETLINK_SK;
	fe->flags = O_RDWR;
	fe->has_sk = 1;
	fe->sk.len = sk_netlink_entry__pack(e, buf);
	fe->sk.data = buf;
	*pfe = fe;
	img->files = pfe;
	img->n_files = 1;
}

static int validate(const SkNetlinkEntry *e)
{
	FileEntry fe, *pfe;
	FilesImage img;
	uint8_t buf[4096];

	image_of(e, &fe, &pfe, &img, buf);
	return files_validate_image(&img);
}

static void test_valid_and_refused(void **state)
{
	SkNetlinkEntry e;
	uint32_t many[65] = { 0 };

	entry_init(&e);
	assert_int_equal(validate(&e), 0);
#define REFUSED(change) do { entry_init(&e); change; assert_int_equal(validate(&e), -EINVAL); } while (0)
	REFUSED(e.protocol = 32);
	REFUSED(e.type = SOCK_STREAM);
	REFUSED(e.groups = many; e.n_groups = 65);
	REFUSED(e.rcvbuf = 0x80000000u);
#undef REFUSED
}

static void test_restore(void **state)
{
	SkNetlinkEntry e;
	FileEntry fe, *pfe;
	FilesImage img;
	struct files_rst *fr = NULL;
	struct sockaddr_nl sa;
	socklen_t l = sizeof(sa);
	uint32_t got[4] = { 0 };
	uint8_t buf[4096];
	int fd, v;

	entry_init(&e);
	image_of(&e, &fe, &pfe, &img, buf);
	assert_int_equal(files_rst_open_all(&img, NULL, &fr), 0);
	fd = files_rst_fd(fr, 1);
	assert_true(fd >= 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &l), 0);
	assert_int_equal(sa.nl_pid, e.portid);
	l = sizeof(got);
	assert_int_equal(getsockopt(fd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, got, &l), 0);
	assert_int_equal(got[0], groups[0]);
	assert_int_equal(got[1], groups[1]);
	l = sizeof(v);
	assert_int_equal(getsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &v, &l), 0);
	assert_int_equal(v, 1);
	l = sizeof(v);
	assert_int_equal(getsockopt(fd, SOL_NETLINK, NETLINK_PKTINFO, &v, &l), 0);
	assert_int_equal(v, 0);
	l = sizeof(v);
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &l), 0);
	assert_int_equal(v, 600000);
	/* a second restore of the same port id fails while the first holds it */
	{
		struct files_rst *fr2 = NULL;

		assert_int_equal(files_rst_open_all(&img, NULL, &fr2), -EADDRINUSE);
		if (fr2)
			files_rst_free(fr2);
	}
	files_rst_free(fr);
}

/* Random byte flips of a packed entry: validation never crashes. */
static void test_mutations(void **state)
{
	SkNetlinkEntry e;
	uint8_t good[4096], buf[4096];
	size_t len;

	entry_init(&e);
	len = sk_netlink_entry__pack(&e, good);
	srandom(11);
	for (int i = 0; i < 20000; i++) {
		FileEntry fe = FILE_ENTRY__INIT, *pfe = &fe;
		FilesImage img = FILES_IMAGE__INIT;
		size_t n = len - (random() % 4 == 0 ? random() % len : 0);

		memcpy(buf, good, len);
		for (int k = random() % 4 + 1; k; k--)
			buf[random() % len] ^= 1 << (random() % 8);
		fe.id = 1;
		fe.kind = FILE_KIND__FILE_NETLINK_SK;
		fe.flags = O_RDWR;
		fe.has_sk = 1;
		fe.sk = (ProtobufCBinaryData){ n, buf };
		img.files = &pfe;
		img.n_files = 1;
		files_validate_image(&img);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_and_refused),
		cmocka_unit_test(test_restore),
		cmocka_unit_test(test_mutations),
	};

	log_set_level(-1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
