#!/bin/bash
# A tree whose children keep exiting while it is frozen: a child that exits
# between the listing of the tree and its seize is a zombie (its parent is
# frozen) and is dumped as one, not refused (seize EPERM), nor taken for a
# task in another cgroup (an exiting task shows "/" in every cgroup v1
# hierarchy).  Many dumps with --leave-running all succeed; the last one is
# restored and the loop counts on.
. "$(dirname "$0")/../lib.sh"
require_root
plan 7

# eight children at a time, each exits at once; a line per batch
pid=$(start_bg "$T/out" bash -c 'n=0; while :; do
	for i in 1 2 3 4 5 6 7 8; do (exit 0) & done; wait; n=$((n + 1))
	[ $((n % 50)) = 0 ] && echo "B $n"; done')
wait_for_line "$T/out" '^B ' || bail "the loop did not start"

fails=0
for i in $(seq 1 30); do
	rm -rf "$T/img"
	if ! kup_run "$T/dump-$i.log" dump -t "$pid" -D "$T/img" --leave-running; then
		fails=$((fails + 1))
		note "dump $i: $(grep -m1 error "$T/dump-$i.log")"
	fi
done
check "30 dumps of a tree whose children keep exiting all succeed" [ "$fails" = 0 ]
check "the tree runs on, untraced" not_frozen "$pid"

dump_and_restore "$pid" "$T/img2" || exit 1
last=$(tail -n 1 "$T/out" | awk '{ print $2 }')
check "the restored loop counts on" wait_for_line "$T/out" "^B $((last + 100))\$" 60
