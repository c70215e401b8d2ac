#!/bin/bash
# Several trees in one store (kup dump with several -t; kup switch --unit
# A --unit B does the same with services, tests/vm/t-switch-units.sh):
#  - trees that overlap or share a pipe, a FIFO or a unix socket connection
#    are refused before anything is frozen, naming both and the object;
#    everything keeps running and the store keeps what it had;
#  - a dump whose second tree is refused leaves both trees running (the
#    first was frozen and thaws) and commits nothing;
#  - three trees go into one commit (parts.img, p1/ p2/ p3/); kup hold holds
#    the PIDs of all; each is restored on its own (-t PID) and lets only its
#    own PIDs go, its part leaves the store;
#  - a part whose restore fails is kept, marked failed, and the others are
#    still restored; the failed part stays in the store for another try (kup
#    switch --from-store; kup ppp verify names its damage), not tried again
#    by a restore of whatever is left, until kup ppp scrub drops it;
#  - a damaged or lying parts.img (checksum, prefix, root pid, unit) refuses
#    every tree of the store, naming what is wrong; nothing is restored,
#    nothing held, and the store stays as it was.
# The PID holder answers on an abstract unix socket, one per network
# namespace: this test runs in a namespace of its own, not to meet another.
if [ -z "${KUP_T_UNITS_NS:-}" ] && [ "$(id -u)" = 0 ]; then
	KUP_T_UNITS_NS=1 exec unshare --net "$BASH" "$0" "$@"
fi
. "$(dirname "$0")/../lib.sh"
require_root

