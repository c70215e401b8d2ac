#!/bin/bash
# Socket filters and shut-down UDP sockets, dumped, killed and restored
# (then with --leave-running): a UDP socket with a classic BPF filter
# (SO_ATTACH_FILTER, locked) that lets only datagrams starting with "A" in
# still drops the others sent from another namespace, and SO_GET_FILTER
# gives the same program back; a TCP listener's filter too; a UDP socket
# shut down for reading reads 0 at once, one shut down for writing gets
# EPIPE.  An eBPF filter (SO_ATTACH_BPF) is refused, naming it.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
require_root
command -v python3 > /dev/null || skip_all "needs python3"
net_setup

cat > "$T/svc.py" <<'PY'
import os, socket, struct, sys, time
go = sys.argv[1]
A = "10.77.0.1"
SO_GET_FILTER = SO_ATTACH_FILTER = 26
SO_LOCK_FILTER = 44
# ldb [8] (first byte of the UDP payload); jeq 'A' ? accept : drop
prog = [(0x30, 0, 0, 8), (0x15, 0, 1, ord("A")), (0x06, 0, 0, 0xffff), (0x06, 0, 0, 0)]
code = b"".join(struct.pack("HBBI", *i) for i in prog)
def attach(s):
    import ctypes
    buf = ctypes.create_string_buffer(code)
    fprog = struct.pack("HL", len(prog), ctypes.addressof(buf))
    s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
def getf(s):	# optlen counts instructions, not bytes
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(8 * 16); n = ctypes.c_uint(16)
    if libc.getsockopt(s.fileno(), 1, SO_GET_FILTER, buf, ctypes.byref(n)) < 0:
        return None
    return buf.raw[:8 * n.value]
u1 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u1.bind((A, 7501)); attach(u1)
u1.setsockopt(socket.SOL_SOCKET, SO_LOCK_FILTER, 1)
def shut(s, how):	# unconnected: ENOTCONN, done all the same
    try: s.shutdown(how)
    except OSError: pass
u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u2.bind((A, 7502)); shut(u2, socket.SHUT_RD)
u3 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u3.bind((A, 7503))
u3.connect(("10.77.0.2", 7503)); u3.shutdown(socket.SHUT_WR)
t1 = socket.socket(); t1.bind((A, 7504)); t1.listen(4); attach(t1)
print("READY", flush=True)
n = 0
while True:
    while not os.path.exists("%s-%d" % (go, n)):
        time.sleep(0.02)
    res = []
    def chk(name, ok): res.append(("OK " if ok else "BAD ") + name)
    chk("u1-filter", getf(u1) == code)
    chk("u1-locked", u1.getsockopt(socket.SOL_SOCKET, SO_LOCK_FILTER) == 1)
    chk("t1-filter", getf(t1) == code)
    open("%s-%d-ready" % (go, n), "w").close()
    a = b = 0
    u1.settimeout(20)
    try:
        while True:
            d = u1.recv(100)
            if d.startswith(b"B"): b += 1
            if d.startswith(b"A"): a += 1
            if d == b"A-END": break
    except socket.timeout:
        pass
    chk("u1-only-A", a == 6 and b == 0)
    try:
        u2.setblocking(True)	# blocking: 0 at once when shut down
        chk("u2-shut-rd", u2.recv(10) == b"")
    except OSError as e:
        chk("u2-shut-rd " + str(e), False)
    try:
        u3.send(b"x"); chk("u3-shut-wr", False)
    except BrokenPipeError:
        chk("u3-shut-wr", True)
    print("ROUND", n, " ".join(res), flush=True)
    n += 1
PY
# has REGEX FILE: FILE has a line matching REGEX (else shows FILE)
has() { grep -qE "$1" "$2" || { cat "$2"; return 1; }; }
svc=$(start_bg "$T/svc" nsenter --net=/run/netns/"$NSA" python3 "$T/svc.py" "$T/go")
wait_for_line "$T/svc" '^READY' || bail "service did not start"
# round N: the service checks its sockets, then counts what the filter lets in
round() {
	touch "$T/go-$1"
	wait_for "$T/go-$1-ready" 20 || return 1
	in_ns "$NSB" python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(5):
    s.sendto(b"B%d" % i, ("10.77.0.1", 7501)); s.sendto(b"A%d" % i, ("10.77.0.1", 7501))
s.sendto(b"A-END", ("10.77.0.1", 7501))'
	wait_for_line "$T/svc" "^ROUND $1 " 30 && ! grep "^ROUND $1 " "$T/svc" | grep -q BAD ||
	{ grep "^ROUND $1 " "$T/svc"; false; }
}
check "before the dump: filters, lock and shutdowns as set" round 0
check "kup dump" kup_run "$T/d1" dump -t "$svc" -D "$T/img1"
wait_gone "$svc"
check "kup restore" kup_in "$NSA" "$T/r1" restore -D "$T/img1" -d
track "$svc"
check "... the same filters (SO_GET_FILTER), locked, dropping what they dropped; the shutdowns kept" \
	round 1
check "kup dump --leave-running" kup_run "$T/d2" dump -t "$svc" -D "$T/img2" --leave-running
check "... all as it was" round 2

# an eBPF socket filter
eb=$(start_bg "$T/ebpf" nsenter --net=/run/netns/"$NSA" python3 -c '
import ctypes, os, socket, struct, time
libc = ctypes.CDLL(None, use_errno=True)
insns = struct.pack("BBhi", 0xb7, 0, 0, 0xffff) + struct.pack("BBhi", 0x95, 0, 0, 0)
ib = ctypes.create_string_buffer(insns); lic = ctypes.create_string_buffer(b"GPL")
attr = ctypes.create_string_buffer(struct.pack("IIQQ", 1, 2, ctypes.addressof(ib),
                                                ctypes.addressof(lic)) + bytes(112))
pfd = libc.syscall(321, 5, attr, 128)
if pfd < 0: raise OSError(ctypes.get_errno(), "BPF_PROG_LOAD")
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 50, pfd); os.close(pfd)
print("EBPF", s.fileno(), flush=True)
time.sleep(3600)')
wait_for_line "$T/ebpf" '^EBPF' || bail "no eBPF filter: $(cat "$T/ebpf")"
fd=$(line_field "$T/ebpf" '^EBPF' 2)
check_fails "an eBPF socket filter: the dump is refused" kup_try dump -t "$eb" -D "$T/img3"
check "... naming pid, fd and the filter" \
	has "pid $eb fd $fd: socket:\[[0-9]*\]: an eBPF socket filter \(SO_ATTACH_BPF\) is attached: not supported" "$T/err"
check "... the tree goes on" not_frozen "$eb"
