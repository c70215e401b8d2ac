#!/bin/bash
# Smoke test of the kup QEMU lab: boot 6.1.0-47, write 64 MiB of random data
# to /dev/pmem0, kexec to 6.1.0-56 and back (and to the cloud flavour if the
# guest has it), and check after each kexec that the kernel changed and the
# data reads back bit-exact.  Also prints (does not assert) the kexec time and
# the /dev/pmem0 bandwidth next to a plain memory copy.
#
# Output: "ok N - ..." / "not ok N - ..." lines, "# ..." notes, and a last
# line "N passed, N failed".  Exit status 0 only if nothing failed.
#
# Uses its own lab instance (KUP_LAB_NAME, default "smoke") and stops it at
# the end.  KUP_LAB_KEEP=1 leaves the guest running for inspection.
set -u

export KUP_LAB_NAME=${KUP_LAB_NAME:-smoke}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
OLD=${KUP_LAB_SMOKE_OLD:-6.1.0-47-amd64}
NEW=${KUP_LAB_SMOKE_NEW:-6.1.0-56-amd64}
CLOUD=${KUP_LAB_SMOKE_CLOUD:-6.1.0-56-cloud-amd64}
MIB=64

# ---------------------------------------------------------------- build, boot
t=$(date +%s)
if L build; then
	ok "lab build ($(($(date +%s) - t))s)"
else
	bail "lab build"
fi
"$lab" stop >/dev/null 2>&1
kernels=$("$lab" kernels)

t=$(date +%s)
L boot "$OLD" || bail "boot $OLD"
ok "boot $OLD: guest answers ($(($(date +%s) - t))s from qemu start)"

k=$(L run uname -r)
[ "$k" = "$OLD" ] && ok "uname -r is $OLD" || not_ok "uname -r is $OLD (got '$k')"

size=$(L run 'udevadm settle -t 30; blockdev --getsize64 /dev/pmem0')
if [ "$size" = $((512 << 20)) ]; then
	ok "/dev/pmem0 is there, 512 MiB (memmap=512M!1G)"
else
	bail "/dev/pmem0 is there, 512 MiB (got '$size')"
fi

# ---------------------------------------------------------------- write
# Random data made in RAM first, so that dd measures /dev/pmem0 and not
# /dev/urandom; O_DIRECT so that it does not measure the page cache.
want=$(L run "head -c ${MIB}M /dev/urandom >/dev/shm/rand && sha256sum </dev/shm/rand | cut -d' ' -f1")
note "sha256 of $MIB MiB random data: $want"
wr=$(L run "dd if=/dev/shm/rand of=/dev/pmem0 bs=1M count=$MIB oflag=direct conv=fsync 2>&1 | tail -n1; rm -f /dev/shm/rand")
note "write $MIB MiB to /dev/pmem0 (dd oflag=direct): $wr"
zz=$(L run "dd if=/dev/zero of=/dev/null bs=1M count=256 2>&1 | tail -n1")
note "memory copy baseline (dd if=/dev/zero of=/dev/null bs=1M count=256): $zz"

# read_back KERNEL-LABEL: sha256 of the first MIB MiB of /dev/pmem0, bandwidth noted.
read_back() {
	local sha bw
	# Bandwidth to /dev/null (sha256sum would be the bottleneck), then the hash.
	bw=$(L run "dd if=/dev/pmem0 of=/dev/null bs=1M count=$MIB iflag=direct 2>&1 | tail -n1")
	note "read $MIB MiB from /dev/pmem0 on $1 (dd iflag=direct): $bw"
	sha=$(L run "head -c ${MIB}M /dev/pmem0 | sha256sum | cut -d' ' -f1")
	if [ -n "$want" ] && [ "$sha" = "$want" ]; then
		ok "$MIB MiB on /dev/pmem0 read back bit-exact on $1"
	else
		not_ok "$MIB MiB on /dev/pmem0 read back bit-exact on $1 (sha256 $sha)"
	fi
}
read_back "$OLD (same boot)"

# ---------------------------------------------------------------- kexec
# kexec_to KERNEL MODE
kexec_to() {
	local from secs k
	from=$(L run uname -r)
	if ! L kexec "$1" "--$2"; then
		not_ok "kexec $from -> $1 ($2)"
		return 1
	fi
	secs=$(cat "$("$lab" state)/last-kexec-seconds" 2>/dev/null)
	note "kexec -e ($2) to the new kernel answering: ${secs}s"
	note "new kernel's own view: $(L run 'systemd-analyze | head -n1')"
	k=$(L run uname -r)
	if [ "$k" = "$1" ] && [ "$k" != "$from" ]; then
		ok "kexec $from -> $1 ($2): uname -r changed to $k"
	else
		not_ok "kexec $from -> $1 ($2): uname -r is '$k'"
		return 1
	fi
}

kexec_to "$NEW" direct || bail "cannot continue without the new kernel"
read_back "$NEW after kexec"
kexec_to "$OLD" systemd || bail "cannot continue without the old kernel"
read_back "$OLD after kexec back"
if grep -qx "$CLOUD" <<<"$kernels"; then
	kexec_to "$CLOUD" direct && read_back "$CLOUD after kexec"
else
	note "no $CLOUD in the guest, skipping the cloud flavour"
fi
finish
