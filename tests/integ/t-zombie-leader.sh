#!/bin/bash
# A process group led by a zombie: L made its own group, forked G into it
# and exited unreaped.  After dump, kill and restore, L is a zombie again
# leading G's group, G counts on, and the root reaps L's status 3.  A
# session led by a zombie (L called setsid) is refused at dump, naming G:
# the restore makes a task in its parent's session and G's parent (the root,
# which adopted it) is in another; the tree runs on.
. "$(dirname "$0")/../lib.sh"
require_root
plan 14

for mode in group; do
note "--- $mode led by a zombie"
pid=$(start_bg "$T/out-$mode" "$PROGS/zleader" $mode)
wait_for_line "$T/out-$mode" '^READY' || bail "zleader did not start"
l=$(line_field "$T/out-$mode" '^PID L ' 3)
g=$(line_field "$T/out-$mode" '^PID G ' 3)
check "its self-check passes before the dump" request_check "$pid" "$T/out-$mode"
dump_and_restore "$pid" "$T/img-$mode" || exit 1
check "L is a zombie leading G's group again" request_check "$pid" "$T/out-$mode"
last=$(line_field "$T/out-$mode" '^G ' 2)
check "G counts on" wait_for_line "$T/out-$mode" "^G $((last + 3))\$" 5
kill -TERM "$pid"
check "the root reaps L: exit status 3 kept" wait_for_line "$T/out-$mode" '^FINAL OK' 5
check "no ERROR or FAIL line" [ "$(lines_count "$T/out-$mode" 'ERROR|FAIL')" = 0 ]
done

note "--- session led by a zombie"
pid=$(start_bg "$T/out-s" "$PROGS/zleader" session)
wait_for_line "$T/out-s" '^READY' || bail "zleader did not start"
l=$(line_field "$T/out-s" '^PID L ' 3)
g=$(line_field "$T/out-s" '^PID G ' 3)
check_fails "kup dump refuses it" kup_run "$T/dump-s.log" dump -t "$pid" -D "$T/img-s"
check "the refusal names G and its session" \
	grep -q "pid $g: in session $l while its parent $pid is in session .*: not supported" "$T/dump-s.log"
check "the tree is as it was (self-check)" request_check "$pid" "$T/out-s"
last=$(line_field "$T/out-s" '^G ' 2)
check "G counts on" wait_for_line "$T/out-s" "^G $((last + 3))\$" 5
check "no image is left" [ ! -e "$T/img-s/inventory.img" ]
