#!/bin/bash
# The demo (make demo): a maintenance window across a major kernel upgrade
# with the clients outside the machine, in the QEMU lab.
#
# In the guest, on Debian's 6.1 kernel, each service started by its own
# Debian unit, sandboxed as Debian ships it:
#  - openvpn-server@demo.service: Debian's openvpn as a TLS server over UDP
#    (a CA, server and client certificates made here, tests/lib-pki.sh);
#  - kup-demo-echo.service: an echo service on the VPN's address (10.8.0.1);
#  - ssh.service: Debian's sshd (on port 2222: the lab's own command channel
#    has port 22), with an interactive `ssh -tt` session printing a counter;
#  - redis-server.service with 100000 keys (Debian's unit, PrivateUsers=
#    and all: kup keeps its user namespace).
# Outside the guest, in a network namespace of the lab host behind the
# guest's second NIC (a real Linux TCP stack), the clients: Debian's openvpn
# as the VPN client, a ping and a TCP echo stream through the tunnel, the
# ssh session, redis's client.  `kup switch` to a newer major version
# (6.12 from bookworm-backports by default) keeps all of these units in one
# clean switch (KUP_UNITS in /etc/default/kup).  The demo passes only if
# every client carries on over the same connection (no reset, no end of
# file, no wrong answer, no VPN restart), and each unit is back with its
# main pid.  It prints what each client saw (its longest wait for an
# answer, in ms, measured by the client) and where the time went (kup
# status: freeze and dump, the shutdown and kexec, the boot to the restore,
# the restore).
#
#   KUP_LAB_A / KUP_LAB_B   the kernels (6.1.0-56-amd64 -> 6.12.95+deb12-amd64)
#   DEMO_REDIS=no           leave redis out
#   DEMO_SUMMARY=FILE       write the figures there too (bench/lab-bench.sh)
set -u

export KUP_LAB_NAME=${KUP_LAB_NAME:-demo}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$top/tests/lib-pki.sh"
A=${KUP_LAB_A:-6.1.0-56-amd64}
B=${KUP_LAB_B:-6.12.95+deb12-amd64}
PROGS=${PROGS:-$top/build/progs}
GP=/usr/local/libexec/kup-tests
DC=$here/demo-client.py
NS=kupdemo-$$
VPN=openvpn-server@demo.service
ECHO=kup-demo-echo.service
SSH=ssh.service
REDIS=redis-server.service
KEYS=100000
W=$(mktemp -d /tmp/kup-demo.XXXXXX)
clients=()

[ -x "$PROGS/tcppeer" ] || bail "$PROGS/tcppeer is missing (make progs)"
for c in openvpn openssl ssh ping python3; do
	command -v $c >/dev/null || bail "the lab host needs $c (tests/install-deps.sh)"
done
cleanup() {
	local p
	for p in "${clients[@]}"; do kill -- -"$p" 2>/dev/null; done
	"$lab" stop >/dev/null 2>&1
	ip netns del "$NS" 2>/dev/null
	rm -rf "$W"
}
ip netns add "$NS" || bail "cannot create the network namespace $NS"
# The clients' TCP stack gives up on a connection after about 15 minutes of
# retransmissions (tcp_retries2=15); a switch of this emulated guest on a
# busy 2-core host has taken 10 to 20 minutes.  On hardware it is seconds.
nsenter --net=/run/netns/"$NS" sysctl -qw net.ipv4.tcp_retries2=30 ||
	bail "cannot set tcp_retries2 in $NS"
trap '_rc=$?; cleanup; not_ok "the script ended before its last check (status $_rc)"; finish' EXIT
# outside NAME CMD...: a client in the peer namespace, in a session of its
# own (its group is killed at the end); output in $W/NAME.log
outside() {
	local name=$1
	shift
	setsid nsenter --net=/run/netns/"$NS" "$@" >"$W/$name.log" 2>&1 </dev/null &
	clients+=($!)
}
# answers NAME: how many answers client NAME has had
answers() { grep -c '^N ' "$W/$1.log" 2>/dev/null; }
# goes_on NAME MORE SECONDS: client NAME gets MORE answers within SECONDS
goes_on() {
	local n0 end=$(($(date +%s) + $3))
	n0=$(answers "$1")
	while [ "$(date +%s)" -lt "$end" ]; do
		[ "$(answers "$1")" -ge $((n0 + $2)) ] && return 0
		grep -q '^ERROR' "$W/$1.log" && return 1
		sleep 0.5
	done
	return 1
}
# outage NAME: the client's longest wait for an answer, in ms
outage() { awk '$1 == "GAP" && $2 > m { m = $2 } END { print m + 0 }' "$W/$1.log"; }
main_pid() { L run "systemctl show -p MainPID --value $1"; }

