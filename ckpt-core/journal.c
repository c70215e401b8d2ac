// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The undo journal (journal.h) and its replay (ckpt_recover).
 *
 * Writing: one file per operation under /run/kup/journal (a root-only
 * directory), opened O_EXCL|O_NOFOLLOW, appended one line per record with a
 * single write(2).  /run is a tmpfs: a killed process loses nothing it
 * wrote, and a reboot clears what no longer means anything; no fsync.
 *
 * Replay: a journal whose owner (pid and start time) is gone is read
 * (every line validated; a line that does not parse is ignored with a
 * warning), and what it says is undone on the tasks that still exist with
 * the same start time: see docs/design.md, "When kup dies".
 */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/file.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "journal.h"
#include "netlock.h"

#ifndef TCP_REPAIR_OFF_NO_WP
#define TCP_REPAIR_OFF_NO_WP	-1
#endif

static int jfd = -1;
static char jpath[256];

/* ---- writing ---------------------------------------------------------- */

unsigned long long journal_start_time(pid_t pid, pid_t tid)
{
	char path[64], buf[1024], *p;
	unsigned long long v = 0;
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');
	if (!p || !p[1] || p[2] == 'Z' || p[2] == 'X')
		return 0;	/* a zombie has no start to speak of: gone */
	/* field 3 (state) follows ") "; the start time is field 22 */
	for (field = 2; *p && field < 22; p++)
		if (*p == ' ')
			field++;
	if (field == 22)
		v = strtoull(p, NULL, 10);
	return v;
}

/* /run/kup/journal: a directory of root's, not open to anyone else. */
static int journal_dir(bool create)
{
	struct stat sb;

	if (create) {
		if (mkdir("/run/kup", 0755) && errno != EEXIST)
			return log_errno(errno, "cannot create /run/kup");
		if (mkdir(JOURNAL_DIR, 0700) && errno != EEXIST)
			return log_errno(errno, "cannot create %s", JOURNAL_DIR);
	}
	if (lstat(JOURNAL_DIR, &sb))
		return -errno;
	if (!S_ISDIR(sb.st_mode) || sb.st_uid != 0 || (sb.st_mode & 077)) {
		log_err("%s: not a directory owned by root and closed to others: refusing it",
			JOURNAL_DIR);
		return -EPERM;
	}
	return 0;
}

int journal_begin(const char *op)
{
	pid_t me = getpid();
	int ret;

	if (jfd >= 0)
		return 0;
	ret = journal_dir(true);
	if (ret)
		return ret;
	snprintf(jpath, sizeof(jpath), "%s/%s-%d-%llu", JOURNAL_DIR, op, (int)me,
		 journal_start_time(me, me));
	jfd = open(jpath, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_APPEND | O_CLOEXEC, 0600);
	if (jfd < 0)
		return log_errno(errno, "cannot create the undo journal %s", jpath);
	ret = journal_add("kup-journal 1 %s %d %llu", op, (int)me, journal_start_time(me, me));
	if (ret)
		journal_end();
	return ret;
}

void journal_end(void)
{
	if (jfd < 0)
		return;
	unlink(jpath);
	close(jfd);
	jfd = -1;
}

void journal_forget(void)
{
	if (jfd >= 0)
		close(jfd);
	jfd = -1;
}

bool journal_active(void)
{
	return jfd >= 0;
}

int journal_add(const char *fmt, ...)
{
	char line[PATH_MAX + 64];
	va_list ap;
	int n;

	if (jfd < 0)
		return 0;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 1)
		return log_errno(EOVERFLOW, "undo journal %s: record too long", jpath);
	line[n++] = '\n';
	if (write(jfd, line, n) != n)
		return log_errno(errno, "cannot write the undo journal %s", jpath);
	return 0;
}

