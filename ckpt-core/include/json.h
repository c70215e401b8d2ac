/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * JSON output of the commands (--json) and of kup show's decoder, through jansson.  The mapping is
 * protobuf's JSON mapping: 64-bit integers are strings (a double cannot hold
 * them: 18446744073709551615 would read back as 18446744073709552000),
 * 32-bit ones numbers; strings are UTF-8 as they are, a byte that is not
 * UTF-8 (a path can hold any) becomes U+FFFD.
 */
#ifndef KUP_JSON_H
#define KUP_JSON_H

#include <stdint.h>
#include <stdio.h>
#include <jansson.h>

json_t *kup_json_str(const char *s);	/* NULL s: null */
json_t *kup_json_strn(const char *s, size_t n);	/* @n bytes, NULs kept */
json_t *kup_json_base64(const void *data, size_t len);	/* as protobuf maps bytes */
json_t *kup_json_u64(uint64_t v);
json_t *kup_json_i64(int64_t v);
/* Set KEY of OBJ to VAL (a new reference, taken); VAL NULL is skipped. */
void kup_json_set(json_t *obj, const char *key, json_t *val);
/* Print V with a newline, then drop the reference; -EIO if that failed. */
int kup_json_print(FILE *f, json_t *v);

#endif
