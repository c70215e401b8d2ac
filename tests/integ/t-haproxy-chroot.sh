#!/bin/bash
# Debian's haproxy chrooted (global "chroot", as Debian's configuration
# has it, to a directory of the test) and running as user haproxy, proxying
# a live TCP stream: a client in one network namespace sends a counter every
# 20 ms through haproxy to an echo server in the other and checks every
# echo.  haproxy is dumped with --tcp-established, killed and restored: it
# is back inside its root, both of its connections carry on, and the
# client's count goes on without an error; a new client is proxied too.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
require_root
command -v haproxy > /dev/null || skip_all "no haproxy"
id haproxy > /dev/null 2>&1 || skip_all "no haproxy user"
net_setup

mkdir -m 0755 "$T/hroot"
cat > "$T/haproxy.cfg" <<CONF
global
	chroot $T/hroot
	user haproxy
	group haproxy
	nbthread 1
defaults
	mode tcp
	timeout connect 5s
	timeout client 600s
	timeout server 600s
frontend fe
	bind 10.77.0.1:8080
	default_backend be
backend be
	server echo 127.0.0.1:9000
CONF
haproxy -c -f "$T/haproxy.cfg" > "$T/check.log" 2>&1 || bail "haproxy -c: $(cat "$T/check.log")"

echo=$(start_bg "$T/echo" nsenter --net=/run/netns/"$NSA" "$PROGS/tcppeer" echo-server 127.0.0.1 9000)
wait_for_line "$T/echo" '^LISTEN' || bail "echo server did not start"
hap=$(start_bg "$T/haproxy.log" nsenter --net=/run/netns/"$NSA" haproxy -db -f "$T/haproxy.cfg")
wait_for "in_ns $NSA ss -Htln 'sport = :8080' | grep -q 8080" 10 || bail "haproxy did not listen: $(cat "$T/haproxy.log")"
cli=$(start_bg "$T/cli" nsenter --net=/run/netns/"$NSB" "$PROGS/tcppeer" echo-client 10.77.0.1 8080)
wait_for_line "$T/cli" '^N 50$' 20 || bail "the client did not get its echoes through haproxy"
progress() { wait_for "[ \"\$(line_field '$T/cli' '^N ' 2)\" -gt $1 ]" 20; }

check "haproxy is chrooted to $T/hroot" eval '[ "$(readlink /proc/$hap/root)" = "$T/hroot" ]'
check "and runs as haproxy" eval '[ "$(stat -c %U /proc/$hap)" = haproxy ]'

check "kup dump --tcp-established of haproxy" \
	kup_in "$NSA" "$T/dump.log" dump -t "$hap" -D "$T/img" --tcp-established ||
	note "$(tail -n 20 "$T/dump.log")"
check "haproxy is gone" wait_gone "$hap"
check "kup restore --tcp-established" \
	kup_in "$NSA" "$T/restore.log" restore -D "$T/img" -d --tcp-established ||
	note "$(tail -n 20 "$T/restore.log")"
track "$hap"
check "haproxy is back inside its root" eval '[ "$(readlink /proc/$hap/root)" = "$T/hroot" ]'
check "as haproxy" eval '[ "$(stat -c %U /proc/$hap)" = haproxy ]'
n=$(line_field "$T/cli" '^N ' 2)
check "the client's count goes on through haproxy (past $n)" progress $((n + 100))
check "the client saw no error" [ "$(lines_count "$T/cli" ERROR)" = 0 ]
check "the echo server saw one connection, never closed" \
	eval '[ "$(lines_count "$T/echo" "^ACCEPT")" = 1 ] && [ "$(lines_count "$T/echo" "CLOSED|ERROR")" = 0 ]'
cli2=$(start_bg "$T/cli2" nsenter --net=/run/netns/"$NSB" "$PROGS/tcppeer" echo-client 10.77.0.1 8080)
check "a new client is proxied" wait_for_line "$T/cli2" '^N 50$' 20
check "its check passes" request_check "$cli" "$T/cli"
