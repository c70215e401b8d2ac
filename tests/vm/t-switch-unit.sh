#!/bin/bash
# `kup switch --unit` in the QEMU lab: Debian's memcached.service, with keys
# in it, is kept across a kernel update 6.1.0-47 -> 6.1.0-56.  On the new
# boot the initramfs' kup hold names the unit in /run/kup/unit,
# kup-generator turns the unit's start into a restore from the store, and
# kup-restore.service leaves that checkpoint alone: memcached comes back as
# memcached.service itself (same main PID, in the unit's cgroup, its keys
# there), and systemctl stop/start work on it afterwards as on any service.
# Then 56 -> 47 with the store corrupted before the kexec: the restore fails,
# nothing of it is left, and memcached.service starts cold (kup-cold@).
set -u

export KUP_LAB_NAME=${KUP_LAB_NAME:-switch-unit}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
A=${KUP_LAB_A:-6.1.0-47-amd64}
B=${KUP_LAB_B:-6.1.0-56-amd64}
U=memcached.service
KEYS=2000
# KUP_LAB_RESTORE_MEMORY=lazy|eager: written into the guest's /etc/default/kup
# (KUP_RESTORE_MEMORY) before the initramfs is made: lazy restores the unit
# with its memory following through userfaultfd (kup-lazy)
MEM=${KUP_LAB_RESTORE_MEMORY:-}

# mc OP: "set" stores KEYS keys, "get" checks them and prints "GOT n"
mc() { mc_client "$1" "$KEYS" value x 200; }
main_pid() { L run "systemctl show -p MainPID --value $U"; }
# switch KERNEL ARGS...: kup switch, wait for the new boot
switch() {
	local k=$1 t0
	shift
	t0=$(date +%s.%N)
	"$lab" run "kup switch $k $* >/root/switch.log 2>&1" >/dev/null 2>&1	# the connection drops
	L wait-boot "$k" --timeout 300 || return 1
	note "kup switch to the new kernel answering: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s"
}

L build || bail "lab build"
"$lab" stop >/dev/null 2>&1
L boot "$A" || bail "boot $A"
ok "booted $A"
R 'command -v kup' || bail "kup is not installed in the guest (tests/vm/run-lab-tests.sh installs it)"
check "systemctl enable kup-restore.service" 'systemctl enable kup-restore.service 2>&1'
if [ -n "$MEM" ]; then
	check "KUP_RESTORE_MEMORY=$MEM in /etc/default/kup" \
		"sed -i '/^KUP_RESTORE_MEMORY=/d' /etc/default/kup 2>/dev/null; echo KUP_RESTORE_MEMORY=$MEM >>/etc/default/kup"
fi
check "kup ppp format /dev/pmem0" 'udevadm settle -t 30; kup ppp format /dev/pmem0 --force'
check "update-initramfs -u -k $B (kup's hook)" "update-initramfs -u -k $B >/dev/null 2>&1"
check "update-initramfs -u -k $A (kup's hook)" "update-initramfs -u -k $A >/dev/null 2>&1"
check "systemctl start $U" "systemctl start $U && $mc_listening"
R "$(mc set)"
if grep -q "GOT $KEYS" <<<"$R_OUT"; then ok "$KEYS keys stored in memcached"; else bail "store keys: $R_OUT"; fi
pid=$(main_pid)
ok "memcached.service runs: main pid $pid"

check "kup check $B --unit $U: every check passes" "kup check $B --unit $U"
note "$R_OUT"
check_fails "kup switch --unit of a unit that does not exist fails" "kup switch $B --unit kup-nothing.service 2>&1"
note "$R_OUT"
if grep -q "no such unit" <<<"$R_OUT" && grep -q "nothing was changed" <<<"$R_OUT"; then
	ok "it says so: no such unit, nothing was changed"
else
	not_ok "it says so: no such unit, nothing was changed"
fi
check "... and loads nothing" "! kup kexec status >/dev/null"

note "kup switch $B --unit $U"
switch "$B" --unit "$U" || bail "the guest did not come back on $B"
ok "the guest came back on $(L run uname -r)"
note "$(L run 'cat /root/switch.log')"
check "$U is active" "for i in \$(seq 150); do systemctl is-active -q $U && exit 0; sleep 0.2; done; exit 1"
note "$(L run "systemctl status $U --no-pager | head -n 12; journalctl -b -u $U --no-pager -o cat | tail -n 12")"
check "its main pid is $pid, as before the switch" "[ \"\$(systemctl show -p MainPID --value $U)\" = $pid ]"
check "pid $pid is memcached, in the unit's cgroup" \
	"grep -q memcached /proc/$pid/comm && grep -q '/system.slice/$U\$' /proc/$pid/cgroup"
check "its start was the restore (kup restore in the unit's journal)" \
	"journalctl -b -u $U -o cat | grep -q 'kup restore: restored .* (root pid $pid)'"
check "kup-restore.service left the checkpoint to the unit" \
	"journalctl -b -u kup-restore.service -o cat | grep -q 'is $U.s: left for it'"
