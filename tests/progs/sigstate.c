/*
 * sigstate: signal and timer state that a checkpoint must carry over.
 *
 * Usage: sigstate
 *
 * Set up at start, and checked on every SIGUSR1:
 *   - handlers: SIGUSR2 (SA_SIGINFO | SA_ONSTACK | SA_RESTART, sa_mask {SIGHUP}),
 *     SIGALRM and SIGRTMIN (SA_RESTART), SIGRTMIN+1 (SA_SIGINFO), SIGWINCH,
 *     SIGRTMIN+3, SIGUSR1 and SIGTERM (no SA_RESTART), SIGTRAP (SA_SIGINFO);
 *     SIGPIPE ignored.  sigaction() must return exactly what was installed,
 *     and a raised SIGTRAP must run its handler (a checkpointer that traps
 *     into the process while its signals are blocked resets it to SIG_DFL).
 *   - an alternate signal stack (sigaltstack), same address and size;
 *     SIGUSR2 must run on it.
 *   - blocked SIGRTMIN+1, SIGWINCH and SIGALRM, all pending: SIGRTMIN+1
 *     queued twice to the process (sigqueue, values 4242 then 4343, ShdPnd),
 *     SIGWINCH to the main thread (tgkill, SigPnd), SIGALRM from the timer.
 *   - ITIMER_REAL every 10 ms.  SIGALRM is blocked, so after its first expiry
 *     the timer waits for its signal to be taken before it re-arms: getitimer
 *     says it_value 0, and only it_interval (10 ms) tells that the timer is
 *     periodic.  (A running periodic timer is caught in this state whenever
 *     it expires while its process is frozen.)  ITIMER_VIRTUAL one-shot
 *     1000 s (never reached: the process hardly uses CPU), POSIX timer A on
 *     CLOCK_MONOTONIC every 150 ms (SIGRTMIN, sival 777), POSIX timer B on
 *     CLOCK_REALTIME one-shot in 3600 s (SIGRTMIN+3, must not fire).
 *     Intervals must be unchanged, remaining times in range, the periodic
 *     handlers must keep firing between two checks (so ask at most every
 *     200 ms), and timer B must still
 *     expire 3600 s after start (within 3 s).
 *   - the main loop blocks in read() on a pipe nobody writes: only SIGUSR1 and
 *     SIGTERM may interrupt it (EINTR); a return caused by the SA_RESTART
 *     handlers or by a checkpoint is an error.
 *
 * SIGTERM is the final check: unblock SIGRTMIN+1, SIGWINCH and SIGALRM; the
 * two queued SIGRTMIN+1 must arrive in order with their values and SI_QUEUE,
 * SIGWINCH once, SIGALRM at once and then every 10 ms (at least 5 times in
 * 200 ms).  Prints "FINAL OK ..." and exits 0, or "FINAL FAIL ..." and exits 1.
 *
 * Protocol (shared by the tests/progs programs): every line is one write(2)
 * to stdout; SIGUSR1 asks for "CHECK <k> OK <details>" / "CHECK <k> FAIL <why>";
 * a broken invariant prints "ERROR <why>" and exits 1.
 *
 * Lines: "PID <pid>", "READY", "CHECK <k> OK rt=<n> usr2=<n>
 * usr2_from=<pid> usr2_onstack=<n> itimer_real_us=<n> itimer_virt_s=<n>
 * timerA_us=<n> timerB_s=<n>", "FINAL OK|FAIL ...".
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char altstack[64 * 1024];

static volatile sig_atomic_t check_requested, final_requested;
static volatile sig_atomic_t alrm_count, rt_count, rt_bad_info, rt3_count;
static volatile sig_atomic_t usr2_count, usr2_onstack, usr2_hup_blocked, usr2_from;
static volatile sig_atomic_t winch_count, rt1_count, rt1_bad_code, trap_count;
static volatile int rt1_values[4];

#include "say.h"


static void on_usr1(int sig) { check_requested = 1; }
static void on_term(int sig) { final_requested = 1; }
static void on_alrm(int sig) { alrm_count++; }
static void on_winch(int sig) { winch_count++; }
static void on_rt3(int sig) { rt3_count++; }
static void on_trap(int sig, siginfo_t *si, void *uc) { trap_count++; }

static void on_rt(int sig, siginfo_t *si, void *uc)
{
	rt_count++;
	if (si->si_code != SI_TIMER || si->si_value.sival_int != 777)
		rt_bad_info++;
}

static void on_rt1(int sig, siginfo_t *si, void *uc)
{
	if (rt1_count < 4)
		rt1_values[rt1_count] = si->si_value.sival_int;
	rt1_count++;
	if (si->si_code != SI_QUEUE || si->si_pid != getpid())
		rt1_bad_code++;
}

static void on_usr2(int sig, siginfo_t *si, void *uc)
{
	char here;
	sigset_t cur;

	usr2_count++;
	usr2_from = si->si_pid;
	if (&here >= altstack && &here < altstack + sizeof(altstack))
		usr2_onstack++;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	if (sigismember(&cur, SIGHUP))
		usr2_hup_blocked++;
}

struct handler {
	int sig;
	void *fn;
	int flags;
	int mask_sig;			/* one signal in sa_mask, or 0 */
	struct sigaction installed;	/* as the kernel reported it back */
};

