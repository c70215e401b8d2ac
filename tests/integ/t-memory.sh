#!/bin/bash
# 1 GiB of anonymous memory, three quarters written with a pattern, a quarter
# never touched (holes): after restore the checksum of the whole region is
# the same, every word is as written, the holes still read zero and take no
# memory (RSS as before), and the images hold no pages for the holes.
. "$(dirname "$0")/../lib.sh"

size=${BIGMEM_MB:-1024}
pid=$(start_bg "$T/out" "$PROGS/bigmem" "$size")
wait_for_line "$T/out" '^READY' 120 || bail "bigmem did not start"
sum=$(awk '/^SUM/ { print $2; exit }' "$T/out")
touched=$(grep -o 'touched_pages=[0-9]*' "$T/out" | head -n 1 | cut -d= -f2)
check "its check before the dump reads every word (sum $sum)" request_check "$pid" "$T/out" 120
rss() { awk '/^VmRSS:/ { print $2 }' /proc/$1/status; }
rss_before=$(rss "$pid")

dump_and_restore "$pid" "$T/img" || exit 1
bytes=$(du -sb "$T/img" | cut -f1)
check "the images hold no pages for the holes ($bytes bytes for $touched touched pages)" \
	[ "$bytes" -lt $(( (touched + 4096) * 4096 )) ]
check "every word as written and the holes zero after the restore" request_check "$pid" "$T/out" 120
check "the checksum of the whole region is the one from before the dump ($sum)" \
	grep -q "^CHECK 2 OK sum=$sum holes=zero" "$T/out"
rss_after=$(rss "$pid")
check "RSS as before: the holes take no memory ($rss_before kB before, $rss_after kB after)" \
	eval '[ "$rss_after" -gt $((rss_before - rss_before / 20)) ] && [ "$rss_after" -lt $((rss_before + rss_before / 20 + 16384)) ]'
check "no ERROR line" [ "$(lines_count "$T/out" ERROR)" = 0 ]
