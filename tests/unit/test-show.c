// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kup show's decoder: protobuf's JSON mapping (64-bit integers as strings,
 * bytes in base64, UTF-8 kept or U+FFFD), the bytes fields that carry a
 * socket, an address or a BPF program decoded into named fields, what does
 * not decode kept as such, text in hex and by name.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ckpt-summary.h"
#include "image.h"
#include "json.h"
#include "log.h"
#include "kup-image.pb-c.h"
#include "kup-sk-inet.pb-c.h"
#include "kup-sk-unix.pb-c.h"
#include "kup-tun.pb-c.h"

static void put_le32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/* A container of one message of @kind: *len bytes, malloc'd. */
static uint8_t *container(enum img_kind kind, const ProtobufCMessage *m, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(IMG_HDR_SIZE + IMG_REC_HDR_SIZE + n + 1);

	assert_non_null(buf);
	memcpy(buf, IMG_MAGIC, 8);
	put_le32(buf + 8, IMG_FORMAT_VERSION);
	put_le32(buf + 12, kind);
	protobuf_c_message_pack(m, buf + IMG_HDR_SIZE + IMG_REC_HDR_SIZE);
	put_le32(buf + IMG_HDR_SIZE, n);
	put_le32(buf + IMG_HDR_SIZE + 4, img_crc32c(0, buf + IMG_HDR_SIZE + IMG_REC_HDR_SIZE, n));
	*len = IMG_HDR_SIZE + IMG_REC_HDR_SIZE + n;
	return buf;
}

static void pack_into(ProtobufCBinaryData *b, const ProtobufCMessage *m)
{
	b->len = protobuf_c_message_get_packed_size(m);
	b->data = malloc(b->len + 1);
	assert_non_null(b->data);
	protobuf_c_message_pack(m, b->data);
}

static void test_base64(void **state)
{
	static const char *const in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *const out[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
					   "Zm9vYmFy" };

	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		json_t *j = kup_json_base64(in[i], strlen(in[i]));

		assert_string_equal(json_string_value(j), out[i]);
		json_decref(j);
	}
}

static void test_utf8(void **state)
{
	json_t *j = kup_json_strn("a\xff\0b\xc3\xa9", 6);

	assert_int_equal(json_string_length(j), 8);
	assert_memory_equal(json_string_value(j), "a\xef\xbf\xbd\0b\xc3\xa9", 8);
	json_decref(j);
}

/* files.img: a TCP listener with a filter, an abstract unix socket, a
 * socket whose payload is garbage, a file with a 64-bit size */
static uint8_t *files_image(size_t *len)
{
	static uint8_t addr[4] = { 10, 1, 2, 3 };
	/* ld [0]; ret #0x7fff0000 */
	static uint8_t bpf[16] = { 0x20, 0, 0, 0, 0, 0, 0, 0, 0x06, 0, 0, 0, 0, 0, 0xff, 0x7f };
	static uint8_t garbage[3] = { 0xff, 0xff, 0xff };
	SkInetEntry in = SK_INET_ENTRY__INIT;
	UnixSkEntry un = UNIX_SK_ENTRY__INIT;
	static uint8_t mac[6] = { 0x02, 0x00, 0x5e, 0x10, 0xaa, 0xff };
	TunEntry tun = TUN_ENTRY__INIT;
	FileEntry f[5], *fp[5];
	FilesImage img = FILES_IMAGE__INIT;
	uint8_t *buf;

	in.family = 2;
	in.type = 1;
	in.protocol = 6;
	in.state = 10;
	in.ino = 1234567890123ULL;
	in.has_src_addr = true;
	in.src_addr.data = addr;
	in.src_addr.len = 4;
	in.has_src_port = true;
	in.src_port = 8080;
	in.has_filter = true;
	in.filter.data = bpf;
	in.filter.len = sizeof(bpf);
	un.ino = 7;
	un.type = 2;
	un.state = 7;
	un.has_name = true;
	un.name.data = (uint8_t *)"\0abc";
	un.name.len = 4;
	tun.name = "ktap0";
	tun.has_hwaddr = true;
	tun.hwaddr.data = mac;
	tun.hwaddr.len = sizeof(mac);
	for (int i = 0; i < 5; i++) {
		file_entry__init(&f[i]);
		f[i].id = i + 1;
		fp[i] = &f[i];
	}
	f[0].kind = FILE_KIND__FILE_INET_SK;
	f[0].has_sk = true;
	pack_into(&f[0].sk, &in.base);
	f[1].kind = FILE_KIND__FILE_UNIX_SK;
	f[1].has_sk = true;
	pack_into(&f[1].sk, &un.base);
	f[2].kind = FILE_KIND__FILE_INET_SK;
	f[2].has_sk = true;
	f[2].sk.data = garbage;
	f[2].sk.len = sizeof(garbage);
	f[3].kind = FILE_KIND__FILE_REG;
	f[3].flags = 0x8002;
	f[3].path = "/tmp/\xff";
	f[3].has_size = true;
	f[3].size = UINT64_MAX;
	f[4].kind = FILE_KIND__FILE_TUN;
	f[4].has_tun = true;
	pack_into(&f[4].tun, &tun.base);
	img.n_files = 5;
	img.files = fp;
	buf = container(IMG_FILES, &img.base, len);
	free(f[0].sk.data);
	free(f[1].sk.data);
	free(f[4].tun.data);
	return buf;
}

