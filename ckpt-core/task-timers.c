// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Interval timers (setitimer) and POSIX timers: read by injected calls and
 * /proc/PID/timers at dump, recreated with their ids and armed at restore.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

#include "task-state.h"

static int dump_timers(struct task_dump *p, CoreEntry *c)
{
	char *buf, *line, *save = NULL;
	PosixTimerEntry *cur = NULL;
	int err;

	c->itimers = calloc(3, sizeof(*c->itimers));
	if (!c->itimers)
		return -ENOMEM;
	for (int which = 0; which < 3; which++) {
		struct itimerval it;
		long ret;

		err = PSYS(p->pp, p->pid, &ret, SYS_getitimer, which, p->pp->scratch);
		if (!err && !ret)
			err = task_read_scratch(p, &it, sizeof(it));
		if (err)
			return err;
		/* an expired interval timer whose signal is still pending reads
		 * value 0: it is armed all the same */
		if (!it.it_value.tv_sec && !it.it_value.tv_usec &&
		    !it.it_interval.tv_sec && !it.it_interval.tv_usec)
			continue;
		ItimerEntry *e = malloc(sizeof(*e));
		if (!e)
			return -ENOMEM;
		itimer_entry__init(e);
		e->which = which;
		e->value_us = it.it_value.tv_sec * 1000000ULL + it.it_value.tv_usec;
		e->interval_us = it.it_interval.tv_sec * 1000000ULL + it.it_interval.tv_usec;
		c->itimers[c->n_itimers++] = e;
	}

	buf = proc_read_file(p->pid, "timers", NULL);
	if (!buf)
		return 0;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "ID: ", 4)) {
			PosixTimerEntry **nv = realloc(c->posix_timers,
						       (c->n_posix_timers + 1) * sizeof(*nv));
			cur = calloc(1, sizeof(*cur));
			if (!nv || !cur) {
				free(buf);
				free(cur);
				return -ENOMEM;
			}
			c->posix_timers = nv;
			posix_timer_entry__init(cur);
			cur->id = atoi(line + 4);
			c->posix_timers[c->n_posix_timers++] = cur;
		} else if (cur && !strncmp(line, "signal: ", 8)) {
			char *slash = strchr(line, '/');
			cur->signo = atoi(line + 8);
			if (slash)
				cur->sival = strtoull(slash + 1, NULL, 16);
		} else if (cur && !strncmp(line, "notify: ", 8)) {
			char *dot = strchr(line, '.');
			if (!strncmp(line + 8, "thread", 6))
				cur->notify = SIGEV_THREAD_ID;
			else if (!strncmp(line + 8, "signal", 6))
				cur->notify = SIGEV_SIGNAL;
			else
				cur->notify = SIGEV_NONE;
			if (dot) {
				cur->has_notify_tid = true;
				cur->notify_tid = atoi(dot + 1);
			}
		} else if (cur && !strncmp(line, "ClockID: ", 9)) {
			cur->clockid = atoi(line + 9);
		}
	}
	free(buf);
	for (size_t i = 0; i < c->n_posix_timers; i++) {
		PosixTimerEntry *e = c->posix_timers[i];
		struct itimerspec its;
		long ret;

		err = PSYS(p->pp, p->pid, &ret, SYS_timer_gettime, e->id, p->pp->scratch);
		if (!err && !ret)
			err = task_read_scratch(p, &its, sizeof(its));
		if (err)
			return err;
		if (ret)
			return log_errno(-ret, "pid %d: cannot read POSIX timer %d", p->pid, e->id);
		e->value_ns = its.it_value.tv_sec * 1000000000ULL + its.it_value.tv_nsec;
		e->interval_ns = its.it_interval.tv_sec * 1000000000ULL + its.it_interval.tv_nsec;
	}
	return 0;
}

