#!/bin/bash
# A kexec that fails after the dump: kup switch restores the kept trees from
# the store on the running kernel, and says so.  This machine must never
# be rebooted, so the kernel's side is faked (KUP_FAULT_KEXEC=fail: kup kexec
# load and unload make no syscall, and exec fails as reboot(KEXEC) does
# with nothing loaded, without calling it); the dump into a store file and
# the restore from it are real.  kup switch --fast (the immediate path; the
# clean one needs systemd as init and ends in systemd-shutdown, which falls
# back to a firmware reboot: the lab's t-switch-rollback.sh covers that):
#   - a counter and proctree (a root with a zombie, a stopped and a running
#     child) kept together: after the failed kexec both trees run again with
#     their pids, the count goes on once each, the memory unchanged, the
#     zombie and the stopped child as they were; the command exits 1 and
#     says the trees were restored on the running kernel; the store is
#     scrubbed;
#   - the new kernel's command line carries kup's panic= (default 10, or
#     --panic) in place of the running one's.
. "$(dirname "$0")/../lib.sh"
require_root
export KUP_FAULT_KEXEC=fail KUP_LAST_SWITCH=$T/last-switch
S=$T/store.ppp
K=$T/vmlinuz-test
echo "not a kernel: KUP_FAULT_KEXEC=fail never loads it" > "$K"

# the command line kup would load (the hook changes nothing in the parsing)
check "kup kexec load --dry-run: panic=10 replaces the running line's panic=" \
	kup_run "$T/dry.log" kexec load "$K" --no-initrd --panic 10 --append "kup.test=1" \
	--command-line "root=/dev/x panic=-1 quiet -- single" --dry-run
check "... the line: root=/dev/x quiet panic=10 kup.test=1 -- single" \
	grep -qx "command line: root=/dev/x quiet panic=10 kup.test=1 -- single" "$T/dry.log"
check_fails "--panic of what is not a number of seconds" kup_try kexec load "$K" --panic soon --dry-run
check_fails "kup switch --panic -5 is refused" kup_try switch "$K" -t 1 --panic -5 --config /dev/null
check "... before anything is loaded or frozen" grep -q "is not a number of seconds" "$T/err"

check "kup ppp format $S --size 64M" kup_run "$T/fmt.log" ppp format "$S" --size 64M
a=$(start_bg "$T/a" "$PROGS/counter" -m 4)
b=$(start_bg "$T/b" "$PROGS/proctree")
wait_for_line "$T/a" '^C 3 ' 30 || bail "counter did not start"
wait_for_line "$T/b" '^READY' 30 || bail "proctree did not start"
suma=$(line_field "$T/a" '^MEM ' 2)
treeb=$(tree_pids "$b")
note "counters: $a and $b (tree: $treeb)"

kup_try switch "$K" --no-initrd -t "$a" -t "$b" --ppp "$S" --fast --config /dev/null > "$T/sw.log" 2>&1
rc=$?
note "$(cat "$T/sw.log")"
check "kup switch exits 1: the switch did not happen" [ "$rc" = 1 ]
check "... it loaded the kernel with panic=10, the default" grep -q "^command line: .* panic=10" "$T/sw.log"
check "... it dumped both trees, then the kexec failed" \
	eval "grep -q 'kexec failed' '$T/sw.log' && grep -q 'dumping the tree of pid $a and the tree of pid $b' '$T/sw.log'"
check "... it says they were restored on the running kernel" \
	grep -q "kexec failed: the tree of pid $a and the tree of pid $b were restored on the running kernel" "$T/sw.log"
track "$a"
track "$b"
check "pid $a runs again" alive "$a"
for p in $treeb; do
	check "pid $p (of $b's tree) is back" [ -d "/proc/$p" ]
done
n=$(wc -l < "$T/a")
check "counter a counts on, every value once, same pid" \
	eval "wait_for_line '$T/a' '^C $(( $(line_field "$T/a" '^C ' 2) + 3 )) ' 20 && counter_continues '$T/a' $a 0 3"
check "a's memory has the same sum" eval 'request_check $a "$T/a" | grep -q "sum=$suma"'
check "proctree runs on (R counts)" \
	eval "wait_for_line '$T/b' '^R $(( $(line_field "$T/b" '^R ' 2) + 3 ))\$' 20"
check "... its zombie and its stopped child as they were" \
	eval 'request_check $b "$T/b" | grep -q "OK zombie="'
check "the store is scrubbed (nothing left to restore)" \
	eval "\"\$KUP\" ppp status '$S' --json | grep -q '\"checkpoint\": false'"
kill_tree "$a"
kill_tree "$b"

# ---- kup switch --from-store: a tree whose restore failed, taken again
# (to the old kernel after a new one failed it, in real life; here the
# kexec fails again, and the tree is restored by a restore of the store)
echo "the input of the kept sleep" > "$T/input"
c=$(start_bg "$T/c" sh -c "exec sleep 1000 < '$T/input'")
d=$(start_bg "$T/d" "$PROGS/counter")
wait_for_line "$T/d" '^C 2 ' 30 || bail "counter d did not start"
check "kup dump -t $c -t $d --ppp (one store, two parts)" \
	kup_run "$T/dump2.log" dump -t "$c" -t "$d" --ppp "$S"
