#!/bin/bash
# System V IPC across dump, kill and restore (tests/progs/sysvipc, run as
# nobody): a segment a parent and its child share at the same address with a
# counter both increment under a semaphore lock, the child's read-only
# attachment of it, a segment removed (IPC_RMID) while both keep it attached,
# a semaphore set with values, a message queue with three messages.  After
# the restore: the same ids, keys, modes, owners and creators (ipcs and
# /proc/sysvipc compared), the contents (a hole, a pattern, the tail of a
# partial page), the counter goes on from where it was, the removed segment
# is removed again and still attached twice, the messages arrive in order.
# Then the restore refuses, naming it, a key and an id taken by another
# segment, and leaves nothing behind; once they are gone it restores.
. "$(dirname "$0")/../lib.sh"
require_root

key=$(printf '%x' $(( 0x6b750000 + ($$ % 16384) * 4 )))
pid=$(start_bg "$T/out" setpriv --reuid=65534 --regid=65534 --clear-groups "$PROGS/sysvipc" "$key")
at_exit "ipcrm -M 0x$key -S 0x$(printf '%x' $((0x$key + 1))) -Q 0x$(printf '%x' $((0x$key + 2))) 2>/dev/null"
wait_for_line "$T/out" '^IDS ' || bail "sysvipc did not start"
wait_for_line "$T/out" '^C 10 ' || bail "sysvipc does not count"
ids=$(grep '^IDS ' "$T/out")
shm=$(sed -n 's/.* shm=\([0-9]*\).*/\1/p' <<< "$ids")
rm=$(sed -n 's/.* rm=\([0-9]*\).*/\1/p' <<< "$ids")
sem=$(sed -n 's/.* sem=\([0-9]*\).*/\1/p' <<< "$ids")
msg=$(sed -n 's/.* msg=\([0-9]*\).*/\1/p' <<< "$ids")
child=$(sed -n 's/.* child=\([0-9]*\).*/\1/p' <<< "$ids")
at_exit "ipcrm -m $rm 2>/dev/null"

# ipcs_of: the ipcs lines of our objects, and /proc/sysvipc with the creator
# (key id perms size nattch uid gid cuid cgid; for sems key id perms nsems
# uid gid cuid cgid; for queues key id perms bytes count uid gid cuid cgid)
ipcs_of() {
	ipcs -m | awk -v a="$shm" -v b="$rm" '$2 == a || $2 == b'
	ipcs -s | awk -v a="$sem" '$2 == a'
	ipcs -q | awk -v a="$msg" '$2 == a'
	awk -v a="$shm" -v b="$rm" '$2 == a || $2 == b { print "shm", $1, $2, $3, $4, $7, $8, $9, $10, $11 }' /proc/sysvipc/shm
	awk -v a="$sem" '$2 == a { print "sem", $1, $2, $3, $4, $5, $6, $7, $8 }' /proc/sysvipc/sem
	awk -v a="$msg" '$2 == a { print "msg", $1, $2, $3, $4, $5, $8, $9, $10, $11 }' /proc/sysvipc/msg
}
before=$(ipcs_of)
note "$before"
check "the objects are there before the dump (4 ipcs lines, 4 /proc lines)" \
	[ "$(grep -c . <<< "$before")" = 8 ]
check "its check passes before the dump" request_check "$pid" "$T/out"

DR_LOG=$T/out dump_and_restore "$pid" "$T/img" || exit 1
after=$(ipcs_of)
check "same ids, keys, modes, sizes, attach counts, owners and creators after the restore" \
	[ "$before" = "$after" ] || note "after:"$'\n'"$after"
check "segment B is still marked removed (dest)" eval "ipcs -m | awk -v b=$rm '\$2 == b' | grep -q dest"
last=$(head -n "$DR_LINES" "$T/out" | awk '$1 == "C" { v = $2 } END { print v }')
check "20 more increments after the restore" wait_for_line "$T/out" "^C $((last + 20)) " 20
check "the shared counter goes on from $last (parent and child, no restart)" \
	awk -v n="$DR_LINES" -v last="$last" -v p="$pid" -v c="$child" '
		NR <= n || $1 != "C" { next }
		$2 <= last { print "# value " $2 " after the restore, was " last; exit 1 }
		$3 == p { sp++ } $3 == c { sc++ }
		END { if (!sp || !sc) { print "# parent " sp + 0 " child " sc + 0 " lines"; exit 1 } }' "$T/out"
check "contents, semaphore values, attach counts, removal: its check passes" request_check "$pid" "$T/out"
n=$(lines_count "$T/out" '^MSGEND')
kill -USR2 "$pid"
wait_for_line "$T/out" '^MSGEND' 10 > /dev/null
check "the three messages are received, in order, with their types" \
	eval "[ \"\$(grep -E '^MSG ' '$T/out' | tr '\n' '|')\" = 'MSG 1 first|MSG 2 second|MSG 7 third, a little longer|' ]"
