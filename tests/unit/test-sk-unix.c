// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unix socket entries (files-sk-unix.c) without processes: hand-made images
 * are validated and restored in this process, corrupted ones are refused,
 * and random mutations of a packed image never crash the validators.
 * Real trees are dumped and restored by tests/integ/t-sk-unix-*.sh.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "files.h"
#include "kup-sk-unix.pb-c.h"
#include "log.h"
#include "mutate-files.h"

#define NSK 4

/* An image of NSK unix sockets: a stream socketpair (1, 2) with data queued
 * both ways and 2 shut down for writing, an abstract datagram socket (3)
 * with two queued datagrams, one from a named sender, and an abstract
 * stream listener (4). */
struct img {
	FilesImage fi;
	FileEntry fe[NSK], *fep[NSK];
	UnixSkEntry u[NSK];
	UnixSkMsg m[4], *mp[NSK][2];
	char abs3[32], abs4[32], from[32];
};

static void pack(struct img *x)
{
	for (int i = 0; i < NSK; i++) {
		free(x->fe[i].sk.data);
		x->fe[i].sk.len = unix_sk_entry__get_packed_size(&x->u[i]);
		x->fe[i].sk.data = malloc(x->fe[i].sk.len);
		unix_sk_entry__pack(&x->u[i], x->fe[i].sk.data);
	}
}

static ProtobufCBinaryData bytes(const void *p, size_t len)
{
	return (ProtobufCBinaryData){ .len = len, .data = (uint8_t *)p };
}

static void abstract(char *buf, const char *what)
{
	buf[0] = 0;
	snprintf(buf + 1, 30, "kup-ut-%d-%s", getpid(), what);
}

static void mk_img(struct img *x)
{
	memset(x, 0, sizeof(*x));
	files_image__init(&x->fi);
	abstract(x->abs3, "dg");
	abstract(x->abs4, "ls");
	abstract(x->from, "from");
	for (int i = 0; i < NSK; i++) {
		file_entry__init(&x->fe[i]);
		unix_sk_entry__init(&x->u[i]);
		x->fe[i].id = i + 1;
		x->fe[i].kind = FILE_KIND__FILE_UNIX_SK;
		x->fe[i].flags = O_RDWR;
		x->fe[i].has_sk = true;
		x->fep[i] = &x->fe[i];
		x->u[i].ino = 1000 + i;
		x->u[i].state = 1;
		x->u[i].type = SOCK_STREAM;
	}
	for (int i = 0; i < 4; i++)
		unix_sk_msg__init(&x->m[i]);
	/* the pair */
	x->u[0].has_peer_ino = x->u[1].has_peer_ino = true;
	x->u[0].peer_ino = 1001;
	x->u[1].peer_ino = 1000;
	x->m[0].data = bytes("to zero", 7);
	x->m[1].data = bytes("to one", 6);
	x->mp[0][0] = &x->m[0];
	x->mp[1][0] = &x->m[1];
	x->u[0].queue = x->mp[0];
	x->u[0].n_queue = 1;
	x->u[1].queue = x->mp[1];
	x->u[1].n_queue = 1;
	x->u[1].has_shutdown = true;
	x->u[1].shutdown = 2;		/* SEND_SHUTDOWN */
	x->u[0].has_shutdown = true;
	x->u[0].shutdown = 1;		/* the peer's RCV side */
	/* the datagram socket */
	x->u[2].type = SOCK_DGRAM;
	x->u[2].state = 7;
	x->u[2].has_name = true;
	x->u[2].name = bytes(x->abs3, 1 + strlen(x->abs3 + 1));
	x->m[2].data = bytes("anon", 4);
	x->m[3].data = bytes("named", 5);
	x->m[3].has_from = true;
	x->m[3].from = bytes(x->from, 1 + strlen(x->from + 1));
	x->mp[2][0] = &x->m[2];
	x->mp[2][1] = &x->m[3];
	x->u[2].queue = x->mp[2];
	x->u[2].n_queue = 2;
	x->u[2].has_passcred = x->u[2].passcred = true;
	/* the listener */
	x->u[3].state = 10;
	x->u[3].has_name = true;
	x->u[3].name = bytes(x->abs4, 1 + strlen(x->abs4 + 1));
	x->u[3].has_backlog = true;
	x->u[3].backlog = 5;
	x->fi.files = x->fep;
	x->fi.n_files = NSK;
	pack(x);
}

