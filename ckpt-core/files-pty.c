// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Pseudo-terminals: a master (/dev/ptmx) and its slave (/dev/pts/N).
 *
 * Dump: the master's entry carries the state of the pair, read through our
 * copy of it (termios and window size act on the slave through the master):
 * index (TIOCGPTN), termios (TCGETS2), window size, packet mode, lock, the
 * session whose controlling terminal the slave is and its foreground process
 * group (TIOCGSID, TIOCGPGRP), and, through a slave of our own (TIOCGPTPEER),
 * its owner and mode, exclusive mode and the data queued each way:
 *  - master_in: what the slave wrote and the master has not read: read from
 *    our copy of the master (O_NONBLOCK and packet mode off for the time);
 *  - slave_in: what the master wrote and the slave has not read: read from
 *    our slave with ICANON off for the time (a line not finished yet is read
 *    too).
 * Reading takes the bytes out; files_dump_release() puts them back when the
 * tree goes on (--leave-running, a failed dump) before it is let go.  A
 * slave entry only names its pair.  A slave whose master is not in the tree
 * is the terminal a --shell-job runs in (it becomes a FILE_TTY entry, the
 * restorer's terminal) or is refused.
 *
 * Restore: the first pty entry opened builds every pair of the image: /dev/ptmx
 * is opened until each dumped index comes back (the kernel gives the lowest
 * free index; indexes in between are held and closed afterwards; an index in
 * use fails the restore naming it).  Each pair gets, in this order: unlocked,
 * window size, a raw termios to put the data back untouched (slave_in from
 * the master, master_in from the slave, both waited for in the line
 * discipline), then the dumped termios, packet mode, the slave's owner and
 * mode.  Slave entries are opened through the master (TIOCGPTPEER).  The
 * session leader takes its controlling terminal right after setsid(), and
 * sets the foreground group once every group exists (restore.c); exclusive
 * mode and the lock come back last (files_rst_finish()).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <asm/termbits.h>

#include "files.h"
#include "log.h"
#include "kup-pty.pb-c.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER	_IO('T', 0x41)
#endif

#define PTY_DATA_MAX	(1u << 20)	/* bytes queued one way, far above the kernel's */
#define PTY_INDEX_MAX	(1u << 20)
#define PTMX_OPENS_MAX	8192		/* /dev/ptmx opens to reach the dumped indexes */

static bool is_ptmx(dev_t rdev)
{
	return major(rdev) == 5 && minor(rdev) == 2;
}

static bool is_pts(dev_t rdev)
{
	return major(rdev) >= 136 && major(rdev) <= 143;
}

static uint32_t pts_index(dev_t rdev)
{
	return (major(rdev) - 136) * 256 + minor(rdev);
}

/* The terminal behind /dev/tty (5:0): the controlling terminal it was
 * opened on (TIOCGDEV), 0 if none. */
static dev_t dev_tty_target(const struct fd_info *fi)
{
	unsigned int d = 0;

	if (major(fi->st.st_rdev) != 5 || minor(fi->st.st_rdev) != 0 || ioctl(fi->lfd, TIOCGDEV, &d))
		return 0;
	return makedev((d >> 8) & 0xfff, (d & 0xff) | ((d >> 12) & 0xfff00));
}

static bool pty_match(const struct fd_info *fi)
{
	return S_ISCHR(fi->st.st_mode) && !(fi->flags & O_PATH) &&
	       (is_ptmx(fi->st.st_rdev) || is_pts(fi->st.st_rdev) ||
		is_pts(dev_tty_target(fi)));
}

/* --- termios ------------------------------------------------------------- */

static int tget(int fd, struct termios2 *t)
{
	return ioctl(fd, TCGETS2, t) ? -errno : 0;
}

static int tset(int fd, const struct termios2 *t)
{
	return ioctl(fd, TCSETS2, t) ? -errno : 0;
}

/* What the data is put back with: nothing translated, echoed or signalled. */
static void termios_raw(struct termios2 *t)
{
	t->c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON |
			IXOFF | IUCLC | IMAXBEL);
	t->c_oflag &= ~OPOST;
	t->c_lflag &= ~(ECHO | ECHOE | ECHOK | ECHONL | ECHOCTL | ECHOKE | ICANON | ISIG |
			IEXTEN | TOSTOP);
	t->c_cc[VMIN] = 1;
	t->c_cc[VTIME] = 0;
}

