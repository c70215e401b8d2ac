#!/bin/bash
# Signal-driven I/O comes back: a pipe read end with O_ASYNC, its owner
# (F_SETOWN_EX) and its signal (F_SETSIG).  Data written into the pipe after
# the restore raises the same signal, with the same si_fd.  An owner outside
# the dumped tree is refused, naming pid and fd.
. "$(dirname "$0")/../lib.sh"
require_root

pid=$(start_bg "$T/out" "$PROGS/sigio")
wait_for_line "$T/out" '^READY' || bail "sigio did not start"
fd=$(line_field "$T/out" '^FD ' 2)
echo hello > /proc/$pid/fd/$fd
check "before the dump, a write into the pipe raises its signal" \
	eval 'request_check $pid "$T/out" | grep -q " signals=1 bytes=6 "'

DR_LOG=$T/out dump_and_restore "$pid" "$T/img" || exit 1
check "owner, signal and O_ASYNC are back" \
	eval 'request_check $pid "$T/out" | grep -q " signals=1 bytes=6 owner=1:$pid sig=36 async=1"'
echo again > /proc/$pid/fd/$fd
check "a write into the pipe after the restore raises the signal, with its si_fd" \
	eval 'request_check $pid "$T/out" | grep -q " signals=2 bytes=12 "'
check "no ERROR or FAIL line" [ "$(lines_count "$T/out" 'ERROR|FAIL')" = 0 ]
kill_tree "$pid"

# an owner outside the tree: this shell
pid=$(start_bg "$T/out2" python3 -c '
import fcntl, os, sys, time
r, w = os.pipe()
fcntl.fcntl(r, fcntl.F_SETOWN, int(sys.argv[1]))
print("FD", os.getpid(), r, flush=True)
while True:
    time.sleep(0.05)' $$)
wait_for_line "$T/out2" '^FD ' || bail "the python owner test did not start"
fd=$(line_field "$T/out2" '^FD ' 3)
check_fails "dump of a process whose SIGIO owner is outside the tree fails" \
	kup_try dump -t "$pid" -D "$T/img2"
check "... naming pid $pid, fd $fd and the owner" \
	grep -q "pid $pid fd $fd: .*owner of its signal-driven I/O (pid $$)" "$T/err"
check "... and the process is left running" not_frozen "$pid"
