#!/bin/bash
# tun/tap devices held by tests/progs/tunecho (it answers pings read from its
# tun queues): a multi-queue tun with an MTU, a txqueuelen, addresses (one
# point-to-point, one IPv6) and routes (a gateway and a metric, table 100,
# IPv6), a persistent TAP with vnet headers, an owner, a group, a MAC and an
# MTU, and a tun with packet information and its carrier off.  dump ->
# kill -> restore inside the namespace: `ip -d link`, `ip addr` and
# `ip route` read the same (less what the kernel makes by itself: IPv6
# link-local addresses and routes, operstate) and pings routed through the
# tun are answered again by the restored process.  A persistent device
# that outlived the tree is attached to.  Refused: a detached queue, a
# device with a queue outside the tree and a tun fd shared with a process
# outside it (at dump, naming pid, fd and device, the tree left running),
# and a device that another process holds by restore time (naming it, that
# process left alone).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
require_root
[ -c /dev/net/tun ] || skip_all "needs /dev/net/tun"
net_setup
plan 43

E=$PROGS/tunecho
ns() { in_ns "$NSA" "$@"; }

# The devices as ip shows them, without what the kernel makes by itself.
snapshot() {
	ns sh -c 'ip -d link; ip addr; ip route show table all; ip -6 route show table all' |
		sed -E 's/ state [A-Z]+ / /' |
		awk '/fe80|ff00::\/8/ { skip = 1; next } skip && /valid_lft/ { skip = 0; next } { skip = 0; print }'
}
same_as_before() { snapshot > "$T/now"; diff "$T/before" "$T/now"; }

# replies N: tunecho answered more than N pings.
replies() { [ "$(line_field "$T/e" '^N ' 2)" -gt "$1" ]; }
# ping_through: a ping routed through ktun0 (10.99.0.0/16 via 10.88.0.2) is
# answered, and tunecho counts it.
ping_through() {
	local n
	n=$(line_field "$T/e" '^N ' 2)
	ns ping -c 1 -W 2 10.99.1.1 && ns ping -c 1 -W 2 -I 10.88.5.1 10.99.2.2 &&
		wait_for "replies $((${n:-0} + 1))" 10
}
rx_packets() {
	ns ip -s -j link show "$1" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["packets"])'
}
ltun_gone() { ! ns ip link show "$1" > /dev/null 2>&1; }

pid=$(start_bg "$T/e" nsenter --net=/run/netns/"$NSA" "$E" ktun0:tun:mq=2 ktap0:tap:vnet:persist:owner=65534:group=65534 ktun1:tun:pi)
wait_for_line "$T/e" '^READY' || bail "tunecho did not start"
at_exit "ns ip tuntap del ktap0 mode tap 2>/dev/null"
ns sh -e -c '
	ip link set ktun0 mtu 1400 txqueuelen 77
	ip addr add 10.88.0.1/24 dev ktun0
	ip addr add 10.88.5.1 peer 10.88.5.2/32 dev ktun0
	ip -6 addr add fd88::1/64 dev ktun0
	ip link set ktun0 up
	ip route add 10.99.0.0/16 via 10.88.0.2 metric 5
	ip route add 10.98.0.0/24 dev ktun0 table 100
	ip -6 route add fd99::/64 via fd88::2 dev ktun0
	ip link set ktap0 address 02:11:22:33:44:55 mtu 9000
	ip addr add 10.89.0.1/24 dev ktap0
	ip link set ktap0 up
	ip addr add 10.90.0.1/24 dev ktun1
	ip link set ktun1 up
	ip link set ktun1 carrier off' || bail "cannot configure the devices"
check "pings through the tun are answered before the dump" ping_through
snapshot > "$T/before"
note "$(grep -E 'tun type|inet|via|table 100' "$T/before")"

# 1. Everything goes with the tree; the persistent TAP is deleted too, as a
# reboot would.
check "kup dump of a tree with a multi-queue tun, a TAP and a tun with PI" \
	kup_run "$T/d1" dump -t "$pid" -D "$T/img1"
check "... which is gone" wait_gone "$pid"
check "... and so is its multi-queue tun" ltun_gone ktun0
check "... but not the persistent TAP" ns ip link show ktap0
ns ip tuntap del ktap0 mode tap
check "kup restore in the namespace recreates the three devices" \
	kup_in "$NSA" "$T/r1" restore -D "$T/img1" -d
track "$pid"
check "ip -d link, ip addr, ip route read as before the dump" same_as_before
check "the tun is multi-queue with 2 queues again" \
	eval "ns ip -d link show ktun0 | grep -q 'multi_queue numqueues 2 '"
check "the TAP is persistent, owned by 65534:65534, with vnet headers" \
	eval "ns ip -d link show ktap0 | grep -q 'tap pi off vnet_hdr on persist on user nobody group nogroup'"
check "the tun with packet information still has it, and no carrier" \
	eval "ns ip -d link show ktun1 | grep -q 'type tun pi on' && ns ip link show ktun1 | grep -q NO-CARRIER"
check "pings through the tun are answered by the restored process" ping_through
check "the tun's counters (a new device) show the replies after the restore" \
	eval "[ \$(rx_packets ktun0) -gt 0 ]"

