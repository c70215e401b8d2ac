#!/bin/bash
# Datagram sockets beyond UDP, dumped, killed and restored (then with
# --leave-running): ICMP "ping" sockets (SOCK_DGRAM, IPPROTO_ICMP and
# ICMPV6), connected to a host in another namespace whose kernel answers
# the echo requests, keep their echo identifier and get their answers;
# a UDP-Lite socket keeps its checksum coverage (UDPLITE_SEND_CSCOV,
# UDPLITE_RECV_CSCOV) and echoes a UDP-Lite client in the other namespace.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
require_root
command -v python3 > /dev/null || skip_all "needs python3"
net_setup
# ping sockets for group 0 in the service's namespace (per namespace)
in_ns "$NSA" sysctl -qw net.ipv4.ping_group_range="0 0" || skip_all "no ping_group_range"

cat > "$T/svc.py" <<'PY'
import os, socket, struct, sys, time
go = sys.argv[1]
UDPLITE, SEND_CSCOV, RECV_CSCOV = 136, 10, 11
p4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
p4.connect(("10.77.0.2", 0))
p6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM, socket.IPPROTO_ICMPV6)
p6.bind(("fd77::1", 4242)); p6.connect(("fd77::2", 0))
ul = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, UDPLITE)
ul.setsockopt(UDPLITE, SEND_CSCOV, 12); ul.setsockopt(UDPLITE, RECV_CSCOV, 10)
ul.bind(("10.77.0.1", 7601))
def ping(s, t, seq):	# echo request: the kernel puts the socket's identifier in
    s.send(struct.pack("!BBHHH", t, 0, 0, 0, seq) + b"kup")
    s.settimeout(5)
    try:
        r = s.recv(100)
    except socket.timeout:
        return None
    return struct.unpack("!BBHHH", r[:8])[4] == seq and r[8:] == b"kup"
ids = (p4.getsockname()[1], p6.getsockname()[1])
print("READY", ids[0], ids[1], flush=True)
n = 0
while True:
    while not os.path.exists("%s-%d" % (go, n)):
        time.sleep(0.02)
    res = []
    def chk(name, ok): res.append(("OK " if ok else "BAD ") + name)
    chk("p4-id", p4.getsockname()[1] == ids[0])
    chk("p6-id", p6.getsockname()[1] == 4242)
    chk("p4-echo", ping(p4, 8, 100 + n))
    chk("p6-echo", ping(p6, 128, 200 + n))
    chk("ul-cscov", ul.getsockopt(UDPLITE, SEND_CSCOV) == 12 and ul.getsockopt(UDPLITE, RECV_CSCOV) == 10)
    open("%s-%d-ready" % (go, n), "w").close()
    ul.settimeout(10)
    try:
        d, a = ul.recvfrom(100); ul.sendto(d, a); chk("ul-echo", True)
    except socket.timeout:
        chk("ul-echo", False)
    print("ROUND", n, " ".join(res), flush=True)
    n += 1
PY
svc=$(start_bg "$T/svc" nsenter --net=/run/netns/"$NSA" python3 "$T/svc.py" "$T/go")
wait_for_line "$T/svc" '^READY' || bail "service did not start"
round() {
	touch "$T/go-$1"
	wait_for "$T/go-$1-ready" 20 || return 1
	in_ns "$NSB" python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, 136)
s.setsockopt(136, 10, 12)
s.settimeout(10)
s.sendto(b"lite", ("10.77.0.1", 7601))
print("CLIENT", s.recv(100))' > "$T/cli-$1" 2>&1
	wait_for_line "$T/svc" "^ROUND $1 " 30 && ! grep "^ROUND $1 " "$T/svc" | grep -q BAD &&
	grep -q "CLIENT b'lite'" "$T/cli-$1" || { grep "^ROUND $1 " "$T/svc"; cat "$T/cli-$1"; false; }
}
check "before the dump: echo answers, UDP-Lite echo" round 0
check "kup dump" kup_run "$T/d1" dump -t "$svc" -D "$T/img1"
wait_gone "$svc"
check "kup restore" kup_in "$NSA" "$T/r1" restore -D "$T/img1" -d
track "$svc"
check "... ping sockets keep their identifiers and get their answers; UDP-Lite as it was" round 1
check "kup dump --leave-running" kup_run "$T/d2" dump -t "$svc" -D "$T/img2" --leave-running
check "... all as it was" round 2
