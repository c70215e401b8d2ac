#!/bin/bash
# Benchmarks: figures, never assertions.
#  1. dump and restore of a process with 1 GiB of touched memory, beside one
#     memcpy of 1 GiB in the same run (images in a tmpfs directory);
#  2. the time a small service is frozen by `kup dump --leave-running`
#     (largest gap between its 1 ms ticks around the dump).
set -u
cd "$(dirname "$0")/.."
KUP=${KUP:-build/kup}; PROGS=${PROGS:-build/progs}
MB=${BENCH_MB:-1024}
dir=$(mktemp -d /dev/shm/kup-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT

# stray inherited fds would become part of the measured trees
for fd in $(ls /proc/$$/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null; done

exec "$PROGS/reaper" bash -c '
KUP='"$KUP"' PROGS='"$PROGS"' MB='"$MB"' dir='"$dir"'
ms() { date +%s%N | cut -b1-13; }
build/bench/memcpy "$MB" > "$dir/memcpy"
setsid "$PROGS/bigmem" $((MB * 4 / 3)) > "$dir/bm" 2>&1 < /dev/null &
pid=$!
while ! grep -q READY "$dir/bm"; do sleep 0.2; done
pages=$(grep -o "touched_pages=[0-9]*" "$dir/bm" | cut -d= -f2)
t0=$(ms); "$KUP" -q dump -t $pid -D "$dir/img" || { kill -9 $pid; exit 1; }; t1=$(ms)
for i in $(seq 200); do [ -d /proc/$pid ] || break; sleep 0.05; done
t2=$(ms); "$KUP" -q restore -D "$dir/img" -d; t3=$(ms)
kill -9 $pid
setsid "$PROGS/counter" -i 1 > "$dir/svc" 2>&1 < /dev/null &
svc=$!
sleep 1
"$KUP" -q dump -t $svc -D "$dir/svcimg" --leave-running
sleep 0.5
kill -9 $svc
gap=$(awk "\$1 == \"C\" { if (t) { d = \$4 - t; if (d > m) m = d } t = \$4 } END { print m }" "$dir/svc")
echo "== kup benchmarks ($(uname -r), $(nproc) cpus, images in tmpfs)"
printf "%-44s %10s\n" "what" "ms"
printf "%-44s %10s\n" "memcpy ${MB} MiB into fresh memory" "$(awk "/fresh/ {print \$2}" "$dir/memcpy")"
printf "%-44s %10s\n" "memcpy ${MB} MiB into warm memory" "$(awk "/warm/ {print \$2}" "$dir/memcpy")"
printf "%-44s %10s\n" "kup dump, $((pages / 256)) MiB touched (of $((MB * 4 / 3)))" "$((t1 - t0))"
printf "%-44s %10s\n" "kup restore of the same" "$((t3 - t2))"
printf "%-44s %10s\n" "service frozen by dump --leave-running" "$gap"
'