static void termios_to_entry(const struct termios2 *t, PtyTermios *e, uint8_t *cc)
{
	e->iflag = t->c_iflag;
	e->oflag = t->c_oflag;
	e->cflag = t->c_cflag;
	e->lflag = t->c_lflag;
	e->line = t->c_line;
	memcpy(cc, t->c_cc, NCCS);
	e->cc.data = cc;
	e->cc.len = NCCS;
	e->ispeed = t->c_ispeed;
	e->ospeed = t->c_ospeed;
}

static void termios_from_entry(const PtyTermios *e, struct termios2 *t)
{
	memset(t, 0, sizeof(*t));
	t->c_iflag = e->iflag;
	t->c_oflag = e->oflag;
	t->c_cflag = e->cflag;
	t->c_lflag = e->lflag;
	t->c_line = e->line;
	memcpy(t->c_cc, e->cc.data, NCCS);
	t->c_ispeed = e->ispeed;
	t->c_ospeed = e->ospeed;
}

/* --- the queues ---------------------------------------------------------- */

/* Everything readable from @fd (non-blocking), appended to *buf.  A master
 * in packet mode (*status not NULL) gives a status byte alone, or a zero
 * byte before the data. */
static int drain(int fd, uint8_t **buf, size_t *len, int *status)
{
	for (;;) {
		uint8_t *nb;
		ssize_t r;

		if (*len >= PTY_DATA_MAX)
			return -EFBIG;
		nb = realloc(*buf, *len + 4096);
		if (!nb)
			return -ENOMEM;
		*buf = nb;
		r = read(fd, *buf + *len, 4096);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EIO))
			return 0;	/* empty; EIO: empty and the other side closed */
		if (r < 0)
			return -errno;
		if (r == 0)
			return 0;
		if (status) {
			if ((*buf)[*len]) {
				*status |= (*buf)[*len];
				continue;
			}
			memmove(*buf + *len, *buf + *len + 1, r - 1);
			r--;
		}
		*len += r;
	}
}

/* Wait until @fd's line discipline holds @len bytes to read (TIOCINQ): the
 * kernel moves written bytes there from a work queue. */
static int wait_inq(int fd, size_t len)
{
	struct timespec ts = { 0, 1000000 };

	for (int i = 0; i < 5000; i++) {
		int n = 0;

		if (ioctl(fd, TIOCINQ, &n))
			return -errno;
		if ((size_t)n >= len)
			return 0;
		nanosleep(&ts, NULL);
	}
	return -ETIMEDOUT;
}

static int write_all(int fd, const uint8_t *b, size_t len)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };

	while (len) {
		ssize_t r = write(fd, b, len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN) {
			if (poll(&pfd, 1, 2000) <= 0)
				return -ETIMEDOUT;
			continue;
		}
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO;
		b += r;
		len -= r;
	}
	return 0;
}

/*
 * Put @sin (for the slave to read) and @min (for the master to read) into
 * the pair of @mfd/@sfd, untranslated, and give the slave termios @t back.
 */
static int refill(int mfd, int sfd, const struct termios2 *t, const uint8_t *sin, size_t sinlen,
		  const uint8_t *min, size_t minlen)
{
	struct termios2 raw = *t;
	int ret, ret2;

	if (!sinlen && !minlen)
		return tset(sfd, t);
	termios_raw(&raw);
	ret = tset(sfd, &raw);
	if (ret)
		return ret;
	ret = write_all(mfd, sin, sinlen);
	if (!ret && sinlen)
		ret = wait_inq(sfd, sinlen);
	if (!ret)
		ret = write_all(sfd, min, minlen);
	if (!ret && minlen)
		ret = wait_inq(mfd, minlen);
	ret2 = tset(sfd, t);
	return ret ? ret : ret2;
}

/*
 * The packet-mode status byte the master had not read: its flow-control
 * change (TIOCPKT_DOSTOP/NOSTOP) comes back by a termios change on the slave
 * that the kernel reports the same way; the other bits are not kept.
 */
static int pkt_status_restore(int sfd, const struct termios2 *t, unsigned int status)
{
	bool flow = (t->c_iflag & IXON) && t->c_cc[VSTOP] == 023 && t->c_cc[VSTART] == 021;
	struct termios2 other = *t;
	int ret;

	if (!((status & TIOCPKT_NOSTOP) && !flow) && !((status & TIOCPKT_DOSTOP) && flow))
		return 0;
	other.c_iflag ^= IXON;
	if (flow)
		other.c_iflag &= ~IXON;
	else
		other.c_cc[VSTOP] = 023, other.c_cc[VSTART] = 021, other.c_iflag |= IXON;
	ret = tset(sfd, &other);
	if (!ret)
		ret = tset(sfd, t);
	return ret;
}

