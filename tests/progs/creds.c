/*
 * creds: a process whose credentials and per-process settings differ from
 * its parent's in every way a checkpoint must preserve.
 *
 * Usage: creds DIR        (run as root; DIR becomes the working directory)
 *
 * At start, as root, it sets: working directory DIR; comm "kup-creds"
 * (PR_SET_NAME); oom_score_adj 345; RLIMIT_NOFILE soft 777 (hard unchanged);
 * personality ADDR_NO_RANDOMIZE; umask 027; supplementary groups
 * 100,4242,65534; real/effective/saved/fs gid and uid 65534 (which also drops
 * every capability); no_new_privs.  Then it records all of these as read
 * back from the kernel and sleeps.
 *
 * Protocol (shared by the tests/progs programs): every line is one write(2)
 * to stdout; SIGUSR1 asks for a self-check that compares every setting with
 * what was recorded, answered "CHECK <k> OK <state>" or
 * "CHECK <k> FAIL <state> (was <recorded state>)"; a broken invariant prints
 * "ERROR <why>" and exits 1.
 *
 * Lines: "PID <pid>", "STATE <state>" once set up, and the CHECK lines, where
 * <state> is "uid=R,E,S,FS gid=R,E,S,FS groups=G,... umask=0027 nnp=1
 * nofile=SOFT/HARD personality=0x... oom_score_adj=N dumpable=N caps=HEX
 * comm=NAME cwd=PATH".
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define NOBODY 65534

static volatile sig_atomic_t check_requested;

static void on_usr1(int sig)
{
	check_requested = 1;
}

#define SAY_LINE_MAX 2048
#include "say.h"


/* Value after "key" in /proc/self/status, trimmed; "" when absent. */
static void status_field(const char *key, char *out, size_t len)
{
	char line[512];
	FILE *f = fopen("/proc/self/status", "r");

	out[0] = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, strlen(key)))
			continue;
		snprintf(out, len, "%s", line + strlen(key) + strspn(line + strlen(key), " \t"));
		out[strcspn(out, "\n")] = 0;
	}
	fclose(f);
}

static void describe(char *out, size_t len)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg, groups[64];
	char umask_s[32], caps[64], comm[32] = "", cwd[1024] = "?", oom[32] = "?", gl[512] = "";
	struct rlimit rl;
	int ng, fd, gl_len = 0;
	ssize_t n;

	getresuid(&ru, &eu, &su);
	getresgid(&rg, &eg, &sg);
	ng = getgroups(64, groups);
	for (int i = 0; i < ng; i++)
		gl_len += snprintf(gl + gl_len, sizeof(gl) - gl_len, "%s%u", i ? "," : "", groups[i]);
	status_field("Umask:", umask_s, sizeof(umask_s));
	status_field("CapEff:", caps, sizeof(caps));
	getrlimit(RLIMIT_NOFILE, &rl);
	prctl(PR_GET_NAME, comm);
	if (!getcwd(cwd, sizeof(cwd)))
		snprintf(cwd, sizeof(cwd), "(getcwd: %s)", strerror(errno));
	fd = open("/proc/self/oom_score_adj", O_RDONLY);
	if (fd >= 0) {
		n = read(fd, oom, sizeof(oom) - 1);
		oom[n > 0 ? n : 0] = 0;
		oom[strcspn(oom, "\n")] = 0;
		close(fd);
	}

	snprintf(out, len,
		 "uid=%u,%u,%u,%d gid=%u,%u,%u,%d groups=%s umask=%s nnp=%d nofile=%llu/%llu "
		 "personality=%#x oom_score_adj=%s dumpable=%d caps=%s comm=%s cwd=%s",
		 ru, eu, su, setfsuid(-1), rg, eg, sg, setfsgid(-1), gl, umask_s,
		 prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0),
		 (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
		 personality(0xffffffff), oom, prctl(PR_GET_DUMPABLE, 0, 0, 0, 0),
		 caps, comm, cwd);
}

int main(int argc, char **argv)
{
	gid_t groups[] = { 100, 4242, NOBODY };
	char recorded[2048], now[2048];
	struct sigaction sa;
	struct rlimit rl;
	int fd, checks = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: creds DIR\n");
		return 2;
	}
	say("PID %d", getpid());

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);

	if (chdir(argv[1]))
		die("chdir %s: %s", argv[1], strerror(errno));
	if (prctl(PR_SET_NAME, "kup-creds", 0, 0, 0))
		die("PR_SET_NAME: %s", strerror(errno));
	fd = open("/proc/self/oom_score_adj", O_WRONLY);
	if (fd < 0 || write(fd, "345", 3) != 3)
		die("oom_score_adj: %s", strerror(errno));
	close(fd);
	if (getrlimit(RLIMIT_NOFILE, &rl))
		die("getrlimit: %s", strerror(errno));
	rl.rlim_cur = 777;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		die("setrlimit NOFILE: %s", strerror(errno));
	if (personality(PER_LINUX | ADDR_NO_RANDOMIZE) < 0)
		die("personality: %s", strerror(errno));
	umask(027);
	if (setgroups(3, groups))
		die("setgroups: %s", strerror(errno));
	if (setresgid(NOBODY, NOBODY, NOBODY))
		die("setresgid: %s", strerror(errno));
	if (setresuid(NOBODY, NOBODY, NOBODY))
		die("setresuid: %s", strerror(errno));
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		die("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));

	describe(recorded, sizeof(recorded));
	say("STATE %s", recorded);

	for (;;) {
		pause();
		if (!check_requested)
			continue;
		check_requested = 0;
		describe(now, sizeof(now));
		if (strcmp(now, recorded))
			say("CHECK %d FAIL %s (was %s)", ++checks, now, recorded);
		else
			say("CHECK %d OK %s", ++checks, now);
	}
}
