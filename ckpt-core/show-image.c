// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The decoder of kup show: any metadata image to JSON or readable text.
 *
 * The walk is driven by the protobuf descriptors, so every field of every
 * image kind is shown, as protobuf's JSON mapping does (64-bit integers as
 * strings, enums by name, bytes in base64), through jansson (json.h), so
 * the output is valid UTF-8 whatever the image holds.  Two tables add what
 * the descriptors cannot say:
 *  - field_fmts: how text shows a number (hex for addresses, masks and
 *    flags, octal for modes, names for socket families, types, states);
 *  - bytes_decoders: the bytes fields that carry something else, decoded
 *    into named fields: another message (files.img's socket, tun, pty and
 *    packet payloads, mm's vdso_symtab), registers and FPU state (through
 *    the arch layer, which alone knows their layout), siginfo, classic BPF
 *    programs, addresses.
 * Text mode builds the same tree whose leaves are display strings
 * (ckpt_show_text prints them as they are).  In the engine (ckpt-summary.h),
 * which alone knows the schema; a fuzzer drives it on any bytes
 * (tests/fuzz/fuzz-show.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "ckpt-summary.h"
#include "image.h"
#include "json.h"
#include "log.h"
#include "kup-image.pb-c.h"
#include "kup-pty.pb-c.h"
#include "kup-sk-inet.pb-c.h"
#include "kup-sk-netlink.pb-c.h"
#include "kup-sk-packet.pb-c.h"
#include "kup-sk-unix.pb-c.h"
#include "kup-tun.pb-c.h"

struct show {
	bool text;	/* leaves are display strings (ckpt_show_text) */
};

/* ---- how text shows numbers ----------------------------------------------- */

struct sym {
	uint32_t v;
	const char *name;
};

#define SYMS(t)	t, sizeof(t) / sizeof(t[0])

static const struct sym af_syms[] = {
	{ 0, "AF_UNSPEC" }, { 1, "AF_UNIX" }, { 2, "AF_INET" }, { 10, "AF_INET6" },
	{ 16, "AF_NETLINK" }, { 17, "AF_PACKET" },
};
static const struct sym socktype_syms[] = {
	{ 1, "SOCK_STREAM" }, { 2, "SOCK_DGRAM" }, { 3, "SOCK_RAW" }, { 5, "SOCK_SEQPACKET" },
};
static const struct sym tcpstate_syms[] = {
	{ 1, "TCP_ESTABLISHED" }, { 2, "TCP_SYN_SENT" }, { 3, "TCP_SYN_RECV" },
	{ 4, "TCP_FIN_WAIT1" }, { 5, "TCP_FIN_WAIT2" }, { 6, "TCP_TIME_WAIT" },
	{ 7, "TCP_CLOSE" }, { 8, "TCP_CLOSE_WAIT" }, { 9, "TCP_LAST_ACK" },
	{ 10, "TCP_LISTEN" }, { 11, "TCP_CLOSING" },
};
static const struct sym ipproto_syms[] = {
	{ 0, "IPPROTO_IP" }, { 1, "IPPROTO_ICMP" }, { 6, "IPPROTO_TCP" }, { 17, "IPPROTO_UDP" },
	{ 58, "IPPROTO_ICMPV6" }, { 132, "IPPROTO_SCTP" }, { 255, "IPPROTO_RAW" },
};

enum fmt { FMT_HEX = 1, FMT_OCT, FMT_SYM };

struct field_fmt {
	const ProtobufCMessageDescriptor *msg;
	const char *field;
	enum fmt fmt;
	const struct sym *syms;
	size_t nsyms;
};

#define HEX(m, f)	{ &m##__descriptor, #f, FMT_HEX, NULL, 0 }
#define OCT(m, f)	{ &m##__descriptor, #f, FMT_OCT, NULL, 0 }
#define SYM(m, f, t)	{ &m##__descriptor, #f, FMT_SYM, SYMS(t) }

static const struct field_fmt field_fmts[] = {
	HEX(thread_core, sigmask), HEX(thread_core, clear_tid_addr), HEX(thread_core, robust_list),
	HEX(thread_core, rseq_addr), HEX(thread_core, rseq_sig), HEX(thread_core, sas_sp),
	HEX(thread_core, sas_size), HEX(thread_core, sas_flags), HEX(thread_core, sched_flags),
	HEX(seccomp_filter, flags),
	HEX(sigaction_entry, handler), HEX(sigaction_entry, flags), HEX(sigaction_entry, restorer),
	HEX(sigaction_entry, mask),
	HEX(posix_timer_entry, sival),
	HEX(creds_entry, cap_inh), HEX(creds_entry, cap_prm), HEX(creds_entry, cap_eff),
	HEX(creds_entry, cap_bnd), HEX(creds_entry, cap_amb), HEX(creds_entry, securebits),
	HEX(mm_entry, start_code), HEX(mm_entry, end_code), HEX(mm_entry, start_data),
	HEX(mm_entry, end_data), HEX(mm_entry, start_brk), HEX(mm_entry, brk),
	HEX(mm_entry, start_stack), HEX(mm_entry, arg_start), HEX(mm_entry, arg_end),
	HEX(mm_entry, env_start), HEX(mm_entry, env_end), HEX(mm_entry, auxv),
	OCT(core_entry, umask), HEX(core_entry, personality),
	HEX(vma_entry, start), HEX(vma_entry, end), HEX(vma_entry, prot), HEX(vma_entry, flags),
	HEX(vma_entry, pgoff), HEX(vma_entry, madv),
	HEX(page_run, vaddr),
	HEX(mm_image, pages_sum),
	HEX(vdso_symtab, vdso_start), HEX(vdso_symtab, vdso_size), HEX(vdso_symtab, vvar_start),
	HEX(vdso_symtab, vvar_size), HEX(vdso_symtab, vdso_crc), HEX(vdso_sym, offset),
	HEX(shmem_entry, xxh64), OCT(shmem_entry, mode),
	HEX(file_entry, flags), OCT(file_entry, mode), HEX(file_entry, rdev), HEX(file_entry, dev),
	HEX(file_entry, seals), HEX(file_entry, sigmask), HEX(file_entry, settime_flags),
	HEX(file_entry, fan_flags), HEX(file_entry, fan_event_flags), HEX(file_entry, content_xxh64),
	HEX(epoll_tfd, events), HEX(epoll_tfd, data),
	HEX(inotify_wd, mask), HEX(inotify_wd, deleted_dev),
	HEX(fanotify_mark_entry, mask), HEX(fanotify_mark_entry, ignored_mask),
	HEX(fanotify_mark_entry, mflags),
	SYM(sk_inet_entry, family, af_syms), SYM(sk_inet_entry, type, socktype_syms),
	SYM(sk_inet_entry, protocol, ipproto_syms), SYM(sk_inet_entry, state, tcpstate_syms),
	HEX(sk_inet_entry, udp_shutdown),
	SYM(unix_sk_entry, type, socktype_syms), SYM(unix_sk_entry, state, tcpstate_syms),
	OCT(unix_sk_entry, file_mode),
	SYM(sk_netlink_entry, type, socktype_syms),
	SYM(sk_packet_entry, type, socktype_syms), HEX(sk_packet_entry, protocol),
	HEX(tun_entry, iff), HEX(tun_entry, dev_flags),
	SYM(tun_addr, family, af_syms), HEX(tun_addr, flags),
	SYM(tun_route, family, af_syms), HEX(tun_route, flags),
	HEX(pty_termios, iflag), HEX(pty_termios, oflag), HEX(pty_termios, cflag),
	HEX(pty_termios, lflag), OCT(pty_entry, mode),
};

static const struct field_fmt *field_fmt(const ProtobufCMessageDescriptor *d,
					 const ProtobufCFieldDescriptor *f)
{
	for (size_t i = 0; i < sizeof(field_fmts) / sizeof(field_fmts[0]); i++)
		if (field_fmts[i].msg == d && !strcmp(field_fmts[i].field, f->name))
			return &field_fmts[i];
	return NULL;
}

/* ---- leaves ---------------------------------------------------------------- */

static json_t *text_str(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *text_str(const char *fmt, ...)
{
	char b[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	return json_string(b);
}

/* An unsigned number: JSON as protobuf maps it, text as @ff says. */
static json_t *show_unsigned(const struct show *s, const struct field_fmt *ff, uint64_t v,
			     bool is64)
{
	if (!s->text)
		return is64 ? kup_json_u64(v) : json_integer(v);
	if (ff && ff->fmt == FMT_HEX)
		return text_str("0x%" PRIx64, v);
	if (ff && ff->fmt == FMT_OCT)
		return text_str("0%" PRIo64, v);
	if (ff && ff->fmt == FMT_SYM)
		for (size_t i = 0; i < ff->nsyms; i++)
			if (ff->syms[i].v == v)
				return json_string(ff->syms[i].name);
	return text_str("%" PRIu64, v);
}

static json_t *show_signed(const struct show *s, int64_t v, bool is64)
{
	if (!s->text)
		return is64 ? kup_json_i64(v) : json_integer(v);
	return text_str("%" PRId64, v);
}

/* A string: JSON as it is (U+FFFD for what is not UTF-8), text quoted. */
static json_t *show_strn(const struct show *s, const char *p, size_t n)
{
	json_t *j = kup_json_strn(p, n), *t;
	char *q;

	if (!s->text || !j)
		return j;
	q = json_dumps(j, JSON_ENCODE_ANY);
	json_decref(j);
	if (!q)
		return NULL;
	t = json_string(q);
	free(q);
	return t;
}

#define TEXT_BYTES_SHOWN	32

/* Bytes with no meaning beyond themselves (data): base64, text hex. */
static json_t *show_raw(const struct show *s, const ProtobufCBinaryData *b)
{
	char hex[TEXT_BYTES_SHOWN * 2 + 1] = "";
	size_t n = b->len < TEXT_BYTES_SHOWN ? b->len : TEXT_BYTES_SHOWN;

	if (!s->text)
		return kup_json_base64(b->data, b->len);
	for (size_t i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", b->data[i]);
	if (!b->len)
		return json_string("(empty)");
	return text_str("hex %s%s (%zu byte%s)", hex, n < b->len ? "..." : "", b->len,
			b->len == 1 ? "" : "s");
}

/* Bytes that should hold something and do not: said, and kept. */
static json_t *undecoded(const struct show *s, const ProtobufCBinaryData *b, const char *why)
{
	json_t *o = json_object();

	kup_json_set(o, "undecoded", json_string(why));
	kup_json_set(o, "raw", show_raw(s, b));
	return o;
}

/* ---- bytes that carry something else ------------------------------------- */

static json_t *show_msg(const struct show *s, const ProtobufCMessage *m);

static json_t *dec_packed(const struct show *s, const ProtobufCBinaryData *b,
			  const ProtobufCMessageDescriptor *d)
{
	ProtobufCMessage *sub = protobuf_c_message_unpack(d, NULL, b->len, b->data);
	json_t *j;

	if (!sub)
		return undecoded(s, b, d->name);
	j = show_msg(s, sub);
	protobuf_c_message_free_unpacked(sub, NULL);
	return j;
}

/* file_entry.sk: the message its kind says */
static json_t *dec_file_sk(const struct show *s, const ProtobufCMessage *m,
			   const ProtobufCBinaryData *b)
{
	switch (((const FileEntry *)m)->kind) {
	case FILE_KIND__FILE_UNIX_SK:
		return dec_packed(s, b, &unix_sk_entry__descriptor);
	case FILE_KIND__FILE_INET_SK:
		return dec_packed(s, b, &sk_inet_entry__descriptor);
	case FILE_KIND__FILE_NETLINK_SK:
		return dec_packed(s, b, &sk_netlink_entry__descriptor);
	default:
		return undecoded(s, b, "a socket payload on a file that is no socket");
	}
}

#define DEC_PACKED(fn, msg)							\
static json_t *fn(const struct show *s, const ProtobufCMessage *m,		\
		  const ProtobufCBinaryData *b)					\
{										\
	return dec_packed(s, b, &msg##__descriptor);				\
}
DEC_PACKED(dec_tun, tun_entry)
DEC_PACKED(dec_pty, pty_entry)
DEC_PACKED(dec_packet, sk_packet_entry)
DEC_PACKED(dec_vdso, vdso_symtab)

struct word_sink {
	const struct show *s;
	json_t *obj;
};

static void add_word(void *arg, const char *name, uint64_t v)
{
	static const struct field_fmt hex = { .fmt = FMT_HEX };
	struct word_sink *w = arg;

	kup_json_set(w->obj, name, show_unsigned(w->s, strcmp(name, "size") ? &hex : NULL, v, true));
}

static json_t *dec_gpregs(const struct show *s, const ProtobufCMessage *m,
			  const ProtobufCBinaryData *b)
{
	struct word_sink w = { s, json_object() };

	if (arch_show_regs(b->data, b->len, add_word, &w)) {
		json_decref(w.obj);
		return undecoded(s, b, "not the registers of this architecture");
	}
	return w.obj;
}

static json_t *dec_fpstate(const struct show *s, const ProtobufCMessage *m,
			   const ProtobufCBinaryData *b)
{
	struct word_sink w = { s, json_object() };

	if (arch_show_fpstate(b->data, b->len, add_word, &w)) {
		json_decref(w.obj);
		return undecoded(s, b, "not an FPU state of this architecture");
	}
	return w.obj;
}

static int32_t get_i32(const uint8_t *p)
{
	int32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/*
 * siginfo_t as the kernel gives it (PTRACE_PEEKSIGINFO, 128 bytes): signo,
 * errno, code, then (64-bit) the union at 16, read as si_code says.
 */
static json_t *dec_siginfo(const struct show *s, const ProtobufCMessage *m,
			   const ProtobufCBinaryData *b)
{
	static const struct field_fmt hex = { .fmt = FMT_HEX };
	const uint8_t *p = b->data;
	int signo, code;
	json_t *o;

	if (b->len != 128)
		return undecoded(s, b, "not a 128-byte siginfo");
	signo = get_i32(p);
	code = get_i32(p + 8);
	o = json_object();
	kup_json_set(o, "signo", show_signed(s, signo, false));
	if (signo > 0 && signo < 65 && sigabbrev_np(signo))
		kup_json_set(o, "signame", text_str("SIG%s", sigabbrev_np(signo)));
	else if (signo >= SIGRTMIN && signo <= SIGRTMAX)	/* as kill -l names them */
		kup_json_set(o, "signame", text_str("SIGRTMIN+%d", signo - SIGRTMIN));
	kup_json_set(o, "errno", show_signed(s, get_i32(p + 4), false));
	kup_json_set(o, "code", show_signed(s, code, false));
	if (code == SI_TIMER) {
		kup_json_set(o, "timerid", show_signed(s, get_i32(p + 16), false));
		kup_json_set(o, "overrun", show_signed(s, get_i32(p + 20), false));
		kup_json_set(o, "value", show_unsigned(s, &hex, get_u64(p + 24), true));
	} else if (code <= 0 || signo == SIGCHLD) {
		/* sent by a process (kill, sigqueue, tkill...), or a child's news */
		kup_json_set(o, "sender_pid", show_signed(s, get_i32(p + 16), false));
		kup_json_set(o, "sender_uid", show_unsigned(s, NULL, (uint32_t)get_i32(p + 20), false));
		if (signo == SIGCHLD)
			kup_json_set(o, "status", show_signed(s, get_i32(p + 24), false));
		else
			kup_json_set(o, "value", show_unsigned(s, &hex, get_u64(p + 24), true));
	} else if (signo == SIGSEGV || signo == SIGBUS || signo == SIGILL || signo == SIGFPE ||
		   signo == SIGTRAP) {
		kup_json_set(o, "addr", show_unsigned(s, &hex, get_u64(p + 16), true));
	} else if (signo == SIGIO) {
		kup_json_set(o, "band", show_signed(s, (int64_t)get_u64(p + 16), true));
		kup_json_set(o, "fd", show_signed(s, get_i32(p + 24), false));
	}
	return o;
}

/* A classic BPF program: struct sock_filter[] (seccomp, SO_ATTACH_FILTER). */
static json_t *dec_bpf(const struct show *s, const ProtobufCMessage *m,
		       const ProtobufCBinaryData *b)
{
	static const char *const cls[] = { "ld", "ldx", "st", "stx", "alu", "jmp", "ret", "misc" };
	json_t *a;

	if (b->len % 8)
		return undecoded(s, b, "not a whole number of BPF instructions");
	a = json_array();
	for (size_t i = 0; i < b->len; i += 8) {
		const uint8_t *p = b->data + i;
		unsigned code = p[0] | p[1] << 8, jt = p[2], jf = p[3];
		uint32_t k = (uint32_t)get_i32(p + 4);
		json_t *insn;

		if (s->text) {
			insn = text_str("%-4s code 0x%04x jt %u jf %u k 0x%x", cls[code & 7], code,
					jt, jf, k);
		} else {
			insn = json_object();
			kup_json_set(insn, "op", json_string(cls[code & 7]));
			kup_json_set(insn, "code", json_integer(code));
			kup_json_set(insn, "jt", json_integer(jt));
			kup_json_set(insn, "jf", json_integer(jf));
			kup_json_set(insn, "k", json_integer(k));
		}
		json_array_append_new(a, insn);
	}
	return a;
}

/* An IPv4 or IPv6 address, by its length. */
static json_t *dec_inet(const struct show *s, const ProtobufCMessage *m,
			const ProtobufCBinaryData *b)
{
	char a[INET6_ADDRSTRLEN];

	if ((b->len != 4 && b->len != 16) ||
	    !inet_ntop(b->len == 4 ? AF_INET : AF_INET6, b->data, a, sizeof(a)))
		return undecoded(s, b, "not an IPv4 or IPv6 address");
	return json_string(a);
}

/* A unix socket address (sun_path bytes): abstract ones shown "@name". */
static json_t *dec_unix_addr(const struct show *s, const ProtobufCMessage *m,
			     const ProtobufCBinaryData *b)
{
	const char *p = (const char *)b->data;
	size_t n = b->len;
	json_t *j;
	char *at;

	if (!n)
		return show_strn(s, "", 0);
	if (p[0]) {
		const char *nul = memchr(p, 0, n);

		return show_strn(s, p, nul ? (size_t)(nul - p) : n);
	}
	at = malloc(n + 1);
	if (!at)
		return NULL;
	at[0] = '@';
	memcpy(at + 1, p + 1, n - 1);
	j = show_strn(s, at, n);
	free(at);
	return j;
}

/* A link-layer address: aa:bb:cc:... */
static json_t *dec_lladdr(const struct show *s, const ProtobufCMessage *m,
			  const ProtobufCBinaryData *b)
{
	char a[3 * 32] = "";

	if (!b->len || b->len > 32)
		return undecoded(s, b, "not a link-layer address");
	for (size_t i = 0; i < b->len; i++)
		snprintf(a + (i ? 3 * i - 1 : 0), 4, "%s%02x", i ? ":" : "", b->data[i]);
	return json_string(a);
}

/* A CPU mask (sched_setaffinity's bytes: CPU i is bit i % 8 of byte i / 8)
 * as the kernel's CPU lists: "0-3,6". */
static json_t *dec_cpus(const struct show *s, const ProtobufCMessage *m,
			const ProtobufCBinaryData *b)
{
	char list[512] = "";
	size_t at = 0, n = b->len * 8;

	for (size_t i = 0; i < n && at < sizeof(list) - 32; i++) {
		size_t j = i;

		if (!(b->data[i / 8] >> (i % 8) & 1))
			continue;
		while (j + 1 < n && b->data[(j + 1) / 8] >> ((j + 1) % 8) & 1)
			j++;
		at += snprintf(list + at, sizeof(list) - at, j > i ? "%s%zu-%zu" : "%s%zu",
			       at ? "," : "", i, j);
		i = j;
	}
	if (!at)
		return undecoded(s, b, "no CPU");
	return json_string(list);
}

/* The f_handle of a file handle: opaque but for the common inode + generation. */
static json_t *dec_handle(const struct show *s, const ProtobufCMessage *m,
			  const ProtobufCBinaryData *b)
{
	const FileEntry *fe = (const FileEntry *)m;
	char hex[2 * 128 + 1] = "";
	json_t *o;

	if (!b->len || b->len > 128)
		return undecoded(s, b, "not a file handle");
	for (size_t i = 0; i < b->len; i++)
		snprintf(hex + 2 * i, 3, "%02x", b->data[i]);
	o = json_object();
	kup_json_set(o, "bytes", json_string(hex));
	/* FILEID_INO32_GEN(_PARENT): the inode and generation first */
	if (fe->has_handle_type && (fe->handle_type == 1 || fe->handle_type == 2) && b->len >= 8) {
		kup_json_set(o, "ino", show_unsigned(s, NULL, (uint32_t)get_i32(b->data), false));
		kup_json_set(o, "generation",
			     show_unsigned(s, NULL, (uint32_t)get_i32(b->data + 4), false));
	}
	return o;
}

typedef json_t *bytes_decoder(const struct show *s, const ProtobufCMessage *m,
			      const ProtobufCBinaryData *b);

static const struct {
	const ProtobufCMessageDescriptor *msg;
	const char *field;
	bytes_decoder *decode;
} bytes_decoders[] = {
	{ &file_entry__descriptor, "sk", dec_file_sk },
	{ &file_entry__descriptor, "tun", dec_tun },
	{ &file_entry__descriptor, "pty", dec_pty },
	{ &file_entry__descriptor, "packet", dec_packet },
	{ &file_entry__descriptor, "handle", dec_handle },
	{ &mm_image__descriptor, "vdso_symtab", dec_vdso },
	{ &thread_core__descriptor, "gpregs", dec_gpregs },
	{ &thread_core__descriptor, "fpregs", dec_fpstate },
	{ &thread_core__descriptor, "xstate", dec_fpstate },
	{ &thread_core__descriptor, "cpus", dec_cpus },
	{ &siginfo_entry__descriptor, "raw", dec_siginfo },
	{ &seccomp_filter__descriptor, "bpf", dec_bpf },
	{ &sk_inet_entry__descriptor, "filter", dec_bpf },
	{ &unix_sk_entry__descriptor, "filter", dec_bpf },
	{ &sk_packet_entry__descriptor, "filter", dec_bpf },
	{ &sk_inet_entry__descriptor, "src_addr", dec_inet },
	{ &sk_inet_entry__descriptor, "dst_addr", dec_inet },
	{ &unix_sk_entry__descriptor, "name", dec_unix_addr },
	{ &unix_sk_entry__descriptor, "peer_name", dec_unix_addr },
	{ &unix_sk_msg__descriptor, "from", dec_unix_addr },
	{ &tun_addr__descriptor, "local", dec_inet },
	{ &tun_addr__descriptor, "peer", dec_inet },
	{ &tun_addr__descriptor, "broadcast", dec_inet },
	{ &tun_route__descriptor, "dst", dec_inet },
	{ &tun_route__descriptor, "src", dec_inet },
	{ &tun_route__descriptor, "gateway", dec_inet },
	{ &tun_route__descriptor, "prefsrc", dec_inet },
	{ &tun_entry__descriptor, "hwaddr", dec_lladdr },
	{ &sk_packet_mc__descriptor, "addr", dec_lladdr },
};

static bytes_decoder *bytes_decoder_of(const ProtobufCMessageDescriptor *d,
				       const ProtobufCFieldDescriptor *f)
{
	for (size_t i = 0; i < sizeof(bytes_decoders) / sizeof(bytes_decoders[0]); i++)
		if (bytes_decoders[i].msg == d && !strcmp(bytes_decoders[i].field, f->name))
			return bytes_decoders[i].decode;
	return NULL;
}

/* ---- the descriptor walk ------------------------------------------------- */

static json_t *show_value(const struct show *s, const ProtobufCMessage *m,
			  const ProtobufCFieldDescriptor *f, const void *p)
{
	const struct field_fmt *ff = field_fmt(m->descriptor, f);

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
		return show_signed(s, *(const int32_t *)p, false);
	case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
		return show_unsigned(s, ff, *(const uint32_t *)p, false);
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
		return show_signed(s, *(const int64_t *)p, true);
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
		return show_unsigned(s, ff, *(const uint64_t *)p, true);
	case PROTOBUF_C_TYPE_BOOL:
		if (s->text)
			return json_string(*(const protobuf_c_boolean *)p ? "true" : "false");
		return json_boolean(*(const protobuf_c_boolean *)p);
	case PROTOBUF_C_TYPE_FLOAT:
		return s->text ? text_str("%g", *(const float *)p) : json_real(*(const float *)p);
	case PROTOBUF_C_TYPE_DOUBLE:
		return s->text ? text_str("%g", *(const double *)p) : json_real(*(const double *)p);
	case PROTOBUF_C_TYPE_ENUM: {
		int v = *(const int *)p;
		const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);

		return ev ? json_string(ev->name) : show_signed(s, v, false);
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *str = *(char *const *)p;

		return str ? show_strn(s, str, strlen(str)) : json_null();
	}
	case PROTOBUF_C_TYPE_BYTES: {
		bytes_decoder *dec = bytes_decoder_of(m->descriptor, f);

		return dec ? dec(s, m, p) : show_raw(s, p);
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		return show_msg(s, *(ProtobufCMessage *const *)p);
	}
	return json_null();
}

static size_t type_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_STRING: case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	default:
		return 4;
	}
}

/* Every field set (proto2: optional ones when present, repeated ones when not empty). */
static json_t *show_msg(const struct show *s, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;
	json_t *o = json_object();

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		bool ptr = f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE;

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			const char *arr = *(char *const *)(base + f->offset);
			json_t *a;

			if (!n)
				continue;
			a = json_array();
			for (size_t j = 0; j < n; j++)
				json_array_append_new(a, show_value(s, m, f,
								    arr + j * type_size(f->type)));
			kup_json_set(o, f->name, a);
			continue;
		}
		if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset && !ptr &&
		    !*(const protobuf_c_boolean *)(base + f->quantifier_offset))
			continue;
		if (ptr && !*(void *const *)(base + f->offset))
			continue;
		kup_json_set(o, f->name, show_value(s, m, f, base + f->offset));
	}
	return o;
}

