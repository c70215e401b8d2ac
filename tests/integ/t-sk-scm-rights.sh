#!/bin/bash
# Files in flight (SCM_RIGHTS) in a unix socket's queue that nobody has
# received at dump time: a pipe's read end with data in the pipe, a regular
# file at an offset, an eventfd with a count (that is also in the sender's
# fd table).  After a restore (and after a dump with --leave-running) the
# child receives the messages in order, each with its files, and the files
# work: the pipe's data arrives, the file reads at its offset, the eventfd
# counts and is the very file the parent holds.  A unix socket in flight is
# refused, naming it, and the tree runs on.
. "$(dirname "$0")/../lib.sh"
require_root

for type in seqpacket dgram stream; do
	for mode in restore leave; do
		note "---- $type, $mode"
		out=$T/$type-$mode.out
		pid=$(start_bg "$out" "$PROGS/scmrights" -t $type -f "$T/file-$type-$mode")
		wait_for_line "$out" '^SENT' || bail "scmrights -t $type did not start"
		wait_for_line "$out" '^PID C ' || bail "scmrights -t $type did not start"
		child=$(line_field "$out" '^PID C ' 3)
		if [ $mode = restore ]; then
			dump_and_restore "$pid" "$T/img-$type" || exit 1
		else
			check "$type: kup dump --leave-running" \
				kup_run "$T/dump.log" dump -t "$pid" -D "$T/imgl-$type" --leave-running
			check "$type: the tree runs on" not_frozen "$child"
		fi
		check "$type ($mode): the child receives the 3 messages in order, each with its files, and they work" \
			request_check "$child" "$out"
		check "$type ($mode): the parent's eventfd is the one that was in flight" \
			request_check "$pid" "$out"
		check "$type ($mode): no ERROR line" [ "$(lines_count "$out" ERROR)" = 0 ]
		kill_tree "$pid"
		wait_gone "$pid"
	done
done

note "---- a unix socket in flight"
out=$T/refuse.out
pid=$(start_bg "$out" "$PROGS/scmrights" -r)
wait_for_line "$out" '^SENT' || bail "scmrights -r did not start"
wait_for_line "$out" '^PID C ' || bail "scmrights -r did not start"
child=$(line_field "$out" '^PID C ' 3)
check_fails "dump of a unix socket in flight fails" kup_run "$T/err" dump -t "$pid" -D "$T/rimg"
sed 's/^/# /' "$T/err" | tail -n 3
check "... naming pid $child (the receiver), the socket's fd, the message and the socket in flight" \
	grep -qE "pid $child fd [0-9]+, queued message 1, file 1 in flight: socket 'socket:\[[0-9]+\]' in flight \(SCM_RIGHTS\): not supported" "$T/err"
check "... the tree is left running" eval "not_frozen $pid && not_frozen $child"
check "... no checkpoint is left" [ ! -e "$T/rimg/inventory.img" ]
check "... the message is still queued, with its socket in flight" request_check "$child" "$out"
kill_tree "$pid"
wait_gone "$pid"
