#!/bin/bash
# A stopped task and its pending signals across dump, kill and restore, and
# across a refused dump.  S is in a group stop (SIGSTOP) with pending
# signals: blocked ones (three SIGRTMIN+2 with the values 1, 2, 3 and a
# SIGUSR2), unblocked ones a stopped task only takes when continued
# (SIGWINCH, SIGRTMIN+3 with value 7) and SIGSTOPs sent while it was stopped,
# to the process and to the thread (SIGSTOP cannot be blocked: the dump's
# injected syscalls meet it).  Its sibling R runs; their parent takes a
# stream of SIGHUPs and of queued SIGRTMIN+5 during the dump.
# 1. A dump refused for another reason (R holds /dev/kmsg) leaves S stopped
#    with exactly the same pending and blocked sets, R running, the parent's
#    SIGRTMIN+5s all taken, each one.
# 2. Dump, kill, restore: S is stopped again with the same sets and does not
#    run before it is continued; R counts on; after SIGCONT, S takes every
#    signal, the SIGRTMIN+2 values in order.
# 3. A stopped process with five threads comes back with all five stopped,
#    running nothing until continued.
# 4. A SIGSTOP sent while kup drives the tree (KUP_FAULT_STOP_IN_SYSCALL,
#    ckpt-core/puppet.c: at the entry stop of one of kup's injected
#    syscalls, as an admin's kill -STOP could come) is not lost: after
#    dump --leave-running (with --pre-dump too), after a dump refused, and
#    after a restore, the
#    process is stopped, untraced, and counts on once continued.
. "$(dirname "$0")/../lib.sh"
require_root
plan 52

masks() { grep -E '^(SigPnd|ShdPnd|SigBlk|SigIgn|SigCgt):' /proc/$1/status; }
# hup_storm PID: SIGHUP to PID in a loop until $T/stop-hups exists.
hup_storm() {
	while [ ! -e "$T/stop-hups" ]; do kill -HUP "$1" 2>/dev/null || break; done
}

# --- 1. refused ---------------------------------------------------------------
pid=$(start_bg "$T/out1" "$PROGS/stopsig" /dev/kmsg)
wait_for_line "$T/out1" '^READY' || bail "stopsig did not start"
s=$(line_field "$T/out1" '^PID S ' 3)
r=$(line_field "$T/out1" '^PID R ' 3)
before=$(masks "$s")
note "S $s:"$'\n'"$before"
check "before: S stopped with SIGSTOP pending to it and to its thread" eval \
	'[ "$(proc_state $s)" = T ] && [ "$(masks $s | sed -n "s/^SigPnd:[[:space:]]*//p")" = 0000000000040000 ]'
rm -f "$T/stop-hups"
hup_storm "$pid" &
hp=$!
rt_storm RTMIN+5 "$pid" "$T/stop-hups" > "$T/rt.log" 2>&1 &
rp=$!
check_fails "kup dump refuses the tree (R holds /dev/kmsg)" kup_run "$T/dump1.log" dump -t "$pid" -D "$T/img1"
touch "$T/stop-hups"
wait "$hp"
wait "$rp"
nrt=$(cat "$T/rt.log")
note "$nrt SIGRTMIN+5 sent during the refused dump"
check "the parent took each of the $nrt real-time signals sent during the refused dump" \
	wait_for 'request_check "$pid" "$T/out1" | grep -q " rts=$nrt\$"' 20
check "the refusal names R's fd" grep -q "pid $r fd .*/dev/kmsg.*not supported" "$T/dump1.log"
check "S is still stopped, untraced" eval '[ "$(proc_state $s)" = T ] && grep -q "^TracerPid:[[:space:]]*0$" /proc/$s/status'
check "S's pending, blocked, ignored and caught sets are exactly as before" diff <(echo "$before") <(masks "$s")
check "R still runs" not_frozen "$r"
check "the parent's own check passes (S stopped, R running)" request_check "$pid" "$T/out1"
n=$(lines_count "$T/out1" '^R ')
check "R goes on counting" wait_for_line "$T/out1" "^R $n\$" 5
kill -CONT "$s"
check "continued, S takes all six signals" wait_for_line "$T/out1" '^S DONE 6$' 10
kill -TERM "$pid"
wait_for_line "$T/out1" '^FINAL OK' 5 > /dev/null