int journal_regs(pid_t pid, pid_t tid, const struct arch_regs *r)
{
	const unsigned char *b = (const unsigned char *)r;
	char hex[2 * sizeof(*r) + 1];
	size_t n = arch_regs_size();

	if (jfd < 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", b[i]);
	return journal_add("regs %d %d %llu %s", pid, tid, journal_start_time(pid, tid), hex);
}

int journal_lock(const char *name, int nsfd, pid_t pid)
{
	struct stat sb;

	if (jfd < 0)
		return 0;
	if (nsfd >= 0 ? fstat(nsfd, &sb) : stat("/proc/thread-self/ns/net", &sb))
		return log_errno(errno, "network lock %s: cannot identify its namespace", name);
	return journal_add("lock %s %llu %llu %d", name, (unsigned long long)sb.st_dev,
			   (unsigned long long)sb.st_ino, (int)pid);
}

/* ---- reading ---------------------------------------------------------- */

struct jmask { pid_t pid, tid; unsigned long long start; uint64_t mask; };
struct jregs { pid_t pid, tid; unsigned long long start; struct arch_regs r; };
struct jpatch { pid_t pid, tid; unsigned long long start; unsigned long ip, orig; bool undone; };
struct jtramp { pid_t pid; unsigned long long start; unsigned long addr, len; bool undone; };
struct jsk { pid_t pid; unsigned long long start; int fd; unsigned long long ino; int reuse; };
struct jlock { char name[NETLOCK_NAME_MAX]; unsigned long long dev, ino; pid_t pid; };
struct jtask { pid_t pid; unsigned long long start; };

struct journal {
	char path[PATH_MAX];
	char op[16];
	pid_t owner;
	unsigned long long owner_start;
	char store_kind[8];
	char store[PATH_MAX];
	char partial[PATH_MAX];
	bool leave_running, committing, committed, complete, running, kexec_loaded, kexec_exec, tcp;
	pid_t dump_root;
	unsigned long long dump_root_start;
	char dump_store[PATH_MAX];
	struct jmask *masks; size_t nmasks;
	struct jregs *regs; size_t nregs;
	pid_t *stopped; size_t nstopped;
	struct jpatch *patches; size_t npatches;
	struct jtramp *tramps; size_t ntramps;
	struct jsk *sks; size_t nsks;
	struct jlock *locks; size_t nlocks;
	struct jtask *tasks; size_t ntasks;
};

#define GROW(arr, n) ({ \
	void *_p = reallocarray((arr), (n) + 1, sizeof(*(arr))); \
	if (_p) { (arr) = _p; memset(&(arr)[(n)], 0, sizeof(*(arr))); } \
	_p != NULL; })

static void journal_free(struct journal *j)
{
	free(j->masks);
	free(j->regs);
	free(j->stopped);
	free(j->patches);
	free(j->tramps);
	free(j->sks);
	free(j->locks);
	free(j->tasks);
	free(j);
}

