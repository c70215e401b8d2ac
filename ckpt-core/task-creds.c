// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Credentials: ids, groups, capabilities, securebits and no_new_privs from
 * /proc/PID/status at dump, set in every thread late in the restore, and the
 * audit login uid.  A task of a tree with a user namespace of its own gets
 * its ids before it joins it (creds_join_userns), its capabilities inside.
 */
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "task-state.h"

static int parse_ids(const char *status, const char *key, uint32_t **out, size_t *n)
{
	char val[1024], *p, *q;
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	if (proc_status_field(status, key, val, sizeof(val)))
		return -ENOENT;
	for (p = val;; p = q) {
		unsigned long v = strtoul(p, &q, 10);

		if (q == p)
			break;
		if (*n == cap) {
			uint32_t *nv;
			cap = cap ? cap * 2 : 8;
			nv = realloc(*out, cap * sizeof(*nv));
			if (!nv)
				return -ENOMEM;
			*out = nv;
		}
		(*out)[(*n)++] = v;
	}
	return 0;
}

static uint64_t status_hex(const char *status, const char *key)
{
	char val[64];

	if (proc_status_field(status, key, val, sizeof(val)))
		return 0;
	return strtoull(val, NULL, 16);
}

/* The audit login uid (restore_loginuid). */
static void dump_loginuid(struct task_dump *p, CoreEntry *c)
{
	char *s = proc_read_file(p->pid, "loginuid", NULL);

	if (s) {
		c->has_loginuid = true;
		c->loginuid = strtoul(s, NULL, 10);
		free(s);
	}
}

static int dump_creds(struct task_dump *p, CoreEntry *c)
{
	const char *status = p->status;
	CredsEntry *cr = malloc(sizeof(*cr));
	char val[64];
	long ret;
	int err;

	dump_loginuid(p, c);
	if (!cr)
		return -ENOMEM;
	creds_entry__init(cr);
	c->creds = cr;
	if (parse_ids(status, "Uid", &cr->uids, &cr->n_uids) || cr->n_uids != 4 ||
	    parse_ids(status, "Gid", &cr->gids, &cr->n_gids) || cr->n_gids != 4) {
		log_err("pid %d: cannot parse credentials from /proc/%d/status", p->pid, p->pid);
		return -EINVAL;
	}
	parse_ids(status, "Groups", &cr->groups, &cr->n_groups);
	cr->cap_inh = status_hex(status, "CapInh");
	cr->cap_prm = status_hex(status, "CapPrm");
	cr->cap_eff = status_hex(status, "CapEff");
	cr->cap_bnd = status_hex(status, "CapBnd");
	cr->cap_amb = status_hex(status, "CapAmb");
	if (!proc_status_field(status, "NoNewPrivs", val, sizeof(val)))
		cr->no_new_privs = atoi(val);
	err = PSYS(p->pp, p->pid, &ret, SYS_prctl, PR_GET_SECUREBITS);
	if (err)
		return err;
	cr->securebits = ret;
	return 0;
}

/*
 * The audit login uid can only be written by the task itself
 * (/proc/self/loginuid), with CAP_AUDIT_CONTROL, so before its credentials
 * are set; the kernel gives it a new audit session id then (the session id
 * cannot be chosen).  Written only when the stub's differs.  Where it
 * cannot be (loginuid made immutable, no CAP_AUDIT_CONTROL) the restore
 * fails, or with --allow-differences warns and the task keeps the
 * restorer's.
 */
