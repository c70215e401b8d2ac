// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A clean switch: the machine goes down the way `systemctl kexec` takes it
 * (units stopped in order, filesystems unmounted, the journal flushed), and
 * the kept services are frozen as late as possible on the way, not before
 * the shutdown begins.  docs/design.md, "A clean switch", says why and how.
 *
 * kup switch (once the new kernel is loaded) arms the switch:
 *   - a plan, /run/kup/switch-plan: the kept trees and units, the arguments
 *     of the dump to run and of the kernel's load (to load it again if
 *     something unloaded it on the way down);
 *   - runtime drop-ins (/run/systemd/system/UNIT.d/50-kup-switch.conf) for
 *     each kept unit: no default dependencies (so no Conflicts= with
 *     shutdown.target: systemd does not stop it), Restart=no and no
 *     ExecStop=/ExecStopPost= (its processes going into the store is not a
 *     stop), and for kup-switch-dump.service (After= every kept unit: if
 *     anything stops a kept unit after all, the dump comes first);
 *   - daemon-reload, start kup-switch-dump.service (systemd-units/): a
 *     oneshot that stays active and conflicts with shutdown.target, ordered
 *     after the network and the local and remote filesystems, so that its
 *     stop comes before they go;
 *   - then `systemctl kexec`, and kup switch is done.
 * On the way down, the stop of kup-switch-dump.service runs `kup
 * switch-dump`: it waits (bounded) until no stop job but the ones waiting
 * for it runs any more, then dumps the kept trees into the store.  systemd
 * goes on: the network, the filesystems, systemd-shutdown, the kexec.
 *
 * The outcome of the switch goes into a record on the root filesystem,
 * /var/lib/kup/last-switch, written at the switch and completed by the
 * restore on the new boot (the outage of each service); `kup status` shows
 * it.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"
#include "journal.h"
#include "kup.h"

#define PLAN_FILE	"/run/kup/switch-plan"
#define DROPIN_DIR	"/run/systemd/system"
#define DROPIN_NAME	"50-kup-switch.conf"
#define DUMP_UNIT	"kup-switch-dump.service"
#define LATE_WAIT_MS	60000	/* the longest the dump waits for other units to stop */
#define PLAN_MAX_ARGS	64
#define PLAN_MAX_UNITS	64

/* ---- helpers -------------------------------------------------------- */

static unsigned long long realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static unsigned long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

const char *kup_fmt_time(unsigned long long ns, char *buf, size_t len)
{
	time_t s = ns / 1000000000ULL;
	struct tm tm;

	if (!ns || !gmtime_r(&s, &tm)) {
		snprintf(buf, len, "?");
		return buf;
	}
	snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%02d.%03llu UTC", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (ns / 1000000ULL) % 1000);
	return buf;
}

static bool ends_with(const char *s, const char *end)
{
	size_t n = strlen(s), e = strlen(end);

	return n > e && !strcmp(s + n - e, end);
}

/* A unit name we write drop-ins for: a service or a scope, plain chars. */
static bool dropin_unit_ok(const char *u)
{
	size_t n = strlen(u);

	if (n > 200 || u[0] == '.' || u[0] == '-' ||
	    (!ends_with(u, ".service") && !ends_with(u, ".scope")))
		return false;
	for (; *u; u++)
		if (!isalnum((unsigned char)*u) && !strchr(":_.@-\\", *u))
			return false;
	return true;
}

static bool is_scope(const char *u)
{
	return ends_with(u, ".scope");
}

/* Run a command (PATH searched), its output to our stderr; its status. */
static int run_quiet(char *const argv[])
{
	int status;
	char *out = kup_capture(argv, &status);

	free(out);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
}

static int systemctl(const char *a, const char *b, const char *c)
{
	char *argv[] = { "systemctl", (char *)a, (char *)b, (char *)c, NULL };

	return run_quiet(argv);
}

/* Is @unit's file there (LoadState=loaded, not masked or not found)? */
static bool unit_loaded(const char *unit)
{
	char *argv[] = { "systemctl", "show", "-p", "LoadState", "--value", "--", (char *)unit, NULL };
	int status;
	char *out = kup_capture(argv, &status);
	bool loaded = out && !strcmp(out, "loaded\n");

	free(out);
	return loaded;
}

/* The systemd unit whose control group holds @pid (a service or a scope),
 * from /proc/PID/cgroup; 0 or -ENOENT. */
static int unit_of_pid(pid_t pid, char *buf, size_t len)
{
	char path[64], line[PATH_MAX], *base;
	FILE *f;
	int ret = -ENOENT;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (strncmp(line, "0::/", 4))
			continue;
		/* the deepest unit of the path: a service may have sub-groups */
		for (char *p = strtok(line + 4, "/"); p; p = strtok(NULL, "/")) {
			base = p;
			if (dropin_unit_ok(base) && strlen(base) < len) {
				snprintf(buf, len, "%s", base);
				ret = 0;
			}
		}
	}
	fclose(f);
	return ret;
}

static bool systemd_is_init(void)
{
	char comm[32] = "";
	FILE *f;

	if (access("/run/systemd/system", F_OK))
		return false;
	f = fopen("/proc/1/comm", "re");
	if (!f)
		return false;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = 0;
	fclose(f);
	return !strncmp(comm, "systemd", 7);
}

