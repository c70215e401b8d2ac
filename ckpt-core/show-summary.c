// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kup show's summaries of a checkpoint (ckpt-summary.h): the process tree,
 * the file descriptors, the mappings, one row per object as JSON objects
 * that ckpt_show_table() prints as a table.  The images come from memory
 * (struct ckpt_show_set: read from a directory or a store by kup show), are
 * parsed as any image is (img_parse: bounds, checksums), and are trusted no
 * further: a missing or damaged image leaves its columns empty.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ckpt-images.h"
#include "ckpt-summary.h"
#include "json.h"
#include "log.h"
#include "kup-sk-inet.pb-c.h"
#include "kup-sk-netlink.pb-c.h"
#include "kup-sk-packet.pb-c.h"
#include "kup-sk-unix.pb-c.h"
#include "kup-pty.pb-c.h"
#include "kup-tun.pb-c.h"

#define PAGE_SZ 4096ULL

const struct ckpt_show_blob *ckpt_show_find(const struct ckpt_show_set *set, const char *name)
{
	for (size_t i = 0; i < set->n; i++)
		if (!strcmp(set->v[i].name, name))
			return &set->v[i];
	return NULL;
}

/* The one message of image @name, or NULL (missing: quietly; damaged: logged). */
static ProtobufCMessage *read_one(const struct ckpt_show_set *set, const char *name,
				  enum img_kind kind, const ProtobufCMessageDescriptor *d)
{
	const struct ckpt_show_blob *b = ckpt_show_find(set, name);
	ProtobufCMessage **msgs, *m = NULL;
	size_t n;

	if (!b || !b->data || img_parse(b->data, b->len, kind, d, name, &msgs, &n))
		return NULL;
	if (n == 1) {
		m = msgs[0];
		msgs[0] = NULL;
	} else {
		log_err("image %s: %zu records, one expected", name, n);
	}
	img_free_msgs(msgs, n);
	return m;
}

static ProtobufCMessage *read_pid(const struct ckpt_show_set *set, const char *what,
				  uint32_t pid, enum img_kind kind,
				  const ProtobufCMessageDescriptor *d)
{
	char name[64];

	snprintf(name, sizeof(name), "%s-%u.img", what, pid);
	return read_one(set, name, kind, d);
}

/* The tree; @pid (0: any) must be one of its processes. */
static PstreeImage *read_pstree(const struct ckpt_show_set *set, uint32_t pid)
{
	PstreeImage *pst = (PstreeImage *)read_one(set, "pstree.img", IMG_PSTREE,
						   &pstree_image__descriptor);

	if (!pst) {
		log_err("no readable pstree.img: not a checkpoint");
		return NULL;
	}
	for (size_t i = 0; pid && i < pst->n_entries; i++)
		if (pst->entries[i]->pid == pid)
			return pst;
	if (pid) {
		log_err("pid %u is not a process of the checkpoint", pid);
		pstree_image__free_unpacked(pst, NULL);
		return NULL;
	}
	return pst;
}

static const FileEntry *file_by_id(const FilesImage *fi, uint32_t id)
{
	for (size_t i = 0; fi && i < fi->n_files; i++)
		if (fi->files[i]->id == id)
			return fi->files[i];
	return NULL;
}

