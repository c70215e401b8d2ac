#!/bin/bash
# Files in flight (SCM_RIGHTS) in a unix socket's queue that nobody has
# received at dump time: a pipe's read end with data in the pipe, a regular
# file at an offset, an eventfd with a count (that is also in the sender's
# fd table).  After a restore (and after a dump with --leave-running) the
# child receives the messages in order, each with its files, and the files
# work: the pipe's data arrives, the file reads at its offset, the eventfd
# counts and is the very file the parent holds; on a stream socket the
# byte sent alone before the send with the pipe comes without a file.  A
# unix socket in flight is refused, naming it, and the tree runs on.  Then
# python (socket.send_fds / recv_fds) with 40 sends on a stream, every
# third with a pipe: each read ends with a send that carried a file, with
# that file.
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

note "---- python: 40 sends on a stream, every third with a pipe in flight"
# The sender alternates sends without files and sends with a pipe holding
# "pipe-I"; after the restore the receiver's reads (socket.recv_fds) must end
# where each send with a file ended, carry that file, and read "pipe-I".
command -v python3 > /dev/null || { note "no python3: skipped"; exit 0; }
out=$T/py.out
pid=$(start_bg "$out" python3 -c '
import os, signal, socket, sys
a, b = socket.socketpair()
pid = os.fork()
if pid == 0:
    a.close()
    print("PID C", os.getpid(), flush=True)
    signal.signal(signal.SIGUSR1, lambda *x: None)
    signal.pause()
    b.setblocking(False)
    got, data, why = 0, b"", None
    while True:
        try:
            msg, fds, flags, addr = socket.recv_fds(b, 65536, 8)
        except BlockingIOError:
            break
        data += msg
        for fd in fds:
            i = int(data.rsplit(b"fd-", 1)[1].rstrip(b";")) if data.endswith(b";") else -1
            body = os.read(fd, 64)
            if not data.endswith(b"fd-%d;" % i) or body != b"pipe-%d" % i:
                why = why or "file %r after %r" % (body, data[-12:])
            got += 1
    want = b"".join((b"fd-%d;" if i % 3 == 0 else b"data-%d;") % i for i in range(40))
    if data != want:
        why = why or "the bytes differ"
    if got != 14:
        why = why or "%d files, not 14" % got
    print("CHECK 1 " + ("FAIL child: " + why if why else "OK child"), flush=True)
    signal.pause()
    sys.exit(0)
b.close()
for i in range(40):
    if i % 3 == 0:
        r, w = os.pipe()
        os.write(w, b"pipe-%d" % i)
        os.close(w)
        socket.send_fds(a, [b"fd-%d;" % i], [r])
        os.close(r)
    else:
        a.send(b"data-%d;" % i)
print("SENT", flush=True)
while True:
    signal.pause()')
wait_for_line "$out" '^SENT' 60 || { sed 's/^/#   /' "$out"; bail "python did not start (its output is above)"; }
wait_for_line "$out" '^PID C ' 60 || { sed 's/^/#   /' "$out"; bail "python did not start (its output is above)"; }
child=$(line_field "$out" '^PID C ' 3)
dump_and_restore "$pid" "$T/img-py" || exit 1
check "python: the receiver gets the 40 sends' bytes and the 14 pipes, each with its send" \
	request_check "$child" "$out"
kill_tree "$pid"
wait_gone "$pid"
