#!/bin/bash
# TCP connections in the states of a close (CLOSE_WAIT, LAST_ACK, CLOSING,
# FIN_WAIT1 and FIN_WAIT2 with bytes received after our FIN), dumped,
# killed and restored (and CLOSE_WAIT with --leave-running), each with a
# real peer in another network namespace whose view is checked: the
# service still reads what the peer sent and its end of file, the bytes
# the service wrote before (or after) the dump reach the peer, then the
# peer's end of file.  A connect() still in progress (SYN_SENT) is
# refused, naming it, and the tree goes on.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
require_root
command -v python3 > /dev/null || skip_all "needs python3"
command -v nft > /dev/null || skip_all "needs nft"
net_setup

# One end of a connection, driven step by step: "tcpend listen|connect
# ADDR PORT TAG STEP...": step i waits for the file $T/go-TAG-i, then runs and
# prints "DONE i ...".  Steps: send:N (N bytes of 'x'), shut (shutdown
# SHUT_WR), read (to the end of file: "GOT n EOF"), readn:N ("GOT N"),
# state (the TCP state number, "STATE s"), close.
cat > "$T/tcpend.py" <<'PY'
import os, socket, struct, sys, time
role, addr, port, tag, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5:]
d = os.path.dirname(sys.argv[0])
if role == "listen":
    l = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((addr, port)); l.listen(1)
    print("LISTEN", flush=True)
    c, _ = l.accept(); l.close()
else:
    c = socket.create_connection((addr, port))
print("READY", flush=True)
for i, st in enumerate(steps):
    while not os.path.exists("%s/go-%s-%d" % (d, tag, i)):
        time.sleep(0.02)
    out = ""
    if st.startswith("send:"):
        c.sendall(b"x" * int(st[5:]))
    elif st == "shut":
        c.shutdown(socket.SHUT_WR)
    elif st == "read":
        n = 0
        while True:
            b = c.recv(65536)
            if not b: break
            n += len(b)
        out = "GOT %d EOF" % n
    elif st.startswith("readn:"):
        want, n = int(st[6:]), 0
        while n < want:
            b = c.recv(want - n)
            if not b: break
            n += len(b)
        out = "GOT %d" % n
    elif st == "state":
        out = "STATE %d" % c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
    elif st == "close":
        c.close()
    print("DONE", i, out, flush=True)
time.sleep(3600)
PY

# has REGEX FILE: FILE has a line matching REGEX (else shows FILE)
has() { grep -qE "$1" "$2" || { cat "$2"; return 1; }; }
# svc PORT STEPS...: the service in NSA; peer PORT STEPS...: the peer in NSB
# (SADDR, PADDR: the service's listening address and the one the peer
# connects to, 10.77.0.1 unless set)
svc() { local p=$1; shift; start_bg "$T/s$p" nsenter --net=/run/netns/"$NSA" python3 "$T/tcpend.py" listen "${SADDR:-10.77.0.1}" "$p" "s$p" "$@"; }
peer() { local p=$1; shift; start_bg "$T/p$p" nsenter --net=/run/netns/"$NSB" python3 "$T/tcpend.py" connect "${PADDR:-10.77.0.1}" "$p" "p$p" "$@"; }
# go s|p PORT I: run step I of that end and wait for it to be done
go() { touch "$T/go-$1$2-$3"; wait_for_line "$T/$1$2" "^DONE $3( |\$)" 10; }
# state NS PORT: TCP state of the connection on PORT in NS (ss's name)
state() { in_ns "$1" ss -Htan "( sport = :$2 or dport = :$2 )" | awk '$1 != "LISTEN" { print $1 }' | head -n 1; }
# hold NS PORT: drop what NS sends from port PORT (the peer sees nothing)
hold() { in_ns "$1" nft -f - <<NFT
add table inet hold$2
add chain inet hold$2 out { type filter hook output priority 0 ; policy accept ; }
add rule inet hold$2 out tcp sport $2 drop
NFT
}
unhold() { in_ns "$1" nft delete table inet "hold$2"; }
# cycle PID IMG [DUMP ARGS]: dump PID with --tcp-established, wait for it
# to be gone, restore it in NSA
cycle() {
	local pid=$1 img=$2
	shift 2
	check "kup dump of pid $pid ($img) $*" kup_run "$T/d-$img" dump -t "$pid" -D "$T/$img" --tcp-established "$@" &&
	wait_gone "$pid" &&
	check "kup restore ($img)" kup_in "$NSA" "$T/r-$img" restore -D "$T/$img" -d --tcp-established
	track "$pid"
}

