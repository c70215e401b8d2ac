#!/bin/bash
# UDP sockets, bound and connected, IPv4 and IPv6, a listening TCP socket on
# the IPv6 wildcard and a v4-mapped connection to it: one server tree and one
# client tree, each dumped and restored; the datagrams keep flowing both
# ways and the listener accepts new connections.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
require_root
net_setup

P=$PROGS/tcppeer
srv=$(start_bg "$T/srv" nsenter --net=/run/netns/"$NSA" sh -c "
	$P udp-server 10.77.0.1 7003 > $T/u4 2>&1 &
	$P udp-server fd77::1 7004 > $T/u6 2>&1 &
	$P listen :: 7005 > $T/ls 2>&1 &
	$P echo-server :: 7006 > $T/es 2>&1 &
	wait")
for f in u4 u6 ls es; do wait_for_line "$T/$f" '^(UDP READY|LISTEN)' || bail "server $f did not start"; done
cli=$(start_bg "$T/cli" nsenter --net=/run/netns/"$NSB" sh -c "
	$P udp-client 10.77.0.1 7003 > $T/c4 2>&1 &
	$P udp-client fd77::1 7004 > $T/c6 2>&1 &
	$P echo-client 10.77.0.1 7006 > $T/cm 2>&1 &
	wait")
for f in c4 c6 cm; do wait_for_line "$T/$f" '^N 50$' || bail "client $f did not start"; done

# progress FILE: its count grows by 50 within 10 s
progress() {
	local n
	n=$(line_field "$T/$1" '^N ' 2)
	wait_for "[ \"\$(line_field '$T/$1' '^N ' 2)\" -gt $((n + 50)) ]" 10
}
hello() { in_ns "$NSB" timeout 5 bash -c "exec 3<>/dev/tcp/$1/7005 && head -n 1 <&3" 2>/dev/null | grep -q HELLO; }

check "the listener answers on IPv4 (v4-mapped) before the dump" hello 10.77.0.1
check "kup dump of the server tree" kup_run "$T/d1" dump -t "$srv" -D "$T/img1" --tcp-established
check "... which is gone" wait_gone "$srv"
check "kup restore of the server tree" kup_in "$NSA" "$T/r1" restore -D "$T/img1" -d --tcp-established
track "$srv"
check "UDP over IPv4 flows again" progress c4
check "UDP over IPv6 flows again" progress c6
check "the v4-mapped echo connection goes on" progress cm
check "the listener accepts a new IPv4 connection" hello 10.77.0.1
check "the listener accepts a new IPv6 connection" hello fd77::1

check "kup dump of the client tree (connected UDP sockets)" kup_run "$T/d2" dump -t "$cli" -D "$T/img2" --tcp-established
check "... which is gone" wait_gone "$cli"
check "kup restore of the client tree" kup_in "$NSB" "$T/r2" restore -D "$T/img2" -d --tcp-established
track "$cli"
check "connected UDP over IPv4 flows again" progress c4
check "connected UDP over IPv6 flows again" progress c6
check "the v4-mapped connection goes on from the restored client" progress cm
check "no error anywhere" [ "$(cat "$T"/u4 "$T"/u6 "$T"/ls "$T"/es "$T"/c4 "$T"/c6 "$T"/cm | grep -c ERROR)" = 0 ]
check "the echo server never lost its client" [ "$(lines_count "$T/es" 'CLOSED')" = 0 ]

# A listener without SO_REUSEADDR whose fd number comes after the connection
# it accepted (restored first, in repair mode, on the same port).
srv2=$(start_bg "$T/s2" nsenter --net=/run/netns/"$NSA" python3 -c '
import os, socket, time
l = socket.socket(); l.bind(("10.77.0.1", 7301)); l.listen(4)
print("LISTEN", flush=True)
c, _ = l.accept()
os.dup2(l.fileno(), 50); l.close()
print("READY", c.fileno(), flush=True)
while True:
    d = c.recv(100)
    if not d: break
    c.sendall(d)
print("CLOSED", flush=True)
time.sleep(3600)')
wait_for_line "$T/s2" '^LISTEN' || bail "python server did not start"
cli2=$(start_bg "$T/c2" nsenter --net=/run/netns/"$NSB" python3 -c '
import socket, time
s = socket.create_connection(("10.77.0.1", 7301))
n = 0
while True:
    s.sendall(b"x"); assert s.recv(1) == b"x"; n += 1
    if n % 50 == 0: print("N", n, flush=True)
    time.sleep(0.02)')
wait_for_line "$T/s2" '^READY' || bail "python server did not accept"
check "kup dump of a listener at fd 50 and the connection it accepted before" \
	kup_run "$T/d3" dump -t "$srv2" -D "$T/img3" --tcp-established
wait_gone "$srv2"
check "kup restore: the listener binds beside its connection" \
	kup_in "$NSA" "$T/r3" restore -D "$T/img3" -d --tcp-established
track "$srv2"
check "the connection goes on" progress c2
check "the port is still listened on" eval "in_ns $NSA ss -Htln '( sport = :7301 )' | grep -q 7301"
check "no error" [ "$(cat "$T/s2" "$T/c2" | grep -cE 'Traceback|CLOSED')" = 0 ]
