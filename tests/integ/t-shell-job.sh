#!/bin/bash
# The seeds' loop.sh started from a terminal: dumped with --shell-job and
# restored into another terminal, its dates go on.
. "$(dirname "$0")/../lib.sh"
command -v script > /dev/null || skip_all "no script(1)"

printf '#!/bin/sh\nwhile :; do\n    sleep 1\n    date +%%s\ndone\n' > "$T/loop.sh"
chmod +x "$T/loop.sh"
script -qfc "$T/loop.sh" "$T/tty1" > /dev/null 2>&1 < /dev/null &
echo $! >> "$T/pids"
for i in $(seq 50); do pid=$(pgrep -f "^/bin/sh $T/loop.sh" | head -1); [ -n "$pid" ] && break; sleep 0.1; done
sleep 2.5
check "loop.sh is running (pid $pid)" [ -n "$pid" ]
"$KUP" dump -t "$pid" -D "$T/img" > "$T/err" 2>&1; rc=$?
check "dump without --shell-job is refused" [ $rc -ne 0 ]
check "... naming --shell-job" grep -q -- "--shell-job" "$T/err"
check "dump --shell-job" "$KUP" dump -t "$pid" -D "$T/img" --shell-job
last=$(grep -E '^[0-9]+' "$T/tty1" | tail -1 | tr -d '\r')
script -qfc "$KUP restore -D $T/img --shell-job" "$T/tty2" > /dev/null 2>&1 < /dev/null &
echo $! >> "$T/pids"
sleep 3.5
check "loop.sh is back with pid $pid" alive "$pid"
track "$pid"
first=$(grep -E '^[0-9]+' "$T/tty2" | head -1 | tr -d '\r')
check "the dates continue in the new terminal ($last -> $first)" [ -n "$first" ] && [ "$first" -gt "$last" ]
check "at least two more dates printed" [ "$(grep -cE '^[0-9]+' "$T/tty2")" -ge 2 ]
kill -9 "$pid" 2>/dev/null