/* --- dump ---------------------------------------------------------------- */

static int pack_pty(FileEntry *fe, const PtyEntry *pe)
{
	size_t len = pty_entry__get_packed_size(pe);

	fe->pty.data = malloc(len ? len : 1);
	if (!fe->pty.data)
		return -ENOMEM;
	fe->pty.len = pty_entry__pack(pe, fe->pty.data);
	fe->has_pty = true;
	return 0;
}

static int devpts_dev(dev_t *dev)
{
	struct stat st;

	if (stat("/dev/pts", &st))
		return -errno;
	*dev = st.st_dev;
	return 0;
}

/* Our own slave of the master @mfd; a locked pair is unlocked for the open. */
static int open_peer(const struct fd_info *fi, int mfd, bool locked)
{
	int zero = 0, one = 1, sfd, e;

	if (locked && ioctl(mfd, TIOCSPTLCK, &zero))
		return log_errno(errno, FI_FMT ": pty master: cannot unlock it", FI_ARG(fi));
	sfd = ioctl(mfd, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	e = errno;
	if (locked)
		ioctl(mfd, TIOCSPTLCK, &one);
	if (sfd < 0)
		return log_errno(e, FI_FMT ": pty master: cannot open its slave (TIOCGPTPEER)",
				 FI_ARG(fi));
	return sfd;
}

/* The queued data of the pair, taken out of it (put back by
 * pty_dump_release() if the tree goes on). */
static int take_data(const struct fd_info *fi, struct files_obj *o, const struct termios2 *t,
		     bool packet)
{
	struct termios2 nc = *t;
	int fl = fcntl(o->fd, F_GETFL), ret, ret2;
	uint8_t *b = NULL;
	size_t n = 0;

	o->flag2 = true;	/* from here on: put back if the tree goes on */
	/* the master's queue: through the tree's description */
	if (fl < 0)
		return log_errno(errno, FI_FMT ": pty master: F_GETFL", FI_ARG(fi));
	ret = fcntl(o->fd, F_SETFL, fl | O_NONBLOCK) ? -errno : 0;
	if (!ret) {
		ret = drain(o->fd, &b, &n, packet ? &o->uses : NULL);
		if (fcntl(o->fd, F_SETFL, fl) && !ret)
			ret = -errno;
	}
	o->buf = b;
	o->len = n;
	if (ret)
		return log_errno(ret, FI_FMT ": pty master: cannot read what the slave wrote",
				 FI_ARG(fi));
	/* the slave's queue, a line not finished yet included */
	b = NULL;
	n = 0;
	nc.c_lflag &= ~ICANON;
	nc.c_cc[VMIN] = 1;
	nc.c_cc[VTIME] = 0;
	ret = tset(o->fd2, &nc);
	if (!ret)
		ret = drain(o->fd2, &b, &n, NULL);
	ret2 = tset(o->fd2, t);
	o->buf2 = b;
	o->len2 = n;
	if (ret || ret2)
		return log_errno(ret ? ret : ret2, FI_FMT ": pty slave: cannot read what the master "
				 "wrote", FI_ARG(fi));
	return 0;
}

/* The index N of the master @fi (of /dev/pts/N). */
static int master_index(const struct fd_info *fi, int *idx)
{
	if (ioctl(fi->lfd, TIOCGPTN, idx))
		return log_errno(errno, FI_FMT ": pty master %s: no index (TIOCGPTN)", FI_ARG(fi),
				 fi->link);
	if (*idx < 0 || (unsigned int)*idx >= PTY_INDEX_MAX) {
		log_err(FI_FMT ": pty master %s: index %d out of range", FI_ARG(fi), fi->link, *idx);
		return -EOPNOTSUPP;
	}
	return 0;
}

static int master_dump(const struct fd_info *fi, FileEntry *fe)
{
	PtyEntry pe = PTY_ENTRY__INIT;
	PtyTermios pt = PTY_TERMIOS__INIT;
	struct files_obj *o;
	struct termios2 t;
	struct winsize ws;
	struct stat st;
	uint8_t cc[NCCS];
	int idx, locked = 0, packet = 0, excl = 0, ld = 0, ret;
	pid_t sid = 0, pg = 0;
	dev_t pts_dev = 0;

	ret = master_index(fi, &idx);
	if (ret)
		return ret;
	if (ioctl(fi->lfd, TIOCGPTLCK, &locked) || ioctl(fi->lfd, TIOCGPKT, &packet) ||
	    ioctl(fi->lfd, TIOCGWINSZ, &ws) || tget(fi->lfd, &t))
		return log_errno(errno, FI_FMT ": pty master of /dev/pts/%d: cannot read its state",
				 FI_ARG(fi), idx);
	if (ioctl(fi->lfd, TIOCGSID, &sid))
		sid = 0;	/* ENOTTY: no session has it */
	if (sid && ioctl(fi->lfd, TIOCGPGRP, &pg))
		pg = 0;
	o = files_dump_obj(fi->d, FOBJ_PTY, 0, idx, true);
	if (!o)
		return -ENOMEM;
	o->fe = fe;
	o->pid = fi->pid;
	o->fdnum = fi->fd;
	o->fd = dup(fi->lfd);
	if (o->fd < 0)
		return log_errno(errno, FI_FMT ": pty master", FI_ARG(fi));
	o->fd2 = open_peer(fi, fi->lfd, locked);
	if (o->fd2 < 0)
		return o->fd2;
	ret = devpts_dev(&pts_dev);
	if (ret)
		return log_errno(ret, "cannot stat /dev/pts");
	if (fstat(o->fd2, &st))
		return log_errno(errno, FI_FMT ": /dev/pts/%d: stat", FI_ARG(fi), idx);
	if (st.st_dev != pts_dev) {
		log_err(FI_FMT ": /dev/pts/%d is not on the devpts mounted at /dev/pts: not supported",
			FI_ARG(fi), idx);
		return -EOPNOTSUPP;
	}
	if (ioctl(o->fd2, TIOCGEXCL, &excl) || ioctl(o->fd2, TIOCGETD, &ld))
		return log_errno(errno, FI_FMT ": /dev/pts/%d: TIOCGEXCL, TIOCGETD", FI_ARG(fi), idx);
	if (ld != 0) {
		log_err(FI_FMT ": /dev/pts/%d: line discipline %d not supported (only N_TTY)",
			FI_ARG(fi), idx, ld);
		return -EOPNOTSUPP;
	}
	ret = take_data(fi, o, &t, packet);
	if (ret)
		return ret;

	pe.master = true;
	pe.index = idx;
	termios_to_entry(&t, &pt, cc);
	pe.termios = &pt;
	pe.has_ws_row = pe.has_ws_col = pe.has_ws_xpixel = pe.has_ws_ypixel = true;
	pe.ws_row = ws.ws_row;
	pe.ws_col = ws.ws_col;
	pe.ws_xpixel = ws.ws_xpixel;
	pe.ws_ypixel = ws.ws_ypixel;
	pe.has_packet = pe.has_locked = pe.has_exclusive = true;
	pe.packet = packet;
	pe.locked = locked;
	pe.exclusive = excl;
	pe.has_master_in = pe.has_slave_in = true;
	pe.master_in.data = o->buf;
	pe.master_in.len = o->len;
	pe.slave_in.data = o->buf2;
	pe.slave_in.len = o->len2;
	pe.has_pkt_status = true;
	pe.pkt_status = o->uses;
	pe.has_sid = pe.has_fg_pgrp = true;
	pe.sid = sid;
	pe.fg_pgrp = pg;
	pe.has_uid = pe.has_gid = pe.has_mode = true;
	pe.uid = st.st_uid;
	pe.gid = st.st_gid;
	pe.mode = st.st_mode & 07777;
	fe->path = malloc(32);
	if (!fe->path)
		return -ENOMEM;
	snprintf(fe->path, 32, "/dev/ptmx");
	log_debug(FI_FMT ": pty master of /dev/pts/%d: %zu bytes for the master, %zu for the "
		  "slave, session %d, foreground group %d", FI_ARG(fi), idx, o->len, o->len2,
		  sid, pg);
	return pack_pty(fe, &pe);
}

/*
 * A slave: /dev/pts/N, or /dev/tty opened on it (restored as a description
 * of /dev/pts/N: the same terminal, under its own name).
 */
static int slave_dump(const struct fd_info *fi, FileEntry *fe)
{
	PtyEntry pe = PTY_ENTRY__INIT;
	dev_t tty = dev_tty_target(fi), rdev = tty ? tty : fi->st.st_rdev;
	struct files_obj *o;
	dev_t pts_dev = 0;
	int ret = devpts_dev(&pts_dev);

	if (ret)
		return log_errno(ret, "cannot stat /dev/pts");
	fe->path = strdup(fi->link);
	fe->has_rdev = true;
	fe->rdev = fi->st.st_rdev;
	if (!fe->path)
		return -ENOMEM;
	o = files_dump_obj(fi->d, FOBJ_PTY_SLAVE, pts_index(rdev), fe->id, true);
	if (!o)
		return -ENOMEM;
	o->fe = fe;
	o->pid = fi->pid;
	o->fdnum = fi->fd;
	/* /dev/tty: the tree's pty of that index, if any (checked at the end) */
	o->flag = tty || fi->st.st_dev == pts_dev;
	pe.index = pts_index(rdev);
	return pack_pty(fe, &pe);
}

static int pty_not_fd(const struct fd_info *fi)
{
	log_err(FI_FMT ": %s: a terminal that is not an fd is not supported", FI_ARG(fi), fi->link);
	return -EOPNOTSUPP;
}

static int pty_dump(const struct fd_info *fi, FileEntry *fe)
{
	if (fi->fd < 0)
		return pty_not_fd(fi);
	return is_ptmx(fi->st.st_rdev) ? master_dump(fi, fe) : slave_dump(fi, fe);
}

/*
 * The check of a live tree (ckpt_dump_check): a slave as the dump sees it
 * (slave_dump only looks), a master by its index only (its data stays
 * where it is), so that pty_dump_end refuses a slave whose master is not
 * in the tree, and the dump's check of a slave held outside the tree
 * (dump.c, check_pty_outside) finds the tree's masters.
 */
static int pty_check(const struct fd_info *fi, FileEntry *fe)
{
	struct files_obj *o;
	int idx, ret;

	if (fi->fd < 0)
		return pty_not_fd(fi);
	if (!is_ptmx(fi->st.st_rdev))
		return slave_dump(fi, fe);
	ret = master_index(fi, &idx);
	if (ret)
		return ret;
	o = files_dump_obj(fi->d, FOBJ_PTY, 0, idx, true);
	if (!o)
		return -ENOMEM;
	o->fe = fe;
	o->pid = fi->pid;
	o->fdnum = fi->fd;
	return 0;
}

/*
 * Every slave needs its master in the tree; otherwise it is the terminal of
 * a --shell-job (restored as the restorer's terminal), or refused.
 */
static int pty_dump_end(struct files_dump *d)
{
	bool shell_job = files_dump_opts(d)->shell_job;

	for (struct files_obj *o = files_dump_obj_next(d, NULL); o; o = files_dump_obj_next(d, o)) {
		struct files_obj *m;

		if (o->tag != FOBJ_PTY_SLAVE)
			continue;
		m = files_dump_obj(d, FOBJ_PTY, 0, o->a, false);
		if (m && m->fe && o->flag)
			continue;
		if (!shell_job) {
			log_err("pid %d fd %d: terminal %s needs --shell-job (%s)", o->pid, o->fdnum,
				o->fe->path, o->flag ? "its pty master is held outside the dumped tree" :
				"it is not on the devpts mounted at /dev/pts");
			return -EOPNOTSUPP;
		}
		o->fe->kind = FILE_KIND__FILE_TTY;
		free(o->fe->pty.data);
		o->fe->pty.data = NULL;
		o->fe->pty.len = 0;
		o->fe->has_pty = false;
	}
	return 0;
}

/* Put the data taken by take_data() back, if the tree goes on. */
static void pty_dump_release(struct files_dump *d, bool resume)
{
	for (struct files_obj *o = files_dump_obj_next(d, NULL); o; o = files_dump_obj_next(d, o)) {
		struct termios2 t;
		int ret;

		if (o->tag != FOBJ_PTY || !o->flag2)
			continue;
		o->flag2 = false;
		if (!resume)
			continue;
		ret = tget(o->fd2, &t);
		if (!ret)
			ret = refill(o->fd, o->fd2, &t, o->buf2, o->len2, o->buf, o->len);
		if (!ret && o->uses)
			ret = pkt_status_restore(o->fd2, &t, o->uses);
		if (ret)
			log_errno(ret, "pid %d fd %d: /dev/pts/%llu: cannot put back its queued data "
				  "(%zu bytes for the slave, %zu for the master)", o->pid, o->fdnum,
				  (unsigned long long)o->b, o->len2, o->len);
	}
}

int files_pty_cttys(const FilesImage *img, struct files_pty_ctty **out, size_t *n)
{
	struct files_pty_ctty *v = calloc(img->n_files ? img->n_files : 1, sizeof(*v));

	*n = 0;
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < img->n_files; i++) {
		const FileEntry *fe = img->files[i];
		PtyEntry *pe;

		if (fe->kind != FILE_KIND__FILE_PTY || !fe->has_pty)
			continue;
		pe = pty_entry__unpack(NULL, fe->pty.len, fe->pty.data);
		if (!pe) {
			free(v);
			return -EINVAL;
		}
		if (pe->master)
			v[(*n)++] = (struct files_pty_ctty){ pe->index, pe->sid, pe->fg_pgrp };
		pty_entry__free_unpacked(pe, NULL);
	}
	*out = v;
	return 0;
}

