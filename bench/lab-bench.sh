#!/bin/bash
# Figures of the persistent page store in the QEMU lab guest (make lab-bench).
# Figures only, never assertions; the guest is TCG-emulated, so compare the
# lines with each other (a store write against a memcpy measured in the same
# guest), not with a real machine.
#
#  1. build/bench/ppp-bench -p /dev/pmem0 in the guest, once per extent
#     checksum (xxh3, the default, xxhash64 and crc32c): store write and read
#     bandwidth beside a memcpy there;
#  2. kup dump of a counter holding BENCH_MB (default 256) MiB of touched
#     memory into /dev/pmem0, and its restore, on kernel A;
#  2b. the demo's size (DEMO_MB, default 64 MiB): the dump and the restore
#     with the restore's phases (kup restore -v), beside yardsticks measured
#     in the same guest run: dd of the same size from /dev/pmem0 with
#     O_DIRECT, and build/bench/copy-paths (memcpy into fresh and touched
#     memory, XXH64, process_vm_writev into fresh memory with and without
#     huge pages, pread O_DIRECT from the store);
#  3. a real kernel switch A -> B: `kup kexec load B`, `kup kexec exec`,
#     seconds until the new kernel's userspace answers, and the restore of a
#     tree dumped before it, with the counter checked to go on;
#  4. the demo's switch (tests/vm/t-demo.sh, its own lab instance): what
#     each client outside the guest saw (its longest wait for an answer)
#     and the phases of each kept service's outage (kup status).
#     BENCH_DEMO=no leaves it out;
#  5. the same switch with Debian's criu (3.17 in the guest) by hand, on a
#     fresh boot of A: criu dump of a counter with BENCH_MB MiB and of a
#     redis-server started by hand with BENCH_REDIS_KEYS (default 100000)
#     keys, images in the guest's root file system (criu has no
#     persistent-RAM store), `kup kexec load B` / `kup kexec exec`, criu
#     restore on B, the counter checked to go on and the keys to be there;
#     beside it a kup dump / restore of a second redis-server of the same
#     size through the store, and a table of kup's (section 3) and criu's
#     figures for the counter.  criu's own failures are printed ("criu
#     3.17: <its first error>"), never fatal.  BENCH_CRIU=no leaves it out.
#
#   bench/lab-bench.sh        (KUP_LAB_A / KUP_LAB_B: the two kernels)
#   BENCH_SECTIONS="3 5" bench/lab-bench.sh   only those sections (2 with
#                             2b; default: all)
#
# Runs in its own lab instance (KUP_LAB_NAME, default "bench"), stopped at
# the end.  Exits non-zero only if a step could not run at all.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
lab=$top/tests/vm/lab
export KUP_LAB_NAME=${KUP_LAB_NAME:-bench}
A=${KUP_LAB_A:-6.1.0-47-amd64}
B=${KUP_LAB_B:-6.1.0-56-amd64}
MB=${BENCH_MB:-256}	# the lab's store is 512 MiB
DMB=${DEMO_MB:-64}	# make demo's service
GP=/usr/local/libexec/kup-bench

die() { echo "lab-bench: $*" >&2; "$lab" stop >/dev/null 2>&1; exit 1; }
row() { printf '%-58s %14s\n' "$1" "$2"; }
G() { "$lab" run "$@"; }
mibs() { awk -v m="$1" -v ms="$2" 'BEGIN { printf "%.0f MiB/s", m / (ms / 1000) }'; }
# want N: section N is to run (BENCH_SECTIONS, default all)
want() { case " ${BENCH_SECTIONS:-1 2 3 4 5} " in *" $1 "*) return 0 ;; esac; return 1; }

make -s -C "$top" all progs build/bench/ppp-bench build/bench/copy-paths >/dev/null || die "build failed"
"$lab" build || die "lab build"
tree=$(mktemp -d /tmp/kup-bench-destdir.XXXXXX)
trap 'rm -rf "$tree"; "$lab" stop >/dev/null 2>&1' EXIT
make -s -C "$top" install DESTDIR="$tree" >/dev/null && "$lab" install-kup "$tree" >/dev/null ||
	die "make install + lab install-kup"
