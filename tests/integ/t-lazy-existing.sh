#!/bin/bash
# Tests of other kinds of state run again with kup restore --lazy (their
# memory filled after the tree runs): the counter continues, threads keep
# their state, the bytes in full pipes arrive in order, a TCP connection
# stays up, a tree sharing pages copy-on-write shares them again, 256 MiB
# keep their checksum.  Each test as it is, through $KUP_RESTORE_OPTS
# (tests/lib.sh dump_and_restore).
. "$(dirname "$0")/../lib.sh"

dir=$(dirname "$0")
for t in t-counter t-threads t-pipes t-sk-tcp-live t-cow t-memory; do
	BIGMEM_MB=256 KUP_RESTORE_OPTS=--lazy bash "$dir/$t.sh" > "$T/$t.out" 2>&1
	status=$?
	# a failure before its first restore says nothing of --lazy (a
	# timing of its own on a loaded machine): once more
	if [ $status != 0 ] && ! grep -q '^ok .*kup restore' "$T/$t.out"; then
		note "$t failed before any restore: $(grep -m1 '^not ok' "$T/$t.out"); once more"
		BIGMEM_MB=256 KUP_RESTORE_OPTS=--lazy bash "$dir/$t.sh" > "$T/$t.out" 2>&1
		status=$?
	fi
	n=$(grep -c '^ok ' "$T/$t.out")
	check "$t with --lazy: $n checks pass (exit status $status)" \
		eval "[ $status = 0 ] && ! grep -q '^not ok' '$T/$t.out' && [ $n -gt 0 ]" ||
		note "$(grep -E '^not ok|^#' "$T/$t.out" | head -n 20)"
	if grep -q "^# SKIP" "$T/$t.out"; then
		note "$t: $(grep -m1 '^# SKIP' "$T/$t.out")"
	fi
done