/* A path field: the rest of the line, absolute, printable. */
static bool path_ok(const char *p)
{
	if (p[0] != '/' || strlen(p) >= PATH_MAX)
		return false;
	for (; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

static int parse_line(struct journal *j, const char *l)
{
	char name[NETLOCK_NAME_MAX + 1], kind[8];
	int pid, tid, fd, reuse, n = 0;
	unsigned long long start, dev, ino;
	unsigned long a, b;
	uint64_t m;

	if (sscanf(l, "mask %d %d %llu %" SCNx64 "%n", &pid, &tid, &start, &m, &n) == 4 && !l[n]) {
		if (!GROW(j->masks, j->nmasks))
			return -ENOMEM;
		j->masks[j->nmasks++] = (struct jmask){ pid, tid, start, m };
	} else if (sscanf(l, "regs %d %d %llu %n", &pid, &tid, &start, &n) == 3 && n &&
		   strlen(l + n) == 2 * arch_regs_size() && arch_regs_size() <= sizeof(struct arch_regs)) {
		struct jregs *r;

		if (!GROW(j->regs, j->nregs))
			return -ENOMEM;
		r = &j->regs[j->nregs];
		*r = (struct jregs){ pid, tid, start };
		for (size_t i = 0; i < arch_regs_size(); i++) {
			unsigned int byte;

			if (!isxdigit((unsigned char)l[n + 2 * i]) ||
			    !isxdigit((unsigned char)l[n + 2 * i + 1]) ||
			    sscanf(l + n + 2 * i, "%2x", &byte) != 1)
				return -EINVAL;
			((unsigned char *)&r->r)[i] = byte;
		}
		j->nregs++;
	} else if (sscanf(l, "stopped %d%n", &pid, &n) == 1 && !l[n]) {
		if (!GROW(j->stopped, j->nstopped))
			return -ENOMEM;
		j->stopped[j->nstopped++] = pid;
	} else if (sscanf(l, "patch %d %d %llu %lx %lx%n", &pid, &tid, &start, &a, &b, &n) == 5 &&
		   !l[n]) {
		if (!GROW(j->patches, j->npatches))
			return -ENOMEM;
		j->patches[j->npatches++] = (struct jpatch){ pid, tid, start, a, b, false };
	} else if (sscanf(l, "unpatch %d %lx%n", &pid, &a, &n) == 2 && !l[n]) {
		for (size_t i = 0; i < j->npatches; i++)
			if (j->patches[i].pid == pid && j->patches[i].ip == a)
				j->patches[i].undone = true;
	} else if (sscanf(l, "tramp %d %llu %lx %lx%n", &pid, &start, &a, &b, &n) == 4 && !l[n]) {
		/* the address is known once the mmap returned: same entry */
		for (size_t i = 0; i < j->ntramps; i++)
			if (j->tramps[i].pid == pid && !j->tramps[i].undone && !j->tramps[i].addr) {
				j->tramps[i].addr = a;
				return 0;
			}
		if (!GROW(j->tramps, j->ntramps))
			return -ENOMEM;
		j->tramps[j->ntramps++] = (struct jtramp){ pid, start, a, b, false };
	} else if (sscanf(l, "untramp %d %lx%n", &pid, &a, &n) == 2 && !l[n]) {
		for (size_t i = 0; i < j->ntramps; i++)
			if (j->tramps[i].pid == pid && j->tramps[i].addr == a)
				j->tramps[i].undone = true;
	} else if (sscanf(l, "sk %d %llu %d %llu %d%n", &pid, &start, &fd, &ino, &reuse, &n) == 5 &&
		   !l[n]) {
		if (!GROW(j->sks, j->nsks))
			return -ENOMEM;
		j->sks[j->nsks++] = (struct jsk){ pid, start, fd, ino, reuse };
	} else if (sscanf(l, "lock %64s %llu %llu %d%n", name, &dev, &ino, &pid, &n) == 4 && !l[n] &&
		   netlock_name_ok(name)) {
		for (size_t i = 0; i < j->nlocks; i++)
			if (!strcmp(j->locks[i].name, name) && j->locks[i].ino == ino)
				return 0;
		if (!GROW(j->locks, j->nlocks))
			return -ENOMEM;
		memcpy(j->locks[j->nlocks].name, name, strlen(name) + 1);
		j->locks[j->nlocks].dev = dev;
		j->locks[j->nlocks].ino = ino;
		j->locks[j->nlocks++].pid = pid;
	} else if (sscanf(l, "task %d %llu%n", &pid, &start, &n) == 2 && !l[n]) {
		if (!GROW(j->tasks, j->ntasks))
			return -ENOMEM;
		j->tasks[j->ntasks++] = (struct jtask){ pid, start };
	} else if (sscanf(l, "store %7s %n", kind, &n) == 1 && n && path_ok(l + n) &&
		   (!strcmp(kind, "dir") || !strcmp(kind, "ppp"))) {
		snprintf(j->store_kind, sizeof(j->store_kind), "%s", kind);
		snprintf(j->store, sizeof(j->store), "%s", l + n);
	} else if (!strncmp(l, "partial ", 8) && path_ok(l + 8)) {
		snprintf(j->partial, sizeof(j->partial), "%s", l + 8);
	} else if (sscanf(l, "dumping %d %llu %n", &pid, &start, &n) == 2 && n && l[n]) {
		j->dump_root = pid;
		j->dump_root_start = start;
		snprintf(j->dump_store, sizeof(j->dump_store), "%s", l + n);
	} else if (!strcmp(l, "leave-running")) {
		j->leave_running = true;
	} else if (!strcmp(l, "committing")) {
		j->committing = true;
	} else if (!strcmp(l, "committed")) {
		j->committed = true;
	} else if (!strcmp(l, "complete")) {
		j->complete = true;
	} else if (!strcmp(l, "running")) {
		j->running = true;
	} else if (!strcmp(l, "kexec-loaded")) {
		j->kexec_loaded = true;
	} else if (!strcmp(l, "kexec-exec")) {
		j->kexec_exec = true;
	} else if (!strcmp(l, "tcp")) {
		j->tcp = true;
	} else {
		return -EINVAL;
	}
	return 0;
}

static int journal_read(int fd, const char *path, struct journal **out)
{
	struct journal *j = calloc(1, sizeof(*j));
	char *buf = NULL, *line, *nl;
	size_t len = 0, cap = 0;
	int ret = -EINVAL, pid, n = 0;
	unsigned long long start;
	char op[16];

	if (!j)
		return -ENOMEM;
	snprintf(j->path, sizeof(j->path), "%s", path);
	for (;;) {
		ssize_t r;

		if (len + 4096 + 1 > cap) {
			char *nb;

			if (cap > (16u << 20)) {
				log_err("undo journal %s: larger than 16 MiB, not one of kup's", path);
				goto out;
			}
			cap = cap ? cap * 2 : 16384;
			nb = realloc(buf, cap);
			if (!nb) {
				ret = -ENOMEM;
				goto out;
			}
			buf = nb;
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r < 0) {
			ret = log_errno(errno, "cannot read the undo journal %s", path);
			goto out;
		}
		if (!r)
			break;
		len += r;
	}
	buf[len] = 0;
	if (strlen(buf) != len) {
		log_err("undo journal %s: holds NUL bytes, not one of kup's", path);
		goto out;
	}
	nl = strchr(buf, '\n');
	if (!nl) {
		/* killed before its header was whole: nothing was done yet */
		ret = -ENODATA;
		goto out;
	}
	*nl = 0;
	if (sscanf(buf, "kup-journal 1 %15s %d %llu%n", op, &pid, &start, &n) != 3 || buf[n] ||
	    (strcmp(op, "dump") && strcmp(op, "restore") && strcmp(op, "switch")) || pid <= 0)
		goto bad_header;
	snprintf(j->op, sizeof(j->op), "%s", op);
	j->owner = pid;
	j->owner_start = start;
	for (line = nl + 1; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		if (!nl)
			break;	/* a torn last line: the change it announced was not made */
		*nl = 0;
		ret = parse_line(j, line);
		if (ret == -ENOMEM)
			goto out;
		if (ret)
			log_warn("undo journal %s: ignoring the line '%.80s'", path, line);
	}
	free(buf);
	*out = j;
	return 0;
bad_header:
	log_err("undo journal %s: no valid header, not one of kup's: left alone", path);
	ret = -EINVAL;
out:
	free(buf);
	journal_free(j);
	return ret;
}

/* ---- replay ----------------------------------------------------------- */

static bool same_task(pid_t pid, pid_t tid, unsigned long long start)
{
	return pid > 0 && tid > 0 && start && journal_start_time(pid, tid) == start;
}

struct seized {
	pid_t *tids;
	size_t n;
};

static bool is_seized(const struct seized *s, pid_t tid)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->tids[i] == tid)
			return true;
	return false;
}

