#!/bin/bash
# A fanotify group comes back with its marks (tests/progs/fanotify, on a
# tmpfs of the test's own): an inode mark, an inode mark with an ignore mask
# that survives modification, a mount mark and a filesystem mark.  After the
# restore, writing two files gives exactly the events the marks ask for.
# A mark on an inode without a path is refused (like inotify's).
. "$(dirname "$0")/../lib.sh"
require_root

mkdir -p "$T/fan"
mount -t tmpfs -o size=1m kupfan "$T/fan" || bail "cannot mount a tmpfs"
at_exit umount -l "$T/fan"
pid=$(start_bg "$T/out" "$PROGS/fanotify" "$T/fan")
wait_for_line "$T/out" '^READY' || bail "fanotify did not start: $(tail -n 2 "$T/out")"
pre=$(request_check "$pid" "$T/out")
check "its self-check passes before the dump" grep -q '^CHECK 1 OK' <<< "$pre" || note "$pre"
DR_LOG=$T/out dump_and_restore "$pid" "$T/img" || exit 1
post=$(request_check "$pid" "$T/out")
check "after the restore: the inode, ignore, mount and filesystem marks report what they did" \
	grep -q '^CHECK 2 OK' <<< "$post" || note "$post"
check "its fdinfo shows the four marks" \
	[ "$(grep -c '^fanotify \(ino\|mnt_id\|sdev\)' /proc/$pid/fdinfo/3)" = 4 ]
sleep 0.3
check "the counter continues" counter_continues "$T/out" "$pid" "$DR_LINES" 2
check "no ERROR line" [ "$(lines_count "$T/out" ERROR)" = 0 ]
kill_tree "$pid"
wait_gone "$pid"
