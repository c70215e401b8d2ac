#!/bin/bash
# kup hold (what the initramfs runs first thing at boot): the PIDs and TIDs
# of the tree in a store are kept by placeholder processes until
# `kup restore --ppp` makes the holder let them go just before it recreates
# the tree with them.  A PID that is taken is taken as soon as it comes
# free; a killed placeholder is made again; the holder lets go by itself on
# --timeout, on `kup hold --release`, on SIGTERM, and its placeholders die
# with it.  Bad input fails with a message and holds nothing.
. "$(dirname "$0")/../lib.sh"
require_root

S=$T/store.ppp
check "kup ppp format $S" kup_run "$T/fmt.log" ppp format "$S" --size 64M

ppid_of() { awk '{ sub(/.*\) /, ""); print $2 }' /proc/$1/stat 2>/dev/null; }
comm_of() { cat /proc/$1/comm 2>/dev/null; }
# placeholder PID HOLDER: PID is a sleeping "kup-hold" child of HOLDER
placeholder() { [ "$(comm_of "$1")" = kup-hold ] && [ "$(ppid_of "$1")" = "$2" ] &&
	[ "$(proc_state "$1")" = S ]; }
# start_hold LOG ARGS...: kup hold; sets $holder (tracked)
start_hold() {
	local log=$1
	shift
	holder=
	kup_run "$log" hold --ppp "$S" --log "$T/holder.log" "$@" || return 1
	holder=$(sed -n 's/.*(holder pid \([0-9]*\)).*/\1/p' "$log")
	[ -n "$holder" ] && track "$holder"
}
holder_gone() { wait_gone "$holder" 10; }
kup_holds() { [ -n "$(own_pgrep kup-hold)" ]; }

# ---- a tree of four processes (one a zombie, one stopped) -----------------------
pid=$(start_bg "$T/out" "$PROGS/proctree")
wait_for_line "$T/out" '^READY' || bail "proctree did not start"
pids=$(tree_pids "$pid")
note "tree: $pids"
check "kup dump -t $pid --ppp" kup_run "$T/dump.log" dump -t "$pid" --ppp "$S"
for p in $pids; do wait_gone "$p" || true; done
check "the tree is gone" eval '(for p in $pids; do [ ! -d /proc/$p ] || exit 1; done)'

check "kup hold --ppp $S" start_hold "$T/hold.log" || note "$(cat "$T/hold.log")"
note "$(cat "$T/hold.log")"
check "it returns once it holds all 4 ($(grep -o 'held [0-9]* of [0-9]*' "$T/hold.log"))" \
	grep -q 'held 4 of 4' "$T/hold.log"
check "every pid of the tree is a sleeping kup-hold child of holder $holder" \
	wait_for '(for p in $pids; do placeholder $p $holder || exit 1; done)' 5
check "the holder and its placeholders are marked for systemd to spare them (argv[0] starts with @)" \
	eval '(for p in $holder $pids; do [ "$(head -c 1 /proc/$p/cmdline)" = @ ] || exit 1; done)'
check "kup hold --status lists them" \
	eval '"$KUP" hold --status | grep -q "held 4 of 4: $(echo $pids)\$"'
check_fails "a second kup hold fails: one is running" kup_try hold --ppp "$S" --log /dev/null
check "it says so" grep -q "already running" "$T/err"
check "a placeholder ignores SIGTERM" eval 'set -- $pids; kill -TERM $2; sleep 0.3; placeholder $2 $holder'
set -- $pids
kill -KILL "$3"
check "a placeholder killed with SIGKILL is made again (pid $3)" \
	wait_for "placeholder $3 $holder" 5
check "the holder says so" grep -q "placeholder of pid $3 was killed" "$T/holder.log"

check "kup restore --ppp $S -d" kup_run "$T/restore.log" restore --ppp "$S" -d ||
	note "$(cat "$T/restore.log")"
track "$pid"
check "the restore made the holder let go of 4 pids" grep -q "let go: released 4 pids" "$T/restore.log"
check "the holder exited" holder_gone
check "no placeholder is left" eval '! kup_holds'
check "the tree is back with its pids ($pids)" eval '[ "$(tree_pids $pid)" = "$pids" ]'
check "and passes its own check (zombie, stopped, running children)" request_check "$pid" "$T/out"
kill_tree "$pid"
for p in $pids; do wait_gone "$p" || true; done

# ---- threads: every TID is held -------------------------------------------------
pid=$(start_bg "$T/tout" "$PROGS/threads" -n 4)
wait_for_line "$T/tout" '^T3 [0-9]+ 2$' || bail "threads did not start"
tids=$(ls /proc/$pid/task | sort -n | tr '\n' ' ')
check "kup dump of 5 threads" kup_run "$T/dump2.log" dump -t "$pid" --ppp "$S"
wait_gone "$pid" || true
check "kup hold holds the 5 TIDs" start_hold "$T/hold2.log"
check "held 5 of 5" grep -q 'held 5 of 5' "$T/hold2.log"
check "each TID ($tids) is a placeholder" \
	wait_for '(for t in $tids; do placeholder $t $holder || exit 1; done)' 5
