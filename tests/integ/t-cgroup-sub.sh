#!/bin/bash
# A tree whose tasks are in different cgroups (a sub-cgroup made below the
# tree's own, one task moved into it) is refused at dump, naming the task
# and both cgroup paths: the restore puts every task in one cgroup.  The
# tree runs on; once the task is back in the tree's cgroup the tree is
# dumped and restored.
. "$(dirname "$0")/../lib.sh"
require_root
mnt=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[ -n "$mnt" ] || skip_all "no cgroup v2 here"
plan 11

pid=$(start_bg "$T/out" "$PROGS/proctree")
wait_for_line "$T/out" '^READY' || bail "proctree did not start"
r=$(line_field "$T/out" '^PID R ' 3)
own=$(sed -n 's/^0:://p' /proc/$pid/cgroup)
sub=${own%/}/kup-t-$$
mkdir "$mnt$sub" || bail "cannot make cgroup $mnt$sub"
at_exit "rmdir '$mnt$sub' 2>/dev/null"
echo "$r" > "$mnt$sub/cgroup.procs" || bail "cannot move $r into $sub"
check_fails "kup dump refuses the tree" kup_run "$T/dump1.log" dump -t "$pid" -D "$T/img1"
check "the refusal names R, its cgroup and the root's" \
	grep -qF "pid $r: is in cgroup $sub (cgroup v2), not in the tree's root $pid's $own" "$T/dump1.log"
check "R runs on, untraced" not_frozen "$r"
check "the tree's own check passes" request_check "$pid" "$T/out"
check "no image is left" [ ! -e "$T/img1/inventory.img" ]

echo "$r" > "$mnt$own/cgroup.procs"
dump_and_restore "$pid" "$T/img" || exit 1
check "R is back, running" not_frozen "$r"
check "the tree's own check passes after the restore" request_check "$pid" "$T/out"
