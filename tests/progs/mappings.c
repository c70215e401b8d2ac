/*
 * mappings: one process of each kind of memory mapping a checkpoint must
 * restore, with a child that shares some of them.
 *
 * Usage: mappings DIR SHMNAME
 *   DIR      a directory for the file behind the private file mapping
 *   SHMNAME  name for shm_open (the file /dev/shm/SHMNAME; removed by the test)
 *
 * Regions, each filled with its own pattern at start:
 *   anon   16 MiB MAP_SHARED | MAP_ANONYMOUS, shared with the child by fork
 *   memfd   8 MiB memfd, MAP_SHARED; the fd stays open and must read back
 *          the same bytes as the mapping
 *   shm     8 MiB /dev/shm/SHMNAME, MAP_SHARED; the child maps it itself
 *   file    4 MiB DIR/private.dat mapped MAP_PRIVATE; every 4th page written
 *          through the mapping (dirty, private) while the file keeps the
 *          original bytes
 *   heap   64 MiB of brk heap (sbrk); the break must not move
 *   guard   1 MiB PROT_NONE right below a 1 MiB read-write region: reading
 *          the guard must fault (SIGSEGV), /proc/self/maps must show ---p
 * The first page of anon, memfd and shm is a mailbox: the child bumps a tick
 * counter in each every 50 ms and echoes the parent's "ping" into "pong", so
 * sharing must work both ways.
 *
 * Protocol (shared by the tests/progs programs): every line is one write(2)
 * to stdout; SIGUSR1 (to the parent) asks for a self-check, answered
 * "CHECK <k> OK <sums>" or "CHECK <k> FAIL <why>"; a broken invariant prints
 * "ERROR <why>" and exits 1.
 *
 * Lines: "PID PARENT <pid>", "PID CHILD <pid>", "READY",
 * "CHECK <k> OK anon=<hex> memfd=<hex> shm=<hex> file=<hex> heap=<hex>
 * guard=<hex> brk=<addr>" (sums exclude the mailbox pages; they are the same
 * numbers on every check).
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096ul
#define MiB (1024ul * 1024)
#define WPP (PAGE / 8)

enum { R_ANON, R_MEMFD, R_SHM, R_FILE, R_FILE_DIRTY, R_HEAP, R_RW, NREG };

struct mailbox {
	volatile uint64_t tick;		/* child: +1 every 50 ms */
	volatile uint64_t ping;		/* parent writes */
	volatile uint64_t pong;		/* child copies ping here */
};

static volatile sig_atomic_t check_requested;
static sigjmp_buf fault_jmp;
static volatile sig_atomic_t probing;

static uint64_t *anon, *memfd_map, *shm_map, *file_map, *heap, *guard, *rw;
static size_t anon_sz = 16 * MiB, memfd_sz = 8 * MiB, shm_sz = 8 * MiB;
static size_t file_sz = 4 * MiB, heap_sz = 64 * MiB, guard_sz = 1 * MiB;
static int memfd_fd, file_fd;
static void *brk_end;

static void on_usr1(int sig) { check_requested = 1; }

static void on_segv(int sig)
{
	if (probing)
		siglongjmp(fault_jmp, 1);
	signal(SIGSEGV, SIG_DFL);
	raise(SIGSEGV);
}

#include "say.h"


static uint64_t word_of(int region, size_t page, size_t w)
{
	uint64_t z = (region + 1) * 0x123456789abcdefull + (page * WPP + w) * 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return (z ^ (z >> 31)) | 1;
}

static int file_page_dirty(size_t page)
{
	return page % 4 == 1;
}

/* Region @r's pattern for page @page (file: dirty pages differ). */
static int region_of(int r, size_t page)
{
	return r == R_FILE && file_page_dirty(page) ? R_FILE_DIRTY : r;
}

static void fill(uint64_t *mem, size_t size, int r, size_t first_page)
{
	for (size_t p = first_page; p < size / PAGE; p++)
		for (size_t w = 0; w < WPP; w++)
			mem[p * WPP + w] = word_of(region_of(r, p), p, w);
}

/*
 * Checksum pages [first_page, size/PAGE) and compare with the pattern.
 * Returns the sum; on a mismatch fills @why (if still empty).
 */
static uint64_t verify(const char *name, const uint64_t *mem, size_t size, int r,
		       size_t first_page, char *why, size_t len)
{
	uint64_t sum = 0xcbf29ce484222325ull;

	for (size_t p = first_page; p < size / PAGE; p++)
		for (size_t w = 0; w < WPP; w++) {
			uint64_t v = mem[p * WPP + w], want = word_of(region_of(r, p), p, w);

			sum = (sum ^ v) * 0x100000001b3ull;
			if (v != want && !why[0])
				snprintf(why, len, "%s page %zu word %zu is %#llx, want %#llx",
					 name, p, w, (unsigned long long)v, (unsigned long long)want);
		}
	return sum;
}

