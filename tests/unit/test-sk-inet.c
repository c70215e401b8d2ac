// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Inet socket entries are untrusted bytes at restore: every field the
 * restore uses is checked by files_validate_image() (the kind's validate()),
 * and random mutations of a packed entry never crash it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "files.h"
#include "kup-sk-inet.pb-c.h"
#include "log.h"

static uint8_t a4[4] = { 10, 0, 0, 1 }, b4[4] = { 10, 0, 0, 2 }, a5[5];
static uint8_t q[64];

struct fixture {
	SkInetEntry e;
	SkInetTcp t;
	SkInetOpt o, *op[1];
};

/* A valid established IPv4 connection. */
static void fixture_init(struct fixture *f)
{
	sk_inet_entry__init(&f->e);
	sk_inet_tcp__init(&f->t);
	sk_inet_opt__init(&f->o);
	f->e.family = AF_INET;
	f->e.type = SOCK_STREAM;
	f->e.protocol = IPPROTO_TCP;
	f->e.state = TCP_ESTABLISHED;
	f->e.has_src_addr = f->e.has_src_port = f->e.has_dst_addr = f->e.has_dst_port = 1;
	f->e.src_addr = (ProtobufCBinaryData){ 4, a4 };
	f->e.dst_addr = (ProtobufCBinaryData){ 4, b4 };
	f->e.src_port = 7001;
	f->e.dst_port = 40000;
	f->o.level = IPPROTO_TCP;
	f->o.name = TCP_NODELAY;
	f->o.val = 1;
	f->op[0] = &f->o;
	f->e.opts = f->op;
	f->e.n_opts = 1;
	f->t.mss_clamp = 1460;
	f->t.wscale_ok = 1;
	f->t.has_snd_wscale = f->t.has_rcv_wscale = 1;
	f->t.snd_wscale = f->t.rcv_wscale = 7;
	f->t.snd_wnd = 1000;
	f->t.max_window = 2000;
	f->t.has_snd_queue = 1;
	f->t.snd_queue = (ProtobufCBinaryData){ sizeof(q), q };
	f->t.has_snd_unsent = 1;
	f->t.snd_unsent = 10;
	f->e.tcp = &f->t;
	f->e.lock_table = "kup-lock-12-abc";
}

/* files_validate_image() of one FILE_INET_SK entry holding @e packed. */
static int validate(const SkInetEntry *e)
{
	FileEntry fe = FILE_ENTRY__INIT, *pfe = &fe;
	FilesImage img = FILES_IMAGE__INIT;
	uint8_t buf[4096];
	int ret;

	fe.id = 1;
	fe.kind = FILE_KIND__FILE_INET_SK;
	fe.flags = O_RDWR;
	fe.has_sk = 1;
	fe.sk.len = sk_inet_entry__pack(e, buf);
	fe.sk.data = buf;
	img.files = &pfe;
	img.n_files = 1;
	ret = files_validate_image(&img);
	return ret;
}

static void test_valid(void **state)
{
	struct fixture f;

	fixture_init(&f);
	assert_int_equal(validate(&f.e), 0);
	f.e.tcp = NULL;			/* a listener */
	f.e.state = TCP_LISTEN;
	f.e.has_dst_addr = f.e.has_dst_port = 0;
	f.e.has_backlog = 1;
	f.e.backlog = 128;
	assert_int_equal(validate(&f.e), 0);
	fixture_init(&f);		/* a socket closed after a connection */
	f.e.tcp = NULL;
	f.e.lock_table = NULL;
	f.e.state = TCP_CLOSE;
	f.e.has_dst_addr = f.e.has_dst_port = 0;
	f.e.has_conn_closed = f.e.conn_closed = 1;
	assert_int_equal(validate(&f.e), 0);
	fixture_init(&f);		/* a connection closed by its peer */
	f.e.tcp = NULL;
	f.e.lock_table = NULL;
	f.e.has_peer_closed = f.e.peer_closed = 1;
	f.e.has_closed_rcv_queue = 1;
	f.e.closed_rcv_queue = (ProtobufCBinaryData){ sizeof(q), q };
	assert_int_equal(validate(&f.e), 0);
	f.e.tcp = NULL;
	f.e.state = TCP_LISTEN;
	f.e.has_dst_addr = f.e.has_dst_port = 0;
	f.e.has_peer_closed = f.e.peer_closed = 0;
	f.e.has_closed_rcv_queue = 0;
	f.e.protocol = IPPROTO_UDP;	/* a bound UDP socket */
	f.e.type = SOCK_DGRAM;
	f.e.state = TCP_CLOSE;
	f.e.n_opts = 0;
	assert_int_equal(validate(&f.e), 0);
	f.e.has_udp_shutdown = 1;	/* shut down for writing */
	f.e.udp_shutdown = 2;
	assert_int_equal(validate(&f.e), 0);
	f.e.protocol = IPPROTO_UDPLITE;	/* UDP-Lite */
	assert_int_equal(validate(&f.e), 0);
	f.e.protocol = IPPROTO_ICMP;	/* an IPv4 ping socket */
	assert_int_equal(validate(&f.e), 0);
	f.e.protocol = IPPROTO_ICMPV6;	/* ICMPv6 on an IPv4 socket */
	assert_int_equal(validate(&f.e), -EINVAL);
	f.e.type = SOCK_RAW;		/* a raw socket, ICMPv6 or any protocol */
	assert_int_equal(validate(&f.e), 0);
	f.e.protocol = 0;		/* which socket() refuses */
	assert_int_equal(validate(&f.e), -EINVAL);
	f.e.protocol = 256;
	assert_int_equal(validate(&f.e), -EINVAL);
	f.e.type = SOCK_DGRAM;
	f.e.protocol = IPPROTO_UDP;
	f.e.udp_shutdown = 4;
	assert_int_equal(validate(&f.e), -EINVAL);
}

static void test_refused(void **state)
{
	struct fixture f;

#define REFUSED(change) do { fixture_init(&f); change; assert_int_equal(validate(&f.e), -EINVAL); } while (0)
	REFUSED(f.e.family = AF_UNIX);
	REFUSED(f.e.type = SOCK_RAW);
	REFUSED(f.e.protocol = IPPROTO_UDP);
	REFUSED(f.e.src_addr = ((ProtobufCBinaryData){ 5, a5 }));
	REFUSED(f.e.family = AF_INET6);			/* 4-byte addresses */
	REFUSED(f.e.dst_port = 70000);
	REFUSED(f.e.has_dst_addr = 0);
	REFUSED(f.e.state = TCP_SYN_SENT);
	REFUSED(f.e.state = TCP_SYN_RECV);
	REFUSED(f.e.state = TCP_TIME_WAIT);
	REFUSED(f.e.state = TCP_LAST_ACK);		/* without its FIN */
	REFUSED(f.e.state = TCP_CLOSING);
	REFUSED(f.e.state = TCP_CLOSE_WAIT; f.t.has_fin_sent = f.t.fin_sent = 1);
	REFUSED(f.e.state = TCP_LAST_ACK; f.t.has_fin_sent = f.t.fin_sent = 1;
		f.t.has_fin_acked = f.t.fin_acked = 1);	/* only FIN_WAIT2 has it acked */
	REFUSED(f.e.state = TCP_FIN_WAIT2);		/* without its FIN */
	REFUSED(f.t.has_fin_sent = f.t.fin_sent = 1);	/* FIN while established */
	REFUSED(f.e.state = 99);
	REFUSED(f.e.tcp = NULL);
	REFUSED(f.t.mss_clamp = 0);
	REFUSED(f.t.snd_wscale = 15);
	REFUSED(f.t.has_rcv_wscale = 0);
	REFUSED(f.t.max_window = 10);
	REFUSED(f.t.snd_unsent = sizeof(q) + 1);
	REFUSED(f.o.level = SOL_SOCKET; f.o.name = SO_ATTACH_FILTER);
	REFUSED(f.o.level = IPPROTO_IPV6; f.o.name = IPV6_V6ONLY);	/* not on a v4 socket */
	REFUSED(f.e.lock_table = "inet filter");
	REFUSED(f.e.lock_table = "kup-lock-1; flush ruleset");
	REFUSED(f.e.bind_dev = "0123456789abcdefXYZ");
	REFUSED(f.e.has_buf_lock = 1; f.e.buf_lock = 4);
	REFUSED(f.e.protocol = IPPROTO_UDP; f.e.type = SOCK_DGRAM);	/* UDP with TCP state */
	REFUSED(f.e.has_peer_closed = f.e.peer_closed = 1);		/* closed, with repair state */
	REFUSED(f.e.has_conn_closed = f.e.conn_closed = 1);		/* closed, yet established */
	REFUSED(f.e.has_filter = 1; f.e.filter = ((ProtobufCBinaryData){ 5, a5 }));	/* not 8n bytes */
	REFUSED(f.e.has_filter = 1; f.e.filter = ((ProtobufCBinaryData){ 0, NULL }));
	REFUSED(f.e.has_udp_shutdown = 1; f.e.udp_shutdown = 1);	/* on TCP */
	REFUSED(f.e.tcp = NULL; f.e.lock_table = NULL; f.e.has_closed_rcv_queue = 1);	/* queue alone */
	REFUSED(f.e.tcp = NULL; f.e.lock_table = NULL; f.e.has_peer_closed = f.e.peer_closed = 1;
		f.e.state = TCP_LISTEN);
#undef REFUSED
}

/* Random byte flips of a packed entry: validation never crashes. */
static void test_mutations(void **state)
{
	struct fixture f;
	uint8_t good[4096], buf[4096];
	size_t len;

	fixture_init(&f);
	len = sk_inet_entry__pack(&f.e, good);
	srandom(7);
	for (int i = 0; i < 20000; i++) {
		FileEntry fe = FILE_ENTRY__INIT, *pfe = &fe;
		FilesImage img = FILES_IMAGE__INIT;
		size_t n = len - (random() % 4 == 0 ? random() % len : 0);

		memcpy(buf, good, len);
		for (int k = random() % 4 + 1; k; k--)
			buf[random() % len] ^= 1 << (random() % 8);
		fe.id = 1;
		fe.kind = FILE_KIND__FILE_INET_SK;
		fe.flags = O_RDWR;
		fe.has_sk = 1;
		fe.sk = (ProtobufCBinaryData){ n, buf };
		img.files = &pfe;
		img.n_files = 1;
		files_validate_image(&img);
	}
}

/*
 * TCP_TIMESTAMP at restore: the low bit turns microsecond timestamps on
 * (Linux 6.7+), so it follows the dumped TCPI_OPT_USEC_TS and not the
 * parity of a 6.1 kernel's millisecond clock; the clock never goes back.
 */
static void test_tcp_clock(void **state)
{
	assert_int_equal(sk_inet_tcp_clock(1000, false), 1000);
	assert_int_equal(sk_inet_tcp_clock(1001, false), 1002);	/* not usec */
	assert_int_equal(sk_inet_tcp_clock(1000, true), 1001);
	assert_int_equal(sk_inet_tcp_clock(1001, true), 1001);
	assert_int_equal(sk_inet_tcp_clock(UINT32_MAX, false), 0);	/* wraps, as TSval does */
	assert_int_equal(sk_inet_tcp_clock(UINT32_MAX, true), UINT32_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_tcp_clock),
	};

	log_set_level(-1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
