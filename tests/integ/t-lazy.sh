#!/bin/bash
# kup restore --lazy: the tree runs before its private memory is back; its
# pages come on first touch (userfaultfd) and from a background pass of
# kup-lazy, which exits once all are in and then scrubs the store.
#  - 256 MiB from a store file, the background pass held back
#    (KUP_LAZY_HOLD): the process runs with almost none of its memory,
#    every word reads as written, holes zero; a dump meanwhile is refused;
#    the store is scrubbed only once the memory is complete.
#  - 256 MiB from a directory, nothing touched: the background pass alone
#    brings every page (RSS as before, then the same checksum).
#  - mremap, munmap, madvise(MADV_DONTNEED) and a fork while the pages are
#    still to come: the moved pages follow, the dropped ones read zero, the
#    child sees what its parent does.
#  - a store damaged after the tree started lazily: the page cannot be read
#    back, the whole tree is killed (never run on with zeros), the error
#    names the pid and the address, the store keeps its checkpoint, marked
#    failed (as on the boot after a switch: a later boot leaves it).
#  - a directory's image damaged: the eager restore refuses it, naming the
#    piece; the lazy one runs the tree and kills it at that piece.
#  - KUP_RESTORE_MEMORY=lazy makes kup restore --ppp lazy; --eager wins.
#  - a store on a block device (a loop device: O_DIRECT reads).
#  - a store of several trees (kept units): each part lazily on its own, by
#    commands of their own as the units' starts; an eager part while another's
#    memory is still read; each part leaves once its memory is in, the store
#    is scrubbed after the last; KUP_RESTORE_MEMORY=lazy applies to it.
. "$(dirname "$0")/../lib.sh"

rss() { awk '/^VmRSS:/ { print $2 }' /proc/$1/status; }
# held_restore HOLDFILE LOG ARGS...: kup ARGS with the background pass held
# until HOLDFILE exists (kup-lazy's output goes to LOG too)
held_restore() {
	local hold=$1 log=$2
	shift 2
	KUP_LAZY_HOLD=$hold kup_run "$log" "$@" || { cat "$log"; return 1; }
}
lazy_pid() { grep -oE 'pid [0-9]+ \(kup-lazy\)' "$1" | awk '{ print $2 }'; }
# track_restored LOG: the restored $pid and its kup-lazy ($lz, from LOG) are
# killed at the end
track_restored() {
	track "$pid"
	lz=$(lazy_pid "$1")
	[ -n "$lz" ] && track "$lz"
}
# damage_blob STORE NAME: a byte flipped at 8, 16, 24 and 32 MiB of the blob
damage_blob() {
	local off mb
	off=$(store_blob_offset "$1" "$2")
	for mb in 8 16 24 32; do
		flip_byte "$1" $((off + (mb << 20) + 100))
	done
}

# ---- 256 MiB from a store, pages on first touch ------------------------------
S=$T/store.ppp
check "kup ppp format $S --size 400M" kup_run "$T/fmt.log" ppp format "$S" --size 400M
pid=$(start_bg "$T/out" "$PROGS/bigmem" 256)
wait_for_line "$T/out" '^READY' 120 || bail "bigmem did not start"
sum=$(awk '/^SUM/ { print $2; exit }' "$T/out")
check "its check before the dump (sum $sum)" request_check "$pid" "$T/out" 120
rss_before=$(rss "$pid")
check "kup dump --ppp" kup_run "$T/dump.log" dump -t "$pid" --ppp "$S"
check "the dumped process is gone" wait_gone "$pid"
check "kup restore --ppp --lazy -d (background pass held)" \
	held_restore "$T/go" "$T/restore.log" restore --ppp "$S" --lazy -d
track_restored "$T/restore.log"
check "pid $pid runs" alive "$pid"
check "kup-lazy (pid $lz) serves its memory, named so" \
	eval '[ -n "$lz" ] && [ "$(cat /proc/$lz/comm)" = kup-lazy ]'
rss_lazy=$(rss "$pid")
check "it runs with almost none of its memory in ($rss_lazy kB, $rss_before kB dumped)" \
	[ "$rss_lazy" -lt $((rss_before / 8)) ]
check "the store keeps its checkpoint while the memory is not complete" store_has_ckpt "$S"
check_fails "kup ppp scrub meanwhile is refused: kup-lazy still reads the store" \
	kup_run "$T/scrub-lazy.log" ppp scrub "$S"
check "... the checkpoint intact" eval 'store_has_ckpt "$S" && "$KUP" ppp verify "$S" > /dev/null 2>&1'
check_fails "a dump meanwhile is refused (its pages are not all there)" \
	kup_run "$T/dump-lazy.log" dump -t "$pid" -D "$T/img-lazy"
