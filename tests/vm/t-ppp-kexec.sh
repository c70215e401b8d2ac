#!/bin/bash
# A checkpoint carried across real kernel switches in the persistent page
# store (/dev/pmem0 of memmap=512M!1G), in the QEMU lab:
#
#  1. on kernel A (6.1.0-47) a tree -- a counter holding 256 MiB of touched
#     memory, and a child that reads the clocks through the vDSO in a loop --
#     is dumped into the store with `kup dump --ppp`; `kup kexec load B` +
#     `kup kexec exec` switch to kernel B (6.1.0-56); there `kup ppp verify`
#     passes and `kup restore --ppp` brings the tree back: same pids, the
#     counter goes on with no gap, its memory sum is unchanged;
#  4. on B the restored child keeps reading correct times (clock_gettime,
#     gettimeofday, time: the vDSO changed under it), its monotonic clock
#     never goes back;
#  2. the same B -> A;
#  3. a store corrupted on purpose before a kexec is detected after it
#     (verify names the extent, the restore refuses, nothing is restored),
#     and a dump killed with SIGKILL publishes nothing.
#
# Prints the store's figures (dump and restore time, MB/s) beside a memory
# copy in the guest, and the kexec time.  Needs kup installed in the guest
# (tests/vm/run-lab-tests.sh does it); KUP_LAB_KEEP=1 leaves the guest up.
set -u

export KUP_LAB_NAME=${KUP_LAB_NAME:-ppp-kexec}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
A=${KUP_LAB_A:-6.1.0-47-amd64}
B=${KUP_LAB_B:-6.1.0-56-amd64}
PROGS=${PROGS:-$top/build/progs}
MB=${KUP_LAB_MB:-256}	# the store is 512 MiB
GP=/usr/local/libexec/kup-tests	# test programs in the guest
OUT=/root/kup-t		# their output: on the disk, which survives the kexec

for p in counter clocks; do
	[ -x "$PROGS/$p" ] || bail "$PROGS/$p is missing (make progs)"
done

# ------------------------------------------------------------------ boot A
L build || bail "lab build"
"$lab" stop >/dev/null 2>&1
L boot "$A" || bail "boot $A"
ok "boot $A"
R 'command -v kup && kup --help >/dev/null' ||
	bail "kup is not installed in the guest (run tests/vm/run-lab-tests.sh, or lab install-kup)"
R "mkdir -p $GP $OUT" || bail "mkdir in the guest"
for p in counter clocks; do
	L cp-in "$PROGS/$p" "$GP/$p" || bail "cp-in $p"
done
R 'udevadm settle -t 30; test -b /dev/pmem0' || bail "/dev/pmem0 is there"
check "kup ppp format /dev/pmem0" 'kup ppp format /dev/pmem0 --force'
note "$(L run 'kup ppp status /dev/pmem0 | head -n 5')"

# start_tree TAG: a counter with $MB MiB (the root) and a clocks child, in a
# session of their own, output on the disk; pids far above what a boot uses
# (an early-boot restorer that creates the pids first is another matter).
start_tree() {
	R "echo \$((\$(cat /proc/sys/kernel/pid_max) / 2)) > /proc/sys/kernel/ns_last_pid;
	   setsid sh -c '$GP/clocks -i 100 >>$OUT/clocks-$1.out 2>&1 &
	                 exec $GP/counter -m $MB -i 100 >>$OUT/counter-$1.out 2>&1' </dev/null &
	   sleep 0.5; pgrep -n -f '^$GP/counter'" || return 1
	pid=$(tail -n1 <<<"$R_OUT")
	R "for i in \$(seq 300); do grep -q '^C 3 ' $OUT/counter-$1.out && exit 0; sleep 0.2; done; exit 1" ||
		return 1
	cpid=$(L run "pgrep -P $pid -f clocks")
	sum=$(L run "awk '\$1 == \"MEM\" { print \$2 }' $OUT/counter-$1.out")
	[ -n "$pid" ] && [ -n "$cpid" ] && [ -n "$sum" ]
}

# dump_to_store TAG
dump_to_store() {
	if R "kup dump -t $pid --ppp /dev/pmem0 2>&1"; then
		ok "kup dump -t $pid --ppp /dev/pmem0 on $(L run uname -r) ($1)"
		note "$R_OUT"
		dump_line=$R_OUT
	else
		not_ok "kup dump -t $pid --ppp /dev/pmem0 ($1)"
		note "$R_OUT"
		return 1
	fi
	check "the dumped tree is gone" "sleep 0.5; ! kill -0 $pid 2>/dev/null && ! kill -0 $cpid 2>/dev/null"
	check "kup ppp verify passes before the kexec" 'kup ppp verify /dev/pmem0'
	lines=$(L run "wc -l < $OUT/counter-$1.out")
	last=$(L run "awk '\$1 == \"C\" { v = \$2 } END { print v }' $OUT/counter-$1.out")
	mono=$(L run "awk '\$1 == \"T\" { v = \$7 } END { print v }' $OUT/clocks-$1.out")
}

