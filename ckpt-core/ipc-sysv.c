// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * System V IPC: shared memory segments, semaphore sets and message queues,
 * dump half and restore half side by side, in "ipc.img" (kup-ipc.proto).
 *
 * Which objects are the tree's (docs/files.md, "System V IPC"):
 *  - a segment is the tree's when a process of the tree attaches it (its
 *    mapping "/SYSVkkkkkkkk (deleted)" in /proc/PID/maps, the shmid as
 *    inode); each attachment is replayed by shmat() at the same address;
 *  - a semaphore set is the tree's when a process of the tree was the last
 *    to change one of its semaphores (sempid: semop, SETVAL, SETALL);
 *  - a message queue is the tree's when a process of the tree was the last
 *    to send to it or to receive from it (msg_lspid, msg_lrpid).
 * Objects the tree does not use in these ways are kept when named
 * (kup dump --sysv-ipc shm:ID,sem:ID,msg:ID).  The tree must share kup's
 * IPC namespace.
 *
 * Restore gives every object back its id (the process may keep it: a
 * postmaster records its segment's id), through /proc/sys/kernel/
 * {shm,sem,msg}_next_id set just before the get, its key, owner, creator
 * (the object is created by a child running as the creator), permissions,
 * and its contents.  An object in the way fails the restore naming it,
 * except the dumped object itself, left behind by the killed tree on this
 * boot (same id, key, creator and change time, not attached): it is
 * replaced by the image.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "internal.h"
#include "ipc-sysv.h"

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif
#ifndef SHM_DEST
#define SHM_DEST 01000
#endif
#ifndef SHM_LOCKED
#define SHM_LOCKED 02000
#endif

#define IPC_MAX_SHM	(1ULL << 46)	/* bytes of one segment */
#define IPC_MAX_NSEMS	65536
#define IPC_MAX_MSG	(1U << 24)	/* bytes of one message */

union semun_k {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

enum ipc_kind { K_SHM, K_SEM, K_MSG };
static const char *const kind_name[] = { "System V shared memory", "semaphore set",
					 "message queue" };
static const char *const next_id_file[] = { "/proc/sys/kernel/shm_next_id",
					    "/proc/sys/kernel/sem_next_id",
					    "/proc/sys/kernel/msg_next_id" };

struct ipc_named {
	enum ipc_kind kind;
	int id;
};

struct ipc_dump {
	IpcImage img;
	struct img_store *st;
	struct ipc_named *named;	/* --sysv-ipc */
	int nnamed;
	dev_t ns_dev;
	ino_t ns_ino;
	bool ns_known;
};

/* ---- dump -------------------------------------------------------------- */

/* "shm:ID,sem:ID,msg:ID": the objects named on the command line. */
static int parse_named(const char *list, struct ipc_named **out, int *nout)
{
	struct ipc_named *v = NULL;
	const char *p = list;
	int n = 0;

	while (p && *p) {
		static const char *const pfx[] = { "shm:", "sem:", "msg:" };
		struct ipc_named *nv;
		char *end;
		long id;
		int k;

		for (k = K_SHM; k <= K_MSG; k++)
			if (!strncmp(p, pfx[k], 4))
				break;
		errno = 0;
		id = k <= K_MSG ? strtol(p + 4, &end, 10) : -1;
		if (k > K_MSG || errno || end == p + 4 || id < 0 || id > INT32_MAX ||
		    (*end && *end != ',')) {
			log_err("--sysv-ipc: '%.*s' is not shm:ID, sem:ID or msg:ID",
				(int)strcspn(p, ","), p);
			free(v);
			return -EINVAL;
		}
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv) {
			free(v);
			return -ENOMEM;
		}
		v = nv;
		v[n].kind = k;
		v[n++].id = id;
		p = *end ? end + 1 : end;
	}
	*out = v;
	*nout = n;
	return 0;
}

int ipc_check_named(const char *list)
{
	struct ipc_named *v = NULL;
	int n, ret = parse_named(list, &v, &n);

	free(v);
	return ret;
}

int ipc_dump_begin(struct img_store *st, const char *named, struct ipc_dump **out)
{
	struct ipc_dump *d = calloc(1, sizeof(*d));
	struct stat sb;
	int ret;

	if (!d)
		return -ENOMEM;
	ret = parse_named(named, &d->named, &d->nnamed);
	if (ret) {
		free(d);
		return ret;
	}
	ipc_image__init(&d->img);
	d->st = st;
	if (!stat("/proc/self/ns/ipc", &sb)) {
		d->ns_dev = sb.st_dev;
		d->ns_ino = sb.st_ino;
		d->ns_known = true;
	}
	*out = d;
	return 0;
}

static void free_perm(IpcPermEntry *p)
{
	free(p);
}

void ipc_dump_free(struct ipc_dump *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->img.n_shm; i++) {
		SysvShmEntry *e = d->img.shm[i];

		if (e->n_runs)
			free(e->runs[0]);
		free(e->runs);
		free_perm(e->perm);
		free(e);
	}
	for (size_t i = 0; i < d->img.n_sems; i++) {
		free(d->img.sems[i]->values);
		free_perm(d->img.sems[i]->perm);
		free(d->img.sems[i]);
	}
	for (size_t i = 0; i < d->img.n_msgs; i++) {
		SysvMsgEntry *e = d->img.msgs[i];

		for (size_t m = 0; m < e->n_msgs; m++) {
			free(e->msgs[m]->data.data);
			free(e->msgs[m]);
		}
		free(e->msgs);
		free_perm(e->perm);
		free(e);
	}
	free(d->img.shm);
	free(d->img.sems);
	free(d->img.msgs);
	free(d->named);
	free(d);
}

