#!/bin/bash
# 1 GiB of anonymous memory with untouched holes: the checksum of the whole
# region is the same after restore, holes still read zero and were not saved.
. "$(dirname "$0")/../lib.sh"

size=${BIGMEM_MB:-1024}
pid=$(start_bg "$T/out" "$PROGS/bigmem" "$size")
wait_for_line "$T/out" '^READY' 120 || exit 1
sum=$(awk '/^SUM/ { print $2; exit }' "$T/out")
touched=$(grep -o 'touched_pages=[0-9]*' "$T/out" | head -1 | cut -d= -f2)
check "dump of $size MiB" "$KUP" dump -t "$pid" -D "$T/img"
pages=$(stat -c %s "$T/img/pages-$pid.img")
check "holes are not saved (page image $pages bytes for $touched touched pages)" \
	[ "$pages" -lt $(( (touched + 4096) * 4096 )) ]
wait_gone "$pid" 30
check "restore" "$KUP" restore -D "$T/img" -d
track "$pid"
kill -USR1 "$pid"
wait_for_line "$T/out" '^CHECK 1 ' 120
check "checksum identical after restore ($sum) and holes zero" grep -q "^CHECK 1 OK sum=$sum holes=zero" "$T/out"
