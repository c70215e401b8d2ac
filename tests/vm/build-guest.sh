#!/bin/bash
# Build the kup lab guest into OUTDIR.  Called by `tests/vm/lab build` (under
# a lock, inside a private mount namespace so that no mount can leak onto the
# host); not meant to be run by hand.
#
#   build-guest.sh OUTDIR DEBDIR DEBOOTSTRAP_CACHE
#
# Produces:
#   OUTDIR/root/                 the guest root directory (bookworm minbase)
#   OUTDIR/rootfs.ext4           ext4 image of root/ (mke2fs -d, no mounting)
#   OUTDIR/boot/vmlinuz-K        kernels, copied out for qemu -kernel
#   OUTDIR/boot/initrd.img-K     initrds made by the guest's initramfs-tools
#   OUTDIR/id_ed25519{,.pub}     key of the command channel (root@guest)
#   OUTDIR/kernels               installed kernel names, one a line
#   OUTDIR/manifest              package versions and sizes
set -euo pipefail
t0=$(date +%s)
step() { printf '  [%3ds] %s\n' $(($(date +%s) - t0)) "$*" >&2; }
die() { echo "build-guest: $*" >&2; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=guest.conf
. "$here/guest.conf"

[ $# = 3 ] || die "usage: build-guest.sh OUTDIR DEBDIR DEBOOTSTRAP_CACHE"
out=$1 debdir=$2 dbcache=$3
case $out in /?*/?*) ;; *) die "OUTDIR must be an absolute path below a directory: $out" ;; esac
root=$out/root
export DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true
export LC_ALL=C.UTF-8 LANG=C.UTF-8
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin


[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot)"
mkdir -p "$out" "$debdir" "$dbcache" "$out/boot"

# Never run on the host's own /proc: everything here happens in a private
# mount namespace (see lab), but double-check that we are not sharing mounts.
if [ "$(findmnt -no PROPAGATION / 2>/dev/null)" = shared ]; then
	die "refusing to run outside a private mount namespace"
fi

# ---------------------------------------------------------------- kernels
# Download first (cheap, fails early if a package name is wrong), with an apt
# configuration of our own: its sources list, lists and cache live in
# DEBDIR/apt, and the host's apt sources and state are never used.
aptdir=$debdir/apt
mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial"
for s in $KERNEL_SOURCES; do
	case $s in
	*-security) echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${MIRROR%/debian}/debian-security $s main" ;;
	*) echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $s main" ;;
	esac
done >"$aptdir/sources.list"
apt_o=(-o Dir::Etc::sourcelist="$aptdir/sources.list" -o Dir::Etc::sourceparts=-
	-o Dir::State::Lists="$aptdir/lists" -o Dir::Cache="$aptdir/cache"
	-o Dir::State::status=/dev/null -o APT::Architecture=amd64
	-o APT::Architectures::=amd64 -o APT::Sandbox::User=root -q)
apt_updated=0
apt_update() {
	[ $apt_updated = 1 ] && return 0
	step "apt-get update (the lab's own sources: $KERNEL_SOURCES)"
	apt-get "${apt_o[@]}" update >"$out/apt-update.log" 2>&1 ||
		{ tail -n 20 "$out/apt-update.log" >&2; die "apt-get update of the lab's sources failed"; }
	apt_updated=1
}
# known PKG: is PKG in the lab's package index?
known() { apt-cache "${apt_o[@]}" show "$1" >/dev/null 2>&1; }
# fetch PKG: the newest DEBDIR/PKG_*.deb, downloaded if missing; prints its path
fetch() {
	local pkg=$1 deb
	deb=$(ls -1 "$debdir/${pkg}"_*_amd64.deb 2>/dev/null | sort -V | tail -n1 || true)
	if [ -z "$deb" ]; then
		known "$pkg" || apt_update
		step "apt-get download $pkg" >&2
		(cd "$debdir" && apt-get "${apt_o[@]}" download "$pkg" >/dev/null 2>"$out/apt-download.err") ||
			{ cat "$out/apt-download.err" >&2; die "cannot download $pkg"; }
		deb=$(ls -1 "$debdir/${pkg}"_*_amd64.deb | sort -V | tail -n1)
	fi
	echo "$deb"
}
# Each kernel K: linux-image-K-unsigned if the archive has it (or it is
# cached), else trixie's split packages (see guest.conf).
kdebs=() split=()
for k in $KERNELS; do
	if ls "$debdir/linux-image-$k-unsigned"_*_amd64.deb >/dev/null 2>&1 ||
		{ known "linux-image-$k-unsigned" || { apt_update; known "linux-image-$k-unsigned"; }; }; then
		kdebs+=("$(fetch "linux-image-$k-unsigned")")
	else
		for p in linux-base-$k linux-binary-unsigned-$k linux-modules-$k; do
			kdebs+=("$(fetch "$p")")
		done
		split+=("$k")
	fi
