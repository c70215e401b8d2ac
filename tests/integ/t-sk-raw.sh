#!/bin/bash
# Raw inet sockets, dumped, killed and restored (then with
# --leave-running): a raw ICMP socket bound to an address and a device
# (SO_BINDTODEVICE, by name), connected, with an ICMP_FILTER, pings a host
# in another namespace whose kernel answers, before and after; a raw IPv4
# socket with IP_HDRINCL and a raw IPv6 socket with IPV6_CHECKSUM keep
# their options, and a raw socket of protocol TCP stays one.  (Packet sockets are refused: t-errors, t-sk-errors.)
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
require_root
command -v python3 > /dev/null || skip_all "needs python3"
net_setup

cat > "$T/svc.py" <<'PY'
import os, socket, struct, sys, time
go = sys.argv[1]
SOL_RAW, ICMP_FILTER, IPV6_CHECKSUM = 255, 1, 7
r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
r.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"va")
r.bind(("10.77.0.1", 0)); r.connect(("10.77.0.2", 0))
mask = 0xffffffff & ~(1 << 0)		# drop every ICMP type but echo replies
r.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", mask))
h = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
h.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
rt = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
c6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 253)
c6.setsockopt(socket.IPPROTO_IPV6, IPV6_CHECKSUM, 2)
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
def ping(seq):
    p = struct.pack("!BBHHH", 8, 0, 0, 0x4b55, seq) + b"kup!"
    p = p[:2] + struct.pack("!H", csum(p)) + p[4:]
    r.send(p)
    r.settimeout(5)
    try:
        while True:
            d = r.recv(200)
            ihl = (d[0] & 15) * 4
            t, _, _, i, sq = struct.unpack("!BBHHH", d[ihl:ihl + 8])
            if t == 0 and i == 0x4b55 and sq == seq:
                return True
    except socket.timeout:
        return False
print("READY", flush=True)
n = 0
while True:
    while not os.path.exists("%s-%d" % (go, n)):
        time.sleep(0.02)
    res = []
    def chk(name, ok): res.append(("OK " if ok else "BAD ") + name)
    chk("bound", r.getsockname()[0] == "10.77.0.1")
    chk("device", r.getsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, 16).rstrip(b"\0") == b"va")
    chk("icmp-filter", struct.unpack("I", r.getsockopt(SOL_RAW, ICMP_FILTER, 4))[0] == mask)
    chk("echo", ping(n + 1))
    chk("hdrincl", h.getsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL) == 1)
    chk("checksum6", c6.getsockopt(socket.IPPROTO_IPV6, IPV6_CHECKSUM) == 2)
    chk("raw-tcp", rt.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL) == 6 and
        rt.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_RAW)
    print("ROUND", n, " ".join(res), flush=True)
    n += 1
PY
svc=$(start_bg "$T/svc" nsenter --net=/run/netns/"$NSA" python3 "$T/svc.py" "$T/go")
wait_for_line "$T/svc" '^READY' || bail "service did not start"
round() {
	touch "$T/go-$1"
	wait_for_line "$T/svc" "^ROUND $1 " 30 && ! grep "^ROUND $1 " "$T/svc" | grep -q BAD ||
	{ grep "^ROUND $1 \|Error" "$T/svc"; false; }
}
check "before the dump: the raw sockets as set, an echo answered" round 0
check "kup dump" kup_run "$T/d1" dump -t "$svc" -D "$T/img1"
wait_gone "$svc"
check "kup restore" kup_in "$NSA" "$T/r1" restore -D "$T/img1" -d
track "$svc"
check "... bound, on its device, connected, filtered: the echo answered; the options kept" round 1
check "kup dump --leave-running" kup_run "$T/d2" dump -t "$svc" -D "$T/img2" --leave-running
check "... all as it was" round 2
