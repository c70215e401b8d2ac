#!/bin/bash
# Unix socketpairs (stream, seqpacket, datagram) between a parent and its
# child, with messages queued in both directions at dump time and the
# parent's side shut down for writing: after the restore every byte arrives
# once and in order, message boundaries hold, end-of-file comes right after
# the last message, options and O_NONBLOCK are kept, and the pair still
# carries new data.
. "$(dirname "$0")/../lib.sh"
require_root

for type in stream seqpacket dgram; do
	note "---- $type"
	out=$T/$type.out
	pid=$(start_bg "$out" "$PROGS/unixpair" -t $type -n 40)
	wait_for_line "$out" '^QUEUED child ' || bail "unixpair -t $type did not start"
	wait_for_line "$out" '^QUEUED parent ' || bail "unixpair -t $type did not start"
	child=$(line_field "$out" '^PID C ' 3)
	check "$type: both sides have unread data queued (unread > 0)" \
		eval "[ \$(grep -c 'unread=[1-9]' '$out') = 2 ]"
	dump_and_restore "$pid" "$T/img-$type" || exit 1
	check "$type: the child is back" alive "$child"
	check "$type: the child reads the parent's 40 messages in order, then end of file" \
		request_check "$child" "$out"
	check "$type: the parent reads the child's 40 messages and the new one, in order" \
		request_check "$pid" "$out"
	check "$type: no ERROR line" [ "$(lines_count "$out" ERROR)" = 0 ]
	kill_tree "$pid"
	wait_gone "$pid"
done
