#!/bin/bash
# Figures of the persistent page store in the QEMU lab guest (make lab-bench).
# Figures only, never assertions; the guest is TCG-emulated, so compare the
# lines with each other (a store write against a memcpy measured in the same
# guest), not with a real machine.
#
#  1. build/bench/ppp-bench -p /dev/pmem0 in the guest, once per extent
#     checksum (xxhash64, the default, and crc32c): store write and read
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
#     BENCH_DEMO=no leaves it out.
#
#   bench/lab-bench.sh        (KUP_LAB_A / KUP_LAB_B: the two kernels)
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

make -s -C "$top" all progs build/bench/ppp-bench build/bench/copy-paths >/dev/null || die "build failed"
"$lab" build || die "lab build"
tree=$(mktemp -d /tmp/kup-bench-destdir.XXXXXX)
trap 'rm -rf "$tree"; "$lab" stop >/dev/null 2>&1' EXIT
make -s -C "$top" install DESTDIR="$tree" >/dev/null && "$lab" install-kup "$tree" >/dev/null ||
	die "make install + lab install-kup"
"$lab" stop >/dev/null 2>&1
"$lab" boot "$A" 2>/dev/null || die "boot $A"
G "mkdir -p $GP" || die "guest mkdir"
for f in "$top/build/bench/ppp-bench" "$top/build/bench/copy-paths" "$top/build/progs/counter"; do
	"$lab" cp-in "$f" "$GP/" || die "cp-in $f"
done
G 'udevadm settle -t 30; test -b /dev/pmem0' || die "no /dev/pmem0 in the guest"

echo "== kup lab benchmarks: guest $(G uname -r), $(G nproc) vCPUs (QEMU TCG), store /dev/pmem0 (memmap=512M!1G)"

# 1. the store alone
for cs in xxhash64 crc32c; do
	echo "-- ppp-bench, $MB MiB blob, $cs extents"
	G "$GP/ppp-bench -s $MB -p /dev/pmem0 -c $cs" | sed 1d || die "ppp-bench"
done

# 2. a dump and a restore on one kernel
start_counter() {	# [MiB]
	G "rm -f /root/bench-counter.out; setsid $GP/counter -m ${1:-$MB} -i 100 >/root/bench-counter.out 2>&1 </dev/null &
	   for i in \$(seq 600); do grep -q '^C 3 ' /root/bench-counter.out && exit 0; sleep 0.2; done; exit 1" ||
		die "the counter did not start"
	pid=$(G "pgrep -n -f '^$GP/counter'")
}
ms_of() { sed -n 's/.* pages in \([0-9.]*\) ms.*/\1/p' <<<"$1" | head -n1; }

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

# 3. across a kexec
echo "-- kernel switch $A -> $B"
start_counter
out=$(G "kup kexec load $B 2>&1") || die "kup kexec load $B: $out"
out=$(G "kup dump -t $pid --ppp /dev/pmem0 2>&1") || die "kup dump: $out"
row "kup dump --ppp /dev/pmem0 (before the kexec)" "$(ms_of "$out") ms"
last=$(G "awk '\$1 == \"C\" { v = \$2 } END { print v }' /root/bench-counter.out")
t0=$(date +%s.%N)
"$lab" run 'kup kexec exec' >/dev/null 2>&1	# the connection drops
"$lab" wait-boot "$B" --timeout 300 2>/dev/null || die "the guest did not come back on $B"
t1=$(date +%s.%N)
row "kup kexec exec -> $B answering over ssh" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f s", b - a }')"
row "  systemd-analyze on $B" "$(G 'systemd-analyze 2>/dev/null | head -n1 | sed "s/.*= //"')"
G 'udevadm settle -t 30; for i in $(seq 100); do test -b /dev/pmem0 && exit 0; sleep 0.2; done; exit 1' ||
	die "/dev/pmem0 did not come back"
t2=$(date +%s.%N)
out=$(G 'kup ppp verify /dev/pmem0 2>&1') || die "kup ppp verify: $out"
t3=$(date +%s.%N)
row "kup ppp verify (every extent of the checkpoint)" "$(awk -v a="$t2" -v b="$t3" 'BEGIN { printf "%.0f ms", (b - a) * 1000 }')"
out=$(G 'kup restore --ppp /dev/pmem0 -d 2>&1') || die "kup restore: $out"
row "kup restore --ppp /dev/pmem0 -d on $B" "$(ms_of "$out") ms"
if G "for i in \$(seq 100); do grep -q '^C $((last + 3)) ' /root/bench-counter.out && exit 0; sleep 0.2; done; exit 1"; then
	row "  the counter goes on from $last" "yes"
else
	row "  the counter goes on from $last" "NO"
	exit 1
fi
"$lab" stop >/dev/null 2>&1

# 4. the demo's switch
[ "${BENCH_DEMO:-yes}" = no ] && exit 0
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