# a fresh guest on A with the benchmark programs in $GP (each boot's disk is
# a new overlay)
boot_a() {
	"$lab" stop >/dev/null 2>&1
	"$lab" boot "$A" 2>/dev/null || die "boot $A"
	G "mkdir -p $GP" || die "guest mkdir"
	for f in "$top/build/bench/ppp-bench" "$top/build/bench/copy-paths" "$top/build/progs/counter"; do
		"$lab" cp-in "$f" "$GP/" || die "cp-in $f"
	done
	G 'udevadm settle -t 30; test -b /dev/pmem0' || die "no /dev/pmem0 in the guest"
}
# section 5 boots its own guest
if want 1 || want 2 || want 3; then
	boot_a
	echo "== kup lab benchmarks: guest $(G uname -r), $(G nproc) vCPUs (QEMU TCG), store /dev/pmem0 (memmap=512M!1G)"
fi
# section 3's figures, for section 5's table
k_dump_wall=- k_kexec=- k_restore_wall=-

# 1. the store alone
want 1 && for cs in xxh3 xxhash64 crc32c; do
	echo "-- ppp-bench, $MB MiB blob, $cs extents"
	G "$GP/ppp-bench -s $MB -p /dev/pmem0 -c $cs" | sed 1d || die "ppp-bench"
done

# 2. a dump and a restore on one kernel
start_counter() {	# [MiB [OUTPUT]]
	local o=${2:-/root/bench-counter.out}
	G "rm -f $o; setsid $GP/counter -m ${1:-$MB} -i 100 >$o 2>&1 </dev/null &
	   for i in \$(seq 600); do grep -q '^C 3 ' $o && exit 0; sleep 0.2; done; exit 1" ||
		die "the counter did not start"
	pid=$(G "pgrep -n -f '^$GP/counter'")
}
ms_of() { sed -n 's/.* pages in \([0-9.]*\) ms.*/\1/p' <<<"$1" | head -n1; }
# gtime CMD: runs the shell command CMD in the guest, its output followed by
# a line "WALL <ms>" (the guest's clock around it); CMD's exit status
gtime() { G "t0=\$(date +%s%N); $1; rc=\$?; echo WALL \$(( (\$(date +%s%N) - t0) / 1000000 )); exit \$rc"; }
wall_of() { sed -n 's/^WALL //p' <<<"$1" | tail -n1; }
# goes_on OUTPUT LAST: the counter writing OUTPUT gets past LAST
goes_on() {
	G "for i in \$(seq 150); do grep -q '^C $(($2 + 3)) ' $1 && exit 0; sleep 0.2; done; exit 1"
}
last_of() { G "awk '\$1 == \"C\" { v = \$2 } END { print v }' $1"; }

if want 2; then
	echo "-- kup dump / restore of a counter with $MB MiB, $(G uname -r)"
	G 'kup ppp format /dev/pmem0 --force' >/dev/null || die "kup ppp format"
	start_counter
	out=$(G "kup dump -t $pid --ppp /dev/pmem0 2>&1") || die "kup dump: $out"
	d=$(ms_of "$out")
	row "kup dump --ppp /dev/pmem0" "$d ms"
	row "  bandwidth" "$(mibs "$MB" "$d")"
	out=$(G 'kup restore --ppp /dev/pmem0 -d 2>&1') || die "kup restore: $out"
	r=$(ms_of "$out")
	row "kup restore --ppp /dev/pmem0 -d" "$r ms"
	row "  bandwidth" "$(mibs "$MB" "$r")"
	G "kill -9 $pid" >/dev/null 2>&1

	# 2b. the demo's size, the restore's phases beside the yardsticks
	echo "-- the demo's size: kup dump / restore -v of a counter with $DMB MiB, beside copies of $DMB MiB"
	G 'kup ppp format /dev/pmem0 --force' >/dev/null || die "kup ppp format"
	start_counter "$DMB"
	out=$(G "kup dump -t $pid --ppp /dev/pmem0 2>&1") || die "kup dump: $out"
	row "kup dump --ppp /dev/pmem0" "$(ms_of "$out") ms"
	out=$(G 'kup restore --ppp /dev/pmem0 -d -v 2>&1') || die "kup restore: $out"
	row "kup restore --ppp /dev/pmem0 -d" "$(ms_of "$out") ms"
	sed -n 's/.*debug: restore: /  /p' <<<"$out"	# its phases
	G "kill -9 $pid" >/dev/null 2>&1
	row "dd $DMB MiB from /dev/pmem0 (O_DIRECT, 8 MiB blocks)" \
		"$(G "dd if=/dev/pmem0 of=/dev/null bs=8M count=$((DMB / 8)) iflag=direct 2>&1" |
		   sed -n 's/.* copied, \([0-9.]*\) s.*/\1/p' | awk '{ printf "%.0f ms", $1 * 1000 }')"
	G "$GP/copy-paths -p /dev/pmem0 $DMB" |
		while read -r name v; do row "${name%_ms} ($DMB MiB)" "$v ms"; done
