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
# A segment the tree does not attach and a semaphore set it never used are
# kept only when named (--sysv-ipc), and then come back although they were
# gone before the restore (as after a kexec).  Then the restore refuses,
# naming it, a key and an id taken by another segment, and leaves nothing
# behind; once they are gone it restores.  Refused at dump: undo state, a
# partly unmapped attachment, an IPC namespace of the tree's own.  The dump
# makes a thread (it reads /proc/locks on one), which gives kup a semaphore
# undo list of its own: the dumps that keep semaphore sets here fail if the
# undo check compares the tree with kup instead of a task without one.
. "$(dirname "$0")/../lib.sh"
require_root

key=$(printf '%x' $(( 0x6b750000 + ($$ % 16384) * 4 )))
k() { printf '0x%x' $((0x$key + $1)); }
rm_keys() { ipcrm -M "$(k 0)" -S "$(k 1)" -Q "$(k 2)" -M "$(k 3)" -S "$(k 4)" 2>/dev/null; return 0; }
at_exit rm_keys
pid=$(start_bg "$T/out" setpriv --reuid=65534 --regid=65534 --clear-groups "$PROGS/sysvipc" "$key")
wait_for_line "$T/out" '^IDS ' || bail "sysvipc did not start"
wait_for_line "$T/out" '^C 10 ' || bail "sysvipc does not count"
ids=$(grep '^IDS ' "$T/out")
shm=$(sed -n 's/.* shm=\([0-9]*\).*/\1/p' <<< "$ids")
rm=$(sed -n 's/.* rm=\([0-9]*\).*/\1/p' <<< "$ids")
sem=$(sed -n 's/.* sem=\([0-9]*\).*/\1/p' <<< "$ids")
msg=$(sed -n 's/.* msg=\([0-9]*\).*/\1/p' <<< "$ids")
child=$(sed -n 's/.* child=\([0-9]*\).*/\1/p' <<< "$ids")
c=$(sed -n 's/.* c=\([0-9]*\).*/\1/p' <<< "$ids")
d=$(sed -n 's/.* d=\([0-9]*\).*/\1/p' <<< "$ids")
at_exit "ipcrm -m $rm 2>/dev/null"

# ipcs_of: the ipcs lines of our objects, and /proc/sysvipc with the creator
# (key id perms size nattch uid gid cuid cgid; for sems key id perms nsems
# uid gid cuid cgid; for queues key id perms bytes count uid gid cuid cgid)
ipcs_of() {
	ipcs -m | awk -v a="$shm" -v b="$rm" -v c="$c" '$2 == a || $2 == b || $2 == c'
	ipcs -s | awk -v a="$sem" -v d="$d" '$2 == a || $2 == d'
	ipcs -q | awk -v a="$msg" '$2 == a'
	awk -v a="$shm" -v b="$rm" -v c="$c" '$2 == a || $2 == b || $2 == c { print "shm", $1, $2, $3, $4, $7, $8, $9, $10, $11 }' /proc/sysvipc/shm
	awk -v a="$sem" -v d="$d" '$2 == a || $2 == d { print "sem", $1, $2, $3, $4, $5, $6, $7, $8 }' /proc/sysvipc/sem
	awk -v a="$msg" '$2 == a { print "msg", $1, $2, $3, $4, $5, $8, $9, $10, $11 }' /proc/sysvipc/msg
}
# ipc_ids DIR: the ids in DIR/ipc.img, as kup show gives them
ipc_ids() {
	"$KUP" show --json "$1" | python3 -c '
import json, sys
i = json.load(sys.stdin)["ipc.img"]["entries"][0]
print(" ".join(k + "".join(" %d" % e["perm"]["id"] for e in i.get(f, [])) for k, f in
	       (("shm", "shm"), ("sem", "sems"), ("msg", "msgs"))))'
}
before=$(ipcs_of)
note "$before"
check "the objects are there before the dump (6 ipcs lines, 6 /proc lines)" \
	[ "$(grep -c . <<< "$before")" = 12 ]
check "its check passes before the dump" request_check "$pid" "$T/out"

check_fails "a bad --sysv-ipc list is refused" kup_run "$T/bad.log" dump -t "$pid" -D "$T/bad" --sysv-ipc "shm:$c,semx:1"
check "naming the bad item, the tree untouched" \
	eval "grep -q \"'semx:1' is not shm:ID, sem:ID or msg:ID\" '$T/bad.log' && not_frozen $pid"
tree=$(tree_pids "$pid")
check "kup dump --sysv-ipc shm:$c,sem:$d" kup_run "$T/dump.log" dump -t "$pid" -D "$T/img" --sysv-ipc "shm:$c,sem:$d" ||
	note "$(tail -n 5 "$T/dump.log")"
check "the dumped tree is gone (pids ${tree% })" eval '(for p in $tree; do wait_gone $p || exit 1; done)'
check "the image holds segments A, B and C, semaphore sets S and D, queue Q" \
	eval "[ \"\$(ipc_ids '$T/img')\" = 'shm $rm $shm $c sem $sem $d msg $msg' ]" || note "$(ipc_ids "$T/img")"
# as after a kexec, the named objects the tree does not use are gone; the
# others are left behind, and replaced by the restore
ipcrm -m "$c" -s "$d"
DR_LINES=$(wc -l < "$T/out")
check "kup restore -d" kup_run "$T/restore.log" restore -D "$T/img" -d || note "$(tail -n 5 "$T/restore.log")"
track "$pid"
check "pid $pid is back and running" alive "$pid"
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
check "the second dump (without --sysv-ipc) leaves segment C and set D out" \
	eval "[ \"\$(ipc_ids '$T/img2')\" = 'shm $rm $shm sem $sem msg $msg' ]" || note "$(ipc_ids "$T/img2")"
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
rm_keys

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
	rm_keys
	ipcrm -m "$(sed -n 's/.* rm=\([0-9]*\).*/\1/p' "$T/$what.out")" 2>/dev/null
	return 0
}
refused undo 'pid [0-9]+: may hold System V semaphore undo adjustments \(semop SEM_UNDO\)' \
	"$PROGS/sysvipc" "$key" undo
refused partial "pid [0-9]+: System V shared memory shmid [0-9]+ at 0x[0-9a-f]+: the attachment was partly unmapped" \
	"$PROGS/sysvipc" "$key" partial
refused ipcns "pid [0-9]+: System V shared memory \(shmid [0-9]+ at 0x[0-9a-f]+\) in an IPC namespace of its own is not supported" \
	unshare -i "$PROGS/sysvipc" "$key"