/* --- validation ---------------------------------------------------------- */

static PtyEntry *unpack_valid(const FileEntry *fe)
{
	PtyEntry *pe;

	if (!fe->has_pty || (fe->pty.len && !fe->pty.data)) {
		log_err(FE_FMT ": pty entry without its pty data", FE_ARG(fe));
		return NULL;
	}
	pe = pty_entry__unpack(NULL, fe->pty.len, fe->pty.data);
	if (!pe) {
		log_err(FE_FMT ": cannot decode its pty data", FE_ARG(fe));
		return NULL;
	}
	if (pe->index >= PTY_INDEX_MAX)
		goto bad;
	if (pe->master) {
		const PtyTermios *t = pe->termios;

		if (!t || !t->cc.data || t->cc.len != NCCS || t->line != 0 ||
		    !pe->has_ws_row || !pe->has_ws_col || pe->ws_row > 0xffff ||
		    pe->ws_col > 0xffff || pe->ws_xpixel > 0xffff || pe->ws_ypixel > 0xffff ||
		    pe->master_in.len > PTY_DATA_MAX || pe->slave_in.len > PTY_DATA_MAX ||
		    (pe->master_in.len && !pe->master_in.data) ||
		    (pe->slave_in.len && !pe->slave_in.data) || pe->mode > 07777 ||
		    (pe->fg_pgrp && !pe->sid) || pe->sid > (1u << 22) || pe->fg_pgrp > (1u << 22))
			goto bad;
	}
	return pe;
bad:
	log_err(FE_FMT ": bad pty data (/dev/pts/%u)", FE_ARG(fe), pe->index);
	pty_entry__free_unpacked(pe, NULL);
	return NULL;
}

