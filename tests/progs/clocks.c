/*
 * clocks: reads the time through libc's vDSO entry points in a loop, so that
 * a restore on another kernel (another vDSO) is seen at once.
 *
 * Usage: clocks [-i INTERVAL_MS]     (default 100)
 *
 * Every tick: clock_gettime(CLOCK_REALTIME), gettimeofday(), time(),
 * clock_gettime(CLOCK_MONOTONIC) and clock_gettime(CLOCK_BOOTTIME).
 * Invariants: the three wall clocks agree within a second and give a
 * plausible date; the monotonic and boot clocks never go back, and the boot
 * clock is not behind the monotonic one.
 *
 * Lines:
 *   "T <n> <pid> <realtime_ms> <gettimeofday_ms> <time_s> <mono_ms> <boot_ms>"
 *   "CHECK <k> OK n=<n>"  on SIGUSR1
 *   "ERROR <why>"          broken invariant, exit 1
 */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "say.h"

static volatile sig_atomic_t check_requested;

static void on_usr1(int sig)
{
	check_requested = 1;
}

static int64_t ms(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts))
		die("clock_gettime(%d) failed", (int)id);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	long interval = 100;
	int64_t last_mono = -1, last_boot = -1;
	unsigned long long n = 0;
	unsigned checks = 0;
	struct sigaction sa;
	int opt;

	while ((opt = getopt(argc, argv, "i:")) != -1) {
		if (opt == 'i')
			interval = atol(optarg);
		else
			return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);

	for (;; n++) {
		struct timeval tv;
		struct timespec d = { interval / 1000, (interval % 1000) * 1000000L };
		int64_t rt = ms(CLOCK_REALTIME), gtod, mono, boot;
		time_t t = time(NULL);

		if (gettimeofday(&tv, NULL))
			die("gettimeofday failed");
		gtod = tv.tv_sec * 1000LL + tv.tv_usec / 1000;
		mono = ms(CLOCK_MONOTONIC);
		boot = ms(CLOCK_BOOTTIME);
		if (llabs(rt - gtod) > 1000)
			die("clock_gettime(REALTIME) %lld ms and gettimeofday %lld ms disagree",
			    (long long)rt, (long long)gtod);
		if (llabs(rt / 1000 - (int64_t)t) > 1)
			die("clock_gettime(REALTIME) %lld ms and time() %lld s disagree",
			    (long long)rt, (long long)t);
		if (rt < 1500000000000LL)
			die("the wall clock says %lld ms: not a plausible date", (long long)rt);
		if (mono < last_mono)
			die("CLOCK_MONOTONIC went back from %lld to %lld ms",
			    (long long)last_mono, (long long)mono);
		if (boot < last_boot)
			die("CLOCK_BOOTTIME went back from %lld to %lld ms",
			    (long long)last_boot, (long long)boot);
		if (boot < mono - 1000)
			die("CLOCK_BOOTTIME %lld ms is behind CLOCK_MONOTONIC %lld ms",
			    (long long)boot, (long long)mono);
		last_mono = mono;
		last_boot = boot;
		say("T %llu %d %lld %lld %lld %lld %lld", n, getpid(), (long long)rt,
		    (long long)gtod, (long long)t, (long long)mono, (long long)boot);
		if (check_requested) {
			check_requested = 0;
			say("CHECK %u OK n=%llu", ++checks, n);
		}
		nanosleep(&d, NULL);
	}
}