check "... naming the pid and userfaultfd, the process running on" \
	eval 'grep -q "pid $pid: mapping .*userfaultfd" "$T/dump-lazy.log" && alive $pid'
check "every word as written and the holes zero (pages on first touch)" \
	request_check "$pid" "$T/out" 120
check "the checksum is the one from before the dump ($sum)" \
	grep -q "^CHECK 2 OK sum=$sum holes=zero" "$T/out"
touch "$T/go"
check "kup-lazy exits once the rest is in" wait_for "! alive $lz" 120
check "then the store is scrubbed" eval '! store_has_ckpt "$S"'
check "and says so" grep -q "memory is complete: the store is scrubbed" "$T/restore.log"
check "the process runs on, its memory intact" request_check "$pid" "$T/out" 120
kill_tree "$pid"
wait_gone "$pid"

# ---- 256 MiB from a directory, the background pass alone ---------------------
pid=$(start_bg "$T/out2" "$PROGS/bigmem" 256)
wait_for_line "$T/out2" '^READY' 120 || bail "bigmem did not start"
sum=$(awk '/^SUM/ { print $2; exit }' "$T/out2")
rss_before=$(rss "$pid")
check "kup dump -D" kup_run "$T/dump2.log" dump -t "$pid" -D "$T/img2"
check "the dumped process is gone" wait_gone "$pid"
check "kup restore -D --lazy -d" kup_run "$T/restore2.log" restore -D "$T/img2" --lazy -d ||
	note "$(cat "$T/restore2.log")"
track_restored "$T/restore2.log"
check "pid $pid runs" alive "$pid"
check "kup-lazy exits once every page is in" wait_for "! alive $lz" 120
rss_after=$(rss "$pid")
check "untouched, the process has all its memory ($rss_after kB, $rss_before kB dumped)" \
	[ "$rss_after" -gt $((rss_before - rss_before / 20)) ]
check "every word as written, holes zero, the same checksum ($sum)" \
	eval 'request_check $pid "$T/out2" 120 | grep -q "sum=$sum holes=zero"'
check "no ERROR line" [ "$(lines_count "$T/out2" ERROR)" = 0 ]
kill_tree "$pid"
wait_gone "$pid"

# ---- the layout changes while the pages are still to come --------------------
pid=$(start_bg "$T/out3" "$PROGS/lazyops" 16)
wait_for_line "$T/out3" '^READY' 60 || bail "lazyops did not start"
check "kup dump -D" kup_run "$T/dump3.log" dump -t "$pid" -D "$T/img3"
check "the dumped process is gone" wait_gone "$pid"
check "kup restore --lazy -d (background pass held)" \
	held_restore "$T/go3" "$T/restore3.log" restore -D "$T/img3" --lazy -d
track_restored "$T/restore3.log"
kill -USR1 "$pid"
check "mremap, munmap, MADV_DONTNEED, then a fork: child and parent read it right" \
	wait_for_line "$T/out3" '^OPS child=OK self=OK' 60
touch "$T/go3"
check "kup-lazy exits once the rest is in" wait_for "! alive $lz" 60
kill -USR2 "$pid"
check "the moved pages where they went, the dropped ones zero, once all is in" \
	wait_for_line "$T/out3" '^CHECK 1 OK' 60
check "no ERROR, no FAIL" [ "$(lines_count "$T/out3" 'ERROR|FAIL')" = 0 ]
kill_tree "$pid"
wait_gone "$pid"

# ---- a store damaged while the tree runs lazily ------------------------------
S4=$T/store4.ppp
check "kup ppp format $S4 --size 160M" kup_run "$T/fmt4.log" ppp format "$S4" --size 160M
pid=$(start_bg "$T/out4" "$PROGS/bigmem" 64)
wait_for_line "$T/out4" '^READY' 120 || bail "bigmem did not start"
check "kup dump --ppp" kup_run "$T/dump4.log" dump -t "$pid" --ppp "$S4"
check "the dumped process is gone" wait_gone "$pid"
check "kup restore --ppp --lazy -d --as-new-boot (background pass held)" \
	held_restore "$T/go4" "$T/restore4.log" restore --ppp "$S4" --lazy -d --as-new-boot
track_restored "$T/restore4.log"
check "pid $pid runs" alive "$pid"
damage_blob "$S4" "pages-$pid.img"
touch "$T/go4"
check "the tree is killed when the damaged page is reached" wait_gone "$pid" 60
check "kup-lazy exits too" wait_for "! alive $lz" 30
check "the error names the pid and the address" \
	grep -qE "pid $pid: the page at 0x[0-9a-f]+ cannot be read back .*killing the whole tree" \
	"$T/restore4.log"
