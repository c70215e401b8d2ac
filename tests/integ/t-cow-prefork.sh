#!/bin/bash
# A pre-forked Python server (docs/design.md, "Copy-on-write between
# processes"): the master fills 64 MiB, becomes a child subreaper, serves
# from a second thread and forks three workers (worker k rewrites its first
# k MiB), a worker that forks a grandchild (which rewrites 2 MiB of its
# own), an orphan (its parent exited: it is the master's child now and
# still shares the master's pages) and a zombie.  An 8 MiB mapping of the
# master is shared by all, worker 2 only the lower half it kept (it
# unmapped the upper one); after the forks the master maps 16 KiB that
# merge into its 64 MiB mapping, so its mapping and the workers' differ in
# bounds: both still share what they shared (docs/design.md).  Each one
# serves "check" on its own unix socket: the CRC of its memory against the
# one it took before the dump.  After the restore every process answers OK, and the sum
# of their Pss stays near what it was (seven copies of 64 MiB if nothing
# were shared again).
. "$(dirname "$0")/../lib.sh"
require_root
PY=$(command -v /usr/bin/python3 || command -v python3) || skip_all "no python3"
plan 13

cat > "$T/pool.py" <<'PY'
import ctypes, mmap, os, signal, socket, sys, threading, time, zlib

MB = 1 << 20
T = sys.argv[1]
buf = bytearray(64 * MB)
for i in range(64):
    buf[i * MB:(i + 1) * MB] = bytes((b * 7 + i) & 255 for b in range(256)) * 4096
m2 = mmap.mmap(-1, 8 * MB, flags=mmap.MAP_PRIVATE)
for i in range(8):
    m2[i * MB:(i + 1) * MB] = bytes((b * 5 + i) & 255 for b in range(256)) * 4096
m2len = 8 * MB
m2addr = ctypes.addressof(ctypes.c_char.from_buffer(m2))
want = None
libc = ctypes.CDLL(None, use_errno=True)

def crc():
    return zlib.crc32(memoryview(m2)[:m2len], zlib.crc32(buf))

def rewrite(off, mb, salt):
    for i in range(mb):
        buf[off + i * MB:off + (i + 1) * MB] = bytes((b * 13 + salt + i) & 255 for b in range(256)) * 4096

def serve(name):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path = os.path.join(T, name + ".sock")
    s.bind(path + ".new")
    s.listen(8)
    os.rename(path + ".new", path)
    while True:
        c, _ = s.accept()
        with c:
            if c.recv(16).strip() == b"check":
                ok = crc() == want
                c.sendall(("%s %s %d\n" % ("OK" if ok else "BAD", name, os.getpid())).encode())

def child(name, body):
    pid = os.fork()
    if pid == 0:
        try:
            body()
        finally:
            os._exit(1)
    print("PID", name, pid, flush=True)
    return pid

def leaf(name, off=0, mb=0, salt=0):
    def body():
        global want
        rewrite(off, mb, salt)
        want = crc()
        serve(name)
    return body

def worker1():
    global want
    rewrite(0, 1, 1)
    child("g", leaf("g", 10 * MB, 2, 50))
    want = crc()
    serve("w1")

def worker2():
    global want, m2len
    rewrite(0, 2, 2)
    if libc.munmap(ctypes.c_void_p(m2addr + 4 * MB), ctypes.c_size_t(4 * MB)):
        os._exit(1)
    m2len = 4 * MB
    want = crc()
    serve("w2")

def middle():
    child("o", leaf("o"))
    os._exit(0)	# the orphan goes to the master, the subreaper

libc.prctl(36, 1, 0, 0, 0)	# PR_SET_CHILD_SUBREAPER
want = crc()
print("M2 %x" % m2addr, flush=True)
child("w1", worker1)
child("w2", worker2)
child("w3", leaf("w3", 0, 3, 3))
m = child("a", middle)
os.waitpid(m, 0)
child("z", lambda: os._exit(7))	# never waited for: a zombie
# then the master maps 16 KiB right below the mapping of its 64 MiB, which
# the kernel merges into it (as what an allocator maps next to it): the
# master's mapping and the workers' differ in bounds
a = ctypes.addressof((ctypes.c_char * len(buf)).from_buffer(buf))
for l in open("/proc/self/maps"):
    s, e = (int(x, 16) for x in l.split()[0].split("-"))
    if s <= a < e:
        low = s
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                      ctypes.c_long)
# PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE
if libc.mmap(low - 16384, 16384, 3, 0x22 | 0x100000, -1, 0) == low - 16384:
    ctypes.memset(low - 16384, 0x5a, 16384)
    print("GREW %x" % (low - 16384), flush=True)
