#!/bin/sh
# kup, before udev in a dracut initramfs (a pre-udev hook, sourced by
# dracut-pre-udev.service, or by dracut's init without systemd): if the
# persistent page store holds a tree kept across a kernel switch (kup
# switch), keep its PIDs free with placeholder processes (kup hold) until its
# restore, so that udev and the early services cannot take them.  The holder
# is a daemon of its own session; it outlives the hook and the switch to the
# root file system.  Does nothing without a store or a checkpoint.
# kup.hold=0 on the kernel command line turns it off.
if getargbool 1 kup.hold && [ -x /usr/sbin/kup ]; then
	/usr/sbin/kup hold --ppp auto --if-any ||
		warn "kup: kup hold failed: the PIDs of the kept tree may be taken before its restore"
fi