check "the store's extent check says which" grep -q "extent" "$T/restore4.log"
check "the store keeps its checkpoint (not scrubbed)" store_has_ckpt "$S4"
check "... marked failed (as on the boot after a switch): a later boot leaves it" \
	eval 'grep -q "stays in the store, marked failed" "$T/restore4.log" &&
	      kup_run "$T/ri4.log" restore --ppp "$S4" -d --if-any && grep -q "failed on an earlier boot" "$T/ri4.log"'

# ---- a directory's image damaged: the tree runs, killed at the damaged piece --
# Each MiB of a pages image has a checksum of its own (mm_image.chunk_sum):
# a lazy restore from a directory checks a piece when it first reads it, so
# the tree runs before its memory is read; an eager one checks each right
# before writing it into the task, before any task runs (what was made is
# killed).
pid=$(start_bg "$T/out9" "$PROGS/bigmem" 64)
wait_for_line "$T/out9" '^READY' 120 || bail "bigmem did not start"
check "kup dump -D" kup_run "$T/dump9.log" dump -t "$pid" -D "$T/img9"
check "the dumped process is gone" wait_gone "$pid"
check "the pages image has a checksum per MiB" \
	eval '[ "$("$KUP" show "$T/img9/mm-$pid.img" | grep -c chunk_sum)" -ge 1 ]'
flip_byte "$T/img9/pages-$pid.img" $(((40 << 20) + 100))
check_fails "kup restore -D (eager) of the damaged image is refused" \
	kup_run "$T/restore9e.log" restore -D "$T/img9" -d
check "... naming the piece" grep -q "pages-$pid.img: the piece at offset 41943040: checksum mismatch" \
	"$T/restore9e.log"
check "... and nothing of the tree runs" eval '! alive "$pid"'
check "kup restore -D --lazy -d runs the tree before reading the damaged piece" \
	held_restore "$T/go9" "$T/restore9.log" restore -D "$T/img9" --lazy -d
track_restored "$T/restore9.log"
check "pid $pid runs" alive "$pid"
touch "$T/go9"
check "the tree is killed when the damaged piece is read" wait_gone "$pid" 60
check "kup-lazy exits too" wait_for "! alive $lz" 30
check "the error names the piece, the pid and the address" eval \
	'grep -q "pages-$pid.img: the piece at offset 41943040: checksum mismatch" "$T/restore9.log" &&
	 grep -qE "pid $pid: the page at 0x[0-9a-f]+ cannot be read back .*killing the whole tree" "$T/restore9.log"'
check "the images are left as they were" eval '[ -s "$T/img9/pages-$pid.img" ] && [ -s "$T/img9/mm-$pid.img" ]'

# ---- KUP_RESTORE_MEMORY=lazy: kup restore --ppp is lazy unless --eager -------
printf 'KUP_RESTORE_MEMORY=lazy\n' > "$T/kup.conf"
S5=$T/store5.ppp
check "kup ppp format $S5 --size 64M" kup_run "$T/fmt5.log" ppp format "$S5" --size 64M
for how in config eager; do
	pid=$(start_bg "$T/out5$how" "$PROGS/counter" -m 16)
	wait_for_line "$T/out5$how" '^C 3 ' 30 || bail "counter did not start"
	check "kup dump --ppp" kup_run "$T/dump5$how.log" dump -t "$pid" --ppp "$S5"
	check "the dumped process is gone" wait_gone "$pid"
	opt=
	[ $how = eager ] && opt=--eager
	check "kup restore --ppp -d $opt with KUP_RESTORE_MEMORY=lazy" \
		eval 'KUP_CONFIG=$T/kup.conf kup_run "$T/restore5$how.log" restore --ppp "$S5" -d $opt'
	track "$pid"
	lz=$(lazy_pid "$T/restore5$how.log")
	if [ $how = config ]; then
		check "lazily (kup-lazy pid $lz), as the file says" [ -n "$lz" ]
		track "$lz"
		check "kup-lazy exits once the memory is in" wait_for "! alive $lz" 60
	else
		check "--eager wins: no kup-lazy" [ -z "$lz" ]
	fi
	check "the counter goes on" wait_for_line "$T/out5$how" "^C $(( $(line_field "$T/out5$how" '^C ' 2) + 3 )) " 10
	check "its memory as it was" request_check "$pid" "$T/out5$how"
	kill_tree "$pid"
	wait_gone "$pid"
done

