// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Signals of the commands that drive a tree (dump, restore, switch).
 *
 * SIGINT, SIGTERM and SIGHUP ask the engine to abort (ckpt_request_abort):
 * it stops at its next safe point and undoes what it did.  A signal that was
 * ignored when kup started (nohup, a background job of a script) stays
 * ignored, except SIGTERM.  SIGPIPE is ignored: a closed stderr must not
 * kill kup half-way.
 *
 * kup dump and kup switch do the work in a worker process, a child of the
 * command: the command only waits for it, forwards those signals to it and
 * exits with its status.  The worker is in a process group of its own, so
 * that a signal sent to the command's group (a terminal's Ctrl-C, `timeout
 * -s KILL`) reaches the command alone, and it gets SIGTERM when the command
 * dies (PR_SET_PDEATHSIG): a command killed with SIGKILL aborts the work
 * cleanly too.  Killing the worker itself with SIGKILL is the one way left
 * to stop a dump half-way (see kup(8), SIGNALS).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ckpt.h"
#include "kup.h"

static const int abort_sigs[] = { SIGINT, SIGTERM, SIGHUP };
#define NR_ABORT_SIGS (sizeof(abort_sigs) / sizeof(abort_sigs[0]))

static bool ignored_at_start[NR_ABORT_SIGS];
static bool start_known;
static pid_t command_pid;		/* in the worker: the command's pid */
static volatile sig_atomic_t worker_pid;	/* in the command */

const char *kup_signame(int sig)
{
	static char buf[16];

	switch (sig) {
	case SIGINT: return "SIGINT";
	case SIGTERM: return "SIGTERM";
	case SIGHUP: return "SIGHUP";
	case SIGKILL: return "SIGKILL";
	case SIGQUIT: return "SIGQUIT";
	}
	snprintf(buf, sizeof(buf), "signal %d", sig);
	return buf;
}

/* Which of the abort signals were ignored when kup started (once). */
static void note_start(void)
{
	struct sigaction old;

	if (start_known)
		return;
	start_known = true;
	for (size_t i = 0; i < NR_ABORT_SIGS; i++)
		ignored_at_start[i] = abort_sigs[i] != SIGTERM &&
				      !sigaction(abort_sigs[i], NULL, &old) && old.sa_handler == SIG_IGN;
}

static void on_abort(int sig)
{
	ckpt_request_abort(sig);
}

static void set_handlers(void (*fn)(int))
{
	struct sigaction sa;

	note_start();
	memset(&sa, 0, sizeof(sa));
	sigfillset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	for (size_t i = 0; i < NR_ABORT_SIGS; i++) {
		sa.sa_handler = ignored_at_start[i] ? SIG_IGN : fn;
		sigaction(abort_sigs[i], &sa, NULL);
	}
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

void kup_catch_abort(void)
{
	set_handlers(on_abort);
}

void kup_release_abort(void)
{
	struct sigaction sa;

	note_start();
	memset(&sa, 0, sizeof(sa));
	for (size_t i = 0; i < NR_ABORT_SIGS; i++) {
		sa.sa_handler = ignored_at_start[i] ? SIG_IGN : SIG_DFL;
		sigaction(abort_sigs[i], &sa, NULL);
	}
}

bool kup_command_died(void)
{
	return command_pid && getppid() != command_pid;
}

static void forward(int sig)
{
	int e = errno;

	if (worker_pid > 0)
		kill(worker_pid, sig);
	errno = e;
}

int kup_start_worker(void)
{
	sigset_t block, old;
	pid_t parent = getpid(), pid;
	int status;

	sigemptyset(&block);
	for (size_t i = 0; i < NR_ABORT_SIGS; i++)
		sigaddset(&block, abort_sigs[i]);
	sigprocmask(SIG_BLOCK, &block, &old);
	set_handlers(forward);
	pid = fork();
	if (pid < 0) {
		log_errno(errno, "cannot start the worker process");
		exit(KUP_EXIT_FAIL);
	}
	if (pid == 0) {
		struct sigaction sa;

		/* the worker: out of the command's process group, aborts on
		 * the command's death */
		setpgid(0, 0);
		kup_catch_abort();
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_IGN;
		/* a background group: writes to a TOSTOP terminal, stops */
		sigaction(SIGTTOU, &sa, NULL);
		sigaction(SIGTTIN, &sa, NULL);
		sigaction(SIGTSTP, &sa, NULL);
		command_pid = parent;
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			ckpt_request_abort(SIGTERM);	/* it died before we got here */
		sigprocmask(SIG_SETMASK, &old, NULL);
		return 0;
	}
	worker_pid = pid;
	setpgid(pid, pid);	/* either side may do it first */
	sigprocmask(SIG_SETMASK, &old, NULL);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			log_errno(errno, "cannot wait for the worker process %d", pid);
			exit(KUP_EXIT_FAIL);
		}
	if (WIFEXITED(status))
		exit(WEXITSTATUS(status));
	log_err("the worker process %d was killed by %s: the work was cut short and "
		"what it drove may be left stopped", pid, kup_signame(WTERMSIG(status)));
	exit(KUP_EXIT_FAIL);
}
