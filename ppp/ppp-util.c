// SPDX-License-Identifier: GPL-2.0-or-later
/* ppp: logging, checksums, small helpers. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <isa-l/crc.h>

#include "ppp-int.h"

#include <xxh_x86dispatch.h>	/* XXH3: SSE2, AVX2 or AVX512, chosen at run time */

static void ppp_default_logger(int level, const char *msg)
{
	char line[1200];
	int n;

	if (level > PPP_LOG_WARN)
		return;
	n = snprintf(line, sizeof(line), "ppp: %s%s\n",
		     level == PPP_LOG_ERR ? "error: " : "warning: ", msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	/* one write() so that lines from several processes do not interleave */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

static void (*ppp_logger)(int, const char *) = ppp_default_logger;

void ppp_set_logger(void (*fn)(int level, const char *msg))
{
	ppp_logger = fn ? fn : ppp_default_logger;
}

static bool (*ppp_interrupt)(void);

void ppp_set_interrupt(bool (*fn)(void))
{
	ppp_interrupt = fn;
}

bool ppp__interrupted(void)
{
	return ppp_interrupt && ppp_interrupt();
}

void ppp__log(int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int e = errno;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ppp_logger(level, msg);
	errno = e;
}

/*
 * ISA-L's crc32_iscsi() neither inverts its seed nor its result: the
 * standard crc32c of a buffer is ~crc32_iscsi(buf, len, ~0).  Expose the
 * usual convention (start from 0, chain by passing the previous result).
 * Its length is an int: feed it at most 1 GiB at a time.
 */
uint32_t ppp_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint32_t state = ~crc;

	while (len) {
		size_t n = len > (1u << 30) ? (1u << 30) : len;

		state = crc32_iscsi((unsigned char *)p, (int)n, state);
		p += n;
		len -= n;
	}
	return ~state;
}

uint64_t ppp__csum(uint32_t type, const void *buf, size_t len)
{
	switch (type) {
	case PPP_CSUM_XXH3:
		return XXH3_64bits_dispatch(buf, len);
	case PPP_CSUM_XXH64:
		return XXH64(buf, len, 0);
	}
	return ppp_crc32c(0, buf, len);
}

void ppp__csum_init(struct ppp__csum *s, uint32_t type)
{
	s->type = type;
	s->crc = 0;
	if (type == PPP_CSUM_XXH3)
		XXH3_64bits_reset(&s->x3);
	else if (type == PPP_CSUM_XXH64)
		XXH64_reset(&s->xs, 0);
}

void ppp__csum_update(struct ppp__csum *s, const void *buf, size_t len)
{
	if (s->type == PPP_CSUM_XXH3)
		XXH3_64bits_update_dispatch(&s->x3, buf, len);
	else if (s->type == PPP_CSUM_XXH64)
		XXH64_update(&s->xs, buf, len);
	else
		s->crc = ppp_crc32c(s->crc, buf, len);
}

uint64_t ppp__csum_final(struct ppp__csum *s)
{
	if (s->type == PPP_CSUM_XXH3)
		return XXH3_64bits_digest(&s->x3);
	return s->type == PPP_CSUM_XXH64 ? XXH64_digest(&s->xs) : s->crc;
}

const char *ppp_csum_name(uint32_t csum)
{
	switch (csum) {
	case PPP_CSUM_CRC32C:
		return "crc32c";
	case PPP_CSUM_XXH64:
		return "xxhash64";
	case PPP_CSUM_XXH3:
		return "xxh3";
	}
	return NULL;
}

int ppp_csum_parse(const char *name)
{
	if (!name)
		return -EINVAL;
	if (!strcmp(name, "crc32c"))
		return PPP_CSUM_CRC32C;
	if (!strcmp(name, "xxhash64") || !strcmp(name, "xxh64"))
		return PPP_CSUM_XXH64;
	if (!strcmp(name, "xxh3") || !strcmp(name, "xxhash3"))
		return PPP_CSUM_XXH3;
	return -EINVAL;
}

void ppp__uuid_str(const uint8_t u[16], char out[37])
{
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7],
		 u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

int ppp__random(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= n;
	}
	return 0;
}

uint64_t ppp__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

const char *ppp_strerror(int err)
{
	return strerror(err < 0 ? -err : err);
}