static int restore_loginuid(struct task_rst *tk)
{
	pid_t pid = tk->pid;
	char *cur, val[16];
	long fd, ret;
	int err, len;

	if (!tk->core->has_loginuid)
		return 0;
	cur = proc_read_file(pid, "loginuid", NULL);
	if (cur && strtoul(cur, NULL, 10) == tk->core->loginuid) {
		free(cur);
		return 0;
	}
	free(cur);
	len = snprintf(val, sizeof(val), "%u", tk->core->loginuid);
	err = task_scratch_put(tk, 512, "/proc/self/loginuid", sizeof("/proc/self/loginuid"));
	if (!err)
		err = task_scratch_put(tk, 600, val, len);
	if (!err)
		err = task_inj(tk, pid, SYS_openat, "openat(/proc/self/loginuid)", &fd, AT_FDCWD,
			  tk->pp->scratch + 512, O_WRONLY | O_CLOEXEC, 0, 0, 0);
	if (err)
		return err;
	if (fd < 0)
		return difference(tk, -fd, "audit login uid", val, "the restorer's");
	err = task_inj(tk, pid, SYS_write, "write(loginuid)", &ret, fd, tk->pp->scratch + 600, len, 0, 0, 0);
	if (!err)
		err = TASK_INJ(tk, pid, SYS_close, "close(loginuid)", fd, 0, 0, 0, 0, 0);
	if (!err && ret != len)
		err = difference(tk, ret < 0 ? -ret : EIO, "audit login uid", val,
				 "the restorer's");
	return err;
}

/* Groups, gids and uids as dumped: ids of kup's user namespace. */
static int set_ids(struct task_rst *tk, pid_t tid)
{
	CredsEntry *cr = tk->core->creds;
	int err = 0;

	if (cr->n_groups)
		err = task_scratch_put(tk, 1024, cr->groups, cr->n_groups * 4);
	if (!err)
		err = TASK_INJ(tk, tid, SYS_setgroups, "cannot set supplementary groups", cr->n_groups,
			  tk->pp->scratch + 1024, 0, 0, 0, 0);
	if (!err)
		err = TASK_INJ(tk, tid, SYS_setresgid, "cannot set gids", cr->gids[0], cr->gids[1], cr->gids[2], 0, 0, 0);
	if (!err)
		err = TASK_INJ(tk, tid, SYS_setfsgid, "setfsgid", cr->gids[3], 0, 0, 0, 0, 0);
	if (!err)
		err = TASK_INJ(tk, tid, SYS_setresuid, "cannot set uids", cr->uids[0], cr->uids[1], cr->uids[2], 0, 0, 0);
	if (!err)
		err = TASK_INJ(tk, tid, SYS_setfsuid, "setfsuid", cr->uids[3], 0, 0, 0, 0, 0);
	return err;
}

/*
 * The ids are set in kup's user namespace, where they were read: an id
 * the tree's namespace does not map (a group shown there as nobody) is
 * set as it was, and setgroups is denied in the namespace of a
 * PrivateUsers= service.  SECBIT_KEEP_CAPS keeps the permitted set through
 * the uid change; the effective one is raised from it again, for setns,
 * which needs CAP_SYS_ADMIN over the namespace.  Joining gives the task
 * every capability in it and the default securebits: restore_creds sets
 * the dumped ones, with the bounding and ambient sets, there.
 */
int creds_join_userns(struct task_rst *tk, int nsfd)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	pid_t pid = tk->pid;
	long ret;
	int err;

	if (nsfd < 0)
		return log_errno(EBADF, "pid %d: no fd of its user namespace", pid);
	err = restore_loginuid(tk);
	if (!err)
		err = TASK_INJ(tk, pid, SYS_prctl, "cannot set securebits", PR_SET_SECUREBITS,
			  1 << 4 /* SECBIT_KEEP_CAPS */, 0, 0, 0, 0);
	if (!err)
		err = set_ids(tk, pid);
	if (!err)
		err = task_scratch_put(tk, 512, &hdr, sizeof(hdr));
	if (!err)
		err = TASK_INJ(tk, pid, SYS_capget, "capget", tk->pp->scratch + 512,
			  tk->pp->scratch + 600, 0, 0, 0, 0);
	if (!err)
		err = puppet_read(pid, tk->pp->scratch + 600, data, sizeof(data));
	if (!err) {
		data[0].effective = data[0].permitted;
		data[1].effective = data[1].permitted;
		err = task_scratch_put(tk, 600, data, sizeof(data));
	}
	if (!err)
		err = task_scratch_put(tk, 512, &hdr, sizeof(hdr));
	if (!err)
		err = TASK_INJ(tk, pid, SYS_capset, "cannot raise its capabilities to join its user "
			  "namespace", tk->pp->scratch + 512, tk->pp->scratch + 600, 0, 0, 0, 0);
	if (!err)
		err = task_inj(tk, pid, SYS_setns, "setns(user)", &ret, nsfd, CLONE_NEWUSER, 0, 0, 0, 0);
	if (!err && ret < 0)
		err = log_errno(-ret, "pid %d: cannot join its user namespace", pid);
	return err;
}

