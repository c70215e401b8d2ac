#!/bin/bash
# A unix stream server, path-bound then abstract, with one connection
# accepted inside its tree and one not accepted yet at dump time: after the
# restore the accepted connection keeps working, the pending one is accepted
# when the server gets to it, a new client started after the restore is
# served, and the socket file keeps its mode and owner.
. "$(dirname "$0")/../lib.sh"
require_root

n=0
for addr in "$T/srv.sock" "@kup-test-$$-srv"; do
	n=$((n + 1))
	note "---- $addr"
	out=$T/srv$n.out
	pid=$(start_bg "$out" "$PROGS/unixserver" -a "$addr")
	wait_for_line "$out" '^C2 CONNECTED' || bail "unixserver -a $addr did not start"
	wait_for_line "$out" '^P1 5$' || bail "unixserver: child 1 does not ping"
	if [[ $addr == /* ]]; then
		chown 65534:65534 "$addr"
		before=$(stat -c '%a %u %g %F' "$addr")
	fi
	# sockets of the server named $addr (the listener and the accepted one)
	named() { ss -xap 2>/dev/null | grep "pid=$pid," | grep -cF -- "$addr "; }
	names_before=$(named)
	dump_and_restore "$pid" "$T/img$n" || exit 1
	check "the server's sockets named $addr: $names_before before, as many after" \
		eval '[ "$names_before" -ge 2 ] && [ "$(named)" = "$names_before" ]'
	p1=$(lines_count "$out" '^P1 ')
	check "the accepted connection keeps working (P1 lines after $p1)" \
		wait_for "[ \$(lines_count '$out' '^P1 ') -gt $((p1 + 10)) ]" 10
	check "the pending connection is still waiting" [ "$(lines_count "$out" '^C2 HELLO')" = 0 ]
	check "the server starts accepting" request_check "$pid" "$out"
	check "the pending connection is accepted and works" wait_for_line "$out" '^P2 5$' 10
	check "a new client is served" eval "timeout 10 '$PROGS/unixserver' -c '$addr' | grep -q '^CLIENT OK'"
	check "the server accepted exactly 3 connections" wait_for_line "$out" '^ACCEPTED 3$' 5
	if [[ $addr == /* ]]; then
		check "the socket file keeps its mode and owner ($before)" \
			[ "$(stat -c '%a %u %g %F' "$addr")" = "$before" ]
	fi
	check "no ERROR line" [ "$(lines_count "$out" ERROR)" = 0 ]
	kill_tree "$pid"
	wait_gone "$pid"
done
