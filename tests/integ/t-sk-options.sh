#!/bin/bash
# Socket options and flags survive a dump and restore: a process sets many
# of them on a listening socket, an established connection and a UDP
# socket, and prints them all (getsockopt) on SIGUSR1; the lists before and
# after are the same.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
require_root
command -v python3 > /dev/null || skip_all "needs python3"
net_setup

srv=$(start_bg "$T/out" nsenter --net=/run/netns/"$NSA" python3 -c '
import fcntl, os, signal, socket, struct, sys, time
S, T, I, I6 = socket.SOL_SOCKET, socket.IPPROTO_TCP, socket.IPPROTO_IP, socket.IPPROTO_IPV6
l = socket.socket(socket.AF_INET6)
l.setsockopt(I6, socket.IPV6_V6ONLY, 1)
l.setsockopt(S, socket.SO_REUSEADDR, 1)
l.setsockopt(S, socket.SO_REUSEPORT, 1)
l.setsockopt(T, socket.TCP_DEFER_ACCEPT, 5)
l.bind(("fd77::1", 7401)); l.listen(7)
print("LISTEN", flush=True)
c, _ = l.accept()
c.setsockopt(T, socket.TCP_NODELAY, 1)
c.setsockopt(S, socket.SO_KEEPALIVE, 1)
c.setsockopt(T, socket.TCP_KEEPIDLE, 77)
c.setsockopt(T, socket.TCP_KEEPINTVL, 11)
c.setsockopt(T, socket.TCP_KEEPCNT, 4)
c.setsockopt(T, socket.TCP_USER_TIMEOUT, 12345)
c.setsockopt(S, socket.SO_LINGER, struct.pack("ii", 1, 9))
c.setsockopt(S, 32, 300000)		# SO_SNDBUFFORCE
c.setsockopt(S, socket.SO_PRIORITY, 3)
c.setsockopt(S, socket.SO_MARK, 42)
c.setsockopt(I6, socket.IPV6_TCLASS, 0x20)
c.setblocking(False)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.setsockopt(S, socket.SO_BROADCAST, 1)
u.setsockopt(I, socket.IP_TOS, 0x10)
u.setsockopt(I, socket.IP_TTL, 33)
u.setsockopt(S, socket.SO_RCVBUF, 50000)
u.setsockopt(S, socket.SO_BINDTODEVICE, b"va")
u.bind(("10.77.0.1", 7402))
def show(*_):
    out = []
    for name, s in (("listen", l), ("conn", c), ("udp", u)):
        for lvl, opt, what in ((S, socket.SO_REUSEADDR, "reuseaddr"), (S, socket.SO_REUSEPORT, "reuseport"),
                (S, socket.SO_KEEPALIVE, "keepalive"), (S, socket.SO_SNDBUF, "sndbuf"),
                (S, socket.SO_RCVBUF, "rcvbuf"), (S, 72, "buf_lock"), (S, socket.SO_PRIORITY, "priority"),
                (S, socket.SO_MARK, "mark"), (S, socket.SO_BROADCAST, "broadcast")):
            out.append("%s.%s=%d" % (name, what, s.getsockopt(lvl, opt)))
        out.append("%s.linger=%r" % (name, struct.unpack("ii", s.getsockopt(S, socket.SO_LINGER, 8))))
        out.append("%s.dev=%r" % (name, s.getsockopt(S, socket.SO_BINDTODEVICE, 16).rstrip(b"\0")))
        out.append("%s.nonblock=%d" % (name, bool(fcntl.fcntl(s.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK)))
        out.append("%s.name=%r" % (name, s.getsockname()[:2]))
        if s.family == socket.AF_INET6:
            out.append("%s.v6only=%d tclass=%d" % (name, s.getsockopt(I6, socket.IPV6_V6ONLY), s.getsockopt(I6, socket.IPV6_TCLASS)))
        else:
            out.append("%s.tos=%d ttl=%d" % (name, s.getsockopt(I, socket.IP_TOS), s.getsockopt(I, socket.IP_TTL)))
        if s.type == socket.SOCK_STREAM:
            for opt, what in ((socket.TCP_NODELAY, "nodelay"), (socket.TCP_KEEPIDLE, "keepidle"),
                    (socket.TCP_KEEPINTVL, "keepintvl"), (socket.TCP_KEEPCNT, "keepcnt"),
                    (socket.TCP_USER_TIMEOUT, "user_timeout"), (socket.TCP_DEFER_ACCEPT, "defer_accept")):
                out.append("%s.%s=%d" % (name, what, s.getsockopt(T, opt)))
    print("OPTS " + " ".join(out), flush=True)
signal.signal(signal.SIGUSR1, show)
while True:
    time.sleep(1)')
wait_for_line "$T/out" '^LISTEN' || bail "server did not start"
cli=$(start_bg "$T/cli" nsenter --net=/run/netns/"$NSB" python3 -c '
import socket, time
s = socket.create_connection(("fd77::1", 7401)); s.sendall(b"x")
print("CONNECTED", flush=True); time.sleep(3600)')
wait_for_line "$T/cli" '^CONNECTED' || bail "client did not connect"
sleep 0.3
kill -USR1 "$srv"
wait_for_line "$T/out" '^OPTS' || bail "no option list"
grep '^OPTS' "$T/out" | tr ' ' '\n' | tail -n +2 > "$T/before"
note "$(tr '\n' ' ' < "$T/before")"

check "kup dump --tcp-established" kup_run "$T/d" dump -t "$srv" -D "$T/img" --tcp-established
wait_gone "$srv"
check "kup restore" kup_in "$NSA" "$T/r" restore -D "$T/img" -d --tcp-established
track "$srv"
kill -USR1 "$srv"
wait_for "[ \$(grep -c '^OPTS' '$T/out') -ge 2 ]" 10
grep '^OPTS' "$T/out" | tail -n 1 | tr ' ' '\n' | tail -n +2 > "$T/after"
check "every option and flag is the same after the restore" diff "$T/before" "$T/after"
check "... and there are $(wc -l < "$T/before") of them" [ "$(wc -l < "$T/before")" -gt 50 ]