bool switch_shutdown_possible(void)
{
	return systemd_is_init();
}

/* ---- the record of the last switch ------------------------------------- */

static const char *record_path(void)
{
	const char *p = getenv("KUP_LAST_SWITCH");

	return p && *p ? p : KUP_LAST_SWITCH_FILE;
}

int kup_boot_id(char *buf, size_t len)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	buf[0] = 0;
	if (!f)
		return -errno;
	if (!fgets(buf, len, f))
		buf[0] = 0;
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	return buf[0] ? 0 : -EIO;
}

/* Replace the record with one for a switch to @kernel beginning now. */
void switch_record_begin(const char *kernel)
{
	const char *path = record_path();
	char tmp[PATH_MAX], dir[PATH_MAX], bid[64];
	struct utsname uts;
	FILE *f;
	int fd;

	snprintf(dir, sizeof(dir), "%s", path);
	if (strrchr(dir, '/') && strrchr(dir, '/') != dir) {
		*strrchr(dir, '/') = 0;
		if (mkdir(dir, 0755) && errno != EEXIST)
			log_warn_errno(errno, "cannot create %s: the switch is not recorded", dir);
	}
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		log_warn_errno(errno, "cannot write %s: the switch is not recorded", tmp);
		return;
	}
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return;
	}
	uname(&uts);
	kup_boot_id(bid, sizeof(bid));
	fprintf(f, "kup-switch 1\nbegun %llu %s %s %s\n", realtime_ns(), bid[0] ? bid : "-",
		uts.release, kernel);
	fflush(f);
	fdatasync(fd);
	if (ferror(f) | fclose(f) || rename(tmp, path)) {
		log_warn_errno(errno, "cannot write %s: the switch is not recorded", path);
		unlink(tmp);
	}
}

/* Append one line to the record (no newline in @fmt's output). */
static void __attribute__((format(printf, 1, 2))) record_add(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	size_t n;
	int fd;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	for (char *p = line; *p; p++)
		if (*p == '\n' || (unsigned char)*p < 0x20)
			*p = ' ';
	n = strlen(line);
	line[n++] = '\n';
	fd = open(record_path(), O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;		/* no switch recorded (a restore by hand) */
	if (write(fd, line, n) != (ssize_t)n)
		log_warn_errno(errno, "cannot write %s", record_path());
	fdatasync(fd);
	close(fd);
}

static void free_record(struct switch_record *r)
{
	free(r->items);
	memset(r, 0, sizeof(*r));
}

void switch_record_free(struct switch_record *r)
{
	free_record(r);
}

static struct switch_item *record_item(struct switch_record *r, const char *name)
{
	struct switch_item *v;

	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->items[i].name, name))
			return &r->items[i];
	if (r->n >= 256)
		return NULL;
	v = realloc(r->items, (r->n + 1) * sizeof(*v));
	if (!v)
		return NULL;
	r->items = v;
	v = &r->items[r->n++];
	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", name);
	return v;
}

/* A name as written in the record: printable, no blank. */
static bool name_ok(const char *s)
{
	if (!*s || strlen(s) >= sizeof(((struct switch_item *)0)->name))
		return false;
	for (; *s; s++)
		if (*s <= 0x20 || *s > 0x7e)
			return false;
	return true;
}

/* Text as written in the record: printable ASCII (what is printed and put
 * into JSON is never anything else). */
static bool text_ok(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			return false;
	return true;
}

/* Read the record (every line checked; what does not parse is skipped).
 * -ENOENT: no switch recorded. */