# 2. The persistent TAP outlives the tree this time: it is attached to.
check "kup dump again" kup_run "$T/d2" dump -t "$pid" -D "$T/img2"
check "... which is gone" wait_gone "$pid"
check "kup restore attaches to the persistent TAP still there" \
	kup_in "$NSA" "$T/r2" restore -D "$T/img2" -d -v
track "$pid"
check "... and says so" grep -q 'kept tun device ktap0' "$T/r2"
check "ip -d link, ip addr, ip route still read as before" same_as_before
check "pings through the tun are answered again" ping_through
check "tunecho never failed" [ "$(lines_count "$T/e" ERROR)" = 0 ]

# 3. Refused at dump: a queue detached with TUNSETQUEUE.
det=$(start_bg "$T/det" nsenter --net=/run/netns/"$NSA" "$E" kdet:tun:mq=2:detach)
wait_for_line "$T/det" '^READY' || bail "tunecho (detached queue) did not start"
check_fails "a detached queue is refused at dump" kup_run "$T/d3" dump -t "$det" -D "$T/img3"
check "... naming pid, fd and device" grep -qE "pid $det fd [0-9]+: .*kdet.* detached with TUNSETQUEUE" "$T/d3"
check "... and the tree runs on" not_frozen "$det"
check "... with its device" ns ip link show kdet

# 4. Refused at dump: a queue of the device held outside the tree.
o1=$(start_bg "$T/o1" nsenter --net=/run/netns/"$NSA" "$E" kout:tun:mq=1)
wait_for_line "$T/o1" '^READY' || bail "tunecho (kout 1) did not start"
o2=$(start_bg "$T/o2" nsenter --net=/run/netns/"$NSA" "$E" kout:tun:mq=1)
wait_for_line "$T/o2" '^READY' || bail "tunecho (kout 2) did not start"
check_fails "a device with a queue outside the tree is refused at dump" \
	kup_run "$T/d4" dump -t "$o1" -D "$T/img4"
check "... naming pid, fd and device" grep -qE "pid $o1 fd [0-9]+: tun device kout has 2 queue\(s\) attached, the dumped tree holds 1" "$T/d4"
check "... and the tree runs on" not_frozen "$o1"
kill_tree "$o2"

# 4b. Refused at dump: the very description shared with a process outside
# the tree (it took a copy with pidfd_getfd).
s1=$(start_bg "$T/s1" nsenter --net=/run/netns/"$NSA" "$E" kshare:tun)
wait_for_line "$T/s1" '^READY' || bail "tunecho (kshare) did not start"
s2=$(start_bg "$T/s2" python3 -c '
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.syscall(438, os.pidfd_open(int(sys.argv[1])), 3, 0)
print("HELD", fd, flush=True) if fd >= 0 else print("ERROR", ctypes.get_errno(), flush=True)
time.sleep(3600)' "$s1")
wait_for_line "$T/s2" '^HELD' || bail "cannot share kshare's fd"
check_fails "a tun fd shared with a process outside the tree is refused at dump" \
	kup_run "$T/d4b" dump -t "$s1" -D "$T/img4b"
check "... naming both" grep -qE "pid $s1 fd 3: tun device kshare is also held by pid $s2 fd [0-9]+, outside the dumped tree" "$T/d4b"
check "... and the tree runs on" not_frozen "$s1"
kill_tree "$s2"
check "once the other process is gone, the dump goes through" \
	kup_run "$T/d4c" dump -t "$s1" -D "$T/img4c"

# 5. At restore, the device is held by another process: refused, naming it.
b=$(start_bg "$T/b" nsenter --net=/run/netns/"$NSA" "$E" kbusy:tun)
wait_for_line "$T/b" '^READY' || bail "tunecho (kbusy) did not start"
check "kup dump of a tree holding kbusy" kup_run "$T/d5" dump -t "$b" -D "$T/img5"
check "... which is gone" wait_gone "$b"
other=$(start_bg "$T/other" nsenter --net=/run/netns/"$NSA" "$E" kbusy:tun)
wait_for_line "$T/other" '^READY' || bail "another tunecho did not take kbusy"
check_fails "the restore refuses a device another process holds" \
	kup_in "$NSA" "$T/r5" restore -D "$T/img5" -d
check "... naming it" grep -q 'tun device kbusy exists and another process holds it' "$T/r5"
check "... and leaves nothing behind" [ ! -d /proc/"$b" ]
check "... the holder keeps its device" eval "not_frozen $other && ns ip link show kbusy"
kill_tree "$other"
check "the holder is gone" wait_gone "$other"
check "... and its device" wait_for "ltun_gone kbusy" 10
check "the same image restores now" kup_in "$NSA" "$T/r6" restore -D "$T/img5" -d
track "$b"
check "... with its device" ns ip link show kbusy
check "... and no queue left over (one queue, held by the restored process)" \
	eval "ns ip -d link show kbusy | grep -q 'type tun'"

# 6. The image says what it keeps.
check "kup show prints the image" eval "\"$KUP\" show \"$T/img1\" > \"$T/show\""
check "... with its tun entries" grep -q 'FILE_TUN' "$T/show"
