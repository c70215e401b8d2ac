#!/bin/bash
# A sandboxed service kept across `kup switch --unit` in the QEMU lab:
# Debian's memcached.service runs with PrivateTmp=, ProtectSystem=full,
# PrivateDevices=, ProtectKernelTunables=, ProtectControlGroups= and
# ProtectKernelModules= in a mount namespace systemd built for it.  A file
# is put in its private /tmp and keys in it; after the switch 6.1.0-47 ->
# 6.1.0-56 memcached is back as the unit (same main PID) inside a rebuilt
# namespace: the same mount table as before the switch (up to ids, device
# and peer group numbers), its private /tmp holding the file, out of the
# host's /tmp, /dev private, /usr read-only, and its keys there.
set -u

export KUP_LAB_NAME=${KUP_LAB_NAME:-switch-sandbox}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
A=${KUP_LAB_A:-6.1.0-47-amd64}
B=${KUP_LAB_B:-6.1.0-56-amd64}
U=memcached.service
KEYS=500

# mc OP: "set" stores KEYS keys, "get" checks them and prints "GOT n"
mc() { mc_client "$1" "$KEYS" value x 1; }
# the mount table of PID as the restore compares it (tests/lib-sandbox.sh)
norm() {
	echo "awk '{ sep = 0; s = \"\"
		for (i = 4; i <= NF; i++) { f = \$i
			if (f == \"-\") sep = 1; else if (!sep && i > 6) sub(/:[0-9]+\$/, \"\", f)
			if (i == 4) gsub(/systemd-private-[^\\/]*/, \"systemd-private-*\", f)
			s = s \" \" f }
		if (\$0 !~ / - nsfs /) print s }' /proc/$1/mountinfo | sort"
}
main_pid() { L run "systemctl show -p MainPID --value $U"; }

L build || bail "lab build"
"$lab" stop >/dev/null 2>&1
L boot "$A" || bail "boot $A"
ok "booted $A"
R 'command -v kup' || bail "kup is not installed in the guest (tests/vm/run-lab-tests.sh installs it)"
check "kup ppp format /dev/pmem0" 'udevadm settle -t 30; kup ppp format /dev/pmem0 --force'
check "update-initramfs -u -k $B (kup's hook)" "update-initramfs -u -k $B >/dev/null 2>&1"
check "systemctl start $U" "systemctl start $U && $mc_listening"
pid=$(main_pid)
check "memcached (pid $pid) is in a mount namespace of its own" \
	"[ \"\$(readlink /proc/$pid/ns/mnt)\" != \"\$(readlink /proc/1/ns/mnt)\" ]"
check "a file in its private /tmp" "nsenter -t $pid -m sh -c 'echo kept across > /tmp/kup-note' && [ ! -e /tmp/kup-note ]"
R "$(mc set)"
grep -q "GOT $KEYS" <<<"$R_OUT" && ok "$KEYS keys stored" || bail "store keys: $R_OUT"
check "its mount table, saved" "$(norm "$pid") > /root/mounts.before && wc -l < /root/mounts.before"
note "$R_OUT mounts"

check "kup dump --unit $U --leave-running keeps its mount namespace" \
	"kup dump --unit $U -D /root/dry --leave-running 2>&1 | tee /root/dry.log | tail -n 3; grep -q 'its mount namespace .* is kept' /root/dry.log"
note "$R_OUT"
check "memcached runs on" "kill -0 $pid && rm -rf /root/dry"

t0=$(date +%s.%N)
"$lab" run "kup switch $B --unit $U >/root/switch.log 2>&1" >/dev/null 2>&1
if ! L wait-boot "$B" --timeout 420; then
	note "$(L run 'uname -r; cat /root/switch.log' 2>&1 | tail -n 30)"
	bail "the guest did not come back on $B"
fi
note "kup switch to the new kernel answering: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s"
ok "the guest came back on $(L run uname -r)"
note "$(L run 'grep -i "mount\|error" /root/switch.log | tail -n 5')"
check "$U is active" "for i in \$(seq 150); do systemctl is-active -q $U && exit 0; sleep 0.2; done; exit 1"
note "$(L run "journalctl -b -u $U --no-pager -o cat | grep -i 'kup\|mount' | tail -n 8")"
check "its main pid is $pid, as before the switch" "[ \"\$(systemctl show -p MainPID --value $U)\" = $pid ]"
check "its start was the restore, in its rebuilt namespace" \
	"journalctl -b -u $U -o cat | grep -q 'pid $pid: its mount namespace is rebuilt'"
check "in a mount namespace of its own" "[ \"\$(readlink /proc/$pid/ns/mnt)\" != \"\$(readlink /proc/1/ns/mnt)\" ]"
check "the same mount table as before the switch" "$(norm "$pid") > /root/mounts.after && diff /root/mounts.before /root/mounts.after"
check "its private /tmp holds the file" "[ \"\$(nsenter -t $pid -m cat /tmp/kup-note)\" = 'kept across' ]"
check "not in the host's /tmp" "[ ! -e /tmp/kup-note ]"
check "/dev is private (a tmpfs, no vda)" \
	"[ \"\$(nsenter -t $pid -m stat -f -c %T /dev)\" = tmpfs ] && ! nsenter -t $pid -m test -e /dev/vda"
check "/usr is read-only for it" "! nsenter -t $pid -m touch /usr/kup-x 2>/dev/null && [ ! -e /usr/kup-x ]"
R "$(mc get)"
grep -q "GOT $KEYS" <<<"$R_OUT" && ok "all $KEYS keys are there" || { not_ok "all $KEYS keys are there"; note "$R_OUT"; }
check "systemctl stop $U stops it" "systemctl stop $U && ! kill -0 $pid 2>/dev/null"
finish