# CLOSE_WAIT: the peer sent 5 bytes and its FIN; the service reads them
# after the restore, then writes its last 3000 bytes and closes: the peer
# reads them and the end of file
s=$(svc 7301 read send:3000 close)
wait_for_line "$T/s7301" '^LISTEN' || bail "service did not start"
p=$(peer 7301 send:5 shut read)
wait_for_line "$T/s7301" '^READY' || bail "no connection"
go p 7301 0 && go p 7301 1
wait_for "[ \"\$(state $NSA 7301)\" = CLOSE-WAIT ]" 5
check "CLOSE_WAIT: the service's side is in CLOSE_WAIT" [ "$(state "$NSA" 7301)" = CLOSE-WAIT ]
cycle "$s" cw
check "... restored in CLOSE_WAIT" [ "$(state "$NSA" 7301)" = CLOSE-WAIT ]
check "... the service reads the peer's 5 bytes and its end of file" go s 7301 0
check "... (GOT 5 EOF)" grep -q '^DONE 0 GOT 5 EOF' "$T/s7301"
go s 7301 1; go s 7301 2; touch "$T/go-p7301-2"
check "... the peer reads the service's last 3000 bytes and its end of file" \
	wait_for_line "$T/p7301" '^DONE 2 GOT 3000 EOF' 10

# the same with --leave-running: the service goes on without a restore
s=$(svc 7302 read send:3000 close)
wait_for_line "$T/s7302" '^LISTEN' || bail "service did not start"
p=$(peer 7302 send:5 shut read)
wait_for_line "$T/s7302" '^READY' || bail "no connection"
go p 7302 0 && go p 7302 1
wait_for "[ \"\$(state $NSA 7302)\" = CLOSE-WAIT ]" 5
check "CLOSE_WAIT, kup dump --leave-running" \
	kup_run "$T/d-cwl" dump -t "$s" -D "$T/cwl" --tcp-established --leave-running
check "... no network lock left" [ "$(kup_tables "$NSA")" = 0 ]
check "... the service reads the 5 bytes and the end of file" go s 7302 0
check "... (GOT 5 EOF)" grep -q '^DONE 0 GOT 5 EOF' "$T/s7302"
go s 7302 1; go s 7302 2; touch "$T/go-p7302-2"
check "... the peer reads the last 3000 bytes and the end of file" \
	wait_for_line "$T/p7302" '^DONE 2 GOT 3000 EOF' 10

# LAST_ACK: the peer's FIN came, the service wrote 3000 bytes and shut
# down; none of it reached the peer (held) before the dump
s=$(svc 7303 send:3000 shut read state)
wait_for_line "$T/s7303" '^LISTEN' || bail "service did not start"
p=$(peer 7303 send:7 shut read)
wait_for_line "$T/s7303" '^READY' || bail "no connection"
go p 7303 0 && go p 7303 1
wait_for "[ \"\$(state $NSA 7303)\" = CLOSE-WAIT ]" 5
hold "$NSA" 7303
go s 7303 0; go s 7303 1
wait_for "[ \"\$(state $NSA 7303)\" = LAST-ACK ]" 5
check "LAST_ACK: the service's side is in LAST_ACK" [ "$(state "$NSA" 7303)" = LAST-ACK ]
touch "$T/go-p7303-2"
cycle "$s" la
check "... restored in LAST_ACK" [ "$(state "$NSA" 7303)" = LAST-ACK ]
check "... the service reads the peer's 7 bytes and its end of file" go s 7303 2
check "... (GOT 7 EOF)" grep -q '^DONE 2 GOT 7 EOF' "$T/s7303"
unhold "$NSA" 7303
check "... the peer reads the 3000 bytes and the end of file" \
	wait_for_line "$T/p7303" '^DONE 2 GOT 3000 EOF' 15
check "... and the connection closes (the peer acknowledged the FIN)" \
	wait_for "[ -z \"\$(in_ns $NSA ss -Htan state last-ack '( sport = :7303 )')\" ]" 15

# CLOSING: both ends shut down at once: the service's 3000 bytes and FIN
# are held, the peer's FIN came in
s=$(svc 7304 send:3000 shut read)
wait_for_line "$T/s7304" '^LISTEN' || bail "service did not start"
p=$(peer 7304 shut read)
wait_for_line "$T/s7304" '^READY' || bail "no connection"
hold "$NSA" 7304
go s 7304 0; go s 7304 1
go p 7304 0
wait_for "[ \"\$(state $NSA 7304)\" = CLOSING ]" 5
check "CLOSING: the service's side is in CLOSING" [ "$(state "$NSA" 7304)" = CLOSING ]
touch "$T/go-p7304-1"
cycle "$s" cl
check "... restored in CLOSING" [ "$(state "$NSA" 7304)" = CLOSING ]
check "... the service reads the peer's end of file" go s 7304 2
check "... (GOT 0 EOF)" grep -q '^DONE 2 GOT 0 EOF' "$T/s7304"
unhold "$NSA" 7304
check "... the peer reads the 3000 bytes and the end of file" \
	wait_for_line "$T/p7304" '^DONE 1 GOT 3000 EOF' 15

