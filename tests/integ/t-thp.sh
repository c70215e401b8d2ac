#!/bin/bash
# Private memory that was in transparent huge pages at dump comes back in
# huge pages (AnonHugePages of its mapping above half its size), with its
# contents checked by the program itself:
#  - 128 MiB asked for with MADV_HUGEPAGE, eager restore;
#  - the same, lazy (--lazy) with the background pass held: the faults of
#    the program's own check fill 2 MiB at a time and kup-lazy collapses
#    each extent; then the rest, and kup-lazy exits;
#  - 64 MiB in huge pages without the advice (collapsed by the program with
#    MADV_COLLAPSE, as THP "always" or khugepaged leave it), eager and lazy:
#    huge again, and no MADV_HUGEPAGE advice it never gave; with only its
#    first half huge, only that half comes back huge (not every extent);
#  - huge mappings moved, unmapped, dropped and forked while kup-lazy still
#    fills them: the right contents in parent and child.
# Needs THP "madvise" or "always" (MADV_COLLAPSE, Linux 6.1+, for the last).
. "$(dirname "$0")/../lib.sh"
require_root
grep -qE '\[(madvise|always)\]' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null ||
	skip_all "transparent huge pages are off here ($(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null))"
plan 52

# huge PID AREA: AnonHugePages (kB) of the mapping of PID holding AREA
huge() {
	awk -v a="$2" '
		/^[0-9a-f]+-[0-9a-f]+ / { split($1, r, "-"); in_it = (strtonum("0x" r[1]) <= strtonum("0x" a) && strtonum("0x" a) < strtonum("0x" r[2])) }
		in_it && /^AnonHugePages:/ { print $2 }' /proc/$1/smaps
}
# advised PID AREA: the mapping holding AREA has the "hg" VmFlag
advised() {
	awk -v a="$2" '
		/^[0-9a-f]+-[0-9a-f]+ / { split($1, r, "-"); in_it = (strtonum("0x" r[1]) <= strtonum("0x" a) && strtonum("0x" a) < strtonum("0x" r[2])) }
		in_it && /^VmFlags:/ && / hg( |$)/ { f = 1 }
		END { exit !f }' /proc/$1/smaps
}
lazy_pid() { grep -oE 'pid [0-9]+ \(kup-lazy\)' "$1" | awk '{ print $2 }'; }

# start NAME MIB MODE: the program, huge before the dump; sets pid, area, sum
start() {
	pid=$(start_bg "$T/out-$1" "$PROGS/thp" "$2" "$3")
	wait_for_line "$T/out-$1" '^READY' 120 || bail "thp did not start"
	grep -q '^NOCOLLAPSE' "$T/out-$1" && skip_all "MADV_COLLAPSE refused here"
	area=$(line_field "$T/out-$1" '^AREA ' 2)
	check "$1: before the dump, $(huge "$pid" "$area") kB of $2 MiB in huge pages" \
		[ "$(huge "$pid" "$area")" -gt 0 ]
	sum=$(request_check "$pid" "$T/out-$1" 60 | sed -n 's/.*sum=//p')
}

# restored NAME MIB: contents (read by the program: in a lazy restore, its
# faults bring the pages) and huge pages after the restore
restored() {
	thp_out=$T/out-$1
	check "$1: every byte as written (sum $sum)" \
		eval 'request_check $pid "$thp_out" 120 | grep -q "sum=$sum"'
	note "$1: $(huge "$pid" "$area") kB in huge pages after the restore"
	check "$1: more than half of the $2 MiB in huge pages again" \
		[ "$(huge "$pid" "$area")" -gt $(($2 * 1024 / 2)) ]
}

# ---- MADV_HUGEPAGE, eager --------------------------------------------------------
start advise-eager 128 advise
dump_and_restore "$pid" "$T/img1" || exit 1
restored advise-eager 128
kill_tree "$pid"
wait_gone "$pid"

# ---- MADV_HUGEPAGE, lazy: the faults fill 2 MiB extents -----------------------------
start advise-lazy 128 advise
check "kup dump" kup_run "$T/dump2.log" dump -t "$pid" -D "$T/img2"
check "the dumped process is gone" wait_gone "$pid"
check "kup restore --lazy -d (background pass held)" \
	eval 'KUP_LAZY_HOLD=$T/go2 kup_run "$T/restore2.log" restore -D "$T/img2" --lazy -d -v' ||
	note "$(tail -n 20 "$T/restore2.log")"
track "$pid"
lz=$(lazy_pid "$T/restore2.log")
[ -n "$lz" ] && track "$lz"
check "pid $pid runs, lazily (kup-lazy pid $lz)" eval 'alive $pid && [ -n "$lz" ]'
check "its huge mapping was not filled before it ran ($(huge "$pid" "$area") kB huge)" \
	[ "$(huge "$pid" "$area")" -lt $((128 * 1024 / 4)) ]
