#!/bin/bash
# State that cannot be applied at restore fails the restore, leaving nothing,
# unless --allow-differences accepts it; then the tree runs and a warning
# names each difference (pid, what, the value applied, the value dumped).
#   - a resource limit: the tree's hard RLIMIT_NOFILE, restored by a kup
#     whose own hard limit is lower (root here lacks CAP_SYS_RESOURCE, so
#     the restored task cannot raise it back);
#   - oom_score_adj: an image edited to -500, below what kup may set here;
#   - the time namespace that carries the clocks on after a reboot
#     (--as-new-boot), which a kup without CAP_SYS_ADMIN cannot make.
. "$(dirname "$0")/../lib.sh"
require_root
plan 26

edit() { python3 "$(dirname "$0")/../imgedit.py" "$@"; }
hard_nofile() { awk '/^Max open files/ { print $5 }' /proc/$1/limits; }

pid=$(start_bg "$T/out" "$PROGS/counter")
wait_for_line "$T/out" '^C 3 ' || bail "counter did not start"
hard=$(hard_nofile "$pid")
low=$((hard / 2))
soft=$((low < 1024 ? low : 1024))
note "the counter's hard RLIMIT_NOFILE: $hard; kup restore runs with $soft/$low"
if (echo -500 > /proc/self/oom_score_adj) 2> /dev/null; then
	skip_all "this kup may lower oom_score_adj (CAP_SYS_RESOURCE): no difference to make"
fi
check "dump" kup_run "$T/dump.log" dump -t "$pid" -D "$T/img" || exit 1
check "the counter is gone" wait_gone "$pid" || exit 1
cp -a "$T/img" "$T/oom"
edit "$T/oom/core-$pid.img" 11=-500 || bail "cannot edit core-$pid.img"

lowered() { prlimit --nofile=$soft:$low "$KUP" "$@"; }

check_fails "a restore that cannot set the hard open files limit fails" \
	timeout -k 5 240 prlimit --nofile=$soft:$low "$KUP" restore -D "$T/img" -d
check "... naming the pid, the limit, the dumped and the possible values" \
	grep -E "pid $pid: cannot restore resource limit NOFILE .*/$hard .*it would run with .*/$low" "$T/err"
check "... leaving no process $pid" eval "sleep 0.1; [ ! -d /proc/$pid ]"

check_fails "a restore that cannot set oom_score_adj -500 fails" kup_try restore -D "$T/oom" -d
check "... naming the pid and the values" \
	grep -E "pid $pid: cannot restore oom_score_adj -500 .*it would run with 0" "$T/err"
check "... leaving no process $pid" eval "sleep 0.1; [ ! -d /proc/$pid ]"

restore_lowered() { timeout -k 5 240 prlimit --nofile=$soft:$low "$KUP" "$@" > "$T/allow.log" 2>&1; }
check "with --allow-differences the tree is restored" \
	restore_lowered restore -D "$T/img" -d --allow-differences
track "$pid"
check "... a warning names the difference" \
	grep -E "warning.*pid $pid: resource limit NOFILE \(soft/hard\) is .*/$low, dumped .*/$hard" \
	"$T/allow.log"
check "... the process has the limit that could be applied" [ "$(hard_nofile "$pid")" = "$low" ]
last=$(line_field "$T/out" '^C ' 2)
check "... and the counter goes on" wait_for_line "$T/out" "^C $((last + 3)) " 5
kill_tree "$pid"
wait_gone "$pid"

check "with --allow-differences the edited oom_score_adj is restored as 0" \
	kup_run "$T/allow2.log" restore -D "$T/oom" -d --allow-differences
track "$pid"
check "... a warning names it" \
	grep -E "warning.*pid $pid: oom_score_adj is 0, dumped -500" "$T/allow2.log"
check "... the process has oom_score_adj 0" [ "$(cat /proc/$pid/oom_score_adj)" = 0 ]
last=$(line_field "$T/out" '^C ' 2)
check "... and the counter goes on" wait_for_line "$T/out" "^C $((last + 3)) " 5
kill_tree "$pid"
wait_gone "$pid"
check "the intact images restore" kup_run "$T/plain.log" restore -D "$T/img" -d
track "$pid"
check "... without a difference named" eval "! grep -E 'dumped|would run with' '$T/plain.log'"

# ---- the clocks' time namespace ---------------------------------------------
kill_tree "$pid"
wait_gone "$pid"
nosa=(setpriv --inh-caps=-sys_admin --bounding-set=-sys_admin)
pid=$(start_bg "$T/out2" "${nosa[@]}" "$PROGS/counter")
wait_for_line "$T/out2" '^C 3 ' || bail "counter did not start"
check "dump of a counter without CAP_SYS_ADMIN" kup_run "$T/dump2.log" dump -t "$pid" -D "$T/tns"
check "it is gone" wait_gone "$pid"
nosa_kup() { timeout -k 5 240 "${nosa[@]}" "$KUP" "$@"; }
check_fails "a restore on another boot by a kup that cannot make a time namespace fails" \
	nosa_kup restore -D "$T/tns" -d --as-new-boot
check "... naming the pid and the jump of the clocks" \
	grep -E "pid $pid: cannot make a time namespace: .*clock would jump by" "$T/err"
check "... leaving no process $pid" eval "sleep 0.1; [ ! -d /proc/$pid ]"
restore_nosa() { nosa_kup "$@" > "$T/allow3.log" 2>&1; }
check "with --allow-differences the tree is restored" \
	restore_nosa restore -D "$T/tns" -d --as-new-boot --allow-differences
track "$pid"
check "... a warning names the jump" \
	grep -E "warning: pid $pid: cannot make a time namespace: .*clock jumps by" "$T/allow3.log"
last=$(line_field "$T/out2" '^C ' 2)
check "... and the counter goes on" wait_for_line "$T/out2" "^C $((last + 3)) " 5
