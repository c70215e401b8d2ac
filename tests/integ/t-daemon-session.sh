#!/bin/bash
# A daemon that forked twice around setsid() runs in a session (and process
# group) whose leader has exited: it is dumped without --shell-job and comes
# back in the same session and group (a helper holds the dead leader's pid
# while the tree is made, then goes), counting on.  A program whose session
# leader is alive outside the tree (a shell) is refused with a message that
# says so.
. "$(dirname "$0")/../lib.sh"
plan 11

start_bg "$T/out" "$PROGS/dfork" "$T/pid" "$PROGS/counter" > /dev/null
wait_for "$T/pid" 5 || bail "the daemon did not start"
pid=$(cat "$T/pid")
sid=$(cat "$T/pid.sid")
track "$pid"
wait_for_line "$T/out" '^C 3 ' || bail "counter did not start"
check "its session $sid has no leader any more" [ ! -d /proc/$sid ]
check "its session and group are $sid" \
	[ "$(ps -o sid= -o pgid= -p "$pid" | awk '{ print $1 "/" $2 }')" = "$sid/$sid" ]
DR_LOG=$T/out dump_and_restore "$pid" "$T/img" || exit 1
check "the same session and group $sid after the restore" \
	[ "$(ps -o sid= -o pgid= -p "$pid" | awk '{ print $1 "/" $2 }')" = "$sid/$sid" ]
check "the helper that held pid $sid is gone" wait_gone "$sid" 5
last=$(head -n "$DR_LINES" "$T/out" | awk '$1 == "C" { v = $2 } END { print v }')
wait_for_line "$T/out" "^C $((last + 5)) " 10
check "the count goes on from $last" counter_continues "$T/out" "$pid" "$DR_LINES" 5
kill_tree "$pid"
wait_gone "$pid"

# started from a shell: the session leader (bash) is alive
setsid bash -c "$PROGS/counter >> $T/out2 & echo \$! > $T/pid2; wait" < /dev/null > /dev/null 2>&1 &
track $!
wait_for "$T/pid2" 5 || bail "the shell job did not start"
pid2=$(cat "$T/pid2")
track "$pid2"
wait_for_line "$T/out2" '^C 2 ' || bail "second counter did not start"
check_fails "a job of a live shell is refused without --shell-job" \
	kup_run "$T/dump2.log" dump -t "$pid2" -D "$T/img2"
check "... saying its session leader (bash) is alive outside: use --shell-job" \
	grep -q "its session leader [0-9]* (bash) is alive outside the dumped tree: started from a shell? use --shell-job" "$T/dump2.log"
note "$(cat "$T/dump2.log")"