static void run_child(pid_t parent, const char *shm_name)
{
	struct mailbox *boxes[3];
	uint64_t *shm2;
	int fd;

	say("PID CHILD %d", getpid());
	/* The child maps the /dev/shm file by itself, at another address. */
	fd = shm_open(shm_name, O_RDWR, 0);
	if (fd < 0)
		die("child: shm_open %s: %s", shm_name, strerror(errno));
	shm2 = mmap(NULL, shm_sz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (shm2 == MAP_FAILED)
		die("child: mmap shm: %s", strerror(errno));
	close(fd);
	boxes[0] = (struct mailbox *)anon;
	boxes[1] = (struct mailbox *)memfd_map;
	boxes[2] = (struct mailbox *)shm2;

	for (;;) {
		if (getppid() != parent)
			die("child: parent changed from %d to %d", parent, getppid());
		for (int i = 0; i < 3; i++) {
			boxes[i]->tick++;
			boxes[i]->pong = boxes[i]->ping;
		}
		sleep_ms(50);
	}
}

/*
 * Is [addr, addr+len) one mapping with permissions @perms in our maps?
 * (No stdio here: malloc could move the program break we check.)
 */
static int maps_has(void *addr, size_t len, const char *perms)
{
	static char maps[256 * 1024];
	unsigned long lo, hi, want_lo = (unsigned long)addr, want_hi = want_lo + len;
	size_t used = 0;
	char p[8], *line;
	int fd = open("/proc/self/maps", O_RDONLY), found = 0;
	ssize_t n;

	if (fd < 0)
		return 0;
	while (used < sizeof(maps) - 1 && (n = read(fd, maps + used, sizeof(maps) - 1 - used)) > 0)
		used += n;
	close(fd);
	maps[used] = 0;
	for (line = maps; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, p) == 3 &&
		    lo <= want_lo && hi >= want_hi && !strcmp(p, perms))
			found = 1;
	return found;
}

