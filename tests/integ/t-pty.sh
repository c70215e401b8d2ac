#!/bin/bash
# Pseudo-terminals (tests/progs/pty.c): three pairs held by the root, a child
# session whose controlling terminal is one of the slaves and a grandchild in
# its foreground.  After dump, kill and restore every pair has its index
# (/dev/pts/N), termios, window size, packet mode (with the status byte not
# read yet), lock, exclusive mode, owner and mode, and the data queued both
# ways (a line the slave had not finished reading too); the session, its
# controlling terminal and foreground group are back.  The same after a dump
# with --leave-running (the queues are put back).  Refused at dump: a slave
# held outside the tree, a task in a session the restore cannot make; at
# restore: an index in use.
. "$(dirname "$0")/../lib.sh"
require_root
[ -c /dev/ptmx ] && [ -d /dev/pts ] || skip_all "needs /dev/ptmx and devpts"
command -v python3 > /dev/null || skip_all "needs python3"

# no_cloexec_pts PID: no /dev/pts/N fd of PID is close-on-exec
no_cloexec_pts() {
	local f fl
	for f in /proc/$1/fd/*; do
		[[ $(readlink "$f") == /dev/pts/* ]] || continue
		fl=$(awk '/^flags:/ { print $2 }' "/proc/$1/fdinfo/${f##*/}")
		[ $((8#$fl & 02000000)) = 0 ] || { echo "fd ${f##*/}: flags $fl"; return 1; }
	done
}

start_pty() {
	local out=$1 pid
	pid=$(start_bg "$out" "$PROGS/pty")
	wait_for_line "$out" '^READY ' || bail "pty did not start"
	echo "$pid"
}

# ---- the program's own check without kup
pid=$(start_pty "$T/c.out")
check "control: the check passes without a dump" request_check "$pid" "$T/c.out"
kill_tree "$pid"
wait_gone "$pid"

# ---- dump, kill, restore
pid=$(start_pty "$T/out")
read -r _ _ _ A _ B _ L _ C _ G < <(grep '^READY ' "$T/out")
note "root $pid, child $C, grandchild $G; A $A, B $B, L $L"
dump_and_restore "$pid" "$T/img" || exit 1
check "the child $C and the grandchild $G are back" eval 'alive $C && alive $G'
check "$C leads its session, $A is its controlling terminal, $G its foreground group" \
	eval '[ "$(ps -o sid=,tty=,tpgid= -p $C | awk "{ print \$1, \$2, \$3 }")" = "$C ${A#/dev/} $G" ]'
check "$A, $B, $L came back with their indexes (held by $pid)" \
	eval 'n=0; for f in /proc/$pid/fd/*; do [ "$(readlink $f)" = /dev/ptmx ] && n=$((n + 1)); done; [ $n = 3 ]'
check "the child's slave fds are not close-on-exec (as opened)" no_cloexec_pts "$C"
check "$A is owned by 4242:5 with mode 0604" eval '[ "$(stat -c %u:%g:%a $A)" = 4242:5:604 ]'
check "everything is as dumped and the queued data arrives, both ways" \
	request_check "$pid" "$T/out"
kill_tree "$pid"
wait_gone "$pid"
wait_gone "$C"
wait_gone "$G"

# ---- --leave-running: the queues are put back
pid=$(start_pty "$T/lr.out")
check "kup dump --leave-running" kup_run "$T/lr.log" dump -t "$pid" -D "$T/lrimg" --leave-running
check "after a dump with --leave-running the data is still queued both ways" \
	request_check "$pid" "$T/lr.out"
kill_tree "$pid"
wait_gone "$pid"

# ---- a slave held outside the tree is refused; the tree goes on untouched
pid=$(start_pty "$T/o.out")
read -r _ _ _ A _ B _ < <(grep '^READY ' "$T/o.out")
# the outside process opens B's slave (not A's: exclusive)
exec 7<> "$B"
outside=$(setsid sleep 1000 <&7 > /dev/null 2>&1 & echo $!)
exec 7>&-
track "$outside"
wait_for "[ \"\$(readlink /proc/$outside/fd/0)\" = $B ]"
check_fails "dump of a pty whose slave $B is open outside the tree fails" \
	kup_try dump -t "$pid" -D "$T/oimg"
check "... naming pid $outside fd 0 and $B" grep -q "pid $outside fd 0: holds $B, whose pty master" "$T/err"
check "... no checkpoint is left" [ ! -e "$T/oimg/inventory.img" ]
check "... the tree is neither stopped nor traced" not_frozen "$pid"
check "... and its queued data was put back: the check passes" request_check "$pid" "$T/o.out"
kill_tree "$outside"
kill_tree "$pid"
wait_gone "$pid"

# ---- sessions the restore could not make: a child left in the session its
# parent has since left (setsid() after fork())
sess=$(start_bg "$T/s.out" python3 -c '
import os, time
if os.fork() == 0:
    b = os.fork()
    if b == 0:
        time.sleep(1000)
    time.sleep(0.2)
    os.setsid()
    print("READY", os.getpid(), b, flush=True)
    time.sleep(1000)
time.sleep(1000)')
wait_for_line "$T/s.out" '^READY ' || bail "python did not start"
read -r _ sa sb < <(grep '^READY ' "$T/s.out")
check_fails "dump of a task in a session other than its own or its parent's fails" \
	kup_try dump -t "$sess" -D "$T/simg"
check "... naming pid $sb, its session $sess and its parent $sa" \
	grep -q "pid $sb: in session $sess while its parent $sa is in session $sa: not supported" "$T/err"
check "... and the tree is left running" not_frozen "$sb"
kill_tree "$sess"

# ---- an index in use at restore
pid=$(start_pty "$T/i.out")
read -r _ _ _ A _ < <(grep '^READY ' "$T/i.out")
check "kup dump" kup_run "$T/i.log" dump -t "$pid" -D "$T/iimg"
wait_gone "$pid"
holder=$(start_bg "$T/holder.out" python3 -c '
import fcntl, os, struct, sys, time
want, keep, extra = sys.argv[1], None, []
while keep is None:
    fd = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY)
    n = struct.unpack("I", fcntl.ioctl(fd, 0x80045430, b"\0" * 4))[0]
    if "/dev/pts/%d" % n == want: keep = fd
    else: extra.append(fd)
    if len(extra) > 4096: sys.exit(1)
for fd in extra: os.close(fd)
print("HOLD", want, flush=True)
time.sleep(1000)' "$A")
wait_for_line "$T/holder.out" "^HOLD $A" || bail "cannot take $A"
check_fails "restore while $A is taken fails" kup_try restore -D "$T/iimg" -d
check "... naming $A" grep -q "cannot restore pty $A: the index is in use" "$T/err"
check "... and leaves no process" eval '! alive $pid'
kill_tree "$holder"
wait_gone "$holder"
check "once $A is free the restore works" kup_run "$T/i2.log" restore -D "$T/iimg" -d
track "$pid"
check "... and the restored tree passes its check" request_check "$pid" "$T/i.out"
