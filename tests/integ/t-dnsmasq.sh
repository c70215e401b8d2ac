#!/bin/bash
# Debian's dnsmasq, started as its unit starts it (it daemonizes: fork,
# setsid, fork; its session leader is gone), holding a netlink route socket,
# answers a UDP client in another network namespace; it is dumped (without
# --shell-job), killed and restored, and the client's SAME socket gets the
# answer to a query sent after the restore.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
require_root
command -v dnsmasq > /dev/null || skip_all "needs dnsmasq"
command -v python3 > /dev/null || skip_all "needs python3"
plan 10
net_setup

in_ns "$NSA" dnsmasq --conf-file=/dev/null --port=5353 --listen-address=10.77.0.1 \
	--bind-interfaces --no-resolv --no-hosts --address=/test.kup/10.1.2.3 \
	--pid-file="$T/dnsmasq.pid" --user=root --group=root --log-facility="$T/dnsmasq.log" ||
	bail "dnsmasq did not start"
wait_for "[ -s '$T/dnsmasq.pid' ]" 10 || bail "no pid file"
pid=$(cat "$T/dnsmasq.pid")
track "$pid"
check "dnsmasq (pid $pid) daemonized: its session leader $(ps -o sid= -p "$pid") is gone" \
	eval "[ \$(ps -o sid= -p $pid) != $pid ] && [ ! -d /proc/\$(ps -o sid= -p $pid | tr -d ' ') ]"
# its route sockets by port id (ss shows no process for them: the port id is
# the pid of dnsmasq before it forked)
rtnl() { in_ns "$NSA" ss -H -f netlink | awk '$3 ~ /^rtnl:/ && $3 != "rtnl:kernel" { print $3 }' | sort; }
rtnl0=$(rtnl)
check "it holds netlink route sockets: $(echo $rtnl0)" [ -n "$rtnl0" ]
sid=$(ps -o sid= -p "$pid" | tr -d ' ')

cli=$(start_bg "$T/cli" nsenter --net=/run/netns/"$NSB" python3 -c '
import os, socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
port = None
def ask(n):
    q = struct.pack(">HHHHHH", n, 0x100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p for p in b"test.kup".split(b".")) + b"\0"
    q += struct.pack(">HH", 1, 1)
    for attempt in range(3):
        s.sendto(q, ("10.77.0.1", 5353))
        try:
            a, _ = s.recvfrom(512)
        except socket.timeout:
            continue
        if struct.unpack(">H", a[:2])[0] == n and a[-4:] == bytes([10, 1, 2, 3]):
            return True
    return False
print("ANSWER 1", ask(1), s.getsockname()[1], flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.05)
print("ANSWER 2", ask(2), s.getsockname()[1], flush=True)
' "$T/go")
check "the client gets 10.1.2.3 for test.kup" wait_for_line "$T/cli" '^ANSWER 1 True' 10

tree=$(tree_pids "$pid")
check "kup dump (no --shell-job)" kup_in "$NSA" "$T/dump.log" dump -t "$pid" -D "$T/img" ||
	note "$(cat "$T/dump.log")"
check "dnsmasq is gone" eval '(for p in $tree; do wait_gone $p || exit 1; done)'
check "kup restore" kup_in "$NSA" "$T/restore.log" restore -D "$T/img" -d ||
	note "$(cat "$T/restore.log")"
check "dnsmasq runs again as pid $pid" alive "$pid"
check "in its session $sid again, with its netlink socket" \
	eval "[ \$(ps -o sid= -p $pid) = $sid ] && [ \"\$(rtnl)\" = \"\$rtnl0\" ]"
touch "$T/go"
check "the same client socket gets the answer after the restore" wait_for_line "$T/cli" '^ANSWER 2 True' 15
check "... from the same local port" \
	[ "$(line_field "$T/cli" '^ANSWER 1' 4)" = "$(line_field "$T/cli" '^ANSWER 2' 4)" ]
