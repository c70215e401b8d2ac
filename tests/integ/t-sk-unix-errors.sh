#!/bin/bash
# Unix sockets kup refuses or cannot restore: a dump fails before anything
# changes, naming pid, fd and why, and leaves the tree running; a restore
# whose address is taken by a live socket fails, leaves no process and
# intact images, and works once the address is free.
. "$(dirname "$0")/../lib.sh"
require_root
command -v python3 > /dev/null || skip_all "needs python3"

# still_running OUT REGEX: more REGEX lines in OUT within a second
still_running() {
	local n
	n=$(lines_count "$1" "$2")
	wait_for "[ \$(lines_count '$1' '$2') -gt $n ]" 2
}

# ---- a connection to a peer outside the tree
srv=$(start_bg "$T/srv.out" "$PROGS/unixserver" -a "$T/e.sock")
wait_for_line "$T/srv.out" '^C2 CONNECTED' || bail "unixserver did not start"
kill -USR1 "$srv"
srv_fds=$(ls /proc/$srv/fd | wc -l)
cli=$(start_bg "$T/cli.out" "$PROGS/unixserver" -c "$T/e.sock" -k)
wait_for_line "$T/cli.out" '^K 3$' || bail "the client does not ping"
check_fails "dump of a client connected to a server outside the tree fails" \
	kup_try dump -t "$cli" -D "$T/cliimg"
sed 's/^/# /' "$T/err"
check "... naming pid $cli, fd 3 and the peer $T/e.sock" \
	grep -q "pid $cli fd 3: .*outside the dumped tree.*$T/e.sock" "$T/err"
check "... the client keeps pinging" still_running "$T/cli.out" '^K '
check "... neither stopped nor traced" not_frozen "$cli"
check "... no checkpoint is left" [ ! -e "$T/cliimg/inventory.img" ]
kill_tree "$cli"
# the server has seen its client go (closed its end) before it is dumped
wait_gone "$cli"
wait_for "[ \$(ls /proc/$srv/fd | wc -l) -le $srv_fds ]" 20 ||
	note "the server still holds $(ls /proc/$srv/fd | wc -l) fds ($srv_fds before the client)"

# ---- fds in flight to a socket that takes credentials (they would be lost),
# data sent on a connection not accepted yet
pid=$(start_bg "$T/py.out" python3 -c '
import os, socket, time, sys
a, b = socket.socketpair()
b.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
r, w = os.pipe()
socket.send_fds(a, [b"x"], [r])
print("FDS", os.getpid(), b.fileno(), flush=True)
while True: time.sleep(1)')
wait_for_line "$T/py.out" '^FDS ' || bail "python did not start"
fd=$(line_field "$T/py.out" '^FDS ' 3)
check_fails "dump of a SO_PASSCRED socket with fds in flight fails" kup_try dump -t "$pid" -D "$T/pyimg"
check "... saying 'pid $pid fd $fd: unix stream socket has files in flight', naming them (a pipe)" \
	grep -qE "pid $pid fd $fd: unix stream socket has files in flight \(SCM_RIGHTS in its queue: pipe:\[[0-9]+\]\) with SO_PASSCRED" "$T/err"
check "... and the process is left running" not_frozen "$pid"
kill_tree "$pid"

pid=$(start_bg "$T/pend.out" python3 -c '
import os, socket, time
l = socket.socket(socket.AF_UNIX); l.bind("\0kup-test-'$$'-pend"); l.listen(4)
c = socket.socket(socket.AF_UNIX); c.connect("\0kup-test-'$$'-pend"); c.send(b"early")
print("PEND", os.getpid(), c.fileno(), flush=True)
while True: time.sleep(1)')
wait_for_line "$T/pend.out" '^PEND ' || bail "python did not start"
fd=$(line_field "$T/pend.out" '^PEND ' 3)
check_fails "dump of data sent on a connection not accepted yet fails" \
	kup_try dump -t "$pid" -D "$T/pendimg"
check "... naming pid $pid fd $fd and the listener" \
	grep -q "pid $pid fd $fd: .*@kup-test-$$-pend.*not accepted yet" "$T/err"
kill_tree "$pid"

# ---- the address is taken at restore time
# squat ADDR OUT: a live listening socket on ADDR (a stale socket file is
# replaced, as a new server would do)
squat() {
	start_bg "$2" python3 -c '
import os, socket, sys, time
a = sys.argv[1]
if a.startswith("@"): a = "\0" + a[1:]
elif os.path.exists(a): os.unlink(a)
s = socket.socket(socket.AF_UNIX); s.bind(a); s.listen(1)
print("SQUAT", flush=True)
while True: time.sleep(1)' "$1"
}
sums() { (cd "$1" && md5sum * | md5sum); }

n=0
for addr in "$T/e.sock" "@kup-test-$$-taken"; do
	n=$((n + 1))
	note "---- $addr"
	if [[ $addr == /* ]]; then
		pid=$srv out=$T/srv.out
	else
		out=$T/taken.out
		pid=$(start_bg "$out" "$PROGS/unixserver" -a "$addr")
		wait_for_line "$out" '^C2 CONNECTED' || bail "unixserver did not start"
		kill -USR1 "$pid"
	fi
	tree=$(tree_pids "$pid")
	check "dump of the server on $addr" kup_run "$T/dump.log" dump -t "$pid" -D "$T/img$n" ||
		note "$(cat "$T/dump.log")"
	check "... the tree is gone" eval '(for p in $tree; do wait_gone $p || exit 1; done)'
	sq=$(squat "$addr" "$T/squat$n.out")
	wait_for_line "$T/squat$n.out" '^SQUAT' || bail "the squatter did not start"
	before=$(sums "$T/img$n")
	check_fails "restore while $addr is taken by a live socket fails" \
		kup_try restore -D "$T/img$n" -d
	sed 's/^/# /' "$T/err"
	check "... saying the address is in use" grep -q "${addr}.*in use" "$T/err"
	check "... and no process of the tree is left (${tree% })" \
		eval '(for p in $tree; do wait_gone $p 2 || exit 1; done)'
	check "... the images are intact" [ "$(sums "$T/img$n")" = "$before" ]
	check "... the squatter still owns the address" \
		python3 -c '
import socket, sys
a = sys.argv[1]
if a.startswith("@"): a = "\0" + a[1:]
socket.socket(socket.AF_UNIX).connect(a)' "$addr"
	kill_tree "$sq"
	wait_gone "$sq"
	check "once the address is free the same images restore" \
		kup_run "$T/restore.log" restore -D "$T/img$n" -d
	track "$pid"
	check "... and the server serves a new client" \
		eval "timeout 10 '$PROGS/unixserver' -c '$addr' | grep -q '^CLIENT OK'"
	check "... no ERROR line" [ "$(lines_count "$out" ERROR)" = 0 ]
	kill_tree "$pid"
	wait_gone "$pid"
done