L build || bail "lab build"
"$lab" stop >/dev/null 2>&1
L boot "$A" --peer-netns "$NS" --timeout 900 || bail "boot $A with the peer network"
ok "booted $A with a NIC into the host's namespace $NS"
R 'command -v kup && command -v openvpn && command -v redis-server' ||
	bail "kup, openvpn or redis-server is missing in the guest ($R_OUT)"
check "the guest's peer NIC has 10.99.0.2" \
	'for i in $(seq 50); do ip -4 addr show | grep -q "inet 10.99.0.2/" && exit 0; sleep 0.2; done; ip addr; exit 1'
R "mkdir -p $GP" && L cp-in "$PROGS/tcppeer" "$GP/tcppeer" || bail "copy the echo service in"
# the new kernel's initrd with kup's hook, made while the services are set
# up (a few minutes under TCG); it carries /etc/default/kup (the hold's
# timeout; KUP_UNITS is read by kup switch, on the root)
check "update-initramfs -u -k $B started (kup's hook)" \
	"printf 'KUP_HOLD_TIMEOUT=900\n' > /etc/default/kup &&
	 { nohup update-initramfs -u -k $B >/root/uinit.log 2>&1; echo \$? > /root/uinit.rc; } >/dev/null 2>&1 </dev/null &"

# ---- the services, each by its Debian unit
make_pki "$W" >"$W/pki.log" 2>&1 || bail "make the certificates: $(tail -n 3 "$W/pki.log")"
R "mkdir -p /etc/openvpn/server/demo" || bail "mkdir /etc/openvpn/server/demo"
for f in ca.crt server.crt server.key; do
	L cp-in "$W/$f" /etc/openvpn/server/demo/ || bail "copy $f in"
done
# keepalive: the server pings every 10 s; a client restarts its session
# after 30 minutes without a packet (the usual 60/120 s is shorter than a
# switch of this TCG-emulated guest takes on a loaded host)
check "$VPN: Debian's unit, a TLS server over UDP on 10.8.0.1/24 (tun0)" "cat > /etc/openvpn/server/demo.conf <<'CONF'
dev tun0
topology subnet
server 10.8.0.0 255.255.255.0
proto udp
port 1194
ca demo/ca.crt
cert demo/server.crt
key demo/server.key
dh none
keepalive 10 1800
persist-key
persist-tun
verb 3
CONF
chmod 600 /etc/openvpn/server/demo/server.key &&
systemctl start $VPN &&
for i in \$(seq 150); do ip -4 addr show tun0 2>/dev/null | grep -q 'inet 10.8.0.1/24' && exit 0; sleep 0.2; done;
systemctl status --no-pager $VPN; exit 1"
check "$ECHO: an echo service on the VPN (10.8.0.1:7100, after $VPN)" "cat > /etc/systemd/system/$ECHO <<UNIT
[Unit]
Description=kup demo: an echo service on the VPN
After=$VPN
[Service]
ExecStart=$GP/tcppeer echo-server 10.8.0.1 7100
UNIT
systemctl daemon-reload && systemctl start $ECHO &&
for i in \$(seq 100); do ss -ltn | grep -q '10.8.0.1:7100' && exit 0; sleep 0.2; done; exit 1"
# The lab masks Debian's ssh.service (its channel is a per-connection sshd
# on port 22): unmasked, on port 2222 by Debian's own SSHD_OPTS.
check "$SSH: Debian's sshd on port 2222" \
	"systemctl unmask $SSH >/dev/null 2>&1; echo 'SSHD_OPTS=\"-p 2222\"' > /etc/default/ssh &&
	 systemctl start $SSH && for i in \$(seq 100); do ss -ltn | grep -q ':2222 ' && exit 0; sleep 0.2; done; exit 1"
