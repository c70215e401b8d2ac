#!/bin/bash
# Private memory shared copy-on-write between a parent and its child after
# fork (32 MiB, of which the child rewrote 1 MiB and dropped 64 KiB with
# MADV_DONTNEED, zeros for it since) comes back with the right
# contents in both, and shared again (docs/design.md, "Copy-on-write
# between processes"): the child's image holds only the pages it had of
# its own, and after the restore the two map the same page frames for the
# pages they shared.
. "$(dirname "$0")/../lib.sh"
require_root
plan 18

pid=$(start_bg "$T/out" "$PROGS/cowtree")
wait_for_line "$T/out" '^READY' 60 || bail "cowtree did not start"
area=$(line_field "$T/out" '^AREA ' 2)
c=$(line_field "$T/out" '^PID C ' 3)
# shared: how many of the area's 8192 pages the two map to the same frame
shared() {
	python3 - "$pid" "$c" "$area" <<'PY'
import struct, sys
def pfns(pid, start):
    with open(f"/proc/{pid}/pagemap", "rb") as f:
        f.seek(start // 4096 * 8)
        d = f.read(8192 * 8)
    return [e & ((1 << 55) - 1) if e >> 63 else None for e in struct.unpack(f"{len(d)//8}Q", d)]
a, b = pfns(int(sys.argv[1]), int(sys.argv[3], 16)), pfns(int(sys.argv[2]), int(sys.argv[3], 16))
print(sum(1 for x, y in zip(a, b) if x is not None and x == y))
PY
}
n=$(shared)
note "before: $n pages shared"
check "before: most of the area is shared (7920 pages of 8192)" [ "$n" -ge 7000 ]
check "contents check" request_check "$pid" "$T/out" 60
# the dump reads shared pages without pinning them (a pin would give the
# pinning process its own copy): a tree left running still shares them
check "kup dump --leave-running" kup_run "$T/dump0.log" dump -t "$pid" -D "$T/img0" --leave-running
n=$(shared)
note "after a dump that left the tree running: $n pages shared"
check "the tree left running still shares the area" [ "$n" -ge 7000 ]
dump_and_restore "$pid" "$T/img" || exit 1
# the 1 MiB it rewrote, its stack and libraries' data: not the 31 MiB shared
csize=$(stat -c %s "$T/img/pages-$c.img")
note "the child's pages image: $csize bytes"
check "the child's image holds only its own pages" [ "$csize" -lt $((8 << 20)) ]
check "the shared pages are said to be its parent's" \
	eval '"$KUP" show "$T/img/mm-$c.img" | grep -q "^  cow_runs:"'
check "after the restore: parent and child each see their own contents" request_check "$pid" "$T/out" 60
n=$(shared)
note "after: $n pages shared"
check "after the restore: the area is shared again" [ "$n" -ge 7000 ]

# again through the persistent page store (file backend): its page images
# are read piece by piece (the stub's pages, the shared ones of a mapping
# rebuilt at the takeover), not mapped
check "kup ppp format" kup_run "$T/fmt.log" ppp format "$T/store.ppp" --size 160M
check "kup dump --ppp" kup_run "$T/dump2.log" dump -t "$pid" --ppp "$T/store.ppp" ||
	note "$(tail -n 20 "$T/dump2.log")"
check "the dumped tree is gone" eval 'wait_gone "$pid" && wait_gone "$c"'
check "kup restore --ppp -d" kup_run "$T/restore2.log" restore --ppp "$T/store.ppp" -d ||
	note "$(tail -n 20 "$T/restore2.log")"
track "$pid"
check "after the second restore: parent and child each see their own contents" \
	request_check "$pid" "$T/out" 60
n=$(shared)
note "after the second restore: $n pages shared"
check "after the second restore: the area is shared again" [ "$n" -ge 7000 ]
