/*
 * lazyops: memory that changes shape while a lazy restore still fills it.
 *
 * Usage: lazyops [MB [huge]]      (default 16: each of the four regions)
 *   Four private anonymous regions A, B, C, D of MB MiB each, every word
 *   written with a pattern of its region and offset.  Advised
 *   MADV_NOHUGEPAGE, or with "huge" MADV_HUGEPAGE, 2 MiB aligned and apart
 *   (transparent huge pages where the machine gives them).
 *
 * Protocol (shared by the tests/progs programs): one write(2) per line.
 *   "READY <pid>"                 once written
 *   SIGUSR1 (once, after a restore): without reading anything first,
 *     B is moved with mremap to a new address, the second half of C is
 *     unmapped, the first half of D dropped with madvise(MADV_DONTNEED),
 *     then a child is forked that checks everything (it shares the pages
 *     not filled yet) and exits; then the process checks it all itself:
 *     "OPS child=OK|FAIL self=OK|FAIL <details>"
 *   SIGUSR2: the check again, "CHECK <k> OK" or "CHECK <k> FAIL <why>".
 * What is checked: A as written, B as written at its new address, the first
 * half of C as written, the first half of D zero and its second half as
 * written.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t ops_req, check_req;
static size_t len;
static uint64_t *a, *b, *c, *d;
static int moved;

static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (write(1, buf, n) != n)
		exit(1);
}

static uint64_t pat(int region, size_t i)
{
	return ((uint64_t)region << 56) ^ (i * 0x9e3779b97f4a7c15ull) ^ 0x5a5a;
}

static void fill(uint64_t *p, int region)
{
	for (size_t i = 0; i < len / 8; i++)
		p[i] = pat(region, i);
}

/* 0, or writes why into @why */
static int verify(char *why, size_t wl)
{
	size_t n = len / 8;

	for (size_t i = 0; i < n; i++)
		if (a[i] != pat(1, i))
			return snprintf(why, wl, "A word %zu", i), 1;
	for (size_t i = 0; i < n; i++)
		if (b[i] != pat(2, i))
			return snprintf(why, wl, "B (moved) word %zu: %llx", i, (unsigned long long)b[i]), 1;
	for (size_t i = 0; i < n / 2; i++)
		if (c[i] != pat(3, i))
			return snprintf(why, wl, "C word %zu", i), 1;
	for (size_t i = 0; i < n / 2; i++)
		if (d[i])
			return snprintf(why, wl, "D word %zu not zero after MADV_DONTNEED", i), 1;
	for (size_t i = n / 2; i < n; i++)
		if (d[i] != pat(4, i))
			return snprintf(why, wl, "D word %zu", i), 1;
	return 0;
}

static void on_usr1(int s) { ops_req = 1; }
static void on_usr2(int s) { check_req = 1; }

static void do_ops(void)
{
	char why[160] = "", cwhy[16] = "OK";
	void *to;
	pid_t child;
	int st, self;

	/* a place for B that nothing else takes */
	to = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	b = mremap(b, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	if (b == MAP_FAILED) {
		say("ERROR mremap\n");
		exit(1);
	}
	moved = 1;
	if (munmap((char *)c + len / 2, len / 2) || madvise(d, len / 2, MADV_DONTNEED)) {
		say("ERROR munmap/madvise\n");
		exit(1);
	}
	child = fork();
	if (child == 0)
		_exit(verify(why, sizeof(why)) ? 1 : 0);
	if (child < 0 || waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st))
		snprintf(cwhy, sizeof(cwhy), "FAIL");
	self = verify(why, sizeof(why));
	say("OPS child=%s self=%s %s\n", cwhy, self ? "FAIL" : "OK", why);
}

/* A region of len bytes, a mapping of its own (apart from the others) */
static uint64_t *region(int huge)
{
	const size_t H = 2UL << 20;
	char *raw, *p;

	if (!huge) {
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED)
			madvise(p, len, MADV_NOHUGEPAGE);
		return p == MAP_FAILED ? NULL : (uint64_t *)p;
	}
	raw = mmap(NULL, len + 2 * H, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	p = (char *)(((uintptr_t)raw + H - 1) & ~(H - 1)) + H;
	munmap(raw, p - raw);
	munmap(p + len, raw + len + 2 * H - (p + len));
	madvise(p, len, MADV_HUGEPAGE);
	return (uint64_t *)p;
}

int main(int argc, char **argv)
{
	int k = 0, huge = argc > 2 && !strcmp(argv[2], "huge");

	len = (argc > 1 ? strtoul(argv[1], NULL, 0) : 16) << 20;
	signal(SIGUSR1, on_usr1);
	signal(SIGUSR2, on_usr2);
	/* separate mappings, not merged into one */
	a = region(huge);
	b = region(huge);
	c = region(huge);
	d = region(huge);
	if (!a || !b || !c || !d)
		return 1;
	fill(a, 1);
	fill(b, 2);
	fill(c, 3);
	fill(d, 4);
	say("READY %d\n", getpid());
	for (;;) {
		pause();
		if (ops_req && !moved) {
			ops_req = 0;
			do_ops();
		}
		if (check_req) {
			char why[160];

			check_req = 0;
			k++;
			if (!moved)
				say("CHECK %d FAIL the operations did not run\n", k);
			else if (verify(why, sizeof(why)))
				say("CHECK %d FAIL %s\n", k, why);
			else
				say("CHECK %d OK\n", k);
		}
	}
}
