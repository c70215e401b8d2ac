// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The per-process state table (ckpt-core/task-state.c): every module has a
 * dump half and a restore half, the restore runs them in the order the
 * kernel needs, and the halves a task runs on itself (the stub phase) set
 * what the image says.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "task-state.h"

static void test_every_module_has_both_halves(void **state)
{
	size_t n = 0;

	for (const struct task_state_ops *const *s = task_states; *s; s++, n++) {
		bool restores = false;

		assert_non_null((*s)->name);
		assert_true((*s)->dump || (*s)->dump_thread);
		for (int ph = 0; ph < TS_NR_PHASES; ph++)
			if (ph != TS_RUNNING && (*s)->restore[ph])
				restores = true;
		assert_true(restores);
		for (const struct task_state_ops *const *t = task_states; t != s; t++)
			assert_string_not_equal((*t)->name, (*s)->name);
	}
	assert_true(n >= 7);
}

/*
 * The order of the restore, phase by phase: a reordered table or a half
 * moved to another phase shows here (the reasons are in task-state.c).
 */
static void test_restore_order(void **state)
{
	static const char *const want =
		"0:attributes 0:signal actions "
		"1:pending signals "
		"2:attributes 2:timers 2:pending signals 2:resource limits "
		"3:credentials 3:seccomp "
		"4:credentials "
		"5:attributes "
		"6:attributes "
		"7:attributes "
		"8:pending signals ";
	char got[1024] = "";

	for (int ph = 0; ph < TS_NR_PHASES; ph++)
		for (const struct task_state_ops *const *s = task_states; *s; s++)
			if ((*s)->restore[ph]) {
				char one[64];

				snprintf(one, sizeof(one), "%d:%s ", ph, (*s)->name);
				strcat(got, one);
			}
	assert_string_equal(got, want);
}

static void on_usr1(int sig)
{
}

/* In a child, as a stub would: the umask, personality, name and signal
 * action of the image are what the task has afterwards. */
static void test_stub_phase_applies_the_image(void **state)
{
	SigactionEntry sa = SIGACTION_ENTRY__INIT, *sas[1] = { &sa };
	ThreadCore tc = THREAD_CORE__INIT, *tcs[1] = { &tc };
	CoreEntry core = CORE_ENTRY__INIT;
	struct task_rst tr = { .core = &core };
	int status;
	pid_t pid;

	core.umask = 027;
	core.personality = ADDR_NO_RANDOMIZE;
	core.n_threads = 1;
	core.threads = tcs;
	tc.comm = "stubbed";
	core.n_sigactions = 1;
	core.sigactions = sas;
	sa.sig = SIGUSR1;
	sa.handler = (uint64_t)on_usr1;
	sa.flags = SA_RESTART | 0x04000000 /* SA_RESTORER */;
	sa.restorer = 0;
	sa.mask = 1ULL << (SIGUSR2 - 1);
	{
		FILE *f = fopen("/proc/self/oom_score_adj", "r");
		int v = 0;

		if (f && fscanf(f, "%d", &v) == 1)
			core.oom_score_adj = v;	/* ours: no privilege needed */
		if (f)
			fclose(f);
	}

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sigaction now;
		char name[16] = "";

		tr.pid = getpid();
		if (task_states_restore(&tr, TS_STUB))
			_exit(1);
		if (umask(0) != 027)
			_exit(2);
		if (personality(0xffffffff) != ADDR_NO_RANDOMIZE)
			_exit(3);
		prctl(PR_GET_NAME, name);
		if (strcmp(name, "stubbed"))
			_exit(4);
		if (sigaction(SIGUSR1, NULL, &now) || now.sa_handler != on_usr1 ||
		    !(now.sa_flags & SA_RESTART) || !sigismember(&now.sa_mask, SIGUSR2))
			_exit(5);
		/* the rest is back to the default */
		if (sigaction(SIGUSR2, NULL, &now) || now.sa_handler != SIG_DFL)
			_exit(6);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_module_has_both_halves),
		cmocka_unit_test(test_restore_order),
		cmocka_unit_test(test_stub_phase_applies_the_image),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
