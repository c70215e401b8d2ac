#!/bin/bash
# Unix sockets whose name no longer matches a file: a listener whose file
# was removed, one bound to NAME.tmp then renamed to NAME (as haproxy does
# with its master socket), one bound by a relative path, a datagram socket
# whose file was removed, and a new listener bound since at the removed
# name.  After dump, kill and restore the kernel's table (/proc/net/unix)
# shows every name as before, the files are where they were (NAME, not
# NAME.tmp; nothing at the removed names but the new listener's), and
# clients connect through NAME and the relative path; a client connected
# through NAME before the dump still talks.
. "$(dirname "$0")/../lib.sh"
require_root
command -v python3 > /dev/null || skip_all "needs python3"
plan 12
mkdir "$T/dir"

cat > "$T/names.py" <<'PY'
import os, select, socket, sys, time
t = sys.argv[1]
def listener(name):
    s = socket.socket(socket.AF_UNIX)
    s.bind(name)
    s.listen(8)
    return s
a = listener(t + "/a.sock"); os.unlink(t + "/a.sock")
b = listener(t + "/b.sock.tmp"); os.rename(t + "/b.sock.tmp", t + "/b.sock")
os.chdir(t + "/dir")
c = listener("c.sock")      # the working directory stays: where kup looks
d = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
d.bind(t + "/d.sock"); os.unlink(t + "/d.sock")
a2 = listener(t + "/a.sock")
cl = socket.socket(socket.AF_UNIX); cl.connect(t + "/b.sock")
acc, _ = b.accept()
print("READY", flush=True)
names = {a: "a", b: "b", c: "c", a2: "a2"}
n = 0
while True:
    r, _, _ = select.select(list(names), [], [], 0.2)
    for l in r:
        s, _ = l.accept()
        s.sendall(b"hello " + names[l].encode() + b"\n")
        s.close()
    n += 1
    cl.sendall(b"ping %d\n" % n)
    got = acc.recv(100)
    if got != b"ping %d\n" % n:
        print("ERROR pair got", got, flush=True); sys.exit(1)
    if n % 5 == 0:
        print("PAIR", n, flush=True)
PY
pid=$(start_bg "$T/out" python3 "$T/names.py" "$T")
wait_for_line "$T/out" '^READY' || bail "the program did not start"
unix_names() { awk -v t="$T" 'NR > 1 && index($8, t) { print $8 }' /proc/net/unix | sort | uniq -c | tr -s ' '; }
# "c.sock" is relative: not under $T in the table
rel=$(awk 'NR > 1 && $8 == "c.sock"' /proc/net/unix | wc -l)
names0=$(unix_names)
note "$names0"
check "kup dump" kup_run "$T/dump.log" dump -t "$pid" -D "$T/img" || note "$(cat "$T/dump.log")"
check "gone" wait_gone "$pid"
check "kup restore" kup_run "$T/restore.log" restore -D "$T/img" -d || note "$(cat "$T/restore.log")"
track "$pid"
check "the kernel's table has the same names" [ "$(unix_names)" = "$names0" ]
check "... and the relative one" [ "$(awk 'NR > 1 && $8 == "c.sock"' /proc/net/unix | wc -l)" = "$rel" ]
check "files: b.sock (renamed), a.sock (the new listener), dir/c.sock" \
	eval "[ -S '$T/b.sock' ] && [ -S '$T/a.sock' ] && [ -S '$T/dir/c.sock' ]"
check "no b.sock.tmp, no d.sock" eval "[ ! -e '$T/b.sock.tmp' ] && [ ! -e '$T/d.sock' ]"
hello() { python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])
print(s.recv(100).decode().strip())' "$1"; }
check "a client through b.sock reaches the renamed listener" [ "$(hello "$T/b.sock")" = "hello b" ]
check "through dir/c.sock the relative one" [ "$(hello "$T/dir/c.sock")" = "hello c" ]
check "through a.sock the new listener" [ "$(hello "$T/a.sock")" = "hello a2" ]
n=$(line_field "$T/out" '^PAIR' 2)
check "the connection made through b.sock before the dump goes on" wait_for_line "$T/out" "^PAIR $((n + 10))$" 10
check "no ERROR" [ "$(lines_count "$T/out" ERROR)" = 0 ]
