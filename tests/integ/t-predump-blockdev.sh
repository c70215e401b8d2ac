#!/bin/bash
# kup dump --pre-dump into a store on a block device (here a loop device; in
# the lab /dev/pmem0): page images are streamed there with O_DIRECT, and the
# pre-dump writes them ahead while the tree runs, so that the frozen pass
# writes only the pages written since the last round, in place, and sums
# again only the pieces and extents holding them.  tests/progs/dirtier keeps
# rewriting its memory, each page stamped with a generation its table
# records: after the restore every page holds the generation the table says
# (a page written after the last round and not written into the image would
# hold an older one, and `kup ppp verify` catches an extent summed from
# other bytes than the store's).  A kup killed after the images were
# written ahead leaves the previous checkpoint intact.
. "$(dirname "$0")/../lib.sh"
require_root
command -v losetup > /dev/null || skip_all "no losetup"

MB=${PREDUMP_MB:-128}

truncate -s $((MB * 5 + 64))M "$T/backing" || skip_all "no space for the backing file"
LOOP=$(losetup -f --show "$T/backing" 2> /dev/null) || skip_all "cannot set up a loop device"
at_exit 'losetup -d "$LOOP"'
check "kup ppp format $LOOP" kup_run "$T/fmt.log" ppp format "$LOOP"
check "the store is a block device (page images streamed)" \
	eval 'kup_try ppp status "$LOOP" --json | grep -q "\"backend\": \"block device\""'

# frozen_writes LOG PID: "<written> <total>": the pages the frozen pass wrote
# into PID's image written ahead, and the pages of that image
frozen_writes() {
	local w t
	w=$(sed -nE "s/.*pid $2: ([0-9]+) pages written into its page image at the freeze.*/\1/p" "$1")
	t=$(sed -nE "s/.*pid $2: [0-9]+ of ([0-9]+) pages from the pre-dump.*/\1/p" "$1")
	echo "${w:-none} ${t:-none}"
}

# --- the pre-dump writes the images ahead; the freeze writes what changed ------
pid=$(start_bg "$T/out" "$PROGS/dirtier" "$MB" 2 4000)
wait_for_line "$T/out" '^READY' 60 || bail "dirtier did not start"
check "kup dump --ppp $LOOP --pre-dump=3" \
	kup_run "$T/dump.log" dump -t "$pid" --ppp "$LOOP" --pre-dump=3 ||
	note "$(tail -n 20 "$T/dump.log")"
note "$(grep -E 'pre-dump|pages' "$T/dump.log")"
check "the page images were written ahead into the block device" \
	grep -q 'pre-dump: page images written ahead' "$T/dump.log"
read -r written total <<< "$(frozen_writes "$T/dump.log" "$pid")"
check "the frozen pass wrote some pages into the image written ahead ($written of $total)" \
	eval '[ "$written" != none ] && [ "$written" -gt 0 ]'
# the dirtier writes 4000 pages a second: far fewer than the image's
# ($MB MiB) between the last round and the commit
check "... only those written since the last round, not the whole image" \
	eval '[ "$written" != none ] && [ "$total" != none ] && [ $((written * 4)) -lt "$total" ]'
check "... at least every page read at the freeze" \
	eval 'r=$(sed -nE "s/.*pid $pid: [0-9]+ of [0-9]+ pages from the pre-dump, ([0-9]+) read now.*/\1/p" "$T/dump.log"); [ -n "$r" ] && [ "$written" -ge "$r" ]'
check "the tree is gone" wait_gone "$pid"
check "kup ppp verify passes (every extent's checksum matches the store's bytes)" \
	kup_run "$T/verify.log" ppp verify "$LOOP" || note "$(cat "$T/verify.log")"
check "kup restore --ppp $LOOP -d" kup_run "$T/restore.log" restore --ppp "$LOOP" -d ||
	note "$(tail -n 20 "$T/restore.log")"
track "$pid"
check "every page holds the generation its table says after the restore" \
	request_check "$pid" "$T/out" 60
check "no ERROR line" [ "$(lines_count "$T/out" ERROR)" = 0 ]