/* Seize and stop @tid. */
static int seize(struct seized *s, pid_t tid)
{
	int ret;

	if (is_seized(s, tid))
		return 0;
	if (!GROW(s->tids, s->n))
		return -ENOMEM;
	ret = puppet_seize(tid, true);
	if (ret)
		return log_errno(ret, "tid %d: cannot seize it to undo what kup left", tid);
	s->tids[s->n++] = tid;
	return 0;
}

/* Is the trampoline area at @addr (or, @addr 0, a candidate for it) in
 * @pid's maps: anonymous, private, rwx, exactly @len bytes? */
static unsigned long find_tramp(pid_t pid, unsigned long addr, unsigned long len)
{
	char path[64], line[512];
	unsigned long found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long s, e, off, ino;
		char perms[8];
		int n = 0;

		if (sscanf(line, "%lx-%lx %7s %lx %*x:%*x %lu%n", &s, &e, perms, &off, &ino, &n) != 5)
			continue;
		if (strcmp(perms, "rwxp") || ino || e - s != len)
			continue;
		while (line[n] == ' ')
			n++;
		if (line[n] != '\n' && line[n])
			continue;	/* named: not ours */
		if (addr && s != addr)
			continue;
		if (!addr) {
			/* being mapped when kup died: zeroes or our code */
			unsigned char code[16], zero[16] = { 0 };

			if (puppet_read(pid, s, code, sizeof(code)))
				continue;
			if (memcmp(code, zero, sizeof(code)) &&
			    memcmp(code, arch_puppet_code, arch_puppet_code_len))
				continue;
		}
		found = s;
	}
	fclose(f);
	return found;
}

static bool in_code(unsigned long ip, unsigned long at)
{
	return at && ip >= at && ip <= at + arch_puppet_code_len;
}

static unsigned long puppet_word(void)
{
	unsigned long code;

	memcpy(&code, arch_puppet_code, sizeof(code));
	return code;
}

/* The word at @at in @tid, or ~0 with errno set. */
static unsigned long peek(pid_t tid, unsigned long at)
{
	errno = 0;
	return ptrace(PTRACE_PEEKDATA, tid, at, 0);
}

/*
 * Is @tid of @pid (seized, stopped) parked in kup's code, where a dump that
 * died during an injected syscall left it (arch_puppet_code): in one of its
 * trampolines (@taddr: their addresses now), or at a word still patched?
 * No thread of the tree runs there on its own (puppet.c, patch_site).
 */
static bool parked(const struct journal *j, const unsigned long *taddr, pid_t pid, pid_t tid,
		   unsigned long ip)
{
	for (size_t i = 0; i < j->ntramps; i++)
		if (j->tramps[i].pid == pid && in_code(ip, taddr[i]))
			return true;
	for (size_t i = 0; i < j->npatches; i++) {
		const struct jpatch *p = &j->patches[i];

		if (p->pid == pid && in_code(ip, p->ip) && peek(tid, p->ip) == puppet_word() && !errno)
			return true;
	}
	return false;
}

/* Put the journaled registers back on a parked thread. */
static int unpark(const struct journal *j, const unsigned long *taddr, const struct jmask *m)
{
	struct arch_regs r;
	int err = arch_get_regs(m->tid, &r);

	if (err || !parked(j, taddr, m->pid, m->tid, arch_regs_ip(&r)))
		return err;
	for (size_t i = j->nregs; i-- > 0;) {
		const struct jregs *g = &j->regs[i];

		if (g->pid != m->pid || g->tid != m->tid || g->start != m->start)
			continue;
		err = arch_set_regs(m->tid, &g->r);
		if (!err)
			log_info("tid %d: taken back from kup's code at 0x%lx, its registers put back",
				 m->tid, arch_regs_ip(&r));
		return err;
	}
	log_err("tid %d: parked in kup's code at 0x%lx and no registers journaled: left there",
		m->tid, arch_regs_ip(&r));
	return -ENOENT;
}

/* A patch site in seized @pid: *at, holding *orig. */
static int own_site(pid_t pid, unsigned long *at, unsigned long *orig)
{
	struct arch_regs r;
	int err = arch_get_regs(pid, &r);

	if (err)
		return err;
	*at = puppet_patch_site(pid, arch_regs_ip(&r));
	*orig = peek(pid, *at);
	return errno ? -errno : 0;
}

/*
 * Unmap @t's trampoline at @addr.  The munmap runs from the patched word the
 * dump used for it (puppet_syscall_patched: killed again, we leave the
 * thread on its registers or parked there, and the journal says so still),
 * not from the trampoline, which it would return into once gone.
 */
