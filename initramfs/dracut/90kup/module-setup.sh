#!/bin/bash
# dracut module of kup: carries kup, its configuration and the persistent
# memory drivers into the initrd, and runs `kup hold` before udev
# (kup-hold.sh, a pre-udev hook), so that the PIDs of a tree kept across a
# kernel switch stay free from the first moment of the boot.  It does what
# initramfs/initramfs-tools does for initramfs-tools.  Included in every
# initrd once kup is installed; the hook does nothing without a store or a
# checkpoint in it.

# called by dracut
check() {
	require_binaries /usr/sbin/kup || return 1
	return 0
}

# called by dracut
depends() {
	return 0
}

# called by dracut
installkernel() {
	# The store: a legacy persistent memory region (memmap=SIZE!START) is
	# /dev/pmem0 once these are loaded (kup loads them itself, with
	# libkmod).  In every initrd, hostonly or not: the store of the next
	# boot is not a device of this one.
	hostonly='' instmods libnvdimm nd_e820 nd_pmem
}

# called by dracut
install() {
	inst_binary /usr/sbin/kup
	# the configuration file: kup hold's timeout (KUP_HOLD_TIMEOUT), the store
	[ -r /etc/default/kup ] && inst_simple /etc/default/kup
	inst_hook pre-udev 00 "$moddir/kup-hold.sh"
}
