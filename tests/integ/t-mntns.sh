#!/bin/bash
# A process in a mount namespace of its own (a service's private /tmp) sees
# other files than kup under the same names.  A file it has open that kup
# would reopen as another file is refused at dump, naming pid, fd and path,
# and the process runs on as it was; a file that is the same in both views
# is fine.
. "$(dirname "$0")/../lib.sh"
require_root
command -v unshare > /dev/null || skip_all "no unshare"

mkdir -p "$T/priv"
echo "the host's file" > "$T/priv/f"
echo "shared" > "$T/shared"
# counter with fd 3 on the private $T/priv/f (a tmpfs only its namespace has)
pid=$(start_bg "$T/out" unshare -m --propagation private sh -c \
	"mount -t tmpfs kup-test '$T/priv' && echo private > '$T/priv/f' && exec 3< '$T/priv/f' && exec '$PROGS/counter'")
wait_for_line "$T/out" '^C 2 ' || bail "counter in its own mount namespace did not start"
check "the counter is in another mount namespace" \
	eval '[ "$(readlink /proc/$pid/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ]'
check_fails "kup dump refuses its private file" kup_try dump -t "$pid" -D "$T/img"
check "naming the pid, the fd and the path" \
	grep -q "pid $pid fd 3: $T/priv/f is not the file the process sees under that name" "$T/err"
check "the counter runs on" eval 'n=$(lines_count "$T/out" "^C "); wait_for "[ \$(lines_count $T/out \"^C \") -gt \$((n + 2)) ]" 5'
kill_tree "$pid"
wait_gone "$pid" || true

# the same file in both views: dumped and restored
pid=$(start_bg "$T/out2" unshare -m --propagation private sh -c \
	"mount -t tmpfs kup-test '$T/priv' && exec 3< '$T/shared' && exec '$PROGS/counter'")
wait_for_line "$T/out2" '^C 2 ' || bail "counter did not start"
check "a file both views share is dumped" kup_run "$T/dump.log" dump -t "$pid" -D "$T/img2" ||
	note "$(cat "$T/dump.log")"
wait_gone "$pid" || true
check "and restored" kup_run "$T/restore.log" restore -D "$T/img2" -d
track "$pid"
check "fd 3 is that file" eval '[ "$(readlink /proc/$pid/fd/3)" = "$T/shared" ]'
