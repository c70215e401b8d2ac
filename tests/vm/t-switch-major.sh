#!/bin/bash
# `kup switch` from Debian's 6.1 kernel to the new major versions an admin
# moves to: bookworm-backports' 6.12 and trixie-backports' 7.x (and back to
# 6.1).  One service tree, started by systemd with low pids (the kup hold in
# each new kernel's initrd keeps them): an echo service on the guest's peer
# NIC and, its child, a counter holding 16 MiB.  Its client is a real Linux
# TCP stack outside the guest (lab boot --peer-netns): it sends the next
# number every 20 ms and reads it back, so bytes flow both ways all the time.
# Across each switch, with --tcp-established: the same pids, the count goes
# on with no gap, the client's connection carries on with no reset, and both
# ends keep what they negotiated (window scaling, timestamps, SACK).
set -u

export KUP_LAB_NAME=${KUP_LAB_NAME:-switch-major}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
A=${KUP_LAB_A:-6.1.0-56-amd64}
# the kernels switched to, one after the other
KS=${KUP_LAB_MAJORS:-6.12.95+deb12-amd64 7.3.4+deb13-amd64 $A}
PROGS=${PROGS:-$top/build/progs}
GP=/usr/local/libexec/kup-tests
OUT=/root/major-counter.out
NS=kuplab-major-$$
PORT=7001
CLI_OUT=$(mktemp /tmp/kup-lab-major.XXXXXX)

for p in tcppeer counter tcpinfo; do [ -x "$PROGS/$p" ] || bail "$PROGS/$p is missing (make progs)"; done
cleanup() {
	[ -n "${cli:-}" ] && kill "$cli" 2>/dev/null
	"$lab" stop >/dev/null 2>&1
	ip netns del "$NS" 2>/dev/null
	rm -f "$CLI_OUT"
}
ip netns add "$NS" || bail "cannot create the network namespace $NS"
trap '_rc=$?; cleanup; not_ok "the script ended before its last check (status $_rc)"; finish' EXIT

L build || bail "lab build"
"$lab" stop >/dev/null 2>&1
L boot "$A" --peer-netns "$NS" || bail "boot $A with the peer network"
ok "booted $A with a NIC into the host's namespace $NS"
R 'command -v kup' || bail "kup is not installed in the guest (tests/vm/run-lab-tests.sh installs it)"
check "the guest's peer NIC has 10.99.0.2" \
	'for i in $(seq 50); do ip -4 addr show | grep -q "inet 10.99.0.2/" && exit 0; sleep 0.2; done; ip addr; exit 1'
R "mkdir -p $GP" && L cp-in "$PROGS/tcppeer" "$GP/tcppeer" && L cp-in "$PROGS/counter" "$GP/counter" &&
	L cp-in "$PROGS/tcpinfo" "$GP/tcpinfo" || bail "copy the service's programs in"
check "systemctl enable kup-restore.service" 'systemctl enable kup-restore.service 2>&1'
check "kup ppp format /dev/pmem0" 'udevadm settle -t 30; kup ppp format /dev/pmem0 --force'
# (in parallel: mkinitramfs takes a minute or more under TCG)
R "for k in $(echo $KS | tr ' ' '\n' | sort -u | tr '\n' ' '); do
	update-initramfs -u -k \$k >/tmp/uinit-\$k.log 2>&1 & done; wait"
for k in $(echo $KS | tr ' ' '\n' | sort -u); do
	check "update-initramfs -u -k $k: kup's hook and the pmem drivers in its initrd" \
		"lsinitramfs /boot/initrd.img-$k > /tmp/l &&
		 grep -qx scripts/init-top/kup /tmp/l && grep -qx usr/sbin/kup /tmp/l &&
		 grep -q '/nd_pmem\\.ko' /tmp/l && grep -q '/nd_e820\\.ko' /tmp/l || { cat /tmp/uinit-$k.log; exit 1; }"
done