static int pty_validate(const FileEntry *fe)
{
	PtyEntry *pe = unpack_valid(fe);

	if (!pe)
		return -EINVAL;
	pty_entry__free_unpacked(pe, NULL);
	if (fe->flags & (O_PATH | O_DIRECTORY)) {
		log_err(FE_FMT ": bad flags 0%o for a terminal", FE_ARG(fe), fe->flags);
		return -EINVAL;
	}
	return 0;
}

/* --- restore ------------------------------------------------------------- */

/* The state of one pair on its new master @mfd (which this takes over). */
static int pair_setup(const FileEntry *fe, const PtyEntry *pe, int mfd, struct files_rst *fr)
{
	struct winsize ws = { pe->ws_row, pe->ws_col, pe->ws_xpixel, pe->ws_ypixel };
	struct files_obj *o = files_rst_obj(fr, FOBJ_PTY, 0, pe->index, true);
	struct termios2 t;
	int zero = 0, one = 1, sfd, ret;

	if (!o) {
		close(mfd);
		return -ENOMEM;
	}
	o->fd = mfd;		/* the object owns it from here on */
	if (ioctl(mfd, TIOCSPTLCK, &zero) || ioctl(mfd, TIOCSWINSZ, &ws))
		return log_errno(errno, FE_FMT ": /dev/pts/%u: cannot unlock it or set its window "
				 "size", FE_ARG(fe), pe->index);
	sfd = ioctl(mfd, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (sfd < 0)
		return log_errno(errno, FE_FMT ": /dev/pts/%u: cannot open the slave", FE_ARG(fe),
				 pe->index);
	o->fd2 = sfd;
	termios_from_entry(pe->termios, &t);
	ret = refill(mfd, sfd, &t, pe->slave_in.data, pe->slave_in.len, pe->master_in.data,
		     pe->master_in.len);
	if (ret)
		return log_errno(ret, FE_FMT ": /dev/pts/%u: cannot set its termios and queued data "
				 "(%zu bytes for the slave, %zu for the master)", FE_ARG(fe), pe->index,
				 pe->slave_in.len, pe->master_in.len);
	if (pe->packet && (ioctl(mfd, TIOCPKT, &one) ||
			   pkt_status_restore(sfd, &t, pe->pkt_status)))
		return log_errno(errno, FE_FMT ": /dev/pts/%u: cannot set packet mode", FE_ARG(fe),
				 pe->index);
	if ((pe->has_uid && fchown(sfd, pe->uid, pe->gid)) || (pe->has_mode && fchmod(sfd, pe->mode)))
		return log_errno(errno, FE_FMT ": /dev/pts/%u: cannot give it owner %u:%u, mode %o",
				 FE_ARG(fe), pe->index, pe->uid, pe->gid, pe->mode);
	return 0;
}

struct want {
	const FileEntry *fe;
	PtyEntry *pe;
	int fd;
};

static int cmp_want(const void *a, const void *b)
{
	const struct want *x = a, *y = b;
	return x->pe->index < y->pe->index ? -1 : x->pe->index > y->pe->index;
}

/*
 * Every pair of the image, with its dumped index: /dev/ptmx gives the
 * lowest free index, so opening it until the highest one wanted comes back
 * gives each, unless one is taken.
 */
static int build_all(struct files_rst *fr)
{
	size_t n = files_rst_count(fr), nw = 0, got = 0, nfill = 0;
	struct want *w = calloc(n ? n : 1, sizeof(*w));
	int *fill = calloc(PTMX_OPENS_MAX, sizeof(int));
	int ret = 0;

	if (!w || !fill) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const FileEntry *fe = files_rst_nth(fr, i);

		if (fe->kind != FILE_KIND__FILE_PTY)
			continue;
		w[nw].pe = unpack_valid(fe);
		if (!w[nw].pe) {
			ret = -EINVAL;
			goto out;
		}
		if (!w[nw].pe->master) {
			pty_entry__free_unpacked(w[nw].pe, NULL);
			continue;
		}
		w[nw].fe = fe;
		w[nw++].fd = -1;
	}
	qsort(w, nw, sizeof(*w), cmp_want);
	for (size_t i = 1; i < nw; i++)
		if (w[i].pe->index == w[i - 1].pe->index) {
			log_err(FE_FMT ": /dev/pts/%u has two masters in the image", FE_ARG(w[i].fe),
				w[i].pe->index);
			ret = -EINVAL;
			goto out;
		}
	while (got < nw) {
		int fd = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC), idx;
		size_t k;

		if (fd < 0) {
			ret = log_errno(errno, "cannot open /dev/ptmx for /dev/pts/%u",
					w[got].pe->index);
			goto out;
		}
		if (ioctl(fd, TIOCGPTN, &idx)) {
			ret = log_errno(errno, "/dev/ptmx: TIOCGPTN");
			close(fd);
			goto out;
		}
		for (k = got; k < nw && w[k].pe->index != (uint32_t)idx; k++)
			;
		if (k < nw) {
			w[k].fd = fd;
			while (got < nw && w[got].fd >= 0)
				got++;
			continue;
		}
		if ((uint32_t)idx > w[got].pe->index) {
			log_err(FE_FMT ": cannot restore pty /dev/pts/%u: the index is in use",
				FE_ARG(w[got].fe), w[got].pe->index);
			close(fd);
			ret = -EBUSY;
			goto out;
		}
		if (nfill == PTMX_OPENS_MAX) {
			log_err(FE_FMT ": cannot reach pty index %u", FE_ARG(w[got].fe),
				w[got].pe->index);
			close(fd);
			ret = -EMFILE;
			goto out;
		}
		fill[nfill++] = fd;
	}
	for (size_t i = 0; i < nw; i++) {
		ret = pair_setup(w[i].fe, w[i].pe, w[i].fd, fr);
		w[i].fd = -1;	/* the object owns it */
		if (ret)
			goto out;
	}