# --- the same with soft-dirty bits (kernels without PAGEMAP_SCAN: Debian's 6.1) --
# nothing is injected into the tree before the freeze there: the page of
# code the frozen dump's syscalls are run from (copied on write then) must
# be in the image written ahead already, or every page after it moves
pid2=$(start_bg "$T/out2" "$PROGS/dirtier" "$MB" 2 4000)
wait_for_line "$T/out2" '^READY' 60 || bail "dirtier did not start"
KUP_TEST_PREDUMP_SOFT_DIRTY=1 kup_run "$T/dump2sd.log" dump -t "$pid2" --ppp "$LOOP" --pre-dump=3
rc=$?
if grep -q 'nor soft-dirty bits' "$T/dump2sd.log"; then
	# (the dump went on without a pre-dump: it restores as any other)
	ok "# SKIP soft-dirty: this kernel has no soft-dirty bits (CONFIG_MEM_SOFT_DIRTY)"
else
	check "soft-dirty: kup dump --pre-dump=3" [ $rc = 0 ] || note "$(tail -n 20 "$T/dump2sd.log")"
	note "$(grep -E 'pre-dump|pages' "$T/dump2sd.log")"
	read -r written total <<< "$(frozen_writes "$T/dump2sd.log" "$pid2")"
	check "soft-dirty: the frozen pass wrote only the pages written since ($written of $total)" \
		eval '[ "$written" != none ] && [ "$written" -gt 0 ] && [ $((written * 4)) -lt "$total" ]'
fi
check "soft-dirty: kup ppp verify passes" kup_run "$T/verify2sd.log" ppp verify "$LOOP"
check "soft-dirty: kup restore" kup_run "$T/restore2sd.log" restore --ppp "$LOOP" -d ||
	note "$(tail -n 20 "$T/restore2sd.log")"
track "$pid2"
check "soft-dirty: every page holds its generation after the restore" \
	request_check "$pid2" "$T/out2" 60
kill_tree "$pid2"

# --- kup killed after the images were written ahead ---------------------------
# a checkpoint of the tree left running stays the store's (its blobs
# untouched: the images written ahead are in free space until a commit that
# never comes)
check "kup dump --ppp --leave-running (the checkpoint to keep)" \
	kup_run "$T/dump1.log" dump -t "$pid" --ppp "$LOOP" --leave-running ||
	note "$(tail -n 20 "$T/dump1.log")"
check "... kup ppp verify passes" kup_run "$T/verify1.log" ppp verify "$LOOP"
gen1=$(kup_try ppp status "$LOOP" --json | sed -nE 's/.*"generation": "?([0-9]+)"?.*/\1/p' | head -n 1)
# (held once the images are written ahead: the kill comes before any commit)
KUP_TEST_PREDUMP_HOLD=$T/never "$KUP" dump -t "$pid" --ppp "$LOOP" --pre-dump=100 --leave-running \
	> "$T/dump2.log" 2>&1 &
KP=$!
wait_for_line "$T/dump2.log" 'pre-dump: page images written ahead' 120
if kill -9 "$KP" 2> /dev/null; then
	wait "$KP" 2> /dev/null
	kup_try recover > "$T/recover.log" 2>&1
	check "after kill -9 of kup: kup ppp verify passes" \
		kup_run "$T/verify2.log" ppp verify "$LOOP" || note "$(cat "$T/verify2.log")"
	gen2=$(kup_try ppp status "$LOOP" --json | sed -nE 's/.*"generation": "?([0-9]+)"?.*/\1/p' | head -n 1)
	check "... the previous checkpoint is the store's (generation $gen1, now $gen2)" \
		eval 'kup_try ppp ls "$LOOP" | grep -q "pages-$pid.img" && [ -n "$gen1" ] && [ "$gen1" = "$gen2" ]'
	check "... the tree runs on, every page holds its generation" \
		request_check "$pid" "$T/out" 60
else
	wait "$KP"
	note "kup ended before it could be killed (exit $?): nothing to check"
	ok "# SKIP kup killed after the images were written ahead"
	ok "# SKIP ... the previous checkpoint"
	ok "# SKIP ... the tree"
fi
kill_tree "$pid"
