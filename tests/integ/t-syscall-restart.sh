#!/bin/bash
# Threads blocked in nanosleep, clock_nanosleep, read on a pipe, epoll_wait
# and futex wait when the dump comes: after restore each call goes on as if
# nothing happened: no early return, no EINTR where the kernel itself would
# not give one (epoll_wait may: see tests/progs/sleepers.c), no lost wakeup,
# every thread keeps making progress.
. "$(dirname "$0")/../lib.sh"

pid=$(start_bg "$T/out" "$PROGS/sleepers")
wait_for_line "$T/out" '^READY' || bail "sleepers did not start"
sleep 3.6
check "every thread makes progress before the dump" request_check "$pid" "$T/out"

# The syscall each thread is blocked in (x86_64 numbers: 0 read, 202 futex,
# 230 clock_nanosleep (glibc's nanosleep too), 232 epoll_wait).
in_syscalls() { cat /proc/$1/task/*/syscall 2>/dev/null | awk '{ print $1 }' | sort -n | tr '\n' ' '; }
blocked() { in_syscalls "$1" | grep -qE '^0 .*202 .*230 .*230 .*232'; }
wait_for "blocked $pid" 2
check "the threads are blocked in read, futex, clock_nanosleep (twice), epoll_wait ($(in_syscalls "$pid"))" \
	blocked "$pid"
tids=$(ls /proc/$pid/task | sort -n | tr '\n' ' ')

dump_and_restore "$pid" "$T/img" || exit 1
check "same thread ids ($tids)" [ "$(ls /proc/$pid/task | sort -n | tr '\n' ' ')" = "$tids" ]
sleep 3.6
check "every thread made progress since, no wakeup lost" request_check "$pid" "$T/out"
sleep 1
check "no syscall failed or returned early (no ERROR line)" [ "$(lines_count "$T/out" ERROR)" = 0 ]
check "the process is still running" not_frozen "$pid"
