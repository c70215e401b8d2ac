#!/bin/bash
# Hostile inputs: kup restores only what root dumped, from places only root
# can write, and never with more privilege than was dumped.
#  - planted symbolic links in a dump directory: the dump refuses, naming
#    them; the root-only file they point to is intact; the tree runs on
#  - an image directory owned by a user, writable by others, or below a
#    directory a user owns (where root's images could have been edited):
#    refused at restore, sshd StrictModes style
#  - a store file owned by a user, or root's but mode 0666: refused by
#    restore, hold and kup ppp
#  - a deleted setuid-root file held by a `nobody` process comes back without
#    its setuid bit: nobody cannot get euid 0 from it
#  - a /dev/shm name squatted by nobody before the restore: the restore fails
#    naming it and leaves nothing; an object that exists (root's) has its
#    content replaced by the checkpoint's
#  - two dumps of different trees into one directory at once: the second
#    fails at once naming the first's pid; its tree runs on; so does a
#    restore from it meanwhile, and a dump into a store someone else locks
#  - kup run by nobody says up front that it needs root
. "$(dirname "$0")/../lib.sh"
require_root

NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
KUP_ABS=$(readlink -f "$KUP")
PROGS=$(readlink -f "$PROGS")

# kup_nobody LOG ARGS...: kup as nobody (with a cwd nobody can enter)
kup_nobody() {
	local log=$1
	shift
	(cd / && "${NOBODY[@]}" timeout -k 5 120 "$KUP_ABS" "$@") > "$log" 2>&1
}

# counter_runs PID LOG: PID is alive, not frozen, and still counting.
counter_runs() {
	local n
	not_frozen "$1" || { echo "pid $1 is not running freely"; return 1; }
	n=$(line_field "$2" '^C ' 2)
	wait_for_line "$2" "^C $((n + 3)) " 10
}

# ---- 1. planted symbolic links --------------------------------------------------
pid=$(start_bg "$T/c1.out" "$PROGS/counter")
wait_for_line "$T/c1.out" '^C 3 ' || bail "counter did not start"
echo "root's secret" > "$T/rootonly"
chmod 600 "$T/rootonly"
sum0=$(md5sum < "$T/rootonly")
mkdir -m 700 "$T/planted"
for n in inventory pstree core-$pid mm-$pid pages-$pid files fdtable shmem; do
	ln -s "$T/rootonly" "$T/planted/$n.img"
done
check_fails "dump into a directory with planted symlinks is refused" \
	kup_try dump -t "$pid" -D "$T/planted"
check "... naming the link and why" grep -q "planted/[a-z0-9-]*\.img: a symbolic link" "$T/err"
check "the root-only file is intact" [ "$(md5sum < "$T/rootonly")" = "$sum0" ]
check "the planted links are as they were" \
	eval '[ "$(find "$T/planted" -type l | wc -l)" = 8 ] && [ "$(ls -A "$T/planted" | wc -l)" = 8 ]'
check "the tree keeps running" counter_runs "$pid" "$T/c1.out"

# kup show reads from anywhere, but a planted FIFO does not block it
mkdir "$T/showdir"
mkfifo "$T/showdir/inventory.img"
ln -s "$T/rootonly" "$T/showdir/pstree.img"
check_fails "kup show of a directory with a FIFO and a symlink fails, without hanging" \
	timeout 30 "$KUP" show "$T/showdir"
check "... naming the FIFO" grep -q "inventory.img: not a kup image (not a regular file)" "$T/err"

# a directory holding something else than a checkpoint is refused too
mkdir -m 700 "$T/other"
echo data > "$T/other/notes.txt"
check_fails "dump into a directory holding other files is refused" \
	kup_try dump -t "$pid" -D "$T/other"
check "... naming the file" grep -q "other/notes.txt: not a kup image" "$T/err"
mkdir -m 777 "$T/open"
check_fails "dump into a directory writable by others is refused" \
	kup_try dump -t "$pid" -D "$T/open"
