#!/bin/bash
# Bad input and faults: clear messages, non-zero exits, nothing lost.
. "$(dirname "$0")/../lib.sh"

# dump: a missing pid, a kernel thread
check_fails "dump of a missing pid fails" kup_try dump -t 4194000 -D "$T/x"
check "... and names the pid" grep -q "4194000" "$T/err"
check_fails "dump of a kernel thread fails" kup_try dump -t 2 -D "$T/x"
check "... and says it is a kernel thread" grep -q "kernel thread" "$T/err"
check "... naming pid 2" grep -qE '(^|[^0-9])2([^0-9]|$)' "$T/err"
check "... and writes no checkpoint" [ ! -e "$T/x/inventory.img" ]

# dump: a tree whose child holds something unsupported (a packet socket in
# a fanout group)
# fails, names the child and the fd, and is left running
if command -v python3 > /dev/null; then
	pid=$(start_bg "$T/pk" python3 -c '
import os, socket, time
who = "ROOT"
if os.fork() == 0:
    who = "CHILD"
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.setsockopt(263, 18, 0x4b55)	# SOL_PACKET, PACKET_FANOUT: group 0x4b55, hash
    print("FD", os.getpid(), s.fileno(), flush=True)
i = 0
while True:
    print(who, i, flush=True); i += 1; time.sleep(0.05)')
	wait_for_line "$T/pk" '^CHILD 3' || exit 1
	fdline=$(grep -ao 'FD [0-9]\+ [0-9]\+' "$T/pk" | head -n 1)
	[ -n "$fdline" ] || { sed 's/^/# /' "$T/pk" | head -n 20; bail "the child did not say its fd"; }
	child=$(echo "$fdline" | awk '{ print $2 }')
	fd=$(echo "$fdline" | awk '{ print $3 }')
	check_fails "dump of a tree with a packet socket in a fanout group fails" kup_try dump -t "$pid" -D "$T/pkimg"
	check "... naming pid $child and fd $fd" grep -q "pid $child fd $fd" "$T/err"
	check "... and the fanout group" grep -q "pid $child fd $fd: packet socket: .*fanout" "$T/err"
	sed 's/^/# /' "$T/err"
	n1=$(lines_count "$T/pk" '^ROOT ')
	n2=$(lines_count "$T/pk" '^CHILD ')
	sleep 0.3
	check "... and the tree is still running" \
		eval '[ "$(lines_count "$T/pk" "^ROOT ")" -gt "$n1" ] && [ "$(lines_count "$T/pk" "^CHILD ")" -gt "$n2" ]'
	check "... neither stopped nor traced" eval 'not_frozen $pid && not_frozen $child'
	check "... and no checkpoint is left" [ ! -e "$T/pkimg/inventory.img" ]
	kill_tree "$pid"
fi

# dump: a process another tracer holds (strace) cannot be frozen: the dump
# fails naming its thread (the message once read freed memory), the tree
# keeps running, and once the tracer leaves it counts on untraced
if command -v strace > /dev/null; then
	pid=$(start_bg "$T/tr" "$PROGS/threads" -n 4)
	wait_for_line "$T/tr" '^T3 .* 2$' || bail "threads did not start"
	strace -f -qq -o /dev/null -p "$pid" &
	tracer=$!
	wait_for "grep -q '^TracerPid:[[:space:]]*$tracer' /proc/$pid/status" 10 || bail "strace did not attach"
	check_fails "dump of a process traced by another tracer fails" kup_try dump -t "$pid" -D "$T/trimg"
	check "... naming a thread it cannot freeze" grep -qE "pid $pid tid [0-9]+: cannot freeze" "$T/err"
	sed 's/^/# /' "$T/err"
	kill "$tracer"; wait "$tracer" 2> /dev/null
	check "... and once the tracer is gone the tree runs untraced" wait_for "not_frozen $pid" 10
	check "... and no checkpoint is left" [ ! -e "$T/trimg/inventory.img" ]
	kill_tree "$pid"
fi

# restore: missing, truncated, corrupted images; a pid in use
check_fails "restore from a missing directory fails" kup_try restore -D "$T/nowhere" -d
pid=$(start_bg "$T/out" "$PROGS/counter")
wait_for_line "$T/out" '^C 3 ' || exit 1
"$KUP" dump -t "$pid" -D "$T/img" || exit 1
wait_gone "$pid"
cp -a "$T/img" "$T/good"

truncate -s 8192 "$T/img/pages-$pid.img"
check_fails "restore from a truncated page image fails" kup_try restore -D "$T/img" -d
check "... naming the image" grep -q "pages-$pid.img" "$T/err"
check "... and leaves no process behind" [ ! -d /proc/$pid ]
cp "$T/good/pages-$pid.img" "$T/img/"

printf '\xff' | dd of="$T/img/core-$pid.img" bs=1 seek=40 conv=notrunc status=none
check_fails "restore from a corrupted core image fails" kup_try restore -D "$T/img" -d
check "... reporting a checksum or decode error" grep -qE "checksum|decode|invalid" "$T/err"
check "... and leaves no process behind" [ ! -d /proc/$pid ]
cp "$T/good/core-$pid.img" "$T/img/"
check "the images were left intact: the original still matches" cmp -s "$T/img/mm-$pid.img" "$T/good/mm-$pid.img"

check "restore after repairing the images works" "$KUP" restore -D "$T/img" -d
track "$pid"
check "... the counter runs" alive "$pid"
check_fails "a second restore while the pid is taken fails" kup_try restore -D "$T/good" -d
check "... saying pid $pid is in use" grep -q "pid $pid is in use" "$T/err"
sleep 0.3
check "... and the first copy is untouched" alive "$pid"
check "... and still counting without error" [ "$(lines_count "$T/out" ERROR)" = 0 ]
kill -9 "$pid"; wait_gone "$pid"
check "once the pid is free the same images restore" "$KUP" restore -D "$T/good" -d
track "$pid"
kill_tree "$pid"
wait_gone "$pid"

# A page image large enough to be written into the task on two CPUs, a range
# at a time (mem-restore.c, restore_pages_par): a byte damaged in each of
# its ranges in turn fails the restore whichever thread meets it, before any
# task runs, and leaves no process.
pid=$(start_bg "$T/outm" "$PROGS/counter" -m 24)
wait_for_line "$T/outm" '^C 2 ' 30 || exit 1
"$KUP" dump -t "$pid" -D "$T/imgm" || exit 1
wait_gone "$pid"
pages="$T/imgm/pages-$pid.img"
size=$(stat -c %s "$pages")
check "the page image holds more than 24 MiB ($size bytes)" [ "$size" -gt $((24 << 20)) ]
for mib in 1 3 9 22; do
	flip_byte "$pages" $(((mib << 20) + 4321))
	check_fails "restore with a byte damaged at $mib MiB of the page image fails" \
		kup_try restore -D "$T/imgm" -d
	check "... naming the image and the damaged piece" \
		grep -q "pages-$pid.img: the piece at offset $((mib << 20)): checksum mismatch" "$T/err"
	check "... and leaves no process behind" [ ! -d /proc/$pid ]
	flip_byte "$pages" $(((mib << 20) + 4321))
done
check "restored once the image is whole again" "$KUP" restore -D "$T/imgm" -d
track "$pid"
check "... with its memory intact" request_check "$pid" "$T/outm"
