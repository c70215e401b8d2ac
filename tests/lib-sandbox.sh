# A service's sandbox built the way systemd builds it for a unit's start
# (src/core/namespace.c: setup_namespace), with unshare(1) and mount(8), for
# tests/integ/t-sandbox*.sh.  Sourced after tests/lib.sh.
#
# sandbox_start OUT DIRECTIVE... -- CMD [ARGS...]: start CMD (start_bg, output
# appended to OUT) in a mount namespace of its own set up for the directives,
# in systemd's order, and print its pid.  The directives it mimics:
#   PrivateTmp=yes        /tmp and /var/tmp: binds of fresh directories
#                         /tmp/systemd-private-BOOTID-UNIT-XXXXXX/tmp and
#                         /var/tmp/systemd-private-BOOTID-UNIT-XXXXXX/tmp
#   PrivateDevices=yes    /dev: a tmpfs (nosuid,noexec,strictatime,mode=755)
#                         with the nodes null, zero, full, random, urandom, tty,
#                         ptmx -> pts/ptmx, binds of /dev/pts and /dev/shm, the
#                         symlinks fd, stdin, stdout, stderr, log; the old /dev
#                         unmounted, the tmpfs moved onto /dev, read-only
#   ProtectHome=yes       /home, /root, /run/user: an empty mode 000 directory
#                         bound over them, read-only, nosuid, nodev, noexec
#   ReadOnlyPaths=P       P bound onto itself, then read-only
#   ProtectKernelTunables=yes  /proc/sys and /sys so (a second mount of each
#                         on itself, submounts included)
#   ProtectControlGroups=yes   /sys/fs/cgroup so
#   ProtectProc=invisible a proc of its own on /proc (hidepid=invisible), the
#                         host's unmounted; the
#                         read-only binds of ProtectKernelTunables= are of it
#   BindPaths=A:B         A bound (recursively) on B
#   ReadWritePaths=P      P bound onto itself, writable under ProtectSystem=
#   ProtectSystem=full    /usr, /boot, /efi and /etc read-only
#   ProtectSystem=strict  every mount read-only but /dev, /proc, /sys, the
#                         ReadWritePaths= and the private /tmp and /var/tmp
#   ProtectHostname=yes   a UTS namespace of its own, made with the mount one
#   NetworkNamespacePath=P  CMD runs in network namespace P (joined before
#                         the user namespace, as systemd does)
#   PrivateUsers=UID:GID  a user namespace made last, with root and UID/GID
#                         mapped to themselves, setgroups denied, and CMD run
#                         as UID:GID in it (User=, Group=; 0:0 keeps root and
#                         its capabilities there): tests/progs/privusers
# The namespace is a slave of the host's while it is built and every mount
# is made shared at the end (MountFlags= unset: systemd's default).  The
# unit's name is $SB_UNIT; $SB is a directory outside /tmp for the test's
# files (a private /tmp hides $T), $SB_PROGS a copy of $PROGS in it.
SB_UNIT=kup-sb-$$.service
SB=/var/lib/kup-sb-$$
mkdir -p "$SB"
# the test programs, where a sandbox sees them (a private /tmp or
# ProtectHome= may hide the build tree)
SB_PROGS=$SB/progs
mkdir -p "$SB_PROGS" && cp -a "$PROGS"/. "$SB_PROGS"/
at_exit "rm -rf '$SB' /tmp/systemd-private-*-'$SB_UNIT'-* /var/tmp/systemd-private-*-'$SB_UNIT'-*"

_sb_bootid() { tr -d '\n-' < /proc/sys/kernel/random/boot_id; }

# _sb_private BASE: a fresh systemd-private directory in BASE, its tmp path
_sb_private() {
	local d
	d=$(mktemp -d "$1/systemd-private-$(_sb_bootid)-$SB_UNIT-XXXXXX") || return 1
	chmod 700 "$d" && mkdir -m 1777 "$d/tmp" && echo "$d/tmp"
}

