#!/bin/bash
# File locks come back with their owners: flock() locks (exclusive, and
# shared through a description a child shares), POSIX locks of the parent
# (two ranges, on a file it also maps and holds on a second fd) and of a
# child, an OFD lock.  After the restore they still block other processes
# (flock -n, F_GETLK from tests/progs/lockprobe) and name the restored pids;
# they go when the restored tree is killed.  A read and a write lease come
# back and are broken by other processes' opens as before the dump.  A
# flock lock held through a mapping only (no fd shows it) is refused.
. "$(dirname "$0")/../lib.sh"
require_root

dir=$T/files
mkdir -p "$dir"
pid=$(start_bg "$T/out" "$PROGS/locks" "$dir")
wait_for_line "$T/out" '^READY' || bail "locks did not start"
child=$(line_field "$T/out" '^PID CHILD ' 3)
probe() { "$PROGS/lockprobe" "$@"; }

# every probe: what another process sees
held() {
	flock -n "$dir/flock.dat" true && echo "flock.dat free" || echo "flock.dat locked"
	flock -s -n "$dir/shared.dat" true && echo "shared.dat shared ok" || echo "shared.dat no shared lock"
	flock -n "$dir/shared.dat" true && echo "shared.dat exclusive ok" || echo "shared.dat locked"
	echo "posix 0-99: $(probe "$dir/posix.dat" 0 100)"
	echo "posix 100-199: $(probe "$dir/posix.dat" 100 100)"
	echo "posix 200-: $(probe "$dir/posix.dat" 200 0)"
	echo "ofd 0-: $(probe -o "$dir/ofd.dat" 0 0)"
	echo "child: $(probe "$dir/child.dat" 0 0)"
}
want="flock.dat locked
shared.dat shared ok
shared.dat locked
posix 0-99: LOCKED W pid=$pid
posix 100-199: FREE
posix 200-: LOCKED R pid=$pid
ofd 0-: LOCKED W pid=-1
child: LOCKED W pid=$child"
check "before the dump, other processes see every lock" diff <(echo "$want") <(held)
pre=$(request_check "$pid" "$T/out")
check "its self-check passes before the dump" grep -q '^CHECK 1 OK ' <<< "$pre"
note "$pre"

DR_LOG=$T/out dump_and_restore "$pid" "$T/img" || exit 1
check "the child (pid $child) is back too" alive "$child"
check "after the restore, other processes see the same locks, with the restored pids" \
	diff <(echo "$want") <(held)
post=$(request_check "$pid" "$T/out")
check "its fdinfo shows the same locks, POSIX ones with its own pid" \
	[ "${pre#CHECK 1 OK }" = "${post#CHECK 2 OK }" ]
note "$post"
check "/proc/locks names the restored parent and child" \
	eval 'grep -q "POSIX  ADVISORY  WRITE $pid " /proc/locks && grep -q "POSIX  ADVISORY  WRITE $child " /proc/locks'
sleep 0.3
check "the counter continues" counter_continues "$T/out" "$pid" "$DR_LINES" 2
check "no ERROR line" [ "$(lines_count "$T/out" ERROR)" = 0 ]
kill_tree "$pid"
wait_gone "$pid"; wait_gone "$child"
check "once the restored tree is gone, the locks are gone" \
	eval 'flock -n "$dir/flock.dat" true && [ "$(probe "$dir/posix.dat" 0 0)" = FREE ] &&
	      [ "$(probe -o "$dir/ofd.dat" 0 0)" = FREE ] && [ "$(probe "$dir/child.dat" 0 0)" = FREE ]'

# leases come back: a read lease and a write lease, each broken after the
# restore by another process's open, which the holder sees (SIGIO) and
# answers by giving the lease up
: > "$dir/lease-r.dat"
: > "$dir/lease-w.dat"
pid=$(start_bg "$T/lease" python3 -c '
import fcntl, os, signal, sys, time
r = os.open(sys.argv[1] + "/lease-r.dat", os.O_RDONLY)
w = os.open(sys.argv[1] + "/lease-w.dat", os.O_RDONLY)
want = {r: fcntl.F_RDLCK, w: fcntl.F_WRLCK}
name = {r: "r", w: "w"}
def on_io(sig, frame):
    for fd in (r, w):
        if want[fd] != fcntl.F_UNLCK and fcntl.fcntl(fd, fcntl.F_GETLEASE) != want[fd]:
            print("BROKEN", name[fd], flush=True)
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
            want[fd] = fcntl.F_UNLCK
signal.signal(signal.SIGIO, on_io)
fcntl.fcntl(r, fcntl.F_SETLEASE, fcntl.F_RDLCK)
fcntl.fcntl(w, fcntl.F_SETLEASE, fcntl.F_WRLCK)
print("FD", os.getpid(), r, w, flush=True)
while True:
    time.sleep(0.05)' "$dir")
wait_for_line "$T/lease" '^FD ' || bail "the lease holder did not start"
leases() { grep -E "LEASE +ACTIVE +(READ|WRITE) +$pid " /proc/locks | awk '{ print $4 }' | sort | tr '\n' ' '; }
check "before the dump, /proc/locks shows its read and write leases" [ "$(leases)" = "READ WRITE " ]
DR_LOG=$T/lease dump_and_restore "$pid" "$T/img.lease" || exit 1
check "after the restore, /proc/locks shows both leases held by pid $pid" [ "$(leases)" = "READ WRITE " ]
check "opening the read-leased file for writing breaks the lease: the holder is told and gives it up" \
	eval 'timeout 20 sh -c "echo x >> \"$dir/lease-r.dat\"" && grep -q "^BROKEN r$" "$T/lease"'
check "opening the write-leased file breaks its lease: the holder is told and gives it up" \
	eval 'timeout 20 cat "$dir/lease-w.dat" > /dev/null && grep -q "^BROKEN w$" "$T/lease"'
check "no lease is left" [ -z "$(leases)" ]
kill_tree "$pid"
wait_gone "$pid"

# a flock lock that no fd shows (held through a mapping) is refused, not lost
pid=$(start_bg "$T/mapped" "$PROGS/locks" -m "$dir")
wait_for_line "$T/mapped" '^READY' || bail "locks -m did not start"
check_fails "dump of a process holding a flock lock through a mapping only fails" \
	kup_try dump -t "$pid" -D "$T/img.mapped"
check "... naming pid $pid and the lock" grep -q "pid $pid: holds a flock lock on inode" "$T/err"
check "... and the process is left running" not_frozen "$pid"