check "kup restore --ppp -d" kup_run "$T/restore2.log" restore --ppp "$S" -d ||
	note "$(cat "$T/restore2.log")"
track "$pid"
check "the threads are back with their TIDs" \
	eval '[ "$(ls /proc/$pid/task | sort -n | tr "\n" " ")" = "$tids" ]'
check "and pass their check" request_check "$pid" "$T/tout"
check "the holder exited" holder_gone
kill_tree "$pid"
wait_gone "$pid" || true

# ---- a pid that is taken is held once it comes free; --release -------------------
pid=$(start_bg "$T/cout" "$PROGS/counter")
wait_for_line "$T/cout" '^C 2 ' || bail "counter did not start"
check "kup dump --leave-running" kup_run "$T/dump3.log" dump -t "$pid" --ppp "$S" --leave-running
check "kup hold while the counter runs" start_hold "$T/hold3.log"
check "it holds 0 of 1 and says $pid is taken" grep -q "held 0 of 1; taken: $pid" "$T/hold3.log"
check "the holder warns, naming the pid and its process" \
	grep -q "pid $pid is taken (by \"counter\")" "$T/hold3.log"
kill -KILL "$pid"
check "once the counter is gone, pid $pid is held" wait_for "placeholder $pid $holder" 5
check "kup hold --status: held 1 of 1" eval '"$KUP" hold --status | grep -q "held 1 of 1: $pid"'
check "kup hold --release" eval '"$KUP" hold --release | grep -q "released 1 pids"'
check "the holder exited" holder_gone
check "pid $pid is free" wait_gone "$pid" 5
check_fails "kup hold --status without a holder fails" kup_try hold --status
check "it says no holder runs" grep -q "no PID holder is running" "$T/err"

# ---- --timeout, SIGTERM, SIGKILL of the holder -------------------------------------
check "kup hold --timeout 1" start_hold "$T/hold4.log" --timeout 1
check "the pid is held" placeholder "$pid" "$holder"
check "after 1 s it lets go and exits" holder_gone
check "it said why" grep -q "no restore asked within 1 s: letting 1 pids go" "$T/holder.log"
check "pid $pid is free again" wait_gone "$pid" 5

check "kup hold" start_hold "$T/hold5.log"
kill -TERM "$holder"
check "SIGTERM: the holder lets go and exits" holder_gone
check "pid $pid is free" wait_gone "$pid" 5

check "kup hold" start_hold "$T/hold6.log"
kill -KILL "$holder"
check "SIGKILL of the holder: its placeholders die with it" wait_gone "$pid" 5

# ---- who may talk to it, bad input ------------------------------------------------
check "kup hold" start_hold "$T/hold7.log"
check_fails "a user other than root is refused" \
	eval 'setpriv --reuid=65534 --regid=65534 --clear-groups "$KUP" hold --release'
check "it is told so, up front" grep -q "^kup hold: must be run as root" "$T/err"
check "the holder itself refuses a user other than root" eval 'setpriv --reuid=65534 --regid=65534 \
	--clear-groups /usr/bin/python3 -c "
import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(\"\\0kup-hold\")
s.send(b\"release\")
print(s.recv(4096).decode())" | grep -q "only root"'
check "and the pid is still held" placeholder "$pid" "$holder"
check "kup hold --release" eval '"$KUP" hold --release > /dev/null'
check "the holder exited" holder_gone

check "kup ppp scrub" kup_run "$T/scrub.log" ppp scrub "$S"
check_fails "kup hold on a store without a checkpoint fails" kup_try hold --ppp "$S" --log /dev/null
check "it says the store holds no checkpoint" grep -q "holds no checkpoint" "$T/err"
check "with --if-any it exits 0 and holds nothing" \
	eval 'kup_try hold --ppp "$S" --if-any --log /dev/null && ! kup_holds'
check_fails "kup hold on a missing store fails" kup_try hold --ppp "$T/nothing.ppp" --log /dev/null
check "it names the file" grep -q "$T/nothing.ppp" "$T/err"
check_fails "kup hold --timeout x is a usage error" kup_try hold --timeout x
check "no placeholder is left" eval '! kup_holds'

# ---- an abstract name can be taken by anybody: only root's holder is trusted -------
squat=$(start_bg "$T/squat.out" setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 -c '
import socket, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind("\0kup-hold"); s.listen(1)
print("BOUND", flush=True)
while True:
    c, _ = s.accept(); c.recv(64); c.send(b"released 99 pids (a lie)")')
wait_for_line "$T/squat.out" '^BOUND' 10 || bail "the squatter did not start"
check_fails "with @kup-hold taken by a user, kup hold --release fails" kup_try hold --release
check "it says the name is not root's and ignores it" \
	eval 'grep -q "not by root.s kup hold: ignored" "$T/err" && grep -q "no PID holder is running" "$T/err"'
kill_tree "$squat"