static json_t *fmt_str(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *fmt_str(const char *fmt, ...)
{
	char b[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	return kup_json_str(b);
}

/* ---- --ps ---------------------------------------------------------------- */

json_t *ckpt_show_ps(const struct ckpt_show_set *set)
{
	PstreeImage *pst = read_pstree(set, 0);
	FilesImage *fi;
	json_t *rows;

	if (!pst)
		return NULL;
	fi = (FilesImage *)read_one(set, "files.img", IMG_FILES, &files_image__descriptor);
	rows = json_array();
	for (size_t i = 0; i < pst->n_entries; i++) {
		const PstreeEntry *pe = pst->entries[i];
		CoreEntry *ce = (CoreEntry *)read_pid(set, "core", pe->pid, IMG_CORE,
						      &core_entry__descriptor);
		const ProtobufCEnumValue *st =
			protobuf_c_enum_descriptor_get_value(&task_state__descriptor, pe->state);
		const FileEntry *exe = NULL;
		json_t *r = json_object();

		if (ce && ce->mm && ce->mm->has_exe_file_id)
			exe = file_by_id(fi, ce->mm->exe_file_id);
		kup_json_set(r, "pid", json_integer(pe->pid));
		kup_json_set(r, "ppid", json_integer(pe->ppid));
		kup_json_set(r, "pgid", json_integer(pe->pgid));
		kup_json_set(r, "sid", json_integer(pe->sid));
		kup_json_set(r, "threads", json_integer(pe->n_threads));
		kup_json_set(r, "state", json_string(st ? st->name + 5 : "?"));	/* "TASK_" */
		kup_json_set(r, "comm", kup_json_str(ce && ce->n_threads ? ce->threads[0]->comm : NULL));
		kup_json_set(r, "exe", kup_json_str(exe ? exe->path : NULL));
		json_array_append_new(rows, r);
		if (ce)
			core_entry__free_unpacked(ce, NULL);
	}
	if (fi)
		files_image__free_unpacked(fi, NULL);
	pstree_image__free_unpacked(pst, NULL);
	return rows;
}

/* ---- --fds --------------------------------------------------------------- */

static void inet_ep(char *buf, size_t len, const ProtobufCBinaryData *a, bool has, uint32_t port)
{
	char s[INET6_ADDRSTRLEN] = "*";

	if (has && (a->len == 4 || a->len == 16))
		inet_ntop(a->len == 4 ? AF_INET : AF_INET6, a->data, s, sizeof(s));
	snprintf(buf, len, a->len == 16 ? "[%s]:%u" : "%s:%u", s, port);
}

static const char *const tcp_states[] = {
	[1] = "ESTABLISHED", [2] = "SYN_SENT", [3] = "SYN_RECV", [4] = "FIN_WAIT1",
	[5] = "FIN_WAIT2", [6] = "TIME_WAIT", [7] = "CLOSE", [8] = "CLOSE_WAIT",
	[9] = "LAST_ACK", [10] = "LISTEN", [11] = "CLOSING",
};

static const char *tcp_state(uint32_t s)
{
	return s < sizeof(tcp_states) / sizeof(tcp_states[0]) && tcp_states[s] ? tcp_states[s] : "?";
}

static const char *sock_type(uint32_t t)
{
	return t == 1 ? "stream" : t == 2 ? "dgram" : t == 3 ? "raw" : t == 5 ? "seqpacket" : "?";
}

static void unix_name(char *buf, size_t len, const ProtobufCBinaryData *n)
{
	size_t i, o = 0;

	for (i = 0; i < n->len && o + 1 < len; i++) {
		char c = n->data[i];

		if (!i && !c)
			c = '@';
		else if (!c)
			break;
		buf[o++] = c;
	}
	buf[o] = 0;
}

static json_t *desc_unix(const FileEntry *fe)
{
	UnixSkEntry *u = fe->has_sk ? unix_sk_entry__unpack(NULL, fe->sk.len, fe->sk.data) : NULL;
	char name[256] = "", peer[256] = "";
	json_t *j;

	if (!u)
		return json_string("unix ?");
	if (u->has_name)
		unix_name(name, sizeof(name), &u->name);
	if (u->has_peer_name)
		unix_name(peer, sizeof(peer), &u->peer_name);
	if (u->has_peer_ino && u->peer_ino)
		j = fmt_str("unix %s %s%s%s ino %" PRIu64 " -> ino %" PRIu64 "%s%s",
			    sock_type(u->type), tcp_state(u->state), *name ? " " : "", name,
			    u->ino, u->peer_ino, *peer ? " " : "", peer);
	else
		j = fmt_str("unix %s %s%s%s ino %" PRIu64, sock_type(u->type),
			    tcp_state(u->state), *name ? " " : "", name, u->ino);
	unix_sk_entry__free_unpacked(u, NULL);
	return j;
}

static json_t *desc_inet(const FileEntry *fe)
{
	SkInetEntry *e = fe->has_sk ? sk_inet_entry__unpack(NULL, fe->sk.len, fe->sk.data) : NULL;
	char src[64], dst[64];
	const char *proto;
	json_t *j;

	if (!e)
		return json_string("inet ?");
	proto = e->protocol == 6 ? "tcp" : e->protocol == 17 ? "udp" : e->type == 3 ? "raw" : "ip";
	inet_ep(src, sizeof(src), &e->src_addr, e->has_src_addr, e->src_port);
	if (e->has_dst_addr) {
		inet_ep(dst, sizeof(dst), &e->dst_addr, true, e->dst_port);
		j = fmt_str("%s%s %s -> %s %s", proto, e->family == 10 ? "6" : "", src, dst,
			    tcp_state(e->state));
	} else {
		j = fmt_str("%s%s %s %s", proto, e->family == 10 ? "6" : "", src,
			    tcp_state(e->state));
	}
	sk_inet_entry__free_unpacked(e, NULL);
	return j;
}

static json_t *desc_other_sk(const FileEntry *fe)
{
	json_t *j = NULL;

	if (fe->kind == FILE_KIND__FILE_NETLINK_SK && fe->has_sk) {
		SkNetlinkEntry *e = sk_netlink_entry__unpack(NULL, fe->sk.len, fe->sk.data);

		if (e) {
			j = fmt_str("netlink protocol %u portid %u", e->protocol, e->portid);
			sk_netlink_entry__free_unpacked(e, NULL);
		}
	} else if (fe->kind == FILE_KIND__FILE_PACKET_SK && fe->has_packet) {
		SkPacketEntry *e = sk_packet_entry__unpack(NULL, fe->packet.len, fe->packet.data);

		if (e) {
			j = fmt_str("packet %s protocol 0x%04x %s", sock_type(e->type), e->protocol,
				    e->ifname ?: "any");
			sk_packet_entry__free_unpacked(e, NULL);
		}
	} else if (fe->kind == FILE_KIND__FILE_TUN && fe->has_tun) {
		TunEntry *e = tun_entry__unpack(NULL, fe->tun.len, fe->tun.data);

		if (e) {
			j = fmt_str("tun %s", e->name);
			tun_entry__free_unpacked(e, NULL);
		}
	} else if (fe->kind == FILE_KIND__FILE_PTY && fe->has_pty) {
		PtyEntry *e = pty_entry__unpack(NULL, fe->pty.len, fe->pty.data);

		if (e) {
			j = fmt_str("%s /dev/pts/%u", e->master ? "ptmx" : "pts", e->index);
			pty_entry__free_unpacked(e, NULL);
		}
	}
	return j ?: json_string("?");
}

/* What an admin looks for first: the path, the peer, the address. */
static json_t *file_desc(const FileEntry *fe)
{
	switch (fe->kind) {
	case FILE_KIND__FILE_PIPE:
		return fmt_str("pipe:[%" PRIu64 "]", fe->pipe_ino);
	case FILE_KIND__FILE_UNIX_SK:
		return desc_unix(fe);
	case FILE_KIND__FILE_INET_SK:
		return desc_inet(fe);
	case FILE_KIND__FILE_NETLINK_SK: case FILE_KIND__FILE_PACKET_SK:
	case FILE_KIND__FILE_TUN: case FILE_KIND__FILE_PTY:
		return desc_other_sk(fe);
	case FILE_KIND__FILE_EVENTFD:
		return fmt_str("eventfd counter %" PRIu64, fe->counter);
	case FILE_KIND__FILE_EPOLL:
		return fmt_str("epoll %zu target%s", fe->n_tfds, fe->n_tfds == 1 ? "" : "s");
	case FILE_KIND__FILE_SIGNALFD:
		return fmt_str("signalfd mask 0x%" PRIx64, fe->sigmask);
	case FILE_KIND__FILE_TIMERFD:
		return fmt_str("timerfd clock %d", fe->clockid);
	case FILE_KIND__FILE_INOTIFY:
		return fmt_str("inotify %zu watch%s", fe->n_wds, fe->n_wds == 1 ? "" : "es");
	case FILE_KIND__FILE_FANOTIFY:
		return fmt_str("fanotify %zu mark%s", fe->n_fan_marks, fe->n_fan_marks == 1 ? "" : "s");
	case FILE_KIND__FILE_PIDFD:
		return fmt_str("pidfd pid %d", fe->pidfd_pid);
	default:
		if (fe->deleted)
			return fmt_str("%s (deleted)", fe->path ?: "?");
		return kup_json_str(fe->path ?: "");
	}
}

static const char *file_kind_name(int kind)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&file_kind__descriptor,
									  kind);

	return v ? v->name + 5 : "?";	/* "FILE_" */
}