static void free_img(struct img *x)
{
	for (int i = 0; i < NSK; i++)
		free(x->fe[i].sk.data);
}

static void test_restore(void **state)
{
	struct files_rst *fr = NULL;
	struct img x;
	char buf[64];
	struct sockaddr_un from;
	socklen_t fl = sizeof(from);
	int fd, v;
	socklen_t l = sizeof(v);

	mk_img(&x);
	assert_int_equal(files_validate_image(&x.fi), 0);
	assert_int_equal(files_rst_open_all(&x.fi, NULL, &fr), 0);
	/* the pair: each end gets what was queued for it, then end-of-file on 0 */
	fd = files_rst_fd(fr, 1);
	assert_int_equal(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), 7);
	assert_memory_equal(buf, "to zero", 7);
	assert_int_equal(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), 0);
	fd = files_rst_fd(fr, 2);
	assert_int_equal(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), 6);
	assert_memory_equal(buf, "to one", 6);
	assert_int_equal(send(fd, "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL), -1);
	assert_int_equal(errno, EPIPE);
	/* the datagrams, in order; the sender's name is not in the image */
	fd = files_rst_fd(fr, 3);
	assert_int_equal(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), 4);
	assert_memory_equal(buf, "anon", 4);
	assert_int_equal(recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl), 5);
	assert_memory_equal(buf, "named", 5);
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_PASSCRED, &v, &l), 0);
	assert_int_equal(v, 1);
	/* the listener listens */
	fd = files_rst_fd(fr, 4);
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &l), 0);
	assert_int_equal(v, 1);
	files_rst_free(fr);
	free_img(&x);
}

static void expect_bad(struct img *x, const char *what)
{
	struct files_rst *fr = NULL;

	pack(x);
	if (files_rst_open_all(&x->fi, NULL, &fr) >= 0) {
		files_rst_free(fr);
		fail_msg("%s: accepted", what);
	}
}

static void test_corrupt(void **state)
{
	struct img x;
	char rel[] = "relative";
	char nonul[4] = { '/', 'a', 'b', 'c' };
	static char toolong[200];

	log_set_level(-1);
	mk_img(&x);
	x.u[0].type = 4;
	expect_bad(&x, "bad type");
	x.u[0].type = SOCK_STREAM;
	x.u[0].state = 2;
	expect_bad(&x, "bad state");
	x.u[0].state = 1;
	x.u[2].name = bytes(rel, sizeof(rel));
	expect_bad(&x, "relative path");
	x.u[2].name = bytes(nonul, sizeof(nonul));
	expect_bad(&x, "path without its NUL");
	x.u[2].name = bytes(toolong, sizeof(toolong));
	expect_bad(&x, "name too long");
	x.u[2].name = bytes(x.abs3, 1 + strlen(x.abs3 + 1));
	x.u[3].type = SOCK_DGRAM;
	expect_bad(&x, "datagram listener");
	x.u[3].type = SOCK_STREAM;
	x.u[3].has_name = false;
	expect_bad(&x, "unnamed listener");
	x.u[3].has_name = true;
	x.u[3].has_name_gone = x.u[3].name_gone = true;
	expect_bad(&x, "abstract name removed");
	x.u[3].has_name_gone = x.u[3].name_gone = false;
	x.u[3].bind_dir = "/tmp";
	expect_bad(&x, "directory of an abstract name");
	x.u[3].bind_dir = NULL;
	x.u[3].renamed_to = "/tmp/x.sock";
	expect_bad(&x, "renamed without being removed");
	x.u[3].renamed_to = NULL;
	x.u[1].has_closed_peer_ino = true;
	x.u[1].closed_peer_ino = 77;
	expect_bad(&x, "closed peer of a connected socket");
	x.u[1].has_closed_peer_ino = false;
	x.u[2].name = bytes(rel, sizeof(rel));
	x.u[2].bind_dir = "relative/dir";
	expect_bad(&x, "relative directory of a relative name");
	x.u[2].bind_dir = NULL;
	x.u[2].name = bytes(x.abs3, 1 + strlen(x.abs3 + 1));
	x.u[1].peer_ino = 1002;
	expect_bad(&x, "stream peer of another type");
	x.u[1].peer_ino = 4242;
	expect_bad(&x, "stream peer not in the image");
	x.u[1].peer_ino = 1000;
	x.m[0].data.len = 0;
	expect_bad(&x, "empty message in a stream queue (a send of nothing sends no file)");
	x.m[0].data.len = 7;
	x.m[0].has_from = true;
	x.m[0].from = bytes(x.from, 1 + strlen(x.from + 1));
	expect_bad(&x, "sender address in a stream queue");
	x.m[0].has_from = false;
	x.u[0].shutdown = 9;
	expect_bad(&x, "bad shutdown bits");
	x.u[0].shutdown = 1;
	x.u[0].has_peek_off = true;
	x.u[0].peek_off = -2;
	expect_bad(&x, "bad peek offset");
	x.u[0].peek_off = 0;
	x.u[0].has_file_mode = true;
	x.u[0].file_mode = 0100644;
	expect_bad(&x, "file type in the mode");
	x.u[0].file_mode = 0;
	x.fe[0].flags = O_RDONLY;
	expect_bad(&x, "socket not O_RDWR");
	x.fe[0].flags = O_RDWR;
	x.u[1].ino = 1000;
	expect_bad(&x, "two entries for one socket");
	x.u[1].ino = 1001;
	/* a client waiting on a listener that is not in the image */
	x.u[2].type = SOCK_STREAM;
	x.u[2].state = 1;
	x.u[2].n_queue = 0;
	x.u[2].has_peer_ino = true;
	x.u[2].peer_ino = 0;
	x.u[2].has_peer_name = true;
	x.u[2].peer_name = bytes(x.from, 1 + strlen(x.from + 1));
	expect_bad(&x, "pending on a listener not in the image");
	/* the same sockets, fine again */
	x.u[2].peer_name = x.u[3].name;
	pack(&x);
	{
		struct files_rst *fr = NULL;
		assert_int_equal(files_rst_open_all(&x.fi, NULL, &fr), 0);
		files_rst_free(fr);
	}
	log_set_level(LOG_LVL_INFO);
	free_img(&x);
}