# expected: the SIGRTMIN+2 values in order, each other signal once
got() { awk '$1 == "S" && $2 == "GOT" { print $3, $4 }' "$1"; }
rt2=$(($(kill -l SIGRTMIN) + 2)) rt3=$(($(kill -l SIGRTMIN) + 3))
want_got() {
	[ "$(got "$1" | awk -v s=$rt2 '$1 == s { printf "%s ", $2 }')" = "1 2 3 " ] &&
		[ "$(got "$1" | sort | tr '\n' ' ')" = "$(printf '%s\n' "12 -1" "28 -1" "$rt2 1" "$rt2 2" \
			"$rt2 3" "$rt3 7" | sort | tr '\n' ' ')" ] || { got "$1"; return 1; }
}
check "S got exactly its pending signals with their values, SIGRTMIN+2 in order" want_got "$T/out1"

# --- 2. dump, kill, restore ---------------------------------------------------
pid=$(start_bg "$T/out" "$PROGS/stopsig")
wait_for_line "$T/out" '^READY' || bail "stopsig did not start"
s=$(line_field "$T/out" '^PID S ' 3)
r=$(line_field "$T/out" '^PID R ' 3)
before=$(masks "$s")
rm -f "$T/stop-hups"
hup_storm "$pid" &
hp=$!
dump_and_restore "$pid" "$T/img" || exit 1
touch "$T/stop-hups"
wait "$hp"
check "no signal was met during an injected syscall" eval '! grep -q "during an injected syscall" "$T/dump.log" "$T/restore.log"'
check "S is stopped again, untraced" eval '[ "$(proc_state $s)" = T ] && grep -q "^TracerPid:[[:space:]]*0$" /proc/$s/status'
check "S's pending (SIGSTOPs too), blocked, ignored and caught sets are the same" \
	diff <(echo "$before") <(masks "$s")
check "the parent's own check passes: S stopped, R running, both its children" \
	request_check "$pid" "$T/out"
n=$(lines_count "$T/out" '^R ')
check "R goes on counting" wait_for_line "$T/out" "^R $n\$" 5
sleep 0.3
check "S ran nothing while stopped (took no signal)" [ "$(lines_count "$T/out" '^S GOT')" = 0 ]
kill -CONT "$s"
check "continued, S takes all six signals" wait_for_line "$T/out" '^S DONE 6$' 10
check "S got exactly its pending signals with their values, SIGRTMIN+2 in order" want_got "$T/out"
kill -TERM "$pid"
check "the parent ends cleanly" wait_for_line "$T/out" '^FINAL OK' 5
check "no ERROR or FAIL line" [ "$(lines_count "$T/out" 'ERROR|FAIL')" = 0 ]

