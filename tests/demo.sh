#!/bin/bash
# Dump a running counter, kill it, restore it: the count goes on, same pid.
set -euo pipefail
cd "$(dirname "$0")/.."
KUP=${KUP:-build/kup}
dir=$(mktemp -d /tmp/kup-demo.XXXXXX)
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$dir"' EXIT

# stray inherited fds would become part of the dumped tree
for fd in $(ls /proc/$$/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null; done

exec build/progs/reaper bash -c '
set -euo pipefail
KUP='"$KUP"'; dir='"$dir"'
setsid build/progs/counter > "$dir/out" 2>&1 < /dev/null &
pid=$!
sleep 1.5
echo "counter pid $pid, last lines before the dump:"; tail -n 2 "$dir/out"
"$KUP" dump -t $pid -D "$dir/img"
echo "dumped and killed; restoring..."
"$KUP" restore -D "$dir/img" -d
sleep 1.5
echo "after restore (same pid $pid, the count continues):"; tail -n 3 "$dir/out"
kill $pid
'