int switch_record_read(struct switch_record *r)
{
	char line[1100], name[128], word[16];
	struct switch_item *it;
	int fd, lineno = 0, n;
	struct stat sb;
	FILE *f;

	memset(r, 0, sizeof(*r));
	fd = open(record_path(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) || sb.st_size > 256 * 1024) {
		close(fd);
		log_err("%s: not a kup switch record", record_path());
		return -EINVAL;
	}
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a, b;
		char *rest;

		line[strcspn(line, "\n")] = 0;
		if (!lineno++) {
			if (strcmp(line, "kup-switch 1")) {
				fclose(f);
				log_err("%s: not a kup switch record", record_path());
				return -EINVAL;
			}
			continue;
		}
		n = 0;
		if (sscanf(line, "%15s %n", word, &n) != 1)
			continue;
		rest = line + n;
		if (!strcmp(word, "begun")) {
			char bid[64], rel[128], kern[PATH_MAX];

			if (sscanf(rest, "%llu %63s %127s %1023[^\n]", &a, bid, rel, kern) == 4 &&
			    text_ok(bid) && text_ok(rel) && text_ok(kern)) {
				r->begun_ns = a;
				snprintf(r->boot_id, sizeof(r->boot_id), "%s", bid);
				snprintf(r->from, sizeof(r->from), "%s", rel);
				snprintf(r->kernel, sizeof(r->kernel), "%.1000s", kern);
			}
		} else if (!strcmp(word, "booted")) {
			char rel[128] = "";

			if (sscanf(rest, "%63s %127s", r->booted, rel) < 1 || !text_ok(r->booted) ||
			    !text_ok(rel))
				r->booted[0] = rel[0] = 0;
			snprintf(r->booted_release, sizeof(r->booted_release), "%s", rel);
		} else if (!strcmp(word, "dumped") || !strcmp(word, "failed") ||
			   !strcmp(word, "restore-failed")) {
			n = 0;
			if (sscanf(rest, "%127s %n", name, &n) != 1 || !name_ok(name) ||
			    !text_ok(rest + n))
				continue;
			it = record_item(r, name);
			if (!it)
				continue;
			if (word[0] == 'd') {
				it->dumped = true;
				if (sscanf(rest + n, "%llu", &a) == 1)
					it->freeze_ns = a;
			} else {
				snprintf(it->error, sizeof(it->error), "%s%.200s",
					 word[0] == 'r' ? "the restore failed: " : "", rest + n);
				it->failed = true;
			}
		} else if (!strcmp(word, "dump-done")) {
			if (sscanf(rest, "%llu", &a) == 1)
				r->dump_done_ns = a;
		} else if (!strcmp(word, "pre-dump")) {
			unsigned long long rounds, copied, pages, read;

			/* the rounds began, ended: kept when in order; then
			 * (newer records) what they did, kept when it adds up */
			if (sscanf(rest, "%llu %llu", &a, &b) == 2 && a && b >= a) {
				r->pre_dump_begun_ns = a;
				r->pre_dump_done_ns = b;
				r->pre_dump_rounds = 0;
				if (sscanf(rest, "%*u %*u %llu %llu %llu %llu", &rounds, &copied,
					   &pages, &read) == 4 && rounds && rounds <= 1000 &&
				    read <= pages) {
					r->pre_dump_rounds = rounds;
					r->pre_dump_pages = copied;
					r->dump_pages = pages;
					r->frozen_pages_read = read;
				}
			}
		} else if (!strcmp(word, "hold")) {
			/* the wall clock, the time since the kernel's start */
			if (sscanf(rest, "%llu %llu", &a, &b) == 2 && b && a > b) {
				r->hold_ns = a;
				r->hold_since_boot_ns = b;
			}
		} else if (!strcmp(word, "memory-complete")) {
			if (sscanf(rest, "%127s %llu", name, &a) != 2 || !name_ok(name) || !a)
				continue;
			it = record_item(r, name);
			if (it)
				it->memory_complete_ns = a;
		} else if (!strcmp(word, "restored")) {
			unsigned long long c = 0, k = 0;

			/* the restore's start and the kernel's (newer records)
			 * are kept only when they are in order */
			if (sscanf(rest, "%127s %llu %llu %llu %llu", name, &a, &b, &c, &k) < 3 ||
			    !name_ok(name) || !a || b < a)
				continue;
			it = record_item(r, name);
			if (!it)
				continue;
			it->dumped = true;
			it->restored = true;
			it->freeze_ns = a;
			it->running_ns = b;
			if (k && c && k <= c && c <= b) {
				it->kernel_start_ns = k;
				it->restore_begun_ns = c;
			}
		}
	}
	fclose(f);
	/* the memory of a service complete (its line may come before the
	 * restore's: the fill can end first) is kept only for a service
	 * restored before it; a name of no other line is dropped */
	{
		size_t k = 0;

		for (size_t i = 0; i < r->n; i++) {
			it = &r->items[i];
			if (it->memory_complete_ns &&
			    (!it->restored || it->memory_complete_ns < it->running_ns))
				it->memory_complete_ns = 0;
			if (it->dumped || it->restored || it->failed)
				r->items[k++] = *it;
		}
		r->n = k;
	}
	return 0;
}

bool switch_record_rolled_back(const struct switch_record *r)
{
	return r->booted_release[0] && r->from[0] && !strcmp(r->booted_release, r->from) &&
	       !strstr(r->kernel, r->from);
}

/* ---- the start of kup hold, from the initramfs to the record ---------- */

static const char *hold_start_path(void)
{
	const char *p = getenv("KUP_HOLD_START");

	return p && *p ? p : KUP_HOLD_START_FILE;
}

static unsigned long long boottime_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_BOOTTIME, &ts))
		return 0;
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/*
 * kup hold began at @realtime_ns, @since_boot_ns after the kernel's start.
 * At boot it runs in the initramfs, where the root (and the record on it)
 * is not writable yet: it goes to /run (carried onto the root by
 * initramfs-tools and dracut), "kup-hold-start 1 BOOT_ID REALTIME
 * BOOTTIME", for the first restore of the boot to put into the record.
 */
void switch_hold_started(unsigned long long realtime_ns, unsigned long long since_boot_ns)
{
	const char *path = hold_start_path();
	char tmp[PATH_MAX], dir[PATH_MAX], bid[64], line[160];
	int fd, n;

	if (kup_boot_id(bid, sizeof(bid)) || !realtime_ns || !since_boot_ns)
		return;
	snprintf(dir, sizeof(dir), "%s", path);
	if (strrchr(dir, '/') && strrchr(dir, '/') != dir) {
		*strrchr(dir, '/') = 0;
		mkdir(dir, 0755);
	}
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	n = snprintf(line, sizeof(line), "kup-hold-start 1 %s %llu %llu\n", bid, realtime_ns,
		     since_boot_ns);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		log_warn_errno(errno, "cannot write %s: kup status will not show when the "
			       "hold began", tmp);
		return;
	}
	if (write(fd, line, n) != n) {
		int e = errno;

		close(fd);
		unlink(tmp);
		log_warn_errno(e ? e : EIO, "cannot write %s: kup status will not show when "
			       "the hold began", tmp);
		return;
	}
	if (close(fd) || rename(tmp, path)) {
		log_warn_errno(errno, "cannot write %s: kup status will not show when the "
			       "hold began", path);
		unlink(tmp);
	}
}

