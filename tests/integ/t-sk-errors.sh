#!/bin/bash
# Socket errors: what cannot be dumped is refused before anything changes,
# naming pid and fd; a failed dump lets connections it had already put in
# repair mode go on and removes its network lock; a restore whose port is
# taken, or run in another network namespace, fails cleanly: no process
# left, no network lock left, images intact for a second restore.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
require_root
net_setup
P=$PROGS/tcppeer

# 1. a packet socket, after an established connection in the same tree
srv=$(start_bg "$T/srv" nsenter --net=/run/netns/"$NSA" sh -c "
	$P echo-server 10.77.0.1 7101 > $T/es 2>&1 &
	sleep 0.5
	python3 -c '
import os, socket, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
print(\"RAW\", os.getpid(), s.fileno(), flush=True)
time.sleep(3600)' > $T/raw 2>&1 &
	wait")
wait_for_line "$T/es" '^LISTEN' || bail "server did not start"
cli=$(start_bg "$T/cli" nsenter --net=/run/netns/"$NSB" "$P" echo-client 10.77.0.1 7101)
wait_for_line "$T/cli" '^N 50$' || bail "client did not start"
wait_for_line "$T/raw" '^RAW' || bail "raw socket holder did not start"
rpid=$(line_field "$T/raw" '^RAW' 2) rfd=$(line_field "$T/raw" '^RAW' 3)
espid=$(pgrep -f "^$P echo-server 10.77.0.1 7101")
check_fails "dump of a tree holding a packet socket fails" \
	kup_try dump -t "$srv" -D "$T/rawimg" --tcp-established
check "... saying: pid $rpid fd $rfd: packet socket not supported" \
	grep -q "pid $rpid fd $rfd: packet socket not supported" "$T/err"
check "... leaving no checkpoint" [ ! -e "$T/rawimg/inventory.img" ]
check "... nor any network lock" [ "$(kup_tables "$NSA")" = 0 ]
check "... the echo server is neither stopped nor traced" not_frozen "$espid"
n=$(line_field "$T/cli" '^N ' 2)
check "... and its connection, which was dumped first, goes on (past $n)" \
	wait_for "[ \"\$(line_field '$T/cli' '^N ' 2)\" -gt $((n + 50)) ]" 10
check "... with no error" [ "$(cat "$T/cli" "$T/es" | grep -cE 'ERROR|CLOSED')" = 0 ]
kill_tree "$srv"
kill -9 "$cli"

# 2. the port is taken at restore time; then another namespace
srv=$(start_bg "$T/srv2" nsenter --net=/run/netns/"$NSA" "$P" echo-server 10.77.0.1 7102)
wait_for_line "$T/srv2" '^LISTEN' || bail "server did not start"
# an idle client: sends nothing until told, so a failed restore costs it nothing
cli=$(start_bg "$T/idle" nsenter --net=/run/netns/"$NSB" python3 -c '
import os, socket, sys, time
s = socket.create_connection(("10.77.0.1", 7102))
print("CONNECTED", flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.05)
s.sendall(b"ping\n")
print("ECHO", s.recv(100).decode().strip(), flush=True)
time.sleep(3600)' "$T/go")
wait_for_line "$T/idle" '^CONNECTED' || bail "idle client did not connect"
wait_for_line "$T/srv2" '^ACCEPT 1' || bail "server did not accept"
check "kup dump --tcp-established" kup_run "$T/d" dump -t "$srv" -D "$T/img" --tcp-established
wait_gone "$srv"
cp -a "$T/img" "$T/img.orig"
check "a network lock holds the connection" [ "$(kup_tables "$NSA")" = 1 ]

check_fails "restore in another network namespace fails" kup_try restore -D "$T/img" -d --tcp-established
check "... saying so" grep -q "network namespace" "$T/err"
check "... and leaves no process" [ ! -d /proc/$srv ]

check_fails "restore without --tcp-established fails" kup_in "$NSA" "$T/err3" restore -D "$T/img" -d
cat "$T/err3" > "$T/err"
check "... naming the connection and the option" \
	grep -qE "established connection TCP 10\.77\.0\.1:7102 -> 10\.77\.0\.2:[0-9]+: restore it with --tcp-established" "$T/err"
check "... and leaves no process" [ ! -d /proc/$srv ]
check "... and keeps the network lock (the connection is still to restore)" [ "$(kup_tables "$NSA")" = 1 ]

taker=$(start_bg "$T/taker" nsenter --net=/run/netns/"$NSA" "$P" listen 10.77.0.1 7102)
wait_for_line "$T/taker" '^LISTEN' || bail "port taker did not start"
check_fails "restore while 10.77.0.1:7102 is taken fails" \
	kup_in "$NSA" "$T/err2" restore -D "$T/img" -d --tcp-established
cat "$T/err2" > "$T/err"
check "... naming the address, the port and the file" \
	grep -qE "file [0-9]+ .*cannot bind to 10\.77\.0\.1:7102: Address already in use" "$T/err"
check "... leaving no process" eval '! alive $srv'
check "... and no network lock" [ "$(kup_tables "$NSA")" = 0 ]
check "... and the images intact" diff -r "$T/img" "$T/img.orig"
kill -9 "$taker"; wait_gone "$taker"
check "once the port is free the same images restore" \
	kup_in "$NSA" "$T/r" restore -D "$T/img" -d --tcp-established
track "$srv"
touch "$T/go"
check "the idle connection survived the failed restore: its echo comes back" \
	wait_for_line "$T/idle" '^ECHO ping' 10
check "no network lock left" [ "$(kup_tables "$NSA")" = 0 ]
