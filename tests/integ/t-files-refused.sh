#!/bin/bash
# Files a dump cannot bring back are refused before anything changes,
# naming pid, fd and the object, and the process is left running
# (tests/progs/fdrefused): a /proc file of a thread of the tree (threads
# are made after the fd tables are installed), pidfds of a zombie of
# the tree and of a process outside it, an fd of a network namespace that
# is not the one the tree is restored in, an inotify watch on a removed file
# that only a process outside the tree holds, two processes sharing one
# fd table (CLONE_FILES) that their parent does not share, a fanotify mark on a removed file, an epoll watching a file whose
# fd was closed and that only a child holds.
. "$(dirname "$0")/../lib.sh"
require_root

n=0
refused() {
	local kind=$1 pattern=$2 arg=${3:-} pid fd child
	n=$((n + 1))
	pid=$(start_bg "$T/out$n" "$PROGS/fdrefused" "$kind" $arg)
	wait_for_line "$T/out$n" '^READY' || { not_ok "fdrefused $kind did not start: $(tail -n 2 "$T/out$n")"; return; }
	fd=$(line_field "$T/out$n" '^FD ' 2)
	child=$(line_field "$T/out$n" '^PID CHILD ' 3)
	pattern=${pattern//@PID@/$pid}
	pattern=${pattern//@FD@/$fd}
	pattern=${pattern//@CHILD@/$child}
	check_fails "$kind: the dump fails" kup_try dump -t "$pid" -D "$T/img$n"
	check "$kind: ... saying: $pattern" grep -qE "$pattern" "$T/err"
	check "$kind: ... and the process is left running" not_frozen "$pid"
	[ -n "$child" ] && [ "$kind" != pidfd-zombie ] && check "$kind: ... and its child too" not_frozen "$child"
	kill_tree "$pid"
	wait_gone "$pid"
}

refused proc-thread 'pid @PID@ fd @FD@: /proc/@PID@/task/[0-9]+/status is a /proc file of pid @PID@, a process of the dumped tree, of a thread: not supported'
refused pidfd-zombie 'pid @PID@ fd @FD@: pidfd of pid @CHILD@ \(a zombie of the dumped tree\): not supported'
refused pidfd-out 'pid @PID@ fd @FD@: pidfd of pid 1 \(a process outside the dumped tree\): not supported'
ns=kupfam$$
ip netns add "$ns" || bail "cannot make network namespace $ns"
at_exit ip netns delete "$ns"
other=$(start_bg "$T/other" nsenter --net=/run/netns/$ns sleep 1000)
wait_for '[ "$(readlink /proc/$other/ns/net)" != "$(readlink /proc/self/ns/net)" ]' ||
	bail "sleep did not enter network namespace $ns"
refused nsfd "pid @PID@ fd @FD@: fd of the net namespace net:\[[0-9]+\], which is not the one the tree is restored in \(kup's own\): not supported" "/proc/$other/ns/net"
kill "$other"
refused clone-files 'pid @CHILD@: shares its fd table with pid [0-9]+ \(clone with CLONE_FILES\) but not with its parent @PID@: not supported'
mkdir -p "$T/in"
: > "$T/in/w"
holder=$(start_bg "$T/holder" bash -c 'exec sleep 1000 < "$0"' "$T/in/w")
wait_for '[ "$(readlink /proc/$holder/fd/0)" = "$T/in/w" ]' || bail "the holder did not open $T/in/w"
refused inotify-removed "pid @PID@ fd @FD@: inotify watches inode [0-9]+, a removed file that the tree does not hold open: not supported" "$T/in"
kill "$holder"
refused fanotify-removed "pid @PID@ fd @FD@: fanotify marks inode [0-9]+, which has no path \($T/in/fa\): not supported" "$T/in"
refused epoll-closed 'pid @PID@ fd @FD@: epoll watches fd [0-9]+, which is closed'