/* The hold's start of this boot, if noted: 0, or negative (nothing, or
 * not of this boot; every byte checked). */
static int hold_start_read(unsigned long long *realtime_ns, unsigned long long *since_ns)
{
	char buf[200], bid[64], fbid[64];
	unsigned long long a, b, up = boottime_ns();
	struct stat sb;
	ssize_t n;
	int fd, end = 0;

	fd = open(hold_start_path(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) || sb.st_uid != geteuid() ||
	    sb.st_size >= (off_t)sizeof(buf)) {
		close(fd);
		return -EINVAL;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EINVAL;
	buf[n] = 0;
	if (strlen(buf) != (size_t)n || kup_boot_id(bid, sizeof(bid)) ||
	    sscanf(buf, "kup-hold-start 1 %63s %llu %llu\n%n", fbid, &a, &b, &end) != 3 ||
	    end != n || buf[n - 1] != '\n' || strcmp(fbid, bid) || !b || a <= b || b > up)
		return -EINVAL;
	*realtime_ns = a;
	*since_ns = b;
	return 0;
}

/* The first boot after the switch: when its kup hold began (the phases). */
static void record_hold(void)
{
	unsigned long long a = 0, b = 0;

	if (!hold_start_read(&a, &b))
		record_add("hold %llu %llu", a, b);
}

/*
 * The first boot after the switch notes itself in the record ("booted BOOT_ID
 * RELEASE"), and says it when it is the old kernel's: a rollback.  @r is
 * the record read; 1 if this is that first boot (or the note was made by a
 * restore of it before), 0 if not.
 */
static int record_note_boot(struct switch_record *r)
{
	struct utsname uts;
	char bid[64];

	kup_boot_id(bid, sizeof(bid));
	if (!r->begun_ns || !bid[0] || !strcmp(r->boot_id, bid) ||
	    (r->booted[0] && strcmp(r->booted, bid)))
		return 0;
	if (r->booted[0])
		return 1;
	uname(&uts);
	record_add("booted %s %s", bid, uts.release);
	record_hold();
	snprintf(r->booted, sizeof(r->booted), "%s", bid);
	snprintf(r->booted_release, sizeof(r->booted_release), "%s", uts.release);
	if (switch_record_rolled_back(r))
		log_warn("the switch to %s did not come up: this is %s again, booted by the "
			 "firmware (the new kernel's panic= rebooted it); the kept services are "
			 "restored here from the store", r->kernel, uts.release);
	return 1;
}

static void note_boot(void)
{
	struct switch_record r;

	if (switch_record_read(&r))
		return;
	record_note_boot(&r);
	free_record(&r);
}

/* On the new boot, say once (the first boot after the switch) what the
 * last switch could not keep: those services start cold. */
void switch_record_report(void)
{
	struct switch_record r;

	if (switch_record_read(&r))
		return;
	if (!record_note_boot(&r)) {
		free_record(&r);
		return;
	}
	for (size_t i = 0; i < r.n; i++)
		if (r.items[i].failed && !r.items[i].restored)
			log_warn("the last switch (to %s) did not keep %s: %s; it starts cold "
				 "(kup status)", r.kernel, r.items[i].name, r.items[i].error);
	free_record(&r);
}

/* The dumps of the switch are done (the kexec comes next): when, for the
 * phases kup status shows. */
void switch_record_dump_done(void)
{
	record_add("dump-done %llu", realtime_ns());
}

/* When this boot's kernel started, on the wall clock (CLOCK_REALTIME less
 * the time since the boot, suspend included). */
static unsigned long long kernel_start_ns(void)
{
	unsigned long long now = realtime_ns(), up;
	struct timespec ts;

	if (clock_gettime(CLOCK_BOOTTIME, &ts))
		return 0;
	up = ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	return now > up ? now - up : 0;
}

/* The restore of @name (a unit, or "pid-N"), begun at @begun_ns, let it run
 * at @running_ns; it was frozen at @freeze_ns.  Logged, and recorded when
 * the checkpoint came from another boot (@other_boot): a switch, with the
 * restore's start and the new kernel's (the phases of kup status). */
void switch_record_restored(const char *name, unsigned long long freeze_ns,
			    unsigned long long running_ns, unsigned long long begun_ns,
			    bool other_boot)
{
	char a[64], b[64];

	if (!freeze_ns || running_ns < freeze_ns)
		return;
	log_info("%s: outage %llu ms (frozen at %s, running again at %s)", name,
		 (running_ns - freeze_ns) / 1000000ULL, kup_fmt_time(freeze_ns, a, sizeof(a)),
		 kup_fmt_time(running_ns, b, sizeof(b)));
	if (other_boot && name_ok(name)) {
		note_boot();
		record_add("restored %s %llu %llu %llu %llu", name, freeze_ns, running_ns,
			   begun_ns, kernel_start_ns());
	}
}

void switch_record_restore_failed(const char *name)
{
	note_boot();
	if (name_ok(name))
		record_add("restore-failed %s see the journal of this boot", name);
}

/* The pre-dump rounds of a switch's dump (kup dump, run by kup switch or
 * kup switch-dump with KUP_SWITCH_DUMP_ENV set) went from @begun_ns to
 * @done_ns, while the services ran: @rounds of them (0: this kernel could
 * not track writes) copied @copied pages; of the @pages dumped, the frozen
 * pass read @read. */
void switch_record_pre_dump(unsigned long long begun_ns, unsigned long long done_ns,
			    unsigned int rounds, unsigned long long copied,
			    unsigned long long pages, unsigned long long read)
{
	const char *e = getenv(KUP_SWITCH_DUMP_ENV);

	if (e && !strcmp(e, "1") && begun_ns && done_ns >= begun_ns)
		record_add("pre-dump %llu %llu %u %llu %llu %llu", begun_ns, done_ns, rounds, copied,
			   pages, read);
}

/* The lazy restore of @name (from another boot: a switch) filled the last
 * of its memory: now (kup-lazy, once its background pass ended). */
void switch_record_memory_complete(const char *name)
{
	unsigned long long now = realtime_ns();
	char at[64];

	if (!name_ok(name))
		return;
	log_info("%s: its memory is complete at %s", name, kup_fmt_time(now, at, sizeof(at)));
	record_add("memory-complete %s %llu", name, now);
}

/* ---- the plan ------------------------------------------------------------ */

struct plan {
	pid_t owner;
	char kernel[PATH_MAX];
	char *load[PLAN_MAX_ARGS + 1];
	char *dump[PLAN_MAX_ARGS + 1];
	char *units[PLAN_MAX_UNITS + 1];
	char *names[PLAN_MAX_UNITS + 1];
	int nload, ndump, nunits, nnames;
};

static void plan_free(struct plan *p)
{
	for (int i = 0; i < p->nload; i++)
		free(p->load[i]);
	for (int i = 0; i < p->ndump; i++)
		free(p->dump[i]);
	for (int i = 0; i < p->nunits; i++)
		free(p->units[i]);
	for (int i = 0; i < p->nnames; i++)
		free(p->names[i]);
	memset(p, 0, sizeof(*p));
}

static bool arg_ok(const char *s)
{
	return strlen(s) < PATH_MAX && !strchr(s, '\n');
}

static int plan_write(const struct switch_plan *sp, char **units, int nunits)
{
	char tmp[] = PLAN_FILE ".new";
	FILE *f;
	int fd;

	if (mkdir("/run/kup", 0755) && errno != EEXIST)
		return log_errno(errno, "cannot create /run/kup");
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return log_errno(errno, "cannot write %s", tmp);
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	fprintf(f, "kup-switch-plan 1\nowner %d\nkernel %s\n", (int)getpid(), sp->kernel);
	for (int i = 0; sp->load_argv[i]; i++)
		fprintf(f, "load %s\n", sp->load_argv[i]);
	for (int i = 0; sp->dump_argv[i]; i++)
		fprintf(f, "dump %s\n", sp->dump_argv[i]);
	for (int i = 0; i < nunits; i++)
		fprintf(f, "unit %s\n", units[i]);
	for (size_t i = 0; i < sp->nkeep; i++)
		fprintf(f, "name %s\n", sp->names[i]);
	if (ferror(f) | fclose(f) || rename(tmp, PLAN_FILE)) {
		int e = errno;

		unlink(tmp);
		return log_errno(e, "cannot write %s", PLAN_FILE);
	}
	return 0;
}

/* Read the plan: -ENOENT if there is none; every line checked. */
static int plan_read(struct plan *p)
{
	char line[PATH_MAX + 16];
	struct stat sb;
	int fd, lineno = 0, ret = 0;
	FILE *f;

	memset(p, 0, sizeof(*p));
	fd = open(PLAN_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) || sb.st_uid != 0 || (sb.st_mode & 077)) {
		close(fd);
		log_err("%s: not a file of root's closed to others: ignored", PLAN_FILE);
		return -EPERM;
	}
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	while (!ret && fgets(line, sizeof(line), f)) {
		char *v;
		size_t l = strcspn(line, "\n");

		if (!line[l]) {
			ret = -EINVAL;	/* longer than any line we write */
			break;
		}
		line[l] = 0;
		if (!lineno++) {
			if (strcmp(line, "kup-switch-plan 1"))
				ret = -EINVAL;
			continue;
		}
		v = strchr(line, ' ');
		if (!v) {
			ret = -EINVAL;
			break;
		}
		*v++ = 0;
		if (!strcmp(line, "owner")) {
			p->owner = atoi(v);
		} else if (!strcmp(line, "kernel")) {
			snprintf(p->kernel, sizeof(p->kernel), "%s", v);
		} else if (!strcmp(line, "load") && p->nload < PLAN_MAX_ARGS) {
			p->load[p->nload++] = strdup(v);
		} else if (!strcmp(line, "dump") && p->ndump < PLAN_MAX_ARGS) {
			p->dump[p->ndump++] = strdup(v);
		} else if (!strcmp(line, "unit") && p->nunits < PLAN_MAX_UNITS && dropin_unit_ok(v)) {
			p->units[p->nunits++] = strdup(v);
		} else if (!strcmp(line, "name") && p->nnames < PLAN_MAX_UNITS && name_ok(v)) {
			p->names[p->nnames++] = strdup(v);
		} else {
			ret = -EINVAL;
		}
	}
	fclose(f);
	for (int i = 0; !ret && i < p->nload; i++)
		if (!p->load[i])
			ret = -ENOMEM;
	for (int i = 0; !ret && i < p->ndump; i++)
		if (!p->dump[i])
			ret = -ENOMEM;
	if (!ret && (p->ndump < 2 || strcmp(p->dump[0], "kup") || strcmp(p->dump[1], "dump") ||
		     (p->nload && (p->nload < 3 || strcmp(p->load[1], "kexec") ||
				   strcmp(p->load[2], "load")))))
		ret = -EINVAL;
	if (ret) {
		if (ret == -EINVAL)
			log_err("%s does not parse: ignored", PLAN_FILE);
		plan_free(p);
	}
	return ret;
}

