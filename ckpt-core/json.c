// SPDX-License-Identifier: GPL-2.0-or-later
/* JSON output through jansson (json.h): the commands' --json and kup show's decoder. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* Length of the valid UTF-8 sequence at @s (of at most @n bytes), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

json_t *kup_json_str(const char *s)
{
	return s ? kup_json_strn(s, strlen(s)) : json_null();
}

json_t *kup_json_strn(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, o = 0, k;
	char *buf;
	json_t *j;

	j = json_stringn(s, n);
	if (j)
		return j;
	/* not UTF-8: each bad byte becomes U+FFFD (3 bytes) */
	if (n > SIZE_MAX / 3 - 1)
		return NULL;
	buf = malloc(n * 3 + 1);
	if (!buf)
		return NULL;
	while (i < n) {
		k = utf8_seq(p + i, n - i);
		if (k) {
			memcpy(buf + o, p + i, k);
			o += k, i += k;
		} else {
			memcpy(buf + o, "\xef\xbf\xbd", 3);
			o += 3, i++;
		}
	}
	j = json_stringn(buf, o);
	free(buf);
	return j;
}

json_t *kup_json_base64(const void *data, size_t len)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = data;
	size_t i, o = 0;
	char *buf;
	json_t *j;

	if (len > (SIZE_MAX - 4) / 4 * 3)
		return NULL;
	buf = malloc((len + 2) / 3 * 4 + 1);
	if (!buf)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = p[i] << 16 | p[i + 1] << 8 | p[i + 2];

		buf[o++] = tab[v >> 18];
		buf[o++] = tab[(v >> 12) & 63];
		buf[o++] = tab[(v >> 6) & 63];
		buf[o++] = tab[v & 63];
	}
	if (i < len) {
		uint32_t v = p[i] << 16 | (i + 1 < len ? p[i + 1] << 8 : 0);

		buf[o++] = tab[v >> 18];
		buf[o++] = tab[(v >> 12) & 63];
		buf[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
		buf[o++] = '=';
	}
	j = json_stringn(buf, o);
	free(buf);
	return j;
}

json_t *kup_json_u64(uint64_t v)
{
	char b[24];

	snprintf(b, sizeof(b), "%" PRIu64, v);
	return json_string(b);
}

json_t *kup_json_i64(int64_t v)
{
	char b[24];

	snprintf(b, sizeof(b), "%" PRId64, v);
	return json_string(b);
}

void kup_json_set(json_t *obj, const char *key, json_t *val)
{
	if (obj && val)
		json_object_set_new(obj, key, val);
}

int kup_json_print(FILE *f, json_t *v)
{
	int r = -EIO;

	if (v && !json_dumpf(v, f, JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) && fputc('\n', f) != EOF)
		r = 0;
	json_decref(v);
	return r;
}
