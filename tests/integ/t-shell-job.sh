#!/bin/bash
# The seeds' loop.sh (while :; do sleep 1; date; done) started from a
# terminal: a dump without --shell-job is refused; dumped with --shell-job
# and restored with --shell-job from another terminal it comes back with the
# same pid, on the new terminal, and its dates go on from where they were.
. "$(dirname "$0")/../lib.sh"
command -v script > /dev/null || skip_all "no script(1)"

printf '#!/bin/sh\nwhile :; do\n    sleep 1\n    date\ndone\n' > "$T/loop.sh"
chmod +x "$T/loop.sh"
# As in the seeds, loop.sh is a job of a shell on a terminal: script(1) runs
# a shell on a pty, with job control (set -m: loop.sh gets its own process
# group; the session and its leader, the shell, stay outside the tree).
setsid script -qfc "bash -c 'set -m; $T/loop.sh; :'" "$T/tty1" > /dev/null 2>&1 < /dev/null &
track $!
wait_for "pgrep -f '^/bin/sh $T/loop.sh'" 5
pid=$(pgrep -f "^/bin/sh $T/loop.sh" | head -n 1)
[ -n "$pid" ] || bail "loop.sh did not start"
track "$pid"
# The controlling terminal (tty_nr of /proc/PID/stat), 0 if none.
tty_nr() { awk '{ sub(/.*\) /, ""); print $5 }' /proc/$1/stat 2>/dev/null; }
check "loop.sh (pid $pid) runs on a terminal" [ "$(tty_nr "$pid")" != 0 ]
wait_for "[ \$(grep -c UTC '$T/tty1') -ge 2 ]" 5

check_fails "dump without --shell-job is refused" kup_try dump -t "$pid" -D "$T/img0"
check "... naming --shell-job" grep -q -- "--shell-job" "$T/err"
check "... and loop.sh still runs" not_frozen "$pid"

check "kup dump --shell-job" kup_run "$T/dump.log" dump -t "$pid" -D "$T/img" --shell-job
check "loop.sh is gone" wait_gone "$pid"
last=$(grep UTC "$T/tty1" | tail -n 1 | tr -d '\r')
setsid script -qfc "$KUP restore -D $T/img --shell-job" "$T/tty2" > /dev/null 2>&1 < /dev/null &
track $!
check "loop.sh is back with pid $pid" wait_for "alive $pid" 10
restorer=$(pgrep -f "^$KUP restore -D $T/img" | head -n 1)
check "on the new terminal, kup restore's" \
	eval '[ -n "$restorer" ] && [ "$(tty_nr $pid)" != 0 ] && [ "$(tty_nr $pid)" = "$(tty_nr $restorer)" ]'
check "two more dates on the new terminal" wait_for "[ \$(grep -c UTC '$T/tty2') -ge 2 ]" 6
first=$(grep UTC "$T/tty2" | head -n 1 | tr -d '\r')
check "the dates go on ($last, then $first)" \
	[ "$(date -d "$first" +%s)" -gt "$(date -d "$last" +%s)" ]
check "a second apart, as before" eval '
	grep UTC "$T/tty2" | tr -d "\r" | while read -r d; do date -d "$d" +%s; done |
		awk "NR > 1 && (\$1 - p < 1 || \$1 - p > 3) { exit 1 } { p = \$1 }"'