/* Datagram sockets connected in a chain A -> B -> C (B connected to C after
 * A connected to B): whatever the order of the entries, A connects first. */
static void test_dgram_chain(void **state)
{
	FilesImage fi = FILES_IMAGE__INIT;
	FileEntry fe[3], *fep[3];
	UnixSkEntry u[3];
	char names[3][32];
	struct files_rst *fr = NULL;
	/* entries in the order B, A, C */
	const int order[3] = { 1, 0, 2 };

	for (int i = 0; i < 3; i++) {
		char what[2] = { 'a' + i, 0 };

		abstract(names[i], what);
		unix_sk_entry__init(&u[i]);
		u[i].ino = 2000 + i;
		u[i].type = SOCK_DGRAM;
		u[i].state = i < 2 ? 1 : 7;
		u[i].has_name = true;
		u[i].name = bytes(names[i], 1 + strlen(names[i] + 1));
		if (i < 2) {
			u[i].has_peer_ino = true;
			u[i].peer_ino = 2000 + i + 1;
		}
	}
	for (int k = 0; k < 3; k++) {
		int i = order[k];

		file_entry__init(&fe[k]);
		fe[k].id = i + 1;
		fe[k].kind = FILE_KIND__FILE_UNIX_SK;
		fe[k].flags = O_RDWR;
		fe[k].has_sk = true;
		fe[k].sk.len = unix_sk_entry__get_packed_size(&u[i]);
		fe[k].sk.data = malloc(fe[k].sk.len);
		unix_sk_entry__pack(&u[i], fe[k].sk.data);
		fep[k] = &fe[k];
	}
	fi.files = fep;
	fi.n_files = 3;
	assert_int_equal(files_rst_open_all(&fi, NULL, &fr), 0);
	for (int i = 0; i < 2; i++) {
		struct sockaddr_un sa;
		socklen_t l = sizeof(sa);

		assert_int_equal(getpeername(files_rst_fd(fr, i + 1), (struct sockaddr *)&sa, &l), 0);
		assert_int_equal(l, offsetof(struct sockaddr_un, sun_path) + u[i + 1].name.len);
		assert_memory_equal(sa.sun_path, names[i + 1], u[i + 1].name.len);
	}
	files_rst_free(fr);
	for (int k = 0; k < 3; k++)
		free(fe[k].sk.data);
}

/* Random mutations of a packed image: unpack + validate never crash. */
static void test_fuzz_validate(void **state)
{
	struct img x;

	mk_img(&x);
	mutate_files_image(&x.fi, 30000, 4321);
	free_img(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_restore),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_dgram_chain),
		cmocka_unit_test(test_fuzz_validate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
