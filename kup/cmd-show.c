// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kup show: decode images to readable text or JSON, driven by the protobuf
 * descriptors, so every field of every image kind is shown.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "kup.h"

static void json_str(const char *s, size_t len)
{
	putchar('"');
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = s[i];

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static void indent(int n)
{
	for (int i = 0; i < n; i++)
		fputs("  ", stdout);
}

static void show_msg(const ProtobufCMessage *m, int depth, bool json);

static void show_value(const ProtobufCFieldDescriptor *f, const void *p, int depth, bool json)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
		printf("%d", *(const int32_t *)p); break;
	case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
		printf("%u", *(const uint32_t *)p); break;
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
		printf("%" PRId64, *(const int64_t *)p); break;
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
		if (!json && (strstr(f->name, "start") || strstr(f->name, "end") || strstr(f->name, "addr") ||
			      strstr(f->name, "vaddr") || strstr(f->name, "cap_")))
			printf("0x%" PRIx64, *(const uint64_t *)p);
		else
			printf("%" PRIu64, *(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		printf("%s", *(const protobuf_c_boolean *)p ? "true" : "false"); break;
	case PROTOBUF_C_TYPE_FLOAT: printf("%g", *(const float *)p); break;
	case PROTOBUF_C_TYPE_DOUBLE: printf("%g", *(const double *)p); break;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *ev =
			protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);
		if (ev)
			json ? json_str(ev->name, strlen(ev->name)) : (void)printf("%s", ev->name);
		else
			printf("%d", *(const int *)p);
		break;
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		if (s)
			json_str(s, strlen(s));
		else
			printf("null");
		break;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = p;
		if (json) {
			putchar('"');
			for (size_t i = 0; i < b->len; i++)
				printf("%02x", b->data[i]);
			putchar('"');
		} else if (!strcmp(f->name, "bpf") && b->len % 8 == 0) {
			printf("<%zu BPF instructions>", b->len / 8);
		} else {
			printf("<%zu bytes>", b->len);
		}
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		show_msg(*(ProtobufCMessage *const *)p, depth, json);
		break;
	}
}

static size_t type_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_STRING: case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	default:
		return 4;
	}
}

static void show_msg(const ProtobufCMessage *m, int depth, bool json)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	bool first = true;

	printf(json ? "{" : "{\n");
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)m;

		if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
		    f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE &&
		    !*(const protobuf_c_boolean *)(base + f->quantifier_offset))
			continue;
		if ((f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE) &&
		    f->label != PROTOBUF_C_LABEL_REPEATED && !*(void *const *)(base + f->offset))
			continue;
		if (json) {
			printf("%s", first ? "" : ",");
			json_str(f->name, strlen(f->name));
			putchar(':');
		} else {
			indent(depth + 1);
			printf("%s: ", f->name);
		}
		first = false;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			const char *arr = *(char *const *)(base + f->offset);

			putchar('[');
			for (size_t j = 0; j < n; j++) {
				if (j)
					printf(json ? "," : ", ");
				show_value(f, arr + j * type_size(f->type), depth + 1, json);
			}
			putchar(']');
		} else {
			show_value(f, base + f->offset, depth + 1, json);
		}
		if (!json)
			putchar('\n');
	}
	if (!json)
		indent(depth);
	putchar('}');
}

/* Show one image file; returns 0, or -1 when it is not a valid image. */
/*
 * kup show reads images from anywhere (it only decodes them): a FIFO must
 * not block it, nor a file truncated while it reads crash it (SIGBUS through
 * a mapping), so the image is read into memory.
 */
#define SHOW_MAX_IMAGE	(1ULL << 30)

static int show_file(int dfd, const char *name, bool json, bool *first)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	ProtobufCMessage **msgs;
	struct stat st;
	char *data;
	size_t n, len = 0;
	uint32_t kind;
	int ret = -1;

	if (fd < 0) {
		log_errno(errno, "cannot open %s", name);
		return -1;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		log_err("%s: not a kup image (not a regular file)", name);
		return -1;
	}
	if (st.st_size < IMG_HDR_SIZE || (unsigned long long)st.st_size > SHOW_MAX_IMAGE) {
		close(fd);
		log_err("%s: not a kup image (%lld bytes)", name, (long long)st.st_size);
		return -1;
	}
	data = malloc(st.st_size);
	while (data && len < (size_t)st.st_size) {
		ssize_t r = read(fd, data + len, st.st_size - len);

		if (r <= 0)
			break;
		len += r;
	}
	close(fd);
	if (!data)
		return log_errno(ENOMEM, "cannot read %s", name), -1;
	if (len < IMG_HDR_SIZE) {
		log_err("%s: not a kup image (could read %zu bytes)", name, len);
		goto out;
	}
	memcpy(&kind, data + 12, 4);
	if (memcmp(data, IMG_MAGIC, 8) || !img_kind_desc(kind)) {
		log_err("%s: not a kup metadata image", name);
		goto out;
	}
	if (img_parse(data, len, kind, img_kind_desc(kind), name, &msgs, &n))
		goto out;
	if (json) {
		printf("%s", *first ? "" : ",\n");
		json_str(name, strlen(name));
		printf(":{\"kind\":\"%s\",\"entries\":[", img_kind_name(kind));
	} else {
		printf("== %s (%s, %zu record%s)\n", name, img_kind_name(kind), n, n == 1 ? "" : "s");
	}
	for (size_t i = 0; i < n; i++) {
		if (json && i)
			putchar(',');
		show_msg(msgs[i], 0, json);
		if (!json)
			putchar('\n');
	}
	if (json)
		printf("]}");
	*first = false;
	img_free_msgs(msgs, n);
	ret = 0;
out:
	free(data);
	return ret;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int cmd_show(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, 0, 'J' },
		{ "help", no_argument, 0, 'h' },
		{}
	};
	bool json = false, first = true;
	struct stat st;
	int c, bad = 0;

	log_set_prefix("kup show");
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'J': json = true; break;
		case 'h':
			printf("Usage: kup show DIR|IMAGE [--json]\n\n"
			       "Decode a kup image, or every metadata image of a directory, to text\n"
			       "or JSON (one object keyed by file name).  Page images are listed by size.\n");
			return 0;
		default: return KUP_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "Usage: kup show DIR|IMAGE [--json]\n");
		return KUP_EXIT_USAGE;
	}
	if (stat(argv[optind], &st))
		return log_errno(errno, "cannot open %s", argv[optind]), KUP_EXIT_FAIL;
	if (json)
		putchar('{');
	if (S_ISDIR(st.st_mode)) {
		struct dirent **ents;
		int dfd = open(argv[optind], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int n = scandir(argv[optind], &ents, NULL, by_name);

		for (int i = 0; i < n; i++) {
			const char *nm = ents[i]->d_name;

			if (strstr(nm, ".img") && strncmp(nm, "pages-", 6) && strncmp(nm, "shmem-", 6))
				bad |= show_file(dfd, nm, json, &first);
			else if (!json && strstr(nm, ".img")) {
				struct stat ps;
				if (!fstatat(dfd, nm, &ps, 0))
					printf("== %s (raw pages, %lld bytes)\n", nm, (long long)ps.st_size);
			}
			free(ents[i]);
		}
		if (n >= 0)
			free(ents);
		close(dfd);
	} else {
		bad |= show_file(AT_FDCWD, argv[optind], json, &first);
	}
	if (json)
		printf("}\n");
	return bad ? KUP_EXIT_FAIL : 0;
}

KUP_COMMAND("show", cmd_show, "decode images to text or JSON");