units="$VPN $ECHO $SSH"
redis=no
if [ "${DEMO_REDIS:-yes}" != no ]; then
	check "$REDIS: Debian's unit, listening on 10.99.0.2:6379 too (/etc/redis/redis.conf)" \
		"sed -i -e 's/^bind .*/bind 127.0.0.1 10.99.0.2/' -e 's/^protected-mode .*/protected-mode no/' /etc/redis/redis.conf &&
		 systemctl start $REDIS && for i in \$(seq 100); do ss -ltn | grep -q '10.99.0.2:6379' && exit 0; sleep 0.2; done; exit 1"
	# a dump that leaves it running: kup must keep redis as Debian ships it
	# (PrivateUsers=), or the demo fails here, naming kup's reason
	check "$REDIS: kup dump --leave-running keeps it (its sandbox, PrivateUsers= and all)" \
		"kup dump --unit $REDIS -D /root/redis-dry --leave-running 2>&1; rc=\$?; rm -rf /root/redis-dry; exit \$rc"
	redis=yes
	units="$units $REDIS"
fi
check "/etc/default/kup: KUP_UNITS=\"$units\", TCP connections kept" \
	"printf 'KUP_UNITS=\"%s\"\nKUP_TCP_ESTABLISHED=yes\nKUP_HOLD_TIMEOUT=900\n' '$units' > /etc/default/kup"
