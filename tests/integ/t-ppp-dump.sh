#!/bin/bash
# Checkpoints in the persistent page store, file backend (what the lab does
# on /dev/pmem0 across a kexec, here on one kernel): kup dump --ppp FILE,
# kup ppp verify, kup restore --ppp FILE; the counter continues with its
# memory unchanged, the store is scrubbed after a restore unless --keep.
# A corrupted store is refused (nothing restored, nothing scrubbed), a dump
# that does not fit leaves the tree running and the previous checkpoint
# intact, and a dump whose command is killed with SIGKILL publishes nothing
# and leaves the tree running (its worker aborts; t-dump-abort.sh has more).
. "$(dirname "$0")/../lib.sh"

S=$T/store.ppp
MB=64

check "kup ppp format $S --size 160M" kup_run "$T/fmt.log" ppp format "$S" --size 160M

# ---- dump, verify, restore --keep --------------------------------------------
pid=$(start_bg "$T/out" "$PROGS/counter" -m $MB)
wait_for_line "$T/out" '^C 3 ' 30 || bail "counter -m $MB did not start"
sum=$(line_field "$T/out" '^MEM ' 2)
check "kup dump -t $pid --ppp (file store)" kup_run "$T/dump.log" dump -t "$pid" --ppp "$S" ||
	note "$(cat "$T/dump.log")"
check "the dumped process is gone" wait_gone "$pid"
check "kup ppp verify passes" kup_run "$T/verify.log" ppp verify "$S"
check "the store lists the images and a page blob of at least $MB MiB" \
	eval '[ "$("$KUP" ppp ls "$S" --json | python3 -c "