static const char *check_all(char *why, size_t len, char *sums, size_t slen)
{
	static const char *names[3] = { "anon", "memfd", "shm" };
	struct mailbox *boxes[3] = { (void *)anon, (void *)memfd_map, (void *)shm_map };
	static uint64_t ping;
	uint64_t s_anon, s_memfd, s_shm, s_file, s_heap, s_rw, tick0[3];
	char *buf;

	why[0] = 0;
	s_anon = verify("anon", anon, anon_sz, R_ANON, 1, why, len);
	s_memfd = verify("memfd", memfd_map, memfd_sz, R_MEMFD, 1, why, len);
	s_shm = verify("shm", shm_map, shm_sz, R_SHM, 1, why, len);
	s_file = verify("file", file_map, file_sz, R_FILE, 0, why, len);
	s_heap = verify("heap", heap, heap_sz, R_HEAP, 0, why, len);
	s_rw = verify("rw", rw, guard_sz, R_RW, 0, why, len);
	if (why[0])
		return why;

	/* The memfd read through its fd, and the file on disk (never dirtied). */
	buf = mmap(NULL, memfd_sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return snprintf(why, len, "mmap buffer: %s", strerror(errno)), why;
	if (pread(memfd_fd, buf, memfd_sz, 0) != (ssize_t)memfd_sz)
		snprintf(why, len, "pread memfd fd %d: %s", memfd_fd, strerror(errno));
	else if (memcmp(buf + PAGE, (char *)memfd_map + PAGE, memfd_sz - PAGE))
		snprintf(why, len, "memfd fd %d and its mapping differ", memfd_fd);
	else if (pread(file_fd, buf, file_sz, 0) != (ssize_t)file_sz)
		snprintf(why, len, "pread file fd %d: %s", file_fd, strerror(errno));
	else
		for (size_t p = 0; p < file_sz / PAGE && !why[0]; p++)
			for (size_t w = 0; w < WPP; w++)
				if (((uint64_t *)buf)[p * WPP + w] != word_of(R_FILE, p, w)) {
					snprintf(why, len, "private.dat page %zu changed on disk: "
						 "a MAP_PRIVATE write reached the file", p);
					break;
				}
	munmap(buf, memfd_sz);
	if (why[0])
		return why;

	if (sbrk(0) != brk_end)
		return snprintf(why, len, "program break moved from %p to %p", brk_end, sbrk(0)), why;

	if (!maps_has(guard, guard_sz, "---p"))
		return snprintf(why, len, "guard %p+%zu is not a ---p mapping", (void *)guard, guard_sz), why;
	probing = 1;
	if (!sigsetjmp(fault_jmp, 1)) {
		volatile uint64_t v = guard[guard_sz / 16];

		(void)v;
		probing = 0;
		return snprintf(why, len, "reading the PROT_NONE guard did not fault"), why;
	}
	probing = 0;

	/* Sharing with the child, both ways. */
	ping++;
	for (int i = 0; i < 3; i++) {
		tick0[i] = boxes[i]->tick;
		boxes[i]->ping = ping;
	}
	for (int t = 0; t < 100; t++) {
		int done = 1;

		for (int i = 0; i < 3; i++)
			if (boxes[i]->tick < tick0[i] + 2 || boxes[i]->pong != ping)
				done = 0;
		if (done)
			break;
		sleep_ms(20);
	}
	for (int i = 0; i < 3; i++)
		if (boxes[i]->tick < tick0[i] + 2 || boxes[i]->pong != ping)
			return snprintf(why, len, "%s is no longer shared with the child: tick %llu -> %llu, "
					"ping %llu pong %llu", names[i], (unsigned long long)tick0[i],
					(unsigned long long)boxes[i]->tick, (unsigned long long)ping,
					(unsigned long long)boxes[i]->pong), why;

	snprintf(sums, slen, "anon=%016llx memfd=%016llx shm=%016llx file=%016llx heap=%016llx guard=%016llx brk=%p",
		 (unsigned long long)s_anon, (unsigned long long)s_memfd,
		 (unsigned long long)s_shm, (unsigned long long)s_file,
		 (unsigned long long)s_heap, (unsigned long long)s_rw, brk_end);
	return NULL;
}

static void *map_or_die(const char *what, size_t len, int prot, int flags, int fd)
{
	void *p = mmap(NULL, len, prot, flags, fd, 0);

	if (p == MAP_FAILED)
		die("mmap %s: %s", what, strerror(errno));
	return p;
}

int main(int argc, char **argv)
{
	const int rw_prot = PROT_READ | PROT_WRITE;
	char path[4096], why[512], sums[512];
	struct sigaction sa;
	uint64_t *page_buf;
	int shm_fd, checks = 0;
	pid_t child;
	char *g;

	if (argc != 3) {
		fprintf(stderr, "usage: mappings DIR SHMNAME\n");
		return 2;
	}
	say("PID PARENT %d", getpid());
	/* Keep malloc off the program break once the heap region is set up. */
	mallopt(M_MMAP_THRESHOLD, 64 * 1024);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_segv;
	sa.sa_flags = SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);

	anon = map_or_die("anon", anon_sz, rw_prot, MAP_SHARED | MAP_ANONYMOUS, -1);
	fill(anon, anon_sz, R_ANON, 1);

	memfd_fd = memfd_create("kup-test-memfd", 0);
	if (memfd_fd < 0 || ftruncate(memfd_fd, memfd_sz))
		die("memfd: %s", strerror(errno));
	memfd_map = map_or_die("memfd", memfd_sz, rw_prot, MAP_SHARED, memfd_fd);
	fill(memfd_map, memfd_sz, R_MEMFD, 1);

	shm_fd = shm_open(argv[2], O_CREAT | O_EXCL | O_RDWR, 0600);
	if (shm_fd < 0 || ftruncate(shm_fd, shm_sz))
		die("shm_open %s: %s", argv[2], strerror(errno));
	shm_map = map_or_die("shm", shm_sz, rw_prot, MAP_SHARED, shm_fd);
	close(shm_fd);
	fill(shm_map, shm_sz, R_SHM, 1);

	snprintf(path, sizeof(path), "%s/private.dat", argv[1]);
	file_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (file_fd < 0)
		die("open %s: %s", path, strerror(errno));
	page_buf = malloc(PAGE);
	for (size_t p = 0; p < file_sz / PAGE; p++) {
		for (size_t w = 0; w < WPP; w++)
			page_buf[w] = word_of(R_FILE, p, w);
		if (write(file_fd, page_buf, PAGE) != (ssize_t)PAGE)
			die("write %s: %s", path, strerror(errno));
	}
	free(page_buf);
	file_map = map_or_die("file", file_sz, rw_prot, MAP_PRIVATE, file_fd);
	for (size_t p = 0; p < file_sz / PAGE; p++)
		if (file_page_dirty(p))
			for (size_t w = 0; w < WPP; w++)
				file_map[p * WPP + w] = word_of(R_FILE_DIRTY, p, w);

	heap = sbrk(heap_sz);
	if (heap == (void *)-1)
		die("sbrk %zu: %s", heap_sz, strerror(errno));
	brk_end = sbrk(0);
	fill(heap, heap_sz, R_HEAP, 0);

	/* Reserve 2 MiB, then make the lower half an inaccessible guard. */
	g = map_or_die("guard", 2 * guard_sz, rw_prot, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	if (mprotect(g, guard_sz, PROT_NONE))
		die("mprotect guard: %s", strerror(errno));
	guard = (uint64_t *)g;
	rw = (uint64_t *)(g + guard_sz);
	fill(rw, guard_sz, R_RW, 0);

	child = fork();
	if (child < 0)
		die("fork: %s", strerror(errno));
	if (child == 0)
		run_child(getppid(), argv[2]);

	if (check_all(why, sizeof(why), sums, sizeof(sums)))
		die("right after setup: %s", why);
	say("READY");

	for (;;) {
		int st;

		pause();
		if (waitpid(child, &st, WNOHANG) == child)
			die("child %d ended with status %#x", child, st);
		if (!check_requested)
			continue;
		check_requested = 0;
		checks++;
		if (check_all(why, sizeof(why), sums, sizeof(sums)))
			say("CHECK %d FAIL %s", checks, why);
		else
			say("CHECK %d OK %s", checks, sums);
	}
}