sandbox_start() {
	local out=$1 s='set -e' ro_paths= rw_paths= rw_keep= strict= t v a b uts= users=()
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		v=${1#*=}
		case $1 in
		PrivateTmp=yes)
			t=$(_sb_private /tmp) && v=$(_sb_private /var/tmp) || return 1
			s+="; mount --rbind '$t' /tmp; mount --rbind '$v' /var/tmp"
			rw_keep+=" /tmp /var/tmp";;
		PrivateDevices=yes)
			mkdir -p "$SB/.dev"
			s+="; mount -t tmpfs -o nosuid,noexec,strictatime,mode=755,size=4m,nr_inodes=65536 tmpfs '$SB/.dev'"
			s+="; cd '$SB/.dev'; mkdir pts shm; mount --bind /dev/pts pts; mount --bind /dev/shm shm"
			s+="; if mountpoint -q /dev/mqueue; then mkdir mqueue; mount --bind /dev/mqueue mqueue; fi"
			s+="; ln -s pts/ptmx ptmx; for n in null zero full random urandom tty; do cp -a /dev/\$n \$n; done"
			s+="; ln -s /proc/self/fd fd; ln -s /proc/self/fd/0 stdin; ln -s /proc/self/fd/1 stdout"
			s+="; ln -s /proc/self/fd/2 stderr; ln -s /run/systemd/journal/dev-log log; cd /"
			s+="; umount -R -l /dev; mount --move '$SB/.dev' /dev; mount -o remount,bind,ro,nosuid,noexec /dev";;
		ProtectHome=yes)
			mkdir -p "$SB/.inaccessible" && chmod 000 "$SB/.inaccessible"
			for t in /home /root /run/user; do
				[ -d "$t" ] || continue
				s+="; mount --bind '$SB/.inaccessible' $t; mount -o remount,bind,ro,nosuid,nodev,noexec $t"
			done;;
		ProtectProc=invisible)
			s+="; umount -R -l /proc; mount -t proc -o nosuid,nodev,noexec,hidepid=invisible proc /proc";;
		ProtectKernelTunables=yes)
			for t in /proc/sys /proc/sysrq-trigger /proc/acpi /sys; do [ -e $t ] && ro_paths+=" $t"; done;;
		ProtectControlGroups=yes) ro_paths+=" /sys/fs/cgroup";;
		ReadOnlyPaths=*) ro_paths+=" $v";;
		ReadWritePaths=*) rw_paths+=" $v";;
		BindPaths=*)
			a=${v%%:*} b=${v#*:}
			s+="; mount --rbind '$a' '$b'";;
		ProtectSystem=strict) strict=1;;
		ProtectHostname=yes) uts=-u;;
		PrivateUsers=*:*) users+=("$SB_PROGS/privusers" "${v%%:*}" "${v#*:}");;
		NetworkNamespacePath=*) users=(nsenter --net="$v" "${users[@]}");;
		ProtectSystem=full)
			for t in /usr /boot /efi /etc; do [ -d $t ] && ro_paths+=" $t"; done;;
		*) echo "sandbox_start: unknown directive $1" >&2; return 1;;
		esac
		shift
	done
	shift
	# read-only recursively, as systemd does: every mount at or below
	for t in $ro_paths; do
		s+="; mount --rbind '$t' '$t'; awk '{ print \$5 }' /proc/self/mountinfo | grep -v '\\\\' | sort -u |"
		s+=" while read -r m; do case \$m in '$t'|'$t'/*) mount -o remount,bind,ro \"\$m\";; esac; done"
	done
	for t in $rw_paths; do s+="; mount --rbind '$t' '$t'"; done
	if [ -n "$strict" ]; then
		# every mount point but the API file systems and the writable paths
		s+="; awk '{ print \$5 }' /proc/self/mountinfo | grep -v '\\\\' | sort -u | while read -r m; do"
		s+=" case \$m in /dev|/dev/*|/proc|/proc/*|/sys|/sys/*) continue;; esac;"
		for t in $rw_paths $rw_keep; do s+=" [ \"\$m\" = '$t' ] && continue;"; done
		s+=" mount -o remount,bind,ro \"\$m\" 2>/dev/null || true; done"
	fi
	s+="; mount --make-rshared /; cd /"	# a service's working directory
	start_bg "$out" unshare -m $uts --propagation slave sh -c "$s; exec \"\$@\" < /dev/null" sh \
		"${users[@]}" "$@"
}

# mountinfo_norm PID: PID's mount table as the restore compares it: no
# mount ids, device numbers or peer group numbers, a systemd-private
# directory's name without its random part, no nsfs mounts, sorted.
mountinfo_norm() {
	awk '{
		sep = 0; s = ""
		for (i = 4; i <= NF; i++) {
			f = $i
			if (f == "-") sep = 1
			else if (!sep && i > 6) { sub(/:[0-9]+$/, "", f) }
			if (i == 4) gsub(/systemd-private-[^\/]*/, "systemd-private-*", f)
			s = s " " f
		}
		if ($0 !~ / - nsfs /) print s
	}' "/proc/$1/mountinfo" | sort
}
