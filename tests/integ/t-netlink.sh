#!/bin/bash
# Netlink sockets: a program holding a route socket (autobound port id,
# legacy bind() groups, a group above 32 joined with NETLINK_ADD_MEMBERSHIP,
# NETLINK_PKTINFO, NO_ENOBUFS, EXT_ACK, GET_STRICT_CHK, a forced receive
# buffer), a uevent socket bound to a chosen port id with group 1 and
# BROADCAST_ERROR, CAP_ACK, and a generic one never bound, is dumped, killed
# and restored: every attribute reads the same, the route socket answers a
# request and receives the notification of an address added after the
# restore.  A restore while another socket holds one of the port ids fails
# naming it, leaving nothing running.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
require_root
command -v python3 > /dev/null || skip_all "needs python3"
plan 12
net_setup

cat > "$T/nl.py" <<'PY'
import os, socket, struct, sys, time
SOL_NETLINK = 270
O = {"PKTINFO": 3, "BROADCAST_ERROR": 4, "NO_ENOBUFS": 5, "LISTEN_ALL_NSID": 8,
     "LIST_MEMBERSHIPS": 9, "CAP_ACK": 10, "EXT_ACK": 11, "GET_STRICT_CHK": 12}
ADD = 1
go = sys.argv[1]
r = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
r.bind((0, 0x10))                                 # RTMGRP_IPV4_IFADDR (group 5)
r.setsockopt(SOL_NETLINK, ADD, 33)                # RTNLGRP_BRVLAN: above 32
r.setsockopt(SOL_NETLINK, ADD, 1)                 # RTNLGRP_LINK
for o in ("PKTINFO", "NO_ENOBUFS", "EXT_ACK", "GET_STRICT_CHK"):
    r.setsockopt(SOL_NETLINK, O[o], 1)
r.setsockopt(socket.SOL_SOCKET, 33, 300000)       # SO_RCVBUFFORCE
u = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 15)
u.bind((0x4b550000 + os.getpid(), 1))
for o in ("BROADCAST_ERROR", "CAP_ACK"):
    u.setsockopt(SOL_NETLINK, O[o], 1)
g = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)

def state(s):
    opts = ",".join("%s=%d" % (o, s.getsockopt(SOL_NETLINK, O[o])) for o in sorted(O)
                    if o != "LIST_MEMBERSHIPS")
    mem = s.getsockopt(SOL_NETLINK, O["LIST_MEMBERSHIPS"], 16)
    return "%s port=%d groups=%s %s rcvbuf=%d" % (
        s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL), s.getsockname()[0],
        mem.hex(), opts, s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))

def show(tag):
    for n, s in (("route", r), ("uevent", u), ("generic", g)):
        print(tag, n, state(s), flush=True)
show("BEFORE")
while not os.path.exists(go):
    time.sleep(0.05)
show("AFTER")
# a request: dump the links, up to NLMSG_DONE
r.send(struct.pack("=IHHII", 32, 18, 0x301, 1, 0) + struct.pack("=BxHiII", 0, 0, 0, 0, 0))
done = False
while not done:
    data = r.recv(65536)
    off = 0
    while off < len(data):
        ln, typ = struct.unpack_from("=IH", data, off)
        if typ == 3:
            done = True
        if typ == 2:
            print("ERROR netlink error answer", flush=True); sys.exit(1)
        off += (ln + 3) & ~3
print("DUMP OK", flush=True)
print("WAITING", flush=True)
while True:
    data = r.recv(65536)
    ln, typ = struct.unpack_from("=IH", data, 0)
    if typ == 20:                                 # RTM_NEWADDR
        print("NOTIFY OK", flush=True)
        break
while True:
    time.sleep(1)
PY
pid=$(start_bg "$T/out" nsenter --net=/run/netns/"$NSA" python3 "$T/nl.py" "$T/go")
wait_for_line "$T/out" '^BEFORE generic' || bail "the program did not start"
note "$(grep BEFORE "$T/out")"
uport=$(awk '$1 == "BEFORE" && $2 == "uevent" { sub("port=", "", $4); print $4 }' "$T/out")

# the uevent port id taken: the restore fails naming it, nothing runs
check "kup dump" kup_in "$NSA" "$T/dump.log" dump -t "$pid" -D "$T/img" || note "$(cat "$T/dump.log")"
check "the program is gone" wait_gone "$pid"
hold=$(start_bg "$T/hold" nsenter --net=/run/netns/"$NSA" python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 15)
s.bind((int(sys.argv[1]), 0)); print("HOLD", flush=True); time.sleep(600)' "$uport")
wait_for_line "$T/hold" '^HOLD' || bail "cannot hold the port id"
check_fails "restore with port id $uport taken fails" kup_in "$NSA" "$T/r0.log" restore -D "$T/img" -d
check "... naming it" grep -q "uevent netlink socket: port id $uport is taken by another socket" "$T/r0.log"
check "... and nothing runs" [ ! -d /proc/$pid ]
kill_tree "$hold"
wait_gone "$hold"

check "kup restore" kup_in "$NSA" "$T/restore.log" restore -D "$T/img" -d || note "$(cat "$T/restore.log")"
track "$pid"
touch "$T/go"
check "it runs again" wait_for_line "$T/out" '^AFTER generic' 10
for k in route uevent generic; do
	check "the $k socket: same protocol, port id, groups, options" \
		[ "$(grep "^BEFORE $k " "$T/out" | cut -d' ' -f2-)" = "$(grep "^AFTER $k " "$T/out" | cut -d' ' -f2-)" ]
done
check "the route socket answers a request" wait_for_line "$T/out" '^DUMP OK' 10
wait_for_line "$T/out" '^WAITING' 10
in_ns "$NSA" ip addr add 10.99.0.1/24 dev va
check "... and gets the notification of a new address (group 5)" wait_for_line "$T/out" '^NOTIFY OK' 10
note "$(grep AFTER "$T/out")"