static json_t *file(json_t *img, size_t i)
{
	json_t *e = json_array_get(json_object_get(img, "entries"), 0);

	return json_array_get(json_object_get(e, "files"), i);
}

static void test_json(void **state)
{
	size_t len;
	uint8_t *buf = files_image(&len);
	json_t *img = ckpt_show_image(buf, len, "files.img", false), *sk, *insn;

	assert_non_null(img);
	assert_string_equal(json_string_value(json_object_get(img, "kind")), "files");
	sk = json_object_get(file(img, 0), "sk");
	assert_true(json_is_object(sk));
	assert_int_equal(json_integer_value(json_object_get(sk, "family")), 2);
	assert_int_equal(json_integer_value(json_object_get(sk, "state")), 10);
	assert_string_equal(json_string_value(json_object_get(sk, "ino")), "1234567890123");
	assert_string_equal(json_string_value(json_object_get(sk, "src_addr")), "10.1.2.3");
	assert_int_equal(json_integer_value(json_object_get(sk, "src_port")), 8080);
	assert_int_equal(json_array_size(json_object_get(sk, "filter")), 2);
	insn = json_array_get(json_object_get(sk, "filter"), 1);
	assert_string_equal(json_string_value(json_object_get(insn, "op")), "ret");
	assert_int_equal(json_integer_value(json_object_get(insn, "k")), 0x7fff0000);
	sk = json_object_get(file(img, 1), "sk");
	assert_string_equal(json_string_value(json_object_get(sk, "name")), "@abc");
	sk = json_object_get(file(img, 2), "sk");
	assert_non_null(json_object_get(sk, "undecoded"));
	assert_string_equal(json_string_value(json_object_get(sk, "raw")), "////");
	assert_string_equal(json_string_value(json_object_get(file(img, 3), "size")),
			    "18446744073709551615");
	assert_string_equal(json_string_value(json_object_get(file(img, 3), "path")),
			    "/tmp/\xef\xbf\xbd");
	assert_string_equal(json_string_value(json_object_get(file(img, 3), "kind")), "FILE_REG");
	assert_string_equal(json_string_value(json_object_get(json_object_get(file(img, 4), "tun"),
							      "hwaddr")), "02:00:5e:10:aa:ff");
	json_decref(img);
	free(buf);
}

static void test_text(void **state)
{
	size_t len, tlen;
	uint8_t *buf = files_image(&len);
	json_t *img = ckpt_show_image(buf, len, "files.img", true);
	char *text = NULL;
	FILE *f = open_memstream(&text, &tlen);

	assert_non_null(img);
	ckpt_show_text(f, "files.img", img);
	fclose(f);
	assert_non_null(strstr(text, "== files.img (files, 1 record)\n"));
	assert_non_null(strstr(text, "family: AF_INET\n"));
	assert_non_null(strstr(text, "state: TCP_LISTEN\n"));
	assert_non_null(strstr(text, "src_addr: 10.1.2.3\n"));
	assert_non_null(strstr(text, "flags: 0x8002\n"));
	assert_non_null(strstr(text, "ret  code 0x0006 jt 0 jf 0 k 0x7fff0000"));
	assert_non_null(strstr(text, "name: \"@abc\"\n"));
	assert_non_null(strstr(text, "raw: hex ffffff (3 bytes)"));
	assert_null(strstr(text, " bytes>"));
	json_decref(img);
	free(text);
	free(buf);
}

static void test_refused(void **state)
{
	size_t len;
	uint8_t *buf = files_image(&len);

	buf[len - 1] ^= 1;	/* the record's checksum no longer matches */
	assert_null(ckpt_show_image(buf, len, "files.img", false));
	assert_null(ckpt_show_image(buf, 10, "files.img", false));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_refused),
	};

	log_set_level(-1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
