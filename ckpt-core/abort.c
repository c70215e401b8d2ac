// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Abort requests: a signal handler of the driver calls ckpt_request_abort();
 * the engine polls ckpt_check_abort() at its safe points (between tasks,
 * between chunks of a memory copy) and takes its failure path, which never
 * polls: once started, the cleanup runs to its end whatever arrives.
 */
#include <signal.h>

#include "internal.h"

static volatile sig_atomic_t abort_sig;

void ckpt_request_abort(int sig)
{
	if (!abort_sig)
		abort_sig = sig > 0 ? sig : SIGTERM;
}

int ckpt_abort_signal(void)
{
	return abort_sig;
}

int ckpt_check_abort(void)
{
	static bool said;

	if (!abort_sig)
		return 0;
	if (!said) {
		said = true;
		log_debug("signal %d: aborting", (int)abort_sig);
	}
	return -ECANCELED;
}
