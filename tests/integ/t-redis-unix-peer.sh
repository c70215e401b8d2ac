#!/bin/bash
# redis-server (Debian's) with three clients: one on its unix socket and one
# over TCP from its own network namespace (local), both outside the dumped
# tree (after a kernel switch they would be gone), one over TCP from another
# network namespace, kept with --tcp-established.  A dump without
# --external-peers=close is refused naming redis' pid and fd and the unix
# client (pid, name), and redis goes on.  With it: one warning for each
# outside connection, the restore works, redis sees both outside clients
# disconnect (gone from CLIENT LIST), a new unix client connects, and the TCP client goes
# on over its connection, reading the keys it wrote before the dump.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
require_root
command -v redis-server > /dev/null || skip_all "needs redis-server"
command -v redis-cli > /dev/null || skip_all "needs redis-cli"
command -v python3 > /dev/null || skip_all "needs python3"
plan 18
net_setup

cat > "$T/redis.conf" <<CONF
bind 10.77.0.1
port 6379
unixsocket $T/redis.sock
unixsocketperm 700
daemonize no
dir $T
save ""
appendonly no
protected-mode no
logfile ""
CONF
rpid=$(start_bg "$T/redis.out" nsenter --net=/run/netns/"$NSA" redis-server "$T/redis.conf")
wait_for "[ -S '$T/redis.sock' ]" 10 &&
	wait_for "in_ns $NSA ss -Htln '( sport = :6379 )' | grep -q 6379" 10 || bail "redis did not start"

# the unix client, outside the tree (in redis' network namespace: the socket
# accepted for it is made in the client's): named, it waits for the end of
# the stream
upid=$(start_bg "$T/ucli.out" nsenter --net=/run/netns/"$NSA" python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"CLIENT SETNAME unixcli\r\n")
assert s.recv(100) == b"+OK\r\n"
print("UNIX CONNECTED", flush=True)
while s.recv(4096):
    pass