static struct handler handlers[] = {
	{ SIGUSR1, on_usr1, 0, 0 },
	{ SIGTERM, on_term, 0, 0 },
	{ SIGUSR2, on_usr2, SA_SIGINFO | SA_ONSTACK | SA_RESTART, SIGHUP },
	{ SIGALRM, on_alrm, SA_RESTART, 0 },
	{ 0 /* SIGRTMIN */, on_rt, SA_SIGINFO | SA_RESTART, 0 },
	{ 0 /* SIGRTMIN+1 */, on_rt1, SA_SIGINFO, 0 },
	{ 0 /* SIGRTMIN+3 */, on_rt3, SA_RESTART, 0 },
	{ SIGWINCH, on_winch, SA_RESTART, 0 },
	{ SIGTRAP, on_trap, SA_SIGINFO, 0 },
	{ SIGPIPE, SIG_IGN, 0, 0 },
};
#define NHANDLERS (sizeof(handlers) / sizeof(handlers[0]))

static int same_action(const struct sigaction *a, const struct sigaction *b)
{
	if (a->sa_handler != b->sa_handler || a->sa_flags != b->sa_flags)
		return 0;
	for (int s = 1; s < NSIG; s++)
		if (sigismember(&a->sa_mask, s) != sigismember(&b->sa_mask, s))
			return 0;
	return 1;
}

static void install_handlers(void)
{
	handlers[4].sig = SIGRTMIN;
	handlers[5].sig = SIGRTMIN + 1;
	handlers[6].sig = SIGRTMIN + 3;
	for (size_t i = 0; i < NHANDLERS; i++) {
		struct handler *h = &handlers[i];
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = h->fn;
		sa.sa_flags = h->flags;
		sigemptyset(&sa.sa_mask);
		if (h->mask_sig)
			sigaddset(&sa.sa_mask, h->mask_sig);
		if (sigaction(h->sig, &sa, NULL) || sigaction(h->sig, NULL, &h->installed))
			die("sigaction %d: %s", h->sig, strerror(errno));
	}
}

static long long tv_us(struct timeval tv)
{
	return tv.tv_sec * 1000000ll + tv.tv_usec;
}

static long long ts_us(struct timespec ts)
{
	return ts.tv_sec * 1000000ll + ts.tv_nsec / 1000;
}

static long long now_us(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts_us(ts);
}

/* Hex mask of a "SigPnd:"-style line of /proc/self/status, or 0. */
static unsigned long long status_mask(const char *key)
{
	unsigned long long v = 0;
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			v = strtoull(line + strlen(key), NULL, 16);
	fclose(f);
	return v;
}

static unsigned long long bit(int sig)
{
	return 1ull << (sig - 1);
}

static timer_t timer_a, timer_b;
static long long start_real_us;

