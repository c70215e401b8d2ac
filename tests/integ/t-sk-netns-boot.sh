#!/bin/bash
# Sockets restored on another boot (a kernel switch): network namespace
# inodes of the dump mean nothing there.  Linux 6.18 gave the initial
# network namespace a fixed inode (0xeffffff9) where 6.1 and 6.12 have the
# first dynamic one (0xf0000000), so a socket dumped on 6.12 and restored on
# 7.x was refused as "dumped in network namespace 4026531840".  The dump now
# records its own namespace (inventory.img's dump_netns: the machine's, for
# kup switch); on another boot (--as-new-boot takes that path on one
# kernel) a socket of that namespace is made in kup restore's own, one of
# any other namespace is refused.  On the boot of the dump nothing changes:
# the namespace must be the very one.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
require_root
net_setup
edit() { python3 "$(dirname "$0")/../imgedit.py" "$@"; }
FAKE=4026999999	# kup dump's namespace's inode on the dumping kernel

# a UDP echo service on 127.0.0.1 (an ephemeral port)
SRV='import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print("PORT", s.getsockname()[1], flush=True)
while True:
    d, a = s.recvfrom(100)
    s.sendto(b"re:" + d, a)'
ask() {	# ask [NS] PORT: the service answers
	local pre=()
	[ $# = 2 ] && { pre=(nsenter --net=/run/netns/"$1"); shift; }
	"${pre[@]}" python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
s.sendto(b"x", ("127.0.0.1", int(sys.argv[1])))
sys.exit(s.recv(100) != b"re:x")' "$1"
}

# ---- in kup's own namespace
pid=$(start_bg "$T/srv" python3 -c "$SRV")
wait_for_line "$T/srv" '^PORT' || bail "service did not start"
port=$(line_field "$T/srv" '^PORT' 2)
check "the service answers on 127.0.0.1:$port" ask "$port"
check "kup dump" kup_run "$T/d1" dump -t "$pid" -D "$T/img1"
wait_gone "$pid"
own=$(stat -L -c %i /proc/self/ns/net)
check "the dump recorded its own network namespace ($own)" \
	[ "$(edit "$T/img1/inventory.img" get:460)" = "$own" ]
check "the images made as a kup dump in a namespace $FAKE on another kernel writes them" \
	edit "$T/img1/inventory.img" 460=$FAKE
check "... (the socket's namespace too)" edit "$T/img1/files.img" "1{2=14}.40.6=$FAKE"
check_fails "on the boot of the dump, the restore is refused" \
	kup_run "$T/r0" restore -D "$T/img1" -d
check "... naming the file, the socket and both namespaces" \
	grep -q "file [0-9]* (inet socket): UDP 127.0.0.1:$port was dumped in network namespace $FAKE, kup restore runs in $own" "$T/r0"
check "... and nothing of the tree is left" [ ! -d /proc/$pid ]
check "on another boot (--as-new-boot), it is restored in kup restore's namespace" \
	kup_run "$T/r1" restore -D "$T/img1" -d --as-new-boot
track "$pid"
check "... same pid, and the service answers on 127.0.0.1:$port" \
	eval "alive $pid && ask $port"

# ---- in another namespace
pid2=$(start_bg "$T/srv2" nsenter --net=/run/netns/"$NSA" python3 -c "$SRV")
wait_for_line "$T/srv2" '^PORT' || bail "service in $NSA did not start"
port2=$(line_field "$T/srv2" '^PORT' 2)
check "kup dump of a service in the namespace $NSA" kup_run "$T/d2" dump -t "$pid2" -D "$T/img2"
wait_gone "$pid2"
check_fails "on another boot, its restore is refused (the namespace went with the old boot)" \
	kup_in "$NSA" "$T/r2" restore -D "$T/img2" -d --as-new-boot
check "... saying so" grep -q "was dumped in network namespace [0-9]*, not in kup dump's own ($own), on another boot: that namespace went with it" "$T/r2"
check "... and nothing of the tree is left" [ ! -d /proc/$pid2 ]
check "on the boot of the dump, it is restored in that namespace" \
	kup_in "$NSA" "$T/r3" restore -D "$T/img2" -d
track "$pid2"
check "... and answers there on 127.0.0.1:$port2" ask "$NSA" "$port2"
