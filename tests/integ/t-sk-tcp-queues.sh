#!/bin/bash
# Megabytes queued in both directions at dump time, over IPv6: two peers
# write a pattern until their connection is full (neither reads), both are
# dumped and restored, then both read: every byte arrives intact and in
# order, and the writes go on to the end.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
require_root
net_setup

mb=16
srv=$(start_bg "$T/srv" nsenter --net=/run/netns/"$NSA" "$PROGS/tcppeer" bulk-server fd77::1 7002 $mb)
wait_for_line "$T/srv" '^LISTEN' || bail "server did not start"
cli=$(start_bg "$T/cli" nsenter --net=/run/netns/"$NSB" "$PROGS/tcppeer" bulk-client fd77::1 7002 $mb)
wait_for_line "$T/srv" '^FULL' 30 || bail "server did not fill its connection"
wait_for_line "$T/cli" '^FULL' 30 || bail "client did not fill its connection"

# queued NS: receive and send queue bytes of the connection on port 7002
queued() { in_ns "$1" ss -Htn "( sport = :7002 or dport = :7002 )" | awk '{ print $2, $3 }'; }
read -r ra sa <<< "$(queued "$NSA")"
read -r rb sb <<< "$(queued "$NSB")"
note "server: recv-q $ra send-q $sa; client: recv-q $rb send-q $sb"
check "more than a megabyte queued each way" \
	eval '[ $((ra + sb)) -gt 1048576 ] && [ $((rb + sa)) -gt 1048576 ]'

check "kup dump --tcp-established of the server" kup_run "$T/d1" dump -t "$srv" -D "$T/img1" --tcp-established
check "kup dump --tcp-established of the client" kup_run "$T/d2" dump -t "$cli" -D "$T/img2" --tcp-established
check "both are gone" eval 'wait_gone $srv && wait_gone $cli'
check "restore the server" kup_in "$NSA" "$T/r1" restore -D "$T/img1" -d --tcp-established
track "$srv"
check "restore the client" kup_in "$NSB" "$T/r2" restore -D "$T/img2" -d --tcp-established
track "$cli"
read -r ra2 sa2 <<< "$(queued "$NSA")"
read -r rb2 sb2 <<< "$(queued "$NSB")"
note "after restore: server: recv-q $ra2 send-q $sa2; client: recv-q $rb2 send-q $sb2"
# Once both run, the stacks go on moving bytes from a send queue to the peer's
# receive queue: what is conserved is the sum in each direction.  It can
# only grow: bytes the receiver had queued but whose ACK the lock stopped are
# still in the sender's queue too (the receiver drops them when they are
# sent again); the pattern check below proves nothing was lost or doubled.
check "the queues came back (client->server $((sb2 + ra2)) >= $((sb + ra)) bytes, server->client $((sa2 + rb2)) >= $((sa + rb)))" \
	eval '[ $((sb2 + ra2)) -ge $((sb + ra)) ] && [ $((sa2 + rb2)) -ge $((sa + rb)) ]'
kill -USR2 "$srv" "$cli"
check "the server read all $mb MiB intact and wrote its own" wait_for_line "$T/srv" '^DONE OK' 60
check "the client read all $mb MiB intact and wrote its own" wait_for_line "$T/cli" '^DONE OK' 60
check "no error on either side" [ "$(cat "$T/srv" "$T/cli" | grep -c ERROR)" = 0 ]
check "no network lock left" eval '[ "$(kup_tables "$NSA")" = 0 ] && [ "$(kup_tables "$NSB")" = 0 ]'
