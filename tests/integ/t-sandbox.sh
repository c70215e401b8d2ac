#!/bin/bash
# A service in the sandbox systemd builds for PrivateTmp=yes,
# PrivateDevices=yes, ProtectHome=yes, ProtectProc=invisible,
# ProtectKernelTunables=yes, ProtectControlGroups=yes, ReadOnlyPaths=, BindPaths=,
# ReadWritePaths= and ProtectSystem=strict (tests/lib-sandbox.sh) is dumped
# and restored inside an equivalent one, never less confined: its mount
# table is the dumped one (up to ids and device numbers), the files of its
# private /tmp and /var/tmp come back with their contents, owners, modes and
# times (a hard link as a hard link) in a fresh host directory (the dumped one is removed first, as a
# reboot does) and are not in the host's /tmp, / is still read-only for it,
# /dev holds only its private devices, the fd it holds on a file of its
# private /tmp still reads it, and the counter goes on.  Refused at dump,
# naming pid and mount point, the tree running on: an overlayfs mount, and a
# network namespace without a name (PrivateNetwork=).
. "$(dirname "$0")/../lib.sh"
require_root
command -v unshare > /dev/null || skip_all "no unshare"
. "$(dirname "$0")/../lib-sandbox.sh"

mkdir -p "$SB/rw" "$SB/ro" "$SB/src" "$SB/dst"
echo "read only" > "$SB/ro/f"
echo "bound" > "$SB/src/f"
K=kept-$$
pid=$(sandbox_start "$SB/rw/out" PrivateTmp=yes PrivateDevices=yes ProtectHome=yes \
	ProtectProc=invisible ProtectKernelTunables=yes ProtectControlGroups=yes ReadOnlyPaths="$SB/ro" BindPaths="$SB/src:$SB/dst" ReadWritePaths="$SB/rw" \
	ProtectSystem=strict -- sh -c "printf 'kept across\n' > /tmp/$K && chmod 640 /tmp/$K &&
		touch -d '2020-01-02 03:04:05' /tmp/$K && mkdir -m 750 /tmp/dir && ln -s ../$K /tmp/dir/link &&
		ln /tmp/$K /tmp/dir/hard && printf 'in var tmp' > /var/tmp/$K && exec 3< /tmp/$K && exec \"\$0\"" "$SB_PROGS/counter")
wait_for_line "$SB/rw/out" '^C 2 ' || bail "the counter did not start in its sandbox"
check "the sandbox is in place: / read-only, /tmp private" \
	eval '! nsenter -t $pid -m touch /kup-$$ 2> /dev/null && [ ! -e /tmp/$K ] &&
	      nsenter -t $pid -m cat /tmp/$K | grep -q "kept across"'
mountinfo_norm "$pid" > "$T/mounts.before"
nsenter -t "$pid" -m ls -l --time-style=+ /dev | awk 'NR > 1 { print $1, $NF }' > "$T/dev.before"
nsenter -t "$pid" -m stat -c '%a %U %G %Y' /tmp/$K > "$T/stat.before"
old_dirs=$(ls -d /tmp/systemd-private-*-"$SB_UNIT"-* /var/tmp/systemd-private-*-"$SB_UNIT"-*)

check "kup dump" kup_run "$T/dump.log" dump -t "$pid" -D "$T/img" || note "$(tail "$T/dump.log")"
check "its mount namespace is kept" grep -q "pid $pid: its mount namespace (.*) is kept" "$T/dump.log"
check "the tree is gone" wait_gone "$pid"
# a reboot takes the private /tmp's host directory with it
rm -rf $old_dirs
lines=$(wc -l < "$SB/rw/out")
check "kup restore -d" kup_run "$T/restore.log" restore -D "$T/img" -d || note "$(tail "$T/restore.log")"
track "$pid"
check "pid $pid is back" alive "$pid"
last=$(head -n "$lines" "$SB/rw/out" | awk '$1 == "C" { v = $2 } END { print v }')
check "10 more values after the restore" wait_for_line "$SB/rw/out" "^C $((last + 10)) " 10
check "the count goes on: every value once, in order, same pid" \
	counter_continues "$SB/rw/out" "$pid" "$lines" 10
check "its check passes" request_check "$pid" "$SB/rw/out"

check "in a mount namespace of its own" \
	eval '[ "$(readlink /proc/$pid/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ]'
mountinfo_norm "$pid" > "$T/mounts.after"
check "its mountinfo is the dumped one (up to ids and devices)" diff "$T/mounts.before" "$T/mounts.after" ||
	note "$(diff "$T/mounts.before" "$T/mounts.after")"
check "its private /tmp/$K came back with its contents" \
	eval '[ "$(nsenter -t $pid -m cat /tmp/$K)" = "kept across" ]'
check "with its mode, owner and time" \
	eval '[ "$(nsenter -t $pid -m stat -c "%a %U %G %Y" /tmp/$K)" = "$(cat "$T/stat.before")" ]'
check "and the directory and symlink next to it" \
	eval '[ "$(nsenter -t $pid -m stat -c %a /tmp/dir)" = 750 ] &&
	      [ "$(nsenter -t $pid -m readlink /tmp/dir/link)" = "../$K" ]'
