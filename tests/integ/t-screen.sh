#!/bin/bash
# A GNU screen session (Debian's screen, started detached with -dmS) whose
# window's shell has a counter running in the background: the screen
# process (its own session leader) and the window's processes are dumped,
# killed and restored.  The window goes on counting where it was (no number
# lost or repeated in its scrollback), a command stuffed into it afterwards
# runs, and a new client attaches.  No client is attached during the dump.
. "$(dirname "$0")/../lib.sh"
require_root
command -v screen > /dev/null || skip_all "needs screen"
command -v script > /dev/null || skip_all "needs script (util-linux)"

export SCREENDIR=$T/screens
mkdir -m 700 "$SCREENDIR"
name=kup$$
sc() { screen -S "$name" "$@"; }
# numbers: the counter values in the window's scrollback and screen, in order
numbers() {
	rm -f "$T/hc"
	sc -X hardcopy -h "$T/hc" && wait_for "$T/hc" 5 > /dev/null &&
		grep -oE 'N [0-9]+ *$' "$T/hc" | awk '{ print $2 }'
}
last_number() { numbers | tail -n 1; }
contiguous() {
	numbers | awk '$1 != n { printf "# got %s where %d was due\n", $1, n; exit 1 } { n++ }
		END { if (n < 2) exit 1 }'
}

loop='i=0; while :; do echo "N $i"; i=$((i + 1)); sleep 0.1; done'
screen -h 5000 -dmS "$name" bash --norc --noprofile -c "($loop) & exec bash --norc --noprofile -i" ||
	bail "screen did not start"
pid=$(screen -ls | awk -F. -v n="$name" '$2 ~ "^" n { gsub(/[ \t]/, "", $1); print $1; exit }')
[ -n "$pid" ] || bail "no screen pid"
track "$pid"
wait_for '[ "$(last_number)" -ge 10 ]' 20 || bail "the window does not count"
check "no client is attached" eval 'screen -ls | grep -q "Detached"'
note "screen $pid, window processes: $(descendants "$pid" | tr '\n' ' ')"

dump_and_restore "$pid" "$T/img" || exit 1
before=$(last_number)
check "the window goes on counting after $before" wait_for "[ \$(last_number) -ge $((before + 10)) ]" 20
check "every number once, in order, across the restore (the scrollback)" contiguous
sc -X stuff "echo MARK-\$((6 * 7))-\$(tty)
"
check "a command stuffed into the window runs, with its terminal on stdin" \
	wait_for "numbers > /dev/null; grep -q '^MARK-42-/dev/pts/[0-9]*\$' '$T/hc'" 10
# attach: a real client under script(1), its stdin a fifo nobody writes to
mkfifo "$T/keys"
exec 9<> "$T/keys"
timeout -k 2 20 script -qfec "screen -r $name" "$T/attach.out" < "$T/keys" > /dev/null 2>&1 &
apid=$!
check "a client attaches" wait_for 'screen -ls | grep -q "Attached"' 10
check "... and is shown the counting window" wait_for "grep -q 'N [0-9]' '$T/attach.out'" 10
sc -X detach
wait "$apid" 2>/dev/null
exec 9>&-
check "the screen session still runs" alive "$pid"