fi

# 3. across a kexec
if want 3; then
	echo "-- kernel switch $A -> $B"
	start_counter
	out=$(G "kup kexec load $B 2>&1") || die "kup kexec load $B: $out"
	out=$(gtime "kup dump -t $pid --ppp /dev/pmem0 2>&1") || die "kup dump: $out"
	k_dump=$(ms_of "$out") k_dump_wall=$(wall_of "$out")
	row "kup dump --ppp /dev/pmem0 (before the kexec)" "$k_dump ms"
	last=$(last_of /root/bench-counter.out)
	t0=$(date +%s.%N)
	"$lab" run 'kup kexec exec' >/dev/null 2>&1	# the connection drops
	"$lab" wait-boot "$B" --timeout 300 2>/dev/null || die "the guest did not come back on $B"
	t1=$(date +%s.%N)
	k_kexec=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	row "kup kexec exec -> $B answering over ssh" "$k_kexec s"
	row "  systemd-analyze on $B" "$(G 'systemd-analyze 2>/dev/null | head -n1 | sed "s/.*= //"')"
	G 'udevadm settle -t 30; for i in $(seq 100); do test -b /dev/pmem0 && exit 0; sleep 0.2; done; exit 1' ||
		die "/dev/pmem0 did not come back"
	t2=$(date +%s.%N)
	out=$(G 'kup ppp verify /dev/pmem0 2>&1') || die "kup ppp verify: $out"
	t3=$(date +%s.%N)
	row "kup ppp verify (every extent of the checkpoint)" "$(awk -v a="$t2" -v b="$t3" 'BEGIN { printf "%.0f ms", (b - a) * 1000 }')"
	out=$(gtime 'kup restore --ppp /dev/pmem0 -d 2>&1') || die "kup restore: $out"
	k_restore=$(ms_of "$out") k_restore_wall=$(wall_of "$out")
	row "kup restore --ppp /dev/pmem0 -d on $B" "$k_restore ms"
	if goes_on /root/bench-counter.out "$last"; then
		row "  the counter goes on from $last" "yes"
	else
		row "  the counter goes on from $last" "NO"
		exit 1
	fi
	"$lab" stop >/dev/null 2>&1
fi

# 4. the demo's switch
if want 4 && [ "${BENCH_DEMO:-yes}" != no ]; then
	echo "-- the demo's switch (tests/vm/t-demo.sh): openvpn, sshd, redis kept, clients outside"
	sum=$tree/demo-summary
	KUP_LAB_NAME=bench-demo DEMO_SUMMARY=$sum "$top/tests/vm/t-demo.sh" >"$tree/demo.log" 2>&1
	rc=$?
	if [ -s "$sum" ]; then
		cat "$sum"
		[ $rc = 0 ] || echo "  (the demo failed: $(grep -m3 '^not ok' "$tree/demo.log" | tr '\n' ' '))"
	else
		echo "  the demo did not get to its switch:"
		grep -E '^(not ok|# )' "$tree/demo.log" | tail -n 8 | sed 's/^/  /'
	fi
fi

# 5. the same switch with Debian's criu by hand, on a fresh boot of A.
# criu keeps its images in files, here in the guest's root file system (ext4
# on the virtio disk): written by criu dump, synced (timed apart; kup kexec
# exec syncs too), read back by criu restore on B.  The processes get pids
# above 20000 (ns_last_pid), which B's boot has not taken: criu restores a
# process with its pid as kup does.  Beside them, a second redis-server of
# the same size goes through kup's store across the same kexec.  criu's and
# kup's failures here are printed, not fatal: figures only.
{ [ "${BENCH_CRIU:-yes}" = no ] || ! want 5; } && exit 0
RK=${BENCH_REDIS_KEYS:-100000}
CD=/root/criu		# criu's images, one directory per tree
boot_a
cv=$(G 'criu --version 2>/dev/null' | sed -n 's/^Version: *//p')
if [ -z "$cv" ]; then
	echo "-- criu: not in the guest (tests/vm/guest.conf installs it), section 5 left out"
	exit 0