check "and /tmp/dir/hard, a hard link to /tmp/$K, is again the same file" \
	eval '[ "$(nsenter -t $pid -m stat -c "%i %h" /tmp/dir/hard)" = "$(nsenter -t $pid -m stat -c "%i %h" /tmp/$K)" ] &&
	      [ "$(nsenter -t $pid -m stat -c %h /tmp/$K)" = 2 ]'
check "its private /var/tmp too" eval '[ "$(nsenter -t $pid -m cat /var/tmp/$K)" = "in var tmp" ]'
check "fd 3 is /tmp/$K and reads it" \
	eval '[ "$(readlink /proc/$pid/fd/3)" = /tmp/$K ] && [ "$(cat /proc/$pid/fd/3)" = "kept across" ]'
check "/tmp/$K is not in the host's /tmp" [ ! -e /tmp/$K ]
new_dir=$(ls -d /tmp/systemd-private-*-"$SB_UNIT"-* 2> /dev/null)
check "but in a fresh systemd-private directory of the host" \
	eval '[ "$(echo "$new_dir" | wc -w)" = 1 ] && [ "$(cat "$new_dir/tmp/$K")" = "kept across" ]'
check "/ is read-only for it" eval '! nsenter -t $pid -m touch /kup-$$ 2> /dev/null && [ ! -e /kup-$$ ]'
check "so is ReadOnlyPaths=" eval '! nsenter -t $pid -m sh -c "echo x >> $SB/ro/f" 2> /dev/null'
check "/proc/sys and /sys/fs/cgroup are read-only for it" \
	eval '! nsenter -t $pid -m sh -c "echo 1 > /proc/sys/kernel/ns_last_pid" 2> /dev/null &&
	      ! nsenter -t $pid -m mkdir /sys/fs/cgroup/unified/kup-$$ 2> /dev/null'
check "BindPaths= shows its source" eval '[ "$(nsenter -t $pid -m cat $SB/dst/f)" = bound ]'
check "/home is the inaccessible directory" eval '[ "$(nsenter -t $pid -m stat -c %a /home)" = 0 ]'
nsenter -t "$pid" -m ls -l --time-style=+ /dev | awk 'NR > 1 { print $1, $NF }' > "$T/dev.after"
check "/dev holds only its private devices" diff "$T/dev.before" "$T/dev.after"
check "(null, zero, full, random, urandom, tty, pts, shm: not the host's disks)" \
	eval '! grep -qE " (vda|sda|nvme|kmsg|mem)" "$T/dev.after" && grep -q "^c.* null$" "$T/dev.after"'
check "no ERROR line" [ "$(lines_count "$SB/rw/out" ERROR)" = 0 ]
check "nothing left behind in the restorer's namespace: no /tmp/$K, no private mount" \
	eval '! grep -q " /tmp " /proc/self/mountinfo'
kill_tree "$pid"
wait_gone "$pid" || true

# refused: an overlayfs in its namespace; the tree runs on
O=$SB/rw/o
mkdir -p "$O/l" "$O/u" "$O/w" "$O/ov"
pid=$(sandbox_start "$SB/rw/out2" PrivateTmp=yes ReadWritePaths="$SB/rw" ProtectSystem=strict -- \
	sh -c "mount -t overlay overlay -o lowerdir=$O/l,upperdir=$O/u,workdir=$O/w $O/ov && exec \"\$0\"" \
	"$SB_PROGS/counter")
wait_for_line "$SB/rw/out2" '^C 2 ' || bail "the counter did not start in its sandbox with an overlayfs"
check_fails "kup dump refuses an overlayfs in its namespace" kup_try dump -t "$pid" -D "$T/img2"
check "naming the pid and the mount point" \
	grep -q "pid $pid: mount $O/ov: overlay overlay (root /) is not mounted in kup's namespace" "$T/err"
check "the counter runs on" eval 'n=$(lines_count "$SB/rw/out2" "^C "); wait_for "[ \$(lines_count $SB/rw/out2 \"^C \") -gt \$((n + 2)) ]" 5'
check "its check passes" request_check "$pid" "$SB/rw/out2"
kill_tree "$pid"
wait_gone "$pid" || true

# refused: a network namespace of its own with no name (PrivateNetwork=)
pid=$(start_bg "$T/out3" unshare -m -n --propagation slave "$SB_PROGS/counter")
wait_for_line "$T/out3" '^C 2 ' || bail "the counter did not start in its namespaces"
check_fails "kup dump refuses a network namespace of its own" kup_try dump -t "$pid" -D "$T/img3"
check "naming the pid and PrivateNetwork=" \
	grep -q "pid $pid: .*network namespace of its own .*(PrivateNetwork=): not supported" "$T/err"
check "the counter runs on" eval 'n=$(lines_count "$T/out3" "^C "); wait_for "[ \$(lines_count $T/out3 \"^C \") -gt \$((n + 2)) ]" 5'
kill_tree "$pid"
wait_gone "$pid" || true