/* ---- images -------------------------------------------------------------- */

json_t *ckpt_show_image(const void *data, size_t len, const char *name, bool text)
{
	const struct show s = { .text = text };
	ProtobufCMessage **msgs;
	json_t *img, *entries;
	uint32_t kind;
	size_t n;

	if (len < IMG_HDR_SIZE) {
		log_err("%s: not a kup image (too short)", name);
		return NULL;
	}
	memcpy(&kind, (const char *)data + 12, 4);
	if (memcmp(data, IMG_MAGIC, 8) || !img_kind_desc(kind)) {
		log_err("%s: not a kup metadata image", name);
		return NULL;
	}
	if (img_parse(data, len, kind, img_kind_desc(kind), name, &msgs, &n))
		return NULL;
	img = json_object();
	entries = json_array();
	kup_json_set(img, "kind", json_string(img_kind_name(kind)));
	for (size_t i = 0; i < n; i++)
		json_array_append_new(entries, show_msg(&s, msgs[i]));
	kup_json_set(img, "entries", entries);
	img_free_msgs(msgs, n);
	return img;
}

/* ---- text ---------------------------------------------------------------- */

static void indent(FILE *out, int n)
{
	for (int i = 0; i < n; i++)
		fputs("  ", out);
}

static bool scalar(const json_t *v)
{
	return !json_is_object(v) && !json_is_array(v);
}

