#!/bin/bash
# Half-closed connections: a client that shut down its sending side
# (FIN_WAIT2: its FIN was acknowledged; FIN_WAIT1: its FIN still waits
# behind data the server has not read) is dumped and restored, then the
# server reads everything, sees the end of file, answers and closes: the
# client reads the answer and its end of file.  (The server's side,
# CLOSE_WAIT, and the other closing states: t-sk-tcp-closing.sh.)
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
require_root
command -v python3 > /dev/null || skip_all "needs python3"
net_setup

# server PORT: accept one client; on file $T/go-PORT, read it all to EOF
# ("GOT n"), send 4000 bytes and close
server() {
	start_bg "$T/s$1" nsenter --net=/run/netns/"$NSA" python3 -c '
import os, socket, sys, time
port, go = int(sys.argv[1]), sys.argv[2]
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("10.77.0.1", port)); l.listen(1)
print("LISTEN", flush=True)
c, _ = l.accept()
c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
print("ACCEPT", flush=True)
while not os.path.exists(go):
    time.sleep(0.05)
n = 0
while True:
    d = c.recv(65536)
    if not d: break
    n += len(d)
print("GOT", n, flush=True)
c.sendall(b"b" * 4000)
c.close()
print("CLOSED", flush=True)
time.sleep(3600)' "$1" "$T/go-$1"
}
# client PORT BYTES: send BYTES bytes (non-blocking, as much as fits), shut
# down writing, then read the answer to EOF ("READ n EOF")
client() {
	start_bg "$T/c$1" nsenter --net=/run/netns/"$NSB" python3 -c '
import socket, sys, time
port, size = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("10.77.0.1", port))
s.setblocking(False)
sent, buf = 0, b"a" * 65536
end = time.time() + 2
while sent < size and time.time() < end:
    try: sent += s.send(buf[:size - sent])
    except BlockingIOError: time.sleep(0.01)
s.shutdown(socket.SHUT_WR)
print("SHUT", sent, flush=True)
s.setblocking(True)
n = 0
while True:
    d = s.recv(65536)
    if not d: break
    n += len(d)
print("READ", n, "EOF", flush=True)
time.sleep(3600)' "$1" "$2"
}
# state NS PORT: TCP state of the connection on PORT in NS
state() { in_ns "$1" ss -Htn state all "( sport = :$2 or dport = :$2 )" | awk '{ print $1 }' | grep -v LISTEN | head -n 1; }

# FIN_WAIT2
s1=$(server 7201)
wait_for_line "$T/s7201" '^LISTEN' || bail "server did not start"
c1=$(client 7201 5)
wait_for_line "$T/c7201" '^SHUT' || bail "client did not shut down"
wait_for "[ \"\$(state $NSB 7201)\" = FIN-WAIT-2 ]" 5
check "the client's connection is in FIN_WAIT2" [ "$(state "$NSB" 7201)" = FIN-WAIT-2 ]
check "kup dump of the client in FIN_WAIT2" kup_run "$T/d1" dump -t "$c1" -D "$T/img1" --tcp-established
wait_gone "$c1"
check "kup restore of the client" kup_in "$NSB" "$T/r1" restore -D "$T/img1" -d --tcp-established
track "$c1"
touch "$T/go-7201"
check "the server gets the client's 5 bytes and its end of file" wait_for_line "$T/s7201" '^GOT 5$' 10
check "the restored client reads the 4000 byte answer and the end of file" \
	wait_for_line "$T/c7201" '^READ 4000 EOF' 10

# FIN_WAIT1: the FIN waits behind megabytes the server does not read yet
s2=$(server 7202)
wait_for_line "$T/s7202" '^ACCEPT|^LISTEN' || bail "server did not start"
c2=$(client 7202 8000000)
wait_for_line "$T/c7202" '^SHUT' || bail "client did not shut down"
sent=$(line_field "$T/c7202" '^SHUT' 2)
check "the client's connection is in FIN_WAIT1 with data queued ($sent bytes sent)" \
	[ "$(state "$NSB" 7202)" = FIN-WAIT-1 ]
check "kup dump of the client in FIN_WAIT1" kup_run "$T/d2" dump -t "$c2" -D "$T/img2" --tcp-established
wait_gone "$c2"
check "kup restore of the client" kup_in "$NSB" "$T/r2" restore -D "$T/img2" -d --tcp-established
track "$c2"
touch "$T/go-7202"
check "the server gets all $sent bytes, then the end of file" wait_for_line "$T/s7202" "^GOT $sent\$" 30
check "the restored client reads the answer and the end of file" \
	wait_for_line "$T/c7202" '^READ 4000 EOF' 10
check "no network lock left" [ "$(kup_tables "$NSB")" = 0 ]
check "no error" [ "$(cat "$T"/s72* "$T"/c72* | grep -cE 'Error|Traceback')" = 0 ]