wait_gone "$c"
wait_gone "$d"
mv "$T/input" "$T/input.away"
check_fails "the restore of $c fails (its file is gone)" kup_try restore --ppp "$S" -d -t "$c"
check "... its part is kept, marked failed" grep -q "its part is kept (marked failed)" "$T/err"
check "the restore of $d works" kup_run "$T/rd.log" restore --ppp "$S" -d -t "$d"
track "$d"
check "... the failed part stays in the store for another try" \
	grep -q "the checkpoint of the tree of pid $c, whose restore failed, stays in the store" "$T/rd.log"
check "kup restore --if-any (what kup-restore.service runs at boot) does not try it again" \
	kup_run "$T/ri.log" restore --ppp "$S" -d --if-any
check "... no process $c" [ ! -d "/proc/$c" ]
mv "$T/input.away" "$T/input"

# damaged: refused before anything is loaded
cp "$S" "$T/store.good"
off=$("$KUP" ppp ls "$S" --json | python3 -c '
import json, sys
print([b["offset"] for b in json.load(sys.stdin) if b["name"].endswith("/inventory.img")][0])')
printf '\x5a' | dd of="$S" bs=1 seek=$((off + 40)) conv=notrunc status=none
check_fails "kup switch --from-store of a damaged store is refused" \
	kup_try switch "$K" --no-initrd --from-store --ppp "$S" --fast --config /dev/null
check "... saying so, nothing changed" \
	eval "grep -q 'the store is damaged' '$T/err' && grep -q 'nothing was changed' '$T/err'"
check "... kup ppp verify named the bad blob" grep -q "inventory.img" "$T/err"
cp "$T/store.good" "$S"
check_fails "kup switch --from-store with -t is a usage error" \
	kup_try switch "$K" --from-store -t "$d" --ppp "$S" --config /dev/null

kup_try switch "$K" --no-initrd --from-store --ppp "$S" --fast --config /dev/null > "$T/fs.log" 2>&1
rc=$?
note "$(cat "$T/fs.log")"
check "kup switch --from-store: verified, the failed mark cleared, kexec failed: exit 1" [ "$rc" = 1 ]
check "... it named the tree it takes" grep -q "verifying the store: the tree of pid $c" "$T/fs.log"
check "... 1 tree to be tried again" grep -q "1 tree whose restore failed will be tried again" "$T/fs.log"
check "... it says the tree stays in the store" \
	grep -q "kexec failed: the tree of pid $c stays in the store" "$T/fs.log"
check "... nothing dumped: counter $d runs on" alive "$d"
check "a restore of the store now tries it again, and it runs: pid $c" \
	eval "kup_run '$T/rc.log' restore --ppp '$S' -d --if-any && [ -d /proc/$c ]"
track "$c"
check "... the store is scrubbed" eval "\"\$KUP\" ppp status '$S' --json | grep -q '\"checkpoint\": false'"
kill_tree "$c"
kill_tree "$d"

# ---- a store of one tree whose restore failed on the boot after the switch
# (--as-new-boot: as on the next boot).  Its unit starts cold there, so a
# later boot must not restore the checkpoint over the newer cold instance:
# the inventory is marked (restore_failed_boot), kup-restore.service's
# `kup restore --if-any` and the initramfs' `kup hold --if-any` leave it,
# and kup switch --from-store clears the mark.
at_exit "'$KUP' hold --release > /dev/null 2>&1"
echo "the input of the kept sleep" > "$T/input1"
e=$(start_bg "$T/e" sh -c "exec sleep 1000 < '$T/input1'")
check "kup dump -t $e --ppp (a store of one tree)" kup_run "$T/dump3.log" dump -t "$e" --ppp "$S"
wait_gone "$e"
mv "$T/input1" "$T/input1.away"
check_fails "its restore on the next boot fails (its file is gone)" \
	kup_run "$T/r3.log" restore --ppp "$S" -d --as-new-boot
check "... the checkpoint stays, marked failed" \
	grep -q "stays in the store, marked failed: a later boot does not restore it" "$T/r3.log" ||
	note "$(cat "$T/r3.log")"
check "... kup ppp verify passes (the mark is a committed transaction)" \
	kup_run "$T/v3.log" ppp verify "$S"
mv "$T/input1.away" "$T/input1"
check "kup restore --if-any (kup-restore.service at boot) does not try it again" \
	eval 'kup_run "$T/ri3.log" restore --ppp "$S" -d --if-any --as-new-boot &&
	      grep -q "failed on an earlier boot" "$T/ri3.log" && [ ! -d /proc/$e ]'
check "kup hold --if-any (the initramfs) holds no PID for it" \
	eval 'kup_run "$T/h3.log" hold --ppp "$S" --if-any && grep -q "no PID is held" "$T/h3.log" &&
	      ! "$KUP" hold --status > /dev/null 2>&1' || note "$(cat "$T/h3.log")"
kup_try switch "$K" --no-initrd --from-store --ppp "$S" --fast --config /dev/null > "$T/fs3.log" 2>&1
rc=$?
check "kup switch --from-store clears the mark (the kexec fails here: exit 1)" [ "$rc" = 1 ] ||
	note "$(cat "$T/fs3.log")"
check "... 1 tree to be tried again" grep -q "1 tree whose restore failed will be tried again" "$T/fs3.log"
check "a boot's restore (--if-any) now restores it: pid $e" \
	eval 'kup_run "$T/rc3.log" restore --ppp "$S" -d --if-any --as-new-boot && [ -d /proc/$e ]' ||
	note "$(cat "$T/rc3.log")"
track "$e"
kill_tree "$e"