static int restore_creds(struct task_rst *tk, pid_t tid)
{
	CredsEntry *cr = tk->core->creds;
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = {
		{ (uint32_t)cr->cap_eff, (uint32_t)cr->cap_prm, (uint32_t)cr->cap_inh },
		{ (uint32_t)(cr->cap_eff >> 32), (uint32_t)(cr->cap_prm >> 32), (uint32_t)(cr->cap_inh >> 32) },
	};
	int err = 0, last_cap = 40;
	char *s = proc_read_file(1, "../sys/kernel/cap_last_cap", NULL);

	if (s) {
		last_cap = atoi(s);
		free(s);
	}
	if (cr->n_uids != 4 || cr->n_gids != 4 || cr->n_groups > 65536)
		return log_errno(EINVAL, "core-%u.img: bad credentials", tk->pid);
	for (int cap = 0; cap <= last_cap && !err; cap++)
		if (!(cr->cap_bnd & (1ULL << cap)))
			err = TASK_INJ(tk, tid, SYS_prctl, "cannot drop a bounding capability", PR_CAPBSET_DROP,
				  cap, 0, 0, 0, 0);
	if (!err)
		err = TASK_INJ(tk, tid, SYS_prctl, "cannot set securebits", PR_SET_SECUREBITS,
			  cr->securebits | (1 << 4) /* SECBIT_KEEP_CAPS */, 0, 0, 0, 0);
	/* in a user namespace, set before it was joined */
	if (!err && !tk->in_userns)
		err = set_ids(tk, tid);
	if (!err)
		err = task_scratch_put(tk, 512, &hdr, sizeof(hdr));
	if (!err)
		err = task_scratch_put(tk, 600, data, sizeof(data));
	if (!err)
		err = TASK_INJ(tk, tid, SYS_capset, "cannot set capabilities", tk->pp->scratch + 512,
			  tk->pp->scratch + 600, 0, 0, 0, 0);
	for (int cap = 0; cap <= last_cap && !err; cap++)
		if (cr->cap_amb & (1ULL << cap))
			err = TASK_INJ(tk, tid, SYS_prctl, "cannot raise an ambient capability", PR_CAP_AMBIENT,
				  PR_CAP_AMBIENT_RAISE, cap, 0, 0, 0);
	if (!err && !(cr->securebits & (1 << 5)))	/* KEEP_CAPS not locked */
		err = TASK_INJ(tk, tid, SYS_prctl, "cannot set keepcaps", PR_SET_KEEPCAPS,
			  !!(cr->securebits & (1 << 4)), 0, 0, 0, 0);
	if (!err && cr->no_new_privs)
		err = TASK_INJ(tk, tid, SYS_prctl, "cannot set no_new_privs", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0);
	return err;
}

/* Every thread's: the kernel keeps credentials per thread. */
static int restore_creds_threads(struct task_rst *tk)
{
	int err = 0;

	for (size_t i = 0; !err && i < tk->core->n_threads; i++)
		err = restore_creds(tk, tk->core->threads[i]->tid);
	return err;
}

static int validate_creds(const CoreEntry *c, uint32_t pid)
{
	const CredsEntry *cr = c->creds;

	if (!cr || cr->n_uids != 4 || cr->n_gids != 4 || cr->n_groups > 65536) {
		log_err("core-%u.img: bad credentials", pid);
		return -EINVAL;
	}
	return 0;
}

const struct task_state_ops task_creds_ops = {
	.name = "credentials",
	.dump = dump_creds,
	.validate = validate_creds,
	.restore = {
		[TS_PRIV] = restore_loginuid,
		[TS_CREDS] = restore_creds_threads,
	},
};
