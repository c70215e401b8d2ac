#!/bin/bash
# A process in a mount namespace of its own (a tmpfs mounted over a
# directory only it sees) sees other files than kup under the same names.
# Its namespace is dumped and rebuilt at restore: the file it holds open on
# its private tmpfs comes back with its contents, the host's file of the
# same name is untouched and not what it sees; a file that is the same in
# both views is the same file again.  (t-sandbox.sh: systemd's sandboxes.)
. "$(dirname "$0")/../lib.sh"
require_root
command -v unshare > /dev/null || skip_all "no unshare"

mkdir -p "$T/priv" "$T/hostfs"
echo "the host's file" > "$T/priv/f"
# a tmpfs of the host's, which its namespace sees too: sized by the kernel
# from its memory (/dev, /run), so another kernel gives it another size, and
# mounted again on each boot, where its source is whatever label the one who
# mounts it gives (/sys/fs/pstore: "pstore" on 6.1, "none" on 7.3)
mount -t tmpfs -o size=8m kup-test-host "$T/hostfs" || bail "cannot mount a tmpfs"
at_exit "umount -l '$T/hostfs' 2>/dev/null"
echo "shared" > "$T/shared"
# counter with fd 3 on the private $T/priv/f (a tmpfs only its namespace has)
# and fd 4 on $T/shared, the same file in both views
pid=$(start_bg "$T/out" unshare -m --propagation private sh -c \
	"mount -t tmpfs kup-test '$T/priv' && echo private > '$T/priv/f' && exec 3< '$T/priv/f' 4< '$T/shared' && exec '$PROGS/counter'")
wait_for_line "$T/out" '^C 2 ' || bail "counter in its own mount namespace did not start"
check "the counter is in another mount namespace" \
	eval '[ "$(readlink /proc/$pid/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ]'
check "kup dump keeps its namespace" kup_run "$T/dump.log" dump -t "$pid" -D "$T/img" ||
	note "$(cat "$T/dump.log")"
check "saying so" grep -q "pid $pid: its mount namespace (.*) is kept" "$T/dump.log"
wait_gone "$pid" || true
umount "$T/hostfs" && mount -t tmpfs -o size=16m kup-test-newboot "$T/hostfs" ||
	bail "cannot mount the host's tmpfs again"
check "and restored, the host's tmpfs mounted again with another size and source (as on another kernel)" \
	kup_run "$T/restore.log" restore -D "$T/img" -d || note "$(tail "$T/restore.log")"
track "$pid"
check "the counter goes on" eval 'n=$(lines_count "$T/out" "^C "); wait_for "[ \$(lines_count $T/out \"^C \") -gt \$((n + 2)) ]" 5'
check "in a mount namespace of its own again" \
	eval '[ "$(readlink /proc/$pid/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ]'
check "fd 3 is its private $T/priv/f, with its contents" eval '[ "$(cat /proc/$pid/fd/3)" = private ]'
check "the host's $T/priv/f is the host's" eval '[ "$(cat "$T/priv/f")" = "the host'"'"'s file" ]'
check "fd 4 is $T/shared, the same file" eval '[ "$(readlink /proc/$pid/fd/4)" = "$T/shared" ] &&
	[ "$(stat -L -c %d:%i /proc/$pid/fd/4)" = "$(stat -c %d:%i "$T/shared")" ]'