check "... saying so" grep -q "bad ownership or modes for directory $T/open: writable by group and others" "$T/err"
check "the tree keeps running" counter_runs "$pid" "$T/c1.out"

# ---- 2. image directories restore will not believe ----------------------------
check "dump into a fresh directory" kup_run "$T/d2.log" dump -t "$pid" -D "$T/img"
check "the dumped tree is gone" wait_gone "$pid"
check "the directory is root's, mode 0700, holding only images" \
	eval '[ "$(stat -c %u:%a "$T/img")" = 0:700 ] && ! ls -A "$T/img" | grep -qv "\.img$"'

chown 65534 "$T/img"
check_fails "restore from a directory owned by nobody is refused" kup_try restore -D "$T/img" -d
check "... sshd style: bad ownership, owned by uid 65534" \
	grep -q "bad ownership or modes for directory $T/img: owned by uid 65534" "$T/err"
check "nothing was restored" eval '! alive $pid'
chown 0 "$T/img"
chmod 0757 "$T/img"
check_fails "restore from a directory writable by others is refused" kup_try restore -D "$T/img" -d
check "... bad modes: writable by others" \
	grep -q "bad ownership or modes for directory $T/img: writable by others" "$T/err"
chmod 0700 "$T/img"
# root's images below a directory nobody owns: nobody could have put edited
# images there (say, uid 0 for a nobody process), or swap them at any time
mkdir -m 755 "$T/users"
chown 65534 "$T/users"
mv "$T/img" "$T/users/img"
check_fails "restore of root's images below a directory nobody owns is refused" \
	kup_try restore -D "$T/users/img" -d
check "... naming that directory" \
	grep -q "bad ownership or modes for directory $T/users: owned by uid 65534" "$T/err"
check "nothing was restored" eval '! alive $pid'
mv "$T/users/img" "$T/img"
check "the same images restore from a trusted place" kup_run "$T/r2.log" restore -D "$T/img" -d
track "$pid"
check "the counter is back and counting" counter_runs "$pid" "$T/c1.out"

# ---- 3. stores ---------------------------------------------------------------------
S=$T/store
check "kup ppp format $S" kup_run "$T/f.log" ppp format "$S" --size 64M
check "dump to the store" kup_run "$T/d3.log" dump -t "$pid" --ppp "$S"
check "the dumped tree is gone" wait_gone "$pid"
chown 65534 "$S"
check_fails "restore from a store file owned by nobody is refused" kup_try restore --ppp "$S" -d
check "... owned by uid 65534" grep -q "bad ownership or modes for file $S: owned by uid 65534" "$T/err"
check_fails "kup hold refuses it" kup_try hold --ppp "$S" --log "$T/hold.log" --timeout 5
check "... saying why" grep -q "bad ownership or modes for file $S" "$T/err"
check_fails "kup ppp ls refuses it" kup_try ppp ls --store "$S"
check "... saying why" grep -q "bad ownership or modes for file $S" "$T/err"
chown 0 "$S"
chmod 0666 "$S"
check_fails "restore from root's store of mode 0666 is refused" kup_try restore --ppp "$S" -d
check "... writable by group and others" \
	grep -q "bad ownership or modes for file $S: writable by group and others (mode 0666)" "$T/err"
check "nothing was restored" eval '! alive $pid'
check "KUP_INSECURE_IMAGES=1 (for tests) turns the refusal into a warning" \
	eval 'KUP_INSECURE_IMAGES=1 kup_run "$T/ls.log" ppp ls --store "$S" && grep -q "for tests only" "$T/ls.log"'
chmod 0600 "$S"
check "restore from the store, now root's 0600" kup_run "$T/r3.log" restore --ppp "$S" -d
track "$pid"
check "the counter is back and counting" counter_runs "$pid" "$T/c1.out"

