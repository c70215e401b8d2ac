#!/bin/bash
# A counting process survives dump+kill and restore: same pid, the count goes
# on from the last value printed before the dump (no restart, no gap, no
# repeat).  With --leave-running it keeps counting through the dump, and the
# images restore a second copy, from the value at dump time, once the first
# copy is gone.
. "$(dirname "$0")/../lib.sh"

pid=$(start_bg "$T/out" "$PROGS/counter")
wait_for_line "$T/out" '^C 5 ' || bail "counter did not start"
DR_LOG=$T/out dump_and_restore "$pid" "$T/img" || exit 1
last=$(head -n "$DR_LINES" "$T/out" | awk '$1 == "C" { v = $2 } END { print v }')
check "10 more values after the restore" wait_for_line "$T/out" "^C $((last + 10)) " 10
check "the count goes on from $last: every value once, in order, same pid" \
	counter_continues "$T/out" "$pid" "$DR_LINES" 10
check "no ERROR line" [ "$(lines_count "$T/out" ERROR)" = 0 ]
check "its self-check passes" request_check "$pid" "$T/out"
kill_tree "$pid"
check "killed again" wait_gone "$pid"

# --leave-running
pid=$(start_bg "$T/out2" "$PROGS/counter")
wait_for_line "$T/out2" '^C 3 ' || bail "second counter did not start"
lo=$(line_field "$T/out2" '^C ' 2)
check "kup dump --leave-running" kup_run "$T/dump2.log" dump -t "$pid" -D "$T/img2" --leave-running
hi=$(line_field "$T/out2" '^C ' 2)
check "the process is still there, neither stopped nor traced" not_frozen "$pid"
check "and keeps counting" wait_for_line "$T/out2" "^C $((hi + 3)) " 5
check "without a gap or repeat" counter_continues "$T/out2" "$pid" 0 0
kill_tree "$pid"
check "the first copy is killed" wait_gone "$pid"
n=$(wc -l < "$T/out2")
check "restore of the --leave-running images" kup_run "$T/restore2.log" restore -D "$T/img2" -d
track "$pid"
check "the second copy runs with pid $pid" alive "$pid"
wait_for "[ \$(wc -l < '$T/out2') -ge $((n + 5)) ]" 5
check "it resumes from the value at dump time (after $lo, at most $((hi + 1))), in order, same pid" \
	awk -v n="$n" -v lo="$lo" -v hi="$hi" -v pid="$pid" '
		NR <= n || $1 != "C" { next }
		!seen++ { if ($2 <= lo || $2 > hi + 1) { print "# first value " $2; exit 1 } }
		seen > 1 && $2 != prev + 1 { print "# " prev " then " $2; exit 1 }
		$3 != pid { print "# pid " $3; exit 1 }
		{ prev = $2 }
		END { if (seen < 5) { print "# only " seen " lines"; exit 1 } }' "$T/out2"
check "no ERROR line" [ "$(lines_count "$T/out2" ERROR)" = 0 ]