static int undo_tramp(struct seized *s, const struct journal *j, const struct jtramp *t,
		      unsigned long addr, char *what, size_t wlen)
{
	struct puppet pp = { .pid = t->pid, .tramp = addr };
	unsigned long a[6] = { addr, t->len };
	const struct jpatch *site = NULL;
	unsigned long cur, at;
	long ret;
	int err;

	for (size_t i = j->npatches; i-- > 0 && !site;) {
		const struct jpatch *p = &j->patches[i];

		if (p->pid != t->pid || !is_seized(s, p->tid) || !same_task(p->pid, p->tid, p->start))
			continue;
		cur = peek(p->tid, p->ip);
		if (!errno && (cur == p->orig || cur == puppet_word()))
			site = p;
	}
	if (site) {
		err = puppet_syscall_patched(t->pid, site->tid, site->ip, site->orig, &ret,
					     __NR_munmap, a, NULL);
	} else if (is_seized(s, t->pid) && !own_site(t->pid, &at, &cur)) {
		/* none journaled (a restore's): ours, journaled in the journal
		 * being replayed (ckpt_recover) */
		err = puppet_syscall_patched(t->pid, t->pid, at, cur, &ret, __NR_munmap, a, NULL);
	} else {
		/* no usable site: from the area itself, code put there first */
		err = puppet_write(t->pid, addr, arch_puppet_code, arch_puppet_code_len);
		if (!err)
			err = seize(s, t->pid);
		if (!err)
			err = puppet_syscall_last(&pp, t->pid, &ret, __NR_munmap, a, NULL);
	}
	if (!err && ret)
		err = log_errno(-ret, "pid %d: cannot unmap kup's trampoline at 0x%lx", t->pid, addr);
	if (!err)
		snprintf(what, wlen, "pid %d: trampoline at 0x%lx unmapped", t->pid, addr);
	return err;
}

/* The area of @t in its task: its address, or 0 (never mapped, gone, or
 * not holding kup's code: left alone). */
static unsigned long tramp_now(const struct jtramp *t)
{
	unsigned char code[16];
	unsigned long addr;

	if (t->undone || !same_task(t->pid, t->pid, t->start))
		return 0;
	addr = find_tramp(t->pid, t->addr, t->len);
	if (!addr || !t->addr)
		return addr;
	if (puppet_read(t->pid, addr, code, arch_puppet_code_len) ||
	    memcmp(code, arch_puppet_code, arch_puppet_code_len)) {
		log_warn("pid %d: the area at 0x%lx does not hold kup's trampoline: left alone",
			 t->pid, addr);
		return 0;
	}
	return addr;
}

static int undo_patch(const struct seized *s, const struct jpatch *p)
{
	unsigned long cur;

	if (!is_seized(s, p->tid))
		return 0;
	cur = peek(p->tid, p->ip);
	if (errno)
		return log_errno(errno, "pid %d: cannot read code at 0x%lx", p->pid, p->ip);
	if (cur != puppet_word())
		return 0;
	if (ptrace(PTRACE_POKEDATA, p->tid, p->ip, p->orig))
		return log_errno(errno, "pid %d: cannot restore code at 0x%lx", p->pid, p->ip);
	log_info("pid %d: code at 0x%lx put back", p->pid, p->ip);
	return 0;
}

static int undo_sk(const struct jsk *k)
{
	int pfd, fd, ret = 0, off = TCP_REPAIR_OFF_NO_WP;
	struct stat sb;

	pfd = syscall(SYS_pidfd_open, k->pid, 0);
	if (pfd < 0)
		return 0;	/* gone: so is the socket's file */
	fd = syscall(SYS_pidfd_getfd, pfd, k->fd, 0);
	close(pfd);
	if (fd < 0)
		return 0;	/* closed meanwhile */
	if (fstat(fd, &sb) || !S_ISSOCK(sb.st_mode) || sb.st_ino != k->ino) {
		close(fd);
		return 0;	/* another file now */
	}
	if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off)))
		ret = log_errno(errno, "pid %d fd %d: cannot leave TCP repair mode", k->pid, k->fd);
	else if (k->reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &k->reuse, sizeof(k->reuse)))
		ret = log_errno(errno, "pid %d fd %d: cannot set SO_REUSEADDR back", k->pid, k->fd);
	close(fd);
	if (!ret)
		log_info("pid %d fd %d: socket out of TCP repair mode", k->pid, k->fd);
	return ret;
}