done

# ---------------------------------------------------------------- debootstrap
step "debootstrap $SUITE (minbase) from $MIRROR"
include=$(echo $PACKAGES | tr ' ' ',')
if ! debootstrap --variant=minbase --include="$include" --cache-dir="$dbcache" \
	"$SUITE" "$root" "$MIRROR" >"$out/debootstrap.log" 2>&1; then
	tail -n 30 "$out/debootstrap.log" >&2
	[ -f "$root/debootstrap/debootstrap.log" ] && tail -n 30 "$root/debootstrap/debootstrap.log" >&2
	die "debootstrap failed (log: $out/debootstrap.log)"
fi

# /proc inside the chroot (private mount namespace: vanishes with us).
mount -t proc proc "$root/proc"
trap 'umount "$root/proc" 2>/dev/null || true' EXIT
in_root() { chroot "$root" /usr/bin/env -i PATH="$PATH" LC_ALL=C.UTF-8 \
	DEBIAN_FRONTEND=noninteractive HOME=/root "$@"; }

# ---------------------------------------------------------------- configuration
step "configure guest"
echo kup-lab >"$root/etc/hostname"
cat >"$root/etc/hosts" <<'EOF'
127.0.0.1	localhost
127.0.1.1	kup-lab
::1		localhost ip6-localhost ip6-loopback
EOF
cat >"$root/etc/fstab" <<'EOF'
# The lab boots the whole-disk ext4 image as /dev/vda (qemu -kernel, root=/dev/vda).
/dev/vda	/	ext4	rw,relatime,errors=remount-ro	0	1
tmpfs		/tmp	tmpfs	rw,nosuid,nodev,size=512m	0	0
EOF
# Root has no password (serial console login); sshd only takes the lab key.
in_root passwd -d root >/dev/null

# Command channel: sshd with a key generated for this guest build.
ssh-keygen -q -t ed25519 -N '' -C kup-lab -f "$out/id_ed25519"
install -d -m 700 "$root/root/.ssh"
install -m 600 "$out/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
cat >"$root/etc/ssh/sshd_config.d/kup-lab.conf" <<'EOF'
# kup lab: key-only root login, no DNS lookups, many parallel sessions.
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxSessions 64
MaxStartups 64:30:128
ClientAliveInterval 10
ClientAliveCountMax 3
EOF

# sshd socket-activated, one "sshd -i" per connection (Debian's own
# ssh.socket only starts ssh.service lazily): port 22 answers as soon as
# sockets.target is reached, seconds before ssh.service would be up (its
# ExecStartPre "sshd -t" alone costs a second or two under TCG).  The cost
# per connection is the same as sshd's own re-exec, and the lab shares one
# connection per guest boot anyway (ssh ControlMaster).  KillMode=process:
# what a command starts in the background survives the end of its session.
cat >"$root/etc/systemd/system/kup-lab-ssh.socket" <<'EOF'
[Unit]
Description=kup lab command channel (sshd per connection)
Before=sockets.target

[Socket]
ListenStream=22
Accept=yes
MaxConnections=128

[Install]
WantedBy=sockets.target
EOF
cat >"$root/etc/systemd/system/kup-lab-ssh@.service" <<'EOF'
[Unit]
Description=kup lab command channel connection