static const FdtableEntry *table_of(const FdtableImage *ft, uint32_t pid)
{
	for (size_t t = 0; t < ft->n_tables; t++)
		if (ft->tables[t]->pid == pid)
			return ft->tables[t];
	return NULL;
}

json_t *ckpt_show_fds(const struct ckpt_show_set *set, uint32_t pid)
{
	PstreeImage *pst = read_pstree(set, pid);
	FdtableImage *ft;
	FilesImage *fi;
	json_t *rows;

	if (!pst)
		return NULL;
	ft = (FdtableImage *)read_one(set, "fdtable.img", IMG_FDTABLE, &fdtable_image__descriptor);
	fi = (FilesImage *)read_one(set, "files.img", IMG_FILES, &files_image__descriptor);
	rows = json_array();
	/* in the tree's order, parents first */
	for (size_t i = 0; ft && i < pst->n_entries; i++) {
		for (size_t t = 0; t < ft->n_tables; t++) {
			const FdtableEntry *te = ft->tables[t];
			uint32_t owner = te->pid;

			if (te->pid != pst->entries[i]->pid || (pid && te->pid != pid))
				continue;
			/* a table shared (CLONE_FILES) is kept with its first process */
			if (te->has_files_of && te->files_of != te->pid) {
				te = table_of(ft, te->files_of);
				if (!te)
					continue;
			}
			for (size_t k = 0; k < te->n_fds; k++) {
				const FileEntry *fe = file_by_id(fi, te->fds[k]->file_id);
				json_t *r = json_object();

				kup_json_set(r, "pid", json_integer(owner));
				kup_json_set(r, "fd", json_integer(te->fds[k]->fd));
				kup_json_set(r, "kind", json_string(fe ? file_kind_name(fe->kind) : "?"));
				kup_json_set(r, "file_id", json_integer(te->fds[k]->file_id));
				kup_json_set(r, "cloexec", json_boolean(te->fds[k]->cloexec));
				kup_json_set(r, "what", fe ? file_desc(fe) : json_string("?"));
				json_array_append_new(rows, r);
			}
		}
	}
	if (fi)
		files_image__free_unpacked(fi, NULL);
	if (ft)
		fdtable_image__free_unpacked(ft, NULL);
	pstree_image__free_unpacked(pst, NULL);
	return rows;
}