/* ---- drop-ins ------------------------------------------------------------ */

static int write_file(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	int fd;
	ssize_t n = strlen(text);

	if (mkdir(dir, 0755) && errno != EEXIST)
		return log_errno(errno, "cannot create %s", dir);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return log_errno(errno, "cannot write %s", path);
	if (write(fd, text, n) != n) {
		int e = errno;

		close(fd);
		return log_errno(e, "cannot write %s", path);
	}
	close(fd);
	return 0;
}

static void remove_dropin(const char *unit)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), DROPIN_DIR "/%s.d/" DROPIN_NAME, unit);
	unlink(path);
	*strrchr(path, '/') = 0;
	rmdir(path);	/* if it is empty */
}

static void remove_dropins(char **units, int n)
{
	for (int i = 0; i < n; i++)
		remove_dropin(units[i]);
	remove_dropin(DUMP_UNIT);
	remove_dropin("kexec-load.service");
}

static int kept_dropin(const char *unit)
{
	char dir[PATH_MAX], text[1024];

	snprintf(dir, sizeof(dir), DROPIN_DIR "/%s.d", unit);
	snprintf(text, sizeof(text),
		 "# Written by kup switch: %s is kept across the kernel switch under way.\n"
		 "# Late in the shutdown kup-switch-dump.service puts its processes into the\n"
		 "# persistent page store: systemd neither stops nor restarts it.\n"
		 "[Unit]\n"
		 "DefaultDependencies=no\n"
		 "After=local-fs.target remote-fs.target network.target\n"
		 "%s",
		 unit, is_scope(unit) ? "" :
		 "\n[Service]\n"
		 "Restart=no\n"
		 "ExecStop=\n"
		 "ExecStopPost=\n"
		 "SuccessExitStatus=SIGKILL\n");
	return write_file(dir, DROPIN_NAME, text);
}

