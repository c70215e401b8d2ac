#!/bin/bash
# TCP sockets sharing a port, dumped, killed and restored (then again with
# --leave-running): two SO_REUSEPORT listeners, one of which cleared
# SO_REUSEPORT after listen(); an accepted connection closed both ways
# (TCP_CLOSE, still bound to its listener's port); a socket bound, never
# connected, on the port of a listener that was made before it.  Each
# keeps its binding and options, the listeners accept new clients from
# another namespace, the closed socket reads end of file and cannot write.
# A closed connection with bytes or an error not read yet (a reset) is
# refused, naming it.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
require_root
command -v python3 > /dev/null || skip_all "needs python3"
net_setup

cat > "$T/svc.py" <<'PY'
import os, select, socket, sys, time
go = sys.argv[1]
A = "10.77.0.1"
def lsock(port, reuseport=False, reuseaddr=True):
    s = socket.socket()
    if reuseaddr: s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport: s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((A, port)); s.listen(8)
    return s
# 7401: two SO_REUSEPORT listeners, the first one clears it afterwards
l1 = lsock(7401, reuseport=True); l2 = lsock(7401, reuseport=True)
l1.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 0)
# 7402: a listener and a connection it accepted, then closed both ways
l3 = lsock(7402)
c, _ = l3.accept()
assert c.recv(10) == b"", "peer's FIN"
c.shutdown(socket.SHUT_WR)
while c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != 7:
    time.sleep(0.02)
# 7403: the listener's socket is made first (lower fd), bound after the
# never-connected socket that shares its port
l4 = socket.socket(); l4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
b = socket.socket(); b.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
b.bind((A, 7403)); l4.bind((A, 7403)); l4.listen(8)
print("READY", l1.fileno(), l4.fileno(), b.fileno(), c.fileno(), flush=True)
n = 0
while True:
    while not os.path.exists("%s-%d" % (go, n)):
        time.sleep(0.02)
    res = []
    def chk(name, ok): res.append(("OK " if ok else "BAD ") + name)
    ro = lambda s: s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
    chk("l1-reuseport-0", ro(l1) == 0)
    chk("l2-reuseport-1", ro(l2) == 1)
    # 6 clients from the peer: each accepted by one of the two listeners
    got = 0
    while got < 6:
        r, _, _ = select.select([l1, l2], [], [], 10)
        if not r: break
        for s in r:
            a, _ = s.accept(); a.sendall(b"hi"); a.close(); got += 1
    chk("7401-accepts-6", got == 6)
    chk("closed-bound-7402", c.getsockname()[1] == 7402)
    chk("closed-state", c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == 7)
    chk("closed-eof", c.recv(10) == b"")
    try:
        c.send(b"x"); chk("closed-epipe", False)
    except BrokenPipeError:
        chk("closed-epipe", True)
    r, _, _ = select.select([l3], [], [], 10)
    if r:
        a, _ = l3.accept(); a.sendall(b"hi"); a.close()
    chk("7402-accepts", bool(r))
    chk("bound-7403", b.getsockname()[1] == 7403)
    r, _, _ = select.select([l4], [], [], 10)
    if r:
        a, _ = l4.accept(); a.sendall(b"hi"); a.close()
    chk("7403-accepts", bool(r))
    print("ROUND", n, " ".join(res), flush=True)
    n += 1
PY

# the peer: one connection to 7402 that it shuts down at once (and reads
# to the end), then on each round 6 clients to 7401, one to 7402 and 7403
cat > "$T/peer.py" <<'PY'
import os, socket, sys, time
go = sys.argv[1]
s = socket.create_connection(("10.77.0.1", 7402))
s.shutdown(socket.SHUT_WR)
assert s.recv(10) == b""
print("CLOSED", flush=True)
n = 0
while True:
    while not os.path.exists("%s-%d" % (go, n)):
        time.sleep(0.02)
    ok = 0
    for port in [7401] * 6 + [7402, 7403]:
        try:
            c = socket.create_connection(("10.77.0.1", port), timeout=10)
            ok += c.recv(10) == b"hi"
            c.close()
        except OSError as e:
            print("ERROR", port, e, flush=True)
    print("PEER", n, ok, flush=True)
    n += 1
PY

svc=$(start_bg "$T/svc" nsenter --net=/run/netns/"$NSA" python3 "$T/svc.py" "$T/go")
sleep 0.3
peer=$(start_bg "$T/peer" nsenter --net=/run/netns/"$NSB" python3 "$T/peer.py" "$T/gp")
wait_for_line "$T/svc" '^READY' || bail "service did not start"
wait_for_line "$T/peer" '^CLOSED' || bail "peer did not close"
# round N: both sides, then the service's verdict
round() {
	touch "$T/go-$1" "$T/gp-$1"
	wait_for_line "$T/svc" "^ROUND $1 " 30 && wait_for_line "$T/peer" "^PEER $1 " 30 &&
	! grep "^ROUND $1 " "$T/svc" | grep -q BAD && grep -q "^PEER $1 8$" "$T/peer" ||
	{ grep "^ROUND $1 \|^PEER $1\|ERROR" "$T/svc" "$T/peer"; false; }
}
check "before the dump: every socket as set up" round 0

check "kup dump" kup_run "$T/d1" dump -t "$svc" -D "$T/img1"
wait_gone "$svc"
check "kup restore" kup_in "$NSA" "$T/r1" restore -D "$T/img1" -d
track "$svc"
check "... SO_REUSEPORT as dumped on both listeners of 7401, which accept clients;" \
	round 1
check "... the closed connection bound to 7402, EOF, EPIPE; the bound socket on 7403" \
	grep -q "^ROUND 1 .*OK closed-bound-7402 OK closed-state OK closed-eof OK closed-epipe .*OK bound-7403" "$T/svc"
check "kup dump --leave-running" kup_run "$T/d2" dump -t "$svc" -D "$T/img2" --leave-running
check "... every socket as it was" round 2

# a connection reset by its peer, with bytes and the error not read yet
rs=$(start_bg "$T/rst" nsenter --net=/run/netns/"$NSA" python3 -c '
import socket, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("10.77.0.1", 7404)); l.listen(1)
print("LISTEN", flush=True)
c, _ = l.accept()
while c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != 7:
    time.sleep(0.02)
print("RESET", c.fileno(), flush=True)
time.sleep(3600)')
wait_for_line "$T/rst" '^LISTEN' || bail "no listener"
in_ns "$NSB" python3 -c '
import socket, struct
s = socket.create_connection(("10.77.0.1", 7404))
s.sendall(b"abc")
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()'
wait_for_line "$T/rst" '^RESET' || bail "no reset"
fd=$(line_field "$T/rst" '^RESET' 2)
check_fails "a connection reset with bytes not read: the dump is refused" \
	kup_try dump -t "$rs" -D "$T/img3"
check "... naming pid, fd and the connection" \
	grep -qE "pid $rs fd $fd: TCP 10\.77\.0\.1:7404: closed connection with an error not read yet .*and bytes not read: not supported" "$T/err"
check "... the tree goes on" not_frozen "$rs"