/* A file descriptor on the network namespace @dev:@ino, or -1. */
static int find_netns(const struct jlock *l)
{
	char path[PATH_MAX];
	struct stat sb;
	struct dirent *de;
	DIR *d;
	int fd = -1;

	if (l->pid > 0) {
		snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)l->pid);
		if (!stat(path, &sb) && sb.st_ino == l->ino && (!l->dev || sb.st_dev == l->dev))
			fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			return fd;
	}
	/* ours, a named one, or any process's */
	if (!stat("/proc/self/ns/net", &sb) && sb.st_ino == l->ino && (!l->dev || sb.st_dev == l->dev))
		return open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	d = opendir("/run/netns");
	while (d && fd < 0 && (de = readdir(d))) {
		snprintf(path, sizeof(path), "/run/netns/%s", de->d_name);
		if (de->d_name[0] != '.' && !stat(path, &sb) && sb.st_ino == l->ino &&
		    (!l->dev || sb.st_dev == l->dev))
			fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (d)
		closedir(d);
	d = opendir("/proc");
	while (d && fd < 0 && (de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/ns/net", de->d_name);
		if (!stat(path, &sb) && sb.st_ino == l->ino && (!l->dev || sb.st_dev == l->dev))
			fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (d)
		closedir(d);
	return fd;
}

static int undo_lock(const struct jlock *l, struct ckpt_recover_item *it)
{
	int nsfd = find_netns(l), ret;

	if (nsfd < 0)
		return 0;	/* the namespace is gone, and its tables with it */
	ret = netlock_remove(l->name, nsfd);
	close(nsfd);
	if (!ret && it)
		it->locks++;
	return ret;
}

/* A kup image: "*.img" starting with the image magic, or a page blob. */
static bool kup_image_name(int dfd, const char *name)
{
	size_t l = strlen(name);
	char magic[8];
	bool ok;
	int fd;

	if (l < 5 || strcmp(name + l - 4, ".img"))
		return false;
	if (!strncmp(name, "pages-", 6))
		return true;
	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return false;
	ok = read(fd, magic, 8) == 8 && !memcmp(magic, IMG_MAGIC, 8);
	close(fd);
	return ok;
}

/* Does directory @dir hold an inventory.img? */
static bool has_inventory(const char *dir)
{
	char path[PATH_MAX + 16];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/inventory.img", dir);
	return !lstat(path, &sb);
}

/*
 * Remove the images a dump left in @dir without committing them, when @dir
 * holds no checkpoint (no inventory.img: the dir store's commit removes an
 * earlier one before it moves anything in), or when its inventory.img is
 * the dump's own (@inventory_too: the dump's staging directory, or the
 * store once the commit moved it in).  Only kup's regular files go; with
 * @rmdir_too (the staging directory, the dump's alone) every regular file
 * and the directory too once empty.
 */
static int remove_partial(const char *dir, bool rmdir_too, bool inventory_too, unsigned *removed)
{
	struct dirent *de;
	struct stat sb;
	DIR *d;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (dfd < 0)
		return errno == ENOENT ? 0 : log_errno(errno, "cannot open %s", dir);
	if (inventory_too) {
		/* first, so that it never looks complete with images missing */
		if (!unlinkat(dfd, "inventory.img", 0))
			(*removed)++;
	} else if (!fstatat(dfd, "inventory.img", &sb, AT_SYMLINK_NOFOLLOW)) {
		close(dfd);
		return 0;	/* a complete checkpoint: not ours to remove */
	}
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -errno;
	}
	while ((de = readdir(d))) {
		if (fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) || !S_ISREG(sb.st_mode))
			continue;
		/* a staging directory (@rmdir_too) holds nothing but ours,
		 * some maybe killed before their header */
		if (!rmdir_too && !kup_image_name(dfd, de->d_name))
			continue;
		if (!unlinkat(dfd, de->d_name, 0))
			(*removed)++;
	}
	closedir(d);
	if (rmdir_too && rmdir(dir) && errno != ENOTEMPTY && errno != ENOENT)
		log_warn_errno(errno, "cannot remove %s", dir);
	return 0;
}

static void kill_task(pid_t pid, unsigned long long start, unsigned *n)
{
	if (same_task(pid, pid, start) && !kill(pid, SIGKILL))
		(*n)++;
}

static unsigned long long start_of(const struct journal *j, pid_t pid)
{
	for (size_t i = 0; i < j->nmasks; i++)
		if (j->masks[i].pid == pid && j->masks[i].tid == pid)
			return j->masks[i].start;
	for (size_t i = 0; i < j->ntramps; i++)
		if (j->tramps[i].pid == pid)
			return j->tramps[i].start;
	return 0;
}

/*
 * Put back every thread a dump froze, as it was: seized again, a thread
 * parked in kup's code back on its journaled registers, the trampolines
 * unmapped, the patched words put back, the sockets out of repair mode, the
 * masks restored, detached.
 */