# FIN_WAIT2 with bytes received after the service's FIN
s=$(svc 7305 shut readn:4000 read)
wait_for_line "$T/s7305" '^LISTEN' || bail "service did not start"
p=$(peer 7305 read send:4000 close)
wait_for_line "$T/s7305" '^READY' || bail "no connection"
go s 7305 0; go p 7305 0; go p 7305 1
wait_for "[ \"\$(state $NSA 7305)\" = FIN-WAIT-2 ]" 5
check "FIN_WAIT2: the service's side is in FIN_WAIT2, 4000 bytes not read" \
	[ "$(state "$NSA" 7305)" = FIN-WAIT-2 ]
cycle "$s" fw2
check "... the service reads the 4000 bytes" go s 7305 1
check "... (GOT 4000)" grep -q '^DONE 1 GOT 4000' "$T/s7305"
go p 7305 2
check "... then the peer's end of file" go s 7305 2
check "... (GOT 0 EOF)" grep -q '^DONE 2 GOT 0 EOF' "$T/s7305"

# FIN_WAIT1 with bytes received: the service's FIN is held
s=$(svc 7306 send:2000 shut readn:4000 read)
wait_for_line "$T/s7306" '^LISTEN' || bail "service did not start"
p=$(peer 7306 send:4000 read close)
wait_for_line "$T/s7306" '^READY' || bail "no connection"
hold "$NSA" 7306
go s 7306 0; go s 7306 1; go p 7306 0
wait_for "[ \"\$(state $NSA 7306)\" = FIN-WAIT-1 ]" 5
check "FIN_WAIT1: the service's side is in FIN_WAIT1, 4000 bytes not read" \
	[ "$(state "$NSA" 7306)" = FIN-WAIT-1 ]
touch "$T/go-p7306-1"
cycle "$s" fw1
unhold "$NSA" 7306
check "... the service reads the 4000 bytes" go s 7306 2
check "... the peer reads its 2000 bytes and the end of file" \
	wait_for_line "$T/p7306" '^DONE 1 GOT 2000 EOF' 15
go p 7306 2
check "... then the service reads the peer's end of file" go s 7306 3
check "... (GOT 0 EOF)" grep -q '^DONE 3 GOT 0 EOF' "$T/s7306"

# IPv6 (CLOSE_WAIT), and a v4-mapped connection on a "::" listener
# (LAST_ACK): the replayed FIN is an IPv6, then an IPv4 segment
s=$(SADDR=fd77::1 svc 7308 read send:3000 close)
wait_for_line "$T/s7308" '^LISTEN' || bail "service did not start"
p=$(PADDR=fd77::1 peer 7308 send:5 shut read)
wait_for_line "$T/s7308" '^READY' || bail "no connection"
go p 7308 0 && go p 7308 1
wait_for "[ \"\$(state $NSA 7308)\" = CLOSE-WAIT ]" 5
check "IPv6 CLOSE_WAIT: the service's side is in CLOSE_WAIT" [ "$(state "$NSA" 7308)" = CLOSE-WAIT ]
cycle "$s" cw6
check "... restored in CLOSE_WAIT" [ "$(state "$NSA" 7308)" = CLOSE-WAIT ]
check "... the service reads the 5 bytes and the end of file" go s 7308 0
check "... (GOT 5 EOF)" grep -q '^DONE 0 GOT 5 EOF' "$T/s7308"
go s 7308 1; go s 7308 2; touch "$T/go-p7308-2"
check "... the peer reads the last 3000 bytes and the end of file" \
	wait_for_line "$T/p7308" '^DONE 2 GOT 3000 EOF' 10

s=$(SADDR=:: svc 7309 send:3000 shut read)
wait_for_line "$T/s7309" '^LISTEN' || bail "service did not start"
p=$(peer 7309 send:7 shut read)
wait_for_line "$T/s7309" '^READY' || bail "no connection"
go p 7309 0 && go p 7309 1
wait_for "[ \"\$(state $NSA 7309)\" = CLOSE-WAIT ]" 5
hold "$NSA" 7309
go s 7309 0; go s 7309 1
wait_for "[ \"\$(state $NSA 7309)\" = LAST-ACK ]" 5
check "v4-mapped LAST_ACK: the service's side is in LAST_ACK" [ "$(state "$NSA" 7309)" = LAST-ACK ]
touch "$T/go-p7309-2"
cycle "$s" la6
check "... restored in LAST_ACK" [ "$(state "$NSA" 7309)" = LAST-ACK ]
check "... the service reads the 7 bytes and the end of file" go s 7309 2
check "... (GOT 7 EOF)" grep -q '^DONE 2 GOT 7 EOF' "$T/s7309"
unhold "$NSA" 7309
check "... the peer reads the 3000 bytes and the end of file" \
	wait_for_line "$T/p7309" '^DONE 2 GOT 3000 EOF' 15