# ---- 4. a deleted setuid-root file -------------------------------------------------
cp /usr/bin/id "$T/suid-id"
chmod 4755 "$T/suid-id"
pid4=$(start_bg "$T/c4.out" bash -c "exec 3< '$T/suid-id'; exec ${NOBODY[*]} '$PROGS/counter'")
wait_for_line "$T/c4.out" '^C 3 ' || bail "nobody's counter did not start"
rm "$T/suid-id"
check "nobody's counter holds the deleted setuid file on fd 3" \
	eval '[ "$(stat -L -c %u:%a /proc/$pid4/fd/3)" = 0:4755 ] && [ "$(stat -c %u /proc/$pid4)" = 65534 ]'
check "dump it" kup_run "$T/d4.log" dump -t "$pid4" -D "$T/img4"
check "... warning about the setuid file, naming pid and fd" \
	grep -q "pid $pid4 fd 3.*has mode 4755: a restore recreates it without its setuid/setgid bits" "$T/d4.log"
check "the dumped tree is gone" wait_gone "$pid4"
check "restore it" kup_run "$T/r4.log" restore -D "$T/img4" -d
track "$pid4"
check "... warning that the bit is dropped" grep -q "recreated without its setuid/setgid bits" "$T/r4.log"
check "the counter runs as nobody again" \
	eval 'counter_runs $pid4 "$T/c4.out" && [ "$(stat -c %u /proc/$pid4)" = 65534 ]'
check "its fd 3 is the file, root's, mode 0755: no setuid bit" \
	eval '[ "$(stat -L -c %u:%a /proc/$pid4/fd/3)" = 0:755 ]'
check "run as nobody, the recreated file gives euid 65534, not 0" \
	eval '[ "$(cd / && "${NOBODY[@]}" /proc/$pid4/fd/3 -u)" = 65534 ]'
kill_tree "$pid4"

# ---- 5. /dev/shm ---------------------------------------------------------------------
shm=kup-trust-$$
at_exit "rm -f /dev/shm/$shm"
mkdir "$T/files5"
pid5=$(start_bg "$T/m.out" "$PROGS/mappings" "$T/files5" "$shm")
wait_for_line "$T/m.out" '^READY' || bail "mappings did not start"
child5=$(line_field "$T/m.out" '^PID CHILD ' 3)
check "dump the mappings tree (a /dev/shm object shared with a child)" \
	kup_run "$T/d5.log" dump -t "$pid5" -D "$T/img5"
check "the dumped tree is gone" eval 'wait_gone $pid5 && wait_gone $child5'
# after a kexec /dev/shm is empty and anyone may take the name first
rm -f "/dev/shm/$shm"
"${NOBODY[@]}" sh -c "echo squatter > /dev/shm/$shm"
check_fails "restore with /dev/shm/$shm squatted by nobody fails" kup_try restore -D "$T/img5" -d
check "... naming it and its owner" \
	grep -q "/dev/shm/$shm exists and belongs to uid 65534" "$T/err"
check "nothing is left: no process of the tree" eval '! alive $pid5 && ! alive $child5'
check "the squatter's file is untouched" \
	eval '[ "$(cat /dev/shm/$shm)" = squatter ] && [ "$(stat -c %u /dev/shm/$shm)" = 65534 ]'
rm -f "/dev/shm/$shm"
check "restore with the name free" kup_run "$T/r5.log" restore -D "$T/img5" -d
track "$pid5"
check "/dev/shm/$shm is back, root's and 0600 as it was" \
	eval '[ "$(stat -c %u:%a /dev/shm/$shm)" = 0:600 ]'
check "the tree's self-check passes (the object was refilled)" request_check "$pid5" "$T/m.out"
check "dump it again" kup_run "$T/d5b.log" dump -t "$pid5" -D "$T/img5"
check "the dumped tree is gone" eval 'wait_gone $pid5 && wait_gone $child5'
# same boot: the object is still there (root's); what it holds now is not
# what the tree had at the dump
dd if=/dev/urandom of="/dev/shm/$shm" bs=1M count=8 conv=notrunc status=none
check "restore into the existing object" kup_run "$T/r5b.log" restore -D "$T/img5" -d
check "the tree's self-check passes: its content is the checkpoint's" \
	request_check "$pid5" "$T/m.out"
