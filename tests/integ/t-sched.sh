#!/bin/bash
# Scheduling policy, priority and I/O priority per thread come back: a main
# thread in SCHED_BATCH at nice 7 with I/O best-effort level 6, threads in
# SCHED_IDLE (I/O class idle), SCHED_FIFO 10 with reset-on-fork, SCHED_RR 3
# (I/O real-time level 2) and SCHED_OTHER at nice -4.  Every thread counts on.
# With two CPUs or more, thread A may run on the last CPU only and thread C on
# CPU 0 only (taskset), and that comes back too; the others may run on all.
# A process confined to one CPU by its cpuset cgroup alone keeps no CPU set:
# restored outside that cgroup (kup does not restore cgroups), it may run on
# every CPU again, as the unit's cgroup would decide on a new boot.
. "$(dirname "$0")/../lib.sh"
require_root
plan 20

pid=$(start_bg "$T/out" "$PROGS/schedattr")
wait_for_line "$T/out" '^READY' || bail "schedattr did not start"
# attrs PID: per thread (by name): policy line of chrt, nice, ionice
attrs() {
	local n tid
	for n in A B C D M; do
		tid=$(line_field "$T/out" "^TID $n " 3)
		echo "$n $(chrt -p "$tid" | sed 's/.*: //' | tr '\n' ' ')" \
			"nice $(awk '{ sub(/.*\) /, ""); print $17 }' /proc/$1/task/$tid/stat)" \
			"io $(ionice -p "$tid")" "cpus $(taskset -pc "$tid" | sed 's/.*: //')"
	done
}
all=$(taskset -pc $$ | sed 's/.*: //')
last_cpu=$(echo "$all" | tr ',-' '\n\n' | sort -n | tail -1)
if [ "$(nproc)" -ge 2 ]; then
	taskset -pc "$last_cpu" "$(line_field "$T/out" "^TID A " 3)" >/dev/null
	taskset -pc 0 "$(line_field "$T/out" "^TID C " 3)" >/dev/null
fi
before=$(attrs "$pid")
note "$before"
check "before: B is SCHED_FIFO|SCHED_RESET_ON_FORK 10, C SCHED_RR 3, M SCHED_BATCH nice 7" eval \
	'echo "$before" | grep -qF "B SCHED_FIFO|SCHED_RESET_ON_FORK 10 " &&
	 echo "$before" | grep -qF "C SCHED_RR 3 " && echo "$before" | grep -qF "M SCHED_BATCH 0  nice 7 io best-effort: prio 6"'
if [ "$(nproc)" -ge 2 ]; then
	check "before: A may run on CPU $last_cpu only, C on CPU 0 only, M on $all" eval \
		'echo "$before" | grep -q "^A .* cpus $last_cpu\$" && echo "$before" | grep -q "^C .* cpus 0\$" &&
		 echo "$before" | grep -q "^M .* cpus $all\$"'
else
	ok "# SKIP one CPU: no CPU affinity to keep"
fi

DR_LOG=$T/out dump_and_restore "$pid" "$T/img" || exit 1
if [ "$(nproc)" -ge 2 ]; then
	tid_a=$(line_field "$T/out" "^TID A " 3)
	shown=$("$KUP" show "$T/img/core-$pid.img" --json |
		jq -r --argjson t "$tid_a" '.. | objects | select(.tid? == $t) | .cpus // empty')
	check "kup show: thread A's CPUs as a list ($shown)" [ "$shown" = "$last_cpu" ]
else
	ok "# SKIP one CPU: no CPU affinity to show"
fi
after=$(attrs "$pid")
note "$after"
check "every thread has its policy, priority, nice, I/O priority and CPUs back" \
	diff <(echo "$before") <(echo "$after")
check "no warning from the restore" eval '! grep -qi warn "$T/restore.log"'
for n in A B C D M; do
	last=$(line_field "$T/out" "^$n [0-9]" 2)
	check "thread $n counts on from $last" wait_for_line "$T/out" "^$n $((last + 2))\$" 10
done

# A cpuset cgroup of its own: cgroup v1's cpuset hierarchy, or v2 with the
# cpuset controller (skipped where neither can be made, or one CPU).
cg=
if [ "$(nproc)" -ge 2 ] && [ -d /sys/fs/cgroup/cpuset ] &&
	mkdir "/sys/fs/cgroup/cpuset/kup-t-sched-$$" 2>/dev/null; then
	cg=/sys/fs/cgroup/cpuset/kup-t-sched-$$
	cat /sys/fs/cgroup/cpuset/cpuset.mems > "$cg/cpuset.mems"
	echo "$last_cpu" > "$cg/cpuset.cpus"
	procs=$cg/tasks
elif [ "$(nproc)" -ge 2 ] && [ -f /sys/fs/cgroup/cgroup.subtree_control ] &&
	echo +cpuset > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null &&
	mkdir "/sys/fs/cgroup/kup-t-sched-$$" 2>/dev/null; then
	cg=/sys/fs/cgroup/kup-t-sched-$$
	echo "$last_cpu" > "$cg/cpuset.cpus"
	procs=$cg/cgroup.procs
fi
if [ -n "$cg" ]; then
	at_exit "rmdir $cg"
	sp=$(start_bg "$T/sleep" sleep 1000)
	echo "$sp" > "$procs"
	check "in its cpuset cgroup ($cg) it may run on CPU $last_cpu only" \
		eval '[ "$(taskset -pc $sp | sed "s/.*: //")" = "$last_cpu" ]'
	dump_and_restore "$sp" "$T/img2"
	check "restored outside that cgroup, it may run on every CPU ($all)" \
		eval '[ "$(taskset -pc $sp | sed "s/.*: //")" = "$all" ]'
else
	for i in 1 2 3 4 5 6; do ok "# SKIP no cpuset cgroup can be made here (or one CPU)"; done
fi
