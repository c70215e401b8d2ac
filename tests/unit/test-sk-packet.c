// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Packet socket entries: validation refuses what the restore could not
 * use, never crashes on mutated bytes, and a valid entry restores a socket
 * bound to the named interface with the dumped options, filter and
 * membership.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>

#include "files.h"
#include "kup-sk-packet.pb-c.h"
#include "log.h"

static struct sock_filter code[] = { BPF_STMT(BPF_RET | BPF_K, 0xffff) };
static SkPacketMc mc, *mcs[1] = { &mc };

static void entry_init(SkPacketEntry *e)
{
	struct stat st;

	sk_packet_entry__init(e);
	e->type = SOCK_RAW;
	e->protocol = ETH_P_IP;
	e->netns = stat("/proc/thread-self/ns/net", &st) ? 0 : st.st_ino;
	e->ifname = "lo";
	e->has_version = 1;
	e->version = TPACKET_V2;
	e->has_auxdata = e->auxdata = 1;
	e->has_reserve = 1;
	e->reserve = 32;
	e->has_rcvbuf = 1;
	e->rcvbuf = 600000;
	e->has_filter = 1;
	e->filter.data = (uint8_t *)code;
	e->filter.len = sizeof(code);
	sk_packet_mc__init(&mc);
	mc.ifname = "lo";
	mc.type = PACKET_MR_ALLMULTI;
	mc.count = 1;
	e->mc = mcs;
	e->n_mc = 1;
}

static void image_of(const SkPacketEntry *e, FileEntry *fe, FileEntry **pfe, FilesImage *img,
		     uint8_t *buf)
{
	file_entry__init(fe);
	files_image__init(img);
	fe->id = 1;
	fe->kind = FILE_KIND__FILE_PACKET_SK;
	fe->flags = O_RDWR;
	fe->has_packet = 1;
	fe->packet.len = sk_packet_entry__pack(e, buf);
	fe->packet.data = buf;
	*pfe = fe;
	img->files = pfe;
	img->n_files = 1;
}

static int validate(const SkPacketEntry *e)
{
	FileEntry fe, *pfe;
	FilesImage img;
	uint8_t buf[4096];

	image_of(e, &fe, &pfe, &img, buf);
	return files_validate_image(&img);
}

static void test_valid_and_refused(void **state)
{
	SkPacketEntry e;
	uint8_t odd[3] = { 0 }, big[40] = { 0 };

	entry_init(&e);
	assert_int_equal(validate(&e), 0);
#define REFUSED(change) do { entry_init(&e); change; assert_int_equal(validate(&e), -EINVAL); } while (0)
	REFUSED(e.type = SOCK_STREAM);
	REFUSED(e.protocol = 0x10000);
	REFUSED(e.ifname = "");
	REFUSED(e.ifname = "a-name-far-too-long");
	REFUSED(e.ifname = "../x");
	REFUSED(e.version = 7);
	REFUSED(e.rcvbuf = 0x80000000u);
	REFUSED(e.filter.data = odd; e.filter.len = 3);
	REFUSED(e.type = SOCK_DGRAM; e.has_vnet_hdr = e.vnet_hdr = 1);
	REFUSED(mc.count = 0);
	REFUSED(mc.has_addr = 1; mc.addr.len = 33; mc.addr.data = big);
#undef REFUSED
	entry_init(&e);
	{
		FileEntry fe, *pfe;
		FilesImage img;
		uint8_t buf[4096];

		image_of(&e, &fe, &pfe, &img, buf);
		fe.kind = FILE_KIND__FILE_NETLINK_SK;	/* packet data in another kind */
		assert_int_equal(files_validate_image(&img), -EINVAL);
	}
}

static int gi(int fd, int level, int name)
{
	int v = -1;
	socklen_t l = sizeof(v);

	assert_int_equal(getsockopt(fd, level, name, &v, &l), 0);
	return v;
}

static void test_restore(void **state)
{
	SkPacketEntry e;
	FileEntry fe, *pfe;
	FilesImage img;
	struct files_rst *fr = NULL;
	struct sockaddr_ll sll = { 0 };
	socklen_t l = sizeof(sll);
	struct sock_filter got[4];
	socklen_t fl = 4;
	uint8_t buf[4096];
	int fd, s = socket(AF_PACKET, SOCK_RAW, 0);

	if (s < 0)
		skip();
	close(s);
	entry_init(&e);
	image_of(&e, &fe, &pfe, &img, buf);
	assert_int_equal(files_rst_open_all(&img, NULL, &fr), 0);
	fd = files_rst_fd(fr, 1);
	assert_true(fd >= 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sll, &l), 0);
	assert_int_equal(ntohs(sll.sll_protocol), ETH_P_IP);
	assert_int_equal(sll.sll_ifindex, if_nametoindex("lo"));
	assert_int_equal(gi(fd, SOL_SOCKET, SO_TYPE), SOCK_RAW);
	assert_int_equal(gi(fd, SOL_PACKET, PACKET_VERSION), TPACKET_V2);
	assert_int_equal(gi(fd, SOL_PACKET, PACKET_AUXDATA), 1);
	assert_int_equal(gi(fd, SOL_PACKET, PACKET_ORIGDEV), 0);
	assert_int_equal(gi(fd, SOL_PACKET, PACKET_RESERVE), 32);
	assert_int_equal(gi(fd, SOL_SOCKET, SO_RCVBUF), 600000);
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, got, &fl), 0);
	assert_int_equal(fl, 1);
	assert_memory_equal(got, code, sizeof(code));
	files_rst_free(fr);

	/* an interface that does not exist here: the restore fails */
	entry_init(&e);
	e.ifname = "kupnone0";
	image_of(&e, &fe, &pfe, &img, buf);
	fr = NULL;
	assert_int_equal(files_rst_open_all(&img, NULL, &fr), -ENODEV);
	if (fr)
		files_rst_free(fr);
}

/* Random byte flips of a packed entry: validation never crashes. */
static void test_mutations(void **state)
{
	SkPacketEntry e;
	uint8_t good[4096], buf[4096];
	size_t len;

	entry_init(&e);
	len = sk_packet_entry__pack(&e, good);
	srandom(13);
	for (int i = 0; i < 20000; i++) {
		FileEntry fe = FILE_ENTRY__INIT, *pfe = &fe;
		FilesImage img = FILES_IMAGE__INIT;
		size_t n = len - (random() % 4 == 0 ? random() % len : 0);

		memcpy(buf, good, len);
		for (int k = random() % 4 + 1; k; k--)
			buf[random() % len] ^= 1 << (random() % 8);
		fe.id = 1;
		fe.kind = FILE_KIND__FILE_PACKET_SK;
		fe.flags = O_RDWR;
		fe.has_packet = 1;
		fe.packet = (ProtobufCBinaryData){ n, buf };
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
