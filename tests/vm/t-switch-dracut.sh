#!/bin/bash
# kup switch with a dracut initrd: the guest (built with initramfs-tools)
# gets Debian's dracut at test time (its packages downloaded on the host with
# the lab's apt sources: lab debs; initramfs-tools removed, as dracut
# conflicts with it), dracut builds the initrd of the next kernel with kup's
# module (initramfs/dracut/90kup), and memcached.service with keys in it is
# kept across 6.1.0-47 -> 6.1.0-56.  On the new boot the module's pre-udev
# hook runs kup hold in the initrd (dracut-pre-udev.service, before udev),
# the holder outlives the switch to the root file system, and the unit's
# start is the restore: the same main PID, its keys there.  The cached
# guest image is not changed (the disk of a boot is a throw-away overlay).
set -u

export KUP_LAB_NAME=${KUP_LAB_NAME:-switch-dracut}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
A=${KUP_LAB_A:-6.1.0-47-amd64}
B=${KUP_LAB_B:-6.1.0-56-amd64}
U=memcached.service
KEYS=2000

# mc OP: "set" stores KEYS keys, "get" checks them and prints "GOT n"
mc() { mc_client "$1" "$KEYS" dracut y 300; }
main_pid() { L run "systemctl show -p MainPID --value $U"; }

L build || bail "lab build"
debs=$(L debs dracut dracut-core kpartx) || bail "lab debs dracut dracut-core kpartx"
"$lab" stop >/dev/null 2>&1
L boot "$A" || bail "boot $A"
ok "booted $A"
R 'command -v kup' || bail "kup is not installed in the guest (tests/vm/run-lab-tests.sh installs it)"
check "kup's dracut module is installed (/usr/lib/dracut/modules.d/90kup)" \
	'[ -x /usr/lib/dracut/modules.d/90kup/module-setup.sh ] && [ -x /usr/lib/dracut/modules.d/90kup/kup-hold.sh ]'

# ---- dracut instead of initramfs-tools
R 'rm -rf /root/debs; mkdir -p /root/debs'
for d in $debs; do L cp-in "$d" /root/debs/ || bail "cp-in $d"; done
# dracut's trigger would rebuild the initrds of every kernel of the guest
# (minutes each under TCG): --no-triggers, and the test builds the one it
# boots.  The kernels depend on "initramfs-tools | linux-initramfs-tool":
# dracut provides the second once it is in.
check "dpkg -i dracut (initramfs-tools removed)" \
	'cd /root/debs && dpkg -i --no-triggers kpartx_*.deb dracut-core_*.deb >/root/dracut-dpkg.log 2>&1 &&
	 dpkg -r --force-depends initramfs-tools initramfs-tools-core >>/root/dracut-dpkg.log 2>&1 &&
	 dpkg -i --no-triggers dracut_*.deb >>/root/dracut-dpkg.log 2>&1 &&
	 ! dpkg-query -W -f "\${Status}" initramfs-tools 2>/dev/null | grep -q "ok installed" ||
	 { cat /root/dracut-dpkg.log; exit 1; }'
check "no lsinitramfs left (kup check must read the initrd with lsinitrd)" '! command -v lsinitramfs'
note "$(L run 'dracut --version; dpkg-query -W dracut dracut-core initramfs-tools 2>&1')"
# A host-only initrd with the drivers of this guest's root only (the
# lab's initramfs-tools has MODULES=list too), zstd at a low level: smaller
# and quicker to make and to unpack under TCG.  kup's module is not named:
# dracut takes it by default.
R "cat >/etc/dracut.conf.d/50-kup-lab.conf <<'EOF'
hostonly=\"yes\"
hostonly_cmdline=\"no\"
compress=\"zstd -q -3 -T0\"
omit_dracutmodules+=\" kernel-modules kernel-modules-extra overlay-root resume terminfo usrmount shutdown \"
add_drivers+=\" virtio_pci virtio_blk virtio_net ext4 crc32c_generic \"
EOF"
t0=$(date +%s)
check "dracut --force /boot/initrd.img-$B $B" \
	"dracut --force /boot/initrd.img-$B $B >/root/dracut.log 2>&1 || { tail -n 30 /root/dracut.log; exit 1; }"
note "dracut took $(($(date +%s) - t0))s: $(L run "du -h /boot/initrd.img-$B | cut -f1")"
R "lsinitrd /boot/initrd.img-$B"
lst=$R_OUT
if grep -qE ' usr/sbin/kup$' <<<"$lst" &&
	grep -q 'lib/dracut/hooks/pre-udev/00-kup-hold.sh' <<<"$lst" &&
	grep -q 'nd_pmem.ko' <<<"$lst" && grep -q 'nd_e820.ko' <<<"$lst"; then
	ok "the initrd holds kup, the pre-udev hook kup-hold.sh, nd_e820 and nd_pmem"
