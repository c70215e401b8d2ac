#!/bin/bash
# A TCP client outside the machine keeps its connection across a real kernel
# switch.  The guest has a second NIC whose far end is a network namespace of
# the lab host (lab boot --peer-netns): the client there is a real Linux TCP
# stack, not QEMU's slirp, and it negotiates what Linux does (window
# scaling, timestamps, SACK: checked at both ends with ss -o).  An echo
# service in the guest (a systemd service) is kept by `kup switch --tcp-established` across 6.1.0-47 ->
# 6.1.0-56; the client sends the next counter every 20 ms and reads it back
# (a reset, an end of file or a wrong value is an error).  After the switch
# the same connection carries on, no byte lost, with the options it had.
set -u

export KUP_LAB_NAME=${KUP_LAB_NAME:-switch-peer}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
A=${KUP_LAB_A:-6.1.0-47-amd64}
B=${KUP_LAB_B:-6.1.0-56-amd64}
PROGS=${PROGS:-$top/build/progs}
GP=/usr/local/libexec/kup-tests
NS=kuplab-peer-$$
PORT=7000
CLI_OUT=$(mktemp /tmp/kup-lab-peer.XXXXXX)

[ -x "$PROGS/tcppeer" ] || bail "$PROGS/tcppeer is missing (make progs)"
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
R "mkdir -p $GP" && L cp-in "$PROGS/tcppeer" "$GP/tcppeer" || bail "copy the echo service in"
check "systemctl enable kup-restore.service" 'systemctl enable kup-restore.service 2>&1'
check "kup ppp format /dev/pmem0" 'udevadm settle -t 30; kup ppp format /dev/pmem0 --force'
check "update-initramfs -u -k $B" \
	"update-initramfs -u -k $B >/dev/null 2>&1 && lsinitramfs /boot/initrd.img-$B | grep -qx scripts/init-top/kup"

check "start the echo service (systemd-run) on 10.99.0.2:$PORT" \
	"systemd-run --unit=demo-echo -p StandardOutput=append:/root/echo.out \
		-p StandardError=append:/root/echo.out $GP/tcppeer echo-server 10.99.0.2 $PORT &&
	 for i in \$(seq 100); do grep -q LISTEN /root/echo.out && exit 0; sleep 0.2; done; exit 1"
pid=$(L run "systemctl show -p MainPID --value demo-echo")

# The client, outside the guest
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

# The connection's negotiated options at each end.  ss prints timestamps and
# SACK ("ts", "sack") only with -o (--options): without it a connection that
# has them shows only its window scaling.
pick() { tr ' \t' '\n\n' | grep -E '^(ts|sack|wscale:[0-9]+,[0-9]+)$' | sort | tr '\n' ' '; }
guest_ss() { "$lab" run "ss -tnioH state established '( sport = :$PORT )'" 2>/dev/null; }
peer_ss() { nsenter --net=/run/netns/"$NS" ss -tnioH state established "( dport = :$PORT )"; }
before=$(guest_ss | pick)
pbefore=$(peer_ss | pick)
note "ss -tio in the guest: $(guest_ss | tr -s ' \t\n' ' ')"
note "ss -tio at the peer:  $(peer_ss | tr -s ' \t\n' ' ')"
for o in ts sack wscale; do
	if grep -q "$o" <<<"$before" && grep -q "$o" <<<"$pbefore"; then
		ok "both ends negotiated $o (guest: $before/ peer: $pbefore)"
	else
		not_ok "both ends negotiated $o (guest: $before/ peer: $pbefore)"
	fi
done

R "kup check $B -t $pid 2>&1"
note "$R_OUT"