static int dump_unit_dropin(char **units, int n)
{
	char text[8192];
	size_t l;

	l = snprintf(text, sizeof(text),
		     "# Written by kup switch: the dump comes before any stop of a kept unit.\n"
		     "[Unit]\n");
	for (int i = 0; i < n && l < sizeof(text) - 300; i++)
		l += snprintf(text + l, sizeof(text) - l, "After=%s\n", units[i]);
	return write_file(DROPIN_DIR "/" DUMP_UNIT ".d", DROPIN_NAME, text);
}

/* kexec-tools' kexec-load.service loads the boot loader's default kernel
 * when it stops (LOAD_KEXEC=true): on the way down it would replace the
 * kernel kup loaded (with the classic loader and without the store's
 * reservation).  For this shutdown its stop does nothing. */
static int kexec_load_dropin(void)
{
	if (!unit_loaded("kexec-load.service"))
		return 0;
	return write_file(DROPIN_DIR "/kexec-load.service.d", DROPIN_NAME,
			  "# Written by kup switch: the kernel to kexec is the one kup loaded.\n"
			  "[Service]\nExecStop=\n");
}

/* ---- arming and disarming ------------------------------------------------ */

static void disarm(char **units, int n, bool stop_service)
{
	unlink(PLAN_FILE);
	/* its stop finds no plan: it dumps nothing (no waiting for it: this
	 * may be its own stop, a recovery in `kup switch-dump`) */
	if (stop_service)
		systemctl("--no-block", "stop", DUMP_UNIT);
	remove_dropins(units, n);
	systemctl("daemon-reload", NULL, NULL);
}

void switch_shutdown_disarm_stale(pid_t owner)
{
	struct plan p;

	if (plan_read(&p))
		return;
	if (p.owner == owner) {
		disarm(p.units, p.nunits, true);
		log_info("the clean switch kup switch (pid %d) had armed is disarmed", (int)owner);
	}
	plan_free(&p);
}

static bool unit_seen(char **units, int n, const char *u)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(units[i], u))
			return true;
	return false;
}

