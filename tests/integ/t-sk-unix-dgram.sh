#!/bin/bash
# A bound unix datagram receiver with datagrams queued at dump time from an
# unbound sender (sendto) and from a bound, connected one, path-bound then
# abstract: after the restore the receiver gets exactly those datagrams,
# whole, in order and with their senders' addresses, and both senders can
# send again (the connected one through its restored connection).  Then a
# sender connected to a receiver outside the tree: connected again at
# restore, and a restore fails cleanly while nothing is bound there.
. "$(dirname "$0")/../lib.sh"
require_root

n=0
for addr in "$T/dg.sock" "@kup-test-$$-dg"; do
	n=$((n + 1))
	note "---- $addr"
	out=$T/dg$n.out
	pid=$(start_bg "$out" "$PROGS/unixdgram" -a "$addr")
	wait_for_line "$out" '^S2 SENT' || bail "unixdgram -a $addr did not start"
	s1=$(line_field "$out" '^PID S1 ' 3)
	s2=$(line_field "$out" '^PID S2 ' 3)
	dump_and_restore "$pid" "$T/img$n" || exit 1
	check "the receiver gets the 8 queued datagrams, in order, with their senders" \
		request_check "$pid" "$out"
	kill -USR1 "$s1"
	check "the unbound sender sends again" wait_for_line "$out" '^LATE unnamed S1 4$' 5
	kill -USR1 "$s2"
	check "the connected sender sends again, from its own name" \
		wait_for_line "$out" "^LATE ${addr#@}.s2 S2 4\$" 5
	check "no ERROR line" [ "$(lines_count "$out" ERROR)" = 0 ]
	kill_tree "$pid"
	wait_gone "$pid"
done

# ---- a datagram socket connected to a receiver outside the tree (as to
# /dev/log or journald): dumped, connected to the same path again; a second
# restore from the same images sends what the first did (S3 1)
note "---- connected outside the tree"
recv_outside() {
	start_bg "$1" python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
if os.path.exists(sys.argv[1]): os.unlink(sys.argv[1])
s.bind(sys.argv[1])
print("BOUND", flush=True)
while True: print("GOT", s.recv(100).decode(), flush=True)' "$T/log.sock"
}
rcv=$(recv_outside "$T/log.out")
wait_for_line "$T/log.out" '^BOUND' || bail "the outside receiver did not start"
pid=$(start_bg "$T/s3.out" "$PROGS/unixdgram" -s "$T/log.sock")
wait_for_line "$T/s3.out" '^S3 CONNECTED' || bail "unixdgram -s did not start"
kill -USR1 "$pid"
wait_for_line "$T/log.out" '^GOT S3 0$' || bail "the outside receiver got nothing"
dump_and_restore "$pid" "$T/img-out" || exit 1
kill -USR1 "$pid"
check "the restored sender reaches the receiver outside the tree again" \
	wait_for_line "$T/log.out" '^GOT S3 1$' 5
kill_tree "$pid"
wait_gone "$pid"
kill_tree "$rcv"
wait_gone "$rcv"
rm -f "$T/log.sock"
check_fails "without the receiver the restore fails" kup_try restore -D "$T/img-out" -d
check "... saying it cannot connect to $T/log.sock" grep -q "cannot connect to $T/log.sock" "$T/err"
check "... and leaves no process" wait_gone "$pid" 2
rcv=$(recv_outside "$T/log2.out")
wait_for_line "$T/log2.out" '^BOUND' || bail "the outside receiver did not start"
check "with a receiver there again the same images restore" \
	kup_run "$T/restore.log" restore -D "$T/img-out" -d || note "$(tail -n 5 "$T/restore.log")"
track "$pid"
kill -USR1 "$pid"
check "... and the sender reaches it" wait_for_line "$T/log2.out" '^GOT S3 1$' 5
