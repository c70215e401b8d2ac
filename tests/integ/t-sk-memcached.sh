#!/bin/bash
# memcached holding 100000 keys written over one client connection: the
# client keeps that socket open while memcached is dumped, killed and
# restored, then reads every key back over the same connection.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
require_root
command -v memcached > /dev/null || skip_all "needs memcached"
command -v python3 > /dev/null || skip_all "needs python3"
net_setup

mc=$(start_bg "$T/mc" nsenter --net=/run/netns/"$NSA" memcached -u root -U 0 -l 10.77.0.1 -p 11211 -t 2 -m 256)
wait_for "in_ns $NSA ss -Htln '( sport = :11211 )' | grep -q 11211" 10 || bail "memcached did not start"
cli=$(start_bg "$T/cli" nsenter --net=/run/netns/"$NSB" python3 -c '
import os, socket, sys, time
N, go = 100000, sys.argv[1]
s = socket.create_connection(("10.77.0.1", 11211))
f = s.makefile("rb")
def val(i): return b"value-%d-%s" % (i, b"x" * (i % 50))
batch = []
for i in range(N):
    v = val(i)
    batch.append(b"set key%d 0 0 %d noreply\r\n%s\r\n" % (i, len(v), v))
    if len(batch) == 1000:
        s.sendall(b"".join(batch)); batch = []
s.sendall(b"".join(batch))
s.sendall(b"get key0\r\n")
assert f.readline().startswith(b"VALUE key0")
f.readline(); f.readline()
print("LOADED", N, flush=True)
while not os.path.exists(go):
    time.sleep(0.05)
ok = 0
for start in range(0, N, 100):
    keys = range(start, min(N, start + 100))
    s.sendall(b"get " + b" ".join(b"key%d" % i for i in keys) + b"\r\n")
    for i in keys:
        hdr = f.readline().split()
        if len(hdr) != 4 or hdr[0] != b"VALUE" or hdr[1] != b"key%d" % i:
            print("ERROR key%d: header %r" % (i, hdr), flush=True); sys.exit(1)
        data = f.read(int(hdr[3]) + 2)[:-2]
        if data != val(i):
            print("ERROR key%d: value %r" % (i, data[:40]), flush=True); sys.exit(1)
        ok += 1
    if f.readline() != b"END\r\n":
        print("ERROR no END after key%d" % keys[-1], flush=True); sys.exit(1)
print("VERIFIED", ok, flush=True)
time.sleep(3600)' "$T/go")
wait_for_line "$T/cli" '^LOADED 100000' 60 || bail "the client could not load memcached"

check "kup dump --tcp-established of memcached" kup_run "$T/d" dump -t "$mc" -D "$T/img" --tcp-established
check "memcached is gone" wait_gone "$mc"
check "kup restore of memcached" kup_in "$NSA" "$T/r" restore -D "$T/img" -d --tcp-established
track "$mc"
touch "$T/go"
check "all 100000 keys read back over the same connection" wait_for_line "$T/cli" '^VERIFIED 100000' 60
check "the client saw no error" [ "$(lines_count "$T/cli" 'ERROR|Traceback')" = 0 ]
check "no network lock left" [ "$(kup_tables "$NSA")" = 0 ]