int switch_shutdown(const struct switch_plan *sp)
{
	char *units[PLAN_MAX_UNITS], buf[256];
	int nunits = 0, ret = 0, rc;

	for (int i = 0; sp->load_argv[i]; i++)
		if (!arg_ok(sp->load_argv[i]) || i >= PLAN_MAX_ARGS)
			ret = -EINVAL;
	for (int i = 0; sp->dump_argv[i]; i++)
		if (!arg_ok(sp->dump_argv[i]) || i >= PLAN_MAX_ARGS)
			ret = -EINVAL;
	if (ret || sp->nkeep > PLAN_MAX_UNITS || !arg_ok(sp->kernel)) {
		log_err("an argument is too long or holds a newline: use --fast");
		return -EINVAL;
	}
	/* the units systemd would stop on the way down: each kept unit, and
	 * the unit of each kept tree */
	for (size_t i = 0; i < sp->nkeep; i++) {
		const char *u = sp->units[i];

		if (!u && sp->roots[i] > 0 && !unit_of_pid(sp->roots[i], buf, sizeof(buf)))
			u = buf;
		if (!u || unit_seen(units, nunits, u))
			continue;
		if (!strcmp(u, "init.scope") || !strcmp(u, DUMP_UNIT)) {
			log_err("%s: a tree of %s cannot be kept by a clean switch (use --fast)",
				sp->names[i], u);
			ret = -EINVAL;
			break;
		}
		units[nunits] = strdup(u);
		if (!units[nunits]) {
			ret = -ENOMEM;
			break;
		}
		nunits++;
	}
	if (ret)
		goto out_free;
	if (!unit_loaded(DUMP_UNIT)) {
		log_err("%s is not installed (make install): a clean switch needs it (or use --fast)",
			DUMP_UNIT);
		ret = -ENOENT;
		goto out_free;
	}

	log_info("the system goes down as `systemctl kexec` takes it; the kept services are "
		 "dumped late in the shutdown (%s)", DUMP_UNIT);
	ret = plan_write(sp, units, nunits);
	for (int i = 0; !ret && i < nunits; i++)
		ret = kept_dropin(units[i]);
	if (!ret)
		ret = dump_unit_dropin(units, nunits);
	if (!ret)
		ret = kexec_load_dropin();
	if (ret)
		goto out_disarm;
	rc = systemctl("daemon-reload", NULL, NULL);
	if (rc) {
		log_err("systemctl daemon-reload failed (status %d)", rc);
		ret = -EIO;
		goto out_disarm;
	}
	rc = systemctl("start", DUMP_UNIT, NULL);
	if (rc) {
		log_err("systemctl start %s failed (status %d)", DUMP_UNIT, rc);
		ret = -EIO;
		goto out_disarm_stop;
	}
	if (ckpt_abort_signal()) {
		ret = -ECANCELED;
		goto out_disarm_stop;
	}
	/* from here on the shutdown has it: nothing to undo if we die */
	ret = journal_add("kexec-exec");
	if (ret)
		goto out_disarm_stop;
	{
		char *argv[] = { "systemctl", "kexec", NULL };

		rc = run_quiet(argv);
	}
	if (rc) {
		log_err("systemctl kexec failed (status %d): is a shutdown inhibited?", rc);
		ret = -EIO;
		goto out_disarm_stop;
	}
	/* whatever comes now (the session's SIGHUP, SIGTERM) is the shutdown */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	log_info("the shutdown is under way: each service's freeze is logged by %s (journal, "
		 "console); on the new boot `kup status` shows its outage", DUMP_UNIT);
	goto out_free;

out_disarm_stop:
	disarm(units, nunits, true);
	goto out_free;
out_disarm:
	disarm(units, nunits, false);
out_free:
	for (int i = 0; i < nunits; i++)
		free(units[i]);
	return ret;
}

/* kup switch --from-store: nothing to dump, the system goes down as
 * `systemctl kexec` takes it (kexec-load.service kept from replacing the
 * kernel).  0 once the shutdown has it. */
int switch_shutdown_plain(void)
{
	char *argv[] = { "systemctl", "kexec", NULL };
	int rc;

	if (kexec_load_dropin())
		return -EIO;
	rc = systemctl("daemon-reload", NULL, NULL);
	if (!rc)
		rc = run_quiet(argv);
	if (rc) {
		log_err("systemctl kexec failed (status %d): is a shutdown inhibited?", rc);
		remove_dropin("kexec-load.service");
		systemctl("daemon-reload", NULL, NULL);
		return -EIO;
	}
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	return 0;
}

/* ---- the stop of kup-switch-dump.service ---------------------------------- */

struct job {
	char unit[256];
	char type[32];
	char state[32];
};

/* systemctl list-jobs: the jobs queued now; count, or negative. */
static int list_jobs(struct job *jobs, int max)
{
	char *argv[] = { "systemctl", "list-jobs", "--no-legend", "--no-pager", "--plain", NULL };
	char *out, *l, *next;
	int status, n = 0;

	out = kup_capture(argv, &status);
	if (!out)
		return -EIO;
	for (l = out; l && *l && n < max; l = next) {
		unsigned int id;

		next = strchr(l, '\n');
		if (next)
			*next++ = 0;
		if (sscanf(l, " %u %255s %31s %31s", &id, jobs[n].unit, jobs[n].type,
			   jobs[n].state) == 4)
			n++;
	}
	free(out);
	return n;
}

static bool kexec_queued(const struct job *jobs, int n)
{
	for (int i = 0; i < n; i++)
		if ((!strcmp(jobs[i].unit, "kexec.target") ||
		     !strcmp(jobs[i].unit, "systemd-kexec.service")) && !strcmp(jobs[i].type, "start"))
			return true;
	return false;
}

static bool shutdown_queued(const struct job *jobs, int n)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(jobs[i].unit, "shutdown.target") && !strcmp(jobs[i].type, "start"))
			return true;
	return false;
}

/*
 * As late as possible: wait until no job runs but ours.  A job that waits
 * is ordered after a job that has not finished; when none but ours runs,
 * every waiting job waits, directly or not, for ours (the network, the
 * filesystems, shutdown.target, the kexec).  Seen three times in a row
 * (systemd dispatches a job that becomes runnable at once), bounded.
 */