import json, sys
print(max(int(b[\"size\"]) for b in json.load(sys.stdin) if b[\"name\"] == \"pages-$pid.img\"))")" -ge $((MB << 20)) ]'
n=$(wc -l < "$T/out")
check "kup restore --ppp --keep -d" kup_run "$T/restore.log" restore --ppp "$S" --keep -d ||
	note "$(cat "$T/restore.log")"
track "$pid"
check "pid $pid is back" alive "$pid"
last=$(head -n "$n" "$T/out" | awk '$1 == "C" { v = $2 } END { print v }')
check "it counts on from $last" wait_for_line "$T/out" "^C $((last + 5)) " 10
check "every value once, in order, same pid" counter_continues "$T/out" "$pid" "$n" 5
check "its $MB MiB of memory has the same sum ($sum)" \
	eval 'request_check $pid "$T/out" | grep -q "sum=$sum"'
check "--keep: the checkpoint is still in the store" store_has_ckpt "$S"
kill_tree "$pid"
wait_gone "$pid"

# ---- default restore scrubs --------------------------------------------------
check "restore --ppp again (same images), without --keep" \
	kup_run "$T/restore2.log" restore --ppp "$S" -d
track "$pid"
check "pid $pid is back again" alive "$pid"
check "the store was scrubbed: no checkpoint" eval '! store_has_ckpt "$S"'
check "and its data area is zeroed" \
	eval '[ "$(tail -c +8193 "$S" | tr -d "\0" | head -c 1 | wc -c)" = 0 ]'
check_fails "a restore from the scrubbed store fails" kup_try restore --ppp "$S" -d
check "it says the store holds no checkpoint" grep -q "no checkpoint" "$T/err"
kill_tree "$pid"
wait_gone "$pid"

# ---- a corrupted store is refused, and left as it is ---------------------------
pid=$(start_bg "$T/out3" "$PROGS/counter" -m 8)
wait_for_line "$T/out3" '^C 2 ' 30 || bail "counter did not start"
check "dump --leave-running into the store" kup_run "$T/dump3.log" dump -t "$pid" --ppp "$S" --leave-running
kill_tree "$pid"
check "the process is killed" wait_gone "$pid"
off=$(store_blob_offset "$S" "pages-$pid.img")
check "found pages-$pid.img in the store (offset ${off:-?})" [ -n "$off" ]
flip_byte "$S" $((off + 5000))
check_fails "kup ppp verify fails on the flipped byte" kup_try ppp verify "$S"
check "it names the blob and the extent" grep -q "pages-$pid.img.*extent" "$T/err"
check_fails "kup restore --ppp refuses the corrupted store" kup_try restore --ppp "$S" -d
check "it names the page image" grep -q "pages-$pid" "$T/err"
check "nothing was restored: pid $pid is not there" eval '! alive $pid'
check "the store was not scrubbed (the checkpoint is still there)" store_has_ckpt "$S"
# the image is written into the task a 2 MiB range at a time on two CPUs:
# damage in a later range fails it the same
flip_byte "$S" $((off + 5000))	# put it back
flip_byte "$S" $((off + (7 << 20) + 5000))
check_fails "kup restore --ppp refuses a byte damaged at 7 MiB of the page image" \
	kup_try restore --ppp "$S" -d
check "it names the page image and where it is damaged" \
	grep -qE "pages-$pid.img(: the piece at offset $((7 << 20)):|' extent 7/)" "$T/err"
check "nothing was restored: pid $pid is not there" eval '! alive $pid'
check "the store was not scrubbed (the checkpoint is still there)" store_has_ckpt "$S"

# ---- a dump that does not fit --------------------------------------------------
flip_byte "$S" $((off + (7 << 20) + 5000))	# put it back
check "the flip undone: verify passes" kup_run "$T/v4.log" ppp verify "$S"
gen=$("$KUP" ppp status "$S" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])')
big=$(start_bg "$T/out4" "$PROGS/counter" -m 200)
wait_for_line "$T/out4" '^C 2 ' 60 || bail "counter -m 200 did not start"
check_fails "dump of 200 MiB into a 160 MiB store fails" kup_try dump -t "$big" --ppp "$S"
check "it says there is no room" grep -qi "no room\|no space" "$T/err"
check "the tree is left running" not_frozen "$big"
check "and passes its self-check" request_check "$big" "$T/out4"
check "the store still verifies" kup_run "$T/v5.log" ppp verify "$S"
check "the previous checkpoint (generation $gen) is still there" \
	eval 'store_has_ckpt "$S" && "$KUP" ppp status "$S" --json | grep -q "\"generation\": \"$gen\""'

# ---- a dump killed by SIGKILL publishes nothing --------------------------------
check "scrub the store" kup_run "$T/scrub.log" ppp scrub "$S"
check "restore the store's size to hold 200 MiB: format 400M" kup_run "$T/fmt2.log" ppp format "$S" --size 400M
"$KUP" dump -t "$big" --ppp "$S" > "$T/dump5.log" 2>&1 &
kp=$!
# as soon as the tree is frozen (kup has its transaction open and is about
# to copy 200 MiB): a tight loop, no process per poll
for ((i = 0; i < 20000; i++)); do
	st=$(< /proc/$big/status) || break
	[[ $st == *$'State:\tt'* ]] && break
done
kill -KILL "$kp"
wait "$kp" 2>/dev/null
krc=$?
check "kup was killed in the middle of the dump (status $krc)" [ "$krc" = 137 ]
check "its worker aborts the dump and is gone" wait_for "! pgrep -f -- ' dump -t $big ' > /dev/null" 20
check "it says the tree was left running" grep -q "tree left running, nothing written" "$T/dump5.log"
check "the killed dump left no checkpoint" eval '! store_has_ckpt "$S"'
check "kup ppp verify: the store is sound" kup_run "$T/v6.log" ppp verify "$S"
check_fails "kup restore --ppp refuses it" kup_try restore --ppp "$S" -d
check "the service survived the killed dump: it is running" not_frozen "$big"
c=$(line_field "$T/out4" '^C ' 2)
check "and keeps counting" wait_for_line "$T/out4" "^C $((c + 3)) " 10
check "with its memory intact" request_check "$big" "$T/out4"
kill_tree "$big"

# ---- the scrub wipes what was written since the last one (the data mark) --------
# Two dumps of different sizes (the second, larger one lands past the mark the
# first raised), a restore: its scrub wipes up to the mark, says how much, and
# the whole data area reads as zeros.  A fresh store file: its mark is known.
M=$T/mark.ppp
check "kup ppp format $M --size 256M" kup_run "$T/fmt-m.log" ppp format "$M" --size 256M
check "a fresh store: nothing written yet" eval '"$KUP" ppp status "$M" | grep -q "written:      up to offset 8192 "'
pid=$(start_bg "$T/out-m1" "$PROGS/counter" -m 4)
wait_for_line "$T/out-m1" '^C 2 ' 30 || bail "counter -m 4 did not start"
check "dump a 4 MiB counter into $M (--leave-running)" \
	kup_run "$T/dump-m1.log" dump -t "$pid" --ppp "$M" --leave-running
kill_tree "$pid"
wait_gone "$pid"
mark1=$("$KUP" ppp status "$M" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["data_mark"])')
check "the first dump raised the mark (to $mark1)" [ "${mark1:-0}" -gt 8192 ]
pid=$(start_bg "$T/out-m2" "$PROGS/counter" -m 150)
wait_for_line "$T/out-m2" '^C 2 ' 60 || bail "counter -m 150 did not start"
check "dump a 150 MiB counter into $M" kup_run "$T/dump-m2.log" dump -t "$pid" --ppp "$M"
check "the dumped process is gone" wait_gone "$pid"
mark2=$("$KUP" ppp status "$M" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["data_mark"])')
check "the larger dump raised the mark past 150 MiB ($mark1 -> $mark2)" \
	[ "${mark2:-0}" -gt $((150 << 20)) ]
check "kup restore --ppp $M -d (scrubs)" kup_run "$T/restore-m.log" restore --ppp "$M" -d ||
	note "$(cat "$T/restore-m.log")"
track "$pid"
check "pid $pid is back" alive "$pid"
line=$(grep -o "scrubbed ([0-9]* ms, [0-9]* MiB wiped)" "$T/restore-m.log")
note "restore: ${line:-no scrub line}"
wiped=$(echo "$line" | sed -n 's/.* \([0-9]*\) MiB wiped.*/\1/p')
check "the restore logs the scrub's time and size: $(( (mark2 - 8192 + (1 << 20) - 1) >> 20 )) MiB (up to the mark)" \
	[ "${wiped:-x}" = "$(( (mark2 - 8192 + (1 << 20) - 1) >> 20 ))" ]
check "the whole data area of $M reads as zeros" \
	cmp -s <(tail -c +8193 "$M") <(head -c $(( (256 << 20) - 8192 )) /dev/zero)
check "the mark is back at the start of the data area" \
	eval '"$KUP" ppp status "$M" --json | grep -q "\"data_mark\": \"8192\""'
check "a second scrub has nothing to wipe" \
	eval '"$KUP" ppp scrub "$M" | grep -q "wiped 0 bytes"'
check "kup ppp verify $M" kup_run "$T/verify-m.log" ppp verify "$M"
kill_tree "$pid"
wait_gone "$pid"
rm -f "$M"

# ---- usage ---------------------------------------------------------------------
check_fails "-D and --ppp together are refused" kup_try dump -t 1 -D "$T/x" --ppp "$S"
check "... with a message" grep -q "exclude" "$T/err"
: > "$T/notastore"
truncate -s 1M "$T/notastore"
check_fails "restore --ppp from a file that is not a store" kup_try restore --ppp "$T/notastore"
check "it names the file" grep -q "$T/notastore" "$T/err"
check_fails "--keep without --ppp is refused" kup_try restore -D "$T/x" --keep

# ---- a block device store (a loop device here, /dev/pmem0 in the lab) ------------
# Page images are streamed to and from the device with O_DIRECT there.
truncate -s 120M "$T/backing"
if LOOP=$(losetup -f --show "$T/backing" 2>/dev/null); then
	at_exit "losetup -d $LOOP"
	check "kup ppp format $LOOP" kup_run "$T/fmt3.log" ppp format "$LOOP"
	pid=$(start_bg "$T/out6" "$PROGS/counter" -m $MB)
	wait_for_line "$T/out6" '^C 3 ' 30 || bail "counter did not start"
	sum=$(line_field "$T/out6" '^MEM ' 2)
	check "kup dump --ppp $LOOP" kup_run "$T/dump6.log" dump -t "$pid" --ppp "$LOOP"
	check "the dumped process is gone" wait_gone "$pid"
	check "kup ppp verify $LOOP" kup_run "$T/v7.log" ppp verify "$LOOP"
	n=$(wc -l < "$T/out6")
	check "kup restore --ppp $LOOP -d" kup_run "$T/restore6.log" restore --ppp "$LOOP" -d ||
		note "$(cat "$T/restore6.log")"
	track "$pid"
	check "pid $pid is back and counts on" wait_for_line "$T/out6" "^C $(( $(head -n "$n" "$T/out6" | awk '$1 == "C" { v = $2 } END { print v }') + 5 )) " 10
	check "every value once, in order" counter_continues "$T/out6" "$pid" "$n" 5
	check "its $MB MiB have the same sum ($sum)" eval 'request_check $pid "$T/out6" | grep -q "sum=$sum"'
	kill_tree "$pid"
	wait_gone "$pid"
	# a flipped byte in the middle of a page image read with O_DIRECT
	pid=$(start_bg "$T/out7" "$PROGS/counter" -m 16)
	wait_for_line "$T/out7" '^C 2 ' 30 || bail "counter did not start"
	check "dump --leave-running to $LOOP" kup_run "$T/dump7.log" dump -t "$pid" --ppp "$LOOP" --leave-running
	kill_tree "$pid"
	wait_gone "$pid"
	off=$(store_blob_offset "$LOOP" "pages-$pid.img")
	printf 'Z' | dd of="$LOOP" bs=1 seek=$((off + 3 * 1048576 + 17)) conv=notrunc,fsync status=none
	blockdev --flushbufs "$LOOP"
	check_fails "restore from the device with a flipped byte fails" kup_try restore --ppp "$LOOP" -d
	check "it names the page image and the extent" grep -q "pages-$pid.img.*extent 3" "$T/err"
	check "nothing was restored" eval '! alive $pid'
else
	note "no loop device: block device part skipped"
fi
