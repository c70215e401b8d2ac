#!/bin/bash
# A 64 MiB private region asked for transparent huge pages (MADV_HUGEPAGE)
# comes back in huge pages (AnonHugePages of its mapping above 0), with its
# contents, where THP is "madvise" or "always".
. "$(dirname "$0")/../lib.sh"
require_root
grep -qE '\[(madvise|always)\]' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null ||
	skip_all "transparent huge pages are off here"
plan 8

pid=$(start_bg "$T/out" "$PROGS/thp")
wait_for_line "$T/out" '^READY' 60 || bail "thp did not start"
area=$(line_field "$T/out" '^AREA ' 2)
# huge KIB: AnonHugePages (kB) of the mapping holding the area
huge() {
	awk -v a="$area" '
		/^[0-9a-f]+-[0-9a-f]+ / { split($1, r, "-"); in_it = (strtonum("0x" r[1]) <= strtonum("0x" a) && strtonum("0x" a) < strtonum("0x" r[2])) }
		in_it && /^AnonHugePages:/ { print $2 }' /proc/$1/smaps
}
note "before: $(huge "$pid") kB AnonHugePages"
check "before: the area is in huge pages" [ "$(huge "$pid")" -gt 0 ]
check "its contents check" request_check "$pid" "$T/out" 60
dump_and_restore "$pid" "$T/img" || exit 1
note "after: $(huge "$pid") kB AnonHugePages"
check "after the restore: the area is in huge pages again" [ "$(huge "$pid")" -gt 0 ]
check "its contents check after the restore" request_check "$pid" "$T/out" 60
