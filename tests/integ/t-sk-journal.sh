#!/bin/bash
# A service's stdout and stderr are a stream connected to journald's
# /run/systemd/journal/stdout (systemd connects them so): the one socket
# peer outside the tree that a dump keeps.  The restore connects to journald
# again and sends the stream header first, as systemd does; the service's
# lines go on arriving, none lost, none twice.  Here journald is a stand-in
# that records every stream it is given (only where no journald runs).  If
# journald is gone at restore, the restore fails saying so and leaves the
# images for another try.
. "$(dirname "$0")/../lib.sh"
require_root

J=/run/systemd/journal/stdout
[ -e "$J" ] && skip_all "a journald runs here ($J): the test needs its path"
mkdir -p /run/systemd/journal
at_exit "rm -f $J; rmdir /run/systemd/journal /run/systemd 2>/dev/null"

# the stand-in journald: each accepted stream is written to $T/stream.N
cat > "$T/journald.py" <<'PY'
import socket, sys, threading
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(8)
print("LISTENING", flush=True)
n = 0
def drain(c, n):
    with open("%s.%d" % (sys.argv[2], n), "wb", buffering=0) as f:
        while True:
            b = c.recv(65536)
            if not b:
                break
            f.write(b)
while True:
    c, _ = s.accept()
    n += 1
    threading.Thread(target=drain, args=(c, n), daemon=True).start()
PY
# how systemd starts a service with StandardOutput=journal: connect, header,
# no reading, the socket on fds 1 and 2, exec
cat > "$T/launch.py" <<'PY'
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b"counter\nfake.service\n6\n1\n0\n0\n0\n")
s.shutdown(socket.SHUT_RD)
os.dup2(s.fileno(), 1); os.dup2(s.fileno(), 2); s.close()
os.execv(sys.argv[2], sys.argv[2:])
PY
jd=$(start_bg "$T/jd.out" python3 "$T/journald.py" "$J" "$T/stream")
wait_for_line "$T/jd.out" '^LISTENING' 10 || bail "the stand-in journald did not start"
pid=$(start_bg "$T/unused" python3 "$T/launch.py" "$J" "$PROGS/counter" -i 20)
wait_for "grep -q '^C 20 ' $T/stream.1" 10 || bail "counter does not write to the stream"
check "the counter's fds 1 and 2 are one socket" \
	eval '[ "$(readlink /proc/$pid/fd/1)" = "$(readlink /proc/$pid/fd/2)" ] && [[ $(readlink /proc/$pid/fd/1) == socket:* ]]'

check "kup dump -t $pid (its stdout is connected to journald)" \
	kup_run "$T/dump.log" dump -t "$pid" -D "$T/img" || note "$(cat "$T/dump.log")"
wait_gone "$pid" || true
check "kup restore -d" kup_run "$T/restore.log" restore -D "$T/img" -d || note "$(cat "$T/restore.log")"
track "$pid"
check "journald was given a second stream" wait_for "[ -s $T/stream.2 ]" 5
check "it starts with the stream header: identifier counter, priority 6, level prefix 1" \
	eval '[ "$(head -n 7 $T/stream.2 | tr "\n" " ")" = "counter  6 1 0 0 0 " ]'
check "the counter writes on into it" wait_for "[ \$(grep -c '^C ' $T/stream.2) -gt 20 ]" 5
last=$(awk '$1 == "C" { v = $2 } END { print v }' "$T/stream.1")
first=$(awk '$1 == "C" { print $2; exit }' "$T/stream.2")
check "no line lost or twice: the old stream ends at $last, the new one goes on at $first" \
	[ "$first" = $((last + 1)) ]
check "its fds 1 and 2 are still one socket" \
	eval '[ "$(readlink /proc/$pid/fd/1)" = "$(readlink /proc/$pid/fd/2)" ]'

check "kup dump again" kup_run "$T/dump2.log" dump -t "$pid" -D "$T/img2"
wait_gone "$pid" || true
kill_tree "$jd"
wait_gone "$jd" || true
rm -f "$J"
check_fails "with journald gone, the restore fails" kup_try restore -D "$T/img2" -d
check "it says the service's stdout could not be connected to journald" \
	grep -q "could not be connected to journald ($J)" "$T/err"
check "nothing restored" eval '[ ! -d /proc/$pid ]'
jd=$(start_bg "$T/jd2.out" python3 "$T/journald.py" "$J" "$T/streamb")
wait_for_line "$T/jd2.out" '^LISTENING' 10 || bail "the stand-in journald did not start again"
check "with journald back, the same images restore" kup_run "$T/restore3.log" restore -D "$T/img2" -d
track "$pid"
check "and the counter writes into a new stream" wait_for "grep -q '^C ' $T/streamb.1" 5
check "no ERROR line" eval '! grep -h ERROR $T/stream* '