# ---- every kup process SIGKILLed during a switch's dump of the connection
# (its socket in repair mode, the network lock in place): `kup recover`
# replays the journal, and the client's connection carries on
for round in 1 2; do
	R "kup switch $B -t $pid --tcp-established --no-exec > /root/ks-all-$round.log 2>&1 &
	   for i in \$(seq 3000); do grep -q 'State:.t' /proc/$pid/status && break; sleep 0.02; done;
	   sleep 0.0\$((RANDOM % 10)); pkill -KILL -x kup; sleep 0.3; pkill -KILL -x kup;
	   for i in \$(seq 100); do pgrep -x kup >/dev/null || break; sleep 0.1; done;
	   kup recover 2>&1; echo recover status \$?; cat /root/ks-all-$round.log"
	note "$R_OUT"
	if grep -qE "is in the store and .* is loaded" <<<"$R_OUT"; then
		# the switch ended before the kill came (the dump of this small
		# service is short): what it left is a switch ready to kexec;
		# undo it by hand so that the test goes on, and say so
		note "round $round: the switch had finished before every kup was killed; undone by hand"
		check "round $round: the finished switch is undone (kexec unload, restore from the store)" \
			"kup kexec unload && kup restore --ppp auto -d --tcp-established"
	else
		check "round $round: every kup SIGKILLed during the switch's dump, then kup recover: no kernel loaded, no network lock left" \
			"! kup kexec status >/dev/null && ! nft list tables | grep -q kup && kill -0 $pid &&
			 grep -q 'TracerPid:.0\$' /proc/$pid/status"
	fi
	wait_n 0 1
	nk=$last_n
	if wait_n $((nk + 50)) 120; then ok "round $round: the client's connection carries on (n=$nk -> $last_n)"
	else not_ok "round $round: the client's connection carries on (n=$nk -> ${last_n:-?})"; note "$(tail -n 3 "$CLI_OUT")"; fi
done

# ---- the switch
note "kup switch $B -t $pid --tcp-established"
t0=$(date +%s.%N)
"$lab" run "kup switch $B -t $pid --tcp-established >/root/switch.log 2>&1" >/dev/null 2>&1
if L wait-boot "$B" --timeout 300; then
	ok "the guest came back on $(L run uname -r)"
	note "kup switch to the new kernel answering: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s"
else
	bail "the guest did not come back on $B"
fi
note "$(L run 'cat /root/switch.log')"
check "kup-restore.service ran at boot and succeeded" "systemctl is-active kup-restore.service"
note "$(L run 'journalctl -b -u kup-restore.service --no-pager -o cat | tail -n 8')"
check "the echo service is back with pid $pid" "kill -0 $pid && grep -q tcppeer /proc/$pid/comm"

# TCP's retransmission timer backs off while the machine is away: the
# client's next retransmission may come a minute after the service is back.
wait_n 0 1
n0=$last_n
note "the client had its echoes up to n=$n0 when the guest came back"
if wait_n $((n0 + 100)) 240; then
	ok "the client's connection carries on across the switch (n=$n0 -> $last_n)"
else
	not_ok "the client's connection carries on across the switch (n=$n0 -> ${last_n:-?})"
	note "$(tail -n 5 "$CLI_OUT")"
fi
if grep -q ERROR "$CLI_OUT"; then
	not_ok "the client saw no reset, no end of file, no wrong byte"
	note "$(grep ERROR "$CLI_OUT" | head -n 3)"
else
	ok "the client saw no reset, no end of file, no wrong byte"
fi
kill -0 "$cli" 2>/dev/null && ok "the client process never exited" || not_ok "the client process never exited"
after=$(guest_ss | pick)
pafter=$(peer_ss | pick)
note "ss -tio in the guest after the switch: $(guest_ss | tr -s ' \t\n' ' ')"
note "ss -tio at the peer after the switch:  $(peer_ss | tr -s ' \t\n' ' ')"
if [ -n "$after" ] && [ "$after" = "$before" ] && [ "$pafter" = "$pbefore" ]; then
	ok "the restored connection has the options negotiated before at both ends (guest: $after/ peer: $pafter)"
else
	not_ok "the restored connection has the options negotiated before at both ends (guest: $before-> $after/ peer: $pbefore-> $pafter)"
fi
trap - EXIT
cleanup
trap '_rc=$?; not_ok "the script ended before its last check (status $_rc)"; finish' EXIT
finish