fi
C="criu $cv"

# criu_run ACTION DIR ARGS...: criu ACTION -D DIR ARGS --display-stats in the
# guest, its log in DIR/ACTION.log; sets c_ms (the guest's clock around it)
# and c_stats (criu's own times, one line), or c_err (the first errors of its
# log)
criu_run() {
	local act=$1 dir=$2 out
	shift 2
	c_ms= c_err= c_stats=
	if out=$(gtime "mkdir -p $dir && criu $act -D $dir -o $act.log --display-stats $* 2>&1"); then
		c_ms=$(wall_of "$out")
		c_stats=$(grep -i ' time: ' <<<"$out" | sed 's/^ *//' | paste -sd ',' - | sed 's/,/, /g')
		return 0
	fi
	c_err=$(G "grep -a -m2 'Error' $dir/$act.log 2>/dev/null" | sed 's/^([ 0-9.]*) //' | paste -sd ';' -)
	[ -n "$c_err" ] || c_err=$(grep -v '^WALL ' <<<"$out" | tail -n 2 | paste -sd ';' -)
	return 1
}
# start_redis PORT: Debian's redis-server started by hand on 127.0.0.1:PORT,
# no persistence, RK keys of 100 bytes (DEBUG POPULATE); sets rpid
start_redis() {
	local d=/root/redis-$1
	rpid=
	G "mkdir -p $d; setsid redis-server --port $1 --bind 127.0.0.1 --save '' --appendonly no \
		--enable-debug-command yes --dir $d --pidfile $d/pid --logfile $d/log </dev/null >/dev/null 2>&1 &
	   for i in \$(seq 300); do redis-cli -p $1 ping 2>/dev/null | grep -q PONG && break; sleep 0.2; done
	   redis-cli -p $1 debug populate $RK bench 100 >/dev/null && [ \"\$(redis-cli -p $1 dbsize)\" = $RK ]" ||
		return 1
	rpid=$(G "cat $d/pid")
	[ -n "$rpid" ]
}
keys_there() { [ "$(G "redis-cli -p $1 dbsize" 2>/dev/null)" = "$RK" ] && echo yes || echo NO; }
failed() { row "$1" "failed"; echo "  $2"; }

echo "-- $C beside kup, by hand: a counter with $MB MiB and redis-server with $RK keys, $A -> $B"
G 'kup ppp format /dev/pmem0 --force' >/dev/null || die "kup ppp format"
G 'echo 20000 >/proc/sys/kernel/ns_last_pid' || die "ns_last_pid"
start_counter "$MB" /root/criu-counter.out
cpid=$pid
rc_pid= rk_pid=
if start_redis 6390; then rc_pid=$rpid; else echo "  redis-server for criu did not start with $RK keys: left out"; fi
if start_redis 6391; then rk_pid=$rpid; else echo "  redis-server for kup did not start with $RK keys: left out"; fi
[ -n "$rc_pid" ] && row "  redis-server's resident memory" "$(G "awk '/^VmRSS/ { printf \"%.0f MiB\", \$2 / 1024 }' /proc/$rc_pid/status")"
out=$(G "kup kexec load $B 2>&1") || die "kup kexec load $B: $out"

c_dump=failed c_sync=- c_restore=failed c_goes=no
if criu_run dump $CD/counter -t "$cpid"; then
	c_dump=$c_ms
	row "criu dump -t PID -D DIR (the counter, $MB MiB)" "$c_ms ms"
	[ -z "$c_stats" ] || echo "  criu: $c_stats"
	row "  its images in the guest's root file system" "$(G "du -sm $CD/counter | cut -f1") MiB"
else
	failed "criu dump -t PID -D DIR (the counter, $MB MiB)" "$C: $c_err"
fi
clast=$(last_of /root/criu-counter.out)
rc_dumped=no rk_dumped=no
if [ -n "$rc_pid" ]; then
	if criu_run dump $CD/redis -t "$rc_pid"; then
		rc_dumped=yes
		row "criu dump -t PID -D DIR (redis-server, $RK keys)" "$c_ms ms"
		row "  its images" "$(G "du -sm $CD/redis | cut -f1") MiB"
	else
		failed "criu dump -t PID -D DIR (redis-server, $RK keys)" "$C: $c_err"
	fi
fi
if [ -n "$rk_pid" ]; then
	if out=$(gtime "kup dump -t $rk_pid --ppp /dev/pmem0 2>&1"); then
		rk_dumped=yes
		row "kup dump --ppp /dev/pmem0 (redis-server, $RK keys)" "$(wall_of "$out") ms"
	else
		failed "kup dump --ppp /dev/pmem0 (redis-server, $RK keys)" "$(grep -v '^WALL ' <<<"$out" | tail -n 2 | paste -sd ';' -)"
	fi
fi
out=$(gtime sync)
c_sync=$(wall_of "$out")
row "sync (criu's images to the disk)" "$c_sync ms"

t0=$(date +%s.%N)
"$lab" run 'kup kexec exec' >/dev/null 2>&1	# the connection drops
"$lab" wait-boot "$B" --timeout 300 2>/dev/null || die "the guest did not come back on $B"
t1=$(date +%s.%N)
c_kexec=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
row "kup kexec exec -> $B answering over ssh" "$c_kexec s"
G 'udevadm settle -t 30; for i in $(seq 100); do test -b /dev/pmem0 && exit 0; sleep 0.2; done; exit 1' ||
	die "/dev/pmem0 did not come back"

if [ "$c_dump" != failed ]; then
	if criu_run restore $CD/counter -d; then
		c_restore=$c_ms
		row "criu restore -D DIR -d on $B (the counter)" "$c_ms ms"
		[ -z "$c_stats" ] || echo "  criu: $c_stats"
		goes_on /root/criu-counter.out "$clast" && c_goes=yes || c_goes=NO
		row "  the counter goes on from $clast" "$c_goes"
	else
		failed "criu restore -D DIR -d on $B (the counter)" "$C: $c_err"
	fi
fi
if [ $rc_dumped = yes ]; then
	if criu_run restore $CD/redis -d; then
		row "criu restore -D DIR -d on $B (redis-server)" "$c_ms ms"
		row "  its $RK keys" "$(keys_there 6390)"
	else
		failed "criu restore -D DIR -d on $B (redis-server)" "$C: $c_err"
	fi
fi
if [ $rk_dumped = yes ]; then
	if out=$(gtime 'kup restore --ppp /dev/pmem0 -d -v 2>&1'); then
		row "kup restore --ppp /dev/pmem0 -d -v on $B (redis-server)" "$(wall_of "$out") ms"
		row "  its $RK keys" "$(keys_there 6391)"
		row "  the restore (kup's own figure)" "$(ms_of "$out") ms"
		sed -n 's/.*debug: restore: /    /p' <<<"$out"	# its phases
		row "  then the store's scrub (all of its 512 MiB)" \
			"$(sed -n 's/.* scrubbed (\([0-9]*\) ms).*/\1 ms/p' <<<"$out")"
	else
		failed "kup restore --ppp /dev/pmem0 -d on $B (redis-server)" "$(grep -v '^WALL ' <<<"$out" | tail -n 2 | paste -sd ';' -)"
	fi
fi

ms() { case $1 in *[0-9]) echo "$1 ms" ;; *) echo "$1" ;; esac; }
secs() { case $1 in *[0-9]) echo "$1 s" ;; *) echo "$1" ;; esac; }
echo "-- the counter with $MB MiB, $A -> $B: kup (section 3) beside $C (ms: the guest's clock around the command)"
printf '%-40s %16s %16s\n' "" "kup" "$C" \
	"dump" "$(ms "$k_dump_wall")" "$(ms "$c_dump")" \
	"  images synced to the disk" "-" "$(ms "$c_sync")" \
	"kexec exec -> $B answering" "$(secs "$k_kexec")" "$(secs "$c_kexec")" \
	"restore" "$(ms "$k_restore_wall")" "$(ms "$c_restore")" \
	"the counter goes on" "yes" "$c_goes"