/* ---- --mappings ---------------------------------------------------------- */

static uint64_t pages_in(const MmImage *mm, uint64_t start, uint64_t end)
{
	uint64_t n = 0;

	for (size_t i = 0; i < mm->n_runs; i++) {
		uint64_t a = mm->runs[i]->vaddr, b;

		if (mm->runs[i]->nr_pages > (UINT64_MAX - a) / PAGE_SZ)
			continue;	/* damaged: counted nowhere */
		b = a + mm->runs[i]->nr_pages * PAGE_SZ;
		if (a < start)
			a = start;
		if (b > end)
			b = end;
		if (a < b)
			n += (b - a) / PAGE_SZ;
	}
	return n;
}

static void mappings_of(json_t *rows, const MmImage *mm, const FilesImage *fi)
{
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *v = mm->vmas[i];
		const ProtobufCEnumValue *k =
			protobuf_c_enum_descriptor_get_value(&vma_kind__descriptor, v->kind);
		const FileEntry *fe = v->has_file_id ? file_by_id(fi, v->file_id) : NULL;
		char prot[5] = "----", a[24];
		json_t *r = json_object();

		if (v->prot & PROT_READ)
			prot[0] = 'r';
		if (v->prot & PROT_WRITE)
			prot[1] = 'w';
		if (v->prot & PROT_EXEC)
			prot[2] = 'x';
		prot[3] = v->flags & MAP_SHARED ? 's' : 'p';
		kup_json_set(r, "pid", json_integer(mm->pid));
		snprintf(a, sizeof(a), "0x%" PRIx64, v->start);
		kup_json_set(r, "start", json_string(a));
		snprintf(a, sizeof(a), "0x%" PRIx64, v->end);
		kup_json_set(r, "end", json_string(a));
		kup_json_set(r, "prot", json_string(prot));
		kup_json_set(r, "flags", fmt_str("%s%s%s%s", v->flags & MAP_SHARED ? "shared" : "private",
						 v->flags & MAP_ANONYMOUS ? ",anonymous" : "",
						 v->has_growsdown && v->growsdown ? ",growsdown" : "",
						 v->has_locked && v->locked ? ",locked" : ""));
		kup_json_set(r, "kind", json_string(k ? k->name + 4 : "?"));	/* "VMA_" */
		kup_json_set(r, "file", kup_json_str(fe && fe->path ? fe->path : v->name ?: ""));
		kup_json_set(r, "pages", kup_json_u64(pages_in(mm, v->start, v->end)));
		json_array_append_new(rows, r);
	}
}

