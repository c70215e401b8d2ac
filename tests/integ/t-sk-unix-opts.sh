#!/bin/bash
# Unix socket attributes, dumped, killed and restored (then with
# --leave-running): a datagram socket bound to a path with SO_PASSCRED,
# SO_PASSSEC, SO_PASSPIDFD and a locked classic BPF filter that lets only
# messages starting with "A" in: after the restore each option reads the
# same, SO_GET_FILTER gives the same program, a client outside the tree
# still gets its "B" messages dropped, and the "A" ones come with the
# client's credentials (SCM_CREDENTIALS).
. "$(dirname "$0")/../lib.sh"
require_root
command -v python3 > /dev/null || skip_all "needs python3"

cat > "$T/svc.py" <<'PY'
import ctypes, os, socket, struct, sys, time
go, path = sys.argv[1], sys.argv[2]
SO_PASSSEC, SO_PASSPIDFD, SO_GET_FILTER, SO_LOCK_FILTER = 34, 76, 26, 44
libc = ctypes.CDLL(None, use_errno=True)
prog = [(0x30, 0, 0, 0), (0x15, 0, 1, ord("A")), (0x06, 0, 0, 0xffff), (0x06, 0, 0, 0)]
code = b"".join(struct.pack("HBBI", *i) for i in prog)
buf = ctypes.create_string_buffer(code)
u = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); u.bind(path)
u.setsockopt(socket.SOL_SOCKET, 26, struct.pack("HL", len(prog), ctypes.addressof(buf)))
u.setsockopt(socket.SOL_SOCKET, SO_LOCK_FILTER, 1)
u.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
u.setsockopt(socket.SOL_SOCKET, SO_PASSSEC, 1)
try:
    u.setsockopt(socket.SOL_SOCKET, SO_PASSPIDFD, 1); pidfd = 1
except OSError:
    pidfd = 0
def getf(s):
    b = ctypes.create_string_buffer(8 * 16); n = ctypes.c_uint(16)
    if libc.getsockopt(s.fileno(), 1, SO_GET_FILTER, b, ctypes.byref(n)) < 0:
        return None
    return b.raw[:8 * n.value]
print("READY", flush=True)
n = 0
while True:
    while not os.path.exists("%s-%d" % (go, n)):
        time.sleep(0.02)
    res = []
    def chk(name, ok): res.append(("OK " if ok else "BAD ") + name)
    so = lambda o: u.getsockopt(socket.SOL_SOCKET, o)
    chk("passcred", so(socket.SO_PASSCRED) == 1)
    chk("passsec", so(SO_PASSSEC) == 1)
    chk("passpidfd", so(SO_PASSPIDFD) == pidfd)
    chk("filter", getf(u) == code)
    chk("locked", so(SO_LOCK_FILTER) == 1)
    open("%s-%d-ready" % (go, n), "w").close()
    a = b = 0; cred = False
    u.settimeout(20)
    try:
        while True:
            d, anc, _, _ = u.recvmsg(100, 1024)
            for lvl, typ, data in anc:
                if typ == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", data[:12])[0]
                    cred = cred or pid == int(open(path + ".client").read())
                if typ == 4 and len(data) >= 4:	# SCM_PIDFD
                    os.close(struct.unpack("i", data[:4])[0])
            if d.startswith(b"B"): b += 1
            if d.startswith(b"A"): a += 1
            if d == b"A-END": break
    except socket.timeout:
        pass
    chk("only-A", a == 4 and b == 0)
    chk("client-creds", cred)
    print("ROUND", n, " ".join(res), flush=True)
    n += 1
PY
svc=$(start_bg "$T/svc" python3 "$T/svc.py" "$T/go" "$T/u.sock")
wait_for_line "$T/svc" '^READY' || bail "service did not start"
round() {
	touch "$T/go-$1"
	wait_for "$T/go-$1-ready" 20 || return 1
	python3 -c '
import os, socket, sys
open(sys.argv[1] + ".client", "w").write(str(os.getpid()))
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for i in range(3):
    s.sendto(b"B%d" % i, sys.argv[1]); s.sendto(b"A%d" % i, sys.argv[1])
s.sendto(b"A-END", sys.argv[1])' "$T/u.sock"
	wait_for_line "$T/svc" "^ROUND $1 " 30 && ! grep "^ROUND $1 " "$T/svc" | grep -q BAD ||
	{ grep "^ROUND $1 " "$T/svc"; false; }
}
check "before the dump: options and filter as set" round 0
check "kup dump" kup_run "$T/d1" dump -t "$svc" -D "$T/img1"
wait_gone "$svc"
check "kup restore" kup_run "$T/r1" restore -D "$T/img1" -d
track "$svc"
check "... SO_PASSCRED, SO_PASSSEC, SO_PASSPIDFD, the locked filter as dumped, at work" round 1
check "kup dump --leave-running" kup_run "$T/d2" dump -t "$svc" -D "$T/img2" --leave-running
check "... all as it was" round 2