# switch_to KERNEL: kup kexec load + exec, wait for the new boot
switch_to() {
	local from k t0
	from=$(L run uname -r)
	if R "kup kexec load $1 2>&1"; then
		ok "kup kexec load $1 (kexec_file_load)"
		note "$R_OUT"
	else
		not_ok "kup kexec load $1"
		note "$R_OUT"
		return 1
	fi
	check "the new command line keeps the store's reservation" \
		"kup kexec load $1 --dry-run | grep -q 'memmap=512M!1G'"
	t0=$(date +%s.%N)
	"$lab" run 'kup kexec exec' >/dev/null 2>&1	# the connection drops
	if L wait-boot "$1" --timeout 240; then
		k=$(L run uname -r)
		ok "kexec $from -> $k"
		note "kup kexec exec to the new kernel answering: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s; $(L run 'systemd-analyze 2>/dev/null | head -n1')"
	else
		not_ok "kexec $from -> $1"
		return 1
	fi
	R 'udevadm settle -t 30; for i in $(seq 100); do test -b /dev/pmem0 && exit 0; sleep 0.2; done; exit 1' ||
		{ not_ok "/dev/pmem0 is back after the kexec"; return 1; }
}

# restore_and_check TAG
restore_and_check() {
	local k
	k=$(L run uname -r)
	check "kup ppp verify passes on $k" 'kup ppp verify /dev/pmem0'
	if R "kup restore --ppp /dev/pmem0 -d 2>&1"; then
		ok "kup restore --ppp /dev/pmem0 -d on $k"
		note "$R_OUT"
		restore_line=$R_OUT
	else
		not_ok "kup restore --ppp /dev/pmem0 -d on $k"
		note "$R_OUT"
		return 1
	fi
	check "the counter is back with pid $pid, its clocks child with pid $cpid" \
		"kill -0 $pid && kill -0 $cpid && grep -q '^PPid:[[:space:]]*$pid\$' /proc/$cpid/status"
	check "the counter goes on from $last" \
		"for i in \$(seq 100); do grep -q '^C $((last + 5)) ' $OUT/counter-$1.out && exit 0; sleep 0.2; done; exit 1"
	check "every value once and in order, same pid" \
		"awk -v pid=$pid '\$1 != \"C\" { next } \$2 != n { print \"line \" NR \": \" \$2 \" want \" n; exit 1 } \$3 != pid { exit 1 } { n++ }' $OUT/counter-$1.out"
	check "its $MB MiB have the same sum ($sum)" \
		"k=\$(grep -c '^CHECK ' $OUT/counter-$1.out); kill -USR1 $pid;
		 for i in \$(seq 100); do [ \$(grep -c '^CHECK ' $OUT/counter-$1.out) -gt \$k ] && break; sleep 0.2; done;
		 grep '^CHECK ' $OUT/counter-$1.out | tail -n1 | grep 'OK.*sum=$sum'"
	check "no ERROR from the counter or the clocks" "! grep -h ERROR $OUT/counter-$1.out $OUT/clocks-$1.out"
	# 4: the clocks on the new kernel
	check "the clocks child ticks on on $k" \
		"n=\$(wc -l < $OUT/clocks-$1.out); sleep 1; [ \$(wc -l < $OUT/clocks-$1.out) -gt \$((n + 5)) ]"
	check "its clock_gettime, gettimeofday and time agree with the guest's date (2 s)" \
		"now=\$(date +%s%3N); tail -n1 $OUT/clocks-$1.out | awk -v now=\$now '\$1 == \"T\" { d = now - \$4; if (d < 0) d = -d; e = now - \$5; if (e < 0) e = -e; f = int(now / 1000) - \$6; if (f < 0) f = -f; exit !(d < 2000 && e < 2000 && f <= 2) } \$1 != \"T\" { exit 1 }'"
	check "its CLOCK_MONOTONIC went on from $mono ms (time namespace), never back" \
		"awk -v m=$mono 'BEGIN { bad = 1 } \$1 == \"T\" && \$7 >= m { bad = 0 } END { exit bad }' $OUT/clocks-$1.out &&
		 grep -q '^monotonic' /proc/$cpid/timens_offsets && ! grep -q '^monotonic 0 0' /proc/$cpid/timens_offsets"
	check "the store was scrubbed after the restore" "kup ppp status /dev/pmem0 | grep -q 'checkpoint:   none'"
}

