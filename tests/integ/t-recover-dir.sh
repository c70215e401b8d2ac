#!/bin/bash
# kup recover and the directory store's staging directory (docs/design.md,
# "When kup dies").  kup dump -D DIR writes into DIR/.kup-new-XXXXXX,
# journaled as `partial`, and replaces DIR's checkpoint only in its commit,
# journaled as `committing` just before it.  The journal of a killed dump
# (written here as the dump writes it, for a kup that is gone, so that the
# kill lands exactly where each case needs it) is replayed by kup recover:
#  - killed before its commit: the staging directory goes, the previous
#    checkpoint in DIR stays, byte for byte;
#  - killed in its commit before the commit removed anything (the staging
#    directory still holds the new inventory.img): the same;
#  - killed in its commit once the new inventory.img was moved in: DIR
#    holds no committed checkpoint, its images go, inventory.img first;
#  - a real dump of a process tree killed inside an injected syscall of its
#    second process (KUP_FAULT_DIE_IN_SYSCALL), its first one's images
#    written: its staging directory is gone after the recovery, the
#    previous checkpoint is intact and the tree runs on.
. "$(dirname "$0")/../lib.sh"
require_root

D=$T/prev
pid=$(start_bg "$T/c.out" "$PROGS/proctree")
wait_for "grep -q '^READY' '$T/c.out'" 10
check "a previous checkpoint" kup_run "$T/d.log" dump -t "$pid" -D "$D" --leave-running
(cd "$D" && md5sum ./*.img) > "$T/sums"
nimg=$(ls "$D"/*.img | wc -l)

# a kup that is gone: a pid that exited
( exit 0 ) &
dead=$!
wait "$dead"
mkdir -p /run/kup/journal
chmod 0700 /run/kup/journal

# killed_dump CASE STAGING_INVENTORY LINES...: the journal of a dump of
# nothing (no task left to put back) into $D, killed after LINES, with a
# staging directory holding a copy of the images, with or without its
# inventory.img; then kup recover.
killed_dump() {
	local c=$1 inv=$2 j=/run/kup/journal/dump-$dead-$((4242 + $1))
	shift 2
	mkdir -m 0700 "$D/.kup-new-t$c"
	cp "$D"/*.img "$D/.kup-new-t$c/"
	[ "$inv" = yes ] || rm "$D/.kup-new-t$c/inventory.img"
	{
		echo "kup-journal 1 dump $dead $((4242 + c))"
		echo "store dir $D"
		echo "leave-running"
		echo "partial $D/.kup-new-t$c"
		for l in "$@"; do echo "$l"; done
	} > "$j"
	chmod 0600 "$j"
	"$KUP" recover > "$T/r$c.log" 2>&1
	cat "$T/r$c.log"
	check "case $c: the journal was replayed" [ ! -e "$j" ]
	check "case $c: the staging directory is gone" [ ! -e "$D/.kup-new-t$c" ]
}

killed_dump 1 yes
check "killed before the commit: the previous checkpoint is intact" \
	eval '(cd "$D" && md5sum -c --quiet "$T/sums") && [ "$(ls "$D"/*.img | wc -l)" = "$nimg" ]'

killed_dump 2 yes committing
check "killed in the commit, the new inventory not moved in: the previous checkpoint is intact" \
	eval '(cd "$D" && md5sum -c --quiet "$T/sums") && [ "$(ls "$D"/*.img | wc -l)" = "$nimg" ]'

# a real dump killed inside an injected syscall: brk, once per process, of
# the second process (the first one's images are in the staging directory)
KUP_FAULT_DIE_IN_SYSCALL=12:2 "$KUP" dump -t "$pid" -D "$D" --leave-running > "$T/df.log" 2>&1
note "killed dump: exit $?: $(tail -n 1 "$T/df.log")"
check "the killed dump had its staging directory, journaled" \
	eval 'ls -d "$D"/.kup-new-* && grep -h "^partial $D/.kup-new-" /run/kup/journal/dump-*'
"$KUP" recover > "$T/rf.log" 2>&1
cat "$T/rf.log"
check "after the recovery no staging directory is left" eval '! ls -d "$D"/.kup-new-* 2> /dev/null'
check "... and the previous checkpoint is intact" \
	eval '(cd "$D" && md5sum -c --quiet "$T/sums") && [ "$(ls "$D"/*.img | wc -l)" = "$nimg" ]'
check "the tree runs on, not traced" \
	eval "kill -0 $pid && ! grep -q '^TracerPid:[[:space:]]*[1-9]' /proc/$pid/status"
check "... and passes its self-check" request_check "$pid" "$T/c.out"

killed_dump 3 no committing
check "killed in the commit once the new inventory was in: no image left" \
	eval '[ "$(ls "$D"/*.img 2> /dev/null | wc -l)" = 0 ]'

kill "$pid"