[Service]
ExecStart=-/usr/sbin/sshd -i
StandardInput=socket
StandardError=journal
KillMode=process
EOF
echo 'd /run/sshd 0755 root root -' >"$root/etc/tmpfiles.d/kup-lab-sshd.conf"
in_root systemctl disable ssh.service ssh.socket >/dev/null 2>&1
in_root systemctl mask ssh.service ssh.socket >/dev/null 2>&1
in_root systemctl enable kup-lab-ssh.socket >/dev/null 2>&1

# Network: the static address of qemu's user-mode (slirp) network, set by a
# udev rule as soon as the NIC appears (lighter than systemd-networkd under
# TCG, and no DHCP wait).
cat >"$root/usr/local/sbin/kup-lab-net" <<'EOF'
#!/bin/sh
# kup lab: configure the NICs (run by udev once a NIC has its name): the
# slirp one (the command channel), and the peer network's tap NIC (MAC
# 52:54:00:6b:75:02, lab boot --peer-netns) whose far end is a network
# namespace of the lab host.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
ip link set lo up
for d in /sys/class/net/*; do
	[ "$(basename "$(readlink -f "$d/device/driver" 2>/dev/null)")" = virtio_net ] || continue
	n=${d##*/}
	ip link set "$n" up
	if [ "$(cat "$d/address")" = 52:54:00:6b:75:02 ]; then
		ip addr replace 10.99.0.2/24 dev "$n"
	else
		ip addr replace 10.0.2.15/24 dev "$n"
		ip route replace default via 10.0.2.2 dev "$n"
	fi
done
exit 0
EOF
chmod 755 "$root/usr/local/sbin/kup-lab-net"
cat >"$root/etc/udev/rules.d/99-kup-lab-net.rules" <<'EOF'
ACTION=="add", SUBSYSTEM=="net", DRIVERS=="virtio_net", RUN+="/usr/local/sbin/kup-lab-net"
EOF
rm -f "$root/etc/resolv.conf"
echo 'nameserver 10.0.2.3' >"$root/etc/resolv.conf"
# Modules that udev would load for the emulated PC but that only cost boot
# time under TCG (kvm with -cpu max, floppy probing, wireless, ...).
cat >"$root/etc/modprobe.d/kup-lab-blacklist.conf" <<'EOF'
# kup lab: not needed in a TCG guest, slow to load or probe.
blacklist floppy
blacklist kvm_amd
blacklist kvm_intel
blacklist ccp
blacklist cfg80211
blacklist psmouse
blacklist pcspkr
blacklist serio_raw
blacklist joydev
blacklist i2c_piix4
EOF
# Units that only cost boot time in the lab, or would fight kup:
#  - memcached, redis-server and openvpn are workloads that tests start
#    themselves (a unit started by systemd after a kexec would take the port
#    of a restored memcached);
#  - kexec-tools' own "load on reboot" service;
#  - timers, networkd (see above), login prompts (the serial console is a
#    log file: nobody types there), binfmt and utmp (on the boot's critical
#    path, each costs a second or two under TCG).
in_root systemctl disable memcached.service redis-server.service openvpn.service >/dev/null 2>&1 || true
for u in systemd-networkd.service systemd-networkd-wait-online.service \
	kexec-load.service kexec.service \
	getty-static.service getty@.service serial-getty@.service \
	systemd-binfmt.service proc-sys-fs-binfmt_misc.automount \
	systemd-update-utmp.service systemd-update-utmp-runlevel.service \
	apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
	fstrim.timer dpkg-db-backup.timer ndctl-monitor.service; do
	in_root systemctl mask "$u" >/dev/null 2>&1 || true
done
# Debian's kexec-tools postinst enables kexec-on-reboot: turn it off.
cat >"$root/etc/default/kexec" <<'EOF'
# kup lab: never load a kexec kernel behind the tests' back.
LOAD_KEXEC=false
KEXEC_CMD=/sbin/kexec
USE_GRUB_CONFIG=false
EOF
# Journal in RAM only (the disk is a throw-away overlay anyway).
mkdir -p "$root/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=32M\n' \
	>"$root/etc/systemd/journald.conf.d/kup-lab.conf"

