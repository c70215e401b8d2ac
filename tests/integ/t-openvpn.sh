#!/bin/bash
# Debian's openvpn, as its unit starts it (--daemon, --writepid, a status
# file, keepalive): a TLS server (a CA, server and client certificates made
# here with openssl) in one network namespace and its client in another,
# joined by a veth; once over UDP, once over TCP (that server drops its
# privileges to nobody, as the sample server.conf suggests).  Through the tunnel a ping
# runs and a TCP connection carries a counter echoed back (tcppeer
# echo-client: a reset, an end of file or a wrong value is an ERROR).
# The SERVER is dumped, killed and restored (same pid) inside its
# namespace: the client's tunnel carries on without the client restarting
# (its log shows no restart), the ping gets replies again, the TCP
# connection through the tunnel never resets and its counter goes on, and
# the server's tun0 counters show traffic after the restore.  Then the
# CLIENT is dumped and restored in its namespace, and the same holds.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
. "$(dirname "$0")/../lib-pki.sh"
require_root
OVPN=/usr/sbin/openvpn
[ -x "$OVPN" ] || skip_all "needs openvpn (tests/install-deps.sh)"
[ -c /dev/net/tun ] || skip_all "needs /dev/net/tun"
command -v openssl > /dev/null || skip_all "needs openssl"
command -v ping > /dev/null || skip_all "needs ping (iputils-ping)"
net_setup
plan 42

# --- a small PKI ----------------------------------------------------------------
make_pki "$T" > "$T/pki.log" 2>&1 || { cat "$T/pki.log"; bail "cannot make the certificates"; }

# count FILE REGEX
count() { lines_count "$1" "$2"; }
# grows FILE REGEX N: more than N lines of FILE match REGEX within 20 s.
grows() { wait_for "[ \$(grep -cE '$2' '$1') -gt $3 ]" 20; }
tun_rx() {
	in_ns "$1" ip -s -j link show tun0 |
		python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["packets"])'
}
# stream_goes_on LOG: the echo client's counter grows by 100 within 20 s.
stream_goes_on() {
	local n
	n=$(line_field "$1" '^N ' 2)
	wait_for "[ \"\$(line_field '$1' '^N ' 2)\" -gt $((${n:-0} + 100)) ]" 20
}
restarts() { grep -cE 'SIGUSR1\[soft|Restart pause|SIGHUP|Inactivity timeout' "$1" || true; }