static void text_value(FILE *out, const json_t *v, int depth)
{
	const char *key;
	json_t *e;
	size_t i;

	if (json_is_object(v)) {
		fputs("{\n", out);
		json_object_foreach((json_t *)v, key, e) {
			indent(out, depth + 1);
			fprintf(out, "%s: ", key);
			text_value(out, e, depth + 1);
			fputc('\n', out);
		}
		indent(out, depth);
		fputc('}', out);
	} else if (json_is_array(v)) {
		size_t width = 0;
		bool flat = true;

		/* scalars on one line unless it gets long (BPF programs) */
		json_array_foreach(v, i, e) {
			flat &= scalar(e);
			width += json_is_string(e) ? json_string_length(e) + 2 : 8;
		}
		if (flat && width <= 100) {
			fputc('[', out);
			json_array_foreach(v, i, e) {
				fputs(i ? ", " : "", out);
				text_value(out, e, depth);
			}
			fputc(']', out);
			return;
		}
		fputs("[\n", out);
		json_array_foreach(v, i, e) {
			indent(out, depth + 1);
			text_value(out, e, depth + 1);
			fputc('\n', out);
		}
		indent(out, depth);
		fputc(']', out);
	} else if (json_is_string(v)) {
		fwrite(json_string_value(v), 1, json_string_length(v), out);
	} else if (json_is_integer(v)) {
		fprintf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	} else if (json_is_real(v)) {
		fprintf(out, "%g", json_real_value(v));
	} else {
		fputs(json_is_true(v) ? "true" : json_is_false(v) ? "false" : "null", out);
	}
}

void ckpt_show_text(FILE *out, const char *name, const json_t *img)
{
	const json_t *entries = json_object_get(img, "entries");
	size_t n = json_array_size(entries), i;
	json_t *e;

	fprintf(out, "== %s (%s, %zu record%s)\n", name,
		json_string_value(json_object_get(img, "kind")) ?: "?", n, n == 1 ? "" : "s");
	json_array_foreach(entries, i, e) {
		text_value(out, e, 0);
		fputc('\n', out);
	}
}