out:
	for (size_t i = 0; w && i < nw; i++) {
		if (w[i].fd >= 0)
			close(w[i].fd);
		pty_entry__free_unpacked(w[i].pe, NULL);
	}
	for (size_t i = 0; i < nfill; i++)
		close(fill[i]);
	free(fill);
	free(w);
	return ret;
}

static int pty_open(const FileEntry *fe, struct files_rst *fr)
{
	struct files_obj *built = files_rst_obj(fr, FOBJ_PTY, 1, 0, true), *o;
	PtyEntry *pe = unpack_valid(fe);
	int fd, ret;

	if (!pe || !built) {
		ret = pe ? -ENOMEM : -EINVAL;
		goto out;
	}
	if (!built->flag) {
		built->flag = true;
		ret = build_all(fr);
		if (ret)
			goto out;
	}
	o = files_rst_obj(fr, FOBJ_PTY, 0, pe->index, false);
	if (!o || o->fd < 0) {
		log_err(FE_FMT ": /dev/pts/%u: its master is not in the image", FE_ARG(fe), pe->index);
		ret = -EINVAL;
		goto out;
	}
	if (pe->master)
		fd = fcntl(o->fd, F_DUPFD_CLOEXEC, 0);
	else
		/* no O_CLOEXEC: a file opened by TIOCGPTPEER keeps it in its
		 * f_flags, which fdinfo shows as the fd's close-on-exec */
		fd = ioctl(o->fd, TIOCGPTPEER, (fe->flags & O_ACCMODE) | O_NOCTTY);
	ret = fd < 0 ? log_errno(errno, FE_FMT ": cannot open /dev/pts/%u's %s", FE_ARG(fe),
				 pe->index, pe->master ? "master" : "slave") : fd;
out:
	if (pe)
		pty_entry__free_unpacked(pe, NULL);
	return ret;
}

