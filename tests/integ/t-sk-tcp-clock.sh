#!/bin/bash
# The timestamp clock of a restored TCP connection (TCP_TIMESTAMP).  Since
# Linux 6.7 the low bit of the value set at restore turns microsecond
# timestamps on (TCPI_OPT_USEC_TS); on 6.1 that bit is only part of the
# millisecond clock, odd half of the time.  A connection dumped on 6.1 and
# restored on 6.12 or 7.x must keep millisecond timestamps, and one that had
# microsecond timestamps must keep them.  The images of a live client are
# edited as a 6.1 kernel's dump would have them (an odd clock, no usec_ts),
# then as a 6.7+ one with microsecond timestamps; the restored connection
# has the timestamps it had in the image, and the count goes on.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
require_root
net_setup
edit() { python3 "$(dirname "$0")/../imgedit.py" "$@"; }
# the client's one connection in files.img: file entry of kind FILE_INET_SK
# (14), its sk (40), the sk's tcp (20): timestamp (12), usec_ts (460)
TCP='1{2=14}.40.20'

srv=$(start_bg "$T/srv" nsenter --net=/run/netns/"$NSA" "$PROGS/tcppeer" echo-server 10.77.0.1 7003)
wait_for_line "$T/srv" '^LISTEN' || bail "server did not start"
cli=$(start_bg "$T/cli" nsenter --net=/run/netns/"$NSB" "$PROGS/tcppeer" echo-client 10.77.0.1 7003)
wait_for_line "$T/cli" '^N 50$' || bail "client did not start"
progress() { wait_for "[ \"\$(line_field '$T/cli' '^N ' 2)\" -gt $1 ]" 10; }
opts() { "$PROGS/tcpinfo" "$cli" | awk '{ print $4 }'; }

o=$(opts)
note "the client's connection: $o"
check "the connection has timestamps, SACK, window scaling and millisecond timestamps" \
	eval "[[ ,$o, == *,ts,* && ,$o, == *,sack,* && ,$o, == *,wscale,* && ,$o, != *,usec_ts,* ]]"

# ---- as dumped by a 6.1 kernel: the clock odd, no microsecond timestamps
check "kup dump --tcp-established of the client" \
	kup_run "$T/d1" dump -t "$cli" -D "$T/img1" --tcp-established
wait_gone "$cli"
ts=$(edit "$T/img1/files.img" "get:$TCP.12")
note "dumped clock: $ts"
check "the image's clock made odd, usec_ts off (a 6.1 dump)" \
	edit "$T/img1/files.img" "$TCP.12=$((ts | 1))" "$TCP.460=0"
check "kup restore of the client" kup_in "$NSB" "$T/r1" restore -D "$T/img1" -d --tcp-established
track "$cli"
o=$(opts)
note "the restored connection: $o"
check "... keeps millisecond timestamps (no usec_ts), with ts, sack, wscale" \
	eval "[[ ,$o, == *,ts,*sack,*wscale,* && ,$o, != *,usec_ts,* ]]"
n=$(line_field "$T/cli" '^N ' 2)
check "... and the count goes on (past $n)" progress $((n + 50))

# ---- as dumped by a 6.7+ kernel from a connection with microsecond timestamps
check "kup dump --tcp-established of the client again" \
	kup_run "$T/d2" dump -t "$cli" -D "$T/img2" --tcp-established
wait_gone "$cli"
check "the image says microsecond timestamps" edit "$T/img2/files.img" "$TCP.460=1"
check "kup restore of the client" kup_in "$NSB" "$T/r2" restore -D "$T/img2" -d --tcp-established
track "$cli"
o=$(opts)
note "the restored connection: $o"
check "... has microsecond timestamps (usec_ts)" eval "[[ ,$o, == *,usec_ts,* ]]"
n=$(line_field "$T/cli" '^N ' 2)
check "... and the count goes on (past $n)" progress $((n + 50))
check "a dump of it says so in its image" \
	kup_run "$T/d3" dump -t "$cli" -D "$T/img3" --tcp-established --leave-running
check "... usec_ts = 1" [ "$(edit "$T/img3/files.img" "get:$TCP.460")" = 1 ]
check "... and its clock is odd" [ $(( $(edit "$T/img3/files.img" "get:$TCP.12") & 1 )) = 1 ]
n=$(line_field "$T/cli" '^N ' 2)
check "the client goes on after the dump that left it running (past $n)" progress $((n + 50))
check "the client saw no error" [ "$(lines_count "$T/cli" ERROR)" = 0 ]
check "the server saw no connection closed" [ "$(lines_count "$T/srv" 'CLOSED|ERROR')" = 0 ]
