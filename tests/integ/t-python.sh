#!/bin/bash
# A Python interpreter with a 200000-entry dict and a generator mid-iteration.
. "$(dirname "$0")/../lib.sh"
command -v python3 >/dev/null || skip_all "no python3"

cat > "$T/prog.py" <<'PY'
import time
d = {i: i * 3 for i in range(200000)}
want = sum(d.values())
def gen():
    i = 0
    while True:
        yield i
        i += 1
g = gen()
while True:
    v = next(g)
    ok = sum(d.values()) == want and len(d) == 200000
    print("G", v, "OK" if ok else "BAD", flush=True)
    time.sleep(0.1)
PY
pid=$(start_bg "$T/out" python3 "$T/prog.py")
wait_for_line "$T/out" '^G 5 ' || exit 1
check "dump of python3" "$KUP" dump -t "$pid" -D "$T/img"
wait_gone "$pid"
last=$(tail -n 1 "$T/out" | awk '{print $2}')
check "restore" "$KUP" restore -D "$T/img" -d
track "$pid"
wait_for_line "$T/out" "^G $((last + 5)) " 10
check "the generator continues from $last without restarting" \
	awk '{ if ($2 != n) exit 1; n++ } END { exit n < '$((last + 5))' }' "$T/out"
check "the dict is intact" [ "$(lines_count "$T/out" BAD)" = 0 ]
