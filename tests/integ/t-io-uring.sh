#!/bin/bash
# io_uring is refused (docs/design.md, "io_uring"), before anything is
# frozen: a process whose io worker thread is blocked in a read of a FIFO
# (IORING_OP_READ with IOSQE_ASYNC) makes the dump fail at once, naming the
# pid, its io_uring fd and its iou-wrk thread; the process was never
# stopped, counts on, and its read completes when the FIFO gets data.  A
# ring whose fd was closed is found by its mappings.
. "$(dirname "$0")/../lib.sh"
require_root

mkfifo "$T/fifo"
pid=$(start_bg "$T/out" "$PROGS/iouring" "$T/fifo")
wait_for_line "$T/out" '^C 3 ' || bail "iouring did not start"
grep -q '^ERROR' "$T/out" && skip_all "$(grep '^ERROR' "$T/out")"
ring=$(sed -n 's/^SUBMITTED fd=//p' "$T/out")
wait_for "grep -q '^iou-wrk' /proc/$pid/task/*/comm" 10 ||
	bail "no io worker thread for the pending read"
wrk=$(grep -l '^iou-wrk' /proc/$pid/task/*/comm | head -n 1 | cut -d/ -f5)

KUP_TIMEOUT=60 check_fails "kup dump refuses io_uring" kup_try dump -t "$pid" -D "$T/img"
check "naming the pid and its io_uring fd" \
	grep -q "pid $pid: uses io_uring (fd $ring anon_inode:\[io_uring\]" "$T/err"
check "and its io worker thread (tid $wrk)" grep -q "io worker threads tid $wrk (iou-wrk-$pid)" "$T/err"
check "no image was left" eval '[ ! -e "$T/img/inventory.img" ]'
check "the process is neither stopped nor traced" not_frozen "$pid"
n=$(lines_count "$T/out" '^C ')
check "it counts on" wait_for "[ \$(lines_count '$T/out' '^C ') -gt $((n + 3)) ]" 10
check "its count never skipped or repeated" counter_continues "$T/out" "$pid" 0 0
echo "across the refused dump" > "$T/fifo"
check "its pending read completes with what the FIFO got" \
	wait_for_line "$T/out" '^READ 24 across the refused dump' 10
check "no ERROR line" [ "$(lines_count "$T/out" ERROR)" = 0 ]
kill_tree "$pid"

# the ring's fd closed: its mappings and its worker name it
mkfifo "$T/fifo2"
pid=$(start_bg "$T/out2" "$PROGS/iouring" -c "$T/fifo2")
wait_for_line "$T/out2" '^C 3 ' || bail "iouring -c did not start"
check "the ring has no fd" eval '! ls -l /proc/$pid/fd | grep -q io_uring'
KUP_TIMEOUT=60 check_fails "kup dump refuses the ring without an fd" kup_try dump -t "$pid" -D "$T/img2"
check "naming its mapped rings" grep -q "pid $pid: uses io_uring (io worker threads tid [0-9]* (iou-wrk-$pid); its rings mapped)" "$T/err"
check "the process is neither stopped nor traced" not_frozen "$pid"
echo "closed ring" > "$T/fifo2"
check "its pending read completes" wait_for_line "$T/out2" '^READ 12 closed ring' 10
