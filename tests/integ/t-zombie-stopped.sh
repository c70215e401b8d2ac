#!/bin/bash
# A tree with a zombie child and a stopped child comes back as it was: the
# zombie is a zombie again with the same pid and exit status (its parent
# still reaps 7), the stopped child stays stopped until SIGCONT and then goes
# on counting, the running child goes on running.
. "$(dirname "$0")/../lib.sh"

pid=$(start_bg "$T/out" "$PROGS/proctree")
wait_for_line "$T/out" '^READY' || bail "proctree did not start"
z=$(line_field "$T/out" '^PID Z ' 3)
s=$(line_field "$T/out" '^PID S ' 3)
r=$(line_field "$T/out" '^PID R ' 3)
note "root $pid, zombie $z, stopped $s, running $r"
check "before the dump: Z is a zombie, S stopped, R running" eval \
	'[ "$(proc_state $z)" = Z ] && [ "$(proc_state $s)" = T ] && not_frozen $r'
check "its self-check passes before the dump" request_check "$pid" "$T/out"

dump_and_restore "$pid" "$T/img" || exit 1
ppid_of() { awk '{ sub(/.*\) /, ""); print $2 }' /proc/$1/stat 2>/dev/null; }
check "Z (pid $z) is a zombie child of $pid again" eval \
	'[ "$(proc_state $z)" = Z ] && [ "$(ppid_of $z)" = $pid ]'
check "S (pid $s) is a stopped child of $pid again" eval \
	'[ "$(proc_state $s)" = T ] && [ "$(ppid_of $s)" = $pid ]'
check "R (pid $r) is a running child of $pid again" eval \
	'not_frozen $r && [ "$(ppid_of $r)" = $pid ]'
rlast=$(line_field "$T/out" '^R ' 2)
check "R goes on counting" wait_for_line "$T/out" "^R $((rlast + 3))\$" 5
ns=$(lines_count "$T/out" '^S ')
sleep 0.5
check "S prints nothing while stopped" [ "$(lines_count "$T/out" '^S ')" = "$ns" ]
check "the root's own check sees the same tree" request_check "$pid" "$T/out"

slast=$(line_field "$T/out" '^S ' 2)
kill -CONT "$s"
check "after SIGCONT, S goes on from $slast" wait_for_line "$T/out" "^S $((slast + 3))\$" 5
for x in S R; do
	check "$x's count has no gap and no repeat" \
		awk -v x=$x '$1 == x { if ($2 != n) { print "# " n " then " $2; exit 1 } n++ }' "$T/out"
done
kill -TERM "$pid"
check "the root reaps the zombie: exit status 7 kept" wait_for_line "$T/out" '^FINAL OK' 5
check "no ERROR or FAIL line" [ "$(lines_count "$T/out" 'ERROR|FAIL')" = 0 ]
