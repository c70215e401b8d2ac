#!/bin/bash
# A live TCP connection across a veth pair: a client sends an incrementing
# 8-byte counter every 20 ms to an echo server and checks every reply.  The
# server is dumped (and killed) with --tcp-established and restored; then
# the client is dumped and restored while the server runs; then the server
# again with --leave-running.  The client's one connection never sees a
# reset, an end-of-file or a wrong value, and the count goes on.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
require_root
net_setup

srv=$(start_bg "$T/srv" nsenter --net=/run/netns/"$NSA" "$PROGS/tcppeer" echo-server 10.77.0.1 7001)
wait_for_line "$T/srv" '^LISTEN' || bail "server did not start"
cli=$(start_bg "$T/cli" nsenter --net=/run/netns/"$NSB" "$PROGS/tcppeer" echo-client 10.77.0.1 7001)
wait_for_line "$T/cli" '^N 50$' || bail "client did not start"
sleep 0.2

# progress PAST: the client's count is past PAST within 10 s
progress() { wait_for "[ \"\$(line_field '$T/cli' '^N ' 2)\" -gt $1 ]" 10; }

check_fails "dump without --tcp-established is refused" kup_try dump -t "$srv" -D "$T/no"
check "... naming pid, fd and the connection" \
	grep -qE "pid $srv fd [0-9]+: established connection TCP 10\.77\.0\.1:7001 -> 10\.77\.0\.2:[0-9]+: needs --tcp-established" "$T/err"
check "... and the server keeps echoing" progress "$(line_field "$T/cli" '^N ' 2)"
check "... and left no network lock" [ "$(kup_tables "$NSA")" = 0 ]

check "kup dump --tcp-established of the server" kup_run "$T/d1" dump -t "$srv" -D "$T/img1" --tcp-established
check "the server is gone" wait_gone "$srv"
check "a network lock holds the connection" [ "$(kup_tables "$NSA")" = 1 ]
sleep 0.5
check "kup restore (in the server's namespace)" \
	kup_in "$NSA" "$T/r1" restore -D "$T/img1" -d --tcp-established ${KUP_RESTORE_OPTS:-}
track "$srv"
check "the network lock is gone" [ "$(kup_tables "$NSA")" = 0 ]
n=$(line_field "$T/cli" '^N ' 2)
check "the client's count goes on after the server's restore (past $n)" progress $((n + 100))
check "the server answers its checks" request_check "$srv" "$T/srv"

check "kup dump --tcp-established of the client" kup_run "$T/d2" dump -t "$cli" -D "$T/img2" --tcp-established
check "the client is gone" wait_gone "$cli"
sleep 0.3
check "kup restore of the client (in its namespace)" \
	kup_in "$NSB" "$T/r2" restore -D "$T/img2" -d --tcp-established ${KUP_RESTORE_OPTS:-}
track "$cli"
n=$(line_field "$T/cli" '^N ' 2)
check "the client's count goes on after its own restore (past $n)" progress $((n + 100))
check "no lock left in the client's namespace" [ "$(kup_tables "$NSB")" = 0 ]

check "kup dump --leave-running --tcp-established of the server" \
	kup_run "$T/d3" dump -t "$srv" -D "$T/img3" --tcp-established --leave-running
check "... no network lock is left" [ "$(kup_tables "$NSA")" = 0 ]
n=$(line_field "$T/cli" '^N ' 2)
check "... and the client's count goes on (past $n)" progress $((n + 100))
check "the server is neither stopped nor traced" not_frozen "$srv"

check "the client saw no error" [ "$(lines_count "$T/cli" ERROR)" = 0 ]
check "the server saw no connection closed" [ "$(lines_count "$T/srv" 'CLOSED|ERROR')" = 0 ]
check "the client never reconnected (one accept)" [ "$(lines_count "$T/srv" '^ACCEPT')" = 1 ]
check "the client is still one process with one connection" request_check "$cli" "$T/cli"

# Both ends of a loopback connection in the dumped process.
lp=$(start_bg "$T/lo" nsenter --net=/run/netns/"$NSA" python3 -c '
import socket, time
l = socket.socket(); l.bind(("127.0.0.1", 7500)); l.listen(1)
a = socket.create_connection(("127.0.0.1", 7500)); b, _ = l.accept()
n = 0
while True:
    a.sendall(b"x"); assert b.recv(1) == b"x"
    b.sendall(b"y"); assert a.recv(1) == b"y"
    n += 1
    if n % 50 == 0: print("N", n, flush=True)
    time.sleep(0.02)')
wait_for_line "$T/lo" '^N 50' || bail "loopback pair did not start"
check "kup dump of both ends of a loopback connection" kup_run "$T/d4" dump -t "$lp" -D "$T/img4" --tcp-established
wait_gone "$lp"
check "kup restore of both ends" kup_in "$NSA" "$T/r4" restore -D "$T/img4" -d --tcp-established
track "$lp"
n=$(line_field "$T/lo" '^N ' 2)
check "the pair goes on talking (past $n)" wait_for "[ \"\$(line_field '$T/lo' '^N ' 2)\" -gt $((n + 50)) ]" 10
check "... with no error" [ "$(lines_count "$T/lo" 'Error|Traceback')" = 0 ]