check "no ERROR line" [ "$(lines_count "$T/out" ERROR)" = 0 ]

# a second dump; then a key and an id that are taken make the restore fail
check "second dump" kup_run "$T/dump2.log" dump -t "$pid" -D "$T/img2"
wait_gone "$pid"
wait_gone "$child"
mkseg() {	# mkseg KEY_DEC [NEXT_ID]: a segment of someone else
	python3 -c '
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
if len(sys.argv) > 2:
	open("/proc/sys/kernel/shm_next_id", "w").write(sys.argv[2])
i = libc.shmget(int(sys.argv[1]), 4096, 0o1600)
print(i)
sys.exit(i < 0)' "$@"
}
# the tree left segment A (not removed, no longer attached) behind
check "segment A is left behind by the killed tree" eval "ipcs -m | awk '\$2 == $shm' | grep -q ."
ipcrm -m "$shm"
other=$(mkseg $((0x$key)))
at_exit "ipcrm -m $other 2>/dev/null"
nseg=$(grep -c . /proc/sysvipc/shm)
check_fails "the restore fails while the key is another segment's" \
	kup_run "$T/restore-key.log" restore -D "$T/img2" -d
check "it names the key and the id" grep -q "key 0x$key (id $shm): the key is taken by id $other" "$T/restore-key.log" ||
	note "$(tail -n 3 "$T/restore-key.log")"
check "and leaves no process and no new segment behind" \
	eval "! alive $pid && ! alive $child && [ $(grep -c . /proc/sysvipc/shm) = $nseg ]"
ipcrm -m "$other"
other=$(mkseg 0 "$shm")
check "an intruder segment got id $shm" [ "$other" = "$shm" ]
check_fails "the restore fails while the id is another segment's" \
	kup_run "$T/restore-id.log" restore -D "$T/img2" -d
check "it names the id" grep -q "System V shared memory id $shm (key 0x$key): the id is taken by another object" "$T/restore-id.log" ||
	note "$(tail -n 3 "$T/restore-id.log")"
check "and leaves no process and no new segment behind" \
	eval "! alive $pid && [ $(grep -c . /proc/sysvipc/shm) = $nseg ]"
ipcrm -m "$other"
n=$(wc -l < "$T/out")
check "with the intruders gone the restore succeeds" kup_run "$T/restore3.log" restore -D "$T/img2" -d ||
	note "$(tail -n 5 "$T/restore3.log")"
track "$pid"
check "the counter goes on again" wait_for_line "$T/out" "^C $(( $(tail -n 1 "$T/out" | awk '{ print $2 }') + 10 )) " 20
check "its check passes" request_check "$pid" "$T/out"
check "no ERROR line" [ "$(lines_count "$T/out" ERROR)" = 0 ]
kill_tree "$pid"
wait_gone "$pid"
ipcrm -M "0x$key" -S "0x$(printf '%x' $((0x$key + 1)))" -Q "0x$(printf '%x' $((0x$key + 2)))" 2>/dev/null

# refused at dump, naming what, and the tree is left running: undo state,
# a partly unmapped attachment, an IPC namespace of its own
refused() {	# refused WHAT REGEX CMD...
	local what=$1 re=$2 p
	shift 2
	p=$(start_bg "$T/$what.out" "$@")
	wait_for_line "$T/$what.out" '^C 5 ' || { not_ok "$what: sysvipc did not start"; return; }
	check_fails "$what: the dump is refused" kup_run "$T/$what.log" dump -t "$p" -D "$T/img-$what"
	check "$what: the refusal names it" grep -qE "$re" "$T/$what.log" || note "$(tail -n 3 "$T/$what.log")"
	check "$what: the tree goes on, not stopped" eval "not_frozen $p && wait_for_line '$T/$what.out' '^C $(( $(line_field "$T/$what.out" '^C ' 2) + 5 )) ' 10"
	kill_tree "$p"
	wait_gone "$p"
	ipcrm -M "0x$key" -S "0x$(printf '%x' $((0x$key + 1)))" -Q "0x$(printf '%x' $((0x$key + 2)))" 2>/dev/null
	ipcrm -m "$(sed -n 's/.* rm=\([0-9]*\).*/\1/p' "$T/$what.out")" 2>/dev/null
	return 0
}
refused undo 'pid [0-9]+: has System V semaphore undo adjustments \(semop SEM_UNDO\)' \
	"$PROGS/sysvipc" "$key" undo
refused partial "pid [0-9]+: System V shared memory shmid [0-9]+ at 0x[0-9a-f]+: the attachment was partly unmapped" \
	"$PROGS/sysvipc" "$key" partial
refused ipcns "pid [0-9]+: System V shared memory \(shmid [0-9]+ at 0x[0-9a-f]+\) in an IPC namespace of its own is not supported" \
	unshare -i "$PROGS/sysvipc" "$key"