check "systemctl enable kup-restore.service" 'systemctl enable kup-restore.service 2>&1'
check "kup ppp format /dev/pmem0" 'udevadm settle -t 30; kup ppp format /dev/pmem0 --force'
check "update-initramfs -u -k $B: kup's hook and its configuration in the new kernel's initrd" \
	"for i in \$(seq 1700); do [ -e /root/uinit.rc ] && break; sleep 0.5; done;
	 [ \"\$(cat /root/uinit.rc)\" = 0 ] && lsinitramfs /boot/initrd.img-$B > /tmp/l &&
	 grep -qx scripts/init-top/kup /tmp/l && grep -qx etc/default/kup /tmp/l || { tail /root/uinit.log; exit 1; }"

# ---- the clients, outside the guest
outside ovpn openvpn --client --dev tun0 --proto udp --remote 10.99.0.2 1194 --cd "$W" \
	--ca ca.crt --cert client.crt --key client.key --remote-cert-tls server --nobind \
	--persist-key --persist-tun --verb 3
end=$(($(date +%s) + 120))
until grep -q 'Initialization Sequence Completed' "$W/ovpn.log"; do
	[ "$(date +%s)" -lt "$end" ] || bail "the VPN client outside does not connect: $(tail -n 5 "$W/ovpn.log")"
	sleep 0.5
done
ok "the VPN client outside the guest is connected ($(grep -m1 -oE 'ifconfig 10\.8\.0\.[0-9]+' "$W/ovpn.log"))"
outside ping sh -c "stdbuf -oL ping -n -i 0.2 10.8.0.1 | grep --line-buffered 'bytes from' | '$DC' lines"
outside echo "$DC" echo 10.8.0.1 7100
G=$(cat "$("$lab" state)/guest")
outside ssh sh -c "sleep 100000 | ssh -tt -F /dev/null -i '$G/id_ed25519' -p 2222 -o IdentitiesOnly=yes \
	-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
	root@10.99.0.2 'i=0; while :; do echo \"S \$i\"; i=\$((i + 1)); sleep 0.2; done' | '$DC' lines --seq"
cnames="ping echo ssh"
if [ "$redis" = yes ]; then
	R "true"
	out=$(nsenter --net=/run/netns/"$NS" "$DC" redis-keys 10.99.0.2 6379 $KEYS set 2>&1)
	grep -q "KEYS $KEYS" <<<"$out" && ok "$KEYS keys stored in redis from outside" || not_ok "$KEYS keys stored in redis from outside ($out)"
	outside redis "$DC" redis 10.99.0.2 6379
	cnames="$cnames redis"
fi
for c in $cnames; do
	if goes_on $c 20 90; then ok "client $c outside the guest gets its answers"
	else bail "client $c outside the guest gets no answers: $(tail -n 3 "$W/$c.log")"; fi
done
declare -A pid
for u in $units; do
	pid[$u]=$(main_pid $u)
done
note "main pids: $(for u in $units; do printf '%s %s  ' $u "${pid[$u]}"; done)"
check "the ssh session is in ssh.service's cgroup (no session scope): part of its tree" \
	"m=\$(systemctl show -p MainPID --value $SSH); s=\$(pgrep -P \$m); [ -n \"\$s\" ] &&
	 for p in \$s; do grep -q '/ssh.service\$' /proc/\$p/cgroup || exit 1; done"
R "kup check $B 2>&1"
rc=$?
note "$R_OUT"
[ $rc = 0 ] && ok "kup check $B: every unit of KUP_UNITS can be kept" || not_ok "kup check $B: every unit of KUP_UNITS can be kept"

# ---- the switch
note "kup switch $B (the units of /etc/default/kup: $units)"
t0=$(date +%s.%N)
"$lab" run "kup switch $B >/root/switch.log 2>&1" >/dev/null 2>&1
if L wait-boot "$B" --timeout 1800; then
	ok "the guest came back on $(L run uname -r)"
else
	bail "the guest did not come back on $B"
fi
note "kup switch to the new kernel answering: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s"
check "every kept unit is active" \
	"for i in \$(seq 1500); do systemctl is-active -q $units && exit 0; sleep 0.2; done; systemctl is-active $units; exit 1"
for u in $units; do
	check "$u: main pid ${pid[$u]} as before, restored by its start" \
		"[ \"\$(systemctl show -p MainPID --value $u)\" = ${pid[$u]} ] &&
		 journalctl -b -u $u -o cat | grep -q 'kup restore: restored .*(root pid ${pid[$u]})'"
done
R "journalctl -b -o cat | grep -E 'kup restore: (error|warning)|outage' | head -n 20"
note "$R_OUT"
check "tun0 is back in the guest with 10.8.0.1/24" "ip -4 addr show tun0 | grep -q 'inet 10.8.0.1/24'"

# TCP's retransmission timer backs off while the machine is away: a client's
# next retransmission may come a minute or two after its service is back.
for c in $cnames; do
	if goes_on $c 20 420; then ok "client $c carries on across the switch"
	else not_ok "client $c carries on across the switch: $(tail -n 3 "$W/$c.log")"; fi
done
for c in $cnames; do
	if grep -q '^ERROR' "$W/$c.log"; then
		not_ok "client $c: no reset, no end of file, no wrong answer: $(grep -m1 '^ERROR' "$W/$c.log")"
	else
		ok "client $c: no reset, no end of file, no wrong answer"
	fi
done
if grep -qE 'SIGUSR1\[soft|Restart pause|SIGHUP|Inactivity timeout|SIGTERM' "$W/ovpn.log"; then
	not_ok "the VPN client did not restart its session: $(grep -m1 -E 'SIGUSR1|Restart pause|SIGHUP|Inactivity|SIGTERM' "$W/ovpn.log")"
else
	ok "the VPN client did not restart its session"
fi
if [ "$redis" = yes ]; then
	out=$(nsenter --net=/run/netns/"$NS" "$DC" redis-keys 10.99.0.2 6379 $KEYS check 2>&1)
	grep -q "KEYS $KEYS" <<<"$out" && ok "all $KEYS keys are in redis" || not_ok "all $KEYS keys are in redis ($out)"
fi
for p in "${clients[@]}"; do
	kill -0 "$p" 2>/dev/null || not_ok "a client process exited (pid $p)"
done

# ---- what the clients saw, where the time went
{
	echo "what each client outside the guest saw across kup switch $A -> $B"
	echo "(its longest wait for an answer, measured by the client):"
	printf '  %-40s %s\n' "ping through the VPN (every 200 ms)" "$(outage ping) ms"
	printf '  %-40s %s\n' "TCP echo through the VPN (every 20 ms)" "$(outage echo) ms"
	printf '  %-40s %s\n' "ssh -tt session (a line every 200 ms)" "$(outage ssh) ms"
	if [ "$redis" = yes ]; then
		printf '  %-40s %s\n' "redis INCR (every 20 ms), $KEYS keys" "$(outage redis) ms"
	else
		printf '  %-40s %s\n' "redis" "${redis/#no/not run (DEMO_REDIS=no)}"
	fi
	echo "where the time went (kup status on $B; the guest's clocks):"
	L run 'kup status' | sed 's/^/  /'
	echo "  the boot of $B: $(L run 'systemd-analyze 2>/dev/null | head -n 1')"
} >"$W/summary"
note "$(cat "$W/summary")"
[ -n "${DEMO_SUMMARY:-}" ] && cp "$W/summary" "$DEMO_SUMMARY"
trap - EXIT
cleanup
trap '_rc=$?; not_ok "the script ended before its last check (status $_rc)"; finish' EXIT
finish
