#!/bin/bash
# A service in a user namespace of its own (PrivateUsers=), in the sandbox
# systemd builds (tests/lib-sandbox.sh: the mount and UTS namespaces first,
# owned by the initial user namespace, the user namespace last with root and
# the service's ids mapped to themselves, setgroups denied).  After dump and
# restore each tree is in a new user namespace with the same uid_map,
# gid_map and setgroups, not kup's; its tasks have the same ids, groups and
# capabilities (as seen inside), the same mount table and host name.
# 1. root inside with every capability there, and 4 threads: the threads
#    keep their tids and counters; it still cannot do what needs root
#    outside (ptrace pid 1).
# 2. Debian's redis-server as redis:redis with no capabilities, a client in
#    another network namespace over TCP (--tcp-established): the client
#    reads its 1000 keys back over the same connection.
# Refused at dump, naming the pid, the tree running on: a nested user
# namespace, one shared with a process outside the tree, and a mount
# namespace owned by the tree's user namespace (unshare --user --mount).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
require_root
command -v unshare > /dev/null || skip_all "no unshare"
. "$(dirname "$0")/../lib-sandbox.sh"

# ns_view PID: what the restore must keep of its namespaces and creds
ns_view() {
	cat /proc/$1/uid_map /proc/$1/gid_map /proc/$1/setgroups
	grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/$1/status
	nsenter -t "$1" -u hostname
}
own_userns() { [ "$(readlink /proc/$1/ns/user)" != "$(readlink /proc/self/ns/user)" ]; }

# ---- 1. root inside, threads ----
mkdir -p "$SB/rw"
pid=$(sandbox_start "$SB/rw/out" PrivateTmp=yes PrivateDevices=yes ProtectHome=yes ProtectSystem=strict \
	ReadWritePaths="$SB/rw" ProtectHostname=yes PrivateUsers=0:0 -- "$SB_PROGS/threads" -n 4)
wait_for_line "$SB/rw/out" '^T3 .* 3$' || bail "threads did not start in its sandbox"
check "in a user namespace of its own" own_userns "$pid"
nsenter -t "$pid" -u hostname "kup-uts-$$"
check "and a UTS namespace of its own, named kup-uts-$$" \
	eval '[ "$(nsenter -t $pid -u hostname)" = kup-uts-$$ ] && [ "$(hostname)" != kup-uts-$$ ]' 
ns_view "$pid" > "$T/view.before"
mountinfo_norm "$pid" > "$T/mounts.before"
tids_before=$(ls /proc/$pid/task | sort -n | tr '\n' ' ')
check "kup dump" kup_run "$T/d" dump -t "$pid" -D "$T/img" || note "$(tail "$T/d")"
check "its user namespace is kept" grep -q "pid $pid: in a user namespace of its own" "$T/d"
check "the tree is gone" wait_gone "$pid"
lines=$(wc -l < "$SB/rw/out")
check "kup restore -d" kup_run "$T/r" restore -D "$T/img" -d || note "$(tail "$T/r")"
track "$pid"
check "every TID is the same" [ "$(ls /proc/$pid/task | sort -n | tr '\n' ' ')" = "$tids_before" ]
check "in a user namespace of its own again" own_userns "$pid"
ns_view "$pid" > "$T/view.after"
check "same uid_map, gid_map, setgroups, ids, capabilities, host name" diff "$T/view.before" "$T/view.after" ||
	note "$(diff "$T/view.before" "$T/view.after")"
check "every thread's creds are the main thread's" \
	eval '[ "$(for t in /proc/$pid/task/*; do grep -E "^(Uid|Gid|Cap)" $t/status; done | sort -u | wc -l)" = 7 ]'
mountinfo_norm "$pid" > "$T/mounts.after"
check "its mountinfo is the dumped one (up to ids and devices)" diff "$T/mounts.before" "$T/mounts.after" ||
	note "$(diff "$T/mounts.before" "$T/mounts.after")"
