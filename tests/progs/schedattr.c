/*
 * schedattr: threads with their own scheduling policies and I/O priorities.
 *
 * Usage: schedattr
 *
 * The main thread runs SCHED_BATCH at nice 7 with I/O priority best-effort
 * level 6; thread A SCHED_IDLE with I/O class idle; thread B SCHED_FIFO
 * priority 10, reset-on-fork; thread C SCHED_RR priority 3 with I/O
 * priority real-time level 2; thread D SCHED_OTHER at nice -4.  Each
 * sets its own, prints "TID <name> <tid>" and then counts: "<name> <n>"
 * every 100 ms (the main thread as M).  "READY" once all are set.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SAY_LINE_MAX 256
#include "say.h"

struct attr {
	uint32_t size, policy;
	uint64_t flags;
	int32_t nice;
	uint32_t prio;
	uint64_t runtime, deadline, period;
};

struct spec {
	const char *name;
	uint32_t policy;
	uint64_t flags;
	int nice;
	uint32_t prio;
	int ioprio;	/* -1: leave */
};

static const struct spec specs[] = {
	{ "A", SCHED_IDLE, 0, 0, 0, 3 << 13 },
	{ "B", SCHED_FIFO, 1, 0, 10, -1 },
	{ "C", SCHED_RR, 0, 0, 3, (1 << 13) | 2 },
	{ "D", SCHED_OTHER, 0, -4, 0, -1 },
	{ "M", SCHED_BATCH, 0, 7, 0, (2 << 13) | 6 },
};
static volatile int ready;

static void apply(const struct spec *s)
{
	struct attr a = { .size = sizeof(a), .policy = s->policy, .flags = s->flags,
			  .nice = s->nice, .prio = s->prio };

	if (syscall(SYS_sched_setattr, 0, &a, 0))
		die("%s: sched_setattr: %s", s->name, strerror(errno));
	if (s->ioprio >= 0 && syscall(SYS_ioprio_set, 1, 0, s->ioprio))
		die("%s: ioprio_set: %s", s->name, strerror(errno));
	say("TID %s %ld", s->name, (long)syscall(SYS_gettid));
	__sync_fetch_and_add(&ready, 1);
}

static void count(const char *name)
{
	for (unsigned long n = 0;; n++) {
		say("%s %lu", name, n);
		sleep_ms(100);
	}
}

static void *run(void *arg)
{
	const struct spec *s = arg;

	apply(s);
	count(s->name);
	return NULL;
}

int main(void)
{
	pthread_t t;

	for (int i = 0; i < 4; i++)
		if (pthread_create(&t, NULL, run, (void *)&specs[i]))
			die("pthread_create failed");
	apply(&specs[4]);
	while (ready < 5)
		sleep_ms(10);
	say("READY");
	count("M");
}