# round PROTO PORT [SERVER OPTIONS...]: one server and one client over PROTO.
round() {
	local proto=$1 port=$2 sproto=$1 cproto=$1 spid cpid pinger echos echoc n r uid
	local d=$T/$proto
	shift 2
	mkdir -p "$d"
	[ "$proto" = tcp ] && sproto=tcp-server cproto=tcp-client
	# The options of a typical server.conf/client.conf, on the command line.
	in_ns "$NSA" "$OVPN" --daemon ovpn-kup-server --writepid "$d/server.pid" \
		--log "$d/server.log" --status "$d/server.status" 10 --cd "$T" \
		--dev tun0 --topology subnet --server 10.8.0.0 255.255.255.0 \
		--proto "$sproto" --port "$port" --ca ca.crt --cert server.crt --key server.key \
		--dh none --keepalive 10 60 --persist-key --persist-tun --verb 3 "$@" ||
		{ not_ok "$proto: openvpn server starts"; return 1; }
	wait_for "$d/server.pid" 10 && spid=$(cat "$d/server.pid")
	track "$spid"
	in_ns "$NSB" "$OVPN" --daemon ovpn-kup-client --writepid "$d/client.pid" \
		--log "$d/client.log" --cd "$T" --client --dev tun0 --proto "$cproto" \
		--remote 10.77.0.1 "$port" --ca ca.crt --cert client.crt --key client.key \
		--remote-cert-tls server --nobind --persist-key --persist-tun --verb 3 ||
		{ not_ok "$proto: openvpn client starts"; return 1; }
	wait_for "$d/client.pid" 10 && cpid=$(cat "$d/client.pid")
	track "$cpid"
	check "$proto: the tunnel comes up (Initialization Sequence Completed)" \
		wait_for_line "$d/client.log" 'Initialization Sequence Completed' 60 || return 1
	pinger=$(start_bg "$d/ping" nsenter --net=/run/netns/"$NSB" ping -n -i 0.2 10.8.0.1)
	echos=$(start_bg "$d/echos" nsenter --net=/run/netns/"$NSA" "$PROGS/tcppeer" echo-server 10.8.0.1 7100)
	wait_for_line "$d/echos" '^LISTEN' || { not_ok "$proto: echo server listens"; return 1; }
	echoc=$(start_bg "$d/echoc" nsenter --net=/run/netns/"$NSB" "$PROGS/tcppeer" echo-client 10.8.0.1 7100)
	check "$proto: a ping and a TCP stream run through the tunnel" \
		eval "grows '$d/ping' 'bytes from' 5 && wait_for_line '$d/echoc' '^N 100$'" || return 1

	# The server.
	grep '^Uid:' /proc/"$spid"/status > "$d/server.uid"
	check "$proto: kup dump of the openvpn server" \
		kup_run "$d/dump-s" dump -t "$spid" -D "$d/img-s" --tcp-established ||
		{ note "$(tail -n 5 "$d/dump-s")"; return 1; }
	check "$proto: ... which is gone, and its tun0 with it" \
		eval "wait_gone $spid && ! in_ns $NSA ip link show tun0 2> /dev/null"
	n=$(count "$d/ping" 'bytes from')
	r=$(restarts "$d/client.log")
	uid=$(awk '/^Uid:/ { print $2 }' "$d/server.uid")
	check "$proto: kup restore of the server inside its namespace" \
		kup_in "$NSA" "$d/rst-s" restore -D "$d/img-s" -d --tcp-established ||
		{ note "$(tail -n 5 "$d/rst-s")"; return 1; }
	check "$proto: the server is back with pid $spid" alive "$spid"
	check "$proto: ... running as uid $uid, as before the dump" \
		eval "grep -qE '^Uid:\s+$uid\s' /proc/$spid/status"
	check "$proto: ... and tun0 is there again, with 10.8.0.1/24" \
		eval "in_ns $NSA ip addr show tun0 | grep -q 'inet 10.8.0.1/24'"
	check "$proto: the ping gets replies again" grows "$d/ping" 'bytes from' "$n"
	check "$proto: the TCP stream through the tunnel goes on" stream_goes_on "$d/echoc"
	check "$proto: the server's tun0 counters show traffic after the restore" \
		eval "[ \$(tun_rx $NSA) -gt 10 ]"
	check "$proto: the client did not restart" [ "$(restarts "$d/client.log")" = "$r" ]
	note "$proto: $(( $(count "$d/ping" 'bytes from') - n )) ping replies since the dump; $(grep -oE 'icmp_seq=[0-9]+' "$d/ping" | tail -n 1)"

	# The client.
	check "$proto: kup dump of the openvpn client" \
		kup_run "$d/dump-c" dump -t "$cpid" -D "$d/img-c" --tcp-established ||
		{ note "$(tail -n 5 "$d/dump-c")"; return 1; }
	check "$proto: ... which is gone" wait_gone "$cpid"
	n=$(count "$d/ping" 'bytes from')
	r=$(restarts "$d/server.log")
	check "$proto: kup restore of the client inside its namespace" \
		kup_in "$NSB" "$d/rst-c" restore -D "$d/img-c" -d --tcp-established ||
		{ note "$(tail -n 5 "$d/rst-c")"; return 1; }
	check "$proto: the ping gets replies again" grows "$d/ping" 'bytes from' "$n"
	check "$proto: the TCP stream through the tunnel goes on" stream_goes_on "$d/echoc"
	check "$proto: the client's tun0 counters show traffic after the restore" \
		eval "[ \$(tun_rx $NSB) -gt 10 ]"
	check "$proto: the server saw no restart of its client" \
		[ "$(restarts "$d/server.log")" = "$r" ]
	check "$proto: the stream never failed (no reset, no end of file, no wrong byte)" \
		eval "[ \$(count '$d/echoc' ERROR) = 0 ] && alive $echoc && alive $echos"
	note "$proto: counter $(line_field "$d/echoc" '^N ' 2); $(tail -n 1 "$d/ping")"
	check "$proto: no restart in the client's log" [ "$(restarts "$d/client.log")" = 0 ]

	kill_tree "$pinger"; kill_tree "$echoc"; kill_tree "$echos"
	kill_tree "$cpid"; kill_tree "$spid"
	wait_gone "$spid"; wait_gone "$cpid"
	wait_for "! in_ns $NSA ip link show tun0" 10
}

round udp 11940
# The TCP server drops its privileges, as the sample server.conf suggests.
round tcp 11941 --user nobody --group nogroup
