#!/bin/bash
# A Python interpreter holding a 200000-entry dict and a generator in the
# middle of its iteration: after restore (same pid) the generator goes on
# from where it was (no restart, no gap) and the dict is intact.
. "$(dirname "$0")/../lib.sh"
PY=$(command -v /usr/bin/python3 || command -v python3) || skip_all "no python3"

cat > "$T/prog.py" <<'PY'
import os, signal, time
# Lines: "G <value> <pid>" every 100 ms, value 0, 1, 2, ... from the generator;
# SIGUSR1 asks for "CHECK <k> OK sum=<n> len=<n>" (or FAIL); "ERROR ..." exits.
d = {i: i * 3 for i in range(200000)}
want = sum(d.values())
checks = 0
requested = False

def on_usr1(sig, frame):
    global requested
    requested = True

def gen():
    i = 0
    while True:
        yield i
        i += 1

signal.signal(signal.SIGUSR1, on_usr1)
g = gen()
while True:
    v = next(g)
    print("G", v, os.getpid(), flush=True)
    if requested:
        requested = False
        checks += 1
        s, n = sum(d.values()), len(d)
        ok = s == want and n == 200000 and all(d[i] == i * 3 for i in range(0, 200000, 997))
        print("CHECK", checks, "OK" if ok else "FAIL", "sum=%d len=%d" % (s, n), flush=True)
    time.sleep(0.1)
PY
pid=$(start_bg "$T/out" "$PY" "$T/prog.py")
wait_for_line "$T/out" '^G 5 ' || bail "python did not start"
check "the dict is whole before the dump" request_check "$pid" "$T/out"

DR_LOG=$T/out dump_and_restore "$pid" "$T/img" || exit 1
last=$(head -n "$DR_LINES" "$T/out" | awk '$1 == "G" { v = $2 } END { print v }')
check "5 more values" wait_for_line "$T/out" "^G $((last + 5)) " 10
check "the generator goes on from $last: every value once, in order, same pid" \
	awk -v pid="$pid" '$1 == "G" { if ($2 != n || $3 != pid) { print "# line " NR ": " $0; exit 1 } n++ }' "$T/out"
check "the dict is intact after the restore (sum and entries)" request_check "$pid" "$T/out"
check "no ERROR line or traceback" [ "$(lines_count "$T/out" 'ERROR|Traceback')" = 0 ]
