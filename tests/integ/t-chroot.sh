#!/bin/bash
# A chrooted process (a privilege-separated child in /run/sshd, a haproxy
# worker, a RootDirectory= service) is restored inside its root: the counter
# goes on, /proc/PID/root is the same directory, the file it opened inside
# the root still works through its fd, and paths it opens resolve in the
# root.  A root inside a mount namespace of its own (RootDirectory=, or a
# chroot into a directory of a private mount) is refused at dump, naming the
# pid and the root, and the process runs on.
. "$(dirname "$0")/../lib.sh"
require_root

mkdir -p "$T/root"
echo "inside the root" > "$T/root/marker"
echo "first line" > "$T/root/data"
echo "outside the root" > "$T/marker"

pid=$(start_bg "$T/out" "$PROGS/chrooted" "$T/root")
wait_for_line "$T/out" '^C 5 ' || bail "chrooted did not start"
check "its root is $T/root" eval '[ "$(readlink /proc/$pid/root)" = "$T/root" ]'
check "its check passes before the dump" request_check "$pid" "$T/out"

DR_LOG=$T/out dump_and_restore "$pid" "$T/img" || exit 1
last=$(head -n "$DR_LINES" "$T/out" | awk '$1 == "C" { v = $2 } END { print v }')
check "10 more values after the restore" wait_for_line "$T/out" "^C $((last + 10)) " 10
check "the count goes on from $last: every value once, in order, same pid" \
	counter_continues "$T/out" "$pid" "$DR_LINES" 10
check "its root is $T/root again" eval '[ "$(readlink /proc/$pid/root)" = "$T/root" ]'
check "its working directory is the root" eval '[ "$(readlink /proc/$pid/cwd)" = "$T/root" ]'
check "fd 3 is $T/root/data" eval '[ "$(readlink /proc/$pid/fd/3)" = "$T/root/data" ]'
check "its check passes: fd 3 appends and reads back, /marker is the root's" \
	request_check "$pid" "$T/out"
check "it read the root's marker, not the host's" grep -q '^CHECK 2 OK .*marker=inside the root' "$T/out"
check "what it appended through fd 3 after the restore is in the file" grep -q '^check 2 at' "$T/root/data"
check "no ERROR line" [ "$(lines_count "$T/out" ERROR)" = 0 ]
kill_tree "$pid"
wait_gone "$pid" || true

# a root only its own mount namespace has: refused, the process runs on
if command -v unshare > /dev/null; then
	mkdir -p "$T/priv"
	pid=$(start_bg "$T/out2" unshare -m --propagation private sh -c \
		"mount -t tmpfs kup-test '$T/priv' && echo private > '$T/priv/marker' &&
		 : > '$T/priv/data' && exec '$PROGS/chrooted' '$T/priv'")
	wait_for_line "$T/out2" '^C 2 ' || bail "chrooted in its own mount namespace did not start"
	check_fails "kup dump refuses a root it cannot reach" kup_try dump -t "$pid" -D "$T/img2"
	check "naming the pid and its root" \
		grep -q "pid $pid: root $T/priv inside a mount namespace of its own (RootDirectory=): not supported" "$T/err"
	check "the process runs on" eval 'n=$(lines_count "$T/out2" "^C "); wait_for "[ \$(lines_count $T/out2 \"^C \") -gt \$((n + 2)) ]" 5'
	check "its check still passes" request_check "$pid" "$T/out2"
	kill_tree "$pid"
fi
