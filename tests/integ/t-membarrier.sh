#!/bin/bash
# membarrier(2) registrations of a process's mm come back: a process
# registered for global, private, private sync-core and private rseq
# expedited barriers (those the kernel has) can run its private barriers
# after the restore (they fail with EPERM on an unregistered mm) and
# MEMBARRIER_CMD_GET_REGISTRATIONS (Linux 6.3+) gives the same set; its
# child, which registered nothing, is still refused them.  Its thread counts
# on.  Then a dump with --leave-running disturbs none of it.
. "$(dirname "$0")/../lib.sh"
require_root
plan 11

pid=$(start_bg "$T/out" "$PROGS/membar")
wait_for_line "$T/out" '^READY' || bail "membar did not start"
child=$(line_field "$T/out" '^PID C ' 3)
note "registered: $(line_field "$T/out" '^REG ' 2)"
check "before: the parent's barriers work" request_check "$pid" "$T/out"
check "before: the child's are refused" request_check "$child" "$T/out"

DR_LOG=$T/out dump_and_restore "$pid" "$T/img" || exit 1
check "the parent's registrations are back: its private barriers work, the same set" \
	request_check "$pid" "$T/out"
check "the child is still unregistered" request_check "$child" "$T/out"
last=$(line_field "$T/out" '^C [0-9]' 2)
check "the thread counts on from $last" wait_for_line "$T/out" "^C $((last + 2))\$" 10

check "kup dump --leave-running" kup_run "$T/dumpl.log" dump -t "$pid" -D "$T/imgl" --leave-running
check "after it, the parent's barriers still work" request_check "$pid" "$T/out"
kill_tree "$pid"