/* For each master of the image: @fn(fe, pe, master fd). */
static int for_each_master(const struct files_rst *fr,
			   int (*fn)(const FileEntry *fe, const PtyEntry *pe, int fd, void *arg),
			   void *arg)
{
	for (size_t i = 0; i < files_rst_count(fr); i++) {
		const FileEntry *fe = files_rst_nth(fr, i);
		PtyEntry *pe;
		int ret = 0;

		if (fe->kind != FILE_KIND__FILE_PTY || !fe->has_pty)
			continue;
		pe = pty_entry__unpack(NULL, fe->pty.len, fe->pty.data);
		if (!pe)
			return -EINVAL;
		if (pe->master)
			ret = fn(fe, pe, files_rst_fd(fr, fe->id), arg);
		pty_entry__free_unpacked(pe, NULL);
		if (ret)
			return ret;
	}
	return 0;
}

static int finish_one(const FileEntry *fe, const PtyEntry *pe, int mfd, void *arg)
{
	int one = 1;

	if (pe->exclusive) {
		int sfd = ioctl(mfd, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);

		if (sfd < 0 || ioctl(sfd, TIOCEXCL)) {
			int e = errno;

			if (sfd >= 0)
				close(sfd);
			return log_errno(e, FE_FMT ": /dev/pts/%u: cannot set exclusive mode",
					 FE_ARG(fe), pe->index);
		}
		close(sfd);
	}
	if (pe->locked && ioctl(mfd, TIOCSPTLCK, &one))
		return log_errno(errno, FE_FMT ": /dev/pts/%u: cannot lock it", FE_ARG(fe), pe->index);
	return 0;
}

