#!/bin/bash
# Priorities where they are read: when kup's stderr is journald's stream (a
# unit's, JOURNAL_STREAM naming its device and inode) each line starts with
# its syslog priority (<3> error, <4> warning, <6> info), so `journalctl -p
# err` finds kup's errors; the holder's lines in the kernel log (/dev/kmsg)
# carry their level too.  On a terminal or into a file: plain lines.
. "$(dirname "$0")/../lib.sh"
require_root
plan 7

mkdir -m 0777 "$T/open"
# run_to FILE JS ARGS...: kup ARGS with stderr to FILE, JOURNAL_STREAM=JS
# ("self": FILE's own device:inode)
run_to() {
	local f=$1 js=$2
	shift 2
	: > "$f"
	[ "$js" = self ] && js=$(stat -L -c '%d:%i' "$f")
	JOURNAL_STREAM=$js KUP_INSECURE_IMAGES=1 "$KUP" "$@" 2>> "$f" > /dev/null
}
run_to "$T/j" self restore -D "$T/open"
check "into journald's stream: the error has priority <3>" grep -q '^<3>kup restore: error: ' "$T/j" ||
	note "$(cat "$T/j")"
check "... the warning <4>" grep -q '^<4>kup restore: warning: ' "$T/j"
check "... every line has a priority" eval "! grep -qv '^<[0-7]>' '$T/j'"
: > "$T/other"
run_to "$T/f" "$(stat -L -c '%d:%i' "$T/other")" restore -D "$T/open"
check "JOURNAL_STREAM naming another file: plain lines" \
	eval "grep -q '^kup restore: error: ' '$T/f' && ! grep -q '^<' '$T/f'"
run_to "$T/p" "" restore -D "$T/open"
check "no JOURNAL_STREAM: plain lines" \
	eval "grep -q '^kup restore: error: ' '$T/p' && ! grep -q '^<' '$T/p'"

# The holder: its messages go to /dev/kmsg with their level (LOG_USER).
echo "<6>kup-test-probe-$$" > /dev/kmsg 2> /dev/null
if ! dd if=/dev/kmsg iflag=nonblock 2> /dev/null | grep -aq "kup-test-probe-$$"; then
	ok "# SKIP this kernel's /dev/kmsg does not keep what is written to it"
	ok "# SKIP (the holder's levels)"
	exit 0
fi
S=$T/store.ppp
kup_run "$T/fmt.log" ppp format "$S" --size 64M || bail "kup ppp format"
pid=$(start_bg "$T/out" "$PROGS/counter")
wait_for_line "$T/out" '^C 2 ' || bail "counter did not start"
kup_run "$T/dump.log" dump -t "$pid" --ppp "$S" || bail "kup dump: $(tail -n 3 "$T/dump.log")"
wait_gone "$pid"
seq0=$(dd if=/dev/kmsg iflag=nonblock 2> /dev/null | tail -n 1 | cut -d, -f2)
check "kup hold --log /dev/kmsg" kup_run "$T/hold.log" hold --ppp "$S" --log /dev/kmsg
holder=$(sed -n 's/.*(holder pid \([0-9]*\)).*/\1/p' "$T/hold.log")
[ -n "$holder" ] && track "$holder"
"$KUP" hold --release > /dev/null 2>&1
wait_gone "$holder" 10
# a /dev/kmsg record: PRIO,SEQ,TIME,FLAGS;TEXT -- PRIO = facility * 8 + level
dd if=/dev/kmsg iflag=nonblock 2> /dev/null | awk -F'[,;]' -v s="${seq0:-0}" '$2 > s' > "$T/kmsg"
check "the holder's lines are in the kernel log at LOG_USER|LOG_INFO (14)" \
	grep -qE '^14,[0-9]+,[0-9]+,[^;]*;kup hold: holding the PIDs' "$T/kmsg" ||
	note "$(grep 'kup hold' "$T/kmsg" | head -n 3)"
