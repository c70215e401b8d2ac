/*
 * dirtier: a process that keeps writing its memory, each page stamped with
 * a generation that a table records, so that a check finds any page whose
 * content is not the one it had last been given (a write lost by a dump).
 *
 * Usage: dirtier SIZE_MB THREADS RATE [churn]
 *   SIZE_MB of private anonymous memory (MADV_NOHUGEPAGE: 4 KiB pages), cut
 *   in THREADS slices; each thread rewrites the pages of its slice in turn,
 *   RATE pages a second (0: as fast as it can), each with the next
 *   generation: word 0 the page number, word 1 the generation, the others
 *   a function of both; then gen[page] says that generation.  With
 *   "churn", a thread also maps, fills, moves (mremap) and unmaps small
 *   regions (8 kept, each with a pattern of its own), and forks a child
 *   every second that rewrites pages of slice 0 for 0.5 to 1.5 s, checks the
 *   whole memory it has and says "CHILD <pid> OK" (or FAIL), then exits.
 *
 * Lines: "READY <pid> pages=<n>" once all is written; SIGUSR1: the writers
 * pause, every page (but the one a writer was in the middle of) is checked
 * against its generation and every region against its pattern: "CHECK <k>
 * OK pages=<n> regions=<n> writes=<n>" or "CHECK <k> FAIL <first wrong>".
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SAY_LINE_MAX 512
#include "say.h"

#define PAGE 4096ul
#define WORDS (PAGE / 8)
#define NREG 8
#define MAXT 64

static uint8_t *mem;
static uint32_t *gen;
static size_t npages;
static int nthreads;
static long rate;
static volatile long inflight[MAXT + 1];	/* page being written, -1: none */
static atomic_long writes;
static atomic_int pause_req, paused;
static volatile sig_atomic_t check_requested;

struct region {
	uint8_t *addr;
	size_t pages;
	uint64_t id;
	volatile int busy;
};
static struct region reg[NREG];