/* Everything the header promises; returns NULL or what is wrong. */
static const char *check_state(char *why, size_t len, char *details, size_t dlen)
{
	static int last_rt = -1;
	struct itimerspec its;
	struct itimerval itv;
	long long real_us, virt_us, a_us, b_us, b_expect;
	sigset_t cur;
	stack_t ss;

	for (size_t i = 0; i < NHANDLERS; i++) {
		struct sigaction sa;

		if (sigaction(handlers[i].sig, NULL, &sa))
			return snprintf(why, len, "sigaction %d: %s", handlers[i].sig, strerror(errno)), why;
		if (!same_action(&sa, &handlers[i].installed))
			return snprintf(why, len, "signal %d: handler %p flags %#x, installed %p flags %#x",
					handlers[i].sig, (void *)sa.sa_handler, sa.sa_flags,
					(void *)handlers[i].installed.sa_handler,
					handlers[i].installed.sa_flags), why;
	}

	{
		int traps = trap_count;

		raise(SIGTRAP);
		if (trap_count != traps + 1)
			return snprintf(why, len, "SIGTRAP raised, its handler ran %d times",
					trap_count - traps), why;
	}

	if (sigaltstack(NULL, &ss))
		return snprintf(why, len, "sigaltstack: %s", strerror(errno)), why;
	if (ss.ss_sp != altstack || ss.ss_size != sizeof(altstack) || ss.ss_flags)
		return snprintf(why, len, "altstack is %p size %zu flags %#x, want %p size %zu flags 0",
				ss.ss_sp, ss.ss_size, ss.ss_flags, (void *)altstack, sizeof(altstack)), why;

	sigprocmask(SIG_BLOCK, NULL, &cur);
	for (int s = 1; s < NSIG; s++) {
		int want = s == SIGRTMIN + 1 || s == SIGWINCH || s == SIGALRM;

		if (sigismember(&cur, s) != want)
			return snprintf(why, len, "signal %d is %sblocked", s, want ? "not " : ""), why;
	}
	if ((status_mask("ShdPnd:") & (bit(SIGRTMIN + 1) | bit(SIGALRM))) !=
	    (bit(SIGRTMIN + 1) | bit(SIGALRM)))
		return snprintf(why, len, "SIGRTMIN+1 or SIGALRM no longer pending for the process (ShdPnd %llx)",
				status_mask("ShdPnd:")), why;
	if (!(status_mask("SigPnd:") & bit(SIGWINCH)))
		return snprintf(why, len, "SIGWINCH no longer pending for the thread (SigPnd %llx)",
				status_mask("SigPnd:")), why;
	if (rt1_count || winch_count || alrm_count)
		return snprintf(why, len, "blocked signals were delivered: rt1=%d winch=%d alrm=%d",
				rt1_count, winch_count, alrm_count), why;

	if (rt_count <= last_rt)
		return snprintf(why, len, "timer A stopped firing: rt %d (last check %d)",
				rt_count, last_rt), why;
	last_rt = rt_count;
	if (rt_bad_info)
		return snprintf(why, len, "%d timer signals had a wrong si_code/si_value", rt_bad_info), why;
	if (rt3_count)
		return snprintf(why, len, "one-shot timer B fired early"), why;

	/* Expired, its signal blocked: value 0 (or a tick left, at most 10 ms). */
	if (getitimer(ITIMER_REAL, &itv))
		return snprintf(why, len, "getitimer REAL: %s", strerror(errno)), why;
	real_us = tv_us(itv.it_value);
	if (tv_us(itv.it_interval) != 10000 || real_us < 0 || real_us > 10000)
		return snprintf(why, len, "ITIMER_REAL interval %lld us value %lld us, want 10000 and [0,10000]",
				tv_us(itv.it_interval), real_us), why;
	if (getitimer(ITIMER_VIRTUAL, &itv))
		return snprintf(why, len, "getitimer VIRTUAL: %s", strerror(errno)), why;
	virt_us = tv_us(itv.it_value);
	/* setitimer() rounds a CPU-time timer up by one tick (<= 10 ms at HZ=100),
	 * so a re-armed timer may read up to one tick above what was left. */
	if (tv_us(itv.it_interval) != 0 || virt_us <= 940000000ll || virt_us > 1000010000ll)
		return snprintf(why, len, "ITIMER_VIRTUAL interval %lld us value %lld us, want 0 and (940 s, 1000.01 s]",
				tv_us(itv.it_interval), virt_us), why;

	if (timer_gettime(timer_a, &its))
		return snprintf(why, len, "timer_gettime A: %s", strerror(errno)), why;
	/* An expired timer whose signal is pending reads 1 ns: count in ns. */
	a_us = ts_us(its.it_value);
	if (ts_us(its.it_interval) != 150000 || (!its.it_value.tv_sec && !its.it_value.tv_nsec) ||
	    a_us > 150000)
		return snprintf(why, len, "timer A interval %lld us value %lld ns, want 150000 us and (0,150000] us",
				ts_us(its.it_interval),
				its.it_value.tv_sec * 1000000000ll + its.it_value.tv_nsec), why;
	if (timer_gettime(timer_b, &its))
		return snprintf(why, len, "timer_gettime B: %s", strerror(errno)), why;
	b_us = ts_us(its.it_value);
	b_expect = 3600000000ll - (now_us(CLOCK_REALTIME) - start_real_us);
	if (ts_us(its.it_interval) != 0 || b_us <= 0 || llabs(b_us - b_expect) > 3000000)
		return snprintf(why, len, "timer B interval %lld us value %lld us, want 0 and %lld us",
				ts_us(its.it_interval), b_us, b_expect), why;

	if (usr2_count && (usr2_onstack != usr2_count || usr2_hup_blocked != usr2_count))
		return snprintf(why, len, "SIGUSR2 ran %d times, %d on the altstack, %d with SIGHUP blocked",
				usr2_count, usr2_onstack, usr2_hup_blocked), why;

	snprintf(details, dlen,
		 "rt=%d usr2=%d usr2_from=%d usr2_onstack=%d itimer_real_us=%lld itimer_virt_s=%lld timerA_us=%lld timerB_s=%lld",
		 rt_count, usr2_count, usr2_from, usr2_onstack, real_us,
		 virt_us / 1000000, a_us, b_us / 1000000);
	return NULL;
}

