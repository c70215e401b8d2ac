/*
 * iouring: a process with an io_uring whose io worker thread is busy: an
 * IORING_OP_READ of a FIFO submitted with IOSQE_ASYNC, which an iou-wrk-*
 * thread performs, blocked in read(2) until something is written.  Raw
 * syscalls, no liburing.
 *
 * Usage: iouring [-c] FIFO
 *   opens FIFO read-write (so neither open blocks), submits the read, then
 *   counts and watches the completion queue.  -c: closes the ring's fd once
 *   the read is submitted (the ring lives on in its mappings).
 *
 * Protocol: the tests/progs one (single-write lines).
 * Lines of this program:
 *   "SUBMITTED fd=<ring fd>"    the read is queued (fd -1: closed, -c)
 *   "C <n> <pid> <realtime_ms>" n = 0, 1, 2, ... with no gap and no repeat
 *   "READ <res> <data>"         the read completed (res: bytes or -errno)
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "say.h"

int main(int argc, char **argv)
{
	struct io_uring_params p = { 0 };
	struct io_uring_sqe *sqes, *sqe;
	struct io_uring_cqe *cqes;
	unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
	static char buf[256];
	size_t sq_len, cq_len;
	unsigned long n = 0;
	uint8_t *sq, *cq;
	int ring, fifo;
	pid_t pid = getpid();
	bool done = false, close_ring = false;

	if (argc == 3 && !strcmp(argv[1], "-c")) {
		close_ring = true;
		argv++;
		argc--;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: iouring [-c] FIFO\n");
		return 2;
	}
	fifo = open(argv[1], O_RDWR);
	if (fifo < 0)
		die("cannot open %s: %s", argv[1], strerror(errno));
	ring = syscall(__NR_io_uring_setup, 4, &p);
	if (ring < 0)
		die("io_uring_setup: %s", strerror(errno));
	sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	sq = mmap(NULL, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring,
		  IORING_OFF_SQ_RING);
	cq = mmap(NULL, cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring,
		  IORING_OFF_CQ_RING);
	sqes = mmap(NULL, p.sq_entries * sizeof(*sqes), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED)
		die("cannot map the rings: %s", strerror(errno));
	sq_tail = (unsigned *)(sq + p.sq_off.tail);
	sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
	sq_array = (unsigned *)(sq + p.sq_off.array);
	cq_head = (unsigned *)(cq + p.cq_off.head);
	cq_tail = (unsigned *)(cq + p.cq_off.tail);
	cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
	cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);

	sqe = &sqes[*sq_tail & *sq_mask];
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_READ;
	sqe->flags = IOSQE_ASYNC;	/* to an io worker, which blocks in read() */
	sqe->fd = fifo;
	sqe->addr = (unsigned long)buf;
	sqe->len = sizeof(buf) - 1;
	sqe->off = (uint64_t)-1;
	sqe->user_data = 42;
	sq_array[*sq_tail & *sq_mask] = *sq_tail & *sq_mask;
	__atomic_store_n(sq_tail, *sq_tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, ring, 1, 0, 0, NULL, 0) != 1)
		die("io_uring_enter: %s", strerror(errno));
	if (close_ring && close(ring))
		die("cannot close the ring: %s", strerror(errno));
	say("SUBMITTED fd=%d", close_ring ? -1 : ring);

	for (;;) {
		say("C %lu %d %llu", n++, pid, (unsigned long long)now_ms());
		if (!done && __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE) != *cq_head) {
			struct io_uring_cqe *c = &cqes[*cq_head & *cq_mask];

			if (c->res > 0)
				buf[c->res] = 0;
			buf[strcspn(buf, "\n")] = 0;
			say("READ %d %s", c->res, c->res > 0 ? buf : "");
			__atomic_store_n(cq_head, *cq_head + 1, __ATOMIC_RELEASE);
			done = true;
		}
		sleep_ms(100);
	}
}