check "the 4 threads count on" wait_for_line "$SB/rw/out" "^T3 .* $(($(awk '$1 == "T3" { v = $3 } END { print v }' "$SB/rw/out") + 5))\$" 10
check "each thread's counter goes on from its own value, with its own TID" \
	awk '/^T[0-9]/ {
		if (($1 in last) && $3 != last[$1] + 1) { print "# " $1 ": " last[$1] " then " $3; bad = 1 }
		if (($1 in tid) && $2 != tid[$1]) { print "# " $1 ": tid " tid[$1] " then " $2; bad = 1 }
		last[$1] = $3; tid[$1] = $2 } END { exit bad }' "$SB/rw/out"
check "its self-check passes" request_check "$pid" "$SB/rw/out"
check "its host name is kup-uts-$$ again, the host's is not" \
	eval '[ "$(nsenter -t $pid -u hostname)" = kup-uts-$$ ] && [ "$(hostname)" != kup-uts-$$ ]'
# root of its namespace only: pid 1's memory is not its to read
check "in its namespace, root cannot read pid 1's environment (no capability outside)" \
	eval 'nsenter -t $pid -U --preserve-credentials true &&
	      ! nsenter -t $pid -U --preserve-credentials cat /proc/1/environ > /dev/null 2>&1'
kill_tree "$pid"
wait_gone "$pid" || true

# images that lie about the namespaces are refused before anything is made
edit() { python3 "$(dirname "$0")/../imgedit.py" "$@"; }
for lie in "580.1[0].3=0" "580.2[0].2=4294967295" "581=s:$(printf 'h%.0s' $(seq 70))"; do
	rm -rf "$T/lie" && cp -a "$T/img" "$T/lie" && edit "$T/lie/mntns.img" "$lie" || bail "cannot edit mntns.img"
	check_fails "a restore of mntns.img with $lie fails" kup_try restore -D "$T/lie" -d
	check "saying what is wrong with mntns.img" \
		grep -qE "mntns.img: (the user namespace's uid or gid map|bad host)" "$T/err"
	check "nothing runs" eval '! alive $pid'
done

# ---- refusals: the tree runs on ----
# refused_dump NAME PID PATTERN: kup dump fails saying PATTERN, PID lives
refused_dump() {
	check_fails "kup dump refuses $1" kup_run "$T/ref" dump -t "$2" -D "$T/ref-img"
	check "naming it: $3" grep -qE "$3" "$T/ref" || note "$(tail -n 3 "$T/ref")"
	check "and pid $2 runs on" not_frozen "$2"
	rm -rf "$T/ref-img"
}
pid=$(sandbox_start "$SB/rw/nested" PrivateTmp=yes PrivateUsers=0:0 -- \
	unshare --user --map-root-user "$SB_PROGS/counter")
wait_for_line "$SB/rw/nested" '^C 2 ' || bail "the nested counter did not start"
refused_dump "a nested user namespace" "$pid" "pid $pid: in a user namespace that is not a child of kup's"
kill_tree "$pid"

pid=$(sandbox_start "$SB/rw/shared" PrivateTmp=yes PrivateUsers=0:0 -- "$SB_PROGS/counter")
wait_for_line "$SB/rw/shared" '^C 2 ' || bail "the shared counter did not start"
other=$(start_bg "$T/other" nsenter -t "$pid" -U --preserve-credentials sleep 600)
wait_for "[ \"\$(readlink /proc/$other/ns/user)\" = \"\$(readlink /proc/$pid/ns/user)\" ]" 10
refused_dump "a user namespace shared with a process outside the tree" "$pid" \
	"pid $pid: its user namespace is shared with pid $other"
kill_tree "$other"
kill_tree "$pid"

pid=$(start_bg "$T/owned" unshare --user --map-root-user --mount "$PROGS/counter")
wait_for_line "$T/owned" '^C 2 ' || bail "the counter of unshare --user --mount did not start"
refused_dump "a mount namespace owned by the tree's user namespace" "$pid" \
	"pid $pid: its mount namespace belongs to its own user namespace"
kill_tree "$pid"

# ---- 2. Debian's redis-server as redis:redis, no capabilities ----
if ! command -v redis-server > /dev/null || ! command -v redis-cli > /dev/null ||
   ! command -v python3 > /dev/null || ! id redis > /dev/null 2>&1; then
	note "no redis-server, redis-cli, python3 or redis user: the redis part is skipped"
	exit 0