# ---- a store on a block device (the pmem region's path: O_DIRECT reads) ------
if command -v losetup > /dev/null && truncate -s 160M "$T/backing" &&
   LOOP=$(losetup -f --show "$T/backing" 2> /dev/null); then
	at_exit "losetup -d $LOOP"
	check "kup ppp format $LOOP" kup_run "$T/fmt6.log" ppp format "$LOOP"
	pid=$(start_bg "$T/out6" "$PROGS/bigmem" 64)
	wait_for_line "$T/out6" '^READY' 120 || bail "bigmem did not start"
	sum=$(awk '/^SUM/ { print $2; exit }' "$T/out6")
	check "kup dump --ppp $LOOP" kup_run "$T/dump6.log" dump -t "$pid" --ppp "$LOOP"
	check "the dumped process is gone" wait_gone "$pid"
	check "kup restore --ppp $LOOP --lazy -d" kup_run "$T/restore6.log" restore --ppp "$LOOP" --lazy -d
	track "$pid"
	lz=$(lazy_pid "$T/restore6.log")
	[ -n "$lz" ] && track "$lz"
	check "kup-lazy exits once every page is in" wait_for "! alive $lz" 120
	check "the same checksum ($sum)" \
		eval 'request_check $pid "$T/out6" 120 | grep -q "sum=$sum holes=zero"'
	check "the store is scrubbed" eval '! store_has_ckpt "$LOOP"'
	kill_tree "$pid"
	wait_gone "$pid"
else
	note "no loop device: the block device store is not tried"
fi

# ---- a store of several trees (kept units): each part lazily on its own ------
# Three trees in one store, each restored by a command of its own as each
# unit's start does: the first lazily with its background pass held, the
# second eagerly while the first's kup-lazy still reads the store (its part
# is dropped later, by kup-drop), the third lazily (its restore must not
# wait for the first's fill: kup-lazy lets go of the parts lock).  Once
# every page is in, every part leaves and the store is scrubbed.
S7=$T/store7.ppp
check "kup ppp format $S7 --size 200M" kup_run "$T/fmt7.log" ppp format "$S7" --size 200M
declare -A P7 SUM7
for k in a b c; do
	P7[$k]=$(start_bg "$T/out7$k" "$PROGS/bigmem" 32)
done
for k in a b c; do
	wait_for_line "$T/out7$k" '^READY' 120 || bail "bigmem $k did not start"
	SUM7[$k]=$(awk '/^SUM/ { print $2; exit }' "$T/out7$k")
done
check "kup dump of three trees into one store" \
	kup_run "$T/dump7.log" dump -t "${P7[a]}" -t "${P7[b]}" -t "${P7[c]}" --ppp "$S7"
check "the dumped processes are gone" eval 'wait_gone ${P7[a]} && wait_gone ${P7[b]} && wait_gone ${P7[c]}'
check "tree a: kup restore -t --lazy -d (background pass held)" \
	held_restore "$T/go7" "$T/restore7a.log" restore --ppp "$S7" -t "${P7[a]}" --lazy -d
track "${P7[a]}"
lza=$(lazy_pid "$T/restore7a.log")
[ -n "$lza" ] && track "$lza"
check "... it runs, served by kup-lazy (pid $lza)" eval 'alive ${P7[a]} && [ -n "$lza" ] && alive $lza'
check "... its part stays in the store while its memory is not in" \
	eval '"$KUP" ppp ls "$S7" | grep -q "p1/"'
check "tree b: kup restore -t --eager -d returns while a's memory is still read" \
	kup_run "$T/restore7b.log" restore --ppp "$S7" -t "${P7[b]}" --eager -d
track "${P7[b]}"
check "... saying its part is dropped once that is done" \
	eval 'grep -q "part p2 is dropped from it once that is done" "$T/restore7b.log" ||
	      { sed "s/^/#   /" "$T/restore7b.log"; false; }'
drop=$(pgrep -x kup-drop | head -n 1)
[ -n "$drop" ] && track "$drop"
check "... by a kup-drop process (pid $drop)" [ -n "$drop" ]
check "tree b's memory, every word" \
	eval 'request_check ${P7[b]} "$T/out7b" 120 | grep -q "sum=${SUM7[b]} holes=zero"'
check "tree c: kup restore -t --lazy -d does not wait for a's fill" \
	eval 'KUP_TIMEOUT=60 held_restore "$T/go7" "$T/restore7c.log" restore --ppp "$S7" -t "${P7[c]}" --lazy -d'
