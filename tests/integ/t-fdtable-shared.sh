#!/bin/bash
# Two processes (not threads) sharing one fd table, a parent and its child
# made with clone(CLONE_FILES) (tests/progs/fdshare): the table is dumped
# once and comes back shared.  After a restore the child opens a file and
# closes another, and the parent sees both in its own table; the pipe the
# child made holds its data; the POSIX lock the child took through the
# shared table is held again, by the child; the grandchild (plain fork) has
# a table of its own, which the child's opens do not reach; a grandchild
# the child made with CLONE_FILES shares the one table too.  The child
# alone (--shell-job: its session leader is its parent; its table shared
# with that parent, outside the dumped tree) is refused.
. "$(dirname "$0")/../lib.sh"
require_root

out=$T/fdshare.out
pid=$(start_bg "$out" "$PROGS/fdshare" -f "$T/first" -g "$T/second")
for l in READY 'PID G' 'PID S'; do
	wait_for_line "$out" "^$l" || bail "fdshare did not start: $(tail -n 2 "$out")"
done
child=$(line_field "$out" '^PID C ' 3)
gchild=$(line_field "$out" '^PID G ' 3)
sharer=$(line_field "$out" '^PID S ' 3)
ino=$(stat -c %i "$T/first")
check "before: the child shares the parent's fd table (same files at fd 50)" \
	[ "$(readlink /proc/$pid/fd/50)" = "$T/first" -a "$(readlink /proc/$child/fd/50)" = "$T/first" ]

check_fails "a dump of the child alone (its table shared with its parent, outside) fails" \
	kup_run "$T/err" dump -t "$child" -D "$T/cimg" --shell-job
sed 's/^/# /' "$T/err" | tail -n 2
check "... naming the child and its parent" \
	grep -qF "pid $child: shares its fd table with its parent $pid, outside the dumped tree (clone with CLONE_FILES): not supported" "$T/err"
check "... and leaves it running" eval "not_frozen $child && not_frozen $gchild && not_frozen $sharer"

dump_and_restore "$pid" "$T/img" || exit 1
check "the grandchild $gchild is back" alive "$gchild"
check "the child's POSIX lock on $T/first is held again, by the child (/proc/locks)" \
	grep -qE "POSIX +ADVISORY +WRITE +$child +[0-9a-f]+:[0-9a-f]+:$ino +0 +9\$" /proc/locks
check "the child opens $T/second at fd 70 and closes fd 50" request_check "$child" "$out"
check "... and the parent sees both in its table (one table); the pipe gives its data" \
	request_check "$pid" "$out"
check "the grandchild's own table has neither change" request_check "$gchild" "$out"
check "the grandchild made with CLONE_FILES sees both (one table for three)" \
	request_check "$sharer" "$out"
check "no ERROR line" [ "$(lines_count "$out" ERROR)" = 0 ]
kill_tree "$pid"
wait_gone "$pid"