# ------------------------------------------------------------------ 1 + 4: A -> B
start_tree ab || bail "start the counter ($MB MiB) and its clocks child on $A"
ok "tree started on $A: counter pid $pid ($MB MiB, sum $sum), clocks pid $cpid"
dump_to_store ab || bail "cannot go on without a checkpoint"
switch_to "$B" || bail "cannot go on without $B"
restore_and_check ab
note "vDSO: $(L run "grep -c vdso /proc/$cpid/maps") vdso mapping(s) in the restored child; kernel $A -> $B"

# figures
dump_ms=$(sed -n 's/.* pages in \([0-9.]*\) ms.*/\1/p' <<<"$dump_line" | head -n1)
rst_ms=$(sed -n 's/.*restored .* pages in \([0-9.]*\) ms.*/\1/p' <<<"$restore_line" | head -n1)
pages=$(sed -n 's/.*threads, \([0-9]*\) pages.*/\1/p' <<<"$dump_line" | head -n1)
if [ -n "$dump_ms" ] && [ -n "$pages" ]; then
	note "FIGURE dump of $((pages * 4 / 1024)) MiB into /dev/pmem0: ${dump_ms} ms ($(awk -v p="$pages" -v t="$dump_ms" 'BEGIN { printf "%.0f", p * 4096 / 1048576 / (t / 1000) }') MiB/s)"
	[ -n "$rst_ms" ] && note "FIGURE restore of the same from /dev/pmem0: ${rst_ms} ms ($(awk -v p="$pages" -v t="$rst_ms" 'BEGIN { printf "%.0f", p * 4096 / 1048576 / (t / 1000) }') MiB/s)"
fi
note "FIGURE memory copy in the guest: $(L run 'dd if=/dev/zero of=/dev/null bs=1M count=1024 2>&1 | tail -n1')"

# ------------------------------------------------------------------ 2: B -> A
R "kill $pid $cpid"
start_tree ba || bail "start a new tree on $B"
ok "tree started on $B: counter pid $pid, clocks pid $cpid"
dump_to_store ba || bail "cannot go on without a checkpoint"
switch_to "$A" || bail "cannot go on without $A"
restore_and_check ba

# ------------------------------------------------------------------ 3: a corrupted store
R "kill $pid $cpid"
start_tree bad || bail "start a tree for the corrupted store"
check "kup dump --leave-running into the store" "kup dump -t $pid --ppp /dev/pmem0 --leave-running"
R "kill $pid $cpid; sleep 0.5"
off=$(L run "kup ppp ls /dev/pmem0 --json | python3 -c 'import json,sys; print([b[\"offset\"] for b in json.load(sys.stdin) if b[\"name\"] == \"pages-$pid.img\"][0])'")
check "flip one byte of pages-$pid.img (offset ${off:-?}) on /dev/pmem0" \
	"[ -n '$off' ] && printf 'X' | dd of=/dev/pmem0 bs=1 seek=$((off + 12345)) conv=notrunc,fsync status=none"
switch_to "$B" || bail "cannot go on without $B"
check_fails "kup ppp verify fails on $B" 'kup ppp verify /dev/pmem0 2>&1'
if grep -q "pages-$pid.img.*extent" <<<"$R_OUT"; then ok "it names the blob and the extent"; else not_ok "it names the blob and the extent"; note "$R_OUT"; fi
check_fails "kup restore --ppp refuses it" "kup restore --ppp /dev/pmem0 -d 2>&1"
note "$R_OUT"
check "nothing was restored (no pid $pid)" "! kill -0 $pid 2>/dev/null"
check "the store was left as it was (the checkpoint is still there)" \
	"kup ppp status /dev/pmem0 | grep -q 'checkpoint:   [0-9]* blob'"

# a dump killed with SIGKILL
check "scrub the store" 'kup ppp scrub /dev/pmem0'
start_tree kill || bail "start a tree for the killed dump"
check "kup dump killed with SIGKILL while it writes the store" \
	"kup dump -t $pid --ppp /dev/pmem0 >/dev/null 2>&1 & k=\$!;
	 for i in \$(seq 200); do grep -q '^State:.*t' /proc/$pid/status && break; sleep 0.02; done;
	 sleep 0.3; kill -KILL \$k; wait \$k; [ \$? = 137 ]"
check "the store holds no checkpoint" "kup ppp status /dev/pmem0 | grep -q 'checkpoint:   none'"
check_fails "kup restore --ppp refuses it" "kup restore --ppp /dev/pmem0 -d 2>&1"
# Not a check yet (known gap: a kup killed while it drives the tree's
# registers can leave a task stopped or dead): said as a note.
if R "c=\$(awk '\$1 == \"C\" { v = \$2 } END { print v }' $OUT/counter-kill.out);
      for i in \$(seq 50); do grep -q \"^C \$((c + 3)) \" $OUT/counter-kill.out && exit 0; sleep 0.2; done; exit 1"; then
	note "the tree survived the killed dump and keeps counting"
else
	note "KNOWN GAP: the tree did not survive the killed dump"
fi
finish