check "kup hold held its pids from the start of the boot" "dmesg | grep -q 'kup hold: holding the PIDs of the tree of pid $pid'"
R "$(mc get)"
if grep -q "GOT $KEYS" <<<"$R_OUT"; then ok "all $KEYS keys are there"; else not_ok "all $KEYS keys are there"; note "$R_OUT"; fi
note "$(L run "kup status 2>&1 | grep -i outage")"
if [ "$MEM" = lazy ]; then
	check "the restore was lazy (KUP_RESTORE_MEMORY=lazy)" \
		"journalctl -b -u $U -o cat | grep -q 'KUP_RESTORE_MEMORY=lazy'"
	note "$(L run "ps -eo pid,ppid,comm,cgroup | grep -E 'kup-lazy|memcached'")"
	check "kup-lazy filled the memory and exited" \
		"for i in \$(seq 600); do pgrep -x kup-lazy >/dev/null || break; sleep 0.5; done;
		 ! pgrep -x kup-lazy >/dev/null &&
		 journalctl -b -u $U -o cat | grep -q 'the tree.s memory is complete: the store is scrubbed'"
	note "$(L run "journalctl -b -u $U -o cat | grep -E 'kup-lazy|memory is complete|outage' | tail -n 5")"
	check "the unit is active, main pid still $pid" \
		"systemctl is-active -q $U && [ \"\$(systemctl show -p MainPID --value $U)\" = $pid ]"
fi
check "/run/kup/unit is gone (once the unit is active), the store scrubbed" \
	"for i in \$(seq 50); do [ ! -e /run/kup/unit ] && break; sleep 0.2; done;
	 [ ! -e /run/kup/unit ] && kup ppp status /dev/pmem0 | grep -q 'checkpoint:   none'"
check "after the daemon-reload the unit is its own again (no kup drop-in)" \
	"for i in \$(seq 50); do systemctl show -p DropInPaths --value $U | grep -q kup || exit 0; sleep 0.2; done; exit 1"
check "systemctl stop $U stops it" "systemctl stop $U && ! kill -0 $pid 2>/dev/null && ! systemctl is-active $U"
check "systemctl start $U starts it cold" \
	"systemctl start $U && $mc_listening"
R "$(mc get)"
if grep -q "GOT 0" <<<"$R_OUT"; then ok "the cold memcached is empty"; else not_ok "the cold memcached is empty"; note "$R_OUT"; fi

# ---- a restore that fails: the unit starts cold
R "$(mc set)"
grep -q "GOT $KEYS" <<<"$R_OUT" || note "store keys: $R_OUT"
pid=$(main_pid)
check "kup switch $A --unit $U --no-exec" "kup switch $A --unit $U --no-exec 2>&1"
off=$(L run "kup ppp ls /dev/pmem0 --json | python3 -c 'import json,sys; print([b[\"offset\"] for b in json.load(sys.stdin) if b[\"name\"] == \"pages-$pid.img\"][0])'")
check "flip one byte of pages-$pid.img (offset ${off:-?}) on /dev/pmem0" \
	"[ -n '$off' ] && printf 'X' | dd of=/dev/pmem0 bs=1 seek=$((off + 4096 + 77)) conv=notrunc,fsync status=none"
t0=$(date +%s.%N)
"$lab" run "kup kexec exec >/dev/null 2>&1" >/dev/null 2>&1
L wait-boot "$A" --timeout 300 || bail "the guest did not come back on $A"
ok "the guest came back on $(L run uname -r)"
check "$U is active (started cold)" \
	"for i in \$(seq 150); do systemctl is-active -q $U && exit 0; sleep 0.2; done; exit 1"
note "$(L run "journalctl -b -u $U -u kup-cold@$U.service --no-pager -o cat | tail -n 15")"
if [ "$MEM" = lazy ]; then
	# lazy: the restore refuses a page its eager part reads; one read by
	# kup-lazy once the tree runs kills the tree (the unit fails all the same)
	check "the restore failed, saying why (kup restore, or kup lazy once the tree ran)" \
		"journalctl -b -u $U -o cat | grep -Eq 'kup (restore|lazy): error'"
else
	check "the restore failed, saying why" "journalctl -b -u $U -o cat | grep -q 'kup restore: error'"
fi
check "kup-cold@$U started it cold" "journalctl -b -u kup-cold@$U.service -o cat | grep -q 'Finished kup-cold@'"
newpid=$(main_pid)
check "a new main pid ($newpid), nothing left of the tree of $pid" \
	"[ -n '$newpid' ] && [ '$newpid' != $pid ] && ! grep -qs memcached /proc/$pid/comm"
check "the store keeps the checkpoint (kup ppp status)" \
	"kup ppp status /dev/pmem0 | grep -q 'checkpoint:   [0-9]* blob'"
check "... marked failed: a later boot does not restore it over the cold instance" \
	"journalctl -b -u $U -o cat | grep -q 'marked failed: a later boot does not restore it'"
check "... kup hold --if-any (the initramfs' next time) holds no PID for it" \
	"kup hold --if-any 2>&1 | grep -q 'no PID is held' && ! kup hold --status >/dev/null 2>&1"
finish