# a network namespace with a name in /run/netns: recorded; the restore runs
# in it or fails saying so
NS=kup-sb-$$
ip netns add "$NS" || bail "cannot make a network namespace"
at_exit "ip netns del $NS 2> /dev/null"
pid=$(sandbox_start "$SB/rw/out5" PrivateTmp=yes -- nsenter --net=/run/netns/"$NS" "$SB_PROGS/counter")
wait_for_line "$SB/rw/out5" '^C 2 ' || bail "the counter did not start in its sandbox and namespace"
check "kup dump of a sandbox in network namespace $NS" kup_run "$T/dump5.log" dump -t "$pid" -D "$T/img5" ||
	note "$(tail "$T/dump5.log")"
wait_gone "$pid" || true
check_fails "kup restore outside $NS fails" kup_try restore -D "$T/img5" -d
check "saying where to restore it" grep -q "pid $pid: was in network namespace $NS: restore it in there" "$T/err"
check "nothing runs" eval '! alive $pid'
check "kup restore in $NS" eval 'nsenter --net=/run/netns/$NS "$KUP" restore -D "$T/img5" -d > "$T/restore5.log" 2>&1' ||
	note "$(tail "$T/restore5.log")"
track "$pid"
check "the counter goes on in $NS" eval '[ "$(readlink /proc/$pid/ns/net)" = "$(readlink /run/netns/$NS 2> /dev/null || stat -L -c "net:[%i]" /run/netns/$NS)" ] &&
	n=$(lines_count "$SB/rw/out5" "^C "); wait_for "[ \$(lines_count $SB/rw/out5 \"^C \") -gt \$((n + 2)) ]" 5'
kill_tree "$pid"
wait_gone "$pid" || true

# a namespace that cannot be rebuilt (a BindPaths= source gone) fails the
# restore naming the mount, leaves nothing running nor any private
# directory; once the source is back the same images restore
mkdir -p "$SB/src2" "$SB/dst2"
pid=$(sandbox_start "$SB/rw/out4" PrivateTmp=yes BindPaths="$SB/src2:$SB/dst2" -- \
	sh -c "echo x > /tmp/$K && exec \"\$0\"" "$SB_PROGS/counter")
wait_for_line "$SB/rw/out4" '^C 2 ' || bail "the counter did not start in its sandbox"
check "kup dump" kup_run "$T/dump4.log" dump -t "$pid" -D "$T/img4" || note "$(tail "$T/dump4.log")"
wait_gone "$pid" || true
rm -rf /tmp/systemd-private-*-"$SB_UNIT"-* /var/tmp/systemd-private-*-"$SB_UNIT"-*
mv "$SB/src2" "$SB/src2.away"
check_fails "kup restore fails without the bind's source" kup_try restore -D "$T/img4" -d
check "naming the mount and its source" grep -q "mount $SB/dst2: cannot take a clone of $SB/src2" "$T/err"
check "nothing of the tree runs" eval '! alive $pid'
check "no private directory left on the host" \
	eval '! ls -d /tmp/systemd-private-*-"$SB_UNIT"-* /var/tmp/systemd-private-*-"$SB_UNIT"-* 2> /dev/null'
mv "$SB/src2.away" "$SB/src2"
check "with the source back, the same images restore" kup_run "$T/restore4.log" restore -D "$T/img4" -d ||
	note "$(tail "$T/restore4.log")"
track "$pid"
check "and the counter goes on" eval 'n=$(lines_count "$SB/rw/out4" "^C "); wait_for "[ \$(lines_count $SB/rw/out4 \"^C \") -gt \$((n + 2)) ]" 5'
kill_tree "$pid"
wait_gone "$pid" || true

# images that lie about the namespace are refused before anything is made
rm -rf /tmp/systemd-private-*-"$SB_UNIT"-* /var/tmp/systemd-private-*-"$SB_UNIT"-*
edit() { python3 "$(dirname "$0")/../imgedit.py" "$@"; }
n=0
while [ -n "$(edit "$T/img4/mntns.img" "get:1[$n].8" 2> /dev/null)" ] &&
	[ "$(edit "$T/img4/mntns.img" "get:1[$n].8")" != 5 ]; do n=$((n + 1)); done
for lie in "1[$n].10[1].1=s:../escape" "1[$n].8=9" "1[$n].9=s:/etc/systemd-private-0-x-y/tmp" \
	"1[$n].10[0].2=0" "1[$n].10[1].10=1"; do
	rm -rf "$T/lie" && cp -a "$T/img4" "$T/lie" && edit "$T/lie/mntns.img" "$lie" || bail "cannot edit mntns.img"
	check_fails "a restore of mntns.img with $lie fails" kup_try restore -D "$T/lie" -d
	check "saying what is wrong with mntns.img" grep -q "mntns.img: mount .*inconsistent entry" "$T/err"
	check "nothing runs, nothing is made" eval '! alive $pid && ! ls -d /etc/systemd-private-* 2> /dev/null &&
		! ls -d /tmp/systemd-private-*-"$SB_UNIT"-* 2> /dev/null && [ ! -e /tmp/escape ]'
done
