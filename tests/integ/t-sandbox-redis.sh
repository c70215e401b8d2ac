#!/bin/bash
# Debian's redis-server in a systemd-like sandbox (PrivateTmp=yes,
# PrivateDevices=yes, ProtectHome=yes, ProtectSystem=strict with its
# directory in ReadWritePaths=; tests/lib-sandbox.sh) in a network namespace
# of its own, with a client connected from another one over TCP
# (--tcp-established).  After dump, a reboot's loss of the private /tmp's
# host directory, and restore: the client goes on over the same connection
# and reads what it wrote, redis is in a rebuilt namespace with the same
# mounts, its private /tmp holds its file again, out of the host's sight,
# and its unix socket, which answers there; / is read-only and /dev private
# for it.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
require_root
command -v redis-server > /dev/null || skip_all "needs redis-server"
command -v python3 > /dev/null || skip_all "needs python3"
command -v redis-cli > /dev/null || skip_all "needs redis-cli"
command -v unshare > /dev/null || skip_all "no unshare"
. "$(dirname "$0")/../lib-sandbox.sh"
net_setup

mkdir -p "$SB/rw"
cat > "$SB/rw/redis.conf" <<CONF
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
K=redis-note-$$
rpid=$(sandbox_start "$SB/rw/redis.out" PrivateTmp=yes PrivateDevices=yes ProtectHome=yes \
	ReadWritePaths="$SB/rw" ProtectSystem=strict -- sh -c "echo 'from before' > /tmp/$K && exec \"\$0\" \"\$@\"" \
	nsenter --net=/run/netns/"$NSA" redis-server "$SB/rw/redis.conf")
wait_for "in_ns $NSA ss -Htln '( sport = :6379 )' | grep -q 6379" 10 || bail "redis did not start in its sandbox"

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
mountinfo_norm "$rpid" > "$T/mounts.before"

check "kup dump --tcp-established of redis in its sandbox" \
	kup_in "$NSA" "$T/d" dump -t "$rpid" -D "$T/img" --tcp-established || note "$(tail "$T/d")"
check "its mount namespace is kept" grep -q "pid $rpid: its mount namespace (.*) is kept" "$T/d"
check "redis is gone" wait_gone "$rpid"
rm -rf /tmp/systemd-private-*-"$SB_UNIT"-* /var/tmp/systemd-private-*-"$SB_UNIT"-*
check "kup restore in its network namespace" kup_in "$NSA" "$T/r" restore -D "$T/img" -d --tcp-established ||
	note "$(tail "$T/r")"
track "$rpid"
touch "$T/go"
check "the client reads its 1000 keys back over the same connection" wait_for_line "$T/cli" '^VERIFIED' 30 ||
	note "$(tail -n 3 "$T/cli")"
check "and its counter goes on (INCR 2)" grep -q '^INCR :2$' "$T/cli"
check "no error in the client" [ "$(lines_count "$T/cli" 'ERROR|Traceback')" = 0 ]
mountinfo_norm "$rpid" > "$T/mounts.after"
check "redis' mountinfo is the dumped one (up to ids and devices)" diff "$T/mounts.before" "$T/mounts.after" ||
	note "$(diff "$T/mounts.before" "$T/mounts.after")"
check "its private /tmp/$K came back" eval '[ "$(nsenter -t $rpid -m cat /tmp/$K)" = "from before" ]'
check "not in the host's /tmp" [ ! -e /tmp/$K ]
check "its unix socket in its private /tmp answers there" \
	eval '[ "$(nsenter -t $rpid -m redis-cli -s /tmp/redis.sock ping)" = PONG ] && [ ! -e /tmp/redis.sock ]'
check "/ is read-only for it" eval '! nsenter -t $rpid -m touch /kup-$$ 2> /dev/null && [ ! -e /kup-$$ ]'
check "/dev is its private one" eval '[ "$(nsenter -t $rpid -m stat -f -c %T /dev)" = tmpfs ] &&
	! nsenter -t $rpid -m ls /dev | grep -qE "^(vda|sda|mem|kmsg)$"'
check "no network lock left" [ "$(kup_tables "$NSA")" = 0 ]
