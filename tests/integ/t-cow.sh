#!/bin/bash
# Private memory shared copy-on-write between a parent and its child after
# fork (32 MiB, of which the child rewrote 1 MiB and dropped 64 KiB with
# MADV_DONTNEED, zeros for it since) comes back with the right
# contents in both, and shared again (docs/design.md, "Copy-on-write
# between processes"): the child's image holds only the pages it had of
# its own, and after the restore the two map the same page frames for the
# pages they shared.  Then mappings whose bounds changed after the fork
# (cowbounds: the parent's grown below, shrunk at its head and split by
# mprotect, the child's grown in place, shrunk at its head and split): the
# pages still shared come back shared too, each process with its own layout.
. "$(dirname "$0")/../lib.sh"
require_root
plan 35

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

# ---- mappings of other bounds in the parent and the child -----------------
bpid=$(start_bg "$T/bout" "$PROGS/cowbounds")
wait_for_line "$T/bout" '^READY' 60 || bail "cowbounds did not start"
bc=$(line_field "$T/bout" '^PID C ' 3)
# area_shared K: how many of area K's 1024 pages the two map to the same frame
area_shared() {
	python3 - "$bpid" "$bc" "$(line_field "$T/bout" "^AREA $1 " 3)" <<'PY'
import struct, sys
def pfns(pid, start):
    with open(f"/proc/{pid}/pagemap", "rb") as f:
        f.seek(start // 4096 * 8)
        d = f.read(1024 * 8)
    return [e & ((1 << 55) - 1) if e >> 63 else None for e in struct.unpack(f"{len(d)//8}Q", d)]
a, b = pfns(int(sys.argv[1]), int(sys.argv[3], 16)), pfns(int(sys.argv[2]), int(sys.argv[3], 16))
print(sum(1 for x, y in zip(a, b) if x is not None and x == y))
PY
}
all_shared() {
	local k n
	for k in 0 1 2 3 4 5; do
		n=$(area_shared $k)
		echo "area $k: $n pages shared"
		[ "$n" -ge 900 ] || return 1
	done
}
# anon_layout PID: its anonymous mappings, adjacent ones of the same
# permissions joined (how the kernel splits them is its own business)
anon_layout() {
	python3 - /proc/$1/maps <<'PY'
import sys
out = []
for line in open(sys.argv[1]):
    f = line.split(maxsplit=5)
    if len(f) > 5:
        continue
    lo, hi = (int(x, 16) for x in f[0].split("-"))
    if out and out[-1][1] == lo and out[-1][2] == f[1]:
        out[-1][1] = hi
    else:
        out.append([lo, hi, f[1]])
for lo, hi, perm in out:
    print("%x-%x %s" % (lo, hi, perm))
PY
}
check "other bounds, before: every area is shared (900 of its 1024 pages)" all_shared
check "other bounds: contents check" request_check "$bpid" "$T/bout" 60
lay_p=$(anon_layout "$bpid")
lay_c=$(anon_layout "$bc")
dump_and_restore "$bpid" "$T/bimg" || exit 1
check "other bounds, after the restore: parent and child each see their own contents" \
	request_check "$bpid" "$T/bout" 60
bsize=$(stat -c %s "$T/bimg/pages-$bc.img")
note "the child's pages image: $bsize bytes"
check "other bounds: the child's image holds only its own pages" [ "$bsize" -lt $((2 << 20)) ]
for k in 0 1 2 3 4 5; do
	n=$(area_shared $k)
	note "area $k after: $n pages shared"
	check "other bounds, after: area $k is shared again" [ "$n" -ge 900 ]
done
check "other bounds: the parent's layout is the same" diff <(echo "$lay_p") <(anon_layout "$bpid")
check "other bounds: the child's layout is the same" diff <(echo "$lay_c") <(anon_layout "$bc")
a2=$((0x$(line_field "$T/bout" '^AREA 2 ' 3)))
check "the child's grown area is one mapping again" \
	grep -q "^$(printf '%x-%x' $a2 $((a2 + (4 << 20) + (64 << 10)))) " /proc/$bc/maps
