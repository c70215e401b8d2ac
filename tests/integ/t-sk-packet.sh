#!/bin/bash
# Packet sockets (AF_PACKET), dumped, killed and restored (then with
# --leave-running): in a namespace with a veth, tests/progs/pktsock holds a
# SOCK_RAW socket bound to the veth for IPv4 with a classic filter (UDP to
# port 7777), a multicast and a promiscuous membership and the SOL_PACKET
# options set, and a SOCK_DGRAM one bound to the veth.  After each restore
# both still receive the datagrams sent from the other namespace, on the
# same interface, with the same getsockopt view; the memberships are back
# on the interface (promiscuity count, multicast address).  A socket whose
# interface was removed is refused at dump, naming pid and fd.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
require_root
net_setup

svc=$(start_bg "$T/svc" nsenter --net=/run/netns/"$NSA" "$PROGS/pktsock" va "$T/go")
wait_for_line "$T/svc" '^READY' || bail "pktsock did not start"
round() {
	touch "$T/go-$1"
	for _ in $(seq 40); do
		grep -q "^ROUND $1 \|ERROR" "$T/svc" && break
		in_ns "$NSB" bash -c "echo -n kup$1 > /dev/udp/10.77.0.1/7777" 2> /dev/null
		sleep 0.5
	done
	grep -q "^ROUND $1 " "$T/svc" || { grep "ERROR" "$T/svc"; false; }
}
opts() { grep "^ROUND $1 " "$T/svc" | sed 's/.* OPTS //'; }
same_opts() {
	[ "$(opts 0)" = "$(opts "$1")" ] ||
	{ printf 'before: %s\nafter:  %s\n' "$(opts 0)" "$(opts "$1")"; false; }
}
memberships() {
	ip -n "$NSA" -d link show va | grep -q "promiscuity 1 " &&
	ip -n "$NSA" maddr show dev va | grep -q '01:00:5e:01:02:03'
}
check "before the dump: both sockets receive the datagrams" round 0
check "... the view as set" grep -q "^ROUND 0 .*raw: type=3 proto=0x0800 if=va version=1 reserve=64 aux=1 origdev=1 vnet=1 tstamp=1 loss=1 .* filter=8; dgram: type=2 proto=0x0800 if=va .*filter=0$" "$T/svc"
check "... memberships on va" memberships
check "kup dump" kup_run "$T/d1" dump -t "$svc" -D "$T/img1"
wait_gone "$svc"
check "... the memberships went with the process" bash -c "ip -n $NSA -d link show va | grep -q 'promiscuity 0 '"
check "kup restore" kup_in "$NSA" "$T/r1" restore -D "$T/img1" -d
track "$svc"
check "... both sockets still receive the datagrams from the other namespace" round 1
check "... bound to va with the same options and filter" same_opts 1
check "... memberships back on va" memberships
check "kup dump --leave-running" kup_run "$T/d2" dump -t "$svc" -D "$T/img2" --leave-running
check "... all as it was" round 2
check "... same options" same_opts 2

# a packet socket whose interface was removed: refused, naming pid and fd,
# and the process goes on
ip -n "$NSA" link add vx type veth peer name vy || bail "cannot create a second veth pair"
ip -n "$NSA" link set vx up
gone=$(start_bg "$T/gone" nsenter --net=/run/netns/"$NSA" "$PROGS/pktsock" vx "$T/gonego")
wait_for_line "$T/gone" '^READY' || bail "pktsock on vx did not start"
ip -n "$NSA" link del vx
check_fails "a packet socket bound to a removed interface: the dump is refused" \
	kup_try dump -t "$gone" -D "$T/img3"
check "... naming pid $gone, the fd and the interface" \
	grep -q "pid $gone fd [0-9]*: packet socket: its bound interface (interface index -\?[0-9]*) has no name" "$T/err"
check "... leaving no checkpoint" [ ! -e "$T/img3/inventory.img" ]
check "... and the process runs on" not_frozen "$gone"
