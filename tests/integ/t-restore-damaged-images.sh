#!/bin/bash
# Every image file of a checkpoint, truncated to half or with one byte
# flipped, makes restore fail cleanly: an exit status of 1..127 (no crash, no
# sanitizer report), a message naming the image or the pid, no process left
# with the dumped pid, and the images as they were (restore neither repairs
# nor deletes them).  The repaired set then restores.
. "$(dirname "$0")/../lib.sh"

pid=$(start_bg "$T/out" "$PROGS/counter")
wait_for_line "$T/out" '^C 3 ' || bail "counter did not start"
check "dump" kup_run "$T/dump.log" dump -t "$pid" -D "$T/good" || exit 1
check "the counter is gone" wait_gone "$pid" || exit 1
files=$(cd "$T/good" && ls)
note "images: $(echo $files)"
check "the checkpoint has image files" [ -n "$files" ]

sums() { (cd "$1" && sha256sum *); }
for f in $files; do
	size=$(stat -c %s "$T/good/$f")
	for damage in truncate flip; do
		rm -rf "$T/img"
		cp -a "$T/good" "$T/img"
		if [ $damage = truncate ]; then
			truncate -s $((size / 2)) "$T/img/$f"
			what="$f truncated to $((size / 2)) of $size bytes"
		else
			off=$((size / 2))
			b=$(od -An -tu1 -j $off -N1 "$T/img/$f" | tr -d ' ')
			printf "$(printf '\\%03o' $(( (b ^ 0x5a) & 255 )))" |
				dd of="$T/img/$f" bs=1 seek=$off conv=notrunc status=none
			what="$f with byte $off flipped"
		fi
		damaged=$(sums "$T/img")
		check_fails "restore refuses $what" kup_try restore -D "$T/img" -d
		check "... saying which image or pid" grep -qE "${f%.img}|$pid" "$T/err"
		check "... leaving no process $pid" eval "sleep 0.1; [ ! -d /proc/$pid ]"
		check "... and the images as they were" [ "$(sums "$T/img")" = "$damaged" ]
		kill_tree "$pid"
		wait_gone "$pid"
	done
done

check "the intact images restore" kup_run "$T/restore.log" restore -D "$T/good" -d
track "$pid"
last=$(line_field "$T/out" '^C ' 2)
check "and the counter goes on" wait_for_line "$T/out" "^C $((last + 3)) " 5
check "without a gap, same pid" counter_continues "$T/out" "$pid" 0 3
