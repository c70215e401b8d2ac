#!/bin/bash
# A unix stream server, path-bound then abstract, with one connection
# accepted inside its tree and one not accepted yet at dump time: after the
# restore the accepted connection keeps working, the pending one is accepted
# when the server gets to it, a new client started after the restore is
# served, and the socket file keeps its mode and owner.
. "$(dirname "$0")/../lib.sh"
require_root

# diag PID OUT: what the tree is doing, for a failed check: the lines of
# OUT other than the pings (ERROR and CLOSED lines included), and for each
# process its state, where it sleeps, its syscall, its signal masks, its
# fds (with their status flags); then the unix sockets of the tree and the
# end of the restore log.  Once per server.
diag() {
	local p f
	[ -n "$diag_done" ] && return 0
	diag_done=1
	note "lines of $2 other than P1/P2 (of $(wc -l < "$2")):"
	grep -vE '^P[12] [0-9]+$' "$2" | tail -n 40 | sed 's/^/#   /'
	for p in $(tree_pids "$1"); do
		note "pid $p ($(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null)): state $(proc_state "$p")," \
			"wchan $(cat /proc/$p/wchan 2>/dev/null), syscall $(cat /proc/$p/syscall 2>/dev/null)"
		note "  $(grep -E '^(SigPnd|ShdPnd|SigBlk)' /proc/$p/status 2>/dev/null | tr '\n\t' '  ')"
		cat /proc/$p/stack 2>/dev/null | sed 's/^/#   /'
		for f in /proc/$p/fd/*; do
			note "  fd ${f##*/} -> $(readlink "$f"), flags" \
				"$(sed -n 's/^flags:[[:space:]]*//p' "/proc/$p/fdinfo/${f##*/}" 2>/dev/null)"
		done
	done
	ss -xap 2>/dev/null | grep -E "pid=($(tree_pids "$1" | sed 's/ *$//; s/ /|/g'))," |
		sed 's/^/# /'
	note "restore log:"
	tail -n 10 "$T/restore.log" 2>/dev/null | sed 's/^/#   /'
}

n=0
for addr in "$T/srv.sock" "@kup-test-$$-srv"; do
	n=$((n + 1)) diag_done=
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
		wait_for "[ \$(lines_count '$out' '^P1 ') -gt $((p1 + 10)) ]" 10 || diag "$pid" "$out"
	check "the pending connection is still waiting" [ "$(lines_count "$out" '^C2 HELLO')" = 0 ]
	check "the server starts accepting" request_check "$pid" "$out"
	check "the pending connection is accepted and works" wait_for_line "$out" '^P2 5$' 10 ||
		diag "$pid" "$out"
	check "a new client is served" eval "timeout 10 '$PROGS/unixserver' -c '$addr' > '$T/client$n.out' 2>&1;
		cat '$T/client$n.out'; grep -q '^CLIENT OK' '$T/client$n.out'"
	check "the server accepted exactly 3 connections" wait_for_line "$out" '^ACCEPTED 3$' 5
	if [[ $addr == /* ]]; then
		check "the socket file keeps its mode and owner ($before)" \
			[ "$(stat -c '%a %u %g %F' "$addr")" = "$before" ]
	fi
	check "no ERROR line" [ "$(lines_count "$out" ERROR)" = 0 ] || diag "$pid" "$out"
	kill_tree "$pid"
	wait_gone "$pid"
done
