#!/bin/bash
# Signal and timer state comes back: handlers with their flags and masks
# (SA_RESTART, SA_SIGINFO, SA_ONSTACK; a SIGTRAP handler too, which a trap
# injected while the signals are blocked would reset), the alternate signal stack, the
# blocked mask, pending signals (queued RT signals with their values, a
# thread-directed one, a periodic ITIMER_REAL expired with its SIGALRM
# blocked), ITIMER_VIRTUAL, POSIX timers with their ids, intervals and
# remaining times.  Handlers fire after the restore, on the alternate stack,
# and the pending signals arrive, in order, once unblocked.
. "$(dirname "$0")/../lib.sh"

pid=$(start_bg "$T/out" "$PROGS/sigstate")
wait_for_line "$T/out" '^READY' || bail "sigstate did not start"
kill -USR2 "$pid"
check "its self-check passes before the dump" request_check "$pid" "$T/out"
check "SIGUSR2 ran once, on the alternate stack" grep -q '^CHECK 1 OK .*usr2=1 usr2_from=[0-9]* usr2_onstack=1 ' "$T/out"

masks() { grep -E '^(SigPnd|ShdPnd|SigBlk|SigIgn|SigCgt):' /proc/$1/status; }
# /proc/PID/timers, one line per timer, in id order.
# the masks as before: a handled, unblocked signal (timer A's, every 150 ms)
# may be pending for an instant on a loaded machine, so look a few times
same_masks() { diff <(echo "$before") <(masks "$pid") > /dev/null; }
timers() { awk '/^ID:/ { if (t) print t; t = $0; next } { t = t " " $0 } END { if (t) print t }' /proc/$1/timers | sort; }
before=$(masks "$pid")
timers_before=$(timers "$pid")
note "$before"$'\n'"$timers_before"

sleep 0.4	# the self-check wants timer A (150 ms) to fire between two checks
check "kup dump --leave-running" kup_run "$T/lr.log" dump -t "$pid" -D "$T/img-lr" --leave-running
check "... leaves every handler (SIGTRAP's too, which runs) and mask as they were" \
	request_check "$pid" "$T/out"
check "... and the masks as they were" wait_for same_masks 3 || note "$(masks "$pid")"
sleep 0.4

dump_and_restore "$pid" "$T/img" || exit 1
check "pending, blocked, ignored and caught signal sets are the same" \
	wait_for same_masks 3 || note "$(masks "$pid")"
check "the POSIX timers are the same (ids, signals, clocks)" \
	diff <(echo "$timers_before") <(timers "$pid")
sleep 0.4	# the self-check wants timer A (150 ms) to fire between two checks
check "its self-check passes: handlers, altstack, masks, pending signals, itimers, POSIX timers still firing" \
	request_check "$pid" "$T/out"
sleep 0.4	# the self-check wants timer A (150 ms) to fire between two checks
kill -USR2 "$pid"
check "SIGUSR2 sent after the restore runs its handler, on the alternate stack, with our pid" \
	eval 'request_check "$pid" "$T/out" | grep -q " usr2=2 usr2_from=$$ usr2_onstack=2 "'
kill -TERM "$pid"
check "once unblocked: both queued SIGRTMIN+1 in order with their values, SIGWINCH, SIGALRM every 10 ms" \
	wait_for_line "$T/out" '^FINAL OK' 10
check "the process exits after its final check" wait_gone "$pid"
check "no ERROR or FAIL line" [ "$(lines_count "$T/out" 'ERROR|FAIL')" = 0 ]
