#!/bin/bash
# Scheduling policy, priority and I/O priority per thread come back: a main
# thread in SCHED_BATCH at nice 7 with I/O best-effort level 6, threads in
# SCHED_IDLE (I/O class idle), SCHED_FIFO 10 with reset-on-fork, SCHED_RR 3
# (I/O real-time level 2) and SCHED_OTHER at nice -4.  Every thread counts on.
. "$(dirname "$0")/../lib.sh"
require_root
plan 12

pid=$(start_bg "$T/out" "$PROGS/schedattr")
wait_for_line "$T/out" '^READY' || bail "schedattr did not start"
# attrs PID: per thread (by name): policy line of chrt, nice, ionice
attrs() {
	local n tid
	for n in A B C D M; do
		tid=$(line_field "$T/out" "^TID $n " 3)
		echo "$n $(chrt -p "$tid" | sed 's/.*: //' | tr '\n' ' ')" \
			"nice $(awk '{ sub(/.*\) /, ""); print $17 }' /proc/$1/task/$tid/stat)" \
			"io $(ionice -p "$tid")"
	done
}
before=$(attrs "$pid")
note "$before"
check "before: B is SCHED_FIFO|SCHED_RESET_ON_FORK 10, C SCHED_RR 3, M SCHED_BATCH nice 7" eval \
	'echo "$before" | grep -qF "B SCHED_FIFO|SCHED_RESET_ON_FORK 10 " &&
	 echo "$before" | grep -qF "C SCHED_RR 3 " && echo "$before" | grep -qF "M SCHED_BATCH 0  nice 7 io best-effort: prio 6"'

DR_LOG=$T/out dump_and_restore "$pid" "$T/img" || exit 1
after=$(attrs "$pid")
note "$after"
check "every thread has its policy, priority, nice and I/O priority back" \
	diff <(echo "$before") <(echo "$after")
check "no warning from the restore" eval '! grep -qi warn "$T/restore.log"'
for n in A B C D M; do
	last=$(line_field "$T/out" "^$n [0-9]" 2)
	check "thread $n counts on from $last" wait_for_line "$T/out" "^$n $((last + 2))\$" 10
done
