#!/bin/bash
# Three processes joined by two pipes with data buffered in both: every
# sequence number arrives once and in order across dump and restore.
. "$(dirname "$0")/../lib.sh"

pid=$(start_bg "$T/out" "$PROGS/pipechain")
wait_for_line "$T/out" '^P ' || exit 1
sleep 0.5
check "dump of the 3-process chain" "$KUP" dump -t "$pid" -D "$T/img"
check "pipe data was saved" grep -q pipe_data <("$KUP" show "$T/img/files.img")
wait_gone "$pid"
before=$(lines_count "$T/out" '^P ')
check "restore" "$KUP" restore -D "$T/img" -d
track "$pid"
sleep 2
after=$(lines_count "$T/out" '^P ')
check "the consumer makes progress after restore ($before -> $after)" [ "$after" -gt "$before" ]
check "no number lost, repeated or out of order (no ERROR)" [ "$(lines_count "$T/out" ERROR)" = 0 ]
check "all three processes are back" [ "$(pgrep -s "$pid" | wc -l)" = 3 ]
