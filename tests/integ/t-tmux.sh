#!/bin/bash
# A tmux server (Debian's tmux) with a pane whose shell has a counter running
# in the background: the server (its own session leader: it daemonizes) and
# the pane's processes are dumped, killed and restored.  The pane goes on
# counting where it was (no number lost or repeated: the pane's history
# holds every line), a command typed into it afterwards (send-keys) runs,
# and a new client attaches and sees the pane.  No client is attached during
# the dump (a client is a unix socket peer outside the tree).
. "$(dirname "$0")/../lib.sh"
require_root
command -v tmux > /dev/null || skip_all "needs tmux"
command -v script > /dev/null || skip_all "needs script (util-linux)"

sock=$T/tmux.sock
tm() { tmux -S "$sock" "$@"; }
# pane_numbers: the counter values in the pane's whole history, in order
pane_numbers() { tm capture-pane -p -S - -E - | grep -oE 'N [0-9]+ *$' | awk '{ print $2 }'; }
last_number() { pane_numbers | tail -n 1; }
# contiguous: the numbers go 0, 1, 2... with no gap and no repeat
contiguous() {
	pane_numbers | awk '$1 != n { printf "# got %s where %d was due\n", $1, n; exit 1 } { n++ }
		END { if (n < 2) exit 1 }'
}

loop='i=0; while :; do echo "N $i"; i=$((i + 1)); sleep 0.1; done'
TMUX= tm -f /dev/null new-session -d -x 100 -y 30 \
	"PS1='$ ' bash --norc --noprofile -c '($loop) & exec bash --norc --noprofile -i'" ||
	bail "tmux did not start"
pid=$(tm display -p '#{pid}')
[ -n "$pid" ] || bail "no tmux server pid"
track "$pid"
at_exit "tmux -S $sock kill-server 2>/dev/null"
wait_for '[ "$(last_number)" -ge 10 ]' 20 || bail "the pane does not count"
check "no client is attached" eval '[ -z "$(tm list-clients)" ]'
note "tmux server $pid, pane processes: $(descendants "$pid" | tr '\n' ' ')"

dump_and_restore "$pid" "$T/img" || exit 1
before=$(last_number)
check "the pane goes on counting after $before" wait_for "[ \$(last_number) -ge $((before + 10)) ]" 20
check "every number once, in order, across the restore (the pane's history)" contiguous
check "the pane's shell is still the foreground of its terminal" \
	eval '[ "$(tm display -p "#{pane_pid}")" = "$(ps -o tpgid= -p "$(tm display -p "#{pane_pid}")" | tr -d " ")" ]'
tm send-keys "echo MARK-\$((6 * 7))-$$" Enter
check "a command typed into the pane runs (send-keys)" \
	wait_for "tm capture-pane -p -S - -E - | grep -q '^MARK-42-$$\$'" 10
# attach: a real client under script(1) (a terminal); its stdin is a fifo
# nobody writes to (at end of input script would type ^D into the pane)
mkfifo "$T/keys"
exec 9<> "$T/keys"
timeout -k 2 20 script -qfec "tmux -S $sock attach" "$T/attach.out" < "$T/keys" > /dev/null 2>&1 &
apid=$!
check "a client attaches" wait_for '[ -n "$(tm list-clients)" ]' 10
check "... and is shown the counting pane" wait_for "grep -q 'N [0-9]' '$T/attach.out'" 10
tm detach-client -a 2>/dev/null; tm detach-client 2>/dev/null
wait "$apid" 2>/dev/null
exec 9>&-
check "the server still runs" alive "$pid"

# the restored tree again
before=$(last_number)
dump_and_restore "$pid" "$T/img2" || exit 1
check "restored twice, the pane goes on counting after $before" \
	wait_for "[ \$(last_number) -ge $((before + 10)) ]" 20
check "every number once, in order" contiguous
ptty=$(tm display -p '#{pane_tty}')
tm send-keys "echo MARK2-\$(tty)" Enter
check "a program run from the pane's shell has its terminal on stdin ($ptty)" \
	wait_for "tm capture-pane -p -S - -E - | grep -q '^MARK2-$ptty\$'" 10
