/*
 * vforkwait: a parent that cannot stop for ptrace.  It vforks; the child
 * (sharing its memory) counts until a file appears, then _exits.  Until then
 * the parent sleeps in the kernel's vfork wait, a killable but not
 * interruptible sleep: PTRACE_INTERRUPT does not stop it.
 *
 * Usage: vforkwait GOFILE
 *
 * Protocol: the tests/progs one (single-write lines).
 * Lines of this program:
 *   "CHILD <pid>"                the vfork child runs
 *   "C <n> <pid> <realtime_ms>"  from the child, n = 0, 1, 2, ...
 *   "RESUMED <pid>"              the parent runs again (the child exited)
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "say.h"

int main(int argc, char **argv)
{
	pid_t parent = getpid();
	long r;

	if (argc != 2) {
		fprintf(stderr, "usage: vforkwait GOFILE\n");
		return 2;
	}
	r = syscall(SYS_vfork);
	if (r < 0)
		die("vfork: %s", strerror(errno));
	if (r == 0) {
		pid_t me = syscall(SYS_getpid);

		say("CHILD %d", me);
		for (unsigned long n = 0; access(argv[1], F_OK); n++) {
			say("C %lu %d %llu", n, me, (unsigned long long)now_ms());
			sleep_ms(100);
		}
		syscall(SYS_exit, 0);
	}
	say("RESUMED %d", parent);
	for (;;)
		sleep_ms(1000);
}
