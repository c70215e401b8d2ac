#!/bin/bash
# kup dump --pre-dump: the memory is copied while the tree runs, then what it
# wrote meanwhile, round after round; the frozen pass reads only the pages
# written since the last round.  A process (tests/progs/dirtier) keeps
# rewriting 256 MiB in four threads, each page stamped with a generation a
# table records: after the restore every page holds the generation the
# table says (a page written between the last round and the freeze and not
# read again would hold an older one).  With a churn thread: mappings made,
# moved (mremap) and unmapped, and children forked and exiting during the
# rounds, each child checking the memory it has before it exits.  Into a
# ppp store too.  An interrupted pre-dump leaves the tree as it was: running,
# untraced, no userfaultfd among its fds, no range registered.
. "$(dirname "$0")/../lib.sh"
require_root

MB=${PREDUMP_MB:-256}

# pre_dumped LOG: the pre-dump ran rounds and the frozen pass took pages
# from it and read some (written after the last round): the case under test
pre_dumped() {
	grep -q 'pre-dump round 1:' "$1" &&
	grep -Eq 'pid [0-9]+: [1-9][0-9]* of [0-9]+ pages from the pre-dump, [1-9][0-9]* read now' "$1"
}

# uffd_free PID: no userfaultfd among PID's fds, no mapping registered with one
uffd_free() {
	! ls -l "/proc/$1/fd" 2>/dev/null | grep -q userfaultfd &&
	! grep -Eq '^VmFlags:.* (uw|um|ui)( |$)' "/proc/$1/smaps"
}

check "--pre-dump=0 is a usage error" \
	eval '"$KUP" dump -t $$ -D "$T/x" --pre-dump=0 2> "$T/err"; [ $? = 2 ] && grep -q "from 1 to 100" "$T/err"'

# --- the moving pattern, -D ----------------------------------------------------
pid=$(start_bg "$T/out" "$PROGS/dirtier" "$MB" 4 2000)
wait_for_line "$T/out" '^READY' 60 || bail "dirtier did not start"
DR_LOG=$T/out
dump_and_restore "$pid" "$T/img" --pre-dump || exit 1
check "the rounds ran and the frozen pass read the pages written since the last" \
	pre_dumped "$T/dump.log" || note "$(grep -E 'pre-dump|pages' "$T/dump.log")"
note "$(grep -E 'pre-dump|read now' "$T/dump.log")"
check "every page holds the generation its table says after the restore" \
	request_check "$pid" "$T/out" 60
check "no ERROR line" [ "$(lines_count "$T/out" ERROR)" = 0 ]
kill_tree "$pid"

# --- --leave-running: the tree goes on, nothing of kup's left in it ---------------
pid=$(start_bg "$T/out6" "$PROGS/dirtier" 64 2 2000)
wait_for_line "$T/out6" '^READY' 60 || bail "dirtier did not start"
check "kup dump --pre-dump --leave-running" \
	kup_run "$T/dump6.log" dump -t "$pid" -D "$T/img6" --pre-dump --leave-running
check "--leave-running: it runs on, untraced" \
	eval 'alive $pid && grep -q "^TracerPid:[[:space:]]*0$" /proc/$pid/status'
check "--leave-running: no userfaultfd left in it, no range registered" uffd_free "$pid" ||
	note "$(ls -l /proc/$pid/fd; grep VmFlags /proc/$pid/smaps | sort | uniq -c)"
check "--leave-running: every page holds its generation, it goes on writing" \
	request_check "$pid" "$T/out6" 60
kill_tree "$pid"

# --- mappings and processes changing during the rounds -------------------------
pid=$(start_bg "$T/out2" "$PROGS/dirtier" "$MB" 4 2000 churn)
wait_for_line "$T/out2" '^READY' 60 || bail "dirtier churn did not start"
wait_for_line "$T/out2" '^CHILD' 30 || bail "dirtier churn forked no child"
dump_and_restore "$pid" "$T/img2" --pre-dump=6 || exit 1
mv "$T/dump.log" "$T/dump2.log"
check "churn: the rounds ran, the frozen pass read what changed" pre_dumped "$T/dump2.log" ||
	note "$(grep -E 'pre-dump|pages' "$T/dump2.log")"
note "$(grep -E 'pre-dump|read now' "$T/dump2.log")"
n=$(lines_count "$T/out2" '^CHILD')
check "churn: every page and every region as written after the restore" \
	request_check "$pid" "$T/out2" 60
check "churn: children fork and check their memory after the restore" \
	wait_for "[ \$(grep -c '^CHILD' '$T/out2') -ge $((n + 2)) ]" 30
