#!/bin/bash
# A store file in hugetlbfs: huge pages reserved for the store
# (/proc/sys/vm/nr_hugepages), as a pmem region is reserved at boot.  No
# page cache, and no write(): the store writes every byte through its
# mapping, and kup dump reads the processes' pages straight into it.
#  - kup ppp format on a hugetlbfs mount: whole huge pages; with too few
#    free huge pages it fails, naming nr_hugepages, and leaves no store;
#  - kup ppp status says so (text and --json);
#  - kup dump --ppp of a counter holding 64 MiB, kup ppp verify, kup
#    restore --ppp: the counter goes on with the same memory, the store is
#    scrubbed after it (the huge pages stay the store's);
#  - again with --pre-dump (the image written ahead in place) and restored
#    with --lazy: its memory complete and the same;
#  - a byte of the page image damaged in the store: verify names the blob,
#    the restore is refused naming the page image, nothing runs, the
#    checkpoint stays.
. "$(dirname "$0")/../lib.sh"
require_root
grep -qw hugetlbfs /proc/filesystems || skip_all "no hugetlbfs in this kernel"
[ -w /proc/sys/vm/nr_hugepages ] || skip_all "cannot reserve huge pages here"

MB=64
HP=$T/hp
S=$HP/store.ppp
mkdir -p "$HP"
mount -t hugetlbfs -o pagesize=2M none "$HP" || skip_all "cannot mount hugetlbfs"
at_exit "umount '$HP'"
# reserve 96 huge pages (192 MiB) more than there are; given back at exit
old=$(cat /proc/sys/vm/nr_hugepages)
at_exit "echo $old > /proc/sys/vm/nr_hugepages"
free_hp() { awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo; }
echo $((old + 96)) > /proc/sys/vm/nr_hugepages
[ "$(free_hp)" -ge 96 ] || skip_all "could not reserve 96 huge pages (memory too fragmented)"

# flip_mapped FILE OFFSET: flip one byte through a shared mapping (hugetlbfs
# has no write(); flip twice to undo)
flip_mapped() {
	python3 -c '
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, os.fstat(fd).st_size)
o = int(sys.argv[2])
m[o] = m[o] ^ 0x5a
m.close()' "$1" "$2"
}
# restored_sum_ok PID OUT SUM: the process's own check gives SUM
restored_sum_ok() { request_check "$1" "$2" | grep -q " sum=$3"; }

plan 25

# ---- format --------------------------------------------------------------------
check_fails "kup ppp format of more than the free huge pages fails" \
	kup_try ppp format "$HP/big.ppp" --size $((($(free_hp) + 8) * 2))M
check "... naming nr_hugepages" grep -q "nr_hugepages" "$T/err"
check "... and leaves no store file" [ ! -e "$HP/big.ppp" ]
check "kup ppp format $S --size 161M (whole huge pages: 160 MiB)" \
	kup_run "$T/fmt.log" ppp format "$S" --size 161M
check "... of 160 MiB" eval '[ "$(stat -c %s "$S")" = $((160 << 20)) ]'
check "kup ppp status says the store is in hugetlbfs" \
	grep -q "in hugetlbfs" <("$KUP" ppp status "$S")
check "... and so does its --json" grep -q '"hugetlbfs": true' <("$KUP" ppp status "$S" --json)

# ---- eager dump and restore --------------------------------------------------
pid=$(start_bg "$T/out" "$PROGS/counter" -m $MB)
wait_for_line "$T/out" '^C 3 ' 30 || bail "counter -m $MB did not start"
sum=$(line_field "$T/out" '^MEM ' 2)
check "kup dump -t $pid --ppp (hugetlbfs store)" kup_run "$T/dump.log" dump -t "$pid" --ppp "$S" ||
	note "$(tail -n 5 "$T/dump.log")"
check "the dumped process is gone" wait_gone "$pid"
check "kup ppp verify passes" kup_run "$T/verify.log" ppp verify "$S"
n=$(line_field "$T/out" '^C [0-9]' 2)
check "kup restore --ppp -d" kup_run "$T/restore.log" restore --ppp "$S" -d ||
	note "$(tail -n 5 "$T/restore.log")"
check "the counter goes on from where it was dumped" wait_for_line "$T/out" "^C $((n + 3)) " 10
check "its $MB MiB are the same (its own check: sum $sum)" restored_sum_ok "$pid" "$T/out" "$sum"
check "the store was scrubbed after the restore" eval '! store_has_ckpt "$S"'
check "the store keeps its huge pages (160 MiB allocated)" \
	eval '[ $(($(stat -c %b "$S") * $(stat -c %B "$S"))) = $((160 << 20)) ]'

# ---- pre-dump, lazy restore ------------------------------------------------------
check "kup dump --pre-dump into the scrubbed store" \
	kup_run "$T/dump2.log" dump -t "$pid" --ppp "$S" --pre-dump
check "the dumped process is gone" wait_gone "$pid"
n=$(line_field "$T/out" '^C [0-9]' 2)
check "kup restore --ppp -d --lazy" kup_run "$T/restore2.log" restore --ppp "$S" -d --lazy ||
	note "$(tail -n 5 "$T/restore2.log")"
check "the counter goes on" wait_for_line "$T/out" "^C $((n + 3)) " 10
check "its memory comes in whole and the same (sum $sum)" \
	wait_for 'restored_sum_ok "$pid" "$T/out" "$sum"' 30

# ---- a damaged page image is refused -----------------------------------------
check "kup dump --leave-running" kup_run "$T/dump3.log" dump -t "$pid" --ppp "$S" --leave-running
kill_tree "$pid"
wait_gone "$pid"
off=$(store_blob_offset "$S" "pages-$pid.img")
flip_mapped "$S" $((off + (5 << 20) + 100))
check_fails "kup ppp verify fails on a byte damaged in the page image" kup_try ppp verify "$S"
check "... naming the blob" grep -q "pages-$pid.img" "$T/err"
check_fails "kup restore --ppp refuses the damaged store" kup_try restore --ppp "$S" -d
check "... naming the page image; nothing runs, the checkpoint stays" \
	eval 'grep -q "pages-$pid" "$T/err" && ! alive $pid && store_has_ckpt "$S"'
