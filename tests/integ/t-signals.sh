#!/bin/bash
# Handlers, masks, pending signals, sigaltstack, itimers and POSIX timers
# come back; blocking syscalls interrupted by the dump restart correctly.
. "$(dirname "$0")/../lib.sh"

pid=$(start_bg "$T/out" "$PROGS/sigstate")
wait_for_line "$T/out" '^READY' || exit 1
sleep 0.5
check "dump" "$KUP" dump -t "$pid" -D "$T/img"
wait_gone "$pid"
check "restore" "$KUP" restore -D "$T/img" -d
track "$pid"
sleep 1
kill -USR1 "$pid"
wait_for_line "$T/out" '^CHECK 1 ' 10
check "signal and timer state intact after restore" grep -q '^CHECK 1 OK' "$T/out"
kill -TERM "$pid"
wait_for_line "$T/out" '^FINAL ' 10
check "pending signals delivered in order once unblocked" grep -q '^FINAL OK' "$T/out"
grep -E 'FAIL|ERROR' "$T/out" | sed 's/^/# /'

pid=$(start_bg "$T/sl" "$PROGS/sleepers")
wait_for_line "$T/sl" '^READY' || exit 1
sleep 1
check "dump of threads blocked in nanosleep/read/epoll/futex" "$KUP" dump -t "$pid" -D "$T/img2"
wait_gone "$pid"
check "restore" "$KUP" restore -D "$T/img2" -d
track "$pid"
sleep 4
kill -USR1 "$pid"
wait_for_line "$T/sl" '^CHECK 1 ' 10
check "every interrupted syscall restarted correctly" grep -q '^CHECK 1 OK' "$T/sl"
grep -E 'FAIL|ERROR' "$T/sl" | sed 's/^/# /'