print("UNIX EOF", flush=True)
' "$T/redis.sock")
wait_for_line "$T/ucli.out" '^UNIX CONNECTED' || bail "the unix client did not connect"
# a local TCP client, outside the tree too (same namespace: its socket is
# local, gone after a switch): kept as closed by its peer as well
lpid=$(start_bg "$T/lcli.out" nsenter --net=/run/netns/"$NSA" python3 -c '
import socket
s = socket.create_connection(("10.77.0.1", 6379))
s.sendall(b"CLIENT SETNAME tcplocal\r\n")
assert s.recv(100) == b"+OK\r\n"
print("LOCAL CONNECTED", flush=True)
while s.recv(4096):
    pass
')
wait_for_line "$T/lcli.out" '^LOCAL CONNECTED' || bail "the local TCP client did not connect"

# the TCP client: one connection; writes key<n>, then reads every key back,
# one round every 0.1 s, prints "ROUND n PORT" (its local port: the same
# connection all along)
tpid=$(start_bg "$T/tcli.out" nsenter --net=/run/netns/"$NSB" python3 -c '
import socket, sys, time
s = socket.create_connection(("10.77.0.1", 6379))
f = s.makefile("rb")
s.sendall(b"CLIENT SETNAME tcpcli\r\n")
assert f.readline() == b"+OK\r\n"
port = s.getsockname()[1]
n = 0
while True:
    v = b"v%d" % n
    s.sendall(b"*3\r\n$3\r\nSET\r\n$%d\r\nkey%d\r\n$%d\r\n%s\r\n" % (len(b"key%d" % n), n, len(v), v))
    if f.readline() != b"+OK\r\n":
        print("ERROR set", n, flush=True); sys.exit(1)
    for i in range(0, n + 1, max(1, n // 10)):
        s.sendall(b"GET key%d\r\n" % i)
        hdr = f.readline()
        val = f.readline()
        if hdr != b"$%d\r\n" % len(b"v%d" % i) or val != b"v%d\r\n" % i:
            print("ERROR get key%d: %r %r" % (i, hdr, val), flush=True); sys.exit(1)
    print("ROUND", n, port, flush=True)
    n += 1
    time.sleep(0.1)
')
wait_for_line "$T/tcli.out" '^ROUND 5 ' || bail "the TCP client does not run"

check "redis has its three clients" \
	eval "redis-cli -s '$T/redis.sock' CLIENT LIST > '$T/cl0' && grep -q name=unixcli '$T/cl0' && grep -q name=tcpcli '$T/cl0' && grep -q name=tcplocal '$T/cl0'"

check_fails "dump without --external-peers=close is refused" \
	kup_in "$NSA" "$T/dump0.log" dump -t "$rpid" -D "$T/img0" --tcp-established
note "$(grep error "$T/dump0.log")"
check "... naming redis' pid and fd, and the client pid $upid (python3)" \
	grep -q "pid $rpid fd [0-9]*: unix stream socket connected to a peer outside the dumped tree (socket:\[[0-9]*\] of pid $upid (python3)" "$T/dump0.log"
n=$(lines_count "$T/tcli.out" '^ROUND ')
check "... redis goes on" wait_for "[ \$(lines_count '$T/tcli.out' '^ROUND ') -gt $((n + 3)) ]" 10
check "... neither stopped nor traced" not_frozen "$rpid"

tree=$(tree_pids "$rpid")
check "kup dump --tcp-established --external-peers=close" \
	kup_in "$NSA" "$T/dump.log" dump -t "$rpid" -D "$T/img" --tcp-established --external-peers=close ||
	note "$(tail -n 20 "$T/dump.log")"
note "$(grep warning "$T/dump.log")"
check "one warning, naming redis' pid and fd and the unix client pid $upid" \
	[ "$(grep -c "warning: pid $rpid fd [0-9]*: unix stream socket connected to a peer outside the dumped tree (socket:\[[0-9]*\] of pid $upid (python3).*restored as closed by its peer" "$T/dump.log")" = 1 ]
check "... and one naming the local TCP client pid $lpid" \
	[ "$(grep -c "warning: pid $rpid fd [0-9]*: TCP 10.77.0.1:6379 -> 10.77.0.1:[0-9]*: its peer is pid $lpid (python3), outside the dumped tree: restored as closed by its peer" "$T/dump.log")" = 1 ]
check "redis is gone" eval '(for p in $tree; do wait_gone $p || exit 1; done)'
kill_tree "$upid"
kill_tree "$lpid"
before=$(lines_count "$T/tcli.out" '^ROUND ')
check "kup restore --tcp-established" kup_in "$NSA" "$T/restore.log" restore -D "$T/img" -d --tcp-established ||
	note "$(tail -n 20 "$T/restore.log")"
track "$rpid"
check "redis runs again as pid $rpid" alive "$rpid"
check "the TCP client goes on: 10 more rounds" \
	wait_for "[ \$(lines_count '$T/tcli.out' '^ROUND ') -ge $((before + 10)) ]" 20
check "... over the same connection (one local port), every key read back, no error" \
	eval "[ \$(awk '/^ROUND/ { print \$3 }' '$T/tcli.out' | sort -u | wc -l) = 1 ] && ! grep -q ERROR '$T/tcli.out'"
check "redis saw the unix client go (not in CLIENT LIST)" \
	wait_for "! redis-cli -s '$T/redis.sock' CLIENT LIST | grep -q name=unixcli" 10
check "... and the local TCP client" \
	wait_for "! redis-cli -s '$T/redis.sock' CLIENT LIST | grep -q name=tcplocal" 10
check "... the TCP client is still there" \
	eval "redis-cli -s '$T/redis.sock' CLIENT LIST | grep -q name=tcpcli"
check "a new unix client connects: PING" [ "$(redis-cli -s "$T/redis.sock" PING)" = PONG ]
check "... and reads a key the TCP client wrote before the dump" \
	[ "$(redis-cli -s "$T/redis.sock" GET key3)" = v3 ]
