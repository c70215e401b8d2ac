#!/bin/bash
# 8 threads, each with a counter in thread-local storage: after restore every
# thread has its TID (gettid() and /proc agree) and its counter goes on from
# its own last value, without a gap or repeat, and may run on the CPUs it
# could before (the restore drives a task from one CPU, then lets it go).
. "$(dirname "$0")/../lib.sh"

pid=$(start_bg "$T/out" "$PROGS/threads")
wait_for_line "$T/out" '^T7 .* 3$' || bail "threads did not start"
check "its self-check passes before the dump" request_check "$pid" "$T/out"
tids_before=$(ls /proc/$pid/task | sort -n | tr '\n' ' ')
check "9 tasks: main and 8 threads ($tids_before)" [ "$(echo $tids_before | wc -w)" = 9 ]
cpus() { for t in $(ls /proc/$pid/task | sort -n); do
	echo "$t $(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/$pid/task/$t/status)"; done; }
cpus_before=$(cpus)

DR_LOG=$T/out dump_and_restore "$pid" "$T/img" || exit 1
check "every TID is the same" [ "$(ls /proc/$pid/task | sort -n | tr '\n' ' ')" = "$tids_before" ]
cpus_after=$(cpus)
check "every thread may run on the CPUs it could before ($(echo $cpus_before | cut -d' ' -f2))" \
	[ "$cpus_after" = "$cpus_before" ]
sleep 1
check "all 8 threads print again" \
	[ "$(tail -n +$((DR_LINES + 1)) "$T/out" | awk '/^T[0-9]/ { print $1 }' | sort -u | wc -l)" = 8 ]
check "each thread's counter goes on from its own value, with its own TID" \
	awk '/^T[0-9]/ {
		if (($1 in last) && $3 != last[$1] + 1) { print "# " $1 ": " last[$1] " then " $3; bad = 1 }
		if (($1 in tid) && $2 != tid[$1]) { print "# " $1 ": tid " tid[$1] " then " $2; bad = 1 }
		last[$1] = $3; tid[$1] = $2 } END { exit bad }' "$T/out"
check "its self-check passes after the restore (every thread advancing)" request_check "$pid" "$T/out"
check "no ERROR line" [ "$(lines_count "$T/out" ERROR)" = 0 ]
