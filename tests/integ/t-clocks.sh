#!/bin/bash
# The tree's monotonic clocks after a restore.  On the boot it was dumped on,
# the tree stays in our time namespace (its clocks simply went on).  A
# restore after a kexec (here simulated with the test option --as-new-boot)
# puts it in a time namespace whose CLOCK_MONOTONIC and CLOCK_BOOTTIME go on
# from their values at dump time, so they never go back; the wall clocks
# (clock_gettime, gettimeofday, time: vDSO calls) stay right.
. "$(dirname "$0")/../lib.sh"

ns_of() { readlink "/proc/$1/ns/time"; }
[ -e /proc/self/ns/time ] || skip_all "no time namespaces on this kernel"

pid=$(start_bg "$T/out" "$PROGS/clocks" -i 50)
wait_for_line "$T/out" '^T 5 ' || bail "clocks did not start"
DR_LOG=$T/out dump_and_restore "$pid" "$T/img" || exit 1
check "same boot: the restored tree is in our time namespace" [ "$(ns_of "$pid")" = "$(ns_of $$)" ]
n=$(wc -l < "$T/out")
check "it ticks on" wait_for "[ \$(wc -l < '$T/out') -ge $((n + 5)) ]" 5
check "no ERROR line (no clock went back, the wall clocks agree)" \
	[ "$(lines_count "$T/out" ERROR)" = 0 ]
check "its self-check passes" request_check "$pid" "$T/out"
kill_tree "$pid"
wait_gone "$pid"

# ---- as after a kexec ------------------------------------------------------------
pid=$(start_bg "$T/out2" "$PROGS/clocks" -i 50)
wait_for_line "$T/out2" '^T 5 ' || bail "clocks did not start"
check "kup dump" kup_run "$T/dump2.log" dump -t "$pid" -D "$T/img2"
wait_gone "$pid"
before=$(line_field "$T/out2" '^T ' 7)
n=$(wc -l < "$T/out2")
sleep 2		# the downtime: it must not count
check "kup restore --as-new-boot" kup_run "$T/restore2.log" restore -D "$T/img2" -d --as-new-boot ||
	note "$(cat "$T/restore2.log")"
track "$pid"
check "pid $pid is back" alive "$pid"
check "in a time namespace of its own" [ "$(ns_of "$pid")" != "$(ns_of $$)" ]
check "whose monotonic offset is set (/proc/$pid/timens_offsets)" \
	eval 'awk "\$1 == \"monotonic\" && (\$2 != 0 || \$3 != 0) { f = 1 } END { exit !f }" /proc/$pid/timens_offsets'
check "kup said so" grep -q "time namespace" "$T/restore2.log"
check "it ticks on" wait_for "[ \$(wc -l < '$T/out2') -ge $((n + 5)) ]" 5
after=$(sed -n "$((n + 1))p" "$T/out2" | awk '$1 == "T" { print $7 }')
check "CLOCK_MONOTONIC goes on from its value at dump ($before ms -> ${after:-?} ms: less than the 2 s downtime)" \
	eval '[ -n "$after" ] && [ "$after" -ge "$before" ] && [ $((after - before)) -lt 1500 ]'
check "no ERROR line (no clock went back, the wall clocks agree)" \
	[ "$(lines_count "$T/out2" ERROR)" = 0 ]
now=$(date +%s%3N)
rt=$(line_field "$T/out2" '^T ' 4)
check "its wall clock is ours (within 2 s)" [ $(( now - rt < 2000 && rt - now < 2000 )) = 1 ]
check "its self-check passes" request_check "$pid" "$T/out2"
kill_tree "$pid"
