/*
 * membar: a process whose mm is registered for membarrier(2) expedited
 * barriers (global, private, private sync-core, private rseq where the
 * kernel has them), with a counting thread, and a child that registered
 * nothing.
 *
 * Lines: "PID C <pid>" (the child), "REG <mask>" (the REGISTER_* commands
 * that succeeded), "READY", then "C <n>" every 100 ms from the thread.
 * SIGUSR1: each process answers "CHECK <k> OK|FAIL <who> <detail>": the
 * parent runs each private command it registered for (they fail with EPERM
 * unless registered) and compares MEMBARRIER_CMD_GET_REGISTRATIONS (Linux
 * 6.3+) with REG; the child checks that private expedited barriers are
 * refused to it.
 */
#include <linux/membarrier.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "say.h"

#ifndef MEMBARRIER_CMD_GET_REGISTRATIONS
#define MEMBARRIER_CMD_GET_REGISTRATIONS (1 << 9)
#endif

static volatile sig_atomic_t check_requested;
static void on_usr1(int sig) { check_requested = 1; }

static long mb(int cmd) { return syscall(SYS_membarrier, cmd, 0, 0); }

static void *counter(void *arg)
{
	for (unsigned long n = 0;; n++) {
		say("C %lu", n);
		sleep_ms(100);
	}
	return NULL;
}

static const struct { int reg, run; } cmds[] = {
	{ MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0 },
	{ MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, MEMBARRIER_CMD_PRIVATE_EXPEDITED },
	{ MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE,
	  MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE },
	{ MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ },
};

int main(void)
{
	unsigned int mask = 0;
	sigset_t usr1;
	pthread_t th;
	pid_t child;
	int k = 0;

	signal(SIGUSR1, on_usr1);
	child = fork();
	if (child < 0)
		die("fork: %s", strerror(errno));
	if (child == 0) {
		for (;;) {
			pause();
			if (!check_requested)
				continue;
			check_requested = 0;
			errno = 0;
			if (mb(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == -1 && errno == EPERM)
				say("CHECK %d OK child unregistered", ++k);
			else
				say("CHECK %d FAIL child private expedited: %s", ++k, strerror(errno));
		}
	}
	say("PID C %d", child);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (mb(cmds[i].reg) == 0)
			mask |= cmds[i].reg;
	if (!(mask & MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED))
		die("cannot register for private expedited barriers: %s", strerror(errno));
	say("REG 0x%x", mask);
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);	/* the thread never takes it */
	if (pthread_create(&th, NULL, counter, NULL))
		die("pthread_create");
	pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
	say("READY");
	for (;;) {
		long got;
		char why[128] = "";

		pause();
		if (!check_requested)
			continue;
		check_requested = 0;
		for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
			if ((mask & cmds[i].reg) && cmds[i].run && mb(cmds[i].run))
				snprintf(why, sizeof(why), "command 0x%x: %s", cmds[i].run,
					 strerror(errno));
		got = mb(MEMBARRIER_CMD_GET_REGISTRATIONS);
		if (!why[0] && got >= 0 && (unsigned long)got != mask)
			snprintf(why, sizeof(why), "registrations 0x%lx, not 0x%x", got, mask);
		say("CHECK %d %s parent %s", ++k, why[0] ? "FAIL" : "OK", why[0] ? why : "registered");
	}
}