S=$T/store.ppp
check "kup ppp format $S" kup_run "$T/fmt.log" ppp format "$S" --size 96M
has_ckpt() { "$KUP" ppp status "$S" --json | grep -q '"checkpoint": true'; }
blobs() { "$KUP" ppp ls "$S" --json | python3 -c '
import json, sys
print(" ".join(b["name"] for b in json.load(sys.stdin)))'; }
blob_offset() {
	"$KUP" ppp ls "$S" --json | python3 -c '
import json, sys
for b in json.load(sys.stdin):
    if b["name"] == sys.argv[1]:
        print(b["offset"])' "$1"
}
# counts_on LOG: the counter in LOG writes 3 more lines
counts_on() {
	local n
	n=$(lines_count "$1" '^C ')
	wait_for "[ \$(lines_count '$1' '^C ') -gt $((n + 2)) ]" 10
}
all_running() { local p; for p in "$@"; do not_frozen "$p" || return 1; done; }

a=$(start_bg "$T/a" "$PROGS/counter")
b=$(start_bg "$T/b" "$PROGS/counter")
c=$(start_bg "$T/c" "$PROGS/counter")
for x in a b c; do wait_for_line "$T/$x" '^C 2 ' || bail "counter $x did not start"; done

# ---- refusals, before anything is frozen -----------------------------------------
check_fails "the same tree twice" kup_try dump -t "$a" -t "$a" --ppp "$S"
check "it says so" grep -q "the tree of pid $a and the tree of pid $a are the same tree" "$T/err"
sh=$(start_bg "$T/sh" sh -c "$PROGS/counter; :")
wait_for_line "$T/sh" '^C 1 ' || bail "sh -c counter did not start"
child=$(descendants "$sh" | head -n 1)
check_fails "a tree inside another (-t $sh -t $child)" kup_try dump -t "$sh" -t "$child" --ppp "$S"
check "it says they overlap" grep -q "the trees of the tree of pid $sh and the tree of pid $child overlap" "$T/err"
kill_tree "$sh"

# x writes into a pipe that y reads: two trees (both children of this shell)
exec 7> >(exec setsid cat >> "$T/y")
y=$!
setsid "$PROGS/counter" >&7 2>/dev/null < /dev/null &
x=$!
exec 7>&-
track "$x"; track "$y"
wait_for "[ -s $T/y ]" 10 || bail "the pipe x | y does not work"
check_fails "two trees sharing a pipe (-t $x -t $y)" kup_try dump -t "$x" -t "$y" --ppp "$S"
check "it names both trees and the pipe" \
	grep -q "the tree of pid $x and the tree of pid $y share a pipe (pipe:\[[0-9]*\]): pid $x fd 1 and pid $y fd 0" "$T/err"
note "$(cat "$T/err")"
check "both keep running, nothing is frozen" all_running "$x" "$y"
check "the data still flows" eval 'n=$(wc -l < $T/y); wait_for "[ \$(wc -l < $T/y) -gt $((n + 2)) ]" 10'
kill_tree "$x"; kill_tree "$y"

mkfifo "$T/fifo"
fr=$(start_bg "$T/fr" sh -c "exec cat $T/fifo")
fw=$(setsid sh -c "exec $PROGS/counter > $T/fifo" < /dev/null > /dev/null 2>&1 & echo $!)
track "$fw"
wait_for "[ -s $T/fr ]" 10 || bail "the FIFO does not work"
check_fails "two trees sharing a FIFO" kup_try dump -t "$fw" -t "$fr" --ppp "$S"
check "it names the FIFO" grep -q "share a FIFO ($T/fifo)" "$T/err"
kill_tree "$fw"; kill_tree "$fr"

srv=$(start_bg "$T/srv" python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
print("LISTEN", flush=True)
c, _ = s.accept(); print("ACCEPTED", flush=True); time.sleep(3600)' "$T/sock")
wait_for_line "$T/srv" '^LISTEN' || bail "server did not start"
cli=$(start_bg "$T/cli" python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
print("CONNECTED", flush=True); time.sleep(3600)' "$T/sock")
wait_for_line "$T/srv" '^ACCEPTED' || bail "client did not connect"
check_fails "two trees connected by a unix socket" kup_try dump -t "$srv" -t "$cli" --ppp "$S"
check "it names both trees and the connection" \
	grep -q "the tree of pid $srv and the tree of pid $cli share a unix socket connection" "$T/err"
check "both keep running" all_running "$srv" "$cli"
kill_tree "$srv"; kill_tree "$cli"
check "nothing was written to the store" eval '! has_ckpt'

# ---- a dump whose second tree is refused: both keep running ----------------------
check "a first checkpoint (tree of pid $a, --leave-running)" \
	kup_run "$T/d0.log" dump -t "$a" --ppp "$S" --leave-running
r=$(start_bg "$T/r" "$PROGS/fdrefused" pidfd-out)
wait_for_line "$T/r" '^READY' || bail "fdrefused did not start"
check_fails "kup dump -t $a -t $r (the second holds what cannot be kept)" \
	kup_try dump -t "$a" -t "$r" --ppp "$S"
note "$(grep -v INSECURE "$T/err" | tail -n 4)"
check "it names the refused pid" grep -q "pid $r" "$T/err"
check "both trees keep running, not frozen" all_running "$a" "$r"
check "pid $a counts on" counts_on "$T/a"
check "the store keeps its previous checkpoint (one tree, no parts.img)" \
	eval 'has_ckpt && [[ " $(blobs) " == *" inventory.img "* && " $(blobs) " != *" parts.img "* ]]'
kill_tree "$r"

# ---- three trees, one commit -------------------------------------------------------
check "kup dump -t $a -t $b -t $c --ppp" kup_run "$T/dump.log" dump -t "$a" -t "$b" -t "$c" --ppp "$S" ||
	note "$(cat "$T/dump.log")"
check "the three are gone" eval 'wait_gone $a && wait_gone $b && wait_gone $c'
bl=" $(blobs) "
check "the store holds parts.img and p1/ p2/ p3/" \
	eval '[[ $bl == *" parts.img "* && $bl == *" p1/inventory.img "* && $bl == *" p2/pages-$b.img "* && $bl == *" p3/pstree.img "* ]]'
check "and nothing of the previous checkpoint" eval '[[ $bl != *" inventory.img "* ]]'
check "kup ppp verify passes" kup_run "$T/verify.log" ppp verify "$S"

check "kup hold --ppp holds the PIDs of the three trees" \
	kup_run "$T/hold.log" hold --ppp "$S" --log "$T/holder.log" --timeout 120
holder=$(sed -n 's/.*(holder pid \([0-9]*\)).*/\1/p' "$T/hold.log")
[ -n "$holder" ] && track "$holder"
check "held 3 of 3" grep -q 'held 3 of 3' "$T/hold.log"
note "$(cat "$T/hold.log")"

na=$(wc -l < "$T/a")
check "kup restore -t $a restores that tree only" kup_run "$T/ra.log" restore --ppp "$S" -d -t "$a" ||
	note "$(cat "$T/ra.log")"
track "$a"
check "pid $a counts on, every value once" eval 'counts_on $T/a && counter_continues $T/a $a $na 2'
check "pids $b and $c are still held (kup hold --status)" \
	eval '"$KUP" hold --status | grep -q "held 2 of 2: $b $c\$"'
bl=" $(blobs) "
check "its part left the store, the others are there" \
	eval '[[ $bl != *" p1/"* && $bl == *" p2/inventory.img "* && $bl == *" p3/inventory.img "* ]]'

# p2 damaged: its restore fails alone
off=$(blob_offset "p2/pstree.img")
check "found p2/pstree.img (offset ${off:-?})" [ -n "$off" ]
printf '\xff\xff\xff\xff' | dd of="$S" bs=1 seek=$((off + 20)) conv=notrunc status=none
check_fails "the restore of the damaged tree ($b) fails" kup_try restore --ppp "$S" -d -t "$b"
note "$(grep -v INSECURE "$T/err" | tail -n 3)"
check "it says its part is kept, marked failed" grep -q "its part is kept (marked failed)" "$T/err"
check "no process $b" eval '[ ! -d /proc/$b ]'
check "its part is still in the store" eval '[[ " $(blobs) " == *" p2/inventory.img "* ]]'
check "its pids were let go, $c's are still held" eval '"$KUP" hold --status | grep -q "held 1 of 1: $c\$"'

nc=$(wc -l < "$T/c")
check "kup restore --no-unit -d restores the one left ($c)" kup_run "$T/rc.log" restore --ppp "$S" -d --no-unit ||
	note "$(cat "$T/rc.log")"
track "$c"
check "pid $c counts on" eval 'counts_on $T/c && counter_continues $T/c $c $nc 2'
check "the damaged tree was not tried again" eval '! grep -q "part p2" "$T/rc.log" || grep -q "dropped" "$T/rc.log"'
bl=" $(blobs) "
check "the failed tree stays in the store for another try, nothing else does" \
	eval '[[ $bl == *" p2/inventory.img "* && $bl != *" p3/"* ]]' || note "blobs:$bl; $(cat "$T/rc.log")"
check "saying so" \
	grep -q "the checkpoint of the tree of pid $b, whose restore failed, stays in the store for another try" "$T/rc.log"
check "kup restore --if-any then finds nothing to restore (exit 0)" \
	kup_run "$T/rn.log" restore --ppp "$S" -d --if-any
check "... pid $b was not tried again" eval '[ ! -d /proc/$b ]'
check_fails "kup ppp verify finds the damage" kup_try ppp verify "$S"
check "... naming p2/pstree.img" grep -q "p2/pstree.img" "$T/err"
check "kup ppp scrub drops it" eval 'kup_run "$T/sc.log" ppp scrub "$S" && ! has_ckpt'
check "the holder is gone (nothing left to hold)" wait_gone "$holder"
check "pid $a still counts" counts_on "$T/a"

kill_tree "$a"; kill_tree "$c"

# ---- parts.img damaged or lying -----------------------------------------------------
pd=$(start_bg "$T/d" "$PROGS/counter")
pe=$(start_bg "$T/e" "$PROGS/counter")
wait_for_line "$T/d" '^C 1 ' && wait_for_line "$T/e" '^C 1 ' || bail "counters d, e did not start"
check "kup dump -t $pd -t $pe" kup_run "$T/dump2.log" dump -t "$pd" -t "$pe" --ppp "$S"
wait_gone "$pd"; wait_gone "$pe"
check "kup ppp get parts.img" eval '"$KUP" ppp get -s "$S" parts.img > "$T/parts.good"'
# lie NAME FILE WHY: put FILE as parts.img; restore and hold refuse, naming WHY
lie() {
	kup_run "$T/put.log" ppp put -s "$S" "$2" parts.img || { not_ok "$1: kup ppp put"; return; }
	check_fails "$1: kup restore refuses every tree" kup_try restore --ppp "$S" -d
	check "... saying $3" grep -q -- "$3" "$T/err"
	check "... nothing of $pd or $pe runs" eval '[ ! -d /proc/$pd ] && [ ! -d /proc/$pe ]'
	check_fails "$1: kup hold refuses it" kup_try hold --ppp "$S" --log /dev/null
	check "... and holds nothing" eval '[ -z "$(own_pgrep kup-hold)" ]'
}
cp "$T/parts.good" "$T/parts.crc"
printf '\xff' | dd of="$T/parts.crc" bs=1 seek=30 conv=notrunc status=none
lie "a checksum mismatch" "$T/parts.crc" "parts.img is damaged: none of its trees can be restored"
python3 "$(dirname "$0")/../mkparts.py" "$T/p" "p01/:$pd" "p2/:$pe"
lie "prefix p01/" "$T/p" "part 0 has a bad or repeated prefix 'p01/'"
python3 "$(dirname "$0")/../mkparts.py" "$T/p" "p1/:$pd" "p1/:$pe"
lie "a prefix twice" "$T/p" "part 1 has a bad or repeated prefix 'p1/'"
python3 "$(dirname "$0")/../mkparts.py" "$T/p" "../:$pd"
lie "prefix ../" "$T/p" "bad or repeated prefix '../'"
python3 "$(dirname "$0")/../mkparts.py" "$T/p" "p1/:1" "p2/:$pe"
lie "root pid 1" "$T/p" "part p1/ has a bad root pid 1"
python3 "$(dirname "$0")/../mkparts.py" "$T/p" "p1/:$pd:../x.service" "p2/:$pe"
lie "a unit that is no unit name" "$T/p" "part p1/ names no service unit"
python3 "$(dirname "$0")/../mkparts.py" "$T/p"
lie "no part at all" "$T/p" "parts.img lists no tree"
check "the good parts.img back" kup_run "$T/put.log" ppp put -s "$S" "$T/parts.good" parts.img
check "kup restore -d brings both back" kup_run "$T/r2.log" restore --ppp "$S" -d
track "$pd"; track "$pe"
check "both count on" eval 'counts_on $T/d && counts_on $T/e'
kill_tree "$pd"; kill_tree "$pe"