static int undo_dump_tree(struct journal *j, struct ckpt_recover_item *it)
{
	struct seized s = { 0 };
	unsigned long *taddr;
	bool *stuck;
	char what[160];
	int ret = 0, err;

	taddr = calloc(j->ntramps + 1, sizeof(*taddr));
	stuck = calloc(j->ntramps + 1, sizeof(*stuck));
	if (!taddr || !stuck) {
		free(taddr);
		free(stuck);
		return -ENOMEM;
	}
	for (size_t i = 0; i < j->nmasks; i++) {
		struct jmask *m = &j->masks[i];

		if (!same_task(m->pid, m->tid, m->start))
			continue;
		err = seize(&s, m->tid);
		ret = ret ? ret : err;
	}
	for (size_t i = 0; i < j->ntramps; i++)
		taddr[i] = tramp_now(&j->tramps[i]);
	for (size_t i = 0; i < j->nmasks; i++) {
		struct jmask *m = &j->masks[i];

		if (!is_seized(&s, m->tid))
			continue;
		err = unpark(j, taddr, m);
		if (err == -ENOENT) {
			/* its code must stay: it would run on into nothing */
			for (size_t k = 0; k < j->ntramps; k++)
				stuck[k] |= j->tramps[k].pid == m->pid;
		}
		ret = ret ? ret : err;
	}
	for (size_t i = 0; i < j->ntramps; i++) {
		struct jtramp *t = &j->tramps[i];

		if (!taddr[i] || stuck[i])
			continue;
		what[0] = 0;
		err = undo_tramp(&s, j, t, taddr[i], what, sizeof(what));
		if (what[0]) {
			it->trampolines++;
			log_info("%s", what);
		}
		ret = ret ? ret : err;
	}
	for (size_t i = 0; i < j->npatches; i++) {
		bool keep = false;

		for (size_t k = 0; k < j->ntramps; k++)
			keep |= stuck[k] && j->tramps[k].pid == j->patches[i].pid;
		if (keep || !same_task(j->patches[i].pid, j->patches[i].tid, j->patches[i].start))
			continue;
		err = undo_patch(&s, &j->patches[i]);
		ret = ret ? ret : err;
	}
	for (size_t i = 0; i < j->nsks; i++) {
		if (!same_task(j->sks[i].pid, j->sks[i].pid, j->sks[i].start))
			continue;
		err = undo_sk(&j->sks[i]);
		if (!err)
			it->sockets++;
		ret = ret ? ret : err;
	}
	for (size_t i = 0; i < j->nmasks; i++) {
		struct jmask *m = &j->masks[i];

		if (!is_seized(&s, m->tid))
			continue;
		if (ptrace(PTRACE_SETSIGMASK, m->tid, sizeof(uint64_t), &m->mask))
			ret = ret ? ret : log_errno(errno, "tid %d: cannot restore its signal mask",
						     m->tid);
		else
			it->threads++;
	}
	for (size_t i = 0; i < s.n; i++)
		ptrace(PTRACE_DETACH, s.tids[i], 0, 0);
	for (size_t i = 0; i < j->nstopped; i++)
		if (same_task(j->stopped[i], j->stopped[i], start_of(j, j->stopped[i])))
			kill(j->stopped[i], SIGSTOP);
	free(s.tids);
	free(taddr);
	free(stuck);
	return ret;
}

static int replay_dump(struct journal *j, struct ckpt_recover_item *it)
{
	int ret = 0, err;

	if (j->committed && !j->leave_running) {
		/* past the commit the dump completes: the tree goes, its
		 * connections stay locked for the restore of the images */
		for (size_t i = 0; i < j->nmasks; i++)
			if (j->masks[i].pid == j->masks[i].tid)
				kill_task(j->masks[i].pid, j->masks[i].start, &it->killed);
		snprintf(it->action, sizeof(it->action), "completed: the dump was committed, "
			 "the tree killed as asked");
		return 0;
	}
	ret = undo_dump_tree(j, it);
	for (size_t i = 0; i < j->nlocks; i++) {
		err = undo_lock(&j->locks[i], it);
		ret = ret ? ret : err;
	}
	if (!j->committed) {
		/* killed before the commit's line: not committed, as for a
		 * failed dump.  The dir store's staging directory (`partial`)
		 * goes whole.  Its inventory.img is moved into the store last:
		 * while the staging directory still holds it, an inventory.img
		 * in the store is the previous checkpoint's, complete (the
		 * commit removes it before touching anything else); once
		 * moved, it is this dump's, not committed, and goes first. */
		bool ours = j->committing;

		if (j->partial[0]) {
			ours &= !has_inventory(j->partial);
			remove_partial(j->partial, true, true, &it->images);
		}
		if (!strcmp(j->store_kind, "dir"))
			remove_partial(j->store, false, ours, &it->images);
		/* a ppp store's open transaction was never committed: the
		 * store still opens as its previous checkpoint */
	}
	snprintf(it->action, sizeof(it->action), "%s",
		 j->committed ? "tree left running, the complete checkpoint kept" :
		 "tree left running, the unfinished checkpoint removed");
	return ret;
}

static int replay_restore(struct journal *j, struct ckpt_recover_item *it)
{
	int ret;

	if (j->running) {
		snprintf(it->action, sizeof(it->action), "nothing to undo: the tree was running");
		return 0;
	}
	if (j->complete) {
		/* every task complete and parked: finish what the restore was
		 * doing (registers, trampolines, repair mode, masks, then the
		 * locks) and let it go */
		ret = undo_dump_tree(j, it);
		for (size_t i = 0; i < j->nlocks; i++) {
			int err = undo_lock(&j->locks[i], it);

			ret = ret ? ret : err;
		}
		snprintf(it->action, sizeof(it->action), "the restored tree completed and let go");
		return ret;
	}
	/* half-restored: nothing of it may stay.  Its connections were
	 * closed in repair mode, silently: their locks stay with the
	 * images, for a retry to take them over */
	for (size_t i = 0; i < j->ntasks; i++)
		kill_task(j->tasks[i].pid, j->tasks[i].start, &it->killed);
	snprintf(it->action, sizeof(it->action), "the unfinished restore's tasks killed");
	return 0;
}