threading.Thread(target=serve, args=("m",), daemon=True).start()
print("READY", flush=True)
while True:
    time.sleep(3600)
PY

pid=$(start_bg "$T/out" "$PY" "$T/pool.py" "$T")
wait_for_line "$T/out" '^READY' 60 || bail "the pool did not start"
names="m w1 w2 w3 g o"
for n in $names; do
	wait_for "[ -S $T/$n.sock ]" 60 || bail "$n does not serve"
done

# ask NAME: its answer to "check"
ask() {
	"$PY" - "$T/$1.sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(60)
s.connect(sys.argv[1])
s.sendall(b"check\n")
print(s.recv(100).decode().strip())
PY
}
all_ok() {
	local n a
	for n in $names; do
		a=$(ask "$n")
		[ "${a%% *}" = OK ] || { note "$n: ${a:-no answer}"; return 1; }
	done
}
# pss: the sum of Pss (KiB) of the live processes of the tree
pss() {
	local p s=0 v
	for p in $(tree_pids "$pid"); do
		v=$(awk '/^Pss:/ { print $2 }' /proc/$p/smaps_rollup 2>/dev/null)
		s=$((s + ${v:-0}))
	done
	echo $s
}

o=$(line_field "$T/out" '^PID o ' 3)
w1=$(line_field "$T/out" '^PID w1 ' 3)
grew=$(line_field "$T/out" '^GREW ' 2)
# vma_of PID ADDR: the mapping of PID holding the hex ADDR
vma_of() {
	"$PY" - "$1" "$2" <<'PY'
import sys
a = int(sys.argv[2], 16)
for l in open("/proc/%s/maps" % sys.argv[1]):
    s, e = (int(x, 16) for x in l.split()[0].split("-"))
    if s <= a < e:
        print(l.split()[0])
PY
}
vm=$([ -n "$grew" ] && vma_of "$pid" "$grew")
note "the master's mapping below its 64 MiB: ${vm:-none}"
check "the master's 64 MiB mapping grew below after the forks, the workers' did not" \
	eval '[ -n "$grew" ] && [ "${vm%-*}" = "$grew" ] && [ -z "$(vma_of "$w1" "$grew")" ] &&
	      [ $((0x${vm#*-} - 0x$grew)) -gt $((64 << 20)) ]'
check "the orphan is the master's child" [ "$(awk '{ print $4 }' /proc/$o/stat)" = "$pid" ]
check "every process has its contents before the dump" all_ok
before=$(pss)
note "Pss of the tree before: $before KiB"
check "before: the 64 MiB are shared (Pss sum below 160 MiB)" [ "$before" -lt $((160 * 1024)) ]

dump_and_restore "$pid" "$T/img" || exit 1
check "every process has its contents after the restore" all_ok
after=$(pss)
note "Pss of the tree after: $after KiB"
check "after: the sum of Pss stays near its value before" \
	[ "$after" -lt $((before * 5 / 4 + 16 * 1024)) ]
check "the zombie is still a zombie" \
	[ "$(proc_state "$(line_field "$T/out" '^PID z ' 3)")" = Z ]
check "the orphan is still the master's child" [ "$(awk '{ print $4 }' /proc/$o/stat)" = "$pid" ]
w2=$(line_field "$T/out" '^PID w2 ' 3)
hole=$((0x$(line_field "$T/out" '^M2 ' 2) + (4 << 20)))
# mapped PID ADDR: is ADDR inside a mapping of PID?
mapped() {
	"$PY" - "$1" "$2" <<'PY'
import sys
a = int(sys.argv[2])
for l in open("/proc/%s/maps" % sys.argv[1]):
    s, e = (int(x, 16) for x in l.split()[0].split("-"))
    if s <= a < e:
        sys.exit(0)
sys.exit(1)
PY
}
check "worker 2's unmapped half stays unmapped (the master's is there)" \
	eval '! mapped "$w2" "$hole" && mapped "$pid" "$hole"'
