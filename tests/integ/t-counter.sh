#!/bin/bash
# A counting process survives dump+kill and restore: same pid, the count goes
# on from where it stopped, nothing repeated or skipped.
. "$(dirname "$0")/../lib.sh"

pid=$(start_bg "$T/out" "$PROGS/counter")
wait_for_line "$T/out" '^C 5 ' || exit 1
check "dump exits 0" "$KUP" dump -t "$pid" -D "$T/img"
wait_gone "$pid"
check "the dumped process was killed" [ ! -d /proc/$pid ]
last=$(tail -n 1 "$T/out" | awk '{print $2}')
check "restore -d exits 0" "$KUP" restore -D "$T/img" -d
track "$pid"
check "the restored process has the same pid" alive "$pid"
wait_for_line "$T/out" "^C $((last + 5)) " 10
check "no ERROR line" [ "$(lines_count "$T/out" ERROR)" = 0 ]
check "the count goes on: every value once, in order" \
	awk '$1 == "C" { if ($2 != n) { print "# expected " n ", got " $2; exit 1 } n++ } END { exit n < '$((last + 5))' }' "$T/out"
check "the restored lines carry the same pid" [ "$(tail -n 1 "$T/out" | awk '{print $3}')" = "$pid" ]

# --leave-running: the process keeps going, the images restore a second life
kill -9 "$pid"; wait_gone "$pid"
pid2=$(start_bg "$T/out2" "$PROGS/counter")
wait_for_line "$T/out2" '^C 3 ' || exit 1
check "dump --leave-running exits 0" "$KUP" dump -t "$pid2" -D "$T/img2" --leave-running
n1=$(tail -n 1 "$T/out2" | awk '{print $2}')
sleep 0.5
n2=$(tail -n 1 "$T/out2" | awk '{print $2}')
check "with --leave-running the process keeps counting" [ "$n2" -gt "$n1" ]
kill -9 "$pid2"; wait_gone "$pid2"
check "restore of the --leave-running images" "$KUP" restore -D "$T/img2" -d
track "$pid2"
sleep 0.5
check "the second life runs with the same pid" alive "$pid2"
check "no ERROR line after the second restore" [ "$(lines_count "$T/out2" ERROR)" = 0 ]
