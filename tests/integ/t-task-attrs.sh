#!/bin/bash
# Per-process attributes come back: transparent huge pages disabled with
# PR_SET_THP_DISABLE (THP_enabled 0 in /proc/PID/status, and the process's
# own prctl(PR_GET_THP_DISABLE) says 1), and the audit login uid
# (/proc/PID/loginuid; the kernel gives a new audit session id with it).
# A process holding a Linux native AIO context (io_setup) is refused, named,
# and goes on untouched.
. "$(dirname "$0")/../lib.sh"
require_root
[ -w /proc/self/loginuid ] || skip_all "no audit login uid here"
plan 14

uid=$((4200 + $$ % 100))
pid=$(start_bg "$T/out" "$PROGS/taskattr" "$uid")
wait_for_line "$T/out" '^READY' || bail "taskattr did not start"
thp() { sed -n 's/^THP_enabled:[[:space:]]*//p' /proc/$1/status; }
check "before: THP disabled, loginuid $uid" eval '[ "$(thp $pid)" = 0 ] && [ "$(cat /proc/$pid/loginuid)" = $uid ]'
note "sessionid before: $(cat /proc/$pid/sessionid)"
DR_LOG=$T/out dump_and_restore "$pid" "$T/img" || exit 1
note "sessionid after: $(cat /proc/$pid/sessionid)"
check "THP is disabled again (THP_enabled 0)" [ "$(thp "$pid")" = 0 ]
check "its own prctl(PR_GET_THP_DISABLE) says 1" eval 'request_check "$pid" "$T/out" | grep -q "thp_disable=1"'
check "its audit login uid is $uid again" [ "$(cat /proc/$pid/loginuid)" = "$uid" ]
check "no warning from the restore" eval '! grep -qi warn "$T/restore.log"'
last=$(line_field "$T/out" "^C " 2)
check "the count goes on" wait_for_line "$T/out" "^C $((last + 3))\$" 5

apid=$(start_bg "$T/aout" "$PROGS/taskattr" "$uid" aio)
wait_for_line "$T/aout" '^READY' || bail "taskattr aio did not start"
ctx=$(line_field "$T/aout" '^AIO ' 2)
check_fails "a process with an AIO context is refused" kup_run "$T/adump.log" dump -t "$apid" -D "$T/aimg"
check "the refusal names the pid and the AIO context" \
	grep -q "pid $apid: Linux native AIO context 0x$ctx .*not supported" "$T/adump.log"
check "it runs on, untraced" not_frozen "$apid"
last=$(line_field "$T/aout" "^C " 2)
check "and counts on" wait_for_line "$T/aout" "^C $((last + 3))\$" 5
