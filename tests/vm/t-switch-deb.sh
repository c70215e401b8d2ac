#!/bin/bash
# kup from its Debian package: the guest boots with no kup at all (nothing
# staged by lab install-kup), gets kup_*.deb (make deb; KUP_LAB_DEB names a
# built one) with dpkg -i as an admin would install it, and the package does
# the rest: kup-restore.service enabled by its postinst (as dh_installsystemd
# writes it), the initramfs hook in, and its update-initramfs trigger
# rebuilding the newest kernel's initrd with it.  Then memcached.service with
# keys in it is kept across a switch to that kernel with that initrd: kup
# hold holds its PIDs from the initramfs, the unit's start is the restore
# (the same main PID, its keys there).
set -u

export KUP_LAB_NAME=${KUP_LAB_NAME:-switch-deb}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
A=${KUP_LAB_A:-6.1.0-47-amd64}
U=memcached.service
KEYS=2000

# mc OP: "set" stores KEYS keys, "get" checks them and prints "GOT n"
mc() { mc_client "$1" "$KEYS" deb z 250; }
main_pid() { L run "systemctl show -p MainPID --value $U"; }

deb=${KUP_LAB_DEB:-}
if [ -z "$deb" ]; then
	note "make deb"
	make -s -C "$top" deb >/tmp/kup-lab-deb.$$.log 2>&1 ||
		{ note "$(tail -n 20 /tmp/kup-lab-deb.$$.log)"; rm -f /tmp/kup-lab-deb.$$.log; bail "make deb"; }
	rm -f /tmp/kup-lab-deb.$$.log
	deb=$(ls -1 "$top"/build/deb/kup_*_amd64.deb | tail -n1)
fi
[ -f "$deb" ] || bail "no package: $deb"
ok "the package: $(basename "$deb")"

L build || bail "lab build"
"$lab" stop >/dev/null 2>&1
# Nothing staged is installed at this boot: the package alone.
KUP_LAB_KUP_TAR=/nonexistent KUP_LAB_KUP_DEB=/nonexistent L boot "$A" || bail "boot $A"
ok "booted $A"
check "no kup in the guest before the package" '! command -v kup && [ ! -e /lib/systemd/system/kup-restore.service ]'
B=$(L run 'linux-version list | linux-version sort --reverse | head -n1')
note "the newest kernel (update-initramfs -u, the trigger's): $B"
check_fails "its initrd has no kup yet" "lsinitramfs /boot/initrd.img-$B | grep -q 'usr/sbin/kup$'"

L cp-in "$deb" /root/ || bail "cp-in $(basename "$deb")"
check "dpkg -i $(basename "$deb")" "dpkg -i /root/$(basename "$deb") >/root/dpkg.log 2>&1 || { cat /root/dpkg.log; exit 1; }"
note "$(L run 'cat /root/dpkg.log')"
check "dpkg: kup is installed" "dpkg-query -W -f '\${Status}' kup | grep -q 'install ok installed'"
check "kup-restore.service is enabled (by the package's postinst)" 'systemctl is-enabled kup-restore.service | grep -qx enabled'
check "... and was not started at install" '! systemctl is-active -q kup-restore.service'
check "the package's units, generator, initramfs hook and dracut module are in place" \
	'for f in /lib/systemd/system/kup-restore.service /lib/systemd/system/kup-cold@.service \
		/lib/systemd/system/kup-switch-dump.service /lib/systemd/system-generators/kup-generator \
		/usr/share/initramfs-tools/hooks/kup /usr/share/initramfs-tools/scripts/init-top/kup \
		/usr/lib/dracut/modules.d/90kup/module-setup.sh; do dpkg -S "$f" >/dev/null || exit 1; done'
check "the update-initramfs trigger ran for $B" "grep -q 'update-initramfs: Generating /boot/initrd.img-$B' /root/dpkg.log"
check "... and its initrd now has kup and its init-top script" \
	"lsinitramfs /boot/initrd.img-$B | grep -q 'usr/sbin/kup$' && lsinitramfs /boot/initrd.img-$B | grep -q 'scripts/init-top/kup$'"

check "kup ppp format /dev/pmem0" 'udevadm settle -t 30; kup ppp format /dev/pmem0 --force'
check "systemctl start $U" "systemctl start $U && $mc_listening"
R "$(mc set)"
if grep -q "GOT $KEYS" <<<"$R_OUT"; then ok "$KEYS keys stored in memcached"; else bail "store keys: $R_OUT"; fi
pid=$(main_pid)
ok "memcached.service runs: main pid $pid"

note "kup switch $B --unit $U"
t0=$(date +%s.%N)
"$lab" run "kup switch $B --unit $U >/root/switch.log 2>&1" >/dev/null 2>&1	# the connection drops
L wait-boot "$B" --timeout "${KUP_LAB_SWITCH_TIMEOUT:-900}" || bail "the guest did not come back on $B"
note "kup switch to the new kernel answering: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s"
ok "the guest came back on $(L run uname -r)"
note "$(L run 'cat /root/switch.log')"
check "$U is active" "for i in \$(seq 150); do systemctl is-active -q $U && exit 0; sleep 0.2; done; exit 1"
note "$(L run "journalctl -b -u $U --no-pager -o cat | tail -n 6")"
check "kup hold held its pids from the initramfs" "dmesg | grep -q 'kup hold: holding the PIDs of the tree of pid $pid'"
check "its main pid is $pid, as before the switch" "[ \"\$(systemctl show -p MainPID --value $U)\" = $pid ]"
check "pid $pid is memcached, in the unit's cgroup" \
	"grep -q memcached /proc/$pid/comm && grep -q '/system.slice/$U\$' /proc/$pid/cgroup"
check "its start was the restore (kup restore in the unit's journal)" \
	"journalctl -b -u $U -o cat | grep -q 'kup restore: restored .* (root pid $pid)'"
check "kup-restore.service ran (enabled by the package) and left the checkpoint to the unit" \
	"journalctl -b -u kup-restore.service -o cat | grep -q 'is $U.s: left for it'"
R "$(mc get)"
if grep -q "GOT $KEYS" <<<"$R_OUT"; then ok "all $KEYS keys are there"; else not_ok "all $KEYS keys are there"; note "$R_OUT"; fi
finish