# --- 3. a stopped process with five threads ------------------------------------
pid=$(start_bg "$T/out3" "$PROGS/schedattr")
wait_for_line "$T/out3" '^READY' || bail "schedattr did not start"
kill -STOP "$pid"
states() { cat /proc/$pid/task/*/stat | awk '{ sub(/.*\) /, ""); printf "%s", $1 }'; }
wait_for '[ "$(states)" = TTTTT ]' 5 > /dev/null
dump_and_restore "$pid" "$T/img3" || exit 1
check "all five threads are stopped again" [ "$(states)" = TTTTT ]
n=$(wc -l < "$T/out3")
sleep 0.3
check "none of them runs while stopped" [ "$(wc -l < "$T/out3")" = "$n" ]
kill -CONT "$pid"
last=$(line_field "$T/out3" '^M [0-9]' 2)
check "continued, they count on" wait_for_line "$T/out3" "^M $((last + 3))\$" 5

# --- 4. a SIGSTOP sent during the dump or the restore --------------------------
# KUP_FAULT_STOP_IN_SYSCALL=NR[:N] sends the tree a SIGSTOP at the entry stop
# of kup's N-th injected syscall NR; the thread takes it during a later
# injected syscall, where it is passed over.  rt_sigaction (13) runs in the
# dump's per-task pass, mmap (9) maps the restore's area in each process.
stopped_untraced() {
	[ "$(proc_state "$1")" = T ] && grep -q "^TracerPid:[[:space:]]*0$" /proc/$1/status
}
# counts_after_cont PID OUT: continued, it prints 3 more lines
counts_after_cont() {
	local n
	n=$(line_field "$2" '^C [0-9]' 2)
	kill -CONT "$1"
	wait_for_line "$2" "^C $((n + 3)) " 5
}
# quiet_while_stopped OUT: no line for 0.3 s
quiet_while_stopped() {
	local n
	n=$(wc -l < "$1")
	sleep 0.3
	[ "$(wc -l < "$1")" = "$n" ]
}
# stop_during LOG NR KUP-ARGS...: kup with a SIGSTOP sent at syscall NR
stop_during() {
	local log=$1 nr=$2
	shift 2
	KUP_FAULT_STOP_IN_SYSCALL=$nr "$KUP" "$@" > "$log" 2>&1
}
# restores_and_counts PID OUT DIR: the images of PID (gone) restore, it counts on
restores_and_counts() {
	local n
	wait_gone "$1" 5 || return 1
	n=$(line_field "$2" '^C [0-9]' 2)
	kup_run "$T/restore-$1.log" restore -D "$3" -d || return 1
	wait_for_line "$2" "^C $((n + 3)) " 5
}

c=$(start_bg "$T/out4" "$PROGS/counter" -i 20)
wait_for_line "$T/out4" '^C 2 ' > /dev/null || bail "counter did not start"
check "kup dump --leave-running, a SIGSTOP sent during one of its injected syscalls" \
	stop_during "$T/dump4.log" 13 dump -t "$c" -D "$T/img4" --leave-running
check "... the counter ends stopped, untraced (the SIGSTOP was not lost)" \
	wait_for "stopped_untraced $c" 5
check "... it prints nothing while stopped" quiet_while_stopped "$T/out4"
check "... continued, it counts on" counts_after_cont "$c" "$T/out4"
kill -9 "$c"
check "... the images it left restore, and the counter counts on" \
	restores_and_counts "$c" "$T/out4" "$T/img4"
check "... running, not stopped" not_frozen "$c"
kill -9 "$c"

# the pre-dump's tracking is set up by injected syscalls too (userfaultfd,
# 323, then close): a SIGSTOP sent then is not lost either
c=$(start_bg "$T/out7" "$PROGS/counter" -i 20 -m 8)
wait_for_line "$T/out7" '^C 2 ' > /dev/null || bail "counter did not start"
check "kup dump --pre-dump --leave-running, a SIGSTOP sent as its tracking starts" \
	stop_during "$T/dump7.log" 323 dump -t "$c" -D "$T/img7" --pre-dump --leave-running
check "... the counter ends stopped, untraced" wait_for "stopped_untraced $c" 5
kill -9 "$c"
wait_gone "$c" 5
# it stopped before the freeze: its images hold a stopped process
check "... its images restore" kup_run "$T/restore7.log" restore -D "$T/img7" -d
check "... stopped, as it was at the freeze" wait_for "stopped_untraced $c" 5
check "... continued, it counts on" counts_after_cont "$c" "$T/out7"
kill -9 "$c"

# a dump refused after the SIGSTOP came lets the tree go the same way
c=$(start_bg "$T/out5" bash -c "exec 3< /dev/kmsg; exec '$PROGS/counter' -i 20")
wait_for_line "$T/out5" '^C 2 ' > /dev/null || bail "counter did not start"
check_fails "kup dump of a counter holding /dev/kmsg is refused, a SIGSTOP sent during it" \
	stop_during "$T/dump5.log" 13 dump -t "$c" -D "$T/img5" --leave-running
check "... the refusal names its fd" grep -q "pid $c fd 3: .*/dev/kmsg" "$T/dump5.log"
check "... the counter ends stopped, untraced" wait_for "stopped_untraced $c" 5
check "... continued, it counts on" counts_after_cont "$c" "$T/out5"
kill -9 "$c"

c=$(start_bg "$T/out6" "$PROGS/counter" -i 20)
wait_for_line "$T/out6" '^C 2 ' > /dev/null || bail "counter did not start"
check "kup dump of a counter" kup_run "$T/dump6.log" dump -t "$c" -D "$T/img6"
wait_gone "$c" 5
check "kup restore -d, a SIGSTOP sent during one of its injected syscalls" \
	stop_during "$T/restore6.log" 9 restore -D "$T/img6" -d
check "... the restored counter ends stopped, untraced" wait_for "stopped_untraced $c" 5
check "... it prints nothing while stopped" quiet_while_stopped "$T/out6"
check "... continued, it counts on" counts_after_cont "$c" "$T/out6"
kill -9 "$c"