static uint64_t mix(uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t z = a * 0x9e3779b97f4a7c15ull + b * 0xbf58476d1ce4e5b9ull + c;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void write_page(int slot, size_t p)
{
	uint64_t *w = (uint64_t *)(mem + p * PAGE);
	uint32_t g = gen[p] + 1;

	inflight[slot] = p;
	atomic_signal_fence(memory_order_seq_cst);
	w[0] = p;
	w[1] = g;
	for (size_t i = 2; i < WORDS; i++)
		w[i] = mix(p, g, i);
	atomic_signal_fence(memory_order_seq_cst);
	gen[p] = g;
	atomic_signal_fence(memory_order_seq_cst);
	inflight[slot] = -1;
	atomic_fetch_add(&writes, 1);
}

static bool is_inflight(size_t p)
{
	for (int t = 0; t <= MAXT; t++)
		if (inflight[t] == (long)p)
			return true;
	return false;
}

/* 0, or writes the first wrong page's description to @why */
static int check_pages(char *why, size_t len)
{
	for (size_t p = 0; p < npages; p++) {
		const uint64_t *w = (const uint64_t *)(mem + p * PAGE);
		uint32_t g = gen[p];

		if (is_inflight(p))
			continue;
		if (w[0] != p || w[1] != g) {
			snprintf(why, len, "page %zu: holds page %lu generation %lu, the table says "
				 "generation %u", p, (unsigned long)w[0], (unsigned long)w[1], g);
			return -1;
		}
		for (size_t i = 2; i < WORDS; i++)
			if (w[i] != mix(p, g, i)) {
				snprintf(why, len, "page %zu generation %u: word %zu wrong", p, g, i);
				return -1;
			}
	}
	return 0;
}

static void fill_region(struct region *r, size_t from)
{
	for (size_t p = from; p < r->pages; p++) {
		uint64_t *w = (uint64_t *)(r->addr + p * PAGE);

		w[0] = r->id;
		w[1] = p;
		for (size_t i = 2; i < WORDS; i++)
			w[i] = mix(r->id, p, i) ^ 0x5555;
	}
}

static int check_regions(char *why, size_t len, int *n)
{
	*n = 0;
	for (int k = 0; k < NREG; k++) {
		struct region *r = &reg[k];

		if (r->busy || !r->addr)
			continue;
		(*n)++;
		for (size_t p = 0; p < r->pages; p++) {
			const uint64_t *w = (const uint64_t *)(r->addr + p * PAGE);

			for (size_t i = 0; i < WORDS; i++) {
				uint64_t want = i == 0 ? r->id : i == 1 ? p : mix(r->id, p, i) ^ 0x5555;

				if (w[i] != want) {
					snprintf(why, len, "region %lu page %zu of %zu: word %zu wrong",
						 (unsigned long)r->id, p, r->pages, i);
					return -1;
				}
			}
		}
	}
	return 0;
}

static void pace(unsigned long *done, uint64_t t0)
{
	if (!rate)
		return;
	if (++*done % 32 == 0) {
		uint64_t due = t0 + *done * 1000 / rate;

		while (now_ms() < due)
			usleep(1000);
	}
}

static void wait_if_paused(void)
{
	if (!atomic_load(&pause_req))
		return;
	atomic_fetch_add(&paused, 1);
	while (atomic_load(&pause_req))
		usleep(1000);
	atomic_fetch_sub(&paused, 1);
}

static void *writer(void *arg)
{
	int t = (int)(long)arg;
	size_t lo = npages * t / nthreads, hi = npages * (t + 1) / nthreads, p = lo;
	unsigned long done = 0;
	uint64_t t0 = now_ms();

	for (;;) {
		wait_if_paused();
		write_page(t, p);
		if (++p == hi)
			p = lo;
		pace(&done, t0);
	}
	return NULL;
}

static void child_life(int ms)
{
	size_t lo = 0, hi = npages / nthreads, p = lo;
	uint64_t end = now_ms() + ms;
	char why[256];
	int n;

	/* the pages the parent's writers were in: written whole again */
	for (int t = 0; t <= MAXT; t++) {
		long q = inflight[t];

		if (q >= 0) {
			write_page(MAXT, q);
			inflight[t] = -1;
		}
	}
	while (now_ms() < end) {
		write_page(MAXT, p);
		if (++p == hi)
			p = lo;
		if (p % 64 == 0)
			usleep(1000);
	}
	if (check_pages(why, sizeof(why)) || check_regions(why, sizeof(why), &n))
		say("CHILD %d FAIL %s", getpid(), why);
	else
		say("CHILD %d OK", getpid());
	_exit(0);
}

static void *churn(void *arg)
{
	uint64_t id = 1, last_fork = 0;
	unsigned seed = getpid();

	for (;;) {
		struct region *r = &reg[rand_r(&seed) % NREG];

		wait_if_paused();
		r->busy = 1;
		atomic_signal_fence(memory_order_seq_cst);
		if (r->addr && rand_r(&seed) % 3 == 0) {
			size_t np = r->pages + 1 + rand_r(&seed) % 64;
			uint8_t *a = mremap(r->addr, r->pages * PAGE, np * PAGE, MREMAP_MAYMOVE);

			if (a == MAP_FAILED)
				die("mremap: %m");
			r->addr = a;
			fill_region(r, r->pages);
			r->pages = np;
			fill_region(r, 0);
		} else {
			if (r->addr)
				munmap(r->addr, r->pages * PAGE);
			r->pages = 16 + rand_r(&seed) % 240;
			r->addr = mmap(NULL, r->pages * PAGE, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (r->addr == MAP_FAILED)
				die("mmap: %m");
			r->id = id++;
			fill_region(r, 0);
		}
		atomic_signal_fence(memory_order_seq_cst);
		r->busy = 0;
		if (now_ms() - last_fork >= 1000) {
			pid_t c;

			last_fork = now_ms();
			c = fork();
			if (c < 0)
				die("fork: %m");
			if (!c)
				child_life(500 + rand_r(&seed) % 1000);
		}
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		usleep(20000);
	}
	return NULL;
}

static void on_usr1(int sig)
{
	check_requested = 1;
}

int main(int argc, char **argv)
{
	static int checks;
	bool with_churn;
	pthread_t th;
	sigset_t set, old;

	if (argc < 4)
		die("usage: dirtier SIZE_MB THREADS RATE [churn]");
	npages = strtoul(argv[1], NULL, 10) << 20 >> 12;
	nthreads = atoi(argv[2]);
	rate = atol(argv[3]);
	with_churn = argc > 4 && !strcmp(argv[4], "churn");
	if (!npages || nthreads < 1 || nthreads > MAXT)
		die("bad arguments");
	for (int t = 0; t <= MAXT; t++)
		inflight[t] = -1;
	mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	gen = mmap(NULL, npages * sizeof(*gen), PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || gen == MAP_FAILED)
		die("mmap: %m");
	madvise(mem, npages * PAGE, MADV_NOHUGEPAGE);
	for (size_t p = 0; p < npages; p++)
		write_page(0, p);
	signal(SIGUSR1, on_usr1);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	for (int t = 0; t < nthreads; t++)
		if (pthread_create(&th, NULL, writer, (void *)(long)t))
			die("pthread_create");
	if (with_churn && pthread_create(&th, NULL, churn, NULL))
		die("pthread_create");
	say("READY %d pages=%zu", getpid(), npages);
	for (;;) {
		char why[256];
		int n = 0, want = nthreads + with_churn;

		sigsuspend(&old);
		if (!check_requested)
			continue;
		check_requested = 0;
		atomic_store(&pause_req, 1);
		while (atomic_load(&paused) < want)
			usleep(1000);
		checks++;
		if (check_pages(why, sizeof(why)) || check_regions(why, sizeof(why), &n))
			say("CHECK %d FAIL %s", checks, why);
		else
			say("CHECK %d OK pages=%zu regions=%d writes=%ld", checks, npages, n,
			    atomic_load(&writes));
		atomic_store(&pause_req, 0);
	}
}