kill_tree "$pid5"

# ---- 6. two dumps into one directory -------------------------------------------------
pa=$(start_bg "$T/a.out" "$PROGS/bigmem" 256)
pb=$(start_bg "$T/b.out" "$PROGS/counter")
wait_for_line "$T/a.out" '^READY' 120 || bail "bigmem did not start"
wait_for_line "$T/b.out" '^C 3 ' || bail "counter did not start"
mkdir -m 700 "$T/both"
"$KUP" dump -t "$pa" -D "$T/both" > "$T/da.log" 2>&1 &
kupa=$!
# the first dump holds the directory once it writes: stop its worker there
wait_for "ls -d '$T'/both/.kup-new-*" 60
worker=$(pgrep -P "$kupa" | head -n 1)
kill -STOP "$worker" 2>/dev/null
check "the first dump is writing (worker $worker stopped half-way)" \
	eval 'ls -d "$T"/both/.kup-new-* && wait_for "[ \"\$(proc_state $worker)\" = T ]" 20'
check_fails "a second dump into the same directory fails" kup_try dump -t "$pb" -D "$T/both"
check "... at once, naming the first's pid" \
	grep -q "image directory $T/both is being written by another kup dump (pid $worker)" "$T/err"
check "the second tree keeps running" counter_runs "$pb" "$T/b.out"
check_fails "a restore from the directory being written fails" kup_try restore -D "$T/both" -d
check "... at once, naming the dump's pid" \
	grep -q "image directory $T/both is being written by another kup dump (pid $worker)" "$T/err"
kill -CONT "$worker"
check "the first dump completes" wait "$kupa"
check "the directory holds the first tree's checkpoint" \
	eval '[ "$(image_pids "$T/both" | tr " " "\n" | grep -c "^$pa$")" -ge 1 ] &&
	      ! image_pids "$T/both" | tr " " "\n" | grep -q "^$pb$" &&
	      ! ls -A "$T/both" | grep -q kup-new'
check "the second tree still runs" counter_runs "$pb" "$T/b.out"

# the same with a store: its own lock (held here by another process), the
# holder named
python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "rb")
fcntl.flock(f, fcntl.LOCK_EX)
time.sleep(600)' "$S" &
locker=$!
wait_for "grep -q 'FLOCK.*WRITE *$locker .*:$(stat -c %i "$S") ' /proc/locks" 10
check_fails "a dump into a store another process writes fails" kup_try dump -t "$pb" --ppp "$S"
check "... at once, naming that process" \
	grep -q "store $S is being written by another kup (pid $locker)" "$T/err"
check "the tree keeps running" counter_runs "$pb" "$T/b.out"
kill "$locker"
wait "$locker" 2>/dev/null

# ---- 7. not root -----------------------------------------------------------------------
for cmd in "dump -t $pb -D /tmp/kup-trust-$$" "restore -D $T/img" "hold --ppp $S" \
	   "switch -t $pb /boot/vmlinuz" "kexec load /boot/vmlinuz" "ppp format /tmp/kup-trust-$$ --size 64M" \
	   "ppp scrub --store $S" "recover"; do
	kup_nobody "$T/n.log" $cmd
	code=$?
	what=${cmd%% [-/]*}
	check "nobody: kup $what is refused up front (exit $code)" \
		eval '[ $code = 1 ] && grep -q "^kup $what: must be run as root (needs .*CAP_" "$T/n.log" &&
		      [ "$(wc -l < "$T/n.log")" = 1 ]'
done
check "nothing was created" [ ! -e "/tmp/kup-trust-$$" ]
check "the tree nobody tried to dump runs on" counter_runs "$pb" "$T/b.out"
check "nobody: kup ppp format --help still works" kup_nobody "$T/h.log" ppp format --help
