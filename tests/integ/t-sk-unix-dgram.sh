#!/bin/bash
# A bound unix datagram receiver with datagrams queued at dump time from an
# unbound sender (sendto) and from a bound, connected one, path-bound then
# abstract: after the restore the receiver gets exactly those datagrams,
# whole, in order and with their senders' addresses, and both senders can
# send again (the connected one through its restored connection).
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
