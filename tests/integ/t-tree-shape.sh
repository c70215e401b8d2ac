#!/bin/bash
# A process tree image that parses but cannot be a tree (a self-parent, a
# cycle, a missing or zombie parent, a pid or tid used twice, the root not
# first, a group or session that cannot be made) makes restore and kup hold
# refuse it before anything is made: an exit status of 1..125 (no crash, no
# sanitizer report), a message naming the pid, no process left.  The intact
# images then restore.
. "$(dirname "$0")/../lib.sh"

plan $((3 + 10 * 5 + 3))	# 10 cases

edit() { python3 "$(dirname "$0")/../imgedit.py" "$@"; }

pid=$(start_bg "$T/out" "$PROGS/proctree")
wait_for_line "$T/out" '^READY' || bail "proctree did not start"
check "dump" kup_run "$T/dump.log" dump -t "$pid" -D "$T/good" || exit 1
check "the tree is gone" wait_gone "$pid" || exit 1

# entry k of pstree.img: pid e[k]; the zombie's entry is z
declare -a e
for k in 0 1 2 3; do
	e[k]=$(edit "$T/good/pstree.img" "get:1[$k].1")
done
z=$(line_field "$T/out" '^PID Z ' 3)
for k in 1 2 3; do [ "${e[k]}" = "$z" ] && zk=$k; done
live=()
for k in 1 2 3; do [ "$k" != "$zk" ] && live+=("$k"); done
a=${live[0]} b=${live[1]}
note "pstree.img: ${e[*]}; zombie entry $zk, live children $a and $b"
free=4194303

# kup hold reads the tree from a store: one holding the checkpoint's images
S=$T/store.ppp
check "a store with the checkpoint" eval 'kup_try ppp format "$S" --size 16M > "$T/fmt.log" 2>&1 &&
	for f in "$T"/good/*.img; do kup_try ppp put -s "$S" "$f" "$(basename "$f")" || exit 1; done'

# name | edits of pstree.img | what the message must say
cases=(
	"self-parent|1[$a].2=${e[a]}|pid ${e[a]} is its own parent"
	"cycle|1[$a].2=${e[b]} 1[$b].2=${e[a]}|pid ${e[a]}: its parents form a cycle"
	"missing parent|1[$b].2=$free|pid ${e[b]}: its parent $free is not in the tree"
	"zombie parent|1[$b].2=$z|pid ${e[b]}: its parent $z is a zombie"
	"duplicate pid|1[$b].1=${e[a]} 1[$b].5[0]=${e[a]}|pid/tid ${e[a]} is used twice"
	"duplicate tid|1[$b].5[1]=${e[a]}|pid/tid ${e[a]} is used twice"
	"root not first|1[0]<>1[$a]|the first entry is pid ${e[a]}, not the root pid ${e[0]}"
	"group of nothing|1[$b].3=$free|pid ${e[b]}: process group $free has no leader"
	"session of nothing|1[$b].4=$free|pid ${e[b]}: session $free cannot be recreated"
	"thread list|1[$b].5[0]=$free|pid ${e[b]}: bad thread list"
)
for c in "${cases[@]}"; do
	IFS='|' read -r name edits msg <<< "$c"
	rm -rf "$T/img"
	cp -a "$T/good" "$T/img"
	# shellcheck disable=SC2086
	edit "$T/img/pstree.img" $edits || bail "cannot edit pstree.img ($name)"
	check_fails "restore refuses a tree with a $name" kup_try restore -D "$T/img" -d
	check "... saying: $msg" grep -qF "$msg" "$T/err"
	check "... leaving no process of the tree" eval \
		"sleep 0.1; for p in ${e[*]}; do [ ! -d /proc/\$p ] || exit 1; done"
	kup_try ppp put -s "$S" "$T/img/pstree.img" pstree.img > "$T/put.log" 2>&1 ||
		bail "cannot put pstree.img in the store"
	check_fails "kup hold refuses it too" kup_try hold --ppp "$S" --timeout 1 --log "$T/hold.log"
	check "... saying so" grep -qF "$msg" "$T/err"
done

check "the intact images restore" kup_run "$T/restore.log" restore -D "$T/good" -d
track "$pid"
check "the tree is back" eval "for p in ${e[*]}; do [ -d /proc/\$p ] || exit 1; done"
kill -TERM "$pid"
check "its final check passes" wait_for_line "$T/out" '^FINAL OK' 10
