// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The decoder of kup show: any metadata image to readable text or JSON,
 * driven by the protobuf descriptors, so every field of every image kind is
 * shown.  In the engine (ckpt-summary.h), which alone knows the schema; a
 * fuzzer drives it on any bytes (tests/fuzz/fuzz-show.c).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "log.h"
#include "ckpt-summary.h"

static void json_str(FILE *out, const char *s, size_t len)
{
	fputc('"', out);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = s[i];

		if (ch == '"' || ch == '\\')
			fprintf(out, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			fprintf(out, "\\u%04x", ch);
		else
			fputc(ch, out);
	}
	fputc('"', out);
}

static void indent(FILE *out, int n)
{
	for (int i = 0; i < n; i++)
		fputs("  ", out);
}

static void show_msg(FILE *out, const ProtobufCMessage *m, int depth, bool json);

static void show_value(FILE *out, const ProtobufCFieldDescriptor *f, const void *p, int depth, bool json)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
		fprintf(out, "%d", *(const int32_t *)p); break;
	case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
		fprintf(out, "%u", *(const uint32_t *)p); break;
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
		fprintf(out, "%" PRId64, *(const int64_t *)p); break;
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
		if (!json && (strstr(f->name, "start") || strstr(f->name, "end") || strstr(f->name, "addr") ||
			      strstr(f->name, "vaddr") || strstr(f->name, "cap_")))
			fprintf(out, "0x%" PRIx64, *(const uint64_t *)p);
		else
			fprintf(out, "%" PRIu64, *(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		fprintf(out, "%s", *(const protobuf_c_boolean *)p ? "true" : "false"); break;
	case PROTOBUF_C_TYPE_FLOAT: fprintf(out, "%g", *(const float *)p); break;
	case PROTOBUF_C_TYPE_DOUBLE: fprintf(out, "%g", *(const double *)p); break;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *ev =
			protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);
		if (ev)
			json ? json_str(out, ev->name, strlen(ev->name)) : (void)fprintf(out, "%s", ev->name);
		else
			fprintf(out, "%d", *(const int *)p);
		break;
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		if (s)
			json_str(out, s, strlen(s));
		else
			fprintf(out, "null");
		break;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = p;
		if (json) {
			fputc('"', out);
			for (size_t i = 0; i < b->len; i++)
				fprintf(out, "%02x", b->data[i]);
			fputc('"', out);
		} else if (!strcmp(f->name, "bpf") && b->len % 8 == 0) {
			fprintf(out, "<%zu BPF instructions>", b->len / 8);
		} else {
			fprintf(out, "<%zu bytes>", b->len);
		}
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		show_msg(out, *(ProtobufCMessage *const *)p, depth, json);
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

static void show_msg(FILE *out, const ProtobufCMessage *m, int depth, bool json)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	bool first = true;

	fprintf(out, json ? "{" : "{\n");
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
			fprintf(out, "%s", first ? "" : ",");
			json_str(out, f->name, strlen(f->name));
			fputc(':', out);
		} else {
			indent(out, depth + 1);
			fprintf(out, "%s: ", f->name);
		}
		first = false;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			const char *arr = *(char *const *)(base + f->offset);

			fputc('[', out);
			for (size_t j = 0; j < n; j++) {
				if (j)
					fprintf(out, json ? "," : ", ");
				show_value(out, f, arr + j * type_size(f->type), depth + 1, json);
			}
			fputc(']', out);
		} else {
			show_value(out, f, base + f->offset, depth + 1, json);
		}
		if (!json)
			fputc('\n', out);
	}
	if (!json)
		indent(out, depth);
	fputc('}', out);
}


/*
 * Decode the image @data (@len bytes, named @name in messages) to @out.
 * @first: no JSON object came before it.  0, or -1 when it is not a valid
 * image (said on stderr).
 */
int ckpt_show_image(FILE *out, const void *data, size_t len, const char *name, bool json,
		   bool first)
{
	ProtobufCMessage **msgs;
	uint32_t kind;
	size_t n;

	if (len < IMG_HDR_SIZE) {
		log_err("%s: not a kup image (too short)", name);
		return -1;
	}
	memcpy(&kind, (const char *)data + 12, 4);
	if (memcmp(data, IMG_MAGIC, 8) || !img_kind_desc(kind)) {
		log_err("%s: not a kup metadata image", name);
		return -1;
	}
	if (img_parse(data, len, kind, img_kind_desc(kind), name, &msgs, &n))
		return -1;
	if (json) {
		fprintf(out, "%s", first ? "" : ",\n");
		json_str(out, name, strlen(name));
		fprintf(out, ":{\"kind\":\"%s\",\"entries\":[", img_kind_name(kind));
	} else {
		fprintf(out, "== %s (%s, %zu record%s)\n", name, img_kind_name(kind), n, n == 1 ? "" : "s");
	}
	for (size_t i = 0; i < n; i++) {
		if (json && i)
			fputc(',', out);
		show_msg(out, msgs[i], 0, json);
		if (!json)
			fputc('\n', out);
	}
	if (json)
		fprintf(out, "]}");
	img_free_msgs(msgs, n);
	return 0;
}
