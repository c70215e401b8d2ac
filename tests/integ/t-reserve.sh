#!/bin/bash
# Huge reservations with few pages (MariaDB reserves 8 TiB): an 8 TiB
# PROT_NONE MAP_NORESERVE reservation with 100 MiB made read-write and
# written, a 1 TiB read-write MAP_NORESERVE mapping with a page per GiB, pages
# in a mapping made PROT_NONE, and an 8 TiB PROT_NONE reservation.  After
# dump, kill and restore every word is as written, each mapping has its own
# range, protection and MAP_NORESERVE ("nr"), and the images hold the pages
# that exist, not the address space.  Then the same without PAGEMAP_SCAN (as
# on kernels before 6.7, where the pages are read from /proc/PID/pagemap):
# the reservations without pages are passed over, not read page by page.  (Mapped writable and accounted, the
# reservations fail with ENOMEM under the default overcommit heuristic.)
. "$(dirname "$0")/../lib.sh"
require_root

pid=$(start_bg "$T/out" "$PROGS/reserve")
wait_for_line "$T/out" '^C 2 ' 60 || bail "reserve did not start: $(head -n 3 "$T/out")"
read -r A B C D sum <<< "$(sed -n 's/^READY [0-9]* A=\([0-9a-f]*\) B=\([0-9a-f]*\) C=\([0-9a-f]*\) D=\([0-9a-f]*\) sum=\([0-9a-f]*\)/\1 \2 \3 \4 \5/p' "$T/out")"

# the mappings inside the four areas: range, protection, MAP_NORESERVE or not
areas() {
	local r p f s
	awk '/^[0-9a-f]+-[0-9a-f]+ / { r = $1; p = $2 } /^VmFlags/ { print r, p, / nr/ ? "nr" : "-" }' \
		/proc/$1/smaps | while read -r r p f; do
		s=$((16#${r%%-*}))
		if { [ $s -ge $((16#$A)) ] && [ $s -lt $((16#$A + (8 << 40))) ]; } ||
		   { [ $s -ge $((16#$B)) ] && [ $s -lt $((16#$B + (1 << 40))) ]; } ||
		   { [ $s -ge $((16#$C)) ] && [ $s -lt $((16#$C + 65536)) ]; } ||
		   { [ $s -ge $((16#$D)) ] && [ $s -lt $((16#$D + (8 << 40))) ]; }; then
			echo "$r $p $f"
		fi
	done
}
# the mapping that holds address $2
holding() {
	local r p f
	while read -r r p f; do
		[ $((16#$2)) -ge $((16#${r%%-*})) ] && [ $((16#$2)) -lt $((16#${r##*-})) ] &&
			{ echo "$r $p $f"; return; }
	done < "$1"
}
areas "$pid" > "$T/maps.before"
check "the used part of the reservation is read-write, MAP_NORESERVE" \
	eval '[[ "$(holding "$T/maps.before" "$A")" == *" rw-p nr" ]]'
check "the rest of it PROT_NONE, MAP_NORESERVE" \
	eval '[[ "$(holding "$T/maps.before" "$(printf %x $((16#$A + (8 << 40) - 4096)))")" == *" ---p nr" ]]'
check "the other 8 TiB PROT_NONE, not MAP_NORESERVE" \
	eval '[[ "$(holding "$T/maps.before" "$D")" == *" ---p -" ]]'
check "the PROT_NONE pages are PROT_NONE" eval '[[ "$(holding "$T/maps.before" "$C")" == *" ---p -" ]]'

check "its check passes before the dump" request_check "$pid" "$T/out" 60

DR_LOG=$T/out dump_and_restore "$pid" "$T/img" || { note "$(cat "$T/maps.before")"; exit 1; }
bytes=$(du -sb "$T/img" | cut -f1)
check "the images hold the pages that exist ($bytes bytes for 104 MiB written)" \
	[ "$bytes" -lt $(( (104 << 20) + (16 << 20) )) ]
areas "$pid" > "$T/maps.after"
check "each mapping has its range, protection and MAP_NORESERVE as before" \
	diff "$T/maps.before" "$T/maps.after"
check "the 8 TiB reservation is still PROT_NONE and MAP_NORESERVE" \
	eval '[[ "$(holding "$T/maps.after" "$(printf %x $((16#$A + (8 << 40) - 4096)))")" == *" ---p nr" ]]'
check "every word as written, the PROT_NONE pages too (sum $sum)" request_check "$pid" "$T/out" 60
check "with the sum from before the dump" grep -q "^CHECK 2 OK sum=$sum" "$T/out"
last=$(head -n "$DR_LINES" "$T/out" | awk '$1 == "C" { v = $2 } END { print v }')
check "the count goes on from $last" wait_for_line "$T/out" "^C $((last + 5)) " 10
check "every value once, in order, same pid" counter_continues "$T/out" "$pid" "$DR_LINES" 5
check "no ERROR line" [ "$(lines_count "$T/out" ERROR)" = 0 ]

# without PAGEMAP_SCAN: smaps says which mappings have no page; reading the
# 16 TiB of reservations from pagemap would take minutes
last=$(awk '$1 == "C" { v = $2 } END { print v }' "$T/out")
wait_for_line "$T/out" "^C $((last + 2)) " 10
rm -rf "$T/img"
KUP_TEST_NO_PAGEMAP_SCAN=1 DR_LOG=$T/out dump_and_restore "$pid" "$T/img" -v || exit 1
read_pm=$(grep -c 'from its pagemap, page by page' "$T/dump.log")
# the largest mapping read so: the 1 TiB one with a page per GiB, not one
# of the 8 TiB reservations without a page
largest=$(grep -o '0x[0-9a-f]*-0x[0-9a-f]* from its pagemap' "$T/dump.log" |
	awk -F'[- ]' '{ s = strtonum($2) - strtonum($1); if (s > m) m = s } END { printf "%d", m / 2^30 }')
check "without PAGEMAP_SCAN: $read_pm mappings read from pagemap, the largest $largest GiB (not an 8 TiB reservation)" \
	eval '[ "$read_pm" -gt 0 ] && [ "$largest" -le 1024 ]'
bytes=$(du -sb "$T/img" | cut -f1)
check "... the images hold the pages that exist ($bytes bytes)" \
	[ "$bytes" -lt $(( (104 << 20) + (16 << 20) )) ]
areas "$pid" > "$T/maps.after2"
check "... each mapping has its range, protection and MAP_NORESERVE as before" \
	diff "$T/maps.before" "$T/maps.after2"
check "... every word as written (sum $sum)" request_check "$pid" "$T/out" 60