# The service: the echo server is the tree's root, the counter its child
# (sh starts it, then becomes the server).  Low pids, as a service started at
# boot has: the new boot would hand them out early without the kup hold.
check "start the service (systemd-run) on 10.99.0.2:$PORT, its pids above 150" \
	"echo 150 > /proc/sys/kernel/ns_last_pid;
	 systemd-run --unit=demo-major -p StandardOutput=append:/root/echo.out \
		-p StandardError=append:/root/echo.out \
		sh -c 'exec >>$OUT 2>&1; $GP/counter -m 16 -i 200 & exec $GP/tcppeer echo-server 10.99.0.2 $PORT >>/root/echo.out 2>&1' &&
	 for i in \$(seq 100); do grep -q LISTEN /root/echo.out && grep -q '^C 3 ' $OUT && exit 0; sleep 0.2; done; exit 1"
pid=$(L run "systemctl show -p MainPID --value demo-major")
cpid=$(L run "pgrep -P $pid -x counter")
if [ -n "$pid" ] && [ -n "$cpid" ]; then ok "the tree: echo service $pid, counter $cpid"
else bail "the tree: echo service ${pid:-?}, counter ${cpid:-?}"; fi

cli=$(setsid nsenter --net=/run/netns/"$NS" "$PROGS/tcppeer" echo-client 10.99.0.2 "$PORT" \
	>"$CLI_OUT" 2>&1 < /dev/null & echo $!)
wait_n() {	# wait_n VALUE SECONDS: the client has echoed past VALUE
	local end=$(($(date +%s) + $2))
	while [ "$(date +%s)" -lt "$end" ]; do
		last_n=$(awk '$1 == "N" { v = $2 } END { print v + 0 }' "$CLI_OUT")
		[ "$last_n" -gt "$1" ] && return 0
		grep -q ERROR "$CLI_OUT" && return 1
		kill -0 "$cli" 2>/dev/null || return 1
		sleep 0.5
	done
	return 1
}
if wait_n 100 60; then ok "the client outside the guest echoes through the service (n=$last_n)"
else bail "the client does not get its echoes: $(tail -n 3 "$CLI_OUT")"; fi

# The connection's TCP options at each end (ss prints ts and sack only with
# -o), and the peer's send/receive state.
pick() { tr ' \t' '\n\n' | grep -E '^(ts|sack|wscale:[0-9]+,[0-9]+)$' | sort | tr '\n' ' '; }
guest_ss() { "$lab" run "ss -tnioH state established '( sport = :$PORT )'" 2>/dev/null; }
peer_ss() { nsenter --net=/run/netns/"$NS" ss -tnioH state established "( dport = :$PORT )"; }
field() { tr ' \t' '\n\n' | sed -n "s/^$1:\\([0-9]*\\).*/\\1/p" | head -n1; }
# ... and every TCP_INFO option bit at each end (usec_ts included: ss does
# not show it), the same before and after each switch
guest_ti() { "$lab" run "$GP/tcpinfo $pid" 2>/dev/null | cut -d' ' -f3-; }
peer_ti() { "$PROGS/tcpinfo" "$cli" | cut -d' ' -f3-; }
g0=$(guest_ss | pick)
p0=$(peer_ss | pick)
gt0=$(guest_ti)
pt0=$(peer_ti)
note "TCP_INFO: guest: $gt0 / peer: $pt0"
note "guest: $(guest_ss | tr -s ' \t\n' ' ')"
note "peer:  $(peer_ss | tr -s ' \t\n' ' ')"
for o in ts sack wscale; do
	if grep -q "$o" <<<"$g0" && grep -q "$o" <<<"$p0"; then
		ok "both ends negotiated $o (guest: $g0/ peer: $p0)"
	else
		not_ok "both ends negotiated $o (guest: $g0/ peer: $p0)"
	fi
done