/* Is @pid in kup's own IPC namespace? */
static int same_ipc_ns(struct ipc_dump *d, pid_t pid)
{
	char path[64];
	struct stat sb;

	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", pid);
	if (stat(path, &sb))
		return log_errno(errno, "pid %d: cannot inspect its IPC namespace", pid);
	if (d->ns_known && (sb.st_dev != d->ns_dev || sb.st_ino != d->ns_ino))
		return 0;
	return 1;
}

static IpcPermEntry *perm_new(const struct ipc_perm *ip, int id, uint64_t ctime)
{
	IpcPermEntry *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	ipc_perm_entry__init(p);
	p->key = (uint32_t)ip->__key;
	p->id = id;
	p->uid = ip->uid;
	p->gid = ip->gid;
	p->cuid = ip->cuid;
	p->cgid = ip->cgid;
	p->mode = ip->mode & 0777;
	p->has_ctime = true;
	p->ctime = ctime;
	return p;
}

/*
 * The pages of segment @e that exist (SEEK_DATA/SEEK_HOLE on the shm file,
 * opened through the mapping @link), read through a read-only attach of our
 * own, into "shmem-sysv-ID.img".
 */
static int shm_save_pages(struct ipc_dump *d, SysvShmEntry *e, const char *link)
{
	uint64_t len = PAGE_ALIGN_K(e->size), pages = 0;
	PageRun *runs = NULL;
	size_t n = 0, cap = 0;
	struct img_blob b;
	struct img_sum sum;
	char name[64];
	off_t pos = 0;
	void *src;
	int fd, ret = 0;

	fd = open(link, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return log_errno(errno, "shmid %d: cannot open the segment through %s",
				 e->perm->id, link);
	for (;;) {
		off_t s = lseek(fd, pos, SEEK_DATA), h;

		if (s < 0 || (uint64_t)s >= len)
			break;
		h = lseek(fd, s, SEEK_HOLE);
		if (h < 0 || (uint64_t)h > len)
			h = len;
		s &= ~(PAGE_SIZE_K - 1);
		h = PAGE_ALIGN_K(h);
		if (n == cap) {
			PageRun *nr;

			cap = cap ? cap * 2 : 16;
			nr = realloc(runs, cap * sizeof(*nr));
			if (!nr) {
				ret = -ENOMEM;
				goto out_close;
			}
			runs = nr;
		}
		page_run__init(&runs[n]);
		runs[n].vaddr = s;
		runs[n].nr_pages = (h - s) / PAGE_SIZE_K;
		runs[n].off = pages;
		pages += runs[n].nr_pages;
		n++;
		pos = h;
	}
	src = shmat(e->perm->id, NULL, SHM_RDONLY);
	if (src == (void *)-1) {
		ret = log_errno(errno, "shmid %d: cannot attach it to read its contents", e->perm->id);
		goto out_close;
	}
	snprintf(name, sizeof(name), "shmem-sysv-%d.img", e->perm->id);
	ret = d->st->ops->create(d->st, name, pages * PAGE_SIZE_K, &b);
	if (ret)
		goto out_detach;
	img_sum_init(&sum);
	for (size_t i = 0; i < n && !ret; i++) {
		size_t l = runs[i].nr_pages * PAGE_SIZE_K;
		uint8_t *dst = (uint8_t *)b.data + runs[i].off * PAGE_SIZE_K;

		memcpy(dst, (uint8_t *)src + runs[i].vaddr, l);
		img_sum_update(&sum, dst, l);
		ret = ckpt_check_abort();
	}
	e->xxh64 = img_sum_final(&sum);
	if (!ret)
		ret = d->st->ops->finish(d->st, &b);
	d->st->ops->release(d->st, &b);
out_detach:
	shmdt(src);
out_close:
	close(fd);
	if (ret) {
		free(runs);
		return ret;
	}
	e->n_runs = n;
	if (n) {
		e->runs = malloc(n * sizeof(*e->runs));
		if (!e->runs) {
			e->n_runs = 0;
			free(runs);
			return -ENOMEM;
		}
		for (size_t i = 0; i < n; i++)
			e->runs[i] = &runs[i];
	}
	return 0;
}

static int shm_add(struct ipc_dump *d, int shmid, const struct shmid_ds *ds, const char *link);

int ipc_dump_shm_vma(struct ipc_dump *d, pid_t pid, VmaEntry *v, const VmaEntry *prev,
		     int shmid, bool hugetlb, bool may_write)
{
	struct shmid_ds ds;
	char link[96];
	int ret;

	ret = same_ipc_ns(d, pid);
	if (ret <= 0) {
		if (!ret)
			log_err("pid %d: System V shared memory (shmid %d at 0x%" PRIx64 ") in an IPC "
				"namespace of its own is not supported", pid, shmid, v->start);
		return ret ? ret : -EOPNOTSUPP;
	}
	if (hugetlb) {
		log_err("pid %d: System V shared memory shmid %d at 0x%" PRIx64 " is on huge pages "
			"(SHM_HUGETLB): not supported", pid, shmid, v->start);
		return -EOPNOTSUPP;
	}
	/* a piece of an attachment must follow the piece before it: shmat maps
	 * the segment from its start */
	if (v->pgoff && !(prev && prev->kind == VMA_KIND__VMA_SYSV_SHM && prev->sysv_shmid == shmid &&
			  prev->end == v->start && prev->pgoff + (prev->end - prev->start) == v->pgoff)) {
		log_err("pid %d: System V shared memory shmid %d at 0x%" PRIx64 ": the attachment "
			"was partly unmapped (it starts at offset %" PRIu64 "): not supported",
			pid, shmid, v->start, v->pgoff);
		return -EOPNOTSUPP;
	}
	v->has_sysv_shmid = true;
	v->sysv_shmid = shmid;
	v->has_sysv_rdonly = true;
	v->sysv_rdonly = !may_write;
	for (size_t i = 0; i < d->img.n_shm; i++)
		if (d->img.shm[i]->perm->id == shmid)
			return 0;
	if (shmctl(shmid, IPC_STAT, &ds) < 0)
		return log_errno(errno, "pid %d: System V shared memory shmid %d at 0x%" PRIx64
				 ": cannot read its state", pid, shmid, v->start);
	snprintf(link, sizeof(link), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, v->start, v->end);
	return shm_add(d, shmid, &ds, link);
}

/* Segment @shmid, not seen yet, whose file @link opens. */
static int shm_add(struct ipc_dump *d, int shmid, const struct shmid_ds *dsp, const char *link)
{
	struct shmid_ds ds = *dsp;
	SysvShmEntry *e, **ne;
	int ret;

	if (ds.shm_segsz > IPC_MAX_SHM) {
		log_err("shmid %d: a segment of %zu bytes is not supported", shmid,
			(size_t)ds.shm_segsz);
		return -EOPNOTSUPP;
	}
	e = calloc(1, sizeof(*e));
	ne = realloc(d->img.shm, (d->img.n_shm + 1) * sizeof(*ne));
	if (ne)
		d->img.shm = ne;
	if (!e || !ne) {
		free(e);
		return -ENOMEM;
	}
	sysv_shm_entry__init(e);
	e->perm = perm_new(&ds.shm_perm, shmid, ds.shm_ctime);
	if (!e->perm) {
		free(e);
		return -ENOMEM;
	}
	e->size = ds.shm_segsz;
	e->has_locked = true;
	e->locked = ds.shm_perm.mode & SHM_LOCKED;
	e->has_removed = true;
	e->removed = ds.shm_perm.mode & SHM_DEST;
	ret = shm_save_pages(d, e, link);
	if (ret) {
		free_perm(e->perm);
		free(e);
		return ret;
	}
	d->img.shm[d->img.n_shm++] = e;
	return 0;
}

static size_t entry_count_d(const struct ipc_dump *d, enum ipc_kind k)
{
	return k == K_SHM ? d->img.n_shm : k == K_SEM ? d->img.n_sems : d->img.n_msgs;
}

static int entry_id_d(const struct ipc_dump *d, enum ipc_kind k, size_t i)
{
	return k == K_SHM ? d->img.shm[i]->perm->id : k == K_SEM ? d->img.sems[i]->perm->id :
			    d->img.msgs[i]->perm->id;
}

static bool pid_in(pid_t pid, const pid_t *pids, int n)
{
	for (int i = 0; pid > 0 && i < n; i++)
		if (pids[i] == pid)
			return true;
	return false;
}

static int dump_sem(struct ipc_dump *d, int semid, const struct semid_ds *ds)
{
	union semun_k arg;
	SysvSemEntry *e, **ne;
	unsigned short *vals;
	size_t n = ds->sem_nsems;

	vals = calloc(n ? n : 1, sizeof(*vals));
	e = calloc(1, sizeof(*e));
	ne = realloc(d->img.sems, (d->img.n_sems + 1) * sizeof(*ne));
	if (ne)
		d->img.sems = ne;
	if (!vals || !e || !ne)
		goto nomem;
	sysv_sem_entry__init(e);
	arg.array = vals;
	if (semctl(semid, 0, GETALL, arg) < 0) {
		free(vals);
		free(e);
		return log_errno(errno, "semaphore set %d: cannot read its values", semid);
	}
	e->values = calloc(n ? n : 1, sizeof(*e->values));
	e->perm = perm_new(&ds->sem_perm, semid, ds->sem_ctime);
	if (!e->values || !e->perm) {
		free(e->values);
		free(e->perm);
		goto nomem;
	}
	e->n_values = n;
	for (size_t i = 0; i < n; i++)
		e->values[i] = vals[i];
	free(vals);
	d->img.sems[d->img.n_sems++] = e;
	return 0;
nomem:
	free(vals);
	free(e);
	return -ENOMEM;
}

static int dump_msg(struct ipc_dump *d, int msqid, const struct msqid_ds *ds)
{
	size_t bufsz = sizeof(long) + (ds->__msg_cbytes ? ds->__msg_cbytes : 1);
	SysvMsgEntry *e, **ne;
	struct { long mtype; char text[]; } *buf;
	int ret = 0;

	buf = malloc(bufsz);
	e = calloc(1, sizeof(*e));
	ne = realloc(d->img.msgs, (d->img.n_msgs + 1) * sizeof(*ne));
	if (ne)
		d->img.msgs = ne;
	if (!buf || !e || !ne) {
		free(buf);
		free(e);
		return -ENOMEM;
	}
	sysv_msg_entry__init(e);
	e->perm = perm_new(&ds->msg_perm, msqid, ds->msg_ctime);
	e->qbytes = ds->msg_qbytes;
	e->msgs = calloc(ds->msg_qnum ? ds->msg_qnum : 1, sizeof(*e->msgs));
	if (!e->perm || !e->msgs) {
		ret = -ENOMEM;
		goto out;
	}
	/* MSG_COPY: message number i, left in the queue */
	for (msgqnum_t i = 0; i < ds->msg_qnum; i++) {
		ssize_t len = msgrcv(msqid, buf, bufsz - sizeof(long), i, IPC_NOWAIT | MSG_COPY);
		SysvMsg *m;

		if (len < 0) {
			if (errno == ENOSYS || errno == EINVAL)
				log_err("message queue %d: its %lu messages cannot be read without "
					"taking them (msgrcv MSG_COPY needs a kernel with "
					"CONFIG_CHECKPOINT_RESTORE): not supported", msqid,
					(unsigned long)ds->msg_qnum);
			else
				log_errno(errno, "message queue %d: cannot read message %lu", msqid,
					  (unsigned long)i);
			ret = errno == ENOSYS || errno == EINVAL ? -EOPNOTSUPP : -errno;
			goto out;
		}
		m = calloc(1, sizeof(*m));
		if (m)
			sysv_msg__init(m);
		if (!m || !(m->data.data = malloc(len ? len : 1))) {
			free(m);
			ret = -ENOMEM;
			goto out;
		}
		m->mtype = buf->mtype;
		m->data.len = len;
		memcpy(m->data.data, buf->text, len);
		e->msgs[e->n_msgs++] = m;
	}
out:
	free(buf);
	d->img.msgs[d->img.n_msgs++] = e;	/* freed with the dump either way */
	return ret;
}

/*
 * A segment named with --sysv-ipc that the tree does not attach: its pages
 * are found through an attachment of kup's own (/proc/self/map_files).
 */
static int dump_unattached_shm(struct ipc_dump *d, int shmid)
{
	struct shmid_ds ds;
	struct stat sb;
	char link[96];
	void *m;
	int ret;

	if (shmctl(shmid, IPC_STAT, &ds) < 0)
		return log_errno(errno, "--sysv-ipc: System V shared memory shmid %d", shmid);
	m = shmat(shmid, NULL, SHM_RDONLY);
	if (m == (void *)-1)
		return log_errno(errno, "--sysv-ipc: shmid %d: cannot attach it", shmid);
	snprintf(link, sizeof(link), "/proc/self/map_files/%lx-%lx", (unsigned long)m,
		 (unsigned long)m + PAGE_ALIGN_K(ds.shm_segsz));
	if (stat(link, &sb) == 0 && sb.st_blksize > (blksize_t)PAGE_SIZE_K) {
		log_err("--sysv-ipc: shmid %d is on huge pages (SHM_HUGETLB): not supported", shmid);
		ret = -EOPNOTSUPP;
	} else {
		ret = shm_add(d, shmid, &ds, link);
	}
	shmdt(m);
	return ret;
}

static int dump_named(struct ipc_dump *d)
{
	int ret = 0;

	for (int i = 0; !ret && i < d->nnamed; i++) {
		int id = d->named[i].id;
		bool seen = false;

		for (size_t k = 0; k < entry_count_d(d, d->named[i].kind); k++)
			seen |= entry_id_d(d, d->named[i].kind, k) == id;
		if (seen)
			continue;
		if (d->named[i].kind == K_SHM) {
			ret = dump_unattached_shm(d, id);
		} else if (d->named[i].kind == K_SEM) {
			struct semid_ds ds;

			if (semctl(id, 0, IPC_STAT, (union semun_k){ .buf = &ds }) < 0)
				return log_errno(errno, "--sysv-ipc: semaphore set %d", id);
			ret = dump_sem(d, id, &ds);
		} else {
			struct msqid_ds ds;

			if (msgctl(id, IPC_STAT, &ds) < 0)
				return log_errno(errno, "--sysv-ipc: message queue %d", id);
			ret = dump_msg(d, id, &ds);
		}
	}
	return ret;
}

/* Is there any System V object in the IPC namespace of @pid?  Looked at
 * from a child that enters it.  1 yes, 0 no, negative: cannot tell. */
static int foreign_ns_has_objects(pid_t pid)
{
	char path[64];
	int fd, status;
	pid_t child;

	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return log_errno(errno, "pid %d: cannot open its IPC namespace", pid);
	child = fork();
	if (child == 0) {
		struct shm_info si;
		struct seminfo se;
		struct msginfo mi;

		if (setns(fd, CLONE_NEWIPC))
			_exit(2);
		memset(&si, 0, sizeof(si));
		memset(&se, 0, sizeof(se));
		memset(&mi, 0, sizeof(mi));
		shmctl(0, SHM_INFO, (struct shmid_ds *)&si);
		semctl(0, 0, SEM_INFO, (union semun_k){ .buf = (struct semid_ds *)&se });
		msgctl(0, MSG_INFO, (struct msqid_ds *)&mi);
		_exit(si.used_ids || se.semusz || mi.msgpool ? 1 : 0);
	}
	close(fd);
	if (child < 0)
		return log_errno(errno, "cannot fork to look into the IPC namespace of pid %d", pid);
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (!WIFEXITED(status) || WEXITSTATUS(status) > 1)
		return log_errno(EPERM, "pid %d: cannot enter its IPC namespace", pid);
	return WEXITSTATUS(status);
}

/*
 * Semaphore undo state (semop with SEM_UNDO) cannot be read, nor set on
 * restore, and dropping it silently would change what the kernel does when
 * the process exits.  kcmp KCMP_SYSVSEM compares the undo lists of two
 * tasks; a list is also made, empty, for every process that created a
 * thread (CLONE_SYSVSEM), so only its absence says something.  kup itself
 * may have one (any thread it ever made gave it one), so the reference is
 * a child of ours made by fork(), without CLONE_SYSVSEM: it starts with
 * none, and waits on a pipe, doing nothing, until sem_ref_stop().
 */
struct sem_ref {
	pid_t pid;
	int wfd;	/* closed: the child exits */
};

static int sem_ref_start(struct sem_ref *ref)
{
	int p[2];

	ref->pid = -1;
	ref->wfd = -1;
	if (pipe2(p, O_CLOEXEC))
		return log_errno(errno, "cannot make a pipe for the semaphore undo check");
	ref->pid = fork();
	if (ref->pid == 0) {
		char c;

		close(p[1]);
		while (read(p[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(p[0]);
	if (ref->pid < 0) {
		close(p[1]);
		return log_errno(errno, "cannot fork a reference task for the semaphore undo check");
	}
	ref->wfd = p[1];
	return 0;
}

static void sem_ref_stop(struct sem_ref *ref)
{
	if (ref->wfd >= 0)
		close(ref->wfd);
	while (ref->pid > 0 && waitpid(ref->pid, NULL, 0) < 0 && errno == EINTR)
		;
	ref->pid = -1;
	ref->wfd = -1;
}

/* 1: @pid has an undo list, 0: none, negative: cannot tell. */
static int has_sem_undo(const struct sem_ref *ref, pid_t pid)
{
	long r = syscall(SYS_kcmp, ref->pid, pid, KCMP_SYSVSEM, 0, 0);

	if (r < 0)
		return -errno;
	return r != 0;
}

static int check_sem_undo(const struct sem_ref *ref, const pid_t *pids, int npids)
{
	for (int i = 0; i < npids; i++) {
		int ret = has_sem_undo(ref, pids[i]);

		if (ret == 1) {
			log_err("pid %d: may hold System V semaphore undo adjustments (semop "
				"SEM_UNDO) on the semaphore sets kept, which cannot be restored: not "
				"supported (it has an undo list; a process that made threads has "
				"one even if it never used SEM_UNDO)", pids[i]);
			return -EOPNOTSUPP;
		}
		if (ret == -ENOSYS) {
			log_warn("no kcmp(2) in this kernel: semaphore undo adjustments (SEM_UNDO) "
				 "cannot be detected; they are not kept");
			return 0;
		}
		if (ret < 0)
			return log_errno(ret, "pid %d: cannot compare its semaphore undo state (kcmp)",
					 pids[i]);
	}
	return 0;
}

int ipc_dump_end(struct ipc_dump *d, const pid_t *pids, int npids)
{
	union semun_k arg;
	int max, ret;

	/* objects in another namespace: not seen here, so not kept: refuse */
	for (int i = 0; i < npids; i++) {
		ret = same_ipc_ns(d, pids[i]);
		if (ret < 0)
			return ret;
		if (ret)
			continue;
		ret = foreign_ns_has_objects(pids[i]);
		if (ret < 0)
			return ret;
		if (ret) {
			log_err("pid %d: its IPC namespace of its own holds System V IPC objects: "
				"not supported", pids[i]);
			return -EOPNOTSUPP;
		}
	}

	/* semaphore sets last changed by the tree */
	{
		struct seminfo si;

		arg.buf = (struct semid_ds *)&si;
		max = semctl(0, 0, SEM_INFO, arg);
	}
	for (int idx = 0; idx <= max; idx++) {
		struct semid_ds ds;
		bool ours = false;
		int semid;

		arg.buf = &ds;
		semid = semctl(idx, 0, SEM_STAT_ANY, arg);
		if (semid < 0)
			continue;
		for (unsigned long s = 0; s < ds.sem_nsems && !ours; s++)
			ours = pid_in(semctl(semid, s, GETPID), pids, npids);
		if (!ours)
			continue;
		if (ds.sem_nsems > IPC_MAX_NSEMS) {
			log_err("semaphore set %d: %lu semaphores: not supported", semid,
				(unsigned long)ds.sem_nsems);
			return -EOPNOTSUPP;
		}
		ret = dump_sem(d, semid, &ds);
		if (ret)
			return ret;
	}

	/* message queues the tree last sent to or received from */
	{
		struct msginfo mi;

		max = msgctl(0, MSG_INFO, (struct msqid_ds *)&mi);
	}
	for (int idx = 0; idx <= max; idx++) {
		struct msqid_ds ds;
		int msqid = msgctl(idx, MSG_STAT_ANY, &ds);

		if (msqid < 0)
			continue;
		if (!pid_in(ds.msg_lspid, pids, npids) && !pid_in(ds.msg_lrpid, pids, npids))
			continue;
		ret = dump_msg(d, msqid, &ds);
		if (ret)
			return ret;
	}
	ret = dump_named(d);
	if (ret)
		return ret;

	/* undo adjustments would be for semaphore sets: with none kept, none */
	if (d->img.n_sems) {
		struct sem_ref ref;

		ret = sem_ref_start(&ref);
		if (!ret)
			ret = check_sem_undo(&ref, pids, npids);
		sem_ref_stop(&ref);
		if (ret)
			return ret;
	}
	for (size_t i = 0; i < d->img.n_shm; i++)
		log_debug("shmid %d: %" PRIu64 " bytes, key 0x%x%s", d->img.shm[i]->perm->id,
			  d->img.shm[i]->size, d->img.shm[i]->perm->key,
			  d->img.shm[i]->removed ? ", removed" : "");
	return img_write_msg(d->st, "ipc.img", IMG_IPC, &d->img);
}

/* ---- restore ------------------------------------------------------------- */

struct ipc_rst {
	IpcImage *img;
	bool *made[3];		/* the object of entry i was created by us */
};

static IpcPermEntry *entry_perm(const IpcImage *img, enum ipc_kind k, size_t i)
{
	return k == K_SHM ? img->shm[i]->perm : k == K_SEM ? img->sems[i]->perm : img->msgs[i]->perm;
}

static size_t entry_count(const IpcImage *img, enum ipc_kind k)
{
	return k == K_SHM ? img->n_shm : k == K_SEM ? img->n_sems : img->n_msgs;
}

int ipc_validate_image(const IpcImage *img)
{
	for (int k = K_SHM; k <= K_MSG; k++) {
		for (size_t i = 0; i < entry_count(img, k); i++) {
			const IpcPermEntry *p = entry_perm(img, k, i);

			if (!p || p->id < 0)
				goto bad;
			for (size_t j = 0; j < i; j++)
				if (entry_perm(img, k, j)->id == p->id)
					goto bad;
			continue;
bad:
			log_err("ipc.img: %s entry %zu: missing or repeated id", kind_name[k], i);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < img->n_shm; i++) {
		const SysvShmEntry *e = img->shm[i];
		uint64_t len = PAGE_ALIGN_K(e->size), pages = 0;

		if (!e->size || e->size > IPC_MAX_SHM) {
			log_err("ipc.img: shmid %d: bad size %" PRIu64, e->perm->id, e->size);
			return -EINVAL;
		}
		for (size_t r = 0; r < e->n_runs; r++) {
			const PageRun *run = e->runs[r];

			if (run->vaddr & (PAGE_SIZE_K - 1) || run->vaddr > len ||
			    run->nr_pages > (len - run->vaddr) / PAGE_SIZE_K || run->off != pages) {
				log_err("ipc.img: shmid %d: page run %zu is out of the segment",
					e->perm->id, r);
				return -EINVAL;
			}
			pages += run->nr_pages;
		}
	}
	for (size_t i = 0; i < img->n_sems; i++)
		if (!img->sems[i]->n_values || img->sems[i]->n_values > IPC_MAX_NSEMS) {
			log_err("ipc.img: semaphore set %d: %zu semaphores", img->sems[i]->perm->id,
				img->sems[i]->n_values);
			return -EINVAL;
		}
	for (size_t i = 0; i < img->n_msgs; i++)
		for (size_t m = 0; m < img->msgs[i]->n_msgs; m++)
			if (img->msgs[i]->msgs[m]->mtype <= 0 ||
			    img->msgs[i]->msgs[m]->data.len > IPC_MAX_MSG) {
				log_err("ipc.img: message queue %d: message %zu is invalid",
					img->msgs[i]->perm->id, m);
				return -EINVAL;
			}
	return 0;
}

int ipc_rst_load(struct img_store *st, struct ipc_rst **out)
{
	struct ipc_rst *r = calloc(1, sizeof(*r));
	ProtobufCMessage *m;
	int ret;

	if (!r)
		return -ENOMEM;
	ret = img_read_msg(st, "ipc.img", IMG_IPC, &ipc_image__descriptor, &m);
	if (ret == -ENOENT) {	/* images from before System V IPC: none */
		r->img = calloc(1, sizeof(*r->img));
		if (!r->img) {
			free(r);
			return -ENOMEM;
		}
		ipc_image__init(r->img);
		*out = r;
		return 0;
	}
	if (ret) {
		free(r);
		return ret;
	}
	r->img = (IpcImage *)m;
	*out = r;
	ret = ipc_validate_image(r->img);
	for (int k = K_SHM; !ret && k <= K_MSG; k++) {
		r->made[k] = calloc(entry_count(r->img, k) + 1, sizeof(bool));
		if (!r->made[k])
			ret = -ENOMEM;
	}
	return ret;
}

const SysvShmEntry *ipc_rst_shm(const struct ipc_rst *r, int shmid)
{
	for (size_t i = 0; r && i < r->img->n_shm; i++)
		if (r->img->shm[i]->perm->id == shmid)
			return r->img->shm[i];
	return NULL;
}

static int rmid(enum ipc_kind k, int id)
{
	if (k == K_SHM)
		return shmctl(id, IPC_RMID, NULL);
	if (k == K_SEM)
		return semctl(id, 0, IPC_RMID);
	return msgctl(id, IPC_RMID, NULL);
}

/* The state of object @id: -1 with errno when there is none. */
struct obj_state { uint32_t key, cuid, cgid; uint64_t ctime, nattch; };

static int obj_stat(enum ipc_kind k, int id, struct obj_state *s)
{
	memset(s, 0, sizeof(*s));
	if (k == K_SHM) {
		struct shmid_ds ds;

		if (shmctl(id, IPC_STAT, &ds) < 0)
			return -1;
		*s = (struct obj_state){ ds.shm_perm.__key, ds.shm_perm.cuid, ds.shm_perm.cgid,
					 ds.shm_ctime, ds.shm_nattch };
	} else if (k == K_SEM) {
		struct semid_ds ds;

		if (semctl(id, 0, IPC_STAT, (union semun_k){ .buf = &ds }) < 0)
			return -1;
		*s = (struct obj_state){ ds.sem_perm.__key, ds.sem_perm.cuid, ds.sem_perm.cgid,
					 ds.sem_ctime, 0 };
	} else {
		struct msqid_ds ds;

		if (msgctl(id, IPC_STAT, &ds) < 0)
			return -1;
		*s = (struct obj_state){ ds.msg_perm.__key, ds.msg_perm.cuid, ds.msg_perm.cgid,
					 ds.msg_ctime, 0 };
	}
	return 0;
}

/*
 * The dumped object itself, left behind by the killed tree on this boot?
 * The semaphores' change time moves with SETVAL, so it is not compared.
 */
static bool is_leftover(enum ipc_kind k, const IpcPermEntry *p, const struct obj_state *s)
{
	return s->key == p->key && s->cuid == p->cuid && s->cgid == p->cgid && !s->nattch &&
	       (k == K_SEM || !p->has_ctime || s->ctime == p->ctime);
}

static int xget(enum ipc_kind k, key_t key, uint64_t size, int nsems, int flags)
{
	if (k == K_SHM)
		return shmget(key, size, flags);
	if (k == K_SEM)
		return semget(key, nsems, flags);
	return msgget(key, flags);
}

/* Make room for the dumped object: its key and its id must be free. */
static int clear_way(enum ipc_kind k, const IpcPermEntry *p)
{
	struct obj_state s;
	int id;

	if (p->key != IPC_PRIVATE) {
		id = xget(k, p->key, 0, 0, 0);
		if (id >= 0 && id != p->id) {
			log_err("%s key 0x%08x (id %d): the key is taken by id %d", kind_name[k],
				p->key, p->id, id);
			return -EEXIST;
		}
	}
	if (obj_stat(k, p->id, &s) < 0)
		return 0;	/* no object with this id (its slot: see create()) */
	if (!is_leftover(k, p, &s)) {
		log_err("%s id %d (key 0x%08x): the id is taken by another object (key 0x%08x, "
			"creator uid %u%s)", kind_name[k], p->id, p->key, s.key, s.cuid,
			s.nattch ? ", attached" : "");
		return -EEXIST;
	}
	log_info("%s id %d (key 0x%08x): replacing the object the dumped tree left behind",
		 kind_name[k], p->id, p->key);
	if (rmid(k, p->id) < 0)
		return log_errno(errno, "%s id %d: cannot remove the object left behind",
				 kind_name[k], p->id);
	return 0;
}

static int write_next_id(enum ipc_kind k, int id)
{
	char buf[16];
	int fd = open(next_id_file[k], O_WRONLY | O_CLOEXEC), len, ret = 0;

	if (fd < 0)
		return log_errno(errno, "cannot open %s", next_id_file[k]);
	len = snprintf(buf, sizeof(buf), "%d", id);
	if (write(fd, buf, len) != len)
		ret = log_errno(errno, "cannot write %d to %s", id, next_id_file[k]);
	close(fd);
	return ret;
}

/*
 * Create the object with its id, key, creator (a child with the creator's
 * uid and gid makes it: cuid/cgid cannot be set otherwise) and size.
 */
static int create(enum ipc_kind k, const IpcPermEntry *p, uint64_t size, int nsems)
{
	int pfd[2], got = -EIO, status, ret;
	pid_t child;

	ret = clear_way(k, p);
	if (ret)
		return ret;
	if (pipe2(pfd, O_CLOEXEC))
		return log_errno(errno, "cannot create a pipe");
	ret = write_next_id(k, p->id);
	if (ret)
		goto out_pipe;
	child = fork();
	if (child == 0) {
		int id = -EPERM;

		if (!setgroups(0, NULL) && !setresgid(p->cgid, p->cgid, p->cgid) &&
		    !setresuid(p->cuid, p->cuid, p->cuid)) {
			id = xget(k, p->key, size, nsems, IPC_CREAT | IPC_EXCL | 0600);
			if (id < 0)
				id = -errno;
		}
		if (write(pfd[1], &id, sizeof(id)) != sizeof(id))
			_exit(1);
		_exit(0);
	}
	if (child < 0) {
		ret = log_errno(errno, "cannot fork to create %s id %d", kind_name[k], p->id);
		goto out_reset;
	}
	close(pfd[1]);
	pfd[1] = -1;
	if (read(pfd[0], &got, sizeof(got)) != sizeof(got))
		got = -EIO;
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	if (got >= 0 && got != p->id) {
		rmid(k, got);
		log_err("%s id %d (key 0x%08x): the kernel gave id %d", kind_name[k], p->id, p->key, got);
		ret = -EEXIST;
	} else if (got == -ENOSPC) {
		log_err("%s id %d (key 0x%08x): the id's slot is taken by another object",
			kind_name[k], p->id, p->key);
		ret = -EEXIST;
	} else if (got < 0) {
		ret = log_errno(got, "%s id %d (key 0x%08x): cannot create it as uid %u gid %u",
				kind_name[k], p->id, p->key, p->cuid, p->cgid);
	}
out_reset:
	if (got < 0)
		write_next_id(k, -1);	/* not consumed */
out_pipe:
	close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	return ret;
}

static int set_perm(enum ipc_kind k, const IpcPermEntry *p, uint64_t qbytes)
{
	int ret;

	if (k == K_SHM) {
		struct shmid_ds ds;

		ret = shmctl(p->id, IPC_STAT, &ds);
		if (!ret) {
			ds.shm_perm.uid = p->uid;
			ds.shm_perm.gid = p->gid;
			ds.shm_perm.mode = p->mode & 0777;
			ret = shmctl(p->id, IPC_SET, &ds);
		}
	} else if (k == K_SEM) {
		struct semid_ds ds;

		ret = semctl(p->id, 0, IPC_STAT, (union semun_k){ .buf = &ds });
		if (!ret) {
			ds.sem_perm.uid = p->uid;
			ds.sem_perm.gid = p->gid;
			ds.sem_perm.mode = p->mode & 0777;
			ret = semctl(p->id, 0, IPC_SET, (union semun_k){ .buf = &ds });
		}
	} else {
		struct msqid_ds ds;

		ret = msgctl(p->id, IPC_STAT, &ds);
		if (!ret) {
			ds.msg_perm.uid = p->uid;
			ds.msg_perm.gid = p->gid;
			ds.msg_perm.mode = p->mode & 0777;
			ds.msg_qbytes = qbytes;
			ret = msgctl(p->id, IPC_SET, &ds);
		}
	}
	if (ret < 0)
		return log_errno(errno, "%s id %d: cannot set owner %u:%u, mode %03o%s", kind_name[k],
				 p->id, p->uid, p->gid, p->mode & 0777,
				 k == K_MSG ? " and its size limit" : "");
	return 0;
}

static int shm_fill(struct img_store *st, const SysvShmEntry *e)
{
	struct img_blob b;
	char name[64];
	uint8_t *dst;
	int ret;

	snprintf(name, sizeof(name), "shmem-sysv-%d.img", e->perm->id);
	ret = st->ops->open(st, name, &b);
	if (ret)
		return log_errno(ret, "image %s: cannot open", name);
	if (e->n_runs && (e->runs[e->n_runs - 1]->off + e->runs[e->n_runs - 1]->nr_pages) * PAGE_SIZE_K != b.len) {
		log_err("image %s: %zu bytes do not match its runs", name, b.len);
		ret = -EINVAL;
	} else if (img_xxh64(b.data, b.len) != e->xxh64) {
		log_err("image %s: checksum mismatch (corrupted)", name);
		ret = -EINVAL;
	}
	if (ret)
		goto out;
	dst = shmat(e->perm->id, NULL, 0);
	if (dst == (void *)-1) {
		ret = log_errno(errno, "shmid %d: cannot attach it to fill it", e->perm->id);
		goto out;
	}
	for (size_t r = 0; r < e->n_runs; r++) {
		const PageRun *run = e->runs[r];
		uint64_t len = run->nr_pages * PAGE_SIZE_K;

		/* the last page may pass the segment's end: copy what is in it */
		if (run->vaddr >= e->size)
			continue;
		if (len > e->size - run->vaddr)
			len = e->size - run->vaddr;
		memcpy(dst + run->vaddr, (uint8_t *)b.data + run->off * PAGE_SIZE_K, len);
	}
	shmdt(dst);
out:
	st->ops->release(st, &b);
	return ret;
}

static int restore_shm(struct img_store *st, const SysvShmEntry *e, bool *made)
{
	int ret = create(K_SHM, e->perm, e->size, 0);

	*made = !ret;

	if (!ret)
		ret = shm_fill(st, e);
	if (!ret && e->locked && shmctl(e->perm->id, SHM_LOCK, NULL) < 0)
		ret = log_errno(errno, "shmid %d: cannot lock it in memory (SHM_LOCK)", e->perm->id);
	if (!ret)
		ret = set_perm(K_SHM, e->perm, 0);
	return ret;
}

static int restore_sem(const SysvSemEntry *e, bool *made)
{
	unsigned short *vals;
	int ret = create(K_SEM, e->perm, 0, e->n_values);

	*made = !ret;
	if (ret)
		return ret;
	vals = calloc(e->n_values, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (size_t i = 0; i < e->n_values; i++)
		vals[i] = e->values[i] > 32767 ? 32767 : e->values[i];
	if (semctl(e->perm->id, 0, SETALL, (union semun_k){ .array = vals }) < 0)
		ret = log_errno(errno, "semaphore set %d: cannot set its values", e->perm->id);
	free(vals);
	return ret ? ret : set_perm(K_SEM, e->perm, 0);
}

static int restore_msg(const SysvMsgEntry *e, bool *made)
{
	struct { long mtype; char text[]; } *buf;
	size_t max = 1;
	int ret = create(K_MSG, e->perm, 0, 0);

	*made = !ret;
	if (ret)
		return ret;
	ret = set_perm(K_MSG, e->perm, e->qbytes);
	if (ret)
		return ret;
	for (size_t m = 0; m < e->n_msgs; m++)
		if (e->msgs[m]->data.len > max)
			max = e->msgs[m]->data.len;
	buf = malloc(sizeof(long) + max);
	if (!buf)
		return -ENOMEM;
	for (size_t m = 0; m < e->n_msgs && !ret; m++) {
		buf->mtype = e->msgs[m]->mtype;
		memcpy(buf->text, e->msgs[m]->data.data, e->msgs[m]->data.len);
		if (msgsnd(e->perm->id, buf, e->msgs[m]->data.len, IPC_NOWAIT) < 0)
			ret = log_errno(errno, "message queue %d: cannot queue message %zu of %zu",
					e->perm->id, m + 1, e->n_msgs);
	}
	free(buf);
	return ret;
}

int ipc_rst_create(struct ipc_rst *r, struct img_store *st)
{
	IpcImage *img = r->img;
	int ret = 0;

	for (size_t i = 0; !ret && i < img->n_shm; i++)
		ret = restore_shm(st, img->shm[i], &r->made[K_SHM][i]);
	for (size_t i = 0; !ret && i < img->n_sems; i++)
		ret = restore_sem(img->sems[i], &r->made[K_SEM][i]);
	for (size_t i = 0; !ret && i < img->n_msgs; i++)
		ret = restore_msg(img->msgs[i], &r->made[K_MSG][i]);
	return ret;
}

int ipc_rst_finish(struct ipc_rst *r)
{
	for (size_t i = 0; i < r->img->n_shm; i++)
		if (r->img->shm[i]->removed && shmctl(r->img->shm[i]->perm->id, IPC_RMID, NULL) < 0)
			return log_errno(errno, "shmid %d: cannot mark it removed",
					 r->img->shm[i]->perm->id);
	return 0;
}

void ipc_rst_free(struct ipc_rst *r, bool undo)
{
	if (!r)
		return;
	for (int k = K_SHM; undo && k <= K_MSG; k++)
		for (size_t i = 0; r->made[k] && i < entry_count(r->img, k); i++)
			if (r->made[k][i] && rmid(k, entry_perm(r->img, k, i)->id) < 0 && errno != EINVAL &&
			    errno != EIDRM)
				log_warn_errno(errno, "%s id %d: cannot remove it",
					       kind_name[k], entry_perm(r->img, k, i)->id);
	for (int k = K_SHM; k <= K_MSG; k++)
		free(r->made[k]);
	if (r->img)
		ipc_image__free_unpacked(r->img, NULL);
	free(r);
}
