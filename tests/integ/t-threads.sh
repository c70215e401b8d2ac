#!/bin/bash
# 8 threads with thread-local counters keep their TIDs and their counts.
. "$(dirname "$0")/../lib.sh"

pid=$(start_bg "$T/out" "$PROGS/threads")
wait_for_line "$T/out" '^T7 .* 3$' || exit 1
tids_before=$(ls /proc/$pid/task | sort -n | tr '\n' ' ')
check "dump of 9 threads" "$KUP" dump -t "$pid" -D "$T/img"
wait_gone "$pid"
n_before=$(wc -l < "$T/out")
check "restore" "$KUP" restore -D "$T/img" -d
track "$pid"
tids_after=$(ls /proc/$pid/task 2>/dev/null | sort -n | tr '\n' ' ')
check "every TID is the same ($tids_before)" [ "$tids_before" = "$tids_after" ]
sleep 2
check "all 8 threads print again" [ "$(tail -n +$((n_before + 1)) "$T/out" | awk '{print $1}' | sort -u | grep -c '^T')" = 8 ]
check "each thread's counter continues without a gap" \
	awk '/^T[0-9]/ { if (($1 in last) && $3 != last[$1] + 1) { print "# " $1 ": " last[$1] " then " $3; bad = 1 } last[$1] = $3 } END { exit bad }' "$T/out"
check "no ERROR line" [ "$(lines_count "$T/out" ERROR)" = 0 ]
