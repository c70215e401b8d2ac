#!/bin/bash
# An epoll that watches files whose fd numbers were closed since
# EPOLL_CTL_ADD (the files kept open under other numbers) comes back with
# those registrations (tests/progs/epollclosed): data written into each pipe
# is reported with its registration's data, the epoll's fdinfo shows the old
# numbers, one old number is free again and the other holds what it held
# (/dev/null).  When no fd of the process holds the file any more, the dump
# is refused (t-files-refused).
. "$(dirname "$0")/../lib.sh"
require_root

pid=$(start_bg "$T/out" "$PROGS/epollclosed")
wait_for_line "$T/out" '^READY' || bail "epollclosed did not start: $(tail -n 2 "$T/out")"
pre=$(request_check "$pid" "$T/out")
check "its self-check passes before the dump" grep -q '^CHECK 1 OK' <<< "$pre" || note "$pre"
DR_LOG=$T/out dump_and_restore "$pid" "$T/img" || exit 1
post=$(request_check "$pid" "$T/out")
check "after the restore: both registrations report their data, the old numbers as they were" \
	grep -q '^CHECK 2 OK' <<< "$post" || note "$post"
sleep 0.3
check "the counter continues" counter_continues "$T/out" "$pid" "$DR_LINES" 2
check "no ERROR line" [ "$(lines_count "$T/out" ERROR)" = 0 ]
kill_tree "$pid"
wait_gone "$pid"