cur=$A
for k in $KS; do
	R "kup check $k -t $pid"
	rc=$?
	note "$R_OUT"
	if [ $rc = 0 ] && grep -q "checks: 0 failed" <<<"$R_OUT"; then
		ok "kup check $k -t $pid: every check passes"
	else
		not_ok "kup check $k -t $pid: every check passes"
	fi
	last=$(L run "awk '\$1 == \"C\" { v = \$2 } END { print v }' $OUT")
	packed=$(peer_ss | field bytes_acked)
	prcvd=$(peer_ss | field bytes_received)
	note "kup switch $k -t $pid --tcp-established ($cur -> $k)"
	t0=$(date +%s.%N)
	"$lab" run "kup switch $k -t $pid --tcp-established >/root/switch.log 2>&1" >/dev/null 2>&1
	if L wait-boot "$k" --timeout 400; then
		ok "$cur -> $k: the guest came back on $(L run uname -r)"
		note "kup switch to the new kernel answering: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s"
	else
		bail "$cur -> $k: the guest did not come back on $k"
	fi
	note "$(L run 'cat /root/switch.log')"
	check "$k: kup-restore.service ran at boot and succeeded" "systemctl is-active kup-restore.service"
	note "$(L run 'journalctl -b -u kup-restore.service --no-pager -o cat | tail -n 8')"
	check "$k: kup hold in the initramfs held the tree's pids from the start of the boot" \
		"dmesg | grep -q 'kup hold: holding the PIDs of the tree of pid $pid: held \\([0-9]*\\) of \\1'"
	check "$k: the echo service is back with pid $pid, the counter with $cpid" \
		"grep -q tcppeer /proc/$pid/comm && grep -q counter /proc/$cpid/comm &&
		 [ \"\$(awk '{ print \$4 }' /proc/$cpid/stat)\" = $pid ]"
	check "$k: the count goes on from $last with no gap or repeat" \
		"for i in \$(seq 100); do grep -q '^C $((last + 5)) ' $OUT && break; sleep 0.2; done;
		 grep -q '^C $((last + 5)) ' $OUT &&
		 awk -v pid=$cpid '\$1 != \"C\" { next } \$2 != n { print \"line \" NR \": \" \$2 \" want \" n; exit 1 }
			\$3 != pid { exit 1 } { n++ }' $OUT"
	# TCP's retransmission timer backs off while the machine is away: the
	# client's next retransmission may come a minute or two later
	wait_n 0 1
	n0=$last_n
	if wait_n $((n0 + 100)) 240; then
		ok "$k: the client's connection carries on (n=$n0 -> $last_n)"
	else
		not_ok "$k: the client's connection carries on (n=$n0 -> ${last_n:-?})"
		note "$(tail -n 5 "$CLI_OUT")"
	fi
	if grep -q ERROR "$CLI_OUT" || ! kill -0 "$cli" 2>/dev/null; then
		not_ok "$k: the client saw no reset, no end of file, no wrong byte, and runs"
		note "$(grep ERROR "$CLI_OUT" | head -n 3)"
	else
		ok "$k: the client saw no reset, no end of file, no wrong byte, and runs"
	fi
	g1=$(guest_ss | pick)
	p1=$(peer_ss | pick)
	note "guest: $(guest_ss | tr -s ' \t\n' ' ')"
	note "peer:  $(peer_ss | tr -s ' \t\n' ' ')"
	if [ "$g1" = "$g0" ] && [ "$p1" = "$p0" ]; then
		ok "$k: both ends keep the options negotiated (guest: $g1/ peer: $p1)"
	else
		not_ok "$k: both ends keep the options negotiated (guest: $g0-> $g1/ peer: $p0-> $p1)"
	fi
	gt1=$(guest_ti)
	pt1=$(peer_ti)
	if [ -n "$gt1" ] && [ "$gt1" = "$gt0" ] && [ "$pt1" = "$pt0" ]; then
		ok "$k: TCP_INFO's options are the same at both ends (guest: $gt1 / peer: $pt1)"
	else
		not_ok "$k: TCP_INFO's options are the same at both ends (guest: $gt0 -> $gt1 / peer: $pt0 -> $pt1)"
	fi
	pa=$(peer_ss | field bytes_acked)
	pr=$(peer_ss | field bytes_received)
	if [ "${pa:-0}" -gt "${packed:-0}" ] && [ "${pr:-0}" -gt "${prcvd:-0}" ]; then
		ok "$k: the peer's send and receive go on (bytes_acked $packed -> $pa, bytes_received $prcvd -> $pr)"
	else
		not_ok "$k: the peer's send and receive go on (bytes_acked ${packed:-?} -> ${pa:-?}, bytes_received ${prcvd:-?} -> ${pr:-?})"
	fi
	cur=$k
done
check "no ERROR line from the counter" "! grep ERROR $OUT"
trap - EXIT
cleanup
trap '_rc=$?; not_ok "the script ended before its last check (status $_rc)"; finish' EXIT
finish