else
	not_ok "the initrd holds kup, the pre-udev hook kup-hold.sh, nd_e820 and nd_pmem"
	note "$(grep -E 'kup|nd_|dracut-pre-udev' <<<"$lst")"
fi
check "the initrd is systemd's (dracut-pre-udev.service runs the hook)" \
	"lsinitrd /boot/initrd.img-$B | grep -q 'dracut-pre-udev.service'"

# ---- the kept unit
# The lab's first boot comes from its initramfs-tools initrd, which mounts
# /run noexec at 10% of RAM; the dracut boot's systemd mounts it at 20% with
# nr_inodes=800k.  memcached.service's namespace sees /run and binds files
# of it: the restore rebuilds the namespace with the dumped mount flags and
# takes the superblock's size= and nr_inodes= as the kernel's, so the switch
# from an initramfs-tools boot to a dracut boot keeps the sandboxed unit.
R 'findmnt -n -o OPTIONS /run'
run_before=$R_OUT
note "/run before the switch (initramfs-tools): $run_before"
check "systemctl enable kup-restore.service" 'systemctl enable kup-restore.service 2>&1'
check "kup ppp format /dev/pmem0" 'udevadm settle -t 30; kup ppp format /dev/pmem0 --force'
check "systemctl start $U" "systemctl start $U && $mc_listening"
R "$(mc set)"
if grep -q "GOT $KEYS" <<<"$R_OUT"; then ok "$KEYS keys stored in memcached"; else bail "store keys: $R_OUT"; fi
pid=$(main_pid)
ok "memcached.service runs: main pid $pid"
R "kup check $B --unit $U 2>&1"
note "$R_OUT"
if grep -q "initrd.img-$B, which carries kup's hook" <<<"$R_OUT"; then
	ok "kup check: the initrd carries kup's hook (read with lsinitrd)"
else
	not_ok "kup check: the initrd carries kup's hook (read with lsinitrd)"
fi

note "kup switch $B --unit $U"
t0=$(date +%s.%N)
"$lab" run "kup switch $B --unit $U >/root/switch.log 2>&1" >/dev/null 2>&1	# the connection drops
L wait-boot "$B" --timeout "${KUP_LAB_SWITCH_TIMEOUT:-900}" || bail "the guest did not come back on $B"
note "kup switch to the new kernel answering: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s"
ok "the guest came back on $(L run uname -r)"
note "$(L run 'cat /root/switch.log')"
check "it booted dracut's initrd (dracut-pre-udev.service ran)" \
	"journalctl -b -u dracut-pre-udev.service -o cat | grep -q ."
note "$(L run "journalctl -b -u dracut-pre-udev.service -o cat --no-pager | tail -n 8; dmesg | grep 'kup hold' | head -n 5")"
check "kup hold ran in the initrd's pre-udev hook, holding the tree of pid $pid" \
	"journalctl -b -u dracut-pre-udev.service -o cat | grep -q 'holding the PIDs of the tree of pid $pid'"
check "the holder held them from there (kernel log)" "dmesg | grep -q 'kup hold: holding the PIDs of the tree of pid $pid'"
R 'findmnt -n -o OPTIONS /run'
note "/run after the switch (dracut): $R_OUT"
check "$U is active" "for i in \$(seq 150); do systemctl is-active -q $U && exit 0; sleep 0.2; done; exit 1"
note "$(L run "journalctl -b -u $U --no-pager -o cat | tail -n 6")"
check "its main pid is $pid, as before the switch" "[ \"\$(systemctl show -p MainPID --value $U)\" = $pid ]"
check "pid $pid is memcached, in the unit's cgroup" \
	"grep -q memcached /proc/$pid/comm && grep -q '/system.slice/$U\$' /proc/$pid/cgroup"
check "its start was the restore (kup restore in the unit's journal)" \
	"journalctl -b -u $U -o cat | grep -q 'kup restore: restored .* (root pid $pid)'"
check "the holder was alive at the restore (systemd spared it at the switch to the root), and let go then" \
	"journalctl -b -u $U -o cat | grep -q 'the PID holder let go: released' && ! dmesg | grep -q 'kup hold: .*letting [0-9]* pids go'"
check "the holder let go and is gone" \
	"for i in \$(seq 50); do kup hold --status >/dev/null 2>&1 || exit 0; sleep 0.2; done; exit 1"
R "$(mc get)"
if grep -q "GOT $KEYS" <<<"$R_OUT"; then ok "all $KEYS keys are there"; else not_ok "all $KEYS keys are there"; note "$R_OUT"; fi
finish