json_t *ckpt_show_mappings(const struct ckpt_show_set *set, uint32_t pid)
{
	PstreeImage *pst = read_pstree(set, pid);
	FilesImage *fi;
	json_t *rows;

	if (!pst)
		return NULL;
	fi = (FilesImage *)read_one(set, "files.img", IMG_FILES, &files_image__descriptor);
	rows = json_array();
	for (size_t i = 0; i < pst->n_entries; i++) {
		MmImage *mm;

		if (pid && pst->entries[i]->pid != pid)
			continue;
		mm = (MmImage *)read_pid(set, "mm", pst->entries[i]->pid, IMG_MM,
					 &mm_image__descriptor);
		if (!mm)
			continue;	/* a zombie has none */
		mappings_of(rows, mm, fi);
		mm_image__free_unpacked(mm, NULL);
	}
	if (fi)
		files_image__free_unpacked(fi, NULL);
	pstree_image__free_unpacked(pst, NULL);
	return rows;
}

/* ---- text ---------------------------------------------------------------- */

static char *cell(const json_t *v)
{
	char *s = NULL;

	if (json_is_string(v))
		s = strdup(json_string_value(v));
	else if (json_is_integer(v) && asprintf(&s, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) < 0)
		s = NULL;
	else if (json_is_integer(v))
		;
	else if (json_is_boolean(v))
		s = strdup(json_is_true(v) ? "yes" : "no");
	else
		s = strdup("-");
	return s;
}

void ckpt_show_table(FILE *out, const json_t *rows)
{
	const json_t *first = json_array_get(rows, 0);
	size_t ncol = json_object_size(first), nrow = json_array_size(rows), c, r;
	const char **keys;
	size_t *w;
	char ***cells;
	const char *key;
	json_t *v;

	if (!ncol)
		return;
	keys = calloc(ncol, sizeof(*keys));
	w = calloc(ncol, sizeof(*w));
	cells = calloc(nrow, sizeof(*cells));
	if (!keys || !w || !cells)
		goto out;
	c = 0;
	json_object_foreach((json_t *)first, key, v) {
		keys[c] = key;
		w[c++] = strlen(key);
	}
	for (r = 0; r < nrow; r++) {
		cells[r] = calloc(ncol, sizeof(**cells));
		for (c = 0; cells[r] && c < ncol; c++) {
			cells[r][c] = cell(json_object_get(json_array_get(rows, r), keys[c]));
			if (cells[r][c] && strlen(cells[r][c]) > w[c])
				w[c] = strlen(cells[r][c]);
		}
	}
	for (c = 0; c < ncol; c++) {
		for (const char *k = keys[c]; *k; k++)
			fputc(*k >= 'a' && *k <= 'z' ? *k - 32 : *k, out);
		fprintf(out, "%*s", c + 1 < ncol ? (int)(w[c] - strlen(keys[c]) + 2) : 0, "");
	}
	fputc('\n', out);
	for (r = 0; r < nrow; r++) {
		for (c = 0; cells[r] && c < ncol; c++) {
			const char *s = cells[r][c] ?: "?";

			if (c + 1 < ncol)
				fprintf(out, "%-*s  ", (int)w[c], s);
			else
				fputs(s, out);
		}
		fputc('\n', out);
	}
out:
	for (r = 0; cells && r < nrow; r++) {
		for (c = 0; cells[r] && c < ncol; c++)
			free(cells[r][c]);
		free(cells[r]);
	}
	free(cells);
	free(w);
	free(keys);
}
