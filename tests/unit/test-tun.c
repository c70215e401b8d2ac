// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tun/tap entries are untrusted bytes at restore: every field the restore
 * uses is checked by files_validate_image() (the kind's validate()), and
 * random mutations of a packed entry never crash it.
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
#include <net/if.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>

#include "files.h"
#include "kup-tun.pb-c.h"
#include "log.h"

static uint8_t a4[4] = { 10, 8, 0, 1 }, b4[4] = { 10, 8, 0, 2 }, a5[5];
static uint8_t a16[16] = { 0xfd, 0x88, [15] = 1 }, mac[6] = { 2, 0x11, 0x22, 0x33, 0x44, 0x55 };

struct fixture {
	TunEntry e;
	TunAddr a, a6, *ap[2];
	TunRoute r, *rp[1];
	TunMetric m, *mp[1];
};

/* A valid multi-queue tun: two addresses, a route via a gateway. */
static void fixture_init(struct fixture *f)
{
	tun_entry__init(&f->e);
	tun_addr__init(&f->a);
	tun_addr__init(&f->a6);
	tun_route__init(&f->r);
	tun_metric__init(&f->m);
	f->e.name = "tun0";
	f->e.iff = IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE;
	f->e.ifindex = 3;
	f->e.mtu = 1500;
	f->e.txqlen = 500;
	f->e.dev_flags = IFF_UP | IFF_NOARP | IFF_MULTICAST;
	f->e.link_type = 65534;
	f->e.has_vnet_hdr_sz = 1;
	f->e.vnet_hdr_sz = 10;
	f->a.family = AF_INET;
	f->a.prefixlen = 24;
	f->a.local = (ProtobufCBinaryData){ 4, a4 };
	f->a.has_peer = 1;
	f->a.peer = (ProtobufCBinaryData){ 4, b4 };
	f->a6.family = AF_INET6;
	f->a6.prefixlen = 64;
	f->a6.local = (ProtobufCBinaryData){ 16, a16 };
	f->ap[0] = &f->a;
	f->ap[1] = &f->a6;
	f->e.addrs = f->ap;
	f->e.n_addrs = 2;
	f->r.family = AF_INET;
	f->r.dst_len = 16;
	f->r.has_dst = 1;
	f->r.dst = (ProtobufCBinaryData){ 4, a4 };
	f->r.has_gateway = 1;
	f->r.gateway = (ProtobufCBinaryData){ 4, b4 };
	f->r.table = RT_TABLE_MAIN;
	f->r.protocol = RTPROT_BOOT;
	f->r.type = RTN_UNICAST;
	f->m.type = RTAX_MTU;
	f->m.value = 1400;
	f->mp[0] = &f->m;
	f->r.metrics = f->mp;
	f->r.n_metrics = 1;
	f->rp[0] = &f->r;
	f->e.routes = f->rp;
	f->e.n_routes = 1;
}

static int validate_bytes(const uint8_t *buf, size_t len, uint32_t flags)
{
	FileEntry fe = FILE_ENTRY__INIT, *pfe = &fe;
	FilesImage img = FILES_IMAGE__INIT;

	fe.id = 1;
	fe.kind = FILE_KIND__FILE_TUN;
	fe.flags = flags;
	fe.has_tun = 1;
	fe.tun = (ProtobufCBinaryData){ len, (uint8_t *)buf };
	img.files = &pfe;
	img.n_files = 1;
	return files_validate_image(&img);
}

static int validate(const TunEntry *e)
{
	uint8_t buf[4096];

	return validate_bytes(buf, tun_entry__pack(e, buf), O_RDWR | O_NONBLOCK);
}

static void test_valid(void **state)
{
	struct fixture f;

	fixture_init(&f);
	assert_int_equal(validate(&f.e), 0);
	f.e.iff = IFF_TAP | IFF_VNET_HDR;	/* a persistent tap with a MAC */
	f.e.persist = 1;
	f.e.has_owner = f.e.has_group = 1;
	f.e.owner = f.e.group = 65534;
	f.e.has_hwaddr = 1;
	f.e.hwaddr = (ProtobufCBinaryData){ 6, mac };
	f.e.n_routes = 0;
	assert_int_equal(validate(&f.e), 0);
}

static void test_refused(void **state)
{
	struct fixture f;
	uint8_t buf[4096];
	size_t len;

#define REFUSED(change) do { fixture_init(&f); change; assert_int_equal(validate(&f.e), -EINVAL); } while (0)
	REFUSED(f.e.name = "");
	REFUSED(f.e.name = "tun%d");
	REFUSED(f.e.name = "../eth0");
	REFUSED(f.e.name = "a name too long!");
	REFUSED(f.e.name = "tun 0");
	REFUSED(f.e.iff = IFF_TUN | IFF_TAP);
	REFUSED(f.e.iff = IFF_NO_PI);
	REFUSED(f.e.iff |= IFF_DETACH_QUEUE);
	REFUSED(f.e.iff |= IFF_PERSIST);
	REFUSED(f.e.mtu = 0);
	REFUSED(f.e.mtu = 70000);
	REFUSED(f.e.ifindex = 0);
	REFUSED(f.e.dev_flags |= IFF_LOOPBACK);
	REFUSED(f.e.has_hwaddr = 1; f.e.hwaddr = ((ProtobufCBinaryData){ 5, a5 }));
	REFUSED(f.e.vnet_hdr_sz = 2);
	REFUSED(f.e.has_sndbuf = 1; f.e.sndbuf = -1);
	REFUSED(f.a.family = AF_UNIX);
	REFUSED(f.a.local = ((ProtobufCBinaryData){ 5, a5 }));
	REFUSED(f.a.prefixlen = 33);
	REFUSED(f.a6.local = ((ProtobufCBinaryData){ 4, a4 }));
	REFUSED(f.a.peer = ((ProtobufCBinaryData){ 16, a16 }));
	REFUSED(f.a.flags = IFA_F_TENTATIVE);
	REFUSED(f.a.label = "x/y");
	REFUSED(f.a.has_valid_lft = 1);		/* without the preferred one */
	REFUSED(f.r.family = AF_INET6);		/* 4-byte addresses */
	REFUSED(f.r.dst_len = 33);
	REFUSED(f.r.gateway = ((ProtobufCBinaryData){ 5, a5 }));
	REFUSED(f.r.type = 0);
	REFUSED(f.r.type = 300);
	REFUSED(f.r.flags = RTM_F_CLONED);
	REFUSED(f.m.type = RTAX_CC_ALGO);
	REFUSED(f.m.type = 0);
	REFUSED(f.m.type = RTAX_MAX + 1);
#undef REFUSED
	/* no entry, bad flags, garbage */
	fixture_init(&f);
	len = tun_entry__pack(&f.e, buf);
	assert_int_equal(validate_bytes(buf, len, O_ACCMODE), -EINVAL);
	assert_int_equal(validate_bytes(buf, len, O_RDWR | O_PATH), -EINVAL);
	assert_int_equal(validate_bytes(buf, 0, O_RDWR), -EINVAL);
	assert_int_equal(validate_bytes((const uint8_t *)"\xff\xff\xff", 3, O_RDWR), -EINVAL);
}

/* Random byte flips of a packed entry: validation never crashes. */
static void test_mutations(void **state)
{
	struct fixture f;
	uint8_t good[4096], buf[4096];
	size_t len;

	fixture_init(&f);
	len = tun_entry__pack(&f.e, good);
	srandom(9);
	for (int i = 0; i < 20000; i++) {
		size_t n = len - (random() % 4 == 0 ? random() % len : 0);

		memcpy(buf, good, len);
		for (int k = random() % 4 + 1; k; k--)
			buf[random() % len] ^= 1 << (random() % 8);
		validate_bytes(buf, n, O_RDWR);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_mutations),
	};

	log_set_level(-1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
