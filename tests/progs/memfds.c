/*
 * memfds: memfds in the shapes programs use them.
 *
 * Usage: memfds
 *
 * A: fd only, 3 pages and 100 bytes of content, sealed against shrinking
 *    and growing (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
 * B: fd and a MAP_SHARED mapping of it (one object: a write through the
 *    mapping is read through the fd);
 * C: a MAP_SHARED mapping only (its fd closed), 64 KiB;
 * D: F_SEAL_FUTURE_WRITE, mapped read-only, fd kept.
 * Lines: "READY"; SIGUSR1: "CHECK <k> OK" or "CHECK <k> FAIL <why>".  Each
 * check also writes a new value through B's mapping and reads it back with
 * pread on B's fd, and tries to grow A (must fail with EPERM).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define SAY_LINE_MAX 256
#include "say.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif
#define ASZ	(3 * 4096 + 100)
#define CSZ	(64 * 1024)

static volatile sig_atomic_t check_requested;
static void on_usr1(int sig) { check_requested = 1; }

static int fa, fb, fd_;
static uint8_t *mb, *mc, *md;

static const char *check(int k)
{
	static char why[128];
	struct stat st;
	uint32_t v = 0x5a5a0000 + k, r = 0;

	if (fstat(fa, &st) || st.st_size != ASZ)
		return "A: wrong size";
	if (fcntl(fa, F_GET_SEALS) != (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL))
		return "A: wrong seals";
	if (!ftruncate(fa, ASZ + 4096) || errno != EPERM)
		return "A: could grow";
	for (int i = 0; i < ASZ; i++) {
		uint8_t c;

		if (pread(fa, &c, 1, i) != 1 || c != (uint8_t)(i * 3))
			return "A: wrong content";
	}
	memcpy(mb + 4096, &v, sizeof(v));
	if (pread(fb, &r, sizeof(r), 4096) != sizeof(r) || r != v) {
		snprintf(why, sizeof(why), "B: wrote %x through the mapping, the fd reads %x", v, r);
		return why;
	}
	for (int i = 0; i < CSZ; i++)
		if (mc[i] != (uint8_t)(i * 5 + 1))
			return "C: wrong content";
	if (fcntl(fd_, F_GET_SEALS) != F_SEAL_FUTURE_WRITE)
		return "D: wrong seals";
	if (md[10] != 'D')
		return "D: wrong content";
	if (mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0) != MAP_FAILED)
		return "D: could map it writable";
	return NULL;
}

int main(void)
{
	int fc, k = 0;

	signal(SIGUSR1, on_usr1);
	fa = memfd_create("kup-a", MFD_ALLOW_SEALING);
	fb = memfd_create("kup-b", 0);
	fc = memfd_create("kup-c", 0);
	fd_ = memfd_create("kup-d", MFD_ALLOW_SEALING);
	if (fa < 0 || fb < 0 || fc < 0 || fd_ < 0)
		die("memfd_create failed");
	for (int i = 0; i < ASZ; i++) {
		uint8_t c = i * 3;

		if (write(fa, &c, 1) != 1)
			die("write A");
	}
	if (fcntl(fa, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL))
		die("seal A");
	if (ftruncate(fb, 8192) || ftruncate(fc, CSZ) || ftruncate(fd_, 4096))
		die("ftruncate");
	mb = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fb, 0);
	mc = mmap(NULL, CSZ, PROT_READ | PROT_WRITE, MAP_SHARED, fc, 0);
	if (mb == MAP_FAILED || mc == MAP_FAILED)
		die("mmap");
	close(fc);
	for (int i = 0; i < CSZ; i++)
		mc[i] = i * 5 + 1;
	if (pwrite(fd_, "D", 1, 10) != 1)
		die("write D");
	md = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd_, 0);
	if (md == MAP_FAILED || fcntl(fd_, F_ADD_SEALS, F_SEAL_FUTURE_WRITE))
		die("map or seal D");
	say("READY");
	for (;;) {
		if (check_requested) {
			const char *why;

			check_requested = 0;
			why = check(++k);
			if (why)
				say("CHECK %d FAIL %s", k, why);
			else
				say("CHECK %d OK", k);
		}
		sleep_ms(100);
	}
}