# initramfs-tools: only what a virtio disk + ext4 root needs (small initrd,
# fast kexec_file_load), no resume device probing.
cat >"$root/etc/initramfs-tools/conf.d/kup-lab.conf" <<'EOF'
MODULES=list
COMPRESS=zstd
RESUME=none
EOF
cat >>"$root/etc/initramfs-tools/modules" <<'EOF'
# kup lab root device, and the NIC early (the command channel)
virtio_pci
virtio_blk
virtio_net
ext4
crc32c_generic
EOF

# ---------------------------------------------------------------- kernels
step "install kernels: $KERNELS"
mkdir -p "$root/tmp/kdebs"
cp "${kdebs[@]}" "$root/tmp/kdebs/"
if ! in_root sh -c 'dpkg -i /tmp/kdebs/*.deb' >"$out/kernels.log" 2>&1; then
	tail -n 40 "$out/kernels.log" >&2
	die "installing kernels failed (log: $out/kernels.log)"
fi
rm -rf "$root/tmp/kdebs"
# The split packages (7.x) carry the image in /usr/lib/modules/K and no
# maintainer script that puts it in /boot: their linux-image-K package does
# that with linux-base 4.17's hooks, which need trixie's run-parts.  Do what
# those hooks do (image, config, System.map into /boot); the initrd is made
# below by the guest's own initramfs-tools, kup's hook included.
for k in "${split[@]}"; do
	m=$root/usr/lib/modules/$k
	[ -f "$m/vmlinuz.unsigned" ] || die "split kernel $k: no /usr/lib/modules/$k/vmlinuz.unsigned"
	cp "$m/vmlinuz.unsigned" "$root/boot/vmlinuz-$k"
	cp "$m/config" "$root/boot/config-$k"
	cp "$m/System.map" "$root/boot/System.map-$k"
done
: >"$out/kernels"
for k in $KERNELS; do
	[ -f "$root/boot/vmlinuz-$k" ] || die "no /boot/vmlinuz-$k in guest"
	if [ ! -s "$root/boot/initrd.img-$k" ]; then
		step "mkinitramfs $k"
		in_root update-initramfs -c -k "$k" >>"$out/kernels.log" 2>&1 ||
			die "update-initramfs $k failed (log: $out/kernels.log)"
	fi
	cp "$root/boot/vmlinuz-$k" "$root/boot/initrd.img-$k" "$out/boot/"
	echo "$k" >>"$out/kernels"
done

# ---------------------------------------------------------------- clean up
in_root apt-get clean
rm -f "$root/var/log/"*.log "$root/var/log/apt/"* 2>/dev/null || true
umount "$root/proc"
trap - EXIT

{
	echo "suite: $SUITE"
	echo "mirror: $MIRROR"
	echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "kernels:"
	for k in $KERNELS; do
		printf '  %s %s (initrd %s)\n' "$k" \
			"$(chroot "$root" dpkg-query -W -f '${Package} ${Version}' "linux-image-$k-unsigned" "linux-binary-unsigned-$k" 2>/dev/null)" \
			"$(du -h "$out/boot/initrd.img-$k" | cut -f1)"
	done
	echo "packages: $(chroot "$root" dpkg-query -W -f '.\n' | wc -l)"
} >"$out/manifest"

# ---------------------------------------------------------------- image
used=$(du -sm "$root" | cut -f1)
size=$((used + used / 10 + DISK_FREE_MB))
step "mke2fs -d root (${used} MiB used, image ${size} MiB)"
rm -f "$out/rootfs.ext4"
mke2fs -q -F -t ext4 -L kuproot -E root_owner=0:0 -d "$root" \
	"$out/rootfs.ext4" "${size}M" >/dev/null
echo "image: ${size} MiB (${used} MiB used)" >>"$out/manifest"
step "guest built"
