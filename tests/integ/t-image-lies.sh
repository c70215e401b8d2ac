#!/bin/bash
# Images that parse and carry valid checksums but lie about the process
# (mappings that overlap, pages outside every mapping, ids of files that do
# not exist, a resource limit that does not exist...) are refused by restore
# before anything is made: an exit status of 1..125 (no crash, no sanitizer
# report), a message naming the image and the pid, no process left.  The
# intact images then restore.
. "$(dirname "$0")/../lib.sh"
plan $((2 + 10 * 3 + 2))

edit() { python3 "$(dirname "$0")/../imgedit.py" "$@"; }

pid=$(start_bg "$T/out" "$PROGS/counter")
wait_for_line "$T/out" '^C 3 ' || bail "counter did not start"
check "dump" kup_run "$T/dump.log" dump -t "$pid" -D "$T/good" || exit 1
check "the counter is gone" wait_gone "$pid" || exit 1
mm=mm-$pid.img core=core-$pid.img
start0=$(edit "$T/good/$mm" "get:2[0].1")
pages=$(edit "$T/good/$mm" "get:4")

# name | image | edits | what the message must say
cases=(
	"overlapping mappings|$mm|2[1].1=$start0|$mm: mapping 1 "
	"more huge pages than the mapping holds|$mm|2[0].660=$((1 << 40))|$mm: mapping 0 "
	"a map of huge pages longer than the mapping|$mm|2[0].661=s:0123456789|$mm: mapping 0 "
	"pages outside every mapping|$mm|3[0].1=4096|$mm: a page run lies outside the mappings"
	"more pages than its runs hold|$mm|4=$((pages + 1))|$mm: the page runs hold $pages pages"
	"a mapping of a file not in files.img|$mm|2{6=2}.7=999999|file 999999 is not in files.img"
	"a working directory not in files.img|$core|12=999999|$core: working directory (file 999999)"
	"an executable not in files.img|$core|17.13=999999|$core: executable (file 999999)"
	"a resource limit that does not exist|$core|7[0].1=99|$core: bad resource limit 0 (resource 99)"
	"an fd of a file not in files.img|fdtable.img|1{1=$pid}.2[0].2=999999|pid $pid fd "
)
for c in "${cases[@]}"; do
	IFS='|' read -r name img edits msg <<< "$c"
	rm -rf "$T/img"
	cp -a "$T/good" "$T/img"
	# shellcheck disable=SC2086
	edit "$T/img/$img" $edits || bail "cannot edit $img ($name)"
	check_fails "restore refuses $name" kup_try restore -D "$T/img" -d
	check "... saying: $msg" grep -qF "$msg" "$T/err"
	check "... leaving no process $pid" eval "sleep 0.1; [ ! -d /proc/$pid ]"
done

check "the intact images restore" kup_run "$T/restore.log" restore -D "$T/good" -d
track "$pid"
last=$(line_field "$T/out" '^C ' 2)
check "and the counter goes on" wait_for_line "$T/out" "^C $((last + 3)) " 5