check "churn: no child found a wrong page, no ERROR line" \
	eval '! grep -Eq "^CHILD .* FAIL|^ERROR" "$T/out2"' || note "$(grep -E 'FAIL|ERROR' "$T/out2")"
kill_tree "$pid"

# --- into a ppp store -------------------------------------------------------------
S=$T/store.ppp
check "kup ppp format $S --size 400M" kup_run "$T/fmt.log" ppp format "$S" --size 400M
pid=$(start_bg "$T/out3" "$PROGS/dirtier" "$MB" 2 4000)
wait_for_line "$T/out3" '^READY' 60 || bail "dirtier did not start"
check "kup dump --ppp --pre-dump=3" kup_run "$T/dump3.log" dump -t "$pid" --ppp "$S" --pre-dump=3 ||
	note "$(tail -n 20 "$T/dump3.log")"
check "ppp: the rounds ran, the frozen pass read what changed" pre_dumped "$T/dump3.log"
check "ppp: the page images were written ahead into the store file (its mapping)" \
	grep -q 'pre-dump: page images written ahead' "$T/dump3.log"
check "ppp: the tree is gone" wait_gone "$pid"
check "kup ppp verify passes" kup_run "$T/verify.log" ppp verify "$S"
check "kup restore --ppp -d" kup_run "$T/restore3.log" restore --ppp "$S" -d ||
	note "$(tail -n 20 "$T/restore3.log")"
track "$pid"
check "ppp: every page holds its generation after the restore" request_check "$pid" "$T/out3" 60
kill_tree "$pid"

# --- two trees into one store: the rounds of both before the first freeze ---------
check "kup ppp format $S --size 700M" kup_run "$T/fmt5.log" ppp format "$S" --size 700M
a=$(start_bg "$T/a" "$PROGS/dirtier" 128 2 2000)
b=$(start_bg "$T/b" "$PROGS/dirtier" 128 2 2000)
wait_for_line "$T/a" '^READY' 60 && wait_for_line "$T/b" '^READY' 60 || bail "dirtier did not start"
check "kup dump -t $a -t $b --ppp --pre-dump" \
	kup_run "$T/dump5.log" dump -t "$a" -t "$b" --ppp "$S" --pre-dump ||
	note "$(tail -n 20 "$T/dump5.log")"
check "two trees: the rounds of both ran before the first was frozen" \
	eval 'awk "/pre-dump of pid $b/ { p = 1 } /dumping .* \\(1 of 2\\)/ { d = 1; exit } END { exit !(p && d) }" "$T/dump5.log"' ||
	note "$(grep -E 'pre-dump|dumping|read now' "$T/dump5.log")"
check "two trees: each frozen pass took pages from its pre-dump" \
	eval '[ "$(grep -cE "pid ($a|$b): [1-9][0-9]* of [0-9]+ pages from the pre-dump" "$T/dump5.log")" = 2 ]'
check "two trees: both gone" eval 'wait_gone $a && wait_gone $b'
for p in $a $b; do
	check "kup restore -t $p" kup_run "$T/r$p.log" restore --ppp "$S" -d -t "$p" ||
		note "$(tail -n 20 "$T/r$p.log")"
	track "$p"
done
check "tree $a: every page holds its generation" request_check "$a" "$T/a" 60
check "tree $b: every page holds its generation" request_check "$b" "$T/b" 60
kill_tree "$a"; kill_tree "$b"

# --- interrupted during the rounds ------------------------------------------------
pid=$(start_bg "$T/out4" "$PROGS/dirtier" "$MB" 4 0)
wait_for_line "$T/out4" '^READY' 60 || bail "dirtier did not start"
env --default-signal=INT "$KUP" dump -t "$pid" -D "$T/img4" --pre-dump=100 > "$T/dump4.log" 2>&1 &
KP=$!
wait_for_line "$T/dump4.log" 'pre-dump round 1:' 60
kill -INT "$KP"
wait "$KP"
rc=$?
check "SIGINT during the rounds: kup exits with 130" [ "$rc" = 130 ] || note "$(cat "$T/dump4.log")"
check "SIGINT: it says the tree was left running" \
	grep -q "interrupted by SIGINT.*: pid $pid's tree left running, nothing written" "$T/dump4.log"
check "SIGINT: the tree runs, untraced" \
	eval 'alive $pid && grep -q "^TracerPid:[[:space:]]*0$" /proc/$pid/status'
check "SIGINT: no userfaultfd left in it, no range registered" uffd_free "$pid" ||
	note "$(ls -l /proc/$pid/fd; grep VmFlags /proc/$pid/smaps | sort | uniq -c)"
check "SIGINT: every page holds its generation, the writers go on" request_check "$pid" "$T/out4" 60
kill_tree "$pid"