static void final_check(void)
{
	sigset_t unblock;

	sigemptyset(&unblock);
	sigaddset(&unblock, SIGRTMIN + 1);
	sigaddset(&unblock, SIGWINCH);
	sigaddset(&unblock, SIGALRM);
	/* Pending unblocked signals are delivered before this returns. */
	sigprocmask(SIG_UNBLOCK, &unblock, NULL);
	int alrm_now = alrm_count;
	/* Taking SIGALRM re-armed the 10 ms timer: it must keep firing. */
	for (int i = 0; i < 20 && alrm_count < 6; i++) {
		struct timespec ts = { 0, 10 * 1000000L };

		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
	}

	if (rt1_count == 2 && rt1_values[0] == 4242 && rt1_values[1] == 4343 &&
	    !rt1_bad_code && winch_count == 1 && alrm_now == 1 && alrm_count >= 6) {
		say("FINAL OK rt1=%d,%d winch=%d alrm=%d", rt1_values[0], rt1_values[1],
		    winch_count, alrm_count);
		exit(0);
	}
	say("FINAL FAIL rt1 delivered %d times (values %d,%d, %d with wrong si_code/si_pid), "
	    "winch %d times, alrm %d times at unblock and %d times within 200 ms (want 1 and >= 6)",
	    rt1_count, rt1_values[0], rt1_values[1], rt1_bad_code, winch_count, alrm_now, alrm_count);
	exit(1);
}

int main(void)
{
	struct itimerval itv = { { 0, 10000 }, { 0, 10000 } };
	struct itimerval vtv = { { 0, 0 }, { 1000, 0 } };
	struct itimerspec ta = { { 0, 150000000 }, { 0, 150000000 } };
	struct itimerspec tb = { { 0, 0 }, { 3600, 0 } };
	struct sigevent sev;
	union sigval v;
	sigset_t block;
	stack_t ss;
	int p[2], checks = 0;

	say("PID %d", getpid());
	ss.ss_sp = altstack;
	ss.ss_size = sizeof(altstack);
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL))
		die("sigaltstack: %s", strerror(errno));
	install_handlers();

	sigemptyset(&block);
	sigaddset(&block, SIGRTMIN + 1);
	sigaddset(&block, SIGWINCH);
	sigaddset(&block, SIGALRM);
	sigprocmask(SIG_BLOCK, &block, NULL);
	v.sival_int = 4242;
	if (sigqueue(getpid(), SIGRTMIN + 1, v))
		die("sigqueue: %s", strerror(errno));
	v.sival_int = 4343;
	if (sigqueue(getpid(), SIGRTMIN + 1, v))
		die("sigqueue: %s", strerror(errno));
	if (syscall(SYS_tgkill, getpid(), gettid(), SIGWINCH))
		die("tgkill: %s", strerror(errno));

	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGRTMIN;
	sev.sigev_value.sival_int = 777;
	if (timer_create(CLOCK_MONOTONIC, &sev, &timer_a))
		die("timer_create A: %s", strerror(errno));
	sev.sigev_signo = SIGRTMIN + 3;
	sev.sigev_value.sival_int = 3;
	if (timer_create(CLOCK_REALTIME, &sev, &timer_b))
		die("timer_create B: %s", strerror(errno));
	start_real_us = now_us(CLOCK_REALTIME);
	if (timer_settime(timer_b, 0, &tb, NULL) || timer_settime(timer_a, 0, &ta, NULL))
		die("timer_settime: %s", strerror(errno));
	if (setitimer(ITIMER_VIRTUAL, &vtv, NULL) || setitimer(ITIMER_REAL, &itv, NULL))
		die("setitimer: %s", strerror(errno));

	if (pipe(p))
		die("pipe: %s", strerror(errno));
	for (int i = 0;; i++) {		/* the first expiry: SIGALRM pending */
		sigset_t pend;

		sigpending(&pend);
		if (sigismember(&pend, SIGALRM))
			break;
		if (i > 1000)
			die("SIGALRM did not become pending within 1 s");
		usleep(1000);
	}
	say("READY");

	for (;;) {
		char c;
		ssize_t n = read(p[0], &c, 1);

		if (n >= 0)
			die("read on an idle pipe returned %zd", n);
		if (errno != EINTR)
			die("read: %s", strerror(errno));
		if (!check_requested && !final_requested)
			die("read() failed with EINTR though only SA_RESTART handlers ran (alrm=%d rt=%d usr2=%d)",
			    alrm_count, rt_count, usr2_count);
		if (final_requested)
			final_check();
		if (check_requested) {
			char why[512], details[512];

			check_requested = 0;
			checks++;
			if (check_state(why, sizeof(why), details, sizeof(details)))
				say("CHECK %d FAIL %s", checks, why);
			else
				say("CHECK %d OK %s", checks, details);
		}
	}
}
