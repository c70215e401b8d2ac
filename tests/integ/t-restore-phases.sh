#!/bin/bash
# kup restore -v says how long each phase of the restore took, and where
# the pages' time went (docs/lab.md, "Where a restore's time goes"): one
# line per phase, in order, each with its duration, and the pages' line
# with the MiB written, which is the counter's memory.
. "$(dirname "$0")/../lib.sh"

pid=$(start_bg "$T/out" "$PROGS/counter" -m 16 -i 100)
wait_for_line "$T/out" '^C 3 ' 60 || bail "the counter did not start"
before=$(lines_count "$T/out" '^C ')
check "kup dump -t $pid" kup_run "$T/dump.log" dump -t "$pid" -D "$T/img" ||
	{ note "$(tail -n 20 "$T/dump.log")"; exit 1; }
check "the dumped counter is gone" wait_gone "$pid"
check "kup restore -d -v" kup_run "$T/restore.log" restore -D "$T/img" -d -v ||
	{ note "$(tail -n 20 "$T/restore.log")"; exit 1; }
track "$pid"
phases=$(sed -n 's/.*debug: restore: \([a-z].*[a-z]\)  *[0-9][0-9.]* ms$/\1/p' "$T/restore.log" |
	 paste -sd '|')
note "phases: $phases"
check "a line with its duration for each phase, in order" \
	[ "$phases" = "images loaded and checked|pids held and free|files and objects made|memory images opened|processes created|memory and state in place|completed and let go" ]
check "the pages' line: 16 MiB and more read, checked and written, each with its time" \
	grep -qE 'debug: restore:   pages: (1[6-9]|[2-9][0-9])\.[0-9] MiB; read [0-9.]+ ms, checksum [0-9.]+ ms, written into the tasks [0-9.]+ ms( \(two CPUs: times summed\))?$' "$T/restore.log"
check "the counter goes on" wait_for "counter_continues '$T/out' $pid $before 3" 60
check "no ERROR line" [ "$(lines_count "$T/out" ERROR)" = 0 ]
