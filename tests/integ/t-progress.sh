#!/bin/bash
# A progress line for the memory of long dumps and restores, on a terminal
# only: "kup dump: memory N/M MiB (P%), R MiB/s, S s left", ending with the
# whole size and the time; nothing of it when stderr is a file or with
# KUP_PROGRESS=never.  (KUP_PROGRESS=always shows it from the start instead
# of after a second, so that this test does not depend on speed.)
. "$(dirname "$0")/../lib.sh"
require_root
command -v script > /dev/null || skip_all "needs script (bsdutils)"
plan 7

pid=$(start_bg "$T/out" "$PROGS/counter" -m 256)
wait_for_line "$T/out" '^C 3 ' 60 || bail "counter -m 256 did not start"
# on a terminal (script gives kup a pty)
KUP_PROGRESS=always script -qec "'$KUP' dump -t $pid -D '$T/img' --leave-running" /dev/null \
	> "$T/tty.log" 2>&1
check "dump on a terminal: a progress line" grep -qaE 'kup dump: memory [0-9]+/[0-9]+ MiB \([0-9]+%\), [0-9]+ MiB/s' "$T/tty.log" ||
	note "$(tr '\r' '\n' < "$T/tty.log" | tail -n 5)"
check "... ending with the size dumped and the time" \
	grep -qaE 'kup dump: memory (2[5-9][0-9])/[0-9]+ MiB \(100%\), [0-9]+ MiB/s, [0-9.]+ s' "$T/tty.log"
check "... redrawn in place (carriage returns)" grep -qa $'\r' "$T/tty.log"
rm -rf "$T/img"
KUP_PROGRESS=always "$KUP" dump -t "$pid" -D "$T/img" --leave-running > "$T/file.log" 2>&1
check "into a file: no progress line" eval "! grep -qa 'MiB/s' '$T/file.log'"
rm -rf "$T/img"
KUP_PROGRESS=never script -qec "'$KUP' dump -t $pid -D '$T/img'" /dev/null > "$T/never.log" 2>&1
check "KUP_PROGRESS=never: none on a terminal either" eval "! grep -qa 'MiB/s' '$T/never.log'"
wait_gone "$pid"
KUP_PROGRESS=always script -qec "'$KUP' restore -D '$T/img' -d" /dev/null > "$T/rst.log" 2>&1
track "$pid"
check "restore on a terminal: a progress line up to the whole image" \
	grep -qaE 'kup restore: memory [0-9]+/[0-9]+ MiB \(100%\)' "$T/rst.log" ||
	note "$(tr '\r' '\n' < "$T/rst.log" | tail -n 5)"
check "the counter goes on" eval 'n=$(lines_count "$T/out" "^C "); wait_for "[ \$(lines_count $T/out \"^C \") -gt \$((n + 2)) ]" 10'
