#!/bin/bash
# A freeze is bounded: a thread that does not stop for PTRACE_INTERRUPT
# within 10 s (here a vfork parent, asleep until its child exits) makes the
# dump give the tree back, naming pid, tid and comm.  The tree runs on
# untraced: the child keeps counting, and once it exits the parent resumes,
# neither stopped nor traced.
. "$(dirname "$0")/../lib.sh"
require_root

pid=$(start_bg "$T/out" "$PROGS/vforkwait" "$T/go")
wait_for_line "$T/out" '^C 3 ' || bail "vforkwait did not start"
child=$(sed -n 's/^CHILD //p' "$T/out")
check "the parent sleeps in its vfork wait" eval '[ "$(proc_state "$pid")" = D ]'

KUP_TIMEOUT=60 check_fails "kup dump gives up on the parent" kup_try dump -t "$pid" -D "$T/img"
check "naming pid, tid and comm" \
	grep -q "pid $pid tid $pid (vforkwait): did not stop within 10 s" "$T/err"
check "and saying the tree was left running" grep -q "the tree was left running" "$T/err"
check "no image was left" eval '[ ! -e "$T/img/inventory.img" ]'
check "the child is neither stopped nor traced" not_frozen "$child"
n=$(lines_count "$T/out" '^C ')
check "the child counts on" wait_for "[ \$(lines_count '$T/out' '^C ') -gt $((n + 3)) ]" 10
check "its count never skipped or repeated" counter_continues "$T/out" "$child" 0 0
touch "$T/go"
check "the parent resumes when its child exits" wait_for_line "$T/out" "^RESUMED $pid" 10
check "the parent is neither stopped nor traced" not_frozen "$pid"
check "no ERROR line" [ "$(lines_count "$T/out" ERROR)" = 0 ]
