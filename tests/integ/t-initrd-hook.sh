#!/bin/bash
# kup check (and kup kexec load) tell whether the initrd of the kernel to
# switch to carries kup: initramfs-tools' hook (scripts/init-top/kup, read
# with lsinitramfs) or dracut's module (its pre-udev hook, read with
# dracut's lsinitrd, whose lines are ls -l lines); a warning names the
# command that adds it.  An initrd made before kup was installed carries an
# older kup, which may not read what this one writes: a warning too (kup
# check, kup kexec load).  The listers are stand-ins here (the host need not
# have either); the lab's t-switch-dracut.sh reads a real dracut initrd.
. "$(dirname "$0")/../lib.sh"
require_root
plan 8

B=$T/bin
mkdir -p "$B" "$T/boot"
: > "$T/boot/vmlinuz-9.9.9-kuptest"
: > "$T/boot/initrd.img-9.9.9-kuptest"
K=$T/boot/vmlinuz-9.9.9-kuptest
absent() { printf '#!/bin/sh\nexit 127\n' > "$B/$1"; chmod +x "$B/$1"; }
# lister NAME FILE: a stand-in NAME that prints FILE for our initrd
lister() {
	printf '#!/bin/sh\n[ "$1" = "%s" ] || exit 1\ncat "%s"\n' "$T/boot/initrd.img-9.9.9-kuptest" "$2" > "$B/$1"
	chmod +x "$B/$1"
}
kcheck() { PATH=$B:$PATH kup_try check "$K" > "$T/out" 2>&1; grep '^[a-zA-Z]* *kernel ' "$T/out"; }

cat > "$T/it" <<'L'
.
usr
usr/sbin
usr/sbin/kup
scripts
scripts/init-top
scripts/init-top/kup
scripts/init-top/ORDER
L
cat > "$T/dracut" <<'L'
Image: /boot/initrd.img-9.9.9-kuptest: 13M
========================================================================
dracut modules:
systemd
kup
========================================================================
drwxr-xr-x  12 root     root            0 Dec  7 03:07 .
lrwxrwxrwx   1 root     root            7 Dec  7 03:06 sbin -> usr/sbin
-rwxr-xr-x   1 root     root      2966688 Dec  7 02:44 usr/sbin/kup
drwxr-xr-x   2 root     root            0 Dec  7 03:06 usr/lib/dracut/hooks/pre-udev
-rwxr-xr-x   1 root     root          765 Dec  7 02:44 usr/lib/dracut/hooks/pre-udev/00-kup-hold.sh
L
grep -v 'kup-hold\|usr/sbin/kup' "$T/dracut" > "$T/dracut-none"
grep -v 'scripts/init-top/kup' "$T/it" > "$T/it-none"

lister lsinitramfs "$T/it"
check "initramfs-tools' hook, listed by lsinitramfs: ok" eval 'kcheck | grep -q "^ok *kernel .*which carries kup.s hook"'
lister lsinitramfs "$T/it-none"
check "... without it: a warning naming update-initramfs and dracut" \
	eval 'kcheck | grep -q "^warn *kernel .*carries no kup hook.*update-initramfs -u -k 9.9.9-kuptest, or dracut --force --kver 9.9.9-kuptest"'
absent lsinitramfs
lister lsinitrd "$T/dracut"
check "no lsinitramfs: dracut's module, listed by lsinitrd: ok" eval 'kcheck | grep -q "^ok *kernel .*which carries kup.s hook"'
lister lsinitrd "$T/dracut-none"
check "... a dracut initrd without it: the warning" eval 'kcheck | grep -q "^warn *kernel .*carries no kup hook"'
absent lsinitrd
check "neither lister: cannot tell, says so" \
	eval 'kcheck | grep -q "^warn *kernel .*cannot list it (lsinitramfs, lsinitrd)"'


lister lsinitramfs "$T/it"
touch -d '2001-01-01 00:00' "$T/boot/initrd.img-9.9.9-kuptest"
check "an initrd older than kup: a warning naming both dates and update-initramfs" \
	eval 'kcheck | grep -q "^warn *kernel .*initrd.img-9.9.9-kuptest is older than this kup (made 2001-01-01 00:00, this kup installed .*update-initramfs -u -k 9.9.9-kuptest"'
check "... kup kexec load --dry-run says so too" \
	eval 'PATH=$B:$PATH kup_try kexec load "$K" --dry-run 2>&1 | grep -q "warning: initrd .*initrd.img-9.9.9-kuptest is older than this kup"'
touch "$T/boot/initrd.img-9.9.9-kuptest"
check "made again after kup: ok" eval 'kcheck | grep -q "^ok *kernel .*which carries kup.s hook"'
