#!/bin/bash
# pidfds of processes of the tree come back (tests/progs/pidfds): a pidfd
# of a child (O_NONBLOCK, watched by an epoll) and two of the process itself
# (a dup, close-on-exec) name the restored processes; the pidfd of a child
# that exited and was reaped is still one of an exited process; pidfd_send_signal
# reaches the child; when the child is killed after the restore, the epoll
# on its pidfd wakes and waitid(P_PIDFD) reaps it.  A pidfd of a process
# outside the tree is refused (t-files-refused).
. "$(dirname "$0")/../lib.sh"
require_root

pid=$(start_bg "$T/out" "$PROGS/pidfds")
wait_for_line "$T/out" '^READY' || bail "pidfds did not start"
child=$(line_field "$T/out" '^PID CHILD ' 3)
pre=$(request_check "$pid" "$T/out")
check "its self-check passes before the dump" grep -q '^CHECK 1 OK' <<< "$pre" || note "$pre"

DR_LOG=$T/out dump_and_restore "$pid" "$T/img" || exit 1
check "the child (pid $child) is back too" alive "$child"
post=$(request_check "$pid" "$T/out")
check "after the restore: the pidfds name the restored processes, flags kept, the child reachable" \
	grep -q '^CHECK 2 OK' <<< "$post" || note "$post"
kill -TERM "$child"
check "killing the child wakes the epoll on its pidfd, which reaps it" \
	wait_for_line "$T/out" '^CHILD EXITED 15$'
sleep 0.3
check "the counter continues" counter_continues "$T/out" "$pid" "$DR_LINES" 2
check "no ERROR line" [ "$(lines_count "$T/out" ERROR)" = 0 ]
kill_tree "$pid"
wait_gone "$pid"