static int restore_timers(struct task_rst *tk)
{
	CoreEntry *c = tk->core;
	pid_t pid = tk->pid;
	bool restore_ids = false;
	int err = 0;

	if (c->n_posix_timers) {
		long ret;

		/* PR_TIMER_CREATE_RESTORE_IDS (Linux 6.16+): timer_create takes the id */
		err = task_inj(tk, pid, SYS_prctl, "prctl", &ret, 77, 1, 0, 0, 0, 0);
		if (err)
			return err;
		restore_ids = ret == 0;
	}
	for (size_t i = 0; i < c->n_itimers && !err; i++) {
		ItimerEntry *e = c->itimers[i];
		struct itimerval it = {
			{ e->interval_us / 1000000, e->interval_us % 1000000 },
			{ e->value_us / 1000000, e->value_us % 1000000 },
		};

		if (e->which > 2)
			return log_errno(EINVAL, "core-%d.img: bad itimer", pid);
		if (!it.it_value.tv_sec && !it.it_value.tv_usec)
			it.it_value = it.it_interval;	/* expired, reloads when its signal is taken */
		err = task_scratch_put(tk, 512, &it, sizeof(it));
		if (!err)
			err = TASK_INJ(tk, pid, SYS_setitimer, "cannot restore an interval timer", e->which,
				  tk->pp->scratch + 512, 0, 0, 0, 0);
	}
	for (size_t i = 0; i < c->n_posix_timers && !err; i++) {
		PosixTimerEntry *e = c->posix_timers[i];
		struct {
			uint64_t value;
			int32_t signo, notify;
			int32_t tid;
			int32_t pad[11];
		} sev = { e->sival, e->signo, e->notify, (int32_t)e->notify_tid };
		struct itimerspec its = {
			{ e->interval_ns / 1000000000, e->interval_ns % 1000000000 },
			{ e->value_ns / 1000000000, e->value_ns % 1000000000 },
		};
		int id = -1, tries = 0;
		long ret;

		err = task_scratch_put(tk, 512, &sev, sizeof(sev));
		if (!err && restore_ids) {
			/* the kernel takes the id we ask for */
			err = task_scratch_put(tk, 600, &e->id, sizeof(e->id));
			if (!err)
				err = task_inj(tk, pid, SYS_timer_create, "timer_create", &ret, e->clockid,
					  tk->pp->scratch + 512, tk->pp->scratch + 600, 0, 0, 0);
			if (!err && ret)
				return log_errno(-ret, "pid %d: cannot create POSIX timer %d", pid, e->id);
			if (!err)
				err = puppet_read(pid, tk->pp->scratch + 600, &id, sizeof(id));
		}
		/* older kernels hand ids out in order: create until we get ours */
		while (!err && !restore_ids && id < e->id && tries++ < 4096) {
			err = task_inj(tk, pid, SYS_timer_create, "timer_create", &ret, e->clockid,
				  tk->pp->scratch + 512, tk->pp->scratch + 600, 0, 0, 0);
			if (!err && ret)
				return log_errno(-ret, "pid %d: cannot create POSIX timer %d", pid, e->id);
			if (!err)
				err = puppet_read(pid, tk->pp->scratch + 600, &id, sizeof(id));
			if (!err && id < e->id)
				err = TASK_INJ(tk, pid, SYS_timer_delete, "timer_delete", id, 0, 0, 0, 0, 0);
		}
		if (!err && id != e->id)
			return log_errno(EBUSY, "pid %d: cannot get POSIX timer id %d (got %d)", pid, e->id, id);
		if (!err)
			err = task_scratch_put(tk, 700, &its, sizeof(its));
		if (!err && e->value_ns)
			err = TASK_INJ(tk, pid, SYS_timer_settime, "cannot arm a POSIX timer", id, 0,
				  tk->pp->scratch + 700, 0, 0, 0);
	}
	if (!err && restore_ids)
		err = TASK_INJ(tk, pid, SYS_prctl, "cannot leave timer-id restore mode", 77, 0, 0, 0, 0, 0);
	return err;
}

static int validate_timers(const CoreEntry *c, uint32_t pid)
{
	for (size_t i = 0; i < c->n_itimers; i++)
		if (!c->itimers[i] || c->itimers[i]->which > 2) {
			log_err("core-%u.img: bad interval timer %zu", pid, i);
			return -EINVAL;
		}
	for (size_t i = 0; i < c->n_posix_timers; i++)
		if (!c->posix_timers[i] || c->posix_timers[i]->id < 0) {
			log_err("core-%u.img: bad POSIX timer %zu", pid, i);
			return -EINVAL;
		}
	return 0;
}

const struct task_state_ops task_timers_ops = {
	.name = "timers",
	.dump = dump_timers,
	.validate = validate_timers,
	.restore = { [TS_LATE] = restore_timers },
};