# A restore before the service's address is configured (a new boot): the
# peer's FIN cannot be replayed and is kept as an end of file; the
# address comes back after the restore
s=$(svc 7310 read send:3000 close)
wait_for_line "$T/s7310" '^LISTEN' || bail "service did not start"
p=$(peer 7310 send:5 shut read)
wait_for_line "$T/s7310" '^READY' || bail "no connection"
go p 7310 0 && go p 7310 1
wait_for "[ \"\$(state $NSA 7310)\" = CLOSE-WAIT ]" 5
s2=$(svc 7311 send:3000 shut read)
wait_for_line "$T/s7311" '^LISTEN' || bail "service did not start"
p2=$(peer 7311 send:7 shut read)
wait_for_line "$T/s7311" '^READY' || bail "no connection"
go p 7311 0 && go p 7311 1
wait_for "[ \"\$(state $NSA 7311)\" = CLOSE-WAIT ]" 5
hold "$NSA" 7311
go s 7311 0; go s 7311 1
wait_for "[ \"\$(state $NSA 7311)\" = LAST-ACK ]" 5
touch "$T/go-p7311-2"
check "kup dump of a CLOSE_WAIT service" \
	kup_run "$T/d-na1" dump -t "$s" -D "$T/na1" --tcp-established
check "kup dump of a LAST_ACK service" \
	kup_run "$T/d-na2" dump -t "$s2" -D "$T/na2" --tcp-established
wait_gone "$s"; wait_gone "$s2"
# (the address goes, a route to the peer stays: a repaired connect() needs one)
in_ns "$NSA" ip addr del 10.77.0.1/24 dev va
in_ns "$NSA" ip route add 10.77.0.0/24 dev va
check "... both restored while 10.77.0.1 is not configured" \
	kup_in "$NSA" "$T/r-na1" restore -D "$T/na1" -d --tcp-established || sed "s/^/# /" "$T/r-na1"
kup_in "$NSA" "$T/r-na2" restore -D "$T/na2" -d --tcp-established
track "$s"; track "$s2"
check "... with a warning for each" \
	[ "$(cat "$T/r-na1" "$T/r-na2" | grep -c "its address is not configured yet: the peer's FIN is kept as an end of file")" = 2 ]
in_ns "$NSA" ip route del 10.77.0.0/24 dev va
in_ns "$NSA" ip addr add 10.77.0.1/24 dev va
unhold "$NSA" 7311
check "... the CLOSE_WAIT service reads the 5 bytes and the end of file" go s 7310 0
check "... (GOT 5 EOF)" grep -q '^DONE 0 GOT 5 EOF' "$T/s7310"
go s 7310 1; go s 7310 2; touch "$T/go-p7310-2"
check "... its peer reads the last 3000 bytes and the end of file" \
	wait_for_line "$T/p7310" '^DONE 2 GOT 3000 EOF' 15
check "... the LAST_ACK service reads the 7 bytes and the end of file" go s 7311 2
check "... (GOT 7 EOF)" grep -q '^DONE 2 GOT 7 EOF' "$T/s7311"
check "... its peer reads the 3000 bytes and the end of file" \
	wait_for_line "$T/p7311" '^DONE 2 GOT 3000 EOF' 15

# SYN_SENT: a non-blocking connect() that nobody answers is refused
in_ns "$NSB" nft -f - <<NFT
add table inet syn
add chain inet syn in { type filter hook input priority 0 ; policy accept ; }
add rule inet syn in tcp dport 7307 drop
NFT
s=$(start_bg "$T/syn" nsenter --net=/run/netns/"$NSA" python3 -c '
import os, socket, time
c = socket.socket(); c.setblocking(False)
c.connect_ex(("10.77.0.2", 7307))
print("CONNECTING", c.fileno(), flush=True)
time.sleep(3600)')
wait_for_line "$T/syn" '^CONNECTING' || bail "no connect"
fd=$(line_field "$T/syn" '^CONNECTING' 2)
check_fails "SYN_SENT: the dump is refused" kup_try dump -t "$s" -D "$T/syn-img" --tcp-established
check "... naming pid, fd, connection and state" \
	has "pid $s fd $fd: connection TCP 10\.77\.0\.1:[0-9]+ -> 10\.77\.0\.2:7307 in state SYN_SENT" "$T/err"
check "... the tree goes on" not_frozen "$s"
check "... no network lock left" [ "$(kup_tables "$NSA")" = 0 ]
check "no error" [ "$(cat "$T"/s73* "$T"/p73* | grep -cE 'Error|Traceback')" = 0 ]
