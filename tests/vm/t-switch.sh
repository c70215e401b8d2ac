#!/bin/bash
# `kup switch` in the QEMU lab, end to end, as an admin runs it: a demo
# service (a counter holding 64 MiB, started as a systemd service) is kept
# across a real kernel update 6.1.0-47 -> 6.1.0-56.  kup switch loads the new
# kernel, dumps the service into /dev/pmem0 and kexecs; on the new kernel
# kup-restore.service brings it back during the boot, before the normal
# services: same pid, the count goes on, the memory is unchanged.  The
# service has a low pid, one the new boot hands out to its own early
# processes: the initrd of the new kernel carries kup's hook (initramfs/),
# whose `kup hold` keeps that pid from the first moment of the boot until
# kup-restore.service restores the service.
# Also: a kernel that does not load, a tree that cannot be dumped, and a
# switch interrupted (SIGINT) or killed (SIGKILL) during its dump leave the
# service running and no kernel loaded; so does a switch whose every kup
# process is SIGKILLed, once `kup recover` has replayed its journal.
#
# `make demo` runs this (tests/vm/run-lab-tests.sh t-switch.sh).
set -u

export KUP_LAB_NAME=${KUP_LAB_NAME:-switch}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
A=${KUP_LAB_A:-6.1.0-47-amd64}
B=${KUP_LAB_B:-6.1.0-56-amd64}
PROGS=${PROGS:-$top/build/progs}
GP=/usr/local/libexec/kup-tests
OUT=/root/demo-counter.out

[ -x "$PROGS/counter" ] || bail "$PROGS/counter is missing (make progs)"
L build || bail "lab build"
"$lab" stop >/dev/null 2>&1
L boot "$A" || bail "boot $A"
ok "booted $A"
R 'command -v kup' || bail "kup is not installed in the guest (tests/vm/run-lab-tests.sh installs it)"
R "mkdir -p $GP" && L cp-in "$PROGS/counter" "$GP/counter" || bail "copy the demo service in"
check "systemctl enable kup-restore.service" 'systemctl enable kup-restore.service 2>&1'
check "kup ppp format /dev/pmem0" 'udevadm settle -t 30; kup ppp format /dev/pmem0 --force'
check "update-initramfs -u -k $B puts kup's hook into the new kernel's initrd" \
	"update-initramfs -u -k $B >/dev/null 2>&1 && lsinitramfs /boot/initrd.img-$B | grep -qx scripts/init-top/kup"

# The demo service: a counter printing one line every 200 ms, with 64 MiB of
# memory, run by systemd.  Its pid is low (the first free one above 150, as
# a service started at boot has), so the new boot would hand it out early.
check "start the demo service (systemd-run)" \
	"echo 150 > /proc/sys/kernel/ns_last_pid;
	 systemd-run --unit=demo-counter -p StandardOutput=append:$OUT -p StandardError=append:$OUT \
		$GP/counter -m 64 -i 200"
R "for i in \$(seq 100); do grep -q '^C 5 ' $OUT && exit 0; sleep 0.2; done; exit 1" || bail "the demo service runs"
pid=$(L run "systemctl show -p MainPID --value demo-counter")
sum=$(L run "awk '\$1 == \"MEM\" { print \$2 }' $OUT")
ok "demo service runs: pid $pid, memory sum $sum"
note "$(L run "tail -n 3 $OUT")"

R "kup check $B -t $pid"
rc=$?
note "$R_OUT"
if [ $rc = 0 ] && grep -q "checks: 0 failed" <<<"$R_OUT"; then
	ok "kup check $B -t $pid: every check passes (the switch will work)"
else
	not_ok "kup check $B -t $pid: every check passes (the switch will work)"
fi

# ---- what must not touch the service
R "kup switch /boot/vmlinuz-nonexistent -t $pid 2>&1"
if [ $? != 0 ] && grep -q "nothing was changed" <<<"$R_OUT"; then
	ok "kup switch to a kernel that does not exist fails, says nothing was changed"
else
	not_ok "kup switch to a kernel that does not exist fails cleanly"
	note "$R_OUT"
fi
check "the service still runs, no kernel is loaded" "kill -0 $pid && ! kup kexec status >/dev/null"
R "kup switch $B -t 1 2>&1"
if [ $? != 0 ] && grep -q "pid 1: refusing to dump init" <<<"$R_OUT" &&
   grep -q "nothing was changed" <<<"$R_OUT"; then
	ok "kup switch of a tree that cannot be dumped (pid 1) is refused before anything is loaded"
else
	not_ok "kup switch of a tree that cannot be dumped (pid 1) is refused before anything is loaded"
	note "$R_OUT"
fi
check "no kernel is loaded" "! kup kexec status >/dev/null"

# ---- an interrupted or killed switch (kup(8), SIGNALS): sent once the
# service is frozen, the signal aborts the dump; the kernel is unloaded
for sig in INT KILL; do
	R "env --default-signal=INT kup switch $B -t $pid --no-exec > /root/ks-$sig.log 2>&1 & ks=\$!;
	   for i in \$(seq 3000); do grep -q 'State:.t' /proc/$pid/status && break; sleep 0.02; done;
	   kill -$sig \$ks; wait \$ks; echo status \$?;
	   for i in \$(seq 300); do pgrep -f 'kup (switch|dump|kexec)' >/dev/null || break; sleep 0.1; done;
	   cat /root/ks-$sig.log"
	note "$R_OUT"
	if grep -q "tree left running, nothing written" <<<"$R_OUT" && grep -q "was unloaded" <<<"$R_OUT"; then
		ok "kup switch sent SIG$sig during the dump: the dump and the switch say they were interrupted"
	else
		not_ok "kup switch sent SIG$sig during the dump: the dump and the switch say they were interrupted"
	fi
	check "... the service runs, untraced" \
		"grep -q 'TracerPid:.0\$' /proc/$pid/status && ! grep -q 'State:.[tT]' /proc/$pid/status"
	check "... no kernel is loaded, no checkpoint in the store" \
		"! kup kexec status >/dev/null && kup ppp status /dev/pmem0 | grep -q 'checkpoint:   none'"
