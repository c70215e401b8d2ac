#!/bin/bash
# /proc files of processes of the tree come back as the files of the
# restored processes (tests/progs/procfiles): /proc/self/status read up to
# offset 10, the child's /proc/PID/cmdline, the directory /proc/self/fd, a
# non-blocking /proc/self/stat; fds of its network and UTS namespaces (those
# the tree is restored in).  /proc files of a thread or a zombie of the
# tree are refused; of other processes they are reopened by path.
. "$(dirname "$0")/../lib.sh"
require_root

pid=$(start_bg "$T/out" "$PROGS/procfiles")
wait_for_line "$T/out" '^READY' || bail "procfiles did not start: $(tail -n 2 "$T/out")"
child=$(line_field "$T/out" '^PID CHILD ' 3)
pre=$(request_check "$pid" "$T/out")
check "its self-check passes before the dump" grep -q '^CHECK 1 OK' <<< "$pre" || note "$pre"

DR_LOG=$T/out dump_and_restore "$pid" "$T/img" || exit 1
check "the child (pid $child) is back too" alive "$child"
post=$(request_check "$pid" "$T/out")
check "after the restore: each fd reads the restored process's file, offset and flags kept" \
	grep -q '^CHECK 2 OK' <<< "$post" || note "$post"
check "no warning about the /proc files at restore" eval '! grep -q "/proc/" "$T/restore.log"' || note "$(cat "$T/restore.log")"
sleep 0.3
check "the counter continues" counter_continues "$T/out" "$pid" "$DR_LINES" 2
check "no ERROR line" [ "$(lines_count "$T/out" ERROR)" = 0 ]
kill_tree "$pid"
wait_gone "$pid"