restored advise-lazy 128
touch "$T/go2"
check "kup-lazy exits once the rest is in" wait_for "! alive $lz" 120
check "and says the extents were collapsed" \
	grep -qE '[1-9][0-9]* extents of 2 MiB collapsed' "$T/restore2.log"
check "the contents still check" request_check "$pid" "$T/out-advise-lazy" 120
kill_tree "$pid"
wait_gone "$pid"

# ---- huge pages without the advice (MADV_COLLAPSE), eager ----------------------------
start collapse-eager 64 collapse
check "collapse-eager: its mapping has no MADV_HUGEPAGE advice" eval '! advised $pid $area'
dump_and_restore "$pid" "$T/img3" || exit 1
restored collapse-eager 64
check "collapse-eager: still no MADV_HUGEPAGE advice after the restore" eval '! advised $pid $area'
kill_tree "$pid"
wait_gone "$pid"

# ---- only half of it in huge pages: only that half comes back huge -------------------
# (the dump maps which 2 MiB extents were huge pages from /proc/kpageflags)
start half 64 half
check "half: about half of it in huge pages before the dump ($(huge "$pid" "$area") kB)" \
	eval '[ $(huge $pid $area) -le $((64 * 1024 * 3 / 4)) ]'
dump_and_restore "$pid" "$T/img6" || exit 1
note "half: $(huge "$pid" "$area") kB in huge pages after the restore"
check "half: about half of it in huge pages again, not all of it" \
	eval 'h=$(huge $pid $area); [ $h -ge $((64 * 1024 / 4)) ] && [ $h -le $((64 * 1024 * 3 / 4)) ]'
check "half: every byte as written (sum $sum)" \
	eval 'request_check $pid "$T/out-half" 120 | grep -q "sum=$sum"'
kill_tree "$pid"
wait_gone "$pid"

# ---- the same, lazy ----------------------------------------------------------------
start collapse-lazy 64 collapse
check "kup dump" kup_run "$T/dump4.log" dump -t "$pid" -D "$T/img4"
check "the dumped process is gone" wait_gone "$pid"
check "kup restore --lazy -d" kup_run "$T/restore4.log" restore -D "$T/img4" --lazy -d -v ||
	note "$(tail -n 20 "$T/restore4.log")"
track "$pid"
lz=$(lazy_pid "$T/restore4.log")
[ -n "$lz" ] && track "$lz"
check "pid $pid runs, lazily (kup-lazy pid $lz)" eval 'alive $pid && [ -n "$lz" ]'
check "kup-lazy exits once every page is in" wait_for "! alive $lz" 120
restored collapse-lazy 64
check "collapse-lazy: no MADV_HUGEPAGE advice after the restore" eval '! advised $pid $area'
kill_tree "$pid"
wait_gone "$pid"

# ---- huge mappings that change shape while their pages still come ------------------
# (mremap, munmap, MADV_DONTNEED, a fork: tests/progs/lazyops, as in t-lazy)
pid=$(start_bg "$T/out5" "$PROGS/lazyops" 16 huge)
wait_for_line "$T/out5" '^READY' 60 || bail "lazyops did not start"
check "lazyops huge: its regions in huge pages before the dump" \
	eval "awk '/^AnonHugePages:/ { s += \$2 } END { exit !(s >= 4 * 16384 / 2) }' /proc/$pid/smaps"
check "kup dump" kup_run "$T/dump5.log" dump -t "$pid" -D "$T/img5"
check "the dumped process is gone" wait_gone "$pid"
check "kup restore --lazy -d (background pass held)" \
	eval 'KUP_LAZY_HOLD=$T/go5 kup_run "$T/restore5.log" restore -D "$T/img5" --lazy -d' ||
	note "$(tail -n 20 "$T/restore5.log")"
track "$pid"
lz=$(lazy_pid "$T/restore5.log")
[ -n "$lz" ] && track "$lz"
kill -USR1 "$pid"
check "mremap, munmap, MADV_DONTNEED, then a fork: child and parent read it right" \
	wait_for_line "$T/out5" '^OPS child=OK self=OK' 60
touch "$T/go5"
check "kup-lazy exits once the rest is in" wait_for "! alive $lz" 60
kill -USR2 "$pid"
check "the moved pages where they went, the dropped ones zero, once all is in" \
	wait_for_line "$T/out5" '^CHECK 1 OK' 60
check "no ERROR, no FAIL" [ "$(lines_count "$T/out5" 'ERROR|FAIL')" = 0 ]
kill_tree "$pid"
wait_gone "$pid"