fi
net_setup
mkdir -p "$SB/redis"
cat > "$SB/redis/redis.conf" <<CONF
bind 10.77.0.1
port 6379
unixsocket /tmp/redis.sock
unixsocketperm 700
daemonize no
dir /tmp
save ""
appendonly no
protected-mode no
logfile ""
CONF
chown -R redis:redis "$SB/redis"
ru=$(id -u redis) rg=$(id -g redis)
rpid=$(sandbox_start "$SB/redis/out" PrivateTmp=yes PrivateDevices=yes ProtectHome=yes \
	ReadWritePaths="$SB/redis" ProtectSystem=strict ProtectHostname=yes \
	NetworkNamespacePath=/run/netns/"$NSA" PrivateUsers=$ru:$rg -- redis-server "$SB/redis/redis.conf")
wait_for "in_ns $NSA ss -Htln '( sport = :6379 )' | grep -q 6379" 10 || bail "redis did not start in its sandbox"
check "redis runs as redis in a user namespace of its own, without capabilities" \
	eval 'own_userns $rpid && grep -q "^Uid:.$ru.$ru" /proc/$rpid/status &&
	      grep -q "^CapEff:.0000000000000000" /proc/$rpid/status'
cli=$(start_bg "$T/cli" nsenter --net=/run/netns/"$NSB" python3 -c '
import os, socket, sys, time
s = socket.create_connection(("10.77.0.1", 6379))
f = s.makefile("rb")
def cmd(*a):
    s.sendall(b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in a))
    line = f.readline()
    if line.startswith(b"$") and line != b"$-1\r\n":
        return f.read(int(line[1:]) + 2)[:-2]
    return line.strip()
for i in range(1000):
    cmd(b"SET", b"key%d" % i, b"value-%d" % i)
print("INCR", cmd(b"INCR", b"n").decode(), flush=True)
print("LOADED", flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.05)
bad = [i for i in range(1000) if cmd(b"GET", b"key%d" % i) != b"value-%d" % i]
print("INCR", cmd(b"INCR", b"n").decode(), flush=True)
print("VERIFIED" if not bad else "ERROR keys %r" % bad[:5], flush=True)
time.sleep(3600)' "$T/go")
wait_for_line "$T/cli" '^LOADED' 30 || bail "the client could not load redis"
ns_view "$rpid" > "$T/rview.before"
mountinfo_norm "$rpid" > "$T/rmounts.before"
rtids=$(ls /proc/$rpid/task | sort -n | tr '\n' ' ')
check "kup dump --tcp-established of redis" \
	kup_in "$NSA" "$T/rd" dump -t "$rpid" -D "$T/rimg" --tcp-established || note "$(tail "$T/rd")"
check "redis is gone" wait_gone "$rpid"
rm -rf /tmp/systemd-private-*-"$SB_UNIT"-* /var/tmp/systemd-private-*-"$SB_UNIT"-*
check "kup restore in its network namespace" kup_in "$NSA" "$T/rr" restore -D "$T/rimg" -d --tcp-established ||
	note "$(tail "$T/rr")"
track "$rpid"
touch "$T/go"
check "the client reads its 1000 keys back over the same connection" wait_for_line "$T/cli" '^VERIFIED' 30 ||
	note "$(tail -n 3 "$T/cli")"
check "and its counter goes on (INCR 2)" grep -q '^INCR :2$' "$T/cli"
check "redis' threads have their tids" [ "$(ls /proc/$rpid/task | sort -n | tr '\n' ' ')" = "$rtids" ]
ns_view "$rpid" > "$T/rview.after"
check "in a user namespace of its own with the same maps, ids and capabilities (none)" \
	eval 'own_userns $rpid && diff "$T/rview.before" "$T/rview.after"' ||
	note "$(diff "$T/rview.before" "$T/rview.after")"
mountinfo_norm "$rpid" > "$T/rmounts.after"
check "redis' mountinfo is the dumped one (up to ids and devices)" diff "$T/rmounts.before" "$T/rmounts.after" ||
	note "$(diff "$T/rmounts.before" "$T/rmounts.after")"
check "its unix socket in its private /tmp answers there" \
	eval '[ "$(nsenter -t $rpid -m redis-cli -s /tmp/redis.sock ping)" = PONG ] && [ ! -e /tmp/redis.sock ]'
check "no network lock left" [ "$(kup_tables "$NSA")" = 0 ]
