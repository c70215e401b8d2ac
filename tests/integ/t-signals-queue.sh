#!/bin/bash
# A queue of pending signals that a stream of more keeps growing while the
# dump reads it.  P (python3) has N SIGRTMIN+5 queued, blocked, and takes
# the SIGRTMIN+6 of a storm that goes on during a dump that lets P run on:
# they queue while P is frozen.  The kernel finds a queued signal by walking
# the queue from its head: read to its end, a queue that grew about as fast
# as it was read held the tree frozen until it was full (RLIMIT_SIGPENDING,
# here the storm's own bound: half of it), 10 s and more.
# 1. The dump ends within 10 s (reading the N takes a fraction of one; read
#    to the end of the growing queue it took 20-29 s).
# 2. Its image holds exactly the N SIGRTMIN+5, and no more SIGRTMIN+6 than
#    were sent.
# 3. P runs on, untraced, its SIGRTMIN+5 still blocked and pending.
. "$(dirname "$0")/../lib.sh"
require_root
command -v python3 > /dev/null || skip_all "needs python3"
plan 5

N=5000
cat > "$T/p.py" <<'EOF2'
import signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGRTMIN + 5])
signal.signal(signal.SIGRTMIN + 6, lambda s, f: None)
print("READY", flush=True)
while True:
    signal.pause()
EOF2
pid=$(start_bg "$T/out" python3 "$T/p.py")
wait_for_line "$T/out" '^READY' 10 > /dev/null || bail "P did not start"
queue_has_room "$pid" || skip_all "the signal queue of root is half full already"
sent=0
for ((i = 0; i < N; i++)); do
	kill -s RTMIN+5 "$pid" && sent=$((sent + 1))
done
rt=$(($(kill -l SIGRTMIN) + 5))
pnd=$(printf '%016x' $((1 << (rt - 1))))
check "P has its $N SIGRTMIN+5 queued, blocked" eval \
	'[ $sent = $N ] && grep -q "^ShdPnd:[[:space:]]*$pnd$" /proc/$pid/status && grep -q "^SigBlk:[[:space:]]*$pnd$" /proc/$pid/status'

rt_storm RTMIN+6 "$pid" "$T/stop" > "$T/storm.log" 2>&1 &
sp=$!
sleep 0.2
t0=$(_now_ms)
check "kup dump --leave-running, under the storm" kup_run "$T/dump.log" dump -t "$pid" -D "$T/img" --leave-running
t1=$(_now_ms)
touch "$T/stop"
wait "$sp"
m=$(cat "$T/storm.log")
note "the dump took $((t1 - t0)) ms; $m SIGRTMIN+6 sent by the storm"
check "the dump took less than 10 s" [ $((t1 - t0)) -lt 10000 ]

# pending N MAX: the process-wide pending signals in the image are N
# SIGRTMIN+5 and at most MAX SIGRTMIN+6
pending() {
	"$KUP" show "$T/img" --json | python3 -c '
import json, sys
rt, n, mx = (int(a) for a in sys.argv[1:])
found = []
def walk(x):
    if isinstance(x, dict):
        for k, v in x.items():
            if k == "shared_pending":
                found.append(v)
            walk(v)
    elif isinstance(x, list):
        for v in x:
            walk(v)
walk(json.load(sys.stdin))
v = [s["raw"]["signo"] for s in found[0]] if len(found) == 1 else []
n5, n6 = v.count(rt + 5), v.count(rt + 6)
print(len(found), "lists,", n5, "SIGRTMIN+5,", n6, "SIGRTMIN+6, of", len(v))
sys.exit(not (len(found) == 1 and n5 == n and n6 <= mx and n5 + n6 == len(v)))' \
		"$(kill -l SIGRTMIN)" "$@"
}
check "the image holds the $N SIGRTMIN+5, no more SIGRTMIN+6 than were sent" pending "$N" "$m"
# (the SIGRTMIN+6 queued meanwhile are taken first)
check "P runs on, untraced, SIGRTMIN+5 still blocked and pending" wait_for \
	'not_frozen $pid && grep -q "^ShdPnd:[[:space:]]*$pnd$" /proc/$pid/status && grep -q "^SigBlk:[[:space:]]*$pnd$" /proc/$pid/status' 10