track "${P7[c]}"
lzc=$(lazy_pid "$T/restore7c.log")
[ -n "$lzc" ] && track "$lzc"
check "... it runs, served by kup-lazy (pid $lzc)" eval 'alive ${P7[c]} && [ -n "$lzc" ] && alive $lzc'
check "the store still holds the parts whose memory is not in" store_has_ckpt "$S7"
touch "$T/go7"
check "both kup-lazy exit once their memory is in" wait_for "! alive $lza && ! alive $lzc" 120
check "kup-drop exits once it could drop b's part" wait_for "! alive $drop" 30
check "then the store is scrubbed (no part left)" wait_for '! store_has_ckpt "$S7"' 30
for k in a b c; do
	check "tree $k runs on, its memory as dumped (sum ${SUM7[$k]})" \
		eval 'request_check ${P7[$k]} "$T/out7$k" 120 | grep -q "sum=${SUM7[$k]} holes=zero"'
	check "... no ERROR line" [ "$(lines_count "$T/out7$k" ERROR)" = 0 ]
	kill_tree "${P7[$k]}"
	wait_gone "${P7[$k]}"
done

# ---- KUP_RESTORE_MEMORY=lazy: a store of two trees, in one command ------------
S8=$T/store8.ppp
check "kup ppp format $S8 --size 64M" kup_run "$T/fmt8.log" ppp format "$S8" --size 64M
p1=$(start_bg "$T/out8a" "$PROGS/counter")
p2=$(start_bg "$T/out8b" "$PROGS/counter")
wait_for_line "$T/out8a" '^C 3 ' 30 && wait_for_line "$T/out8b" '^C 3 ' 30 || bail "counters did not start"
check "kup dump -t $p1 -t $p2 --ppp" kup_run "$T/dump8.log" dump -t "$p1" -t "$p2" --ppp "$S8"
check "the dumped processes are gone" eval 'wait_gone $p1 && wait_gone $p2'
printf 'KUP_RESTORE_MEMORY=lazy\n' > "$T/kup8.conf"
check "kup restore -d with KUP_RESTORE_MEMORY=lazy restores both" \
	eval 'KUP_CONFIG=$T/kup8.conf kup_run "$T/restore8.log" restore --ppp "$S8" -d'
track "$p1"
track "$p2"
check "... lazily: two kup-lazy" [ "$(grep -cE 'pid [0-9]+ \(kup-lazy\)' "$T/restore8.log")" = 2 ]
for l in $(grep -oE 'pid [0-9]+ \(kup-lazy\)' "$T/restore8.log" | awk '{ print $2 }'); do
	track "$l"
	check "kup-lazy $l exits once the memory is in" wait_for "! alive $l" 60
done
check "the store is scrubbed" wait_for '! store_has_ckpt "$S8"' 30
for p in "$p1:$T/out8a" "$p2:$T/out8b"; do
	check "counter ${p%%:*} goes on, its memory as it was" request_check "${p%%:*}" "${p#*:}"
done

# ---- a part damaged while its tree runs lazily: the part is marked failed ----
# (a store of two trees; the other part stays restorable, the failed one is
# not tried again by a boot's restore, as after an eager restore that failed)
S9=$T/store9.ppp
check "kup ppp format $S9 --size 160M" kup_run "$T/fmt9.log" ppp format "$S9" --size 160M
q1=$(start_bg "$T/out9a" "$PROGS/bigmem" 48)
q2=$(start_bg "$T/out9b" "$PROGS/counter")
wait_for_line "$T/out9a" '^READY' 120 && wait_for_line "$T/out9b" '^C 3 ' 30 || bail "bigmem/counter did not start"
check "kup dump -t $q1 -t $q2 --ppp" kup_run "$T/dump9p.log" dump -t "$q1" -t "$q2" --ppp "$S9"
check "the dumped processes are gone" eval 'wait_gone $q1 && wait_gone $q2'
check "kup restore -t $q1 --lazy -d (background pass held)" \
	held_restore "$T/go9p" "$T/restore9p.log" restore --ppp "$S9" -t "$q1" --lazy -d
pid=$q1
track_restored "$T/restore9p.log"
damage_blob "$S9" "pages-$q1.img"
touch "$T/go9p"
check "the tree is killed when the damaged page is reached" wait_gone "$q1" 60
check "kup-lazy exits too" wait_for "! alive $lz" 60
check "... its part is kept, marked failed" \
	grep -q "the part of the tree of pid $q1 is kept, marked failed" "$T/restore9p.log" ||
	note "$(tail -n 5 "$T/restore9p.log")"
check "a boot's restore (--if-any) restores the other part only" \
	eval 'kup_run "$T/ri9.log" restore --ppp "$S9" -d --if-any && alive $q2 && ! alive $q1'
track "$q2"
kill_tree "$q2"