static void wait_late(void)
{
	static struct job jobs[512];
	unsigned long long t0 = mono_ms();
	char running[256] = "";
	int quiet = 0;
	const struct timespec tick = { 0, 100 * 1000 * 1000 };

	for (;;) {
		int n = list_jobs(jobs, 512);
		bool busy = false;

		if (n < 0)
			break;
		for (int i = 0; i < n; i++)
			if (!strcmp(jobs[i].state, "running") && strcmp(jobs[i].unit, DUMP_UNIT)) {
				busy = true;
				snprintf(running, sizeof(running), "%.200s", jobs[i].unit);
			}
		quiet = busy ? 0 : quiet + 1;
		if (quiet >= 3)
			break;
		if (mono_ms() - t0 > LATE_WAIT_MS) {
			log_warn("%s still stops after %d s: dumping now", running, LATE_WAIT_MS / 1000);
			break;
		}
		nanosleep(&tick, NULL);
	}
	log_info("the other units stopped in %llu ms", mono_ms() - t0);
}

/* Run `kup ARGS` (this binary); its status. */
static int run_self(char *const argv[])
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return log_errno(errno, "cannot fork"), KUP_EXIT_FAIL;
	if (!pid) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return KUP_EXIT_FAIL;
	return WIFEXITED(status) ? WEXITSTATUS(status) : KUP_EXIT_FAIL;
}

static bool kexec_loaded(void)
{
	char c = '0';
	int fd = open("/sys/kernel/kexec_loaded", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	if (read(fd, &c, 1) != 1)
		c = '0';
	close(fd);
	return c == '1';
}

static void names_of(const struct plan *p, char *buf, size_t len)
{
	size_t l = 0;

	buf[0] = 0;
	for (int i = 0; i < p->nnames && l < len; i++)
		l += snprintf(buf + l, len - l, "%s%s", i ? ", " : "", p->names[i]);
}

static void stop_kept(const struct plan *p)
{
	for (int i = 0; i < p->nunits; i++)
		systemctl("--no-block", "stop", p->units[i]);
}

int cmd_switch_dump(int argc, char **argv)
{
	static struct job jobs[512];
	char names[1024];
	struct plan p;
	int n, rc, ret;

	log_set_prefix("kup switch");
	if (argc > 1 && (kup_wants_help(argc, argv) || strcmp(argv[1], "-v"))) {
		printf("Usage: kup switch-dump\n\nRun by %s when it stops: the late dump of a "
		       "clean kup switch (kup(8)).\n", DUMP_UNIT);
		return kup_wants_help(argc, argv) ? 0 : KUP_EXIT_USAGE;
	}
	if (argc > 1)
		log_set_level(log_get_level() + 1);
	ret = plan_read(&p);
	if (ret == -ENOENT) {
		log_info("no switch under way: nothing to dump");
		return 0;
	}
	if (ret)
		return KUP_EXIT_FAIL;
	names_of(&p, names, sizeof(names));
	unlink(PLAN_FILE);	/* one dump per plan, whatever comes of it */
	n = list_jobs(jobs, 512);
	if (n < 0 || !kexec_queued(jobs, n)) {
		bool down = n > 0 && shutdown_queued(jobs, n);

		log_warn("the system is not going down by kexec: %s not dumped; %s", names,
			 down ? "they stop with the system" : "they run on");
		remove_dropins(p.units, p.nunits);
		if (down)
			stop_kept(&p);
		plan_free(&p);
		return 0;
	}
	switch_record_begin(p.kernel);
	wait_late();
	ret = 0;
	if (!kexec_loaded()) {
		/* something unloaded it on the way: load it again as kup switch did */
		log_warn("%s is no longer loaded: loading it again", p.kernel);
		rc = p.nload ? run_self(p.load) : KUP_EXIT_FAIL;
		if (rc || !kexec_loaded()) {
			log_err("%s could not be loaded again: %s not dumped; they start cold on "
				"the next boot", p.kernel, names);
			for (int i = 0; i < p.nnames; i++)
				record_add("failed %s %s was unloaded on the way down and could "
					   "not be loaded again", p.names[i], p.kernel);
			ret = KUP_EXIT_FAIL;
		}
	}
	if (!ret) {
		log_info("dumping %s", names);
		setenv(KUP_SWITCH_DUMP_ENV, "1", 1);	/* its pre-dump rounds: the record */
		rc = run_self(p.dump);
		unsetenv(KUP_SWITCH_DUMP_ENV);
		if (rc) {
			log_err("the dump failed: %s not kept; the shutdown goes on, and on the new "
				"boot they start cold", names);
			for (int i = 0; i < p.nnames; i++)
				record_add("failed %s the dump failed in the shutdown (its "
					   "messages are in the journal of the switch's boot)",
					   p.names[i]);
			ret = KUP_EXIT_FAIL;
		} else {
			for (int i = 0; i < p.nnames; i++)
				record_add("dumped %s", p.names[i]);
			switch_record_dump_done();
			log_info("%s in the store: the shutdown goes on to %s", names, p.kernel);
		}
	}
	if (ret)
		stop_kept(&p);	/* as the shutdown would have without kup */
	plan_free(&p);
	return ret;
}