done
# ---- every kup process SIGKILLed during the dump (the OOM killer, a cgroup
# kill: nothing of kup's survives to clean up): the switch's journal in
# /run/kup is replayed by `kup recover`: the service runs as it was, its
# signals deliverable, and no kernel stays loaded (kup(8), kup recover)
# (the dump held once the tree is frozen and its threads parked: a small
# service's dump may otherwise end before the kill comes)
blk=$(L run "grep SigBlk /proc/$pid/status")
R "KUP_TEST_DUMP_HOLD=/root/never kup switch $B -t $pid --no-exec > /root/ks-ALL.log 2>&1 &
   for i in \$(seq 3000); do [ \$(ls /run/kup/journal 2>/dev/null | wc -l) -gt 0 ] &&
	grep -q 'State:.t' /proc/$pid/status && break; sleep 0.02; done; sleep 0.2;
   pkill -KILL -x kup; sleep 0.3; pkill -KILL -x kup;
   for i in \$(seq 100); do pgrep -x kup >/dev/null || break; sleep 0.1; done;
   echo journals: \$(ls /run/kup/journal 2>/dev/null | wc -l); kup recover 2>&1; echo recover status \$?"
note "$R_OUT"
if grep -q "recover status 0" <<<"$R_OUT" && grep -q "journals: [1-9]" <<<"$R_OUT"; then
	ok "every kup SIGKILLed during the switch's dump left a journal, and kup recover replayed it"
else
	not_ok "every kup SIGKILLed during the switch's dump left a journal, and kup recover replayed it"
fi
check "... the service runs, untraced, its blocked signals as before ($blk)" \
	"grep -q 'TracerPid:.0\$' /proc/$pid/status && ! grep -q 'State:.[tT]' /proc/$pid/status &&
	 [ \"\$(grep SigBlk /proc/$pid/status)\" = '$blk' ]"
check "... no kernel is loaded, no checkpoint in the store, no journal left" \
	"! kup kexec status >/dev/null && kup ppp status /dev/pmem0 | grep -q 'checkpoint:   none' &&
	 [ -z \"\$(ls -A /run/kup/journal 2>/dev/null)\" ]"
c=$(L run "awk '\$1 == \"C\" { v = \$2 } END { print v }' $OUT")
check "... and it counts on without a gap" \
	"for i in \$(seq 100); do grep -q '^C $((c + 3)) ' $OUT && break; sleep 0.2; done;
	 awk -v pid=$pid '\$1 != \"C\" { next } \$2 != n { print \"line \" NR \": \" \$2 \" want \" n; exit 1 } \$3 != pid { exit 1 } { n++ }' $OUT"

# ---- the switch
last=$(L run "awk '\$1 == \"C\" { v = \$2 } END { print v }' $OUT")
note "kup switch $B -t $pid"
t0=$(date +%s.%N)
"$lab" run "kup switch $B -t $pid >/root/switch.log 2>&1" >/dev/null 2>&1	# the connection drops
if L wait-boot "$B" --timeout 300; then
	ok "the guest came back on $(L run uname -r)"
	note "kup switch to the new kernel answering: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s"
else
	bail "the guest did not come back on $B"
fi
note "$(L run 'cat /root/switch.log')"
check "kup-restore.service ran at boot and succeeded" "systemctl is-active kup-restore.service"
note "$(L run 'journalctl -b -u kup-restore.service --no-pager -o cat | tail -n 8')"
note "$(L run "dmesg | grep 'kup hold'")"
check "kup hold, in the initramfs, held the tree's PIDs from the start of the boot" \
	"dmesg | grep -q 'kup hold: holding the PIDs of the tree of pid $pid: held \\([0-9]*\\) of \\1'"
asked=$(L run "journalctl -b -u kup-restore.service -o cat | sed -n 's/.*let go: released [0-9]* pids (asked by pid \\([0-9]*\\)).*/\\1/p'")
check "the restore made it let go (asked by pid ${asked:-?})" "[ -n '$asked' ]"
check "by then the new boot had handed out pids past $pid: without the hold, $pid was up for grabs" \
	"[ '${asked:-0}' -gt $pid ]"
check "the demo service is back with pid $pid" "kill -0 $pid && grep -q counter /proc/$pid/comm"
check "its count goes on from $last with no gap or repeat" \
	"for i in \$(seq 100); do grep -q '^C $((last + 5)) ' $OUT && break; sleep 0.2; done;
	 awk -v pid=$pid '\$1 != \"C\" { next } \$2 != n { print \"line \" NR \": \" \$2 \" want \" n; exit 1 } \$3 != pid { exit 1 } { n++ }' $OUT"
check "its 64 MiB are unchanged (sum $sum)" \
	"k=\$(grep -c '^CHECK ' $OUT); kill -USR1 $pid;
	 for i in \$(seq 100); do [ \$(grep -c '^CHECK ' $OUT) -gt \$k ] && break; sleep 0.2; done;
	 grep '^CHECK ' $OUT | tail -n1 | grep 'OK.*sum=$sum'"
check "no ERROR line" "! grep ERROR $OUT"
check "the store was scrubbed" "kup ppp status /dev/pmem0 | grep -q 'checkpoint:   none'"
note "the demo service's output around the switch:"
note "$(L run "awk -v l=$last '\$1 == \"C\" && \$2 >= l - 2 && \$2 <= l + 3' $OUT")"
finish
