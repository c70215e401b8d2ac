#!/bin/bash
# A file on a tmpfs does not outlive a reboot: a daemon's status file in
# /run (openvpn keeps its --status file open), a log it writes.  The dump
# keeps the data of such a file; a restore that finds no file at its path
# (another boot: here the tmpfs is mounted anew, its directory made again
# as the system's boot makes /run's) makes it again there with its data,
# owner and mode, and the process goes on writing to it.  A file that is
# there is opened, not replaced.  Its directory gone too: the restore fails,
# naming the path, and leaves no process.
. "$(dirname "$0")/../lib.sh"
require_root
R=$T/run
mkdir -p "$R"
mount -t tmpfs -o size=64m kup-test-tmpfs "$R" || skip_all "cannot mount a tmpfs"
at_exit "umount -l '$R' 2>/dev/null"
remount() {	# remount [DIR]: a fresh tmpfs (a new boot's /run), with DIR in it
	umount -l "$R" && mount -t tmpfs -o size=64m kup-test-tmpfs "$R" || return 1
	[ -z "${1:-}" ] || mkdir -p "$R/$1"
}

mkdir -p "$R/d"
pid=$(start_bg "$R/d/out" "$PROGS/counter")
wait_for_line "$R/d/out" '^C 3 ' || bail "counter did not start"
chown 65534:65534 "$R/d/out" && chmod 0640 "$R/d/out"

check "kup dump of a counter writing to a file on a tmpfs" \
	kup_run "$T/dump.log" dump -t "$pid" -D "$T/img"
check "... which is gone" wait_gone "$pid"
cp "$R/d/out" "$T/before"
n=$(wc -l < "$T/before")
check "the tmpfs mounted anew: the file is gone" eval "remount d && [ ! -e '$R/d/out' ]"
check "kup restore -d" kup_run "$T/restore.log" restore -D "$T/img" -d ||
	note "$(tail -n 5 "$T/restore.log")"
check "... says it made the file again" grep -q "$R/d/out (on a tmpfs) was gone: made again" "$T/restore.log"
check "the counter is back with pid $pid" alive "$pid"
check "the file holds what was written before the dump" cmp -n "$(stat -c %s "$T/before")" "$T/before" "$R/d/out"
check "... with its owner and mode (65534:65534 0640)" [ "$(stat -c '%u:%g %a' "$R/d/out")" = "65534:65534 640" ]
sleep 0.5
check "the counter goes on writing to it, every value once" counter_continues "$R/d/out" "$pid" "$n" 2

# the file is there: opened, not replaced
ino=$(stat -c %i "$R/d/out")
check "a second dump" kup_run "$T/dump2.log" dump -t "$pid" -D "$T/img2"
wait_gone "$pid"
check "a restore with the file there" kup_run "$T/restore2.log" restore -D "$T/img2" -d
check "... opens that file (inode $ino), makes none" \
	eval "[ \$(stat -c %i '$R/d/out') = $ino ] && ! grep -q 'made again' '$T/restore2.log'"

# its directory gone too: a clean failure, naming the path
check "a third dump" kup_run "$T/dump3.log" dump -t "$pid" -D "$T/img3"
wait_gone "$pid"
remount
check_fails "a restore without the file's directory fails" kup_try restore -D "$T/img3" -d
check "... naming the file" grep -q "$R/d/out, a file of a tmpfs, is gone and cannot be made again" "$T/err"
check "... leaving no process $pid" [ ! -d /proc/$pid ]
remount d
check "with the directory back, the same images restore" kup_run "$T/restore3.log" restore -D "$T/img3" -d
check "the counter runs again" alive "$pid"
kill_tree "$pid"
