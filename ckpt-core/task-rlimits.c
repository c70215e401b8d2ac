// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Resource limits: read from /proc/PID/limits at dump, set by an injected
 * prlimit at restore (a limit that cannot be set is a difference).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "task-state.h"

static uint64_t parse_limit(const char *s)
{
	while (*s == ' ')
		s++;
	if (!strncmp(s, "unlimited", 9))
		return RLIM_INFINITY;
	return strtoull(s, NULL, 10);
}

static int dump_rlimits(struct task_dump *p, CoreEntry *c)
{
	char *buf = proc_read_file(p->pid, "limits", NULL), *line, *save = NULL;
	int res = 0;

	if (!buf)
		return log_errno(errno, "pid %d: cannot read /proc/%d/limits", p->pid, p->pid);
	c->rlimits = calloc(RLIM_NLIMITS, sizeof(*c->rlimits));
	if (!c->rlimits) {
		free(buf);
		return -ENOMEM;
	}
	line = strtok_r(buf, "\n", &save);	/* header */
	for (line = strtok_r(NULL, "\n", &save); line && res < RLIM_NLIMITS;
	     line = strtok_r(NULL, "\n", &save), res++) {
		RlimitEntry *e;

		if (strlen(line) < 47)
			continue;
		e = malloc(sizeof(*e));
		if (!e) {
			free(buf);
			return -ENOMEM;
		}
		rlimit_entry__init(e);
		e->resource = res;
		e->cur = parse_limit(line + 26);
		e->max = parse_limit(line + 47);
		c->rlimits[c->n_rlimits++] = e;
	}
	free(buf);
	return 0;
}

static const char *rlimit_name(unsigned int r)
{
	static const char *const names[RLIM_NLIMITS] = {
		"CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE", "MEMLOCK", "AS",
		"LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME",
	};

	return r < RLIM_NLIMITS ? names[r] : "?";
}

static void rlim_str(char *buf, size_t len, uint64_t cur, uint64_t max)
{
	char c[24] = "unlimited", m[24] = "unlimited";

	if (cur != RLIM_INFINITY)
		snprintf(c, sizeof(c), "%" PRIu64, cur);
	if (max != RLIM_INFINITY)
		snprintf(m, sizeof(m), "%" PRIu64, max);
	snprintf(buf, len, "%s/%s", c, m);
}

/* Resource limit @r could not be set (errno @err): what does the task have? */
static int rlimit_difference(struct task_rst *tk, const RlimitEntry *r, int err)
{
	pid_t pid = tk->pid;
	struct rlimit now = { 0, 0 };
	char what[48], d[64], a[64];

	if (prlimit(pid, r->resource, NULL, &now))
		return log_errno(errno, "pid %d: cannot read resource limit %s", pid,
				 rlimit_name(r->resource));
	snprintf(what, sizeof(what), "resource limit %s (soft/hard)", rlimit_name(r->resource));
	rlim_str(d, sizeof(d), r->cur, r->max);
	rlim_str(a, sizeof(a), now.rlim_cur, now.rlim_max);
	return difference(tk, err, what, d, a);
}

static int restore_rlimits(struct task_rst *tk)
{
	CoreEntry *c = tk->core;
	pid_t pid = tk->pid;
	int err = 0;

	for (size_t i = 0; !err && i < c->n_rlimits; i++) {
		RlimitEntry *r = c->rlimits[i];
		uint64_t lim[2] = { r->cur, r->max };
		long ret;

		err = task_scratch_put(tk, 512, lim, sizeof(lim));
		if (!err)
			err = task_inj(tk, pid, SYS_prlimit64, "prlimit", &ret, 0, r->resource,
				       tk->pp->scratch + 512, 0, 0, 0);
		if (!err && ret)
			err = rlimit_difference(tk, r, -ret);
	}
	return err;
}

static int validate_rlimits(const CoreEntry *c, uint32_t pid)
{
	for (size_t i = 0; i < c->n_rlimits; i++) {
		const RlimitEntry *r = c->rlimits[i];

		if (!r || r->resource >= RLIM_NLIMITS || r->cur > r->max) {
			log_err("core-%u.img: bad resource limit %zu (resource %u)", pid, i,
				r ? r->resource : 0);
			return -EINVAL;
		}
	}
	return 0;
}

const struct task_state_ops task_rlimits_ops = {
	.name = "resource limits",
	.dump = dump_rlimits,
	.validate = validate_rlimits,
	.restore = { [TS_LATE] = restore_rlimits },
};
