/*
 * bigmem: a process with a lot of anonymous memory, most of it written with
 * a known pattern and some of it never touched (holes).
 *
 * Usage: bigmem [SIZE_MB]     (default 1024)
 *   Maps SIZE_MB of private anonymous memory (MADV_NOHUGEPAGE, so the holes
 *   stay real holes), writes every page except the 64 KiB holes that start
 *   every 256 KiB (a quarter of the region), then checksums the whole region.
 *
 * Protocol (shared by the tests/progs programs): every line is one write(2)
 * to stdout; SIGUSR1 asks for a self-check, answered "CHECK <k> OK <details>"
 * or "CHECK <k> FAIL <why>"; a broken invariant prints "ERROR <why>", exit 1.
 *
 * Lines of this program:
 *   "SUM <hex> size_mb=<n> touched_pages=<n> hole_pages=<n> seed=<hex>"
 *   "READY <pid>"            after the first full check
 *   "CHECK <k> OK sum=<hex> holes=zero"
 *   "CHECK <k> FAIL ..."     first wrong word (pattern or non-zero hole)
 *
 * The checksum covers every byte of the region, holes included, so it is the
 * same number before and after a faithful restore.  The check also verifies
 * every word against the pattern and that every hole still reads as zero.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096ul
#define WORDS_PER_PAGE (PAGE / 8)

static volatile sig_atomic_t check_requested;

static void on_usr1(int sig)
{
	check_requested = 1;
}

#define SAY_LINE_MAX 512
#include "say.h"


/* Pages 48..63 of every 64-page (256 KiB) block are never written. */
static int is_hole(size_t page)
{
	return (page / 16) % 4 == 3;
}

static uint64_t word_of(uint64_t seed, size_t page, size_t w)
{
	uint64_t z = seed + (page * WORDS_PER_PAGE + w) * 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return (z ^ (z >> 31)) | 1;	/* never 0: a lost page cannot pass */
}

struct result {
	uint64_t sum;
	long bad_page;		/* -1: everything as expected */
	size_t bad_word;
	uint64_t got, want;
};

/* Checksum all words and compare each with what it must hold. */
static struct result scan(const uint64_t *mem, size_t pages, uint64_t seed)
{
	struct result r = { 0xcbf29ce484222325ull, -1, 0, 0, 0 };

	for (size_t p = 0; p < pages; p++) {
		const uint64_t *pg = mem + p * WORDS_PER_PAGE;
		int hole = is_hole(p);

		for (size_t w = 0; w < WORDS_PER_PAGE; w++) {
			uint64_t want = hole ? 0 : word_of(seed, p, w);

			r.sum = (r.sum ^ pg[w]) * 0x100000001b3ull;
			if (pg[w] != want && r.bad_page < 0) {
				r.bad_page = p;
				r.bad_word = w;
				r.got = pg[w];
				r.want = want;
			}
		}
	}
	return r;
}

int main(int argc, char **argv)
{
	size_t size_mb = argc > 1 ? strtoul(argv[1], NULL, 0) : 1024;
	size_t pages = size_mb * (1024 * 1024 / PAGE), holes = 0;
	struct sigaction sa;
	struct result r;
	uint64_t seed;
	uint64_t *mem;
	int checks = 0;

	if (argc > 2 || !size_mb) {
		fprintf(stderr, "usage: bigmem [SIZE_MB]\n");
		return 2;
	}
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = time(NULL);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);

	mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap %zu MiB: %s", size_mb, strerror(errno));
	if (madvise(mem, pages * PAGE, MADV_NOHUGEPAGE))
		die("madvise NOHUGEPAGE: %s", strerror(errno));

	for (size_t p = 0; p < pages; p++) {
		uint64_t *pg = mem + p * WORDS_PER_PAGE;

		if (is_hole(p)) {
			holes++;
			continue;
		}
		for (size_t w = 0; w < WORDS_PER_PAGE; w++)
			pg[w] = word_of(seed, p, w);
	}

	r = scan(mem, pages, seed);
	if (r.bad_page >= 0)
		die("page %ld word %zu reads %#llx right after writing %#llx",
		    r.bad_page, r.bad_word, (unsigned long long)r.got,
		    (unsigned long long)r.want);
	say("SUM %016llx size_mb=%zu touched_pages=%zu hole_pages=%zu seed=%016llx",
	    (unsigned long long)r.sum, size_mb, pages - holes, holes,
	    (unsigned long long)seed);
	say("READY %d", getpid());

	for (;;) {
		pause();
		if (!check_requested)
			continue;
		check_requested = 0;
		r = scan(mem, pages, seed);
		checks++;
		if (r.bad_page < 0)
			say("CHECK %d OK sum=%016llx holes=zero", checks,
			    (unsigned long long)r.sum);
		else
			say("CHECK %d FAIL sum=%016llx: %s page %ld word %zu reads %#llx, want %#llx",
			    checks, (unsigned long long)r.sum,
			    is_hole(r.bad_page) ? "hole" : "data", r.bad_page,
			    r.bad_word, (unsigned long long)r.got,
			    (unsigned long long)r.want);
	}
}