static int pty_rst_finish(struct files_rst *fr)
{
	return for_each_master(fr, finish_one, NULL);
}

struct ctty_arg {
	pid_t sid;
	bool fg;
};

static int ctty_one(const FileEntry *fe, const PtyEntry *pe, int mfd, void *arg)
{
	const struct ctty_arg *a = arg;
	pid_t pg = pe->fg_pgrp;

	if (pe->sid != (uint32_t)a->sid)
		return 0;
	if (!a->fg && ioctl(mfd, TIOCSCTTY, 0))
		return log_errno(errno, "pid %d: cannot make /dev/pts/%u its controlling terminal",
				 a->sid, pe->index);
	if (a->fg && pg && ioctl(mfd, TIOCSPGRP, &pg))
		return log_errno(errno, "pid %d: cannot make process group %d the foreground "
				 "of /dev/pts/%u", a->sid, pg, pe->index);
	return 0;
}

int files_pty_ctty_restore(const struct files_rst *fr, pid_t sid, bool fg)
{
	struct ctty_arg a = { sid, fg };

	return for_each_master(fr, ctty_one, &a);
}

const struct file_kind_ops files_pty_ops = {
	.kind = FILE_KIND__FILE_PTY,
	.name = "pty",
	.match = pty_match,
	.dump = pty_dump,
	.check = pty_check,
	.dump_end = pty_dump_end,
	.dump_release = pty_dump_release,
	.validate = pty_validate,
	.open = pty_open,
	.rst_finish = pty_rst_finish,
};