static int replay(struct journal *j, const struct ckpt_recover_opts *o,
		  struct ckpt_recover_item *it)
{
	snprintf(it->journal, sizeof(it->journal), "%.200s", j->path);
	snprintf(it->op, sizeof(it->op), "%s", j->op);
	it->owner = j->owner;
	if (!strcmp(j->op, "dump"))
		return replay_dump(j, it);
	if (!strcmp(j->op, "restore"))
		return replay_restore(j, it);
	snprintf(it->action, sizeof(it->action), "nothing to undo");
	if (o->switch_hook) {
		struct ckpt_recover_switch sw = {
			.kexec_loaded = j->kexec_loaded, .kexec_exec = j->kexec_exec,
			.tcp = j->tcp, .root = j->dump_root,
			.root_alive = same_task(j->dump_root, j->dump_root, j->dump_root_start),
			.store = j->dump_store[0] ? j->dump_store : NULL,
		};
		return o->switch_hook(&sw, it);
	}
	return 0;
}

static bool owner_alive(const struct journal *j)
{
	return same_task(j->owner, j->owner, j->owner_start);
}

/* A journal with no whole header line (journal_read: -ENODATA), named as
 * journal_begin() names them, whose kup is gone: killed between creating
 * it and writing its first line, before any change. */
static bool headless_gone(const char *name)
{
	char op[16];
	int pid, n = 0;
	unsigned long long start;

	if (sscanf(name, "%15[a-z]-%d-%llu%n", op, &pid, &start, &n) != 3 || name[n] ||
	    (strcmp(op, "dump") && strcmp(op, "restore") && strcmp(op, "switch")))
		return false;
	return !same_task(pid, pid, start);
}

/* Dumps first (a committed one kills its tree), then restores and switches
 * (a switch may bring the tree back from the store). */
static int op_rank(const char *name)
{
	return !strncmp(name, "dump-", 5) ? 0 : !strncmp(name, "restore-", 8) ? 1 : 2;
}

int ckpt_recover(const struct ckpt_recover_opts *o, struct ckpt_recover_item **items, size_t *nitems)
{
	struct ckpt_recover_item *v = NULL;
	size_t n = 0;
	int ret = 0;
	DIR *d;

	*items = NULL;
	*nitems = 0;
	if (access(JOURNAL_DIR, F_OK))
		return 0;
	ret = journal_dir(false);
	if (ret)
		return ret;
	for (int rank = 0; rank < 3; rank++) {
		struct dirent *de;

		d = opendir(JOURNAL_DIR);
		if (!d)
			return log_errno(errno, "cannot read %s", JOURNAL_DIR);
		while ((de = readdir(d))) {
			char path[PATH_MAX];
			struct journal *j;
			struct stat sb;
			int fd, err;

			if (de->d_name[0] == '.' || op_rank(de->d_name) != rank)
				continue;
			snprintf(path, sizeof(path), "%s/%s", JOURNAL_DIR, de->d_name);
			fd = open(path, O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
			if (fd < 0)
				continue;
			if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) || sb.st_uid != 0) {
				close(fd);	/* not one of ours */
				continue;
			}
			/* being replayed by another kup: wait for it (a replay
			 * is short), so that nobody finds the tree half put
			 * back once its own recovery returned; then it may be
			 * gone */
			while (flock(fd, LOCK_EX) && errno == EINTR)
				;
			if (fstat(fd, &sb) || !sb.st_nlink) {
				close(fd);
				continue;
			}
			err = journal_read(fd, path, &j);
			if (err == -ENODATA && headless_gone(de->d_name))
				unlink(path);	/* its kup died creating it */
			if (err) {
				close(fd);	/* else: being created, or not ours */
				continue;
			}
			if (owner_alive(j) || (jfd >= 0 && !strcmp(path, jpath))) {
				journal_free(j);
				close(fd);
				continue;
			}
			if (!GROW(v, n)) {
				journal_free(j);
				close(fd);
				ret = -ENOMEM;
				break;
			}
			/* what the replay itself patches is journaled in the
			 * journal it replays: killed, the next one undoes it */
			if (jfd < 0) {
				jfd = fd;
				err = replay(j, o, &v[n]);
				jfd = -1;
			} else {
				err = replay(j, o, &v[n]);
			}
			v[n].err = err;
			if (!err)
				unlink(path);
			else
				ret = ret ? ret : err;
			n++;
			journal_free(j);
			close(fd);
		}
		closedir(d);
	}
	*items = v;
	*nitems = n;
	return ret;
}
